//! Zig-zag varints as used inside v2 records, with a bounds-checked reader.

use super::BatchError;

/// A cursor over record bytes whose every read is bounds checked.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    /// The bytes not read yet.
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or_default()
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    pub(crate) fn read_u8(&mut self) -> Result<u8, BatchError> {
        let b = *self
            .buf
            .get(self.pos)
            .ok_or(BatchError::MalformedRecord("unexpected end of record"))?;
        self.pos += 1;
        Ok(b)
    }

    fn read_unsigned(&mut self, max_bytes: u32) -> Result<u64, BatchError> {
        let mut value: u64 = 0;
        for i in 0..max_bytes {
            let b = self.read_u8()?;
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(BatchError::MalformedRecord("varint too long"))
    }

    /// A zig-zag varint that must fit an i32 (at most 5 bytes).
    pub(crate) fn read_varint(&mut self) -> Result<i32, BatchError> {
        let raw = self.read_unsigned(5)?;
        let raw = u32::try_from(raw).map_err(|_| BatchError::MalformedRecord("varint overflow"))?;
        Ok(((raw >> 1) as i32) ^ -((raw & 1) as i32))
    }

    /// A zig-zag varlong (at most 10 bytes).
    pub(crate) fn read_varlong(&mut self) -> Result<i64, BatchError> {
        let raw = self.read_unsigned(10)?;
        Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
    }

    pub(crate) fn read_bytes(&mut self, len: usize) -> Result<&'a [u8], BatchError> {
        let end = self
            .pos
            .checked_add(len)
            .ok_or(BatchError::MalformedRecord("length overflow"))?;
        let bytes = self
            .buf
            .get(self.pos..end)
            .ok_or(BatchError::MalformedRecord("field longer than record"))?;
        self.pos = end;
        Ok(bytes)
    }

    /// A varint length (-1 = null) followed by that many bytes.
    pub(crate) fn read_nullable_bytes(&mut self) -> Result<Option<&'a [u8]>, BatchError> {
        match self.read_varint()? {
            -1 => Ok(None),
            n if n < 0 => Err(BatchError::MalformedRecord("negative length")),
            n => self.read_bytes(n as usize).map(Some),
        }
    }
}

pub(crate) fn write_varint(out: &mut Vec<u8>, value: i32) {
    write_unsigned(out, ((value << 1) ^ (value >> 31)) as u32 as u64);
}

pub(crate) fn write_varlong(out: &mut Vec<u8>, value: i64) {
    write_unsigned(out, ((value << 1) ^ (value >> 63)) as u64);
}

fn write_unsigned(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub(crate) fn varint_len(value: i32) -> usize {
    unsigned_len(((value << 1) ^ (value >> 31)) as u32 as u64)
}

pub(crate) fn varlong_len(value: i64) -> usize {
    unsigned_len(((value << 1) ^ (value >> 63)) as u64)
}

fn unsigned_len(v: u64) -> usize {
    let bits = 64 - v.leading_zeros() as usize;
    bits.div_ceil(7).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_edge_values() {
        for v in [0, 1, -1, 63, -64, 64, 300, i32::MAX, i32::MIN] {
            let mut out = Vec::new();
            write_varint(&mut out, v);
            assert_eq!(out.len(), varint_len(v));
            assert_eq!(Reader::new(&out).read_varint(), Ok(v));
        }
        for v in [0, -1, i64::MAX, i64::MIN, 1 << 40] {
            let mut out = Vec::new();
            write_varlong(&mut out, v);
            assert_eq!(out.len(), varlong_len(v));
            assert_eq!(Reader::new(&out).read_varlong(), Ok(v));
        }
    }

    #[test]
    fn rejects_overlong_and_truncated() {
        assert!(Reader::new(&[0xff; 6]).read_varint().is_err());
        assert!(Reader::new(&[0xff, 0xff, 0xff, 0xff, 0x7f])
            .read_varint()
            .is_err());
        assert!(Reader::new(&[0x80]).read_varint().is_err());
        assert!(Reader::new(&[0xff; 11]).read_varlong().is_err());
    }
}
