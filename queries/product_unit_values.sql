-- title: Product unit values by origin
-- description: For one HS6 subheading, per origin and quantity unit over the last months: items, the declared unit values' quartiles (from robust_profile of log unit values) and 10th / 90th percentiles (percentile_cont), all exact, so a cluster and one machine agree, and the reference band of the risk model this session loaded for that origin (HS6 x origin, else HS6). An origin whose declared prices sit below its band is where undervaluation hides. Needs a risk model.
-- needs: model
-- columns: origin_country, quantity_unit, items, declared_low, declared_q1, declared_median, declared_q3, declared_high, reference_level, reference_low, reference_median, reference_high
-- param: hs hs6 | the HS6 subheading, 6 digits (6109.10 or a longer tariff line is read as its HS6)
-- param: months int = 12 | months back from the latest declaration
WITH items AS (
    SELECT COALESCE(origin_country, '(none)') AS origin_country, quantity_unit,
           ln(unit_value(customs_value, quantity)) AS log_value
    FROM declarations
    WHERE hs6(hs_code) = $hs
      AND declaration_date > (SELECT MAX(declaration_date) FROM declarations) - CAST(CAST($months AS VARCHAR) || ' months' AS INTERVAL)
      AND unit_value(customs_value, quantity) IS NOT NULL
),
profiles AS (
    SELECT origin_country, quantity_unit, robust_profile(log_value) AS p,
           exp(percentile_cont(0.1) WITHIN GROUP (ORDER BY log_value)) AS p10,
           exp(percentile_cont(0.9) WITHIN GROUP (ORDER BY log_value)) AS p90
    FROM items
    GROUP BY origin_country, quantity_unit
),
cells AS (
    SELECT level, origin, unit, exp(median) AS median, exp(q1) AS low, exp(q3) AS high
    FROM risk.price_profiles
    WHERE level IN (1, 2) AND hs = $hs
)
SELECT p.origin_country, p.quantity_unit, p.p['n'] AS items,
       round(p.p10, 4) AS declared_low,
       round(exp(p.p['q1']), 4) AS declared_q1,
       round(exp(p.p['median']), 4) AS declared_median,
       round(exp(p.p['q3']), 4) AS declared_q3,
       round(p.p90, 4) AS declared_high,
       CASE WHEN o.median IS NOT NULL THEN 'hs6_origin' WHEN h.median IS NOT NULL THEN 'hs6' END AS reference_level,
       round(COALESCE(o.low, h.low), 4) AS reference_low,
       round(COALESCE(o.median, h.median), 4) AS reference_median,
       round(COALESCE(o.high, h.high), 4) AS reference_high
FROM profiles p
LEFT JOIN cells o ON o.level = 1 AND o.origin = p.origin_country AND o.unit = p.quantity_unit
LEFT JOIN cells h ON h.level = 2 AND h.unit = p.quantity_unit
ORDER BY items DESC, p.origin_country, p.quantity_unit;
