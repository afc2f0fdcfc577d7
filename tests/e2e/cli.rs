//! The `aduana` binary as a user runs it.

use std::sync::OnceLock;

use crate::support::*;

/// One warehouse shared by the read-only CLI tests.
fn shared() -> &'static TestWarehouse {
    static WAREHOUSE: OnceLock<TestWarehouse> = OnceLock::new();
    WAREHOUSE.get_or_init(|| generate(20_000, 3))
}

fn sql(args: &[&str]) -> std::process::Output {
    let mut command = aduana();
    command
        .args(["sql", "--warehouse", &shared().uri()])
        .args(args);
    run(&mut command)
}

const LANES: &str = "SELECT lane, COUNT(*) AS n FROM declarations GROUP BY lane ORDER BY lane";

#[test]
fn version_and_help() {
    let out = run(aduana().arg("--version"));
    assert!(out.status.success());
    assert_eq!(
        stdout(&out).trim(),
        format!("aduana {}", env!("CARGO_PKG_VERSION"))
    );
    let help = stdout(&run(aduana().arg("--help")));
    for command in ["demo", "generate", "sql", "check"] {
        assert!(
            help.contains(command),
            "{command} missing from --help:\n{help}"
        );
    }
    let sql_help = stdout(&run(aduana().args(["sql", "--help"])));
    for flag in [
        "--warehouse",
        "--format",
        "--output",
        "--s3-endpoint",
        "--memory-limit",
    ] {
        assert!(sql_help.contains(flag), "{flag} missing from sql --help");
    }
}

#[test]
fn sql_prints_each_format() {
    let table = sql(&["-c", LANES]);
    assert!(table.status.success(), "{}", stderr(&table));
    let text = stdout(&table);
    assert!(
        text.contains("| lane ") && text.contains("| green "),
        "{text}"
    );

    let csv = stdout(&sql(&["-c", LANES, "--format", "csv"]));
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "lane,n");
    assert_eq!(lines.len(), 5, "{csv}");
    let total: u64 = lines[1..]
        .iter()
        .map(|l| l.split(',').nth(1).unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(total, shared().summary.rows);

    let json = stdout(&sql(&["-c", LANES, "--format", "json"]));
    assert!(
        json.starts_with("[{\"lane\":\"blue\",\"n\":") && json.trim_end().ends_with("}]"),
        "{json}"
    );

    let ndjson = stdout(&sql(&["-c", LANES, "--format", "ndjson"]));
    assert_eq!(ndjson.lines().count(), 4);
    assert!(ndjson.lines().all(|l| l.starts_with("{\"lane\":")));

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("lanes.parquet");
    let out = sql(&[
        "-c",
        LANES,
        "--format",
        "parquet",
        "-o",
        file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let batch = read_parquet(&file);
    assert_eq!(batch.num_rows(), 4);
    assert_eq!(batch.schema().field(0).name(), "lane");

    let refused = sql(&["-c", LANES, "--format", "parquet"]);
    assert!(!refused.status.success());
    assert!(stderr(&refused).contains("needs -o FILE"));
}

#[test]
fn failures_exit_non_zero_with_one_line() {
    let bad = sql(&["-c", "SELEC lane FROM declarations"]);
    assert_eq!(bad.status.code(), Some(1));
    let message = stderr(&bad);
    assert_eq!(message.trim_end().lines().count(), 1, "{message}");
    assert!(
        message.starts_with("error: ") && message.contains("SELEC"),
        "{message}"
    );

    let missing = sql(&["-c", "SELECT * FROM declaraciones"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).contains("declaraciones"),
        "{}",
        stderr(&missing)
    );

    // The first failing statement stops the run; earlier results are out.
    let partial = sql(&[
        "--format",
        "csv",
        "-c",
        "SELECT 1 AS a; SELECT nope FROM declarations; SELECT 2 AS b",
    ]);
    assert_eq!(partial.status.code(), Some(1));
    assert!(stderr(&partial).contains("nope"), "{}", stderr(&partial));
    assert!(!stdout(&partial).contains('2'));

    let nowhere = run(aduana().args(["sql", "-w", "/no/such/wh", "-c", "SELECT 1"]));
    assert_eq!(nowhere.status.code(), Some(1));
    assert!(stderr(&nowhere).contains("/no/such/wh"));

    let usage = run(aduana().args(["sql", "-c", "SELECT 1"]));
    assert_eq!(
        usage.status.code(),
        Some(2),
        "missing --warehouse is a usage error"
    );
    assert!(stderr(&usage).contains("--warehouse"));

    let memory = sql(&["--memory-limit", "lots", "-c", "SELECT 1"]);
    assert_eq!(memory.status.code(), Some(1));
    assert!(stderr(&memory).contains("invalid size \"lots\""));
}

#[test]
fn failed_output_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("out.csv");
    let out = sql(&[
        "--format",
        "csv",
        "-o",
        file.to_str().unwrap(),
        "-c",
        "SELECT 1 AS a; SELECT nope",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!file.exists());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no temporary file left behind"
    );
}

#[test]
fn warehouse_is_never_written_from_sql() {
    let wh = shared();
    let before = parquet_files(wh.path());
    let insert = sql(&[
        "-c",
        "INSERT INTO declarations SELECT * FROM declarations LIMIT 1",
    ]);
    assert_eq!(insert.status.code(), Some(1));
    assert!(stderr(&insert).contains("read-only"), "{}", stderr(&insert));

    let inside = wh
        .path()
        .join("declarations/year=2026/month=10/evil.parquet");
    let copy = sql(&[
        "-c",
        &format!("COPY (SELECT 1 AS a) TO '{}'", inside.display()),
    ]);
    assert_eq!(copy.status.code(), Some(1));
    assert!(
        stderr(&copy).contains("inside the warehouse"),
        "{}",
        stderr(&copy)
    );
    assert!(!inside.exists());
    let sneaky = format!("{}/reference/../declarations/x.csv", wh.path().display());
    assert_eq!(
        sql(&["-c", &format!("COPY (SELECT 1 AS a) TO '{sneaky}'")])
            .status
            .code(),
        Some(1)
    );
    assert_eq!(parquet_files(wh.path()), before);

    // Every spelling DataFusion resolves to a warehouse file is refused and
    // the file is left as it was: scheme in any case, `file:` without
    // slashes, with `localhost`, with four slashes, through a symlink.
    let target = before
        .iter()
        .find(|p| p.to_string_lossy().contains("declarations/"))
        .expect("a declarations file")
        .clone();
    let bytes = std::fs::read(&target).unwrap();
    let abs = std::fs::canonicalize(&target).unwrap();
    let abs = abs.display();
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("wh-link");
    std::os::unix::fs::symlink(wh.path(), &link).unwrap();
    let relative_to_link = target.strip_prefix(wh.path()).unwrap();
    for spelling in [
        format!("file:{abs}"),
        format!("FILE://{abs}"),
        format!("File:{abs}"),
        format!("file://localhost{abs}"),
        format!("file:///{abs}"),
        format!("{}/{}", link.display(), relative_to_link.display()),
    ] {
        let copy = sql(&[
            "-c",
            &format!("COPY (SELECT * FROM declarations LIMIT 3) TO '{spelling}' STORED AS PARQUET"),
        ]);
        assert_eq!(copy.status.code(), Some(1), "{spelling}: {}", stderr(&copy));
        assert!(
            stderr(&copy).contains("inside the warehouse"),
            "{spelling}: {}",
            stderr(&copy)
        );
        assert_eq!(
            std::fs::read(&target).unwrap(),
            bytes,
            "{spelling} overwrote the file"
        );
    }
    // -o is checked the same way.
    let out = sql(&[
        "--format",
        "csv",
        "-o",
        &target.to_string_lossy(),
        "-c",
        "SELECT 1 AS a",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("-o") && stderr(&out).contains("inside the warehouse"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read(&target).unwrap(), bytes);
    assert_eq!(parquet_files(wh.path()), before);

    // Analysts may export elsewhere and make views.
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("lanes.csv");
    let ok = sql(&[
        "-c",
        &format!(
            "CREATE VIEW lanes AS {LANES}; COPY (SELECT * FROM lanes) TO '{}' STORED AS CSV",
            export.display()
        ),
    ]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert!(
        std::fs::read_to_string(&export)
            .unwrap()
            .starts_with("lane,n")
    );
}

#[test]
fn sql_from_file_and_standard_input() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("q.sql");
    std::fs::write(&script, "CREATE VIEW v AS SELECT DISTINCT lane FROM declarations;\nSELECT COUNT(*) AS lanes FROM v;\n").unwrap();
    let out = sql(&["--format", "csv", "-f", script.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "lanes\n4\n");

    let out = run_with_stdin(
        aduana().args(["sql", "-w", &shared().uri(), "--format", "csv"]),
        "SELECT COUNT(*) AS n FROM reference.tariff",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!("n\n{}\n", shared().summary.tariff_lines)
    );
}

#[test]
fn check_lists_tables() {
    let out = run(aduana().args(["check", "-w", &shared().uri()]));
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("columns and types conform to the contract"));
    assert!(
        text.contains(&format!("declarations {:>20}", shared().summary.rows))
            || text.contains(&shared().summary.rows.to_string()),
        "{text}"
    );
    assert!(text.contains("reference.trade_remedies"));
}

#[test]
fn generate_command_and_its_guards() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("wh");
    let out = run(aduana().args([
        "generate",
        "--out",
        out_dir.to_str().unwrap(),
        "--rows",
        "5000",
        "--seed",
        "3",
        "--months",
        "2",
    ]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("wrote 5000 items"),
        "{}",
        stdout(&out)
    );
    assert!(out_dir.join("_truth").is_dir() && out_dir.join("reference/tariff.parquet").is_file());

    let again = run(aduana().args([
        "generate",
        "--out",
        out_dir.to_str().unwrap(),
        "--rows",
        "10",
    ]));
    assert_eq!(again.status.code(), Some(1));
    assert!(stderr(&again).contains("--overwrite"));
    assert_eq!(
        parquet_files(&out_dir.join("declarations")).len(),
        2,
        "existing data untouched"
    );

    let bad_month = run(aduana().args(["generate", "--out", "x", "--last-month", "2026-13"]));
    assert_eq!(bad_month.status.code(), Some(2));
    assert!(stderr(&bad_month).contains("YYYY-MM"));
    let no_csv = run(aduana().args([
        "generate",
        "--out",
        dir.path().join("n").to_str().unwrap(),
        "--rows",
        "10",
        "--hs-nomenclature",
        "/no/hs.csv",
    ]));
    assert_eq!(no_csv.status.code(), Some(1));
    assert!(stderr(&no_csv).contains("/no/hs.csv"));
}

#[test]
fn demo_generates_once_and_tours_the_sample() {
    let dir = tempfile::tempdir().unwrap();
    let sample = dir.path().join("sample");
    let first = run(aduana().args(["demo", "--dir", sample.to_str().unwrap(), "--rows", "20000"]));
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(stderr(&first).contains("generating 20000"));
    let text = stdout(&first);
    // A story a newcomer reads, not a dump.
    let lines = text.lines().count();
    assert!(lines <= 150, "the demo prints {lines} lines:\n{text}");
    assert!(!text.contains("(needs a value"), "{text}");
    assert!(
        text.contains("Known fraud in the sample") && text.contains("undervaluation"),
        "{text}"
    );
    // The refresh ran; what it learned and its trader segments are shown.
    assert!(
        text.contains(" published: 12 partition(s) scored"),
        "{text}"
    );
    assert!(
        text.contains("== What the refresh learned ==") && text.contains("labelled_frauds"),
        "{text}"
    );
    let segments = text
        .split("== Trader segments, latest month ==")
        .nth(1)
        .expect("segments shown");
    for segment in ["| high ", "| medium ", "| low "] {
        assert!(segments.contains(segment), "{segment}: {segments}");
    }
    // Five candidates, each with its reasons, and the next steps.
    let candidates = text
        .split("strongest audit candidates")
        .nth(1)
        .expect("candidates shown");
    for rank in 1..=5 {
        assert!(
            candidates.contains(&format!("\n{rank}. ")),
            "{rank}: {candidates}"
        );
    }
    assert!(candidates.matches("   why: ").count() == 5, "{candidates}");
    assert!(
        text.contains("== Next ==") && text.contains("aduana report trader_profile -w"),
        "{text}"
    );
    // The commands it suggests work as printed.
    let profile = text
        .lines()
        .find(|l| l.starts_with("aduana report trader_profile"))
        .unwrap();
    let words: Vec<&str> = profile.split_whitespace().skip(1).collect();
    let out = run(aduana().args(&words));
    assert!(out.status.success(), "{profile}: {}", stderr(&out));
    let importer = profile.rsplit('=').next().unwrap();
    assert!(
        stdout(&out).contains(importer),
        "{profile}: {}",
        stdout(&out)
    );

    let second = run(aduana().args(["demo", "--dir", sample.to_str().unwrap()]));
    assert!(second.status.success());
    assert!(stdout(&second).contains(" up to date: 0 partition(s) scored"));
    assert!(
        !stderr(&second).contains("generating"),
        "the sample is reused"
    );
}

/// Issue 17: output piped into `head` ends quietly, without a panic.
#[test]
fn a_closed_pipe_ends_output_quietly() {
    let wh = shared();
    let binary = env!("CARGO_BIN_EXE_aduana");
    for command in [
        format!("{binary} reports | head -1"),
        format!(
            "{binary} sql -w {} -c 'SELECT * FROM declarations' --format csv | head -1",
            wh.uri()
        ),
    ] {
        let out = std::process::Command::new("sh")
            .args(["-c", &format!("{command}; echo end")])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{command}: {err}");
        assert!(!err.contains("Broken pipe"), "{command}: {err}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).lines().count(),
            2,
            "{command}"
        );
    }
}

/// Issue 17: `check` reads the rows, not only the footers: a date outside
/// its partition and a corrupt data page are named with their file.
#[test]
fn check_reads_the_data_and_names_what_is_wrong() {
    let wh = generate(4_000, 2);
    let clean = run(aduana().args(["check", "-w", &wh.uri()]));
    assert!(clean.status.success(), "{}", stderr(&clean));
    assert!(
        stdout(&clean).contains("every row read can be scored"),
        "{}",
        stdout(&clean)
    );
    assert!(
        !stdout(&clean).contains("missing (optional"),
        "the generator writes every table: {}",
        stdout(&clean)
    );
    // Optional tables that are absent are named with what they disable.
    std::fs::remove_file(wh.path().join("reference/traders.parquet")).unwrap();
    std::fs::remove_dir_all(wh.path().join("inspections")).unwrap();
    let partial = ok(&run(aduana().args(["check", "-w", &wh.uri()])));
    assert!(
        partial.contains("reference.traders")
            && partial.contains("missing (optional, at reference/traders.parquet)")
            && partial.contains("no trader names, AEO status")
            && partial.contains("no learned model"),
        "{partial}"
    );
    // A report that reads a missing table says which, and how to add it.
    let report = run(aduana().args(["report", "inspection_hit_rate_by_lane", "-w", &wh.uri()]));
    assert_eq!(report.status.code(), Some(1));
    assert!(
        stderr(&report).contains(
            "report inspection_hit_rate_by_lane reads inspections, which this warehouse does \
             not have: add it at inspections"
        ),
        "{}",
        stderr(&report)
    );

    // 9999-12-31 in a 2026 folder.
    let file = rewrite_declarations(wh.path(), |batch| with_dates(&batch, &[(0, 2_932_896)]));
    let out = run(aduana().args(["check", "-w", &wh.uri()]));
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(
        text.contains("1 item(s): declaration date 9999-12-31 is outside its partition")
            && text.contains(&file),
        "{text}"
    );
    assert!(
        stderr(&out).contains("does not conform"),
        "{}",
        stderr(&out)
    );

    // A data page overwritten in the middle of another file, footer intact.
    let other = parquet_files(&wh.path().join("declarations"))
        .into_iter()
        .find(|p| !p.ends_with(&file))
        .unwrap();
    let mut bytes = std::fs::read(&other).unwrap();
    let middle = bytes.len() / 3;
    for b in &mut bytes[middle..middle + 4096] {
        *b = 0xA5;
    }
    std::fs::write(&other, bytes).unwrap();
    let out = run(aduana().args(["check", "-w", &wh.uri()]));
    assert_eq!(out.status.code(), Some(1));
    let name = other.strip_prefix(wh.path()).unwrap().display().to_string();
    assert!(
        stdout(&out).contains(&format!("unreadable: {name}")),
        "{}",
        stdout(&out)
    );
}

/// `aduana import`: a month exported flat (CSV with its own date format,
/// or Parquet) goes back into the layout with the same rows; importing it
/// again writes nothing; bad files and keys already declared are refused
/// before anything is written.
#[test]
fn import_writes_flat_exports_into_the_monthly_layout() {
    let wh = generate(4_000, 2);
    let uri = wh.uri();
    let summary = |uri: &str| {
        ok(&run(aduana().args([
            "sql",
            "-w",
            uri,
            "--format",
            "csv",
            "-c",
            "SELECT year, month, COUNT(*) AS n, SUM(customs_value) AS value, MIN(hs_code) AS hs, \
                    MIN(declaration_date) AS first, MAX(declaration_date) AS last \
             FROM declarations GROUP BY year, month ORDER BY year, month",
        ])))
    };
    let before = summary(&uri);
    let month_dir = std::fs::read_dir(wh.path().join("declarations"))
        .unwrap()
        .flat_map(|year| std::fs::read_dir(year.unwrap().path()).unwrap())
        .map(|m| m.unwrap().path())
        .max()
        .unwrap();
    let files = parquet_files(&month_dir);
    let exports = tempfile::tempdir().unwrap();
    // The month as one CSV with day/month/year dates.
    let csv = exports.path().join("month.csv");
    {
        let mut writer = arrow::csv::WriterBuilder::new()
            .with_date_format("%d/%m/%Y".into())
            .build(std::fs::File::create(&csv).unwrap());
        for file in &files {
            let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
                std::fs::File::open(file).unwrap(),
            )
            .unwrap()
            .build()
            .unwrap();
            for batch in reader {
                writer.write(&batch.unwrap()).unwrap();
            }
        }
    }
    std::fs::remove_dir_all(&month_dir).unwrap();

    // Dates in another format than told: refused, nothing written.
    let wrong = run(aduana().args(["import", "-w", &uri, csv.to_str().unwrap()]));
    assert_eq!(wrong.status.code(), Some(1));
    assert!(
        stderr(&wrong).contains("declaration_date")
            && stderr(&wrong).contains("is not a date in the format \"%Y-%m-%d\"")
            && stderr(&wrong).contains("--date-format"),
        "{}",
        stderr(&wrong)
    );
    assert!(!month_dir.exists(), "a refused import wrote files");

    let imported = ok(&run(aduana().args([
        "import",
        "-w",
        &uri,
        "--date-format",
        "%d/%m/%Y",
        csv.to_str().unwrap(),
    ])));
    assert!(imported.contains("1 month(s) written"), "{imported}");
    assert_eq!(summary(&uri), before, "the imported month differs");
    assert_eq!(parquet_files(&month_dir).len(), 1);

    // Again: already there, nothing written.
    let again = ok(&run(aduana().args([
        "import",
        "-w",
        &uri,
        "--date-format",
        "%d/%m/%Y",
        csv.to_str().unwrap(),
    ])));
    assert!(
        again.contains("0 month(s) written, 1 already imported"),
        "{again}"
    );
    assert_eq!(parquet_files(&month_dir).len(), 1);

    // The other month's file imported as a flat Parquet: its keys are
    // already declared, so it is refused whole.
    let other = parquet_files(&wh.path().join("declarations"))
        .into_iter()
        .find(|p| !p.starts_with(&month_dir))
        .unwrap();
    let copy = exports.path().join("copy.parquet");
    std::fs::copy(&other, &copy).unwrap();
    let duplicate = run(aduana().args(["import", "-w", &uri, copy.to_str().unwrap()]));
    assert_eq!(duplicate.status.code(), Some(1));
    assert!(
        stderr(&duplicate).contains("already in the warehouse's declarations")
            && stderr(&duplicate).contains("nothing was written"),
        "{}",
        stderr(&duplicate)
    );

    // A value that is not of its type is named with its row and column.
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let header: Vec<&str> = lines[0].split(',').collect();
    let at = header.iter().position(|h| *h == "item_no").unwrap();
    let mut cells: Vec<String> = lines[2].split(',').map(String::from).collect();
    cells[at] = "two".into();
    lines[2] = cells.join(",");
    let bad = exports.path().join("bad.csv");
    std::fs::write(&bad, lines.join("\n")).unwrap();
    let refused = run(aduana().args([
        "import",
        "-w",
        &uri,
        "--date-format",
        "%d/%m/%Y",
        bad.to_str().unwrap(),
    ]));
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("item_no \"two\" in row 2 is not a Int32"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(summary(&uri), before);
}
