//! What one statement may cost before it runs: its size, how deeply it
//! nests, and the stack it is parsed and planned on.
//!
//! SQL parsers, planners, `Display` and `Drop` of syntax trees and plans
//! all recurse once per level of nesting, so `1+1+…+1` with a few thousand
//! terms overflows a 2 MiB Tokio worker stack and aborts the process (a
//! stack overflow cannot be caught). Every statement is therefore parsed,
//! measured and (when too deep) dropped on a thread with a stack far larger
//! than the deepest tree the size limit allows, and planned there too.
//! What leaves that thread nests at most [`MAX_NESTING`] levels, which the
//! ordinary threads that display, optimise and execute plans can afford.

use std::future::Future;
use std::ops::ControlFlow;
use std::panic::AssertUnwindSafe;

use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::error::DataFusionError;
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::sql::parser::{CopyToSource, DFParser, Statement};
use datafusion::sql::sqlparser::ast::{self, SetExpr, Visit, Visitor};
use datafusion::sql::sqlparser::dialect::GenericDialect;

use crate::{EngineError, Result};

/// The longest SQL text accepted, in bytes (a generated `IN` list of tens
/// of thousands of values fits).
pub const MAX_SQL_BYTES: usize = 1 << 20;

/// The deepest nesting accepted: expressions within expressions
/// (`a OR b OR …` is one level per operator), subqueries, set operations
/// (`UNION`), and plan nodes above each other (chained CTEs; a view's plan
/// is inlined only by the optimiser, after this check).
pub const MAX_NESTING: usize = 500;

/// The stack of the threads that execute plans (a runtime's workers),
/// sized for plans [`MAX_NESTING`] deep: optimiser passes, `execute()` and
/// expression evaluation recurse once per level.
pub const EXECUTION_STACK: usize = 16 << 20;

/// The stack of the threads that parse and plan. One byte of SQL nests
/// at most one level, and a level costs well under a kilobyte of stack
/// in the parser, visitor and `Drop`, so [`MAX_SQL_BYTES`] of the deepest
/// possible SQL fits. Only the pages a statement touches are ever mapped
/// in, so a large reservation costs nothing for ordinary SQL.
const PLANNING_STACK: usize = 1 << 30;

/// Planning threads running at once (see [`on_planning_stack`]).
const PLANNING_THREADS: usize = 32;

/// Runs `work` to completion on a thread with a [`PLANNING_STACK`] stack,
/// driven by the caller's Tokio runtime (its I/O and timers), and awaits
/// it without blocking the caller's thread. A panic in `work` becomes an
/// error instead of taking the process down.
pub async fn on_planning_stack<T: Send + 'static>(
    work: impl Future<Output = Result<T>> + Send + 'static,
) -> Result<T> {
    // Planning threads at once: each reserves a large stack, and a flood of
    // requests must wait for a place rather than start threads without end.
    static PLANNERS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(PLANNING_THREADS);
    let _place = PLANNERS
        .acquire()
        .await
        .map_err(|e| EngineError::InvalidOption(format!("planning closed: {e}")))?;
    let handle = tokio::runtime::Handle::current();
    let (sender, receiver) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("aduana-plan".into())
        .stack_size(PLANNING_STACK)
        .spawn(move || {
            let result = std::panic::catch_unwind(AssertUnwindSafe(|| handle.block_on(work)));
            let _ = sender.send(result.unwrap_or_else(|panic| Err(planning_panicked(panic))));
        })
        .map_err(|e| EngineError::InvalidOption(format!("cannot start a planning thread: {e}")))?;
    receiver.await.unwrap_or_else(|_| {
        Err(EngineError::InvalidOption(
            "the planning thread ended without an answer".into(),
        ))
    })
}

/// The synchronous twin of [`on_planning_stack`], for parsing.
fn on_planning_stack_sync<T: Send>(work: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    std::thread::scope(|scope| {
        let thread = std::thread::Builder::new()
            .name("aduana-parse".into())
            .stack_size(PLANNING_STACK)
            .spawn_scoped(scope, || {
                std::panic::catch_unwind(AssertUnwindSafe(work))
                    .unwrap_or_else(|panic| Err(planning_panicked(panic)))
            })
            .map_err(|e| {
                EngineError::InvalidOption(format!("cannot start a parsing thread: {e}"))
            })?;
        thread
            .join()
            .unwrap_or_else(|panic| Err(planning_panicked(panic)))
    })
}

fn planning_panicked(panic: Box<dyn std::any::Any + Send>) -> EngineError {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown cause".into());
    EngineError::InvalidOption(format!("the statement could not be planned: {message}"))
}

/// Splits `sql` into statements and refuses any that is too long or nests
/// too deeply, with an error that names the limit. Statements returned
/// nest at most [`MAX_NESTING`] levels.
pub fn parse(sql: &str) -> Result<Vec<Statement>> {
    if sql.len() > MAX_SQL_BYTES {
        return Err(EngineError::TooComplex(format!(
            "the SQL text is {} bytes; at most {MAX_SQL_BYTES} are accepted",
            sql.len()
        )));
    }
    check_call_nesting(sql)?;
    on_planning_stack_sync(|| {
        let statements: Vec<Statement> = DFParser::parse_sql_with_dialect(sql, &GenericDialect {})
            .map_err(|e| match e.find_root() {
                DataFusionError::SQL(parse, _) => {
                    EngineError::Syntax(crate::mistakes::syntax_message(parse))
                }
                _ => e.into(),
            })?
            .into();
        for (i, statement) in statements.iter().enumerate() {
            if let Some(mistake) = crate::mistakes::find(statement) {
                return Err(EngineError::InvalidOption(mistake));
            }
            let depth = statement_nesting(statement);
            if depth > MAX_NESTING {
                return Err(EngineError::TooComplex(format!(
                    "statement {} nests {depth} levels deep (expressions, subqueries or \
                     UNIONs within each other); at most {MAX_NESTING} are accepted: use IN (...) \
                     for long lists of alternatives, or split the statement",
                    i + 1
                )));
            }
        }
        Ok(statements)
        // Refused statements are dropped here, on the large stack.
    })
}

/// The deepest nesting of function calls (`f(`, `CAST(`) accepted.
///
/// sqlparser tries some of a call's argument forms and backtracks when one
/// fails, so its parsing time grows by a constant factor per level of
/// nested calls: `CAST(CAST(…` 20 deep took 2.4 s in a debug build and 25
/// would take minutes, on a thread that cannot be stopped. No query an
/// analyst or a BI tool writes nests calls this deep; plain parentheses
/// (`((a = 1) OR (a = 2))`, as BI tools write them) are not counted.
pub const MAX_CALL_NESTING: usize = 16;

/// Refuses SQL whose function calls nest past [`MAX_CALL_NESTING`],
/// counted on the tokens (linear time) before the parser sees them.
fn check_call_nesting(sql: &str) -> Result<()> {
    use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
    // Unterminated strings and the like are the parser's to report.
    let Ok(tokens) = Tokenizer::new(&GenericDialect {}, sql).tokenize() else {
        return Ok(());
    };
    let mut open: Vec<bool> = Vec::new();
    let (mut calls, mut deepest) = (0usize, 0usize);
    let mut previous_is_word = false;
    for token in &tokens {
        match token {
            Token::Whitespace(_) => continue,
            Token::LParen => {
                open.push(previous_is_word);
                calls += usize::from(previous_is_word);
                deepest = deepest.max(calls);
            }
            Token::RParen => {
                if open.pop() == Some(true) {
                    calls -= 1;
                }
            }
            _ => {}
        }
        previous_is_word = matches!(token, Token::Word(_));
    }
    if deepest > MAX_CALL_NESTING {
        return Err(EngineError::TooComplex(format!(
            "function calls nest {deepest} deep; at most {MAX_CALL_NESTING} are accepted (the SQL \
             parser's time grows steeply with this nesting): split the expression"
        )));
    }
    Ok(())
}

/// How deeply `statement` nests: expressions, queries and set operations
/// within each other.
fn statement_nesting(statement: &Statement) -> usize {
    let mut depth = Nesting::default();
    visit_statement(statement, &mut depth);
    depth.max
}

fn visit_statement(statement: &Statement, depth: &mut Nesting) {
    match statement {
        Statement::Statement(inner) => {
            let _ = inner.visit(depth);
        }
        Statement::CopyTo(copy) => {
            if let CopyToSource::Query(query) = &copy.source {
                let _ = query.visit(depth);
            }
        }
        Statement::Explain(explain) => visit_statement(&explain.statement, depth),
        // Column defaults and WITH ORDER are whole expressions.
        Statement::CreateExternalTable(table) => {
            let _ = table.columns.visit(depth);
            let _ = table.order_exprs.visit(depth);
        }
        Statement::Reset(_) => {}
    }
}

/// Nesting depth as the visitor enters and leaves expressions and queries.
#[derive(Default)]
struct Nesting {
    current: usize,
    max: usize,
}

impl Nesting {
    fn enter(&mut self, levels: usize) {
        self.current += levels;
        self.max = self.max.max(self.current);
    }
}

impl Visitor for Nesting {
    type Break = ();

    fn pre_visit_query(&mut self, query: &ast::Query) -> ControlFlow<()> {
        // Set operations are not visited as nodes of their own: count the
        // deepest chain of them in this query's body.
        self.enter(1 + set_operation_depth(&query.body));
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, query: &ast::Query) -> ControlFlow<()> {
        self.current -= 1 + set_operation_depth(&query.body);
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, _expr: &ast::Expr) -> ControlFlow<()> {
        self.enter(1);
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, _expr: &ast::Expr) -> ControlFlow<()> {
        self.current -= 1;
        ControlFlow::Continue(())
    }
}

/// The longest chain of set operations (`UNION`, `EXCEPT`, `INTERSECT`)
/// within each other in `body`, walked without recursion.
fn set_operation_depth(body: &SetExpr) -> usize {
    let mut deepest = 0;
    let mut pending = vec![(body, 0)];
    while let Some((expr, depth)) = pending.pop() {
        deepest = deepest.max(depth);
        if let SetExpr::SetOperation { left, right, .. } = expr {
            pending.push((left, depth + 1));
            pending.push((right, depth + 1));
        }
    }
    deepest
}

/// Refuses a plan deeper than [`MAX_NESTING`]: plan nodes above each other
/// (with subqueries) or expressions within each other. Stops descending as
/// soon as the limit is passed, so it never recurses further than that.
pub fn check_plan_depth(plan: &LogicalPlan) -> Result<()> {
    match plan_depth(plan, 1) {
        Some(_) => Ok(()),
        None => Err(EngineError::TooComplex(format!(
            "the plan nests more than {MAX_NESTING} operators or expressions deep (chained \
             CTEs, views or subqueries); split the statement"
        ))),
    }
}

/// The depth of `plan` below `level`, or `None` past the limit.
fn plan_depth(plan: &LogicalPlan, level: usize) -> Option<usize> {
    if level > MAX_NESTING {
        return None;
    }
    let mut deepest = level;
    for expr in plan.expressions() {
        deepest = deepest.max(expr_depth(&expr, level)?);
    }
    for input in plan.inputs() {
        deepest = deepest.max(plan_depth(input, level + 1)?);
    }
    Some(deepest)
}

fn expr_depth(expr: &Expr, level: usize) -> Option<usize> {
    if level > MAX_NESTING {
        return None;
    }
    // Subqueries are not children of their expression: descend into them
    // here, whether they are this expression or one below it.
    let mut deepest = match expr {
        Expr::ScalarSubquery(s) => plan_depth(&s.subquery, level + 1)?,
        Expr::Exists(e) => plan_depth(&e.subquery.subquery, level + 1)?,
        Expr::InSubquery(i) => plan_depth(&i.subquery.subquery, level + 1)?,
        _ => level,
    };
    let mut within = true;
    let _ = expr.apply_children(|child| {
        match expr_depth(child, level + 1) {
            Some(d) => deepest = deepest.max(d),
            None => within = false,
        }
        Ok(if within {
            TreeNodeRecursion::Continue
        } else {
            TreeNodeRecursion::Stop
        })
    });
    within.then_some(deepest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(op: &str, terms: usize) -> String {
        format!("SELECT {}", vec!["1"; terms].join(op))
    }

    #[test]
    fn nesting_is_measured_and_limited() {
        assert!(parse(&chain("+", MAX_NESTING - 2)).is_ok());
        for sql in [
            chain("+", 2_000),
            chain(" OR ", 3_000),
            chain(" || ", 3_000),
            vec!["SELECT 1"; 5_000].join(" UNION ALL "),
            format!("SELECT {}1{}", "(".repeat(600), ")".repeat(600)),
        ] {
            let err = parse(&sql).unwrap_err().to_string();
            assert!(
                err.contains("deep") || err.to_lowercase().contains("recursion"),
                "{}: {err}",
                &sql[..40]
            );
        }
    }

    #[test]
    fn nested_calls_are_refused_before_the_parser_backtracks_through_them() {
        let calls = |depth: usize| {
            format!(
                "SELECT 1 FROM f{}1{}",
                "CAST(".repeat(depth),
                ")".repeat(depth)
            )
        };
        // Found by tests/e2e/fuzz.rs: this hung the parser for minutes.
        let started = std::time::Instant::now();
        let err = parse(&calls(40)).unwrap_err().to_string();
        assert!(err.contains("function calls nest 40 deep"), "{err}");
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        // Plain parentheses, as BI tools write OR chains, are not calls.
        let chain = (0..40).fold("lane = 'a'".to_string(), |e, i| {
            format!("({e} OR lane = '{i}')")
        });
        parse(&format!("SELECT 1 FROM t WHERE {chain}")).unwrap();
        parse("SELECT coalesce(sum(CASE WHEN hs6(hs_code) = '1' THEN abs(round(x, 2)) END), 0) FROM t")
            .unwrap();
    }

    #[test]
    fn the_longest_accepted_text_of_the_deepest_shape_does_not_overflow() {
        // Half a million nested additions: parsed, measured and dropped on
        // the planning stack.
        let sql = chain("+", MAX_SQL_BYTES / 2 - 8);
        assert!(sql.len() <= MAX_SQL_BYTES);
        let err = parse(&sql).unwrap_err().to_string();
        assert!(err.contains("levels deep"), "{err}");
        let err = parse(&chain("+", MAX_SQL_BYTES)).unwrap_err().to_string();
        assert!(err.contains("bytes"), "{err}");
    }
}
