//! A broker's life as the active controller sees it: register, heartbeat, controlled shutdown.
//!
//! After Kafka's `BrokerLifecycleManager`: registration is retried until an active controller accepts it
//! (only a refusal, such as another cluster id, stops the start); heartbeats every
//! `broker.heartbeat.interval.ms` carry the offset of the metadata the broker has applied, which is how the
//! controller knows to unfence it; a heartbeat answered BROKER_ID_NOT_REGISTERED (the controller lost our
//! registration, or we were replaced) registers again. SIGTERM sends a controlled-shutdown heartbeat, so the
//! controller fences us and moves our leaderships before we stop serving.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tracing::{info, warn};

use kraftwerk_controller::rpc::ControllerRequest;
use kraftwerk_controller::{BrokerRegistration, ControllerError};

use super::cluster::ClusterHandle;

pub struct BrokerLifecycle {
    cluster: ClusterHandle,
    registration: BrokerRegistration,
    epoch: AtomicI64,
}

impl BrokerLifecycle {
    /// Registers, retrying until an active controller accepts. An `Internal` error (a controller refused this
    /// node's hello: wrong cluster id, disagreeing voter lists) is returned at once.
    pub async fn register(
        cluster: ClusterHandle,
        registration: BrokerRegistration,
    ) -> Result<Arc<Self>, ControllerError> {
        let epoch = register_until_accepted(&cluster, &registration).await?;
        Ok(Arc::new(Self {
            cluster,
            registration,
            epoch: AtomicI64::new(epoch),
        }))
    }

    pub fn epoch(&self) -> i64 {
        self.epoch.load(Ordering::Relaxed)
    }

    /// Heartbeats until the process stops.
    pub async fn run_heartbeats(self: Arc<Self>, interval: Duration) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut was_fenced = None;
        loop {
            tick.tick().await;
            let request = ControllerRequest::BrokerHeartbeat {
                broker_id: self.registration.broker_id,
                broker_epoch: self.epoch(),
                metadata_offset: self.cluster.image().last_applied_offset(),
                shutting_down: false,
            };
            match self
                .cluster
                .heartbeat(request, interval.max(Duration::from_millis(500)))
                .await
            {
                Ok(reply) => {
                    if was_fenced != Some(reply.fenced) {
                        info!(fenced = reply.fenced, "broker heartbeat accepted");
                        was_fenced = Some(reply.fenced);
                    }
                }
                Err(ControllerError::BrokerIdNotRegistered(why)) => {
                    warn!("the controller does not know this broker ({why}); registering again");
                    match register_until_accepted(&self.cluster, &self.registration).await {
                        Ok(epoch) => self.epoch.store(epoch, Ordering::Relaxed),
                        Err(e) => warn!(error = %e, "re-registration failed"),
                    }
                }
                Err(e) => tracing::debug!(error = %e, "heartbeat failed; will retry"),
            }
        }
    }

    /// Asks the active controller to fence this broker (moving its leaderships) before it stops. Bounded by
    /// `deadline`: a broker with no reachable controller still stops.
    pub async fn controlled_shutdown(&self, deadline: Duration) {
        let request = ControllerRequest::BrokerHeartbeat {
            broker_id: self.registration.broker_id,
            broker_epoch: self.epoch(),
            metadata_offset: self.cluster.image().last_applied_offset(),
            shutting_down: true,
        };
        match self.cluster.heartbeat(request, deadline).await {
            Ok(_) => info!("controlled shutdown acknowledged by the active controller"),
            Err(e) => warn!(error = %e, "controlled shutdown not acknowledged; stopping anyway"),
        }
    }
}

async fn register_until_accepted(
    cluster: &ClusterHandle,
    registration: &BrokerRegistration,
) -> Result<i64, ControllerError> {
    loop {
        match cluster.register_broker(registration.clone()).await {
            Ok(epoch) => {
                info!(epoch, "registered with the active controller");
                return Ok(epoch);
            }
            // Each call already retried for its whole deadline.
            Err(ControllerError::NotController) => {
                warn!("still waiting for an active controller to register with");
            }
            Err(e @ ControllerError::Internal(_)) => return Err(e),
            Err(e) => {
                warn!(error = %e, "registration refused; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}
