//! Hostile or broken bytes on raw TCP connections: the broker answers or closes each such connection,
//! logs the problem, and keeps serving a well-behaved client at the same time.

mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, BytesMut};
use kafka_protocol::messages::{ApiVersionsResponse, ResponseHeader};
use kafka_protocol::protocol::Decodable;
use kraftwerk_tests::wire::{Connection, ReadOutcome};
use kraftwerk_tests::Broker;
use support::{consume_all, create_topic, flush, recording_producer, send};

/// How long a broker may take to answer or close a bad connection.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// Kafka's error code for an unsupported API version.
const UNSUPPORTED_VERSION: i16 = 35;
/// Words one of which a log line about a rejected connection is expected to contain.
const ERROR_WORDS: [&str; 12] = [
    "error",
    "not kafka protocol",
    "cannot decode",
    "invalid",
    "unsupported",
    "too large",
    "exceed",
    "malformed",
    "unknown",
    "eof",
    "truncat",
    "refus",
];

/// A well-behaved client producing in a loop while the bad inputs arrive.
struct NormalClient {
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicU64>,
    handle: std::thread::JoinHandle<Result<(), String>>,
}

impl NormalClient {
    fn start(bootstrap: String) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(AtomicU64::new(0));
        let handle = {
            let (stop, acked) = (Arc::clone(&stop), Arc::clone(&acked));
            std::thread::spawn(move || {
                let (producer, recorder) = recording_producer(&bootstrap, &[("linger.ms", "0")]);
                let mut seq = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    send(
                        &producer,
                        "normal",
                        seq,
                        b"k",
                        format!("v{seq}").as_bytes(),
                        None,
                    )
                    .map_err(|e| format!("enqueue #{seq}: {e}"))?;
                    flush(&producer)?;
                    let (ok, failed) = recorder.snapshot();
                    if let Some((seq, e)) = failed.first() {
                        return Err(format!("delivery #{seq} failed: {e}"));
                    }
                    acked.store(ok.len() as u64, Ordering::Relaxed);
                    seq += 1;
                    std::thread::sleep(Duration::from_millis(20));
                }
                Ok(())
            })
        };
        NormalClient {
            stop,
            acked,
            handle,
        }
    }

    fn acked(&self) -> u64 {
        self.acked.load(Ordering::Relaxed)
    }

    fn finish(self) -> Result<u64, String> {
        self.stop.store(true, Ordering::Relaxed);
        let acked = Arc::clone(&self.acked);
        match self.handle.join() {
            Ok(Ok(())) => Ok(acked.load(Ordering::Relaxed)),
            Ok(Err(e)) => Err(e),
            Err(_) => Err("normal client thread panicked".into()),
        }
    }
}

/// How the broker treated one bad connection.
#[derive(Debug)]
enum Treatment {
    Answered(bytes::Bytes),
    Closed,
}

/// Sends `bytes`, optionally half-closes, then waits for an answer or a close.
fn send_bad(broker: &Broker, bytes: &[u8], half_close: bool) -> Result<Treatment, String> {
    let mut conn = Connection::connect(broker.addr(), ANSWER_TIMEOUT).map_err(|e| e.to_string())?;
    conn.send_raw(bytes).map_err(|e| e.to_string())?;
    if half_close {
        conn.shutdown_write().map_err(|e| e.to_string())?;
    }
    conn.set_read_timeout(ANSWER_TIMEOUT)
        .map_err(|e| e.to_string())?;
    match conn.read_frame().map_err(|e| e.to_string())? {
        ReadOutcome::Frame(f) => Ok(Treatment::Answered(f)),
        ReadOutcome::Closed => Ok(Treatment::Closed),
        ReadOutcome::TimedOut => Err(format!(
            "neither answered nor closed within {ANSWER_TIMEOUT:?}"
        )),
    }
}

/// Waits briefly for the log to grow past `from` with a line naming a problem.
fn log_mentions_error_since(broker: &Broker, from: usize) -> Option<String> {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let log = broker.log_contents();
        let new = log.get(from..).unwrap_or_default();
        if let Some(line) = new
            .lines()
            .find(|l| ERROR_WORDS.iter().any(|w| l.to_lowercase().contains(w)))
        {
            return Some(line.to_string());
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A frame with a valid size prefix around `payload`.
fn framed(payload: &[u8]) -> Vec<u8> {
    let mut v = (payload.len() as i32).to_be_bytes().to_vec();
    v.extend_from_slice(payload);
    v
}

/// ApiVersions at `version` as a future client would send it: flexible header v2 with client id and
/// empty tagged fields, then a v3-shaped body (client software name and version, tagged fields).
fn api_versions_request(version: i16, correlation_id: i32) -> Vec<u8> {
    let mut b = BytesMut::new();
    b.put_i16(18);
    b.put_i16(version);
    b.put_i32(correlation_id);
    b.put_i16(4);
    b.put_slice(b"test");
    b.put_u8(0); // header tagged fields
    b.put_u8(5); // compact string "kcat": length + 1
    b.put_slice(b"kcat");
    b.put_u8(4); // compact string "1.7"
    b.put_slice(b"1.7");
    b.put_u8(0); // body tagged fields
    framed(&b)
}

#[test]
fn broker_survives_bad_input_while_serving_a_normal_client() {
    let mut broker = Broker::start().unwrap_or_else(|e| panic!("{e}"));
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "normal", 1, &[]);
    let client = NormalClient::start(bootstrap.clone());
    let deadline = Instant::now() + Duration::from_secs(60);
    while client.acked() < 5 {
        assert!(
            Instant::now() < deadline,
            "normal client got no acks before the bad input"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // A connection announcing a 2 GiB frame and then idling must not stall anyone else.
    let mut idle_huge =
        Connection::connect(broker.addr(), ANSWER_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    let log_len = broker.log_contents().len();
    idle_huge
        .send_raw(&[0x7f, 0xff, 0xff, 0xff, 0, 0])
        .unwrap_or_else(|e| panic!("{e}"));
    let mut failures = Vec::new();
    // Wait for its log line first, so each case below sees only its own.
    match log_mentions_error_since(&broker, log_len) {
        Some(line) => eprintln!("idle 2 GiB connection\n  logged: {line}"),
        None => failures.push("idle 2 GiB connection: no log line mentions the problem".into()),
    }

    let cases: Vec<(&str, Vec<u8>, bool, bool)> = vec![
        // (name, bytes, half-close after sending, must log an error)
        (
            "http request (size prefix ~1.2 GB)",
            b"GET / HTTP/1.1\r\nHost: kraftwerk\r\n\r\n".to_vec(),
            false,
            true,
        ),
        (
            "garbage frame with unknown api key",
            framed(&[
                0x7f, 0x7f, 0, 0, 0, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4,
            ]),
            false,
            true,
        ),
        (
            "garbage frame too short for a header",
            framed(&[0x00, 0x12]),
            false,
            true,
        ),
        (
            "2 GiB size prefix 0x7fffffff",
            vec![0x7f, 0xff, 0xff, 0xff, 0x00, 0x12, 0x00, 0x00],
            false,
            true,
        ),
        (
            "negative size prefix",
            vec![0xff, 0xff, 0xff, 0xfe, 1, 2, 3],
            false,
            true,
        ),
        (
            "truncated frame then close",
            {
                let mut v = api_versions_request(3, 9);
                v.truncate(10);
                v.splice(0..4, 100i32.to_be_bytes());
                v
            },
            true,
            // A client vanishing mid-request is routine (Kafka logs it below INFO): survival is
            // the check here, not a log line.
            false,
        ),
    ];
    for (name, bytes, half_close, must_log) in cases {
        let log_len = broker.log_contents().len();
        match send_bad(&broker, &bytes, half_close) {
            Ok(treatment) => eprintln!("{name}: {treatment:?}"),
            Err(e) => failures.push(format!("{name}: {e}")),
        }
        if must_log {
            match log_mentions_error_since(&broker, log_len) {
                Some(line) => eprintln!("  logged: {line}"),
                None => failures.push(format!("{name}: no log line mentions the problem")),
            }
        }
        if !broker.is_running() {
            panic!("broker died after {name}: {:?}", broker.try_exit_status());
        }
    }

    // ApiVersions at a version from the future: Kafka answers v0 with UNSUPPORTED_VERSION and its
    // own version ranges so the client can retry at a version both support.
    match send_bad(&broker, &api_versions_request(999, 77), false) {
        Ok(Treatment::Answered(mut frame)) => {
            match ResponseHeader::decode(&mut frame, 0)
                .and_then(|h| ApiVersionsResponse::decode(&mut frame, 0).map(|b| (h, b)))
            {
                Ok((header, body)) => {
                    if header.correlation_id != 77 {
                        failures.push(format!(
                            "ApiVersions v999: correlation id {}",
                            header.correlation_id
                        ));
                    }
                    if body.error_code != UNSUPPORTED_VERSION {
                        failures.push(format!("ApiVersions v999: error code {}", body.error_code));
                    }
                    if !body
                        .api_keys
                        .iter()
                        .any(|k| k.api_key == 18 && k.min_version == 0)
                    {
                        failures.push(format!(
                            "ApiVersions v999: no ApiVersions range in {:?}",
                            body.api_keys
                        ));
                    }
                    if frame.has_remaining() {
                        failures.push(format!(
                            "ApiVersions v999: {} trailing bytes (not a v0 body)",
                            frame.remaining()
                        ));
                    }
                }
                Err(e) => failures.push(format!("ApiVersions v999: undecodable v0 answer: {e:#}")),
            }
        }
        Ok(Treatment::Closed) => {
            failures.push("ApiVersions v999: closed instead of answering".into())
        }
        Err(e) => failures.push(format!("ApiVersions v999: {e}")),
    }

    // The 2 GiB connection is closed by now (or at least did not block the rest).
    match idle_huge.read_frame() {
        Ok(ReadOutcome::Closed) => {}
        other => failures.push(format!(
            "idle 2 GiB connection: expected close, got {other:?}"
        )),
    }

    // The normal client kept getting acknowledgements throughout.
    let before = client.acked();
    std::thread::sleep(Duration::from_millis(500));
    let acked = client
        .finish()
        .unwrap_or_else(|e| panic!("normal client failed during bad input: {e}"));
    assert!(
        acked > before,
        "normal client stalled ({before} -> {acked} acks)"
    );
    assert!(
        broker.is_running(),
        "broker died: {:?}",
        broker.try_exit_status()
    );
    broker
        .metadata()
        .unwrap_or_else(|e| panic!("metadata after bad input: {e}"));
    let log = consume_all(&bootstrap, "normal", Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(log.len() as u64, acked, "records in 'normal' vs acks");
    assert!(
        failures.is_empty(),
        "bad-input handling:\n{}",
        failures.join("\n")
    );
}

/// A client flooding the broker with malformed requests does not flood the log: lines about one address's bad
/// input are WARN, at most 20 per 10 s, and the next line after the window says how many were suppressed.
#[test]
fn a_flood_of_bad_requests_is_logged_within_a_budget() {
    let mut broker = Broker::start().unwrap_or_else(|e| panic!("{e}"));
    let garbage = framed(&[0x7f, 0x7f, 0, 0, 0, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef]);
    let lines = |broker: &Broker| {
        broker
            .log_contents()
            .lines()
            .filter(|l| l.contains("closing connection: cannot decode request"))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let started = Instant::now();
    const FLOOD: usize = 300;
    for i in 0..FLOOD {
        if let Err(e) = send_bad(&broker, &garbage, false) {
            panic!("bad request #{i}: {e}");
        }
    }
    let windows = started.elapsed().as_secs() / 10 + 1;
    std::thread::sleep(Duration::from_millis(500));
    let logged = lines(&broker);
    assert!(
        !logged.is_empty() && logged.len() as u64 <= 20 * windows,
        "{} lines for {FLOOD} bad requests in {windows} window(s)",
        logged.len()
    );
    assert!(
        logged
            .iter()
            .all(|l| l.contains("WARN") && !l.contains("ERROR")),
        "a peer's bad input is a warning, not a broker error: {:?}",
        logged.first()
    );
    // After the window, the next line carries the count of what was left out.
    std::thread::sleep(Duration::from_secs(11));
    send_bad(&broker, &garbage, false).unwrap_or_else(|e| panic!("{e}"));
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let last = lines(&broker).pop().unwrap_or_default();
        if last.contains("similar lines from 127.0.0.1 suppressed") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no suppressed count; last line: {last}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(broker.is_running());
}
