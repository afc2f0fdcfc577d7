SELECT 1 AS a, 'x' AS b UNION ALL SELECT 2, 'y' UNION ALL SELECT a + 1, b || b FROM (VALUES (3, 'z')) v(a, b) EXCEPT SELECT 9, 'q'
