//! One client connection: frames in, responses out, strictly in request order (Kafka clients match responses
//! by correlation id but expect order; the Java client fails the connection otherwise).
//!
//! Requests are handled one at a time per connection, as Kafka's network layer does (it mutes a channel while a
//! request is in flight), but frames already read are decoded without another syscall and responses are
//! written in one flush when the input runs dry, so pipelining clients (librdkafka) pay one write per burst.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::TcpStream;
use tracing::Instrument;

use kraftwerk_protocol::frame::{FrameDecoder, FrameError};
use kraftwerk_protocol::request::{decode_request, DecodeError};
use kraftwerk_protocol::response::{encode_response, unsupported_api_versions_response};
use kraftwerk_protocol::ApiKey;

use crate::config::Listener;
use crate::context::{BrokerContext, ConnectionInfo};
use crate::handlers;

use super::sniff::describe_foreign_protocol;

const READ_CHUNK: usize = 64 * 1024;

pub async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    listener: Arc<Listener>,
    ctx: Arc<BrokerContext>,
) {
    tracing::debug!("connection opened");
    let conn = ConnectionInfo {
        peer,
        listener_name: listener.name.clone(),
    };
    let (mut rd, wr) = stream.into_split();
    let mut out = BufWriter::with_capacity(64 * 1024, wr);
    let decoder = FrameDecoder::new(ctx.config.socket_request_max_bytes);
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let mut first_frame = true;
    loop {
        let frame = match decoder.decode(&mut buf) {
            Ok(Some(frame)) => frame,
            Ok(None) => {
                if let Err(e) = out.flush().await {
                    tracing::debug!(error = %e, "write failed; closing");
                    return;
                }
                if buf.capacity() - buf.len() < READ_CHUNK / 4 {
                    buf.reserve(READ_CHUNK);
                }
                let idle = ctx.config.connections_max_idle;
                let read = match tokio::time::timeout(idle, rd.read_buf(&mut buf)).await {
                    Ok(r) => r,
                    Err(_) => {
                        if buf.is_empty() {
                            tracing::debug!("closing idle connection (connections.max.idle.ms)");
                        } else {
                            tracing::warn!(
                                buffered = buf.len(),
                                "closing connection: a partial request sat unfinished for connections.max.idle.ms"
                            );
                        }
                        return;
                    }
                };
                match read {
                    Ok(0) => {
                        if !buf.is_empty() {
                            tracing::warn!(
                                buffered = buf.len(),
                                "client closed the connection in the middle of a request frame"
                            );
                        } else {
                            tracing::debug!("connection closed by client");
                        }
                        return;
                    }
                    Ok(_) => continue,
                    Err(e) => {
                        tracing::debug!(error = %e, "read failed; closing");
                        return;
                    }
                }
            }
            Err(e) => {
                let hint = if first_frame {
                    describe_foreign_protocol(&buf[..buf.len().min(8)])
                } else {
                    None
                };
                match (e, hint) {
                    (_, Some(what)) => tracing::error!(
                        "closing connection: the client sent {what}, not Kafka protocol, to {} listener {}",
                        listener.security_protocol.name(),
                        listener.name
                    ),
                    (FrameError::TooLarge { size, max }, None) => tracing::error!(
                        size,
                        max,
                        "closing connection: request size exceeds socket.request.max.bytes"
                    ),
                    (e, None) => tracing::error!(error = %e, "closing connection: invalid request frame"),
                }
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
                        Some(unsupported_api_versions_response(correlation_id, &ctx.apis))
                    } else {
                        tracing::error!(
                            ?api_key,
                            api_version,
                            "closing connection: unsupported request version"
                        );
                        let _ = out.flush().await;
                        return;
                    }
                } else {
                    let span =
                        tracing::debug_span!("request", ?api_key, api_version, correlation_id);
                    match handlers::dispatch(&ctx, &conn, req).instrument(span).await {
                        Some(body) => {
                            match encode_response(api_key, api_version, correlation_id, &body) {
                                Ok(bytes) => Some(bytes),
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
            }) => Some(unsupported_api_versions_response(correlation_id, &ctx.apis)),
            Err(e) => {
                tracing::error!(error = %e, "closing connection: cannot decode request");
                let _ = out.flush().await;
                return;
            }
        };
        if let Some(bytes) = response {
            if let Err(e) = out.write_all(&bytes).await {
                tracing::debug!(error = %e, "write failed; closing");
                return;
            }
        }
    }
}
