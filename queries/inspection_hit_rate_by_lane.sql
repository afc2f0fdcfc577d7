-- title: Inspection hit rate by lane
-- description: For each selectivity lane: items, items inspected, items found fraudulent, the hit rate and the revenue recovered. An item counts once however many controls it had; a control of the whole declaration (no item number) counts for each of its items, and its revenue once.
-- columns: lane, items, inspected, fraud_found, hit_rate_pct, revenue_recovered
WITH outcome AS (
    SELECT declaration_id,
           item_no,
           MAX(CASE WHEN result = 'fraud' THEN 1 ELSE 0 END) AS fraud,
           SUM(additional_revenue) AS recovered
    FROM inspections
    GROUP BY declaration_id, item_no
)
SELECT COALESCE(d.lane, '(none)') AS lane,
       COUNT(*) AS items,
       COUNT(COALESCE(o.fraud, w.fraud)) AS inspected,
       COALESCE(SUM(GREATEST(o.fraud, w.fraud)), 0) AS fraud_found,
       round(100.0 * SUM(GREATEST(o.fraud, w.fraud)) / NULLIF(COUNT(COALESCE(o.fraud, w.fraud)), 0), 1) AS hit_rate_pct,
       COALESCE(SUM(o.recovered), 0)
       + COALESCE(SUM(CASE WHEN d.item_no = 1 THEN w.recovered END), 0) AS revenue_recovered
-- An item's own controls (o) and those of its whole declaration (w), each
-- joined on equal keys; a whole declaration's revenue counts once, with its
-- item 1 (items are numbered from 1).
FROM declarations d
LEFT JOIN outcome o ON o.declaration_id = d.declaration_id AND o.item_no = d.item_no
LEFT JOIN (SELECT * FROM outcome WHERE item_no IS NULL) w ON w.declaration_id = d.declaration_id
GROUP BY COALESCE(d.lane, '(none)')
ORDER BY items DESC;
