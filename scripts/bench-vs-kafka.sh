#!/usr/bin/env bash
# Side-by-side load benchmark: Kraftwerk and Apache Kafka (the 4.4 jars from tests/tools/lib) on this
# machine in the same run, with the same kraftwerk-loadgen cases, ONE BROKER AT A TIME (each is
# stopped before the other starts, so they never compete for the cores). For each broker it records
# start-to-serving time, idle RSS and peak RSS under load; for each case the throughput and latency
# figures, side by side with the ratio kraftwerk/kafka. Everything listens on loopback only, every
# run is bounded by a timeout, and the trap stops what it started and removes its temp dirs.
# Results are printed and written to ${BENCH_OUT:-target/bench/vs-kafka-<time>.md}.
#
# Environment: MESSAGES_1K (default 200000), MESSAGES_100B (default 1000000), LAT_MESSAGES_100B
# (default 1000000), LAT_MESSAGES_1K (default 500000), PARTITIONS (default 1), KAFKA_HEAP
# (default 1g), CASE_TIMEOUT (seconds per loadgen run, default 600), WARMUP_MESSAGES (default 100000:
# an unmeasured 1 KiB run on each broker before the cases, so the JVM's JIT has compiled the hot
# paths and Kafka is not measured cold; 0 skips it), REPEATS (default 3: each case runs this many
# times per broker and the run with the median produce rate is reported, since one run on a shared
# 2-core machine can be off by 20-30%).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
MESSAGES_1K=${MESSAGES_1K:-200000}
MESSAGES_100B=${MESSAGES_100B:-1000000}
LAT_MESSAGES_100B=${LAT_MESSAGES_100B:-1000000}
LAT_MESSAGES_1K=${LAT_MESSAGES_1K:-500000}
PARTITIONS=${PARTITIONS:-1}
KAFKA_HEAP=${KAFKA_HEAP:-1g}
CASE_TIMEOUT=${CASE_TIMEOUT:-600}
WARMUP_MESSAGES=${WARMUP_MESSAGES:-100000}
REPEATS=${REPEATS:-3}
OUT=${BENCH_OUT:-$ROOT/target/bench/vs-kafka-$(date +%Y%m%d-%H%M%S).md}
mkdir -p "$(dirname "$OUT")"

command -v java >/dev/null || { echo "java (17+) is needed to run Apache Kafka" >&2; exit 1; }
# --- binaries and jars ------------------------------------------------------------------------
# shellcheck source=lib/bench-common.sh
source "$ROOT/scripts/lib/bench-common.sh"

# The same fetch as tests/tools/run.sh: Maven Central into tests/tools/lib (cached in ~/.m2).
TOOLS=$ROOT/tests/tools
KAFKA_VERSION=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$TOOLS/pom.xml")
if [[ ! -f "$TOOLS/lib/kafka_2.13-$KAFKA_VERSION.jar" ]]; then
    command -v mvn >/dev/null || { echo "mvn is needed to fetch Apache Kafka $KAFKA_VERSION" >&2; exit 1; }
    echo "==> fetching Apache Kafka $KAFKA_VERSION into $TOOLS/lib"
    rm -rf "${TOOLS:?}/lib"
    (cd "$TOOLS" && mvn -B -q dependency:copy-dependencies -DoutputDirectory=lib -DincludeScope=runtime)
fi
KAFKA_CP="$TOOLS/lib/*"
# slf4j-simple is the binding in lib/; WARN keeps the broker's output to what matters.
JAVA_LOG=(-Dorg.slf4j.simpleLogger.defaultLogLevel=warn)
# The JVM flags bin/kafka-server-start.sh uses by default, so Kafka runs as operators run it.
KAFKA_JVM=(-Xms"$KAFKA_HEAP" -Xmx"$KAFKA_HEAP" -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20
    -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true)

# --- helpers ------------------------------------------------------------------------------------
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
WORK=$(mktemp -d /tmp/kraftwerk-vs-kafka.XXXXXX)
PID=""
SAMPLER=""
# Stops the broker (SIGTERM, then SIGKILL after 30 s) and the RSS sampler, whichever are running.
stop_broker() {
    if [[ -n $SAMPLER ]]; then kill "$SAMPLER" 2>/dev/null || true; wait "$SAMPLER" 2>/dev/null || true; fi
    SAMPLER=""
    if [[ -n $PID ]] && kill -0 "$PID" 2>/dev/null; then
        kill "$PID" 2>/dev/null || true
        for _ in $(seq 1 150); do kill -0 "$PID" 2>/dev/null || break; sleep 0.2; done
        kill -9 "$PID" 2>/dev/null || true
    fi
    [[ -n $PID ]] && { wait "$PID" 2>/dev/null || true; }
    PID=""
}
cleanup() {
    stop_broker
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Writes the KRaft combined-mode properties both brokers read (Kraftwerk reads Kafka's keys).
write_props() { # dir port cport
    cat >"$1/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$3
controller.listener.names=CONTROLLER
listeners=PLAINTEXT://127.0.0.1:$2,CONTROLLER://127.0.0.1:$3
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
advertised.listeners=PLAINTEXT://127.0.0.1:$2
log.dirs=$1/data
num.partitions=$PARTITIONS
default.replication.factor=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
PROPS
}

# Waits until the broker accepts TCP (START_MS) and then answers a metadata request (META_MS),
# both counted from the exec in T0. Fails if the process dies or nothing serves within 120 s.
wait_serving() { # name port logfile
    local name=$1 port=$2 log=$3
    until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
        kill -0 "$PID" 2>/dev/null || { tail -n 40 "$log"; echo "$name exited at startup" >&2; exit 1; }
        (( $(now_ms) - T0 < 120000 )) || { tail -n 40 "$log"; echo "$name not serving after 120 s" >&2; exit 1; }
        sleep 0.005
    done
    START_MS=$(( $(now_ms) - T0 ))
    until kcat -L -b "127.0.0.1:$port" -m 2 2>/dev/null | grep -q ' 1 brokers:'; do
        kill -0 "$PID" 2>/dev/null || { tail -n 40 "$log"; echo "$name exited at startup" >&2; exit 1; }
        (( $(now_ms) - T0 < 120000 )) || { tail -n 40 "$log"; echo "$name: no metadata after 120 s" >&2; exit 1; }
        sleep 0.02
    done
    META_MS=$(( $(now_ms) - T0 ))
}

declare -A R        # R[<broker>,<case>]=RESULT line
declare -A SPREAD   # SPREAD[<broker>,<case>]=min–max produce msgs/s over the repeats
declare -A STAT     # STAT[<broker>,start|meta|idle|peak|hwm]
CASES=(
    "1024 $MESSAGES_1K 1 0 5"
    "1024 $MESSAGES_1K all 0 5"
    "100 $MESSAGES_100B 1 0 5"
    "100 $MESSAGES_100B all 0 5"
    "100 $LAT_MESSAGES_100B 1 250000 0"
    "1024 $LAT_MESSAGES_1K 1 125000 0"
)

# Runs every case against the broker serving on port, then records its RSS figures.
run_cases() { # broker port
    local broker=$1 port=$2 i size messages acks rate linger line
    sleep 2
    STAT[$broker,start]=$START_MS
    STAT[$broker,meta]=$META_MS
    STAT[$broker,idle]=$(rss_kb "$PID")
    echo "$broker: TCP accept ${START_MS} ms, metadata ${META_MS} ms, idle RSS ${STAT[$broker,idle]} KiB"
    # Peak VmRSS sampled every 200 ms while the load runs (VmHWM is read at the end as well).
    local peak_file=$WORK/$broker.peak
    echo 0 >"$peak_file"
    ( max=0; while kill -0 "$PID" 2>/dev/null; do
          r=$(rss_kb "$PID"); (( r > max )) && { max=$r; echo "$max" >"$peak_file"; }
          sleep 0.2
      done ) &
    SAMPLER=$!
    if (( WARMUP_MESSAGES > 0 )); then
        echo "==> [$broker] warm-up (not measured): $WARMUP_MESSAGES x 1024 B, acks=1"
        timeout "$CASE_TIMEOUT" "$LOADGEN" --bootstrap "127.0.0.1:$port" --topic bench-warmup \
            --messages "$WARMUP_MESSAGES" --size 1024 --acks 1 --partitions "$PARTITIONS" >/dev/null 2>&1 || true
    fi
    for i in "${!CASES[@]}"; do
        read -r size messages acks rate linger <<<"${CASES[$i]}"
        local lines=() rep
        for rep in $(seq 1 "$REPEATS"); do
            echo "==> [$broker] $messages x $size B, acks=$acks, rate=$rate, linger.ms=$linger (run $rep/$REPEATS)"
            # Through a file rather than `tee /dev/stderr`: reopening /dev/stderr on a redirected log
            # file starts writing at offset 0 and overwrites what is already there.
            timeout "$CASE_TIMEOUT" "$LOADGEN" --bootstrap "127.0.0.1:$port" \
                --topic "bench-$i-${size}b-acks$acks-rate$rate-r$rep" --messages "$messages" --size "$size" \
                --acks "$acks" --rate "$rate" --linger-ms "$linger" --partitions "$PARTITIONS" \
                >"$WORK/case.out" 2>&1 || true
            cat "$WORK/case.out" >&2
            line=$(grep '^RESULT' "$WORK/case.out" || true)
            [[ -n $line ]] || line="RESULT size=$size acks=$acks rate=$rate messages=$messages errors=FAILED"
            lines+=("$line")
            kill -0 "$PID" 2>/dev/null || { echo "$broker died during the run" >&2; exit 1; }
        done
        # The run with the median produce rate, whole (so its figures belong together), and the
        # spread of produce rates over the runs.
        local sorted
        sorted=$(for line in "${lines[@]}"; do
            printf '%s %s\n' "$(sed -n 's/.* produce_msgs_s=\([0-9]*\).*/\1/p' <<<"$line")" "$line"
        done | sort -n -k1,1)
        R[$broker,$i]=$(sed -n "$(( (REPEATS + 1) / 2 ))p" <<<"$sorted" | cut -d' ' -f2-)
        SPREAD[$broker,$i]="$(head -n 1 <<<"$sorted" | cut -d' ' -f1)–$(tail -n 1 <<<"$sorted" | cut -d' ' -f1)"
    done
    STAT[$broker,peak]=$(cat "$peak_file")
    STAT[$broker,hwm]=$(hwm_kb "$PID")
}

# --- Kraftwerk --------------------------------------------------------------------------------
KW=$WORK/kraftwerk
mkdir -p "$KW"
PORT=$(free_port); CPORT=$(free_port)
while [[ $CPORT == "$PORT" ]]; do CPORT=$(free_port); done
write_props "$KW" "$PORT" "$CPORT"
"$BIN" format --config "$KW/server.properties" --cluster-id="$("$BIN" random-uuid)" >/dev/null
echo "==> starting kraftwerk on 127.0.0.1:$PORT"
T0=$(now_ms)
RUST_LOG=${RUST_LOG:-warn} "$BIN" --config "$KW/server.properties" >"$KW/broker.log" 2>&1 &
PID=$!
wait_serving kraftwerk "$PORT" "$KW/broker.log"
run_cases kraftwerk "$PORT"
stop_broker
rm -rf "$KW"

# --- Apache Kafka -------------------------------------------------------------------------------
KA=$WORK/kafka
mkdir -p "$KA"
PORT=$(free_port); CPORT=$(free_port)
while [[ $CPORT == "$PORT" ]]; do CPORT=$(free_port); done
write_props "$KA" "$PORT" "$CPORT"
KAFKA_ID=$(java "${JAVA_LOG[@]}" -cp "$KAFKA_CP" kafka.tools.StorageTool random-uuid)
java "${JAVA_LOG[@]}" -cp "$KAFKA_CP" kafka.tools.StorageTool format -t "$KAFKA_ID" \
    -c "$KA/server.properties" >"$KA/format.log" 2>&1 || { cat "$KA/format.log"; exit 1; }
echo "==> starting Apache Kafka $KAFKA_VERSION on 127.0.0.1:$PORT"
T0=$(now_ms)
# java is exec'd directly (no wrapper script), so $! is the JVM's pid for the RSS readings.
java "${KAFKA_JVM[@]}" "${JAVA_LOG[@]}" -cp "$KAFKA_CP" kafka.Kafka "$KA/server.properties" \
    >"$KA/broker.log" 2>&1 &
PID=$!
wait_serving kafka "$PORT" "$KA/broker.log"
run_cases kafka "$PORT"
stop_broker
rm -rf "$KA"

# --- report ---------------------------------------------------------------------------------------
field() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<"$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {
    if (a == "" || b == "" || a !~ /^[0-9.]+$/ || b !~ /^[0-9.]+$/ || b + 0 == 0) print "n/a";
    else if (a / b >= 0.1) printf "%.2f\n", a / b; else printf "%.4f\n", a / b }'; }
mib() { echo $(( $1 / 1024 )); }
row() { # label kraftwerk kafka
    echo "| $1 | $2 | $3 | $(ratio "$2" "$3") |"
}
{
    echo "# Kraftwerk vs Apache Kafka $KAFKA_VERSION, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo
    echo "kraftwerk commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown); $(nproc) cores;" \
         "$(java -version 2>&1 | head -n 1); Kafka heap $KAFKA_HEAP (G1, kafka-server-start.sh flags);" \
         "partitions=$PARTITIONS; one broker at a time, same kraftwerk-loadgen (librdkafka) client, loopback."
    echo "Load average before the run: $LOAD_BEFORE (other work on the machine makes the figures noisier)."
    echo "Each case ran $REPEATS times per broker; the tables show the run with the median produce rate."
    echo "Each broker got an unmeasured warm-up of $WARMUP_MESSAGES x 1 KiB first (JIT); idle RSS is read before it."
    echo "Ratio = kraftwerk / kafka: above 1 is better for throughput, below 1 is better for latency and memory."
    echo
    echo "## Process"
    echo
    echo "| metric | kraftwerk | kafka | ratio |"
    echo "|---|---|---|---|"
    row "start-to-serving, exec to TCP accept (ms)" "${STAT[kraftwerk,start]}" "${STAT[kafka,start]}"
    row "start-to-serving, exec to metadata via kcat (ms)" "${STAT[kraftwerk,meta]}" "${STAT[kafka,meta]}"
    row "idle RSS (MiB)" "$(mib "${STAT[kraftwerk,idle]}")" "$(mib "${STAT[kafka,idle]}")"
    row "peak RSS under load, sampled (MiB)" "$(mib "${STAT[kraftwerk,peak]}")" "$(mib "${STAT[kafka,peak]}")"
    row "VmHWM at end (MiB)" "$(mib "${STAT[kraftwerk,hwm]}")" "$(mib "${STAT[kafka,hwm]}")"
    for i in "${!CASES[@]}"; do
        read -r size messages acks rate linger <<<"${CASES[$i]}"
        a=${R[kraftwerk,$i]}
        b=${R[kafka,$i]}
        echo
        if [[ $rate == 0 ]]; then
            echo "## $size B, acks=$acks, max rate, linger.ms=$linger, $messages messages"
        else
            echo "## Latency: $size B, acks=$acks, $rate msgs/s, linger.ms=$linger, $messages messages"
        fi
        echo
        echo "| metric | kraftwerk | kafka | ratio |"
        echo "|---|---|---|---|"
        row "produce MiB/s" "$(field "$a" produce_mib_s)" "$(field "$b" produce_mib_s)"
        row "produce msgs/s" "$(field "$a" produce_msgs_s)" "$(field "$b" produce_msgs_s)"
        echo "| produce msgs/s, min–max of $REPEATS runs | ${SPREAD[kraftwerk,$i]} | ${SPREAD[kafka,$i]} | |"
        row "p50 ms" "$(field "$a" p50_ms)" "$(field "$b" p50_ms)"
        row "p99 ms" "$(field "$a" p99_ms)" "$(field "$b" p99_ms)"
        row "max ms" "$(field "$a" max_ms)" "$(field "$b" max_ms)"
        row "consume MiB/s" "$(field "$a" consume_mib_s)" "$(field "$b" consume_mib_s)"
        row "consume msgs/s" "$(field "$a" consume_msgs_s)" "$(field "$b" consume_msgs_s)"
        echo "| errors | $(field "$a" errors) | $(field "$b" errors) | |"
    done
} | tee "$OUT"
echo "written to $OUT"
