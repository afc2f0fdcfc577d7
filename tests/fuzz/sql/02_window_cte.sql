WITH p AS (SELECT hs6(hs_code) AS h, origin_country AS o, robust_profile(ln(unit_value(customs_value, quantity))) AS rp FROM declarations GROUP BY 1, 2)
SELECT h, o, rp['median'] AS m, ROW_NUMBER() OVER (PARTITION BY h ORDER BY rp['n'] DESC) AS r FROM p WHERE rp['n'] > 10
