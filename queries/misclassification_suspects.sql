-- title: Misclassification suspects
-- description: Items of the last days whose description points to another HS6 than the declared code (hs_misclassification_probability at or above the threshold, and the subheading the description suggests is not the declared one), with the code the description suggests, the tariff rates of both as the model prices them (tariff_rate: the mean rate of the tariff lines under a code, else its longest listed prefix's; NULL without a tariff), the duty rate applied on the declaration (which a claimed preference may lower) and the duties and taxes at stake. Reasons to look, not a classification ruling. Needs a risk model.
-- needs: model
-- columns: declaration_id, item_no, importer_id, declared_code, description, suggested_hs6, declared_tariff_rate, suggested_tariff_rate, declared_duty_rate, p_wrong_code, revenue_at_stake
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
        SELECT *, ROW_NUMBER() OVER (ORDER BY p_wrong * at_stake DESC NULLS LAST, p_wrong DESC,
                                              declaration_id, item_no) AS listed_rank
        FROM suspects
        WHERE suggested IS NOT NULL AND suggested <> hs6(hs_code))
    WHERE listed_rank <= $limit
)
SELECT declaration_id, item_no, importer_id, hs_code AS declared_code, description,
       suggested AS suggested_hs6,
       round(tariff_rate(hs_code), 2) AS declared_tariff_rate,
       round(tariff_rate(suggested), 2) AS suggested_tariff_rate,
       duty_rate AS declared_duty_rate,
       round(p_wrong, 3) AS p_wrong_code,
       round(at_stake, 2) AS revenue_at_stake
FROM listed
ORDER BY listed_rank;
