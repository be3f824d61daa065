//! The `server.properties` file a test broker is started with.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// Kafka-style properties for a single combined broker+controller node on loopback.
///
/// A `BTreeMap` keeps the file deterministic, and later `set` calls override the defaults, so a test can
/// change any key (for example `log.segment.bytes`) without the harness knowing about it.
#[derive(Debug, Clone)]
pub struct ServerProperties {
    entries: BTreeMap<String, String>,
}

impl ServerProperties {
    /// No keys at all, for callers (the cluster harness) that set every key themselves.
    pub fn empty() -> Self {
        ServerProperties {
            entries: BTreeMap::new(),
        }
    }

    /// Defaults for node 1 serving PLAINTEXT on `port` and its controller on `controller_port`,
    /// with its log in `log_dir`.
    pub fn single_node(port: u16, controller_port: u16, log_dir: &Path) -> Self {
        let mut p = ServerProperties {
            entries: BTreeMap::new(),
        };
        p.set("process.roles", "broker,controller");
        p.set("node.id", "1");
        p.set(
            "controller.quorum.voters",
            format!("1@127.0.0.1:{controller_port}"),
        );
        p.set("controller.listener.names", "CONTROLLER");
        p.set(
            "listeners",
            format!("PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}"),
        );
        p.set(
            "listener.security.protocol.map",
            "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        );
        p.set(
            "advertised.listeners",
            format!("PLAINTEXT://127.0.0.1:{port}"),
        );
        p.set("log.dirs", log_dir.display().to_string());
        p.set("num.partitions", "1");
        p.set("default.replication.factor", "1");
        // One broker: Kafka's default of 3 would leave __consumer_offsets uncreatable.
        p.set("offsets.topic.replication.factor", "1");
        p.set("auto.create.topics.enable", "true");
        p
    }

    /// Sets (or replaces) one key.
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.entries.insert(key.into(), value.into());
        self
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries.get(key).map(String::as_str)
    }

    /// The file contents, one `key=value` per line.
    pub fn render(&self) -> String {
        let mut out = String::from("# written by the kraftwerk test harness\n");
        for (k, v) in &self.entries {
            // Writing to a String cannot fail.
            let _ = writeln!(out, "{k}={v}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_defaults_and_overrides() {
        let mut p = ServerProperties::single_node(9000, 9001, Path::new("/tmp/x"));
        p.set("num.partitions", "3");
        let text = p.render();
        assert!(
            text.contains("\nlisteners=PLAINTEXT://127.0.0.1:9000,CONTROLLER://127.0.0.1:9001\n")
        );
        assert!(text.contains("\ncontroller.quorum.voters=1@127.0.0.1:9001\n"));
        assert!(text.contains("\nnum.partitions=3\n"));
        assert!(!text.contains("num.partitions=1"));
        assert_eq!(p.get("log.dirs"), Some("/tmp/x"));
    }
}
