//! Running a named report of `queries/`: one entry point for the shell,
//! the dashboard and the demo (the Flight server plans each report once
//! and binds it per call, with the same check of the model).

use aduana_reports::Report;
use datafusion::common::ParamValues;
use datafusion::prelude::DataFrame;

use crate::{EngineError, Result, Session, WritePolicy};

impl Session {
    /// The report `name` with the parameters `given` (name, value as text)
    /// bound: refused when there is no such report, when it scores and
    /// the session has no model, or when a parameter is unknown or not of
    /// its type.
    pub fn report_statement(
        &self,
        name: &str,
        given: &[(String, String)],
    ) -> Result<(Report, ParamValues)> {
        let report = aduana_reports::get(name).ok_or_else(|| {
            EngineError::InvalidOption(format!(
                "no report named {name} (`aduana reports` lists them)"
            ))
        })?;
        if report.needs_model && !self.has_model() {
            return Err(EngineError::InvalidOption(format!(
                "report {name} scores declarations and needs a risk model: run `aduana refresh` \
                 (or `aduana model build`)"
            )));
        }
        let values = report
            .bind(given)
            .map_err(|e| EngineError::InvalidOption(format!("report {name}: {e}")))?;
        Ok((report, values))
    }

    /// The report `name` planned read-only with `given` bound, as a frame
    /// to run, refine or write out.
    pub async fn report(&self, name: &str, given: &[(String, String)]) -> Result<DataFrame> {
        let (report, values) = self.report_statement(name, given)?;
        let frame = self
            .sql(report.sql, WritePolicy::ReadOnly)
            .await
            .map_err(|e| match self.missing_table(name, &e.to_string()) {
                Some(message) => EngineError::InvalidOption(message),
                None => e,
            })?;
        Ok(frame.with_param_values(values)?)
    }

    /// When `error` (of report `report`) is a table of the contract this
    /// warehouse does not have, what to say instead: which table, and how
    /// to add it.
    pub fn missing_table(&self, report: &str, error: &str) -> Option<String> {
        let rest = &error[error.find("table '")? + "table '".len()..];
        let table = &rest[..rest.find("' not found")?];
        let name = table.rsplit('.').next()?;
        let contract = aduana_warehouse::contract::TABLES
            .iter()
            .find(|c| c.name == name && self.warehouse.table(c.name).is_none())?;
        Some(format!(
            "report {report} reads {}, which this warehouse does not have: add it at {} (the \
             columns are in the warehouse contract; `aduana check` lists what is missing and \
             what that disables)",
            contract.qualified_name(),
            contract.path
        ))
    }
}
