#!/usr/bin/env bash
# Runs the non-Rust client suites against an already built kraftwerk:
#   1. tests/java   — JUnit 5 + org.apache.kafka:kafka-clients scenarios (mvn test)
#   2. tests/tools  — the Apache Kafka command-line tools (tests/tools/run.sh), and against a cluster of three
#                     controllers and two brokers (tests/tools/cluster.sh)
#   3. tests/go     — franz-go (kgo/kadm) tests (go test ./...)
# Every suite starts its own brokers on free loopback ports. Nothing Rust is built here: the binary
# is $KRAFTWERK_BIN, else target/debug/kraftwerk (scripts/test.sh builds it first).
#
# Needs java 17+, mvn and go (>= 1.21; go.mod's toolchain is fetched from the Go module proxy if
# the installed one is older). java and mvn are installed from Debian's packages when missing and
# we are root (or have sudo). Maven artifacts are cached in ~/.m2, Go modules in the module cache.
#
# Environment: SKIP_JAVA=1, SKIP_TOOLS=1, SKIP_GO=1 skip a suite.
# Output ends with a per-suite summary and "N passed, M failed" (individual tests and checks);
# the exit status is non-zero if any suite failed.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
ROOT=$PWD
START=$SECONDS

step() { printf '\n==> %s (t=%ss)\n' "$*" "$((SECONDS - START))"; }

BIN="${KRAFTWERK_BIN:-$ROOT/target/debug/kraftwerk}"
case "$BIN" in /*) ;; *) BIN="$ROOT/$BIN" ;; esac
if [[ ! -x "$BIN" ]]; then
    echo "no kraftwerk binary at $BIN: run 'cargo build -p kraftwerk-broker' or set KRAFTWERK_BIN" >&2
    echo "0 passed, 1 failed"
    exit 1
fi
export KRAFTWERK_BIN="$BIN"

# --- prerequisites ------------------------------------------------------------------------------
step "checking java, mvn, go"
[[ -x /usr/local/go/bin/go ]] && ! command -v go >/dev/null 2>&1 && export PATH="$PATH:/usr/local/go/bin"
missing=()
command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jdk-headless)
command -v mvn >/dev/null 2>&1 || missing+=(maven)
if ((${#missing[@]})); then
    SUDO=""
    if [[ $(id -u) -ne 0 ]]; then
        if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else SUDO=none; fi
    fi
    if [[ $SUDO == none ]]; then
        echo "missing ${missing[*]} and not root: the suites that need them will fail" >&2
    else
        echo "installing: ${missing[*]}"
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
    fi
fi
command -v java >/dev/null 2>&1 && java -version 2>&1 | head -n 1
command -v mvn >/dev/null 2>&1 && mvn -v 2>/dev/null | head -n 1
command -v go >/dev/null 2>&1 && go version

LOGS="$(mktemp -d -t kraftwerk-jvm-go-XXXXXX)"
total_passed=0
total_failed=0
summary=()
failed_suites=()

# record NAME STATUS PASSED FAILED — adds a suite's result to the summary.
record() {
    local name="$1" status="$2" p="$3" f="$4"
    # A suite that failed without a counted failure (build error, timeout) still counts as one.
    if [[ $status -ne 0 && $f -eq 0 ]]; then f=1; fi
    total_passed=$((total_passed + p))
    total_failed=$((total_failed + f))
    if [[ $status -eq 0 ]]; then
        summary+=("$(printf '%-6s ok     %3d passed, %d failed' "$name" "$p" "$f")")
    else
        summary+=("$(printf '%-6s FAILED %3d passed, %d failed (exit %d, log %s)' "$name" "$p" "$f" "$status" "$LOGS/$name.log")")
        failed_suites+=("$name")
    fi
}

# --- 1. Java client -------------------------------------------------------------------------------
if [[ ${SKIP_JAVA:-0} != 1 ]]; then
    step "tests/java: mvn test"
    (cd tests/java && timeout 1800 mvn -B -ntp test) 2>&1 | tee "$LOGS/java.log"
    status=${PIPESTATUS[0]}
    # Surefire's closing "Tests run: N, Failures: F, Errors: E, Skipped: S" (the line without "-- in").
    line="$(grep -E 'Tests run: [0-9]+, Failures: [0-9]+, Errors: [0-9]+' "$LOGS/java.log" | grep -v -- ' -- in ' | tail -n 1)"
    read -r run fails errs skips < <(echo "$line" | sed -E 's/.*Tests run: ([0-9]+), Failures: ([0-9]+), Errors: ([0-9]+), Skipped: ([0-9]+).*/\1 \2 \3 \4/;t;s/.*/0 0 0 0/')
    record java "$status" $((run - fails - errs - skips)) $((fails + errs))
fi

# --- 2. Kafka CLI tools ---------------------------------------------------------------------------
if [[ ${SKIP_TOOLS:-0} != 1 ]]; then
    step "tests/tools: Apache Kafka command-line tools"
    timeout 1800 tests/tools/run.sh 2>&1 | tee "$LOGS/tools.log"
    status=${PIPESTATUS[0]}
    read -r p f < <(tail -n 1 "$LOGS/tools.log" | sed -E 's/^([0-9]+) passed, ([0-9]+) failed$/\1 \2/;t;s/.*/0 0/')
    record tools "$status" "$p" "$f"
fi

# --- 2b. Kafka CLI tools against a cluster (3 controllers + 2 brokers) ------------------------------
if [[ ${SKIP_TOOLS:-0} != 1 ]]; then
    step "tests/tools/cluster.sh: Apache Kafka command-line tools against a cluster"
    timeout 900 tests/tools/cluster.sh 2>&1 | tee "$LOGS/cluster.log"
    status=${PIPESTATUS[0]}
    read -r p f < <(tail -n 1 "$LOGS/cluster.log" | sed -E 's/^([0-9]+) passed, ([0-9]+) failed$/\1 \2/;t;s/.*/0 0/')
    record cluster "$status" "$p" "$f"
fi

# --- 3. franz-go -----------------------------------------------------------------------------------
if [[ ${SKIP_GO:-0} != 1 ]]; then
    step "tests/go: go test ./..."
    (cd tests/go && GOFLAGS=-mod=mod timeout 1800 go test -count=1 -timeout 20m -v ./...) 2>&1 | tee "$LOGS/go.log"
    status=${PIPESTATUS[0]}
    # Top-level tests only (subtests are indented).
    p=$(grep -cE '^--- PASS' "$LOGS/go.log")
    f=$(grep -cE '^--- FAIL' "$LOGS/go.log")
    record go "$status" "$p" "$f"
fi

step "summary"
printf '%s\n' "${summary[@]}"
if ((${#failed_suites[@]})); then
    echo "failed suites: ${failed_suites[*]} (logs in $LOGS)"
else
    rm -rf "$LOGS"
fi
echo "$total_passed passed, $total_failed failed"
[[ ${#failed_suites[@]} -eq 0 ]]
