# Shared by scripts/bench.sh and scripts/bench-vs-kafka.sh (sourced; expects $ROOT): the readiness probe,
# release binaries, and the port and memory helpers, so both benchmarks measure Kraftwerk the same way.

command -v kcat >/dev/null 2>&1 || {
    echo "installing kcat (readiness probe)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q kcat >/dev/null
}

# BENCH_KRAFTWERK_BIN and BENCH_LOADGEN_BIN (both) name binaries to use instead of building release ones: the
# harness smoke tests run the debug builds cargo test made (their figures mean nothing, the rows must exist).
if [[ -n ${BENCH_KRAFTWERK_BIN:-} && -n ${BENCH_LOADGEN_BIN:-} ]]; then
    BIN=$BENCH_KRAFTWERK_BIN
    LOADGEN=$BENCH_LOADGEN_BIN
else
    echo "==> cargo build --release"
    cargo build --release -p kraftwerk-broker --bin kraftwerk -p kraftwerk-benches --bin kraftwerk-loadgen
    BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/kraftwerk
    LOADGEN=${CARGO_TARGET_DIR:-$ROOT/target}/release/kraftwerk-loadgen
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
hwm_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
