//! Dynamic voters over the in-memory network: a fourth controller joins as a learner and is promoted, a voter
//! (the leader) is removed, and after a restart of every node with the original static configuration the
//! voter set is the one the log says, with and without the log trimmed behind snapshots.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use super::single_voter::{broker, config};
use super::three_voters::{leader_of, wait_for, Router};
use crate::api::*;
use crate::error::ControllerError;
use crate::membership::{Member, KRAFT_VERSION_RANGE};
use crate::records::kafka_format::VoterEndpoint;
use crate::{start, Controller, ControllerHandle};

const TIMEOUT: Duration = Duration::from_secs(10);

fn member(id: i32) -> Member {
    Member {
        id,
        directory_id: Uuid::from_u128(0xd1 + id as u128),
        endpoints: vec![VoterEndpoint {
            name: "CONTROLLER".into(),
            host: "localhost".into(),
            port: 9000 + id as u16,
        }],
        kraft_version: KRAFT_VERSION_RANGE,
    }
}

/// One node's view of the in-memory network: like the TCP transport, it only reaches the members of the
/// membership its node last applied.
struct Link {
    router: Arc<Router>,
    members: std::sync::Mutex<Option<crate::membership::Membership>>,
}

impl crate::transport::Transport for Link {
    fn send(&self, to: i32, message: crate::transport::RaftMessage) {
        let reachable = self
            .members
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .is_none_or(|m| m.is_member(to));
        if reachable {
            self.router.send(to, message);
        }
    }

    fn set_members(&self, members: &crate::membership::Membership) {
        *self.members.lock().unwrap_or_else(|p| p.into_inner()) = Some(members.clone());
    }
}

/// `kafka-features upgrade --feature kraft.version=1`.
async fn upgrade_kraft_version(leader: &ControllerHandle) {
    let update = crate::FeatureUpdate {
        name: crate::KRAFT_VERSION.into(),
        level: 1,
        upgrade_type: crate::UPGRADE,
    };
    leader
        .update_features(leader.leader_id().unwrap_or(-1), vec![update], false)
        .await
        .unwrap();
    assert_eq!(crate::kraft_version(&leader.image()), 1);
}

struct Cluster {
    dirs: HashMap<i32, tempfile::TempDir>,
    router: Arc<Router>,
    controllers: HashMap<i32, Controller>,
    snapshot_bytes: u64,
    /// The raft tick (the election timeout is 10 to 20 ticks).
    tick: Duration,
}

impl Cluster {
    /// Controllers 1-3 started as the voters.
    async fn three_voters(snapshot_bytes: u64, tick: Duration) -> Self {
        let mut cluster = Cluster {
            dirs: HashMap::new(),
            router: Arc::new(Router::default()),
            controllers: HashMap::new(),
            snapshot_bytes,
            tick,
        };
        for id in 1..=3 {
            cluster.start_node(id).await;
        }
        cluster
    }

    async fn start_node(&mut self, id: i32) {
        let dir = self
            .dirs
            .entry(id)
            .or_insert_with(|| tempfile::tempdir().unwrap());
        // Every node, the joining one included, is configured with the quorum the log started from.
        let mut cfg = config(dir.path(), id, &[1, 2, 3]);
        cfg.snapshot_bytes = self.snapshot_bytes;
        cfg.tick = self.tick;
        let link = Arc::new(Link {
            router: self.router.clone(),
            members: std::sync::Mutex::new(None),
        });
        let controller = start(cfg, link).await.unwrap();
        self.router.nodes().insert(id, controller.handle());
        self.controllers.insert(id, controller);
    }

    async fn stop_node(&mut self, id: i32) {
        self.router.nodes().remove(&id);
        if let Some(c) = self.controllers.remove(&id) {
            c.shutdown().await;
        }
    }

    fn handles(&self) -> HashMap<i32, ControllerHandle> {
        self.controllers
            .iter()
            .map(|(&id, c)| (id, c.handle()))
            .collect()
    }

    async fn leader(&self) -> ControllerHandle {
        let handles = self.handles();
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            let leader = wait_for("a leader", || leader_of(&handles)).await;
            // A leader accepts membership changes once it has committed in its term; a write waits for that.
            // Under load an election can move leadership between the two steps: look again.
            match leader.register_broker(broker(1)).await {
                Ok(_) => return leader,
                Err(ControllerError::NotController) if tokio::time::Instant::now() < deadline => {}
                Err(e) => panic!("registering a broker with the leader: {e:?}"),
            }
        }
    }

    /// The leader, once the quorum is at kraft.version 1 (voters can only change from there, as in Kafka).
    async fn upgraded_leader(&self) -> ControllerHandle {
        let leader = self.leader().await;
        upgrade_kraft_version(&leader).await;
        leader
    }

    async fn voters_everywhere(&self, ids: &[i32], expected: &[i32]) {
        let handles = self.handles();
        for id in ids {
            let h = &handles[id];
            wait_for(&format!("voters {expected:?} on node {id}"), || {
                (h.membership().voter_ids() == expected).then_some(())
            })
            .await;
        }
    }
}

async fn add_remove_restart(snapshot_bytes: u64) {
    let mut cluster = Cluster::three_voters(snapshot_bytes, Duration::from_millis(10)).await;
    let leader = cluster.upgraded_leader().await;
    leader.register_broker(broker(1)).await.unwrap();
    for i in 0..20 {
        let r = leader
            .create_topics(
                vec![CreateTopicSpec::new(format!("before-{i}"), 1, 1)],
                false,
            )
            .await;
        assert!(r[0].result.is_ok(), "{r:?}");
    }

    // Node 4 starts as an observer: not a voter, so it never campaigns.
    cluster.start_node(4).await;
    assert!(!cluster.handles()[&4].membership().is_member(4));
    leader.add_voter(member(4), TIMEOUT, true).await.unwrap();
    // Adding it again is refused, as Kafka does.
    assert!(matches!(
        leader.add_voter(member(4), TIMEOUT, true).await,
        Err(ControllerError::DuplicateVoter(_))
    ));
    cluster
        .voters_everywhere(&[1, 2, 3, 4], &[1, 2, 3, 4])
        .await;
    let on_four = cluster.handles()[&4].clone();
    assert_eq!(on_four.membership().voter(4), Some(&member(4)));
    wait_for("the old topics on node 4", || {
        on_four.image().topic("before-19").map(|_| ())
    })
    .await;

    // Removing an unknown voter, or with the wrong directory id, is VOTER_NOT_FOUND.
    let leader = cluster.leader().await;
    assert!(matches!(
        leader.remove_voter(9, Uuid::nil(), TIMEOUT).await,
        Err(ControllerError::VoterNotFound(_))
    ));
    assert!(matches!(
        leader.remove_voter(4, Uuid::from_u128(1), TIMEOUT).await,
        Err(ControllerError::VoterNotFound(_))
    ));

    // Remove the leader itself: it hands leadership over and answers NOT_CONTROLLER; the new leader removes it.
    let removed = leader.leader_id().unwrap();
    assert_eq!(
        leader.remove_voter(removed, Uuid::nil(), TIMEOUT).await,
        Err(ControllerError::NotController)
    );
    let handles = cluster.handles();
    let new_leader = wait_for("leadership to move", || {
        leader_of(&handles).filter(|h| h.leader_id() != Some(removed))
    })
    .await;
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        match new_leader.remove_voter(removed, Uuid::nil(), TIMEOUT).await {
            Ok(()) => break,
            // The new leader has not committed in its term yet.
            Err(ControllerError::RequestTimedOut(_)) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            other => panic!("removing {removed} through the new leader: {other:?}"),
        }
    }
    let mut remaining: Vec<i32> = (1..=4).filter(|&id| id != removed).collect();
    remaining.sort_unstable();
    cluster.voters_everywhere(&remaining, &remaining).await;
    cluster.stop_node(removed).await;
    let leader = cluster.leader().await;
    assert_ne!(leader.leader_id(), Some(removed));
    let r = leader
        .create_topics(vec![CreateTopicSpec::new("after-change", 1, 1)], false)
        .await;
    assert!(r[0].result.is_ok(), "{r:?}");
    for id in &remaining {
        let h = cluster.handles()[id].clone();
        wait_for("the new topic on every remaining voter", || {
            h.image().topic("after-change").map(|_| ())
        })
        .await;
    }

    // Restart every remaining node with the original static configuration: the log decides the voters.
    for id in remaining.clone() {
        cluster.stop_node(id).await;
    }
    for id in remaining.clone() {
        cluster.start_node(id).await;
    }
    cluster.voters_everywhere(&remaining, &remaining).await;
    let leader = cluster.leader().await;
    assert!(remaining.contains(&leader.leader_id().unwrap()));
    assert!(leader.image().topic("after-change").is_some());
    assert!(leader.image().topic("before-0").is_some());
    // The quorum of three works without the removed node: one more stop still leaves a majority.
    let r = leader
        .create_topics(vec![CreateTopicSpec::new("after-restart", 1, 1)], false)
        .await;
    assert!(r[0].result.is_ok(), "{r:?}");
    let info = leader.describe_quorum().await.unwrap();
    assert_eq!(
        info.voters.iter().map(|v| v.node_id).collect::<Vec<_>>(),
        remaining
    );
    for id in remaining.clone() {
        cluster.stop_node(id).await;
    }
    if snapshot_bytes < 1000 {
        // The restart above really had to find the membership with the snapshots: sidecars carry it.
        let dir = cluster.dirs[&remaining[0]]
            .path()
            .join("__cluster_metadata-0");
        let with_membership = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".raft"))
            .filter(|e| {
                std::fs::read_to_string(e.path())
                    .unwrap()
                    .contains("membership=")
            })
            .count();
        assert!(
            with_membership > 0,
            "no snapshot sidecar records the membership"
        );
    }
}

/// A controller that never catches up (nobody runs it) is not promoted: the addition times out, it stays a
/// learner, the voters are unchanged, and it can be removed. UpdateRaftVoter replaces a voter's endpoints on
/// every node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_voter_that_does_not_catch_up_is_not_promoted_and_endpoints_can_be_updated() {
    let mut cluster = Cluster::three_voters(20 << 20, Duration::from_millis(10)).await;
    let leader = cluster.upgraded_leader().await;
    let absent = member(7);
    assert!(matches!(
        leader
            .add_voter(absent.clone(), Duration::from_millis(500), true)
            .await,
        Err(ControllerError::RequestTimedOut(_))
    ));
    cluster.voters_everywhere(&[1, 2, 3], &[1, 2, 3]).await;
    let handles = cluster.handles();
    for h in handles.values() {
        wait_for("the learner everywhere", || {
            h.membership().learner(7).map(|_| ())
        })
        .await;
    }
    // Writes still commit: a learner does not count towards the quorum.
    leader.register_broker(broker(2)).await.unwrap();
    leader
        .remove_voter(7, absent.directory_id, TIMEOUT)
        .await
        .unwrap();
    for h in handles.values() {
        wait_for("the learner gone", || {
            h.membership().learner(7).is_none().then_some(())
        })
        .await;
    }

    let mut moved = member(2);
    moved.directory_id = Uuid::nil();
    moved.endpoints[0].port = 19_002;
    leader.update_voter(moved.clone(), TIMEOUT).await.unwrap();
    for h in handles.values() {
        wait_for("the new endpoint everywhere", || {
            (h.membership().voter(2).map(|v| v.endpoints[0].port) == Some(19_002)).then_some(())
        })
        .await;
    }
    cluster.voters_everywhere(&[1, 2, 3], &[1, 2, 3]).await;
    assert!(matches!(
        leader.update_voter(member(9), TIMEOUT).await,
        Err(ControllerError::VoterNotFound(_))
    ));
    for id in 1..=3 {
        cluster.stop_node(id).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_and_remove_voters_survive_restart() {
    add_remove_restart(20 << 20).await;
}

/// Snapshots every few entries: the joining node may be sent a snapshot, and the restart finds the membership
/// in the snapshot sidecars rather than in the (trimmed) log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_and_remove_voters_survive_restart_with_snapshots() {
    add_remove_restart(300).await;
}

/// The only voter cannot be removed (INVALID_REQUEST), and is not asked to hand over to nobody.
#[tokio::test]
async fn the_only_voter_cannot_be_removed() {
    let dir = tempfile::tempdir().unwrap();
    let controller = start(config(dir.path(), 1, &[1]), Arc::new(crate::NoPeers))
        .await
        .unwrap();
    let handle = controller.handle();
    handle.register_broker(broker(1)).await.unwrap();
    upgrade_kraft_version(&handle).await;
    assert!(matches!(
        handle.remove_voter(1, Uuid::nil(), TIMEOUT).await,
        Err(ControllerError::InvalidRequest(_))
    ));
    assert!(handle.is_leader());
    assert_eq!(handle.membership().voter_ids(), vec![1]);
    controller.shutdown().await;
}

/// A quorum started from static voters is at kraft.version 0: AddRaftVoter and RemoveRaftVoter are
/// UNSUPPORTED_VERSION with Kafka's message (before the voter is even looked up), UpdateRaftVoter is answered
/// when the voter's range includes 0. After `kraft.version=1` (kept across a restart) they are served.
#[tokio::test]
async fn voter_changes_need_kraft_version_1() {
    let dir = tempfile::tempdir().unwrap();
    let controller = start(config(dir.path(), 1, &[1]), Arc::new(crate::NoPeers))
        .await
        .unwrap();
    let handle = controller.handle();
    handle.register_broker(broker(1)).await.unwrap();
    assert_eq!(crate::kraft_version(&handle.image()), 0);
    match handle.add_voter(member(4), TIMEOUT, true).await {
        Err(ControllerError::UnsupportedVersion(m)) => assert_eq!(
            m,
            "Cluster doesn't support adding voter because the kraft.version feature is 0"
        ),
        other => panic!("add at kraft.version 0: {other:?}"),
    }
    match handle.remove_voter(9, Uuid::nil(), TIMEOUT).await {
        Err(ControllerError::UnsupportedVersion(m)) => assert_eq!(
            m,
            "Cluster doesn't support removing voter because the kraft.version feature is 0"
        ),
        other => panic!("remove at kraft.version 0: {other:?}"),
    }
    let mut only_one = member(1);
    only_one.kraft_version = (1, 1);
    assert!(matches!(
        handle.update_voter(only_one.clone(), TIMEOUT).await,
        Err(ControllerError::InvalidRequest(_))
    ));
    only_one.kraft_version = (0, 1);
    only_one.directory_id = Uuid::nil();
    handle.update_voter(only_one, TIMEOUT).await.unwrap();
    assert_eq!(
        handle.membership().voter(1).unwrap().endpoints[0].port,
        9001
    );
    upgrade_kraft_version(&handle).await;
    controller.shutdown().await;

    // The level is in the metadata log: a restart (static configuration unchanged) is still at 1.
    let controller = start(config(dir.path(), 1, &[1]), Arc::new(crate::NoPeers))
        .await
        .unwrap();
    let handle = controller.handle();
    handle.register_broker(broker(1)).await.unwrap();
    assert_eq!(crate::kraft_version(&handle.image()), 1);
    assert!(matches!(
        handle.remove_voter(9, Uuid::nil(), TIMEOUT).await,
        Err(ControllerError::VoterNotFound(_))
    ));
    let mut stale = member(1);
    stale.kraft_version = (0, 0);
    assert!(matches!(
        handle.update_voter(stale, TIMEOUT).await,
        Err(ControllerError::InvalidRequest(_))
    ));
    controller.shutdown().await;
}

/// AddRaftVoter's AckWhenCommitted (v1). True (v0's behaviour): the answer comes once the promotion has committed,
/// so the voter is in the applied membership when it does. False: the answer comes once the leader has appended
/// the promotion, here while the leader is cut off from the other voters so it cannot commit; the change keeps
/// the single change slot until the entry commits, which it does once the voters are reachable again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ack_when_committed_false_answers_once_the_promotion_is_appended() {
    // A slow tick: the cut-off leader keeps leading (check_quorum) for a second or more.
    let mut cluster = Cluster::three_voters(20 << 20, Duration::from_millis(100)).await;
    let leader = cluster.upgraded_leader().await;
    let leader_id = leader.leader_id().unwrap();
    // 4 and 5 are learners before they run (the additions time out), then catch up.
    for id in [4, 5] {
        assert!(matches!(
            leader
                .add_voter(member(id), Duration::from_millis(300), true)
                .await,
            Err(ControllerError::RequestTimedOut(_))
        ));
        cluster.start_node(id).await;
    }
    let r = leader
        .create_topics(vec![CreateTopicSpec::new("caught-up", 1, 1)], false)
        .await;
    assert!(r[0].result.is_ok(), "{r:?}");
    for id in [4, 5] {
        let h = cluster.handles()[&id].clone();
        wait_for("the learner to catch up", || {
            h.image().topic("caught-up").map(|_| ())
        })
        .await;
    }

    // Acknowledged on commit: the membership already has the voter when the answer comes.
    leader.add_voter(member(5), TIMEOUT, true).await.unwrap();
    assert!(leader.membership().voter(5).is_some());

    // Cut the leader off from every other voter (4, a learner, still gets the log): nothing can commit.
    let cut: Vec<i32> = [1, 2, 3, 5]
        .into_iter()
        .filter(|&id| id != leader_id)
        .collect();
    let cut_handles: Vec<(i32, ControllerHandle)> = cut
        .iter()
        .filter_map(|id| cluster.router.nodes().remove(id).map(|h| (*id, h)))
        .collect();
    leader.add_voter(member(4), TIMEOUT, false).await.unwrap();
    // Still not a voter a little later: the answer did not wait for a commit that cannot happen.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        leader.membership().voter(4).is_none(),
        "answered before the promotion committed"
    );
    assert!(leader.membership().learner(4).is_some());
    // The change holds the slot until its entry commits.
    assert!(matches!(
        leader.remove_voter(5, Uuid::nil(), TIMEOUT).await,
        Err(ControllerError::RequestTimedOut(_))
    ));

    // Reconnected, the voters commit the promotion.
    for (id, h) in cut_handles {
        cluster.router.nodes().insert(id, h);
    }
    cluster
        .voters_everywhere(&[1, 2, 3, 4, 5], &[1, 2, 3, 4, 5])
        .await;
    for id in 1..=5 {
        cluster.stop_node(id).await;
    }
}
