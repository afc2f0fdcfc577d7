//! `tariff_rate(hs_code)`: the duty rate the risk model applies to a code,
//! from the tariff it learned with.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{Array, ArrayRef};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::common::utils::take_function_args;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use crate::DOC_SECTION;
use crate::kernel::{arg_arrays, finish, float_result, string_view, text_arg};
use crate::model_handle::ModelHandle;

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct TariffRateFunc {
    signature: Signature,
    pub(crate) model: ModelHandle,
}

impl TariffRateFunc {
    pub fn new(model: ModelHandle) -> Self {
        TariffRateFunc {
            signature: Signature::coercible(vec![text_arg()], Volatility::Immutable),
            model,
        }
    }
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DOC_SECTION,
        "The duty rate, in percent, the risk model applies to a code when it prices what a \
         misclassification puts at stake: the mean rate of the tariff lines under the code (a \
         listed line's own rate), else the rate of its longest listed prefix. From the tariff \
         the model was built with (reference.tariff). NULL when no line matches, the code is \
         not digits (separators between them allowed), or the model had no tariff.",
        "tariff_rate(hs_code)",
    )
    .with_argument(
        "hs_code",
        "A code of any length: a chapter, heading, subheading or tariff line, e.g. '6109.10'.",
    )
    .with_sql_example("```sql\n> SELECT tariff_rate(hs_suggest('cotton t-shirts'));\n```")
    .with_related_udf("hs_suggest")
    .build()
});

impl ScalarUDFImpl for TariffRateFunc {
    fn name(&self) -> &str {
        "tariff_rate"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        self.model.return_type(DataType::Float64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let model = self.model.require()?;
        take_function_args::<1, _>(self.name(), &args.args)?;
        let (rows, arrays) = arg_arrays(&args.args, args.number_rows)?;
        let codes = string_view(&arrays[0])?;
        let mut buffer = [0u8; aduana_model::hs::MAX_DIGITS];
        let rates = float_result(rows, |i| {
            codes
                .is_valid(i)
                .then(|| aduana_model::hs::digits(codes.value(i), &mut buffer))
                .flatten()
                .and_then(|digits| model.origins.duty_rate(digits))
        });
        finish(&args.args, Arc::new(rates) as ArrayRef)
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}
