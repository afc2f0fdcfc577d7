-- title: Declarations per month
-- description: Declarations, items, customs value and duties assessed per month of lodgement.
-- columns: year, month, declarations, items, customs_value, duties_paid
SELECT year,
       month,
       COUNT(DISTINCT declaration_id) AS declarations,
       COUNT(*) AS items,
       SUM(customs_value) AS customs_value,
       SUM(duties_paid) AS duties_paid
FROM declarations
GROUP BY year, month
ORDER BY year, month;
