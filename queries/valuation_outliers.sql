-- title: Valuation outliers of the last 30 days
-- description: Declaration items whose unit value lies furthest below the reference price of their product and origin (valuation_deviation, a modified z-score; below -3.5 is a strong signal). A reason to look, not a customs value. Needs a risk model.
SELECT declaration_id,
       item_no,
       importer_id,
       hs_code,
       origin_country,
       customs_value,
       quantity,
       quantity_unit,
       round(valuation_deviation(hs_code, origin_country, customs_value, quantity,
                                 quantity_unit, net_mass_kg, declaration_date), 2) AS z
FROM declarations
WHERE declaration_date > (SELECT MAX(declaration_date) FROM declarations) - INTERVAL '30 days'
ORDER BY z ASC NULLS LAST
LIMIT 15;
