//! Broker sessions on the active controller: who heartbeated when, and whose session has expired.
//!
//! Kept in memory by the active controller only (as Kafka's `BrokerHeartbeatManager`): a controller that
//! becomes active starts every registered broker's session afresh, so a failover never fences a live broker
//! for heartbeats the old leader received. Pure: the caller passes the time.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Last heartbeat per broker, and the session timeout that fences a silent one.
#[derive(Debug)]
pub struct BrokerLiveness {
    session_timeout: Duration,
    last_seen: HashMap<i32, Instant>,
}

impl BrokerLiveness {
    /// `session_timeout` is `broker.session.timeout.ms`.
    pub fn new(session_timeout: Duration) -> Self {
        Self {
            session_timeout,
            last_seen: HashMap::new(),
        }
    }

    /// Records a heartbeat (or a registration) of `broker_id`.
    pub fn touch(&mut self, broker_id: i32, now: Instant) {
        self.last_seen.insert(broker_id, now);
    }

    /// Forgets a broker (controlled shutdown, unregistration).
    pub fn forget(&mut self, broker_id: i32) {
        self.last_seen.remove(&broker_id);
    }

    /// Starts the session of every broker in `registered` at `now` (on becoming the active controller) and
    /// forgets brokers that are no longer registered.
    pub fn restart_sessions(&mut self, registered: impl IntoIterator<Item = i32>, now: Instant) {
        self.last_seen = registered.into_iter().map(|id| (id, now)).collect();
    }

    /// Brokers among `candidates` whose last heartbeat is older than the session timeout. A candidate never
    /// seen starts its session now instead (it registered with another controller).
    pub fn expired(&mut self, candidates: impl IntoIterator<Item = i32>, now: Instant) -> Vec<i32> {
        let mut out = Vec::new();
        for id in candidates {
            let seen = *self.last_seen.entry(id).or_insert(now);
            if now.saturating_duration_since(seen) > self.session_timeout {
                out.push(id);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silent_brokers_expire_after_the_session_timeout() {
        let t0 = Instant::now();
        let mut live = BrokerLiveness::new(Duration::from_secs(9));
        live.restart_sessions([1, 2, 3], t0);
        live.touch(2, t0 + Duration::from_secs(5));
        assert!(live
            .expired([1, 2, 3], t0 + Duration::from_secs(9))
            .is_empty());
        assert_eq!(
            live.expired([1, 2, 3], t0 + Duration::from_secs(10)),
            vec![1, 3]
        );
        // A broker this controller never saw starts its session at first sight.
        assert!(live.expired([4], t0 + Duration::from_secs(20)).is_empty());
        assert_eq!(live.expired([4], t0 + Duration::from_secs(30)), vec![4]);
        live.forget(4);
        assert!(live.expired([4], t0 + Duration::from_secs(30)).is_empty());
    }
}
