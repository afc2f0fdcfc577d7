-- title: Origin shifts after trade remedies
-- description: For each trade remedy (anti-dumping or countervailing duty on a product from a country), the product's imports by origin in the months before and after the measure took effect: the share of each origin before and after and its change. An origin whose share jumps after a measure on another country may be goods of that country routed through it (circumvention). Reasons to look, not proof of origin.
-- columns: hs6, measure_against, measure, valid_from, origin, items_before, items_after, share_before_pct, share_after_pct, change_pct_points
-- param: months int = 6 | months compared on each side of the measure
-- param: min_items int = 20 | items an origin needs after the measure to be listed
WITH remedies AS (
    SELECT hs6(hs_code) AS hs6, origin_country AS targeted, measure, valid_from
    FROM reference.trade_remedies
),
items AS (
    SELECT r.hs6, r.targeted, r.measure, r.valid_from, d.origin_country AS origin,
           CASE WHEN d.declaration_date < r.valid_from THEN 'before' ELSE 'after' END AS period
    FROM declarations d
    JOIN remedies r ON hs6(d.hs_code) = r.hs6
    WHERE d.declaration_date >= r.valid_from - CAST(CAST($months AS VARCHAR) || ' months' AS INTERVAL)
      AND d.declaration_date < r.valid_from + CAST(CAST($months AS VARCHAR) || ' months' AS INTERVAL)
),
counts AS (
    SELECT hs6, targeted, measure, valid_from, origin,
           SUM(CASE WHEN period = 'before' THEN 1 ELSE 0 END) AS items_before,
           SUM(CASE WHEN period = 'after' THEN 1 ELSE 0 END) AS items_after
    FROM items
    GROUP BY hs6, targeted, measure, valid_from, origin
),
shares AS (
    SELECT *,
           items_before * 1.0 / NULLIF(SUM(items_before) OVER (PARTITION BY hs6, targeted, valid_from), 0) AS share_before,
           items_after * 1.0 / NULLIF(SUM(items_after) OVER (PARTITION BY hs6, targeted, valid_from), 0) AS share_after
    FROM counts
)
SELECT hs6, targeted AS measure_against, measure, valid_from, origin,
       items_before, items_after,
       round(100 * COALESCE(share_before, 0), 1) AS share_before_pct,
       round(100 * COALESCE(share_after, 0), 1) AS share_after_pct,
       round(100 * (COALESCE(share_after, 0) - COALESCE(share_before, 0)), 1) AS change_pct_points
FROM shares
WHERE items_after >= $min_items OR origin = targeted
ORDER BY hs6, valid_from, change_pct_points DESC;
