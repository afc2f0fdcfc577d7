//! `hs6(code)`, `hs4(code)`, `hs2(code)`: the international subheading,
//! heading and chapter of a declared tariff line.

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
use crate::kernel::{map_str_to_view, map_string_arg};
use aduana_model::hs::{self, MAX_DIGITS};

/// The three prefix functions differ only in how many digits they keep.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct HsPrefixFunc {
    name: &'static str,
    digits: usize,
    signature: Signature,
}

impl HsPrefixFunc {
    fn new(name: &'static str, digits: usize) -> Self {
        HsPrefixFunc {
            name,
            digits,
            signature: Signature::coercible(
                vec![Coercion::new_exact(TypeSignatureClass::Native(
                    logical_string(),
                ))],
                Volatility::Immutable,
            ),
        }
    }
    pub fn hs6() -> Self {
        Self::new("hs6", 6)
    }
    pub fn hs4() -> Self {
        Self::new("hs4", 4)
    }
    pub fn hs2() -> Self {
        Self::new("hs2", 2)
    }
}

fn doc(name: &str, level: &str, example: &str) -> Documentation {
    Documentation::builder(
        DOC_SECTION,
        format!(
            "The {level} of a declared tariff line: its first digits once separators are removed. \
             NULL when the code is malformed (see hs_valid)."
        ),
        format!("{name}(hs_code)"),
    )
    .with_argument(
        "hs_code",
        "Declared tariff line, 6 to 10 digits; dots, spaces and dashes between digits are ignored.",
    )
    .with_sql_example(format!(
        "```sql\n> SELECT {name}('8471.30.00');\n+{line}+\n| {example:<width$} |\n+{line}+\n```",
        line = "-".repeat(example.len().max(name.len() + 22) + 2),
        width = example.len().max(name.len() + 22),
    ))
    .with_related_udf("hs_valid")
    .build()
}

static DOCS: LazyLock<[Documentation; 3]> = LazyLock::new(|| {
    [
        doc("hs6", "HS6 subheading (international, 6 digits)", "847130"),
        doc("hs4", "HS heading (4 digits)", "8471"),
        doc("hs2", "HS chapter (2 digits)", "84"),
    ]
});

impl ScalarUDFImpl for HsPrefixFunc {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8View)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [code] = take_function_args(self.name, &args.args)?;
        let digits = self.digits;
        map_string_arg(code, |array| {
            map_str_to_view(array, |value, out| {
                let mut buffer = [0u8; MAX_DIGITS];
                match hs::prefix(value, digits, &mut buffer) {
                    Some(prefix) => out.append_value(prefix),
                    None => out.append_null(),
                }
            })
        })
    }

    fn documentation(&self) -> Option<&Documentation> {
        DOCS.get(match self.digits {
            6 => 0,
            4 => 1,
            _ => 2,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{
        ArrayRef, AsArray, LargeStringArray, StringArray, StringViewArray,
    };
    use datafusion::arrow::datatypes::Field;
    use datafusion::common::ScalarValue;
    use datafusion::common::config::ConfigOptions;

    use super::*;

    fn call(f: &HsPrefixFunc, arg: ColumnarValue, rows: usize) -> ColumnarValue {
        let field = Arc::new(Field::new("hs_code", DataType::Utf8, true));
        f.invoke_with_args(ScalarFunctionArgs {
            args: vec![arg],
            arg_fields: vec![field],
            number_rows: rows,
            return_field: Arc::new(Field::new(f.name(), DataType::Utf8View, true)),
            config_options: Arc::new(ConfigOptions::default()),
        })
        .unwrap()
    }

    #[test]
    fn every_string_encoding_gives_the_same_prefixes() {
        let codes = vec![Some("8471.30.00"), None, Some("bad"), Some("0101210000")];
        let inputs: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(codes.clone())),
            Arc::new(LargeStringArray::from(codes.clone())),
            Arc::new(StringViewArray::from(codes.clone())),
        ];
        for input in inputs {
            let ColumnarValue::Array(out) =
                call(&HsPrefixFunc::hs4(), ColumnarValue::Array(input), 4)
            else {
                panic!("array in, array out")
            };
            let out = out.as_string_view();
            assert_eq!(
                out.iter().collect::<Vec<_>>(),
                vec![Some("8471"), None, None, Some("0101")]
            );
        }
    }

    #[test]
    fn scalars_stay_scalars() {
        let out = call(
            &HsPrefixFunc::hs6(),
            ColumnarValue::Scalar(ScalarValue::Utf8(Some("847130".into()))),
            1,
        );
        assert!(
            matches!(out, ColumnarValue::Scalar(ScalarValue::Utf8View(Some(ref s))) if s == "847130")
        );
        let out = call(
            &HsPrefixFunc::hs2(),
            ColumnarValue::Scalar(ScalarValue::Utf8(None)),
            1,
        );
        assert!(matches!(
            out,
            ColumnarValue::Scalar(ScalarValue::Utf8View(None))
        ));
    }

    #[test]
    fn documented() {
        for f in [
            HsPrefixFunc::hs6(),
            HsPrefixFunc::hs4(),
            HsPrefixFunc::hs2(),
        ] {
            let doc = f.documentation().unwrap();
            assert!(doc.syntax_example.starts_with(f.name()));
            assert!(
                doc.sql_example
                    .as_ref()
                    .unwrap()
                    .contains(&format!("SELECT {}(", f.name()))
            );
        }
    }
}
