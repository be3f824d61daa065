//! Fetch from the closest replica (KIP-392): which replica a consumer should read a partition from.
//!
//! A consumer that names its rack (`client.rack`, sent as the Fetch v11+ `rack_id`) fetches from the leader
//! first; when the broker runs a replica selector (`replica.selector.class`) the leader may answer with a
//! *preferred read replica* instead of records, and the consumer then reads from that follower, which serves
//! consumers up to its own high watermark. Kafka ships one useful selector, `RackAwareReplicaSelector`: a
//! replica in the client's rack, the leader if it is one of them, else the most caught-up of them. Pure logic,
//! no I/O: the fetch handler gathers the views, this picks.

use std::fmt;

/// Kafka's class name of the rack-aware selector, the value `replica.selector.class` accepts.
pub const RACK_AWARE_SELECTOR: &str = "org.apache.kafka.common.replica.RackAwareReplicaSelector";
/// Kafka's selector that always answers the leader: accepted, and the same as configuring none.
pub const LEADER_SELECTOR: &str = "org.apache.kafka.common.replica.LeaderSelector";

/// `replica.selector.class`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReplicaSelector {
    /// No selector (Kafka's default) or `LeaderSelector`: consumers always read from the leader.
    #[default]
    Leader,
    /// `RackAwareReplicaSelector`.
    RackAware,
}

/// A `replica.selector.class` naming a class Kraftwerk does not have: Kafka loads arbitrary Java classes
/// here, and running a config that names one we cannot honour would silently read from the leader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownSelector(pub String);

impl fmt::Display for UnknownSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "replica selector class {} is not available; Kraftwerk has {RACK_AWARE_SELECTOR} and {LEADER_SELECTOR}",
            self.0
        )
    }
}

impl ReplicaSelector {
    /// Parses the value of `replica.selector.class` (empty means none, as in Kafka).
    pub fn parse(value: &str) -> Result<Self, UnknownSelector> {
        match value.trim() {
            "" | LEADER_SELECTOR => Ok(ReplicaSelector::Leader),
            RACK_AWARE_SELECTOR => Ok(ReplicaSelector::RackAware),
            other => Err(UnknownSelector(other.to_string())),
        }
    }
}

/// What the leader knows of one replica that could serve a read (Kafka's `ReplicaView`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaView {
    pub broker_id: i32,
    /// The replica's broker rack (`broker.rack`), if it has one.
    pub rack: Option<String>,
    /// Its log end offset as the leader last saw it.
    pub log_end_offset: i64,
    /// Milliseconds since it was last caught up with the leader (0 for the leader itself).
    pub since_caught_up_ms: i64,
}

/// The replica a consumer in `client_rack` should read from, among `replicas` (which include the leader and
/// only replicas that hold the fetch offset). `None` means "read from the leader": no selector, no rack, or no
/// replica in that rack, or the leader is in it.
pub fn preferred_read_replica(
    selector: ReplicaSelector,
    client_rack: &str,
    leader_id: i32,
    replicas: &[ReplicaView],
) -> Option<i32> {
    if selector != ReplicaSelector::RackAware || client_rack.is_empty() {
        return None;
    }
    let same_rack = || {
        replicas
            .iter()
            .filter(|r| r.rack.as_deref() == Some(client_rack))
    };
    if same_rack().any(|r| r.broker_id == leader_id) {
        return None;
    }
    // Most caught up: the largest log end offset, then the most recently caught up (Kafka's comparator).
    same_rack()
        .max_by(|a, b| {
            a.log_end_offset
                .cmp(&b.log_end_offset)
                .then(b.since_caught_up_ms.cmp(&a.since_caught_up_ms))
        })
        .map(|r| r.broker_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(id: i32, rack: &str, leo: i64, since: i64) -> ReplicaView {
        ReplicaView {
            broker_id: id,
            rack: (!rack.is_empty()).then(|| rack.to_string()),
            log_end_offset: leo,
            since_caught_up_ms: since,
        }
    }

    #[test]
    fn parses_kafkas_class_names_and_refuses_others() {
        assert_eq!(ReplicaSelector::parse(""), Ok(ReplicaSelector::Leader));
        assert_eq!(
            ReplicaSelector::parse(LEADER_SELECTOR),
            Ok(ReplicaSelector::Leader)
        );
        assert_eq!(
            ReplicaSelector::parse(RACK_AWARE_SELECTOR),
            Ok(ReplicaSelector::RackAware)
        );
        let err = ReplicaSelector::parse("com.example.MySelector").unwrap_err();
        assert!(err.to_string().contains("com.example.MySelector"));
    }

    #[test]
    fn rack_aware_picks_a_replica_in_the_clients_rack() {
        let replicas = [
            view(1, "a", 10, 0),
            view(2, "b", 10, 5),
            view(3, "c", 10, 5),
        ];
        let pick = |rack| preferred_read_replica(ReplicaSelector::RackAware, rack, 1, &replicas);
        assert_eq!(pick("b"), Some(2));
        assert_eq!(pick("c"), Some(3));
        assert_eq!(pick("a"), None, "the leader is in the rack: read from it");
        assert_eq!(pick("z"), None, "nobody in the rack: the leader");
        assert_eq!(pick(""), None, "no client rack: the leader");
    }

    #[test]
    fn the_most_caught_up_replica_of_the_rack_wins() {
        let replicas = [
            view(1, "a", 10, 0),
            view(2, "b", 8, 0),
            view(3, "b", 9, 100),
            view(4, "b", 9, 50),
        ];
        assert_eq!(
            preferred_read_replica(ReplicaSelector::RackAware, "b", 1, &replicas),
            Some(4)
        );
    }

    #[test]
    fn no_selector_always_reads_from_the_leader() {
        let replicas = [view(1, "a", 10, 0), view(2, "b", 10, 0)];
        assert_eq!(
            preferred_read_replica(ReplicaSelector::Leader, "b", 1, &replicas),
            None
        );
    }
}
