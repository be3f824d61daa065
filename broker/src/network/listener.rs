//! One accept loop per client listener; each connection gets its own task and tracing span.

use std::sync::Arc;

use tokio::net::TcpListener;
use tracing::Instrument;

use crate::config::Listener;
use crate::context::BrokerContext;
use crate::sasl::SaslListener;
use crate::tls::TlsListener;

use super::limits::{ConnectionCap, PerIpLimits};

use super::connection;

/// `socket.send.buffer.bytes` / `socket.receive.buffer.bytes`: `None` leaves the OS default (Kafka's -1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SocketBuffers {
    pub send: Option<u32>,
    pub receive: Option<u32>,
}

/// Binds the listener; failing to bind stops the start with a clear error. The buffer sizes are set on the
/// listening socket, from which Linux copies them to every accepted connection (before the handshake, so
/// the receive window scale is chosen for them too).
pub async fn bind(listener: &Listener, buffers: SocketBuffers) -> std::io::Result<TcpListener> {
    if buffers == SocketBuffers::default() {
        return TcpListener::bind(listener.bind_addr()).await;
    }
    let mut last_error = None;
    for addr in tokio::net::lookup_host(listener.bind_addr()).await? {
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        if let Some(n) = buffers.send {
            socket.set_send_buffer_size(n)?;
        }
        if let Some(n) = buffers.receive {
            socket.set_recv_buffer_size(n)?;
        }
        match socket.bind(addr).and_then(|()| socket.listen(1024)) {
            Ok(l) => return Ok(l),
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::AddrNotAvailable,
            format!("{} resolves to no address", listener.bind_addr()),
        )
    }))
}

/// The connection limits an accept loop applies (see [`super::limits`]).
#[derive(Clone)]
pub struct AcceptLimits {
    /// `max.connections` across the broker's client listeners (not the inter-broker one, as in Kafka).
    pub broker: Option<Arc<ConnectionCap>>,
    /// `listener.name.<l>.max.connections`.
    pub listener: Option<Arc<ConnectionCap>>,
    pub per_ip: Arc<PerIpLimits>,
}

/// Accepts connections; with `tls` (SSL, SASL_SSL) each one starts with a TLS handshake, with `sasl`
/// (SASL_PLAINTEXT, SASL_SSL) with SASL authentication.
pub async fn accept_loop(
    socket: TcpListener,
    listener: Listener,
    tls: Option<TlsListener>,
    limits: AcceptLimits,
    sasl: Option<Arc<SaslListener>>,
    ctx: Arc<BrokerContext>,
) {
    let listener = Arc::new(listener);
    loop {
        // At the broker or listener limit, stop accepting until a connection closes: new clients wait in the
        // backlog, as with Kafka.
        let mut permits = Vec::new();
        for cap in [&limits.broker, &limits.listener].into_iter().flatten() {
            let slot = match cap.try_acquire() {
                Some(slot) => slot,
                None => {
                    tracing::debug!(listener = %listener.name, "connection limit reached; pausing accepts");
                    cap.acquire().await
                }
            };
            permits.push(slot);
        }
        match socket.accept().await {
            Ok((stream, peer)) => {
                let slot = match limits.per_ip.admit(peer.ip()) {
                    Ok(slot) => slot,
                    Err(limit) => {
                        tracing::warn!(listener = %listener.name, %peer,
                            "closing connection: {} already has {limit} open (max.connections.per.ip)", peer.ip());
                        continue;
                    }
                };
                if let Err(e) = stream.set_nodelay(true) {
                    tracing::debug!(error = %e, "set_nodelay failed");
                }
                let span = tracing::info_span!("conn", listener = %listener.name, %peer);
                let ctx = ctx.clone();
                let listener = listener.clone();
                let tls = tls.clone();
                let sasl = sasl.clone();
                tokio::spawn(
                    async move {
                        match tls {
                            None => connection::serve(stream, peer, listener, sasl, ctx).await,
                            Some(tls) => {
                                connection::serve_tls(stream, peer, tls, listener, sasl, ctx).await
                            }
                        }
                        // The slots are given back when the connection ends.
                        drop((slot, permits));
                    }
                    .instrument(span),
                );
            }
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

#[cfg(test)]
mod socket_buffer_tests {
    use super::*;
    use crate::config::SecurityProtocol;

    /// The sizes reach accepted connections (Linux doubles what is asked, for its bookkeeping).
    #[tokio::test]
    async fn accepted_connections_inherit_the_buffer_sizes() {
        let l = Listener {
            name: "PLAINTEXT".into(),
            host: "127.0.0.1".into(),
            port: 0,
            security_protocol: SecurityProtocol::Plaintext,
        };
        let buffers = SocketBuffers {
            send: Some(65_536),
            receive: Some(48_000),
        };
        let server = bind(&l, buffers).await.unwrap();
        let addr = server.local_addr().unwrap();
        let _client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (accepted, _) = server.accept().await.unwrap();
        let sock = tokio::net::TcpSocket::from_std_stream(accepted.into_std().unwrap());
        assert_eq!(sock.send_buffer_size().unwrap(), 2 * 65_536);
        assert_eq!(sock.recv_buffer_size().unwrap(), 2 * 48_000);
        // Unset: the OS default, which is not what was asked above.
        let plain = bind(&l, SocketBuffers::default()).await.unwrap();
        let addr = plain.local_addr().unwrap();
        let _client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (accepted, _) = plain.accept().await.unwrap();
        let sock = tokio::net::TcpSocket::from_std_stream(accepted.into_std().unwrap());
        assert_ne!(sock.recv_buffer_size().unwrap(), 2 * 48_000);
    }
}
