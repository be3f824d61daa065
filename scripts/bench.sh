#!/usr/bin/env bash
# Load benchmark: builds release binaries, starts kraftwerk on a temp dir and loopback ports, runs
# kraftwerk-loadgen at 1 KiB and 100 B with acks=1 and acks=all (plus a fixed-rate latency run), and
# records start-to-serving time, idle RSS and RSS under load. Results are printed and written to
# ${BENCH_OUT:-target/bench/bench-<time>.md}.
#
# Environment: MESSAGES_1K (default 200000), MESSAGES_100B (default 1000000), RATE (default 10000
# msgs/s for the latency run), PARTITIONS (default 1).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
MESSAGES_1K=${MESSAGES_1K:-200000}
MESSAGES_100B=${MESSAGES_100B:-1000000}
RATE=${RATE:-10000}
PARTITIONS=${PARTITIONS:-1}
OUT=${BENCH_OUT:-$ROOT/target/bench/bench-$(date +%Y%m%d-%H%M%S).md}
mkdir -p "$(dirname "$OUT")"

# shellcheck source=lib/bench-common.sh
source "$ROOT/scripts/lib/bench-common.sh"

DIR=$(mktemp -d /tmp/kraftwerk-bench.XXXXXX)
PORT=$(free_port)
CPORT=$(free_port)
while [[ $CPORT == "$PORT" ]]; do CPORT=$(free_port); done
BOOT=127.0.0.1:$PORT
cat >"$DIR/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CPORT
controller.listener.names=CONTROLLER
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CPORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
log.dirs=$DIR/data
num.partitions=$PARTITIONS
default.replication.factor=1
offsets.topic.replication.factor=1
auto.create.topics.enable=true
PROPS
"$BIN" format --config "$DIR/server.properties" --cluster-id "$("$BIN" random-uuid)" >/dev/null

PID=""
SAMPLER=""
cleanup() {
    [[ -n $SAMPLER ]] && kill "$SAMPLER" 2>/dev/null || true
    [[ -n $PID ]] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
    rm -rf "$DIR"
}
trap cleanup EXIT

T0=$(date +%s%N)
RUST_LOG=${RUST_LOG:-warn} "$BIN" --config "$DIR/server.properties" >"$DIR/kraftwerk.log" 2>&1 &
PID=$!
until (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; do
    kill -0 "$PID" 2>/dev/null || { cat "$DIR/kraftwerk.log"; echo "kraftwerk exited" >&2; exit 1; }
    (( ($(date +%s%N) - T0) / 1000000 < 60000 )) || { echo "not serving after 60 s" >&2; exit 1; }
    sleep 0.005
done
START_MS=$(( ($(date +%s%N) - T0) / 1000000 ))
sleep 2
IDLE_RSS=$(rss_kb "$PID")
echo "start-to-serving ${START_MS} ms, idle RSS ${IDLE_RSS} KiB"

# Peak VmRSS sampled every 200 ms while the load runs.
PEAK_FILE=$DIR/peak_rss
echo 0 >"$PEAK_FILE"
( peak=0; while kill -0 "$PID" 2>/dev/null; do
      r=$(rss_kb "$PID"); (( r > peak )) && { peak=$r; echo "$peak" >"$PEAK_FILE"; }
      sleep 0.2
  done ) &
SAMPLER=$!

RESULTS=()
run() { # size messages acks [rate [linger_ms]]
    local size=$1 messages=$2 acks=$3 rate=${4:-0} linger=${5:-5}
    local topic="bench-${size}b-acks${acks}-rate${rate}"
    echo "==> $messages x $size B, acks=$acks, rate=${rate:-max}"
    local line
    line=$("$LOADGEN" --bootstrap "$BOOT" --topic "$topic" --messages "$messages" --size "$size" \
        --acks "$acks" --rate "$rate" --linger-ms "$linger" --partitions "$PARTITIONS" | tee /dev/stderr | grep '^RESULT')
    RESULTS+=("$line")
}
run 1024 "$MESSAGES_1K" 1
run 1024 "$MESSAGES_1K" all
run 100 "$MESSAGES_100B" 1
run 100 "$MESSAGES_100B" all
run 1024 $((RATE * 10)) all "$RATE"
# Latency at half the 100 B throughput target (250,000 records/s) and at half the 1 KiB one (125,000/s),
# with linger.ms=0 so the figures are the broker's round trip.
run 100 1000000 1 250000 0
run 1024 500000 1 125000 0

LOAD_RSS=$(cat "$PEAK_FILE")
HWM=$(hwm_kb "$PID")
field() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<"$1"; }
{
    echo "# kraftwerk load benchmark $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo
    echo "commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown), $(nproc) cores, partitions=$PARTITIONS"
    echo
    echo "- start-to-serving: ${START_MS} ms"
    echo "- idle RSS: $((IDLE_RSS / 1024)) MiB"
    echo "- RSS under load (peak sampled): $((LOAD_RSS / 1024)) MiB; VmHWM: $((HWM / 1024)) MiB"
    echo
    echo "| size | acks | rate | messages | produce MiB/s | produce msgs/s | p50 ms | p99 ms | consume MiB/s | errors |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    for r in "${RESULTS[@]}"; do
        echo "| $(field "$r" size) | $(field "$r" acks) | $(field "$r" rate) | $(field "$r" messages) |" \
             "$(field "$r" produce_mib_s) | $(field "$r" produce_msgs_s) | $(field "$r" p50_ms) |" \
             "$(field "$r" p99_ms) | $(field "$r" consume_mib_s) | $(field "$r" errors) |"
    done
} | tee "$OUT"
echo "written to $OUT"
