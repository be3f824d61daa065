//! Whether a client has sent more on its connection while one of its requests is being handled.
//!
//! A connection's requests are answered in order, so a request behind a long-polling Fetch waits for that fetch's
//! whole `max_wait_ms` (Kafka mutes the channel for the same effect). librdkafka pipelines its ListOffsets,
//! OffsetForLeaderEpoch and Metadata requests on the connection it fetches on: with 1,000 partitions, kcat's
//! ListOffsets for the partitions it had not started yet sat 500 ms (`fetch.wait.max.ms`) behind a Fetch for the
//! partitions it had already drained, half of its whole read. The connection reads ahead while a request is
//! handled and sets this; a parked Fetch then answers with what it has, as at its deadline, so the request behind
//! it goes on. Only the wait is shortened: what a fetch returns, and the order of responses, are unchanged.

use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

#[derive(Debug, Default)]
pub struct QueuedInput {
    pending: AtomicBool,
    arrived: Notify,
}

impl QueuedInput {
    /// Records whether bytes of a next request (or the client's end of input) are waiting to be handled.
    pub fn set(&self, pending: bool) {
        self.pending.store(pending, Ordering::Release);
        if pending {
            self.arrived.notify_waiters();
        }
    }

    pub fn is_pending(&self) -> bool {
        self.pending.load(Ordering::Acquire)
    }

    /// Completes once input is waiting behind the current request: at once if it already is.
    pub async fn arrived(&self) {
        loop {
            let notified = self.arrived.notified();
            tokio::pin!(notified);
            // Registered before the check, so a `set` between the check and the wait is not missed.
            notified.as_mut().enable();
            if self.is_pending() {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test]
    async fn arrived_completes_at_once_when_input_is_waiting() {
        let q = QueuedInput::default();
        q.set(true);
        tokio::time::timeout(Duration::from_secs(5), q.arrived())
            .await
            .expect("already pending");
    }

    #[tokio::test]
    async fn arrived_waits_for_input_and_wakes_on_it() {
        let q = Arc::new(QueuedInput::default());
        let waiting = tokio::spawn({
            let q = q.clone();
            async move { q.arrived().await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "nothing is pending yet");
        q.set(true);
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("woken")
            .expect("task");
        // Handled: a later request waits again.
        q.set(false);
        assert!(tokio::time::timeout(Duration::from_millis(20), q.arrived())
            .await
            .is_err());
    }
}
