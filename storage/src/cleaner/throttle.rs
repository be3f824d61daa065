//! `log.cleaner.io.max.bytes.per.second`: one budget shared by every cleaner thread, as Kafka's `Throttler`.

use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Sleeps callers so that the bytes reported across all of them stay at or below a rate.
#[derive(Debug)]
pub struct Throttler {
    bytes_per_second: f64,
    /// (start of the current measuring window, bytes reported in it).
    window: Mutex<(Instant, f64)>,
}

/// Windows are restarted after this long, so an idle period does not bank a burst.
const WINDOW: Duration = Duration::from_secs(1);

impl Throttler {
    /// A throttler at `bytes_per_second` (infinite or non-positive: never sleeps).
    pub fn new(bytes_per_second: f64) -> Self {
        Self {
            bytes_per_second,
            window: Mutex::new((Instant::now(), 0.0)),
        }
    }

    /// Accounts for `bytes` of I/O and sleeps if the rate is above the budget.
    pub fn throttle(&self, bytes: u64) {
        if !(self.bytes_per_second.is_finite() && self.bytes_per_second > 0.0) {
            return;
        }
        let sleep = {
            let mut window = self.window.lock();
            let elapsed = window.0.elapsed();
            if elapsed > WINDOW {
                *window = (Instant::now(), 0.0);
            }
            window.1 += bytes as f64;
            let needed = Duration::from_secs_f64(window.1 / self.bytes_per_second);
            needed.saturating_sub(window.0.elapsed())
        };
        if !sleep.is_zero() {
            std::thread::sleep(sleep);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sleeps_only_above_the_rate() {
        // An unlimited one returns at once even for absurd amounts (a sleep this long would hang the test).
        Throttler::new(f64::INFINITY).throttle(u64::MAX);
        Throttler::new(0.0).throttle(u64::MAX);
        // 1000 bytes at 10 kB/s needs 100 ms.
        let slow = Throttler::new(10_000.0);
        let start = Instant::now();
        slow.throttle(1000);
        assert!(start.elapsed() >= Duration::from_millis(90));
    }
}
