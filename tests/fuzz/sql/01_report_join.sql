SELECT d.importer_id, t.name, COUNT(*) AS items, SUM(d.customs_value) AS value
FROM declarations d LEFT JOIN reference.traders t ON t.trader_id = d.importer_id
WHERE d.declaration_date >= DATE '2026-01-01' AND d.lane IN ('red', 'yellow')
GROUP BY d.importer_id, t.name HAVING COUNT(*) > 3 ORDER BY value DESC LIMIT 20
