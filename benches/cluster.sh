#!/usr/bin/env bash
# Scoring on Apache Ballista (one scheduler and two executors on this
# machine, all on 127.0.0.1) against the in-process engine, release build.
# The query runs every risk function on every item and returns one row, so
# the times are execution, not result transfer. Each is run twice; then
# each executor alone (one task slot) for the per-executor throughput the
# sizing estimate in docs/cluster.md uses. Last, the refresh job rescoring
# every partition (scores, rejects, trader risk written by the executors),
# in-process, then on one executor and on two (one task slot each), with
# each step's rate and the client's CPU: it rewrites the warehouse's
# published risk tables.
# Usage: benches/cluster.sh [WAREHOUSE]   (needs a refreshed warehouse: default /tmp/b10m)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bin aduana
bin=${CARGO_TARGET_DIR:-target}/release/aduana
wh=${1:-/tmp/b10m}
query="SELECT COUNT(*) AS items, SUM(risk) AS risk FROM scored_items"
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
TIMEFORMAT="wall %R s (client user %U s)"

echo "== in-process, 2 cores"
for i in 1 2; do time "$bin" sql -w "$wh" --format csv -c "$query"; done
echo "== in-process, 1 partition (one core's throughput)"
time "$bin" sql -w "$wh" --target-partitions 1 --format csv -c "$query"

start_cluster() { # slots per executor, executors
    "$bin" scheduler -w "$wh" --bind 127.0.0.1:50650 2>"$work/s.log" & pids+=($!)
    sleep 2
    for e in $(seq 1 "$2"); do
        "$bin" executor -w "$wh" --scheduler 127.0.0.1:50650 --port $((50650 + 2*e)) \
            --grpc-port $((50651 + 2*e)) --concurrent-tasks "$1" --work-dir "$work" \
            2>"$work/e$e.log" & pids+=($!)
    done
    sleep 3
}
stop_cluster() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; pids=(); sleep 1; }

echo "== cluster: scheduler + 2 executors x 1 task slot, 2 tasks per stage"
start_cluster 1 2
for i in 1 2; do time "$bin" sql -w "$wh" --cluster df://127.0.0.1:50650 --target-partitions 2 --format csv -c "$query"; done
echo "== same cluster, 8 tasks per stage (queued on 2 slots)"
time "$bin" sql -w "$wh" --cluster df://127.0.0.1:50650 --target-partitions 8 --format csv -c "$query"
stop_cluster

echo "== one executor, 1 task slot (per-executor throughput on one core)"
start_cluster 1 1
time "$bin" sql -w "$wh" --cluster df://127.0.0.1:50650 --target-partitions 1 --format csv -c "$query"
stop_cluster

first=$(ls -d "$wh"/declarations/year=* | sort | head -1 | sed 's/.*year=//')
# Each step's time and rate from a refresh's JSON log.
steps() {
    python3 -c '
import json, sys
for line in open(sys.argv[1]):
    try:
        e = json.loads(line)
    except ValueError:
        continue
    if e.get("event") == "step" and e.get("rows"):
        print("  step {step:<12} {seconds:>7.1f} s  {rows_per_s:>12,.0f} rows/s".format(**e))
' "$1"
}
TIMEFORMAT="wall %R s, client user %U s, sys %S s"
echo "== refresh rescoring every partition since $first-01: in-process"
time "$bin" refresh -w "$wh" --since "$first-01-01" --log-format json 2>"$work/r0.log" >/dev/null
steps "$work/r0.log"
# The client's CPU share is (user + sys) / wall over the machine's cores;
# the rest of the work is the executors'.
for executors in 1 2; do
    echo "== the same on the cluster: $executors executor(s) x 1 task slot"
    start_cluster 1 "$executors"
    time "$bin" refresh -w "$wh" --cluster df://127.0.0.1:50650 --target-partitions "$executors" \
        --since "$first-01-01" --log-format json 2>"$work/r$executors.log" >/dev/null
    steps "$work/r$executors.log"
    stop_cluster
done
