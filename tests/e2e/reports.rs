//! What the named reports count, against the same counts made in the test
//! from the rows themselves.

use std::collections::{BTreeMap, HashMap, HashSet};

use arrow::array::RecordBatch;

use crate::support::*;

/// Per lane: items, items inspected, items found fraudulent, cents of
/// revenue recovered.
type Lanes = BTreeMap<String, [i64; 4]>;

/// Counts per key made from the rows themselves: `items` gives each
/// item's declaration, item number and key; an item is inspected when it
/// or its whole declaration was controlled, found fraudulent when either
/// control found fraud; an item's own revenue counts with it, a whole
/// declaration's once.
fn expected_counts(session: &aduana_engine::Session, items: &str) -> Lanes {
    runtime().block_on(async {
        let items = query(session, items).await;
        let controls = query(
            session,
            "SELECT declaration_id, item_no, CASE WHEN result = 'fraud' THEN 1 ELSE 0 END,
                    CAST(COALESCE(additional_revenue, 0) * 100 AS BIGINT)
             FROM inspections",
        )
        .await;
        // (declaration, item or None for the whole declaration) -> (fraud, cents)
        let mut found: HashMap<(String, Option<i64>), (bool, i64)> = HashMap::new();
        let (ids, numbers) = (strings(&controls, 0), integers(&controls, 1));
        let (frauds, cents) = (integers(&controls, 2), integers(&controls, 3));
        for i in 0..ids.len() {
            let entry = found
                .entry((ids[i].clone().unwrap(), numbers[i]))
                .or_default();
            entry.0 |= frauds[i] == Some(1);
            entry.1 += cents[i].unwrap();
        }
        let mut counted = Lanes::new();
        let mut whole_counted = HashSet::new();
        let (ids, numbers, keys) = (strings(&items, 0), integers(&items, 1), strings(&items, 2));
        for i in 0..ids.len() {
            let id = ids[i].clone().unwrap();
            let own = found.get(&(id.clone(), numbers[i]));
            let whole = found.get(&(id.clone(), None));
            let counts = counted
                .entry(keys[i].clone().unwrap_or_else(|| "(none)".into()))
                .or_default();
            counts[0] += 1;
            counts[1] += i64::from(own.is_some() || whole.is_some());
            counts[2] += i64::from(own.is_some_and(|c| c.0) || whole.is_some_and(|c| c.0));
            counts[3] += own.map_or(0, |c| c.1);
            if let Some(whole) = whole
                && whole_counted.insert(id)
            {
                counts[3] += whole.1;
            }
        }
        counted
    })
}

/// The lanes' counts made from the declarations and inspections.
fn expected_lanes(session: &aduana_engine::Session) -> Lanes {
    expected_counts(
        session,
        "SELECT declaration_id, item_no, lane FROM declarations",
    )
}

/// A report's CSV output: its columns' names and its rows.
struct ReportCsv {
    header: Vec<String>,
    rows: Vec<String>,
}

impl ReportCsv {
    /// Runs `report` over the warehouse at `uri` with `params` (`name=value`).
    fn run(uri: &str, report: &str, params: &[&str]) -> ReportCsv {
        let mut command = aduana();
        command.args(["report", report, "-w", uri, "--format", "csv"]);
        for param in params {
            command.args(["-p", param]);
        }
        let csv = ok(&run(&mut command));
        let mut lines = csv.lines().map(String::from);
        let header = lines.next().unwrap().split(',').map(String::from).collect();
        ReportCsv {
            header,
            rows: lines.collect(),
        }
    }

    /// The position of column `name`.
    fn at(&self, name: &str) -> usize {
        self.header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no column {name} in {:?}", self.header))
    }
}

/// A report's rows summed by lane (its CSV output).
fn report_lanes(uri: &str, report: &str) -> Lanes {
    let csv = ReportCsv::run(uri, report, &[]);
    let at = |name: &str| csv.at(name);
    let columns = [
        at("items"),
        at("inspected"),
        at("fraud_found"),
        at("revenue_recovered"),
    ];
    let mut lanes = Lanes::new();
    for line in &csv.rows {
        let fields: Vec<&str> = line.split(',').collect();
        let lane = Some(fields[at("lane")])
            .filter(|l| !l.is_empty())
            .unwrap_or("(none)");
        let counts = lanes.entry(lane.to_string()).or_default();
        for (k, &c) in columns.iter().enumerate() {
            counts[k] += if k == 3 {
                // Currency units as text: to cents.
                (fields[c].parse::<f64>().unwrap() * 100.0).round() as i64
            } else {
                fields[c].parse::<i64>().unwrap()
            };
        }
    }
    lanes
}

#[test]
fn hit_rate_reports_count_an_item_once_and_a_whole_declarations_revenue_once() {
    let wh = generate(20_000, 3);
    let s = runtime().block_on(session(&wh.uri()));
    let declaration = |sql: &str| {
        let batches = runtime().block_on(query(&s, sql));
        strings(&batches, 0)[0].clone().unwrap()
    };
    // A declaration of several items, some controlled on their own and
    // none found fraudulent, and one of several items never controlled: a
    // post-clearance audit of each whole declaration finds fraud in the
    // first, nothing in the second.
    let controlled = declaration(
        "SELECT declaration_id FROM declarations
         WHERE declaration_id IN (SELECT declaration_id FROM inspections)
           AND declaration_id NOT IN
               (SELECT declaration_id FROM inspections WHERE result = 'fraud')
         GROUP BY declaration_id HAVING COUNT(*) >= 2 ORDER BY declaration_id LIMIT 1",
    );
    let uncontrolled = declaration(
        "SELECT declaration_id FROM declarations
         WHERE declaration_id NOT IN (SELECT declaration_id FROM inspections)
         GROUP BY declaration_id HAVING COUNT(*) >= 3 ORDER BY declaration_id LIMIT 1",
    );
    let reports = [
        "inspection_hit_rate_by_lane",
        "inspection_hit_rate_over_time",
        "hit_rate_by_lane_over_time",
    ];
    let before = expected_lanes(&s);
    assert_eq!(
        before.values().map(|c| c[0]).sum::<i64>(),
        wh.summary.rows as i64
    );
    for report in reports {
        assert_eq!(report_lanes(&wh.uri(), report), before, "{report}");
    }
    add_declaration_control(wh.path(), &controlled, "2026-10-20", "fraud", 100_000);
    add_declaration_control(wh.path(), &uncontrolled, "2026-10-21", "compliant", 0);
    let s = runtime().block_on(session(&wh.uri()));
    let after = expected_lanes(&s);
    // The audits add inspected items, frauds and 1,000.00 of revenue,
    // and no item.
    let total = |lanes: &Lanes, k: usize| lanes.values().map(|c| c[k]).sum::<i64>();
    assert_eq!(total(&after, 0), total(&before, 0));
    assert!(total(&after, 1) >= total(&before, 1) + 3);
    assert!(total(&after, 2) > total(&before, 2));
    assert_eq!(total(&after, 3), total(&before, 3) + 100_000);
    for report in reports {
        assert_eq!(report_lanes(&wh.uri(), report), after, "{report}");
    }
}

/// The published trader risk counts an item inspected and fraudulent as
/// the reports do: a whole declaration's fraud finding marks each of its
/// items, even one whose own inspection found it compliant.
#[test]
fn trader_risk_counts_a_whole_declarations_finding_for_each_item() {
    let wh = generate(20_000, 3);
    let s = runtime().block_on(session(&wh.uri()));
    let batches = runtime().block_on(query(
        &s,
        "SELECT d.declaration_id FROM declarations d
         JOIN inspections i ON i.declaration_id = d.declaration_id AND i.item_no = d.item_no
         WHERE d.declaration_id NOT IN
               (SELECT declaration_id FROM inspections WHERE result = 'fraud')
         ORDER BY d.declaration_id LIMIT 1",
    ));
    let compliant = strings(&batches, 0)[0].clone().unwrap();
    add_declaration_control(wh.path(), &compliant, "2026-10-20", "fraud", 50_000);
    ok(&run(aduana().args(["refresh", "-w", &wh.uri()])));
    let s = runtime().block_on(session(&wh.uri()));
    let key = "importer_id || '/' || CAST(year AS VARCHAR) || '/' || CAST(month AS VARCHAR)";
    let mut expected = expected_counts(
        &s,
        &format!("SELECT declaration_id, item_no, {key} FROM risk.declaration_scores"),
    );
    let published = runtime().block_on(query(
        &s,
        &format!("SELECT {key}, items, items_inspected, fraud_found FROM risk.trader_risk"),
    ));
    let (keys, items) = (strings(&published, 0), integers(&published, 1));
    let (inspected, frauds) = (integers(&published, 2), integers(&published, 3));
    let mut counted = Lanes::new();
    for i in 0..keys.len() {
        counted.insert(
            keys[i].clone().unwrap(),
            [
                items[i].unwrap(),
                inspected[i].unwrap(),
                frauds[i].unwrap(),
                0,
            ],
        );
    }
    // The trader risk carries no recovered revenue.
    expected.values_mut().for_each(|c| c[3] = 0);
    assert!(expected.values().map(|c| c[2]).sum::<i64>() > 0);
    let differing: Vec<_> = expected
        .iter()
        .filter(|(key, counts)| counted.get(*key) != Some(counts))
        .map(|(key, counts)| (key, counts, counted.get(key)))
        .collect();
    assert!(differing.is_empty(), "expected, published: {differing:?}");
    assert_eq!(counted.len(), expected.len());
}

/// `aduana evaluate` against inspections labels the items the model
/// learns from: an item controlled on its own or by an audit of its whole
/// declaration, fraudulent when either found fraud.
#[test]
fn evaluate_labels_the_items_of_a_declaration_audited_whole() {
    let wh = generate(20_000, 3);
    let labelled = |uri: &str| -> (i64, i64) {
        let out = ok(&run(aduana().args([
            "evaluate",
            "-w",
            uri,
            "--score",
            "customs_value",
        ])));
        // "labels: inspections (4584 items, 28 fraudulent)"
        let line = out.lines().find(|l| l.starts_with("labels:")).unwrap();
        let numbers: Vec<i64> = line
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|n| n.parse().ok())
            .collect();
        (numbers[0], numbers[1])
    };
    let counted = |uri: &str| -> (i64, i64) {
        let s = runtime().block_on(session(uri));
        let all = expected_counts(
            &s,
            "SELECT declaration_id, item_no, 'all' FROM declarations",
        );
        (all["all"][1], all["all"][2])
    };
    let before = labelled(&wh.uri());
    assert_eq!(before, counted(&wh.uri()));
    let s = runtime().block_on(session(&wh.uri()));
    let batches = runtime().block_on(query(
        &s,
        "SELECT declaration_id FROM declarations
         WHERE declaration_id NOT IN (SELECT declaration_id FROM inspections)
         GROUP BY declaration_id HAVING COUNT(*) >= 3 ORDER BY declaration_id LIMIT 1",
    ));
    let audited = strings(&batches, 0)[0].clone().unwrap();
    add_declaration_control(wh.path(), &audited, "2026-10-20", "fraud", 90_000);
    let after = labelled(&wh.uri());
    assert_eq!(after, counted(&wh.uri()));
    assert!(
        after.0 >= before.0 + 3 && after.1 >= before.1 + 3,
        "{before:?} {after:?}"
    );
}

/// `origin_shifts_after_remedies` against counts made here: a remedy's
/// code is a prefix of any length (a heading, a national line), "after"
/// ends when the measure does, and two measures on one product, country
/// and day each share out their own items.
#[test]
fn origin_shifts_follow_each_remedys_prefix_and_period() {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Date32Array, Float64Array, StringArray};
    use chrono::{Months, NaiveDate};

    let wh = generate(20_000, 3);
    let s = runtime().block_on(session(&wh.uri()));
    let first = |sql: &str| -> Vec<String> {
        let batches = runtime().block_on(query(&s, sql));
        (0..batches[0].num_columns())
            .map(|c| strings(&batches, c)[0].clone().unwrap())
            .collect()
    };
    // The busiest heading and its leading origin; the busiest national
    // line of more than six digits and one of its origins.
    let heading = first(
        "SELECT substr(hs_code, 1, 4), origin_country FROM declarations
         GROUP BY 1, 2 ORDER BY COUNT(*) DESC, 1, 2 LIMIT 1",
    );
    let line = first(
        "SELECT hs_code, origin_country FROM declarations WHERE length(hs_code) > 6
         GROUP BY 1, 2 ORDER BY COUNT(*) DESC, 1, 2 LIMIT 1",
    );
    // (code, against, measure, from, to)
    let remedies = [
        (
            &heading[0],
            &heading[1],
            "antidumping",
            "2026-09-15",
            Some("2026-10-05"),
        ),
        (
            &heading[0],
            &heading[1],
            "countervailing",
            "2026-09-15",
            None,
        ),
        (&line[0], &line[1], "safeguard", "2026-09-10", None),
        // The same measure again (another exporter's rate), ending sooner:
        // still one remedy, open while the other row is.
        (
            &line[0],
            &line[1],
            "safeguard",
            "2026-09-10",
            Some("2026-09-20"),
        ),
    ];
    let file = wh.path().join("reference/trade_remedies.parquet");
    let schema = read_parquet(&file).schema();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(remedies.iter().map(|r| r.0))),
        Arc::new(StringArray::from_iter_values(remedies.iter().map(|r| r.1))),
        Arc::new(StringArray::from_iter_values(remedies.iter().map(|r| r.2))),
        Arc::new(Float64Array::from(vec![20.0; remedies.len()])),
        Arc::new(Date32Array::from_iter_values(
            remedies.iter().map(|r| days(r.3)),
        )),
        Arc::new(Date32Array::from_iter(
            remedies.iter().map(|r| r.4.map(days)),
        )),
    ];
    let columns = columns
        .iter()
        .zip(schema.fields())
        .map(|(a, f)| arrow::compute::cast(a, f.data_type()).unwrap())
        .collect();
    write_parquet(&file, &RecordBatch::try_new(schema, columns).unwrap());

    // (code, measure, origin) -> [before, after], one month each side.
    let items = runtime().block_on(query(
        &s,
        "SELECT hs_code, origin_country, declaration_date FROM declarations",
    ));
    let (codes, origins, dates) = (strings(&items, 0), strings(&items, 1), strings(&items, 2));
    let day = |d: &str| NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap();
    let mut expected: BTreeMap<(String, String, String), [i64; 2]> = BTreeMap::new();
    for (code, _, measure, from, to) in remedies.into_iter().take(3) {
        let from = day(from);
        let (start, end) = (from - Months::new(1), from + Months::new(1));
        for i in 0..codes.len() {
            let date = day(dates[i].as_deref().unwrap());
            let in_force = to.is_none_or(|to| date <= day(to));
            if codes[i].as_deref().unwrap().starts_with(code.as_str())
                && start <= date
                && date < end
                && in_force
            {
                let key = (
                    code.clone(),
                    measure.to_string(),
                    origins[i].clone().unwrap(),
                );
                expected.entry(key).or_default()[usize::from(date >= from)] += 1;
            }
        }
    }
    assert!(expected.keys().any(|k| k.1 == "safeguard"));

    let csv = ReportCsv::run(
        &wh.uri(),
        "origin_shifts_after_remedies",
        &["months=1", "min_items=0"],
    );
    let at = |name: &str| csv.at(name);
    let mut reported = BTreeMap::new();
    let mut after_share: BTreeMap<String, f64> = BTreeMap::new();
    for line in &csv.rows {
        let f: Vec<&str> = line.split(',').collect();
        let key = (
            f[at("hs_code")].to_string(),
            f[at("measure")].to_string(),
            f[at("origin")].to_string(),
        );
        let counts = [
            f[at("items_before")].parse::<i64>().unwrap(),
            f[at("items_after")].parse::<i64>().unwrap(),
        ];
        *after_share.entry(key.1.clone()).or_default() +=
            f[at("share_after_pct")].parse::<f64>().unwrap();
        reported.insert(key, counts);
    }
    assert_eq!(reported, expected);
    // Each measure's shares make a whole of their own.
    for (measure, total) in after_share {
        assert!((total - 100.0).abs() < 1.0, "{measure}: {total}");
    }
}

/// `misclassification_suspects` lists only items whose description points
/// to another subheading than the declared one, with both codes' tariff
/// rates as the model prices them: the mean of the tariff lines under a
/// code, else its longest listed prefix's (worked out here from the
/// tariff). A warehouse without a tariff still gets its suspects.
#[test]
fn misclassification_suspects_name_another_subheading_and_its_rate() {
    let wh = crate::model::modelled();
    let s = runtime().block_on(session(&wh.uri()));
    let tariff = runtime().block_on(query(
        &s,
        "SELECT hs_code, duty_rate FROM reference.tariff WHERE duty_rate IS NOT NULL",
    ));
    let lines: Vec<(String, f64)> = strings(&tariff, 0)
        .into_iter()
        .zip(floats(&tariff, 1))
        .map(|(code, rate)| (code.unwrap().replace(['.', ' '], ""), rate.unwrap()))
        .collect();
    let rate_of = |code: &str| -> Option<f64> {
        let under: Vec<f64> = lines
            .iter()
            .filter(|(line, _)| line.starts_with(code))
            .map(|(_, rate)| *rate)
            .collect();
        let rate = if under.is_empty() {
            lines
                .iter()
                .filter(|(line, _)| code.starts_with(line.as_str()))
                .max_by_key(|(line, _)| line.len())
                .map(|(_, rate)| *rate)
        } else {
            Some(under.iter().sum::<f64>() / under.len() as f64)
        };
        rate.map(|r| (r * 100.0).round() / 100.0)
    };
    let csv = ReportCsv::run(
        &wh.uri(),
        "misclassification_suspects",
        &["min_probability=0.2", "limit=40"],
    );
    let at = |name: &str| csv.at(name);
    let mut listed = 0;
    for row in &csv.rows {
        // The description may hold commas: count fields from either end.
        let f: Vec<&str> = row.split(',').collect();
        let from_end = |name: &str| f[f.len() - (csv.header.len() - at(name))];
        let rate = |name: &str| {
            Some(from_end(name))
                .filter(|r| !r.is_empty())
                .map(|r| r.parse::<f64>().unwrap())
        };
        let (declared, suggested) = (f[at("declared_code")], from_end("suggested_hs6"));
        assert_ne!(&declared[..6], suggested, "{row}");
        assert_eq!(rate("suggested_tariff_rate"), rate_of(suggested), "{row}");
        assert_eq!(rate("declared_tariff_rate"), rate_of(declared), "{row}");
        listed += 1;
    }
    assert!(listed > 0, "{:?}", csv.header);

    // Without a tariff (an optional table): the suspects, without rates.
    let bare = generate(20_000, 3);
    std::fs::remove_file(bare.path().join("reference/tariff.parquet")).unwrap();
    ok(&run(aduana().args(["model", "build", "-w", &bare.uri()])));
    let csv = ReportCsv::run(
        &bare.uri(),
        "misclassification_suspects",
        &["min_probability=0.2", "days=92"],
    );
    assert!(!csv.rows.is_empty(), "no suspects without a tariff");
    let at = csv.at("suggested_tariff_rate");
    for row in &csv.rows {
        let f: Vec<&str> = row.split(',').collect();
        assert_eq!(f[f.len() - (csv.header.len() - at)], "", "{row}");
    }
}
