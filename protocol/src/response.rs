//! Framing typed responses: size prefix, response header, body.
//!
//! The response header is v0 (correlation id) or v1 (plus tagged fields) per
//! `ApiKey::response_header_version`, except that ApiVersions responses always use v0: a client that does
//! not yet know which versions we speak must be able to read the correlation id and error code.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::Encodable;
use kafka_protocol::ResponseError;
use thiserror::Error;

use crate::frame::SIZE_PREFIX_LEN;
use crate::kind::response_api_key;
use crate::versions::SupportedApis;

/// Why a response could not be framed. These are broker bugs, not peer misbehaviour.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EncodeError {
    /// The body is for a different api than the one being answered.
    #[error("response body for {body:?} cannot answer a {api_key:?} request")]
    KindMismatch {
        api_key: ApiKey,
        body: Option<ApiKey>,
    },
    /// `kafka-protocol` cannot encode this api at this version.
    #[error("{api_key:?} version {api_version} cannot be encoded")]
    UnsupportedVersion { api_key: ApiKey, api_version: i16 },
    /// A field cannot be represented at this version (e.g. a non-default value for a field it lacks).
    #[error("cannot encode {api_key:?} v{api_version} response: {reason}")]
    Encode {
        api_key: ApiKey,
        api_version: i16,
        reason: String,
    },
    /// The encoded frame does not fit the i32 size prefix.
    #[error("response of {size} bytes does not fit a frame")]
    TooLarge { size: usize },
}

/// Encodes the size prefix, the response header and `body`; the result is the whole frame, ready to write.
pub fn encode_response(
    api_key: ApiKey,
    api_version: i16,
    correlation_id: i32,
    body: &ResponseKind,
) -> Result<Bytes, EncodeError> {
    let body_key = response_api_key(body);
    if body_key != Some(api_key) {
        return Err(EncodeError::KindMismatch {
            api_key,
            body: body_key,
        });
    }
    let valid = api_key.valid_versions();
    if api_version < valid.min || api_version > valid.max {
        return Err(EncodeError::UnsupportedVersion {
            api_key,
            api_version,
        });
    }
    let encode_failed = |err: &dyn std::fmt::Display| EncodeError::Encode {
        api_key,
        api_version,
        reason: err.to_string(),
    };

    let header_version = response_header_version(api_key, api_version);
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let mut buf = BytesMut::with_capacity(size_hint(body, api_version));
    buf.put_i32(0); // size, filled in once known
    header
        .encode(&mut buf, header_version)
        .map_err(|e| encode_failed(&e))?;
    body.encode(&mut buf, api_version)
        .map_err(|e| encode_failed(&e))?;
    finish_frame(buf)
}

/// Bytes to reserve up front. Fetch responses carry whole record batches (megabytes); growing the buffer by
/// doubling would copy them several times, so their exact size is computed first. Other responses are small.
fn size_hint(body: &ResponseKind, api_version: i16) -> usize {
    const SMALL: usize = 1024;
    const HEADER_AND_PREFIX: usize = 16;
    match body {
        ResponseKind::Fetch(r) => r
            .compute_size(api_version)
            .map(|n| n + HEADER_AND_PREFIX)
            .unwrap_or(SMALL),
        _ => SMALL,
    }
}

/// The response header version for `api_key` at `api_version`; ApiVersions is always v0.
pub fn response_header_version(api_key: ApiKey, api_version: i16) -> i16 {
    if api_key == ApiKey::ApiVersions {
        0
    } else {
        api_key.response_header_version(api_version)
    }
}

/// The answer to an ApiVersions request whose version is newer than we speak, as Kafka sends it: encoded
/// as ApiVersions v0 (which every client can read), error UNSUPPORTED_VERSION (35), and our supported api
/// list so the client can retry with the highest version both sides know.
pub fn unsupported_api_versions_response(correlation_id: i32, supported: &SupportedApis) -> Bytes {
    // Written by hand because v0 is fixed forever and this way nothing can fail: the frame holds at most
    // one 6-byte entry per api key, far below any size limit.
    const ENTRY_LEN: usize = 6;
    let body_len = 4 + 2 + 4 + ENTRY_LEN * supported.len();
    let mut buf = BytesMut::with_capacity(SIZE_PREFIX_LEN + body_len);
    buf.put_i32(i32::try_from(body_len).unwrap_or(i32::MAX));
    buf.put_i32(correlation_id);
    buf.put_i16(ResponseError::UnsupportedVersion.code());
    buf.put_i32(i32::try_from(supported.len()).unwrap_or(i32::MAX));
    for (key, min, max) in supported.iter() {
        buf.put_i16(key as i16);
        buf.put_i16(min);
        buf.put_i16(max);
    }
    buf.freeze()
}

/// Writes the body length into the 4-byte placeholder at the front of `buf`.
fn finish_frame(mut buf: BytesMut) -> Result<Bytes, EncodeError> {
    let body_len = buf.len().saturating_sub(SIZE_PREFIX_LEN);
    let size = i32::try_from(body_len).map_err(|_| EncodeError::TooLarge { size: body_len })?;
    if let Some(prefix) = buf.first_chunk_mut::<SIZE_PREFIX_LEN>() {
        *prefix = size.to_be_bytes();
    }
    Ok(buf.freeze())
}
