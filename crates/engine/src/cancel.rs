//! Cancelling a query stops its work.
//!
//! A query is cancelled by dropping its stream: DataFusion's tasks are
//! aborted, but tokio can only abort a task when it yields. Scans yield
//! (DataFusion's `EnsureCooperative` makes leaves spend tokio's budget),
//! but an operator that turns one input batch into very many output
//! batches, a join matching every row with thousands, keeps its consumer
//! busy without touching a leaf: the task never yields, the "cancelled"
//! query keeps a core busy until it ends, and the runtime cannot shut
//! down meanwhile (the shell's Ctrl-C, then Ctrl-D, waited minutes).
//! [`YieldingMultipliers`] makes the output of such operators spend the
//! budget too, so the task yields every budget's worth of batches (128)
//! and an abort lands within a fraction of a second. The cost is one
//! budget check per output batch.

use std::sync::Arc;

use datafusion::common::Result;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::coop::CooperativeExec;
use datafusion::physical_plan::joins::{
    CrossJoinExec, HashJoinExec, NestedLoopJoinExec, SortMergeJoinExec, SymmetricHashJoinExec,
};
use datafusion::physical_plan::unnest::UnnestExec;

/// Wraps every operator that can multiply rows (joins, unnest) in a
/// `CooperativeExec`; see the module.
#[derive(Debug, Default)]
pub struct YieldingMultipliers;

fn multiplies_rows(plan: &dyn ExecutionPlan) -> bool {
    plan.is::<HashJoinExec>()
        || plan.is::<NestedLoopJoinExec>()
        || plan.is::<CrossJoinExec>()
        || plan.is::<SortMergeJoinExec>()
        || plan.is::<SymmetricHashJoinExec>()
        || plan.is::<UnnestExec>()
}

impl PhysicalOptimizerRule for YieldingMultipliers {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            if multiplies_rows(node.as_ref()) {
                Ok(Transformed::yes(
                    Arc::new(CooperativeExec::new(node)) as Arc<dyn ExecutionPlan>
                ))
            } else {
                Ok(Transformed::no(node))
            }
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "YieldingMultipliers"
    }

    fn schema_check(&self) -> bool {
        true
    }
}
