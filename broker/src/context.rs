//! What every request handler can reach: configuration, the controller, the hosted partitions and the API table.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::quorum::cluster::ClusterHandle;
use kraftwerk_protocol::versions::SupportedApis;

use crate::config::BrokerConfig;
use crate::group_service::GroupService;
use crate::producer_ids::ProducerIdManager;
use crate::replica::ReplicaManager;

pub struct BrokerContext {
    pub config: Arc<BrokerConfig>,
    pub node_id: i32,
    pub cluster_id: String,
    pub controller: ClusterHandle,
    pub replicas: Arc<ReplicaManager>,
    pub apis: SupportedApis,
    pub producer_ids: ProducerIdManager,
    pub groups: GroupService,
    /// `None` when `authorizer.class.name` is not set: every request is allowed.
    pub authorizer: Option<crate::auth::Authorizer>,
    /// The client instances of KIP-714 client telemetry (no metrics plugin: nothing is exported).
    pub telemetry: crate::handlers::client_telemetry::ClientTelemetry,
    /// Incremental fetch sessions (KIP-227), `max.incremental.fetch.session.cache.slots` of them at most.
    pub fetch_sessions: crate::fetch_session::FetchSessionCache,
}

impl BrokerContext {
    /// The authorization view of one request, against the current image's ACLs.
    pub fn auth(&self, conn: &ConnectionInfo) -> crate::auth::RequestAuth {
        crate::auth::RequestAuth::new(
            self.authorizer.as_ref(),
            &self.controller.image(),
            &conn.principal,
            conn.peer.ip(),
        )
    }

    /// Opens, reconfigures and deletes hosted partitions to match the current image, on a blocking thread:
    /// a change of thousands of partitions creates thousands of files, which must not stall the runtime that
    /// serves requests and sends heartbeats.
    pub async fn reconcile_now(&self) {
        let replicas = self.replicas.clone();
        let image = self.controller.image();
        if let Err(e) = tokio::task::spawn_blocking(move || replicas.reconcile(&image)).await {
            tracing::error!(error = %e, "reconciling hosted partitions panicked");
        }
    }
}

/// Per-connection facts a handler may need: Metadata answers with the endpoints of the listener the client
/// came in on, so a client on an external listener is never told an internal address.
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    pub peer: SocketAddr,
    pub listener_name: String,
    /// Who the client is: `User:<certificate subject>` on an SSL listener with a client certificate, else
    /// `User:ANONYMOUS`.
    pub principal: String,
    /// Set when the client sends more while a Fetch is handled: its long poll answers early.
    pub queued_input: std::sync::Arc<crate::network::queued_input::QueuedInput>,
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
