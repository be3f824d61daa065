//! One segment: a `.log` file of whole batches plus its sparse `.index` and `.timeindex`.
//!
//! The segment knows nothing about configs or log-level offsets; [`crate::log`] decides when to
//! roll, delete or recover it.

mod chunk_reader;
mod indexed;
mod reserve;

use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use crate::batch::{
    find_record, validate_stored_batch, BatchHeader, BatchInfo, HEADER_SIZE, LOG_OVERHEAD,
};
use crate::index::{LoadStatus, OffsetIndex, TimeIndex};
use crate::StorageError;
use chunk_reader::ChunkReader;
pub(crate) use indexed::Indexed;
pub use reserve::Reservation;

/// Extension of segment data files.
pub(crate) const LOG_EXT: &str = "log";
/// Extension of offset index files.
pub(crate) const INDEX_EXT: &str = "index";
/// Extension of time index files.
pub(crate) const TIME_INDEX_EXT: &str = "timeindex";

/// Read size for scans that walk headers (lookups): one index interval plus slack.
const LOOKUP_CHUNK: usize = 16 * 1024;
/// Read size for scans that verify every batch (recovery).
const RECOVERY_CHUNK: usize = 4 * 1024 * 1024;
/// Largest decompressed records section a timestamp lookup reads from one batch.
const MAX_DECOMPRESSED_BYTES: usize = 256 << 20;

/// The handle a [`Segment::deferred`] segment holds in place of its data file: `/dev/null`, opened once for the
/// process, never read (such a segment is empty) nor written.
fn placeholder_file() -> Option<Arc<File>> {
    static PLACEHOLDER: std::sync::OnceLock<Option<Arc<File>>> = std::sync::OnceLock::new();
    PLACEHOLDER
        .get_or_init(|| File::open("/dev/null").ok().map(Arc::new))
        .clone()
}

/// Writes all of `parts` at `position` of `file`: a seek, then writev(2) until everything is written (more
/// than one call only past the kernel's iovec limit or after a short write). Only the appending owner
/// uses the file's cursor: the reads sharing the handle are positioned (pread, sendfile with an offset).
fn write_all_vectored_at(
    file: &File,
    mut parts: &mut [IoSlice<'_>],
    position: u64,
) -> io::Result<()> {
    let mut file = file;
    file.seek(SeekFrom::Start(position))?;
    IoSlice::advance_slices(&mut parts, 0);
    while !parts.is_empty() {
        match file.write_vectored(parts) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut parts, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// `<dir>/<20-digit base offset>.<ext>`, Kafka's segment file naming.
pub(crate) fn segment_path(dir: &Path, base_offset: i64, ext: &str) -> PathBuf {
    dir.join(format!("{base_offset:020}.{ext}"))
}

/// The base offset encoded in a segment file name, if `name` is `<20 digits>.<ext>`.
pub(crate) fn parse_segment_name(name: &str, ext: &str) -> Option<i64> {
    let stem = name.strip_suffix(ext)?.strip_suffix('.')?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

#[derive(Debug)]
pub(crate) struct Segment {
    base_offset: i64,
    /// Shared with the [`SegmentView`]s fetches take (one allocation per segment, not per fetch).
    log_path: Arc<Path>,
    /// Shared with the [`SegmentView`]s fetches take, so a segment deleted or replaced meanwhile stays
    /// readable (the inode lives while a handle does) and the read needs no lock.
    log: Arc<File>,
    /// The data file does not exist yet ([`Self::deferred`]): `log` is a shared placeholder that is never read
    /// (the segment is empty) and nothing is written, synced or indexed until [`Self::create_file`].
    deferred: bool,
    /// Committed bytes; reads never look past this, appends write here.
    size: u64,
    /// Blocks allocated past `size` for the appends to come (the file's length stays `size`).
    reserved: Reservation,
    /// When the segment was created (or its file last modified, for reopened ones).
    created_ms: i64,
    idx: Indexed,
}

/// What the first batch a verifying scan meets must look like; later ones must start where it
/// ends, or after it in a compacted log (gaps are where the log cleaner removed whole batches).
#[derive(Clone, Copy)]
enum FirstBatch {
    /// Starts at this offset (the segment base, when scanning from position 0).
    StartsAt(i64),
    /// Ends at this offset (the last offset-index entry's, when scanning from it).
    EndsAt(i64),
}

/// Where a verifying scan stopped.
struct ScanEnd {
    /// End of the last good batch.
    valid_end: u64,
    /// Why the scan stopped before the end of the file, if it did.
    problem: Option<String>,
}

impl Segment {
    /// Creates an empty segment (emptying any stale files of the same name).
    pub(crate) fn create(dir: &Path, base_offset: i64, now_ms: i64) -> Result<Self, StorageError> {
        Self::create_with_suffix(dir, base_offset, now_ms, "")
    }

    /// Creates an empty segment whose three files carry `suffix` after their usual names (the cleaner writes
    /// `<base>.log.cleaned` and its indexes before swapping them in).
    pub(crate) fn create_with_suffix(
        dir: &Path,
        base_offset: i64,
        now_ms: i64,
        suffix: &str,
    ) -> Result<Self, StorageError> {
        let with = |ext: &str| {
            let mut path = segment_path(dir, base_offset, ext).into_os_string();
            path.push(suffix);
            PathBuf::from(path)
        };
        let log_path = with(LOG_EXT);
        let log = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&log_path)
            .map(Arc::new)
            .map_err(|e| StorageError::io("create", &log_path, e))?;
        // The index files are made by their first write or fsync (a flush, roll or close), not here.
        let offset_index = OffsetIndex::create(&with(INDEX_EXT));
        let time_index = TimeIndex::create(&with(TIME_INDEX_EXT));
        Ok(Self {
            base_offset,
            log_path: log_path.into(),
            log,
            deferred: false,
            size: 0,
            reserved: Reservation::default(),
            created_ms: now_ms,
            idx: Indexed::new(base_offset, offset_index, time_index),
        })
    }

    /// An empty segment whose files are not created yet (a partition no data reached): creating thousands of
    /// partitions then costs no inode each. `None` when the placeholder handle cannot be had; the caller then
    /// creates the segment at once. [`Self::create_file`] must run before the first append.
    pub(crate) fn deferred(dir: &Path, base_offset: i64, now_ms: i64) -> Option<Self> {
        let log = placeholder_file()?;
        Some(Self {
            base_offset,
            log_path: segment_path(dir, base_offset, LOG_EXT).into(),
            log,
            deferred: true,
            size: 0,
            reserved: Reservation::default(),
            created_ms: now_ms,
            idx: Indexed::new(
                base_offset,
                OffsetIndex::create(&segment_path(dir, base_offset, INDEX_EXT)),
                TimeIndex::create(&segment_path(dir, base_offset, TIME_INDEX_EXT)),
            ),
        })
    }

    /// Creates the data file of a [`Self::deferred`] segment (its directory must exist); a no-op otherwise.
    pub(crate) fn create_file(&mut self) -> Result<(), StorageError> {
        if !self.deferred {
            return Ok(());
        }
        self.log = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&self.log_path)
            .map(Arc::new)
            .map_err(|e| StorageError::io("create", &self.log_path, e))?;
        self.deferred = false;
        Ok(())
    }

    /// Opens an existing segment. Its in-memory state is not usable until
    /// [`Self::load_tail`] or [`Self::recover`] ran; the flag says whether both indexes loaded.
    pub(crate) fn open(dir: &Path, base_offset: i64) -> Result<(Self, bool), StorageError> {
        let log_path = segment_path(dir, base_offset, LOG_EXT);
        let log = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&log_path)
            .map(Arc::new)
            .map_err(|e| StorageError::io("open", &log_path, e))?;
        let meta = log
            .metadata()
            .map_err(|e| StorageError::io("stat", &log_path, e))?;
        let size = meta.len();
        let created_ms = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_millis() as i64);
        let index_path = segment_path(dir, base_offset, INDEX_EXT);
        let (offset_index, s1) = OffsetIndex::load(&index_path, size)
            .map_err(|e| StorageError::io("load index", &index_path, e))?;
        let time_path = segment_path(dir, base_offset, TIME_INDEX_EXT);
        let (time_index, s2) = TimeIndex::load(&time_path)
            .map_err(|e| StorageError::io("load index", &time_path, e))?;
        let loaded = s1 == LoadStatus::Loaded && s2 == LoadStatus::Loaded;
        // Blocks an active segment had reserved when its process was killed.
        reserve::trim_found_surplus(&log, size, reserve::allocated_in(&meta))
            .map_err(|e| StorageError::io("trim", &log_path, e))?;
        let segment = Self {
            base_offset,
            log_path: log_path.into(),
            log,
            deferred: false,
            size,
            reserved: Reservation::default(),
            created_ms,
            idx: Indexed::new(base_offset, offset_index, time_index),
        };
        Ok((segment, loaded))
    }

    pub(crate) fn base_offset(&self) -> i64 {
        self.base_offset
    }

    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// Offset after the last batch (the base offset when empty).
    pub(crate) fn next_offset(&self) -> i64 {
        self.idx.next_offset()
    }

    /// The largest timestamp of the segment's batches, -1 while none carries one.
    pub(crate) fn max_timestamp_so_far(&self) -> i64 {
        self.idx.max_timestamp_and_offset().0
    }

    /// The segment's max timestamp so far (-1 while no batch carries one) and a view whose offset hint is at or
    /// before the first batch that reached it, for [`SegmentView::record_with_timestamp`]. Memory only.
    pub(crate) fn max_timestamp_view(&self) -> (i64, SegmentView) {
        let (timestamp, offset) = self.idx.max_timestamp_and_offset();
        (timestamp, self.view(Some(offset), None))
    }

    /// The time the segment's age is measured from for `max.compaction.lag.ms`: its first batch's max
    /// timestamp, or its creation time (Kafka's rule).
    pub(crate) fn roll_reference_ms(&self) -> i64 {
        self.idx.first_batch_timestamp().unwrap_or(self.created_ms)
    }

    /// How long the segment has waited to roll for `segment.ms`, as Kafka's `LogSegment.timeWaitedForRoll`:
    /// record time from its first batch's max timestamp to the newest timestamp being appended, or wall-clock
    /// time since it was created when its first batch carries none. Record time, not `now`: a log of records
    /// with old timestamps (mirrored, replayed, or a client's clock) would otherwise be rolled before every
    /// append, leaving one batch per segment, and reads, which stop at a segment's end, one batch per fetch.
    pub(crate) fn time_waited_for_roll(&self, now_ms: i64, incoming_max_timestamp: i64) -> i64 {
        match self.idx.first_batch_timestamp() {
            Some(first) => incoming_max_timestamp.saturating_sub(first),
            None => now_ms.saturating_sub(self.created_ms),
        }
    }

    /// The timestamp retention compares against: the largest record timestamp, or the file's
    /// modification time if no batch carries one.
    pub(crate) fn retention_timestamp(&self) -> i64 {
        match self.idx.max_timestamp() {
            Some((ts, _)) => ts,
            None => self
                .log
                .metadata()
                .ok()
                .and_then(|m| m.modified().ok())
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(self.created_ms, |d| d.as_millis() as i64),
        }
    }

    /// Whether `offset` is representable relative to this segment's base (u32 index fields).
    pub(crate) fn can_hold_offset(&self, offset: i64) -> bool {
        offset
            .checked_sub(self.base_offset)
            .is_some_and(|d| (0..=i64::from(u32::MAX)).contains(&d))
    }

    /// Writes `data` (validated batches described by `infos`, positions relative to `data`)
    /// at the end of the segment with one positioned write, then indexes it.
    pub(crate) fn append(
        &mut self,
        data: &[u8],
        infos: &[BatchInfo],
        index_interval: u32,
    ) -> Result<(), StorageError> {
        self.append_parts(&mut [IoSlice::new(data)], infos, index_interval)
    }

    /// [`append`](Self::append) of batches held in pieces: `parts` in order are the bytes to write (a
    /// leader's rewritten headers between the slices of the producer's buffer they replace), `infos`
    /// the batches they make, positions relative to the start of the first part. Written with writev(2)
    /// at the end of the segment, so nothing is copied into one buffer first.
    pub(crate) fn append_parts(
        &mut self,
        parts: &mut [IoSlice<'_>],
        infos: &[BatchInfo],
        index_interval: u32,
    ) -> Result<(), StorageError> {
        if self.deferred {
            return Err(StorageError::io(
                "write",
                &self.log_path,
                io::Error::other("segment file not created yet"),
            ));
        }
        let start = self.size;
        let len: usize = parts.iter().map(|p| p.len()).sum();
        self.reserved.before_write(&self.log, start, len as u64);
        if let Err(e) = write_all_vectored_at(&self.log, parts, start) {
            // Drop any partial write so the file keeps ending on a batch boundary.
            let _ = self.log.set_len(start);
            self.reserved.truncated();
            return Err(StorageError::io("write", &self.log_path, e));
        }
        self.size += len as u64;
        for info in infos {
            self.idx
                .track(start + info.position as u64, info, index_interval)
                .map_err(|e| self.index_error(e))?;
        }
        Ok(())
    }

    /// Rebuilds in-memory state from the indexes plus a verifying scan of the batches after
    /// the last offset-index entry. Returns false if that tail is not a clean run of valid
    /// batches up to the end of the file (the caller then runs [`Self::recover`]).
    /// `gaps`: whether offsets may jump forward between batches (a compacted log's segments); otherwise a jump
    /// is taken for a damaged base offset (outside the CRC) and ends the valid data.
    pub(crate) fn load_tail(
        &mut self,
        index_interval: u32,
        gaps: bool,
    ) -> Result<bool, StorageError> {
        let last_entry = self.idx.offset_index().last();
        let start = u64::from(last_entry.map_or(0, |e| e.position));
        let first_batch = match last_entry {
            Some(e) => FirstBatch::EndsAt(self.base_offset + i64::from(e.relative_offset)),
            None => FirstBatch::StartsAt(self.base_offset),
        };
        let first = if self.size >= HEADER_SIZE as u64 {
            let mut buf = [0u8; HEADER_SIZE];
            self.log
                .read_exact_at(&mut buf, 0)
                .map_err(|e| StorageError::io("read", &self.log_path, e))?;
            BatchHeader::parse(&buf).ok().map(|h| h.max_timestamp)
        } else {
            None
        };
        self.idx.reset_from_indexes(first);
        let idx = &mut self.idx;
        let end = scan_batches(
            &self.log,
            &self.log_path,
            start,
            self.size,
            first_batch,
            gaps,
            |pos, info| idx.track(pos, info, index_interval),
        )?;
        let consistent = end.problem.is_none() && end.valid_end == self.size;
        if consistent {
            // Entries the scan re-derived (say, after a crash between roll and seal).
            self.idx.write_pending().map_err(|e| self.index_error(e))?;
        }
        Ok(consistent)
    }

    /// Verifies every batch from the start, truncates the file at the first torn or corrupt
    /// one, and rebuilds both indexes. Returns the number of bytes cut off.
    pub(crate) fn recover(&mut self, index_interval: u32, gaps: bool) -> Result<u64, StorageError> {
        let file_len = self
            .log
            .metadata()
            .map_err(|e| StorageError::io("stat", &self.log_path, e))?
            .len();
        self.idx.clear().map_err(|e| self.index_error(e))?;
        let idx = &mut self.idx;
        let first_batch = FirstBatch::StartsAt(self.base_offset);
        let end = scan_batches(
            &self.log,
            &self.log_path,
            0,
            file_len,
            first_batch,
            gaps,
            |pos, info| idx.track(pos, info, index_interval),
        )?;
        if let Some(problem) = &end.problem {
            tracing::warn!(
                segment = %self.log_path.display(),
                position = end.valid_end,
                file_len,
                %problem,
                "truncating segment at first invalid batch"
            );
        }
        if end.valid_end != file_len {
            self.log
                .set_len(end.valid_end)
                .map_err(|e| StorageError::io("truncate", &self.log_path, e))?;
            self.reserved.truncated();
        }
        self.size = end.valid_end;
        self.idx.write_pending().map_err(|e| self.index_error(e))?;
        Ok(file_len - end.valid_end)
    }

    /// Drops every batch holding offsets >= `offset` (the batch containing it included).
    pub(crate) fn truncate_to(
        &mut self,
        offset: i64,
        index_interval: u32,
        gaps: bool,
    ) -> Result<(), StorageError> {
        let Some((pos, header)) = self.find_batch(offset)? else {
            return Ok(());
        };
        self.log
            .set_len(pos)
            .map_err(|e| StorageError::io("truncate", &self.log_path, e))?;
        self.reserved.truncated();
        self.size = pos;
        self.idx
            .truncate(pos, header.base_offset)
            .map_err(|e| self.index_error(e))?;
        if !self.load_tail(index_interval, gaps)? {
            self.recover(index_interval, gaps)?;
        }
        Ok(())
    }

    /// The first batch whose last offset is >= `offset`: (its position, its header).
    pub(crate) fn find_batch(
        &self,
        offset: i64,
    ) -> Result<Option<(u64, BatchHeader)>, StorageError> {
        find_batch_in(
            &self.log,
            &self.log_path,
            self.size,
            self.lookup_position(offset),
            offset,
        )
    }

    /// Where a walk of headers looking for `offset` starts: the last indexed batch at or before it (memory only).
    fn lookup_position(&self, offset: i64) -> u64 {
        u64::from(
            self.idx
                .offset_index()
                .lookup(offset.saturating_sub(self.base_offset)),
        )
    }

    /// What a fetch needs to read this segment later without the log's lock: the shared file handle, the
    /// committed size now, and the index positions to start the header walks for `offset` and, when it falls
    /// in this segment, for `bound`. Memory only: no disk access.
    pub(crate) fn view(&self, offset: Option<i64>, bound: Option<i64>) -> SegmentView {
        SegmentView {
            file: Arc::clone(&self.log),
            path: Arc::clone(&self.log_path),
            size: self.size,
            offset_hint: offset.map_or(0, |o| self.lookup_position(o)),
            bound_hint: bound.map(|b| (b, self.lookup_position(b))),
        }
    }

    /// Calls `f` with the header of every batch in the segment, in order, reading only headers (a chunked
    /// walk, no record data): for state rebuilt from batch headers alone, such as the leader-epoch cache.
    pub(crate) fn for_each_header(
        &self,
        mut f: impl FnMut(&BatchHeader),
    ) -> Result<(), StorageError> {
        let mut reader = ChunkReader::new(&self.log, self.size, LOOKUP_CHUNK);
        let mut pos = 0;
        while pos < self.size {
            let (header, size) = self.header_at(&mut reader, pos)?;
            f(&header);
            pos += size;
        }
        Ok(())
    }

    /// First record at or after `min_offset` whose timestamp is >= `timestamp`, as (offset, timestamp, its batch's
    /// partition leader epoch).
    ///
    /// Kafka's `LogSegment.findOffsetByTimestamp`: the time index picks where to start, then batch headers are
    /// walked to the first batch whose max timestamp qualifies, and its records (decompressed if need be) are
    /// searched; a batch whose qualifying records all lie below `min_offset` passes the search on to the next.
    pub(crate) fn offset_for_timestamp(
        &self,
        timestamp: i64,
        min_offset: i64,
    ) -> Result<Option<(i64, i64, i32)>, StorageError> {
        if self
            .idx
            .max_timestamp()
            .is_none_or(|(ts, _)| ts < timestamp)
        {
            return Ok(None);
        }
        let from_index = self
            .idx
            .time_index()
            .last_before(timestamp)
            .map_or(self.base_offset, |e| {
                self.base_offset + i64::from(e.relative_offset)
            });
        let Some((mut pos, _)) = self.find_batch(from_index.max(min_offset))? else {
            return Ok(None);
        };
        let mut reader = ChunkReader::new(&self.log, self.size, LOOKUP_CHUNK);
        while pos < self.size {
            let (header, size) = self.header_at(&mut reader, pos)?;
            if header.max_timestamp >= timestamp && header.last_offset() >= min_offset {
                let bytes = reader
                    .get(pos, size as usize)
                    .map_err(|e| StorageError::io("read", &self.log_path, e))?
                    .ok_or_else(|| self.corrupt(pos, "batch past end of segment".into()))?;
                let found = find_record(bytes, MAX_DECOMPRESSED_BYTES, |offset, ts| {
                    offset >= min_offset && ts >= timestamp
                })
                .map_err(|e| self.corrupt(pos, e.to_string()))?;
                if let Some((offset, ts)) = found {
                    return Ok(Some((offset, ts, header.partition_leader_epoch)));
                }
            }
            pos += size;
        }
        Ok(None)
    }

    /// Completes the time index with the segment's final max timestamp and writes pending
    /// index entries, and frees the blocks reserved past the data; called when the segment stops being
    /// the active one and on close.
    pub(crate) fn seal(&mut self) -> Result<(), StorageError> {
        if self.deferred {
            return Ok(());
        }
        self.reserved
            .trim_surplus(&self.log, self.size)
            .map_err(|e| StorageError::io("trim", &self.log_path, e))?;
        self.idx.seal().map_err(|e| self.index_error(e))
    }

    /// Writes pending index entries and fsyncs data and indexes.
    pub(crate) fn sync(&mut self) -> Result<(), StorageError> {
        if self.deferred {
            return Ok(());
        }
        self.idx.write_pending().map_err(|e| self.index_error(e))?;
        self.log
            .sync_data()
            .map_err(|e| StorageError::io("fsync", &self.log_path, e))?;
        self.idx.sync().map_err(|e| self.index_error(e))
    }

    /// Handles on the three files, for an fsync on another thread (after [`Self::seal`]).
    pub(crate) fn file_handles(&self) -> Result<Vec<(PathBuf, File)>, StorageError> {
        if self.deferred {
            return Ok(Vec::new());
        }
        let log = self
            .log
            .try_clone()
            .map_err(|e| StorageError::io("dup", &self.log_path, e))?;
        let mut handles = vec![(self.log_path.to_path_buf(), log)];
        handles.extend(self.idx.file_handles().map_err(|e| self.index_error(e))?);
        Ok(handles)
    }

    /// The data file's path.
    pub(crate) fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Removes the segment's files.
    pub(crate) fn delete(self) -> Result<(), StorageError> {
        let paths = [
            self.log_path.to_path_buf(),
            self.idx.offset_index_path().to_path_buf(),
            self.idx.time_index_path().to_path_buf(),
        ];
        drop(self);
        for path in paths {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(StorageError::io("delete", &path, e)),
            }
        }
        Ok(())
    }

    /// Decodes the header at `pos` and checks that the batch fits the segment.
    fn header_at(
        &self,
        reader: &mut ChunkReader<'_>,
        pos: u64,
    ) -> Result<(BatchHeader, u64), StorageError> {
        header_in(reader, &self.log_path, self.size, pos)
    }

    fn corrupt(&self, position: u64, reason: String) -> StorageError {
        StorageError::CorruptLog {
            path: self.log_path.to_path_buf(),
            position,
            reason,
        }
    }

    fn index_error(&self, e: indexed::IndexError) -> StorageError {
        match e {
            indexed::IndexError::Io(path, e) => StorageError::io("write index", &path, e),
            indexed::IndexError::Overflow(offset) => StorageError::OffsetOverflow(offset),
        }
    }
}

/// A snapshot of one segment taken under the log's lock ([`Segment::view`]), read after it is released.
#[derive(Debug, Clone)]
pub(crate) struct SegmentView {
    pub(crate) file: Arc<File>,
    pub(crate) path: Arc<Path>,
    /// Committed bytes when the view was taken: nothing past it is read.
    pub(crate) size: u64,
    /// Where to start looking for the fetch offset.
    pub(crate) offset_hint: u64,
    /// The read's upper bound when it falls inside this segment, with where to start looking for it.
    pub(crate) bound_hint: Option<(i64, u64)>,
}

/// The first batch from `from` on (a batch boundary) whose last offset is >= `offset`, in the first `size`
/// bytes of `file`.
///
/// The first header is read alone (61 bytes into the stack, no buffer), and so is each header after a batch
/// of [`LOOKUP_CHUNK`] or more: the sparse index is keyed by each batch's last offset, so a consumer's next
/// fetch offset (where its previous fetch ended) finds the entry of the batch before it, and with large
/// batches the walk is two such reads (as Kafka's header-by-header `searchForOffsetWithSize`), not a 16 KiB
/// buffer allocated, zeroed and filled to see 61 bytes. After a small batch the next headers are read in
/// chunks, where one read sees many of them.
fn find_batch_in(
    file: &File,
    path: &Path,
    size: u64,
    from: u64,
    offset: i64,
) -> Result<Option<(u64, BatchHeader)>, StorageError> {
    let mut reader = ChunkReader::new(file, size, LOOKUP_CHUNK);
    let mut pos = from;
    let mut alone = true;
    while pos < size {
        let (header, batch_size) = if alone {
            header_read_alone(file, path, size, pos)?
        } else {
            header_in(&mut reader, path, size, pos)?
        };
        if header.last_offset() >= offset {
            return Ok(Some((pos, header)));
        }
        alone = batch_size >= LOOKUP_CHUNK as u64;
        pos += batch_size;
    }
    Ok(None)
}

impl SegmentView {
    /// The first batch whose last offset is >= `offset` (header reads only).
    pub(crate) fn find_batch(
        &self,
        offset: i64,
    ) -> Result<Option<(u64, BatchHeader)>, StorageError> {
        find_batch_in(&self.file, &self.path, self.size, self.offset_hint, offset)
    }

    /// Kafka's MAX_TIMESTAMP lookup in this segment (`UnifiedLog.fetchOffsetByTimestamp`): from the offset hint,
    /// the first batch whose max timestamp is `timestamp`, and in it the first record carrying that timestamp
    /// (`RecordBatch.offsetOfMaxTimestamp`; decompressed if need be; under LogAppendTime its first record), as
    /// (offset, the batch's partition leader epoch). `None` when no batch has that max timestamp or none of its
    /// records carries it. Reads one batch after a short walk of headers from the sparse index's entry.
    pub(crate) fn record_with_timestamp(
        &self,
        timestamp: i64,
    ) -> Result<Option<(i64, i32)>, StorageError> {
        let corrupt = |position: u64, reason: String| StorageError::CorruptLog {
            path: self.path.to_path_buf(),
            position,
            reason,
        };
        let mut reader = ChunkReader::new(&self.file, self.size, LOOKUP_CHUNK);
        let mut pos = self.offset_hint;
        while pos < self.size {
            let (header, size) = header_in(&mut reader, &self.path, self.size, pos)?;
            if header.max_timestamp == timestamp {
                let bytes = reader
                    .get(pos, size as usize)
                    .map_err(|e| StorageError::io("read", &self.path, e))?
                    .ok_or_else(|| corrupt(pos, "batch past end of segment".into()))?;
                let found = find_record(bytes, MAX_DECOMPRESSED_BYTES, |_, ts| ts == timestamp)
                    .map_err(|e| corrupt(pos, e.to_string()))?;
                return Ok(found.map(|(offset, _)| (offset, header.partition_leader_epoch)));
            }
            pos += size;
        }
        Ok(None)
    }

    /// Where the batches wholly below the bound end: the position of the batch holding the bound, or the
    /// committed size when the bound lies beyond this segment.
    pub(crate) fn bound_position(&self) -> Result<u64, StorageError> {
        match self.bound_hint {
            None => Ok(self.size),
            Some((bound, hint)) => Ok(find_batch_in(
                &self.file, &self.path, self.size, hint, bound,
            )?
            .map_or(self.size, |(pos, _)| pos)),
        }
    }

    /// Whether the file is now shorter than the view saw (a truncation raced the read), so a failed read
    /// means the data is gone rather than damaged.
    pub(crate) fn truncated_since(&self) -> bool {
        self.file.metadata().is_ok_and(|m| m.len() < self.size)
    }
}

/// [`header_in`] with one pread of the header alone.
fn header_read_alone(
    file: &File,
    path: &Path,
    size: u64,
    pos: u64,
) -> Result<(BatchHeader, u64), StorageError> {
    let mut bytes = [0u8; HEADER_SIZE];
    let read = if pos.saturating_add(HEADER_SIZE as u64) > size {
        None
    } else {
        file.read_exact_at(&mut bytes, pos)
            .map_err(|e| StorageError::io("read", path, e))?;
        Some(&bytes[..])
    };
    checked_header(read, path, size, pos)
}

/// The header at `pos`, read through `reader`, checked by [`checked_header`].
fn header_in(
    reader: &mut ChunkReader<'_>,
    path: &Path,
    size: u64,
    pos: u64,
) -> Result<(BatchHeader, u64), StorageError> {
    let bytes = reader
        .get(pos, HEADER_SIZE)
        .map_err(|e| StorageError::io("read", path, e))?;
    checked_header(bytes, path, size, pos)
}

/// Decodes the header read at `pos` (`None`: it lies past the end) and checks that the batch fits the first `size`
/// bytes.
fn checked_header(
    bytes: Option<&[u8]>,
    path: &Path,
    size: u64,
    pos: u64,
) -> Result<(BatchHeader, u64), StorageError> {
    let corrupt = |reason: String| StorageError::CorruptLog {
        path: path.to_path_buf(),
        position: pos,
        reason,
    };
    let bytes = bytes.ok_or_else(|| corrupt("batch header past end of segment".into()))?;
    let header = BatchHeader::parse(bytes).map_err(|e| corrupt(e.to_string()))?;
    let batch_size = header.total_size().map_err(|e| corrupt(e.to_string()))? as u64;
    if pos + batch_size > size {
        return Err(corrupt("batch past end of segment".into()));
    }
    Ok((header, batch_size))
}

/// Verifies batches from `from` up to `limit`, calling `visit` for each good one, and stops at
/// the first that is torn, corrupt, or does not continue the offsets (baseOffset is outside the
/// CRC, so this is what catches a damaged one).
fn scan_batches(
    log: &File,
    path: &Path,
    from: u64,
    limit: u64,
    first_batch: FirstBatch,
    gaps: bool,
    mut visit: impl FnMut(u64, &BatchInfo) -> Result<(), indexed::IndexError>,
) -> Result<ScanEnd, StorageError> {
    let mut reader = ChunkReader::new(log, limit, RECOVERY_CHUNK);
    let mut pos = from;
    let mut expected_base: Option<i64> = None;
    let stop = |pos: u64, why: String| {
        Ok(ScanEnd {
            valid_end: pos,
            problem: Some(why),
        })
    };
    while pos < limit {
        let io_err = |e| StorageError::io("read", path, e);
        let Some(overhead) = reader.get(pos, LOG_OVERHEAD).map_err(io_err)? else {
            return stop(pos, "torn batch header".into());
        };
        let Some((_, length)) = crate::batch::peek_offset_and_length(overhead) else {
            return stop(pos, "torn batch header".into());
        };
        let Ok(length) = usize::try_from(length) else {
            return stop(pos, format!("invalid batch length {length}"));
        };
        let Some(bytes) = reader.get(pos, length + LOG_OVERHEAD).map_err(io_err)? else {
            return stop(pos, "torn batch".into());
        };
        let info = match validate_stored_batch(bytes, usize::MAX) {
            Ok(info) => info,
            Err(e) => return stop(pos, e.to_string()),
        };
        let follows = match (expected_base, first_batch) {
            // A compacted segment has gaps where the cleaner removed whole batches.
            (Some(expected), _) | (None, FirstBatch::StartsAt(expected)) => {
                info.base_offset == expected || (gaps && info.base_offset > expected)
            }
            (None, FirstBatch::EndsAt(last)) => info.last_offset() == last,
        };
        if !follows {
            return stop(
                pos,
                format!(
                    "batch at offset {} breaks offset continuity",
                    info.base_offset
                ),
            );
        }
        expected_base = Some(info.last_offset().saturating_add(1));
        if let Err(e) = visit(pos, &info) {
            return match e {
                indexed::IndexError::Overflow(_) => stop(pos, e.to_string()),
                indexed::IndexError::Io(p, e) => Err(StorageError::io("write index", &p, e)),
            };
        }
        pos += info.size as u64;
    }
    Ok(ScanEnd {
        valid_end: pos,
        problem: None,
    })
}
