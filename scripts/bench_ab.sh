#!/usr/bin/env bash
# Two builds against each other on one produce workload: each run starts a
# fresh standalone broker (async flush) from build A, then from build B,
# and sends with that build's mqbench; prints every run, the medians and
# their ratio (B / A) and the median of the per-run ratios.
#
#   git worktree add /tmp/before <commit> && (cd /tmp/before && cargo build --release -p mq-broker -p mq-tools)
#   cargo build --release -p mq-broker -p mq-tools
#   RUNS=5 ./scripts/bench_ab.sh /tmp/before/target/release target/release --count 300000 --producers 256
set -euo pipefail
if [[ $# -lt 3 ]]; then
    echo "usage: bench_ab.sh BIN_DIR_A BIN_DIR_B MQBENCH_PRODUCE_ARGS..." >&2
    exit 2
fi
A=$1 B=$2
shift 2
RUNS=${RUNS:-3}
export MQ_BROKER_PROXY_LISTEN=127.0.0.1:0
DIR=$(mktemp -d "${BENCH_DIR:-/tmp}/mqab.XXXXXX")
PID=
cleanup() { [[ -n $PID ]] && kill "$PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$DIR"; }
trap cleanup EXIT

# One run of build $1: prints "msgs_per_sec p99_us".
run() {
    local bin=$1 store
    shift
    store=$(mktemp -d "$DIR/store.XXXX")
    "$bin/broker" --standalone --store-dir "$store" --listen 127.0.0.1:24941 \
        --namesrv-listen 127.0.0.1:24906 --metrics-listen 127.0.0.1:0 --log-level warn &
    PID=$!
    sleep 1.5
    kill -0 "$PID" 2>/dev/null || { echo "bench_ab: the broker of $bin did not start" >&2; exit 1; }
    "$bin/mqbench" produce --namesrv 127.0.0.1:24906 --topic warm --count 20000 --producers 64 >/dev/null 2>&1
    "$bin/mqbench" produce --namesrv 127.0.0.1:24906 --topic measured "$@" --json 2>/dev/null | tail -1 |
        python3 -c 'import json,sys; d=json.load(sys.stdin); print(int(d["msgs_per_sec"]), d["p99_us"])'
    kill "$PID"
    wait "$PID" 2>/dev/null || true
    PID=
    rm -rf "$store"
}

results=()
for r in $(seq "$RUNS"); do
    a=$(run "$A" "$@")
    b=$(run "$B" "$@")
    echo "run $r: A ${a% *} msg/s (p99 ${a#* } us), B ${b% *} msg/s (p99 ${b#* } us)"
    results+=("${a% *} ${b% *}")
done
printf '%s\n' "${results[@]}" | python3 -c '
import statistics, sys
rows = [tuple(map(float, l.split())) for l in sys.stdin if l.strip()]
a = statistics.median(r[0] for r in rows); b = statistics.median(r[1] for r in rows)
per_run = statistics.median(r[1] / r[0] for r in rows)
print(f"median: A {a:,.0f} msg/s, B {b:,.0f} msg/s; B/A {b / a:.2f} (median of per-run ratios {per_run:.2f})")'
