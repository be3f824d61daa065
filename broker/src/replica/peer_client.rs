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
        tokio::time::timeout(timeout, async {
            self.stream.write_all(&out).await?;
            self.stream.flush().await?;
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
                <R::Response as HeaderVersion>::header_version(version),
            )
            .map_err(|e| PeerError::Codec(format!("response header: {e:#}")))?;
            if header.correlation_id != correlation_id {
                return Err(PeerError::Correlation {
                    expected: correlation_id,
                    got: header.correlation_id,
                });
            }
            R::Response::decode(&mut frame, version)
                .map_err(|e| PeerError::Codec(format!("response body: {e:#}")))
        })
        .await
        .map_err(|_| PeerError::Timeout(timeout))?
    }
}
