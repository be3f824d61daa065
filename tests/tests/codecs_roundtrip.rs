//! 10,000 keyed messages per compression codec go in and come back exactly (keys, values, order,
//! offsets contiguous from 0), before and after a broker restart.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Buf;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{FetchRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use kraftwerk_tests::verify::{check_exact, summarize, Acked};
use kraftwerk_tests::wire::Connection;
use kraftwerk_tests::Broker;
use support::{consume_all, create_topic, flush, recording_producer, send, wait_for_partitions};

const MESSAGES: usize = 10_000;
const PARTITIONS: i32 = 3;
const CODECS: [&str; 5] = ["none", "gzip", "snappy", "lz4", "zstd"];
const CONSUME_TIMEOUT: Duration = Duration::from_secs(120);

fn topic_for(codec: &str) -> String {
    format!("codec-{codec}")
}

/// Value bodies are partly repetitive so every codec actually compresses, and carry the codec and
/// index so a record that lands in the wrong topic or slot is recognisable.
fn value_for(codec: &str, i: usize) -> Vec<u8> {
    format!("{codec}:{i:05}:{}", "kraftwerk-payload-".repeat(1 + i % 7)).into_bytes()
}

/// Produces all messages for one codec; returns the acknowledgements or why production failed.
fn produce(bootstrap: &str, codec: &str) -> Result<Vec<Acked>, String> {
    let topic = topic_for(codec);
    let (producer, recorder) = recording_producer(
        bootstrap,
        &[("compression.type", codec), ("batch.num.messages", "1000")],
    );
    for i in 0..MESSAGES {
        let key = format!("key-{i:05}");
        send(
            &producer,
            &topic,
            i as u64,
            key.as_bytes(),
            &value_for(codec, i),
            None,
        )
        .map_err(|e| format!("{codec}: enqueue #{i}: {e}"))?;
    }
    flush(&producer).map_err(|e| format!("{codec}: {e}"))?;
    let (acked, failed) = recorder.snapshot();
    if let Some((seq, err)) = failed.first() {
        return Err(format!(
            "{codec}: {} of {MESSAGES} deliveries failed, first #{seq}: {err}",
            failed.len()
        ));
    }
    Ok(acked)
}

fn verify(bootstrap: &str, codec: &str, acked: &[Acked], phase: &str) -> Result<(), String> {
    let log = consume_all(bootstrap, &topic_for(codec), CONSUME_TIMEOUT)
        .map_err(|e| format!("{phase} {codec}: {e}"))?;
    let violations = check_exact(MESSAGES, acked, &log);
    if violations.is_empty() {
        Ok(())
    } else {
        Err(format!("{phase} {codec}: {}", summarize(&violations, 10)))
    }
}

/// The codec id Kafka puts in a record batch's attributes (low 3 bits).
fn codec_id(codec: &str) -> i16 {
    match codec {
        "gzip" => 1,
        "snappy" => 2,
        "lz4" => 3,
        "zstd" => 4,
        _ => 0,
    }
}

/// Codec ids of the record batches stored at the start of `topic`/0, read with a raw Fetch (v4, no
/// client-side decompression), so we know the broker kept the producer's compression as Kafka does
/// with the default `compression.type=producer`.
fn stored_codecs(broker: &Broker, topic: &str) -> Result<Vec<i16>, String> {
    let mut conn =
        Connection::connect(broker.addr(), Duration::from_secs(10)).map_err(|e| e.to_string())?;
    let request = FetchRequest::default()
        .with_max_wait_ms(100)
        .with_min_bytes(1)
        .with_max_bytes(4 * 1024 * 1024)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(0)
                .with_partition_max_bytes(1024 * 1024)])]);
    let response = conn
        .request(4, &request)
        .map_err(|e| format!("Fetch v4: {e}"))?;
    let partition = response
        .responses
        .first()
        .and_then(|t| t.partitions.first())
        .ok_or("Fetch v4 answered no partition")?;
    if partition.error_code != 0 {
        return Err(format!("Fetch v4 error code {}", partition.error_code));
    }
    let mut records = partition.records.clone().unwrap_or_default();
    let mut codecs = Vec::new();
    // Batch header: baseOffset i64, batchLength i32, then (counted in batchLength) partitionLeaderEpoch
    // i32, magic i8, crc u32, attributes i16. A trailing partial batch is allowed and skipped.
    while records.remaining() >= 12 {
        let _base_offset = records.get_i64();
        let length = usize::try_from(records.get_i32()).map_err(|_| "negative batch length")?;
        if records.remaining() < length || length < 11 {
            break;
        }
        let mut batch = records.split_to(length);
        batch.advance(4);
        let magic = batch.get_i8();
        if magic != 2 {
            return Err(format!("record batch magic {magic}"));
        }
        batch.advance(4);
        codecs.push(batch.get_i16() & 0x7);
    }
    if codecs.is_empty() {
        return Err("Fetch v4 returned no whole record batch".into());
    }
    Ok(codecs)
}

#[test]
fn every_codec_round_trips_exactly_and_survives_restart() {
    let mut broker = Broker::start().unwrap_or_else(|e| panic!("{e}"));
    let bootstrap = broker.bootstrap();
    for codec in CODECS {
        create_topic(&bootstrap, &topic_for(codec), PARTITIONS, &[]);
    }

    // Every codec is tried even if an earlier one fails, so one run reports all broken codecs.
    let mut failures = Vec::new();
    let mut acks: BTreeMap<&str, Vec<Acked>> = BTreeMap::new();
    for codec in CODECS {
        match produce(&bootstrap, codec) {
            Ok(acked) => {
                if let Err(e) = verify(&bootstrap, codec, &acked, "before restart") {
                    failures.push(e);
                }
                match stored_codecs(&broker, &topic_for(codec)) {
                    Ok(ids) if ids.iter().all(|id| *id == codec_id(codec)) => {}
                    Ok(ids) => failures.push(format!(
                        "{codec}: stored batches carry codec ids {ids:?}, expected {}",
                        codec_id(codec)
                    )),
                    Err(e) => failures.push(format!("{codec}: raw fetch: {e}")),
                }
                acks.insert(codec, acked);
            }
            Err(e) => failures.push(e),
        }
    }

    let status = broker
        .stop()
        .unwrap_or_else(|e| panic!("stopping broker: {e}"));
    eprintln!("broker exited with {status} after SIGTERM");
    broker
        .restart()
        .unwrap_or_else(|e| panic!("restarting broker: {e}"));
    for (codec, acked) in &acks {
        wait_for_partitions(&bootstrap, &topic_for(codec), PARTITIONS);
        if let Err(e) = verify(&bootstrap, codec, acked, "after restart") {
            failures.push(e);
        }
    }
    assert!(
        failures.is_empty(),
        "codec failures:\n{}",
        failures.join("\n")
    );
}
