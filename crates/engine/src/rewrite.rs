//! What the session's rules that swap an operator for a faster one of the
//! same meaning (`ranking`, `prefix_join`) share.

use std::sync::Arc;

use datafusion::common::Result;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::physical_plan::ExecutionPlan;

/// `plan` with each node of type `T` put through `replaced`, bottom up
/// (`replaced` returns the node itself when it does not qualify).
pub(crate) fn replace_each<T: ExecutionPlan>(
    plan: Arc<dyn ExecutionPlan>,
    replaced: fn(Arc<dyn ExecutionPlan>) -> Arc<dyn ExecutionPlan>,
) -> Result<Arc<dyn ExecutionPlan>> {
    plan.transform_up(|node| {
        if !node.is::<T>() {
            return Ok(Transformed::no(node));
        }
        let new = replaced(Arc::clone(&node));
        let changed = !Arc::ptr_eq(&new, &node);
        Ok(Transformed::new_transformed(new, changed))
    })
    .map(|t| t.data)
}

/// The plan of `sql` as `EXPLAIN` shows it, and its rows as a table.
#[cfg(test)]
pub(crate) async fn plan_and_rows(
    ctx: &datafusion::prelude::SessionContext,
    sql: &str,
) -> (String, String) {
    let frame = ctx.sql(sql).await.unwrap();
    let plan = frame.clone().create_physical_plan().await.unwrap();
    let shown = datafusion::physical_plan::displayable(plan.as_ref())
        .indent(false)
        .to_string();
    let batches = frame.collect().await.unwrap();
    let rows = datafusion::arrow::util::pretty::pretty_format_batches(&batches)
        .unwrap()
        .to_string();
    (shown, rows)
}
