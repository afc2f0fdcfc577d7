-- title: Valuation outliers by product
-- description: Per product (HS6) and origin, the items of the last days whose unit value lies markedly below the reference price of the risk model (valuation_deviation at or below the threshold), their share of that product and origin's items, their customs value and the lowest z-score. Products where low prices cluster are where undervaluation is worth a look. Reasons to look, not customs values. Needs a risk model.
-- needs: model
-- columns: hs6, origin, items, outliers, outlier_pct, outlier_value, outlier_importers, lowest_z
-- param: days int = 30 | days back from the latest declaration
-- param: z float = -3.0 | z-score at or below which an item is an outlier
-- param: limit int = 25 | products listed
WITH scored AS (
    SELECT hs6(hs_code) AS hs6, origin_country, customs_value, importer_id,
           valuation_deviation(hs_code, origin_country, customs_value, quantity,
                               quantity_unit, net_mass_kg, declaration_date) AS value_z
    FROM declarations
    WHERE declaration_date > (SELECT MAX(declaration_date) FROM declarations) - CAST(CAST($days AS VARCHAR) || ' days' AS INTERVAL)
)
SELECT hs6,
       origin_country AS origin,
       COUNT(*) AS items,
       SUM(CASE WHEN value_z <= $z THEN 1 ELSE 0 END) AS outliers,
       round(100.0 * SUM(CASE WHEN value_z <= $z THEN 1 ELSE 0 END) / COUNT(*), 1) AS outlier_pct,
       SUM(CASE WHEN value_z <= $z THEN customs_value ELSE 0 END) AS outlier_value,
       COUNT(DISTINCT CASE WHEN value_z <= $z THEN importer_id END) AS outlier_importers,
       round(MIN(value_z), 2) AS lowest_z
FROM scored
GROUP BY hs6, origin_country
HAVING SUM(CASE WHEN value_z <= $z THEN 1 ELSE 0 END) > 0
ORDER BY outliers DESC, lowest_z ASC
LIMIT $limit;
