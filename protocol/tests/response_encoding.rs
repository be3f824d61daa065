//! Responses are framed with the right size and header version and decode back with `kafka-protocol`'s
//! client-side decoders.

use bytes::{Buf, Bytes};
use kafka_protocol::messages::api_versions_response::ApiVersionsResponse;
use kafka_protocol::messages::metadata_response::{MetadataResponse, MetadataResponseBroker};
use kafka_protocol::messages::produce_response::{
    PartitionProduceResponse, ProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ApiKey, BrokerId, ResponseHeader, ResponseKind, TopicName};
use kafka_protocol::protocol::{Decodable, StrBytes};
use kraftwerk_protocol::response::{
    encode_response, response_header_version, unsupported_api_versions_response, EncodeError,
};
use kraftwerk_protocol::versions::SupportedApis;

/// Checks the size prefix, decodes the header at `header_version` and the body, and that nothing is left.
fn decode_frame(
    frame: Bytes,
    api_key: ApiKey,
    version: i16,
    header_version: i16,
) -> (i32, ResponseKind) {
    let mut buf = frame;
    let size = buf.get_i32();
    assert_eq!(
        size as usize,
        buf.remaining(),
        "size prefix counts the rest of the frame"
    );
    let header = ResponseHeader::decode(&mut buf, header_version).expect("header decodes");
    let body = ResponseKind::decode(api_key, &mut buf, version).expect("body decodes");
    assert_eq!(
        buf.remaining(),
        0,
        "header v{header_version} left bytes behind"
    );
    (header.correlation_id, body)
}

fn metadata_body() -> ResponseKind {
    ResponseKind::Metadata(MetadataResponse::default().with_brokers(
        vec![MetadataResponseBroker::default()
            .with_node_id(BrokerId(1))
            .with_host(StrBytes::from_static_str("localhost"))
            .with_port(9092)],
    ))
}

fn produce_body() -> ResponseKind {
    ResponseKind::Produce(ProduceResponse::default().with_responses(vec![
        TopicProduceResponse::default()
            .with_name(TopicName(StrBytes::from_static_str("orders")))
            .with_partition_responses(vec![PartitionProduceResponse::default()
                .with_index(0)
                .with_base_offset(100)]),
    ]))
}

#[test]
fn header_version_follows_the_api_and_version() {
    let cases = [
        (ApiKey::Metadata, 1, metadata_body(), 0),
        (ApiKey::Metadata, 8, metadata_body(), 0),
        (ApiKey::Metadata, 9, metadata_body(), 1),
        (ApiKey::Metadata, 12, metadata_body(), 1),
        (ApiKey::Produce, 3, produce_body(), 0),
        (ApiKey::Produce, 9, produce_body(), 1),
    ];
    for (key, version, body, header_version) in cases {
        assert_eq!(response_header_version(key, version), header_version);
        let frame = encode_response(key, version, -42, &body).expect("encodes");
        let (correlation_id, decoded) = decode_frame(frame, key, version, header_version);
        assert_eq!(correlation_id, -42);
        assert_eq!(decoded, body, "{key:?} v{version}");
    }
}

#[test]
fn api_versions_responses_always_use_header_v0() {
    let mut apis = SupportedApis::new();
    apis.register(ApiKey::ApiVersions, 0, 4);
    apis.register(ApiKey::Metadata, 0, 12);
    let body = ResponseKind::ApiVersions(apis.api_versions_response());
    for version in 0..=4 {
        assert_eq!(response_header_version(ApiKey::ApiVersions, version), 0);
        let frame = encode_response(ApiKey::ApiVersions, version, 7, &body).expect("encodes");
        // With a v1 header a tagged-fields byte would sit between correlation id and error code, shifting
        // the body by one byte; the strict v0 decode (nothing left over) would then fail.
        let (correlation_id, decoded) = decode_frame(frame, ApiKey::ApiVersions, version, 0);
        assert_eq!(correlation_id, 7);
        let ResponseKind::ApiVersions(decoded) = decoded else {
            panic!("not ApiVersions");
        };
        assert_eq!(decoded.api_keys.len(), 2);
        if version >= 3 {
            assert_eq!(decoded.finalized_features_epoch, -1);
        }
    }
}

#[test]
fn unsupported_api_versions_answer_is_a_v0_error_with_our_ranges() {
    let mut apis = SupportedApis::new();
    apis.register(ApiKey::Produce, 3, 9);
    apis.register(ApiKey::ApiVersions, 0, 3);
    let frame = unsupported_api_versions_response(1234, &apis);
    let (correlation_id, decoded) = decode_frame(frame, ApiKey::ApiVersions, 0, 0);
    assert_eq!(correlation_id, 1234);
    let ResponseKind::ApiVersions(decoded) = decoded else {
        panic!("not ApiVersions");
    };
    assert_eq!(decoded.error_code, 35);
    let listed: Vec<_> = decoded
        .api_keys
        .iter()
        .map(|v| (v.api_key, v.min_version, v.max_version))
        .collect();
    assert_eq!(listed, vec![(0, 3, 9), (18, 0, 3)]);
}

#[test]
fn unsupported_api_versions_answer_with_no_apis_is_still_well_formed() {
    let frame = unsupported_api_versions_response(1, &SupportedApis::new());
    assert_eq!(&frame[..], &[0, 0, 0, 10, 0, 0, 0, 1, 0, 35, 0, 0, 0, 0]);
}

#[test]
fn body_for_another_api_is_refused() {
    let err = encode_response(ApiKey::Produce, 9, 1, &metadata_body()).unwrap_err();
    assert_eq!(
        err,
        EncodeError::KindMismatch {
            api_key: ApiKey::Produce,
            body: Some(ApiKey::Metadata)
        }
    );
}

#[test]
fn undecodable_versions_are_refused() {
    let body = ResponseKind::ApiVersions(ApiVersionsResponse::default());
    assert_eq!(
        encode_response(ApiKey::ApiVersions, 6, 1, &body),
        Err(EncodeError::UnsupportedVersion {
            api_key: ApiKey::ApiVersions,
            api_version: 6
        })
    );
    assert!(matches!(
        encode_response(ApiKey::Produce, 2, 1, &produce_body()),
        Err(EncodeError::UnsupportedVersion { .. })
    ));
}
