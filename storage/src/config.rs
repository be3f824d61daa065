//! Per-partition log settings, named and defaulted like Kafka's topic configs.

pub use crate::batch::TimestampType;

/// Settings of one partition log; every field maps to the Kafka topic config in its doc.
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    /// `segment.bytes`: roll the active segment before it would exceed this size.
    pub segment_bytes: u64,
    /// `segment.ms`: roll when the active segment's first batch is older than this.
    /// Negative disables time-based rolling.
    pub segment_ms: i64,
    /// `retention.ms`: delete sealed segments whose newest timestamp is older (-1 = forever).
    pub retention_ms: i64,
    /// `retention.bytes`: delete oldest sealed segments while the log is larger (-1 = no limit).
    pub retention_bytes: i64,
    /// `index.interval.bytes`: bytes of log between two sparse index entries.
    pub index_interval_bytes: u32,
    /// `max.message.bytes`: largest batch (log overhead included) a producer may append.
    pub max_message_bytes: u32,
    /// `message.timestamp.type`.
    pub timestamp_type: TimestampType,
    /// `flush.messages`: fsync after this many appended records (u64::MAX = leave it to the OS).
    pub flush_interval_messages: u64,
    /// `flush.ms`: fsync once unflushed data is this old, checked by [`crate::PartitionLog::flush_if_due`]
    /// (i64::MAX = leave it to the OS).
    pub flush_ms: i64,
    /// `segment.jitter.ms`: each segment rolls up to this much before `segment.ms` (a random share of it, fixed
    /// per segment), so partitions created together do not all roll at once.
    pub segment_jitter_ms: i64,
    /// `message.timestamp.before.max.ms`: a CreateTime record may be at most this far behind the broker's
    /// clock (i64::MAX = no limit).
    pub timestamp_before_max_ms: i64,
    /// `message.timestamp.after.max.ms`: a CreateTime record may be at most this far ahead of it.
    pub timestamp_after_max_ms: i64,
    /// `compression.type` with its `compression.<codec>.level`: what leader appends are stored as.
    pub compression: TargetCompression,
    /// `cleanup.policy`: whether retention deletes old segments and whether the cleaner compacts.
    pub cleanup_policy: CleanupPolicy,
    /// `min.cleanable.dirty.ratio`: compact once dirty bytes are at least this share of the cleanable log.
    pub min_cleanable_dirty_ratio: f64,
    /// `min.compaction.lag.ms`: a record stays uncompacted at least this long after it was written.
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms`: a record becomes eligible regardless of the dirty ratio after this long.
    pub max_compaction_lag_ms: i64,
    /// `delete.retention.ms`: how long a tombstone survives after the cleaner first passed it.
    pub delete_retention_ms: i64,
}

/// Kafka's `compression.type` of a topic: keep what the producer sent, or store every batch with one codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TargetCompression {
    /// `producer`: batches are stored with the producer's codec.
    #[default]
    Producer,
    /// `uncompressed`, `gzip`, `snappy`, `lz4` or `zstd`: a batch with another codec is recompressed on append,
    /// at `level` (`compression.gzip.level`, `compression.lz4.level`, `compression.zstd.level`; `None` for the
    /// codec's default, and for snappy, which has no level).
    Codec {
        codec: crate::batch::Compression,
        level: Option<i32>,
    },
}

impl TargetCompression {
    /// Parses `compression.type` (Kafka's names) with the level that applies to it; `None` for an unknown name.
    pub fn parse(name: &str, gzip_level: i32, lz4_level: i32, zstd_level: i32) -> Option<Self> {
        use crate::batch::Compression;
        let (codec, level) = match name.trim() {
            "producer" => return Some(Self::Producer),
            "uncompressed" | "none" => (Compression::None, None),
            // Kafka's gzip default level is -1, the codec's own default.
            "gzip" => (Compression::Gzip, (gzip_level != -1).then_some(gzip_level)),
            "snappy" => (Compression::Snappy, None),
            "lz4" => (Compression::Lz4, Some(lz4_level)),
            "zstd" => (Compression::Zstd, Some(zstd_level)),
            _ => return None,
        };
        Some(Self::Codec { codec, level })
    }
}

/// Kafka's `cleanup.policy`: `delete`, `compact`, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanupPolicy {
    /// Retention (`retention.ms`, `retention.bytes`) deletes old segments.
    pub delete: bool,
    /// The log cleaner keeps the latest record of every key.
    pub compact: bool,
}

impl CleanupPolicy {
    pub const DELETE: Self = Self {
        delete: true,
        compact: false,
    };
    pub const COMPACT: Self = Self {
        delete: false,
        compact: true,
    };

    /// Parses Kafka's comma-separated list (`delete`, `compact`, `compact,delete`); `None` for anything else.
    /// An empty list is valid in Kafka 4 (neither deletes nor compacts).
    pub fn parse(value: &str) -> Option<Self> {
        let mut policy = Self {
            delete: false,
            compact: false,
        };
        for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match item.to_ascii_lowercase().as_str() {
                "delete" => policy.delete = true,
                "compact" => policy.compact = true,
                _ => return None,
            }
        }
        Some(policy)
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        const WEEK_MS: i64 = 7 * 24 * 60 * 60 * 1000;
        Self {
            segment_bytes: 1 << 30,
            segment_ms: WEEK_MS,
            retention_ms: WEEK_MS,
            retention_bytes: -1,
            index_interval_bytes: 4096,
            max_message_bytes: 1_048_588,
            timestamp_type: TimestampType::CreateTime,
            flush_interval_messages: u64::MAX,
            flush_ms: i64::MAX,
            segment_jitter_ms: 0,
            timestamp_before_max_ms: i64::MAX,
            timestamp_after_max_ms: i64::MAX,
            compression: TargetCompression::Producer,
            cleanup_policy: CleanupPolicy::DELETE,
            min_cleanable_dirty_ratio: 0.5,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            delete_retention_ms: 24 * 60 * 60 * 1000,
        }
    }
}
