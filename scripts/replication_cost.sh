#!/usr/bin/env bash
# Produce throughput (64 senders in flight, --flush-wait) against a master
# alone, with an async replica and with a sync one, three rounds each
# (release binaries), and the CPU the master and the replica spent per
# 1,000 messages (all on the same cores: a replica on its own machine
# would not take its share from the master).
set -u
# Brokers side by side: each one's RocketMQ 5 proxy on a free port.
export MQ_BROKER_PROXY_LISTEN=127.0.0.1:0
cd "$(dirname "$0")/.."
B=target/release
# CPU ticks (1/100 s) a process used so far; 0 without one.
cpu() { [ -n "$1" ] && awk '{print $14 + $15}' /proc/$1/stat || echo 0; }
run() { # mode: none|async|sync
  D=$(mktemp -d /tmp/rc.XXXX)
  extra=""; [ $1 = sync ] && extra="--replication sync"
  $B/broker --standalone --store-dir $D/m --listen 127.0.0.1:21911 --namesrv-listen 127.0.0.1:21876 --metrics-listen 127.0.0.1:0 --log-level warn $extra ${BROKER_ARGS:-} &
  m=$!
  r=""
  if [ $1 != none ]; then
    ${REPLICA_PREFIX:-} $B/broker --standalone --store-dir $D/r --listen 127.0.0.1:21912 --namesrv-listen 127.0.0.1:21877 --metrics-listen 127.0.0.1:0 --log-level warn --broker-id 1 --master-addr 127.0.0.1:21911 ${BROKER_ARGS:-} &
    r=$!
  fi
  sleep ${SETTLE:-2}
  m0=$(cpu "$m"); r0=$(cpu "$r")
  $B/mqbench produce --namesrv 127.0.0.1:21876 --topic p --count 200000 --producers 64 --flush-wait --json 2>/dev/null | tail -1 >$D/out
  sleep 1  # the replica's last chunks
  m1=$(cpu "$m"); r1=$(cpu "$r")
  python3 -c 'import json,sys; r=json.load(open(sys.argv[2])); n=r["sent"]/1000; print(sys.argv[1], round(r["msgs_per_sec"]), "failed", r["failed"], "p99_us", r["p99_us"], "master_cpu_ms_per_1k", round((int(sys.argv[4])-int(sys.argv[3]))*10/n, 1), "replica_cpu_ms_per_1k", round((int(sys.argv[6])-int(sys.argv[5]))*10/n, 1))' $1 $D/out $m0 $m1 $r0 $r1
  kill $m $r; wait $m $r 2>/dev/null; rm -rf $D
}
for round in $(seq ${ROUNDS:-3}); do for mode in ${MODES:-none async sync}; do run $mode; done; done
