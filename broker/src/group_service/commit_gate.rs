//! Holding back replies until the group records they follow are committed (Kafka's coordinator runtime
//! defers every response until the high watermark passes the offsets written before it).
//!
//! The coordinator applies a change in memory before its records are replicated; the reply promising it (a
//! commit acknowledged, an assignment handed out) and any reply that could have read it must not leave before
//! the records are on every in-sync replica, or a coordinator failover could undo what a client was told. So a
//! reply waits for every write in flight when it was produced, on any partition: simple, and a write normally
//! commits within one follower fetch. Pure bookkeeping; the caller reports commits and failures.

use std::collections::HashMap;

/// Replies (`T`) waiting for writes to `__consumer_offsets` partitions to commit.
#[derive(Debug)]
pub struct CommitGate<T> {
    /// Per partition, the end offset (last offset + 1) of the newest write not yet known committed.
    in_flight: HashMap<i32, i64>,
    /// Per partition with writes in flight, how far the high watermark is known to have come.
    committed: HashMap<i32, i64>,
    /// Each held reply with the (partition, end offset) pairs it waits for.
    held: Vec<(Vec<(i32, i64)>, T)>,
}

impl<T> Default for CommitGate<T> {
    fn default() -> Self {
        Self {
            in_flight: HashMap::new(),
            committed: HashMap::new(),
            held: Vec::new(),
        }
    }
}

impl<T> CommitGate<T> {
    /// Records on `partition` up to `end_offset` (exclusive) were written (or loaded) and are not known to be
    /// committed: replies admitted from now on wait for them.
    pub fn wrote(&mut self, partition: i32, end_offset: i64) {
        let known = self.committed.get(&partition).copied().unwrap_or(i64::MIN);
        if end_offset <= known {
            return;
        }
        let entry = self.in_flight.entry(partition).or_insert(end_offset);
        *entry = (*entry).max(end_offset);
    }

    /// Whether nothing is in flight.
    pub fn is_idle(&self) -> bool {
        self.in_flight.is_empty()
    }

    /// Gives `item` back to send now if nothing is in flight, else holds it until what is in flight commits.
    pub fn admit(&mut self, item: T) -> Option<T> {
        if self.in_flight.is_empty() {
            return Some(item);
        }
        let waits = self.in_flight.iter().map(|(p, end)| (*p, *end)).collect();
        self.held.push((waits, item));
        None
    }

    /// The high watermark of `partition` reached `offset`: returns the replies that no longer wait for anything.
    pub fn committed(&mut self, partition: i32, offset: i64) -> Vec<T> {
        let Some(&end) = self.in_flight.get(&partition) else {
            return Vec::new();
        };
        if offset >= end {
            self.in_flight.remove(&partition);
            self.committed.remove(&partition);
        } else {
            let known = self.committed.entry(partition).or_insert(offset);
            *known = (*known).max(offset);
        }
        self.release(|waits, gate| {
            waits.iter().all(|(p, end)| match gate.in_flight.get(p) {
                None => true,
                Some(_) => gate.committed.get(p).is_some_and(|c| c >= end),
            })
        })
    }

    /// The writes in flight on `partition` will not be confirmed (leadership moved, or the wait timed out):
    /// forgets them and returns the replies that waited for them, which must now report a failure.
    pub fn failed(&mut self, partition: i32) -> Vec<T> {
        self.in_flight.remove(&partition);
        self.committed.remove(&partition);
        let (failed, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.held)
            .into_iter()
            .partition(|(waits, _)| waits.iter().any(|(p, _)| *p == partition));
        self.held = kept;
        failed.into_iter().map(|(_, item)| item).collect()
    }

    fn release(&mut self, done: impl Fn(&[(i32, i64)], &Self) -> bool) -> Vec<T> {
        let held = std::mem::take(&mut self.held);
        let mut released = Vec::new();
        for (waits, item) in held {
            if done(&waits, self) {
                released.push(item);
            } else {
                self.held.push((waits, item));
            }
        }
        released
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_pass_while_nothing_is_in_flight() {
        let mut gate = CommitGate::default();
        assert_eq!(gate.admit(1), Some(1));
        gate.wrote(3, 10);
        assert_eq!(gate.admit(2), None);
        assert!(!gate.is_idle());
        assert_eq!(gate.committed(3, 10), vec![2]);
        assert!(gate.is_idle());
        assert_eq!(gate.admit(3), Some(3));
    }

    #[test]
    fn a_reply_waits_for_every_write_before_it_and_none_after() {
        let mut gate = CommitGate::default();
        gate.wrote(1, 5);
        assert_eq!(gate.admit("a"), None);
        gate.wrote(2, 7);
        gate.wrote(1, 9);
        assert_eq!(gate.admit("b"), None);
        // "a" waits for partition 1 up to 5 only.
        assert_eq!(gate.committed(1, 5), vec!["a"]);
        assert_eq!(gate.committed(2, 7), Vec::<&str>::new());
        assert_eq!(gate.committed(1, 8), Vec::<&str>::new());
        assert_eq!(gate.committed(1, 9), vec!["b"]);
        assert!(gate.is_idle());
    }

    #[test]
    fn a_stale_or_repeated_commit_changes_nothing() {
        let mut gate = CommitGate::default();
        gate.wrote(1, 5);
        assert_eq!(gate.admit(1), None);
        assert!(gate.committed(4, 100).is_empty(), "another partition");
        assert!(gate.committed(1, 3).is_empty());
        assert!(gate.committed(1, 2).is_empty(), "lower than known");
        assert_eq!(gate.committed(1, 6), vec![1]);
        assert!(gate.committed(1, 6).is_empty());
    }

    #[test]
    fn a_failed_partition_fails_the_replies_that_waited_for_it() {
        let mut gate = CommitGate::default();
        gate.wrote(1, 5);
        assert_eq!(gate.admit("on 1"), None);
        gate.wrote(2, 3);
        assert_eq!(gate.admit("on 1 and 2"), None);
        gate.committed(1, 5);
        assert_eq!(gate.failed(2), vec!["on 1 and 2"]);
        assert!(gate.is_idle());
        // "on 1" left when 1 committed; nothing else is held.
        assert!(gate.failed(1).is_empty());
    }

    #[test]
    fn a_write_already_committed_holds_nothing() {
        let mut gate = CommitGate::default();
        gate.wrote(1, 10);
        gate.committed(1, 6);
        gate.wrote(1, 4);
        assert_eq!(gate.admit(1), None, "still waiting for 10");
        assert_eq!(gate.committed(1, 10), vec![1]);
    }
}
