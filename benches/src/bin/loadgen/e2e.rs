//! End-to-end latency (`--e2e`): a consumer reads the topic while the producer writes it. Each value starts
//! with its send time (microseconds since the UNIX epoch, big-endian); the reader records receive time minus
//! send time, so the figure covers the producer's batching, the broker's append, the wake-up of the waiting
//! fetch and the consumer's decoding: what an application sees. Producer and reader share the process and its
//! clock.
//!
//! Before the measured records the producer sends one marker (send time 0) and waits until the reader has
//! received it, so the reader's start-up (metadata, offset lookup, first fetch) is not counted.

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use hdrhistogram::Histogram;
use rdkafka::consumer::BaseConsumer;
use rdkafka::message::Message;

use crate::consume;
use crate::Args;

/// Bytes of each value that carry the send time.
pub const STAMP_LEN: usize = 8;

/// What the reader measured.
pub struct Latency {
    /// Records received (the marker not counted).
    pub received: u64,
    /// Send-to-receive latency in microseconds.
    pub latency_us: Histogram<u64>,
}

/// The reader thread, started before the producer.
pub struct Reader {
    ready: mpsc::Receiver<()>,
    handle: JoinHandle<Result<Latency>>,
}

/// Microseconds since the UNIX epoch, never 0 (0 marks the marker record).
pub fn now_us() -> u64 {
    let us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    us.max(1)
}

/// Writes the send time into the first bytes of `value`.
pub fn stamp(value: &mut [u8], us: u64) {
    value[..STAMP_LEN].copy_from_slice(&us.to_be_bytes());
}

impl Reader {
    /// Assigns every partition from the beginning (the topic is new: everything in it is this run's) and
    /// starts reading until `expected` stamped records arrived or `timeout` passed.
    pub fn start(args: &Args, expected: u64, timeout: Duration) -> Result<Self> {
        let consumer = consume::consumer(args)?;
        consume::assign_all(&consumer, args)?;
        let (ready_tx, ready) = mpsc::channel();
        let handle = std::thread::Builder::new()
            .name("e2e-reader".into())
            .spawn(move || read(&consumer, expected, timeout, &ready_tx))
            .context("spawning the reader")?;
        Ok(Self { ready, handle })
    }

    /// Waits until the reader received the marker.
    pub fn wait_ready(&self, timeout: Duration) -> Result<()> {
        self.ready
            .recv_timeout(timeout)
            .context("the end-to-end reader did not receive the marker record")
    }

    pub fn finish(self) -> Result<Latency> {
        match self.handle.join() {
            Ok(r) => r,
            Err(_) => bail!("the end-to-end reader panicked"),
        }
    }
}

fn read(
    consumer: &BaseConsumer,
    expected: u64,
    timeout: Duration,
    ready: &mpsc::Sender<()>,
) -> Result<Latency> {
    let mut latency_us =
        Histogram::new_with_bounds(1, 600_000_000, 3).context("histogram bounds")?;
    let deadline = std::time::Instant::now() + timeout;
    let mut received = 0u64;
    while received < expected {
        if std::time::Instant::now() > deadline {
            bail!("end-to-end reader got {received} of {expected} records in {timeout:?}");
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                let now = now_us();
                let Some(bytes) = m.payload().and_then(|p| p.get(..STAMP_LEN)) else {
                    bail!("a record without a send time at offset {}", m.offset());
                };
                let sent = u64::from_be_bytes(bytes.try_into().context("stamp")?);
                if sent == 0 {
                    // The marker: the reader is fetching. A closed channel means the producer gave up.
                    let _ = ready.send(());
                    continue;
                }
                latency_us.saturating_record(now.saturating_sub(sent).max(1));
                received += 1;
            }
            Some(Err(e)) => bail!("end-to-end reader: {e}"),
            None => {}
        }
    }
    Ok(Latency {
        received,
        latency_us,
    })
}
