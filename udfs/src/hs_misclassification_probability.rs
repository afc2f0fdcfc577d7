//! `hs_misclassification_probability(hs_code, description [, customs_value,
//! quantity, origin_country, quantity_unit, net_mass_kg])`: how likely the
//! declared HS6 is not the goods described, in [0, 1].
//!
//! Three kinds of evidence multiply as odds: the description classifier's
//! posterior of the declared HS6; with the value, how much better the unit
//! value fits the likely code's reference prices than the declared code's
//! (goods misclassified to pay less duty keep their own price); and the
//! duty incentive of the declared code over the likely one.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature,
};

use crate::DOC_SECTION;
use aduana_model::hs::{self, MAX_DIGITS};
use crate::kernel::{
    arg_arrays, finish, float_result, number_arg, opt_str, string_view, text_arg,
    with_optional_tails,
};
use crate::model_handle::ModelHandle;
use aduana_model::valuation::{Declared, deviation};

/// How much a wrong code without a duty advantage counts: an error more
/// often than a fraud, still worth correcting, less worth an audit.
pub const NO_INCENTIVE: f64 = 0.5;

/// 1 when the declared line pays less duty than the likely code (the
/// reason to misclassify), `NO_INCENTIVE` when it pays as much or more, and
/// 1 when either rate is unknown (no tariff: no evidence either way).
/// |z| beyond this counts as this: price tails are heavier than normal,
/// so one odd price must not outweigh the description.
const PRICE_Z_CAP: f64 = 3.0;

/// The likelihood ratio of the declared price under the likely code
/// against under the declared code, from the robust z-scores of each
/// (normal densities of the capped z).
pub fn price_fit_ratio(z_declared: f64, z_likely: f64) -> f64 {
    let cap = |z: f64| z.clamp(-PRICE_Z_CAP, PRICE_Z_CAP);
    (0.5 * (cap(z_declared).powi(2) - cap(z_likely).powi(2))).exp()
}

/// The probability that the declared code is wrong, from the classifier's
/// probability of it and the price likelihood ratio (1: no price evidence).
pub fn combine(declared_probability: f64, price_ratio: f64) -> f64 {
    let wrong = (1.0 - declared_probability).clamp(0.0, 1.0);
    let odds = wrong * price_ratio;
    let right = 1.0 - wrong;
    if odds + right == 0.0 {
        return 0.0;
    }
    odds / (odds + right)
}

pub fn incentive(facts: &aduana_model::OriginFacts, declared: &[u8], likely: &[u8]) -> f64 {
    match (facts.duty_rate(declared), facts.duty_rate(likely)) {
        (Some(paid), Some(due)) if due <= paid => NO_INCENTIVE,
        _ => 1.0,
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct HsMisclassificationFunc {
    signature: Signature,
    pub(crate) model: ModelHandle,
}

impl HsMisclassificationFunc {
    pub fn new(model: ModelHandle) -> Self {
        HsMisclassificationFunc {
            signature: with_optional_tails(
                vec![text_arg(), text_arg()],
                &[&[
                    number_arg(),
                    number_arg(),
                    text_arg(),
                    text_arg(),
                    number_arg(),
                ]],
            ),
            model,
        }
    }
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DOC_SECTION,
        "How likely the declared HS6 subheading is a misclassification worth a control, in \
         [0, 1]: one minus the posterior of the declared HS6 under the risk model's description \
         classifier, halved when the declared line pays no less duty than the likely code (no \
         revenue motive: more often an error than a fraud). NULL for a malformed code or a \
         description without a known word. hs_suggest gives the likely code.",
        "hs_misclassification_probability(hs_code, description)",
    )
    .with_argument("hs_code", "Declared tariff line.")
    .with_argument("description", "Commercial description of the goods.")
    .with_sql_example(
        "```sql\n> SELECT hs_code, description, hs_suggest(description) AS likely,\n         hs_misclassification_probability(hs_code, description, customs_value, quantity,\n                                          origin_country, quantity_unit, net_mass_kg) AS p\n  FROM declarations ORDER BY p DESC LIMIT 3;\n```",
    )
    .with_related_udf("hs_suggest")
    .build()
});

impl ScalarUDFImpl for HsMisclassificationFunc {
    fn name(&self) -> &str {
        "hs_misclassification_probability"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        self.model.return_type(DataType::Float64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let model = self.model.require()?;
        let (rows, arrays) = arg_arrays(&args.args, args.number_rows)?;
        let (codes, texts) = (string_view(&arrays[0])?, string_view(&arrays[1])?);
        let priced = match arrays.len() {
            7 => Some((
                arrays[2].as_primitive::<Float64Type>(),
                arrays[3].as_primitive::<Float64Type>(),
                string_view(&arrays[4])?,
                string_view(&arrays[5])?,
                arrays[6].as_primitive::<Float64Type>(),
            )),
            _ => None,
        };
        let classifier = &model.classifier;
        let mut scratch = aduana_model::classifier::Scratch::default();
        let result = float_result(rows, |i| {
            if codes.is_null(i) || texts.is_null(i) {
                return None;
            }
            let mut buffer = [0u8; MAX_DIGITS];
            let digits = hs::normalize(codes.value(i), &mut buffer)?;
            let hs6 = std::str::from_utf8(&digits[..6]).ok()?;
            let declared = classifier.class_index(hs6);
            let prediction = classifier.predict(texts.value(i), declared, &mut scratch)?;
            let likely = classifier.classes[prediction.best as usize].as_str();
            let price_ratio = match &priced {
                Some((value, quantity, origin, unit, net))
                    if likely != hs6 && value.is_valid(i) && quantity.is_valid(i) =>
                {
                    let item = |hs_code| Declared {
                        hs_code,
                        origin: opt_str(origin, i).unwrap_or(""),
                        value: value.value(i),
                        quantity: quantity.value(i),
                        unit: opt_str(unit, i),
                        net_mass: net.is_valid(i).then(|| net.value(i)),
                        month: None,
                    };
                    match (
                        deviation(model, &item(codes.value(i))),
                        deviation(model, &item(likely)),
                    ) {
                        (Some(d), Some(l)) => price_fit_ratio(d.z, l.z),
                        _ => 1.0,
                    }
                }
                _ => 1.0,
            };
            let wrong = combine(prediction.declared_probability, price_ratio);
            Some(wrong * incentive(&model.origins, digits, likely.as_bytes()))
        });
        finish(&args.args, Arc::new(result))
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_move_the_odds_both_ways() {
        // Fits the likely code, not the declared one: more likely wrong.
        assert!(combine(0.5, price_fit_ratio(-2.5, 0.1)) > 0.9);
        // Fits the declared code: less likely wrong.
        assert!(combine(0.5, price_fit_ratio(0.0, 2.5)) < 0.1);
        // No price evidence leaves the classifier's answer.
        assert!((combine(0.3, 1.0) - 0.7).abs() < 1e-12);
        // Certainty stays certainty; caps bound one price's weight.
        assert_eq!(combine(1.0, 1e-9), 0.0);
        assert_eq!(combine(0.0, 1e-9), 1.0);
        assert_eq!(price_fit_ratio(-30.0, 0.0), price_fit_ratio(-3.0, 0.0));
    }
}
