#!/usr/bin/env bash
# Flight SQL streaming speed: a 10-column result of every declaration item
# streamed by `aduana serve` to a pyarrow.flight client on loopback, against
# the same engine running the same query over the same Parquet files in
# process (EXPLAIN ANALYZE runs the plan to its end and discards the rows).
# The target: Flight at no less than half the in-process rate.
#
# Usage: benches/flight_stream.sh WAREHOUSE [release|dev]
# (make a 10-million-item warehouse with benches/generate_10m.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
wh=$1
profile=${2:-release}
cargo build --profile "$profile" --bin aduana
dir=$([ "$profile" = dev ] && echo debug || echo "$profile")
bin=${CARGO_TARGET_DIR:-target}/$dir/aduana
python=${ADUANA_PYTHON:-.venv/bin/python}
query="SELECT declaration_id, item_no, declaration_date, importer_id, hs_code, origin_country, customs_value, quantity, net_mass_kg, lane FROM declarations"

echo "== in process: EXPLAIN ANALYZE (same plan, rows discarded)"
start=$(date +%s.%N)
"$bin" sql -w "$wh" -c "EXPLAIN ANALYZE $query" > /dev/null
local_s=$(echo "$(date +%s.%N) - $start" | bc -l)

log=$(mktemp)
ADUANA_FLIGHT_USERS=bench:bench "$bin" serve -w "$wh" --addr 127.0.0.1:0 2> "$log" &
server=$!
trap 'kill $server 2>/dev/null; rm -f "$log"' EXIT
for _ in $(seq 1 600); do
    grep -q "listening addr=" "$log" && break
    sleep 0.1
done
port=$(grep -o "listening addr=grpc://127.0.0.1:[0-9]*" "$log" | grep -o "[0-9]*$")

echo "== Flight SQL to pyarrow on 127.0.0.1:$port"
"$python" - "$port" "$query" "$local_s" <<'PY'
import sys, time
import pyarrow.flight as fl

port, query, local_s = sys.argv[1], sys.argv[2], float(sys.argv[3])

def field(number, payload):
    # protobuf length-delimited field
    n, out = len(payload), bytearray([number << 3 | 2])
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out) + payload

command = field(1, b"type.googleapis.com/arrow.flight.protocol.sql.CommandStatementQuery") + field(
    2, field(1, query.encode())
)
client = fl.FlightClient(f"grpc://127.0.0.1:{port}")
options = fl.FlightCallOptions(headers=[client.authenticate_basic_token("bench", "bench")])
start = time.perf_counter()
info = client.get_flight_info(fl.FlightDescriptor.for_command(command), options)
reader = client.do_get(info.endpoints[0].ticket, options)
rows = nbytes = 0
for chunk in reader:
    rows += chunk.data.num_rows
    nbytes += chunk.data.nbytes
flight_s = time.perf_counter() - start
print(f"rows {rows:,}, columns {len(info.schema)}, {nbytes / 1e6:,.0f} MB of Arrow data")
print(f"in process: {local_s:6.2f} s  {rows / local_s / 1e6:6.2f} M rows/s")
print(f"Flight SQL: {flight_s:6.2f} s  {rows / flight_s / 1e6:6.2f} M rows/s  {nbytes / flight_s / 1e6:,.0f} MB/s")
print(f"ratio Flight / in process: {local_s / flight_s:.2f} (target >= 0.5)")
PY
grep "aduana-serve query" "$log" | tail -1
