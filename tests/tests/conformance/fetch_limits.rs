//! How much a Fetch answer holds, against Apache Kafka: both brokers get the same log (two partitions of
//! 100 KB batches, rolling a 1 MiB segment after ten of them) and the same fetches with limits that cut
//! batches, fall inside the first batch, are shared between partitions or reach a segment's end. Consumers'
//! throughput rests on these answers (a broker that stops short of the limits makes every client fetch
//! more often), so the records of each answer are compared: the batches it holds whole, the bytes of the
//! batch cut at the limit, and a checksum of all of it.

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, ProduceRequest};
use sha2::{Digest, Sha256};

use super::{batch, check, creatable, create_on_both, produce_pair, topic_ids, topic_name};
use kraftwerk_tests::conformance::Pair;

const TOPIC: &str = "conf-fetch-limits";
/// Batches per partition: ten fill the first 1 MiB segment, the rest start the second.
const BATCHES: i64 = 14;
const RECORDS_PER_BATCH: i64 = 10;
/// Value size: a batch is a little over 100,000 bytes.
const VALUE_LEN: usize = 10_000;
const MIB: i32 = 1 << 20;

/// One fetch: (partition, fetch offset, partition max bytes) in request order, and the request's max bytes.
struct Case {
    name: &'static str,
    partitions: &'static [(i32, i64, i32)],
    max_bytes: i32,
}

const CASES: &[Case] = &[
    Case {
        name: "fetch limits: partition limit cuts the third batch",
        partitions: &[(0, 0, 250_000)],
        max_bytes: MIB,
    },
    Case {
        name: "fetch limits: offset inside a batch",
        partitions: &[(0, 15, 250_000)],
        max_bytes: MIB,
    },
    Case {
        name: "fetch limits: partition limit below the first batch",
        partitions: &[(0, 0, 50_000)],
        max_bytes: MIB,
    },
    Case {
        name: "fetch limits: partition limit zero",
        partitions: &[(0, 0, 0)],
        max_bytes: MIB,
    },
    Case {
        name: "fetch limits: request limit shared by two partitions",
        partitions: &[(0, 0, MIB), (1, 0, MIB)],
        max_bytes: 300_000,
    },
    Case {
        name: "fetch limits: request limit below the first batch",
        partitions: &[(0, 0, MIB), (1, 0, MIB)],
        max_bytes: 50_000,
    },
    Case {
        name: "fetch limits: second partition gets what the first left",
        partitions: &[(0, 130, MIB), (1, 0, MIB)],
        max_bytes: 500_000,
    },
    Case {
        name: "fetch limits: first partition at its end, second below the first batch",
        partitions: &[(1, 140, MIB), (0, 0, 50_000)],
        max_bytes: MIB,
    },
    Case {
        name: "fetch limits: read stops at the segment's end",
        partitions: &[(0, 60, 10 * MIB)],
        max_bytes: 10 * MIB,
    },
    Case {
        name: "fetch limits: read from the second segment",
        partitions: &[(0, 100, 10 * MIB)],
        max_bytes: 10 * MIB,
    },
    Case {
        name: "fetch limits: both partitions whole first segments",
        partitions: &[(0, 0, 10 * MIB), (1, 0, 10 * MIB)],
        max_bytes: 50 * MIB,
    },
];

pub fn fetch_limits(pair: &mut Pair) {
    create_on_both(
        pair,
        vec![creatable(TOPIC, 2, 1, &[("segment.bytes", "1048576")])],
    );
    let pv = check("Produce version", pair.max_version::<ProduceRequest>());
    for partition in 0..2 {
        for b in 0..BATCHES {
            let timestamps: Vec<i64> = (0..RECORDS_PER_BATCH)
                .map(|r| 1_000 + b * RECORDS_PER_BATCH + r)
                .collect();
            let (ka, kw) = produce_pair(
                pair,
                pv,
                TOPIC,
                partition,
                -1,
                batch(&timestamps, VALUE_LEN),
            );
            let (a, b) = check("Produce (fetch limits)", pair.both_each(pv, &ka, &kw));
            for r in a.responses.iter().chain(&b.responses) {
                assert_eq!(r.partition_responses[0].error_code, 0, "produce");
            }
        }
    }
    let (ka, kw) = topic_ids(pair, TOPIC);
    for v in pair.versions::<FetchRequest>() {
        for case in CASES {
            let a = request(v, ka, case);
            let b = request(v, kw, case);
            let (kafka, _) = check(
                case.name,
                pair.exchange_each_with(case.name, v, &a, &b, |x, y| {
                    summarise(x);
                    summarise(y);
                }),
            );
            // The scenario must exercise what it names: the log is as planned on Kafka's side.
            let first = &kafka.responses[0].partitions[0];
            assert_eq!(
                first.error_code, 0,
                "{}: Kafka answered an error",
                case.name
            );
        }
    }
}

fn request(v: i16, id: uuid::Uuid, case: &Case) -> FetchRequest {
    let partitions = case
        .partitions
        .iter()
        .map(|&(partition, offset, max)| {
            let mut p = FetchPartition::default()
                .with_partition(partition)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(max);
            if v >= 9 {
                p.current_leader_epoch = -1;
            }
            if v >= 5 {
                p.log_start_offset = -1;
            }
            p
        })
        .collect();
    let mut t = FetchTopic::default().with_partitions(partitions);
    if v >= 13 {
        t.topic_id = id;
    } else {
        t.topic = topic_name(TOPIC);
    }
    let mut req = FetchRequest::default()
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(case.max_bytes)
        .with_topics(vec![t]);
    if v < 15 {
        req.replica_id = BrokerId(-1);
    }
    if v >= 7 {
        req.session_epoch = -1;
    }
    req
}

/// Replaces each partition's records with what they hold, so a difference reads as a few words instead of
/// a megabyte of bytes: `<len> bytes: batches [<base>-<last> (<size>), ...], cut batch <n> bytes, sha256 <first 8 bytes>`.
fn summarise(resp: &mut FetchResponse) {
    for t in &mut resp.responses {
        for p in &mut t.partitions {
            if let Some(records) = &p.records {
                p.records = Some(Bytes::from(describe(records)));
            }
        }
    }
}

fn describe(records: &[u8]) -> String {
    let mut batches = Vec::new();
    let mut rest = records;
    while rest.len() >= 27 {
        let base = i64::from_be_bytes(rest[0..8].try_into().expect("8 bytes"));
        let len = i32::from_be_bytes(rest[8..12].try_into().expect("4 bytes"));
        let last_delta = i32::from_be_bytes(rest[23..27].try_into().expect("4 bytes"));
        let size = 12 + usize::try_from(len).unwrap_or(usize::MAX - 12);
        if size > rest.len() {
            break;
        }
        batches.push(format!("{base}-{} ({size})", base + i64::from(last_delta)));
        rest = &rest[size..];
    }
    format!(
        "{} bytes: batches [{}], cut batch {} bytes, sha256 {}",
        records.len(),
        batches.join(", "),
        rest.len(),
        hex8(&Sha256::digest(records))
    )
}

fn hex8(digest: &[u8]) -> String {
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}
