//! Metadata snapshots in Apache Kafka's file format (`<offset>-<epoch>.checkpoint` in the
//! `__cluster_metadata-0` directory), readable by `kafka-dump-log --cluster-metadata-decoder`
//! and `kafka-metadata-shell --snapshot`. Raft does not use them yet: this is the format only.
//!
//! A snapshot file is a sequence of record batches with offsets from 0, all with the snapshot's
//! epoch as partition leader epoch: a control batch with one SnapshotHeaderRecord, data batches
//! of metadata records ([`MetadataImage::to_records`](crate::MetadataImage::to_records)), and a
//! control batch with one SnapshotFooterRecord. The name is Kafka's: the end offset (the first
//! offset *not* in the snapshot) in 20 digits, `-`, the epoch in 10 digits.
//!
//! [`encode_snapshot`] and [`decode_snapshot`] are pure; [`write_snapshot`] and
//! [`read_snapshot`] add the file handling (temp file, fsync, rename; typed errors naming the
//! file).

use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use kraftwerk_storage::batch::{self, BatchBuilder};
use thiserror::Error;

use crate::records::kafka_format::{self, control_type};
use crate::records::{EncodeError, MetadataRecord};

/// Kafka's snapshot file suffix.
pub const SUFFIX: &str = ".checkpoint";
/// Suffix of a snapshot being written (Kafka's partial-snapshot suffix).
pub const PARTIAL_SUFFIX: &str = ".checkpoint.part";
/// Records per data batch; keeps batches small, as Kafka's snapshot writer does.
const RECORDS_PER_BATCH: usize = 1000;

/// Which log prefix a snapshot covers: Kafka's `OffsetAndEpoch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct SnapshotId {
    /// The first offset not contained in the snapshot.
    pub end_offset: i64,
    /// The epoch (raft term) of the last contained record.
    pub epoch: i32,
}

impl SnapshotId {
    /// Kafka's file name for this snapshot.
    pub fn file_name(&self) -> String {
        format!("{:020}-{:010}{SUFFIX}", self.end_offset, self.epoch)
    }

    /// Parses a snapshot file name (not a partial one).
    pub fn parse(name: &str) -> Option<Self> {
        let stem = name.strip_suffix(SUFFIX)?;
        let (offset, epoch) = stem.split_once('-')?;
        if offset.len() != 20 || epoch.len() != 10 {
            return None;
        }
        if !offset
            .bytes()
            .chain(epoch.bytes())
            .all(|b| b.is_ascii_digit())
        {
            return None;
        }
        Some(Self {
            end_offset: offset.parse().ok()?,
            epoch: epoch.parse().ok()?,
        })
    }
}

/// A snapshot's contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// What it covers.
    pub id: SnapshotId,
    /// The append time of the last log record it contains (the header's field).
    pub last_contained_log_timestamp: i64,
    /// The metadata records, in order.
    pub records: Vec<MetadataRecord>,
}

/// Why a snapshot could not be written or read.
#[derive(Debug, Error)]
pub enum SnapshotError {
    /// A file operation failed.
    #[error("snapshot {}: {op}: {source}", path.display())]
    Io {
        /// The file (or directory).
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file name is not `<20 digits>-<10 digits>.checkpoint`.
    #[error("snapshot {}: not a snapshot file name", path.display())]
    BadName {
        /// The file.
        path: PathBuf,
    },
    /// The contents are not a valid snapshot.
    #[error("snapshot {}: {reason}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A record cannot be encoded.
    #[error("snapshot {}: {source}", path.display())]
    Encode {
        /// The file.
        path: PathBuf,
        /// The encoding error.
        source: EncodeError,
    },
}

fn control_batch(base_offset: i64, epoch: i32, timestamp: i64, kind: i16, value: &[u8]) -> Vec<u8> {
    let key = kafka_format::control_key(kind);
    let mut builder = BatchBuilder::new(base_offset, epoch).control(true);
    match builder.push(timestamp, Some(&key), Some(value), &[]) {
        Ok(_) => builder.build(),
        // A few bytes cannot overflow a batch; an empty result is refused by the reader.
        Err(_) => Vec::new(),
    }
}

/// The bytes of a snapshot file. Deterministic: every record is stamped with
/// `last_contained_log_timestamp`.
///
/// `records` is walked once, batch by batch, so a snapshot of an image need not hold the image's records in
/// memory beside the image and the bytes (`MetadataImage::records` yields them one at a time): at 1,000,000
/// partitions that list was the controller's peak.
pub fn encode_snapshot<R: std::borrow::Borrow<MetadataRecord>>(
    id: SnapshotId,
    last_contained_log_timestamp: i64,
    records: impl IntoIterator<Item = R>,
) -> Result<Vec<u8>, EncodeError> {
    let ts = last_contained_log_timestamp;
    let mut out = control_batch(
        0,
        id.epoch,
        ts,
        control_type::SNAPSHOT_HEADER,
        &kafka_format::encode_snapshot_header(ts),
    );
    let mut offset: i64 = 1;
    let mut records = records.into_iter().peekable();
    while records.peek().is_some() {
        let mut builder = BatchBuilder::new(offset, id.epoch);
        for record in records.by_ref().take(RECORDS_PER_BATCH) {
            let value = kafka_format::encode_record(record.borrow())?;
            builder
                .push(ts, None, Some(&value), &[])
                .map_err(|_| EncodeError::ArrayTooLong("snapshot batch"))?;
            offset += 1;
        }
        out.extend_from_slice(&builder.build());
    }
    out.extend_from_slice(&control_batch(
        offset,
        id.epoch,
        ts,
        control_type::SNAPSHOT_FOOTER,
        &kafka_format::encode_snapshot_footer(),
    ));
    Ok(out)
}

/// Decodes the bytes of a snapshot file: (last contained log timestamp, records). Checks every
/// batch's CRC, that offsets run from 0 without gaps, that the first record is a
/// SnapshotHeaderRecord, the last a SnapshotFooterRecord, and that every data record decodes.
pub fn decode_snapshot(bytes: &[u8]) -> Result<(i64, Vec<MetadataRecord>), String> {
    let infos = batch::validate_batches(bytes, usize::MAX).map_err(|e| e.to_string())?;
    let mut header = None;
    let mut footer = false;
    let mut records = Vec::new();
    let mut expected: i64 = 0;
    for info in &infos {
        let at = info.base_offset;
        if footer {
            return Err(format!("batch at offset {at} after the snapshot footer"));
        }
        if at != expected {
            return Err(format!("batch at offset {at}, expected offset {expected}"));
        }
        let slice = bytes
            .get(info.range())
            .ok_or_else(|| format!("batch at offset {at} runs past the file"))?;
        let mut count = 0i64;
        for record in batch::records(slice).map_err(|e| format!("batch at offset {at}: {e}"))? {
            let record = record.map_err(|e| format!("batch at offset {at}: {e}"))?;
            let offset = record.offset;
            if offset != expected + count {
                return Err(format!("record at offset {offset} out of sequence"));
            }
            count += 1;
            let value = record
                .value
                .ok_or_else(|| format!("record at offset {offset} has no value"))?;
            if header.is_none() && !(info.is_control && offset == 0) {
                return Err("the first record is not a SnapshotHeaderRecord".into());
            }
            if footer {
                return Err(format!(
                    "record at offset {offset} after the snapshot footer"
                ));
            }
            if info.is_control {
                let key = record
                    .key
                    .ok_or_else(|| format!("control record at offset {offset} has no key"))?;
                let kind = kafka_format::parse_control_key(key)
                    .map_err(|e| format!("record at offset {offset}: {e}"))?;
                match kind {
                    control_type::SNAPSHOT_HEADER if offset == 0 => {
                        let (_, ts) = kafka_format::decode_snapshot_header(value)
                            .map_err(|e| format!("SnapshotHeaderRecord: {e}"))?;
                        header = Some(ts);
                    }
                    control_type::SNAPSHOT_FOOTER => {
                        kafka_format::decode_snapshot_footer(value)
                            .map_err(|e| format!("SnapshotFooterRecord: {e}"))?;
                        footer = true;
                    }
                    // Kafka writes the quorum's kraft.version and voters after the header; they
                    // say nothing about the metadata image.
                    control_type::KRAFT_VERSION | control_type::KRAFT_VOTERS => {}
                    other => {
                        return Err(format!(
                            "unexpected control record type {other} at offset {offset}"
                        ))
                    }
                }
            } else {
                records.push(
                    kafka_format::decode_record(value)
                        .map_err(|e| format!("record at offset {offset}: {e}"))?,
                );
            }
        }
        if count != info.offset_count() {
            return Err(format!(
                "batch at offset {at} holds {count} records but counts {}",
                info.offset_count()
            ));
        }
        expected += count;
    }
    let header = header.ok_or("no SnapshotHeaderRecord")?;
    if !footer {
        return Err("no SnapshotFooterRecord: the snapshot is incomplete".into());
    }
    Ok((header, records))
}

fn io<'a>(path: &'a Path, op: &'static str) -> impl FnOnce(std::io::Error) -> SnapshotError + 'a {
    move |source| SnapshotError::Io {
        path: path.to_path_buf(),
        op,
        source,
    }
}

/// Writes a snapshot into `dir` (normally `<metadata dir>/__cluster_metadata-0`): to a partial
/// file, fsynced, then renamed to its final name and the directory fsynced, so a crash leaves
/// either no snapshot or a complete one. Returns the final path.
pub fn write_snapshot(
    dir: &Path,
    id: SnapshotId,
    last_contained_log_timestamp: i64,
    records: &[MetadataRecord],
) -> Result<PathBuf, SnapshotError> {
    let path = dir.join(id.file_name());
    let partial = dir.join(format!(
        "{}{PARTIAL_SUFFIX}",
        id.file_name().trim_end_matches(SUFFIX)
    ));
    let bytes = encode_snapshot(id, last_contained_log_timestamp, records).map_err(|source| {
        SnapshotError::Encode {
            path: path.clone(),
            source,
        }
    })?;
    {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&partial)
            .map_err(io(&partial, "create"))?;
        file.write_all(&bytes).map_err(io(&partial, "write"))?;
        file.sync_all().map_err(io(&partial, "fsync"))?;
    }
    fs::rename(&partial, &path).map_err(io(&path, "rename"))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir, "fsync directory"))?;
    Ok(path)
}

/// Reads and checks a snapshot file; any problem is an error naming the file.
pub fn read_snapshot(path: &Path) -> Result<Snapshot, SnapshotError> {
    let id = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(SnapshotId::parse)
        .ok_or_else(|| SnapshotError::BadName {
            path: path.to_path_buf(),
        })?;
    let bytes = fs::read(path).map_err(io(path, "read"))?;
    let (last_contained_log_timestamp, records) =
        decode_snapshot(&bytes).map_err(|reason| SnapshotError::Invalid {
            path: path.to_path_buf(),
            reason,
        })?;
    Ok(Snapshot {
        id,
        last_contained_log_timestamp,
        records,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::tests::rich_image;
    use crate::MetadataImage;

    #[test]
    fn file_names_are_kafkas() {
        let id = SnapshotId {
            end_offset: 12345,
            epoch: 7,
        };
        assert_eq!(id.file_name(), "00000000000000012345-0000000007.checkpoint");
        assert_eq!(SnapshotId::parse(&id.file_name()), Some(id));
        assert_eq!(
            SnapshotId::parse("00000000000000012345-0000000007.checkpoint.part"),
            None
        );
        assert_eq!(
            SnapshotId::parse("0000000000000001234x-0000000007.checkpoint"),
            None
        );
        assert_eq!(SnapshotId::parse("1-7.checkpoint"), None);
    }

    #[test]
    fn image_to_file_to_image() {
        let image = rich_image();
        let dir = tempfile::tempdir().unwrap();
        let id = SnapshotId {
            end_offset: image.next_offset(),
            epoch: 3,
        };
        let path = write_snapshot(dir.path(), id, 1_700_000_000_000, &image.to_records()).unwrap();
        assert_eq!(
            path.file_name().unwrap().to_str().unwrap(),
            format!("{:020}-0000000003.checkpoint", image.next_offset())
        );
        // No partial file left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        let snapshot = read_snapshot(&path).unwrap();
        assert_eq!(snapshot.id, id);
        assert_eq!(snapshot.last_contained_log_timestamp, 1_700_000_000_000);
        let rebuilt = MetadataImage::from_snapshot(
            image.cluster_id(),
            snapshot.id.end_offset - 1,
            &snapshot.records,
        );
        assert_eq!(rebuilt, image);
    }

    #[test]
    fn layout_is_header_data_footer() {
        let records: Vec<MetadataRecord> = (0..2500)
            .map(|i| MetadataRecord::FeatureLevel {
                name: format!("f{i}"),
                level: 1,
            })
            .collect();
        let bytes = encode_snapshot(
            SnapshotId {
                end_offset: 10,
                epoch: 2,
            },
            5,
            &records,
        )
        .unwrap();
        let infos = batch::validate_batches(&bytes, usize::MAX).unwrap();
        let shape: Vec<_> = infos
            .iter()
            .map(|i| {
                (
                    i.base_offset,
                    i.offset_count(),
                    i.is_control,
                    i.partition_leader_epoch,
                )
            })
            .collect();
        assert_eq!(
            shape,
            vec![
                (0, 1, true, 2),
                (1, 1000, false, 2),
                (1001, 1000, false, 2),
                (2001, 500, false, 2),
                (2501, 1, true, 2)
            ]
        );
        assert_eq!(decode_snapshot(&bytes).unwrap(), (5, records));
    }

    #[test]
    fn damaged_files_are_typed_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let id = SnapshotId {
            end_offset: 3,
            epoch: 1,
        };
        let records = rich_image().to_records();
        let path = write_snapshot(dir.path(), id, 0, &records).unwrap();
        let good = fs::read(&path).unwrap();

        let check = |bytes: &[u8], what: &str| {
            fs::write(&path, bytes).unwrap();
            match read_snapshot(&path) {
                Err(e @ SnapshotError::Invalid { .. }) => {
                    assert!(e.to_string().contains(&id.file_name()), "{what}: {e}");
                }
                other => panic!("{what}: expected Invalid, got {other:?}"),
            }
        };
        // A flipped byte in the middle: CRC mismatch.
        let mut flipped = good.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0x55;
        check(&flipped, "flipped byte");
        // Truncated anywhere.
        for cut in [1, 20, 70, good.len() / 3, good.len() - 1] {
            check(&good[..cut], "truncated");
        }
        // Without the footer (the whole last batch dropped).
        let infos = batch::validate_batches(&good, usize::MAX).unwrap();
        let footer_at = infos.last().unwrap().position;
        check(&good[..footer_at], "no footer");
        // Without the header.
        let header_len = infos[0].size;
        check(&good[header_len..], "no header");
        // Empty file.
        check(&[], "empty");
        // A bad name.
        let odd = dir.path().join("snapshot.checkpoint");
        fs::write(&odd, &good).unwrap();
        assert!(matches!(
            read_snapshot(&odd),
            Err(SnapshotError::BadName { .. })
        ));
        // A missing file.
        assert!(matches!(
            read_snapshot(
                &dir.path().join(
                    SnapshotId {
                        end_offset: 9,
                        epoch: 9
                    }
                    .file_name()
                )
            ),
            Err(SnapshotError::Io { .. })
        ));
    }
}
