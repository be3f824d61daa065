//! Raft messages to the other controllers over their controller listeners.
//!
//! One long-lived outgoing connection per peer, owned by a task that drains a bounded queue. The node never
//! waits on the network: `send` queues or, when the queue is full or the peer is down, drops the message
//! (raft retransmits whatever is lost). A lost connection is redialled with exponential backoff. The first
//! frame is a hello naming the cluster and both nodes; a peer that refuses it (another cluster, a voter list
//! that does not name us) is logged once per refusal with the reason it gave.

use std::collections::HashMap;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tracing::{debug, info, warn, Instrument};

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

/// The [`Transport`] of a controller in a multi-voter quorum.
pub struct TcpTransport {
    queues: HashMap<i32, mpsc::Sender<RaftMessage>>,
}

impl TcpTransport {
    /// Starts one sender task per peer (every voter but `self_id`).
    pub fn start(cluster_id: &str, self_id: i32, peers: &[PeerAddr]) -> Self {
        let mut queues = HashMap::new();
        for peer in peers.iter().filter(|p| p.node_id != self_id) {
            let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
            let hello = Hello {
                kind: ChannelKind::Raft,
                cluster_id: cluster_id.to_string(),
                from_node: self_id,
                to_node: peer.node_id,
            };
            let span = tracing::info_span!("raft_peer", peer = peer.node_id);
            tokio::spawn(run_peer(peer.clone(), hello, rx).instrument(span));
            queues.insert(peer.node_id, tx);
        }
        Self { queues }
    }
}

impl Transport for TcpTransport {
    fn send(&self, to: i32, message: RaftMessage) {
        match self.queues.get(&to) {
            Some(queue) => {
                if queue.try_send(message).is_err() {
                    debug!(to, "raft queue full or closed; dropping a message");
                }
            }
            None => warn!(to, "dropping a raft message to a node that is not a voter"),
        }
    }
}

async fn run_peer(peer: PeerAddr, hello: Hello, mut queue: mpsc::Receiver<RaftMessage>) {
    let addr = format!("{}:{}", peer.host, peer.port);
    let mut backoff = BACKOFF_MIN;
    let mut last_refusal: Option<String> = None;
    loop {
        match connect(&addr, &hello).await {
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
async fn connect(addr: &str, hello: &Hello) -> std::io::Result<Result<TcpStream, String>> {
    let mut stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
    stream.set_nodelay(true)?;
    stream.write_all(&framed_hello(hello)).await?;
    let (rd, _) = stream.split();
    let mut reader = FrameReader::new(rd);
    let ack = tokio::time::timeout(CONNECT_TIMEOUT, reader.next())
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no hello ack"))?
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    match decode_ack(&ack) {
        Ok(Ok(())) => Ok(Ok(stream)),
        Ok(Err(refusal)) => Ok(Err(refusal)),
        Err(e) => Err(std::io::Error::other(e.to_string())),
    }
}

/// Writes queued messages until the connection fails or the queue closes. Writes are batched: whatever is
/// queued when the socket is ready goes out in one flush.
async fn pump(stream: TcpStream, queue: &mut mpsc::Receiver<RaftMessage>) -> std::io::Result<()> {
    let (mut rd, wr) = stream.into_split();
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
