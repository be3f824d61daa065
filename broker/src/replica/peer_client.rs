//! A Kafka-protocol connection from this broker to another broker's client listener, for replica fetchers:
//! one request at a time (a fetcher has one request in flight, as Kafka's `ReplicaFetcherThread` does), each
//! framed with `kraftwerk_protocol`'s frame decoder (so a hostile or broken peer cannot make us allocate more
//! than `MAX_RESPONSE_BYTES`) and bounded by a timeout.

use std::time::Duration;

use crate::tls::{PeerConnector, PeerStream};
use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::{RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use kraftwerk_protocol::frame::{FrameDecoder, FrameError};

/// Largest response accepted from a leader: a fetch asks for at most `FETCH_MAX_BYTES` (plus one oversized
/// first batch, bounded by `message.max.bytes`), so anything near this is a broken peer.
const MAX_RESPONSE_BYTES: usize = 128 << 20;

#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("connecting to {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("i/o with the leader: {0}")]
    Io(#[from] std::io::Error),
    #[error("no answer from the leader within {0:?}")]
    Timeout(Duration),
    #[error("the leader closed the connection")]
    Closed,
    #[error("bad frame from the leader: {0}")]
    Frame(#[from] FrameError),
    #[error("cannot encode or decode a message: {0}")]
    Codec(String),
    #[error("response correlation id {got}, expected {expected}")]
    Correlation { expected: i32, got: i32 },
}

pub struct PeerConnection {
    stream: PeerStream,
    buf: BytesMut,
    decoder: FrameDecoder,
    next_correlation_id: i32,
    client_id: StrBytes,
}

impl PeerConnection {
    pub async fn connect(
        connector: &PeerConnector,
        host: &str,
        port: u16,
        timeout: Duration,
        client_id: String,
    ) -> Result<Self, PeerError> {
        let addr = format!("{host}:{port}");
        let stream = connector
            .connect(host, port, timeout)
            .await
            .map_err(|source| PeerError::Connect {
                addr: addr.clone(),
                source,
            })?;
        Ok(Self {
            stream,
            buf: BytesMut::with_capacity(64 * 1024),
            decoder: FrameDecoder::new(MAX_RESPONSE_BYTES),
            next_correlation_id: 0,
            client_id: StrBytes::from_string(client_id),
        })
    }

    /// Sends one request at `version` and waits (at most `timeout`) for its response.
    pub async fn request<R: Request>(
        &mut self,
        version: i16,
        body: &R,
        timeout: Duration,
    ) -> Result<R::Response, PeerError> {
        tokio::time::timeout(timeout, async {
            let sent = self.send(version, body).await?;
            self.receive(&sent).await
        })
        .await
        .map_err(|_| PeerError::Timeout(timeout))?
    }

    /// Writes one request at `version` without waiting for its answer, which [`Self::receive`] reads; requests
    /// sent meanwhile are answered after it, in order (the protocol's pipelining).
    pub async fn send<R: Request>(&mut self, version: i16, body: &R) -> Result<Sent<R>, PeerError> {
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(self.client_id.clone()));
        let mut out = BytesMut::new();
        out.put_i32(0);
        header
            .encode(&mut out, R::header_version(version))
            .map_err(|e| PeerError::Codec(format!("request header: {e:#}")))?;
        body.encode(&mut out, version)
            .map_err(|e| PeerError::Codec(format!("request body: {e:#}")))?;
        let len = i32::try_from(out.len() - 4)
            .map_err(|_| PeerError::Codec("request larger than 2 GiB".into()))?;
        out[..4].copy_from_slice(&len.to_be_bytes());
        self.stream.write_all(&out).await?;
        self.stream.flush().await?;
        Ok(Sent {
            version,
            correlation_id,
            _request: std::marker::PhantomData,
        })
    }

    /// Reads the answer to `sent`, the oldest request still unanswered. Cancel-safe: bytes already read stay
    /// buffered, so a caller may drop this future (to send another request) and call it again with `sent`.
    pub async fn receive<R: Request>(&mut self, sent: &Sent<R>) -> Result<R::Response, PeerError> {
        let mut frame = loop {
            if let Some(frame) = self.decoder.decode(&mut self.buf)? {
                break frame;
            }
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                return Err(PeerError::Closed);
            }
        };
        let header = ResponseHeader::decode(
            &mut frame,
            <R::Response as HeaderVersion>::header_version(sent.version),
        )
        .map_err(|e| PeerError::Codec(format!("response header: {e:#}")))?;
        if header.correlation_id != sent.correlation_id {
            return Err(PeerError::Correlation {
                expected: sent.correlation_id,
                got: header.correlation_id,
            });
        }
        R::Response::decode(&mut frame, sent.version)
            .map_err(|e| PeerError::Codec(format!("response body: {e:#}")))
    }
}

/// A request written by [`PeerConnection::send`] whose answer is still to be read.
#[must_use = "its answer must be read before the next one's"]
pub struct Sent<R> {
    version: i16,
    correlation_id: i32,
    _request: std::marker::PhantomData<fn() -> R>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A peer that answers ApiVersions requests in order, but holds its answer to the first until the second has
    /// arrived, as a leader holds a parked fetch until a request queues behind it.
    async fn holding_peer(listener: TcpListener) {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut correlation_ids = Vec::new();
        for _ in 0..2 {
            let len = socket.read_i32().await.unwrap() as usize;
            let mut frame = vec![0u8; len];
            socket.read_exact(&mut frame).await.unwrap();
            let mut buf = bytes::Bytes::from(frame);
            let header = RequestHeader::decode(&mut buf, 1).unwrap();
            correlation_ids.push(header.correlation_id);
        }
        for correlation_id in correlation_ids {
            let mut out = BytesMut::new();
            ResponseHeader::default()
                .with_correlation_id(correlation_id)
                .encode(&mut out, 0)
                .unwrap();
            ApiVersionsResponse::default().encode(&mut out, 0).unwrap();
            socket.write_i32(out.len() as i32).await.unwrap();
            socket.write_all(&out).await.unwrap();
        }
    }

    async fn connect_to_holding_peer() -> (PeerConnection, tokio::task::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let peer = tokio::spawn(holding_peer(listener));
        let conn = PeerConnection::connect(
            &PeerConnector::plaintext(),
            "127.0.0.1",
            port,
            Duration::from_secs(5),
            "test".into(),
        )
        .await
        .unwrap();
        (conn, peer)
    }

    #[tokio::test]
    async fn a_request_pipelined_behind_an_unanswered_one_gets_both_answers_in_order() {
        let (mut conn, peer) = connect_to_holding_peer().await;
        let first = conn.send(0, &ApiVersionsRequest::default()).await.unwrap();
        // The peer holds the first answer: give up waiting for it (dropping the read) ...
        let waited = tokio::time::timeout(Duration::from_millis(50), conn.receive(&first)).await;
        assert!(
            waited.is_err(),
            "the peer answered before the second request"
        );
        // ... send another behind it, and read both answers from where the dropped read left off.
        let second = conn.send(0, &ApiVersionsRequest::default()).await.unwrap();
        conn.receive(&first).await.unwrap();
        conn.receive(&second).await.unwrap();
        peer.await.unwrap();
    }

    #[tokio::test]
    async fn an_answer_read_for_the_wrong_request_is_refused() {
        let (mut conn, peer) = connect_to_holding_peer().await;
        let _first = conn.send(0, &ApiVersionsRequest::default()).await.unwrap();
        let second = conn.send(0, &ApiVersionsRequest::default()).await.unwrap();
        let err = conn.receive(&second).await.unwrap_err();
        assert!(
            matches!(
                err,
                PeerError::Correlation {
                    expected: 1,
                    got: 0
                }
            ),
            "{err}"
        );
        peer.await.unwrap();
    }
}
