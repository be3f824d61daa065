//! ISR maintenance by partition leaders (Kafka's `Partition.maybeShrinkIsr` / `maybeExpandIsr` and the
//! `AlterPartitionManager`): a periodic check of every partition this broker leads asks the active controller
//! to drop followers that have not caught up within `replica.lag.time.max.ms` and to add back followers that
//! have reached the high watermark, and to mark a leader elected uncleanly as RECOVERED. A follower's fetch that
//! shows it caught up outside the ISR asks for a check at once (Kafka expands the ISR on that fetch), so a
//! restarted broker is back in the ISR without waiting for the next tick. The leader keeps
//! using the ISR of the image (plus the change in flight for the high watermark) and applies the new ISR only
//! when it arrives in a metadata image.
//!
//! Every change one check finds goes to the controller in one AlterPartition request, with at most one such
//! request in flight, as Kafka's `AlterPartitionManager` sends them: when a broker comes back, the partitions
//! it follows all want it back in their ISR at about the same time, and one request and one commit per
//! partition (thousands of them) kept the controller channel so busy that heartbeats were late and brokers
//! were fenced. A partition's change stays pending until an image supersedes it or it expires
//! ([`PENDING_ISR_EXPIRY_MS`]), so no partition is asked for twice meanwhile.

use std::sync::Arc;
use std::time::Duration;

use kraftwerk_controller::records::LEADER_RECOVERED;
use kraftwerk_controller::{AlterPartitionRequest, ControllerError, PartitionState};

use crate::context::now_ms;
use crate::quorum::cluster::ClusterHandle;

use super::manager::ReplicaManager;
use super::partition::Partition;
#[cfg(doc)]
use super::partition::PENDING_ISR_EXPIRY_MS;

/// Shortest time between two checks a caught-up follower asked for ([`ReplicaManager::want_isr_check`]); the
/// shortest tick is the same.
const MIN_CHECK_GAP: Duration = Duration::from_millis(50);

/// Most partitions in one AlterPartition request; more wait for the next check.
const MAX_BATCH: usize = 10_000;

/// Runs until the process stops. `broker_epoch` gives this broker's current registration epoch.
pub async fn run_isr_checks(
    node_id: i32,
    replicas: Arc<ReplicaManager>,
    cluster: ClusterHandle,
    broker_epoch: Arc<dyn Fn() -> i64 + Send + Sync>,
    lag_max: Duration,
) {
    let every = (lag_max / 4).clamp(MIN_CHECK_GAP, Duration::from_millis(500));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let lag_ms = i64::try_from(lag_max.as_millis()).unwrap_or(i64::MAX);
    let mut last_check = tokio::time::Instant::now();
    loop {
        // A follower that caught up joins at once, not at the next tick (up to 500 ms later). Asked-for checks
        // are at least MIN_CHECK_GAP apart: a follower the controller will not take (a fenced broker still
        // fetching) asks on every fetch, and each check walks every partition.
        tokio::select! {
            _ = tick.tick() => {}
            () = replicas.isr_check_wanted() => {
                tokio::time::sleep_until(last_check + MIN_CHECK_GAP).await;
            }
        }
        last_check = tokio::time::Instant::now();
        let image = cluster.image();
        let now = now_ms();
        let epoch = broker_epoch();
        let mut batch: Vec<(Arc<Partition>, AlterPartitionRequest)> = Vec::new();
        for p in replicas.all() {
            if batch.len() >= MAX_BATCH {
                break;
            }
            let Some(change) = p.isr_change(now, lag_ms, |id| image.is_broker_active(id)) else {
                continue;
            };
            let request = AlterPartitionRequest {
                broker_id: node_id,
                broker_epoch: epoch,
                topic_id: p.topic_id,
                partition: p.index,
                leader_epoch: change.leader_epoch,
                partition_epoch: change.partition_epoch,
                new_isr: change.new_isr,
                // This leader's log is the partition's: it is recovered as soon as it leads.
                leader_recovery_state: LEADER_RECOVERED,
            };
            batch.push((p, request));
        }
        drop(image);
        if !batch.is_empty() {
            // Awaited here: the next check starts when this request is answered (one in flight).
            send(&cluster, batch).await;
        }
    }
}

async fn send(cluster: &ClusterHandle, batch: Vec<(Arc<Partition>, AlterPartitionRequest)>) {
    for (p, request) in &batch {
        tracing::debug!(topic = %p.topic, partition = p.index, new_isr = ?request.new_isr,
            partition_epoch = request.partition_epoch, "asking the controller to change the ISR");
    }
    let count = batch.len();
    tracing::info!(partitions = count, "sending ISR changes to the controller");
    let (partitions, requests): (Vec<Arc<Partition>>, Vec<AlterPartitionRequest>) =
        batch.into_iter().unzip();
    // Each request's partition epoch, for the outcome (the requests themselves go to the controller).
    let sent_epochs: Vec<i32> = requests.iter().map(|r| r.partition_epoch).collect();
    let results = cluster.alter_partitions(requests).await;
    let mut accepted = 0usize;
    let mut refused = 0usize;
    let mut first_refusal = None;
    for ((p, sent_epoch), result) in partitions.iter().zip(sent_epochs).zip(results) {
        match outcome(p, sent_epoch, result) {
            Outcome::Accepted => accepted += 1,
            Outcome::Refused(why) => {
                refused += 1;
                first_refusal.get_or_insert(why);
            }
        }
    }
    if refused > 0 {
        tracing::warn!(
            partitions = count,
            accepted,
            refused,
            first = first_refusal.as_deref().unwrap_or(""),
            "ISR changes refused by the controller; each waits for newer metadata"
        );
    } else {
        tracing::debug!(partitions = count, "ISR changes accepted");
    }
}

enum Outcome {
    Accepted,
    /// Why, naming the partition.
    Refused(String),
}

fn outcome(
    p: &Partition,
    sent_epoch: i32,
    result: Result<PartitionState, ControllerError>,
) -> Outcome {
    match result {
        Ok(state) => {
            tracing::info!(topic = %p.topic, partition = p.index, isr = ?state.isr,
                partition_epoch = state.partition_epoch, "AlterPartition accepted");
            // Nothing was written (the ISR already was this one): no image will clear the pending change.
            if state.partition_epoch == sent_epoch {
                p.clear_pending_isr_from(sent_epoch);
            }
            Outcome::Accepted
        }
        Err(e @ ControllerError::NewLeaderElected(_)) => {
            // The change completed a reassignment that moved the leadership away: the image will say so.
            tracing::info!(topic = %p.topic, partition = p.index, reason = %e, "ISR change made; leadership moved");
            p.clear_pending_isr_from(sent_epoch);
            Outcome::Accepted
        }
        Err(e) => {
            // Refused, most often because the controller already has a newer leader or partition epoch than
            // this broker's image (the change was made from a stale state). As Kafka's leader does after
            // FENCED_LEADER_EPOCH or INVALID_UPDATE_VERSION, the change stays pending until the metadata that
            // supersedes it arrives (or it expires) instead of being asked again at the next check.
            tracing::debug!(topic = %p.topic, partition = p.index, error = %e, "ISR change refused");
            Outcome::Refused(format!("{}-{}: {e}", p.topic, p.index))
        }
    }
}
