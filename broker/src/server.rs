//! Start-up and shutdown of one node, by its `process.roles`: check the log directories are formatted; as a
//! controller, start the raft node and bind the controller listener; as a broker, follow the metadata, register
//! with the active controller, open the hosted partitions and bind the client listeners; serve until
//! SIGTERM/SIGINT, then shut down in order (controlled shutdown first, so leaderships move before we stop).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::task::JoinHandle;

use kraftwerk_controller::follower::MetadataFollower;
use kraftwerk_controller::records::Endpoint;
use kraftwerk_controller::{
    BrokerRegistration, Controller, ControllerConfig, ControllerHandle, VoterAddr,
};

use crate::config::BrokerConfig;
use crate::context::{now_ms, BrokerContext};
use crate::group_service::GroupService;
use crate::producer_ids::ProducerIdManager;
use crate::quorum::cluster::ClusterHandle;
use crate::quorum::controller_client::ControllerClient;
use crate::quorum::controller_service::{self, ControllerService};
use crate::quorum::follower_task;
use crate::quorum::lifecycle::BrokerLifecycle;
use crate::quorum::peer_transport::{PeerAddr, TcpTransport};
use crate::replica::fetcher::{FetcherContext, FetcherManager};
use crate::replica::{isr, log_config, ReplicaManager};
use crate::{handlers, meta_properties, network};

/// Every directory this node writes: the data dirs plus the metadata dir.
fn all_dirs(config: &BrokerConfig) -> Vec<std::path::PathBuf> {
    let mut dirs = config.log_dirs.clone();
    if !dirs.contains(&config.metadata_dir()) {
        dirs.push(config.metadata_dir());
    }
    dirs
}

pub async fn run(config: BrokerConfig, default_mode: bool) -> anyhow::Result<()> {
    let started = Instant::now();
    // num.network.threads + num.io.threads (else one per CPU), as the runtime itself counts them.
    tracing::info!(
        workers = tokio::runtime::Handle::current().metrics().num_workers(),
        "runtime worker threads"
    );
    let dirs = all_dirs(&config);
    // Held until this function returns (the process ends): no second process may open these directories.
    let _locks = crate::dir_lock::lock_dirs(&dirs)?;
    if default_mode
        && dirs
            .iter()
            .all(|d| matches!(meta_properties::read(d), Ok(None)))
    {
        let id = meta_properties::random_uuid();
        meta_properties::format(&dirs, &id, config.node_id, true)?;
        tracing::info!(cluster_id = %id, dirs = ?dirs, "formatted new log directories");
    }
    let cluster_id = meta_properties::verify(&dirs, config.node_id)?;
    let config = Arc::new(config);
    let voters: Vec<PeerAddr> = config
        .voters
        .iter()
        .map(|v| PeerAddr {
            node_id: v.id,
            host: v.host.clone(),
            port: v.port,
        })
        .collect();

    let mut tasks = Vec::new();
    let controller = if config.is_controller() {
        let (controller, controller_tasks) =
            start_controller(&config, &cluster_id, &voters).await?;
        tasks.extend(controller_tasks);
        Some(controller)
    } else {
        None
    };
    let broker = if config.is_broker() {
        let local = controller.as_ref().map(Controller::handle);
        let (broker, broker_tasks) =
            start_broker(config.clone(), cluster_id.clone(), &voters, local).await?;
        tasks.extend(broker_tasks);
        Some(broker)
    } else {
        None
    };
    tracing::info!(
        node_id = config.node_id,
        roles = ?config.process_roles,
        startup_ms = started.elapsed().as_millis() as u64,
        "kraftwerk started"
    );

    wait_for_signal().await;
    tracing::info!("shutting down");
    if let Some(broker) = &broker {
        broker
            .lifecycle
            .controlled_shutdown(config.broker_session_timeout)
            .await;
    }
    for t in &tasks {
        t.abort();
    }
    if let Some(broker) = broker {
        broker.fetchers.shutdown();
        // A cleaning in progress finishes (or is discarded) before the logs close; both are file work, off
        // the runtime.
        let cleaner = broker.cleaner;
        let replicas = broker.replicas;
        let _ = tokio::task::spawn_blocking(move || {
            cleaner.stop();
            replicas.shutdown();
        })
        .await;
    }
    if let Some(controller) = controller {
        controller.shutdown().await;
    }
    tracing::info!("shutdown complete");
    Ok(())
}

/// The controller role: the raft node (with a TCP transport when there are other voters), the controller
/// listener, and the broker-session checks of the active controller.
async fn start_controller(
    config: &Arc<BrokerConfig>,
    cluster_id: &str,
    voters: &[PeerAddr],
) -> anyhow::Result<(Controller, Vec<JoinHandle<()>>)> {
    let listener_name = config
        .controller_listener_names
        .first()
        .cloned()
        .unwrap_or_else(|| "CONTROLLER".to_string());
    // Always a TCP transport, even for a lone voter: voters can be added at run time (KIP-853).
    let connector = config.connector_for(&listener_name).with_context(|| {
        format!("setting up the connections to the controller listener {listener_name}")
    })?;
    let transport: Arc<dyn kraftwerk_controller::Transport> = Arc::new(TcpTransport::start(
        cluster_id,
        config.node_id,
        &listener_name,
        connector,
        voters,
    ));
    let controller = kraftwerk_controller::start(
        ControllerConfig {
            node_id: config.node_id,
            voters: voters
                .iter()
                .map(|v| VoterAddr {
                    id: v.node_id,
                    host: v.host.clone(),
                    port: v.port,
                })
                .collect(),
            listener_name,
            metadata_dir: config.metadata_dir(),
            cluster_id: cluster_id.to_string(),
            default_num_partitions: config.num_partitions,
            default_replication_factor: config.default_replication_factor,
            // raft-rs counts an election timeout of 10 ticks (randomised to 10-20).
            tick: (config.election_timeout / 10).max(Duration::from_millis(1)),
            snapshot_bytes: config.metadata_snapshot_bytes,
            unclean_leader_election_enable: config.unclean_leader_election_enable,
        },
        transport,
    )
    .await
    .context("starting the controller")?;
    let listener = config
        .listeners
        .iter()
        .find(|l| config.controller_listener_names.first() == Some(&l.name))
        .context("no controller listener")?;
    let tls = tls_listener(config, listener)?;
    let socket = network::listener::bind(listener, socket_buffers(config))
        .await
        .with_context(|| {
            format!(
                "binding controller listener {}://{}",
                listener.name,
                listener.bind_addr()
            )
        })?;
    tracing::info!(listener = %listener.name, addr = %listener.bind_addr(), "controller listening");
    // What `kraftwerk format` bootstrapped (metadata.version, --add-scram credentials): written into the log by
    // the first active controller, and the SCRAM logins of the controller listener until then.
    let bootstrap = kraftwerk_controller::bootstrap::read(&config.metadata_dir())
        .context("reading the bootstrap metadata")?
        .unwrap_or_default();
    let sasl = match config.sasl.get(&listener.name) {
        Some(settings) => {
            let store = crate::quorum::controller_scram::ControllerScramStore {
                handle: controller.handle(),
                bootstrap: kraftwerk_controller::bootstrap::scram_credentials(&bootstrap),
            };
            Some(controller_service::ControllerSasl {
                sasl: Arc::new(
                    crate::sasl::SaslListener::new(settings.clone(), Arc::new(store))
                        .map_err(anyhow::Error::msg)?,
                ),
                listener: Arc::new(listener.clone()),
                idle: config.connections_max_idle,
            })
        }
        None => None,
    };
    let service = ControllerService::new(
        controller.handle(),
        cluster_id.to_string(),
        config.clone(),
        listener.name.clone(),
        bootstrap,
    );
    let check_every = (config.broker_heartbeat_interval / 2).max(Duration::from_millis(50));
    let mut tasks = vec![
        tokio::spawn(controller_service::accept_loop(
            socket,
            tls,
            sasl,
            service.clone(),
        )),
        tokio::spawn(service.clone().run_session_checks(check_every)),
    ];
    if config.auto_leader_rebalance_enable {
        tasks.push(tokio::spawn(service.run_leader_rebalance(
            config.leader_imbalance_check_interval,
            config.leader_imbalance_per_broker_percentage,
        )));
    }
    Ok((controller, tasks))
}

/// What the shutdown needs of the broker role.
struct BrokerParts {
    lifecycle: Arc<BrokerLifecycle>,
    replicas: Arc<ReplicaManager>,
    fetchers: Arc<FetcherManager>,
    cleaner: Arc<crate::replica::cleaner::DynamicCleaner>,
}

/// The broker role: its metadata (the local controller's image, or one fetched from the controllers),
/// registration and heartbeats, hosted partitions, the group coordinator and the client listeners.
async fn start_broker(
    config: Arc<BrokerConfig>,
    cluster_id: String,
    voters: &[PeerAddr],
    local: Option<ControllerHandle>,
) -> anyhow::Result<(BrokerParts, Vec<JoinHandle<()>>)> {
    let mut tasks = Vec::new();
    let controller_listener = config
        .controller_listener_names
        .first()
        .cloned()
        .unwrap_or_else(|| "CONTROLLER".to_string());
    let controller_connector = config
        .connector_for(&controller_listener)
        .with_context(|| {
            format!("setting up TLS to the controller listener {controller_listener}")
        })?;
    let images = match &local {
        Some(handle) => handle.subscribe(),
        None => {
            let (follower, images) = MetadataFollower::new(&cluster_id);
            let client = ControllerClient::new(
                cluster_id.clone(),
                config.node_id,
                voters.to_vec(),
                controller_listener.clone(),
                controller_connector.clone(),
                None,
            );
            let fetch_timeout = config.quorum_fetch_timeout;
            tasks.push(tokio::spawn(async move {
                let refusal = follower_task::follow(client, follower, fetch_timeout).await;
                tracing::error!("stopped following the metadata log: {refusal}");
            }));
            images
        }
    };
    let client = ControllerClient::new(
        cluster_id.clone(),
        config.node_id,
        voters.to_vec(),
        controller_listener,
        controller_connector,
        local.clone(),
    );
    let cluster = ClusterHandle::new(local, client, images);

    let lifecycle = BrokerLifecycle::register(cluster.clone(), registration(&config))
        .await
        .context("registering this broker with the active controller")?;
    wait_for_own_registration(&cluster, config.node_id, lifecycle.epoch()).await;
    tasks.push(tokio::spawn(
        lifecycle
            .clone()
            .run_heartbeats(config.broker_heartbeat_interval),
    ));

    let mut replica_manager = ReplicaManager::new(
        config.node_id,
        config.log_dirs.clone(),
        log_config::broker_defaults(&config),
    )
    .context("scanning log directories")?;
    replica_manager.set_recovery_threads_per_dir(config.num_recovery_threads_per_data_dir);
    replica_manager.set_producer_id_expiration_ms(producer_id_expiration_ms(
        &cluster.image(),
        config.node_id,
        config.producer_id_expiration_ms,
    ));
    let replicas = Arc::new(replica_manager);
    // Opening (and recovering) the hosted partitions is file work: off the runtime's workers.
    {
        let replicas = replicas.clone();
        let image = cluster.image();
        tokio::task::spawn_blocking(move || replicas.reconcile(&image))
            .await
            .context("opening the hosted partitions")?;
    }

    // Replication: fetchers for the partitions this broker follows, ISR checks for those it leads.
    let broker_epoch: Arc<dyn Fn() -> i64 + Send + Sync> = {
        let lifecycle = lifecycle.clone();
        Arc::new(move || lifecycle.epoch())
    };
    let listener_name = config
        .inter_broker_listener()
        .context("no client listener for replicas to fetch from")?
        .to_string();
    let connector = config
        .connector_for(&listener_name)
        .with_context(|| format!("setting up TLS to the inter-broker listener {listener_name}"))?;
    let fetchers = Arc::new(FetcherManager::new(FetcherContext {
        node_id: config.node_id,
        connector,
        listener_name,
        cluster: cluster.clone(),
        broker_epoch: broker_epoch.clone(),
    }));
    fetchers.reconcile(&replicas);
    tasks.push(tokio::spawn(isr::run_isr_checks(
        config.node_id,
        replicas.clone(),
        cluster.clone(),
        broker_epoch,
        config.replica_lag_time_max,
    )));

    let groups = GroupService::start(&config, cluster.clone(), replicas.clone());

    let ctx = Arc::new(BrokerContext {
        config: config.clone(),
        node_id: config.node_id,
        cluster_id,
        controller: cluster.clone(),
        replicas: replicas.clone(),
        apis: handlers::supported_apis(),
        producer_ids: ProducerIdManager::new(config.node_id),
        groups,
        authorizer: config.authorizer.as_ref().map(crate::auth::Authorizer::new),
        telemetry: handlers::client_telemetry::ClientTelemetry::new(),
        fetch_sessions: crate::fetch_session::FetchSessionCache::new(
            config.fetch_session_cache_slots,
        ),
    });

    let cleaner = Arc::new(crate::replica::cleaner::DynamicCleaner::start(
        &config.log_cleaner,
        &config.raw,
        replicas.clone(),
    )?);
    // Dynamic cleaner settings: applied on their own task (a restart waits for a cleaning in progress, which
    // must not hold up partition changes), in order, the newest winning; the first value is what was committed
    // while this broker was down.
    let (cleaner_settings, mut cleaner_changes) = tokio::sync::watch::channel(
        crate::replica::cleaner::dynamic_broker_configs(&cluster.image(), config.node_id),
    );
    cleaner_changes.mark_changed();
    tasks.push({
        let cleaner = cleaner.clone();
        tokio::spawn(async move {
            while cleaner_changes.changed().await.is_ok() {
                let dynamic = cleaner_changes.borrow_and_update().clone();
                let cleaner = cleaner.clone();
                let _ = tokio::task::spawn_blocking(move || cleaner.apply(&dynamic)).await;
            }
        })
    });
    // Follow metadata changes: open, reconfigure and delete partitions as the image changes, and apply
    // dynamic log cleaner settings.
    let mut changes = cluster.subscribe();
    tasks.push({
        let replicas = replicas.clone();
        let fetchers = fetchers.clone();
        let node_id = config.node_id;
        tokio::spawn(async move {
            while changes.changed().await.is_ok() {
                let image = changes.borrow_and_update().clone();
                cleaner_settings.send_if_modified(|current| {
                    let next = crate::replica::cleaner::dynamic_broker_configs(&image, node_id);
                    let changed = *current != next;
                    *current = next;
                    changed
                });
                let blocking = replicas.clone();
                let fetchers = fetchers.clone();
                // Off the runtime: thousands of new partitions mean thousands of files, and both passes walk
                // every hosted partition, which must not delay heartbeats or requests.
                if let Err(e) = tokio::task::spawn_blocking(move || {
                    blocking.reconcile(&image);
                    fetchers.reconcile(&blocking);
                })
                .await
                {
                    tracing::error!(error = %e, "reconciling hosted partitions panicked");
                }
            }
        })
    });
    tasks.push(every_blocking(
        Duration::from_millis(config.log_retention_check_interval_ms.max(100)),
        {
            let replicas = replicas.clone();
            move || replicas.enforce_retention(now_ms())
        },
    ));
    // Kafka's log flusher runs every log.flush.scheduler.interval.ms, and so never while that is at its default
    // (Long.MAX): a topic's flush.ms would then do nothing. Kraftwerk checks every second in that case.
    let flush_check_ms = match config.log_flush_scheduler_interval_ms {
        i64::MAX => 1000,
        ms => ms.max(1),
    };
    tasks.push(every_blocking(
        Duration::from_millis(flush_check_ms as u64),
        {
            let replicas = replicas.clone();
            move || {
                replicas.flush_due(now_ms());
            }
        },
    ));
    // producer.id.expiration.ms, checked every producer.id.expiration.check.interval.ms.
    tasks.push(every_blocking(
        Duration::from_millis(config.producer_id_expiration_check_interval_ms),
        {
            let replicas = replicas.clone();
            let cluster = cluster.clone();
            let static_expiration = config.producer_id_expiration_ms;
            let node_id = config.node_id;
            move || {
                let expiration =
                    producer_id_expiration_ms(&cluster.image(), node_id, static_expiration);
                let n = replicas.expire_producers(now_ms(), expiration);
                if n > 0 {
                    tracing::info!(producers = n, "expired idle producer ids");
                }
            }
        },
    ));
    tasks.push(every_blocking(config.replica_hw_checkpoint_interval, {
        let replicas = replicas.clone();
        move || replicas.checkpoint_high_watermarks()
    }));

    // Every listener's TLS stores are read and every socket bound before any accepts: a bad keystore or a
    // taken port stops the start before a client is served on the others.
    let mut bound = Vec::new();
    for listener in config.client_listeners() {
        let tls = tls_listener(&config, listener)?;
        let sasl = match config.sasl.get(&listener.name) {
            Some(settings) => Some(Arc::new(
                crate::sasl::SaslListener::new(settings.clone(), Arc::new(ctx.controller.clone()))
                    .map_err(anyhow::Error::msg)?,
            )),
            None => None,
        };
        let socket = network::listener::bind(listener, socket_buffers(&config))
            .await
            .with_context(|| {
                format!(
                    "binding listener {}://{}",
                    listener.name,
                    listener.bind_addr()
                )
            })?;
        bound.push((listener, tls, sasl, socket));
    }
    // Changed at run time by the metadata task below (dynamic max.connections*).
    let broker_limit = network::limits::ConnectionCap::new(config.max_connections);
    let per_ip = network::limits::PerIpLimits::new(
        config.max_connections_per_ip,
        config.max_connections_per_ip_overrides.clone(),
    );
    tasks.push({
        let limits = network::limits::DynamicLimits {
            static_props: config.raw.clone(),
            broker: broker_limit.clone(),
            per_ip: per_ip.clone(),
        };
        let node_id = config.node_id;
        let mut changes = cluster.subscribe();
        // The first value is what was committed while this broker was down.
        changes.mark_changed();
        tokio::spawn(async move {
            let mut applied = None;
            while changes.changed().await.is_ok() {
                let image = changes.borrow_and_update().clone();
                let dynamic = crate::replica::cleaner::dynamic_broker_configs(&image, node_id);
                limits.apply(&dynamic, &mut applied);
            }
        })
    });
    let inter_broker = config.inter_broker_listener().map(str::to_string);
    for (listener, tls, sasl, socket) in bound {
        let limits = network::listener::AcceptLimits {
            // Kafka lets inter-broker connections in whatever the broker-wide count.
            broker: Some(broker_limit.clone())
                .filter(|_| inter_broker.as_deref() != Some(listener.name.as_str())),
            listener: config
                .listener_max_connections
                .get(&listener.name)
                .map(|&n| network::limits::ConnectionCap::new(Some(n))),
            per_ip: per_ip.clone(),
        };
        tracing::info!(
            listener = %listener.name,
            protocol = listener.security_protocol.name(),
            addr = %socket.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            "listening"
        );
        tasks.push(tokio::spawn(network::listener::accept_loop(
            socket,
            listener.clone(),
            tls,
            limits,
            sasl,
            ctx.clone(),
        )));
    }
    Ok((
        BrokerParts {
            lifecycle,
            cleaner,
            replicas,
            fetchers,
        },
        tasks,
    ))
}

/// Waits until the served image holds this broker's registration, hence every topic that existed when it
/// registered. The first reconcile deletes the logs of partitions the image does not name (topics deleted while
/// the broker was down), so it must never run on a broker-only node's partial image, however long following the
/// metadata log takes.
async fn wait_for_own_registration(cluster: &ClusterHandle, node_id: i32, epoch: i64) {
    let mut images = cluster.subscribe();
    loop {
        let reached = tokio::time::timeout(
            Duration::from_secs(10),
            images.wait_for(|i| i.broker(node_id).is_some_and(|b| b.epoch >= epoch)),
        )
        .await;
        match reached {
            Ok(_) => return,
            Err(_) => tracing::warn!(
                epoch,
                applied = cluster.image().last_applied_offset(),
                "still following the metadata log up to this broker's registration before opening partitions"
            ),
        }
    }
}

/// This broker as the controller records it: the advertised endpoint of every client listener.
fn registration(config: &BrokerConfig) -> BrokerRegistration {
    BrokerRegistration {
        broker_id: config.node_id,
        listeners: config
            .client_listeners()
            .filter_map(|l| config.advertised_for(&l.name))
            .map(|l| Endpoint {
                name: l.name,
                host: l.host,
                port: l.port,
                security_protocol: l.security_protocol,
            })
            .collect(),
        rack: config.raw.get("broker.rack").cloned(),
    }
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot install SIGTERM handler; waiting for Ctrl-C only");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// The TLS side of `listener` if it is an SSL (or SASL_SSL) listener; its stores are read now, so a bad keystore
/// stops the start with its own message.
fn tls_listener(
    config: &BrokerConfig,
    listener: &crate::config::Listener,
) -> anyhow::Result<Option<crate::tls::TlsListener>> {
    config
        .ssl
        .get(&listener.name)
        .map(|settings| {
            crate::tls::TlsListener::new(settings)
                .with_context(|| format!("setting up TLS for listener {}", listener.name))
        })
        .transpose()
}

/// Runs `work` off the async runtime every `every` (the first run one period after start).
/// `socket.send.buffer.bytes` / `socket.receive.buffer.bytes`, for every listener as in Kafka.
fn socket_buffers(config: &BrokerConfig) -> network::listener::SocketBuffers {
    network::listener::SocketBuffers {
        send: config.socket_send_buffer_bytes,
        receive: config.socket_receive_buffer_bytes,
    }
}

fn every_blocking(
    every: Duration,
    work: impl Fn() + Send + Sync + Clone + 'static,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        loop {
            tick.tick().await;
            let work = work.clone();
            let _ = tokio::task::spawn_blocking(work).await;
        }
    })
}

/// `producer.id.expiration.ms`: the dynamic value (this broker's, else the cluster default) over the static one.
fn producer_id_expiration_ms(
    image: &kraftwerk_controller::MetadataImage,
    node_id: i32,
    static_value: i64,
) -> i64 {
    use crate::image_ext::ImageExt;
    image
        .dynamic_broker_config(node_id, "producer.id.expiration.ms")
        .and_then(|v| v.trim().parse::<i64>().ok())
        .unwrap_or(static_value)
}
