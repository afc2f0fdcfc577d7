//! Aduana on Apache Ballista: a scheduler and two executor processes on
//! 127.0.0.1, started from the `aduana` binary; every answer through the
//! cluster must equal the in-process engine's on the same warehouse.

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

/// A free loopback port (released for the process that will bind it).
fn free_port() -> u16 {
    free_ports::<1>()[0]
}

/// `N` distinct free loopback ports: all held until all are chosen (one
/// after the other, the OS may hand out a just-released port twice, and an
/// executor given the same port for Flight and gRPC exits at start).
fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: Vec<std::net::TcpListener> = (0..N)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    std::array::from_fn(|i| listeners[i].local_addr().unwrap().port())
}

fn wait_for_port(port: u16, what: &str, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited with {status} before listening on {port}");
        }
        assert!(Instant::now() < deadline, "{what} not listening on {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One scheduler and two executors over a warehouse; killed on drop.
pub(crate) struct Cluster {
    pub url: String,
    scheduler: Child,
    pub executors: Vec<Child>,
    _work: tempfile::TempDir,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in self.executors.iter_mut().chain([&mut self.scheduler]) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn has_files(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .any(|entry| {
            let path = entry.path();
            if path.is_dir() {
                has_files(&path)
            } else {
                true
            }
        })
}

impl Cluster {
    /// Where executor `i` writes its shuffle files.
    pub fn work_dir(&self, i: usize) -> std::path::PathBuf {
        self._work.path().join(format!("shuffle-{i}"))
    }

    /// Starts the cluster; `storage` are extra options every process gets
    /// (the same warehouse configuration everywhere).
    pub fn start(warehouse: &str, storage: &[&str], envs: &[(&str, &str)]) -> Cluster {
        let work = tempfile::tempdir().unwrap();
        let port = free_port();
        let spawn = |args: Vec<String>, log: &str| {
            let mut command = aduana();
            command
                .args(&args)
                .arg("--warehouse")
                .arg(warehouse)
                .args(storage)
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(work.path().join(log)).unwrap());
            for (k, v) in envs {
                command.env(k, v);
            }
            command.spawn().unwrap()
        };
        let mut scheduler = spawn(
            vec![
                "scheduler".into(),
                "--bind".into(),
                format!("127.0.0.1:{port}"),
                "--executor-timeout".into(),
                "15".into(),
            ],
            "scheduler.log",
        );
        wait_for_port(port, "the scheduler", &mut scheduler);
        let mut executors = Vec::new();
        for i in 0..2 {
            let [flight, grpc] = free_ports::<2>();
            let shuffle = work.path().join(format!("shuffle-{i}"));
            std::fs::create_dir_all(&shuffle).unwrap();
            let mut executor = spawn(
                vec![
                    "executor".into(),
                    "--scheduler".into(),
                    format!("127.0.0.1:{port}"),
                    "--port".into(),
                    flight.to_string(),
                    "--grpc-port".into(),
                    grpc.to_string(),
                    "--concurrent-tasks".into(),
                    "2".into(),
                    "--work-dir".into(),
                    shuffle.display().to_string(),
                ],
                &format!("executor-{i}.log"),
            );
            wait_for_port(flight, "an executor", &mut executor);
            executors.push(executor);
        }
        // Executors register on their first poll of the scheduler.
        std::thread::sleep(Duration::from_millis(500));
        Cluster {
            url: format!("df://127.0.0.1:{port}"),
            scheduler,
            executors,
            _work: work,
        }
    }
}

/// `aduana sql` as CSV, in-process or on `cluster`.
fn sql_csv(warehouse: &str, cluster: Option<&str>, extra: &[&str], sql: &str) -> String {
    let mut command = aduana();
    command
        .args([
            "sql",
            "--warehouse",
            warehouse,
            "--format",
            "csv",
            "-c",
            sql,
        ])
        .args(extra);
    if let Some(url) = cluster {
        command.args(["--cluster", url]);
    }
    let out = run(&mut command);
    assert!(
        out.status.success(),
        "{sql} on {cluster:?}: {}",
        stderr(&out)
    );
    stdout(&out)
}

/// Every Aduana function in one query, ordered on the item key.
const EVERY_FUNCTION: &str = "SELECT declaration_id, item_no,
       valuation_deviation(hs_code, origin_country, customs_value, quantity, quantity_unit,
                           net_mass_kg, declaration_date, importer_id) AS value_z,
       hs_misclassification_probability(hs_code, description, customs_value, quantity,
                                        origin_country, quantity_unit, net_mass_kg) AS p_wrong,
       origin_risk(hs_code, origin_country, export_country, preference_code, importer_id,
                   declaration_date) AS origin,
       revenue_at_risk(hs_code, origin_country, export_country, customs_value, quantity,
                       quantity_unit, net_mass_kg, declaration_date, description,
                       preference_code, duty_rate, duties_paid) AS at_stake,
       array_to_string(risk_reasons(hs_code, origin_country, export_country, customs_value,
                                    quantity, quantity_unit, net_mass_kg, declaration_date,
                                    description, preference_code, importer_id), '; ') AS reasons,
       hs_suggest(description) AS suggested,
       hs_valid(hs_code) AS valid, hs6(hs_code) AS h6, hs4(hs_code) AS h4, hs2(hs_code) AS h2,
       unit_value(customs_value, quantity) AS uv,
       robust_zscore(customs_value, 1000.0, 250.0) AS z
FROM declarations ORDER BY declaration_id, item_no";

/// The risk score and level from the view, and `robust_profile` with
/// partial aggregation on each executor (grouped, so several partitions
/// feed each group).
const SCORES_AND_PROFILES: [&str; 3] = [
    "SELECT declaration_id, item_no, risk, risk_level(risk) AS level
     FROM scored_items ORDER BY declaration_id, item_no",
    "SELECT h4, origin_country, items, p['n'] AS n, p['median'] AS median, p['mad'] AS mad,
            p['q1'] AS q1, p['q3'] AS q3
     FROM (SELECT hs4(hs_code) AS h4, origin_country, COUNT(*) AS items,
                  robust_profile(unit_value(customs_value, quantity)) AS p
           FROM declarations GROUP BY 1, 2)
     ORDER BY 1, 2",
    // One row per key over a join on a prefix: the engine's ranking window
    // and prefix join, which travel to the executors as the DataFusion
    // operators they replace.
    "SELECT declaration_id, item_no, code, duty_rate FROM (
         SELECT d.declaration_id, d.item_no, t.hs_code AS code, t.duty_rate,
                row_number() OVER (PARTITION BY d.declaration_id, d.item_no
                                   ORDER BY length(t.hs_code) DESC, t.hs_code) AS n
         FROM declarations d JOIN reference.tariff t ON starts_with(d.hs_code, t.hs_code))
     WHERE n = 1 ORDER BY declaration_id, item_no",
];

fn build_model(warehouse: &str, extra: &[&str]) {
    let out = run(aduana()
        .args(["model", "build", "--warehouse", warehouse])
        .args(extra));
    assert!(out.status.success(), "{}", stderr(&out));
}

/// Functions, the aggregate, a named report and the refresh job give the
/// same answers on the cluster as in-process; a model built after the
/// cluster started is the one the cluster computes with.
#[test]
fn cluster_answers_as_the_engine_does() {
    let warehouse = generate(6_000, 4);
    let uri = warehouse.uri();
    build_model(&uri, &[]);
    let cluster = Cluster::start(&uri, &[], &[]);
    let url = Some(cluster.url.as_str());

    let local = sql_csv(&uri, None, &[], EVERY_FUNCTION);
    assert_eq!(local.lines().count(), 6_001, "{}", &local[..200]);
    assert_eq!(sql_csv(&uri, url, &[], EVERY_FUNCTION), local);
    for query in SCORES_AND_PROFILES {
        let local = sql_csv(&uri, None, &[], query);
        assert!(local.lines().count() > 10, "{local}");
        assert_eq!(sql_csv(&uri, url, &[], query), local, "{query}");
    }
    // The scheduler plans the engine's operators, and they travel.
    let explain = sql_csv(
        &uri,
        url,
        &[],
        &format!("EXPLAIN {}", SCORES_AND_PROFILES[2]),
    );
    assert!(
        explain.contains("ShuffleWriterExec")
            && explain.contains("RankingWindowExec")
            && explain.contains("PrefixJoinExec"),
        "{explain}"
    );
    // More tasks than slots: stages queue and shuffle across executors.
    let query = SCORES_AND_PROFILES[1];
    assert_eq!(
        sql_csv(&uri, url, &["--target-partitions", "7"], query),
        sql_csv(&uri, None, &[], query)
    );

    // A named report with parameters.
    let report = |cluster: Option<&str>| {
        let mut command = aduana();
        command.args([
            "report",
            "audit_candidates",
            "--warehouse",
            &uri,
            "--format",
            "csv",
            "-p",
            "days=60",
            "-p",
            "limit=15",
        ]);
        if let Some(url) = cluster {
            command.args(["--cluster", url]);
        }
        let out = run(&mut command);
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
    };
    let local_report = report(None);
    assert_eq!(local_report.lines().count(), 16, "{local_report}");
    assert_eq!(report(url), local_report);

    // The Flight SQL server and the shell on the cluster.
    let query = "SELECT risk_level(risk) AS level, COUNT(*) AS n FROM scored_items \
                 GROUP BY 1 ORDER BY 1";
    let local_levels = sql_csv(&uri, None, &[], query);
    let mut serve = aduana();
    serve.args(["serve", "-w", &uri, "--cluster", &cluster.url]);
    let flight = crate::flight::FlightServer::spawn(serve);
    let served = runtime().block_on(async {
        let batches = crate::flight::fetch(flight.port(), query).await;
        let mut csv = Vec::new();
        let mut writer = arrow::csv::Writer::new(&mut csv);
        for batch in &batches {
            writer.write(batch).unwrap();
        }
        drop(writer);
        String::from_utf8(csv).unwrap()
    });
    assert_eq!(served, local_levels);
    drop(flight);
    let out = run_with_stdin(
        aduana().args([
            "shell",
            "-w",
            &uri,
            "--cluster",
            &cluster.url,
            "--format",
            "csv",
        ]),
        &format!("{query};\n"),
    );
    assert_eq!(stdout(&out), local_levels, "{}", stderr(&out));

    // A new model, built after the executors loaded theirs: plans carry
    // the version, executors load it.
    build_model(&uri, &["--min-cell-size", "60"]);
    let rebuilt = sql_csv(&uri, None, &[], EVERY_FUNCTION);
    assert_ne!(rebuilt, local, "the new model must change some answers");
    assert_eq!(sql_csv(&uri, url, &[], EVERY_FUNCTION), rebuilt);

    // The refresh job: the same warehouse copied twice, refreshed in-process
    // and on the cluster; the published risk tables are equal.
    let copies: Vec<tempfile::TempDir> = (0..2)
        .map(|_| {
            let dir = tempfile::tempdir().unwrap();
            copy_dir(warehouse.path(), dir.path());
            dir
        })
        .collect();
    let published = |dir: &Path, cluster: Option<&str>| {
        let root = dir.display().to_string();
        let mut command = aduana();
        command.args(["refresh", "--warehouse", &root]);
        if let Some(url) = cluster {
            command.args(["--cluster", url]);
        }
        let out = run(&mut command);
        assert!(out.status.success(), "{}", stderr(&out));
        [
            "SELECT * FROM risk.declaration_scores ORDER BY declaration_id, item_no",
            "SELECT * FROM risk.trader_risk ORDER BY year, month, importer_id",
        ]
        .map(|q| sql_csv(&root, None, &[], q))
    };
    // The copies' cluster reads its own copy: start one on it.
    let local_tables = published(copies[0].path(), None);
    drop(cluster);
    let cluster = Cluster::start(&copies[1].path().display().to_string(), &[], &[]);
    let cluster_tables = published(copies[1].path(), Some(&cluster.url));
    assert!(local_tables[0].lines().count() > 6_000);
    assert!(local_tables[1].lines().count() > 10);
    // Scores are per item; trader risk sums them as decimals, so the order
    // in which the cluster's partial aggregates meet does not change a digit.
    assert_eq!(cluster_tables[0], local_tables[0]);
    assert_eq!(cluster_tables[1], local_tables[1]);
    // The plans really are distributed: stages joined by shuffles.
    let explain = sql_csv(
        &copies[1].path().display().to_string(),
        Some(&cluster.url),
        &[],
        &format!("EXPLAIN {}", SCORES_AND_PROFILES[1]),
    );
    assert!(explain.contains("ShuffleWriterExec"), "{explain}");
}

/// Issue 22: Ballista 55 never finished a UNION with a table that has no
/// files (`risk.rejects` before any reject) or a literal row; the
/// scheduler now plans such leaves as memory scans (see the cluster
/// crate's `union_leaves`). Each query runs under a deadline, so a hang
/// fails the test.
#[test]
fn a_union_with_an_empty_table_answers_on_the_cluster() {
    let warehouse = generate(2_000, 2);
    let uri = warehouse.uri();
    let refreshed = run(aduana().args(["refresh", "-w", &uri]));
    assert!(refreshed.status.success(), "{}", stderr(&refreshed));
    assert!(
        !has_files(&warehouse.path().join("risk/rejects")),
        "the test needs an empty risk.rejects"
    );
    let cluster = Cluster::start(&uri, &[], &[]);
    // An empty table, and a literal row: each was a union branch that
    // Ballista's per-task restriction turned into another operator, which
    // left the job waiting forever.
    for sql in [
        "SELECT u.year, COUNT(*) AS n FROM (SELECT year FROM risk.rejects \
         UNION ALL SELECT year FROM risk.declaration_scores) u GROUP BY u.year ORDER BY 1",
        "SELECT u.year, COUNT(*) AS n FROM (SELECT 2001 AS year \
         UNION ALL SELECT year FROM risk.declaration_scores) u GROUP BY u.year ORDER BY 1",
    ] {
        let child = aduana()
            .args(["sql", "--warehouse", &uri, "--format", "csv", "-c", sql])
            .args(["--cluster", &cluster.url])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id();
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = sender.send(child.wait_with_output());
        });
        let out = match receiver.recv_timeout(std::time::Duration::from_secs(90)) {
            Ok(out) => out.unwrap(),
            Err(_) => {
                let _ = std::process::Command::new("kill")
                    .arg(pid.to_string())
                    .status();
                panic!("{sql}: did not answer in 90 s on the cluster");
            }
        };
        assert!(out.status.success(), "{sql}: {}", stderr(&out));
        let local = sql_csv(&uri, None, &[], sql);
        assert_eq!(
            stdout(&out),
            local,
            "{sql}: cluster and in-process answers differ"
        );
        assert!(local.lines().count() >= 2, "{local}");
    }
    // A memory table of the client (what is published) travels with the
    // plan: the cluster answers with the client's rows.
    let sql = "SELECT run_id, model_version, scored FROM risk.publication";
    let local = sql_csv(&uri, None, &[], sql);
    assert_eq!(local.lines().count(), 2, "{local}");
    assert_eq!(sql_csv(&uri, Some(&cluster.url), &[], sql), local);
}

/// Unknown functions fail with their name: one the client does not know
/// (a SQL typo), and one only the client knows (the cluster cannot run it).
#[test]
fn unknown_functions_and_unbounded_joins_are_refused_by_name() {
    let warehouse = generate(2_000, 2);
    let uri = warehouse.uri();
    build_model(&uri, &[]);
    let cluster = Cluster::start(&uri, &[], &[]);

    let out = run(aduana().args([
        "sql",
        "--warehouse",
        &uri,
        "--cluster",
        &cluster.url,
        "-c",
        "SELECT no_such_function(hs_code) FROM declarations",
    ]));
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no_such_function"),
        "{}",
        stderr(&out)
    );

    let rt = runtime();
    rt.block_on(async {
        let options = aduana_engine::EngineOptions {
            cluster: Some(aduana_engine::ClusterTarget {
                url: cluster.url.clone(),
                connector: aduana_cluster::connector(),
            }),
            ..Default::default()
        };
        let session = aduana_engine::Session::open(open(&uri).await.unwrap(), &options)
            .await
            .unwrap();
        // A function registered in this client only.
        let shout = datafusion::logical_expr::create_udf(
            "client_only_upper",
            vec![arrow::datatypes::DataType::Utf8],
            arrow::datatypes::DataType::Utf8,
            datafusion::logical_expr::Volatility::Immutable,
            std::sync::Arc::new(|args: &[datafusion::logical_expr::ColumnarValue]| {
                Ok(args[0].clone())
            }),
        );
        session.context().register_udf(shout);
        let error = session
            .context()
            .sql("SELECT client_only_upper(hs_code) FROM declarations")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("client_only_upper"), "{error}");
        assert!(error.contains("not known"), "{error}");
    });

    // The scheduler plans with the engine's guards: a join without an
    // equality condition too large to finish is refused by name, not
    // shipped to the executors (2,000^3 rows held for the fourth input; a
    // condition, so the count cannot come from statistics).
    let out = run(aduana().args([
        "sql",
        "--warehouse",
        &uri,
        "--cluster",
        &cluster.url,
        "-c",
        "SELECT count(*) FROM declarations a, declarations b, declarations c, declarations d
         WHERE a.item_no + b.item_no + c.item_no + d.item_no < 0",
    ]));
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("a join without an equality condition"),
        "{}",
        stderr(&out)
    );

    // A scheduler that is not there is named at once.
    let out = run(aduana().args([
        "sql",
        "--warehouse",
        &uri,
        "--cluster",
        &format!("df://127.0.0.1:{}", free_port()),
        "-c",
        "SELECT 1",
    ]));
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no Ballista scheduler answers"),
        "{}",
        stderr(&out)
    );
}

/// An executor killed in the middle of a query: the answer is right or
/// the error is clear; never a wrong answer, never a hang.
#[test]
fn killed_executor_never_gives_a_wrong_answer() {
    let warehouse = generate(60_000, 6);
    let uri = warehouse.uri();
    build_model(&uri, &[]);
    let query = "SELECT importer_id, COUNT(*) AS items, ROUND(SUM(risk), 6) AS risk
                 FROM scored_items GROUP BY importer_id ORDER BY importer_id";
    let local = sql_csv(&uri, None, &[], query);
    let mut cluster = Cluster::start(&uri, &[], &[]);
    let mut client = aduana()
        .args([
            "sql",
            "--warehouse",
            &uri,
            "--cluster",
            &cluster.url,
            "--format",
            "csv",
            "--target-partitions",
            "8",
            "-c",
            query,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Kill executor 0 once it has written shuffle output of the first stage:
    // the later stage needs those files.
    let shuffle = cluster.work_dir(0);
    let deadline = Instant::now() + Duration::from_secs(120);
    while !has_files(&shuffle) {
        assert!(
            Instant::now() < deadline,
            "executor 0 wrote no shuffle file"
        );
        assert!(
            client.try_wait().unwrap().is_none(),
            "the query ended before executor 0 wrote shuffle output"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        client.try_wait().unwrap().is_none(),
        "the query ended before the kill"
    );
    let victim = &mut cluster.executors[0];
    victim.kill().unwrap();
    victim.wait().unwrap();
    let started = Instant::now();
    let out = loop {
        if client.try_wait().unwrap().is_some() {
            break client.wait_with_output().unwrap();
        }
        if started.elapsed() > Duration::from_secs(240) {
            let _ = client.kill();
            panic!("the query hung after an executor was killed");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    eprintln!(
        "after the kill: {} in {:?}: {}",
        out.status,
        started.elapsed(),
        stderr(&out).trim()
    );
    if out.status.success() {
        assert_eq!(stdout(&out), local, "a wrong answer after a lost executor");
    } else {
        let error = stderr(&out);
        assert!(!error.trim().is_empty());
        assert!(
            error.to_lowercase().contains("executor") || error.contains("job"),
            "unclear error: {error}"
        );
    }
    // The cluster keeps working on the surviving executor.
    assert_eq!(sql_csv(&uri, Some(&cluster.url), &[], query), local);
}

/// Executors read an `s3://` warehouse with the same storage options as the
/// client (moto on 127.0.0.1).
#[test]
fn cluster_reads_an_s3_warehouse() {
    let Some(python) = python_with("moto") else {
        return;
    };
    let warehouse = generate(3_000, 2);
    build_model(&warehouse.uri(), &[]);
    let server = start_moto(&python);
    upload(&python, &server, warehouse.path(), "customs", "wh");
    let envs = [
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
    ];
    let storage = [
        "--s3-endpoint",
        server.endpoint.as_str(),
        "--s3-path-style",
        "--s3-allow-http",
    ];
    let cluster = Cluster::start("s3://customs/wh", &storage, &envs);
    let sql = |cluster: Option<&str>, query: &str| {
        let mut command = aduana();
        command
            .args([
                "sql",
                "--warehouse",
                "s3://customs/wh",
                "--format",
                "csv",
                "-c",
                query,
            ])
            .args(storage)
            .envs(envs);
        if let Some(url) = cluster {
            command.args(["--cluster", url]);
        }
        let out = run(&mut command);
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
    };
    for query in [EVERY_FUNCTION, SCORES_AND_PROFILES[1]] {
        let local = sql(None, query);
        assert!(local.lines().count() > 10);
        assert_eq!(sql(Some(&cluster.url), query), local);
    }
}
