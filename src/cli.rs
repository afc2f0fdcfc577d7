//! Command-line interface: subcommands and their options.

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use aduana_engine::output::Format;
use aduana_engine::{EngineOptions, Session, parse_size};
use aduana_warehouse::{OpenOptions, StorageConfig, Warehouse};
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
enum Command {
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
    #[arg(long, value_delimiter = ',', value_parser = parse_partition, value_name = "PARTITIONS")]
    pub partitions: Vec<(i32, i32)>,
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

fn parse_partition(text: &str) -> Result<(i32, i32), String> {
    let bad = || format!("{text:?} is not year=YYYY/month=M");
    let (year, month) = text.trim().split_once('/').ok_or_else(bad)?;
    let year: i32 = year
        .strip_prefix("year=")
        .ok_or_else(bad)?
        .parse()
        .map_err(|_| bad())?;
    let month: i32 = month
        .strip_prefix("month=")
        .ok_or_else(bad)?
        .parse()
        .map_err(|_| bad())?;
    if !(1..=12).contains(&month) {
        return Err(bad());
    }
    Ok((year, month))
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
enum ModelCommand {
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

    fn options(&self, risk_root: Option<String>) -> OpenOptions {
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
            cluster: cluster.cluster.clone(),
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
            Ok(warehouse) => shell(SqlArgs::interactive(warehouse)),
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
        Command::Generate(args) => generate(args),
        Command::Shell(args) => shell(args),
        Command::Sql(args) => runtime()?.block_on(sql(args)),
        Command::Report(args) => runtime()?.block_on(report(args)),
        Command::Reports => {
            list_reports();
            Ok(())
        }
        Command::Check(args) => runtime()?.block_on(crate::check::run(args)),
        Command::Select(args) => runtime()?.block_on(crate::select::run(args)),
        Command::Audits(args) => runtime()?.block_on(crate::select::audits(args)),
        Command::Serve(args) => runtime()?.block_on(serve(args)),
        Command::Model(ModelCommand::Build(args)) => runtime()?.block_on(model_build(args)),
        Command::Evaluate(args) => runtime()?.block_on(evaluate(args)),
        Command::Refresh(args) => runtime()?.block_on(refresh(args)),
        Command::Scheduler(args) => runtime()?.block_on(scheduler(args)),
        Command::Executor(args) => runtime()?.block_on(executor(args)),
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

fn generate(args: GenerateArgs) -> Result<(), Error> {
    let options = aduana_synth::GenerateOptions {
        out: args.out,
        rows: args.rows,
        seed: args.seed,
        months: args.months,
        last_month: args.last_month,
        hs_nomenclature: args.hs_nomenclature,
        overwrite: args.overwrite,
        variant: aduana_synth::Variant {
            fraud_by_parties: args.fraud_by_parties,
            export_shaped: args.export_shaped,
            inspection_rate: args.inspection_rate.map(|p| p / 100.0),
            drift: args.drift,
        },
    };
    eprintln!(
        "generating {} declaration items into {} ...",
        args.rows,
        options.out.display()
    );
    let summary = aduana_synth::generate(&options)?;
    print_generation(&options.out, &summary);
    Ok(())
}

pub fn print_generation(out: &Path, s: &aduana_synth::Summary) {
    let seconds = s.elapsed.as_secs_f64();
    println!(
        "wrote {} items in {} declarations, {} inspection results, {} files to {} in {:.1} s ({:.0} items/s)",
        s.rows,
        s.declarations,
        s.inspections,
        s.files,
        out.display(),
        seconds,
        s.rows as f64 / seconds.max(1e-9)
    );
    println!(
        "months {}-{:02} to {}-{:02}; {} products, {} tariff lines, {} traders",
        s.first_month.0,
        s.first_month.1,
        s.last_month.0,
        s.last_month.1,
        s.products,
        s.tariff_lines,
        s.traders
    );
    let [under, misclass, circumvention, preference] = s.fraud_items;
    println!(
        "injected fraud (ground truth in _truth/): {} items = {under} undervaluation, {misclass} misclassification, \
         {circumvention} anti-dumping circumvention, {preference} preference abuse",
        s.fraud_total()
    );
}

impl SqlArgs {
    /// The shell's arguments when only a warehouse is known.
    fn interactive(warehouse: String) -> SqlArgs {
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

    fn has_script(&self) -> bool {
        self.command.is_some() || self.file.is_some() || !std::io::stdin().is_terminal()
    }
}

async fn open_session(
    warehouse: &WarehouseArgs,
    engine: &EngineArgs,
    cluster: &ClusterArgs,
) -> Result<std::sync::Arc<Session>, Error> {
    let warehouse = warehouse.open().await?;
    Ok(std::sync::Arc::new(
        Session::open(warehouse, &engine.options_on(cluster)?).await?,
    ))
}

/// `aduana serve`: Flight SQL until SIGTERM or Ctrl-C.
async fn serve(args: ServeArgs) -> Result<(), Error> {
    use aduana_flight::{AuthMode, Authenticator, Credentials, Limits, ServeOptions, TlsFiles};
    let mode: AuthMode = args.auth.parse()?;
    aduana_flight::check_exposure(&args.addr, mode)?;
    let credentials = Credentials::load(args.auth_file.as_deref(), |k| std::env::var(k).ok())?;
    let authenticator = std::sync::Arc::new(Authenticator::new(mode, credentials)?);
    if args.max_concurrent_queries == 0 {
        return Err("--max-concurrent-queries must be at least 1".into());
    }
    if args.query_timeout == 0 {
        return Err("--query-timeout must be at least 1 second".into());
    }
    let limits = Limits {
        query_memory: parse_size(&args.query_memory)?,
        max_concurrent: args.max_concurrent_queries,
        query_timeout: std::time::Duration::from_secs(args.query_timeout),
    };
    // Browsers send the password with every request: off loopback the
    // dashboard is served over TLS only.
    let https = match (&args.http, &args.tls_cert, &args.tls_key) {
        (Some(_), Some(cert), Some(key)) => Some(aduana_dashboard::tls::acceptor(cert, key)?),
        _ => None,
    };
    if args.http.is_some() && args.cluster.cluster.is_some() {
        // Seen here: a report of the trader page (controls per month) hangs
        // intermittently on Ballista 55, the job never finishing; a page
        // that never loads is worse than a clear refusal.
        return Err(
            "--http runs the dashboard in-process only, not with --cluster: serve it \
                    from a separate `aduana serve --http` without --cluster"
                .into(),
        );
    }
    if let Some(http) = &args.http {
        aduana_flight::check_exposure(http, mode)?;
        if https.is_none() && !http.ip().is_loopback() {
            return Err(format!(
                "--http {http}: off a loopback address the dashboard needs --tls-cert and --tls-key \
                 (browsers send the password with every request)"
            )
            .into());
        }
    }
    let session = std::sync::Arc::new(
        Session::open(
            args.warehouse.open_for_serving().await?,
            &args.engine.options_on(&args.cluster)?,
        )
        .await?,
    );
    // The published files this server reads stay until it stops, however
    // many refreshes run meanwhile.
    let lease = hold_risk_files(&session, "serve").await?;
    let served: Result<(), Error> = async {
        // One signal stops both servers.
        let stopping = tokio_util::sync::CancellationToken::new();
        tokio::spawn({
            let stopping = stopping.clone();
            async move {
                shutdown_signal().await;
                stopping.cancel();
            }
        });
        let dashboard = match args.http {
            None => None,
            Some(addr) => {
                let listener = tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|e| format!("cannot listen on {addr} (--http): {e}"))?;
                aduana_flight::log::event(&format!(
                    "dashboard listening url={}://{} auth={:?}",
                    if https.is_some() { "https" } else { "http" },
                    listener.local_addr()?,
                    mode
                ));
                Some(tokio::spawn(aduana_dashboard::serve(
                    session.clone(),
                    authenticator.clone(),
                    listener,
                    https,
                    stopping.clone().cancelled_owned(),
                )))
            }
        };
        if args.no_flight {
            if let Some(dashboard) = dashboard {
                dashboard.await.map_err(|e| e.to_string())??;
            }
            aduana_flight::log::event("stopped");
            return Ok(());
        }
        let listener = tokio::net::TcpListener::bind(args.addr)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", args.addr))?;
        let options = ServeOptions {
            tls: args
                .tls_cert
                .zip(args.tls_key)
                .map(|(cert, key)| TlsFiles { cert, key }),
            authenticator,
            limits,
            grace: std::time::Duration::from_secs(args.grace),
        };
        aduana_flight::serve(session, listener, options, stopping.cancelled_owned()).await?;
        if let Some(dashboard) = dashboard {
            dashboard.await.map_err(|e| e.to_string())??;
        }
        Ok(())
    }
    .await;
    if let Some(lease) = lease
        && let Err(e) = lease.release().await
    {
        eprintln!("warning: the reader lease was not removed (it expires by itself): {e}");
    }
    served
}

/// Leases the published risk files `session` reads, for a process that
/// outlives refreshes; named after `what`, the host and the process.
async fn hold_risk_files(
    session: &Session,
    what: &str,
) -> Result<Option<aduana_warehouse::readers::LeaseHolder>, Error> {
    // Host and pid for people; a random part, since two containers may
    // share both (PID 1 on a fixed host name).
    let reader = format!(
        "{what}-{}-{}-{:08x}",
        aduana_refresh::host_name(),
        std::process::id(),
        rand::random::<u32>()
    );
    Ok(session
        .warehouse()
        .hold_risk_files(&reader, session.model_version().as_deref())
        .await?)
}

/// Resolves on SIGTERM (what service managers and Kubernetes send) or
/// Ctrl-C.
async fn shutdown_signal() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("a SIGTERM handler can be installed");
    tokio::select! {
        _ = terminate.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// `aduana shell`: the interactive shell at a terminal, else a script.
fn shell(args: SqlArgs) -> Result<(), Error> {
    let runtime = runtime()?;
    if args.has_script() {
        return runtime.block_on(sql(args));
    }
    if args.output.is_some() || args.format != Format::Table {
        return Err(
            "-o and --format apply to -c, -f or piped SQL; in the shell use \\o and \\format"
                .into(),
        );
    }
    let session = runtime.block_on(open_session(&args.warehouse, &args.engine, &args.cluster))?;
    // A shell may stay open across refreshes: its risk tables stay readable.
    let lease = runtime.block_on(hold_risk_files(&session, "shell"))?;
    let settings = aduana_shell::Settings {
        timing: true,
        ..Default::default()
    };
    let result =
        aduana_shell::interactive(aduana_shell::Shell::new(session, settings, true), &runtime);
    if let Some(lease) = lease {
        let _ = runtime.block_on(lease.release());
    }
    result
}

/// Runs `-c`, `-f` or standard input: statements and meta commands, in
/// order, stopping at the first failure.
async fn sql(args: SqlArgs) -> Result<(), Error> {
    let text = match (&args.command, &args.file) {
        (Some(sql), _) => sql.clone(),
        (None, Some(path)) => std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read SQL file {}: {e}", path.display()))?,
        (None, None) => {
            if std::io::stdin().is_terminal() {
                return Err(
                    "no SQL given: use -c SQL, -f FILE or pipe statements on standard input".into(),
                );
            }
            let mut sql = String::new();
            std::io::stdin().read_to_string(&mut sql)?;
            sql
        }
    };
    if args.format.is_binary() && args.output.is_none() {
        return Err(
            "--format parquet needs -o FILE: binary output never goes to the terminal".into(),
        );
    }
    let (items, rest) = aduana_shell::script::split(&text);
    let statements = items
        .iter()
        .filter(|i| matches!(i, aduana_shell::script::Item::Sql(_)))
        .count()
        + usize::from(!rest.trim().is_empty());
    if items.is_empty() && rest.trim().is_empty() {
        return Err("no SQL statement given".into());
    }
    if args.format == Format::Parquet && statements > 1 {
        return Err("--format parquet writes one result: give a single statement".into());
    }
    let session = open_session(&args.warehouse, &args.engine, &args.cluster).await?;
    refuse_output_inside(&session, args.output.as_deref())?;
    let settings = aduana_shell::Settings {
        format: args.format,
        timing: args.timing,
        ..Default::default()
    };
    let mut shell = aduana_shell::Shell::new(session, settings, false);
    match &args.output {
        None => {
            let mut out = BufWriter::new(std::io::stdout());
            let result = shell.run_script(&text, &mut out).await;
            // Results of the statements before a failure are still shown.
            out.flush()?;
            shell.finish()?;
            result?;
        }
        Some(path) => {
            write_atomically(path, async |file| {
                shell.run_script(&text, file).await?;
                shell.finish()
            })
            .await?
        }
    }
    Ok(())
}

async fn report(args: ReportArgs) -> Result<(), Error> {
    let report = aduana_reports::get(&args.name).ok_or_else(|| {
        format!(
            "no report named {} (`aduana reports` lists them)",
            args.name
        )
    })?;
    // Parameters are checked before the warehouse is opened.
    report.bind(&args.params)?;
    if args.format.is_binary() && args.output.is_none() {
        return Err(
            "--format parquet needs -o FILE: binary output never goes to the terminal".into(),
        );
    }
    let session = open_session(&args.warehouse, &args.engine, &args.cluster).await?;
    refuse_output_inside(&session, args.output.as_deref())?;
    let settings = aduana_shell::Settings {
        format: args.format,
        ..Default::default()
    };
    let mut shell = aduana_shell::Shell::new(session, settings, false);
    let assignments: Vec<String> = args
        .params
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    match &args.output {
        None => {
            let mut out = BufWriter::new(std::io::stdout());
            let result = shell.report(&args.name, &assignments, &mut out).await;
            out.flush()?;
            result
        }
        Some(path) => {
            write_atomically(path, async |file| {
                shell.report(&args.name, &assignments, file).await
            })
            .await
        }
    }
}

fn list_reports() {
    for r in aduana_reports::all() {
        println!("{:<32} {}", r.name, r.title);
        for p in &r.params {
            let default = p
                .default
                .as_ref()
                .map_or("required".to_string(), |d| format!("default {d}"));
            println!(
                "{:<34}{} {} ({default}): {}",
                "",
                p.name,
                p.kind.name(),
                p.description
            );
        }
    }
}

/// `-o FILE` never writes into the warehouse (the check `COPY` and `\o`
/// use).
fn refuse_output_inside(
    session: &aduana_engine::Session,
    output: Option<&Path>,
) -> Result<(), Error> {
    match output {
        Some(path) if session.is_inside_warehouse_path(path) => Err(format!(
            "-o {} refused: it is inside the warehouse, which Aduana never writes to",
            path.display()
        )
        .into()),
        _ => Ok(()),
    }
}

/// Writes to a temporary file beside `path` and renames it into place only
/// when `write` succeeds, so a failed query never leaves a partial file.
async fn write_atomically(
    path: &Path,
    write: impl AsyncFnOnce(&mut BufWriter<File>) -> Result<(), Error>,
) -> Result<(), Error> {
    let name = path
        .file_name()
        .ok_or_else(|| format!("-o {}: not a file name", path.display()))?;
    let temp = path.with_file_name(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let file = File::create(&temp).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    let mut writer = BufWriter::new(file);
    let result = match write(&mut writer).await {
        Ok(()) => writer.flush().map_err(Error::from),
        Err(e) => Err(e),
    };
    drop(writer);
    match result {
        Ok(()) => std::fs::rename(&temp, path)
            .map_err(|e| format!("cannot write {}: {e}", path.display()).into()),
        Err(e) => {
            let _ = std::fs::remove_file(&temp);
            Err(e)
        }
    }
}

async fn model_build(args: ModelBuildArgs) -> Result<(), Error> {
    let started = std::time::Instant::now();
    let warehouse = args.warehouse.open().await?;
    let engine = EngineOptions {
        skip_model: true,
        ..args.engine.options()?
    };
    let session = Session::open(warehouse, &engine).await?;
    let options = aduana_engine::model_build::BuildOptions {
        through: args.through,
        window_months: args.window_months,
        min_cell_size: args.min_cell_size,
        ..Default::default()
    };
    let built = aduana_engine::model_build::build(&session, &options).await?;
    let manifest = built.manifest;
    let cells: Vec<String> = manifest
        .price_cells
        .iter()
        .map(|(level, n)| format!("{n} {level}"))
        .collect();
    println!(
        "risk model {} published in {:.1} s: learned from {} items from {} to {} (left out {} found fraudulent, {} inspected and compliant); price cells: {}",
        manifest.version,
        started.elapsed().as_secs_f64(),
        manifest.training_items,
        manifest.window_start,
        manifest.window_end,
        manifest.excluded_fraud_items,
        manifest.excluded_inspected_items,
        cells.join(", ")
    );
    match &manifest.learned {
        Some(l) => println!(
            "learned from inspections: {} labelled items, {} found fraudulent; {} trees for the \
             fraud probability, {} for the revenue; weight in risk_score {:.2}",
            l.labelled_items, l.labelled_frauds, l.fraud_trees, l.revenue_trees, l.weight
        ),
        None => println!(
            "no learned model: the window's inspections found fewer than {} frauds; risk_score \
             is the unsupervised combination",
            aduana_engine::model_build::MIN_LABELLED_FRAUDS
        ),
    }
    let phases: Vec<String> = built
        .phases
        .iter()
        .map(|(phase, took)| format!("{phase} {:.1} s", took.as_secs_f64()))
        .collect();
    eprintln!("build time: {}", phases.join(", "));
    Ok(())
}

async fn evaluate(args: EvaluateArgs) -> Result<(), Error> {
    use aduana_engine::evaluate::{EvaluateOptions, Labels, evaluate};
    let labels = if args.labels == "truth" {
        Labels::Truth
    } else {
        Labels::Inspections
    };
    let risk_root = args
        .backtest
        .map(|day| format!("{}/as_of={day}", aduana_warehouse::risk::BACKTESTS_DIR));
    let warehouse = args.warehouse.open_with_risk(risk_root.clone()).await?;
    let session = Session::open(warehouse, &args.engine.options()?).await?;
    // The published scores when a refresh has published some: what the
    // administration acts on, and what `--score risk_score` names.
    let published =
        args.published || risk_root.is_some() || session.warehouse().risk_snapshot().is_some();
    let options = EvaluateOptions {
        score: &args.score,
        labels,
        rates: &args.at,
        filter: args.filter.as_deref(),
        fraud_type: args.fraud_type.as_deref(),
        published_scores: published,
    };
    let e = evaluate(&session, &options).await?;
    let kind = args
        .fraud_type
        .as_ref()
        .map_or(String::new(), |k| format!(", {k} fraud only"));
    let filter = args
        .filter
        .as_ref()
        .map_or(String::new(), |f| format!(" where {f}"));
    let scores = if published {
        "published scores (risk.declaration_scores)"
    } else {
        "computed now over declarations"
    };
    println!(
        "score: {} ({scores})\nlabels: {}{kind} ({} items{filter}, {} fraudulent)\nAUC: {:.4}",
        args.score, args.labels, e.items, e.frauds, e.auc
    );
    if let Some((first, last)) = e.period {
        println!("period: items declared from {first} to {last}");
    }
    if let (Some((start, end)), true) = (e.window, e.in_window > 0) {
        let last = end.pred_opt().unwrap_or(end);
        eprintln!(
            "warning: {} of {} items measured lie in the model's training window ({start} to \
             {last}); the model learned from their outcomes, which flatters it. For an honest \
             measure, backtest (aduana refresh --as-of DAY, then --backtest DAY) and measure \
             after the window: --where \"declaration_date >= DATE '{end}'\"",
            e.in_window, e.items
        );
    }
    println!(
        "{:>8} {:>10} {:>9} {:>9} {:>9}",
        "rate", "items", "Pre", "Rec", "Rev"
    );
    for a in &e.at {
        println!(
            "{:>7}% {:>10} {:>9.4} {:>9.4} {:>9.4}",
            a.rate_percent, a.selected, a.precision, a.recall, a.revenue
        );
    }
    Ok(())
}

async fn refresh(args: RefreshArgs) -> Result<(), Error> {
    use aduana_refresh::{LogFormat, RefreshOptions, Reporter};
    let format = if args.log_format == "json" {
        LogFormat::Json
    } else {
        LogFormat::Text
    };
    let reporter = Reporter::new(format);
    let options = RefreshOptions {
        since: args.since,
        partitions: args.partitions.clone(),
        rebuild_model: args.rebuild_model,
        model_max_age_days: args.model_max_age_days,
        window_months: args.window_months,
        dry_run: args.dry_run,
        as_of: args.as_of,
        lock_timeout_s: args.lock_timeout,
        engine: args.engine.options_on(&args.cluster)?,
    };
    let run = async {
        let warehouse = args.warehouse.open().await.map_err(|e| {
            match e.downcast::<aduana_warehouse::WarehouseError>() {
                Ok(e) => aduana_refresh::RefreshError::from(*e),
                Err(e) => aduana_refresh::RefreshError::BadInput(e.to_string()),
            }
        })?;
        aduana_refresh::refresh(warehouse, &options, &reporter).await
    };
    let manifest = match run.await {
        Ok(manifest) => manifest,
        Err(e) => {
            reporter.event("failed", &[("error", serde_json::json!(e.to_string()))]);
            return Err(Box::new(e));
        }
    };
    print_refresh_summary(&manifest);
    Ok(())
}

/// The end-of-run summary on stdout: counts, what was scored and why, and
/// each step's rate.
pub fn print_refresh_summary(manifest: &aduana_refresh::RunManifest) {
    let model = manifest.model.as_ref();
    println!(
        "refresh {} {}: {} partition(s) scored, {} unchanged, {} removed; {} rows in, {} scored, {} rejected; {} importer-months of trader risk; model {}{}",
        manifest.run_id,
        manifest.status,
        manifest.scored_partitions.len(),
        manifest.unchanged_partitions,
        manifest.removed_partitions.len(),
        manifest.rows_in,
        manifest.rows_scored,
        manifest.rows_rejected,
        manifest.trader_rows,
        model.map_or("-", |m| m.version.as_str()),
        model.map_or(String::new(), |m| format!(" ({})", m.reason)),
    );
    // In calendar order (the manifest's keys sort as text: month=10 < month=2).
    let mut scored: Vec<_> = manifest.scored_partitions.iter().collect();
    scored.sort_by_key(|(partition, _)| aduana_refresh::parse_partition_key(partition));
    for (partition, reason) in scored {
        let verb = if manifest.status == "dry run" {
            "would score"
        } else {
            "scored"
        };
        println!("  {verb} {partition}: {reason}");
    }
    for step in &manifest.steps {
        println!(
            "  {:<12} {:>8.2} s {:>12} rows {:>12.0} rows/s",
            step.step, step.seconds, step.rows, step.rows_per_second
        );
    }
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

/// `aduana scheduler`: a Ballista scheduler until stopped.
async fn scheduler(args: SchedulerArgs) -> Result<(), Error> {
    let warehouse = args.warehouse.open().await?;
    let session = aduana_cluster::open(warehouse, &args.engine.options()?).await?;
    eprintln!(
        "aduana scheduler on {} for {} (clients: --cluster df://{})",
        args.bind,
        session.warehouse().location().display,
        args.bind
    );
    aduana_cluster::run_scheduler(args.bind, &session, args.executor_timeout).await?;
    Ok(())
}

/// `aduana executor`: a Ballista executor until stopped.
async fn executor(args: ExecutorArgs) -> Result<(), Error> {
    let (host, port) = args
        .scheduler
        .rsplit_once(':')
        .and_then(|(host, port)| Some((host.to_string(), port.parse::<u16>().ok()?)))
        .ok_or_else(|| format!("--scheduler {:?}: expected HOST:PORT", args.scheduler))?;
    let warehouse = args.warehouse.open().await?;
    let session = aduana_cluster::open(warehouse, &args.engine.options()?).await?;
    let options = aduana_cluster::ExecutorOptions {
        scheduler_host: host,
        scheduler_port: port,
        bind_host: args.bind_host.clone(),
        port: args.port,
        grpc_port: args.grpc_port,
        work_dir: args.work_dir.as_ref().map(|dir| dir.display().to_string()),
        slots: args.concurrent_tasks,
    };
    eprintln!(
        "aduana executor on {}:{} for {}, serving scheduler {}",
        args.bind_host,
        args.port,
        session.warehouse().location().display,
        args.scheduler
    );
    aduana_cluster::run_executor(options, &session).await?;
    Ok(())
}
