#!/usr/bin/env bash
# Times `aduana generate` on 10 million items with the release binary, the
# issue's speed target (under a minute on this 2-core machine), then one
# full-scan aggregate to show the warehouse is usable.
# Usage: benches/generate_10m.sh [ROWS] [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${1:-10000000}
out=${2:-$(mktemp -d)/wh}
cargo build --release --bin aduana
bin=${CARGO_TARGET_DIR:-target}/release/aduana
TIMEFORMAT="wall %R s, user %U s, sys %S s"
echo "== aduana generate --rows $rows"
time "$bin" generate --out "$out" --rows "$rows" --seed 42 --overwrite
du -sh "$out"
echo "== full-scan aggregate"
time "$bin" sql -w "$out" -c "SELECT COUNT(*) AS items, SUM(customs_value) AS value FROM declarations"
echo "== aduana model build"
time "$bin" model build -w "$out"
