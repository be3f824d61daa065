//! Kafka's classic consumer-group protocol (JoinGroup/SyncGroup/Heartbeat/LeaveGroup, offsets, group
//! administration) as a pure state machine, and the `__consumer_offsets` records that persist it.
//!
//! [`GroupCoordinator`] does no I/O and reads no clock: every call takes `now_ms` and returns
//! [`Output`]s — replies to route by [`ReplyId`] and records to write. JoinGroup and SyncGroup park
//! until a rebalance step completes, so their replies may come out of a later call or of
//! [`GroupCoordinator::tick`]. The async shell around it owns sockets, the log and the timer.
//!
//! Behaviour follows Kafka's classic coordinator (`GroupCoordinator.scala`), including KIP-394
//! (member id required), KIP-345 (static membership), KIP-814 (skip assignment), KIP-211 (offset
//! retention) and the pending-sync timeout. Deviations are noted where they are made.

mod admin;
mod classic_group;
mod config;
mod coordinator;
mod heartbeat;
mod join;
mod leave;
mod load;
mod member;
mod offset_commit;
mod offset_delete;
mod offset_fetch;
mod output;
mod ownership;
mod rebalance;
pub mod records;
mod responses;
mod retention;
mod state;
mod sync;
mod timers;

#[cfg(test)]
mod tests;

pub use config::GroupConfig;
pub use coordinator::{ClientInfo, GroupCoordinator};
pub use output::{Output, ReplyId, Response};
pub use ownership::Holding;
pub use records::{partition_for, GroupRecord, RecordError};
pub use state::GroupState;
