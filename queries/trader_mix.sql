-- title: Trader product and origin mix
-- description: One importer's customs value by HS heading (4 digits) and by origin country, in the earlier and the later half of a window of published months, with each one's share and how many percentage points it shifted. A shift toward a lower-duty heading or a new origin is a reason to look at classification or origin.
-- columns: dimension, code, earlier_value, later_value, earlier_share_pct, later_share_pct, shift_pts
-- param: importer text | the importer's id (TIN), as in declarations.importer_id
-- param: months int = 12 | the window, in months back from the latest published month (split in two halves)
WITH latest AS (
    SELECT MAX(year * 12 + month - 1) AS m FROM risk.declaration_scores
),
items AS (
    SELECT substr(hs_code, 1, 4) AS hs4,
           COALESCE(origin_country, '(none)') AS origin,
           CAST(customs_value AS DOUBLE) AS value,
           year * 12 + month - 1 > latest.m - CAST($months AS BIGINT) / 2 AS later
    FROM risk.declaration_scores, latest
    WHERE importer_id = $importer
      AND year * 12 + month - 1 > latest.m - $months
),
by_code AS (
    SELECT 'hs4' AS dimension, hs4 AS code,
           SUM(CASE WHEN later THEN 0.0 ELSE value END) AS earlier_value,
           SUM(CASE WHEN later THEN value ELSE 0.0 END) AS later_value
    FROM items GROUP BY hs4
    UNION ALL
    SELECT 'origin' AS dimension, origin AS code,
           SUM(CASE WHEN later THEN 0.0 ELSE value END) AS earlier_value,
           SUM(CASE WHEN later THEN value ELSE 0.0 END) AS later_value
    FROM items GROUP BY origin
),
shares AS (
    SELECT *,
           100.0 * earlier_value / NULLIF(SUM(earlier_value) OVER (PARTITION BY dimension), 0) AS earlier_share,
           100.0 * later_value / NULLIF(SUM(later_value) OVER (PARTITION BY dimension), 0) AS later_share
    FROM by_code
)
SELECT dimension, code,
       round(earlier_value, 2) AS earlier_value,
       round(later_value, 2) AS later_value,
       round(COALESCE(earlier_share, 0), 1) AS earlier_share_pct,
       round(COALESCE(later_share, 0), 1) AS later_share_pct,
       round(COALESCE(later_share, 0) - COALESCE(earlier_share, 0), 1) AS shift_pts
FROM shares
ORDER BY dimension, earlier_value + later_value DESC, code;
