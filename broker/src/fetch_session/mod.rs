//! Incremental fetch sessions (KIP-227), as Kafka's `FetchManager` keeps them.
//!
//! A consumer that reads many partitions would otherwise send every partition in every Fetch and get every
//! partition back, data or not. With a session the broker remembers what the fetcher asked for each partition
//! (offset, limits, epochs) and what it last told it (high watermark, log start offset): the next request names
//! only what changed, and the answer carries only partitions with records, a changed offset, an error or a
//! preferred read replica. The Java client and franz-go open a session with their first full Fetch (epoch 0)
//! and go incremental (epoch 1, 2, ...) when the answer gives them a session id; librdkafka and kafkajs send
//! epoch -1 and stay sessionless.
//!
//! This module is the state machine only (no I/O, no clock of its own): `handlers::fetch` asks it what a
//! request is ([`FetchSessionCache::begin`]), reads the partitions, then opens a session from a full answer
//! ([`FetchSessionCache::open`]) or picks what an incremental answer carries ([`FetchSessionCache::select`]).
//!
//! The cache holds at most `max.incremental.fetch.session.cache.slots` sessions (Kafka's default 1000). When it
//! is full a new session may evict, as Kafka's: one unused for longer than [`EVICTION_MS`]; else, for a
//! follower's (privileged) session, a consumer's; else a session older than [`EVICTION_MS`] with fewer
//! partitions. Otherwise the full fetch is answered without a session (session id 0), which clients handle by
//! sending full requests. Kafka splits the cache into shards to spread lock contention; this one is a single
//! map behind one mutex, held only for the bookkeeping, never across a read.

mod cache;
mod session;
#[cfg(test)]
mod tests;

pub use cache::{Begun, FetchSessionCache, SessionRequest};
pub use session::{Answer, PartitionKey, TopicRef};

/// A request epoch asking for a new session (a full fetch).
pub const INITIAL_EPOCH: i32 = 0;
/// A request epoch asking for no session (a full fetch; any session it names is closed).
pub const FINAL_EPOCH: i32 = -1;
/// How long a session is safe from eviction after it was last used, or (for the value-based eviction) after it
/// was created: Kafka's fixed `MIN_INCREMENTAL_FETCH_SESSION_EVICTION_MS`.
pub const EVICTION_MS: u64 = 120_000;

/// The epoch after `epoch`: it wraps from `i32::MAX` to 1 (0 and -1 are the sentinels), as Kafka's
/// `FetchMetadata.nextEpoch`.
pub fn next_epoch(epoch: i32) -> i32 {
    if epoch < 0 {
        FINAL_EPOCH
    } else if epoch == i32::MAX {
        1
    } else {
        epoch + 1
    }
}
