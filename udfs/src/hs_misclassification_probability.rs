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
use crate::kernel::{
    arg_arrays, finish, float_result, number_arg, opt_str, string_view, text_arg,
    with_optional_tails,
};
use crate::model_handle::ModelHandle;
use aduana_model::hs::{self, MAX_DIGITS};
use aduana_model::misclassification::{Priced, wrong_code_probability};

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
            let prediction = classifier.predict_declared(texts.value(i), digits, &mut scratch)?;
            let priced = match &priced {
                Some((value, quantity, origin, unit, net))
                    if value.is_valid(i) && quantity.is_valid(i) =>
                {
                    Some(Priced {
                        origin: opt_str(origin, i).unwrap_or(""),
                        value: value.value(i),
                        quantity: quantity.value(i),
                        unit: opt_str(unit, i),
                        net_mass: net.is_valid(i).then(|| net.value(i)),
                    })
                }
                _ => None,
            };
            Some(wrong_code_probability(
                model,
                codes.value(i),
                digits,
                &prediction,
                priced.as_ref(),
            ))
        });
        finish(&args.args, Arc::new(result))
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}
