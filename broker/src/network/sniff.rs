//! Recognises what a client that is not speaking Kafka framing is speaking, so the log line can say
//! "this is TLS on a PLAINTEXT listener" instead of "frame of 369 MB too large".

/// A human hint for the first four bytes of a connection that do not make a sane Kafka size prefix.
pub fn describe_foreign_protocol(prefix: &[u8]) -> Option<&'static str> {
    match prefix {
        [0x16, 0x03, ..] => {
            Some("a TLS handshake (client configured for SSL/SASL_SSL on a plaintext listener?)")
        }
        [b'G', b'E', b'T', b' ', ..]
        | [b'P', b'O', b'S', b'T', ..]
        | [b'H', b'E', b'A', b'D', ..]
        | [b'P', b'U', b'T', b' ', ..] => {
            Some("an HTTP request (a web client pointed at the Kafka port?)")
        }
        [b'P', b'R', b'I', b' ', ..] => Some("an HTTP/2 preface"),
        [b'S', b'S', b'H', b'-', ..] => Some("an SSH client"),
        _ => None,
    }
}

/// A human hint for the first bytes of a connection to an SSL listener that are not a TLS record (a TLS
/// client starts with a handshake record: 0x16, then version 3.x). `None` when it looks like TLS.
pub fn describe_non_tls(prefix: &[u8]) -> Option<&'static str> {
    match prefix {
        [0x16, 0x03, ..] | [0x16] => None,
        // A Kafka request: a 4-byte size, then api key and version, both small.
        [0, _, _, _, 0, _, 0, ..] => Some(
            "a Kafka request in plaintext (client configured for PLAINTEXT or SASL_PLAINTEXT on an SSL listener?)",
        ),
        _ => Some(describe_foreign_protocol(prefix).unwrap_or("bytes that are neither TLS nor Kafka")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_tls_and_http() {
        assert!(describe_foreign_protocol(&[0x16, 0x03, 0x01, 0x02])
            .unwrap()
            .contains("TLS"));
        assert!(describe_foreign_protocol(b"GET / HTTP/1.1")
            .unwrap()
            .contains("HTTP"));
        assert!(describe_foreign_protocol(&[0, 0, 0, 10]).is_none());
    }

    #[test]
    fn recognises_plaintext_kafka_on_a_tls_listener() {
        assert_eq!(describe_non_tls(&[0x16, 0x03, 0x01, 0x00, 0xa5]), None);
        // ApiVersions v3 request: size, key 18, version 3.
        let hint = describe_non_tls(&[0, 0, 0, 0x20, 0, 18, 0, 3]).unwrap();
        assert!(hint.contains("Kafka request in plaintext"), "{hint}");
        assert!(describe_non_tls(b"GET / HT").unwrap().contains("HTTP"));
    }
}
