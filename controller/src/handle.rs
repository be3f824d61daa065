//! Starting a controller and talking to it.
//!
//! [`start`] opens the metadata directory, replays the committed log into an image and starts
//! the node on its own thread. [`ControllerHandle`] is the cheap, cloneable client the broker
//! keeps: reads come from the latest published image without touching the node; writes go
//! through the node's mailbox and resolve once their records commit.

use std::path::Path;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, watch};
use uuid::Uuid;

use crate::api::{
    AlterConfigSpec, BrokerRegistration, CreatePartitionsSpec, CreateTopicSpec, CreatedTopic,
    ElectLeadersTopic, ElectionType, FailUncommitted, ProducerIdBlock, ResourceResult,
    TopicElection, TopicRef, TopicResult,
};
use crate::config::ControllerConfig;
use crate::error::ControllerError;
use crate::image::MetadataImage;
use crate::membership::Membership;
use crate::meta_properties;
use crate::node::{self, Command, Node, NodeParts, Operation, Pending, SharedStatus};
use crate::ops::{self, OpContext, OpOutput};
use crate::policy::Policies;
use crate::raft_log::partition_store::PartitionEntryStore;
use crate::raft_log::partition_store::METADATA_TOPIC;
use crate::raft_log::quorum_state::QuorumStateFile;
use crate::raft_log::{EntryStore, HardStateStore, RaftStorage, SnapshotDir};
use crate::transport::{RaftMessage, Transport};
use kraftwerk_storage::partition_dir_name;

/// Mailbox capacity; proposals wait for room, peer messages are dropped when it is full.
const MAILBOX_CAPACITY: usize = 4096;

/// A running controller. Dropping it without [`Controller::shutdown`] leaves the node running
/// until every handle is gone.
pub struct Controller {
    handle: ControllerHandle,
    stopped: oneshot::Receiver<()>,
}

/// A cloneable client of a running controller.
#[derive(Clone)]
pub struct ControllerHandle {
    mailbox: mpsc::Sender<Command>,
    image: watch::Receiver<Arc<MetadataImage>>,
    membership: watch::Receiver<Arc<Membership>>,
    status: Arc<SharedStatus>,
}

/// Starts a controller with no operator policies.
pub async fn start(
    config: ControllerConfig,
    transport: Arc<dyn Transport>,
) -> Result<Controller, ControllerError> {
    start_with_policies(config, transport, Policies::default()).await
}

/// Starts a controller whose topic creations and config changes are vetted by `policies`.
pub async fn start_with_policies(
    config: ControllerConfig,
    transport: Arc<dyn Transport>,
    policies: Policies,
) -> Result<Controller, ControllerError> {
    config.validate()?;
    let dir = config.metadata_dir.clone();
    let (cluster_id, node_id) = (config.cluster_id.clone(), config.node_id);
    let stores =
        tokio::task::spawn_blocking(move || open_durable_stores(&dir, &cluster_id, node_id))
            .await
            .map_err(|e| {
                ControllerError::Internal(format!("opening the metadata dir panicked: {e}"))
            })??;
    start_on_stores(config, transport, policies, stores).await
}

/// The durable parts of a controller: the log, the hard state and the snapshots.
pub(crate) struct Stores {
    pub log: Box<dyn EntryStore>,
    pub quorum: Box<dyn HardStateStore>,
    pub snapshots: SnapshotDir,
}

fn open_durable_stores(
    dir: &Path,
    cluster_id: &str,
    node_id: i32,
) -> Result<Stores, ControllerError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| ControllerError::Storage(format!("create {}: {e}", dir.display())))?;
    meta_properties::ensure(dir, cluster_id, node_id)?;
    let log =
        PartitionEntryStore::open(dir).map_err(|e| ControllerError::Storage(e.to_string()))?;
    Ok(Stores {
        log: Box::new(log),
        quorum: Box::new(QuorumStateFile::new(dir)),
        snapshots: SnapshotDir::on_disk(dir.join(partition_dir_name(METADATA_TOPIC, 0))),
    })
}

/// Starts a controller on the given stores (durable ones from `start`, in-memory ones in tests).
pub(crate) async fn start_on_stores(
    config: ControllerConfig,
    transport: Arc<dyn Transport>,
    policies: Policies,
    stores: Stores,
) -> Result<Controller, ControllerError> {
    config.validate()?;
    let initial = Membership::from_static(&config.voters, &config.listener_name);
    let cluster_id = config.cluster_id.clone();
    let (storage, image) = tokio::task::spawn_blocking(move || {
        let storage = RaftStorage::open(stores.log, stores.quorum, initial, stores.snapshots)?;
        let image = node::replay(&cluster_id, &storage)?;
        Ok::<_, crate::raft_log::LogError>((storage, image))
    })
    .await
    .map_err(|e| ControllerError::Internal(format!("replaying the metadata log panicked: {e}")))?
    .map_err(|e| ControllerError::Storage(e.to_string()))?;
    tracing::info!(
        node_id = config.node_id,
        offset = image.last_applied_offset(),
        topics = image.topics_by_name().len(),
        "replayed the metadata log"
    );

    let (image_tx, image_rx) = watch::channel(Arc::new(image.clone()));
    let (membership_tx, membership_rx) = watch::channel(Arc::new(storage.membership().clone()));
    let status = Arc::new(SharedStatus::default());
    let ctx = OpContext {
        default_num_partitions: config.default_num_partitions,
        default_replication_factor: config.default_replication_factor,
        policies,
        election: ops::election::ElectionPolicy {
            node_id: config.node_id,
            unclean_leader_election_enable: config.unclean_leader_election_enable,
        },
        new_topic_id: Box::new(Uuid::new_v4),
        new_acl_id: Box::new(Uuid::new_v4),
    };
    let node = Node::new(NodeParts {
        node_id: config.node_id,
        tick: config.tick,
        snapshot_bytes: config.snapshot_bytes,
        storage,
        transport,
        ctx,
        image,
        image_tx,
        membership_tx,
        status: status.clone(),
    })
    .map_err(|e| ControllerError::Raft(e.to_string()))?;

    let (mailbox, inbox) = mpsc::channel(MAILBOX_CAPACITY);
    let (stopped_tx, stopped) = oneshot::channel();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(|e| ControllerError::Internal(format!("controller runtime: {e}")))?;
    let thread_status = status.clone();
    std::thread::Builder::new()
        .name(format!("controller-{}", config.node_id))
        .spawn(move || {
            // A panic in raft-rs or the node must not leave a zombie that still claims leadership: record it and
            // report "no leader" so every request answers NOT_CONTROLLER and brokers go to another controller.
            let run = std::panic::AssertUnwindSafe(|| runtime.block_on(node.run(inbox)));
            if std::panic::catch_unwind(run).is_err() {
                tracing::error!("the controller node panicked; this controller no longer takes part in the quorum");
                thread_status.set(None, false);
            }
            let _ = stopped_tx.send(());
        })
        .map_err(|e| ControllerError::Internal(format!("controller thread: {e}")))?;

    Ok(Controller {
        handle: ControllerHandle {
            mailbox,
            image: image_rx,
            membership: membership_rx,
            status,
        },
        stopped,
    })
}

impl Controller {
    /// A client of this controller.
    pub fn handle(&self) -> ControllerHandle {
        self.handle.clone()
    }

    /// Stops the node and waits until it has closed the metadata log. Requests still waiting
    /// for a commit answer NOT_CONTROLLER.
    pub async fn shutdown(self) {
        // If the node already stopped the mailbox is closed; either way we wait for `stopped`.
        let _ = self.handle.mailbox.send(Command::Shutdown).await;
        let _ = self.stopped.await;
    }
}

fn not_controller<T>(name: Option<String>) -> TopicResult<T> {
    TopicResult {
        name,
        result: Err(ControllerError::NotController),
    }
}

impl ControllerHandle {
    /// The latest committed metadata.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.image.borrow().clone()
    }

    /// A receiver that sees every newly published image.
    pub fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.image.clone()
    }

    /// The quorum's membership as of the applied log: voters and learners with their endpoints.
    pub fn membership(&self) -> Arc<Membership> {
        self.membership.borrow().clone()
    }

    /// Adds a controller as a voter (KIP-853 AddRaftVoter): it joins as a raft learner, and is promoted once
    /// its log has caught up with the commit index; REQUEST_TIMED_OUT if that takes longer than `timeout`.
    /// Answered once the promotion has committed, or with `ack_when_committed` false (AddRaftVoter v1) once the
    /// leader has appended it. UNSUPPORTED_VERSION while the quorum's kraft.version is 0.
    pub async fn add_voter(
        &self,
        member: crate::membership::Member,
        timeout: std::time::Duration,
        ack_when_committed: bool,
    ) -> Result<(), ControllerError> {
        self.change_membership(
            node::MembershipRequest::Add {
                member,
                ack_when_committed,
            },
            timeout,
        )
        .await
    }

    /// Removes a voter (or a learner left by a failed addition); KIP-853 RemoveRaftVoter. A zero
    /// `directory_id` matches any (and a voter from the static configuration matches any).
    pub async fn remove_voter(
        &self,
        id: i32,
        directory_id: Uuid,
        timeout: std::time::Duration,
    ) -> Result<(), ControllerError> {
        self.change_membership(
            node::MembershipRequest::Remove { id, directory_id },
            timeout,
        )
        .await
    }

    /// Replaces a voter's endpoints (KIP-853 UpdateRaftVoter).
    pub async fn update_voter(
        &self,
        member: crate::membership::Member,
        timeout: std::time::Duration,
    ) -> Result<(), ControllerError> {
        self.change_membership(node::MembershipRequest::Update(member), timeout)
            .await
    }

    async fn change_membership(
        &self,
        request: node::MembershipRequest,
        timeout: std::time::Duration,
    ) -> Result<(), ControllerError> {
        let (reply, answer) = oneshot::channel();
        self.mailbox
            .send(Command::ChangeMembership {
                request,
                timeout,
                reply,
            })
            .await
            .map_err(|_| ControllerError::NotController)?;
        answer.await.map_err(|_| ControllerError::NotController)?
    }

    /// Whether this node is the raft leader (the active controller).
    pub fn is_leader(&self) -> bool {
        self.status.is_leader()
    }

    /// The active controller's node id, if known.
    pub fn leader_id(&self) -> Option<i32> {
        self.status.leader()
    }

    /// Hands a raft message from a peer to the node. Never blocks: if the node is backed up the
    /// message is dropped and raft retransmits.
    pub fn step(&self, message: RaftMessage) {
        if self
            .mailbox
            .try_send(Command::Step(Box::new(message)))
            .is_err()
        {
            tracing::debug!("controller mailbox full or closed; dropping a raft message");
        }
    }

    /// Committed metadata entries from raft index `from_index` (for a broker following the log). Waits up
    /// to `max_wait` for something new when the follower is caught up: the node parks the read and answers
    /// it as soon as an entry commits.
    pub async fn read_committed(
        &self,
        from_index: u64,
        max_bytes: u64,
        max_wait: std::time::Duration,
    ) -> Result<crate::rpc::MetadataChunk, ControllerError> {
        let read = |wait: bool| async move {
            let (reply, answer) = oneshot::channel();
            self.mailbox
                .send(Command::ReadCommitted {
                    from_index,
                    max_bytes,
                    wait,
                    reply,
                })
                .await
                .map_err(|_| ControllerError::NotController)?;
            Ok::<_, ControllerError>(answer)
        };
        let answer = if max_wait.is_zero() {
            read(false).await?.await
        } else {
            match tokio::time::timeout(max_wait, read(true).await?).await {
                Ok(answer) => answer,
                // Nothing committed in time (the parked read leaves with its receiver): answer what there is
                // now, usually nothing.
                Err(_) => read(false).await?.await,
            }
        };
        answer.map_err(|_| ControllerError::NotController)?
    }

    /// DescribeQuorum as this node sees it; NOT_CONTROLLER unless it is the leader.
    pub async fn describe_quorum(&self) -> Result<crate::rpc::QuorumInfo, ControllerError> {
        let (reply, answer) = oneshot::channel();
        self.mailbox
            .send(Command::DescribeQuorum { reply })
            .await
            .map_err(|_| ControllerError::NotController)?;
        answer.await.map_err(|_| ControllerError::NotController)?
    }

    /// Runs `op` on the leader and waits for its records to commit. `None` if the node refused
    /// (not the leader) or stopped before answering.
    async fn submit<R, F>(&self, op: F) -> Option<R>
    where
        R: FailUncommitted + Send + 'static,
        F: FnOnce(&MetadataImage, &mut OpContext) -> OpOutput<R> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let operation: Operation = Box::new(move |image, ctx| {
            let OpOutput { records, response } = op(image, ctx);
            Pending {
                records,
                complete: Box::new(move |outcome| {
                    let response = match outcome {
                        Ok(()) => response,
                        Err(e) => response.fail_uncommitted(&e),
                    };
                    let _ = tx.send(response);
                }),
            }
        });
        self.mailbox.send(Command::Propose(operation)).await.ok()?;
        rx.await.ok()
    }

    /// AlterPartition: a leader's ISR change, validated against the partition's epochs (see
    /// `ops::partitions::alter_partition`).
    pub async fn alter_partition(
        &self,
        req: crate::api::AlterPartitionRequest,
    ) -> Result<crate::api::PartitionState, ControllerError> {
        self.submit(move |image, _| ops::partitions::alter_partition(image, &req))
            .await
            .unwrap_or(Err(ControllerError::NotController))
    }

    /// AlterPartition with several partitions: each item decided on its own, the accepted changes written in
    /// one commit (see `ops::partitions::alter_partitions`). One result per item, in order.
    pub async fn alter_partitions(
        &self,
        reqs: Vec<crate::api::AlterPartitionRequest>,
    ) -> Vec<Result<crate::api::PartitionState, ControllerError>> {
        let n = reqs.len();
        self.submit(move |image, _| ops::partitions::alter_partitions(image, &reqs))
            .await
            .unwrap_or_else(|| vec![Err(ControllerError::NotController); n])
    }

    /// Registers (or re-registers) a broker; it is unfenced from then on.
    pub async fn register_broker(&self, reg: BrokerRegistration) -> Result<(), ControllerError> {
        // A new incarnation per registration, drawn here so the operation stays deterministic.
        let incarnation_id = uuid::Uuid::new_v4();
        self.submit(move |image, ctx| {
            ops::brokers::register_broker(image, &ctx.election, &reg, incarnation_id)
        })
        .await
        .unwrap_or(Err(ControllerError::NotController))
    }

    /// Writes the bootstrap records (`metadata.version` and the SCRAM credentials of `kraftwerk format
    /// --add-scram`, from `bootstrap.checkpoint`) if the cluster has no `metadata.version` yet: the first active
    /// controller of a new cluster.
    pub async fn bootstrap_metadata(
        &self,
        bootstrap: Vec<crate::records::MetadataRecord>,
    ) -> Result<(), ControllerError> {
        self.submit(move |image, _| ops::features::bootstrap_metadata(image, &bootstrap))
            .await
            .unwrap_or(Err(ControllerError::NotController))
    }

    /// Fences a broker: its leaderships move to other in-sync replicas.
    pub async fn fence_broker(&self, broker_id: i32) -> Result<(), ControllerError> {
        self.submit(move |image, ctx| ops::brokers::fence_broker(image, &ctx.election, broker_id))
            .await
            .unwrap_or(Err(ControllerError::NotController))
    }

    /// Unfences a broker.
    pub async fn unfence_broker(&self, broker_id: i32) -> Result<(), ControllerError> {
        self.submit(move |image, ctx| ops::brokers::unfence_broker(image, &ctx.election, broker_id))
            .await
            .unwrap_or(Err(ControllerError::NotController))
    }

    /// Removes a broker from the cluster.
    pub async fn unregister_broker(&self, broker_id: i32) -> Result<(), ControllerError> {
        self.submit(move |image, ctx| {
            ops::brokers::unregister_broker(image, &ctx.election, broker_id)
        })
        .await
        .unwrap_or(Err(ControllerError::NotController))
    }

    /// ElectLeaders: PREFERRED or UNCLEAN elections for the named partitions (`None`: every partition, and
    /// only those where an election happened or failed are reported).
    pub async fn elect_leaders(
        &self,
        election_type: ElectionType,
        topics: Option<Vec<ElectLeadersTopic>>,
    ) -> Result<Vec<TopicElection>, ControllerError> {
        self.submit(move |image, _| {
            ops::leaders::elect_leaders(image, election_type, topics.as_deref())
        })
        .await
        .ok_or(ControllerError::NotController)
    }

    /// One pass of the preferred-leader rebalance (see `ops::leaders::rebalance_leaders`): moves at most
    /// [`ops::leaders::MAX_MOVES_PER_BATCH`] leaderships in one batch; `more` says whether to run another.
    pub async fn rebalance_leaders(
        &self,
        imbalance_percentage: u32,
    ) -> Result<ops::leaders::RebalancePass, ControllerError> {
        self.submit(move |image, _| {
            let out = ops::leaders::rebalance_leaders(
                image,
                imbalance_percentage,
                ops::leaders::MAX_MOVES_PER_BATCH,
            );
            OpOutput {
                records: out.records,
                response: Ok(out.response),
            }
        })
        .await
        .unwrap_or(Err(ControllerError::NotController))
    }

    /// Hands `broker_id` the next block of producer ids (AllocateProducerIds in Kafka); committed before
    /// it is returned, so no id is ever given out twice, across restarts and controller failover.
    pub async fn allocate_producer_ids(
        &self,
        broker_id: i32,
    ) -> Result<ProducerIdBlock, ControllerError> {
        self.submit(move |image, _| ops::producer_ids::allocate(image, broker_id))
            .await
            .unwrap_or(Err(ControllerError::NotController))
    }

    /// CreateTopics. One result per spec, in order.
    pub async fn create_topics(
        &self,
        topics: Vec<CreateTopicSpec>,
        validate_only: bool,
    ) -> Vec<TopicResult<CreatedTopic>> {
        let names: Vec<_> = topics.iter().map(|t| Some(t.name.clone())).collect();
        self.submit(move |image, ctx| {
            ops::topics::create_topics(image, ctx, &topics, validate_only)
        })
        .await
        .unwrap_or_else(|| names.into_iter().map(not_controller).collect())
    }

    /// DeleteTopics by name or id. One result per topic, in order.
    pub async fn delete_topics(&self, topics: Vec<TopicRef>) -> Vec<TopicResult<Uuid>> {
        let names: Vec<_> = topics
            .iter()
            .map(|t| match t {
                TopicRef::Name(name) => Some(name.clone()),
                TopicRef::Id(_) => None,
            })
            .collect();
        self.submit(move |image, _| ops::topics::delete_topics(image, &topics))
            .await
            .unwrap_or_else(|| names.into_iter().map(not_controller).collect())
    }

    /// CreatePartitions. One result per spec, in order.
    pub async fn create_partitions(
        &self,
        reqs: Vec<CreatePartitionsSpec>,
        validate_only: bool,
    ) -> Vec<TopicResult<()>> {
        let names: Vec<_> = reqs.iter().map(|r| Some(r.name.clone())).collect();
        self.submit(move |image, _| ops::topics::create_partitions(image, &reqs, validate_only))
            .await
            .unwrap_or_else(|| names.into_iter().map(not_controller).collect())
    }

    /// CreateAcls. One result per binding, in order; the new ones are written together.
    pub async fn create_acls(
        &self,
        acls: Vec<crate::acl::AclBinding>,
    ) -> Vec<Result<(), ControllerError>> {
        let n = acls.len();
        self.submit(move |image, ctx| ops::acls::create_acls(image, ctx, &acls))
            .await
            .unwrap_or_else(|| vec![Err(ControllerError::NotController); n])
    }

    /// DeleteAcls. One result per filter, in order: the bindings it removed.
    pub async fn delete_acls(
        &self,
        filters: Vec<crate::acl::AclFilter>,
    ) -> Vec<Result<Vec<crate::acl::AclBinding>, ControllerError>> {
        let n = filters.len();
        self.submit(move |image, _| ops::acls::delete_acls(image, &filters))
            .await
            .unwrap_or_else(|| vec![Err(ControllerError::NotController); n])
    }

    /// AlterPartitionReassignments. One result per partition, in order; the accepted ones are written
    /// together.
    /// AlterUserScramCredentials. `Err(NotController)` when this node is not (or stopped being) the active
    /// controller before the records committed.
    pub async fn alter_user_scram_credentials(
        &self,
        deletions: Vec<crate::api::ScramDeletion>,
        upsertions: Vec<crate::api::ScramUpsertion>,
    ) -> Result<Vec<crate::api::ScramResult>, ControllerError> {
        self.submit(move |image, _| {
            let out = ops::scram::alter_credentials(image, &deletions, &upsertions);
            ops::OpOutput {
                records: out.records,
                response: Ok(out.response),
            }
        })
        .await
        .unwrap_or(Err(ControllerError::NotController))
    }

    pub async fn alter_partition_reassignments(
        &self,
        specs: Vec<crate::api::ReassignmentSpec>,
        allow_replication_factor_change: bool,
    ) -> Vec<crate::api::PartitionResult> {
        let failed: Vec<_> = specs
            .iter()
            .map(|s| crate::api::PartitionResult {
                topic: s.topic.clone(),
                partition: s.partition,
                result: Err(ControllerError::NotController),
            })
            .collect();
        self.submit(move |image, ctx| {
            ops::reassignment::alter_partition_reassignments(
                image,
                &ctx.election,
                &specs,
                allow_replication_factor_change,
            )
        })
        .await
        .unwrap_or(failed)
    }

    /// ListPartitionReassignments, from the committed image: the reassignments in progress, of every
    /// partition (`None`) or of the ones asked about. NOT_CONTROLLER unless this node is the active
    /// controller, which is the one that knows every committed reassignment.
    pub fn list_partition_reassignments(
        &self,
        query: Option<Vec<crate::api::ReassignmentQuery>>,
    ) -> Result<Vec<crate::api::OngoingReassignment>, ControllerError> {
        if !self.is_leader() {
            return Err(ControllerError::NotController);
        }
        Ok(ops::reassignment::list_partition_reassignments(
            &self.image(),
            query.as_deref(),
        ))
    }

    /// UpdateFeatures (see `ops::features::update_features`); `node_id` is this controller's, for the
    /// messages. NOT_CONTROLLER unless this node is the active controller.
    pub async fn update_features(
        &self,
        node_id: i32,
        updates: Vec<crate::FeatureUpdate>,
        validate_only: bool,
    ) -> Result<(), ControllerError> {
        ops::features::check_voters_support(&self.membership().voters, &updates)?;
        self.submit(move |image, _| {
            ops::features::update_features(image, node_id, &updates, validate_only)
        })
        .await
        .unwrap_or(Err(ControllerError::NotController))
    }

    /// IncrementalAlterConfigs. One result per resource, in order.
    pub async fn incremental_alter_configs(
        &self,
        reqs: Vec<AlterConfigSpec>,
        validate_only: bool,
    ) -> Vec<ResourceResult> {
        let resources: Vec<_> = reqs.iter().map(|r| r.resource.clone()).collect();
        self.submit(move |image, ctx| {
            ops::configs::incremental_alter_configs(image, ctx, &reqs, validate_only)
        })
        .await
        .unwrap_or_else(|| not_controller_resources(resources))
    }

    /// Legacy AlterConfigs (replaces a resource's overrides). One result per resource, in order.
    pub async fn alter_configs(
        &self,
        reqs: Vec<AlterConfigSpec>,
        validate_only: bool,
    ) -> Vec<ResourceResult> {
        let resources: Vec<_> = reqs.iter().map(|r| r.resource.clone()).collect();
        self.submit(move |image, ctx| ops::configs::alter_configs(image, ctx, &reqs, validate_only))
            .await
            .unwrap_or_else(|| not_controller_resources(resources))
    }
}

fn not_controller_resources(resources: Vec<crate::records::ConfigResource>) -> Vec<ResourceResult> {
    resources
        .into_iter()
        .map(|resource| ResourceResult {
            resource,
            result: Err(ControllerError::NotController),
        })
        .collect()
}
