//! `item_evidence(...)`: an item's four evidence columns in one call, as a
//! struct `{value_z, p_wrong_code, origin_score, at_stake}`, each exactly
//! what `valuation_deviation`, `hs_misclassification_probability`,
//! `origin_risk` and `revenue_at_risk` give for the same item. The
//! scoring views use it so the work the four share (the deviation, the
//! classifier's prediction, the origin signals) is done once per item; the
//! computation is the model's (`aduana_model::evidence`).

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{ArrayRef, Float64Array, StructArray};
use datafusion::arrow::datatypes::{DataType, Field, Fields};
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use crate::DOC_SECTION;
use crate::importers::{BatchKeys, importer_hashes, importer_shifts};
use crate::item_args::{AssessedArgs, ITEM_ARGS, ItemArgs, document_item_args, item_coercions};
use crate::kernel::{PREFETCH_AHEAD, arg_arrays, finish, number_arg, string_view, text_arg};
use crate::model_handle::ModelHandle;
use aduana_model::evidence::{Evidence, evidence};

/// The struct's fields, in the order of the evidence columns.
pub const FIELDS: [&str; 4] = ["value_z", "p_wrong_code", "origin_score", "at_stake"];

fn evidence_fields() -> Fields {
    FIELDS
        .iter()
        .map(|name| Field::new(*name, DataType::Float64, true))
        .collect()
}

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ItemEvidenceFunc {
    signature: Signature,
    pub(crate) model: ModelHandle,
}

impl ItemEvidenceFunc {
    pub fn new(model: ModelHandle) -> Self {
        let mut args = item_coercions();
        args.extend([number_arg(), number_arg(), text_arg()]);
        ItemEvidenceFunc {
            signature: Signature::coercible(args, Volatility::Immutable),
            model,
        }
    }
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    document_item_args(
        Documentation::builder(
            DOC_SECTION,
            "An item's unsupervised evidence in one call, as a struct: value_z \
             (valuation_deviation with the importer), p_wrong_code \
             (hs_misclassification_probability with the price), origin_score (origin_risk with the \
             importer and date) and at_stake (revenue_at_risk). Each field equals its function's \
             value for the item, NULL where it is NULL; one call does the work the four share once.",
            "item_evidence(hs_code, origin_country, export_country, customs_value, quantity, quantity_unit, net_mass_kg, declaration_date, description, preference_code, duty_rate, duties_paid, importer_id)",
        ),
    )
    .with_argument("duty_rate", "Duty rate applied, percent.")
    .with_argument("duties_paid", "Duties and taxes assessed.")
    .with_argument("importer_id", "The importer, whose records move value_z and origin_score.")
    .with_sql_example(
        "```sql\n> SELECT e['value_z'], e['at_stake']\n  FROM (SELECT item_evidence(hs_code, origin_country, export_country, customs_value, quantity,\n          quantity_unit, net_mass_kg, declaration_date, description, preference_code,\n          duty_rate, duties_paid, importer_id) AS e FROM declarations) LIMIT 3;\n```",
    )
    .with_related_udf("valuation_deviation")
    .with_related_udf("revenue_at_risk")
    .build()
});

impl ScalarUDFImpl for ItemEvidenceFunc {
    fn name(&self) -> &str {
        "item_evidence"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        self.model.return_type(DataType::Struct(evidence_fields()))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let model = self.model.require()?;
        let (rows, arrays) = arg_arrays(&args.args, args.number_rows)?;
        let items = ItemArgs::new(&arrays)?;
        let assessed = AssessedArgs::new(&arrays);
        let importers = importer_hashes(&string_view(&arrays[ITEM_ARGS + 2])?);
        let shifts = importer_shifts(model, &importers);
        let keys = BatchKeys::new(items.codes(), Some(importers));
        let mut scratch = aduana_model::classifier::Scratch::default();
        let mut out = Vec::with_capacity(rows);
        for i in 0..rows {
            keys.prefetch(model, i + PREFETCH_AHEAD);
            let item = items.evidence_item(i, assessed.at(i), shifts[i], keys.products[i]);
            out.push(evidence(model, &item, &mut scratch));
        }
        let column = |field: fn(&Evidence) -> Option<f64>| -> ArrayRef {
            Arc::new(out.iter().map(field).collect::<Float64Array>())
        };
        let result = StructArray::try_new(
            evidence_fields(),
            vec![
                column(|e| e.value_z),
                column(|e| e.p_wrong_code),
                column(|e| e.origin_score),
                column(|e| e.at_stake),
            ],
            None,
        )?;
        finish(&args.args, Arc::new(result))
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}
