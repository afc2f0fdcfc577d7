-- title: Trader unit values against their reference
-- description: One importer's most recent declaration items with a unit value, each against the reference price band of its product and origin in the risk model this session loaded (HS6 x origin, else HS6, for the declared unit): the reference median and interquartile band, and the declared value as a multiple of the median (below 1: declared cheaper than usual). Needs a risk model.
-- needs: model
-- columns: declaration_id, item_no, declared_on, hs6, origin_country, quantity_unit, unit_value, reference_level, reference_low, reference_median, reference_high, ratio_to_median
-- param: importer text | the importer's id (TIN), as in declarations.importer_id
-- param: limit int = 500 | items listed, most recent first
WITH items AS (
    SELECT declaration_id, item_no, declaration_date, hs6(hs_code) AS hs6, origin_country,
           quantity_unit, unit_value(customs_value, quantity) AS unit_value
    FROM declarations
    WHERE importer_id = $importer
      AND unit_value(customs_value, quantity) IS NOT NULL
    ORDER BY declaration_date DESC, declaration_id, item_no
    LIMIT $limit
),
cells AS (
    SELECT level, hs, origin, unit, exp(median) AS median, exp(q1) AS low, exp(q3) AS high
    FROM risk.price_profiles
    WHERE level IN (1, 2)
)
SELECT i.declaration_id, i.item_no, i.declaration_date AS declared_on, i.hs6, i.origin_country,
       i.quantity_unit, round(i.unit_value, 4) AS unit_value,
       CASE WHEN o.median IS NOT NULL THEN 'hs6_origin' WHEN h.median IS NOT NULL THEN 'hs6' END AS reference_level,
       round(COALESCE(o.low, h.low), 4) AS reference_low,
       round(COALESCE(o.median, h.median), 4) AS reference_median,
       round(COALESCE(o.high, h.high), 4) AS reference_high,
       round(i.unit_value / COALESCE(o.median, h.median), 3) AS ratio_to_median
FROM items i
LEFT JOIN cells o ON o.level = 1 AND o.hs = i.hs6 AND o.origin = i.origin_country AND o.unit = i.quantity_unit
LEFT JOIN cells h ON h.level = 2 AND h.hs = i.hs6 AND h.unit = i.quantity_unit
ORDER BY i.declaration_date DESC, i.declaration_id, i.item_no;
