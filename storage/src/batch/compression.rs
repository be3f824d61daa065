//! The four codecs of Kafka record batches, in the framings Kafka's Java clients write: gzip (RFC 1952),
//! snappy in xerial's `SnappyOutputStream` blocks (raw snappy read too, as librdkafka may send it), lz4 frames
//! with independent blocks (`KafkaLZ4BlockOutputStream`), and zstd frames.
//!
//! Used where the broker must see inside a compressed batch: the log cleaner (keys) and the check that a
//! compacted topic only takes keyed records. Decompression is bounded by a caller-given limit so a small batch
//! cannot expand into gigabytes of memory.

use std::io::{Read, Write};

use super::{BatchError, Compression};

/// xerial snappy-java's stream header: magic, then version 1 and minimum compatible version 1.
const XERIAL_MAGIC: &[u8] = b"\x82SNAPPY\x00";
const XERIAL_HEADER_LEN: usize = 16;
/// snappy-java's default block size.
const XERIAL_BLOCK: usize = 32 * 1024;

/// Decompresses `data` written with `codec`, failing if the result would exceed `limit` bytes.
pub fn decompress(codec: Compression, data: &[u8], limit: usize) -> Result<Vec<u8>, BatchError> {
    let fail = |e: std::io::Error| BatchError::Decompression(e.to_string());
    let mut out = Vec::new();
    // One byte past the limit tells "exactly at the limit" from "beyond it".
    let cap = limit.saturating_add(1) as u64;
    match codec {
        Compression::None => out.extend_from_slice(data),
        Compression::Gzip => {
            flate2::read::MultiGzDecoder::new(data)
                .take(cap)
                .read_to_end(&mut out)
                .map_err(fail)?;
        }
        Compression::Lz4 => {
            lz4::Decoder::new(data)
                .map_err(fail)?
                .take(cap)
                .read_to_end(&mut out)
                .map_err(fail)?;
        }
        Compression::Zstd => {
            zstd::stream::read::Decoder::new(data)
                .map_err(fail)?
                .take(cap)
                .read_to_end(&mut out)
                .map_err(fail)?;
        }
        Compression::Snappy => snappy_decompress(data, limit, &mut out)?,
    }
    if out.len() > limit {
        return Err(BatchError::Decompression(format!(
            "decompressed records exceed {limit} bytes"
        )));
    }
    Ok(out)
}

/// Compresses `data` with `codec`.
pub fn compress(codec: Compression, data: &[u8]) -> Result<Vec<u8>, BatchError> {
    compress_with_level(codec, data, None)
}

/// [`compress`] at a level (`None`: the codec's default; ignored by snappy, which has none): gzip 1-9, lz4 1-17
/// (Kafka's `compression.lz4.level`; above 3 lz4's high-compression mode), zstd -131072..=22.
pub fn compress_with_level(
    codec: Compression,
    data: &[u8],
    level: Option<i32>,
) -> Result<Vec<u8>, BatchError> {
    let fail = |e: std::io::Error| BatchError::Decompression(format!("compressing: {e}"));
    match codec {
        Compression::None => Ok(data.to_vec()),
        Compression::Gzip => {
            let level = level.map_or(flate2::Compression::default(), |l| {
                flate2::Compression::new(l.clamp(0, 9) as u32)
            });
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), level);
            enc.write_all(data).map_err(fail)?;
            enc.finish().map_err(fail)
        }
        Compression::Lz4 => {
            let mut enc = lz4::EncoderBuilder::new()
                .level(level.unwrap_or(0).clamp(0, 17) as u32)
                .block_mode(lz4::BlockMode::Independent)
                .checksum(lz4::ContentChecksum::NoChecksum)
                .build(Vec::new())
                .map_err(fail)?;
            enc.write_all(data).map_err(fail)?;
            let (out, result) = enc.finish();
            result.map_err(fail)?;
            Ok(out)
        }
        Compression::Zstd => zstd::stream::encode_all(data, level.unwrap_or(3)).map_err(fail),
        Compression::Snappy => {
            let mut out = Vec::with_capacity(data.len() / 2 + XERIAL_HEADER_LEN);
            out.extend_from_slice(XERIAL_MAGIC);
            out.extend_from_slice(&1i32.to_be_bytes());
            out.extend_from_slice(&1i32.to_be_bytes());
            let mut encoder = snap::raw::Encoder::new();
            for block in data.chunks(XERIAL_BLOCK) {
                let compressed = encoder
                    .compress_vec(block)
                    .map_err(|e| BatchError::Decompression(format!("compressing: {e}")))?;
                let len = i32::try_from(compressed.len()).map_err(|_| BatchError::Overflow)?;
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(&compressed);
            }
            Ok(out)
        }
    }
}

/// xerial framing (blocks of a 4-byte length and raw snappy) or, without its header, one raw snappy block.
fn snappy_decompress(data: &[u8], limit: usize, out: &mut Vec<u8>) -> Result<(), BatchError> {
    let fail = |e: snap::Error| BatchError::Decompression(e.to_string());
    let mut decoder = snap::raw::Decoder::new();
    let mut block = |bytes: &[u8], out: &mut Vec<u8>| -> Result<(), BatchError> {
        let len = snap::raw::decompress_len(bytes).map_err(fail)?;
        if out.len().saturating_add(len) > limit {
            return Err(BatchError::Decompression(format!(
                "decompressed records exceed {limit} bytes"
            )));
        }
        let start = out.len();
        out.resize(start + len, 0);
        let written = decoder
            .decompress(bytes, out.get_mut(start..).unwrap_or_default())
            .map_err(fail)?;
        out.truncate(start + written);
        Ok(())
    };
    if !data.starts_with(XERIAL_MAGIC) {
        return block(data, out);
    }
    let mut rest = data.get(XERIAL_HEADER_LEN..).unwrap_or_default();
    while !rest.is_empty() {
        let (len_bytes, tail) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| BatchError::Decompression("torn snappy block length".into()))?;
        let len = usize::try_from(i32::from_be_bytes(*len_bytes))
            .map_err(|_| BatchError::Decompression("negative snappy block length".into()))?;
        let bytes = tail
            .get(..len)
            .ok_or_else(|| BatchError::Decompression("torn snappy block".into()))?;
        block(bytes, out)?;
        rest = tail.get(len..).unwrap_or_default();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    #[test]
    fn every_codec_round_trips() {
        let data: Vec<u8> = (0..100_000u32)
            .flat_map(|i| (i % 251).to_be_bytes())
            .collect();
        for codec in ALL {
            let packed = compress(codec, &data).unwrap();
            assert_eq!(
                decompress(codec, &packed, data.len()).unwrap(),
                data,
                "{codec:?}"
            );
        }
    }

    #[test]
    fn the_limit_stops_a_decompression_bomb() {
        let data = vec![0u8; 1 << 20];
        for codec in ALL {
            let packed = compress(codec, &data).unwrap();
            assert!(decompress(codec, &packed, 1000).is_err(), "{codec:?}");
        }
    }

    #[test]
    fn raw_snappy_without_the_xerial_header_is_read() {
        let data = b"hello hello hello hello".to_vec();
        let raw = snap::raw::Encoder::new().compress_vec(&data).unwrap();
        assert_eq!(decompress(Compression::Snappy, &raw, 100).unwrap(), data);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for codec in [
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            assert!(decompress(codec, b"\x82SNAPPY\x00garbage-garbage-garbage", 1 << 20).is_err());
        }
    }
}
