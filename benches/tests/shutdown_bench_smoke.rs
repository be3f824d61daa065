//! kraftwerk-shutdown-bench runs both ways end to end on a few logs, prints a RESULT line per run with the
//! logs reopened intact (it fails otherwise), and leaves nothing behind.

use std::process::Command;

#[test]
fn both_ways_close_and_reopen_the_logs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = Command::new(env!("CARGO_BIN_EXE_kraftwerk-shutdown-bench"))
        .args(["--partitions", "20", "--records", "3", "--runs", "1"])
        .args(["--settle-ms", "0", "--dir"])
        .arg(dir.path())
        .output()
        .expect("run kraftwerk-shutdown-bench");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let out = String::from_utf8(output.stdout).expect("utf-8");
    let results: Vec<&str> = out.lines().filter(|l| l.starts_with("RESULT ")).collect();
    assert_eq!(results.len(), 2, "{out}");
    assert!(results[0].contains("way=fsync_per_log"), "{out}");
    assert!(results[1].contains("way=one_syncfs"), "{out}");
    assert!(out.contains("| one syncfs |"), "{out}");
    assert_eq!(std::fs::read_dir(dir.path()).expect("read dir").count(), 0);
}
