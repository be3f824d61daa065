//! The controller listener: raft messages from the other voters, requests from brokers to the active
//! controller, and a clear refusal for Kafka clients that were pointed at it by mistake.
//!
//! On a SASL_PLAINTEXT or SASL_SSL controller listener a connection authenticates first (the same
//! `SaslAuthenticator` as client listeners: nothing but ApiVersions, SaslHandshake and SaslAuthenticate is read
//! before), so no hello is looked at from a node that has not logged in.
//!
//! The first frame of a connection decides what it is (see `kraftwerk_protocol::quorum_channel`). A hello from
//! another cluster, or a raft hello from a node that is not in our voter list, is refused with a message the
//! other side logs, and logged here too, once per connection.
//!
//! With an authorizer (`authorizer.class.name`), both channels are Kafka's inter-node APIs, which need
//! CLUSTER_ACTION on the cluster (`auth::inter_node`): the connection's principal (its SASL user, its TLS
//! certificate's subject, or `User:ANONYMOUS`) is checked at the hello and again for every message, so a revoked
//! grant takes effect on the open channels too. A refusal is answered with a message the other side logs (and
//! retries: an ACL can fix it at run time), and logged here once a minute per sender.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use parking_lot::Mutex;
use tokio::io::AsyncWriteExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;

use crate::tls::TlsListener;
use tracing::{debug, info, warn, Instrument};

use kraftwerk_controller::liveness::BrokerLiveness;
use kraftwerk_controller::rpc::{
    self, ControllerReply, ControllerRequest, HeartbeatReply, QuorumInfo, ReplicaProgress,
    ReplyFrame,
};
use kraftwerk_controller::transport::decode_raft_message;
use kraftwerk_controller::{ControllerError, ControllerHandle, TopicResult};
use kraftwerk_protocol::quorum_channel::{
    decode_hello, encode_ack, is_hello, ChannelKind, Hello, Refusal,
};
use kraftwerk_protocol::request::{decode_request, DecodeError};
use kraftwerk_protocol::response::{encode_response, unsupported_api_versions_response};
use kraftwerk_protocol::versions::SupportedApis;
use kraftwerk_protocol::{ApiKey, RequestKind, ResponseKind};

use super::channel::{write_frame, ChannelError, FrameReader, MAX_FETCH_BYTES};
use super::voter_apis;
use crate::auth::inter_node::{self, InterNodeTraffic};
use crate::config::BrokerConfig;
use crate::handlers::describe_quorum;

/// How long a new connection may take to send its first frame.
const FIRST_FRAME_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest long-poll a metadata fetch may ask for.
const MAX_FETCH_WAIT: Duration = Duration::from_secs(5);

/// What the controller side of a node serves to its peers and brokers.
pub struct ControllerService {
    pub handle: ControllerHandle,
    pub cluster_id: String,
    pub node_id: i32,
    pub listener_name: String,
    liveness: Mutex<BrokerLiveness>,
    /// `broker.session.timeout.ms`: a broker that has not fetched the log for this long is no longer listed
    /// as an observer.
    broker_session_timeout: Duration,
    /// Brokers following the metadata log from this controller: node id -> (next offset, when, ms).
    observers: Mutex<HashMap<i32, (i64, i64)>>,
    /// The Kafka APIs a controller listener answers (a Kafka client may ask these of a controller).
    kafka_apis: SupportedApis,
    /// `bootstrap.checkpoint` of this node's metadata directory: what the first active controller writes.
    bootstrap: Vec<kraftwerk_controller::records::MetadataRecord>,
    /// `authorizer.class.name` and its rules: the inter-node channels need CLUSTER_ACTION (None: no authorizer).
    authorizer: Option<crate::auth::Authorizer>,
    /// When each refused sender (principal, node, channel kind) was last logged, so a sender retrying every
    /// 100 ms is logged once a minute.
    refusals_logged: Mutex<HashMap<(String, i32, InterNodeTraffic), Instant>>,
}

/// Kafka's CLUSTER_AUTHORIZATION_FAILED.
const CLUSTER_AUTHORIZATION_FAILED: i16 = 31;
/// How often a sender's refusal is logged again while it keeps retrying.
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(60);
/// Senders whose refusals are remembered at most (older entries are dropped first).
const MAX_REFUSALS_TRACKED: usize = 1024;

impl ControllerService {
    pub fn new(
        handle: ControllerHandle,
        cluster_id: String,
        config: Arc<BrokerConfig>,
        listener_name: String,
        bootstrap: Vec<kraftwerk_controller::records::MetadataRecord>,
    ) -> Arc<Self> {
        let mut kafka_apis = SupportedApis::new();
        kafka_apis.register(ApiKey::ApiVersions, 0, 4);
        kafka_apis.register(ApiKey::DescribeQuorum, 0, 2);
        kafka_apis.register(ApiKey::DescribeCluster, 1, 1);
        kafka_apis.register(ApiKey::AddRaftVoter, 0, 1);
        kafka_apis.register(ApiKey::RemoveRaftVoter, 0, 0);
        kafka_apis.register(ApiKey::UpdateRaftVoter, 0, 0);
        if config.sasl.contains_key(&listener_name) {
            // What a SASL client asks for before logging in (ApiVersions is answered from this table).
            kafka_apis.register(ApiKey::SaslHandshake, 0, 1);
            kafka_apis.register(ApiKey::SaslAuthenticate, 0, 2);
        }
        Arc::new(Self {
            handle,
            cluster_id,
            node_id: config.node_id,
            listener_name,
            liveness: Mutex::new(BrokerLiveness::new(config.broker_session_timeout)),
            broker_session_timeout: config.broker_session_timeout,
            observers: Mutex::new(HashMap::new()),
            kafka_apis,
            bootstrap,
            authorizer: config.authorizer.as_ref().map(crate::auth::Authorizer::new),
            refusals_logged: Mutex::new(HashMap::new()),
        })
    }

    /// Whether `principal` (connected from `peer` as node `from_node`) may send `traffic`; the refusal message
    /// when not, logged here (at most once a minute per sender).
    fn authorize_inter_node(
        &self,
        principal: &str,
        peer: SocketAddr,
        from_node: i32,
        traffic: InterNodeTraffic,
    ) -> Result<(), String> {
        let Some(authorizer) = &self.authorizer else {
            return Ok(());
        };
        let image = self.handle.image();
        let Err(denial) = authorizer.authorize_inter_node(&image, principal, peer.ip()) else {
            return Ok(());
        };
        let why =
            inter_node::refusal_message(denial, principal, from_node, &self.listener_name, traffic);
        let now = Instant::now();
        let mut logged = self.refusals_logged.lock();
        let key = (principal.to_string(), from_node, traffic);
        let due = logged
            .get(&key)
            .is_none_or(|at| now.saturating_duration_since(*at) >= REFUSAL_LOG_INTERVAL);
        if due {
            if logged.len() >= MAX_REFUSALS_TRACKED {
                logged.retain(|_, at| now.saturating_duration_since(*at) < REFUSAL_LOG_INTERVAL);
            }
            if logged.len() < MAX_REFUSALS_TRACKED {
                logged.insert(key, now);
            }
            drop(logged);
            warn!(%peer, "refusing node {from_node}: {why}");
        }
        Err(why)
    }

    fn check_hello(&self, hello: &Hello) -> Result<(), String> {
        if hello.cluster_id != self.cluster_id {
            return Err(format!(
                "cluster id mismatch: node {} has cluster id {} in its meta.properties, but controller {} \
                 belongs to cluster {}; format its log directories with --cluster-id {} (or point it at the \
                 right quorum)",
                hello.from_node, hello.cluster_id, self.node_id, self.cluster_id, self.cluster_id
            ));
        }
        if hello.to_node != -1 && hello.to_node != self.node_id {
            return Err(format!(
                "node {} dialled this address as controller {}, but this is node {}: \
                 controller.quorum.voters disagree between the nodes",
                hello.from_node, hello.to_node, self.node_id
            ));
        }
        // The current membership (voters and learners being added), not the static configuration.
        let membership = self.handle.membership();
        if hello.kind == ChannelKind::Raft && !membership.is_member(hello.from_node) {
            return Err(format!(
                "node {} sent raft messages but is not a member of the quorum (voters {:?}, learners {:?}) \
                 as controller {} knows it; add it with kafka-metadata-quorum add-controller, or check that \
                 controller.quorum.voters names the same initial voters on every node",
                hello.from_node,
                membership.voter_ids(),
                membership.learners.iter().map(|l| l.id).collect::<Vec<_>>(),
                self.node_id
            ));
        }
        Ok(())
    }

    /// The leader's quorum state plus the brokers that fetch from it.
    async fn describe_quorum(&self) -> Result<QuorumInfo, ControllerError> {
        let mut info = self.handle.describe_quorum().await?;
        let membership = self.handle.membership();
        // A broker that stopped fetching for a whole session is gone (or follows another controller);
        // controllers being added (raft learners) are already among the observers the node reported.
        let since = wall_clock_ms()
            - i64::try_from(self.broker_session_timeout.as_millis()).unwrap_or(i64::MAX);
        let brokers: Vec<ReplicaProgress> = self
            .observers
            .lock()
            .iter()
            .filter(|(id, &(_, at))| !membership.is_member(**id) && at >= since)
            .map(|(&node_id, &(offset, at))| ReplicaProgress {
                node_id,
                log_end_offset: offset,
                last_fetch_ms: at,
                last_caught_up_ms: if offset >= info.high_watermark {
                    at
                } else {
                    -1
                },
            })
            .collect();
        info.observers.extend(brokers);
        info.observers.sort_by_key(|o| o.node_id);
        Ok(info)
    }

    /// DescribeCluster asked of a controller (KIP-919, `--bootstrap-controller`): the controllers' endpoints.
    fn describe_controllers(
        &self,
        req: &kafka_protocol::messages::DescribeClusterRequest,
    ) -> kafka_protocol::messages::DescribeClusterResponse {
        use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
        use kafka_protocol::messages::{BrokerId, DescribeClusterResponse};
        use kafka_protocol::protocol::StrBytes;
        const ENDPOINT_CONTROLLERS: i8 = 2;
        let mut resp = DescribeClusterResponse::default();
        resp.endpoint_type = ENDPOINT_CONTROLLERS;
        if req.endpoint_type != ENDPOINT_CONTROLLERS {
            resp.error_code = 115; // UNSUPPORTED_ENDPOINT_TYPE
            resp.error_message = Some(StrBytes::from_static_str(
                "a controller listener serves only controller endpoints",
            ));
            return resp;
        }
        resp.cluster_id = StrBytes::from_string(self.cluster_id.clone());
        resp.controller_id = BrokerId(self.handle.leader_id().unwrap_or(-1));
        resp.cluster_authorized_operations = i32::MIN;
        let membership = self.handle.membership();
        resp.brokers = membership
            .voters
            .iter()
            .filter_map(|v| {
                let e = kraftwerk_controller::membership::endpoint_on(v, &self.listener_name)?;
                let mut b = DescribeClusterBroker::default();
                b.broker_id = BrokerId(v.id);
                b.host = StrBytes::from_string(e.host.clone());
                b.port = i32::from(e.port);
                Some(b)
            })
            .collect();
        resp
    }

    /// AddRaftVoter on the controller listener.
    async fn add_raft_voter(
        &self,
        req: &kafka_protocol::messages::AddRaftVoterRequest,
    ) -> voter_apis::Outcome {
        if let Err(o) = voter_apis::check_cluster(&self.cluster_id, req.cluster_id.as_ref()) {
            return o;
        }
        let member = match voter_apis::member_to_add(req, &self.listener_name) {
            Ok(m) => m,
            Err(o) => return o,
        };
        info!(voter = member.id, directory = %member.directory_id, "AddRaftVoter");
        voter_apis::outcome(
            self.handle
                .add_voter(
                    member,
                    voter_apis::timeout(req.timeout_ms),
                    req.ack_when_committed,
                )
                .await,
        )
    }

    /// RemoveRaftVoter on the controller listener.
    async fn remove_raft_voter(
        &self,
        req: &kafka_protocol::messages::RemoveRaftVoterRequest,
    ) -> voter_apis::Outcome {
        if let Err(o) = voter_apis::check_cluster(&self.cluster_id, req.cluster_id.as_ref()) {
            return o;
        }
        let (id, directory_id) = voter_apis::voter_to_remove(req);
        info!(voter = id, directory = %directory_id, "RemoveRaftVoter");
        voter_apis::outcome(
            self.handle
                .remove_voter(id, directory_id, voter_apis::timeout(0))
                .await,
        )
    }

    /// UpdateRaftVoter on the controller listener.
    async fn update_raft_voter(
        &self,
        req: &kafka_protocol::messages::UpdateRaftVoterRequest,
    ) -> voter_apis::Outcome {
        if let Err(o) = voter_apis::check_cluster(&self.cluster_id, req.cluster_id.as_ref()) {
            return o;
        }
        let member = match voter_apis::member_to_update(req, &self.listener_name) {
            Ok(m) => m,
            Err(o) => return o,
        };
        voter_apis::outcome(
            self.handle
                .update_voter(member, voter_apis::timeout(0))
                .await,
        )
    }

    /// Runs one broker request on this controller.
    async fn execute(&self, from: i32, request: ControllerRequest) -> ControllerReply {
        if let ControllerRequest::FetchMetadata { from_index, .. } = &request {
            // Entries applied by the observer: the same unit as the voters' log end in DescribeQuorum.
            let applied = i64::try_from(*from_index).unwrap_or(i64::MAX) - 1;
            self.observers
                .lock()
                .insert(from, (applied, wall_clock_ms()));
        }
        // Every request, metadata fetches included, goes to the active controller: brokers are the leader's
        // observers (as in Kafka), which is what DescribeQuorum reports and keeps a follower's lag out of
        // the brokers' view.
        if !self.handle.is_leader() {
            return self.not_controller();
        }
        let reply = match request {
            ControllerRequest::RegisterBroker(reg) => {
                let id = reg.broker_id;
                match self.handle.register_broker(reg).await {
                    Ok(()) => {
                        self.liveness.lock().touch(id, Instant::now());
                        let epoch = self.handle.image().broker(id).map_or(-1, |b| b.epoch);
                        info!(broker = id, epoch, "broker registered");
                        ControllerReply::Registered(Ok(epoch))
                    }
                    Err(e) => ControllerReply::Registered(Err(e)),
                }
            }
            ControllerRequest::BrokerHeartbeat {
                broker_id,
                broker_epoch,
                metadata_offset,
                shutting_down,
            } => ControllerReply::Heartbeat(
                self.heartbeat(broker_id, broker_epoch, metadata_offset, shutting_down)
                    .await,
            ),
            ControllerRequest::AllocateProducerIds { broker_id } => {
                ControllerReply::ProducerIds(self.handle.allocate_producer_ids(broker_id).await)
            }
            ControllerRequest::CreateTopics {
                topics,
                validate_only,
            } => ControllerReply::CreatedTopics(
                self.handle.create_topics(topics, validate_only).await,
            ),
            ControllerRequest::DeleteTopics { topics } => {
                ControllerReply::DeletedTopics(self.handle.delete_topics(topics).await)
            }
            ControllerRequest::CreatePartitions {
                reqs,
                validate_only,
            } => ControllerReply::CreatedPartitions(
                self.handle.create_partitions(reqs, validate_only).await,
            ),
            ControllerRequest::CreateAcls { acls } => {
                ControllerReply::CreatedAcls(self.handle.create_acls(acls).await)
            }
            ControllerRequest::DeleteAcls { filters } => {
                ControllerReply::DeletedAcls(self.handle.delete_acls(filters).await)
            }
            ControllerRequest::UpdateFeatures {
                updates,
                validate_only,
            } => ControllerReply::UpdatedFeatures(
                self.handle
                    .update_features(self.node_id, updates, validate_only)
                    .await,
            ),
            ControllerRequest::IncrementalAlterConfigs {
                reqs,
                validate_only,
            } => ControllerReply::AlteredConfigs(
                self.handle
                    .incremental_alter_configs(reqs, validate_only)
                    .await,
            ),
            ControllerRequest::AlterConfigs {
                reqs,
                validate_only,
            } => ControllerReply::AlteredConfigs(
                self.handle.alter_configs(reqs, validate_only).await,
            ),
            ControllerRequest::DescribeQuorum => {
                ControllerReply::Quorum(self.describe_quorum().await)
            }
            ControllerRequest::AddVoter {
                member,
                timeout_ms,
                ack_when_committed,
            } => ControllerReply::VoterChange(
                self.handle
                    .add_voter(
                        member,
                        voter_apis::timeout(i32::try_from(timeout_ms).unwrap_or(i32::MAX)),
                        ack_when_committed,
                    )
                    .await,
            ),
            ControllerRequest::RemoveVoter { id, directory_id } => ControllerReply::VoterChange(
                self.handle
                    .remove_voter(id, directory_id, voter_apis::timeout(0))
                    .await,
            ),
            ControllerRequest::UpdateVoter { member } => ControllerReply::VoterChange(
                self.handle
                    .update_voter(member, voter_apis::timeout(0))
                    .await,
            ),
            ControllerRequest::AlterPartition(req) => {
                ControllerReply::AlteredPartition(self.handle.alter_partition(req).await)
            }
            ControllerRequest::AlterPartitions(reqs) => {
                ControllerReply::AlteredPartitions(self.handle.alter_partitions(reqs).await)
            }
            ControllerRequest::AlterUserScramCredentials {
                deletions,
                upsertions,
            } => ControllerReply::AlteredScramCredentials(
                self.handle
                    .alter_user_scram_credentials(deletions, upsertions)
                    .await,
            ),
            ControllerRequest::AlterPartitionReassignments {
                specs,
                allow_replication_factor_change,
            } => ControllerReply::ReassignedPartitions(
                self.handle
                    .alter_partition_reassignments(specs, allow_replication_factor_change)
                    .await,
            ),
            ControllerRequest::ListPartitionReassignments { query } => {
                ControllerReply::Reassignments(self.handle.list_partition_reassignments(query))
            }
            ControllerRequest::ElectLeaders {
                election_type,
                topics,
            } => ControllerReply::ElectedLeaders(
                self.handle.elect_leaders(election_type, topics).await,
            ),
            ControllerRequest::FetchMetadata {
                from_index,
                max_bytes,
                max_wait_ms,
            } => ControllerReply::Metadata(
                self.handle
                    .read_committed(
                        from_index,
                        u64::from(max_bytes.min(MAX_FETCH_BYTES)),
                        Duration::from_millis(u64::from(max_wait_ms)).min(MAX_FETCH_WAIT),
                    )
                    .await,
            ),
        };
        if lost_leadership(&reply) {
            self.not_controller()
        } else {
            reply
        }
    }

    fn not_controller(&self) -> ControllerReply {
        ControllerReply::NotController {
            leader: self.handle.leader_id().filter(|&l| l != self.node_id),
        }
    }

    async fn heartbeat(
        &self,
        broker_id: i32,
        broker_epoch: i64,
        metadata_offset: i64,
        shutting_down: bool,
    ) -> Result<HeartbeatReply, ControllerError> {
        let image = self.handle.image();
        let Some(broker) = image.broker(broker_id) else {
            return Err(ControllerError::BrokerIdNotRegistered(format!(
                "Broker {broker_id} is not registered"
            )));
        };
        if broker.epoch != broker_epoch {
            return Err(ControllerError::BrokerIdNotRegistered(format!(
                "Broker {broker_id} heartbeat with epoch {broker_epoch}, but its registration has epoch {}",
                broker.epoch
            )));
        }
        if shutting_down {
            self.liveness.lock().forget(broker_id);
            if !broker.fenced {
                info!(
                    broker = broker_id,
                    "controlled shutdown: fencing the broker so its leaderships move"
                );
                self.handle.fence_broker(broker_id).await?;
            }
            return Ok(HeartbeatReply {
                fenced: true,
                shutdown_ready: true,
            });
        }
        self.liveness.lock().touch(broker_id, Instant::now());
        let mut fenced = broker.fenced;
        // A fenced broker is unfenced once it has caught up to its own registration.
        if fenced && metadata_offset >= broker.epoch {
            self.handle.unfence_broker(broker_id).await?;
            info!(broker = broker_id, "broker caught up; unfenced");
            fenced = false;
        }
        Ok(HeartbeatReply {
            fenced,
            shutdown_ready: false,
        })
    }

    /// On the active controller: fences brokers whose session expired. Runs until the process stops.
    pub async fn run_session_checks(self: Arc<Self>, every: Duration) {
        let mut was_leader = false;
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            let leader = self.handle.is_leader();
            let image = self.handle.image();
            let now = Instant::now();
            if leader && !was_leader {
                self.liveness
                    .lock()
                    .restart_sessions(image.brokers().keys().copied(), now);
            }
            was_leader = leader;
            if !leader {
                continue;
            }
            if !image.features().contains_key("metadata.version") {
                if let Err(e) = self.handle.bootstrap_metadata(self.bootstrap.clone()).await {
                    debug!(error = %e, "writing the bootstrap metadata failed; will retry");
                }
            }
            let unfenced = image.unfenced_broker_ids();
            let expired = self.liveness.lock().expired(unfenced, now);
            for id in expired {
                warn!(
                    broker = id,
                    "broker missed broker.session.timeout.ms of heartbeats; fencing it"
                );
                if let Err(e) = self.handle.fence_broker(id).await {
                    debug!(broker = id, error = %e, "fencing failed; will retry");
                }
            }
        }
    }
}

impl ControllerService {
    /// On the active controller (`auto.leader.rebalance.enable`): every `every`
    /// (`leader.imbalance.check.interval.seconds`), moves leadership back to preferred replicas for brokers
    /// whose imbalance is above `percentage`. A pass writes one bounded batch; passes follow each other at
    /// once while there is more to move, so a broker back from a restart gets all its leaderships in one
    /// check however many partitions it has.
    pub async fn run_leader_rebalance(self: Arc<Self>, every: Duration, percentage: u32) {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if !self.handle.is_leader() {
                continue;
            }
            let mut moved = 0;
            loop {
                match self.handle.rebalance_leaders(percentage).await {
                    Ok(pass) => {
                        debug!(
                            moved = pass.moved,
                            more = pass.more,
                            "leader rebalance pass"
                        );
                        moved += pass.moved;
                        if !pass.more {
                            break;
                        }
                    }
                    Err(e) => {
                        debug!(error = %e, "leader rebalance failed; will retry at the next check");
                        break;
                    }
                }
            }
            if moved > 0 {
                info!(
                    partitions = moved,
                    "moved leadership back to preferred replicas"
                );
            }
        }
    }
}

/// Whether a reply says the node stopped being the active controller before the request committed.
fn lost_leadership(reply: &ControllerReply) -> bool {
    fn all<T>(results: &[TopicResult<T>]) -> bool {
        !results.is_empty()
            && results
                .iter()
                .all(|r| matches!(r.result, Err(ControllerError::NotController)))
    }
    fn all_results<T>(results: &[Result<T, ControllerError>]) -> bool {
        !results.is_empty()
            && results
                .iter()
                .all(|r| matches!(r, Err(ControllerError::NotController)))
    }
    match reply {
        ControllerReply::Registered(Err(ControllerError::NotController))
        | ControllerReply::Heartbeat(Err(ControllerError::NotController))
        | ControllerReply::ProducerIds(Err(ControllerError::NotController))
        | ControllerReply::Quorum(Err(ControllerError::NotController))
        | ControllerReply::VoterChange(Err(ControllerError::NotController))
        | ControllerReply::AlteredPartition(Err(ControllerError::NotController))
        | ControllerReply::Reassignments(Err(ControllerError::NotController)) => true,
        ControllerReply::ReassignedPartitions(r) => {
            !r.is_empty()
                && r.iter()
                    .all(|r| matches!(r.result, Err(ControllerError::NotController)))
        }
        ControllerReply::ElectedLeaders(Err(ControllerError::NotController)) => true,
        ControllerReply::ElectedLeaders(Ok(r)) => kraftwerk_controller::elections_not_committed(r),
        ControllerReply::CreatedTopics(r) => all(r),
        ControllerReply::DeletedTopics(r) => all(r),
        ControllerReply::CreatedPartitions(r) => all(r),
        ControllerReply::CreatedAcls(r) => all_results(r),
        ControllerReply::DeletedAcls(r) => all_results(r),
        ControllerReply::AlteredConfigs(r) => {
            !r.is_empty()
                && r.iter()
                    .all(|r| matches!(r.result, Err(ControllerError::NotController)))
        }
        _ => false,
    }
}

/// Accepts connections on the controller listener.
/// The read and write halves of a controller-listener connection (plain TCP or TLS).
type ConnRead = Box<dyn AsyncRead + Unpin + Send>;
type ConnWrite = Box<dyn AsyncWrite + Unpin + Send>;

/// SASL on the controller listener: the listener's mechanisms and users, and the listener itself (for the
/// failed-login lines).
#[derive(Clone)]
pub struct ControllerSasl {
    pub sasl: Arc<crate::sasl::SaslListener>,
    pub listener: Arc<crate::config::Listener>,
    /// `connections.max.idle.ms`: how long a login may sit unfinished.
    pub idle: Duration,
}

/// Accepts connections on the controller listener; with `tls` (an SSL or SASL_SSL controller listener) each one
/// starts with a TLS handshake, then with `sasl` (SASL_PLAINTEXT, SASL_SSL) a SASL login.
pub async fn accept_loop(
    socket: TcpListener,
    tls: Option<TlsListener>,
    sasl: Option<ControllerSasl>,
    svc: Arc<ControllerService>,
) {
    loop {
        match socket.accept().await {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                let span =
                    tracing::info_span!("controller_conn", listener = %svc.listener_name, %peer);
                let svc = svc.clone();
                let tls = tls.clone();
                let sasl = sasl.clone();
                tokio::spawn(
                    async move {
                        let (mut rd, wr, principal): (ConnRead, ConnWrite, String) = match tls {
                            None => {
                                let (rd, wr) = stream.into_split();
                                (Box::new(rd), Box::new(wr), crate::tls::principal::ANONYMOUS.to_string())
                            }
                            Some(tls) => match tls.accept(stream).await {
                                Ok((stream, principal)) => {
                                    debug!(%principal, "TLS handshake done");
                                    let (rd, wr) = tokio::io::split(stream);
                                    (Box::new(rd), Box::new(wr), principal)
                                }
                                Err(e) => {
                                    warn!(error = %e, "closing connection: TLS handshake failed on the controller listener {}", svc.listener_name);
                                    return;
                                }
                            },
                        };
                        let mut buf = BytesMut::with_capacity(8 * 1024);
                        let (wr, principal) = match sasl {
                            None => (wr, principal),
                            Some(sasl) => {
                                let mut out = tokio::io::BufWriter::new(wr);
                                let Some(principal) = crate::network::sasl_exchange::authenticate(
                                    &mut rd,
                                    &mut out,
                                    &mut buf,
                                    crate::network::sasl_exchange::Exchange {
                                        peer,
                                        listener: &sasl.listener,
                                        sasl: &sasl.sasl,
                                        apis: &svc.kafka_apis,
                                        idle: sasl.idle,
                                    },
                                )
                                .await
                                else {
                                    return;
                                };
                                debug!(%principal, "SASL authentication done");
                                // Every reply was flushed, so nothing is lost with the buffer.
                                (out.into_inner(), principal)
                            }
                        };
                        serve(rd, wr, buf, Peer { addr: peer, principal }, svc).await
                    }
                    .instrument(span),
                );
            }
            Err(e) => {
                warn!(error = %e, "accept failed on the controller listener");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Who is at the other end of a connection: its address and the principal it authenticated as.
struct Peer {
    addr: SocketAddr,
    principal: String,
}

async fn serve(
    rd: ConnRead,
    mut wr: ConnWrite,
    buf: BytesMut,
    who: Peer,
    svc: Arc<ControllerService>,
) {
    let peer = who.addr;
    let mut reader = FrameReader::with_buffer(rd, buf);
    let first = match tokio::time::timeout(FIRST_FRAME_TIMEOUT, reader.next()).await {
        Ok(Ok(frame)) => frame,
        Ok(Err(ChannelError::Frame(e))) => {
            warn!(%peer, error = %e, "closing connection on the controller listener {}: not Kraftwerk or Kafka framing", svc.listener_name);
            return;
        }
        Ok(Err(e)) => {
            debug!(error = %e, "connection closed before its first frame");
            return;
        }
        Err(_) => {
            debug!("connection sent nothing; closing");
            return;
        }
    };
    if !is_hello(&first) {
        serve_kafka(first, reader, wr, &svc, &who).await;
        return;
    }
    let hello = match decode_hello(&first) {
        Ok(hello) => hello,
        Err(e) => {
            warn!(%peer, error = %e, "refusing a quorum connection");
            let _ = wr
                .write_all(&encode_ack(Err(&Refusal::Misconfigured(e.to_string()))))
                .await;
            let _ = wr.flush().await;
            return;
        }
    };
    if let Err(why) = svc.check_hello(&hello) {
        tracing::error!(%peer, "refusing a quorum connection: {why}");
        let _ = wr
            .write_all(&encode_ack(Err(&Refusal::Misconfigured(why))))
            .await;
        let _ = wr.flush().await;
        return;
    }
    let traffic = match hello.kind {
        ChannelKind::Raft => InterNodeTraffic::Raft,
        ChannelKind::Controller => InterNodeTraffic::Controller,
    };
    let sender = Sender {
        who: &who,
        node: hello.from_node,
        traffic,
    };
    if let Err(why) = sender.authorized(&svc) {
        let _ = wr
            .write_all(&encode_ack(Err(&Refusal::Unauthorized(why))))
            .await;
        let _ = wr.flush().await;
        return;
    }
    if wr.write_all(&encode_ack(Ok(()))).await.is_err() || wr.flush().await.is_err() {
        return;
    }
    match hello.kind {
        ChannelKind::Raft => serve_raft(reader, &svc, sender).await,
        ChannelKind::Controller => serve_requests(reader, wr, &svc, sender).await,
    }
}

/// The sender of a channel that was accepted: checked again for every message it sends.
#[derive(Clone, Copy)]
struct Sender<'a> {
    who: &'a Peer,
    node: i32,
    traffic: InterNodeTraffic,
}

impl Sender<'_> {
    fn authorized(&self, svc: &ControllerService) -> Result<(), String> {
        svc.authorize_inter_node(&self.who.principal, self.who.addr, self.node, self.traffic)
    }
}

async fn serve_raft(
    mut reader: FrameReader<ConnRead>,
    svc: &ControllerService,
    sender: Sender<'_>,
) {
    let from = sender.node;
    let expected_from = u64::try_from(from).map_or(0, |id| id + 1);
    loop {
        let frame = match reader.next().await {
            Ok(frame) => frame,
            Err(e) => {
                debug!(from, error = %e, "raft connection closed");
                return;
            }
        };
        // A grant revoked while the channel is open: the message is dropped and the channel closed (the peer
        // redials and is refused at its hello, with the reason).
        if sender.authorized(svc).is_err() {
            return;
        }
        match decode_raft_message(&frame) {
            Ok(message) if message.from == expected_from => svc.handle.step(message),
            Ok(message) => {
                warn!(
                    from,
                    claimed = message.from,
                    "closing a raft connection: message claims another sender"
                );
                return;
            }
            Err(e) => {
                warn!(from, error = %e, "closing a raft connection: undecodable raft message");
                return;
            }
        }
    }
}

async fn serve_requests(
    mut reader: FrameReader<ConnRead>,
    mut wr: ConnWrite,
    svc: &ControllerService,
    sender: Sender<'_>,
) {
    let from = sender.node;
    loop {
        let frame = match reader.next().await {
            Ok(frame) => frame,
            Err(e) => {
                debug!(from, error = %e, "controller channel closed");
                return;
            }
        };
        if sender.authorized(svc).is_err() {
            return;
        }
        let request = match rpc::decode::<ControllerRequest>(&frame) {
            Ok(r) => r,
            Err(e) => {
                warn!(from, error = %e, "closing a controller channel: undecodable request");
                return;
            }
        };
        let reply = svc.execute(from, request).await;
        let frame = ReplyFrame {
            reply,
            committed_offset: svc.handle.image().last_applied_offset(),
            voters: svc.handle.membership().voters.clone(),
        };
        let body = match rpc::encode(&frame) {
            Ok(body) => body,
            Err(e) => {
                tracing::error!(error = %e, "cannot encode a controller reply");
                return;
            }
        };
        if write_frame(&mut wr, &body).await.is_err() || wr.flush().await.is_err() {
            return;
        }
    }
}

/// A Kafka client on the controller listener. As on Apache Kafka's controllers, ApiVersions and DescribeQuorum
/// are answered (so `kafka-metadata-quorum --bootstrap-controller` works); anything else is a client pointed
/// at the wrong port: one log line saying so, and the connection is closed. With an authorizer each API needs
/// what Kafka's `ControllerApis` asks of the principal: DESCRIBE on the cluster for DescribeQuorum, ALTER for
/// DescribeCluster, AddRaftVoter and RemoveRaftVoter, CLUSTER_ACTION for UpdateRaftVoter; a refusal is answered
/// CLUSTER_AUTHORIZATION_FAILED.
async fn serve_kafka(
    first: bytes::Bytes,
    mut reader: FrameReader<ConnRead>,
    mut wr: ConnWrite,
    svc: &ControllerService,
    who: &Peer,
) {
    use kafka_protocol::protocol::StrBytes;
    use kraftwerk_controller::acl::AclOperation;
    let peer = who.addr;
    let allowed = |op: AclOperation| match &svc.authorizer {
        None => true,
        Some(a) => {
            crate::auth::RequestAuth::new(Some(a), &svc.handle.image(), &who.principal, peer.ip())
                .allows_cluster(op)
        }
    };
    let denied = |op: AclOperation| {
        Some(format!(
            "{} may not do {op} on the cluster (controller listener {})",
            who.principal, svc.listener_name
        ))
    };
    let mut frame = first;
    loop {
        let request = match decode_request(frame) {
            Ok(r) => r,
            Err(DecodeError::UnsupportedVersion {
                api_key: ApiKey::ApiVersions,
                correlation_id,
                ..
            }) => {
                let bytes = unsupported_api_versions_response(correlation_id, &svc.kafka_apis);
                if wr.write_all(&bytes).await.is_err() || wr.flush().await.is_err() {
                    return;
                }
                match reader.next().await {
                    Ok(f) => {
                        frame = f;
                        continue;
                    }
                    Err(_) => return,
                }
            }
            Err(e) => {
                warn!(
                    "client {peer} sent an undecodable request ({e}) to controller listener {}; closing",
                    svc.listener_name
                );
                return;
            }
        };
        let (api_key, version, correlation_id) = (
            request.api_key,
            request.api_version,
            request.correlation_id(),
        );
        // A newer ApiVersions than this listener serves (the codec may know it, e.g. v5) gets the same answer as
        // one the codec cannot decode: UNSUPPORTED_VERSION with our ranges, so the client retries lower.
        if api_key == ApiKey::ApiVersions && !svc.kafka_apis.is_supported(api_key, version) {
            let bytes = unsupported_api_versions_response(correlation_id, &svc.kafka_apis);
            if wr.write_all(&bytes).await.is_err() || wr.flush().await.is_err() {
                return;
            }
            match reader.next().await {
                Ok(f) => {
                    frame = f;
                    continue;
                }
                Err(_) => return,
            }
        }
        let body = match request.body {
            RequestKind::ApiVersions(_) if svc.kafka_apis.is_supported(api_key, version) => {
                ResponseKind::ApiVersions(svc.kafka_apis.api_versions_response())
            }
            RequestKind::DescribeQuorum(_)
                if svc.kafka_apis.is_supported(api_key, version)
                    && !allowed(AclOperation::Describe) =>
            {
                let mut resp = kafka_protocol::messages::DescribeQuorumResponse::default();
                resp.error_code = CLUSTER_AUTHORIZATION_FAILED;
                if version >= 2 {
                    resp.error_message = denied(AclOperation::Describe).map(StrBytes::from_string);
                }
                ResponseKind::DescribeQuorum(resp)
            }
            RequestKind::DescribeCluster(_)
                if svc.kafka_apis.is_supported(api_key, version)
                    && !allowed(AclOperation::Alter) =>
            {
                let mut resp = kafka_protocol::messages::DescribeClusterResponse::default();
                resp.error_code = CLUSTER_AUTHORIZATION_FAILED;
                resp.error_message = denied(AclOperation::Alter).map(StrBytes::from_string);
                ResponseKind::DescribeCluster(resp)
            }
            RequestKind::AddRaftVoter(_)
                if svc.kafka_apis.is_supported(api_key, version)
                    && !allowed(AclOperation::Alter) =>
            {
                ResponseKind::AddRaftVoter(voter_apis::add_response((
                    CLUSTER_AUTHORIZATION_FAILED,
                    denied(AclOperation::Alter),
                )))
            }
            RequestKind::RemoveRaftVoter(_)
                if svc.kafka_apis.is_supported(api_key, version)
                    && !allowed(AclOperation::Alter) =>
            {
                ResponseKind::RemoveRaftVoter(voter_apis::remove_response((
                    CLUSTER_AUTHORIZATION_FAILED,
                    denied(AclOperation::Alter),
                )))
            }
            RequestKind::UpdateRaftVoter(_)
                if svc.kafka_apis.is_supported(api_key, version)
                    && !allowed(AclOperation::ClusterAction) =>
            {
                ResponseKind::UpdateRaftVoter(voter_apis::update_response(
                    (CLUSTER_AUTHORIZATION_FAILED, None),
                    svc.handle.leader_id().unwrap_or(-1),
                    -1,
                ))
            }
            RequestKind::DescribeQuorum(r) if svc.kafka_apis.is_supported(api_key, version) => {
                ResponseKind::DescribeQuorum(if describe_quorum::asks_for_metadata_partition(&r) {
                    describe_quorum::response(svc.describe_quorum().await, version)
                } else {
                    describe_quorum::unknown_partition(&r)
                })
            }
            RequestKind::DescribeCluster(r) if svc.kafka_apis.is_supported(api_key, version) => {
                ResponseKind::DescribeCluster(svc.describe_controllers(&r))
            }
            RequestKind::AddRaftVoter(r) if svc.kafka_apis.is_supported(api_key, version) => {
                ResponseKind::AddRaftVoter(voter_apis::add_response(svc.add_raft_voter(&r).await))
            }
            RequestKind::RemoveRaftVoter(r) if svc.kafka_apis.is_supported(api_key, version) => {
                ResponseKind::RemoveRaftVoter(voter_apis::remove_response(
                    svc.remove_raft_voter(&r).await,
                ))
            }
            RequestKind::UpdateRaftVoter(r) if svc.kafka_apis.is_supported(api_key, version) => {
                let outcome = svc.update_raft_voter(&r).await;
                let epoch = svc
                    .handle
                    .describe_quorum()
                    .await
                    .map_or(-1, |q| q.leader_epoch);
                ResponseKind::UpdateRaftVoter(voter_apis::update_response(
                    outcome,
                    svc.handle.leader_id().unwrap_or(-1),
                    epoch,
                ))
            }
            _ => {
                warn!(
                    "client {peer} sent a {api_key:?} request to controller listener {}, which carries only the \
                     controller quorum's traffic; point the client's bootstrap.servers at a broker listener instead",
                    svc.listener_name
                );
                return;
            }
        };
        match encode_response(api_key, version, correlation_id, &body) {
            Ok(bytes) => {
                if wr.write_all(&bytes).await.is_err() || wr.flush().await.is_err() {
                    return;
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot encode a response on the controller listener");
                return;
            }
        }
        frame = match reader.next().await {
            Ok(f) => f,
            Err(_) => return,
        };
    }
}

fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
