//! Raft snapshots of the metadata image, kept as Kafka's `<offset>-<epoch>.checkpoint` files.
//!
//! A checkpoint file names the Kafka offset and epoch it ends at, but raft counts entries, and since a batch
//! spans one offset per record the two differ. Each checkpoint therefore has a sidecar,
//! `<offset>-<epoch>.raft`, written (and fsynced) before the checkpoint is renamed into place, holding the raft
//! index and term the snapshot covers. A checkpoint without a readable sidecar is not used.
//!
//! The two newest snapshots are kept; the log is trimmed only up to the older of them, so a newest snapshot
//! that fails its checksum at start can be skipped for the previous one with the log after it intact.
//!
//! The sidecar also holds the quorum membership at the snapshot (voters, learners and their endpoints, as a
//! hex VotersRecord), so a restart whose log was trimmed behind the snapshot still knows the voters; a sidecar
//! written before dynamic voters has none, meaning the static `controller.quorum.voters`.
//!
//! A raft snapshot message carries [`SnapshotPayload::encode`]: the end offset and epoch, the membership
//! (length-prefixed, 0 for none), then the checkpoint bytes, which the receiver validates (every CRC, header and footer) before it writes or applies anything.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tracing::{error, warn};

use super::snapshot_file::{decode_snapshot, encode_snapshot, SnapshotId, SUFFIX};
use super::LogError;
use crate::membership::Membership;
use crate::records::MetadataRecord;

/// Sidecar suffix: the raft index and term of a checkpoint.
const RAFT_SUFFIX: &str = ".raft";
/// Snapshots kept on disk.
const KEEP: usize = 2;

/// A snapshot as raft and the image need it.
#[derive(Debug, Clone)]
pub(crate) struct StoredSnapshot {
    /// Raft index of the last entry it contains.
    pub index: u64,
    /// Raft term of that entry.
    pub term: u64,
    /// Kafka offset and epoch it ends at.
    pub id: SnapshotId,
    /// The checkpoint file's bytes (shared: raft sends them to lagging voters, brokers fetch them).
    pub bytes: Arc<Vec<u8>>,
    /// The quorum membership at `index`; `None` for a snapshot taken before membership was recorded
    /// (the static voters then).
    pub membership: Option<Membership>,
}

impl StoredSnapshot {
    /// Builds a snapshot of `records` covering raft entries up to `index`.
    pub(crate) fn build(
        index: u64,
        term: u64,
        id: SnapshotId,
        last_contained_log_timestamp: i64,
        records: impl IntoIterator<Item = impl std::borrow::Borrow<MetadataRecord>>,
        membership: Option<Membership>,
    ) -> Result<Self, LogError> {
        let bytes = encode_snapshot(id, last_contained_log_timestamp, records)
            .map_err(|e| LogError::Corrupt(format!("cannot encode a metadata snapshot: {e}")))?;
        Ok(Self {
            index,
            term,
            id,
            bytes: Arc::new(bytes),
            membership,
        })
    }

    /// The records it holds (validated: CRCs, header, footer).
    pub(crate) fn records(&self) -> Result<Vec<MetadataRecord>, LogError> {
        decode_snapshot(&self.bytes)
            .map(|(_, records)| records)
            .map_err(|reason| {
                LogError::Corrupt(format!("snapshot {}: {reason}", self.id.file_name()))
            })
    }
}

/// What a raft snapshot message carries: the Kafka end offset and epoch, then the checkpoint bytes.
pub(crate) struct SnapshotPayload;

impl SnapshotPayload {
    pub(crate) fn encode(snapshot: &StoredSnapshot) -> Result<Vec<u8>, LogError> {
        let membership = match &snapshot.membership {
            Some(m) => m.encode().map_err(|e| {
                LogError::Corrupt(format!("cannot encode the snapshot's membership: {e}"))
            })?,
            None => Vec::new(),
        };
        let len = u32::try_from(membership.len())
            .map_err(|_| LogError::Corrupt("snapshot membership too large".into()))?;
        let mut out = Vec::with_capacity(16 + membership.len() + snapshot.bytes.len());
        out.extend_from_slice(&snapshot.id.end_offset.to_be_bytes());
        out.extend_from_slice(&snapshot.id.epoch.to_be_bytes());
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&membership);
        out.extend_from_slice(&snapshot.bytes);
        Ok(out)
    }

    /// Parses and validates a received payload.
    pub(crate) fn decode(index: u64, term: u64, data: &[u8]) -> Result<StoredSnapshot, LogError> {
        let bad = |why: &str| LogError::Corrupt(format!("received raft snapshot {index}: {why}"));
        let (offset, rest) = data
            .split_first_chunk::<8>()
            .ok_or_else(|| bad("too short"))?;
        let (epoch, rest) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| bad("too short"))?;
        let (len, rest) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| bad("too short"))?;
        let len =
            usize::try_from(u32::from_be_bytes(*len)).map_err(|_| bad("membership length"))?;
        if len > rest.len() {
            return Err(bad("membership runs past the payload"));
        }
        let (membership, bytes) = rest.split_at(len);
        let membership = if membership.is_empty() {
            None
        } else {
            Some(Membership::decode(membership).map_err(|e| bad(&format!("membership: {e}")))?)
        };
        let snapshot = StoredSnapshot {
            membership,
            index,
            term,
            id: SnapshotId {
                end_offset: i64::from_be_bytes(*offset),
                epoch: i32::from_be_bytes(*epoch),
            },
            bytes: Arc::new(bytes.to_vec()),
        };
        if snapshot.id.end_offset < 0 {
            return Err(bad("negative end offset"));
        }
        snapshot.records()?;
        Ok(snapshot)
    }
}

/// Where snapshots live: the `__cluster_metadata-0` directory, or nowhere (in-memory tests).
pub(crate) struct SnapshotDir {
    dir: Option<PathBuf>,
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> LogError + 'a {
    move |source| LogError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

impl SnapshotDir {
    pub(crate) fn on_disk(dir: PathBuf) -> Self {
        Self { dir: Some(dir) }
    }

    #[cfg(test)]
    pub(crate) fn in_memory() -> Self {
        Self { dir: None }
    }

    /// Stored snapshots, newest first, each with its raft index and term (checkpoints without a readable
    /// sidecar are skipped).
    fn list(&self) -> Result<Vec<(SnapshotId, Sidecar, PathBuf)>, LogError> {
        let Some(dir) = &self.dir else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(io("list", dir)(e)),
        };
        for entry in entries {
            let entry = entry.map_err(io("list", dir))?;
            let name = entry.file_name();
            let Some(id) = name.to_str().and_then(SnapshotId::parse) else {
                continue;
            };
            let path = entry.path();
            match read_sidecar(&sidecar_path(&path)) {
                Some(sidecar) => out.push((id, sidecar, path)),
                None => {
                    warn!(file = %path.display(), "metadata snapshot without a raft sidecar; ignored")
                }
            }
        }
        out.sort_by_key(|s| std::cmp::Reverse(s.1.index));
        Ok(out)
    }

    /// The snapshots to start from, newest first, each validated: one that fails its checksum is reported and
    /// skipped (the caller falls back to an older one if the log after it is still there).
    pub(crate) fn load_all(&self) -> Result<Vec<StoredSnapshot>, LogError> {
        let mut out = Vec::new();
        for (id, sidecar, path) in self.list()? {
            let bytes = fs::read(&path).map_err(io("read", &path))?;
            let snapshot = StoredSnapshot {
                index: sidecar.index,
                term: sidecar.term,
                id,
                bytes: Arc::new(bytes),
                membership: sidecar.membership,
            };
            match snapshot.records() {
                Ok(_) => out.push(snapshot),
                Err(e) => error!(
                    file = %path.display(),
                    error = %e,
                    "metadata snapshot fails validation; it will not be used"
                ),
            }
        }
        Ok(out)
    }

    /// Writes a snapshot durably (sidecar first, then the checkpoint via a partial file and a rename), and
    /// deletes all but the newest [`KEEP`]. Returns the raft index the log may now be trimmed to (the older
    /// kept snapshot's, so a damaged newest one can be skipped), if any.
    pub(crate) fn save(&self, snapshot: &StoredSnapshot) -> Result<Option<u64>, LogError> {
        let Some(dir) = &self.dir else {
            return Ok(Some(snapshot.index));
        };
        fs::create_dir_all(dir).map_err(io("create", dir))?;
        let path = dir.join(snapshot.id.file_name());
        let sidecar = sidecar_path(&path);
        let mut text = format!("index={}\nterm={}\n", snapshot.index, snapshot.term);
        if let Some(m) = &snapshot.membership {
            let bytes = m.encode().map_err(|e| {
                LogError::Corrupt(format!("cannot encode the snapshot's membership: {e}"))
            })?;
            text.push_str("membership=");
            for b in bytes {
                text.push_str(&format!("{b:02x}"));
            }
            text.push('\n');
        }
        write_atomically(&sidecar, text.as_bytes())?;
        write_atomically(&path, &snapshot.bytes)?;
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io("fsync directory", dir))?;
        let listed = self.list()?;
        for (_, _, old) in listed.iter().skip(KEEP) {
            for p in [old.clone(), sidecar_path(old)] {
                if let Err(e) = fs::remove_file(&p) {
                    warn!(file = %p.display(), error = %e, "cannot delete an old metadata snapshot");
                }
            }
        }
        Ok(listed.get(KEEP - 1).map(|(_, sidecar, _)| sidecar.index))
    }
}

fn sidecar_path(checkpoint: &Path) -> PathBuf {
    let name = checkpoint
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .trim_end_matches(SUFFIX)
        .to_string();
    checkpoint.with_file_name(format!("{name}{RAFT_SUFFIX}"))
}

/// What a checkpoint's sidecar says.
struct Sidecar {
    index: u64,
    term: u64,
    membership: Option<Membership>,
}

/// The sidecar, `None` if missing or unreadable (the checkpoint is then not used: a damaged membership
/// must not silently turn into the static voters).
fn read_sidecar(path: &Path) -> Option<Sidecar> {
    let text = fs::read_to_string(path).ok()?;
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .map(str::trim)
    };
    let membership = match field("membership") {
        None => None,
        Some(hex) => {
            let bytes = decode_hex(hex)?;
            match Membership::decode(&bytes) {
                Ok(m) => Some(m),
                Err(e) => {
                    warn!(file = %path.display(), error = %e, "unreadable membership in a snapshot sidecar");
                    return None;
                }
            }
        }
    };
    Some(Sidecar {
        index: field("index")?.parse().ok()?,
        term: field("term")?.parse().ok()?,
        membership,
    })
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), LogError> {
    let tmp = path.with_extension("part");
    {
        let mut file = fs::File::create(&tmp).map_err(io("create", &tmp))?;
        file.write_all(bytes).map_err(io("write", &tmp))?;
        file.sync_all().map_err(io("fsync", &tmp))?;
    }
    fs::rename(&tmp, path).map_err(io("rename", path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::tests::rich_image;

    fn snapshot(index: u64, end_offset: i64) -> StoredSnapshot {
        StoredSnapshot::build(
            index,
            3,
            SnapshotId {
                end_offset,
                epoch: 3,
            },
            1,
            rich_image().to_records(),
            Some(crate::membership::Membership::from_static(
                &[crate::config::VoterAddr {
                    id: 1,
                    host: "h".into(),
                    port: 1,
                }],
                "CONTROLLER",
            )),
        )
        .unwrap()
    }

    #[test]
    fn keeps_two_and_skips_damaged_ones() {
        let dir = tempfile::tempdir().unwrap();
        let snaps = SnapshotDir::on_disk(dir.path().to_path_buf());
        assert_eq!(snaps.save(&snapshot(10, 40)).unwrap(), None);
        assert_eq!(snaps.save(&snapshot(20, 80)).unwrap(), Some(10));
        assert_eq!(snaps.save(&snapshot(30, 120)).unwrap(), Some(20));
        let loaded = snaps.load_all().unwrap();
        assert_eq!(
            loaded.iter().map(|s| s.index).collect::<Vec<_>>(),
            vec![30, 20]
        );
        assert_eq!(loaded[0].membership, snapshot(30, 120).membership);
        // Damage the newest: it is skipped, the older one remains usable.
        let newest = dir.path().join(loaded[0].id.file_name());
        let mut bytes = fs::read(&newest).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0xff;
        fs::write(&newest, bytes).unwrap();
        let loaded = snaps.load_all().unwrap();
        assert_eq!(loaded.iter().map(|s| s.index).collect::<Vec<_>>(), vec![20]);
        // A checkpoint without its sidecar is not used.
        fs::remove_file(sidecar_path(&dir.path().join(loaded[0].id.file_name()))).unwrap();
        assert!(snaps.load_all().unwrap().is_empty());
    }

    #[test]
    fn payload_round_trip_and_validation() {
        let s = snapshot(7, 33);
        let data = SnapshotPayload::encode(&s).unwrap();
        let back = SnapshotPayload::decode(7, 3, &data).unwrap();
        assert_eq!(back.id, s.id);
        assert_eq!(back.membership, s.membership);
        assert_eq!(back.bytes, s.bytes);
        assert!(SnapshotPayload::decode(7, 3, &data[..5]).is_err());
        let mut bad = data.clone();
        let last = bad.len() - 3;
        bad[last] ^= 1;
        assert!(SnapshotPayload::decode(7, 3, &bad).is_err());
    }
}
