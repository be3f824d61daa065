//! Every accepted setting is honoured or refused (issue 9): a real broker stops at start on a key it does not
//! honour, naming the key and where it came from; topic `compression.type` recompresses what producers send;
//! dynamic broker configs (`kafka-configs --entity-type brokers`) change behaviour at once, per broker and as the
//! cluster default, and read-only ones are refused with Kafka's message; CreateTime bounds refuse records;
//! clients cannot write control or transactional batches; `num.network.threads` + `num.io.threads` size the
//! worker pool and `socket.*.buffer.bytes` reach the connections.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::produce_response::PartitionProduceResponse;
use kafka_protocol::messages::{
    DescribeConfigsRequest, IncrementalAlterConfigsRequest, ProduceRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kraftwerk_storage::batch::{
    decompressed_copy, records, BatchBuilder, BatchHeader, Compression,
};
use kraftwerk_tests::broker::Broker;
use kraftwerk_tests::wire::Connection;

/// How long a read waits for the broker.
const READ_TIMEOUT: Duration = Duration::from_secs(30);
const MESSAGE_TOO_LARGE: i16 = 10;
const INVALID_TIMESTAMP: i16 = 32;
const INVALID_CONFIG: i16 = 40;
/// What Kafka's receiving broker answers for a broker config it cannot change or parse.
const INVALID_REQUEST: i16 = 42;
const INVALID_TXN_STATE: i16 = 48;
const INVALID_RECORD: i16 = 87;
const BROKER: i8 = 4;
const TOPIC: i8 = 2;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn create_topic(conn: &mut Connection, topic: &str, configs: &[(&str, &str)]) -> (i16, String) {
    let req = kraftwerk_tests::wire::create_one_topic_request(topic, configs);
    let resp = conn.request(5, &req).expect("create topics");
    let t = &resp.topics[0];
    (
        t.error_code,
        t.error_message
            .as_ref()
            .map(|m| m.to_string())
            .unwrap_or_default(),
    )
}

fn create(conn: &mut Connection, topic: &str, configs: &[(&str, &str)]) {
    let (code, message) = create_topic(conn, topic, configs);
    assert_eq!(code, 0, "create {topic}: {message}");
}

/// IncrementalAlterConfigs of one resource: (key, Some(value)) sets, (key, None) deletes.
fn alter(
    conn: &mut Connection,
    resource_type: i8,
    resource: &str,
    ops: &[(&str, Option<&str>)],
) -> (i16, String) {
    let mut r = AlterConfigsResource::default();
    r.resource_type = resource_type;
    r.resource_name = StrBytes::from_string(resource.to_string());
    r.configs = ops
        .iter()
        .map(|(k, v)| {
            let mut c = AlterableConfig::default();
            c.name = StrBytes::from_string(k.to_string());
            c.config_operation = if v.is_some() { 0 } else { 1 };
            c.value = v.map(|v| StrBytes::from_string(v.to_string()));
            c
        })
        .collect();
    let mut req = IncrementalAlterConfigsRequest::default();
    req.resources = vec![r];
    let resp = conn.request(1, &req).expect("incremental alter configs");
    let r = &resp.responses[0];
    (
        r.error_code,
        r.error_message
            .as_ref()
            .map(|m| m.to_string())
            .unwrap_or_default(),
    )
}

/// DescribeConfigs of one resource: key -> (value, source).
fn describe(
    conn: &mut Connection,
    resource_type: i8,
    resource: &str,
) -> std::collections::BTreeMap<String, (String, i8)> {
    let mut r = DescribeConfigsResource::default();
    r.resource_type = resource_type;
    r.resource_name = StrBytes::from_string(resource.to_string());
    r.configuration_keys = None;
    let mut req = DescribeConfigsRequest::default();
    req.resources = vec![r];
    let resp = conn.request(4, &req).expect("describe configs");
    assert_eq!(resp.results[0].error_code, 0);
    resp.results[0]
        .configs
        .iter()
        .map(|c| {
            (
                c.name.to_string(),
                (
                    c.value.as_ref().map(|v| v.to_string()).unwrap_or_default(),
                    c.config_source,
                ),
            )
        })
        .collect()
}

fn batch_of(codec: Compression, timestamps: &[i64], value_len: usize) -> bytes::Bytes {
    let value = vec![b'v'; value_len];
    let mut b = BatchBuilder::new(0, -1).compression(codec);
    for (i, ts) in timestamps.iter().enumerate() {
        let key = format!("key-{i}");
        b.push(*ts, Some(key.as_bytes()), Some(&value), &[])
            .expect("record fits");
    }
    bytes::Bytes::from(b.build())
}

fn produce(conn: &mut Connection, topic: &str, records: bytes::Bytes) -> PartitionProduceResponse {
    let mut pd = PartitionProduceData::default();
    pd.index = 0;
    pd.records = Some(records);
    let mut td = TopicProduceData::default();
    td.name = name(topic);
    td.partition_data = vec![pd];
    let mut req = ProduceRequest::default();
    req.acks = 1;
    req.timeout_ms = 30_000;
    req.topic_data = vec![td];
    let resp = conn.request(9, &req).expect("produce");
    resp.responses[0].partition_responses[0].clone()
}

/// The batches of `topic` from `offset`: (codec, values).
fn fetch_batches(
    conn: &mut Connection,
    topic: &str,
    offset: i64,
) -> Vec<(Compression, Vec<Vec<u8>>)> {
    let req = kraftwerk_tests::wire::fetch_request(topic, offset, 4 << 20);
    let resp = conn.request(11, &req).expect("fetch");
    let part = &resp.responses[0].partitions[0];
    assert_eq!(part.error_code, 0);
    let data = part.records.clone().unwrap_or_default();
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        let header = BatchHeader::parse(&data[pos..]).expect("batch header");
        let size = header.total_size().expect("size");
        let one = &data[pos..pos + size];
        let codec = Compression::from_attributes(header.attributes).expect("codec");
        let plain = decompressed_copy(one, 64 << 20).expect("decompress");
        let values = records(&plain)
            .expect("records")
            .map(|r| {
                r.expect("record")
                    .value
                    .map(<[u8]>::to_vec)
                    .unwrap_or_default()
            })
            .collect();
        out.push((codec, values));
        pos += size;
    }
    out
}

fn latest_offset(conn: &mut Connection, topic: &str) -> i64 {
    let req = kraftwerk_tests::wire::list_offsets_request(topic, -1);
    let resp = conn.request(7, &req).expect("list offsets");
    resp.topics[0].partitions[0].offset
}

/// A key Kraftwerk does not honour stops the start with the key and its source; keys of features that are not
/// built are accepted at Kafka's default only; Apache's sample keys start.
#[test]
fn keys_that_are_not_honoured_stop_the_start() {
    let err = Broker::builder()
        .prop("log.cleaner.io.buffer.size", "524288")
        .start()
        .err()
        .expect("an unknown key is refused")
        .to_string();
    assert!(
        err.contains("'log.cleaner.io.buffer.size'")
            && err.contains("server.properties")
            && err.contains("does not know this key"),
        "{err}"
    );
    let err = Broker::builder()
        .prop("transactional.id.expiration.ms", "1000")
        .start()
        .err()
        .expect("a feature that is not built")
        .to_string();
    assert!(
        err.contains("transactional.id.expiration.ms")
            && err.contains("transactions are not served"),
        "{err}"
    );
    let mut refused = Broker::builder()
        .cli_override("group.share.enable", "true")
        .ready_timeout(Duration::from_secs(20))
        .start();
    if let Ok(b) = refused.as_mut() {
        panic!("started with group.share.enable=true: {}", b.log_tail());
    }
    let err = refused.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        err.contains("group.share.enable") && err.contains("--override"),
        "{err}"
    );
    // Apache's config/server.properties sizes transaction and share-group topics and sets the thread and buffer
    // keys: it starts.
    let broker = Broker::builder()
        .prop("transaction.state.log.replication.factor", "1")
        .prop("transaction.state.log.min.isr", "1")
        .prop("share.coordinator.state.topic.replication.factor", "1")
        .prop("share.coordinator.state.topic.min.isr", "1")
        .prop("transactional.id.expiration.ms", "604800000")
        .prop("num.recovery.threads.per.data.dir", "1")
        .prop("log.flush.interval.messages", "10000")
        .prop("log.flush.interval.ms", "1000")
        .start()
        .expect("Apache's sample keys start");
    drop(broker);
}

/// `compression.type` recompresses batches whose codec differs (every codec in, every codec out);
/// `producer` keeps the producer's; values survive; levels are accepted within Kafka's ranges.
#[test]
fn compression_type_recompresses_on_append() {
    let broker = Broker::start().expect("broker starts");
    let mut conn = broker.connect(READ_TIMEOUT).expect("connect");
    let codecs = [
        ("uncompressed", Compression::None),
        ("gzip", Compression::Gzip),
        ("snappy", Compression::Snappy),
        ("lz4", Compression::Lz4),
        ("zstd", Compression::Zstd),
    ];
    for (type_name, target) in codecs {
        let topic = format!("stored-{type_name}");
        create(
            &mut conn,
            &topic,
            &[
                ("compression.type", type_name),
                ("compression.zstd.level", "9"),
                ("compression.lz4.level", "12"),
                ("compression.gzip.level", "1"),
            ],
        );
        for (_, sent) in codecs {
            let r = produce(&mut conn, &topic, batch_of(sent, &[now_ms(); 10], 200));
            assert_eq!(
                r.error_code, 0,
                "{sent:?} into {type_name}: {:?}",
                r.error_message
            );
        }
        let batches = fetch_batches(&mut conn, &topic, 0);
        assert_eq!(batches.len(), 5);
        for (codec, values) in batches {
            assert_eq!(codec, target, "{type_name}");
            assert_eq!(values.len(), 10);
            assert!(values.iter().all(|v| v == &vec![b'v'; 200]));
        }
    }
    create(&mut conn, "as-sent", &[]);
    for (_, sent) in codecs {
        assert_eq!(
            produce(&mut conn, "as-sent", batch_of(sent, &[now_ms()], 10)).error_code,
            0
        );
    }
    let kept: Vec<Compression> = fetch_batches(&mut conn, "as-sent", 0)
        .into_iter()
        .map(|(c, _)| c)
        .collect();
    assert_eq!(kept, codecs.map(|(_, c)| c).to_vec());
    let (code, message) = create_topic(&mut conn, "bad-level", &[("compression.zstd.level", "23")]);
    assert_eq!(
        (code, message.contains("compression.zstd.level")),
        (INVALID_CONFIG, true),
        "{message}"
    );
}

/// Dynamic broker configs apply at once to existing topics, per broker over the cluster default and under a
/// topic's own value, and go away when deleted; keys that are not dynamic here are refused with Kafka's
/// message, as are values of features that are not built.
#[test]
fn dynamic_broker_configs_are_applied_or_refused() {
    let broker = Broker::start().expect("broker starts");
    let mut conn = broker.connect(READ_TIMEOUT).expect("connect");
    create(&mut conn, "plain", &[]);
    create(&mut conn, "own-limit", &[("max.message.bytes", "100000")]);

    // The cluster default: compression for every topic without its own.
    assert_eq!(
        alter(&mut conn, BROKER, "", &[("compression.type", Some("gzip"))]).0,
        0
    );
    let r = produce(
        &mut conn,
        "plain",
        batch_of(Compression::None, &[now_ms()], 10),
    );
    assert_eq!(r.error_code, 0);
    assert_eq!(
        fetch_batches(&mut conn, "plain", r.base_offset)[0].0,
        Compression::Gzip
    );
    // DescribeConfigs shows what is in force and where it comes from (3: DYNAMIC_DEFAULT_BROKER_CONFIG).
    assert_eq!(
        describe(&mut conn, TOPIC, "plain")["compression.type"],
        ("gzip".to_string(), 3)
    );
    assert_eq!(
        alter(
            &mut conn,
            BROKER,
            "1",
            &[("log.flush.interval.ms", Some("700"))]
        )
        .0,
        0
    );
    assert_eq!(
        describe(&mut conn, BROKER, "1")["log.flush.interval.ms"],
        ("700".to_string(), 2),
        "2: DYNAMIC_BROKER_CONFIG"
    );
    assert_eq!(
        describe(&mut conn, TOPIC, "plain")["flush.ms"],
        ("700".to_string(), 2)
    );

    // This broker's own value beats the cluster default; the topic's beats both.
    assert_eq!(
        alter(
            &mut conn,
            BROKER,
            "",
            &[("message.max.bytes", Some("50000"))]
        )
        .0,
        0
    );
    assert_eq!(
        alter(
            &mut conn,
            BROKER,
            "1",
            &[("message.max.bytes", Some("2000"))]
        )
        .0,
        0
    );
    let big = || batch_of(Compression::None, &[now_ms()], 5000);
    assert_eq!(
        produce(&mut conn, "plain", big()).error_code,
        MESSAGE_TOO_LARGE
    );
    assert_eq!(produce(&mut conn, "own-limit", big()).error_code, 0);
    assert_eq!(
        alter(&mut conn, BROKER, "1", &[("message.max.bytes", None)]).0,
        0
    );
    assert_eq!(
        produce(&mut conn, "plain", big()).error_code,
        0,
        "the cluster default's 50000"
    );

    // min.insync.replicas as a dynamic default: one replica cannot satisfy 2 for acks=all.
    assert_eq!(
        alter(
            &mut conn,
            BROKER,
            "1",
            &[("min.insync.replicas", Some("2"))]
        )
        .0,
        0
    );
    let mut pd = PartitionProduceData::default();
    pd.index = 0;
    pd.records = Some(batch_of(Compression::None, &[now_ms()], 10));
    let mut td = TopicProduceData::default();
    td.name = name("plain");
    td.partition_data = vec![pd];
    let mut req = ProduceRequest::default();
    req.acks = -1;
    req.timeout_ms = 10_000;
    req.topic_data = vec![td];
    let resp = conn.request(9, &req).expect("produce");
    assert_eq!(
        resp.responses[0].partition_responses[0].error_code, 19,
        "NOT_ENOUGH_REPLICAS"
    );

    // Read-only here (Kafka may change them at run time; Kraftwerk reads them at start).
    for key in ["num.io.threads", "num.network.threads", "log.dirs"] {
        let (code, message) = alter(&mut conn, BROKER, "1", &[(key, Some("4"))]);
        assert_eq!(code, INVALID_REQUEST, "{key}");
        assert!(
            message.contains("Cannot update these configs dynamically") && message.contains(key),
            "{message}"
        );
    }
    // The cleaner's thread settings restart its threads.
    assert_eq!(
        alter(
            &mut conn,
            BROKER,
            "1",
            &[("log.cleaner.threads", Some("3"))]
        )
        .0,
        0
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !kraftwerk_tests::broker::strip_ansi(&broker.log_contents())
        .lines()
        .any(|l| l.contains("log cleaner reconfigured") && l.contains("threads: 3"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            broker.log_tail()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (code, message) = alter(&mut conn, BROKER, "", &[("log.preallocate", Some("true"))]);
    assert_eq!(code, INVALID_REQUEST);
    assert!(message.contains("not preallocated"), "{message}");
    let (code, message) = alter(
        &mut conn,
        TOPIC,
        "plain",
        &[("remote.storage.enable", Some("true"))],
    );
    assert_eq!(code, INVALID_CONFIG);
    assert!(message.contains("tiered storage"), "{message}");

    // Applied dynamically, they survive a restart (they are metadata).
    drop(conn);
    let mut broker = broker;
    broker.restart().expect("restart");
    let mut conn = broker.connect(READ_TIMEOUT).expect("connect");
    let r = produce(
        &mut conn,
        "plain",
        batch_of(Compression::Lz4, &[now_ms()], 10),
    );
    assert_eq!(r.error_code, 0);
    assert_eq!(
        fetch_batches(&mut conn, "plain", r.base_offset)[0].0,
        Compression::Gzip
    );
}

/// `message.timestamp.before.max.ms` / `after.max.ms` refuse CreateTime records outside the window, naming each
/// one (KIP-467); nothing of the batch is written.
#[test]
fn create_time_bounds_refuse_records() {
    let broker = Broker::start().expect("broker starts");
    let mut conn = broker.connect(READ_TIMEOUT).expect("connect");
    create(
        &mut conn,
        "bounded",
        &[
            ("message.timestamp.before.max.ms", "3600000"),
            ("message.timestamp.after.max.ms", "60000"),
        ],
    );
    let now = now_ms();
    for codec in [Compression::None, Compression::Lz4] {
        let r = produce(
            &mut conn,
            "bounded",
            batch_of(codec, &[now, now - 7_200_000, now + 600_000], 10),
        );
        assert_eq!(r.error_code, INVALID_TIMESTAMP, "{codec:?}");
        let indexes: Vec<i32> = r.record_errors.iter().map(|e| e.batch_index).collect();
        assert_eq!(indexes, vec![1, 2]);
    }
    assert_eq!(latest_offset(&mut conn, "bounded"), 0);
    // Kafka 4's defaults: no bound behind, one hour ahead.
    create(&mut conn, "defaults", &[]);
    let r = produce(
        &mut conn,
        "defaults",
        batch_of(Compression::None, &[now + 7_200_000], 10),
    );
    assert_eq!(r.error_code, INVALID_TIMESTAMP);
    assert_eq!(
        produce(&mut conn, "defaults", batch_of(Compression::None, &[1], 10)).error_code,
        0
    );
    // Removed in Kafka 4, as here.
    let (code, message) = create_topic(
        &mut conn,
        "old-keys",
        &[("message.timestamp.difference.max.ms", "1000")],
    );
    assert_eq!(code, INVALID_CONFIG, "{message}");
    assert_eq!(
        produce(
            &mut conn,
            "bounded",
            batch_of(Compression::None, &[now - 1000], 10)
        )
        .error_code,
        0
    );
}

/// Clients cannot write control batches or transactional ones (transactions are not served), and a compressed
/// batch whose records do not fill its offset range is refused: no offsets are burnt.
#[test]
fn clients_cannot_burn_offsets() {
    let broker = Broker::start().expect("broker starts");
    let mut conn = broker.connect(READ_TIMEOUT).expect("connect");
    create(&mut conn, "guarded", &[]);
    let mut control = BatchBuilder::new(0, -1).producer(5, 0, -1).control(true);
    control
        .push(
            now_ms(),
            Some(&[0, 0, 0, 0]),
            Some(&[0, 0, 0, 0, 0, 0]),
            &[],
        )
        .expect("marker");
    let mut control = control.build();
    // The marker claims 2^31 offsets.
    control[23..27].copy_from_slice(&i32::MAX.to_be_bytes());
    kraftwerk_storage::batch::recompute_crc(&mut control).expect("crc");
    assert_eq!(
        produce(&mut conn, "guarded", control.into()).error_code,
        INVALID_RECORD
    );
    let mut txn = BatchBuilder::new(0, -1)
        .producer(5, 0, 0)
        .transactional(true);
    txn.push(now_ms(), Some(b"k"), Some(b"v"), &[])
        .expect("record");
    assert_eq!(
        produce(&mut conn, "guarded", txn.build().into()).error_code,
        INVALID_TXN_STATE
    );
    let mut lying = batch_of(Compression::Zstd, &[now_ms(); 3], 10).to_vec();
    lying[23..27].copy_from_slice(&i32::MAX.to_be_bytes());
    lying[57..61].copy_from_slice(&i32::MAX.to_be_bytes());
    kraftwerk_storage::batch::recompute_crc(&mut lying).expect("crc");
    assert_eq!(
        produce(&mut conn, "guarded", lying.into()).error_code,
        INVALID_RECORD
    );
    assert_eq!(latest_offset(&mut conn, "guarded"), 0);
    assert_eq!(
        produce(
            &mut conn,
            "guarded",
            batch_of(Compression::Zstd, &[now_ms(); 3], 10)
        )
        .error_code,
        0
    );
    assert_eq!(latest_offset(&mut conn, "guarded"), 3);
}

/// The worker threads the broker's runtime reports at start (tokio names its blocking threads like its workers,
/// so /proc cannot tell them apart).
fn worker_threads(broker: &Broker) -> usize {
    let log = kraftwerk_tests::broker::strip_ansi(&broker.log_contents());
    let line = log
        .lines()
        .find(|l| l.contains("runtime worker threads"))
        .expect("the start-up line");
    let n = line
        .split("workers=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("workers=N");
    n.parse().expect("a number")
}

/// `num.network.threads` + `num.io.threads` size the worker pool; `socket.receive.buffer.bytes` and
/// `socket.send.buffer.bytes` are the buffers of accepted connections (`ss` shows the socket's memory limits;
/// scripts/test.sh installs it).
#[test]
fn thread_and_socket_keys_are_applied() {
    let broker = Broker::builder()
        .prop("num.network.threads", "2")
        .prop("num.io.threads", "5")
        .prop("socket.receive.buffer.bytes", "65536")
        .prop("socket.send.buffer.bytes", "131072")
        .start()
        .expect("broker starts");
    assert_eq!(worker_threads(&broker), 7);
    let _conn = broker.connect(READ_TIMEOUT).expect("connect");
    let port = broker.addr().port();
    let out = std::process::Command::new("ss")
        .args(["-tmnH", "state", "established", &format!("sport = :{port}")])
        .output();
    match out {
        Ok(out) if out.status.success() => {
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            // skmem:(r0,rb<rcvbuf>,t0,tb<sndbuf>,...): Linux doubles what setsockopt asked for.
            assert!(
                text.contains("rb131072") && text.contains("tb262144"),
                "{text}"
            );
        }
        Ok(out) => panic!("ss failed: {}", String::from_utf8_lossy(&out.stderr)),
        Err(e) => panic!("ss is needed (apt-get install iproute2): {e}"),
    }
    let plain = Broker::start().expect("broker starts");
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(worker_threads(&plain), cpus);
}

/// `producer.id.expiration.ms`: an idempotent producer idle that long is forgotten, so a sequence that was a
/// gap before is then taken as a new producer's first batch.
#[test]
fn idle_producer_ids_expire() {
    const OUT_OF_ORDER_SEQUENCE: i16 = 45;
    let broker = Broker::builder()
        .prop("producer.id.expiration.ms", "1500")
        .prop("producer.id.expiration.check.interval.ms", "200")
        .start()
        .expect("broker starts");
    let mut conn = broker.connect(READ_TIMEOUT).expect("connect");
    create(&mut conn, "idem", &[]);
    let idempotent = |seq: i32| {
        let mut b = BatchBuilder::new(0, -1).producer(77, 0, seq);
        b.push(now_ms(), Some(b"k"), Some(b"v"), &[])
            .expect("record");
        bytes::Bytes::from(b.build())
    };
    assert_eq!(produce(&mut conn, "idem", idempotent(0)).error_code, 0);
    assert_eq!(
        produce(&mut conn, "idem", idempotent(5)).error_code,
        OUT_OF_ORDER_SEQUENCE
    );
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(
        produce(&mut conn, "idem", idempotent(5)).error_code,
        0,
        "the producer was forgotten: its next batch starts it afresh"
    );
    // A dynamic cluster default of ten minutes overrides the static 1.5 s: producer 78 is remembered.
    assert_eq!(
        alter(
            &mut conn,
            BROKER,
            "",
            &[("producer.id.expiration.ms", Some("600000"))]
        )
        .0,
        0
    );
    let idempotent78 = |seq: i32| {
        let mut b = BatchBuilder::new(0, -1).producer(78, 0, seq);
        b.push(now_ms(), Some(b"k"), Some(b"v"), &[])
            .expect("record");
        bytes::Bytes::from(b.build())
    };
    assert_eq!(produce(&mut conn, "idem", idempotent78(0)).error_code, 0);
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(
        produce(&mut conn, "idem", idempotent78(5)).error_code,
        OUT_OF_ORDER_SEQUENCE
    );
    assert!(
        kraftwerk_tests::broker::strip_ansi(&broker.log_contents())
            .contains("expired idle producer ids"),
        "{}",
        broker.log_tail()
    );
}

/// fsync calls of the broker on files under `dir_part` (a partition directory name), as strace saw them.
fn fsyncs_of(trace: &str, dir_part: &str) -> usize {
    trace
        .lines()
        .filter(|l| (l.contains("fdatasync(") || l.contains("fsync(")) && l.contains(dir_part))
        .count()
}

/// `flush.messages` and `flush.ms` fsync the partition's log (observed with strace's file names); a topic with
/// neither leaves it to the OS. (As in Kafka, setting `log.flush.scheduler.interval.ms` alone would also be
/// every topic's `flush.ms`; it is left unset, so Kraftwerk checks `flush.ms` every second.)
#[test]
fn flush_settings_fsync_the_log() {
    let broker = Broker::start().expect("broker starts");
    let mut conn = broker.connect(READ_TIMEOUT).expect("connect");
    create(&mut conn, "by-count", &[("flush.messages", "2")]);
    create(&mut conn, "by-age", &[("flush.ms", "300")]);
    create(&mut conn, "lazy", &[]);
    let trace_path = broker.dir().join("strace.txt");
    let strace = std::process::Command::new("strace")
        .args(["-f", "-y", "-e", "trace=fdatasync,fsync", "-o"])
        .arg(&trace_path)
        .args(["-p", &broker.pid().expect("running").to_string()])
        .stderr(std::process::Stdio::piped())
        .spawn();
    // scripts/test.sh installs strace; a kernel that forbids attaching (no ptrace) is checked below.
    let mut strace = strace.expect("strace is needed (apt-get install strace)");
    std::thread::sleep(Duration::from_millis(1500));
    if let Ok(Some(status)) = strace.try_wait() {
        eprintln!(
            "strace cannot attach ({status}): flush settings are checked by the storage unit tests"
        );
        return;
    }
    for _ in 0..4 {
        for topic in ["by-count", "by-age", "lazy"] {
            let r = produce(
                &mut conn,
                topic,
                batch_of(Compression::None, &[now_ms()], 10),
            );
            assert_eq!(r.error_code, 0);
        }
    }
    std::thread::sleep(Duration::from_millis(2500));
    let _ = strace.kill();
    let _ = strace.wait();
    let trace = std::fs::read_to_string(&trace_path).unwrap_or_default();
    // 4 records at flush.messages=2: two flushes of the log (and its directory) at least.
    assert!(
        fsyncs_of(&trace, "by-count-0/00000000000000000000.log") >= 2,
        "{trace}"
    );
    assert!(
        fsyncs_of(&trace, "by-age-0/00000000000000000000.log") >= 1,
        "{trace}"
    );
    assert_eq!(fsyncs_of(&trace, "lazy-0/"), 0, "{trace}");
}
