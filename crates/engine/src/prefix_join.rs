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
//! loop's by construction. On a Ballista cluster it travels as the nested
//! loop it replaces (the cluster crate's codec).

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, AsArray, RecordBatch, RecordBatchOptions, StringViewArray, UInt32Array,
};
use datafusion::arrow::compute::{cast, concat_batches, filter, take};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::TreeNodeRecursion;
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
    /// The build side, collected once for every output partition; `None`
    /// when it did not fit in memory (every partition then runs the nested
    /// loop, without collecting it again first).
    build: Arc<OnceCell<Option<Arc<BuildSide>>>>,
    metrics: ExecutionPlanMetricsSet,
}

impl PrefixJoinExec {
    /// The nested loop this one runs in place of (how a cluster's plan
    /// carries it: see the cluster crate's codec).
    pub fn join(&self) -> &Arc<dyn ExecutionPlan> {
        &self.join
    }

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

    /// The build side, collected by the first partition that needs it;
    /// `None` when it does not fit in the session's memory.
    async fn build_side(
        left: Arc<dyn ExecutionPlan>,
        key: usize,
        cell: Arc<OnceCell<Option<Arc<BuildSide>>>>,
        context: Arc<TaskContext>,
    ) -> Result<Option<Arc<BuildSide>>> {
        let side = cell
            .get_or_try_init(|| async {
                match Self::collect_build_side(&left, key, &context).await {
                    Ok(side) => Ok(Some(Arc::new(side))),
                    // The caller runs the nested loop instead (which can
                    // spill its build side).
                    Err(e) if matches!(e.find_root(), DataFusionError::ResourcesExhausted(_)) => {
                        Ok(None)
                    }
                    Err(e) => Err(e),
                }
            })
            .await?;
        Ok(side.clone())
    }

    /// The build side's rows and table, held within the session's memory
    /// limit (`ResourcesExhausted` when they do not fit).
    async fn collect_build_side(
        left: &Arc<dyn ExecutionPlan>,
        key: usize,
        context: &Arc<TaskContext>,
    ) -> Result<BuildSide> {
        let reservation = MemoryConsumer::new("PrefixJoinExec").register(context.memory_pool());
        let mut batches = Vec::new();
        // The nested loop's left input is one partition (its required
        // distribution).
        for partition in 0..left.output_partitioning().partition_count() {
            let mut stream = left.execute(partition, Arc::clone(context))?;
            while let Some(batch) = stream.try_next().await? {
                reservation.try_grow(batch.get_array_memory_size())?;
                batches.push(batch);
            }
        }
        let batch = concat_batches(&left.schema(), &batches)?;
        drop(batches);
        BuildSide::new(batch, key, reservation)
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
        reservation.try_resize(
            batch.get_array_memory_size()
                + rows_of.capacity() * entry
                + keys
                + 4 * batch.num_rows(),
        )?;
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
        let (right, join) = (Arc::clone(right), Arc::clone(&self.join));
        let joining = self.joining.clone();
        let schema = Arc::clone(&joining.schema);
        let metrics = BaselineMetrics::new(&self.metrics, partition);
        let batch_size = context.session_config().batch_size();
        let joined = futures::stream::once(async move {
            let Some(build) = build.await? else {
                // Too big for memory: the nested loop, which spills.
                return join.execute(partition, context);
            };
            let probe = right.execute(partition, context)?;
            let batches = probe
                .map(move |batch| {
                    let timer = metrics.elapsed_compute().timer();
                    let out = joining.join(&build, &batch?, batch_size);
                    timer.done();
                    if let Ok(out) = &out {
                        metrics.record_output(out.iter().map(RecordBatch::num_rows).sum());
                    }
                    out.map(|batches| futures::stream::iter(batches.into_iter().map(Ok)))
                })
                .try_flatten();
            Ok(Box::pin(RecordBatchStreamAdapter::new(schema, batches))
                as SendableRecordBatchStream)
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
    /// The joined rows of `probe`, in batches of about `batch_size` rows
    /// (a probe row's matches are not split), as the nested loop emits.
    fn join(
        &self,
        build: &BuildSide,
        probe: &RecordBatch,
        batch_size: usize,
    ) -> Result<Vec<RecordBatch>> {
        // Candidates: each probe row with every build row keyed by one of
        // its prefixes, in probe order.
        let keys = strings(probe.column(self.probe_key))?;
        let mut out = Vec::new();
        let (mut build_rows, mut probe_rows) = (Vec::new(), Vec::new());
        let mut first = 0;
        for (row, key) in keys.iter().enumerate() {
            if let Some(key) = key.map(str::as_bytes) {
                for &length in build.lengths.iter().take_while(|&&l| l <= key.len()) {
                    if let Some(rows) = build.rows_of.get(&key[..length]) {
                        build_rows.extend_from_slice(rows);
                        probe_rows.extend(std::iter::repeat_n(row as u32, rows.len()));
                    }
                }
            }
            let last = row + 1 == probe.num_rows();
            if build_rows.len() >= batch_size || last {
                let pairs = (
                    UInt32Array::from(std::mem::take(&mut build_rows)),
                    UInt32Array::from(std::mem::take(&mut probe_rows)),
                );
                out.push(self.joined(build, probe, pairs, first..row + 1)?);
                first = row + 1;
            }
        }
        Ok(out)
    }

    /// The output rows of candidate `pairs` (build row, probe row) whose
    /// probe rows are `rows`.
    fn joined(
        &self,
        build: &BuildSide,
        probe: &RecordBatch,
        (build_rows, probe_rows): (UInt32Array, UInt32Array),
        rows: std::ops::Range<usize>,
    ) -> Result<RecordBatch> {
        // The join's own filter decides, on the candidates only.
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
        let mut build_rows: UInt32Array = filter(&build_rows, keep)?.as_primitive().clone();
        let mut probe_rows: UInt32Array = filter(&probe_rows, keep)?.as_primitive().clone();
        if self.join_type == JoinType::Right {
            (build_rows, probe_rows) = with_unmatched(&build_rows, &probe_rows, rows);
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

/// The matched pairs (in probe order) with each probe row of `rows` that
/// has none added in its place, paired with a null build row.
fn with_unmatched(
    build_rows: &UInt32Array,
    probe_rows: &UInt32Array,
    rows: std::ops::Range<usize>,
) -> (UInt32Array, UInt32Array) {
    let capacity = rows.len().max(build_rows.len());
    let (mut build, mut probe) = (Vec::with_capacity(capacity), Vec::with_capacity(capacity));
    let mut pairs = build_rows
        .values()
        .iter()
        .zip(probe_rows.values())
        .peekable();
    for row in rows.start as u32..rows.end as u32 {
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
pub fn replaced(join: Arc<dyn ExecutionPlan>) -> Arc<dyn ExecutionPlan> {
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
        crate::rewrite::replace_each::<NestedLoopJoinExec>(plan, replaced)
    }

    fn name(&self) -> &str {
        "prefix_lookups"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests;
