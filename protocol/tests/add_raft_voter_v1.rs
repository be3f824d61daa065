//! AddRaftVoter v1 (KIP-853's AckWhenCommitted), which Kraftwerk's copy of kafka-protocol 0.18 gains by hand (see
//! `third_party/kafka-protocol/KRAFTWERK-PATCH.md`): the request's v1 body is v0's plus one boolean before the
//! tagged fields, a v0 request means AckWhenCommitted=true, and the response is the same at both versions.

mod common;

use bytes::BytesMut;
use common::Sample;
use kafka_protocol::messages::add_raft_voter_request::Listener;
use kafka_protocol::messages::{AddRaftVoterRequest, AddRaftVoterResponse, ApiKey, RequestKind};
use kafka_protocol::protocol::{Encodable, StrBytes};
use kraftwerk_protocol::request::decode_request;

fn request(ack_when_committed: bool) -> AddRaftVoterRequest {
    AddRaftVoterRequest::default()
        .with_cluster_id(Some(StrBytes::from_static_str("c")))
        .with_timeout_ms(30_000)
        .with_voter_id(4)
        .with_voter_directory_id(uuid::Uuid::from_u128(0x0102))
        .with_listeners(vec![Listener::default()
            .with_name(StrBytes::from_static_str("CONTROLLER"))
            .with_host(StrBytes::from_static_str("h"))
            .with_port(9093)])
        .with_ack_when_committed(ack_when_committed)
}

fn body(req: &AddRaftVoterRequest, version: i16) -> Vec<u8> {
    let mut buf = BytesMut::new();
    req.encode(&mut buf, version).expect("encodes");
    assert_eq!(buf.len(), req.compute_size(version).expect("sizes"));
    buf.to_vec()
}

#[test]
fn v1_is_v0_plus_ack_when_committed_before_the_tagged_fields() {
    let v0 = body(&request(true), 0);
    let expected_v0: Vec<u8> = [
        &[2, b'c'][..],            // ClusterId, compact string
        &30_000i32.to_be_bytes(),  // TimeoutMs
        &4i32.to_be_bytes(),       // VoterId
        &0x0102u128.to_be_bytes(), // VoterDirectoryId
        &[2],                      // Listeners: one
        &[11],                     // Name: "CONTROLLER", compact string
        b"CONTROLLER",
        &[2, b'h'],             // Host: "h"
        &9093u16.to_be_bytes(), // Port
        &[0],                   // the listener's tagged fields
        &[0],                   // the request's tagged fields
    ]
    .concat();
    assert_eq!(v0, expected_v0);
    for (ack, byte) in [(true, 1u8), (false, 0u8)] {
        let v1 = body(&request(ack), 1);
        let mut expected = expected_v0[..expected_v0.len() - 1].to_vec();
        expected.extend_from_slice(&[byte, 0]);
        assert_eq!(v1, expected, "AckWhenCommitted={ack}");
    }
    // v0 has no place for AckWhenCommitted=false.
    let mut buf = BytesMut::new();
    assert!(request(false).encode(&mut buf, 0).is_err());
    assert!(request(false).compute_size(0).is_err());
}

#[test]
fn both_versions_round_trip_and_v0_means_ack_when_committed() {
    for (version, ack) in [(0, true), (1, true), (1, false)] {
        let sample = Sample::new(
            ApiKey::AddRaftVoter,
            version,
            7,
            RequestKind::AddRaftVoter(request(ack)),
        );
        let decoded = decode_request(sample.encode_body().expect("encodes")).expect("decodes");
        assert_eq!(decoded.api_version, version);
        match decoded.body {
            RequestKind::AddRaftVoter(r) => {
                assert_eq!(r, request(ack));
                assert_eq!(r.ack_when_committed, ack);
            }
            other => panic!("decoded as {other:?}"),
        }
    }
    assert!(AddRaftVoterRequest::default().ack_when_committed);
    // A v1 body cut before its boolean is malformed, not read as v0.
    let mut frame = Sample::new(
        ApiKey::AddRaftVoter,
        1,
        7,
        RequestKind::AddRaftVoter(request(false)),
    )
    .encode_body()
    .expect("encodes")
    .to_vec();
    frame.truncate(frame.len() - 2);
    assert!(decode_request(frame.into()).is_err());
}

#[test]
fn the_response_is_the_same_at_v0_and_v1() {
    let resp = AddRaftVoterResponse::default()
        .with_error_code(35)
        .with_error_message(Some(StrBytes::from_static_str("m")));
    let mut v0 = BytesMut::new();
    resp.encode(&mut v0, 0).expect("v0");
    let mut v1 = BytesMut::new();
    resp.encode(&mut v1, 1).expect("v1");
    assert_eq!(v0, v1);
    assert!(resp.encode(&mut BytesMut::new(), 2).is_err());
    assert_eq!(ApiKey::AddRaftVoter.valid_versions().max, 1);
}
