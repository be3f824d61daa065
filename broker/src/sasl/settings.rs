//! The SASL settings of one listener, read as Kafka reads them: `listener.name.<listener, lower case>.<key>` wins
//! over the broker-wide key, and a mechanism's JAAS text is `listener.name.<l>.<mechanism, lower case>.sasl.jaas.config`,
//! else `sasl.jaas.config`. Pure parsing; every mistake stops the start with the key to fix.

use std::collections::BTreeMap;
use std::time::Duration;

use super::jaas;
use super::SaslConfigError;

/// The `sasl.*` keys read for a SASL listener (also under the `listener.name.<l>.` prefix).
pub const SASL_KEYS: &[&str] = &[
    "sasl.enabled.mechanisms",
    "sasl.jaas.config",
    "sasl.mechanism.controller.protocol",
    "sasl.mechanism.inter.broker.protocol",
    "sasl.server.max.receive.size",
    "connection.failed.authentication.delay.ms",
];

pub(crate) const PLAIN_LOGIN_MODULE: &str =
    "org.apache.kafka.common.security.plain.PlainLoginModule";
pub(crate) const SCRAM_LOGIN_MODULE: &str =
    "org.apache.kafka.common.security.scram.ScramLoginModule";

/// The mechanisms Kraftwerk serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mechanism {
    Plain,
    ScramSha256,
    ScramSha512,
}

impl Mechanism {
    /// The name clients send in SaslHandshake.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "PLAIN" => Some(Mechanism::Plain),
            "SCRAM-SHA-256" => Some(Mechanism::ScramSha256),
            "SCRAM-SHA-512" => Some(Mechanism::ScramSha512),
            _ => None,
        }
    }

    pub fn is_scram(self) -> bool {
        self != Mechanism::Plain
    }
}

/// Everything needed to authenticate clients on one listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaslSettings {
    pub listener: String,
    /// `sasl.enabled.mechanisms`, in the configured order (SaslHandshake answers with this list).
    pub mechanisms: Vec<Mechanism>,
    /// PLAIN users and passwords (`user_<name>="<password>"` of the PlainLoginModule entry).
    pub plain_users: BTreeMap<String, String>,
    /// `connection.failed.authentication.delay.ms`: a failed login is answered (and closed) only after this.
    pub failed_auth_delay: Duration,
    /// `sasl.server.max.receive.size`: the largest frame accepted before authentication.
    pub max_receive_size: usize,
}

pub(crate) use crate::config::listener_setting as lookup;

fn setting(key: &str, value: &str, reason: impl Into<String>) -> SaslConfigError {
    SaslConfigError::Setting {
        key: key.to_string(),
        value: value.to_string(),
        reason: reason.into(),
    }
}

pub(crate) fn parse_mechanisms(key: &str, value: &str) -> Result<Vec<Mechanism>, SaslConfigError> {
    let mut out = Vec::new();
    for name in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let mechanism = match name {
            "GSSAPI" => {
                return Err(setting(
                    key,
                    value,
                    "GSSAPI (Kerberos) is not supported by Kraftwerk; use PLAIN (over SASL_SSL), SCRAM-SHA-256 \
                     or SCRAM-SHA-512",
                ))
            }
            "OAUTHBEARER" => {
                return Err(setting(
                    key,
                    value,
                    "OAUTHBEARER is not supported by Kraftwerk; use PLAIN (over SASL_SSL), SCRAM-SHA-256 or \
                     SCRAM-SHA-512",
                ))
            }
            other => Mechanism::from_name(other).ok_or_else(|| {
                setting(
                    key,
                    value,
                    format!("unknown SASL mechanism {other}: expected PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"),
                )
            })?,
        };
        if !out.contains(&mechanism) {
            out.push(mechanism);
        }
    }
    Ok(out)
}

fn positive<T: std::str::FromStr + PartialOrd + Default>(
    props: &BTreeMap<String, String>,
    listener: &str,
    key: &str,
    default: T,
) -> Result<T, SaslConfigError> {
    match lookup(props, listener, key) {
        None => Ok(default),
        Some((key, v)) => match v.trim().parse::<T>() {
            Ok(n) if n >= T::default() => Ok(n),
            _ => Err(setting(&key, v, "expected a non-negative number")),
        },
    }
}

impl SaslSettings {
    /// Reads the settings of SASL listener `listener`; `idle` is `connections.max.idle.ms`, which the failed
    /// authentication delay must stay below (as Kafka requires).
    pub fn from_props(
        listener: &str,
        props: &BTreeMap<String, String>,
        idle: Duration,
    ) -> Result<Self, SaslConfigError> {
        let Some((mech_key, mech_value)) = lookup(props, listener, "sasl.enabled.mechanisms")
        else {
            return Err(SaslConfigError::Missing {
                listener: listener.to_string(),
                what: format!(
                    "sasl.enabled.mechanisms (or listener.name.{}.sasl.enabled.mechanisms): Kafka's default is \
                     GSSAPI, which Kraftwerk does not serve; set it to PLAIN, SCRAM-SHA-256 and/or SCRAM-SHA-512",
                    listener.to_ascii_lowercase()
                ),
            });
        };
        let mechanisms = parse_mechanisms(&mech_key, mech_value)?;
        if mechanisms.is_empty() {
            return Err(setting(
                &mech_key,
                mech_value,
                "no mechanism enabled: list PLAIN, SCRAM-SHA-256 and/or SCRAM-SHA-512",
            ));
        }
        let mut plain_users = BTreeMap::new();
        for &mechanism in &mechanisms {
            let jaas_key = format!("{}.sasl.jaas.config", mechanism.name().to_ascii_lowercase());
            let found = lookup(props, listener, &jaas_key).or_else(|| {
                props
                    .get("sasl.jaas.config")
                    .map(|v| ("sasl.jaas.config".to_string(), v.as_str()))
            });
            let entry = match found {
                Some((key, text)) => Some((
                    key.clone(),
                    jaas::parse(text).map_err(|e| setting(&key, "(hidden)", e.to_string()))?,
                )),
                None => None,
            };
            match (mechanism, entry) {
                (Mechanism::Plain, None) => {
                    return Err(SaslConfigError::Missing {
                        listener: listener.to_string(),
                        what: format!(
                            "the PLAIN users: set listener.name.{}.plain.sasl.jaas.config (or sasl.jaas.config) to \
                             {PLAIN_LOGIN_MODULE} required user_<name>=\"<password>\" ...;",
                            listener.to_ascii_lowercase()
                        ),
                    })
                }
                (Mechanism::Plain, Some((key, entry))) => {
                    if entry.login_module != PLAIN_LOGIN_MODULE {
                        return Err(setting(
                            &key,
                            "(hidden)",
                            format!(
                                "PLAIN needs the login module {PLAIN_LOGIN_MODULE}, not {}",
                                entry.login_module
                            ),
                        ));
                    }
                    plain_users = entry.plain_users();
                    if plain_users.is_empty() {
                        return Err(setting(
                            &key,
                            "(hidden)",
                            "no user_<name>=\"<password>\" option: nobody could log in with PLAIN",
                        ));
                    }
                }
                (_, Some((key, entry))) => {
                    // SCRAM credentials live in the metadata log; the JAAS entry (Kafka's is for the broker's own
                    // logins) is optional, but if given it must be the SCRAM module.
                    if entry.login_module != SCRAM_LOGIN_MODULE && key != "sasl.jaas.config" {
                        return Err(setting(
                            &key,
                            "(hidden)",
                            format!(
                                "{} needs the login module {SCRAM_LOGIN_MODULE}, not {}",
                                mechanism.name(),
                                entry.login_module
                            ),
                        ));
                    }
                }
                (_, None) => {}
            }
        }
        let delay_ms: u64 = positive(
            props,
            listener,
            "connection.failed.authentication.delay.ms",
            100,
        )?;
        let failed_auth_delay = Duration::from_millis(delay_ms);
        if failed_auth_delay >= idle {
            return Err(setting(
                "connection.failed.authentication.delay.ms",
                &delay_ms.to_string(),
                "must be less than connections.max.idle.ms",
            ));
        }
        let max_receive_size: usize =
            positive(props, listener, "sasl.server.max.receive.size", 524_288)?;
        if max_receive_size < 64 {
            return Err(setting(
                "sasl.server.max.receive.size",
                &max_receive_size.to_string(),
                "must be at least 64 bytes (a SaslHandshake request does not fit in less)",
            ));
        }
        Ok(SaslSettings {
            listener: listener.to_string(),
            mechanisms,
            plain_users,
            failed_auth_delay,
            max_receive_size,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDLE: Duration = Duration::from_secs(600);

    fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const JAAS: &str = "org.apache.kafka.common.security.plain.PlainLoginModule required \
                        user_alice=\"alice-secret\";";

    #[test]
    fn per_listener_keys_win_over_broker_wide_ones() {
        let p = props(&[
            ("sasl.enabled.mechanisms", "GSSAPI"),
            (
                "listener.name.client.sasl.enabled.mechanisms",
                "PLAIN,SCRAM-SHA-512",
            ),
            ("listener.name.client.plain.sasl.jaas.config", JAAS),
            ("connection.failed.authentication.delay.ms", "250"),
        ]);
        let s = SaslSettings::from_props("CLIENT", &p, IDLE).unwrap();
        assert_eq!(s.mechanisms, vec![Mechanism::Plain, Mechanism::ScramSha512]);
        assert_eq!(s.plain_users["alice"], "alice-secret");
        assert_eq!(s.failed_auth_delay, Duration::from_millis(250));
        assert_eq!(s.max_receive_size, 524_288);
        // The broker-wide GSSAPI is what another listener would get.
        let err = SaslSettings::from_props("OTHER", &p, IDLE)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("GSSAPI") && err.contains("not supported"),
            "{err}"
        );
    }

    #[test]
    fn missing_mechanisms_are_refused_with_what_to_set() {
        let err = SaslSettings::from_props("SASL_PLAINTEXT", &props(&[]), IDLE)
            .unwrap_err()
            .to_string();
        assert!(err.contains("sasl.enabled.mechanisms"), "{err}");
        assert!(
            err.contains("listener.name.sasl_plaintext.sasl.enabled.mechanisms"),
            "{err}"
        );
    }

    #[test]
    fn oauthbearer_and_unknown_mechanisms_are_refused() {
        for m in ["OAUTHBEARER", "DIGEST-MD5", ""] {
            let p = props(&[("sasl.enabled.mechanisms", m)]);
            assert!(SaslSettings::from_props("L", &p, IDLE).is_err(), "{m}");
        }
    }

    #[test]
    fn plain_needs_users_from_the_plain_module() {
        let p = props(&[("sasl.enabled.mechanisms", "PLAIN")]);
        let err = SaslSettings::from_props("L", &p, IDLE)
            .unwrap_err()
            .to_string();
        assert!(err.contains("plain.sasl.jaas.config"), "{err}");
        let p = props(&[
            ("sasl.enabled.mechanisms", "PLAIN"),
            (
                "sasl.jaas.config",
                "com.example.Other required user_a=\"b\";",
            ),
        ]);
        let err = SaslSettings::from_props("L", &p, IDLE)
            .unwrap_err()
            .to_string();
        assert!(err.contains("PlainLoginModule"), "{err}");
        // The broker-wide JAAS key is accepted.
        let p = props(&[
            ("sasl.enabled.mechanisms", "PLAIN"),
            ("sasl.jaas.config", JAAS),
        ]);
        assert!(SaslSettings::from_props("L", &p, IDLE).is_ok());
        let p = props(&[
            ("sasl.enabled.mechanisms", "PLAIN"),
            (
                "sasl.jaas.config",
                "org.apache.kafka.common.security.plain.PlainLoginModule required username=\"a\" password=\"b\";",
            ),
        ]);
        let err = SaslSettings::from_props("L", &p, IDLE)
            .unwrap_err()
            .to_string();
        assert!(err.contains("nobody could log in"), "{err}");
        // A JAAS syntax error names the key but not the passwords.
        let p = props(&[
            ("sasl.enabled.mechanisms", "PLAIN"),
            (
                "listener.name.l.plain.sasl.jaas.config",
                "X required user_a=\"secret",
            ),
        ]);
        let err = SaslSettings::from_props("L", &p, IDLE)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("listener.name.l.plain.sasl.jaas.config"),
            "{err}"
        );
        assert!(!err.contains("secret"), "{err}");
    }

    #[test]
    fn limits_are_honoured_and_checked() {
        let base = [("sasl.enabled.mechanisms", "SCRAM-SHA-256")];
        let mut p = props(&base);
        p.insert("sasl.server.max.receive.size".into(), "1024".into());
        p.insert(
            "connection.failed.authentication.delay.ms".into(),
            "0".into(),
        );
        let s = SaslSettings::from_props("L", &p, IDLE).unwrap();
        assert_eq!(s.max_receive_size, 1024);
        assert_eq!(s.failed_auth_delay, Duration::ZERO);
        p.insert(
            "connection.failed.authentication.delay.ms".into(),
            "600000".into(),
        );
        assert!(SaslSettings::from_props("L", &p, IDLE).is_err());
        p.insert(
            "connection.failed.authentication.delay.ms".into(),
            "-1".into(),
        );
        assert!(SaslSettings::from_props("L", &p, IDLE).is_err());
    }
}
