//! One accept loop per client listener; each connection gets its own task and tracing span.

use std::sync::Arc;

use tokio::net::TcpListener;
use tracing::Instrument;

use crate::config::Listener;
use crate::context::BrokerContext;
use crate::sasl::SaslListener;
use crate::tls::TlsListener;

use super::limits::PerIpLimits;
use tokio::sync::Semaphore;

use super::connection;

/// Binds the listener; failing to bind stops the start with a clear error.
pub async fn bind(listener: &Listener) -> std::io::Result<TcpListener> {
    TcpListener::bind(listener.bind_addr()).await
}

/// The connection limits an accept loop applies (see [`super::limits`]).
#[derive(Clone)]
pub struct AcceptLimits {
    /// `max.connections` across the broker's client listeners (not the inter-broker one, as in Kafka).
    pub broker: Option<Arc<Semaphore>>,
    /// `listener.name.<l>.max.connections`.
    pub listener: Option<Arc<Semaphore>>,
    pub per_ip: Arc<PerIpLimits>,
}

/// A semaphore of `n` permits (capped at tokio's maximum).
pub fn connection_semaphore(n: usize) -> Arc<Semaphore> {
    Arc::new(Semaphore::new(n.min(Semaphore::MAX_PERMITS)))
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
        for sem in [&limits.broker, &limits.listener].into_iter().flatten() {
            if sem.available_permits() == 0 {
                tracing::debug!(listener = %listener.name, "connection limit reached; pausing accepts");
            }
            match sem.clone().acquire_owned().await {
                Ok(p) => permits.push(p),
                Err(_) => return,
            }
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
