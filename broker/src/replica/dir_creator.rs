//! Makes the directories of partitions new to this broker in the background, right after they are opened.
//!
//! A new partition's log is opened deferred ([`kraftwerk_storage::PartitionLog::create_deferred`]): creating
//! thousands of partitions is a metadata change, not thousands of inode allocations before CreateTopics can
//! answer. Left at that, the first produce to each partition made its directory and three files on the
//! runtime's worker, holding up every other request that worker served: at 10,000 new partitions on an ext4 that
//! had just deleted as many, that was 60% of the broker's CPU in the produce profile, in the request path. Kafka
//! makes a log when it learns of the partition, on its metadata thread; so does this, on a thread of its own.
//! Whichever of it and a first write comes first creates the directory; the other finds it there. A failure here
//! is logged and left to the first write, which tries again and answers its client with the error.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

use super::Partition;

/// Starts background passes and stops them at shutdown.
#[derive(Default)]
pub struct DirCreator {
    closing: Arc<AtomicBool>,
    /// The passes started and not yet seen finished, joined at [`Self::close`].
    passes: parking_lot::Mutex<Vec<std::thread::JoinHandle<usize>>>,
}

impl DirCreator {
    /// Creates the directories of `partitions` (those still deferred and hosted) on a new thread, in the
    /// order given. The thread holds only weak references, so a partition deleted meanwhile is dropped as usual
    /// and skipped here.
    pub fn spawn(&self, partitions: Vec<Weak<Partition>>) {
        if partitions.is_empty() {
            return;
        }
        let closing = self.closing.clone();
        let count = partitions.len();
        let spawned = std::thread::Builder::new()
            .name("kraftwerk-mkdir".into())
            .spawn(move || {
                lower_priority();
                create_all(&partitions, &closing)
            });
        match spawned {
            Ok(handle) => {
                let mut passes = self.passes.lock();
                passes.retain(|h| !h.is_finished());
                passes.push(handle);
            }
            Err(e) => tracing::warn!(partitions = count, error = %e,
                "cannot start the thread that creates new partitions' directories; their first writes will"),
        }
    }

    /// Stops the passes in progress at their next partition and waits for them, so that none still holds a
    /// partition when shutdown closes every log (a log still held is flushed but not closed, and its data
    /// directory recovered at the next start).
    pub fn close(&self) {
        self.closing.store(true, Ordering::Release);
        let passes = std::mem::take(&mut *self.passes.lock());
        for pass in passes {
            if pass.join().is_err() {
                tracing::error!("a pass creating partition directories panicked");
            }
        }
    }
}

/// The nice value of a pass's thread: the lowest. Creating 10,000 partitions on each of three brokers, passes at
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

/// One pass: returns how many directories it made.
fn create_all(partitions: &[Weak<Partition>], closing: &AtomicBool) -> usize {
    let started = std::time::Instant::now();
    let mut made = 0;
    for weak in partitions {
        if closing.load(Ordering::Acquire) {
            break;
        }
        let Some(p) = weak.upgrade() else {
            continue;
        };
        match p.create_dir_if_deferred() {
            Ok(true) => made += 1,
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(topic = %p.topic, partition = p.index, error = %e,
                    "cannot create the partition's directory ahead of its first write")
            }
        }
    }
    tracing::debug!(
        partitions = partitions.len(),
        created = made,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "created new partitions' directories"
    );
    made
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
        assert_eq!(create_all(&list, &AtomicBool::new(false)), 3);
        for i in 0..3 {
            assert!(root.path().join(format!("t-{i}")).is_dir());
        }
        assert!(!root.path().join("t-3").exists());
        assert!(!root.path().join("t-4").exists());
        // A second pass finds them made.
        assert_eq!(create_all(&list, &AtomicBool::new(false)), 0);
    }

    #[test]
    fn a_closing_broker_stops_the_pass() {
        let root = tempfile::tempdir().unwrap();
        let p = deferred(root.path(), 0);
        assert_eq!(create_all(&[Arc::downgrade(&p)], &AtomicBool::new(true)), 0);
        assert!(!root.path().join("t-0").exists());
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
        let creator = DirCreator::default();
        creator.spawn(parts.iter().map(Arc::downgrade).collect());
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
