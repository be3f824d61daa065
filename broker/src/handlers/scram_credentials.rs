//! AlterUserScramCredentials (forwarded to the active controller, which validates and writes Kafka's
//! UserScramCredentialRecord) and DescribeUserScramCredentials (answered from this broker's image, as Kafka's
//! brokers answer from their metadata cache: mechanisms and iterations, never the keys).

use std::collections::BTreeSet;

use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse,
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
};
use kafka_protocol::protocol::StrBytes;
use kraftwerk_controller::records::ScramMechanism;
use kraftwerk_controller::{ScramDeletion, ScramUpsertion};

use crate::context::BrokerContext;
use crate::sasl::mechanism::{ScramCredential, ScramStore};
use crate::sasl::Mechanism;

pub async fn alter(
    ctx: &BrokerContext,
    req: AlterUserScramCredentialsRequest,
    _version: i16,
) -> AlterUserScramCredentialsResponse {
    let deletions: Vec<_> = req
        .deletions
        .iter()
        .map(|d| ScramDeletion {
            name: d.name.as_str().to_string(),
            mechanism: d.mechanism,
        })
        .collect();
    let upsertions: Vec<_> = req
        .upsertions
        .iter()
        .map(|u| ScramUpsertion {
            name: u.name.as_str().to_string(),
            mechanism: u.mechanism,
            iterations: u.iterations,
            salt: u.salt.to_vec(),
            salted_password: u.salted_password.to_vec(),
        })
        .collect();
    let users: BTreeSet<String> = deletions
        .iter()
        .map(|d| d.name.clone())
        .chain(upsertions.iter().map(|u| u.name.clone()))
        .collect();
    let mut resp = AlterUserScramCredentialsResponse::default();
    match ctx
        .controller
        .alter_user_scram_credentials(deletions, upsertions)
        .await
    {
        Ok(results) => {
            for r in results {
                let mut out = AlterUserScramCredentialsResult::default();
                out.user = StrBytes::from_string(r.user);
                (out.error_code, out.error_message) = super::errors::outcome(&r.result);
                resp.results.push(out);
            }
        }
        Err(e) => {
            for user in users {
                let mut out = AlterUserScramCredentialsResult::default();
                out.user = StrBytes::from_string(user);
                out.error_code = e.error_code();
                out.error_message = Some(StrBytes::from_string(e.message()));
                resp.results.push(out);
            }
        }
    }
    resp
}

pub fn describe(
    ctx: &BrokerContext,
    req: DescribeUserScramCredentialsRequest,
    _version: i16,
) -> DescribeUserScramCredentialsResponse {
    let image = ctx.controller.image();
    let mut resp = DescribeUserScramCredentialsResponse::default();
    let infos = |user: &str| -> Vec<CredentialInfo> {
        image
            .scram_credentials()
            .filter(|c| c.name == user)
            .map(|c| {
                let mut info = CredentialInfo::default();
                info.mechanism = c.mechanism.id();
                info.iterations = c.iterations;
                info
            })
            .collect()
    };
    let result = |user: &str| {
        let mut r = DescribeUserScramCredentialsResult::default();
        r.user = StrBytes::from_string(user.to_string());
        r
    };
    // Null or empty: every user (Kafka's ScramImage.describe; the Java Admin client sends an empty list for
    // describeUserScramCredentials()).
    match req.users.filter(|u| !u.is_empty()) {
        None => {
            let users: BTreeSet<&str> =
                image.scram_credentials().map(|c| c.name.as_str()).collect();
            for user in users {
                let mut r = result(user);
                r.credential_infos = infos(user);
                resp.results.push(r);
            }
        }
        Some(users) => {
            let mut seen = BTreeSet::new();
            let duplicates: BTreeSet<&str> = users
                .iter()
                .map(|u| u.name.as_str())
                .filter(|u| !seen.insert(*u))
                .collect();
            let mut done = BTreeSet::new();
            for u in &users {
                let user = u.name.as_str();
                if !done.insert(user) {
                    continue;
                }
                let mut r = result(user);
                if duplicates.contains(user) {
                    r.error_code = 92; // DUPLICATE_RESOURCE
                    r.error_message = Some(StrBytes::from_string(format!(
                        "Cannot describe SCRAM credentials for the same user twice in a single request: {user}"
                    )));
                } else {
                    r.credential_infos = infos(user);
                    if r.credential_infos.is_empty() {
                        r.error_code = 91; // RESOURCE_NOT_FOUND
                        r.error_message = Some(StrBytes::from_string(format!(
                            "Attempt to describe a user credential that does not exist: {user}"
                        )));
                    }
                }
                resp.results.push(r);
            }
        }
    }
    resp
}

/// SCRAM logins read the credentials of the image this broker serves, so a credential works on every broker
/// once its record has reached it.
impl ScramStore for crate::quorum::cluster::ClusterHandle {
    fn scram_credential(&self, user: &str, mechanism: Mechanism) -> Option<ScramCredential> {
        let mechanism = match mechanism {
            Mechanism::ScramSha256 => ScramMechanism::Sha256,
            Mechanism::ScramSha512 => ScramMechanism::Sha512,
            Mechanism::Plain => return None,
        };
        let image = self.image();
        let c = image.scram_credential(user, mechanism)?;
        Some(ScramCredential {
            salt: c.salt.clone(),
            stored_key: c.stored_key.clone(),
            server_key: c.server_key.clone(),
            iterations: u32::try_from(c.iterations).ok()?,
        })
    }
}
