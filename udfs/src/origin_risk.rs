//! `origin_risk(hs_code, origin_country, export_country [, preference_code,
//! importer_id, declaration_date])`: how doubtful a declared origin is, in
//! [0, 1], from what the risk model learned of origins.
//! The signals and their combination are the model's
//! (`aduana_model::origin_signals`); this file adapts Arrow arrays to them.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{Array, AsArray, Date32Array, StringViewArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature,
};

use crate::DOC_SECTION;
use crate::importers::{BatchKeys, importer_hashes};
use crate::kernel::{
    PREFETCH_AHEAD, arg_arrays, date_arg, finish, float_result, string_view, text_arg,
    with_optional_tails,
};
use crate::model_handle::ModelHandle;
use aduana_model::origin_signals::{DeclaredOrigin, WEIGHTS, signals_of_product};

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct OriginRiskFunc {
    signature: Signature,
    pub(crate) model: ModelHandle,
}

impl OriginRiskFunc {
    pub fn new(model: ModelHandle) -> Self {
        OriginRiskFunc {
            signature: with_optional_tails(
                vec![text_arg(), text_arg(), text_arg()],
                &[&[text_arg(), text_arg(), date_arg()]],
            ),
            model,
        }
    }
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DOC_SECTION,
        "How doubtful a declared origin is, in [0, 1]: the origin is rare or unseen for the \
         product (HS6); the goods were dispatched from another country, more so from a \
         transshipment hub; the product is under a trade remedy against another country and \
         the declared origin's share rose after it (trade deflection) or is itself a hub; a \
         preference is claimed (strongly so for goods dispatched from a third country); the importer buys the product but never before from this \
         origin. Signals combine as a noisy-OR. NULL for a malformed code or origin. Needs a \
         risk model (aduana model build).",
        "origin_risk(hs_code, origin_country, export_country [, preference_code, importer_id, declaration_date])",
    )
    .with_argument("hs_code", "Declared tariff line.")
    .with_argument("origin_country", "Declared origin, ISO 3166-1 alpha-2.")
    .with_argument("export_country", "Country of dispatch.")
    .with_argument("preference_code", "Optional: preferential agreement claimed (NULL: none).")
    .with_argument("importer_id", "Optional: the importer, for its own history of origins.")
    .with_argument("declaration_date", "Optional: for trade remedies in force.")
    .with_sql_example(
        "```sql\n> SELECT declaration_id, item_no,\n         origin_risk(hs_code, origin_country, export_country, preference_code,\n                     importer_id, declaration_date) AS risk\n  FROM declarations ORDER BY risk DESC LIMIT 3;\n```",
    )
    .with_related_udf("valuation_deviation")
    .build()
});

impl ScalarUDFImpl for OriginRiskFunc {
    fn name(&self) -> &str {
        "origin_risk"
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
        let text: Vec<StringViewArray> = arrays
            .iter()
            .filter(|a| a.data_type() != &DataType::Date32)
            .map(string_view)
            .collect::<Result<_>>()?;
        let date: Option<&Date32Array> = arrays.get(5).map(|a| a.as_primitive());
        let optional =
            |k: usize, i: usize| text.get(k).filter(|a| a.is_valid(i)).map(|a| a.value(i));
        let min_items = model.manifest.min_cell_size;
        let keys = BatchKeys::new(&text[0], text.get(4).map(importer_hashes));
        let result = float_result(rows, |i| {
            keys.prefetch(model, i + PREFETCH_AHEAD);
            let hs6 = keys.products[i]?;
            if text[1].is_null(i) {
                return None;
            }
            let item = DeclaredOrigin {
                hs_code: text[0].value(i),
                origin: text[1].value(i),
                export: optional(2, i),
                preference: optional(3, i),
                importer: keys.importers.as_ref().and_then(|h| h[i]),
                day: date.filter(|d| d.is_valid(i)).map(|d| d.value(i)),
            };
            signals_of_product(model, &item, hs6, min_items).map(|s| s.score(&WEIGHTS))
        });
        finish(&args.args, Arc::new(result))
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}
