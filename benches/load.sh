#!/usr/bin/env bash
# A bounded load test of `aduana serve` on loopback (issue 17): the
# dashboard with 2,000 page requests from 20 concurrent clients, Flight
# SQL with 1,000 queries from 8 concurrent clients; error rate and
# p50/p95/p99 per surface (benches/load_test.py). The server, the clients
# and the page warm-up share this machine's cores.
#
# Usage: benches/load.sh WAREHOUSE [BINARY]
# (a refreshed warehouse: `aduana refresh -w WAREHOUSE` first; BINARY
# defaults to the release build, so two builds can be compared)
set -euo pipefail
cd "$(dirname "$0")/.."
wh=$1
bin=${2:-}
if [ -z "$bin" ]; then
    cargo build --release --bin aduana
    bin=${CARGO_TARGET_DIR:-target}/release/aduana
fi
python=${ADUANA_PYTHON:-.venv/bin/python}

log=$(mktemp)
ADUANA_FLIGHT_USERS=bench:bench "$bin" serve -w "$wh" --addr 127.0.0.1:0 \
    --http 127.0.0.1:0 --max-concurrent-queries 8 2> "$log" &
server=$!
trap 'kill $server 2>/dev/null; rm -f "$log"' EXIT
for _ in $(seq 1 3000); do
    grep -q "dashboard ready" "$log" && grep -q "listening addr=" "$log" && break
    sleep 0.1
done
flight_port=$(grep -o "listening addr=grpc://127.0.0.1:[0-9]*" "$log" | grep -o "[0-9]*$")
http_port=$(grep -o "dashboard listening url=http://127.0.0.1:[0-9]*" "$log" | grep -o "[0-9]*$")
echo "== $bin on $wh: dashboard :$http_port, Flight SQL :$flight_port"
"$python" benches/load_test.py --http "$http_port" --flight "$flight_port" \
    --user bench --password bench
echo "== server RSS after the run: $(ps -o rss= -p $server) KiB"
