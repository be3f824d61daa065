//! Buffered positional reads over a log file, so scans of many small batches cost one
//! syscall per chunk instead of one or two per batch.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

pub(crate) struct ChunkReader<'f> {
    file: &'f File,
    /// Reads never go past this position (the committed end of the segment).
    limit: u64,
    chunk: usize,
    buf: Vec<u8>,
    buf_start: u64,
}

impl<'f> ChunkReader<'f> {
    pub(crate) fn new(file: &'f File, limit: u64, chunk: usize) -> Self {
        Self {
            file,
            limit,
            chunk,
            buf: Vec::new(),
            buf_start: 0,
        }
    }

    /// The `len` bytes at `pos`, or `None` if they extend past the limit.
    ///
    /// Allocation is bounded by the limit, so a garbage length read from disk cannot make it
    /// allocate more than the file holds.
    pub(crate) fn get(&mut self, pos: u64, len: usize) -> io::Result<Option<&[u8]>> {
        let Some(end) = pos.checked_add(len as u64).filter(|&e| e <= self.limit) else {
            return Ok(None);
        };
        let buf_end = self.buf_start + self.buf.len() as u64;
        if pos < self.buf_start || end > buf_end {
            let want = (len.max(self.chunk) as u64).min(self.limit - pos) as usize;
            self.buf.resize(want, 0);
            self.file.read_exact_at(&mut self.buf, pos)?;
            self.buf_start = pos;
        }
        let from = (pos - self.buf_start) as usize;
        Ok(self.buf.get(from..from + len))
    }
}
