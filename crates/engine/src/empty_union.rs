//! A `UNION` with an input that can hold no rows is planned without it.
//!
//! A risk table with no files yet (`risk.rejects` before the first
//! reject) scans as an `EmptyExec`. An empty input adds nothing to a
//! union, so dropping it is exact and saves a partition (a task on a
//! cluster). On Ballista 55 such a branch also made the job hang; the
//! cause, and its fix for every row-generating leaf, are in the cluster
//! crate (`union_leaves`): this rule alone would miss a literal row.

use std::sync::Arc;

use datafusion::common::Result;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::coop::CooperativeExec;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::projection::{ProjectionExec, ProjectionExpr};
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::union::UnionExec;

#[derive(Debug, Default)]
pub struct WithoutEmptyUnionInputs;

/// Whether `plan` is an `EmptyExec` under operators that only pass rows
/// on (projections, filters, repartitions), so it yields none.
fn holds_no_rows(plan: &dyn ExecutionPlan) -> bool {
    if plan.is::<EmptyExec>() {
        return true;
    }
    let passes_rows_on = plan.is::<ProjectionExec>()
        || plan.is::<FilterExec>()
        || plan.is::<RepartitionExec>()
        || plan.is::<CoalescePartitionsExec>()
        || plan.is::<CooperativeExec>();
    passes_rows_on
        && plan
            .children()
            .first()
            .is_some_and(|c| holds_no_rows(c.as_ref()))
}

impl PhysicalOptimizerRule for WithoutEmptyUnionInputs {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            if !node.is::<UnionExec>() {
                return Ok(Transformed::no(node));
            }
            let children = node.children();
            let kept: Vec<Arc<dyn ExecutionPlan>> = children
                .iter()
                .filter(|c| !holds_no_rows(c.as_ref()))
                .map(|c| Arc::clone(c))
                .collect();
            if kept.len() == children.len() || kept.is_empty() {
                return Ok(Transformed::no(node));
            }
            let union = UnionExec::try_new(kept)?;
            // The union's columns keep their names (the first input's),
            // whichever inputs are left.
            let schema = node.schema();
            let left = union.schema();
            let renamed = schema
                .fields()
                .iter()
                .zip(left.fields())
                .any(|(a, b)| a.name() != b.name());
            if !renamed {
                return Ok(Transformed::yes(union));
            }
            let columns: Vec<ProjectionExpr> = schema
                .fields()
                .iter()
                .zip(left.fields())
                .enumerate()
                .map(|(i, (wanted, has))| ProjectionExpr {
                    expr: Arc::new(Column::new(has.name(), i)),
                    alias: wanted.name().clone(),
                })
                .collect();
            Ok(Transformed::yes(Arc::new(ProjectionExec::try_new(
                columns, union,
            )?)))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "WithoutEmptyUnionInputs"
    }

    fn schema_check(&self) -> bool {
        // Nullability may narrow when an input is dropped.
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::{DataType, Field, Schema};
    use datafusion::physical_plan::displayable;
    use datafusion::physical_plan::placeholder_row::PlaceholderRowExec;

    fn plan(first_empty: bool) -> Arc<dyn ExecutionPlan> {
        let named = |n: &str| Arc::new(Schema::new(vec![Field::new(n, DataType::Null, true)]));
        let empty: Arc<dyn ExecutionPlan> = Arc::new(EmptyExec::new(named("a")));
        let rows: Arc<dyn ExecutionPlan> = Arc::new(PlaceholderRowExec::new(named("b")));
        let inputs = if first_empty {
            vec![empty, rows.clone(), rows]
        } else {
            vec![rows.clone(), empty, rows]
        };
        UnionExec::try_new(inputs).unwrap()
    }

    #[test]
    fn empty_inputs_leave_the_union_with_its_column_names() {
        for first_empty in [true, false] {
            let before = plan(first_empty);
            let after = WithoutEmptyUnionInputs
                .optimize(before.clone(), &ConfigOptions::default())
                .unwrap();
            let text = displayable(after.as_ref()).indent(true).to_string();
            assert!(!text.contains("EmptyExec"), "{text}");
            assert_eq!(
                after.schema().field(0).name(),
                before.schema().field(0).name(),
                "{text}"
            );
        }
    }
}
