//! Three voters in one process, raft messages routed between them in memory (no sockets).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::single_voter::{broker, config};
use crate::api::*;
use crate::error::ControllerError;
use crate::transport::{RaftMessage, Transport};
use crate::{start, Controller, ControllerHandle};

/// Delivers each message straight into the addressee's mailbox, unless that node is down.
#[derive(Default)]
pub(super) struct Router {
    nodes: Mutex<HashMap<i32, ControllerHandle>>,
}

impl Router {
    pub(super) fn nodes(&self) -> std::sync::MutexGuard<'_, HashMap<i32, ControllerHandle>> {
        self.nodes.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Transport for Router {
    fn send(&self, to: i32, message: RaftMessage) {
        if let Some(node) = self.nodes().get(&to) {
            node.step(message);
        }
    }
}

pub(super) async fn wait_for<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub(super) fn leader_of(handles: &HashMap<i32, ControllerHandle>) -> Option<ControllerHandle> {
    let leaders: Vec<_> = handles.values().filter(|h| h.is_leader()).collect();
    match leaders.as_slice() {
        [only] => Some((*only).clone()),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_created_on_leader_reaches_every_voter_and_survives_failover() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let router = Arc::new(Router::default());
    let mut controllers: HashMap<i32, Controller> = HashMap::new();
    for (id, dir) in (1..=3).zip(&dirs) {
        let controller = start(config(dir.path(), id, &[1, 2, 3]), router.clone())
            .await
            .unwrap();
        router.nodes().insert(id, controller.handle());
        controllers.insert(id, controller);
    }
    let handles: HashMap<_, _> = controllers
        .iter()
        .map(|(&id, c)| (id, c.handle()))
        .collect();

    let leader = wait_for("a leader", || leader_of(&handles)).await;
    let leader_id = leader.leader_id().unwrap();
    for handle in handles.values() {
        let id = wait_for("everyone to know the leader", || handle.leader_id()).await;
        assert_eq!(id, leader_id);
    }
    for id in 1..=3 {
        leader.register_broker(broker(id)).await.unwrap();
    }
    let created = leader
        .create_topics(vec![CreateTopicSpec::new("replicated", 3, 3)], false)
        .await;
    let topic_id = created[0].result.as_ref().unwrap().topic_id;
    for (id, handle) in &handles {
        let image = wait_for("the topic on every voter", || {
            let image = handle.image();
            image.topic("replicated").is_some().then_some(image)
        })
        .await;
        let topic = image.topic("replicated").unwrap();
        assert_eq!(topic.id, topic_id, "voter {id}");
        assert_eq!(topic.partitions[&0].replicas.len(), 3);
        assert_eq!(image.brokers().len(), 3);
    }

    // Followers refuse writes.
    let follower = handles
        .iter()
        .find(|(&id, _)| id != leader_id)
        .map(|(_, h)| h.clone())
        .unwrap();
    let refused = follower
        .create_topics(vec![CreateTopicSpec::new("nope", 1, 1)], false)
        .await;
    assert_eq!(refused[0].result, Err(ControllerError::NotController));

    // Stop the leader: the other two elect a new one that has the topic and accepts writes.
    router.nodes().remove(&leader_id);
    if let Some(old) = controllers.remove(&leader_id) {
        old.shutdown().await;
    }
    let survivors: HashMap<_, _> = handles
        .into_iter()
        .filter(|(id, _)| *id != leader_id)
        .collect();
    let new_leader = wait_for("a new leader", || leader_of(&survivors)).await;
    assert_ne!(new_leader.leader_id(), Some(leader_id));
    assert_eq!(new_leader.image().topic("replicated").unwrap().id, topic_id);
    let created = new_leader
        .create_topics(vec![CreateTopicSpec::new("after-failover", 1, 2)], false)
        .await;
    assert!(created[0].result.is_ok(), "{:?}", created[0].result);
    for handle in survivors.values() {
        wait_for("the second topic on both survivors", || {
            handle.image().topic("after-failover").map(|_| ())
        })
        .await;
    }
    for (_, controller) in controllers {
        controller.shutdown().await;
    }
}
