//! The risk model: `aduana model build`, its publication, and the quality
//! of the functions built on it against the generator's ground truth.

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Float64Type};

use crate::support::*;

/// One 240,000-item warehouse (12 months to 2026-10) with a model learned
/// from its first nine months, shared by the read-only quality tests
/// (generating and learning it once saves seconds per test). The tests
/// score the three months after the model's window, as the nightly job
/// scores new declarations: no item is judged by a model that saw it.
pub(crate) fn modelled() -> &'static TestWarehouse {
    static WAREHOUSE: std::sync::OnceLock<TestWarehouse> = std::sync::OnceLock::new();
    WAREHOUSE.get_or_init(|| {
        let wh = generate(240_000, 12);
        let out = build(&wh, &["--through", "2026-07-31"]);
        assert!(out.status.success(), "{}", stderr(&out));
        wh
    })
}

/// The items the quality tests score: those after the model's window.
const SCORED: &str = "d.declaration_date >= DATE '2026-08-01'";

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
        // inspected: found fraudulent, or compliant (a minority here, so
        // left out too).
        let learned = query_i64(&s, "SELECT training_items + excluded_fraud_items + excluded_inspected_items FROM risk_model_info()").await;
        assert_eq!(learned as u64, wh.summary.rows);
        let excluded = query_i64(&s, "SELECT excluded_fraud_items FROM risk_model_info()").await;
        let found = query_i64(&s, "SELECT COUNT(DISTINCT declaration_id || '/' || item_no) FROM inspections WHERE result = 'fraud'").await;
        assert_eq!(excluded, found);
        let compliant = query_i64(&s, "SELECT excluded_inspected_items FROM risk_model_info()").await;
        let inspected = query_i64(
            &s,
            "SELECT COUNT(*) FROM declarations d WHERE EXISTS (SELECT 1 FROM inspections i \
             WHERE i.declaration_id = d.declaration_id AND (i.item_no = d.item_no OR i.item_no IS NULL))",
        )
        .await;
        assert!(compliant > 0 && inspected * 2 < wh.summary.rows as i64, "{compliant} {inspected}");
        assert_eq!(compliant + excluded, inspected);
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
fn valuation_deviation_beats_the_median_mad_baseline_on_undervaluation() {
    let wh = modelled();
    runtime().block_on(async {
        let s = truth_session(wh).await;
        let label = "COALESCE(t.fraud_detail = 'undervaluation', false)";
        let from = format!("FROM declarations d JOIN truth t USING (declaration_id, item_no) WHERE {SCORED}");
        let item = "d.hs_code, d.origin_country, d.customs_value, d.quantity, d.quantity_unit, d.net_mass_kg, d.declaration_date";
        // The analyst's baseline: modified z-score of the log unit value
        // against the median and MAD of the same HS6 x origin over the
        // same months the model learned from.
        let baseline = auc(&mut scored(
            &s,
            &format!(
                "WITH hist AS (SELECT hs6(hs_code) AS h, origin_country AS o, \
                     ln(CAST(customs_value AS DOUBLE) / quantity) AS luv FROM declarations \
                     WHERE declaration_date < DATE '2026-08-01' AND customs_value > 0 AND quantity > 0), \
                 med AS (SELECT h, o, median(luv) AS m FROM hist GROUP BY h, o), \
                 cell AS (SELECT hist.h, hist.o, med.m, median(abs(hist.luv - med.m)) AS mad \
                     FROM hist JOIN med ON hist.h = med.h AND hist.o = med.o GROUP BY hist.h, hist.o, med.m) \
                 SELECT -0.6745 * (ln(CAST(d.customs_value AS DOUBLE) / d.quantity) - cell.m) / NULLIF(cell.mad, 0), {label} \
                 FROM declarations d JOIN truth t USING (declaration_id, item_no) \
                 LEFT JOIN cell ON cell.h = hs6(d.hs_code) AND cell.o = d.origin_country WHERE {SCORED}"
            ),
        )
        .await);
        let plain = auc(&mut scored(&s, &format!("SELECT -valuation_deviation({item}), {label} {from}")).await);
        let with_record = auc(&mut scored(
            &s,
            &format!("SELECT -valuation_deviation({item}, d.importer_id), {label} {from}"),
        )
        .await);
        eprintln!(
            "undervaluation AUC: baseline {baseline:.3}, valuation_deviation {plain:.3}, \
             with the importer's record {with_record:.3}"
        );
        assert!(plain > baseline - 0.01, "the item z-score alone {plain:.3} vs {baseline:.3}");
        assert!(
            with_record > baseline + 0.02,
            "valuation_deviation with the importer {with_record:.3} must clearly beat {baseline:.3}"
        );

        // Every scored item finds a reference; honest items sit near it.
        let (missing, honest_median) = {
            let b = query(
                &s,
                &format!(
                    "SELECT COUNT(*) FILTER (WHERE valuation_deviation({item}) IS NULL), \
                     median(abs(valuation_deviation({item}))) FILTER (WHERE NOT t.fraud), COUNT(*) {from}"
                ),
            )
            .await;
            let missing = b[0].column(0).as_primitive::<arrow::datatypes::Int64Type>().value(0);
            let total = b[0].column(2).as_primitive::<arrow::datatypes::Int64Type>().value(0);
            assert!(missing * 100 < total, "{missing} of {total} items without a reference");
            (missing, b[0].column(1).as_primitive::<Float64Type>().value(0))
        };
        assert!(honest_median < 1.0, "honest items' median |z| is {honest_median:.2} ({missing} missing)");
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
    // A file that is there but does not decode: the model is decoded when
    // a function first needs it, so the tables stay queryable and the
    // first risk function names the file.
    let version = std::fs::read_to_string(wh.path().join("risk/model/CURRENT")).unwrap();
    let prices = wh
        .path()
        .join("risk/model")
        .join(version.trim())
        .join("price_profiles.parquet");
    std::fs::write(&prices, b"not parquet").unwrap();
    let plain = run(aduana().args([
        "sql",
        "-w",
        &wh.uri(),
        "--format",
        "csv",
        "-c",
        "SELECT COUNT(*) FROM declarations",
    ]));
    assert!(plain.status.success(), "{}", stderr(&plain));
    let count: u64 = stdout(&plain).lines().last().unwrap().parse().unwrap();
    assert!(count >= 5_000, "{}", stdout(&plain));
    for sql in [
        "SELECT origin_risk(hs_code, origin_country, export_country) FROM declarations LIMIT 1",
        "SELECT * FROM risk_model_info()",
    ] {
        let out = run(aduana().args(["sql", "-w", &wh.uri(), "-c", sql]));
        assert_eq!(out.status.code(), Some(1), "{sql}");
        assert!(
            stderr(&out).contains("price_profiles.parquet")
                && stderr(&out).contains("rebuild it with `aduana model build`"),
            "{sql}: {}",
            stderr(&out)
        );
    }
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
        let from = format!("FROM declarations d JOIN truth t USING (declaration_id, item_no) WHERE {SCORED}");
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
        let from = format!("FROM declarations d JOIN truth t USING (declaration_id, item_no) WHERE {SCORED}");
        let label = "COALESCE(t.fraud_detail = 'misclassification', false)";
        let text_only = auc(&mut scored(
            &s,
            &format!("SELECT hs_misclassification_probability(d.hs_code, d.description), {label} {from}"),
        )
        .await);
        let with_prices = auc(&mut scored(
            &s,
            &format!(
                "SELECT hs_misclassification_probability(d.hs_code, d.description, d.customs_value, d.quantity, \
                 d.origin_country, d.quantity_unit, d.net_mass_kg), {label} {from}"
            ),
        )
        .await);
        eprintln!("misclassification AUC: description {text_only:.3}, with prices {with_prices:.3}");
        // The analyst's baseline without text evidence ranks at random (0.5).
        assert!(text_only > 0.9, "AUC of hs_misclassification_probability: {text_only:.3}");
        assert!(with_prices >= text_only - 0.002, "prices must not blur the description: {with_prices:.3} vs {text_only:.3}");
        let misclassified = query_i64(&s, &format!("SELECT COUNT(*) {from} AND t.fraud_detail = 'misclassification'")).await;
        let suggested = query_i64(
            &s,
            &format!("SELECT COUNT(*) {from} AND t.fraud_detail = 'misclassification' AND hs_suggest(d.description) = substr(t.true_hs_code, 1, 6)"),
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
            &format!("WITH f AS (SELECT \
                 valuation_deviation(d.hs_code, d.origin_country, d.customs_value, d.quantity, d.quantity_unit, d.net_mass_kg, d.declaration_date, d.importer_id) AS z, \
                 hs_misclassification_probability(d.hs_code, d.description, d.customs_value, d.quantity, d.origin_country, d.quantity_unit, d.net_mass_kg) AS m, \
                 origin_risk(d.hs_code, d.origin_country, d.export_country, d.preference_code, d.importer_id, d.declaration_date) AS o, \
                 t.fraud, CAST(t.revenue_loss AS DOUBLE) AS loss \
               FROM declarations d JOIN truth t USING (declaration_id, item_no) WHERE {SCORED}) \
             SELECT COALESCE(-z, -100.0), COALESCE(m, 0.0), COALESCE(o, 0.0), risk_score(z, m, o), fraud, loss, risk_level(risk_score(z, m, o)) FROM f"),
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
        let items: usize = levels.values().sum();
        assert!(high > 0 && high * 10 < items, "high-risk items: {levels:?}");
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
    // It says what it measured, and that the model trained on these items.
    assert!(
        text.contains("(computed now over declarations)")
            && text.contains("period: items declared from 2026-05-01 to 2026-10-31"),
        "{text}"
    );
    assert!(
        stderr(&out).contains(&format!(
            "warning: {} of {} items measured lie in the model's training window",
            wh.summary.rows, wh.summary.rows
        )),
        "{}",
        stderr(&out)
    );

    // One kind of fraud over chosen months: counts agree with the truth.
    let months = "declaration_date >= DATE '2026-09-01'";
    let out = run(aduana().args([
        "evaluate",
        "-w",
        &wh.uri(),
        "--labels",
        "truth",
        "--fraud-type",
        "valuation",
        "--where",
        months,
        "--score",
        "-valuation_deviation(hs_code, origin_country, customs_value, quantity)",
    ]));
    assert!(out.status.success(), "{}", stderr(&out));
    let s = runtime().block_on(async {
        let s = truth_session(&wh).await;
        let counts = query(
            &s,
            &format!(
                "SELECT COUNT(*), COUNT(*) FILTER (WHERE t.fraud_type = 'valuation') \
                 FROM declarations d JOIN truth t USING (declaration_id, item_no) WHERE d.{months}"
            ),
        )
        .await;
        let column = |k: usize| {
            counts[0]
                .column(k)
                .as_primitive::<arrow::datatypes::Int64Type>()
                .value(0)
        };
        (column(0), column(1))
    });
    assert!(
        stdout(&out).contains(&format!(
            "labels: truth, valuation fraud only ({} items where {months}, {} fraudulent)",
            s.0, s.1
        )),
        "{}",
        stdout(&out)
    );
    let bad = run(aduana().args([
        "evaluate",
        "-w",
        &wh.uri(),
        "--score",
        "1",
        "--fraud-type",
        "smuggling",
    ]));
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    let bad = run(aduana().args([
        "evaluate",
        "-w",
        &wh.uri(),
        "--score",
        "1",
        "--where",
        "no_such_column > 1",
    ]));
    assert!(stderr(&bad).contains("no_such_column"), "{}", stderr(&bad));

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
    // After a refresh, the published score is measured by default.
    assert!(
        run(aduana().args(["refresh", "-w", &wh.uri()]))
            .status
            .success()
    );
    let out = run(aduana().args([
        "evaluate",
        "-w",
        &wh.uri(),
        "--labels",
        "truth",
        "--score",
        "risk_score",
    ]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("score: risk_score (published scores (risk.declaration_scores))"),
        "{}",
        stdout(&out)
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
                 FROM declarations d JOIN truth t USING (declaration_id, item_no) WHERE d.declaration_date >= DATE '2026-08-01'",
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
        // The importer's pricing record is named far more often for
        // undervalued items than for honest ones.
        let share = |filter: &'static str| {
            let s = &s;
            async move {
                let named = query_i64(s, &format!("SELECT COUNT(*) FROM r WHERE {filter} AND reasons LIKE '%the importer declared%'")).await;
                named as f64 / query_i64(s, &format!("SELECT COUNT(*) FROM r WHERE {filter}")).await as f64
            }
        };
        let (fraud_share, honest_share) = (share("fraud_detail = 'undervaluation'").await, share("fraud_detail IS NULL").await);
        assert!(fraud_share > 0.1 && fraud_share > 5.0 * honest_share, "record named for {fraud_share:.3} of undervalued, {honest_share:.3} of honest");
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
        // Absurd assessed taxes (duties of 10^16 on a value cut a
        // thousandfold, a NaN duty rate) are keying errors: the item is
        // judged at its tariff's rate, never at an absurd or NaN stake.
        let stake = |value: &str, rate: &str, paid: &str| {
            format!(
                "revenue_at_risk(hs_code, origin_country, export_country, {value}, quantity, quantity_unit, \
                   net_mass_kg, declaration_date, description, preference_code, {rate}, {paid})"
            )
        };
        let cut = "customs_value / 1000";
        let compared = format!(
            "SELECT CAST(SUM(CASE WHEN absurd_paid IS DISTINCT FROM no_paid THEN 1 ELSE 0 END) AS BIGINT) AS paid_differs, \
                    CAST(SUM(CASE WHEN nan_rate IS DISTINCT FROM no_rate THEN 1 ELSE 0 END) AS BIGINT) AS rate_differs, \
                    CAST(SUM(CASE WHEN absurd_paid > 0 THEN 1 ELSE 0 END) AS BIGINT) AS at_stake \
             FROM (SELECT {} AS absurd_paid, {} AS no_paid, {} AS nan_rate, {} AS no_rate \
                   FROM (SELECT * FROM declarations LIMIT 2000))",
            stake(cut, "duty_rate", "CAST(1e16 AS DOUBLE)"),
            stake(cut, "duty_rate", "NULL"),
            stake("customs_value", "CAST('NaN' AS DOUBLE)", "NULL"),
            stake("customs_value", "NULL", "NULL"),
        );
        let counts = query_text(&s, &compared).await;
        let row: Vec<i64> = counts
            .lines()
            .nth(3)
            .unwrap()
            .split('|')
            .filter_map(|cell| cell.trim().parse().ok())
            .collect();
        assert_eq!(row[..2], [0, 0], "absurd taxes change the stake:\n{counts}");
        assert!(row[2] > 100, "items undervalued a thousandfold are at stake:\n{counts}");
    });
}

/// Issue 18 (what exports lack): a warehouse shaped like a public export,
/// with net mass but no quantity, no quantity unit and no goods
/// descriptions. The model learns per-kg price cells, every item with a
/// net mass gets a valuation z-score, undervaluation still ranks well, and
/// no risk score is NULL (no description is no classification evidence).
#[test]
fn exports_without_quantity_or_descriptions_are_valued_per_kg() {
    use arrow::array::new_null_array;
    let wh = generate(120_000, 12);
    for file in parquet_files(&wh.path().join("declarations")) {
        let mut batch = read_parquet(&file);
        for name in ["quantity", "quantity_unit", "description"] {
            let field = batch.schema().field_with_name(name).unwrap().clone();
            let nulls = new_null_array(field.data_type(), batch.num_rows());
            batch = replace_column(&batch, name, Some((field.with_nullable(true), nulls)));
        }
        write_parquet(&file, &batch);
    }
    let out = build(&wh, &["--through", "2026-07-31"]);
    assert!(out.status.success(), "{}", stderr(&out));
    runtime().block_on(async {
        let s = truth_session(&wh).await;
        let from = format!("FROM declarations d JOIN truth t USING (declaration_id, item_no) WHERE {SCORED}");
        let item = "d.hs_code, d.origin_country, d.customs_value, d.quantity, d.quantity_unit, \
                    d.net_mass_kg, d.declaration_date, d.importer_id";
        let counts = query_text(
            &s,
            &format!(
                "SELECT COUNT(*) AS items, COUNT(valuation_deviation({item})) AS valued, \
                 COUNT(d.net_mass_kg) AS with_mass FROM declarations d WHERE {SCORED}"
            ),
        )
        .await;
        let numbers: Vec<f64> = counts
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|n| n.parse().ok())
            .collect();
        let (items, valued, with_mass) = (numbers[0], numbers[1], numbers[2]);
        assert!(valued >= 0.9 * with_mass && with_mass > 0.9 * items, "{counts}");
        let label = "COALESCE(t.fraud_detail = 'undervaluation', false)";
        let valuation = auc(&mut scored(&s, &format!("SELECT -valuation_deviation({item}), {label} {from}")).await);
        eprintln!("undervaluation AUC per kg, no quantity: {valuation:.3}");
        assert!(valuation > 0.8, "undervaluation AUC {valuation:.3}");
        let nulls = query_i64(
            &s,
            &format!("SELECT COUNT(*) FROM scored_items d WHERE {SCORED} AND risk IS NULL"),
        )
        .await;
        assert_eq!(nulls, 0, "no risk score is NULL");
        let any = "COALESCE(t.fraud_detail IS NOT NULL, false)";
        let risk = auc(&mut scored(&s, &format!("SELECT d.risk, {any} FROM scored_items d JOIN truth t USING (declaration_id, item_no) WHERE {SCORED}")).await);
        eprintln!("risk_score AUC, any fraud, no quantity or descriptions: {risk:.3}");
    });
}

/// The scoring views take the four evidence columns from one
/// `item_evidence` call per item: each must equal its own function
/// (`IS DISTINCT FROM`: NULL where it is NULL, the same value elsewhere) on
/// every item, including items missing what a function needs (NULLs
/// spread over the columns by row number).
#[test]
fn item_evidence_equals_the_four_functions() {
    let wh = modelled();
    runtime().block_on(async {
        let s = truth_session(wh).await;
        let holes = |column: &str, k: u32| {
            format!("CASE WHEN d.seq % {k} = 0 THEN NULL ELSE d.{column} END AS {column}")
        };
        let columns = [
            ("hs_code", 37),
            ("origin_country", 31),
            ("export_country", 29),
            ("customs_value", 23),
            ("quantity", 19),
            ("quantity_unit", 17),
            ("net_mass_kg", 13),
            ("declaration_date", 11),
            ("description", 7),
            ("preference_code", 5),
            ("duty_rate", 43),
            ("duties_paid", 41),
            ("importer_id", 3),
        ];
        let select: Vec<String> = columns.iter().map(|(c, k)| holes(c, *k)).collect();
        s.context()
            .sql(&format!(
                "CREATE VIEW holed AS SELECT d.declaration_id, {} \
                 FROM (SELECT *, ROW_NUMBER() OVER (ORDER BY declaration_id, item_no) AS seq FROM declarations) d",
                select.join(", ")
            ))
            .await
            .unwrap();
        s.context()
            .sql(&format!(
                "CREATE VIEW compared AS SELECT *, \
                   valuation_deviation(d.hs_code, d.origin_country, d.customs_value, d.quantity, d.quantity_unit, \
                     d.net_mass_kg, d.declaration_date, d.importer_id) AS z, \
                   hs_misclassification_probability(d.hs_code, d.description, d.customs_value, d.quantity, \
                     d.origin_country, d.quantity_unit, d.net_mass_kg) AS m, \
                   origin_risk(d.hs_code, d.origin_country, d.export_country, d.preference_code, d.importer_id, \
                     d.declaration_date) AS o, \
                   revenue_at_risk(d.hs_code, d.origin_country, d.export_country, d.customs_value, d.quantity, \
                     d.quantity_unit, d.net_mass_kg, d.declaration_date, d.description, d.preference_code, \
                     d.duty_rate, d.duties_paid) AS r \
                 FROM ({}) d",
                aduana_engine::with_evidence("holed")
            ))
            .await
            .unwrap();
        let differing = query_text(
            &s,
            "SELECT COUNT(*) FILTER (WHERE value_z IS DISTINCT FROM z) AS z, \
                    COUNT(*) FILTER (WHERE p_wrong_code IS DISTINCT FROM m) AS m, \
                    COUNT(*) FILTER (WHERE origin_score IS DISTINCT FROM o) AS o, \
                    COUNT(*) FILTER (WHERE at_stake IS DISTINCT FROM r) AS r FROM compared",
        )
        .await;
        let counts: Vec<i64> = differing
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|n| n.parse().ok())
            .collect();
        assert_eq!(counts, [0, 0, 0, 0], "items whose evidence differs:\n{differing}");
        // The comparison covers every kind of answer: values, NULLs, and a
        // revenue at stake from each kind of doubt.
        let covered = query_text(
            &s,
            "SELECT COUNT(*) AS items, COUNT(z) AS z, COUNT(m) AS m, COUNT(o) AS o, \
                    COUNT(*) FILTER (WHERE r > 0) AS staked, COUNT(*) FILTER (WHERE z IS NULL) AS no_z, \
                    COUNT(*) FILTER (WHERE m IS NULL) AS no_m, COUNT(*) FILTER (WHERE r IS NULL) AS no_r \
             FROM compared",
        )
        .await;
        let n: Vec<i64> = covered
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|n| n.parse().ok())
            .collect();
        assert!(n.len() == 8 && n[1..].iter().all(|&c| c > 0) && n[4] * 100 > n[0], "{covered}");
    });
}

/// Reference codes written with the separators people use ("7210.49",
/// "7210 49 10") are matched as their digits: a warehouse whose tariff and
/// remedies are written so scores exactly as one written plainly.
#[test]
fn reference_codes_with_separators_match_as_their_digits() {
    use arrow::array::{ArrayRef, StringArray};
    let plain = generate(20_000, 3);
    let dir = tempfile::tempdir().unwrap();
    let dotted = dir.path().join("wh");
    copy_dir(plain.path(), &dotted);
    for (table, spaced) in [("tariff", false), ("trade_remedies", true)] {
        let file = dotted.join(format!("reference/{table}.parquet"));
        let batch = read_parquet(&file);
        let codes = strings(
            std::slice::from_ref(&batch),
            batch.schema().index_of("hs_code").unwrap(),
        );
        // 72104910 -> "7210.49.10" (tariff) or "7210 49 10" (remedies).
        let written: Vec<String> = codes
            .iter()
            .map(|code| {
                let code = code.as_deref().unwrap();
                let parts: Vec<&str> = [
                    &code[..4.min(code.len())],
                    code.get(4..6).unwrap_or(""),
                    code.get(6..).unwrap_or(""),
                ]
                .into_iter()
                .filter(|p| !p.is_empty())
                .collect();
                parts.join(if spaced { " " } else { "." })
            })
            .collect();
        assert!(written.iter().any(|c| c.contains(['.', ' '])));
        let field = batch.schema().field_with_name("hs_code").unwrap().clone();
        let array: ArrayRef = std::sync::Arc::new(StringArray::from(written));
        let array = arrow::compute::cast(&array, field.data_type()).unwrap();
        write_parquet(
            &file,
            &replace_column(&batch, "hs_code", Some((field, array))),
        );
    }
    let dotted = dotted.display().to_string();
    let sums = |uri: &str| {
        let out = run(aduana().args(["model", "build", "-w", uri]));
        assert!(out.status.success(), "{}", stderr(&out));
        let s = runtime().block_on(session(uri));
        runtime().block_on(query_text(
            &s,
            "SELECT round(SUM(origin_score), 6), round(SUM(at_stake), 2),
                    COUNT(*) FILTER (WHERE origin_score > 0.5)
             FROM scored_items",
        ))
    };
    let (plain_sums, dotted_sums) = (sums(&plain.uri()), sums(&dotted));
    assert_eq!(plain_sums, dotted_sums);
}
