-- title: Fraud rate of all items, from random controls
-- description: What the random controls of aduana select say of every item declared on the days they cover, not only of the ones the model picks: the estimated share of items that are fraudulent (each inspected random control standing for as many items of its day and office as the inverse of its chance of being drawn: an AEO trader's item, drawn less often, for more) with a 95% interval (Wilson's, at the weighted controls' effective size), the revenue fraud costs on those days, what all controls recovered, and the difference, the revenue still lost. items_represented is the weights' sum, an estimate of the items of those days (exact when AEO traders are not weighed less). Only inspected random controls count; an interval wide enough to be useless says more random controls are needed.
-- columns: first_day, last_day, items_represented, random_controls, inspected, fraud_found, fraud_rate_pct, fraud_rate_low_pct, fraud_rate_high_pct, fraud_revenue, revenue_recovered, revenue_lost
-- param: days int = 90 | days back from the latest selection
WITH selected AS (
    SELECT * FROM risk.control_outcomes
    WHERE selection_date > (SELECT MAX(selection_date) FROM risk.selections) - CAST(CAST($days AS VARCHAR) || ' days' AS INTERVAL)
),
random AS (
    SELECT * FROM selected WHERE selected_by = 'random' AND fraud IS NOT NULL
),
estimate AS (
    SELECT SUM(design_weight * fraud) / SUM(design_weight) AS p,
           SUM(design_weight * item_recovered) / SUM(design_weight) AS revenue_per_item
    FROM random
),
spread AS (
    -- Kish's effective sample size of the weighted controls; the interval
    -- is Wilson's at that size (not zero-wide when no fraud was found).
    SELECT SUM(design_weight) * SUM(design_weight) / SUM(design_weight * design_weight) AS n
    FROM random
)
SELECT (SELECT MIN(selection_date) FROM selected) AS first_day,
       (SELECT MAX(selection_date) FROM selected) AS last_day,
       round((SELECT SUM(design_weight) FROM selected WHERE selected_by = 'random')) AS items_represented,
       (SELECT COUNT(*) FROM selected WHERE selected_by = 'random') AS random_controls,
       (SELECT COUNT(*) FROM random) AS inspected,
       (SELECT COALESCE(SUM(fraud), 0) FROM random) AS fraud_found,
       round(100.0 * e.p, 2) AS fraud_rate_pct,
       round(100.0 * CASE WHEN s.n > 0 THEN GREATEST((e.p + 1.92 / s.n - 1.96 * sqrt(e.p * (1 - e.p) / s.n + 0.9604 / (s.n * s.n))) / (1 + 3.8416 / s.n), 0) END, 2) AS fraud_rate_low_pct,
       round(100.0 * (e.p + 1.92 / s.n + 1.96 * sqrt(e.p * (1 - e.p) / s.n + 0.9604 / (s.n * s.n))) / (1 + 3.8416 / s.n), 2) AS fraud_rate_high_pct,
       round(e.revenue_per_item * (SELECT SUM(design_weight) FROM selected WHERE selected_by = 'random'), 2) AS fraud_revenue,
       round((SELECT SUM(recovered) FROM selected), 2) AS revenue_recovered,
       -- Never below zero: the controls cannot have recovered more than
       -- fraud cost (the estimate is then too low, not the loss negative).
       round(GREATEST(e.revenue_per_item * (SELECT SUM(design_weight) FROM selected WHERE selected_by = 'random')
             - (SELECT SUM(recovered) FROM selected), 0), 2) AS revenue_lost
FROM estimate e CROSS JOIN spread s;
