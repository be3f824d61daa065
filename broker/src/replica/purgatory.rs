//! Delayed operations watched per partition (Kafka's `DelayedOperationPurgatory`, reduced to what an async
//! runtime needs): a waiting request (a long-polling fetch, an acks=all produce) registers one [`Waiter`] on the
//! [`WatchList`] of every partition it depends on, and is woken only by events on those partitions (appends,
//! high-watermark advances) or by its own timer, never by a broker-wide signal.
//!
//! Lock-light: each partition has its own small list behind its own mutex, taken once per event on that
//! partition and once per registration; a fetch over many partitions registers once per partition for its whole
//! life (not after every wake-up), and an event never touches another partition's list. Waking a [`Waiter`]
//! stores a permit, so an event between a request's last check and its wait is not lost.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use tokio::sync::Notify;

/// One delayed operation's wake-up; shared by every partition it watches. Dropping the last `Arc` (the
/// operation completed or timed out) unregisters it everywhere lazily.
#[derive(Debug, Default)]
pub struct Waiter {
    notify: Notify,
}

impl Waiter {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Resolves after the next wake-up of any watched partition, or at once if one happened since the last
    /// call (wake-ups coalesce into one permit: the operation re-checks all its partitions anyway).
    pub async fn woken(&self) {
        self.notify.notified().await;
    }

    fn wake(&self) {
        self.notify.notify_one();
    }
}

/// The waiters registered on one partition.
#[derive(Debug)]
pub struct WatchList {
    waiters: Mutex<Vec<Weak<Waiter>>>,
    /// Registrations purge dead entries once the list reaches this length (then it doubles), so a partition
    /// that is polled a lot but never written keeps a list proportional to its live waiters, in amortised O(1).
    purge_at: AtomicUsize,
}

const MIN_PURGE_AT: usize = 16;

impl Default for WatchList {
    fn default() -> Self {
        Self {
            waiters: Mutex::new(Vec::new()),
            purge_at: AtomicUsize::new(MIN_PURGE_AT),
        }
    }
}

impl WatchList {
    /// Registers `waiter` until it is dropped.
    pub fn watch(&self, waiter: &Arc<Waiter>) {
        let mut waiters = self.waiters.lock();
        if waiters.len() >= self.purge_at.load(Ordering::Relaxed) {
            waiters.retain(|w| w.strong_count() > 0);
            self.purge_at
                .store((waiters.len() * 2).max(MIN_PURGE_AT), Ordering::Relaxed);
        }
        waiters.push(Arc::downgrade(waiter));
    }

    /// Wakes every live waiter (something happened on this partition) and forgets the dead ones. Returns how
    /// many were woken.
    pub fn wake_all(&self) -> usize {
        let mut waiters = self.waiters.lock();
        if waiters.is_empty() {
            return 0;
        }
        let mut woken = 0;
        waiters.retain(|w| match w.upgrade() {
            Some(w) => {
                w.wake();
                woken += 1;
                true
            }
            None => false,
        });
        woken
    }

    /// Registered entries, dead ones not yet purged included (for tests and metrics).
    pub fn len(&self) -> usize {
        self.waiters.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const SHORT: Duration = Duration::from_millis(50);

    async fn is_woken(w: &Waiter) -> bool {
        tokio::time::timeout(SHORT, w.woken()).await.is_ok()
    }

    #[tokio::test]
    async fn a_waiter_is_woken_only_by_the_partitions_it_watches() {
        let (a, b, c) = (
            WatchList::default(),
            WatchList::default(),
            WatchList::default(),
        );
        let w = Waiter::new();
        a.watch(&w);
        b.watch(&w);
        assert_eq!(c.wake_all(), 0);
        assert!(!is_woken(&w).await);
        assert_eq!(a.wake_all(), 1);
        assert!(is_woken(&w).await);
        // Still registered after a wake-up: the next event on either partition wakes it again.
        assert_eq!(b.wake_all(), 1);
        assert!(is_woken(&w).await);
        assert!(!is_woken(&w).await);
    }

    #[tokio::test]
    async fn a_wake_before_the_wait_is_not_lost_and_wakes_coalesce() {
        let a = WatchList::default();
        let w = Waiter::new();
        a.watch(&w);
        a.wake_all();
        a.wake_all();
        assert!(is_woken(&w).await);
        assert!(!is_woken(&w).await, "two wake-ups leave one permit");
    }

    #[tokio::test]
    async fn every_waiter_of_a_partition_is_woken() {
        let a = WatchList::default();
        let waiters: Vec<_> = (0..3).map(|_| Waiter::new()).collect();
        for w in &waiters {
            a.watch(w);
        }
        assert_eq!(a.wake_all(), 3);
        for w in &waiters {
            assert!(is_woken(w).await);
        }
    }

    #[test]
    fn dropped_waiters_are_purged() {
        let a = WatchList::default();
        let kept = Waiter::new();
        a.watch(&kept);
        for _ in 0..1000 {
            let gone = Waiter::new();
            a.watch(&gone);
        }
        assert!(a.len() <= 2 * MIN_PURGE_AT, "list grew to {}", a.len());
        assert_eq!(a.wake_all(), 1);
        assert_eq!(a.len(), 1);
    }
}
