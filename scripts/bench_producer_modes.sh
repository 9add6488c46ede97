#!/usr/bin/env bash
# Producer modes against each other on one standalone broker (async
# flush, release build). SET=guarantees (the default): what the producer's
# guarantees cost against plain sends:
#
#   idempotent      numbered sends (the default) against `--no-idempotence`
#   transactional   a half message and a commit per message (`--transactional`)
#
# SET=batching: natural batching (the default) against every send alone:
#
#   alone           `--max-in-flight 1000000`: no send ever waits for a
#                   request slot, so each is its own request
#   natural         the default: at most 4 requests on the wire, the sends
#                   that arrive meanwhile leave together in one SendMany
#
# Each workload runs RUNS times (default 5), the modes alternating which
# goes first; every run uses a topic of its own. Prints every run, the
# medians, their ratio to the first mode and the median of the per-run
# ratios.
#
#   ./scripts/bench_producer_modes.sh
#   COUNT=100000 RUNS=7 SET=batching ./scripts/bench_producer_modes.sh
set -euo pipefail
export MQ_BROKER_PROXY_LISTEN=127.0.0.1:0
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
COUNT=${COUNT:-50000}
cargo build --release -q -p mq-broker -p mq-tools
DIR=$(mktemp -d "${BENCH_DIR:-/tmp}/mqmodebench.XXXXXX")
PID=
cleanup() { [[ -n $PID ]] && kill "$PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$DIR"; }
trap cleanup EXIT
B=target/release
$B/broker --standalone --store-dir "$DIR/store" --listen 127.0.0.1:24931 \
    --namesrv-listen 127.0.0.1:24896 --metrics-listen 127.0.0.1:0 --log-level warn &
PID=$!
sleep 2
NS=127.0.0.1:24896

# name | mqbench produce arguments | modes compared (ratios to the first)
case ${SET:-guarantees} in
guarantees) workloads=(
    "1 synchronous sender|--producers 1 --count $((COUNT / 5))|plain idempotent transactional"
    "64 senders in flight|--producers 64 --count $COUNT|plain idempotent transactional"
    "16 senders, batches of 32|--producers 16 --batch 32 --count $((COUNT * 4))|plain idempotent"
) ;;
batching) workloads=(
    "1 synchronous sender|--producers 1 --count $((COUNT / 5))|alone natural"
    "64 senders in flight|--producers 64 --count $((COUNT * 2))|alone natural"
    "256 senders in flight|--producers 256 --count $((COUNT * 4))|alone natural"
    "16 senders, batches of 32|--producers 16 --batch 32 --count $((COUNT * 4))|alone natural"
) ;;
*) echo "SET is guarantees or batching" >&2; exit 2 ;;
esac
mode_args() {
    case $1 in
    plain) echo "--no-idempotence" ;;
    idempotent | natural) echo "" ;;
    transactional) echo "--transactional" ;;
    alone) echo "--max-in-flight 1000000" ;;
    esac
}
echo "== produce 1 KiB messages, medians of $RUNS runs, release build"
for w in "${!workloads[@]}"; do
    IFS='|' read -r name args modes <<<"${workloads[$w]}"
    read -r -a order <<<"$modes"
    for run in $(seq "$RUNS"); do
        # Rotate which mode goes first.
        rotated=("${order[@]:$((run % ${#order[@]}))}" "${order[@]:0:$((run % ${#order[@]}))}")
        for mode in "${rotated[@]}"; do
            # shellcheck disable=SC2086
            $B/mqbench produce --namesrv $NS --topic "bench-$w-$mode-$run" $args $(mode_args "$mode") \
                --json 2>/dev/null | tail -1 >>"$DIR/$w-$mode.jsonl"
        done
    done
    python3 - "$name" "$DIR" "$w" $modes <<'PY'
import json, os, statistics, sys
name, root, w, modes = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
medians = {}
for mode in modes:
    rows = [json.loads(l) for l in open(os.path.join(root, f"{w}-{mode}.jsonl")) if l.strip()]
    runs = [round(r["msgs_per_sec"]) for r in rows]
    medians[mode] = statistics.median(runs)
    print(f"{name:<28} {mode:<14} {medians[mode]:>9.0f} msg/s  (runs: {runs})")
runs = {mode: [json.loads(l)["msgs_per_sec"] for l in open(os.path.join(root, f"{w}-{mode}.jsonl")) if l.strip()]
        for mode in modes}
base = modes[0]
for mode in modes[1:]:
    # Each run's modes ran back to back: the median of the per-run ratios
    # is steadier than the ratio of medians when the machine drifts.
    paired = statistics.median(m / p for m, p in zip(runs[mode], runs[base]))
    print(f"{name:<28} {mode:<14} {medians[mode] / medians[base]:.2f} of {base} (per-run ratios: median {paired:.2f})")
PY
done
