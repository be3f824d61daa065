//! Authorization of the traffic between nodes on the controller listener.
//!
//! With an authorizer, Kafka's controllers require CLUSTER_ACTION on the cluster for every inter-node API: the
//! raft APIs (Vote, BeginQuorumEpoch, EndQuorumEpoch, Fetch from a voter or an observer, FetchSnapshot),
//! BrokerRegistration, BrokerHeartbeat, AlterPartition, AllocateProducerIds and Envelope (forwarded requests).
//! Kraftwerk carries the raft messages on a raft channel and the rest on a controller channel (see
//! `kraftwerk_protocol::quorum_channel`), so the same rule applies to each channel's sender and to every message
//! it sends: its principal must be a super user or be allowed CLUSTER_ACTION on the cluster.
//!
//! As Kafka's StandardAuthorizer before its initial load, a controller that has not loaded the metadata log's
//! ACLs yet (no `metadata.version` in its image) allows only super users: this is why the principals controllers
//! use with each other must be super users for a new quorum to form.

use kraftwerk_controller::acl::{AclOperation, ResourceType, CLUSTER_NAME};

use super::{AclIndex, Requester, Rules};

/// What a channel carries, for the refusal message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InterNodeTraffic {
    /// Raft messages between controllers (Kafka's Vote, BeginQuorumEpoch, EndQuorumEpoch, Fetch,
    /// FetchSnapshot).
    Raft,
    /// Requests to the active controller (Kafka's BrokerRegistration, BrokerHeartbeat, AlterPartition,
    /// AllocateProducerIds, Envelope and the brokers' metadata Fetch).
    Controller,
}

impl InterNodeTraffic {
    /// The Kafka APIs this traffic stands for.
    pub fn apis(self) -> &'static str {
        match self {
            InterNodeTraffic::Raft => {
                "raft messages (Vote, BeginQuorumEpoch, EndQuorumEpoch, Fetch, FetchSnapshot)"
            }
            InterNodeTraffic::Controller => {
                "controller requests (BrokerRegistration, BrokerHeartbeat, AlterPartition, \
                 AllocateProducerIds, forwarded requests, metadata Fetch)"
            }
        }
    }
}

/// Why a sender was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    /// Not a super user, and no ACL allows it CLUSTER_ACTION on the cluster (or one denies it).
    MissingClusterAction,
    /// Not a super user, and this controller has not loaded the ACLs yet.
    AclsNotLoaded,
}

/// The decision, pure: super users always; others need CLUSTER_ACTION on the cluster by the ACLs (StandardAuthorizer's
/// rules, `allow.everyone.if.no.acl.found` included), once the ACLs are loaded.
pub fn authorize(
    rules: &Rules,
    index: &AclIndex,
    who: Requester<'_>,
    acls_loaded: bool,
) -> Result<(), Denial> {
    if rules.super_users.iter().any(|s| s == who.principal) {
        return Ok(());
    }
    if !acls_loaded {
        return Err(Denial::AclsNotLoaded);
    }
    if index.authorize(
        rules,
        who,
        AclOperation::ClusterAction,
        ResourceType::Cluster,
        CLUSTER_NAME,
    ) {
        Ok(())
    } else {
        Err(Denial::MissingClusterAction)
    }
}

/// The one line both sides log: who, from which node, on which listener, what it may not send, and the fix.
pub fn refusal_message(
    denial: Denial,
    principal: &str,
    from_node: i32,
    listener: &str,
    traffic: InterNodeTraffic,
) -> String {
    let who = format!(
        "{principal} (node {from_node}) on controller listener {listener} may not send {}",
        traffic.apis()
    );
    let fix = format!(
        "add {principal} to super.users or grant CLUSTER_ACTION on the cluster \
         (kafka-acls --add --allow-principal {principal} --operation ClusterAction --cluster)"
    );
    match denial {
        Denial::MissingClusterAction => {
            format!("{who}: it lacks CLUSTER_ACTION on the cluster; {fix}")
        }
        Denial::AclsNotLoaded => format!(
            "{who} yet: it is not a super user and this controller has not loaded the ACLs from the metadata \
             log; {fix} (controllers need super.users to form a new quorum)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::net::{IpAddr, Ipv4Addr};

    use kraftwerk_controller::acl::{AclBinding, AclPermission, PatternType};
    use uuid::Uuid;

    use super::*;

    const HOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    fn rules(super_users: &[&str], allow_if_no_acl: bool) -> Rules {
        Rules {
            super_users: super_users.iter().map(|s| s.to_string()).collect(),
            allow_if_no_acl,
        }
    }

    fn acl(principal: &str, op: AclOperation, permission: AclPermission) -> AclBinding {
        AclBinding {
            resource_type: ResourceType::Cluster,
            resource_name: CLUSTER_NAME.to_string(),
            pattern_type: PatternType::Literal,
            principal: principal.to_string(),
            host: "*".to_string(),
            operation: op,
            permission,
        }
    }

    fn index(acls: &[AclBinding]) -> AclIndex {
        let map: BTreeMap<Uuid, AclBinding> = acls
            .iter()
            .enumerate()
            .map(|(i, a)| (Uuid::from_u128(i as u128 + 1), a.clone()))
            .collect();
        AclIndex::build(&map)
    }

    fn who(principal: &str) -> Requester<'_> {
        Requester {
            principal,
            host: HOST,
        }
    }

    #[test]
    fn super_users_pass_even_before_the_acls_are_loaded() {
        let r = rules(&["User:controller"], false);
        let empty = index(&[]);
        assert_eq!(authorize(&r, &empty, who("User:controller"), false), Ok(()));
        assert_eq!(authorize(&r, &empty, who("User:controller"), true), Ok(()));
        assert_eq!(
            authorize(&r, &empty, who("User:broker"), false),
            Err(Denial::AclsNotLoaded)
        );
    }

    #[test]
    fn others_need_cluster_action_on_the_cluster() {
        let r = rules(&["User:controller"], false);
        assert_eq!(
            authorize(&r, &index(&[]), who("User:broker"), true),
            Err(Denial::MissingClusterAction)
        );
        let granted = index(&[acl(
            "User:broker",
            AclOperation::ClusterAction,
            AclPermission::Allow,
        )]);
        assert_eq!(authorize(&r, &granted, who("User:broker"), true), Ok(()));
        // Another principal's grant does not count; neither does another operation.
        assert_eq!(
            authorize(&r, &granted, who("User:other"), true),
            Err(Denial::MissingClusterAction)
        );
        let describe = index(&[acl(
            "User:broker",
            AclOperation::Describe,
            AclPermission::Allow,
        )]);
        assert_eq!(
            authorize(&r, &describe, who("User:broker"), true),
            Err(Denial::MissingClusterAction)
        );
        // ALL implies CLUSTER_ACTION; User:* matches everyone.
        let all = index(&[acl("User:*", AclOperation::All, AclPermission::Allow)]);
        assert_eq!(authorize(&r, &all, who("User:broker"), true), Ok(()));
    }

    #[test]
    fn a_deny_wins_over_an_allow() {
        let r = rules(&[], false);
        let both = index(&[
            acl(
                "User:broker",
                AclOperation::ClusterAction,
                AclPermission::Allow,
            ),
            acl("User:broker", AclOperation::All, AclPermission::Deny),
        ]);
        assert_eq!(
            authorize(&r, &both, who("User:broker"), true),
            Err(Denial::MissingClusterAction)
        );
    }

    #[test]
    fn allow_everyone_if_no_acl_found_applies_only_without_cluster_acls() {
        let open = rules(&[], true);
        assert_eq!(authorize(&open, &index(&[]), who("User:x"), true), Ok(()));
        // But not before the ACLs are loaded: nothing is known about them yet.
        assert_eq!(
            authorize(&open, &index(&[]), who("User:x"), false),
            Err(Denial::AclsNotLoaded)
        );
        let some = index(&[acl("User:admin", AclOperation::Alter, AclPermission::Allow)]);
        assert_eq!(
            authorize(&open, &some, who("User:x"), true),
            Err(Denial::MissingClusterAction)
        );
    }

    #[test]
    fn the_message_names_principal_node_listener_and_the_fix() {
        let m = refusal_message(
            Denial::MissingClusterAction,
            "User:broker101",
            101,
            "CONTROLLER",
            InterNodeTraffic::Controller,
        );
        assert!(m.contains("User:broker101 (node 101) on controller listener CONTROLLER"));
        assert!(m.contains("BrokerRegistration"));
        assert!(m.contains("lacks CLUSTER_ACTION on the cluster"));
        assert!(
            m.contains("add User:broker101 to super.users or grant CLUSTER_ACTION on the cluster")
        );
        let early = refusal_message(
            Denial::AclsNotLoaded,
            "User:c2",
            2,
            "CONTROLLER",
            InterNodeTraffic::Raft,
        );
        assert!(early.contains("Vote") && early.contains("not loaded the ACLs"));
    }
}
