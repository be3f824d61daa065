//! Frames on a node-to-node channel: the same 4-byte size prefix as Kafka, read with a size limit.

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use kraftwerk_protocol::frame::FrameDecoder;

/// The largest frame a node-to-node channel accepts: raft appends are capped at 1 MiB of entries and
/// metadata fetch answers at [`MAX_FETCH_BYTES`], so anything near this is a bug or an attack.
pub const MAX_FRAME_BYTES: usize = 16 << 20;
/// Entry bytes per metadata fetch answer.
pub const MAX_FETCH_BYTES: u32 = 4 << 20;

/// Why a channel stopped.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("connection closed")]
    Closed,
    #[error("connection closed in the middle of a frame")]
    Truncated,
    #[error(transparent)]
    Frame(#[from] kraftwerk_protocol::frame::FrameError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Reads size-prefixed frames from one side of a connection.
pub struct FrameReader<R> {
    rd: R,
    buf: BytesMut,
    decoder: FrameDecoder,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub fn new(rd: R) -> Self {
        Self::with_buffer(rd, BytesMut::with_capacity(8 * 1024))
    }

    /// Continues reading after bytes already taken off the socket.
    pub fn with_buffer(rd: R, buf: BytesMut) -> Self {
        Self {
            rd,
            buf,
            decoder: FrameDecoder::new(MAX_FRAME_BYTES),
        }
    }

    /// The next frame body.
    pub async fn next(&mut self) -> Result<Bytes, ChannelError> {
        loop {
            if let Some(frame) = self.decoder.decode(&mut self.buf)? {
                return Ok(frame);
            }
            if self.buf.capacity() - self.buf.len() < 4096 {
                self.buf.reserve(8 * 1024);
            }
            if self.rd.read_buf(&mut self.buf).await? == 0 {
                return Err(if self.buf.is_empty() {
                    ChannelError::Closed
                } else {
                    ChannelError::Truncated
                });
            }
        }
    }
}

/// Writes one frame body with its size prefix.
pub async fn write_frame<W: AsyncWrite + Unpin>(wr: &mut W, body: &[u8]) -> std::io::Result<()> {
    let len = u32::try_from(body.len())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "frame too large"))?;
    wr.write_all(&len.to_be_bytes()).await?;
    wr.write_all(body).await
}
