-- title: Trader inspection history
-- description: Every physical inspection, documentary check and post-clearance audit of one importer's declarations, newest first, with the outcome, the kind of fraud found and the revenue recovered.
-- columns: inspected_on, declaration_id, item_no, declared_on, kind, result, fraud_type, additional_revenue
-- param: importer text | the importer's id (TIN), as in declarations.importer_id
WITH mine AS (
    SELECT DISTINCT declaration_id, declaration_date FROM declarations WHERE importer_id = $importer
)
SELECT i.inspected_on, i.declaration_id, i.item_no, m.declaration_date AS declared_on,
       i.kind, i.result, i.fraud_type, i.additional_revenue
FROM inspections i
JOIN mine m ON m.declaration_id = i.declaration_id
ORDER BY i.inspected_on DESC, i.declaration_id, i.item_no;
