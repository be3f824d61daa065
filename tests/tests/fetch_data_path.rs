//! The fetch data path: a partition's records are sent straight from its segment files (sendfile on a
//! PLAINTEXT listener, read into the TLS layer's buffer on an SSL one), with the partition lock held only to
//! snapshot the segments. Consumers over both listeners read a log that rolls a segment every 16 KiB, with
//! fetch limits that cut batches, at the lowest and highest Fetch versions with topic names and with topic ids;
//! then while a producer keeps writing and retention deletes the oldest segments under the readers. Every
//! record's key and value are checked against what was produced at that offset, and every batch's CRC.
//! librdkafka (PLAINTEXT) and kcat (SSL) read the rolled log as well.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    BrokerId, FetchRequest, MetadataRequest, ProduceRequest, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, HeaderVersion, Request, StrBytes};
use kraftwerk_storage::batch::{records, validate_stored_batch, BatchBuilder, BatchHeader};
use kraftwerk_tests::pki::{write_file, TestCa};
use kraftwerk_tests::ports::free_ports;
use kraftwerk_tests::wire::encode_request;
use kraftwerk_tests::Broker;
use rustls::pki_types::{CertificateDer, ServerName};
use support::consume_all;

const OFFSET_OUT_OF_RANGE: i16 = 1;
/// The key of the record at `offset`: its offset in ASCII (kcat prints it as it is).
fn key_of(offset: i64) -> Vec<u8> {
    offset.to_string().into_bytes()
}

/// The value of the record at `offset`: 100 to 3,100 printable bytes that depend on the offset.
fn value_of(offset: i64) -> Vec<u8> {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let len = 100 + (offset as usize).wrapping_mul(7919) % 3000;
    (0..len)
        .map(|i| ALPHABET[(offset as usize).wrapping_mul(31).wrapping_add(i) % ALPHABET.len()])
        .collect()
}

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

/// One request over any stream (plain TCP or TLS).
fn request<S: Read + Write, R: Request>(stream: &mut S, version: i16, body: &R) -> R::Response {
    let frame = encode_request(7, version, body).unwrap_or_else(|e| panic!("encode: {e}"));
    stream
        .write_all(&frame)
        .unwrap_or_else(|e| panic!("send: {e}"));
    stream.flush().unwrap_or_else(|e| panic!("flush: {e}"));
    let mut len = [0u8; 4];
    stream
        .read_exact(&mut len)
        .unwrap_or_else(|e| panic!("read: {e}"));
    let mut payload = vec![0u8; u32::from_be_bytes(len) as usize];
    stream
        .read_exact(&mut payload)
        .unwrap_or_else(|e| panic!("read: {e}"));
    let mut payload = Bytes::from(payload);
    let header = ResponseHeader::decode(
        &mut payload,
        <R::Response as HeaderVersion>::header_version(version),
    )
    .unwrap_or_else(|e| panic!("header: {e}"));
    assert_eq!(header.correlation_id, 7);
    R::Response::decode(&mut payload, version).unwrap_or_else(|e| panic!("body: {e}"))
}

fn create_topic<S: Read + Write>(stream: &mut S, topic: &str, configs: &[(&str, &str)]) {
    let req = kraftwerk_tests::wire::create_one_topic_request(topic, configs);
    let resp = request(stream, 5, &req);
    assert_eq!(resp.topics[0].error_code, 0, "create {topic}");
}

fn topic_id<S: Read + Write>(stream: &mut S, topic: &str) -> uuid::Uuid {
    let mut req = MetadataRequest::default();
    req.topics = Some(vec![
        MetadataRequestTopic::default().with_name(Some(name(topic)))
    ]);
    let resp = request(stream, 12, &req);
    resp.topics[0].topic_id
}

/// Produces one batch of `count` records whose contents are those of the offsets they will get; returns the
/// next offset.
fn produce_batch<S: Read + Write>(stream: &mut S, topic: &str, next: i64, count: usize) -> i64 {
    // Current timestamps: time-based retention must not delete the log.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let mut b = BatchBuilder::new(0, -1);
    for i in 0..count as i64 {
        let offset = next + i;
        b.push(now, Some(&key_of(offset)), Some(&value_of(offset)), &[])
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let mut pd = PartitionProduceData::default();
    pd.index = 0;
    pd.records = Some(Bytes::from(b.build()));
    let mut td = TopicProduceData::default();
    td.name = name(topic);
    td.partition_data = vec![pd];
    let mut req = ProduceRequest::default();
    req.acks = 1;
    req.timeout_ms = 30_000;
    req.topic_data = vec![td];
    let resp = request(stream, 9, &req);
    let p = &resp.responses[0].partition_responses[0];
    assert_eq!(p.error_code, 0, "produce to {topic}");
    assert_eq!(
        p.base_offset, next,
        "a single producer's offsets are predictable"
    );
    next + count as i64
}

/// Produces batches of 1 to 8 records from `next` until `until` bytes of values were written.
fn produce_bytes<S: Read + Write>(stream: &mut S, topic: &str, mut next: i64, until: usize) -> i64 {
    let mut written = 0;
    while written < until {
        let count = 1 + (next as usize % 8);
        written += (next..next + count as i64)
            .map(|o| value_of(o).len())
            .sum::<usize>();
        next = produce_batch(stream, topic, next, count);
    }
    next
}

fn earliest<S: Read + Write>(stream: &mut S, topic: &str) -> i64 {
    let req = kraftwerk_tests::wire::list_offsets_request(topic, -2);
    request(stream, 7, &req).topics[0].partitions[0].offset
}

/// How a wire reader asks: the Fetch version, the partition limit, the topic id (v13+), and a pause after
/// each fetch (a slow reader falls behind retention).
#[derive(Clone, Copy, Debug)]
struct FetchShape {
    version: i16,
    partition_max_bytes: i32,
    topic_id: uuid::Uuid,
    pause: Duration,
}

/// What a reader saw.
#[derive(Debug, Default)]
struct ReadStats {
    records: u64,
    fetches: u64,
    /// Fetches that ended with part of a batch (cut by the limit).
    cut_tails: u64,
    /// Times the offset fell behind the log start (retention deleted it) and the reader moved up.
    resets: u64,
}

/// Checks every batch (CRC, offsets) and record (key and value of its offset) of one fetch's records from
/// `offset`; returns the next offset and whether the bytes ended with part of a batch.
fn check_records(mut data: &[u8], mut offset: i64, records_seen: &mut u64) -> (i64, bool) {
    while !data.is_empty() {
        let Ok(header) = BatchHeader::parse(data) else {
            return (offset, true);
        };
        let size = header.total_size().unwrap_or_else(|e| panic!("{e}"));
        if size > data.len() {
            return (offset, true);
        }
        let batch = &data[..size];
        validate_stored_batch(batch, usize::MAX)
            .unwrap_or_else(|e| panic!("batch at offset {}: {e}", header.base_offset));
        for record in records(batch).unwrap_or_else(|e| panic!("{e}")) {
            let record = record.unwrap_or_else(|e| panic!("{e}"));
            if record.offset < offset {
                continue; // the batch holding the fetch offset starts before it
            }
            assert_eq!(record.offset, offset, "records skipped");
            assert_eq!(
                record.key,
                Some(key_of(offset).as_slice()),
                "key at {offset}"
            );
            assert!(
                record.value == Some(value_of(offset).as_slice()),
                "value at offset {offset} differs from what was produced"
            );
            offset += 1;
            *records_seen += 1;
        }
        data = &data[size..];
    }
    (offset, false)
}

/// Reads `topic` from its earliest offset until `end` is read (`end` may grow while it reads), checking every
/// record.
fn read_until<S: Read + Write>(
    stream: &mut S,
    topic: &str,
    shape: FetchShape,
    end: &AtomicI64,
    producing: &AtomicBool,
) -> ReadStats {
    let mut stats = ReadStats::default();
    let mut offset = earliest(stream, topic);
    let deadline = Instant::now() + Duration::from_secs(180);
    while producing.load(Ordering::Acquire) || offset < end.load(Ordering::Acquire) {
        assert!(
            Instant::now() < deadline,
            "{shape:?}: stuck at {offset} of {}",
            end.load(Ordering::Acquire)
        );
        let mut p = FetchPartition::default();
        p.partition = 0;
        p.fetch_offset = offset;
        p.partition_max_bytes = shape.partition_max_bytes;
        p.log_start_offset = -1;
        p.current_leader_epoch = -1;
        let mut t = FetchTopic::default();
        if shape.version >= 13 {
            t.topic_id = shape.topic_id;
        } else {
            t.topic = name(topic);
        }
        t.partitions = vec![p];
        let mut req = FetchRequest::default();
        req.replica_id = BrokerId(-1);
        req.max_wait_ms = 100;
        req.min_bytes = 1;
        req.max_bytes = 1 << 20;
        req.session_epoch = -1;
        req.topics = vec![t];
        let resp = request(stream, shape.version, &req);
        stats.fetches += 1;
        assert_eq!(resp.error_code, 0);
        let pd = &resp.responses[0].partitions[0];
        if pd.error_code == OFFSET_OUT_OF_RANGE {
            let start = earliest(stream, topic);
            assert!(
                start > offset,
                "{shape:?}: out of range at {offset}, log start {start}"
            );
            offset = start;
            stats.resets += 1;
            continue;
        }
        assert_eq!(pd.error_code, 0, "{shape:?}: fetch at {offset}");
        let data = pd.records.clone().unwrap_or_default();
        let (next, cut) = check_records(&data, offset, &mut stats.records);
        assert!(
            data.is_empty() || next > offset,
            "{shape:?}: {} bytes at {offset} hold no whole batch",
            data.len()
        );
        stats.cut_tails += u64::from(cut);
        offset = next;
        std::thread::sleep(shape.pause);
    }
    assert_eq!(offset, end.load(Ordering::Acquire));
    stats
}

type TlsStream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

fn tls_config(ca: &CertificateDer<'static>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(ca.clone())
        .unwrap_or_else(|e| panic!("adding the root: {e}"));
    Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap_or_else(|e| panic!("{e}"))
        .with_root_certificates(roots)
        .with_no_client_auth(),
    )
}

fn connect_plain(port: u16) -> TcpStream {
    let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap_or_else(|e| panic!("connect: {e}"));
    tcp.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap_or_else(|e| panic!("{e}"));
    tcp
}

fn connect_tls(port: u16, config: Arc<rustls::ClientConfig>) -> TlsStream {
    let tcp = connect_plain(port);
    let name = ServerName::try_from("127.0.0.1").unwrap_or_else(|e| panic!("{e}"));
    let conn = rustls::ClientConnection::new(config, name).unwrap_or_else(|e| panic!("{e}"));
    rustls::StreamOwned::new(conn, tcp)
}

/// A reader on either listener.
enum Reader {
    Plain(TcpStream),
    Tls(Box<TlsStream>),
}

impl Reader {
    fn read_until(
        &mut self,
        topic: &str,
        shape: FetchShape,
        end: &AtomicI64,
        producing: &AtomicBool,
    ) -> ReadStats {
        match self {
            Reader::Plain(s) => read_until(s, topic, shape, end, producing),
            Reader::Tls(s) => read_until(s.as_mut(), topic, shape, end, producing),
        }
    }
}

struct Setup {
    broker: Broker,
    plain_port: u16,
    ssl_port: u16,
    tls: Arc<rustls::ClientConfig>,
    ca_path: String,
    _dir: tempfile::TempDir,
}

fn setup() -> Setup {
    let ca = TestCa::new();
    let server = ca.issue("broker", &["127.0.0.1", "localhost"], None);
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let keystore = write_file(
        dir.path(),
        "broker.pem",
        &format!("{}{}", server.key_pem, server.cert_pem),
    );
    let ca_path = write_file(dir.path(), "ca.pem", &ca.pem());
    let ssl_port = free_ports(1).unwrap_or_else(|e| panic!("{e}"))[0];
    let broker = Broker::builder()
        .prop(
            "listeners",
            format!(
                "PLAINTEXT://127.0.0.1:{{port}},SSL://127.0.0.1:{ssl_port},CONTROLLER://127.0.0.1:{{controller_port}}"
            ),
        )
        .prop(
            "advertised.listeners",
            format!("PLAINTEXT://127.0.0.1:{{port}},SSL://127.0.0.1:{ssl_port}"),
        )
        .prop(
            "listener.security.protocol.map",
            "PLAINTEXT:PLAINTEXT,SSL:SSL,CONTROLLER:PLAINTEXT",
        )
        .prop("inter.broker.listener.name", "PLAINTEXT")
        .prop("ssl.keystore.type", "PEM")
        .prop("ssl.keystore.location", keystore)
        .prop("log.retention.check.interval.ms", "100")
        .start()
        .unwrap_or_else(|e| panic!("broker starts: {e}"));
    let plain_port = broker.addr().port();
    Setup {
        broker,
        plain_port,
        ssl_port,
        tls: tls_config(&ca.der()),
        ca_path,
        _dir: dir,
    }
}

#[test]
fn consumers_read_every_record_across_segment_rolls_and_retention_over_plaintext_and_ssl() {
    let s = setup();
    let mut admin = connect_plain(s.plain_port);

    // A log of ~100 segments, read whole by every kind of reader.
    create_topic(
        &mut admin,
        "rolled",
        &[("segment.bytes", "16384"), ("retention.bytes", "-1")],
    );
    let end = produce_bytes(&mut admin, "rolled", 0, 1_500_000);
    let segments = std::fs::read_dir(find_partition_dir(s.broker.dir(), "rolled-0"))
        .unwrap_or_else(|e| panic!("partition dir: {e}"))
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".log"))
        })
        .count();
    assert!(segments > 50, "only {segments} segments");
    let id = topic_id(&mut admin, "rolled");
    let end_now = AtomicI64::new(end);
    let done = AtomicBool::new(false);
    for version in [4, 11, 12, 16, 18] {
        for limit in [1, 1000, 7000, 65_536, 1 << 20] {
            let shape = FetchShape {
                version,
                partition_max_bytes: limit,
                topic_id: id,
                pause: Duration::ZERO,
            };
            for mut reader in [
                Reader::Plain(connect_plain(s.plain_port)),
                Reader::Tls(Box::new(connect_tls(s.ssl_port, s.tls.clone()))),
            ] {
                let stats = reader.read_until("rolled", shape, &end_now, &done);
                assert_eq!(stats.records, end as u64, "{shape:?}");
                if limit == 7000 {
                    assert!(
                        stats.cut_tails > 0,
                        "a 7000-byte limit cuts batches: {stats:?}"
                    );
                }
            }
        }
    }

    // librdkafka over PLAINTEXT, with CRC checks.
    let log = consume_all(&s.broker.bootstrap(), "rolled", Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(log.len(), end as usize);
    for ((_, offset), record) in &log {
        assert_eq!(record.key.as_deref(), Some(key_of(*offset).as_slice()));
        assert!(record.value.as_deref() == Some(value_of(*offset).as_slice()));
    }

    // kcat over SSL.
    // Without cargo's LD_LIBRARY_PATH, which finds rdkafka-sys's own librdkafka (built without OpenSSL).
    let out = Command::new("kcat")
        .env_remove("LD_LIBRARY_PATH")
        .args([
            "-C",
            "-b",
            &format!("127.0.0.1:{}", s.ssl_port),
            "-X",
            "security.protocol=SSL",
            "-X",
            &format!("ssl.ca.location={}", s.ca_path),
            "-X",
            "check.crcs=true",
            "-t",
            "rolled",
            "-o",
            "beginning",
            "-e",
            "-q",
            "-f",
            "%o|%k|%s\n",
        ])
        .output()
        .unwrap_or_else(|e| panic!("running kcat: {e}"));
    assert!(
        out.status.success(),
        "kcat: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap_or_else(|e| panic!("{e}"));
    let mut count = 0i64;
    for line in text.lines() {
        let mut fields = line.splitn(3, '|');
        let offset: i64 = fields
            .next()
            .and_then(|o| o.parse().ok())
            .unwrap_or_else(|| panic!("kcat line {line:.80}"));
        assert_eq!(offset, count);
        assert_eq!(
            fields.next().map(str::as_bytes),
            Some(key_of(offset).as_slice())
        );
        assert!(fields.next().map(str::as_bytes) == Some(value_of(offset).as_slice()));
        count += 1;
    }
    assert_eq!(count, end);

    // Retention deleting segments under readers that follow a producer.
    create_topic(
        &mut admin,
        "retained",
        &[
            ("segment.bytes", "16384"),
            ("retention.bytes", "65536"),
            ("segment.ms", "3600000"),
        ],
    );
    let id = topic_id(&mut admin, "retained");
    let end = Arc::new(AtomicI64::new(0));
    let producing = Arc::new(AtomicBool::new(true));
    // Fast readers keep up; slow ones fall behind the log start and move up to it, reading segments as
    // retention deletes them.
    let slow = Duration::from_millis(50);
    let readers: Vec<_> = [
        (12, 20_000, Duration::ZERO),
        (4, 3000, slow),
        (18, 1 << 20, Duration::ZERO),
        (13, 3000, slow),
    ]
    .into_iter()
    .flat_map(|(version, limit, pause)| {
        [
            (version, limit, pause, false),
            (version, limit, pause, true),
        ]
    })
    .map(|(version, limit, pause, tls)| {
        let shape = FetchShape {
            version,
            partition_max_bytes: limit,
            topic_id: id,
            pause,
        };
        let mut reader = if tls {
            Reader::Tls(Box::new(connect_tls(s.ssl_port, s.tls.clone())))
        } else {
            Reader::Plain(connect_plain(s.plain_port))
        };
        let (end, producing) = (end.clone(), producing.clone());
        std::thread::spawn(move || {
            let stats = reader.read_until("retained", shape, &end, &producing);
            (shape, tls, stats)
        })
    })
    .collect();
    let mut next = 0;
    for _ in 0..60 {
        next = produce_bytes(&mut admin, "retained", next, 40_000);
        end.store(next, Ordering::Release);
        std::thread::sleep(Duration::from_millis(20));
    }
    producing.store(false, Ordering::Release);
    assert!(
        earliest(&mut admin, "retained") > 0,
        "retention deleted nothing"
    );
    let mut resets = 0;
    for reader in readers {
        let (shape, tls, stats) = reader.join().unwrap_or_else(|_| panic!("a reader failed"));
        println!("retained, tls={tls}, {shape:?}: {stats:?}");
        assert!(stats.records > 0, "{shape:?} tls={tls} read nothing");
        resets += stats.resets;
    }
    assert!(resets > 0, "no slow reader fell behind retention");
    assert!(s
        .broker
        .log_contents()
        .lines()
        .all(|l| !l.contains("ERROR")));
}

/// The directory of `partition` under the broker's data directory, wherever the harness put it.
fn find_partition_dir(root: &std::path::Path, partition: &str) -> std::path::PathBuf {
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n == partition) {
                    return path;
                }
                stack.push(path);
            }
        }
    }
    panic!("no {partition} under {}", root.display());
}
