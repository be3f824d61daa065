//! kraftwerk-controller: the cluster metadata quorum.
//!
//! Metadata (topics, partitions, configs, brokers) is a sequence of [`records::MetadataRecord`]
//! batches agreed on through raft (tikv's raft-rs) and stored in the `__cluster_metadata-0`
//! partition log. A request runs as a pure operation over the current [`MetadataImage`],
//! producing records; it completes once its records commit, and every voter replays committed
//! records into its next image.
//!
//! - [`start`] / [`Controller`] / [`ControllerHandle`]: running a controller and using it.
//! - [`api`]: request and result types; [`error`]: Kafka error codes.
//! - [`image`]: the immutable metadata image; [`records`]: what the log holds, and Kafka's
//!   byte format for it ([`records::kafka_format`]); [`snapshot_file`]: Kafka's snapshot files.
//! - [`topic_configs`]: topic config definitions, shared with the broker's DescribeConfigs.
//! - [`transport`]: how raft messages reach other voters (none with a single voter).
//!
//! - [`membership`]: the quorum's voters and learners (KIP-853 dynamic voters), changed through
//!   raft-rs conf changes stored as Kafka VotersRecords.

pub mod acl;
pub mod api;
pub mod bootstrap;
pub mod config;
pub mod error;
pub mod follower;
mod handle;
pub mod image;
pub mod liveness;
pub mod membership;
mod meta_properties;
mod node;
pub(crate) mod ops;
pub mod policy;
mod raft_log;
pub mod records;
pub mod rpc;
pub mod topic_configs;
pub mod transport;

#[cfg(test)]
mod tests;

pub use api::*;
pub use config::{ControllerConfig, VoterAddr};
pub use error::ControllerError;
pub use handle::{start, start_with_policies, Controller, ControllerHandle};
pub use image::MetadataImage;
pub use ops::features::{
    kraft_version, FeatureUpdate, KRAFT_VERSION, METADATA_VERSION, SAFE_DOWNGRADE,
    SUPPORTED_FEATURES, UNSAFE_DOWNGRADE, UPGRADE,
};
pub use ops::leaders::{RebalancePass, MAX_MOVES_PER_BATCH};
/// Topic name rules (legal characters, length, `.`/`..`), for the broker's auto-creation.
pub use ops::topic_name::validate as validate_topic_name;
/// Longest legal topic name (249).
pub use ops::topic_name::MAX_NAME_LENGTH as MAX_TOPIC_NAME_LENGTH;
pub use ops::MAX_RECORDS_PER_USER_OP;
pub use raft_log::partition_store::METADATA_TOPIC;
/// Kafka-format metadata snapshot files (not yet used by raft).
pub use raft_log::snapshot_file;
pub use transport::{NoPeers, RaftMessage, Transport};
