//! Authorization on the controller listener: with the authorizer on, a node's inter-node requests (here a
//! broker's registration, heartbeats and metadata fetches) need its principal to be a super user or to be allowed
//! CLUSTER_ACTION on the cluster, as Kafka's controllers require.
//!
//! One controller and broker 100 (whose controller-listener principal `User:node100` is a super user) form the
//! cluster; broker 101 logs in as `User:node101`, which is neither: it cannot register, both sides log one line
//! naming the principal, the listener and the fix, and it registers once CLUSTER_ACTION is granted with
//! CreateAcls. Revoking the grant (DeleteAcls) cuts its open channels: its heartbeats are refused and the
//! controller fences it. Kafka clients on the controller listener need DESCRIBE on the cluster for DescribeQuorum.
//! The raft channel follows the same rule: a controller whose principal lacks CLUSTER_ACTION has its raft messages
//! refused (it falls behind the quorum) until it is granted.

use std::time::{Duration, Instant};

use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use kafka_protocol::messages::{DescribeQuorumRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use kraftwerk_tests::security::{ClientSecurity, SaslLogin, SecurityProtocol};
use kraftwerk_tests::security_admin::{
    create_acls, delete_acls, Acl, OP_CLUSTER_ACTION, RESOURCE_CLUSTER,
};
use kraftwerk_tests::{Cluster, HarnessError};

/// Every node logs in to the controller listener as `node<id>`; the controller knows the three users.
const CONTROLLER_JAAS: &str = "org.apache.kafka.common.security.plain.PlainLoginModule required \
     username=\"node{id}\" password=\"node{id}-secret\" user_node1=\"node1-secret\" \
     user_node100=\"node100-secret\" user_node101=\"node101-secret\";";
const REFUSAL: &str =
    "User:node101 (node 101) on controller listener CONTROLLER may not send controller \
                       requests";
const FIX: &str = "lacks CLUSTER_ACTION on the cluster; add User:node101 to super.users or grant \
                   CLUSTER_ACTION on the cluster";

/// DescribeQuorum v2 asked of the controller listener, logged in as `node<id>`: the answer's error code.
fn describe_quorum_as(cluster: &Cluster, id: i32) -> i16 {
    let login = ClientSecurity {
        protocol: SecurityProtocol::SaslPlaintext,
        ca_pem: None,
        sasl: Some(SaslLogin {
            mechanism: "PLAIN".into(),
            username: format!("node{id}"),
            password: format!("node{id}-secret"),
        }),
    };
    let addr = cluster
        .node(1)
        .controller_addr()
        .unwrap_or_else(|| panic!("node 1 has no controller listener"));
    let mut conn = login
        .connect(addr, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("logging in as node{id}: {e}"));
    let request = DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
        .with_topic_name(TopicName(StrBytes::from_static_str("__cluster_metadata")))
        .with_partitions(vec![PartitionData::default().with_partition_index(0)])]);
    conn.request(2, &request)
        .unwrap_or_else(|e| panic!("DescribeQuorum as node{id}: {e}"))
        .error_code
}

fn wait_for(what: &str, cluster: &Cluster, timeout: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if done() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("{what} did not happen\n{}", cluster.log_tails(6000));
}

/// `controllers` controllers and one broker whose controller listener is SASL_PLAINTEXT (PLAIN users from
/// `jaas`), with the StandardAuthorizer on and `super_users`; the client listener stays PLAINTEXT.
fn authorized_sasl_controllers(
    controllers: usize,
    jaas: &str,
    super_users: &str,
) -> kraftwerk_tests::cluster::ClusterBuilder {
    Cluster::builder()
        .controllers(controllers)
        .brokers(1)
        .prop(
            "listener.security.protocol.map",
            "PLAINTEXT:PLAINTEXT,CONTROLLER:SASL_PLAINTEXT",
        )
        .prop("listener.name.controller.sasl.enabled.mechanisms", "PLAIN")
        .prop("sasl.mechanism.controller.protocol", "PLAIN")
        .prop("listener.name.controller.plain.sasl.jaas.config", jaas)
        .prop(
            "authorizer.class.name",
            "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        )
        .prop("super.users", super_users)
}

#[test]
fn a_broker_without_cluster_action_cannot_register_until_granted() {
    // The test's clients and the brokers' replica fetches use the PLAINTEXT listener, as User:ANONYMOUS.
    let mut cluster =
        authorized_sasl_controllers(1, CONTROLLER_JAAS, "User:node1;User:node100;User:ANONYMOUS")
            .start()
            .unwrap_or_else(|e| panic!("starting the cluster: {e}"));
    let cluster_id = cluster.cluster_id().to_string();
    cluster
        .add_broker(101, &cluster_id)
        .unwrap_or_else(|e| panic!("{e}"))
        .spawn()
        .unwrap_or_else(|e| panic!("spawning broker 101: {e}"));

    // Refused, and both sides say who, where, and what to do.
    wait_for(
        "the refusal in broker 101's log",
        &cluster,
        Duration::from_secs(60),
        || {
            let log = cluster.node(101).log_contents();
            log.contains("the controller refused this node")
                && log.contains(REFUSAL)
                && log.contains(FIX)
        },
    );
    wait_for(
        "the refusal in the controller's log",
        &cluster,
        Duration::from_secs(30),
        || {
            let log = cluster.node(1).log_contents();
            log.contains("refusing node 101") && log.contains(REFUSAL) && log.contains(FIX)
        },
    );
    // It keeps retrying without registering (broker 100 lists only itself) and without flooding the logs.
    std::thread::sleep(Duration::from_secs(4));
    let md = cluster
        .node(100)
        .metadata()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        kraftwerk_tests::cluster::broker_ids(&md),
        [100].into_iter().collect()
    );
    assert!(cluster.node_mut(101).is_running(), "broker 101 gave up");
    let broker_lines = cluster.node(101).log_contents().matches(FIX).count();
    let controller_lines = cluster.node(1).log_contents().matches(FIX).count();
    // One line per controller client of the broker (registration and heartbeats; the metadata fetches), and one
    // per refused channel kind on the controller, within a minute.
    assert!(
        (1..=2).contains(&broker_lines),
        "{broker_lines} refusal lines in broker 101's log"
    );
    assert_eq!(controller_lines, 1, "refusal lines in the controller's log");
    for id in [101, 1] {
        let log = cluster.node(id).log_contents();
        let line = log.lines().find(|l| l.contains(FIX)).unwrap_or_default();
        println!("node {id}: {line}");
    }

    // Kafka clients on the controller listener are authorized as Kafka's controllers do: DescribeQuorum needs
    // DESCRIBE on the cluster (31 = CLUSTER_AUTHORIZATION_FAILED).
    assert_eq!(describe_quorum_as(&cluster, 100), 0, "a super user");
    assert_eq!(describe_quorum_as(&cluster, 101), 31, "no ACL");

    // Granted CLUSTER_ACTION on the cluster, it registers and serves.
    let grant = Acl::allow(
        RESOURCE_CLUSTER,
        "kafka-cluster",
        "User:node101",
        OP_CLUSTER_ACTION,
    );
    let mut conn = cluster
        .node(100)
        .connect(Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}"));
    create_acls(&mut conn, std::slice::from_ref(&grant))
        .unwrap_or_else(|e| panic!("CreateAcls: {e}"));
    let granted = Instant::now();
    cluster
        .node_mut(101)
        .wait_ready(Duration::from_secs(60))
        .unwrap_or_else(|e: HarnessError| panic!("broker 101 after the grant: {e}"));
    let expected = [100, 101].into_iter().collect();
    cluster
        .wait_brokers_listed(&expected, Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));
    println!(
        "FIGURE broker 101 registered and listed {:?} after CLUSTER_ACTION was granted",
        granted.elapsed()
    );
    // CLUSTER_ACTION does not imply DESCRIBE.
    assert_eq!(describe_quorum_as(&cluster, 101), 31, "CLUSTER_ACTION only");

    // Revoked, it takes effect on the open channels too: the heartbeats are refused, the controller fences
    // broker 101 after its session timeout and Metadata stops listing it.
    let refusals_before = cluster.node(101).log_contents().matches(FIX).count();
    let deleted = delete_acls(&mut conn, std::slice::from_ref(&grant))
        .unwrap_or_else(|e| panic!("DeleteAcls: {e}"));
    assert_eq!(deleted, 1);
    // (Broker 101 itself no longer hears from the controller, so only broker 100's view is asked.)
    wait_for(
        "broker 100 no longer listing broker 101",
        &cluster,
        Duration::from_secs(60),
        || {
            cluster.node(100).metadata().is_ok_and(|md| {
                kraftwerk_tests::cluster::broker_ids(&md) == [100].into_iter().collect()
            })
        },
    );
    wait_for(
        "broker 101 logging the refusal again",
        &cluster,
        Duration::from_secs(30),
        || cluster.node(101).log_contents().matches(FIX).count() > refusals_before,
    );
    cluster.stop_all().unwrap_or_else(|e| panic!("{e}"));
}

/// (high watermark, log end offset of `voter`) from DescribeQuorum asked of the controller listener as `node1`.
fn quorum_progress(cluster: &Cluster, voter: i32) -> Option<(i64, i64)> {
    let login = ClientSecurity {
        protocol: SecurityProtocol::SaslPlaintext,
        ca_pem: None,
        sasl: Some(SaslLogin {
            mechanism: "PLAIN".into(),
            username: "node1".into(),
            password: "node1-secret".into(),
        }),
    };
    // Only the active controller answers: ask each in turn.
    for id in cluster.controller_ids() {
        let Some(addr) = cluster.node(id).controller_addr() else {
            continue;
        };
        let Ok(mut conn) = login.connect(addr, Duration::from_secs(10)) else {
            continue;
        };
        let request = DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
            .with_topic_name(TopicName(StrBytes::from_static_str("__cluster_metadata")))
            .with_partitions(vec![PartitionData::default().with_partition_index(0)])]);
        let Ok(resp) = conn.request(2, &request) else {
            continue;
        };
        let Some(p) = resp.topics.first().and_then(|t| t.partitions.first()) else {
            continue;
        };
        if resp.error_code != 0 || p.error_code != 0 {
            continue;
        }
        let leo = p
            .current_voters
            .iter()
            .find(|v| v.replica_id.0 == voter)?
            .log_end_offset;
        return Some((p.high_watermark, leo));
    }
    None
}

/// The raft channel: controller 3's principal is not a super user, so controllers 1 and 2 refuse its raft
/// messages (its log falls behind, as the leader sees it) until it is granted CLUSTER_ACTION.
#[test]
fn a_controller_without_cluster_action_cannot_send_raft_messages_until_granted() {
    let mut cluster = authorized_sasl_controllers(
        3,
        "org.apache.kafka.common.security.plain.PlainLoginModule required \
         username=\"node{id}\" password=\"node{id}-secret\" user_node1=\"node1-secret\" \
         user_node2=\"node2-secret\" user_node3=\"node3-secret\" user_node100=\"node100-secret\";",
        "User:node1;User:node2;User:node100;User:ANONYMOUS",
    )
    .start()
    .unwrap_or_else(|e| panic!("starting the cluster: {e}"));
    let raft_refusal =
        "User:node3 (node 3) on controller listener CONTROLLER may not send raft messages";
    wait_for(
        "controller 3 logging the refused raft connection",
        &cluster,
        Duration::from_secs(60),
        || {
            let log = cluster.node(3).log_contents();
            log.contains("refused our raft connection") && log.contains(raft_refusal)
        },
    );
    wait_for(
        "controllers 1 and 2 logging the refusal",
        &cluster,
        Duration::from_secs(30),
        || {
            [1, 2].iter().all(|&id| {
                let log = cluster.node(id).log_contents();
                log.contains("refusing node 3") && log.contains(raft_refusal)
            })
        },
    );
    // Metadata writes commit on controllers 1 and 2; controller 3's answers never reach the leader.
    let mut conn = cluster
        .node(100)
        .connect(Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}"));
    for i in 0..3 {
        create_acls(
            &mut conn,
            &[Acl::allow(
                kraftwerk_tests::security_admin::RESOURCE_TOPIC,
                &format!("filler-{i}"),
                "User:nobody",
                kraftwerk_tests::security_admin::OP_READ,
            )],
        )
        .unwrap_or_else(|e| panic!("CreateAcls: {e}"));
    }
    let mut last = None;
    wait_for(
        "controller 3 lagging",
        &cluster,
        Duration::from_secs(30),
        || {
            last = quorum_progress(&cluster, 3);
            last.is_some_and(|(hw, leo)| hw > 0 && leo < hw)
        },
    );
    // And it stays behind: not a moment's lag after a write.
    std::thread::sleep(Duration::from_secs(3));
    let (hw, leo) = quorum_progress(&cluster, 3)
        .unwrap_or_else(|| panic!("DescribeQuorum failed; before: {last:?}"));
    assert!(
        leo < hw,
        "controller 3 caught up while refused: leo {leo}, hw {hw}"
    );

    // Granted, it catches up (its raft connections are redialled with backoff).
    create_acls(
        &mut conn,
        &[Acl::allow(
            RESOURCE_CLUSTER,
            "kafka-cluster",
            "User:node3",
            OP_CLUSTER_ACTION,
        )],
    )
    .unwrap_or_else(|e| panic!("CreateAcls: {e}"));
    let granted = Instant::now();
    wait_for(
        "controller 3 catching up",
        &cluster,
        Duration::from_secs(60),
        || {
            last = quorum_progress(&cluster, 3);
            last.is_some_and(|(hw, leo)| leo >= hw)
        },
    );
    println!(
        "FIGURE controller 3 caught up {:?} after CLUSTER_ACTION was granted ({last:?})",
        granted.elapsed()
    );
    cluster.stop_all().unwrap_or_else(|e| panic!("{e}"));
}
