//! `meta.properties`: the file `kraftwerk format` writes into every log directory, as `kafka-storage.sh format`
//! does. It binds a directory to one cluster and one node so that a disk from another cluster, or a directory
//! that was never formatted, is refused at start instead of silently creating an empty cluster.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine;

pub const FILE_NAME: &str = "meta.properties";

#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    #[error("log directory {0} is not formatted: run `kraftwerk format --config <file> --cluster-id $(kraftwerk random-uuid)` first")]
    NotFormatted(PathBuf),
    #[error("log directory {dir} is already formatted (cluster.id={cluster_id}); use --ignore-formatted to skip it")]
    AlreadyFormatted { dir: PathBuf, cluster_id: String },
    #[error("{path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("log directories disagree: {0}")]
    Mismatch(String),
    #[error("invalid cluster id {0:?}: expected 22 characters of base64url (16 bytes), as `kraftwerk random-uuid` prints")]
    BadClusterId(String),
    #[error("i/o error on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaProperties {
    pub cluster_id: String,
    pub node_id: i32,
    pub directory_id: String,
}

/// A random UUID as Kafka prints it: 16 bytes in URL-safe base64 without padding (22 characters). Like
/// Kafka's `Uuid.randomUuid`, never one starting with '-', which command lines would take for a flag.
pub fn random_uuid() -> String {
    loop {
        let id = uuid::Uuid::new_v4();
        let s = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id.as_bytes());
        if !s.starts_with('-') {
            return s;
        }
    }
}

/// base64url decoding as Java's `Base64.getUrlDecoder()` does it, which Kafka's `Uuid.fromString` uses:
/// padding optional, and the unused low bits of the last character ignored rather than refused. Ids whose
/// last character is not canonical circulate widely (`MkU3OEVBNTcwNTJENDM2Qk`, from Confluent's
/// documentation and many compose files), and Kafka formats a directory with them.
const JAVA_URL_DECODER: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

/// Accepts what Kafka's `Uuid.fromString` accepts: at most 24 characters of base64url that decode to
/// 16 bytes. The id is kept as written (Kafka writes it to meta.properties and answers it as given).
pub fn validate_cluster_id(id: &str) -> Result<(), MetaError> {
    // Java takes padding only as whole 4-character units; the base64 crate's indifferent mode also takes
    // a partial one.
    if id.len() > 24 || (id.contains('=') && !id.len().is_multiple_of(4)) {
        return Err(MetaError::BadClusterId(id.to_string()));
    }
    match JAVA_URL_DECODER.decode(id) {
        Ok(bytes) if bytes.len() == 16 => Ok(()),
        _ => Err(MetaError::BadClusterId(id.to_string())),
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> MetaError + '_ {
    move |source| MetaError::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub fn read(dir: &Path) -> Result<Option<MetaProperties>, MetaError> {
    let path = dir.join(FILE_NAME);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(&path)(e)),
    };
    let props: BTreeMap<String, String> = crate::config::parse_properties(&text);
    let get = |k: &str| {
        props.get(k).cloned().ok_or_else(|| MetaError::Invalid {
            path: path.clone(),
            reason: format!("missing {k}"),
        })
    };
    let node_id = get("node.id")?.parse().map_err(|_| MetaError::Invalid {
        path: path.clone(),
        reason: "node.id is not an integer".into(),
    })?;
    Ok(Some(MetaProperties {
        cluster_id: get("cluster.id")?,
        node_id,
        directory_id: props.get("directory.id").cloned().unwrap_or_default(),
    }))
}

/// Writes `meta.properties` atomically (temp file, fsync, rename) so a crash never leaves half a file.
pub fn write(dir: &Path, meta: &MetaProperties) -> Result<(), MetaError> {
    use std::io::Write;
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let path = dir.join(FILE_NAME);
    let tmp = dir.join(format!("{FILE_NAME}.tmp"));
    let text = format!(
        "#\n#Written by kraftwerk format\ncluster.id={}\ndirectory.id={}\nnode.id={}\nversion=1\n",
        meta.cluster_id, meta.directory_id, meta.node_id
    );
    let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    f.write_all(text.as_bytes()).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    std::fs::rename(&tmp, &path).map_err(io(&path))?;
    Ok(())
}

/// `kraftwerk format`: writes meta.properties into each directory. Returns the directories it formatted.
pub fn format(
    dirs: &[PathBuf],
    cluster_id: &str,
    node_id: i32,
    ignore_formatted: bool,
) -> Result<Vec<PathBuf>, MetaError> {
    validate_cluster_id(cluster_id)?;
    let mut done = Vec::new();
    for dir in dirs {
        if let Some(existing) = read(dir)? {
            if ignore_formatted {
                continue;
            }
            return Err(MetaError::AlreadyFormatted {
                dir: dir.clone(),
                cluster_id: existing.cluster_id,
            });
        }
        write(
            dir,
            &MetaProperties {
                cluster_id: cluster_id.to_string(),
                node_id,
                directory_id: random_uuid(),
            },
        )?;
        done.push(dir.clone());
    }
    Ok(done)
}

/// Checks every directory is formatted for this node and the same cluster; returns the cluster id.
pub fn verify(dirs: &[PathBuf], node_id: i32) -> Result<String, MetaError> {
    let mut cluster: Option<String> = None;
    for dir in dirs {
        let meta = read(dir)?.ok_or_else(|| MetaError::NotFormatted(dir.clone()))?;
        if meta.node_id != node_id {
            return Err(MetaError::Mismatch(format!(
                "{} belongs to node.id={} but this is node.id={node_id}",
                dir.display(),
                meta.node_id
            )));
        }
        match &cluster {
            Some(c) if *c != meta.cluster_id => {
                return Err(MetaError::Mismatch(format!(
                    "{} has cluster.id={} but another directory has {c}",
                    dir.display(),
                    meta.cluster_id
                )))
            }
            _ => cluster = Some(meta.cluster_id),
        }
    }
    cluster.ok_or_else(|| MetaError::Mismatch("no log directories configured".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_uuid_is_kafka_shaped() {
        let id = random_uuid();
        assert_eq!(id.len(), 22);
        assert!((0..1000).all(|_| !random_uuid().starts_with('-')));
        validate_cluster_id(&id).unwrap();
        assert!(validate_cluster_id("not-a-cluster-id").is_err());
    }

    #[test]
    fn cluster_ids_decode_as_javas_url_decoder_does() {
        // The last 'k' carries non-zero padding bits: strict decoders refuse it, Java (and Kafka) accept it.
        validate_cluster_id("MkU3OEVBNTcwNTJENDM2Qk").unwrap();
        // Padding is optional for Java's decoder.
        validate_cluster_id("MkU3OEVBNTcwNTJENDM2Qg==").unwrap();
        // Still 16 bytes or nothing, and still the URL-safe alphabet.
        assert!(validate_cluster_id("MkU3OEVBNTcwNTJENDM2").is_err());
        assert!(validate_cluster_id("MkU3OEVBNTcwNTJENDM2QkMk").is_err());
        assert!(validate_cluster_id("MkU3OEVBNTcwNTJENDM2Q+").is_err());
        assert!(validate_cluster_id("").is_err());
        // Padding, if present, must be whole (Java: "wrong 4-byte ending unit").
        assert!(validate_cluster_id("MkU3OEVBNTcwNTJENDM2Qg=").is_err());
    }

    #[test]
    fn format_then_verify() {
        let tmp = tempfile::tempdir().unwrap();
        let dirs = vec![tmp.path().join("a"), tmp.path().join("b")];
        assert!(matches!(verify(&dirs, 1), Err(MetaError::NotFormatted(_))));
        let id = random_uuid();
        assert_eq!(format(&dirs, &id, 1, false).unwrap().len(), 2);
        assert_eq!(verify(&dirs, 1).unwrap(), id);
        assert!(matches!(verify(&dirs, 2), Err(MetaError::Mismatch(_))));
        assert!(matches!(
            format(&dirs, &id, 1, false),
            Err(MetaError::AlreadyFormatted { .. })
        ));
        assert!(format(&dirs, &id, 1, true).unwrap().is_empty());
    }
}
