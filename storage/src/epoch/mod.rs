//! The leader-epoch cache: for each leader epoch that wrote to a partition, the offset of its first record.
//!
//! Replication needs it to answer "where did epoch N end?" (OffsetForLeaderEpoch, KIP-101/KIP-279): a follower
//! that comes back after a leader change truncates to the end of its last epoch as the new leader saw it, instead
//! of to its high watermark, so no acknowledged record is lost and no diverging record survives. Consumers ask
//! the same question to detect log truncation after a leader change.
//!
//! [`LeaderEpochCache`] is pure data with Kafka's `LeaderEpochFileCache` rules; [`checkpoint`] is its file
//! (`leader-epoch-checkpoint`, Kafka's text format); `PartitionLog` keeps the two in step with the log.

pub(crate) mod checkpoint;

/// `UNDEFINED_EPOCH` of the OffsetForLeaderEpoch response: no epoch is known.
pub const UNDEFINED_EPOCH: i32 = -1;
/// `UNDEFINED_EPOCH_OFFSET` of the OffsetForLeaderEpoch response: no end offset is known.
pub const UNDEFINED_EPOCH_OFFSET: i64 = -1;

/// One leader epoch and the offset of the first record written in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEntry {
    pub epoch: i32,
    pub start_offset: i64,
}

/// The answer to "where does this epoch end", as OffsetForLeaderEpoch returns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEndOffset {
    /// The largest cached epoch <= the requested one (or the requested one itself, see
    /// [`LeaderEpochCache::end_offset_for`]); [`UNDEFINED_EPOCH`] when nothing is known.
    pub leader_epoch: i32,
    /// The first offset not written in that epoch; [`UNDEFINED_EPOCH_OFFSET`] when nothing is known.
    pub end_offset: i64,
}

impl EpochEndOffset {
    /// Nothing is known about the requested epoch.
    pub const UNDEFINED: Self = Self {
        leader_epoch: UNDEFINED_EPOCH,
        end_offset: UNDEFINED_EPOCH_OFFSET,
    };
}

/// Epoch start offsets, both strictly increasing from oldest to newest.
///
/// Operations return whether they changed anything, so the owner rewrites the checkpoint only then.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaderEpochCache {
    entries: Vec<EpochEntry>,
}

impl LeaderEpochCache {
    /// A cache holding `entries` after applying each with [`assign`](Self::assign), so a file whose entries are
    /// out of order still yields a monotonic cache (Kafka loads its checkpoint the same way).
    pub fn from_entries(entries: impl IntoIterator<Item = EpochEntry>) -> Self {
        let mut cache = Self::default();
        for e in entries {
            cache.assign(e.epoch, e.start_offset);
        }
        cache
    }

    pub fn entries(&self) -> &[EpochEntry] {
        &self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn latest(&self) -> Option<EpochEntry> {
        self.entries.last().copied()
    }

    pub fn latest_epoch(&self) -> Option<i32> {
        self.latest().map(|e| e.epoch)
    }

    pub fn earliest(&self) -> Option<EpochEntry> {
        self.entries.first().copied()
    }

    /// Records that `epoch` starts at `start_offset`. Negative values are ignored (a batch that was never
    /// stamped by a leader carries epoch -1). Nothing changes if `epoch` is already the latest and starts no
    /// later; otherwise trailing entries that would break monotonicity (an epoch at or above `epoch`, or a start
    /// offset at or past `start_offset`) are removed first, as Kafka does: such entries describe data that a new
    /// leader's log has replaced.
    pub fn assign(&mut self, epoch: i32, start_offset: i64) -> bool {
        if epoch < 0 || start_offset < 0 {
            return false;
        }
        if let Some(latest) = self.latest() {
            if latest.epoch == epoch && latest.start_offset <= start_offset {
                return false;
            }
        }
        while let Some(last) = self.entries.last() {
            if last.epoch >= epoch || last.start_offset >= start_offset {
                if last.start_offset != start_offset {
                    tracing::warn!(
                        removed_epoch = last.epoch,
                        removed_start = last.start_offset,
                        epoch,
                        start_offset,
                        "new leader epoch entry truncates a conflicting one"
                    );
                }
                self.entries.pop();
            } else {
                break;
            }
        }
        self.entries.push(EpochEntry {
            epoch,
            start_offset,
        });
        true
    }

    /// Removes every entry starting at or after `end_offset` (the log was truncated there).
    pub fn truncate_from_end(&mut self, end_offset: i64) -> bool {
        let keep = self
            .entries
            .partition_point(|e| e.start_offset < end_offset);
        let changed = keep < self.entries.len();
        self.entries.truncate(keep);
        changed
    }

    /// Forgets epochs wholly below `start_offset` (the log start moved there): every entry starting at or before
    /// it is removed, and the newest of those comes back starting at `start_offset`, since that epoch still
    /// covers the new first record.
    pub fn truncate_from_start(&mut self, start_offset: i64) -> bool {
        let removed = self
            .entries
            .partition_point(|e| e.start_offset <= start_offset);
        let Some(covering) = removed.checked_sub(1).and_then(|i| self.entries.get(i)) else {
            return false;
        };
        let moved = EpochEntry {
            epoch: covering.epoch,
            start_offset,
        };
        if removed == 1 && *covering == moved {
            return false;
        }
        self.entries.drain(..removed);
        self.entries.insert(0, moved);
        true
    }

    /// Empties the cache (the whole log was dropped).
    pub fn clear(&mut self) -> bool {
        let changed = !self.entries.is_empty();
        self.entries.clear();
        changed
    }

    /// Where `requested` ended, with Kafka's semantics (`LeaderEpochFileCache.endOffsetFor`):
    ///
    /// - [`UNDEFINED_EPOCH`] requested, an empty cache, or an epoch above the latest: [`EpochEndOffset::UNDEFINED`];
    /// - the latest epoch: (that epoch, `log_end_offset`), since it is still being written;
    /// - an epoch between cached ones: (the largest cached epoch <= requested, start offset of the next larger);
    /// - an epoch below the earliest cached: (the requested epoch, the earliest entry's start offset). Since
    ///   KIP-279 Kafka answers this way rather than UNDEFINED: the older epochs' data is gone with the log start,
    ///   and the earliest retained start is where a follower or consumer can safely continue.
    pub fn end_offset_for(&self, requested: i32, log_end_offset: i64) -> EpochEndOffset {
        if requested == UNDEFINED_EPOCH {
            return EpochEndOffset::UNDEFINED;
        }
        let Some(latest) = self.latest() else {
            return EpochEndOffset::UNDEFINED;
        };
        if latest.epoch == requested {
            return EpochEndOffset {
                leader_epoch: requested,
                end_offset: log_end_offset,
            };
        }
        let higher = self.entries.partition_point(|e| e.epoch <= requested);
        let Some(next) = self.entries.get(higher) else {
            return EpochEndOffset::UNDEFINED;
        };
        match higher.checked_sub(1).and_then(|i| self.entries.get(i)) {
            Some(floor) => EpochEndOffset {
                leader_epoch: floor.epoch,
                end_offset: next.start_offset,
            },
            None => EpochEndOffset {
                leader_epoch: requested,
                end_offset: next.start_offset,
            },
        }
    }

    /// The epoch that wrote `offset`: that of the last entry starting at or before it.
    pub fn epoch_for_offset(&self, offset: i64) -> Option<i32> {
        let after = self.entries.partition_point(|e| e.start_offset <= offset);
        after
            .checked_sub(1)
            .and_then(|i| self.entries.get(i))
            .map(|e| e.epoch)
    }
}

#[cfg(test)]
mod tests;
