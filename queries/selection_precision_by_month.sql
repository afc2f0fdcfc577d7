-- title: Precision of selection by month
-- description: Month by month, the hit rate and revenue per inspected control of the model's picks, of random controls and of informed exploration (novelty, proportional, evidence; aduana select), and the model's lift over random. A lift falling month after month means the fraud has moved where the model does not look: retrain, or explore more.
-- columns: month, selected_by, controls, inspected, fraud_found, hit_rate_pct, revenue_per_control, lift_over_random
WITH monthly AS (
    SELECT date_trunc('month', selection_date) AS month, selected_by,
           COUNT(*) AS controls, COUNT(fraud) AS inspected,
           COALESCE(SUM(fraud), 0) AS fraud_found, SUM(recovered) AS recovered
    FROM risk.control_outcomes
    GROUP BY 1, 2
)
SELECT CAST(m.month AS DATE) AS month, m.selected_by, m.controls, m.inspected, m.fraud_found,
       round(100.0 * m.fraud_found / NULLIF(m.inspected, 0), 1) AS hit_rate_pct,
       round(m.recovered / NULLIF(m.inspected, 0), 2) AS revenue_per_control,
       round((CAST(m.fraud_found AS DOUBLE) / NULLIF(m.inspected, 0))
             / NULLIF(CAST(r.fraud_found AS DOUBLE) / NULLIF(r.inspected, 0), 0), 2) AS lift_over_random
FROM monthly m
LEFT JOIN monthly r ON r.month = m.month AND r.selected_by = 'random'
ORDER BY month, selected_by;
