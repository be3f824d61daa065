//! SASL on SASL_PLAINTEXT listeners, and SASL_SSL ones after the TLS handshake (client listeners, the
//! inter-broker listener and the controller listener), as Apache Kafka's `SaslServerAuthenticator` does it: before
//! authentication a connection may send only ApiVersions, SaslHandshake and SaslAuthenticate; then it is served as
//! `User:<name>`. The other side, for the connections nodes make to each other, is [`client`].
//!
//! - [`settings`]: the listener's `sasl.*` keys and its users, read at start (a mistake stops the start).
//! - [`jaas`]: the `sasl.jaas.config` text that names PLAIN users.
//! - [`mechanism`]: one authentication exchange, PLAIN or SCRAM-SHA-256/512, run by the `rsasl` crate.
//! - [`authenticator`]: the per-connection state machine, pure (frames in, replies and a verdict out).
//! - [`client`]: the dialling side, for the connections nodes make to each other's SASL listeners.
//! - failed logins are logged through [`crate::network::log_limit`], so a flood of them cannot flood the log.

pub mod authenticator;
pub mod client;
pub mod jaas;
pub mod mechanism;
pub mod settings;

pub use authenticator::{Failure, Outcome, SaslAuthenticator};
pub use client::{SaslClient, SaslClientError, SaslClientSettings};
pub use mechanism::SaslListener;
pub use settings::{Mechanism, SaslSettings};

/// Why a SASL listener cannot start. Every message names the key to fix.
#[derive(Debug, thiserror::Error)]
pub enum SaslConfigError {
    #[error("invalid value {value:?} for {key}: {reason}")]
    Setting {
        key: String,
        value: String,
        reason: String,
    },
    #[error("SASL listener {listener} needs {what}")]
    Missing { listener: String, what: String },
}
