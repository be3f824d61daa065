//! The binary's command-line contract: random-uuid, format, refusing an unformatted dir, --override,
//! SIGTERM, and restarts keeping topics.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use kraftwerk_tests::binary::kraftwerk_binary;
use kraftwerk_tests::ports::free_ports;
use kraftwerk_tests::properties::ServerProperties;
use kraftwerk_tests::Broker;
use support::{
    consume_all, create_topic, flush, partition_count, recording_producer, send,
    wait_for_partitions,
};

#[test]
fn random_uuid_prints_distinct_22_char_base64url_ids() {
    let bin = kraftwerk_binary().unwrap_or_else(|e| panic!("{e}"));
    let mut ids = Vec::new();
    for _ in 0..2 {
        let out = Command::new(&bin)
            .arg("random-uuid")
            .output()
            .unwrap_or_else(|e| panic!("running random-uuid: {e}"));
        assert!(out.status.success(), "random-uuid exited {}", out.status);
        let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert_eq!(id.len(), 22, "{id:?}");
        assert!(
            id.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "not base64url: {id:?}"
        );
        ids.push(id);
    }
    assert_ne!(ids[0], ids[1]);
}

#[test]
fn format_add_scram_writes_the_bootstrap_checkpoint_or_names_the_mistake() {
    let bin = kraftwerk_binary().unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let ports = free_ports(2).unwrap_or_else(|e| panic!("{e}"));
    let data = dir.path().join("data");
    let props = ServerProperties::single_node(ports[0], ports[1], &data);
    let config = dir.path().join("server.properties");
    std::fs::write(&config, props.render()).unwrap_or_else(|e| panic!("{e}"));
    let out = Command::new(&bin)
        .arg("random-uuid")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let cluster_id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let format = |scram: &str| {
        let out = Command::new(&bin)
            .args(["format", "--config"])
            .arg(&config)
            .args(["--cluster-id", &cluster_id, "--add-scram", scram])
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    };
    // A mistake stops the format before anything is written, naming the option but not the password.
    let (ok, text) = format("SCRAM-SHA-256=[name=admin,password=s3cret,iterations=12]");
    assert!(!ok, "{text}");
    assert!(
        text.contains("--add-scram") && text.contains("iterations"),
        "{text}"
    );
    assert!(!text.contains("s3cret"), "{text}");
    assert!(!data.join("meta.properties").exists());
    // Kafka's syntax: the credential goes into bootstrap.checkpoint (Kafka's snapshot format: batches whose
    // records include the user name).
    let (ok, text) = format("SCRAM-SHA-512=[name=admin,password=s3cret]");
    assert!(ok, "{text}");
    let bootstrap =
        std::fs::read(data.join("bootstrap.checkpoint")).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        bootstrap.windows(5).any(|w| w == b"admin"),
        "no credential record for admin in bootstrap.checkpoint"
    );
    assert!(!bootstrap.windows(6).any(|w| w == b"s3cret"));
}

#[test]
fn starting_on_an_unformatted_dir_fails_with_a_clear_message() {
    let bin = kraftwerk_binary().unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let ports = free_ports(2).unwrap_or_else(|e| panic!("{e}"));
    let props = ServerProperties::single_node(ports[0], ports[1], &dir.path().join("data"));
    let config = dir.path().join("server.properties");
    std::fs::write(&config, props.render()).unwrap_or_else(|e| panic!("{e}"));
    let mut child = Command::new(&bin)
        .arg("--config")
        .arg(&config)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while child.try_wait().ok().flatten().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("kraftwerk kept running on an unformatted log dir");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    assert!(!out.status.success(), "exit status {}", out.status);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.to_lowercase().contains("format"),
        "the message should say the dir needs `kraftwerk format`; got:\n{text}"
    );
}

#[test]
fn sigterm_exits_cleanly_and_restart_keeps_topics_and_data() {
    let mut broker = Broker::start().unwrap_or_else(|e| panic!("{e}"));
    eprintln!("started in {:?}", broker.last_start_duration());
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "kept", 2, &[("retention.ms", "86400000")]);
    let (producer, recorder) = recording_producer(&bootstrap, &[]);
    for i in 0..100u64 {
        send(&producer, "kept", i, format!("k{i}").as_bytes(), b"v", None)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    flush(&producer).unwrap_or_else(|e| panic!("{e}"));
    drop(producer);
    assert_eq!(recorder.acked_count(), 100);

    let status = broker.stop().unwrap_or_else(|e| panic!("{e}"));
    assert!(status.success(), "SIGTERM exit status {status}");
    // One clean-shutdown marker for the data directory (Kafka's `.kafka_cleanshutdown`), none per partition
    // (the metadata log keeps its own, being the only log of its directory).
    let data = broker.dir().join("data");
    let marker = data.join(".kraftwerk_cleanshutdown");
    assert!(
        marker.exists(),
        "no clean-shutdown marker in {}",
        data.display()
    );
    for p in 0..2 {
        assert!(!data
            .join(format!("kept-{p}/.kraftwerk_cleanshutdown"))
            .exists());
    }
    broker.restart().unwrap_or_else(|e| panic!("{e}"));
    // Taken at start, before anything is appended: a crash from here on is recovered as one.
    assert!(
        !marker.exists(),
        "the marker must be gone once the broker serves"
    );
    wait_for_partitions(&bootstrap, "kept", 2);
    let log =
        consume_all(&bootstrap, "kept", Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(log.len(), 100);

    broker.kill9().unwrap_or_else(|e| panic!("{e}"));
    assert!(!marker.exists(), "kill -9 leaves no marker");
    broker.restart().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(partition_count(&bootstrap, "kept"), Some(2));
    let log =
        consume_all(&bootstrap, "kept", Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(log.len(), 100);
}

#[test]
fn command_line_override_beats_the_config_file() {
    let broker = Broker::builder()
        .prop("num.partitions", "1")
        .cli_override("num.partitions", "3")
        .start()
        .unwrap_or_else(|e| panic!("{e}"));
    let (producer, _) = recording_producer(&broker.bootstrap(), &[]);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut last = None;
    while std::time::Instant::now() < deadline {
        use rdkafka::producer::Producer;
        let count = producer
            .client()
            .fetch_metadata(Some("overridden"), Duration::from_secs(5))
            .ok()
            .and_then(|md| {
                md.topics()
                    .iter()
                    .find(|t| t.name() == "overridden" && t.error().is_none())
                    .map(|t| t.partitions().len())
            });
        if count.is_some() {
            last = count;
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        last,
        Some(3),
        "auto-created topic partitions with --override num.partitions=3"
    );
}

/// A listener that asks for security the broker cannot give must stop the start (never be served as plain TCP):
/// SASL is not built yet, and an SSL listener without a keystore has no certificate to serve. Checked for the
/// file, `--override` and the Bitnami environment convention.
#[test]
fn ssl_and_sasl_listeners_stop_the_start_with_a_clear_message() {
    let bin = kraftwerk_binary().unwrap_or_else(|e| panic!("{e}"));
    for (proto, how) in [
        ("SSL", "file"),
        ("SASL_PLAINTEXT", "override"),
        ("SASL_SSL", "env"),
    ] {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let ports = free_ports(2).unwrap_or_else(|e| panic!("{e}"));
        let mut props = ServerProperties::single_node(ports[0], ports[1], &dir.path().join("data"));
        let listeners = format!(
            "CLIENT://127.0.0.1:{},CONTROLLER://127.0.0.1:{}",
            ports[0], ports[1]
        );
        let map = format!("CLIENT:{proto},CONTROLLER:PLAINTEXT");
        props.set("listeners", listeners);
        if how == "file" {
            props.set("listener.security.protocol.map", map.clone());
        }
        let config = dir.path().join("server.properties");
        std::fs::write(&config, props.render()).unwrap_or_else(|e| panic!("{e}"));
        let mut cmd = Command::new(&bin);
        cmd.arg("--config").arg(&config);
        match how {
            "override" => {
                cmd.arg("--override")
                    .arg(format!("listener.security.protocol.map={map}"));
            }
            "env" => {
                cmd.env("KAFKA_CFG_LISTENER_SECURITY_PROTOCOL_MAP", &map);
            }
            _ => {}
        }
        let out = cmd
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.status.success(), "{proto} via {how}: started:\n{text}");
        // Served (SASL on the inter-broker listener too) once configured: without a certificate or a mechanism
        // the start stops and says which key to set.
        let named = if proto.ends_with("SSL") {
            text.contains("SSL listener CLIENT needs ssl.keystore.location")
        } else {
            text.contains("SASL listener CLIENT needs sasl.enabled.mechanisms")
        };
        assert!(
            named,
            "{proto} via {how}: the message should name the listener and what is missing; got:\n{text}"
        );
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", ports[0])).is_err(),
            "{proto} via {how}: the listener port must not be bound"
        );
    }
}

/// A second process on log directories a running broker holds stops at once and names the directory (Kafka's
/// `.lock`), on other ports so that nothing else stands in its way; the running broker goes on serving.
#[test]
fn a_second_process_on_the_same_log_dirs_is_refused() {
    let broker = Broker::start().unwrap_or_else(|e| panic!("{e}"));
    let ports = free_ports(2).unwrap_or_else(|e| panic!("{e}"));
    let mut out = Command::new(broker.binary())
        .arg("--config")
        .arg(broker.config_path())
        .arg("--override")
        .arg(format!(
            "listeners=PLAINTEXT://127.0.0.1:{},CONTROLLER://127.0.0.1:{}",
            ports[0], ports[1]
        ))
        .arg("--override")
        .arg(format!(
            "advertised.listeners=PLAINTEXT://127.0.0.1:{}",
            ports[0]
        ))
        .arg("--override")
        .arg(format!("controller.quorum.voters=1@127.0.0.1:{}", ports[1]))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    // Without the lock it would start and keep running: give it a bounded time to refuse.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while out.try_wait().ok().flatten().is_none() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let still_running = out.try_wait().ok().flatten().is_none();
    if still_running {
        let _ = out.kill();
    }
    let out = out.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !still_running && !out.status.success(),
        "a second process started on the same log dirs:\n{text}"
    );
    assert!(
        text.contains("is in use by another process"),
        "the message should name the locked directory:\n{text}"
    );
    assert!(
        broker.metadata().is_ok(),
        "the running broker stopped serving"
    );
}

/// A new partition's directory is made by the broker soon after the topic's creation, with no write and off the
/// request path (CreateTopics itself creates no inode); a partition never written survives kill -9 and restarts
/// as a partition, and takes data afterwards.
#[test]
fn a_new_partition_gets_its_directory_without_a_write() {
    let mut broker = Broker::start().unwrap_or_else(|e| panic!("{e}"));
    let bootstrap = broker.bootstrap();
    let data = broker.dir().join("data");
    let dirs = || -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&data)
            .unwrap_or_else(|e| panic!("{e}"))
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("lazy-"))
            .collect();
        names.sort();
        names
    };
    let complete = |name: &str| {
        let dir = data.join(name);
        dir.join("partition.metadata").is_file() && dir.join("00000000000000000000.log").is_file()
    };
    let all = vec!["lazy-0", "lazy-1", "lazy-2"];
    create_topic(&bootstrap, "lazy", 3, &[]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(dirs() == all && all.iter().all(|d| complete(d))) {
        assert!(
            Instant::now() < deadline,
            "directories not made without a write: {:?}",
            dirs()
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    broker.kill9().unwrap_or_else(|e| panic!("{e}"));
    broker.restart().unwrap_or_else(|e| panic!("{e}"));
    wait_for_partitions(&bootstrap, "lazy", 3);
    assert_eq!(dirs(), all, "a restart keeps them");
    let (producer, recorder) = recording_producer(&bootstrap, &[]);
    for i in 0..60u64 {
        send(&producer, "lazy", i, format!("k{i}").as_bytes(), b"v", None)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    flush(&producer).unwrap_or_else(|e| panic!("{e}"));
    drop(producer);
    assert_eq!(recorder.acked_count(), 60);
    let log =
        consume_all(&bootstrap, "lazy", Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(log.len(), 60);
}
