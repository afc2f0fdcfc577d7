//! Aduana's customs SQL functions, one file per function (each a DataFusion
//! `ScalarUDFImpl` or `AggregateUDFImpl` with its `Documentation`).
//!
//! The foundation registers none yet; the risk functions (`hs6`,
//! `valuation_deviation`, ...) arrive with the risk model.

use std::sync::Arc;

use datafusion::error::Result;
use datafusion::logical_expr::{AggregateUDF, ScalarUDF};
use datafusion::prelude::SessionContext;

/// Every scalar function Aduana adds to SQL.
pub fn scalar_functions() -> Vec<Arc<ScalarUDF>> {
    vec![]
}

/// Every aggregate function Aduana adds to SQL.
pub fn aggregate_functions() -> Vec<Arc<AggregateUDF>> {
    vec![]
}

/// Registers all of Aduana's functions in `ctx`.
pub fn register_all(ctx: &SessionContext) -> Result<()> {
    for f in scalar_functions() {
        ctx.register_udf(f.as_ref().clone());
    }
    for f in aggregate_functions() {
        ctx.register_udaf(f.as_ref().clone());
    }
    Ok(())
}
