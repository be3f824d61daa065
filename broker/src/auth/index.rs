//! The decision: Kafka's `StandardAuthorizerData.authorize` and `Authorizer.authorizeByResourceType`
//! over an index of the image's ACLs. Pure: no I/O, no clock, no locks.
//!
//! Rules (Kafka's): a super user may do anything; otherwise the ACLs that apply to the resource
//! are its LITERAL ones with the same name, the PREFIXED ones whose name starts the resource's,
//! and the LITERAL `*` ones. Among those that match the principal (or `User:*`), the host (or
//! `*`) and the operation, a DENY wins over any ALLOW. An ALLOW of READ, WRITE, DELETE or ALTER
//! implies DESCRIBE, an ALLOW of ALTER_CONFIGS implies DESCRIBE_CONFIGS, ALL matches every
//! operation (DENY ALL too). With no match: denied if the resource has any ACL at all, else
//! `allow.everyone.if.no.acl.found`.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use uuid::Uuid;

use kraftwerk_controller::acl::{
    AclBinding, AclOperation, AclPermission, PatternType, ResourceType, WILDCARD,
    WILDCARD_PRINCIPAL,
};

/// Who asks: a principal (`User:alice`) from a client address.
#[derive(Debug, Clone, Copy)]
pub struct Requester<'a> {
    /// `Type:name`.
    pub principal: &'a str,
    /// The client's address.
    pub host: IpAddr,
}

/// The ACLs of one resource type, by how their names apply.
#[derive(Debug, Default)]
struct TypeIndex {
    literal: HashMap<String, Vec<AclBinding>>,
    prefixed: HashMap<String, Vec<AclBinding>>,
}

/// An index of ACLs for quick decisions, built once per change of the image's ACLs.
#[derive(Debug, Default)]
pub struct AclIndex {
    by_type: HashMap<ResourceType, TypeIndex>,
    /// Every ACL in id order (for `authorize_by_resource_type`).
    all: Vec<AclBinding>,
}

/// The static part of the decision: super users and the rule when no ACL applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    /// Principals allowed everything.
    pub super_users: Vec<String>,
    /// `allow.everyone.if.no.acl.found`.
    pub allow_if_no_acl: bool,
}

impl AclIndex {
    /// Indexes the image's ACLs.
    pub fn build(acls: &BTreeMap<Uuid, AclBinding>) -> Self {
        let mut index = Self::default();
        for acl in acls.values() {
            let t = index.by_type.entry(acl.resource_type).or_default();
            let map = match acl.pattern_type {
                PatternType::Literal => &mut t.literal,
                PatternType::Prefixed => &mut t.prefixed,
                // Never stored by our controller; Kafka's index would never match them either.
                _ => continue,
            };
            map.entry(acl.resource_name.clone())
                .or_default()
                .push(acl.clone());
            index.all.push(acl.clone());
        }
        index
    }

    /// Whether `who` may do `op` on the resource `(rt, name)`.
    pub fn authorize(
        &self,
        rules: &Rules,
        who: Requester<'_>,
        op: AclOperation,
        rt: ResourceType,
        name: &str,
    ) -> bool {
        if rules.super_users.iter().any(|s| s == who.principal) {
            return true;
        }
        let Some(t) = self.by_type.get(&rt) else {
            return rules.allow_if_no_acl;
        };
        let mut has_resource_acls = false;
        let mut allowed = false;
        let prefixes = name
            .char_indices()
            .map(|(i, c)| &name[..i + c.len_utf8()])
            .filter_map(|p| t.prefixed.get(p));
        let literal = t.literal.get(name).into_iter();
        let wildcard = (name != WILDCARD)
            .then(|| t.literal.get(WILDCARD))
            .flatten()
            .into_iter();
        for acls in literal.chain(prefixes).chain(wildcard) {
            for acl in acls {
                has_resource_acls = true;
                match entry_result(acl, who, op) {
                    Some(AclPermission::Deny) => return false,
                    Some(AclPermission::Allow) => allowed = true,
                    _ => {}
                }
            }
        }
        if allowed {
            true
        } else if has_resource_acls {
            false
        } else {
            rules.allow_if_no_acl
        }
    }

    /// Whether `who` may do `op` on at least one resource of type `rt` (Kafka's default
    /// `Authorizer.authorizeByResourceType`, used by InitProducerId: WRITE on some topic).
    pub fn authorize_by_resource_type(
        &self,
        rules: &Rules,
        who: Requester<'_>,
        op: AclOperation,
        rt: ResourceType,
    ) -> bool {
        if self.authorize(rules, who, op, rt, "hardcode") {
            return true;
        }
        let mut deny_literal = std::collections::HashSet::new();
        let mut deny_prefixed = std::collections::HashSet::new();
        let mut allow = Vec::new();
        let mut wildcard_allow = false;
        for acl in self.all.iter().filter(|a| a.resource_type == rt) {
            if !host_matches(&acl.host, who.host)
                || !(acl.principal == who.principal || acl.principal == WILDCARD_PRINCIPAL)
                || !(acl.operation == op || acl.operation == AclOperation::All)
            {
                continue;
            }
            match (acl.permission, acl.pattern_type) {
                (AclPermission::Deny, PatternType::Literal) if acl.resource_name == WILDCARD => {
                    return false
                }
                (AclPermission::Deny, PatternType::Literal) => {
                    deny_literal.insert(acl.resource_name.as_str());
                }
                (AclPermission::Deny, PatternType::Prefixed) => {
                    deny_prefixed.insert(acl.resource_name.as_str());
                }
                (AclPermission::Allow, PatternType::Literal) if acl.resource_name == WILDCARD => {
                    wildcard_allow = true
                }
                (AclPermission::Allow, pt) => allow.push((pt, acl.resource_name.as_str())),
                _ => {}
            }
        }
        if wildcard_allow {
            return true;
        }
        allow.into_iter().any(|(pt, name)| {
            if pt == PatternType::Literal && deny_literal.contains(name) {
                return false;
            }
            !name
                .char_indices()
                .any(|(i, c)| deny_prefixed.contains(&name[..i + c.len_utf8()]))
        })
    }
}

/// Kafka's `StandardAuthorizerData.findResult`: what one ACL (whose resource applies) says
/// about the request, `None` when it does not match the principal, host or operation.
fn entry_result(acl: &AclBinding, who: Requester<'_>, op: AclOperation) -> Option<AclPermission> {
    if acl.principal != who.principal && acl.principal != WILDCARD_PRINCIPAL {
        return None;
    }
    if !host_matches(&acl.host, who.host) {
        return None;
    }
    if acl.operation != AclOperation::All {
        let matches = if acl.permission == AclPermission::Allow {
            match op {
                AclOperation::Describe => matches!(
                    acl.operation,
                    AclOperation::Describe
                        | AclOperation::Read
                        | AclOperation::Write
                        | AclOperation::Delete
                        | AclOperation::Alter
                ),
                AclOperation::DescribeConfigs => matches!(
                    acl.operation,
                    AclOperation::DescribeConfigs | AclOperation::AlterConfigs
                ),
                other => other == acl.operation,
            }
        } else {
            op == acl.operation
        };
        if !matches {
            return None;
        }
    }
    match acl.permission {
        AclPermission::Allow | AclPermission::Deny => Some(acl.permission),
        _ => None,
    }
}

/// An ACL host is `*` or the client address as Java's `getHostAddress` writes it (IPv6 in full
/// form, `0:0:0:0:0:0:0:1`); the compressed form (`::1`) is accepted too.
fn host_matches(acl_host: &str, host: IpAddr) -> bool {
    if acl_host == WILDCARD {
        return true;
    }
    let host = host.to_canonical();
    if acl_host == host.to_string() {
        return true;
    }
    match host {
        IpAddr::V6(v6) => {
            let java = v6
                .segments()
                .iter()
                .map(|s| format!("{s:x}"))
                .collect::<Vec<_>>()
                .join(":");
            acl_host.eq_ignore_ascii_case(&java)
        }
        IpAddr::V4(_) => false,
    }
}

#[cfg(test)]
mod tests;
