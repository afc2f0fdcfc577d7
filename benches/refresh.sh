#!/usr/bin/env bash
# The nightly refresh at scale (release build): a full refresh of a
# warehouse (model build + scoring + trader risk), then an incremental one
# after its last month arrives. The last month is held back for the first
# run and put back for the second; the summary lines give rows/s per step.
# Usage: benches/refresh.sh [WAREHOUSE]   (default: a fresh 10-million-item one)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bin aduana
bin=${CARGO_TARGET_DIR:-target}/release/aduana
wh=${1:-}
if [ -z "$wh" ]; then
    wh=$(mktemp -d)/wh
    "$bin" generate --out "$wh" --rows 10000000 --seed 42
fi
last_year=$(ls -d "$wh"/declarations/year=* | sort -t= -k2 -n | tail -1)
last=$(ls -d "$last_year"/month=* | sort -t= -k2 -n | tail -1)
partition=${last#"$wh"/declarations/}
held=$(mktemp -d)
rm -rf "$wh/risk"
mv "$wh/declarations/$partition" "$held/declarations"
[ -d "$wh/inspections/$partition" ] && mv "$wh/inspections/$partition" "$held/inspections"
TIMEFORMAT="wall %R s, user %U s, sys %S s"
echo "== full refresh without $partition"
time "$bin" refresh -w "$wh" --log-format json 2>/dev/null | grep -v '^  scored'
mv "$held/declarations" "$wh/declarations/$partition"
[ -d "$held/inspections" ] && mv "$held/inspections" "$wh/inspections/$partition"
echo "== incremental refresh: $partition arrives"
time "$bin" refresh -w "$wh" --log-format json 2>/dev/null
echo "== full refresh of everything (model rebuilt)"
rm -rf "$wh/risk"
time "$bin" refresh -w "$wh" --log-format json 2>/dev/null | grep -v '^  scored'
