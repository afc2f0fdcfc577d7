//! The Aduana session: one function builds a DataFusion session with the
//! warehouse's tables and every Aduana function registered, and statements
//! are planned under a write policy that keeps the warehouse untouched.

pub mod bounds;
pub mod cancel;
pub mod eager_aggregate;
pub mod empty_union;
pub mod evaluate;
pub mod guards;
pub mod join_order;
pub mod mistakes;
pub mod model_build;
mod model_learn;
mod named_reports;
pub mod output;
pub mod prefix_join;
pub mod ranking;
mod rewrite;
pub mod selection;
pub mod sort_keys;
pub mod validity;

/// The documentation section of Aduana's own functions (the shell lists
/// them apart from DataFusion's).
pub use aduana_udfs::DOC_SECTION;

use std::sync::Arc;

use aduana_warehouse::Warehouse;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::datasource::listing::ListingTableUrl;
use datafusion::error::DataFusionError;
use datafusion::execution::SessionState;
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::logical_expr::{LogicalPlan, WriteOp};
use datafusion::optimizer::{Optimizer, OptimizerRule};
use datafusion::prelude::{DataFrame, SessionConfig, SessionContext};
use datafusion::sql::parser::Statement;

/// The catalog Aduana's tables live in: `aduana.public.declarations`,
/// `aduana.reference.tariff`, later `aduana.risk.*`.
pub const CATALOG: &str = "aduana";
/// Hash joins whose build side is estimated below this many rows, or this
/// many bytes where its size is known, build one table for all partitions
/// (see `Session::open`).
pub const COLLECT_BUILD_SIDE_ROWS: usize = 1_000_000;
pub const COLLECT_BUILD_SIDE_BYTES: usize = 64 << 20;

pub use aduana_warehouse::contract::DEFAULT_SCHEMA;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Warehouse(#[from] aduana_warehouse::WarehouseError),
    #[error("{0}")]
    DataFusion(#[from] DataFusionError),
    #[error(transparent)]
    Model(#[from] aduana_model::ModelError),
    #[error("{0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// A statement that failed to plan or run.
    #[error("{statement}: {source}")]
    Statement {
        statement: String,
        source: DataFusionError,
    },
    /// A statement the write policy refused (servers answer it with
    /// PERMISSION_DENIED, not as a bad statement).
    #[error("{statement}: {reason}")]
    Refused { statement: String, reason: String },
    #[error("{0}")]
    InvalidOption(String),
    /// SQL that does not parse, said as a person reads it.
    #[error("{0}")]
    Syntax(String),
    /// A statement too long or too deeply nested to plan safely (servers
    /// answer INVALID_ARGUMENT).
    #[error("{0}")]
    TooComplex(String),
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;

#[derive(Debug, Clone, Default)]
pub struct EngineOptions {
    /// Parallelism of plans; DataFusion's default (the core count) when unset.
    pub target_partitions: Option<usize>,
    /// Bytes of memory queries may use before spilling or failing.
    pub memory_limit: Option<usize>,
    /// Do not load the current risk model (the model builder must run even
    /// when the current model is missing its files or from an older format).
    pub skip_model: bool,
    /// Load this model version instead of the current one (the refresh job
    /// scores with the version it built, backtests with their own).
    pub model_at: Option<ModelAt>,
    /// Plan and run on this cluster instead of in this process.
    pub cluster: Option<ClusterTarget>,
}

/// Makes the session context a session plans in when it runs on a
/// cluster. The engine knows no cluster software: the binary, its one
/// composition point, passes the cluster crate's connector (Ballista), so
/// the crates that only use sessions do not build it.
#[async_trait::async_trait]
pub trait ClusterConnector: Send + Sync {
    /// A context planning on the cluster at `url`, with `config` and
    /// `runtime`, whose processes can rebuild the functions over `model`
    /// (read from `store`); tables and functions are registered on it
    /// afterwards.
    async fn connect(
        &self,
        url: &str,
        config: SessionConfig,
        runtime: Arc<RuntimeEnv>,
        model: &aduana_udfs::ModelHandle,
        store: Arc<dyn object_store::ObjectStore>,
    ) -> Result<SessionContext>;
}

/// A cluster to run on: its address and how to connect to it.
#[derive(Clone)]
pub struct ClusterTarget {
    /// The scheduler, `df://HOST:PORT`.
    pub url: String,
    pub connector: Arc<dyn ClusterConnector>,
}

impl std::fmt::Debug for ClusterTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClusterTarget({})", self.url)
    }
}

/// A written model version: the root its `risk/model/` is under (the
/// warehouse's, or a backtest's) and the version.
#[derive(Debug, Clone)]
pub struct ModelAt {
    pub root: object_store::path::Path,
    pub version: String,
}

/// What statements may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WritePolicy {
    /// The shell and `aduana sql`: views, memory tables, `SET` and
    /// `COPY ... TO` outside the warehouse are allowed; nothing may write
    /// to a warehouse table or into the warehouse's storage.
    Analyst,
    /// Servers: queries only (`SELECT`, `EXPLAIN`, `SHOW`, `DESCRIBE`).
    ReadOnly,
}

/// A session over one warehouse.
pub struct Session {
    ctx: SessionContext,
    warehouse: Warehouse,
    model: aduana_udfs::ModelHandle,
}

/// `table` (a table or a parenthesized query of declaration items) with
/// each item's unsupervised evidence as the columns `value_z`,
/// `p_wrong_code`, `origin_score`, `at_stake`: what `valuation_deviation`
/// (with the importer), `hs_misclassification_probability` (with the
/// price), `origin_risk` (with the importer and date) and `revenue_at_risk`
/// give, from one `item_evidence` call per item (the four share most of
/// their work; one call in sessions that, as [`Session::open`]'s, turn
/// DataFusion's leaf-expression pushdown off, which would copy the call
/// into each field access). Scoring and training read the evidence through
/// this one definition, so a model scores what it learned from.
pub fn with_evidence(table: &str) -> String {
    format!(
        "SELECT * EXCLUDE (evidence), evidence['value_z'] AS value_z,
                evidence['p_wrong_code'] AS p_wrong_code,
                evidence['origin_score'] AS origin_score,
                evidence['at_stake'] AS at_stake
         FROM (SELECT d.*,
                      item_evidence(d.hs_code, d.origin_country, d.export_country, d.customs_value,
                                    d.quantity, d.quantity_unit, d.net_mass_kg, d.declaration_date,
                                    d.description, d.preference_code, d.duty_rate, d.duties_paid,
                                    d.importer_id) AS evidence
               FROM {table} d)"
    )
}

/// The learned model's arguments (`aduana_model::learned::features::COLUMNS`)
/// over the evidence columns and the item's own: training and scoring pass
/// the same.
pub const LEARNED_ARGUMENTS: &str = "value_z, p_wrong_code, origin_score, at_stake, hs_code, \
       origin_country, export_country, office_code, importer_id, declarant_id, supplier_id, regime, \
       transport_mode, preference_code, customs_value, net_mass_kg, quantity, duty_rate";

/// `scored_items`: every declaration item with its risk scores and the
/// revenue at stake, as the reports read them (one definition instead of
/// the same expressions in each report).
fn scored_items_view() -> String {
    format!(
        "CREATE VIEW scored_items AS
         SELECT *, risk_score(value_z, p_wrong_code, origin_score, p_fraud) AS risk
         FROM (SELECT * EXCLUDE (learned), learned['p_fraud'] AS p_fraud,
                      learned['revenue_expected'] AS revenue_expected
               FROM (SELECT *, learned_scores({LEARNED_ARGUMENTS}) AS learned
                     FROM ({evidence})))",
        evidence = with_evidence("declarations")
    )
}

/// Items per declaration, of the declarations controlled whole (inspections
/// without an item number): what a whole declaration's revenue is shared
/// among. None, usually: the declarations are then not read.
pub(crate) const WHOLE_CONTROLLED_ITEMS: &str = "SELECT declaration_id, COUNT(*) AS items FROM declarations \
     WHERE declaration_id IN (SELECT declaration_id FROM inspections WHERE item_no IS NULL) \
     GROUP BY declaration_id";

/// `risk.control_outcomes`: every control `aduana select` published, with
/// what inspections found of it so far (`fraud` NULL until one is known;
/// an item's own inspection or its declaration's, as everywhere), so the
/// monitoring reports share one definition of a control's outcome. A
/// control of the whole declaration recovers revenue for the declaration:
/// `recovered` shares it evenly among the declaration's selected items (a
/// declaration's items are selected on its one day), so totals count it
/// once and each lane and chooser gets its part; `item_recovered` gives
/// each item its even share among all the declaration's items, what a
/// random control says of one item when the estimate scales it up by its
/// weight.
fn control_outcomes_view() -> String {
    format!(
        "CREATE VIEW risk.control_outcomes AS
     WITH outcome AS (
         SELECT declaration_id, item_no,
                MAX(CASE WHEN result = 'fraud' THEN 1 ELSE 0 END) AS fraud,
                SUM(CASE WHEN result = 'fraud' THEN CAST(additional_revenue AS DOUBLE) ELSE 0 END) AS recovered
         FROM inspections GROUP BY declaration_id, item_no),
     whole AS (SELECT * FROM outcome WHERE item_no IS NULL),
     items AS ({WHOLE_CONTROLLED_ITEMS})
     SELECT s.*, GREATEST(i.fraud, w.fraud) AS fraud,
            COALESCE(i.recovered, 0)
            + COALESCE(w.recovered / COUNT(*) OVER (PARTITION BY s.declaration_id), 0) AS recovered,
            COALESCE(i.recovered, 0) + COALESCE(w.recovered / n.items, 0) AS item_recovered
     FROM risk.selections s
     LEFT JOIN outcome i ON i.declaration_id = s.declaration_id AND i.item_no = s.item_no
     LEFT JOIN whole w ON w.declaration_id = s.declaration_id
     LEFT JOIN items n ON n.declaration_id = s.declaration_id"
    )
}

/// `risk.price_profiles`: the reference price cells of the model the
/// session loaded (log unit values; `level` 0 national line x origin,
/// 1 HS6 x origin, 2 HS6, 3 HS4), so reports can draw a declared price
/// against its reference band.
fn register_price_profiles(
    ctx: &SessionContext,
    location: &aduana_warehouse::Location,
    root: &object_store::path::Path,
    version: &str,
) -> Result<()> {
    let file = aduana_model::version_file(root, version, aduana_model::PRICE_FILE);
    let url = ListingTableUrl::parse(location.url_of(&file, false))?;
    let table = aduana_warehouse::risk::files_table(vec![url], aduana_model::price_schema())?;
    ctx.register_table(
        format!("{}.price_profiles", aduana_warehouse::risk::SQL_SCHEMA),
        table,
    )?;
    Ok(())
}

/// Parses `"4G"`, `"512M"`, `"1.5GB"`, `"1048576"` into bytes.
pub fn parse_size(text: &str) -> Result<usize> {
    let t = text.trim().to_ascii_uppercase();
    let t = t.strip_suffix('B').unwrap_or(&t);
    let (number, factor) = match t.chars().last() {
        Some('K') => (&t[..t.len() - 1], 1u64 << 10),
        Some('M') => (&t[..t.len() - 1], 1 << 20),
        Some('G') => (&t[..t.len() - 1], 1 << 30),
        Some('T') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    match number.trim().parse::<f64>() {
        Ok(n) if n > 0.0 && n.is_finite() => Ok((n * factor as f64) as usize),
        _ => Err(EngineError::InvalidOption(format!(
            "invalid size {text:?} (use e.g. 512M, 4G)"
        ))),
    }
}

/// DataFusion's logical rules as the session runs them: sorts keep every
/// key named (`sort_keys`), and aggregates over joins are grouped below
/// them where that is exact (`eager_aggregate`, last: it reads the plan the
/// other rules made, and the next pass tidies what it builds).
pub(crate) fn optimizer_rules() -> Vec<Arc<dyn OptimizerRule + Send + Sync>> {
    let mut rules: Vec<Arc<dyn OptimizerRule + Send + Sync>> = Optimizer::new()
        .rules
        .into_iter()
        .map(|rule| -> Arc<dyn OptimizerRule + Send + Sync> {
            if rule.name() == "eliminate_duplicated_expr" {
                Arc::new(sort_keys::RepeatedSortKeys::default())
            } else {
                rule
            }
        })
        .collect();
    rules.push(Arc::new(eager_aggregate::EagerAggregation));
    rules
}

impl Session {
    /// Builds the session: configuration, warehouse tables, Aduana functions.
    pub async fn open(warehouse: Warehouse, options: &EngineOptions) -> Result<Session> {
        let mut config = SessionConfig::new()
            .with_information_schema(true)
            .with_default_catalog_and_schema(CATALOG, DEFAULT_SCHEMA)
            .with_create_default_catalog_and_schema(true);
        // Join selection reads row estimates through the statistics
        // registry, which gives grouped aggregates one (see `join_order`).
        config.options_mut().optimizer.use_statistics_registry = true;
        // A join whose build side is estimated under a million rows (64 MiB
        // where its size is known, which join selection then reads
        // instead) builds one hash table that every partition probes
        // (`CollectLeft`), rather than hash-repartitioning both sides
        // (DataFusion's default collects below 128k rows or 1 MiB): the
        // one table costs what the partitioned ones would in memory, and
        // repartitioning the probe side hashes and copies every one of its
        // rows once more. The inspection-outcome reports probe with all 10
        // million items: measured in docs/performance.md. The estimate of a
        // grouping without distinct counts is a tenth of its input (see
        // `join_order`), so a side collected here may hold more rows than
        // estimated. A Ballista cluster plans with Ballista's own broadcast
        // thresholds (`upgrade_for_ballista` replaces these).
        let optimizer = &mut config.options_mut().optimizer;
        optimizer.hash_join_single_partition_threshold_rows = COLLECT_BUILD_SIDE_ROWS;
        optimizer.hash_join_single_partition_threshold = COLLECT_BUILD_SIDE_BYTES;
        // Leaf-expression pushdown moves `learned['p_fraud']` and
        // `learned['revenue_expected']` of `scored_items` (and the four
        // fields of `evidence`, see `with_evidence`) below the projection
        // that computes the struct once, inlining `learned_scores(...)`
        // into each field access: the trees then ran once per field read,
        // doubling the cost of scoring (a known
        // upstream bug, apache/datafusion#25447 and #23655, still in
        // 55.2). Its gain, pruning Parquet struct columns, does not apply
        // here: the warehouse's tables hold no structs.
        config
            .options_mut()
            .optimizer
            .enable_leaf_expression_pushdown = false;
        if let Some(n) = options.target_partitions {
            if n == 0 {
                return Err(EngineError::InvalidOption(
                    "--target-partitions must be at least 1".into(),
                ));
            }
            config = config.with_target_partitions(n);
        }
        // Files grouped by their year=/month= folder when a scan covers at
        // least one month per core: each partition then holds whole months,
        // so a GROUP BY year, month (the monthly reports) aggregates once,
        // without a second phase or a shuffle, and no core waits on
        // another's months. Fewer months than cores (one month's refresh)
        // keep the byte-range split and its parallelism. Measured on 10
        // million items, declarations per month with COUNT(DISTINCT): 1.09
        // to 1.23 s and 840 MB before, 0.76 to 0.81 s and 565 MB after.
        config.options_mut().optimizer.preserve_file_partitions =
            config.options().execution.target_partitions;
        let mut runtime = RuntimeEnvBuilder::new();
        if let Some(limit) = options.memory_limit {
            runtime = runtime.with_memory_pool(Arc::new(FairSpillPool::new(limit)));
        }
        let location = warehouse.location();
        let store = location.store.as_ref();
        // The model's files are read now (a missing one is named here),
        // decoded when a function first needs them.
        let (root, model) = match (&options.model_at, options.skip_model) {
            (_, true) => (location.prefix.clone(), None),
            (Some(at), false) => (
                at.root.clone(),
                Some(aduana_model::fetch_version(store, &at.root, &at.version).await),
            ),
            // The current model of the risk tables the session reads: a
            // backtest's scores come with the backtest's model (its
            // window, its functions), not the warehouse's.
            (None, false) => {
                let root = warehouse.risk_root();
                let current = aduana_model::fetch_current(store, &root).await;
                (root, current.transpose())
            }
        };
        let model = model.transpose().map_err(|e| {
            EngineError::InvalidOption(format!("{e}; rebuild it with `aduana model build`"))
        })?;
        let model = match model {
            Some(files) => aduana_udfs::ModelHandle::read(files, root.as_ref()),
            None => aduana_udfs::ModelHandle::default(),
        };
        let runtime = runtime.build_arc()?;
        let ctx = match &options.cluster {
            None => SessionContext::new_with_state(
                SessionStateBuilder::new()
                    .with_config(config)
                    .with_runtime_env(runtime)
                    .with_default_features()
                    .with_physical_optimizer_rule(Arc::new(guards::JoinSizeLimit))
                    .with_physical_optimizer_rule(Arc::new(cancel::YieldingMultipliers))
                    .with_physical_optimizer_rule(Arc::new(empty_union::WithoutEmptyUnionInputs))
                    .with_physical_optimizer_rule(Arc::new(ranking::RankingOverSortedInput))
                    .with_physical_optimizer_rule(Arc::new(prefix_join::PrefixLookups))
                    .with_optimizer_rules(optimizer_rules())
                    .with_statistics_registry(join_order::statistics_registry())
                    .build(),
            ),
            Some(target) => {
                target
                    .connector
                    .connect(&target.url, config, runtime, &model, location.store.clone())
                    .await?
            }
        };
        warehouse.register(&ctx)?;
        aduana_udfs::register_all(&ctx, &model)?;
        guards::register(&ctx)?;
        if let Some(version) = model.version().map(str::to_string) {
            register_price_profiles(&ctx, location, &root, &version)?;
            // Planned now, run per query: DataFusion prunes the columns a
            // query does not read and pushes filters on declaration columns
            // down to the scan.
            ctx.sql(&scored_items_view()).await?;
            // The selection reads the session's own tables when scanned; a
            // cluster's executors could not run it.
            if options.cluster.is_none() {
                ctx.register_udtf(
                    "selection",
                    Arc::new(selection::SelectionFunction::new(
                        warehouse.clone(),
                        version,
                    )),
                );
            }
        }
        if warehouse.table("inspections").is_some() {
            ctx.sql(&control_outcomes_view()).await?;
        }
        Ok(Session {
            ctx,
            warehouse,
            model,
        })
    }

    /// Whether a risk model was loaded (the risk functions and the
    /// `scored_items` view need one).
    pub fn has_model(&self) -> bool {
        self.model.is_present()
    }

    /// The version of the risk model the session loaded.
    pub fn model_version(&self) -> Option<String> {
        self.model.version().map(str::to_string)
    }

    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    pub fn warehouse(&self) -> &Warehouse {
        &self.warehouse
    }

    /// The risk model the session's functions use.
    pub fn model(&self) -> &aduana_udfs::ModelHandle {
        &self.model
    }

    /// Splits `sql` into statements (separated by `;`), without planning:
    /// each is planned only when the ones before it have run, so a view
    /// created by one statement is visible to the next. Statements too
    /// long or too deeply nested are refused (see [`bounds`]).
    pub fn statements(sql: &str) -> Result<Vec<Statement>> {
        bounds::parse(sql)
    }

    /// Plans `statement` under `policy` and executes it (DDL and `COPY` run
    /// now; a query returns a frame to stream). Errors name the statement.
    pub async fn execute(&self, statement: Statement, policy: WritePolicy) -> Result<DataFrame> {
        let text = statement_text(&statement);
        let plan = self.plan(&self.ctx.state(), statement, policy).await?;
        self.ctx
            .execute_logical_plan(plan)
            .await
            .map_err(|source| EngineError::Statement {
                statement: text,
                source,
            })
    }

    /// Plans `statement` in `state` (which may differ from the session's
    /// own, e.g. in its default schema) and checks it against `policy` and
    /// the depth limit, without running anything. Planning runs on the
    /// planning stack ([`bounds::on_planning_stack`]).
    pub async fn plan(
        &self,
        state: &SessionState,
        statement: Statement,
        policy: WritePolicy,
    ) -> Result<LogicalPlan> {
        let state = state.clone();
        let location = self.warehouse.location().clone();
        bounds::on_planning_stack(async move {
            let text = statement_text(&statement);
            let plan = state.statement_to_plan(statement).await.map_err(|source| {
                EngineError::Statement {
                    statement: text.clone(),
                    source: mistakes::signature_mismatch(source),
                }
            })?;
            check(&location, &text, &plan, policy)?;
            bounds::check_plan_depth(&plan)
                .map_err(|e| EngineError::TooComplex(format!("{text}: {e}")))?;
            Ok(plan)
        })
        .await
    }

    /// Runs every statement of `sql`; returns the last statement's frame.
    pub async fn sql(&self, sql: &str, policy: WritePolicy) -> Result<DataFrame> {
        let mut last = None;
        for statement in Self::statements(sql)? {
            last = Some(self.execute(statement, policy).await?);
        }
        last.ok_or_else(|| EngineError::InvalidOption("no SQL statement given".into()))
    }

    /// Whether writing to `target` (a path or URL, as `COPY ... TO` reads
    /// it) would write into the warehouse.
    pub fn is_inside_warehouse(&self, target: &str) -> bool {
        self.warehouse.location().contains_target(target)
    }

    /// Whether writing the local file `path` (`\o`, `-o`: a path, never a
    /// URL) would write into the warehouse.
    pub fn is_inside_warehouse_path(&self, path: &std::path::Path) -> bool {
        self.warehouse.location().contains_local_path(path)
    }
}

/// Refuses what `policy` forbids anywhere in the plan: `EXPLAIN ANALYZE`
/// runs the statement it wraps, so the top node alone is not enough.
fn check(
    location: &aduana_warehouse::Location,
    statement: &str,
    plan: &LogicalPlan,
    policy: WritePolicy,
) -> Result<()> {
    let mut refused = None;
    plan.apply(|node| {
        refused = refusal(location, node, policy);
        Ok(if refused.is_some() {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    })?;
    match refused {
        Some(reason) => Err(EngineError::Refused {
            statement: statement.to_string(),
            reason,
        }),
        None => Ok(()),
    }
}

/// Why `policy` refuses this one plan node, if it does.
fn refusal(
    location: &aduana_warehouse::Location,
    node: &LogicalPlan,
    policy: WritePolicy,
) -> Option<String> {
    match (node, policy) {
        (LogicalPlan::Dml(dml), _) if !matches!(dml.op, WriteOp::Ctas) => Some(format!(
            "{} on {} refused: SQL here never modifies tables (warehouse tables are read-only)",
            dml.op, dml.table_name
        )),
        (LogicalPlan::Copy(copy), WritePolicy::Analyst) => {
            location.contains_target(&copy.output_url).then(|| {
                format!(
                    "COPY to {} refused: it is inside the warehouse {}, which Aduana never writes to from SQL",
                    copy.output_url, location.display
                )
            })
        }
        (LogicalPlan::Dml(_) | LogicalPlan::Copy(_), WritePolicy::ReadOnly) => {
            Some("refused: this endpoint is read-only (no writes, no COPY)".into())
        }
        (LogicalPlan::Ddl(_), WritePolicy::ReadOnly) => {
            Some("refused: this endpoint is read-only (no CREATE, DROP or external tables)".into())
        }
        (LogicalPlan::Statement(_), WritePolicy::ReadOnly) => Some(
            "refused: this endpoint does not accept session statements (SET, PREPARE, ...)".into(),
        ),
        _ => None,
    }
}

/// The statement as SQL text for messages, cut after 200 characters.
pub fn statement_text(statement: &Statement) -> String {
    let text = statement.to_string();
    if text.len() > 200 {
        let cut = (0..=200)
            .rev()
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(0);
        format!("{}...", &text[..cut])
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4G").unwrap(), 4 << 30);
        assert_eq!(parse_size("512mb").unwrap(), 512 << 20);
        assert_eq!(parse_size("1.5G").unwrap(), 3 << 29);
        assert_eq!(parse_size("1000").unwrap(), 1000);
        assert!(parse_size("lots").unwrap_err().to_string().contains("lots"));
        assert!(parse_size("-1G").is_err());
    }
}
