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
}
