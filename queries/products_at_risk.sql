-- title: Products at risk
-- description: The HS6 subheadings with the most expected revenue at risk in the last published months: items, customs value, expected revenue at risk, items scoring high and items whose unit value lies at least 2 robust z below its reference. Where to look for undervaluation and misclassification by product. Needs a published refresh.
-- columns: hs6, items, customs_value, expected_revenue_at_risk, high_items, valuation_flags, importers
-- param: months int = 3 | published months counted, back from the latest
-- param: limit int = 50 | products listed
WITH latest AS (
    SELECT MAX(year * 12 + month - 1) AS m FROM risk.declaration_scores
)
SELECT hs6(hs_code) AS hs6,
       COUNT(*) AS items,
       SUM(customs_value) AS customs_value,
       round(COALESCE(SUM(risk_score * revenue_at_risk), 0), 2) AS expected_revenue_at_risk,
       SUM(CASE WHEN risk_level = 'high' THEN 1 ELSE 0 END) AS high_items,
       SUM(CASE WHEN array_has(risk_flags(valuation_deviation, NULL, NULL), 'valuation') THEN 1 ELSE 0 END) AS valuation_flags,
       COUNT(DISTINCT importer_id) AS importers
FROM risk.declaration_scores, latest
WHERE year * 12 + month - 1 > latest.m - $months
GROUP BY hs6(hs_code)
ORDER BY expected_revenue_at_risk DESC, hs6
LIMIT $limit;
