-- title: Trader profile
-- description: One importer over the last days: declarations, items, customs value and duties, products and origins, the share of its items scoring high, its expected revenue at risk, and what inspections of its items found. Reasons to look, not verdicts. Needs a risk model.
-- needs: model
-- columns: importer_id, declarations, items, first_declared, last_declared, customs_value, duties_paid, products, origins, mean_risk, high_risk_items_pct, expected_revenue_at_risk, items_inspected, fraud_found, revenue_recovered
-- param: importer text | the importer's id (TIN), as in declarations.importer_id
-- param: days int = 365 | days back from the latest declaration
WITH items AS (
    SELECT * FROM scored_items
    WHERE importer_id = $importer
      AND declaration_date > (SELECT MAX(declaration_date) FROM declarations) - CAST(CAST($days AS VARCHAR) || ' days' AS INTERVAL)
),
outcome AS (
    SELECT declaration_id, item_no, MAX(CASE WHEN result = 'fraud' THEN 1 ELSE 0 END) AS fraud,
           SUM(additional_revenue) AS recovered
    FROM inspections
    GROUP BY declaration_id, item_no
),
labelled AS (
    -- An item's own controls (o) and those of its whole declaration (w),
    -- each joined on equal keys; a whole declaration's revenue counts once,
    -- with its item 1 (items are numbered from 1).
    SELECT i.*, GREATEST(o.fraud, w.fraud) AS fraud,
           COALESCE(o.recovered, 0)
           + CASE WHEN i.item_no = 1 THEN COALESCE(w.recovered, 0) ELSE 0 END AS recovered
    FROM items i
    LEFT JOIN outcome o ON o.declaration_id = i.declaration_id AND o.item_no = i.item_no
    LEFT JOIN (SELECT * FROM outcome WHERE item_no IS NULL) w ON w.declaration_id = i.declaration_id
)
SELECT $importer AS importer_id,
       COUNT(DISTINCT declaration_id) AS declarations,
       COUNT(*) AS items,
       MIN(declaration_date) AS first_declared,
       MAX(declaration_date) AS last_declared,
       SUM(customs_value) AS customs_value,
       SUM(duties_paid) AS duties_paid,
       COUNT(DISTINCT hs6(hs_code)) AS products,
       COUNT(DISTINCT origin_country) AS origins,
       round(AVG(risk), 3) AS mean_risk,
       round(100.0 * AVG(CASE WHEN risk_level(risk) = 'high' THEN 1.0 ELSE 0.0 END), 1) AS high_risk_items_pct,
       round(SUM(risk * at_stake), 2) AS expected_revenue_at_risk,
       COUNT(fraud) AS items_inspected,
       COALESCE(SUM(fraud), 0) AS fraud_found,
       COALESCE(SUM(recovered), 0) AS revenue_recovered
FROM labelled
HAVING COUNT(*) > 0;
