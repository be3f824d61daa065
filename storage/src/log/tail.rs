//! Where the last N bytes of a log begin, at segment granularity: state that is rebuilt from the recent tail
//! of a log (idempotent producers' last sequences) reads from here instead of from the log start.

use super::PartitionLog;

impl PartitionLog {
    /// The base offset of the oldest segment such that it and every newer segment together hold at least
    /// `bytes` (or the log start offset when the whole log is smaller).
    pub fn tail_offset_for_bytes(&self, bytes: u64) -> i64 {
        let mut total = self.active.size();
        let mut offset = self.active.base_offset();
        for seg in self.sealed.iter().rev() {
            if total >= bytes {
                break;
            }
            total += seg.size();
            offset = seg.base_offset();
        }
        offset.max(self.log_start_offset)
    }
}

#[cfg(test)]
mod tests {
    use crate::batch::build_batch;
    use crate::{LogConfig, PartitionLog};

    #[test]
    fn tail_offset_covers_the_requested_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            segment_bytes: 1024,
            ..LogConfig::default()
        };
        let mut log = PartitionLog::open(dir.path(), config).unwrap();
        let value = vec![7u8; 400];
        for _ in 0..10 {
            let batch = build_batch(0, 0, 0, &[(None, Some(value.as_slice()))]);
            log.append(&batch, 0).unwrap();
        }
        assert!(log.segment_count() > 3);
        // A tiny tail is the active segment; a huge one is the whole log.
        assert!(log.tail_offset_for_bytes(1) > 0);
        assert_eq!(log.tail_offset_for_bytes(u64::MAX), log.log_start_offset());
        let mid = log.tail_offset_for_bytes(1500);
        assert!(mid > 0 && mid < log.log_end_offset());
    }
}
