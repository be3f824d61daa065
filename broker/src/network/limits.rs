//! Connection limits, as Kafka's `ConnectionQuotas`: `max.connections` (and per listener
//! `listener.name.<l>.max.connections`) caps open connections by pausing accepts until one closes, so clients
//! wait in the kernel's backlog instead of being refused; `max.connections.per.ip` (with
//! `max.connections.per.ip.overrides`, `host:count,...`) closes a new connection from an address that already
//! has its share, so one runaway client cannot take every slot.
//!
//! Pure bookkeeping: the accept loop asks, the returned guard gives the slot back when the connection ends.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use parking_lot::Mutex;

/// Per-address limits, shared by every listener of the broker.
#[derive(Debug)]
pub struct PerIpLimits {
    default_max: usize,
    overrides: HashMap<IpAddr, usize>,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// An admitted connection's slot for its address; released on drop.
#[derive(Debug)]
pub struct IpSlot {
    limits: Arc<PerIpLimits>,
    ip: IpAddr,
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut open = self.limits.open.lock();
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

impl PerIpLimits {
    pub fn new(default_max: usize, overrides: HashMap<IpAddr, usize>) -> Arc<Self> {
        Arc::new(Self {
            default_max,
            overrides,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// The limit for `ip`.
    pub fn limit(&self, ip: IpAddr) -> usize {
        self.overrides.get(&ip).copied().unwrap_or(self.default_max)
    }

    /// A slot for a new connection from `ip`, or `Err(limit)` when the address already has `limit` open.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<IpSlot, usize> {
        let limit = self.limit(ip);
        let mut open = self.open.lock();
        let n = open.entry(ip).or_insert(0);
        if *n >= limit {
            if *n == 0 {
                open.remove(&ip);
            }
            return Err(limit);
        }
        *n += 1;
        Ok(IpSlot {
            limits: self.clone(),
            ip,
        })
    }

    /// Connections open from `ip` now.
    pub fn open_from(&self, ip: IpAddr) -> usize {
        self.open.lock().get(&ip).copied().unwrap_or(0)
    }
}

/// Parses `max.connections.per.ip.overrides`: `host:count` pairs separated by commas (IP addresses; Kafka also
/// resolves host names, which a broker configured by address does not need).
pub fn parse_overrides(value: &str) -> Result<HashMap<IpAddr, usize>, String> {
    let mut out = HashMap::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (host, count) = item
            .rsplit_once(':')
            .ok_or_else(|| format!("{item:?} is not host:count"))?;
        let ip: IpAddr = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .map_err(|_| format!("{host:?} is not an IP address"))?;
        let count: usize = count
            .parse()
            .map_err(|_| format!("{count:?} is not a connection count"))?;
        out.insert(ip, count);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_address_gets_its_share_and_slots_come_back() {
        let limits = PerIpLimits::new(2, parse_overrides("10.0.0.9:0, [::1]:3").unwrap());
        let a = limits.admit(ip("10.0.0.1")).unwrap();
        let b = limits.admit(ip("10.0.0.1")).unwrap();
        assert_eq!(limits.admit(ip("10.0.0.1")).unwrap_err(), 2);
        // Others are not affected.
        let _c = limits.admit(ip("10.0.0.2")).unwrap();
        drop(a);
        let _d = limits.admit(ip("10.0.0.1")).unwrap();
        drop(b);
        assert_eq!(limits.open_from(ip("10.0.0.1")), 1);
        // Overrides: none for .9, three for ::1.
        assert_eq!(limits.admit(ip("10.0.0.9")).unwrap_err(), 0);
        let v6: Vec<_> = (0..3).map(|_| limits.admit(ip("::1")).unwrap()).collect();
        assert!(limits.admit(ip("::1")).is_err());
        drop(v6);
        assert_eq!(limits.open_from(ip("::1")), 0);
    }

    #[test]
    fn overrides_must_be_addresses_and_counts() {
        assert!(parse_overrides("").unwrap().is_empty());
        assert!(parse_overrides("host-without-count").is_err());
        assert!(parse_overrides("10.0.0.1:many").is_err());
        assert!(parse_overrides("not-an-ip:3").is_err());
    }
}
