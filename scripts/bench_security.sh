#!/usr/bin/env bash
# What authentication and TLS cost: produce and consume through the SDKs
# (mqbench) against two standalone brokers in one run, one plain and one
# with --auth and TLS (a user with Pub and Sub, certificates from
# mqsecrets), the workloads alternating between them, RUNS times each
# (default 3), which side goes first alternating, printing medians and the secured/plain ratio.
#
#   ./scripts/bench_security.sh
set -euo pipefail
# Brokers side by side: each one's RocketMQ 5 proxy on a free port.
export MQ_BROKER_PROXY_LISTEN=127.0.0.1:0
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
COUNT=${COUNT:-200000}
BACKLOG=${BACKLOG:-500000}
cargo build --release -q -p mq-broker -p mq-tools
DIR=$(mktemp -d "${BENCH_DIR:-/tmp}/mqsecbench.XXXXXX")
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$DIR"; }
trap cleanup EXIT
B=target/release
$B/mqsecrets init "$DIR/secrets" >/dev/null
S=$DIR/secrets

$B/broker --standalone --store-dir "$DIR/plain" --listen 127.0.0.1:22911 \
    --namesrv-listen 127.0.0.1:22876 --metrics-listen 127.0.0.1:0 --log-level warn &
PIDS+=($!)
$B/broker --standalone --store-dir "$DIR/secure" --listen 127.0.0.1:23911 \
    --namesrv-listen 127.0.0.1:23876 --metrics-listen 127.0.0.1:0 --log-level warn \
    --auth --auth-access-key admin --auth-secret-file "$S/admin.secret" \
    --tls-cert-file "$S/server.pem" --tls-key-file "$S/server.key" --tls-ca-file "$S/ca.pem" &
PIDS+=($!)
sleep 2
PLAIN=127.0.0.1:22876
SECURE=127.0.0.1:23876
ADMIN=(env MQ_TLS_CA_FILE="$S/ca.pem" MQ_ACCESS_KEY=admin MQ_SECRET_KEY="$(cat "$S/admin.secret")")
# The application's user: what it needs and nothing else.
"${ADMIN[@]}" $B/mqadmin --namesrv $SECURE user create --user app --secret app-secret-bench >/dev/null
"${ADMIN[@]}" $B/mqadmin --namesrv $SECURE acl create --user app --resource 'Topic:*' --resource 'Group:*' \
    --actions Pub,Sub,Get >/dev/null
APP=(env MQ_TLS_CA_FILE="$S/ca.pem" MQ_ACCESS_KEY=app MQ_SECRET_KEY=app-secret-bench)

# run NAME ARGS...: the workload RUNS times on each broker, alternating;
# prints both medians and the ratio. @NS@ is the nameserver, @RUN@ the run.
run() {
    local name=$1; shift
    for run in $(seq "$RUNS"); do
        # Alternate which side goes first, so neither always meets the
        # page cache, the allocator or the CPU clock in the same state.
        local sides=(plain secure)
        (( run % 2 == 0 )) && sides=(secure plain)
        for side in "${sides[@]}"; do
            local ns=$PLAIN prefix=()
            [[ $side == secure ]] && ns=$SECURE prefix=("${APP[@]}")
            local args=("${@//@NS@/$ns}")
            args=("${args[@]//@RUN@/$run}")
            "${prefix[@]}" $B/mqbench "${args[@]}" --json 2>/dev/null | tail -1 >>"$DIR/$side.jsonl"
        done
    done
    python3 - "$name" "$DIR/plain.jsonl" "$DIR/secure.jsonl" <<'PY'
import json, statistics, sys
name, plain, secure = sys.argv[1:]
def med(path):
    rows = [json.loads(l) for l in open(path) if l.strip()]
    return statistics.median(r["msgs_per_sec"] for r in rows), max(r["failed"] for r in rows), [round(r["msgs_per_sec"]) for r in rows]
p, pf, pr = med(plain)
s, sf, sr = med(secure)
# Each run's two sides ran back to back: the median of their ratios is
# less exposed to the machine's drift than the ratio of the medians.
paired = statistics.median(b / a for a, b in zip(pr, sr))
print(f"{name:<40} plain {p:>9.0f} msg/s  auth+TLS {s:>9.0f} msg/s  ratio {s / p:.2f} (per run {paired:.2f})  failed {pf}/{sf}  (runs: {pr} / {sr})")
PY
    rm -f "$DIR/plain.jsonl" "$DIR/secure.jsonl"
}

echo "== authentication + TLS against plain, mqbench medians of $RUNS runs, 1 KiB messages, same machine"
if [[ -n ${ONLY_BULK:-} ]]; then
    run "produce, 16 senders, batches of 32" produce --namesrv @NS@ --topic batch --count "$BACKLOG" --producers 16 --batch 32
    run "consume a backlog, pull batch 32" consume --namesrv @NS@ --topic batch --group "b32-$$-@RUN@" --from-first --count "$BACKLOG" --timeout 120
    exit 0
fi
run "produce, 64 senders in flight"   produce --namesrv @NS@ --topic p64 --count "$COUNT" --producers 64
run "produce, 256 senders in flight"  produce --namesrv @NS@ --topic p256 --count "$COUNT" --producers 256
run "produce, 16 senders, batches of 32" produce --namesrv @NS@ --topic batch --count "$BACKLOG" --producers 16 --batch 32
run "consume a backlog, pull batch 32" consume --namesrv @NS@ --topic batch --group "b32-$$-@RUN@" --from-first --count "$BACKLOG" --timeout 120
run "produce, 1 synchronous sender"   produce --namesrv @NS@ --topic sync1 --count 20000 --producers 1
