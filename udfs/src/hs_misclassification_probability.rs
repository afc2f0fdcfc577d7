//! `hs_misclassification_probability(hs_code, description)`: how likely the
//! declared HS6 is not the goods described, in [0, 1].

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::Array;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::common::utils::take_function_args;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use crate::DOC_SECTION;
use crate::hs::{self, MAX_DIGITS};
use crate::kernel::{arg_arrays, finish, float_result, string_view, text_arg};
use crate::model_handle::ModelHandle;

/// How much a wrong code without a duty advantage counts: an error more
/// often than a fraud, still worth correcting, less worth an audit.
pub const NO_INCENTIVE: f64 = 0.5;

/// 1 when the declared line pays less duty than the likely code (the
/// reason to misclassify), `NO_INCENTIVE` when it pays as much or more, and
/// 1 when either rate is unknown (no tariff: no evidence either way).
pub fn incentive(facts: &aduana_model::OriginFacts, declared: &[u8], likely: &[u8]) -> f64 {
    match (facts.duty_rate(declared), facts.duty_rate(likely)) {
        (Some(paid), Some(due)) if due <= paid => NO_INCENTIVE,
        _ => 1.0,
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct HsMisclassificationFunc {
    signature: Signature,
    model: ModelHandle,
}

impl HsMisclassificationFunc {
    pub fn new(model: ModelHandle) -> Self {
        HsMisclassificationFunc {
            signature: Signature::coercible(vec![text_arg(), text_arg()], Volatility::Immutable),
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
        "```sql\n> SELECT hs_code, description, hs_suggest(description) AS likely,\n         hs_misclassification_probability(hs_code, description) AS p\n  FROM declarations ORDER BY p DESC LIMIT 3;\n```",
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
        take_function_args::<2, _>(self.name(), &args.args)?;
        let (rows, arrays) = arg_arrays(&args.args, args.number_rows)?;
        let (codes, texts) = (string_view(&arrays[0])?, string_view(&arrays[1])?);
        let classifier = &model.classifier;
        let mut scratch = Vec::new();
        let result = float_result(rows, |i| {
            if codes.is_null(i) || texts.is_null(i) {
                return None;
            }
            let mut buffer = [0u8; MAX_DIGITS];
            let digits = hs::normalize(codes.value(i), &mut buffer)?;
            let hs6 = std::str::from_utf8(&digits[..6]).ok()?;
            let declared = classifier.class_index(hs6);
            let prediction = classifier.predict(texts.value(i), declared, &mut scratch)?;
            let wrong = (1.0 - prediction.declared_probability).clamp(0.0, 1.0);
            let likely = classifier.classes[prediction.best as usize].as_bytes();
            Some(wrong * incentive(&model.origins, digits, likely))
        });
        finish(&args.args, Arc::new(result))
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}
