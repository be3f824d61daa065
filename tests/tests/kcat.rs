//! librdkafka's command-line client `kcat` against the broker: metadata listing, produce, consume.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};

use kraftwerk_tests::Broker;
use support::create_topic;

/// The kcat binary, or None (with the reason printed) when it is not installed. scripts/test.sh
/// installs it, so a skip only happens when running `cargo test` by hand on a bare machine.
fn kcat() -> Option<&'static str> {
    let found = Command::new("kcat")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !found {
        eprintln!("SKIPPED: kcat is not installed (apt-get install kcat, or run scripts/test.sh)");
    }
    found.then_some("kcat")
}

fn run(args: &[&str], stdin: Option<&[u8]>) -> (bool, String, String) {
    // cargo test puts rdkafka-sys's own librdkafka build (another version) on LD_LIBRARY_PATH; kcat must load the
    // system librdkafka it was built against.
    let mut child = Command::new("kcat")
        .env_remove("LD_LIBRARY_PATH")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning kcat: {e}"));
    if let Some(mut pipe) = child.stdin.take() {
        if let Some(input) = stdin {
            pipe.write_all(input)
                .unwrap_or_else(|e| panic!("writing to kcat: {e}"));
        }
    }
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("waiting for kcat: {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn kcat_lists_brokers_and_topics() {
    let Some(_) = kcat() else { return };
    let broker = Broker::start().unwrap_or_else(|e| panic!("{e}"));
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "kcat-listed", 2, &[]);
    let (ok, stdout, stderr) = run(&["-L", "-b", &bootstrap, "-m", "20"], None);
    assert!(ok, "kcat -L failed; stdout:\n{stdout}\nstderr:\n{stderr}");
    let expectations = [
        " 1 brokers:".to_string(),
        format!("broker 1 at {bootstrap}"),
        "topic \"kcat-listed\" with 2 partitions:".to_string(),
        "partition 0, leader 1, replicas: 1, isrs: 1".to_string(),
        "partition 1, leader 1, replicas: 1, isrs: 1".to_string(),
    ];
    for want in expectations {
        assert!(
            stdout.contains(&want),
            "kcat -L output lacks {want:?}:\n{stdout}\nstderr:\n{stderr}"
        );
    }
}

#[test]
fn kcat_produces_and_consumes() {
    let Some(_) = kcat() else { return };
    let broker = Broker::start().unwrap_or_else(|e| panic!("{e}"));
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "kcat-rw", 1, &[]);
    let input: String = (0..200).map(|i| format!("key{i}:value {i}\n")).collect();
    let (ok, stdout, stderr) = run(
        &[
            "-P", "-b", &bootstrap, "-t", "kcat-rw", "-K", ":", "-X", "acks=all",
        ],
        Some(input.as_bytes()),
    );
    assert!(ok, "kcat -P failed; stdout:\n{stdout}\nstderr:\n{stderr}");
    let (ok, stdout, stderr) = run(
        &[
            "-C",
            "-b",
            &bootstrap,
            "-t",
            "kcat-rw",
            "-o",
            "beginning",
            "-e",
            "-f",
            "%o %k:%s\n",
        ],
        None,
    );
    assert!(ok, "kcat -C failed; stderr:\n{stderr}");
    let expected: String = (0..200)
        .map(|i| format!("{i} key{i}:value {i}\n"))
        .collect();
    assert_eq!(stdout, expected, "kcat -C output (stderr: {stderr})");
}

/// Debian's kcat (librdkafka 2.0) compresses only when the broker lists Produce v0 (librdkafka#4956, fixed in
/// 2.8; Apache Kafka 4 lists v0 for it, KAFKA-18659). Before Kraftwerk did, every codec was silently dropped
/// and the batches were stored uncompressed; this reads the codec of each stored batch from the segment.
#[test]
fn kcat_compresses_with_every_codec() {
    let Some(_) = kcat() else { return };
    let broker = Broker::start().unwrap_or_else(|e| panic!("{e}"));
    let bootstrap = broker.bootstrap();
    for (codec, id) in [("gzip", 1), ("snappy", 2), ("lz4", 3), ("zstd", 4)] {
        let topic = format!("kcat-{codec}");
        create_topic(&bootstrap, &topic, 1, &[]);
        let input: String = (0..50)
            .map(|i| format!("value {i} {}\n", "x".repeat(200)))
            .collect();
        let (ok, stdout, stderr) = run(
            &[
                "-P", "-b", &bootstrap, "-t", &topic, "-z", codec, "-X", "acks=all",
            ],
            Some(input.as_bytes()),
        );
        assert!(
            ok,
            "kcat -P -z {codec} failed; stdout:\n{stdout}\nstderr:\n{stderr}"
        );
        let segment = find_segment(broker.dir(), &format!("{topic}-0"))
            .unwrap_or_else(|| panic!("no segment of {topic}-0 under {}", broker.dir().display()));
        let codecs = batch_codecs(&std::fs::read(&segment).expect("segment readable"));
        assert!(!codecs.is_empty(), "no batch stored for {topic}");
        assert!(
            codecs.iter().all(|&c| c == id),
            "{codec}: stored batch codecs {codecs:?}, expected {id} (stderr: {stderr})"
        );
    }
}

/// The first segment file of partition directory `name` under `root`.
fn find_segment(root: &std::path::Path, name: &str) -> Option<std::path::PathBuf> {
    for entry in std::fs::read_dir(root).ok()?.flatten() {
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        if path.file_name().is_some_and(|n| n == name) {
            let segment = path.join("00000000000000000000.log");
            return segment.exists().then_some(segment);
        }
        if let Some(found) = find_segment(&path, name) {
            return Some(found);
        }
    }
    None
}

/// The compression codec (attributes & 7) of every record batch in a segment file's bytes.
fn batch_codecs(mut bytes: &[u8]) -> Vec<i16> {
    let mut codecs = Vec::new();
    while bytes.len() >= 23 {
        let length = i32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
        let Some(next) = usize::try_from(length).ok().map(|l| l + 12) else {
            break;
        };
        if next > bytes.len() || next < 23 {
            break;
        }
        let attributes = i16::from_be_bytes([bytes[21], bytes[22]]);
        codecs.push(attributes & 7);
        bytes = &bytes[next..];
    }
    codecs
}

/// A client configured for the wrong security protocol gets a clear error quickly, and the broker log says
/// what happened: SASL on a plaintext listener is refused with ILLEGAL_SASL_STATE, TLS is recognised from
/// its handshake bytes.
#[test]
fn wrong_security_protocol_fails_fast_with_a_clear_error() {
    if kcat().is_none() {
        return;
    }
    let broker = Broker::start().expect("broker starts");
    let bootstrap = broker.bootstrap();
    let started = std::time::Instant::now();
    let (ok, _out, err) = run(
        &[
            "-L",
            "-b",
            &bootstrap,
            "-m",
            "5",
            "-X",
            "security.protocol=SASL_PLAINTEXT",
            "-X",
            "sasl.mechanisms=PLAIN",
            "-X",
            "sasl.username=u",
            "-X",
            "sasl.password=p",
        ],
        None,
    );
    assert!(
        !ok,
        "a SASL client must not get metadata from a plaintext listener"
    );
    assert!(
        err.contains("SASL"),
        "kcat should report the SASL failure: {err}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(30));

    let (ok, _out, tls_err) = run(
        &[
            "-L",
            "-b",
            &bootstrap,
            "-m",
            "3",
            "-X",
            "security.protocol=SSL",
        ],
        None,
    );
    assert!(
        !ok,
        "a TLS client must not get metadata from a plaintext listener"
    );
    assert!(
        tls_err.contains("SSL"),
        "kcat should report the TLS failure: {tls_err}"
    );

    let log = broker.log_contents();
    assert!(
        log.contains("client started SASL on listener PLAINTEXT"),
        "{log}"
    );
    assert!(
        log.contains("TLS handshake"),
        "kcat said: {tls_err}\nbroker log:\n{log}"
    );
}
