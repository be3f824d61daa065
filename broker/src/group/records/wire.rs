//! Primitive readers and writers for `__consumer_offsets` keys and values.
//!
//! These records use Kafka's generated-message encoding: big-endian integers, `i16`-length strings and
//! `i32`-length bytes/arrays in classic versions, unsigned-varint "compact" lengths plus tagged fields in
//! flexible ones. The bytes come from disk, so every length is checked against what is left before it
//! is used; nothing here can panic or over-allocate on a corrupt record.

use bytes::{BufMut, Bytes, BytesMut};

use super::RecordError;

/// Cursor over one encoded key or value.
pub(super) struct Reader<'a> {
    buf: &'a [u8],
    /// Whether the version being read uses compact lengths and tagged fields.
    flexible: bool,
}

impl<'a> Reader<'a> {
    pub(super) fn new(buf: &'a [u8]) -> Self {
        Self {
            buf,
            flexible: false,
        }
    }

    /// Switches to the flexible encoding once the version (always a plain `i16`) is known.
    pub(super) fn set_flexible(&mut self, flexible: bool) {
        self.flexible = flexible;
    }

    fn take(&mut self, field: &'static str, needed: usize) -> Result<&'a [u8], RecordError> {
        if needed > self.buf.len() {
            return Err(RecordError::Truncated {
                field,
                needed,
                remaining: self.buf.len(),
            });
        }
        let (head, tail) = self.buf.split_at(needed);
        self.buf = tail;
        Ok(head)
    }

    fn take_array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], RecordError> {
        let bytes = self.take(field, N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    pub(super) fn i16(&mut self, field: &'static str) -> Result<i16, RecordError> {
        Ok(i16::from_be_bytes(self.take_array(field)?))
    }

    pub(super) fn i32(&mut self, field: &'static str) -> Result<i32, RecordError> {
        Ok(i32::from_be_bytes(self.take_array(field)?))
    }

    pub(super) fn i64(&mut self, field: &'static str) -> Result<i64, RecordError> {
        Ok(i64::from_be_bytes(self.take_array(field)?))
    }

    fn unsigned_varint(&mut self, field: &'static str) -> Result<u32, RecordError> {
        let mut value: u32 = 0;
        for shift in (0..35).step_by(7) {
            let [byte] = self.take_array::<1>(field)?;
            value |= u32::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(RecordError::InvalidVarint { field })
    }

    /// Reads a length prefix; `None` is the null marker.
    fn length(&mut self, field: &'static str, wide: bool) -> Result<Option<usize>, RecordError> {
        let raw: i64 = if self.flexible {
            i64::from(self.unsigned_varint(field)?) - 1
        } else if wide {
            i64::from(self.i32(field)?)
        } else {
            i64::from(self.i16(field)?)
        };
        match raw {
            -1 => Ok(None),
            n if n < 0 => Err(RecordError::InvalidLength { field, length: n }),
            n => usize::try_from(n)
                .map(Some)
                .map_err(|_| RecordError::InvalidLength { field, length: n }),
        }
    }

    pub(super) fn nullable_string(
        &mut self,
        field: &'static str,
    ) -> Result<Option<String>, RecordError> {
        let Some(len) = self.length(field, false)? else {
            return Ok(None);
        };
        let bytes = self.take(field, len)?;
        std::str::from_utf8(bytes)
            .map(|s| Some(s.to_owned()))
            .map_err(|_| RecordError::InvalidUtf8 { field })
    }

    pub(super) fn string(&mut self, field: &'static str) -> Result<String, RecordError> {
        self.nullable_string(field)?
            .ok_or(RecordError::UnexpectedNull { field })
    }

    pub(super) fn bytes(&mut self, field: &'static str) -> Result<Bytes, RecordError> {
        let len = self
            .length(field, true)?
            .ok_or(RecordError::UnexpectedNull { field })?;
        Ok(Bytes::copy_from_slice(self.take(field, len)?))
    }

    /// Reads an array length, bounded by the bytes left (every element takes at least one byte), so a
    /// corrupt count cannot make the caller reserve more than the record holds.
    pub(super) fn array_len(&mut self, field: &'static str) -> Result<usize, RecordError> {
        let len = self
            .length(field, true)?
            .ok_or(RecordError::UnexpectedNull { field })?;
        if len > self.buf.len() {
            return Err(RecordError::Truncated {
                field,
                needed: len,
                remaining: self.buf.len(),
            });
        }
        Ok(len)
    }

    /// Skips the tagged-field section that ends every struct of a flexible version. No tagged fields
    /// are defined for these records yet, so their contents are ignored, as Kafka ignores unknown tags.
    pub(super) fn skip_tagged_fields(&mut self) -> Result<(), RecordError> {
        if !self.flexible {
            return Ok(());
        }
        let count = self.unsigned_varint("tagged fields")?;
        for _ in 0..count {
            self.unsigned_varint("tag")?;
            let size = self.unsigned_varint("tagged field size")?;
            let size = usize::try_from(size).map_err(|_| RecordError::InvalidLength {
                field: "tagged field size",
                length: i64::from(size),
            })?;
            self.take("tagged field", size)?;
        }
        Ok(())
    }
}

/// Appends the classic (non-flexible) encoding, the only one this coordinator writes.
#[derive(Default)]
pub(super) struct Writer {
    buf: BytesMut,
}

impl Writer {
    pub(super) fn i16(&mut self, value: i16) -> &mut Self {
        self.buf.put_i16(value);
        self
    }

    pub(super) fn i32(&mut self, value: i32) -> &mut Self {
        self.buf.put_i32(value);
        self
    }

    pub(super) fn i64(&mut self, value: i64) -> &mut Self {
        self.buf.put_i64(value);
        self
    }

    pub(super) fn nullable_string(
        &mut self,
        field: &'static str,
        value: Option<&str>,
    ) -> Result<&mut Self, RecordError> {
        match value {
            None => {
                self.buf.put_i16(-1);
            }
            Some(s) => {
                let len = i16::try_from(s.len()).map_err(|_| RecordError::FieldTooLong {
                    field,
                    length: s.len(),
                })?;
                self.buf.put_i16(len);
                self.buf.put_slice(s.as_bytes());
            }
        }
        Ok(self)
    }

    pub(super) fn string(
        &mut self,
        field: &'static str,
        value: &str,
    ) -> Result<&mut Self, RecordError> {
        self.nullable_string(field, Some(value))
    }

    pub(super) fn bytes(
        &mut self,
        field: &'static str,
        value: &[u8],
    ) -> Result<&mut Self, RecordError> {
        let len = i32::try_from(value.len()).map_err(|_| RecordError::FieldTooLong {
            field,
            length: value.len(),
        })?;
        self.buf.put_i32(len);
        self.buf.put_slice(value);
        Ok(self)
    }

    pub(super) fn array_len(
        &mut self,
        field: &'static str,
        len: usize,
    ) -> Result<&mut Self, RecordError> {
        let len =
            i32::try_from(len).map_err(|_| RecordError::FieldTooLong { field, length: len })?;
        self.buf.put_i32(len);
        Ok(self)
    }

    pub(super) fn finish(self) -> Bytes {
        self.buf.freeze()
    }
}
