-- title: Product top deviating declarations
-- description: For one HS6 subheading, the published items whose unit value deviates most below its reference (most negative robust z-score), with importer, origin, scores and reasons. Reasons to look, not verdicts. Needs a published refresh.
-- columns: declaration_id, item_no, declared_on, importer_id, origin_country, customs_value, valuation_deviation, risk_score, risk_level, reasons
-- param: hs hs6 | the HS6 subheading, 6 digits (6109.10 or a longer tariff line is read as its HS6)
-- param: limit int = 25 | items listed
SELECT declaration_id, item_no, declaration_date AS declared_on, importer_id, origin_country,
       customs_value, round(valuation_deviation, 2) AS valuation_deviation,
       round(risk_score, 3) AS risk_score, risk_level, reasons
FROM risk.declaration_scores
WHERE hs6(hs_code) = $hs AND valuation_deviation IS NOT NULL
ORDER BY valuation_deviation ASC, declaration_id, item_no
LIMIT $limit;
