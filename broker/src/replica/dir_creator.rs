//! Makes the directories of partitions new to this broker in the background, once the metadata that opened them
//! has been applied ([`QUIET`]).
//!
//! A new partition's log is opened deferred ([`kraftwerk_storage::PartitionLog::create_deferred`]): creating
//! thousands of partitions is a metadata change, not thousands of inode allocations before CreateTopics can
//! answer. Left at that, the first produce to each partition made its directory and three files on the
//! runtime's worker, holding up every other request that worker served: at 10,000 new partitions on an ext4 that
//! had just deleted as many, that was 60% of the broker's CPU in the produce profile, in the request path. Kafka
//! makes a log when it learns of the partition, on its metadata thread; so does this, on a thread of its own.
//! Whichever of it and a first write comes first creates the directory; the other finds it there. A failure here
//! is logged and left to the first write, which tries again and answers its client with the error.

use std::collections::VecDeque;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::Partition;

/// How long no partition may have been queued before the pass makes a directory. Partitions are queued by the
/// reconcile that opens them, so while a burst of new metadata is being applied the pass waits. Creating 10,000
/// partitions on three brokers, every partition had a leader on every broker after 0.58–0.84 s with passes
/// running alongside, against 0.37–0.46 s before the passes existed and 0.35–0.44 s with this wait (election
/// harness, two cores). The likely reason, not traced further: a `mkdir` holds the data directory's inode lock,
/// and the reconcile's own lookups there (is this partition's directory on disk?) wait behind a pass that, at
/// nice 19, can be preempted while it holds the lock.
const QUIET: Duration = Duration::from_millis(100);

/// Makes the directories of queued partitions on one background thread, and stops it at shutdown.
pub struct DirCreator {
    shared: Arc<Shared>,
    quiet: Duration,
    /// The pass's thread, started with the first partitions queued; joined at [`Self::close`].
    worker: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Default for DirCreator {
    fn default() -> Self {
        Self::with_quiet(QUIET)
    }
}

#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    changed: Condvar,
}

#[derive(Default)]
struct Queue {
    /// Partitions waiting for their directory, in the order queued.
    pending: VecDeque<Weak<Partition>>,
    /// When partitions were last queued.
    last_queued: Option<Instant>,
    closing: bool,
}

impl DirCreator {
    /// A creator whose pass waits `quiet` after the last partitions were queued (tests shorten or lengthen it).
    fn with_quiet(quiet: Duration) -> Self {
        Self {
            shared: Arc::default(),
            quiet,
            worker: Mutex::new(None),
        }
    }

    /// Queues `partitions` (those still deferred and hosted when their turn comes get a directory), in the
    /// order given, behind those queued before. The pass holds only weak references, so a partition deleted
    /// meanwhile is dropped as usual and skipped.
    pub fn queue(&self, partitions: Vec<Weak<Partition>>) {
        if partitions.is_empty() {
            return;
        }
        {
            let mut queue = self.shared.queue.lock();
            if queue.closing {
                return;
            }
            queue.pending.extend(partitions);
            queue.last_queued = Some(Instant::now());
        }
        self.shared.changed.notify_all();
        let mut worker = self.worker.lock();
        if worker.is_some() {
            return;
        }
        let shared = self.shared.clone();
        let quiet = self.quiet;
        let spawned = std::thread::Builder::new()
            .name("kraftwerk-mkdir".into())
            .spawn(move || {
                lower_priority();
                work(&shared, quiet);
            });
        match spawned {
            Ok(handle) => *worker = Some(handle),
            Err(e) => {
                let dropped = std::mem::take(&mut self.shared.queue.lock().pending).len();
                tracing::warn!(partitions = dropped, error = %e,
                    "cannot start the thread that creates new partitions' directories; their first writes will")
            }
        }
    }

    /// Stops the pass at its next partition and waits for it, so that none still holds a partition when
    /// shutdown closes every log (a log still held is flushed but not closed, and its data directory recovered at
    /// the next start). Partitions still queued keep their deferred directories, made by their first write.
    pub fn close(&self) {
        self.shared.queue.lock().closing = true;
        self.shared.changed.notify_all();
        if let Some(worker) = self.worker.lock().take() {
            if worker.join().is_err() {
                tracing::error!("the pass creating partition directories panicked");
            }
        }
    }
}

/// The nice value of the pass's thread: the lowest. Creating 10,000 partitions on each of three brokers, passes at
/// the normal priority took the CPU the brokers needed to apply the new metadata, and every partition had a
/// leader on every broker after 2.5 s instead of 0.3 s (election harness, two cores). A pass is work that may wait;
/// a write that cannot wait for it makes its own directory.
const PASS_NICE: libc::c_int = 19;

/// Lowers the calling thread's CPU priority to [`PASS_NICE`] (on Linux the nice value is per thread, and
/// `PRIO_PROCESS` with id 0 names the calling thread). A failure only leaves the pass at the normal priority.
fn lower_priority() {
    // SAFETY: setpriority reads no memory of ours; it only changes this thread's scheduling priority.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, PASS_NICE) };
    if rc != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "cannot lower the priority of the directory pass");
    }
}

/// The pass: takes queued partitions one at a time once nothing was queued for `quiet`, until closing.
fn work(shared: &Shared, quiet: Duration) {
    let mut made = 0usize;
    let mut started: Option<Instant> = None;
    loop {
        let next = {
            let mut queue = shared.queue.lock();
            loop {
                if queue.closing {
                    return;
                }
                let since = queue.last_queued.map_or(quiet, |t| t.elapsed());
                if since < quiet {
                    shared.changed.wait_for(&mut queue, quiet - since);
                    continue;
                }
                match queue.pending.pop_front() {
                    Some(next) => break next,
                    None => {
                        if let Some(t) = started.take() {
                            tracing::debug!(
                                created = made,
                                elapsed_ms = t.elapsed().as_millis() as u64,
                                "created new partitions' directories"
                            );
                            made = 0;
                        }
                        shared.changed.wait(&mut queue);
                    }
                }
            }
        };
        started.get_or_insert_with(Instant::now);
        if create_one(&next) {
            made += 1;
        }
    }
}

/// Makes one partition's directory if it is still hosted and deferred; whether it made it.
fn create_one(weak: &Weak<Partition>) -> bool {
    let Some(p) = weak.upgrade() else {
        return false;
    };
    match p.create_dir_if_deferred() {
        Ok(made) => made,
        Err(e) => {
            tracing::warn!(topic = %p.topic, partition = p.index, error = %e,
                "cannot create the partition's directory ahead of its first write");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replica::partition::Role;
    use kraftwerk_storage::{LogConfig, PartitionLog};
    use uuid::Uuid;

    fn deferred(root: &std::path::Path, index: i32) -> Arc<Partition> {
        let dir = root.join(format!("t-{index}"));
        let log = PartitionLog::create_deferred(&dir, LogConfig::default(), Vec::new()).unwrap();
        Arc::new(Partition::new(
            "t".into(),
            Uuid::nil(),
            index,
            log,
            Role::sole_leader(1, 0),
            0,
        ))
    }

    #[test]
    fn makes_the_directories_of_hosted_partitions_only() {
        let root = tempfile::tempdir().unwrap();
        let kept: Vec<Arc<Partition>> = (0..3).map(|i| deferred(root.path(), i)).collect();
        let dropped = deferred(root.path(), 3);
        let retired = deferred(root.path(), 4);
        retired.retire(|_| ());
        let mut list: Vec<Weak<Partition>> = kept.iter().map(Arc::downgrade).collect();
        list.push(Arc::downgrade(&dropped));
        list.push(Arc::downgrade(&retired));
        drop(dropped);
        let create_all = |list: &[Weak<Partition>]| list.iter().filter(|p| create_one(p)).count();
        assert_eq!(create_all(&list), 3);
        for i in 0..3 {
            assert!(root.path().join(format!("t-{i}")).is_dir());
        }
        assert!(!root.path().join("t-3").exists());
        assert!(!root.path().join("t-4").exists());
        // A second pass finds them made.
        assert_eq!(create_all(&list), 0);
    }

    #[test]
    fn a_closed_creator_makes_nothing() {
        let root = tempfile::tempdir().unwrap();
        let p = deferred(root.path(), 0);
        let creator = DirCreator::with_quiet(Duration::ZERO);
        creator.close();
        creator.queue(vec![Arc::downgrade(&p)]);
        std::thread::sleep(Duration::from_millis(50));
        assert!(!root.path().join("t-0").exists());
    }

    /// Polls until `path` exists (at most 10 s).
    fn wait_for(path: &std::path::Path) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if path.is_dir() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    }

    #[test]
    fn the_pass_makes_nothing_while_partitions_keep_being_queued() {
        let root = tempfile::tempdir().unwrap();
        let parts: Vec<Arc<Partition>> = (0..4).map(|i| deferred(root.path(), i)).collect();
        let creator = DirCreator::with_quiet(Duration::from_secs(2));
        // Queued every 50 ms for 200 ms: never 2 s without a new partition.
        for p in &parts {
            creator.queue(vec![Arc::downgrade(p)]);
            std::thread::sleep(Duration::from_millis(50));
            assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 0);
        }
        // Then quiet: the pass makes every directory, in the order queued.
        assert!(wait_for(&root.path().join("t-3")));
        for i in 0..4 {
            assert!(root.path().join(format!("t-{i}")).is_dir());
        }
        creator.close();
    }

    #[test]
    fn a_pass_runs_at_the_lowest_priority_of_its_own_thread() {
        let nice = |f: fn()| {
            std::thread::spawn(move || {
                f();
                // SAFETY: getpriority only reads this thread's nice value.
                unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) }
            })
            .join()
            .unwrap()
        };
        let before = nice(|| {});
        assert_eq!(nice(lower_priority), PASS_NICE);
        // Only the pass's own thread: the others keep theirs.
        assert_eq!(nice(|| {}), before);
    }

    #[test]
    fn close_waits_for_the_passes_in_progress() {
        let root = tempfile::tempdir().unwrap();
        let parts: Vec<Arc<Partition>> = (0..200).map(|i| deferred(root.path(), i)).collect();
        let creator = DirCreator::with_quiet(Duration::ZERO);
        creator.queue(parts.iter().map(Arc::downgrade).collect());
        // Wait until the pass is under way, then close in its middle.
        assert!(wait_for(&root.path().join("t-0")));
        creator.close();
        // No pass holds a partition any more, and none makes a directory after.
        assert!(parts.iter().all(|p| Arc::strong_count(p) == 1));
        let made = std::fs::read_dir(root.path()).unwrap().count();
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), made);
    }

    #[test]
    fn a_retired_partition_refuses_writes() {
        let root = tempfile::tempdir().unwrap();
        let p = deferred(root.path(), 0);
        let mut removed = None;
        p.retire(|dir| removed = Some(dir.to_path_buf()));
        assert_eq!(removed, Some(root.path().join("t-0")));
        let batch =
            kraftwerk_storage::batch::build_batch(0, -1, 0, &[(None, Some(b"v".as_slice()))]);
        assert!(p.append_from_client(&batch, 0, None).is_err());
        assert_eq!(p.delete_records_before(0).unwrap(), None);
        assert!(!root.path().join("t-0").exists());
    }
}
