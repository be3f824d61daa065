//! kraftwerk-bare-io runs both modes end to end on a few MiB and prints a RESULT line with positive figures.

use std::process::Command;

fn run(args: &[&str]) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = Command::new(env!("CARGO_BIN_EXE_kraftwerk-bare-io"))
        .args(args)
        .args(["--bytes", "8388608", "--runs", "1", "--dir"])
        .arg(dir.path())
        .output()
        .expect("run kraftwerk-bare-io");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // The data file is removed after the run.
    assert_eq!(std::fs::read_dir(dir.path()).expect("read dir").count(), 0);
    String::from_utf8(output.stdout).expect("utf-8")
}

fn field(line: &str, key: &str) -> f64 {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {key} in {line}"))
        .parse()
        .expect("a number")
}

#[test]
fn both_modes_move_the_bytes_and_report_cpu_per_gb() {
    for (mode, extra) in [
        ("consume", &[][..]),
        ("consume", &["--client-rcvbuf", "65536"][..]),
        ("produce", &[][..]),
        ("produce", &["--no-reserve"][..]),
    ] {
        let mut args = vec![mode];
        args.extend_from_slice(extra);
        let out = run(&args);
        let line = out
            .lines()
            .find(|l| l.starts_with("RESULT "))
            .unwrap_or_else(|| panic!("no RESULT line: {out}"));
        assert!(line.contains(&format!("mode={mode}")), "{line}");
        assert_eq!(field(line, "bytes"), 8_388_608.0, "{line}");
        assert!(field(line, "mib_s") > 0.0, "{line}");
        assert!(field(line, "server_cpu_s_per_gb") >= 0.0, "{line}");
    }
}
