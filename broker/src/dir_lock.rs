//! One process per log directory, as Kafka's `.lock` file ensures: two brokers writing the same partition files
//! would corrupt them, so a second process started on a directory already in use stops at once and says which
//! directory and why. The locks are advisory `flock`s held for the life of the process (the kernel releases
//! them when it exits, even on kill -9).

use std::fs::File;
use std::path::{Path, PathBuf};

use fs2::FileExt;

/// The lock file in each log directory (Kafka's name).
pub const LOCK_FILE: &str = ".lock";

/// Why a directory could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum DirLockError {
    #[error(
        "log directory {0} is in use by another process (its {LOCK_FILE} is locked): is another kraftwerk \
         (or Kafka) running with this directory? Stop it, or give this node its own log.dirs"
    )]
    InUse(PathBuf),
    #[error("cannot lock log directory {dir}: {source}")]
    Io {
        dir: PathBuf,
        source: std::io::Error,
    },
}

/// The locks held; dropping them releases the directories.
#[derive(Debug)]
pub struct DirLocks {
    _files: Vec<File>,
}

fn lock_one(dir: &Path) -> Result<File, DirLockError> {
    let io = |source| DirLockError::Io {
        dir: dir.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(LOCK_FILE))
        .map_err(io)?;
    match file.try_lock_exclusive() {
        Ok(()) => Ok(file),
        Err(e) if e.kind() == fs2::lock_contended_error().kind() => {
            Err(DirLockError::InUse(dir.to_path_buf()))
        }
        Err(e) => Err(io(e)),
    }
}

/// Locks every directory in `dirs` (each once), or none.
pub fn lock_dirs(dirs: &[PathBuf]) -> Result<DirLocks, DirLockError> {
    let mut unique: Vec<&PathBuf> = dirs.iter().collect();
    unique.sort();
    unique.dedup();
    let files = unique
        .into_iter()
        .map(|d| lock_one(d))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(DirLocks { _files: files })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_is_locked_once_and_released_on_drop() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let dirs = vec![
            a.path().to_path_buf(),
            b.path().to_path_buf(),
            a.path().to_path_buf(),
        ];
        let held = lock_dirs(&dirs).expect("free directories lock");
        // A second holder (another open file description, as another process would have) is refused.
        let err = lock_dirs(&[b.path().to_path_buf()]).unwrap_err();
        assert!(
            matches!(err, DirLockError::InUse(ref d) if d == b.path()),
            "{err}"
        );
        assert!(err.to_string().contains("in use by another process"));
        drop(held);
        lock_dirs(&dirs).expect("released on drop");
    }
}
