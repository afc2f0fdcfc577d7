//! The risk model: `aduana model build`, its publication, and the quality
//! of the functions built on it against the generator's ground truth.

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Float64Type};

use crate::support::*;

/// One 80,000-item warehouse with its model, shared by the read-only
/// quality tests (generating and learning it once saves seconds per test).
fn modelled() -> &'static TestWarehouse {
    static WAREHOUSE: std::sync::OnceLock<TestWarehouse> = std::sync::OnceLock::new();
    WAREHOUSE.get_or_init(|| {
        let wh = generate(80_000, 12);
        let out = build(&wh, &[]);
        assert!(out.status.success(), "{}", stderr(&out));
        wh
    })
}

/// A session over `wh` with its ground truth registered as `truth`.
async fn truth_session(wh: &TestWarehouse) -> aduana_engine::Session {
    let s = session(&wh.uri()).await;
    register_truth(&s, wh.path()).await;
    s
}

fn build(wh: &TestWarehouse, extra: &[&str]) -> std::process::Output {
    run(aduana()
        .args(["model", "build", "-w", &wh.uri()])
        .args(extra))
}

#[test]
fn functions_without_a_model_say_what_to_do() {
    let wh = generate(2_000, 1);
    let out = run(aduana().args([
        "sql", "-w", &wh.uri(), "-c",
        "SELECT valuation_deviation(hs_code, origin_country, customs_value, quantity) FROM declarations",
    ]));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("run `aduana model build"),
        "{}",
        stderr(&out)
    );
    let bad = build(&wh, &["--window-months", "0"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(stderr(&bad).contains("--window-months"));
}

#[test]
fn build_publishes_a_version_that_sessions_load() {
    let wh = generate(30_000, 6);
    let first = build(&wh, &[]);
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(stdout(&first).contains("published"), "{}", stdout(&first));
    let current = std::fs::read_to_string(wh.path().join("risk/model/CURRENT")).unwrap();
    let version = current.trim();
    assert!(
        wh.path()
            .join("risk/model")
            .join(version)
            .join("price_profiles.parquet")
            .is_file()
    );

    runtime().block_on(async {
        let s = session(&wh.uri()).await;
        let info = query_text(&s, "SELECT version, window_start, window_end FROM risk_model_info()").await;
        // The configured 12-month window, though the data starts in May.
        assert!(info.contains(version) && info.contains("2025-11-01") && info.contains("2026-11-01"), "{info}");
        // Every item of the window is either learned from or left out as
        // found fraudulent.
        let learned = query_i64(&s, "SELECT training_items + excluded_fraud_items FROM risk_model_info()").await;
        assert_eq!(learned as u64, wh.summary.rows);
        let excluded = query_i64(&s, "SELECT excluded_fraud_items FROM risk_model_info()").await;
        let found = query_i64(&s, "SELECT COUNT(DISTINCT declaration_id || '/' || item_no) FROM inspections WHERE result = 'fraud'").await;
        assert_eq!(excluded, found);
    });

    // A shorter window through an earlier day publishes a new current version.
    std::thread::sleep(std::time::Duration::from_millis(5));
    let second = build(&wh, &["--through", "2026-08-31", "--window-months", "3"]);
    assert!(second.status.success(), "{}", stderr(&second));
    let newer = std::fs::read_to_string(wh.path().join("risk/model/CURRENT")).unwrap();
    assert_ne!(newer.trim(), version);
    runtime().block_on(async {
        let s = session(&wh.uri()).await;
        let info = query_text(&s, "SELECT window_start, window_end FROM risk_model_info()").await;
        assert!(
            info.contains("2026-06-01") && info.contains("2026-09-01"),
            "{info}"
        );
    });
}

#[test]
fn valuation_deviation_ranks_undervaluation() {
    let wh = modelled();
    runtime().block_on(async {
        let s = truth_session(wh).await;
        let batches = query(
            &s,
            "SELECT valuation_deviation(d.hs_code, d.origin_country, d.customs_value, d.quantity, \
                    d.quantity_unit, d.net_mass_kg, d.declaration_date) AS z, \
                    COALESCE(t.fraud_detail = 'undervaluation', false) AS undervalued, t.fraud \
             FROM declarations d JOIN truth t USING (declaration_id, item_no)",
        )
        .await;
        let mut scored = Vec::new();
        let mut honest = Vec::new();
        let mut missing = 0usize;
        for b in &batches {
            let z = b.column(0).as_primitive::<Float64Type>();
            let under = b.column(1).as_boolean();
            let fraud = b.column(2).as_boolean();
            for i in 0..b.num_rows() {
                if z.is_null(i) {
                    missing += 1;
                    continue;
                }
                scored.push((-z.value(i), under.value(i)));
                if !fraud.value(i) {
                    honest.push(z.value(i).abs());
                }
            }
        }
        assert!(
            missing * 100 < wh.summary.rows as usize,
            "{missing} items without a reference"
        );
        let area = auc(&mut scored);
        assert!(
            area > 0.88,
            "AUC of valuation_deviation on undervaluation: {area:.3}"
        );
        honest.sort_by(f64::total_cmp);
        let median_honest = honest[honest.len() / 2];
        assert!(
            median_honest < 1.0,
            "honest items' median |z| is {median_honest:.2}"
        );
    });
}

#[test]
fn a_broken_current_model_is_named_and_can_be_rebuilt() {
    let wh = generate(5_000, 2);
    assert!(build(&wh, &[]).status.success());
    let version = std::fs::read_to_string(wh.path().join("risk/model/CURRENT")).unwrap();
    std::fs::remove_file(
        wh.path()
            .join("risk/model")
            .join(version.trim())
            .join("origin_facts.parquet"),
    )
    .unwrap();
    let out = run(aduana().args(["sql", "-w", &wh.uri(), "-c", "SELECT 1"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("origin_facts.parquet")
            && stderr(&out).contains("rebuild it with `aduana model build`"),
        "{}",
        stderr(&out)
    );
    let rebuilt = build(&wh, &[]);
    assert!(rebuilt.status.success(), "{}", stderr(&rebuilt));
    assert!(
        run(aduana().args([
            "sql",
            "-w",
            &wh.uri(),
            "-c",
            "SELECT * FROM risk_model_info()"
        ]))
        .status
        .success()
    );
}

/// (score, label) pairs from a query whose first column is a Float64 score
/// (NULL counts as 0, no evidence) and second a non-null Boolean label.
async fn scored(session: &aduana_engine::Session, sql: &str) -> Vec<(f64, bool)> {
    let mut pairs = Vec::new();
    for b in query(session, sql).await {
        let score = arrow::compute::cast(b.column(0), &DataType::Float64).unwrap();
        let score = score.as_primitive::<Float64Type>();
        let label = b.column(1).as_boolean();
        for i in 0..b.num_rows() {
            assert!(label.is_valid(i), "labels must not be NULL");
            pairs.push((
                if score.is_null(i) {
                    0.0
                } else {
                    score.value(i)
                },
                label.value(i),
            ));
        }
    }
    pairs
}

#[test]
fn origin_risk_beats_the_dispatch_baseline_on_origin_fraud() {
    let wh = modelled();
    runtime().block_on(async {
        let s = truth_session(wh).await;
        let label = "COALESCE(t.fraud_type = 'origin', false)";
        let from = "FROM declarations d JOIN truth t USING (declaration_id, item_no)";
        let baseline = auc(&mut scored(
            &s,
            &format!("SELECT CASE WHEN d.export_country <> d.origin_country THEN 1.0 ELSE 0.0 END, {label} {from}"),
        )
        .await);
        let risk = auc(&mut scored(
            &s,
            &format!(
                "SELECT origin_risk(d.hs_code, d.origin_country, d.export_country, d.preference_code, \
                 d.importer_id, d.declaration_date), {label} {from}"
            ),
        )
        .await);
        eprintln!("origin fraud AUC: origin_risk {risk:.3}, baseline (export <> origin) {baseline:.3}");
        assert!(risk > 0.75, "origin_risk AUC {risk:.3}");
        assert!(risk > baseline + 0.05, "origin_risk {risk:.3} vs baseline {baseline:.3}");
        // Scores are probabilities-like: within [0, 1], NULL only for bad input.
        let out_of_range = query_i64(&s, "SELECT COUNT(*) FROM declarations WHERE NOT origin_risk(hs_code, origin_country, export_country) BETWEEN 0 AND 1").await;
        assert_eq!(out_of_range, 0);
        let bad = query_text(&s, "SELECT origin_risk('84x', 'CN', 'CN') AS a, origin_risk('84713000', 'C', 'CN') AS b, origin_risk('84713000', 'CN', NULL) AS c").await;
        assert!(bad.contains("|   |   |"), "malformed code or origin give NULL, a missing export does not:\n{bad}");
    });
}

#[test]
fn descriptions_reveal_misclassification() {
    let wh = modelled();
    runtime().block_on(async {
        let s = truth_session(wh).await;
        let from = "FROM declarations d JOIN truth t USING (declaration_id, item_no)";
        let area = auc(&mut scored(
            &s,
            &format!(
                "SELECT hs_misclassification_probability(d.hs_code, d.description), \
                 COALESCE(t.fraud_detail = 'misclassification', false) {from}"
            ),
        )
        .await);
        // The analyst's baseline without text evidence ranks at random (0.5).
        assert!(area > 0.9, "AUC of hs_misclassification_probability: {area:.3}");
        let misclassified = query_i64(&s, &format!("SELECT COUNT(*) {from} WHERE t.fraud_detail = 'misclassification'")).await;
        let suggested = query_i64(
            &s,
            &format!("SELECT COUNT(*) {from} WHERE t.fraud_detail = 'misclassification' AND hs_suggest(d.description) = substr(t.true_hs_code, 1, 6)"),
        )
        .await;
        assert!(suggested * 10 >= misclassified * 9, "hs_suggest found the true code for {suggested} of {misclassified}");
        let edge = query_text(
            &s,
            "SELECT hs_suggest('zzzz qqqq') AS unknown, hs_misclassification_probability('84x', 'laptop') AS bad_code, \
             hs_suggest(NULL) AS null_text",
        )
        .await;
        assert!(edge.contains("|         |          |           |"), "no evidence gives NULL:\n{edge}");
    });
}

/// Precision and share of revenue caught among the `share` of items ranked
/// highest by `score` (Pre@n% and Rev@n% of the customs fraud literature).
fn at_top(rows: &[(f64, bool, f64)], share: f64) -> (f64, f64) {
    let mut ranked: Vec<&(f64, bool, f64)> = rows.iter().collect();
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
    let n = ((rows.len() as f64 * share).ceil() as usize).max(1);
    let top = &ranked[..n];
    let hits = top.iter().filter(|r| r.1).count() as f64;
    let caught: f64 = top.iter().map(|r| r.2).sum();
    let total: f64 = rows.iter().map(|r| r.2).sum();
    (hits / n as f64, caught / total)
}

#[test]
fn risk_score_beats_each_function_at_the_top_one_percent() {
    let wh = modelled();
    runtime().block_on(async {
        let s = truth_session(wh).await;
        let batches = query(
            &s,
            "WITH f AS (SELECT \
                 valuation_deviation(d.hs_code, d.origin_country, d.customs_value, d.quantity, d.quantity_unit, d.net_mass_kg, d.declaration_date) AS z, \
                 hs_misclassification_probability(d.hs_code, d.description) AS m, \
                 origin_risk(d.hs_code, d.origin_country, d.export_country, d.preference_code, d.importer_id, d.declaration_date) AS o, \
                 t.fraud, CAST(t.revenue_loss AS DOUBLE) AS loss \
               FROM declarations d JOIN truth t USING (declaration_id, item_no)) \
             SELECT COALESCE(-z, -100.0), COALESCE(m, 0.0), COALESCE(o, 0.0), risk_score(z, m, o), fraud, loss, risk_level(risk_score(z, m, o)) FROM f",
        )
        .await;
        let mut columns: [Vec<(f64, bool, f64)>; 4] = Default::default();
        let mut levels = std::collections::HashMap::<String, usize>::new();
        for b in &batches {
            let fraud = b.column(4).as_boolean();
            let loss = b.column(5).as_primitive::<Float64Type>();
            let level = arrow::compute::cast(b.column(6), &DataType::Utf8).unwrap();
            for i in 0..b.num_rows() {
                for (k, column) in columns.iter_mut().enumerate() {
                    let score = b.column(k).as_primitive::<Float64Type>().value(i);
                    column.push((score, fraud.value(i), loss.value(i)));
                }
                *levels.entry(level.as_string::<i32>().value(i).to_string()).or_default() += 1;
            }
        }
        let names = ["valuation_deviation", "hs_misclassification_probability", "origin_risk", "risk_score"];
        let results: Vec<(f64, f64)> = columns.iter().map(|c| at_top(c, 0.01)).collect();
        for (name, (pre, rev)) in names.iter().zip(&results) {
            eprintln!("{name:<34} Pre@1% {pre:.3}  Rev@1% {rev:.3}");
        }
        let (pre, rev) = results[3];
        for (name, (p, r)) in names.iter().zip(&results).take(3) {
            assert!(pre > *p, "risk_score Pre@1% {pre:.3} must beat {name} {p:.3}");
            assert!(rev > *r, "risk_score Rev@1% {rev:.3} must beat {name} {r:.3}");
        }
        let high = levels.get("high").copied().unwrap_or(0);
        assert!(high > 0 && high * 10 < 80_000, "high-risk items: {levels:?}");
    });
}

#[test]
fn evaluate_measures_a_score_against_labels() {
    let wh = generate(20_000, 6);
    assert!(build(&wh, &[]).status.success());
    let score = "risk_score(valuation_deviation(hs_code, origin_country, customs_value, quantity), \
                 hs_misclassification_probability(hs_code, description), origin_risk(hs_code, origin_country, export_country))";
    let out = run(aduana().args([
        "evaluate",
        "-w",
        &wh.uri(),
        "--labels",
        "truth",
        "--at",
        "1,10",
        "--score",
        score,
    ]));
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains(&format!(
            "labels: truth ({} items, {} fraudulent)",
            wh.summary.rows,
            wh.summary.fraud_total()
        )),
        "{text}"
    );
    let auc: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("AUC: "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(auc > 0.8, "{text}");
    assert!(text.contains("1%") && text.contains("10%"), "{text}");

    // Against inspections (what an administration has), and a negated score.
    let out = run(aduana().args([
        "evaluate",
        "-w",
        &wh.uri(),
        "--score",
        "-valuation_deviation(hs_code, origin_country, customs_value, quantity)",
    ]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("labels: inspections"),
        "{}",
        stdout(&out)
    );

    let bad = run(aduana().args([
        "evaluate",
        "-w",
        &wh.uri(),
        "--score",
        "no_such_function(hs_code)",
    ]));
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr(&bad).contains("no_such_function"),
        "{}",
        stderr(&bad)
    );
    let bad = run(aduana().args(["evaluate", "-w", &wh.uri(), "--score", "1", "--at", "0"]));
    assert!(
        stderr(&bad).contains("inspection rate 0% is not in (0, 100]"),
        "{}",
        stderr(&bad)
    );
    std::fs::remove_dir_all(wh.path().join("_truth")).unwrap();
    let bad = run(aduana().args([
        "evaluate",
        "-w",
        &wh.uri(),
        "--labels",
        "truth",
        "--score",
        "1",
    ]));
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr(&bad).contains("--labels truth needs the generator's ground truth"),
        "{}",
        stderr(&bad)
    );
}

#[test]
fn reasons_name_the_evidence() {
    let wh = modelled();
    runtime().block_on(async {
        let s = truth_session(wh).await;
        s.context()
            .sql(
                "CREATE VIEW r AS SELECT t.fraud_detail, substr(t.true_hs_code, 1, 6) AS true_hs6, \
                 array_to_string(risk_reasons(d.hs_code, d.origin_country, d.export_country, d.customs_value, d.quantity, \
                   d.quantity_unit, d.net_mass_kg, d.declaration_date, d.description, d.preference_code, d.importer_id), ' | ') AS reasons \
                 FROM declarations d JOIN truth t USING (declaration_id, item_no)",
            )
            .await
            .unwrap();
        let misclassified = query_i64(&s, "SELECT COUNT(*) FROM r WHERE fraud_detail = 'misclassification'").await;
        let named = query_i64(
            &s,
            "SELECT COUNT(*) FROM r WHERE fraud_detail = 'misclassification' AND reasons LIKE '%description names goods of HS ' || true_hs6 || '%'",
        )
        .await;
        assert!(named * 10 >= misclassified * 9, "{named} of {misclassified} misclassified items name their true code");
        let undervalued = query_i64(&s, "SELECT COUNT(*) FROM r WHERE fraud_detail = 'undervaluation'").await;
        let priced = query_i64(&s, "SELECT COUNT(*) FROM r WHERE fraud_detail = 'undervaluation' AND reasons LIKE '%below the reference%'").await;
        assert!(priced * 2 >= undervalued, "{priced} of {undervalued} undervalued items have a price reason");
        let quiet = query_i64(&s, "SELECT COUNT(*) FROM r WHERE fraud_detail IS NULL AND reasons = ''").await;
        let honest = query_i64(&s, "SELECT COUNT(*) FROM r WHERE fraud_detail IS NULL").await;
        assert!(quiet * 2 > honest, "most honest items give no reason ({quiet} of {honest})");
        let bad = query_text(&s, "SELECT array_to_string(risk_reasons('84x', 'CN', 'CN', 1, 1, 'NAR', 1, DATE '2026-01-01', 'x', NULL, 'i'), '') AS r").await;
        assert!(bad.contains("malformed HS code"), "{bad}");
    });
}

#[test]
fn revenue_at_risk_concentrates_on_fraud() {
    let wh = modelled();
    runtime().block_on(async {
        let s = truth_session(wh).await;
        s.context()
            .sql(
                "CREATE VIEW x AS SELECT t.fraud, \
                 revenue_at_risk(d.hs_code, d.origin_country, d.export_country, d.customs_value, d.quantity, d.quantity_unit, \
                   d.net_mass_kg, d.declaration_date, d.description, d.preference_code, d.duty_rate, d.duties_paid) AS stake, \
                 risk_score(valuation_deviation(d.hs_code, d.origin_country, d.customs_value, d.quantity, d.quantity_unit, d.net_mass_kg, d.declaration_date), \
                   hs_misclassification_probability(d.hs_code, d.description), \
                   origin_risk(d.hs_code, d.origin_country, d.export_country, d.preference_code, d.importer_id, d.declaration_date)) AS score \
                 FROM declarations d JOIN truth t USING (declaration_id, item_no)",
            )
            .await
            .unwrap();
        assert_eq!(query_i64(&s, "SELECT COUNT(*) FROM x WHERE stake < 0 OR stake IS NULL").await, 0);
        let fraud = query_i64(&s, "SELECT CAST(AVG(score * stake) AS BIGINT) FROM x WHERE fraud").await;
        let honest = query_i64(&s, "SELECT CAST(AVG(score * stake) AS BIGINT) FROM x WHERE NOT fraud").await;
        assert!(fraud > 8 * honest, "expected revenue at risk per item: fraud {fraud}, honest {honest}");
        let edge = query_text(
            &s,
            "SELECT revenue_at_risk('84713000', 'CN', 'CN', 0, 1, 'NAR', 1, DATE '2026-01-01', 'x', NULL, 5, 0) AS zero_value, \
                    revenue_at_risk('84x', 'CN', 'CN', 10, 1, 'NAR', 1, DATE '2026-01-01', 'x', NULL, 5, 1) AS bad_code",
        )
        .await;
        assert!(edge.contains("|            |          |"), "NULL for a zero value or a malformed code:\n{edge}");
    });
}
