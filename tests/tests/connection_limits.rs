//! `max.connections.per.ip` closes a connection beyond an address's share at once (and the log says why);
//! `max.connections` makes a new client wait until a connection closes, then serves it. Both change at run time
//! (`kafka-configs --entity-type brokers --alter`), for new connections.

use std::io::{ErrorKind, Read, Write};
use std::time::{Duration, Instant};

use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{ApiVersionsRequest, IncrementalAlterConfigsRequest};
use kafka_protocol::protocol::StrBytes;
use kraftwerk_tests::wire::Connection;
use kraftwerk_tests::{Broker, BrokerBuilder};

fn connect(broker: &Broker, read_timeout: Duration) -> Connection {
    let conn = Connection::connect(broker.addr(), Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("connect: {e}"));
    conn.set_read_timeout(read_timeout)
        .unwrap_or_else(|e| panic!("{e}"));
    conn
}

fn served(conn: &mut Connection) -> bool {
    conn.request(3, &ApiVersionsRequest::default()).is_ok()
}

/// Waits until the broker no longer counts connections the test closed.
fn settle() {
    std::thread::sleep(Duration::from_millis(300));
}

#[test]
fn an_address_beyond_max_connections_per_ip_is_closed() {
    let broker = BrokerBuilder::default()
        .prop("max.connections.per.ip", "2")
        .start()
        .unwrap_or_else(|e| panic!("{e}"));
    settle();
    let mut a = connect(&broker, Duration::from_secs(10));
    let mut b = connect(&broker, Duration::from_secs(10));
    assert!(served(&mut a) && served(&mut b));
    let mut c = connect(&broker, Duration::from_secs(10));
    let started = Instant::now();
    assert!(
        !served(&mut c),
        "a third connection from 127.0.0.1 was served"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "refused at once, not timed out"
    );
    assert!(broker
        .log_contents()
        .contains("already has 2 open (max.connections.per.ip)"));
    drop(a);
    settle();
    let mut d = connect(&broker, Duration::from_secs(10));
    assert!(
        served(&mut d),
        "a slot freed by a closed connection was not given back"
    );
}

/// Three connections to `addr` where two may be open: the third waits until one closes.
fn third_waits_for_a_slot(addr: std::net::SocketAddr) {
    let open = |timeout| {
        let conn = Connection::connect(addr, Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("connect: {e}"));
        conn.set_read_timeout(timeout)
            .unwrap_or_else(|e| panic!("{e}"));
        conn
    };
    let mut a = open(Duration::from_secs(10));
    let mut b = open(Duration::from_secs(10));
    assert!(served(&mut a) && served(&mut b));
    // Not accepted yet: the request sits in the backlog unanswered.
    let mut c = open(Duration::from_secs(2));
    assert!(
        !served(&mut c),
        "a third connection was served beyond the limit of 2"
    );
    drop(a);
    drop(c);
    settle();
    // A slot is free again: a fresh connection is served.
    let mut d = open(Duration::from_secs(20));
    assert!(served(&mut d));
}

#[test]
fn at_max_connections_a_new_client_waits_for_a_free_slot() {
    // max.connections counts client listeners, not the inter-broker one (Kafka's rule), so the limited
    // listener is a second one; the per-listener limit applies to any listener.
    let client_port = kraftwerk_tests::ports::free_ports(1).unwrap_or_else(|e| panic!("{e}"))[0];
    let broker = BrokerBuilder::default()
        .prop(
            "listeners",
            format!(
                "PLAINTEXT://127.0.0.1:{{port}},CLIENT://127.0.0.1:{client_port},CONTROLLER://127.0.0.1:{{controller_port}}"
            ),
        )
        .prop(
            "listener.security.protocol.map",
            "PLAINTEXT:PLAINTEXT,CLIENT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        )
        .prop("inter.broker.listener.name", "PLAINTEXT")
        .prop("max.connections", "2")
        .prop("listener.name.plaintext.max.connections", "2")
        .start()
        .unwrap_or_else(|e| panic!("{e}"));
    settle();
    third_waits_for_a_slot(std::net::SocketAddr::from(([127, 0, 0, 1], client_port)));
    third_waits_for_a_slot(broker.addr());
}

/// IncrementalAlterConfigs on the cluster-wide broker default: (error code, message).
fn alter_cluster_default(conn: &mut Connection, key: &str, value: Option<&str>) -> (i16, String) {
    let mut c = AlterableConfig::default();
    c.name = StrBytes::from_string(key.to_string());
    c.config_operation = if value.is_some() { 0 } else { 1 };
    c.value = value.map(|v| StrBytes::from_string(v.to_string()));
    let mut r = AlterConfigsResource::default();
    r.resource_type = 4; // BROKER
    r.resource_name = StrBytes::from_static_str("");
    r.configs = vec![c];
    let mut req = IncrementalAlterConfigsRequest::default();
    req.resources = vec![r];
    let resp = conn
        .request(1, &req)
        .unwrap_or_else(|e| panic!("alter configs: {e}"));
    let r = &resp.responses[0];
    (
        r.error_code,
        r.error_message
            .as_ref()
            .map(|m| m.to_string())
            .unwrap_or_default(),
    )
}

/// Probes with fresh connections from 127.0.0.1 until one is `served` as wanted (the broker applies a change
/// once its metadata image has it).
fn until_probe_is(broker: &Broker, served_wanted: bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut probe = connect(broker, Duration::from_secs(10));
        if served(&mut probe) == served_wanted {
            return;
        }
        drop(probe);
        assert!(Instant::now() < deadline, "{what}: never applied");
        settle();
    }
}

#[test]
fn connection_limits_change_at_run_time() {
    let client_port = kraftwerk_tests::ports::free_ports(1).unwrap_or_else(|e| panic!("{e}"))[0];
    let broker = BrokerBuilder::default()
        .prop(
            "listeners",
            format!(
                "PLAINTEXT://127.0.0.1:{{port}},CLIENT://127.0.0.1:{client_port},CONTROLLER://127.0.0.1:{{controller_port}}"
            ),
        )
        .prop(
            "listener.security.protocol.map",
            "PLAINTEXT:PLAINTEXT,CLIENT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        )
        .prop("inter.broker.listener.name", "PLAINTEXT")
        .start()
        .unwrap_or_else(|e| panic!("{e}"));
    settle();
    let mut admin = connect(&broker, Duration::from_secs(10));
    // Refused as Kafka refuses them (broker configs are validated by the receiving broker: INVALID_REQUEST).
    let (code, message) = alter_cluster_default(&mut admin, "max.connections.per.ip", Some("0"));
    assert_eq!(code, 42, "INVALID_REQUEST: {message}");
    assert!(
        message.contains("max.connections.per.ip.overrides"),
        "{message}"
    );
    let (code, _) = alter_cluster_default(
        &mut admin,
        "max.connections.per.ip.overrides",
        Some("somehost:x"),
    );
    assert_eq!(code, 42);
    assert_eq!(
        alter_cluster_default(&mut admin, "max.connections", Some("-1")).0,
        42
    );

    // max.connections.per.ip=2: with the admin connection, one more from 127.0.0.1.
    assert_eq!(
        alter_cluster_default(&mut admin, "max.connections.per.ip", Some("2")).0,
        0
    );
    let mut held = connect(&broker, Duration::from_secs(10));
    assert!(served(&mut held));
    until_probe_is(&broker, false, "max.connections.per.ip=2");
    assert!(
        served(&mut admin) && served(&mut held),
        "open connections stay"
    );
    // An override for the address lifts it.
    assert_eq!(
        alter_cluster_default(
            &mut admin,
            "max.connections.per.ip.overrides",
            Some("127.0.0.1:5")
        )
        .0,
        0
    );
    until_probe_is(&broker, true, "max.connections.per.ip.overrides");
    for key in ["max.connections.per.ip", "max.connections.per.ip.overrides"] {
        assert_eq!(alter_cluster_default(&mut admin, key, None).0, 0);
    }
    drop(held);

    // max.connections=2 on the client listener (the admin's is the inter-broker one, not counted).
    assert_eq!(
        alter_cluster_default(&mut admin, "max.connections", Some("2")).0,
        0
    );
    let client = std::net::SocketAddr::from(([127, 0, 0, 1], client_port));
    let open = |timeout| {
        let conn = Connection::connect(client, Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("connect: {e}"));
        conn.set_read_timeout(timeout)
            .unwrap_or_else(|e| panic!("{e}"));
        conn
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let (mut a, mut b, mut c) = loop {
        let mut a = open(Duration::from_secs(10));
        let mut b = open(Duration::from_secs(10));
        assert!(served(&mut a) && served(&mut b));
        // The third sends ApiVersions v0 on a plain socket, so its answer can be awaited after a timeout.
        let mut c = std::net::TcpStream::connect(client).unwrap_or_else(|e| panic!("{e}"));
        c.write_all(&[0, 0, 0, 10, 0, 18, 0, 0, 0, 0, 0, 1, 0xff, 0xff])
            .unwrap_or_else(|e| panic!("{e}"));
        c.set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap_or_else(|e| panic!("{e}"));
        let mut first = [0u8; 1];
        match c.read(&mut first) {
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                break (a, b, c)
            }
            _ => {}
        }
        assert!(Instant::now() < deadline, "max.connections=2 never applied");
        drop((a, b, c));
        settle();
    };
    // Raised while the third waits in the backlog: it is served without any connection closing.
    assert_eq!(
        alter_cluster_default(&mut admin, "max.connections", Some("3")).0,
        0
    );
    c.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut head = [0u8; 8];
    c.read_exact(&mut head)
        .unwrap_or_else(|e| panic!("the raised limit did not let the waiting client in: {e}"));
    assert_eq!(&head[4..], &[0, 0, 0, 1], "its ApiVersions answer");
    assert!(served(&mut a) && served(&mut b));
}
