//! Locating the `kraftwerk` binary.
//!
//! `env!("CARGO_BIN_EXE_kraftwerk")` only exists inside the broker crate, so we look in the workspace
//! target directory instead; `scripts/test.sh` builds the binary before running the tests.

use std::path::{Path, PathBuf};

use crate::error::HarnessError;

/// Environment variable that overrides where the binary is looked for.
pub const BIN_ENV: &str = "KRAFTWERK_BIN";

/// Path of the `kraftwerk` binary: `$KRAFTWERK_BIN`, else `<target>/<profile>/kraftwerk` where `<target>`
/// is `$CARGO_TARGET_DIR` or the workspace's `target/`, and `<profile>` matches how the tests were built
/// (then the other profile as a fallback).
pub fn kraftwerk_binary() -> Result<PathBuf, HarnessError> {
    if let Some(path) = std::env::var_os(BIN_ENV) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(HarnessError::BinaryNotFound {
                searched: vec![path],
            })
        };
    }
    let candidates = candidate_paths(&target_dir());
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or(HarnessError::BinaryNotFound {
            searched: candidates,
        })
}

fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("target"),
    }
}

fn candidate_paths(target: &Path) -> Vec<PathBuf> {
    let (first, second) = if cfg!(debug_assertions) {
        ("debug", "release")
    } else {
        ("release", "debug")
    };
    vec![
        target.join(first).join("kraftwerk"),
        target.join(second).join("kraftwerk"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_prefer_the_current_profile() {
        let c = candidate_paths(Path::new("/t"));
        let expected = if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        };
        assert_eq!(c[0], Path::new("/t").join(expected).join("kraftwerk"));
        assert_eq!(c.len(), 2);
    }
}
