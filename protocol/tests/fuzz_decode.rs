//! Hostile input: random bytes and mutated valid requests for every api key go through `FrameDecoder` and
//! `decode_request`. They must come back as errors (or, by luck, valid requests), never as panics, and the
//! memory a decode asks for must stay proportional to the frame, whatever array counts the bytes claim.
//!
//! A tracking allocator records, per thread, the largest single allocation and the total bytes allocated
//! while a decode runs. Without the `third_party/kafka-protocol` patch an array count of 0x7fffffff makes
//! `Vec::with_capacity` ask for gigabytes, which these bounds catch (or the allocation aborts the run).

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::OnceLock;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::ApiKey;
use kraftwerk_protocol::frame::{FrameDecoder, FrameError};
use kraftwerk_protocol::request::{decode_request, DecodeError};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

struct TrackingAllocator;

thread_local! {
    static TRACKING: Cell<bool> = const { Cell::new(false) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
    static TOTAL: Cell<usize> = const { Cell::new(0) };
}

fn note_allocation(size: usize) {
    let _ = TRACKING.try_with(|tracking| {
        if tracking.get() {
            let _ = LARGEST.try_with(|largest| largest.set(largest.get().max(size)));
            let _ = TOTAL.try_with(|total| total.set(total.get().saturating_add(size)));
        }
    });
}

// SAFETY: every call is forwarded unchanged to the system allocator; we only count sizes.
unsafe impl GlobalAlloc for TrackingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: TrackingAllocator = TrackingAllocator;

/// What one decode allocated.
#[derive(Debug, Clone, Copy)]
struct Allocated {
    largest: usize,
    total: usize,
}

/// The most a decode of `frame_len` bytes may allocate: a generous constant factor per input byte (the
/// largest decoded element types are a few hundred bytes) plus a fixed allowance. An unbounded
/// `with_capacity(0x7fffffff)` exceeds it by orders of magnitude for every frame these tests build.
fn allocation_bound(frame_len: usize) -> usize {
    1024 * frame_len + (64 << 10)
}

/// Runs `decode_request` on `frame`, returning whether it decoded and what it allocated.
fn decode_tracked(frame: Bytes) -> (Result<(), DecodeError>, Allocated) {
    LARGEST.with(|c| c.set(0));
    TOTAL.with(|c| c.set(0));
    TRACKING.with(|c| c.set(true));
    let result = decode_request(frame).map(drop);
    TRACKING.with(|c| c.set(false));
    let allocated = Allocated {
        largest: LARGEST.with(Cell::get),
        total: TOTAL.with(Cell::get),
    };
    (result, allocated)
}

/// Decodes `body` (a frame body without prefix), checking the error carries the fixed header's fields and
/// the allocations stay bounded.
fn check_body(body: Bytes) -> Allocated {
    let len = body.len();
    let fixed = body.first_chunk::<8>().copied();
    let (result, allocated) = decode_tracked(body);
    assert!(
        allocated.total <= allocation_bound(len),
        "{len}-byte frame allocated {allocated:?} (bound {})",
        allocation_bound(len)
    );
    match (result, fixed) {
        (Err(DecodeError::TooShort), None) | (Ok(()), Some(_)) => {}
        (Err(err), Some(fixed)) => {
            let correlation_id = i32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]);
            assert_eq!(err.correlation_id(), Some(correlation_id), "{err}");
        }
        (other, fixed) => panic!("{other:?} for fixed header {fixed:?}"),
    }
    allocated
}

/// Every sample's encoded body (header + request, no size prefix); decoded once per test binary.
fn seeds() -> &'static [Bytes] {
    static SEEDS: OnceLock<Vec<Bytes>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        common::every_api_sample()
            .iter()
            .map(|s| s.encode_body().expect("seed samples encode"))
            .collect()
    })
}

/// The largest 32-bit array count, as a classic INT32 count and as a compact UNSIGNED_VARINT count.
const HUGE_INT32: [u8; 4] = [0x7f, 0xff, 0xff, 0xff];
const HUGE_VARINT: [u8; 5] = [0xff, 0xff, 0xff, 0xff, 0x0f];

fn overwrite(seed: &Bytes, pos: usize, bytes: &[u8]) -> Bytes {
    let mut out = BytesMut::from(&seed[..]);
    for (i, b) in bytes.iter().enumerate() {
        if let Some(slot) = out.get_mut(pos + i) {
            *slot = *b;
        }
    }
    out.freeze()
}

fn insert(seed: &Bytes, pos: usize, bytes: &[u8]) -> Bytes {
    let pos = pos.min(seed.len());
    let mut out = BytesMut::with_capacity(seed.len() + bytes.len());
    out.put_slice(&seed[..pos]);
    out.put_slice(bytes);
    out.put_slice(&seed[pos..]);
    out.freeze()
}

/// Huge counts at every position after the fixed header of every seed (every api key and version),
/// overwritten and inserted, in both encodings. Exhaustive rather than sampled, since this is what the
/// allocation patch exists for.
#[test]
fn huge_array_counts_anywhere_stay_bounded() {
    let mut decodes = 0usize;
    let mut worst_ratio = 0.0f64;
    let mut largest_seen = 0usize;
    for seed in seeds() {
        for pos in 8..seed.len() {
            for mutated in [
                overwrite(seed, pos, &HUGE_INT32),
                overwrite(seed, pos, &HUGE_VARINT),
                insert(seed, pos, &HUGE_INT32),
                insert(seed, pos, &HUGE_VARINT),
            ] {
                let len = mutated.len();
                let allocated = check_body(mutated);
                decodes += 1;
                largest_seen = largest_seen.max(allocated.largest);
                worst_ratio = worst_ratio.max(allocated.total as f64 / len as f64);
            }
        }
    }
    println!(
        "{decodes} huge-count decodes; largest single allocation {largest_seen} bytes; \
         worst total/frame ratio {worst_ratio:.1}"
    );
    assert!(decodes > 10_000, "only {decodes} decodes");
}

/// The tracker itself works: an allocation the size the unpatched decoder would make is seen and
/// exceeds the bound.
#[test]
fn tracker_sees_large_allocations() {
    TOTAL.with(|c| c.set(0));
    TRACKING.with(|c| c.set(true));
    let v: Vec<u8> = Vec::with_capacity(allocation_bound(100) + 1);
    TRACKING.with(|c| c.set(false));
    drop(v);
    assert!(TOTAL.with(Cell::get) > allocation_bound(100));
}

#[derive(Debug, Clone)]
enum Mutation {
    FlipBit { pos: usize, bit: u8 },
    Truncate { len: usize },
    OverwriteHugeInt32 { pos: usize },
    InsertHugeVarint { pos: usize },
    SetByte { pos: usize, value: u8 },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(pos, bit)| Mutation::FlipBit { pos, bit }),
        any::<usize>().prop_map(|len| Mutation::Truncate { len }),
        any::<usize>().prop_map(|pos| Mutation::OverwriteHugeInt32 { pos }),
        any::<usize>().prop_map(|pos| Mutation::InsertHugeVarint { pos }),
        (any::<usize>(), any::<u8>()).prop_map(|(pos, value)| Mutation::SetByte { pos, value }),
    ]
}

fn apply(seed: &Bytes, mutations: &[Mutation]) -> Bytes {
    let mut out = seed.clone();
    for m in mutations {
        let at = |pos: usize| pos % out.len().max(1);
        out = match *m {
            Mutation::FlipBit { pos, bit } => {
                let pos = at(pos);
                let value = out.get(pos).map_or(0, |b| b ^ (1 << bit));
                overwrite(&out, pos, &[value])
            }
            Mutation::Truncate { len } => out.slice(..len % (out.len() + 1)),
            Mutation::OverwriteHugeInt32 { pos } => overwrite(&out, at(pos), &HUGE_INT32),
            Mutation::InsertHugeVarint { pos } => insert(&out, at(pos), &HUGE_VARINT),
            Mutation::SetByte { pos, value } => overwrite(&out, at(pos), &[value]),
        };
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 2000,
        // Integration tests have no lib.rs for proptest's default to anchor on; keep failures here.
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/proptest-regressions/fuzz_decode.txt",
        ))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        check_body(Bytes::from(body));
    }

    /// A valid fixed header for a known api and decodable version, so the body decoder sees the noise.
    #[test]
    fn random_body_after_a_valid_header_never_panics(
        key_index in 0usize..200,
        version_pick in any::<u16>(),
        correlation_id in any::<i32>(),
        tail in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        let keys: Vec<ApiKey> = ApiKey::iter().collect();
        let key = keys[key_index % keys.len()];
        let valid = key.valid_versions();
        let span = (valid.max - valid.min + 1) as u16;
        let version = valid.min + (version_pick % span) as i16;
        let mut body = BytesMut::new();
        body.put_i16(key as i16);
        body.put_i16(version);
        body.put_i32(correlation_id);
        body.put_slice(&tail);
        check_body(body.freeze());
    }

    #[test]
    fn mutated_valid_requests_never_panic(
        seed_pick in any::<usize>(),
        mutations in proptest::collection::vec(mutation(), 1..6),
    ) {
        let seeds = seeds();
        let seed = &seeds[seed_pick % seeds.len()];
        check_body(apply(seed, &mutations));
    }

    /// A random byte stream, delivered in random chunks: the decoder hands out frames no larger than its
    /// limit, stops for good at the first bad prefix, and every frame goes through `decode_request`.
    #[test]
    fn frame_decoder_on_random_streams(
        stream in proptest::collection::vec(any::<u8>(), 0..2048),
        chunks in proptest::collection::vec(1usize..64, 1..64),
        max in 0usize..256,
    ) {
        let decoder = FrameDecoder::new(max);
        let mut buf = BytesMut::new();
        let mut rest = &stream[..];
        let mut consumed = 0usize;
        'feed: for chunk in chunks.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (now, later) = rest.split_at((*chunk).min(rest.len()));
            buf.put_slice(now);
            rest = later;
            loop {
                match decoder.decode(&mut buf) {
                    Ok(Some(frame)) => {
                        prop_assert!(frame.len() <= max);
                        consumed += 4 + frame.len();
                        check_body(frame);
                    }
                    Ok(None) => break,
                    Err(FrameError::TooLarge { size, max: m }) => {
                        prop_assert_eq!(m, max);
                        prop_assert!(size > max as i64);
                        break 'feed;
                    }
                    Err(FrameError::NegativeSize(size)) => {
                        prop_assert!(size < 0);
                        break 'feed;
                    }
                }
            }
        }
        prop_assert!(consumed <= stream.len());
    }

    /// Valid frames split at arbitrary points come out whole and in order.
    #[test]
    fn valid_frames_survive_arbitrary_splits(
        picks in proptest::collection::vec(any::<usize>(), 1..8),
        split_points in proptest::collection::vec(any::<usize>(), 0..16),
    ) {
        let seeds = seeds();
        let chosen: Vec<&Bytes> = picks.iter().map(|p| &seeds[p % seeds.len()]).collect();
        let mut stream = Vec::new();
        for body in &chosen {
            stream.extend_from_slice(&(body.len() as i32).to_be_bytes());
            stream.extend_from_slice(body);
        }
        let mut cuts: Vec<usize> = split_points.iter().map(|p| p % (stream.len() + 1)).collect();
        cuts.push(stream.len());
        cuts.sort_unstable();
        let decoder = FrameDecoder::new(1 << 20);
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        let mut from = 0;
        for cut in cuts {
            buf.put_slice(&stream[from..cut]);
            from = cut;
            while let Some(frame) = decoder.decode(&mut buf).expect("valid prefixes") {
                out.push(frame);
            }
        }
        prop_assert_eq!(out.len(), chosen.len());
        for (frame, body) in out.iter().zip(&chosen) {
            prop_assert_eq!(frame, *body);
            prop_assert!(decode_request(frame.clone()).is_ok());
        }
    }
}
