//! kill -9 in the middle of acks=all production must not lose any acknowledged message.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kraftwerk_tests::verify::{check_acked_present, summarize};
use kraftwerk_tests::Broker;
use support::{consume_all, create_topic, flush, recording_producer, send};

const TOPIC: &str = "durable";
const PARTITIONS: i32 = 3;
/// Acknowledgements to collect before the crash, so the crash lands mid-stream.
const ACKS_BEFORE_KILL: usize = 3_000;
/// Upper bound on sends so the producer loop always ends.
const MAX_SENDS: u64 = 500_000;

#[test]
fn acked_messages_survive_kill9_during_acks_all_production() {
    let mut broker = Broker::start().unwrap_or_else(|e| panic!("{e}"));
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, TOPIC, PARTITIONS, &[]);

    let (producer, recorder) = recording_producer(
        &bootstrap,
        &[
            ("acks", "all"),
            ("linger.ms", "1"),
            ("message.timeout.ms", "60000"),
            ("retry.backoff.ms", "200"),
        ],
    );
    let producer = Arc::new(producer);
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let producer = Arc::clone(&producer);
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut seq = 0u64;
            while !stop.load(Ordering::Relaxed) && seq < MAX_SENDS {
                let key = format!("k{seq:07}");
                let value = format!("v{seq:07}-{}", "x".repeat((seq % 200) as usize));
                if let Err(e) = send(
                    &producer,
                    TOPIC,
                    seq,
                    key.as_bytes(),
                    value.as_bytes(),
                    None,
                ) {
                    return Err(format!("enqueue #{seq}: {e}"));
                }
                seq += 1;
                if seq & 0x1ff == 0 {
                    // Pace the stream a little so the crash catches requests in flight rather than
                    // a huge local queue.
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
            Ok(seq)
        })
    };

    let deadline = Instant::now() + Duration::from_secs(120);
    while recorder.acked_count() < ACKS_BEFORE_KILL {
        assert!(
            Instant::now() < deadline,
            "only {} acks after 120 s; failures so far: {:?}",
            recorder.acked_count(),
            recorder.snapshot().1.iter().take(5).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    broker.kill9().unwrap_or_else(|e| panic!("kill -9: {e}"));
    let acked_at_kill = recorder.acked_count();
    // Keep sending briefly into the dead broker so requests are queued across the crash.
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let sent = match sender.join() {
        Ok(Ok(sent)) => sent,
        Ok(Err(e)) => panic!("producer thread: {e}"),
        Err(_) => panic!("producer thread panicked"),
    };

    broker
        .restart()
        .unwrap_or_else(|e| panic!("restart after kill -9: {e}"));
    // Messages still queued in the client are retried against the restarted broker; their
    // acknowledgements must hold too.
    if let Err(e) = flush(&producer) {
        eprintln!("flush after restart: {e} (unacknowledged sends are not checked)");
    }
    let (acked, failed) = recorder.snapshot();
    drop(producer);

    let log = consume_all(&bootstrap, TOPIC, Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("reading back after restart: {e}"));
    eprintln!(
        "sent {sent}, acked {} ({acked_at_kill} before kill -9), failed {}, log holds {}",
        acked.len(),
        failed.len(),
        log.len()
    );
    let violations = check_acked_present(&acked, &log);
    assert!(
        violations.is_empty(),
        "acknowledged messages lost or changed after kill -9: {}",
        summarize(&violations, 20)
    );
    assert!(acked_at_kill >= ACKS_BEFORE_KILL);
}
