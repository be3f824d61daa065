use super::*;

use std::net::Ipv4Addr;

use AclOperation::*;
use AclPermission::*;
use PatternType::*;
use ResourceType::*;

fn acl(
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

fn index(acls: &[AclBinding]) -> AclIndex {
    let map = acls
        .iter()
        .enumerate()
        .map(|(i, a)| (Uuid::from_u128(i as u128 + 1), a.clone()))
        .collect();
    AclIndex::build(&map)
}

fn rules() -> Rules {
    Rules {
        super_users: vec!["User:admin".into()],
        allow_if_no_acl: false,
    }
}

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn who(principal: &str) -> Requester<'_> {
    Requester {
        principal,
        host: LOCAL,
    }
}

#[test]
fn super_users_may_do_anything() {
    let idx = index(&[acl(Topic, "*", Literal, "User:*", All, Deny)]);
    assert!(idx.authorize(&rules(), who("User:admin"), Write, Topic, "t"));
    assert!(idx.authorize(
        &rules(),
        who("User:admin"),
        ClusterAction,
        Cluster,
        "kafka-cluster"
    ));
    assert!(!idx.authorize(&rules(), who("User:a"), Write, Topic, "t"));
}

#[test]
fn no_acl_uses_the_default_rule() {
    let idx = index(&[]);
    assert!(!idx.authorize(&rules(), who("User:a"), Read, Topic, "t"));
    let open = Rules {
        allow_if_no_acl: true,
        ..rules()
    };
    assert!(idx.authorize(&open, who("User:a"), Read, Topic, "t"));
    // An ACL on the resource for someone else: denied even with allow.everyone.if.no.acl.found.
    let idx = index(&[acl(Topic, "t", Literal, "User:b", Read, Allow)]);
    assert!(!idx.authorize(&open, who("User:a"), Read, Topic, "t"));
    // ... but another resource still has no ACL.
    assert!(idx.authorize(&open, who("User:a"), Read, Topic, "u"));
}

#[test]
fn literal_prefixed_and_wildcard_resources() {
    let idx = index(&[
        acl(Topic, "a-", Prefixed, "User:a", Write, Allow),
        acl(Topic, "exact", Literal, "User:a", Read, Allow),
        acl(Group, "*", Literal, "User:a", Read, Allow),
    ]);
    let r = rules();
    assert!(idx.authorize(&r, who("User:a"), Write, Topic, "a-topic"));
    assert!(idx.authorize(&r, who("User:a"), Write, Topic, "a-"));
    assert!(!idx.authorize(&r, who("User:a"), Write, Topic, "b-topic"));
    assert!(!idx.authorize(&r, who("User:a"), Write, Topic, "a"));
    assert!(idx.authorize(&r, who("User:a"), Read, Topic, "exact"));
    // A literal name is not a prefix.
    assert!(!idx.authorize(&r, who("User:a"), Read, Topic, "exactly"));
    assert!(idx.authorize(&r, who("User:a"), Read, Group, "any-group"));
    assert!(!idx.authorize(&r, who("User:b"), Read, Group, "any-group"));
    // Resource types do not mix.
    assert!(!idx.authorize(&r, who("User:a"), Read, TransactionalId, "exact"));
}

#[test]
fn deny_beats_allow() {
    let idx = index(&[
        acl(Topic, "a-", Prefixed, "User:a", All, Allow),
        acl(Topic, "a-secret", Literal, "User:a", Read, Deny),
        acl(Topic, "*", Literal, "User:*", Write, Deny),
    ]);
    let r = rules();
    assert!(idx.authorize(&r, who("User:a"), Read, Topic, "a-open"));
    assert!(!idx.authorize(&r, who("User:a"), Read, Topic, "a-secret"));
    // A DENY READ does not deny DESCRIBE (implication is for ALLOW only).
    assert!(idx.authorize(&r, who("User:a"), Describe, Topic, "a-secret"));
    // The wildcard DENY for every user beats the prefixed ALLOW ALL.
    assert!(!idx.authorize(&r, who("User:a"), Write, Topic, "a-open"));
}

#[test]
fn wildcard_principal_and_hosts() {
    let mut from_host = acl(Topic, "t", Literal, "User:*", Read, Allow);
    from_host.host = "10.0.0.1".into();
    let mut v6 = acl(Topic, "v6", Literal, "User:a", Read, Allow);
    v6.host = "0:0:0:0:0:0:0:1".into();
    let idx = index(&[from_host, v6]);
    let r = rules();
    let remote = Requester {
        principal: "User:anyone",
        host: "10.0.0.1".parse().unwrap(),
    };
    assert!(idx.authorize(&r, remote, Read, Topic, "t"));
    assert!(!idx.authorize(&r, who("User:anyone"), Read, Topic, "t"));
    let mapped = Requester {
        principal: "User:anyone",
        host: "::ffff:10.0.0.1".parse().unwrap(),
    };
    assert!(idx.authorize(&r, mapped, Read, Topic, "t"));
    let loopback6 = Requester {
        principal: "User:a",
        host: "::1".parse().unwrap(),
    };
    assert!(idx.authorize(&r, loopback6, Read, Topic, "v6"));
    // From another host the host-restricted ACL does not apply (but still exists: denied).
    assert!(!idx.authorize(&r, who("User:a"), Read, Topic, "t"));
}

#[test]
fn implied_operations() {
    let idx = index(&[
        acl(Topic, "r", Literal, "User:a", Read, Allow),
        acl(Topic, "w", Literal, "User:a", Write, Allow),
        acl(Topic, "d", Literal, "User:a", Delete, Allow),
        acl(Topic, "al", Literal, "User:a", Alter, Allow),
        acl(Topic, "ac", Literal, "User:a", AlterConfigs, Allow),
        acl(Topic, "all", Literal, "User:a", All, Allow),
        acl(Topic, "c", Literal, "User:a", Create, Allow),
    ]);
    let r = rules();
    for name in ["r", "w", "d", "al", "all"] {
        assert!(
            idx.authorize(&r, who("User:a"), Describe, Topic, name),
            "{name}"
        );
    }
    assert!(!idx.authorize(&r, who("User:a"), Describe, Topic, "c"));
    assert!(!idx.authorize(&r, who("User:a"), Describe, Topic, "ac"));
    assert!(idx.authorize(&r, who("User:a"), DescribeConfigs, Topic, "ac"));
    assert!(idx.authorize(&r, who("User:a"), DescribeConfigs, Topic, "all"));
    assert!(!idx.authorize(&r, who("User:a"), DescribeConfigs, Topic, "al"));
    // READ does not imply WRITE.
    assert!(!idx.authorize(&r, who("User:a"), Write, Topic, "r"));
    assert!(idx.authorize(&r, who("User:a"), ClusterAction, Topic, "all"));
}

#[test]
fn deny_all_denies_everything() {
    let idx = index(&[
        acl(Topic, "t", Literal, "User:a", Read, Allow),
        acl(Topic, "t", Literal, "User:a", All, Deny),
    ]);
    assert!(!idx.authorize(&rules(), who("User:a"), Read, Topic, "t"));
    assert!(!idx.authorize(&rules(), who("User:a"), Describe, Topic, "t"));
}

#[test]
fn by_resource_type() {
    let r = rules();
    let idx = index(&[acl(Topic, "a-", Prefixed, "User:a", Write, Allow)]);
    assert!(idx.authorize_by_resource_type(&r, who("User:a"), Write, Topic));
    assert!(!idx.authorize_by_resource_type(&r, who("User:b"), Write, Topic));
    assert!(!idx.authorize_by_resource_type(&r, who("User:a"), Read, Topic));
    // A DENY on a shorter prefix dominates the allow.
    let idx = index(&[
        acl(Topic, "a-", Prefixed, "User:a", Write, Allow),
        acl(Topic, "a", Prefixed, "User:a", Write, Deny),
    ]);
    assert!(!idx.authorize_by_resource_type(&r, who("User:a"), Write, Topic));
    let idx = index(&[
        acl(Topic, "x", Literal, "User:a", Write, Allow),
        acl(Topic, "*", Literal, "User:a", Write, Deny),
    ]);
    assert!(!idx.authorize_by_resource_type(&r, who("User:a"), Write, Topic));
    let idx = index(&[acl(Topic, "*", Literal, "User:*", All, Allow)]);
    assert!(idx.authorize_by_resource_type(&r, who("User:z"), Write, Topic));
    assert!(idx.authorize_by_resource_type(&r, who("User:admin"), Write, Topic));
}
