//! `hs_valid(code)`: whether a declared tariff line is well formed.

use std::sync::LazyLock;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::common::types::logical_string;
use datafusion::common::utils::take_function_args;
use datafusion::logical_expr::{
    Coercion, ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature,
    TypeSignatureClass, Volatility,
};

use crate::DOC_SECTION;
use crate::kernel::{map_str_to_bool, map_string_arg};
use aduana_model::hs::{self, MAX_DIGITS};

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct HsValidFunc {
    signature: Signature,
}

impl Default for HsValidFunc {
    fn default() -> Self {
        HsValidFunc {
            signature: Signature::coercible(
                vec![Coercion::new_exact(TypeSignatureClass::Native(
                    logical_string(),
                ))],
                Volatility::Immutable,
            ),
        }
    }
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DOC_SECTION,
        "True when a declared tariff line is well formed: 6 to 10 digits once dots, spaces \
         and dashes between digits are removed, in an HS chapter that exists (01-97 except \
         the reserved 77, or 98-99 for national use). NULL for NULL. It checks the form, not \
         that the line is in the national tariff: join reference.tariff for that.",
        "hs_valid(hs_code)",
    )
    .with_argument("hs_code", "Declared tariff line.")
    .with_sql_example(
        "```sql\n> SELECT hs_valid('8471.30.00') AS a, hs_valid('8471') AS b, hs_valid('77010000') AS c;\n\
         +------+-------+-------+\n| a    | b     | c     |\n+------+-------+-------+\n| true | false | false |\n+------+-------+-------+\n```",
    )
    .with_related_udf("hs6")
    .build()
});

impl ScalarUDFImpl for HsValidFunc {
    fn name(&self) -> &str {
        "hs_valid"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [code] = take_function_args(self.name(), &args.args)?;
        map_string_arg(code, |array| {
            map_str_to_bool(array, |value| {
                hs::normalize(value, &mut [0u8; MAX_DIGITS]).is_some()
            })
        })
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}
