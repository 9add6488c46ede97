#!/usr/bin/env bash
# Apache's official Rust client (rocketmq 5.0.0, through the broker's proxy,
# POP receive with acknowledgements) against our SDK (mqbench: producer,
# push consumer) on the same workloads, one standalone broker, the
# workloads alternating, RUNS times each (default 3); prints medians and
# the official/ours ratio.
#
#   ./scripts/bench_rocketmq_client.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
COUNT=${COUNT:-50000}
SENDERS=${SENDERS:-64}
RECEIVERS=${RECEIVERS:-16}
cargo build --release -q -p mq-broker -p mq-tools
CARGO_TARGET_DIR=target/compat-rocketmq cargo build --release -q --locked \
    --manifest-path compat/rocketmq-client/Cargo.toml --example official_bench
OFFICIAL=target/compat-rocketmq/release/examples/official_bench
B=target/release
DIR=$(mktemp -d "${BENCH_DIR:-/tmp}/mqv5bench.XXXXXX")
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$DIR"; }
trap cleanup EXIT
$B/broker --standalone --store-dir "$DIR/broker" --listen 127.0.0.1:24911 \
    --namesrv-listen 127.0.0.1:24876 --metrics-listen 127.0.0.1:0 \
    --proxy-listen 127.0.0.1:24081 --log-level warn &
PIDS+=($!)
sleep 2
NS=127.0.0.1:24876
PROXY=127.0.0.1:24081
# A new broker pre-warms its first CommitLog segment (1 GiB) for a few
# seconds: a throwaway round, then a pause, keep that out of the figures.
$B/mqadmin --namesrv $NS topic create --topic warmup --queues 8 --broker 127.0.0.1:24911 >/dev/null
sleep 1
$B/mqbench produce --namesrv $NS --topic warmup --count 20000 --producers 16 --size 1024 >/dev/null 2>&1
sleep 15
median() { python3 -c 'import statistics,sys; print(int(statistics.median(float(x) for x in sys.argv[1:])))' "$@"; }
ratio() { python3 -c 'import sys; print(f"{float(sys.argv[1])/float(sys.argv[2]):.2f}")' "$1" "$2"; }

declare -a OP OC UP UC
for run in $(seq "$RUNS"); do
    for topic in "official$run" "ours$run"; do
        $B/mqadmin --namesrv $NS topic create --topic "$topic" --queues 8 --broker 127.0.0.1:24911 >/dev/null
    done
    sleep 1
    OP+=("$($OFFICIAL produce $PROXY "official$run" "$COUNT" "$SENDERS" 1024 2>/dev/null | grep '^{"mode"' | python3 -c 'import json,sys; print(json.load(sys.stdin)["rate"])')")
    UP+=("$($B/mqbench produce --namesrv $NS --topic "ours$run" --count "$COUNT" --producers "$SENDERS" --size 1024 --json 2>/dev/null | tail -1 | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["msgs_per_sec"])')")
    # Receive the backlog just made.
    OC+=("$($OFFICIAL receive $PROXY "official$run" "$COUNT" "$RECEIVERS" "official-group$run" 2>/dev/null | grep '^{"mode"' | python3 -c 'import json,sys; print(json.load(sys.stdin)["rate"])')")
    UC+=("$($B/mqbench consume --namesrv $NS --topic "ours$run" --group "ours-group$run" --from-first --count "$COUNT" --json 2>/dev/null | tail -1 | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["msgs_per_sec"])')")
    echo "run $run: official produce ${OP[-1]} receive ${OC[-1]}; ours produce ${UP[-1]} consume ${UC[-1]} (msg/s)"
done
op=$(median "${OP[@]}"); up=$(median "${UP[@]}"); oc=$(median "${OC[@]}"); uc=$(median "${UC[@]}")
echo "| workload | official client | our SDK | ratio |"
echo "| --- | ---: | ---: | ---: |"
echo "| produce $COUNT x 1 KiB, $SENDERS senders | $op msg/s | $up msg/s | $(ratio "$op" "$up") |"
echo "| consume the backlog (official: receive 32 + ack each, $RECEIVERS tasks) | $oc msg/s | $uc msg/s | $(ratio "$oc" "$uc") |"
