//! Writes a connection's responses in order: encoded bytes gathered in one reusable buffer (so a burst of
//! pipelined responses costs one write), and fetched records sent straight from the segment files.
//!
//! On a plain TCP socket (PLAINTEXT, SASL_PLAINTEXT) records go with sendfile(2): the kernel copies from the
//! page cache to the socket and they never pass through user space, as Kafka's `FileRecords.transferTo`
//! (slices of a few KiB are copied instead, which is cheaper than the extra system calls). On a
//! TLS stream the bytes must be encrypted in user space, so they are pread into the spare capacity of the same
//! buffer (never zeroed first) and written with the encoded bytes around them. Either way a segment file that
//! turns out shorter than the range promised in the frame (a truncation raced the fetch) is an error: the
//! frame's length prefix is already sent, so the connection must close, as Kafka closes it.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

use tokio::io::{AsyncWrite, AsyncWriteExt, Interest};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;

use kraftwerk_storage::FileSlice;

/// Pending bytes above which they are written before more are added.
const FLUSH_AT: usize = 64 * 1024;
/// Most bytes read from a file into the buffer at once (TLS), so a large fetch does not grow it unbounded.
const READ_CHUNK: usize = 256 * 1024;
/// Capacity kept between bursts; a buffer grown past it is shrunk back after a flush.
const KEEP_CAPACITY: usize = FLUSH_AT + READ_CHUNK;
/// Slices shorter than this are read into the buffer even on a raw socket: copying a few KiB costs less
/// than the extra write and sendfile calls, and keeps a burst of small answers in one write.
const SENDFILE_MIN: usize = 16 * 1024;
/// Most bytes asked of one sendfile call (Linux sends at most 0x7ffff000 anyway).
const SENDFILE_MAX: usize = 1 << 30;

/// The TCP socket under a write half, when there is no layer (TLS) between the bytes and the socket.
pub trait RawSocket {
    fn tcp(&self) -> Option<&TcpStream>;
}

impl RawSocket for OwnedWriteHalf {
    fn tcp(&self) -> Option<&TcpStream> {
        Some(self.as_ref())
    }
}

impl<T> RawSocket for tokio::io::WriteHalf<T> {
    fn tcp(&self) -> Option<&TcpStream> {
        None
    }
}

pub struct ResponseWriter<W> {
    inner: W,
    buf: Vec<u8>,
}

impl<W: AsyncWrite + RawSocket + Unpin> ResponseWriter<W> {
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            buf: Vec::with_capacity(FLUSH_AT),
        }
    }

    /// Queues encoded bytes (written at the latest by [`Self::flush`]).
    pub async fn write_bytes(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.buf.len() + bytes.len() > FLUSH_AT {
            self.write_pending().await?;
        }
        if bytes.len() >= FLUSH_AT {
            self.inner.write_all(bytes).await
        } else {
            self.buf.extend_from_slice(bytes);
            Ok(())
        }
    }

    /// Sends the bytes of `slice` after everything queued before it.
    pub async fn write_file(&mut self, slice: &FileSlice) -> io::Result<()> {
        if slice.len() >= SENDFILE_MIN {
            if let Some(tcp) = self.inner.tcp() {
                // The bytes before the records go with MSG_MORE, so the kernel sends them in the same
                // segments as the start of the file data (the socket has TCP_NODELAY).
                send_more(tcp, &self.buf).await?;
                self.buf.clear();
                return sendfile_all(tcp, slice).await;
            }
        }
        let mut pos = slice.position();
        let mut left = slice.len();
        while left > 0 {
            if self.buf.len() >= FLUSH_AT {
                self.write_pending().await?;
            }
            let n = pread_into_spare(slice.file(), pos, &mut self.buf, left.min(READ_CHUNK))?;
            if n == 0 {
                return Err(truncated(slice, pos));
            }
            pos += n as u64;
            left -= n;
        }
        Ok(())
    }

    /// Writes everything queued and flushes the stream (a TLS layer writes its records).
    pub async fn flush(&mut self) -> io::Result<()> {
        self.write_pending().await?;
        self.inner.flush().await
    }

    async fn write_pending(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.inner.write_all(&self.buf).await?;
            self.buf.clear();
            if self.buf.capacity() > KEEP_CAPACITY {
                self.buf.shrink_to(FLUSH_AT);
            }
        }
        Ok(())
    }
}

fn truncated(slice: &FileSlice, pos: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!(
            "{} ends at {pos}, before the {} bytes from {} being sent (truncated meanwhile)",
            slice.path().display(),
            slice.len(),
            slice.position()
        ),
    )
}

/// send(2) of all of `bytes` with MSG_MORE: more data follows at once.
async fn send_more(tcp: &TcpStream, mut bytes: &[u8]) -> io::Result<()> {
    let socket = tcp.as_raw_fd();
    while !bytes.is_empty() {
        let sent = tcp.try_io(Interest::WRITABLE, || {
            // SAFETY: `socket` is open for the call (owned by `tcp`, borrowed here) and the pointer and length
            // describe the live slice `bytes`.
            let n = unsafe {
                libc::send(
                    socket,
                    bytes.as_ptr().cast::<libc::c_void>(),
                    bytes.len(),
                    libc::MSG_MORE | libc::MSG_NOSIGNAL,
                )
            };
            if n < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(n as usize)
            }
        });
        match sent {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => tcp.writable().await?,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// sendfile(2) of the whole slice to a non-blocking socket, waiting for writability when its buffer is full.
async fn sendfile_all(tcp: &TcpStream, slice: &FileSlice) -> io::Result<()> {
    let socket = tcp.as_raw_fd();
    let file = slice.file().as_raw_fd();
    let end = slice.position() + slice.len() as u64;
    let mut offset = libc::off_t::try_from(slice.position())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file position too large"))?;
    loop {
        let at = offset as u64;
        if at >= end {
            return Ok(());
        }
        let want = ((end - at) as usize).min(SENDFILE_MAX);
        let sent = tcp.try_io(Interest::WRITABLE, || {
            // SAFETY: `socket` and `file` are open descriptors for the whole call (owned by `tcp` and by the
            // slice's `Arc<File>`, both borrowed here), and `offset` is a valid, exclusively borrowed off_t.
            let n = unsafe { libc::sendfile(socket, file, &mut offset, want) };
            if n < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(n as usize)
            }
        });
        match sent {
            Ok(0) => return Err(truncated(slice, offset as u64)),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => tcp.writable().await?,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// pread of up to `want` bytes at `pos` into `buf`'s spare capacity (reserved here, not zeroed); returns how
/// many were read (0 at the end of the file).
fn pread_into_spare(file: &File, pos: u64, buf: &mut Vec<u8>, want: usize) -> io::Result<usize> {
    buf.reserve(want);
    let offset = libc::off_t::try_from(pos)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file position too large"))?;
    let spare = buf.spare_capacity_mut();
    let want = want.min(spare.len());
    let ptr = spare.as_mut_ptr().cast::<libc::c_void>();
    loop {
        // SAFETY: `ptr` points at `want` bytes of `buf`'s spare capacity, which the kernel may write;
        // nothing else holds `buf` meanwhile.
        let n = unsafe { libc::pread(file.as_raw_fd(), ptr, want, offset) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        let n = n as usize;
        // SAFETY: the kernel initialised the first `n` (<= `want`) bytes of the spare capacity.
        unsafe { buf.set_len(buf.len() + n) };
        return Ok(n);
    }
}

#[cfg(test)]
mod tests;
