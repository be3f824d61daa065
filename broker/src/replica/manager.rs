//! The set of partitions hosted on this broker, reconciled against each new metadata image: partitions assigned
//! to this node are opened (or created) on disk, partitions of deleted topics and replicas a reassignment moved
//! to other brokers are closed and removed, and topic config changes reach the open logs.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;
use uuid::Uuid;

use kraftwerk_controller::image::{PartitionImage, TopicImage};
use kraftwerk_controller::MetadataImage;
use kraftwerk_storage::log_dir::{
    take_clean_shutdown_marker, write_clean_shutdown_marker, FilesystemSync,
};
use kraftwerk_storage::{
    parse_partition_dir_name, partition_dir_name, LastShutdown, LogConfig, PartitionLog, SeedFile,
    StorageError,
};

use crate::image_ext::ImageExt;

use super::dir_creator::DirCreator;
use super::hw_checkpoint;
use super::log_config;
use super::partition::{Partition, Role};

/// The internal Raft log lives among the data directories but is owned by the controller.
const METADATA_TOPIC: &str = "__cluster_metadata";
const PARTITION_METADATA_FILE: &str = "partition.metadata";

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
    /// How each data directory was left by the last process (its clean-shutdown marker, taken in [`Self::new`]):
    /// the partitions found there at start are opened accordingly.
    last_shutdown: HashMap<PathBuf, LastShutdown>,
    /// Data directories that must not get a clean-shutdown marker at [`Self::shutdown`]: one of their logs failed
    /// to open or could not be removed, so a log there may not have been closed by this process.
    unclean_dirs: parking_lot::Mutex<std::collections::HashSet<PathBuf>>,
    /// Per data directory, the handle [`Self::shutdown`] makes all of its logs durable through with one
    /// `syncfs` (opened at start, so write-back errors since then fail it); a directory without one (an old
    /// kernel, another OS, or the open failed) has each log fsynced as it is closed.
    filesystem_syncs: HashMap<PathBuf, FilesystemSync>,
    /// Reconciles run from the metadata follower task and from admin handlers that want their change visible
    /// before they answer; one at a time (under this lock), so a partition is never opened twice.
    reconciling: parking_lot::Mutex<ReconcileState>,
    /// High watermarks read from each log directory's `replication-offset-checkpoint` at start, taken by each
    /// partition as it is opened.
    checkpointed_hw: parking_lot::Mutex<HashMap<TopicPartition, i64>>,
    /// `num.recovery.threads.per.data.dir`.
    recovery_threads_per_dir: std::sync::atomic::AtomicUsize,
    /// The static `num.recovery.threads.per.data.dir`, which a dynamic value overrides while it is set.
    static_recovery_threads_per_dir: std::sync::atomic::AtomicUsize,
    /// `producer.id.expiration.ms` as last applied: a partition opened later forgets at once the producers
    /// its log names that have been idle longer, as Kafka's ProducerStateManager does when it loads.
    producer_id_expiration_ms: std::sync::atomic::AtomicI64,
    /// Makes new partitions' directories off the request path, after each reconcile that opened some.
    dir_creator: DirCreator,
    /// Wakes the ISR check (`isr::run_isr_checks`) before its next tick: a follower outside a partition's ISR
    /// has just caught up.
    isr_check_wanted: tokio::sync::Notify,
}

/// What one reconcile leaves for the next.
struct ReconcileState {
    /// Offset of the newest image reconciled, and whether that pass opened everything: an older image
    /// arriving late (the follower task may hold one while a handler reconciles a newer one) must not undo
    /// what the newer one opened, and the same image is not walked twice unless a partition failed to open.
    newest_offset: i64,
    complete: bool,
    /// Set by [`ReplicaManager::shutdown`]: a reconcile that starts later (the metadata task's blocking pass
    /// cannot be aborted) must not open partitions again after they were closed.
    closed: bool,
    /// What the last reconcile applied, per topic id: the topic as the image had it and its log config. A
    /// topic whose image and config are still these is skipped, and of a changed topic only the partitions
    /// whose state changed are applied: with thousands of hosted partitions a full walk for every committed
    /// ISR change kept a core busy.
    applied: HashMap<Uuid, (Arc<TopicImage>, LogConfig)>,
}

/// A partition [`ReplicaManager::reconcile`] opens.
struct ToOpen {
    tp: TopicPartition,
    dir: PathBuf,
    topic_id: Uuid,
    role: Role,
    config: LogConfig,
    /// How the partition's directory was left: clean only for one found at start in a data directory that was
    /// shut down cleanly. `None` for a partition new to this broker: no directory yet, and none is made until
    /// its first write ([`PartitionLog::create_deferred`]).
    last: Option<LastShutdown>,
}

/// Kafka's `producer.id.expiration.ms` default (one day), until the broker applies its setting.
const DEFAULT_PRODUCER_ID_EXPIRATION_MS: i64 = 86_400_000;

fn read_topic_id(dir: &Path) -> Option<Uuid> {
    let text = std::fs::read_to_string(dir.join(PARTITION_METADATA_FILE)).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("topic_id:"))
        .and_then(|v| Uuid::parse_str(v.trim()).ok())
}

fn write_topic_id(dir: &Path, id: Uuid) -> std::io::Result<()> {
    let file = topic_id_file(id);
    std::fs::write(dir.join(file.name), file.contents)
}

/// Kafka's `partition.metadata`: which topic (by id) a partition directory belongs to.
fn topic_id_file(id: Uuid) -> SeedFile {
    SeedFile {
        name: PARTITION_METADATA_FILE.to_string(),
        contents: format!("version: 0\ntopic_id: {id}\n").into_bytes(),
    }
}

impl ReplicaManager {
    /// Scans the data directories for existing partitions; they are opened (and recovered) on the first
    /// reconcile, once the metadata says which of them still exist. Each directory's clean-shutdown marker is
    /// taken here, its removal durable before any log of it is opened or written (so a crash from now on is
    /// recovered as one).
    pub fn new(node_id: i32, log_dirs: Vec<PathBuf>, defaults: LogConfig) -> std::io::Result<Self> {
        let mut found = BTreeMap::new();
        let mut last_shutdown = HashMap::new();
        let mut filesystem_syncs = HashMap::new();
        for dir in &log_dirs {
            std::fs::create_dir_all(dir)?;
            let last = take_clean_shutdown_marker(dir).map_err(std::io::Error::other)?;
            tracing::info!(dir = %dir.display(), last_shutdown = ?last, "data directory");
            last_shutdown.insert(dir.clone(), last);
            match FilesystemSync::open(dir) {
                Ok(Some(sync)) => {
                    filesystem_syncs.insert(dir.clone(), sync);
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(dir = %dir.display(), error = %e, "no syncfs handle; shutdown fsyncs each log of this directory")
                }
            }
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
            last_shutdown,
            unclean_dirs: parking_lot::Mutex::new(std::collections::HashSet::new()),
            filesystem_syncs,
            reconciling: parking_lot::Mutex::new(ReconcileState {
                newest_offset: i64::MIN,
                complete: false,
                closed: false,
                applied: HashMap::new(),
            }),
            checkpointed_hw: parking_lot::Mutex::new(checkpointed_hw),
            recovery_threads_per_dir: std::sync::atomic::AtomicUsize::new(2),
            static_recovery_threads_per_dir: std::sync::atomic::AtomicUsize::new(2),
            producer_id_expiration_ms: std::sync::atomic::AtomicI64::new(
                DEFAULT_PRODUCER_ID_EXPIRATION_MS,
            ),
            dir_creator: DirCreator::default(),
            isr_check_wanted: tokio::sync::Notify::new(),
        })
    }

    /// Asks for an ISR check now rather than at its next tick (a follower outside an ISR has caught up), as
    /// Kafka expands an ISR on the follower's fetch. Requests made while a check runs make one more check.
    pub fn want_isr_check(&self) {
        self.isr_check_wanted.notify_one();
    }

    /// Resolves when [`Self::want_isr_check`] was called since the last time this resolved.
    pub async fn isr_check_wanted(&self) {
        self.isr_check_wanted.notified().await;
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

    /// The hosted partitions `wanted` names, in order (`None` where a topic is unknown or the partition not
    /// hosted), under one read of the map and with one reused key: a fetch of thousands of partitions built a
    /// key and took the lock for each.
    pub fn get_each<'a>(
        &self,
        wanted: impl IntoIterator<Item = (Option<&'a str>, i32)>,
    ) -> Vec<Option<Arc<Partition>>> {
        let map = self.partitions.read();
        let mut key = TopicPartition {
            topic: String::new(),
            partition: 0,
        };
        wanted
            .into_iter()
            .map(|(topic, partition)| {
                let topic = topic?;
                if key.topic != topic {
                    key.topic.clear();
                    key.topic.push_str(topic);
                }
                key.partition = partition;
                map.get(&key).cloned()
            })
            .collect()
    }

    pub fn all(&self) -> Vec<Arc<Partition>> {
        self.partitions.read().values().cloned().collect()
    }

    pub fn defaults(&self) -> &LogConfig {
        &self.defaults
    }

    /// How many open partitions each data directory holds, counted from where the open logs live (no
    /// filesystem calls), once per reconcile.
    fn dir_counts(&self) -> Vec<(PathBuf, usize)> {
        let mut counts: Vec<(PathBuf, usize)> =
            self.log_dirs.iter().map(|d| (d.clone(), 0)).collect();
        if counts.len() > 1 {
            for p in self.partitions.read().values() {
                let dir = p.dir();
                let parent = dir.parent();
                if let Some((_, n)) = counts.iter_mut().find(|(d, _)| Some(d.as_path()) == parent) {
                    *n += 1;
                }
            }
        }
        counts
    }

    /// The data directory holding the fewest partitions, for a new partition; counted as taken.
    fn assign_dir(counts: &mut [(PathBuf, usize)]) -> PathBuf {
        match counts.iter_mut().min_by_key(|(_, n)| *n) {
            Some((dir, n)) => {
                *n += 1;
                dir.clone()
            }
            None => PathBuf::from("."),
        }
    }

    /// `num.recovery.threads.per.data.dir`: threads per data directory opening (and recovering) partitions.
    pub fn set_recovery_threads_per_dir(&mut self, n: usize) {
        use std::sync::atomic::Ordering::Relaxed;
        self.recovery_threads_per_dir.store(n.max(1), Relaxed);
        self.static_recovery_threads_per_dir
            .store(n.max(1), Relaxed);
    }

    /// Applies the dynamic `num.recovery.threads.per.data.dir` of `image` (this broker's, else the cluster
    /// default, else the static value) to the partitions opened from now on.
    fn apply_dynamic_recovery_threads(&self, image: &MetadataImage) {
        use crate::image_ext::ImageExt;
        use std::sync::atomic::Ordering::Relaxed;
        let n = image
            .dynamic_broker_config(self.node_id, "num.recovery.threads.per.data.dir")
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or_else(|| self.static_recovery_threads_per_dir.load(Relaxed));
        self.recovery_threads_per_dir.store(n.max(1), Relaxed);
    }

    /// The threads per data directory that open partitions now.
    pub fn recovery_threads_per_dir(&self) -> usize {
        self.recovery_threads_per_dir
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Opens `list`, each data directory's partitions on up to `num.recovery.threads.per.data.dir` threads of
    /// their own (Kafka's recovery pools), so a restart with many partitions to recover is not serial.
    fn open_all(
        &self,
        list: Vec<ToOpen>,
    ) -> Vec<(
        TopicPartition,
        PathBuf,
        bool,
        Result<Partition, StorageError>,
    )> {
        self.per_dir_pool(
            list,
            |o| o.dir.parent().map(Path::to_path_buf).unwrap_or_default(),
            |o| {
                let new = o.last.is_none();
                let opened =
                    self.open_partition(&o.tp, &o.dir, o.topic_id, o.role, o.config, o.last);
                (o.tp, o.dir, new, opened)
            },
        )
    }

    /// Runs `work` on every item, the items of each data directory (`dir_of`) on up to
    /// `num.recovery.threads.per.data.dir` threads of their own: Kafka's pools for recovery at start and
    /// flushing at shutdown. With thousands of partitions, one fsync after another takes minutes on a busy
    /// disk; in parallel the filesystem commits them together.
    fn per_dir_pool<T: Send, R: Send>(
        &self,
        items: Vec<T>,
        dir_of: impl Fn(&T) -> PathBuf,
        work: impl Fn(T) -> R + Sync,
    ) -> Vec<R> {
        let per_dir = self.recovery_threads_per_dir();
        if items.len() <= 1 || per_dir <= 1 && self.log_dirs.len() <= 1 {
            return items.into_iter().map(work).collect();
        }
        let mut by_dir: BTreeMap<PathBuf, Vec<T>> = BTreeMap::new();
        for item in items {
            by_dir.entry(dir_of(&item)).or_default().push(item);
        }
        let results = parking_lot::Mutex::new(Vec::new());
        let work = &work;
        std::thread::scope(|scope| {
            for queue in by_dir.into_values() {
                let threads = per_dir.min(queue.len());
                let queue = Arc::new(parking_lot::Mutex::new(queue));
                for _ in 0..threads {
                    let queue = queue.clone();
                    let results = &results;
                    scope.spawn(move || loop {
                        let Some(item) = queue.lock().pop() else {
                            break;
                        };
                        let r = work(item);
                        results.lock().push(r);
                    });
                }
            }
        });
        results.into_inner()
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
        let mut state = self.reconciling.lock();
        if state.closed {
            return;
        }
        let offset = image.last_applied_offset();
        // An older image, or the same one already reconciled in full (a CreateTopics handler and the image
        // watcher both reconcile each change; the second pass over every hosted partition would be wasted).
        if offset < state.newest_offset || (offset == state.newest_offset && state.complete) {
            return;
        }
        state.newest_offset = offset;
        state.complete = false;
        self.apply_dynamic_recovery_threads(image);
        let mut complete = true;
        let applied = &mut state.applied;
        let mut wanted: HashMap<TopicPartition, (Uuid, Role, LogConfig)> = HashMap::new();
        // Topics whose partitions this pass applies in full (recorded as applied at the end unless one fails).
        let mut applying: HashMap<Uuid, (Arc<TopicImage>, LogConfig)> = HashMap::new();
        let dynamic = log_config::dynamic_topic_defaults(image, self.node_id);
        for topic in image.topics() {
            let config = log_config::for_topic(
                &self.defaults,
                &log_config::with_dynamic_defaults(&dynamic, image.topic_configs(&topic.name)),
            );
            let before = applied
                .get(&topic.id)
                .filter(|(_, c)| *c == config)
                .map(|(t, _)| t.clone());
            if before.as_ref().is_some_and(|t| Arc::ptr_eq(t, topic)) {
                continue;
            }
            for (index, p) in topic.partitions.iter() {
                if !p.replicas.contains(&self.node_id) {
                    continue;
                }
                // Unchanged since the last pass, with the same config: nothing to apply.
                if before
                    .as_ref()
                    .is_some_and(|t| t.partitions.get(index) == Some(p))
                {
                    continue;
                }
                wanted.insert(
                    TopicPartition {
                        topic: topic.name.clone(),
                        partition: *index,
                    },
                    (topic.id, self.role_for(p), config.clone()),
                );
            }
            applying.insert(topic.id, (topic.clone(), config));
        }
        applied.retain(|id, _| image.topic_by_id(id).is_some());

        // Close and delete partitions that are gone, no longer assigned here, or whose topic was re-created
        // under a new id.
        let stale: Vec<TopicPartition> = {
            let parts = self.partitions.read();
            parts
                .iter()
                .filter(|(tp, p)| {
                    let assigned = image
                        .topic(&tp.topic)
                        .filter(|t| t.id == p.topic_id)
                        .and_then(|t| t.partitions.get(&tp.partition))
                        .is_some_and(|state| state.replicas.contains(&self.node_id));
                    !assigned
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
        // New partitions are placed with the directory counts taken once, not recounted per partition.
        let mut counts = self.dir_counts();
        let mut to_open = Vec::new();
        for (tp, (topic_id, role, config)) in wanted {
            if let Some(p) = self.get(&tp.topic, tp.partition) {
                p.apply_role(role, now);
                p.update_config(config);
                continue;
            }
            let existing = unclaimed.as_mut().and_then(|u| u.remove(&tp));
            let (dir, last) = match existing {
                Some(dir) if read_topic_id(&dir).is_none_or(|id| id == topic_id) => {
                    let last = self.last_shutdown_of(&dir);
                    (dir, Some(last))
                }
                Some(dir) => {
                    tracing::info!(dir = %dir.display(), "removing log of an earlier topic with the same name");
                    self.remove_stray_dir(&dir);
                    let dir = Self::assign_dir(&mut counts)
                        .join(partition_dir_name(&tp.topic, tp.partition));
                    (dir, None)
                }
                None => {
                    let dir = Self::assign_dir(&mut counts)
                        .join(partition_dir_name(&tp.topic, tp.partition));
                    (dir, None)
                }
            };
            to_open.push(ToOpen {
                tp,
                dir,
                topic_id,
                role,
                config,
                last,
            });
        }
        let mut failed_topics = Vec::new();
        // New partitions (no directory yet), the ones this broker leads first: clients write to those at once.
        let mut new_dirs = Vec::new();
        for (tp, dir, new, opened) in self.open_all(to_open) {
            match opened {
                Ok(p) => {
                    let p = Arc::new(p);
                    if new {
                        new_dirs.push((!p.is_leader(), Arc::downgrade(&p)));
                    }
                    self.partitions.write().insert(tp, p);
                }
                Err(e) => {
                    complete = false;
                    tracing::error!(topic = %tp.topic, partition = tp.partition, error = %e, "cannot open partition log");
                    // Left on disk as it is, not closed by this process: no clean-shutdown marker for its directory.
                    self.mark_unclean(&dir);
                    failed_topics.push(tp.topic);
                }
            }
        }
        // A topic with a partition that failed to open is walked in full again next time.
        applying.retain(|_, (t, _)| !failed_topics.contains(&t.name));
        applied.extend(applying);
        // Whatever the first image did not claim belongs to topics deleted while this broker was down.
        if let Some(rest) = unclaimed.take() {
            for (tp, dir) in rest {
                tracing::info!(topic = %tp.topic, partition = tp.partition, "deleting log of a topic that no longer exists");
                self.remove_stray_dir(&dir);
            }
        }
        // A partition that failed to open is tried again on the next call, even with the same image.
        state.complete = complete;
        new_dirs.sort_by_key(|(follower, _)| *follower);
        self.dir_creator
            .queue(new_dirs.into_iter().map(|(_, p)| p).collect());
    }

    /// How the data directory holding partition directory `dir` was left by the last process.
    fn last_shutdown_of(&self, dir: &Path) -> LastShutdown {
        dir.parent()
            .and_then(|d| self.last_shutdown.get(d))
            .copied()
            .unwrap_or(LastShutdown::Unclean)
    }

    /// Keeps the data directory holding partition directory `dir` from getting a clean-shutdown marker.
    fn mark_unclean(&self, dir: &Path) {
        if let Some(parent) = dir.parent() {
            self.unclean_dirs.lock().insert(parent.to_path_buf());
        }
    }

    /// Removes a partition directory no image wants; one that stays is not known to be closed cleanly.
    fn remove_stray_dir(&self, dir: &Path) {
        if let Err(e) = std::fs::remove_dir_all(dir) {
            tracing::error!(dir = %dir.display(), error = %e, "cannot remove stray partition dir");
            self.mark_unclean(dir);
        }
    }

    fn open_partition(
        &self,
        tp: &TopicPartition,
        dir: &Path,
        topic_id: Uuid,
        role: Role,
        config: LogConfig,
        last: Option<LastShutdown>,
    ) -> Result<Partition, StorageError> {
        let log = match last {
            Some(last) => {
                let log = PartitionLog::open_after(dir, config, last)?;
                if let Err(e) = write_topic_id(dir, topic_id) {
                    tracing::warn!(dir = %dir.display(), error = %e, "cannot write partition.metadata");
                }
                log
            }
            // The topic id goes into the directory with its first file, so a directory never exists without it
            // (a directory without it would be taken for any topic of that name at the next start).
            None => PartitionLog::create_deferred(dir, config, vec![topic_id_file(topic_id)])?,
        };
        tracing::debug!(topic = %tp.topic, partition = tp.partition, leo = log.log_end_offset(), "partition opened");
        let hw = self.checkpointed_hw.lock().remove(tp).unwrap_or(0);
        let now_ms = crate::context::now_ms();
        let partition = Partition::open(
            tp.topic.clone(),
            topic_id,
            tp.partition,
            log,
            role,
            now_ms,
            hw,
        );
        // Producers already idle too long are not brought back from the log (Kafka drops expired entries
        // when it loads producer state).
        let expired = partition.expire_producers(
            now_ms,
            self.producer_id_expiration_ms
                .load(std::sync::atomic::Ordering::Relaxed),
        );
        if expired > 0 {
            tracing::debug!(topic = %tp.topic, partition = tp.partition, producers = expired, "expired producer ids not loaded");
        }
        Ok(partition)
    }

    fn delete_partition(&self, tp: &TopicPartition, p: Arc<Partition>) {
        match Arc::try_unwrap(p) {
            Ok(p) => {
                let dir = p.dir().to_path_buf();
                if let Err(e) = p.into_log().delete() {
                    tracing::error!(topic = %tp.topic, partition = tp.partition, error = %e, "cannot delete partition log");
                    self.mark_unclean(&dir);
                } else {
                    tracing::info!(topic = %tp.topic, partition = tp.partition, "partition deleted");
                }
            }
            Err(shared) => {
                // A request (or the directory creator) still holds it: it refuses writes from now on, and the
                // files go now; the handle dies with its holder.
                let removed = shared.retire(|dir| match std::fs::remove_dir_all(dir) {
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                    r => r.map_err(|e| (dir.to_path_buf(), e)),
                });
                match removed {
                    Ok(()) => {
                        tracing::info!(topic = %tp.topic, partition = tp.partition, "partition deleted (still open elsewhere)")
                    }
                    Err((dir, e)) => {
                        tracing::error!(dir = %dir.display(), error = %e, "cannot delete partition dir");
                        self.mark_unclean(&dir);
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

    /// The `producer.id.expiration.ms` partitions opened from now on apply as they load.
    pub fn set_producer_id_expiration_ms(&self, expiration_ms: i64) {
        self.producer_id_expiration_ms
            .store(expiration_ms, std::sync::atomic::Ordering::Relaxed);
    }

    /// Kafka's producer-state expiration: every partition forgets the producers idle for `expiration_ms`
    /// (which partitions opened later apply too).
    pub fn expire_producers(&self, now_ms: i64, expiration_ms: i64) -> usize {
        self.set_producer_id_expiration_ms(expiration_ms);
        self.all()
            .iter()
            .map(|p| p.expire_producers(now_ms, expiration_ms))
            .sum()
    }

    /// Kafka's log flusher: fsyncs every partition whose unflushed data is older than its `flush.ms`. Returns how
    /// many were flushed.
    pub fn flush_due(&self, now_ms: i64) -> usize {
        let mut flushed = 0;
        for p in self.all() {
            match p.flush_if_due(now_ms) {
                Ok(true) => flushed += 1,
                Ok(false) => {}
                Err(e) => {
                    tracing::error!(topic = %p.topic, partition = p.index, error = %e, "flush failed")
                }
            }
        }
        flushed
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

    /// Closes every log and makes it durable, then writes the clean-shutdown marker of each data directory whose
    /// logs all closed (and none of which failed to open or to be removed), so the next start skips their
    /// recovery. A directory with a [`FilesystemSync`] has its logs closed without fsyncs and then synced with
    /// one `syncfs`; elsewhere each log fsyncs its own files as it closes.
    pub fn shutdown(&self) {
        // Waits for a reconcile in progress; none runs after this.
        self.reconciling.lock().closed = true;
        self.dir_creator.close();
        self.checkpoint_high_watermarks();
        let parts: Vec<(TopicPartition, Arc<Partition>)> =
            self.partitions.write().drain().collect();
        let started = std::time::Instant::now();
        let count = parts.len();
        let closed = self.per_dir_pool(
            parts,
            |(_, p)| p.dir().parent().map(Path::to_path_buf).unwrap_or_default(),
            |(tp, p)| {
                let dir = p.dir().to_path_buf();
                let synced_later = dir
                    .parent()
                    .is_some_and(|d| self.filesystem_syncs.contains_key(d));
                let close = |log: PartitionLog| {
                    if synced_later {
                        log.close_unsynced()
                    } else {
                        log.close()
                    }
                };
                let closed = match Arc::try_unwrap(p) {
                    Ok(p) => match close(p.into_log()) {
                        Ok(()) => true,
                        Err(e) => {
                            tracing::error!(topic = %tp.topic, partition = tp.partition, error = %e, "close failed");
                            false
                        }
                    },
                    // Still held by a request, which may write after this flush: not closed.
                    Err(p) => {
                        tracing::warn!(topic = %tp.topic, partition = tp.partition, "log still in use at shutdown; flushed, not closed");
                        if let Err(e) = p.flush() {
                            tracing::error!(topic = %tp.topic, partition = tp.partition, error = %e, "flush failed");
                        }
                        false
                    }
                };
                (dir, closed)
            },
        );
        for (dir, ok) in closed {
            if !ok {
                self.mark_unclean(&dir);
            }
        }
        for dir in &self.log_dirs {
            let Some(sync) = self.filesystem_syncs.get(dir) else {
                continue;
            };
            let started = std::time::Instant::now();
            match sync.sync() {
                Ok(()) => tracing::info!(
                    dir = %dir.display(),
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "data directory synced"
                ),
                Err(e) => {
                    tracing::error!(dir = %dir.display(), error = %e, "syncfs failed; the next start recovers this directory");
                    self.unclean_dirs.lock().insert(dir.clone());
                }
            }
        }
        let unclean = self.unclean_dirs.lock().clone();
        for dir in &self.log_dirs {
            if unclean.contains(dir) {
                tracing::warn!(dir = %dir.display(), "not every log of this directory was closed; the next start recovers them");
                continue;
            }
            if let Err(e) = write_clean_shutdown_marker(dir) {
                tracing::error!(dir = %dir.display(), error = %e, "cannot write the clean-shutdown marker");
            }
        }
        tracing::info!(
            partitions = count,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "partition logs closed"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kraftwerk_controller::records::{ConfigRecord, MetadataRecord, PartitionRecord};

    fn topic(name: &str, partitions: i32, node: i32) -> Vec<MetadataRecord> {
        let id = Uuid::new_v4();
        let mut out = vec![MetadataRecord::Topic {
            name: name.into(),
            id,
        }];
        for p in 0..partitions {
            out.push(MetadataRecord::Partition(PartitionRecord {
                topic_id: id,
                partition: p,
                replicas: vec![node],
                isr: vec![node],
                leader: node,
                ..PartitionRecord::default()
            }));
        }
        out
    }

    /// A partition reopened from its log brings back its idempotent producers, except those idle longer
    /// than `producer.id.expiration.ms` (Kafka drops expired producers when it loads their state).
    #[test]
    fn expired_producers_are_not_loaded() {
        use kraftwerk_storage::batch::BatchBuilder;
        let dir = tempfile::tempdir().unwrap();
        let image = MetadataImage::empty("c").apply(0, &topic("t", 1, 1));
        let now = crate::context::now_ms();
        {
            let m = ReplicaManager::new(1, vec![dir.path().to_path_buf()], LogConfig::default())
                .unwrap();
            m.reconcile(&image);
            let p = m.get("t", 0).unwrap();
            // Producer 7 last wrote two hours ago, producer 8 a minute ago (record timestamps).
            for (producer, ts) in [(7, now - 7_200_000), (8, now - 60_000)] {
                let mut b = BatchBuilder::new(0, -1).producer(producer, 0, 0);
                b.push(ts, Some(b"k"), Some(b"v"), &[]).unwrap();
                p.append_as_leader(&b.build(), now, None).unwrap();
            }
            assert_eq!(p.producers().len(), 2);
        }
        let m =
            ReplicaManager::new(1, vec![dir.path().to_path_buf()], LogConfig::default()).unwrap();
        m.set_producer_id_expiration_ms(3_600_000);
        m.reconcile(&image);
        let ids: Vec<i64> = m
            .get("t", 0)
            .unwrap()
            .producers()
            .iter()
            .map(|p| p.producer_id)
            .collect();
        assert_eq!(ids, vec![8]);
    }

    /// Shutdown closes the logs of a directory either way: with one `syncfs` for the directory where the kernel
    /// offers it, or with each log's own fsyncs. Both leave the clean-shutdown marker, and the logs reopen
    /// trusted (not verified) with every record, their time index and max timestamp.
    #[test]
    fn shutdown_with_one_syncfs_or_an_fsync_per_log() {
        use kraftwerk_storage::batch::BatchBuilder;
        for per_log in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let dirs = vec![dir.path().to_path_buf()];
            let image = MetadataImage::empty("c").apply(0, &topic("t", 3, 1));
            let now = crate::context::now_ms();
            let mut m = ReplicaManager::new(1, dirs.clone(), LogConfig::default()).unwrap();
            let offered = FilesystemSync::open(dir.path()).unwrap().is_some();
            assert_eq!(m.filesystem_syncs.contains_key(&dirs[0]), offered);
            if per_log {
                m.filesystem_syncs.clear();
            }
            m.reconcile(&image);
            for p in m.all() {
                // t-2 gets one small batch: no offset-index entry, yet its index file must exist.
                let n = if p.dir().ends_with("t-2") { 1 } else { 200 };
                for i in 0..n {
                    let mut b = BatchBuilder::new(0, -1);
                    b.push(now + i, Some(b"k"), Some(&[b'v'; 1024]), &[])
                        .unwrap();
                    p.append_as_leader(&b.build(), now, None).unwrap();
                }
            }
            m.shutdown();
            drop(m);
            // Sealed: the time index ends with the segment's max timestamp, and no block is reserved past
            // the data.
            let seg = dir.path().join("t-0").join(format!("{:020}", 0));
            let time_index = std::fs::read(seg.with_extension("timeindex")).unwrap();
            let last = &time_index[time_index.len() - 12..];
            assert_eq!(last[..8], (now + 199).to_be_bytes(), "per_log={per_log}");
            assert_eq!(last[8..], 199i32.to_be_bytes());
            let data = std::fs::metadata(seg.with_extension("log")).unwrap();
            use std::os::unix::fs::MetadataExt;
            assert!(data.blocks() * 512 < data.len() + 64 * 1024);
            // Both indexes of a segment are on disk, or the clean open would rebuild them from the log.
            let small = dir.path().join("t-2").join(format!("{:020}", 0));
            assert!(small.with_extension("index").exists(), "per_log={per_log}");
            assert!(small.with_extension("timeindex").exists());

            let m = ReplicaManager::new(1, dirs.clone(), LogConfig::default()).unwrap();
            assert_eq!(m.last_shutdown.get(&dirs[0]), Some(&LastShutdown::Clean));
            m.reconcile(&image);
            assert_eq!(m.all().len(), 3);
            for p in m.all().into_iter().filter(|p| !p.dir().ends_with("t-2")) {
                assert_eq!(p.log_end_offset(), 200, "per_log={per_log}");
                let found = p.record_for_timestamp(now + 150).unwrap().unwrap();
                assert_eq!(found.offset, 150);
                let max = p.max_timestamp().unwrap().unwrap();
                assert_eq!((max.offset, max.timestamp), (199, now + 199));
            }
        }
    }

    /// New partitions spread evenly over the data directories (counted once per reconcile), are opened on
    /// several threads per directory, and a dynamic broker config reaches partitions already open.
    #[test]
    fn placement_parallel_open_and_dynamic_configs() {
        let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
        let mut m = ReplicaManager::new(
            1,
            dirs.iter().map(|d| d.path().to_path_buf()).collect(),
            LogConfig::default(),
        )
        .unwrap();
        m.set_recovery_threads_per_dir(4);
        let image = MetadataImage::empty("c").apply(0, &topic("t", 40, 1));
        m.reconcile(&image);
        assert_eq!(m.all().len(), 40);
        // Where each partition lives (its directory is created at its first write).
        let counts = |m: &ReplicaManager| -> Vec<usize> {
            dirs.iter()
                .map(|d| {
                    m.all()
                        .iter()
                        .filter(|p| p.dir().parent() == Some(d.path()))
                        .count()
                })
                .collect()
        };
        assert_eq!(counts(&m), vec![20, 20]);
        // A second topic keeps the balance.
        let image = image.apply(1000, &topic("u", 6, 1));
        m.reconcile(&image);
        assert_eq!(counts(&m), vec![23, 23]);
        // The cluster-wide dynamic default applies to the open partitions.
        let image = image.apply(
            2000,
            &[MetadataRecord::Config(ConfigRecord {
                resource: kraftwerk_controller::records::ConfigResource::broker(""),
                name: "log.retention.ms".into(),
                value: Some("1234".into()),
            })],
        );
        m.reconcile(&image);
        assert!(m.all().iter().all(|p| p.log_config().retention_ms == 1234));
        // num.recovery.threads.per.data.dir, dynamically for this broker, then back to the static value.
        let set = |value: Option<&str>| {
            MetadataRecord::Config(ConfigRecord {
                resource: kraftwerk_controller::records::ConfigResource::broker("1"),
                name: "num.recovery.threads.per.data.dir".into(),
                value: value.map(str::to_string),
            })
        };
        let image = image.apply(3000, &[set(Some("7"))]);
        m.reconcile(&image);
        assert_eq!(m.recovery_threads_per_dir(), 7);
        let image = image.apply(4000, &[set(None)]);
        m.reconcile(&image);
        assert_eq!(m.recovery_threads_per_dir(), 4);
    }

    /// New partitions get their directories in the background, with no write; a topic deleted meanwhile leaves
    /// none behind.
    #[test]
    fn new_partitions_get_their_directories_without_a_write() {
        let dir = tempfile::tempdir().unwrap();
        let m =
            ReplicaManager::new(1, vec![dir.path().to_path_buf()], LogConfig::default()).unwrap();
        let image = MetadataImage::empty("c").apply(0, &topic("t", 30, 1));
        m.reconcile(&image);
        let made = |n: usize| {
            (0..n).all(|i| {
                dir.path()
                    .join(format!("t-{i}"))
                    .join(PARTITION_METADATA_FILE)
                    .is_file()
            })
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !made(30) {
            assert!(std::time::Instant::now() < deadline, "directories not made");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let id = image.topic("t").unwrap().id;
        let image = image.apply(10, &topic("u", 200, 1));
        m.reconcile(&image);
        let image = image.apply(1000, &[MetadataRecord::RemoveTopic { id }]);
        let image = image.apply(
            1001,
            &[MetadataRecord::RemoveTopic {
                id: image.topic("u").unwrap().id,
            }],
        );
        m.reconcile(&image);
        assert!(m.all().is_empty());
        // Whatever the creator held when the topics went, nothing is made after.
        std::thread::sleep(std::time::Duration::from_millis(200));
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n.to_string_lossy().starts_with(['t', 'u']))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    /// A pass applies what changed since the last one: a changed partition takes its new role, a partition
    /// moved to another broker is deleted, the others stay as they are.
    #[test]
    fn changed_partitions_are_applied_and_moved_ones_deleted() {
        use kraftwerk_controller::records::PartitionChangeRecord;
        let dir = tempfile::tempdir().unwrap();
        let m =
            ReplicaManager::new(1, vec![dir.path().to_path_buf()], LogConfig::default()).unwrap();
        let image = MetadataImage::empty("c").apply(0, &topic("t", 3, 1));
        m.reconcile(&image);
        assert_eq!(m.all().len(), 3);
        let id = image.topic("t").unwrap().id;
        let change = |partition: i32, rec: PartitionChangeRecord| {
            MetadataRecord::PartitionChange(PartitionChangeRecord {
                topic_id: id,
                partition,
                ..rec
            })
        };
        let image = image.apply(
            10,
            &[
                change(
                    0,
                    PartitionChangeRecord {
                        leader: Some(1),
                        ..PartitionChangeRecord::default()
                    },
                ),
                change(
                    1,
                    PartitionChangeRecord {
                        replicas: Some(vec![2]),
                        isr: Some(vec![2]),
                        leader: Some(2),
                        ..PartitionChangeRecord::default()
                    },
                ),
            ],
        );
        m.reconcile(&image);
        assert_eq!(
            m.get("t", 0).unwrap().leader_epoch(),
            1,
            "the new epoch applied"
        );
        assert!(m.get("t", 1).is_none(), "moved away: deleted");
        assert_eq!(m.get("t", 2).unwrap().leader_epoch(), 0);
        assert_eq!(m.all().len(), 2);
        // The same image again, and a newer one changing nothing of ours: nothing moves.
        m.reconcile(&image);
        let image = image.apply(20, &topic("u", 1, 2));
        m.reconcile(&image);
        assert_eq!(m.all().len(), 2);
        assert_eq!(m.get("t", 0).unwrap().leader_epoch(), 1);
    }

    /// A change moving many leaderships here at once (another broker's controlled shutdown) is applied to
    /// every partition.
    #[test]
    fn many_leaderships_moving_here_are_all_applied() {
        use kraftwerk_controller::records::PartitionChangeRecord;
        let dir = tempfile::tempdir().unwrap();
        let m =
            ReplicaManager::new(1, vec![dir.path().to_path_buf()], LogConfig::default()).unwrap();
        let id = Uuid::new_v4();
        let count = 200;
        let mut records = vec![MetadataRecord::Topic {
            name: "t".into(),
            id,
        }];
        records.extend((0..count).map(|p| {
            MetadataRecord::Partition(PartitionRecord {
                topic_id: id,
                partition: p,
                replicas: vec![2, 1],
                isr: vec![2, 1],
                leader: 2,
                ..PartitionRecord::default()
            })
        }));
        let image = MetadataImage::empty("c").apply(0, &records);
        m.reconcile(&image);
        assert!(m.all().iter().all(|p| !p.is_leader()));
        let moves: Vec<MetadataRecord> = (0..count)
            .map(|p| {
                MetadataRecord::PartitionChange(PartitionChangeRecord {
                    topic_id: id,
                    partition: p,
                    leader: Some(1),
                    isr: Some(vec![1]),
                    ..PartitionChangeRecord::default()
                })
            })
            .collect();
        m.reconcile(&image.apply(10, &moves));
        let all = m.all();
        assert_eq!(all.len(), count as usize);
        for p in all {
            assert!(p.is_leader(), "partition {} leads", p.index);
            assert_eq!(p.leader_epoch(), 1, "partition {}", p.index);
        }
    }

    /// One clean-shutdown marker per data directory: written once all its logs are closed, taken (removed) when
    /// the next manager starts, before any log is opened; missing after a crash, and withheld from a directory
    /// with a log still in use at shutdown. No partition directory gets a marker of its own.
    #[test]
    fn clean_shutdown_marker_per_data_directory() {
        use kraftwerk_storage::log_dir::CLEAN_SHUTDOWN_MARKER;
        let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let dirs = vec![d1.path().to_path_buf(), d2.path().to_path_buf()];
        let image = MetadataImage::empty("c").apply(0, &topic("t", 4, 1));
        let marker = |d: &tempfile::TempDir| d.path().join(CLEAN_SHUTDOWN_MARKER).exists();
        let partition_markers = || {
            dirs.iter()
                .flat_map(|d| std::fs::read_dir(d).unwrap())
                .map(|e| e.unwrap().path())
                .filter(|p| p.is_dir() && p.join(CLEAN_SHUTDOWN_MARKER).exists())
                .count()
        };

        let m = ReplicaManager::new(1, dirs.clone(), LogConfig::default()).unwrap();
        m.reconcile(&image);
        assert_eq!(m.all().len(), 4);
        m.shutdown();
        assert!(marker(&d1) && marker(&d2));
        assert_eq!(partition_markers(), 0);

        // Taken at start: a crash of this run must not look clean.
        let m = ReplicaManager::new(1, dirs.clone(), LogConfig::default()).unwrap();
        assert!(!marker(&d1) && !marker(&d2));
        assert_eq!(m.last_shutdown.get(&dirs[0]), Some(&LastShutdown::Clean));
        m.reconcile(&image);
        drop(m); // crash

        let m = ReplicaManager::new(1, dirs.clone(), LogConfig::default()).unwrap();
        assert_eq!(m.last_shutdown.get(&dirs[0]), Some(&LastShutdown::Unclean));
        m.reconcile(&image);
        // A request still holds one partition: its directory is flushed, not vouched for.
        let held = m.get("t", 0).unwrap();
        let held_dir = held.dir().parent().unwrap().to_path_buf();
        m.shutdown();
        let (held_d, other_d) = if held_dir == dirs[0] {
            (&d1, &d2)
        } else {
            (&d2, &d1)
        };
        assert!(!marker(held_d));
        assert!(marker(other_d));
        drop(held);
    }
}
