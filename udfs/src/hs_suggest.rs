//! `hs_suggest(description)`: the HS6 subheading the risk model's
//! description classifier finds most likely for a goods description.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{Array, ArrayRef, StringViewBuilder};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::common::utils::take_function_args;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use crate::DOC_SECTION;
use crate::kernel::{arg_arrays, finish, string_view, text_arg};
use crate::model_handle::ModelHandle;

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct HsSuggestFunc {
    signature: Signature,
    pub(crate) model: ModelHandle,
}

impl HsSuggestFunc {
    pub fn new(model: ModelHandle) -> Self {
        HsSuggestFunc {
            signature: Signature::coercible(vec![text_arg()], Volatility::Immutable),
            model,
        }
    }
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DOC_SECTION,
        "The HS6 subheading most likely for a goods description, from the risk model's \
         classifier (naive Bayes over the words of declared descriptions and, where the \
         warehouse has it, the HS nomenclature). NULL when no word of the description is known. \
         A suggestion for a person to check, not a classification ruling.",
        "hs_suggest(description)",
    )
    .with_argument(
        "description",
        "Commercial description of the goods, any case.",
    )
    .with_sql_example("```sql\n> SELECT hs_suggest('portable laptop computer 15.6in');\n```")
    .with_related_udf("hs_misclassification_probability")
    .build()
});

impl ScalarUDFImpl for HsSuggestFunc {
    fn name(&self) -> &str {
        "hs_suggest"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        self.model.return_type(DataType::Utf8View)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let model = self.model.require()?;
        take_function_args::<1, _>(self.name(), &args.args)?;
        let (rows, arrays) = arg_arrays(&args.args, args.number_rows)?;
        let text = string_view(&arrays[0])?;
        let classifier = &model.classifier;
        let mut scratch = aduana_model::classifier::Scratch::default();
        let mut out = StringViewBuilder::with_capacity(rows);
        for i in 0..rows {
            let best = text
                .is_valid(i)
                .then(|| classifier.predict(text.value(i), None, &mut scratch))
                .flatten();
            match best {
                Some(p) => out.append_value(&classifier.classes[p.best as usize]),
                None => out.append_null(),
            }
        }
        finish(&args.args, Arc::new(out.finish()) as ArrayRef)
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}
