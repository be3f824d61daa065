//! The bootstrap metadata `kraftwerk format` writes, as Kafka's `kafka-storage format` does: `bootstrap.checkpoint`
//! in the metadata log directory, a snapshot-format file (readable by `kafka-dump-log --cluster-metadata-decoder`)
//! holding `metadata.version` and the SCRAM credentials given with `--add-scram`.
//!
//! The first active controller of a new cluster writes these records into the metadata log, in one entry, so every
//! node's image has them. Until then (and on a controller whose log has not reached that entry) the controller
//! listener checks SCRAM logins against the file: controllers must authenticate each other before any metadata
//! is committed.

use std::path::{Path, PathBuf};

use crate::ops::features::{METADATA_VERSION, METADATA_VERSION_LEVEL};
use crate::raft_log::snapshot_file::{decode_snapshot, encode_snapshot, SnapshotId};
use crate::records::{MetadataRecord, ScramCredentialRecord};

pub use crate::ops::scram::{credential_from_password, credential_from_salted};

/// Kafka's name for the file, in the metadata log directory (next to `meta.properties`).
pub const FILE_NAME: &str = "bootstrap.checkpoint";

/// Why the bootstrap file could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("cannot {what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a valid bootstrap checkpoint: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

/// The records a new cluster starts with: `metadata.version` and `credentials`.
pub fn records(credentials: &[ScramCredentialRecord]) -> Vec<MetadataRecord> {
    let mut out = vec![MetadataRecord::FeatureLevel {
        name: METADATA_VERSION.to_string(),
        level: METADATA_VERSION_LEVEL,
    }];
    out.extend(
        credentials
            .iter()
            .cloned()
            .map(MetadataRecord::UserScramCredential),
    );
    out
}

/// Writes `bootstrap.checkpoint` into `dir` (temp file, fsync, rename).
pub fn write(dir: &Path, records: &[MetadataRecord]) -> Result<PathBuf, BootstrapError> {
    use std::io::Write;
    let path = dir.join(FILE_NAME);
    let io = |what: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| BootstrapError::Io { what, path, source }
    };
    let bytes = encode_snapshot(
        SnapshotId {
            end_offset: 0,
            epoch: 0,
        },
        0,
        records,
    )
    .map_err(|e| BootstrapError::Invalid {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    std::fs::create_dir_all(dir).map_err(io("create", dir))?;
    let tmp = dir.join(format!("{FILE_NAME}.tmp"));
    let mut f = std::fs::File::create(&tmp).map_err(io("create", &tmp))?;
    f.write_all(&bytes).map_err(io("write", &tmp))?;
    f.sync_all().map_err(io("fsync", &tmp))?;
    std::fs::rename(&tmp, &path).map_err(io("rename", &path))?;
    Ok(path)
}

/// Reads `bootstrap.checkpoint` from `dir`; `None` when there is none (a directory formatted without it).
pub fn read(dir: &Path) -> Result<Option<Vec<MetadataRecord>>, BootstrapError> {
    let path = dir.join(FILE_NAME);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(BootstrapError::Io {
                what: "read",
                path,
                source,
            })
        }
    };
    let (_, records) =
        decode_snapshot(&bytes).map_err(|reason| BootstrapError::Invalid { path, reason })?;
    Ok(Some(records))
}

/// The SCRAM credentials among bootstrap records.
pub fn scram_credentials(records: &[MetadataRecord]) -> Vec<ScramCredentialRecord> {
    records
        .iter()
        .filter_map(|r| match r {
            MetadataRecord::UserScramCredential(c) => Some(c.clone()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::ScramMechanism;

    #[test]
    fn written_and_read_back_in_kafkas_checkpoint_format() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read(dir.path()).unwrap().is_none());
        let c = credential_from_password("admin", ScramMechanism::Sha512, b"pw", b"salt", 4096);
        let records = records(std::slice::from_ref(&c));
        write(dir.path(), &records).unwrap();
        let back = read(dir.path()).unwrap().unwrap();
        assert_eq!(back, records);
        assert_eq!(scram_credentials(&back), vec![c]);
        std::fs::write(dir.path().join(FILE_NAME), b"junk").unwrap();
        assert!(read(dir.path()).is_err());
    }

    #[test]
    fn a_password_credential_is_what_a_scram_client_derives() {
        // RFC 7677's SCRAM-SHA-256 example: password "pencil", salt W22ZaJ0SNY7soEsUEjb6gQ==, 4096 iterations.
        let salt = [
            0x5b, 0x6d, 0x99, 0x68, 0x9d, 0x12, 0x35, 0x8e, 0xec, 0xa0, 0x4b, 0x14, 0x12, 0x36,
            0xfa, 0x81,
        ];
        let c = credential_from_password("user", ScramMechanism::Sha256, b"pencil", &salt, 4096);
        // StoredKey and ServerKey computed independently (Python's hashlib); with this ServerKey the example's
        // server signature v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4= verifies.
        assert_eq!(
            c.stored_key,
            [
                0x58, 0x6e, 0x5d, 0xf2, 0x83, 0xe6, 0xdc, 0xeb, 0x5c, 0x3e, 0x79, 0x1d, 0x8b, 0x85,
                0x28, 0xec, 0x19, 0x1e, 0x66, 0x40, 0x45, 0xce, 0x97, 0x17, 0x92, 0xe2, 0xe6, 0xb5,
                0xbb, 0x13, 0xe2, 0xa6
            ]
        );
        assert_eq!(
            c.server_key,
            [
                0xc1, 0xf3, 0xcb, 0xc1, 0xc1, 0x3a, 0x9d, 0x35, 0xa1, 0x4c, 0x09, 0x90, 0xee, 0xd9,
                0x76, 0x29, 0xea, 0x22, 0x58, 0x63, 0xe5, 0x66, 0xa4, 0x31, 0x4a, 0xb9, 0x9f, 0x3f,
                0x00, 0xe5, 0xd9, 0xd5
            ]
        );
        assert_eq!(c.iterations, 4096);
    }
}
