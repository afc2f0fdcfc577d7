//! `risk_model_info()`: the current risk model's version, training window
//! and counts, as a one-row table.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::catalog::{TableFunctionImpl, TableProvider};
use datafusion::common::{Result, plan_err};
use datafusion::datasource::MemTable;
use datafusion::logical_expr::Expr;

use crate::model_handle::{ModelHandle, NO_MODEL};

#[derive(Debug)]
pub struct RiskModelInfoFunc {
    model: ModelHandle,
}

impl RiskModelInfoFunc {
    pub fn new(model: ModelHandle) -> Self {
        RiskModelInfoFunc { model }
    }
}

impl TableFunctionImpl for RiskModelInfoFunc {
    fn call(&self, args: &[Expr]) -> Result<Arc<dyn TableProvider>> {
        if !args.is_empty() {
            return plan_err!("risk_model_info() takes no arguments");
        }
        let Some(model) = self.model.get() else {
            return plan_err!("{NO_MODEL}");
        };
        let m = &model.manifest;
        let text = |v: &str| Arc::new(StringArray::from(vec![v.to_string()])) as ArrayRef;
        let int = |v: u64| Arc::new(Int64Array::from(vec![v as i64])) as ArrayRef;
        let mut fields = vec![
            Field::new("version", DataType::Utf8, false),
            Field::new("built_at", DataType::Utf8, false),
            Field::new("window_start", DataType::Utf8, false),
            Field::new("window_end", DataType::Utf8, false),
            Field::new("training_items", DataType::Int64, false),
            Field::new("excluded_fraud_items", DataType::Int64, false),
            Field::new("min_cell_size", DataType::Int64, false),
        ];
        let mut columns = vec![
            text(&m.version),
            text(&m.built_at),
            text(&m.window_start),
            text(&m.window_end),
            int(m.training_items),
            int(m.excluded_fraud_items),
            int(m.min_cell_size),
        ];
        for (level, cells) in &m.price_cells {
            fields.push(Field::new(
                format!("price_cells_{level}"),
                DataType::Int64,
                false,
            ));
            columns.push(int(*cells));
        }
        let schema = Arc::new(Schema::new(fields));
        let batch = RecordBatch::try_new(schema.clone(), columns)?;
        Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
    }
}
