//! The rustls server side of an SSL listener: built once at start from [`SslSettings`] (so a bad keystore stops
//! the start, not the first client), then one handshake per connection.
//!
//! TLS 1.2 and 1.3 only. `ssl.client.auth=required` refuses a client without a certificate that chains to the
//! truststore; `requested` accepts one without, but still refuses an invalid one.

use std::sync::Arc;
use std::time::Duration;

use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use super::keystore::{load_identity, load_trust};
use super::principal;
use super::settings::{ClientAuth, SslSettings, TlsVersion};
use super::TlsConfigError;

/// How long a client may take to complete the handshake before the connection is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A ready-to-use TLS server configuration for one listener.
#[derive(Clone)]
pub struct TlsListener {
    acceptor: TlsAcceptor,
}

/// Why a handshake did not complete; the connection is closed after logging it.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    #[error("the client did not complete the TLS handshake within {0:?}")]
    Timeout(Duration),
    #[error("TLS handshake failed: {0}")]
    Failed(std::io::Error),
}

impl TlsListener {
    /// Reads the stores and builds the rustls configuration.
    pub fn new(settings: &SslSettings) -> Result<Self, TlsConfigError> {
        let rustls_err = |detail: String| TlsConfigError::Rustls {
            listener: settings.listener.clone(),
            detail,
        };
        let identity = load_identity(&settings.keystore)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let versions = TlsVersion::rustls(&settings.versions);
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&versions)
            .map_err(|e| rustls_err(e.to_string()))?;
        let builder = match (&settings.truststore, settings.client_auth) {
            (_, ClientAuth::None) => builder.with_no_client_auth(),
            (None, _) => {
                return Err(TlsConfigError::Missing {
                    listener: settings.listener.clone(),
                    what: "a truststore for ssl.client.auth",
                })
            }
            (Some(trust), auth) => {
                let mut roots = RootCertStore::empty();
                for cert in load_trust(trust)? {
                    roots
                        .add(cert)
                        .map_err(|e| rustls_err(format!("truststore certificate: {e}")))?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
                let verifier = if auth == ClientAuth::Requested {
                    verifier.allow_unauthenticated()
                } else {
                    verifier
                };
                builder.with_client_cert_verifier(
                    verifier
                        .build()
                        .map_err(|e| rustls_err(format!("client verifier: {e}")))?,
                )
            }
        };
        let config = builder
            .with_single_cert(identity.chain, identity.key)
            .map_err(|e| rustls_err(format!("certificate and key: {e}")))?;
        Ok(TlsListener {
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }

    /// Runs the handshake; returns the stream and the client's principal (`User:ANONYMOUS` without a
    /// certificate).
    pub async fn accept(
        &self,
        stream: TcpStream,
    ) -> Result<(TlsStream<TcpStream>, String), HandshakeError> {
        let tls = tokio::time::timeout(HANDSHAKE_TIMEOUT, self.acceptor.accept(stream))
            .await
            .map_err(|_| HandshakeError::Timeout(HANDSHAKE_TIMEOUT))?
            .map_err(HandshakeError::Failed)?;
        let principal = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|certs| certs.first())
            .and_then(|leaf| principal::from_certificate(leaf))
            .unwrap_or_else(|| principal::ANONYMOUS.to_string());
        Ok((tls, principal))
    }
}
