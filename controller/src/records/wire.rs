//! Kafka's message encoding primitives, as the generated Kafka message classes use them for
//! flexible versions: big-endian integers, unsigned varints, compact (length + 1) strings and
//! arrays, and tagged fields. No I/O.
//!
//! The [`Reader`] never trusts a length: every string, array or tagged field is checked against
//! the bytes that are left before anything is allocated, so a few hostile bytes cannot make it
//! reserve gigabytes, and every failure is a [`DecodeError`], never a panic.

use thiserror::Error;
use uuid::Uuid;

/// Longest string Kafka's message classes accept (`Short.MAX_VALUE` bytes).
pub const MAX_STRING_BYTES: usize = 0x7fff;

/// Why bytes could not be decoded as a Kafka metadata or control record.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// The input ended inside a field.
    #[error("input ends inside {0}")]
    Truncated(&'static str),
    /// An unsigned varint ran past 5 bytes or past 32 bits.
    #[error("malformed unsigned varint in {0}")]
    Varint(&'static str),
    /// A string, array or tagged field claims more bytes than are left.
    #[error("{what} claims {claimed} bytes or elements, but only {left} bytes are left")]
    Length {
        /// The field.
        what: &'static str,
        /// What the length prefix said.
        claimed: u64,
        /// What was left.
        left: usize,
    },
    /// A field that is not nullable at this version was null.
    #[error("{0} is null, which its schema does not allow")]
    Null(&'static str),
    /// A string was not UTF-8.
    #[error("{0} is not valid UTF-8")]
    Utf8(&'static str),
    /// A field holds a value outside its domain (e.g. an unknown security protocol id).
    #[error("{field} has the invalid value {value}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// The value found.
        value: i64,
    },
    /// The frame version of a serialized metadata record is not 1.
    #[error("unsupported metadata record frame version {0}")]
    FrameVersion(u32),
    /// A record type this codec does not know.
    #[error("unknown metadata record type {0}")]
    UnknownType(u32),
    /// A version outside the schema's valid versions.
    #[error("unsupported version {version} of {record}")]
    UnsupportedVersion {
        /// The record's name.
        record: &'static str,
        /// The version found.
        version: u32,
    },
    /// Bytes left over after the message.
    #[error("{0} unexpected bytes after the message")]
    Trailing(usize),
    /// A control record key of a version or type this codec does not handle.
    #[error("unexpected control record key (version {version}, type {kind})")]
    ControlKey {
        /// Key version.
        version: i16,
        /// Control record type.
        kind: i16,
    },
}

/// Why a record could not be encoded (Kafka's encoders refuse the same values).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EncodeError {
    /// A string longer than [`MAX_STRING_BYTES`].
    #[error("{what} is {len} bytes long; Kafka strings hold at most 32767")]
    StringTooLong {
        /// The field.
        what: &'static str,
        /// Its length in bytes.
        len: usize,
    },
    /// An array with more elements than a length prefix can count.
    #[error("{0} has too many elements")]
    ArrayTooLong(&'static str),
    /// A value the schema gives a special meaning (e.g. leader -2, "unchanged").
    #[error("{field} cannot be {value}: {why}")]
    Reserved {
        /// The field.
        field: &'static str,
        /// The value.
        value: i64,
        /// What the wire format would turn it into.
        why: &'static str,
    },
}

/// A cursor over bytes being decoded.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Reads from the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// Fails unless every byte was read (Kafka's serde rejects trailing garbage too).
    pub fn finish(&self) -> Result<(), DecodeError> {
        match self.buf.len() {
            0 => Ok(()),
            n => Err(DecodeError::Trailing(n)),
        }
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        if n > self.buf.len() {
            return Err(DecodeError::Truncated(what));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let bytes = self.take(N, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    /// A signed byte.
    pub fn i8(&mut self, what: &'static str) -> Result<i8, DecodeError> {
        Ok(i8::from_be_bytes(self.array(what)?))
    }

    /// A big-endian int16.
    pub fn i16(&mut self, what: &'static str) -> Result<i16, DecodeError> {
        Ok(i16::from_be_bytes(self.array(what)?))
    }

    /// A big-endian uint16.
    pub fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }

    /// A big-endian int32.
    pub fn i32(&mut self, what: &'static str) -> Result<i32, DecodeError> {
        Ok(i32::from_be_bytes(self.array(what)?))
    }

    /// A big-endian int64.
    pub fn i64(&mut self, what: &'static str) -> Result<i64, DecodeError> {
        Ok(i64::from_be_bytes(self.array(what)?))
    }

    /// A bool: one byte, non-zero is true (as Kafka reads it).
    pub fn bool(&mut self, what: &'static str) -> Result<bool, DecodeError> {
        Ok(self.array::<1>(what)?[0] != 0)
    }

    /// A UUID: 16 bytes, most significant first.
    pub fn uuid(&mut self, what: &'static str) -> Result<Uuid, DecodeError> {
        Ok(Uuid::from_bytes(self.array(what)?))
    }

    /// An unsigned varint of at most 32 bits (at most 5 bytes).
    pub fn uvarint(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        let mut value: u32 = 0;
        for i in 0..5 {
            let [byte] = self.array::<1>(what)?;
            if i == 4 && byte > 0x0f {
                return Err(DecodeError::Varint(what));
            }
            value |= u32::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::Varint(what))
    }

    /// A compact length: `None` for null (0), else the prefix minus one, checked so that
    /// `len * min_item_bytes` fits in what is left.
    fn compact_len(
        &mut self,
        what: &'static str,
        min_item_bytes: usize,
    ) -> Result<Option<usize>, DecodeError> {
        let raw = self.uvarint(what)?;
        let Some(len) = raw.checked_sub(1) else {
            return Ok(None);
        };
        let len = len as usize;
        if len.saturating_mul(min_item_bytes.max(1)) > self.buf.len() {
            return Err(DecodeError::Length {
                what,
                claimed: u64::from(len as u32),
                left: self.buf.len(),
            });
        }
        Ok(Some(len))
    }

    /// A compact nullable string.
    pub fn nullable_string(&mut self, what: &'static str) -> Result<Option<String>, DecodeError> {
        let Some(len) = self.compact_len(what, 1)? else {
            return Ok(None);
        };
        if len > MAX_STRING_BYTES {
            return Err(DecodeError::Length {
                what,
                claimed: len as u64,
                left: self.buf.len(),
            });
        }
        let bytes = self.take(len, what)?;
        std::str::from_utf8(bytes)
            .map(|s| Some(s.to_owned()))
            .map_err(|_| DecodeError::Utf8(what))
    }

    /// Compact bytes that may not be null.
    pub fn compact_bytes(&mut self, what: &'static str) -> Result<Vec<u8>, DecodeError> {
        let len = self.compact_len(what, 1)?.ok_or(DecodeError::Null(what))?;
        Ok(self.take(len, what)?.to_vec())
    }

    /// A compact string that may not be null.
    pub fn string(&mut self, what: &'static str) -> Result<String, DecodeError> {
        self.nullable_string(what)?.ok_or(DecodeError::Null(what))
    }

    /// A compact nullable array; `min_item_bytes` is the least an element can take on the
    /// wire, which bounds the element count by the bytes left.
    pub fn nullable_array<T>(
        &mut self,
        what: &'static str,
        min_item_bytes: usize,
        mut item: impl FnMut(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Option<Vec<T>>, DecodeError> {
        let Some(len) = self.compact_len(what, min_item_bytes)? else {
            return Ok(None);
        };
        let mut out = Vec::with_capacity(len);
        for _ in 0..len {
            out.push(item(self)?);
        }
        Ok(Some(out))
    }

    /// A compact array that may not be null.
    pub fn array_of<T>(
        &mut self,
        what: &'static str,
        min_item_bytes: usize,
        item: impl FnMut(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Vec<T>, DecodeError> {
        self.nullable_array(what, min_item_bytes, item)?
            .ok_or(DecodeError::Null(what))
    }

    /// A compact nullable array of int32.
    pub fn nullable_i32s(&mut self, what: &'static str) -> Result<Option<Vec<i32>>, DecodeError> {
        self.nullable_array(what, 4, |r| r.i32(what))
    }

    /// A compact array of int32.
    pub fn i32s(&mut self, what: &'static str) -> Result<Vec<i32>, DecodeError> {
        self.array_of(what, 4, |r| r.i32(what))
    }

    /// A compact nullable array of UUIDs.
    pub fn nullable_uuids(&mut self, what: &'static str) -> Result<Option<Vec<Uuid>>, DecodeError> {
        self.nullable_array(what, 16, |r| r.uuid(what))
    }

    /// A compact array of UUIDs.
    pub fn uuids(&mut self, what: &'static str) -> Result<Vec<Uuid>, DecodeError> {
        self.array_of(what, 16, |r| r.uuid(what))
    }

    /// The tagged-field section. `known` gets each tag with a reader over exactly its bytes and
    /// returns `false` for a tag it does not know, which is then skipped (as Kafka does);
    /// a known field must use all of its bytes.
    pub fn tagged_fields(
        &mut self,
        mut known: impl FnMut(u32, &mut Reader<'a>) -> Result<bool, DecodeError>,
    ) -> Result<(), DecodeError> {
        let count = self.uvarint("tagged field count")?;
        // Each tagged field takes at least two bytes (tag and size).
        if (count as usize).saturating_mul(2) > self.buf.len() {
            return Err(DecodeError::Length {
                what: "tagged fields",
                claimed: u64::from(count),
                left: self.buf.len(),
            });
        }
        for _ in 0..count {
            let tag = self.uvarint("tagged field tag")?;
            let size = self.uvarint("tagged field size")? as usize;
            if size > self.buf.len() {
                return Err(DecodeError::Length {
                    what: "tagged field",
                    claimed: size as u64,
                    left: self.buf.len(),
                });
            }
            let mut field = Reader::new(self.take(size, "tagged field")?);
            if known(tag, &mut field)? {
                field.finish()?;
            }
        }
        Ok(())
    }
}

/// Bytes being encoded.
#[derive(Debug, Default, Clone)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// An empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// The bytes written.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    /// Raw bytes.
    pub fn bytes(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// A signed byte.
    pub fn i8(&mut self, v: i8) {
        self.bytes(&v.to_be_bytes());
    }

    /// A big-endian int16.
    pub fn i16(&mut self, v: i16) {
        self.bytes(&v.to_be_bytes());
    }

    /// A big-endian uint16.
    pub fn u16(&mut self, v: u16) {
        self.bytes(&v.to_be_bytes());
    }

    /// A big-endian int32.
    pub fn i32(&mut self, v: i32) {
        self.bytes(&v.to_be_bytes());
    }

    /// A big-endian int64.
    pub fn i64(&mut self, v: i64) {
        self.bytes(&v.to_be_bytes());
    }

    /// A bool as one byte, 0 or 1.
    pub fn bool(&mut self, v: bool) {
        self.buf.push(u8::from(v));
    }

    /// A UUID: 16 bytes, most significant first.
    pub fn uuid(&mut self, v: &Uuid) {
        self.bytes(v.as_bytes());
    }

    /// An unsigned varint.
    pub fn uvarint(&mut self, mut v: u32) {
        while v >= 0x80 {
            self.buf.push((v as u8 & 0x7f) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }

    fn compact_len(&mut self, len: Option<usize>, what: &'static str) -> Result<(), EncodeError> {
        match len {
            None => self.uvarint(0),
            Some(n) => {
                let n = u32::try_from(n)
                    .ok()
                    .and_then(|n| n.checked_add(1))
                    .filter(|&n| n <= i32::MAX as u32)
                    .ok_or(EncodeError::ArrayTooLong(what))?;
                self.uvarint(n);
            }
        }
        Ok(())
    }

    /// A compact nullable string.
    pub fn nullable_string(
        &mut self,
        v: Option<&str>,
        what: &'static str,
    ) -> Result<(), EncodeError> {
        if let Some(s) = v {
            if s.len() > MAX_STRING_BYTES {
                return Err(EncodeError::StringTooLong { what, len: s.len() });
            }
        }
        self.compact_len(v.map(str::len), what)?;
        if let Some(s) = v {
            self.bytes(s.as_bytes());
        }
        Ok(())
    }

    /// Compact bytes (not null).
    pub fn compact_bytes(&mut self, v: &[u8], what: &'static str) -> Result<(), EncodeError> {
        self.compact_len(Some(v.len()), what)?;
        self.bytes(v);
        Ok(())
    }

    /// A compact string.
    pub fn string(&mut self, v: &str, what: &'static str) -> Result<(), EncodeError> {
        self.nullable_string(Some(v), what)
    }

    /// A compact nullable array, each element written by `item`.
    pub fn nullable_array<T>(
        &mut self,
        v: Option<&[T]>,
        what: &'static str,
        mut item: impl FnMut(&mut Self, &T) -> Result<(), EncodeError>,
    ) -> Result<(), EncodeError> {
        self.compact_len(v.map(<[T]>::len), what)?;
        for x in v.unwrap_or_default() {
            item(self, x)?;
        }
        Ok(())
    }

    /// A compact array.
    pub fn array_of<T>(
        &mut self,
        v: &[T],
        what: &'static str,
        item: impl FnMut(&mut Self, &T) -> Result<(), EncodeError>,
    ) -> Result<(), EncodeError> {
        self.nullable_array(Some(v), what, item)
    }

    /// A compact nullable array of int32.
    pub fn nullable_i32s(
        &mut self,
        v: Option<&[i32]>,
        what: &'static str,
    ) -> Result<(), EncodeError> {
        self.nullable_array(v, what, |w, x| {
            w.i32(*x);
            Ok(())
        })
    }

    /// A compact array of int32.
    pub fn i32s(&mut self, v: &[i32], what: &'static str) -> Result<(), EncodeError> {
        self.nullable_i32s(Some(v), what)
    }

    /// A compact nullable array of UUIDs.
    pub fn nullable_uuids(
        &mut self,
        v: Option<&[Uuid]>,
        what: &'static str,
    ) -> Result<(), EncodeError> {
        self.nullable_array(v, what, |w, x| {
            w.uuid(x);
            Ok(())
        })
    }

    /// A compact array of UUIDs.
    pub fn uuids(&mut self, v: &[Uuid], what: &'static str) -> Result<(), EncodeError> {
        self.nullable_uuids(Some(v), what)
    }

    /// The tagged-field section: `(tag, encoded value)` in ascending tag order, as Kafka writes
    /// them (only fields that differ from their default).
    pub fn tagged_fields(&mut self, fields: &[(u32, Vec<u8>)]) -> Result<(), EncodeError> {
        let count =
            u32::try_from(fields.len()).map_err(|_| EncodeError::ArrayTooLong("tagged fields"))?;
        self.uvarint(count);
        for (tag, value) in fields {
            let size = u32::try_from(value.len())
                .map_err(|_| EncodeError::ArrayTooLong("tagged field"))?;
            self.uvarint(*tag);
            self.uvarint(size);
            self.bytes(value);
        }
        Ok(())
    }
}

/// Encodes one tagged field's value with its own writer.
pub fn tagged(
    tag: u32,
    f: impl FnOnce(&mut Writer) -> Result<(), EncodeError>,
) -> Result<(u32, Vec<u8>), EncodeError> {
    let mut w = Writer::new();
    f(&mut w)?;
    Ok((tag, w.into_bytes()))
}
