#!/usr/bin/env bash
# The cost of TLS on this machine: one release kraftwerk with a PLAINTEXT, an SSL and a SASL_SSL (PLAIN) listener
# (a certificate made here with openssl), Apache Kafka's own perf tools (kafka-producer-perf-test / kafka-consumer-perf-test,
# the Java client, from tests/tools/lib) producing and consuming 1 KiB records over each, and full TLS
# handshakes per second with `openssl s_time`. Results are printed and written to
# ${BENCH_OUT:-target/bench/tls-<time>.md}.
#
# Environment: RECORDS (default 500000), REPEAT (default 1: runs per listener, the median is reported).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
RECORDS=${RECORDS:-500000}
REPEAT=${REPEAT:-1}
OUT=${BENCH_OUT:-$ROOT/target/bench/tls-$(date +%Y%m%d-%H%M%S).md}
mkdir -p "$(dirname "$OUT")"

# shellcheck source=lib/bench-common.sh
source "$ROOT/scripts/lib/bench-common.sh"

LIB=$ROOT/tests/tools/lib
if ! ls "$LIB"/kafka-tools-*.jar >/dev/null 2>&1; then
    echo "fetching Apache Kafka's tools into $LIB"
    (cd "$ROOT/tests/tools" && mvn -B -q dependency:copy-dependencies -DoutputDirectory=lib -DincludeScope=runtime)
fi

DIR=$(mktemp -d /tmp/kraftwerk-bench-tls.XXXXXX)
PID=""
cleanup() {
    [[ -n $PID ]] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
    rm -rf "$DIR"
}
trap cleanup EXIT

openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1" \
    -keyout "$DIR/key.pem" -out "$DIR/cert.pem" 2>/dev/null
cat "$DIR/key.pem" "$DIR/cert.pem" >"$DIR/broker.pem"
keytool -importcert -noprompt -alias broker -file "$DIR/cert.pem" -storetype PKCS12 \
    -keystore "$DIR/client.truststore.p12" -storepass changeit >/dev/null 2>&1

PORT=$(free_port)
SSL_PORT=$(free_port)
SASL_PORT=$(free_port)
CPORT=$(free_port)
cat >"$DIR/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CPORT
controller.listener.names=CONTROLLER
listeners=PLAINTEXT://127.0.0.1:$PORT,SSL://127.0.0.1:$SSL_PORT,SASL_SSL://127.0.0.1:$SASL_PORT,CONTROLLER://127.0.0.1:$CPORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT,SSL://127.0.0.1:$SSL_PORT,SASL_SSL://127.0.0.1:$SASL_PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT
sasl.enabled.mechanisms=PLAIN
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_bench="bench-secret";
inter.broker.listener.name=PLAINTEXT
ssl.keystore.type=PEM
ssl.keystore.location=$DIR/broker.pem
log.dirs=$DIR/data
offsets.topic.replication.factor=1
PROPS
"$BIN" format --config "$DIR/server.properties" --cluster-id "$("$BIN" random-uuid)" >/dev/null
RUST_LOG=${RUST_LOG:-warn} "$BIN" --config "$DIR/server.properties" >"$DIR/kraftwerk.log" 2>&1 &
PID=$!
until (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; do
    kill -0 "$PID" 2>/dev/null || { cat "$DIR/kraftwerk.log"; exit 1; }
    sleep 0.05
done

cat >"$DIR/ssl.properties" <<PROPS
security.protocol=SSL
ssl.truststore.type=PKCS12
ssl.truststore.location=$DIR/client.truststore.p12
ssl.truststore.password=changeit
PROPS
cat "$DIR/ssl.properties" >"$DIR/sasl.properties"
cat >>"$DIR/sasl.properties" <<PROPS
security.protocol=SASL_SSL
sasl.mechanism=PLAIN
sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="bench" password="bench-secret";
PROPS
: >"$DIR/plain.properties"

JAVA=(java -Xms256m -Xmx1g -cp "$LIB/*" -Dorg.slf4j.simpleLogger.defaultLogLevel=warn)
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
declare -A PRODUCE CONSUME
for listener in plain ssl sasl; do
    case $listener in
        ssl) boot=127.0.0.1:$SSL_PORT ;;
        sasl) boot=127.0.0.1:$SASL_PORT ;;
        *) boot=127.0.0.1:$PORT ;;
    esac
    p=() c=()
    for ((run = 1; run <= REPEAT; run++)); do
        topic=perf-$listener-$run
        echo "==> $listener run $run: produce $RECORDS x 1 KiB (acks=1)"
        line=$("${JAVA[@]}" org.apache.kafka.tools.ProducerPerformance --topic "$topic" --num-records "$RECORDS" \
            --record-size 1024 --throughput -1 --producer.config "$DIR/$listener.properties" \
            --producer-props bootstrap.servers="$boot" acks=1 linger.ms=5 batch.size=131072 | tail -1)
        echo "$line"
        p+=("$(sed -n 's/.*(\([0-9.]*\) MB\/sec).*/\1/p' <<<"$line")")
        echo "==> $listener run $run: consume"
        line=$("${JAVA[@]}" org.apache.kafka.tools.ConsumerPerformance --bootstrap-server "$boot" --topic "$topic" \
            --messages "$RECORDS" --command-config "$DIR/$listener.properties" --timeout 60000 | tail -1)
        echo "$line"
        # start.time, end.time, data.consumed.in.MB, MB.sec, ...
        c+=("$(awk -F', ' '{print $4}' <<<"$line")")
    done
    PRODUCE[$listener]=$(printf '%s\n' "${p[@]}" | median)
    CONSUME[$listener]=$(printf '%s\n' "${c[@]}" | median)
done

echo "==> TLS handshakes: openssl s_time, new session each time, 10 s"
HS=$(openssl s_time -connect "127.0.0.1:$SSL_PORT" -new -time 10 2>/dev/null |
    sed -n 's/.*connections in [0-9.]*s; \([0-9.]*\) connections\/user sec.*/\1/p' | head -1)
HS_WALL=$(openssl s_time -connect "127.0.0.1:$SSL_PORT" -new -time 10 2>/dev/null |
    sed -n 's/^\([0-9]*\) connections in \([0-9]*\) real seconds.*/\1 \2/p' | head -1)

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", (b > 0) ? a / b : 0}'; }
{
    echo "# TLS cost: 1 KiB records over SSL vs PLAINTEXT, one kraftwerk ($(date -u +%Y-%m-%dT%H:%M:%SZ))"
    echo
    echo "commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown), $(nproc) cores; Apache Kafka's perf tools" \
        "(Java client) on the same machine; $RECORDS records per run, median of $REPEAT"
    echo
    echo "| listener | produce MB/s | consume MB/s |"
    echo "|---|---|---|"
    echo "| PLAINTEXT | ${PRODUCE[plain]} | ${CONSUME[plain]} |"
    echo "| SSL (TLS 1.3, rustls) | ${PRODUCE[ssl]} | ${CONSUME[ssl]} |"
    echo "| SASL_SSL (PLAIN) | ${PRODUCE[sasl]} | ${CONSUME[sasl]} |"
    echo "| SSL / PLAINTEXT | $(ratio "${PRODUCE[ssl]}" "${PRODUCE[plain]}") | $(ratio "${CONSUME[ssl]}" "${CONSUME[plain]}") |"
    echo "| SASL_SSL / PLAINTEXT | $(ratio "${PRODUCE[sasl]}" "${PRODUCE[plain]}") | $(ratio "${CONSUME[sasl]}" "${CONSUME[plain]}") |"
    echo
    echo "Full TLS handshakes (openssl s_time -new, RSA 2048): ${HS:-?} per client CPU second;" \
        "${HS_WALL:-?} (connections, wall seconds)."
} | tee "$OUT"
echo "written to $OUT"
