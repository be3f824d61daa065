//! Unit tests for the batch codec, using batches from the builder.

use super::*;

fn sample(base_offset: i64, n: usize) -> Vec<u8> {
    let keys: Vec<Vec<u8>> = (0..n).map(|i| format!("k{i}").into_bytes()).collect();
    let values: Vec<Vec<u8>> = (0..n).map(|i| vec![i as u8; 10 + i]).collect();
    let recs: Vec<KeyValue<'_>> = keys
        .iter()
        .zip(&values)
        .map(|(k, v)| (Some(k.as_slice()), Some(v.as_slice())))
        .collect();
    build_batch(base_offset, 7, 1_000, &recs)
}

#[test]
fn built_batch_validates_with_expected_fields() {
    let batch = sample(42, 3);
    let infos = validate_batches(&batch, usize::MAX).unwrap();
    assert_eq!(infos.len(), 1);
    let info = &infos[0];
    assert_eq!(info.position, 0);
    assert_eq!(info.size, batch.len());
    assert_eq!(info.base_offset, 42);
    assert_eq!(info.last_offset(), 44);
    assert_eq!(info.records_count, 3);
    assert_eq!(info.partition_leader_epoch, 7);
    assert_eq!(info.max_timestamp, 1_000);
    assert_eq!(info.producer_id, -1);
    assert_eq!(info.compression, Compression::None);
    assert_eq!(info.timestamp_type, TimestampType::CreateTime);
    assert!(!info.is_transactional && !info.is_control);
}

#[test]
fn records_round_trip_with_headers_and_nulls() {
    let mut b = BatchBuilder::new(10, 0)
        .producer(5, 1, 100)
        .transactional(true);
    b.push(500, None, Some(b"v0"), &[]).unwrap();
    b.push(
        499,
        Some(b"key"),
        None,
        &[(b"h1".as_slice(), Some(b"x".as_slice())), (b"h2", None)],
    )
    .unwrap();
    b.push(510, Some(b""), Some(b""), &[]).unwrap();
    let batch = b.build();
    let info = validate_batch(&batch, usize::MAX).unwrap();
    assert_eq!(info.max_timestamp, 510);
    assert_eq!(info.base_timestamp, 500);
    assert!(info.is_transactional);
    assert_eq!(
        (info.producer_id, info.producer_epoch, info.base_sequence),
        (5, 1, 100)
    );
    let recs: Vec<Record<'_>> = records(&batch).unwrap().map(Result::unwrap).collect();
    assert_eq!(recs.len(), 3);
    assert_eq!(recs[0].offset, 10);
    assert_eq!(recs[0].key, None);
    assert_eq!(recs[0].value, Some(b"v0".as_slice()));
    assert_eq!(recs[1].timestamp, 499);
    assert_eq!(recs[1].value, None);
    let headers: Vec<_> = recs[1].headers.iter().collect();
    assert_eq!(
        headers,
        vec![
            (b"h1".as_slice(), Some(b"x".as_slice())),
            (b"h2".as_slice(), None)
        ]
    );
    assert_eq!(recs[2].offset, 12);
    assert_eq!(recs[2].key, Some(b"".as_slice()));
}

#[test]
fn concatenated_batches_report_positions() {
    let mut buf = sample(0, 2);
    let first = buf.len();
    buf.extend(sample(2, 5));
    let infos = validate_batches(&buf, usize::MAX).unwrap();
    assert_eq!(infos.len(), 2);
    assert_eq!(infos[1].position, first);
    assert_eq!(infos[1].range().end, buf.len());
    assert!(validate_batches(&[], 100).unwrap().is_empty());
}

#[test]
fn trailing_partial_batch_is_rejected() {
    let mut buf = sample(0, 2);
    let extra = sample(2, 2);
    buf.extend_from_slice(&extra[..extra.len() - 1]);
    assert!(matches!(
        validate_batches(&buf, usize::MAX),
        Err(BatchError::Truncated { .. })
    ));
    assert!(matches!(
        validate_batches(&buf[..5], usize::MAX),
        Err(BatchError::Truncated { .. })
    ));
}

#[test]
fn crc_magic_size_and_count_checks() {
    let batch = sample(0, 3);
    let mut flipped = batch.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    assert!(matches!(
        validate_batch(&flipped, usize::MAX),
        Err(BatchError::CrcMismatch { .. })
    ));

    let mut magic = batch.clone();
    magic[16] = 1;
    assert_eq!(
        validate_batch(&magic, usize::MAX),
        Err(BatchError::UnsupportedMagic(1))
    );

    assert_eq!(
        validate_batch(&batch, batch.len() - 1),
        Err(BatchError::TooLarge {
            size: batch.len(),
            max: batch.len() - 1
        })
    );

    let mut bad_delta = batch.clone();
    bad_delta[23..27].copy_from_slice(&5i32.to_be_bytes());
    recompute_crc(&mut bad_delta).unwrap();
    assert!(matches!(
        validate_batch(&bad_delta, usize::MAX),
        Err(BatchError::RecordCountMismatch { .. })
    ));

    let mut zero = batch.clone();
    zero[57..61].copy_from_slice(&0i32.to_be_bytes());
    recompute_crc(&mut zero).unwrap();
    assert_eq!(
        validate_batch(&zero, usize::MAX),
        Err(BatchError::InvalidRecordCount(0))
    );

    let mut short = batch.clone();
    short[8..12].copy_from_slice(&10i32.to_be_bytes());
    assert_eq!(
        validate_batch(&short, usize::MAX),
        Err(BatchError::InvalidLength(10))
    );
}

#[test]
fn base_offset_and_epoch_rewrites_keep_crc_valid() {
    let mut batch = sample(0, 4);
    set_base_offset(&mut batch, 1_000).unwrap();
    set_partition_leader_epoch(&mut batch, 9).unwrap();
    let info = validate_batch(&batch, usize::MAX).unwrap();
    assert_eq!(info.base_offset, 1_000);
    assert_eq!(info.last_offset(), 1_003);
    assert_eq!(info.partition_leader_epoch, 9);
    let offsets: Vec<i64> = records(&batch)
        .unwrap()
        .map(|r| r.unwrap().offset)
        .collect();
    assert_eq!(offsets, vec![1_000, 1_001, 1_002, 1_003]);
}

#[test]
fn log_append_time_rewrite_sets_type_and_timestamps() {
    let mut batch = sample(0, 2);
    set_log_append_time(&mut batch, 77_777).unwrap();
    let info = validate_batch(&batch, usize::MAX).unwrap();
    assert_eq!(info.timestamp_type, TimestampType::LogAppendTime);
    assert_eq!(info.max_timestamp, 77_777);
    assert!(records(&batch)
        .unwrap()
        .all(|r| r.unwrap().timestamp == 77_777));
}

#[test]
fn log_append_time_stamped_in_a_header_copy_matches_the_whole_batch_rewrite() {
    let mut whole = sample(0, 3);
    let original = whole.clone();
    set_log_append_time(&mut whole, 55_555).unwrap();
    let (header, rest) = original.split_first_chunk::<HEADER_SIZE>().unwrap();
    let mut header = *header;
    stamp_log_append_time(&mut header, rest, 55_555).unwrap();
    assert_eq!(&whole[..HEADER_SIZE], &header[..]);
    assert_eq!(&whole[HEADER_SIZE..], rest);
    // A rest of the wrong length is refused, not stamped with a CRC over other bytes.
    assert!(matches!(
        stamp_log_append_time(&mut header, &rest[1..], 1),
        Err(BatchError::Truncated { .. })
    ));
}

#[test]
fn control_and_compressed_flags() {
    let mut b = BatchBuilder::new(0, 0).control(true);
    b.push(1, Some(b"\0\0\0\0"), Some(b""), &[]).unwrap();
    let mut batch = b.build();
    assert!(validate_batch(&batch, usize::MAX).unwrap().is_control);
    // Pretend it is gzip: batch-level validation still passes, record iteration refuses.
    batch[22] |= 1;
    recompute_crc(&mut batch).unwrap();
    let info = validate_batch(&batch, usize::MAX).unwrap();
    assert_eq!(info.compression, Compression::Gzip);
    assert!(matches!(records(&batch), Err(BatchError::Compressed)));
    batch[22] |= 7;
    recompute_crc(&mut batch).unwrap();
    assert_eq!(
        validate_batch(&batch, usize::MAX),
        Err(BatchError::UnknownCompression(7))
    );
}

#[test]
fn empty_builder_builds_nothing() {
    assert!(build_batch(0, 0, 0, &[]).is_empty());
    assert!(BatchBuilder::new(0, 0).build().is_empty());
}

#[test]
fn record_iterator_reports_garbage_instead_of_panicking() {
    let mut batch = sample(0, 3);
    // Corrupt the first record's length varint into an overlong one.
    for b in &mut batch[61..67] {
        *b = 0xff;
    }
    let results: Vec<_> = records(&batch).unwrap().collect();
    assert_eq!(results.len(), 1);
    assert!(results[0].is_err());
}
