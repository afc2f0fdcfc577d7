//! The refresh's queries: which items cannot be scored and why, the
//! scores of a partition, and the trader risk over all scored items.

/// Prior strength of the Beta-smoothed inspection hit rate, in
/// inspections: a trader with few inspections stays near the month's
/// overall rate (the month's, so each month's trader risk depends on that
/// month alone and a new month leaves the others as they were).
pub const HIT_RATE_PRIOR_INSPECTIONS: f64 = 20.0;
/// Segments: the top share of importers of a month by expected revenue at
/// risk is `high`, the next share `medium` (audit capacity is a share of
/// the traders, so segments are ranks, not score thresholds).
pub const HIGH_SHARE: f64 = 0.05;
pub const MEDIUM_SHARE: f64 = 0.25;

pub use aduana_engine::validity::reject_reason;

/// The order of a partition's score file: by importer, then key (so the
/// same inputs give the same file, and a query for one importer, as the
/// dashboard's trader page makes, reads a few pages of each file instead
/// of all of them: the Parquet page index bounds each page's importers).
pub const SCORES_ORDER: [&str; 3] = ["importer_id", "declaration_id", "item_no"];

/// The order of a partition's reject file.
pub const REJECTS_ORDER: [&str; 2] = ["declaration_id", "item_no"];

/// The scores of one partition (unordered: the writer sorts them by
/// [`SCORES_ORDER`] after giving the columns their stored types).
pub fn partition_scores(year: i32, month: i32, model_version: &str) -> String {
    format!(
        "SELECT declaration_id, item_no, declaration_date, year, month, office_code, importer_id,
                declarant_id, hs_code, origin_country, customs_value,
                value_z AS valuation_deviation,
                p_wrong_code AS hs_misclassification_probability,
                origin_score AS origin_risk,
                at_stake AS revenue_at_risk,
                p_fraud AS fraud_probability,
                revenue_expected AS expected_revenue,
                risk AS risk_score,
                risk_level(risk) AS risk_level,
                CASE WHEN risk_level(risk) <> 'low' THEN
                    array_to_string(array_concat(
                        learned_reasons({learned}),
                        risk_reasons(hs_code, origin_country, export_country,
                            customs_value, quantity, quantity_unit, net_mass_kg, declaration_date,
                            description, preference_code, importer_id)), '; ')
                END AS reasons,
                '{model_version}' AS model_version
         FROM scored_items
         WHERE year = {year} AND month = {month} AND ({reason}) IS NULL",
        reason = reject_reason(),
        learned = aduana_engine::LEARNED_ARGUMENTS,
    )
}

/// Keys of the partition that appear more than once (the first few, and
/// how many there are): a copy would be scored and counted twice.
pub fn partition_duplicates(year: i32, month: i32) -> String {
    format!(
        "SELECT declaration_id, item_no, copies,
                COUNT(*) OVER () AS keys
         FROM (SELECT declaration_id, item_no, COUNT(*) AS copies FROM declarations
               WHERE year = {year} AND month = {month}
                     AND declaration_id IS NOT NULL AND item_no IS NOT NULL
               GROUP BY declaration_id, item_no HAVING COUNT(*) > 1)
         ORDER BY declaration_id, item_no LIMIT 3"
    )
}

/// The rows of one partition that cannot be scored, with why (unordered:
/// see [`REJECTS_ORDER`]).
pub fn partition_rejects(year: i32, month: i32) -> String {
    format!(
        "SELECT declaration_id, item_no, declaration_date, year, month, importer_id, hs_code,
                customs_value, quantity, quantity_unit, reason
         FROM (SELECT *, {reason} AS reason FROM declarations
               WHERE year = {year} AND month = {month})
         WHERE reason IS NOT NULL",
        reason = reject_reason()
    )
}

/// Scores summed exactly: a float sum depends on the order rows arrive
/// in, which depends on how the scan splits the files (a month scored alone
/// or with the others), and the published trader risk must not.
const EXACT_SCORE: &str = "DECIMAL(38, 17)";
/// Amounts (revenue at risk and its expectation) summed exactly, likewise.
const EXACT_AMOUNT: &str = "DECIMAL(38, 8)";

/// Per importer and month over the scores table `scores`: volume, value,
/// scores, inspections and their Beta-smoothed hit rate, expected revenue
/// at risk (each item's risk score × its revenue at risk, so it never
/// exceeds the revenue at risk; the learned model's own expected revenue
/// per item is the scores' `expected_revenue`), rank and segment. An item is
/// inspected when it or its whole declaration was controlled, fraudulent
/// when either control found fraud, as in the reports. `inspections_cutoff`:
/// only outcomes known before this day count (backtests).
pub fn trader_risk(
    scores: &str,
    has_inspections: bool,
    inspections_cutoff: Option<&str>,
) -> String {
    let outcome = if has_inspections {
        let known = inspections_cutoff
            .map(|day| format!("WHERE inspected_on < DATE '{day}'"))
            .unwrap_or_default();
        format!(
            "SELECT declaration_id, item_no, MAX(CASE WHEN result = 'fraud' THEN 1 ELSE 0 END) AS fraud
             FROM inspections {known} GROUP BY declaration_id, item_no"
        )
    } else {
        "SELECT CAST(NULL AS VARCHAR) AS declaration_id, CAST(NULL AS INT) AS item_no,
                CAST(NULL AS INT) AS fraud WHERE false"
            .to_string()
    };
    // `prior`, the month's hit rate over all its importers, is a window over
    // `per`, not a grouped copy joined back: DataFusion does not share a
    // CTE, so a second reference computed `per` (its scan of every score and
    // its joins) twice.
    format!(
        "WITH outcome AS ({outcome}),
         labelled AS (
             SELECT s.importer_id, s.year, s.month, s.customs_value, s.risk_score, s.risk_level,
                    s.revenue_at_risk, GREATEST(item.fraud, whole.fraud) AS fraud
             FROM {scores} s
             LEFT JOIN outcome item ON item.declaration_id = s.declaration_id
                                   AND item.item_no = s.item_no
             LEFT JOIN (SELECT * FROM outcome WHERE item_no IS NULL) whole
                    ON whole.declaration_id = s.declaration_id
         ),
         per AS (
             SELECT importer_id, year, month,
                    COUNT(*) AS items,
                    SUM(customs_value) AS customs_value,
                    CAST(AVG(CAST(risk_score AS {score})) AS DOUBLE) AS mean_risk_score,
                    MAX(risk_score) AS max_risk_score,
                    SUM(CASE WHEN risk_level = 'high' THEN 1 ELSE 0 END) AS high_risk_items,
                    COUNT(fraud) AS items_inspected,
                    COALESCE(SUM(fraud), 0) AS fraud_found,
                    COALESCE(CAST(SUM(CAST(revenue_at_risk AS {amount})) AS DOUBLE), 0)
                        AS revenue_at_risk,
                    COALESCE(CAST(SUM(CAST(risk_score * revenue_at_risk AS {amount})) AS DOUBLE), 0)
                        AS expected_revenue_at_risk
             FROM labelled
             GROUP BY importer_id, year, month
         ),
         prior AS (
             SELECT per.*,
                    COALESCE(CAST(SUM(fraud_found) OVER (PARTITION BY year, month) AS DOUBLE)
                             / NULLIF(SUM(items_inspected) OVER (PARTITION BY year, month), 0),
                             0.0) AS rate
             FROM per
         ),
         ranked AS (
             SELECT importer_id, year, month, items, customs_value, mean_risk_score,
                    max_risk_score, high_risk_items, items_inspected, fraud_found,
                    revenue_at_risk, expected_revenue_at_risk,
                    CAST(fraud_found AS DOUBLE) / NULLIF(items_inspected, 0) AS hit_rate,
                    (fraud_found + {k} * rate) / (items_inspected + {k}) AS fraud_probability,
                    ROW_NUMBER() OVER (PARTITION BY year, month
                                       ORDER BY expected_revenue_at_risk DESC, importer_id) AS rank,
                    COUNT(*) OVER (PARTITION BY year, month) AS importers
             FROM prior
         )
         SELECT importer_id, year, month, items, customs_value, mean_risk_score, max_risk_score,
                high_risk_items, items_inspected, fraud_found, hit_rate, fraud_probability,
                revenue_at_risk, expected_revenue_at_risk,
                CASE WHEN expected_revenue_at_risk > 0 AND rank <= ceil({high} * importers) THEN 'high'
                     WHEN expected_revenue_at_risk > 0 AND rank <= ceil({medium} * importers) THEN 'medium'
                     ELSE 'low' END AS segment,
                rank
         FROM ranked
         ORDER BY year, month, rank",
        score = EXACT_SCORE,
        amount = EXACT_AMOUNT,
        k = HIT_RATE_PRIOR_INSPECTIONS,
        high = HIGH_SHARE,
        medium = MEDIUM_SHARE,
    )
}
