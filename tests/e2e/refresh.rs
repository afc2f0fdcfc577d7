//! `aduana refresh`, run as the nightly job runs it: incremental,
//! idempotent, killed at every step of publishing, one run at a time, bad
//! inputs, rejects, backtests, and the same on an S3-compatible server.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use arrow::array::{AsArray, Decimal128Array, StringArray};
use arrow::datatypes::{DataType, Field, Int64Type};
use serde_json::Value;

use crate::support::*;

fn refresh(warehouse: &str, args: &[&str]) -> Output {
    let mut command = aduana();
    command.args(["refresh", "-w", warehouse]).args(args);
    run(&mut command)
}

fn snapshot(root: &Path) -> Option<Value> {
    let text = std::fs::read_to_string(root.join("risk/_published.json")).ok()?;
    Some(serde_json::from_str(&text).unwrap())
}

/// Every file the snapshot lists, relative to `root`.
fn listed(snapshot: &Value) -> BTreeSet<String> {
    let mut files = BTreeSet::new();
    for partition in snapshot["partitions"].as_object().unwrap().values() {
        files.insert(partition["scores"].as_str().unwrap().to_string());
        for table in ["rejects", "trader_risk"] {
            if let Some(file) = partition[table].as_str() {
                files.insert(file.to_string());
            }
        }
    }
    files
}

/// Every file under the risk tables' folders, relative to `root`.
fn table_files(root: &Path) -> BTreeSet<String> {
    ["declaration_scores", "rejects", "trader_risk"]
        .iter()
        .map(|dir| root.join("risk").join(dir))
        .filter(|dir| dir.exists())
        .flat_map(|dir| parquet_files(&dir))
        .map(|f| f.strip_prefix(root).unwrap().display().to_string())
        .collect()
}

fn sql_i64(warehouse: &str, query: &str) -> i64 {
    let mut command = aduana();
    command.args(["sql", "-w", warehouse, "--format", "csv", "-c", query]);
    let out = ok(&run(&mut command));
    out.lines().nth(1).unwrap().trim().parse().unwrap()
}

fn move_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::rename(from, to).unwrap();
}

fn run_manifest(root: &Path, stdout: &str) -> Value {
    let run_id = stdout.split_whitespace().nth(1).unwrap();
    let text = std::fs::read_to_string(root.join(format!("risk/runs/{run_id}.json"))).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn refresh_is_incremental_idempotent_and_queryable() {
    let wh = generate(20_000, 4);
    let root = wh.path();
    let uri = wh.uri();
    let aside = tempfile::tempdir().unwrap();
    let october = root.join("declarations/year=2026/month=10");
    move_dir(&october, &aside.path().join("month=10"));
    let october_inspections = root.join("inspections/year=2026/month=10");
    move_dir(&october_inspections, &aside.path().join("inspections"));

    let out = ok(&refresh(&uri, &["--dry-run"]));
    assert!(out.contains("dry run"), "{out}");
    assert!(
        out.contains("would score year=2026/month=7: new model"),
        "{out}"
    );
    assert!(!root.join("risk").exists(), "a dry run writes nothing");

    let out = ok(&refresh(&uri, &[]));
    assert!(out.contains(" published: 3 partition(s) scored"), "{out}");
    let first = snapshot(root).unwrap();
    assert_eq!(listed(&first), table_files(root));
    let items = sql_i64(&uri, "SELECT COUNT(*) FROM declarations");
    assert_eq!(
        sql_i64(&uri, "SELECT COUNT(*) FROM risk.declaration_scores"),
        items
    );
    assert_eq!(
        sql_i64(
            &uri,
            "SELECT COUNT(*) FROM declarations d JOIN risk.declaration_scores s \
             ON s.declaration_id = d.declaration_id AND s.item_no = d.item_no"
        ),
        items,
        "one score per item, no duplicates"
    );
    assert_eq!(
        sql_i64(&uri, "SELECT SUM(items) FROM risk.trader_risk"),
        items
    );
    assert_eq!(
        sql_i64(
            &uri,
            "SELECT COUNT(*) FROM (SELECT importer_id, year, month FROM risk.trader_risk \
             GROUP BY 1, 2, 3 HAVING COUNT(*) > 1)"
        ),
        0
    );
    assert!(
        sql_i64(
            &uri,
            "SELECT COUNT(DISTINCT segment) FROM risk.trader_risk WHERE segment IN ('low', 'medium', 'high')"
        ) == 3
    );
    assert_eq!(
        sql_i64(
            &uri,
            "SELECT COUNT(*) FROM risk.trader_risk WHERE fraud_probability <= 0 OR fraud_probability >= 1 \
             OR expected_revenue_at_risk > revenue_at_risk + 0.01"
        ),
        0
    );

    // A new month, with its inspections: only it is scored, and the trader
    // risk is recomputed for it and the months its inspections refer to.
    move_dir(&aside.path().join("month=10"), &october);
    move_dir(&aside.path().join("inspections"), &october_inspections);
    let out = ok(&refresh(&uri, &[]));
    assert!(
        out.contains(" published: 1 partition(s) scored, 3 unchanged"),
        "{out}"
    );
    assert!(
        out.contains("scored year=2026/month=10: new partition"),
        "{out}"
    );
    let manifest = run_manifest(root, &out);
    let october_rows = sql_i64(&uri, "SELECT COUNT(*) FROM declarations WHERE month = 10");
    assert_eq!(manifest["rows_in"], october_rows);
    assert_eq!(manifest["rows_scored"], october_rows);
    assert_eq!(manifest["status"], "published");
    let second = snapshot(root).unwrap();
    let recomputed: BTreeSet<&str> = manifest["trader_periods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(recomputed.contains("year=2026/month=10"), "{recomputed:?}");
    assert!(recomputed.len() < 4, "not every month: {recomputed:?}");
    for month in [
        "year=2026/month=7",
        "year=2026/month=8",
        "year=2026/month=9",
    ] {
        let (was, is) = (&first["partitions"][month], &second["partitions"][month]);
        assert_eq!(was["scores"], is["scores"], "{month} was not rescored");
        assert_eq!(
            was["trader_risk"] == is["trader_risk"],
            !recomputed.contains(month),
            "{month}: trader risk kept unless recomputed"
        );
    }
    // Incremental gives what computing everything again gives.
    let traders = |uri: &str| {
        stdout(&run(aduana().args([
            "sql",
            "-w",
            uri,
            "--format",
            "csv",
            "-c",
            "SELECT * FROM risk.trader_risk ORDER BY year, month, rank",
        ])))
    };
    let incremental = traders(&uri);
    let everything = tempfile::tempdir().unwrap();
    copy_dir(root, everything.path());
    // Without the snapshot, every month is scored again (with the same
    // model) and its trader risk computed.
    std::fs::remove_file(everything.path().join("risk/_published.json")).unwrap();
    let again = everything.path().display().to_string();
    ok(&refresh(&again, &[]));
    assert_eq!(traders(&again), incremental);
    assert_eq!(
        sql_i64(&uri, "SELECT COUNT(*) FROM risk.declaration_scores"),
        items + october_rows
    );

    // Nothing new: nothing changes.
    let before = std::fs::read(root.join("risk/_published.json")).unwrap();
    let out = ok(&refresh(&uri, &[]));
    assert!(out.contains(" up to date: 0 partition(s) scored"), "{out}");
    assert_eq!(
        std::fs::read(root.join("risk/_published.json")).unwrap(),
        before
    );

    // Rescoring a partition from the same inputs gives the same file.
    let file = second["partitions"]["year=2026/month=10"]["scores"]
        .as_str()
        .unwrap()
        .to_string();
    let bytes = std::fs::read(root.join(&file)).unwrap();
    let out = ok(&refresh(&uri, &["--partitions", "year=2026/month=10"]));
    assert!(
        out.contains("scored year=2026/month=10: asked (--partitions)"),
        "{out}"
    );
    let third = snapshot(root).unwrap();
    assert_eq!(
        third["partitions"]["year=2026/month=10"]["scores"],
        file.as_str()
    );
    assert_eq!(std::fs::read(root.join(&file)).unwrap(), bytes);

    // Bad options name what is wrong.
    let out = refresh(&uri, &["--partitions", "year=2031/month=1"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("year=2031/month=1"),
        "{}",
        stderr(&out)
    );
    let out = refresh(&uri, &["--partitions", "2026-10"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_killed_refresh_leaves_the_published_tables_intact() {
    let wh = generate(12_000, 3);
    let root = wh.path();
    let uri = wh.uri();
    ok(&refresh(&uri, &[]));
    let items = sql_i64(&uri, "SELECT COUNT(*) FROM declarations");
    for point in [
        "scored",
        "staged",
        "publish-first-file",
        "publish-files-moved",
        "before-snapshot",
        "after-snapshot",
    ] {
        let before = snapshot(root).unwrap();
        let mut command = aduana();
        command
            .args(["refresh", "-w", &uri, "--rebuild-model"])
            .env("ADUANA_REFRESH_CRASH_AT", point);
        let out = run(&mut command);
        assert!(!out.status.success(), "{point}: the run was to be killed");
        assert!(
            stderr(&out).contains(&format!("crashing at {point}")),
            "{}",
            stderr(&out)
        );
        let after = snapshot(root).unwrap();
        if point == "after-snapshot" {
            assert_ne!(after["run_id"], before["run_id"], "{point}");
        } else {
            assert_eq!(after, before, "{point}: nothing new is published");
        }
        for file in listed(&after) {
            assert!(
                root.join(&file).exists(),
                "{point}: {file} is listed but missing"
            );
        }
        assert_eq!(
            sql_i64(&uri, "SELECT COUNT(*) FROM risk.declaration_scores"),
            items,
            "{point}: readers see whole tables"
        );
        // The next night's run (the lock of the dead process is taken
        // over at once) completes the work and clears what was left.
        let out = ok(&refresh(&uri, &["--rebuild-model"]));
        assert!(
            out.contains(" published: 3 partition(s) scored"),
            "{point}: {out}"
        );
        let done = snapshot(root).unwrap();
        let keep: BTreeSet<String> = listed(&done).union(&listed(&after)).cloned().collect();
        assert!(
            table_files(root).is_subset(&keep),
            "{point}: files left over: {:?}",
            table_files(root).difference(&keep).collect::<Vec<_>>()
        );
        assert!(
            !root.join("risk/_staging").exists(),
            "{point}: staging left behind"
        );
        assert_eq!(
            sql_i64(&uri, "SELECT COUNT(*) FROM risk.declaration_scores"),
            items
        );
    }
}

fn write_lock(root: &Path, host: &str, pid: u32, age_s: i64) {
    let at = chrono::Utc::now() - chrono::Duration::seconds(age_s);
    let lock = serde_json::json!({
        "run_id": "test", "host": host, "pid": pid, "acquired_at": at.to_rfc3339(),
    });
    std::fs::create_dir_all(root.join("risk")).unwrap();
    std::fs::write(root.join("risk/_lock"), lock.to_string()).unwrap();
}

#[test]
fn one_refresh_at_a_time() {
    let wh = generate(8_000, 2);
    let root = wh.path();
    let uri = wh.uri();
    // Held by a live process (this test) on this host.
    write_lock(root, &aduana_refresh::host_name(), std::process::id(), 5);
    let out = refresh(&uri, &[]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("another refresh is running")
            && stderr(&out).contains(&format!(
                "lock file://{}/risk/_lock",
                std::fs::canonicalize(root).unwrap().display()
            )),
        "{}",
        stderr(&out)
    );
    assert!(snapshot(root).is_none());
    // Held by another machine, recently: still held; stale: taken over.
    write_lock(root, "elsewhere", 1, 400);
    assert_eq!(refresh(&uri, &[]).status.code(), Some(3));
    ok(&refresh(&uri, &["--lock-timeout", "300"]));
    // A timeout too short to tell a slow run from a dead one is refused.
    let zero = refresh(&uri, &["--lock-timeout", "0"]);
    assert_eq!(zero.status.code(), Some(2), "{}", stderr(&zero));
    assert!(
        stderr(&zero).contains("--lock-timeout"),
        "{}",
        stderr(&zero)
    );

    assert!(!root.join("risk/_lock").exists(), "released");
    // A dead process on this host: taken over at once.
    let mut child = Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    write_lock(root, &aduana_refresh::host_name(), dead, 1);
    ok(&refresh(&uri, &["--rebuild-model"]));

    // Two runs started together: one publishes, the other is refused.
    let spawn = || {
        let mut command = aduana();
        command
            .args(["refresh", "-w", &uri, "--rebuild-model"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        command.spawn().unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let codes: BTreeSet<Option<i32>> = [a, b]
        .into_iter()
        .map(|c| c.wait_with_output().unwrap().status.code())
        .collect();
    assert_eq!(codes, BTreeSet::from([Some(0), Some(3)]));
    // Five at once with the shortest timeout: exactly one publishes, the
    // others are refused as "lock held", and no staging is left behind.
    let spawn = || {
        let mut command = aduana();
        command
            .args([
                "refresh",
                "-w",
                &uri,
                "--rebuild-model",
                "--lock-timeout",
                "300",
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        command.spawn().unwrap()
    };
    let runs: Vec<_> = (0..5).map(|_| spawn()).collect();
    let codes: Vec<Option<i32>> = runs
        .into_iter()
        .map(|c| c.wait_with_output().unwrap().status.code())
        .collect();
    // (A run that starts after another finished may publish too.)
    assert!(
        codes.iter().all(|c| matches!(c, Some(0) | Some(3))) && codes.contains(&Some(0)),
        "{codes:?}"
    );
    assert!(
        !root.join("risk/_staging").exists()
            || std::fs::read_dir(root.join("risk/_staging"))
                .unwrap()
                .count()
                == 0
    );
}

#[test]
fn bad_input_files_fail_the_run_and_publish_nothing() {
    let wh = generate(8_000, 2);
    let root = wh.path();
    let uri = wh.uri();
    ok(&refresh(&uri, &[]));
    let published = std::fs::read(root.join("risk/_published.json")).unwrap();
    let november = root.join("declarations/year=2026/month=11");
    std::fs::create_dir_all(&november).unwrap();

    let corrupt = november.join("part-0.parquet");
    std::fs::write(&corrupt, b"PAR1 this is not a parquet file PAR1").unwrap();
    let out = refresh(&uri, &[]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("year=2026/month=11/part-0.parquet"),
        "{}",
        stderr(&out)
    );

    // A file whose customs_value is text violates the contract.
    let source = parquet_files(&root.join("declarations")).remove(0);
    let batch = read_parquet(&source);
    let values = batch.column_by_name("customs_value").unwrap();
    let text: StringArray = values
        .as_any()
        .downcast_ref::<Decimal128Array>()
        .unwrap()
        .iter()
        .map(|v| v.map(|v| v.to_string()))
        .collect();
    let bad = replace_column(
        &batch,
        "customs_value",
        Some((
            Field::new("customs_value", DataType::Utf8, false),
            std::sync::Arc::new(text),
        )),
    );
    std::fs::remove_file(&corrupt).unwrap();
    write_parquet(&november.join("part-1.parquet"), &bad);
    let out = refresh(&uri, &[]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let message = stderr(&out);
    assert!(
        message.contains("part-1.parquet") && message.contains("customs_value"),
        "{message}"
    );
    assert_eq!(
        std::fs::read(root.join("risk/_published.json")).unwrap(),
        published,
        "nothing published"
    );
    assert!(!root.join("risk/_lock").exists());

    // A copy of a partition's file: every key twice, refused by name
    // rather than scored and counted twice.
    std::fs::remove_dir_all(&november).unwrap();
    let copy = source.with_file_name("copy.parquet");
    std::fs::copy(&source, &copy).unwrap();
    let out = refresh(&uri, &[]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let message = stderr(&out);
    let partition = source
        .parent()
        .unwrap()
        .strip_prefix(root.join("declarations"))
        .unwrap();
    assert!(
        message.contains(&format!("declarations partition {}", partition.display()))
            && message.contains("more than one row"),
        "{message}"
    );
    assert_eq!(
        std::fs::read(root.join("risk/_published.json")).unwrap(),
        published,
        "nothing published"
    );
}

#[test]
fn rows_that_cannot_be_scored_are_rejected_with_the_reason() {
    let wh = generate(8_000, 2);
    let root = wh.path();
    let uri = wh.uri();
    ok(&refresh(&uri, &[]));
    let mut reasons = Vec::new();
    rewrite_declarations(root, |batch| {
        let hs = batch.column_by_name("hs_code").unwrap().as_string::<i32>();
        let mut codes: Vec<Option<String>> = hs.iter().map(|v| v.map(String::from)).collect();
        codes[0] = Some("12AB".into());
        let units = batch
            .column_by_name("quantity_unit")
            .unwrap()
            .as_string::<i32>();
        let mut unit: Vec<Option<String>> = units.iter().map(|v| v.map(String::from)).collect();
        unit[1] = Some("XYZ".into());
        let value = batch.column_by_name("customs_value").unwrap();
        let value = value.as_any().downcast_ref::<Decimal128Array>().unwrap();
        let mut cents: Vec<Option<i128>> = value.iter().collect();
        cents[2] = Some(-500);
        reasons.extend([
            "malformed HS code '12AB'",
            "unknown quantity unit 'XYZ'",
            "customs value is zero or negative",
        ]);
        let field = |name: &str| batch.schema().field_with_name(name).unwrap().clone();
        let batch = replace_column(
            &batch,
            "hs_code",
            Some((
                field("hs_code"),
                std::sync::Arc::new(StringArray::from(codes)),
            )),
        );
        let batch = replace_column(
            &batch,
            "quantity_unit",
            Some((
                field("quantity_unit"),
                std::sync::Arc::new(StringArray::from(unit)),
            )),
        );
        let cents = Decimal128Array::from(cents)
            .with_precision_and_scale(18, 2)
            .unwrap();
        replace_column(
            &batch,
            "customs_value",
            Some((field("customs_value"), std::sync::Arc::new(cents))),
        )
    });
    let out = ok(&refresh(&uri, &[]));
    assert!(out.contains("files changed"), "{out}");
    let manifest = run_manifest(root, &out);
    assert_eq!(manifest["rows_rejected"], 3);
    assert_eq!(
        manifest["rows_scored"].as_u64().unwrap() + 3,
        manifest["rows_in"].as_u64().unwrap()
    );
    let mut command = aduana();
    command.args([
        "sql",
        "-w",
        &uri,
        "--format",
        "csv",
        "-c",
        "SELECT reason FROM risk.rejects ORDER BY reason",
    ]);
    let listed = ok(&run(&mut command));
    let mut expected: Vec<&str> = reasons.clone();
    expected.sort();
    assert_eq!(listed, format!("reason\n{}\n", expected.join("\n")));
    let items = sql_i64(&uri, "SELECT COUNT(*) FROM declarations");
    assert_eq!(
        sql_i64(&uri, "SELECT COUNT(*) FROM risk.declaration_scores"),
        items - 3
    );
}

#[test]
fn backtests_use_only_what_was_known_before_their_day() {
    let wh = generate(20_000, 4);
    let root = wh.path();
    let uri = wh.uri();
    let out = ok(&refresh(&uri, &["--as-of", "2026-10-01"]));
    assert!(out.contains(" published: 4 partition(s) scored"), "{out}");
    assert!(snapshot(root).is_none(), "the live tables are untouched");
    let backtest: PathBuf = root.join("risk/backtests/as_of=2026-10-01");
    let published = snapshot(&backtest).unwrap();
    assert_eq!(published["as_of"], "2026-10-01");
    let version = std::fs::read_to_string(backtest.join("risk/model/CURRENT")).unwrap();
    let manifest = std::fs::read_to_string(
        backtest.join(format!("risk/model/{}/manifest.toml", version.trim())),
    )
    .unwrap();
    assert!(
        manifest.contains("window_end = \"2026-10-01\""),
        "{manifest}"
    );
    assert!(!root.join("risk/model/CURRENT").exists());

    let mut command = aduana();
    command.args([
        "evaluate",
        "-w",
        &uri,
        "--backtest",
        "2026-10-01",
        "--score",
        "risk_score",
        "--labels",
        "truth",
        "--where",
        "declaration_date >= DATE '2026-10-01'",
    ]);
    let output = run(&mut command);
    let out = ok(&output);
    let october = sql_i64(&uri, "SELECT COUNT(*) FROM declarations WHERE month = 10");
    assert!(out.contains(&format!("({october} items where")), "{out}");
    assert!(
        out.contains("(published scores") && out.contains("period: items declared from 2026-10-"),
        "{out}"
    );
    assert!(
        !stderr(&output).contains("training window"),
        "items after the window are not warned about: {}",
        stderr(&output)
    );
    let auc: f64 = out
        .lines()
        .find_map(|l| l.strip_prefix("AUC: "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(auc > 0.8, "{out}");
    // Once the live model (which learned from October) exists, the
    // backtest is still measured against its own model's window.
    ok(&refresh(&uri, &[]));
    let again = run(&mut command);
    ok(&again);
    assert!(
        !stderr(&again).contains("training window"),
        "the backtest's model did not learn from October: {}",
        stderr(&again)
    );
}

#[test]
fn refresh_on_an_s3_compatible_server() {
    let Some(python) = python_with("moto") else {
        return;
    };
    let server = start_moto(&python);
    let wh = generate(8_000, 2);
    upload(&python, &server, &wh.path(), "customs", "wh");
    let aduana_s3 = |args: &[&str]| {
        let mut command = aduana();
        command
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1")
            .env_remove("AWS_ENDPOINT_URL")
            .args(args)
            .args([
                "-w",
                "s3://customs/wh",
                "--s3-endpoint",
                &server.endpoint,
                "--s3-path-style",
            ]);
        command
    };
    let out = ok(&run(&mut aduana_s3(&["refresh"])));
    assert!(out.contains(" published: 2 partition(s) scored"), "{out}");
    let out = ok(&run(&mut aduana_s3(&["refresh"])));
    assert!(out.contains(" up to date"), "{out}");
    let count = |query: &str| -> i64 {
        let out = ok(&run(&mut aduana_s3(&[
            "sql", "--format", "csv", "-c", query,
        ])));
        out.lines().nth(1).unwrap().parse().unwrap()
    };
    let items = count("SELECT COUNT(*) FROM declarations");
    assert_eq!(count("SELECT COUNT(*) FROM risk.declaration_scores"), items);
    assert_eq!(count("SELECT SUM(items) FROM risk.trader_risk"), items);

    // The other commands on the same warehouse: model build, shell, serve.
    let out = ok(&run(&mut aduana_s3(&["model", "build"])));
    assert!(
        out.starts_with("risk model ") && out.contains(" published "),
        "{out}"
    );
    let flagged = count(
        "SELECT COUNT(*) FROM declarations \
         WHERE valuation_deviation(hs_code, origin_country, customs_value, quantity) IS NOT NULL",
    );
    assert!(flagged > 0 && flagged <= items, "{flagged} of {items}");
    let out = run_with_stdin(
        &mut aduana_s3(&["shell", "--format", "csv"]),
        "SELECT COUNT(*) AS n FROM risk.declaration_scores;\n",
    );
    assert!(
        stdout(&out).contains(&format!("n\n{items}\n")),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    let flight = crate::flight::FlightServer::spawn(aduana_s3(&["serve"]));
    let batches = runtime().block_on(crate::flight::fetch(
        flight.port(),
        "SELECT COUNT(*) FROM risk.declaration_scores",
    ));
    let served = batches[0].column(0).as_primitive::<Int64Type>().value(0);
    assert_eq!(served, items);
    drop(flight);

    // Killed before the snapshot: the next run completes.
    let mut command = aduana_s3(&["refresh", "--rebuild-model"]);
    command.env("ADUANA_REFRESH_CRASH_AT", "before-snapshot");
    assert!(!run(&mut command).status.success());
    assert_eq!(count("SELECT COUNT(*) FROM risk.declaration_scores"), items);
    let out = ok(&run(&mut aduana_s3(&["refresh"])));
    assert!(out.contains(" published: 2 partition(s) scored"), "{out}");
    assert_eq!(count("SELECT COUNT(*) FROM risk.declaration_scores"), items);

    // A lock held by a run elsewhere (conditional create on S3).
    let lock = r#"
import sys, json, datetime, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1",
                  aws_access_key_id="test", aws_secret_access_key="test")
now = datetime.datetime.now(datetime.timezone.utc).isoformat()
s3.put_object(Bucket="customs", Key="wh/risk/_lock",
              Body=json.dumps({"run_id": "x", "host": "elsewhere", "pid": 1, "acquired_at": now}))
"#;
    let out = Command::new(&python)
        .args(["-c", lock, &server.endpoint])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(&mut aduana_s3(&["refresh", "--rebuild-model"]));
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));

    // A bucket that does not exist is a storage failure.
    let mut command = aduana();
    command
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .args([
            "refresh",
            "-w",
            "s3://nowhere/wh",
            "--s3-endpoint",
            &server.endpoint,
            "--s3-path-style",
        ]);
    let out = run(&mut command);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
}

/// Scores an older release wrote (another format or layout: the file name
/// fingerprints the format) are rewritten by the next run, once.
#[test]
fn scores_and_models_of_an_older_release_are_rebuilt_once() {
    let wh = generate(3_000, 3);
    let uri = wh.uri();
    ok(&refresh(&uri, &[]));
    // Name one partition's scores as another format would have.
    let mut published = snapshot(wh.path()).unwrap();
    let (key, partition) = published["partitions"]
        .as_object_mut()
        .unwrap()
        .iter_mut()
        .next()
        .unwrap();
    let key = key.clone();
    let current = partition["scores"].as_str().unwrap().to_string();
    let older = current.replace("/part-", "/part-0000");
    std::fs::rename(wh.path().join(&current), wh.path().join(&older)).unwrap();
    partition["scores"] = Value::String(older.clone());
    std::fs::write(
        wh.path().join("risk/_published.json"),
        serde_json::to_vec_pretty(&published).unwrap(),
    )
    .unwrap();

    let out = refresh(&uri, &["--log-format", "json"]);
    ok(&out);
    let log = stderr(&out);
    let plan: Value = log
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|e| e["event"] == "plan" && e.get("to_score").is_some())
        .unwrap();
    assert_eq!(plan["to_score"], 1, "{log}");
    assert!(log.contains("written by an older release"), "{log}");
    let after = snapshot(wh.path()).unwrap();
    assert_eq!(after["partitions"][&key]["scores"], Value::String(current));
    // Then it is up to date (and the replaced file, kept for sessions that
    // still read the previous snapshot, is cleaned up).
    let out = refresh(&uri, &["--log-format", "json"]);
    ok(&out);
    assert!(stderr(&out).contains("\"to_score\":0"), "{}", stderr(&out));
    assert!(
        !wh.path().join(&older).exists(),
        "the older file is removed"
    );

    // A model written before the model format number: rebuilt, once.
    let model_dir = wh.path().join("risk/model");
    let version = std::fs::read_to_string(model_dir.join("CURRENT")).unwrap();
    let manifest = model_dir.join(version.trim()).join("manifest.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let unnumbered: String = text
        .lines()
        .filter(|l| !l.starts_with("format ="))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(text, unnumbered, "the manifest carries its format");
    std::fs::write(&manifest, unnumbered).unwrap();
    let model_reason = |out: &Output| -> String {
        let log = stderr(out);
        let plan: Value = log
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .find(|e| e["event"] == "plan" && e.get("model_reason").is_some())
            .unwrap_or_else(|| panic!("no plan event: {log}"));
        plan["model_reason"].as_str().unwrap().to_string()
    };
    let out = refresh(&uri, &["--log-format", "json"]);
    ok(&out);
    let reason = model_reason(&out);
    assert!(
        reason.contains("older Aduana (model format 0, now "),
        "{reason}"
    );
    let rebuilt = std::fs::read_to_string(model_dir.join("CURRENT")).unwrap();
    assert_ne!(rebuilt, version, "a new model version is current");
    let out = refresh(&uri, &["--log-format", "json"]);
    ok(&out);
    assert_eq!(model_reason(&out), "current model");
}

/// Issue 17: a server started before three refreshes (each rebuilding the
/// model, so every score file is replaced) still reads the tables it
/// started with, because its lease keeps their files; once it stops, the
/// next refresh deletes them.
#[test]
fn a_running_server_keeps_its_tables_across_refreshes() {
    let wh = generate(20_000, 3);
    let root = wh.path();
    let uri = wh.uri();
    ok(&refresh(&uri, &[]));
    let first = listed(&snapshot(root).unwrap());
    let items = sql_i64(&uri, "SELECT COUNT(*) FROM declarations");
    let count = |port: u16| {
        let batches = runtime().block_on(crate::flight::fetch(
            port,
            "SELECT COUNT(*) AS n FROM risk.declaration_scores",
        ));
        batches[0].column(0).as_primitive::<Int64Type>().value(0)
    };
    let mut command = aduana();
    command.args(["serve", "-w", &uri]);
    let mut server = crate::flight::FlightServer::spawn(command);
    assert_eq!(count(server.port()), items);
    let leases: Vec<_> = std::fs::read_dir(root.join("risk/_readers"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(leases.len(), 1, "{leases:?}");
    let lease: Value = serde_json::from_str(&std::fs::read_to_string(&leases[0]).unwrap()).unwrap();
    assert_eq!(
        lease["files"].as_array().unwrap().len(),
        first.len(),
        "{lease}"
    );

    for _ in 0..3 {
        ok(&refresh(&uri, &["--rebuild-model"]));
        assert_eq!(count(server.port()), items, "the server went blank");
    }
    let now = listed(&snapshot(root).unwrap());
    assert!(first.is_disjoint(&now), "every file was rewritten");
    assert!(
        first.is_subset(&table_files(root)),
        "the leased files were kept"
    );

    let status = server.terminate(std::time::Duration::from_secs(20));
    assert!(status.success(), "{status:?}");
    assert!(!leases[0].exists(), "the lease is released on shutdown");
    // A model version a killed build left behind two days ago is collected;
    // the versions in use stay.
    let orphan = root.join("risk/model/orphan-version");
    std::fs::create_dir_all(&orphan).unwrap();
    std::fs::write(orphan.join("prices.parquet"), b"left by a killed build").unwrap();
    let two_days_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 86_400);
    std::fs::File::options()
        .write(true)
        .open(orphan.join("prices.parquet"))
        .unwrap()
        .set_modified(two_days_ago)
        .unwrap();
    ok(&refresh(&uri, &["--rebuild-model"]));
    assert!(
        !orphan.join("prices.parquet").exists(),
        "orphan model version collected"
    );
    let current = std::fs::read_to_string(root.join("risk/model/CURRENT")).unwrap();
    assert!(
        root.join("risk/model")
            .join(current.trim())
            .join("manifest.toml")
            .exists()
    );
    assert!(
        first.is_disjoint(&table_files(root)),
        "released files are collected"
    );
}

/// Issue 17: poisoned rows (a date of 9999 or 2019 in a 2026 folder, NaN,
/// infinite and absurd numbers, a missing importer) are rejected with
/// their reason, the model does not learn from them (its window still ends
/// in the warehouse's last real month) and nothing infinite is published.
#[test]
fn poisoned_rows_are_rejected_and_never_reach_the_model() {
    use arrow::array::Float64Array;
    let wh = generate(8_000, 2);
    let root = wh.path();
    let uri = wh.uri();
    ok(&refresh(&uri, &[]));
    let file = rewrite_declarations(root, |batch| {
        let field = |name: &str| batch.schema().field_with_name(name).unwrap().clone();
        // 9999-12-31 and 2019-01-01 in a 2026 folder.
        let batch = with_dates(&batch, &[(0, 2_932_896), (5, 17_897)]);
        let floats = |name: &str, changes: &[(usize, f64)]| {
            let column = batch.column_by_name(name).unwrap();
            let mut values: Vec<Option<f64>> = column
                .as_primitive::<arrow::datatypes::Float64Type>()
                .iter()
                .collect();
            for &(row, value) in changes {
                values[row] = Some(value);
            }
            std::sync::Arc::new(Float64Array::from(values)) as arrow::array::ArrayRef
        };
        let importers = batch
            .column_by_name("importer_id")
            .unwrap()
            .as_string::<i32>();
        let mut importer: Vec<Option<String>> =
            importers.iter().map(|v| v.map(String::from)).collect();
        importer[4] = None;
        let batch = replace_column(
            &batch,
            "quantity",
            Some((
                field("quantity").with_nullable(true),
                floats("quantity", &[(1, f64::NAN), (3, 1e308)]),
            )),
        );
        let batch = replace_column(
            &batch,
            "net_mass_kg",
            Some((
                field("net_mass_kg").with_nullable(true),
                floats("net_mass_kg", &[(2, f64::INFINITY)]),
            )),
        );
        replace_column(
            &batch,
            "importer_id",
            Some((
                field("importer_id").with_nullable(true),
                std::sync::Arc::new(StringArray::from(importer)),
            )),
        )
    });
    // Without statistics, so the NULL importer passes the footer check (with
    // them, opening names the file) and reaches the rows.
    let path = root.join(&file);
    let batch = read_parquet(&path);
    let properties = parquet::file::properties::WriterProperties::builder()
        .set_statistics_enabled(parquet::file::properties::EnabledStatistics::None)
        .build();
    let mut writer = parquet::arrow::ArrowWriter::try_new(
        std::fs::File::create(&path).unwrap(),
        batch.schema(),
        Some(properties),
    )
    .unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    let out = ok(&refresh(&uri, &["--rebuild-model"]));
    let manifest = run_manifest(root, &out);
    assert_eq!(manifest["rows_rejected"], 6, "{out}");
    let mut command = aduana();
    command.args([
        "sql",
        "-w",
        &uri,
        "--format",
        "csv",
        "-c",
        "SELECT reason FROM risk.rejects ORDER BY reason",
    ]);
    let reasons = ok(&run(&mut command));
    for expected in [
        "declaration date 9999-12-31 is outside its partition",
        "declaration date 2019-01-01 is outside its partition",
        "quantity NaN is not a finite, plausible number",
        "quantity 1e308 is not a finite, plausible number",
        "net mass inf is not a finite, plausible number",
        "required column importer_id is NULL",
    ] {
        assert!(
            reasons.to_lowercase().contains(&expected.to_lowercase()),
            "{expected} missing from {reasons} ({file})"
        );
    }
    let version = std::fs::read_to_string(root.join("risk/model/CURRENT")).unwrap();
    let model =
        std::fs::read_to_string(root.join(format!("risk/model/{}/manifest.toml", version.trim())))
            .unwrap();
    assert!(
        !model.contains("9999") && !model.contains("10000"),
        "{model}"
    );
    assert!(model.contains("2026-"), "{model}");
    assert_eq!(
        sql_i64(
            &uri,
            "SELECT COUNT(*) FROM risk.declaration_scores \
             WHERE isnan(revenue_at_risk) OR abs(revenue_at_risk) > 1e300 OR isnan(risk_score)"
        ),
        0
    );
    assert_eq!(
        sql_i64(
            &uri,
            "SELECT COUNT(*) FROM risk.trader_risk \
             WHERE isnan(expected_revenue_at_risk) OR abs(expected_revenue_at_risk) > 1e300"
        ),
        0
    );
}

/// Issue 17: a damaged declarations file (zero bytes) does not stop a
/// server from starting: it is left out with a warning naming it, and the
/// published risk tables are served as they are.
#[test]
fn a_damaged_file_is_left_out_and_the_server_still_serves() {
    let wh = generate(4_000, 2);
    let root = wh.path();
    let uri = wh.uri();
    ok(&refresh(&uri, &[]));
    let items = sql_i64(&uri, "SELECT COUNT(*) FROM declarations");
    let partition = parquet_files(&root.join("declarations"))[0]
        .parent()
        .unwrap()
        .to_path_buf();
    std::fs::write(partition.join("zero.parquet"), b"").unwrap();
    std::fs::write(
        partition.join("broken.parquet"),
        b"PAR1 not a parquet file PAR1",
    )
    .unwrap();
    let mut command = aduana();
    command.args(["serve", "-w", &uri]);
    let server = crate::flight::FlightServer::spawn(command);
    let count = |sql: &str| {
        let batches = runtime().block_on(crate::flight::fetch(server.port(), sql));
        batches[0].column(0).as_primitive::<Int64Type>().value(0)
    };
    assert_eq!(count("SELECT COUNT(*) FROM risk.declaration_scores"), items);
    assert_eq!(count("SELECT COUNT(*) FROM declarations"), items);
    let log = server.log();
    assert!(
        log.contains("warning: left out of declarations")
            && log.contains("zero.parquet")
            && log.contains("broken.parquet"),
        "{log}"
    );
    // The partition of the left-out files still answers, by its columns.
    let (year, month) = partition
        .strip_prefix(root.join("declarations"))
        .unwrap()
        .display()
        .to_string()
        .split_once('/')
        .map(|(y, m)| (y[5..].to_string(), m[6..].to_string()))
        .unwrap();
    let in_month = count(&format!(
        "SELECT COUNT(*) FROM risk.declaration_scores WHERE year = {year} AND month = {month}"
    ));
    assert!(in_month > 0);
    assert_eq!(
        count(&format!(
            "SELECT COUNT(*) FROM declarations WHERE year = {year} AND month = {month}"
        )),
        in_month
    );
    // Commands other than servers still refuse the damaged warehouse.
    let mut command = aduana();
    command.args(["sql", "-w", &uri, "-c", "SELECT 1"]);
    let out = run(&mut command);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("broken.parquet"), "{}", stderr(&out));
}

/// Score files are sorted by importer, then key, on partitions of several
/// batches scored over more cores than the machine has (the order was once
/// lost between the sort and the writer, batch by batch).
#[test]
fn score_files_are_sorted_by_importer_then_key() {
    let wh = generate(60_000, 2);
    let root = wh.path();
    ok(&refresh(&wh.uri(), &["--target-partitions", "4"]));
    let published = snapshot(root).unwrap();
    let partitions = published["partitions"].as_object().unwrap();
    assert_eq!(partitions.len(), 2, "{published}");
    for (partition, state) in partitions {
        let batch = read_parquet(&root.join(state["scores"].as_str().unwrap()));
        assert!(batch.num_rows() > 3 * 8192, "{partition}: several batches");
        let text = |name: &str| {
            let column = batch.column_by_name(name).unwrap().as_string::<i32>();
            (0..batch.num_rows())
                .map(|i| column.value(i).to_string())
                .collect::<Vec<_>>()
        };
        let (importers, declarations) = (text("importer_id"), text("declaration_id"));
        let items = batch
            .column_by_name("item_no")
            .unwrap()
            .as_primitive::<arrow::datatypes::Int32Type>();
        let key = |i: usize| (&importers[i], &declarations[i], items.value(i));
        let unsorted = (1..batch.num_rows())
            .filter(|&i| key(i) < key(i - 1))
            .count();
        assert_eq!(unsorted, 0, "{partition}: rows out of order");
    }
}
