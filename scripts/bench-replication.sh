#!/usr/bin/env bash
# The cost of replication on this machine: 1 KiB acks=all produce with replication factor 3 on three nodes
# (combined broker+controller processes, min.insync.replicas=2) against replication factor 1 on one node,
# each at full speed and then at half its own full-speed rate for the latency figures. Release builds,
# loopback, temp dirs; results are printed and written to ${BENCH_OUT:-target/bench/replication-<time>.md}.
#
# Environment: MESSAGES (default 200000), PARTITIONS (default 3), REPEAT (default 1: runs per setup, the
# median is reported).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
MESSAGES=${MESSAGES:-200000}
PARTITIONS=${PARTITIONS:-3}
REPEAT=${REPEAT:-1}
OUT=${BENCH_OUT:-$ROOT/target/bench/replication-$(date +%Y%m%d-%H%M%S).md}
mkdir -p "$(dirname "$OUT")"

# shellcheck source=lib/bench-common.sh
source "$ROOT/scripts/lib/bench-common.sh"

WORK=$(mktemp -d /tmp/kraftwerk-bench-repl.XXXXXX)
# The nodes are started by the side-by-side harness's library (scripts/lib/bench-brokers.sh, Kraftwerk only
# here): the same combined broker+controller processes scripts/bench-data-path.sh measures against Kafka.
# shellcheck source=lib/bench-brokers.sh
source "$ROOT/scripts/lib/bench-brokers.sh"
cleanup() { stop_broker; rm -rf "$WORK"; }
trap cleanup EXIT

field() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<"$1"; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

ROWS=()
# measure NAME NODES RF MIN_ISR
measure() {
    local name=$1 n=$2 rf=$3 min_isr=$4 run line msgs_s=() rate
    for ((run = 1; run <= REPEAT; run++)); do
        start_cluster kraftwerk "$n"
        echo "==> $name run $run: $MESSAGES x 1 KiB acks=all, RF=$rf on $n node(s)"
        line=$("$LOADGEN" --bootstrap "$BOOT" --topic "t-max" --messages "$MESSAGES" --size 1024 --acks all \
            --partitions "$PARTITIONS" --replication-factor "$rf" --min-insync-replicas "$min_isr" --no-consume \
            | tee /dev/stderr | grep '^RESULT')
        msgs_s+=("$(field "$line" produce_msgs_s)")
        ROWS+=("$name max $line")
        rate=$(($(field "$line" produce_msgs_s | cut -d. -f1) / 2))
        echo "==> $name run $run: latency at half rate, $rate msgs/s"
        line=$("$LOADGEN" --bootstrap "$BOOT" --topic "t-half" --messages $((rate * 10)) --size 1024 --acks all \
            --rate "$rate" --linger-ms 0 --partitions "$PARTITIONS" --replication-factor "$rf" \
            --min-insync-replicas "$min_isr" --no-consume | tee /dev/stderr | grep '^RESULT')
        ROWS+=("$name half $line")
        stop_broker
    done
    MEDIAN[$name]=$(printf '%s\n' "${msgs_s[@]}" | median)
}
declare -A MEDIAN
measure rf1 1 1 1
measure rf3 3 3 2

{
    echo "# Replication cost: 1 KiB acks=all, RF=3 on three nodes vs RF=1 on one ($(date -u +%Y-%m-%dT%H:%M:%SZ))"
    echo
    echo "commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown), $(nproc) cores, partitions=$PARTITIONS," \
        "$MESSAGES messages per full-speed run, $REPEAT run(s) per setup; all nodes and the load generator share the machine"
    echo
    echo "| setup | load | rate | produce MiB/s | produce msgs/s | p50 ms | p99 ms | errors |"
    echo "|---|---|---|---|---|---|---|---|"
    for r in "${ROWS[@]}"; do
        read -r name load line <<<"$r"
        echo "| $name | $load | $(field "$line" rate) | $(field "$line" produce_mib_s) |" \
            "$(field "$line" produce_msgs_s) | $(field "$line" p50_ms) | $(field "$line" p99_ms) | $(field "$line" errors) |"
    done
    echo
    echo "RF=3/RF=1 full-speed throughput (median msgs/s): ${MEDIAN[rf3]} / ${MEDIAN[rf1]} =" \
        "$(awk -v a="${MEDIAN[rf3]}" -v b="${MEDIAN[rf1]}" 'BEGIN {printf "%.2f", a / b}')"
} | tee "$OUT"
echo "written to $OUT"
