//! kraftwerk-storage: Kafka-compatible partition logs on local disk.
//!
//! Each partition is a directory `<log.dirs>/<topic>-<partition>/` of segments named by their
//! 20-digit base offset (`.log` data, sparse `.index` and `.timeindex`), plus a log-start-offset
//! checkpoint and the leader-epoch checkpoint. Each log directory has one clean-shutdown marker
//! ([`log_dir`]). The API is synchronous std::fs: the broker calls it
//! from tokio tasks, so every call is kept short; nothing here is async or networked.
//!
//! - [`batch`]: the RecordBatch v2 codec (pure functions, fuzzed).
//! - [`PartitionLog`]: append, read, truncate, retention and recovery of one partition.
//! - [`epoch`]: the leader-epoch cache (`leader-epoch-checkpoint`) that OffsetForLeaderEpoch answers from.

pub mod batch;
mod checkpoint;
pub mod cleaner;
mod config;
mod dir_name;
pub mod epoch;
mod error;
mod index;
mod log;
pub mod log_dir;
mod segment;

pub use config::{CleanupPolicy, CompressionLevels, LogConfig, TargetCompression, TimestampType};
pub use dir_name::{parse_partition_dir_name, partition_dir_name};
pub use epoch::{EpochEndOffset, EpochEntry, LeaderEpochCache};
pub use error::{RecordError, StorageError};
pub use log::{
    refuse_client_control_batches, AppendResult, FileSlice, MaxTimestampPlan, PartitionLog,
    ReadPlan, ReadResult, SeedFile, SliceRead, TimestampedRecord,
};
pub use log_dir::{FilesystemSync, LastShutdown};
pub use segment::Reservation;
