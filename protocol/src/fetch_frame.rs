//! Fetch responses framed as a sequence of parts, so record bytes need not pass through the encoder.
//!
//! `kafka-protocol` wants every partition's records as `Bytes` inside the response, so encoding a fetch answer
//! with it copies megabytes of records once more into the frame. This encoder writes the same bytes (its
//! output, with each external part replaced by the bytes it stands for, is byte-identical to
//! `kafka-protocol`'s encoding of the response with those records: see the property test) but leaves a
//! partition's records as a [`FramePart::Records`] — whatever the caller uses to name bytes held elsewhere,
//! such as a range of a segment file — and in-memory records as their own `Bytes`, not copied. The network
//! layer then writes the parts in order, sending file ranges with sendfile where it can. No I/O here.
//!
//! The response header and the sub-structures without records (aborted transactions, leader, epochs,
//! snapshot id, node endpoints) are encoded by `kafka-protocol`'s own types; this module writes only the
//! FetchResponse, FetchableTopicResponse and PartitionData levels, for versions 4 to 18.

use std::collections::BTreeMap;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{ApiKey, FetchResponse, ResponseHeader};
use kafka_protocol::protocol::Encodable;

use crate::frame::SIZE_PREFIX_LEN;
use crate::response::{response_header_version, EncodeError};

/// Oldest and newest Fetch versions this encoder writes (those `kafka-protocol` 0.18 knows).
pub const MIN_VERSION: i16 = 4;
pub const MAX_VERSION: i16 = 18;
/// First flexible (compact, tagged-field) version of Fetch.
const FLEXIBLE_VERSION: i16 = 12;
/// In-memory records shorter than this are copied into the frame rather than kept as a part of their own.
const INLINE_RECORDS: usize = 4096;

/// One piece of an encoded frame, to be written in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FramePart<R> {
    /// Bytes of the frame.
    Bytes(Bytes),
    /// `len` bytes of records held elsewhere (`source` says where).
    Records { source: R, len: usize },
}

impl<R> FramePart<R> {
    /// Bytes this part adds to the frame.
    pub fn len(&self) -> usize {
        match self {
            FramePart::Bytes(b) => b.len(),
            FramePart::Records { len, .. } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Records to send for one partition instead of its `records` field.
#[derive(Debug, Clone)]
pub struct ExternalRecords<R> {
    pub source: R,
    pub len: usize,
}

/// Encodes the whole frame (size prefix, response header, body) of a Fetch response at `api_version`.
///
/// `external(topic_index, partition_index)` (positions in `body.responses` and its partitions) gives the
/// records of a partition that are held elsewhere; for the others the partition's own `records` are used.
/// The frame's size prefix counts the external records' lengths.
pub fn encode_fetch_frame<R>(
    api_version: i16,
    correlation_id: i32,
    body: &FetchResponse,
    mut external: impl FnMut(usize, usize) -> Option<ExternalRecords<R>>,
) -> Result<Vec<FramePart<R>>, EncodeError> {
    if !(MIN_VERSION..=MAX_VERSION).contains(&api_version) {
        return Err(EncodeError::UnsupportedVersion {
            api_key: ApiKey::Fetch,
            api_version,
        });
    }
    let mut w = PartsWriter::new(api_version);
    w.buf.put_i32(0); // size, filled in once known
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    header
        .encode(
            &mut w.buf,
            response_header_version(ApiKey::Fetch, api_version),
        )
        .map_err(|e| w.failed(&e))?;
    w.response(body, &mut external)?;
    w.finish()
}

/// Accumulates frame bytes, cutting a part wherever records are held apart.
struct PartsWriter<R> {
    version: i16,
    flexible: bool,
    buf: BytesMut,
    /// Parts before `buf`'s current run: ranges of `buf` (by end position) or records held apart.
    pieces: Vec<Piece<R>>,
    /// Bytes counted by the pieces that are not in `buf`.
    outside: usize,
}

enum Piece<R> {
    /// `buf[previous end..end]`.
    Buf {
        end: usize,
    },
    Shared(Bytes),
    External(ExternalRecords<R>),
}

impl<R> PartsWriter<R> {
    fn new(version: i16) -> Self {
        Self {
            version,
            flexible: version >= FLEXIBLE_VERSION,
            buf: BytesMut::with_capacity(1024),
            pieces: Vec::new(),
            outside: 0,
        }
    }

    fn failed(&self, err: &dyn std::fmt::Display) -> EncodeError {
        EncodeError::Encode {
            api_key: ApiKey::Fetch,
            api_version: self.version,
            reason: err.to_string(),
        }
    }

    fn unavailable(&self, field: &str) -> EncodeError {
        self.failed(&format!("{field} is set but not available in this version"))
    }

    fn response(
        &mut self,
        r: &FetchResponse,
        external: &mut impl FnMut(usize, usize) -> Option<ExternalRecords<R>>,
    ) -> Result<(), EncodeError> {
        self.buf.put_i32(r.throttle_time_ms);
        if self.version >= 7 {
            self.buf.put_i16(r.error_code);
            self.buf.put_i32(r.session_id);
        } else if r.session_id != 0 {
            return Err(self.unavailable("session_id"));
        }
        self.array_len(r.responses.len())?;
        for (ti, topic) in r.responses.iter().enumerate() {
            self.topic(ti, topic, external)?;
        }
        if self.flexible {
            // Tag 0 is node_endpoints (v16+); unknown tags from 1 on, as kafka-protocol writes them.
            let endpoints = self.version >= 16 && !r.node_endpoints.is_empty();
            // Counted whole but written from tag 1 on, exactly as kafka-protocol does.
            let unknown = r.unknown_tagged_fields.len();
            self.uvarint(usize::from(endpoints) + unknown)?;
            if endpoints {
                let mut size = uvarint_len(r.node_endpoints.len() + 1);
                for e in &r.node_endpoints {
                    size += e.compute_size(self.version).map_err(|e| self.failed(&e))?;
                }
                self.uvarint(0)?;
                self.uvarint(size)?;
                self.uvarint(r.node_endpoints.len() + 1)?;
                for e in &r.node_endpoints {
                    e.encode(&mut self.buf, self.version)
                        .map_err(|e| self.failed(&e))?;
                }
            }
            self.unknown_tags(&r.unknown_tagged_fields, 1)?;
        }
        Ok(())
    }

    fn topic(
        &mut self,
        ti: usize,
        t: &FetchableTopicResponse,
        external: &mut impl FnMut(usize, usize) -> Option<ExternalRecords<R>>,
    ) -> Result<(), EncodeError> {
        if self.version <= 12 {
            let name = t.topic.0.as_bytes();
            if self.flexible {
                self.uvarint(name.len() + 1)?;
            } else {
                let len =
                    i16::try_from(name.len()).map_err(|_| self.failed(&"topic name too long"))?;
                self.buf.put_i16(len);
            }
            self.buf.put_slice(name);
        }
        if self.version >= 13 {
            self.buf.put_slice(t.topic_id.as_bytes());
        }
        self.array_len(t.partitions.len())?;
        for (pi, p) in t.partitions.iter().enumerate() {
            self.partition(p, external(ti, pi))?;
        }
        if self.flexible {
            self.uvarint(t.unknown_tagged_fields.len())?;
            self.unknown_tags(&t.unknown_tagged_fields, 0)?;
        }
        Ok(())
    }

    fn partition(
        &mut self,
        p: &PartitionData,
        external: Option<ExternalRecords<R>>,
    ) -> Result<(), EncodeError> {
        let v = self.version;
        self.buf.put_i32(p.partition_index);
        self.buf.put_i16(p.error_code);
        self.buf.put_i64(p.high_watermark);
        self.buf.put_i64(p.last_stable_offset);
        if v >= 5 {
            self.buf.put_i64(p.log_start_offset);
        }
        match &p.aborted_transactions {
            None => self.null_array(),
            Some(list) => {
                self.array_len(list.len())?;
                for a in list {
                    a.encode(&mut self.buf, v).map_err(|e| self.failed(&e))?;
                }
            }
        }
        if v >= 11 {
            self.buf.put_i32(p.preferred_read_replica.0);
        } else if p.preferred_read_replica.0 != -1 {
            return Err(self.unavailable("preferred_read_replica"));
        }
        match (external, &p.records) {
            (Some(ext), _) => {
                self.bytes_len(Some(ext.len))?;
                self.cut();
                self.outside += ext.len;
                self.pieces.push(Piece::External(ext));
            }
            (None, None) => self.bytes_len(None)?,
            (None, Some(records)) => {
                self.bytes_len(Some(records.len()))?;
                if records.len() < INLINE_RECORDS {
                    self.buf.put_slice(records);
                } else {
                    self.cut();
                    self.outside += records.len();
                    self.pieces.push(Piece::Shared(records.clone()));
                }
            }
        }
        if self.flexible {
            let diverging = p.diverging_epoch != Default::default();
            let leader = p.current_leader != Default::default();
            let snapshot = p.snapshot_id != Default::default();
            let unknown = p.unknown_tagged_fields.len();
            self.uvarint(
                usize::from(diverging) + usize::from(leader) + usize::from(snapshot) + unknown,
            )?;
            if diverging {
                self.tagged(0, &p.diverging_epoch)?;
            }
            if leader {
                self.tagged(1, &p.current_leader)?;
            }
            if snapshot {
                self.tagged(2, &p.snapshot_id)?;
            }
            self.unknown_tags(&p.unknown_tagged_fields, 3)?;
        }
        Ok(())
    }

    /// A tagged field holding one structure.
    fn tagged<T: Encodable>(&mut self, tag: usize, value: &T) -> Result<(), EncodeError> {
        let size = value
            .compute_size(self.version)
            .map_err(|e| self.failed(&e))?;
        self.uvarint(tag)?;
        self.uvarint(size)?;
        value
            .encode(&mut self.buf, self.version)
            .map_err(|e| self.failed(&e))
    }

    /// Unknown tagged fields with tags from `from` on (smaller ones are known fields' tags, which
    /// kafka-protocol leaves out as well).
    fn unknown_tags(
        &mut self,
        fields: &BTreeMap<i32, Bytes>,
        from: i32,
    ) -> Result<(), EncodeError> {
        for (&tag, value) in fields.range(from..) {
            let tag = usize::try_from(tag).map_err(|_| self.failed(&"negative tag"))?;
            self.uvarint(tag)?;
            self.uvarint(value.len())?;
            self.buf.put_slice(value);
        }
        Ok(())
    }

    fn array_len(&mut self, len: usize) -> Result<(), EncodeError> {
        if self.flexible {
            self.uvarint(len + 1)
        } else {
            let len = i32::try_from(len).map_err(|_| self.failed(&"array too long"))?;
            self.buf.put_i32(len);
            Ok(())
        }
    }

    fn null_array(&mut self) {
        if self.flexible {
            self.buf.put_u8(0);
        } else {
            self.buf.put_i32(-1);
        }
    }

    /// The length field of a (nullable) bytes field.
    fn bytes_len(&mut self, len: Option<usize>) -> Result<(), EncodeError> {
        match (len, self.flexible) {
            (None, true) => self.buf.put_u8(0),
            (None, false) => self.buf.put_i32(-1),
            (Some(n), true) => self.uvarint(n + 1)?,
            (Some(n), false) => {
                let n = i32::try_from(n).map_err(|_| self.failed(&"records too long"))?;
                self.buf.put_i32(n);
            }
        }
        Ok(())
    }

    fn uvarint(&mut self, value: usize) -> Result<(), EncodeError> {
        let mut v = u32::try_from(value).map_err(|_| self.failed(&"length too large"))?;
        while v >= 0x80 {
            self.buf.put_u8((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.put_u8(v as u8);
        Ok(())
    }

    /// Ends the current run of frame bytes (before a part held apart).
    fn cut(&mut self) {
        self.pieces.push(Piece::Buf {
            end: self.buf.len(),
        });
    }

    /// Fills in the size prefix and splits the frame into its parts.
    fn finish(mut self) -> Result<Vec<FramePart<R>>, EncodeError> {
        self.cut();
        let total = self.buf.len() + self.outside;
        let body_len = total.saturating_sub(SIZE_PREFIX_LEN);
        let size = i32::try_from(body_len).map_err(|_| EncodeError::TooLarge { size: body_len })?;
        if let Some(prefix) = self.buf.first_chunk_mut::<SIZE_PREFIX_LEN>() {
            *prefix = size.to_be_bytes();
        }
        let bytes = self.buf.freeze();
        let mut parts = Vec::with_capacity(self.pieces.len());
        let mut start = 0;
        for piece in self.pieces {
            match piece {
                Piece::Buf { end } => {
                    if end > start {
                        parts.push(FramePart::Bytes(bytes.slice(start..end)));
                    }
                    start = end;
                }
                Piece::Shared(b) => parts.push(FramePart::Bytes(b)),
                Piece::External(ext) => parts.push(FramePart::Records {
                    source: ext.source,
                    len: ext.len,
                }),
            }
        }
        Ok(parts)
    }
}

fn uvarint_len(value: usize) -> usize {
    let mut n = 1;
    let mut v = value >> 7;
    while v > 0 {
        n += 1;
        v >>= 7;
    }
    n
}

#[cfg(test)]
mod tests;
