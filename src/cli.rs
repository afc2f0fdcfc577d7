//! Command-line arguments: the subcommands and their options. Each command
//! runs in its own module (`sql`, `serve`, `model`, `refresh`, `cluster`,
//! `generate`, `check`, `select`, `demo`).

use std::io::IsTerminal;
use std::path::PathBuf;

use aduana_engine::output::Format;
use aduana_engine::{EngineOptions, Session, parse_size};
use aduana_warehouse::{OpenOptions, Partition, StorageConfig, Warehouse};
use clap::{Args, Parser, Subcommand};

pub type Error = Box<dyn std::error::Error + Send + Sync>;

#[derive(Parser)]
#[command(
    name = "aduana",
    version,
    about = "Customs risk analytics on Apache DataFusion",
    long_about = "Aduana finds the declarations and traders worth an audit in a customs \
                  warehouse of Parquet files (local or S3), with SQL.\n\n\
                  Start with `aduana demo`: it generates a sample warehouse with known fraud \
                  and runs a few reports on it.",
    after_help = "Exit codes: 0 success, 1 failure (the reason is printed on one line), 2 bad usage."
)]
pub struct Cli {
    /// Without a subcommand: the interactive shell on the warehouse in
    /// ADUANA_WAREHOUSE
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Generate the sample warehouse if absent, then run a tour of reports on it
    Demo(DemoArgs),
    /// Generate a synthetic warehouse with fraud and its ground truth
    Generate(GenerateArgs),
    /// The SQL shell: interactive at a terminal (\\? for help), or runs -c, -f
    /// or standard input, stopping at the first failing statement
    Shell(SqlArgs),
    /// Run SQL statements and meta commands non-interactively (as `shell -c/-f`)
    Sql(SqlArgs),
    /// Run a named report from queries/ with its parameters
    Report(ReportArgs),
    /// List the named reports and their parameters
    Reports,
    /// Import flat exports (Parquet or CSV with the contract's column names)
    /// into a monthly table, one file per month, checked before anything is
    /// written
    #[command(after_help = crate::import::IMPORT_HELP)]
    Import(crate::import::ImportArgs),
    /// Check a warehouse: files against the contract, rows against the rules
    /// the refresh scores by (sampled; --full reads all), duplicate keys
    Check(crate::check::CheckArgs),
    /// Serve the warehouse over Arrow Flight SQL (read-only) to BI tools:
    /// Superset, DBeaver, Tableau (JDBC), Power BI and Python (ADBC)
    #[command(after_help = SERVE_HELP)]
    Serve(ServeArgs),
    /// Build the risk model from the warehouse's history
    #[command(subcommand)]
    Model(ModelCommand),
    /// Select one day's items to control under the inspection capacity (model
    /// ranking plus random controls), published as risk.selections
    #[command(after_help = crate::select::SELECT_HELP)]
    Select(crate::select::SelectArgs),
    /// Select the month's post-clearance audits of importers (the blue lane)
    /// under the audit capacity, published as risk.audit_selections
    #[command(after_help = crate::select::AUDITS_HELP)]
    Audits(crate::select::AuditsArgs),
    /// Measure how well a risk score ranks known fraud (AUC, Pre/Rec/Rev at n%)
    Evaluate(EvaluateArgs),
    /// The nightly job: score new declarations, profile traders, publish the
    /// risk tables atomically
    #[command(after_help = REFRESH_HELP)]
    Refresh(RefreshArgs),
    /// Run an Apache Ballista scheduler that knows Aduana's functions; clients
    /// reach it with --cluster df://HOST:PORT
    #[command(after_help = CLUSTER_HELP)]
    Scheduler(SchedulerArgs),
    /// Run an Apache Ballista executor that knows Aduana's functions and reads
    /// the same warehouse
    #[command(after_help = CLUSTER_HELP)]
    Executor(ExecutorArgs),
}

const CLUSTER_HELP: &str = "A cluster: one scheduler, executors on any machines that reach the
warehouse (the same --warehouse and storage configuration everywhere):
  aduana scheduler --warehouse s3://bucket/wh --bind 0.0.0.0:50050
  aduana executor  --warehouse s3://bucket/wh --scheduler HOST:50050 \\
                   --bind-host THIS_HOST --concurrent-tasks 8 --memory-limit 16G \\
                   --work-dir /fast/disk/shuffle
  aduana sql --warehouse s3://bucket/wh --cluster df://HOST:50050 -c '...'
Every process loads the risk model a plan was made with (by version) from
the warehouse itself.";

#[derive(Args)]
pub struct ClusterArgs {
    /// Plan and run on this Ballista scheduler (`aduana scheduler`) instead
    /// of in this process
    #[arg(long, env = "ADUANA_CLUSTER", value_name = "df://HOST:PORT")]
    pub cluster: Option<String>,
}

#[derive(Args)]
pub struct SchedulerArgs {
    #[command(flatten)]
    pub warehouse: WarehouseArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Address to listen on for clients and executors
    #[arg(long, default_value = "127.0.0.1:50050", value_name = "HOST:PORT")]
    pub bind: std::net::SocketAddr,
    /// Seconds without a heartbeat after which an executor counts as dead
    /// and its tasks run elsewhere
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub executor_timeout: u64,
}

#[derive(Args)]
pub struct ExecutorArgs {
    #[command(flatten)]
    pub warehouse: WarehouseArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// The scheduler to serve
    #[arg(long, default_value = "127.0.0.1:50050", value_name = "HOST:PORT")]
    pub scheduler: String,
    /// Host to listen on, as other executors and clients reach it
    #[arg(long, default_value = "127.0.0.1", value_name = "HOST")]
    pub bind_host: String,
    /// Port of the Arrow Flight service that serves shuffle data and results
    #[arg(long, default_value_t = 50051)]
    pub port: u16,
    /// Port of the executor's gRPC service
    #[arg(long, default_value_t = 50052)]
    pub grpc_port: u16,
    /// Tasks run at once (default: the number of cores)
    #[arg(long, value_name = "N")]
    pub concurrent_tasks: Option<usize>,
    /// Where shuffle files are written (default: a temporary directory)
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
}

const REFRESH_HELP: &str =
    "What it does: finds the declaration partitions new or changed since the last
published run, rebuilds the risk model when asked, absent or older than
--model-max-age-days, scores those partitions into risk/declaration_scores/
(rejects, with the reason, into risk/rejects/), recomputes risk/trader_risk/
for the months rescored or referred to by new inspection files, writes a run manifest to risk/runs/, and publishes by rewriting
risk/_published.json last. Safe to re-run; one run at a time (risk/_lock).
Backtest: --as-of DAY works under risk/backtests/as_of=DAY/ with a model and
labels from before DAY; then `aduana evaluate --backtest DAY --score risk_score
--where \"declaration_date >= DATE 'DAY'\"`.
Exit codes:
  0  success (published, or already up to date, or dry run)
  1  failure while running (the reason is printed)
  2  bad usage
  3  another run holds the lock
  4  bad input: an unreadable, corrupt or contract-violating file, a bad option
  5  storage failure (after the object store's retries with backoff)";

#[derive(Args)]
pub struct RefreshArgs {
    #[command(flatten)]
    pub warehouse: WarehouseArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Also rescore every partition from this day's month on (YYYY-MM-DD)
    #[arg(long, value_name = "DATE", conflicts_with = "partitions")]
    pub since: Option<chrono::NaiveDate>,
    /// Also rescore these partitions: year=2026/month=11,...
    #[arg(long, value_delimiter = ',', value_parser = str::parse::<Partition>, value_name = "PARTITIONS")]
    pub partitions: Vec<Partition>,
    /// Rebuild the risk model first (and rescore everything with it)
    #[arg(long)]
    pub rebuild_model: bool,
    /// Rebuild the model when it is older than this many days
    #[arg(long, default_value_t = 30, value_name = "DAYS")]
    pub model_max_age_days: u32,
    /// Training window of a rebuilt model, in months
    #[arg(long, default_value_t = 12)]
    pub window_months: u32,
    /// Show what would be done, write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Backtest as if on this day (YYYY-MM-DD): model, trader histories and
    /// inspection labels from before it; kept under risk/backtests/
    #[arg(long, value_name = "DATE")]
    pub as_of: Option<chrono::NaiveDate>,
    /// Seconds after which another run's lock is taken over (a lock of a
    /// dead process on this host is taken over at once)
    #[arg(long, default_value_t = 21600, value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(300..))]
    pub lock_timeout: u64,
    /// Log lines on standard error: text (a progress bar on a terminal) or json
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
}

const SERVE_HELP: &str = "Credentials never go on the command line:
  ADUANA_FLIGHT_USERS=\"name:password,...\"   users for --auth basic
  ADUANA_FLIGHT_TOKENS=\"token=user,...\"      bearer tokens (--auth token, also accepted by basic)
  --auth-file FILE: TOML with [[users]] name, password or password_sha256 and
  [[tokens]] user, token or token_sha256.
Clients: grpc://HOST:PORT (grpc+tls:// with --tls-cert/--tls-key), e.g.
  JDBC  jdbc:arrow-flight-sql://HOST:PORT?user=U&password=P
  ADBC  adbc_driver_flightsql.dbapi.connect(\"grpc://HOST:PORT\", db_kwargs={\"username\": U, \"password\": P})
Every report is a table function (SELECT * FROM trader_profile('IMP00042')); reports
whose parameters all have defaults are also views in the `reports` schema.
SIGTERM or Ctrl-C: stop accepting calls, let running queries finish for --grace
seconds, cancel the rest. Health: the standard gRPC health service.
Dashboard: --http HOST:PORT serves the risk dashboard (HTML pages, read-only) with
the same credentials (Basic: the browser asks; or a bearer token); --no-flight
serves the dashboard alone.";

#[derive(Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub warehouse: WarehouseArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Address to listen on (port 0 picks a free port, printed at start)
    #[arg(long, default_value = "127.0.0.1:50051", value_name = "HOST:PORT")]
    pub addr: std::net::SocketAddr,
    /// Also serve the risk dashboard (HTML) on this address, read-only,
    /// with the same credentials (port 0 picks a free port, printed at start)
    #[arg(long, value_name = "HOST:PORT")]
    pub http: Option<std::net::SocketAddr>,
    /// Serve only the dashboard, no Flight SQL (needs --http)
    #[arg(long, requires = "http")]
    pub no_flight: bool,
    /// TLS certificate chain (PEM); with --tls-key, serves grpc+tls (and
    /// https for --http)
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM)
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// basic: users and passwords (Handshake gives a bearer token) and
    /// static tokens; token: static bearer tokens only; none: no
    /// credentials, only on a loopback address
    #[arg(long, default_value = "basic", value_parser = ["basic", "token", "none"])]
    pub auth: String,
    /// Users and tokens (TOML), in addition to ADUANA_FLIGHT_USERS and
    /// ADUANA_FLIGHT_TOKENS
    #[arg(long, env = "ADUANA_FLIGHT_AUTH_FILE", value_name = "FILE")]
    pub auth_file: Option<PathBuf>,
    /// Memory one query may use before spilling or failing
    #[arg(long, default_value = "2G", value_name = "SIZE")]
    pub query_memory: String,
    /// Queries running at once; more are refused (RESOURCE_EXHAUSTED)
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub max_concurrent_queries: usize,
    /// Seconds a query may run before it is stopped (DEADLINE_EXCEEDED)
    #[arg(long, default_value_t = 900, value_name = "SECONDS")]
    pub query_timeout: u64,
    /// Seconds running queries may take to finish after SIGTERM
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub grace: u64,
}

#[derive(Args)]
pub struct EvaluateArgs {
    #[command(flatten)]
    pub warehouse: WarehouseArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// The score: an SQL expression over the columns of declarations,
    /// higher meaning riskier, e.g. "origin_risk(hs_code, origin_country, export_country)"
    #[arg(long, value_name = "SQL", allow_hyphen_values = true)]
    pub score: String,
    /// Outcomes to measure against: inspections (inspected items, as an
    /// administration has them) or truth (the generator's ground truth)
    #[arg(long, default_value = "inspections", value_parser = ["inspections", "truth"])]
    pub labels: String,
    /// Inspection rates, percent of items, comma-separated
    #[arg(
        long,
        default_value = "1,2,5,10",
        value_delimiter = ',',
        value_name = "N,..."
    )]
    pub at: Vec<f64>,
    /// Measure only the items this SQL predicate over declarations keeps,
    /// e.g. "declaration_date >= DATE '2026-08-01'" (the months after the
    /// model's training window)
    #[arg(long = "where", value_name = "SQL", allow_hyphen_values = true)]
    pub filter: Option<String>,
    /// Count only this kind of fraud as fraud
    #[arg(long, value_parser = aduana_engine::evaluate::FRAUD_TYPES)]
    pub fraud_type: Option<String>,
    /// Measure the published scores of risk.declaration_scores (the score
    /// may use its columns: risk_score, valuation_deviation, ...); the
    /// default when a refresh has published scores
    #[arg(long)]
    pub published: bool,
    /// Measure a backtest's published scores (implies --published)
    #[arg(long, value_name = "DATE")]
    pub backtest: Option<chrono::NaiveDate>,
}

#[derive(Subcommand)]
pub(crate) enum ModelCommand {
    /// Learn reference price profiles from declarations (leaving out items
    /// inspections found fraudulent) and publish them as the current model
    Build(ModelBuildArgs),
}

#[derive(Args)]
pub struct ModelBuildArgs {
    #[command(flatten)]
    pub warehouse: WarehouseArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Last day of history to learn from, YYYY-MM-DD (default: the latest declaration)
    #[arg(long, value_name = "DATE")]
    pub through: Option<chrono::NaiveDate>,
    /// Months of history before --through to learn from
    #[arg(long, default_value_t = 12)]
    pub window_months: u32,
    /// References a price cell needs to be used
    #[arg(long, default_value_t = 30)]
    pub min_cell_size: u64,
}

/// Where the warehouse is and how to reach it.
#[derive(Args, Clone)]
pub struct WarehouseArgs {
    /// Warehouse root: a folder, file:///path or s3://bucket/prefix
    #[arg(long, short = 'w', env = "ADUANA_WAREHOUSE", value_name = "URI")]
    pub warehouse: String,
    /// Warehouse config (TOML); default: aduana.toml at the warehouse root
    #[arg(long, env = "ADUANA_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// S3 endpoint, e.g. http://127.0.0.1:9000 (default: AWS_ENDPOINT_URL)
    #[arg(long, value_name = "URL")]
    pub s3_endpoint: Option<String>,
    /// S3 region (default: AWS_REGION)
    #[arg(long, value_name = "REGION")]
    pub s3_region: Option<String>,
    /// Use path-style S3 requests, as MinIO and most S3-compatible servers want
    #[arg(long)]
    pub s3_path_style: bool,
    /// Allow plain-HTTP S3 endpoints (implied by an http:// endpoint)
    #[arg(long)]
    pub s3_allow_http: bool,
}

impl WarehouseArgs {
    pub async fn open(&self) -> Result<Warehouse, Error> {
        self.open_with_risk(None).await
    }

    /// Opens the warehouse with the risk tables of `risk_root` (a
    /// backtest's) instead of its own.
    pub async fn open_with_risk(&self, risk_root: Option<String>) -> Result<Warehouse, Error> {
        Ok(Warehouse::open_with(&self.warehouse, self.options(risk_root)).await?)
    }

    /// Opens the warehouse for a server: a damaged or non-conforming file
    /// is left out, with a warning naming it, rather than stopping the
    /// server (the published risk tables and the other files still serve).
    pub async fn open_for_serving(&self) -> Result<Warehouse, Error> {
        let options = OpenOptions {
            skip_bad_files: true,
            ..self.options(None)
        };
        let warehouse = Warehouse::open_with(&self.warehouse, options).await?;
        for table in warehouse.tables() {
            for skipped in &table.skipped {
                eprintln!(
                    "warning: left out of {}: {skipped}",
                    table.contract.qualified_name()
                );
            }
        }
        Ok(warehouse)
    }

    pub fn options(&self, risk_root: Option<String>) -> OpenOptions {
        OpenOptions {
            config_path: self.config.clone(),
            storage: StorageConfig {
                endpoint: self.s3_endpoint.clone(),
                region: self.s3_region.clone(),
                path_style: self.s3_path_style.then_some(true),
                allow_http: self.s3_allow_http.then_some(true),
            },
            risk_root: risk_root.unwrap_or_default(),
            skip_bad_files: false,
        }
    }
}

#[derive(Args, Clone, Default)]
pub struct EngineArgs {
    /// Memory queries may use before spilling or failing, e.g. 4G
    #[arg(long, env = "ADUANA_MEMORY_LIMIT", value_name = "SIZE")]
    pub memory_limit: Option<String>,
    /// Parallelism of query plans (default: the number of cores)
    #[arg(long, value_name = "N")]
    pub target_partitions: Option<usize>,
}

impl EngineArgs {
    pub fn options(&self) -> Result<EngineOptions, Error> {
        Ok(EngineOptions {
            target_partitions: self.target_partitions,
            memory_limit: self.memory_limit.as_deref().map(parse_size).transpose()?,
            ..Default::default()
        })
    }

    /// The options of a command that may run on a cluster.
    pub fn options_on(&self, cluster: &ClusterArgs) -> Result<EngineOptions, Error> {
        Ok(EngineOptions {
            cluster: cluster
                .cluster
                .clone()
                .map(|url| aduana_engine::ClusterTarget {
                    url,
                    connector: aduana_cluster::connector(),
                }),
            ..self.options()?
        })
    }
}

#[derive(Args)]
pub struct DemoArgs {
    /// Where the sample warehouse lives (generated when absent)
    #[arg(long, default_value = "aduana-sample", value_name = "DIR")]
    pub dir: PathBuf,
    /// Declaration items to generate for a new sample
    #[arg(long, default_value_t = 1_000_000)]
    pub rows: u64,
    /// Seed of a new sample
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    #[command(flatten)]
    pub engine: EngineArgs,
}

#[derive(Args)]
pub struct GenerateArgs {
    /// Folder to create (must be absent or empty unless --overwrite)
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Declaration items to generate
    #[arg(long, default_value_t = 1_000_000)]
    pub rows: u64,
    /// Random seed: the same seed and options give the same warehouse
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Months of data, ending with --last-month
    #[arg(long, default_value_t = 12)]
    pub months: u32,
    /// Last month generated, YYYY-MM
    #[arg(long, default_value = "2026-10", value_parser = parse_month, value_name = "YYYY-MM")]
    pub last_month: (i32, u32),
    /// HS nomenclature CSV (section,hscode,description,parent,level) to draw
    /// products from; default: a small built-in catalogue
    #[arg(long, value_name = "CSV")]
    pub hs_nomenclature: Option<PathBuf>,
    /// Replace the folder if it already holds data
    #[arg(long)]
    pub overwrite: bool,
    /// Fraud driven by parties that only inspection outcomes reveal:
    /// colluding declarant x importer pairs and suppliers linked to fraud,
    /// undervaluing by less than prices show
    #[arg(long)]
    pub fraud_by_parties: bool,
    /// Shaped like an export of a real administration: net mass but no
    /// quantity, no quantity unit, no goods descriptions
    #[arg(long)]
    pub export_shaped: bool,
    /// Share of items inspected, in percent (about 24 by default); e.g. 2
    /// for a warehouse with few labels
    #[arg(long, value_name = "PERCENT", value_parser = parse_percent)]
    pub inspection_rate: Option<f64>,
    /// Fraud moves in the second half: new importers defrauding, new
    /// circumvention routes, products that start being undervalued
    #[arg(long)]
    pub drift: bool,
    /// With --drift, the new importers short-declare goods instead, with
    /// value and masses to match: a fraud no field of a declaration shows
    #[arg(long, requires = "drift")]
    pub hidden_fraud: bool,
}

fn parse_percent(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(p) if p > 0.0 && p <= 100.0 => Ok(p),
        _ => Err(format!("{text:?} is not a percentage in (0, 100]")),
    }
}

#[derive(Args)]
pub struct SqlArgs {
    #[command(flatten)]
    pub warehouse: WarehouseArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// SQL to run (several statements separated by ';')
    #[arg(long, short = 'c', value_name = "SQL", conflicts_with = "file")]
    pub command: Option<String>,
    /// File of SQL statements to run; without -c or -f, SQL is read from standard input
    #[arg(long, short = 'f', value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Output format: table, csv, json, ndjson or parquet
    #[arg(long, default_value = "table", value_parser = |s: &str| s.parse::<Format>())]
    pub format: Format,
    /// Write results to FILE instead of standard output (replaced atomically)
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// After each statement, print its row count and elapsed time on standard error
    #[arg(long)]
    pub timing: bool,
}

#[derive(Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub warehouse: WarehouseArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// The report (`aduana reports` lists them)
    pub name: String,
    /// A parameter, name=value (repeatable); values are bound, never spliced into SQL
    #[arg(long = "param", short = 'p', value_name = "NAME=VALUE",
          value_parser = aduana_reports::parse_assignment)]
    pub params: Vec<(String, String)>,
    /// Output format: table, csv, json, ndjson or parquet
    #[arg(long, default_value = "table", value_parser = |s: &str| s.parse::<Format>())]
    pub format: Format,
    /// Write the result to FILE instead of standard output (replaced atomically)
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
}

fn parse_month(text: &str) -> Result<(i32, u32), String> {
    let bad = || format!("{text:?} is not a month as YYYY-MM");
    let (y, m) = text.split_once('-').ok_or_else(bad)?;
    let year: i32 = y.parse().map_err(|_| bad())?;
    let month: u32 = m.parse().map_err(|_| bad())?;
    if !(1..=12).contains(&month) || !(1900..=2999).contains(&year) {
        return Err(bad());
    }
    Ok((year, month))
}

pub fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .thread_stack_size(aduana_engine::bounds::EXECUTION_STACK)
        .enable_all()
        .build()?)
}

pub fn run(cli: Cli) -> Result<(), Error> {
    let Some(command) = cli.command else {
        return match std::env::var("ADUANA_WAREHOUSE") {
            Ok(warehouse) => crate::sql::shell(SqlArgs::interactive(warehouse)),
            Err(_) => Err(
                "no command given: `aduana --help` lists them; plain `aduana` opens the shell \
                 on the warehouse in ADUANA_WAREHOUSE"
                    .into(),
            ),
        };
    };
    if matches!(
        command,
        Command::Reports
            | Command::Sql(_)
            | Command::Report(_)
            | Command::Shell(_)
            | Command::Check(_)
            | Command::Evaluate(_)
    ) {
        stop_quietly_on_closed_pipe();
    }
    match command {
        Command::Demo(args) => crate::demo::run(args),
        Command::Generate(args) => crate::generate::generate(args),
        Command::Shell(args) => crate::sql::shell(args),
        Command::Sql(args) => runtime()?.block_on(crate::sql::sql(args)),
        Command::Report(args) => runtime()?.block_on(crate::sql::report(args)),
        Command::Reports => {
            crate::sql::list_reports();
            Ok(())
        }
        Command::Check(args) => runtime()?.block_on(crate::check::run(args)),
        Command::Import(args) => runtime()?.block_on(crate::import::run(args)),
        Command::Select(args) => runtime()?.block_on(crate::select::run(args)),
        Command::Audits(args) => runtime()?.block_on(crate::select::audits(args)),
        Command::Serve(args) => runtime()?.block_on(crate::serve::serve(args)),
        Command::Model(ModelCommand::Build(args)) => {
            runtime()?.block_on(crate::model::model_build(args))
        }
        Command::Evaluate(args) => runtime()?.block_on(crate::model::evaluate(args)),
        Command::Refresh(args) => runtime()?.block_on(crate::refresh::refresh(args)),
        Command::Scheduler(args) => runtime()?.block_on(crate::cluster::scheduler(args)),
        Command::Executor(args) => runtime()?.block_on(crate::cluster::executor(args)),
    }
}

/// Commands whose output is piped into `head` or `less` end quietly, as
/// Unix tools do, when the reader goes away (Rust ignores SIGPIPE, and
/// `println!` then panics on the closed pipe). Not for servers and the
/// refresh: they must not die with their log reader.
fn stop_quietly_on_closed_pipe() {
    // SAFETY: restoring a signal's default disposition at start-up, before
    // any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

impl SqlArgs {
    /// The shell's arguments when only a warehouse is known.
    pub(crate) fn interactive(warehouse: String) -> SqlArgs {
        SqlArgs {
            warehouse: WarehouseArgs {
                warehouse,
                config: std::env::var_os("ADUANA_CONFIG").map(PathBuf::from),
                s3_endpoint: None,
                s3_region: None,
                s3_path_style: false,
                s3_allow_http: false,
            },
            engine: EngineArgs::default(),
            cluster: ClusterArgs {
                cluster: std::env::var("ADUANA_CLUSTER").ok(),
            },
            command: None,
            file: None,
            format: Format::Table,
            output: None,
            timing: false,
        }
    }

    pub(crate) fn has_script(&self) -> bool {
        self.command.is_some() || self.file.is_some() || !std::io::stdin().is_terminal()
    }
}

pub(crate) async fn open_session(
    warehouse: &WarehouseArgs,
    engine: &EngineArgs,
    cluster: &ClusterArgs,
) -> Result<std::sync::Arc<Session>, Error> {
    let warehouse = warehouse.open().await?;
    Ok(std::sync::Arc::new(
        Session::open(warehouse, &engine.options_on(cluster)?).await?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months() {
        assert_eq!(parse_month("2026-03").unwrap(), (2026, 3));
        assert!(parse_month("2026-13").is_err());
        assert!(parse_month("26-1x").is_err());
    }

    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
