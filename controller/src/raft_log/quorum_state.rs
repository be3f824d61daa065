//! The `quorum-state` file: raft's hard state (term, vote, commit).
//!
//! A few `key=value` lines, readable by an operator. It is replaced atomically (write a temp
//! file, fsync it, rename it over the old one, fsync the directory), so a crash leaves either
//! the old or the new state, never a torn one.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use raft::prelude::HardState;

use super::{HardStateStore, LogError};

const FILE_NAME: &str = "quorum-state";
const TMP_NAME: &str = "quorum-state.tmp";
const VERSION: u64 = 1;

/// The hard state file in a metadata directory.
pub(crate) struct QuorumStateFile {
    dir: PathBuf,
}

impl QuorumStateFile {
    pub(crate) fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    fn path(&self) -> PathBuf {
        self.dir.join(FILE_NAME)
    }
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> LogError + 'a {
    move |source| LogError::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

fn parse(text: &str) -> Result<HardState, LogError> {
    let mut state = HardState::default();
    let mut version = None;
    for line in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| LogError::Corrupt(format!("quorum-state line without '=': {line}")))?;
        let value: u64 = value.trim().parse().map_err(|_| {
            LogError::Corrupt(format!("quorum-state value is not a number: {line}"))
        })?;
        match key.trim() {
            "version" => version = Some(value),
            "term" => state.term = value,
            "vote" => state.vote = value,
            "commit" => state.commit = value,
            other => {
                return Err(LogError::Corrupt(format!(
                    "unknown quorum-state key {other}"
                )))
            }
        }
    }
    match version {
        Some(VERSION) => Ok(state),
        Some(v) => Err(LogError::Corrupt(format!(
            "unsupported quorum-state version {v}"
        ))),
        None => Err(LogError::Corrupt("quorum-state has no version".into())),
    }
}

fn render(state: &HardState) -> String {
    format!(
        "# kraftwerk raft hard state; replaced atomically, do not edit\nversion={VERSION}\nterm={}\nvote={}\ncommit={}\n",
        state.term, state.vote, state.commit
    )
}

impl HardStateStore for QuorumStateFile {
    fn load(&mut self) -> Result<Option<HardState>, LogError> {
        let path = self.path();
        match fs::read_to_string(&path) {
            Ok(text) => parse(&text).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(LogError::Io {
                op: "read",
                path,
                source: e,
            }),
        }
    }

    fn save(&mut self, state: &HardState) -> Result<(), LogError> {
        let tmp = self.dir.join(TMP_NAME);
        let path = self.path();
        let mut file = File::create(&tmp).map_err(io_err("create", &tmp))?;
        file.write_all(render(state).as_bytes())
            .map_err(io_err("write", &tmp))?;
        file.sync_all().map_err(io_err("fsync", &tmp))?;
        drop(file);
        fs::rename(&tmp, &path).map_err(io_err("rename", &path))?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err("fsync", &self.dir))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_missing() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = QuorumStateFile::new(dir.path());
        assert!(file.load().unwrap().is_none());
        let mut state = HardState {
            term: 7,
            vote: 2,
            commit: 41,
        };
        file.save(&state).unwrap();
        assert_eq!(
            QuorumStateFile::new(dir.path()).load().unwrap(),
            Some(state.clone())
        );
        state.commit = 42;
        file.save(&state).unwrap();
        assert_eq!(file.load().unwrap(), Some(state));
        assert!(!dir.path().join(TMP_NAME).exists());
    }

    #[test]
    fn corrupt_files_are_errors() {
        for text in [
            "term=1\n",
            "version=2\n",
            "version=1\nterm=x\n",
            "version=1\nfoo=1\n",
            "garbage",
        ] {
            assert!(matches!(parse(text), Err(LogError::Corrupt(_))), "{text:?}");
        }
        assert_eq!(parse("version=1\nterm=3\n").unwrap().term, 3);
    }
}
