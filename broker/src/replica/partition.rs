//! One hosted partition: its log behind a mutex, plus the replication state the handlers read.
//!
//! The log lock is held only for the duration of one synchronous append or read (page-cache writes and
//! preads), never across an await, so a slow consumer cannot stall producers.

use std::sync::atomic::{AtomicI32, AtomicI64, Ordering};

use parking_lot::Mutex;
use uuid::Uuid;

use kraftwerk_storage::{AppendResult, LogConfig, PartitionLog, ReadResult, StorageError};

pub struct Partition {
    pub topic: String,
    pub topic_id: Uuid,
    pub index: i32,
    log: Mutex<PartitionLog>,
    leader_epoch: AtomicI32,
    /// Offsets below this are replicated to every in-sync replica and visible to consumers. With one replica
    /// it follows the log end offset at once; the replication issue makes it wait for followers.
    high_watermark: AtomicI64,
}

impl Partition {
    pub fn new(
        topic: String,
        topic_id: Uuid,
        index: i32,
        log: PartitionLog,
        leader_epoch: i32,
    ) -> Self {
        let hw = log.log_end_offset();
        Partition {
            topic,
            topic_id,
            index,
            log: Mutex::new(log),
            leader_epoch: AtomicI32::new(leader_epoch),
            high_watermark: AtomicI64::new(hw),
        }
    }

    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch.load(Ordering::Acquire)
    }

    pub fn set_leader_epoch(&self, epoch: i32) {
        self.leader_epoch.store(epoch, Ordering::Release);
    }

    pub fn high_watermark(&self) -> i64 {
        self.high_watermark.load(Ordering::Acquire)
    }

    /// Appends producer batches as leader; with a single replica the high watermark advances immediately.
    pub fn append_as_leader(
        &self,
        batches: &[u8],
        now_ms: i64,
    ) -> Result<AppendResult, StorageError> {
        let mut log = self.log.lock();
        let result = log.append(batches, now_ms)?;
        self.high_watermark
            .store(log.log_end_offset(), Ordering::Release);
        Ok(result)
    }

    /// Reads whole batches from `offset`, never past the high watermark (uncommitted data is invisible).
    pub fn read(&self, offset: i64, max_bytes: usize) -> Result<ReadResult, StorageError> {
        let hw = self.high_watermark();
        self.log.lock().read(offset, max_bytes, Some(hw))
    }

    pub fn log_start_offset(&self) -> i64 {
        self.log.lock().log_start_offset()
    }

    pub fn log_end_offset(&self) -> i64 {
        self.log.lock().log_end_offset()
    }

    pub fn size_in_bytes(&self) -> u64 {
        self.log.lock().size_in_bytes()
    }

    pub fn offset_for_timestamp(&self, ts: i64) -> Result<Option<(i64, i64)>, StorageError> {
        self.log.lock().offset_for_timestamp(ts)
    }

    pub fn max_timestamp(&self) -> Option<(i64, i64)> {
        self.log.lock().max_timestamp()
    }

    pub fn delete_records_before(&self, offset: i64) -> Result<i64, StorageError> {
        self.log.lock().delete_records_before(offset)
    }

    pub fn enforce_retention(&self, now_ms: i64) -> Result<usize, StorageError> {
        self.log.lock().enforce_retention(now_ms)
    }

    pub fn update_config(&self, config: LogConfig) {
        self.log.lock().update_config(config);
    }

    pub fn flush(&self) -> Result<(), StorageError> {
        self.log.lock().flush()
    }

    /// Gives the log back for closing or deleting; the partition must no longer be shared.
    pub fn into_log(self) -> PartitionLog {
        self.log.into_inner()
    }
}
