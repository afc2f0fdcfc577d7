-- title: Trader inspection history
-- description: The most recent physical inspections, documentary checks and post-clearance audits of one importer's declarations with scored items, newest first, with the outcome, the kind of fraud found and the revenue recovered. Needs a published refresh.
-- columns: inspected_on, declaration_id, item_no, declared_on, kind, result, fraud_type, additional_revenue
-- param: importer text | the importer's id (TIN), as in declarations.importer_id
-- param: limit int = 1000 | controls listed, newest first
WITH mine AS (
    SELECT declaration_id, MIN(declaration_date) AS declaration_date
    FROM risk.declaration_scores
    WHERE importer_id = $importer
    GROUP BY declaration_id
)
SELECT i.inspected_on, i.declaration_id, i.item_no, m.declaration_date AS declared_on,
       i.kind, i.result, i.fraud_type, i.additional_revenue
FROM inspections i
JOIN mine m ON m.declaration_id = i.declaration_id
ORDER BY i.inspected_on DESC, i.declaration_id, i.item_no
LIMIT $limit;
