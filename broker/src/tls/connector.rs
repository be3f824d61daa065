//! The client side of TLS for the connections Kraftwerk makes itself: raft messages between controllers, broker
//! calls to the active controller, and follower fetches from partition leaders. Each uses the protocol of the
//! listener it connects to (the controller listener, the inter-broker listener), so a cluster can run with no
//! plaintext port at all. The server's certificate is checked against the listener's truststore and, with
//! `ssl.endpoint.identification.algorithm=https` (Kafka's default), against the host name dialled; the
//! keystore, if given, is presented to servers that require client certificates. On a SASL_PLAINTEXT or SASL_SSL
//! listener the node then logs in (`sasl/client.rs`) before the connection carries anything else.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::BytesMut;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::keystore::{load_identity, load_trust};
use super::settings::{SslClientSettings, TlsVersion};
use super::TlsConfigError;
use crate::sasl::client::{ClientStep, SaslClient, SaslClientSettings};
use kraftwerk_protocol::frame::FrameDecoder;

/// The largest SASL response a node accepts from another (a SCRAM challenge is about 100 bytes).
const MAX_SASL_FRAME: usize = 64 * 1024;

/// A connection to another node: plain TCP or TLS over it.
pub enum PeerStream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for PeerStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            PeerStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            PeerStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for PeerStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            PeerStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            PeerStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            PeerStream::Plain(s) => Pin::new(s).poll_flush(cx),
            PeerStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            PeerStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            PeerStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Dials other nodes with the protocol of the listener they serve on.
#[derive(Clone, Default)]
pub struct PeerConnector {
    tls: Option<TlsConnector>,
    sasl: Option<Arc<SaslClientSettings>>,
}

impl std::fmt::Debug for PeerConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match (self.tls.is_some(), self.sasl.is_some()) {
            (false, false) => "PeerConnector(PLAINTEXT)",
            (true, false) => "PeerConnector(SSL)",
            (false, true) => "PeerConnector(SASL_PLAINTEXT)",
            (true, true) => "PeerConnector(SASL_SSL)",
        })
    }
}

/// `io::ErrorKind` of a refused SASL login, so callers can tell it from an unreachable peer and log it.
pub const AUTHENTICATION_FAILED: std::io::ErrorKind = std::io::ErrorKind::PermissionDenied;

impl PeerConnector {
    /// Plain TCP.
    pub fn plaintext() -> Self {
        Self::default()
    }

    /// TLS with `settings` (read now, so a bad truststore stops the start).
    pub fn tls(settings: &SslClientSettings) -> Result<Self, TlsConfigError> {
        let rustls_err = |detail: String| TlsConfigError::Rustls {
            listener: settings.listener.clone(),
            detail,
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        for cert in load_trust(&settings.truststore)? {
            roots
                .add(cert)
                .map_err(|e| rustls_err(format!("truststore certificate: {e}")))?;
        }
        let versions = TlsVersion::rustls(&settings.versions);
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| rustls_err(format!("server verifier: {e}")))?;
        let verifier: Arc<dyn ServerCertVerifier> = if settings.verify_hostname {
            webpki
        } else {
            Arc::new(ChainOnly(webpki))
        };
        let builder = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&versions)
            .map_err(|e| rustls_err(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let config = match &settings.keystore {
            None => builder.with_no_client_auth(),
            Some(spec) => {
                let identity = load_identity(spec)?;
                builder
                    .with_client_auth_cert(identity.chain, identity.key)
                    .map_err(|e| rustls_err(format!("client certificate and key: {e}")))?
            }
        };
        Ok(Self {
            tls: Some(TlsConnector::from(Arc::new(config))),
            sasl: None,
        })
    }

    /// Logs in with `settings` after connecting (SASL_PLAINTEXT over [`Self::plaintext`], SASL_SSL over
    /// [`Self::tls`]).
    pub fn with_sasl(mut self, settings: SaslClientSettings) -> Self {
        self.sasl = Some(Arc::new(settings));
        self
    }

    /// Connects (TCP, then the TLS handshake and the SASL login if any, each within `timeout`). A refused login
    /// is an error of kind [`AUTHENTICATION_FAILED`] whose message names the listener, mechanism and user.
    pub async fn connect(
        &self,
        host: &str,
        port: u16,
        timeout: Duration,
    ) -> std::io::Result<PeerStream> {
        let mut stream = self.connect_transport(host, port, timeout).await?;
        if let Some(sasl) = &self.sasl {
            tokio::time::timeout(timeout, login(&mut stream, sasl))
                .await
                .map_err(|_| {
                    std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!(
                            "SASL login to {host}:{port} (listener {}) timed out",
                            sasl.listener
                        ),
                    )
                })?
                .map_err(|e| {
                    std::io::Error::new(
                        e.kind(),
                        format!("{host}:{port} (listener {}): {e}", sasl.listener),
                    )
                })?;
        }
        Ok(stream)
    }

    async fn connect_transport(
        &self,
        host: &str,
        port: u16,
        timeout: Duration,
    ) -> std::io::Result<PeerStream> {
        let timed_out = |what: &str| {
            std::io::Error::new(std::io::ErrorKind::TimedOut, format!("{what} timed out"))
        };
        let tcp = tokio::time::timeout(timeout, TcpStream::connect((host, port)))
            .await
            .map_err(|_| timed_out("connect"))??;
        tcp.set_nodelay(true)?;
        let Some(tls) = &self.tls else {
            return Ok(PeerStream::Plain(tcp));
        };
        let name = ServerName::try_from(host.to_string()).map_err(|e| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{host}: {e}"))
        })?;
        let stream = tokio::time::timeout(timeout, tls.connect(name, tcp))
            .await
            .map_err(|_| timed_out("TLS handshake"))?
            .map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!("TLS handshake with {host}:{port} failed: {e}"),
                )
            })?;
        Ok(PeerStream::Tls(Box::new(stream)))
    }
}

/// Runs the SASL exchange of [`SaslClient`] on a fresh connection. The server sends nothing unasked, so no
/// byte of the node's own traffic can have been read past the last SASL response.
async fn login(stream: &mut PeerStream, settings: &SaslClientSettings) -> std::io::Result<()> {
    let failed = |e: crate::sasl::SaslClientError| {
        let kind = match e {
            crate::sasl::SaslClientError::Protocol(_) => std::io::ErrorKind::InvalidData,
            _ => AUTHENTICATION_FAILED,
        };
        std::io::Error::new(kind, e.to_string())
    };
    let (mut client, mut request) = SaslClient::start(settings).map_err(failed)?;
    let decoder = FrameDecoder::new(MAX_SASL_FRAME);
    let mut buf = BytesMut::with_capacity(1024);
    loop {
        stream.write_all(&request).await?;
        stream.flush().await?;
        let frame = loop {
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => break frame,
                Ok(None) => {}
                Err(e) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("SASL exchange: {e}"),
                    ))
                }
            }
            if stream.read_buf(&mut buf).await? == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!(
                        "the server closed the connection during the {} login as {:?} (a listener without \
                         SASL, or a refused login on a server that answers SaslHandshake v0)",
                        settings.mechanism.name(),
                        settings.username
                    ),
                ));
            }
        };
        match client.on_frame(frame).map_err(failed)? {
            ClientStep::Send(next) => request = next,
            ClientStep::Authenticated => break,
        }
    }
    if !buf.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "the server sent more than its SASL answer",
        ));
    }
    Ok(())
}

/// `ssl.endpoint.identification.algorithm=` (empty): the chain must be trusted, the name is not checked.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}
