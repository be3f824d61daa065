//! [`PartitionLog`]: one partition's segmented log, Kafka's on-disk layout and semantics.

mod append;
mod compaction;
mod epochs;
mod leader_checks;
pub use leader_checks::refuse_client_control_batches;
mod load;
mod read;
mod retention;
mod scan;
mod tail;
mod timestamps;

pub use read::{FileSlice, ReadPlan, SliceRead};
pub use timestamps::{MaxTimestampPlan, TimestampedRecord};

use std::mem;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::batch::BatchInfo;
use crate::checkpoint::sync_dir;
use crate::epoch::LeaderEpochCache;
use crate::segment::Segment;
use crate::{LogConfig, StorageError};

/// What an append did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendResult {
    /// Offset of the first record appended.
    pub base_offset: i64,
    /// Offset of the last record appended.
    pub last_offset: i64,
    /// The broker time stamped on the batches under LogAppendTime, else -1.
    pub log_append_time: i64,
    pub log_start_offset: i64,
    /// The appended batches, with their final offsets (positions are within the input).
    pub batches: Vec<BatchInfo>,
}

/// What a read returned: whole batches, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadResult {
    pub records: bytes::Bytes,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
}

/// A partition's log: `<dir>/<base offset>.{log,index,timeindex}` segments, a log-start-offset
/// checkpoint and the leader-epoch checkpoint. Whether it was closed cleanly is its log directory's
/// business ([`crate::log_dir`]).
///
/// Calls are synchronous and short; the owner serialises them (`&mut self` for writes).
#[derive(Debug)]
pub struct PartitionLog {
    dir: PathBuf,
    config: LogConfig,
    /// Older segments, oldest first. Never appended to except after `truncate_to`.
    sealed: Vec<Segment>,
    /// The segment appends go to; always the newest.
    active: Segment,
    log_start_offset: i64,
    /// Leader epochs and where each starts, mirrored in `leader-epoch-checkpoint`.
    epochs: LeaderEpochCache,
    /// The checkpoint was rewritten without fsync since it was last fsynced (a new epoch, see
    /// `update_epochs_deferred`): the next flush or roll fsyncs it.
    epochs_unsynced: bool,
    /// The cache changed since the checkpoint was last written (a new epoch, see `update_epochs_deferred`): the
    /// next roll, flush or close writes it.
    epochs_unwritten: bool,
    /// What the checkpoint file holds, when this process wrote or read exactly it: lets a new epoch overwrite it
    /// in place (`epoch::checkpoint::write_deferred`).
    epochs_on_disk: Option<crate::epoch::checkpoint::OnDisk>,
    /// Reused buffer for leader appends: the rewritten copy of each batch's header (offsets, epoch,
    /// LogAppendTime), written in place of the producer's.
    scratch: Vec<[u8; crate::batch::HEADER_SIZE]>,
    /// Records appended since the last fsync, for `flush_interval_messages`.
    unflushed_messages: u64,
    /// When the log was last fsynced (or opened), for `flush_ms`.
    last_flush_ms: i64,
    /// Random seed of this log's per-segment roll jitter (`segment_jitter_ms`).
    jitter_seed: u64,
    /// fsyncs of rolled segments, run off the append path.
    background_flushes: Vec<JoinHandle<Result<(), StorageError>>>,
    /// Lowest offset the log was truncated to since the last cleaning: data from there on is dirty again,
    /// whatever the cleaner checkpoint says.
    cleaner_truncated_to: Option<i64>,
    /// Earliest delete horizon of a tombstone the last cleaning kept: the log is due again once it passes.
    tombstone_horizon: Option<i64>,
    /// A cleaner swap staged and not yet in the segment list (see [`crate::cleaner::swap`]), with the tombstone
    /// horizon of its cleaning: truncation, segment deletion and close settle it first.
    pending_swap: Option<(
        std::sync::Arc<crate::cleaner::pending::PendingSwap>,
        Option<i64>,
    )>,
    /// `Some` while the partition directory does not exist yet ([`Self::create_deferred`]): the files to put in
    /// it when the first write creates it. Until then nothing of this log is on disk.
    deferred_dir: Option<Vec<SeedFile>>,
}

/// A file the owner of a log wants in the partition directory from the moment the directory exists (the broker's
/// `partition.metadata`, which says which topic the directory belongs to).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedFile {
    pub name: String,
    pub contents: Vec<u8>,
}

/// Header copies kept between appends (61 B each); a larger scratch is released after use.
const SCRATCH_KEEP_HEADERS: usize = 4096;

/// Writes each of `seed` into `dir`, unsynced (the broker rewrites its `partition.metadata` at every open).
pub(super) fn write_seed_files(dir: &Path, seed: &[SeedFile]) -> Result<(), StorageError> {
    for file in seed {
        let path = dir.join(&file.name);
        std::fs::write(&path, &file.contents).map_err(|e| StorageError::io("write", &path, e))?;
    }
    Ok(())
}

impl PartitionLog {
    /// Offset of the first record still in the log.
    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }

    /// Offset the next appended record gets.
    pub fn log_end_offset(&self) -> i64 {
        self.active.next_offset()
    }

    /// Bytes of all segments' data files.
    pub fn size_in_bytes(&self) -> u64 {
        self.segments().map(Segment::size).sum()
    }

    /// Number of segments, the active one included.
    pub fn segment_count(&self) -> usize {
        self.sealed.len() + 1
    }

    /// The partition directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The configuration in force.
    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// Replaces the configuration; it applies from the next call on (segments are not rewritten).
    pub fn update_config(&mut self, config: LogConfig) {
        self.config = config;
    }

    /// fsyncs data and indexes of every segment written since the last flush, and the leader-epoch
    /// checkpoint if it was rewritten since.
    pub fn flush(&mut self) -> Result<(), StorageError> {
        if self.deferred_dir.is_some() {
            // Nothing of the log is on disk yet, so nothing to make durable.
            self.last_flush_ms = now_ms();
            return Ok(());
        }
        let joined = self.join_background_flushes();
        self.active.sync()?;
        self.write_pending_leader_epochs()?;
        self.sync_leader_epochs()?;
        sync_dir(&self.dir)?;
        self.unflushed_messages = 0;
        self.last_flush_ms = now_ms();
        joined
    }

    /// Kafka's `flush.ms`: fsyncs when records were appended since the last flush and that flush is at least
    /// `flush_ms` old at `now_ms`. Returns whether it flushed. The broker calls this every
    /// `log.flush.scheduler.interval.ms`.
    pub fn flush_if_due(&mut self, now_ms: i64) -> Result<bool, StorageError> {
        if self.unflushed_messages == 0
            || self.config.flush_ms == i64::MAX
            || now_ms.saturating_sub(self.last_flush_ms) < self.config.flush_ms
        {
            return Ok(false);
        }
        self.flush()?;
        Ok(true)
    }

    /// Records appended and not yet fsynced.
    pub fn unflushed_messages(&self) -> u64 {
        self.unflushed_messages
    }

    /// The roll jitter of the segment based at `base_offset`: a pseudo-random share of `segment_jitter_ms`
    /// (fixed for the segment, different between partitions), below `segment_ms` as in Kafka.
    fn roll_jitter_ms(&self, base_offset: i64) -> i64 {
        let bound = self.config.segment_jitter_ms.min(self.config.segment_ms);
        if bound <= 0 {
            return 0;
        }
        let mixed = splitmix(self.jitter_seed ^ (base_offset as u64));
        (mixed % bound as u64) as i64
    }

    /// Seals the active segment and flushes everything. Once every log of a log directory is closed, the
    /// owner writes the directory's clean-shutdown marker ([`crate::log_dir::write_clean_shutdown_marker`]) so
    /// the next start skips recovery.
    pub fn close(mut self) -> Result<(), StorageError> {
        // A cleaning in flight can no longer install its swap.
        self.settle_cleaning()?;
        self.active.seal()?;
        self.flush()
    }

    /// [`Self::close`] without its fsyncs: seals the active segment (index entries written, reserved blocks
    /// freed) and waits for the background fsyncs of earlier rolls, but leaves making the files durable to the
    /// caller, which does it for every log of the directory at once with
    /// [`crate::log_dir::FilesystemSync::sync`] before it writes the clean-shutdown marker. Until that sync
    /// succeeds the log is as an unclean shutdown leaves it.
    pub fn close_unsynced(mut self) -> Result<(), StorageError> {
        self.settle_cleaning()?;
        self.active.seal()?;
        self.write_pending_leader_epochs()?;
        self.join_background_flushes()
    }

    /// Removes the partition directory and everything in it.
    pub fn delete(mut self) -> Result<(), StorageError> {
        if let Err(e) = self.join_background_flushes() {
            tracing::debug!(error = %e, "ignoring fsync failure of a log being deleted");
        }
        let dir = mem::take(&mut self.dir);
        let never_created = self.deferred_dir.is_some();
        drop(self);
        match std::fs::remove_dir_all(&dir) {
            Err(e) if never_created && e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            r => r.map_err(|e| StorageError::io("remove dir", &dir, e)),
        }
    }

    /// Whether the partition directory is yet to be created ([`Self::create_deferred`]).
    pub fn is_deferred(&self) -> bool {
        self.deferred_dir.is_some()
    }

    /// Creates the directory of a [`Self::create_deferred`] log ahead of its first write (see
    /// [`Self::materialize`]), so that write does not pay for it; a no-op once the directory exists. The owner
    /// calls it off its request path soon after creating the log.
    pub fn create_deferred_dir(&mut self) -> Result<(), StorageError> {
        self.materialize()
    }

    /// Creates the directory of a [`Self::create_deferred`] log, its seed files, the first segment's data file,
    /// and the leader-epoch checkpoint if epochs were assigned meanwhile (with a deferred fsync, like any new
    /// epoch). Every write to the log calls this first; a no-op once the directory exists. A failure leaves the
    /// log deferred, so the next write tries again.
    fn materialize(&mut self) -> Result<(), StorageError> {
        let Some(seed) = &self.deferred_dir else {
            return Ok(());
        };
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| StorageError::io("create dir", &self.dir, e))?;
        write_seed_files(&self.dir, seed)?;
        self.active.create_file()?;
        self.deferred_dir = None;
        if !self.epochs.entries().is_empty() {
            self.write_leader_epochs_deferred()?;
        }
        tracing::debug!(dir = %self.dir.display(), "created partition directory at its first write");
        Ok(())
    }

    /// Oldest to newest.
    fn segments(&self) -> impl DoubleEndedIterator<Item = &Segment> {
        self.sealed.iter().chain(std::iter::once(&self.active))
    }

    /// Index (in [`Self::segments`] order) of the segment that would hold `offset`.
    fn segment_index_for(&self, offset: i64) -> Option<usize> {
        if self.active.base_offset() <= offset {
            return Some(self.sealed.len());
        }
        self.sealed
            .partition_point(|s| s.base_offset() <= offset)
            .checked_sub(1)
    }

    fn segment_at(&self, index: usize) -> Option<&Segment> {
        self.sealed
            .get(index)
            .or((index == self.sealed.len()).then_some(&self.active))
    }

    /// Starts a new active segment at the log end offset; the old one is sealed and fsynced
    /// on a background thread (as Kafka does) so the append that triggered the roll is not
    /// held up by writeback of a whole segment.
    ///
    /// A leader-epoch checkpoint rewritten since its last fsync is fsynced here, before the new segment takes
    /// data: recovery after a crash re-reads only the active segment's batches for epochs, so every entry
    /// starting before it must be on disk (one fsync and one of the directory, only when an epoch changed).
    fn roll(&mut self, now_ms: i64) -> Result<(), StorageError> {
        self.reap_background_flushes()?;
        // Every epoch entry starting before the new segment must be in the file: an open after a crash
        // re-assigns only the active segment's.
        self.write_pending_leader_epochs()?;
        // A deferred leader-epoch checkpoint is made durable with the sealed segment, on the same background
        // thread: fsynced here, on the append path, it waited behind every dirty page of the segment (1 s in a
        // profile) while the partition's appends queued.
        let sync_epochs = mem::replace(&mut self.epochs_unsynced, false);
        let next = self.active.next_offset();
        let fresh = Segment::create(&self.dir, next, now_ms)?;
        let mut old = mem::replace(&mut self.active, fresh);
        tracing::debug!(dir = %self.dir.display(), base_offset = next, "rolled segment");
        old.seal()?;
        let handles = old.file_handles()?;
        self.sealed.push(old);
        let dir = self.dir.clone();
        let handle = std::thread::Builder::new()
            .name("kraftwerk-fsync".into())
            .spawn(move || {
                for (path, file) in handles {
                    file.sync_data()
                        .map_err(|e| StorageError::io("fsync", &path, e))?;
                }
                if sync_epochs {
                    crate::epoch::checkpoint::sync(&dir)?;
                }
                sync_dir(&dir)
            })
            .map_err(|e| StorageError::io("spawn fsync thread", &self.dir, e))?;
        self.background_flushes.push(handle);
        Ok(())
    }

    /// Collects finished background fsyncs, returning the first failure.
    fn reap_background_flushes(&mut self) -> Result<(), StorageError> {
        let (done, running): (Vec<_>, Vec<_>) = mem::take(&mut self.background_flushes)
            .into_iter()
            .partition(|h| h.is_finished());
        self.background_flushes = running;
        join_all(done)
    }

    fn join_background_flushes(&mut self) -> Result<(), StorageError> {
        join_all(mem::take(&mut self.background_flushes))
    }

    /// Counts appended records and fsyncs once `flush_interval_messages` is reached.
    fn note_appended(&mut self, records: u64) -> Result<(), StorageError> {
        self.unflushed_messages = self.unflushed_messages.saturating_add(records);
        if self.unflushed_messages >= self.config.flush_interval_messages {
            self.flush()?;
        }
        Ok(())
    }
}

fn join_all(handles: Vec<JoinHandle<Result<(), StorageError>>>) -> Result<(), StorageError> {
    let mut first_error = None;
    for handle in handles {
        let result = handle.join().unwrap_or_else(|_| {
            Err(StorageError::io(
                "fsync",
                Path::new("<background thread>"),
                std::io::Error::other("fsync thread panicked"),
            ))
        });
        if let Err(e) = result {
            tracing::error!(error = %e, "background segment fsync failed");
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// SplitMix64's finaliser: spreads consecutive inputs over the whole range.
fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A random seed for this process (std's hasher keys are random per process).
pub(crate) fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(now_ms() as u64);
    h.finish()
}

/// Wall-clock milliseconds, for calls that are not given a time (follower appends, open).
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
