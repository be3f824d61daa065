//! Checks over what clients observed while faults were injected: what a consumer read during the faults,
//! which group offsets it saw committed, and when the producer was acknowledged.
//!
//! [`crate::verify`] compares the final log with the acknowledgements; these add the promises a reader
//! relies on: nothing a consumer was ever served may disappear later (a consumer reads only up to the high
//! watermark, and what is below it is on every in-sync replica), and a group's committed offset never moves
//! back. Like `verify`, they are plain functions over plain data, tested below with histories that break
//! them.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use crate::verify::{Acked, ConsumedLog, StoredRecord};

/// One record a consumer was served while the faults ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Read {
    pub partition: i32,
    pub offset: i64,
    pub record: StoredRecord,
}

/// One reading of a group's committed offset for a partition (`None`: the coordinator answered that
/// nothing is committed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitObservation {
    pub at: Duration,
    pub partition: i32,
    pub offset: Option<i64>,
}

/// One way the observed history disagrees with the final state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HistoryViolation {
    /// A consumer read a record that the final log does not hold at that offset.
    ReadThenLost {
        partition: i32,
        offset: i64,
        read: StoredRecord,
        now: Option<StoredRecord>,
    },
    /// A committed offset was seen, then a lower one (or none at all).
    CommitWentBack {
        partition: i32,
        from: i64,
        to: Option<i64>,
        at: Duration,
    },
    /// A commit the coordinator acknowledged is not what the group holds at the end.
    AckedCommitLost {
        partition: i32,
        acked: i64,
        finally: Option<i64>,
    },
}

impl fmt::Display for HistoryViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HistoryViolation::ReadThenLost {
                partition,
                offset,
                read,
                now,
            } => write!(
                f,
                "a consumer read {partition}@{offset} = {read:?}, the final log holds {now:?}"
            ),
            HistoryViolation::CommitWentBack {
                partition,
                from,
                to,
                at,
            } => write!(
                f,
                "partition {partition}: committed offset went from {from} to {to:?} at {at:?}"
            ),
            HistoryViolation::AckedCommitLost {
                partition,
                acked,
                finally,
            } => write!(
                f,
                "partition {partition}: commit of {acked} was acknowledged, the group finally holds \
                 {finally:?}"
            ),
        }
    }
}

/// Everything a consumer read must be in the final log at the same offset, unchanged.
pub fn check_reads_durable(reads: &[Read], log: &ConsumedLog) -> Vec<HistoryViolation> {
    reads
        .iter()
        .filter_map(|r| {
            let now = log.get(&(r.partition, r.offset));
            (now != Some(&r.record)).then(|| HistoryViolation::ReadThenLost {
                partition: r.partition,
                offset: r.offset,
                read: r.record.clone(),
                now: now.cloned(),
            })
        })
        .collect()
}

/// Per partition, observations in time order must never go down (nor from an offset back to none).
pub fn check_commits_monotonic(observations: &[CommitObservation]) -> Vec<HistoryViolation> {
    let mut sorted: Vec<&CommitObservation> = observations.iter().collect();
    sorted.sort_by_key(|o| o.at);
    let mut highest: BTreeMap<i32, i64> = BTreeMap::new();
    let mut violations = Vec::new();
    for o in sorted {
        let seen = highest.get(&o.partition).copied();
        match (seen, o.offset) {
            (Some(from), to) if to.is_none_or(|t| t < from) => {
                violations.push(HistoryViolation::CommitWentBack {
                    partition: o.partition,
                    from,
                    to,
                    at: o.at,
                });
            }
            (_, Some(to)) => {
                highest.insert(o.partition, to);
            }
            _ => {}
        }
    }
    violations
}

/// The highest acknowledged commit per partition must be what the group finally holds, or less (a later
/// commit whose acknowledgement was lost in a fault may have moved it further).
pub fn check_acked_commits_kept(
    acked: &BTreeMap<i32, i64>,
    finally: &BTreeMap<i32, i64>,
) -> Vec<HistoryViolation> {
    acked
        .iter()
        .filter_map(|(&partition, &acked)| {
            let fin = finally.get(&partition).copied();
            fin.is_none_or(|f| f < acked)
                .then_some(HistoryViolation::AckedCommitLost {
                    partition,
                    acked,
                    finally: fin,
                })
        })
        .collect()
}

/// What happened to the acknowledged messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub acknowledged: usize,
    /// Acknowledged and found at the acknowledged offset, unchanged.
    pub present: usize,
    /// Acknowledged and not found at the acknowledged offset.
    pub lost: usize,
    /// Values stored at more than one offset (each message's value is unique).
    pub duplicated: usize,
}

impl fmt::Display for Counts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "acknowledged {}, present {}, lost {}, duplicated {}",
            self.acknowledged, self.present, self.lost, self.duplicated
        )
    }
}

/// Counts the acknowledged messages present and lost (an acknowledgement without an offset is looked up
/// by its record, see [`crate::verify::resolve_unknown_offsets`]), and the values stored more than once.
pub fn count_outcomes(acked: &[Acked], log: &ConsumedLog) -> Counts {
    let acked = &crate::verify::resolve_unknown_offsets(acked, log);
    let present = acked
        .iter()
        .filter(|a| log.get(&(a.partition, a.offset)) == Some(&a.record))
        .count();
    let mut copies: BTreeMap<&[u8], usize> = BTreeMap::new();
    for r in log.values() {
        if let Some(v) = r.value.as_deref() {
            *copies.entry(v).or_default() += 1;
        }
    }
    Counts {
        acknowledged: acked.len(),
        present,
        lost: acked.len() - present,
        duplicated: copies.values().filter(|&&n| n > 1).count(),
    }
}

/// Each value stored more than once, with every (partition, offset) holding it, in log order: what a
/// failure names so a duplicate can be traced in the brokers' logs.
pub fn duplicated_values(log: &ConsumedLog) -> Vec<(String, Vec<(i32, i64)>)> {
    let mut places: BTreeMap<&[u8], Vec<(i32, i64)>> = BTreeMap::new();
    for (at, r) in log {
        if let Some(v) = r.value.as_deref() {
            places.entry(v).or_default().push(*at);
        }
    }
    places
        .into_iter()
        .filter(|(_, at)| at.len() > 1)
        .map(|(v, at)| (String::from_utf8_lossy(v).into_owned(), at))
        .collect()
}

/// The longest time a partition went without an acknowledgement, and when that began.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    pub longest: Duration,
    pub from: Duration,
}

/// Per partition, the longest time without an acknowledgement while the producer was sending: between
/// `start` (sending began), each acknowledgement time (`(partition, time)`, any order) and `end` (sending
/// stopped). Every partition in `partitions` is reported; one never acknowledged is unavailable
/// throughout.
pub fn longest_gaps(
    partitions: &BTreeSet<i32>,
    acks: &[(i32, Duration)],
    start: Duration,
    end: Duration,
) -> BTreeMap<i32, Gap> {
    let mut times: BTreeMap<i32, Vec<Duration>> =
        partitions.iter().map(|p| (*p, Vec::new())).collect();
    for &(p, t) in acks {
        times.entry(p).or_default().push(t.clamp(start, end));
    }
    times
        .into_iter()
        .map(|(p, mut ts)| {
            ts.sort_unstable();
            let mut prev = start;
            let mut gap = Gap {
                longest: Duration::ZERO,
                from: start,
            };
            for t in ts.into_iter().chain([end]) {
                if t.saturating_sub(prev) > gap.longest {
                    gap = Gap {
                        longest: t.saturating_sub(prev),
                        from: prev,
                    };
                }
                prev = t;
            }
            (p, gap)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(v: &str) -> StoredRecord {
        StoredRecord::new("k", v)
    }

    fn read(partition: i32, offset: i64, v: &str) -> Read {
        Read {
            partition,
            offset,
            record: rec(v),
        }
    }

    fn obs(at_ms: u64, partition: i32, offset: Option<i64>) -> CommitObservation {
        CommitObservation {
            at: Duration::from_millis(at_ms),
            partition,
            offset,
        }
    }

    #[test]
    fn reads_must_stay_in_the_log() {
        let log: ConsumedLog = [((0, 0), rec("a")), ((0, 1), rec("b"))].into();
        assert_eq!(
            check_reads_durable(&[read(0, 0, "a"), read(0, 1, "b")], &log),
            vec![]
        );
        let lost = check_reads_durable(&[read(0, 2, "c")], &log);
        assert!(
            matches!(
                lost.as_slice(),
                [HistoryViolation::ReadThenLost {
                    offset: 2,
                    now: None,
                    ..
                }]
            ),
            "{lost:?}"
        );
        let changed = check_reads_durable(&[read(0, 1, "x")], &log);
        assert!(
            matches!(
                changed.as_slice(),
                [HistoryViolation::ReadThenLost { now: Some(_), .. }]
            ),
            "{changed:?}"
        );
    }

    #[test]
    fn commits_must_not_go_back_per_partition() {
        let ok = [
            obs(0, 0, None),
            obs(1, 0, Some(5)),
            obs(2, 1, Some(1)),
            obs(3, 0, Some(5)),
            obs(4, 0, Some(9)),
        ];
        assert_eq!(check_commits_monotonic(&ok), vec![]);
        let back = [obs(1, 0, Some(5)), obs(2, 0, Some(4))];
        assert_eq!(
            check_commits_monotonic(&back),
            vec![HistoryViolation::CommitWentBack {
                partition: 0,
                from: 5,
                to: Some(4),
                at: Duration::from_millis(2)
            }]
        );
        // Out of order in the slice, in order in time: sorted first.
        let unsorted = [obs(2, 0, Some(5)), obs(1, 0, Some(4))];
        assert_eq!(check_commits_monotonic(&unsorted), vec![]);
        let vanished = [obs(1, 0, Some(5)), obs(2, 0, None)];
        assert_eq!(check_commits_monotonic(&vanished).len(), 1);
    }

    #[test]
    fn acked_commits_must_be_kept() {
        let acked: BTreeMap<i32, i64> = [(0, 10), (1, 7)].into();
        assert_eq!(
            check_acked_commits_kept(&acked, &[(0, 10), (1, 9)].into()),
            vec![]
        );
        let v = check_acked_commits_kept(&acked, &[(0, 3)].into());
        assert_eq!(v.len(), 2, "{v:?}");
    }

    #[test]
    fn outcomes_count_lost_and_duplicated() {
        let acked: Vec<Acked> = ["a", "b", "c"]
            .iter()
            .enumerate()
            .map(|(i, v)| Acked {
                seq: i as u64,
                partition: 0,
                offset: i as i64,
                record: rec(v),
            })
            .collect();
        let log: ConsumedLog = [
            ((0, 0), rec("a")),
            ((0, 1), rec("x")),
            ((0, 2), rec("c")),
            ((0, 3), rec("c")),
        ]
        .into();
        assert_eq!(
            count_outcomes(&acked, &log),
            Counts {
                acknowledged: 3,
                present: 2,
                lost: 1,
                duplicated: 1
            }
        );
        assert_eq!(
            duplicated_values(&log),
            vec![("c".to_string(), vec![(0, 2), (0, 3)])]
        );
    }

    #[test]
    fn gaps_include_the_edges_and_silent_partitions() {
        let s = Duration::from_secs;
        let parts: BTreeSet<i32> = [0, 1, 2].into();
        let acks = [(0, s(1)), (0, s(2)), (0, s(7)), (1, s(9))];
        let gaps = longest_gaps(&parts, &acks, s(0), s(10));
        assert_eq!(
            gaps[&0],
            Gap {
                longest: s(5),
                from: s(2)
            }
        );
        assert_eq!(
            gaps[&1],
            Gap {
                longest: s(9),
                from: s(0)
            }
        );
        assert_eq!(gaps[&2].longest, s(10));
    }
}
