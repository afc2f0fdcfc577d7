-- title: Trader audit candidates
-- description: Every importer active in the last published months, ranked by expected revenue at risk over them: items, customs value, the highest segment it reached in a month, its riskiest item's score, items scoring high, the items flagged for each kind of fraud (unit value at least 2 robust z below its reference; description naming other goods, probability 0.5 or more; origin risk 0.5 or more), what inspections found, and the reasons of its item with the most revenue at risk. Reasons to look, not verdicts. Needs a published refresh.
-- columns: importer_id, segment, items, customs_value, expected_revenue_at_risk, max_risk_score, high_risk_items, valuation_flags, classification_flags, origin_flags, items_inspected, fraud_found, hit_rate_pct, top_reasons
-- param: months int = 3 | published months counted, back from the latest
WITH latest AS (
    SELECT MAX(year * 12 + month - 1) AS m FROM risk.trader_risk
),
traders AS (
    SELECT importer_id,
           SUM(items) AS items,
           SUM(customs_value) AS customs_value,
           SUM(expected_revenue_at_risk) AS expected,
           MAX(max_risk_score) AS max_risk_score,
           SUM(high_risk_items) AS high_risk_items,
           SUM(items_inspected) AS items_inspected,
           SUM(fraud_found) AS fraud_found,
           MIN(CASE segment WHEN 'high' THEN 1 WHEN 'medium' THEN 2 ELSE 3 END) AS segment_order
    FROM risk.trader_risk, latest
    WHERE year * 12 + month - 1 > latest.m - $months
    GROUP BY importer_id
),
flags AS (
    SELECT importer_id,
           SUM(CASE WHEN array_has(item_flags, 'valuation') THEN 1 ELSE 0 END) AS valuation_flags,
           SUM(CASE WHEN array_has(item_flags, 'classification') THEN 1 ELSE 0 END) AS classification_flags,
           SUM(CASE WHEN array_has(item_flags, 'origin') THEN 1 ELSE 0 END) AS origin_flags,
           first_value(reasons ORDER BY risk_score * COALESCE(revenue_at_risk, 0) DESC, declaration_id, item_no)
               FILTER (WHERE reasons <> '') AS top_reasons
    FROM (SELECT *, risk_flags(valuation_deviation, hs_misclassification_probability, origin_risk) AS item_flags
          FROM risk.declaration_scores) s, latest
    WHERE year * 12 + month - 1 > latest.m - $months
    GROUP BY importer_id
)
SELECT t.importer_id,
       CASE t.segment_order WHEN 1 THEN 'high' WHEN 2 THEN 'medium' ELSE 'low' END AS segment,
       t.items,
       t.customs_value,
       round(t.expected, 2) AS expected_revenue_at_risk,
       round(t.max_risk_score, 3) AS max_risk_score,
       t.high_risk_items,
       COALESCE(f.valuation_flags, 0) AS valuation_flags,
       COALESCE(f.classification_flags, 0) AS classification_flags,
       COALESCE(f.origin_flags, 0) AS origin_flags,
       t.items_inspected,
       t.fraud_found,
       round(100.0 * t.fraud_found / NULLIF(t.items_inspected, 0), 1) AS hit_rate_pct,
       COALESCE(f.top_reasons, '') AS top_reasons
FROM traders t
LEFT JOIN flags f ON f.importer_id = t.importer_id
ORDER BY t.expected DESC, t.importer_id;
