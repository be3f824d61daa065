//! OffsetCommit, OffsetFetch, OffsetDelete and offset retention.

use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::{
    GroupId, OffsetDeleteRequest, OffsetDeleteResponse, OffsetFetchRequest, TopicName,
};
use kafka_protocol::ResponseError;

use super::*;
use crate::group::records::{GroupRecord, TopicPartition};

fn delete(h: &mut Harness, group: &str, topic: &str, partitions: &[i32]) -> OffsetDeleteResponse {
    let id = h.next_version_id(0);
    let request = OffsetDeleteRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_topics(vec![OffsetDeleteRequestTopic::default()
            .with_name(TopicName(s(topic)))
            .with_partitions(
                partitions
                    .iter()
                    .map(|p| OffsetDeleteRequestPartition::default().with_partition_index(*p))
                    .collect(),
            )]);
    let outputs = h.coordinator.offset_delete(id, 0, request, h.now);
    h.absorb(outputs);
    match h.replies.get(&id) {
        Some(Response::OffsetDelete(r)) => r.clone(),
        other => panic!("not an OffsetDelete answer: {other:?}"),
    }
}

#[test]
fn committed_offsets_are_fetched_back() {
    let mut h = Harness::new();
    let (member, generation) = h.stable_single("g", b"a");
    assert_eq!(
        h.commit("g", &member, generation, "t1", &[(0, 10), (1, 20)]),
        vec![0, 0]
    );
    let offsets: Vec<&GroupRecord> = h
        .persisted
        .iter()
        .filter(|r| matches!(r, GroupRecord::Offset { .. }))
        .collect();
    assert_eq!(offsets.len(), 2);
    assert_eq!(h.fetch_one("g", "t1", 0), 10);
    assert_eq!(h.fetch_one("g", "t1", 1), 20);
    assert_eq!(h.fetch_one("g", "t1", 2), -1);
    assert_eq!(h.fetch_one("other", "t1", 0), -1);

    // Null topics (v2+) list everything the group committed, with metadata.
    let all = h.fetch_with(
        5,
        OffsetFetchRequest::default()
            .with_group_id(GroupId(s("g")))
            .with_topics(None),
    );
    assert_eq!(all.topics.len(), 1);
    let partitions: Vec<(i32, i64)> = all.topics[0]
        .partitions
        .iter()
        .map(|p| (p.partition_index, p.committed_offset))
        .collect();
    assert_eq!(partitions, vec![(0, 10), (1, 20)]);
    assert_eq!(
        all.topics[0].partitions[0].metadata.as_deref(),
        Some("meta")
    );

    // v1 has no null topics; v8 batches groups.
    let v1 = OffsetFetchRequest::default()
        .with_group_id(GroupId(s("g")))
        .with_topics(Some(vec![
            kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic::default()
                .with_name(TopicName(s("t1")))
                .with_partition_indexes(vec![1]),
        ]));
    assert_eq!(
        h.fetch_with(1, v1).topics[0].partitions[0].committed_offset,
        20
    );
    let batched = OffsetFetchRequest::default().with_groups(vec![
        OffsetFetchRequestGroup::default()
            .with_group_id(GroupId(s("g")))
            .with_topics(None),
        OffsetFetchRequestGroup::default()
            .with_group_id(GroupId(s("unknown")))
            .with_topics(Some(vec![OffsetFetchRequestTopics::default()
                .with_name(TopicName(s("t1")))
                .with_partition_indexes(vec![0])])),
    ]);
    let response = h.fetch_with(8, batched);
    assert_eq!(response.groups.len(), 2);
    assert_eq!(response.groups[0].topics[0].partitions.len(), 2);
    assert_eq!(
        response.groups[1].topics[0].partitions[0].committed_offset,
        -1
    );
}

#[test]
fn commit_validation() {
    let mut h = Harness::new();
    let illegal = code(ResponseError::IllegalGeneration);
    let unknown = code(ResponseError::UnknownMemberId);
    assert_eq!(h.commit("absent", "m", 1, "t1", &[(0, 1)]), vec![illegal]);
    assert_eq!(h.state("absent"), "Dead");

    let (member, generation) = h.stable_single("g", b"a");
    assert_eq!(
        h.commit("g", "", -1, "t1", &[(0, 1)]),
        vec![unknown],
        "only members commit to active groups"
    );
    assert_eq!(
        h.commit("g", "stranger", generation, "t1", &[(0, 1)]),
        vec![unknown]
    );
    assert_eq!(
        h.commit("g", &member, generation + 1, "t1", &[(0, 1)]),
        vec![illegal]
    );
    assert_eq!(
        h.fetch_one("g", "t1", 0),
        -1,
        "rejected commits store nothing"
    );

    // During the join phase members may still commit.
    h.join(3, "g", "");
    assert_eq!(h.commit("g", &member, generation, "t1", &[(0, 5)]), vec![0]);
    // Between the JoinGroup answer and the assignment they may not.
    h.join(3, "g", &member);
    assert_eq!(h.state("g"), "CompletingRebalance");
    assert_eq!(
        h.commit("g", &member, generation + 1, "t1", &[(0, 6)]),
        vec![code(ResponseError::RebalanceInProgress)]
    );
    assert_eq!(h.fetch_one("g", "t1", 0), 5);
}

#[test]
fn simple_consumers_commit_without_membership() {
    let mut h = Harness::new();
    assert_eq!(h.commit("simple", "", -1, "t1", &[(0, 42)]), vec![0]);
    assert_eq!(h.state("simple"), "Empty");
    assert_eq!(h.fetch_one("simple", "t1", 0), 42);
}

#[test]
fn oversized_commit_metadata_is_rejected_per_partition() {
    let mut h = Harness::with_config(GroupConfig {
        offset_metadata_max_bytes: 4,
        ..GroupConfig::default()
    });
    let mut request = commit_request("g", "", -1, "t1", &[(0, 1), (1, 2)]);
    request.topics[0].partitions[1].committed_metadata = Some(s("too long"));
    let response = h.commit_with(8, request);
    let codes: Vec<i16> = response.topics[0]
        .partitions
        .iter()
        .map(|p| p.error_code)
        .collect();
    assert_eq!(codes, vec![0, code(ResponseError::OffsetMetadataTooLarge)]);
    assert_eq!(h.fetch_one("g", "t1", 0), 1);
    assert_eq!(h.fetch_one("g", "t1", 1), -1);
}

#[test]
fn offsets_expire_after_retention() {
    let mut h = Harness::with_config(GroupConfig {
        offsets_retention_ms: 5_000,
        offsets_retention_check_interval_ms: 1,
        ..GroupConfig::default()
    });
    h.advance(0); // the first tick schedules the retention checks
    h.commit("simple", "", -1, "t1", &[(0, 1)]);
    // An explicit retention (v2-v4) overrides the broker's.
    let mut short = commit_request("explicit", "", -1, "t1", &[(0, 1)]);
    short.retention_time_ms = 1_000;
    h.commit_with(2, short);
    h.advance(1_000);
    assert_eq!(h.fetch_one("explicit", "t1", 0), -1);
    assert_eq!(
        h.state("explicit"),
        "Dead",
        "a group left without offsets is removed"
    );
    assert_eq!(h.fetch_one("simple", "t1", 0), 1);
    h.advance(4_000);
    assert_eq!(h.fetch_one("simple", "t1", 0), -1);
    let tombstones = h
        .persisted
        .iter()
        .filter(|r| r.is_tombstone() && matches!(r, GroupRecord::Offset { .. }))
        .count();
    assert_eq!(tombstones, 2);
}

#[test]
fn offset_delete_rules() {
    let mut h = Harness::new();
    let response = delete(&mut h, "absent", "t1", &[0]);
    assert_eq!(response.error_code, code(ResponseError::GroupIdNotFound));
    assert_eq!(
        delete(&mut h, "", "t1", &[0]).error_code,
        code(ResponseError::InvalidGroupId)
    );

    // Empty group: anything goes.
    h.commit("simple", "", -1, "t1", &[(0, 1)]);
    let response = delete(&mut h, "simple", "t1", &[0, 1]);
    assert_eq!(response.error_code, 0);
    assert_eq!(response.topics[0].partitions.len(), 2);
    assert_eq!(h.fetch_one("simple", "t1", 0), -1);
    assert!(matches!(
        h.persisted.last(),
        Some(GroupRecord::Offset {
            topic_partition: TopicPartition { partition: 0, .. },
            value: None,
            ..
        })
    ));

    // As in Kafka, the simple group stays (empty, without offsets) until the retention check removes it:
    // deleting again answers per partition rather than GROUP_ID_NOT_FOUND.
    assert_eq!(h.state("simple"), "Empty");
    let again = delete(&mut h, "simple", "t1", &[0]);
    assert_eq!(again.error_code, 0);
    assert_eq!(again.topics[0].partitions[0].error_code, 0);

    // Active consumer group subscribed to t1 only.
    let (member, generation) = h.stable_single("g", b"a");
    h.commit("g", &member, generation, "t1", &[(0, 1)]);
    h.commit("g", &member, generation, "t2", &[(0, 1)]);
    let response = delete(&mut h, "g", "t1", &[0]);
    assert_eq!(
        response.topics[0].partitions[0].error_code,
        code(ResponseError::GroupSubscribedToTopic)
    );
    assert_eq!(h.fetch_one("g", "t1", 0), 1);
    let response = delete(&mut h, "g", "t2", &[0]);
    assert_eq!(response.topics[0].partitions[0].error_code, 0);
    assert_eq!(h.fetch_one("g", "t2", 0), -1);

    // Active group of an opaque protocol type.
    let join = h.join_with(
        3,
        join_request("connect", "").with_protocol_type(s("connect")),
    );
    assert_eq!(h.join_response(join).error_code, 0);
    assert_eq!(
        delete(&mut h, "connect", "t1", &[0]).error_code,
        code(ResponseError::NonEmptyGroup)
    );
}
