-- title: Misclassification suspects
-- description: Items of the last days whose description points to another HS6 than the declared code (hs_misclassification_probability at or above the threshold), with the code the description suggests, the duty rates of both and the duties and taxes at stake. Reasons to look, not a classification ruling. Needs a risk model.
-- needs: model
-- columns: declaration_id, item_no, importer_id, declared_code, description, suggested_hs6, declared_duty_rate, p_wrong_code, revenue_at_stake
-- param: days int = 30 | days back from the latest declaration
-- param: min_probability float = 0.5 | probability at or above which an item is listed
-- param: limit int = 25 | items listed
WITH scored AS (
    SELECT declaration_id, item_no, importer_id, hs_code, description, duty_rate,
           p_wrong_code AS p_wrong, at_stake
    FROM scored_items
    WHERE declaration_date > (SELECT MAX(declaration_date) FROM declarations) - CAST(CAST($days AS VARCHAR) || ' days' AS INTERVAL)
),
suspects AS (
    SELECT * FROM scored WHERE p_wrong >= $min_probability
)
SELECT s.declaration_id, s.item_no, s.importer_id, s.hs_code AS declared_code, s.description,
       hs_suggest(s.description) AS suggested_hs6,
       s.duty_rate AS declared_duty_rate,
       round(s.p_wrong, 3) AS p_wrong_code,
       round(s.at_stake, 2) AS revenue_at_stake
FROM suspects s
ORDER BY s.p_wrong * s.at_stake DESC, s.p_wrong DESC
LIMIT $limit;
