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
#   many        for each N of MANY_PARTITIONS, N partitions in two layouts: in one topic, and across
#               N / MANY_TOPIC_PARTITIONS topics of MANY_TOPIC_PARTITIONS partitions each (loadgen --topics: record
#               i goes to topic i mod K). Each run (N, layout, repeat) has a node of its own, started fresh and
#               warmed up, so it holds that layout's partitions alone (two 10,000-partition layouts at once would
#               pass this machine's 20,000 open files for Kafka) and nothing is left over from the runs before.
#               In each run: the loadgen creates the topics and waits until Metadata shows a leader for every
#               partition (its time is the "topic creation" row), then writes one 1-byte record to every
#               partition, acknowledged ("--prime": the row "s until every partition took a write" counts from
#               CreateTopics), so the measured produce goes into partitions that exist on disk in both systems
#               (Kafka makes a partition's files during creation, Kraftwerk after it in the background or at the
#               first write, whichever is first); the consumers below read those N records too. Then the loadgen produces
#               MANY_MESSAGES records, each with a key of its own (--keys MANY_MESSAGES), so the partitioner
#               spreads them over every partition; without keys librdkafka's and the Java client's sticky
#               partitioners fill one partition of a topic at a time and most partitions stay empty. They are
#               read back by the loadgen (every partition assigned), ConsumerPerformance (--topic, or --include
#               'many-[0-9]+' across topics: a group subscription; its fetch MB/s leaves the join out) and kcat:
#               kcat -C assigns every partition of its one -t topic; across topics kcat -G subscribes to all K
#               topics as a group (one run reads them all; the row's time includes the group join). Last,
#               in the one-topic layout only, ProducerPerformance appends MANY_MESSAGES keyed records
#               (--key-distribution range over MANY_MESSAGES keys) into the same partitions (linger.ms=5,
#               batch.size=16384, Java's default, since each partition's open batch holds a buffer that size,
#               and buffer.memory with room for one per partition); ProducerPerformance takes one --topic, so
#               there is no across-topics ProducerPerformance row. Rows are named "many: N partitions in 1
#               topic, <client>" and "many: N partitions in K topics of P, <client>". Kafka runs with KAFKA_HEAP
#               (1g holds 10,000 partitions with this data); the creation waits up to CASE_TIMEOUT (Kafka leads
#               10,000 new partitions ~15 s after CreateTopics). Estimated at the defaults with REPEATS=3: a few
#               minutes for Kraftwerk (a 1,000-partition run took ~20 s, fresh node and warm-up included), most
#               of the half hour to an hour for Kafka's runs (a new JVM and warm-up per run, slow many-partition
#               produce);
#   e2e         end-to-end latency at fixed rates (E2E_RATES, records/s, for E2E_SECONDS each, linger.ms=0):
#               the loadgen's reader records send-to-receive time while its producer writes (p50/p99/p99.9);
#   latency     produce latency at half the maximum rate, the same rate for both brokers: first each broker's
#               maximum with ProducerPerformance (1 KiB, acks=1, linger.ms=5, batch.size=131072, MESSAGES
#               records, --throughput -1; the produce workload's runs when it ran too), then, broker by broker,
#               ProducerPerformance and the loadgen at half the SLOWER broker's median maximum (or LATENCY_RATE)
#               for LATENCY_SECONDS, linger.ms=0, with acks=1 and acks=all (one broker: acks=all waits for the
#               leader's own write, nothing more), each run into a one-partition topic of its own, created
#               before the run (the loadgen creates its own) and deleted after it;
#               p50/p99/p99.9/max of the send-to-acknowledgement time and the rate reached. ProducerPerformance
#               runs LATENCY_WARMUP_SECONDS longer and leaves them out (--warmup-records: its new JVM's first
#               callbacks run late whatever the broker), and reports whole milliseconds (it records latencies
#               as ints), the loadgen microseconds;
#   rf3         three nodes (each broker + controller, as processes) with replication factor 3 and
#               min.insync.replicas=2, acks=all: ProducerPerformance and the loadgen producing into topics of
#               RF3_PARTITIONS partitions (one leader per node), ConsumerPerformance and the loadgen reading one
#               back, and end-to-end latency at E2E_RATES; broker CPU is the three nodes' together;
#   restart     one node filled with RESTART_BYTES of RESTART_SIZE-byte records in RESTART_PARTITIONS partitions,
#               then REPEATS times: a top-up produce (so every restart finds unflushed data past any recovery
#               point), kill -9, start again, and the time from the start until every partition is served with
#               all its records (loadgen --await-served: ListOffsets answered for each, the log end offsets
#               adding up to what was produced); the data is removed with the broker;
#   profile     PROFILE=1: `perf record -g` of the broker during one loadgen produce and one consume at full
#               speed (Kraftwerk unwound with DWARF, Kafka with frame pointers); the top symbols (self and
#               with children) go into the report, the folded stacks beside it (Kafka's JIT-compiled Java shows
#               as addresses).
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
# Environment: WORKLOADS (default "produce consume many e2e rf3 restart"; latency too when named: which of the
# above run, PROFILE aside), MESSAGES (default 1000000), REPEATS (3), WARMUP_MESSAGES (200000: an unmeasured produce and
# consume on each broker first, so Kafka's JIT has compiled its hot paths, and on each many workload's node),
# MANY_PARTITIONS ("1000 10000"; each N a multiple of MANY_TOPIC_PARTITIONS, at least twice it),
# MANY_TOPIC_PARTITIONS (100: so 10 and 100 topics), MANY_MESSAGES (300000), E2E_RATES ("5000 20000"), E2E_SECONDS (15), PROFILE (0), PROFILE_SECONDS (8),
# RF3_PARTITIONS (3), RF3_MESSAGES (MESSAGES / 2), RESTART_PARTITIONS (1000), RESTART_BYTES (3500000000),
# RESTART_SIZE (8192), LATENCY_SECONDS (30), LATENCY_WARMUP_SECONDS (5), LATENCY_RATE (records/s; unset: half the slower maximum), KAFKA_HEAP (1g, per node), CASE_TIMEOUT (600), BROKERS ("kraftwerk kafka"), REPORT_FROM (a results .tsv an earlier run
# left beside its report: write the report again from it, running nothing).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
MESSAGES=${MESSAGES:-1000000}
REPEATS=${REPEATS:-3}
WARMUP_MESSAGES=${WARMUP_MESSAGES:-200000}
MANY_PARTITIONS=${MANY_PARTITIONS:-1000 10000}
MANY_TOPIC_PARTITIONS=${MANY_TOPIC_PARTITIONS:-100}
MANY_MESSAGES=${MANY_MESSAGES:-300000}
E2E_RATES=${E2E_RATES:-5000 20000}
E2E_SECONDS=${E2E_SECONDS:-15}
LATENCY_SECONDS=${LATENCY_SECONDS:-30}
LATENCY_WARMUP_SECONDS=${LATENCY_WARMUP_SECONDS:-5}
LATENCY_RATE=${LATENCY_RATE:-}
PROFILE=${PROFILE:-0}
WORKLOADS=${WORKLOADS:-produce consume many e2e rf3 restart}
RF3_PARTITIONS=${RF3_PARTITIONS:-3}
RF3_MESSAGES=${RF3_MESSAGES:-$((MESSAGES / 2))}
RESTART_PARTITIONS=${RESTART_PARTITIONS:-1000}
RESTART_BYTES=${RESTART_BYTES:-3500000000}
RESTART_SIZE=${RESTART_SIZE:-8192}
PROFILE_SECONDS=${PROFILE_SECONDS:-8}
CASE_TIMEOUT=${CASE_TIMEOUT:-600}
BROKERS=${BROKERS:-kraftwerk kafka}
SIZE=1024
OUT=${BENCH_OUT:-$ROOT/target/bench/data-path-$(date +%Y%m%d-%H%M%S).md}
mkdir -p "$(dirname "$OUT")"

command -v java >/dev/null || { echo "java (17+) is needed to run Apache Kafka and its perf tools" >&2; exit 1; }
for w in $WORKLOADS; do
    [[ " produce consume many e2e rf3 restart latency " == *" $w "* ]] ||
        { echo "unknown workload $w in WORKLOADS (produce consume many e2e rf3 restart latency)" >&2; exit 1; }
done
wants() { [[ " $WORKLOADS " == *" $1 "* ]]; }
if ! [[ $LATENCY_WARMUP_SECONDS =~ ^[1-9][0-9]*$ ]]; then
    # ProducerPerformance prints the steady-state line the latency rows are read from only after a warm-up.
    echo "LATENCY_WARMUP_SECONDS must be at least 1, not $LATENCY_WARMUP_SECONDS" >&2
    exit 1
fi
if [[ -n $LATENCY_RATE ]] && ! [[ $LATENCY_RATE =~ ^[1-9][0-9]*$ ]]; then
    echo "LATENCY_RATE must be a positive number of records/s, not $LATENCY_RATE" >&2
    exit 1
fi
if wants many; then
    [[ $MANY_TOPIC_PARTITIONS =~ ^[1-9][0-9]*$ ]] ||
        { echo "MANY_TOPIC_PARTITIONS must be a positive number, not $MANY_TOPIC_PARTITIONS" >&2; exit 1; }
    [[ -n ${MANY_PARTITIONS// /} ]] || { echo "MANY_PARTITIONS is empty (leave out the many workload instead)" >&2; exit 1; }
    for n in $MANY_PARTITIONS; do
        # The across-topics layout needs N / MANY_TOPIC_PARTITIONS whole topics, two or more.
        if ! [[ $n =~ ^[1-9][0-9]*$ ]] || (( n % MANY_TOPIC_PARTITIONS != 0 || n / MANY_TOPIC_PARTITIONS < 2 )); then
            echo "MANY_PARTITIONS: $n is not a multiple of MANY_TOPIC_PARTITIONS=$MANY_TOPIC_PARTITIONS at least twice it" >&2
            exit 1
        fi
    done
fi
if [[ $PROFILE == 1 ]] && ! command -v perf >/dev/null; then
    echo "PROFILE=1 needs perf (apt-get install linux-perf)" >&2
    exit 1
fi
# shellcheck source=lib/bench-common.sh
source "$ROOT/scripts/lib/bench-common.sh"
WORK=$(mktemp -d /tmp/kraftwerk-data-path.XXXXXX)
# shellcheck source=lib/bench-brokers.sh
source "$ROOT/scripts/lib/bench-brokers.sh"
kafka_jars
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
declare -A LATENCY_LOADS=() # the same around each broker's latency runs
LATENCY_MAX_ROW="latency: maximum, ProducerPerformance acks=1 linger.ms=5"
LATENCY_NOTE=""
LATENCY_SLOWER=""
# The top symbols of a profile, kept beside the report.
profile_file() { echo "${OUT%.md}-perf-$1-$2.txt"; }
record() { # broker workload metric value
    printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$RESULTS"
}

# The user + system CPU seconds in the second line of bash's `times` output (the shell's waited-for children).
# `times` itself has to run in the measuring shell, not in $(...): a subshell would report its own children.
children_cpu_s() { # file holding `times` output
    awk 'NR == 2 {
        s = 0
        for (i = 1; i <= 2; i++) { split($i, p, /[ms]/); s += p[1] * 60 + p[2] }
        printf "%.3f\n", s
    }' "$1"
}

# Runs a client command with the broker's CPU measured around it. Sets RUN_OUT (its output file), WALL_S, CPU_S
# and CLIENT_S (the client's own user + system CPU: on two shared cores, what the client takes the broker cannot
# have, and the other way round); a failed or timed-out run is reported and leaves RUN_OK=0.
measured() {
    local c0 t0 c1 t1
    RUN_OUT=$WORK/run.out
    RUN_OK=1
    c0=$(cpu_ticks); t0=$(now_ms)
    times >"$WORK/times.0"
    timeout "$CASE_TIMEOUT" "$@" >"$RUN_OUT" 2>&1 || RUN_OK=0
    times >"$WORK/times.1"
    t1=$(now_ms); c1=$(cpu_ticks)
    WALL_S=$(awk -v ms=$((t1 - t0)) 'BEGIN {printf "%.3f", ms / 1000}')
    CPU_S=$(awk -v t=$((c1 - c0)) -v hz="$HZ" 'BEGIN {printf "%.3f", t / hz}')
    CLIENT_S=$(awk -v a="$(children_cpu_s "$WORK/times.0")" -v b="$(children_cpu_s "$WORK/times.1")" \
        'BEGIN {printf "%.3f", b - a}')
    if [[ $RUN_OK == 0 ]]; then
        echo "    FAILED: $*" >&2
        tail -n 20 "$RUN_OUT" >&2
    fi
    local i
    for i in "${!PIDS[@]}"; do
        kill -0 "${PIDS[i]}" 2>/dev/null ||
            { echo "node $i died during: $*" >&2; tail -n 40 "$BROKER_DIR/$i/broker.log" >&2; exit 1; }
    done
}
per_gb() { awk -v s="$1" -v n="$2" -v size="${3:-$SIZE}" 'BEGIN {printf "%.3f", s / (n * size / 1e9)}'; }
mib_s() { awk -v n="$1" -v size="$SIZE" -v w="$2" 'BEGIN {printf "%.1f", (w > 0) ? n * size / 1048576 / w : 0}'; }
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" "$RUN_OUT" | tail -n 1; }

# The report's figures: median (min–max) of a row's runs, and the ratio of two medians.
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
# The clients, as commands (`measured` runs them under `timeout`); set per broker by run_broker.
LG=()
KCAT_READ=()
# perf record -g of the broker (cpu-clock: this VM has no hardware counters) for PROFILE_SECONDS while a client
# loop runs at full speed. Kraftwerk is unwound with DWARF (release builds keep line tables, not frame
# pointers), Kafka with frame pointers (the JVM keeps them; JIT frames have no symbols). Three files per
# profile beside the report: the top symbols by self time, by time with children, and the folded stacks
# (`comm;outermost;...;innermost count`, flamegraph.pl's input). The loop stops at its next turn once the stop
# file exists; the client it is running is stopped by its parent's id.
profiled() { # broker label client-function
    local broker=$1 label=$2 data client base
    local -a graph=(-g)
    [[ $broker == kraftwerk ]] && graph=(--call-graph dwarf,16384)
    data=$WORK/$broker-$label.perf
    base=$(profile_file "$broker" "$label")
    rm -f "$WORK/stop"
    "$3" >/dev/null 2>&1 &
    client=$!
    sleep 1
    perf record -e cpu-clock -F 999 "${graph[@]}" -p "$PID" -o "$data" -- sleep "$PROFILE_SECONDS" >/dev/null 2>&1 || true
    touch "$WORK/stop"
    pkill -P "$client" 2>/dev/null || true
    wait "$client" 2>/dev/null || true
    perf report -i "$data" --no-children --sort dso,symbol --stdio 2>/dev/null |
        grep -E '^ +[0-9.]+%' | head -n 25 | sed -E 's/^ *//; s/([[:space:]]+-)*[[:space:]]*$//' >"$base" || true
    perf report -i "$data" --children --sort symbol --stdio -g none 2>/dev/null |
        grep -E '^ +[0-9.]+%' | head -n 40 | sed -E 's/^ *//; s/([[:space:]]+-)*[[:space:]]*$//' >"${base%.txt}-children.txt" || true
    perf script -i "$data" 2>/dev/null | fold_stacks >"${base%.txt}.folded" || true
    rm -f "$data"
}
# perf script's samples (a header line, then one frame per line, innermost first, a blank line after) as
# folded stacks, heaviest first. (perf script names libc's memmove by its alias __memcpy_avx_unaligned_erms.)
fold_stacks() {
    awk '
        function flush() {
            if (comm != "") {
                s = comm
                for (i = n; i >= 1; i--) s = s ";" f[i]
                count[s]++
            }
            comm = ""; n = 0
        }
        /^[^ \t]/ { flush(); comm = $1; next }
        /^[ \t]*$/ { flush(); next }
        {
            sym = $2
            for (i = 3; i < NF; i++) sym = sym " " $i
            sub(/\+0x[0-9a-f]+$/, "", sym)
            if (sym == "[unknown]" || sym == "") sym = "[" $NF "]"
            gsub(/;/, ":", sym)
            f[++n] = sym
        }
        END { flush(); for (s in count) print count[s] "\t" s }
    ' | sort -t$'\t' -k1,1rn | awk -F'\t' '{print $2 " " $1}'
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

# WARMUP_MESSAGES produced and consumed (not measured) on the node just started, so Kafka's JIT has compiled its
# hot paths before anything is measured; the loadgen and ConsumerPerformance, into a one-partition topic.
warm_up() { # broker
    (( WARMUP_MESSAGES > 0 )) || return 0
    echo "==> [$1] warm-up (not measured): $WARMUP_MESSAGES x $SIZE B produced and consumed"
    timeout "$CASE_TIMEOUT" "$LOADGEN" --bootstrap "127.0.0.1:$PORT" --topic warmup --size "$SIZE" \
        --acks 1 --messages "$WARMUP_MESSAGES" >/dev/null 2>&1 || true
    timeout "$CASE_TIMEOUT" "${JAVA_TOOL[@]}" org.apache.kafka.tools.ConsumerPerformance \
        --bootstrap-server "127.0.0.1:$PORT" --topic warmup --messages "$WARMUP_MESSAGES" \
        --timeout 60000 >/dev/null 2>&1 || true
}

# The one-node workloads: produce, consume, e2e and the profiles, on one broker started once.
run_single() { # kraftwerk|kafka
    local b=$1 rep n line
    echo "==> starting $b"
    start_broker "$b"
    LG=("$LOADGEN" --bootstrap "127.0.0.1:$PORT" --size "$SIZE" --acks 1)
    KCAT_READ=(kcat -C -b "127.0.0.1:$PORT" -o beginning -q -f '%S\n')
    warm_up "$b"

    # The produce workload's ProducerPerformance runs are also the latency workload's maxima; when only the
    # latency workload runs, they run alone (and their rows are the latency workload's).
    if wants produce || { wants latency && [[ -z $LATENCY_RATE ]]; }; then for rep in $(seq 1 "$REPEATS"); do
        echo "==> [$b] produce run $rep/$REPEATS (ProducerPerformance at full speed)"
        measured "${JAVA_TOOL[@]}" org.apache.kafka.tools.ProducerPerformance --topic "pp-$rep" \
            --num-records "$MESSAGES" --record-size "$SIZE" --throughput -1 \
            --producer-props bootstrap.servers="127.0.0.1:$PORT" acks=1 linger.ms=5 batch.size=131072
        if [[ $RUN_OK == 1 ]]; then
            line=$(grep 'records sent' "$RUN_OUT" | tail -n 1)
            if wants produce; then
                record "$b" "produce: ProducerPerformance" "MB/s" "$(sed -n 's/.*(\([0-9.]*\) MB\/sec).*/\1/p' <<<"$line")"
                record "$b" "produce: ProducerPerformance" "p99 ms" "$(sed -n 's/.* \([0-9]*\) ms 99th.*/\1/p' <<<"$line")"
                record "$b" "produce: ProducerPerformance" "broker CPU s/GB" "$(per_gb "$CPU_S" "$MESSAGES")"
                record "$b" "produce: ProducerPerformance" "client CPU s/GB" "$(per_gb "$CLIENT_S" "$MESSAGES")"
            fi
            wants latency && record "$b" "$LATENCY_MAX_ROW" "records/s" \
                "$(sed -n 's/^[0-9]* records sent, \([0-9.]*\) records\/sec.*/\1/p' <<<"$line")"
        fi
        wants produce || continue
        measured "${LG[@]}" --topic "lg-$rep" --messages "$MESSAGES" --no-consume
        if [[ $RUN_OK == 1 ]]; then
            record "$b" "produce: loadgen" "MiB/s" "$(field produce_mib_s)"
            record "$b" "produce: loadgen" "p99 ms" "$(field p99_ms)"
            record "$b" "produce: loadgen" "broker CPU s/GB" "$(per_gb "$CPU_S" "$MESSAGES")"
            record "$b" "produce: loadgen" "client CPU s/GB" "$(per_gb "$CLIENT_S" "$MESSAGES")"
        fi
    done; fi

    if wants consume || [[ $PROFILE == 1 ]]; then
        echo "==> [$b] consume: producing $MESSAGES x $SIZE B once into topic consume"
        timeout "$CASE_TIMEOUT" "$LOADGEN" --bootstrap "127.0.0.1:$PORT" --topic consume --size "$SIZE" \
            --acks 1 --messages "$MESSAGES" --no-consume >/dev/null
    fi
    wants consume && for rep in $(seq 1 "$REPEATS"); do
        echo "==> [$b] consume run $rep/$REPEATS"
        measured "${LG[@]}" --topic consume --no-produce
        [[ $RUN_OK == 1 ]] && {
            record "$b" "consume: loadgen" "MiB/s" "$(field consume_mib_s)"
            record "$b" "consume: loadgen" "broker CPU s/GB" "$(per_gb "$CPU_S" "$MESSAGES")"
            record "$b" "consume: loadgen" "client CPU s/GB" "$(per_gb "$CLIENT_S" "$MESSAGES")"
        }
        measured "${LG[@]}" --topic consume --no-produce --fetch-queue-backoff-ms 1000
        [[ $RUN_OK == 1 ]] && {
            record "$b" "consume: loadgen, fetch.queue.backoff.ms=1000" "MiB/s" "$(field consume_mib_s)"
            record "$b" "consume: loadgen, fetch.queue.backoff.ms=1000" "broker CPU s/GB" "$(per_gb "$CPU_S" "$MESSAGES")"
            record "$b" "consume: loadgen, fetch.queue.backoff.ms=1000" "client CPU s/GB" "$(per_gb "$CLIENT_S" "$MESSAGES")"
        }
        measured "${JAVA_TOOL[@]}" org.apache.kafka.tools.ConsumerPerformance --bootstrap-server "127.0.0.1:$PORT" \
            --topic consume --messages "$MESSAGES" --timeout 60000
        if [[ $RUN_OK == 1 ]]; then
            # start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec,
            # rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec
            record "$b" "consume: ConsumerPerformance" "fetch MB/s" "$(tail -n 1 "$RUN_OUT" | awk -F', ' '{print $9}')"
            record "$b" "consume: ConsumerPerformance" "broker CPU s/GB" "$(per_gb "$CPU_S" "$MESSAGES")"
            record "$b" "consume: ConsumerPerformance" "client CPU s/GB" "$(per_gb "$CLIENT_S" "$MESSAGES")"
        fi
        measured "${KCAT_READ[@]}" -t consume -c "$MESSAGES"
        [[ $RUN_OK == 1 ]] && {
            record "$b" "consume: kcat, librdkafka defaults" "MiB/s" "$(mib_s "$MESSAGES" "$WALL_S")"
            record "$b" "consume: kcat, librdkafka defaults" "broker CPU s/GB" "$(per_gb "$CPU_S" "$MESSAGES")"
            record "$b" "consume: kcat, librdkafka defaults" "client CPU s/GB" "$(per_gb "$CLIENT_S" "$MESSAGES")"
        }
        measured "${KCAT_READ[@]}" -t consume -c "$MESSAGES" -X queued.min.messages=10000000 -X queued.max.messages.kbytes=2097151
        [[ $RUN_OK == 1 ]] && {
            record "$b" "consume: kcat, prefetch queue not capped" "MiB/s" "$(mib_s "$MESSAGES" "$WALL_S")"
            record "$b" "consume: kcat, prefetch queue not capped" "broker CPU s/GB" "$(per_gb "$CPU_S" "$MESSAGES")"
            record "$b" "consume: kcat, prefetch queue not capped" "client CPU s/GB" "$(per_gb "$CLIENT_S" "$MESSAGES")"
        }
    done

    wants e2e && for rate in $E2E_RATES; do
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
                record "$b" "e2e: $rate records/s, linger.ms=0" "client CPU s/GB" "$(per_gb "$CLIENT_S" "$n")"
            fi
        done
    done

    if [[ $PROFILE == 1 ]]; then
        echo "==> [$b] profiles: produce and consume at full speed, $PROFILE_SECONDS s each"
        profiled "$b" produce profile_produce
        profiled "$b" consume profile_consume
    fi
    stop_broker
}

# The many workload (see the header): each N of MANY_PARTITIONS in one topic and across topics, each repeat on
# a node of its own. Rows start "many: N partitions in 1 topic" or "many: N partitions in K topics of P".
run_many() { # kraftwerk|kafka
    local b=$1 n k rep w created buffer line kcat_read
    local -a lg lg_topics cp_topics topics
    for n in $MANY_PARTITIONS; do
        for k in 1 $(( n / MANY_TOPIC_PARTITIONS )); do
            if (( k == 1 )); then
                w="many: $n partitions in 1 topic"
                lg_topics=(--topic many --partitions "$n")
                cp_topics=(--topic many)
                topics=(many)
            else
                w="many: $n partitions in $k topics of $MANY_TOPIC_PARTITIONS"
                lg_topics=(--topic many --topics "$k" --partitions "$MANY_TOPIC_PARTITIONS")
                # A Java regex the whole topic name must match: many-0 .. many-(k-1), not warmup.
                cp_topics=(--include 'many-[0-9]+')
                mapfile -t topics < <(seq 0 $((k - 1)) | sed 's/^/many-/')
            fi
            for rep in $(seq 1 "$REPEATS"); do
                echo "==> [$b] $w, run $rep/$REPEATS: a fresh node"
                start_broker "$b"
                warm_up "$b"
                lg=("$LOADGEN" --bootstrap "127.0.0.1:$PORT" --size "$SIZE" --acks 1 "${lg_topics[@]}"
                    --await-timeout-s "$CASE_TIMEOUT")
                echo "==> [$b] $w, run $rep/$REPEATS: creating the topics, waiting for every partition's leader, one write to each"
                if ! timeout "$CASE_TIMEOUT" "${lg[@]}" --create-only --prime >"$WORK/create.out" 2>&1; then
                    echo "    FAILED: creating the topics of $w" >&2
                    # The loadgen's error, not its backtrace.
                    grep -Ev '^ +([0-9]+: |at )' "$WORK/create.out" | tail -n 20 >&2
                    stop_broker
                    continue
                fi
                created=$(sed -n 's/.* created_ms=\([0-9]*\).*/\1/p' "$WORK/create.out")
                record "$b" "$w, topic creation" "s until every partition has a leader" \
                    "$(awk -v ms="$created" 'BEGIN {printf "%.2f", ms / 1000}')"
                primed=$(sed -n 's/.* primed_ms=\([0-9]*\).*/\1/p' "$WORK/create.out")
                record "$b" "$w, topic creation" "s until every partition took a write" \
                    "$(awk -v ms="$primed" 'BEGIN {printf "%.2f", ms / 1000}')"
                echo "==> [$b] $w, run $rep/$REPEATS: produce and consume"
                measured "${lg[@]}" --messages "$MANY_MESSAGES" --keys "$MANY_MESSAGES" --no-consume
                [[ $RUN_OK == 1 ]] && {
                    record "$b" "$w, loadgen produce" "MiB/s" "$(field produce_mib_s)"
                    record "$b" "$w, loadgen produce" "p99 ms" "$(field p99_ms)"
                    record "$b" "$w, loadgen produce" "broker CPU s/GB" "$(per_gb "$CPU_S" "$MANY_MESSAGES")"
                    record "$b" "$w, loadgen produce" "client CPU s/GB" "$(per_gb "$CLIENT_S" "$MANY_MESSAGES")"
                }
                # Every consumer reads all the partitions hold: the loadgen's records and the N primers (1 B each;
                # the per-GB figures count the loadgen's records).
                held=$((MANY_MESSAGES + n))
                measured "${lg[@]}" --no-produce
                [[ $RUN_OK == 1 ]] && {
                    record "$b" "$w, loadgen consume" "MiB/s" "$(field consume_mib_s)"
                    record "$b" "$w, loadgen consume" "broker CPU s/GB" "$(per_gb "$CPU_S" "$MANY_MESSAGES")"
                    record "$b" "$w, loadgen consume" "client CPU s/GB" "$(per_gb "$CLIENT_S" "$MANY_MESSAGES")"
                }
                measured "${JAVA_TOOL[@]}" org.apache.kafka.tools.ConsumerPerformance --bootstrap-server "127.0.0.1:$PORT" \
                    "${cp_topics[@]}" --messages "$held" --timeout 60000
                # ConsumerPerformance stops after --timeout without a record and exits 0: the row counts only
                # if it read them all (the fifth figure, data.consumed.in.nMsg).
                line=$(tail -n 1 "$RUN_OUT" | awk -F', ' '{print $5}')
                if [[ $RUN_OK == 1 && $line != "$held" ]]; then
                    echo "    FAILED: ConsumerPerformance read ${line:-no} records of $held ($w)" >&2
                    tail -n 5 "$RUN_OUT" >&2
                elif [[ $RUN_OK == 1 ]]; then
                    record "$b" "$w, ConsumerPerformance" "fetch MB/s" "$(tail -n 1 "$RUN_OUT" | awk -F', ' '{print $9}')"
                    record "$b" "$w, ConsumerPerformance" "broker CPU s/GB" "$(per_gb "$CPU_S" "$MANY_MESSAGES")"
                    record "$b" "$w, ConsumerPerformance" "client CPU s/GB" "$(per_gb "$CLIENT_S" "$MANY_MESSAGES")"
                fi
                if (( k == 1 )); then
                    measured kcat -C -b "127.0.0.1:$PORT" -o beginning -q -f '%S\n' -t many -c "$held"
                    kcat_read="kcat consume"
                else
                    measured kcat -b "127.0.0.1:$PORT" -G "many-kcat-$rep" -o beginning -q -f '%S\n' \
                        -c "$held" "${topics[@]}"
                    kcat_read="kcat -G consume (group join included)"
                fi
                [[ $RUN_OK == 1 ]] && {
                    record "$b" "$w, $kcat_read" "MiB/s" "$(mib_s "$MANY_MESSAGES" "$WALL_S")"
                    record "$b" "$w, $kcat_read" "broker CPU s/GB" "$(per_gb "$CPU_S" "$MANY_MESSAGES")"
                    record "$b" "$w, $kcat_read" "client CPU s/GB" "$(per_gb "$CLIENT_S" "$MANY_MESSAGES")"
                }
                if (( k == 1 )); then
                    # Room for an open batch (batch.size) in every partition, and no less than Java's default.
                    buffer=$(( n * 16384 * 2 > 33554432 ? n * 16384 * 2 : 33554432 ))
                    measured "${JAVA_TOOL[@]}" org.apache.kafka.tools.ProducerPerformance --topic many \
                        --num-records "$MANY_MESSAGES" --record-size "$SIZE" --throughput -1 \
                        --key-distribution range --record-key-range "$MANY_MESSAGES" \
                        --producer-props bootstrap.servers="127.0.0.1:$PORT" acks=1 linger.ms=5 batch.size=16384 \
                        buffer.memory="$buffer"
                    if [[ $RUN_OK == 1 ]]; then
                        line=$(grep 'records sent' "$RUN_OUT" | tail -n 1)
                        record "$b" "$w, ProducerPerformance" "MB/s" "$(sed -n 's/.*(\([0-9.]*\) MB\/sec).*/\1/p' <<<"$line")"
                        record "$b" "$w, ProducerPerformance" "p99 ms" "$(sed -n 's/.* \([0-9]*\) ms 99th.*/\1/p' <<<"$line")"
                        record "$b" "$w, ProducerPerformance" "broker CPU s/GB" "$(per_gb "$CPU_S" "$MANY_MESSAGES")"
                        record "$b" "$w, ProducerPerformance" "client CPU s/GB" "$(per_gb "$CLIENT_S" "$MANY_MESSAGES")"
                    fi
                fi
                stop_broker
            done
        done
    done
}

# Three nodes, replication factor 3, min.insync.replicas=2, acks=all (the workloads' rows start "rf3:").
run_rf3() { # kraftwerk|kafka
    local b=$1 rep rate n line lg topic
    echo "==> [$b] rf3: starting three nodes"
    CLUSTER_PROPS="min.insync.replicas=2" CLUSTER_NUM_PARTITIONS=$RF3_PARTITIONS start_cluster "$b" 3
    lg=("$LOADGEN" --bootstrap "$BOOT" --size "$SIZE" --acks all --partitions "$RF3_PARTITIONS"
        --replication-factor 3 --min-insync-replicas 2)
    if (( WARMUP_MESSAGES > 0 )); then
        echo "==> [$b] rf3 warm-up (not measured): $WARMUP_MESSAGES x $SIZE B produced and consumed"
        timeout "$CASE_TIMEOUT" "${lg[@]}" --topic rf3-warmup --messages "$WARMUP_MESSAGES" >/dev/null 2>&1 || true
    fi
    for rep in $(seq 1 "$REPEATS"); do
        echo "==> [$b] rf3 produce run $rep/$REPEATS"
        # Created by the producer's Metadata request with the nodes' defaults (default.replication.factor=3,
        # num.partitions=RF3_PARTITIONS, min.insync.replicas=2), checked below.
        measured "${JAVA_TOOL[@]}" org.apache.kafka.tools.ProducerPerformance --topic "rf3-pp-$rep" \
            --num-records "$RF3_MESSAGES" --record-size "$SIZE" --throughput -1 \
            --producer-props bootstrap.servers="$BOOT" acks=all linger.ms=5 batch.size=131072
        if [[ $RUN_OK == 1 ]]; then
            n=$(kcat -L -b "$BOOT" -t "rf3-pp-$rep" 2>/dev/null | grep -c 'replicas: [0-9]*,[0-9]*,[0-9]*,')
            (( n == RF3_PARTITIONS )) || {
                echo "rf3-pp-$rep has $n partitions with three replicas, $RF3_PARTITIONS expected" >&2
                kcat -L -b "$BOOT" -t "rf3-pp-$rep" >&2
                exit 1
            }
            line=$(grep 'records sent' "$RUN_OUT" | tail -n 1)
            record "$b" "rf3: produce, ProducerPerformance" "MB/s" "$(sed -n 's/.*(\([0-9.]*\) MB\/sec).*/\1/p' <<<"$line")"
            record "$b" "rf3: produce, ProducerPerformance" "p99 ms" "$(sed -n 's/.* \([0-9]*\) ms 99th.*/\1/p' <<<"$line")"
            record "$b" "rf3: produce, ProducerPerformance" "broker CPU s/GB" "$(per_gb "$CPU_S" "$RF3_MESSAGES")"
            record "$b" "rf3: produce, ProducerPerformance" "client CPU s/GB" "$(per_gb "$CLIENT_S" "$RF3_MESSAGES")"
        fi
        measured "${lg[@]}" --topic "rf3-lg-$rep" --messages "$RF3_MESSAGES" --no-consume
        if [[ $RUN_OK == 1 ]]; then
            record "$b" "rf3: produce, loadgen" "MiB/s" "$(field produce_mib_s)"
            record "$b" "rf3: produce, loadgen" "p99 ms" "$(field p99_ms)"
            record "$b" "rf3: produce, loadgen" "broker CPU s/GB" "$(per_gb "$CPU_S" "$RF3_MESSAGES")"
            record "$b" "rf3: produce, loadgen" "client CPU s/GB" "$(per_gb "$CLIENT_S" "$RF3_MESSAGES")"
        fi
    done
    # The consume rows read the first loadgen topic (RF3_MESSAGES records in RF3_PARTITIONS partitions).
    topic=rf3-lg-1
    for rep in $(seq 1 "$REPEATS"); do
        echo "==> [$b] rf3 consume run $rep/$REPEATS"
        measured "${lg[@]}" --topic "$topic" --no-produce
        [[ $RUN_OK == 1 ]] && {
            record "$b" "rf3: consume, loadgen" "MiB/s" "$(field consume_mib_s)"
            record "$b" "rf3: consume, loadgen" "broker CPU s/GB" "$(per_gb "$CPU_S" "$RF3_MESSAGES")"
            record "$b" "rf3: consume, loadgen" "client CPU s/GB" "$(per_gb "$CLIENT_S" "$RF3_MESSAGES")"
        }
        measured "${JAVA_TOOL[@]}" org.apache.kafka.tools.ConsumerPerformance --bootstrap-server "$BOOT" \
            --topic "$topic" --messages "$RF3_MESSAGES" --timeout 60000
        [[ $RUN_OK == 1 ]] && {
            record "$b" "rf3: consume, ConsumerPerformance" "fetch MB/s" "$(tail -n 1 "$RUN_OUT" | awk -F', ' '{print $9}')"
            record "$b" "rf3: consume, ConsumerPerformance" "broker CPU s/GB" "$(per_gb "$CPU_S" "$RF3_MESSAGES")"
            record "$b" "rf3: consume, ConsumerPerformance" "client CPU s/GB" "$(per_gb "$CLIENT_S" "$RF3_MESSAGES")"
        }
    done
    for rate in $E2E_RATES; do
        n=$(( rate * E2E_SECONDS ))
        for rep in $(seq 1 "$REPEATS"); do
            echo "==> [$b] rf3 end-to-end latency at $rate records/s, run $rep/$REPEATS"
            measured "${lg[@]}" --topic "rf3-e2e-$rate-$rep" --messages "$n" --rate "$rate" --linger-ms 0 --e2e --no-consume
            if [[ $RUN_OK == 1 ]]; then
                for q in p50 p99 p999; do
                    record "$b" "rf3: e2e, $rate records/s, linger.ms=0" "$q ms" "$(field "e2e_${q}_ms")"
                done
                record "$b" "rf3: e2e, $rate records/s, linger.ms=0" "records/s reached" "$(field produce_msgs_s)"
                record "$b" "rf3: e2e, $rate records/s, linger.ms=0" "produce p50 ms" "$(field p50_ms)"
                record "$b" "rf3: e2e, $rate records/s, linger.ms=0" "broker CPU s/GB" "$(per_gb "$CPU_S" "$n")"
                record "$b" "rf3: e2e, $rate records/s, linger.ms=0" "client CPU s/GB" "$(per_gb "$CLIENT_S" "$n")"
            fi
        done
    done
    stop_broker
}

# kill -9 and restart of one node holding RESTART_BYTES in RESTART_PARTITIONS partitions.
run_restart() { # kraftwerk|kafka
    local b=$1 rep n total topup avail t0 t1 lg
    n=$(( RESTART_BYTES / RESTART_SIZE ))
    topup=$(( RESTART_PARTITIONS * 10 ))
    avail=$(df --output=avail -B1 "$WORK" | tail -n 1)
    # The log, its indexes, and room for the rest of the machine.
    if (( avail < RESTART_BYTES * 5 / 4 + 1000000000 )); then
        echo "restart: $((avail / 1000000)) MB free under $WORK, $((RESTART_BYTES * 5 / 4 / 1000000 + 1000)) MB needed" \
            "for RESTART_BYTES=$RESTART_BYTES; lower it or free space" >&2
        exit 1
    fi
    echo "==> [$b] restart: filling $RESTART_PARTITIONS partitions with $n x $RESTART_SIZE B"
    start_broker "$b"
    lg=("$LOADGEN" --bootstrap "127.0.0.1:$PORT" --topic restart --size "$RESTART_SIZE" --acks 1)
    # Long linger: a thousand partitions share the producer, so batches fill up instead of going out per record.
    timeout "$CASE_TIMEOUT" "${lg[@]}" --partitions "$RESTART_PARTITIONS" --messages "$n" --linger-ms 50 \
        --no-consume >"$WORK/fill.out" 2>&1 || { tail -n 20 "$WORK/fill.out" >&2; exit 1; }
    total=$n
    record "$b" "restart: $RESTART_PARTITIONS partitions, kill -9" "GB on disk" \
        "$(du -sB1 "$BROKER_DIR/1/data" | awk '{printf "%.2f", $1 / 1e9}')"
    for rep in $(seq 1 "$REPEATS"); do
        timeout "$CASE_TIMEOUT" "${lg[@]}" --messages "$topup" --linger-ms 50 --no-consume >"$WORK/fill.out" 2>&1 ||
            { tail -n 20 "$WORK/fill.out" >&2; exit 1; }
        total=$((total + topup))
        echo "==> [$b] restart run $rep/$REPEATS: kill -9, start, wait until $RESTART_PARTITIONS partitions serve $total records"
        kill9_node 1
        t0=$(now_ms)
        restart_node 1
        if timeout "$CASE_TIMEOUT" "$LOADGEN" --bootstrap "127.0.0.1:$PORT" --topic restart --messages "$total" \
            --await-served --await-timeout-s "$CASE_TIMEOUT" >"$WORK/served.out" 2>&1; then
            t1=$(now_ms)
            record "$b" "restart: $RESTART_PARTITIONS partitions, kill -9" "start → all served, s" \
                "$(awk -v ms=$((t1 - t0)) 'BEGIN {printf "%.2f", ms / 1000}')"
        else
            echo "    FAILED: $b not serving every partition after the restart" >&2
            tail -n 5 "$WORK/served.out" >&2
            tail -n 20 "$BROKER_DIR/1/broker.log" >&2
        fi
        kill -0 "$PID" 2>/dev/null || { tail -n 40 "$BROKER_DIR/1/broker.log" >&2; exit 1; }
    done
    stop_broker
}

# The latency workload on one broker: ProducerPerformance and the loadgen at a fixed rate (the same for both
# brokers), acks=1 and acks=all in turn within each repeat, each run into a new one-partition topic that is
# deleted after it, so the disk holds one run's records at a time.
run_latency() { # kraftwerk|kafka rate
    local b=$1 rate=$2 n warm rep acks topic line w
    n=$(( rate * LATENCY_SECONDS ))
    # ProducerPerformance's first seconds (a new JVM, its client code not yet compiled) are left out of its
    # figures (--warmup-records): in them its own callbacks ran up to 2 s late, against either broker.
    warm=$(( rate * LATENCY_WARMUP_SECONDS ))
    echo "==> [$b] latency: starting"
    start_broker "$b"
    if (( WARMUP_MESSAGES > 0 )); then
        echo "==> [$b] latency warm-up (not measured): $WARMUP_MESSAGES x $SIZE B with ProducerPerformance at $rate records/s"
        timeout "$CASE_TIMEOUT" "${JAVA_TOOL[@]}" org.apache.kafka.tools.ProducerPerformance --topic latency-warmup \
            --num-records "$WARMUP_MESSAGES" --record-size "$SIZE" --throughput "$rate" \
            --producer-props bootstrap.servers="127.0.0.1:$PORT" acks=1 linger.ms=0 >/dev/null 2>&1 || true
        delete_topic latency-warmup
    fi
    for rep in $(seq 1 "$REPEATS"); do
        for acks in 1 all; do
            echo "==> [$b] latency at $rate records/s, acks=$acks, run $rep/$REPEATS: ProducerPerformance, then the loadgen, $LATENCY_SECONDS s each"
            topic=latency-pp-$acks-$rep
            w="latency: $rate records/s, acks=$acks, ProducerPerformance"
            # Created first: auto-created by the producer's first Metadata request, its first records would
            # wait for the creation (about a second, the p99 of a 30 s run), which is not produce latency.
            create_topic "$topic"
            measured "${JAVA_TOOL[@]}" org.apache.kafka.tools.ProducerPerformance --topic "$topic" \
                --num-records "$((n + warm))" --warmup-records "$warm" --record-size "$SIZE" --throughput "$rate" \
                --producer-props bootstrap.servers="127.0.0.1:$PORT" acks="$acks" linger.ms=0
            if [[ $RUN_OK == 1 ]]; then
                # The steady-state line, printed last: N steady state records sent, R records/sec (M MB/sec),
                # A ms avg latency, X ms max latency, P ms 50th, P ms 95th, P ms 99th, P ms 99.9th.
                line=$(grep 'steady state records sent' "$RUN_OUT" | tail -n 1)
                record "$b" "$w" "p50 ms" "$(sed -n 's/.* \([0-9]*\) ms 50th.*/\1/p' <<<"$line")"
                record "$b" "$w" "p99 ms" "$(sed -n 's/.* \([0-9]*\) ms 99th.*/\1/p' <<<"$line")"
                record "$b" "$w" "p99.9 ms" "$(sed -n 's/.* \([0-9]*\) ms 99\.9th.*/\1/p' <<<"$line")"
                record "$b" "$w" "max ms" "$(sed -n 's/.* \([0-9.]*\) ms max latency.*/\1/p' <<<"$line")"
                record "$b" "$w" "records/s reached" "$(sed -n 's/^[0-9]* steady state records sent, \([0-9.]*\) records\/sec.*/\1/p' <<<"$line")"
                record "$b" "$w" "broker CPU s/GB" "$(per_gb "$CPU_S" "$n")"
                record "$b" "$w" "client CPU s/GB" "$(per_gb "$CLIENT_S" "$n")"
            fi
            delete_topic "$topic"
            topic=latency-lg-$acks-$rep
            w="latency: $rate records/s, acks=$acks, loadgen"
            measured "$LOADGEN" --bootstrap "127.0.0.1:$PORT" --topic "$topic" --size "$SIZE" --acks "$acks" \
                --messages "$n" --rate "$rate" --linger-ms 0 --no-consume
            if [[ $RUN_OK == 1 ]]; then
                record "$b" "$w" "p50 ms" "$(field p50_ms)"
                record "$b" "$w" "p99 ms" "$(field p99_ms)"
                record "$b" "$w" "p99.9 ms" "$(field p999_ms)"
                record "$b" "$w" "max ms" "$(field max_ms)"
                record "$b" "$w" "records/s reached" "$(field produce_msgs_s)"
                record "$b" "$w" "broker CPU s/GB" "$(per_gb "$CPU_S" "$n")"
                record "$b" "$w" "client CPU s/GB" "$(per_gb "$CLIENT_S" "$n")"
            fi
            delete_topic "$topic"
        done
    done
    stop_broker
}
create_topic() { # topic, one partition, on the one node started
    timeout 120 "${JAVA_TOOL[@]}" org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$PORT" \
        --create --topic "$1" --partitions 1 --replication-factor 1 >"$WORK/create.out" 2>&1 ||
        { echo "    FAILED: creating topic $1" >&2; tail -n 5 "$WORK/create.out" >&2; }
}
delete_topic() { # topic, on the one node started
    timeout 120 "${JAVA_TOOL[@]}" org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$PORT" \
        --delete --topic "$1" >"$WORK/delete.out" 2>&1 ||
        { echo "    FAILED: deleting topic $1" >&2; tail -n 5 "$WORK/delete.out" >&2; }
}
# Sets LATENCY_RATE to half the slower broker's median maximum (records/s, from the latency workload's
# maximum rows) and LATENCY_SLOWER to that broker.
half_slower_max() {
    local b m min="" slow=""
    for b in $BROKERS; do
        m=$(median_of "$(stats "$b" "$LATENCY_MAX_ROW" records/s)")
        [[ $m =~ ^[0-9.]+$ ]] || { echo "no maximum rate for $b: its ProducerPerformance runs failed" >&2; exit 1; }
        if [[ -z $min ]] || awk -v a="$m" -v b="$min" 'BEGIN {exit !(a < b)}'; then min=$m; slow=$b; fi
    done
    LATENCY_SLOWER=$slow
    LATENCY_RATE=$(awk -v m="$min" 'BEGIN {printf "%d\n", m / 2}')
}

run_broker() { # kraftwerk|kafka
    local b=$1
    LOADS[$b]=$(cut -d' ' -f1 /proc/loadavg)
    if wants produce || wants consume || wants e2e || [[ $PROFILE == 1 ]] ||
        { wants latency && [[ -z $LATENCY_RATE ]]; }; then
        run_single "$b"
    fi
    wants many && run_many "$b"
    wants rf3 && run_rf3 "$b"
    wants restart && run_restart "$b"
    LOADS[$b]="${LOADS[$b]} / $(cut -d' ' -f1 /proc/loadavg)"
}

if [[ -n ${REPORT_FROM:-} ]]; then
    # Only the report, from the raw figures an earlier run left beside its report ($OUT.tsv).
    cp "$REPORT_FROM" "$RESULTS"
else
    for broker in $BROKERS; do
        run_broker "$broker"
    done
    if wants latency; then
        if [[ -n $LATENCY_RATE ]]; then
            LATENCY_NOTE="latency rows at LATENCY_RATE=$LATENCY_RATE records/s (set by hand)."
        else
            half_slower_max
            LATENCY_NOTE="latency rows at $LATENCY_RATE records/s: half the median maximum of the slower broker ($LATENCY_SLOWER)."
        fi
        for broker in $BROKERS; do
            LATENCY_LOADS[$broker]=$(cut -d' ' -f1 /proc/loadavg)
            run_latency "$broker" "$LATENCY_RATE"
            LATENCY_LOADS[$broker]="${LATENCY_LOADS[$broker]} / $(cut -d' ' -f1 /proc/loadavg)"
        done
        LATENCY_NOTE="$LATENCY_NOTE Load average (1 min) at the start / end of each broker's latency runs:"
        for broker in $BROKERS; do LATENCY_NOTE="$LATENCY_NOTE $broker ${LATENCY_LOADS[$broker]};"; done
    fi
fi
mapfile -t ORDER < <(awk -F'\t' '!seen[$2 FS $3]++ {print $2 "\t" $3}' "$RESULTS")

# --- report ---------------------------------------------------------------------------------------
{
    echo "# Data path: Kraftwerk vs Apache Kafka $KAFKA_VERSION, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo
    echo "kraftwerk commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown); $(nproc) cores;" \
        "$(java -version 2>&1 | head -n 1); Kafka heap $KAFKA_HEAP; $(kcat -V 2>&1 | grep -o 'librdkafka [0-9.]*' | head -n 1) (kcat);" \
        "one system at a time, loopback, $SIZE B records; workloads: $WORKLOADS."
    echo "One-node rows: acks=1, $MESSAGES records per produce run and in the consume topic." \
        "rf3 rows: three broker+controller nodes, RF=3, min.insync.replicas=2, acks=all, $RF3_PARTITIONS partitions," \
        "$RF3_MESSAGES records per run, broker CPU of the three nodes together." \
        "restart rows: one node, $RESTART_PARTITIONS partitions filled with $RESTART_BYTES B of $RESTART_SIZE B records," \
        "kill -9, then the time from the new process's start until ListOffsets answers every partition with all records."
    wants many && echo "many rows: $MANY_MESSAGES keyed records per run into N partitions (N of $MANY_PARTITIONS) in one" \
        "topic or in N / $MANY_TOPIC_PARTITIONS topics; each run on a fresh node, warmed up; topic creation is the time" \
        "from the first CreateTopics until Metadata shows every partition led (requests of at most 10,000 records, the" \
        "bound of Kafka's controller: a 10,000-partition topic is created with 9,999 and grown by one with" \
        "CreatePartitions; topics of 100 go 99 to a request), then until one 1-byte record written to every partition is" \
        "acknowledged (so the produce rows write into partitions that exist on disk in both systems; the consumers read" \
        "these N records too); the consumers read the loadgen's records, then" \
        "ProducerPerformance appends its own (one topic only); kcat -G subscribes to the topics as a group."
    echo "Load average (1 min) before the run: $LOAD_BEFORE; per broker at its start / end:" \
        "$(for b in $BROKERS; do printf '%s %s; ' "$b" "${LOADS[$b]:-?}"; done)"
    [[ -n $LATENCY_NOTE ]] && echo "$LATENCY_NOTE"
    echo "Median of $REPEATS runs (min–max). Broker CPU = utime + stime of the broker process across the client" \
        "run, per GB of record values; client CPU the same of the client process (bash's \`times\` of the run; a JVM" \
        "client's start and JIT included). On these two shared cores the two together bound the rate: a client" \
        "that takes the same CPU per GB against both brokers leaves a broker only its own share to win. Ratio = kraftwerk / kafka (throughput: above 1 is better; CPU and latency:" \
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
                f=$(profile_file "$b" "$label")
                echo "## perf: $b during $label (cpu-clock, 999 Hz, $PROFILE_SECONDS s)"
                echo
                echo "Self time (% of samples, dso and symbol):"
                echo
                echo '```'
                cat "$f" 2>/dev/null || echo "no profile"
                echo '```'
                echo
                echo "With children (% of samples in the symbol or what it calls; first 40):"
                echo
                echo '```'
                cat "${f%.txt}-children.txt" 2>/dev/null || echo "no profile"
                echo '```'
                echo
                echo "Folded stacks: $(basename "${f%.txt}.folded")"
            done
        done
    fi
} | tee "$OUT"
echo "written to $OUT"
