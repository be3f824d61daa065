//! Two-step reads for the fetch path: a plan taken under the owner's lock (memory only), resolved to a
//! `FileSlice` of the segment file without it. The slice names exactly what `read` returns (bar a batch cut by
//! the size limit, which the slice keeps and `read` drops), stays readable after retention deletes its segment,
//! never reaches the bound, and a read raced by a truncation comes back empty rather than as an error.

mod common;

use common::{batch, open, small_config};
use kraftwerk_storage::batch::BatchHeader;
use kraftwerk_storage::LogConfig;

/// 10 segments of 2 batches of 3 records.
fn ten_segments(dir: &std::path::Path, config: LogConfig) -> kraftwerk_storage::PartitionLog {
    let one = batch(3, 200, 0, 0).len() as u64;
    let mut log = open(
        dir,
        LogConfig {
            segment_bytes: one * 2,
            ..config
        },
    );
    for i in 0..20 {
        log.append(&batch(3, 200, i as u8, 1000 * i), 0).unwrap();
    }
    assert_eq!(log.segment_count(), 10);
    log
}

#[test]
fn a_slice_holds_what_read_returns() {
    let dir = tempfile::tempdir().unwrap();
    let log = ten_segments(dir.path(), small_config(0));
    let one = batch(3, 200, 0, 0).len();
    for offset in 0..60 {
        for max in [0, 1, one, one + 10, 2 * one, 1 << 20] {
            for bound in [None, Some(7), Some(31), Some(60)] {
                let plan = log.plan_read(offset, max, bound);
                let read = log.read(offset, max, bound);
                let (Ok(plan), Ok(read)) = (plan, read) else {
                    panic!("offset {offset}: both succeed");
                };
                let slice = plan.resolve().unwrap();
                let bytes = slice
                    .records
                    .as_ref()
                    .map(|s| s.read_to_bytes().unwrap())
                    .unwrap_or_default();
                assert!(
                    bytes.starts_with(&read.records),
                    "offset {offset} max {max} bound {bound:?}"
                );
                // Only a batch cut by the limit is extra, and never past the bound or the segment.
                assert!(bytes.len() - read.records.len() < one);
                if let Some(s) = &slice.records {
                    assert_eq!(s.first_batch_len(), one);
                    let first = BatchHeader::parse(&bytes).unwrap();
                    assert!(first.base_offset <= offset && offset <= first.last_offset());
                }
                if let Some(b) = bound {
                    let mut pos = 0;
                    while let Ok(h) = BatchHeader::parse(&bytes[pos..]) {
                        if pos + h.total_size().unwrap() > bytes.len() {
                            break;
                        }
                        assert!(h.last_offset() < b, "batch past the bound {b}");
                        pos += h.total_size().unwrap();
                    }
                }
            }
        }
    }
}

#[test]
fn a_slice_stays_readable_after_retention_deletes_its_segment() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        retention_ms: 5_000,
        ..small_config(0)
    };
    let mut log = ten_segments(dir.path(), config);
    let expected = log.read(0, 1 << 20, None).unwrap().records;
    let slice = log.plan_read(0, 1 << 20, None).unwrap().resolve().unwrap();
    let planned = log.plan_read(6, 1 << 20, None).unwrap();
    assert!(log.enforce_retention(1_000_000).unwrap() > 0);
    assert!(!slice.records.as_ref().unwrap().path().exists());
    assert_eq!(
        slice.records.as_ref().unwrap().read_to_bytes().unwrap(),
        expected
    );
    // A plan taken before the deletion resolves against the deleted file too.
    let late = planned.resolve().unwrap().records.unwrap();
    assert_eq!(
        BatchHeader::parse(&late.read_to_bytes().unwrap())
            .unwrap()
            .base_offset,
        6
    );
}

#[test]
fn a_plan_raced_by_truncation_resolves_empty() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = ten_segments(dir.path(), small_config(0));
    let plan = log.plan_read(57, 1 << 20, None).unwrap();
    log.truncate_to(54).unwrap();
    let read = plan.resolve().unwrap();
    assert!(read.records.is_none());
}

/// The batch a fetch starts from is found whatever the batch sizes around the index entry: large batches
/// (whose headers are read one by one) mixed with runs of small ones (read in chunks), from every offset.
#[test]
fn the_first_batch_is_found_across_large_and_small_batches() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), small_config(64 << 20));
    let mut bases = Vec::new();
    for i in 0..12u8 {
        let (n, len) = if i % 4 == 0 { (20, 1500) } else { (2, 30) };
        bases.push(log.log_end_offset());
        log.append(&batch(n, len, i, 1_000 + i64::from(i)), 0)
            .unwrap();
    }
    let end = log.log_end_offset();
    for offset in 0..end {
        let slice = log
            .plan_read(offset, 1, None)
            .unwrap()
            .resolve()
            .unwrap()
            .records
            .expect("records below the log end");
        let bytes = slice.read_to_bytes().unwrap();
        let first = BatchHeader::parse(&bytes).unwrap();
        assert!(
            first.base_offset <= offset && offset <= first.last_offset(),
            "offset {offset}: got the batch {}..={}",
            first.base_offset,
            first.last_offset()
        );
        assert!(bases.contains(&first.base_offset));
    }
}
