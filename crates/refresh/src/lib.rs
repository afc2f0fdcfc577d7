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

pub mod audits;
pub mod error;
mod lock;
pub mod log;
pub mod selection;
mod sql;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use aduana_engine::model_build::BuildOptions;
use aduana_engine::{EngineOptions, ModelAt, Session, WritePolicy};
use aduana_warehouse::risk::{
    self, InputFile, PartitionState, REJECTS_SCHEMA, SCORES_SCHEMA, Snapshot, TRADER_RISK_SCHEMA,
};
use aduana_warehouse::{Location, Warehouse};
use arrow::array::{AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{Int32Type, SchemaRef};
use chrono::{NaiveDate, Utc};
use datafusion::datasource::listing::ListingTableUrl;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use parquet::arrow::AsyncArrowWriter;
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};

pub use aduana_warehouse::Partition;
pub use error::{RefreshError, Result};
pub use lock::host_name;
pub use log::{LogFormat, Reporter};

/// Fails the run, naming the partition and the first keys, when a
/// (declaration_id, item_no) key of the partition has more than one row.
async fn refuse_duplicates(session: &Session, key: &str, year: i32, month: i32) -> Result<()> {
    use arrow::array::AsArray;
    let batches = session
        .context()
        .sql(&sql::partition_duplicates(year, month))
        .await?
        .collect()
        .await?;
    let Some(batch) = batches.iter().find(|b| b.num_rows() > 0) else {
        return Ok(());
    };
    use arrow::datatypes::{DataType, Int64Type};
    let column = |i: usize, to: &DataType| arrow::compute::cast(batch.column(i), to);
    let (ids, items) = (column(0, &DataType::Utf8)?, column(1, &DataType::Int64)?);
    let (copies, keys) = (column(2, &DataType::Int64)?, column(3, &DataType::Int64)?);
    let ids = ids.as_string::<i32>();
    let items = items.as_primitive::<Int64Type>();
    let copies = copies.as_primitive::<Int64Type>();
    let keys = keys.as_primitive::<Int64Type>().value(0);
    let examples: Vec<String> = (0..batch.num_rows())
        .map(|i| {
            format!(
                "{} item {} ({} rows)",
                ids.value(i),
                items.value(i),
                copies.value(i)
            )
        })
        .collect();
    Err(RefreshError::BadInput(format!(
        "declarations partition {key}: {keys} (declaration_id, item_no) key(s) have more than one \
         row, e.g. {}; each item must appear once (a copy would be scored and counted twice): \
         remove the copies and run again",
        examples.join(", ")
    )))
}

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

/// What the run found it must do.
struct Plan {
    inputs: BTreeMap<Partition, Vec<InputFile>>,
    rows_in: BTreeMap<Partition, u64>,
    /// Partitions to score and why.
    to_score: BTreeMap<Partition, String>,
    removed: Vec<String>,
    inspections: Vec<InputFile>,
    inspections_changed: bool,
    previous: Option<Snapshot>,
    /// The model version to score with (None: build one) and why.
    model: Option<String>,
    model_reason: String,
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

/// `batch` with exactly `schema`'s columns, by name, cast to its types.
fn conform(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    let columns = schema
        .fields()
        .iter()
        .map(|field| {
            let column = batch.column_by_name(field.name()).ok_or_else(|| {
                RefreshError::Failed(format!("query result lacks column {}", field.name()))
            })?;
            // Files hold plain strings: every Parquet reader reads them.
            let target = match field.data_type() {
                arrow::datatypes::DataType::Utf8View => &arrow::datatypes::DataType::Utf8,
                other => other,
            };
            Ok(cast(column, target)?)
        })
        .collect::<Result<Vec<_>>>()?;
    let fields: Vec<_> = schema
        .fields()
        .iter()
        .zip(&columns)
        .map(|(f, c)| f.as_ref().clone().with_data_type(c.data_type().clone()))
        .collect();
    Ok(RecordBatch::try_new(
        Arc::new(arrow::datatypes::Schema::new(fields)),
        columns,
    )?)
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

    async fn plan(&mut self) -> Result<Plan> {
        let started = Instant::now();
        let declarations = self.warehouse.table("declarations").ok_or_else(|| {
            RefreshError::BadInput(format!(
                "warehouse {} has no declarations to score",
                self.location.display
            ))
        })?;
        let mut inputs: BTreeMap<Partition, Vec<InputFile>> = BTreeMap::new();
        let mut rows_in: BTreeMap<Partition, u64> = BTreeMap::new();
        for file in &declarations.files {
            let partition = file.partition.ok_or_else(|| {
                RefreshError::BadInput(format!(
                    "{}: the refresh needs declarations in year=/month= partitions",
                    self.location.url_of(&file.meta.location, false)
                ))
            })?;
            inputs
                .entry(partition)
                .or_default()
                .push(input_file(&self.location, &file.meta));
            *rows_in.entry(partition).or_default() += file.rows;
        }
        for files in inputs.values_mut() {
            files.sort_by(|a, b| a.path.cmp(&b.path));
        }
        let mut inspections: Vec<InputFile> = self
            .warehouse
            .table("inspections")
            .map(|t| {
                t.files
                    .iter()
                    .map(|f| input_file(&self.location, &f.meta))
                    .collect()
            })
            .unwrap_or_default();
        inspections.sort_by(|a, b| a.path.cmp(&b.path));
        let previous = risk::load_snapshot(&self.location, &self.root).await?;

        // The model: the current one of this root unless asked, absent or old.
        let model_root = self.path("");
        let store = self.store().as_ref();
        let current = aduana_model::current_version(store, &model_root).await?;
        let (model, model_reason) = match current {
            _ if self.options.rebuild_model => (None, "asked (--rebuild-model)".to_string()),
            None => (None, "no model yet".to_string()),
            Some(version) => {
                let manifest = aduana_model::read_manifest(store, &model_root, &version).await?;
                let age_days = chrono::DateTime::parse_from_rfc3339(&manifest.built_at)
                    .map(|at| (Utc::now() - at.with_timezone(&Utc)).num_days())
                    .unwrap_or(i64::MAX);
                if manifest.format < aduana_model::MODEL_FORMAT {
                    (
                        None,
                        format!(
                            "model {version} was built by an older Aduana (model format {}, now {})",
                            manifest.format,
                            aduana_model::MODEL_FORMAT
                        ),
                    )
                } else if age_days > self.options.model_max_age_days as i64 {
                    (
                        None,
                        format!(
                            "model {version} is {age_days} days old (more than {})",
                            self.options.model_max_age_days
                        ),
                    )
                } else {
                    (Some(version), "current model".to_string())
                }
            }
        };

        let since = self.options.since.map(|d| Partition {
            year: chrono::Datelike::year(&d),
            month: chrono::Datelike::month(&d) as i32,
        });
        for forced in &self.options.partitions {
            if !inputs.contains_key(forced) {
                return Err(RefreshError::BadInput(format!(
                    "--partitions {}: no declarations in that partition",
                    forced.to_string()
                )));
            }
        }
        let mut to_score = BTreeMap::new();
        for (partition, files) in &inputs {
            let published = previous
                .as_ref()
                .and_then(|s| s.partitions.get(&partition.to_string()));
            let reason = if model.is_none() {
                Some("new model")
            } else if previous
                .as_ref()
                .is_some_and(|s| Some(&s.model_version) != model.as_ref())
            {
                Some("model changed since the last run")
            } else if published.is_none() {
                Some("new partition")
            } else if published.is_some_and(|p| &p.inputs != files) {
                Some("files changed")
            } else if let (Some(p), Some(version)) = (published, model.as_ref())
                && p.scores != self.partition_file(risk::SCORES_DIR, *partition, version, files)
            {
                // Same inputs and model, another file name: an older
                // release wrote it in another format or layout.
                Some("written by an older release")
            } else if self.options.partitions.contains(partition) {
                Some("asked (--partitions)")
            } else if since.is_some_and(|s| *partition >= s) {
                Some("asked (--since)")
            } else {
                None
            };
            if let Some(reason) = reason {
                to_score.insert(*partition, reason.to_string());
            }
        }
        let removed: Vec<String> = previous
            .as_ref()
            .map(|s| {
                s.partitions
                    .keys()
                    .filter(|k| !inputs.keys().any(|p| &p.to_string() == *k))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        let inspections_changed = previous
            .as_ref()
            .is_none_or(|s| s.inspections != inspections);
        for (partition, reason) in &to_score {
            self.reporter.event(
                "plan",
                &[
                    ("partition", json!(partition.to_string())),
                    ("rows", json!(rows_in[partition])),
                    ("reason", json!(reason)),
                ],
            );
        }
        self.reporter.event(
            "plan",
            &[
                ("partitions", json!(inputs.len())),
                ("to_score", json!(to_score.len())),
                ("removed", json!(removed)),
                ("inspections_changed", json!(inspections_changed)),
                ("model", json!(model)),
                ("model_reason", json!(model_reason)),
            ],
        );
        self.manifest.scored_partitions = to_score
            .iter()
            .map(|(p, r)| (p.to_string(), r.clone()))
            .collect();
        self.manifest.unchanged_partitions = inputs.len() - to_score.len();
        self.manifest.removed_partitions = removed.clone();
        self.manifest.inspections_changed = inspections_changed;
        self.manifest.rows_in = to_score.keys().map(|p| rows_in[p]).sum();
        self.manifest.model = Some(ModelUse {
            version: model.clone().unwrap_or_else(|| "(to build)".into()),
            rebuilt: model.is_none(),
            reason: model_reason.clone(),
        });
        let plan = Plan {
            inputs,
            rows_in,
            to_score,
            removed,
            inspections,
            inspections_changed,
            previous,
            model,
            model_reason,
        };
        self.step("plan", started, 0);
        Ok(plan)
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

        // Score every partition to score, into staging.
        let mut partitions: BTreeMap<String, PartitionState> = BTreeMap::new();
        let mut staged: Vec<String> = Vec::new();
        let started = Instant::now();
        let total_rows: u64 = plan.to_score.keys().map(|p| plan.rows_in[p]).sum();
        let mut done_rows = 0;
        for (i, (&partition, _)) in plan.to_score.iter().enumerate() {
            self.reporter.progress(
                "scoring",
                i,
                plan.to_score.len(),
                done_rows,
                started.elapsed().as_secs_f64(),
            );
            let state = self
                .score_partition(&session, partition, &plan, &model_version, &mut staged)
                .await?;
            done_rows += state.rows_in;
            self.manifest.rows_scored += state.scored;
            self.manifest.rows_rejected += state.rejected;
            partitions.insert(partition.to_string(), state);
        }
        self.reporter.finish_progress();
        self.step("score", started, total_rows);
        crash_point("scored");
        // Unchanged partitions keep their published files.
        if let Some(previous) = &plan.previous {
            for (key, state) in &previous.partitions {
                if !partitions.contains_key(key) && !plan.removed.contains(key) {
                    partitions.insert(key.clone(), state.clone());
                }
            }
        }

        // Trader risk, per period: for the periods rescored, those new
        // inspections touch, and any not yet computed.
        let started = Instant::now();
        let staged_set: BTreeSet<String> = staged.iter().cloned().collect();
        let score_file = |p: &PartitionState| {
            if staged_set.contains(&p.scores) {
                risk::join(&self.staging_dir(), &p.scores)
            } else {
                risk::join(&self.root, &p.scores)
            }
        };
        let session_files = |keys: &mut dyn Iterator<Item = &String>| {
            keys.map(|k| score_file(&partitions[k]))
                .map(|f| {
                    ListingTableUrl::parse(self.location.url_of(&self.location.child(&f), false))
                })
                .collect::<datafusion::error::Result<Vec<_>>>()
        };
        let cutoff = self.options.as_of.map(|d| d.to_string());
        let ctx = session.context();
        let periods = self
            .trader_periods(&session, &plan, &partitions, &mut |keys| {
                session_files(keys)
            })
            .await?;
        let recomputed_rows: u64 = periods.iter().map(|k| partitions[k].scored).sum();
        if !periods.is_empty() {
            let inspections_key = serde_json::to_string(&plan.inspections).expect("plain data");
            let files: BTreeMap<Partition, String> = periods
                .iter()
                .map(|key| {
                    let period = key.parse::<Partition>().expect("keys we made");
                    let name = fingerprint(&[
                        FORMAT_VERSION,
                        &partitions[key].scores,
                        &inspections_key,
                        cutoff.as_deref().unwrap_or(""),
                    ]);
                    (
                        period,
                        format!("{}/{key}/part-{name}.parquet", risk::TRADER_RISK_DIR),
                    )
                })
                .collect();
            ctx.register_table(
                "aduana_refresh_scores",
                risk::files_table(session_files(&mut periods.iter())?, SCORES_SCHEMA.clone())?,
            )?;
            let has_inspections = self.warehouse.table("inspections").is_some();
            let query =
                sql::trader_risk("aduana_refresh_scores", has_inspections, cutoff.as_deref());
            let result = self
                .write_periods(&session, &query, &files, &TRADER_RISK_SCHEMA)
                .await;
            ctx.deregister_table("aduana_refresh_scores")?;
            let rows = result?;
            for (period, file) in files {
                let state = partitions
                    .get_mut(&period.to_string())
                    .expect("a period of the table");
                state.trader_risk = Some(file.clone());
                state.trader_rows = rows.get(&period).copied().unwrap_or(0);
                staged.push(file);
            }
        }
        self.manifest.trader_periods = periods.into_iter().collect();
        self.manifest.trader_rows = partitions.values().map(|p| p.trader_rows).sum();
        self.step("trader_risk", started, recomputed_rows);
        crash_point("staged");

        // Publish: move the staged files to their names, record the run,
        // switch the model and the snapshot, then clear what is unused.
        let started = Instant::now();
        for (i, file) in staged.iter().enumerate() {
            let from = self.location.child(&risk::join(&self.staging_dir(), file));
            let to = self.path(file);
            self.store()
                .rename(&from, &to)
                .await
                .map_err(|e| RefreshError::storage(&to, e))?;
            if i == 0 {
                crash_point("publish-first-file");
            }
        }
        crash_point("publish-files-moved");
        let snapshot = Snapshot {
            run_id: self.manifest.run_id.clone(),
            published_at: Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            model_version: model_version.clone(),
            as_of: self.manifest.as_of.clone(),
            partitions,
            inspections: plan.inspections.clone(),
        };
        self.manifest.status = RunStatus::Published;
        self.manifest.finished_at = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        self.write_manifest().await?;
        if rebuilt {
            aduana_model::set_current(self.store().as_ref(), &self.path(""), &model_version)
                .await?;
        }
        crash_point("before-snapshot");
        let body = serde_json::to_vec_pretty(&snapshot).expect("plain data");
        let snapshot_path = self.path(risk::SNAPSHOT_FILE);
        self.store()
            .put(&snapshot_path, PutPayload::from(body))
            .await
            .map_err(|e| RefreshError::storage(&snapshot_path, e))?;
        crash_point("after-snapshot");
        self.collect_garbage(&snapshot, plan.previous.as_ref())
            .await?;
        self.step("publish", started, 0);
        Ok(())
    }

    fn staging_dir(&self) -> String {
        risk::join(
            &self.root,
            &format!("{STAGING_DIR}/{}", self.manifest.run_id),
        )
    }

    async fn build_model(&mut self) -> Result<String> {
        let started = Instant::now();
        let engine = EngineOptions {
            skip_model: true,
            model_at: None,
            // The builder stages its training rows in a memory table, which
            // lives in this process: it runs here, scoring on the cluster.
            cluster: None,
            ..self.options.engine.clone()
        };
        let session = Session::open(self.warehouse.clone(), &engine).await?;
        let options = BuildOptions {
            through: self.options.as_of.and_then(|d| d.pred_opt()),
            window_months: self.options.window_months,
            root: Some(self.path("")),
            make_current: false,
            ..Default::default()
        };
        let built = aduana_engine::model_build::build(&session, &options).await?;
        for (phase, took) in &built.phases {
            self.reporter.event(
                "model_phase",
                &[
                    ("phase", json!(phase)),
                    (
                        "seconds",
                        json!((took.as_secs_f64() * 1000.0).round() / 1000.0),
                    ),
                ],
            );
        }
        self.step("model_build", started, built.manifest.training_items);
        Ok(built.manifest.version)
    }

    /// A partition's file of the score or reject table `dir`, named by a
    /// fingerprint of what it is computed from (the format, the model, the
    /// input files, a backtest's day).
    fn partition_file(
        &self,
        dir: &str,
        partition: Partition,
        model_version: &str,
        inputs: &[InputFile],
    ) -> String {
        let inputs_key = serde_json::to_string(inputs).expect("plain data");
        let cutoff = self.manifest.as_of.clone().unwrap_or_default();
        let name = fingerprint(&[FORMAT_VERSION, model_version, &inputs_key, &cutoff]);
        format!("{dir}/{}/part-{name}.parquet", partition.to_string())
    }

    async fn score_partition(
        &mut self,
        session: &Session,
        partition: Partition,
        plan: &Plan,
        model_version: &str,
        staged: &mut Vec<String>,
    ) -> Result<PartitionState> {
        let key = partition.to_string();
        let inputs = &plan.inputs[&partition];
        let scores = self.partition_file(risk::SCORES_DIR, partition, model_version, inputs);
        let Partition { year, month } = partition;
        let files: Vec<String> = inputs.iter().map(|f| f.path.clone()).collect();
        let named = |e: RefreshError| e.in_partition(&key, &files);
        refuse_duplicates(session, &key, year, month).await?;
        let scored = self
            .write_query(
                session,
                &sql::partition_scores(year, month, model_version),
                &scores,
                &SCORES_SCHEMA,
            )
            .await
            .map_err(named)?;
        staged.push(scores.clone());
        let rejects_file = self.partition_file(risk::REJECTS_DIR, partition, model_version, inputs);
        let rejected = self
            .write_query(
                session,
                &sql::partition_rejects(year, month),
                &rejects_file,
                &REJECTS_SCHEMA,
            )
            .await
            .map_err(named)?;
        let rejects = if rejected > 0 {
            staged.push(rejects_file.clone());
            Some(rejects_file)
        } else {
            let path = self
                .location
                .child(&risk::join(&self.staging_dir(), &rejects_file));
            let _ = self.store().delete(&path).await;
            None
        };
        let rows_in = plan.rows_in[&partition];
        if scored + rejected != rows_in {
            return Err(RefreshError::Failed(format!(
                "partition {key}: {rows_in} rows in, but {scored} scored and {rejected} rejected"
            )));
        }
        self.reporter.event(
            "scored",
            &[
                ("partition", json!(key)),
                ("rows", json!(rows_in)),
                ("scored", json!(scored)),
                ("rejected", json!(rejected)),
            ],
        );
        Ok(PartitionState {
            inputs: inputs.clone(),
            scores,
            rejects,
            rows_in,
            scored,
            rejected,
            trader_risk: None,
            trader_rows: 0,
        })
    }

    /// The periods (partition keys) whose trader risk must be computed:
    /// those rescored or never computed, and those whose declarations new
    /// inspection files refer to. A changed or removed inspection file may
    /// have referred to any period, so then all are.
    async fn trader_periods(
        &self,
        session: &Session,
        plan: &Plan,
        partitions: &BTreeMap<String, PartitionState>,
        score_urls: &mut dyn FnMut(
            &mut dyn Iterator<Item = &String>,
        ) -> datafusion::error::Result<Vec<ListingTableUrl>>,
    ) -> Result<BTreeSet<String>> {
        let previous = plan.previous.as_ref();
        let mut periods: BTreeSet<String> = partitions
            .iter()
            .filter(|(key, p)| {
                p.trader_risk.is_none()
                    || plan
                        .to_score
                        .keys()
                        .any(|period| &period.to_string() == *key)
            })
            .map(|(key, _)| key.clone())
            .collect();
        let before: BTreeMap<&str, &InputFile> = previous
            .map(|s| s.inspections.iter().map(|f| (f.path.as_str(), f)).collect())
            .unwrap_or_default();
        let now: BTreeSet<&str> = plan.inspections.iter().map(|f| f.path.as_str()).collect();
        let rewritten = before.iter().any(|(path, file)| {
            !now.contains(path)
                || plan
                    .inspections
                    .iter()
                    .any(|f| f.path == *file.path && f != *file)
        });
        if rewritten {
            return Ok(partitions.keys().cloned().collect());
        }
        let added: Vec<object_store::path::Path> = plan
            .inspections
            .iter()
            .filter(|f| !before.contains_key(f.path.as_str()))
            .map(|f| self.location.child(&f.path))
            .collect();
        let others: Vec<&String> = partitions
            .keys()
            .filter(|k| !periods.contains(*k))
            .collect();
        if added.is_empty() || others.is_empty() {
            return Ok(periods);
        }
        let ctx = session.context();
        let Some(new_inspections) = self
            .warehouse
            .table_over_files(ctx, "inspections", &added)?
        else {
            return Ok(periods);
        };
        ctx.register_table("aduana_refresh_new_inspections", new_inspections)?;
        ctx.register_table(
            "aduana_refresh_period_scores",
            risk::files_table(score_urls(&mut others.into_iter())?, SCORES_SCHEMA.clone())?,
        )?;
        let cutoff = self
            .options
            .as_of
            .map(|d| format!(" WHERE inspected_on < DATE '{d}'"))
            .unwrap_or_default();
        let query = format!(
            "SELECT DISTINCT year, month FROM aduana_refresh_period_scores
             WHERE declaration_id IN
                 (SELECT declaration_id FROM aduana_refresh_new_inspections{cutoff})"
        );
        let result: Result<Vec<RecordBatch>> = async {
            Ok(session
                .sql(&query, WritePolicy::ReadOnly)
                .await?
                .collect()
                .await?)
        }
        .await;
        ctx.deregister_table("aduana_refresh_new_inspections")?;
        ctx.deregister_table("aduana_refresh_period_scores")?;
        for batch in result? {
            let years = batch.column(0).as_primitive::<Int32Type>();
            let months = batch.column(1).as_primitive::<Int32Type>();
            for i in 0..batch.num_rows() {
                periods.insert(
                    Partition {
                        year: years.value(i),
                        month: months.value(i),
                    }
                    .to_string(),
                );
            }
        }
        Ok(periods)
    }

    /// Runs `query`, whose rows come ordered by `year`, `month`, and writes
    /// each period's rows, conformed to `schema`, to its file in `files`
    /// under the staging prefix (an empty file for a period without rows);
    /// returns the rows written per period.
    async fn write_periods(
        &self,
        session: &Session,
        query: &str,
        files: &BTreeMap<Partition, String>,
        schema: &SchemaRef,
    ) -> Result<BTreeMap<Partition, u64>> {
        let mut stream = session
            .sql(query, WritePolicy::ReadOnly)
            .await?
            .execute_stream()
            .await?;
        let file_schema = conform(&RecordBatch::new_empty(schema.clone()), schema)?.schema();
        let open = |relative: &str| {
            let path = self
                .location
                .child(&risk::join(&self.staging_dir(), relative));
            let writer = object_store::buffered::BufWriter::new(self.store().clone(), path);
            AsyncArrowWriter::try_new(writer, file_schema.clone(), None)
        };
        let mut writers = BTreeMap::new();
        for (period, relative) in files {
            writers.insert(*period, open(relative)?);
        }
        let mut rows = BTreeMap::new();
        while let Some(batch) = stream.next().await {
            let batch = conform(&batch?, schema)?;
            let years = batch
                .column_by_name("year")
                .expect("schema has year")
                .as_primitive::<Int32Type>()
                .clone();
            let months = batch
                .column_by_name("month")
                .expect("schema has month")
                .as_primitive::<Int32Type>()
                .clone();
            let mut start = 0;
            while start < batch.num_rows() {
                let period = Partition {
                    year: years.value(start),
                    month: months.value(start),
                };
                let mut end = start + 1;
                while end < batch.num_rows()
                    && (years.value(end), months.value(end)) == (period.year, period.month)
                {
                    end += 1;
                }
                let writer = writers.get_mut(&period).ok_or_else(|| {
                    RefreshError::Failed(format!(
                        "trader risk for {} which was not asked for",
                        period.to_string()
                    ))
                })?;
                writer.write(&batch.slice(start, end - start)).await?;
                *rows.entry(period).or_insert(0) += (end - start) as u64;
                start = end;
            }
        }
        for writer in writers.into_values() {
            writer.close().await?;
        }
        Ok(rows)
    }

    /// Runs `query` and writes its rows, conformed to `schema`, to
    /// `relative` under the staging prefix; returns the rows written.
    async fn write_query(
        &self,
        session: &Session,
        query: &str,
        relative: &str,
        schema: &SchemaRef,
    ) -> Result<u64> {
        let path = self
            .location
            .child(&risk::join(&self.staging_dir(), relative));
        let mut stream = session
            .sql(query, WritePolicy::ReadOnly)
            .await?
            .execute_stream()
            .await?;
        let writer = object_store::buffered::BufWriter::new(self.store().clone(), path.clone());
        let file_schema = conform(&RecordBatch::new_empty(schema.clone()), schema)?.schema();
        let mut writer = AsyncArrowWriter::try_new(writer, file_schema, None)?;
        let mut rows = 0;
        while let Some(batch) = stream.next().await {
            let batch = conform(&batch?, schema)?;
            rows += batch.num_rows() as u64;
            writer.write(&batch).await?;
        }
        writer.close().await?;
        Ok(rows)
    }

    async fn write_manifest(&self) -> Result<()> {
        let path = self.path(&format!("{}/{}.json", risk::RUNS_DIR, self.manifest.run_id));
        let body = serde_json::to_vec_pretty(&self.manifest).expect("plain data");
        self.store()
            .put(&path, PutPayload::from(body))
            .await
            .map(|_| ())
            .map_err(|e| RefreshError::storage(&path, e))
    }

    /// Deletes the staging left by runs that died (this run holds the
    /// lock, so no other run is writing there).
    async fn clean_staging(&self) -> Result<()> {
        let staging = self.path(STAGING_DIR);
        self.delete_all(&staging, |_| true).await?;
        // Renames out of staging leave its empty folders on local disk.
        if let Some(dir) = self.location.local_dir(&staging) {
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(RefreshError::storage(dir.display(), e)),
            }
        }
        Ok(())
    }

    /// Deletes every risk-table file that neither the new nor the previous
    /// snapshot lists (the previous one's files stay one more run, for
    /// queries that planned against it) nor a live reader's lease names
    /// (a server still reading an older snapshot), and this run's staging.
    async fn collect_garbage(&self, new: &Snapshot, previous: Option<&Snapshot>) -> Result<()> {
        let pinned = aduana_warehouse::readers::pinned(&self.location, &self.root).await?;
        let keep: BTreeSet<Path> = new
            .files()
            .chain(previous.into_iter().flat_map(|p| p.files()))
            .chain(pinned.files.iter().map(String::as_str))
            .map(|f| self.path(f))
            .collect();
        // Model versions: the current one, the published and previous
        // snapshots', the ones live readers loaded; the rest once a day old
        // (a build killed before it became current leaves its version).
        let models: BTreeSet<String> = [Some(new), previous]
            .into_iter()
            .flatten()
            .map(|s| s.model_version.clone())
            .chain(pinned.model_versions)
            .collect();
        aduana_model::collect_versions(self.store().as_ref(), &self.path(""), &models, MODEL_GRACE)
            .await?;
        for dir in [risk::SCORES_DIR, risk::REJECTS_DIR, risk::TRADER_RISK_DIR] {
            self.delete_all(&self.path(dir), |p| !keep.contains(p))
                .await?;
        }
        self.clean_staging().await
    }

    async fn delete_all(&self, prefix: &Path, doomed: impl Fn(&Path) -> bool) -> Result<()> {
        let listed: Vec<_> = self
            .store()
            .list(Some(prefix))
            .try_collect()
            .await
            .map_err(|e| RefreshError::storage(prefix, e))?;
        for meta in listed {
            if doomed(&meta.location) {
                match self.store().delete(&meta.location).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(RefreshError::storage(&meta.location, e)),
                }
            }
        }
        Ok(())
    }
}
