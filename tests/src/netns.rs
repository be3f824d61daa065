//! A small private network for partition tests: one Linux network namespace per node, each with a veth
//! pair into one bridge in the root namespace (where the test's clients run, on the bridge's address).
//! Addresses come from 198.18.0.0/15 (RFC 2544 benchmarking space), a /24 no root-namespace interface
//! uses yet.
//!
//! A partition is made with blackhole routes inside the namespaces ([`NetLab::cut`]): the cut node cannot
//! send to the nodes named, nor they to it, while every node still reaches the clients on the bridge
//! address. [`NetLab::heal`] removes them. Nothing but `ip` (iproute2) is needed.
//!
//! Names carry the creating process id (`kw<pid:06x><n>…`), so a lab left behind by a killed test run is
//! removed by the next one ([`NetLab::create`] deletes labs of dead processes), and dropping a [`NetLab`]
//! deletes its namespaces (which deletes their veth pairs) and its bridge, also when a test panics.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

use crate::error::HarnessError;

/// Where a cluster node runs: its address and, in a lab, the namespace to spawn it in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeHost {
    pub addr: Ipv4Addr,
    pub netns: Option<String>,
}

impl NodeHost {
    /// The root namespace's loopback: how the harness runs nodes by default.
    pub fn loopback() -> Self {
        NodeHost {
            addr: Ipv4Addr::LOCALHOST,
            netns: None,
        }
    }
}

/// One node's place in a lab.
#[derive(Debug, Clone)]
pub struct LabNode {
    pub netns: String,
    pub addr: Ipv4Addr,
}

/// A bridge and one namespace per node, removed on drop.
#[derive(Debug)]
pub struct NetLab {
    tag: String,
    bridge: String,
    gateway: Ipv4Addr,
    nodes: Vec<LabNode>,
    /// (from node, to address) blackhole routes currently installed.
    cuts: Mutex<BTreeSet<(usize, Ipv4Addr)>>,
}

/// Labs created by this process, so concurrent tests get distinct names.
static LABS: AtomicU32 = AtomicU32::new(0);
/// The first node address in a lab's /24 (`.1` is the bridge).
const FIRST_HOST: u8 = 10;

impl NetLab {
    /// Why labs cannot be made here (not root, no `ip`, namespaces refused), or `None` if they can.
    pub fn unavailable() -> Option<String> {
        // SAFETY: geteuid has no preconditions and touches no memory.
        if unsafe { libc::geteuid() } != 0 {
            return Some("not running as root".into());
        }
        if let Err(e) = ip(&["-V"]) {
            return Some(format!("no usable `ip` command: {e}"));
        }
        let probe = format!("kw{:06x}probe", std::process::id());
        match ip(&["netns", "add", &probe]) {
            Ok(_) => {
                let _ = ip(&["netns", "del", &probe]);
                None
            }
            Err(e) => Some(format!("cannot create a network namespace: {e}")),
        }
    }

    /// Creates a bridge and `n` namespaces wired to it, each with one address.
    pub fn create(n: usize) -> Result<NetLab, HarnessError> {
        if n == 0 || n > 200 {
            return Err(HarnessError::Cluster(format!("a lab of {n} nodes")));
        }
        remove_labs_of_dead_processes();
        let serial = LABS.fetch_add(1, Ordering::Relaxed);
        let tag = format!("kw{:06x}{:x}", std::process::id() & 0xff_ffff, serial % 16);
        let (a, b) = free_subnet()?;
        let gateway = Ipv4Addr::new(198, a, b, 1);
        let mut lab = NetLab {
            bridge: format!("{tag}br"),
            tag,
            gateway,
            nodes: Vec::new(),
            cuts: Mutex::new(BTreeSet::new()),
        };
        // From here on, Drop cleans up whatever was made.
        ip(&["link", "add", &lab.bridge, "type", "bridge"])?;
        ip(&["addr", "add", &format!("{gateway}/24"), "dev", &lab.bridge])?;
        ip(&["link", "set", &lab.bridge, "up"])?;
        for i in 0..n {
            let netns = format!("{}n{i}", lab.tag);
            let outside = format!("{}h{i}", lab.tag);
            let inside = format!("{}p{i}", lab.tag);
            let host = u8::try_from(usize::from(FIRST_HOST) + i)
                .map_err(|_| HarnessError::Cluster("too many nodes".into()))?;
            let addr = Ipv4Addr::new(198, a, b, host);
            ip(&["netns", "add", &netns])?;
            lab.nodes.push(LabNode {
                netns: netns.clone(),
                addr,
            });
            ip(&[
                "link", "add", &outside, "type", "veth", "peer", "name", &inside,
            ])?;
            ip(&["link", "set", &inside, "netns", &netns])?;
            ip(&["link", "set", &outside, "master", &lab.bridge, "up"])?;
            ip(&["-n", &netns, "link", "set", "lo", "up"])?;
            ip(&[
                "-n",
                &netns,
                "addr",
                "add",
                &format!("{addr}/24"),
                "dev",
                &inside,
            ])?;
            ip(&["-n", &netns, "link", "set", &inside, "up"])?;
        }
        Ok(lab)
    }

    pub fn nodes(&self) -> &[LabNode] {
        &self.nodes
    }

    /// The root namespace's address on the bridge: where clients connect from.
    pub fn gateway(&self) -> Ipv4Addr {
        self.gateway
    }

    /// Each node's [`NodeHost`], in order.
    pub fn hosts(&self) -> Vec<NodeHost> {
        self.nodes
            .iter()
            .map(|n| NodeHost {
                addr: n.addr,
                netns: Some(n.netns.clone()),
            })
            .collect()
    }

    /// Partitions node `a` from each node in `others` in both directions (blackhole routes in both
    /// namespaces); the clients on the bridge address still reach everyone.
    pub fn cut(&self, a: usize, others: &[usize]) -> Result<(), HarnessError> {
        for &o in others {
            if o == a {
                continue;
            }
            let (na, no) = (self.node(a)?, self.node(o)?);
            self.blackhole(a, no.addr)?;
            self.blackhole(o, na.addr)?;
        }
        Ok(())
    }

    /// Removes every cut.
    pub fn heal(&self) -> Result<(), HarnessError> {
        let cuts: Vec<(usize, Ipv4Addr)> = self.lock_cuts().iter().copied().collect();
        for (from, to) in cuts {
            let netns = self.node(from)?.netns.clone();
            ip(&[
                "-n",
                &netns,
                "route",
                "del",
                "blackhole",
                &format!("{to}/32"),
            ])?;
            self.lock_cuts().remove(&(from, to));
        }
        Ok(())
    }

    fn blackhole(&self, from: usize, to: Ipv4Addr) -> Result<(), HarnessError> {
        if self.lock_cuts().contains(&(from, to)) {
            return Ok(());
        }
        let netns = self.node(from)?.netns.clone();
        ip(&[
            "-n",
            &netns,
            "route",
            "add",
            "blackhole",
            &format!("{to}/32"),
        ])?;
        self.lock_cuts().insert((from, to));
        Ok(())
    }

    fn node(&self, i: usize) -> Result<&LabNode, HarnessError> {
        self.nodes
            .get(i)
            .ok_or_else(|| HarnessError::Cluster(format!("no node {i} in the lab")))
    }

    fn lock_cuts(&self) -> std::sync::MutexGuard<'_, BTreeSet<(usize, Ipv4Addr)>> {
        self.cuts.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for NetLab {
    fn drop(&mut self) {
        for n in &self.nodes {
            if let Err(e) = ip(&["netns", "del", &n.netns]) {
                eprintln!("removing namespace {}: {e}", n.netns);
            }
        }
        if let Err(e) = ip(&["link", "del", &self.bridge]) {
            eprintln!("removing bridge {}: {e}", self.bridge);
        }
    }
}

/// Runs `ip args...`; the error carries its stderr.
fn ip(args: &[&str]) -> Result<String, HarnessError> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| HarnessError::io(format!("running ip {}", args.join(" ")), e))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(HarnessError::Cluster(format!(
            "ip {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// A /24 of 198.18.0.0/15 (as its second and third octets) that no root-namespace address is in.
fn free_subnet() -> Result<(u8, u8), HarnessError> {
    let used = ip(&["-4", "-o", "addr", "show"])?;
    let taken: BTreeSet<(u8, u8)> = used
        .split_whitespace()
        .filter_map(|w| w.split('/').next()?.parse::<Ipv4Addr>().ok())
        .map(|a| (a.octets()[1], a.octets()[2]))
        .collect();
    let start = (std::process::id() % 512) as usize;
    (0..512)
        .map(|i| (start + i) % 512)
        .map(|i| (18 + (i / 256) as u8, (i % 256) as u8))
        .find(|s| !taken.contains(s))
        .ok_or_else(|| HarnessError::Cluster("no free /24 in 198.18.0.0/15".into()))
}

/// The pid in a lab name `kw<pid:06x><serial:x>...`, if `name` is one.
fn lab_pid(name: &str) -> Option<u32> {
    let hex = name.strip_prefix("kw")?.get(..6)?;
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(hex, 16).ok()
}

/// Deletes namespaces and bridges left by test processes that no longer run (killed before their drop).
fn remove_labs_of_dead_processes() {
    let alive = |pid: u32| std::path::Path::new(&format!("/proc/{pid}")).exists();
    if let Ok(list) = ip(&["netns", "list"]) {
        for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
            if lab_pid(name).is_some_and(|p| !alive(p)) {
                let _ = ip(&["netns", "del", name]);
            }
        }
    }
    if let Ok(list) = ip(&["-o", "link", "show", "type", "bridge"]) {
        for name in list
            .lines()
            .filter_map(|l| l.split(':').nth(1))
            .map(str::trim)
        {
            if name.ends_with("br") && lab_pid(name).is_some_and(|p| !alive(p)) {
                let _ = ip(&["link", "del", name]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lab_names_carry_the_pid() {
        assert_eq!(lab_pid("kw00abcd3n2"), Some(0xabcd));
        assert_eq!(lab_pid("kw00abcd3br"), Some(0xabcd));
        assert_eq!(lab_pid("kwzzzzzz3n2"), None);
        assert_eq!(lab_pid("other"), None);
        assert_eq!(lab_pid("kw12"), None);
    }
}
