#!/usr/bin/env bash
# The data path, Kraftwerk and Apache Kafka (the 4.x jars of tests/tools/lib) side by side on this machine in
# the same run, ONE BROKER AT A TIME, with every client the issue names: Kafka's own ProducerPerformance and
# ConsumerPerformance (the Java client), kcat (librdkafka as Debian ships it) and kraftwerk-loadgen (librdkafka
# through the rdkafka crate). For each workload and broker: the median of REPEATS runs with the min–max, and
# the broker's CPU time (user + system from /proc/PID/stat, across the run) per GB of record values moved.
#
# Workloads (1 KiB records, acks=1, combined KRaft node, one broker):
#   produce     ProducerPerformance and the loadgen, each run into a topic of its own (1 partition);
#   consume     one topic of MESSAGES records produced once, then read whole by each client in turn: the
#               loadgen (its consumer re-checks a full prefetch queue every 10 ms), the loadgen with
#               librdkafka's default fetch.queue.backoff.ms (1000 ms), ConsumerPerformance (its fetch MB/s,
#               without the group join), kcat with librdkafka's defaults, and kcat with its prefetch queue
#               not capped (queued.min.messages / queued.max.messages.kbytes above the topic's size);
#   many        MANY_PARTITIONS partitions in one topic: the loadgen producing MANY_MESSAGES, then the loadgen
#               and kcat reading them (0 skips);
#   e2e         end-to-end latency at fixed rates (E2E_RATES, records/s, for E2E_SECONDS each, linger.ms=0):
#               the loadgen's reader records send-to-receive time while its producer writes (p50/p99/p99.9);
#   profile     PROFILE=1: `perf record` of the broker during one loadgen produce and one consume at full
#               speed; the top symbols go into the report (Kafka's JIT-compiled Java shows as addresses).
#
# Why two kcat and loadgen rows: librdkafka stops fetching a partition once its prefetch queue holds 64 MiB or
# 100,000 records and looks again only after fetch.queue.backoff.ms (1000 ms; librdkafka 2.0.2 has no such
# setting and waits for its 1 s timer), during which the application drains the queue and waits. A broker
# that answers faster than the application consumes fills the queue and is paid with ~1 s stalls, so with the
# defaults a faster broker can measure slower (benches/results/2026-12-04-data-path-after.md).
#
# Results are printed and written to ${BENCH_OUT:-target/bench/data-path-<time>.md}. Everything listens on
# loopback; every client run is bounded by CASE_TIMEOUT; the trap stops what it started.
#
# Environment: MESSAGES (default 1000000), REPEATS (3), WARMUP_MESSAGES (200000: an unmeasured produce and
# consume on each broker first, so Kafka's JIT has compiled its hot paths), MANY_PARTITIONS (1000),
# MANY_MESSAGES (300000), E2E_RATES ("5000 20000"), E2E_SECONDS (15), PROFILE (0), PROFILE_SECONDS (8),
# KAFKA_HEAP (1g), CASE_TIMEOUT (600), BROKERS ("kraftwerk kafka"), REPORT_FROM (a results .tsv an earlier run
# left beside its report: write the report again from it, running nothing).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
MESSAGES=${MESSAGES:-1000000}
REPEATS=${REPEATS:-3}
WARMUP_MESSAGES=${WARMUP_MESSAGES:-200000}
MANY_PARTITIONS=${MANY_PARTITIONS:-1000}
MANY_MESSAGES=${MANY_MESSAGES:-300000}
E2E_RATES=${E2E_RATES:-5000 20000}
E2E_SECONDS=${E2E_SECONDS:-15}
PROFILE=${PROFILE:-0}
PROFILE_SECONDS=${PROFILE_SECONDS:-8}
CASE_TIMEOUT=${CASE_TIMEOUT:-600}
BROKERS=${BROKERS:-kraftwerk kafka}
SIZE=1024
OUT=${BENCH_OUT:-$ROOT/target/bench/data-path-$(date +%Y%m%d-%H%M%S).md}
mkdir -p "$(dirname "$OUT")"

command -v java >/dev/null || { echo "java (17+) is needed to run Apache Kafka and its perf tools" >&2; exit 1; }
if [[ $PROFILE == 1 ]] && ! command -v perf >/dev/null; then
    echo "PROFILE=1 needs perf (apt-get install linux-perf)" >&2
    exit 1
fi
# shellcheck source=lib/bench-common.sh
source "$ROOT/scripts/lib/bench-common.sh"
WORK=$(mktemp -d /tmp/kraftwerk-data-path.XXXXXX)
# shellcheck source=lib/bench-brokers.sh
source "$ROOT/scripts/lib/bench-brokers.sh"
JAVA_TOOL=(java -Xms256m -Xmx1g "${JAVA_LOG[@]}" -cp "$KAFKA_CP")
HZ=$(getconf CLK_TCK)

cleanup() {
    stop_broker
    # The raw figures outlive the run, even one that stopped half-way.
    [[ -s $WORK/results.tsv ]] && cp "$WORK/results.tsv" "$OUT.tsv"
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
RESULTS=$WORK/results.tsv   # broker <TAB> workload <TAB> metric <TAB> value, one line per run
: >"$RESULTS"
declare -A LOADS=()         # LOADS[broker]="at start / at end"
# The top symbols of a profile, kept beside the report.
profile_file() { echo "${OUT%.md}-perf-$1-$2.txt"; }
record() { # broker workload metric value
    printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$RESULTS"
}

# Runs a client command with the broker's CPU measured around it. Sets RUN_OUT (its output file), WALL_S and
# CPU_S; a failed or timed-out run is reported and leaves RUN_OK=0.
measured() {
    local c0 t0 c1 t1
    RUN_OUT=$WORK/run.out
    RUN_OK=1
    c0=$(cpu_ticks); t0=$(now_ms)
    timeout "$CASE_TIMEOUT" "$@" >"$RUN_OUT" 2>&1 || RUN_OK=0
    t1=$(now_ms); c1=$(cpu_ticks)
    WALL_S=$(awk -v ms=$((t1 - t0)) 'BEGIN {printf "%.3f", ms / 1000}')
    CPU_S=$(awk -v t=$((c1 - c0)) -v hz="$HZ" 'BEGIN {printf "%.3f", t / hz}')
    if [[ $RUN_OK == 0 ]]; then
        echo "    FAILED: $*" >&2
        tail -n 20 "$RUN_OUT" >&2
    fi
    kill -0 "$PID" 2>/dev/null || { echo "the broker died during: $*" >&2; tail -n 40 "$BROKER_DIR/broker.log" >&2; exit 1; }
}
per_gb() { awk -v s="$1" -v n="$2" -v size="$SIZE" 'BEGIN {printf "%.3f", s / (n * size / 1e9)}'; }
mib_s() { awk -v n="$1" -v size="$SIZE" -v w="$2" 'BEGIN {printf "%.1f", (w > 0) ? n * size / 1048576 / w : 0}'; }
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" "$RUN_OUT" | tail -n 1; }

# The clients, as commands (`measured` runs them under `timeout`); set per broker by run_broker.
LG=()
KCAT_READ=()
# perf record of the broker (cpu-clock: this VM has no hardware counters) for PROFILE_SECONDS while a client
# loop runs at full speed; the top symbols go into PROFILES. The loop stops at its next turn once the stop
# file exists; the client it is running is stopped by its parent's id.
profiled() { # broker label client-function
    local broker=$1 label=$2 data client
    data=$WORK/$broker-$label.perf
    rm -f "$WORK/stop"
    "$3" >/dev/null 2>&1 &
    client=$!
    sleep 1
    perf record -e cpu-clock -F 999 -g -p "$PID" -o "$data" -- sleep "$PROFILE_SECONDS" >/dev/null 2>&1 || true
    touch "$WORK/stop"
    pkill -P "$client" 2>/dev/null || true
    wait "$client" 2>/dev/null || true
    perf report -i "$data" --no-children --sort dso,symbol --stdio 2>/dev/null |
        grep -E '^ +[0-9.]+%' | head -n 15 | sed 's/^ *//' >"$(profile_file "$broker" "$label")" || true
}
profile_produce() {
    local i=0
    while [[ ! -e $WORK/stop ]]; do
        i=$((i + 1))
        "${LG[@]}" --topic "profile-$i" --messages "$MESSAGES" --no-consume
    done
}
profile_consume() {
    while [[ ! -e $WORK/stop ]]; do
        "${LG[@]}" --topic consume --no-produce
    done
}

run_broker() { # kraftwerk|kafka
    local b=$1 rep topic n line
    echo "==> starting $b"
    start_broker "$b"
    LG=("$LOADGEN" --bootstrap "127.0.0.1:$PORT" --size "$SIZE" --acks 1)
    KCAT_READ=(kcat -C -b "127.0.0.1:$PORT" -o beginning -q -f '%S\n')
    LOADS[$b]=$(cut -d' ' -f1 /proc/loadavg)
    if (( WARMUP_MESSAGES > 0 )); then
        echo "==> [$b] warm-up (not measured): $WARMUP_MESSAGES x $SIZE B produced and consumed"
        timeout "$CASE_TIMEOUT" "$LOADGEN" --bootstrap "127.0.0.1:$PORT" --topic warmup --size "$SIZE" \
            --acks 1 --messages "$WARMUP_MESSAGES" >/dev/null 2>&1 || true
        timeout "$CASE_TIMEOUT" "${JAVA_TOOL[@]}" org.apache.kafka.tools.ConsumerPerformance \
            --bootstrap-server "127.0.0.1:$PORT" --topic warmup --messages "$WARMUP_MESSAGES" \
            --timeout 60000 >/dev/null 2>&1 || true
    fi

    for rep in $(seq 1 "$REPEATS"); do
        echo "==> [$b] produce run $rep/$REPEATS"
        measured "${JAVA_TOOL[@]}" org.apache.kafka.tools.ProducerPerformance --topic "pp-$rep" \
            --num-records "$MESSAGES" --record-size "$SIZE" --throughput -1 \
            --producer-props bootstrap.servers="127.0.0.1:$PORT" acks=1 linger.ms=5 batch.size=131072
        if [[ $RUN_OK == 1 ]]; then
            line=$(grep 'records sent' "$RUN_OUT" | tail -n 1)
            record "$b" "produce: ProducerPerformance" "MB/s" "$(sed -n 's/.*(\([0-9.]*\) MB\/sec).*/\1/p' <<<"$line")"
            record "$b" "produce: ProducerPerformance" "p99 ms" "$(sed -n 's/.* \([0-9]*\) ms 99th.*/\1/p' <<<"$line")"
            record "$b" "produce: ProducerPerformance" "broker CPU s/GB" "$(per_gb "$CPU_S" "$MESSAGES")"
        fi
        measured "${LG[@]}" --topic "lg-$rep" --messages "$MESSAGES" --no-consume
        if [[ $RUN_OK == 1 ]]; then
            record "$b" "produce: loadgen" "MiB/s" "$(field produce_mib_s)"
            record "$b" "produce: loadgen" "p99 ms" "$(field p99_ms)"
            record "$b" "produce: loadgen" "broker CPU s/GB" "$(per_gb "$CPU_S" "$MESSAGES")"
        fi
    done

    echo "==> [$b] consume: producing $MESSAGES x $SIZE B once into topic consume"
    timeout "$CASE_TIMEOUT" "$LOADGEN" --bootstrap "127.0.0.1:$PORT" --topic consume --size "$SIZE" \
        --acks 1 --messages "$MESSAGES" --no-consume >/dev/null
    for rep in $(seq 1 "$REPEATS"); do
        echo "==> [$b] consume run $rep/$REPEATS"
        measured "${LG[@]}" --topic consume --no-produce
        [[ $RUN_OK == 1 ]] && {
            record "$b" "consume: loadgen" "MiB/s" "$(field consume_mib_s)"
            record "$b" "consume: loadgen" "broker CPU s/GB" "$(per_gb "$CPU_S" "$MESSAGES")"
        }
        measured "${LG[@]}" --topic consume --no-produce --fetch-queue-backoff-ms 1000
        [[ $RUN_OK == 1 ]] && {
            record "$b" "consume: loadgen, fetch.queue.backoff.ms=1000" "MiB/s" "$(field consume_mib_s)"
            record "$b" "consume: loadgen, fetch.queue.backoff.ms=1000" "broker CPU s/GB" "$(per_gb "$CPU_S" "$MESSAGES")"
        }
        measured "${JAVA_TOOL[@]}" org.apache.kafka.tools.ConsumerPerformance --bootstrap-server "127.0.0.1:$PORT" \
            --topic consume --messages "$MESSAGES" --timeout 60000
        if [[ $RUN_OK == 1 ]]; then
            # start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec,
            # rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec
            record "$b" "consume: ConsumerPerformance" "fetch MB/s" "$(tail -n 1 "$RUN_OUT" | awk -F', ' '{print $9}')"
            record "$b" "consume: ConsumerPerformance" "broker CPU s/GB" "$(per_gb "$CPU_S" "$MESSAGES")"
        fi
        measured "${KCAT_READ[@]}" -t consume -c "$MESSAGES"
        [[ $RUN_OK == 1 ]] && {
            record "$b" "consume: kcat, librdkafka defaults" "MiB/s" "$(mib_s "$MESSAGES" "$WALL_S")"
            record "$b" "consume: kcat, librdkafka defaults" "broker CPU s/GB" "$(per_gb "$CPU_S" "$MESSAGES")"
        }
        measured "${KCAT_READ[@]}" -t consume -c "$MESSAGES" -X queued.min.messages=10000000 -X queued.max.messages.kbytes=2097151
        [[ $RUN_OK == 1 ]] && {
            record "$b" "consume: kcat, prefetch queue not capped" "MiB/s" "$(mib_s "$MESSAGES" "$WALL_S")"
            record "$b" "consume: kcat, prefetch queue not capped" "broker CPU s/GB" "$(per_gb "$CPU_S" "$MESSAGES")"
        }
    done

    if (( MANY_PARTITIONS > 0 )); then
        for rep in $(seq 1 "$REPEATS"); do
            topic=many-$rep
            echo "==> [$b] $MANY_PARTITIONS partitions, run $rep/$REPEATS"
            measured "${LG[@]}" --topic "$topic" --partitions "$MANY_PARTITIONS" --messages "$MANY_MESSAGES" --no-consume
            [[ $RUN_OK == 1 ]] && {
                record "$b" "many: loadgen produce, $MANY_PARTITIONS partitions" "MiB/s" "$(field produce_mib_s)"
                record "$b" "many: loadgen produce, $MANY_PARTITIONS partitions" "p99 ms" "$(field p99_ms)"
                record "$b" "many: loadgen produce, $MANY_PARTITIONS partitions" "broker CPU s/GB" "$(per_gb "$CPU_S" "$MANY_MESSAGES")"
            }
            measured "${LG[@]}" --topic "$topic" --no-produce
            [[ $RUN_OK == 1 ]] && {
                record "$b" "many: loadgen consume, $MANY_PARTITIONS partitions" "MiB/s" "$(field consume_mib_s)"
                record "$b" "many: loadgen consume, $MANY_PARTITIONS partitions" "broker CPU s/GB" "$(per_gb "$CPU_S" "$MANY_MESSAGES")"
            }
            measured "${KCAT_READ[@]}" -t "$topic" -c "$MANY_MESSAGES"
            [[ $RUN_OK == 1 ]] && {
                record "$b" "many: kcat consume, $MANY_PARTITIONS partitions" "MiB/s" "$(mib_s "$MANY_MESSAGES" "$WALL_S")"
                record "$b" "many: kcat consume, $MANY_PARTITIONS partitions" "broker CPU s/GB" "$(per_gb "$CPU_S" "$MANY_MESSAGES")"
            }
        done
    fi

    for rate in $E2E_RATES; do
        n=$(( rate * E2E_SECONDS ))
        for rep in $(seq 1 "$REPEATS"); do
            echo "==> [$b] end-to-end latency at $rate records/s, run $rep/$REPEATS"
            measured "${LG[@]}" --topic "e2e-$rate-$rep" --messages "$n" --rate "$rate" --linger-ms 0 --e2e --no-consume
            if [[ $RUN_OK == 1 ]]; then
                for q in p50 p99 p999; do
                    record "$b" "e2e: $rate records/s, linger.ms=0" "$q ms" "$(field "e2e_${q}_ms")"
                done
                # Below the target rate, or a produce p50 near the end-to-end one: the producer queued,
                # and the latency is the broker's produce path rather than the fetch wake-up.
                record "$b" "e2e: $rate records/s, linger.ms=0" "records/s reached" "$(field produce_msgs_s)"
                record "$b" "e2e: $rate records/s, linger.ms=0" "produce p50 ms" "$(field p50_ms)"
                record "$b" "e2e: $rate records/s, linger.ms=0" "broker CPU s/GB" "$(per_gb "$CPU_S" "$n")"
            fi
        done
    done

    if [[ $PROFILE == 1 ]]; then
        echo "==> [$b] profiles: produce and consume at full speed, $PROFILE_SECONDS s each"
        profiled "$b" produce profile_produce
        profiled "$b" consume profile_consume
    fi
    LOADS[$b]="${LOADS[$b]} / $(cut -d' ' -f1 /proc/loadavg)"
    stop_broker
}

if [[ -n ${REPORT_FROM:-} ]]; then
    # Only the report, from the raw figures an earlier run left beside its report ($OUT.tsv).
    cp "$REPORT_FROM" "$RESULTS"
else
    for broker in $BROKERS; do
        run_broker "$broker"
    done
fi
mapfile -t ORDER < <(awk -F'\t' '!seen[$2 FS $3]++ {print $2 "\t" $3}' "$RESULTS")

# --- report ---------------------------------------------------------------------------------------
stats() { # broker workload metric -> "median (min–max)" or "–"
    awk -F'\t' -v b="$1" -v w="$2" -v m="$3" '$1 == b && $2 == w && $3 == m && $4 != "" {print $4 + 0}' "$RESULTS" |
        sort -g | awk '{v[NR] = $1}
            END {
                if (NR == 0) { print "–"; exit }
                med = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
                printf "%s (%s–%s)\n", med, v[1], v[NR]
            }'
}
median_of() { sed 's/ (.*//' <<<"$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {
    if (a !~ /^[0-9.]+$/ || b !~ /^[0-9.]+$/ || b + 0 == 0) print "–"; else printf "%.2f\n", a / b }'; }
{
    echo "# Data path: Kraftwerk vs Apache Kafka $KAFKA_VERSION, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo
    echo "kraftwerk commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown); $(nproc) cores;" \
        "$(java -version 2>&1 | head -n 1); Kafka heap $KAFKA_HEAP; $(kcat -V 2>&1 | grep -o 'librdkafka [0-9.]*' | head -n 1) (kcat);" \
        "one broker at a time, loopback, $SIZE B records, acks=1; $MESSAGES records per produce run and in the consume topic."
    echo "Load average (1 min) before the run: $LOAD_BEFORE; per broker at its start / end:" \
        "$(for b in $BROKERS; do printf '%s %s; ' "$b" "${LOADS[$b]:-?}"; done)"
    echo "Median of $REPEATS runs (min–max). Broker CPU = utime + stime of the broker process across the client" \
        "run, per GB of record values. Ratio = kraftwerk / kafka (throughput: above 1 is better; CPU and latency:" \
        "below 1 is better)."
    echo
    echo "| workload | metric | kraftwerk | kafka | ratio |"
    echo "|---|---|---|---|---|"
    for key in "${ORDER[@]}"; do
        w=${key%%$'\t'*}
        m=${key#*$'\t'}
        a=$(stats kraftwerk "$w" "$m")
        k=$(stats kafka "$w" "$m")
        echo "| $w | $m | $a | $k | $(ratio "$(median_of "$a")" "$(median_of "$k")") |"
    done
    if [[ $PROFILE == 1 ]]; then
        for b in $BROKERS; do
            for label in produce consume; do
                echo
                echo "## perf: $b during $label (cpu-clock, 999 Hz, $PROFILE_SECONDS s; % of samples, dso and symbol)"
                echo
                echo '```'
                cat "$(profile_file "$b" "$label")" 2>/dev/null || echo "no profile"
                echo '```'
            done
        done
    fi
} | tee "$OUT"
echo "written to $OUT"
