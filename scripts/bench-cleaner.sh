#!/usr/bin/env bash
# Produce while the log cleaner works, against the same load with the cleaner off: one release kraftwerk per
# run (log.cleaner.enable=true or false, the only difference), a compacted topic with 8 MiB segments and a low
# dirty ratio, a keyed prefill so the cleaner has dirty segments from the start, then the measured phases with
# the rdkafka load generator: full-speed produce (MiB/s) and a fixed-rate produce (p50/p99) at RATE. Keys are
# reused (KEYS live keys), so every sealed segment is cleanable. The cleaner's throughput comes from its
# "log cleaner pass" log lines (bytes of dirty segments and of all segments rewritten, over the time of each
# pass from planning to the swap's last fsync), and the machine's load average is sampled every 5 s during
# the run. Results are printed and written to ${BENCH_OUT:-target/bench/cleaner-<time>.md}.
#
# Environment: MESSAGES (default 300000 per phase), KEYS (default 10000), RATE (default 40000 msgs/s),
# REPEAT (default 3 runs per mode; medians with min-max are reported).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
MESSAGES=${MESSAGES:-300000}
KEYS=${KEYS:-10000}
RATE=${RATE:-40000}
REPEAT=${REPEAT:-3}
OUT=${BENCH_OUT:-$ROOT/target/bench/cleaner-$(date +%Y%m%d-%H%M%S).md}
mkdir -p "$(dirname "$OUT")"

# shellcheck source=lib/bench-common.sh
source "$ROOT/scripts/lib/bench-common.sh"

DIR=$(mktemp -d /tmp/kraftwerk-bench-cleaner.XXXXXX)
PID=""
stop_broker() {
    [[ -n $PID ]] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
    PID=""
}
LOADPID=""
cleanup() {
    stop_broker
    [[ -n $LOADPID ]] && kill "$LOADPID" 2>/dev/null || true
    rm -rf "$DIR"
}
trap cleanup EXIT
# The 1-minute load average every 5 s while the benchmark runs (the machine may be shared).
(while :; do cut -d' ' -f1 /proc/loadavg; sleep 5; done >"$DIR/loadavg") &
LOADPID=$!

start_broker() { # $1: log.cleaner.enable
    stop_broker
    rm -rf "$DIR/data"
    PORT=$(free_port)
    CPORT=$(free_port)
    cat >"$DIR/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CPORT
controller.listener.names=CONTROLLER
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CPORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$DIR/data
offsets.topic.replication.factor=1
log.cleaner.enable=$1
log.cleaner.backoff.ms=500
PROPS
    "$BIN" format --config "$DIR/server.properties" --cluster-id "$("$BIN" random-uuid)" >/dev/null
    NO_COLOR=1 RUST_LOG=${RUST_LOG:-warn,kraftwerk_storage::cleaner=info} "$BIN" --config "$DIR/server.properties" >"$DIR/kraftwerk.log" 2>&1 &
    PID=$!
    until (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; do
        kill -0 "$PID" 2>/dev/null || { cat "$DIR/kraftwerk.log"; exit 1; }
        sleep 0.05
    done
}

field() { sed -n "s/.*RESULT.* $1=\([0-9.]*\).*/\1/p"; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
spread() { sort -n | awk 'NR == 1 {lo = $1} {hi = $1} END {printf "%s-%s", lo, hi}'; }
# The cleaner passes of the current broker: "<passes> <dirty MB/s> <processed MB/s> <longest lock hold ms>"
# (throughputs are sums over sums; a hold is the longer of a pass's two swap steps under the partition lock).
cleaner_throughput() {
    grep 'log cleaner pass' "$DIR/kraftwerk.log" 2>/dev/null |
        sed -n 's/.* bytes_read=\([0-9]*\) dirty_bytes=\([0-9]*\) .* secs=\([0-9.e-]*\) stage_lock_us=\([0-9]*\) install_lock_us=\([0-9]*\).*/\1 \2 \3 \4 \5/p' |
        awk '{r += $1; d += $2; s += $3; n++; h = ($4 > $5) ? $4 : $5; if (h > m) m = h}
            END {if (s > 0) printf "%d %.1f %.1f %.2f", n, d / s / 1e6, r / s / 1e6, m / 1000; else print "0 0 0 0"}'
}
cleaned_offset() { # the cleaner's checkpointed offset for partition 0 of the topic (0 when none)
    awk -v t="$1 0" '$1 " " $2 == t {print $3}' "$DIR"/data/cleaner-offset-checkpoint 2>/dev/null | tail -1 | grep . || echo 0
}

declare -A TPUT P50 P99 CLEANED PASSES DIRTY PROCESSED HELD
for mode in off on; do
    enable=false
    [[ $mode == on ]] && enable=true
    t=() a=() b=() c=() n=() d=() r=() h=()
    for ((run = 1; run <= REPEAT; run++)); do
        start_broker "$enable"
        common=(--bootstrap "127.0.0.1:$PORT" --topic compacted --keys "$KEYS" --size 1024 --acks all --no-consume
            --topic-config cleanup.policy=compact --topic-config segment.bytes=8388608
            --topic-config min.cleanable.dirty.ratio=0.1 --topic-config min.compaction.lag.ms=0)
        echo "==> cleaner $mode, run $run: prefill $MESSAGES keyed records"
        "$LOADGEN" "${common[@]}" --messages "$MESSAGES" | grep RESULT >/dev/null
        echo "==> cleaner $mode, run $run: produce $MESSAGES at full speed"
        line=$("$LOADGEN" "${common[@]}" --messages "$MESSAGES" | grep RESULT)
        echo "$line"
        t+=("$(field produce_mib_s <<<"$line")")
        echo "==> cleaner $mode, run $run: produce $MESSAGES at $RATE msgs/s (linger.ms=0)"
        line=$("$LOADGEN" "${common[@]}" --messages "$MESSAGES" --rate "$RATE" --linger-ms 0 | grep RESULT)
        echo "$line"
        a+=("$(field p50_ms <<<"$line")")
        b+=("$(field p99_ms <<<"$line")")
        c+=("$(cleaned_offset compacted)")
        read -r passes dirty processed held <<<"$(cleaner_throughput)"
        echo "cleaner: $passes passes, $dirty MB/s of dirty log, $processed MB/s processed, longest lock hold $held ms"
        n+=("$passes") d+=("$dirty") r+=("$processed") h+=("$held")
    done
    TPUT[$mode]="$(printf '%s\n' "${t[@]}" | median) ($(printf '%s\n' "${t[@]}" | spread))"
    P50[$mode]="$(printf '%s\n' "${a[@]}" | median)"
    P99[$mode]="$(printf '%s\n' "${b[@]}" | median) ($(printf '%s\n' "${b[@]}" | spread))"
    CLEANED[$mode]="$(printf '%s\n' "${c[@]}" | median)"
    PASSES[$mode]="$(printf '%s\n' "${n[@]}" | median)"
    DIRTY[$mode]="$(printf '%s\n' "${d[@]}" | median) ($(printf '%s\n' "${d[@]}" | spread))"
    PROCESSED[$mode]="$(printf '%s\n' "${r[@]}" | median)"
    HELD[$mode]="$(printf '%s\n' "${h[@]}" | median)"
done
stop_broker

{
    echo "# Produce with the log cleaner on and off ($(date -u +%Y-%m-%dT%H:%M:%SZ))"
    echo
    echo "One release kraftwerk per run, 1 KiB records, acks=all, $KEYS keys reused, compacted topic with 8 MiB"
    echo "segments and min.cleanable.dirty.ratio=0.1; $MESSAGES records prefilled, then $MESSAGES at full speed and"
    echo "$MESSAGES at $RATE msgs/s. Median of $REPEAT runs (min-max). Build: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)."
    echo "1-minute load average during the run (every 5 s): $(sort -n "$DIR/loadavg" | awk '{a[NR] = $1; s += $1} END {printf "min %s, mean %.2f, max %s", a[1], s / NR, a[NR]}') on $(nproc) cores."
    echo "Cleaner throughput: dirty (and all) segment bytes rewritten per second of cleaning, summed over the passes of a run."
    echo
    echo "| cleaner | produce MiB/s | p50 ms at $RATE/s | p99 ms at $RATE/s | cleaned up to offset (median) | cleaner passes | cleaner MB/s dirty (processed) | longest partition-lock hold ms |"
    echo "|---|---|---|---|---|---|---|---|"
    for mode in off on; do
        echo "| $mode | ${TPUT[$mode]} | ${P50[$mode]} | ${P99[$mode]} | ${CLEANED[$mode]} | ${PASSES[$mode]} | ${DIRTY[$mode]} (${PROCESSED[$mode]}) | ${HELD[$mode]} |"
    done
} | tee "$OUT"
