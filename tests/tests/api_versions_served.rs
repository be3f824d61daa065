//! ApiVersions promises only what is served: every API a running `kraftwerk` advertises is sent at every
//! version of its advertised range, and each must be answered with a response that decodes at that version
//! (right correlation id, right header version, a body the codec reads), on the same connection. A version
//! advertised but not handled, or a handler answering with a body its version cannot carry, fails here.
//! The APIs Kafka's protocol has and Kraftwerk does not advertise are printed.
//!
//! One exception is Kafka's own: Produce is listed from v0 (KAFKA-18659, so librdkafka before 2.8 compresses)
//! while only v3+ is served; a Produce v0–v2 request closes the connection, as it does with Kafka 4.

use std::time::Duration;

use bytes::{Buf, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ProduceRequest, RequestHeader, RequestKind, ResponseHeader,
    ResponseKind,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use kraftwerk_tests::broker::Broker;
use kraftwerk_tests::wire::{Connection, ReadOutcome};

/// `RequestKind::<Api>(Default::default())` for every api the codec knows.
macro_rules! default_requests {
    ($($name:ident),* $(,)?) => {
        fn default_request(key: ApiKey) -> RequestKind {
            match key {
                $(ApiKey::$name => RequestKind::$name(Default::default()),)*
            }
        }
    };
}
kraftwerk_protocol::with_api_names!(default_requests);

/// The default body, adjusted where a default would get no answer at all.
fn request_for(key: ApiKey) -> RequestKind {
    match key {
        // acks=0 is answered with silence.
        ApiKey::Produce => RequestKind::Produce(ProduceRequest::default().with_acks(1)),
        other => default_request(other),
    }
}

/// Sends `body` as `key` v`version`; the decoded answer, or why there is none.
fn exchange(
    conn: &mut Connection,
    correlation_id: i32,
    key: ApiKey,
    version: i16,
    body: &RequestKind,
) -> Result<ResponseKind, String> {
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("api-versions-served")));
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&[0, 0, 0, 0]);
    header
        .encode(&mut buf, key.request_header_version(version))
        .map_err(|e| format!("encoding header: {e}"))?;
    body.encode(&mut buf, version)
        .map_err(|e| format!("encoding body: {e}"))?;
    let len = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    conn.send_raw(&buf).map_err(|e| format!("sending: {e}"))?;
    let mut payload = match conn.read_frame().map_err(|e| format!("reading: {e}"))? {
        ReadOutcome::Frame(f) => f,
        ReadOutcome::Closed => return Err("connection closed instead of an answer".into()),
        ReadOutcome::TimedOut => return Err("no answer within 30 s".into()),
    };
    let header = ResponseHeader::decode(&mut payload, key.response_header_version(version))
        .map_err(|e| format!("decoding response header: {e}"))?;
    if header.correlation_id != correlation_id {
        return Err(format!(
            "answer for correlation id {} to request {correlation_id}",
            header.correlation_id
        ));
    }
    let body = ResponseKind::decode(key, &mut payload, version)
        .map_err(|e| format!("decoding response body: {e}"))?;
    if payload.has_remaining() {
        return Err(format!(
            "{} bytes after the response body",
            payload.remaining()
        ));
    }
    Ok(body)
}

#[test]
fn every_advertised_version_is_answered_at_that_version() {
    let broker = Broker::builder()
        .rust_log("warn")
        .start()
        .expect("broker starts");
    let mut conn = broker.connect(READ_TIMEOUT).expect("connect");
    let versions = conn
        .request(
            3,
            &ApiVersionsRequest::default()
                .with_client_software_name(StrBytes::from_static_str("api-versions-served"))
                .with_client_software_version(StrBytes::from_static_str("1.0")),
        )
        .expect("ApiVersions");
    assert_eq!(versions.error_code, 0);

    let mut failures = Vec::new();
    let mut served = 0;
    let mut refused_as_kafka = 0;
    let mut correlation_id = 1;
    for api in &versions.api_keys {
        let key = ApiKey::try_from(api.api_key).unwrap_or_else(|_| {
            panic!("advertised api key {} the codec does not know", api.api_key)
        });
        let decodable = key.valid_versions();
        for version in api.min_version..=api.max_version {
            if key == ApiKey::Produce && version < PRODUCE_SERVED_FROM {
                correlation_id += 1;
                match legacy_produce_is_refused(&broker, correlation_id, version) {
                    Ok(()) => refused_as_kafka += 1,
                    Err(why) => failures.push(format!("Produce v{version}: {why}")),
                }
                continue;
            }
            if version < decodable.min || version > decodable.max {
                failures.push(format!("{key:?} v{version}: advertised but not decodable"));
                continue;
            }
            correlation_id += 1;
            match exchange(&mut conn, correlation_id, key, version, &request_for(key)) {
                Ok(_) => served += 1,
                Err(why) => {
                    failures.push(format!("{key:?} v{version}: {why}"));
                    conn = broker.connect(READ_TIMEOUT).expect("connect");
                }
            }
        }
    }

    let advertised: Vec<i16> = versions.api_keys.iter().map(|k| k.api_key).collect();
    let unadvertised: Vec<String> = ApiKey::iter()
        .filter(|k| !advertised.contains(&(*k as i16)))
        .map(|k| format!("{k:?}({})", k as i16))
        .collect();
    println!(
        "{} APIs advertised, {served} API versions answered; {} APIs of the protocol not advertised: {}",
        advertised.len(),
        unadvertised.len(),
        unadvertised.join(", ")
    );
    assert!(
        failures.is_empty(),
        "advertised versions not served:\n{}",
        failures.join("\n")
    );
    assert_eq!(
        refused_as_kafka, PRODUCE_SERVED_FROM,
        "Produce is listed from v0, as Apache Kafka 4 lists it"
    );
}

/// How long a read waits for the broker.
const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// The first Produce version served (record batches, magic 2).
const PRODUCE_SERVED_FROM: i16 = 3;

/// Sends a Produce v`version` (v0–v2: a magic 1 message set) on a new connection; Ok when the broker closes
/// it without an answer, as Apache Kafka 4 does ("unsupported version"), so a client never reads a reply it
/// would take for success.
fn legacy_produce_is_refused(
    broker: &Broker,
    correlation_id: i32,
    version: i16,
) -> Result<(), String> {
    let mut conn = broker.connect(READ_TIMEOUT).expect("connect");
    let value = b"v0 record";
    // One magic 1 message: crc (not checked before the version is), magic, attributes, timestamp, key, value.
    let mut message = vec![0, 0, 0, 0, 1, 0];
    message.extend_from_slice(&0i64.to_be_bytes());
    message.extend_from_slice(&(-1i32).to_be_bytes());
    message.extend_from_slice(&(value.len() as i32).to_be_bytes());
    message.extend_from_slice(value);
    let mut set = 0i64.to_be_bytes().to_vec();
    set.extend_from_slice(&(message.len() as i32).to_be_bytes());
    set.extend_from_slice(&message);
    let mut frame = Vec::new();
    frame.extend_from_slice(&0i16.to_be_bytes()); // Produce
    frame.extend_from_slice(&version.to_be_bytes());
    frame.extend_from_slice(&correlation_id.to_be_bytes());
    frame.extend_from_slice(&(-1i16).to_be_bytes()); // no client id
    frame.extend_from_slice(&1i16.to_be_bytes()); // acks
    frame.extend_from_slice(&5000i32.to_be_bytes());
    frame.extend_from_slice(&1i32.to_be_bytes());
    frame.extend_from_slice(&(b"legacy".len() as i16).to_be_bytes());
    frame.extend_from_slice(b"legacy");
    frame.extend_from_slice(&1i32.to_be_bytes());
    frame.extend_from_slice(&0i32.to_be_bytes());
    frame.extend_from_slice(&(set.len() as i32).to_be_bytes());
    frame.extend_from_slice(&set);
    let mut buf = (frame.len() as i32).to_be_bytes().to_vec();
    buf.extend_from_slice(&frame);
    conn.send_raw(&buf).map_err(|e| format!("sending: {e}"))?;
    match conn.read_frame().map_err(|e| format!("reading: {e}"))? {
        ReadOutcome::Closed => Ok(()),
        ReadOutcome::Frame(_) => Err("answered; Kafka closes the connection".into()),
        ReadOutcome::TimedOut => Err("neither answered nor closed within 30 s".into()),
    }
}

/// The controller listener serves fewer APIs (ApiVersions up to 4): a newer ApiVersions, one the codec can
/// decode, must still get UNSUPPORTED_VERSION with the listener's ranges (so Kafka's tools retry lower, as
/// `kafka-metadata-quorum --bootstrap-controller` does) rather than a closed connection.
#[test]
fn a_newer_api_versions_on_the_controller_listener_is_answered_unsupported() {
    let broker = Broker::builder()
        .rust_log("warn")
        .start()
        .expect("broker starts");
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], broker.controller_port()));
    let mut conn = Connection::connect(addr, Duration::from_secs(10)).expect("connect");
    conn.set_read_timeout(Duration::from_secs(30))
        .expect("read timeout");
    let newest = ApiKey::ApiVersions.valid_versions().max;
    let request = RequestKind::ApiVersions(
        ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("api-versions-served"))
            .with_client_software_version(StrBytes::from_static_str("1.0")),
    );
    // ApiVersions answers always use header v0 and, for an unsupported version, the v0 body.
    let header = RequestHeader::default()
        .with_request_api_key(ApiKey::ApiVersions as i16)
        .with_request_api_version(newest)
        .with_correlation_id(5)
        .with_client_id(Some(StrBytes::from_static_str("api-versions-served")));
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&[0, 0, 0, 0]);
    header
        .encode(&mut buf, ApiKey::ApiVersions.request_header_version(newest))
        .expect("header");
    request.encode(&mut buf, newest).expect("body");
    let len = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    conn.send_raw(&buf).expect("send");
    let ReadOutcome::Frame(mut payload) = conn.read_frame().expect("read") else {
        panic!("the controller listener closed the connection instead of answering");
    };
    let header = ResponseHeader::decode(&mut payload, 0).expect("response header");
    assert_eq!(header.correlation_id, 5);
    let body =
        kafka_protocol::messages::ApiVersionsResponse::decode(&mut payload, 0).expect("body");
    assert_eq!(body.error_code, 35, "UNSUPPORTED_VERSION");
    let served = body
        .api_keys
        .iter()
        .find(|k| k.api_key == ApiKey::ApiVersions as i16)
        .expect("ApiVersions range listed");
    assert!(served.max_version < newest);
}
