//! The named reports for BI tools, as SQL they can send: every report is a
//! table function taking its parameters in declared order
//! (`SELECT * FROM trader_profile('IMP00042')`, trailing ones with defaults
//! may be left out), and reports whose parameters all have defaults are
//! also views in the `reports` schema, so they show in a tool's table list.

use std::sync::Arc;

use aduana_engine::{CATALOG, Session};
use aduana_reports::Report;
use datafusion::catalog::{
    MemorySchemaProvider, SchemaProvider, TableFunctionArgs, TableFunctionImpl, TableProvider,
};
use datafusion::common::{ScalarValue, plan_err};
use datafusion::datasource::ViewTable;
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, LogicalPlan};

pub const REPORTS_SCHEMA: &str = "reports";

/// A report planned once, with its parameters still open.
#[derive(Debug)]
struct ReportFunction {
    report: Report,
    plan: LogicalPlan,
}

impl ReportFunction {
    fn bind(&self, given: &[(String, String)]) -> Result<Arc<dyn TableProvider>> {
        let values = match self.report.bind(given) {
            Ok(values) => values,
            Err(message) => return plan_err!("{message}"),
        };
        let plan = self.plan.clone().with_param_values(values)?;
        Ok(Arc::new(ViewTable::new(
            plan,
            Some(self.report.sql.to_string()),
        )))
    }
}

impl TableFunctionImpl for ReportFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let exprs = args.exprs();
        if exprs.len() > self.report.params.len() {
            return plan_err!(
                "report {} takes at most {} argument(s) ({}), {} given",
                self.report.name,
                self.report.params.len(),
                self.report
                    .params
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                exprs.len()
            );
        }
        let mut given = Vec::with_capacity(exprs.len());
        for (expr, param) in exprs.iter().zip(&self.report.params) {
            let text = match expr {
                Expr::Literal(ScalarValue::Utf8(Some(s)) | ScalarValue::Utf8View(Some(s)), _) => {
                    s.clone()
                }
                Expr::Literal(value, _) if !value.is_null() => value.to_string(),
                Expr::Literal(..) => continue,
                other => {
                    return plan_err!(
                        "report {} parameter {}: give a literal value, not {other}",
                        self.report.name,
                        param.name
                    );
                }
            };
            given.push((param.name.clone(), text));
        }
        self.bind(&given)
    }
}

/// Registers every report the session can run (reports that score need a
/// model). Returns the names of the views made.
pub async fn register(session: &Session) -> Result<Vec<String>> {
    let ctx = session.context();
    let catalog = ctx
        .catalog(CATALOG)
        .expect("the session creates its catalog");
    let schema = Arc::new(MemorySchemaProvider::new());
    catalog.register_schema(REPORTS_SCHEMA, schema.clone())?;
    let mut views = Vec::new();
    for report in aduana_reports::all() {
        if report.needs_model && !session.has_model() {
            continue;
        }
        let plan = ctx.state().create_logical_plan(report.sql).await?;
        let function = Arc::new(ReportFunction { report, plan });
        if function.report.params.iter().all(|p| p.default.is_some()) {
            let view = function.bind(&[])?;
            schema.register_table(function.report.name.to_string(), view)?;
            views.push(function.report.name.to_string());
        }
        ctx.register_udtf(function.report.name, function);
    }
    Ok(views)
}
