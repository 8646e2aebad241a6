#!/bin/bash
# metrics on (admin listener on, the recorder installed) vs off (admin.listeners empty: no recorder,
# the metrics macros are no-ops), alternating, each on a fresh data dir
V=${VLTAVA_BIN:-$(dirname "$0")/../target/release/vltava}
for round in 1 2 3; do
  for mode in on off; do
    rm -rf /tmp/mab-data
    if [ $mode = on ]; then A="http://127.0.0.1:19644"; else A=""; fi
    $V server --data-dir /tmp/mab-data --listen 127.0.0.1:19293 --set "admin.listeners=$A" > /tmp/mab-$mode.log 2>&1 &
    pid=$!
    sleep 3
    for acks in 1 all; do
      out=$($V --brokers 127.0.0.1:19293 bench produce --topic ab-$acks --records 3000000 --record-size 100 --partitions 8 --acks $acks --json)
      echo "$round $mode acks=$acks $(echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(int(d.get("records_per_sec", d.get("records_per_second", 0))), d.get("latency_ms", {}).get("p99", d.get("p99_ms")))')"
    done
    if [ $mode = on ]; then curl -s -o /tmp/mab-metrics.txt -w "scrape %{size_download} bytes %{time_total}s\n" http://127.0.0.1:19644/metrics; fi
    kill $pid; wait $pid 2>/dev/null
  done
done
