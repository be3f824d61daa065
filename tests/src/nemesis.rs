//! Choosing what the fault tests break in each round: which broker is killed with SIGKILL and which is
//! frozen with SIGSTOP. Pure, seeded and unit-tested; the test drives the processes.
//!
//! The victim is most often the broker leading the most partitions (the case that forces the most leader
//! elections and follower truncations), otherwise any broker; the frozen one is another broker, so a round
//! leaves one broker of three serving. The seed is printed and can be replayed with
//! `KRAFTWERK_NEMESIS_SEED`.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

/// The environment variable that fixes the seed (to replay a failed run).
pub const SEED_ENV: &str = "KRAFTWERK_NEMESIS_SEED";

/// A small deterministic generator (splitmix64): enough for choosing victims, and reproducible.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The seed from [`SEED_ENV`] if set and numeric, else from the clock.
    pub fn seed_from_env_or_clock() -> u64 {
        std::env::var(SEED_ENV)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(0x5eed)
            })
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

/// What one round does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Round {
    /// Killed with SIGKILL, restarted at the end of the round.
    pub kill: i32,
    /// Frozen with SIGSTOP for longer than the broker session timeout, then SIGCONT.
    pub pause: i32,
}

/// Out of 3 rounds, how many kill the broker leading the most partitions (the rest kill any broker).
const TOP_LEADER_SHARE: usize = 2;

/// Plans a round over `brokers` (at least two) given how many partitions each leads. `force_top` makes
/// the victim the top leader (the first round does, so every run covers that case).
pub fn plan_round(
    rng: &mut Rng,
    brokers: &[i32],
    leaders: &BTreeMap<i32, usize>,
    force_top: bool,
) -> Option<Round> {
    if brokers.len() < 2 {
        return None;
    }
    let top = leaders.values().copied().max().unwrap_or(0);
    let tops: Vec<i32> = brokers
        .iter()
        .copied()
        .filter(|b| top > 0 && leaders.get(b).copied().unwrap_or(0) == top)
        .collect();
    let kill = if !tops.is_empty() && (force_top || rng.below(3) < TOP_LEADER_SHARE) {
        tops[rng.below(tops.len())]
    } else {
        brokers[rng.below(brokers.len())]
    };
    let others: Vec<i32> = brokers.iter().copied().filter(|b| *b != kill).collect();
    let pause = others[rng.below(others.len())];
    Some(Round { kill, pause })
}

/// Makes `target` the killed broker (or, with `as_pause`, the frozen one), keeping the two different: how
/// a test aims the faults at one broker, such as a group's coordinator.
pub fn aim(round: Round, target: i32, as_pause: bool, brokers: &[i32]) -> Round {
    let other = |not: i32, fallback: i32| {
        if fallback != not {
            fallback
        } else {
            brokers
                .iter()
                .copied()
                .find(|b| *b != not)
                .unwrap_or(fallback)
        }
    };
    if as_pause {
        Round {
            pause: target,
            kill: other(target, round.kill),
        }
    } else {
        Round {
            kill: target,
            pause: other(target, round.pause),
        }
    }
}

/// The `__consumer_offsets` partition that holds `group` (Kafka: `abs(groupId.hashCode) % partitions`, with
/// Java's `String.hashCode` over UTF-16 code units and `Utils.abs` = `n & 0x7fffffff`).
pub fn group_offsets_partition(group: &str, partitions: i32) -> i32 {
    let hash = group
        .encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)));
    (hash & 0x7fff_ffff) % partitions.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aiming_keeps_kill_and_pause_apart() {
        let brokers = [1, 2, 3];
        let r = Round { kill: 1, pause: 2 };
        assert_eq!(aim(r, 3, false, &brokers), Round { kill: 3, pause: 2 });
        assert_eq!(aim(r, 2, false, &brokers), Round { kill: 2, pause: 1 });
        assert_eq!(aim(r, 1, true, &brokers), Round { kill: 2, pause: 1 });
        assert_eq!(aim(r, 3, true, &brokers), Round { kill: 1, pause: 3 });
    }

    #[test]
    fn group_partition_matches_kafka() {
        // Java's "fault-group".hashCode() is -1003052268 (checked with jshell).
        assert_eq!(
            group_offsets_partition("fault-group", 50),
            (-1_003_052_268i32 & 0x7fff_ffff) % 50
        );
        assert_eq!(group_offsets_partition("fault-group", 3), 2);
        // "a".hashCode() == 97; "ab" == 97*31+98 = 3105.
        assert_eq!(group_offsets_partition("a", 50), 97 % 50);
        assert_eq!(group_offsets_partition("ab", 50), 3105 % 50);
        assert_eq!(group_offsets_partition("", 50), 0);
    }

    #[test]
    fn the_same_seed_gives_the_same_plan() {
        let leaders: BTreeMap<i32, usize> = [(100, 1), (101, 3), (102, 2)].into();
        let brokers = [100, 101, 102];
        let plan = |seed| {
            let mut rng = Rng::new(seed);
            (0..10)
                .map(|_| plan_round(&mut rng, &brokers, &leaders, false))
                .collect::<Vec<_>>()
        };
        assert_eq!(plan(7), plan(7));
        assert_ne!(plan(7), plan(8));
    }

    #[test]
    fn kill_and_pause_differ_and_the_top_leader_is_killed_most_often() {
        let leaders: BTreeMap<i32, usize> = [(100, 1), (101, 4), (102, 1)].into();
        let brokers = [100, 101, 102];
        let mut rng = Rng::new(42);
        let mut top_kills = 0;
        let mut other_kills = 0;
        for _ in 0..3000 {
            let r = plan_round(&mut rng, &brokers, &leaders, false).unwrap();
            assert_ne!(r.kill, r.pause);
            assert!(brokers.contains(&r.kill) && brokers.contains(&r.pause));
            if r.kill == 101 {
                top_kills += 1;
            } else {
                other_kills += 1;
            }
        }
        // Expected 2/3 + 1/9 of rounds kill the top leader: well above half, yet others are killed too.
        assert!(
            top_kills > 2000 && other_kills > 300,
            "{top_kills} {other_kills}"
        );
    }

    #[test]
    fn forcing_the_top_leader_and_degenerate_inputs() {
        let leaders: BTreeMap<i32, usize> = [(1, 0), (2, 5)].into();
        let mut rng = Rng::new(1);
        for _ in 0..50 {
            let r = plan_round(&mut rng, &[1, 2, 3], &leaders, true).unwrap();
            assert_eq!(r.kill, 2);
        }
        assert_eq!(plan_round(&mut rng, &[1], &leaders, true), None);
        // Nobody leads anything (all offline): still a valid round over random brokers.
        let r = plan_round(&mut rng, &[1, 2], &BTreeMap::new(), true).unwrap();
        assert_ne!(r.kill, r.pause);
    }
}
