//! `kraftwerk format --add-scram`, as Kafka's `kafka-storage format --add-scram`: SCRAM credentials written into
//! the bootstrap metadata (`bootstrap.checkpoint`), so nodes can log in with SCRAM before the cluster has
//! committed anything (controllers authenticating each other, brokers registering).
//!
//! `SCRAM-SHA-256=[name=admin,password=admin-secret]`, with optional `iterations=<4096..16384>` (default 4096) and
//! `salt=<base64>` (default 32 random bytes); `saltedpassword=<base64>` (with `salt`) instead of `password`. Values
//! may be double-quoted.

use base64::Engine;
use kraftwerk_controller::bootstrap::{credential_from_password, credential_from_salted};
use kraftwerk_controller::records::{ScramCredentialRecord, ScramMechanism};

const MIN_ITERATIONS: i32 = 4096;
const MAX_ITERATIONS: i32 = 16384;
const DEFAULT_ITERATIONS: i32 = 4096;

/// Why an `--add-scram` argument was refused. Never echoes a password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--add-scram {mechanism}: {reason} (expected 'SCRAM-SHA-256=[name=<user>,password=<password>]', optionally with iterations=<4096..16384> and salt=<base64>)")]
pub struct AddScramError {
    mechanism: String,
    reason: String,
}

/// Parses one `--add-scram` value into a credential. `random_salt` is used when no `salt=` is given.
pub fn parse(arg: &str, random_salt: &[u8]) -> Result<ScramCredentialRecord, AddScramError> {
    let (mechanism_text, rest) = arg.split_once('=').unwrap_or((arg, ""));
    let err = |reason: String| AddScramError {
        mechanism: mechanism_text.trim().to_string(),
        reason,
    };
    let mechanism = match mechanism_text.trim() {
        "SCRAM-SHA-256" => ScramMechanism::Sha256,
        "SCRAM-SHA-512" => ScramMechanism::Sha512,
        other => {
            return Err(err(format!(
                "unknown mechanism {other:?}: expected SCRAM-SHA-256 or SCRAM-SHA-512"
            )))
        }
    };
    let inner = rest
        .trim()
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .ok_or_else(|| err("the options must be in [...]".into()))?;
    let (mut name, mut password, mut salted, mut salt, mut iterations) =
        (None, None, None, None, None);
    for option in inner.split(',') {
        let (key, value) = option
            .split_once('=')
            .ok_or_else(|| err(format!("expected key=value, found {:?}", option.trim())))?;
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value)
            .to_string();
        let slot = match key.trim() {
            "name" => &mut name,
            "password" => &mut password,
            "saltedpassword" => &mut salted,
            "salt" => &mut salt,
            "iterations" => &mut iterations,
            other => return Err(err(format!("unknown option {other:?}"))),
        };
        if slot.replace(value).is_some() {
            return Err(err(format!("option {} given twice", key.trim())));
        }
    }
    let name = name
        .filter(|n| !n.is_empty())
        .ok_or_else(|| err("missing name=<user>".into()))?;
    let iterations = match iterations {
        None => DEFAULT_ITERATIONS,
        Some(text) => match text.parse::<i32>() {
            Ok(n) if (MIN_ITERATIONS..=MAX_ITERATIONS).contains(&n) => n,
            _ => {
                return Err(err(format!(
                    "iterations must be between {MIN_ITERATIONS} and {MAX_ITERATIONS}, not {text:?}"
                )))
            }
        },
    };
    let base64 = |what: &str, text: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|e| err(format!("{what} is not base64: {e}")))
    };
    let salt = match &salt {
        Some(text) => base64("salt", text)?,
        None => random_salt.to_vec(),
    };
    if salt.is_empty() {
        return Err(err("the salt is empty".into()));
    }
    match (password, salted) {
        (Some(password), None) => Ok(credential_from_password(
            &name,
            mechanism,
            password.as_bytes(),
            &salt,
            iterations,
        )),
        (None, Some(salted)) if arg.contains("salt=") => Ok(credential_from_salted(
            &name,
            mechanism,
            &base64("saltedpassword", &salted)?,
            &salt,
            iterations,
        )),
        (None, Some(_)) => Err(err("saltedpassword needs the salt it was made with".into())),
        (None, None) => Err(err("missing password=<password>".into())),
        (Some(_), Some(_)) => Err(err("give password or saltedpassword, not both".into())),
    }
}

/// 32 random bytes, as Kafka's `ScramFormatter` salts (from the OS generator, through UUID v4).
pub fn random_salt() -> Vec<u8> {
    let mut out = Vec::with_capacity(32);
    out.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    out.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sasl::mechanism::tests::{listener, scram_exchange, MemStore};
    use crate::sasl::mechanism::{MechStep, ScramCredential};
    use crate::sasl::Mechanism;

    #[test]
    fn a_password_credential_logs_in_through_the_scram_server() {
        let c = parse(
            "SCRAM-SHA-512=[name=admin,password=admin-secret]",
            &random_salt(),
        )
        .unwrap();
        assert_eq!(
            (c.name.as_str(), c.mechanism, c.iterations),
            ("admin", ScramMechanism::Sha512, 4096)
        );
        assert_eq!(c.salt.len(), 32);
        let mut store = MemStore::default();
        store.0.insert(
            ("admin".into(), Mechanism::ScramSha512),
            ScramCredential {
                salt: c.salt.clone(),
                stored_key: c.stored_key.clone(),
                server_key: c.server_key.clone(),
                iterations: 4096,
            },
        );
        let l = listener(vec![Mechanism::ScramSha512], store);
        assert!(matches!(
            scram_exchange(&l, Mechanism::ScramSha512, "admin", "admin-secret"),
            MechStep::Success { .. }
        ));
        assert!(matches!(
            scram_exchange(&l, Mechanism::ScramSha512, "admin", "wrong"),
            MechStep::Failure { .. }
        ));
    }

    #[test]
    fn options_are_kafkas() {
        let c = parse(
            "SCRAM-SHA-256=[name=\"alice\",password=\"a,b\",iterations=8192,salt=\"c2FsdA==\"]",
            b"unused",
        );
        // A comma inside a quoted password is not supported by Kafka's parser either: it splits there.
        assert!(c.is_err());
        let c = parse(
            "SCRAM-SHA-256=[name=\"alice\",password=\"pw\",iterations=8192,salt=\"c2FsdA==\"]",
            b"unused",
        )
        .unwrap();
        assert_eq!(
            (c.name.as_str(), c.iterations, c.salt.as_slice()),
            ("alice", 8192, &b"salt"[..])
        );
        assert_eq!(
            c,
            credential_from_password("alice", ScramMechanism::Sha256, b"pw", b"salt", 8192)
        );
        let salted = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        let c = parse(
            &format!("SCRAM-SHA-256=[name=bob,salt=c2FsdA==,saltedpassword={salted}]"),
            b"unused",
        )
        .unwrap();
        assert_eq!(
            c,
            credential_from_salted("bob", ScramMechanism::Sha256, &[7u8; 32], b"salt", 4096)
        );
    }

    #[test]
    fn mistakes_are_named_without_the_password() {
        for (arg, needle) in [
            ("SCRAM-SHA-1=[name=a,password=secret]", "unknown mechanism"),
            ("SCRAM-SHA-256=name=a,password=secret", "[...]"),
            ("SCRAM-SHA-256=[password=secret]", "missing name"),
            ("SCRAM-SHA-256=[name=a]", "missing password"),
            (
                "SCRAM-SHA-256=[name=a,password=secret,iterations=100]",
                "between 4096",
            ),
            (
                "SCRAM-SHA-256=[name=a,password=secret,iterations=20000]",
                "between 4096",
            ),
            (
                "SCRAM-SHA-256=[name=a,password=secret,colour=red]",
                "unknown option",
            ),
            ("SCRAM-SHA-256=[name=a,password=secret,name=b]", "twice"),
            (
                "SCRAM-SHA-256=[name=a,saltedpassword=c2VjcmV0]",
                "needs the salt",
            ),
            (
                "SCRAM-SHA-256=[name=a,password=secret,salt=!!]",
                "not base64",
            ),
        ] {
            let err = parse(arg, b"salt").unwrap_err().to_string();
            assert!(err.contains(needle), "{arg}: {err}");
            assert!(!err.contains("secret"), "{arg}: {err}");
        }
    }
}
