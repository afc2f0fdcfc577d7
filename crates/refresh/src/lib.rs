//! `aduana refresh`: the nightly job that keeps a warehouse's risk tables
//! current.
//!
//! In order: find the declaration partitions that are new or changed since
//! the last published run (file names, sizes, modification times, ETags);
//! rebuild the risk model when asked, when there is none, or when it is too
//! old; score the changed partitions (rows that cannot be scored go to the
//! rejects, with the reason); recompute the trader risk over every scored
//! item; then publish. Everything is written under a staging prefix first,
//! moved to its final name, and made visible by rewriting one object,
//! `risk/_published.json` (see `aduana_warehouse::risk`), so readers see
//! the previous run's tables or the new ones. File names derive from their
//! inputs, so a re-run writes the same files, and a run killed at any point
//! leaves the published tables intact for the next run to complete.
//!
//! One module per step: `plan`, `score`, `trader_risk`, `publish`; here
//! the run's types and its order.

pub mod audits;
pub mod error;
mod lock;
pub mod log;
mod plan;
mod publish;
mod score;
pub mod selection;
mod sql;
mod trader_risk;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use aduana_engine::{EngineOptions, ModelAt, Session};
use aduana_warehouse::risk::{self, InputFile};
use aduana_warehouse::{Location, Warehouse};

use chrono::{NaiveDate, Utc};

use object_store::ObjectStore;
use object_store::path::Path;

use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};

pub use aduana_warehouse::Partition;
pub use error::{RefreshError, Result};
pub use lock::host_name;
pub use log::{LogFormat, Reporter};

/// Bumped when the scores' content or layout changes for the same inputs,
/// so a new release rewrites them instead of keeping files named by old
/// inputs. 2: rows ordered by importer. 3: rows with a date outside their
/// partition, a non-finite or absurd number or a missing required column
/// rejected (`aduana_engine::validity`). 4: the learned model's
/// `fraud_probability` and `expected_revenue`, its reasons.
const FORMAT_VERSION: &str = "4";
const STAGING_DIR: &str = "risk/_staging";
/// Model versions no snapshot or reader uses are deleted once this old.
const MODEL_GRACE: std::time::Duration = std::time::Duration::from_secs(24 * 3600);
const LOCK_FILE: &str = "risk/_lock";

/// What to refresh and how.
#[derive(Debug, Clone)]
pub struct RefreshOptions {
    /// Also rescore every partition from this day's month on.
    pub since: Option<NaiveDate>,
    /// Also rescore these partitions.
    pub partitions: Vec<Partition>,
    pub rebuild_model: bool,
    /// A model older than this many days is rebuilt.
    pub model_max_age_days: u32,
    /// Training window of a rebuilt model.
    pub window_months: u32,
    /// Show what would be done; write nothing.
    pub dry_run: bool,
    /// Backtest: run as if on this day, under `risk/backtests/as_of=DAY/`.
    pub as_of: Option<NaiveDate>,
    /// A lock older than this (or held by a dead process on this host) is
    /// taken over.
    pub lock_timeout_s: u64,
    pub engine: EngineOptions,
}

impl Default for RefreshOptions {
    fn default() -> Self {
        RefreshOptions {
            since: None,
            partitions: Vec::new(),
            rebuild_model: false,
            model_max_age_days: 30,
            window_months: 12,
            dry_run: false,
            as_of: None,
            lock_timeout_s: 6 * 3600,
            engine: EngineOptions::default(),
        }
    }
}

/// Time and rows of one step.
#[derive(Debug, Clone, Serialize)]
pub struct StepTiming {
    pub step: String,
    pub seconds: f64,
    pub rows: u64,
    pub rows_per_second: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelUse {
    pub version: String,
    pub rebuilt: bool,
    /// Why it was (or was not) rebuilt.
    pub reason: String,
}

/// How a run ended (or that it is still going), as the run manifest
/// writes it: `"published"`, `"up to date"`, `"dry run"`, `"failed"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum RunStatus {
    #[serde(rename = "running")]
    Running,
    /// New risk tables are published.
    #[serde(rename = "published")]
    Published,
    /// Nothing changed since the last published run.
    #[serde(rename = "up to date")]
    UpToDate,
    /// Planned only: nothing written.
    #[serde(rename = "dry run")]
    DryRun,
    #[serde(rename = "failed")]
    Failed,
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RunStatus::Running => "running",
            RunStatus::Published => "published",
            RunStatus::UpToDate => "up to date",
            RunStatus::DryRun => "dry run",
            RunStatus::Failed => "failed",
        })
    }
}

/// The run manifest, `risk/runs/RUN_ID.json`, and what the command prints.
#[derive(Debug, Clone, Serialize)]
pub struct RunManifest {
    pub run_id: String,
    pub status: RunStatus,
    pub warehouse: String,
    pub as_of: Option<String>,
    pub started_at: String,
    pub finished_at: String,
    pub model: Option<ModelUse>,
    /// Partitions (`year=Y/month=M`) scored by this run, and why.
    pub scored_partitions: BTreeMap<String, String>,
    pub unchanged_partitions: usize,
    pub removed_partitions: Vec<String>,
    pub inspections_changed: bool,
    pub rows_in: u64,
    pub rows_scored: u64,
    pub rows_rejected: u64,
    /// Importer-months in the published trader risk.
    pub trader_rows: u64,
    /// The periods whose trader risk this run computed.
    pub trader_periods: Vec<String>,
    pub steps: Vec<StepTiming>,
    pub error: Option<String>,
}

/// Runs a refresh of `warehouse`. Returns the run's manifest (also written
/// under `risk/runs/`, except for dry runs).
pub async fn refresh(
    warehouse: Warehouse,
    options: &RefreshOptions,
    reporter: &Reporter,
) -> Result<RunManifest> {
    if options.window_months == 0 {
        return Err(RefreshError::BadInput(
            "--window-months must be at least 1".into(),
        ));
    }
    let root = options
        .as_of
        .map(|day| format!("{}/as_of={day}", risk::BACKTESTS_DIR))
        .unwrap_or_default();
    let now = Utc::now();
    let run_id = format!(
        "{}-{:04x}",
        now.format("%Y%m%dT%H%M%SZ"),
        rand::random::<u16>()
    );
    let mut run = Run {
        location: warehouse.location().clone(),
        warehouse,
        root,
        options: options.clone(),
        reporter,
        manifest: RunManifest {
            run_id: run_id.clone(),
            status: RunStatus::Running,
            warehouse: String::new(),
            as_of: options.as_of.map(|d| d.to_string()),
            started_at: now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            finished_at: String::new(),
            model: None,
            scored_partitions: BTreeMap::new(),
            unchanged_partitions: 0,
            removed_partitions: Vec::new(),
            inspections_changed: false,
            rows_in: 0,
            rows_scored: 0,
            rows_rejected: 0,
            trader_rows: 0,
            trader_periods: Vec::new(),
            steps: Vec::new(),
            error: None,
        },
    };
    run.manifest.warehouse = run.location.display.clone();
    reporter.event(
        "start",
        &[
            ("run_id", json!(run_id)),
            ("warehouse", json!(run.location.display)),
            ("as_of", json!(run.manifest.as_of)),
            ("dry_run", json!(options.dry_run)),
        ],
    );
    if options.dry_run {
        run.plan().await?;
        run.manifest.status = RunStatus::DryRun;
        run.manifest.finished_at = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        return Ok(run.manifest);
    }
    let lock = lock::RunLock::acquire(
        run.location.store.clone(),
        run.path(LOCK_FILE),
        &run.location.url_of(&run.path(LOCK_FILE), false),
        &run_id,
        options.lock_timeout_s,
    )
    .await?;
    let outcome = run.execute().await;
    run.manifest.finished_at = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    if let Err(e) = &outcome {
        run.manifest.status = RunStatus::Failed;
        run.manifest.error = Some(e.to_string());
        // Best effort: the failure is what the operator must see, not a
        // second failure writing its record.
        let _ = run.write_manifest().await;
    }
    lock.release().await?;
    outcome.map(|()| run.manifest)
}

struct Run<'a> {
    warehouse: Warehouse,
    location: Location,
    /// Relative to the warehouse root: `""`, or a backtest's root.
    root: String,
    options: RefreshOptions,
    reporter: &'a Reporter,
    manifest: RunManifest,
}

fn input_file(location: &Location, meta: &object_store::ObjectMeta) -> InputFile {
    InputFile {
        path: location.relative(&meta.location),
        size: meta.size,
        last_modified: meta
            .last_modified
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        e_tag: meta.e_tag.clone(),
    }
}

fn fingerprint(parts: &[&str]) -> String {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    hash.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// For crash tests, in builds with the test-only feature `crash-points`
/// (the workspace's tests turn it on; release builds have no such code):
/// `ADUANA_REFRESH_CRASH_AT=NAME` aborts the process at that point, as a
/// kill would.
#[cfg(feature = "crash-points")]
fn crash_point(name: &str) {
    if std::env::var("ADUANA_REFRESH_CRASH_AT").is_ok_and(|at| at == name) {
        eprintln!("refresh: crashing at {name} (ADUANA_REFRESH_CRASH_AT)");
        std::process::abort();
    }
}

#[cfg(not(feature = "crash-points"))]
#[inline(always)]
fn crash_point(_name: &str) {}

impl Run<'_> {
    /// `relative` under this run's root, as a store path.
    fn path(&self, relative: &str) -> Path {
        self.location.child(&risk::join(&self.root, relative))
    }

    fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.location.store
    }

    fn step(&mut self, step: &str, started: Instant, rows: u64) {
        let seconds = started.elapsed().as_secs_f64();
        let rows_per_second = if seconds > 0.0 {
            rows as f64 / seconds
        } else {
            0.0
        };
        self.reporter.event(
            "step",
            &[
                ("step", json!(step)),
                ("seconds", json!((seconds * 1000.0).round() / 1000.0)),
                ("rows", json!(rows)),
                ("rows_per_s", json!(rows_per_second.round())),
            ],
        );
        self.manifest.steps.push(StepTiming {
            step: step.to_string(),
            seconds,
            rows,
            rows_per_second,
        });
    }

    async fn execute(&mut self) -> Result<()> {
        let plan = self.plan().await?;
        if plan.model.is_some()
            && plan.to_score.is_empty()
            && plan.removed.is_empty()
            && !plan.inspections_changed
            && plan.previous.as_ref().is_some_and(|p| {
                // Snapshots from before per-month trader risk need it computed.
                p.partitions.values().all(|p| p.trader_risk.is_some())
            })
        {
            self.manifest.status = RunStatus::UpToDate;
            // Clear what a run that died may have left.
            if let Some(previous) = &plan.previous {
                self.manifest.trader_rows =
                    previous.partitions.values().map(|p| p.trader_rows).sum();
                self.collect_garbage(previous, None).await?;
            }
            return self.write_manifest().await;
        }
        self.clean_staging().await?;

        let (model_version, rebuilt) = match &plan.model {
            Some(version) => (version.clone(), false),
            None => (self.build_model().await?, true),
        };
        self.manifest.model = Some(ModelUse {
            version: model_version.clone(),
            rebuilt,
            reason: plan.model_reason.clone(),
        });
        let engine = EngineOptions {
            model_at: Some(ModelAt {
                root: self.path(""),
                version: model_version.clone(),
            }),
            skip_model: false,
            ..self.options.engine.clone()
        };
        let session = Session::open(self.warehouse.clone(), &engine).await?;

        let (mut partitions, mut staged) = self.score_all(&session, &plan, &model_version).await?;
        self.trader_risk(&session, &plan, &mut partitions, &mut staged)
            .await?;
        crash_point("staged");
        self.publish(&plan, &model_version, rebuilt, partitions, &staged)
            .await
    }
}
