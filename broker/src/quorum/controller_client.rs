//! The client side of a controller channel: sends a [`ControllerRequest`] to the active controller and
//! returns its answer, finding the active controller among the voters on the way.
//!
//! It dials the controller it believes is active (a hint from the last NOT_CONTROLLER answer, or the local
//! raft node's view in a combined node), otherwise each voter in turn; a NOT_CONTROLLER answer names the
//! leader when known and the request is sent again there, until the deadline. A controller that refuses our
//! hello (another cluster id) ends the call at once with its reason: retrying cannot fix a misconfiguration.
//! One that refuses our principal (no CLUSTER_ACTION with its authorizer on) is logged once and retried until
//! the deadline: a grant fixes it at run time.

use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::Mutex;
use tokio::time::Instant;

use kraftwerk_controller::rpc::{self, ControllerReply, ControllerRequest, ReplyFrame};
use kraftwerk_controller::ControllerHandle;
use kraftwerk_protocol::quorum_channel::{decode_ack, framed_hello, ChannelKind, Hello, Refusal};

use super::channel::{write_frame, FrameReader};
use super::peer_transport::PeerAddr;
use crate::tls::{PeerConnector, PeerStream};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const RETRY_PAUSE: Duration = Duration::from_millis(100);
/// Pause after a controller refused our principal: an operator has to grant it, so no point in hurrying.
const UNAUTHORIZED_PAUSE: Duration = Duration::from_secs(1);

/// Why a call to the active controller failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    /// A controller refused this node (cluster id mismatch, ...): a configuration error.
    #[error("controller {node} refused this node: {reason}")]
    Refused { node: i32, reason: String },
    /// No active controller answered before the deadline.
    #[error("no active controller answered within {0:?}")]
    Timeout(Duration),
    /// The request could not be encoded (a bug).
    #[error("{0}")]
    Encode(String),
}

struct Conn {
    node_id: i32,
    reader: FrameReader<ReadHalf<PeerStream>>,
    writer: WriteHalf<PeerStream>,
}

/// Connections per client: calls in flight at once (each connection carries one call at a time, and a forwarded
/// write waits for a quorum commit, so concurrent client writes need several to share the controller's fsyncs).
const POOL_SIZE: usize = 8;

/// Calls the active controller, up to [`POOL_SIZE`] calls at once (more wait for a free connection); a
/// long-polling metadata fetch gets its own client.
pub struct ControllerClient {
    cluster_id: String,
    node_id: i32,
    /// The controllers to try: `controller.quorum.voters` at first, then the voters the last reply named
    /// (controllers added or removed at run time, KIP-853).
    voters: parking_lot::RwLock<Vec<PeerAddr>>,
    /// The controller listener whose endpoint is dialled.
    listener: String,
    /// Dials it with its protocol (PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL).
    connector: PeerConnector,
    /// The last refused SASL login, so a retried refusal is logged once.
    last_auth_failure: parking_lot::Mutex<Option<String>>,
    local: Option<ControllerHandle>,
    conns: Vec<Mutex<Option<Conn>>>,
    /// A connection of its own for heartbeats, as Kafka's BrokerLifecycleManager has its own channel: a
    /// heartbeat must never wait behind writes that wait for commits, or a busy broker misses its session
    /// and is fenced.
    lifeline: Mutex<Option<Conn>>,
    next_conn: AtomicUsize,
    leader_hint: AtomicI64,
    next_voter: AtomicUsize,
}

impl ControllerClient {
    /// `voters` are the controller listeners to try; `local` is this node's own controller in a combined
    /// node (its raft view names the leader without a round trip).
    pub fn new(
        cluster_id: String,
        node_id: i32,
        voters: Vec<PeerAddr>,
        listener: String,
        connector: PeerConnector,
        local: Option<ControllerHandle>,
    ) -> Self {
        Self {
            cluster_id,
            node_id,
            voters: parking_lot::RwLock::new(voters),
            listener,
            connector,
            last_auth_failure: parking_lot::Mutex::new(None),
            local,
            conns: (0..POOL_SIZE).map(|_| Mutex::new(None)).collect(),
            lifeline: Mutex::new(None),
            next_conn: AtomicUsize::new(0),
            leader_hint: AtomicI64::new(-1),
            next_voter: AtomicUsize::new(0),
        }
    }

    /// The active controller as last seen, if known.
    pub fn leader_hint(&self) -> Option<i32> {
        if let Some(local) = &self.local {
            if let Some(leader) = local.leader_id() {
                return Some(leader);
            }
        }
        i32::try_from(self.leader_hint.load(Ordering::Relaxed))
            .ok()
            .filter(|&id| id >= 0)
    }

    fn pick(&self) -> Option<PeerAddr> {
        let voters = self.voters.read();
        if let Some(leader) = self.leader_hint() {
            if let Some(v) = voters.iter().find(|v| v.node_id == leader) {
                return Some(v.clone());
            }
        }
        if voters.is_empty() {
            return None;
        }
        let i = self.next_voter.fetch_add(1, Ordering::Relaxed) % voters.len();
        voters.get(i).cloned()
    }

    /// The controllers this client currently tries.
    pub fn voters(&self) -> Vec<PeerAddr> {
        self.voters.read().clone()
    }

    /// Adopts the voter set a controller named in its reply (ignored when empty or unchanged).
    fn learn_voters(&self, named: &[kraftwerk_controller::membership::Member]) {
        let learned: Vec<PeerAddr> = named
            .iter()
            .filter_map(|m| {
                let e = kraftwerk_controller::membership::endpoint_on(m, &self.listener)?;
                Some(PeerAddr {
                    node_id: m.id,
                    host: e.host.clone(),
                    port: e.port,
                })
            })
            .collect();
        if learned.is_empty() {
            return;
        }
        let same = {
            let current = self.voters.read();
            current.len() == learned.len()
                && current
                    .iter()
                    .zip(&learned)
                    .all(|(a, b)| a.node_id == b.node_id && a.host == b.host && a.port == b.port)
        };
        if !same {
            tracing::info!(voters = ?learned.iter().map(|v| v.node_id).collect::<Vec<_>>(), "the controller quorum's voters changed");
            *self.voters.write() = learned;
        }
    }

    /// Sends `request` to the active controller and returns its reply and the controller's committed
    /// metadata offset after running it. Retries through leader changes until `deadline` has passed.
    pub async fn call(
        &self,
        request: &ControllerRequest,
        deadline: Duration,
        reply_timeout: Duration,
    ) -> Result<ReplyFrame, ClientError> {
        self.call_in(self.any_connection(), request, deadline, reply_timeout)
            .await
    }

    /// [`Self::call`] on the heartbeat connection, which nothing else uses.
    pub async fn call_lifeline(
        &self,
        request: &ControllerRequest,
        deadline: Duration,
        reply_timeout: Duration,
    ) -> Result<ReplyFrame, ClientError> {
        self.call_in(self.lifeline.lock(), request, deadline, reply_timeout)
            .await
    }

    /// Waits (within `deadline`) for the connection slot `slot` gives, then makes the call on it.
    async fn call_in<'a>(
        &'a self,
        slot: impl std::future::Future<Output = tokio::sync::MutexGuard<'a, Option<Conn>>>,
        request: &ControllerRequest,
        deadline: Duration,
        reply_timeout: Duration,
    ) -> Result<ReplyFrame, ClientError> {
        let give_up = Instant::now() + deadline;
        let conn = match tokio::time::timeout_at(give_up, slot).await {
            Ok(conn) => conn,
            Err(_) => return Err(ClientError::Timeout(deadline)),
        };
        self.call_on(conn, request, deadline, give_up, reply_timeout)
            .await
    }

    async fn call_on(
        &self,
        mut conn: tokio::sync::MutexGuard<'_, Option<Conn>>,
        request: &ControllerRequest,
        deadline: Duration,
        give_up: Instant,
        reply_timeout: Duration,
    ) -> Result<ReplyFrame, ClientError> {
        let body = rpc::encode(request).map_err(|e| ClientError::Encode(e.to_string()))?;
        loop {
            if Instant::now() >= give_up {
                return Err(ClientError::Timeout(deadline));
            }
            if conn.is_none() {
                let Some(target) = self.pick() else {
                    return Err(ClientError::Timeout(deadline));
                };
                match self.connect(&target).await {
                    Ok(Ok(c)) => {
                        *self.last_auth_failure.lock() = None;
                        *conn = Some(c)
                    }
                    Ok(Err(Refusal::Misconfigured(reason))) => {
                        return Err(ClientError::Refused {
                            node: target.node_id,
                            reason,
                        })
                    }
                    Ok(Err(Refusal::Unauthorized(reason))) => {
                        // Logged once per distinct reason (the same slot as refused logins: one or the other
                        // is the current problem).
                        {
                            let mut last = self.last_auth_failure.lock();
                            if last.as_deref() != Some(&reason) {
                                tracing::error!(
                                    controller = target.node_id,
                                    "the controller refused this node: {reason}"
                                );
                                *last = Some(reason);
                            }
                        }
                        tokio::time::sleep(UNAUTHORIZED_PAUSE).await;
                        continue;
                    }
                    Err(e) => {
                        if e.kind() == crate::tls::connector::AUTHENTICATION_FAILED {
                            // Logged once per distinct reason: retried every RETRY_PAUSE.
                            let reason = e.to_string();
                            let mut last = self.last_auth_failure.lock();
                            if last.as_deref() != Some(&reason) {
                                tracing::error!(
                                    controller = target.node_id,
                                    "cannot log in to the controller: {reason}"
                                );
                                *last = Some(reason);
                            }
                        } else {
                            tracing::debug!(controller = target.node_id, error = %e, "cannot reach controller");
                        }
                        self.leader_hint.store(-1, Ordering::Relaxed);
                        tokio::time::sleep(RETRY_PAUSE).await;
                        continue;
                    }
                }
            }
            let Some(c) = conn.as_mut() else { continue };
            let answer = exchange(c, &body, reply_timeout).await;
            if let Ok(frame) = &answer {
                self.learn_voters(&frame.voters);
            }
            match answer {
                Ok(ReplyFrame {
                    reply: ControllerReply::NotController { leader },
                    ..
                }) => {
                    let hint = leader.filter(|&l| l != c.node_id);
                    self.leader_hint
                        .store(hint.map_or(-1, i64::from), Ordering::Relaxed);
                    *conn = None;
                    if hint.is_none() {
                        tokio::time::sleep(RETRY_PAUSE).await;
                    }
                }
                Ok(frame) => {
                    self.leader_hint
                        .store(i64::from(c.node_id), Ordering::Relaxed);
                    return Ok(frame);
                }
                Err(e) => {
                    tracing::debug!(controller = c.node_id, error = %e, "controller call failed; retrying");
                    *conn = None;
                    self.leader_hint.store(-1, Ordering::Relaxed);
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
            }
        }
    }

    /// A free pooled connection slot, else the next one in turn once it is free.
    async fn any_connection(&self) -> tokio::sync::MutexGuard<'_, Option<Conn>> {
        for slot in &self.conns {
            if let Ok(guard) = slot.try_lock() {
                return guard;
            }
        }
        let i = self.next_conn.fetch_add(1, Ordering::Relaxed) % self.conns.len();
        self.conns[i].lock().await
    }

    async fn connect(&self, target: &PeerAddr) -> std::io::Result<Result<Conn, Refusal>> {
        let stream = self
            .connector
            .connect(&target.host, target.port, CONNECT_TIMEOUT)
            .await?;
        let (rd, mut writer) = tokio::io::split(stream);
        writer
            .write_all(&framed_hello(&Hello {
                kind: ChannelKind::Controller,
                cluster_id: self.cluster_id.clone(),
                from_node: self.node_id,
                to_node: target.node_id,
            }))
            .await?;
        // A TLS stream holds what was written until flushed.
        writer.flush().await?;
        let mut reader = FrameReader::new(rd);
        let ack = tokio::time::timeout(CONNECT_TIMEOUT, reader.next())
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no hello ack"))?
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        match decode_ack(&ack).map_err(|e| std::io::Error::other(e.to_string()))? {
            Ok(()) => Ok(Ok(Conn {
                node_id: target.node_id,
                reader,
                writer,
            })),
            Err(reason) => Ok(Err(reason)),
        }
    }
}

async fn exchange(c: &mut Conn, body: &[u8], timeout: Duration) -> std::io::Result<ReplyFrame> {
    write_frame(&mut c.writer, body).await?;
    c.writer.flush().await?;
    let frame = tokio::time::timeout(timeout, c.reader.next())
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no reply"))?
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    rpc::decode::<ReplyFrame>(&frame).map_err(|e| std::io::Error::other(e.to_string()))
}
