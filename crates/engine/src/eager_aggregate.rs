//! Eager aggregation (Yan and Larson, "Eager Aggregation and Lazy
//! Aggregation", VLDB 1995): a GROUP BY over a join whose measures all come
//! from one side, and which groups by that side's join keys, is computed on
//! that side first. Only one row per key crosses the join instead of every
//! item, and the grouping above the join adds up the partials.
//!
//! An analyst's report joins ten million items to a reference table to name
//! what it groups (`GROUP BY chapter, description` with the nomenclature,
//! `GROUP BY importer_id, name` with the traders): the join then probes with
//! every item and the grouping hashes the names. DataFusion 55 has no such
//! rewrite (apache/datafusion#22281 proposed one as a physical rule and was
//! closed); this is a logical rule so Ballista's scheduler applies it too.
//!
//! The rewrite is exact, not a heuristic: it applies only when
//! - every measure is SUM of integers or decimals, COUNT, MIN or MAX (no
//!   DISTINCT, FILTER or ORDER BY): their partials combine exactly (COUNT by
//!   summing counts). SUM of floats is left alone because float addition is
//!   not associative and the rewrite would change the last digits;
//! - the measures read only the pushed side, which the join preserves (inner
//!   join, or the outer side of a left or right join);
//! - each of the pushed side's join keys is one of its GROUP BY expressions
//!   or computed from its GROUP BY columns, and its columns in the join
//!   filter are GROUP BY columns. Rows of one
//!   partial group are then alike to the join: it keeps, drops or repeats
//!   the whole group together, so summing the partials per final group gives
//!   what the rows would. And the pushed-down grouping has no more groups
//!   than the query's own, so it never costs more than it saves.
//!
//! A dimension joined below an outer join it takes no part in is first moved
//! above it (`(items ⋈ traders) ⟕ outcomes` to `(items ⟕ outcomes) ⋈
//! traders`, the same rows when the outer join's condition does not read the
//! traders), so the common three-table report qualifies.

use std::sync::Arc;

use datafusion::common::tree_node::Transformed;
use datafusion::common::{Column, DFSchema, Result};
use datafusion::functions_aggregate::count::Count;
use datafusion::functions_aggregate::expr_fn::{max, min, sum};
use datafusion::functions_aggregate::min_max::{Max, Min};
use datafusion::functions_aggregate::sum::Sum;
use datafusion::logical_expr::expr::AggregateFunction;
use datafusion::logical_expr::{
    Aggregate, Expr, ExprSchemable, Join, JoinConstraint, JoinType, LogicalPlan, Projection, cast,
};
use datafusion::optimizer::{ApplyOrder, OptimizerConfig, OptimizerRule};

/// The session's logical rule; see the module's comment.
#[derive(Debug, Default)]
pub struct EagerAggregation;

impl OptimizerRule for EagerAggregation {
    fn name(&self) -> &str {
        "aduana_eager_aggregation"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::TopDown)
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        let LogicalPlan::Aggregate(aggregate) = &plan else {
            return Ok(Transformed::no(plan));
        };
        Ok(match aggregated_first(aggregate)? {
            Some(new) => Transformed::yes(new),
            None => Transformed::no(plan),
        })
    }
}

/// How a measure's partials combine.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Combine {
    Sum,
    /// A count's partials are added up.
    Count,
    Min,
    Max,
}

/// One aggregate of the query: its call (without alias) and how its
/// partials combine.
struct Measure {
    call: Expr,
    combine: Combine,
}

impl Measure {
    fn of(expr: &Expr) -> Option<Measure> {
        let call = match expr {
            Expr::Alias(alias) => alias.expr.as_ref(),
            other => other,
        };
        let Expr::AggregateFunction(AggregateFunction { func, params }) = call else {
            return None;
        };
        if params.distinct
            || params.filter.is_some()
            || !params.order_by.is_empty()
            || params.null_treatment.is_some()
        {
            return None;
        }
        // The built-in implementations by type, not by name: a function
        // registered under the same name may mean something else.
        let implementation = func.inner();
        let combine = if implementation.is::<Sum>() {
            Combine::Sum
        } else if implementation.is::<Count>() {
            Combine::Count
        } else if implementation.is::<Min>() {
            Combine::Min
        } else if implementation.is::<Max>() {
            Combine::Max
        } else {
            return None;
        };
        Some(Measure {
            call: call.clone(),
            combine,
        })
    }

    /// Whether its partials combine exactly over `input`'s rows.
    fn is_exact(&self, input: &DFSchema) -> bool {
        if self.combine != Combine::Sum {
            return true;
        }
        let Expr::AggregateFunction(AggregateFunction { params, .. }) = &self.call else {
            return false;
        };
        match params.args.as_slice() {
            [argument] => argument
                .get_type(input)
                .is_ok_and(|t| t.is_integer() || t.is_decimal()),
            _ => false,
        }
    }

    /// The measure over its partials, in column `partial`.
    fn over_partials(&self, partial: Expr) -> Expr {
        match self.combine {
            Combine::Sum | Combine::Count => sum(partial),
            Combine::Min => min(partial),
            Combine::Max => max(partial),
        }
    }
}

/// `aggregate` computed on one side of its join first, or `None` when the
/// rewrite does not apply.
fn aggregated_first(aggregate: &Aggregate) -> Result<Option<LogicalPlan>> {
    if aggregate.group_expr.is_empty()
        || aggregate
            .group_expr
            .iter()
            .any(|g| matches!(g, Expr::GroupingSet(_)))
    {
        return Ok(None);
    }
    let Some(measures) = aggregate
        .aggr_expr
        .iter()
        .map(Measure::of)
        .collect::<Option<Vec<_>>>()
    else {
        return Ok(None);
    };
    let LogicalPlan::Join(join) = below_column_projections(&aggregate.input) else {
        return Ok(None);
    };
    if let Some(plan) = pushed_below(aggregate, &measures, join)? {
        return Ok(Some(plan));
    }
    match dimension_last(join, &measures)? {
        Some(reordered) => pushed_below(aggregate, &measures, &reordered),
        None => Ok(None),
    }
}

/// The plan under projections that only pick columns (what the optimizer
/// leaves between an aggregate and its join).
fn below_column_projections(plan: &LogicalPlan) -> &LogicalPlan {
    match plan {
        LogicalPlan::Projection(p) if p.expr.iter().all(|e| matches!(e, Expr::Column(_))) => {
            below_column_projections(&p.input)
        }
        other => other,
    }
}

/// Whether `plan` is an aggregate under column projections and aliases.
fn is_aggregated(plan: &LogicalPlan) -> bool {
    match below_column_projections(plan) {
        LogicalPlan::Aggregate(_) => true,
        LogicalPlan::SubqueryAlias(alias) => is_aggregated(&alias.input),
        _ => false,
    }
}

/// The aggregate with its grouping pushed below `join` on the side that
/// qualifies, if one does.
fn pushed_below(
    aggregate: &Aggregate,
    measures: &[Measure],
    join: &Join,
) -> Result<Option<LogicalPlan>> {
    if join.null_aware {
        return Ok(None);
    }
    for pushed_left in [true, false] {
        let preserved = match join.join_type {
            JoinType::Inner => true,
            JoinType::Left => pushed_left,
            JoinType::Right => !pushed_left,
            _ => false,
        };
        if !preserved {
            continue;
        }
        if let Some(plan) = pushed_to(aggregate, measures, join, pushed_left)? {
            return Ok(Some(plan));
        }
    }
    Ok(None)
}

fn pushed_to(
    aggregate: &Aggregate,
    measures: &[Measure],
    join: &Join,
    pushed_left: bool,
) -> Result<Option<LogicalPlan>> {
    let (pushed, other) = if pushed_left {
        (&join.left, &join.right)
    } else {
        (&join.right, &join.left)
    };
    let pushed_schema = pushed.schema();
    let reads_pushed_only = |e: &Expr| e.column_refs().iter().all(|c| pushed_schema.has_column(c));
    // An aggregate already below: nothing more to gain, and the rule must
    // not apply to its own output again.
    if is_aggregated(pushed)
        || !measures
            .iter()
            .all(|m| reads_pushed_only(&m.call) && m.is_exact(pushed_schema))
    {
        return Ok(None);
    }
    // Each grouping expression reads one side only: the pushed side's go
    // below the join, the other side's (and constants) stay above.
    let mut below: Vec<Expr> = Vec::new();
    let mut position = Vec::with_capacity(aggregate.group_expr.len());
    for g in &aggregate.group_expr {
        let columns = g.column_refs();
        if !columns.is_empty() && columns.iter().all(|c| pushed_schema.has_column(c)) {
            position.push(Some(below.len()));
            below.push(g.clone());
        } else if columns.iter().all(|c| other.schema().has_column(c)) {
            position.push(None);
        } else {
            return Ok(None);
        }
    }
    // A key is grouped by, or computed from grouped columns only (the
    // cast the planner puts on a key of another integer type): either way
    // one value per partial group.
    let grouped_column = |c: &Column| below.iter().any(|g| matches!(g, Expr::Column(k) if k == c));
    let mut key_groups = Vec::with_capacity(join.on.len());
    for (l, r) in &join.on {
        let key = if pushed_left { l } else { r };
        if let Some(i) = below.iter().position(|g| g == key) {
            key_groups.push(Some(i));
        } else if !key.is_volatile() && key.column_refs().iter().all(|c| grouped_column(c)) {
            key_groups.push(None);
        } else {
            return Ok(None);
        }
    }
    if let Some(filter) = &join.filter {
        if !filter
            .column_refs()
            .iter()
            .all(|c| !pushed_schema.has_column(c) || grouped_column(c))
        {
            return Ok(None);
        }
    }

    let partials = measures
        .iter()
        .enumerate()
        .map(|(i, m)| m.call.clone().alias(format!("__eager_partial_{i}")))
        .collect();
    let first = Aggregate::try_new(Arc::clone(pushed), below.clone(), partials)?;
    let output =
        |schema: &DFSchema, i: usize| Expr::Column(Column::from(schema.qualified_field(i)));
    let first_schema = Arc::clone(&first.schema);
    let first = Arc::new(LogicalPlan::Aggregate(first));
    let on = join
        .on
        .iter()
        .zip(&key_groups)
        .map(|((l, r), g)| {
            // A grouped column keeps its name in the grouping's output, so
            // a key computed from such columns reads the same below it.
            let grouped = |key: &Expr| g.map_or_else(|| key.clone(), |g| output(&first_schema, g));
            if pushed_left {
                (grouped(l), r.clone())
            } else {
                (l.clone(), grouped(r))
            }
        })
        .collect();
    let (left, right) = if pushed_left {
        (first, Arc::clone(other))
    } else {
        (Arc::clone(other), first)
    };
    let joined = Join::try_new(
        left,
        right,
        on,
        join.filter.clone(),
        join.join_type,
        JoinConstraint::On,
        join.null_equality,
        false,
    )?;

    let group_expr = aggregate
        .group_expr
        .iter()
        .zip(&position)
        .map(|(g, p)| match p {
            // Renamed so the rewrite adds no functional dependency the
            // query did not have: DataFusion 55 would take the first
            // grouping's uniqueness (key -> its partials) for the key
            // determining every column of this grouping, the other side's
            // too, which a join repeating a key (a trader under two names)
            // breaks. `sort_keys` keeps ORDER BY from acting on such a
            // claim; other readers of the dependencies (GROUP BY pruning
            // above) would still.
            Some(i) => output(&first_schema, *i).alias(format!("__eager_group_{i}")),
            None => g.clone(),
        })
        .collect();
    let totals = measures
        .iter()
        .enumerate()
        .map(|(i, m)| {
            m.over_partials(output(&first_schema, below.len() + i))
                .alias(format!("__eager_total_{i}"))
        })
        .collect();
    let last = Aggregate::try_new(Arc::new(LogicalPlan::Join(joined)), group_expr, totals)?;
    // The query's own columns: names, qualifiers and types as before (a
    // sum of partial sums is typed wider than the sum it replaces).
    let exprs = aggregate
        .schema
        .iter()
        .enumerate()
        .map(|(i, (qualifier, field))| {
            let (new_qualifier, new_field) = last.schema.qualified_field(i);
            let mut column = Expr::Column(Column::from((new_qualifier, new_field)));
            if new_field.data_type() != field.data_type() {
                column = cast(column, field.data_type().clone());
            }
            if new_qualifier == qualifier && new_field.name() == field.name() {
                column
            } else {
                column.alias_qualified(qualifier.cloned(), field.name())
            }
        })
        .collect();
    let projection = Projection::try_new(exprs, Arc::new(LogicalPlan::Aggregate(last)))?;
    Ok(Some(LogicalPlan::Projection(projection)))
}

/// `(fact ⋈ dimension) ⟕ other` as `(fact ⟕ other) ⋈ dimension` (also for
/// an inner top join), when neither the top join's condition nor the
/// measures read the dimension: the same rows, with the dimension's join
/// last where the grouping can be pushed below it.
fn dimension_last(top: &Join, measures: &[Measure]) -> Result<Option<Join>> {
    if !matches!(top.join_type, JoinType::Inner | JoinType::Left) || top.null_aware {
        return Ok(None);
    }
    let LogicalPlan::Join(inner) = below_column_projections(&top.left) else {
        return Ok(None);
    };
    if inner.join_type != JoinType::Inner || inner.null_aware {
        return Ok(None);
    }
    let read_above: Vec<Column> = top
        .on
        .iter()
        .flat_map(|(l, r)| [l, r])
        .chain(top.filter.iter())
        .chain(measures.iter().map(|m| &m.call))
        .flat_map(|e| e.column_refs())
        .cloned()
        .collect();
    for dimension_right in [true, false] {
        let (fact, dimension) = if dimension_right {
            (&inner.left, &inner.right)
        } else {
            (&inner.right, &inner.left)
        };
        if read_above.iter().any(|c| dimension.schema().has_column(c)) {
            continue;
        }
        let lower = Join::try_new(
            Arc::clone(fact),
            Arc::clone(&top.right),
            top.on.clone(),
            top.filter.clone(),
            top.join_type,
            top.join_constraint,
            top.null_equality,
            false,
        )?;
        let on = inner
            .on
            .iter()
            .map(|(l, r)| {
                if dimension_right {
                    (l.clone(), r.clone())
                } else {
                    (r.clone(), l.clone())
                }
            })
            .collect();
        return Ok(Some(Join::try_new(
            Arc::new(LogicalPlan::Join(lower)),
            Arc::clone(dimension),
            on,
            inner.filter.clone(),
            JoinType::Inner,
            JoinConstraint::On,
            inner.null_equality,
            false,
        )?));
    }
    Ok(None)
}

#[cfg(test)]
mod tests;
