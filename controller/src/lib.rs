//! kraftwerk-controller: the cluster metadata quorum.
//!
//! Metadata (topics, partitions, configs, brokers) is a sequence of [`records::MetadataRecord`]
//! batches agreed on through raft (tikv's raft-rs) and stored in the `__cluster_metadata` log.
//! Requests run as pure operations over the current [`image::MetadataImage`] producing records;
//! a request completes once its records commit, and every replica replays committed records
//! into the next image.

pub mod api;
pub mod error;
pub mod image;
pub(crate) mod ops;
pub mod policy;
pub mod records;
pub mod topic_configs;

pub use api::*;
pub use error::ControllerError;
pub use image::MetadataImage;
pub use ops::MAX_PARTITIONS_PER_REQUEST;
