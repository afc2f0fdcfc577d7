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
use crate::kernel::{all_scalars, finish, float_result, string_view, text_arg};
use crate::model_handle::ModelHandle;

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
        "How likely the declared HS6 subheading is not the goods the description names, in \
         [0, 1]: one minus the posterior of the declared HS6 under the risk model's description \
         classifier. NULL for a malformed code or a description without a known word. \
         hs_suggest gives the likely code.",
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
        let [code, description] = take_function_args(self.name(), &args.args)?;
        let rows = if all_scalars(&args.args) {
            1
        } else {
            args.number_rows
        };
        let codes = string_view(&code.to_array(rows)?)?;
        let texts = string_view(&description.to_array(rows)?)?;
        let classifier = &model.classifier;
        let mut scratch = Vec::new();
        let result = float_result(rows, |i| {
            if codes.is_null(i) || texts.is_null(i) {
                return None;
            }
            let mut buffer = [0u8; MAX_DIGITS];
            let hs6 = hs::prefix(codes.value(i), 6, &mut buffer)?;
            let declared = classifier.class_index(hs6);
            let prediction = classifier.predict(texts.value(i), declared, &mut scratch)?;
            Some((1.0 - prediction.declared_probability).clamp(0.0, 1.0))
        });
        finish(&args.args, Arc::new(result))
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}
