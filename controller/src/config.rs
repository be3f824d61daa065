//! How a controller is set up.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::ControllerError;

/// One member of the controller quorum (Kafka's `controller.quorum.voters` entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoterAddr {
    /// The voter's `node.id`.
    pub id: i32,
    /// Host its controller listener is on.
    pub host: String,
    /// Port of its controller listener.
    pub port: u16,
}

/// Everything `start` needs.
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    /// This node's `node.id`. A node that is not one of `voters` starts as an observer: it votes in nothing
    /// until the quorum adds it (KIP-853 AddRaftVoter: a raft learner first, then a voter).
    pub node_id: i32,
    /// The quorum the metadata log starts from (`controller.quorum.voters`). Membership changes in the log
    /// (and snapshots) override it once they exist; every node, including one joining later, must be given
    /// the same list, since the changes in the log are applied on top of it. One voter means a
    /// self-contained combined-mode node.
    pub voters: Vec<VoterAddr>,
    /// The controller listener name this node's voters are reached on (the endpoint name recorded for the
    /// static voters in the membership).
    pub listener_name: String,
    /// Holds `__cluster_metadata-0/`, `quorum-state` and `meta.properties`.
    pub metadata_dir: PathBuf,
    /// The cluster id; a metadata dir formatted for another cluster is refused.
    pub cluster_id: String,
    /// Partition count for topics created with -1 (`num.partitions`).
    pub default_num_partitions: i32,
    /// Replication factor for topics created with -1 (`default.replication.factor`).
    pub default_replication_factor: i16,
    /// Raft tick; elections time out after 10-20 ticks, heartbeats every 2.
    pub tick: Duration,
    /// `metadata.log.max.record.bytes.between.snapshots`: a snapshot of the image is taken once this many
    /// bytes of records were applied since the last one.
    pub snapshot_bytes: u64,
    /// `unclean.leader.election.enable` of this node's configuration: whether a partition whose ISR is all
    /// gone may elect a replica outside it, for topics (and dynamic broker configs) that do not say.
    pub unclean_leader_election_enable: bool,
}

impl ControllerConfig {
    pub(crate) fn validate(&self) -> Result<(), ControllerError> {
        let bad = |msg: String| Err(ControllerError::Configuration(msg));
        if self.node_id < 0 {
            return bad(format!("node id {} is negative", self.node_id));
        }
        let mut ids = HashSet::new();
        for voter in &self.voters {
            if voter.id < 0 || !ids.insert(voter.id) {
                return bad(format!("voter id {} is negative or listed twice", voter.id));
            }
        }
        if ids.is_empty() {
            return bad("the quorum has no voters".into());
        }
        if self.cluster_id.is_empty() {
            return bad("cluster id is empty".into());
        }
        if self.default_num_partitions <= 0 || self.default_replication_factor <= 0 {
            return bad("default partition count and replication factor must be positive".into());
        }
        if self.tick.is_zero() {
            return bad("tick must be longer than zero".into());
        }
        Ok(())
    }
}

/// raft-rs reserves id 0, Kafka node ids start at 0: raft id = node id + 1.
pub(crate) fn raft_id(node_id: i32) -> u64 {
    u64::try_from(node_id).map_or(0, |id| id + 1)
}

/// The Kafka node id of a raft id (`None` for raft's "nobody", 0).
pub(crate) fn node_id(raft_id: u64) -> Option<i32> {
    raft_id.checked_sub(1).and_then(|id| i32::try_from(id).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ControllerConfig {
        ControllerConfig {
            node_id: 0,
            voters: vec![VoterAddr {
                id: 0,
                host: "localhost".into(),
                port: 9093,
            }],
            listener_name: "CONTROLLER".into(),
            metadata_dir: PathBuf::from("/tmp/x"),
            cluster_id: "c".into(),
            default_num_partitions: 1,
            default_replication_factor: 1,
            tick: Duration::from_millis(100),
            snapshot_bytes: 20 << 20,
            unclean_leader_election_enable: false,
        }
    }

    #[test]
    fn validation() {
        config().validate().unwrap();
        let mut c = config();
        c.node_id = 1;
        c.validate().unwrap(); // an observer
        c.voters.clear();
        assert!(c.validate().is_err());
        let mut c = config();
        c.voters.push(c.voters[0].clone());
        assert!(c.validate().is_err());
        let mut c = config();
        c.tick = Duration::ZERO;
        assert!(c.validate().is_err());
        let mut c = config();
        c.cluster_id.clear();
        assert!(c.validate().is_err());
    }

    #[test]
    fn id_mapping() {
        assert_eq!(raft_id(0), 1);
        assert_eq!(node_id(1), Some(0));
        assert_eq!(node_id(0), None);
        assert_eq!(node_id(raft_id(i32::MAX)), Some(i32::MAX));
    }
}
