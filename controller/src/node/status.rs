//! The node's view of leadership, readable from any thread without going through the mailbox.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

#[derive(Debug)]
pub(crate) struct SharedStatus {
    /// Leader's node id, or -1 when unknown.
    leader: AtomicI64,
    is_leader: AtomicBool,
}

impl Default for SharedStatus {
    fn default() -> Self {
        Self {
            leader: AtomicI64::new(-1),
            is_leader: AtomicBool::new(false),
        }
    }
}

impl SharedStatus {
    pub(crate) fn set(&self, leader: Option<i32>, is_leader: bool) {
        self.leader
            .store(leader.map_or(-1, i64::from), Ordering::Release);
        self.is_leader.store(is_leader, Ordering::Release);
    }

    pub(crate) fn leader(&self) -> Option<i32> {
        i32::try_from(self.leader.load(Ordering::Acquire))
            .ok()
            .filter(|&id| id >= 0)
    }

    pub(crate) fn is_leader(&self) -> bool {
        self.is_leader.load(Ordering::Acquire)
    }
}
