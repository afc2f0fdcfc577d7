//! Issue 21: a join builds its hash table on the smaller input whatever
//! order the SQL names them in (see `aduana_engine::join_order`).

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::aggregates::AggregateExec;
use datafusion::physical_plan::displayable;
use datafusion::physical_plan::joins::{HashJoinExec, PartitionMode};

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

/// Whether `plan` groups by a column named `key` below a hash join
/// (eager aggregation put it there).
fn grouped_below_a_join(plan: &Arc<dyn ExecutionPlan>, key: &str, below_join: bool) -> bool {
    let below_join = below_join || plan.downcast_ref::<HashJoinExec>().is_some();
    if below_join
        && plan.downcast_ref::<AggregateExec>().is_some_and(|a| {
            a.group_expr()
                .expr()
                .iter()
                .any(|(_, name)| name.contains(key))
        })
    {
        return true;
    }
    plan.children()
        .into_iter()
        .any(|c| grouped_below_a_join(c, key, below_join))
}

/// Reports that name what they group by with a reference table group the
/// items before the join (`aduana_engine::eager_aggregate`), and answer as
/// the same figures computed per key by hand and then named.
#[test]
fn reports_group_items_before_naming_the_groups() {
    let wh = generate(20_000, 3);
    runtime().block_on(async {
        let session = session(&wh.uri()).await;
        let chapters = aduana_reports::get("value_by_chapter").unwrap().sql;
        let by_hand = "
            WITH per_chapter AS (
                SELECT substr(hs_code, 1, 2) AS chapter, COUNT(*) AS items,
                       SUM(customs_value) AS customs_value
                FROM declarations GROUP BY substr(hs_code, 1, 2))
            SELECT p.chapter, n.description, SUM(p.items) AS items,
                   CAST(SUM(p.customs_value) AS DECIMAL(28, 2)) AS customs_value,
                   round(100.0 * CAST(SUM(p.customs_value) AS DOUBLE)
                         / SUM(CAST(SUM(p.customs_value) AS DOUBLE)) OVER (), 1) AS pct_of_value
            FROM per_chapter p
            LEFT JOIN reference.hs_nomenclature n ON n.hs_code = p.chapter
            GROUP BY p.chapter, n.description
            ORDER BY customs_value DESC LIMIT 15";
        let importers = "
            WITH outcome AS (
                SELECT declaration_id, item_no,
                       MAX(CASE WHEN result = 'fraud' THEN 1 ELSE 0 END) AS fraud
                FROM inspections GROUP BY declaration_id, item_no)
            SELECT d.importer_id, t.name, COUNT(*) AS items, SUM(d.customs_value) AS value,
                   COUNT(o.declaration_id) AS inspected, COALESCE(SUM(o.fraud), 0) AS fraud
            FROM declarations d
            JOIN reference.traders t ON t.importer_id = d.importer_id
            LEFT JOIN outcome o ON o.declaration_id = d.declaration_id AND o.item_no = d.item_no
            GROUP BY d.importer_id, t.name ORDER BY value DESC, d.importer_id LIMIT 20";
        let importers_by_hand = "
            WITH outcome AS (
                SELECT declaration_id, item_no,
                       MAX(CASE WHEN result = 'fraud' THEN 1 ELSE 0 END) AS fraud
                FROM inspections GROUP BY declaration_id, item_no),
            per_importer AS (
                SELECT d.importer_id, COUNT(*) AS items, SUM(d.customs_value) AS value,
                       COUNT(o.declaration_id) AS inspected, SUM(o.fraud) AS fraud
                FROM declarations d
                LEFT JOIN outcome o ON o.declaration_id = d.declaration_id AND o.item_no = d.item_no
                GROUP BY d.importer_id)
            SELECT p.importer_id, t.name, p.items, p.value, p.inspected, COALESCE(p.fraud, 0) AS fraud
            FROM per_importer p JOIN reference.traders t ON t.importer_id = p.importer_id
            ORDER BY value DESC, p.importer_id LIMIT 20";
        for (sql, expected, key) in [
            (chapters, by_hand, "substr"),
            (importers, importers_by_hand, "importer_id"),
        ] {
            let plan = physical_plan(&session, sql).await;
            assert!(
                grouped_below_a_join(&plan, key, false),
                "the items are grouped below the join:\n{}",
                displayable(plan.as_ref()).indent(true)
            );
            let answer = query_text(&session, sql).await;
            assert_eq!(answer, query_text(&session, expected).await);
            assert!(answer.lines().count() > 8, "{answer}");
        }
    });
}

/// The hash-join modes of `plan`, outermost first.
fn join_modes(plan: &Arc<dyn ExecutionPlan>, out: &mut Vec<PartitionMode>) {
    if let Some(join) = plan.downcast_ref::<HashJoinExec>() {
        out.push(*join.partition_mode());
    }
    for child in plan.children() {
        join_modes(child, out);
    }
}

/// A build side estimated at 200,000 rows (an aggregate over 2 million),
/// probed by 2 million rows: one hash table that every partition probes,
/// not both sides repartitioned by hash (DataFusion's default above 128k
/// rows; the inspection-outcome reports' shape, issue 21).
#[test]
fn a_build_side_under_a_million_estimated_rows_is_built_once() {
    let wh = generate(2_000, 2);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("keys.parquet");
    let keys = Int64Array::from_iter_values(0..2_000_000);
    write_parquet(
        &file,
        &RecordBatch::try_from_iter([("k", Arc::new(keys) as ArrayRef)]).unwrap(),
    );
    runtime().block_on(async {
        // Two partitions whatever the machine (with one, every join is
        // built once anyway).
        let options = aduana_engine::EngineOptions {
            target_partitions: Some(2),
            ..Default::default()
        };
        let session = aduana_engine::Session::open(open(&wh.uri()).await.unwrap(), &options)
            .await
            .unwrap();
        session
            .context()
            .register_parquet("keys", file.to_str().unwrap(), Default::default())
            .await
            .unwrap();
        let sql = "SELECT COUNT(*), COUNT(o.n), SUM(o.n) FROM keys d
                   LEFT JOIN (SELECT k % 1000 AS k, COUNT(*) AS n FROM keys GROUP BY k % 1000) o
                          ON o.k = d.k";
        let plan = physical_plan(&session, sql).await;
        let mut modes = Vec::new();
        join_modes(&plan, &mut modes);
        assert_eq!(
            modes,
            [PartitionMode::CollectLeft],
            "{}",
            displayable(plan.as_ref()).indent(true)
        );
        // Keys 0..999 match their group of 2,000 keys each.
        let batches = query(&session, sql).await;
        let value = |c: usize| first_i64(&batches, c);
        assert_eq!(
            (value(0), value(1), value(2)),
            (2_000_000, 1_000, 2_000_000)
        );
    });
}
