#!/usr/bin/env bash
# What a SQL92 filter costs against a tag filter: one standalone broker, a
# backlog whose messages carry tags t0..t9 and a property `decile` 0..9 in
# turn (mqbench produce --deciles), then consumers that select one tenth,
# by tag (`t3`, decided from the ConsumeQueue's tag hash) and by SQL
# (`decile = 3`, decided from each message read on the broker), alternating
# RUNS times (default 5), each with a fresh group from the first offset.
# Prints the medians and the SQL/tag ratio.
#
#   ./scripts/bench_filters.sh
set -euo pipefail
export MQ_BROKER_PROXY_LISTEN=127.0.0.1:0
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
BACKLOG=${BACKLOG:-500000}
SELECTED=$((BACKLOG / 10))
cargo build --release -q -p mq-broker -p mq-tools
DIR=$(mktemp -d "${BENCH_DIR:-/tmp}/mqfilterbench.XXXXXX")
PID=
cleanup() { [[ -n $PID ]] && kill "$PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$DIR"; }
trap cleanup EXIT
B=target/release
$B/broker --standalone --store-dir "$DIR/store" --listen 127.0.0.1:24911 \
    --namesrv-listen 127.0.0.1:24876 --metrics-listen 127.0.0.1:0 --log-level warn &
PID=$!
sleep 2
NS=127.0.0.1:24876
$B/mqbench produce --namesrv $NS --topic filtered --count "$BACKLOG" --producers 16 --batch 32 --deciles --json >/dev/null 2>&1

echo "== consume a tenth of a $BACKLOG-message backlog (1 KiB), medians of $RUNS runs, release build"
for run in $(seq "$RUNS"); do
    sides=(tags sql)
    (( run % 2 == 0 )) && sides=(sql tags)
    for side in "${sides[@]}"; do
        filter=(--tags t3)
        [[ $side == sql ]] && filter=(--sql "decile = 3")
        $B/mqbench consume --namesrv $NS --topic filtered --group "f-$side-$run" --from-first \
            --count "$SELECTED" --timeout 120 "${filter[@]}" --json 2>/dev/null | tail -1 >>"$DIR/$side.jsonl"
    done
done
python3 - "$DIR/tags.jsonl" "$DIR/sql.jsonl" <<'PY'
import json, statistics, sys
def med(path):
    rows = [json.loads(l) for l in open(path) if l.strip()]
    return statistics.median(r["msgs_per_sec"] for r in rows), [round(r["msgs_per_sec"]) for r in rows]
t, tr = med(sys.argv[1])
s, sr = med(sys.argv[2])
print(f"tag t3        {t:>9.0f} msg/s selected  (runs: {tr})")
print(f"sql decile=3  {s:>9.0f} msg/s selected  (runs: {sr})")
print(f"sql / tag     {s / t:.2f}")
PY
