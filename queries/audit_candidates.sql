-- title: Audit candidates
-- description: Declarations ranked by expected revenue at risk (risk score times the duties and taxes at stake, summed over their items) in the last days, with their importer's total over the period and the reasons of the item of the declaration with the most expected revenue at risk. Reasons to look, not verdicts. Needs a risk model.
-- needs: model
-- columns: declaration_id, importer_id, declared_on, items, customs_value, expected_at_risk, risk, level, importer_expected_revenue_at_risk, importer_declarations, riskiest_item, hs_code, reasons
-- param: days int = 30 | days back from the latest declaration
-- param: limit int = 20 | declarations listed
WITH items AS (
    SELECT * FROM scored_items
    WHERE declaration_date > (SELECT MAX(declaration_date) FROM declarations) - CAST(CAST($days AS VARCHAR) || ' days' AS INTERVAL)
),
expected AS (
    SELECT *, risk * at_stake AS expected_item FROM items
),
per_declaration AS (
    SELECT declaration_id, importer_id, MIN(declaration_date) AS declared_on, COUNT(*) AS items,
           SUM(customs_value) AS customs_value, SUM(expected_item) AS expected_revenue_at_risk,
           MAX(risk) AS max_risk, MAX(expected_item) AS top_item_expected
    FROM expected
    GROUP BY declaration_id, importer_id
),
per_importer AS (
    SELECT importer_id, SUM(expected_item) AS importer_expected, COUNT(DISTINCT declaration_id) AS importer_declarations
    FROM expected
    GROUP BY importer_id
),
top AS (
    SELECT * FROM per_declaration ORDER BY expected_revenue_at_risk DESC LIMIT $limit
),
riskiest AS (
    SELECT * FROM (
        SELECT e.*, ROW_NUMBER() OVER (PARTITION BY e.declaration_id
                                       ORDER BY e.expected_item DESC, e.item_no) AS rank_in_declaration
        FROM expected e JOIN top t ON t.declaration_id = e.declaration_id
    ) WHERE rank_in_declaration = 1
)
SELECT t.declaration_id, t.importer_id, t.declared_on, t.items, t.customs_value,
       round(t.expected_revenue_at_risk, 2) AS expected_at_risk,
       round(t.max_risk, 3) AS risk,
       risk_level(t.max_risk) AS level,
       round(p.importer_expected, 2) AS importer_expected_revenue_at_risk,
       p.importer_declarations,
       r.item_no AS riskiest_item,
       r.hs_code,
       array_to_string(risk_reasons(r.hs_code, r.origin_country, r.export_country, r.customs_value,
                                    r.quantity, r.quantity_unit, r.net_mass_kg, r.declaration_date,
                                    r.description, r.preference_code, r.importer_id), '; ') AS reasons
FROM top t
JOIN per_importer p ON p.importer_id = t.importer_id
JOIN riskiest r ON r.declaration_id = t.declaration_id
ORDER BY expected_at_risk DESC;
