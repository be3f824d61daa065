//! Running one `kraftwerk` process: format, start, wait until it serves, kill, restart, stop.

use std::fs::{File, OpenOptions};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use kafka_protocol::messages::MetadataResponse;

use crate::binary::kraftwerk_binary;
use crate::error::HarnessError;
use crate::ports::free_ports;
use crate::properties::ServerProperties;
use crate::wire::probe_metadata;
use crate::wire::Connection;

/// How long a broker may take from spawn to answering Metadata (debug builds, a busy 2-core machine).
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long SIGTERM may take before we give up and kill -9.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// How much of the log an error message quotes.
const LOG_TAIL_BYTES: usize = 8 * 1024;
/// How much of the log a failed test prints.
const LOG_ON_PANIC_BYTES: usize = 64 * 1024;

/// Configures a broker before starting it.
#[derive(Debug, Clone, Default)]
pub struct BrokerBuilder {
    overrides: Vec<(String, String)>,
    cli_overrides: Vec<(String, String)>,
    ready_timeout: Option<Duration>,
    rust_log: Option<String>,
    cluster_id: Option<String>,
}

impl BrokerBuilder {
    /// Formats with this cluster id instead of a fresh `kraftwerk random-uuid`.
    pub fn cluster_id(mut self, id: impl Into<String>) -> Self {
        self.cluster_id = Some(id.into());
        self
    }

    /// Sets a server.properties key (replacing the harness default, if any). `{port}`, `{controller_port}` and
    /// `{extra_port}` in the value become the ports the harness picked (to add listeners beside the default
    /// ones; see [`Broker::extra_port`]).
    pub fn prop(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.overrides.push((key.into(), value.into()));
        self
    }

    /// Passes `--override key=value` on the command line (the file keeps its own value), to test that
    /// the command line wins over server.properties.
    pub fn cli_override(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.cli_overrides.push((key.into(), value.into()));
        self
    }

    /// Overrides [`DEFAULT_READY_TIMEOUT`].
    pub fn ready_timeout(mut self, timeout: Duration) -> Self {
        self.ready_timeout = Some(timeout);
        self
    }

    /// Sets `RUST_LOG` for the broker (default: the test's own `RUST_LOG`, else `info`).
    pub fn rust_log(mut self, filter: impl Into<String>) -> Self {
        self.rust_log = Some(filter.into());
        self
    }

    /// Picks ports, writes server.properties into a new temp dir, formats the log dir, spawns the
    /// broker and waits until it answers a Metadata request.
    pub fn start(self) -> Result<Broker, HarnessError> {
        let dir = tempfile::Builder::new()
            .prefix("kraftwerk-test-")
            .tempdir()
            .map_err(|e| HarnessError::io("creating temp dir", e))?;
        let ports = free_ports(3)?;
        let (port, controller_port, extra_port) = match ports.as_slice() {
            [a, b, c] => (*a, *b, *c),
            _ => {
                return Err(HarnessError::Protocol(
                    "free_ports returned wrong count".into(),
                ))
            }
        };
        let mut props =
            ServerProperties::single_node(port, controller_port, &dir.path().join("data"));
        for (k, v) in &self.overrides {
            let v = v
                .replace("{port}", &port.to_string())
                .replace("{controller_port}", &controller_port.to_string())
                .replace("{extra_port}", &extra_port.to_string());
            props.set(k.clone(), v);
        }
        let config_path = dir.path().join("server.properties");
        std::fs::write(&config_path, props.render())
            .map_err(|e| HarnessError::io("writing server.properties", e))?;
        let mut broker = Broker {
            binary: kraftwerk_binary()?,
            log_path: dir.path().join("kraftwerk.log"),
            config_path,
            cli_overrides: self.cli_overrides,
            port,
            controller_port,
            extra_port,
            child: None,
            ready_timeout: self.ready_timeout.unwrap_or(DEFAULT_READY_TIMEOUT),
            rust_log: self
                .rust_log
                .or_else(|| std::env::var("RUST_LOG").ok())
                .unwrap_or_else(|| "info".to_string()),
            started_at: None,
            dir,
        };
        broker.format(self.cluster_id.as_deref())?;
        broker.spawn_and_wait()?;
        Ok(broker)
    }
}

/// A running (or killed) `kraftwerk` process with its own temp dir and ports.
///
/// Dropping it kills the process; if the thread is panicking (a failed test), the broker log is
/// printed to stderr first so the failure can be diagnosed.
pub struct Broker {
    binary: PathBuf,
    dir: tempfile::TempDir,
    config_path: PathBuf,
    cli_overrides: Vec<(String, String)>,
    log_path: PathBuf,
    port: u16,
    controller_port: u16,
    extra_port: u16,
    child: Option<Child>,
    ready_timeout: Duration,
    rust_log: String,
    started_at: Option<Duration>,
}

impl Broker {
    /// Starts a broker with the harness defaults.
    pub fn start() -> Result<Broker, HarnessError> {
        Self::builder().start()
    }

    /// A builder for non-default properties.
    pub fn builder() -> BrokerBuilder {
        BrokerBuilder::default()
    }

    /// `host:port` for client `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The PLAINTEXT listener address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// A wire connection to the PLAINTEXT listener (10 s to connect) whose reads give up after `read_timeout`.
    pub fn connect(&self, read_timeout: Duration) -> Result<Connection, HarnessError> {
        let conn = Connection::connect(self.addr(), Duration::from_secs(10))?;
        conn.set_read_timeout(read_timeout)?;
        Ok(conn)
    }

    /// The controller listener port.
    pub fn controller_port(&self) -> u16 {
        self.controller_port
    }

    /// A third port picked with the other two, for a listener a test adds (`{extra_port}` in a property).
    pub fn extra_port(&self) -> u16 {
        self.extra_port
    }

    /// The server.properties file the broker runs with.
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// The binary this broker runs.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// The temp dir holding server.properties, the data dir and the log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Path of the combined stdout/stderr log (appended across restarts).
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The OS process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// How long the last start took from spawn until it answered Metadata.
    pub fn last_start_duration(&self) -> Option<Duration> {
        self.started_at
    }

    /// The whole log so far (lossy UTF-8, ANSI colour codes removed); empty if it cannot be read.
    pub fn log_contents(&self) -> String {
        std::fs::read(&self.log_path)
            .map(|b| strip_ansi(&String::from_utf8_lossy(&b)))
            .unwrap_or_default()
    }

    /// The last few KiB of the log.
    pub fn log_tail(&self) -> String {
        self.log_last_bytes(LOG_TAIL_BYTES)
    }

    fn log_last_bytes(&self, n: usize) -> String {
        let log = self.log_contents();
        let mut start = log.len().saturating_sub(n);
        while !log.is_char_boundary(start) {
            start += 1;
        }
        log.get(start..).unwrap_or_default().to_string()
    }

    /// True if the process is running (reaps it if it has exited).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut().map(Child::try_wait) {
            Some(Ok(None)) => true,
            Some(Ok(Some(_))) | Some(Err(_)) | None => false,
        }
    }

    /// The exit status, if the process has exited (without waiting).
    pub fn try_exit_status(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// One Metadata round trip over the harness's own wire client.
    pub fn metadata(&self) -> Result<MetadataResponse, HarnessError> {
        probe_metadata(self.addr(), Duration::from_secs(10))
    }

    /// SIGKILL, as a crash would: no shutdown hooks run, nothing is flushed by the broker.
    pub fn kill9(&mut self) -> Result<(), HarnessError> {
        let mut child = self.child.take().ok_or(HarnessError::NotRunning)?;
        child
            .kill()
            .map_err(|e| HarnessError::io("sending SIGKILL", e))?;
        child
            .wait()
            .map_err(|e| HarnessError::io("reaping killed broker", e))?;
        Ok(())
    }

    /// SIGTERM and wait for a clean exit; returns its exit status. Kills -9 and errors after
    /// [`STOP_TIMEOUT`].
    pub fn stop(&mut self) -> Result<ExitStatus, HarnessError> {
        let child = self.child.take().ok_or(HarnessError::NotRunning)?;
        let pid = libc::pid_t::try_from(child.id())
            .map_err(|_| HarnessError::Protocol("pid out of range".into()))?;
        // SAFETY: kill(2) with a pid we spawned and still own (not yet reaped) has no memory effects.
        let rc = unsafe { libc::kill(pid, libc::SIGTERM) };
        if rc != 0 {
            return Err(HarnessError::io(
                "sending SIGTERM",
                std::io::Error::last_os_error(),
            ));
        }
        match wait_or_kill(child, STOP_TIMEOUT) {
            Ok(Some(status)) => Ok(status),
            Ok(None) => Err(HarnessError::StopTimeout(STOP_TIMEOUT)),
            Err(e) => Err(HarnessError::io("waiting for broker exit", e)),
        }
    }

    /// Starts the process again on the same dir and ports (stopping it first with SIGTERM if it is
    /// still running) and waits until it serves.
    pub fn restart(&mut self) -> Result<(), HarnessError> {
        if self.is_running() {
            self.stop()?;
        }
        self.child = None;
        self.spawn_and_wait()
    }

    fn format(&self, cluster_id: Option<&str>) -> Result<(), HarnessError> {
        let uuid = match cluster_id {
            Some(id) => id.to_string(),
            None => self.run_helper(&["random-uuid"])?,
        };
        let cluster_id = uuid.trim();
        self.run_helper(&[
            "format",
            "--config",
            &self.config_path.display().to_string(),
            "--cluster-id",
            cluster_id,
        ])?;
        Ok(())
    }

    /// Runs a `kraftwerk` subcommand to completion and returns its stdout.
    fn run_helper(&self, args: &[&str]) -> Result<String, HarnessError> {
        run_subcommand(&self.binary, self.dir.path(), &self.rust_log, args)
    }

    fn open_log(&self) -> Result<File, HarnessError> {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .map_err(|e| HarnessError::io("opening broker log", e))
    }

    fn spawn_and_wait(&mut self) -> Result<(), HarnessError> {
        let stdout = self.open_log()?;
        let stderr = self.open_log()?;
        let mut command = Command::new(&self.binary);
        command.arg("--config").arg(&self.config_path);
        for (k, v) in &self.cli_overrides {
            command.arg("--override").arg(format!("{k}={v}"));
        }
        let spawned = Instant::now();
        let child = command
            .current_dir(self.dir.path())
            .env("RUST_LOG", &self.rust_log)
            .env("RUST_BACKTRACE", "1")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .map_err(|e| HarnessError::io(format!("spawning {}", self.binary.display()), e))?;
        self.child = Some(child);
        self.wait_ready(spawned)?;
        self.started_at = Some(spawned.elapsed());
        Ok(())
    }

    /// Polls until a Metadata request succeeds, failing fast if the process exits.
    fn wait_ready(&mut self, spawned: Instant) -> Result<(), HarnessError> {
        loop {
            if let Some(status) = self.try_exit_status() {
                self.child = None;
                return Err(HarnessError::ExitedEarly {
                    status,
                    log_tail: self.log_tail(),
                });
            }
            let last_error = match probe_metadata(self.addr(), Duration::from_secs(2)) {
                Ok(_) => return Ok(()),
                Err(e) => e.to_string(),
            };
            if spawned.elapsed() > self.ready_timeout {
                return Err(HarnessError::NotReady {
                    waited: self.ready_timeout,
                    last_error,
                    log_tail: self.log_tail(),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Removes ANSI escape sequences (`ESC [ ... final-byte`), so log text reads and searches plainly even
/// if the broker colours its output.
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            // Parameters and intermediates run until a final byte in '@'..='~'.
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "===== kraftwerk log ({}, last {} KiB) =====\n{}\n===== end of kraftwerk log =====",
                self.log_path.display(),
                LOG_ON_PANIC_BYTES / 1024,
                self.log_last_bytes(LOG_ON_PANIC_BYTES)
            );
        }
    }
}

/// Runs a `kraftwerk` subcommand (`format`, `random-uuid`) in `dir` to completion and returns its stdout; a
/// non-zero exit is an error carrying both outputs.
pub fn run_subcommand(
    binary: &Path,
    dir: &Path,
    rust_log: &str,
    args: &[&str],
) -> Result<String, HarnessError> {
    let output = Command::new(binary)
        .args(args)
        .current_dir(dir)
        .env("RUST_LOG", rust_log)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| HarnessError::io(format!("running kraftwerk {}", args.join(" ")), e))?;
    if !output.status.success() {
        return Err(HarnessError::CommandFailed {
            command: args.join(" "),
            status: output.status,
            output: format!(
                "stdout: {} stderr: {}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Waits up to `timeout` for `child` to exit; past it, kills it with SIGKILL, reaps it and returns `Ok(None)`.
pub(crate) fn wait_or_kill(
    mut child: Child,
    timeout: Duration,
) -> std::io::Result<Option<ExitStatus>> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::strip_ansi;

    #[test]
    fn strip_ansi_removes_colour_codes_only() {
        let coloured = "\u{1b}[2m2026\u{1b}[0m \u{1b}[31mERROR\u{1b}[0m closing [x]";
        assert_eq!(strip_ansi(coloured), "2026 ERROR closing [x]");
        assert_eq!(strip_ansi("plain"), "plain");
    }
}
