-- title: Riskiest items of the last 30 days
-- description: Declaration items with the highest risk_score (the learned model's where the warehouse's inspections taught one), with each reason: what past inspections found for its parties, the valuation z-score against the reference price (weighed by the importer's pricing record), the probability the declared HS6 is wrong (and the code the description suggests), and the origin risk. Reasons to look, not verdicts. Needs a risk model.
-- needs: model
-- columns: declaration_id, item_no, importer_id, hs_code, origin, dispatch, risk, level, value_z, p_wrong_code, suggested_hs6, origin_risk, reasons
WITH top AS (
    SELECT *
    FROM scored_items
    WHERE declaration_date > (SELECT MAX(declaration_date) FROM declarations) - INTERVAL '30 days'
    ORDER BY risk DESC, declaration_id, item_no
    LIMIT 15
)
SELECT declaration_id, item_no, importer_id, hs_code, origin_country AS origin, export_country AS dispatch,
       round(risk, 3) AS risk,
       risk_level(risk) AS level,
       round(value_z, 2) AS value_z,
       round(p_wrong_code, 2) AS p_wrong_code,
       CASE WHEN array_has(risk_flags(NULL, p_wrong_code, NULL), 'classification') THEN hs_suggest(description) END AS suggested_hs6,
       round(origin_score, 2) AS origin_risk,
       array_to_string(array_concat(
           learned_reasons(value_z, p_wrong_code, origin_score, at_stake, hs_code, origin_country,
                           export_country, office_code, importer_id, declarant_id, supplier_id, regime,
                           transport_mode, preference_code, customs_value, net_mass_kg, quantity, duty_rate),
           risk_reasons(hs_code, origin_country, export_country, customs_value, quantity, quantity_unit,
                        net_mass_kg, declaration_date, description, preference_code, importer_id)), '; ') AS reasons
FROM top
ORDER BY risk DESC, declaration_id, item_no;
