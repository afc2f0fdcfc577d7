//! `lane_recommendation(expected_revenue, red_per_day [, yellow_per_day])`:
//! the lane an item would get under a daily capacity, from the model's
//! lane scale (`aduana_model::lanes`): the capacity is a share of the
//! items a day brings, and the share a threshold of expected revenue.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{Array, StringBuilder};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};

use crate::DOC_SECTION;
use crate::kernel::{all_scalars, finish, float_args, number_arg};
use crate::model_handle::ModelHandle;

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct LaneRecommendationFunc {
    signature: Signature,
    pub(crate) model: ModelHandle,
}

impl LaneRecommendationFunc {
    pub fn new(model: ModelHandle) -> Self {
        LaneRecommendationFunc {
            signature: Signature::one_of(
                vec![
                    TypeSignature::Coercible(vec![number_arg(), number_arg()]),
                    TypeSignature::Coercible(vec![number_arg(), number_arg(), number_arg()]),
                ],
                Volatility::Immutable,
            ),
            model,
        }
    }
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DOC_SECTION,
        "The lane an item would get when a day has red_per_day physical and yellow_per_day \
         documentary controls: 'red' when its expected revenue is among the top red_per_day of \
         a day's items, 'yellow' among the next yellow_per_day, else 'green'. The thresholds come \
         from the capacities and how the last 30 days of the model's window spread over \
         expected revenue (risk_model_info() says how many items a day that was), not fixed \
         cut-offs. NULL when the expected revenue is NULL. aduana select fills the capacities \
         exactly for one day; this function says which lane a capacity implies for any item.",
        "lane_recommendation(expected_revenue, red_per_day [, yellow_per_day])",
    )
    .with_argument(
        "expected_revenue",
        "The item's expected revenue: expected_revenue(...), or risk times revenue at risk.",
    )
    .with_argument("red_per_day", "Physical inspections a day.")
    .with_argument("yellow_per_day", "Documentary checks a day (default 0).")
    .with_sql_example(
        "```sql\n> SELECT lane_recommendation(revenue_expected, 40, 60) AS lane, COUNT(*)\n  FROM scored_items WHERE declaration_date = DATE '2026-10-01' GROUP BY 1;\n```",
    )
    .with_related_udf("expected_revenue")
    .build()
});

impl ScalarUDFImpl for LaneRecommendationFunc {
    fn name(&self) -> &str {
        "lane_recommendation"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        self.model.return_type(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let model = self.model.require()?;
        let Some(scale) = model.manifest.lanes.as_ref() else {
            return exec_err!(
                "lane_recommendation: risk model {} was built before lane scales were kept: \
                 rebuild it with `aduana model build`",
                model.manifest.version
            );
        };
        let rows = if all_scalars(&args.args) {
            1
        } else {
            args.number_rows
        };
        let (score, red, yellow) = if args.args.len() == 3 {
            let [s, r, y] = float_args::<3>(&args.args, rows)?;
            (s, r, Some(y))
        } else {
            let [s, r] = float_args::<2>(&args.args, rows)?;
            (s, r, None)
        };
        let mut out = StringBuilder::with_capacity(rows, rows * 6);
        for i in 0..rows {
            let capacity = |a: &datafusion::arrow::array::Float64Array, name: &str| {
                let v = if a.is_valid(i) { a.value(i) } else { 0.0 };
                if v.is_finite() && v >= 0.0 {
                    Ok(v)
                } else {
                    exec_err!(
                        "lane_recommendation: {name} must be a number of controls >= 0, not {v}"
                    )
                }
            };
            let r = capacity(&red, "red_per_day")?;
            let y = match &yellow {
                Some(a) => capacity(a, "yellow_per_day")?,
                None => 0.0,
            };
            if score.is_null(i) || score.value(i).is_nan() {
                out.append_null();
            } else {
                out.append_value(scale.advise(score.value(i), r, y).name());
            }
        }
        finish(&args.args, Arc::new(out.finish()))
    }
    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}
