//! Raft messages to the other controllers over their controller listeners.
//!
//! One long-lived outgoing connection per peer, owned by a task that drains a bounded queue. The peers start
//! as the static `controller.quorum.voters` and then follow the quorum's membership (KIP-853): the node hands
//! every applied membership to [`Transport::set_members`], which starts a sender for a new voter or learner
//! (dialled on the endpoint the membership records for it), restarts one whose endpoint changed, and stops the
//! sender of a removed one. The node never
//! waits on the network: `send` queues or, when the queue is full or the peer is down, drops the message
//! (raft retransmits whatever is lost). A lost connection is redialled with exponential backoff. The first
//! frame is a hello naming the cluster and both nodes; a peer that refuses it (another cluster, a voter list
//! that does not name us) is logged once per refusal with the reason it gave.

use std::collections::HashMap;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::task::JoinHandle;

use crate::tls::{PeerConnector, PeerStream};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tracing::{debug, info, warn, Instrument};

use kraftwerk_controller::membership::{endpoint_on, Membership};
use kraftwerk_controller::transport::{encode_raft_message, RaftMessage, Transport};
use kraftwerk_protocol::quorum_channel::{decode_ack, framed_hello, ChannelKind, Hello};

use super::channel::{write_frame, FrameReader};

/// Messages queued per peer before new ones are dropped.
const QUEUE_CAPACITY: usize = 1024;
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(2);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Where a peer controller listens.
#[derive(Debug, Clone)]
pub struct PeerAddr {
    pub node_id: i32,
    pub host: String,
    pub port: u16,
}

/// One peer's sender.
struct Peer {
    addr: PeerAddr,
    queue: mpsc::Sender<RaftMessage>,
    task: JoinHandle<()>,
}

/// The [`Transport`] of a controller: one sender per other member of the quorum.
pub struct TcpTransport {
    cluster_id: String,
    self_id: i32,
    /// The controller listener name whose endpoint is dialled when a member has several.
    listener: String,
    /// Dials it with its protocol (PLAINTEXT or SSL).
    connector: PeerConnector,
    /// The broker runtime the senders run on (`set_members` is called from the controller's own thread).
    runtime: tokio::runtime::Handle,
    peers: Mutex<HashMap<i32, Peer>>,
}

impl TcpTransport {
    /// Starts one sender task per peer (every voter but `self_id`); must be called inside the runtime the
    /// senders are to run on.
    pub fn start(
        cluster_id: &str,
        self_id: i32,
        listener: &str,
        connector: PeerConnector,
        peers: &[PeerAddr],
    ) -> Self {
        let transport = Self {
            cluster_id: cluster_id.to_string(),
            self_id,
            listener: listener.to_string(),
            connector,
            runtime: tokio::runtime::Handle::current(),
            peers: Mutex::new(HashMap::new()),
        };
        {
            let mut map = transport.peers.lock();
            for peer in peers.iter().filter(|p| p.node_id != self_id) {
                map.insert(peer.node_id, transport.spawn_peer(peer.clone()));
            }
        }
        transport
    }

    fn spawn_peer(&self, addr: PeerAddr) -> Peer {
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        let hello = Hello {
            kind: ChannelKind::Raft,
            cluster_id: self.cluster_id.clone(),
            from_node: self.self_id,
            to_node: addr.node_id,
        };
        let span = tracing::info_span!("raft_peer", peer = addr.node_id);
        let task = self
            .runtime
            .spawn(run_peer(addr.clone(), self.connector.clone(), hello, rx).instrument(span));
        Peer {
            addr,
            queue: tx,
            task,
        }
    }

    /// The peers' node ids (for tests and logs).
    pub fn peer_ids(&self) -> Vec<i32> {
        let mut ids: Vec<i32> = self.peers.lock().keys().copied().collect();
        ids.sort_unstable();
        ids
    }
}

impl Transport for TcpTransport {
    fn send(&self, to: i32, message: RaftMessage) {
        match self.peers.lock().get(&to) {
            Some(peer) => {
                if peer.queue.try_send(message).is_err() {
                    debug!(to, "raft queue full or closed; dropping a message");
                }
            }
            None => warn!(
                to,
                "dropping a raft message to a node that is not in the quorum"
            ),
        }
    }

    fn set_members(&self, members: &Membership) {
        let mut wanted = HashMap::new();
        for member in members.members().filter(|m| m.id != self.self_id) {
            match endpoint_on(member, &self.listener) {
                Some(e) => {
                    wanted.insert(
                        member.id,
                        PeerAddr {
                            node_id: member.id,
                            host: e.host.clone(),
                            port: e.port,
                        },
                    );
                }
                None => warn!(
                    peer = member.id,
                    "quorum member has no endpoint; raft messages to it are dropped"
                ),
            }
        }
        let mut peers = self.peers.lock();
        peers.retain(|id, peer| {
            let keep = wanted
                .get(id)
                .is_some_and(|w| w.host == peer.addr.host && w.port == peer.addr.port);
            if !keep {
                info!(
                    peer = id,
                    "no longer a quorum member at this address; closing its raft connection"
                );
                peer.task.abort();
            }
            keep
        });
        for (id, addr) in wanted {
            if let std::collections::hash_map::Entry::Vacant(slot) = peers.entry(id) {
                info!(peer = id, host = %addr.host, port = addr.port, "new quorum member; connecting");
                slot.insert(self.spawn_peer(addr));
            }
        }
    }
}

impl Drop for TcpTransport {
    fn drop(&mut self) {
        for peer in self.peers.lock().values() {
            peer.task.abort();
        }
    }
}

async fn run_peer(
    peer: PeerAddr,
    connector: PeerConnector,
    hello: Hello,
    mut queue: mpsc::Receiver<RaftMessage>,
) {
    let addr = format!("{}:{}", peer.host, peer.port);
    let mut backoff = BACKOFF_MIN;
    let mut last_refusal: Option<String> = None;
    loop {
        match connect(&connector, &peer, &hello).await {
            Ok(Ok(stream)) => {
                info!(%addr, "connected to raft peer");
                backoff = BACKOFF_MIN;
                last_refusal = None;
                // Messages queued while disconnected are stale (raft has moved on); drop them.
                while queue.try_recv().is_ok() {}
                if let Err(e) = pump(stream, &mut queue).await {
                    debug!(%addr, error = %e, "raft peer connection lost");
                }
                if queue.is_closed() {
                    return;
                }
            }
            Ok(Err(refusal)) => {
                if last_refusal.as_deref() != Some(&refusal) {
                    tracing::error!(%addr, "controller {} refused our raft connection: {refusal}", peer.node_id);
                    last_refusal = Some(refusal);
                }
            }
            // A refused SASL login is a configuration mistake (credentials, mechanism): say so once, loudly.
            Err(e) if e.kind() == crate::tls::connector::AUTHENTICATION_FAILED => {
                let refusal = e.to_string();
                if last_refusal.as_deref() != Some(&refusal) {
                    tracing::error!(%addr, "cannot log in to controller {} for raft: {refusal}", peer.node_id);
                    last_refusal = Some(refusal);
                }
            }
            Err(e) => debug!(%addr, error = %e, "cannot reach raft peer"),
        }
        // Drop what piled up while the peer was unreachable, then wait before redialling.
        let wait = tokio::time::sleep(backoff);
        tokio::pin!(wait);
        loop {
            tokio::select! {
                _ = &mut wait => break,
                m = queue.recv() => if m.is_none() { return },
            }
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// Dials and says hello; `Ok(Err(reason))` when the peer refused us.
async fn connect(
    connector: &PeerConnector,
    peer: &PeerAddr,
    hello: &Hello,
) -> std::io::Result<Result<PeerStream, String>> {
    let mut stream = connector
        .connect(&peer.host, peer.port, CONNECT_TIMEOUT)
        .await?;
    stream.write_all(&framed_hello(hello)).await?;
    stream.flush().await?;
    let mut reader = FrameReader::new(&mut stream);
    let ack = tokio::time::timeout(CONNECT_TIMEOUT, reader.next())
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no hello ack"))?
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    match decode_ack(&ack) {
        Ok(Ok(())) => Ok(Ok(stream)),
        // Both kinds are logged and redialled with backoff: a misconfiguration needs an operator, a missing
        // CLUSTER_ACTION an ACL, and raft must resume as soon as either is fixed.
        Ok(Err(refusal)) => Ok(Err(refusal.to_string())),
        Err(e) => Err(std::io::Error::other(e.to_string())),
    }
}

/// Writes queued messages until the connection fails or the queue closes. Writes are batched: whatever is
/// queued when the socket is ready goes out in one flush.
async fn pump(stream: PeerStream, queue: &mut mpsc::Receiver<RaftMessage>) -> std::io::Result<()> {
    let (mut rd, wr) = tokio::io::split(stream);
    let mut wr = tokio::io::BufWriter::with_capacity(64 * 1024, wr);
    let mut probe = [0u8; 1];
    loop {
        tokio::select! {
            message = queue.recv() => {
                let Some(message) = message else { return Ok(()) };
                write_frame(&mut wr, &encode_raft_message(&message)).await?;
                while let Ok(message) = queue.try_recv() {
                    write_frame(&mut wr, &encode_raft_message(&message)).await?;
                }
                wr.flush().await?;
            }
            // The peer never writes after the ack; a read returning means it closed the connection.
            r = tokio::io::AsyncReadExt::read(&mut rd, &mut probe) => {
                r?;
                return Err(std::io::Error::new(std::io::ErrorKind::ConnectionAborted, "peer closed the connection"));
            }
        }
    }
}
