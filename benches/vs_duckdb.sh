#!/usr/bin/env bash
# Aduana against DuckDB on the same Parquet files (issue 21): the plain-SQL
# baseline, the same written to Parquet, five named reports and two joins
# of the shapes analysts write, alternating, best of N, with peak memory.
# DuckDB is pinned in benches/requirements-duckdb.txt (its own venv).
# Usage: benches/vs_duckdb.sh WAREHOUSE [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
wh=${1:?usage: benches/vs_duckdb.sh WAREHOUSE [RUNS]}
runs=${2:-3}
if [ ! -x .venv-duckdb/bin/python ]; then
    python3 -m venv .venv-duckdb
fi
.venv-duckdb/bin/pip install --quiet --disable-pip-version-check -r benches/requirements-duckdb.txt
cargo build --release --bin aduana
bin=${CARGO_TARGET_DIR:-target}/release/aduana
.venv-duckdb/bin/python benches/vs_duckdb.py "$wh" --aduana "$bin" --runs "$runs"
