//! The one error type the harness returns, so a failing test prints which step broke and why.

use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

/// Everything that can go wrong while running a broker or talking to it.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// An I/O call failed; `context` says which step.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// No `kraftwerk` binary at any of the searched paths.
    #[error(
        "kraftwerk binary not found (searched {searched:?}); build it with \
         `cargo build -p kraftwerk-broker --bin kraftwerk` or set KRAFTWERK_BIN"
    )]
    BinaryNotFound { searched: Vec<PathBuf> },
    /// A helper command (`random-uuid`, `format`) exited unsuccessfully.
    #[error("`kraftwerk {command}` failed with {status}: {output}")]
    CommandFailed {
        command: String,
        status: ExitStatus,
        output: String,
    },
    /// The broker process exited while we waited for it to serve.
    #[error("kraftwerk exited with {status} before serving; log tail:\n{log_tail}")]
    ExitedEarly {
        status: ExitStatus,
        log_tail: String,
    },
    /// The broker did not answer a Metadata request within the deadline.
    #[error(
        "kraftwerk not serving after {waited:?} (last error: {last_error}); log tail:\n{log_tail}"
    )]
    NotReady {
        waited: Duration,
        last_error: String,
        log_tail: String,
    },
    /// SIGTERM did not make the broker exit within the deadline (it was then killed).
    #[error("kraftwerk did not exit within {0:?} of SIGTERM")]
    StopTimeout(Duration),
    /// The broker is not running but the call needs it to be.
    #[error("kraftwerk is not running")]
    NotRunning,
    /// Encoding a request or decoding a response failed.
    #[error("protocol codec error while {what}: {message}")]
    Codec { what: &'static str, message: String },
    /// The peer sent something that breaks the protocol (wrong correlation id, absurd size, ...).
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// A multi-node cluster did not reach the state a test waited for (see [`crate::cluster`]).
    #[error("cluster: {0}")]
    Cluster(String),
    /// A tool the harness runs (java, mvn, Apache Kafka's own scripts) is missing or failed.
    #[error("{0}")]
    Tool(String),
    /// The peer closed the connection before a whole response arrived.
    #[error("connection closed by peer")]
    Closed,
}

impl HarnessError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        HarnessError::Io {
            context: context.into(),
            source,
        }
    }
}
