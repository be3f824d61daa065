//! The `ssl.*` settings of one listener, read the way Kafka reads them: a key prefixed with
//! `listener.name.<listener, lower case>.` wins over the broker-wide key, so one broker can serve an internal and
//! an external listener with different certificates. Pure parsing, no I/O: the files are read by
//! [`super::keystore`] when the listener starts.
//!
//! Every `ssl.*` key the broker accepts is honoured; the ones that name something rustls does not do (JSSE
//! cipher-suite names, protocols older than TLS 1.2, custom principal mapping rules) stop the start with a
//! message instead of being ignored.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::TlsConfigError;

/// The `ssl.*` keys read for an SSL listener (also under the `listener.name.<l>.` prefix).
pub const SSL_KEYS: &[&str] = &[
    "ssl.keystore.type",
    "ssl.keystore.location",
    "ssl.keystore.password",
    "ssl.key.password",
    "ssl.keystore.key",
    "ssl.keystore.certificate.chain",
    "ssl.truststore.type",
    "ssl.truststore.location",
    "ssl.truststore.password",
    "ssl.truststore.certificates",
    "ssl.client.auth",
    "ssl.enabled.protocols",
    "ssl.protocol",
    "ssl.cipher.suites",
    "ssl.principal.mapping.rules",
    "ssl.endpoint.identification.algorithm",
];

/// `ssl.keystore.type` / `ssl.truststore.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreType {
    Pem,
    Pkcs12,
    Jks,
}

impl StoreType {
    fn parse(key: &str, value: &str) -> Result<Self, TlsConfigError> {
        match value.trim().to_ascii_uppercase().as_str() {
            "PEM" => Ok(StoreType::Pem),
            "PKCS12" => Ok(StoreType::Pkcs12),
            "JKS" => Ok(StoreType::Jks),
            _ => Err(TlsConfigError::setting(
                key,
                value,
                "expected JKS, PKCS12 or PEM",
            )),
        }
    }
}

/// Where a store's contents come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSource {
    /// `ssl.keystore.location` / `ssl.truststore.location`.
    File(PathBuf),
    /// PEM text given in the configuration itself (`ssl.keystore.key` + `ssl.keystore.certificate.chain`,
    /// `ssl.truststore.certificates`), as Kafka allows for `type=PEM`.
    Inline { key: Option<String>, certs: String },
}

/// The broker's certificate chain and private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyStoreSpec {
    pub store_type: StoreType,
    pub source: StoreSource,
    /// `ssl.keystore.password`: opens a JKS or PKCS12 file.
    pub password: Option<String>,
    /// `ssl.key.password`: decrypts the key entry of a JKS file (else the store password is used).
    pub key_password: Option<String>,
}

/// The certificates a client's certificate must chain to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustStoreSpec {
    pub store_type: StoreType,
    pub source: StoreSource,
    pub password: Option<String>,
}

/// `ssl.client.auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuth {
    #[default]
    None,
    /// A client may present a certificate; if it does, it must be valid.
    Requested,
    /// A client must present a valid certificate.
    Required,
}

/// TLS protocol versions (`ssl.enabled.protocols`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsVersion {
    Tls12,
    Tls13,
}

impl TlsVersion {
    /// rustls's protocol versions for `versions`.
    pub fn rustls(versions: &[TlsVersion]) -> Vec<&'static rustls::SupportedProtocolVersion> {
        versions
            .iter()
            .map(|v| match v {
                TlsVersion::Tls12 => &rustls::version::TLS12,
                TlsVersion::Tls13 => &rustls::version::TLS13,
            })
            .collect()
    }
}

/// Everything needed to serve one listener over TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SslSettings {
    pub listener: String,
    pub keystore: KeyStoreSpec,
    pub truststore: Option<TrustStoreSpec>,
    pub client_auth: ClientAuth,
    pub versions: Vec<TlsVersion>,
}

use crate::config::listener_setting as lookup;

/// A non-empty value, or `None`.
fn value<'a>(
    props: &'a BTreeMap<String, String>,
    listener: &str,
    key: &str,
) -> Option<(String, &'a str)> {
    lookup(props, listener, key).filter(|(_, v)| !v.trim().is_empty())
}

impl SslSettings {
    /// Reads the settings of SSL listener `listener` from the broker's properties.
    pub fn from_props(
        listener: &str,
        props: &BTreeMap<String, String>,
    ) -> Result<Self, TlsConfigError> {
        let get = |key: &str| value(props, listener, key);
        if let Some((key, v)) = get("ssl.cipher.suites") {
            return Err(TlsConfigError::setting(
                &key,
                v,
                "cipher suites are rustls's own (TLS 1.3 and ECDHE suites of TLS 1.2); remove the setting",
            ));
        }
        if let Some((key, v)) = get("ssl.principal.mapping.rules") {
            if v.trim() != "DEFAULT" {
                return Err(TlsConfigError::setting(
                    &key,
                    v,
                    "only DEFAULT is supported: the principal is the certificate's subject",
                ));
            }
        }
        let keystore = keystore_spec(props, listener)?;
        let truststore = truststore_spec(props, listener)?;
        let client_auth = match get("ssl.client.auth") {
            None => ClientAuth::None,
            Some((key, v)) => match v.trim().to_ascii_lowercase().as_str() {
                "none" => ClientAuth::None,
                "requested" => ClientAuth::Requested,
                "required" => ClientAuth::Required,
                _ => {
                    return Err(TlsConfigError::setting(
                        &key,
                        v,
                        "expected none, requested or required",
                    ))
                }
            },
        };
        if client_auth != ClientAuth::None && truststore.is_none() {
            return Err(TlsConfigError::Missing {
                listener: listener.to_string(),
                what: "ssl.truststore.location (or ssl.truststore.certificates): ssl.client.auth checks client certificates against it",
            });
        }
        let versions = versions(props, listener)?;
        Ok(SslSettings {
            listener: listener.to_string(),
            keystore,
            truststore,
            client_auth,
            versions,
        })
    }
}

/// What a node needs to connect to another node's SSL listener (the controller listener, the inter-broker
/// listener): a truststore to check the server, optionally a keystore to present when the server requires client
/// certificates, and whether the server's name is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SslClientSettings {
    pub listener: String,
    pub keystore: Option<KeyStoreSpec>,
    pub truststore: TrustStoreSpec,
    /// `ssl.endpoint.identification.algorithm`: `https` (Kafka's default) checks the host name against the
    /// certificate; empty does not.
    pub verify_hostname: bool,
    pub versions: Vec<TlsVersion>,
}

impl SslClientSettings {
    /// Reads the client side of `listener`'s settings (the same keys, and `listener.name.<l>.` prefix, as the
    /// server side).
    pub fn from_props(
        listener: &str,
        props: &BTreeMap<String, String>,
    ) -> Result<Self, TlsConfigError> {
        let truststore = truststore_spec(props, listener)?.ok_or_else(|| TlsConfigError::Missing {
            listener: listener.to_string(),
            what: "ssl.truststore.location (or ssl.truststore.certificates): brokers and controllers check the \
                   certificates of the SSL listeners they connect to against it",
        })?;
        let has_keystore = [
            "ssl.keystore.location",
            "ssl.keystore.key",
            "ssl.keystore.certificate.chain",
        ]
        .iter()
        .any(|k| value(props, listener, k).is_some());
        let keystore = if has_keystore {
            Some(keystore_spec(props, listener)?)
        } else {
            None
        };
        let verify_hostname = match lookup(props, listener, "ssl.endpoint.identification.algorithm")
        {
            None => true,
            Some((_, v)) if v.trim().is_empty() => false,
            Some((_, v)) if v.trim().eq_ignore_ascii_case("https") => true,
            Some((key, v)) => {
                return Err(TlsConfigError::setting(
                    &key,
                    v,
                    "expected https (check the host name) or empty (do not)",
                ))
            }
        };
        Ok(SslClientSettings {
            listener: listener.to_string(),
            keystore,
            truststore,
            verify_hostname,
            versions: versions(props, listener)?,
        })
    }
}

fn keystore_spec(
    props: &BTreeMap<String, String>,
    listener: &str,
) -> Result<KeyStoreSpec, TlsConfigError> {
    let get = |key: &str| value(props, listener, key);
    let inline_key = get("ssl.keystore.key");
    let inline_chain = get("ssl.keystore.certificate.chain");
    let location = get("ssl.keystore.location");
    let store_type = match get("ssl.keystore.type") {
        Some((key, v)) => StoreType::parse(&key, v)?,
        // Kafka's default is JKS; inline PEM implies PEM.
        None if inline_key.is_some() || inline_chain.is_some() => StoreType::Pem,
        None => StoreType::Jks,
    };
    let source = match (location, inline_key, inline_chain) {
        (Some((_, path)), None, None) => StoreSource::File(PathBuf::from(path.trim())),
        (None, Some((_, key)), Some((_, chain))) if store_type == StoreType::Pem => {
            StoreSource::Inline {
                key: Some(key.to_string()),
                certs: chain.to_string(),
            }
        }
        (None, None, None) => {
            return Err(TlsConfigError::Missing {
                listener: listener.to_string(),
                what: "ssl.keystore.location (or, with ssl.keystore.type=PEM, ssl.keystore.key and ssl.keystore.certificate.chain): the listener's certificate and key",
            })
        }
        _ => {
            return Err(TlsConfigError::Conflict {
                listener: listener.to_string(),
                detail: "give either ssl.keystore.location, or both ssl.keystore.key and ssl.keystore.certificate.chain with ssl.keystore.type=PEM",
            })
        }
    };
    Ok(KeyStoreSpec {
        store_type,
        source,
        password: get("ssl.keystore.password").map(|(_, v)| v.to_string()),
        key_password: get("ssl.key.password").map(|(_, v)| v.to_string()),
    })
}

fn truststore_spec(
    props: &BTreeMap<String, String>,
    listener: &str,
) -> Result<Option<TrustStoreSpec>, TlsConfigError> {
    let get = |key: &str| value(props, listener, key);
    let inline = get("ssl.truststore.certificates");
    let location = get("ssl.truststore.location");
    let store_type = match get("ssl.truststore.type") {
        Some((key, v)) => StoreType::parse(&key, v)?,
        None if inline.is_some() => StoreType::Pem,
        None => StoreType::Jks,
    };
    let source = match (location, inline) {
        (None, None) => return Ok(None),
        (Some((_, path)), None) => StoreSource::File(PathBuf::from(path.trim())),
        (None, Some((_, certs))) if store_type == StoreType::Pem => StoreSource::Inline {
            key: None,
            certs: certs.to_string(),
        },
        _ => {
            return Err(TlsConfigError::Conflict {
                listener: listener.to_string(),
                detail: "give either ssl.truststore.location, or ssl.truststore.certificates with ssl.truststore.type=PEM",
            })
        }
    };
    Ok(Some(TrustStoreSpec {
        store_type,
        source,
        password: get("ssl.truststore.password").map(|(_, v)| v.to_string()),
    }))
}

fn versions(
    props: &BTreeMap<String, String>,
    listener: &str,
) -> Result<Vec<TlsVersion>, TlsConfigError> {
    let parse_one = |key: &str, item: &str| match item.trim() {
        "TLSv1.2" => Ok(TlsVersion::Tls12),
        "TLSv1.3" => Ok(TlsVersion::Tls13),
        other => Err(TlsConfigError::setting(
            key,
            other,
            "only TLSv1.2 and TLSv1.3 are supported",
        )),
    };
    if let Some((key, v)) = value(props, listener, "ssl.protocol") {
        // The protocol the context is created with; Kafka's default TLSv1.3 still allows 1.2 through
        // ssl.enabled.protocols. "TLS" means any version.
        if v.trim() != "TLS" {
            parse_one(&key, v)?;
        }
    }
    let mut out = Vec::new();
    match value(props, listener, "ssl.enabled.protocols") {
        None => out.extend([TlsVersion::Tls13, TlsVersion::Tls12]),
        Some((key, v)) => {
            for item in v.split(',').filter(|s| !s.trim().is_empty()) {
                let version = parse_one(&key, item)?;
                if !out.contains(&version) {
                    out.push(version);
                }
            }
            if out.is_empty() {
                return Err(TlsConfigError::setting(&key, v, "no protocol enabled"));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_jks_keystore_with_kafkas_defaults() {
        let s = SslSettings::from_props(
            "SSL",
            &props(&[
                ("ssl.keystore.location", "/etc/kafka/keystore.jks"),
                ("ssl.keystore.password", "secret"),
                ("ssl.key.password", "keysecret"),
            ]),
        )
        .expect("valid");
        assert_eq!(s.keystore.store_type, StoreType::Jks);
        assert_eq!(
            s.keystore.source,
            StoreSource::File("/etc/kafka/keystore.jks".into())
        );
        assert_eq!(s.keystore.key_password.as_deref(), Some("keysecret"));
        assert_eq!(s.truststore, None);
        assert_eq!(s.client_auth, ClientAuth::None);
        assert_eq!(s.versions, vec![TlsVersion::Tls13, TlsVersion::Tls12]);
    }

    #[test]
    fn the_listener_prefix_wins() {
        let p = props(&[
            ("ssl.keystore.location", "/broker-wide.p12"),
            (
                "listener.name.external.ssl.keystore.location",
                "/external.p12",
            ),
            ("listener.name.external.ssl.keystore.type", "PKCS12"),
        ]);
        let ext = SslSettings::from_props("EXTERNAL", &p).expect("valid");
        assert_eq!(
            ext.keystore.source,
            StoreSource::File("/external.p12".into())
        );
        assert_eq!(ext.keystore.store_type, StoreType::Pkcs12);
        let other = SslSettings::from_props("INTERNAL", &p).expect("valid");
        assert_eq!(
            other.keystore.source,
            StoreSource::File("/broker-wide.p12".into())
        );
    }

    #[test]
    fn inline_pem_is_accepted() {
        let s = SslSettings::from_props(
            "SSL",
            &props(&[
                ("ssl.keystore.type", "PEM"),
                ("ssl.keystore.key", "-----BEGIN PRIVATE KEY-----"),
                (
                    "ssl.keystore.certificate.chain",
                    "-----BEGIN CERTIFICATE-----",
                ),
                ("ssl.truststore.certificates", "-----BEGIN CERTIFICATE-----"),
                ("ssl.client.auth", "required"),
            ]),
        )
        .expect("valid");
        assert!(matches!(s.keystore.source, StoreSource::Inline { .. }));
        assert_eq!(s.truststore.map(|t| t.store_type), Some(StoreType::Pem));
        assert_eq!(s.client_auth, ClientAuth::Required);
    }

    #[test]
    fn the_client_side_needs_a_truststore_and_may_skip_the_host_name() {
        let p = props(&[
            (
                "listener.name.controller.ssl.truststore.location",
                "/ca.p12",
            ),
            ("listener.name.controller.ssl.truststore.type", "PKCS12"),
            ("ssl.endpoint.identification.algorithm", ""),
        ]);
        let c = SslClientSettings::from_props("CONTROLLER", &p).expect("valid");
        assert_eq!(c.keystore, None);
        assert!(!c.verify_hostname);
        assert_eq!(c.truststore.store_type, StoreType::Pkcs12);
        let err = SslClientSettings::from_props("INTERNAL", &p)
            .unwrap_err()
            .to_string();
        assert!(err.contains("ssl.truststore.location"), "{err}");
        let mut p = p;
        p.insert("ssl.endpoint.identification.algorithm".into(), "dns".into());
        let err = SslClientSettings::from_props("CONTROLLER", &p)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("ssl.endpoint.identification.algorithm"),
            "{err}"
        );
    }

    #[test]
    fn mistakes_are_refused_with_the_key() {
        let base = [("ssl.keystore.location", "/k.jks")];
        let refuse = |extra: &[(&str, &str)], needle: &str| {
            let mut p = props(&base);
            p.extend(props(extra));
            let err = SslSettings::from_props("SSL", &p).unwrap_err().to_string();
            assert!(err.contains(needle), "{err}");
        };
        refuse(&[("ssl.enabled.protocols", "TLSv1.1,TLSv1.2")], "TLSv1.1");
        refuse(&[("ssl.keystore.type", "BKS")], "ssl.keystore.type");
        refuse(&[("ssl.client.auth", "required")], "ssl.truststore");
        refuse(&[("ssl.client.auth", "maybe")], "ssl.client.auth");
        refuse(
            &[("ssl.cipher.suites", "TLS_AES_128_GCM_SHA256")],
            "ssl.cipher.suites",
        );
        refuse(
            &[("ssl.principal.mapping.rules", "RULE:^CN=(.*)$/$1/")],
            "ssl.principal.mapping.rules",
        );
        let err = SslSettings::from_props("SSL", &props(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("ssl.keystore.location"), "{err}");
    }
}
