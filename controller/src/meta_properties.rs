//! `meta.properties`: which cluster and node a metadata directory belongs to.
//!
//! Written on first start and checked on every later one, so a directory can never be reused by
//! another cluster (or node) and silently mix two clusters' metadata, as in Kafka.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use crate::error::ControllerError;

const FILE_NAME: &str = "meta.properties";

fn storage_err(op: &str, path: &Path, e: std::io::Error) -> ControllerError {
    ControllerError::Storage(format!("{op} {}: {e}", path.display()))
}

/// Checks `dir/meta.properties` against the configured ids, creating it on first start.
pub(crate) fn ensure(dir: &Path, cluster_id: &str, node_id: i32) -> Result<(), ControllerError> {
    let path = dir.join(FILE_NAME);
    match fs::read_to_string(&path) {
        Ok(text) => check(&path, &text, cluster_id, node_id),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => write(dir, cluster_id, node_id),
        Err(e) => Err(storage_err("read", &path, e)),
    }
}

fn check(path: &Path, text: &str, cluster_id: &str, node_id: i32) -> Result<(), ControllerError> {
    let value = |key: &str| {
        text.lines()
            .filter_map(|line| line.split_once('='))
            .find(|(k, _)| k.trim() == key)
            .map(|(_, v)| v.trim().to_owned())
    };
    match value("cluster.id") {
        Some(found) if found == cluster_id => {}
        found => {
            return Err(ControllerError::InconsistentClusterId(format!(
                "Invalid cluster.id in: {}. Expected {cluster_id}, but read {}",
                path.display(),
                found.unwrap_or_else(|| "nothing".into())
            )))
        }
    }
    match value("node.id") {
        Some(found) if found == node_id.to_string() => Ok(()),
        found => Err(ControllerError::Configuration(format!(
            "Stored node id {} in {} doesn't match configured node id {node_id}",
            found.unwrap_or_else(|| "nothing".into()),
            path.display()
        ))),
    }
}

fn write(dir: &Path, cluster_id: &str, node_id: i32) -> Result<(), ControllerError> {
    let tmp = dir.join("meta.properties.tmp");
    let path = dir.join(FILE_NAME);
    let text =
        format!("#Written by kraftwerk\nversion=1\ncluster.id={cluster_id}\nnode.id={node_id}\n");
    let mut file = File::create(&tmp).map_err(|e| storage_err("create", &tmp, e))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| storage_err("write", &tmp, e))?;
    fs::rename(&tmp, &path).map_err(|e| storage_err("rename", &path, e))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| storage_err("fsync", dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_then_checked() {
        let dir = tempfile::tempdir().unwrap();
        ensure(dir.path(), "abc", 1).unwrap();
        ensure(dir.path(), "abc", 1).unwrap();
        let err = ensure(dir.path(), "other", 1).unwrap_err();
        assert_eq!(
            err.error_code(),
            crate::error::codes::INCONSISTENT_CLUSTER_ID
        );
        assert!(matches!(
            ensure(dir.path(), "abc", 2),
            Err(ControllerError::Configuration(_))
        ));
    }
}
