//! `risk_flags(valuation_deviation, hs_misclassification_probability,
//! origin_risk)`: the kinds of fraud an item's evidence flags, at the
//! thresholds of `aduana_model::thresholds` (the reports' one definition
//! of a flag).

use std::sync::{Arc, LazyLock};

use aduana_model::thresholds::{CLASSIFICATION_FLAG, ORIGIN_FLAG, VALUATION_FLAG_Z, flags};
use datafusion::arrow::array::{Array, ListBuilder, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use crate::DOC_SECTION;
use crate::kernel::{all_scalars, finish, float_args, number_arg};

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct RiskFlagsFunc {
    signature: Signature,
}

impl Default for RiskFlagsFunc {
    fn default() -> Self {
        RiskFlagsFunc {
            signature: Signature::coercible(
                vec![number_arg(), number_arg(), number_arg()],
                Volatility::Immutable,
            ),
        }
    }
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DOC_SECTION,
        format!(
            "The kinds of fraud an item's evidence flags: 'valuation' for a unit value at least \
             {} robust z below its reference, 'classification' for a misclassification \
             probability of {CLASSIFICATION_FLAG} or more, 'origin' for an origin risk of \
             {ORIGIN_FLAG} or more. An empty list when nothing is flagged; NULL evidence flags \
             nothing.",
            -VALUATION_FLAG_Z
        ),
        "risk_flags(valuation_deviation, hs_misclassification_probability, origin_risk)",
    )
    .with_argument("valuation_deviation", "The item's valuation_deviation(...).")
    .with_argument("hs_misclassification_probability", "The item's hs_misclassification_probability(...).")
    .with_argument("origin_risk", "The item's origin_risk(...).")
    .with_sql_example(
        "```sql\n> SELECT risk_flags(-3.1, 0.7, 0.1) AS flags;\n+--------------------------+\n| flags                    |\n+--------------------------+\n| [valuation, classification] |\n+--------------------------+\n```",
    )
    .with_related_udf("risk_reasons")
    .build()
});

impl ScalarUDFImpl for RiskFlagsFunc {
    fn name(&self) -> &str {
        "risk_flags"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::List(Arc::new(Field::new_list_field(
            DataType::Utf8,
            true,
        ))))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = if all_scalars(&args.args) {
            1
        } else {
            args.number_rows
        };
        let [z, m, o] = float_args::<3>(&args.args, rows)?;
        let value = |a: &datafusion::arrow::array::Float64Array, i: usize| {
            a.is_valid(i).then(|| a.value(i))
        };
        let mut out = ListBuilder::new(StringBuilder::new());
        for i in 0..rows {
            for flag in flags(value(&z, i), value(&m, i), value(&o, i)) {
                out.values().append_value(flag);
            }
            out.append(true);
        }
        finish(&args.args, Arc::new(out.finish()))
    }
    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}
