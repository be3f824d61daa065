//! The `quorum-state` file: raft's hard state (term, vote, commit), and its commit hint.
//!
//! `quorum-state` is a few `key=value` lines, readable by an operator. It is replaced atomically
//! (write a temp file, fsync it, rename it over the old one, fsync the directory), so a crash
//! leaves either the old or the new state, never a torn one. It is rewritten when the term or
//! the vote changes, which raft needs durable before the node answers anyone.
//!
//! The commit index moves with every committed metadata change and raft does not need it
//! durable: a node that restarts with an older one learns the newer from the leader (Kafka's
//! KRaft keeps no high watermark in its quorum state at all). Writing it through the atomic
//! replace put two fsyncs, a rename and a directory fsync on the path of every commit, on the
//! leader and on each follower. So a commit-only change goes to `quorum-state.commit`
//! instead: 16 bytes (magic, commit, CRC32C) overwritten in place with no fsync. It survives
//! a crash of the process (the page cache keeps it); after a crash of the machine it may be
//! older, torn or missing, and is then ignored, so the restart replays less of the log at
//! open and takes the rest once a leader commits. It is only ever written after the entries
//! it covers are durable, so it is never ahead of the log.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use raft::prelude::HardState;
use tracing::warn;

use super::{HardStateStore, LogError};

const FILE_NAME: &str = "quorum-state";
const TMP_NAME: &str = "quorum-state.tmp";
const VERSION: u64 = 1;
const HINT_NAME: &str = "quorum-state.commit";
const HINT_MAGIC: [u8; 4] = *b"KWC1";
const HINT_LEN: usize = 16;

/// The hard state file in a metadata directory.
pub(crate) struct QuorumStateFile {
    dir: PathBuf,
    /// `quorum-state.commit`, opened at its first write.
    hint: Option<File>,
}

impl QuorumStateFile {
    pub(crate) fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            hint: None,
        }
    }

    fn hint_path(&self) -> PathBuf {
        self.dir.join(HINT_NAME)
    }

    /// The commit in `quorum-state.commit`, if the file is there and whole.
    fn read_hint(&self) -> Result<Option<u64>, LogError> {
        let path = self.hint_path();
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("read", &path)(e)),
        };
        let commit = decode_hint(&bytes);
        if commit.is_none() {
            // Expected after a machine crash tore or lost the unsynced write; the durable commit stands.
            warn!(path = %path.display(), len = bytes.len(), "ignoring a damaged commit hint");
        }
        Ok(commit)
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

fn encode_hint(commit: u64) -> [u8; HINT_LEN] {
    let mut buf = [0u8; HINT_LEN];
    buf[..4].copy_from_slice(&HINT_MAGIC);
    buf[4..12].copy_from_slice(&commit.to_le_bytes());
    let crc = crc32c::crc32c(&buf[..12]);
    buf[12..].copy_from_slice(&crc.to_le_bytes());
    buf
}

fn decode_hint(bytes: &[u8]) -> Option<u64> {
    let bytes: &[u8; HINT_LEN] = bytes.try_into().ok()?;
    let (body, crc) = bytes.split_at(12);
    if body[..4] != HINT_MAGIC || crc32c::crc32c(body).to_le_bytes() != crc {
        return None;
    }
    Some(u64::from_le_bytes(body[4..12].try_into().ok()?))
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
            Ok(text) => {
                let mut state = parse(&text)?;
                if let Some(commit) = self.read_hint()? {
                    state.commit = state.commit.max(commit);
                }
                Ok(Some(state))
            }
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

    fn save_commit(&mut self, commit: u64) -> Result<(), LogError> {
        let path = self.hint_path();
        let file = match &mut self.hint {
            Some(file) => file,
            hint => hint.insert(
                OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(&path)
                    .map_err(io_err("open", &path))?,
            ),
        };
        file.write_all_at(&encode_hint(commit), 0)
            .map_err(io_err("write", &path))
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
    fn a_commit_hint_newer_than_the_durable_commit_is_taken() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = QuorumStateFile::new(dir.path());
        let state = HardState {
            term: 3,
            vote: 1,
            commit: 10,
        };
        file.save(&state).unwrap();
        file.save_commit(17).unwrap();
        file.save_commit(18).unwrap();
        // Only the durable file is rewritten atomically; the hint does not touch it.
        assert!(fs::read_to_string(dir.path().join(FILE_NAME))
            .unwrap()
            .contains("commit=10"));
        let mut reopened = QuorumStateFile::new(dir.path());
        let loaded = reopened.load().unwrap().unwrap();
        assert_eq!((loaded.term, loaded.vote, loaded.commit), (3, 1, 18));
        // A later durable save with a higher commit wins over an older hint.
        file.save(&HardState {
            term: 4,
            vote: 2,
            commit: 25,
        })
        .unwrap();
        assert_eq!(reopened.load().unwrap().unwrap().commit, 25);
    }

    #[test]
    fn a_damaged_or_lone_commit_hint_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let hint = dir.path().join(HINT_NAME);
        // A hint without a durable state (never written by us) is no state.
        fs::write(&hint, encode_hint(9)).unwrap();
        assert!(QuorumStateFile::new(dir.path()).load().unwrap().is_none());
        let mut file = QuorumStateFile::new(dir.path());
        file.save(&HardState {
            term: 2,
            vote: 0,
            commit: 5,
        })
        .unwrap();
        let mut torn = encode_hint(40);
        torn[6] ^= 1;
        for damaged in [
            &torn[..],
            &encode_hint(40)[..12],
            &[][..],
            &[0u8; HINT_LEN][..],
        ] {
            fs::write(&hint, damaged).unwrap();
            assert_eq!(file.load().unwrap().unwrap().commit, 5, "{damaged:?}");
        }
        assert_eq!(decode_hint(&encode_hint(u64::MAX)), Some(u64::MAX));
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
