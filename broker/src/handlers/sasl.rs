//! SASL requests that reach the request handlers: on a listener that is not SASL, or on a SASL listener after the
//! client authenticated (the exchange itself is run by `crate::sasl` before any request is dispatched; Kafka's
//! re-authentication, `connections.max.reauth.ms`, is not served). Kafka answers ILLEGAL_SASL_STATE; so do we,
//! with a log line that says what went wrong, so that a client fails with a clear error instead of a dropped
//! connection it keeps retrying.

use kafka_protocol::messages::{
    SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::context::ConnectionInfo;

use super::errors::code;

pub fn handshake(
    conn: &ConnectionInfo,
    req: SaslHandshakeRequest,
    _version: i16,
) -> SaslHandshakeResponse {
    tracing::warn!(
        mechanism = %req.mechanism.as_str(),
        "client started SASL on listener {}, which has no SASL or where it already authenticated: set security.protocol to match the listener",
        conn.listener_name
    );
    let mut resp = SaslHandshakeResponse::default();
    resp.error_code = code(ResponseError::IllegalSaslState);
    resp
}

pub fn authenticate(
    conn: &ConnectionInfo,
    _req: SaslAuthenticateRequest,
    _version: i16,
) -> SaslAuthenticateResponse {
    tracing::warn!(
        "client sent SaslAuthenticate on listener {}, which has no SASL or where it already authenticated",
        conn.listener_name
    );
    let mut resp = SaslAuthenticateResponse::default();
    resp.error_code = code(ResponseError::IllegalSaslState);
    resp.error_message = Some(StrBytes::from_string(format!(
        "listener {} does not use SASL, or the connection is already authenticated",
        conn.listener_name
    )));
    resp
}
