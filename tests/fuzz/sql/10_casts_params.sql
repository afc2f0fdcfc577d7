SELECT CAST('2026-13-45' AS DATE), TRY_CAST('x' AS INT), $1, 1e308 * 10, -9223372036854775808, 'a''b', "declarations"."hs_code" FROM declarations WHERE declaration_date > 2026-01-01 LIMIT $2
