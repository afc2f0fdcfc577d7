//! `risk_reasons(...)`: the reasons behind an item's risk, as sentences a
//! person can check, e.g. "unit value 62% below the reference for HS
//! 847130 from CN (z = -3.4, 412 references)". Empty when nothing stands
//! out; the same evidence the scores use, never a verdict.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{ListBuilder, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use crate::DOC_SECTION;
use crate::item_args::{ITEM_ARGS, ItemArgs, document_item_args, item_coercions};
use crate::kernel::{arg_arrays, finish, opt_str, string_view, text_arg};
use crate::model_handle::ModelHandle;
use aduana_model::reasons::{Item, reasons};

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct RiskReasonsFunc {
    signature: Signature,
    pub(crate) model: ModelHandle,
}

impl RiskReasonsFunc {
    pub fn new(model: ModelHandle) -> Self {
        let mut args = item_coercions();
        args.push(text_arg());
        RiskReasonsFunc {
            signature: Signature::coercible(args, Volatility::Immutable),
            model,
        }
    }
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    document_item_args(
        Documentation::builder(
            DOC_SECTION,
            "The reasons behind an item's risk, as sentences: a unit value far below its reference \
             (with the reference cell, z-score and number of references), a description that names \
             other goods than the declared code (with the suggested HS6), and each origin signal \
             (rare origin, dispatch through a hub, trade deflection after a remedy, preference on \
             goods from a third country, first import from an origin). An empty list when nothing \
             stands out. Needs a risk model (aduana model build).",
            "risk_reasons(hs_code, origin_country, export_country, customs_value, quantity, quantity_unit, net_mass_kg, declaration_date, description, preference_code, importer_id)",
        ),
    )
    .with_argument("importer_id", "The importer.")
    .with_sql_example(
        "```sql\n> SELECT declaration_id, item_no, risk_reasons(hs_code, origin_country, export_country,\n         customs_value, quantity, quantity_unit, net_mass_kg, declaration_date,\n         description, preference_code, importer_id) AS reasons\n  FROM declarations LIMIT 3;\n```",
    )
    .with_related_udf("risk_score")
    .build()
});

impl ScalarUDFImpl for RiskReasonsFunc {
    fn name(&self) -> &str {
        "risk_reasons"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        self.model
            .return_type(DataType::List(Arc::new(Field::new_list_field(
                DataType::Utf8,
                true,
            ))))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let model = self.model.require()?;
        let (rows, arrays) = arg_arrays(&args.args, args.number_rows)?;
        let items = ItemArgs::new(&arrays)?;
        let importer = string_view(&arrays[ITEM_ARGS])?;
        let mut out = ListBuilder::new(StringBuilder::new())
            .with_field(Field::new_list_field(DataType::Utf8, true));
        let mut scratch = aduana_model::classifier::Scratch::default();
        for i in 0..rows {
            if items.is_null(i) {
                out.append_null();
                continue;
            }
            let item = Item {
                declared: items.declared(i),
                origin: items.origin(i, opt_str(&importer, i)),
                description: items.description(i),
            };
            for sentence in reasons(model, &item, &mut scratch) {
                out.values().append_value(sentence);
            }
            out.append(true);
        }
        finish(&args.args, Arc::new(out.finish()))
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}
