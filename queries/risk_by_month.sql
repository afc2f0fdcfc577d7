-- title: Risk by month
-- description: Per month of lodgement, from the published risk tables: declarations, items, customs value, expected revenue at risk (each item's risk score times the duties and taxes at stake) and items per risk level. Needs a published refresh (aduana refresh).
-- columns: month, declarations, items, customs_value, expected_revenue_at_risk, high_items, medium_items, low_items
-- param: months int = 24 | months back from the latest published month
WITH latest AS (
    SELECT MAX(year * 12 + month - 1) AS m FROM risk.declaration_scores
)
SELECT make_date(year, month, 1) AS month,
       COUNT(DISTINCT declaration_id) AS declarations,
       COUNT(*) AS items,
       SUM(customs_value) AS customs_value,
       round(COALESCE(SUM(risk_score * revenue_at_risk), 0), 2) AS expected_revenue_at_risk,
       SUM(CASE WHEN risk_level = 'high' THEN 1 ELSE 0 END) AS high_items,
       SUM(CASE WHEN risk_level = 'medium' THEN 1 ELSE 0 END) AS medium_items,
       SUM(CASE WHEN risk_level = 'low' THEN 1 ELSE 0 END) AS low_items
FROM risk.declaration_scores, latest
WHERE year * 12 + month - 1 > latest.m - $months
GROUP BY year, month
ORDER BY year, month;
