//! `ROW_NUMBER()`, `RANK()` and `DENSE_RANK()` over input already sorted by
//! their window, numbered in one pass over each batch.
//!
//! Why: the shape analysts write to keep one row per key ("the tariff line
//! with the longest matching prefix", "the latest declaration of each
//! trader") is `ROW_NUMBER() OVER (PARTITION BY key ORDER BY …) = 1`, and
//! its partitions are tiny: one or a few rows each. DataFusion 55 runs it
//! in `BoundedWindowAggExec`, which keeps state per window partition (a key
//! of `ScalarValue`s hashed into an index map, a slice and a buffered batch
//! per partition, freed again when the next partition starts): about 2 µs
//! of allocation and hashing per partition, 20 s of compute for 10 million
//! one-row partitions (issue 21's longest-prefix join, 2.2 times DuckDB).
//! Ranking functions need none of that state: over sorted input a row's
//! number is its position in its run of equal partition keys, and its rank
//! the position where its run of equal (partition, order) keys began. Runs
//! are found with Arrow's `partition` kernel, a batch at a time; the only
//! state between batches is the last row's keys and three counters.
//!
//! [`RankingOverSortedInput`] replaces a `BoundedWindowAggExec` in sorted
//! mode whose functions are all ranking functions by a [`RankingWindowExec`]
//! that keeps the original for everything but execution (schema, ordering
//! and distribution requirements, statistics). It could be offered
//! upstream as a fast path of that operator. On a Ballista cluster it
//! travels as the operator it replaces (the cluster crate's codec).

use std::fmt;
use std::iter::repeat_n;
use std::ops::Range;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, UInt64Array};
use datafusion::arrow::compute::kernels::partition::partition;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::row::{OwnedRow, RowConverter, SortField};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{Result, Statistics};
use datafusion::execution::TaskContext;
use datafusion::physical_expr::window::{StandardWindowExpr, WindowExpr};
use datafusion::physical_expr::{OrderingRequirements, PhysicalExpr, physical_exprs_equal};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::execution_plan::CardinalityEffect;
use datafusion::physical_plan::metrics::{BaselineMetrics, ExecutionPlanMetricsSet, MetricsSet};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::windows::{BoundedWindowAggExec, WindowUDFExpr};
use datafusion::physical_plan::{
    ChildStats, ChildrenPropertiesMode, DisplayAs, DisplayFormatType, ExecutionPlan,
    InputDistributionRequirements, InputOrderMode, PlanProperties, ReplaceChildrenOptions,
    SendableRecordBatchStream, StatisticsArgs,
};
use futures::StreamExt;

/// The ranking functions numbered here.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Ranking {
    RowNumber,
    Rank,
    DenseRank,
}

impl Ranking {
    fn of(expr: &Arc<dyn WindowExpr>) -> Option<Ranking> {
        let standard = expr.as_any().downcast_ref::<StandardWindowExpr>()?;
        let udf = standard
            .get_standard_func_expr()
            .as_any()
            .downcast_ref::<WindowUDFExpr>()?;
        match udf.fun().name() {
            "row_number" => Some(Ranking::RowNumber),
            "rank" => Some(Ranking::Rank),
            "dense_rank" => Some(Ranking::DenseRank),
            _ => None,
        }
    }
}

/// A `BoundedWindowAggExec` of ranking functions over sorted input, run in
/// one pass per batch (see the module's comment).
#[derive(Debug)]
pub struct RankingWindowExec {
    /// The operator replaced: what the plan sees of this one, and its
    /// window expressions.
    window: Arc<BoundedWindowAggExec>,
    rankings: Vec<Ranking>,
    metrics: ExecutionPlanMetricsSet,
}

impl RankingWindowExec {
    /// The DataFusion operator this one runs in place of (how a cluster's
    /// plan carries it: see the cluster crate's codec).
    pub fn window(&self) -> Arc<dyn ExecutionPlan> {
        Arc::clone(&self.window) as Arc<dyn ExecutionPlan>
    }

    /// `None` unless every function of `window` is a ranking function, its
    /// input is sorted by the window, and each result is an unsigned
    /// 64-bit integer.
    pub fn try_new(window: Arc<BoundedWindowAggExec>) -> Option<Self> {
        if window.input_order_mode != InputOrderMode::Sorted {
            return None;
        }
        let exprs = window.window_expr();
        let rankings = exprs.iter().map(Ranking::of).collect::<Option<Vec<_>>>()?;
        // One window for all: the stream numbers by the first's.
        let same_window = exprs.iter().all(|e| {
            physical_exprs_equal(e.partition_by(), exprs[0].partition_by())
                && e.order_by() == exprs[0].order_by()
        });
        if !same_window {
            return None;
        }
        let inputs = window.input().schema().fields().len();
        let schema = window.schema();
        let unsigned = (inputs..schema.fields().len())
            .all(|i| schema.field(i).data_type() == &DataType::UInt64);
        if rankings.is_empty() || !unsigned || schema.fields().len() != inputs + rankings.len() {
            return None;
        }
        Some(RankingWindowExec {
            window,
            rankings,
            metrics: ExecutionPlanMetricsSet::new(),
        })
    }
}

impl DisplayAs for RankingWindowExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let names: Vec<&str> = self.window.window_expr().iter().map(|w| w.name()).collect();
        write!(f, "RankingWindowExec: wdw=[{}]", names.join(", "))
    }
}

impl ExecutionPlan for RankingWindowExec {
    fn name(&self) -> &str {
        "RankingWindowExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.window.properties()
    }

    fn input_distribution_requirements(&self) -> InputDistributionRequirements {
        self.window.input_distribution_requirements()
    }

    fn required_input_ordering(&self) -> Vec<Option<OrderingRequirements>> {
        self.window.required_input_ordering()
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![self.window.input()]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        self.window.apply_expressions(f)
    }

    fn replace_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
        options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let window = Arc::clone(&self.window).replace_children(children, options)?;
        Ok(replaced(window))
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
        let input = self.window.input().execute(partition, context)?;
        let expr = &self.window.window_expr()[0];
        let mut numbering = Numbering {
            // One window for all the functions (`try_new` checks).
            partition_by: expr.partition_by().to_vec(),
            order_by: expr
                .order_by()
                .iter()
                .map(|s| Arc::clone(&s.expr))
                .collect(),
            rankings: self.rankings.clone(),
            last: None,
            rows: 0,
            group_rank: 0,
            groups: 0,
        };
        let schema = self.window.schema();
        let out_schema = Arc::clone(&schema);
        let metrics = BaselineMetrics::new(&self.metrics, partition);
        let numbered = input.map(move |batch| {
            let batch = batch?;
            let timer = metrics.elapsed_compute().timer();
            let mut columns = batch.columns().to_vec();
            columns.extend(numbering.number(&batch)?);
            let out = RecordBatch::try_new(Arc::clone(&out_schema), columns)?;
            timer.done();
            metrics.record_output(out.num_rows());
            Ok(out)
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, numbered)))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }

    fn child_stats_requests(&self, partition: Option<usize>) -> Vec<ChildStats> {
        self.window.child_stats_requests(partition)
    }

    fn statistics_from_inputs(
        &self,
        input_stats: &[Arc<Statistics>],
        args: &StatisticsArgs,
    ) -> Result<Arc<Statistics>> {
        self.window.statistics_from_inputs(input_stats, args)
    }

    fn cardinality_effect(&self) -> CardinalityEffect {
        CardinalityEffect::Equal
    }
}

/// `window` as a [`RankingWindowExec`] when it qualifies, else unchanged.
pub fn replaced(window: Arc<dyn ExecutionPlan>) -> Arc<dyn ExecutionPlan> {
    let Some(bounded) = window.downcast_ref::<BoundedWindowAggExec>() else {
        return window;
    };
    match RankingWindowExec::try_new(Arc::new(bounded.clone())) {
        Some(ranking) => Arc::new(ranking),
        None => window,
    }
}

/// The numbering of one stream: where the last row's partition and peer
/// group stand, and its keys to compare the next batch's first row with.
struct Numbering {
    partition_by: Vec<Arc<dyn PhysicalExpr>>,
    order_by: Vec<Arc<dyn PhysicalExpr>>,
    rankings: Vec<Ranking>,
    /// The last row's partition keys and (partition, order) keys, as rows.
    last: Option<LastRow>,
    /// Rows of the current partition so far.
    rows: u64,
    /// The rank of the current peer group (rows before it + 1).
    group_rank: u64,
    /// Peer groups of the current partition so far.
    groups: u64,
}

struct LastRow {
    partition: Keys,
    peers: Keys,
}

/// One row's keys in Arrow's row format (compared bytewise), with the
/// converter the stream's later rows are compared through; no row when
/// there are no keys (every row matches).
struct Keys {
    converter: RowConverter,
    row: Option<OwnedRow>,
}

impl Keys {
    fn new(columns: &[ArrayRef]) -> Result<Keys> {
        let fields = columns
            .iter()
            .map(|c| SortField::new(c.data_type().clone()))
            .collect();
        Ok(Keys {
            converter: RowConverter::new(fields)?,
            row: None,
        })
    }

    /// Keeps row `row` of `columns` as the last one.
    fn keep(&mut self, columns: &[ArrayRef], row: usize) -> Result<()> {
        if !columns.is_empty() {
            let rows = self.converter.convert_columns(&slice(columns, row))?;
            self.row = Some(rows.row(0).owned());
        }
        Ok(())
    }

    fn matches(&self, columns: &[ArrayRef], row: usize) -> Result<bool> {
        let Some(own) = &self.row else {
            return Ok(true);
        };
        let rows = self.converter.convert_columns(&slice(columns, row))?;
        Ok(rows.row(0) == own.row())
    }
}

impl Numbering {
    fn number(&mut self, batch: &RecordBatch) -> Result<Vec<ArrayRef>> {
        let n = batch.num_rows();
        let evaluate = |exprs: &[Arc<dyn PhysicalExpr>]| -> Result<Vec<ArrayRef>> {
            exprs
                .iter()
                .map(|e| e.evaluate(batch).and_then(|v| v.into_array(n)))
                .collect()
        };
        let mut numbers: Vec<Vec<u64>> = vec![Vec::with_capacity(n); self.rankings.len()];
        if n > 0 {
            let partition_keys = evaluate(&self.partition_by)?;
            let mut peer_keys = partition_keys.clone();
            peer_keys.extend(evaluate(&self.order_by)?);
            // Whether the first row continues the previous batch's
            // partition, and its peer group.
            let (continues_partition, continues_peers) = match &self.last {
                None => (false, false),
                Some(last) => {
                    let partition = last.partition.matches(&partition_keys, 0)?;
                    (partition, partition && last.peers.matches(&peer_keys, 0)?)
                }
            };
            let partitions = runs(&partition_keys, n)?;
            let mut partition_starts = partitions.iter().map(|r| r.start).peekable();
            // Peer runs split partition runs: each starts a peer group, and
            // some a partition.
            for (i, peers) in runs(&peer_keys, n)?.into_iter().enumerate() {
                let starts_partition = partition_starts.next_if_eq(&peers.start).is_some();
                if starts_partition && !(i == 0 && continues_partition) {
                    self.rows = 0;
                    self.groups = 0;
                }
                if !(i == 0 && continues_peers) {
                    self.group_rank = self.rows + 1;
                    self.groups += 1;
                }
                let len = peers.len() as u64;
                for (ranking, out) in self.rankings.iter().zip(&mut numbers) {
                    match ranking {
                        Ranking::RowNumber => out.extend(self.rows + 1..=self.rows + len),
                        Ranking::Rank => out.extend(repeat_n(self.group_rank, peers.len())),
                        Ranking::DenseRank => out.extend(repeat_n(self.groups, peers.len())),
                    }
                }
                self.rows += len;
            }
            let last = match self.last.take() {
                Some(last) => last,
                None => LastRow {
                    partition: Keys::new(&partition_keys)?,
                    peers: Keys::new(&peer_keys)?,
                },
            };
            let last = self.last.insert(last);
            last.partition.keep(&partition_keys, n - 1)?;
            last.peers.keep(&peer_keys, n - 1)?;
        }
        Ok(numbers
            .into_iter()
            .map(|v| Arc::new(UInt64Array::from(v)) as ArrayRef)
            .collect())
    }
}

/// Row `row` of each column.
fn slice(columns: &[ArrayRef], row: usize) -> Vec<ArrayRef> {
    columns.iter().map(|c| c.slice(row, 1)).collect()
}

/// The runs of equal rows of `columns` (all rows one run without columns).
fn runs(columns: &[ArrayRef], rows: usize) -> Result<Vec<Range<usize>>> {
    if columns.is_empty() {
        return Ok(vec![0..rows]);
    }
    Ok(partition(columns)?.ranges())
}

/// The session's rule: see the module's comment.
#[derive(Debug, Default)]
pub struct RankingOverSortedInput;

impl PhysicalOptimizerRule for RankingOverSortedInput {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        crate::rewrite::replace_each::<BoundedWindowAggExec>(plan, replaced)
    }

    fn name(&self) -> &str {
        "ranking_over_sorted_input"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rewrite::plan_and_rows;
    use datafusion::arrow::array::{Int32Array, StringArray};
    use datafusion::arrow::datatypes::{Field, Schema};
    use datafusion::datasource::MemTable;
    use datafusion::execution::session_state::SessionStateBuilder;
    use datafusion::prelude::{SessionConfig, SessionContext};

    /// 600 rows in batches of 13, numbered in batches of 7 over two
    /// partitions: partitions and peer groups cross batch boundaries.
    /// `a` has few values and nulls, `b` ties and nulls, `c` is unique.
    fn context(with_rule: bool) -> SessionContext {
        let config = SessionConfig::new()
            .with_batch_size(7)
            .with_target_partitions(2);
        let mut state = SessionStateBuilder::new()
            .with_config(config)
            .with_default_features();
        if with_rule {
            state = state.with_physical_optimizer_rule(Arc::new(RankingOverSortedInput));
        }
        let ctx = SessionContext::new_with_state(state.build());
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int32, true),
            Field::new("b", DataType::Utf8, true),
            Field::new("c", DataType::Int32, false),
        ]));
        // A fixed pseudo-random sequence (an LCG), the same in both contexts.
        let mut x: u64 = 7;
        let mut next = |m: u64| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) % m
        };
        let rows: Vec<(Option<i32>, Option<String>, i32)> = (0..600)
            .map(|c| {
                let a = next(9);
                let b = next(6);
                (
                    (a != 0).then_some(a as i32),
                    (b != 0).then(|| format!("b{b}")),
                    c,
                )
            })
            .collect();
        let batches = rows
            .chunks(13)
            .map(|chunk| {
                RecordBatch::try_new(
                    Arc::clone(&schema),
                    vec![
                        Arc::new(chunk.iter().map(|r| r.0).collect::<Int32Array>()),
                        Arc::new(chunk.iter().map(|r| r.1.clone()).collect::<StringArray>()),
                        Arc::new(chunk.iter().map(|r| Some(r.2)).collect::<Int32Array>()),
                    ],
                )
                .unwrap()
            })
            .collect();
        let table = MemTable::try_new(schema, vec![batches]).unwrap();
        ctx.register_table("t", Arc::new(table)).unwrap();
        ctx
    }

    /// Every ranking function, partitioned or not, with ties and nulls, as
    /// DataFusion's own window operator numbers them.
    #[tokio::test]
    async fn ranks_as_datafusion_does_across_batches() {
        let (plain, ranked) = (context(false), context(true));
        for sql in [
            "SELECT a, b, c,
                    row_number() OVER (PARTITION BY a ORDER BY b, c) AS rn,
                    rank() OVER (PARTITION BY a ORDER BY b) AS rk,
                    dense_rank() OVER (PARTITION BY a ORDER BY b) AS dr
             FROM t ORDER BY c",
            "SELECT a, b, c,
                    row_number() OVER (PARTITION BY a, b ORDER BY c DESC) AS rn,
                    rank() OVER (PARTITION BY b) AS rk,
                    dense_rank() OVER (ORDER BY b DESC NULLS LAST) AS dr
             FROM t ORDER BY c",
            "SELECT c, row_number() OVER (ORDER BY c) AS rn, rank() OVER (ORDER BY a) AS rk
             FROM t ORDER BY c",
            // The shape this is for: the first row of each key.
            "SELECT a, b, c FROM (
                 SELECT *, row_number() OVER (PARTITION BY a ORDER BY b DESC, c) AS r FROM t)
             WHERE r = 1 ORDER BY a",
        ] {
            let (plain_plan, expected) = plan_and_rows(&plain, sql).await;
            let (plan, rows) = plan_and_rows(&ranked, sql).await;
            assert!(plain_plan.contains("BoundedWindowAggExec"), "{plain_plan}");
            assert!(
                plan.contains("RankingWindowExec") && !plan.contains("BoundedWindowAggExec"),
                "{plan}"
            );
            assert_eq!(rows, expected, "{sql}");
            assert!(rows.lines().count() > 10, "{rows}");
        }
    }

    /// Other window functions keep DataFusion's operator.
    #[tokio::test]
    async fn other_window_functions_are_left_alone() {
        let ctx = context(true);
        let (plan, _) = plan_and_rows(
            &ctx,
            "SELECT c, row_number() OVER (PARTITION BY a ORDER BY c) AS rn,
                    SUM(c) OVER (PARTITION BY a ORDER BY c) AS running
             FROM t",
        )
        .await;
        assert!(
            plan.contains("BoundedWindowAggExec") && !plan.contains("RankingWindowExec"),
            "{plan}"
        );
    }
}
