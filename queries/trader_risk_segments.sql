-- title: Trader risk segments
-- description: Importers grouped by the risk level of their items in the last days (an importer is high when at least a share of its items scores high, else medium, else low): importers, items, customs value, expected revenue at risk, and the hit rate of the inspections of their items. Monitors whether the segments separate compliant from non-compliant traders. Needs a risk model.
-- needs: model
-- columns: segment, importers, items, customs_value, expected_revenue_at_risk, items_inspected, fraud_found, hit_rate_pct
-- param: days int = 90 | days back from the latest declaration
-- param: high_share float = 0.05 | share of an importer's items scoring high that makes it high
WITH items AS (
    SELECT declaration_id, item_no, importer_id, customs_value, risk, at_stake
    FROM scored_items
    WHERE declaration_date > (SELECT MAX(declaration_date) FROM declarations) - CAST(CAST($days AS VARCHAR) || ' days' AS INTERVAL)
),
outcome AS (
    SELECT declaration_id, item_no, MAX(CASE WHEN result = 'fraud' THEN 1 ELSE 0 END) AS fraud
    FROM inspections
    GROUP BY declaration_id, item_no
),
labelled AS (
    -- An item's own controls (o) and those of its whole declaration (w),
    -- each joined on equal keys: an item counts once.
    SELECT i.*, GREATEST(o.fraud, w.fraud) AS fraud
    FROM items i
    LEFT JOIN outcome o ON o.declaration_id = i.declaration_id AND o.item_no = i.item_no
    LEFT JOIN (SELECT * FROM outcome WHERE item_no IS NULL) w ON w.declaration_id = i.declaration_id
),
importers AS (
    SELECT importer_id,
           COUNT(*) AS items,
           SUM(customs_value) AS customs_value,
           SUM(risk * at_stake) AS expected,
           AVG(CASE WHEN risk_level(risk) = 'high' THEN 1.0 ELSE 0.0 END) AS high_share,
           MAX(CASE WHEN risk_level(risk) = 'medium' THEN 1 ELSE 0 END) AS any_medium,
           COUNT(fraud) AS inspected,
           COALESCE(SUM(fraud), 0) AS fraud_found
    FROM labelled
    GROUP BY importer_id
),
segmented AS (
    SELECT *,
           CASE WHEN high_share >= $high_share THEN 'high'
                WHEN high_share > 0 OR any_medium = 1 THEN 'medium'
                ELSE 'low' END AS segment
    FROM importers
)
SELECT segment,
       COUNT(*) AS importers,
       SUM(items) AS items,
       SUM(customs_value) AS customs_value,
       round(SUM(expected), 2) AS expected_revenue_at_risk,
       SUM(inspected) AS items_inspected,
       SUM(fraud_found) AS fraud_found,
       round(100.0 * SUM(fraud_found) / NULLIF(SUM(inspected), 0), 1) AS hit_rate_pct
FROM segmented
GROUP BY segment
ORDER BY CASE segment WHEN 'high' THEN 1 WHEN 'medium' THEN 2 ELSE 3 END;
