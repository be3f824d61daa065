//! Free loopback ports for brokers started by tests.

use std::net::{Ipv4Addr, TcpListener};

use crate::error::HarnessError;

/// Returns a port on 127.0.0.1 that was free a moment ago.
///
/// The OS picks it (bind to port 0), so parallel tests do not collide on a fixed range; the small race
/// between dropping our listener and the broker binding is acceptable for tests.
pub fn free_port() -> Result<u16, HarnessError> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| HarnessError::io("binding 127.0.0.1:0 to find a free port", e))?;
    let port = listener
        .local_addr()
        .map_err(|e| HarnessError::io("reading the bound port", e))?
        .port();
    Ok(port)
}

/// Returns `n` distinct free ports (held open together while picking so they cannot repeat).
pub fn free_ports(n: usize) -> Result<Vec<u16>, HarnessError> {
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        held.push(
            TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                .map_err(|e| HarnessError::io("binding 127.0.0.1:0 to find a free port", e))?,
        );
    }
    held.iter()
        .map(|l| {
            l.local_addr()
                .map(|a| a.port())
                .map_err(|e| HarnessError::io("reading the bound port", e))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_distinct_and_bindable() {
        let ports = free_ports(3).unwrap();
        assert_eq!(ports.len(), 3);
        assert_ne!(ports[0], ports[1]);
        assert_ne!(ports[1], ports[2]);
        assert_ne!(ports[0], ports[2]);
        for p in ports {
            TcpListener::bind((Ipv4Addr::LOCALHOST, p)).unwrap();
        }
    }
}
