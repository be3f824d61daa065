#!/usr/bin/env bash
# Partition-election benchmark: Kraftwerk and Apache Kafka (the 4.4 jars from Maven Central, fetched into
# tests/tools/lib as the JVM suite does) in KRaft mode, three controllers and three brokers each, on this
# machine in the same run with the same session, heartbeat and election timeouts. For every N it measures
# topic creation, a controlled shutdown, kill -9 of a broker, kill -9 of the active controller, and the
# metadata load of a restarted broker and controller; see benches/src/bin/election_bench.rs.
# Prints Markdown tables with Kraftwerk's advantage and writes them with an SVG plot to
# ${BENCH_OUT:-benches/results/<date>-elections}.{md,svg}.
#
# Environment: PARTITIONS (default 1000,10000; 100000 on request), RUNS (default 3; a list gives the runs
# per N, the last repeating: 3,1), SYSTEMS (default
# kraftwerk,kafka), KAFKA_HEAP (default 512m per JVM: six JVMs fit in this machine's memory),
# IMAGE_PARTITIONS (default 0; 1000000 runs the one-controller image test, Kraftwerk only), SESSION_MS
# (default 3000), HEARTBEAT_MS (default 500), ELECTION_MS (default 1000), NOTE (free text for the header,
# e.g. what else was running), WORK_DIR (default /tmp), LOAD_PARTITIONS (default none; e.g. 100000 runs
# the metadata-load scenario for each system: three controllers, one real broker hosting no replica, three
# phantom brokers holding every replica; see benches/src/bin/election_bench/load.rs), LOAD_RUNS (default 1).
# PARTITIONS=none skips the election runs (only the load scenario and the image test). For finding where
# time goes (not for figures): the binary's --creation-only stops each run after topic creation, ELECTION_BENCH_RUST_LOG sets the Kraftwerk
# nodes' RUST_LOG and ELECTION_BENCH_KEEP=1 keeps their directories and logs.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
PARTITIONS=${PARTITIONS:-1000,10000}
RUNS=${RUNS:-3}
SYSTEMS=${SYSTEMS:-kraftwerk,kafka}
KAFKA_HEAP=${KAFKA_HEAP:-512m}
IMAGE_PARTITIONS=${IMAGE_PARTITIONS:-0}
LOAD_PARTITIONS=${LOAD_PARTITIONS:-}
ELECTIONS=()
if [[ $PARTITIONS == none ]]; then
    ELECTIONS=(--no-elections)
    PARTITIONS=1000
fi
LOAD=()
if [[ -n $LOAD_PARTITIONS ]]; then
    LOAD=(--load-partitions "$LOAD_PARTITIONS" --load-runs "${LOAD_RUNS:-1}")
fi
OUT=${BENCH_OUT:-$ROOT/benches/results/$(date -u +%Y-%m-%d)-elections}
mkdir -p "$(dirname "$OUT")"

if [[ $SYSTEMS == *kafka* ]]; then
    command -v java >/dev/null || { echo "java (17+) is needed to run Apache Kafka" >&2; exit 1; }
    command -v mvn >/dev/null || [[ -n $(ls "$ROOT"/tests/tools/lib/kafka_2.13-*.jar 2>/dev/null) ]] ||
        { echo "mvn is needed to fetch Apache Kafka into tests/tools/lib" >&2; exit 1; }
fi

echo "==> cargo build --release"
cargo build --release -p kraftwerk-broker --bin kraftwerk -p kraftwerk-benches --bin kraftwerk-election-bench
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}/release

# Each broker keeps a file open per hosted partition (Kafka too): with RF=3 on three brokers that is N per
# broker, so N must stay under the open-file limit.
NOFILE=$(ulimit -n)
SIZES=()
if [[ ${#ELECTIONS[@]} -eq 0 ]]; then
    IFS=, read -ra SIZES <<<"$PARTITIONS"
fi
for n in "${SIZES[@]+"${SIZES[@]}"}"; do
    if (( n + 2000 > NOFILE )); then
        echo "warning: N=$n needs more than the $NOFILE open files a process may have here (ulimit -n);" \
             "the brokers will fail to open their partitions" >&2
    fi
done

exec "$TARGET/kraftwerk-election-bench" --bin "$TARGET/kraftwerk" --systems "$SYSTEMS" \
    --partitions "$PARTITIONS" --runs "$RUNS" --kafka-heap "$KAFKA_HEAP" \
    --session-timeout-ms "${SESSION_MS:-3000}" --heartbeat-interval-ms "${HEARTBEAT_MS:-500}" \
    --election-timeout-ms "${ELECTION_MS:-1000}" --image-partitions "$IMAGE_PARTITIONS" \
    --work-dir "${WORK_DIR:-/tmp}" --note "${NOTE:-}" --out "$OUT" \
    "${ELECTIONS[@]+"${ELECTIONS[@]}"}" "${LOAD[@]+"${LOAD[@]}"}"
