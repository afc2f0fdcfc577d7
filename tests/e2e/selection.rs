//! `aduana select` and the monitoring reports: capacities per office and
//! lane, the random share, reproducibility, publication, and what the
//! reports say against SQL written independently here.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use crate::model::modelled;
use crate::support::*;

const DAY: &str = "2026-08-04";

fn select(root: &Path, extra: &[&str]) -> std::process::Output {
    run(aduana()
        .args(["select", "-w", &root.display().to_string(), "--date", DAY])
        .args(extra))
}

fn selection_bytes(root: &Path) -> Vec<u8> {
    std::fs::read(root.join(format!(
        "risk/selections/selection_date={DAY}/selection.parquet"
    )))
    .unwrap()
}

/// `(office, lane, selected_by) -> count` of the published selection.
async fn counts(root: &Path) -> BTreeMap<(String, String, String), i64> {
    let s = session(&root.display().to_string()).await;
    let text = query_text(
        &s,
        "SELECT office_code || '|' || lane || '|' || selected_by || '|' || CAST(COUNT(*) AS VARCHAR) \
         FROM risk.selections GROUP BY office_code, lane, selected_by",
    )
    .await;
    text.lines()
        .filter_map(|l| {
            let parts: Vec<&str> = l
                .trim_matches(|c| c == '|' || c == ' ')
                .split('|')
                .collect();
            let [office, lane, by, n] = parts[..] else {
                return None;
            };
            Some((
                (office.trim().into(), lane.trim().into(), by.trim().into()),
                n.trim().parse().ok()?,
            ))
        })
        .collect()
}

#[test]
fn selection_fills_each_office_and_lane_exactly_and_publishes_once() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("wh");
    copy_dir(modelled().path(), &root);
    let uri = root.display().to_string();
    let rt = runtime();

    // The day's busiest office gets its own capacities; every other office
    // the default.
    let (busiest, offices) = rt.block_on(async {
        let s = session(&uri).await;
        let busiest = query_text(
            &s,
            &format!(
                "SELECT office_code FROM declarations WHERE declaration_date = DATE '{DAY}' \
                 GROUP BY office_code ORDER BY COUNT(*) DESC, office_code LIMIT 1"
            ),
        )
        .await;
        let offices = query_i64(
            &s,
            &format!(
                "SELECT COUNT(*) FROM (SELECT office_code FROM declarations \
                 WHERE declaration_date = DATE '{DAY}' GROUP BY office_code HAVING COUNT(*) >= 20)"
            ),
        )
        .await;
        (
            busiest
                .lines()
                .nth(3)
                .unwrap()
                .trim_matches(|c| c == '|' || c == ' ')
                .to_string(),
            offices,
        )
    });
    assert!(
        offices >= 3,
        "the test day has {offices} offices with 20 items"
    );
    let capacities = dir.path().join("capacities.csv");
    std::fs::write(
        &capacities,
        format!("office_code,red,yellow\n{busiest},8,4\nNO-SUCH-OFFICE,3,3\n"),
    )
    .unwrap();
    let args = [
        "--capacity",
        "red=4,yellow=6",
        "--by",
        "office",
        "--capacities",
        capacities.to_str().unwrap(),
        "--explore",
        "0.25",
        "--aeo-factor",
        "1",
        "--seed",
        "3",
    ];
    let out = select(&root, &args);
    let said = ok(&out);
    assert!(
        said.contains("selected") && said.contains("red/random"),
        "{said}"
    );
    assert!(
        said.contains("no items declared 2026-08-04 at NO-SUCH-OFFICE"),
        "{said}"
    );
    let first = selection_bytes(&root);

    let counts = rt.block_on(counts(&root));
    let items_per_office: BTreeMap<String, i64> = rt.block_on(async {
        let s = session(&uri).await;
        query_text(
            &s,
            &format!(
                "SELECT office_code || '=' || CAST(COUNT(*) AS VARCHAR) FROM declarations \
                 WHERE declaration_date = DATE '{DAY}' GROUP BY office_code"
            ),
        )
        .await
        .lines()
        .filter_map(|l| {
            let (o, n) = l.trim_matches(|c| c == '|' || c == ' ').split_once('=')?;
            Some((o.trim().to_string(), n.trim().parse().ok()?))
        })
        .collect()
    });
    assert!(!items_per_office.is_empty());
    for (office, items) in &items_per_office {
        let (red, yellow) = if *office == busiest { (8, 4) } else { (4, 6) };
        if *items < red + yellow {
            continue;
        }
        let n = |lane: &str, by: &str| {
            counts
                .get(&(office.clone(), lane.to_string(), by.to_string()))
                .copied()
                .unwrap_or(0)
        };
        // Exactly the capacity, a quarter of it (rounded) at random.
        let random = |c: i64| ((c as f64) * 0.25).round() as i64;
        assert_eq!(n("red", "random"), random(red), "{office}: {counts:?}");
        assert_eq!(n("red", "model"), red - random(red), "{office}");
        assert_eq!(n("yellow", "random"), random(yellow), "{office}");
        assert_eq!(n("yellow", "model"), yellow - random(yellow), "{office}");
    }

    rt.block_on(async {
        let s = session(&uri).await;
        // No item twice; every one declared that day at that office.
        let twice = query_i64(
            &s,
            "SELECT COUNT(*) FROM (SELECT declaration_id, item_no FROM risk.selections \
             GROUP BY declaration_id, item_no HAVING COUNT(*) > 1)",
        )
        .await;
        assert_eq!(twice, 0);
        let strangers = query_i64(
            &s,
            &format!(
                "SELECT COUNT(*) FROM risk.selections s LEFT JOIN declarations d \
                 ON d.declaration_id = s.declaration_id AND d.item_no = s.item_no \
                 AND d.declaration_date = DATE '{DAY}' AND d.office_code = s.office_code \
                 WHERE d.declaration_id IS NULL"
            ),
        )
        .await;
        assert_eq!(strangers, 0);
        // The model's picks are the office's highest expected revenue among
        // the items the random draw left.
        let outranked = query_i64(
            &s,
            &format!(
                "WITH day AS (SELECT declaration_id, item_no, office_code, revenue_expected \
                              FROM scored_items WHERE declaration_date = DATE '{DAY}'), \
                 lowest AS (SELECT office_code, MIN(expected_revenue) AS r FROM risk.selections \
                            WHERE selected_by = 'model' GROUP BY office_code) \
                 SELECT COUNT(*) FROM day d JOIN lowest l ON l.office_code = d.office_code \
                 WHERE d.revenue_expected > l.r AND NOT EXISTS (SELECT 1 FROM risk.selections s \
                   WHERE s.declaration_id = d.declaration_id AND s.item_no = d.item_no)"
            ),
        )
        .await;
        assert_eq!(outranked, 0, "an unselected item outranks a model pick");
        // Each office's random controls stand for all its items: at AEO
        // factor 1 every item has the same chance, so exactly.
        let mismatched = query_i64(
            &s,
            &format!(
                "WITH w AS (SELECT office_code, SUM(design_weight) AS w FROM risk.selections \
                            WHERE selected_by = 'random' GROUP BY office_code), \
                 n AS (SELECT office_code, COUNT(*) AS n FROM declarations \
                       WHERE declaration_date = DATE '{DAY}' GROUP BY office_code) \
                 SELECT COUNT(*) FROM w JOIN n USING (office_code) WHERE abs(w.w - n.n) > 1e-6"
            ),
        )
        .await;
        assert_eq!(mismatched, 0);
        let unexplained = query_i64(
            &s,
            "SELECT COUNT(*) FROM risk.selections WHERE NOT (\
             (selected_by = 'model' AND starts_with(reason, 'ranked ') AND strpos(reason, 'by expected revenue') > 0) \
             OR (selected_by = 'random' AND starts_with(reason, 'random control (seed 3)')))",
        )
        .await;
        assert_eq!(unexplained, 0);
    });

    // Published once: a second run is refused and leaves the file alone.
    let again = select(&root, &args);
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("already published") && stderr(&again).contains("--replace"),
        "{}",
        stderr(&again)
    );
    assert!(
        selection_bytes(&root) == first,
        "the refused run changed the file"
    );
    // Replaced with the same inputs and seed: the same bytes.
    let replaced = select(&root, &[&args[..], &["--replace"]].concat());
    ok(&replaced);
    assert!(selection_bytes(&root) == first, "replaced with other bytes");
    // Another seed draws other random controls; the model's picks stay.
    let mut reseeded: Vec<&str> = args.to_vec();
    let last = reseeded.len() - 1;
    reseeded[last] = "4";
    reseeded.push("--replace");
    ok(&select(&root, &reseeded));
    let picks = |by: &str| {
        let by = by.to_string();
        let uri = uri.clone();
        rt.block_on(async move {
            let s = session(&uri).await;
            query_text(
                &s,
                &format!(
                    "SELECT declaration_id, item_no FROM risk.selections \
                     WHERE selected_by = '{by}' ORDER BY 1, 2"
                ),
            )
            .await
        })
    };
    let random_4 = picks("random");
    std::fs::write(
        root.join(format!(
            "risk/selections/selection_date={DAY}/selection.parquet"
        )),
        &first,
    )
    .unwrap();
    assert_ne!(picks("random"), random_4);

    // Bad inputs are named.
    let bad = select(&root, &["--capacity", "red=x", "--replace"]);
    assert!(
        stderr(&bad).contains("'x' is not a whole number"),
        "{}",
        stderr(&bad)
    );
    let bad = select(&root, &["--capacity", "blue=3", "--replace"]);
    assert!(
        stderr(&bad).contains("unknown lane 'blue'"),
        "{}",
        stderr(&bad)
    );
    let bad = select(&root, &["--capacity", "3", "--explore", "1.5", "--replace"]);
    assert!(
        stderr(&bad).contains("exploration share"),
        "{}",
        stderr(&bad)
    );
    let empty = run(aduana().args([
        "select",
        "-w",
        &uri,
        "--date",
        "2031-01-01",
        "--capacity",
        "3",
    ]));
    assert!(
        stderr(&empty).contains("no declaration items dated 2031-01-01"),
        "{}",
        stderr(&empty)
    );
    let bad = select(&root, &["--capacity", "red=5,red=6", "--replace"]);
    assert!(
        stderr(&bad).contains("red lane is given twice"),
        "{}",
        stderr(&bad)
    );
    let selected_on = |day: &str| root.join(format!("risk/selections/selection_date={day}"));
    // Nothing to control is refused, not published: an empty selection
    // would hold the day against a real one.
    let select_days = |from: &str, until: &str, extra: &[&str]| {
        run(aduana()
            .args(["select", "-w", &uri, "--date", from, "--until", until])
            .args(extra))
    };
    let nothing = select_days(
        "2026-08-05",
        "2026-08-05",
        &["--capacity", "red=0,yellow=0"],
    );
    assert!(
        !nothing.status.success() && stderr(&nothing).contains("selects nothing"),
        "{}",
        stderr(&nothing)
    );
    assert!(!selected_on("2026-08-05").exists());
    // A range over a published day is refused whole, before any day of it
    // is written.
    let range = select_days("2026-08-03", "2026-08-05", &["--capacity", "3"]);
    assert!(
        !range.status.success()
            && stderr(&range).contains("a selection for 2026-08-04 is already published")
            && stderr(&range).contains("nothing was written"),
        "{}",
        stderr(&range)
    );
    for day in ["2026-08-03", "2026-08-05"] {
        assert!(
            !selected_on(day).exists(),
            "{day} written by a refused range"
        );
    }
    let none = select_days("2031-01-01", "2031-01-03", &["--capacity", "3"]);
    assert!(
        !none.status.success()
            && stderr(&none).contains("no declaration items dated 2031-01-01 through 2031-01-03"),
        "{}",
        stderr(&none)
    );
    assert!(
        selection_bytes(&root) == first,
        "a failed run changed the file"
    );

    monitoring_matches_independent_sql(&uri);

    // The capacities file alone: its offices get their capacity, the
    // others none.
    let capacities = capacities.display().to_string();
    ok(&select_days(
        "2026-08-05",
        "2026-08-05",
        &["--capacities", &capacities],
    ));
    let (rows, other_offices) = rt.block_on(async {
        let s = session(&uri).await;
        let day = "selection_date = DATE '2026-08-05'";
        (
            query_i64(&s, &format!("SELECT COUNT(*) FROM risk.selections WHERE {day}")).await,
            query_i64(
                &s,
                &format!(
                    "SELECT COUNT(*) FROM risk.selections WHERE {day} AND office_code <> '{busiest}'"
                ),
            )
            .await,
        )
    });
    assert!((1..=12).contains(&rows), "{rows} controls for 8 + 4");
    assert_eq!(other_offices, 0);
}

/// The monitoring reports against the same numbers computed another way:
/// outcomes by EXISTS instead of joins, the revenue per inspection
/// record, the estimate in Rust.
fn monitoring_matches_independent_sql(uri: &str) {
    let rt = runtime();
    // A post-clearance audit of a whole declaration of which several items
    // were selected recovers 1,000.00: one record, counted once. Another,
    // of the declaration of several items of a random control, 500.00:
    // the control speaks for its item, so for its share of that.
    let first_of = |sql: &str| -> String {
        let batches = rt.block_on(async { query(&session(uri).await, sql).await });
        let ids = strings(&batches, 0);
        ids.first()
            .cloned()
            .flatten()
            .unwrap_or_else(|| panic!("nothing for {sql}"))
    };
    let several = first_of(
        "SELECT declaration_id FROM risk.selections GROUP BY declaration_id \
         HAVING COUNT(*) >= 2 ORDER BY declaration_id LIMIT 1",
    );
    let random = first_of(
        "SELECT s.declaration_id FROM risk.selections s \
         JOIN (SELECT declaration_id, COUNT(*) AS items FROM declarations GROUP BY declaration_id) d \
           ON d.declaration_id = s.declaration_id \
         WHERE s.selected_by = 'random' AND d.items >= 2 ORDER BY 1 LIMIT 1",
    );
    add_declaration_control(Path::new(uri), &several, "2026-08-20", "fraud", 100_000);
    add_declaration_control(Path::new(uri), &random, "2026-08-21", "fraud", 50_000);
    let report = |name: &str| {
        ok(&run(
            aduana().args(["report", name, "-w", uri, "--format", "csv"])
        ))
    };
    let outcomes = report("selection_outcomes");
    let header: Vec<&str> = outcomes.lines().next().unwrap().split(',').collect();
    let column = |row: &str, name: &str| -> String {
        let i = header.iter().position(|h| *h == name).unwrap();
        row.split(',').nth(i).unwrap().to_string()
    };
    let s = rt.block_on(session(uri));
    // Every inspection record of a selected item or of its declaration,
    // once: what the controls recovered, in cents.
    let recovered = rt.block_on(query_i64(
        &s,
        "SELECT CAST(ROUND(100 * SUM(CASE WHEN result = 'fraud' THEN additional_revenue ELSE 0 END)) AS BIGINT) \
         FROM inspections i WHERE EXISTS (SELECT 1 FROM risk.selections s \
         WHERE s.declaration_id = i.declaration_id AND (s.item_no = i.item_no OR i.item_no IS NULL))",
    ));
    assert!(recovered >= 150_000, "{recovered}");
    let cents = |text: &str| (text.parse::<f64>().unwrap() * 100.0).round() as i64;
    let reported: i64 = outcomes
        .lines()
        .skip(1)
        .map(|row| cents(&column(row, "revenue_recovered")))
        .sum();
    // Each row is rounded to the cent; a shared audit's parts may not be.
    let rows = outcomes.lines().count() as i64 - 1;
    assert!(
        (reported - recovered).abs() <= rows,
        "{reported} against {recovered}: {outcomes}"
    );
    let mut checked = 0;
    for row in outcomes.lines().skip(1) {
        let (lane, by) = (column(row, "lane"), column(row, "selected_by"));
        let condition = |what: &str| {
            format!(
                "SELECT COUNT(*) FROM risk.selections s WHERE lane = '{lane}' AND selected_by = '{by}' \
                 AND EXISTS (SELECT 1 FROM inspections i WHERE i.declaration_id = s.declaration_id \
                 AND (i.item_no = s.item_no OR i.item_no IS NULL) {what})"
            )
        };
        let inspected = rt.block_on(query_i64(&s, &condition("")));
        let frauds = rt.block_on(query_i64(&s, &condition("AND i.result = 'fraud'")));
        assert_eq!(column(row, "inspected"), inspected.to_string(), "{row}");
        assert_eq!(column(row, "fraud_found"), frauds.to_string(), "{row}");
        checked += 1;
    }
    assert_eq!(checked, 4, "{outcomes}");

    // The weighted fraud rate of the inspected random controls, and the
    // revenue of fraud they stand for: each control's own fraud revenue
    // and its even share of its declaration's, in cents.
    let (controls, records, sizes) = rt.block_on(async {
        (
            query(
                &s,
                "SELECT declaration_id, item_no, design_weight FROM risk.selections \
                 WHERE selected_by = 'random'",
            )
            .await,
            query(
                &s,
                "SELECT declaration_id, item_no, CASE WHEN result = 'fraud' THEN 1 ELSE 0 END, \
                        CAST(ROUND(100 * additional_revenue) AS BIGINT) FROM inspections",
            )
            .await,
            query(
                &s,
                "SELECT declaration_id, COUNT(*) FROM declarations GROUP BY declaration_id",
            )
            .await,
        )
    });
    let (ids, numbers, weights) = (
        strings(&controls, 0),
        integers(&controls, 1),
        floats(&controls, 2),
    );
    let (r_ids, r_numbers) = (strings(&records, 0), integers(&records, 1));
    let (r_fraud, r_cents) = (integers(&records, 2), integers(&records, 3));
    let items_of: HashMap<String, i64> = strings(&sizes, 0)
        .into_iter()
        .zip(integers(&sizes, 1))
        .map(|(id, n)| (id.unwrap(), n.unwrap()))
        .collect();
    let (mut weighted, mut weighted_cents, mut total, mut represented) = (0.0, 0.0, 0.0, 0.0);
    for c in 0..ids.len() {
        let weight = weights[c].unwrap();
        represented += weight;
        let (mut inspected, mut fraud, mut cents) = (false, false, 0.0);
        for r in 0..r_ids.len() {
            let own = r_numbers[r] == numbers[c];
            if r_ids[r] != ids[c] || !(own || r_numbers[r].is_none()) {
                continue;
            }
            inspected = true;
            if r_fraud[r] == Some(1) {
                fraud = true;
                let share = if own {
                    1
                } else {
                    items_of[ids[c].as_deref().unwrap()]
                };
                cents += r_cents[r].unwrap_or(0) as f64 / share as f64;
            }
        }
        if inspected {
            weighted += weight * f64::from(u8::from(fraud));
            weighted_cents += weight * cents;
            total += weight;
        }
    }
    assert!(total > 0.0, "no random control was inspected");
    let estimate = report("fraud_rate_estimate");
    let header: Vec<&str> = estimate.lines().next().unwrap().split(',').collect();
    let row = estimate.lines().nth(1).unwrap();
    let value = |name: &str| -> f64 {
        let i = header.iter().position(|h| *h == name).unwrap();
        row.split(',').nth(i).unwrap().parse().unwrap()
    };
    let expected = (10000.0 * weighted / total).round() / 100.0;
    assert!(
        (value("fraud_rate_pct") - expected).abs() < 0.011,
        "{estimate} vs {expected}"
    );
    assert_eq!(
        (value("revenue_recovered") * 100.0).round() as i64,
        recovered,
        "{estimate}"
    );
    let fraud_revenue = weighted_cents / total * represented / 100.0;
    assert!(
        (value("fraud_revenue") - fraud_revenue).abs() < 0.011,
        "{estimate} vs {fraud_revenue}"
    );
    assert!(value("fraud_rate_low_pct") <= value("fraud_rate_pct"));
    assert!(value("fraud_rate_high_pct") >= value("fraud_rate_pct"));
}

/// `lane_recommendation` turns a daily capacity into thresholds: over the
/// days the model measured its lane scale (the window's last 30), the
/// items it calls red and yellow average the capacity per day.
/// `aduana sql` over `warehouse` in CSV; the command's output.
fn sql_csv(root: &Path, sql: &str) -> std::process::Output {
    run(aduana().args([
        "sql",
        "-w",
        &root.display().to_string(),
        "--format",
        "csv",
        "-c",
        sql,
    ]))
}

#[test]
fn the_selection_table_function_answers_what_select_publishes() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("wh");
    copy_dir(modelled().path(), &root);
    let columns = "office_code, declaration_id, item_no, lane, selected_by, rank, \
                   design_weight, reason, seed, strategy, explore";
    let order = "ORDER BY office_code, lane, selected_by, rank, declaration_id, item_no";
    // Nothing is published by the query itself.
    let asked = ok(&sql_csv(
        &root,
        &format!("SELECT {columns} FROM selection('{DAY}', 5, 3, 0.4, 'random', 4, true) {order}"),
    ));
    assert!(
        !root.join("risk/selections").exists(),
        "a SELECT published a selection"
    );
    let rows: Vec<&str> = asked.lines().skip(1).collect();
    assert!(rows.len() >= 16, "{asked}");
    assert!(
        asked.contains(",random,") && asked.contains(",model,"),
        "{asked}"
    );

    ok(&select(
        &root,
        &[
            "--capacity",
            "red=5,yellow=3",
            "--by",
            "office",
            "--explore",
            "0.4",
            "--seed",
            "4",
        ],
    ));
    let published = ok(&sql_csv(
        &root,
        &format!("SELECT {columns} FROM risk.selections {order}"),
    ));
    assert_eq!(
        asked, published,
        "the table function and `aduana select` disagree"
    );

    // Per office and lane, never more than the capacity.
    let over = ok(&sql_csv(
        &root,
        &format!(
            "SELECT office_code, lane, COUNT(*) AS n FROM selection('{DAY}', 5, 3, 0.4, 'random', 4, true) \
             GROUP BY office_code, lane HAVING COUNT(*) > CASE lane WHEN 'red' THEN 5 ELSE 3 END"
        ),
    ));
    assert_eq!(over.lines().count(), 1, "over capacity: {over}");

    // The proportional strategy keeps the random share and draws the rest
    // below the model's picks, each saying so.
    let proportional = ok(&sql_csv(
        &root,
        &format!(
            "SELECT selected_by, COUNT(*) AS n, \
                    SUM(CASE WHEN reason LIKE '%proportional to its expected revenue%' \
                        THEN 1 ELSE 0 END) AS says \
             FROM selection('{DAY}', 20, 0, 0.5, 'proportional', 4) \
             GROUP BY selected_by ORDER BY selected_by"
        ),
    ));
    assert_eq!(
        proportional.lines().skip(1).collect::<Vec<_>>(),
        ["model,10,0", "proportional,9,9", "random,1,0"],
        "{proportional}"
    );

    // The evidence strategy keeps the random share and gives the rest to
    // the items the evidence alone ranks highest among those left: the
    // same items, in the same order, as the evidence's ranking computed
    // here (AEO traders' items at half weight, as the draw weighs them).
    let evidence = |picked: &str| {
        ok(&sql_csv(
            &root,
            &format!(
                "WITH picks AS (SELECT * FROM selection('{DAY}', 20, 0, 0.5, 'evidence', 4)) \
                 {picked}"
            ),
        ))
    };
    let chosen = evidence(
        "SELECT declaration_id, item_no FROM picks WHERE selected_by = 'evidence' \
           AND reason LIKE 'exploration: ranked % by the evidence alone, among the items the model and the draw left (risk score of price, tariff and origin x revenue at stake: %' \
           AND reason NOT LIKE '%learned from inspections%' ORDER BY rank",
    );
    let expected = evidence(&format!(
        "SELECT d.declaration_id, d.item_no FROM scored_items d \
         LEFT JOIN (SELECT importer_id, bool_or(aeo) AS aeo FROM reference.traders GROUP BY importer_id) t \
           ON t.importer_id = d.importer_id \
         LEFT JOIN picks p ON p.declaration_id = d.declaration_id AND p.item_no = d.item_no \
          AND p.selected_by <> 'evidence' \
         WHERE d.declaration_date = DATE '{DAY}' AND p.declaration_id IS NULL \
         ORDER BY risk_score(d.value_z, d.p_wrong_code, d.origin_score) * d.at_stake \
                  * CASE WHEN COALESCE(t.aeo, false) THEN 0.5 ELSE 1 END DESC NULLS LAST, \
                  d.declaration_id, d.item_no \
         LIMIT 9"
    ));
    assert_eq!(chosen.lines().count(), 10, "{chosen}");
    assert_eq!(chosen, expected);
    let shares = evidence(
        "SELECT selected_by, COUNT(*) AS n FROM picks GROUP BY selected_by ORDER BY selected_by",
    );
    assert_eq!(
        shares.lines().skip(1).collect::<Vec<_>>(),
        ["evidence,9", "model,10", "random,1"],
        "{shares}"
    );
    // `aduana select` publishes what the function answers.
    ok(&select(
        &root,
        &[
            "--capacity",
            "20",
            "--explore",
            "0.5",
            "--strategy",
            "evidence",
            "--seed",
            "4",
            "--replace",
        ],
    ));
    assert_eq!(
        ok(&sql_csv(
            &root,
            &format!("SELECT {columns} FROM risk.selections {order}"),
        )),
        ok(&sql_csv(
            &root,
            &format!("SELECT {columns} FROM selection('{DAY}', 20, 0, 0.5, 'evidence', 4) {order}"),
        )),
        "the table function and `aduana select --strategy evidence` disagree"
    );

    // Bad arguments are refused by name.
    for (call, says) in [
        ("selection('2026-13-01', 5)", "argument day"),
        ("selection('2026-08-04', -2)", "argument red"),
        ("selection('2026-08-04', 5, 0, 1.5)", "exploration share"),
        (
            "selection('2026-08-04', 5, 0, 0.1, 'greedy')",
            "'greedy' is not a strategy (one of random, novelty, proportional, evidence)",
        ),
        ("selection('2026-08-04')", "selection(day, red"),
    ] {
        let out = sql_csv(&root, &format!("SELECT * FROM {call}"));
        assert!(!out.status.success(), "{call} was accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{call}: {err}");
    }
}

#[test]
fn lane_recommendation_turns_capacity_into_thresholds() {
    let wh = modelled();
    runtime().block_on(async {
        let s = session(&wh.uri()).await;
        let per_day = |lane: &str, red: u32, yellow: u32| {
            format!(
                "SELECT CAST(1000.0 * COUNT(*) FILTER (WHERE lane_recommendation(revenue_expected, {red}, {yellow}) = '{lane}') \
                        / COUNT(DISTINCT declaration_date) AS BIGINT) \
                 FROM scored_items WHERE declaration_date >= DATE '2026-07-02' AND declaration_date < DATE '2026-08-01'"
            )
        };
        for (red, yellow) in [(5, 0), (20, 30), (60, 10)] {
            let r = query_i64(&s, &per_day("red", red, yellow)).await as f64 / 1000.0;
            let y = query_i64(&s, &per_day("yellow", red, yellow)).await as f64 / 1000.0;
            assert!((r - red as f64).abs() <= 0.05 * red as f64 + 0.5, "red {r} for {red}");
            assert!((y - yellow as f64).abs() <= 0.05 * (red + yellow) as f64 + 0.5, "yellow {y} for {yellow}");
        }
        // More capacity never makes an item greener.
        let demoted = query_i64(
            &s,
            "SELECT COUNT(*) FROM scored_items WHERE declaration_date >= DATE '2026-07-02' \
             AND lane_recommendation(revenue_expected, 10) = 'red' \
             AND lane_recommendation(revenue_expected, 20) <> 'red'",
        )
        .await;
        assert_eq!(demoted, 0);
        let per_day_items = query_text(&s, "SELECT lane_items_per_day FROM risk_model_info()").await;
        assert!(!per_day_items.contains("NULL"), "{per_day_items}");
    });
    let bad = run(aduana().args([
        "sql",
        "-w",
        &wh.uri(),
        "-c",
        "SELECT lane_recommendation(100.0, -3)",
    ]));
    assert!(
        stderr(&bad).contains("red_per_day must be a number of controls >= 0"),
        "{}",
        stderr(&bad)
    );
    // A call no signature takes is the caller's mistake, with the
    // candidates, not an internal error asking for a bug report.
    for call in ["lane_recommendation(1.0)", "lane_recommendation('a', 3)"] {
        let out = sql_csv(wh.path(), &format!("SELECT {call}"));
        let err = stderr(&out);
        assert!(!out.status.success(), "{call} was accepted");
        assert!(
            err.contains("Candidate functions: lane_recommendation(Float64, Float64)")
                && !err.contains("Internal error")
                && !err.contains("bug"),
            "{call}: {err}"
        );
    }
}

/// `aduana audits`, the blue lane: the month's audit capacity exactly,
/// the random share, the model's picks the importers with the most
/// expected revenue at risk over the 12 months before, published once.
#[test]
fn audits_pick_the_importers_with_most_at_risk_under_the_capacity() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("wh");
    copy_dir(modelled().path(), &root);
    let uri = root.display().to_string();
    let audits = |extra: &[&str]| {
        run(aduana()
            .args([
                "audits",
                "-w",
                &uri,
                "--month",
                "2026-08",
                "--capacity",
                "20",
            ])
            .args(extra))
    };
    let args = ["--explore", "0.25", "--aeo-factor", "1", "--seed", "5"];
    let said = ok(&audits(&args));
    assert!(
        said.contains("selected 20 of") && said.contains("5 random"),
        "{said}"
    );
    let file = root.join("risk/audit_selections/month=2026-08/selection.parquet");
    let first = std::fs::read(&file).unwrap();
    runtime().block_on(async {
        let s = session(&uri).await;
        let count = |condition: &str| {
            let s = &s;
            let sql = format!("SELECT COUNT(*) FROM risk.audit_selections WHERE {condition}");
            async move { query_i64(s, &sql).await }
        };
        assert_eq!(count("lane = 'blue' AND month = '2026-08'").await, 20);
        assert_eq!(count("selected_by = 'random'").await, 5);
        assert_eq!(count("selected_by = 'model'").await, 15);
        assert_eq!(
            query_i64(&s, "SELECT COUNT(DISTINCT importer_id) FROM risk.audit_selections").await,
            20
        );
        // Independently: each importer's expected revenue at risk over the
        // 12 months before; no unselected importer has more than the
        // model's last pick.
        let outranked = query_i64(
            &s,
            "WITH at_risk AS (SELECT importer_id, SUM(COALESCE(revenue_expected, risk * at_stake)) AS r \
                              FROM scored_items WHERE declaration_date >= DATE '2025-08-01' \
                              AND declaration_date < DATE '2026-08-01' GROUP BY importer_id), \
                  lowest AS (SELECT MIN(a.r) AS r FROM risk.audit_selections s \
                             JOIN at_risk a ON a.importer_id = s.importer_id WHERE s.selected_by = 'model') \
             SELECT COUNT(*) FROM at_risk a, lowest l WHERE a.r > l.r \
             AND a.importer_id NOT IN (SELECT importer_id FROM risk.audit_selections)",
        )
        .await;
        assert_eq!(outranked, 0);
    });
    let again = audits(&args);
    assert!(
        stderr(&again).contains("already published"),
        "{}",
        stderr(&again)
    );
    ok(&audits(&[&args[..], &["--replace"]].concat()));
    assert!(
        std::fs::read(&file).unwrap() == first,
        "replaced with other bytes"
    );
    // Exploring by the evidence: after the model's 15 and 2 random audits,
    // the 3 importers the evidence alone puts most revenue at risk on, an
    // AEO's counted at half (the default factor).
    ok(&audits(&[
        "--explore",
        "0.25",
        "--strategy",
        "evidence",
        "--min-random",
        "0.1",
        "--replace",
    ]));
    runtime().block_on(async {
        let s = session(&uri).await;
        let importers = |sql: &'static str| {
            let s = &s;
            async move { strings(&query(s, sql).await, 0) }
        };
        let explored = importers(
            "SELECT importer_id FROM risk.audit_selections WHERE selected_by = 'evidence' ORDER BY rank",
        )
        .await;
        let expected = importers(
            "SELECT d.importer_id FROM scored_items d \
             LEFT JOIN (SELECT importer_id, bool_or(aeo) AS aeo FROM reference.traders \
                        GROUP BY importer_id) t ON t.importer_id = d.importer_id \
             WHERE d.declaration_date >= DATE '2025-08-01' AND d.declaration_date < DATE '2026-08-01' \
               AND d.importer_id NOT IN (SELECT importer_id FROM risk.audit_selections \
                                        WHERE selected_by <> 'evidence') \
             GROUP BY d.importer_id \
             ORDER BY SUM(risk_score(d.value_z, d.p_wrong_code, d.origin_score) * d.at_stake) \
                      * CASE WHEN bool_or(COALESCE(t.aeo, false)) THEN 0.5 ELSE 1 END DESC, \
                      d.importer_id LIMIT 3",
        )
        .await;
        assert_eq!(explored.len(), 3, "{explored:?}");
        assert_eq!(explored, expected);
        let said = strings(
            &query(
                &s,
                "SELECT reason FROM risk.audit_selections WHERE selected_by = 'evidence' ORDER BY rank",
            )
            .await,
            0,
        );
        assert!(
            said.iter().flatten().all(|r| r.starts_with("exploration: ranked ")
                && r.contains("by the evidence alone among the importers the model and the draw left")),
            "{said:?}"
        );
    });
    let bad = run(aduana().args([
        "audits",
        "-w",
        &uri,
        "--month",
        "2026-13",
        "--capacity",
        "2",
    ]));
    assert!(
        stderr(&bad).contains("'2026-13' is not a month"),
        "{}",
        stderr(&bad)
    );
    let empty = run(aduana().args([
        "audits",
        "-w",
        &uri,
        "--month",
        "2031-01",
        "--capacity",
        "2",
    ]));
    assert!(
        stderr(&empty).contains("no declarations in the 12 months before 2031-01"),
        "{}",
        stderr(&empty)
    );
    let nothing = run(aduana().args([
        "audits",
        "-w",
        &uri,
        "--month",
        "2026-09",
        "--capacity",
        "0",
    ]));
    assert!(
        !nothing.status.success() && stderr(&nothing).contains("selects nothing"),
        "{}",
        stderr(&nothing)
    );
    assert!(!root.join("risk/audit_selections/month=2026-09").exists());
}
