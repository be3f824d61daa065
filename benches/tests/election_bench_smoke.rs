//! The partition-election harness runs end to end on a tiny N against Kraftwerk (three controllers and three
//! brokers as processes, every scenario once) and prints every row. Nothing here checks a speed.

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
        let line = stdout
            .lines()
            .find(|l| l.contains(row))
            .unwrap_or_else(|| panic!("no row {row:?} in:\n{stdout}"));
        // | label | unit | kraftwerk figure | kafka (n/a here) | advantage |
        let kraftwerk = line.split('|').nth(3).map(str::trim).unwrap_or_default();
        assert!(
            kraftwerk.parse::<f64>().is_ok(),
            "row {row:?} has no Kraftwerk figure: {line}"
        );
    }
    let md = std::fs::read_to_string(out.with_extension("md")).expect("the Markdown report");
    assert!(md.contains("### N = 20 partitions"), "{md}");
    let svg = std::fs::read_to_string(out.with_extension("svg")).expect("the SVG plot");
    assert!(
        svg.starts_with("<svg") && svg.contains("<rect"),
        "not an SVG with bars"
    );
}
