#!/usr/bin/env bash
# Narrow A/B runs, alternating old and new each round, to tell a change
# from the noise of a 2-core machine:
#   produce: each build's broker (fresh store each run), the new mqbench,
#            500,000 messages in batches of 32 from 16 senders;
#   consume: one 500,000-message backlog on the new broker, each build's
#            mqbench (its consumer SDK) with a group of its own.
#
#   scripts/bench_ab.sh OLD_BIN_DIR NEW_BIN_DIR [ROUNDS]
#
# Prints one line per run, then the medians and their ratio.
set -uo pipefail
# Brokers side by side: each one's RocketMQ 5 proxy on a free port.
export MQ_BROKER_PROXY_LISTEN=127.0.0.1:0
cd "$(dirname "$0")/.."
OLD=${1:?old binary directory}
NEW=${2:?new binary directory}
ROUNDS=${3:-6}
DIR=$(mktemp -d "${BENCH_DIR:-/tmp}/ab.XXXXXX")
OUT=$DIR/results
trap 'kill $(jobs -p) 2>/dev/null; wait; rm -rf "$DIR"' EXIT
rate() { python3 -c 'import json,sys; print(round(json.loads(sys.stdin.read().splitlines()[-1])["msgs_per_sec"]))'; }
broker() {
    "$1/broker" --standalone --store-dir "$2" --listen 127.0.0.1:21911 --namesrv-listen 127.0.0.1:21876 \
        --metrics-listen 127.0.0.1:0 --log-level warn &
    sleep 2
}
produce() { "$NEW/mqbench" produce --namesrv 127.0.0.1:21876 --topic batch --count 500000 --producers 16 --batch 32 --json 2>/dev/null; }

for round in $(seq "$ROUNDS"); do
    for v in old new; do
        bin=$OLD
        [ "$v" = new ] && bin=$NEW
        rm -rf "$DIR/store"
        broker "$bin" "$DIR/store"
        echo "produce $v $(produce | rate)" | tee -a "$OUT"
        kill %1
        wait 2>/dev/null
    done
done

rm -rf "$DIR/store"
broker "$NEW" "$DIR/store"
produce >/dev/null
for round in $(seq "$ROUNDS"); do
    for v in old new; do
        bin=$OLD
        [ "$v" = new ] && bin=$NEW
        echo "consume $v $("$bin/mqbench" consume --namesrv 127.0.0.1:21876 --topic batch --group "g$v$round" \
            --from-first --count 500000 --pull-batch 256 --timeout 120 --json 2>/dev/null | rate)" | tee -a "$OUT"
    done
done

python3 - "$OUT" <<'PY'
import collections, statistics, sys
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    name, build, rate = line.split()
    runs[(name, build)].append(int(rate))
for name in ["produce", "consume"]:
    old, new = statistics.median(runs[(name, "old")]), statistics.median(runs[(name, "new")])
    print(f"{name:8} old {old:>9.0f} msg/s  new {new:>9.0f} msg/s  new/old {new / old:.3f}")
PY
