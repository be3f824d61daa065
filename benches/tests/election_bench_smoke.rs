//! The partition-election harness runs end to end on a tiny N against Kraftwerk (three controllers and three
//! brokers as processes, every scenario once, then the metadata-load scenario with phantom brokers) and
//! prints every row; the load scenario also runs against Apache Kafka, whose controller must accept the
//! phantom brokers (BrokerRegistration, BrokerHeartbeat) as ordinary unfenced brokers. Nothing here checks a
//! speed.

use std::process::Command;

#[test]
fn election_bench_runs_end_to_end_with_20_partitions() {
    let bin = kraftwerk_tests::binary::kraftwerk_binary()
        .expect("kraftwerk binary (cargo build -p kraftwerk-broker --bins)");
    let out_dir = tempfile::tempdir().expect("temp dir");
    let out = out_dir.path().join("smoke");
    let output = Command::new(env!("CARGO_BIN_EXE_kraftwerk-election-bench"))
        .arg("--bin")
        .arg(&bin)
        .args([
            "--systems",
            "kraftwerk",
            "--partitions",
            "20",
            "--runs",
            "1",
            "--per-topic",
            "10",
            "--load-partitions",
            "30",
            "--no-settle",
        ])
        .args(["--wait-s", "180"])
        .arg("--out")
        .arg(&out)
        .output()
        .expect("running kraftwerk-election-bench");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the harness failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    for row in [
        "topic creation: partitions/s",
        "topic creation: every CreateTopics acknowledged",
        "topic creation: every partition led on every broker",
        "one record written to every partition",
        "controlled shutdown: leaderships moved |",
        "controlled shutdown: leaderships moved per second",
        "controlled shutdown: SIGTERM → leads nothing (every survivor)",
        "controlled shutdown: SIGTERM → process exited",
        "kill -9 → fencing seen in Metadata",
        "kill -9: fencing → new leaders on every survivor",
        "kill -9 → new leaders on every survivor",
        "controller kill -9 → a CreateTopics commits",
        "metadata load: broker restart after SIGTERM",
        "metadata load: broker restart after kill -9",
        "metadata load: controller restart",
    ] {
        // | label | unit | kraftwerk figure | kafka (n/a here) | advantage |; 0 is a figure here (a fencing and
        // the new leaders can arrive in one metadata change).
        assert_row(&stdout, row, 3, |x| x >= 0.0);
    }
    assert_load_rows(&stdout, 3);
    let md = std::fs::read_to_string(out.with_extension("md")).expect("the Markdown report");
    assert!(md.contains("### N = 20 partitions"), "{md}");
    assert!(
        md.contains("### Metadata load of an image of N = 30 partitions"),
        "{md}"
    );
    let svg = std::fs::read_to_string(out.with_extension("svg")).expect("the SVG plot");
    assert!(
        svg.starts_with("<svg") && svg.contains("<rect"),
        "not an SVG with bars"
    );
}

/// Every row of the load table has a figure in column `col` (3: Kraftwerk, 4: Kafka).
fn assert_load_rows(stdout: &str, col: usize) {
    for row in [
        "creation: every CreateTopics acknowledged (committed by the controller)",
        "creation: the real broker's Metadata shows every partition with a leader",
        "broker SIGTERM → process exited",
        "metadata load: broker restart → lists itself",
        "metadata load: broker restart → Metadata shows all N partitions with leaders",
        "metadata load: controller restart after kill -9 → started and caught up",
        "broker RSS after creation",
        "broker RSS after its restart",
        "largest controller RSS after creation",
        "restarted controller RSS once caught up",
        "metadata log segments + snapshots",
    ] {
        assert_row(stdout, row, col, |x| x > 0.0);
    }
}

/// The table row labelled `row` has a number that `ok` accepts in column `col`.
fn assert_row(stdout: &str, row: &str, col: usize, ok: impl Fn(f64) -> bool) {
    let line = stdout
        .lines()
        .find(|l| l.contains(row))
        .unwrap_or_else(|| panic!("no row {row:?} in:\n{stdout}"));
    let figure = line.split('|').nth(col).map(str::trim).unwrap_or_default();
    assert!(
        figure.parse::<f64>().is_ok_and(ok),
        "row {row:?} has no figure in column {col}: {line}"
    );
}

/// Apache Kafka's controllers accept the harness's phantom brokers (they must be unfenced before any topic
/// is created, and a real Kafka broker must then show every partition led by one of them).
#[test]
fn load_scenario_runs_against_apache_kafka_with_phantom_brokers() {
    let bin = kraftwerk_tests::binary::kraftwerk_binary()
        .expect("kraftwerk binary (cargo build -p kraftwerk-broker --bins)");
    let output = Command::new(env!("CARGO_BIN_EXE_kraftwerk-election-bench"))
        .arg("--bin")
        .arg(&bin)
        .args([
            "--systems",
            "kafka",
            "--no-elections",
            "--load-partitions",
            "20",
            "--per-topic",
            "10",
            "--no-settle",
            "--wait-s",
            "180",
        ])
        .output()
        .expect("running kraftwerk-election-bench");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the harness failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(
        stderr.contains("phantom brokers [101, 102, 103] unfenced"),
        "{stderr}"
    );
    assert_load_rows(&stdout, 4);
}
