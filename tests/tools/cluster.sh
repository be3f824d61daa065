#!/usr/bin/env bash
# Apache Kafka's command-line tools against a Kraftwerk cluster with separate roles: three controllers
# (process.roles=controller) and two brokers (process.roles=broker), as processes on loopback ports.
#
#   tests/tools/cluster.sh                  # uses target/debug/kraftwerk; jars as tests/tools/run.sh fetches them
#
# Checks kafka-topics and the console tools through different brokers, kafka-reassign-partitions moving a partition
# between the brokers (--execute, --verify), and kafka-metadata-quorum through a broker and straight to a controller
# listener, before and after kill -9 of the active controller. The last line is
# "N passed, M failed"; the exit status is non-zero if any check failed.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bin="${KRAFTWERK_BIN:-$root/target/debug/kraftwerk}"
step_timeout="${KRAFTWERK_TOOL_TIMEOUT:-90}"
passed=0
failed=0
failures=()

die() {
  echo "cluster.sh: $*" >&2
  echo "0 passed, 1 failed"
  exit 1
}
[[ -x "$bin" ]] || die "no kraftwerk binary at $bin"
command -v java >/dev/null || die "java is not installed"
[[ -n "$(ls "$here"/lib/kafka-tools-*.jar 2>/dev/null)" ]] || die "no Kafka tools in $here/lib: run tests/tools/run.sh first (it fetches them)"

work="$(mktemp -d -t kraftwerk-cluster-tools-XXXXXX)"
declare -A pid
cleanup() {
  for n in "${!pid[@]}"; do kill -9 "${pid[$n]}" 2>/dev/null; done
  wait 2>/dev/null
  if [[ -z "${KRAFTWERK_KEEP_TEST_DIRS:-}" ]]; then rm -rf "$work"; else echo "kept $work"; fi
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
declare -A port
for n in 1 2 3 100 101; do port[$n]="$(free_port)"; done
voters="1@127.0.0.1:${port[1]},2@127.0.0.1:${port[2]},3@127.0.0.1:${port[3]}"
cluster_id="$("$bin" random-uuid)" || die "random-uuid failed"
for n in 1 2 3 100 101; do
  mkdir -p "$work/$n"
  if [[ $n -lt 100 ]]; then
    roles=controller
    listeners="CONTROLLER://127.0.0.1:${port[$n]}"
  else
    roles=broker
    listeners="PLAINTEXT://127.0.0.1:${port[$n]}"
  fi
  cat >"$work/$n/server.properties" <<EOF
process.roles=$roles
node.id=$n
controller.quorum.voters=$voters
controller.listener.names=CONTROLLER
listeners=$listeners
log.dirs=$work/$n/data
controller.quorum.election.timeout.ms=500
broker.session.timeout.ms=3000
broker.heartbeat.interval.ms=500
offsets.topic.replication.factor=2
group.initial.rebalance.delay.ms=0
EOF
  "$bin" format --config "$work/$n/server.properties" --cluster-id="$cluster_id" >"$work/$n/format.log" 2>&1 ||
    die "format of node $n failed: $(cat "$work/$n/format.log")"
done
start_node() {
  NO_COLOR=1 RUST_LOG=info "$bin" --config "$work/$1/server.properties" >>"$work/$1/kraftwerk.log" 2>&1 &
  pid[$1]=$!
}
for n in 1 2 3 100 101; do start_node "$n"; done
for n in 100 101; do
  for _ in $(seq 1 600); do
    (exec 3<>"/dev/tcp/127.0.0.1/${port[$n]}") 2>/dev/null && break
    kill -0 "${pid[$n]}" 2>/dev/null || die "broker $n exited: $(tail -n 20 "$work/$n/kraftwerk.log")"
    sleep 0.1
  done
done
echo "3 controllers and 2 brokers up in $work"

java_opts=(-Xms64m -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Dorg.slf4j.simpleLogger.defaultLogLevel=warn)
out="$work/out"
err="$work/err"
rc=0
# run CLASS ARGS... — one tool run; stdout in $out, stderr in $err, status in $rc.
run() {
  local class="$1"
  shift
  timeout "$step_timeout" java "${java_opts[@]}" -cp "$here/lib/*" "$class" "$@" >"$out" 2>"$err" </dev/null
  rc=$?
}
topics() { run org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$1" "${@:2}"; }
quorum() { run org.apache.kafka.tools.MetadataQuorumCommand "$@"; }
check() {
  local name="$1" what="$2"
  shift 2
  if [[ $rc -ne 0 ]]; then
    failed=$((failed + 1)); failures+=("$name")
    echo "FAIL $name: tool exited with $rc"; sed -n '1,12p' "$err" | sed 's/^/  | /'
  elif "$@"; then
    passed=$((passed + 1)); echo "ok   $name"
  else
    failed=$((failed + 1)); failures+=("$name")
    echo "FAIL $name: $what"; sed -n '1,20p' "$out" | sed 's/^/  | /'
    echo "  --- stderr:"; grep -v '^\s*at ' "$err" | sed -n '1,15p' | sed 's/^/  | /'
  fi
}
has() { grep -qE -- "$1" "$out"; }
leader_id() { sed -n -E 's/^LeaderId:\s+([0-9]+)$/\1/p' "$out"; }

# Topics through one broker, described through the other (forwarded to the active controller).
topics "${port[100]}" --create --topic cluster-topic --partitions 6 --replication-factor 2
check "kafka-topics --create through broker 100" "expected 'Created topic cluster-topic.'" has '^Created topic cluster-topic\.$'
topics "${port[101]}" --describe --topic cluster-topic
check "kafka-topics --describe through broker 101" "expected 6 partitions, RF 2, leaders on brokers 100 and 101" \
  bash -c "grep -q 'PartitionCount: 6' '$out' && grep -q 'ReplicationFactor: 2' '$out' &&
    grep -qE 'Leader: 100' '$out' && grep -qE 'Leader: 101' '$out'"

# Produce through one broker, consume through the other.
for i in $(seq 1 20); do echo "cluster line $i"; done >"$work/input.txt"
timeout "$step_timeout" java "${java_opts[@]}" -cp "$here/lib/*" org.apache.kafka.tools.ConsoleProducer \
  --bootstrap-server "127.0.0.1:${port[100]}" --topic cluster-topic <"$work/input.txt" >"$out" 2>"$err"
rc=$?
check "kafka-console-producer through broker 100" "producer failed" true
run org.apache.kafka.tools.consumer.ConsoleConsumer --bootstrap-server "127.0.0.1:${port[101]}" --topic cluster-topic \
  --from-beginning --max-messages 20 --timeout-ms 30000 --command-property group.protocol=classic
check "kafka-console-consumer through broker 101" "expected the 20 lines back" \
  diff <(sort "$work/input.txt") <(sort "$out")

# The quorum, through a broker and straight to a controller listener.
quorum --bootstrap-server "127.0.0.1:${port[100]}" describe --status
check "kafka-metadata-quorum describe --status (broker)" "expected a leader among 1-3, three voters, brokers 100 and 101 as observers" \
  bash -c "grep -qE '^LeaderId:\s+[123]$' '$out' && grep -q '$cluster_id' '$out' &&
    grep -qE '^CurrentVoters:.*\"id\": 1.*\"id\": 2.*\"id\": 3' '$out' &&
    grep -qE '^CurrentObservers:.*\"id\": 100' '$out' && grep -qE '^CurrentObservers:.*\"id\": 101' '$out'"
first_leader="$(leader_id)"
quorum --bootstrap-server "127.0.0.1:${port[101]}" describe --replication
check "kafka-metadata-quorum describe --replication (broker)" "expected one Leader, two Followers and two Observers" \
  bash -c "[[ \$(grep -cE '\sLeader\s*$' '$out') -eq 1 && \$(grep -cE '\sFollower\s*$' '$out') -eq 2 &&
    \$(grep -cE '\sObserver\s*$' '$out') -eq 2 ]]"
quorum --bootstrap-controller "127.0.0.1:${port[2]}" describe --status
check "kafka-metadata-quorum --bootstrap-controller describe --status" "expected the same leader ($first_leader)" \
  bash -c "grep -qE '^LeaderId:\s+$first_leader$' '$out'"

# Move a partition with kafka-reassign-partitions: "moving" lives on broker 100 only, holds 20 records, and is
# reassigned to broker 101; --verify is repeated until it reports completion, then the records are read back from
# 101 and broker 100's directory for the partition must be gone.
topics "${port[100]}" --create --topic moving --replica-assignment 100
check "kafka-topics --create moving on broker 100" "expected 'Created topic moving.'" has '^Created topic moving\.$'
for i in $(seq 1 20); do echo "moving line $i"; done >"$work/moving.txt"
timeout "$step_timeout" java "${java_opts[@]}" -cp "$here/lib/*" org.apache.kafka.tools.ConsoleProducer \
  --bootstrap-server "127.0.0.1:${port[100]}" --topic moving --command-property acks=all <"$work/moving.txt" >"$out" 2>"$err"
rc=$?
check "kafka-console-producer to moving" "producer failed" true
echo '{"version":1,"partitions":[{"topic":"moving","partition":0,"replicas":[101],"log_dirs":["any"]}]}' \
  >"$work/reassign.json"
reassign() {
  run org.apache.kafka.tools.reassign.ReassignPartitionsCommand --bootstrap-server "127.0.0.1:${port[101]}" \
    --reassignment-json-file "$work/reassign.json" "$@"
}
reassign --execute
check "kafka-reassign-partitions --execute" "expected the current assignment (100) and 'Successfully started'" \
  bash -c "grep -q '\"replicas\":\[100\]' '$out' &&
    grep -q '^Successfully started partition reassignment for moving-0$' '$out'"
for _ in $(seq 1 60); do
  reassign --verify
  [[ $rc -eq 0 ]] && has '^Reassignment of partition moving-0 is completed\.$' && break
  sleep 1
done
check "kafka-reassign-partitions --verify" "expected 'Reassignment of partition moving-0 is completed.'" \
  has '^Reassignment of partition moving-0 is completed\.$'
run org.apache.kafka.tools.reassign.ReassignPartitionsCommand --bootstrap-server "127.0.0.1:${port[100]}" --list
check "kafka-reassign-partitions --list after the move" "expected 'No partition reassignments found.'" \
  has '^No partition reassignments found\.$'
topics "${port[100]}" --describe --topic moving
check "kafka-topics --describe moving after the move" "expected Leader: 101, Replicas: 101, Isr: 101" \
  has 'Leader: 101\s+Replicas: 101\s+Isr: 101'
run org.apache.kafka.tools.consumer.ConsoleConsumer --bootstrap-server "127.0.0.1:${port[100]}" --topic moving \
  --from-beginning --max-messages 20 --timeout-ms 30000 --command-property group.protocol=classic
check "kafka-console-consumer reads moving from broker 101" "expected the 20 lines back" \
  diff "$work/moving.txt" "$out"
for _ in $(seq 1 50); do [[ -d "$work/100/data/moving-0" ]] || break; sleep 0.2; done
rc=0
check "broker 100 deleted its copy of moving-0" "$work/100/data/moving-0 still exists" \
  bash -c "[[ ! -d '$work/100/data/moving-0' && -d '$work/101/data/moving-0' ]]"

# Kill -9 the active controller: another takes over and the tools keep working.
if [[ -n "$first_leader" ]]; then
  kill -9 "${pid[$first_leader]}" 2>/dev/null
  wait "${pid[$first_leader]}" 2>/dev/null
  unset "pid[$first_leader]"
  for _ in $(seq 1 60); do
    quorum --bootstrap-server "127.0.0.1:${port[100]}" describe --status
    new_leader="$(leader_id)"
    [[ $rc -eq 0 && -n "$new_leader" && "$new_leader" != "$first_leader" ]] && break
    sleep 0.5
  done
  check "kafka-metadata-quorum after kill -9 of controller $first_leader" "expected a new leader" \
    bash -c "[[ -n '$new_leader' && '$new_leader' != '$first_leader' ]]"
  topics "${port[101]}" --create --topic after-failover --partitions 2 --replication-factor 2
  check "kafka-topics --create after the failover" "expected 'Created topic after-failover.'" has '^Created topic after-failover\.$'
  topics "${port[100]}" --list
  check "kafka-topics --list after the failover" "expected both topics" \
    bash -c "grep -q '^cluster-topic$' '$out' && grep -q '^after-failover$' '$out'"
fi

for n in "${!pid[@]}"; do
  kill -0 "${pid[$n]}" 2>/dev/null || { failed=$((failed + 1)); failures+=("node $n alive"); echo "FAIL node $n died"; }
done
if [[ $failed -gt 0 ]]; then
  for n in 1 2 3 100 101; do
    echo "--- node $n log tail:"
    sed 's/\x1b\[[0-9;]*m//g' "$work/$n/kraftwerk.log" | grep -v ' raft:' | tail -n 12
  done
  echo "failed checks:"
  printf '  %s\n' "${failures[@]}"
fi
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
