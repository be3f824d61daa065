//! Property tests: the batch decoders return errors on garbage, never panic, and the builder's
//! output round-trips through validation and record iteration.

use kraftwerk_storage::batch::{
    build_batch, recompute_crc, records, set_base_offset, set_log_append_time,
    set_partition_leader_epoch, validate_batch, validate_batches, BatchBuilder, BatchHeader,
    KeyValue,
};
use proptest::prelude::*;

/// Runs every decoder over `buf`, consuming all output; the only assertion is "no panic" plus
/// internal consistency of what validation accepts.
fn exercise_decoders(buf: &[u8]) {
    let _ = BatchHeader::parse(buf).map(|h| (h.total_size(), h.last_offset()));
    if let Ok(infos) = validate_batches(buf, usize::MAX) {
        let mut end = 0;
        for info in &infos {
            assert_eq!(info.position, end);
            end = info.range().end;
            assert!(info.records_count > 0);
        }
        assert_eq!(end, buf.len());
    }
    let _ = validate_batch(buf, 1 << 20);
    if let Ok(iter) = records(buf) {
        for record in iter.take(100_000).flatten() {
            let _ = record.headers.iter().count();
        }
    }
    let mut copy = buf.to_vec();
    let _ = set_base_offset(&mut copy, 5);
    let _ = set_partition_leader_epoch(&mut copy, 5);
    let _ = set_log_append_time(&mut copy, 5);
    let _ = recompute_crc(&mut copy);
}

/// An owned (key, value) record.
type OwnedRecord = (Option<Vec<u8>>, Option<Vec<u8>>);

fn record_strategy() -> impl Strategy<Value = OwnedRecord> {
    (
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..200)),
    )
}

fn build(base: i64, ts: i64, recs: &[OwnedRecord]) -> Vec<u8> {
    let kv: Vec<KeyValue<'_>> = recs
        .iter()
        .map(|(k, v)| (k.as_deref(), v.as_deref()))
        .collect();
    build_batch(base, 3, ts, &kv)
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Truncate(usize),
    Insert(usize, Vec<u8>),
    SetI32(usize, i32),
}

fn mutation_strategy() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(i, b)| Mutation::Flip(i, b)),
        any::<usize>().prop_map(Mutation::Truncate),
        (
            any::<usize>(),
            proptest::collection::vec(any::<u8>(), 1..16)
        )
            .prop_map(|(i, v)| Mutation::Insert(i, v)),
        (any::<usize>(), any::<i32>()).prop_map(|(i, v)| Mutation::SetI32(i, v)),
    ]
}

fn apply(buf: &mut Vec<u8>, m: &Mutation) {
    if buf.is_empty() {
        return;
    }
    match m {
        Mutation::Flip(i, b) => {
            let i = i % buf.len();
            buf[i] ^= b;
        }
        Mutation::Truncate(n) => buf.truncate(n % buf.len()),
        Mutation::Insert(i, bytes) => {
            let i = i % buf.len();
            buf.splice(i..i, bytes.iter().copied());
        }
        Mutation::SetI32(i, v) => {
            if buf.len() >= 4 {
                let i = i % (buf.len() - 3);
                buf[i..i + 4].copy_from_slice(&v.to_be_bytes());
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn random_bytes_never_panic(buf in proptest::collection::vec(any::<u8>(), 0..600)) {
        exercise_decoders(&buf);
    }

    #[test]
    fn random_bytes_behind_a_valid_header_never_panic(
        body in proptest::collection::vec(any::<u8>(), 0..400),
        count in -3i32..50,
    ) {
        // A header that passes framing checks, followed by garbage records; CRC recomputed so
        // validation may pass and record decoding sees the garbage.
        let mut buf = build(0, 1, &[(None, Some(vec![1]))]);
        buf.truncate(61);
        buf.extend_from_slice(&body);
        let len = (buf.len() - 12) as i32;
        buf[8..12].copy_from_slice(&len.to_be_bytes());
        buf[57..61].copy_from_slice(&count.to_be_bytes());
        buf[23..27].copy_from_slice(&(count - 1).to_be_bytes());
        recompute_crc(&mut buf).unwrap();
        exercise_decoders(&buf);
    }

    #[test]
    fn mutated_batches_never_panic(
        recs in proptest::collection::vec(record_strategy(), 1..8),
        mutations in proptest::collection::vec(mutation_strategy(), 1..4),
        fix_crc in any::<bool>(),
    ) {
        let mut buf = build(100, 1_000, &recs);
        buf.extend(build(108, 1_001, &recs));
        for m in &mutations {
            apply(&mut buf, m);
        }
        if fix_crc {
            let _ = recompute_crc(&mut buf);
        }
        exercise_decoders(&buf);
    }

    #[test]
    fn built_batches_round_trip(
        base in 0i64..1 << 40,
        ts in 0i64..1 << 42,
        recs in proptest::collection::vec(record_strategy(), 1..20),
    ) {
        let buf = build(base, ts, &recs);
        let info = validate_batch(&buf, usize::MAX).unwrap();
        prop_assert_eq!(info.size, buf.len());
        prop_assert_eq!(info.base_offset, base);
        prop_assert_eq!(info.records_count as usize, recs.len());
        let decoded: Vec<_> = records(&buf).unwrap().map(|r| r.unwrap()).collect();
        prop_assert_eq!(decoded.len(), recs.len());
        for (i, (rec, (k, v))) in decoded.iter().zip(&recs).enumerate() {
            prop_assert_eq!(rec.offset, base + i as i64);
            prop_assert_eq!(rec.timestamp, ts);
            prop_assert_eq!(rec.key, k.as_deref());
            prop_assert_eq!(rec.value, v.as_deref());
        }
    }

    #[test]
    fn builder_timestamps_and_headers_round_trip(
        stamps in proptest::collection::vec(-5i64..1 << 45, 1..10),
        header_value in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..10)),
    ) {
        let mut builder = BatchBuilder::new(0, 0);
        for &t in &stamps {
            builder
                .push(t, Some(b"k"), None, &[(b"h".as_slice(), header_value.as_deref())])
                .unwrap();
        }
        let buf = builder.build();
        let info = validate_batch(&buf, usize::MAX).unwrap();
        prop_assert_eq!(info.max_timestamp, *stamps.iter().max().unwrap());
        for (rec, &t) in records(&buf).unwrap().zip(&stamps) {
            let rec = rec.unwrap();
            prop_assert_eq!(rec.timestamp, t);
            let headers: Vec<_> = rec.headers.iter().collect();
            prop_assert_eq!(headers, vec![(b"h".as_slice(), header_value.as_deref())]);
        }
    }
}
