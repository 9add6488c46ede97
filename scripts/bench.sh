#!/usr/bin/env bash
# Reproduces the whole-system figures of BENCHMARKS.md in one run: the
# machine's limits (disk, loopback), our broker through mqbench, and NATS
# JetStream on the same workloads through bench/nats-bench, each workload
# RUNS times (default 3), printing medians.
#
#   ./scripts/bench.sh              # everything
#   SKIP_NATS=1 ./scripts/bench.sh  # without the JetStream comparison
#
# JetStream needs `nats-server` (Debian: apt-get install nats-server).
set -euo pipefail
# Brokers side by side: each one's RocketMQ 5 proxy on a free port.
export MQ_BROKER_PROXY_LISTEN=127.0.0.1:0
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
COUNT=${COUNT:-200000}
BACKLOG=${BACKLOG:-1000000}
cargo build --release -q -p mq-broker -p mq-nameserver -p mq-tools
NATS=0
if [[ -z "${SKIP_NATS:-}" ]] && command -v nats-server >/dev/null; then
    (cd bench/nats-bench && cargo build --release -q)
    NATS=1
fi
DIR=$(mktemp -d "${BENCH_DIR:-/tmp}/mqbench.XXXXXX")
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$DIR"; }
trap cleanup EXIT

median() { python3 -c 'import statistics,sys; print(statistics.median(float(x) for x in sys.stdin.read().split()))'; }

echo "== machine limits (median of $RUNS)"
disk=$(for _ in $(seq "$RUNS"); do
    dd if=/dev/zero of="$DIR/dd" bs=1M count=1024 conv=fdatasync 2>&1 | tail -1 |
        sed -E 's/.*, ([0-9.]+) ([GM])B\/s/\1 \2/' | awk '{print ($2=="G") ? $1 : $1/1000}'
    rm -f "$DIR/dd"
done | median)
loopback=$(for _ in $(seq "$RUNS"); do python3 scripts/loopback_bw.py; done | median)
echo "disk, 1 MiB writes + fdatasync: $disk GB/s; loopback TCP, 1 MiB writes: $loopback GB/s"

target/release/broker --standalone --store-dir "$DIR/async" --listen 127.0.0.1:20911 \
    --namesrv-listen 127.0.0.1:20876 --metrics-listen 127.0.0.1:0 --log-level warn &
PIDS+=($!)
BROKER=$!
target/release/broker --standalone --store-dir "$DIR/sync" --listen 127.0.0.1:20912 \
    --namesrv-listen 127.0.0.1:20877 --metrics-listen 127.0.0.1:0 --flush sync --log-level warn &
PIDS+=($!)
sleep 2
NS=127.0.0.1:20876
NS_SYNC=127.0.0.1:20877
rss() { awk '/VmRSS/ {printf "%.1f MB", $2/1024}' "/proc/$BROKER/status"; }
echo "broker idle RSS: $(rss)"

# Runs a command RUNS times and prints the median of each summary figure.
# An argument @RUN@ becomes the run number (fresh consumer groups).
bench() {
    local name=$1; shift
    for run in $(seq "$RUNS"); do
        "${@//@RUN@/$run}" 2>/dev/null | tail -1
    done | python3 scripts/bench_median.py "$name"
}
mq() { bench "$1" target/release/mqbench "${@:2}" --json; }

echo "== mq broker: mqbench medians of $RUNS runs, 1 KiB messages unless said, clients on this machine"
mq "produce, 1 synchronous sender"              produce --namesrv $NS --topic sync1 --count 20000 --producers 1
mq "produce, 64 senders in flight"              produce --namesrv $NS --topic p64 --count "$COUNT" --producers 64
mq "produce, 256 senders in flight"             produce --namesrv $NS --topic p256 --count "$COUNT" --producers 256
mq "produce, 256 senders, linger 2 ms"          produce --namesrv $NS --topic linger --count "$COUNT" --producers 256 --linger-ms 2
mq "produce, 16 senders, batches of 32"         produce --namesrv $NS --topic batch --count "$BACKLOG" --producers 16 --batch 32
mq "consume a backlog, pull batch 32"           consume --namesrv $NS --topic batch --group "b32-$$-@RUN@" --from-first --count "$BACKLOG" --timeout 120
mq "consume a backlog, pull batch 256"          consume --namesrv $NS --topic batch --group "b256-$$-@RUN@" --from-first --count "$BACKLOG" --timeout 120 --pull-batch 256
mq "produce, 64 KiB bodies, 8 senders"          produce --namesrv $NS --topic big --count 5000 --producers 8 --size 65536
mq "e2e at 20,000 msgs/s (32 senders)"          e2e --namesrv $NS --topic e2e --count 100000 --rate 20000 --producers 32
mq "scheduled 3 s ahead, 20,000 msgs/s (lateness)" e2e --namesrv $NS --topic later --count 100000 --rate 20000 --producers 32 --delay-ms 3000
mq "scheduled 5 s ahead, 1,000 msgs/s (lateness)" e2e --namesrv $NS --topic later5 --count 10000 --rate 1000 --producers 4 --delay-ms 5000
mq "sync flush, 1 sender"                       produce --namesrv $NS_SYNC --topic sync1 --count 5000 --producers 1 --flush-wait
mq "sync flush, 64 senders in flight"           produce --namesrv $NS_SYNC --topic sync64 --count 50000 --producers 64 --flush-wait
mq "sync flush, 256 senders, linger 2 ms"       produce --namesrv $NS_SYNC --topic syncl --count 50000 --producers 256 --linger-ms 2 --flush-wait
echo "broker RSS after the runs: $(rss) ($(awk '/RssAnon/ {printf "%.1f MB", $2/1024}' "/proc/$BROKER/status") anonymous)"

if [[ $NATS == 1 ]]; then
    nats-server -js -sd "$DIR/nats" -a 127.0.0.1 -p 24222 >"$DIR/nats.log" 2>&1 &
    PIDS+=($!)
    sleep 1
    NB=bench/nats-bench/target/release/nats-bench
    URL=nats://127.0.0.1:24222
    echo "== NATS JetStream $(nats-server --version | awk '{print $2}'), file storage, async-nats client"
    bench "produce, 1 synchronous publisher"         $NB publish $URL sync1 20000 1024 1
    bench "produce, 64 publishes in flight"          $NB publish $URL p64 "$COUNT" 1024 64
    bench "produce, 256 publishes in flight"         $NB publish $URL p256 "$COUNT" 1024 256
    bench "produce, 256 in flight (backlog)"         $NB publish $URL backlog $((BACKLOG / RUNS + 1)) 1024 256
    bench "consume a backlog"                        $NB consume $URL backlog "$BACKLOG"
    bench "produce, 64 KiB bodies, 8 in flight"      $NB publish $URL big 5000 65536 8
fi
