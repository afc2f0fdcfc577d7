//! String-view columns compacted before they leave a stage.
//!
//! Why: a `Utf8View` (or `BinaryView`) column is views into shared data
//! buffers. An operator that emits its result in slices (a grouped
//! aggregate emits every group at once, then hands out 8,192-row slices)
//! gives every slice the buffers of the whole result. In one process that
//! costs nothing; between Ballista stages each batch is written with
//! Arrow IPC, which writes a view array's data buffers whole (arrow-ipc
//! 59 `writer.rs`: pruning them is left to the caller), and Ballista's
//! plain shuffle writer (`utils::write_stream_to_disk`, used for a
//! stage's unpartitioned output such as a broadcast join's build side)
//! does not compact them; only its sort-based shuffle does. Measured on
//! the refresh's trader-risk query over 10 million scores: the 2.4
//! million inspection outcomes became 297 batches each carrying all the
//! outcomes' strings (44 GB reported), 13.7 s to write, 41.9 s to read
//! back into the join's hash table, against 2.1 s for the whole query in
//! process.
//!
//! The scheduler's rule [`CompactViewsAtExchanges`] puts a
//! [`CompactViewsExec`] under every operator that Ballista turns into a
//! stage boundary, and at the root (whose rows go to the client); it
//! compacts a view column only when its buffers hold much more than its
//! rows use, so batches straight from a Parquet scan pass unchanged.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, GenericByteViewArray, RecordBatch, RecordBatchOptions,
};
use datafusion::arrow::datatypes::{ByteViewType, DataType};
use datafusion::common::Result;
use datafusion::common::Statistics;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::execution::TaskContext;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::execution_plan::CardinalityEffect;
use datafusion::physical_plan::joins::{HashJoinExec, PartitionMode};
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::sorts::sort_preserving_merge::SortPreservingMergeExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    ChildStats, ChildrenPropertiesMode, DisplayAs, DisplayFormatType, ExecutionPlan,
    PlanProperties, ReplaceChildrenOptions, SendableRecordBatchStream, StatisticsArgs,
    replace_children_if_necessary,
};
use futures::StreamExt;

/// Buffers may hold this much more than twice what the views use before a
/// column is compacted: small batches are not worth a copy.
const SLACK_BYTES: usize = 64 * 1024;

/// Passes its input's batches on with wasteful view columns compacted;
/// everything else (partitions, order, statistics) is its input's.
#[derive(Debug, Clone)]
pub struct CompactViewsExec {
    input: Arc<dyn ExecutionPlan>,
    properties: Arc<PlanProperties>,
}

impl CompactViewsExec {
    pub fn new(input: Arc<dyn ExecutionPlan>) -> Self {
        let properties = Arc::clone(input.properties());
        CompactViewsExec { input, properties }
    }
}

impl DisplayAs for CompactViewsExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "CompactViewsExec")
    }
}

impl ExecutionPlan for CompactViewsExec {
    fn name(&self) -> &str {
        "CompactViewsExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
        options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let input = children.swap_remove(0);
        Ok(Arc::new(match options.children_properties {
            ChildrenPropertiesMode::Keep => CompactViewsExec {
                input,
                properties: Arc::clone(&self.properties),
            },
            ChildrenPropertiesMode::Recompute => CompactViewsExec::new(input),
        }))
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
        let input = self.input.execute(partition, context)?;
        let schema = input.schema();
        let compacted = input.map(|batch| batch.and_then(|b| Ok(compact(b)?)));
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, compacted)))
    }

    // Ballista decides broadcast joins from the build side's statistics:
    // they must pass through unchanged.
    fn child_stats_requests(&self, partition: Option<usize>) -> Vec<ChildStats> {
        vec![ChildStats::At(partition)]
    }

    fn statistics_from_inputs(
        &self,
        input_stats: &[Arc<Statistics>],
        _args: &StatisticsArgs,
    ) -> Result<Arc<Statistics>> {
        Ok(Arc::clone(&input_stats[0]))
    }

    fn cardinality_effect(&self) -> CardinalityEffect {
        CardinalityEffect::Equal
    }
}

/// `batch` with each view column whose buffers hold more than twice what
/// its views use (plus [`SLACK_BYTES`]) copied into buffers of its own.
pub fn compact(batch: RecordBatch) -> Result<RecordBatch> {
    fn compacted<T: ByteViewType + ?Sized>(array: &GenericByteViewArray<T>) -> Option<ArrayRef> {
        let held: usize = array.data_buffers().iter().map(|b| b.len()).sum();
        (held > 2 * array.total_buffer_bytes_used() + SLACK_BYTES)
            .then(|| Arc::new(array.gc()) as ArrayRef)
    }
    let replaced: Vec<Option<ArrayRef>> = batch
        .columns()
        .iter()
        .map(|column| match column.data_type() {
            DataType::Utf8View => compacted(column.as_string_view()),
            DataType::BinaryView => compacted(column.as_binary_view()),
            _ => None,
        })
        .collect();
    if replaced.iter().all(Option::is_none) {
        return Ok(batch);
    }
    let columns = replaced
        .into_iter()
        .zip(batch.columns())
        .map(|(new, old)| new.unwrap_or_else(|| Arc::clone(old)))
        .collect();
    let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    Ok(RecordBatch::try_new_with_options(
        batch.schema(),
        columns,
        &options,
    )?)
}

/// The scheduler's rule: see the module's comment.
#[derive(Debug, Default)]
pub struct CompactViewsAtExchanges;

impl PhysicalOptimizerRule for CompactViewsAtExchanges {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let plan = rewrite(plan)?;
        Ok(compacting(plan))
    }

    fn name(&self) -> &str {
        "compact_views_at_exchanges"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

fn rewrite(plan: Arc<dyn ExecutionPlan>) -> Result<Arc<dyn ExecutionPlan>> {
    let children = plan
        .children()
        .into_iter()
        .map(|child| rewrite(Arc::clone(child)))
        .collect::<Result<Vec<_>>>()?;
    if children.is_empty() {
        return Ok(plan);
    }
    // The operators whose input (or, for a join that collects its left
    // side, whose build side) Ballista writes out as a stage's output. A
    // collected left side under a `CoalescePartitionsExec` is compacted
    // under it, where Ballista looks for the coalesce. Both inputs of a
    // partitioned hash join too: Ballista's planner may still promote it to
    // a broadcast join (`maybe_promote_to_broadcast`, after this rule), and
    // then the smaller input, possibly an aggregate's sliced output with no
    // exchange above it, becomes a stage's output.
    let exchanges_input = plan.is::<RepartitionExec>()
        || plan.is::<CoalescePartitionsExec>()
        || plan.is::<SortPreservingMergeExec>();
    let join_mode = plan
        .downcast_ref::<HashJoinExec>()
        .map(|join| *join.partition_mode());
    let children = children
        .into_iter()
        .enumerate()
        .map(|(i, child)| {
            let build_side = match join_mode {
                Some(PartitionMode::CollectLeft) => i == 0 && !child.is::<CoalescePartitionsExec>(),
                Some(PartitionMode::Partitioned) => true,
                _ => false,
            };
            if exchanges_input || build_side {
                compacting(child)
            } else {
                child
            }
        })
        .collect();
    replace_children_if_necessary(plan, children)
}

/// `plan` under a [`CompactViewsExec`] when its rows have view columns.
fn compacting(plan: Arc<dyn ExecutionPlan>) -> Arc<dyn ExecutionPlan> {
    let has_views = plan
        .schema()
        .fields()
        .iter()
        .any(|f| matches!(f.data_type(), DataType::Utf8View | DataType::BinaryView));
    if !has_views || plan.is::<CompactViewsExec>() {
        return plan;
    }
    Arc::new(CompactViewsExec::new(plan))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::StringViewArray;
    use datafusion::arrow::datatypes::{Field, Schema};
    use datafusion::arrow::ipc::writer::StreamWriter;

    fn ipc_bytes(batch: &RecordBatch) -> usize {
        let mut out = Vec::new();
        let mut writer = StreamWriter::try_new(&mut out, &batch.schema()).unwrap();
        writer.write(batch).unwrap();
        writer.finish().unwrap();
        drop(writer);
        out.len()
    }

    /// A grouped aggregate's output: one big view array handed out in
    /// slices, each slice holding the whole array's buffers.
    fn slices() -> Vec<RecordBatch> {
        let strings: StringViewArray = (0..200_000)
            .map(|i| Some(format!("declaration-{i:08}-with-a-long-id")))
            .collect();
        let schema = Arc::new(Schema::new(vec![Field::new(
            "id",
            DataType::Utf8View,
            true,
        )]));
        let batch = RecordBatch::try_new(schema, vec![Arc::new(strings)]).unwrap();
        (0..batch.num_rows())
            .step_by(8192)
            .map(|start| batch.slice(start, 8192.min(batch.num_rows() - start)))
            .collect()
    }

    #[test]
    fn slices_of_a_big_view_array_are_written_at_their_own_size() {
        for slice in slices() {
            let rows = slice.num_rows();
            let before = ipc_bytes(&slice);
            let after = compact(slice.clone()).unwrap();
            assert_eq!(after, slice, "same rows");
            // 8,192 strings of 37 bytes and their 16-byte views, not the
            // 7.4 MB of every string.
            assert!(
                ipc_bytes(&after) < rows * 60 + 4096,
                "{}",
                ipc_bytes(&after)
            );
            assert!(before > 7_000_000, "the waste this fixes: {before}");
        }
    }

    fn scan_in(data_type: DataType, partitions: usize) -> Arc<dyn ExecutionPlan> {
        use datafusion::datasource::memory::MemorySourceConfig;
        let schema = Arc::new(Schema::new(vec![Field::new("k", data_type, true)]));
        MemorySourceConfig::try_new_exec(&vec![vec![]; partitions], schema, None).unwrap()
    }

    fn scan(data_type: DataType) -> Arc<dyn ExecutionPlan> {
        scan_in(data_type, 2)
    }

    fn planned(plan: Arc<dyn ExecutionPlan>) -> String {
        let plan = CompactViewsAtExchanges
            .optimize(plan, &ConfigOptions::default())
            .unwrap();
        datafusion::physical_plan::displayable(plan.as_ref())
            .indent(false)
            .to_string()
            .lines()
            .map(|line| line.split(':').next().unwrap().to_string())
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn view_rows_are_compacted_under_each_exchange_and_at_the_root() {
        let gathered: Arc<dyn ExecutionPlan> =
            Arc::new(CoalescePartitionsExec::new(scan(DataType::Utf8View)));
        assert_eq!(
            planned(gathered),
            "CompactViewsExec\n  CoalescePartitionsExec\n    CompactViewsExec\n      DataSourceExec"
        );
        // Plain strings travel at their size: nothing is added.
        let gathered: Arc<dyn ExecutionPlan> =
            Arc::new(CoalescePartitionsExec::new(scan(DataType::Utf8)));
        assert_eq!(
            planned(gathered),
            "CoalescePartitionsExec\n  DataSourceExec"
        );
    }

    fn hash_join(mode: PartitionMode, left: Arc<dyn ExecutionPlan>) -> Arc<dyn ExecutionPlan> {
        use datafusion::common::{JoinType, NullEquality};
        use datafusion::physical_expr::expressions::Column;
        let key = |plan: &Arc<dyn ExecutionPlan>| -> Arc<dyn PhysicalExpr> {
            Arc::new(Column::new_with_schema("k", &plan.schema()).unwrap())
        };
        let right = scan(DataType::Utf8View);
        let on = vec![(key(&left), key(&right))];
        Arc::new(
            HashJoinExec::try_new(
                left,
                right,
                on,
                None,
                &JoinType::Inner,
                None,
                mode,
                NullEquality::NullEqualsNothing,
                false,
            )
            .unwrap(),
        )
    }

    #[test]
    fn join_inputs_that_may_become_a_stage_output_are_compacted() {
        // A collected build side: compacted under its coalesce, where
        // Ballista cuts the broadcast stage; the probe side stays in the
        // join's stage.
        let build: Arc<dyn ExecutionPlan> =
            Arc::new(CoalescePartitionsExec::new(scan(DataType::Utf8View)));
        assert_eq!(
            planned(hash_join(PartitionMode::CollectLeft, build)),
            "CompactViewsExec\n  HashJoinExec\n    CoalescePartitionsExec\n      CompactViewsExec\n        DataSourceExec\n    DataSourceExec"
        );
        // A one-partition build side with no coalesce above it.
        assert_eq!(
            planned(hash_join(
                PartitionMode::CollectLeft,
                scan_in(DataType::Utf8View, 1)
            )),
            "CompactViewsExec\n  HashJoinExec\n    CompactViewsExec\n      DataSourceExec\n    DataSourceExec"
        );
        // A partitioned join: either side may be promoted to the build side.
        assert_eq!(
            planned(hash_join(
                PartitionMode::Partitioned,
                scan(DataType::Utf8View)
            )),
            "CompactViewsExec\n  HashJoinExec\n    CompactViewsExec\n      DataSourceExec\n    CompactViewsExec\n      DataSourceExec"
        );
    }

    #[test]
    fn batches_that_use_their_buffers_pass_unchanged() {
        let strings: StringViewArray = (0..1000)
            .map(|i| Some(format!("a-string-longer-than-twelve-{i}")))
            .collect();
        let schema = Arc::new(Schema::new(vec![Field::new("s", DataType::Utf8View, true)]));
        let batch = RecordBatch::try_new(schema, vec![Arc::new(strings)]).unwrap();
        let out = compact(batch.clone()).unwrap();
        let (a, b) = (batch.column(0).to_data(), out.column(0).to_data());
        assert!(std::ptr::eq(
            a.buffers()[1].as_ptr(),
            b.buffers()[1].as_ptr()
        ));
    }
}
