"""Aduana against DuckDB on the same Parquet files (issue 21).

Each case is one SQL statement in each dialect, run as a fresh process
(`aduana sql -c` and a Python process running DuckDB), alternating, best of
N wall-clock times, with each process's peak resident memory. Process start
(opening the warehouse, importing DuckDB) is inside the times for both: the
cases take seconds on the 10-million-item warehouse this is meant for.

Usage: vs_duckdb.py WAREHOUSE --aduana BINARY [--runs N] [--only NAME,...]
(benches/vs_duckdb.sh builds the release binary and runs this).
"""

import argparse
import os
import re
import resource
import subprocess
import sys
import tempfile
import time

# Log unit value per item, robust profile (median, MAD) per HS6 x origin,
# origin shares per HS6 (a window), joined back to every item, summed: the
# items are written first, as an analyst writes it.
BASELINE = {
    "aduana": """
WITH items AS (
    SELECT substr(hs_code, 1, 6) AS hs6, origin_country AS origin,
           ln(unit_value(customs_value, quantity)) AS luv
    FROM declarations),
profile AS (
    SELECT hs6, origin, robust_profile(luv) AS p FROM items GROUP BY hs6, origin),
shares AS (
    SELECT hs6, origin, CAST(COUNT(*) AS DOUBLE) / SUM(COUNT(*)) OVER (PARTITION BY hs6) AS share
    FROM items GROUP BY hs6, origin)
SELECT COUNT(*) AS items,
       SUM((i.luv - p.p['median']) / NULLIF(p.p['mad'], 0)) AS z,
       SUM(s.share) AS share
FROM items i
JOIN profile p ON p.hs6 = i.hs6 AND p.origin = i.origin
JOIN shares s ON s.hs6 = i.hs6 AND s.origin = i.origin""",
    "duckdb": """
WITH items AS (
    SELECT substr(hs_code, 1, 6) AS hs6, origin_country AS origin,
           ln(CASE WHEN quantity > 0 AND customs_value > 0
                   THEN CAST(customs_value AS DOUBLE) / quantity END) AS luv
    FROM declarations),
profile AS (
    SELECT hs6, origin, median(luv) AS median, mad(luv) AS mad FROM items GROUP BY hs6, origin),
shares AS (
    SELECT hs6, origin, CAST(COUNT(*) AS DOUBLE) / SUM(COUNT(*)) OVER (PARTITION BY hs6) AS share
    FROM items GROUP BY hs6, origin)
SELECT COUNT(*) AS items,
       SUM((i.luv - p.median) / NULLIF(p.mad, 0)) AS z,
       SUM(s.share) AS share
FROM items i
JOIN profile p ON p.hs6 = i.hs6 AND p.origin = i.origin
JOIN shares s ON s.hs6 = i.hs6 AND s.origin = i.origin""",
}


def copy_of(sql, dialect, target):
    body = sql.strip()
    if dialect == "aduana":
        return f"COPY ({body}) TO '{target}' STORED AS PARQUET"
    return f"COPY ({body}) TO '{target}' (FORMAT parquet)"


# The baseline's item-level rows (before the sum), for the written case.
def baseline_rows(dialect):
    head, _ = BASELINE[dialect].split("SELECT COUNT(*) AS items")
    _, joins = BASELINE[dialect].split("FROM items i\n")
    z = "(i.luv - p.p['median']) / NULLIF(p.p['mad'], 0)" if dialect == "aduana" else "(i.luv - p.median) / NULLIF(p.mad, 0)"
    return f"{head}SELECT i.hs6, i.origin, i.luv, {z} AS z, s.share\nFROM items i\n{joins}"


BASELINE_ROWS = {d: baseline_rows(d) for d in BASELINE}


OUTCOME = """outcome AS (
    SELECT declaration_id, item_no,
           MAX(CASE WHEN result = 'fraud' THEN 1 ELSE 0 END) AS fraud,
           SUM(additional_revenue) AS recovered
    FROM inspections GROUP BY declaration_id, item_no)"""

# Five named reports of queries/ (parameters at their defaults), the same
# SQL in both dialects where it is the same.
REPORTS = {
    "declarations_per_month": """
SELECT year, month, COUNT(DISTINCT declaration_id) AS declarations, COUNT(*) AS items,
       SUM(customs_value) AS customs_value, SUM(duties_paid) AS duties_paid
FROM declarations GROUP BY year, month ORDER BY year, month""",
    "inspection_hit_rate_by_lane": f"""
WITH {OUTCOME}
SELECT COALESCE(d.lane, '(none)') AS lane, COUNT(*) AS items, COUNT(COALESCE(o.fraud, w.fraud)) AS inspected,
       COALESCE(SUM(GREATEST(o.fraud, w.fraud)), 0) AS fraud_found,
       round(100.0 * SUM(GREATEST(o.fraud, w.fraud)) / NULLIF(COUNT(COALESCE(o.fraud, w.fraud)), 0), 1) AS hit_rate_pct,
       COALESCE(SUM(o.recovered), 0)
       + COALESCE(SUM(CASE WHEN d.item_no = 1 THEN w.recovered END), 0) AS revenue_recovered
FROM declarations d
LEFT JOIN outcome o ON o.declaration_id = d.declaration_id AND o.item_no = d.item_no
LEFT JOIN (SELECT * FROM outcome WHERE item_no IS NULL) w ON w.declaration_id = d.declaration_id
GROUP BY 1 ORDER BY items DESC""",
    "value_by_chapter": """
SELECT substr(d.hs_code, 1, 2) AS chapter, n.description, COUNT(*) AS items,
       SUM(d.customs_value) AS customs_value,
       round(100.0 * CAST(SUM(d.customs_value) AS DOUBLE)
             / SUM(CAST(SUM(d.customs_value) AS DOUBLE)) OVER (), 1) AS pct_of_value
FROM declarations d
LEFT JOIN hs_nomenclature n ON n.hs_code = substr(d.hs_code, 1, 2)
GROUP BY substr(d.hs_code, 1, 2), n.description
ORDER BY customs_value DESC LIMIT 15""",
    "inspection_hit_rate_over_time": f"""
WITH {OUTCOME}
SELECT CAST(date_trunc('month', d.declaration_date) AS DATE) AS month, COALESCE(d.lane, '(none)') AS lane, d.office_code AS office,
       COUNT(*) AS items, COUNT(COALESCE(o.fraud, w.fraud)) AS inspected,
       COALESCE(SUM(GREATEST(o.fraud, w.fraud)), 0) AS fraud_found,
       round(100.0 * SUM(GREATEST(o.fraud, w.fraud)) / NULLIF(COUNT(COALESCE(o.fraud, w.fraud)), 0), 1) AS hit_rate_pct,
       COALESCE(SUM(o.recovered), 0)
       + COALESCE(SUM(CASE WHEN d.item_no = 1 THEN w.recovered END), 0) AS revenue_recovered
FROM declarations d
LEFT JOIN outcome o ON o.declaration_id = d.declaration_id AND o.item_no = d.item_no
LEFT JOIN (SELECT * FROM outcome WHERE item_no IS NULL) w ON w.declaration_id = d.declaration_id
WHERE d.declaration_date > (SELECT MAX(declaration_date) FROM declarations) - INTERVAL '12 months'
GROUP BY 1, 2, 3 ORDER BY 1, 2, 3""",
    "origin_shifts_after_remedies": """
WITH remedies AS (
    SELECT regexp_replace(hs_code, '[^0-9]', '', 'g') AS code, origin_country AS targeted,
           measure, valid_from,
           CASE WHEN COUNT(valid_to) < COUNT(*) THEN NULL ELSE MAX(valid_to) END AS valid_to
    FROM trade_remedies GROUP BY 1, 2, 3, 4),
items AS (
    SELECT r.code, r.targeted, r.measure, r.valid_from, d.origin_country AS origin,
           CASE WHEN d.declaration_date < r.valid_from THEN 'before' ELSE 'after' END AS period
    FROM declarations d JOIN remedies r ON substr(d.hs_code, 1, 6) = substr(r.code, 1, 6)
                                       AND (length(r.code) = 6 OR starts_with(d.hs_code, r.code))
    WHERE length(r.code) >= 6
      AND d.declaration_date >= r.valid_from - INTERVAL '6 months'
      AND d.declaration_date < r.valid_from + INTERVAL '6 months'
      AND (r.valid_to IS NULL OR d.declaration_date <= r.valid_to)
    UNION ALL
    SELECT r.code, r.targeted, r.measure, r.valid_from, d.origin_country AS origin,
           CASE WHEN d.declaration_date < r.valid_from THEN 'before' ELSE 'after' END AS period
    FROM declarations d JOIN remedies r ON substr(d.hs_code, 1, 2) = substr(r.code, 1, 2)
                                       AND starts_with(d.hs_code, r.code)
    WHERE length(r.code) < 6
      AND d.declaration_date >= r.valid_from - INTERVAL '6 months'
      AND d.declaration_date < r.valid_from + INTERVAL '6 months'
      AND (r.valid_to IS NULL OR d.declaration_date <= r.valid_to)),
counts AS (
    SELECT code, targeted, measure, valid_from, origin,
           SUM(CASE WHEN period = 'before' THEN 1 ELSE 0 END) AS items_before,
           SUM(CASE WHEN period = 'after' THEN 1 ELSE 0 END) AS items_after
    FROM items GROUP BY code, targeted, measure, valid_from, origin)
SELECT code, targeted, measure, origin, items_before, items_after FROM counts
ORDER BY code, valid_from, measure, origin""",
}

# Joins of the shapes analysts write, the big table first.
JOINS = {
    "items_traders_inspections": f"""
WITH {OUTCOME}
SELECT d.importer_id, t.name, COUNT(*) AS items, SUM(d.customs_value) AS value,
       COUNT(o.declaration_id) AS inspected, COALESCE(SUM(o.fraud), 0) AS fraud
FROM declarations d
JOIN traders t ON t.importer_id = d.importer_id
LEFT JOIN outcome o ON o.declaration_id = d.declaration_id AND o.item_no = d.item_no
GROUP BY d.importer_id, t.name ORDER BY value DESC LIMIT 20""",
    # The tariff line of each item is its longest matching prefix.
    "items_tariff_longest_prefix": """
WITH matched AS (
    SELECT d.declaration_id, d.item_no, d.customs_value, t.duty_rate,
           ROW_NUMBER() OVER (PARTITION BY d.declaration_id, d.item_no ORDER BY length(t.hs_code) DESC) AS r
    FROM declarations d
    JOIN tariff t ON starts_with(d.hs_code, t.hs_code))
SELECT COUNT(*) AS items, SUM(CAST(customs_value AS DOUBLE) * duty_rate / 100) AS duty
FROM matched WHERE r = 1""",
}


def aduana_sql(sql):
    """Aduana reads the reference tables under `reference.`."""
    return re.sub(r"(?<=FROM |JOIN )(traders|tariff|hs_nomenclature|trade_remedies)\b", r"reference.\1", sql)


def duckdb_views(warehouse):
    """DuckDB views over the warehouse's files, named as Aduana names them
    (the contract's layout: declarations in year=/month= folders)."""
    views = []
    for name, path, hive in [
        ("declarations", "declarations/**/*.parquet", "true"),
        ("inspections", "inspections/**/*.parquet", "false"),
        ("traders", "reference/traders.parquet", "false"),
        ("tariff", "reference/tariff.parquet", "false"),
        ("hs_nomenclature", "reference/hs_nomenclature.parquet", "false"),
        ("trade_remedies", "reference/trade_remedies.parquet", "false"),
    ]:
        full = os.path.join(warehouse, path)
        views.append(
            f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{full}', hive_partitioning={hive})"
        )
    return views


def run_duckdb_child(warehouse, sql):
    import duckdb

    con = duckdb.connect()
    for view in duckdb_views(warehouse):
        con.execute(view)
    con.execute(sql).fetchall()


def timed(command):
    """Wall seconds and peak resident MB of one process."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    stderr = process.stderr.read().decode()
    process.stderr.close()
    if status != 0:
        raise SystemExit(f"{command[0]} failed: {stderr}")
    return seconds, usage.ru_maxrss / 1024


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("warehouse")
    parser.add_argument("--aduana", required=True)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", default="")
    parser.add_argument("--duckdb-child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()

    cases = [("baseline", BASELINE["aduana"], BASELINE["duckdb"])]
    out = tempfile.mkdtemp(prefix="vs_duckdb_")
    cases.append(
        (
            "baseline_to_parquet",
            copy_of(BASELINE_ROWS["aduana"], "aduana", f"{out}/aduana.parquet"),
            copy_of(BASELINE_ROWS["duckdb"], "duckdb", f"{out}/duckdb.parquet"),
        )
    )
    for name, sql in {**REPORTS, **JOINS}.items():
        cases.append((name, aduana_sql(sql), sql))
    if args.only:
        keep = set(args.only.split(","))
        cases = [c for c in cases if c[0] in keep]

    print(f"{'case':<32} {'aduana s':>9} {'duckdb s':>9} {'ratio':>6} {'aduana MB':>10} {'duckdb MB':>10}")
    ratios = []
    for name, aduana, duck in cases:
        best = {"aduana": (float("inf"), 0.0), "duckdb": (float("inf"), 0.0)}
        for _ in range(args.runs):
            for engine in ("aduana", "duckdb"):
                if engine == "aduana":
                    command = [args.aduana, "sql", "-w", args.warehouse, "--format", "csv", "-c", aduana]
                else:
                    command = [sys.executable, __file__, args.warehouse, "--aduana", "-", "--duckdb-child", args.warehouse, duck]
                seconds, mb = timed(command)
                if seconds < best[engine][0]:
                    best[engine] = (seconds, max(mb, best[engine][1]))
                else:
                    best[engine] = (best[engine][0], max(mb, best[engine][1]))
        (a, am), (d, dm) = best["aduana"], best["duckdb"]
        ratios.append(a / d)
        print(f"{name:<32} {a:>9.2f} {d:>9.2f} {a / d:>6.2f} {am:>10.0f} {dm:>10.0f}", flush=True)
        if name == "baseline_to_parquet":
            sizes = [os.path.getsize(f"{out}/{e}.parquet") / 1e6 for e in ("aduana", "duckdb")]
            print(f"{'  written MB':<32} {sizes[0]:>9.1f} {sizes[1]:>9.1f}")
    worst = max(ratios)
    print(f"worst ratio aduana / duckdb: {worst:.2f} (goal <= 1.0)")


if __name__ == "__main__":
    if "--duckdb-child" in sys.argv:
        i = sys.argv.index("--duckdb-child")
        run_duckdb_child(sys.argv[i + 1], sys.argv[i + 2])
    else:
        main()
