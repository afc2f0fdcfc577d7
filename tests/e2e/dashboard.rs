//! The risk dashboard (`aduana serve --http`): HTTP answers from a plain
//! client, then every page in a real headless Chromium driven by
//! playwright-core (tests/dashboard/check.mjs), its numbers checked against
//! SQL over the same refreshed warehouse.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::json;

use crate::support::{TestWarehouse, aduana, generate, query, run, runtime, session};

/// `aduana serve --http` on a free loopback port, no Flight; killed on drop.
struct Dashboard {
    child: Child,
    port: u16,
    /// The server's log, sent when its standard error closes.
    log: mpsc::Receiver<Result<u16, String>>,
}

impl Dashboard {
    fn start(wh: &TestWarehouse, auth: &[&str]) -> Dashboard {
        let mut child = aduana()
            .args([
                "serve",
                "-w",
                &wh.uri(),
                "--http",
                "127.0.0.1:0",
                "--no-flight",
            ])
            .args(auth)
            .env("ADUANA_FLIGHT_USERS", "auditor:open sesame")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            let mut log = Vec::new();
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                let port = line
                    .split("dashboard listening url=")
                    .nth(1)
                    .and_then(|rest| rest.split("://").nth(1))
                    .and_then(|rest| rest.split_whitespace().next())
                    .and_then(|addr| addr.rsplit(':').next())
                    .and_then(|p| p.parse::<u16>().ok());
                log.push(line);
                if let Some(port) = port {
                    let _ = tx.send(Ok(port));
                }
            }
            let _ = tx.send(Err(log.join("\n")));
        });
        let port = match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(Ok(port)) => port,
            other => panic!("dashboard did not start: {other:?}"),
        };
        Dashboard {
            child,
            port,
            log: rx,
        }
    }

    /// Stops the server; its whole log.
    fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        match self.log.recv_timeout(Duration::from_secs(30)) {
            Ok(Err(log)) => log,
            other => panic!("no log: {other:?}"),
        }
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn base_tls(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// A GET: status, headers and body.
    fn get(&self, path: &str, authorization: Option<&str>) -> (u16, String, Vec<u8>) {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(120)))
            .unwrap();
        let auth = authorization
            .map(|a| format!("Authorization: {a}\r\n"))
            .unwrap_or_default();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{auth}\r\n"
        )
        .unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).unwrap();
        let split = response
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("an HTTP response");
        let head = String::from_utf8_lossy(&response[..split]).to_string();
        let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
        (status, head, response[split + 4..].to_vec())
    }
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A refreshed synthetic warehouse (model, scores, trader risk) with a
/// published selection on its busiest day of August.
fn refreshed() -> TestWarehouse {
    let wh = generate(40_000, 12);
    let out = run(aduana().args(["refresh", "-w", &wh.uri()]));
    assert!(
        out.status.success(),
        "refresh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(aduana().args([
        "select",
        "-w",
        &wh.uri(),
        "--date",
        "2026-08-03",
        "--capacity",
        "red=60,yellow=40",
        "--explore",
        "0.5",
    ]));
    assert!(
        out.status.success(),
        "select failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    wh
}

fn text(body: &[u8]) -> String {
    String::from_utf8_lossy(body).to_string()
}

/// The browser tests' tools: node, Debian's Chromium and playwright-core
/// (`npm ci --prefix tests/dashboard`); `None` skips unless
/// ADUANA_REQUIRE_BROWSER=1.
fn browser() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/dashboard");
    let chromium = std::env::var("ADUANA_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let node = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let ready =
        node && Path::new(&chromium).exists() && dir.join("node_modules/playwright-core").exists();
    if ready {
        return Some(dir.join("check.mjs"));
    }
    if std::env::var("ADUANA_REQUIRE_BROWSER").is_ok_and(|v| v == "1") {
        panic!(
            "the browser tests are required (ADUANA_REQUIRE_BROWSER=1): node, {chromium} and \
             tests/dashboard/node_modules (npm ci --prefix tests/dashboard) must be present"
        );
    }
    eprintln!("SKIPPED: no node, Chromium or playwright-core; .ci/run installs them");
    None
}

/// Where screenshots and downloads of a browser run are kept.
fn artifacts(name: &str) -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("test-artifacts/dashboard").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn node(script: &Path, args: &[&str]) {
    let out = Command::new("node")
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "browser check failed:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

#[test]
fn dashboard_pages_show_the_warehouse_numbers_in_a_browser() {
    let wh = refreshed();
    // Money is labelled with the warehouse's currency.
    std::fs::write(wh.path().join("aduana.toml"), "currency = \"GTQ\"\n").unwrap();
    let server = Dashboard::start(&wh, &["--auth", "none"]);
    let rt = runtime();
    let s = rt.block_on(session(&wh.uri()));
    // The first value of a query's result, as text.
    let one = |sql: &str| -> String {
        let batches = rt.block_on(query(&s, sql));
        let column = batches
            .iter()
            .find(|b| b.num_rows() > 0)
            .expect(sql)
            .column(0);
        arrow::util::display::array_value_to_string(column, 0).unwrap()
    };
    let window =
        "year * 12 + month - 1 > (SELECT MAX(year * 12 + month - 1) FROM risk.trader_risk) - 3";
    let top = one(&format!(
        "SELECT importer_id || '|' || CAST(round(SUM(expected_revenue_at_risk), 2) AS VARCHAR)
         FROM risk.trader_risk WHERE {window}
         GROUP BY importer_id ORDER BY SUM(expected_revenue_at_risk) DESC, importer_id LIMIT 1"
    ));
    let (top_importer, top_expected) = top.split_once('|').unwrap();
    let flagged_filter = "(risk_level <> 'low' OR valuation_deviation <= -2.0
        OR hs_misclassification_probability >= 0.5 OR origin_risk >= 0.5)";
    let product = one(
        "SELECT substr(hs_code, 1, 6) FROM risk.declaration_scores WHERE valuation_deviation <= -2.0
         GROUP BY 1 ORDER BY COUNT(*) DESC, 1 LIMIT 1",
    );
    let last_year = "declaration_date > (SELECT MAX(declaration_date) FROM declarations) - INTERVAL '12 months'";
    let expected = json!({
        "scored": one("SELECT scored FROM risk.publication").parse::<i64>().unwrap(),
        "model_version": one("SELECT model_version FROM risk.publication"),
        "offices": one(&format!("SELECT COUNT(DISTINCT COALESCE(office_code, '')) FROM declarations WHERE {last_year}")).parse::<i64>().unwrap(),
        "declarations": one("SELECT COUNT(*) FROM (SELECT DISTINCT year, month, declaration_id FROM risk.declaration_scores)").parse::<i64>().unwrap(),
        "top_importer": top_importer,
        "top_importer_name": one(&format!("SELECT MIN(name) FROM reference.traders WHERE importer_id = '{top_importer}'")),
        "top_expected": top_expected.parse::<f64>().unwrap(),
        "latest_importers": one("SELECT COUNT(*) FROM risk.trader_risk WHERE year * 12 + month - 1 = (SELECT MAX(year * 12 + month - 1) FROM risk.trader_risk)").parse::<i64>().unwrap(),
        "max_items": one(&format!("SELECT MAX(n) FROM (SELECT SUM(items) AS n FROM risk.trader_risk WHERE {window} GROUP BY importer_id)")).parse::<i64>().unwrap(),
        "candidates": one(&format!("SELECT COUNT(DISTINCT importer_id) FROM risk.trader_risk WHERE {window}")).parse::<i64>().unwrap(),
        "high_candidates": one(&format!("SELECT COUNT(DISTINCT importer_id) FROM risk.trader_risk WHERE {window} AND segment = 'high'")).parse::<i64>().unwrap(),
        "trader_flagged": one(&format!(
            "SELECT COUNT(*) FROM risk.declaration_scores WHERE importer_id = '{top_importer}' AND {flagged_filter}
               AND year * 12 + month - 1 > (SELECT MAX(year * 12 + month - 1) FROM risk.declaration_scores) - 12"
        )).parse::<i64>().unwrap(),
        "trader_inspections": one(&format!(
            "SELECT COUNT(*) FROM inspections WHERE declaration_id IN
               (SELECT declaration_id FROM declarations WHERE importer_id = '{top_importer}')"
        )).parse::<i64>().unwrap(),
        "random_inspected": one(
            "SELECT COUNT(*) FROM risk.selections s WHERE selected_by = 'random' AND EXISTS
               (SELECT 1 FROM inspections i WHERE i.declaration_id = s.declaration_id
                AND (i.item_no = s.item_no OR i.item_no IS NULL))"
        ).parse::<i64>().unwrap(),
        "product": product,
        "product_description": one(&format!("SELECT description FROM reference.hs_nomenclature WHERE hs_code = '{product}'")),
        "product_groups": one(&format!(
            "SELECT COUNT(*) FROM (SELECT DISTINCT COALESCE(origin_country, '(none)'), quantity_unit FROM declarations
             WHERE substr(hs_code, 1, 6) = '{product}' AND {last_year} AND customs_value > 0 AND quantity > 0)"
        )).parse::<i64>().unwrap(),
        "product_min_deviation": one(&format!(
            "SELECT round(MIN(valuation_deviation), 2) FROM risk.declaration_scores WHERE substr(hs_code, 1, 6) = '{product}'"
        )).parse::<f64>().unwrap(),
    });
    assert!(
        expected["trader_flagged"].as_i64().unwrap() > 0,
        "{expected}"
    );

    // Plain HTTP first: what any client gets.
    let (status, head, body) = server.get("/", None);
    assert_eq!(status, 200, "{}", text(&body));
    assert!(
        head.to_ascii_lowercase()
            .contains("content-security-policy: default-src 'none'")
    );
    assert!(!text(&body).contains("<script"), "pages carry no scripts");
    let (status, _, body) = server.get("/products/85x", None);
    assert_eq!(status, 400);
    assert!(
        text(&body).contains("&quot;85x&quot; is not an HS6 subheading"),
        "{}",
        text(&body)
    );
    let (status, _, body) = server.get("/traders/NOBODY-0", None);
    assert_eq!(status, 404);
    assert!(
        text(&body).contains("importer &quot;NOBODY-0&quot; has no published declaration items")
    );
    // Its audit files answer as its page does (issue 17: a 200 with an
    // empty file was served).
    for file in ["audit.csv", "audit.parquet"] {
        let (status, _, _) = server.get(&format!("/traders/NOBODY-0/{file}"), None);
        assert_eq!(status, 404, "{file}");
    }
    let (status, _, body) = server.get("/traders?sort=items;DROP", None);
    assert_eq!(status, 400);
    assert!(text(&body).contains("cannot sort by"));
    let (status, _, body) = server.get("/traders?months=0", None);
    assert_eq!(status, 400);
    assert!(text(&body).contains("months must be a whole number from 1 to 120"));
    let (status, _, _) = server.get("/nowhere", None);
    assert_eq!(status, 404);

    // The audit file is the report an analyst runs in the shell.
    let (status, head, csv) = server.get(&format!("/traders/{top_importer}/audit.csv"), None);
    assert_eq!(status, 200);
    assert!(
        head.contains(&format!(
            "attachment; filename=\"audit_{top_importer}.csv\""
        )),
        "{head}"
    );
    let shell = run(aduana().args([
        "report",
        "-w",
        &wh.uri(),
        "trader_flags",
        "-p",
        &format!("importer={top_importer}"),
        "--format",
        "csv",
    ]));
    assert!(shell.status.success(), "{}", text(&shell.stderr));
    assert_eq!(text(&csv), text(&shell.stdout));
    let lines = text(&csv).lines().count() as i64;
    assert_eq!(lines - 1, expected["trader_flagged"].as_i64().unwrap());
    let (status, _, parquet) = server.get(&format!("/traders/{top_importer}/audit.parquet"), None);
    assert_eq!(status, 200);
    let rows: usize = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        bytes::Bytes::from(parquet),
    )
    .unwrap()
    .build()
    .unwrap()
    .map(|b| b.unwrap().num_rows())
    .sum();
    assert_eq!(rows as i64, expected["trader_flagged"].as_i64().unwrap());

    // Then a real browser.
    let Some(script) = browser() else { return };
    let shots = artifacts("pages");
    let expected_file = wh.path().join("expected.json");
    std::fs::write(&expected_file, expected.to_string()).unwrap();
    node(
        &script,
        &[
            "pages",
            &server.base(),
            expected_file.to_str().unwrap(),
            shots.to_str().unwrap(),
        ],
    );
    for shot in [
        "overview",
        "traders",
        "traders-sorted",
        "traders-filtered",
        "trader",
        "products",
        "product",
    ] {
        assert!(
            shots.join(format!("{shot}.png")).exists(),
            "screenshot {shot}"
        );
    }
}

#[test]
fn dashboard_refuses_unauthenticated_access_when_auth_is_on() {
    let wh = generate(3_000, 3);
    let server = Dashboard::start(&wh, &["--auth", "basic"]);
    let (status, head, _) = server.get("/", None);
    assert_eq!(status, 401);
    assert!(
        head.contains("www-authenticate: Basic realm=\"Aduana\""),
        "{head}"
    );
    let (status, _, _) = server.get("/traders/x/audit.csv", None);
    assert_eq!(status, 401, "downloads are behind the same credentials");
    use base64::Engine as _;
    let basic = |user: &str, password: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        )
    };
    let (status, head, body) = server.get("/", Some(&basic("auditor", "wrong")));
    assert_eq!(status, 401);
    assert!(head.contains("content-type: text/html"), "{head}");
    assert!(text(&body).contains("invalid username or password"));

    // Without a refresh the overview still renders and says what to do.
    let (status, _, body) = server.get("/", Some(&basic("auditor", "open sesame")));
    assert_eq!(status, 200);
    assert!(text(&body).contains("aduana refresh"), "{}", text(&body));
    assert!(
        text(&body).contains("No selection is published yet"),
        "{}",
        text(&body)
    );

    // --auth none is refused off loopback, as for Flight SQL; and off
    // loopback the pages (and the password sent with each) need TLS.
    let out = run(aduana().args([
        "serve",
        "-w",
        &wh.uri(),
        "--http",
        "0.0.0.0:0",
        "--no-flight",
        "--auth",
        "none",
    ]));
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("--auth none is allowed only on a loopback address"));
    let out = run(aduana()
        .args([
            "serve",
            "-w",
            &wh.uri(),
            "--http",
            "0.0.0.0:0",
            "--no-flight",
        ])
        .env("ADUANA_FLIGHT_USERS", "auditor:open sesame"));
    assert!(!out.status.success());
    assert!(
        text(&out.stderr)
            .contains("off a loopback address the dashboard needs --tls-cert and --tls-key"),
        "{}",
        text(&out.stderr)
    );

    // HTTPS with the certificate Flight SQL uses.
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = crate::support::self_signed_certificate(dir.path());
    let https = Dashboard::start(
        &wh,
        &[
            "--auth",
            "basic",
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    // Plain HTTP to the TLS port gets no HTTP answer.
    let mut plain = TcpStream::connect(("127.0.0.1", https.port)).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    plain
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer);
    assert!(!text(&answer).starts_with("HTTP/"), "{}", text(&answer));

    let Some(script) = browser() else { return };
    node(
        &script,
        &[
            "auth",
            &server.base(),
            "auditor",
            "open sesame",
            artifacts("auth").to_str().unwrap(),
        ],
    );
    node(
        &script,
        &[
            "auth",
            &https.base_tls(),
            "auditor",
            "open sesame",
            artifacts("auth-tls").to_str().unwrap(),
        ],
    );
}

/// Issue 17: failed logins are logged with the peer and the user name
/// tried, guessing is slowed per peer, and every request gets an access
/// log line.
#[test]
fn failed_logins_are_logged_and_slowed_and_requests_logged() {
    use base64::Engine as _;
    let wh = generate(3_000, 3);
    let server = Dashboard::start(&wh, &["--auth", "basic"]);
    let basic = |user: &str, password: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        )
    };
    // The browser's first request carries no credentials: not a failure.
    for _ in 0..10 {
        assert_eq!(server.get("/", None).0, 401);
    }
    for _ in 0..5 {
        assert_eq!(server.get("/", Some(&basic("auditor", "guess"))).0, 401);
    }
    let (status, _, _) = server.get("/traders", Some(&basic("auditor", "again")));
    assert_eq!(status, 401);
    // Another user name from the same address is not slowed.
    assert_eq!(server.get("/", Some(&basic("root", "guess"))).0, 401);
    // Now refused without a check, even with the right password.
    let (status, _, body) = server.get("/", Some(&basic("auditor", "open sesame")));
    assert_eq!(status, 429, "{}", text(&body));
    assert!(
        text(&body).contains("too many failed logins"),
        "{}",
        text(&body)
    );
    std::thread::sleep(Duration::from_millis(1_100));
    let (status, _, _) = server.get("/", Some(&basic("auditor", "open sesame")));
    assert_eq!(status, 200);
    let log = server.stop();
    let failures: Vec<&str> = log.lines().filter(|l| l.contains("login_failed")).collect();
    assert_eq!(failures.len(), 7, "{log}");
    assert!(
        failures[0].contains("peer=127.0.0.1") && failures[0].contains("user=\"auditor\""),
        "{log}"
    );
    assert!(failures[5].contains("blocked_s=1"), "{log}");
    let requests: Vec<&str> = log.lines().filter(|l| l.contains(" http peer=")).collect();
    assert_eq!(requests.len(), 19, "{log}");
    assert!(
        requests.iter().any(|l| l.contains("user=\"auditor\"")
            && l.contains("path=\"/\"")
            && l.contains("status=200")),
        "{log}"
    );
    assert!(requests.iter().any(|l| l.contains("status=429")), "{log}");
}

/// The dashboard runs in-process only: with --cluster it is refused at
/// start with the reason, rather than hanging on a Ballista job.
/// Issue 22: the dashboard on a cluster (`serve --http --cluster`) serves
/// every page and download as the in-process one does. Three rounds: a
/// page once hung there intermittently (a UNION branch Ballista's task
/// restriction rewrote; see the cluster crate's `union_leaves`), and each
/// request has a deadline.
#[test]
fn dashboard_serves_every_page_on_a_cluster() {
    let wh = refreshed();
    let cluster = crate::cluster::Cluster::start(&wh.uri(), &[], &[]);
    let local = Dashboard::start(&wh, &["--auth", "none"]);
    let remote = Dashboard::start(&wh, &["--auth", "none", "--cluster", &cluster.url]);
    let (status, _, ranking) = local.get("/traders.csv", None);
    assert_eq!(status, 200);
    let ranking = text(&ranking);
    let importer = ranking
        .lines()
        .nth(1)
        .and_then(|row| row.split(',').next())
        .expect("a ranked importer")
        .to_string();
    let rt = runtime();
    let s = rt.block_on(session(&wh.uri()));
    let batches = rt.block_on(query(
        &s,
        "SELECT substr(hs_code, 1, 6) FROM risk.declaration_scores GROUP BY 1 ORDER BY COUNT(*) DESC, 1 LIMIT 1",
    ));
    let product = arrow::util::display::array_value_to_string(batches[0].column(0), 0).unwrap();
    let pages = [
        "/".to_string(),
        "/traders".into(),
        format!("/traders/{importer}"),
        "/products".into(),
        format!("/products/{product}"),
    ];
    let downloads = [
        "/traders.csv".to_string(),
        format!("/traders/{importer}/audit.csv"),
    ];
    for round in 0..3 {
        for page in &pages {
            let (status, _, body) = remote.get(page, None);
            assert_eq!(status, 200, "round {round}, {page}: {}", text(&body));
            let (_, _, expected) = local.get(page, None);
            let (shown, expected) = (numbers_of(&text(&body)), numbers_of(&text(&expected)));
            assert_eq!(shown.len(), expected.len(), "round {round}, {page}");
            for (a, b) in shown.iter().zip(&expected) {
                assert!(
                    same_as_shown(a, b),
                    "round {round}, {page}: the cluster's page shows {a} where the \
                     in-process one shows {b}"
                );
            }
        }
        for download in &downloads {
            let (status, _, body) = remote.get(download, None);
            assert_eq!(status, 200, "round {round}, {download}");
            let (_, _, expected) = local.get(download, None);
            assert_eq!(text(&body), text(&expected), "round {round}, {download}");
        }
    }
    assert!(ranking.contains(&importer));
}

/// Two numbers as a page shows them, equal but for the last digit shown
/// (a sum whose terms were added in another order, as the plans on a
/// cluster do, can round the other way: a chart's 382.5 against 382.6).
fn same_as_shown(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    let value = |t: &str| t.replace(',', "").parse::<f64>().ok();
    let decimals = |t: &str| t.split_once('.').map_or(0, |(_, d)| d.len());
    let unit = 10f64.powi(-(decimals(a).max(decimals(b)) as i32));
    matches!((value(a), value(b)), (Some(x), Some(y)) if (x - y).abs() <= unit * 1.0001)
}

/// The numbers a page shows, in order (what must agree between two
/// servers of the same warehouse, whatever else a page says).
fn numbers_of(page: &str) -> Vec<String> {
    page.split(|c: char| !(c.is_ascii_digit() || c == '.' || c == ','))
        .map(|t| t.trim_matches(|c| c == '.' || c == ','))
        .filter(|t| t.chars().any(|c| c.is_ascii_digit()))
        .map(str::to_string)
        .collect()
}
