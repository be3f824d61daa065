//! The controller listener: raft messages from the other voters, requests from brokers to the active
//! controller, and a clear refusal for Kafka clients that were pointed at it by mistake.
//!
//! The first frame of a connection decides what it is (see `kraftwerk_protocol::quorum_channel`). A hello from
//! another cluster, or a raft hello from a node that is not in our voter list, is refused with a message the
//! other side logs, and logged here too, once per connection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use parking_lot::Mutex;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, info, warn, Instrument};

use kraftwerk_controller::liveness::BrokerLiveness;
use kraftwerk_controller::rpc::{
    self, ControllerReply, ControllerRequest, HeartbeatReply, ReplyFrame,
};
use kraftwerk_controller::transport::decode_raft_message;
use kraftwerk_controller::{ControllerError, ControllerHandle, TopicResult};
use kraftwerk_protocol::quorum_channel::{decode_hello, encode_ack, is_hello, ChannelKind, Hello};

use super::channel::{write_frame, ChannelError, FrameReader, MAX_FETCH_BYTES};

/// How long a new connection may take to send its first frame.
const FIRST_FRAME_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest long-poll a metadata fetch may ask for.
const MAX_FETCH_WAIT: Duration = Duration::from_secs(5);

/// What the controller side of a node serves to its peers and brokers.
pub struct ControllerService {
    pub handle: ControllerHandle,
    pub cluster_id: String,
    pub node_id: i32,
    pub voter_ids: Vec<i32>,
    pub listener_name: String,
    liveness: Mutex<BrokerLiveness>,
}

impl ControllerService {
    pub fn new(
        handle: ControllerHandle,
        cluster_id: String,
        node_id: i32,
        voter_ids: Vec<i32>,
        listener_name: String,
        session_timeout: Duration,
    ) -> Arc<Self> {
        Arc::new(Self {
            handle,
            cluster_id,
            node_id,
            voter_ids,
            listener_name,
            liveness: Mutex::new(BrokerLiveness::new(session_timeout)),
        })
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
        if hello.kind == ChannelKind::Raft && !self.voter_ids.contains(&hello.from_node) {
            return Err(format!(
                "node {} sent raft messages but is not one of the voters {:?} in controller {}'s \
                 controller.quorum.voters; the voter lists disagree between the nodes",
                hello.from_node, self.voter_ids, self.node_id
            ));
        }
        Ok(())
    }

    /// Runs one broker request on this controller.
    async fn execute(&self, request: ControllerRequest) -> ControllerReply {
        if !matches!(request, ControllerRequest::FetchMetadata { .. }) && !self.handle.is_leader() {
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
            ControllerRequest::FetchMetadata {
                from_offset,
                max_bytes,
                max_wait_ms,
            } => ControllerReply::Metadata(
                self.handle
                    .read_committed(
                        from_offset,
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

/// Whether a reply says the node stopped being the active controller before the request committed.
fn lost_leadership(reply: &ControllerReply) -> bool {
    fn all<T>(results: &[TopicResult<T>]) -> bool {
        !results.is_empty()
            && results
                .iter()
                .all(|r| matches!(r.result, Err(ControllerError::NotController)))
    }
    match reply {
        ControllerReply::Registered(Err(ControllerError::NotController))
        | ControllerReply::Heartbeat(Err(ControllerError::NotController))
        | ControllerReply::ProducerIds(Err(ControllerError::NotController)) => true,
        ControllerReply::CreatedTopics(r) => all(r),
        ControllerReply::DeletedTopics(r) => all(r),
        ControllerReply::CreatedPartitions(r) => all(r),
        ControllerReply::AlteredConfigs(r) => {
            !r.is_empty()
                && r.iter()
                    .all(|r| matches!(r.result, Err(ControllerError::NotController)))
        }
        _ => false,
    }
}

/// Accepts connections on the controller listener.
pub async fn accept_loop(socket: TcpListener, svc: Arc<ControllerService>) {
    loop {
        match socket.accept().await {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                let span =
                    tracing::info_span!("controller_conn", listener = %svc.listener_name, %peer);
                tokio::spawn(serve(stream, peer, svc.clone()).instrument(span));
            }
            Err(e) => {
                warn!(error = %e, "accept failed on the controller listener");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn serve(stream: TcpStream, peer: SocketAddr, svc: Arc<ControllerService>) {
    let (rd, mut wr) = stream.into_split();
    let mut reader = FrameReader::with_buffer(rd, BytesMut::with_capacity(8 * 1024));
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
        let api = first
            .get(..2)
            .map(|b| i16::from_be_bytes([b[0], b[1]]))
            .and_then(|k| kraftwerk_protocol::ApiKey::try_from(k).ok())
            .map_or_else(
                || "a non-Kafka frame".to_string(),
                |k| format!("a {k:?} request"),
            );
        warn!(
            "client {peer} sent {api} to controller listener {}, which carries only the controller quorum's \
             traffic; point the client's bootstrap.servers at a broker listener instead",
            svc.listener_name
        );
        return;
    }
    let hello = match decode_hello(&first) {
        Ok(hello) => hello,
        Err(e) => {
            warn!(%peer, error = %e, "refusing a quorum connection");
            let _ = wr.write_all(&encode_ack(Err(&e.to_string()))).await;
            return;
        }
    };
    if let Err(why) = svc.check_hello(&hello) {
        tracing::error!(%peer, "refusing a quorum connection: {why}");
        let _ = wr.write_all(&encode_ack(Err(&why))).await;
        return;
    }
    if wr.write_all(&encode_ack(Ok(()))).await.is_err() {
        return;
    }
    match hello.kind {
        ChannelKind::Raft => serve_raft(reader, &svc, hello.from_node).await,
        ChannelKind::Controller => serve_requests(reader, wr, &svc, hello.from_node).await,
    }
}

async fn serve_raft(
    mut reader: FrameReader<tokio::net::tcp::OwnedReadHalf>,
    svc: &ControllerService,
    from: i32,
) {
    let expected_from = u64::try_from(from).map_or(0, |id| id + 1);
    loop {
        let frame = match reader.next().await {
            Ok(frame) => frame,
            Err(e) => {
                debug!(from, error = %e, "raft connection closed");
                return;
            }
        };
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
    mut reader: FrameReader<tokio::net::tcp::OwnedReadHalf>,
    mut wr: tokio::net::tcp::OwnedWriteHalf,
    svc: &ControllerService,
    from: i32,
) {
    loop {
        let frame = match reader.next().await {
            Ok(frame) => frame,
            Err(e) => {
                debug!(from, error = %e, "controller channel closed");
                return;
            }
        };
        let request = match rpc::decode::<ControllerRequest>(&frame) {
            Ok(r) => r,
            Err(e) => {
                warn!(from, error = %e, "closing a controller channel: undecodable request");
                return;
            }
        };
        let reply = svc.execute(request).await;
        let frame = ReplyFrame {
            reply,
            committed_offset: svc.handle.image().last_applied_offset(),
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
