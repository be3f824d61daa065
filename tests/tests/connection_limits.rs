//! `max.connections.per.ip` closes a connection beyond an address's share at once (and the log says why);
//! `max.connections` makes a new client wait until a connection closes, then serves it.

use std::time::{Duration, Instant};

use kafka_protocol::messages::ApiVersionsRequest;
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
