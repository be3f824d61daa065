//! SSL client listeners (rustls) against a real broker process: a TLS client speaks Kafka over them with
//! certificates from PEM files and from keystores made by the JDK's `keytool` (JKS and PKCS12, as operators
//! already have them); `ssl.client.auth=required` refuses a client without a certificate, with an expired one
//! or one from an untrusted CA (each reason named in the log); a plaintext Kafka
//! client on the SSL port is named in the log and disconnected at once, never left hanging; and a cluster whose
//! controller listener is SSL with required client certificates (raft between controllers and brokers' calls to
//! the active controller all over mutual TLS) elects, registers brokers and replicates.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::{ApiVersionsRequest, MetadataRequest, ResponseHeader};
use kafka_protocol::protocol::{Decodable, HeaderVersion, Request, StrBytes};
use kraftwerk_tests::pki::{write_file, TestCa};
use kraftwerk_tests::ports::free_ports;
use kraftwerk_tests::wire::encode_request;
use kraftwerk_tests::{Broker, BrokerBuilder, Cluster};
use rdkafka::admin::{NewTopic, TopicReplication};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use support::{admin, admin_options, block_on, consume_all, flush, recording_producer, send};

const PASSWORD: &str = "changeit";

/// A CA and the certificates it signed, as PEM and DER.
struct Pki {
    ca_pem: String,
    ca_der: CertificateDer<'static>,
    server_pem: String,
    server_key_pem: String,
    client_chain: Vec<CertificateDer<'static>>,
    client_key_der: Vec<u8>,
    /// A client certificate from the same CA that expired in 2001.
    expired_chain: Vec<CertificateDer<'static>>,
    expired_key_der: Vec<u8>,
}

fn pki() -> Pki {
    let ca = TestCa::new();
    let server = ca.issue("broker", &["127.0.0.1", "localhost"], None);
    let client = ca.issue("client-1", &[], None);
    let expired = ca.issue("client-expired", &[], Some(((2000, 1, 1), (2001, 1, 1))));
    Pki {
        ca_pem: ca.pem(),
        ca_der: ca.der(),
        server_pem: server.cert_pem,
        server_key_pem: server.key_pem,
        client_chain: vec![client.cert_der],
        client_key_der: client.key_der,
        expired_chain: vec![expired.cert_der],
        expired_key_der: expired.key_der,
    }
}

/// A broker with a PLAINTEXT listener (inter-broker) and an SSL client listener on `ssl_port`.
fn ssl_broker(ssl_port: u16, ssl_props: &[(&str, String)]) -> Broker {
    let mut b = BrokerBuilder::default()
        .prop(
            "listeners",
            format!(
                "PLAINTEXT://127.0.0.1:{{port}},SSL://127.0.0.1:{ssl_port},CONTROLLER://127.0.0.1:{{controller_port}}"
            ),
        )
        .prop(
            "advertised.listeners",
            format!("PLAINTEXT://127.0.0.1:{{port}},SSL://127.0.0.1:{ssl_port}"),
        )
        .prop(
            "listener.security.protocol.map",
            "PLAINTEXT:PLAINTEXT,SSL:SSL,CONTROLLER:PLAINTEXT",
        )
        .prop("inter.broker.listener.name", "PLAINTEXT");
    for (k, v) in ssl_props {
        b = b.prop(*k, v.clone());
    }
    b.start()
        .unwrap_or_else(|e| panic!("starting the broker: {e}"))
}

fn client_config(
    root: &CertificateDer<'static>,
    identity: Option<(&[CertificateDer<'static>], &[u8])>,
) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(root.clone())
        .unwrap_or_else(|e| panic!("adding the root: {e}"));
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap_or_else(|e| panic!("{e}"))
    .with_root_certificates(roots);
    let config = match identity {
        None => builder.with_no_client_auth(),
        Some((chain, key)) => builder
            .with_client_auth_cert(
                chain.to_vec(),
                PrivateKeyDer::try_from(key.to_vec()).unwrap_or_else(|e| panic!("{e}")),
            )
            .unwrap_or_else(|e| panic!("{e}")),
    };
    Arc::new(config)
}

type TlsStream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

fn connect_tls(port: u16, config: Arc<rustls::ClientConfig>) -> TlsStream {
    let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap_or_else(|e| panic!("connect: {e}"));
    tcp.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap_or_else(|e| panic!("{e}"));
    let name = ServerName::try_from("127.0.0.1").unwrap_or_else(|e| panic!("{e}"));
    let conn = rustls::ClientConnection::new(config, name).unwrap_or_else(|e| panic!("{e}"));
    rustls::StreamOwned::new(conn, tcp)
}

/// One Kafka request over any stream.
fn request<S: Read + Write, R: Request>(
    stream: &mut S,
    version: i16,
    body: &R,
) -> std::io::Result<R::Response> {
    let frame = encode_request(7, version, body).map_err(std::io::Error::other)?;
    stream.write_all(&frame)?;
    stream.flush()?;
    let mut len = [0u8; 4];
    stream.read_exact(&mut len)?;
    let mut payload = vec![0u8; u32::from_be_bytes(len) as usize];
    stream.read_exact(&mut payload)?;
    let mut payload = Bytes::from(payload);
    let header = ResponseHeader::decode(
        &mut payload,
        <R::Response as HeaderVersion>::header_version(version),
    )
    .map_err(std::io::Error::other)?;
    assert_eq!(header.correlation_id, 7);
    R::Response::decode(&mut payload, version).map_err(std::io::Error::other)
}

fn api_versions() -> ApiVersionsRequest {
    let mut req = ApiVersionsRequest::default();
    req.client_software_name = StrBytes::from_static_str("kraftwerk-tls-test");
    req.client_software_version = StrBytes::from_static_str("1");
    req
}

fn wait_for_log(broker: &Broker, needle: &str) -> String {
    let start = Instant::now();
    loop {
        let log = broker.log_contents();
        if log.contains(needle) {
            return log;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the broker log never said {needle:?}:\n{}",
            broker.log_tail()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn pem_keystore_with_required_client_certificates() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let keystore = write_file(
        dir.path(),
        "broker.pem",
        &format!("{}{}", pki.server_key_pem, pki.server_pem),
    );
    let truststore = write_file(dir.path(), "ca.pem", &pki.ca_pem);
    let ssl_port = free_ports(1).unwrap_or_else(|e| panic!("{e}"))[0];
    let broker = ssl_broker(
        ssl_port,
        &[
            ("ssl.keystore.type", "PEM".into()),
            ("ssl.keystore.location", keystore),
            ("ssl.truststore.type", "PEM".into()),
            ("ssl.truststore.location", truststore),
            ("ssl.client.auth", "required".into()),
        ],
    );

    // With a client certificate: Kafka over TLS, and Metadata names the SSL endpoint to SSL clients.
    let mut tls = connect_tls(
        ssl_port,
        client_config(&pki.ca_der, Some((&pki.client_chain, &pki.client_key_der))),
    );
    let versions = request(&mut tls, 3, &api_versions()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(versions.error_code, 0);
    assert!(!versions.api_keys.is_empty());
    let md = request(&mut tls, 12, &MetadataRequest::default()).unwrap_or_else(|e| panic!("{e}"));
    let ports: Vec<i32> = md.brokers.iter().map(|b| b.port).collect();
    assert_eq!(ports, vec![i32::from(ssl_port)]);

    // Without one: refused during the handshake, and the log says why.
    let mut anonymous = connect_tls(ssl_port, client_config(&pki.ca_der, None));
    assert!(
        request(&mut anonymous, 3, &api_versions()).is_err(),
        "a client without a certificate was served"
    );
    wait_for_log(&broker, "TLS handshake with the client failed");

    // An expired certificate, and one from a CA the broker does not trust: refused, each named in the log.
    let mut expired = connect_tls(
        ssl_port,
        client_config(
            &pki.ca_der,
            Some((&pki.expired_chain, &pki.expired_key_der)),
        ),
    );
    assert!(request(&mut expired, 3, &api_versions()).is_err());
    wait_for_log(&broker, "certificate expired");
    let stranger = self::pki();
    let mut untrusted = connect_tls(
        ssl_port,
        client_config(
            &pki.ca_der,
            Some((&stranger.client_chain, &stranger.client_key_der)),
        ),
    );
    assert!(request(&mut untrusted, 3, &api_versions()).is_err());
    // Its CA has the same name as the trusted one, so the chain is found and its signature fails.
    wait_for_log(&broker, "invalid peer certificate: BadSignature");

    // A plaintext Kafka client on the SSL port: named in the log and disconnected, not left hanging.
    let mut plain = TcpStream::connect(("127.0.0.1", ssl_port)).unwrap_or_else(|e| panic!("{e}"));
    plain
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap_or_else(|e| panic!("{e}"));
    let started = Instant::now();
    let answer = request(&mut plain, 3, &api_versions());
    assert!(answer.is_err(), "plaintext Kafka was answered on SSL");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the plaintext client hung"
    );
    wait_for_log(&broker, "a Kafka request in plaintext");
}

/// Runs keytool; panics with its output on failure.
fn keytool(args: &[&str]) {
    let out = Command::new("keytool")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running keytool (the JDK must be installed): {e}"));
    assert!(
        out.status.success(),
        "keytool {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn keystores_made_by_keytool_jks_and_pkcs12() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    for store_type in ["JKS", "PKCS12"] {
        let store = dir
            .path()
            .join(format!("broker.{}", store_type.to_lowercase()));
        let store_s = store.display().to_string();
        keytool(&[
            "-genkeypair",
            "-alias",
            "broker",
            "-keyalg",
            "RSA",
            "-keysize",
            "2048",
            "-validity",
            "2",
            "-dname",
            "CN=broker, OU=test",
            "-ext",
            "SAN=ip:127.0.0.1",
            "-storetype",
            store_type,
            "-keystore",
            &store_s,
            "-storepass",
            PASSWORD,
            "-keypass",
            PASSWORD,
        ]);
        let cert = dir.path().join(format!("broker-{store_type}.der"));
        keytool(&[
            "-exportcert",
            "-alias",
            "broker",
            "-keystore",
            &store_s,
            "-storepass",
            PASSWORD,
            "-file",
            &cert.display().to_string(),
        ]);
        let cert = CertificateDer::from(std::fs::read(&cert).unwrap_or_else(|e| panic!("{e}")));
        let ssl_port = free_ports(1).unwrap_or_else(|e| panic!("{e}"))[0];
        let _broker = ssl_broker(
            ssl_port,
            &[
                ("ssl.keystore.type", store_type.into()),
                ("ssl.keystore.location", store_s.clone()),
                ("ssl.keystore.password", PASSWORD.into()),
                ("ssl.key.password", PASSWORD.into()),
            ],
        );
        let mut tls = connect_tls(ssl_port, client_config(&cert, None));
        let versions =
            request(&mut tls, 3, &api_versions()).unwrap_or_else(|e| panic!("{store_type}: {e}"));
        assert_eq!(versions.error_code, 0, "{store_type}");
    }
}

#[test]
fn a_wrong_keystore_password_stops_the_start_with_its_reason() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let store = dir.path().join("broker.p12").display().to_string();
    keytool(&[
        "-genkeypair",
        "-alias",
        "broker",
        "-keyalg",
        "RSA",
        "-dname",
        "CN=broker",
        "-storetype",
        "PKCS12",
        "-keystore",
        &store,
        "-storepass",
        PASSWORD,
    ]);
    let ssl_port = free_ports(1).unwrap_or_else(|e| panic!("{e}"))[0];
    let result = BrokerBuilder::default()
        .prop(
            "listeners",
            format!(
                "PLAINTEXT://127.0.0.1:{{port}},SSL://127.0.0.1:{ssl_port},CONTROLLER://127.0.0.1:{{controller_port}}"
            ),
        )
        .prop("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,SSL:SSL,CONTROLLER:PLAINTEXT")
        .prop("inter.broker.listener.name", "PLAINTEXT")
        .prop("ssl.keystore.type", "PKCS12")
        .prop("ssl.keystore.location", store.clone())
        .prop("ssl.keystore.password", "wrong-password")
        .ready_timeout(Duration::from_secs(20))
        .start();
    let err = match result {
        Ok(_) => panic!("started with a wrong keystore password"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains(&store) && err.contains("password"),
        "the error should name the keystore and the password: {err}"
    );
}

#[test]
fn a_cluster_whose_controller_listener_is_mutual_tls() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    // One certificate (SAN 127.0.0.1) for every node, as server and as client.
    let keystore = write_file(
        dir.path(),
        "node.pem",
        &format!("{}{}", pki.server_key_pem, pki.server_pem),
    );
    let truststore = write_file(dir.path(), "ca.pem", &pki.ca_pem);
    let cluster = Cluster::builder()
        .controllers(3)
        .brokers(2)
        .prop(
            "listener.security.protocol.map",
            "PLAINTEXT:PLAINTEXT,CONTROLLER:SSL",
        )
        .prop("listener.name.controller.ssl.keystore.type", "PEM")
        .prop("listener.name.controller.ssl.keystore.location", keystore)
        .prop("listener.name.controller.ssl.truststore.type", "PEM")
        .prop(
            "listener.name.controller.ssl.truststore.location",
            truststore,
        )
        .prop("listener.name.controller.ssl.client.auth", "required")
        .start()
        .unwrap_or_else(|e| panic!("starting the cluster: {e}"));
    let bootstrap = cluster.bootstrap();
    let topic = NewTopic::new("over-tls", 2, TopicReplication::Fixed(2));
    let created = block_on(admin(&bootstrap).create_topics([&topic], &admin_options()))
        .unwrap_or_else(|e| panic!("CreateTopics: {e}"));
    assert!(matches!(created.as_slice(), [Ok(_)]), "{created:?}");
    let (producer, recorder) = recording_producer(&bootstrap, &[]);
    for seq in 0..200u64 {
        send(
            &producer,
            "over-tls",
            seq,
            b"k",
            format!("m-{seq}").as_bytes(),
            None,
        )
        .unwrap_or_else(|e| panic!("{e}"));
    }
    flush(&producer).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(recorder.acked_count(), 200);
    let log = consume_all(&bootstrap, "over-tls", Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(log.len(), 200);

    // The controller port speaks TLS only: a plaintext peer gets nothing from it.
    let controller = cluster.controller_ids()[0];
    let addr = cluster
        .node(controller)
        .controller_addr()
        .unwrap_or_else(|| panic!("no controller address"));
    let mut plain = TcpStream::connect(addr).unwrap_or_else(|e| panic!("{e}"));
    plain
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        request(&mut plain, 3, &api_versions()).is_err(),
        "the SSL controller listener answered plaintext"
    );
}
