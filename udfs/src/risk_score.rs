//! `risk_score(valuation_deviation, misclassification_probability,
//! origin_risk)`: one probability-like score in [0, 1] from the three
//! risk functions, and `risk_level(score [, medium, high])`.
//!
//! The valuation z-score becomes a probability-like value with a logistic
//! curve (z = -2 gives 0.5, z = -3.5 about 0.95, z >= 0 near 0: only prices
//! below the reference raise the risk), then the three combine as a
//! weighted noisy-OR, so a strong reason of any kind is enough to rank an
//! item high and two reasons rank it higher. A NULL component is no
//! evidence, not a reason.
//!
//! With a fourth argument, the learned `fraud_probability`, the score
//! blends the two by the learned model's weight (how many labelled frauds
//! it learned from, `aduana_model::learned::learned_weight`, at most the
//! weight that ranked the held-out days best); a NULL probability (no
//! learned model) leaves the unsupervised score.

use std::sync::LazyLock;

use datafusion::arrow::array::{Array, StringViewBuilder};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};

use crate::DOC_SECTION;
use crate::kernel::{all_scalars, finish, float_args, float_result, number_arg};
use crate::model_handle::ModelHandle;
use aduana_model::combine::{HIGH, MEDIUM, blend, risk_level, risk_score};

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct RiskScoreFunc {
    signature: Signature,
    /// Gives the learned model's weight for the four-argument form.
    pub model: ModelHandle,
}

impl RiskScoreFunc {
    pub fn new(model: ModelHandle) -> Self {
        RiskScoreFunc {
            signature: Signature::one_of(
                vec![
                    TypeSignature::Coercible(vec![number_arg(), number_arg(), number_arg()]),
                    TypeSignature::Coercible(vec![
                        number_arg(),
                        number_arg(),
                        number_arg(),
                        number_arg(),
                    ]),
                ],
                Volatility::Immutable,
            ),
            model,
        }
    }

    /// The learned model's weight and the fraud rate of its labelled items
    /// (none without a model; an error when the model does not decode).
    fn learned(&self) -> Result<(f64, f64)> {
        if !self.model.is_present() {
            return Ok((0.0, 0.0));
        }
        Ok(self
            .model
            .require()?
            .learned
            .as_ref()
            .map_or((0.0, 0.0), |l| (l.summary.weight, l.profiles.overall_rate)))
    }
}

static SCORE_DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DOC_SECTION,
        "One risk score in [0, 1] from the three risk functions: the valuation z-score turned \
         into a probability-like value (z = -2 gives 0.5, z = -3.5 about 0.95; prices above the \
         reference add nothing), then a weighted noisy-OR with the misclassification \
         probability and the origin risk. A NULL component counts as no evidence. With the \
         learned fraud_probability(...) as a fourth argument, the score blends the learned \
         probability's lift p / (p + r) over the fraud rate r of the inspected items (0.5: as \
         likely as the average inspected item) with the unsupervised score: the unsupervised \
         score alone when there is no learned part, the learned weighing labelled frauds / 300 \
         up to 300 frauds and at most the weight under which the latest days held out from \
         training ranked best (risk_model_info() shows the weight).",
        "risk_score(valuation_deviation, hs_misclassification_probability, origin_risk [, fraud_probability])",
    )
    .with_argument("valuation_deviation", "The item's valuation_deviation(...) z-score.")
    .with_argument("hs_misclassification_probability", "The item's hs_misclassification_probability(...).")
    .with_argument("origin_risk", "The item's origin_risk(...).")
    .with_argument("fraud_probability", "Optional: the item's fraud_probability(...).")
    .with_sql_example(
        "```sql\n> SELECT round(risk_score(-3.5, 0.1, 0.2), 3) AS score;\n+-------+\n| score |\n+-------+\n| 0.886 |\n+-------+\n```",
    )
    .with_related_udf("risk_level")
    .build()
});

impl ScalarUDFImpl for RiskScoreFunc {
    fn name(&self) -> &str {
        "risk_score"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = if all_scalars(&args.args) {
            1
        } else {
            args.number_rows
        };
        let value = |a: &datafusion::arrow::array::Float64Array, i: usize| {
            a.is_valid(i).then(|| a.value(i))
        };
        let result = match args.args.len() {
            3 => {
                let [z, m, o] = float_args::<3>(&args.args, rows)?;
                float_result(rows, |i| {
                    Some(risk_score(value(&z, i), value(&m, i), value(&o, i)))
                })
            }
            4 => {
                let [z, m, o, p] = float_args::<4>(&args.args, rows)?;
                let (weight, base_rate) = self.learned()?;
                float_result(rows, |i| {
                    let score = risk_score(value(&z, i), value(&m, i), value(&o, i));
                    Some(blend(score, value(&p, i), weight, base_rate))
                })
            }
            n => return exec_err!("risk_score takes 3 or 4 arguments, got {n}"),
        };
        finish(&args.args, std::sync::Arc::new(result))
    }
    fn documentation(&self) -> Option<&Documentation> {
        Some(&SCORE_DOC)
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct RiskLevelFunc {
    signature: Signature,
}

impl Default for RiskLevelFunc {
    fn default() -> Self {
        RiskLevelFunc {
            signature: Signature::one_of(
                vec![
                    TypeSignature::Coercible(vec![number_arg()]),
                    TypeSignature::Coercible(vec![number_arg(), number_arg(), number_arg()]),
                ],
                Volatility::Immutable,
            ),
        }
    }
}

static LEVEL_DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DOC_SECTION,
        "The risk level of a score: 'high' at or above the high threshold (default 0.6), \
         'medium' at or above the medium one (default 0.3), else 'low'. NULL for NULL. An \
         administration sets thresholds from its audit capacity, e.g. so that 'high' is the \
         share of items it can control.",
        "risk_level(score [, medium_threshold, high_threshold])",
    )
    .with_argument("score", "A risk_score(...) in [0, 1].")
    .with_argument("medium_threshold", "Optional, default 0.3.")
    .with_argument("high_threshold", "Optional, default 0.6; must not be below the medium threshold.")
    .with_sql_example(
        "```sql\n> SELECT risk_level(0.72) AS a, risk_level(0.72, 0.5, 0.8) AS b;\n+------+--------+\n| a    | b      |\n+------+--------+\n| high | medium |\n+------+--------+\n```",
    )
    .with_related_udf("risk_score")
    .build()
});

impl ScalarUDFImpl for RiskLevelFunc {
    fn name(&self) -> &str {
        "risk_level"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8View)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = if all_scalars(&args.args) {
            1
        } else {
            args.number_rows
        };
        let arrays = match args.args.len() {
            1 => vec![float_args::<1>(&args.args, rows)?[0].clone()],
            3 => float_args::<3>(&args.args, rows)?.to_vec(),
            n => return exec_err!("risk_level takes 1 or 3 arguments, got {n}"),
        };
        let mut out = StringViewBuilder::with_capacity(rows);
        for i in 0..rows {
            if arrays.iter().any(|a| a.is_null(i)) {
                out.append_null();
                continue;
            }
            let (medium, high) = match arrays.len() {
                3 => (arrays[1].value(i), arrays[2].value(i)),
                _ => (MEDIUM, HIGH),
            };
            if high < medium {
                return exec_err!(
                    "risk_level: high threshold {high} is below medium threshold {medium}"
                );
            }
            out.append_value(risk_level(arrays[0].value(i), medium, high));
        }
        finish(&args.args, std::sync::Arc::new(out.finish()))
    }
    fn documentation(&self) -> Option<&Documentation> {
        Some(&LEVEL_DOC)
    }
}
