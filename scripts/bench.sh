#!/usr/bin/env bash
# Reproduces the mqbench figures of BENCHMARKS.md: builds release binaries,
# starts a standalone broker (async flush) and a sync-flush broker on
# loopback in a temporary directory, runs each workload RUNS times (default
# 3) and prints the median of each figure.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
COUNT=${COUNT:-200000}
cargo build --release -q -p mq-broker -p mq-nameserver -p mq-tools
DIR=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$DIR"; }
trap cleanup EXIT

target/release/broker --standalone --store-dir "$DIR/async" --listen 127.0.0.1:20911 \
    --namesrv-listen 127.0.0.1:20876 --log-level warn &
PIDS+=($!)
target/release/broker --standalone --store-dir "$DIR/sync" --listen 127.0.0.1:20912 \
    --namesrv-listen 127.0.0.1:20877 --flush sync --log-level warn &
PIDS+=($!)
sleep 2
NS=127.0.0.1:20876
NS_SYNC=127.0.0.1:20877

# Runs mqbench RUNS times and prints the median of each summary figure.
# An argument @RUN@ becomes the run number (fresh consumer groups).
bench() {
    local name=$1; shift
    for run in $(seq "$RUNS"); do
        target/release/mqbench "${@//@RUN@/$run}" --json 2>/dev/null | tail -1
    done | python3 scripts/bench_median.py "$name"
}

echo "mqbench medians of $RUNS runs, 1 KiB messages, broker and clients on this machine"
bench "produce, 1 synchronous sender"              produce --namesrv $NS --topic sync1 --count 20000 --producers 1
bench "produce, 64 senders in flight"              produce --namesrv $NS --topic p64 --count "$COUNT" --producers 64
bench "produce, 16 senders, batches of 32"         produce --namesrv $NS --topic batch --count "$COUNT" --producers 16 --batch 32
bench "produce, 256 senders, linger 2 ms"          produce --namesrv $NS --topic linger --count "$COUNT" --producers 256 --linger-ms 2
bench "consume a backlog (batch topic)"            consume --namesrv $NS --topic batch --group "backlog-$$-@RUN@" --from-first --count "$COUNT" --timeout 120
bench "produce, 64 KiB bodies, 8 senders"          produce --namesrv $NS --topic big --count 5000 --producers 8 --size 65536
bench "e2e at 20,000 msgs/s"                       e2e --namesrv $NS --topic e2e --count 100000 --rate 20000 --producers 8
bench "sync flush, 1 sender"                       produce --namesrv $NS_SYNC --topic sync1 --count 5000 --producers 1 --flush-wait
bench "sync flush, 64 senders in flight"           produce --namesrv $NS_SYNC --topic sync64 --count 50000 --producers 64 --flush-wait
