//! kraftwerk-shutdown-bench: what closing a broker's logs at shutdown costs, with an fsync per log against one
//! `syncfs` for the directory.
//!
//! A broker's SIGTERM ends with every hosted log closed and durable, then the clean-shutdown marker. At 10,000
//! partitions the per-log way (`PartitionLog::close`: data, two indexes, the leader-epoch checkpoint and the
//! partition directory each fsynced) kept the election harness's broker alive ~5 s after it led nothing. The
//! broker now seals each log without fsyncs (`PartitionLog::close_unsynced`) and syncs the filesystem once
//! (`FilesystemSync`). This binary times both ways on the same directory with no broker around them: it makes
//! `--partitions` logs under `--dir`, appends `--records` one-record batches to each, settles the filesystem
//! (`sync(2)`, then a pause), closes them one way, and then opens them all again as after a clean shutdown, so a
//! change that made the next start slower shows too. Runs alternate the two ways; each starts from an empty
//! directory.
//!
//! The filesystem matters more than anything here: ext4 without a journal scans for recently deleted inodes
//! when it creates files, so runs right after a large removal on such a filesystem measure that scan. Point
//! `--dir` at the filesystem a broker would use.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use kraftwerk_storage::batch::BatchBuilder;
use kraftwerk_storage::{FilesystemSync, LastShutdown, LogConfig, PartitionLog};

#[derive(Parser, Debug)]
#[command(
    about = "Closing N logs at shutdown: an fsync per log against one syncfs of the directory"
)]
struct Args {
    /// Logs to make and close.
    #[arg(long, default_value_t = 10_000)]
    partitions: usize,
    /// One-record batches appended to each log.
    #[arg(long, default_value_t = 1)]
    records: usize,
    /// Runs of each way, alternating.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Pause after the `sync` that settles the filesystem before each close, in ms.
    #[arg(long, default_value_t = 2_000)]
    settle_ms: u64,
    /// Where the logs are made (a directory created for each run and removed after it).
    #[arg(long)]
    dir: PathBuf,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Way {
    FsyncPerLog,
    OneSyncfs,
}

impl Way {
    fn name(self) -> &'static str {
        match self {
            Way::FsyncPerLog => "fsync per log",
            Way::OneSyncfs => "one syncfs",
        }
    }
}

struct Run {
    /// Closing the logs and, for [`Way::OneSyncfs`], the sync after.
    close: Duration,
    /// Of which the `syncfs`.
    syncfs: Duration,
    reopen: Duration,
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.partitions == 0 || args.records == 0 || args.runs == 0 {
        bail!("--partitions, --records and --runs must be at least 1");
    }
    let mut results: Vec<(Way, Run)> = Vec::new();
    for run in 0..args.runs {
        for way in [Way::FsyncPerLog, Way::OneSyncfs] {
            let root = args.dir.join(format!("shutdown-bench-{run}"));
            let r = one_run(&args, &root, way);
            std::fs::remove_dir_all(&root).with_context(|| format!("remove {}", root.display()))?;
            let r = r?;
            println!(
                "RESULT way={} partitions={} records={} close_s={:.3} syncfs_s={:.3} reopen_s={:.3}",
                way.name().replace(' ', "_"),
                args.partitions,
                args.records,
                r.close.as_secs_f64(),
                r.syncfs.as_secs_f64(),
                r.reopen.as_secs_f64()
            );
            results.push((way, r));
        }
    }
    println!();
    println!(
        "| way | close {} logs ({} record(s) each), s | of which the syncfs, s | reopen them (clean), s |",
        args.partitions, args.records
    );
    println!("|---|---|---|---|");
    for way in [Way::FsyncPerLog, Way::OneSyncfs] {
        let of = |f: fn(&Run) -> Duration| -> String {
            let v: Vec<f64> = results
                .iter()
                .filter(|(w, _)| *w == way)
                .map(|(_, r)| f(r).as_secs_f64())
                .collect();
            median_and_spread(v)
        };
        println!(
            "| {} | {} | {} | {} |",
            way.name(),
            of(|r| r.close),
            of(|r| r.syncfs),
            of(|r| r.reopen)
        );
    }
    Ok(())
}

fn one_run(args: &Args, root: &Path, way: Way) -> Result<Run> {
    std::fs::create_dir_all(root).with_context(|| format!("create {}", root.display()))?;
    // Opened before the logs are written, as the broker opens it at start.
    let sync = match way {
        Way::OneSyncfs => Some(
            FilesystemSync::open(root)?
                .context("this kernel's syncfs does not report write-back errors (Linux 5.8+)")?,
        ),
        Way::FsyncPerLog => None,
    };
    let mut logs = Vec::with_capacity(args.partitions);
    for i in 0..args.partitions {
        let mut log = PartitionLog::open(&partition_dir(root, i), LogConfig::default())?;
        for r in 0..args.records {
            let mut b = BatchBuilder::new(0, -1);
            b.push(r as i64, Some(b"key"), Some(b"value"), &[])?;
            log.append(&b.build(), r as i64)?;
        }
        logs.push(log);
    }
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
    std::thread::sleep(Duration::from_millis(args.settle_ms));

    let started = Instant::now();
    for log in logs {
        match way {
            Way::FsyncPerLog => log.close()?,
            Way::OneSyncfs => log.close_unsynced()?,
        }
    }
    let synced = Instant::now();
    if let Some(sync) = &sync {
        sync.sync()?;
    }
    let syncfs = synced.elapsed();
    let close = started.elapsed();

    let started = Instant::now();
    for i in 0..args.partitions {
        let log = PartitionLog::open_after(
            &partition_dir(root, i),
            LogConfig::default(),
            LastShutdown::Clean,
        )?;
        if log.log_end_offset() != args.records as i64 {
            bail!(
                "log {i} reopened with end offset {}, not {}",
                log.log_end_offset(),
                args.records
            );
        }
    }
    Ok(Run {
        close,
        syncfs,
        reopen: started.elapsed(),
    })
}

fn partition_dir(root: &Path, i: usize) -> PathBuf {
    root.join(format!("bench-{i}"))
}

/// `median (min–max)` of seconds.
fn median_and_spread(v: Vec<f64>) -> String {
    match kraftwerk_benches::median_min_max(v) {
        Some((median, min, max)) => format!("{median:.3} ({min:.3}–{max:.3})"),
        None => "n/a".into(),
    }
}
