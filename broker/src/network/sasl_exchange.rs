//! SASL authentication of one connection on a SASL_PLAINTEXT or SASL_SSL listener (client listeners and the
//! controller listener alike): the I/O around [`SaslAuthenticator`], the failed-authentication delay and the
//! rate-limited log line naming the client.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufWriter};

use kraftwerk_protocol::frame::{FrameDecoder, FrameError};
use kraftwerk_protocol::versions::SupportedApis;

use super::log_limit::Admit;
use crate::config::{Listener, SecurityProtocol};
use crate::sasl::authenticator::kafka_api_name;
use crate::sasl::{Failure, Outcome, SaslAuthenticator, SaslListener};

use super::connection::fill;
use super::sniff::describe_foreign_protocol;

/// Who is authenticating where: the connection's peer and listener, the listener's SASL settings, the APIs
/// ApiVersions answers with before authentication, and `connections.max.idle.ms`.
pub(crate) struct Exchange<'a> {
    pub peer: SocketAddr,
    pub listener: &'a Listener,
    pub sasl: &'a Arc<SaslListener>,
    pub apis: &'a SupportedApis,
    pub idle: Duration,
}

/// Runs the SASL exchange (see [`SaslAuthenticator`]); the client's principal, or `None` when the connection
/// was closed. Frames are bounded by `sasl.server.max.receive.size` until the client is authenticated; a failure
/// is answered only after `connection.failed.authentication.delay.ms`, and logged within the listener's budget.
/// Bytes read past the last SASL frame stay in `buf`.
pub(crate) async fn authenticate<R, W>(
    rd: &mut R,
    out: &mut BufWriter<W>,
    buf: &mut BytesMut,
    exchange: Exchange<'_>,
) -> Option<String>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let Exchange {
        peer,
        listener,
        sasl,
        apis,
        idle,
    } = exchange;
    let decoder = FrameDecoder::new(sasl.settings.max_receive_size);
    let mut auth = SaslAuthenticator::new(sasl.clone());
    let mut first_frame = true;
    loop {
        let frame = match decoder.decode(buf) {
            Ok(Some(frame)) => frame,
            Ok(None) => {
                if !fill(rd, buf, idle).await {
                    return None;
                }
                continue;
            }
            Err(e) => {
                let hint = if first_frame {
                    describe_foreign_protocol(&buf[..buf.len().min(8)])
                } else {
                    None
                };
                log_failure(sasl, || {
                    match (e, hint) {
                    (_, Some(what)) => format!(
                        "closing connection from {peer}: the client sent {what}, not Kafka protocol, to {} \
                         listener {}",
                        listener.security_protocol.name(),
                        listener.name
                    ),
                    (FrameError::TooLarge { size, max }, None) => format!(
                        "closing connection from {peer}: failing SASL authentication due to invalid receive size \
                         ({size} bytes, sasl.server.max.receive.size is {max}) on listener {}",
                        listener.name
                    ),
                    (e, None) => format!(
                        "closing connection from {peer}: invalid frame during SASL authentication on listener {}: {e}",
                        listener.name
                    ),
                }
                });
                return None;
            }
        };
        first_frame = false;
        match auth.on_frame(frame, apis) {
            Outcome::Continue { reply } => {
                if !send(out, reply).await {
                    return None;
                }
            }
            Outcome::Authenticated {
                reply,
                principal,
                mechanism,
            } => {
                tracing::debug!(%principal, mechanism = mechanism.name(), "SASL authentication succeeded");
                return send(out, reply).await.then_some(principal);
            }
            Outcome::Failed { reply, failure } => {
                log_failure(sasl, || describe_failure(&failure, peer, listener, sasl));
                tokio::time::sleep(sasl.settings.failed_auth_delay).await;
                send(out, reply).await;
                return None;
            }
        }
    }
}

async fn send<W: AsyncWrite + Unpin>(out: &mut BufWriter<W>, reply: Option<Bytes>) -> bool {
    if let Some(bytes) = reply {
        if let Err(e) = out.write_all(&bytes).await {
            tracing::debug!(error = %e, "write failed; closing");
            return false;
        }
    }
    if let Err(e) = out.flush().await {
        tracing::debug!(error = %e, "write failed; closing");
        return false;
    }
    true
}

/// Writes a failed-authentication line at WARN unless the listener's budget for this window is spent.
fn log_failure(sasl: &SaslListener, line: impl FnOnce() -> String) {
    match sasl.admit_failure_log(std::time::Instant::now()) {
        Admit::Drop => {}
        Admit::Log { suppressed: 0 } => tracing::warn!("{}", line()),
        Admit::Log { suppressed } => tracing::warn!(
            suppressed,
            "{} ({suppressed} similar lines suppressed)",
            line()
        ),
    }
}

fn describe_failure(
    failure: &Failure,
    peer: SocketAddr,
    listener: &Listener,
    sasl: &SaslListener,
) -> String {
    let protocol = listener.security_protocol.name();
    let enabled = sasl
        .settings
        .mechanisms
        .iter()
        .map(|m| m.name())
        .collect::<Vec<_>>()
        .join(", ");
    match failure {
        Failure::UnexpectedRequest { api_key, during } => {
            let without_sasl = match listener.security_protocol {
                SecurityProtocol::SaslSsl => "SSL",
                _ => "PLAINTEXT",
            };
            format!(
                "closing connection from {peer}: Unexpected Kafka request of type {} during {during} on {protocol} \
                 listener {}: the client probably has security.protocol={without_sasl}; it must use \
                 security.protocol={protocol} with sasl.mechanism one of [{enabled}]",
                kafka_api_name(*api_key),
                listener.name
            )
        }
        Failure::Malformed { detail } => format!(
            "closing connection from {peer}: not a SASL exchange on {protocol} listener {}: {detail}",
            listener.name
        ),
        Failure::UnsupportedMechanism { requested } => format!(
            "closing connection from {peer}: the client asked for SASL mechanism {requested:?}, which listener {} \
             does not enable (sasl.enabled.mechanisms: {enabled})",
            listener.name
        ),
        Failure::BadCredentials {
            mechanism,
            user,
            message,
        } => format!(
            "authentication failed for user {} from {peer} with {} on listener {}: {message}",
            user.as_deref().map_or("(none given)".to_string(), |u| format!("{u:?}")),
            mechanism.name(),
            listener.name
        ),
    }
}
