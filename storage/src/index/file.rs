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
//!
//! A new index's file is made by its first write, truncation, fsync or handle, not when the index is created:
//! a new partition's empty active segment then costs one file (its log), not three. Creating a topic of
//! thousands of partitions is bound by inode creation in the filesystem; the two index files were two of every
//! partition's five. A flush, roll or close fsyncs the index, which makes the file, so every sealed or closed
//! segment has its index files as before; an active segment whose indexes were never written has none after a
//! crash, and is rebuilt from the log as any crashed active segment is.

use std::fs::{File, OpenOptions};
use std::io;
use std::marker::PhantomData;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

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
    /// Whether the file at `path` is this index's (holding its first `persisted` entries). Until then it may be
    /// missing, or be a stale file of an earlier segment at the same offset: the first open creates or empties
    /// it. Atomic because [`Self::handle`] (a roll's background fsync) opens through `&self`.
    on_disk: AtomicBool,
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
    /// A new, empty index at `path`. The file is created (or an existing one emptied) by the first write,
    /// truncation, fsync or handle, not now (see the module comment).
    pub(crate) fn create(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
            entries: Vec::new(),
            persisted: 0,
            on_disk: AtomicBool::new(false),
            _entry: PhantomData,
        }
    }

    /// Loads the index at `path`; a missing or ragged file is recreated empty and reported.
    pub(crate) fn load(path: &Path) -> io::Result<(Self, LoadStatus)> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok((Self::create(path), LoadStatus::NeedsRebuild))
            }
            Err(e) => return Err(e),
        };
        if bytes.len() % E::SIZE != 0 {
            return Ok((Self::create(path), LoadStatus::NeedsRebuild));
        }
        let entries: Option<Vec<E>> = bytes.chunks_exact(E::SIZE).map(E::decode).collect();
        let Some(entries) = entries else {
            return Ok((Self::create(path), LoadStatus::NeedsRebuild));
        };
        Ok((Self::from_parts(path, entries), LoadStatus::Loaded))
    }

    fn from_parts(path: &Path, entries: Vec<E>) -> Self {
        let persisted = entries.len();
        Self {
            path: path.to_path_buf(),
            entries,
            persisted,
            on_disk: AtomicBool::new(true),
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

    /// Creates the file if nothing created it yet (an index with no entries): a sealed segment's indexes are
    /// both on disk, so that opening it after a clean shutdown loads them rather than rebuilding them.
    pub(crate) fn create_if_missing(&mut self) -> Result<(), IndexError> {
        if !self.on_disk.load(Ordering::Acquire) {
            self.open_file()?;
        }
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

    /// Opens the index file for a write, truncation or fsync; the handle is closed when dropped. The first
    /// open of a new index creates the file, or empties a stale one (nothing of this index is in it yet).
    fn open_file(&self) -> Result<File, IndexError> {
        let first = !self.on_disk.load(Ordering::Acquire);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(first)
            .truncate(first)
            .open(&self.path)
            .map_err(|e| self.err(e))?;
        if first {
            self.on_disk.store(true, Ordering::Release);
        }
        Ok(file)
    }

    fn err(&self, e: io::Error) -> IndexError {
        IndexError::Io(self.path.clone(), e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::offset_index::OffsetEntry;

    fn entry(relative_offset: u32, position: u32) -> OffsetEntry {
        OffsetEntry {
            relative_offset,
            position,
        }
    }

    #[test]
    fn a_new_index_makes_its_file_at_the_first_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000000.index");
        let mut index = IndexFile::<OffsetEntry>::create(&path);
        assert!(!path.exists(), "creating an index makes no file");
        index.push(entry(0, 0)).unwrap();
        index.truncate(1).unwrap();
        assert!(
            !path.exists(),
            "pending entries and a no-op truncation make no file"
        );
        index.write_pending().unwrap();
        assert_eq!(std::fs::read(&path).unwrap().len(), OffsetEntry::SIZE);
        let (loaded, status) = IndexFile::<OffsetEntry>::load(&path).unwrap();
        assert_eq!(status, LoadStatus::Loaded);
        assert_eq!(loaded.entries().len(), 1);
    }

    #[test]
    fn an_fsync_or_a_handle_makes_the_file_of_an_empty_index() {
        let dir = tempfile::tempdir().unwrap();
        let synced = dir.path().join("a.index");
        IndexFile::<OffsetEntry>::create(&synced).sync().unwrap();
        assert_eq!(std::fs::read(&synced).unwrap().len(), 0);
        let handled = dir.path().join("b.index");
        drop(IndexFile::<OffsetEntry>::create(&handled).handle().unwrap());
        assert!(handled.exists());
    }

    #[test]
    fn the_first_write_empties_a_stale_file_at_the_same_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000000.index");
        // An earlier segment's index with three entries, left where the new one goes.
        let mut stale = IndexFile::<OffsetEntry>::create(&path);
        for i in 0..3 {
            stale.push(entry(i, i * 100)).unwrap();
        }
        stale.write_pending().unwrap();
        assert_eq!(std::fs::read(&path).unwrap().len(), 3 * OffsetEntry::SIZE);

        let mut fresh = IndexFile::<OffsetEntry>::create(&path);
        fresh.push(entry(7, 5)).unwrap();
        fresh.write_pending().unwrap();
        let (loaded, _) = IndexFile::<OffsetEntry>::load(&path).unwrap();
        assert_eq!(
            loaded.entries().len(),
            1,
            "nothing of the stale file is left"
        );
        assert_eq!(loaded.entries()[0].relative_offset, 7);
        // Later writes append after what this index wrote, not after the stale file.
        fresh.push(entry(8, 6)).unwrap();
        fresh.write_pending().unwrap();
        assert_eq!(std::fs::read(&path).unwrap().len(), 2 * OffsetEntry::SIZE);
    }
}
