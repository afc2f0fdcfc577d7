-- title: Customs value by HS chapter
-- description: The fifteen HS chapters with the most customs value, with their items and share of the total value.
-- columns: chapter, description, items, customs_value, pct_of_value
SELECT substr(d.hs_code, 1, 2) AS chapter,
       n.description,
       COUNT(*) AS items,
       SUM(d.customs_value) AS customs_value,
       round(100.0 * CAST(SUM(d.customs_value) AS DOUBLE)
             / SUM(CAST(SUM(d.customs_value) AS DOUBLE)) OVER (), 1) AS pct_of_value
FROM declarations d
LEFT JOIN reference.hs_nomenclature n
       ON n.hs_code = substr(d.hs_code, 1, 2)
GROUP BY substr(d.hs_code, 1, 2), n.description
ORDER BY customs_value DESC
LIMIT 15;
