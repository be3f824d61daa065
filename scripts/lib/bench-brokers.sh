# Starting and stopping one broker at a time for the side-by-side benchmarks (sourced after bench-common.sh;
# expects $ROOT, $BIN and $WORK). Both brokers run the same KRaft combined-mode properties (Kraftwerk reads
# Kafka's keys), on loopback ports, from a fresh directory under $WORK; Apache Kafka runs from the 4.x jars in
# tests/tools/lib with the JVM flags of bin/kafka-server-start.sh.
#
#   start_broker kraftwerk|kafka   sets PID (the broker process), PORT (its PLAINTEXT port), BROKER_DIR
#   stop_broker                    SIGTERM, SIGKILL after 30 s, and removes BROKER_DIR

KAFKA_HEAP=${KAFKA_HEAP:-1g}
TOOLS=$ROOT/tests/tools
KAFKA_VERSION=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$TOOLS/pom.xml")
if [[ ! -f "$TOOLS/lib/kafka_2.13-$KAFKA_VERSION.jar" ]]; then
    command -v mvn >/dev/null || { echo "mvn is needed to fetch Apache Kafka $KAFKA_VERSION" >&2; exit 1; }
    echo "==> fetching Apache Kafka $KAFKA_VERSION into $TOOLS/lib"
    rm -rf "${TOOLS:?}/lib"
    (cd "$TOOLS" && mvn -B -q dependency:copy-dependencies -DoutputDirectory=lib -DincludeScope=runtime)
fi
KAFKA_CP="$TOOLS/lib/*"
JAVA_LOG=(-Dorg.slf4j.simpleLogger.defaultLogLevel=warn)
KAFKA_JVM=(-Xms"$KAFKA_HEAP" -Xmx"$KAFKA_HEAP" -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20
    -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true)
PID=""
PORT=""
BROKER_DIR=""

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# Broker CPU time so far (user + system, in clock ticks, threads that exited included).
cpu_ticks() { awk '{print $14 + $15}' "/proc/$PID/stat"; }

start_broker() { # kraftwerk|kafka
    local who=$1 cport
    BROKER_DIR=$WORK/$who
    mkdir -p "$BROKER_DIR"
    PORT=$(free_port); cport=$(free_port)
    while [[ $cport == "$PORT" ]]; do cport=$(free_port); done
    cat >"$BROKER_DIR/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
controller.listener.names=CONTROLLER
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$cport
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
log.dirs=$BROKER_DIR/data
num.partitions=1
default.replication.factor=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
PROPS
    if [[ $who == kraftwerk ]]; then
        "$BIN" format --config "$BROKER_DIR/server.properties" --cluster-id="$("$BIN" random-uuid)" >/dev/null
        RUST_LOG=${RUST_LOG:-warn} "$BIN" --config "$BROKER_DIR/server.properties" >"$BROKER_DIR/broker.log" 2>&1 &
    else
        local id
        id=$(java "${JAVA_LOG[@]}" -cp "$KAFKA_CP" kafka.tools.StorageTool random-uuid)
        java "${JAVA_LOG[@]}" -cp "$KAFKA_CP" kafka.tools.StorageTool format -t "$id" \
            -c "$BROKER_DIR/server.properties" >"$BROKER_DIR/format.log" 2>&1 || { cat "$BROKER_DIR/format.log"; exit 1; }
        # java is exec'd directly (no wrapper script), so $! is the JVM's pid for the CPU readings.
        java "${KAFKA_JVM[@]}" "${JAVA_LOG[@]}" -cp "$KAFKA_CP" kafka.Kafka "$BROKER_DIR/server.properties" \
            >"$BROKER_DIR/broker.log" 2>&1 &
    fi
    PID=$!
    local t0
    t0=$(now_ms)
    until kcat -L -b "127.0.0.1:$PORT" -m 2 2>/dev/null | grep -q ' 1 brokers:'; do
        kill -0 "$PID" 2>/dev/null || { tail -n 40 "$BROKER_DIR/broker.log"; echo "$who exited at startup" >&2; exit 1; }
        (( $(now_ms) - t0 < 120000 )) || { tail -n 40 "$BROKER_DIR/broker.log"; echo "$who not serving after 120 s" >&2; exit 1; }
        sleep 0.1
    done
}

stop_broker() {
    if [[ -n $PID ]] && kill -0 "$PID" 2>/dev/null; then
        kill "$PID" 2>/dev/null || true
        for _ in $(seq 1 150); do kill -0 "$PID" 2>/dev/null || break; sleep 0.2; done
        kill -9 "$PID" 2>/dev/null || true
    fi
    [[ -n $PID ]] && { wait "$PID" 2>/dev/null || true; }
    PID=""
    [[ -n $BROKER_DIR ]] && rm -rf "$BROKER_DIR"
    BROKER_DIR=""
}
