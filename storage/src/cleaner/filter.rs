//! The cleaner's decision for one batch, as a pure function of the batch and what the scan of the log found:
//! which records stay, and the bytes of the batch that holds them.
//!
//! Kafka's rules (`LogCleaner.cleanInto` / `MemoryRecords.filterTo`):
//! - a keyed record stays if no later record in the cleaned range has its key; a keyless one goes;
//! - a tombstone (null value) stays until the batch's delete horizon (KIP-534: attribute bit 6, the horizon in
//!   the base timestamp) has passed; the first cleaning that keeps it sets the horizon to now +
//!   `delete.retention.ms`;
//! - control batches (transaction markers) stay; records of aborted transactions go, those of transactions
//!   still open stay untouched;
//! - offsets never change: a kept batch keeps its base offset and last offset delta, so the offsets of the
//!   records removed become gaps; a producer's last batch stays even when emptied, so its sequence survives.

use std::collections::{HashMap, HashSet};

use crate::batch::{
    encode_batch, raw_records, records_body, BatchError, BatchHeader, TimestampType,
};

/// Attribute bit 6: the base timestamp holds the batch's delete horizon (KIP-534).
pub(crate) const DELETE_HORIZON_BIT: i16 = 0x40;

/// Largest decompressed records section the cleaner reads; a batch above it is kept untouched.
pub(crate) const MAX_DECOMPRESSED_BYTES: usize = 256 << 20;

/// What the scan of the cleanable range learned, against which each batch is filtered.
#[derive(Debug, Default)]
pub(crate) struct FilterContext {
    /// Key → offset of its latest record in the dirty range (committed or non-transactional only).
    pub latest: HashMap<Vec<u8>, i64>,
    /// Base offsets of transactional batches whose transaction was aborted.
    pub aborted: HashSet<i64>,
    /// Base offsets of transactional batches whose transaction has no marker in the range yet.
    pub open: HashSet<i64>,
    /// Producer id → base offset of its last batch in the range.
    pub last_batch_of_producer: HashMap<i64, i64>,
    pub now_ms: i64,
    pub delete_retention_ms: i64,
}

/// What became of a batch.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Filtered {
    /// Every record stays and the header needs no change: copy the original bytes.
    Unchanged,
    /// Nothing of the batch stays.
    Removed,
    /// The batch rewritten with the records that stay.
    Rewritten(Vec<u8>),
}

/// The outcome and counts of filtering one batch.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct BatchOutcome {
    pub filtered: Filtered,
    pub records_removed: u64,
    /// The delete horizon of tombstones kept in this batch, if any.
    pub tombstone_horizon: Option<i64>,
}

impl BatchOutcome {
    fn unchanged() -> Self {
        Self {
            filtered: Filtered::Unchanged,
            records_removed: 0,
            tombstone_horizon: None,
        }
    }
}

/// Decides the fate of the batch at the start of `batch` (already CRC-checked by the caller).
pub(crate) fn filter_batch(batch: &[u8], ctx: &FilterContext) -> Result<BatchOutcome, BatchError> {
    let header = BatchHeader::parse(batch)?;
    let attributes = header.attributes;
    if crate::batch::is_control(attributes) || ctx.open.contains(&header.base_offset) {
        return Ok(BatchOutcome::unchanged());
    }
    let aborted = ctx.aborted.contains(&header.base_offset);
    let body = match records_body(batch, MAX_DECOMPRESSED_BYTES) {
        Ok(body) => body,
        Err(BatchError::Decompression(reason)) => {
            tracing::warn!(base_offset = header.base_offset, %reason, "cleaner keeps a batch it cannot decompress");
            return Ok(BatchOutcome::unchanged());
        }
        Err(e) => return Err(e),
    };
    let has_horizon = attributes & DELETE_HORIZON_BIT != 0;
    let horizon_passed = has_horizon && ctx.now_ms >= header.base_timestamp;
    let mut kept = Vec::new();
    let mut kept_count = 0i32;
    let mut removed = 0u64;
    let mut kept_tombstone = false;
    for record in raw_records(&body, header.records_count) {
        let record = record?;
        let offset = header
            .base_offset
            .saturating_add(i64::from(record.offset_delta));
        let keep = !aborted
            && record
                .key
                .is_some_and(|key| ctx.latest.get(key).is_none_or(|&latest| offset >= latest))
            && !(record.value_is_null && horizon_passed);
        if keep {
            kept.push(record);
            kept_count += 1;
            kept_tombstone |= record.value_is_null;
        } else {
            removed += 1;
        }
    }
    let sets_horizon = kept_tombstone && !has_horizon;
    let tombstone_horizon = kept_tombstone.then(|| {
        if has_horizon {
            header.base_timestamp
        } else {
            ctx.now_ms.saturating_add(ctx.delete_retention_ms)
        }
    });
    if removed == 0 && !sets_horizon {
        return Ok(BatchOutcome::unchanged());
    }
    let last_of_producer = header.producer_id >= 0
        && ctx.last_batch_of_producer.get(&header.producer_id) == Some(&header.base_offset);
    if kept.is_empty() && !last_of_producer {
        return Ok(BatchOutcome {
            filtered: Filtered::Removed,
            records_removed: removed,
            tombstone_horizon: None,
        });
    }
    let mut new_header = header;
    let mut out = Vec::with_capacity(body.len());
    if kept.is_empty() {
        // Kafka's empty batch: header only, no codec, offsets and producer fields as they were.
        new_header.attributes = attributes & !0x07;
    } else if sets_horizon {
        let horizon = tombstone_horizon.unwrap_or(ctx.now_ms);
        let log_append_time =
            TimestampType::from_attributes(attributes) == TimestampType::LogAppendTime;
        new_header.attributes |= DELETE_HORIZON_BIT;
        new_header.base_timestamp = horizon;
        for record in &kept {
            // Each record keeps its own timestamp: re-expressed against the new base.
            let delta = if log_append_time {
                record.timestamp_delta
            } else {
                header
                    .base_timestamp
                    .saturating_add(record.timestamp_delta)
                    .saturating_sub(horizon)
            };
            record.write_with_timestamp_delta(&mut out, delta);
        }
    } else {
        for record in &kept {
            out.extend_from_slice(record.encoded);
        }
    }
    let bytes = encode_batch(&new_header, &out, kept_count)?;
    Ok(BatchOutcome {
        filtered: Filtered::Rewritten(bytes),
        records_removed: removed,
        tombstone_horizon,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{decompressed_copy, records, BatchBuilder, Compression};

    fn batch(recs: &[(Option<&str>, Option<&str>, i64)], codec: Compression) -> Vec<u8> {
        let mut b = BatchBuilder::new(100, 3)
            .producer(9, 1, 10)
            .compression(codec);
        for (k, v, ts) in recs {
            b.push(*ts, k.map(str::as_bytes), v.map(str::as_bytes), &[])
                .unwrap();
        }
        b.build()
    }

    fn ctx(latest: &[(&str, i64)]) -> FilterContext {
        FilterContext {
            latest: latest
                .iter()
                .map(|(k, o)| (k.as_bytes().to_vec(), *o))
                .collect(),
            now_ms: 50_000,
            delete_retention_ms: 1_000,
            ..FilterContext::default()
        }
    }

    /// (offset, key, value, timestamp) of a record.
    type Rec = (i64, Option<Vec<u8>>, Option<Vec<u8>>, i64);

    fn read(batch: &[u8]) -> Vec<Rec> {
        let plain = decompressed_copy(batch, 1 << 20).unwrap();
        records(&plain)
            .unwrap()
            .map(|r| {
                let r = r.unwrap();
                (
                    r.offset,
                    r.key.map(<[u8]>::to_vec),
                    r.value.map(<[u8]>::to_vec),
                    r.timestamp,
                )
            })
            .collect()
    }

    #[test]
    fn older_values_go_and_the_batch_keeps_its_offsets_and_producer() {
        let b = batch(
            &[
                (Some("a"), Some("1"), 10),
                (Some("b"), Some("2"), 11),
                (Some("a"), Some("3"), 12),
            ],
            Compression::Zstd,
        );
        let out = filter_batch(&b, &ctx(&[("a", 102), ("b", 101)])).unwrap();
        assert_eq!(out.records_removed, 1);
        let Filtered::Rewritten(bytes) = out.filtered else {
            panic!("{out:?}")
        };
        let h = BatchHeader::parse(&bytes).unwrap();
        assert_eq!(
            (h.base_offset, h.last_offset_delta, h.records_count),
            (100, 2, 2)
        );
        assert_eq!(
            (h.producer_id, h.producer_epoch, h.base_sequence),
            (9, 1, 10)
        );
        assert_eq!(h.partition_leader_epoch, 3);
        assert_eq!(
            Compression::from_attributes(h.attributes).unwrap(),
            Compression::Zstd
        );
        let recs = read(&bytes);
        assert_eq!(recs.iter().map(|r| r.0).collect::<Vec<_>>(), vec![101, 102]);
        assert_eq!(recs[1].2.as_deref(), Some(b"3".as_slice()));
        // Nothing shadowed: the original bytes are kept.
        let out = filter_batch(&b, &ctx(&[])).unwrap();
        assert_eq!(out.filtered, Filtered::Unchanged);
    }

    #[test]
    fn a_kept_tombstone_gets_the_delete_horizon_and_record_timestamps_stay() {
        let b = batch(
            &[(Some("a"), None, 1_000), (Some("b"), Some("x"), 1_500)],
            Compression::None,
        );
        let out = filter_batch(&b, &ctx(&[])).unwrap();
        assert_eq!(out.tombstone_horizon, Some(51_000));
        let Filtered::Rewritten(bytes) = out.filtered else {
            panic!("{out:?}")
        };
        let h = BatchHeader::parse(&bytes).unwrap();
        assert_ne!(h.attributes & DELETE_HORIZON_BIT, 0);
        assert_eq!(h.base_timestamp, 51_000);
        assert_eq!(
            read(&bytes).iter().map(|r| r.3).collect::<Vec<_>>(),
            vec![1_000, 1_500]
        );
        // Before the horizon the tombstone stays (and the batch needs no rewrite); from it on, it goes.
        let mut later = ctx(&[]);
        later.now_ms = 50_999;
        assert_eq!(
            filter_batch(&bytes, &later).unwrap().filtered,
            Filtered::Unchanged
        );
        later.now_ms = 51_000;
        let out = filter_batch(&bytes, &later).unwrap();
        let Filtered::Rewritten(gone) = out.filtered else {
            panic!("{out:?}")
        };
        let recs = read(&gone);
        assert_eq!(recs.len(), 1);
        assert_eq!((recs[0].0, recs[0].3), (101, 1_500));
    }

    #[test]
    fn emptied_batches_go_unless_last_of_their_producer_and_control_or_open_ones_stay() {
        let b = batch(&[(Some("a"), Some("1"), 10)], Compression::Lz4);
        let c = ctx(&[("a", 500)]);
        assert_eq!(filter_batch(&b, &c).unwrap().filtered, Filtered::Removed);
        let mut last = ctx(&[("a", 500)]);
        last.last_batch_of_producer.insert(9, 100);
        let Filtered::Rewritten(bytes) = filter_batch(&b, &last).unwrap().filtered else {
            panic!("kept empty")
        };
        let h = BatchHeader::parse(&bytes).unwrap();
        assert_eq!(
            (h.records_count, h.last_offset_delta, h.base_sequence),
            (0, 0, 10)
        );
        assert_eq!(
            Compression::from_attributes(h.attributes).unwrap(),
            Compression::None
        );
        let mut open = ctx(&[("a", 500)]);
        open.open.insert(100);
        assert_eq!(
            filter_batch(&b, &open).unwrap().filtered,
            Filtered::Unchanged
        );
        let mut aborted = ctx(&[]);
        aborted.aborted.insert(100);
        assert_eq!(
            filter_batch(&b, &aborted).unwrap().filtered,
            Filtered::Removed
        );
        let keyless = batch(&[(None, Some("1"), 10)], Compression::None);
        assert_eq!(
            filter_batch(&keyless, &ctx(&[])).unwrap().filtered,
            Filtered::Removed
        );
    }
}
