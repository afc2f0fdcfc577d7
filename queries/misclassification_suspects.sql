-- title: Misclassification suspects
-- description: Items of the last days whose description points to another HS6 than the declared code (hs_misclassification_probability at or above the threshold, and the subheading the description suggests is not the declared one), with the code the description suggests, the duty rates of both (the suggested subheading's as the model prices it: the mean rate of the tariff lines under it, else the rate of its longest listed prefix) and the duties and taxes at stake. Reasons to look, not a classification ruling. Needs a risk model.
-- needs: model
-- columns: declaration_id, item_no, importer_id, declared_code, description, suggested_hs6, declared_duty_rate, suggested_duty_rate, p_wrong_code, revenue_at_stake
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
    SELECT *, hs_suggest(description) AS suggested
    FROM scored WHERE p_wrong >= $min_probability
),
-- An uncertain description whose likeliest class is still the declared
-- code points nowhere else: not a suspect of misclassification.
-- Ranked by a window rather than ORDER BY ... LIMIT: DataFusion 55 pushes
-- a top-k's dynamic filter through this projection into the Parquet scan
-- with the columns of another schema (debug builds stop on it).
listed AS (
    SELECT * FROM (
        SELECT *, ROW_NUMBER() OVER (ORDER BY p_wrong * at_stake DESC, p_wrong DESC,
                                              declaration_id, item_no) AS listed_rank
        FROM suspects
        WHERE suggested IS NOT NULL AND suggested <> hs6(hs_code))
    WHERE listed_rank <= $limit
),
tariff AS (
    SELECT regexp_replace(hs_code, '[^0-9]', '', 'g') AS code, duty_rate
    FROM reference.tariff WHERE duty_rate IS NOT NULL
),
-- The suggested subheading's rate as the model prices it: the mean of the
-- tariff lines under it, else its longest listed prefix's.
under AS (
    SELECT l.declaration_id, l.item_no, AVG(t.duty_rate) AS rate
    FROM listed l JOIN tariff t ON starts_with(t.code, l.suggested)
    GROUP BY l.declaration_id, l.item_no
),
prefix AS (
    SELECT declaration_id, item_no, rate FROM (
        SELECT l.declaration_id, l.item_no, t.duty_rate AS rate,
               ROW_NUMBER() OVER (PARTITION BY l.declaration_id, l.item_no
                                  ORDER BY length(t.code) DESC) AS longest
        FROM listed l JOIN tariff t ON starts_with(l.suggested, t.code))
    WHERE longest = 1
)
SELECT s.declaration_id, s.item_no, s.importer_id, s.hs_code AS declared_code, s.description,
       s.suggested AS suggested_hs6,
       s.duty_rate AS declared_duty_rate,
       round(COALESCE(u.rate, p.rate), 2) AS suggested_duty_rate,
       round(s.p_wrong, 3) AS p_wrong_code,
       round(s.at_stake, 2) AS revenue_at_stake
FROM listed s
LEFT JOIN under u ON u.declaration_id = s.declaration_id AND u.item_no = s.item_no
LEFT JOIN prefix p ON p.declaration_id = s.declaration_id AND p.item_no = s.item_no
ORDER BY s.listed_rank;
