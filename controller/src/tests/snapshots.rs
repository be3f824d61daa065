//! Snapshots of the image: taken every `snapshot_bytes`, the log trimmed behind them, a restart that starts
//! from the newest one, a damaged newest one skipped, and a follower brought back by a snapshot.

use std::sync::Arc;

use super::single_voter::{broker, config};
use crate::api::*;
use crate::raft_log::snapshot_file::SnapshotId;
use crate::{start, NoPeers};

fn checkpoints(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out: Vec<_> = std::fs::read_dir(dir.join("__cluster_metadata-0"))
        .unwrap()
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .and_then(SnapshotId::parse)
                .is_some()
        })
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn restart_starts_from_the_newest_snapshot_and_survives_a_damaged_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), 1, &[1]);
    cfg.snapshot_bytes = 500;
    let controller = start(cfg.clone(), Arc::new(NoPeers)).await.unwrap();
    let handle = controller.handle();
    handle.register_broker(broker(1)).await.unwrap();
    for i in 0..60 {
        let r = handle
            .create_topics(vec![CreateTopicSpec::new(format!("t{i}"), 2, 1)], false)
            .await;
        assert!(r[0].result.is_ok(), "{r:?}");
    }
    let before = handle.image();
    controller.shutdown().await;

    let files = checkpoints(dir.path());
    assert_eq!(
        files.len(),
        2,
        "the two newest snapshots are kept: {files:?}"
    );
    let start_offset: i64 = std::fs::read_to_string(
        dir.path()
            .join("__cluster_metadata-0")
            .join("log-start-offset.checkpoint"),
    )
    .unwrap()
    .lines()
    .last()
    .unwrap()
    .split_whitespace()
    .last()
    .unwrap()
    .parse()
    .unwrap();
    assert!(start_offset > 0, "the log was trimmed behind a snapshot");

    let controller = start(cfg.clone(), Arc::new(NoPeers)).await.unwrap();
    let after = controller.handle().image();
    assert_eq!(after.topics_by_name(), before.topics_by_name());
    // A new leader's first (LeaderChange) entry may already be applied.
    assert!(after.next_offset() >= before.next_offset());
    controller.shutdown().await;

    // Damage the newest snapshot: the older one and the log after it still rebuild the same image.
    let newest = checkpoints(dir.path()).pop().unwrap();
    let mut bytes = std::fs::read(&newest).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x5a;
    std::fs::write(&newest, bytes).unwrap();
    let controller = start(cfg, Arc::new(NoPeers)).await.unwrap();
    let after = controller.handle().image();
    assert_eq!(after.topics_by_name(), before.topics_by_name());
    // A new leader's first (LeaderChange) entry may already be applied.
    assert!(after.next_offset() >= before.next_offset());
    // And it keeps accepting writes.
    let r = controller
        .handle()
        .create_topics(vec![CreateTopicSpec::new("after-damage", 1, 1)], false)
        .await;
    assert!(r[0].result.is_ok(), "{r:?}");
    controller.shutdown().await;
}
