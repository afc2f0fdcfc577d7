//! Issue 21: a join builds its hash table on the smaller input whatever
//! order the SQL names them in (see `aduana_engine::join_order`).

use std::sync::Arc;

use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::aggregates::AggregateExec;
use datafusion::physical_plan::displayable;
use datafusion::physical_plan::joins::HashJoinExec;

use crate::support::*;

/// The build (first) inputs of every hash join of `plan`, outermost first.
fn build_sides(plan: &Arc<dyn ExecutionPlan>, out: &mut Vec<Arc<dyn ExecutionPlan>>) {
    if let Some(join) = plan.downcast_ref::<HashJoinExec>() {
        out.push(join.left().clone());
    }
    for child in plan.children() {
        build_sides(child, out);
    }
}

/// Whether `plan` has a grouped aggregate anywhere below it (before a join).
fn aggregates(plan: &Arc<dyn ExecutionPlan>) -> bool {
    if plan.downcast_ref::<HashJoinExec>().is_some() {
        return false;
    }
    plan.downcast_ref::<AggregateExec>().is_some() || plan.children().into_iter().any(aggregates)
}

/// The items joined back to per-group figures, as analysts write it (the
/// big table first) and the other way round, and a three-way join of the
/// shape of the baseline (two aggregates joined to the items).
const PROFILE: &str = "(SELECT hs_code, origin_country, COUNT(*) AS n, AVG(customs_value) AS mean
                        FROM declarations GROUP BY hs_code, origin_country)";
const SHARES: &str =
    "(SELECT substr(hs_code, 1, 6) AS hs6, COUNT(DISTINCT origin_country) AS origins
                       FROM declarations GROUP BY substr(hs_code, 1, 6))";

#[test]
fn joins_build_on_the_aggregate_whichever_side_it_is_written() {
    let wh = generate(20_000, 3);
    runtime().block_on(async {
        let session = session(&wh.uri()).await;
        let on = "d.hs_code = p.hs_code AND d.origin_country = p.origin_country";
        let queries = [
            format!("SELECT COUNT(*), SUM(p.n), SUM(d.customs_value - p.mean) FROM declarations d JOIN {PROFILE} p ON {on}"),
            format!("SELECT COUNT(*), SUM(p.n), SUM(d.customs_value - p.mean) FROM {PROFILE} p JOIN declarations d ON {on}"),
            format!(
                "SELECT COUNT(*), SUM(p.n), SUM(s.origins) FROM declarations d
                 JOIN {PROFILE} p ON {on} JOIN {SHARES} s ON s.hs6 = substr(d.hs_code, 1, 6)"
            ),
        ];
        let mut answers = Vec::new();
        for sql in &queries {
            let frame = session.context().sql(sql).await.unwrap();
            let plan = frame.clone().create_physical_plan().await.unwrap();
            let shown = displayable(plan.as_ref()).indent(true).to_string();
            let mut builds = Vec::new();
            build_sides(&plan, &mut builds);
            assert!(!builds.is_empty(), "a hash join: {shown}");
            for build in &builds {
                assert!(
                    aggregates(build),
                    "every hash join builds on a grouped aggregate, not on the items:\n{sql}\n{shown}"
                );
            }
            answers.push(query_text(&session, sql).await);
        }
        // The order written changes nothing in the answer.
        assert_eq!(answers[0], answers[1]);
        // Each item with both keys joins its own group: one row per item.
        let items = query_i64(
            &session,
            "SELECT COUNT(*) FROM declarations WHERE hs_code IS NOT NULL AND origin_country IS NOT NULL",
        )
        .await;
        assert!(answers[0].contains(&format!("| {items} ")), "{}", answers[0]);
    });
}
