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
    let mut child = Command::new("kcat")
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
