-- title: What selected controls found
-- description: The controls published by aduana select over the last days, by lane and by who chose them (the model's ranking, random controls, informed exploration: novelty, proportional or evidence): controls, those inspected so far, frauds found, the hit rate with its 95% Wilson interval, and the revenue recovered in all and per inspected control. The random controls' hit rate is what an unselected item's would be; the model's should be well above it.
-- columns: lane, selected_by, controls, inspected, fraud_found, hit_rate_pct, hit_rate_low_pct, hit_rate_high_pct, revenue_recovered, revenue_per_control
-- param: days int = 90 | days back from the latest selection
WITH controls AS (
    SELECT lane, selected_by, fraud, recovered
    FROM risk.control_outcomes
    WHERE selection_date > (SELECT MAX(selection_date) FROM risk.selections) - CAST(CAST($days AS VARCHAR) || ' days' AS INTERVAL)
),
tally AS (
    SELECT lane, selected_by, COUNT(*) AS controls, COUNT(fraud) AS inspected,
           COALESCE(SUM(fraud), 0) AS fraud_found, SUM(recovered) AS revenue_recovered
    FROM controls
    GROUP BY lane, selected_by
)
SELECT lane, selected_by, controls, inspected, fraud_found,
       round(100.0 * fraud_found / NULLIF(inspected, 0), 1) AS hit_rate_pct,
       round(100.0 * CASE WHEN n > 0 THEN GREATEST((p + 1.92 / n - 1.96 * sqrt(p * (1 - p) / n + 0.9604 / (n * n))) / (1 + 3.8416 / n), 0) END, 1) AS hit_rate_low_pct,
       round(100.0 * (p + 1.92 / n + 1.96 * sqrt(p * (1 - p) / n + 0.9604 / (n * n))) / (1 + 3.8416 / n), 1) AS hit_rate_high_pct,
       round(revenue_recovered, 2) AS revenue_recovered,
       round(revenue_recovered / NULLIF(inspected, 0), 2) AS revenue_per_control
FROM (SELECT *, CAST(fraud_found AS DOUBLE) / NULLIF(inspected, 0) AS p,
             CAST(NULLIF(inspected, 0) AS DOUBLE) AS n
      FROM tally)
ORDER BY lane, selected_by;
