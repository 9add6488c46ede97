#!/usr/bin/env bash
# Replica catch-up rate on loopback (release binaries): fills a master with
# COUNT (1,000,000) 1 KiB messages, then times empty replicas until their
# CommitLog ends where the master's does, three times. Needs grpcurl.
set -u
cd "$(dirname "$0")/.."
B=target/release
D=$(mktemp -d /tmp/catchup.XXXX)
$B/broker --standalone --store-dir $D/m --listen 127.0.0.1:21911 --namesrv-listen 127.0.0.1:21876 --metrics-listen 127.0.0.1:0 --log-level warn &
m=$!
sleep 2
$B/mqbench produce --namesrv 127.0.0.1:21876 --topic fill --count ${COUNT:-1000000} --producers 16 --batch 32 --size 1024 --json 2>/dev/null | tail -1 | python3 -c 'import json,sys; r=json.load(sys.stdin); print("filled", r["sent"], "msgs", round(r["msgs_per_sec"]), "msg/s")'
end() { grpcurl -plaintext -d '{}' 127.0.0.1:$1 mq.broker.v1.Broker/GetBrokerStats | python3 -c 'import json,sys; print(int(json.load(sys.stdin).get("commitlogMaxOffset",0)))'; }
target=$(end 21911)
for run in 1 2 3; do
  rm -rf $D/r
  start=$(date +%s.%N)
  $B/broker --standalone --store-dir $D/r --listen 127.0.0.1:21912 --namesrv-listen 127.0.0.1:21877 --metrics-listen 127.0.0.1:0 --log-level warn --broker-id 1 --master-addr 127.0.0.1:21911 &
  r=$!
  prev=0; prev_t=$(date +%s.%N); best=0
  until [ "$(end 21912 2>/dev/null)" = "$target" ]; do
    sleep 0.25
    now=$(end 21912 2>/dev/null || echo 0); t=$(date +%s.%N)
    best=$(python3 -c "import sys; r=(int(sys.argv[1])-int(sys.argv[2]))/(float(sys.argv[3])-float(sys.argv[4]))/1e6; print(max(r,float(sys.argv[5])))" $now $prev $t $prev_t $best)
    prev=$now; prev_t=$t
  done
  echo "run $run: best 0.25 s window $best MB/s"
  stop=$(date +%s.%N)
  python3 -c "import sys; t=float(sys.argv[2])-float(sys.argv[1]); b=int(sys.argv[3]); print(f'run $run: {b/1e6:.0f} MB in {t:.2f} s = {b/1e6/t:.0f} MB/s (includes the replica start)')" $start $stop $target
  kill $r; wait $r 2>/dev/null
done
kill $m; wait $m 2>/dev/null; rm -rf $D
