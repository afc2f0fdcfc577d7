//! Joins on `starts_with(item.code, reference.prefix)` by looking the
//! item's own prefixes up in a hash table of the reference's.
//!
//! Why: customs reference data is keyed by code prefixes (a tariff line,
//! a trade remedy or a risk profile applies to every HS code that starts
//! with its code), so "the tariff line of each item" is a join on
//! `starts_with`. That is not an equality, and DataFusion 55 runs it as a
//! nested-loop join: every item against every line, the filter evaluated
//! on each pair (10 million items × 92 lines took 10 s of compute; issue
//! 21's longest-prefix case). But the lines an item can match are among
//! its own prefixes, one per distinct length of the reference codes: the
//! build side is put in a hash table by code, and each item looks up its
//! prefixes of those lengths (here one lookup per item).
//!
//! [`PrefixLookups`] replaces a `NestedLoopJoinExec` (inner, or preserving
//! its probe side: an item without a line is kept) whose filter has a
//! conjunct `starts_with(probe column, build column)` on strings by a
//! [`PrefixJoinExec`]. The lookups only propose candidate pairs: the join's
//! whole filter is still evaluated on them, so the result is the nested
//! loop's by construction. A Ballista cluster keeps DataFusion's operator
//! (this one has no wire format).

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, AsArray, RecordBatch, RecordBatchOptions, StringViewArray, UInt32Array,
};
use datafusion::arrow::compute::{cast, concat_batches, filter, take};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{DataFusionError, HashMap, JoinSide, JoinType, Result, Statistics};
use datafusion::execution::TaskContext;
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::projection::ProjectionRef;
use datafusion::physical_expr::split_conjunction;
use datafusion::physical_expr::{PhysicalExpr, ScalarFunctionExpr};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::execution_plan::CardinalityEffect;
use datafusion::physical_plan::joins::NestedLoopJoinExec;
use datafusion::physical_plan::joins::utils::JoinFilter;
use datafusion::physical_plan::metrics::{BaselineMetrics, ExecutionPlanMetricsSet, MetricsSet};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    ChildStats, ChildrenPropertiesMode, DisplayAs, DisplayFormatType, ExecutionPlan,
    ExecutionPlanProperties, InputDistributionRequirements, PlanProperties, ReplaceChildrenOptions,
    SendableRecordBatchStream, StatisticsArgs,
};
use futures::{StreamExt, TryStreamExt};
use tokio::sync::OnceCell;

/// The rule's name, for sessions that must not run it (a cluster's).
pub const RULE_NAME: &str = "prefix_lookups";

/// A nested-loop join on a prefix, run by hash lookups (see the module's
/// comment).
#[derive(Debug)]
pub struct PrefixJoinExec {
    /// The `NestedLoopJoinExec` replaced: what the plan sees of this one,
    /// and its inputs (left: the collected build side).
    join: Arc<dyn ExecutionPlan>,
    /// Its filter, join type and projection.
    joining: Joining,
    /// The build column of prefixes (the probe column of strings is the
    /// joining's).
    build_key: usize,
    /// The build side, collected once for every output partition.
    build: Arc<OnceCell<Arc<BuildSide>>>,
    metrics: ExecutionPlanMetricsSet,
}

impl PrefixJoinExec {
    /// `None` unless `join` is inner or keeps its probe side, and its filter
    /// has a conjunct `starts_with(probe string column, build string
    /// column)`.
    pub fn try_new(join: Arc<dyn ExecutionPlan>) -> Option<Self> {
        let nested = join.downcast_ref::<NestedLoopJoinExec>()?;
        if !matches!(nested.join_type(), JoinType::Inner | JoinType::Right) {
            return None;
        }
        let filter = nested.filter()?;
        let side_of = |expr: &Arc<dyn PhysicalExpr>| {
            let column = expr.downcast_ref::<Column>()?;
            let index = filter.column_indices().get(column.index())?;
            let string = matches!(
                filter.schema().field(column.index()).data_type(),
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
            );
            string.then_some((index.side, index.index))
        };
        let (probe_key, build_key) = split_conjunction(filter.expression())
            .into_iter()
            .find_map(|conjunct| {
                let call = conjunct.downcast_ref::<ScalarFunctionExpr>()?;
                let [string, prefix] = call.args() else {
                    return None;
                };
                if call.fun().name() != "starts_with" {
                    return None;
                }
                match (side_of(string)?, side_of(prefix)?) {
                    ((JoinSide::Right, probe), (JoinSide::Left, build)) => Some((probe, build)),
                    _ => None,
                }
            })?;
        let joining = Joining {
            filter: filter.clone(),
            join_type: *nested.join_type(),
            projection: nested.projection().clone(),
            schema: join.schema(),
            probe_key,
        };
        Some(PrefixJoinExec {
            join,
            joining,
            build_key,
            build: Arc::new(OnceCell::new()),
            metrics: ExecutionPlanMetricsSet::new(),
        })
    }

    /// The build side, collected by the first partition that needs it.
    async fn build_side(
        left: Arc<dyn ExecutionPlan>,
        key: usize,
        cell: Arc<OnceCell<Arc<BuildSide>>>,
        context: Arc<TaskContext>,
    ) -> Result<Arc<BuildSide>> {
        let side = cell
            .get_or_try_init(|| async {
                let mut batches = Vec::new();
                // The nested loop's left input is one partition (its
                // required distribution).
                for partition in 0..left.output_partitioning().partition_count() {
                    let stream = left.execute(partition, Arc::clone(&context))?;
                    batches.extend(stream.try_collect::<Vec<_>>().await?);
                }
                let batch = concat_batches(&left.schema(), &batches)?;
                drop(batches);
                // Held as the nested loop holds its build side: within the
                // session's memory limit, or refused by name.
                let reservation =
                    MemoryConsumer::new("PrefixJoinExec").register(context.memory_pool());
                reservation.try_grow(batch.get_array_memory_size())?;
                let side = BuildSide::new(batch, key, reservation)?;
                Ok::<_, DataFusionError>(Arc::new(side))
            })
            .await?;
        Ok(Arc::clone(side))
    }
}

/// The build side's rows and, for each distinct prefix, its rows.
#[derive(Debug)]
struct BuildSide {
    batch: RecordBatch,
    rows_of: HashMap<Box<[u8]>, Vec<u32>>,
    /// The prefixes' distinct lengths in bytes, ascending.
    lengths: Vec<usize>,
    /// The memory the rows and the table hold, released with them.
    _reservation: MemoryReservation,
}

impl BuildSide {
    fn new(batch: RecordBatch, key: usize, reservation: MemoryReservation) -> Result<BuildSide> {
        let keys = strings(batch.column(key))?;
        let mut rows_of: HashMap<Box<[u8]>, Vec<u32>> = HashMap::default();
        for (row, key) in keys.iter().enumerate() {
            if let Some(key) = key {
                rows_of
                    .entry(key.as_bytes().into())
                    .or_default()
                    .push(row as u32);
            }
        }
        let entry = size_of::<(Box<[u8]>, Vec<u32>)>() + size_of::<u64>();
        let keys: usize = rows_of.keys().map(|k| k.len()).sum();
        reservation.try_grow(rows_of.capacity() * entry + keys + 4 * batch.num_rows())?;
        let mut lengths: Vec<usize> = rows_of.keys().map(|k| k.len()).collect();
        lengths.sort_unstable();
        lengths.dedup();
        Ok(BuildSide {
            batch,
            rows_of,
            lengths,
            _reservation: reservation,
        })
    }
}

/// A string column as views (Parquet scans give views already).
fn strings(column: &ArrayRef) -> Result<StringViewArray> {
    Ok(cast(column, &DataType::Utf8View)?.as_string_view().clone())
}

impl DisplayAs for PrefixJoinExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "PrefixJoinExec: join_type={}, filter={}",
            self.joining.join_type, self.joining.filter
        )
    }
}

impl ExecutionPlan for PrefixJoinExec {
    fn name(&self) -> &str {
        "PrefixJoinExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.join.properties()
    }

    fn input_distribution_requirements(&self) -> InputDistributionRequirements {
        self.join.input_distribution_requirements()
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        self.join.maintains_input_order()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        self.join.children()
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        self.join.apply_expressions(f)
    }

    fn replace_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
        options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let join = Arc::clone(&self.join).replace_children(children, options)?;
        Ok(replaced(join))
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let [left, right] = self.join.children()[..] else {
            unreachable!("a join has two inputs")
        };
        let build = Self::build_side(
            Arc::clone(left),
            self.build_key,
            Arc::clone(&self.build),
            Arc::clone(&context),
        );
        let mut probe = Some(right.execute(partition, context)?);
        let joining = self.joining.clone();
        let metrics = BaselineMetrics::new(&self.metrics, partition);
        let joined = futures::stream::once(build)
            .map_ok(move |build| {
                let (joining, metrics) = (joining.clone(), metrics.clone());
                probe
                    .take()
                    .expect("one build side per stream")
                    .map(move |batch| {
                        let timer = metrics.elapsed_compute().timer();
                        let out = joining.join(&build, &batch?)?;
                        timer.done();
                        metrics.record_output(out.num_rows());
                        Ok(out)
                    })
            })
            .try_flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.join.schema(),
            joined,
        )))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }

    fn child_stats_requests(&self, partition: Option<usize>) -> Vec<ChildStats> {
        self.join.child_stats_requests(partition)
    }

    fn statistics_from_inputs(
        &self,
        input_stats: &[Arc<Statistics>],
        args: &StatisticsArgs,
    ) -> Result<Arc<Statistics>> {
        self.join.statistics_from_inputs(input_stats, args)
    }

    fn cardinality_effect(&self) -> CardinalityEffect {
        self.join.cardinality_effect()
    }
}

/// How each probe batch is joined: the nested loop's filter, join type,
/// projection and output schema, and the probe side's strings.
#[derive(Debug, Clone)]
struct Joining {
    filter: JoinFilter,
    join_type: JoinType,
    projection: Option<ProjectionRef>,
    schema: SchemaRef,
    probe_key: usize,
}

impl Joining {
    fn join(&self, build: &BuildSide, probe: &RecordBatch) -> Result<RecordBatch> {
        // Candidates: each probe row with every build row keyed by one of
        // its prefixes, in probe order.
        let keys = strings(probe.column(self.probe_key))?;
        let (mut build_rows, mut probe_rows) = (Vec::new(), Vec::new());
        for (row, key) in keys.iter().enumerate() {
            let Some(key) = key.map(str::as_bytes) else {
                continue;
            };
            for &length in build.lengths.iter().take_while(|&&l| l <= key.len()) {
                if let Some(rows) = build.rows_of.get(&key[..length]) {
                    build_rows.extend_from_slice(rows);
                    probe_rows.extend(std::iter::repeat_n(row as u32, rows.len()));
                }
            }
        }
        let (mut build_rows, mut probe_rows) =
            (UInt32Array::from(build_rows), UInt32Array::from(probe_rows));
        // The join's own filter decides, on the candidates only.
        {
            let join_filter = &self.filter;
            let columns = join_filter
                .column_indices()
                .iter()
                .map(|c| match c.side {
                    JoinSide::Left => take(build.batch.column(c.index), &build_rows, None),
                    _ => take(probe.column(c.index), &probe_rows, None),
                })
                .collect::<std::result::Result<Vec<_>, _>>()?;
            let pairs = RecordBatch::try_new_with_options(
                Arc::clone(join_filter.schema()),
                columns,
                &RecordBatchOptions::new().with_row_count(Some(build_rows.len())),
            )?;
            let keep = join_filter
                .expression()
                .evaluate(&pairs)?
                .into_array(pairs.num_rows())?;
            // `filter` takes NULL as false: not a match.
            let keep = keep.as_boolean();
            build_rows = filter(&build_rows, keep)?.as_primitive().clone();
            probe_rows = filter(&probe_rows, keep)?.as_primitive().clone();
        }
        if self.join_type == JoinType::Right {
            (build_rows, probe_rows) = with_unmatched(&build_rows, &probe_rows, probe.num_rows());
        }
        let mut columns: Vec<ArrayRef> = build
            .batch
            .columns()
            .iter()
            .map(|c| take(c, &build_rows, None))
            .collect::<std::result::Result<_, _>>()?;
        for c in probe.columns() {
            columns.push(take(c, &probe_rows, None)?);
        }
        if let Some(projection) = &self.projection {
            columns = projection
                .iter()
                .map(|&i| Arc::clone(&columns[i]))
                .collect();
        }
        Ok(RecordBatch::try_new_with_options(
            Arc::clone(&self.schema),
            columns,
            &RecordBatchOptions::new().with_row_count(Some(probe_rows.len())),
        )?)
    }
}

/// The matched pairs (in probe order) with each probe row that has none
/// added in its place, paired with a null build row.
fn with_unmatched(
    build_rows: &UInt32Array,
    probe_rows: &UInt32Array,
    probe_len: usize,
) -> (UInt32Array, UInt32Array) {
    let mut build = Vec::with_capacity(probe_len.max(build_rows.len()));
    let mut probe = Vec::with_capacity(probe_len.max(build_rows.len()));
    let mut pairs = build_rows
        .values()
        .iter()
        .zip(probe_rows.values())
        .peekable();
    for row in 0..probe_len as u32 {
        let mut matched = false;
        while let Some((&b, _)) = pairs.next_if(|(_, p)| **p == row) {
            build.push(Some(b));
            probe.push(row);
            matched = true;
        }
        if !matched {
            build.push(None);
            probe.push(row);
        }
    }
    (UInt32Array::from(build), UInt32Array::from(probe))
}

/// `join` as a [`PrefixJoinExec`] when it qualifies, else unchanged.
fn replaced(join: Arc<dyn ExecutionPlan>) -> Arc<dyn ExecutionPlan> {
    match PrefixJoinExec::try_new(Arc::clone(&join)) {
        Some(prefix) => Arc::new(prefix),
        None => join,
    }
}

/// The session's rule: see the module's comment.
#[derive(Debug, Default)]
pub struct PrefixLookups;

impl PhysicalOptimizerRule for PrefixLookups {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            if !node.is::<NestedLoopJoinExec>() {
                return Ok(Transformed::no(node));
            }
            let new = replaced(Arc::clone(&node));
            let changed = !Arc::ptr_eq(&new, &node);
            Ok(Transformed::new_transformed(new, changed))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        RULE_NAME
    }

    fn schema_check(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Float64Array, Int32Array, StringArray};
    use datafusion::arrow::datatypes::{Field, Schema};
    use datafusion::arrow::util::pretty::pretty_format_batches;
    use datafusion::datasource::MemTable;
    use datafusion::execution::session_state::SessionStateBuilder;
    use datafusion::prelude::{SessionConfig, SessionContext};

    fn table(fields: Vec<Field>, columns: Vec<ArrayRef>, batch: usize) -> Arc<MemTable> {
        let schema = Arc::new(Schema::new(fields));
        let all = RecordBatch::try_new(Arc::clone(&schema), columns).unwrap();
        let batches = (0..all.num_rows())
            .step_by(batch)
            .map(|start| all.slice(start, batch.min(all.num_rows() - start)))
            .collect();
        Arc::new(MemTable::try_new(schema, vec![batches]).unwrap())
    }

    /// 400 items with codes of 3 to 10 digits (and a few NULL or empty),
    /// and prefixes of 2, 4 and 6 digits, some repeated, one NULL.
    fn context(with_rule: bool) -> SessionContext {
        let config = SessionConfig::new()
            .with_batch_size(64)
            .with_target_partitions(2);
        let mut state = SessionStateBuilder::new()
            .with_config(config)
            .with_default_features();
        if with_rule {
            state = state.with_physical_optimizer_rule(Arc::new(PrefixLookups));
        }
        let ctx = SessionContext::new_with_state(state.build());
        let codes: StringArray = (0..400u64)
            .map(|i| match i % 37 {
                0 => None,
                1 => Some(String::new()),
                _ => {
                    let digits = format!("{:010}", i.wrapping_mul(2654435761) % 10_000_000_000);
                    // Items share leading digits: prefixes match often.
                    let code = format!("84{}", &digits[2..]);
                    Some(code[..3 + (i as usize % 8)].to_string())
                }
            })
            .collect();
        let ids: Int32Array = (0..400).collect();
        let items = table(
            vec![
                Field::new("code", DataType::Utf8, true),
                Field::new("id", DataType::Int32, false),
            ],
            vec![Arc::new(codes.clone()), Arc::new(ids)],
            50,
        );
        let mut prefixes: Vec<Option<String>> = codes
            .iter()
            .step_by(7)
            .flatten()
            .filter(|c| c.len() >= 6)
            .flat_map(|c| [2, 4, 6].map(|l| Some(c[..l].to_string())))
            .collect();
        prefixes.push(None);
        let rates: Float64Array = (0..prefixes.len()).map(|i| Some((i % 5) as f64)).collect();
        let reference = table(
            vec![
                Field::new("prefix", DataType::Utf8, true),
                Field::new("rate", DataType::Float64, false),
            ],
            vec![Arc::new(StringArray::from(prefixes)), Arc::new(rates)],
            1000,
        );
        ctx.register_table("items", items).unwrap();
        ctx.register_table("reference", reference).unwrap();
        ctx
    }

    async fn run(ctx: &SessionContext, sql: &str) -> (String, String) {
        let frame = ctx.sql(sql).await.unwrap();
        let plan = frame.clone().create_physical_plan().await.unwrap();
        let shown = datafusion::physical_plan::displayable(plan.as_ref())
            .indent(false)
            .to_string();
        let rows = pretty_format_batches(&frame.collect().await.unwrap())
            .unwrap()
            .to_string();
        (shown, rows)
    }

    /// Inner and outer joins, with and without other conditions, give the
    /// nested loop's rows.
    #[tokio::test]
    async fn joins_on_a_prefix_as_the_nested_loop_does() {
        let (plain, prefixed) = (context(false), context(true));
        for sql in [
            "SELECT i.id, i.code, r.prefix, r.rate FROM items i
             JOIN reference r ON starts_with(i.code, r.prefix)
             ORDER BY i.id, r.prefix, r.rate",
            "SELECT i.id, r.prefix, r.rate FROM items i
             LEFT JOIN reference r ON starts_with(i.code, r.prefix) AND r.rate >= 2
             ORDER BY i.id, r.prefix, r.rate",
            "SELECT r.prefix, r.rate, COUNT(*) AS n FROM reference r
             JOIN items i ON r.rate > 0 AND starts_with(i.code, r.prefix)
             GROUP BY r.prefix, r.rate ORDER BY r.prefix, r.rate",
            // The longest matching prefix of each item.
            "SELECT id, prefix FROM (
                 SELECT i.id, r.prefix,
                        row_number() OVER (PARTITION BY i.id ORDER BY length(r.prefix) DESC, r.rate) AS n
                 FROM items i JOIN reference r ON starts_with(i.code, r.prefix))
             WHERE n = 1 ORDER BY id",
        ] {
            let (plain_plan, expected) = run(&plain, sql).await;
            let (plan, rows) = run(&prefixed, sql).await;
            assert!(plain_plan.contains("NestedLoopJoinExec"), "{plain_plan}");
            assert!(
                plan.contains("PrefixJoinExec") && !plan.contains("NestedLoopJoinExec"),
                "{plan}"
            );
            assert_eq!(rows, expected, "{sql}");
            assert!(rows.lines().count() > 20, "{rows}");
        }
    }

    /// A prefix taken from the probe side (the reverse question), or a
    /// join that must keep unmatched build rows, stays a nested loop.
    #[tokio::test]
    async fn other_shapes_stay_nested_loops() {
        let ctx = context(true);
        for sql in [
            "SELECT * FROM items i JOIN reference r ON starts_with(r.prefix, i.code)",
            "SELECT * FROM items i FULL JOIN reference r ON starts_with(i.code, r.prefix)",
        ] {
            let (plan, _) = run(&ctx, sql).await;
            assert!(
                plan.contains("NestedLoopJoinExec") && !plan.contains("PrefixJoinExec"),
                "{plan}"
            );
        }
    }
}

#[cfg(test)]
mod memory_tests {
    use super::*;
    use datafusion::execution::runtime_env::RuntimeEnvBuilder;
    use datafusion::execution::session_state::SessionStateBuilder;
    use datafusion::prelude::{SessionConfig, SessionContext};

    /// The build side counts against the session's memory limit, as the
    /// nested loop's does: a limit too small is an error naming the
    /// operator, not an unaccounted allocation.
    #[tokio::test]
    async fn the_build_side_is_held_within_the_memory_limit() {
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_limit(4096, 1.0)
            .build_arc()
            .unwrap();
        let state = SessionStateBuilder::new()
            .with_config(SessionConfig::new().with_target_partitions(1))
            .with_runtime_env(runtime)
            .with_default_features()
            .with_physical_optimizer_rule(Arc::new(PrefixLookups))
            .build();
        let ctx = SessionContext::new_with_state(state);
        // The prefixes written first: the nested loop's build side.
        let sql = "SELECT COUNT(*) FROM (SELECT repeat('p', 64) || CAST(i AS VARCHAR) AS prefix FROM generate_series(1, 500) t(i)) r
                   JOIN (SELECT 'x' || CAST(i AS VARCHAR) AS code FROM generate_series(1, 5000) t(i)) items
                   ON starts_with(items.code, r.prefix)";
        let plan = ctx
            .sql(sql)
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        let shown = datafusion::physical_plan::displayable(plan.as_ref())
            .indent(false)
            .to_string();
        assert!(shown.contains("PrefixJoinExec"), "{shown}");
        let error = ctx
            .sql(sql)
            .await
            .unwrap()
            .collect()
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("PrefixJoinExec"), "{error}");
    }
}
