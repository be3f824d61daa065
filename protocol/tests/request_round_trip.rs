//! Requests encoded by `kafka-protocol`'s client encoders decode back to the same typed header and body,
//! and header versions follow the api/version rules.

mod common;

use bytes::{BufMut, Bytes, BytesMut};
use common::{named_samples, Sample};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind};
use kafka_protocol::protocol::{Encodable, StrBytes};
use kraftwerk_protocol::frame::FrameDecoder;
use kraftwerk_protocol::request::{decode_request, DecodeError};

fn assert_round_trip(sample: &Sample) {
    let frame = sample
        .encode_body()
        .unwrap_or_else(|e| panic!("{:?} v{}: {e}", sample.api_key, sample.api_version));
    let request = decode_request(frame)
        .unwrap_or_else(|e| panic!("{:?} v{}: {e}", sample.api_key, sample.api_version));
    assert_eq!(request.api_key, sample.api_key);
    assert_eq!(request.api_version, sample.api_version);
    assert_eq!(request.header, sample.header);
    assert_eq!(request.body, sample.body);
    assert_eq!(request.correlation_id(), sample.header.correlation_id);
}

#[test]
fn named_requests_round_trip() {
    for sample in named_samples() {
        assert_round_trip(&sample);
    }
}

#[test]
fn every_request_version_round_trips_through_the_frame_decoder() {
    // All samples in one buffer, then framed and decoded one after the other.
    let samples = common::every_api_sample();
    // A default body can't be encoded at a handful of versions (OffsetCommit v10, OffsetFetch v10,
    // InitProducerId v6 need non-default fields); every api key must still be covered.
    let versions: usize = ApiKey::iter()
        .map(|k| (k.valid_versions().max - k.valid_versions().min + 1) as usize)
        .sum();
    assert!(
        samples.len() >= versions - 3,
        "only {} samples encoded",
        samples.len()
    );
    for key in ApiKey::iter() {
        assert!(
            samples.iter().any(|s| s.api_key == key),
            "no sample for {key:?}"
        );
    }
    let mut stream = BytesMut::new();
    for sample in &samples {
        stream.put_slice(&sample.encode_frame().expect("sample encodes"));
    }
    let decoder = FrameDecoder::new(1 << 20);
    for sample in &samples {
        let frame = decoder
            .decode(&mut stream)
            .expect("frame accepted")
            .expect("whole frame buffered");
        let request = decode_request(frame)
            .unwrap_or_else(|e| panic!("{:?} v{}: {e}", sample.api_key, sample.api_version));
        assert_eq!(request.header, sample.header);
        assert_eq!(request.body, sample.body);
    }
    assert!(stream.is_empty());
}

#[test]
fn request_header_versions_are_v1_or_v2_for_every_decodable_api() {
    // Header v0 belongs to ControlledShutdown v0 alone, which kafka-protocol does not model.
    for key in ApiKey::iter() {
        let valid = key.valid_versions();
        for version in valid.min..=valid.max {
            let header_version = key.request_header_version(version);
            assert!(
                header_version == 1 || header_version == 2,
                "{key:?} v{version} uses request header v{header_version}"
            );
        }
    }
    assert_eq!(ApiKey::Produce.request_header_version(8), 1);
    assert_eq!(ApiKey::Produce.request_header_version(9), 2);
    assert_eq!(ApiKey::ApiVersions.request_header_version(2), 1);
    assert_eq!(ApiKey::ApiVersions.request_header_version(3), 2);
}

/// ControlledShutdown (key 7) v0, header v0: key, version, correlation id and nothing else.
#[test]
fn controlled_shutdown_v0_with_header_v0_is_unknown_but_answerable() {
    let mut frame = BytesMut::new();
    frame.put_i16(7);
    frame.put_i16(0);
    frame.put_i32(77);
    frame.put_i32(1); // broker id
    let err = decode_request(frame.freeze()).unwrap_err();
    assert_eq!(
        err,
        DecodeError::UnknownApiKey {
            api_key: 7,
            api_version: 0,
            correlation_id: 77
        }
    );
    assert_eq!(err.correlation_id(), Some(77));
}

/// Header v1, byte by byte: the client id is a nullable INT16-length string.
#[test]
fn header_v1_layout_with_and_without_client_id() {
    for client_id in [Some("app-7"), None] {
        let mut frame = BytesMut::new();
        frame.put_i16(ApiKey::Metadata as i16);
        frame.put_i16(1);
        frame.put_i32(0x0102_0304);
        match client_id {
            Some(id) => {
                frame.put_i16(id.len() as i16);
                frame.put_slice(id.as_bytes());
            }
            None => frame.put_i16(-1),
        }
        frame.put_i32(-1); // Metadata v1 topics: null = all topics
        let request = decode_request(frame.freeze()).expect("valid Metadata v1");
        assert_eq!(request.header.correlation_id, 0x0102_0304);
        assert_eq!(request.header.client_id.as_deref(), client_id);
        let RequestKind::Metadata(body) = request.body else {
            panic!("not a metadata body: {:?}", request.body);
        };
        assert_eq!(body.topics, None);
    }
}

/// Header v2, byte by byte: still an INT16-length client id, then tagged fields; here ApiVersions v3 with a
/// tagged field in the header and compact strings in the body.
#[test]
fn header_v2_layout_with_tagged_fields_and_null_client_id() {
    let mut frame = BytesMut::new();
    frame.put_i16(ApiKey::ApiVersions as i16);
    frame.put_i16(3);
    frame.put_i32(99);
    frame.put_i16(-1); // null client id
    frame.put_u8(1); // one tagged field
    frame.put_u8(42); // tag
    frame.put_u8(2); // size
    frame.put_slice(b"hi");
    frame.put_u8(4); // compact string "abc" (length + 1)
    frame.put_slice(b"abc");
    frame.put_u8(2); // compact string "1"
    frame.put_slice(b"1");
    frame.put_u8(0); // no body tagged fields
    let request = decode_request(frame.freeze()).expect("valid ApiVersions v3");
    assert_eq!(request.header.client_id, None);
    assert_eq!(
        request.header.unknown_tagged_fields.get(&42),
        Some(&Bytes::from_static(b"hi"))
    );
    let RequestKind::ApiVersions(body) = request.body else {
        panic!("not an ApiVersions body: {:?}", request.body);
    };
    assert_eq!(body.client_software_name.as_str(), "abc");
    assert_eq!(body.client_software_version.as_str(), "1");
}

#[test]
fn header_tagged_fields_survive_a_round_trip() {
    let mut sample = common::metadata(12);
    sample.header = RequestHeader::default()
        .with_request_api_key(ApiKey::Metadata as i16)
        .with_request_api_version(12)
        .with_correlation_id(-5)
        .with_client_id(None)
        .with_unknown_tagged_field(3, Bytes::from_static(b"\x01\x02"));
    assert_round_trip(&sample);
}

#[test]
fn short_frames_are_too_short() {
    for len in 0..8 {
        let frame = Bytes::from(vec![0u8; len]);
        assert_eq!(decode_request(frame), Err(DecodeError::TooShort));
    }
    assert_eq!(DecodeError::TooShort.correlation_id(), None);
}

#[test]
fn unknown_and_undecodable_versions_are_reported_with_correlation_id() {
    let header = |key: i16, version: i16| {
        let mut b = BytesMut::new();
        b.put_i16(key);
        b.put_i16(version);
        b.put_i32(31337);
        b.put_i16(-1);
        b.freeze()
    };
    assert_eq!(
        decode_request(header(1000, 0)),
        Err(DecodeError::UnknownApiKey {
            api_key: 1000,
            api_version: 0,
            correlation_id: 31337
        })
    );
    assert_eq!(
        decode_request(header(-1, 0)).unwrap_err().correlation_id(),
        Some(31337)
    );
    // Produce v0-v2 were dropped from kafka-protocol; ApiVersions v6 doesn't exist yet.
    for (key, version) in [
        (ApiKey::Produce, 2),
        (ApiKey::ApiVersions, 6),
        (ApiKey::Metadata, -1),
    ] {
        assert_eq!(
            decode_request(header(key as i16, version)),
            Err(DecodeError::UnsupportedVersion {
                api_key: key,
                api_version: version,
                correlation_id: 31337
            })
        );
    }
}

#[test]
fn truncated_requests_are_malformed_not_panics() {
    let full = common::create_topics(5).encode_body().expect("encodes");
    for len in 8..full.len() {
        match decode_request(full.slice(..len)) {
            Err(DecodeError::Malformed {
                api_key,
                api_version,
                correlation_id,
                ..
            }) => {
                assert_eq!(
                    (api_key, api_version, correlation_id),
                    (ApiKey::CreateTopics, 5, 15)
                );
            }
            other => panic!("truncated to {len} bytes: {other:?}"),
        }
    }
}

#[test]
fn invalid_utf8_client_id_is_malformed() {
    let mut frame = BytesMut::new();
    frame.put_i16(ApiKey::Metadata as i16);
    frame.put_i16(1);
    frame.put_i32(8);
    frame.put_i16(2);
    frame.put_slice(&[0xff, 0xfe]);
    frame.put_i32(-1);
    assert!(matches!(
        decode_request(frame.freeze()),
        Err(DecodeError::Malformed {
            correlation_id: 8,
            ..
        })
    ));
}

#[test]
fn decoded_strings_share_the_frame_buffer() {
    let mut buf = BytesMut::new();
    let header = RequestHeader::default()
        .with_request_api_key(ApiKey::Metadata as i16)
        .with_request_api_version(1)
        .with_correlation_id(1)
        .with_client_id(Some(StrBytes::from_static_str("zero-copy-client")));
    header.encode(&mut buf, 1).expect("header encodes");
    buf.put_i32(-1);
    let frame = buf.freeze();
    let range = frame.as_ptr_range();
    let request = decode_request(frame.clone()).expect("decodes");
    let client_id = request.header.client_id.expect("client id present");
    assert!(range.contains(&client_id.as_ptr()), "client id was copied");
}
