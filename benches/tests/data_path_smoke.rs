//! scripts/bench-data-path.sh runs end to end on a tiny N against Kraftwerk, every workload once (one node,
//! 4 and 8 partitions in one topic and across topics of 2 partitions, three nodes with RF=3 acks=all, kill -9
//! and restart of a node holding 20 partitions, and produce latency at half the maximum rate with acks=1 and
//! acks=all), with the debug
//! builds cargo test made, and its report has a figure in every row. Nothing here checks a speed: the figures
//! of debug builds on a tiny N mean nothing. Apache Kafka's ProducerPerformance and ConsumerPerformance run
//! against Kraftwerk here, so the test needs java and the Kafka jars (fetched with mvn when missing, as
//! scripts/test-jvm-go.sh does).

use std::path::Path;
use std::process::Command;

#[test]
fn data_path_harness_runs_every_workload_on_a_tiny_n() {
    let bin = kraftwerk_tests::binary::kraftwerk_binary()
        .expect("kraftwerk binary (cargo build -p kraftwerk-broker --bins)");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root");
    let out_dir = tempfile::tempdir().expect("temp dir");
    let out = out_dir.path().join("smoke.md");
    let output = Command::new("bash")
        .arg(root.join("scripts/bench-data-path.sh"))
        .env("BENCH_KRAFTWERK_BIN", &bin)
        .env("BENCH_LOADGEN_BIN", env!("CARGO_BIN_EXE_kraftwerk-loadgen"))
        .env("BENCH_OUT", &out)
        .env("BROKERS", "kraftwerk")
        .env("WORKLOADS", "produce consume many e2e rf3 restart latency")
        .env("REPEATS", "1")
        .env("MESSAGES", "2000")
        .env("WARMUP_MESSAGES", "0")
        .env("MANY_PARTITIONS", "4 8")
        .env("MANY_TOPIC_PARTITIONS", "2")
        .env("MANY_MESSAGES", "2000")
        .env("E2E_RATES", "200")
        .env("E2E_SECONDS", "2")
        .env("RF3_MESSAGES", "2000")
        .env("RESTART_PARTITIONS", "20")
        .env("RESTART_BYTES", "2000000")
        .env("RESTART_SIZE", "1024")
        .env("LATENCY_SECONDS", "2")
        .env("LATENCY_WARMUP_SECONDS", "1")
        .env("CASE_TIMEOUT", "240")
        .env("PROFILE", "0")
        .output()
        .expect("running scripts/bench-data-path.sh");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the harness failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(!stderr.contains("FAILED"), "a client run failed:\n{stderr}");
    let report = std::fs::read_to_string(&out).expect("the Markdown report");
    // The latency rows are named by the rate the run chose (half its own maximum here).
    let latency_rows: Vec<String> = ["acks=1", "acks=all"]
        .iter()
        .flat_map(|acks| {
            ["ProducerPerformance", "loadgen"]
                .iter()
                .flat_map(move |client| {
                    [
                        "p50 ms",
                        "p99 ms",
                        "p99.9 ms",
                        "max ms",
                        "records/s reached",
                    ]
                    .iter()
                    .map(move |metric| format!(", {acks}, {client} | {metric} |"))
                })
        })
        .collect();
    let mut rows: Vec<(String, String)> = latency_rows
        .iter()
        .map(|suffix| {
            let line = report
                .lines()
                .find(|l| l.starts_with("| latency: ") && l.contains(suffix.as_str()))
                .unwrap_or_else(|| panic!("no latency row ending {suffix:?} in:\n{report}"));
            let mut cells = line.split('|').map(str::trim).skip(1);
            let workload = cells.next().unwrap_or_default().to_string();
            let metric = cells.next().unwrap_or_default().to_string();
            (workload, metric)
        })
        .collect();
    rows.push((
        "latency: maximum, ProducerPerformance acks=1 linger.ms=5".into(),
        "records/s".into(),
    ));
    rows.extend(many_rows());
    for (workload, metric) in [
        ("produce: ProducerPerformance", "MB/s"),
        ("produce: loadgen", "MiB/s"),
        ("consume: loadgen", "MiB/s"),
        ("consume: ConsumerPerformance", "fetch MB/s"),
        ("consume: kcat, librdkafka defaults", "MiB/s"),
        ("e2e: 200 records/s, linger.ms=0", "p999 ms"),
        ("rf3: produce, ProducerPerformance", "MB/s"),
        ("rf3: produce, ProducerPerformance", "broker CPU s/GB"),
        ("rf3: produce, ProducerPerformance", "client CPU s/GB"),
        ("produce: loadgen", "client CPU s/GB"),
        ("consume: ConsumerPerformance", "client CPU s/GB"),
        ("rf3: produce, loadgen", "p99 ms"),
        ("rf3: consume, loadgen", "MiB/s"),
        ("rf3: consume, ConsumerPerformance", "fetch MB/s"),
        ("rf3: e2e, 200 records/s, linger.ms=0", "p50 ms"),
        ("rf3: e2e, 200 records/s, linger.ms=0", "p999 ms"),
        ("restart: 20 partitions, kill -9", "GB on disk"),
        ("restart: 20 partitions, kill -9", "start → all served, s"),
    ]
    .map(|(w, m)| (w.to_string(), m.to_string()))
    .into_iter()
    .chain(rows)
    {
        let row = format!("| {workload} | {metric} |");
        let line = report
            .lines()
            .find(|l| l.starts_with(&row))
            .unwrap_or_else(|| panic!("no row {row:?} in:\n{report}"));
        // | workload | metric | kraftwerk "median (min–max)" | kafka | ratio |
        let kraftwerk = line.split('|').nth(3).map(str::trim).unwrap_or_default();
        let median = kraftwerk.split(' ').next().unwrap_or_default();
        let figure = median.parse::<f64>();
        assert!(
            figure.is_ok(),
            "row {row:?} has no Kraftwerk figure: {line}"
        );
        // A client run takes some CPU: a nil figure would mean the client's time was not measured at all.
        if metric == "client CPU s/GB" {
            assert!(
                figure.is_ok_and(|v| v > 0.0),
                "row {row:?} measured no client CPU: {line}"
            );
        }
    }
}

/// Every row of the many workload at MANY_PARTITIONS="4 8", MANY_TOPIC_PARTITIONS=2: each N in one topic
/// (ProducerPerformance and kcat -C too) and in N / 2 topics (kcat -G, no ProducerPerformance).
fn many_rows() -> Vec<(String, String)> {
    let mut rows = Vec::new();
    for n in [4, 8] {
        for layout in [
            format!("{n} partitions in 1 topic"),
            format!("{n} partitions in {} topics of 2", n / 2),
        ] {
            let one_topic = layout.ends_with("1 topic");
            let kcat = if one_topic {
                "kcat consume"
            } else {
                "kcat -G consume (group join included)"
            };
            let mut clients = vec![
                ("topic creation", "s until every partition has a leader"),
                ("topic creation", "s until every partition took a write"),
                ("loadgen produce", "MiB/s"),
                ("loadgen produce", "p99 ms"),
                ("loadgen produce", "broker CPU s/GB"),
                ("loadgen consume", "MiB/s"),
                ("loadgen consume", "broker CPU s/GB"),
                ("ConsumerPerformance", "fetch MB/s"),
                ("ConsumerPerformance", "broker CPU s/GB"),
                (kcat, "MiB/s"),
                (kcat, "broker CPU s/GB"),
            ];
            if one_topic {
                clients.extend([
                    ("ProducerPerformance", "MB/s"),
                    ("ProducerPerformance", "p99 ms"),
                    ("ProducerPerformance", "broker CPU s/GB"),
                ]);
            }
            rows.extend(
                clients.into_iter().map(|(client, metric)| {
                    (format!("many: {layout}, {client}"), metric.to_string())
                }),
            );
        }
    }
    rows
}
