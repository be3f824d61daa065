//! Throwaway certificates for TLS tests: a CA and the certificates it signs (rcgen), as PEM for the broker's
//! stores and DER for rustls clients.

use std::path::Path;

use rustls_pki_types::CertificateDer;

/// A test certificate authority.
pub struct TestCa {
    key: rcgen::KeyPair,
    cert: rcgen::Certificate,
}

/// A calendar day, `(year, month, day)`.
pub type Day = (i32, u8, u8);

/// A certificate the CA signed, with its key.
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
    pub cert_der: CertificateDer<'static>,
    pub key_der: Vec<u8>,
}

impl Issued {
    /// Key and certificate in one PEM file, as a broker's `ssl.keystore.type=PEM` file holds them.
    pub fn keystore_pem(&self) -> String {
        format!("{}{}", self.key_pem, self.cert_pem)
    }
}

fn check<T, E: std::fmt::Display>(r: Result<T, E>) -> T {
    r.unwrap_or_else(|e| panic!("generating a test certificate: {e}"))
}

impl TestCa {
    /// A new CA named `CN=kraftwerk-test-ca`.
    pub fn new() -> Self {
        let key = check(rcgen::KeyPair::generate());
        let mut params = check(rcgen::CertificateParams::new(Vec::<String>::new()));
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "kraftwerk-test-ca");
        let cert = check(params.self_signed(&key));
        TestCa { key, cert }
    }

    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    pub fn der(&self) -> CertificateDer<'static> {
        self.cert.der().clone()
    }

    /// A certificate for `common_name` with `sans` (IP addresses or host names), valid from `validity.0`
    /// to `validity.1`, or rcgen's default span.
    pub fn issue(&self, common_name: &str, sans: &[&str], validity: Option<(Day, Day)>) -> Issued {
        let key = check(rcgen::KeyPair::generate());
        let mut params = check(rcgen::CertificateParams::new(
            sans.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        ));
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, common_name);
        if let Some(((y0, m0, d0), (y1, m1, d1))) = validity {
            params.not_before = rcgen::date_time_ymd(y0, m0, d0);
            params.not_after = rcgen::date_time_ymd(y1, m1, d1);
        }
        let cert = check(params.signed_by(&key, &self.cert, &self.key));
        Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_der: cert.der().clone(),
            key_der: key.serialize_der(),
        }
    }
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}

/// Writes `text` to `dir/name`; returns the path as a string for a properties value.
pub fn write_file(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("writing {name}: {e}"));
    path.display().to_string()
}
