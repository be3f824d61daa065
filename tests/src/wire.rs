//! A minimal blocking Kafka wire client on `std::net::TcpStream`, optionally inside TLS (rustls) and logged
//! in with SASL/PLAIN (see [`crate::security::ClientSecurity`]).
//!
//! The harness uses it to check readiness without a full client library, and the bad-input tests use its
//! raw half to send bytes no well-behaved client would. Messages are encoded with the `kafka-protocol`
//! crate the broker also uses, so this client is independent of rdkafka.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, MetadataRequest, MetadataResponse,
    RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};

use crate::error::HarnessError;

/// Largest response frame we accept; anything bigger means the stream is out of sync.
const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// Client id the harness sends, so broker logs show which connections came from it.
pub const CLIENT_ID: &str = "kraftwerk-harness";

/// What reading one frame produced.
#[derive(Debug)]
pub enum ReadOutcome {
    /// A whole size-prefixed frame (without its 4-byte size).
    Frame(Bytes),
    /// The peer closed (EOF or reset) before or inside a frame.
    Closed,
    /// Nothing arrived within the read timeout; the connection is still open.
    TimedOut,
}

/// The byte stream under a [`Connection`]: TCP, or TLS over TCP.
pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => &s.sock,
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// One blocking connection to a broker.
pub struct Connection {
    stream: Stream,
    next_correlation_id: i32,
}

impl Connection {
    /// Connects with `timeout` for the connect and for every later read/write.
    pub fn connect(addr: SocketAddr, timeout: Duration) -> Result<Self, HarnessError> {
        Ok(Connection {
            stream: Stream::Plain(tcp_connect(addr, timeout)?),
            next_correlation_id: 1,
        })
    }

    /// A connection over `stream` (TLS set up by [`crate::security`]).
    pub(crate) fn over(stream: Stream) -> Self {
        Connection {
            stream,
            next_correlation_id: 1,
        }
    }

    /// Changes the read timeout for later reads.
    pub fn set_read_timeout(&self, timeout: Duration) -> Result<(), HarnessError> {
        self.stream
            .tcp()
            .set_read_timeout(Some(timeout))
            .map_err(|e| HarnessError::io("setting read timeout", e))
    }

    /// Sends `body` as API `R` at `version` and decodes the matching response.
    pub fn request<R: Request>(
        &mut self,
        version: i16,
        body: &R,
    ) -> Result<R::Response, HarnessError> {
        let correlation_id = self.send(version, body)?;
        let (answered, response) = self.read_response::<R>(version)?;
        if answered != correlation_id {
            return Err(HarnessError::Protocol(format!(
                "response correlation id {answered} for request {correlation_id}"
            )));
        }
        Ok(response)
    }

    /// Sends `body` as API `R` at `version` without waiting for the answer (pipelining); returns its
    /// correlation id.
    pub fn send<R: Request>(&mut self, version: i16, body: &R) -> Result<i32, HarnessError> {
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        let frame = encode_request(correlation_id, version, body)?;
        self.send_raw(&frame)?;
        Ok(correlation_id)
    }

    /// Reads the next response, as an answer to API `R` at `version`, with its correlation id.
    pub fn read_response<R: Request>(
        &mut self,
        version: i16,
    ) -> Result<(i32, R::Response), HarnessError> {
        let mut payload = match self.read_frame()? {
            ReadOutcome::Frame(f) => f,
            ReadOutcome::Closed => return Err(HarnessError::Closed),
            ReadOutcome::TimedOut => {
                return Err(HarnessError::io(
                    "waiting for a response",
                    std::io::Error::from(ErrorKind::TimedOut),
                ))
            }
        };
        let header = ResponseHeader::decode(
            &mut payload,
            <R::Response as HeaderVersion>::header_version(version),
        )
        .map_err(|e| codec("decoding response header", e))?;
        let body = R::Response::decode(&mut payload, version)
            .map_err(|e| codec("decoding response body", e))?;
        Ok((header.correlation_id, body))
    }

    /// Writes bytes as they are, framing included (or not).
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<(), HarnessError> {
        self.stream
            .write_all(bytes)
            .and_then(|()| self.stream.flush())
            .map_err(|e| HarnessError::io("writing to broker", e))
    }

    /// Reads one size-prefixed frame, reporting EOF/reset and timeouts as outcomes rather than errors,
    /// since for the bad-input tests a closed connection is an expected answer.
    pub fn read_frame(&mut self) -> Result<ReadOutcome, HarnessError> {
        let mut size = [0u8; 4];
        match read_exact_or_outcome(&mut self.stream, &mut size)? {
            None => {}
            Some(outcome) => return Ok(outcome),
        }
        let len = i32::from_be_bytes(size);
        let len = usize::try_from(len)
            .ok()
            .filter(|l| *l <= MAX_RESPONSE_BYTES)
            .ok_or_else(|| HarnessError::Protocol(format!("response frame size {len}")))?;
        let mut payload = vec![0u8; len];
        match read_exact_or_outcome(&mut self.stream, &mut payload)? {
            None => Ok(ReadOutcome::Frame(Bytes::from(payload))),
            // A timeout mid-frame leaves the stream unusable; callers treat it like a close.
            Some(ReadOutcome::TimedOut) => Ok(ReadOutcome::Closed),
            Some(outcome) => Ok(outcome),
        }
    }

    /// Closes our write half, so the broker sees EOF while we can still read its answer.
    pub fn shutdown_write(&self) -> Result<(), HarnessError> {
        self.stream
            .tcp()
            .shutdown(std::net::Shutdown::Write)
            .map_err(|e| HarnessError::io("shutting down write half", e))
    }
}

/// TCP connect with `timeout` for the connect and every later read/write.
pub(crate) fn tcp_connect(addr: SocketAddr, timeout: Duration) -> Result<TcpStream, HarnessError> {
    let stream = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| HarnessError::io(format!("connecting to {addr}"), e))?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .and_then(|()| stream.set_nodelay(true))
        .map_err(|e| HarnessError::io("configuring socket", e))?;
    Ok(stream)
}

/// `Ok(None)` when the buffer was filled, else the outcome that stopped it.
fn read_exact_or_outcome(
    stream: &mut impl Read,
    buf: &mut [u8],
) -> Result<Option<ReadOutcome>, HarnessError> {
    let mut filled = 0;
    while filled < buf.len() {
        let rest = buf.get_mut(filled..).unwrap_or_default();
        match stream.read(rest) {
            Ok(0) => return Ok(Some(ReadOutcome::Closed)),
            Ok(n) => filled += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Ok(Some(ReadOutcome::TimedOut))
            }
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::ConnectionReset
                        | ErrorKind::ConnectionAborted
                        | ErrorKind::BrokenPipe
                        // rustls: the peer closed without a close_notify.
                        | ErrorKind::UnexpectedEof
                ) =>
            {
                return Ok(Some(ReadOutcome::Closed))
            }
            Err(e) => return Err(HarnessError::io("reading from broker", e)),
        }
    }
    Ok(None)
}

/// Encodes a whole request frame: 4-byte size, header (at the version the API requires), body.
pub fn encode_request<R: Request>(
    correlation_id: i32,
    version: i16,
    body: &R,
) -> Result<Vec<u8>, HarnessError> {
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str(CLIENT_ID)));
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&[0, 0, 0, 0]);
    header
        .encode(&mut buf, R::header_version(version))
        .map_err(|e| codec("encoding request header", e))?;
    body.encode(&mut buf, version)
        .map_err(|e| codec("encoding request body", e))?;
    let len = i32::try_from(buf.len() - 4)
        .map_err(|_| HarnessError::Protocol("request larger than 2 GiB".into()))?;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    Ok(buf.to_vec())
}

/// The highest version of `api` both the broker (per `versions`) and our codec support.
pub fn negotiate_version<R: Request>(versions: &ApiVersionsResponse) -> Option<i16> {
    let broker = versions.api_keys.iter().find(|k| k.api_key == R::KEY)?;
    let max = broker.max_version.min(R::VERSIONS.max);
    let min = broker.min_version.max(R::VERSIONS.min);
    (min <= max).then_some(max)
}

/// ApiVersions v0 (which every broker must answer) followed by a Metadata request for all topics at the
/// best common version. Succeeds only if the broker lists at least one broker.
pub fn probe_metadata(
    addr: SocketAddr,
    timeout: Duration,
) -> Result<MetadataResponse, HarnessError> {
    probe_metadata_on(Connection::connect(addr, timeout)?)
}

/// [`probe_metadata`] over a connection already set up (TLS, SASL login).
pub fn probe_metadata_on(mut conn: Connection) -> Result<MetadataResponse, HarnessError> {
    let versions = conn.request(0, &ApiVersionsRequest::default())?;
    if versions.error_code != 0 {
        return Err(HarnessError::Protocol(format!(
            "ApiVersions v0 answered error code {}",
            versions.error_code
        )));
    }
    let version = negotiate_version::<MetadataRequest>(&versions).ok_or_else(|| {
        HarnessError::Protocol("broker advertises no Metadata version we support".into())
    })?;
    let metadata = conn.request(version, &MetadataRequest::default().with_topics(None))?;
    if metadata.brokers.is_empty() {
        return Err(HarnessError::Protocol(
            "Metadata response lists no brokers".into(),
        ));
    }
    Ok(metadata)
}

/// The request header version ApiVersions uses at `version` (v3+ is flexible).
pub fn api_versions_header_version(version: i16) -> i16 {
    ApiKey::ApiVersions.request_header_version(version)
}

fn codec(what: &'static str, e: impl std::fmt::Display) -> HarnessError {
    HarnessError::Codec {
        what,
        message: format!("{e:#}"),
    }
}

/// A CreateTopics request for one topic of one partition and replication factor 1 with `configs`, as the
/// wire-level tests send it (30 s timeout).
pub fn create_one_topic_request(
    topic: &str,
    configs: &[(&str, &str)],
) -> kafka_protocol::messages::CreateTopicsRequest {
    create_topics_request(topic, 1, 1, configs)
}

/// A CreateTopics request for one topic of `partitions` partitions and replication factor `rf` with
/// `configs` (30 s timeout).
pub fn create_topics_request(
    topic: &str,
    partitions: i32,
    rf: i16,
    configs: &[(&str, &str)],
) -> kafka_protocol::messages::CreateTopicsRequest {
    use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
    let mut t = CreatableTopic::default();
    t.name = kafka_protocol::messages::TopicName(StrBytes::from_string(topic.to_string()));
    t.num_partitions = partitions;
    t.replication_factor = rf;
    t.configs = configs
        .iter()
        .map(|(k, v)| {
            let mut c = CreatableTopicConfig::default();
            c.name = StrBytes::from_string(k.to_string());
            c.value = Some(StrBytes::from_string(v.to_string()));
            c
        })
        .collect();
    let mut req = kafka_protocol::messages::CreateTopicsRequest::default();
    req.topics = vec![t];
    req.timeout_ms = 30_000;
    req
}

/// A Produce request by topic name (v12 and below) of one partition's `records` (30 s timeout).
pub fn produce_request(
    topic: &str,
    partition: i32,
    acks: i16,
    records: Bytes,
) -> kafka_protocol::messages::ProduceRequest {
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    let mut pd = PartitionProduceData::default();
    pd.index = partition;
    pd.records = Some(records);
    let mut td = TopicProduceData::default();
    td.name = kafka_protocol::messages::TopicName(StrBytes::from_string(topic.to_string()));
    td.partition_data = vec![pd];
    let mut req = kafka_protocol::messages::ProduceRequest::default();
    req.acks = acks;
    req.timeout_ms = 30_000;
    req.topic_data = vec![td];
    req
}

/// A ListOffsets request (v1+ fields, consumer replica id) for partition 0 of `topic` at `timestamp`
/// (-1 latest, -2 earliest), as the wire-level tests send it.
pub fn list_offsets_request(
    topic: &str,
    timestamp: i64,
) -> kafka_protocol::messages::ListOffsetsRequest {
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    let mut p = ListOffsetsPartition::default();
    p.partition_index = 0;
    p.timestamp = timestamp;
    let mut t = ListOffsetsTopic::default();
    t.name = kafka_protocol::messages::TopicName(StrBytes::from_string(topic.to_string()));
    t.partitions = vec![p];
    let mut req = kafka_protocol::messages::ListOffsetsRequest::default();
    req.replica_id = kafka_protocol::messages::BrokerId(-1);
    req.topics = vec![t];
    req
}

/// A consumer's Fetch (topics by name: v4–v12) of partition 0 of `topic` from `offset`, up to `max_bytes`
/// for the partition and the response, waiting at most 100 ms, as the wire-level tests send it.
pub fn fetch_request(
    topic: &str,
    offset: i64,
    max_bytes: i32,
) -> kafka_protocol::messages::FetchRequest {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    let mut p = FetchPartition::default();
    p.partition = 0;
    p.fetch_offset = offset;
    p.partition_max_bytes = max_bytes;
    let mut t = FetchTopic::default();
    t.topic = kafka_protocol::messages::TopicName(StrBytes::from_string(topic.to_string()));
    t.partitions = vec![p];
    let mut req = kafka_protocol::messages::FetchRequest::default();
    req.replica_id = kafka_protocol::messages::BrokerId(-1);
    req.max_wait_ms = 100;
    req.max_bytes = max_bytes;
    req.topics = vec![t];
    req
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::api_versions_response::ApiVersion;
    use kafka_protocol::protocol::Message;

    #[test]
    fn encoded_frame_has_size_prefix_and_header() {
        let frame = encode_request(7, 0, &ApiVersionsRequest::default()).unwrap();
        let size = i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]);
        assert_eq!(size as usize, frame.len() - 4);
        assert_eq!(&frame[4..6], &18i16.to_be_bytes()); // api key
        assert_eq!(&frame[6..8], &0i16.to_be_bytes()); // api version
        assert_eq!(&frame[8..12], &7i32.to_be_bytes()); // correlation id
    }

    #[test]
    fn negotiation_picks_highest_common_version_or_none() {
        let mut resp = ApiVersionsResponse::default();
        resp.api_keys.push(
            ApiVersion::default()
                .with_api_key(MetadataRequest::KEY)
                .with_min_version(0)
                .with_max_version(9),
        );
        assert_eq!(negotiate_version::<MetadataRequest>(&resp), Some(9));
        resp.api_keys[0].max_version = i16::MAX;
        assert_eq!(
            negotiate_version::<MetadataRequest>(&resp),
            Some(MetadataRequest::VERSIONS.max)
        );
        resp.api_keys[0].min_version = i16::MAX;
        assert_eq!(negotiate_version::<MetadataRequest>(&resp), None);
        resp.api_keys.clear();
        assert_eq!(negotiate_version::<MetadataRequest>(&resp), None);
    }
}
