//! `valuation_deviation(hs_code, origin_country, customs_value, quantity
//! [, quantity_unit, net_mass_kg, declaration_date [, importer_id]])`: how
//! far a declared unit value lies from its reference cell, as a modified
//! z-score of log unit values. Negative: below the reference (possible
//! undervaluation).
//!
//! The reference is the finest price cell of the risk model with enough
//! history (national line × origin, HS6 × origin, HS6, HS4): never the
//! trader's own declarations alone. Per the WTO Valuation Agreement this is
//! a reason to doubt, not a customs value.
//!
//! With the importer, the score also weighs the importer's pricing record:
//! undervaluation is a habit of some traders, not an accident of one
//! item. The record's evidence (how many times the usual share of markedly
//! low items the importer declared, shrunk toward the usual share for short
//! records) is a prior odds ratio; it moves z by ln(ratio) / LOG_ODDS_PER_Z,
//! the log-odds that one unit of z is worth.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{Array, AsArray, Date32Array, Float64Array, StringViewArray};
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature,
};

use aduana_model::valuation::{Declared, deviation, month_index};

use crate::DOC_SECTION;
use crate::importers::{importer_hashes, importer_shifts};
use crate::kernel::{
    arg_arrays, date_arg, finish, float_result, number_arg, string_view, text_arg,
    with_optional_tails,
};
use crate::model_handle::ModelHandle;

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ValuationDeviationFunc {
    signature: Signature,
    pub(crate) model: ModelHandle,
}

impl ValuationDeviationFunc {
    pub fn new(model: ModelHandle) -> Self {
        ValuationDeviationFunc {
            signature: with_optional_tails(
                vec![text_arg(), text_arg(), number_arg(), number_arg()],
                &[&[text_arg(), number_arg(), date_arg()], &[text_arg()]],
            ),
            model,
        }
    }
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DOC_SECTION,
        "Modified z-score of the declared log unit value against its reference price cell in \
         the risk model (national line x origin, else HS6 x origin, HS6, HS4: the finest with \
         enough history). Negative means below the reference (possible undervaluation); below \
         -3.5 is a strong signal. With quantity_unit, a unit other than the cell's is compared \
         per kg of net mass instead, as is an item without a quantity (NULL or not positive) \
         when net_mass_kg is given; with declaration_date, the reference follows the cell's \
         price trend; with importer_id, the importer's pricing record in the training window \
         moves the score (an importer who often declared markedly low prices scores lower, one \
         who rarely did scores higher). NULL without a usable reference (per unit with a \
         quantity, or per kg with a net mass) or with a value that is not positive. Needs a risk \
         model (aduana model build).",
        "valuation_deviation(hs_code, origin_country, customs_value, quantity [, quantity_unit, net_mass_kg, declaration_date [, importer_id]])",
    )
    .with_argument("hs_code", "Declared tariff line.")
    .with_argument("origin_country", "Declared origin, ISO 3166-1 alpha-2.")
    .with_argument("customs_value", "Declared customs value.")
    .with_argument("quantity", "Declared quantity in quantity_unit (may be NULL: then per kg).")
    .with_argument("quantity_unit", "Optional: UN/ECE Rec. 20 unit of the quantity.")
    .with_argument("net_mass_kg", "Optional: net mass, used when the unit differs from the reference's.")
    .with_argument("declaration_date", "Optional: date of the declaration, for the price trend.")
    .with_argument("importer_id", "Optional: the importer, whose pricing record weighs in.")
    .with_sql_example(
        "```sql\n> SELECT declaration_id, item_no,\n         valuation_deviation(hs_code, origin_country, customs_value, quantity,\n                             quantity_unit, net_mass_kg, declaration_date, importer_id) AS z\n  FROM declarations ORDER BY z LIMIT 3;\n```",
    )
    .with_related_udf("robust_zscore")
    .with_related_udf("unit_value")
    .build()
});

impl ScalarUDFImpl for ValuationDeviationFunc {
    fn name(&self) -> &str {
        "valuation_deviation"
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
        let hs = string_view(&arrays[0])?;
        let origin = string_view(&arrays[1])?;
        let value = arrays[2].as_primitive::<Float64Type>();
        let quantity = arrays[3].as_primitive::<Float64Type>();
        let (unit, net, date): (
            Option<StringViewArray>,
            Option<&Float64Array>,
            Option<&Date32Array>,
        ) = if arrays.len() >= 7 {
            (
                Some(string_view(&arrays[4])?),
                Some(arrays[5].as_primitive::<Float64Type>()),
                Some(arrays[6].as_primitive()),
            )
        } else {
            (None, None, None)
        };
        let shifts = match arrays.get(7) {
            Some(a) => Some(importer_shifts(model, &importer_hashes(&string_view(a)?))),
            None => None,
        };
        let result = float_result(rows, |i| {
            if hs.is_null(i) || origin.is_null(i) || value.is_null(i) {
                return None;
            }
            let item = Declared {
                hs_code: hs.value(i),
                origin: origin.value(i),
                value: value.value(i),
                // Missing: valued per kg of net mass when the reference has it.
                quantity: if quantity.is_null(i) {
                    f64::NAN
                } else {
                    quantity.value(i)
                },
                unit: unit.as_ref().filter(|u| u.is_valid(i)).map(|u| u.value(i)),
                net_mass: net.filter(|n| n.is_valid(i)).map(|n| n.value(i)),
                month: date
                    .filter(|d| d.is_valid(i))
                    .map(|d| month_index(d.value(i))),
            };
            let shift = shifts
                .as_ref()
                .and_then(|s| s[i])
                .map_or(0.0, |(_, shift)| shift);
            deviation(model, &item).map(|d| d.z + shift)
        });
        finish(&args.args, Arc::new(result))
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}
