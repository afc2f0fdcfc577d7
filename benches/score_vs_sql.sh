#!/usr/bin/env bash
# Scoring a Parquet warehouse: Aduana's three risk functions combined
# (risk_score) against the plain-SQL baseline an analyst would write (a
# median/MAD z-score per HS6 x origin, and "export country differs from
# origin"), both run by DataFusion over the same files at default
# parallelism. The baseline learns its references in the query; Aduana's
# come from the risk model (built once, timed separately by
# `aduana model build`). Reports both times and their ratio.
# Usage: benches/score_vs_sql.sh WAREHOUSE   (with a model)
set -euo pipefail
cd "$(dirname "$0")/.."
wh=${1:?usage: benches/score_vs_sql.sh WAREHOUSE}
cargo build --release --bin aduana
bin=${CARGO_TARGET_DIR:-target}/release/aduana
seconds() { local start end; start=$(date +%s.%N); "$@" > /dev/null; end=$(date +%s.%N); echo "$end - $start" | bc; }
baseline="WITH base AS (
    SELECT substr(hs_code, 1, 6) AS h, origin_country AS o, export_country AS e,
           ln(CAST(customs_value AS DOUBLE) / quantity) AS luv
    FROM declarations WHERE quantity > 0 AND customs_value > 0),
  med AS (SELECT h, o, median(luv) AS m FROM base GROUP BY h, o),
  dev AS (SELECT b.*, med.m, abs(b.luv - med.m) AS ad FROM base b JOIN med ON med.h = b.h AND med.o = b.o),
  mad AS (SELECT h, o, median(ad) AS mad FROM dev GROUP BY h, o)
SELECT COUNT(0.6745 * (dev.luv - dev.m) / NULLIF(mad.mad, 0)) + SUM(CASE WHEN dev.e <> dev.o THEN 1 ELSE 0 END)
FROM dev JOIN mad ON mad.h = dev.h AND mad.o = dev.o"
aduana="SELECT COUNT(risk_score(
    valuation_deviation(hs_code, origin_country, customs_value, quantity, quantity_unit, net_mass_kg, declaration_date, importer_id),
    hs_misclassification_probability(hs_code, description, customs_value, quantity, origin_country, quantity_unit, net_mass_kg),
    origin_risk(hs_code, origin_country, export_country, preference_code, importer_id, declaration_date)))
FROM declarations"
b=$(seconds "$bin" sql -w "$wh" -c "$baseline")
a=$(seconds "$bin" sql -w "$wh" -c "$aduana")
echo "plain-SQL baseline (2 signals): $b s"
echo "aduana risk_score (3 functions): $a s"
echo "ratio baseline / aduana: $(echo "scale=2; $b / $a" | bc)"
