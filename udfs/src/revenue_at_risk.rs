//! `revenue_at_risk(...)`: the duties and taxes at stake if an item's
//! doubts are confirmed, in national currency. Impact, kept apart from
//! probability: expected revenue at risk is `risk_score * revenue_at_risk`.
//! The computation is the model's (`aduana_model::revenue`); this file
//! adapts Arrow arrays to it.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use crate::DOC_SECTION;
use crate::item_args::{AssessedArgs, ItemArgs, document_item_args, item_coercions};
use crate::kernel::{arg_arrays, finish, float_result, number_arg};
use crate::model_handle::ModelHandle;
use aduana_model::revenue::at_stake;

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct RevenueAtRiskFunc {
    signature: Signature,
    pub(crate) model: ModelHandle,
}

impl RevenueAtRiskFunc {
    pub fn new(model: ModelHandle) -> Self {
        let mut args = item_coercions();
        args.extend([number_arg(), number_arg()]);
        RevenueAtRiskFunc {
            signature: Signature::coercible(args, Volatility::Immutable),
            model,
        }
    }
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    document_item_args(
        Documentation::builder(
            DOC_SECTION,
            "Duties and taxes at stake if the item's doubts are confirmed, in national currency: the \
             price gap to the reference value at the item's effective tax rate (when z <= -2), the \
             extra duty of the code the description suggests (when p >= 0.5), and the remedy duty \
             or preferential margin an origin doubt puts at stake. Impact only: multiply by \
             risk_score for the expected revenue at risk. NULL when the value is not positive.",
            "revenue_at_risk(hs_code, origin_country, export_country, customs_value, quantity, quantity_unit, net_mass_kg, declaration_date, description, preference_code, duty_rate, duties_paid)",
        ),
    )
    .with_argument("duty_rate", "Duty rate applied, percent.")
    .with_argument("duties_paid", "Duties and taxes assessed.")
    .with_sql_example(
        "```sql\n> SELECT importer_id, SUM(risk_score(...) * revenue_at_risk(...)) AS expected_revenue_at_risk\n  FROM declarations GROUP BY importer_id ORDER BY 2 DESC LIMIT 10;\n```",
    )
    .with_related_udf("risk_score")
    .build()
});

impl ScalarUDFImpl for RevenueAtRiskFunc {
    fn name(&self) -> &str {
        "revenue_at_risk"
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
        let items = ItemArgs::new(&arrays)?;
        let assessed = AssessedArgs::new(&arrays);
        let mut scratch = aduana_model::classifier::Scratch::default();
        let result = float_result(rows, |i| {
            if items.is_null(i) {
                return None;
            }
            at_stake(
                model,
                &items.declared(i),
                &items.origin(i, None),
                items.description(i),
                &assessed.at(i),
                &mut scratch,
            )
        });
        finish(&args.args, Arc::new(result))
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}
