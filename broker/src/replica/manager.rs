//! The set of partitions hosted on this broker, reconciled against each new metadata image: partitions assigned
//! to this node are opened (or created) on disk, partitions of deleted topics and replicas a reassignment moved
//! to other brokers are closed and removed, and topic config changes reach the open logs.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;
use uuid::Uuid;

use kraftwerk_controller::image::PartitionImage;
use kraftwerk_controller::MetadataImage;
use kraftwerk_storage::{
    parse_partition_dir_name, partition_dir_name, LogConfig, PartitionLog, StorageError,
};

use crate::image_ext::ImageExt;

use super::hw_checkpoint;
use super::log_config;
use super::partition::{Partition, Role};

/// The internal Raft log lives among the data directories but is owned by the controller.
const METADATA_TOPIC: &str = "__cluster_metadata";
const PARTITION_METADATA_FILE: &str = "partition.metadata";
/// Threads that open (create, recover) or close partition logs at once. Opening and closing are bound by
/// fsync latency (a new log creates and syncs its segment files and directory; a clean close syncs the log,
/// its indexes and the clean-shutdown marker), not by CPU, so a few threads overlap the waits: one thread
/// made a broker hosting 10,000 replicas take 75 s to restart and over 100 s to exit after SIGTERM.
const PARALLEL_LOG_IO: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

pub struct ReplicaManager {
    node_id: i32,
    log_dirs: Vec<PathBuf>,
    defaults: LogConfig,
    partitions: RwLock<HashMap<TopicPartition, Arc<Partition>>>,
    /// Partition directories found on disk at start that no image has claimed yet.
    unclaimed: parking_lot::Mutex<Option<BTreeMap<TopicPartition, PathBuf>>>,
    /// Reconciles run from the metadata follower task and from admin handlers that want their change visible
    /// before they answer; one at a time, so a partition is never opened twice.
    /// Offset of the newest image reconciled, and whether that pass opened everything: an older image
    /// arriving late (the follower task may hold one while a handler reconciles a newer one) must not undo
    /// what the newer one opened, and the same image is not walked twice unless a partition failed to open.
    reconciling: parking_lot::Mutex<(i64, bool)>,
    /// High watermarks read from each log directory's `replication-offset-checkpoint` at start, taken by each
    /// partition as it is opened.
    checkpointed_hw: parking_lot::Mutex<HashMap<TopicPartition, i64>>,
}

fn read_topic_id(dir: &Path) -> Option<Uuid> {
    let text = std::fs::read_to_string(dir.join(PARTITION_METADATA_FILE)).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("topic_id:"))
        .and_then(|v| Uuid::parse_str(v.trim()).ok())
}

fn write_topic_id(dir: &Path, id: Uuid) -> std::io::Result<()> {
    std::fs::write(
        dir.join(PARTITION_METADATA_FILE),
        format!("version: 0\ntopic_id: {id}\n"),
    )
}

impl ReplicaManager {
    /// Scans the data directories for existing partitions; they are opened (and recovered) on the first
    /// reconcile, once the metadata says which of them still exist.
    pub fn new(node_id: i32, log_dirs: Vec<PathBuf>, defaults: LogConfig) -> std::io::Result<Self> {
        let mut found = BTreeMap::new();
        for dir in &log_dirs {
            std::fs::create_dir_all(dir)?;
            for entry in std::fs::read_dir(dir)? {
                let entry = entry?;
                if !entry.file_type()?.is_dir() {
                    continue;
                }
                let name = entry.file_name().to_string_lossy().to_string();
                if let Some((topic, partition)) = parse_partition_dir_name(&name) {
                    if topic == METADATA_TOPIC {
                        continue;
                    }
                    found.insert(
                        TopicPartition {
                            topic: topic.to_string(),
                            partition,
                        },
                        entry.path(),
                    );
                }
            }
        }
        let mut checkpointed_hw = HashMap::new();
        for dir in &log_dirs {
            match hw_checkpoint::read(dir) {
                Ok(entries) => checkpointed_hw.extend(entries),
                // Safe to go on: those partitions start from high watermark 0 and advance as the ISR confirms.
                Err(e) => tracing::warn!(error = %e, "ignoring the high-watermark checkpoint"),
            }
        }
        Ok(ReplicaManager {
            node_id,
            log_dirs,
            defaults,
            partitions: RwLock::new(HashMap::new()),
            unclaimed: parking_lot::Mutex::new(Some(found)),
            reconciling: parking_lot::Mutex::new((i64::MIN, false)),
            checkpointed_hw: parking_lot::Mutex::new(checkpointed_hw),
        })
    }

    pub fn get(&self, topic: &str, partition: i32) -> Option<Arc<Partition>> {
        self.partitions
            .read()
            .get(&TopicPartition {
                topic: topic.to_string(),
                partition,
            })
            .cloned()
    }

    pub fn all(&self) -> Vec<Arc<Partition>> {
        self.partitions.read().values().cloned().collect()
    }

    pub fn defaults(&self) -> &LogConfig {
        &self.defaults
    }

    /// How many open partitions each data directory holds, counted from where the open logs live, with no
    /// filesystem calls (a stat per hosted partition per new partition made creating thousands quadratic).
    fn dir_counts(&self) -> HashMap<PathBuf, usize> {
        let mut counts: HashMap<PathBuf, usize> =
            self.log_dirs.iter().map(|d| (d.clone(), 0)).collect();
        if self.log_dirs.len() > 1 {
            for p in self.partitions.read().values() {
                if let Some(n) = p.dir().parent().and_then(|d| counts.get_mut(d)) {
                    *n += 1;
                }
            }
        }
        counts
    }

    /// The data directory holding the fewest partitions (in `counts`, which it then counts the new one in).
    fn pick_dir(&self, counts: &mut HashMap<PathBuf, usize>) -> PathBuf {
        let dir = self
            .log_dirs
            .iter()
            .min_by_key(|d| counts.get(*d).copied().unwrap_or(0))
            .cloned()
            .unwrap_or_else(|| PathBuf::from("."));
        if let Some(n) = counts.get_mut(&dir) {
            *n += 1;
        }
        dir
    }

    /// This broker's role in a partition as the image describes it.
    fn role_for(&self, p: &PartitionImage) -> Role {
        Role {
            node_id: self.node_id,
            leader: p.leader,
            leader_epoch: p.leader_epoch,
            partition_epoch: p.partition_epoch,
            replicas: p.replicas.clone(),
            isr: p.isr.clone(),
            recovering: p.leader_recovery_state == kraftwerk_controller::records::LEADER_RECOVERING,
        }
    }

    /// Brings the hosted partitions in line with `image`.
    pub fn reconcile(&self, image: &MetadataImage) {
        let mut newest = self.reconciling.lock();
        let offset = image.last_applied_offset();
        // An older image, or the same one already reconciled in full (a CreateTopics handler and the image
        // watcher both reconcile each change; the second pass over every hosted partition would be wasted).
        if offset < newest.0 || (offset == newest.0 && newest.1) {
            return;
        }
        *newest = (offset, false);
        let mut complete = true;
        let mut wanted: HashMap<TopicPartition, (Uuid, Role, LogConfig)> = HashMap::new();
        for topic in image.topics() {
            let config = log_config::for_topic(&self.defaults, image.topic_configs(&topic.name));
            for (index, p) in topic.partitions.iter() {
                if p.replicas.contains(&self.node_id) {
                    wanted.insert(
                        TopicPartition {
                            topic: topic.name.clone(),
                            partition: *index,
                        },
                        (topic.id, self.role_for(p), config.clone()),
                    );
                }
            }
        }

        // Close and delete partitions that are gone or whose topic was re-created under a new id.
        let stale: Vec<TopicPartition> = {
            let parts = self.partitions.read();
            parts
                .iter()
                .filter(|(tp, p)| {
                    wanted
                        .get(*tp)
                        .map(|(id, _, _)| *id != p.topic_id)
                        .unwrap_or(true)
                })
                .map(|(tp, _)| tp.clone())
                .collect()
        };
        for tp in stale {
            let removed = self.partitions.write().remove(&tp);
            if let Some(p) = removed {
                // A replica a reassignment moved away: take the image's role first (the controller bumped the
                // leader epoch when it left), so a fetch still in flight for the old epoch is refused instead
                // of writing into a directory being deleted.
                let moved = image
                    .topic(&tp.topic)
                    .filter(|t| t.id == p.topic_id)
                    .and_then(|t| t.partitions.get(&tp.partition));
                if let Some(state) = moved {
                    p.apply_role(self.role_for(state), crate::context::now_ms());
                    tracing::info!(topic = %tp.topic, partition = tp.partition, replicas = ?state.replicas,
                        "this broker is no longer a replica; deleting its copy");
                }
                self.delete_partition(&tp, p);
            }
        }

        let mut unclaimed = self.unclaimed.lock();
        let now = crate::context::now_ms();
        let mut counts = self.dir_counts();
        let mut to_open = Vec::new();
        for (tp, (topic_id, role, config)) in wanted {
            if let Some(p) = self.get(&tp.topic, tp.partition) {
                p.apply_role(role, now);
                p.update_config(config);
                continue;
            }
            let existing = unclaimed.as_mut().and_then(|u| u.remove(&tp));
            let dir = match existing {
                Some(dir) if read_topic_id(&dir).is_none_or(|id| id == topic_id) => dir,
                Some(dir) => {
                    tracing::info!(dir = %dir.display(), "removing log of an earlier topic with the same name");
                    if let Err(e) = std::fs::remove_dir_all(&dir) {
                        tracing::error!(dir = %dir.display(), error = %e, "cannot remove stale partition dir");
                    }
                    self.pick_dir(&mut counts)
                        .join(partition_dir_name(&tp.topic, tp.partition))
                }
                None => self
                    .pick_dir(&mut counts)
                    .join(partition_dir_name(&tp.topic, tp.partition)),
            };
            to_open.push(OpenJob {
                tp,
                dir,
                topic_id,
                role,
                config,
            });
        }
        for (tp, opened) in self.open_all(to_open) {
            match opened {
                Ok(p) => {
                    self.partitions.write().insert(tp, Arc::new(p));
                }
                Err(e) => {
                    complete = false;
                    tracing::error!(topic = %tp.topic, partition = tp.partition, error = %e, "cannot open partition log")
                }
            }
        }
        // Whatever the first image did not claim belongs to topics deleted while this broker was down.
        if let Some(rest) = unclaimed.take() {
            for (tp, dir) in rest {
                tracing::info!(topic = %tp.topic, partition = tp.partition, "deleting log of a topic that no longer exists");
                if let Err(e) = std::fs::remove_dir_all(&dir) {
                    tracing::error!(dir = %dir.display(), error = %e, "cannot remove stray partition dir");
                }
            }
        }
        // A partition that failed to open is tried again on the next call, even with the same image.
        newest.1 = complete;
    }

    /// Opens every job's log, [`PARALLEL_LOG_IO`] at a time.
    fn open_all(
        &self,
        jobs: Vec<OpenJob>,
    ) -> Vec<(TopicPartition, Result<Partition, StorageError>)> {
        parallel_map(jobs, |job| {
            let opened = self.open_partition(&job.tp, &job.dir, job.topic_id, job.role, job.config);
            (job.tp, opened)
        })
    }

    fn open_partition(
        &self,
        tp: &TopicPartition,
        dir: &Path,
        topic_id: Uuid,
        role: Role,
        config: LogConfig,
    ) -> Result<Partition, StorageError> {
        let log = PartitionLog::open(dir, config)?;
        if let Err(e) = write_topic_id(dir, topic_id) {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot write partition.metadata");
        }
        tracing::debug!(topic = %tp.topic, partition = tp.partition, leo = log.log_end_offset(), "partition opened");
        let hw = self.checkpointed_hw.lock().remove(tp).unwrap_or(0);
        Ok(Partition::open(
            tp.topic.clone(),
            topic_id,
            tp.partition,
            log,
            role,
            crate::context::now_ms(),
            hw,
        ))
    }

    fn delete_partition(&self, tp: &TopicPartition, p: Arc<Partition>) {
        match Arc::try_unwrap(p) {
            Ok(p) => {
                if let Err(e) = p.into_log().delete() {
                    tracing::error!(topic = %tp.topic, partition = tp.partition, error = %e, "cannot delete partition log");
                } else {
                    tracing::info!(topic = %tp.topic, partition = tp.partition, "partition deleted");
                }
            }
            Err(shared) => {
                // A request still holds it; remove the files now, the handle dies with the request.
                let dir = self
                    .log_dirs
                    .iter()
                    .map(|d| d.join(partition_dir_name(&shared.topic, shared.index)))
                    .find(|d| d.exists());
                if let Some(dir) = dir {
                    match std::fs::remove_dir_all(&dir) {
                        Ok(()) => {
                            tracing::info!(topic = %tp.topic, partition = tp.partition, "partition deleted (still open elsewhere)")
                        }
                        Err(e) => {
                            tracing::error!(dir = %dir.display(), error = %e, "cannot delete partition dir")
                        }
                    }
                }
            }
        }
    }

    /// Deletes old segments per each partition's retention settings.
    pub fn enforce_retention(&self, now_ms: i64) {
        for p in self.all() {
            match p.enforce_retention(now_ms) {
                Ok(0) => {}
                Ok(n) => {
                    tracing::info!(topic = %p.topic, partition = p.index, segments = n, "retention deleted segments")
                }
                Err(e) => {
                    tracing::error!(topic = %p.topic, partition = p.index, error = %e, "retention failed")
                }
            }
        }
    }

    /// Writes every log directory's `replication-offset-checkpoint` with the high watermarks of the partitions
    /// it holds (Kafka's `replica.high.watermark.checkpoint.interval.ms` task, and at shutdown).
    pub fn checkpoint_high_watermarks(&self) {
        let mut by_dir: HashMap<PathBuf, Vec<(TopicPartition, i64)>> = self
            .log_dirs
            .iter()
            .map(|d| (d.clone(), Vec::new()))
            .collect();
        for p in self.all() {
            let dir = p.dir();
            if let Some(entries) = dir.parent().and_then(|d| by_dir.get_mut(d)) {
                entries.push((
                    TopicPartition {
                        topic: p.topic.clone(),
                        partition: p.index,
                    },
                    p.high_watermark(),
                ));
            }
        }
        for (dir, entries) in by_dir {
            if let Err(e) = hw_checkpoint::write(&dir, &entries) {
                tracing::error!(dir = %dir.display(), error = %e, "cannot write the high-watermark checkpoint");
            }
        }
    }

    /// Flushes and closes every log, leaving the clean-shutdown marker so the next start skips recovery.
    pub fn shutdown(&self) {
        self.checkpoint_high_watermarks();
        let parts: Vec<(TopicPartition, Arc<Partition>)> =
            self.partitions.write().drain().collect();
        parallel_map(parts, |(tp, p)| match Arc::try_unwrap(p) {
            Ok(p) => {
                if let Err(e) = p.into_log().close() {
                    tracing::error!(topic = %tp.topic, partition = tp.partition, error = %e, "close failed");
                }
            }
            Err(p) => {
                if let Err(e) = p.flush() {
                    tracing::error!(topic = %tp.topic, partition = tp.partition, error = %e, "flush failed");
                }
            }
        });
    }
}

/// A partition log to open in [`ReplicaManager::reconcile`].
struct OpenJob {
    tp: TopicPartition,
    dir: PathBuf,
    topic_id: Uuid,
    role: Role,
    config: LogConfig,
}

/// `f` over `items` on up to [`PARALLEL_LOG_IO`] scoped threads (in this thread when there are few), results
/// in no particular order.
fn parallel_map<T: Send, R: Send>(items: Vec<T>, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    let threads = PARALLEL_LOG_IO.min(items.len() / 4);
    if threads <= 1 {
        return items.into_iter().map(f).collect();
    }
    let mut shares: Vec<Vec<T>> = (0..threads).map(|_| Vec::new()).collect();
    for (i, item) in items.into_iter().enumerate() {
        if let Some(share) = shares.get_mut(i % threads) {
            share.push(item);
        }
    }
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = shares
            .into_iter()
            .map(|share| scope.spawn(move || share.into_iter().map(f).collect::<Vec<R>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| match h.join() {
                Ok(results) => results,
                // A panic in `f` is a bug; re-raise it here rather than lose the share's results silently.
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    })
}

#[cfg(test)]
mod parallel_tests {
    use super::parallel_map;

    #[test]
    fn parallel_map_runs_every_item_once() {
        for n in [0, 1, 3, 4, 7, 100, 1001] {
            let mut out = parallel_map((0..n).collect(), |i: u32| i * 2);
            out.sort_unstable();
            assert_eq!(out, (0..n).map(|i| i * 2).collect::<Vec<_>>(), "n={n}");
        }
    }
}
