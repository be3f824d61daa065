//! One client connection: frames in, responses out, strictly in request order (Kafka clients match responses
//! by correlation id but expect order; the Java client fails the connection otherwise).
//!
//! Requests are handled one at a time per connection, as Kafka's network layer does (it mutes a channel while a
//! request is in flight), but frames already read are decoded without another syscall and responses are
//! written in one flush when the input runs dry, so pipelining clients (librdkafka) pay one write per burst.
//! While a Fetch is handled the connection reads ahead once, so a long poll with a request queued behind it
//! answers then rather than at `max_wait_ms` (`queued_input.rs`; Kafka holds the request behind for the whole
//! wait).

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::net::TcpStream;
use tracing::Instrument;

use kraftwerk_protocol::fetch_frame::{encode_fetch_frame, ExternalRecords, FramePart};
use kraftwerk_protocol::frame::{FrameDecoder, FrameError};
use kraftwerk_protocol::request::{decode_request, DecodeError};
use kraftwerk_protocol::response::{
    encode_response, unsupported_api_versions_response, EncodeError,
};
use kraftwerk_protocol::ApiKey;
use kraftwerk_storage::FileSlice;

use super::log_limit;
use super::queued_input::QueuedInput;
use crate::config::Listener;
use crate::context::{BrokerContext, ConnectionInfo};
use crate::handlers::{self, fetch::FetchReply, Reply};
use crate::sasl::SaslListener;

use super::response_writer::{RawSocket, ResponseWriter};
use super::sasl_exchange::{authenticate, Exchange};

use crate::tls::acceptor::HANDSHAKE_TIMEOUT;
use crate::tls::{principal, TlsListener};

use super::sniff::{describe_foreign_protocol, describe_non_tls};

const READ_CHUNK: usize = 64 * 1024;

/// Serves a connection without TLS: PLAINTEXT, or SASL_PLAINTEXT when `sasl` is given.
pub async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    listener: Arc<Listener>,
    sasl: Option<Arc<SaslListener>>,
    ctx: Arc<BrokerContext>,
) {
    let (rd, wr) = stream.into_split();
    serve_io(
        rd,
        wr,
        peer,
        principal::ANONYMOUS.to_string(),
        listener,
        sasl,
        ctx,
    )
    .await
}

/// Serves a connection on an SSL or SASL_SSL listener: the handshake first (a client that does not speak TLS, or
/// whose certificate is refused, is named in the log and disconnected), then (SASL_SSL) SASL authentication and
/// Kafka requests over the TLS stream.
pub async fn serve_tls(
    stream: TcpStream,
    peer: SocketAddr,
    tls: TlsListener,
    listener: Arc<Listener>,
    sasl: Option<Arc<SaslListener>>,
    ctx: Arc<BrokerContext>,
) {
    // What the client sent first tells a plaintext Kafka client apart from a TLS one with a bad certificate.
    let mut first = [0u8; 8];
    let peeked = match tokio::time::timeout(HANDSHAKE_TIMEOUT, stream.peek(&mut first)).await {
        Ok(Ok(n)) => n,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "read failed before the TLS handshake; closing");
            return;
        }
        Err(_) => {
            tracing::warn!("closing connection: the client sent nothing within {HANDSHAKE_TIMEOUT:?} on SSL listener {}", listener.name);
            return;
        }
    };
    if peeked == 0 {
        tracing::debug!("connection closed before the TLS handshake");
        return;
    }
    if let Some(what) = describe_non_tls(&first[..peeked]) {
        log_limit::bad_input(peer, || {
            format!(
                "closing connection: the client sent {what}, not a TLS handshake, to SSL listener {}",
                listener.name
            )
        });
        return;
    }
    match tls.accept(stream).await {
        Ok((stream, principal)) => {
            tracing::debug!(%principal, "TLS handshake done");
            let (rd, wr) = tokio::io::split(stream);
            serve_io(rd, wr, peer, principal, listener, sasl, ctx).await
        }
        Err(e) => log_limit::bad_input(peer, || {
            format!(
                "closing connection: TLS handshake with the client failed on SSL listener {}: {e}",
                listener.name
            )
        }),
    }
}

/// Authenticates the client first on a SASL listener, then serves its requests.
async fn serve_io<R, W>(
    mut rd: R,
    wr: W,
    peer: SocketAddr,
    principal: String,
    listener: Arc<Listener>,
    sasl: Option<Arc<SaslListener>>,
    ctx: Arc<BrokerContext>,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + RawSocket + Unpin,
{
    let mut out = BufWriter::with_capacity(64 * 1024, wr);
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let (principal, first_frame) = match sasl {
        None => (principal, true),
        Some(sasl) => {
            match authenticate(
                &mut rd,
                &mut out,
                &mut buf,
                Exchange {
                    peer,
                    listener: &listener,
                    sasl: &sasl,
                    apis: &ctx.apis,
                    idle: ctx.config.connections_max_idle,
                },
            )
            .await
            {
                Some(principal) => (principal, false),
                None => return,
            }
        }
    };
    tracing::debug!(%principal, "connection opened");
    let conn = ConnectionInfo {
        peer,
        listener_name: listener.name.clone(),
        principal,
        queued_input: Arc::default(),
    };
    // The SASL exchange flushed its last answer; from here responses go through the response writer.
    if let Err(e) = out.flush().await {
        tracing::debug!(error = %e, "write failed; closing");
    } else {
        let out = ResponseWriter::new(out.into_inner());
        serve_requests(rd, out, buf, first_frame, &listener, &conn, &ctx).await;
    }
    ctx.telemetry.forget_connection(&conn);
}

/// What one read from the client gave.
enum Read {
    More,
    Closed,
    Failed(std::io::Error),
}

/// One read into `buf`'s spare capacity (grown by a chunk when little is left).
async fn read_some<R: AsyncRead + Unpin>(rd: &mut R, buf: &mut BytesMut) -> Read {
    if buf.capacity() - buf.len() < READ_CHUNK / 4 {
        buf.reserve(READ_CHUNK);
    }
    match rd.read_buf(buf).await {
        Ok(0) => Read::Closed,
        Ok(_) => Read::More,
        Err(e) => Read::Failed(e),
    }
}

/// Whether the connection goes on after `read`; logs why not.
fn goes_on(read: Read, buf: &BytesMut) -> bool {
    match read {
        Read::More => true,
        Read::Closed => {
            if !buf.is_empty() {
                tracing::warn!(
                    buffered = buf.len(),
                    "client closed the connection in the middle of a request frame"
                );
            } else {
                tracing::debug!("connection closed by client");
            }
            false
        }
        Read::Failed(e) => {
            tracing::debug!(error = %e, "read failed; closing");
            false
        }
    }
}

/// Reads more input into `buf`, bounded by `connections.max.idle.ms`; `false` when the connection is over.
pub(crate) async fn fill<R: AsyncRead + Unpin>(
    rd: &mut R,
    buf: &mut BytesMut,
    idle: std::time::Duration,
) -> bool {
    match tokio::time::timeout(idle, read_some(rd, buf)).await {
        Err(_) => {
            if buf.is_empty() {
                tracing::debug!("closing idle connection (connections.max.idle.ms)");
            } else {
                tracing::warn!(
                    buffered = buf.len(),
                    "closing connection: a partial request sat unfinished for connections.max.idle.ms"
                );
            }
            false
        }
        Ok(read) => goes_on(read, buf),
    }
}

/// Runs a Fetch handler while reading ahead once: bytes of a next request (or the end of the client's input)
/// mark the connection's [`QueuedInput`], which answers a parked long poll now rather than at its deadline, so
/// the request behind it is not held up (see `network/queued_input.rs`). One read at most, so a pipelining
/// client cannot make the connection buffer more than a read's worth meanwhile. `ended` keeps a read-ahead that
/// found the input over, for the loop to act on once the answer is written.
async fn handle_reading_ahead<R, F>(
    handler: F,
    rd: &mut R,
    buf: &mut BytesMut,
    queued: &QueuedInput,
    ended: &mut Option<Read>,
) -> F::Output
where
    R: AsyncRead + Unpin,
    F: std::future::Future,
{
    queued.set(!buf.is_empty() || ended.is_some());
    tokio::pin!(handler);
    if !queued.is_pending() {
        tokio::select! {
            // The handler first: one that answers at once costs no read.
            biased;
            out = &mut handler => return out,
            read = read_some(rd, buf) => {
                if !matches!(read, Read::More) {
                    *ended = Some(read);
                }
                queued.set(true);
            }
        }
    }
    handler.await
}

/// Serves Kafka requests on a connection whose principal is known.
async fn serve_requests<R, W>(
    mut rd: R,
    mut out: ResponseWriter<W>,
    mut buf: BytesMut,
    mut first_frame: bool,
    listener: &Listener,
    conn: &ConnectionInfo,
    ctx: &Arc<BrokerContext>,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + RawSocket + Unpin,
{
    let decoder = FrameDecoder::new(ctx.config.socket_request_max_bytes);
    // The end of the input, found by a read ahead during a Fetch.
    let mut ended = None;
    loop {
        let frame = match decoder.decode(&mut buf) {
            Ok(Some(frame)) => frame,
            Ok(None) => {
                if let Err(e) = out.flush().await {
                    tracing::debug!(error = %e, "write failed; closing");
                    return;
                }
                let more = match ended.take() {
                    Some(read) => goes_on(read, &buf),
                    None => fill(&mut rd, &mut buf, ctx.config.connections_max_idle).await,
                };
                if !more {
                    return;
                }
                continue;
            }
            Err(e) => {
                let hint = if first_frame {
                    describe_foreign_protocol(&buf[..buf.len().min(8)])
                } else {
                    None
                };
                log_limit::bad_input(conn.peer, || {
                    match (e, hint) {
                    (_, Some(what)) => format!(
                        "closing connection: the client sent {what}, not Kafka protocol, to {} listener {}",
                        listener.security_protocol.name(),
                        listener.name
                    ),
                    (FrameError::TooLarge { size, max }, None) => format!(
                        "closing connection: request size {size} exceeds socket.request.max.bytes {max}"
                    ),
                    (e, None) => format!("closing connection: invalid request frame: {e}"),
                }
                });
                return;
            }
        };
        first_frame = false;
        let response = match decode_request(frame) {
            Ok(req) => {
                let api_key = req.api_key;
                let api_version = req.api_version;
                let correlation_id = req.correlation_id();
                if !ctx.apis.is_supported(api_key, api_version) {
                    if api_key == ApiKey::ApiVersions {
                        Some(bytes_only(unsupported_api_versions_response(
                            correlation_id,
                            &ctx.apis,
                        )))
                    } else {
                        log_limit::bad_input(conn.peer, || {
                            format!(
                                "closing connection: unsupported request version {api_version} of {api_key:?}"
                            )
                        });
                        let _ = out.flush().await;
                        return;
                    }
                } else {
                    let span =
                        tracing::debug_span!("request", ?api_key, api_version, correlation_id);
                    let handler = handlers::dispatch(ctx, conn, req).instrument(span);
                    let reply = if api_key == ApiKey::Fetch {
                        handle_reading_ahead(
                            handler,
                            &mut rd,
                            &mut buf,
                            &conn.queued_input,
                            &mut ended,
                        )
                        .await
                    } else {
                        handler.await
                    };
                    match reply {
                        Some(reply) => {
                            match encode_reply(api_key, api_version, correlation_id, reply) {
                                Ok(parts) => Some(parts),
                                Err(e) => {
                                    tracing::error!(?api_key, api_version, error = %e, "cannot encode response; closing");
                                    let _ = out.flush().await;
                                    return;
                                }
                            }
                        }
                        None => None,
                    }
                }
            }
            Err(DecodeError::UnsupportedVersion {
                api_key: ApiKey::ApiVersions,
                correlation_id,
                ..
            }) => Some(bytes_only(unsupported_api_versions_response(
                correlation_id,
                &ctx.apis,
            ))),
            Err(e) => {
                log_limit::bad_input(conn.peer, || {
                    format!("closing connection: cannot decode request: {e}")
                });
                let _ = out.flush().await;
                return;
            }
        };
        if let Some(parts) = response {
            for part in &parts {
                let written = match part {
                    FramePart::Bytes(bytes) => out.write_bytes(bytes).await,
                    FramePart::Records { source, .. } => out.write_file(source).await,
                };
                if let Err(e) = written {
                    if e.kind() == std::io::ErrorKind::UnexpectedEof {
                        tracing::warn!(error = %e, "closing connection: a fetched segment shrank while it was sent");
                    } else {
                        tracing::debug!(error = %e, "write failed; closing");
                    }
                    return;
                }
            }
        }
    }
}

/// A frame that is all encoded bytes.
fn bytes_only(bytes: Bytes) -> Vec<FramePart<FileSlice>> {
    vec![FramePart::Bytes(bytes)]
}

/// Frames a handler's reply: a fetch answer as its encoded fields with the records left in the segment files.
fn encode_reply(
    api_key: ApiKey,
    api_version: i16,
    correlation_id: i32,
    reply: Reply,
) -> Result<Vec<FramePart<FileSlice>>, EncodeError> {
    match reply {
        Reply::Body(body) => {
            encode_response(api_key, api_version, correlation_id, &body).map(bytes_only)
        }
        Reply::Fetch(FetchReply { response, records }) => {
            // Both the records and the encoder's calls go in (topic, partition) order.
            let mut records = records.into_iter().peekable();
            let parts = encode_fetch_frame(api_version, correlation_id, &response, |t, p| {
                records
                    .next_if(|(at, _)| *at == (t, p))
                    .map(|(_, slice)| ExternalRecords {
                        len: slice.len(),
                        source: slice,
                    })
            })?;
            if records.next().is_some() {
                return Err(EncodeError::Encode {
                    api_key,
                    api_version,
                    reason: "records for a partition the response does not hold".into(),
                });
            }
            Ok(parts)
        }
    }
}
