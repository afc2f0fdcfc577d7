-- title: Trader inspections by month
-- description: One importer's inspections, documentary checks and post-clearance audits per month of the control, of its declarations with scored items: controls, how many found fraud, how many found the goods compliant, and the revenue recovered. Needs a published refresh.
-- columns: month, inspections, fraud_found, compliant, revenue_recovered
-- param: importer text | the importer's id (TIN), as in declarations.importer_id
WITH mine AS (
    SELECT DISTINCT declaration_id FROM risk.declaration_scores WHERE importer_id = $importer
)
SELECT CAST(date_trunc('month', i.inspected_on) AS DATE) AS month,
       COUNT(*) AS inspections,
       SUM(CASE WHEN i.result = 'fraud' THEN 1 ELSE 0 END) AS fraud_found,
       SUM(CASE WHEN i.result = 'compliant' THEN 1 ELSE 0 END) AS compliant,
       COALESCE(SUM(i.additional_revenue), 0) AS revenue_recovered
FROM inspections i
JOIN mine m ON m.declaration_id = i.declaration_id
GROUP BY 1
ORDER BY 1;
