#!/usr/bin/env bash
# Drives a fresh kraftwerk with the Apache Kafka command-line tools (kafka-topics,
# kafka-console-producer/consumer, kafka-consumer-groups, kafka-configs) and checks what they
# print, the way an operator would use them; then stops it and reads its metadata log (and a
# Kraftwerk snapshot file) with kafka-dump-log and kafka-metadata-shell. The tools come from Maven Central (pom.xml here)
# into lib/ on first use; jars are cached in ~/.m2 and never committed.
#
#   tests/tools/run.sh                      # uses target/debug/kraftwerk
#   KRAFTWERK_BIN=/path/to/kraftwerk tests/tools/run.sh
#
# Every check runs even if an earlier one failed (a missing API fails only the checks that need
# it). The last line is "N passed, M failed"; the exit status is non-zero if any check failed.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bin="${KRAFTWERK_BIN:-$root/target/debug/kraftwerk}"
# One tool invocation may not take longer than this (a request the broker ignores).
step_timeout="${KRAFTWERK_TOOL_TIMEOUT:-90}"

passed=0
failed=0
failures=()

die() {
  echo "run.sh: $*" >&2
  echo "0 passed, 1 failed"
  exit 1
}

[[ -x "$bin" ]] || die "no kraftwerk binary at $bin (build it, or set KRAFTWERK_BIN)"
command -v java >/dev/null || die "java is not installed"

# --- the tools' jars -------------------------------------------------------------------------
kafka_version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/pom.xml")"
if [[ ! -f "$here/lib/kafka-tools-$kafka_version.jar" ]]; then
  command -v mvn >/dev/null || die "mvn is needed to fetch the Kafka tools"
  echo "fetching Apache Kafka $kafka_version tools into $here/lib"
  rm -rf "${here:?}/lib"
  (cd "$here" && mvn -B -q dependency:copy-dependencies -DoutputDirectory=lib -DincludeScope=runtime) ||
    die "mvn dependency:copy-dependencies failed"
fi

shell_version="$(sed -n 's:.*<kafka.shell.version>\(.*\)</kafka.shell.version>.*:\1:p' "$here/pom-shell.xml")"
if [[ ! -f "$here/lib-shell/kafka-shell-$shell_version.jar" ]]; then
  command -v mvn >/dev/null || die "mvn is needed to fetch kafka-metadata-shell"
  echo "fetching kafka-metadata-shell $shell_version into $here/lib-shell"
  rm -rf "${here:?}/lib-shell"
  (cd "$here" && mvn -B -q -f pom-shell.xml dependency:copy-dependencies -DoutputDirectory=lib-shell \
    -DincludeScope=runtime) || die "mvn dependency:copy-dependencies (pom-shell.xml) failed"
fi

# --- a broker on free ports in a temp dir --------------------------------------------------------
work="$(mktemp -d -t kraftwerk-tools-XXXXXX)"
broker_pid=""
controller2_pid=""
cleanup() {
  if [[ -n "$controller2_pid" ]] && kill -0 "$controller2_pid" 2>/dev/null; then
    kill -9 "$controller2_pid" 2>/dev/null
    wait "$controller2_pid" 2>/dev/null
  fi
  if [[ -n "$broker_pid" ]] && kill -0 "$broker_pid" 2>/dev/null; then
    kill "$broker_pid" 2>/dev/null
    for _ in $(seq 1 100); do kill -0 "$broker_pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$broker_pid" 2>/dev/null
    wait "$broker_pid" 2>/dev/null
  fi
  if [[ -z "${KRAFTWERK_KEEP_TEST_DIRS:-}" ]]; then rm -rf "$work"; else echo "kept $work"; fi
}
trap cleanup EXIT

# A port nothing listens on: the kernel's choice via python3, else a random one that refuses.
free_port() {
  if command -v python3 >/dev/null; then
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
    return
  fi
  local p
  while :; do
    p=$((20000 + RANDOM % 40000))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
}
port="$(free_port)"
cport="$(free_port)"
while [[ "$cport" == "$port" ]]; do cport="$(free_port)"; done
cat >"$work/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
controller.listener.names=CONTROLLER
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$work/data
offsets.topic.replication.factor=1
group.initial.rebalance.delay.ms=0
# The tools connect as User:ANONYMOUS over PLAINTEXT: a super user may do everything, and with an
# authorizer configured kafka-acls can manage ACLs.
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:ANONYMOUS
EOF
cluster_id="$("$bin" random-uuid)" || die "$bin random-uuid failed"
# "--cluster-id=<id>": a base64 id may start with '-', which a separate argument would turn into
# an unknown flag.
"$bin" format --config "$work/server.properties" --cluster-id="$cluster_id" >"$work/format.log" 2>&1 ||
  die "format failed: $(cat "$work/format.log")"
NO_COLOR=1 RUST_LOG="${RUST_LOG:-info}" "$bin" --config "$work/server.properties" >"$work/broker.log" 2>&1 &
broker_pid=$!
bootstrap="127.0.0.1:$port"
for _ in $(seq 1 600); do
  kill -0 "$broker_pid" 2>/dev/null || die "kraftwerk exited at startup: $(tail -n 40 "$work/broker.log")"
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done
(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || die "kraftwerk did not listen on $bootstrap"
echo "kraftwerk listening on $bootstrap (log: $work/broker.log)"

# --- running tools and checking what they print ------------------------------------------------
# Quick JVM start-up for short-lived tools; client logs at WARN on stderr.
java_opts=(-Xms64m -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1
  -Dorg.slf4j.simpleLogger.defaultLogLevel=warn)
declare -A main_class=(
  [kafka-topics]=org.apache.kafka.tools.TopicCommand
  [kafka-console-producer]=org.apache.kafka.tools.ConsoleProducer
  [kafka-console-consumer]=org.apache.kafka.tools.consumer.ConsoleConsumer
  [kafka-consumer-groups]=org.apache.kafka.tools.consumer.group.ConsumerGroupCommand
  [kafka-configs]=org.apache.kafka.tools.ConfigCommand
  [kafka-metadata-quorum]=org.apache.kafka.tools.MetadataQuorumCommand
  [kafka-acls]=org.apache.kafka.tools.AclCommand
  [kafka-features]=org.apache.kafka.tools.FeatureCommand
)

out="$work/out"
err="$work/err"
rc=0
# tool NAME ARGS... — runs a tool against the broker; stdout in $out, stderr in $err, status in $rc.
tool() {
  local name="$1"
  shift
  timeout "$step_timeout" java "${java_opts[@]}" -cp "$here/lib/*" "${main_class[$name]}" \
    --bootstrap-server "$bootstrap" "$@" >"$out" 2>"$err" </dev/null
  rc=$?
}
# tool_stdin NAME FILE ARGS... — as tool, with FILE on stdin.
tool_stdin() {
  local name="$1" input="$2"
  shift 2
  timeout "$step_timeout" java "${java_opts[@]}" -cp "$here/lib/*" "${main_class[$name]}" \
    --bootstrap-server "$bootstrap" "$@" >"$out" 2>"$err" <"$input"
  rc=$?
}

ok() {
  passed=$((passed + 1))
  echo "ok   $1"
}
fail() {
  failed=$((failed + 1))
  failures+=("$1")
  echo "FAIL $1: $2"
  echo "  --- stdout:"; sed -n '1,20p' "$out" | sed 's/^/  | /'
  echo "  --- stderr:"; grep -v '^\s*at ' "$err" | sed -n '1,12p' | sed 's/^/  | /'
}
# check NAME CONDITION-DESCRIPTION COMMAND... — a check passes when the tool exited 0 and COMMAND succeeds.
check() {
  local name="$1" what="$2"
  shift 2
  if [[ $rc -ne 0 ]]; then
    fail "$name" "tool exited with $rc (124 = timed out after ${step_timeout}s)"
  elif "$@"; then
    ok "$name"
  else
    fail "$name" "$what"
  fi
}
has() { grep -qE -- "$1" "$out"; }
lacks() { ! grep -qE -- "$1" "$out"; }

topic=cli-topic
group=cli-group
classic=(--command-property group.protocol=classic)

# kafka-acls ----------------------------------------------------------------------------------
tool kafka-acls --add --allow-principal User:alice --operation Read --operation Write \
  --topic acl- --resource-pattern-type prefixed
check "kafka-acls --add" "expected the ACLs for the prefixed resource acl- to be listed" \
  has "resourceType=TOPIC, name=acl-, patternType=PREFIXED"
tool kafka-acls --list --topic acl-topic --resource-pattern-type match
check "kafka-acls --list --resource-pattern-type match" \
  "expected User:alice with READ and WRITE on the prefix acl-" \
  bash -c "grep -q 'principal=User:alice, host=\*, operation=READ, permissionType=ALLOW' '$out' &&
    grep -q 'operation=WRITE' '$out' && grep -q 'name=acl-, patternType=PREFIXED' '$out'"
tool kafka-acls --remove --force --allow-principal User:alice --operation Write \
  --topic acl- --resource-pattern-type prefixed
check "kafka-acls --remove" "remove failed" true
tool kafka-acls --list --topic acl- --resource-pattern-type prefixed
check "kafka-acls --list after --remove" "expected READ left and WRITE gone" \
  bash -c "grep -q 'operation=READ' '$out' && ! grep -q 'operation=WRITE' '$out'"

# kafka-topics --------------------------------------------------------------------------------
tool kafka-topics --create --topic "$topic" --partitions 2 --replication-factor 1
check "kafka-topics --create" "expected 'Created topic $topic.'" has "^Created topic $topic\.$"

tool kafka-topics --list
check "kafka-topics --list" "expected a line '$topic'" has "^$topic$"

tool kafka-topics --describe --topic "$topic"
check "kafka-topics --describe" "expected PartitionCount: 2, ReplicationFactor: 1, partitions 0 and 1 led by node 1" \
  bash -c "grep -q 'PartitionCount: 2' '$out' && grep -q 'ReplicationFactor: 1' '$out' &&
    [[ \$(grep -cE 'Partition: [01]\s+Leader: 1\s+Replicas: 1\s+Isr: 1' '$out') -eq 2 ]]"

tool kafka-topics --alter --topic "$topic" --partitions 3
check "kafka-topics --alter --partitions 3" "alter failed" true
tool kafka-topics --describe --topic "$topic"
check "kafka-topics --describe after --alter" "expected PartitionCount: 3 and a partition 2 led by node 1" \
  bash -c "grep -q 'PartitionCount: 3' '$out' && grep -qE 'Partition: 2\s+Leader: 1' '$out'"

# console producer and consumer ----------------------------------------------------------------
messages=12
for i in $(seq 1 "$messages"); do echo "line $i of the console test"; done >"$work/input.txt"
tool_stdin kafka-console-producer "$work/input.txt" --topic "$topic"
check "kafka-console-producer" "producer failed" true

tool kafka-console-consumer --topic "$topic" --from-beginning --max-messages "$messages" \
  --group "$group" --timeout-ms 30000 "${classic[@]}"
check "kafka-console-consumer --from-beginning --max-messages $messages" "expected the same $messages lines back" \
  diff <(sort "$work/input.txt") <(sort "$out")

# kafka-consumer-groups ------------------------------------------------------------------------
# Prints "sum-of-CURRENT-OFFSET sum-of-LAG partition-rows" for the topic's rows of --describe.
offsets_summary() {
  awk -v t="$topic" '$2 == t { cur += $4; lag += $6; n++ } END { printf "%d %d %d", cur, lag, n }' "$out"
}

tool kafka-consumer-groups --list
check "kafka-consumer-groups --list" "expected a line '$group'" has "^$group$"

tool kafka-consumer-groups --describe --group "$group"
summary="$(offsets_summary)"
check "kafka-consumer-groups --describe" \
  "expected committed offsets summing to $messages with lag 0 on 3 partitions; got (offsets lag rows) $summary" \
  test "$summary" = "$messages 0 3"

tool kafka-consumer-groups --reset-offsets --to-earliest --execute --group "$group" --topic "$topic"
check "kafka-consumer-groups --reset-offsets --to-earliest --execute" \
  "expected NEW-OFFSET 0 for partitions 0, 1 and 2" \
  bash -c "[[ \$(awk -v t='$topic' '\$2 == t && \$4 == 0' '$out' | wc -l) -eq 3 ]]"

tool kafka-consumer-groups --describe --group "$group"
summary="$(offsets_summary)"
check "kafka-consumer-groups --describe after reset" \
  "expected offsets summing to 0 with lag $messages; got (offsets lag rows) $summary" \
  test "$summary" = "0 $messages 3"

# The group resumes from the reset offsets: all lines again, without --from-beginning.
tool kafka-console-consumer --topic "$topic" --max-messages "$messages" --group "$group" --timeout-ms 30000 "${classic[@]}"
check "kafka-console-consumer after reset re-reads everything" "expected the same $messages lines again" \
  diff <(sort "$work/input.txt") <(sort "$out")

# kafka-configs ----------------------------------------------------------------------------------
tool kafka-configs --describe --entity-type topics --entity-name "$topic"
check "kafka-configs --describe (no overrides)" "expected 'Dynamic configs for topic $topic are:' and no retention.ms" \
  bash -c "grep -q 'Dynamic configs for topic $topic are:' '$out' && ! grep -q 'retention.ms=' '$out'"

tool kafka-configs --alter --entity-type topics --entity-name "$topic" --add-config retention.ms=86400000
check "kafka-configs --alter --add-config retention.ms" "expected 'Completed updating config for topic $topic.'" \
  has "Completed updating config for topic $topic"

tool kafka-configs --describe --entity-type topics --entity-name "$topic"
check "kafka-configs --describe shows retention.ms" "expected retention.ms=86400000" has "retention\.ms=86400000"

tool kafka-configs --alter --entity-type topics --entity-name "$topic" --add-config retention.ms=not-a-number
rc_bad=$rc
rc=0
check "kafka-configs --alter rejects an invalid value" "expected a non-zero exit for retention.ms=not-a-number" \
  test "$rc_bad" -ne 0

tool kafka-configs --alter --entity-type topics --entity-name "$topic" --delete-config retention.ms
check "kafka-configs --alter --delete-config retention.ms" "expected 'Completed updating config'" \
  has "Completed updating config for topic $topic"
tool kafka-configs --describe --entity-type topics --entity-name "$topic"
check "kafka-configs --describe after --delete-config" "retention.ms override still present" lacks "retention\.ms="

# Dynamic broker configs (kafka-configs --entity-type brokers): applied, shown, or refused as read-only -----
tool kafka-configs --alter --entity-type brokers --entity-default --add-config log.retention.ms=3600000
check "kafka-configs --alter --entity-default (brokers)" \
  "expected 'Completed updating default config for brokers in the cluster.'" \
  has "Completed updating default config for brokers in the cluster"
tool kafka-configs --describe --entity-type topics --entity-name "$topic" --all
check "a topic shows the dynamic cluster default it inherits" \
  "expected retention.ms=3600000 from DYNAMIC_DEFAULT_BROKER_CONFIG" \
  has "retention\.ms=3600000.*DYNAMIC_DEFAULT_BROKER_CONFIG"
tool kafka-configs --alter --entity-type brokers --entity-name 1 --add-config log.flush.interval.ms=5000,compression.type=zstd
check "kafka-configs --alter --entity-name 1 (brokers)" "expected 'Completed updating config for broker 1.'" \
  has "Completed updating config for broker 1"
tool kafka-configs --describe --entity-type brokers --entity-name 1
check "kafka-configs --describe (brokers) shows the dynamic configs" \
  "expected log.flush.interval.ms=5000 and compression.type=zstd" \
  bash -c "grep -q 'log.flush.interval.ms=5000' '$out' && grep -q 'compression.type=zstd' '$out'"
tool kafka-configs --alter --entity-type brokers --entity-name 1 --add-config num.io.threads=4
rc_bad=$rc
rc=0
check "kafka-configs --alter refuses a key that is read-only here" \
  "expected a non-zero exit and 'Cannot update these configs dynamically: num.io.threads'" \
  bash -c "test $rc_bad -ne 0 && grep -q 'Cannot update these configs dynamically: num.io.threads' '$out' '$err'"
tool kafka-configs --alter --entity-type topics --entity-name "$topic" --add-config remote.storage.enable=true
rc_bad=$rc
rc=0
check "kafka-configs --alter refuses a feature that is not built" \
  "expected a non-zero exit naming tiered storage" \
  bash -c "test $rc_bad -ne 0 && grep -q 'tiered storage is not built' '$out' '$err'"
tool kafka-configs --alter --entity-type brokers --entity-default --delete-config log.retention.ms
check "kafka-configs --alter --entity-default --delete-config (brokers)" \
  "expected 'Completed updating default config for brokers in the cluster.'" \
  has "Completed updating default config for brokers in the cluster"
tool kafka-configs --alter --entity-type brokers --entity-name 1 --delete-config log.flush.interval.ms,compression.type
check "kafka-configs --alter --entity-name 1 --delete-config (brokers)" "expected 'Completed updating config for broker 1.'" \
  has "Completed updating config for broker 1"

# Broker loggers (KIP-412): the tracing targets' levels, shown and changed at run time ----------------------
# The broker runs at RUST_LOG=info: each tool's ApiVersions is logged at DEBUG only once that is switched on.
api_versions_debug() { grep -c 'DEBUG.*kraftwerk_broker::handlers::api_versions' "$work/broker.log"; }
tool kafka-configs --describe --entity-type broker-loggers --entity-name 1
check "kafka-configs --describe (broker-loggers)" "expected root=INFO and kraftwerk_broker=INFO" \
  bash -c "grep -q 'root=INFO' '$out' && grep -q 'kraftwerk_broker=INFO' '$out'"
debug_before="$(api_versions_debug)"
tool kafka-configs --alter --entity-type broker-loggers --entity-name 1 --add-config kraftwerk_broker.handlers=DEBUG
check "kafka-configs --alter --add-config kraftwerk_broker.handlers=DEBUG (broker-loggers)" \
  "expected 'Completed updating config for broker-logger 1.'" has "Completed updating config for broker-logger 1"
tool kafka-configs --describe --entity-type broker-loggers --entity-name 1
check "kafka-configs --describe (broker-loggers) shows the new level, inherited below it" \
  "expected kraftwerk_broker.handlers=DEBUG, kraftwerk_broker.handlers.api_versions=DEBUG, root=INFO" \
  bash -c "grep -q 'kraftwerk_broker.handlers=DEBUG' '$out' && \
    grep -q 'kraftwerk_broker.handlers.api_versions=DEBUG' '$out' && grep -q 'root=INFO' '$out'"
debug_after="$(api_versions_debug)"
check "the DEBUG level is honoured at once" \
  "expected DEBUG lines of kraftwerk_broker::handlers::api_versions in the broker log (before: $debug_before, after: $debug_after)" \
  test "$debug_before" -eq 0 -a "$debug_after" -gt 0
tool kafka-configs --alter --entity-type broker-loggers --entity-name 1 --delete-config kraftwerk_broker.handlers
check "kafka-configs --alter --delete-config kraftwerk_broker.handlers (broker-loggers)" \
  "expected 'Completed updating config for broker-logger 1.'" has "Completed updating config for broker-logger 1"
debug_deleted="$(api_versions_debug)"
tool kafka-configs --describe --entity-type broker-loggers --entity-name 1
check "after --delete-config the logger inherits root's level and logs no DEBUG" \
  "expected kraftwerk_broker.handlers=INFO and no new DEBUG line" \
  bash -c "grep -q 'kraftwerk_broker.handlers=INFO' '$out' && test \"\$(grep -c 'DEBUG.*kraftwerk_broker::handlers::api_versions' '$work/broker.log')\" -eq $debug_deleted"
tool kafka-configs --alter --entity-type broker-loggers --entity-name 1 --add-config root=LOUD
rc_bad=$rc
rc=0
check "kafka-configs --alter refuses a level Kafka does not know (broker-loggers)" \
  "expected a non-zero exit and 'not a supported log level'" \
  bash -c "test $rc_bad -ne 0 && grep -q 'not a supported log level' '$out' '$err'"

# SCRAM users, as operators create them (AlterUserScramCredentials / DescribeUserScramCredentials) -----------
# One mechanism per request: Kafka refuses to alter one user twice in the same request.
tool kafka-configs --alter --entity-type users --entity-name alice \
  --add-config 'SCRAM-SHA-512=[iterations=8192,password=alice-secret]'
check "kafka-configs --alter --add-config SCRAM-SHA-512 (users)" "expected 'Completed updating config for user alice.'" \
  has "Completed updating config for user alice"
tool kafka-configs --alter --entity-type users --entity-name alice --add-config 'SCRAM-SHA-256=[password=alice-secret]'
check "kafka-configs --alter --add-config SCRAM-SHA-256 (users)" "expected 'Completed updating config for user alice.'" \
  has "Completed updating config for user alice"
tool kafka-configs --describe --entity-type users --entity-name alice
check "kafka-configs --describe (users) shows both SCRAM credentials" \
  "expected SCRAM-SHA-256=iterations=4096 and SCRAM-SHA-512=iterations=8192" \
  bash -c "grep -q 'SCRAM-SHA-256=iterations=4096' '$out' && grep -q 'SCRAM-SHA-512=iterations=8192' '$out'"
tool kafka-configs --alter --entity-type users --entity-name alice --delete-config SCRAM-SHA-256
check "kafka-configs --alter --delete-config SCRAM-SHA-256 (users)" "expected 'Completed updating config for user alice.'" \
  has "Completed updating config for user alice"
tool kafka-configs --describe --entity-type users --entity-name alice
check "kafka-configs --describe (users) after --delete-config" "expected only SCRAM-SHA-512 left" \
  bash -c "grep -q 'SCRAM-SHA-512=iterations=8192' '$out' && ! grep -q 'SCRAM-SHA-256' '$out'"

# kafka-metadata-quorum, through the broker and straight to the controller listener -------------------
tool kafka-metadata-quorum describe --status
check "kafka-metadata-quorum describe --status" "expected leader 1, the cluster id and voter 1 on the controller port" \
  bash -c "grep -qE '^LeaderId:\s+1$' '$out' && grep -q '$cluster_id' '$out' &&
    grep -q 'CONTROLLER://127.0.0.1:$cport' '$out' && grep -qE '^HighWatermark:\s+[1-9]' '$out'"
tool kafka-metadata-quorum describe --replication
check "kafka-metadata-quorum describe --replication" "expected node 1 as Leader with lag 0" \
  bash -c "grep -qE '^1\s+\S+\s+[0-9]+\s+0\s+[0-9]+\s+[0-9]+\s+Leader' '$out'"
timeout "$step_timeout" java "${java_opts[@]}" -cp "$here/lib/*" "${main_class[kafka-metadata-quorum]}" \
  --bootstrap-controller "127.0.0.1:$cport" describe --status >"$out" 2>"$err" </dev/null
rc=$?
check "kafka-metadata-quorum --bootstrap-controller describe --status" "expected leader 1 from the controller listener" \
  bash -c "grep -qE '^LeaderId:\s+1$' '$out' && grep -q '$cluster_id' '$out'"

# kafka-metadata-quorum add-controller / remove-controller (KIP-853) ----------------------------------
# A second controller, not in controller.quorum.voters (an observer), is added with its own config file
# (the tool reads node.id, the directory id from meta.properties and the controller listener), then removed
# again so the rest of the run has node 1 as the only voter.
quorum_tool() {
  timeout "$step_timeout" java "${java_opts[@]}" -cp "$here/lib/*" "${main_class[kafka-metadata-quorum]}" \
    --bootstrap-controller "127.0.0.1:$cport" "$@" >"$out" 2>"$err" </dev/null
  rc=$?
}
cport2="$(free_port)"
while [[ "$cport2" == "$port" || "$cport2" == "$cport" ]]; do cport2="$(free_port)"; done
cat >"$work/controller2.properties" <<EOF
process.roles=controller
node.id=2
controller.quorum.voters=1@127.0.0.1:$cport
controller.listener.names=CONTROLLER
listeners=CONTROLLER://127.0.0.1:$cport2
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$work/data2
EOF
"$bin" format --config "$work/controller2.properties" --cluster-id="$cluster_id" >"$work/format2.log" 2>&1 ||
  die "format of controller 2 failed: $(cat "$work/format2.log")"
NO_COLOR=1 RUST_LOG="${RUST_LOG:-info}" "$bin" --config "$work/controller2.properties" >"$work/controller2.log" 2>&1 &
controller2_pid=$!
for _ in $(seq 1 300); do
  grep -q "kraftwerk started" "$work/controller2.log" 2>/dev/null && break
  sleep 0.1
done
dir2="$(sed -n 's/^directory.id=//p' "$work/data2/meta.properties")"
# A quorum started from controller.quorum.voters is at kraft.version 0: its voters cannot change until
# kafka-features raises it to 1 (which cannot be undone), as in Kafka.
tool kafka-features describe
check "kafka-features describe (kraft.version)" "expected kraft.version supported 0-1, finalized at 0" \
  has "Feature: kraft.version\s+SupportedMinVersion: 0\s+SupportedMaxVersion: 1\s+FinalizedVersionLevel: 0"
quorum_tool --command-config "$work/controller2.properties" add-controller
rc=0
check "kafka-metadata-quorum add-controller at kraft.version 0" "expected UnsupportedVersionException" \
  bash -c "grep -q \"Cluster doesn't support adding voter because the kraft.version feature is 0\" '$out' '$err'"
tool kafka-features upgrade --feature kraft.version=1
check "kafka-features upgrade --feature kraft.version=1" "expected 'kraft.version was upgraded to 1.'" \
  has "kraft.version was upgraded to 1."
tool kafka-features downgrade --feature kraft.version=0
rc=0
check "kafka-features downgrade --feature kraft.version=0" "expected it refused" \
  bash -c "grep -q \"Can't downgrade the version of this feature.\" '$out' '$err'"
tool kafka-features describe
check "kafka-features describe after the upgrade" "expected kraft.version finalized at 1" \
  has "Feature: kraft.version\s+SupportedMinVersion: 0\s+SupportedMaxVersion: 1\s+FinalizedVersionLevel: 1"
quorum_tool --command-config "$work/controller2.properties" add-controller
check "kafka-metadata-quorum add-controller (node 2)" "expected 'Added controller 2 with directory id $dir2'" \
  has "Added controller 2 with directory id $dir2"
quorum_tool describe --status
check "kafka-metadata-quorum describe --status lists the added voter" \
  "expected voters 1 and 2, 2 with its directory id and CONTROLLER://127.0.0.1:$cport2" \
  bash -c "grep -q '\"id\": 1' '$out' && grep -q '\"id\": 2, \"directoryId\": \"$dir2\"' '$out' &&
    grep -q 'CONTROLLER://127.0.0.1:$cport2' '$out'"
quorum_tool remove-controller --controller-id 2 --controller-directory-id "$dir2"
check "kafka-metadata-quorum remove-controller (node 2)" "expected 'Removed KRaft controller 2'" \
  has "Removed KRaft controller 2"
quorum_tool describe --status
check "kafka-metadata-quorum describe --status after remove-controller" "expected voter 1 only, led by 1" \
  bash -c "grep -qE '^LeaderId:\s+1$' '$out' && grep -q '\"id\": 1' '$out' && ! grep -q '\"id\": 2' '$out'"
kill -TERM "$controller2_pid" 2>/dev/null
wait "$controller2_pid" 2>/dev/null
controller2_pid=""

# cleanup through the tools ------------------------------------------------------------------------
tool kafka-topics --delete --topic "$topic"
check "kafka-topics --delete" "delete failed" true
tool kafka-topics --list
check "kafka-topics --list after --delete" "$topic still listed" lacks "^$topic$"

if ! kill -0 "$broker_pid" 2>/dev/null; then
  failed=$((failed + 1))
  failures+=("broker alive at the end")
  echo "FAIL kraftwerk died during the run"
fi

# --- the metadata log through Apache Kafka's own readers --------------------------------------------
# Kraftwerk writes __cluster_metadata in Kafka's KRaft format, so kafka-dump-log's
# --cluster-metadata-decoder and kafka-metadata-shell must read it. A topic with a config that
# stays, then a clean stop (SIGTERM) so the segment is complete.
meta_topic=meta-topic
tool kafka-topics --create --topic "$meta_topic" --partitions 2 --replication-factor 1 --config retention.ms=123456
check "kafka-topics --create $meta_topic with a config" "expected 'Created topic $meta_topic.'" has "^Created topic $meta_topic\.$"
tool kafka-configs --alter --entity-type topics --entity-name "$meta_topic" --add-config cleanup.policy=compact
check "kafka-configs --alter $meta_topic cleanup.policy" "expected 'Completed updating config'" \
  has "Completed updating config for topic $meta_topic"

if kill -0 "$broker_pid" 2>/dev/null; then
  kill -TERM "$broker_pid"
  for _ in $(seq 1 150); do kill -0 "$broker_pid" 2>/dev/null || break; sleep 0.2; done
fi
rc=0
wait "$broker_pid" 2>/dev/null
stop_rc=$?
broker_pid=""
check "kraftwerk stops cleanly on SIGTERM" "exit status $stop_rc" test "$stop_rc" -eq 0

# offline NAME-OF-CLASSPATH-DIR CLASS ARGS... — a tool that reads files, not a broker.
offline() {
  local cp="$1" class="$2"
  shift 2
  timeout "$step_timeout" java "${java_opts[@]}" -cp "$here/$cp/*" "$class" "$@" >"$out" 2>"$err" </dev/null
  rc=$?
}
# No decoder complaint anywhere in stdout or stderr.
clean_decode() {
  ! grep -qiE 'exception|error|could not|unable to|failed to|unknown' "$out" "$err"
}
dump_has_records() {
  clean_decode &&
    grep -q '"type":"TOPIC_RECORD"' "$out" && grep -q "\"name\":\"$meta_topic\"" "$out" &&
    grep -q "\"name\":\"$topic\"" "$out" &&
    [[ $(grep -c '"type":"PARTITION_RECORD"' "$out") -ge 5 ]] &&
    grep -q '"type":"REGISTER_BROKER_RECORD"' "$out" &&
    grep -q '"type":"CONFIG_RECORD".*"name":"retention.ms","value":"123456"' "$out" &&
    grep -q '"type":"REMOVE_TOPIC_RECORD"' "$out" &&
    grep -qE 'LeaderChange|LEADER_CHANGE' "$out" &&
    grep -qE 'KRaftVoters .*"voterId":2' "$out"
}

segment="$work/data/__cluster_metadata-0/00000000000000000000.log"
offline lib org.apache.kafka.tools.DumpLogSegments --cluster-metadata-decoder --files "$segment"
check "kafka-dump-log --cluster-metadata-decoder on __cluster_metadata-0" \
  "expected TopicRecords for $topic and $meta_topic, 5+ PartitionRecords, a RegisterBrokerRecord, ConfigRecord retention.ms=123456, a RemoveTopicRecord, a leader change and a VotersRecord naming voter 2, with no decode error" \
  dump_has_records
cp "$out" "$work/dump-log.txt"

# kafka-metadata-shell is not run on the segment: Kafka's loader refuses a log without a
# metadata.version FeatureLevelRecord, which Kraftwerk's controller does not bootstrap yet (the
# records themselves decode, as kafka-dump-log shows above). It reads the snapshot file below.

# A snapshot file written by Kraftwerk's snapshot writer, if cargo is here to build the example.
if command -v cargo >/dev/null; then
  mkdir -p "$work/snapshot"
  if snapshot_file="$(cd "$root" && cargo run -q -p kraftwerk-controller --example write_metadata_snapshot -- "$work/snapshot" 2>"$work/snapshot.log")"; then
    offline lib org.apache.kafka.tools.DumpLogSegments --cluster-metadata-decoder --files "$snapshot_file"
    check "kafka-dump-log --cluster-metadata-decoder on a Kraftwerk snapshot" \
      "expected the header, a TopicRecord for snapshot-topic, the footer, and no decode error" \
      bash -c "! grep -qiE 'exception|error|could not' '$out' '$err' &&
        grep -q '\"name\":\"snapshot-topic\"' '$out' && grep -qi 'SnapshotHeader' '$out' &&
        grep -qi 'SnapshotFooter' '$out'"
    # The shell loads the snapshot on its own thread and may answer `ls` before it is published on a busy
    # machine (seen in runs under heavy load, never on an idle machine); a retry tells that apart from a snapshot
    # that lacks it.
    for _ in 1 2 3; do
      offline lib-shell org.apache.kafka.shell.MetadataShell --snapshot "$snapshot_file" ls /image/topics/byName
      [[ $rc -eq 0 ]] && has '^snapshot-topic$' && break
    done
    check "kafka-metadata-shell --snapshot <Kraftwerk snapshot> ls /image/topics/byName" \
      "expected snapshot-topic" has '^snapshot-topic$'
    # Each command starts a new shell, which can race its load the same way (a `cat` answered "No such file or
    # directory" once on a busy machine).
    for _ in 1 2 3; do
      offline lib-shell org.apache.kafka.shell.MetadataShell --snapshot "$snapshot_file" \
        cat /image/topics/byName/snapshot-topic/0
      [[ $rc -eq 0 ]] && grep -q 'replicas=\[1\]' "$out" && break
    done
    check "kafka-metadata-shell cat /image/topics/byName/snapshot-topic/0" \
      "expected a PartitionRegistration with replicas [1] led by 1" \
      bash -c "grep -q 'replicas=\[1\]' '$out' && grep -q 'leader=1,' '$out'"
    for _ in 1 2 3; do
      offline lib-shell org.apache.kafka.shell.MetadataShell --snapshot "$snapshot_file" ls /image/cluster/brokers
      [[ $rc -eq 0 ]] && has '^1$' && break
    done
    check "kafka-metadata-shell --snapshot <Kraftwerk snapshot> ls /image/cluster/brokers" \
      "expected broker 1" has '^1$'
  else
    rc=1
    check "writing a Kraftwerk snapshot (cargo run --example write_metadata_snapshot)" \
      "$(tail -n 5 "$work/snapshot.log")" false
  fi
fi
if [[ $failed -gt 0 ]]; then
  echo "--- kraftwerk warnings/errors (first 30):"
  sed 's/\x1b\[[0-9;]*m//g' "$work/broker.log" | grep -iE 'error|warn|unsupported|refus|panic' | head -n 30
  echo "--- kraftwerk log tail:"
  sed 's/\x1b\[[0-9;]*m//g' "$work/broker.log" | tail -n 20
  echo "failed checks:"
  printf '  %s\n' "${failures[@]}"
fi
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
