//! An index kept as a Vec in memory plus an append-only file of fixed-size big-endian entries.
//!
//! Entries are written lazily (on flush, roll, close, or once enough are pending): the index of
//! the active segment is rebuilt from the log after an unclean shutdown anyway, so a lost tail of
//! entries costs nothing and the append path saves a syscall per entry.
//!
//! No file descriptor is held between writes: the file is opened by path for each batch of entries,
//! truncation and fsync. A broker hosts thousands of partitions, each with an offset and a time index
//! per segment; holding both open tripled the descriptors per partition (log + two indexes), so a
//! broker hit a 20,000 open-file limit near 6,600 partitions, where Kafka (which mmaps its indexes and
//! closes them) needs one per partition. The writes are rare (every [`WRITE_BATCH`] entries, i.e.
//! every ~512 KiB of records at the default `index.interval.bytes`), so the extra open costs nothing
//! measurable. Renames (the cleaner's swap) happen only while the segment is closed, so the path is
//! always the file's current name.

use std::fs::{File, OpenOptions};
use std::io;
use std::marker::PhantomData;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::IndexError;

/// A fixed-size index entry with a big-endian encoding.
pub(crate) trait IndexEntry: Copy {
    const SIZE: usize;
    fn encode(&self, out: &mut Vec<u8>);
    /// Decodes one entry from exactly [`Self::SIZE`] bytes.
    fn decode(bytes: &[u8]) -> Option<Self>;
}

/// Pending entries beyond this many are written out during append.
const WRITE_BATCH: usize = 128;

#[derive(Debug)]
pub(crate) struct IndexFile<E> {
    path: PathBuf,
    entries: Vec<E>,
    /// How many leading entries are already in the file.
    persisted: usize,
    _entry: PhantomData<E>,
}

/// What loading an existing index file found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LoadStatus {
    Loaded,
    /// Missing or not a whole number of entries: must be rebuilt from the log.
    NeedsRebuild,
}

impl<E: IndexEntry> IndexFile<E> {
    /// Creates (or empties) the index file at `path`.
    pub(crate) fn create(path: &Path) -> io::Result<Self> {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        Ok(Self::from_parts(path, Vec::new()))
    }

    /// Loads the index at `path`; a missing or ragged file is recreated empty and reported.
    pub(crate) fn load(path: &Path) -> io::Result<(Self, LoadStatus)> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok((Self::create(path)?, LoadStatus::NeedsRebuild))
            }
            Err(e) => return Err(e),
        };
        if bytes.len() % E::SIZE != 0 {
            return Ok((Self::create(path)?, LoadStatus::NeedsRebuild));
        }
        let entries: Option<Vec<E>> = bytes.chunks_exact(E::SIZE).map(E::decode).collect();
        let Some(entries) = entries else {
            return Ok((Self::create(path)?, LoadStatus::NeedsRebuild));
        };
        Ok((Self::from_parts(path, entries), LoadStatus::Loaded))
    }

    fn from_parts(path: &Path, entries: Vec<E>) -> Self {
        let persisted = entries.len();
        Self {
            path: path.to_path_buf(),
            entries,
            persisted,
            _entry: PhantomData,
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn entries(&self) -> &[E] {
        &self.entries
    }

    pub(crate) fn last(&self) -> Option<&E> {
        self.entries.last()
    }

    /// Adds an entry in memory, writing pending ones out once enough accumulate.
    pub(crate) fn push(&mut self, entry: E) -> Result<(), IndexError> {
        self.entries.push(entry);
        if self.entries.len() - self.persisted >= WRITE_BATCH {
            self.write_pending()?;
        }
        Ok(())
    }

    /// Keeps only the first `len` entries, in memory and on disk.
    pub(crate) fn truncate(&mut self, len: usize) -> Result<(), IndexError> {
        if len >= self.entries.len() && self.persisted <= len {
            return Ok(());
        }
        self.entries.truncate(len);
        if self.persisted > len {
            self.open_file()?
                .set_len((len * E::SIZE) as u64)
                .map_err(|e| self.err(e))?;
            self.persisted = len;
        }
        Ok(())
    }

    /// Writes entries not yet in the file with one positioned write.
    pub(crate) fn write_pending(&mut self) -> Result<(), IndexError> {
        let Some(pending) = self.entries.get(self.persisted..).filter(|p| !p.is_empty()) else {
            return Ok(());
        };
        let mut buf = Vec::with_capacity(pending.len() * E::SIZE);
        for e in pending {
            e.encode(&mut buf);
        }
        self.open_file()?
            .write_all_at(&buf, (self.persisted * E::SIZE) as u64)
            .map_err(|e| self.err(e))?;
        self.persisted = self.entries.len();
        Ok(())
    }

    /// Writes pending entries and fsyncs the file.
    pub(crate) fn sync(&mut self) -> Result<(), IndexError> {
        self.write_pending()?;
        self.open_file()?.sync_data().map_err(|e| self.err(e))
    }

    /// A handle on the file (opened now, by path), for fsync from another thread.
    pub(crate) fn handle(&self) -> Result<File, IndexError> {
        self.open_file()
    }

    /// Opens the index file for a write, truncation or fsync; the handle is closed when dropped.
    fn open_file(&self) -> Result<File, IndexError> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.path)
            .map_err(|e| self.err(e))
    }

    fn err(&self, e: io::Error) -> IndexError {
        IndexError::Io(self.path.clone(), e)
    }
}
