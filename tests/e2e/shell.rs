//! The shell as an analyst uses it: driven through a pseudo-terminal for
//! line editing, completion, history, Ctrl-C and meta commands; run as a
//! process for scripts (-c, -f, standard input) and for named reports.

use rexpect::session::PtySession;

use crate::model::modelled;
use crate::support::*;

const PROMPT: &str = "aduana> ";

/// The shell on `warehouse` in a pseudo-terminal, with its history in
/// `history` and no colours (the highlighter is unit-tested; plain text
/// keeps the expectations readable).
fn interactive(warehouse: &str, history: &std::path::Path) -> PtySession {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_aduana"));
    command
        .args(["shell", "--warehouse", warehouse])
        .env("TERM", "xterm")
        .env("NO_COLOR", "1")
        .env("COLUMNS", "160")
        .env("ADUANA_HISTORY", history)
        .env_remove("ADUANA_WAREHOUSE");
    let mut shell = rexpect::session::spawn_command(command, Some(60_000)).expect("shell starts");
    shell.exp_string(PROMPT).expect("prompt");
    shell
}

/// Waits for each of `texts` in order, then for the next prompt (the line
/// editor discards what is typed before it is ready, as terminals do).
fn expect(p: &mut PtySession, texts: &[&str]) {
    for text in texts {
        p.exp_string(text)
            .unwrap_or_else(|e| panic!("waiting for {text:?}: {e}"));
    }
    p.exp_string(PROMPT).expect("prompt");
}

fn command(p: &mut PtySession, line: &str, texts: &[&str]) {
    p.send_line(line).unwrap();
    expect(p, texts);
}

#[test]
fn interactive_shell_edits_completes_cancels_and_remembers() {
    let wh = modelled();
    let home = tempfile::tempdir().unwrap();
    let history = home.path().join("history");
    let mut p = interactive(&wh.uri(), &history);

    // A statement over two lines runs when the `;` comes; the second line
    // is prompted as a continuation.
    p.send_line("SELECT 40 +").unwrap();
    p.exp_string("     -> ").unwrap();
    p.send_line("2 AS answer;").unwrap();
    expect(&mut p, &["answer", "42", "(1 row"]);

    // Tab completes a qualified table name and a function name.
    p.send("SELECT COUNT(*) AS remedies FROM reference.trade_rem\t")
        .unwrap();
    p.send_line(";").unwrap();
    expect(&mut p, &["remedies", "(1 row"]);
    // After FROM only tables are offered: `decl` completes whole (among
    // columns and keywords it would stop at `declar`).
    p.send("SELECT COUNT(*) AS whole FROM decl\t").unwrap();
    p.send_line(";").unwrap();
    expect(&mut p, &["whole", "(1 row"]);
    p.send("SELECT hs_sugg\t").unwrap();
    p.send_line("('portable laptop computer') AS suggested;")
        .unwrap();
    expect(&mut p, &["suggested", "(1 row"]);

    // Meta commands: columns of a table, expanded display, a report with
    // a parameter, the model, an unknown command.
    command(
        &mut p,
        "\\d declarations",
        &["customs_value", "DECIMAL(18, 2)"],
    );
    command(
        &mut p,
        "\\d+ declarations",
        &["customs_value", "DECIMAL(18, 2)", "Decimal128(18, 2)"],
    );
    command(&mut p, "\\dt", &["declarations", "BASE TABLE"]);
    // SQL errors in one plain line; an unquoted date refused with the fix.
    command(
        &mut p,
        "SELEC 1;",
        &["SQL syntax error: Expected: an SQL statement, found: SELEC"],
    );
    command(
        &mut p,
        "SELECT COUNT(*) FROM declarations WHERE declaration_date > 2026-01-01;",
        &["is the number 2024", "DATE '2026-01-01'"],
    );
    command(&mut p, "\\x", &["x is on"]);
    command(
        &mut p,
        "SELECT 'CN' AS origin, 3 AS n;",
        &["-[ RECORD 1 ]", "origin | CN"],
    );
    command(&mut p, "\\x off", &["x is off"]);
    command(
        &mut p,
        "\\r valuation_outliers limit=3",
        &["lowest_z", "(3 rows"],
    );
    command(
        &mut p,
        "\\r valuation_outliers limit=three",
        &["parameter limit (int)"],
    );
    command(&mut p, "\\model", &["training_items"]);
    command(&mut p, "\\nope", &["unknown or malformed meta command"]);

    // A large result is capped with a note of what was not shown.
    command(&mut p, "\\maxrows 5", &[]);
    command(
        &mut p,
        "SELECT declaration_id FROM declarations LIMIT 12;",
        &["7 not shown"],
    );

    // Ctrl-C cancels a long query, not the shell.
    p.send_line(
        "SELECT COUNT(*) AS endless FROM generate_series(1, 1000000000000) WHERE value % 7 = 3;",
    )
    .unwrap();
    p.exp_string("running").unwrap();
    p.send_control('c').unwrap();
    expect(&mut p, &["query cancelled"]);
    // Ctrl-C at the prompt drops the line being typed.
    p.send("SELECT 'dropped'").unwrap();
    p.send_control('c').unwrap();
    p.exp_string(PROMPT).unwrap();
    command(
        &mut p,
        "SELECT 'still here' AS alive;",
        &["still here", "(1 row"],
    );

    // Ctrl-D leaves.
    p.send_control('d').unwrap();
    p.exp_eof().unwrap();
    let saved = std::fs::read_to_string(&history).expect("history saved");
    assert!(
        saved.contains("2 AS answer;") && saved.contains("\\d declarations"),
        "{saved}"
    );
    assert!(!saved.contains("dropped"), "{saved}");

    // History persists: Up recalls the last statement of the last session.
    let mut p = interactive(&wh.uri(), &history);
    p.send_control('p').unwrap();
    p.exp_string("AS alive;").unwrap();
    p.send_line("").unwrap();
    expect(&mut p, &["| still here |"]);
    p.send_line("\\q").unwrap();
    p.exp_eof().unwrap();
}

/// CPU time (user + system, in clock ticks) the process `pid` has used.
fn cpu_ticks(pid: i32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/PID/stat");
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[test]
fn ctrl_c_stops_the_work_of_a_join_that_multiplies_rows() {
    if !std::path::Path::new("/proc/self/stat").exists() {
        eprintln!("skipped: no /proc to measure CPU time with");
        return;
    }
    let wh = modelled();
    let home = tempfile::tempdir().unwrap();
    let mut p = interactive(&wh.uri(), &home.path().join("history"));
    let pid = p.process.child_pid.as_raw();
    // Every item of a year with every other: each probe batch matches
    // hundreds of millions of rows. Before the fix the join kept a core
    // busy for minutes after Ctrl-C, and Ctrl-D waited for it.
    p.send_line(
        "SELECT COUNT(*) AS pairs FROM declarations a JOIN declarations b ON a.year = b.year;",
    )
    .unwrap();
    p.exp_string("running").unwrap();
    let ticks_per_second = 100.0;
    let busy = || {
        let before = cpu_ticks(pid);
        std::thread::sleep(std::time::Duration::from_secs(1));
        (cpu_ticks(pid) - before) as f64 / ticks_per_second
    };
    let running = busy();
    assert!(
        running > 0.5,
        "the join uses {running:.2} cores while running"
    );
    p.send_control('c').unwrap();
    expect(&mut p, &["query cancelled"]);
    // A second for the abort to land, then the process must be idle.
    std::thread::sleep(std::time::Duration::from_secs(1));
    let after = busy();
    assert!(
        after < 0.2,
        "{after:.2} cores still busy a second after Ctrl-C"
    );
    let started = std::time::Instant::now();
    p.send_control('d').unwrap();
    p.exp_eof().unwrap();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "Ctrl-D took {:?}",
        started.elapsed()
    );
}

fn shell(args: &[&str], stdin: Option<&str>) -> std::process::Output {
    let mut command = aduana();
    command
        .arg("shell")
        .args(["--warehouse", &modelled().uri()])
        .args(args);
    match stdin {
        None => run(&mut command),
        Some(text) => run_with_stdin(&mut command, text),
    }
}

#[test]
fn scripts_run_meta_commands_and_stop_at_the_first_failure() {
    let out = shell(
        &[
            "-c",
            "SELECT 1 AS first; SELECT nope FROM declarations; SELECT 3 AS third",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("first") && !stdout(&out).contains("third"));
    let error = stderr(&out);
    assert!(
        error.contains("SELECT nope FROM declarations") && error.contains("nope"),
        "{error}"
    );

    // Standard input with meta commands: format, a report, a script.
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("lanes.sql");
    std::fs::write(
        &script,
        "SELECT lane, COUNT(*) AS n FROM declarations GROUP BY lane ORDER BY lane;\n",
    )
    .unwrap();
    let text = format!(
        "\\format csv\nSELECT 'a;b' AS x; -- a comment;\n\\i {}\n\\r inspection_hit_rate_by_lane\n",
        script.display()
    );
    let out = shell(&[], Some(&text));
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("x\na;b\n"), "{text}");
    assert!(
        text.contains("lane,n\nblue,") && text.contains("lane,items,inspected"),
        "{text}"
    );

    // Listing meta commands, and \o to a file outside the warehouse.
    let saved = dir.path().join("saved.csv");
    let text = format!(
        "\\format csv\n\\?\n\\df\n\\df risk_*\n\\df+ origin_risk\n\\reports\n\\o {}\nSELECT 5 AS five;\n\\o\nSELECT 6 AS six;\n",
        saved.display()
    );
    let out = shell(&[], Some(&text));
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for expected in [
        "\\r NAME [k=v ...]",
        "valuation_deviation,scalar,\"valuation_deviation(hs_code, origin_country, customs_value",
        "Modified z-score of the declared log unit value",
        "risk_level,scalar",
        "Syntax: origin_risk(hs_code, origin_country, export_country [, preference_code",
        "importer_id: Optional: the importer",
        "trader_profile,Trader profile,\"importer text (required), days int = 365\"",
        "six\n6\n",
    ] {
        assert!(text.contains(expected), "{expected:?} missing:\n{text}");
    }
    assert!(
        !text.contains("percentile_cont"),
        "\\df alone lists Aduana's functions"
    );
    assert!(!text.contains("five"), "{text}");
    assert_eq!(std::fs::read_to_string(&saved).unwrap(), "five\n5\n");

    // Plain `aduana` is the shell on ADUANA_WAREHOUSE.
    let out = run_with_stdin(
        aduana().env("ADUANA_WAREHOUSE", modelled().uri()),
        "SELECT 'plain' AS mode;\n",
    );
    assert!(
        out.status.success() && stdout(&out).contains("| plain |"),
        "{}",
        stderr(&out)
    );
    let out = run(&mut aduana());
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("ADUANA_WAREHOUSE"),
        "{}",
        stderr(&out)
    );

    // -f with a failing meta command exits non-zero naming it.
    std::fs::write(&script, "SELECT 1;\n\\r no_such_report\nSELECT 2;\n").unwrap();
    let out = shell(&["-f", script.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no report named no_such_report"),
        "{}",
        stderr(&out)
    );

    // \o writes elsewhere but never into the warehouse; -o is atomic.
    let inside = modelled().path().join("out.csv");
    let out = shell(
        &["-c", &format!("\\o {}\nSELECT 1;", inside.display())],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("inside the warehouse") && !inside.exists());
    let target = dir.path().join("r.json");
    let out = shell(
        &[
            "--format",
            "json",
            "-o",
            target.to_str().unwrap(),
            "-c",
            "SELECT 7 AS n",
        ],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "[{\"n\":7}]");
}

#[test]
fn every_report_returns_rows_with_its_declared_columns() {
    // Refreshed: some reports read the published risk tables.
    let wh = generate(60_000, 12);
    let out = run(aduana().args(["refresh", "--warehouse", &wh.uri()]));
    assert!(out.status.success(), "{}", stderr(&out));
    let first = |sql: &str| {
        let out = run(aduana().args([
            "sql",
            "--warehouse",
            &wh.uri(),
            "--format",
            "csv",
            "-c",
            sql,
        ]));
        stdout(&out).lines().nth(1).unwrap().to_string()
    };
    // Selected: the monitoring reports read the published controls.
    let day = first(
        "SELECT declaration_date FROM declarations GROUP BY 1 ORDER BY COUNT(*) DESC, 1 LIMIT 1",
    );
    let out = run(aduana().args([
        "select",
        "--warehouse",
        &wh.uri(),
        "--date",
        &day,
        "--capacity",
        "red=100,yellow=100",
        "--explore",
        "0.5",
    ]));
    assert!(out.status.success(), "{}", stderr(&out));
    let importer = first(
        "SELECT importer_id FROM declarations GROUP BY importer_id ORDER BY COUNT(*) DESC LIMIT 1",
    );
    let hs = first(
        "SELECT substr(hs_code, 1, 6) FROM risk.declaration_scores WHERE valuation_deviation IS NOT NULL
         GROUP BY 1 ORDER BY COUNT(*) DESC LIMIT 1",
    );
    for report in aduana_reports::all() {
        let mut command = aduana();
        command.args([
            "report",
            report.name,
            "--warehouse",
            &wh.uri(),
            "--format",
            "ndjson",
        ]);
        // The parameters without a default.
        let mut params = Vec::new();
        for (name, value) in [("importer", &importer), ("hs", &hs)] {
            if report.params.iter().any(|p| p.name == name) {
                params.extend(["-p".to_string(), format!("{name}={value}")]);
            }
        }
        command.args(&params);
        let out = run(&mut command);
        assert!(out.status.success(), "{}: {}", report.name, stderr(&out));
        let rows: Vec<String> = stdout(&out).lines().map(str::to_string).collect();
        assert!(!rows.is_empty(), "{} returned no rows", report.name);
        // Keys in order of the first row (arrow's JSON writer keeps column
        // order; NULL values are left out, so check the first complete row).
        let keys: Vec<String> = rows[0]
            .trim_matches(['{', '}'])
            .split(",\"")
            .map(|kv| {
                kv.trim_start_matches('"')
                    .split('"')
                    .next()
                    .unwrap()
                    .to_string()
            })
            .collect();
        for key in &keys {
            assert!(
                report.columns.contains(key),
                "{}: undeclared column {key}",
                report.name
            );
        }
        let csv = run(aduana()
            .args([
                "report",
                report.name,
                "--warehouse",
                &wh.uri(),
                "--format",
                "csv",
            ])
            .args(&params));
        let header = stdout(&csv).lines().next().unwrap_or_default().to_string();
        assert_eq!(header, report.columns.join(","), "{}", report.name);
    }
}

#[test]
fn report_parameters_are_checked_and_bound_as_values() {
    let wh = modelled();
    let report = |args: &[&str]| {
        run(aduana()
            .args(["report", "--warehouse", &wh.uri()])
            .args(args))
    };
    let out = report(&["trader_profile"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("needs parameter importer"),
        "{}",
        stderr(&out)
    );
    let out = report(&["valuation_outliers", "-p", "days=soon"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("parameter days (int)"),
        "{}",
        stderr(&out)
    );
    let out = report(&["valuation_outliers", "-p", "limit"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "malformed name=value is a usage error"
    );
    let out = report(&["no_such_report"]);
    assert!(stderr(&out).contains("no report named no_such_report"));
    // A value that looks like SQL stays a value: no importer has that id.
    let out = report(&[
        "trader_profile",
        "-p",
        "importer=x' OR '1'='1",
        "--format",
        "csv",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).lines().count(),
        1,
        "header only: {}",
        stdout(&out)
    );
    // The limit binds.
    let out = report(&[
        "misclassification_suspects",
        "-p",
        "limit=2",
        "-p",
        "min_probability=0.1",
        "--format",
        "csv",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).lines().count(), 3, "{}", stdout(&out));
    // Without a model, scoring reports say what to do; others still run.
    let bare = generate(5_000, 2);
    let out = run(aduana().args(["report", "audit_candidates", "--warehouse", &bare.uri()]));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("needs a risk model: run `aduana refresh`"),
        "{}",
        stderr(&out)
    );
    let out = run(aduana().args([
        "report",
        "inspection_hit_rate_by_lane",
        "--warehouse",
        &bare.uri(),
    ]));
    assert!(out.status.success(), "{}", stderr(&out));
    let list = run(aduana().arg("reports"));
    assert!(
        stdout(&list).contains("trader_profile")
            && stdout(&list).contains("importer text (required)")
    );
}
