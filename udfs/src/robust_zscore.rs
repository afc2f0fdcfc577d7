//! `robust_zscore(x, median, mad)`: the modified z-score of Iglewicz and
//! Hoaglin, 0.6745 (x - median) / MAD.

use std::sync::LazyLock;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use crate::DOC_SECTION;
use crate::kernel::invoke_floats;

pub use aduana_model::valuation::{MAD_SCALE, robust_zscore};

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct RobustZscoreFunc {
    signature: Signature,
}

impl Default for RobustZscoreFunc {
    fn default() -> Self {
        RobustZscoreFunc {
            signature: Signature::uniform(3, vec![DataType::Float64], Volatility::Immutable),
        }
    }
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DOC_SECTION,
        "Modified z-score 0.6745 * (x - median) / mad (Iglewicz and Hoaglin): how many robust \
         standard deviations x lies from the median. Beyond 3.5 in absolute value is the usual \
         outlier mark. NULL when any argument is NULL or mad is not positive.",
        "robust_zscore(x, median, mad)",
    )
    .with_argument(
        "x",
        "The value, e.g. ln(unit_value(customs_value, quantity)).",
    )
    .with_argument("median", "Median of the reference values.")
    .with_argument("mad", "Median absolute deviation of the reference values.")
    .with_sql_example(
        "```sql\n> SELECT robust_zscore(2.0, 4.0, 0.5) AS z;\n\
         +--------+\n| z      |\n+--------+\n| -2.698 |\n+--------+\n```",
    )
    .with_related_udf("robust_profile")
    .build()
});

impl ScalarUDFImpl for RobustZscoreFunc {
    fn name(&self) -> &str {
        "robust_zscore"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        invoke_floats::<3>(
            self.name(),
            &args.args,
            args.number_rows,
            |[x, median, mad]| robust_zscore(x, median, mad),
        )
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores() {
        assert!((robust_zscore(2.0, 4.0, 0.5).unwrap() + 2.698).abs() < 1e-9);
        assert_eq!(robust_zscore(1.0, 1.0, 0.0), None);
        assert_eq!(robust_zscore(f64::NAN, 1.0, 1.0), None);
    }
}
