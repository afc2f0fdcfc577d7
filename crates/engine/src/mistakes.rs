//! SQL that parses and runs but cannot mean what it says, refused with the
//! fix: `WHERE declaration_date > 2026-01-01` is the integer 2024 (2026
//! minus 1 minus 1), compared with a date as days since 1970, and would
//! silently select nearly everything.

use std::ops::ControlFlow;

use datafusion::error::DataFusionError;
use datafusion::sql::parser::{CopyToSource, Statement};
use datafusion::sql::sqlparser::ast::{self, BinaryOperator, Value, Visit, Visitor};
use datafusion::sql::sqlparser::parser::ParserError;

/// The first mistake in `statement`, as a message naming the fix.
pub fn find(statement: &Statement) -> Option<String> {
    let mut finder = DateArithmetic;
    let found = match statement {
        Statement::Statement(inner) => inner.visit(&mut finder),
        Statement::CopyTo(copy) => match &copy.source {
            CopyToSource::Query(query) => query.visit(&mut finder),
            CopyToSource::Relation(_) => ControlFlow::Continue(()),
        },
        Statement::Explain(explain) => return find(&explain.statement),
        _ => ControlFlow::Continue(()),
    };
    match found {
        ControlFlow::Break(message) => Some(message),
        ControlFlow::Continue(()) => None,
    }
}

/// A syntax error as a person reads it (the parser's own type names left
/// out).
pub fn syntax_message(error: &ParserError) -> String {
    match error {
        ParserError::ParserError(m) | ParserError::TokenizerError(m) => {
            format!("SQL syntax error: {m}")
        }
        ParserError::RecursionLimitExceeded => {
            "SQL syntax error: statement nested too deeply".into()
        }
    }
}

/// A call that matches none of a function's signatures, said as the
/// caller's mistake: DataFusion words it for functions of several
/// signatures (`Signature::one_of`) as an internal error asking for a bug
/// report, before the part that helps (the call's types and the
/// function's candidates). Any other error is returned as it is.
pub fn signature_mismatch(source: DataFusionError) -> DataFusionError {
    const HELPS: &str = "No function matches the given name and argument types";
    let text = source.to_string();
    match text.find(HELPS) {
        Some(at) if text.contains("failed to match any signature") => {
            DataFusionError::Plan(text[at..].split_whitespace().collect::<Vec<_>>().join(" "))
        }
        _ => source,
    }
}

/// Finds `YYYY-MM-DD` written without quotes: three integer literals
/// subtracted, shaped like a year, a month and a day.
struct DateArithmetic;

fn integer(expr: &ast::Expr) -> Option<&str> {
    match expr {
        ast::Expr::Value(v) => match &v.value {
            Value::Number(text, false) if text.chars().all(|c| c.is_ascii_digit()) => Some(text),
            _ => None,
        },
        _ => None,
    }
}

impl Visitor for DateArithmetic {
    type Break = String;

    fn pre_visit_expr(&mut self, expr: &ast::Expr) -> ControlFlow<String> {
        let ast::Expr::BinaryOp {
            left,
            op: BinaryOperator::Minus,
            right,
        } = expr
        else {
            return ControlFlow::Continue(());
        };
        let ast::Expr::BinaryOp {
            left: year,
            op: BinaryOperator::Minus,
            right: month,
        } = left.as_ref()
        else {
            return ControlFlow::Continue(());
        };
        let (Some(y), Some(m), Some(d)) = (integer(year), integer(month), integer(right)) else {
            return ControlFlow::Continue(());
        };
        let in_range = |text: &str, len: usize, low: u32, high: u32| {
            text.len() == len && text.parse::<u32>().is_ok_and(|v| (low..=high).contains(&v))
        };
        if in_range(y, 4, 1000, 9999) && in_range(m, 2, 1, 12) && in_range(d, 2, 1, 31) {
            let value = y.parse::<i64>().unwrap_or(0)
                - m.parse::<i64>().unwrap_or(0)
                - d.parse::<i64>().unwrap_or(0);
            return ControlFlow::Break(format!(
                "{y}-{m}-{d} without quotes is the number {value} ({y} minus {m} minus {d}), not a \
                 date: write DATE '{y}-{m}-{d}'"
            ));
        }
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::parser::DFParser;

    fn first(sql: &str) -> Option<String> {
        let statements = DFParser::parse_sql(sql).unwrap();
        find(&statements[0])
    }

    #[test]
    fn unquoted_dates_are_refused_with_the_fix() {
        let found =
            first("SELECT * FROM declarations WHERE declaration_date > 2026-01-01").unwrap();
        assert!(
            found.contains("number 2024") && found.contains("DATE '2026-01-01'"),
            "{found}"
        );
        assert!(first("COPY (SELECT 1 WHERE x < 2025-12-31) TO 'f.csv'").is_some());
        assert!(first("EXPLAIN SELECT 1 WHERE d = 2025-06-30").is_some());
    }

    #[test]
    fn arithmetic_and_quoted_dates_pass() {
        assert_eq!(first("SELECT * FROM t WHERE d > DATE '2026-01-01'"), None);
        assert_eq!(
            first("SELECT 10 - 3 - 2, 2026 - 1, year - 1 - 1 FROM t"),
            None
        );
        // Not a month and day: 2026-13-40 is arithmetic someone meant.
        assert_eq!(first("SELECT 2026-13-40"), None);
    }
}
