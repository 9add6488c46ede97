#!/usr/bin/env bash
# Produce throughput (64 senders in flight, --flush-wait) against a master
# alone, with an async replica and with a sync one, three rounds each
# (release binaries).
set -u
cd "$(dirname "$0")/.."
B=target/release
run() { # mode: none|async|sync
  D=$(mktemp -d /tmp/rc.XXXX)
  extra=""; [ $1 = sync ] && extra="--replication sync"
  $B/broker --standalone --store-dir $D/m --listen 127.0.0.1:21911 --namesrv-listen 127.0.0.1:21876 --metrics-listen 127.0.0.1:0 --log-level warn $extra &
  m=$!
  r=""
  if [ $1 != none ]; then
    $B/broker --standalone --store-dir $D/r --listen 127.0.0.1:21912 --namesrv-listen 127.0.0.1:21877 --metrics-listen 127.0.0.1:0 --log-level warn --broker-id 1 --master-addr 127.0.0.1:21911 &
    r=$!
  fi
  sleep ${SETTLE:-2}
  $B/mqbench produce --namesrv 127.0.0.1:21876 --topic p --count 200000 --producers 64 --flush-wait --json 2>/dev/null | tail -1 | python3 -c 'import json,sys; r=json.load(sys.stdin); print(sys.argv[1], round(r["msgs_per_sec"]), "failed", r["failed"], "p99_us", r["p99_us"])' $1
  kill $m $r; wait $m $r 2>/dev/null; rm -rf $D
}
for round in $(seq ${ROUNDS:-3}); do for mode in ${MODES:-none async sync}; do run $mode; done; done
