#!/usr/bin/env bash
# The cluster test: the real docker-compose.yml (controller mode), driven
# from this host.
#
#  1. builds the image (deploy/docker/build-images.sh), starts the cluster
#     (three controllers, two nameservers, two groups of two members;
#     broker-a replicates in sync) with sync flush, and waits for every
#     health check and both groups' SyncStateSets to hold both members;
#  2. grpcurl lists the nameserver's and a controller's services, and
#     QueryRoute for the demo topic names both groups;
#  3. a verifiable mqbench producer sends while a consumer group consumes;
#     ROUNDS times (default 10), at a random moment once broker-a's two
#     members are in sync again, broker-a's master is killed (docker kill,
#     SIGKILL): the controller elects the other member, producers and the
#     consumer follow, and the killed one is started again and rejoins as
#     a replica. The unavailability window of each round (kill to the
#     first send acknowledged by broker-a's new master) is reported, p50
#     and max, and must stay within 5 s and 10 s;
#  4. mqbench verify proves every acknowledged message was consumed;
#  5. metrics from the host (brokers, nameserver, controllers);
#  6. broker-a's replica is cut off the network (docker network
#     disconnect): its master drops it from the SyncStateSet through the
#     controller and acknowledges again; reconnected, it is added back;
#  7. a partition: broker-a's master is cut off from the controllers and
#     its replica (iptables DROP rules in its container's network
#     namespace, set from the host with nsenter) while clients still reach
#     it: it acknowledges nothing from then on, the replica is elected and
#     acknowledges in the next epoch; healed, the old master cuts the tail
#     it wrote alone and rejoins; every acknowledged message is consumed;
#  8. docker-compose down -v, always.
#
# The cluster runs with authentication and TLS on, as docker-compose.yml
# has it: the tools here use the CA and the administrator's key it made.
#
# Skipped (exit 0) when no Docker engine answers. Ports on 127.0.0.1:
# 29876-29880, 30911, 30912, 30921, 30922 and 3555x/3557x, so that it runs
# beside a cluster on the default ports.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! docker info >/dev/null 2>&1; then
    echo "cluster test: skipped, no Docker engine"
    exit 0
fi
export MQ_NAMESRV_A_PORT=29876 MQ_NAMESRV_B_PORT=29877 MQ_BROKER_A_PORT=30911 MQ_BROKER_B_PORT=30921
export MQ_BROKER_A1_PORT=30912 MQ_BROKER_B1_PORT=30922
export MQ_CONTROLLER_1_PORT=29878 MQ_CONTROLLER_2_PORT=29879 MQ_CONTROLLER_3_PORT=29880
export MQ_BROKER_A_METRICS_PORT=35557 MQ_BROKER_B_METRICS_PORT=35567
export MQ_BROKER_A1_METRICS_PORT=35559 MQ_BROKER_B1_METRICS_PORT=35569
export MQ_NAMESRV_A_METRICS_PORT=35558 MQ_NAMESRV_B_METRICS_PORT=35568
export MQ_CONTROLLER_1_METRICS_PORT=35571 MQ_CONTROLLER_2_METRICS_PORT=35572 MQ_CONTROLLER_3_METRICS_PORT=35573
export MQ_BROKER_A_PROXY_PORT=38081 MQ_BROKER_A1_PROXY_PORT=38082
export MQ_BROKER_B_PROXY_PORT=38091 MQ_BROKER_B1_PROXY_PORT=38092
export MQ_PROXY_PORT=38080 MQ_PROXY_METRICS_PORT=35560
export MQ_FLUSH=sync MQ_TAG=cluster-test
ROUNDS=${ROUNDS:-10}
RATE=${RATE:-1000}
PROJECT=mqclustertest
NAMESRV="127.0.0.1:$MQ_NAMESRV_A_PORT;127.0.0.1:$MQ_NAMESRV_B_PORT"
export MQ_CONTROLLER="127.0.0.1:$MQ_CONTROLLER_1_PORT;127.0.0.1:$MQ_CONTROLLER_2_PORT;127.0.0.1:$MQ_CONTROLLER_3_PORT"
WORK=$(mktemp -d)
compose() { docker-compose -p "$PROJECT" "$@"; }
step() { echo "cluster test: $*"; }
# On failure the work files and every container's log are kept in
# $KEEP (default: a new directory under /tmp) for the post-mortem.
fail() {
    echo "cluster test: FAILED: $*" >&2
    compose logs --tail 40 >&2 || true
    local keep=${KEEP:-$(mktemp -d /tmp/cluster-test-failure.XXXXXX)}
    cp -r "$WORK/." "$keep/" 2>/dev/null || true
    compose logs --no-color >"$keep/compose.log" 2>&1 || true
    echo "cluster test: work files and logs kept in $keep" >&2
    # Again after the logs: a CI report that keeps only the tail names it.
    echo "cluster test: FAILED: $*" >&2
    exit 1
}
cleanup() {
    jobs -p | xargs -r kill 2>/dev/null || true
    compose down -v --remove-orphans >/dev/null 2>&1 || true
    docker image rm "mq:$MQ_TAG" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT
now_ms() { date +%s%3N; }

step "building the image"
deploy/docker/build-images.sh "$MQ_TAG"
compose down -v --remove-orphans >/dev/null 2>&1 || true

step "starting three controllers, two nameservers and two broker groups of two members (sync flush, authentication and TLS on)"
compose up -d
container() { compose ps -q "$1"; }
# The secrets the cluster made on its first start: the CA to verify the
# servers with and the administrator's key, for the tools on this host.
deadline=$((SECONDS + 60))
until [[ $(docker inspect -f '{{.State.Status}} {{.State.ExitCode}}' "$(container secrets)" 2>/dev/null) == "exited 0" ]]; do
    ((SECONDS < deadline)) || fail "the cluster's secrets were not made"
    sleep 1
done
docker cp "$(container secrets):/var/lib/mq/secrets/ca.pem" "$WORK/ca.pem"
docker cp "$(container secrets):/var/lib/mq/secrets/admin.secret" "$WORK/admin.secret"
MQ_SECRET_KEY=$(tr -d '\n' <"$WORK/admin.secret")
export MQ_TLS_CA_FILE="$WORK/ca.pem" MQ_ACCESS_KEY=admin MQ_SECRET_KEY
# grpcurl signed as the administrator (RocketMQ 5's MQv2-HMAC-SHA1 over
# x-mq-date-time), verifying the servers against the cluster's CA.
grpcurl_signed() {
    local when signature
    when=$(date -u +%Y%m%dT%H%M%SZ)
    signature=$(printf '%s' "$when" | python3 -c 'import hashlib, hmac, sys
print(hmac.new(sys.argv[1].encode(), sys.stdin.buffer.read(), hashlib.sha1).hexdigest())' "$MQ_SECRET_KEY")
    grpcurl -cacert "$MQ_TLS_CA_FILE" -H "x-mq-date-time: $when" \
        -H "authorization: MQv2-HMAC-SHA1 Credential=admin, SignedHeaders=x-mq-date-time, Signature=$signature" "$@"
}
healthy() { [[ $(docker inspect -f '{{.State.Health.Status}}' "$(container "$1")" 2>/dev/null) == healthy ]]; }
deadline=$((SECONDS + 120))
for service in controller-1 controller-2 controller-3 namesrv-a namesrv-b broker-a-1 broker-a-2 broker-b-1 broker-b-2 proxy; do
    until healthy "$service"; do
        ((SECONDS < deadline)) || fail "$service is not healthy after 120 s"
        sleep 1
    done
done
until [[ $(docker inspect -f '{{.State.Status}} {{.State.ExitCode}}' "$(container create-demo-topic)" 2>/dev/null) == "exited 0" ]]; do
    ((SECONDS < deadline)) || fail "the demo topic was not created"
    sleep 1
done

MQADMIN=target/release/mqadmin
# group FIELD of broker-X as the controller leader holds it (python-ish path).
group() {
    $MQADMIN --json controller status 2>/dev/null | python3 -c '
import json, sys
status = json.load(sys.stdin)
if status["leader"] is None: sys.exit(1)
group = next(g for g in status["groups"] if g["group"] == sys.argv[1])
print(json.dumps(group[sys.argv[2]]))' "$1" "$2"
}
in_sync() { # both members of both groups in their SyncStateSets
    [[ $(group broker-a sync_state_set 2>/dev/null) == "[1, 2]" ]] &&
        [[ $(group broker-b sync_state_set 2>/dev/null) == "[1, 2]" ]]
}
until in_sync; do
    ((SECONDS < deadline)) || fail "the groups are not in sync: $($MQADMIN controller status 2>&1)"
    sleep 1
done
$MQADMIN controller status

step "grpcurl from the host"
services=$(grpcurl -cacert "$MQ_TLS_CA_FILE" "127.0.0.1:$MQ_NAMESRV_A_PORT" list)
grep -qx 'mq.nameserver.v1.NameServer' <<<"$services" || fail "the nameserver does not list its service: $services"
grep -qx 'grpc.health.v1.Health' <<<"$services" || fail "the nameserver does not list the health service: $services"
services=$(grpcurl -cacert "$MQ_TLS_CA_FILE" "127.0.0.1:$MQ_CONTROLLER_1_PORT" list)
grep -qx 'mq.controller.v1.Controller' <<<"$services" || fail "a controller does not list its service: $services"
route=""
until grep -q "127.0.0.1:$MQ_BROKER_B_PORT" <<<"$route" && grep -q "127.0.0.1:$MQ_BROKER_A_PORT" <<<"$route"; do
    ((SECONDS < deadline)) || fail "the demo route does not name both groups' masters: $route"
    sleep 1
    route=$(grpcurl_signed -d '{"topic":"demo"}' "127.0.0.1:$MQ_NAMESRV_B_PORT" \
        mq.nameserver.v1.NameServer/QueryRoute 2>&1 || true)
done
grep -q '"broker-a"' <<<"$route" && grep -q '"broker-b"' <<<"$route" || fail "route: $route"
anonymous=$(grpcurl -cacert "$MQ_TLS_CA_FILE" -d '{"topic":"demo"}' "127.0.0.1:$MQ_NAMESRV_B_PORT" \
    mq.nameserver.v1.NameServer/QueryRoute 2>&1 || true)
grep -q "Unauthenticated" <<<"$anonymous" || fail "an unsigned route query was not refused: $anonymous"
plaintext=$(grpcurl -plaintext "127.0.0.1:$MQ_NAMESRV_B_PORT" list 2>&1 || true)
grep -q "grpc.health.v1.Health" <<<"$plaintext" && fail "a plaintext client was served: $plaintext"

step "RocketMQ 5's protocol: the standalone proxy and a broker's own port"
v2() { grpcurl_signed -H "x-mq-client-id: cluster-test@1" "$@"; }
# A topic of its own: the demo topic's consumer verifies what mqbench sent.
$MQADMIN --namesrv "$NAMESRV" topic create --topic v2demo --queues 2 --cluster DefaultCluster >/dev/null || fail "cannot create topic v2demo"
route=""
until grep -q '"code": "OK"' <<<"$route" && grep -q '"broker-a"' <<<"$route" && grep -q '"broker-b"' <<<"$route"; do
    ((SECONDS < deadline + 60)) || fail "the standalone proxy's route: $route"
    sleep 0.5
    route=$(v2 -d "{\"topic\":{\"name\":\"v2demo\"},\"endpoints\":{\"addresses\":[{\"host\":\"127.0.0.1\",\"port\":$MQ_PROXY_PORT}]}}" \
        "127.0.0.1:$MQ_PROXY_PORT" apache.rocketmq.v2.MessagingService/QueryRoute 2>&1 || true)
done
grep -q "\"port\": $MQ_PROXY_PORT" <<<"$route" || fail "the standalone proxy's route does not name it: $route"
for endpoint in "127.0.0.1:$MQ_PROXY_PORT" "127.0.0.1:$MQ_BROKER_A_PROXY_PORT" "127.0.0.1:$MQ_BROKER_A1_PROXY_PORT"; do
    id=$(printf '01%032X' "$RANDOM$RANDOM")
    sent=$(v2 -d "{\"messages\":[{\"topic\":{\"name\":\"v2demo\"},\"systemProperties\":{\"messageId\":\"${id:0:34}\",\"messageType\":\"NORMAL\"},\"body\":\"aGk=\"}]}" \
        "$endpoint" apache.rocketmq.v2.MessagingService/SendMessage 2>&1 || true)
    # The group's master takes it; its replica's port says to use the master.
    if grep -q '"code": "OK"' <<<"$sent"; then
        echo "cluster test: RocketMQ 5 send through $endpoint: OK"
    else
        grep -q 'FORBIDDEN\|PRECONDITION\|no writable queue' <<<"$sent" || fail "a RocketMQ 5 send through $endpoint: $sent"
        echo "cluster test: RocketMQ 5 send through $endpoint refused as a replica's: $(grep -o '"message": "[^"]*"' <<<"$sent" | head -1)"
    fi
done
unsigned=$(grpcurl -cacert "$MQ_TLS_CA_FILE" -d '{}' "127.0.0.1:$MQ_PROXY_PORT" \
    apache.rocketmq.v2.MessagingService/Heartbeat 2>&1 || true)
grep -q "Unauthenticated" <<<"$unsigned" || fail "an unsigned RocketMQ 5 call was not refused: $unsigned"

step "producing at $RATE/s while a group consumes; $ROUNDS times broker-a's master is killed"
MQBENCH=target/release/mqbench
$MQBENCH consume --namesrv "$NAMESRV" --topic demo --group cluster-test --from-first \
    --idle 20 --timeout 900 --verify-log "$WORK/consumed.jsonl" --json \
    >"$WORK/consume.out" 2>"$WORK/consume.err" &
CONSUMER=$!
$MQBENCH produce --namesrv "$NAMESRV" --topic demo --count 100000000 --producers 8 \
    --rate "$RATE" --flush-wait --verify-log "$WORK/produced.jsonl" --json \
    >"$WORK/produce.out" 2>"$WORK/produce.err" &
PRODUCER=$!
: >"$WORK/kills"
for round in $(seq "$ROUNDS"); do
    until in_sync; do
        ((SECONDS < deadline + 60 * round + 120)) || fail "round $round: the groups are not in sync: $($MQADMIN controller status 2>&1)"
        sleep 0.5
    done
    sleep "$(python3 -c 'import random; print(round(random.uniform(1, 4), 2))')"
    master=$(group broker-a master) || fail "round $round: no controller leader"
    epoch=$(group broker-a epoch)
    victim=$(container "broker-a-$master")
    killed_at=$(now_ms)
    docker kill "$victim" >/dev/null
    # The window runs from the moment the engine saw the process die (not
    # from the docker command, whose own latency is no part of it); acks
    # count from when docker kill returned (the old master is dead by then).
    died_at=$(python3 -c 'import datetime, sys
t = sys.argv[1].rstrip("Z")
whole, _, frac = t.partition(".")
at = datetime.datetime.fromisoformat(whole).replace(tzinfo=datetime.timezone.utc)
print(int(at.timestamp() * 1000) + int((frac + "000")[:3]))' "$(docker inspect -f '{{.State.FinishedAt}}' "$victim")")
    echo "$died_at $(now_ms)" >>"$WORK/kills"
    until next=$(group broker-a master 2>/dev/null) && [[ $next != "$master" && $next != null ]]; do
        (($(now_ms) - killed_at < 30000)) || fail "round $round: no new master 30 s after killing broker-a-$master"
        sleep 0.2
    done
    step "round $round: killed broker-a-$master (epoch $epoch) at $killed_at; broker-a-$next elected in epoch $(group broker-a epoch), seen after $(($(now_ms) - killed_at)) ms"
    compose start "broker-a-$master" >/dev/null
done
until in_sync; do
    ((SECONDS < deadline + 60 * ROUNDS + 180)) || fail "the groups are not in sync after the last round"
    sleep 0.5
done
sleep 3
kill -TERM "$PRODUCER"
# It exits non-zero when any send failed: those in flight to a killed
# master do, after their retries.
wait "$PRODUCER" || true
produced=$(tail -1 "$WORK/produce.out")
step "producer: $produced"
sent=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["sent"])' "$produced") ||
    fail "the producer did not report: $(tail -3 "$WORK/produce.err")"
failed=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["failed"])' "$produced")
((failed * 100 <= sent)) || fail "$failed sends failed, more than 1 % of the $sent acknowledged"
for broker in broker-a broker-b; do
    acked=$(grep -c "\"broker\":\"$broker\"" "$WORK/produced.jsonl" || true)
    ((acked > 0)) || fail "no send was acknowledged by $broker"
    step "$broker acknowledged $acked sends"
done
# The window of each round: from the master's death to the first send
# broker-a acknowledged after docker kill returned.
python3 - "$WORK/kills" "$WORK/produced.jsonl" >"$WORK/windows" <<'PY' || fail "cannot measure the windows"
import json, statistics, sys
kills = [tuple(map(int, line.split())) for line in open(sys.argv[1]) if line.strip()]
acks = sorted(json.loads(line)["acked_ms"] for line in open(sys.argv[2])
              if '"broker":"broker-a"' in line)
windows = []
for before, dead in kills:
    after = next((a for a in acks if a > dead), None)
    if after is None:
        sys.exit(f"no send acknowledged by broker-a after the kill at {before}")
    windows.append(after - before)
print(" ".join(str(w) for w in windows))
print(f"{statistics.median(windows):.0f} {max(windows)}")
PY
read -r p50 max < <(tail -1 "$WORK/windows")
step "unavailability of broker-a per round (ms): $(head -1 "$WORK/windows")"
step "unavailability: p50 ${p50} ms, max ${max} ms over $ROUNDS rounds"
((p50 <= 5000)) || fail "median unavailability ${p50} ms is above 5 s"
((max <= 10000)) || fail "worst unavailability ${max} ms is above 10 s"
wait "$CONSUMER" || fail "the consumer failed: $(tail -3 "$WORK/consume.err")"
step "consumer: $(tail -1 "$WORK/consume.out")"

step "verifying"
# (It exits non-zero when something was lost: the check below says so.)
$MQBENCH verify "$WORK/produced.jsonl" "$WORK/consumed.jsonl" | tee "$WORK/verify.out" || true
grep -q "^$sent passed, 0 failed$" "$WORK/verify.out" || fail "not every acknowledged message was consumed"

step "metrics from the host"
scrape() { python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' "$1"; }
# Whole bodies first: grep -q stopping early would fail the pipe (pipefail).
broker_b=$(scrape "http://127.0.0.1:$MQ_BROKER_B_METRICS_PORT/metrics") || fail "no metrics from broker-b-1"
namesrv_a=$(scrape "http://127.0.0.1:$MQ_NAMESRV_A_METRICS_PORT/metrics") || fail "no metrics from namesrv-a"
grep -q '^mq_broker_messages_in_total{topic="demo"} [1-9]' <<<"$broker_b" ||
    fail "broker-b-1's metrics show no demo sends"
grep -q '^mq_namesrv_live_brokers 4$' <<<"$namesrv_a" ||
    fail "namesrv-a does not count four live brokers: $(grep live_brokers <<<"$namesrv_a")"
elections=0
for port in $MQ_CONTROLLER_1_METRICS_PORT $MQ_CONTROLLER_2_METRICS_PORT $MQ_CONTROLLER_3_METRICS_PORT; do
    metrics=$(scrape "http://127.0.0.1:$port/metrics") || fail "no metrics from the controller on $port"
    grep -q '^mq_controller_group_epoch{group="broker-a"} [0-9]' <<<"$metrics" ||
        fail "the controller on $port shows no epoch for broker-a"
    count=$(grep -Eo '^mq_controller_elections_total [0-9]+' <<<"$metrics" | awk '{print $2}')
    elections=$((elections + ${count:-0}))
done
((elections >= ROUNDS)) || fail "the controllers count $elections elections, not at least $ROUNDS"

step "docker network disconnect broker-a's replica: its master drops it from the SyncStateSet and acknowledges again"
master=$(group broker-a master)
replica=$((3 - master))
replica_container=$(container "broker-a-$replica")
network=$(docker inspect -f '{{range $name, $_ := .NetworkSettings.Networks}}{{$name}}{{end}}' "$replica_container")
master_port=$([[ $master == 1 ]] && echo "$MQ_BROKER_A_PORT" || echo "$MQ_BROKER_A1_PORT")
send_a() { # one send to broker-a's master, queue 0; prints grpcurl's answer
    grpcurl_signed -max-time 30 -d '{"message":{"topic":"demo","body":"cmVwbGljYXRlZD8="},"queue_id":0}' \
        "127.0.0.1:$master_port" mq.broker.v1.Broker/SendMessage 2>&1 || true
}
docker network disconnect "$network" "$replica_container"
shrink_deadline=$((SECONDS + 30))
until [[ $(group broker-a sync_state_set) == "[$master]" ]]; do
    ((SECONDS < shrink_deadline)) || fail "the SyncStateSet did not shrink: $(group broker-a sync_state_set)"
    sleep 0.5
done
grep -q '"status": "SEND_OK"' <<<"$(send_a)" || fail "the master alone does not acknowledge: $(send_a)"
step "shrunk to [$master]; sends acknowledged"
docker network connect --alias "broker-a-$replica" "$network" "$replica_container"
until [[ $(group broker-a sync_state_set) == "[1, 2]" ]]; do
    ((SECONDS < shrink_deadline + 60)) || fail "the replica was not added back: $(group broker-a sync_state_set)"
    sleep 0.5
done
grep -q '"status": "SEND_OK"' <<<"$(send_a)" || fail "sends to broker-a are not acknowledged after the replica rejoined"
step "reconnected: the replica is back in the SyncStateSet"

step "partition: broker-a's master loses the controllers and its replica; clients still reach it"
master=$(group broker-a master)
epoch=$(group broker-a epoch)
replica=$((3 - master))
master_container=$(container "broker-a-$master")
master_port=$([[ $master == 1 ]] && echo "$MQ_BROKER_A_PORT" || echo "$MQ_BROKER_A1_PORT")
pid=$(docker inspect -f '{{.State.Pid}}' "$master_container")
peers=""
for service in controller-1 controller-2 controller-3 "broker-a-$replica"; do
    peers+=" $(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$(container "$service")")"
done
partition() { # -A cuts, -D heals: every packet between the master and its peers dropped
    local ip
    for ip in $peers; do
        nsenter -t "$pid" -n iptables "$1" INPUT -s "$ip" -j DROP
        nsenter -t "$pid" -n iptables "$1" OUTPUT -d "$ip" -j DROP
    done
}
$MQBENCH produce --namesrv "$NAMESRV" --topic demo --count 100000000 --producers 4 \
    --rate 200 --flush-wait --verify-log "$WORK/partition-produced.jsonl" --json \
    >"$WORK/partition-produce.out" 2>"$WORK/partition-produce.err" &
PRODUCER=$!
sleep 2
partition -A
cut_at=$(now_ms)
# Sends straight to the cut-off master: it cannot reach the replica its
# SyncStateSet requires, nor the controller to drop it, so it
# acknowledges none, before and after the replica is elected.
send_a >"$WORK/cut-off-send" &
cut_off_send=$!
until next=$(group broker-a master 2>/dev/null) && [[ $next == "$replica" ]]; do
    (($(now_ms) - cut_at < 30000)) || fail "broker-a-$replica was not elected 30 s after the partition"
    sleep 0.2
done
wait "$cut_off_send"
grep -q '"status": "SEND_OK"' "$WORK/cut-off-send" &&
    fail "the cut-off master acknowledged a send: $(cat "$WORK/cut-off-send")"
elected_at=$(now_ms)
new_epoch=$(group broker-a epoch)
# One election: a second one would mean the replica's restart into the
# master role waited on calls to the unreachable master.
((new_epoch == epoch + 1)) || fail "broker-a-$replica was elected in epoch $new_epoch, not $((epoch + 1))"
step "partitioned at $cut_at; broker-a-$replica elected in epoch $new_epoch after $(($(now_ms) - cut_at)) ms"
answer=$(send_a)
grep -q '"status": "SEND_OK"' <<<"$answer" && fail "the deposed master acknowledged a send: $answer"
# The producer follows: broker-a acknowledges again, on the new master
# (the old one acknowledges nothing since the cut).
until python3 -c 'import json, sys
since = int(sys.argv[2])
acks = (json.loads(line) for line in open(sys.argv[1]))
sys.exit(0 if any(a["broker"] == "broker-a" and a["acked_ms"] > since for a in acks) else 1)' \
    "$WORK/partition-produced.jsonl" "$elected_at"; do
    (($(now_ms) - cut_at < 60000)) || fail "no send acknowledged by broker-a's new master"
    sleep 0.5
done
partition -D
step "healed: broker-a-$master cuts what it wrote alone and rejoins as a replica"
until docker logs "$master_container" 2>&1 | grep -q "diverged from the master's; cut recorded"; do
    (($(now_ms) - cut_at < 90000)) || fail "broker-a-$master did not cut its tail after the partition healed"
    sleep 0.5
done
until in_sync; do
    (($(now_ms) - cut_at < 120000)) || fail "broker-a-$master did not rejoin: $(group broker-a sync_state_set)"
    sleep 0.5
done
[[ $(group broker-a epoch) == "$new_epoch" ]] || fail "another election after healing: epoch $(group broker-a epoch)"
kill -TERM "$PRODUCER"
wait "$PRODUCER" || true
$MQBENCH consume --namesrv "$NAMESRV" --topic demo --group partition-check --from-first \
    --idle 10 --timeout 300 --verify-log "$WORK/partition-consumed.jsonl" --json \
    >"$WORK/partition-consume.out" 2>"$WORK/partition-consume.err" ||
    fail "the check consumer failed: $(tail -3 "$WORK/partition-consume.err")"
partition_sent=$(wc -l <"$WORK/partition-produced.jsonl")
$MQBENCH verify "$WORK/partition-produced.jsonl" "$WORK/partition-consumed.jsonl" | tee "$WORK/partition-verify.out" || true
grep -q "^$partition_sent passed, 0 failed$" "$WORK/partition-verify.out" ||
    fail "not every message acknowledged around the partition was consumed"
step "partition: $partition_sent acknowledged, all consumed"
compose logs --no-color >"$WORK/all.log" 2>&1
grep -qF "$MQ_SECRET_KEY" "$WORK/all.log" && fail "the administrator's secret key appears in the cluster's logs"
step "no secret in $(wc -l <"$WORK/all.log") log lines"
step "passed"
