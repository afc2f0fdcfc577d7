#!/usr/bin/env bash
# Throughput of the risk functions on in-memory batches, one core
# (--target-partitions 1), with the release binary: the declarations are
# first copied into a memory table, then each query is timed. A plain
# expression over the same columns is the floor; a function's cost per row is its
# time above that floor.
# Usage: benches/risk_functions.sh WAREHOUSE   (a warehouse with a model;
#        benches/generate_10m.sh makes one)
set -euo pipefail
cd "$(dirname "$0")/.."
wh=${1:?usage: benches/risk_functions.sh WAREHOUSE}
cargo build --release --bin aduana
bin=${CARGO_TARGET_DIR:-target}/release/aduana
"$bin" sql -w "$wh" --target-partitions 1 --timing --format csv -c "
CREATE TABLE t AS SELECT hs_code, description, origin_country, export_country, preference_code, importer_id,
       declaration_date, CAST(customs_value AS DOUBLE) AS value, quantity, quantity_unit, net_mass_kg
FROM declarations;
SELECT SUM(length(hs_code) + length(origin_country)) + SUM(value / quantity) AS floor FROM t;
SELECT COUNT(hs6(hs_code)) AS hs6 FROM t;
SELECT COUNT(valuation_deviation(hs_code, origin_country, value, quantity)) AS valuation_short FROM t;
SELECT COUNT(valuation_deviation(hs_code, origin_country, value, quantity, quantity_unit, net_mass_kg, declaration_date)) AS valuation FROM t;
SELECT COUNT(valuation_deviation(hs_code, origin_country, value, quantity, quantity_unit, net_mass_kg, declaration_date, importer_id)) AS valuation_importer FROM t;
SELECT COUNT(origin_risk(hs_code, origin_country, export_country, preference_code, NULL, declaration_date)) AS origin_no_importer FROM t;
SELECT COUNT(origin_risk(hs_code, origin_country, export_country, preference_code, importer_id, declaration_date)) AS origin FROM t;
SELECT COUNT(hs_misclassification_probability(hs_code, description)) AS misclassification FROM t;
SELECT COUNT(hs_misclassification_probability(hs_code, description, value, quantity, origin_country, quantity_unit, net_mass_kg)) AS misclassification_prices FROM t;
SELECT COUNT(hs_suggest(description)) AS suggest FROM t;
SELECT COUNT(risk_score(valuation_deviation(hs_code, origin_country, value, quantity, quantity_unit, net_mass_kg, declaration_date, importer_id), hs_misclassification_probability(hs_code, description, value, quantity, origin_country, quantity_unit, net_mass_kg), origin_risk(hs_code, origin_country, export_country, preference_code, importer_id, declaration_date))) AS all_three FROM t;
"
