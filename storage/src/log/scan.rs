//! Walking every batch of a log range in order, for state rebuilt from the log on start (idempotent producer
//! state, group metadata in `__consumer_offsets`), so callers never re-implement chunked reads.

use super::PartitionLog;
use crate::batch::BatchHeader;
use crate::StorageError;

/// How much one read of the scan fetches.
const SCAN_CHUNK_BYTES: usize = 4 * 1024 * 1024;

impl PartitionLog {
    /// Calls `f` with the header and bytes of every batch holding offsets in `[from, upper_bound)`, in offset
    /// order. Stops early at a batch that does not parse (recovery has already truncated torn tails, so that
    /// only happens on a concurrent truncation).
    pub fn scan_batches<F>(&self, from: i64, upper_bound: i64, mut f: F) -> Result<(), StorageError>
    where
        F: FnMut(&BatchHeader, &[u8]),
    {
        let mut offset = from.max(self.log_start_offset());
        let end = upper_bound.min(self.log_end_offset());
        while offset < end {
            let chunk = self.read(offset, SCAN_CHUNK_BYTES, Some(end))?.records;
            let mut pos = 0usize;
            let mut next = offset;
            while let Some(rest) = chunk.get(pos..).filter(|r| !r.is_empty()) {
                let Ok(h) = BatchHeader::parse(rest) else {
                    break;
                };
                let Ok(size) = h.total_size() else { break };
                let Some(batch) = rest.get(..size) else { break };
                f(&h, batch);
                next = h.next_offset();
                pos += size;
            }
            if next <= offset {
                break;
            }
            offset = next;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::batch::build_batch;
    use crate::{LogConfig, PartitionLog};

    #[test]
    fn scan_visits_every_batch_once_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            segment_bytes: 2048,
            ..LogConfig::default()
        };
        let mut log = PartitionLog::open(dir.path(), config).unwrap();
        let value = vec![1u8; 300];
        for _ in 0..20 {
            let kvs = [
                (None, Some(value.as_slice())),
                (None, Some(value.as_slice())),
            ];
            log.append(&build_batch(0, 0, 0, &kvs), 0).unwrap();
        }
        let mut seen = Vec::new();
        log.scan_batches(0, i64::MAX, |h, bytes| {
            assert_eq!(bytes.len(), h.total_size().unwrap());
            seen.push(h.base_offset);
        })
        .unwrap();
        assert_eq!(seen, (0..20).map(|i| i * 2).collect::<Vec<i64>>());
        let mut from_mid = Vec::new();
        log.scan_batches(11, 20, |h, _| from_mid.push(h.base_offset))
            .unwrap();
        assert_eq!(from_mid, vec![10, 12, 14, 16, 18]);
    }
}
