//! ACL bindings and filters as Kafka defines them (`org.apache.kafka.common.acl` and
//! `org.apache.kafka.common.resource`): the values stored in AccessControlEntryRecords, the
//! validation the controller applies before writing one (Kafka's `AclControlManager` and
//! `AclApis`), and the filter matching DescribeAcls and DeleteAcls use (`AclBindingFilter`).
//!
//! The enums carry Kafka's wire codes. A code Kafka does not define maps to `Unknown`, as
//! Kafka's `fromCode` does; an ACL with an unknown element never matches anything.

use serde::{Deserialize, Serialize};

/// The only name a CLUSTER resource may have.
pub const CLUSTER_NAME: &str = "kafka-cluster";
/// The resource name (with LITERAL) and host that match everything.
pub const WILDCARD: &str = "*";
/// The principal that matches every user.
pub const WILDCARD_PRINCIPAL: &str = "User:*";

macro_rules! coded_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $code:expr => $text:expr),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Kafka's wire code.
            pub fn code(self) -> i8 {
                match self { $(Self::$variant => $code),+ }
            }

            /// Maps a wire code back; codes Kafka does not define are `Unknown`.
            pub fn from_code(code: i8) -> Self {
                match code {
                    $($code => Self::$variant,)+
                    _ => Self::Unknown,
                }
            }

            /// Kafka's name (`toString`), as its tools print it.
            pub fn name(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

coded_enum!(
    /// Kafka's `ResourceType`.
    ResourceType {
        /// UNKNOWN (0)
        Unknown = 0 => "UNKNOWN",
        /// ANY (1), filters only.
        Any = 1 => "ANY",
        /// TOPIC (2)
        Topic = 2 => "TOPIC",
        /// GROUP (3)
        Group = 3 => "GROUP",
        /// CLUSTER (4)
        Cluster = 4 => "CLUSTER",
        /// TRANSACTIONAL_ID (5)
        TransactionalId = 5 => "TRANSACTIONAL_ID",
        /// DELEGATION_TOKEN (6)
        DelegationToken = 6 => "DELEGATION_TOKEN",
        /// USER (7)
        User = 7 => "USER",
    }
);

coded_enum!(
    /// Kafka's `PatternType`.
    PatternType {
        /// UNKNOWN (0)
        Unknown = 0 => "UNKNOWN",
        /// ANY (1), filters only: any pattern type, exact name.
        Any = 1 => "ANY",
        /// MATCH (2), filters only: every binding that would apply to the named resource.
        Match = 2 => "MATCH",
        /// LITERAL (3)
        Literal = 3 => "LITERAL",
        /// PREFIXED (4)
        Prefixed = 4 => "PREFIXED",
    }
);

coded_enum!(
    /// Kafka's `AclOperation`.
    AclOperation {
        /// UNKNOWN (0)
        Unknown = 0 => "UNKNOWN",
        /// ANY (1), filters only.
        Any = 1 => "ANY",
        /// ALL (2)
        All = 2 => "ALL",
        /// READ (3)
        Read = 3 => "READ",
        /// WRITE (4)
        Write = 4 => "WRITE",
        /// CREATE (5)
        Create = 5 => "CREATE",
        /// DELETE (6)
        Delete = 6 => "DELETE",
        /// ALTER (7)
        Alter = 7 => "ALTER",
        /// DESCRIBE (8)
        Describe = 8 => "DESCRIBE",
        /// CLUSTER_ACTION (9)
        ClusterAction = 9 => "CLUSTER_ACTION",
        /// DESCRIBE_CONFIGS (10)
        DescribeConfigs = 10 => "DESCRIBE_CONFIGS",
        /// ALTER_CONFIGS (11)
        AlterConfigs = 11 => "ALTER_CONFIGS",
        /// IDEMPOTENT_WRITE (12)
        IdempotentWrite = 12 => "IDEMPOTENT_WRITE",
        /// CREATE_TOKENS (13)
        CreateTokens = 13 => "CREATE_TOKENS",
        /// DESCRIBE_TOKENS (14)
        DescribeTokens = 14 => "DESCRIBE_TOKENS",
        /// TWO_PHASE_COMMIT (15)
        TwoPhaseCommit = 15 => "TWO_PHASE_COMMIT",
    }
);

coded_enum!(
    /// Kafka's `AclPermissionType`.
    AclPermission {
        /// UNKNOWN (0)
        Unknown = 0 => "UNKNOWN",
        /// ANY (1), filters only.
        Any = 1 => "ANY",
        /// DENY (2)
        Deny = 2 => "DENY",
        /// ALLOW (3)
        Allow = 3 => "ALLOW",
    }
);

/// One ACL: who (principal, host) may or may not (permission) do what (operation) to which
/// resources (type, name, pattern type). Kafka's `StandardAcl`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AclBinding {
    /// The kind of resource.
    pub resource_type: ResourceType,
    /// The resource name, a prefix (PREFIXED) or `*` (LITERAL, every resource).
    pub resource_name: String,
    /// LITERAL or PREFIXED.
    pub pattern_type: PatternType,
    /// `Type:name`, e.g. `User:alice` or `User:*`.
    pub principal: String,
    /// The client address, or `*`.
    pub host: String,
    /// The operation.
    pub operation: AclOperation,
    /// ALLOW or DENY.
    pub permission: AclPermission,
}

/// Why a binding cannot be stored; Kafka answers INVALID_REQUEST with the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidAcl(pub String);

impl AclBinding {
    /// Kafka's checks before creating an ACL (`CreateAclsRequest.validate`, `AclApis`,
    /// `AclControlManager.validateNewAcl`) plus the principal format `StandardAcl` parses.
    pub fn validate(&self) -> Result<(), InvalidAcl> {
        let bad = |m: String| Err(InvalidAcl(m));
        match self.resource_type {
            ResourceType::Unknown | ResourceType::Any => {
                return bad(format!("Invalid resourceType {}", self.resource_type))
            }
            _ => {}
        }
        match self.pattern_type {
            PatternType::Literal | PatternType::Prefixed => {}
            other => return bad(format!("Invalid patternType {other}")),
        }
        match self.operation {
            AclOperation::Unknown | AclOperation::Any => {
                return bad(format!("Invalid operation {}", self.operation))
            }
            _ => {}
        }
        match self.permission {
            AclPermission::Allow | AclPermission::Deny => {}
            other => return bad(format!("Invalid permissionType {other}")),
        }
        if self.resource_name.is_empty() {
            return bad("Invalid empty resource name".into());
        }
        if self.resource_type == ResourceType::Cluster && self.resource_name != CLUSTER_NAME {
            return bad(format!(
                "The only valid name for the CLUSTER resource is {CLUSTER_NAME}"
            ));
        }
        match self.principal.split_once(':') {
            Some((kind, _)) if !kind.is_empty() => {}
            _ => {
                return bad(format!(
                    "Could not parse principal from `{}` (no colon is present separating the \
                     principal type from the principal name)",
                    self.principal
                ))
            }
        }
        if self.host.is_empty() {
            return bad("Invalid empty host".into());
        }
        Ok(())
    }
}

/// Selects bindings (DescribeAcls, DeleteAcls): `Any`/`None` match everything, `Match` matches
/// the bindings that apply to the named resource. Kafka's `AclBindingFilter`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclFilter {
    /// A resource type, or `Any`.
    pub resource_type: ResourceType,
    /// A name, or `None` for any.
    pub resource_name: Option<String>,
    /// A pattern type, `Any` or `Match`.
    pub pattern_type: PatternType,
    /// A principal, or `None` for any.
    pub principal: Option<String>,
    /// A host, or `None` for any.
    pub host: Option<String>,
    /// An operation, or `Any`.
    pub operation: AclOperation,
    /// A permission, or `Any`.
    pub permission: AclPermission,
}

impl AclFilter {
    /// The filter that matches every binding.
    pub fn any() -> Self {
        Self {
            resource_type: ResourceType::Any,
            resource_name: None,
            pattern_type: PatternType::Any,
            principal: None,
            host: None,
            operation: AclOperation::Any,
            permission: AclPermission::Any,
        }
    }

    /// Kafka's `AclControlManager.validateFilter`: a filter with an UNKNOWN element is refused.
    pub fn validate(&self) -> Result<(), InvalidAcl> {
        if self.resource_type == ResourceType::Unknown || self.pattern_type == PatternType::Unknown
        {
            return Err(InvalidAcl("Unknown patternFilter.".into()));
        }
        if self.operation == AclOperation::Unknown || self.permission == AclPermission::Unknown {
            return Err(InvalidAcl("Unknown entryFilter.".into()));
        }
        Ok(())
    }

    /// Whether the binding is selected (`ResourcePatternFilter.matches` and
    /// `AccessControlEntryFilter.matches`).
    pub fn matches(&self, acl: &AclBinding) -> bool {
        self.matches_pattern(acl) && self.matches_entry(acl)
    }

    fn matches_pattern(&self, acl: &AclBinding) -> bool {
        if self.resource_type != ResourceType::Any && self.resource_type != acl.resource_type {
            return false;
        }
        let any_or_match = matches!(self.pattern_type, PatternType::Any | PatternType::Match);
        if !any_or_match && self.pattern_type != acl.pattern_type {
            return false;
        }
        let Some(name) = &self.resource_name else {
            return true;
        };
        if self.pattern_type == PatternType::Any || self.pattern_type == acl.pattern_type {
            return *name == acl.resource_name;
        }
        // MATCH: the bindings that apply to a resource called `name`.
        match acl.pattern_type {
            PatternType::Literal => *name == acl.resource_name || acl.resource_name == WILDCARD,
            PatternType::Prefixed => name.starts_with(&acl.resource_name),
            _ => false,
        }
    }

    fn matches_entry(&self, acl: &AclBinding) -> bool {
        self.principal.as_ref().is_none_or(|p| *p == acl.principal)
            && self.host.as_ref().is_none_or(|h| *h == acl.host)
            && (self.operation == AclOperation::Any || self.operation == acl.operation)
            && (self.permission == AclPermission::Any || self.permission == acl.permission)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn binding(
        rt: ResourceType,
        name: &str,
        pt: PatternType,
        principal: &str,
        op: AclOperation,
        perm: AclPermission,
    ) -> AclBinding {
        AclBinding {
            resource_type: rt,
            resource_name: name.into(),
            pattern_type: pt,
            principal: principal.into(),
            host: "*".into(),
            operation: op,
            permission: perm,
        }
    }

    fn topic(name: &str, pt: PatternType) -> AclBinding {
        binding(
            ResourceType::Topic,
            name,
            pt,
            "User:a",
            AclOperation::Read,
            AclPermission::Allow,
        )
    }

    #[test]
    fn codes_are_kafkas() {
        assert_eq!(ResourceType::TransactionalId.code(), 5);
        assert_eq!(ResourceType::from_code(6), ResourceType::DelegationToken);
        assert_eq!(ResourceType::from_code(99), ResourceType::Unknown);
        assert_eq!(PatternType::Prefixed.code(), 4);
        assert_eq!(AclOperation::IdempotentWrite.code(), 12);
        assert_eq!(AclOperation::from_code(10), AclOperation::DescribeConfigs);
        assert_eq!(AclPermission::Allow.code(), 3);
        assert_eq!(AclPermission::from_code(-3), AclPermission::Unknown);
    }

    #[test]
    fn validation_follows_kafka() {
        assert!(topic("t", PatternType::Literal).validate().is_ok());
        assert!(topic("a-", PatternType::Prefixed).validate().is_ok());
        for pt in [PatternType::Any, PatternType::Match, PatternType::Unknown] {
            assert!(topic("t", pt).validate().is_err(), "{pt}");
        }
        assert!(topic("", PatternType::Literal).validate().is_err());
        let mut b = topic("t", PatternType::Literal);
        b.resource_type = ResourceType::Any;
        assert!(b.validate().is_err());
        let mut b = topic("t", PatternType::Literal);
        b.operation = AclOperation::Any;
        assert!(b.validate().is_err());
        let mut b = topic("t", PatternType::Literal);
        b.permission = AclPermission::Any;
        assert!(b.validate().is_err());
        let mut b = topic("t", PatternType::Literal);
        b.principal = "alice".into();
        let err = b.validate().unwrap_err();
        assert!(err.0.contains("no colon"), "{err}");
        let mut b = topic("kafka-cluster", PatternType::Literal);
        b.resource_type = ResourceType::Cluster;
        b.operation = AclOperation::Alter;
        assert!(b.validate().is_ok());
        b.resource_name = "other".into();
        assert!(b.validate().unwrap_err().0.contains("kafka-cluster"));
        for rt in [
            ResourceType::Group,
            ResourceType::TransactionalId,
            ResourceType::DelegationToken,
        ] {
            let mut b = topic("x", PatternType::Literal);
            b.resource_type = rt;
            assert!(b.validate().is_ok(), "{rt}");
        }
    }

    #[test]
    fn filters_any_exact_and_match() {
        let literal = topic("foo", PatternType::Literal);
        let prefixed = topic("fo", PatternType::Prefixed);
        let wildcard = topic("*", PatternType::Literal);
        let other = topic("bar", PatternType::Literal);
        let all = [&literal, &prefixed, &wildcard, &other];
        let select = |f: &AclFilter| all.iter().filter(|b| f.matches(b)).count();

        assert_eq!(select(&AclFilter::any()), 4);
        let mut f = AclFilter::any();
        f.resource_name = Some("foo".into());
        // ANY: exact name, whatever the pattern type.
        assert_eq!(select(&f), 1);
        f.pattern_type = PatternType::Match;
        // MATCH: the literal, the prefix and the wildcard that apply to "foo".
        assert_eq!(select(&f), 3);
        f.pattern_type = PatternType::Prefixed;
        assert_eq!(select(&f), 0);
        f.resource_name = Some("fo".into());
        assert_eq!(select(&f), 1);

        let mut f = AclFilter::any();
        f.resource_type = ResourceType::Group;
        assert_eq!(select(&f), 0);
        let mut f = AclFilter::any();
        f.principal = Some("User:b".into());
        assert_eq!(select(&f), 0);
        f.principal = Some("User:a".into());
        f.operation = AclOperation::Read;
        f.permission = AclPermission::Allow;
        f.host = Some("*".into());
        assert_eq!(select(&f), 4);
        f.permission = AclPermission::Deny;
        assert_eq!(select(&f), 0);
    }

    #[test]
    fn unknown_filters_are_refused() {
        let mut f = AclFilter::any();
        assert!(f.validate().is_ok());
        f.pattern_type = PatternType::Unknown;
        assert!(f.validate().is_err());
        let mut f = AclFilter::any();
        f.operation = AclOperation::Unknown;
        assert!(f.validate().is_err());
    }
}
