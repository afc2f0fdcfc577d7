-- title: Trader flagged items (audit file)
-- description: One importer's items that score medium or high or carry a flag (unit value at least 2 robust z below its reference; description naming other goods, probability 0.5 or more; origin risk 0.5 or more), with scores, flags and reasons, by revenue at risk. The audit file of the trader profile. Reasons to look, not verdicts. Needs a published refresh.
-- columns: declaration_id, item_no, declared_on, office_code, hs_code, origin_country, customs_value, risk_score, risk_level, expected_revenue_at_risk, valuation_deviation, hs_misclassification_probability, origin_risk, flags, reasons
-- param: importer text | the importer's id (TIN), as in declarations.importer_id
-- param: months int = 12 | months back from the latest published month
WITH latest AS (
    SELECT MAX(year * 12 + month - 1) AS m FROM risk.declaration_scores
),
items AS (
    SELECT s.*,
           array_to_string(risk_flags(valuation_deviation, hs_misclassification_probability,
                                      origin_risk), ', ') AS flags
    FROM risk.declaration_scores s, latest
    WHERE importer_id = $importer
      AND year * 12 + month - 1 > latest.m - $months
)
SELECT declaration_id, item_no, declaration_date AS declared_on, office_code, hs_code, origin_country,
       customs_value, round(risk_score, 3) AS risk_score, risk_level,
       round(risk_score * COALESCE(revenue_at_risk, 0), 2) AS expected_revenue_at_risk,
       round(valuation_deviation, 2) AS valuation_deviation,
       round(hs_misclassification_probability, 3) AS hs_misclassification_probability,
       round(origin_risk, 3) AS origin_risk,
       flags, reasons
FROM items
WHERE risk_level <> 'low' OR flags <> ''
ORDER BY risk_score * COALESCE(revenue_at_risk, 0) DESC, declaration_id, item_no;
