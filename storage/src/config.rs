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
    /// `compression.type`: what leader appends are stored as.
    pub compression: TargetCompression,
    /// `compression.<codec>.level`.
    pub compression_levels: CompressionLevels,
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
    /// `uncompressed`, `gzip`, `snappy`, `lz4` or `zstd`: a batch with another codec is recompressed on append.
    Codec(crate::batch::Compression),
}

impl TargetCompression {
    /// Parses Kafka's `compression.type` names; `None` for an unknown one.
    pub fn parse(name: &str) -> Option<Self> {
        use crate::batch::Compression;
        Some(match name.trim() {
            "producer" => Self::Producer,
            "uncompressed" => Self::Codec(Compression::None),
            "gzip" => Self::Codec(Compression::Gzip),
            "snappy" => Self::Codec(Compression::Snappy),
            "lz4" => Self::Codec(Compression::Lz4),
            "zstd" => Self::Codec(Compression::Zstd),
            _ => return None,
        })
    }
}

/// `compression.gzip.level`, `compression.lz4.level`, `compression.zstd.level`: the level a recompression to
/// that codec uses (Kafka's defaults: gzip -1 for the codec's own, lz4 9, zstd 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompressionLevels {
    pub gzip: i32,
    pub lz4: i32,
    pub zstd: i32,
}

impl Default for CompressionLevels {
    fn default() -> Self {
        Self {
            gzip: -1,
            lz4: 9,
            zstd: 3,
        }
    }
}

impl CompressionLevels {
    /// The level for `codec` (`None`: the codec's default, and snappy, which has no level).
    pub fn for_codec(&self, codec: crate::batch::Compression) -> Option<i32> {
        use crate::batch::Compression;
        match codec {
            Compression::Gzip => (self.gzip != -1).then_some(self.gzip),
            Compression::Lz4 => Some(self.lz4),
            Compression::Zstd => Some(self.zstd),
            Compression::None | Compression::Snappy => None,
        }
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
            compression_levels: CompressionLevels::default(),
            cleanup_policy: CleanupPolicy::DELETE,
            min_cleanable_dirty_ratio: 0.5,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            delete_retention_ms: 24 * 60 * 60 * 1000,
        }
    }
}
