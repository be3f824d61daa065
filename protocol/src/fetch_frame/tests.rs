use bytes::Bytes;
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, EpochEndOffset, FetchableTopicResponse, LeaderIdAndEpoch, NodeEndpoint,
    PartitionData, SnapshotId,
};
use kafka_protocol::messages::{BrokerId, FetchResponse, ProducerId, ResponseKind, TopicName};
use kafka_protocol::protocol::StrBytes;
use proptest::prelude::*;

use super::*;
use crate::response::encode_response;

/// Joins the parts, each external part replaced by the records it stands for.
fn flatten(parts: &[FramePart<Bytes>]) -> Vec<u8> {
    let mut out = Vec::new();
    for part in parts {
        match part {
            FramePart::Bytes(b) => out.extend_from_slice(b),
            FramePart::Records { source, len } => {
                assert_eq!(source.len(), *len);
                out.extend_from_slice(source);
            }
        }
    }
    out
}

/// What kafka-protocol encodes for `resp`, the records of the `external` partitions put back in place.
fn reference(
    version: i16,
    correlation_id: i32,
    resp: &FetchResponse,
    external: &[(usize, usize, Bytes)],
) -> Result<Bytes, EncodeError> {
    let mut full = resp.clone();
    for (t, p, records) in external {
        full.responses[*t].partitions[*p].records = Some(records.clone());
    }
    encode_response(
        ApiKey::Fetch,
        version,
        correlation_id,
        &ResponseKind::Fetch(full),
    )
}

fn ours(
    version: i16,
    correlation_id: i32,
    resp: &FetchResponse,
    external: &[(usize, usize, Bytes)],
) -> Result<Vec<FramePart<Bytes>>, EncodeError> {
    encode_fetch_frame(version, correlation_id, resp, |t, p| {
        external
            .iter()
            .find(|(et, ep, _)| (*et, *ep) == (t, p))
            .map(|(_, _, b)| ExternalRecords {
                source: b.clone(),
                len: b.len(),
            })
    })
}

fn partition(index: i32, records: Option<Bytes>) -> PartitionData {
    let mut pd = PartitionData::default();
    pd.partition_index = index;
    pd.high_watermark = 100;
    pd.last_stable_offset = 100;
    pd.log_start_offset = 0;
    pd.preferred_read_replica = BrokerId(-1);
    pd.aborted_transactions = Some(Vec::new());
    pd.records = records;
    pd
}

#[test]
fn records_held_apart_are_parts_of_their_own_and_counted_in_the_size() {
    let mut resp = FetchResponse::default();
    let mut topic = FetchableTopicResponse::default();
    topic.topic = TopicName(StrBytes::from_static_str("t"));
    topic.partitions.push(partition(0, Some(Bytes::new())));
    topic.partitions.push(partition(1, Some(Bytes::new())));
    resp.responses.push(topic);
    let records = Bytes::from(vec![7u8; 10_000]);
    let external = [(0, 1, records.clone())];
    for version in [4, 11, 12, 16, 18] {
        let parts = ours(version, 9, &resp, &external).unwrap();
        let at = parts
            .iter()
            .position(|p| matches!(p, FramePart::Records { .. }))
            .expect("an external part");
        assert_eq!(parts[at].len(), records.len());
        let total: usize = parts.iter().map(FramePart::len).sum();
        let flat = flatten(&parts);
        assert_eq!(flat.len(), total);
        let size = i32::from_be_bytes(flat[..4].try_into().unwrap());
        assert_eq!(size as usize, total - 4);
        assert_eq!(
            flat,
            reference(version, 9, &resp, &external).unwrap().to_vec()
        );
    }
}

#[test]
fn large_in_memory_records_are_shared_not_copied() {
    let records = Bytes::from(vec![3u8; 64 * 1024]);
    let mut resp = FetchResponse::default();
    let mut topic = FetchableTopicResponse::default();
    topic.topic = TopicName(StrBytes::from_static_str("t"));
    topic.partitions.push(partition(0, Some(records.clone())));
    resp.responses.push(topic);
    let parts = ours(12, 1, &resp, &[]).unwrap();
    let shared = parts.iter().any(|p| match p {
        FramePart::Bytes(b) => b.as_ptr() == records.as_ptr() && b.len() == records.len(),
        FramePart::Records { .. } => false,
    });
    assert!(
        shared,
        "the records should be passed through as the same Bytes"
    );
    assert_eq!(
        flatten(&parts),
        reference(12, 1, &resp, &[]).unwrap().to_vec()
    );
}

#[test]
fn versions_outside_4_to_18_are_refused() {
    let resp = FetchResponse::default();
    for version in [3, 19] {
        assert!(matches!(
            ours(version, 1, &resp, &[]),
            Err(EncodeError::UnsupportedVersion { .. })
        ));
    }
}

#[test]
fn fields_a_version_lacks_are_refused_as_kafka_protocol_does() {
    let mut resp = FetchResponse::default();
    resp.session_id = 5;
    assert!(ours(6, 1, &resp, &[]).is_err());
    assert!(reference(6, 1, &resp, &[]).is_err());
    let mut resp = FetchResponse::default();
    let mut topic = FetchableTopicResponse::default();
    let mut pd = partition(0, None);
    pd.preferred_read_replica = BrokerId(2);
    topic.partitions.push(pd);
    resp.responses.push(topic);
    assert!(ours(10, 1, &resp, &[]).is_err());
    assert!(reference(10, 1, &resp, &[]).is_err());
    assert!(ours(11, 1, &resp, &[]).is_ok());
}

fn bytes_strategy(max: usize) -> impl Strategy<Value = Bytes> {
    prop::collection::vec(any::<u8>(), 0..max).prop_map(Bytes::from)
}

fn name_strategy() -> impl Strategy<Value = String> {
    "[a-z0-9._-]{0,20}"
}

fn unknown_tags(from: i32) -> impl Strategy<Value = BTreeMap<i32, Bytes>> {
    prop::collection::btree_map(from..from + 40, bytes_strategy(8), 0..2)
}

/// A partition valid at `version` (fields it lacks left at their defaults, as a handler leaves them).
fn partition_strategy(version: i16) -> impl Strategy<Value = PartitionData> {
    let flexible = version >= 12;
    (
        (
            any::<i32>(),
            any::<i16>(),
            any::<i64>(),
            any::<i64>(),
            any::<i64>(),
        ),
        prop::option::of(prop::collection::vec((any::<i64>(), any::<i64>()), 0..3)),
        prop::option::of(-1i32..5),
        prop::option::of(bytes_strategy(6000)),
        (
            prop::option::of((any::<i32>(), any::<i64>())),
            prop::option::of((any::<i32>(), any::<i32>())),
            prop::option::of((any::<i64>(), any::<i32>())),
        ),
        unknown_tags(3),
    )
        .prop_map(
            move |((index, error, hw, lso, lstart), aborted, preferred, records, tags, unknown)| {
                let mut pd = PartitionData::default();
                pd.partition_index = index;
                pd.error_code = error;
                pd.high_watermark = hw;
                pd.last_stable_offset = lso;
                if version >= 5 {
                    pd.log_start_offset = lstart;
                }
                pd.aborted_transactions = aborted.map(|list| {
                    list.into_iter()
                        .map(|(pid, first)| {
                            AbortedTransaction::default()
                                .with_producer_id(ProducerId(pid))
                                .with_first_offset(first)
                        })
                        .collect()
                });
                if version >= 11 {
                    pd.preferred_read_replica = BrokerId(preferred.unwrap_or(-1));
                }
                pd.records = records;
                if flexible {
                    if let Some((epoch, end)) = tags.0 {
                        pd.diverging_epoch = EpochEndOffset::default()
                            .with_epoch(epoch)
                            .with_end_offset(end);
                    }
                    if let Some((leader, epoch)) = tags.1 {
                        pd.current_leader = LeaderIdAndEpoch::default()
                            .with_leader_id(BrokerId(leader))
                            .with_leader_epoch(epoch);
                    }
                    if let Some((end, epoch)) = tags.2 {
                        pd.snapshot_id =
                            SnapshotId::default().with_end_offset(end).with_epoch(epoch);
                    }
                    pd.unknown_tagged_fields = unknown;
                }
                pd
            },
        )
}

fn topic_strategy(version: i16) -> impl Strategy<Value = FetchableTopicResponse> {
    (
        name_strategy(),
        any::<u128>(),
        prop::collection::vec(partition_strategy(version), 0..4),
        unknown_tags(0),
    )
        .prop_map(move |(name, id, partitions, unknown)| {
            let mut t = FetchableTopicResponse::default();
            if version <= 12 {
                t.topic = TopicName(StrBytes::from_string(name));
            }
            if version >= 13 {
                t.topic_id = uuid::Uuid::from_u128(id);
            }
            t.partitions = partitions;
            if version >= 12 {
                t.unknown_tagged_fields = unknown;
            }
            t
        })
}

fn endpoint_strategy() -> impl Strategy<Value = NodeEndpoint> {
    (
        any::<i32>(),
        name_strategy(),
        any::<i32>(),
        prop::option::of(name_strategy()),
    )
        .prop_map(|(id, host, port, rack)| {
            NodeEndpoint::default()
                .with_node_id(BrokerId(id))
                .with_host(StrBytes::from_string(host))
                .with_port(port)
                .with_rack(rack.map(StrBytes::from_string))
        })
}

/// A version, a response valid at it, and which partitions' records are held apart (with their bytes).
fn case_strategy() -> impl Strategy<Value = (i16, i32, FetchResponse, Vec<(usize, usize, Bytes)>)> {
    (MIN_VERSION..=MAX_VERSION).prop_flat_map(|version| {
        (
            Just(version),
            any::<i32>(),
            (any::<i32>(), any::<i16>(), any::<i32>()),
            prop::collection::vec(topic_strategy(version), 0..4),
            prop::collection::vec(endpoint_strategy(), 0..3),
            unknown_tags(1),
            prop::collection::vec((any::<bool>(), bytes_strategy(9000)), 16),
        )
            .prop_map(
                move |(
                    version,
                    correlation_id,
                    (throttle, error, session),
                    topics,
                    endpoints,
                    unknown,
                    picks,
                )| {
                    let mut resp = FetchResponse::default();
                    resp.throttle_time_ms = throttle;
                    if version >= 7 {
                        resp.error_code = error;
                        resp.session_id = session;
                    }
                    resp.responses = topics;
                    if version >= 16 {
                        resp.node_endpoints = endpoints;
                    }
                    if version >= 12 {
                        resp.unknown_tagged_fields = unknown;
                    }
                    let mut external = Vec::new();
                    let mut pick = picks.into_iter().cycle();
                    for (ti, t) in resp.responses.iter().enumerate() {
                        for pi in 0..t.partitions.len() {
                            if let Some((true, bytes)) = pick.next() {
                                external.push((ti, pi, bytes));
                            }
                        }
                    }
                    (version, correlation_id, resp, external)
                },
            )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// For every served version, the parts joined are exactly kafka-protocol's frame.
    #[test]
    fn byte_identical_to_kafka_protocol((version, correlation_id, resp, external) in case_strategy()) {
        // The generator sets only fields the version has, so both must encode.
        let expected = reference(version, correlation_id, &resp, &external).expect("kafka-protocol encodes it");
        let parts = ours(version, correlation_id, &resp, &external).expect("we encode it");
        prop_assert_eq!(flatten(&parts), expected.to_vec());
        let externals = parts.iter().filter(|p| matches!(p, FramePart::Records { .. })).count();
        prop_assert_eq!(externals, external.len());
    }
}
