//! Running Apache Kafka itself, as the reference the conformance tests compare Kraftwerk against.
//!
//! The jars are the ones the JVM tool suite uses: `tests/tools/pom.xml` names the Kafka version and
//! `mvn dependency:copy-dependencies` puts the broker and its runtime classpath into `tests/tools/lib`
//! (cached in ~/.m2, never committed). The broker runs in KRaft combined mode from the same
//! [`ServerProperties`] a Kraftwerk test node gets, formatted with `kafka.tools.StorageTool` and started
//! as `kafka.Kafka server.properties`, exactly as `scripts/bench-vs-kafka.sh` does.

use std::fs::{File, OpenOptions};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::HarnessError;
use crate::ports::free_ports;
use crate::properties::ServerProperties;
use crate::wire::probe_metadata;

/// A JVM on a busy 2-core machine may take a while to serve its first Metadata request.
pub const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a controlled shutdown may take before the JVM is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);
/// Kafka's default heap is 1 GiB; a test broker needs far less.
const HEAP: &str = "-Xmx512m";

/// `tests/tools`, which holds the pom and (once fetched) `lib/`.
pub fn tools_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tools")
}

/// The Kafka version `tests/tools/pom.xml` pins.
pub fn kafka_version() -> Result<String, HarnessError> {
    let pom = tools_dir().join("pom.xml");
    let text = std::fs::read_to_string(&pom)
        .map_err(|e| HarnessError::io(format!("reading {}", pom.display()), e))?;
    text.split("<kafka.version>")
        .nth(1)
        .and_then(|rest| rest.split("</kafka.version>").next())
        .map(|v| v.trim().to_string())
        .ok_or_else(|| HarnessError::Tool(format!("no <kafka.version> in {}", pom.display())))
}

/// Checks `java` runs, and fetches the jars into `tests/tools/lib` with mvn if they are not there yet.
/// Returns the classpath.
pub fn ensure_classpath() -> Result<String, HarnessError> {
    let java = Command::new("java")
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !java.is_ok_and(|s| s.success()) {
        return Err(HarnessError::Tool(
            "java (17 or later) is needed to run Apache Kafka for the conformance tests \
             (apt-get install openjdk-17-jre-headless); scripts/test.sh's JVM suite needs it too"
                .into(),
        ));
    }
    let version = kafka_version()?;
    let tools = tools_dir();
    let lib = tools.join("lib");
    if !lib.join(format!("kafka_2.13-{version}.jar")).is_file() {
        let output = Command::new("mvn")
            .args([
                "-B",
                "-q",
                "dependency:copy-dependencies",
                "-DoutputDirectory=lib",
                "-DincludeScope=runtime",
            ])
            .current_dir(&tools)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| {
                HarnessError::Tool(format!(
                    "mvn is needed to fetch Apache Kafka {version} into {} ({e})",
                    lib.display()
                ))
            })?;
        if !output.status.success() {
            return Err(HarnessError::Tool(format!(
                "mvn dependency:copy-dependencies failed in {}: {}{}",
                tools.display(),
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            )));
        }
    }
    Ok(format!("{}/*", lib.display()))
}

/// A running Apache Kafka broker (combined broker and controller, node 1) in its own temp dir.
/// Dropping it kills the JVM; a failing test prints the tail of its log first.
pub struct ApacheKafka {
    dir: tempfile::TempDir,
    port: u16,
    extra_port: u16,
    child: Option<Child>,
    log_path: PathBuf,
    classpath: String,
    config: PathBuf,
}

impl ApacheKafka {
    /// Formats a log dir for `cluster_id` and starts Kafka with the harness's single-node properties plus
    /// `overrides` (`{port}`, `{controller_port}` and `{extra_port}` in a value stand for the ports picked),
    /// waiting until it answers Metadata.
    pub fn start(cluster_id: &str, overrides: &[(&str, &str)]) -> Result<Self, HarnessError> {
        let classpath = ensure_classpath()?;
        let dir = tempfile::Builder::new()
            .prefix("apache-kafka-test-")
            .tempdir()
            .map_err(|e| HarnessError::io("creating temp dir", e))?;
        let (port, controller_port, extra_port) = match free_ports(3)?.as_slice() {
            [a, b, c] => (*a, *b, *c),
            _ => {
                return Err(HarnessError::Protocol(
                    "free_ports returned wrong count".into(),
                ))
            }
        };
        let mut props =
            ServerProperties::single_node(port, controller_port, &dir.path().join("data"));
        // `{port}`, `{controller_port}` and `{extra_port}` in a value are the ports picked here, as for a
        // Kraftwerk test broker (BrokerBuilder::prop), so an override can add a listener beside them.
        for (k, v) in overrides {
            let v = v
                .replace("{port}", &port.to_string())
                .replace("{controller_port}", &controller_port.to_string())
                .replace("{extra_port}", &extra_port.to_string());
            props.set(*k, v);
        }
        let config = dir.path().join("server.properties");
        std::fs::write(&config, props.render())
            .map_err(|e| HarnessError::io("writing server.properties", e))?;
        let log_path = dir.path().join("kafka.log");

        let format = Command::new("java")
            .args([
                "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
                "-cp",
                &classpath,
            ])
            .args(["kafka.tools.StorageTool", "format", "-t", cluster_id, "-c"])
            .arg(&config)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| HarnessError::io("running kafka.tools.StorageTool format", e))?;
        if !format.status.success() {
            return Err(HarnessError::Tool(format!(
                "kafka.tools.StorageTool format failed: {}{}",
                String::from_utf8_lossy(&format.stdout),
                String::from_utf8_lossy(&format.stderr)
            )));
        }

        let mut kafka = ApacheKafka {
            dir,
            port,
            extra_port,
            child: None,
            log_path,
            classpath,
            config,
        };
        kafka.spawn()?;
        kafka.wait_ready()?;
        Ok(kafka)
    }

    /// Runs `kafka.Kafka` on the formatted dir, its output appended to the log.
    fn spawn(&mut self) -> Result<(), HarnessError> {
        let log = open_log(&self.log_path)?;
        let log2 = open_log(&self.log_path)?;
        let child = Command::new("java")
            .args([HEAP, "-XX:+UseG1GC", "-Djava.awt.headless=true"])
            .args([
                "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
                "-cp",
                &self.classpath,
            ])
            .arg("kafka.Kafka")
            .arg(&self.config)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(|e| HarnessError::io("spawning java kafka.Kafka", e))?;
        self.child = Some(child);
        Ok(())
    }

    /// Stops the broker with SIGTERM (Kafka's controlled shutdown; SIGKILL after [`STOP_TIMEOUT`]) and starts
    /// it again on the same dir and ports, waiting until it serves.
    pub fn restart(&mut self) -> Result<(), HarnessError> {
        if let Some(child) = self.child.take() {
            let pid = libc::pid_t::try_from(child.id())
                .map_err(|_| HarnessError::Protocol("pid out of range".into()))?;
            // SAFETY: kill(2) with a pid we spawned and still own (not yet reaped) has no memory effects.
            let rc = unsafe { libc::kill(pid, libc::SIGTERM) };
            if rc != 0 {
                return Err(HarnessError::io(
                    "sending SIGTERM to Apache Kafka",
                    std::io::Error::last_os_error(),
                ));
            }
            crate::broker::wait_or_kill(child, STOP_TIMEOUT)
                .map_err(|e| HarnessError::io("waiting for Apache Kafka to exit", e))?;
        }
        self.spawn()?;
        self.wait_ready()
    }

    /// The PLAINTEXT listener.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// The port `{extra_port}` stood for in the overrides (a listener a test added).
    pub fn extra_port(&self) -> u16 {
        self.extra_port
    }

    /// The temp dir holding server.properties, data and the log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The broker's stdout and stderr so far.
    pub fn log_contents(&self) -> String {
        std::fs::read(&self.log_path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    fn log_tail(&self) -> String {
        let log = self.log_contents();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    fn wait_ready(&mut self) -> Result<(), HarnessError> {
        let started = Instant::now();
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                return Err(HarnessError::Tool(format!(
                    "Apache Kafka exited with {status} before serving; log tail:\n{}",
                    self.log_tail()
                )));
            }
            let last_error = match probe_metadata(self.addr(), Duration::from_secs(5)) {
                Ok(_) => return Ok(()),
                Err(e) => e.to_string(),
            };
            if started.elapsed() > READY_TIMEOUT {
                return Err(HarnessError::Tool(format!(
                    "Apache Kafka not serving after {READY_TIMEOUT:?} (last error: {last_error}); \
                     log tail:\n{}",
                    self.log_tail()
                )));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

fn open_log(path: &Path) -> Result<File, HarnessError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| HarnessError::io("opening Apache Kafka's log", e))
}

impl Drop for ApacheKafka {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "===== Apache Kafka log (last 40 lines) =====\n{}\n===== end of Apache Kafka log =====",
                self.log_tail()
            );
        }
    }
}
