//! 10,000 keyed messages per compression codec go in and come back exactly (keys, values, order,
//! offsets contiguous from 0), before and after a broker restart.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use kraftwerk_tests::verify::{check_exact, summarize, Acked};
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
