//! ORDER BY keeps every key the SQL names.
//!
//! DataFusion 55's `eliminate_duplicated_expr` also drops an ORDER BY key
//! that the plan's functional dependencies say an earlier key determines
//! (apache/datafusion#21362). The dependencies an aggregate derives over a
//! join can claim more than holds: grouped by `(x.importer_id, t.name)`
//! over a join whose `x` side was itself grouped by importer, the importer
//! is taken to determine every column, the trader's name too. `ORDER BY
//! importer_id, name` then sorts by importer only, and a trader known
//! under two names comes out in any order (test below, plain DataFusion).
//! The session runs that rule through this wrapper: a sort loses only keys
//! that repeat an earlier one, and everything else is the rule's own.

use datafusion::common::Result;
use datafusion::common::tree_node::Transformed;
use datafusion::logical_expr::{LogicalPlan, Sort, SortExpr};
use datafusion::optimizer::eliminate_duplicated_expr::EliminateDuplicatedExpr;
use datafusion::optimizer::{ApplyOrder, OptimizerConfig, OptimizerRule};

/// `eliminate_duplicated_expr` without the pruning of sort keys by
/// functional dependencies.
#[derive(Debug, Default)]
pub struct RepeatedSortKeys(EliminateDuplicatedExpr);

impl OptimizerRule for RepeatedSortKeys {
    fn name(&self) -> &str {
        "aduana_eliminate_duplicated_expr"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::TopDown)
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        let LogicalPlan::Sort(sort) = plan else {
            return self.0.rewrite(plan, config);
        };
        let mut expr = Vec::with_capacity(sort.expr.len());
        for key in sort.expr.iter() {
            if !expr.iter().any(|k: &SortExpr| k.expr == key.expr) {
                expr.push(key.clone());
            }
        }
        let changed = expr.len() != sort.expr.len();
        let sort = Sort { expr, ..sort };
        Ok(Transformed::new_transformed(
            LogicalPlan::Sort(sort),
            changed,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::execution::session_state::SessionStateBuilder;
    use datafusion::prelude::SessionContext;

    const SQL: &str = "
        WITH t(k) AS (VALUES (1), (1), (2), (2), (3)),
             u(k, name) AS (VALUES (1, 'b'), (1, 'a'), (2, 'd'), (2, 'c'), (3, 'e'))
        SELECT x.k, u.name, AVG(x.c) AS c
        FROM (SELECT k, COUNT(*) AS c FROM t GROUP BY k) x JOIN u ON u.k = x.k
        GROUP BY x.k, u.name ORDER BY x.k, u.name, x.k";

    async fn sort_keys(ctx: &SessionContext) -> String {
        let plan = ctx.sql(SQL).await.unwrap().into_optimized_plan().unwrap();
        let LogicalPlan::Sort(sort) = plan else {
            panic!("a sort on top: {plan}")
        };
        let keys: Vec<String> = sort.expr.iter().map(|k| k.expr.to_string()).collect();
        keys.join(", ")
    }

    #[tokio::test]
    async fn sorts_by_every_key_named_once() {
        let plain = SessionContext::new();
        // The dependency DataFusion derives drops the name.
        assert_eq!(sort_keys(&plain).await, "x.k");
        let state = SessionStateBuilder::new()
            .with_default_features()
            .with_optimizer_rules(crate::optimizer_rules())
            .build();
        let fixed = SessionContext::new_with_state(state);
        assert_eq!(sort_keys(&fixed).await, "x.k, u.name");
        let batches = fixed.sql(SQL).await.unwrap().collect().await.unwrap();
        let shown = datafusion::arrow::util::pretty::pretty_format_batches(&batches)
            .unwrap()
            .to_string();
        let names: Vec<&str> = shown
            .lines()
            .filter_map(|l| l.split('|').nth(2))
            .map(str::trim)
            .filter(|n| n.len() == 1)
            .collect();
        assert_eq!(names, ["a", "b", "c", "d", "e"]);
    }
}
