//! Guards on what a query may build that DataFusion's memory pool does
//! not see.
//!
//! The pool accounts for what operators buffer (sorts, aggregates, hash
//! tables, the build side of joins), not for the values a scalar function
//! allocates (`repeat('x', 2000000000)` is 2 GB at once, `range(1, 1.5e9)`
//! 12 GB), nor for the batches of a cross join whose rows have no columns
//! (`SELECT count(*) FROM t r0, t r1, …`: every batch counts as zero bytes
//! and the list of them grows without bound). So:
//! - the functions that can build huge values are wrapped: before calling
//!   DataFusion's own, the wrapper computes from the arguments how large
//!   the result would be and refuses past [`MAX_VALUE_BYTES`] for one value
//!   or [`MAX_BATCH_BYTES`] for one batch;
//! - [`JoinSizeLimit`], a physical optimiser rule, refuses a cross or
//!   nested-loop join whose build side is estimated past
//!   [`MAX_BUILD_ROWS`] rows, or whose inputs multiply past
//!   [`MAX_JOIN_PAIRS`] pairs.
//!
//! Both fail with DataFusion's "resources exhausted" error, which servers
//! answer as RESOURCE_EXHAUSTED.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::compute::cast;
use arrow::compute::kernels::length::length;
use arrow::datatypes::{DataType, FieldRef, Int64Type};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature,
};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::joins::{CrossJoinExec, NestedLoopJoinExec};
use datafusion::physical_plan::{ExecutionPlan, StatisticsArgs, StatisticsContext};
use datafusion::prelude::SessionContext;

/// The largest single value a function may build.
pub const MAX_VALUE_BYTES: u64 = 64 << 20;

/// The most one call of a function may build over a batch.
pub const MAX_BATCH_BYTES: u64 = 512 << 20;

/// The most rows a cross or nested-loop join may hold as its build side.
pub const MAX_BUILD_ROWS: f64 = 1e9;

/// The most row pairs a cross or nested-loop join may compare: 10^12 at a
/// billion a second is a quarter of an hour.
pub const MAX_JOIN_PAIRS: f64 = 1e12;

/// How a function's result size follows from its arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Size {
    /// `repeat(text, n)`: the text's bytes times `n`.
    TextTimesCount,
    /// `lpad(text, n)`, `rpad(text, n)`: `n` characters of up to 4 bytes.
    CharactersInArgument1,
    /// `range(start, stop[, step])`, `generate_series`: 8 bytes an element.
    IntegerRange,
    /// `array_repeat(value, n)`, `array_resize(array, n, …)`: `n` elements of
    /// at least 8 bytes.
    ElementsInArgument1,
}

/// The functions wrapped, and how their size is computed.
const GUARDED: &[(&str, Size)] = &[
    ("repeat", Size::TextTimesCount),
    ("lpad", Size::CharactersInArgument1),
    ("rpad", Size::CharactersInArgument1),
    ("range", Size::IntegerRange),
    ("generate_series", Size::IntegerRange),
    ("array_repeat", Size::ElementsInArgument1),
    ("array_resize", Size::ElementsInArgument1),
];

/// Replaces the session's functions of [`GUARDED`] by guarded ones.
pub fn register(ctx: &SessionContext) -> Result<()> {
    for &(name, size) in GUARDED {
        let Ok(inner) = ctx.udf(name) else { continue };
        ctx.register_udf(ScalarUDF::new_from_impl(SizeGuarded { inner, size }));
    }
    Ok(())
}

/// DataFusion's function, called only when its result would fit.
#[derive(Debug)]
struct SizeGuarded {
    inner: Arc<ScalarUDF>,
    size: Size,
}

impl PartialEq for SizeGuarded {
    fn eq(&self, other: &Self) -> bool {
        self.inner == other.inner && self.size == other.size
    }
}

impl Eq for SizeGuarded {}

impl std::hash::Hash for SizeGuarded {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.inner.hash(state);
        self.size.hash(state);
    }
}

impl ScalarUDFImpl for SizeGuarded {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        self.inner.return_field_from_args(args)
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.inner().coerce_types(arg_types)
    }

    fn with_updated_config(&self, _config: &ConfigOptions) -> Option<ScalarUDF> {
        None
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let (largest, total) = result_size(self.size, &args.args, args.number_rows)?;
        if largest > MAX_VALUE_BYTES || total > MAX_BATCH_BYTES {
            return Err(DataFusionError::ResourcesExhausted(format!(
                "{}(...) would build {} (largest value {}); Aduana allows {} per value and {} per \
                 batch of rows",
                self.name(),
                bytes(total),
                bytes(largest),
                bytes(MAX_VALUE_BYTES),
                bytes(MAX_BATCH_BYTES)
            )));
        }
        self.inner.invoke_with_args(args)
    }
}

fn bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1} GiB", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64),
        n => format!("{n} bytes"),
    }
}

/// The largest value and the total a call would build, in bytes
/// (saturating: absurd arguments give absurd, not wrapped, sizes).
fn result_size(size: Size, args: &[ColumnarValue], rows: usize) -> Result<(u64, u64)> {
    let rows = rows.max(1);
    let per_row: Vec<u64> = match size {
        Size::TextTimesCount => {
            let text = text_lengths(args.first(), rows)?;
            let count = integers(args.get(1), rows)?;
            text.iter()
                .zip(&count)
                .map(|(t, n)| t.saturating_mul(non_negative(*n)))
                .collect()
        }
        Size::CharactersInArgument1 => integers(args.get(1), rows)?
            .into_iter()
            .map(|n| non_negative(n).saturating_mul(4))
            .collect(),
        // Each element at least 8 bytes, or the value's text length.
        Size::ElementsInArgument1 => {
            let value = match args.first().map(|a| a.data_type()) {
                Some(DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) => {
                    text_lengths(args.first(), rows)?
                }
                _ => vec![0; rows],
            };
            integers(args.get(1), rows)?
                .into_iter()
                .zip(value)
                .map(|(n, bytes)| non_negative(n).saturating_mul(bytes.max(8)))
                .collect()
        }
        Size::IntegerRange => {
            // Only integer ranges; dates and timestamps step by intervals.
            if args.iter().any(|a| !a.data_type().is_integer()) {
                return Ok((0, 0));
            }
            let (start, stop, step) = match args.len() {
                1 => (vec![0; rows], integers(args.first(), rows)?, vec![1; rows]),
                2 => (
                    integers(args.first(), rows)?,
                    integers(args.get(1), rows)?,
                    vec![1; rows],
                ),
                _ => (
                    integers(args.first(), rows)?,
                    integers(args.get(1), rows)?,
                    integers(args.get(2), rows)?,
                ),
            };
            start
                .iter()
                .zip(&stop)
                .zip(&step)
                .map(|((a, b), s)| {
                    let span = (*b as i128 - *a as i128).unsigned_abs();
                    let step = (*s as i128).unsigned_abs().max(1);
                    ((span / step + 1).min(u64::MAX as u128) as u64).saturating_mul(8)
                })
                .collect()
        }
    };
    let largest = per_row.iter().copied().max().unwrap_or(0);
    let total = per_row.iter().fold(0u64, |a, b| a.saturating_add(*b));
    Ok((largest, total))
}

fn non_negative(n: i64) -> u64 {
    n.max(0) as u64
}

/// The argument as an array, and how many rows each of its values stands
/// for: a scalar is one value for every row (never expanded: a 60 MB
/// literal repeated over a batch would be the allocation this guards).
fn column(arg: Option<&ColumnarValue>, rows: usize) -> Result<Option<(ArrayRef, usize)>> {
    arg.map(|a| match a {
        ColumnarValue::Scalar(s) => Ok((s.to_array_of_size(1)?, rows)),
        ColumnarValue::Array(a) => Ok((a.clone(), 1)),
    })
    .transpose()
}

/// `values` (one per array row) for `rows` rows.
fn broadcast<T: Copy>(values: Vec<T>, each: usize) -> Vec<T> {
    if each == 1 {
        values
    } else {
        values
            .into_iter()
            .flat_map(|v| std::iter::repeat_n(v, each))
            .collect()
    }
}

/// The argument as 64-bit integers (NULL as 0); a missing argument is 0.
fn integers(arg: Option<&ColumnarValue>, rows: usize) -> Result<Vec<i64>> {
    let Some((array, each)) = column(arg, rows)? else {
        return Ok(vec![0; rows]);
    };
    if !array.data_type().is_integer() {
        return Ok(vec![0; rows]);
    }
    let array = cast(&array, &DataType::Int64)?;
    let array = array.as_primitive::<Int64Type>();
    let values = (0..array.len())
        .map(|i| if array.is_null(i) { 0 } else { array.value(i) })
        .collect();
    Ok(broadcast(values, each))
}

/// The argument's byte lengths as text (NULL as 0).
fn text_lengths(arg: Option<&ColumnarValue>, rows: usize) -> Result<Vec<u64>> {
    let Some((array, each)) = column(arg, rows)? else {
        return Ok(vec![0; rows]);
    };
    let array = match array.data_type() {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => array,
        _ => cast(&array, &DataType::Utf8)?,
    };
    let lengths = cast(&length(&array)?, &DataType::Int64)?;
    let lengths = lengths.as_primitive::<Int64Type>();
    let values = (0..lengths.len())
        .map(|i| {
            if lengths.is_null(i) {
                0
            } else {
                lengths.value(i) as u64
            }
        })
        .collect();
    Ok(broadcast(values, each))
}

/// Refuses a cross or nested-loop join whose build side (the input it
/// holds in memory, its first) is estimated past [`MAX_BUILD_ROWS`] rows
/// (run after DataFusion's physical rules, on the plan as it will execute;
/// the session's rules after it only change how a join or window runs, not
/// what it holds: `prefix_join` keeps the nested loop's build side).
/// The build side's batches are charged to the memory pool by their bytes,
/// and a batch without columns (`count(*)` over a cross join) weighs
/// nothing, so a join of joins could hold billions of them unaccounted.
/// The probe side streams and only costs time, which `--query-timeout`
/// bounds.
#[derive(Debug, Default)]
pub struct JoinSizeLimit;

impl PhysicalOptimizerRule for JoinSizeLimit {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let statistics = StatisticsContext::new();
        plan.apply(|node| {
            let node_plan: &dyn ExecutionPlan = node.as_ref();
            if node_plan.is::<CrossJoinExec>() || node_plan.is::<NestedLoopJoinExec>() {
                let rows = |child: &Arc<dyn ExecutionPlan>| -> Result<Option<f64>> {
                    let estimate = statistics.compute(child.as_ref(), &StatisticsArgs::new())?;
                    Ok(estimate.num_rows.get_value().map(|&n| n as f64))
                };
                let children = node.children();
                let (build, probe) = (rows(children[0])?, rows(children[1])?);
                let refused = |what: String| {
                    Err(DataFusionError::ResourcesExhausted(format!(
                        "a join without an equality condition (a cross join, or a join on \
                         inequalities) would {what}: add a join condition or filter the inputs \
                         first"
                    )))
                };
                if let Some(build) = build.filter(|&n| n > MAX_BUILD_ROWS) {
                    return refused(format!(
                        "hold about {build:.1e} rows of its first input in memory; Aduana \
                         refuses more than {MAX_BUILD_ROWS:.0e}"
                    ));
                }
                // An overflowing estimate is absent: no estimate is no proof.
                let pairs = match (build, probe) {
                    (Some(b), Some(p)) => b * p,
                    _ => 0.0,
                };
                if pairs > MAX_JOIN_PAIRS {
                    return refused(format!(
                        "compare about {pairs:.1e} pairs of rows, more than could finish \
                         (Aduana refuses more than {MAX_JOIN_PAIRS:.0e})"
                    ));
                }
            }
            Ok(TreeNodeRecursion::Continue)
        })?;
        Ok(plan)
    }

    fn name(&self) -> &str {
        "aduana_join_size_limit"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn error_of(ctx: &SessionContext, sql: &str) -> String {
        match ctx.sql(sql).await {
            Err(e) => e.to_string(),
            Ok(frame) => frame
                .collect()
                .await
                .expect_err(&format!("{sql} must be refused"))
                .to_string(),
        }
    }

    #[tokio::test]
    async fn huge_values_are_refused_before_they_are_built() {
        let ctx = SessionContext::new();
        register(&ctx).unwrap();
        for sql in [
            "SELECT length(repeat('x', 2000000000))",
            "SELECT cardinality(range(1, 1500000000))",
            "SELECT cardinality(generate_series(1, 1500000000))",
            "SELECT length(lpad('a', 1000000000))",
            "SELECT cardinality(array_repeat(1, 1000000000))",
            "SELECT cardinality(array_repeat(repeat('y', 6000000), 1000))",
            "SELECT length(repeat(s, 1000)) FROM (VALUES (repeat('y', 1000000))) t(s)",
        ] {
            let err = error_of(&ctx, sql).await;
            assert!(
                err.contains("Resources exhausted") && err.contains("per value"),
                "{sql}: {err}"
            );
        }
        // Ordinary calls answer as before.
        let batches = ctx
            .sql("SELECT repeat('ab', 3) AS r, cardinality(range(1, 10, 2)) AS n, lpad('7', 3, '0') AS p")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let text = arrow::util::pretty::pretty_format_batches(&batches)
            .unwrap()
            .to_string();
        assert!(
            text.contains("ababab") && text.contains("| 5 ") && text.contains("007"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn joins_without_conditions_are_bounded_by_their_estimates() {
        let state = datafusion::execution::session_state::SessionStateBuilder::new()
            .with_default_features()
            .with_physical_optimizer_rule(Arc::new(JoinSizeLimit))
            .build();
        let ctx = SessionContext::new_with_state(state);
        ctx.sql("CREATE TABLE t AS SELECT * FROM (VALUES (1),(2),(3),(4),(5),(6),(7),(8),(9),(10)) v(x)")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        // Twenty tables: 10^20 rows overflow the row count, so no statistic
        // answers count(*) and the joins would have to run.
        let tables: Vec<String> = (0..20).map(|i| format!("t r{i}")).collect();
        let err = error_of(&ctx, &format!("SELECT count(*) FROM {}", tables.join(", "))).await;
        assert!(
            err.contains("rows of its first input") || err.contains("pairs of rows"),
            "{err}"
        );
        let err = error_of(
            &ctx,
            &format!("SELECT sum(r0.x) FROM {}", tables[..13].join(", ")),
        )
        .await;
        assert!(
            err.contains("rows of its first input") || err.contains("pairs of rows"),
            "{err}"
        );
        let small = ctx
            .sql("SELECT count(*) AS n FROM t a, t b, t c")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let n = small[0].column(0).as_primitive::<Int64Type>().value(0);
        assert_eq!(n, 1000);
    }
}
