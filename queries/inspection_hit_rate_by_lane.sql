-- title: Inspection hit rate by lane
-- description: For each selectivity lane: items, items inspected, items found fraudulent, the hit rate and the revenue recovered. An item counts once however many controls it had.
-- columns: lane, items, inspected, fraud_found, hit_rate_pct, revenue_recovered
WITH outcome AS (
    SELECT declaration_id,
           item_no,
           MAX(CASE WHEN result = 'fraud' THEN 1 ELSE 0 END) AS fraud,
           SUM(additional_revenue) AS recovered
    FROM inspections
    GROUP BY declaration_id, item_no
)
SELECT d.lane,
       COUNT(*) AS items,
       COUNT(o.declaration_id) AS inspected,
       COALESCE(SUM(o.fraud), 0) AS fraud_found,
       round(100.0 * SUM(o.fraud) / NULLIF(COUNT(o.declaration_id), 0), 1) AS hit_rate_pct,
       COALESCE(SUM(o.recovered), 0) AS revenue_recovered
FROM declarations d
LEFT JOIN outcome o
       ON o.declaration_id = d.declaration_id
      AND (o.item_no = d.item_no OR o.item_no IS NULL)
GROUP BY d.lane
ORDER BY items DESC;
