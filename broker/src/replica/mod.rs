//! The partitions this broker hosts: one on-disk [`PartitionLog`] each, kept in step with the metadata image by
//! [`manager::ReplicaManager::reconcile`], and the high watermark / leader epoch the request handlers need.

pub mod cleaner;
pub mod dir_creator;
pub mod fetcher;
pub mod hw_checkpoint;
pub mod isr;
pub mod log_config;
pub mod manager;
pub mod partition;
pub mod peer_client;
pub mod producer_state;
pub mod purgatory;
pub mod read_replica;

pub use manager::ReplicaManager;
pub use partition::Partition;
