-- title: Origin shifts after trade remedies
-- description: For each trade remedy (anti-dumping or countervailing duty on a product from a country), the product's imports by origin in the months before and after the measure took effect: the share of each origin before and after and its change. The product is every tariff line the remedy's code begins, and "after" ends when the measure does. An origin whose share jumps after a measure on another country may be goods of that country routed through it (circumvention). Reasons to look, not proof of origin.
-- columns: hs_code, measure_against, measure, valid_from, origin, items_before, items_after, share_before_pct, share_after_pct, change_pct_points
-- param: months int = 6 | months compared on each side of the measure
-- param: min_items int = 20 | items an origin needs after the measure to be listed
WITH remedies AS (
    -- A remedy's code is a prefix of the tariff lines it covers (any
    -- length, as the model matches it), digits only. Rows repeating a
    -- measure (one per exporter's rate) are one remedy, open while any is.
    SELECT regexp_replace(hs_code, '[^0-9]', '', 'g') AS code, origin_country AS targeted,
           measure, valid_from,
           CASE WHEN COUNT(valid_to) < COUNT(*) THEN NULL ELSE MAX(valid_to) END AS valid_to
    FROM reference.trade_remedies
    GROUP BY 1, 2, 3, 4
),
items AS (
    -- Codes of six digits or more on equal HS6 (an equi-join), then the
    -- rest of a longer code; shorter codes (a heading, a chapter) on equal
    -- chapters, then the prefix.
    SELECT r.code, r.targeted, r.measure, r.valid_from, d.origin_country AS origin,
           CASE WHEN d.declaration_date < r.valid_from THEN 'before' ELSE 'after' END AS period
    FROM declarations d
    JOIN remedies r ON hs6(d.hs_code) = substr(r.code, 1, 6)
                   AND (length(r.code) = 6
                        OR starts_with(regexp_replace(d.hs_code, '[^0-9]', '', 'g'), r.code))
    WHERE length(r.code) >= 6
      AND d.declaration_date >= r.valid_from - CAST(CAST($months AS VARCHAR) || ' months' AS INTERVAL)
      AND d.declaration_date < r.valid_from + CAST(CAST($months AS VARCHAR) || ' months' AS INTERVAL)
      AND (r.valid_to IS NULL OR d.declaration_date <= r.valid_to)
    UNION ALL
    SELECT r.code, r.targeted, r.measure, r.valid_from, d.origin_country AS origin,
           CASE WHEN d.declaration_date < r.valid_from THEN 'before' ELSE 'after' END AS period
    FROM declarations d
    JOIN remedies r ON hs2(d.hs_code) = substr(r.code, 1, 2)
                   AND starts_with(hs6(d.hs_code), r.code)
    WHERE length(r.code) < 6
      AND d.declaration_date >= r.valid_from - CAST(CAST($months AS VARCHAR) || ' months' AS INTERVAL)
      AND d.declaration_date < r.valid_from + CAST(CAST($months AS VARCHAR) || ' months' AS INTERVAL)
      AND (r.valid_to IS NULL OR d.declaration_date <= r.valid_to)
),
counts AS (
    SELECT code, targeted, measure, valid_from, origin,
           SUM(CASE WHEN period = 'before' THEN 1 ELSE 0 END) AS items_before,
           SUM(CASE WHEN period = 'after' THEN 1 ELSE 0 END) AS items_after
    FROM items
    GROUP BY code, targeted, measure, valid_from, origin
),
shares AS (
    -- Shares within one remedy: two measures on the same product, country
    -- and day are two remedies, each with its own whole.
    SELECT *,
           items_before * 1.0 / NULLIF(SUM(items_before) OVER (PARTITION BY code, targeted, measure, valid_from), 0) AS share_before,
           items_after * 1.0 / NULLIF(SUM(items_after) OVER (PARTITION BY code, targeted, measure, valid_from), 0) AS share_after
    FROM counts
)
SELECT code AS hs_code, targeted AS measure_against, measure, valid_from, origin,
       items_before, items_after,
       round(100 * COALESCE(share_before, 0), 1) AS share_before_pct,
       round(100 * COALESCE(share_after, 0), 1) AS share_after_pct,
       round(100 * (COALESCE(share_after, 0) - COALESCE(share_before, 0)), 1) AS change_pct_points
FROM shares
WHERE items_after >= $min_items OR origin = targeted
ORDER BY hs_code, valid_from, measure, change_pct_points DESC, origin;
