//! Opening a partition log: finding segments, deciding what to recover, restoring the log
//! start offset.

use std::fs;
use std::path::Path;

use super::{now_ms, write_seed_files, PartitionLog, SeedFile};
use crate::checkpoint::{read_log_start_offset, write_log_start_offset};
use crate::epoch::LeaderEpochCache;
use crate::log_dir::{remove_legacy_partition_marker, LastShutdown};
use crate::segment::{
    parse_segment_name, segment_path, Segment, INDEX_EXT, LOG_EXT, TIME_INDEX_EXT,
};
use crate::{LogConfig, StorageError};

impl PartitionLog {
    /// Opens the log in `dir` (creating the directory if missing) as after an unclean shutdown: see
    /// [`Self::open_after`]. For a log nobody vouches for, such as one created while the broker runs.
    pub fn open(dir: &Path, config: LogConfig) -> Result<Self, StorageError> {
        Self::open_after(dir, config, LastShutdown::Unclean)
    }

    /// A new, empty log for a partition that has no directory in `dir` yet. Nothing is written until the log's
    /// first write (an append, a full truncation to restart it elsewhere, DeleteRecords): that creates the
    /// directory, the `seed` files in it, then the first segment, unless the owner makes them earlier, off its
    /// request path ([`Self::create_deferred_dir`]). Creating thousands of partitions then costs no inode on the
    /// path that creates them; after a restart a log never written is created this way again. A directory that does exist after all is opened as after an unclean shutdown, and so is a
    /// new one when the process cannot hold the placeholder segment handle.
    pub fn create_deferred(
        dir: &Path,
        config: LogConfig,
        seed: Vec<SeedFile>,
    ) -> Result<Self, StorageError> {
        let exists = dir
            .try_exists()
            .map_err(|e| StorageError::io("stat", dir, e))?;
        let deferred = if exists {
            None
        } else {
            Segment::deferred(dir, 0, now_ms())
        };
        let Some(active) = deferred else {
            let log = Self::open_after(dir, config, LastShutdown::Unclean)?;
            write_seed_files(dir, &seed)?;
            return Ok(log);
        };
        let mut log = Self::assemble(dir, config, Vec::new(), active, 0);
        log.deferred_dir = Some(seed);
        Ok(log)
    }

    /// Opens the log in `dir`, creating the directory if missing. `last` comes from the clean-shutdown marker of
    /// the log directory holding `dir` ([`crate::log_dir`]).
    ///
    /// After a clean shutdown only the batches after each segment's last index entry are verified. Otherwise the
    /// last segment is verified batch by batch (header and CRC), cut at the first torn or corrupt batch, and its
    /// indexes rebuilt; so is any segment whose index is missing or inconsistent, and segments after a cut one are
    /// dropped. The leader-epoch cache takes the epochs of every batch verified that way (its checkpoint is
    /// fsynced lazily, so it may be stale there).
    pub fn open_after(
        dir: &Path,
        config: LogConfig,
        last: LastShutdown,
    ) -> Result<Self, StorageError> {
        fs::create_dir_all(dir).map_err(|e| StorageError::io("create dir", dir, e))?;
        remove_legacy_partition_marker(dir)?;
        let clean = last == LastShutdown::Clean;
        // A cleaner swap interrupted by a crash is finished (or its uncommitted output removed) first.
        crate::cleaner::swap::recover(dir)?;
        let bases = list_segments(dir)?;
        let checkpoint = read_log_start_offset(dir)?;
        let interval = config.index_interval_bytes;
        let gaps = config.cleanup_policy.compact;
        let mut segments: Vec<Segment> = Vec::with_capacity(bases.len().max(1));
        // Base offset of the first segment verified batch by batch.
        let mut recovered_from: Option<i64> = None;
        for (i, &base) in bases.iter().enumerate() {
            let is_last = i + 1 == bases.len();
            let (mut segment, indexes_loaded) = Segment::open(dir, base)?;
            let mut cut = 0;
            if !indexes_loaded || (!clean && is_last) || !segment.load_tail(interval, gaps)? {
                tracing::info!(
                    dir = %dir.display(),
                    base_offset = base,
                    clean,
                    indexes_loaded,
                    "recovering segment"
                );
                cut = segment.recover(interval, gaps)?;
                recovered_from.get_or_insert(base);
            }
            if let Some(prev) = segments.last() {
                if base < prev.next_offset() {
                    tracing::warn!(
                        dir = %dir.display(),
                        base_offset = base,
                        previous_end = prev.next_offset(),
                        "segment overlaps its predecessor; dropping it and later segments"
                    );
                    drop(segment);
                    remove_segments(dir, bases.get(i..).unwrap_or_default())?;
                    break;
                }
            }
            segments.push(segment);
            if cut > 0 && !is_last {
                tracing::warn!(
                    dir = %dir.display(),
                    base_offset = base,
                    "dropping segments after a truncated one"
                );
                remove_segments(dir, bases.get(i + 1..).unwrap_or_default())?;
                break;
            }
        }
        let Some(active) = segments.pop() else {
            let start = checkpoint.unwrap_or(0);
            let active = Segment::create(dir, start, now_ms())?;
            let mut log = Self::assemble(dir, config, Vec::new(), active, start);
            log.load_leader_epochs(Some(start))?;
            return Ok(log);
        };
        let first_base = segments.first().unwrap_or(&active).base_offset();
        let log_start = checkpoint.map_or(first_base, |c| c.max(first_base));
        let mut log = Self::assemble(dir, config, segments, active, log_start);
        if log_start > log.log_end_offset() {
            tracing::warn!(
                dir = %dir.display(),
                log_start,
                log_end = log.log_end_offset(),
                "log start offset beyond recovered log end; starting empty there"
            );
            log.truncate_fully_and_start_at(log_start)?;
        } else if checkpoint.is_some_and(|c| c != log_start) {
            // Without a checkpoint the log starts at its first segment, which the next open finds again:
            // writing that down would cost two fsyncs per partition at every first start.
            write_log_start_offset(dir, log_start)?;
        }
        log.load_leader_epochs(recovered_from)?;
        Ok(log)
    }

    fn assemble(
        dir: &Path,
        config: LogConfig,
        sealed: Vec<Segment>,
        active: Segment,
        log_start_offset: i64,
    ) -> Self {
        Self {
            dir: dir.to_path_buf(),
            config,
            sealed,
            active,
            log_start_offset,
            epochs: LeaderEpochCache::default(),
            epochs_unsynced: false,
            epochs_unwritten: false,
            epochs_on_disk: None,
            scratch: Vec::new(),
            unflushed_messages: 0,
            last_flush_ms: super::now_ms(),
            jitter_seed: super::random_seed(),
            background_flushes: Vec::new(),
            cleaner_truncated_to: None,
            tombstone_horizon: None,
            pending_swap: None,
            deferred_dir: None,
        }
    }
}

/// Base offsets of the `.log` files in `dir`, ascending. Index files without a log (left by a
/// crash during deletion) are removed.
fn list_segments(dir: &Path) -> Result<Vec<i64>, StorageError> {
    let mut logs = Vec::new();
    let mut indexes = Vec::new();
    let entries = fs::read_dir(dir).map_err(|e| StorageError::io("list", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| StorageError::io("list", dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(base) = parse_segment_name(name, LOG_EXT) {
            logs.push(base);
        } else if let Some(base) =
            parse_segment_name(name, INDEX_EXT).or_else(|| parse_segment_name(name, TIME_INDEX_EXT))
        {
            indexes.push((base, entry.path()));
        }
    }
    logs.sort_unstable();
    for (base, path) in indexes {
        if logs.binary_search(&base).is_err() {
            tracing::info!(path = %path.display(), "removing orphan index file");
            fs::remove_file(&path).map_err(|e| StorageError::io("remove", &path, e))?;
        }
    }
    Ok(logs)
}

fn remove_segments(dir: &Path, bases: &[i64]) -> Result<(), StorageError> {
    for &base in bases {
        for ext in [LOG_EXT, INDEX_EXT, TIME_INDEX_EXT] {
            let path = segment_path(dir, base, ext);
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(StorageError::io("remove", &path, e)),
            }
        }
    }
    Ok(())
}
