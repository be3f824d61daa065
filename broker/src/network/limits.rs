//! Connection limits, as Kafka's `ConnectionQuotas`: `max.connections` (and per listener
//! `listener.name.<l>.max.connections`) caps open connections by pausing accepts until one closes, so clients
//! wait in the kernel's backlog instead of being refused; `max.connections.per.ip` (with
//! `max.connections.per.ip.overrides`, `host:count,...`) closes a new connection from an address that already
//! has its share, so one runaway client cannot take every slot.
//!
//! Pure bookkeeping: the accept loop asks, the returned guard gives the slot back when the connection ends.
//! `max.connections`, `max.connections.per.ip` and its overrides change at run time (`kafka-configs
//! --entity-type brokers --alter`), as in Kafka: a lower limit applies to new connections, the open ones stay.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::config::ConfigError;

/// The broker keys read here, all dynamic.
pub const CONNECTION_KEYS: &[&str] = &[
    "max.connections",
    "max.connections.per.ip",
    "max.connections.per.ip.overrides",
];

/// `max.connections`, `max.connections.per.ip` and `max.connections.per.ip.overrides`, validated as Kafka does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionSettings {
    /// `None`: Kafka's default, `Int.MaxValue`, taken as no limit.
    pub max_connections: Option<usize>,
    pub per_ip: usize,
    pub per_ip_overrides: HashMap<IpAddr, usize>,
}

impl ConnectionSettings {
    /// Reads the three keys from `props` (Kafka's defaults when absent).
    pub fn from_properties(props: &BTreeMap<String, String>) -> Result<Self, ConfigError> {
        let invalid = |key: &str, value: &str, reason: &str| ConfigError::Invalid {
            key: key.to_string(),
            value: value.to_string(),
            reason: reason.to_string(),
        };
        let count = |key: &str| -> Result<i64, ConfigError> {
            let Some(raw) = props.get(key) else {
                return Ok(i64::from(i32::MAX));
            };
            let n: i32 = raw
                .trim()
                .parse()
                .map_err(|_| invalid(key, raw, "not a number of type INT"))?;
            if n < 0 {
                return Err(invalid(key, raw, "must be at least 0"));
            }
            Ok(i64::from(n))
        };
        let max = count("max.connections")?;
        let per_ip = count("max.connections.per.ip")?;
        let per_ip_overrides = match props.get("max.connections.per.ip.overrides") {
            None => HashMap::new(),
            Some(v) => parse_overrides(v)
                .map_err(|reason| invalid("max.connections.per.ip.overrides", v, &reason))?,
        };
        if per_ip == 0 && per_ip_overrides.is_empty() {
            return Err(invalid(
                "max.connections.per.ip",
                "0",
                "0 refuses every client; Kafka allows it only with max.connections.per.ip.overrides",
            ));
        }
        Ok(Self {
            max_connections: (max < i64::from(i32::MAX))
                .then(|| usize::try_from(max).unwrap_or(usize::MAX)),
            per_ip: usize::try_from(per_ip).unwrap_or(usize::MAX),
            per_ip_overrides,
        })
    }
}

/// The broker's connection limits with what server.properties set, for applying dynamic values over it.
pub struct DynamicLimits {
    pub static_props: BTreeMap<String, String>,
    pub broker: Arc<ConnectionCap>,
    pub per_ip: Arc<PerIpLimits>,
}

impl DynamicLimits {
    /// Applies `dynamic` (this broker's dynamic configs over the cluster defaults) over the static values when
    /// the result differs from `applied`, the settings in force. The controller validated each value; a
    /// combination still refused (a dynamic `max.connections.per.ip=0` with overrides only in server.properties
    /// removed meanwhile) leaves the settings in force, with an error in the log.
    pub fn apply(
        &self,
        dynamic: &BTreeMap<String, String>,
        applied: &mut Option<ConnectionSettings>,
    ) {
        let mut props = self.static_props.clone();
        for key in CONNECTION_KEYS {
            if let Some(v) = dynamic.get(*key) {
                props.insert((*key).to_string(), v.clone());
            }
        }
        let settings = match ConnectionSettings::from_properties(&props) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "dynamic connection limits not applied");
                return;
            }
        };
        if applied.as_ref() == Some(&settings) {
            return;
        }
        if applied.is_some() {
            tracing::info!(
                max_connections = ?settings.max_connections,
                per_ip = settings.per_ip,
                overrides = ?settings.per_ip_overrides,
                "connection limits reconfigured"
            );
        }
        self.broker.set_max(settings.max_connections);
        self.per_ip
            .reconfigure(settings.per_ip, settings.per_ip_overrides.clone());
        *applied = Some(settings);
    }
}

/// A connection count whose limit can change while connections are open (`max.connections`, or a listener's
/// `listener.name.<l>.max.connections`): accepts wait while the count is at the limit.
#[derive(Debug)]
pub struct ConnectionCap {
    /// `usize::MAX`: no limit.
    max: AtomicUsize,
    open: AtomicUsize,
    freed: Notify,
}

/// A connection's place under a [`ConnectionCap`]; given back on drop.
#[derive(Debug)]
pub struct CapSlot(Arc<ConnectionCap>);

impl Drop for CapSlot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
        self.0.freed.notify_waiters();
    }
}

impl ConnectionCap {
    /// A cap of `max` connections (`None`: unlimited until set).
    pub fn new(max: Option<usize>) -> Arc<Self> {
        Arc::new(Self {
            max: AtomicUsize::new(max.unwrap_or(usize::MAX)),
            open: AtomicUsize::new(0),
            freed: Notify::new(),
        })
    }

    /// Changes the limit; waiting accepts go on if it rose. Connections above a lowered limit stay open.
    pub fn set_max(&self, max: Option<usize>) {
        self.max.store(max.unwrap_or(usize::MAX), Ordering::Release);
        self.freed.notify_waiters();
    }

    /// The limit now (`None`: unlimited).
    pub fn max(&self) -> Option<usize> {
        Some(self.max.load(Ordering::Acquire)).filter(|&m| m != usize::MAX)
    }

    /// Connections counted now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// A slot, at once if the count is below the limit, else once a connection closes or the limit rises.
    pub async fn acquire(self: &Arc<Self>) -> CapSlot {
        loop {
            // Registered before the check, so a slot freed in between is not missed.
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if let Some(slot) = self.try_acquire() {
                return slot;
            }
            freed.await;
        }
    }

    /// A slot if the count is below the limit now.
    pub fn try_acquire(self: &Arc<Self>) -> Option<CapSlot> {
        let mut open = self.open.load(Ordering::Acquire);
        loop {
            if open >= self.max.load(Ordering::Acquire) {
                return None;
            }
            match self.open.compare_exchange_weak(
                open,
                open + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Some(CapSlot(self.clone())),
                Err(now) => open = now,
            }
        }
    }
}

/// Per-address limits, shared by every listener of the broker.
#[derive(Debug)]
pub struct PerIpLimits {
    /// (`max.connections.per.ip`, `max.connections.per.ip.overrides`), replaced by [`Self::reconfigure`].
    limits: parking_lot::RwLock<(usize, HashMap<IpAddr, usize>)>,
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
            limits: parking_lot::RwLock::new((default_max, overrides)),
            open: Mutex::new(HashMap::new()),
        })
    }

    /// New limits for new connections (open ones stay, as in Kafka).
    pub fn reconfigure(&self, default_max: usize, overrides: HashMap<IpAddr, usize>) {
        *self.limits.write() = (default_max, overrides);
    }

    /// The limit for `ip`.
    pub fn limit(&self, ip: IpAddr) -> usize {
        let limits = self.limits.read();
        limits.1.get(&ip).copied().unwrap_or(limits.0)
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
    fn per_ip_limits_change_for_new_connections() {
        let limits = PerIpLimits::new(1, HashMap::new());
        let a = limits.admit(ip("10.0.0.1")).unwrap();
        assert!(limits.admit(ip("10.0.0.1")).is_err());
        limits.reconfigure(3, HashMap::new());
        let b = limits.admit(ip("10.0.0.1")).unwrap();
        // Lowered under what is open: the open ones stay, new ones wait for the count to drop.
        limits.reconfigure(5, parse_overrides("10.0.0.1:1").unwrap());
        assert_eq!(limits.admit(ip("10.0.0.1")).unwrap_err(), 1);
        assert_eq!(limits.open_from(ip("10.0.0.1")), 2);
        assert!(limits.admit(ip("10.0.0.2")).is_ok());
        drop((a, b));
        assert!(limits.admit(ip("10.0.0.1")).is_ok());
    }

    #[tokio::test]
    async fn a_cap_changed_at_run_time_lets_waiting_accepts_go_on() {
        let cap = ConnectionCap::new(Some(1));
        let a = cap.acquire().await;
        assert!(cap.try_acquire().is_none());
        let waiting = tokio::spawn({
            let cap = cap.clone();
            async move { cap.acquire().await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "admitted beyond the limit");
        // Raised: the waiting accept goes on without any connection closing.
        cap.set_max(Some(2));
        let b = tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
            .await
            .expect("the raised limit woke the waiting accept")
            .unwrap();
        assert_eq!(cap.open(), 2);
        // Lowered below what is open: nothing is closed, new ones wait until the count is below it.
        cap.set_max(Some(1));
        assert!(cap.try_acquire().is_none());
        drop(a);
        assert!(cap.try_acquire().is_none(), "still 1 open at a limit of 1");
        drop(b);
        let c = cap.try_acquire().expect("below the limit again");
        cap.set_max(None);
        assert_eq!(cap.max(), None);
        let many: Vec<_> = (0..100).map(|_| cap.try_acquire().unwrap()).collect();
        assert_eq!(cap.open(), 101);
        drop((c, many));
        assert_eq!(cap.open(), 0);
    }

    #[test]
    fn settings_are_validated_as_kafka_does() {
        let props = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let d = ConnectionSettings::from_properties(&BTreeMap::new()).unwrap();
        assert_eq!(d.max_connections, None);
        assert_eq!(d.per_ip, i32::MAX as usize);
        let s = ConnectionSettings::from_properties(&props(&[
            ("max.connections", "10"),
            ("max.connections.per.ip", "0"),
            ("max.connections.per.ip.overrides", "127.0.0.1:4"),
        ]))
        .unwrap();
        assert_eq!((s.max_connections, s.per_ip), (Some(10), 0));
        assert_eq!(s.per_ip_overrides[&ip("127.0.0.1")], 4);
        for bad in [
            ("max.connections", "-1"),
            ("max.connections", "many"),
            ("max.connections.per.ip", "0"),
            ("max.connections.per.ip", "3000000000"),
            ("max.connections.per.ip.overrides", "localhost"),
        ] {
            assert!(
                ConnectionSettings::from_properties(&props(&[bad])).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn overrides_must_be_addresses_and_counts() {
        assert!(parse_overrides("").unwrap().is_empty());
        assert!(parse_overrides("host-without-count").is_err());
        assert!(parse_overrides("10.0.0.1:many").is_err());
        assert!(parse_overrides("not-an-ip:3").is_err());
    }
}
