#!/usr/bin/env bash
# Runs Apache Kafka (from tests/tools/lib) behind kraftwerk's command line, so the Java, CLI-tool
# and franz-go suites can be checked against the reference implementation:
#   KRAFTWERK_BIN=tests/tools/kafka-as-kraftwerk.sh scripts/test-jvm-go.sh
# A test that fails against this wrapper is a broken test, not a kraftwerk bug.
# Understands exactly what the suites use: `random-uuid`, `format --config F --cluster-id ID`,
# `--config F` (and `--cluster-id=ID`). Needs `scripts/test-jvm-go.sh` (or `mvn dependency:copy-dependencies` here) to
# have filled lib/.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cp="$here/lib/*"
[[ -n "$(ls "$here"/lib/kafka_2.13-*.jar 2>/dev/null)" ]] || {
  echo "kafka-as-kraftwerk: $here/lib has no Kafka jars; run scripts/test-jvm-go.sh once" >&2
  exit 2
}
java_opts=(-Xms128m -Xmx512m -XX:+UseSerialGC -Dorg.slf4j.simpleLogger.defaultLogLevel=warn)

case "${1:-}" in
  random-uuid)
    exec java "${java_opts[@]}" -cp "$cp" kafka.tools.StorageTool random-uuid
    ;;
  format)
    shift
    config="" cluster=""
    while [[ $# -gt 0 ]]; do
      case "$1" in
        --config) config="$2"; shift 2 ;;
        --cluster-id) cluster="$2"; shift 2 ;;
        --cluster-id=*) cluster="${1#--cluster-id=}"; shift ;;
        *) echo "kafka-as-kraftwerk: unknown format option $1" >&2; exit 2 ;;
      esac
    done
    exec java "${java_opts[@]}" -cp "$cp" kafka.tools.StorageTool format -t "$cluster" -c "$config"
    ;;
  --config)
    exec java "${java_opts[@]}" -cp "$cp" kafka.Kafka "$2"
    ;;
  *)
    echo "kafka-as-kraftwerk: unsupported arguments: $*" >&2
    exit 2
    ;;
esac
