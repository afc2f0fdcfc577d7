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
        let frame = self.sql(report.sql, WritePolicy::ReadOnly).await?;
        Ok(frame.with_param_values(values)?)
    }
}
