//! Kafka framing: a 4-byte big-endian size prefix, then that many bytes of body.
//!
//! The size check happens on the prefix alone, before anything is reserved for the body: a peer that
//! announces a 2 GiB frame must cost us nothing but the 4 bytes it sent.

use bytes::{Buf, Bytes, BytesMut};
use thiserror::Error;

/// Length of the size prefix in front of every request and response.
pub const SIZE_PREFIX_LEN: usize = 4;

/// Kafka's default `socket.request.max.bytes` (100 MiB).
pub const DEFAULT_MAX_FRAME_BYTES: usize = 104_857_600;

/// Why a size prefix was refused. Either way the connection cannot be resynchronised and must be closed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FrameError {
    /// The prefix announces more bytes than `socket.request.max.bytes` allows.
    #[error("frame of {size} bytes exceeds the maximum of {max} bytes")]
    TooLarge { size: i64, max: usize },
    /// The prefix is negative, which no Kafka client sends.
    #[error("frame size prefix is negative ({0})")]
    NegativeSize(i32),
}

/// Splits a byte stream into frame bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameDecoder {
    max_frame_bytes: usize,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_FRAME_BYTES)
    }
}

impl FrameDecoder {
    /// `max_frame_bytes` is `socket.request.max.bytes`: the largest body (prefix excluded) we accept.
    pub fn new(max_frame_bytes: usize) -> Self {
        Self { max_frame_bytes }
    }

    /// The largest frame body this decoder accepts.
    pub fn max_frame_bytes(&self) -> usize {
        self.max_frame_bytes
    }

    /// Takes one frame off the front of `buf`.
    ///
    /// `Ok(None)` means more bytes are needed; `buf` is left untouched apart from capacity reserved for the
    /// announced (and already accepted) body size, so the next socket read can land in place. On
    /// `Ok(Some(body))` the prefix is consumed and the body is split off `buf` without copying.
    pub fn decode(&self, buf: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        let Some(prefix) = buf.first_chunk::<SIZE_PREFIX_LEN>() else {
            return Ok(None);
        };
        let size = i32::from_be_bytes(*prefix);
        let body_len = usize::try_from(size).map_err(|_| FrameError::NegativeSize(size))?;
        if body_len > self.max_frame_bytes {
            return Err(FrameError::TooLarge {
                size: i64::from(size),
                max: self.max_frame_bytes,
            });
        }
        let frame_len = SIZE_PREFIX_LEN + body_len;
        if buf.len() < frame_len {
            // Only now, with the size accepted, is it safe to make room for the rest of the frame.
            buf.reserve(frame_len - buf.len());
            return Ok(None);
        }
        buf.advance(SIZE_PREFIX_LEN);
        Ok(Some(buf.split_to(body_len).freeze()))
    }
}
