//! The principal of a client that authenticated with a certificate: Kafka's default
//! (`ssl.principal.mapping.rules=DEFAULT`) is `User:` followed by the certificate subject as Java's
//! `X500Principal.getName()` prints it (RFC 2253: most specific RDN first, `,` between RDNs, `+` within one,
//! special characters escaped), e.g. `User:CN=client,OU=eng,O=acme`. ACLs name principals in that form, so it
//! must match Java's spelling exactly.

use x509_parser::prelude::{FromDer, X509Certificate};

/// The principal of a connection without a client certificate (Kafka's `KafkaPrincipal.ANONYMOUS`).
pub const ANONYMOUS: &str = "User:ANONYMOUS";

/// RFC 2253 keywords Java prints by name; other attribute types print as a dotted OID.
fn keyword(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "STREET",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "0.9.2342.19200300.100.1.1" => "UID",
        "0.9.2342.19200300.100.1.25" => "DC",
        _ => return None,
    })
}

/// Escapes an attribute value as RFC 2253 requires.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The RFC 2253 name of a DER certificate's subject, or `None` if it does not parse.
pub fn subject_rfc2253(cert_der: &[u8]) -> Option<String> {
    let (_, cert) = X509Certificate::from_der(cert_der).ok()?;
    let rdns: Vec<String> = cert
        .subject()
        .iter_rdn()
        .map(|rdn| {
            rdn.iter()
                .map(|atv| {
                    let oid = atv.attr_type().to_id_string();
                    match (keyword(&oid), atv.as_str()) {
                        (Some(k), Ok(v)) => format!("{k}={}", escape(v)),
                        (None, Ok(v)) => format!("{oid}={}", escape(v)),
                        // Not a string: RFC 2253's "#" followed by the hex of the DER value.
                        (k, Err(_)) => format!(
                            "{}=#{}",
                            k.map_or(oid.clone(), str::to_string),
                            atv.attr_value()
                                .data
                                .iter()
                                .map(|b| format!("{b:02x}"))
                                .collect::<String>()
                        ),
                    }
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect();
    // DER lists the least specific RDN first; RFC 2253 prints it last.
    Some(rdns.into_iter().rev().collect::<Vec<_>>().join(","))
}

/// `User:<subject>` for a client certificate, as Kafka's default principal builder names it.
pub fn from_certificate(cert_der: &[u8]) -> Option<String> {
    subject_rfc2253(cert_der).map(|s| format!("User:{s}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert_with(dn: &[(rcgen::DnType, &str)]) -> Vec<u8> {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        let mut name = rcgen::DistinguishedName::new();
        for (t, v) in dn {
            name.push(t.clone(), *v);
        }
        params.distinguished_name = name;
        let key = rcgen::KeyPair::generate().expect("key");
        params.self_signed(&key).expect("cert").der().to_vec()
    }

    #[test]
    fn most_specific_first_as_java_prints_it() {
        let der = cert_with(&[
            (rcgen::DnType::CountryName, "DE"),
            (rcgen::DnType::OrganizationName, "acme"),
            (rcgen::DnType::OrganizationalUnitName, "eng"),
            (rcgen::DnType::CommonName, "client-1"),
        ]);
        assert_eq!(
            from_certificate(&der).as_deref(),
            Some("User:CN=client-1,OU=eng,O=acme,C=DE")
        );
    }

    #[test]
    fn special_characters_are_escaped() {
        let der = cert_with(&[(rcgen::DnType::CommonName, "Smith, John+Co ")]);
        assert_eq!(
            subject_rfc2253(&der).as_deref(),
            Some("CN=Smith\\, John\\+Co\\ ")
        );
    }

    #[test]
    fn garbage_is_no_principal() {
        assert_eq!(from_certificate(b"not a certificate"), None);
    }
}
