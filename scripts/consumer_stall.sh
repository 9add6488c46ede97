#!/usr/bin/env bash
# How long a SIGKILLed consumer's queues stall, with default settings:
# two consumer processes share a group on a topic with four queues under a
# steady producer; one is SIGKILLed. Per round the stall is the longest
# any message acknowledged after the kill waited to reach the survivor
# (acknowledgement to receipt), which is how long the dead member's queues
# went unread; every message acknowledged after the kill must reach the
# survivor. Then the median and the max. Release binaries.
#
#   scripts/consumer_stall.sh [ROUNDS]
set -euo pipefail
# Brokers side by side: each one's RocketMQ 5 proxy on a free port.
export MQ_BROKER_PROXY_LISTEN=127.0.0.1:0
cd "$(dirname "$0")/.."
B=${MQ_BIN_DIR:-target/release}
ROUNDS=${1:-10}
W=$(mktemp -d /tmp/stall.XXXX)
NS=127.0.0.1:22976 BROKER=127.0.0.1:22991
pids=()
cleanup() { kill -9 "${pids[@]}" 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT

"$B/nameserver" --listen $NS --metrics-listen 127.0.0.1:0 >"$W/ns.log" 2>&1 &
pids+=($!)
sleep 0.5
"$B/broker" --store-dir "$W/broker" --listen $BROKER --namesrv $NS --metrics-listen 127.0.0.1:0 \
    --register-interval 1s --log-level warn >"$W/broker.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
    "$B/mqadmin" --namesrv $NS cluster list >/dev/null 2>&1 && break
    sleep 0.1
done

for round in $(seq "$ROUNDS"); do
    topic="stall-$round"
    "$B/mqadmin" --namesrv $NS topic create --topic "$topic" --queues 4 --broker $BROKER >/dev/null
    sleep 1.5
    # Both members from the topic's first message: the survivor resumes
    # the dead member's queues from whatever it committed, or the start.
    "$B/mqbench" consume --namesrv $NS --topic "$topic" --group stall --from-first \
        --timeout 60 >/dev/null 2>&1 &
    victim=$!; pids+=("$victim")
    "$B/mqbench" consume --namesrv $NS --topic "$topic" --group stall --from-first \
        --timeout 9 --verify-log "$W/survivor-$round.log" >/dev/null 2>&1 &
    survivor=$!
    sleep 2
    "$B/mqbench" produce --namesrv $NS --topic "$topic" --size 128 --count 2400 --rate 400 \
        --verify-log "$W/produced-$round.log" >/dev/null 2>&1 &
    producer=$!
    sleep 2
    kill_ms=$(date +%s%3N)
    kill -9 "$victim"; wait "$victim" 2>/dev/null || true
    wait "$producer"
    wait "$survivor" || true
    python3 - "$W/produced-$round.log" "$W/survivor-$round.log" "$kill_ms" "$round" <<'PY' | tee -a "$W/rounds"
import json, sys
produced, received, kill_ms, rnd = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
acked = {}
for line in open(produced):
    m = json.loads(line)
    if m["acked_ms"] > kill_ms:
        acked[m["id"]] = m["acked_ms"]
got, before = {}, set()
for line in open(received):
    m = json.loads(line)
    got.setdefault(m["id"], m["at_ms"])
    if m["at_ms"] < kill_ms:
        before.add(m["queue"])
waits = [got[i] - a for i, a in acked.items() if i in got]
missing = sum(1 for i in acked if i not in got)
# The survivor must have shared the queues before the kill, or nothing
# was taken over.
stall = max(waits) if waits and len(before) < 4 and not missing else -1
print(f"round {rnd}: stall_ms {stall} acked_after_kill {len(acked)} missing {missing} "
      f"survivor_queues_before {len(before)}")
PY
done

python3 - "$W/rounds" <<'PY'
import re, statistics, sys
rows = [l for l in open(sys.argv[1])]
stalls = [int(re.search(r"stall_ms (-?\d+)", l).group(1)) for l in rows]
missing = sum(int(re.search(r"missing (\d+)", l).group(1)) for l in rows)
if missing or min(stalls) < 0:
    print(f"FAILED: {missing} acknowledged after a kill never received (or nothing taken over)")
    sys.exit(1)
print(f"stall: p50 {statistics.median(stalls) / 1000:.3f} s, max {max(stalls) / 1000:.3f} s "
      f"over {len(stalls)} kills; every message acknowledged after a kill received")
PY
