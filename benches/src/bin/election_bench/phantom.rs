//! Stand-in ("phantom") brokers: broker registrations without a broker process, so that a controller can
//! hold far more partitions than real brokers could host here (RF=3 on three brokers means a log per
//! partition on each, and a process may open 20,000 files).
//!
//! A phantom does what a broker's lifecycle manager does towards the controller quorum and nothing else:
//! it registers (a fresh incarnation id, one listener endpoint, the feature ranges it supports, one log
//! directory), then heartbeats every heartbeat interval with `wantFence=false` and the metadata offset the
//! quorum has committed, so the controller unfences it once that offset reaches its registration record,
//! and keeps it unfenced. The controller sees an ordinary unfenced broker: it places and leads partitions
//! on it and writes them to its log and snapshots exactly as with real brokers. Nothing connects to the
//! endpoint (nothing listens there); the harness only asks real brokers for Metadata.
//!
//! - Apache Kafka: BrokerRegistration (key 62) and BrokerHeartbeat (key 63) over the `kafka-protocol` codecs
//!   to the active controller's CONTROLLER listener, found with DescribeQuorum (which also gives the high
//!   watermark a heartbeat reports). The supported feature ranges are the ones the controller advertises in
//!   ApiVersions: the same software version's ranges, which is what a broker of that version sends.
//! - Kraftwerk: its controller channel, with the client a Kraftwerk broker uses
//!   (`kraftwerk_broker::quorum::controller_client`), which follows the raft leader itself.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use kafka_protocol::messages::broker_registration_request::{Feature, Listener};
use kafka_protocol::messages::{
    ApiVersionsRequest, BrokerHeartbeatRequest, BrokerId, BrokerRegistrationRequest,
};
use kafka_protocol::protocol::StrBytes;
use kraftwerk_broker::quorum::controller_client::ControllerClient;
use kraftwerk_broker::quorum::peer_transport::PeerAddr;
use kraftwerk_broker::tls::PeerConnector;
use kraftwerk_controller::records::{Endpoint, SecurityProtocol};
use kraftwerk_controller::rpc::{ControllerReply, ControllerRequest};
use kraftwerk_controller::BrokerRegistration;
use uuid::Uuid;

use crate::client::Client;

/// The listener every phantom registers (the name the real brokers' clients use, so a real broker's
/// Metadata lists the phantoms and their partitions' leaders).
const LISTENER: &str = "PLAINTEXT";
/// The port of that endpoint: nothing listens on it and nothing connects to it.
const FAKE_PORT: u16 = 1;
/// Kafka error codes a phantom reacts to.
const NOT_CONTROLLER: i16 = 41;
const STALE_BROKER_EPOCH: i16 = 77;
const BROKER_ID_NOT_REGISTERED: i16 = 102;

/// What one phantom has reached, for the harness to wait on and to explain a failure with.
struct PhantomState {
    id: i32,
    unfenced: AtomicBool,
    last_error: Mutex<String>,
}

impl PhantomState {
    fn new(id: i32) -> Arc<Self> {
        Arc::new(PhantomState {
            id,
            unfenced: AtomicBool::new(false),
            last_error: Mutex::new(String::new()),
        })
    }

    fn set_error(&self, e: String) {
        if let Ok(mut last) = self.last_error.lock() {
            *last = e;
        }
    }
}

/// Running phantom brokers; dropping them stops their heartbeats (the controller then fences them after
/// the session timeout, as it would a killed broker).
pub struct Phantoms {
    stop: Arc<AtomicBool>,
    states: Vec<Arc<PhantomState>>,
    threads: Vec<std::thread::JoinHandle<()>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Phantoms {
    /// Phantom brokers `ids` of an Apache Kafka cluster whose controllers are `controllers` (id, address).
    pub fn start_kafka(
        cluster_id: &str,
        controllers: &[(i32, SocketAddr)],
        ids: &[i32],
        heartbeat: Duration,
    ) -> Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut states = Vec::new();
        let mut threads = Vec::new();
        for &id in ids {
            let state = PhantomState::new(id);
            let mut phantom = KafkaPhantom {
                id,
                cluster_id: cluster_id.to_string(),
                controllers: controllers.to_vec(),
                incarnation: Uuid::new_v4(),
                log_dir: Uuid::new_v4(),
                timeout: (heartbeat * 4).max(Duration::from_secs(10)),
                session: None,
                epoch: None,
            };
            let (st, stop) = (state.clone(), stop.clone());
            threads.push(
                std::thread::Builder::new()
                    .name(format!("phantom-{id}"))
                    .spawn(move || {
                        while !stop.load(Ordering::Relaxed) {
                            match phantom.step() {
                                Ok(unfenced) => st.unfenced.store(unfenced, Ordering::Relaxed),
                                Err(e) => st.set_error(format!("{e:#}")),
                            }
                            sleep_unless(&stop, heartbeat);
                        }
                    })?,
            );
            states.push(state);
        }
        Ok(Phantoms {
            stop,
            states,
            threads,
            runtime: None,
        })
    }

    /// Phantom brokers `ids` of a Kraftwerk cluster whose controllers are `controllers` (id, address).
    pub fn start_kraftwerk(
        cluster_id: &str,
        controllers: &[(i32, SocketAddr)],
        ids: &[i32],
        heartbeat: Duration,
    ) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("phantoms")
            .enable_all()
            .build()?;
        let voters: Vec<PeerAddr> = controllers
            .iter()
            .map(|(id, a)| PeerAddr {
                node_id: *id,
                host: a.ip().to_string(),
                port: a.port(),
            })
            .collect();
        let stop = Arc::new(AtomicBool::new(false));
        let mut states = Vec::new();
        for &id in ids {
            let state = PhantomState::new(id);
            let client = ControllerClient::new(
                cluster_id.to_string(),
                id,
                voters.clone(),
                "CONTROLLER".into(),
                PeerConnector::plaintext(),
                None,
            );
            runtime.spawn(kraftwerk_phantom(
                client,
                state.clone(),
                stop.clone(),
                heartbeat,
            ));
            states.push(state);
        }
        Ok(Phantoms {
            stop,
            states,
            threads: Vec::new(),
            runtime: Some(runtime),
        })
    }

    /// Waits until the controller has unfenced every phantom.
    pub fn wait_unfenced(&self, timeout: Duration) -> Result<Duration> {
        let start = Instant::now();
        while !self.all_unfenced() {
            if start.elapsed() > timeout {
                let why: Vec<String> = self
                    .states
                    .iter()
                    .filter(|s| !s.unfenced.load(Ordering::Relaxed))
                    .map(|s| {
                        let e = s.last_error.lock().map(|e| e.clone()).unwrap_or_default();
                        format!("phantom broker {} (last error: {e})", s.id)
                    })
                    .collect();
                bail!("not unfenced within {timeout:?}: {}", why.join("; "));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(start.elapsed())
    }

    /// Whether the last heartbeat answer of every phantom said unfenced.
    pub fn all_unfenced(&self) -> bool {
        self.states
            .iter()
            .all(|s| s.unfenced.load(Ordering::Relaxed))
    }
}

impl Drop for Phantoms {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(5));
        }
    }
}

fn sleep_unless(stop: &AtomicBool, d: Duration) {
    let until = Instant::now() + d;
    while !stop.load(Ordering::Relaxed) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20).min(d));
    }
}

/// One Kafka phantom's registration and its connection to the active controller.
struct KafkaPhantom {
    id: i32,
    cluster_id: String,
    controllers: Vec<(i32, SocketAddr)>,
    incarnation: Uuid,
    log_dir: Uuid,
    timeout: Duration,
    session: Option<Client>,
    /// The broker epoch the controller gave the current registration.
    epoch: Option<i64>,
}

impl KafkaPhantom {
    /// One lifecycle step: (re)connect to the active controller if needed, then register or heartbeat.
    /// Returns whether the controller now has the phantom unfenced.
    fn step(&mut self) -> Result<bool> {
        let result = self.try_step();
        if result.is_err() {
            // Find the active controller again next time (it may have moved, or the connection broke).
            self.session = None;
        }
        result
    }

    fn try_step(&mut self) -> Result<bool> {
        if self.session.is_none() {
            self.session = Some(self.connect_active()?);
        }
        let c = self.session.as_mut().context("no controller connection")?;
        // The committed metadata offset: a real broker reports the offset it has applied, which follows
        // the high watermark; this is what lets the controller unfence it (at or past its registration
        // record) and complete other brokers' controlled shutdowns.
        let offset = c.quorum()?.high_watermark;
        let Some(epoch) = self.epoch else {
            let features = supported_features(c)?;
            let version = c
                .negotiated::<BrokerRegistrationRequest>()
                .context("the controller does not serve BrokerRegistration")?;
            let mut req = BrokerRegistrationRequest::default();
            req.broker_id = BrokerId(self.id);
            req.cluster_id = StrBytes::from_string(self.cluster_id.clone());
            req.incarnation_id = self.incarnation;
            let mut listener = Listener::default();
            listener.name = StrBytes::from_static_str(LISTENER);
            listener.host = StrBytes::from_static_str("127.0.0.1");
            listener.port = FAKE_PORT;
            listener.security_protocol = 0; // PLAINTEXT
            req.listeners = vec![listener];
            // Before v4 a broker leaves out the features whose minimum is 0 (the field's note).
            req.features = features
                .into_iter()
                .filter(|f| version >= 4 || f.min_supported_version != 0)
                .collect();
            req.rack = None;
            req.log_dirs = vec![self.log_dir];
            req.previous_broker_epoch = -1;
            let resp = c.call(&req)?;
            if resp.error_code == NOT_CONTROLLER {
                bail!("BrokerRegistration: NOT_CONTROLLER");
            }
            if resp.error_code != 0 {
                bail!("BrokerRegistration refused with error {}", resp.error_code);
            }
            self.epoch = Some(resp.broker_epoch);
            return Ok(false);
        };
        let mut req = BrokerHeartbeatRequest::default();
        req.broker_id = BrokerId(self.id);
        req.broker_epoch = epoch;
        req.current_metadata_offset = offset;
        req.want_fence = false;
        req.want_shut_down = false;
        let resp = c.call(&req)?;
        match resp.error_code {
            0 => Ok(!resp.is_fenced),
            STALE_BROKER_EPOCH | BROKER_ID_NOT_REGISTERED => {
                // The controller dropped this registration (a session timeout, say): register again.
                self.epoch = None;
                bail!(
                    "BrokerHeartbeat error {}: registering again",
                    resp.error_code
                )
            }
            code => bail!("BrokerHeartbeat error {code}"),
        }
    }

    /// A connection to the controller DescribeQuorum names as the leader.
    fn connect_active(&self) -> Result<Client> {
        let mut last = None;
        for (_, addr) in &self.controllers {
            let leader = Client::connect_with_timeout(*addr, self.timeout)
                .and_then(|mut c| c.quorum().map(|q| (q.leader, c)));
            match leader {
                Ok((leader, c)) => {
                    if let Some((_, leader_addr)) =
                        self.controllers.iter().find(|(id, _)| *id == leader)
                    {
                        if leader_addr == addr {
                            return Ok(c);
                        }
                        return Client::connect_with_timeout(*leader_addr, self.timeout);
                    }
                    last = Some(anyhow::anyhow!("no controller leader yet ({leader})"));
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("no controllers")))
    }
}

/// The feature ranges the controller supports (ApiVersions v3+), as BrokerRegistration features.
fn supported_features(c: &mut Client) -> Result<Vec<Feature>> {
    let mut req = ApiVersionsRequest::default();
    req.client_software_name = StrBytes::from_static_str("kraftwerk-phantom-broker");
    req.client_software_version = StrBytes::from_static_str(env!("CARGO_PKG_VERSION"));
    let resp = c.call(&req)?;
    if resp.error_code != 0 {
        bail!("ApiVersions error {}", resp.error_code);
    }
    if resp.supported_features.is_empty() {
        bail!("the controller advertised no supported features");
    }
    Ok(resp
        .supported_features
        .iter()
        .map(|f| {
            let mut feature = Feature::default();
            feature.name = f.name.clone();
            feature.min_supported_version = f.min_version;
            feature.max_supported_version = f.max_version;
            feature
        })
        .collect())
}

/// One Kraftwerk phantom: registers, then heartbeats with the committed offset every `interval`,
/// registering again if the controller forgot it.
async fn kraftwerk_phantom(
    client: ControllerClient,
    state: Arc<PhantomState>,
    stop: Arc<AtomicBool>,
    interval: Duration,
) {
    let id = state.id;
    let deadline = (interval * 4).max(Duration::from_secs(10));
    let mut epoch: Option<i64> = None;
    let mut offset = -1;
    while !stop.load(Ordering::Relaxed) {
        let Some(e) = epoch else {
            let reg = BrokerRegistration {
                broker_id: id,
                listeners: vec![Endpoint {
                    name: LISTENER.into(),
                    host: "127.0.0.1".into(),
                    port: FAKE_PORT,
                    security_protocol: SecurityProtocol::Plaintext,
                }],
                rack: None,
            };
            match client
                .call(&ControllerRequest::RegisterBroker(reg), deadline, deadline)
                .await
            {
                Ok(frame) => {
                    offset = frame.committed_offset;
                    match frame.reply {
                        ControllerReply::Registered(Ok(e)) => epoch = Some(e),
                        other => state.set_error(format!("registering: {other:?}")),
                    }
                }
                Err(err) => state.set_error(format!("registering: {err}")),
            }
            tokio::time::sleep(interval).await;
            continue;
        };
        let req = ControllerRequest::BrokerHeartbeat {
            broker_id: id,
            broker_epoch: e,
            metadata_offset: offset,
            shutting_down: false,
        };
        match client.call(&req, deadline, deadline).await {
            Ok(frame) => {
                offset = frame.committed_offset;
                match frame.reply {
                    ControllerReply::Heartbeat(Ok(r)) => {
                        state.unfenced.store(!r.fenced, Ordering::Relaxed)
                    }
                    other => {
                        state.set_error(format!("heartbeat: {other:?}; registering again"));
                        state.unfenced.store(false, Ordering::Relaxed);
                        epoch = None;
                    }
                }
            }
            Err(err) => state.set_error(format!("heartbeat: {err}")),
        }
        tokio::time::sleep(interval).await;
    }
}
