//! The partition's leader-epoch cache, kept in step with the log: appends record new epochs, truncation and a
//! moving log start trim it, and opening the log loads the checkpoint or rebuilds it from batch headers.

use super::PartitionLog;
use crate::epoch::{checkpoint, EpochEndOffset, EpochEntry, LeaderEpochCache};
use crate::StorageError;

impl PartitionLog {
    /// Where leader epoch `epoch` ended in this log (OffsetForLeaderEpoch), with Kafka's semantics: see
    /// [`LeaderEpochCache::end_offset_for`]. The latest epoch ends at the log end offset.
    pub fn end_offset_for(&self, epoch: i32) -> EpochEndOffset {
        self.epochs.end_offset_for(epoch, self.log_end_offset())
    }

    /// The newest leader epoch that wrote (or was assigned to) this log.
    pub fn latest_leader_epoch(&self) -> Option<i32> {
        self.epochs.latest_epoch()
    }

    /// Every cached (epoch, start offset), oldest first.
    pub fn leader_epoch_entries(&self) -> &[EpochEntry] {
        self.epochs.entries()
    }

    /// Records that `epoch` starts at `start_offset` even before it writes anything, as a new leader does with
    /// its log end offset, so OffsetForLeaderEpoch for the current epoch names it (Kafka's
    /// `maybeAssignEpochStartOffset`). Follows [`LeaderEpochCache::assign`]; persisted when it changes.
    pub fn assign_leader_epoch(
        &mut self,
        epoch: i32,
        start_offset: i64,
    ) -> Result<(), StorageError> {
        self.update_epochs(|c| c.assign(epoch, start_offset))
    }

    /// Records the epochs of batches about to be written: an epoch newer than the latest cached one starts at
    /// that batch's base offset. Called before the bytes are written, so the checkpoint is never behind the
    /// data (a crash in between leaves an entry at the log end, which opening trims).
    pub(super) fn record_batch_epochs(
        &mut self,
        batches: impl IntoIterator<Item = (i32, i64)>,
    ) -> Result<(), StorageError> {
        self.update_epochs(|c| {
            let mut changed = false;
            for (epoch, base_offset) in batches {
                if c.latest_epoch().is_none_or(|latest| epoch > latest) {
                    changed |= c.assign(epoch, base_offset);
                }
            }
            changed
        })
    }

    /// Applies `f` to the cache and rewrites the checkpoint if it says something changed.
    pub(super) fn update_epochs(
        &mut self,
        f: impl FnOnce(&mut LeaderEpochCache) -> bool,
    ) -> Result<(), StorageError> {
        if f(&mut self.epochs) {
            checkpoint::write(&self.dir, self.epochs.entries())?;
        }
        Ok(())
    }

    /// Loads the checkpoint, trimmed to what the (possibly recovered) log still holds; without a valid
    /// checkpoint, rebuilds the cache from every batch header from the log start and writes it (once: a log
    /// written before this cache existed is scanned on its first open only).
    pub(super) fn load_leader_epochs(&mut self) -> Result<(), StorageError> {
        let (log_start, log_end) = (self.log_start_offset, self.log_end_offset());
        match checkpoint::read(&self.dir)? {
            Some(entries) => {
                let mut cache = LeaderEpochCache::from_entries(entries);
                let mut changed = cache.truncate_from_end(log_end);
                changed |= cache.truncate_from_start(log_start);
                // Trimmed in memory only, as Kafka's LogLoader does (`truncateFromEndAsyncFlush`): entries
                // beyond the log are trimmed again at every open until the next epoch change rewrites the
                // file, so the file needs no rewrite (two fsyncs) here. A leader of an empty log has its
                // epoch at offset 0, beyond the empty log: rewriting those took a broker with 10,000
                // partitions over 30 s to open them.
                if changed {
                    tracing::debug!(dir = %self.dir.display(), log_start, log_end, "trimmed leader-epoch cache to the log");
                }
                self.epochs = cache;
            }
            None if log_start == log_end => {
                // Nothing to rebuild from (a new partition): the first append or leadership writes the file.
                self.epochs = LeaderEpochCache::default();
            }
            None => {
                let mut cache = LeaderEpochCache::default();
                for segment in self.segments() {
                    segment.for_each_header(|h| {
                        if cache
                            .latest_epoch()
                            .is_none_or(|l| h.partition_leader_epoch > l)
                        {
                            cache.assign(h.partition_leader_epoch, h.base_offset);
                        }
                    })?;
                }
                cache.truncate_from_start(log_start);
                tracing::info!(dir = %self.dir.display(), entries = cache.entries().len(), "rebuilt leader-epoch cache from the log");
                self.epochs = cache;
                checkpoint::write(&self.dir, self.epochs.entries())?;
            }
        }
        Ok(())
    }
}
