#!/usr/bin/env bash
# Two broker builds side by side in one run, alternating each round, with
# the same mqbench client: how a change moved the default paths.
#
#   scripts/bench_compare.sh OLD_BIN_DIR NEW_BIN_DIR [ROUNDS]
#
# e.g. `git worktree add ../old <commit> && (cd ../old && cargo build
# --release -p mq-broker)`, then `scripts/bench_compare.sh ../old/target/release
# target/release`. Prints one line per build, workload and round
# (msgs/s, failures, p99 us), then the medians. The client is NEW's mqbench
# for both; with MQBENCH=each, each build runs its own (to compare SDK
# changes too).
set -uo pipefail
# Brokers side by side: each one's RocketMQ 5 proxy on a free port.
export MQ_BROKER_PROXY_LISTEN=127.0.0.1:0
cd "$(dirname "$0")/.."
OLD=${1:?old binary directory}
NEW=${2:?new binary directory}
ROUNDS=${3:-3}
MQB=$NEW/mqbench
[ -x "$MQB" ] || MQB=target/release/mqbench
DIR=$(mktemp -d "${BENCH_DIR:-/tmp}/compare.XXXXXX")
trap 'rm -rf "$DIR"' EXIT
OUT=$DIR/results
for round in $(seq "$ROUNDS"); do
    for v in old new; do
        bin=$OLD
        [ "$v" = new ] && bin=$NEW
        rm -rf "$DIR/a" "$DIR/s"
        "$bin/broker" --standalone --store-dir "$DIR/a" --listen 127.0.0.1:21911 --namesrv-listen 127.0.0.1:21876 \
            --metrics-listen 127.0.0.1:0 --log-level warn &
        a=$!
        "$bin/broker" --standalone --store-dir "$DIR/s" --listen 127.0.0.1:21912 --namesrv-listen 127.0.0.1:21877 \
            --metrics-listen 127.0.0.1:0 --flush sync --log-level warn &
        s=$!
        sleep 2
        client=$MQB
        [ "${MQBENCH:-}" = each ] && client=$bin/mqbench
        run() { "$client" "$@" --json 2>/dev/null | tail -1; }
        p64=$(run produce --namesrv 127.0.0.1:21876 --topic p64 --count 200000 --producers 64)
        batch=$(run produce --namesrv 127.0.0.1:21876 --topic batch --count 500000 --producers 16 --batch 32)
        consume=$(run consume --namesrv 127.0.0.1:21876 --topic batch --group "g$round" --from-first --count 500000 --pull-batch 256 --timeout 120)
        sync64=$(run produce --namesrv 127.0.0.1:21877 --topic s64 --count 50000 --producers 64 --flush-wait)
        kill "$a" "$s"
        wait "$a" "$s" 2>/dev/null
        for name in p64 batch consume sync64; do
            python3 -c 'import json,sys; r=json.loads(sys.argv[3]); print(sys.argv[1], sys.argv[2], round(r["msgs_per_sec"]), r["failed"], round(r["p99_us"]))' \
                "$v" "$name" "${!name}" | tee -a "$OUT"
        done
    done
done
python3 - "$OUT" <<'PY'
import collections, statistics, sys
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    build, name, rate, _, _ = line.split()
    runs[(name, build)].append(int(rate))
for name in ["p64", "batch", "consume", "sync64"]:
    old, new = statistics.median(runs[(name, "old")]), statistics.median(runs[(name, "new")])
    print(f"{name:8} old {old:>9.0f} msg/s  new {new:>9.0f} msg/s  new/old {new / old:.3f}")
PY
