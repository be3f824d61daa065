//! How test clients reach a secured broker listener: the `security.protocol`, the CA to trust and the SASL
//! login, given once to the harness ([`crate::ClusterBuilder::client_listener`]) and used by both its own wire
//! client (readiness, Metadata probes) and the tests' rdkafka clients ([`ClientSecurity::rdkafka_props`]).
//!
//! The wire client speaks TLS with rustls and logs in with SASL/PLAIN (SaslHandshake v1, then
//! SaslAuthenticate), as Kafka's clients do; SCRAM is left to the real clients the tests run.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::{SaslAuthenticateRequest, SaslHandshakeRequest};
use kafka_protocol::protocol::StrBytes;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};

use crate::error::HarnessError;
use crate::wire::{tcp_connect, Connection, Stream};

/// Kafka's `security.protocol` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    /// The name in `security.protocol` and `listener.security.protocol.map`.
    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    fn uses_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    fn uses_sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }
}

/// A SASL login: `sasl.mechanisms`, `sasl.username`, `sasl.password`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaslLogin {
    pub mechanism: String,
    pub username: String,
    pub password: String,
}

/// What a client needs to reach a listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSecurity {
    pub protocol: SecurityProtocol,
    /// PEM file of the CA that signed the brokers' certificates (`ssl.ca.location`), for SSL and SASL_SSL.
    pub ca_pem: Option<PathBuf>,
    /// The login, for SASL_PLAINTEXT and SASL_SSL.
    pub sasl: Option<SaslLogin>,
}

impl ClientSecurity {
    /// SASL_SSL trusting `ca_pem`, logged in as `username` with `mechanism`.
    pub fn sasl_ssl(
        ca_pem: impl Into<PathBuf>,
        mechanism: &str,
        username: &str,
        password: &str,
    ) -> Self {
        ClientSecurity {
            protocol: SecurityProtocol::SaslSsl,
            ca_pem: Some(ca_pem.into()),
            sasl: Some(SaslLogin {
                mechanism: mechanism.to_string(),
                username: username.to_string(),
                password: password.to_string(),
            }),
        }
    }

    /// The same listener with another login (a test user instead of the harness's admin).
    pub fn with_login(&self, mechanism: &str, username: &str, password: &str) -> Self {
        ClientSecurity {
            sasl: Some(SaslLogin {
                mechanism: mechanism.to_string(),
                username: username.to_string(),
                password: password.to_string(),
            }),
            ..self.clone()
        }
    }

    /// librdkafka's (and confluent-kafka's) settings for this listener.
    pub fn rdkafka_props(&self) -> Vec<(String, String)> {
        let mut props = vec![(
            "security.protocol".to_string(),
            self.protocol.name().to_string(),
        )];
        if let Some(ca) = &self.ca_pem {
            props.push(("ssl.ca.location".into(), ca.display().to_string()));
        }
        if let Some(login) = &self.sasl {
            props.push(("sasl.mechanisms".into(), login.mechanism.clone()));
            props.push(("sasl.username".into(), login.username.clone()));
            props.push(("sasl.password".into(), login.password.clone()));
        }
        props
    }

    /// Connects to `addr` and, per the protocol, runs the TLS handshake (the certificate must be valid for
    /// the address's IP) and the SASL/PLAIN login. The returned connection is ready for any request.
    pub fn connect(&self, addr: SocketAddr, timeout: Duration) -> Result<Connection, HarnessError> {
        let tcp = tcp_connect(addr, timeout)?;
        let stream = if self.protocol.uses_tls() {
            let config = self.tls_config()?;
            let name = ServerName::from(addr.ip());
            let tls = rustls::ClientConnection::new(config, name)
                .map_err(|e| HarnessError::Protocol(format!("TLS client for {addr}: {e}")))?;
            Stream::Tls(Box::new(rustls::StreamOwned::new(tls, tcp)))
        } else {
            Stream::Plain(tcp)
        };
        let mut conn = Connection::over(stream);
        if self.protocol.uses_sasl() {
            let login = self.sasl.as_ref().ok_or_else(|| {
                HarnessError::Protocol(format!("{} needs a SASL login", self.protocol.name()))
            })?;
            login_plain(&mut conn, login)?;
        }
        Ok(conn)
    }

    fn tls_config(&self) -> Result<Arc<rustls::ClientConfig>, HarnessError> {
        let path = self.ca_pem.as_ref().ok_or_else(|| {
            HarnessError::Protocol(format!("{} needs a CA (ca_pem)", self.protocol.name()))
        })?;
        let mut roots = rustls::RootCertStore::empty();
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| HarnessError::Protocol(format!("reading {}: {e}", path.display())))?;
        for cert in certs {
            let cert = cert
                .map_err(|e| HarnessError::Protocol(format!("reading {}: {e}", path.display())))?;
            roots
                .add(cert)
                .map_err(|e| HarnessError::Protocol(format!("trusting {}: {e}", path.display())))?;
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| HarnessError::Protocol(format!("TLS versions: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        Ok(Arc::new(config))
    }
}

/// SaslHandshake v1 naming PLAIN, then SaslAuthenticate v2 with `\0username\0password` (RFC 4616).
fn login_plain(conn: &mut Connection, login: &SaslLogin) -> Result<(), HarnessError> {
    if login.mechanism != "PLAIN" {
        return Err(HarnessError::Protocol(format!(
            "the harness's wire client logs in with PLAIN only, not {}",
            login.mechanism
        )));
    }
    let handshake = conn.request(
        1,
        &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN")),
    )?;
    if handshake.error_code != 0 {
        return Err(HarnessError::Protocol(format!(
            "SaslHandshake PLAIN answered error {} (enabled: {:?})",
            handshake.error_code, handshake.mechanisms
        )));
    }
    let token = format!("\0{}\0{}", login.username, login.password);
    let auth = conn.request(
        2,
        &SaslAuthenticateRequest::default().with_auth_bytes(bytes::Bytes::from(token.into_bytes())),
    )?;
    if auth.error_code != 0 {
        return Err(HarnessError::Protocol(format!(
            "SASL/PLAIN login as {} failed: error {} ({})",
            login.username,
            auth.error_code,
            auth.error_message.as_deref().unwrap_or("")
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rdkafka_props_name_protocol_ca_and_login() {
        let s = ClientSecurity::sasl_ssl("/tmp/ca.pem", "PLAIN", "admin", "pw");
        let props = s.rdkafka_props();
        let get = |k: &str| {
            props
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("security.protocol"), Some("SASL_SSL"));
        assert_eq!(get("ssl.ca.location"), Some("/tmp/ca.pem"));
        assert_eq!(get("sasl.mechanisms"), Some("PLAIN"));
        assert_eq!(get("sasl.username"), Some("admin"));
        let user = s.with_login("SCRAM-SHA-512", "alice", "a");
        assert_eq!(user.protocol, SecurityProtocol::SaslSsl);
        assert_eq!(
            user.sasl.as_ref().map(|l| l.mechanism.as_str()),
            Some("SCRAM-SHA-512")
        );
    }
}
