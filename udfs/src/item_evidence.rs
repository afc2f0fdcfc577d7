//! `item_evidence(...)`: an item's four evidence columns in one call, as a
//! struct `{value_z, p_wrong_code, origin_score, at_stake}`, each exactly
//! what `valuation_deviation`, `hs_misclassification_probability`,
//! `origin_risk` and `revenue_at_risk` give for the same item. The
//! scoring views use it so the work the four share (the deviation, the
//! classifier's prediction, the origin signals) is done once per item; the
//! computation is the model's (`aduana_model::evidence`).

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array, StructArray};
use datafusion::arrow::datatypes::{DataType, Field, Fields, Float64Type};
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use crate::DOC_SECTION;
use crate::item_args::{ITEM_ARGS, ItemArgs, document_item_args, item_coercions};
use crate::kernel::{
    PREFETCH_AHEAD, arg_arrays, finish, number_arg, per_run, string_view, text_arg,
};
use crate::model_handle::ModelHandle;
use aduana_model::evidence::{Evidence, evidence};
use aduana_model::importer_hash;
use aduana_model::origin_signals::product_key;
use aduana_model::revenue::Assessed;
use aduana_model::valuation::importer_shift_of;

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
        let rate = arrays[ITEM_ARGS].as_primitive::<Float64Type>();
        let paid = arrays[ITEM_ARGS + 1].as_primitive::<Float64Type>();
        let number = |a: &Float64Array, i: usize| a.is_valid(i).then(|| a.value(i));
        // Keys worked out once per run of rows (items of a declaration sit
        // together and share the importer, often the code), and known
        // ahead, so the loop prefetches the importer's records a few rows
        // before it reads them.
        let products = per_run(items.codes(), product_key);
        let importers = per_run(&string_view(&arrays[ITEM_ARGS + 2])?, |name| {
            Some(importer_hash(name))
        });
        let mut last_shift: Option<(u64, f64)> = None;
        let mut scratch = aduana_model::classifier::Scratch::default();
        let mut out = Vec::with_capacity(rows);
        for i in 0..rows {
            if let Some(Some(hash)) = importers.get(i + PREFETCH_AHEAD) {
                model.origins.prefetch_low_price(*hash);
                if let Some(hs6) = products[i + PREFETCH_AHEAD] {
                    model.origins.importers.prefetch(*hash, hs6);
                }
            }
            let importer = importers[i].map(|hash| match last_shift {
                Some((last, shift)) if last == hash => (hash, shift),
                _ => {
                    let shift = importer_shift_of(model, hash);
                    last_shift = Some((hash, shift));
                    (hash, shift)
                }
            });
            let assessed = Assessed {
                duty_rate: number(rate, i),
                duties_paid: number(paid, i),
            };
            let item = items.evidence_item(i, assessed, importer, products[i]);
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
