//! One accept loop per client listener; each connection gets its own task and tracing span.

use std::sync::Arc;

use tokio::net::TcpListener;
use tracing::Instrument;

use crate::config::Listener;
use crate::context::BrokerContext;
use crate::tls::TlsListener;

use super::connection;

/// Binds the listener; failing to bind stops the start with a clear error.
pub async fn bind(listener: &Listener) -> std::io::Result<TcpListener> {
    TcpListener::bind(listener.bind_addr()).await
}

/// Accepts connections; with `tls` (an SSL listener) each one starts with a TLS handshake.
pub async fn accept_loop(
    socket: TcpListener,
    listener: Listener,
    tls: Option<TlsListener>,
    ctx: Arc<BrokerContext>,
) {
    let listener = Arc::new(listener);
    loop {
        match socket.accept().await {
            Ok((stream, peer)) => {
                if let Err(e) = stream.set_nodelay(true) {
                    tracing::debug!(error = %e, "set_nodelay failed");
                }
                let span = tracing::info_span!("conn", listener = %listener.name, %peer);
                let ctx = ctx.clone();
                let listener = listener.clone();
                match &tls {
                    None => {
                        tokio::spawn(
                            connection::serve(stream, peer, listener, ctx).instrument(span),
                        );
                    }
                    Some(tls) => {
                        tokio::spawn(
                            connection::serve_tls(stream, peer, tls.clone(), listener, ctx)
                                .instrument(span),
                        );
                    }
                }
            }
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}
