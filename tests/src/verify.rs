//! Checkers that compare what a producer was told (acknowledgements) with what a consumer reads back.
//!
//! They are plain functions over plain data, so their own tests below can feed them broken logs and
//! prove that they fail: a durability test whose checker cannot fail proves nothing.

use std::collections::BTreeMap;
use std::fmt;

/// A record's key and value as stored (None = null).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
}

impl StoredRecord {
    /// A record with both key and value set.
    pub fn new(key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Self {
        StoredRecord {
            key: Some(key.into()),
            value: Some(value.into()),
        }
    }
}

/// One acknowledged send: the producer's send sequence number and where the broker said it landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acked {
    pub seq: u64,
    pub partition: i32,
    pub offset: i64,
    pub record: StoredRecord,
}

/// What was read back, keyed by (partition, offset).
pub type ConsumedLog = BTreeMap<(i32, i64), StoredRecord>;

/// One way the log disagrees with the acknowledgements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// An acknowledged record is not in the log at its offset.
    Missing {
        seq: u64,
        partition: i32,
        offset: i64,
    },
    /// Something else sits at an acknowledged offset.
    Different {
        seq: u64,
        partition: i32,
        offset: i64,
        expected: StoredRecord,
        found: StoredRecord,
    },
    /// Two acknowledgements claim the same offset.
    DuplicateAck { partition: i32, offset: i64 },
    /// Fewer sends were acknowledged than made.
    NotAllAcked { sent: usize, acked: usize },
    /// A partition's offsets do not run 0, 1, 2, ...
    Gap {
        partition: i32,
        expected: i64,
        found: i64,
    },
    /// The log holds records nobody acknowledged.
    Extra { partition: i32, offset: i64 },
    /// A later send got a lower offset than an earlier one in the same partition.
    OutOfOrder {
        partition: i32,
        earlier_seq: u64,
        earlier_offset: i64,
        later_seq: u64,
        later_offset: i64,
    },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::Missing {
                seq,
                partition,
                offset,
            } => write!(f, "send #{seq} acked at {partition}@{offset} is missing"),
            Violation::Different {
                seq,
                partition,
                offset,
                expected,
                found,
            } => write!(
                f,
                "send #{seq} acked at {partition}@{offset}: expected {} found {}",
                show(expected),
                show(found)
            ),
            Violation::DuplicateAck { partition, offset } => {
                write!(f, "two acks for {partition}@{offset}")
            }
            Violation::NotAllAcked { sent, acked } => {
                write!(f, "{acked} of {sent} sends acknowledged")
            }
            Violation::Gap {
                partition,
                expected,
                found,
            } => write!(
                f,
                "partition {partition}: expected offset {expected}, found {found}"
            ),
            Violation::Extra { partition, offset } => {
                write!(f, "unacknowledged record at {partition}@{offset}")
            }
            Violation::OutOfOrder {
                partition,
                earlier_seq,
                earlier_offset,
                later_seq,
                later_offset,
            } => write!(
                f,
                "partition {partition}: send #{earlier_seq} at offset {earlier_offset} but later \
                 send #{later_seq} at {later_offset}"
            ),
        }
    }
}

fn show(r: &StoredRecord) -> String {
    let part = |b: &Option<Vec<u8>>| match b {
        Some(b) if b.len() > 40 => format!(
            "{:?}..({} bytes)",
            String::from_utf8_lossy(&b[..40]),
            b.len()
        ),
        Some(b) => format!("{:?}", String::from_utf8_lossy(b)),
        None => "null".to_string(),
    };
    format!("(key {}, value {})", part(&r.key), part(&r.value))
}

/// Gives each acknowledgement without an offset (negative: librdkafka's idempotent producer reports a batch
/// whose request failed as delivered, offset unknown, once a later batch of the same partition succeeds,
/// since that proves the broker accepted the earlier sequence) the offset where the log holds its record
/// (values are unique per send). One the log does not hold keeps its negative offset and is reported
/// missing.
pub fn resolve_unknown_offsets(acked: &[Acked], log: &ConsumedLog) -> Vec<Acked> {
    acked
        .iter()
        .map(|a| {
            if a.offset >= 0 {
                return a.clone();
            }
            let found = log
                .range((a.partition, 0)..=(a.partition, i64::MAX))
                .find(|(_, r)| **r == a.record)
                .map(|(&(_, offset), _)| offset);
            Acked {
                offset: found.unwrap_or(a.offset),
                ..a.clone()
            }
        })
        .collect()
}

/// Every acknowledged record must be in `log` at exactly its acknowledged offset (the durability
/// promise of acks=all). Records in the log that nobody acknowledged are allowed here: a send can be
/// written and then lose its acknowledgement in a crash.
pub fn check_acked_present(acked: &[Acked], log: &ConsumedLog) -> Vec<Violation> {
    let acked = &resolve_unknown_offsets(acked, log);
    let mut violations = Vec::new();
    let mut seen = BTreeMap::new();
    for a in acked {
        if seen.insert((a.partition, a.offset), a.seq).is_some() {
            violations.push(Violation::DuplicateAck {
                partition: a.partition,
                offset: a.offset,
            });
        }
        match log.get(&(a.partition, a.offset)) {
            None => violations.push(Violation::Missing {
                seq: a.seq,
                partition: a.partition,
                offset: a.offset,
            }),
            Some(found) if *found != a.record => violations.push(Violation::Different {
                seq: a.seq,
                partition: a.partition,
                offset: a.offset,
                expected: a.record.clone(),
                found: found.clone(),
            }),
            Some(_) => {}
        }
    }
    violations
}

/// The log must hold exactly the `sent` sends, all acknowledged, at their acknowledged offsets, each
/// partition's offsets contiguous from 0, and in send order within a partition.
pub fn check_exact(sent: usize, acked: &[Acked], log: &ConsumedLog) -> Vec<Violation> {
    let acked = &resolve_unknown_offsets(acked, log);
    let mut violations = Vec::new();
    if acked.len() != sent {
        violations.push(Violation::NotAllAcked {
            sent,
            acked: acked.len(),
        });
    }
    violations.extend(check_acked_present(acked, log));

    let mut expected_next: BTreeMap<i32, i64> = BTreeMap::new();
    for &(partition, offset) in log.keys() {
        let next = expected_next.entry(partition).or_insert(0);
        if offset != *next {
            violations.push(Violation::Gap {
                partition,
                expected: *next,
                found: offset,
            });
        }
        *next = offset + 1;
    }
    let acked_at: BTreeMap<(i32, i64), u64> = acked
        .iter()
        .map(|a| ((a.partition, a.offset), a.seq))
        .collect();
    for &(partition, offset) in log.keys() {
        if !acked_at.contains_key(&(partition, offset)) {
            violations.push(Violation::Extra { partition, offset });
        }
    }

    let mut by_partition: BTreeMap<i32, Vec<&Acked>> = BTreeMap::new();
    for a in acked {
        by_partition.entry(a.partition).or_default().push(a);
    }
    for (partition, mut list) in by_partition {
        list.sort_by_key(|a| a.seq);
        for pair in list.windows(2) {
            if let [earlier, later] = pair {
                if later.offset <= earlier.offset {
                    violations.push(Violation::OutOfOrder {
                        partition,
                        earlier_seq: earlier.seq,
                        earlier_offset: earlier.offset,
                        later_seq: later.seq,
                        later_offset: later.offset,
                    });
                }
            }
        }
    }
    violations
}

/// A readable summary of the first `limit` violations, for assertion messages.
pub fn summarize(violations: &[Violation], limit: usize) -> String {
    let mut out = format!("{} violation(s)", violations.len());
    for v in violations.iter().take(limit) {
        out.push_str("\n  ");
        out.push_str(&v.to_string());
    }
    if violations.len() > limit {
        out.push_str("\n  ...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ack(seq: u64, partition: i32, offset: i64) -> Acked {
        Acked {
            seq,
            partition,
            offset,
            record: StoredRecord::new(format!("k{seq}"), format!("v{seq}")),
        }
    }

    fn log_of(acks: &[Acked]) -> ConsumedLog {
        acks.iter()
            .map(|a| ((a.partition, a.offset), a.record.clone()))
            .collect()
    }

    fn good() -> Vec<Acked> {
        vec![ack(0, 0, 0), ack(1, 1, 0), ack(2, 0, 1), ack(3, 1, 1)]
    }

    #[test]
    fn a_faithful_log_passes_both_checks() {
        let acks = good();
        let log = log_of(&acks);
        assert_eq!(check_acked_present(&acks, &log), vec![]);
        assert_eq!(check_exact(4, &acks, &log), vec![]);
    }

    #[test]
    fn a_lost_acked_record_fails() {
        let acks = good();
        let mut log = log_of(&acks);
        log.remove(&(0, 1));
        let v = check_acked_present(&acks, &log);
        assert_eq!(
            v,
            vec![Violation::Missing {
                seq: 2,
                partition: 0,
                offset: 1
            }]
        );
    }

    #[test]
    fn a_record_at_the_wrong_offset_fails() {
        let acks = good();
        let mut log = log_of(&acks);
        log.insert((1, 1), StoredRecord::new("k1", "v1"));
        let v = check_acked_present(&acks, &log);
        assert!(
            matches!(v.as_slice(), [Violation::Different { seq: 3, .. }]),
            "{v:?}"
        );
    }

    #[test]
    fn a_changed_value_fails() {
        let acks = good();
        let mut log = log_of(&acks);
        log.insert((0, 0), StoredRecord::new("k0", "other"));
        assert_eq!(check_acked_present(&acks, &log).len(), 1);
    }

    #[test]
    fn unacked_extra_records_are_allowed_after_a_crash_but_not_in_an_exact_log() {
        let acks = good();
        let mut log = log_of(&acks);
        log.insert((0, 2), StoredRecord::new("x", "y"));
        assert_eq!(check_acked_present(&acks, &log), vec![]);
        assert_eq!(
            check_exact(4, &acks, &log),
            vec![Violation::Extra {
                partition: 0,
                offset: 2
            }]
        );
    }

    #[test]
    fn exact_check_catches_gaps_reordering_duplicates_and_missing_acks() {
        let acks = vec![ack(0, 0, 0), ack(1, 0, 2)];
        let v = check_exact(2, &acks, &log_of(&acks));
        assert!(v.contains(&Violation::Gap {
            partition: 0,
            expected: 1,
            found: 2
        }));

        let acks = vec![ack(0, 0, 1), ack(1, 0, 0)];
        let v = check_exact(2, &acks, &log_of(&acks));
        assert!(
            matches!(v.as_slice(), [Violation::OutOfOrder { .. }]),
            "{v:?}"
        );

        let acks = vec![ack(0, 0, 0), ack(1, 0, 0)];
        let v = check_exact(2, &acks, &log_of(&acks));
        assert!(v.contains(&Violation::DuplicateAck {
            partition: 0,
            offset: 0
        }));

        let acks = vec![ack(0, 0, 0)];
        let v = check_exact(2, &acks, &log_of(&acks));
        assert_eq!(v, vec![Violation::NotAllAcked { sent: 2, acked: 1 }]);
    }

    #[test]
    fn an_ack_without_an_offset_is_found_by_its_record_or_reported_missing() {
        let acks = good();
        let log = log_of(&acks);
        let mut unknown = acks.clone();
        unknown[2].offset = -1001;
        assert_eq!(check_exact(4, &unknown, &log), vec![]);
        let resolved = resolve_unknown_offsets(&unknown, &log);
        assert_eq!(resolved[2].offset, 1);
        // Not in the log: missing (and the record it was not found as is not somewhere else).
        let mut log = log;
        log.remove(&(0, 1));
        let v = check_acked_present(&unknown, &log);
        assert!(
            matches!(v.as_slice(), [Violation::Missing { seq: 2, .. }]),
            "{v:?}"
        );
        // Only its own partition counts.
        let mut other = acks.clone();
        other[2].offset = -1001;
        other[2].partition = 1;
        let v = check_acked_present(&other, &log_of(&acks));
        assert!(
            matches!(v.as_slice(), [Violation::Missing { seq: 2, .. }]),
            "{v:?}"
        );
    }

    #[test]
    fn summary_names_violations() {
        let v = vec![Violation::Missing {
            seq: 9,
            partition: 2,
            offset: 5,
        }];
        let s = summarize(&v, 10);
        assert!(s.contains("send #9 acked at 2@5 is missing"), "{s}");
    }
}
