//! Reading certificates and keys from the stores operators already have: PEM files (or PEM text in the
//! configuration), PKCS#12 and Java KeyStore (JKS) files, so a Kafka `server.properties` and the
//! `keystore.jks` made with keytool move over unchanged. Parsing is done by crates (`rustls-pki-types` for PEM,
//! `jks` for JKS, `p12-keystore` for PKCS#12), not by hand.
//!
//! keytool has written PKCS#12 by default since Java 9, also into files named `.jks` and also when the
//! configuration still says `ssl.keystore.type=JKS` (which Java then reads anyway), so both store types are
//! read by content: the JKS magic number decides.

use std::path::Path;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::settings::{KeyStoreSpec, StoreSource, StoreType, TrustStoreSpec};
use super::TlsConfigError;

/// The first four bytes of a JKS file.
const JKS_MAGIC: [u8; 4] = [0xFE, 0xED, 0xFE, 0xED];

/// A certificate chain (leaf first) and its private key.
#[derive(Debug)]
pub struct Identity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

fn read_file(path: &Path, what: &'static str) -> Result<Vec<u8>, TlsConfigError> {
    std::fs::read(path).map_err(|e| TlsConfigError::Read {
        what,
        path: path.display().to_string(),
        error: e.to_string(),
    })
}

fn bad(what: &'static str, path: &str, detail: impl Into<String>) -> TlsConfigError {
    TlsConfigError::Invalid {
        what,
        path: path.to_string(),
        detail: detail.into(),
    }
}

fn pem_certs(
    text: &[u8],
    what: &'static str,
    path: &str,
) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let certs = CertificateDer::pem_slice_iter(text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(what, path, format!("bad PEM certificate: {e}")))?;
    if certs.is_empty() {
        return Err(bad(what, path, "no CERTIFICATE block found"));
    }
    Ok(certs)
}

fn pem_key(text: &[u8], path: &str) -> Result<PrivateKeyDer<'static>, TlsConfigError> {
    if std::str::from_utf8(text).is_ok_and(|t| t.contains("ENCRYPTED PRIVATE KEY")) {
        return Err(bad(
            "keystore",
            path,
            "the PEM private key is encrypted; encrypted PEM keys are not supported yet (decrypt it with \
             `openssl pkcs8 -in key.pem -out key-plain.pem`, or use a PKCS12 or JKS keystore with ssl.key.password)",
        ));
    }
    PrivateKeyDer::from_pem_slice(text)
        .map_err(|e| bad("keystore", path, format!("no usable PEM private key: {e}")))
}

/// The entries of a JKS or PKCS#12 store, decoded: JKS by the `jks` crate, PKCS#12 by `p12-keystore`.
struct JavaStore {
    /// (alias, certificate chain leaf first, PKCS#8 key) per private-key entry.
    keys: Vec<(String, Vec<Vec<u8>>, Vec<u8>)>,
    /// Trusted certificates.
    trusted: Vec<Vec<u8>>,
}

/// Opens a JKS or PKCS#12 file (whatever its configured type says: keytool writes PKCS#12 into `.jks` files).
/// `key_password` decrypts JKS key entries (PKCS#12 has one password for all).
fn open_java_store(
    bytes: &[u8],
    password: Option<&str>,
    key_password: Option<&str>,
    what: &'static str,
    path: &str,
) -> Result<JavaStore, TlsConfigError> {
    let password = password.unwrap_or("");
    let mut out = JavaStore {
        keys: Vec::new(),
        trusted: Vec::new(),
    };
    if bytes.starts_with(&JKS_MAGIC) {
        let mut store = jks::KeyStore::new();
        store.load(bytes, password.as_bytes()).map_err(|e| {
            bad(
                what,
                path,
                format!("cannot open it as JKS (wrong password?): {e}"),
            )
        })?;
        for alias in store.aliases() {
            if store.is_private_key_entry(&alias) {
                let key_password = key_password.unwrap_or(password);
                let entry = store
                    .get_private_key_entry(&alias, key_password.as_bytes())
                    .map_err(|e| {
                        bad(
                            what,
                            path,
                            format!(
                                "cannot decrypt key entry {alias} (wrong ssl.key.password?): {e}"
                            ),
                        )
                    })?;
                let chain = entry
                    .certificate_chain
                    .into_iter()
                    .map(|c| c.content)
                    .collect();
                out.keys.push((alias, chain, entry.private_key));
            } else if let Ok(entry) = store.get_trusted_certificate_entry(&alias) {
                out.trusted.push(entry.certificate.content);
            }
        }
    } else {
        let store = p12_keystore::KeyStore::from_pkcs12(
            bytes,
            password,
            p12_keystore::Pkcs12ImportPolicy::Relaxed,
        )
        .map_err(|e| {
            bad(
                what,
                path,
                format!("cannot open it as PKCS12 or JKS (wrong password?): {e}"),
            )
        })?;
        for (alias, entry) in store.entries() {
            match entry {
                p12_keystore::KeyStoreEntry::PrivateKeyChain(chain) => out.keys.push((
                    alias.clone(),
                    chain.certs().iter().map(|c| c.as_der().to_vec()).collect(),
                    chain.key().as_der().to_vec(),
                )),
                p12_keystore::KeyStoreEntry::Certificate(cert) => {
                    out.trusted.push(cert.as_der().to_vec())
                }
                p12_keystore::KeyStoreEntry::Secret(_) => {}
            }
        }
    }
    Ok(out)
}

/// Loads the listener's certificate chain and key.
pub fn load_identity(spec: &KeyStoreSpec) -> Result<Identity, TlsConfigError> {
    match (&spec.source, spec.store_type) {
        (StoreSource::Inline { key, certs }, _) => {
            let chain = pem_certs(
                certs.as_bytes(),
                "keystore",
                "ssl.keystore.certificate.chain",
            )?;
            let key = pem_key(key.as_deref().unwrap_or("").as_bytes(), "ssl.keystore.key")?;
            Ok(Identity { chain, key })
        }
        (StoreSource::File(path), StoreType::Pem) => {
            // Kafka's PEM keystore file holds the key and the chain together.
            let bytes = read_file(path, "keystore")?;
            let shown = path.display().to_string();
            let chain = pem_certs(&bytes, "keystore", &shown)?;
            let key = pem_key(&bytes, &shown)?;
            Ok(Identity { chain, key })
        }
        (StoreSource::File(path), StoreType::Jks | StoreType::Pkcs12) => {
            let bytes = read_file(path, "keystore")?;
            let shown = path.display().to_string();
            let store = open_java_store(
                &bytes,
                spec.password.as_deref(),
                spec.key_password.as_deref(),
                "keystore",
                &shown,
            )?;
            let Some((alias, chain, key)) = store.keys.into_iter().next() else {
                return Err(bad("keystore", &shown, "it holds no private key entry"));
            };
            let chain: Vec<CertificateDer<'static>> =
                chain.into_iter().map(CertificateDer::from).collect();
            if chain.is_empty() {
                return Err(bad(
                    "keystore",
                    &shown,
                    format!("key entry {alias} has no certificate"),
                ));
            }
            let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key));
            Ok(Identity { chain, key })
        }
    }
}

/// Loads the certificates client certificates are checked against.
pub fn load_trust(spec: &TrustStoreSpec) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    match (&spec.source, spec.store_type) {
        (StoreSource::Inline { certs, .. }, _) => pem_certs(
            certs.as_bytes(),
            "truststore",
            "ssl.truststore.certificates",
        ),
        (StoreSource::File(path), StoreType::Pem) => pem_certs(
            &read_file(path, "truststore")?,
            "truststore",
            &path.display().to_string(),
        ),
        (StoreSource::File(path), StoreType::Jks | StoreType::Pkcs12) => {
            let bytes = read_file(path, "truststore")?;
            let shown = path.display().to_string();
            let store =
                open_java_store(&bytes, spec.password.as_deref(), None, "truststore", &shown)?;
            // Java trusts the certificates of key entries too.
            let certs: Vec<CertificateDer<'static>> = store
                .trusted
                .into_iter()
                .chain(store.keys.into_iter().flat_map(|(_, chain, _)| chain))
                .map(CertificateDer::from)
                .collect();
            if certs.is_empty() {
                return Err(bad("truststore", &shown, "it holds no certificates"));
            }
            Ok(certs)
        }
    }
}
