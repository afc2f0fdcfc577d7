//! Tests of the prefix join against the nested loop it replaces.

use super::*;
use crate::rewrite::plan_and_rows;
use datafusion::arrow::array::{Float64Array, Int32Array, StringArray};
use datafusion::arrow::datatypes::{Field, Schema};
use datafusion::datasource::MemTable;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};

fn table(fields: Vec<Field>, columns: Vec<ArrayRef>, batch: usize) -> Arc<MemTable> {
    let schema = Arc::new(Schema::new(fields));
    let all = RecordBatch::try_new(Arc::clone(&schema), columns).unwrap();
    let batches = (0..all.num_rows())
        .step_by(batch)
        .map(|start| all.slice(start, batch.min(all.num_rows() - start)))
        .collect();
    Arc::new(MemTable::try_new(schema, vec![batches]).unwrap())
}

/// 400 items with codes of 3 to 10 digits (and a few NULL or empty),
/// and prefixes of 2, 4 and 6 digits, some repeated, one NULL.
fn context(with_rule: bool) -> SessionContext {
    let config = SessionConfig::new()
        .with_batch_size(64)
        .with_target_partitions(2);
    let mut state = SessionStateBuilder::new()
        .with_config(config)
        .with_default_features();
    if with_rule {
        state = state.with_physical_optimizer_rule(Arc::new(PrefixLookups));
    }
    let ctx = SessionContext::new_with_state(state.build());
    let codes: StringArray = (0..400u64)
        .map(|i| match i % 37 {
            0 => None,
            1 => Some(String::new()),
            _ => {
                let digits = format!("{:010}", i.wrapping_mul(2654435761) % 10_000_000_000);
                // Items share leading digits: prefixes match often.
                let code = format!("84{}", &digits[2..]);
                Some(code[..3 + (i as usize % 8)].to_string())
            }
        })
        .collect();
    let ids: Int32Array = (0..400).collect();
    let items = table(
        vec![
            Field::new("code", DataType::Utf8, true),
            Field::new("id", DataType::Int32, false),
        ],
        vec![Arc::new(codes.clone()), Arc::new(ids)],
        50,
    );
    let mut prefixes: Vec<Option<String>> = codes
        .iter()
        .step_by(7)
        .flatten()
        .filter(|c| c.len() >= 6)
        .flat_map(|c| [2, 4, 6].map(|l| Some(c[..l].to_string())))
        .collect();
    prefixes.push(None);
    let rates: Float64Array = (0..prefixes.len()).map(|i| Some((i % 5) as f64)).collect();
    let reference = table(
        vec![
            Field::new("prefix", DataType::Utf8, true),
            Field::new("rate", DataType::Float64, false),
        ],
        vec![Arc::new(StringArray::from(prefixes)), Arc::new(rates)],
        1000,
    );
    ctx.register_table("items", items).unwrap();
    ctx.register_table("reference", reference).unwrap();
    ctx
}

/// Inner and outer joins, with and without other conditions, give the
/// nested loop's rows.
#[tokio::test]
async fn joins_on_a_prefix_as_the_nested_loop_does() {
    let (plain, prefixed) = (context(false), context(true));
    for sql in [
        "SELECT i.id, i.code, r.prefix, r.rate FROM items i
         JOIN reference r ON starts_with(i.code, r.prefix)
         ORDER BY i.id, r.prefix, r.rate",
        "SELECT i.id, r.prefix, r.rate FROM items i
         LEFT JOIN reference r ON starts_with(i.code, r.prefix) AND r.rate >= 2
         ORDER BY i.id, r.prefix, r.rate",
        "SELECT r.prefix, r.rate, COUNT(*) AS n FROM reference r
         JOIN items i ON r.rate > 0 AND starts_with(i.code, r.prefix)
         GROUP BY r.prefix, r.rate ORDER BY r.prefix, r.rate",
        // The longest matching prefix of each item.
        "SELECT id, prefix FROM (
             SELECT i.id, r.prefix,
                    row_number() OVER (PARTITION BY i.id ORDER BY length(r.prefix) DESC, r.rate) AS n
             FROM items i JOIN reference r ON starts_with(i.code, r.prefix))
         WHERE n = 1 ORDER BY id",
    ] {
        let (plain_plan, expected) = plan_and_rows(&plain, sql).await;
        let (plan, rows) = plan_and_rows(&prefixed, sql).await;
        assert!(plain_plan.contains("NestedLoopJoinExec"), "{plain_plan}");
        assert!(
            plan.contains("PrefixJoinExec") && !plan.contains("NestedLoopJoinExec"),
            "{plan}"
        );
        assert_eq!(rows, expected, "{sql}");
        assert!(rows.lines().count() > 20, "{rows}");
    }
}

/// A prefix taken from the probe side (the reverse question), or a
/// join that must keep unmatched build rows, stays a nested loop.
#[tokio::test]
async fn other_shapes_stay_nested_loops() {
    let ctx = context(true);
    for sql in [
        "SELECT * FROM items i JOIN reference r ON starts_with(r.prefix, i.code)",
        "SELECT * FROM items i FULL JOIN reference r ON starts_with(i.code, r.prefix)",
    ] {
        let (plan, _) = plan_and_rows(&ctx, sql).await;
        assert!(
            plan.contains("NestedLoopJoinExec") && !plan.contains("PrefixJoinExec"),
            "{plan}"
        );
    }
}

mod memory {
    use super::*;
    use datafusion::arrow::array::Int64Array;
    use datafusion::execution::runtime_env::RuntimeEnvBuilder;
    use datafusion::execution::session_state::SessionStateBuilder;
    use datafusion::prelude::{SessionConfig, SessionContext};

    /// The plan and the count (or the error) of `sql` in a session with
    /// `limit` bytes of memory, with or without the rule.
    async fn count(limit: Option<usize>, with_rule: bool, sql: &str) -> (String, Result<i64>) {
        let mut runtime = RuntimeEnvBuilder::new();
        if let Some(limit) = limit {
            runtime = runtime.with_memory_limit(limit, 1.0);
        }
        let mut state = SessionStateBuilder::new()
            .with_config(
                SessionConfig::new()
                    .with_target_partitions(1)
                    .with_batch_size(128),
            )
            .with_runtime_env(runtime.build_arc().unwrap())
            .with_default_features();
        if with_rule {
            state = state.with_physical_optimizer_rule(Arc::new(PrefixLookups));
        }
        let ctx = SessionContext::new_with_state(state.build());
        let plan = ctx
            .sql(sql)
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        let shown = datafusion::physical_plan::displayable(plan.as_ref())
            .indent(false)
            .to_string();
        let n = ctx.sql(sql).await.unwrap().collect().await.map(|batches| {
            let column = batches[0].column(0);
            column
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .value(0)
        });
        (shown, n)
    }

    /// A build side over the session's memory limit is handed to the
    /// nested loop (which can spill it): the query then succeeds or fails
    /// exactly as it would without the rule, never for want of memory in
    /// this operator.
    #[tokio::test]
    async fn a_build_side_over_the_memory_limit_is_the_nested_loops_to_run() {
        // The prefixes written first: the nested loop's build side. About
        // 150 KB of prefixes in batches of 128 rows.
        let sql = "SELECT COUNT(*) FROM (SELECT 'x' || repeat('p', 64) || CAST(i AS VARCHAR) AS prefix FROM generate_series(1, 2000) t(i)) r
                   JOIN (SELECT 'x' || repeat('p', 64) || CAST(i * 7 AS VARCHAR) || 'tail' AS code FROM generate_series(1, 5000) t(i)) items
                   ON starts_with(items.code, r.prefix)";
        let (plan, unlimited) = count(None, true, sql).await;
        assert!(plan.contains("PrefixJoinExec"), "{plan}");
        let unlimited = unlimited.unwrap();
        assert!(unlimited > 500, "{unlimited}");
        assert_eq!(count(None, false, sql).await.1.unwrap(), unlimited);
        for limit in [64 * 1024, 512 * 1024, 4 << 20] {
            let (with_rule, without) = (
                count(Some(limit), true, sql).await.1,
                count(Some(limit), false, sql).await.1,
            );
            match (with_rule, without) {
                (Ok(a), Ok(b)) => assert_eq!((a, b), (unlimited, unlimited), "{limit}"),
                (Err(a), Err(_)) => assert!(!a.to_string().contains("PrefixJoinExec"), "{a}"),
                (a, b) => panic!("limit {limit}: with the rule {a:?}, without {b:?}"),
            }
        }
    }
}
