//! Start-up and shutdown of one node: check the log directories are formatted, start the controller (combined
//! mode), register this broker, open the hosted partitions, bind the listeners, serve until SIGTERM/SIGINT.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use kraftwerk_controller::records::Endpoint;
use kraftwerk_controller::{BrokerRegistration, ControllerConfig, VoterAddr};

use crate::config::{BrokerConfig, Role};
use crate::context::{now_ms, BrokerContext};
use crate::group_service::GroupService;
use crate::producer_ids::ProducerIdManager;
use crate::replica::{log_config, ReplicaManager};
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
    if config.process_roles != [Role::Broker, Role::Controller]
        && config.process_roles != [Role::Controller, Role::Broker]
    {
        bail!(
            "process.roles={:?}: this release runs combined nodes (process.roles=broker,controller) only",
            config.process_roles
        );
    }
    let dirs = all_dirs(&config);
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

    let controller = kraftwerk_controller::start(
        ControllerConfig {
            node_id: config.node_id,
            voters: config
                .voters
                .iter()
                .map(|v| VoterAddr {
                    id: v.id,
                    host: v.host.clone(),
                    port: v.port,
                })
                .collect(),
            metadata_dir: config.metadata_dir(),
            cluster_id: cluster_id.clone(),
            default_num_partitions: config.num_partitions,
            default_replication_factor: config.default_replication_factor,
            tick: Duration::from_millis(100),
        },
        Arc::new(kraftwerk_controller::NoPeers),
    )
    .await
    .context("starting the controller")?;
    let handle = controller.handle();

    handle
        .register_broker(registration(&config))
        .await
        .context("registering this broker with the controller")?;

    let replicas = Arc::new(
        ReplicaManager::new(
            config.node_id,
            config.log_dirs.clone(),
            log_config::broker_defaults(&config),
        )
        .context("scanning log directories")?,
    );
    replicas.reconcile(&handle.image());

    let groups = GroupService::start(&config, handle.clone(), replicas.clone())
        .await
        .context("starting the group coordinator")?;

    let ctx = Arc::new(BrokerContext {
        config: config.clone(),
        node_id: config.node_id,
        cluster_id,
        controller: handle.clone(),
        replicas: replicas.clone(),
        apis: handlers::supported_apis(),
        producer_ids: ProducerIdManager::new(config.node_id),
        groups,
    });

    // Follow metadata changes: open, reconfigure and delete partitions as the image changes.
    let mut images = handle.subscribe();
    let reconciler = {
        let replicas = replicas.clone();
        tokio::spawn(async move {
            while images.changed().await.is_ok() {
                let image = images.borrow_and_update().clone();
                replicas.reconcile(&image);
            }
        })
    };
    let retention = {
        let replicas = replicas.clone();
        let every = Duration::from_millis(config.log_retention_check_interval_ms.max(100));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                let replicas = replicas.clone();
                let _ =
                    tokio::task::spawn_blocking(move || replicas.enforce_retention(now_ms())).await;
            }
        })
    };

    let mut accept_tasks = Vec::new();
    for listener in config.client_listeners() {
        let socket = network::listener::bind(listener).await.with_context(|| {
            format!(
                "binding listener {}://{}",
                listener.name,
                listener.bind_addr()
            )
        })?;
        tracing::info!(
            listener = %listener.name,
            addr = %socket.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            "listening"
        );
        accept_tasks.push(tokio::spawn(network::listener::accept_loop(
            socket,
            listener.clone(),
            ctx.clone(),
        )));
    }
    tracing::info!(
        node_id = config.node_id,
        startup_ms = started.elapsed().as_millis() as u64,
        "kraftwerk started"
    );

    wait_for_signal().await;
    tracing::info!("shutting down");
    for t in &accept_tasks {
        t.abort();
    }
    reconciler.abort();
    retention.abort();
    replicas.shutdown();
    controller.shutdown().await;
    tracing::info!("shutdown complete");
    Ok(())
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
