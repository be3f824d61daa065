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
    /// `maybeAssignEpochStartOffset`). Follows [`LeaderEpochCache::assign`]; written to the checkpoint at the
    /// next roll, flush or close (see [`Self::update_epochs_deferred`]).
    pub fn assign_leader_epoch(
        &mut self,
        epoch: i32,
        start_offset: i64,
    ) -> Result<(), StorageError> {
        self.update_epochs_deferred(|c| c.assign(epoch, start_offset))
    }

    /// Records the epochs of batches about to be written: an epoch newer than the latest cached one starts at
    /// that batch's base offset. The checkpoint file follows at the next roll, flush or close; after a crash
    /// before that, opening re-assigns the epochs of the recovered batches.
    pub(super) fn record_batch_epochs(
        &mut self,
        batches: impl IntoIterator<Item = (i32, i64)>,
    ) -> Result<(), StorageError> {
        self.update_epochs_deferred(|c| {
            let mut changed = false;
            for (epoch, base_offset) in batches {
                if c.latest_epoch().is_none_or(|latest| epoch > latest) {
                    changed |= c.assign(epoch, base_offset);
                }
            }
            changed
        })
    }

    /// Applies `f` to the cache and, if it says something changed, rewrites the checkpoint durably before
    /// returning. For truncations (from the end or the start): entries they remove could otherwise come back
    /// after a crash and describe data the log no longer has, which re-reading the batches cannot tell.
    pub(super) fn update_epochs(
        &mut self,
        f: impl FnOnce(&mut LeaderEpochCache) -> bool,
    ) -> Result<(), StorageError> {
        if f(&mut self.epochs) && self.deferred_dir.is_none() {
            self.epochs_on_disk = Some(checkpoint::write(&self.dir, self.epochs.entries())?);
            self.epochs_unsynced = false;
            self.epochs_unwritten = false;
        }
        Ok(())
    }

    /// Applies `f` to the cache (a new epoch) and, if it changed, leaves the checkpoint to be rewritten at the
    /// next roll, flush or close ([`Self::write_pending_leader_epochs`]), without an fsync, as Kafka does since
    /// KAFKA-15046: a new leader of thousands of partitions otherwise pays two fsyncs for each.
    ///
    /// Why the file may lag the cache while the process runs: every entry it lacks starts in the active segment
    /// (a roll writes them before the next segment takes data), and an open after a crash re-assigns the epochs
    /// of the active segment's batches ([`Self::load_leader_epochs`]). The one entry no batch may carry yet, a
    /// new leader's epoch at the log end, is trimmed at every open anyway (it starts at the log end). Writing
    /// it at once cost a follower's first append in a new epoch 10 µs against 3.3 µs for any other (3,000
    /// logs on a journaled ext4), paid by every partition a failover moves.
    ///
    /// The file is fsynced with the segment data it describes: at [`Self::flush`] (so at close), and at a roll by
    /// the roll's background fsync, with the sealed segment (not on the append path, where it waited behind every
    /// dirty page of the segment). Like the sealed segment's own data, an OS crash before that fsync finished can
    /// lose them; an unclean open verifies the active segment only.
    pub(super) fn update_epochs_deferred(
        &mut self,
        f: impl FnOnce(&mut LeaderEpochCache) -> bool,
    ) -> Result<(), StorageError> {
        // A log whose directory is not created yet keeps its epochs in memory; creating it writes them.
        if f(&mut self.epochs) && self.deferred_dir.is_none() {
            self.epochs_unwritten = true;
        }
        Ok(())
    }

    /// Writes the checkpoint if the cache changed since it was last written (see
    /// [`Self::update_epochs_deferred`]); its fsync stays deferred.
    pub(super) fn write_pending_leader_epochs(&mut self) -> Result<(), StorageError> {
        if self.epochs_unwritten && self.deferred_dir.is_none() {
            self.write_leader_epochs_deferred()?;
        }
        Ok(())
    }

    /// fsyncs the checkpoint if a deferred write is not yet durable; the caller fsyncs the directory after.
    pub(super) fn sync_leader_epochs(&mut self) -> Result<(), StorageError> {
        if self.epochs_unsynced {
            checkpoint::sync(&self.dir)?;
            self.epochs_unsynced = false;
        }
        Ok(())
    }

    /// Loads the checkpoint, trimmed to what the (possibly recovered) log still holds. `recovered_from` is the base
    /// offset of the first segment opening verified batch by batch (every segment of an uncleanly closed log from
    /// the active one on): the checkpoint may be stale there (its fsync is deferred, see
    /// [`Self::update_epochs_deferred`]), so its entries from that offset on are replaced by the epochs of the
    /// batches themselves, assigned as appends assign them. Without a valid checkpoint the cache is rebuilt from
    /// every batch header from the log start (a log written before this cache existed, or a file a crash left
    /// torn).
    pub(super) fn load_leader_epochs(
        &mut self,
        recovered_from: Option<i64>,
    ) -> Result<(), StorageError> {
        let (log_start, log_end) = (self.log_start_offset, self.log_end_offset());
        match checkpoint::read(&self.dir)? {
            Some((entries, on_disk)) => {
                let from_file = LeaderEpochCache::from_entries(entries.iter().copied());
                let mut trimmed = from_file.clone();
                trimmed.truncate_from_end(log_end);
                let end_trimmed = trimmed.clone();
                trimmed.truncate_from_start(log_start);
                // The file may be overwritten in place only while the cache's text is a prefix of it, so that what
                // a new epoch changes lies past the log end: entries dropped from the end are, a moving log start
                // or a reordered file change the first lines.
                let prefix_of_file =
                    from_file.entries() == entries.as_slice() && trimmed == end_trimmed;
                self.epochs_on_disk = on_disk.filter(|_| prefix_of_file);
                let mut cache = trimmed.clone();
                if let Some(from) = recovered_from {
                    cache.truncate_from_end(from);
                    self.assign_batch_epochs(&mut cache, from)?;
                    cache.truncate_from_start(log_start);
                }
                if cache != trimmed {
                    // The file missed epochs of the recovered batches (or named ones they do not have).
                    tracing::info!(dir = %self.dir.display(), from = ?recovered_from, entries = cache.entries().len(),
                        "repaired leader-epoch cache from the recovered batches");
                    self.epochs = cache;
                    // The repair may change entries before the active segment (recovery can verify older ones):
                    // written whole, not in place.
                    self.epochs_on_disk = None;
                    return self.write_leader_epochs_deferred();
                }
                // Otherwise trimmed in memory only, as Kafka's LogLoader does (`truncateFromEndAsyncFlush`):
                // entries beyond the log are trimmed again at every open until the next epoch change rewrites the
                // file, so the file needs no rewrite here. A leader of an empty log has its epoch at offset 0,
                // beyond the empty log: rewriting those took a broker with 10,000 partitions over 30 s to open
                // them.
                if trimmed != from_file {
                    tracing::debug!(dir = %self.dir.display(), log_start, log_end, "trimmed leader-epoch cache to the log");
                }
                self.epochs = trimmed;
            }
            None if log_start == log_end => {
                // Nothing to rebuild from (a new partition): the first append or leadership writes the file.
                self.epochs = LeaderEpochCache::default();
            }
            None => {
                let mut cache = LeaderEpochCache::default();
                self.assign_batch_epochs(&mut cache, i64::MIN)?;
                cache.truncate_from_start(log_start);
                tracing::info!(dir = %self.dir.display(), entries = cache.entries().len(), "rebuilt leader-epoch cache from the log");
                self.epochs = cache;
                self.write_leader_epochs_deferred()?;
            }
        }
        Ok(())
    }

    /// Writes the whole cache with a deferred fsync (the log's batches can rebuild it).
    pub(super) fn write_leader_epochs_deferred(&mut self) -> Result<(), StorageError> {
        self.epochs_on_disk = Some(checkpoint::write_deferred(
            &self.dir,
            self.epochs.entries(),
            self.epochs_on_disk,
        )?);
        self.epochs_unsynced = true;
        self.epochs_unwritten = false;
        Ok(())
    }

    /// Assigns to `cache` the epochs of the batches in the segments based at or after `from`, as appends do: a
    /// batch whose epoch is newer than the latest cached one starts it.
    fn assign_batch_epochs(
        &self,
        cache: &mut LeaderEpochCache,
        from: i64,
    ) -> Result<(), StorageError> {
        for segment in self.segments().filter(|s| s.base_offset() >= from) {
            segment.for_each_header(|h| {
                if cache
                    .latest_epoch()
                    .is_none_or(|l| h.partition_leader_epoch > l)
                {
                    cache.assign(h.partition_leader_epoch, h.base_offset);
                }
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::batch::build_batch;
    use crate::{LogConfig, PartitionLog};

    /// A new epoch leaves the checkpoint unwritten until the next roll (which writes it and hands it to its
    /// background fsync) or flush; a truncation writes it durably at once.
    #[test]
    fn deferred_checkpoint_is_written_and_synced_at_roll_and_flush() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            segment_bytes: 600,
            ..LogConfig::default()
        };
        let mut log = PartitionLog::open(dir.path(), config).unwrap();
        let value = [7u8; 200];
        let batch = build_batch(0, -1, 0, &[(None, Some(value.as_slice()))]);
        let checkpoint = dir.path().join("leader-epoch-checkpoint");
        log.append_with_leader_epoch(&batch, 0, 1).unwrap();
        assert!(log.epochs_unwritten, "a new epoch is not written at once");
        assert!(!checkpoint.exists());
        let segments = log.segment_count();
        while log.segment_count() == segments {
            log.append_with_leader_epoch(&batch, 0, 1).unwrap();
        }
        assert!(
            !log.epochs_unwritten && !log.epochs_unsynced,
            "a roll writes the checkpoint and hands it to its background fsync"
        );
        assert_eq!(std::fs::read_to_string(&checkpoint).unwrap(), "0\n1\n1 0\n");
        log.assign_leader_epoch(2, log.log_end_offset()).unwrap();
        assert!(log.epochs_unwritten);
        log.flush().unwrap();
        assert!(
            !log.epochs_unwritten && !log.epochs_unsynced,
            "a flush writes and fsyncs the checkpoint"
        );
        log.assign_leader_epoch(3, log.log_end_offset()).unwrap();
        log.truncate_to(1).unwrap();
        assert!(
            !log.epochs_unwritten && !log.epochs_unsynced,
            "a truncation writes it durably"
        );
        assert_eq!(std::fs::read_to_string(&checkpoint).unwrap(), "0\n1\n1 0\n");
    }

    fn checkpoint_inode(dir: &std::path::Path) -> u64 {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(dir.join("leader-epoch-checkpoint"))
            .unwrap()
            .ino()
    }

    /// New epochs overwrite the checkpoint in place, after a reopen too; a file whose text the cache does not
    /// extend (here one a reorder repaired) is replaced whole first.
    #[test]
    fn new_epochs_overwrite_the_checkpoint_in_place_across_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = PartitionLog::open(dir.path(), LogConfig::default()).unwrap();
        let batch = build_batch(0, -1, 0, &[(None, Some(b"v".as_slice()))]);
        log.append_with_leader_epoch(&batch, 0, 1).unwrap();
        log.flush().unwrap();
        let inode = checkpoint_inode(dir.path());
        log.assign_leader_epoch(2, log.log_end_offset()).unwrap();
        log.append_with_leader_epoch(&batch, 0, 2).unwrap();
        log.flush().unwrap();
        assert_eq!(checkpoint_inode(dir.path()), inode);
        log.close().unwrap();

        let mut log = PartitionLog::open(dir.path(), LogConfig::default()).unwrap();
        log.assign_leader_epoch(3, log.log_end_offset()).unwrap();
        log.flush().unwrap();
        assert_eq!(
            checkpoint_inode(dir.path()),
            inode,
            "in place after a reopen"
        );
        log.close().unwrap();
        let text = std::fs::read_to_string(dir.path().join("leader-epoch-checkpoint")).unwrap();
        assert_eq!(text, "0\n3\n1 0\n2 1\n3 2\n");

        // Epoch 4 listed before epoch 2 at the same start: the cache keeps epoch 2 there, so its text is no prefix
        // of the file's.
        std::fs::write(
            dir.path().join("leader-epoch-checkpoint"),
            "0\n3\n1 0\n4 1\n2 1\n",
        )
        .unwrap();
        let mut log = PartitionLog::open(dir.path(), LogConfig::default()).unwrap();
        let inode = checkpoint_inode(dir.path());
        log.assign_leader_epoch(5, log.log_end_offset()).unwrap();
        log.flush().unwrap();
        assert_ne!(checkpoint_inode(dir.path()), inode, "replaced whole");
        let text = std::fs::read_to_string(dir.path().join("leader-epoch-checkpoint")).unwrap();
        assert_eq!(text, "0\n3\n1 0\n2 1\n5 2\n");
    }
}
