//! ISR maintenance by partition leaders (Kafka's `Partition.maybeShrinkIsr` / `maybeExpandIsr` and the
//! `AlterPartitionManager`): a periodic check of every partition this broker leads asks the active controller
//! to drop followers that have not caught up within `replica.lag.time.max.ms` and to add back followers that
//! have reached the high watermark, and to mark a leader elected uncleanly as RECOVERED. The leader keeps
//! using the ISR of the image (plus the change in flight for
//! the high watermark) and applies the new ISR only when it arrives in a metadata image.

use std::sync::Arc;
use std::time::Duration;

use kraftwerk_controller::records::LEADER_RECOVERED;
use kraftwerk_controller::AlterPartitionRequest;

use crate::context::now_ms;
use crate::quorum::cluster::ClusterHandle;

use super::manager::ReplicaManager;
use super::partition::Partition;

/// How long to wait for the image to show an accepted change before allowing another one.
const APPLY_WAIT: Duration = Duration::from_secs(5);

/// Runs until the process stops. `broker_epoch` gives this broker's current registration epoch.
pub async fn run_isr_checks(
    node_id: i32,
    replicas: Arc<ReplicaManager>,
    cluster: ClusterHandle,
    broker_epoch: Arc<dyn Fn() -> i64 + Send + Sync>,
    lag_max: Duration,
) {
    let every = (lag_max / 4).clamp(Duration::from_millis(50), Duration::from_millis(500));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let lag_ms = i64::try_from(lag_max.as_millis()).unwrap_or(i64::MAX);
    loop {
        tick.tick().await;
        let image = cluster.image();
        let now = now_ms();
        for p in replicas.all() {
            let Some(change) = p.isr_change(now, lag_ms, |id| image.is_broker_active(id)) else {
                continue;
            };
            let request = AlterPartitionRequest {
                broker_id: node_id,
                broker_epoch: broker_epoch(),
                topic_id: p.topic_id,
                partition: p.index,
                leader_epoch: change.leader_epoch,
                partition_epoch: change.partition_epoch,
                new_isr: change.new_isr,
                // This leader's log is the partition's: it is recovered as soon as it leads.
                leader_recovery_state: LEADER_RECOVERED,
            };
            tokio::spawn(send(cluster.clone(), p, request));
        }
    }
}

async fn send(cluster: ClusterHandle, p: Arc<Partition>, request: AlterPartitionRequest) {
    tracing::info!(topic = %p.topic, partition = p.index, old_isr = ?p.role().isr, new_isr = ?request.new_isr,
        partition_epoch = request.partition_epoch, "asking the controller to change the ISR");
    let sent_epoch = request.partition_epoch;
    match cluster.alter_partition(request).await {
        Ok(state) => {
            // Wait (bounded) until the image carrying the change has been applied, so the next check does not
            // repeat it from the old ISR; then allow new changes whatever happened.
            let deadline = tokio::time::Instant::now() + APPLY_WAIT;
            while p.role().partition_epoch < state.partition_epoch
                && tokio::time::Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            p.clear_pending_isr_from(sent_epoch);
        }
        Err(e @ kraftwerk_controller::ControllerError::NewLeaderElected(_)) => {
            // The change completed a reassignment that moved the leadership away: the image will say so.
            tracing::info!(topic = %p.topic, partition = p.index, reason = %e, "ISR change made; leadership moved");
            p.clear_pending_isr_from(sent_epoch);
        }
        Err(e) => {
            // Refused, most often because the controller already has a newer leader or partition epoch than
            // this broker's image (the change was made from a stale state). As Kafka's leader does after
            // FENCED_LEADER_EPOCH or INVALID_UPDATE_VERSION, wait for the metadata that supersedes it (a newer
            // image clears the pending change) instead of asking again at the next check: with thousands of
            // partitions, immediate retries from a lagging image sent thousands of doomed requests a second,
            // which delayed heartbeats until brokers were fenced, which made the images lag further.
            tracing::warn!(topic = %p.topic, partition = p.index, error = %e, "ISR change refused");
            let sent_leader_epoch = p.role().leader_epoch;
            let deadline = tokio::time::Instant::now() + APPLY_WAIT;
            while tokio::time::Instant::now() < deadline {
                let role = p.role();
                if role.partition_epoch > sent_epoch || role.leader_epoch != sent_leader_epoch {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            p.clear_pending_isr_from(sent_epoch);
        }
    }
}
