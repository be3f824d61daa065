//! Reading group records back from a `__consumer_offsets` partition and turning records into the batches
//! written to it.

use std::collections::BTreeMap;

use bytes::Bytes;
use kraftwerk_storage::batch::records;
use kraftwerk_storage::StorageError;

use crate::group::{partition_for, GroupRecord};
use crate::replica::partition::Partition;

/// Every group record of `part` up to its log end, oldest first, and that log end. Undecodable records
/// (another coordinator's record types, a corrupt batch) are skipped with a warning: a coordinator that
/// refused to start over one bad record would take every group of the partition down with it.
pub fn read_records(part: &Partition) -> Result<(Vec<GroupRecord>, i64), StorageError> {
    let p = part.index;
    let mut out = Vec::new();
    let end = part.scan_to_log_end(0, |h, batch| match records(batch) {
        Ok(iter) => {
            for r in iter {
                match r {
                    Ok(r) => match r.key.map(|key| GroupRecord::decode(key, r.value)) {
                        Some(Ok(rec)) => out.push(rec),
                        Some(Err(e)) => {
                            tracing::warn!(partition = p, offset = r.offset, error = %e, "skipping undecodable group record")
                        }
                        None => {
                            tracing::warn!(partition = p, offset = r.offset, "skipping group record without key")
                        }
                    },
                    Err(e) => {
                        tracing::warn!(partition = p, error = %e, "skipping rest of a corrupt batch");
                        break;
                    }
                }
            }
        }
        Err(e) => {
            tracing::warn!(partition = p, offset = h.base_offset, error = %e, "skipping unreadable batch")
        }
    })?;
    Ok((out, end))
}

/// Encoded (key, value) pairs per `__consumer_offsets` partition. A record that cannot be encoded is logged
/// and left out (the coordinator never builds one; the check guards the codec's limits).
pub fn encode_by_partition(
    records: Vec<GroupRecord>,
    num_partitions: i32,
) -> BTreeMap<i32, Vec<(Bytes, Option<Bytes>)>> {
    let mut by_partition: BTreeMap<i32, Vec<(Bytes, Option<Bytes>)>> = BTreeMap::new();
    for r in records {
        match (r.encode_key(), r.encode_value()) {
            (Ok(k), Ok(v)) => by_partition
                .entry(partition_for(r.group_id(), num_partitions))
                .or_default()
                .push((k, v)),
            (Err(e), _) | (_, Err(e)) => {
                tracing::error!(group = r.group_id(), error = %e, "cannot encode group record")
            }
        }
    }
    by_partition
}
