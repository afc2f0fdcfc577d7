//! `unit_value(customs_value, quantity)`: customs value per unit.

use std::sync::LazyLock;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use crate::DOC_SECTION;
use crate::kernel::invoke_floats;

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct UnitValueFunc {
    signature: Signature,
}

impl Default for UnitValueFunc {
    fn default() -> Self {
        // Money arrives as Decimal128(18,2) or Float64, quantities as
        // Float64 or integers: all coerce to Float64.
        UnitValueFunc {
            signature: Signature::uniform(2, vec![DataType::Float64], Volatility::Immutable),
        }
    }
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DOC_SECTION,
        "Customs value per unit of quantity. NULL when either argument is NULL, zero or \
         negative: such a unit value is not evidence of anything.",
        "unit_value(customs_value, quantity)",
    )
    .with_argument("customs_value", "Customs (CIF) value in national currency.")
    .with_argument(
        "quantity",
        "Quantity in the declared unit (or net mass in kg).",
    )
    .with_sql_example(
        "```sql\n> SELECT unit_value(1250.00, 50) AS a, unit_value(1250.00, 0) AS b;\n\
         +------+---+\n| a    | b |\n+------+---+\n| 25.0 |   |\n+------+---+\n```",
    )
    .with_related_udf("valuation_deviation")
    .build()
});

/// `value / quantity` when both are positive and finite.
pub fn unit_value(value: f64, quantity: f64) -> Option<f64> {
    (value > 0.0 && quantity > 0.0 && value.is_finite() && quantity.is_finite())
        .then(|| value / quantity)
}

impl ScalarUDFImpl for UnitValueFunc {
    fn name(&self) -> &str {
        "unit_value"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        invoke_floats::<2>(
            self.name(),
            &args.args,
            args.number_rows,
            |[value, quantity]| unit_value(value, quantity),
        )
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}

#[cfg(test)]
mod tests {
    use super::unit_value;

    #[test]
    fn only_positive_values_and_quantities() {
        assert_eq!(unit_value(100.0, 4.0), Some(25.0));
        assert_eq!(unit_value(0.0, 4.0), None);
        assert_eq!(unit_value(100.0, -1.0), None);
        assert_eq!(unit_value(f64::NAN, 1.0), None);
        assert_eq!(unit_value(100.0, f64::INFINITY), None);
    }
}
