//! kraftwerk-protocol: the Kafka wire format, with no I/O.
//!
//! The broker reads bytes off a socket and hands them to [`frame::FrameDecoder`], passes each frame to
//! [`request::decode_request`], dispatches on the typed [`request::Request`], and writes back whatever
//! [`response::encode_response`] returns. [`versions::SupportedApis`] holds the version ranges the broker's
//! handlers implement, so ApiVersions can never advertise an API without a handler.
//!
//! Typed messages come from the `kafka-protocol` crate (patched in `third_party/` so that a peer-supplied
//! array count cannot make it allocate more than the frame holds). This crate only adds the framing, the
//! header-version rules and errors the broker can answer with, so nothing here touches sockets or tokio.

pub mod fetch_frame;
pub mod frame;
pub mod kind;
pub mod quorum_channel;
pub mod request;
pub mod response;
pub mod versions;

pub use kafka_protocol;
pub use kafka_protocol::messages::{
    ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind,
};
