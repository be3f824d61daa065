//! SASL between nodes, with real processes: three controllers whose only listener is SASL_SSL with SCRAM-SHA-512
//! (the credential bootstrapped by `kraftwerk format --add-scram`, since controllers must log in to each other
//! before any metadata exists), two brokers that log in to them with it, and an inter-broker listener that is
//! SASL_PLAINTEXT with PLAIN (followers fetch over it). Test clients use the brokers' PLAINTEXT listener.
//!
//! Proves: the quorum forms and brokers register; a topic with replication factor 2 is replicated (its leader is
//! killed and every acknowledged record is read from the other broker); a controller restarted with a wrong
//! password cannot log in to the others (its raft answers never reach the leader, whose DescribeQuorum shows it
//! falling behind the high watermark), and both sides log the authentication failure.

mod support;

use std::time::{Duration, Instant};

use kraftwerk_tests::pki::{write_file, TestCa};
use kraftwerk_tests::wire::Connection;
use kraftwerk_tests::Cluster;
use rdkafka::admin::{NewTopic, TopicReplication};
use support::{admin, admin_options, block_on, consume_all, flush, recording_producer, send};

const TOPIC: &str = "over-sasl";
const SCRAM_JAAS: &str = "org.apache.kafka.common.security.scram.ScramLoginModule required \
                          username=\"admin\" password=\"admin-secret\";";
const PLAIN_JAAS: &str = "org.apache.kafka.common.security.plain.PlainLoginModule required \
                          username=\"broker\" password=\"broker-secret\" user_broker=\"broker-secret\";";

/// A CA and one certificate it signed for 127.0.0.1: (CA PEM, key + certificate PEM).
fn pki() -> (String, String) {
    let ca = TestCa::new();
    (
        ca.pem(),
        ca.issue("node", &["127.0.0.1"], None).keystore_pem(),
    )
}

/// (leader, ISR size) of partition 0 of [`TOPIC`] as broker `via` reports it.
fn leadership(cluster: &Cluster, via: i32) -> Option<(i32, usize)> {
    let md = cluster.node(via).metadata().ok()?;
    let topic = md
        .topics
        .iter()
        .find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == TOPIC))?;
    let p = topic.partitions.iter().find(|p| p.partition_index == 0)?;
    Some((p.leader_id.0, p.isr_nodes.len()))
}

/// (high watermark, log end offset of `voter`) as the active controller's DescribeQuorum reports them, asked
/// through broker `via`.
fn quorum_progress(cluster: &Cluster, via: i32, voter: i32) -> Option<(i64, i64)> {
    use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
    use kafka_protocol::messages::{DescribeQuorumRequest, TopicName};
    use kafka_protocol::protocol::StrBytes;
    let addr = cluster.node(via).broker_addr()?;
    let mut conn = Connection::connect(addr, Duration::from_secs(10)).ok()?;
    conn.set_read_timeout(Duration::from_secs(30)).ok()?;
    let request = DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
        .with_topic_name(TopicName(StrBytes::from_static_str("__cluster_metadata")))
        .with_partitions(vec![PartitionData::default().with_partition_index(0)])]);
    let response = conn.request(1, &request).ok()?;
    let partition = response.topics.first()?.partitions.first()?;
    if partition.error_code != 0 {
        return None;
    }
    let state = partition
        .current_voters
        .iter()
        .find(|v| v.replica_id.0 == voter)?;
    Some((partition.high_watermark, state.log_end_offset))
}

fn wait_for(what: &str, cluster: &Cluster, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        if done() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("{what} did not happen\n{}", cluster.log_tails(4000));
}

#[test]
fn a_cluster_whose_nodes_authenticate_each_other_with_sasl() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (ca, node) = pki();
    let keystore = write_file(dir.path(), "node.pem", &node);
    let truststore = write_file(dir.path(), "ca.pem", &ca);
    let mut cluster = Cluster::builder()
        .controllers(3)
        .brokers(2)
        .second_broker_listener("INTERNAL")
        .format_arg("--add-scram")
        .format_arg("SCRAM-SHA-512=[name=admin,password=admin-secret]")
        .prop(
            "listener.security.protocol.map",
            "PLAINTEXT:PLAINTEXT,INTERNAL:SASL_PLAINTEXT,CONTROLLER:SASL_SSL",
        )
        .prop("inter.broker.listener.name", "INTERNAL")
        // The controller listener: TLS, then SCRAM-SHA-512 (every node dials it with admin's credential).
        .prop("listener.name.controller.ssl.keystore.type", "PEM")
        .prop("listener.name.controller.ssl.keystore.location", keystore)
        .prop("listener.name.controller.ssl.truststore.type", "PEM")
        .prop(
            "listener.name.controller.ssl.truststore.location",
            truststore,
        )
        .prop(
            "listener.name.controller.sasl.enabled.mechanisms",
            "SCRAM-SHA-512",
        )
        .prop("sasl.mechanism.controller.protocol", "SCRAM-SHA-512")
        .prop(
            "listener.name.controller.scram-sha-512.sasl.jaas.config",
            SCRAM_JAAS,
        )
        // The inter-broker listener: PLAIN, users and the brokers' own login in one JAAS entry, as in Kafka.
        .prop("listener.name.internal.sasl.enabled.mechanisms", "PLAIN")
        .prop("listener.name.internal.plain.sasl.jaas.config", PLAIN_JAAS)
        .prop("sasl.mechanism.inter.broker.protocol", "PLAIN")
        .start()
        .unwrap_or_else(|e| panic!("starting the cluster: {e}"));

    // Brokers registered through the SASL_SSL controller listener (start waits for both in Metadata).
    let brokers = cluster.broker_ids();
    assert_eq!(brokers.len(), 2);
    let bootstrap = cluster.bootstrap();
    let topic = NewTopic::new(TOPIC, 1, TopicReplication::Fixed(2));
    let created = block_on(admin(&bootstrap).create_topics([&topic], &admin_options()))
        .unwrap_or_else(|e| panic!("CreateTopics: {e}"));
    assert!(matches!(created.as_slice(), [Ok(_)]), "{created:?}");
    let (producer, recorder) = recording_producer(&bootstrap, &[]);
    for seq in 0..200u64 {
        send(
            &producer,
            TOPIC,
            seq,
            b"k",
            format!("m-{seq}").as_bytes(),
            None,
        )
        .unwrap_or_else(|e| panic!("{e}"));
    }
    flush(&producer).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(recorder.acked_count(), 200);
    drop(producer);

    // The follower fetched everything over the SASL_PLAINTEXT listener: the leader dies, the follower (in the
    // ISR) takes over and serves every acknowledged record.
    let mut leader = -1;
    wait_for("both replicas in the ISR", &cluster, || {
        match leadership(&cluster, brokers[0]) {
            Some((l, 2)) if l >= 0 => {
                leader = l;
                true
            }
            _ => false,
        }
    });
    let follower = *brokers
        .iter()
        .find(|&&b| b != leader)
        .unwrap_or_else(|| panic!("no follower of {leader}"));
    cluster
        .node_mut(leader)
        .kill9()
        .unwrap_or_else(|e| panic!("killing {leader}: {e}"));
    // Once the dead broker is fenced its follower leads (and Metadata no longer lists the dead one).
    wait_for("the follower taking over", &cluster, || {
        let md = cluster.node(follower).metadata();
        leadership(&cluster, follower).is_some_and(|(l, _)| l == follower)
            && md.is_ok_and(|md| md.brokers.len() == 1)
    });
    let survivor = cluster.bootstrap_of(&[follower]);
    let log = consume_all(&survivor, TOPIC, Duration::from_secs(90))
        .unwrap_or_else(|e| panic!("{e}\n{}", cluster.log_tails(4000)));
    assert_eq!(log.len(), 200, "records read from the former follower");

    // A controller restarted with a wrong password cannot log in to the others: its log says so, and theirs
    // name the refused user.
    let victim = cluster.controller_ids()[2];
    cluster
        .node_mut(victim)
        .stop()
        .unwrap_or_else(|e| panic!("stopping {victim}: {e}"));
    let config = cluster.node(victim).config_path().to_path_buf();
    let text = std::fs::read_to_string(&config).unwrap_or_else(|e| panic!("{e}"));
    assert!(text.contains("password=\"admin-secret\""), "{text}");
    std::fs::write(
        &config,
        text.replace("password=\"admin-secret\"", "password=\"wrong-secret\""),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    cluster
        .node_mut(victim)
        .restart()
        .unwrap_or_else(|e| panic!("restarting {victim}: {e}"));
    wait_for("the refused login in the victim's log", &cluster, || {
        let log = cluster.node(victim).log_since_spawn();
        log.contains("cannot log in to controller")
            && log.contains("SASL authentication as \"admin\" with SCRAM-SHA-512 failed")
    });
    let others: Vec<i32> = cluster
        .controller_ids()
        .into_iter()
        .filter(|&c| c != victim)
        .collect();
    wait_for(
        "the refusal in the other controllers' logs",
        &cluster,
        || {
            others.iter().all(|&c| {
                cluster
                    .node(c)
                    .log_contents()
                    .contains("authentication failed for user \"admin\"")
            })
        },
    );
    // The quorum (two of three) still serves metadata writes, and the victim's answers never reach the leader:
    // its log end offset, as the leader knows it, stays behind the high watermark those writes move.
    for i in 0..3 {
        let name = format!("after-refusal-{i}");
        let again = NewTopic::new(&name, 1, TopicReplication::Fixed(1));
        let created = block_on(admin(&survivor).create_topics([&again], &admin_options()))
            .unwrap_or_else(|e| panic!("CreateTopics: {e}"));
        assert!(matches!(created.as_slice(), [Ok(_)]), "{created:?}");
    }
    let mut last = None;
    wait_for("the victim lagging in DescribeQuorum", &cluster, || {
        last = quorum_progress(&cluster, follower, victim);
        last.is_some_and(|(hw, leo)| hw > 0 && leo < hw)
    });
    // And it stays behind: the leader never hears from it.
    std::thread::sleep(Duration::from_secs(3));
    let (hw, leo) = quorum_progress(&cluster, follower, victim)
        .unwrap_or_else(|| panic!("DescribeQuorum failed; before: {last:?}"));
    assert!(leo < hw, "victim caught up: leo {leo}, hw {hw}");
}
