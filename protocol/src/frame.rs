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

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BufMut;

    fn framed(body: &[u8]) -> Vec<u8> {
        let mut out = (body.len() as i32).to_be_bytes().to_vec();
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn partial_prefix_needs_more() {
        let decoder = FrameDecoder::new(1024);
        for len in 0..SIZE_PREFIX_LEN {
            let mut buf = BytesMut::from(&framed(b"hello")[..len]);
            assert_eq!(decoder.decode(&mut buf), Ok(None));
            assert_eq!(buf.len(), len, "nothing consumed");
        }
    }

    #[test]
    fn partial_body_needs_more_then_completes() {
        let decoder = FrameDecoder::new(1024);
        let whole = framed(b"hello world");
        let mut buf = BytesMut::from(&whole[..7]);
        assert_eq!(decoder.decode(&mut buf), Ok(None));
        assert_eq!(&buf[..], &whole[..7], "nothing consumed");
        assert!(
            buf.capacity() >= whole.len(),
            "room reserved for the accepted frame"
        );
        buf.put_slice(&whole[7..]);
        assert_eq!(
            decoder.decode(&mut buf),
            Ok(Some(Bytes::from_static(b"hello world")))
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn exact_frame_and_empty_frame() {
        let decoder = FrameDecoder::new(5);
        let mut buf = BytesMut::from(&framed(b"12345")[..]);
        assert_eq!(
            decoder.decode(&mut buf),
            Ok(Some(Bytes::from_static(b"12345")))
        );
        assert!(buf.is_empty());
        assert_eq!(decoder.decode(&mut buf), Ok(None));

        let mut buf = BytesMut::from(&framed(b"")[..]);
        assert_eq!(decoder.decode(&mut buf), Ok(Some(Bytes::new())));
        assert!(buf.is_empty());
    }

    #[test]
    fn several_frames_in_one_buffer_then_a_partial_one() {
        let decoder = FrameDecoder::default();
        let mut stream = framed(b"one");
        stream.extend(framed(b"two!"));
        stream.extend(framed(b""));
        stream.extend(framed(b"three"));
        let partial = framed(b"four");
        stream.extend(&partial[..6]);
        let mut buf = BytesMut::from(&stream[..]);
        for expected in [&b"one"[..], b"two!", b"", b"three"] {
            assert_eq!(
                decoder.decode(&mut buf),
                Ok(Some(Bytes::copy_from_slice(expected)))
            );
        }
        assert_eq!(decoder.decode(&mut buf), Ok(None));
        assert_eq!(&buf[..], &partial[..6]);
    }

    #[test]
    fn body_is_split_off_without_copying() {
        let decoder = FrameDecoder::new(64);
        let mut buf = BytesMut::from(&framed(b"zero-copy")[..]);
        let start = buf.as_ptr() as usize;
        let body = decoder.decode(&mut buf).expect("valid").expect("complete");
        assert_eq!(body.as_ptr() as usize, start + SIZE_PREFIX_LEN);
    }

    #[test]
    fn too_large_is_refused_from_the_prefix_before_reserving() {
        let decoder = FrameDecoder::new(100);
        // Only the prefix has arrived; the answer must not wait for (or make room for) the body.
        let mut buf = BytesMut::with_capacity(8);
        buf.put_i32(101);
        let capacity = buf.capacity();
        assert_eq!(
            decoder.decode(&mut buf),
            Err(FrameError::TooLarge {
                size: 101,
                max: 100
            })
        );
        assert_eq!(
            buf.capacity(),
            capacity,
            "nothing reserved for a refused frame"
        );

        let mut buf = BytesMut::with_capacity(8);
        buf.put_i32(i32::MAX);
        let capacity = buf.capacity();
        assert_eq!(
            FrameDecoder::default().decode(&mut buf),
            Err(FrameError::TooLarge {
                size: i64::from(i32::MAX),
                max: DEFAULT_MAX_FRAME_BYTES
            })
        );
        assert_eq!(buf.capacity(), capacity);

        // Exactly at the limit is fine.
        let mut buf = BytesMut::from(&framed(&[7u8; 100])[..]);
        assert!(matches!(decoder.decode(&mut buf), Ok(Some(b)) if b.len() == 100));
    }

    #[test]
    fn negative_size_is_refused() {
        let decoder = FrameDecoder::new(100);
        for size in [-1, i32::MIN] {
            let mut buf = BytesMut::new();
            buf.put_i32(size);
            let capacity = buf.capacity();
            assert_eq!(
                decoder.decode(&mut buf),
                Err(FrameError::NegativeSize(size))
            );
            assert_eq!(buf.capacity(), capacity);
        }
    }
}
