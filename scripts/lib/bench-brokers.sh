# Starting and stopping the brokers of the side-by-side benchmarks (sourced after bench-common.sh; expects
# $ROOT, $BIN and $WORK). Kraftwerk and Apache Kafka run the same KRaft combined-mode properties (Kraftwerk reads
# Kafka's keys), on loopback ports, from a fresh directory under $WORK; Apache Kafka runs from the 4.x jars in
# tests/tools/lib with the JVM flags of bin/kafka-server-start.sh. One system at a time: a cluster of one node
# (the single-broker workloads) or of N nodes (the replicated ones), each node a process that is both broker and
# controller, all of them voters.
#
#   start_broker kraftwerk|kafka       one node: sets PID (its process), PORT (its PLAINTEXT port), BROKER_DIR
#   start_cluster kraftwerk|kafka N    N nodes: sets PIDS[1..N], PORTS[1..N], BOOT (every node's address,
#                                      comma-separated), and PID / PORT of node 1; node i lives in $BROKER_DIR/i
#   cpu_ticks                          user + system CPU of every node so far, in clock ticks
#   kill9_node I / restart_node I      SIGKILL node I (waiting for it to exit) / start it again on its data
#   stop_broker                        SIGTERM to every node, SIGKILL after 30 s, and removes BROKER_DIR
#
# CLUSTER_PROPS: extra server.properties lines for every node (e.g. "min.insync.replicas=2").

KAFKA_HEAP=${KAFKA_HEAP:-1g}
TOOLS=$ROOT/tests/tools
KAFKA_VERSION=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$TOOLS/pom.xml")
KAFKA_CP="$TOOLS/lib/*"
# The Kafka jars, fetched from Maven Central the first time a script needs them (Kafka itself or its perf tools).
kafka_jars() {
    [[ -f "$TOOLS/lib/kafka_2.13-$KAFKA_VERSION.jar" ]] && return 0
    command -v java >/dev/null || { echo "java (17+) is needed to run Apache Kafka and its tools" >&2; exit 1; }
    command -v mvn >/dev/null || { echo "mvn is needed to fetch Apache Kafka $KAFKA_VERSION" >&2; exit 1; }
    echo "==> fetching Apache Kafka $KAFKA_VERSION into $TOOLS/lib"
    rm -rf "${TOOLS:?}/lib"
    (cd "$TOOLS" && mvn -B -q dependency:copy-dependencies -DoutputDirectory=lib -DincludeScope=runtime)
}
JAVA_LOG=(-Dorg.slf4j.simpleLogger.defaultLogLevel=warn)
KAFKA_JVM=(-Xms"$KAFKA_HEAP" -Xmx"$KAFKA_HEAP" -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20
    -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true)
CLUSTER_PROPS=${CLUSTER_PROPS:-}
PID=""
PORT=""
BOOT=""
BROKER_DIR=""
CLUSTER_KIND=""
PIDS=()
PORTS=()

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# CPU time so far (user + system, in clock ticks, threads that exited included) of every node: a node that
# is down (between kill9_node and restart_node) counts nothing.
cpu_ticks() {
    local i t=0 v
    for i in "${!PIDS[@]}"; do
        v=$(awk '{print $14 + $15}' "/proc/${PIDS[i]}/stat" 2>/dev/null || echo 0)
        t=$((t + v))
    done
    echo "$t"
}

# Starts node I's process on its formatted directory (the log is appended to across restarts).
spawn_node() {
    local i=$1 d=$BROKER_DIR/$1
    if [[ $CLUSTER_KIND == kraftwerk ]]; then
        RUST_LOG=${RUST_LOG:-warn} "$BIN" --config "$d/server.properties" >>"$d/broker.log" 2>&1 &
    else
        # java is exec'd directly (no wrapper script), so $! is the JVM's pid for the CPU readings.
        java "${KAFKA_JVM[@]}" "${JAVA_LOG[@]}" -cp "$KAFKA_CP" kafka.Kafka "$d/server.properties" \
            >>"$d/broker.log" 2>&1 &
    fi
    PIDS[i]=$!
    [[ $i == 1 ]] && PID=${PIDS[1]}
    return 0
}

start_broker() { # kraftwerk|kafka
    start_cluster "$1" 1
}

start_cluster() { # kraftwerk|kafka N
    local who=$1 n=$2 i cid voters="" d rf min_isr
    local -a cports
    [[ $who == kafka ]] && kafka_jars
    CLUSTER_KIND=$who
    BROKER_DIR=$WORK/$who
    PIDS=()
    PORTS=()
    BOOT=""
    for ((i = 1; i <= n; i++)); do
        PORTS[i]=$(free_port)
        cports[i]=$(free_port)
        voters+="${voters:+,}$i@127.0.0.1:${cports[i]}"
        BOOT+="${BOOT:+,}127.0.0.1:${PORTS[i]}"
    done
    # Two free_port calls can hand out the same port (each socket is closed before the next is bound).
    if [[ $(printf '%s\n' "${PORTS[@]}" "${cports[@]}" | sort | uniq -d) ]]; then
        start_cluster "$who" "$n"
        return
    fi
    PORT=${PORTS[1]}
    rf=$n
    min_isr=$((n > 1 ? 2 : 1))
    if [[ $who == kraftwerk ]]; then
        cid=$("$BIN" random-uuid)
    else
        cid=$(java "${JAVA_LOG[@]}" -cp "$KAFKA_CP" kafka.tools.StorageTool random-uuid)
    fi
    for ((i = 1; i <= n; i++)); do
        d=$BROKER_DIR/$i
        mkdir -p "$d"
        cat >"$d/server.properties" <<PROPS
process.roles=broker,controller
node.id=$i
controller.quorum.voters=$voters
controller.listener.names=CONTROLLER
listeners=PLAINTEXT://127.0.0.1:${PORTS[i]},CONTROLLER://127.0.0.1:${cports[i]}
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
advertised.listeners=PLAINTEXT://127.0.0.1:${PORTS[i]}
log.dirs=$d/data
num.partitions=${CLUSTER_NUM_PARTITIONS:-1}
default.replication.factor=$rf
offsets.topic.replication.factor=$rf
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$min_isr
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
$CLUSTER_PROPS
PROPS
        if [[ $who == kraftwerk ]]; then
            "$BIN" format --config "$d/server.properties" --cluster-id="$cid" >"$d/format.log" 2>&1 ||
                { cat "$d/format.log"; exit 1; }
        else
            java "${JAVA_LOG[@]}" -cp "$KAFKA_CP" kafka.tools.StorageTool format -t "$cid" \
                -c "$d/server.properties" >"$d/format.log" 2>&1 || { cat "$d/format.log"; exit 1; }
        fi
    done
    for ((i = 1; i <= n; i++)); do spawn_node "$i"; done
    await_brokers "$n" 120000
}

# Waits until Metadata through node 1 lists N brokers (or TIMEOUT_MS passed: the run stops there).
await_brokers() { # N TIMEOUT_MS
    local t0 i
    t0=$(now_ms)
    until kcat -L -b "127.0.0.1:$PORT" -m 2 2>/dev/null | grep -q " $1 brokers:"; do
        for i in "${!PIDS[@]}"; do
            kill -0 "${PIDS[i]}" 2>/dev/null || {
                tail -n 40 "$BROKER_DIR/$i/broker.log"
                echo "$CLUSTER_KIND node $i exited at startup" >&2
                exit 1
            }
        done
        (( $(now_ms) - t0 < $2 )) || {
            tail -n 40 "$BROKER_DIR/1/broker.log"
            echo "$CLUSTER_KIND: not $1 brokers serving after $(($2 / 1000)) s" >&2
            exit 1
        }
        sleep 0.1
    done
}

kill9_node() { # I
    kill -9 "${PIDS[$1]}" 2>/dev/null || true
    wait "${PIDS[$1]}" 2>/dev/null || true
}

restart_node() { # I
    spawn_node "$1"
}

stop_broker() {
    local i
    for i in "${!PIDS[@]}"; do kill "${PIDS[i]}" 2>/dev/null || true; done
    for i in "${!PIDS[@]}"; do
        for _ in $(seq 1 150); do kill -0 "${PIDS[i]}" 2>/dev/null || break; sleep 0.2; done
        kill -9 "${PIDS[i]}" 2>/dev/null || true
        wait "${PIDS[i]}" 2>/dev/null || true
    done
    PIDS=()
    PORTS=()
    PID=""
    [[ -n $BROKER_DIR ]] && rm -rf "$BROKER_DIR"
    BROKER_DIR=""
}
