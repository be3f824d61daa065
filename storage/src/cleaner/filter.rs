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
