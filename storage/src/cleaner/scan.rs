//! The cleaner's first pass over the range it cleans: the latest offset of every key in the dirty part, which
//! transactions were aborted or are still open, and each producer's last batch.

use std::collections::HashMap;

use super::filter::{FilterContext, MAX_DECOMPRESSED_BYTES};
use super::segment_reader::for_each_batch;
use super::SegmentSnapshot;
use crate::batch::{is_control, is_transactional, raw_records, records, records_body, BatchError};
use crate::StorageError;

/// Kafka's control record types (the second i16 of a control record's key).
const CONTROL_ABORT: i16 = 0;
const CONTROL_COMMIT: i16 = 1;

/// A transaction seen in the scan but not yet ended by a marker.
#[derive(Default)]
struct OpenTransaction {
    batches: Vec<i64>,
    /// Keys written in the dirty range, with their offsets: they count only if the transaction commits.
    keys: Vec<(Vec<u8>, i64)>,
}

/// Memory a key takes in the map beyond its bytes (offset, hash-table slot, allocation), for the dedupe budget.
const MAP_ENTRY_OVERHEAD: usize = 48;

/// Scans `segments` in offset order; keys are collected only from batches at or after `first_dirty`.
/// `throttle` is told how many bytes were read.
///
/// `map_limit` (bytes, Kafka's `log.cleaner.dedupe.buffer.size` per thread) bounds the key map: once it is
/// exceeded, the scan stops before the next dirty segment and the returned offset (that segment's base, else
/// `None`) is where this cleaning must end; the rest stays dirty for the next one. At least one dirty segment is
/// always scanned, so the limit is soft by at most one segment's keys. Entries already in the map point at
/// records that stay in the log whether or not their segment is cleaned, so a partial map is safe.
pub(crate) fn build_context(
    segments: &[SegmentSnapshot],
    first_dirty: i64,
    now_ms: i64,
    delete_retention_ms: i64,
    map_limit: usize,
    throttle: &dyn Fn(u64),
) -> Result<(FilterContext, Option<i64>), StorageError> {
    let mut ctx = FilterContext {
        now_ms,
        delete_retention_ms,
        ..FilterContext::default()
    };
    let mut open: HashMap<i64, OpenTransaction> = HashMap::new();
    let mut map_bytes = 0usize;
    let mut scanned_dirty = false;
    let mut stopped_at = None;
    for segment in segments {
        let dirty = segment.end > first_dirty;
        if dirty && scanned_dirty && map_bytes > map_limit {
            stopped_at = Some(segment.base);
            break;
        }
        scanned_dirty |= dirty;
        for_each_batch(segment, |header, batch| {
            if header.producer_id >= 0 {
                ctx.last_batch_of_producer
                    .insert(header.producer_id, header.base_offset);
            }
            if is_control(header.attributes) {
                let Some(txn) = open.remove(&header.producer_id) else {
                    return Ok(());
                };
                match control_type(batch) {
                    Some(CONTROL_COMMIT) => {
                        for (key, offset) in txn.keys {
                            map_bytes += note_latest(&mut ctx.latest, key, offset);
                        }
                    }
                    Some(CONTROL_ABORT) => ctx.aborted.extend(txn.batches),
                    // An unknown marker: keep the transaction's data as it is.
                    _ => ctx.open.extend(txn.batches),
                }
                return Ok(());
            }
            let transactional = is_transactional(header.attributes);
            if transactional {
                open.entry(header.producer_id)
                    .or_default()
                    .batches
                    .push(header.base_offset);
            }
            if header.base_offset < first_dirty {
                return Ok(());
            }
            let body = match records_body(batch, MAX_DECOMPRESSED_BYTES) {
                Ok(body) => body,
                // Kept untouched by the filter too; its keys do not shadow older records.
                Err(BatchError::Decompression(_)) => return Ok(()),
                Err(e) => return Err(e.into()),
            };
            for record in raw_records(&body, header.records_count) {
                let record = record?;
                let Some(key) = record.key else { continue };
                let offset = header
                    .base_offset
                    .saturating_add(i64::from(record.offset_delta));
                if transactional {
                    if let Some(txn) = open.get_mut(&header.producer_id) {
                        txn.keys.push((key.to_vec(), offset));
                    }
                } else {
                    map_bytes += note_latest(&mut ctx.latest, key.to_vec(), offset);
                }
            }
            Ok(())
        })?;
        throttle(segment.size);
    }
    // Transactions without a marker before the end of the cleanable range are left exactly as they are.
    for txn in open.into_values() {
        ctx.open.extend(txn.batches);
    }
    Ok((ctx, stopped_at))
}

/// Records `offset` as the latest of `key` if it is; returns the bytes a new entry added to the map.
fn note_latest(latest: &mut HashMap<Vec<u8>, i64>, key: Vec<u8>, offset: i64) -> usize {
    let added = key.len() + MAP_ENTRY_OVERHEAD;
    match latest.entry(key) {
        std::collections::hash_map::Entry::Occupied(mut e) => {
            let slot = e.get_mut();
            *slot = (*slot).max(offset);
            0
        }
        std::collections::hash_map::Entry::Vacant(e) => {
            e.insert(offset);
            added
        }
    }
}

/// The type of the control record in a control batch (its key is version i16, type i16).
fn control_type(batch: &[u8]) -> Option<i16> {
    let record = records(batch).ok()?.next()?.ok()?;
    let key = record.key?;
    let bytes: [u8; 2] = key.get(2..4)?.try_into().ok()?;
    Some(i16::from_be_bytes(bytes))
}
