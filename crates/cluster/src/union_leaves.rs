//! Row-generating leaves under a `UNION`, planned as memory scans on the
//! scheduler, so that every task of a stage runs the operators its stage
//! has.
//!
//! Why: before a task leaves the scheduler, Ballista 55 restricts its plan
//! to the partitions the task owns (`state/task_builder.rs`). A union
//! branch the task does not own is cut to zero partitions; an `EmptyExec`
//! or `PlaceholderRowExec` cannot say "zero partitions" on the wire, so
//! Ballista swaps it for a zero-partition memory scan (`DataSourceExec`).
//! That scan has a metrics set and the leaf it replaced has none: the task
//! reports one operator metrics set more than its stage, the scheduler
//! refuses the task's status ("task metrics array size 5 does not equal
//! with the stage metrics array size 4", logged, never sent to the
//! client), the task stays running and the job waits forever, idle. Any
//! `UNION` with a literal row (`SELECT 2001 AS year UNION ALL ...`) or an
//! empty table (a risk table before its first file) hung that way.
//!
//! Given as memory scans with the same partitions and rows from the start,
//! such leaves are restricted to memory scans: the task's operators are
//! its stage's, and their metrics line up.

use std::sync::Arc;

use datafusion::arrow::array::{RecordBatch, RecordBatchOptions, new_null_array};
use datafusion::common::Result;
use datafusion::common::config::ConfigOptions;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::placeholder_row::PlaceholderRowExec;
use datafusion::physical_plan::union::UnionExec;
use datafusion::physical_plan::{ExecutionPlan, replace_children_if_necessary};

/// The scheduler's rule: see the module's comment.
#[derive(Debug, Default)]
pub struct MemoryScansForUnionLeaves;

impl PhysicalOptimizerRule for MemoryScansForUnionLeaves {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        rewrite(plan, false)
    }

    fn name(&self) -> &str {
        "memory_scans_for_union_leaves"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

fn rewrite(plan: Arc<dyn ExecutionPlan>, under_union: bool) -> Result<Arc<dyn ExecutionPlan>> {
    if under_union && let Some(scan) = as_memory_scan(plan.as_ref())? {
        return Ok(scan);
    }
    let under_union = under_union || plan.is::<UnionExec>();
    let children = plan
        .children()
        .into_iter()
        .map(|child| rewrite(child.clone(), under_union))
        .collect::<Result<Vec<_>>>()?;
    if children.is_empty() {
        return Ok(plan);
    }
    replace_children_if_necessary(plan, children)
}

/// The memory scan yielding what `plan` yields, partition by partition,
/// when `plan` is an `EmptyExec` (no rows) or a `PlaceholderRowExec` (one
/// row per partition).
fn as_memory_scan(plan: &dyn ExecutionPlan) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    let partitions = plan.properties().output_partitioning().partition_count();
    let schema = plan.schema();
    let rows_per_partition: Vec<RecordBatch> = if plan.is::<EmptyExec>() {
        vec![]
    } else if plan.is::<PlaceholderRowExec>() {
        // One row of nulls (of no columns, usually): what the placeholder
        // yields. A column that may not be null cannot hold it: leave the
        // leaf as it is then.
        if schema.fields().iter().any(|f| !f.is_nullable()) {
            return Ok(None);
        }
        let columns = schema
            .fields()
            .iter()
            .map(|f| new_null_array(f.data_type(), 1))
            .collect();
        vec![RecordBatch::try_new_with_options(
            schema.clone(),
            columns,
            &RecordBatchOptions::new().with_row_count(Some(1)),
        )?]
    } else {
        return Ok(None);
    };
    let config = MemorySourceConfig::try_new(&vec![rows_per_partition; partitions], schema, None)?;
    Ok(Some(DataSourceExec::from_data_source(config)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::physical_plan::{collect, displayable};
    use datafusion::prelude::SessionContext;

    fn union(children: Vec<Arc<dyn ExecutionPlan>>) -> Arc<dyn ExecutionPlan> {
        UnionExec::try_new(children).unwrap()
    }

    #[tokio::test]
    async fn union_leaves_become_memory_scans_with_the_same_rows() {
        let nothing = Arc::new(Schema::empty());
        let year = Arc::new(Schema::new(vec![Field::new("year", DataType::Int32, true)]));
        let plan = union(vec![
            Arc::new(PlaceholderRowExec::new(nothing.clone()).with_partitions(2)),
            Arc::new(EmptyExec::new(nothing.clone())),
        ]);
        let rewritten = MemoryScansForUnionLeaves
            .optimize(plan.clone(), &ConfigOptions::default())
            .unwrap();
        let shown = displayable(rewritten.as_ref()).indent(false).to_string();
        assert!(
            !shown.contains("PlaceholderRowExec") && !shown.contains("EmptyExec"),
            "{shown}"
        );
        assert_eq!(shown.matches("DataSourceExec").count(), 2, "{shown}");
        // Same partitions, same rows.
        let partitions =
            |p: &Arc<dyn ExecutionPlan>| p.properties().output_partitioning().partition_count();
        assert_eq!(partitions(&rewritten), partitions(&plan));
        let ctx = SessionContext::new().task_ctx();
        let rows = |p: Arc<dyn ExecutionPlan>| {
            let ctx = ctx.clone();
            async move {
                collect(p, ctx)
                    .await
                    .unwrap()
                    .iter()
                    .map(|b| b.num_rows())
                    .sum::<usize>()
            }
        };
        assert_eq!(rows(rewritten).await, 2);
        assert_eq!(rows(plan).await, 2);

        // Nullable columns: rows of nulls.
        let typed = union(vec![
            Arc::new(PlaceholderRowExec::new(year.clone())),
            Arc::new(EmptyExec::new(year.clone())),
        ]);
        let rewritten = MemoryScansForUnionLeaves
            .optimize(typed, &ConfigOptions::default())
            .unwrap();
        let batches = collect(rewritten, ctx.clone()).await.unwrap();
        assert_eq!(batches[0].num_rows(), 1);
        assert_eq!(batches[0].column(0).null_count(), 1);
    }

    #[test]
    fn leaves_outside_a_union_and_unholdable_rows_stay() {
        let nothing = Arc::new(Schema::empty());
        let alone: Arc<dyn ExecutionPlan> = Arc::new(PlaceholderRowExec::new(nothing));
        let kept = MemoryScansForUnionLeaves
            .optimize(alone.clone(), &ConfigOptions::default())
            .unwrap();
        assert!(Arc::ptr_eq(&kept, &alone));
        let required = Arc::new(Schema::new(vec![Field::new("y", DataType::Int32, false)]));
        let plan = union(vec![
            Arc::new(PlaceholderRowExec::new(required.clone())),
            Arc::new(EmptyExec::new(required)),
        ]);
        let kept = MemoryScansForUnionLeaves
            .optimize(plan, &ConfigOptions::default())
            .unwrap();
        let shown = displayable(kept.as_ref()).indent(false).to_string();
        assert!(shown.contains("PlaceholderRowExec"), "{shown}");
        // The empty leaf beside it is a memory scan all the same.
        assert!(!shown.contains("EmptyExec"), "{shown}");
    }
}
