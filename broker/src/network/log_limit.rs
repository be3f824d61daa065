//! A budget of log lines per time window: a client hammering a listener with malformed requests or a SASL listener
//! with bad passwords must not fill the disk. The first lines of each window are logged; the rest are counted and
//! the count is reported with the next line that is logged. Bad input from peers is logged at WARN, per source
//! address ([`bad_input`]); ERROR is kept for faults of the broker itself.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Lines about one source address's bad input per window.
const BAD_INPUT_LINES: u32 = 20;
const BAD_INPUT_WINDOW: Duration = Duration::from_secs(10);
/// Addresses tracked at most; past that, addresses whose window is over are forgotten first.
const MAX_SOURCES: usize = 10_000;

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

/// One [`LogLimiter`] per source address, bounded in how many addresses it remembers.
#[derive(Debug)]
pub struct PerSourceLimiter {
    window: Duration,
    per_window: u32,
    max_sources: usize,
    sources: HashMap<IpAddr, LogLimiter>,
}

impl PerSourceLimiter {
    pub fn new(window: Duration, per_window: u32, max_sources: usize) -> Self {
        Self {
            window,
            per_window,
            max_sources,
            sources: HashMap::new(),
        }
    }

    pub fn admit(&mut self, source: IpAddr, now: Instant) -> Admit {
        if self.sources.len() >= self.max_sources && !self.sources.contains_key(&source) {
            let window = self.window;
            // Forget addresses whose window is over (their suppressed counts are lost with them); if every
            // address is active, forget them all rather than grow.
            self.sources.retain(|_, l| {
                l.window_start
                    .is_some_and(|start| now.saturating_duration_since(start) < window)
            });
            if self.sources.len() >= self.max_sources {
                self.sources.clear();
            }
        }
        self.sources
            .entry(source)
            .or_insert_with(|| LogLimiter::new(self.window, self.per_window))
            .admit(now)
    }
}

/// Logs a line about bad input from `peer` at WARN, unless its address has used its budget for this window
/// (`line` is only built when logged).
pub fn bad_input(peer: SocketAddr, line: impl FnOnce() -> String) {
    static LIMITER: OnceLock<Mutex<PerSourceLimiter>> = OnceLock::new();
    let admit = LIMITER
        .get_or_init(|| {
            Mutex::new(PerSourceLimiter::new(
                BAD_INPUT_WINDOW,
                BAD_INPUT_LINES,
                MAX_SOURCES,
            ))
        })
        .lock()
        .admit(peer.ip(), Instant::now());
    match admit {
        Admit::Drop => {}
        Admit::Log { suppressed: 0 } => tracing::warn!(%peer, "{}", line()),
        Admit::Log { suppressed } => tracing::warn!(
            %peer,
            suppressed,
            "{} ({suppressed} similar lines from {} suppressed)",
            line(),
            peer.ip()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_source_has_its_own_budget_and_the_map_stays_bounded() {
        let mut l = PerSourceLimiter::new(Duration::from_secs(10), 2, 3);
        let t0 = Instant::now();
        let ip = |n: u8| IpAddr::from([10, 0, 0, n]);
        assert_eq!(l.admit(ip(1), t0), Admit::Log { suppressed: 0 });
        assert_eq!(l.admit(ip(1), t0), Admit::Log { suppressed: 0 });
        assert_eq!(l.admit(ip(1), t0), Admit::Drop);
        // Another address is not silenced by the first one's flood.
        assert_eq!(l.admit(ip(2), t0), Admit::Log { suppressed: 0 });
        for n in 3..50 {
            l.admit(ip(n), t0 + Duration::from_secs(u64::from(n)));
            assert!(l.sources.len() <= 3);
        }
    }

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
