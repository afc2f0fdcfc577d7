-- title: Trader activity
-- description: One importer per month, from the published risk tables: declarations, items, customs value, expected revenue at risk, mean risk score and items scoring high. Needs a published refresh.
-- columns: month, declarations, items, customs_value, expected_revenue_at_risk, mean_risk_score, high_items
-- param: importer text | the importer's id (TIN), as in declarations.importer_id
-- param: months int = 24 | months back from the latest published month
WITH latest AS (
    SELECT MAX(year * 12 + month - 1) AS m FROM risk.declaration_scores
)
SELECT make_date(year, month, 1) AS month,
       COUNT(DISTINCT declaration_id) AS declarations,
       COUNT(*) AS items,
       SUM(customs_value) AS customs_value,
       round(COALESCE(SUM(risk_score * revenue_at_risk), 0), 2) AS expected_revenue_at_risk,
       round(AVG(risk_score), 3) AS mean_risk_score,
       SUM(CASE WHEN risk_level = 'high' THEN 1 ELSE 0 END) AS high_items
FROM risk.declaration_scores, latest
WHERE importer_id = $importer
  AND year * 12 + month - 1 > latest.m - $months
GROUP BY year, month
ORDER BY year, month;
