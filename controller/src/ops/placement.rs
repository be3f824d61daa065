//! Replica placement: round-robin over the registered, unfenced brokers.
//!
//! Partition `p` gets `rf` consecutive brokers starting at `(start + p) % n`, so leaders (the
//! first replica) rotate over the brokers and every broker carries the same share of replicas.
//! Racks are not taken into account yet.

/// Replicas for partitions `first..first+count` over `brokers` (ascending ids, at least `rf`).
pub fn round_robin(
    brokers: &[i32],
    start: usize,
    first: i32,
    count: i32,
    rf: usize,
) -> Vec<Vec<i32>> {
    let n = brokers.len();
    if n == 0 {
        return Vec::new();
    }
    (first..first.saturating_add(count))
        .map(|p| {
            let base = start.wrapping_add(usize::try_from(p).unwrap_or(0));
            (0..rf.min(n))
                .filter_map(|j| brokers.get(base.wrapping_add(j) % n).copied())
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_leaders_and_spreads_replicas() {
        let got = round_robin(&[1, 2, 3], 0, 0, 4, 2);
        assert_eq!(got, vec![vec![1, 2], vec![2, 3], vec![3, 1], vec![1, 2]]);
        let got = round_robin(&[1, 2, 3], 1, 3, 2, 3);
        assert_eq!(got, vec![vec![2, 3, 1], vec![3, 1, 2]]);
    }

    #[test]
    fn never_more_replicas_than_brokers() {
        assert_eq!(round_robin(&[5], 0, 0, 2, 3), vec![vec![5], vec![5]]);
        assert!(round_robin(&[], 0, 0, 2, 1).is_empty());
    }
}
