-- title: Riskiest items of the last 30 days
-- description: Declaration items with the highest risk_score, with each reason: the valuation z-score against the reference price (weighed by the importer's pricing record), the probability the declared HS6 is wrong (and the code the description suggests), and the origin risk. Reasons to look, not verdicts. Needs a risk model.
-- needs: model
-- columns: declaration_id, item_no, importer_id, hs_code, origin, dispatch, risk, level, value_z, p_wrong_code, suggested_hs6, origin_risk, reasons
WITH scored AS (
    SELECT declaration_id, item_no, importer_id, hs_code, description, origin_country, export_country,
           customs_value,
           risk_reasons(hs_code, origin_country, export_country, customs_value, quantity, quantity_unit,
                        net_mass_kg, declaration_date, description, preference_code, importer_id) AS reasons,
           valuation_deviation(hs_code, origin_country, customs_value, quantity,
                               quantity_unit, net_mass_kg, declaration_date, importer_id) AS z,
           hs_misclassification_probability(hs_code, description, customs_value, quantity,
                                            origin_country, quantity_unit, net_mass_kg) AS p_misclassified,
           origin_risk(hs_code, origin_country, export_country, preference_code,
                       importer_id, declaration_date) AS origin
    FROM declarations
    WHERE declaration_date > (SELECT MAX(declaration_date) FROM declarations) - INTERVAL '30 days'
)
SELECT declaration_id, item_no, importer_id, hs_code, origin_country AS origin, export_country AS dispatch,
       round(risk_score(z, p_misclassified, origin), 3) AS risk,
       risk_level(risk_score(z, p_misclassified, origin)) AS level,
       round(z, 2) AS value_z,
       round(p_misclassified, 2) AS p_wrong_code,
       CASE WHEN p_misclassified > 0.5 THEN hs_suggest(description) END AS suggested_hs6,
       round(origin, 2) AS origin_risk,
       array_to_string(reasons, '; ') AS reasons
FROM scored
ORDER BY risk DESC
LIMIT 15;
