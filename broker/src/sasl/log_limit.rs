//! A budget of log lines per time window: a client hammering a SASL listener with bad passwords must not fill the
//! disk with WARN lines. The first lines of each window are logged; the rest are counted and the count is reported
//! with the next line that is logged.

use std::time::{Duration, Instant};

/// Counts log lines in fixed windows. Pure: the caller passes the time.
#[derive(Debug)]
pub struct LogLimiter {
    window: Duration,
    per_window: u32,
    window_start: Option<Instant>,
    logged: u32,
    suppressed: u64,
}

/// Whether to write a line now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Log it; `suppressed` lines were dropped since the last one logged.
    Log {
        suppressed: u64,
    },
    Drop,
}

impl LogLimiter {
    pub fn new(window: Duration, per_window: u32) -> Self {
        LogLimiter {
            window,
            per_window,
            window_start: None,
            logged: 0,
            suppressed: 0,
        }
    }

    pub fn admit(&mut self, now: Instant) -> Admit {
        let expired = self
            .window_start
            .is_none_or(|start| now.saturating_duration_since(start) >= self.window);
        if expired {
            self.window_start = Some(now);
            self.logged = 0;
        }
        if self.logged < self.per_window {
            self.logged += 1;
            Admit::Log {
                suppressed: std::mem::take(&mut self.suppressed),
            }
        } else {
            self.suppressed += 1;
            Admit::Drop
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_is_cut_to_the_budget_and_the_rest_is_counted() {
        let mut l = LogLimiter::new(Duration::from_secs(10), 3);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(l.admit(t0), Admit::Log { suppressed: 0 });
        }
        for i in 0..1000 {
            assert_eq!(l.admit(t0 + Duration::from_millis(i)), Admit::Drop);
        }
        assert_eq!(
            l.admit(t0 + Duration::from_secs(10)),
            Admit::Log { suppressed: 1000 }
        );
        assert_eq!(
            l.admit(t0 + Duration::from_secs(11)),
            Admit::Log { suppressed: 0 }
        );
    }
}
