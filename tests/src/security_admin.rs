//! The two security Admin calls the tests make over the harness's wire client, as Kafka's Admin client makes
//! them: AlterUserScramCredentials (the client salts and hashes the password: SCRAM's `Hi()`, PBKDF2-HMAC) and
//! CreateAcls/DeleteAcls. rdkafka has none of them.

use kafka_protocol::messages::alter_user_scram_credentials_request::ScramCredentialUpsertion;
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, CreateAclsRequest, DeleteAclsRequest,
};
use kafka_protocol::protocol::StrBytes;

use crate::error::HarnessError;
use crate::wire::Connection;

/// Kafka's resource type codes (`ResourceType`).
pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_GROUP: i8 = 3;
pub const RESOURCE_CLUSTER: i8 = 4;
/// Kafka's operation codes (`AclOperation`).
pub const OP_ALL: i8 = 2;
pub const OP_READ: i8 = 3;
pub const OP_WRITE: i8 = 4;
pub const OP_DESCRIBE: i8 = 8;
pub const OP_CLUSTER_ACTION: i8 = 9;
/// `PatternType.LITERAL` and `AclPermissionType.ALLOW`/`DENY`.
pub const PATTERN_LITERAL: i8 = 3;
pub const PERMISSION_DENY: i8 = 2;
pub const PERMISSION_ALLOW: i8 = 3;

/// One ACL binding to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acl {
    pub resource_type: i8,
    pub resource_name: String,
    pub principal: String,
    pub operation: i8,
    pub permission: i8,
}

impl Acl {
    /// ALLOW `operation` on the literal resource for `principal` from any host.
    pub fn allow(resource_type: i8, resource_name: &str, principal: &str, operation: i8) -> Self {
        Acl {
            resource_type,
            resource_name: resource_name.to_string(),
            principal: principal.to_string(),
            operation,
            permission: PERMISSION_ALLOW,
        }
    }
}

/// CreateAcls v3; errors with the first binding the broker refused.
pub fn create_acls(conn: &mut Connection, acls: &[Acl]) -> Result<(), HarnessError> {
    let creations = acls
        .iter()
        .map(|a| {
            AclCreation::default()
                .with_resource_type(a.resource_type)
                .with_resource_name(StrBytes::from_string(a.resource_name.clone()))
                .with_resource_pattern_type(PATTERN_LITERAL)
                .with_principal(StrBytes::from_string(a.principal.clone()))
                .with_host(StrBytes::from_static_str("*"))
                .with_operation(a.operation)
                .with_permission_type(a.permission)
        })
        .collect();
    let resp = conn.request(3, &CreateAclsRequest::default().with_creations(creations))?;
    for (acl, result) in acls.iter().zip(&resp.results) {
        if result.error_code != 0 {
            return Err(HarnessError::Protocol(format!(
                "CreateAcls {acl:?}: error {} ({})",
                result.error_code,
                result.error_message.as_deref().unwrap_or("")
            )));
        }
    }
    Ok(())
}

/// DeleteAcls v3 of exactly these bindings (literal, any host); returns how many the broker deleted.
pub fn delete_acls(conn: &mut Connection, acls: &[Acl]) -> Result<usize, HarnessError> {
    let filters = acls
        .iter()
        .map(|a| {
            DeleteAclsFilter::default()
                .with_resource_type_filter(a.resource_type)
                .with_resource_name_filter(Some(StrBytes::from_string(a.resource_name.clone())))
                .with_pattern_type_filter(PATTERN_LITERAL)
                .with_principal_filter(Some(StrBytes::from_string(a.principal.clone())))
                .with_host_filter(Some(StrBytes::from_static_str("*")))
                .with_operation(a.operation)
                .with_permission_type(a.permission)
        })
        .collect();
    let resp = conn.request(3, &DeleteAclsRequest::default().with_filters(filters))?;
    let mut deleted = 0;
    for (acl, result) in acls.iter().zip(&resp.filter_results) {
        if result.error_code != 0 {
            return Err(HarnessError::Protocol(format!(
                "DeleteAcls {acl:?}: error {} ({})",
                result.error_code,
                result.error_message.as_deref().unwrap_or("")
            )));
        }
        deleted += result.matching_acls.len();
    }
    Ok(deleted)
}

/// SCRAM's salted password `Hi(password, salt, iterations)` for SCRAM-SHA-512 (RFC 5802, PBKDF2 with HMAC).
pub fn salted_password_sha512(password: &str, salt: &[u8], iterations: u32) -> [u8; 64] {
    let mut out = [0u8; 64];
    pbkdf2::pbkdf2_hmac::<sha2::Sha512>(password.as_bytes(), salt, iterations, &mut out);
    out
}

/// AlterUserScramCredentials v0 upserting a SCRAM-SHA-512 credential for `user` (mechanism code 2), salted
/// with `salt` over `iterations` as Kafka's Admin client does.
pub fn upsert_scram_sha512(
    conn: &mut Connection,
    user: &str,
    password: &str,
    salt: &[u8],
    iterations: i32,
) -> Result<(), HarnessError> {
    let rounds = u32::try_from(iterations)
        .map_err(|_| HarnessError::Protocol(format!("iterations {iterations}")))?;
    let salted = salted_password_sha512(password, salt, rounds);
    let upsertion = ScramCredentialUpsertion::default()
        .with_name(StrBytes::from_string(user.to_string()))
        .with_mechanism(2)
        .with_iterations(iterations)
        .with_salt(bytes::Bytes::copy_from_slice(salt))
        .with_salted_password(bytes::Bytes::copy_from_slice(&salted));
    let resp = conn.request(
        0,
        &AlterUserScramCredentialsRequest::default().with_upsertions(vec![upsertion]),
    )?;
    match resp.results.as_slice() {
        [r] if r.error_code == 0 => Ok(()),
        [r] => Err(HarnessError::Protocol(format!(
            "AlterUserScramCredentials for {user}: error {} ({})",
            r.error_code,
            r.error_message.as_deref().unwrap_or("")
        ))),
        other => Err(HarnessError::Protocol(format!(
            "AlterUserScramCredentials for {user}: {} results",
            other.len()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The published PBKDF2-HMAC-SHA512 vector (password "password", salt "salt", 1 round) starts
    /// 867f70cf1ade02cf.
    #[test]
    fn salted_password_is_pbkdf2_hmac_sha512() {
        let out = salted_password_sha512("password", b"salt", 1);
        assert_eq!(&out[..8], &[0x86, 0x7f, 0x70, 0xcf, 0x1a, 0xde, 0x02, 0xcf]);
    }
}
