//! AlterUserScramCredentials, as Kafka's `ScramControlManager` decides it: per user, deletions and upsertions
//! are validated (mechanism, non-empty name, 4096..=16384 iterations, no user twice in one request, a deleted
//! credential must exist), and each accepted upsertion becomes a UserScramCredentialRecord whose StoredKey and
//! ServerKey the controller derives from the client's salted password (the password itself never travels).

use std::collections::BTreeMap;

use rsasl::mechanisms::scram::tools::derive_keys;
use sha2::Digest;

use crate::api::{ScramDeletion, ScramResult, ScramUpsertion};
use crate::error::ControllerError;
use crate::image::MetadataImage;
use crate::records::{MetadataRecord, ScramCredentialRecord, ScramMechanism};

use super::OpOutput;

/// Kafka's least iterations for SCRAM-SHA-256/512 (`ScramMechanism.minIterations`).
pub const MIN_ITERATIONS: i32 = 4096;
/// Kafka's most iterations (`ScramControlManager.MAX_ITERATIONS`).
pub const MAX_ITERATIONS: i32 = 16384;

const TWICE: &str = "A user credential cannot be altered twice in the same request";

fn mechanism_and_name(name: &str, mechanism: i8) -> Result<ScramMechanism, ControllerError> {
    if name.is_empty() {
        return Err(ControllerError::UnacceptableCredential(
            "Username must not be empty".into(),
        ));
    }
    ScramMechanism::from_id(mechanism)
        .ok_or_else(|| ControllerError::UnsupportedSaslMechanism("Unknown SCRAM mechanism".into()))
}

/// StoredKey = H(HMAC(salted, "Client Key")), ServerKey = HMAC(salted, "Server Key") (RFC 5802).
fn keys(mechanism: ScramMechanism, salted_password: &[u8]) -> (Vec<u8>, Vec<u8>) {
    match mechanism {
        ScramMechanism::Sha256 => {
            let (client, server) = derive_keys::<sha2::Sha256>(salted_password);
            (sha2::Sha256::digest(client).to_vec(), server.to_vec())
        }
        ScramMechanism::Sha512 => {
            let (client, server) = derive_keys::<sha2::Sha512>(salted_password);
            (sha2::Sha512::digest(client).to_vec(), server.to_vec())
        }
    }
}

/// A credential for `password` as a SCRAM client derives it (PBKDF2 with `salt` and `iterations`, then StoredKey and
/// ServerKey), for credentials created without a client: `kraftwerk format --add-scram`.
pub fn credential_from_password(
    name: &str,
    mechanism: ScramMechanism,
    password: &[u8],
    salt: &[u8],
    iterations: i32,
) -> ScramCredentialRecord {
    use rsasl::mechanisms::scram::tools::hash_password;
    let rounds = u32::try_from(iterations).unwrap_or(1).max(1);
    let salted: Vec<u8> = match mechanism {
        ScramMechanism::Sha256 => {
            let mut out = Default::default();
            hash_password::<sha2::Sha256>(password, rounds, salt, &mut out);
            out.to_vec()
        }
        ScramMechanism::Sha512 => {
            let mut out = Default::default();
            hash_password::<sha2::Sha512>(password, rounds, salt, &mut out);
            out.to_vec()
        }
    };
    credential_from_salted(name, mechanism, &salted, salt, iterations)
}

/// A credential from an already salted password (Kafka's `saltedpassword=` of `--add-scram`).
pub fn credential_from_salted(
    name: &str,
    mechanism: ScramMechanism,
    salted_password: &[u8],
    salt: &[u8],
    iterations: i32,
) -> ScramCredentialRecord {
    let (stored_key, server_key) = keys(mechanism, salted_password);
    ScramCredentialRecord {
        name: name.to_string(),
        mechanism,
        salt: salt.to_vec(),
        stored_key,
        server_key,
        iterations,
    }
}

pub(crate) fn alter_credentials(
    image: &MetadataImage,
    deletions: &[ScramDeletion],
    upsertions: &[ScramUpsertion],
) -> OpOutput<Vec<ScramResult>> {
    let mut errors: BTreeMap<String, ControllerError> = BTreeMap::new();
    let mut to_delete: BTreeMap<String, ScramMechanism> = BTreeMap::new();
    let mut to_upsert: BTreeMap<String, (ScramMechanism, &ScramUpsertion)> = BTreeMap::new();
    for d in deletions {
        if errors.contains_key(&d.name) {
            continue;
        }
        if to_delete.remove(&d.name).is_some() {
            errors.insert(
                d.name.clone(),
                ControllerError::DuplicateResource(TWICE.into()),
            );
            continue;
        }
        match mechanism_and_name(&d.name, d.mechanism) {
            Err(e) => {
                errors.insert(d.name.clone(), e);
            }
            Ok(m) if image.scram_credential(&d.name, m).is_none() => {
                errors.insert(
                    d.name.clone(),
                    ControllerError::ResourceNotFound(
                        "Attempt to delete a user credential that does not exist".into(),
                    ),
                );
            }
            Ok(m) => {
                to_delete.insert(d.name.clone(), m);
            }
        }
    }
    for u in upsertions {
        if errors.contains_key(&u.name) {
            continue;
        }
        if to_delete.remove(&u.name).is_some() || to_upsert.remove(&u.name).is_some() {
            errors.insert(
                u.name.clone(),
                ControllerError::DuplicateResource(TWICE.into()),
            );
            continue;
        }
        let checked = mechanism_and_name(&u.name, u.mechanism).and_then(|m| {
            if u.iterations < MIN_ITERATIONS {
                Err(ControllerError::UnacceptableCredential(
                    "Too few iterations".into(),
                ))
            } else if u.iterations > MAX_ITERATIONS {
                Err(ControllerError::UnacceptableCredential(
                    "Too many iterations".into(),
                ))
            } else {
                Ok(m)
            }
        });
        match checked {
            Ok(m) => {
                to_upsert.insert(u.name.clone(), (m, u));
            }
            Err(e) => {
                errors.insert(u.name.clone(), e);
            }
        }
    }
    let mut records = Vec::new();
    let mut results = Vec::new();
    for (name, mechanism) in to_delete {
        records.push(MetadataRecord::RemoveUserScramCredential {
            name: name.clone(),
            mechanism,
        });
        results.push(ScramResult {
            user: name,
            result: Ok(()),
        });
    }
    for (name, (mechanism, u)) in to_upsert {
        let (stored_key, server_key) = keys(mechanism, &u.salted_password);
        records.push(MetadataRecord::UserScramCredential(ScramCredentialRecord {
            name: name.clone(),
            mechanism,
            salt: u.salt.clone(),
            stored_key,
            server_key,
            iterations: u.iterations,
        }));
        results.push(ScramResult {
            user: name,
            result: Ok(()),
        });
    }
    for (user, e) in errors {
        results.push(ScramResult {
            user,
            result: Err(e),
        });
    }
    OpOutput {
        records,
        response: results,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upsert(name: &str, mechanism: i8, iterations: i32) -> ScramUpsertion {
        ScramUpsertion {
            name: name.into(),
            mechanism,
            iterations,
            salt: b"salt".to_vec(),
            salted_password: b"salted".to_vec(),
        }
    }

    fn result_of<'a>(
        out: &'a OpOutput<Vec<ScramResult>>,
        user: &str,
    ) -> &'a Result<(), ControllerError> {
        &out.response.iter().find(|r| r.user == user).unwrap().result
    }

    #[test]
    fn upsertions_are_validated_like_kafka() {
        let image = MetadataImage::empty("c");
        let out = alter_credentials(
            &image,
            &[],
            &[
                upsert("alice", 2, 4096),
                upsert("few", 1, 4095),
                upsert("many", 1, 16385),
                upsert("", 1, 8192),
                upsert("unknown", 3, 8192),
            ],
        );
        assert_eq!(result_of(&out, "alice"), &Ok(()));
        let code = |u| result_of(&out, u).as_ref().unwrap_err().error_code();
        assert_eq!(code("few"), 93);
        assert_eq!(code("many"), 93);
        assert_eq!(code(""), 93);
        assert_eq!(code("unknown"), 33);
        assert_eq!(out.records.len(), 1);
        let MetadataRecord::UserScramCredential(rec) = &out.records[0] else {
            panic!()
        };
        assert_eq!(rec.mechanism, ScramMechanism::Sha512);
        assert_eq!(rec.stored_key.len(), 64);
        assert_eq!(rec.server_key.len(), 64);
        assert_eq!(rec.iterations, 4096);
    }

    #[test]
    fn deletions_need_an_existing_credential_and_users_appear_once() {
        let image = MetadataImage::empty("c");
        let out = alter_credentials(&image, &[], &[upsert("bob", 1, 8192)]);
        let image = image.apply(0, &out.records);
        assert!(image
            .scram_credential("bob", ScramMechanism::Sha256)
            .is_some());
        let del = |name: &str, m| ScramDeletion {
            name: name.into(),
            mechanism: m,
        };
        let out = alter_credentials(
            &image,
            &[del("bob", 2), del("carol", 1)],
            &[upsert("dave", 1, 8192), upsert("dave", 2, 8192)],
        );
        let code = |u| result_of(&out, u).as_ref().unwrap_err().error_code();
        assert_eq!(code("bob"), 91, "bob has no SCRAM-SHA-512 credential");
        assert_eq!(code("carol"), 91);
        assert_eq!(code("dave"), 92);
        assert!(out.records.is_empty());
        let out = alter_credentials(&image, &[del("bob", 1)], &[]);
        assert_eq!(result_of(&out, "bob"), &Ok(()));
        let image = image.apply(1, &out.records);
        assert!(image
            .scram_credential("bob", ScramMechanism::Sha256)
            .is_none());
    }
}
