//! One hosted partition: its log behind a mutex, plus the replication state the handlers read.
//!
//! The log lock is held only for the duration of one synchronous append or read (page-cache writes and
//! preads), never across an await, so a slow consumer cannot stall producers.

use std::sync::atomic::{AtomicI32, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use uuid::Uuid;

use kraftwerk_storage::batch::BatchHeader;
use kraftwerk_storage::{
    AppendResult, EpochEndOffset, LogConfig, PartitionLog, ReadResult, StorageError,
};

use super::producer_state::{ProducerBatch, ProducerStateTable, SequenceCheck, NO_PRODUCER_ID};
use super::purgatory::{Waiter, WatchList};

/// Why a leader append was refused.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("produce requests v3+ carry exactly one record batch per partition")]
    MultipleBatches,
    #[error("producer {producer_id} epoch {epoch} is older than the current epoch")]
    InvalidProducerEpoch { producer_id: i64, epoch: i16 },
    #[error("producer {producer_id}: out of order sequence number {got}, expected {expected}")]
    OutOfOrderSequence {
        producer_id: i64,
        expected: i32,
        got: i32,
    },
}

/// What a leader append did.
#[derive(Debug)]
pub enum Appended {
    Written(AppendResult),
    /// A retried idempotent batch already in the log: acknowledged with its original offsets.
    Duplicate {
        base_offset: i64,
        log_start_offset: i64,
    },
}

/// The log and the producer state that must change together with it.
struct LogState {
    log: PartitionLog,
    producers: ProducerStateTable,
}

pub struct Partition {
    pub topic: String,
    pub topic_id: Uuid,
    pub index: i32,
    log: Mutex<LogState>,
    leader_epoch: AtomicI32,
    /// Offsets below this are replicated to every in-sync replica and visible to consumers. With one replica
    /// it follows the log end offset at once; the replication issue makes it wait for followers.
    high_watermark: AtomicI64,
    /// Requests waiting for this partition to change (long-polling fetches, acks=all produces); woken by
    /// appends and high-watermark advances here only.
    watchers: WatchList,
}

impl Partition {
    pub fn new(
        topic: String,
        topic_id: Uuid,
        index: i32,
        log: PartitionLog,
        leader_epoch: i32,
        is_leader: bool,
    ) -> Self {
        let hw = log.log_end_offset();
        let mut log = log;
        if is_leader {
            start_leader_epoch(&mut log, leader_epoch);
        }
        Partition {
            topic,
            topic_id,
            index,
            log: Mutex::new(LogState {
                producers: rebuild_producer_state(&log),
                log,
            }),
            leader_epoch: AtomicI32::new(leader_epoch),
            high_watermark: AtomicI64::new(hw),
            watchers: WatchList::default(),
        }
    }

    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch.load(Ordering::Acquire)
    }

    /// Takes the partition's leader epoch from a new metadata image. As leader, a new epoch is also recorded in
    /// the log's leader-epoch cache at the log end offset (Kafka's `makeLeader`), so OffsetForLeaderEpoch for the
    /// current epoch names it even before it writes; under the log lock, so no append stamped with the new epoch
    /// can precede that entry.
    pub fn set_leadership(&self, epoch: i32, is_leader: bool) {
        let mut state = self.log.lock();
        self.leader_epoch.store(epoch, Ordering::Release);
        if is_leader {
            start_leader_epoch(&mut state.log, epoch);
        }
    }

    /// Where `epoch` ended in this replica's log (see [`PartitionLog::end_offset_for`]).
    pub fn end_offset_for(&self, epoch: i32) -> EpochEndOffset {
        self.log.lock().log.end_offset_for(epoch)
    }

    pub fn high_watermark(&self) -> i64 {
        self.high_watermark.load(Ordering::Acquire)
    }

    /// Appends one producer request's records as leader, after the idempotence check; with a single replica the
    /// high watermark advances immediately.
    pub fn append_as_leader(&self, batches: &[u8], now_ms: i64) -> Result<Appended, AppendError> {
        let header = BatchHeader::parse(batches)
            .map_err(|e| AppendError::Storage(StorageError::CorruptMessage(e)))?;
        let size = header
            .total_size()
            .map_err(|e| AppendError::Storage(StorageError::CorruptMessage(e)))?;
        if size < batches.len() {
            return Err(AppendError::MultipleBatches);
        }
        let producer =
            (header.producer_id != NO_PRODUCER_ID && header.base_sequence >= 0).then(|| {
                ProducerBatch::new(
                    header.producer_id,
                    header.producer_epoch,
                    header.base_sequence,
                    header.last_offset_delta,
                )
            });
        let mut state = self.log.lock();
        if let Some(pb) = &producer {
            match state.producers.check(pb) {
                SequenceCheck::Append => {}
                SequenceCheck::Duplicate { first_offset, .. } => {
                    return Ok(Appended::Duplicate {
                        base_offset: first_offset,
                        log_start_offset: state.log.log_start_offset(),
                    })
                }
                SequenceCheck::InvalidProducerEpoch => {
                    return Err(AppendError::InvalidProducerEpoch {
                        producer_id: pb.producer_id,
                        epoch: pb.epoch,
                    })
                }
                SequenceCheck::OutOfOrderSequence { expected, got } => {
                    return Err(AppendError::OutOfOrderSequence {
                        producer_id: pb.producer_id,
                        expected,
                        got,
                    })
                }
            }
        }
        let result = state
            .log
            .append_with_leader_epoch(batches, now_ms, self.leader_epoch())?;
        if let Some(pb) = &producer {
            state
                .producers
                .record(pb, result.base_offset, result.last_offset);
        }
        let leo = state.log.log_end_offset();
        // Stored under the log lock so the high watermark never passes what a concurrent truncation left;
        // waiters are woken after it is released.
        let advanced = self.high_watermark.fetch_max(leo, Ordering::AcqRel) < leo;
        drop(state);
        if advanced {
            self.watchers.wake_all();
        }
        Ok(Appended::Written(result))
    }

    /// Registers `waiter` to be woken by this partition's appends and high-watermark advances until it is
    /// dropped (see [`super::purgatory`]).
    pub fn watch(&self, waiter: &Arc<Waiter>) {
        self.watchers.watch(waiter);
    }

    /// Raises the high watermark to `offset` (never lowers it) and wakes the waiters if it moved. Replication
    /// calls this as followers catch up; with one replica, leader appends do it.
    pub fn advance_high_watermark(&self, offset: i64) -> bool {
        let advanced = self.high_watermark.fetch_max(offset, Ordering::AcqRel) < offset;
        if advanced {
            self.watchers.wake_all();
        }
        advanced
    }

    /// Waits until the high watermark reaches `offset` (everything before it is replicated to the ISR), as an
    /// acks=all produce does for its last offset + 1; `false` if `timeout` passes first. Woken only by this
    /// partition's events.
    pub async fn wait_for_high_watermark(&self, offset: i64, timeout: Duration) -> bool {
        if self.high_watermark() >= offset {
            return true;
        }
        let waiter = Waiter::new();
        self.watch(&waiter);
        let deadline = tokio::time::Instant::now() + timeout;
        while self.high_watermark() < offset {
            if tokio::time::timeout_at(deadline, waiter.woken())
                .await
                .is_err()
            {
                return self.high_watermark() >= offset;
            }
        }
        true
    }

    /// Idempotent producers with state on this partition: (id, epoch, last sequence, last offset).
    pub fn producers(&self) -> Vec<(i64, i16, i32, i64)> {
        self.log.lock().producers.producers().collect()
    }

    /// Reads whole batches from `offset`, never past the high watermark (uncommitted data is invisible).
    pub fn read(&self, offset: i64, max_bytes: usize) -> Result<ReadResult, StorageError> {
        let hw = self.high_watermark();
        self.log.lock().log.read(offset, max_bytes, Some(hw))
    }

    /// Visits every committed batch from `from` (see [`PartitionLog::scan_batches`]).
    pub fn scan_batches<F>(&self, from: i64, f: F) -> Result<(), StorageError>
    where
        F: FnMut(&BatchHeader, &[u8]),
    {
        let hw = self.high_watermark();
        self.log.lock().log.scan_batches(from, hw, f)
    }

    pub fn log_start_offset(&self) -> i64 {
        self.log.lock().log.log_start_offset()
    }

    pub fn log_end_offset(&self) -> i64 {
        self.log.lock().log.log_end_offset()
    }

    /// The partition's directory (which data dir it lives in, for DescribeLogDirs).
    pub fn dir(&self) -> std::path::PathBuf {
        self.log.lock().log.dir().to_path_buf()
    }

    pub fn size_in_bytes(&self) -> u64 {
        self.log.lock().log.size_in_bytes()
    }

    pub fn offset_for_timestamp(&self, ts: i64) -> Result<Option<(i64, i64)>, StorageError> {
        self.log.lock().log.offset_for_timestamp(ts)
    }

    pub fn max_timestamp(&self) -> Option<(i64, i64)> {
        self.log.lock().log.max_timestamp()
    }

    pub fn delete_records_before(&self, offset: i64) -> Result<i64, StorageError> {
        self.log.lock().log.delete_records_before(offset)
    }

    pub fn enforce_retention(&self, now_ms: i64) -> Result<usize, StorageError> {
        self.log.lock().log.enforce_retention(now_ms)
    }

    pub fn update_config(&self, config: LogConfig) {
        self.log.lock().log.update_config(config);
    }

    pub fn flush(&self) -> Result<(), StorageError> {
        self.log.lock().log.flush()
    }

    /// Gives the log back for closing or deleting; the partition must no longer be shared.
    pub fn into_log(self) -> PartitionLog {
        self.log.into_inner().log
    }
}

/// How much of the log tail is scanned on open to rebuild producer state. Retries that must be recognised as
/// duplicates are recent (a producer retries within its delivery timeout), so the tail is enough; a producer
/// whose last batch is older starts over as unknown, which Kafka also allows.
const PRODUCER_SCAN_BYTES: u64 = 64 * 1024 * 1024;

/// Records `epoch` as starting at the log end unless the cache already has it (or a newer one). A failure to
/// write the checkpoint is logged, not fatal: the in-memory cache is updated, and the next open rebuilds or
/// trims the file against the log.
fn start_leader_epoch(log: &mut PartitionLog, epoch: i32) {
    if log
        .latest_leader_epoch()
        .is_some_and(|latest| latest >= epoch)
    {
        return;
    }
    let leo = log.log_end_offset();
    if let Err(e) = log.assign_leader_epoch(epoch, leo) {
        tracing::error!(dir = %log.dir().display(), epoch, error = %e, "cannot record the new leader epoch");
    }
}

fn rebuild_producer_state(log: &PartitionLog) -> ProducerStateTable {
    let mut table = ProducerStateTable::new();
    let from = log.tail_offset_for_bytes(PRODUCER_SCAN_BYTES);
    let scanned = log.scan_batches(from, i64::MAX, |h, _| {
        if h.producer_id != NO_PRODUCER_ID && h.base_sequence >= 0 {
            let pb = ProducerBatch::new(
                h.producer_id,
                h.producer_epoch,
                h.base_sequence,
                h.last_offset_delta,
            );
            table.record(&pb, h.base_offset, h.last_offset());
        }
    });
    if let Err(e) = scanned {
        tracing::warn!(error = %e, "cannot read the log tail to rebuild producer state");
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use kraftwerk_storage::batch::build_batch;

    fn partition(dir: &std::path::Path, epoch: i32, is_leader: bool) -> Partition {
        let log = PartitionLog::open(dir, LogConfig::default()).unwrap();
        Partition::new("t".into(), Uuid::nil(), 0, log, epoch, is_leader)
    }

    fn end(leader_epoch: i32, end_offset: i64) -> EpochEndOffset {
        EpochEndOffset {
            leader_epoch,
            end_offset,
        }
    }

    #[test]
    fn a_new_leader_epoch_starts_at_the_log_end() {
        let dir = tempfile::tempdir().unwrap();
        let p = partition(dir.path(), 3, true);
        assert_eq!(p.end_offset_for(3), end(3, 0));
        let batch = build_batch(0, -1, 0, &[(None, Some(b"v".as_slice()))]);
        p.append_as_leader(&batch, 0).unwrap();
        p.append_as_leader(&batch, 0).unwrap();
        // A follower of a newer epoch records nothing; leading it does, at the log end.
        p.set_leadership(4, false);
        assert_eq!(p.end_offset_for(3), end(3, 2));
        assert_eq!(p.end_offset_for(4), EpochEndOffset::UNDEFINED);
        p.set_leadership(5, true);
        assert_eq!(p.end_offset_for(3), end(3, 2));
        assert_eq!(p.end_offset_for(4), end(3, 2));
        assert_eq!(p.end_offset_for(5), end(5, 2));
        p.append_as_leader(&batch, 0).unwrap();
        assert_eq!(p.end_offset_for(5), end(5, 3));
        // The same epoch again (every reconcile) changes nothing.
        p.set_leadership(5, true);
        assert_eq!(p.end_offset_for(3), end(3, 2));
    }

    fn one_record() -> Vec<u8> {
        build_batch(0, -1, 0, &[(None, Some(b"v".as_slice()))])
    }

    #[tokio::test]
    async fn high_watermark_wait_completes_on_append_or_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let p = std::sync::Arc::new(partition(dir.path(), 0, true));
        assert!(p.wait_for_high_watermark(0, Duration::ZERO).await);
        assert!(
            !p.wait_for_high_watermark(1, Duration::from_millis(30))
                .await
        );
        let waiting = {
            let p = p.clone();
            tokio::spawn(async move { p.wait_for_high_watermark(2, Duration::from_secs(10)).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        p.append_as_leader(&one_record(), 0).unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(
            !waiting.is_finished(),
            "offset 2 is not yet below the high watermark"
        );
        p.append_as_leader(&one_record(), 0).unwrap();
        let done = tokio::time::timeout(Duration::from_secs(5), waiting).await;
        assert!(matches!(done, Ok(Ok(true))));
    }

    #[tokio::test]
    async fn advancing_the_high_watermark_wakes_waiters_and_never_lowers_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = std::sync::Arc::new(partition(dir.path(), 0, true));
        let waiting = {
            let p = p.clone();
            tokio::spawn(async move { p.wait_for_high_watermark(7, Duration::from_secs(10)).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(p.advance_high_watermark(7));
        assert!(!p.advance_high_watermark(3));
        assert_eq!(p.high_watermark(), 7);
        let done = tokio::time::timeout(Duration::from_secs(5), waiting).await;
        assert!(matches!(done, Ok(Ok(true))));
    }

    #[tokio::test]
    async fn appends_wake_only_the_waiters_of_their_partition() {
        let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (a, b) = (partition(da.path(), 0, true), partition(db.path(), 0, true));
        let on_a = Waiter::new();
        a.watch(&on_a);
        let on_both = Waiter::new();
        a.watch(&on_both);
        b.watch(&on_both);
        b.append_as_leader(&one_record(), 0).unwrap();
        let short = Duration::from_millis(30);
        assert!(tokio::time::timeout(short, on_a.woken()).await.is_err());
        assert!(tokio::time::timeout(short, on_both.woken()).await.is_ok());
        a.append_as_leader(&one_record(), 0).unwrap();
        assert!(tokio::time::timeout(short, on_a.woken()).await.is_ok());
        assert!(tokio::time::timeout(short, on_both.woken()).await.is_ok());
    }
}
