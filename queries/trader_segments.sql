-- title: Trader segments
-- description: The importers of the latest published month by segment (the refresh ranks importers by expected revenue at risk: the top 5% are high, the next 20% medium): importers, items, customs value, expected revenue at risk, and what inspections of their items found. Needs a published refresh.
-- columns: month, segment, importers, items, customs_value, expected_revenue_at_risk, items_inspected, fraud_found, hit_rate_pct
WITH latest AS (
    SELECT MAX(year * 12 + month - 1) AS m FROM risk.trader_risk
)
SELECT make_date(year, month, 1) AS month,
       segment,
       COUNT(*) AS importers,
       SUM(items) AS items,
       SUM(customs_value) AS customs_value,
       round(SUM(expected_revenue_at_risk), 2) AS expected_revenue_at_risk,
       SUM(items_inspected) AS items_inspected,
       SUM(fraud_found) AS fraud_found,
       round(100.0 * SUM(fraud_found) / NULLIF(SUM(items_inspected), 0), 1) AS hit_rate_pct
FROM risk.trader_risk, latest
WHERE year * 12 + month - 1 = latest.m
GROUP BY year, month, segment
ORDER BY CASE segment WHEN 'high' THEN 1 WHEN 'medium' THEN 2 ELSE 3 END;
