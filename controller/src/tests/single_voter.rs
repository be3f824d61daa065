//! A one-voter (combined mode) controller on a real metadata directory.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::api::*;
use crate::error::codes;
use crate::records::{ConfigResource, Endpoint, SecurityProtocol};
use crate::{start, ControllerConfig, ControllerError, NoPeers, VoterAddr};

pub(super) fn config(dir: &Path, node_id: i32, voters: &[i32]) -> ControllerConfig {
    ControllerConfig {
        node_id,
        voters: voters
            .iter()
            .map(|&id| VoterAddr {
                id,
                host: "localhost".into(),
                port: 9000 + id as u16,
            })
            .collect(),
        listener_name: "CONTROLLER".into(),
        metadata_dir: dir.to_owned(),
        cluster_id: "kraftwerk-test".into(),
        default_num_partitions: 2,
        default_replication_factor: 1,
        tick: Duration::from_millis(10),
        snapshot_bytes: 20 << 20,
        unclean_leader_election_enable: false,
    }
}

pub(super) fn broker(id: i32) -> BrokerRegistration {
    BrokerRegistration {
        broker_id: id,
        listeners: vec![Endpoint {
            name: "PLAINTEXT".into(),
            host: "localhost".into(),
            port: 9092,
            security_protocol: SecurityProtocol::Plaintext,
        }],
        rack: None,
    }
}

/// A one-voter controller (node 1) in `dir` with broker 1 registered.
async fn started_with_broker(dir: &Path) -> (crate::Controller, crate::ControllerHandle) {
    let controller = start(config(dir, 1, &[1]), Arc::new(NoPeers))
        .await
        .unwrap();
    let handle = controller.handle();
    handle.register_broker(broker(1)).await.unwrap();
    (controller, handle)
}

#[tokio::test]
async fn create_delete_alter_then_restart_with_the_same_image() {
    let dir = tempfile::tempdir().unwrap();
    let (controller, handle) = started_with_broker(dir.path()).await;
    assert!(handle.is_leader());
    assert_eq!(handle.leader_id(), Some(1));

    let results = handle
        .create_topics(
            vec![
                CreateTopicSpec::new("orders", 3, 1).with_config("retention.ms", "60000"),
                CreateTopicSpec::new("audit", -1, -1),
                CreateTopicSpec::new("scratch", 1, 1),
                CreateTopicSpec::new("bad name", 1, 1),
            ],
            false,
        )
        .await;
    let codes: Vec<_> = results
        .iter()
        .map(|r| r.result.as_ref().map_or_else(|e| e.error_code(), |_| 0))
        .collect();
    assert_eq!(codes, vec![0, 0, 0, codes::INVALID_TOPIC_EXCEPTION]);
    let orders_id = results[0].result.as_ref().unwrap().topic_id;
    // Completion implies the change is visible.
    let image = handle.image();
    assert_eq!(image.topic("orders").unwrap().id, orders_id);
    assert_eq!(image.topic("audit").unwrap().partition_count(), 2);

    let deleted = handle
        .delete_topics(vec![TopicRef::Name("scratch".into())])
        .await;
    assert!(deleted[0].result.is_ok());
    let altered = handle
        .incremental_alter_configs(
            vec![AlterConfigSpec {
                resource: ConfigResource::topic("orders"),
                ops: vec![AlterConfigOp::set("cleanup.policy", "compact")],
            }],
            false,
        )
        .await;
    assert_eq!(altered[0].result, Ok(()));
    let grown = handle
        .create_partitions(
            vec![CreatePartitionsSpec {
                name: "audit".into(),
                count: 4,
                assignments: None,
            }],
            false,
        )
        .await;
    assert_eq!(grown[0].result, Ok(()));
    let before = handle.image();
    controller.shutdown().await;
    assert_eq!(
        handle
            .create_topics(vec![CreateTopicSpec::new("late", 1, 1)], false)
            .await[0]
            .result,
        Err(ControllerError::NotController)
    );

    let controller = start(config(dir.path(), 1, &[1]), Arc::new(NoPeers))
        .await
        .unwrap();
    let handle = controller.handle();
    let after = handle.image();
    assert_eq!(after.last_applied_offset(), before.last_applied_offset());
    assert_eq!(after.topics_by_name(), before.topics_by_name());
    assert_eq!(after.topic("orders").unwrap().id, orders_id);
    assert!(after.topic("scratch").is_none());
    assert_eq!(after.topic("audit").unwrap().partition_count(), 4);
    assert_eq!(after.configs(), before.configs());
    let orders = after
        .resource_configs(&ConfigResource::topic("orders"))
        .unwrap();
    assert_eq!(orders["retention.ms"], "60000");
    assert_eq!(orders["cleanup.policy"], "compact");
    assert_eq!(after.brokers(), before.brokers());

    // The log continues after the restart.
    let results = handle
        .create_topics(vec![CreateTopicSpec::new("more", 1, 1)], false)
        .await;
    assert!(results[0].result.is_ok());
    assert!(handle.image().last_applied_offset() > before.last_applied_offset());
    controller.shutdown().await;
}

#[tokio::test]
async fn concurrent_creates_of_one_name_yield_one_topic() {
    let dir = tempfile::tempdir().unwrap();
    let controller = start(config(dir.path(), 0, &[0]), Arc::new(NoPeers))
        .await
        .unwrap();
    let handle = controller.handle();
    handle.register_broker(broker(0)).await.unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let handle = handle.clone();
            tokio::spawn(async move {
                handle
                    .create_topics(vec![CreateTopicSpec::new("race", 1, 1)], false)
                    .await
            })
        })
        .collect();
    let mut ok = 0;
    for task in tasks {
        match &task.await.unwrap()[0].result {
            Ok(_) => ok += 1,
            Err(e) => assert_eq!(e.error_code(), codes::TOPIC_ALREADY_EXISTS),
        }
    }
    assert_eq!(ok, 1);
    controller.shutdown().await;
}

#[tokio::test]
async fn subscribers_see_new_images() {
    let dir = tempfile::tempdir().unwrap();
    let controller = start(config(dir.path(), 1, &[1]), Arc::new(NoPeers))
        .await
        .unwrap();
    let handle = controller.handle();
    let mut images = handle.subscribe();
    images.mark_unchanged();
    handle.register_broker(broker(1)).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), images.changed())
        .await
        .unwrap()
        .unwrap();
    assert!(images.borrow().broker(1).is_some());
    controller.shutdown().await;
}

#[tokio::test]
async fn metadata_dir_of_another_cluster_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    start(config(dir.path(), 1, &[1]), Arc::new(NoPeers))
        .await
        .unwrap()
        .shutdown()
        .await;
    let mut other = config(dir.path(), 1, &[1]);
    other.cluster_id = "someone-else".into();
    let err = start(other, Arc::new(NoPeers)).await.err().unwrap();
    assert_eq!(err.error_code(), codes::INCONSISTENT_CLUSTER_ID);
}

/// A node missing from the voters is an observer: it never campaigns nor accepts writes on its own.
#[tokio::test]
async fn a_node_that_is_not_a_voter_is_an_observer() {
    let dir = tempfile::tempdir().unwrap();
    let observer = start(config(dir.path(), 5, &[1]), Arc::new(NoPeers))
        .await
        .unwrap();
    let handle = observer.handle();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!handle.is_leader());
    assert_eq!(handle.membership().voter_ids(), vec![1]);
    let r = handle
        .create_topics(vec![CreateTopicSpec::new("t", 1, 1)], false)
        .await;
    assert_eq!(r[0].result, Err(ControllerError::NotController));
    observer.shutdown().await;
    let mut none = config(dir.path(), 5, &[]);
    none.voters.clear();
    let err = start(none, Arc::new(NoPeers)).await.err().unwrap();
    assert!(matches!(err, ControllerError::Configuration(_)));
}

/// A metadata follower's read at the log end is parked and answered by the next commit, long before its wait
/// ends; a read whose wait ends with nothing committed answers an empty chunk.
#[tokio::test]
async fn a_waiting_metadata_read_is_answered_by_the_next_commit() {
    let dir = tempfile::tempdir().unwrap();
    let (controller, handle) = started_with_broker(dir.path()).await;
    let so_far = handle
        .read_committed(1, u64::MAX, Duration::ZERO)
        .await
        .unwrap();
    let next = so_far.entries.last().map_or(1, |e| e.index + 1);
    assert_eq!(so_far.commit_index + 1, next);

    let empty = handle
        .read_committed(next, u64::MAX, Duration::from_millis(50))
        .await
        .unwrap();
    assert!(empty.entries.is_empty() && empty.snapshot.is_none());

    let waiting = {
        let handle = handle.clone();
        tokio::spawn(async move {
            let asked = std::time::Instant::now();
            let chunk = handle
                .read_committed(next, u64::MAX, Duration::from_secs(60))
                .await;
            (chunk, asked.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!waiting.is_finished(), "nothing committed yet");
    handle
        .create_topics(vec![CreateTopicSpec::new("woken", 1, 1)], false)
        .await[0]
        .result
        .as_ref()
        .unwrap();
    let (chunk, took) = tokio::time::timeout(Duration::from_secs(30), waiting)
        .await
        .unwrap()
        .unwrap();
    let chunk = chunk.unwrap();
    assert!(
        took < Duration::from_secs(30),
        "answered by the commit, not the end of its wait"
    );
    assert_eq!(chunk.entries.first().map(|e| e.index), Some(next));
    controller.shutdown().await;
}
