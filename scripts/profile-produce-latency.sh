#!/usr/bin/env bash
# Where produce tail latency comes from: one broker (kraftwerk or kafka) takes produce at a fixed rate from the
# rdkafka load generator while `perf sched` records every context switch on the machine, and Dirty/Writeback
# are sampled from /proc/meminfo each second. scripts/lib/offcpu_summary.py then splits the broker's
# request-thread time off the CPU into waiting for a CPU (runnable) and blocked in the kernel (D state), with
# the kernel stacks of the blocked waits: page-cache writeback under write(), an fsync on the request path,
# or none. Needs perf (Debian: linux-perf) and root or perf_event_paranoid <= 0.
#
#   scripts/profile-produce-latency.sh [kraftwerk|kafka] [RATE records/s] [SECONDS] [SIZE bytes] [ACKS]
#
# THREAD_PREFIXES overrides the request-path thread names to summarise.
# Defaults: kraftwerk, 60000 records/s, 60 s, 1024 B, acks=1. Long enough at that rate to pass the kernel's
# background writeback threshold (vm.dirty_background_ratio of memory) on most machines; the meminfo samples
# show whether it did. Output: a Markdown summary on stdout; the raw timehist under $WORK.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WHO=${1:-kraftwerk}
RATE=${2:-60000}
SECONDS_RUN=${3:-60}
SIZE=${4:-1024}
ACKS=${5:-1}
WORK=${WORK:-$(mktemp -d /tmp/kraftwerk-latency-profile.XXXXXX)}
command -v perf >/dev/null || { echo "perf is needed (apt-get install linux-perf)" >&2; exit 1; }
if [[ -z ${BIN:-} ]]; then # BIN and LOADGEN may name prebuilt release binaries
    source "$ROOT/scripts/lib/bench-common.sh"
else
    LOADGEN=${LOADGEN:-$(dirname "$BIN")/kraftwerk-loadgen}
    free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
fi
source "$ROOT/scripts/lib/bench-brokers.sh"
trap 'stop_broker; rm -f "$WORK/sched.data"' EXIT

start_broker "$WHO"
echo "==> $WHO pid $PID on port $PORT; $RATE records/s of $SIZE B, acks=$ACKS, for $SECONDS_RUN s" >&2
"$LOADGEN" --bootstrap "127.0.0.1:$PORT" --topic warmup --messages 1000 --no-consume >/dev/null
( while sleep 1; do
      echo "$(date +%s) $(awk '/^(Dirty|Writeback):/ {printf "%s ", $2}' /proc/meminfo)"
  done >"$WORK/meminfo.log" ) &
SAMPLER=$!
perf sched record -g -o "$WORK/sched.data" -- sleep "$((SECONDS_RUN + 2))" >"$WORK/perf.log" 2>&1 &
PERF=$!
sleep 1
"$LOADGEN" --bootstrap "127.0.0.1:$PORT" --topic "latency-$RATE" --messages "$((RATE * SECONDS_RUN))" \
    --size "$SIZE" --acks "$ACKS" --rate "$RATE" --linger-ms 0 --no-consume | tee "$WORK/loadgen.out" | grep RESULT
wait "$PERF" || true
kill "$SAMPLER" 2>/dev/null || true
perf sched timehist -i "$WORK/sched.data" -p "$PID" --state >"$WORK/timehist.txt" 2>/dev/null
rm -f "$WORK/sched.data"

if [[ -n ${THREAD_PREFIXES:-} ]]; then # e.g. an older build's thread names
    read -ra THREADS <<<"$THREAD_PREFIXES"
elif [[ $WHO == kraftwerk ]]; then
    THREADS=(kw-async kw-blocking kraftwerk-fsync controller)
else
    THREADS=(data-plane-kafka-request-handler data-plane-kafka-network-thread kafka-log-cleaner log-cleaner kafka-scheduler)
fi
echo
echo "### $WHO: produce at $RATE records/s of $SIZE B, acks=$ACKS, $SECONDS_RUN s (load average $(cut -d' ' -f1-3 /proc/loadavg))"
echo
echo "loadgen: $(grep RESULT "$WORK/loadgen.out")"
echo
awk 'NR==1 {t0=$1} {d=$2/1024; w=$3/1024; if (d>md) md=d; if (w>mw) mw=w; if (w>16) ws++} END {
    printf "page cache: Dirty up to %.0f MiB, Writeback up to %.0f MiB, %d of %d seconds with Writeback > 16 MiB\n\n", md, mw, ws, NR }' \
    "$WORK/meminfo.log"
python3 "$ROOT/scripts/lib/offcpu_summary.py" "$WORK/timehist.txt" "${THREADS[@]}"
