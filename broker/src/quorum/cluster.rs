//! The broker's view of the cluster: the metadata image it serves from, and the way its writes reach the
//! active controller.
//!
//! Reads never leave the process: in a combined node the image is the local controller's committed image, in
//! a broker-only node the one its metadata follower keeps. Writes go to the local controller when it is the
//! active one (no round trip), otherwise over the controller channel to whichever voter is active; after a
//! remote write the broker waits until its own image has reached the offset the controller committed, so the
//! client that asked sees its change in this broker's next answer.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use uuid::Uuid;

use kraftwerk_controller::acl::{AclBinding, AclFilter};
use kraftwerk_controller::rpc::{ControllerReply, ControllerRequest, ReplyFrame};
use kraftwerk_controller::{
    AlterConfigSpec, AlterPartitionRequest, BrokerRegistration, ControllerError, ControllerHandle,
    CreatePartitionsSpec, CreateTopicSpec, CreatedTopic, ElectLeadersTopic, ElectionType,
    MetadataImage, OngoingReassignment, PartitionResult, PartitionState, ProducerIdBlock,
    ReassignmentQuery, ReassignmentSpec, ResourceResult, ScramDeletion, ScramResult,
    ScramUpsertion, TopicElection, TopicRef, TopicResult,
};

use super::controller_client::{ClientError, ControllerClient};

/// How long a write waits for an active controller before answering NOT_CONTROLLER (covers an election).
const WRITE_DEADLINE: Duration = Duration::from_secs(15);
/// How long one reply may take (a write waits for a quorum fsync).
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a broker waits for its image to catch up with a write it forwarded.
const CATCH_UP: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct ClusterHandle {
    inner: Arc<Inner>,
}

struct Inner {
    local: Option<ControllerHandle>,
    client: ControllerClient,
    images: watch::Receiver<Arc<MetadataImage>>,
}

impl ClusterHandle {
    /// `local` is this node's controller in a combined node; `images` is where the served image comes from.
    pub fn new(
        local: Option<ControllerHandle>,
        client: ControllerClient,
        images: watch::Receiver<Arc<MetadataImage>>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                local,
                client,
                images,
            }),
        }
    }

    /// The metadata this broker serves from.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.inner.images.borrow().clone()
    }

    /// A receiver that sees every new image.
    pub fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.inner.images.clone()
    }

    /// The active controller's node id, if known.
    pub fn leader_id(&self) -> Option<i32> {
        self.inner.client.leader_hint()
    }

    /// The `controller_id` to tell Kafka clients: the active controller when it is also a live broker (a
    /// combined node), otherwise this broker. Clients send admin writes to that node, and a controller-only
    /// node is not in the broker list they can reach (the Java admin client would wait for it forever); this
    /// broker forwards the writes, as Kafka's brokers do.
    pub fn controller_id_for_clients(&self, self_id: i32) -> i32 {
        match self.leader_id() {
            Some(leader) if self.image().is_broker_active(leader) => leader,
            _ => self_id,
        }
    }

    fn local_leader(&self) -> Option<&ControllerHandle> {
        self.inner.local.as_ref().filter(|l| l.is_leader())
    }

    /// Sends a request to the active controller and waits for this broker's image to include its effect.
    async fn remote(&self, request: ControllerRequest) -> Result<ControllerReply, ClientError> {
        let ReplyFrame {
            reply,
            committed_offset,
            ..
        } = self
            .inner
            .client
            .call(&request, WRITE_DEADLINE, REPLY_TIMEOUT)
            .await?;
        self.wait_for_offset(committed_offset).await;
        Ok(reply)
    }

    /// Waits (bounded) until the served image has applied `offset`.
    pub async fn wait_for_offset(&self, offset: i64) {
        let mut images = self.inner.images.clone();
        let _ = tokio::time::timeout(
            CATCH_UP,
            images.wait_for(|i| i.last_applied_offset() >= offset),
        )
        .await;
    }

    /// Registers this broker; returns its broker epoch.
    pub async fn register_broker(&self, reg: BrokerRegistration) -> Result<i64, ControllerError> {
        match self.remote(ControllerRequest::RegisterBroker(reg)).await {
            Ok(ControllerReply::Registered(r)) => r,
            Ok(other) => Err(unexpected(&other)),
            Err(e) => Err(client_error(e)),
        }
    }

    /// Sends one heartbeat (no catch-up wait: heartbeats carry no change the broker needs to see).
    pub async fn heartbeat(
        &self,
        request: ControllerRequest,
        deadline: Duration,
    ) -> Result<kraftwerk_controller::rpc::HeartbeatReply, ControllerError> {
        match self
            .inner
            .client
            .call_lifeline(&request, deadline, deadline)
            .await
        {
            Ok(ReplyFrame {
                reply: ControllerReply::Heartbeat(r),
                ..
            }) => r,
            Ok(other) => Err(unexpected(&other.reply)),
            Err(e) => Err(client_error(e)),
        }
    }

    /// A voter change (AddRaftVoter, RemoveRaftVoter, UpdateRaftVoter forwarded by a broker), run by the active
    /// controller; `wait` bounds how long the change may take (an addition waits for the new voter to catch up).
    pub async fn change_voters(
        &self,
        request: ControllerRequest,
        wait: Duration,
    ) -> Result<(), ControllerError> {
        let reply_timeout = wait + REPLY_TIMEOUT;
        match self
            .inner
            .client
            .call(&request, WRITE_DEADLINE.max(reply_timeout), reply_timeout)
            .await
        {
            Ok(ReplyFrame {
                reply: ControllerReply::VoterChange(r),
                ..
            }) => r,
            Ok(other) => Err(unexpected(&other.reply)),
            Err(e) => Err(client_error(e)),
        }
    }

    /// DescribeQuorum, answered by the active controller.
    pub async fn describe_quorum(
        &self,
    ) -> Result<kraftwerk_controller::rpc::QuorumInfo, ControllerError> {
        match self
            .inner
            .client
            .call(
                &ControllerRequest::DescribeQuorum,
                WRITE_DEADLINE,
                REPLY_TIMEOUT,
            )
            .await
        {
            Ok(ReplyFrame {
                reply: ControllerReply::Quorum(r),
                ..
            }) => r,
            Ok(other) => Err(unexpected(&other.reply)),
            Err(e) => Err(client_error(e)),
        }
    }

    /// AlterPartition for every ISR change this broker wants as a partition leader, in one request to the
    /// active controller; one result per item, in order. It does not wait for this broker's image to show
    /// the changes: each partition keeps its change pending until the image does (or it expires), so the
    /// caller may go on with the next batch at once.
    pub async fn alter_partitions(
        &self,
        reqs: Vec<AlterPartitionRequest>,
    ) -> Vec<Result<PartitionState, ControllerError>> {
        if let Some(local) = self.local_leader() {
            let results = local.alter_partitions(reqs.clone()).await;
            if !all_results_not_controller(&results) {
                return results;
            }
        }
        let n = reqs.len();
        match self
            .inner
            .client
            .call(
                &ControllerRequest::AlterPartitions(reqs),
                WRITE_DEADLINE,
                REPLY_TIMEOUT,
            )
            .await
        {
            Ok(ReplyFrame {
                reply: ControllerReply::AlteredPartitions(r),
                ..
            }) if r.len() == n => r,
            Ok(other) => vec![Err(unexpected(&other.reply)); n],
            Err(e) => vec![Err(client_error(e)); n],
        }
    }

    /// ElectLeaders, run by the active controller.
    pub async fn elect_leaders(
        &self,
        election_type: ElectionType,
        topics: Option<Vec<ElectLeadersTopic>>,
    ) -> Result<Vec<TopicElection>, ControllerError> {
        if let Some(local) = self.local_leader() {
            match local.elect_leaders(election_type, topics.clone()).await {
                Err(ControllerError::NotController) => {}
                Ok(r) if kraftwerk_controller::elections_not_committed(&r) => {}
                other => return other,
            }
        }
        let request = ControllerRequest::ElectLeaders {
            election_type,
            topics,
        };
        match self.remote(request).await {
            Ok(ControllerReply::ElectedLeaders(r)) => r,
            Ok(other) => Err(unexpected(&other)),
            Err(e) => Err(client_error(e)),
        }
    }

    /// UpdateFeatures, decided by the active controller; `node_id` is this node's (named in the messages when
    /// it is the active controller).
    pub async fn update_features(
        &self,
        node_id: i32,
        updates: Vec<kraftwerk_controller::FeatureUpdate>,
        validate_only: bool,
    ) -> Result<(), ControllerError> {
        if let Some(local) = self.local_leader() {
            match local
                .update_features(node_id, updates.clone(), validate_only)
                .await
            {
                Err(ControllerError::NotController) => {}
                other => return other,
            }
        }
        match self
            .remote(ControllerRequest::UpdateFeatures {
                updates,
                validate_only,
            })
            .await
        {
            Ok(ControllerReply::UpdatedFeatures(r)) => r,
            Ok(other) => Err(unexpected(&other)),
            Err(e) => Err(client_error(e)),
        }
    }

    /// AlterUserScramCredentials, decided by the active controller.
    pub async fn alter_user_scram_credentials(
        &self,
        deletions: Vec<ScramDeletion>,
        upsertions: Vec<ScramUpsertion>,
    ) -> Result<Vec<ScramResult>, ControllerError> {
        if let Some(local) = self.local_leader() {
            match local
                .alter_user_scram_credentials(deletions.clone(), upsertions.clone())
                .await
            {
                Err(ControllerError::NotController) => {}
                other => return other,
            }
        }
        match self
            .remote(ControllerRequest::AlterUserScramCredentials {
                deletions,
                upsertions,
            })
            .await
        {
            Ok(ControllerReply::AlteredScramCredentials(r)) => r,
            Ok(other) => Err(unexpected(&other)),
            Err(e) => Err(client_error(e)),
        }
    }

    pub async fn allocate_producer_ids(
        &self,
        broker_id: i32,
    ) -> Result<ProducerIdBlock, ControllerError> {
        if let Some(local) = self.local_leader() {
            match local.allocate_producer_ids(broker_id).await {
                Err(ControllerError::NotController) => {}
                other => return other,
            }
        }
        match self
            .remote(ControllerRequest::AllocateProducerIds { broker_id })
            .await
        {
            Ok(ControllerReply::ProducerIds(r)) => r,
            Ok(other) => Err(unexpected(&other)),
            Err(e) => Err(client_error(e)),
        }
    }

    pub async fn create_topics(
        &self,
        topics: Vec<CreateTopicSpec>,
        validate_only: bool,
    ) -> Vec<TopicResult<CreatedTopic>> {
        if let Some(local) = self.local_leader() {
            let results = local.create_topics(topics.clone(), validate_only).await;
            if !all_not_controller(&results) {
                return results;
            }
        }
        let names = topics.iter().map(|t| Some(t.name.clone())).collect();
        match self
            .remote(ControllerRequest::CreateTopics {
                topics,
                validate_only,
            })
            .await
        {
            Ok(ControllerReply::CreatedTopics(r)) => r,
            Ok(other) => failed_topics(names, unexpected(&other)),
            Err(e) => failed_topics(names, client_error(e)),
        }
    }

    pub async fn delete_topics(&self, topics: Vec<TopicRef>) -> Vec<TopicResult<Uuid>> {
        if let Some(local) = self.local_leader() {
            let results = local.delete_topics(topics.clone()).await;
            if !all_not_controller(&results) {
                return results;
            }
        }
        let names = topics
            .iter()
            .map(|t| match t {
                TopicRef::Name(n) => Some(n.clone()),
                TopicRef::Id(_) => None,
            })
            .collect();
        match self
            .remote(ControllerRequest::DeleteTopics { topics })
            .await
        {
            Ok(ControllerReply::DeletedTopics(r)) => r,
            Ok(other) => failed_topics(names, unexpected(&other)),
            Err(e) => failed_topics(names, client_error(e)),
        }
    }

    pub async fn create_partitions(
        &self,
        reqs: Vec<CreatePartitionsSpec>,
        validate_only: bool,
    ) -> Vec<TopicResult<()>> {
        if let Some(local) = self.local_leader() {
            let results = local.create_partitions(reqs.clone(), validate_only).await;
            if !all_not_controller(&results) {
                return results;
            }
        }
        let names = reqs.iter().map(|r| Some(r.name.clone())).collect();
        match self
            .remote(ControllerRequest::CreatePartitions {
                reqs,
                validate_only,
            })
            .await
        {
            Ok(ControllerReply::CreatedPartitions(r)) => r,
            Ok(other) => failed_topics(names, unexpected(&other)),
            Err(e) => failed_topics(names, client_error(e)),
        }
    }

    /// CreateAcls, run by the active controller. One result per binding, in order.
    pub async fn create_acls(&self, acls: Vec<AclBinding>) -> Vec<Result<(), ControllerError>> {
        if let Some(local) = self.local_leader() {
            let results = local.create_acls(acls.clone()).await;
            if !all_results_not_controller(&results) {
                return results;
            }
        }
        let n = acls.len();
        match self.remote(ControllerRequest::CreateAcls { acls }).await {
            Ok(ControllerReply::CreatedAcls(r)) => r,
            Ok(other) => vec![Err(unexpected(&other)); n],
            Err(e) => vec![Err(client_error(e)); n],
        }
    }

    /// DeleteAcls, run by the active controller. One result per filter, in order.
    pub async fn delete_acls(
        &self,
        filters: Vec<AclFilter>,
    ) -> Vec<Result<Vec<AclBinding>, ControllerError>> {
        if let Some(local) = self.local_leader() {
            let results = local.delete_acls(filters.clone()).await;
            if !all_results_not_controller(&results) {
                return results;
            }
        }
        let n = filters.len();
        match self.remote(ControllerRequest::DeleteAcls { filters }).await {
            Ok(ControllerReply::DeletedAcls(r)) => r,
            Ok(other) => vec![Err(unexpected(&other)); n],
            Err(e) => vec![Err(client_error(e)); n],
        }
    }

    /// AlterPartitionReassignments, run by the active controller. One result per partition, in order.
    pub async fn alter_partition_reassignments(
        &self,
        specs: Vec<ReassignmentSpec>,
        allow_replication_factor_change: bool,
    ) -> Vec<PartitionResult> {
        if let Some(local) = self.local_leader() {
            let results = local
                .alter_partition_reassignments(specs.clone(), allow_replication_factor_change)
                .await;
            let all_not_controller = !results.is_empty()
                && results
                    .iter()
                    .all(|r| matches!(r.result, Err(ControllerError::NotController)));
            if !all_not_controller {
                return results;
            }
        }
        let failed = |err: ControllerError| {
            specs
                .iter()
                .map(|s| PartitionResult {
                    topic: s.topic.clone(),
                    partition: s.partition,
                    result: Err(err.clone()),
                })
                .collect()
        };
        let request = ControllerRequest::AlterPartitionReassignments {
            specs: specs.clone(),
            allow_replication_factor_change,
        };
        match self.remote(request).await {
            Ok(ControllerReply::ReassignedPartitions(r)) => r,
            Ok(other) => failed(unexpected(&other)),
            Err(e) => failed(client_error(e)),
        }
    }

    /// ListPartitionReassignments, answered by the active controller (the one that knows every committed
    /// reassignment, as in Kafka).
    pub async fn list_partition_reassignments(
        &self,
        query: Option<Vec<ReassignmentQuery>>,
    ) -> Result<Vec<OngoingReassignment>, ControllerError> {
        if let Some(local) = self.local_leader() {
            match local.list_partition_reassignments(query.clone()) {
                Err(ControllerError::NotController) => {}
                other => return other,
            }
        }
        match self
            .inner
            .client
            .call(
                &ControllerRequest::ListPartitionReassignments { query },
                WRITE_DEADLINE,
                REPLY_TIMEOUT,
            )
            .await
        {
            Ok(ReplyFrame {
                reply: ControllerReply::Reassignments(r),
                ..
            }) => r,
            Ok(other) => Err(unexpected(&other.reply)),
            Err(e) => Err(client_error(e)),
        }
    }

    pub async fn incremental_alter_configs(
        &self,
        reqs: Vec<AlterConfigSpec>,
        validate_only: bool,
    ) -> Vec<ResourceResult> {
        if let Some(local) = self.local_leader() {
            let results = local
                .incremental_alter_configs(reqs.clone(), validate_only)
                .await;
            if !all_resources_not_controller(&results) {
                return results;
            }
        }
        let resources = reqs.iter().map(|r| r.resource.clone()).collect();
        let request = ControllerRequest::IncrementalAlterConfigs {
            reqs,
            validate_only,
        };
        resources_reply(self.remote(request).await, resources)
    }

    pub async fn alter_configs(
        &self,
        reqs: Vec<AlterConfigSpec>,
        validate_only: bool,
    ) -> Vec<ResourceResult> {
        if let Some(local) = self.local_leader() {
            let results = local.alter_configs(reqs.clone(), validate_only).await;
            if !all_resources_not_controller(&results) {
                return results;
            }
        }
        let resources = reqs.iter().map(|r| r.resource.clone()).collect();
        let request = ControllerRequest::AlterConfigs {
            reqs,
            validate_only,
        };
        resources_reply(self.remote(request).await, resources)
    }
}

fn all_not_controller<T>(results: &[TopicResult<T>]) -> bool {
    !results.is_empty()
        && results
            .iter()
            .all(|r| matches!(r.result, Err(ControllerError::NotController)))
}

fn all_results_not_controller<T>(results: &[Result<T, ControllerError>]) -> bool {
    !results.is_empty()
        && results
            .iter()
            .all(|r| matches!(r, Err(ControllerError::NotController)))
}

fn all_resources_not_controller(results: &[ResourceResult]) -> bool {
    !results.is_empty()
        && results
            .iter()
            .all(|r| matches!(r.result, Err(ControllerError::NotController)))
}

fn failed_topics<T>(names: Vec<Option<String>>, err: ControllerError) -> Vec<TopicResult<T>> {
    names
        .into_iter()
        .map(|name| TopicResult {
            name,
            result: Err(err.clone()),
        })
        .collect()
}

fn resources_reply(
    reply: Result<ControllerReply, ClientError>,
    resources: Vec<kraftwerk_controller::records::ConfigResource>,
) -> Vec<ResourceResult> {
    let err = match reply {
        Ok(ControllerReply::AlteredConfigs(r)) => return r,
        Ok(other) => unexpected(&other),
        Err(e) => client_error(e),
    };
    resources
        .into_iter()
        .map(|resource| ResourceResult {
            resource,
            result: Err(err.clone()),
        })
        .collect()
}

/// No active controller in time: clients retry on NOT_CONTROLLER; a refused hello is a misconfiguration.
fn client_error(e: ClientError) -> ControllerError {
    match e {
        ClientError::Timeout(_) => ControllerError::NotController,
        other => ControllerError::Internal(other.to_string()),
    }
}

fn unexpected(reply: &ControllerReply) -> ControllerError {
    ControllerError::Internal(format!("unexpected controller reply {reply:?}"))
}
