//! The per-connection SASL state machine, after Kafka's `SaslServerAuthenticator`. Pure: each frame the client
//! sends goes in, the encoded reply (if any) and what happens next come out; the connection shell does the I/O,
//! the failed-authentication delay and the log.
//!
//! 1. Before a mechanism is chosen only ApiVersions (once, as Kafka) and SaslHandshake are accepted; any other
//!    request ends the connection: it is almost always a client whose `security.protocol` has no SASL.
//! 2. SaslHandshake v0 selects Kafka's original flow, where the following frames are bare SASL tokens and the
//!    replies bare size-prefixed tokens; v1 selects tokens carried in SaslAuthenticate requests (v0–v2).
//! 3. An unknown mechanism is answered UNSUPPORTED_SASL_MECHANISM with the enabled list, a failed exchange
//!    SASL_AUTHENTICATION_FAILED with Kafka's message; both end the connection.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{SaslAuthenticateResponse, SaslHandshakeResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use kraftwerk_protocol::request::{decode_request, DecodeError};
use kraftwerk_protocol::response::{encode_response, unsupported_api_versions_response};
use kraftwerk_protocol::versions::SupportedApis;
use kraftwerk_protocol::{ApiKey, RequestKind, ResponseKind};

use super::mechanism::{MechStep, MechanismSession, SaslListener};
use super::settings::Mechanism;

/// Where the exchange is.
enum Phase {
    /// Nothing yet: ApiVersions or SaslHandshake.
    Start,
    /// ApiVersions answered: SaslHandshake next.
    Handshake,
    /// A mechanism is running.
    Authenticating {
        session: MechanismSession,
        /// SaslHandshake v1: tokens travel in SaslAuthenticate requests.
        kafka_framing: bool,
    },
    Done,
}

/// What the shell does after a frame.
#[derive(Debug)]
pub enum Outcome {
    /// Write `reply` (if any) and read the next frame.
    Continue { reply: Option<Bytes> },
    /// Write `reply` (if any); the connection is now `principal` and serves Kafka requests.
    Authenticated {
        reply: Option<Bytes>,
        principal: String,
        mechanism: Mechanism,
    },
    /// Wait `connection.failed.authentication.delay.ms`, write `reply` (if any) and close.
    Failed {
        reply: Option<Bytes>,
        failure: Failure,
    },
}

/// Why authentication failed; the shell turns it into a log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// A request other than ApiVersions/SaslHandshake/SaslAuthenticate before authentication.
    UnexpectedRequest {
        api_key: ApiKey,
        during: &'static str,
    },
    /// A frame that is not a Kafka request where one was expected.
    Malformed { detail: String },
    /// SaslHandshake named a mechanism this listener does not enable.
    UnsupportedMechanism { requested: String },
    /// The credentials were refused.
    BadCredentials {
        mechanism: Mechanism,
        user: Option<String>,
        message: String,
    },
}

/// One connection's authentication.
pub struct SaslAuthenticator {
    listener: Arc<SaslListener>,
    phase: Phase,
}

/// Kafka's name for an API in its messages (`METADATA`, `API_VERSIONS`).
pub fn kafka_api_name(api_key: ApiKey) -> String {
    let debug = format!("{api_key:?}");
    let mut out = String::with_capacity(debug.len() + 4);
    for (i, c) in debug.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

fn peek_api_key(frame: &[u8]) -> Option<Result<ApiKey, i16>> {
    let raw = i16::from_be_bytes([*frame.first()?, *frame.get(1)?]);
    Some(ApiKey::try_from(raw).map_err(|_| raw))
}

impl SaslAuthenticator {
    pub fn new(listener: Arc<SaslListener>) -> Self {
        SaslAuthenticator {
            listener,
            phase: Phase::Start,
        }
    }

    fn enabled_names(&self) -> Vec<StrBytes> {
        self.listener
            .settings
            .mechanisms
            .iter()
            .map(|m| StrBytes::from_static_str(m.name()))
            .collect()
    }

    /// Handles one frame (without its size prefix).
    pub fn on_frame(&mut self, frame: Bytes, apis: &SupportedApis) -> Outcome {
        match std::mem::replace(&mut self.phase, Phase::Done) {
            Phase::Start => self.on_handshake_request(frame, apis, true),
            Phase::Handshake => self.on_handshake_request(frame, apis, false),
            Phase::Authenticating {
                session,
                kafka_framing: false,
            } => self.on_raw_token(session, &frame),
            Phase::Authenticating {
                session,
                kafka_framing: true,
            } => self.on_authenticate_request(session, frame),
            Phase::Done => Outcome::Failed {
                reply: None,
                failure: Failure::Malformed {
                    detail: "a frame after authentication ended".into(),
                },
            },
        }
    }

    fn on_handshake_request(
        &mut self,
        frame: Bytes,
        apis: &SupportedApis,
        versions_allowed: bool,
    ) -> Outcome {
        // As Kafka: refuse by API key before parsing the body of a request that has no business here.
        match peek_api_key(&frame) {
            Some(Ok(ApiKey::SaslHandshake)) => {}
            Some(Ok(ApiKey::ApiVersions)) if versions_allowed => {}
            Some(Ok(api_key)) => {
                return Outcome::Failed {
                    reply: None,
                    failure: Failure::UnexpectedRequest {
                        api_key,
                        during: "SASL handshake",
                    },
                }
            }
            Some(Err(raw)) => {
                return malformed(format!("unknown API key {raw} before SaslHandshake"))
            }
            None => return malformed("a frame too short for a request header".into()),
        }
        let req = match decode_request(frame) {
            Ok(req) => req,
            Err(DecodeError::UnsupportedVersion {
                api_key: ApiKey::ApiVersions,
                correlation_id,
                ..
            }) => {
                self.phase = Phase::Handshake;
                return Outcome::Continue {
                    reply: Some(unsupported_api_versions_response(correlation_id, apis)),
                };
            }
            Err(e) => return malformed(e.to_string()),
        };
        let (api_key, version, correlation_id) =
            (req.api_key, req.api_version, req.correlation_id());
        match req.body {
            RequestKind::ApiVersions(_) => {
                self.phase = Phase::Handshake;
                let body = ResponseKind::ApiVersions(apis.api_versions_response());
                Outcome::Continue {
                    reply: encode(api_key, version, correlation_id, &body),
                }
            }
            RequestKind::SaslHandshake(r) => {
                let mut resp = SaslHandshakeResponse::default();
                resp.mechanisms = self.enabled_names();
                let requested = r.mechanism.as_str();
                let chosen = Mechanism::from_name(requested)
                    .filter(|m| self.listener.settings.mechanisms.contains(m));
                let Some(mechanism) = chosen else {
                    resp.error_code = ResponseError::UnsupportedSaslMechanism.code();
                    return Outcome::Failed {
                        reply: encode(
                            api_key,
                            version,
                            correlation_id,
                            &ResponseKind::SaslHandshake(resp),
                        ),
                        failure: Failure::UnsupportedMechanism {
                            requested: requested.to_string(),
                        },
                    };
                };
                let session = match self.listener.start(mechanism) {
                    Ok(s) => s,
                    Err(e) => return malformed(format!("cannot start {}: {e}", mechanism.name())),
                };
                self.phase = Phase::Authenticating {
                    session,
                    kafka_framing: version >= 1,
                };
                Outcome::Continue {
                    reply: encode(
                        api_key,
                        version,
                        correlation_id,
                        &ResponseKind::SaslHandshake(resp),
                    ),
                }
            }
            _ => malformed("request body does not match its API key".into()),
        }
    }

    /// SaslHandshake v0: the frame is the token itself and the reply a bare size-prefixed token.
    fn on_raw_token(&mut self, mut session: MechanismSession, token: &[u8]) -> Outcome {
        let mechanism = session.mechanism();
        match session.step(token) {
            MechStep::Challenge(challenge) => {
                self.phase = Phase::Authenticating {
                    session,
                    kafka_framing: false,
                };
                Outcome::Continue {
                    reply: Some(size_prefixed(&challenge)),
                }
            }
            MechStep::Success {
                user,
                final_message,
            } => Outcome::Authenticated {
                // Kafka sends the (possibly empty) last token.
                reply: Some(size_prefixed(&final_message)),
                principal: format!("User:{user}"),
                mechanism,
            },
            MechStep::Failure { message, user } => Outcome::Failed {
                // The raw flow has no way to carry an error: Kafka closes the connection.
                reply: None,
                failure: Failure::BadCredentials {
                    mechanism,
                    user,
                    message,
                },
            },
        }
    }

    /// SaslHandshake v1: only SaslAuthenticate until the exchange ends.
    fn on_authenticate_request(&mut self, mut session: MechanismSession, frame: Bytes) -> Outcome {
        match peek_api_key(&frame) {
            Some(Ok(ApiKey::SaslAuthenticate)) => {}
            Some(Ok(api_key)) => {
                return Outcome::Failed {
                    reply: None,
                    failure: Failure::UnexpectedRequest {
                        api_key,
                        during: "SASL authentication",
                    },
                }
            }
            _ => return malformed("expected a SaslAuthenticate request".into()),
        }
        let req = match decode_request(frame) {
            Ok(req) => req,
            Err(e) => return malformed(e.to_string()),
        };
        let (api_key, version, correlation_id) =
            (req.api_key, req.api_version, req.correlation_id());
        let RequestKind::SaslAuthenticate(r) = req.body else {
            return malformed("request body does not match its API key".into());
        };
        let mechanism = session.mechanism();
        let mut resp = SaslAuthenticateResponse::default();
        match session.step(&r.auth_bytes) {
            MechStep::Challenge(challenge) => {
                resp.auth_bytes = Bytes::from(challenge);
                self.phase = Phase::Authenticating {
                    session,
                    kafka_framing: true,
                };
                Outcome::Continue {
                    reply: encode(
                        api_key,
                        version,
                        correlation_id,
                        &ResponseKind::SaslAuthenticate(resp),
                    ),
                }
            }
            MechStep::Success {
                user,
                final_message,
            } => {
                resp.auth_bytes = Bytes::from(final_message);
                // connections.max.reauth.ms is 0 (Kafka's default): no session lifetime.
                resp.session_lifetime_ms = 0;
                Outcome::Authenticated {
                    reply: encode(
                        api_key,
                        version,
                        correlation_id,
                        &ResponseKind::SaslAuthenticate(resp),
                    ),
                    principal: format!("User:{user}"),
                    mechanism,
                }
            }
            MechStep::Failure { message, user } => {
                resp.error_code = ResponseError::SaslAuthenticationFailed.code();
                resp.error_message = Some(StrBytes::from_string(message.clone()));
                Outcome::Failed {
                    reply: encode(
                        api_key,
                        version,
                        correlation_id,
                        &ResponseKind::SaslAuthenticate(resp),
                    ),
                    failure: Failure::BadCredentials {
                        mechanism,
                        user,
                        message,
                    },
                }
            }
        }
    }
}

fn malformed(detail: String) -> Outcome {
    Outcome::Failed {
        reply: None,
        failure: Failure::Malformed { detail },
    }
}

fn encode(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &ResponseKind,
) -> Option<Bytes> {
    match encode_response(api_key, version, correlation_id, body) {
        Ok(bytes) => Some(bytes),
        Err(e) => {
            tracing::error!(?api_key, version, error = %e, "cannot encode SASL response");
            None
        }
    }
}

fn size_prefixed(token: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(4 + token.len());
    out.put_i32(token.len() as i32);
    out.put_slice(token);
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sasl::mechanism::tests::{credential, listener, MemStore};
    use kafka_protocol::messages::{
        ApiVersionsRequest, MetadataRequest, RequestHeader, SaslAuthenticateRequest,
        SaslHandshakeRequest,
    };
    use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request};

    fn frame<R: Encodable + HeaderVersion + Request>(
        req: &R,
        version: i16,
        correlation: i32,
    ) -> Bytes {
        let mut header = RequestHeader::default();
        header.request_api_key = R::KEY;
        header.request_api_version = version;
        header.correlation_id = correlation;
        header.client_id = Some(StrBytes::from_static_str("test"));
        let mut buf = BytesMut::new();
        header.encode(&mut buf, R::header_version(version)).unwrap();
        req.encode(&mut buf, version).unwrap();
        buf.freeze()
    }

    fn handshake(mechanism: &str, version: i16) -> Bytes {
        let mut r = SaslHandshakeRequest::default();
        r.mechanism = StrBytes::from_string(mechanism.to_string());
        frame(&r, version, 1)
    }

    fn authenticate(token: &[u8], version: i16) -> Bytes {
        let mut r = SaslAuthenticateRequest::default();
        r.auth_bytes = Bytes::copy_from_slice(token);
        frame(&r, version, 2)
    }

    /// The body of an encoded response frame, after size prefix and header.
    fn body<R: Decodable>(reply: &Bytes, header_len: usize, version: i16) -> R {
        let mut b = reply.slice(4 + header_len..);
        R::decode(&mut b, version).unwrap()
    }

    fn apis() -> SupportedApis {
        crate::handlers::supported_apis()
    }

    #[test]
    fn plain_over_sasl_authenticate() {
        let l = Arc::new(listener(vec![Mechanism::Plain], MemStore::default()));
        let mut a = SaslAuthenticator::new(l);
        let apis = apis();
        let Outcome::Continue { reply: Some(r) } =
            a.on_frame(frame(&ApiVersionsRequest::default(), 3, 0), &apis)
        else {
            panic!("ApiVersions must be answered")
        };
        assert!(r.len() > 8);
        let Outcome::Continue { reply: Some(r) } = a.on_frame(handshake("PLAIN", 1), &apis) else {
            panic!()
        };
        let resp: SaslHandshakeResponse = body(&r, 4, 1);
        assert_eq!(resp.error_code, 0);
        assert_eq!(resp.mechanisms, vec![StrBytes::from_static_str("PLAIN")]);
        match a.on_frame(authenticate(b"\0alice\0alice-secret", 2), &apis) {
            Outcome::Authenticated {
                reply: Some(r),
                principal,
                mechanism,
            } => {
                assert_eq!(principal, "User:alice");
                assert_eq!(mechanism, Mechanism::Plain);
                let resp: SaslAuthenticateResponse = body(&r, 5, 2);
                assert_eq!(resp.error_code, 0);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn wrong_password_is_sasl_authentication_failed_with_kafkas_message() {
        let l = Arc::new(listener(vec![Mechanism::Plain], MemStore::default()));
        let mut a = SaslAuthenticator::new(l);
        let apis = apis();
        assert!(matches!(
            a.on_frame(handshake("PLAIN", 1), &apis),
            Outcome::Continue { .. }
        ));
        match a.on_frame(authenticate(b"\0alice\0nope", 1), &apis) {
            Outcome::Failed {
                reply: Some(r),
                failure: Failure::BadCredentials { user, .. },
            } => {
                assert_eq!(user.as_deref(), Some("alice"));
                let resp: SaslAuthenticateResponse = body(&r, 4, 1);
                assert_eq!(
                    resp.error_code,
                    ResponseError::SaslAuthenticationFailed.code()
                );
                assert_eq!(
                    resp.error_message.unwrap().as_str(),
                    "Authentication failed: Invalid username or password"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn raw_token_flow_after_handshake_v0() {
        let l = Arc::new(listener(vec![Mechanism::Plain], MemStore::default()));
        let mut a = SaslAuthenticator::new(l);
        let apis = apis();
        assert!(matches!(
            a.on_frame(handshake("PLAIN", 0), &apis),
            Outcome::Continue { .. }
        ));
        match a.on_frame(Bytes::from_static(b"\0alice\0alice-secret"), &apis) {
            Outcome::Authenticated {
                reply: Some(r),
                principal,
                ..
            } => {
                assert_eq!(principal, "User:alice");
                assert_eq!(&r[..], &[0, 0, 0, 0]);
            }
            other => panic!("{other:?}"),
        }
        let l = Arc::new(listener(vec![Mechanism::Plain], MemStore::default()));
        let mut a = SaslAuthenticator::new(l);
        a.on_frame(handshake("PLAIN", 0), &apis);
        assert!(matches!(
            a.on_frame(Bytes::from_static(b"\0alice\0x"), &apis),
            Outcome::Failed {
                reply: None,
                failure: Failure::BadCredentials { .. }
            }
        ));
    }

    #[test]
    fn scram_over_sasl_authenticate() {
        let m = Mechanism::ScramSha512;
        let mut store = MemStore::default();
        store.0.insert(("bob".into(), m), credential(m, "pw"));
        let l = Arc::new(listener(vec![Mechanism::Plain, m], store));
        let mut a = SaslAuthenticator::new(l);
        let apis = apis();
        let Outcome::Continue { reply: Some(r) } = a.on_frame(handshake("SCRAM-SHA-512", 1), &apis)
        else {
            panic!()
        };
        let resp: SaslHandshakeResponse = body(&r, 4, 1);
        assert_eq!(resp.mechanisms.len(), 2);
        // Drive the exchange with rsasl's client through Kafka frames.
        use rsasl::prelude::{Mechname, SASLClient, SASLConfig};
        let client =
            SASLClient::new(SASLConfig::with_credentials(None, "bob".into(), "pw".into()).unwrap());
        let name = Mechname::parse(b"SCRAM-SHA-512").unwrap();
        let mut client = client.start_suggested(&[name]).unwrap();
        let mut out = std::io::Cursor::new(Vec::new());
        client.step(None, &mut out).unwrap();
        let Outcome::Continue { reply: Some(r) } =
            a.on_frame(authenticate(out.get_ref(), 2), &apis)
        else {
            panic!()
        };
        let first: SaslAuthenticateResponse = body(&r, 5, 2);
        let mut out = std::io::Cursor::new(Vec::new());
        client.step(Some(&first.auth_bytes), &mut out).unwrap();
        match a.on_frame(authenticate(out.get_ref(), 2), &apis) {
            Outcome::Authenticated {
                principal,
                reply: Some(r),
                ..
            } => {
                assert_eq!(principal, "User:bob");
                let last: SaslAuthenticateResponse = body(&r, 5, 2);
                let mut sink = std::io::Cursor::new(Vec::new());
                client
                    .step(Some(&last.auth_bytes), &mut sink)
                    .expect("server signature verifies");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn other_requests_before_authentication_end_the_connection() {
        let l = Arc::new(listener(vec![Mechanism::Plain], MemStore::default()));
        let apis = apis();
        let mut a = SaslAuthenticator::new(l.clone());
        match a.on_frame(frame(&MetadataRequest::default(), 12, 1), &apis) {
            Outcome::Failed {
                reply: None,
                failure: Failure::UnexpectedRequest { api_key, during },
            } => {
                assert_eq!(kafka_api_name(api_key), "METADATA");
                assert_eq!(during, "SASL handshake");
            }
            other => panic!("{other:?}"),
        }
        // After ApiVersions (what a PLAINTEXT client sends first), still only SaslHandshake.
        let mut a = SaslAuthenticator::new(l.clone());
        a.on_frame(frame(&ApiVersionsRequest::default(), 3, 0), &apis);
        assert!(matches!(
            a.on_frame(frame(&ApiVersionsRequest::default(), 3, 1), &apis),
            Outcome::Failed {
                failure: Failure::UnexpectedRequest { .. },
                ..
            }
        ));
        // During a v1 exchange only SaslAuthenticate.
        let mut a = SaslAuthenticator::new(l.clone());
        a.on_frame(handshake("PLAIN", 1), &apis);
        assert!(matches!(
            a.on_frame(frame(&MetadataRequest::default(), 12, 1), &apis),
            Outcome::Failed {
                failure: Failure::UnexpectedRequest {
                    during: "SASL authentication",
                    ..
                },
                ..
            }
        ));
        // Garbage is not a request.
        let mut a = SaslAuthenticator::new(l);
        assert!(matches!(
            a.on_frame(Bytes::from_static(b"\x7f"), &apis),
            Outcome::Failed {
                failure: Failure::Malformed { .. },
                ..
            }
        ));
    }

    #[test]
    fn unsupported_mechanism_lists_the_enabled_ones() {
        let l = Arc::new(listener(vec![Mechanism::Plain], MemStore::default()));
        let mut a = SaslAuthenticator::new(l);
        match a.on_frame(handshake("GSSAPI", 1), &apis()) {
            Outcome::Failed {
                reply: Some(r),
                failure: Failure::UnsupportedMechanism { requested },
            } => {
                assert_eq!(requested, "GSSAPI");
                let resp: SaslHandshakeResponse = body(&r, 4, 1);
                assert_eq!(
                    resp.error_code,
                    ResponseError::UnsupportedSaslMechanism.code()
                );
                assert_eq!(resp.mechanisms, vec![StrBytes::from_static_str("PLAIN")]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn api_names_are_kafkas() {
        assert_eq!(kafka_api_name(ApiKey::Metadata), "METADATA");
        assert_eq!(kafka_api_name(ApiKey::ApiVersions), "API_VERSIONS");
        assert_eq!(kafka_api_name(ApiKey::Produce), "PRODUCE");
    }
}
