//! `aduana serve`: the real binary on 127.0.0.1, driven by real clients:
//! ADBC and pyarrow.flight (Python), SQLAlchemy through flightsql-dbapi,
//! and arrow-flight's own Flight SQL client (Rust) for limits, health and
//! shutdown.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use arrow_flight::sql::client::FlightSqlServiceClient;
use futures::TryStreamExt;
use tonic::Code;
use tonic::transport::Channel;

use crate::model::modelled;
use crate::support::*;

const USER: &str = "analyst";
const PASSWORD: &str = "s3cret pass";
const TOKEN: &str = "tok-bi-0123456789";

/// `aduana serve` on a free loopback port, with its log; killed on drop.
pub(crate) struct FlightServer {
    child: Child,
    port: u16,
    log: Arc<Mutex<Vec<String>>>,
}

impl FlightServer {
    fn start(wh: &TestWarehouse, extra: &[&str]) -> FlightServer {
        let mut command = aduana();
        command.args(["serve", "-w", &wh.uri()]).args(extra);
        FlightServer::spawn(command)
    }

    /// Starts `command` (an `aduana serve` with its warehouse) on a free port
    /// with the test users.
    pub(crate) fn spawn(mut command: Command) -> FlightServer {
        let mut child = command
            .args(["--addr", "127.0.0.1:0"])
            .env("ADUANA_FLIGHT_USERS", format!("{USER}:{PASSWORD},other:pw"))
            .env("ADUANA_FLIGHT_TOKENS", format!("{TOKEN}=superset"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (port_tx, port_rx) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let lines = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                // Logged before the port is handed over: a test that reads
                // the log right after start sees the listening line.
                let port = line.split("listening addr=").nth(1).map(|rest| {
                    let address = rest.split_whitespace().next().unwrap_or("");
                    address
                        .rsplit(':')
                        .next()
                        .and_then(|p| p.parse::<u16>().ok())
                });
                lines.lock().unwrap().push(line);
                if let Some(port) = port {
                    let _ = port_tx.send(port);
                }
            }
        });
        let port = port_rx
            .recv_timeout(Duration::from_secs(120))
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("server did not start: {:?}", log.lock().unwrap()));
        FlightServer { child, port, log }
    }

    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    fn uri(&self) -> String {
        format!("grpc://127.0.0.1:{}", self.port)
    }

    pub(crate) fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// SIGTERM, then the exit status (within `limit`).
    pub(crate) fn terminate(&mut self, limit: Duration) -> ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "server still running after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for FlightServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The SQLAlchemy < 2 environment (`.venv-sqla`, made by `.ci/run`).
fn python_sqlalchemy() -> Option<PathBuf> {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv-sqla/bin/python");
    let ok = Command::new(&python)
        .args(["-c", "import flightsql, sqlalchemy"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some(python);
    }
    if std::env::var("ADUANA_REQUIRE_PYTHON").is_ok_and(|v| v == "1") {
        panic!(".venv-sqla with flightsql-dbapi is required (ADUANA_REQUIRE_PYTHON=1)");
    }
    eprintln!("SKIPPED: no .venv-sqla; run .ci/run to create it");
    None
}

fn script(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/flight")
        .join(name)
        .display()
        .to_string()
}

fn run_script(python: &Path, name: &str, args: &[String]) -> String {
    let out = Command::new(python)
        .arg(script(name))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{name} failed:\n{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    let text = stdout(&out);
    assert!(text.contains("all ok"), "{text}");
    text
}

/// Values the clients must see, computed by the engine in-process.
fn expected(wh: &TestWarehouse) -> String {
    runtime().block_on(async {
        let s = session(&wh.uri()).await;
        let origin = query_text(
            &s,
            "SELECT origin_country FROM declarations GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1",
        )
        .await;
        let origin = origin.lines().nth(3).unwrap().trim_matches(|c| c == '|' || c == ' ');
        let top_hs = query_text(
            &s,
            "SELECT hs_code FROM declarations GROUP BY hs_code ORDER BY count(*) DESC, hs_code LIMIT 3",
        )
        .await;
        let top_hs: Vec<String> = top_hs
            .lines()
            .skip(3)
            .filter(|l| l.starts_with('|'))
            .map(|l| format!("{:?}", l.trim_matches(|c| c == '|' || c == ' ')))
            .collect();
        format!(
            r#"{{"version": "{}", "items": {}, "distinct_hs6": {}, "risky": {}, "over_1000": {}, "over_50000": {},
                "origin": "{origin}", "from_origin": {}, "months": {}, "top_hs": [{}]}}"#,
            env!("CARGO_PKG_VERSION"),
            query_i64(&s, "SELECT count(*) FROM declarations").await,
            query_i64(&s, "SELECT count(DISTINCT hs6(hs_code)) FROM declarations").await,
            query_i64(&s, "SELECT count(*) FROM scored_items WHERE risk > 0.5").await,
            query_i64(&s, "SELECT count(*) FROM declarations WHERE customs_value > 1000").await,
            query_i64(&s, "SELECT count(*) FROM declarations WHERE customs_value > 50000").await,
            query_i64(
                &s,
                &format!("SELECT count(*) FROM declarations WHERE origin_country = '{origin}'")
            )
            .await,
            query_i64(
                &s,
                "SELECT count(*) FROM (SELECT DISTINCT date_trunc('month', declaration_date) FROM declarations)"
            )
            .await,
            top_hs.join(", ")
        )
    })
}

#[test]
fn adbc_client_queries_parameters_metadata_and_auth() {
    let Some(python) = python_with("adbc_driver_flightsql") else {
        return;
    };
    let wh = modelled();
    let server = FlightServer::start(wh, &[]);
    let out = run_script(
        &python,
        "adbc_client.py",
        &[
            server.uri(),
            USER.into(),
            PASSWORD.into(),
            TOKEN.into(),
            expected(wh),
        ],
    );
    assert!(out.contains("ok large result rows"), "{out}");
    let log = server.log();
    // One line per query, with the user, rows and bytes.
    let big = log
        .lines()
        .find(|l| l.contains("status=ok") && l.contains("CROSS JOIN (VALUES"))
        .unwrap_or_else(|| panic!("no log line for the large query:\n{log}"));
    assert!(big.contains(&format!("user={USER}")), "{big}");
    assert!(
        big.contains(&format!("rows={}", wh.summary.rows * 5)),
        "{big}"
    );
    assert!(log.contains("user=superset"), "{log}");
    assert!(!log.contains(PASSWORD), "the log must not show passwords");
}

#[test]
fn jdbc_call_sequence_and_refusals_with_pyarrow() {
    let Some(python) = python_sqlalchemy() else {
        return;
    };
    let wh = modelled();
    let server = FlightServer::start(wh, &[]);
    let scratch = tempfile::tempdir().unwrap();
    let forbidden = scratch.path().join("written.csv");
    run_script(
        &python,
        "jdbc_sequence.py",
        &[
            "127.0.0.1".into(),
            server.port.to_string(),
            USER.into(),
            PASSWORD.into(),
            forbidden.display().to_string(),
            expected(wh),
        ],
    );
    assert!(!forbidden.exists(), "COPY wrote a file on the server");
    let log = server.log();
    assert!(log.contains("code=PermissionDenied"), "{log}");
    assert!(log.contains("sql=\"DROP TABLE declarations\""), "{log}");
}

#[test]
fn sqlalchemy_inspects_through_flightsql_dbapi() {
    let Some(python) = python_sqlalchemy() else {
        return;
    };
    let wh = modelled();
    let server = FlightServer::start(wh, &[]);
    run_script(
        &python,
        "sqlalchemy_inspect.py",
        &[
            "127.0.0.1".into(),
            server.port.to_string(),
            USER.into(),
            PASSWORD.into(),
            wh.summary.rows.to_string(),
        ],
    );
}

/// A channel to the server at `port` on loopback.
async fn channel(port: u16) -> Channel {
    Channel::from_shared(format!("http://127.0.0.1:{port}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

pub(crate) async fn rust_client(port: u16) -> FlightSqlServiceClient<Channel> {
    let mut client = FlightSqlServiceClient::new(channel(port).await);
    client.handshake(USER, PASSWORD).await.unwrap();
    client
}

/// Runs `sql` on the server at `port` as the test user and collects the
/// result.
pub(crate) async fn fetch(port: u16, sql: &str) -> Vec<arrow::array::RecordBatch> {
    let mut client = rust_client(port).await;
    let info = client.execute(sql.into(), None).await.unwrap();
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    client
        .do_get(ticket)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap()
}

fn status_of(error: impl std::fmt::Display) -> (Code, String) {
    // The Flight SQL client reports statuses inside ArrowError text.
    let text = error.to_string();
    let code = [
        Code::DeadlineExceeded,
        Code::ResourceExhausted,
        Code::PermissionDenied,
        Code::Unauthenticated,
        Code::InvalidArgument,
        Code::NotFound,
        Code::Cancelled,
    ]
    .into_iter()
    .find(|code| text.contains(code.description()))
    .unwrap_or(Code::Unknown);
    (code, text)
}

/// Runs for hours, a batch at a time (so a cancelled run stops at once).
const SLOW: &str = "SELECT count(*) FROM generate_series(1, 1000000000000) WHERE value % 7 = 3";

#[test]
fn limits_health_and_graceful_shutdown() {
    let wh = modelled();
    let mut server = FlightServer::start(
        wh,
        &[
            "--query-timeout",
            "2",
            "--max-concurrent-queries",
            "1",
            "--query-memory",
            "1M",
            "--grace",
            "1",
        ],
    );
    let port = server.port;
    runtime().block_on(async {
        let mut client = rust_client(port).await;

        // Health check, no credentials needed.
        let mut health = tonic_health::pb::health_client::HealthClient::new(channel(port).await);
        let reply = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(reply.status, 1, "SERVING");

        // A query past the time limit is stopped.
        let started = Instant::now();
        let info = client.execute(SLOW.into(), None).await.unwrap();
        let ticket = info.endpoint[0].ticket.clone().unwrap();
        let result: Result<Vec<_>, _> = match client.do_get(ticket).await {
            Ok(stream) => stream.try_collect().await,
            Err(e) => Err(e),
        };
        let (code, text) = status_of(result.unwrap_err());
        assert_eq!(code, Code::DeadlineExceeded, "{text}");
        assert!(text.contains("time limit"), "{text}");
        assert!(started.elapsed() < Duration::from_secs(30));

        // Over the memory limit: a clean RESOURCE_EXHAUSTED.
        let info = client
            .execute(
                "SELECT array_agg(description) FROM declarations".into(),
                None,
            )
            .await
            .unwrap();
        let ticket = info.endpoint[0].ticket.clone().unwrap();
        let result: Result<Vec<_>, _> = match client.do_get(ticket).await {
            Ok(stream) => stream.try_collect().await,
            Err(e) => Err(e),
        };
        let (code, text) = status_of(result.unwrap_err());
        assert_eq!(code, Code::ResourceExhausted, "{text}");

        // One query at a time: a second is refused while the first runs.
        let first = client.execute(SLOW.into(), None).await.unwrap();
        let mut running = client
            .do_get(first.endpoint[0].ticket.clone().unwrap())
            .await
            .unwrap();
        let second = client.execute("SELECT 1".into(), None).await.unwrap();
        let error = client
            .do_get(second.endpoint[0].ticket.clone().unwrap())
            .await
            .unwrap_err();
        let (code, text) = status_of(error);
        assert_eq!(code, Code::ResourceExhausted, "{text}");
        assert!(text.contains("--max-concurrent-queries"), "{text}");
        let _ = running.try_next().await;
        drop(running);

        // CancelFlightInfo stops a running query: its stream ends CANCELLED.
        let info = client.execute(SLOW.into(), None).await.unwrap();
        let stream = client
            .do_get(info.endpoint[0].ticket.clone().unwrap())
            .await
            .unwrap();
        let reader = tokio::spawn(async move { stream.try_collect::<Vec<_>>().await });
        tokio::time::sleep(Duration::from_millis(300)).await;
        let started = Instant::now();
        let body = arrow_flight::CancelFlightInfoRequest { info: Some(info) };
        let results: Vec<_> = client
            .do_action(arrow_flight::Action {
                r#type: "CancelFlightInfo".into(),
                body: prost::Message::encode_to_vec(&body).into(),
            })
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        let reply: arrow_flight::CancelFlightInfoResult =
            prost::Message::decode(results[0].body.clone()).unwrap();
        assert_eq!(reply.status, arrow_flight::CancelStatus::Cancelled as i32);
        let (code, text) = status_of(reader.await.unwrap().unwrap_err());
        assert_eq!(code, Code::Cancelled, "{text}");
        assert!(started.elapsed() < Duration::from_secs(5));
    });

    // SIGTERM with a query running: cancelled after the grace period, and
    // the server exits cleanly.
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        runtime().block_on(async {
            let mut client = rust_client(port).await;
            let info = client.execute(SLOW.into(), None).await.unwrap();
            let stream = client
                .do_get(info.endpoint[0].ticket.clone().unwrap())
                .await
                .unwrap();
            tx.send(()).unwrap();
            let _ = stream.try_collect::<Vec<_>>().await;
        })
    });
    rx.recv_timeout(Duration::from_secs(30)).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let status = server.terminate(Duration::from_secs(20));
    assert!(status.success(), "{status:?}\n{}", server.log());
    let log = server.log();
    assert!(log.contains("shutting down running_queries=1"), "{log}");
    assert!(log.contains("stopped"), "{log}");
}

/// The error of running `sql` (planning or fetching), as a status.
async fn failure(client: &mut FlightSqlServiceClient<Channel>, sql: &str) -> (Code, String) {
    let info = match client.execute(sql.into(), None).await {
        Ok(info) => info,
        Err(e) => return status_of(e),
    };
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    let result: Result<Vec<_>, _> = match client.do_get(ticket).await {
        Ok(stream) => stream.try_collect().await,
        Err(e) => Err(e),
    };
    status_of(result.expect_err(&format!("{} must fail", &sql[..sql.len().min(60)])))
}

/// Issue 17's attacks by a logged-in user: SQL nested thousands deep,
/// values and joins too large for memory, queries planned and never
/// fetched. Each gets a clear error with its gRPC code, and the server
/// keeps answering.
#[test]
fn attacks_by_a_logged_in_user_fail_cleanly_and_the_server_lives() {
    let wh = modelled();
    let server = FlightServer::start(
        wh,
        &["--max-concurrent-queries", "2", "--query-memory", "256M"],
    );
    let port = server.port;
    runtime().block_on(async {
        let mut client = rust_client(port).await;
        let chain = |op: &str, n: usize| format!("SELECT {}", vec!["1"; n].join(op));
        let ctes = {
            let mut sql = String::from("WITH t0 AS (SELECT 1 AS x)");
            for i in 1..1000 {
                sql.push_str(&format!(", t{i} AS (SELECT x + 1 AS x FROM t{})", i - 1));
            }
            sql + " SELECT x FROM t999"
        };
        let deep = [
            chain("+", 2_000),
            chain("+", 500_000),
            chain(" OR ", 3_000),
            chain(" AND ", 3_000),
            chain(" || ", 3_000),
            vec!["SELECT 1"; 5_000].join(" UNION ALL "),
            ctes,
        ];
        for sql in &deep {
            let (code, text) = failure(&mut client, sql).await;
            assert_eq!(code, Code::InvalidArgument, "{}: {text}", &sql[..40]);
            assert!(text.contains("deep"), "{}: {text}", &sql[..40]);
        }
        let (code, text) = failure(&mut client, &chain("+", 1 << 20)).await;
        assert_eq!(code, Code::InvalidArgument, "{text}");
        assert!(text.contains("bytes"), "{text}");

        let tables: Vec<String> = (0..20)
            .map(|i| format!("reference.trade_remedies r{i}"))
            .collect();
        for sql in [
            // (count(*) alone is answered from the row counts, not run.)
            format!("SELECT max(r0.valid_to) FROM {}", tables.join(", ")),
            "SELECT length(repeat('x', 2000000000))".to_string(),
            "SELECT cardinality(range(1, 1500000000))".to_string(),
        ] {
            let (code, text) = failure(&mut client, &sql).await;
            assert_eq!(code, Code::ResourceExhausted, "{sql}: {text}");
        }

        // Planned and never fetched: 4 per slot for one user, then refused;
        // another user still gets through, and fetching frees room.
        let mut tickets = Vec::new();
        let refused = loop {
            match client.execute("SELECT 1".into(), None).await {
                Ok(info) => tickets.push(info.endpoint[0].ticket.clone().unwrap()),
                Err(e) => break status_of(e),
            }
            assert!(tickets.len() <= 8, "more than 4 per slot kept");
        };
        assert_eq!(tickets.len(), 8);
        assert_eq!(refused.0, Code::ResourceExhausted, "{}", refused.1);
        assert!(refused.1.contains("waiting for DoGet"), "{}", refused.1);
        let mut other = FlightSqlServiceClient::new(channel(port).await);
        other.handshake("other", "pw").await.unwrap();
        other.execute("SELECT 2".into(), None).await.unwrap();
        for ticket in tickets {
            let _: Vec<_> = client
                .do_get(ticket)
                .await
                .unwrap()
                .try_collect()
                .await
                .unwrap();
        }
        client.execute("SELECT 3".into(), None).await.unwrap();

        // Password guessing: logged, and slowed after five failures.
        let mut guesser = FlightSqlServiceClient::new(channel(port).await);
        for i in 0..6 {
            let (code, text) = status_of(
                guesser
                    .handshake(USER, &format!("guess{i}"))
                    .await
                    .unwrap_err(),
            );
            assert_eq!(code, Code::Unauthenticated, "{text}");
        }
        let (code, text) = status_of(guesser.handshake(USER, PASSWORD).await.unwrap_err());
        assert_eq!(code, Code::ResourceExhausted, "{text}");
        assert!(text.contains("too many failed logins"), "{text}");
        tokio::time::sleep(Duration::from_millis(1_100)).await;
    });
    let log = server.log();
    let failures = log.lines().filter(|l| l.contains("login_failed")).count();
    assert_eq!(failures, 6, "{log}");
    assert!(
        log.contains(&format!(
            "login_failed peer=127.0.0.1 user={USER:?} call=\"Handshake\""
        )),
        "{log}"
    );
    // Alive and answering after all of it.
    let batches = runtime().block_on(fetch(port, "SELECT count(*) AS n FROM declarations"));
    assert_eq!(batches[0].num_rows(), 1);
}

#[test]
fn serve_refuses_open_access_off_loopback_and_missing_users() {
    let wh = modelled();
    let out = run(aduana().args([
        "serve",
        "-w",
        &wh.uri(),
        "--addr",
        "0.0.0.0:0",
        "--auth",
        "none",
    ]));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("only on a loopback address"),
        "{}",
        stderr(&out)
    );
    let out = run(aduana()
        .args(["serve", "-w", &wh.uri(), "--addr", "127.0.0.1:0"])
        .env_remove("ADUANA_FLIGHT_USERS"));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("ADUANA_FLIGHT_USERS"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn tls_with_adbc() {
    let Some(python) = python_with("adbc_driver_flightsql") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = crate::support::self_signed_certificate(dir.path());
    let wh = modelled();
    let server = FlightServer::start(
        wh,
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    assert!(server.log().contains("addr=grpc+tls://"));
    let script = r#"
import sys
import adbc_driver_flightsql.dbapi as flight_sql
import adbc_driver_manager
port, user, password, cert = sys.argv[1:5]
pem = open(cert).read()
kwargs = {"username": user, "password": password,
          "adbc.flight.sql.client_option.tls_root_certs": pem}
with flight_sql.connect(f"grpc+tls://localhost:{port}", db_kwargs=kwargs) as conn:
    cur = conn.cursor()
    cur.execute("SELECT count(*) FROM declarations")
    print("rows", cur.fetchone()[0])
try:
    with flight_sql.connect(f"grpc://localhost:{port}", db_kwargs={"username": user, "password": password}) as conn:
        conn.cursor().execute("SELECT 1")
    print("plaintext accepted")
except adbc_driver_manager.Error:
    print("plaintext refused")
"#;
    let out = Command::new(python)
        .args(["-c", script, &server.port.to_string(), USER, PASSWORD])
        .arg(&cert)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!("rows {}\nplaintext refused\n", wh.summary.rows)
    );
}
