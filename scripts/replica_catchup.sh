#!/usr/bin/env bash
# Replica catch-up rate on loopback (release binaries): fills a master with
# COUNT (1,000,000) 1 KiB messages, then starts an empty replica RUNS (3)
# times and reads the rate it logs once it has the master's whole log
# ("caught up with the master": bytes from the stream's start to the
# master's end, over the time since it connected).
set -u
# Brokers side by side: each one's RocketMQ 5 proxy on a free port.
export MQ_BROKER_PROXY_LISTEN=127.0.0.1:0
cd "$(dirname "$0")/.."
B=${MQ_BIN_DIR:-target/release}
D=$(mktemp -d /tmp/catchup.XXXX)
trap 'kill $m 2>/dev/null; rm -rf $D' EXIT
$B/broker --standalone --store-dir $D/m --listen 127.0.0.1:21911 --namesrv-listen 127.0.0.1:21876 --metrics-listen 127.0.0.1:0 --log-level warn &
m=$!
sleep 2
$B/mqbench produce --namesrv 127.0.0.1:21876 --topic fill --count ${COUNT:-1000000} --producers 16 --batch 32 --size 1024 --json 2>/dev/null | tail -1 | python3 -c 'import json,sys; r=json.load(sys.stdin); print("filled", r["sent"], "msgs", round(r["msgs_per_sec"]), "msg/s")'
sleep 5
for run in $(seq ${RUNS:-3}); do
  rm -rf $D/r
  $B/broker --standalone --store-dir $D/r --listen 127.0.0.1:21912 --namesrv-listen 127.0.0.1:21877 --metrics-listen 127.0.0.1:0 \
      --log-level warn,mq_broker::replication::follower=info --broker-id 1 --master-addr 127.0.0.1:21911 2>$D/r.log &
  r=$!
  for _ in $(seq 600); do grep -q "caught up with the master" $D/r.log && break; sleep 0.1; done
  line=$(grep "caught up with the master" $D/r.log)
  echo "run $run: $(grep -o 'bytes=[0-9]*' <<<"$line") $(grep -o 'seconds=[0-9.]*' <<<"$line") $(grep -o 'mb_per_sec=[0-9.]*' <<<"$line")"
  kill $r; wait $r 2>/dev/null
done
