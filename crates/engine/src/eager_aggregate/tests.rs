//! Eager aggregation against the plan without it: the same rows, and the
//! grouping below the join only where it is exact.

use super::*;
use crate::rewrite::plan_and_rows;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};

/// 3,000 items over 40 importers (a few with NULL importer or value), 35
/// traders (importer 7 twice under two names, so the join repeats its
/// items; 36 to 39 and NULL absent), inspections of some items (some twice),
/// a nomenclature with one chapter missing and one twice.
async fn context(with_rule: bool) -> SessionContext {
    let config = SessionConfig::new()
        .with_batch_size(128)
        .with_target_partitions(2);
    let mut state = SessionStateBuilder::new()
        .with_config(config)
        .with_default_features();
    if with_rule {
        state = state.with_optimizer_rule(Arc::new(EagerAggregation));
    }
    let ctx = SessionContext::new_with_state(state.build());
    for sql in [
        "CREATE TABLE items AS SELECT
             CAST(value / 4 AS BIGINT) AS declaration_id,
             CAST(value % 4 AS INT) AS item_no,
             CASE WHEN value % 97 = 0 THEN NULL ELSE CAST((value * 7) % 40 AS INT) END AS importer_id,
             lpad(CAST((value * 13) % 9 AS VARCHAR), 2, '0') || '0110' AS hs_code,
             CASE WHEN value % 89 = 0 THEN NULL
                  ELSE CAST(((value * 31) % 1000) / 10.0 AS DECIMAL(12, 2)) END AS customs_value,
             CAST((value * 17) % 1000 AS DOUBLE) / 7 AS weight,
             CASE value % 3 WHEN 0 THEN 'green' WHEN 1 THEN 'yellow' ELSE 'red' END AS lane
         FROM generate_series(0, 2999)",
        "CREATE TABLE traders AS SELECT CAST(value AS INT) AS importer_id, 'trader ' || value AS name
         FROM generate_series(0, 35)
         UNION ALL SELECT 7, 'trader 7 (old name)'",
        "CREATE TABLE inspections AS SELECT
             CAST(value / 4 AS BIGINT) AS declaration_id,
             CAST(value % 4 AS INT) AS item_no,
             CASE WHEN value % 5 = 0 THEN 'fraud' ELSE 'compliant' END AS result,
             CAST(value % 50 AS DECIMAL(12, 2)) AS additional_revenue
         FROM generate_series(0, 2999) WHERE value % 6 = 0 OR value % 55 = 0
         UNION ALL SELECT CAST(value / 4 AS BIGINT), CAST(value % 4 AS INT), 'fraud', 1.00
         FROM generate_series(0, 2999) WHERE value % 120 = 0",
        "CREATE TABLE nomenclature AS SELECT lpad(CAST(value AS VARCHAR), 2, '0') AS hs_code,
             'chapter ' || value AS description
         FROM generate_series(0, 7)
         UNION ALL SELECT '03', 'chapter 3 (again)'",
    ] {
        ctx.sql(sql).await.unwrap().collect().await.unwrap();
    }
    ctx
}

/// Each query's rows with the rule and without it, and whether the plan
/// with it has more aggregations (the rule's grouping below the join).
async fn compare(sql: &str) -> bool {
    let (plain_plan, plain_rows) = plan_and_rows(&context(false).await, sql).await;
    let (plan, rows) = plan_and_rows(&context(true).await, sql).await;
    assert_eq!(rows, plain_rows, "{sql}\n{plan}\n{plain_plan}");
    let aggregations = |plan: &str| plan.matches("AggregateExec").count();
    aggregations(&plan) > aggregations(&plain_plan)
}

const OUTCOME: &str = "WITH outcome AS (
    SELECT declaration_id, item_no, MAX(CASE WHEN result = 'fraud' THEN 1 ELSE 0 END) AS fraud,
           SUM(additional_revenue) AS recovered
    FROM inspections GROUP BY declaration_id, item_no)";

#[tokio::test]
async fn groups_items_before_naming_what_they_are_grouped_by() {
    // The nomenclature names chapters, one twice: the join repeats those
    // items, and the sums repeat with them as without the rule.
    assert!(
        compare(
            "SELECT substr(d.hs_code, 1, 2) AS chapter, n.description, COUNT(*) AS items,
                    SUM(d.customs_value) AS value, COUNT(d.customs_value) AS valued,
                    MIN(d.customs_value) AS smallest, MAX(d.hs_code) AS last_code
             FROM items d LEFT JOIN nomenclature n ON n.hs_code = substr(d.hs_code, 1, 2)
             GROUP BY substr(d.hs_code, 1, 2), n.description
             ORDER BY chapter, description"
        )
        .await
    );
    // Inner join, the dimension on the left, keys in another order than
    // the grouping, items without importer dropped.
    assert!(
        compare(
            "SELECT t.name, d.lane, d.importer_id, SUM(d.customs_value) AS value, COUNT(*) AS n
             FROM traders t JOIN items d ON d.importer_id = t.importer_id
             GROUP BY t.name, d.lane, d.importer_id ORDER BY t.name, d.lane"
        )
        .await
    );
}

#[tokio::test]
async fn moves_the_dimension_above_the_outer_join_it_takes_no_part_in() {
    let sql = format!(
        "{OUTCOME}
         SELECT d.importer_id, t.name, COUNT(*) AS items, SUM(d.customs_value) AS value,
                COUNT(o.declaration_id) AS inspected, COALESCE(SUM(o.fraud), 0) AS fraud,
                SUM(o.recovered) AS recovered
         FROM items d
         JOIN traders t ON t.importer_id = d.importer_id
         LEFT JOIN outcome o ON o.declaration_id = d.declaration_id AND o.item_no = d.item_no
         GROUP BY d.importer_id, t.name ORDER BY value DESC, d.importer_id, t.name"
    );
    assert!(compare(&sql).await);
}

#[tokio::test]
async fn leaves_alone_what_it_cannot_make_exact() {
    for sql in [
        // A float sum: the partials would round differently.
        "SELECT t.name, SUM(d.weight) AS weight FROM items d
         JOIN traders t ON t.importer_id = d.importer_id GROUP BY t.name ORDER BY t.name",
        // An average, a distinct count.
        "SELECT t.name, AVG(d.customs_value) AS a, COUNT(DISTINCT d.lane) AS lanes FROM items d
         JOIN traders t ON t.importer_id = d.importer_id GROUP BY t.name ORDER BY t.name",
        // The join key is not grouped by: the grouping below would not
        // shrink the join's input.
        "SELECT t.name, SUM(d.customs_value) AS v FROM items d
         JOIN traders t ON t.importer_id = d.importer_id GROUP BY t.name ORDER BY t.name",
        // Measures from both sides.
        "SELECT d.importer_id, COUNT(*) AS n, MAX(t.name) AS name FROM items d
         JOIN traders t ON t.importer_id = d.importer_id
         GROUP BY d.importer_id ORDER BY d.importer_id",
        // The side the measures read is not preserved by the outer join.
        "SELECT d.importer_id, t.name, SUM(d.customs_value) AS v FROM traders t
         LEFT JOIN items d ON t.importer_id = d.importer_id
         GROUP BY d.importer_id, t.name ORDER BY d.importer_id, t.name",
    ] {
        assert!(!compare(sql).await, "{sql}");
    }
    // The lane report: the join is on the item, grouped by lane.
    let lanes = format!(
        "{OUTCOME}
         SELECT d.lane, COUNT(*) AS items, COUNT(o.declaration_id) AS inspected,
                SUM(o.fraud) AS fraud
         FROM items d LEFT JOIN outcome o
           ON o.declaration_id = d.declaration_id AND (o.item_no = d.item_no OR o.item_no IS NULL)
         GROUP BY d.lane ORDER BY d.lane"
    );
    assert!(!compare(&lanes).await);
}
