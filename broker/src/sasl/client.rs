//! The client side of SASL for the connections nodes make to each other (raft between controllers, brokers'
//! calls to the active controller, follower fetches), as Kafka's `SaslClientAuthenticator` does it with
//! SaslHandshake v1: the dialling node names its mechanism, then carries rsasl's client tokens in
//! SaslAuthenticate requests until the server accepts (SCRAM: after checking the server's signature, so a
//! node never talks to a server that does not know its credential) or refuses.
//!
//! - [`SaslClientSettings`]: which mechanism (`sasl.mechanism.controller.protocol` or
//!   `sasl.mechanism.inter.broker.protocol`) and which credentials (`username`/`password` of the listener's JAAS
//!   entry for that mechanism), read at start so a mistake stops the start with the key to fix.
//! - [`SaslClient`]: the exchange as a pure state machine (response frames in, request frames out); the
//!   connector (`tls/connector.rs`) does the I/O.

use std::collections::BTreeMap;
use std::io::Cursor;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    RequestHeader, ResponseHeader, SaslAuthenticateRequest, SaslAuthenticateResponse,
    SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use rsasl::prelude::{Mechname, SASLClient, SASLConfig, Session};

use super::settings::{
    lookup, parse_mechanisms, Mechanism, PLAIN_LOGIN_MODULE, SCRAM_LOGIN_MODULE,
};
use super::{jaas, SaslConfigError};

/// SaslHandshake v1: tokens travel in SaslAuthenticate requests (Kafka's clients since 1.0).
const HANDSHAKE_VERSION: i16 = 1;
/// SaslAuthenticate v2 (flexible), which Kraftwerk's listeners serve.
const AUTHENTICATE_VERSION: i16 = 2;
const CLIENT_ID: &str = "kraftwerk-node";

/// How this node logs in to one listener of the other nodes.
#[derive(Clone, PartialEq, Eq)]
pub struct SaslClientSettings {
    /// The listener dialled (for messages).
    pub listener: String,
    pub mechanism: Mechanism,
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for SaslClientSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslClientSettings")
            .field("listener", &self.listener)
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .field("password", &"(hidden)")
            .finish()
    }
}

impl SaslClientSettings {
    /// Reads the client side of SASL listener `listener`: the mechanism from `mechanism_key`
    /// (`sasl.mechanism.controller.protocol` or `sasl.mechanism.inter.broker.protocol`; Kafka's default is GSSAPI,
    /// which Kraftwerk does not speak, so it must be set) and `username`/`password` from
    /// `listener.name.<l>.<mechanism>.sasl.jaas.config` (else `sasl.jaas.config`), as Kafka's PlainLoginModule and
    /// ScramLoginModule take them.
    pub fn from_props(
        listener: &str,
        mechanism_key: &str,
        props: &BTreeMap<String, String>,
    ) -> Result<Self, SaslConfigError> {
        let missing = |what: String| SaslConfigError::Missing {
            listener: listener.to_string(),
            what,
        };
        let Some(value) = props.get(mechanism_key) else {
            return Err(missing(format!(
                "{mechanism_key} to dial it: Kafka's default is GSSAPI, which Kraftwerk does not speak; set it to \
                 PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"
            )));
        };
        let mechanisms = parse_mechanisms(mechanism_key, value)?;
        let [mechanism] = mechanisms[..] else {
            return Err(SaslConfigError::Setting {
                key: mechanism_key.to_string(),
                value: value.clone(),
                reason: "expected exactly one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512".into(),
            });
        };
        let per_mechanism = format!("{}.sasl.jaas.config", mechanism.name().to_ascii_lowercase());
        let per_listener_key = format!(
            "listener.name.{}.{per_mechanism}",
            listener.to_ascii_lowercase()
        );
        let Some((key, text)) = lookup(props, listener, &per_mechanism).or_else(|| {
            props
                .get("sasl.jaas.config")
                .map(|v| ("sasl.jaas.config".to_string(), v.as_str()))
        }) else {
            return Err(missing(format!(
                "{per_listener_key} (or sasl.jaas.config) with username=\"...\" password=\"...\": the credentials \
                 this node logs in with ({mechanism_key}={})",
                mechanism.name()
            )));
        };
        let entry = jaas::parse(text).map_err(|e| SaslConfigError::Setting {
            key: key.clone(),
            value: "(hidden)".into(),
            reason: e.to_string(),
        })?;
        let module = if mechanism.is_scram() {
            SCRAM_LOGIN_MODULE
        } else {
            PLAIN_LOGIN_MODULE
        };
        if entry.login_module != module {
            return Err(SaslConfigError::Setting {
                key,
                value: "(hidden)".into(),
                reason: format!(
                    "{} needs the login module {module}, not {}",
                    mechanism.name(),
                    entry.login_module
                ),
            });
        }
        let option = |name: &str| -> Result<String, SaslConfigError> {
            match entry.options.get(name) {
                Some(v) if !v.is_empty() => Ok(v.clone()),
                _ => Err(SaslConfigError::Setting {
                    key: key.clone(),
                    value: "(hidden)".into(),
                    reason: format!(
                        "missing {name}: this node logs in to listener {listener} with {} as username=\"...\" \
                         password=\"...\" of this entry",
                        mechanism.name()
                    ),
                }),
            }
        };
        Ok(SaslClientSettings {
            listener: listener.to_string(),
            mechanism,
            username: option("username")?,
            password: option("password")?,
        })
    }
}

/// Why a node's login failed; the message names the listener, the mechanism and the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaslClientError {
    #[error(
        "SASL mechanism {mechanism} is not enabled on the server (it enables {enabled:?}): check the server's \
         sasl.enabled.mechanisms and this node's sasl.mechanism.controller.protocol / \
         sasl.mechanism.inter.broker.protocol"
    )]
    UnsupportedMechanism {
        mechanism: &'static str,
        enabled: Vec<String>,
    },
    #[error("SASL authentication as {user:?} with {mechanism} failed: {message}")]
    AuthenticationFailed {
        mechanism: &'static str,
        user: String,
        message: String,
    },
    #[error("SASL exchange failed: {0}")]
    Protocol(String),
}

enum Phase {
    /// SaslHandshake sent.
    Handshake,
    /// A SaslAuthenticate sent; `client_done` when rsasl needs nothing more from the server (PLAIN).
    Authenticating {
        client_done: bool,
    },
    Done,
}

/// What to do after a response.
#[derive(Debug, PartialEq, Eq)]
pub enum ClientStep {
    /// Send this request frame (size prefix included) and read the next response.
    Send(Bytes),
    /// Authenticated: the connection carries the node's own traffic from now on.
    Authenticated,
}

/// One login, from the first request to the verdict.
pub struct SaslClient {
    settings: SaslClientSettings,
    session: Session,
    phase: Phase,
    correlation_id: i32,
}

impl SaslClient {
    /// Starts a login; returns the client and the SaslHandshake frame to send first.
    pub fn start(settings: &SaslClientSettings) -> Result<(Self, Bytes), SaslClientError> {
        let rsasl = |e: rsasl::prelude::SASLError| SaslClientError::Protocol(e.to_string());
        let config = SASLConfig::with_credentials(
            None,
            settings.username.clone(),
            settings.password.clone(),
        )
        .map_err(rsasl)?;
        let name = Mechname::parse(settings.mechanism.name().as_bytes())
            .map_err(|e| SaslClientError::Protocol(e.to_string()))?;
        let session = SASLClient::new(config)
            .start_suggested(&[name])
            .map_err(rsasl)?;
        let mut client = SaslClient {
            settings: settings.clone(),
            session,
            phase: Phase::Handshake,
            correlation_id: 0,
        };
        let mut req = SaslHandshakeRequest::default();
        req.mechanism = StrBytes::from_static_str(settings.mechanism.name());
        let frame = client.request(&req, HANDSHAKE_VERSION)?;
        Ok((client, frame))
    }

    /// Handles one response frame (without its size prefix).
    pub fn on_frame(&mut self, frame: Bytes) -> Result<ClientStep, SaslClientError> {
        match std::mem::replace(&mut self.phase, Phase::Done) {
            Phase::Handshake => {
                let resp: SaslHandshakeResponse = self.response(frame, HANDSHAKE_VERSION)?;
                if resp.error_code != 0 {
                    return Err(SaslClientError::UnsupportedMechanism {
                        mechanism: self.settings.mechanism.name(),
                        enabled: resp.mechanisms.iter().map(|m| m.to_string()).collect(),
                    });
                }
                let (token, done) = self.client_step(None)?;
                self.send_token(token, done)
            }
            Phase::Authenticating { client_done } => {
                let resp: SaslAuthenticateResponse = self.response(frame, AUTHENTICATE_VERSION)?;
                if resp.error_code != 0 {
                    return Err(SaslClientError::AuthenticationFailed {
                        mechanism: self.settings.mechanism.name(),
                        user: self.settings.username.clone(),
                        message: resp
                            .error_message
                            .map(|m| m.to_string())
                            .unwrap_or_else(|| format!("error code {}", resp.error_code)),
                    });
                }
                if client_done {
                    return Ok(ClientStep::Authenticated);
                }
                let (token, done) = self.client_step(Some(&resp.auth_bytes))?;
                match token {
                    // SCRAM: the server's signature checked out and there is nothing more to say.
                    None if done => Ok(ClientStep::Authenticated),
                    token => self.send_token(token, done),
                }
            }
            Phase::Done => Err(SaslClientError::Protocol(
                "a response after the exchange ended".into(),
            )),
        }
    }

    /// One rsasl client step: the token to send (if any) and whether rsasl is finished.
    fn client_step(
        &mut self,
        input: Option<&[u8]>,
    ) -> Result<(Option<Vec<u8>>, bool), SaslClientError> {
        let mut out = Cursor::new(Vec::new());
        match self.session.step(input, &mut out) {
            Ok(state) => Ok((
                state.has_sent_message().then(|| out.into_inner()),
                state.is_finished(),
            )),
            Err(e) => Err(SaslClientError::AuthenticationFailed {
                mechanism: self.settings.mechanism.name(),
                user: self.settings.username.clone(),
                message: format!("the server's answer did not verify: {e}"),
            }),
        }
    }

    fn send_token(
        &mut self,
        token: Option<Vec<u8>>,
        done: bool,
    ) -> Result<ClientStep, SaslClientError> {
        let Some(token) = token else {
            return Err(SaslClientError::Protocol(format!(
                "{} produced no message to send",
                self.settings.mechanism.name()
            )));
        };
        let mut req = SaslAuthenticateRequest::default();
        req.auth_bytes = Bytes::from(token);
        let frame = self.request(&req, AUTHENTICATE_VERSION)?;
        self.phase = Phase::Authenticating { client_done: done };
        Ok(ClientStep::Send(frame))
    }

    fn request<R: Encodable + HeaderVersion + Request>(
        &mut self,
        body: &R,
        version: i16,
    ) -> Result<Bytes, SaslClientError> {
        self.correlation_id += 1;
        let mut header = RequestHeader::default();
        header.request_api_key = R::KEY;
        header.request_api_version = version;
        header.correlation_id = self.correlation_id;
        header.client_id = Some(StrBytes::from_static_str(CLIENT_ID));
        let mut out = BytesMut::new();
        out.put_i32(0);
        let codec = |e: anyhow::Error| SaslClientError::Protocol(format!("encoding: {e:#}"));
        header
            .encode(&mut out, R::header_version(version))
            .map_err(codec)?;
        body.encode(&mut out, version).map_err(codec)?;
        let len = i32::try_from(out.len() - 4)
            .map_err(|_| SaslClientError::Protocol("request too large".into()))?;
        out[..4].copy_from_slice(&len.to_be_bytes());
        Ok(out.freeze())
    }

    fn response<R: Decodable + HeaderVersion>(
        &self,
        mut frame: Bytes,
        version: i16,
    ) -> Result<R, SaslClientError> {
        let codec = |what: &str, e: anyhow::Error| {
            SaslClientError::Protocol(format!(
                "undecodable {what} from the server (is listener {} a SASL listener?): {e:#}",
                self.settings.listener
            ))
        };
        let header = ResponseHeader::decode(&mut frame, R::header_version(version))
            .map_err(|e| codec("response header", e))?;
        if header.correlation_id != self.correlation_id {
            return Err(SaslClientError::Protocol(format!(
                "response correlation id {}, expected {}",
                header.correlation_id, self.correlation_id
            )));
        }
        R::decode(&mut frame, version).map_err(|e| codec("response", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sasl::mechanism::tests::{credential, listener, MemStore};
    use crate::sasl::{Outcome, SaslAuthenticator};
    use std::sync::Arc;

    fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn settings(mechanism: Mechanism, user: &str, password: &str) -> SaslClientSettings {
        SaslClientSettings {
            listener: "CONTROLLER".into(),
            mechanism,
            username: user.into(),
            password: password.into(),
        }
    }

    /// Runs the client against the server authenticator in memory: the server's principal, or the first
    /// error (the client's, or the server's verdict when the client is still waiting).
    fn run(
        server: &mut SaslAuthenticator,
        s: &SaslClientSettings,
    ) -> Result<String, SaslClientError> {
        let apis = crate::handlers::supported_apis();
        let (mut client, mut request) = SaslClient::start(s)?;
        let mut server_principal = None;
        loop {
            let reply = match server.on_frame(request.slice(4..), &apis) {
                Outcome::Continue { reply } => reply,
                Outcome::Authenticated {
                    reply, principal, ..
                } => {
                    server_principal = Some(principal);
                    reply
                }
                Outcome::Failed { reply, failure } => match reply {
                    Some(r) => {
                        // The client must turn the server's refusal into an error itself.
                        let err = client.on_frame(r.slice(4..)).unwrap_err();
                        let _ = failure;
                        return Err(err);
                    }
                    None => panic!("server failed without a reply: {failure:?}"),
                },
            };
            let reply = reply.expect("the server answers every v1 request");
            match client.on_frame(reply.slice(4..))? {
                ClientStep::Send(next) => request = next,
                ClientStep::Authenticated => {
                    return Ok(server_principal.expect("client done before the server"))
                }
            }
        }
    }

    fn store_with(user: &str, password: &str) -> MemStore {
        let mut store = MemStore::default();
        for m in [Mechanism::ScramSha256, Mechanism::ScramSha512] {
            store
                .0
                .insert((user.to_string(), m), credential(m, password));
        }
        store
    }

    #[test]
    fn logs_in_with_each_mechanism_against_the_server_authenticator() {
        let all = vec![
            Mechanism::Plain,
            Mechanism::ScramSha256,
            Mechanism::ScramSha512,
        ];
        for (m, user, password) in [
            (Mechanism::Plain, "alice", "alice-secret"),
            (Mechanism::ScramSha256, "bob", "bob-secret"),
            (Mechanism::ScramSha512, "bob", "bob-secret"),
        ] {
            let l = Arc::new(listener(all.clone(), store_with("bob", "bob-secret")));
            let mut server = SaslAuthenticator::new(l);
            assert_eq!(
                run(&mut server, &settings(m, user, password)),
                Ok(format!("User:{user}")),
                "{m:?}"
            );
        }
    }

    #[test]
    fn a_wrong_password_is_an_authentication_failure_naming_user_and_mechanism() {
        for (m, user) in [
            (Mechanism::Plain, "alice"),
            (Mechanism::ScramSha256, "bob"),
            (Mechanism::ScramSha512, "bob"),
            (Mechanism::ScramSha512, "nobody"),
        ] {
            let l = Arc::new(listener(vec![m], store_with("bob", "bob-secret")));
            let mut server = SaslAuthenticator::new(l);
            let err = run(&mut server, &settings(m, user, "wrong")).unwrap_err();
            match &err {
                SaslClientError::AuthenticationFailed {
                    mechanism,
                    user: u,
                    message,
                } => {
                    assert_eq!(*mechanism, m.name());
                    assert_eq!(u, user);
                    assert!(message.contains("Authentication failed"), "{message}");
                }
                other => panic!("{other:?}"),
            }
            let text = err.to_string();
            assert!(text.contains(m.name()) && text.contains(user), "{text}");
        }
    }

    #[test]
    fn a_mechanism_the_server_does_not_enable_is_named() {
        let l = Arc::new(listener(vec![Mechanism::Plain], MemStore::default()));
        let mut server = SaslAuthenticator::new(l);
        let err = run(
            &mut server,
            &settings(Mechanism::ScramSha512, "bob", "bob-secret"),
        )
        .unwrap_err();
        match &err {
            SaslClientError::UnsupportedMechanism { mechanism, enabled } => {
                assert_eq!(*mechanism, "SCRAM-SHA-512");
                assert_eq!(enabled, &vec!["PLAIN".to_string()]);
            }
            other => panic!("{other:?}"),
        }
        assert!(err.to_string().contains("sasl.enabled.mechanisms"), "{err}");
    }

    #[test]
    fn a_forged_scram_server_signature_is_refused() {
        let m = Mechanism::ScramSha256;
        let l = Arc::new(listener(vec![m], store_with("bob", "bob-secret")));
        let mut server = SaslAuthenticator::new(l);
        let apis = crate::handlers::supported_apis();
        let (mut client, handshake) = SaslClient::start(&settings(m, "bob", "bob-secret")).unwrap();
        let Outcome::Continue { reply: Some(r) } = server.on_frame(handshake.slice(4..), &apis)
        else {
            panic!()
        };
        let ClientStep::Send(first) = client.on_frame(r.slice(4..)).unwrap() else {
            panic!()
        };
        let Outcome::Continue { reply: Some(r) } = server.on_frame(first.slice(4..), &apis) else {
            panic!()
        };
        let ClientStep::Send(last) = client.on_frame(r.slice(4..)).unwrap() else {
            panic!()
        };
        assert!(matches!(
            server.on_frame(last.slice(4..), &apis),
            Outcome::Authenticated { .. }
        ));
        // A server that accepted without knowing the credential cannot produce the right signature.
        let mut resp = SaslAuthenticateResponse::default();
        resp.auth_bytes = Bytes::from_static(b"v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
        let frame = encode_response(&resp, client.correlation_id);
        assert!(matches!(
            client.on_frame(frame),
            Err(SaslClientError::AuthenticationFailed { .. })
        ));
    }

    fn encode_response(resp: &SaslAuthenticateResponse, correlation_id: i32) -> Bytes {
        let mut out = BytesMut::new();
        let mut header = ResponseHeader::default();
        header.correlation_id = correlation_id;
        header
            .encode(
                &mut out,
                SaslAuthenticateResponse::header_version(AUTHENTICATE_VERSION),
            )
            .unwrap();
        resp.encode(&mut out, AUTHENTICATE_VERSION).unwrap();
        out.freeze()
    }

    #[test]
    fn a_non_sasl_answer_is_a_protocol_error() {
        let (mut client, _) = SaslClient::start(&settings(Mechanism::Plain, "alice", "x")).unwrap();
        assert!(matches!(
            client.on_frame(Bytes::from_static(b"\x00")),
            Err(SaslClientError::Protocol(_))
        ));
    }

    const SCRAM_JAAS: &str = "org.apache.kafka.common.security.scram.ScramLoginModule required \
                              username=\"admin\" password=\"admin-secret\";";

    #[test]
    fn settings_come_from_the_mechanism_key_and_the_listeners_jaas_entry() {
        let p = props(&[
            ("sasl.mechanism.controller.protocol", "SCRAM-SHA-512"),
            (
                "listener.name.controller.scram-sha-512.sasl.jaas.config",
                SCRAM_JAAS,
            ),
        ]);
        let s =
            SaslClientSettings::from_props("CONTROLLER", "sasl.mechanism.controller.protocol", &p)
                .unwrap();
        assert_eq!(s.mechanism, Mechanism::ScramSha512);
        assert_eq!(
            (s.username.as_str(), s.password.as_str()),
            ("admin", "admin-secret")
        );
        assert!(!format!("{s:?}").contains("admin-secret"));
        // The broker-wide JAAS key is the fallback.
        let p = props(&[
            ("sasl.mechanism.inter.broker.protocol", "PLAIN"),
            (
                "sasl.jaas.config",
                "org.apache.kafka.common.security.plain.PlainLoginModule required username=\"b\" \
                 password=\"p\" user_b=\"p\";",
            ),
        ]);
        let s =
            SaslClientSettings::from_props("BROKER", "sasl.mechanism.inter.broker.protocol", &p)
                .unwrap();
        assert_eq!((s.mechanism, s.username.as_str()), (Mechanism::Plain, "b"));
    }

    #[test]
    fn settings_mistakes_name_the_key() {
        let key = "sasl.mechanism.controller.protocol";
        let err = SaslClientSettings::from_props("CONTROLLER", key, &props(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains(key) && err.contains("GSSAPI"), "{err}");
        for m in ["GSSAPI", "OAUTHBEARER", "PLAIN,SCRAM-SHA-256"] {
            let err = SaslClientSettings::from_props("CONTROLLER", key, &props(&[(key, m)]))
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{m}: {err}");
        }
        let err =
            SaslClientSettings::from_props("CONTROLLER", key, &props(&[(key, "SCRAM-SHA-256")]))
                .unwrap_err()
                .to_string();
        assert!(
            err.contains("listener.name.controller.scram-sha-256.sasl.jaas.config"),
            "{err}"
        );
        let p = props(&[
            (key, "SCRAM-SHA-256"),
            (
                "listener.name.controller.scram-sha-256.sasl.jaas.config",
                "org.apache.kafka.common.security.scram.ScramLoginModule required password=\"x\";",
            ),
        ]);
        let err = SaslClientSettings::from_props("CONTROLLER", key, &p)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("listener.name.controller.scram-sha-256.sasl.jaas.config")
                && err.contains("missing username"),
            "{err}"
        );
        assert!(!err.contains("\"x\""), "{err}");
        let p = props(&[(key, "PLAIN"), ("sasl.jaas.config", SCRAM_JAAS)]);
        let err = SaslClientSettings::from_props("CONTROLLER", key, &p)
            .unwrap_err()
            .to_string();
        assert!(err.contains("PlainLoginModule"), "{err}");
    }
}
