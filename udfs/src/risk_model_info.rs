//! `risk_model_info()`: the current risk model's version, training window
//! and counts, as a one-row table, and which model `risk_score` uses and
//! why (learned, blend or unsupervised).

use std::sync::Arc;

use aduana_model::learned::{FULL_WEIGHT_FRAUDS, LearnedSummary, MIN_LABELLED_FRAUDS};
use datafusion::arrow::array::{
    Array, ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray,
};
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
        if !self.model.is_present() {
            return plan_err!("{NO_MODEL}");
        }
        let model = self.model.require()?;
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
            Field::new("excluded_inspected_items", DataType::Int64, false),
            Field::new("min_cell_size", DataType::Int64, false),
        ];
        let mut columns = vec![
            text(&m.version),
            text(&m.built_at),
            text(&m.window_start),
            text(&m.window_end),
            int(m.training_items),
            int(m.excluded_fraud_items),
            int(m.excluded_inspected_items),
            int(m.min_cell_size),
        ];
        let (kind, why) = risk_score_model(m.learned.as_ref());
        let learned = m.learned.as_ref();
        for (name, value) in [
            ("risk_score_model", text(kind)),
            ("risk_score_model_why", text(&why)),
            (
                "labelled_items",
                int(learned.map_or(0, |l| l.labelled_items)),
            ),
            (
                "labelled_frauds",
                int(learned.map_or(0, |l| l.labelled_frauds)),
            ),
            ("learned_trees", int(learned.map_or(0, |l| l.fraud_trees))),
        ] {
            let data_type = value.data_type().clone();
            fields.push(Field::new(name, data_type, false));
            columns.push(value);
        }
        fields.push(Field::new("learned_weight", DataType::Float64, false));
        columns.push(Arc::new(Float64Array::from(vec![
            learned.map_or(0.0, |l| l.weight),
        ])));
        // The day lane_recommendation's capacities are shares of.
        fields.push(Field::new("lane_items_per_day", DataType::Float64, true));
        columns.push(Arc::new(Float64Array::from(vec![
            m.lanes.as_ref().map(|l| l.items_per_day),
        ])));
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

/// Which model `risk_score` ranks with, and why, in words.
pub fn risk_score_model(learned: Option<&LearnedSummary>) -> (&'static str, String) {
    match learned {
        None => (
            "unsupervised",
            format!(
                "no learned model: the window's inspections found fewer than \
                 {MIN_LABELLED_FRAUDS} frauds (or the warehouse has no inspections)"
            ),
        ),
        Some(l) if l.weight >= 1.0 => (
            "learned",
            format!(
                "learned from {} inspected items, {} found fraudulent (at least \
                 {FULL_WEIGHT_FRAUDS})",
                l.labelled_items, l.labelled_frauds
            ),
        ),
        Some(l) if l.weight <= 0.0 => (
            "unsupervised",
            format!(
                "learned from {} inspected items, {} found fraudulent, but the latest days \
                 held out from training ranked best with the unsupervised combination alone",
                l.labelled_items, l.labelled_frauds
            ),
        ),
        Some(l) if l.labelled_frauds >= FULL_WEIGHT_FRAUDS => (
            "blend",
            format!(
                "learned from {} inspected items, {} found fraudulent; the latest days held \
                 out from training ranked best with the learned probability weighing {:.1} \
                 and the unsupervised combination the rest",
                l.labelled_items, l.labelled_frauds, l.weight
            ),
        ),
        Some(l) => (
            "blend",
            format!(
                "{} frauds found among {} inspected items: the learned probability weighs \
                 {:.2}, the unsupervised combination the rest (at most frauds / \
                 {FULL_WEIGHT_FRAUDS}, and at most what ranked the held-out latest days best)",
                l.labelled_frauds, l.labelled_items, l.weight
            ),
        ),
    }
}
