//! The cleaner threads: each repeatedly picks the dirtiest log that is due, cleans it without holding its
//! lock, swaps the result in and checkpoints how far it got; with nothing due it waits `log.cleaner.backoff.ms`.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::checkpoint::{self, CleanerOffsets};
use super::{CleanedLog, CleanerStats, Throttler};
use crate::{PartitionLog, StorageError};

/// The broker settings of the cleaner (`log.cleaner.*`).
#[derive(Debug, Clone, PartialEq)]
pub struct CleanerConfig {
    /// `log.cleaner.enable`.
    pub enable: bool,
    /// `log.cleaner.threads`.
    pub threads: usize,
    /// `log.cleaner.io.max.bytes.per.second` (read plus written, all threads together).
    pub io_max_bytes_per_second: f64,
    /// `log.cleaner.backoff.ms`: the pause when no log needs cleaning.
    pub backoff_ms: u64,
    /// `log.cleaner.dedupe.buffer.size`: memory for the key maps of all threads together; a log with more
    /// distinct dirty keys than a thread's share holds is cleaned in several passes.
    pub dedupe_buffer_bytes: u64,
}

impl Default for CleanerConfig {
    fn default() -> Self {
        Self {
            enable: true,
            threads: 1,
            io_max_bytes_per_second: f64::MAX,
            backoff_ms: 15_000,
            dedupe_buffer_bytes: 128 << 20,
        }
    }
}

/// One log the cleaner may clean, owned (and locked) by someone else.
pub trait CleanableLog: Send + Sync {
    /// (topic, partition), the key of the cleaner checkpoint.
    fn topic_partition(&self) -> (String, i32);
    /// The log dir holding the partition's directory (where `cleaner-offset-checkpoint` lives).
    fn log_dir(&self) -> PathBuf;
    /// Runs `f` on the log under its owner's lock, with the offset cleaning must stay below (the high
    /// watermark). Must not block for long: the cleaner calls it only to plan and to swap.
    fn with_log(&self, f: &mut dyn FnMut(&mut PartitionLog, i64));
}

/// The logs hosted right now (the cleaner itself skips those without `compact`).
pub trait CompactedLogs: Send + Sync {
    fn logs(&self) -> Vec<Arc<dyn CleanableLog>>;
}

/// The running cleaner threads; [`LogCleaner::stop`] ends them.
pub struct LogCleaner {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

struct Shared {
    config: CleanerConfig,
    source: Arc<dyn CompactedLogs>,
    throttler: Throttler,
    /// Log dir → its checkpoint, read on first use.
    checkpoints: Mutex<HashMap<PathBuf, CleanerOffsets>>,
    /// Logs a thread is cleaning, which the others skip.
    in_progress: Mutex<HashSet<(String, i32)>>,
    stopping: Mutex<bool>,
    wake: Condvar,
}

impl LogCleaner {
    /// Starts `config.threads` threads (none if `config.enable` is false).
    pub fn start(config: CleanerConfig, source: Arc<dyn CompactedLogs>) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            throttler: Throttler::new(config.io_max_bytes_per_second),
            config,
            source,
            checkpoints: Mutex::new(HashMap::new()),
            in_progress: Mutex::new(HashSet::new()),
            stopping: Mutex::new(false),
            wake: Condvar::new(),
        });
        let mut threads = Vec::new();
        tracing::info!(config = ?shared.config, "log cleaner starting");
        if shared.config.enable {
            for i in 0..shared.config.threads.max(1) {
                let shared = shared.clone();
                threads.push(
                    std::thread::Builder::new()
                        .name(format!("kraftwerk-log-cleaner-{i}"))
                        .spawn(move || shared.run())?,
                );
            }
        }
        Ok(Self { shared, threads })
    }

    /// Cleans the dirtiest due log once on the calling thread: `Ok(None)` when no log is due.
    pub fn clean_once(&self, now_ms: i64) -> Result<Option<CleanerStats>, StorageError> {
        self.shared.clean_dirtiest(now_ms)
    }

    /// Asks the threads to stop (a cleaning in progress finishes first) and waits for them.
    pub fn stop(self) {
        *self.shared.stopping.lock() = true;
        self.shared.wake.notify_all();
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

impl Shared {
    fn run(&self) {
        let backoff = Duration::from_millis(self.config.backoff_ms.max(1));
        loop {
            if *self.stopping.lock() {
                return;
            }
            let worked = match self.clean_dirtiest(crate::log::now_ms()) {
                Ok(stats) => stats.is_some(),
                Err(e) => {
                    tracing::error!(error = %e, "log cleaning failed");
                    false
                }
            };
            if !worked {
                let mut stopping = self.stopping.lock();
                if !*stopping {
                    self.wake.wait_for(&mut stopping, backoff);
                }
            }
        }
    }

    fn checkpoint_of(&self, log: &dyn CleanableLog) -> Result<Option<i64>, StorageError> {
        let dir = log.log_dir();
        let mut checkpoints = self.checkpoints.lock();
        if !checkpoints.contains_key(&dir) {
            let read = checkpoint::read(&dir)?;
            checkpoints.insert(dir.clone(), read);
        }
        Ok(checkpoints
            .get(&dir)
            .and_then(|c| c.get(&log.topic_partition()))
            .copied())
    }

    fn clean_dirtiest(&self, now_ms: i64) -> Result<Option<CleanerStats>, StorageError> {
        let logs = self.source.logs();
        let mut best: Option<(f64, Arc<dyn CleanableLog>, Option<i64>)> = None;
        for log in &logs {
            if self.in_progress.lock().contains(&log.topic_partition()) {
                continue;
            }
            let checkpoint = self.checkpoint_of(log.as_ref())?;
            let mut cleanable = None;
            log.with_log(&mut |l, upper| cleanable = l.cleanable(now_ms, checkpoint, upper));
            if let Some(c) = &cleanable {
                tracing::trace!(log = ?log.topic_partition(), ?c, "cleanable");
            }
            if let Some(c) = cleanable.filter(|c| c.due) {
                if best
                    .as_ref()
                    .is_none_or(|(ratio, _, _)| c.dirty_ratio > *ratio)
                {
                    best = Some((c.dirty_ratio, log.clone(), checkpoint));
                }
            }
        }
        let Some((_, log, checkpoint)) = best else {
            return Ok(None);
        };
        let id = log.topic_partition();
        if !self.in_progress.lock().insert(id.clone()) {
            return Ok(None);
        }
        let result = self.clean(log.as_ref(), checkpoint, now_ms, &logs);
        self.in_progress.lock().remove(&id);
        result
    }

    fn clean(
        &self,
        log: &dyn CleanableLog,
        checkpoint: Option<i64>,
        now_ms: i64,
        all: &[Arc<dyn CleanableLog>],
    ) -> Result<Option<CleanerStats>, StorageError> {
        let mut plan = Ok(None);
        log.with_log(&mut |l, upper| plan = l.plan_cleaning(now_ms, checkpoint, upper));
        let Some(plan) = plan? else {
            return Ok(None);
        };
        let map_limit = self.config.dedupe_buffer_bytes / self.config.threads.max(1) as u64;
        let map_limit = usize::try_from(map_limit).unwrap_or(usize::MAX);
        let started = Instant::now();
        let cleaned = plan.clean(map_limit, &|bytes| self.throttler.throttle(bytes))?;
        let end = cleaned.end();
        let Some((stats, lock_held)) = self.swap(log, cleaned)? else {
            return Ok(None);
        };
        // As Kafka's cleaner reports each pass (scripts/bench-cleaner.sh sums these for its throughput), with
        // how long the swap held the log's lock (what produce and fetch of the partition may have waited).
        let secs = started.elapsed().as_secs_f64();
        tracing::info!(
            log = ?log.topic_partition(),
            bytes_read = stats.bytes_read,
            dirty_bytes = stats.dirty_bytes,
            bytes_written = stats.bytes_written,
            records_removed = stats.records_removed,
            secs,
            stage_lock_us = lock_held[0].as_micros() as u64,
            install_lock_us = lock_held[1].as_micros() as u64,
            "log cleaner pass: {:.1} MB of log ({:.1} MB dirty) processed in {secs:.2} s ({:.1} MB/s)",
            stats.bytes_read as f64 / 1e6,
            stats.dirty_bytes as f64 / 1e6,
            stats.bytes_read as f64 / 1e6 / secs.max(1e-9),
        );
        let dir = log.log_dir();
        let hosted: HashSet<(String, i32)> = all
            .iter()
            .filter(|l| l.log_dir() == dir)
            .map(|l| l.topic_partition())
            .collect();
        let mut checkpoints = self.checkpoints.lock();
        let offsets = checkpoints.entry(dir.clone()).or_default();
        offsets.insert(log.topic_partition(), end);
        // Partitions no longer hosted here leave the file.
        offsets.retain(|id, _| hosted.contains(id));
        checkpoint::write(&dir, offsets)?;
        Ok(Some(stats))
    }

    /// Swaps a cleaning in (see [`super::swap`]): the log's lock is taken twice, for a few renames and for an
    /// in-memory swap; the fsyncs, unlinks and opens run without it, so produce and fetch are not held up by
    /// them.
    /// Returns what the cleaning did and how long each of the two lock holds took.
    fn swap(
        &self,
        log: &dyn CleanableLog,
        mut cleaned: CleanedLog,
    ) -> Result<Option<(CleanerStats, [Duration; 2])>, StorageError> {
        let (staged, stage_held) = locked(log, |l| l.stage_cleaning(&mut cleaned));
        if !staged? {
            return Ok(None);
        }
        if let Err(e) = cleaned.commit() {
            let (aborted, _) = locked(log, PartitionLog::settle_cleaning);
            aborted?;
            return Err(e);
        }
        // On failure the swap stays pending; the log retries these steps when it settles it.
        cleaned.install_files()?;
        let mut cleaned = Some(cleaned);
        let (installed, install_held) = locked(log, |l| match cleaned.take() {
            Some(c) => l.install_cleaning(c),
            None => Ok(None),
        });
        let Some(swapped) = installed? else {
            return Ok(None);
        };
        let stats = swapped.finish()?;
        Ok(Some((stats, [stage_held, install_held])))
    }
}

/// Runs `f` on the log under its owner's lock; its result and how long the lock was held.
fn locked<T>(
    log: &dyn CleanableLog,
    mut f: impl FnMut(&mut PartitionLog) -> Result<T, StorageError>,
) -> (Result<T, StorageError>, Duration) {
    let mut out = Err(StorageError::io(
        "lock",
        &log.log_dir(),
        std::io::Error::other("the log's owner did not lend it"),
    ));
    let mut held = Duration::ZERO;
    log.with_log(&mut |l, _| {
        let start = Instant::now();
        out = f(l);
        held = start.elapsed();
    });
    (out, held)
}
