#!/usr/bin/env bash
# How long consumers stall when a master dies: a broker group (master and
# a sync replica) under a producer and a consumer that reads a backlog;
# the master is SIGKILLed mid-read, the consumer goes on from the replica.
# Ten rounds; per round the stall (longest pause between two messages
# received around the kill), acknowledged messages lost (mqbench verify)
# and duplicates; then the median and max stall. Release binaries.
#
#   scripts/failover_gap.sh [ROUNDS]
set -euo pipefail
# Brokers side by side: each one's RocketMQ 5 proxy on a free port.
export MQ_BROKER_PROXY_LISTEN=127.0.0.1:0
cd "$(dirname "$0")/.."
B=${MQ_BIN_DIR:-target/release}
ROUNDS=${1:-10}
W=$(mktemp -d /tmp/failover.XXXX)
NS=127.0.0.1:22876 MASTER=127.0.0.1:22911 REPLICA=127.0.0.1:22912
pids=()
cleanup() { kill -9 "${pids[@]}" 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT

wait_log() { # FILE NEEDLE
    for _ in $(seq 200); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done
    echo "failover_gap: no '$2' in $1" >&2; cat "$1" >&2; exit 1
}
start_master() {
    "$B/broker" --store-dir "$W/master" --listen $MASTER --namesrv $NS --metrics-listen 127.0.0.1:0 \
        --replication sync --register-interval 1s --log-level warn >"$W/master.log" 2>&1 &
    MASTER_PID=$!; pids+=("$MASTER_PID")
    for _ in $(seq 200); do
        "$B/mqadmin" --namesrv $NS --json cluster list 2>/dev/null | grep -q '1/1 in sync' && return 0
        sleep 0.1
    done
    echo "failover_gap: the replica never got in sync" >&2; exit 1
}

"$B/nameserver" --listen $NS --metrics-listen 127.0.0.1:0 >"$W/ns.log" 2>&1 &
pids+=($!)
sleep 0.5
"$B/broker" --store-dir "$W/replica" --listen $REPLICA --namesrv $NS --metrics-listen 127.0.0.1:0 \
    --broker-id 1 --master-addr $MASTER --register-interval 1s --log-level warn >"$W/replica.log" 2>&1 &
pids+=($!)
start_master
"$B/mqadmin" --namesrv $NS topic create --topic gap --queues 4 --broker $MASTER >/dev/null
sleep 1.5
# The backlog every round's consumer reads from its first message.
"$B/mqbench" produce --namesrv $NS --topic gap --size 128 --count 1000000 --producers 32 \
    --flush-wait --verify-log "$W/backlog.log" >/dev/null 2>&1

for round in $(seq "$ROUNDS"); do
    [ "$round" -gt 1 ] && start_master
    # Live sends during the kill: those acknowledged must not be lost.
    # (bounded, so that it ends by itself and writes its whole log; sends
    # after the kill fail: there is no master to take them).
    "$B/mqbench" produce --namesrv $NS --topic gap --size 128 --count 8000 --rate 2000 \
        --flush-wait --verify-log "$W/live-$round.log" >/dev/null 2>&1 &
    producer=$!
    "$B/mqbench" consume --namesrv $NS --topic gap --group "gap-$round" --from-first --idle 6 \
        --timeout 120 --verify-log "$W/consumed-$round.log" >/dev/null 2>&1 &
    consumer=$!
    sleep 1.5
    kill_ms=$(date +%s%3N)
    kill -9 "$MASTER_PID"; wait "$MASTER_PID" 2>/dev/null || true
    wait "$producer" || true
    wait "$consumer" || true
    cat "$W/backlog.log" "$W"/live-*.log >"$W/produced.log"
    verdict=$("$B/mqbench" verify "$W/produced.log" "$W/consumed-$round.log" | tail -2 | tr '\n' ' ')
    python3 - "$W/consumed-$round.log" "$kill_ms" "$round" "$verdict" <<'PY' | tee -a "$W/rounds"
import json, sys
path, kill_ms, rnd, verdict = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
at = sorted(json.loads(l)["at_ms"] for l in open(path))
after = [t for t in at if t >= kill_ms]
if not after:
    print(f"round {rnd}: nothing received after the kill; {verdict}"); sys.exit()
before = [t for t in at if t < kill_ms]
prev = before[-1] if before else kill_ms
# The stall: the longest pause between two receipts from the last one
# before the kill to two seconds after the first one after it.
window = [prev] + [t for t in after if t <= after[0] + 2000]
stall = max(b - a for a, b in zip(window, window[1:])) if len(window) > 1 else 0
print(f"round {rnd}: stall_ms {stall} received {len(at)} ({len(after)} after the kill) {verdict}")
PY
done
python3 - "$W/rounds" <<'PY'
import re, statistics, sys
stalls = [int(m.group(1)) for m in map(re.compile(r"stall_ms (\d+)").search, open(sys.argv[1])) if m]
lost = sum(int(m.group(1)) for m in map(re.compile(r"(\d+) failed").search, open(sys.argv[1])) if m)
print(f"stall over {len(stalls)} kills: p50 {statistics.median(stalls):.0f} ms, max {max(stalls)} ms; acknowledged lost in all rounds: {lost}")
PY
