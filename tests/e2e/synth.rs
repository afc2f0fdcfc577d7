//! The generator: its ground truth agrees with the data it wrote, its
//! structure is the one the issue asks for, and it is deterministic.

use std::path::Path;

use aduana_engine::Session;

use crate::support::*;

async fn with_truth(path: &Path) -> Session {
    let session = session(&path.display().to_string()).await;
    register_truth(&session, path).await;
    session
        .context()
        .sql(
            "CREATE VIEW items AS SELECT d.*, t.fraud, t.fraud_type AS true_fraud_type, t.fraud_detail, \
             t.revenue_loss, t.true_hs_code, t.true_origin, t.true_customs_value \
             FROM declarations d JOIN truth t USING (declaration_id, item_no)",
        )
        .await
        .unwrap();
    session
}

/// Runs a `SELECT COUNT(*) ...` that must find no counter-example.
async fn none(session: &Session, what: &str, sql: &str) {
    let n = query_i64(session, sql).await;
    assert_eq!(n, 0, "{what}: {n} counter-examples for {sql}");
}

#[test]
fn ground_truth_agrees_with_the_declarations() {
    let wh = generate(60_000, 12);
    runtime().block_on(async {
        let s = with_truth(wh.path()).await;
        assert_eq!(query_i64(&s, "SELECT COUNT(*) FROM items").await as u64, wh.summary.rows);
        for detail in ["undervaluation", "misclassification", "antidumping_circumvention", "preference_abuse"] {
            let n = query_i64(&s, &format!("SELECT COUNT(*) FROM items WHERE fraud_detail = '{detail}'")).await;
            assert!(n >= 10, "only {n} items of {detail}");
        }
        let fraud = query_i64(&s, "SELECT COUNT(*) FROM items WHERE fraud").await as u64;
        assert_eq!(fraud, wh.summary.fraud_total());
        assert!(fraud * 100 > wh.summary.rows && fraud * 100 < wh.summary.rows * 15, "fraud rate {fraud}");

        none(&s, "honest items are declared as they are",
            "SELECT COUNT(*) FROM items WHERE NOT fraud AND (hs_code <> true_hs_code OR origin_country <> true_origin \
             OR customs_value <> true_customs_value OR revenue_loss <> 0)").await;
        none(&s, "every fraud costs revenue", "SELECT COUNT(*) FROM items WHERE fraud AND revenue_loss <= 0").await;
        none(&s, "undervalued items are declared below their true value",
            "SELECT COUNT(*) FROM items WHERE fraud_detail = 'undervaluation' \
             AND NOT (customs_value < true_customs_value AND hs_code = true_hs_code AND origin_country = true_origin)").await;
        none(&s, "misclassified items use a lower-duty line of the same chapter",
            "SELECT COUNT(*) FROM items i \
             JOIN reference.tariff declared ON declared.hs_code = i.hs_code \
             JOIN reference.tariff actual ON actual.hs_code = i.true_hs_code \
             WHERE i.fraud_detail = 'misclassification' \
             AND NOT (i.hs_code <> i.true_hs_code AND declared.duty_rate < actual.duty_rate \
                      AND substr(i.hs_code, 1, 2) = substr(i.true_hs_code, 1, 2) \
                      AND i.customs_value = i.true_customs_value)").await;
        none(&s, "a misclassified item's description names the true goods, never the declared ones",
            "SELECT COUNT(*) FROM items i WHERE i.fraud_detail = 'misclassification' AND i.description IN \
             (SELECT h.description FROM items h WHERE NOT h.fraud AND substr(h.hs_code, 1, 6) = substr(i.hs_code, 1, 6))").await;
        none(&s, "circumvented goods come from the country under the measure, declared from elsewhere",
            "SELECT COUNT(*) FROM items i WHERE i.fraud_detail = 'antidumping_circumvention' AND NOT EXISTS \
             (SELECT 1 FROM reference.trade_remedies r WHERE r.hs_code = substr(i.true_hs_code, 1, 6) \
              AND r.origin_country = i.true_origin AND r.origin_country <> i.origin_country \
              AND i.declaration_date >= r.valid_from)").await;
        none(&s, "preference abuse claims a preference for goods of another origin",
            "SELECT COUNT(*) FROM items WHERE fraud_detail = 'preference_abuse' \
             AND NOT (preference_code IS NOT NULL AND origin_country <> true_origin)").await;

        // Inspections only know what they found, and find only real fraud.
        none(&s, "inspections refer to declared items",
            "SELECT COUNT(*) FROM inspections n LEFT JOIN items i USING (declaration_id, item_no) WHERE i.declaration_id IS NULL").await;
        none(&s, "a fraud finding is a real fraud of that type, with its revenue",
            "SELECT COUNT(*) FROM inspections n JOIN items i USING (declaration_id, item_no) WHERE n.result = 'fraud' \
             AND NOT (i.fraud AND n.fraud_type = i.true_fraud_type AND n.additional_revenue = i.revenue_loss)").await;
        none(&s, "compliant findings carry no fraud type or revenue",
            "SELECT COUNT(*) FROM inspections WHERE result = 'compliant' AND (fraud_type IS NOT NULL OR additional_revenue IS NOT NULL)").await;
        let missed = query_i64(&s, "SELECT COUNT(*) FROM items i WHERE fraud AND NOT EXISTS \
             (SELECT 1 FROM inspections n WHERE n.declaration_id = i.declaration_id AND n.item_no = i.item_no AND n.result = 'fraud')").await;
        assert!(missed as u64 > fraud / 2, "most fraud must stay unknown to inspections ({missed} of {fraud} missed)");
        none(&s, "inspection dates follow the declaration",
            "SELECT COUNT(*) FROM inspections n JOIN items i USING (declaration_id, item_no) WHERE n.inspected_on < i.declaration_date").await;
        none(&s, "duties follow the declared line, preference and remedies",
            "SELECT COUNT(*) FROM items WHERE abs(CAST(duties_paid AS DOUBLE) - \
             CAST(customs_value AS DOUBLE) * (duty_rate / 100.0 + 0.12 * (1 + duty_rate / 100.0))) > 0.02").await;
    });
}

#[test]
fn structure_is_realistic() {
    let wh = generate(60_000, 12);
    runtime().block_on(async {
        let s = with_truth(wh.path()).await;
        // Zipf activity: the busiest tenth of importers lodge most items.
        let top_share = query_i64(&s,
            "WITH t AS (SELECT importer_id, COUNT(*) AS n, ROW_NUMBER() OVER (ORDER BY COUNT(*) DESC) AS r FROM declarations GROUP BY importer_id) \
             SELECT CAST(100 * SUM(CASE WHEN r <= (SELECT COUNT(*) FROM t) / 10 THEN n ELSE 0 END) / SUM(n) AS BIGINT) FROM t").await;
        assert!(top_share > 40, "top 10% of importers have {top_share}% of items");
        // Specialisation: the typical importer stays within a few headings.
        let median_headings = query_i64(&s,
            "SELECT CAST(median(h) AS BIGINT) FROM (SELECT importer_id, COUNT(DISTINCT substr(hs_code, 1, 4)) AS h \
             FROM declarations GROUP BY importer_id HAVING COUNT(*) >= 20)").await;
        assert!((1..=5).contains(&median_headings), "median importer uses {median_headings} headings");
        // Several origins per product, with a leading one.
        let origins = query_i64(&s,
            "SELECT CAST(AVG(o) AS BIGINT) FROM (SELECT substr(hs_code, 1, 6), COUNT(DISTINCT true_origin) AS o \
             FROM items GROUP BY 1 HAVING COUNT(*) >= 300)").await;
        assert!(origins >= 3, "products have {origins} origins on average");
        // (A misclassified item keeps its true goods' unit: a red flag the
        // risk model may use, so only honest items are checked.)
        none(&s, "one quantity unit per product",
            "SELECT COUNT(*) FROM (SELECT substr(hs_code, 1, 6) FROM items WHERE NOT fraud GROUP BY 1 HAVING COUNT(DISTINCT quantity_unit) > 1)").await;
        let differing = query_i64(&s,
            "SELECT COUNT(*) FROM (SELECT substr(hs_code, 1, 4) FROM reference.tariff GROUP BY 1 HAVING COUNT(DISTINCT duty_rate) > 1)").await;
        assert!(differing >= 5, "only {differing} headings with differing sibling rates");
        // Unit values are log-normal around a product x origin median:
        // most items within a factor 3 of it.
        let within = query_i64(&s,
            "WITH uv AS (SELECT substr(true_hs_code, 1, 6) AS p, true_origin AS o, \
               ln(CAST(true_customs_value AS DOUBLE) / quantity) AS l FROM items), \
             m AS (SELECT p, o, median(l) AS med FROM uv GROUP BY p, o) \
             SELECT CAST(100 * AVG(CASE WHEN abs(uv.l - m.med) < ln(3) THEN 1 ELSE 0 END) AS BIGINT) \
             FROM uv JOIN m USING (p, o)").await;
        assert!(within >= 85, "{within}% of unit values within 3x of their cell median");
        // AEO traders are cleaner.
        let rates = query_text(&s,
            "SELECT t.aeo, round(100.0 * AVG(CASE WHEN i.fraud THEN 1 ELSE 0 END), 2) AS pct \
             FROM items i JOIN reference.traders t USING (importer_id) GROUP BY t.aeo ORDER BY t.aeo").await;
        let aeo_fraud = query_i64(&s, "SELECT CAST(1000 * AVG(CASE WHEN i.fraud THEN 1 ELSE 0 END) AS BIGINT) FROM items i JOIN reference.traders t USING (importer_id) WHERE t.aeo").await;
        let other_fraud = query_i64(&s, "SELECT CAST(1000 * AVG(CASE WHEN i.fraud THEN 1 ELSE 0 END) AS BIGINT) FROM items i JOIN reference.traders t USING (importer_id) WHERE NOT t.aeo").await;
        assert!(aeo_fraud * 2 < other_fraud, "AEO vs other fraud per mille:\n{rates}");
        // Trade remedies divert declared imports away from the country hit.
        let before_after = query_text(&s,
            "SELECT i.declaration_date >= r.valid_from AS in_force, \
                    round(100.0 * AVG(CASE WHEN i.origin_country = r.origin_country THEN 1 ELSE 0 END), 1) AS pct_declared_from_target \
             FROM items i JOIN reference.trade_remedies r ON r.hs_code = substr(i.hs_code, 1, 6) GROUP BY 1 ORDER BY 1").await;
        let s = &s;
        let share = |in_force: bool| async move {
            query_i64(s, &format!(
                "SELECT CAST(1000 * AVG(CASE WHEN i.origin_country = r.origin_country THEN 1 ELSE 0 END) AS BIGINT) \
                 FROM items i JOIN reference.trade_remedies r ON r.hs_code = substr(i.hs_code, 1, 6) \
                 WHERE (i.declaration_date >= r.valid_from) = {in_force}")).await
        };
        let (before, after) = (share(false).await, share(true).await);
        assert!(after * 10 < before * 7, "declared share from the targeted country should drop:\n{before_after}");
        // Lanes: mostly green, and the selectivity's red lane is richer in fraud.
        let green = query_i64(&s, "SELECT CAST(100 * AVG(CASE WHEN lane = 'green' THEN 1 ELSE 0 END) AS BIGINT) FROM declarations").await;
        assert!((60..=85).contains(&green), "{green}% green");
    });
}

#[test]
fn same_seed_gives_identical_files() {
    let a = generate(30_000, 3);
    let b = generate(30_000, 3);
    let files_a = parquet_files(a.path());
    let files_b = parquet_files(b.path());
    assert_eq!(files_a.len(), files_b.len());
    for (fa, fb) in files_a.iter().zip(&files_b) {
        assert_eq!(
            fa.strip_prefix(a.path()).unwrap(),
            fb.strip_prefix(b.path()).unwrap()
        );
        assert!(
            std::fs::read(fa).unwrap() == std::fs::read(fb).unwrap(),
            "{} differs between runs",
            fa.display()
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let mut other = aduana_synth::GenerateOptions::new(dir.path().join("other"), 30_000, 8);
    other.months = 3;
    aduana_synth::generate(&other).unwrap();
    let first =
        |root: &Path| std::fs::read(parquet_files(&root.join("declarations"))[0].clone()).unwrap();
    assert_ne!(
        first(a.path()),
        first(&dir.path().join("other")),
        "another seed gives other data"
    );
}

#[test]
fn real_nomenclature_when_available() {
    let csv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/hs_nomenclature.csv");
    if !csv.exists() {
        eprintln!("SKIPPED: {} not present", csv.display());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut options = aduana_synth::GenerateOptions::new(dir.path().join("wh"), 40_000, 3);
    options.hs_nomenclature = Some(csv);
    let summary = aduana_synth::generate(&options).unwrap();
    assert_eq!(summary.products, 5_613);
    runtime().block_on(async {
        let s = with_truth(&dir.path().join("wh")).await;
        assert_eq!(query_i64(&s, "SELECT COUNT(*) FROM reference.hs_nomenclature WHERE level = 6").await, 5_613);
        none(&s, "every declared code is an HS 2022 subheading plus national digits",
            "SELECT COUNT(*) FROM declarations d LEFT JOIN reference.hs_nomenclature n \
             ON n.hs_code = substr(d.hs_code, 1, 6) WHERE n.hs_code IS NULL OR length(d.hs_code) <> 8").await;
        let kinds = query_i64(&s, "SELECT COUNT(DISTINCT fraud_detail) FROM items WHERE fraud").await;
        assert!(kinds >= 3, "{kinds} fraud kinds with the real nomenclature");
    });
}

/// Declarations joined to their ground truth (`d`, `t`).
const TRUTH_JOINED: &str = "FROM declarations d JOIN truth t ON t.declaration_id = d.declaration_id \
                            AND t.item_no = d.item_no";

/// A 12-month drifting warehouse of `rows` items (seed 5), with the new
/// importers' fraud hidden or not.
fn drifting_warehouse(rows: u64, hidden: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut options = aduana_synth::GenerateOptions::new(dir.path(), rows, 5);
    options.months = 12;
    options.variant.drift = true;
    options.variant.hidden_fraud = hidden;
    aduana_synth::generate(&options).unwrap();
    dir
}

/// The drift variant: in the second half of the period, importers never
/// seen before defraud heavily, circumvention takes new routes and fraud
/// rises; the first half is the ordinary generator's.
#[test]
fn drift_moves_fraud_in_the_second_half() {
    let dir = drifting_warehouse(120_000, false);
    let uri = dir.path().display().to_string();
    runtime().block_on(async {
        let s = session(&uri).await;
        register_truth(&s, dir.path()).await;
        let joined = TRUTH_JOINED;
        let half = "d.declaration_date >= DATE '2026-05-01'";
        let rate = |second: bool| {
            let condition = if second {
                half.to_string()
            } else {
                format!("NOT ({half})")
            };
            format!(
                "SELECT CAST(1000000 * AVG(CASE WHEN t.fraud THEN 1.0 ELSE 0.0 END) AS BIGINT) \
                 {joined} WHERE {condition}"
            )
        };
        let first = query_i64(&s, &rate(false)).await;
        let second = query_i64(&s, &rate(true)).await;
        assert!(
            second as f64 > 1.5 * first as f64,
            "fraud per million: {first} then {second}"
        );
        // Importers first seen in the second half defraud at about 25%.
        let newcomers = query_i64(
            &s,
            &format!(
                "WITH first_seen AS (SELECT importer_id, MIN(declaration_date) AS day \
                                     FROM declarations GROUP BY importer_id) \
                 SELECT CAST(1000 * AVG(CASE WHEN t.fraud THEN 1.0 ELSE 0.0 END) AS BIGINT) \
                 {joined} JOIN first_seen f ON f.importer_id = d.importer_id \
                 WHERE f.day >= DATE '2026-05-01'"
            ),
        )
        .await;
        assert!(
            (150..400).contains(&newcomers),
            "newcomers' fraud per thousand: {newcomers}"
        );
        // Circumvention's declared origins: none of the new routes before.
        let routes = |second: bool| {
            let condition = if second {
                half.to_string()
            } else {
                format!("NOT ({half})")
            };
            format!(
                "SELECT COUNT(*) {joined} WHERE t.fraud_detail = 'antidumping_circumvention' \
                 AND d.origin_country IN ('BD', 'PK', 'TR', 'IN') AND {condition}"
            )
        };
        assert_eq!(query_i64(&s, &routes(false)).await, 0);
        assert!(query_i64(&s, &routes(true)).await > 0);
    });
}

/// The hidden variant: the drift's new importers short-declare, and their
/// declarations look like anyone's: the unit value of a short-declared item
/// sits where the honest items of its code and origin sit, while an
/// undervalued item's sits far below.
#[test]
fn hidden_fraud_leaves_prices_ordinary() {
    let dir = drifting_warehouse(80_000, true);
    let uri = dir.path().display().to_string();
    runtime().block_on(async {
        let s = session(&uri).await;
        register_truth(&s, dir.path()).await;
        let joined = TRUTH_JOINED;
        let newcomers = format!(
            "WITH first_seen AS (SELECT importer_id, MIN(declaration_date) AS day \
                                 FROM declarations GROUP BY importer_id) \
             SELECT t.fraud_detail, COUNT(*) AS n {joined} \
             JOIN first_seen f ON f.importer_id = d.importer_id \
             WHERE f.day >= DATE '2026-05-01' AND t.fraud GROUP BY t.fraud_detail"
        );
        let kinds = query_i64(
            &s,
            &format!(
                "SELECT COUNT(*) FROM ({newcomers}) WHERE fraud_detail <> 'quantity_underdeclared'"
            ),
        )
        .await;
        assert_eq!(kinds, 0, "newcomers defraud only by short-declaring");
        let short = query_i64(&s, &format!("SELECT SUM(n) FROM ({newcomers})")).await;
        assert!(short > 50, "{short} short-declared items");
        // The declared share of the value, per thousand.
        let share = query_i64(
            &s,
            &format!(
                "SELECT CAST(1000 * AVG(CAST(d.customs_value AS DOUBLE) \
                                        / CAST(t.true_customs_value AS DOUBLE)) AS BIGINT) \
                 {joined} WHERE t.fraud_detail = 'quantity_underdeclared'"
            ),
        )
        .await;
        assert!(
            (400..760).contains(&share),
            "declared share {share} per thousand"
        );
        // Mean log unit value against the honest items' of the same code
        // and origin, in thousandths.
        let gap = |detail: &str| {
            format!(
                "WITH uv AS (SELECT d.hs_code, d.origin_country, t.fraud, t.fraud_detail, \
                                    LN(CAST(d.customs_value AS DOUBLE) / d.net_mass_kg) AS luv \
                             {joined} WHERE d.net_mass_kg > 0), \
                      honest AS (SELECT hs_code, origin_country, AVG(luv) AS mean, COUNT(*) AS n \
                                 FROM uv WHERE NOT fraud GROUP BY hs_code, origin_country) \
                 SELECT CAST(1000 * AVG(uv.luv - h.mean) AS BIGINT) FROM uv \
                 JOIN honest h ON h.hs_code = uv.hs_code AND h.origin_country = uv.origin_country \
                 WHERE h.n >= 20 AND uv.fraud_detail = '{detail}'"
            )
        };
        let hidden = query_i64(&s, &gap("quantity_underdeclared")).await;
        let undervalued = query_i64(&s, &gap("undervaluation")).await;
        assert!(
            hidden.abs() < 100,
            "short-declared items' log price gap {hidden}"
        );
        assert!(
            undervalued < -300,
            "undervalued items' log price gap {undervalued}"
        );
    });
}
