//! TLS for SSL listeners (rustls): the listener's settings ([`settings`]), its certificate, key and trusted
//! certificates read from PEM, PKCS#12 or JKS stores ([`keystore`]), the rustls server configuration and the
//! principal a client certificate names ([`acceptor`]).

pub mod acceptor;
pub mod keystore;
pub mod principal;
pub mod settings;

pub use acceptor::TlsListener;
pub use settings::SslSettings;

/// Why an SSL listener cannot start. Every message names the setting or file to fix.
#[derive(Debug, thiserror::Error)]
pub enum TlsConfigError {
    #[error("invalid value {value:?} for {key}: {reason}")]
    Setting {
        key: String,
        value: String,
        reason: String,
    },
    #[error("SSL listener {listener} needs {what}")]
    Missing {
        listener: String,
        what: &'static str,
    },
    #[error("SSL listener {listener}: {detail}")]
    Conflict {
        listener: String,
        detail: &'static str,
    },
    #[error("cannot read the {what} {path}: {error}")]
    Read {
        what: &'static str,
        path: String,
        error: String,
    },
    #[error("the {what} {path} is unusable: {detail}")]
    Invalid {
        what: &'static str,
        path: String,
        detail: String,
    },
    #[error("SSL listener {listener}: {detail}")]
    Rustls { listener: String, detail: String },
}

impl TlsConfigError {
    fn setting(key: &str, value: &str, reason: &str) -> Self {
        TlsConfigError::Setting {
            key: key.to_string(),
            value: value.to_string(),
            reason: reason.to_string(),
        }
    }
}
