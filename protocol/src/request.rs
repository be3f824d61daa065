//! Turning a frame body into a typed [`Request`].
//!
//! Every request header starts with `api_key: i16, api_version: i16, correlation_id: i32` whatever its
//! version, so those 8 bytes are read by hand first: that way even a request we cannot decode yields a
//! correlation id the broker can answer (or log) with. The rest of the header is v1 (nullable client id) or
//! v2 (v1 plus tagged fields), as `ApiKey::request_header_version` says for the api's version. Header v0
//! (no client id) was only ever used by ControlledShutdown v0, a ZooKeeper-era API that `kafka-protocol`
//! does not model, so such a request surfaces as [`DecodeError::UnknownApiKey`].
//!
//! Decisions here are limited to what `kafka-protocol` can decode (`ApiKey::valid_versions()`); whether the
//! broker *implements* a version is its own check against [`crate::versions::SupportedApis`].

use bytes::{Buf, Bytes};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind};
use kafka_protocol::protocol::Decodable;
use thiserror::Error;

/// Bytes every request header version starts with: api key, api version, correlation id.
pub const FIXED_HEADER_LEN: usize = 8;

/// A decoded request: the typed header and body, with the key and version lifted out for dispatch.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub api_key: ApiKey,
    pub api_version: i16,
    pub header: RequestHeader,
    pub body: RequestKind,
}

impl Request {
    /// The id the response must carry so the client can match it to this request.
    pub fn correlation_id(&self) -> i32 {
        self.header.correlation_id
    }
}

/// Why a frame is not a request we can hand to a handler.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// Fewer than 8 bytes: not even a correlation id to answer with, so the connection must be closed.
    #[error("request frame is shorter than the {FIXED_HEADER_LEN}-byte fixed header")]
    TooShort,
    /// An api key `kafka-protocol` does not know (or a ZooKeeper-era one it dropped).
    #[error("unknown api key {api_key} (version {api_version}, correlation id {correlation_id})")]
    UnknownApiKey {
        api_key: i16,
        api_version: i16,
        correlation_id: i32,
    },
    /// A known api at a version outside `ApiKey::valid_versions()`.
    #[error(
        "{api_key:?} version {api_version} is not supported (correlation id {correlation_id})"
    )]
    UnsupportedVersion {
        api_key: ApiKey,
        api_version: i16,
        correlation_id: i32,
    },
    /// The header or body does not parse (truncated, bad UTF-8, bad lengths, ...).
    #[error(
        "malformed {api_key:?} v{api_version} request (correlation id {correlation_id}): {reason}"
    )]
    Malformed {
        api_key: ApiKey,
        api_version: i16,
        correlation_id: i32,
        reason: String,
    },
}

impl DecodeError {
    /// The correlation id read from the fixed header, when the frame was long enough to hold one.
    pub fn correlation_id(&self) -> Option<i32> {
        match self {
            DecodeError::TooShort => None,
            DecodeError::UnknownApiKey { correlation_id, .. }
            | DecodeError::UnsupportedVersion { correlation_id, .. }
            | DecodeError::Malformed { correlation_id, .. } => Some(*correlation_id),
        }
    }
}

/// Parses the request header (in the version the api and its version call for), then the body.
///
/// Never panics, and allocates no more than the frame can hold, on any input. String and byte fields of the
/// result share `frame`'s memory rather than copying it.
pub fn decode_request(frame: Bytes) -> Result<Request, DecodeError> {
    let Some(fixed) = frame.first_chunk::<FIXED_HEADER_LEN>() else {
        return Err(DecodeError::TooShort);
    };
    let mut fixed = &fixed[..];
    let raw_api_key = fixed.get_i16();
    let api_version = fixed.get_i16();
    let correlation_id = fixed.get_i32();

    let Ok(api_key) = ApiKey::try_from(raw_api_key) else {
        return Err(DecodeError::UnknownApiKey {
            api_key: raw_api_key,
            api_version,
            correlation_id,
        });
    };
    let valid = api_key.valid_versions();
    if api_version < valid.min || api_version > valid.max {
        return Err(DecodeError::UnsupportedVersion {
            api_key,
            api_version,
            correlation_id,
        });
    }
    let malformed = |stage: &str, err: &dyn std::fmt::Display| DecodeError::Malformed {
        api_key,
        api_version,
        correlation_id,
        reason: format!("{stage}: {err}"),
    };

    let mut buf = frame;
    let header_version = api_key.request_header_version(api_version);
    let header =
        RequestHeader::decode(&mut buf, header_version).map_err(|e| malformed("header", &e))?;
    let body =
        RequestKind::decode(api_key, &mut buf, api_version).map_err(|e| malformed("body", &e))?;
    if buf.has_remaining() {
        // Kafka's own broker ignores trailing bytes too; rejecting them would only break odd clients.
        tracing::debug!(
            ?api_key,
            api_version,
            correlation_id,
            trailing = buf.remaining(),
            "request frame has bytes after the body"
        );
    }
    Ok(Request {
        api_key,
        api_version,
        header,
        body,
    })
}
