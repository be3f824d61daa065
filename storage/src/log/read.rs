//! Fetch-path reads: whole batches from the one containing the requested offset.
//!
//! A read is two steps so the owner's lock covers no disk access: [`PartitionLog::plan_read`] (under the lock,
//! memory only) snapshots what may be read — the segments' shared file handles, their committed sizes, index
//! positions and the bound — and [`ReadPlan::resolve`] (no lock) walks the few batch headers it needs and names
//! a [`FileSlice`]: a byte range of one segment file that the network layer sends as it is (sendfile on
//! plaintext connections), as Kafka's `FileRecords` slice. Data before a segment's committed size never
//! changes, and a segment deleted or replaced meanwhile stays readable through the handle, so the slice is
//! what was visible when the plan was taken; only a truncation (a replica moving to a new leader) can shorten
//! the file under it, which the reader sees as a short file and reports (the connection is then closed, as
//! Kafka does when a `FileRecords` shrinks while being sent).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;

use super::{PartitionLog, ReadResult};
use crate::batch::BatchHeader;
use crate::segment::SegmentView;
use crate::StorageError;

/// A byte range of a segment file holding batches from the fetch offset on: whole batches, except that the
/// last one may be cut short where the size limit fell (Kafka sends such a tail too; clients and followers
/// skip it and fetch it whole next time).
#[derive(Debug, Clone)]
pub struct FileSlice {
    file: Arc<File>,
    path: Arc<Path>,
    position: u64,
    len: usize,
    first_batch_len: usize,
}

impl FileSlice {
    /// The segment file (kept open by this slice even if the segment is deleted meanwhile).
    pub fn file(&self) -> &File {
        &self.file
    }

    /// The segment file's path, for error messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where the bytes start in the file.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// How many bytes the slice holds.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Size of the first batch, which the slice always holds whole.
    pub fn first_batch_len(&self) -> usize {
        self.first_batch_len
    }

    /// Reads the slice into memory (one pread). A file now shorter than the slice is an error.
    pub fn read_to_bytes(&self) -> Result<Bytes, StorageError> {
        let mut buf = vec![0u8; self.len];
        self.file
            .read_exact_at(&mut buf, self.position)
            .map_err(|e| StorageError::io("read", &self.path, e))?;
        Ok(Bytes::from(buf))
    }
}

/// What a read found, with the records still in the segment file.
#[derive(Debug, Clone)]
pub struct SliceRead {
    /// `None` when there is nothing to send.
    pub records: Option<FileSlice>,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
}

impl SliceRead {
    /// Bytes the read will send.
    pub fn len(&self) -> usize {
        self.records.as_ref().map_or(0, FileSlice::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A read planned under the log's lock ([`PartitionLog::plan_read`]), to be resolved without it.
#[derive(Debug, Clone)]
pub struct ReadPlan {
    offset: i64,
    max_bytes: usize,
    /// Exclusive: no batch reaching it is read.
    bound: i64,
    log_start_offset: i64,
    log_end_offset: i64,
    /// The segment holding `offset`, then following ones up to the first that is not empty (a compacted
    /// segment may no longer hold the offset, and the next one then starts the read).
    segments: Vec<SegmentView>,
}

impl PartitionLog {
    /// Whole batches starting with the one containing `offset`, up to `max_bytes` but always
    /// at least that first batch (Kafka semantics), never including a batch that reaches
    /// `upper_bound` (exclusive, e.g. the high watermark). Reads stay within one segment.
    ///
    /// `offset == log_end_offset` gives an empty result; an offset outside
    /// `[log_start_offset, log_end_offset]` is [`StorageError::OffsetOutOfRange`].
    /// The batch is found with the offset index and a short forward scan of headers, then
    /// read with one pread into the returned buffer; a batch cut by `max_bytes` is left out.
    pub fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        upper_bound: Option<i64>,
    ) -> Result<ReadResult, StorageError> {
        let read = self.plan_read(offset, max_bytes, upper_bound)?.resolve()?;
        let records = match &read.records {
            None => Bytes::new(),
            Some(slice) => {
                let mut bytes = slice.read_to_bytes()?;
                bytes.truncate(whole_batches(&bytes));
                bytes
            }
        };
        Ok(ReadResult {
            records,
            log_start_offset: read.log_start_offset,
            log_end_offset: read.log_end_offset,
        })
    }

    /// The first half of a read (see [`PartitionLog::read`] for the semantics): checks the offset and
    /// snapshots what the read needs. Memory only, so it is what runs under the owner's lock.
    pub fn plan_read(
        &self,
        offset: i64,
        max_bytes: usize,
        upper_bound: Option<i64>,
    ) -> Result<ReadPlan, StorageError> {
        let log_end_offset = self.log_end_offset();
        if offset < self.log_start_offset || offset > log_end_offset {
            return Err(StorageError::OffsetOutOfRange {
                offset,
                log_start_offset: self.log_start_offset,
                log_end_offset,
            });
        }
        let bound = upper_bound.map_or(log_end_offset, |b| b.min(log_end_offset));
        let mut plan = ReadPlan {
            offset,
            max_bytes,
            bound,
            log_start_offset: self.log_start_offset,
            log_end_offset,
            segments: Vec::new(),
        };
        if offset >= bound {
            return Ok(plan);
        }
        let Some(first) = self.segment_index_for(offset) else {
            return Ok(plan);
        };
        // The segment the bound falls in, when it is not the log end (which every segment view's committed
        // size already stops at).
        let bound_segment = (bound < log_end_offset)
            .then(|| self.segment_index_for(bound))
            .flatten();
        let mut index = first;
        while let Some(segment) = self.segment_at(index) {
            if segment.base_offset() >= bound {
                break;
            }
            let bound_here = (bound_segment == Some(index)).then_some(bound);
            let offset_here = (index == first).then_some(offset);
            plan.segments.push(segment.view(offset_here, bound_here));
            if index > first && segment.size() > 0 {
                break;
            }
            index += 1;
        }
        Ok(plan)
    }
}

impl ReadPlan {
    /// The second half of a read: finds the first batch and where the read ends by walking batch headers
    /// from the index positions (short reads, no lock). A file truncated meanwhile gives an empty read.
    pub fn resolve(self) -> Result<SliceRead, StorageError> {
        let mut read = SliceRead {
            records: None,
            log_start_offset: self.log_start_offset,
            log_end_offset: self.log_end_offset,
        };
        for view in &self.segments {
            match self.slice_of(view) {
                Ok(None) => continue,
                Ok(Some(slice)) => {
                    read.records = slice;
                    return Ok(read);
                }
                Err(_) if view.truncated_since() => return Ok(read),
                Err(e) => return Err(e),
            }
        }
        Ok(read)
    }

    /// `None`: the segment holds nothing at or after the offset (look in the next one); `Some(None)`: the
    /// read is empty (the first batch reaches the bound).
    fn slice_of(&self, view: &SegmentView) -> Result<Option<Option<FileSlice>>, StorageError> {
        let Some((pos, header)) = view.find_batch(self.offset)? else {
            return Ok(None);
        };
        if header.last_offset() >= self.bound {
            return Ok(Some(None));
        }
        let first = header.total_size()?;
        let end = view.bound_position()?;
        let len = (end.saturating_sub(pos)).min(self.max_bytes.max(first) as u64) as usize;
        Ok(Some(Some(FileSlice {
            file: Arc::clone(&view.file),
            path: Arc::clone(&view.path),
            position: pos,
            len,
            first_batch_len: first.min(len),
        })))
    }
}

/// Length of the leading run of whole batches in `buf`.
fn whole_batches(buf: &[u8]) -> usize {
    let mut pos = 0;
    while let Some(rest) = buf.get(pos..) {
        let Ok(header) = BatchHeader::parse(rest) else {
            break;
        };
        let Ok(size) = header.total_size() else {
            break;
        };
        if size > rest.len() {
            break;
        }
        pos += size;
    }
    pos
}
