//! `revenue_at_risk(...)`: the duties and taxes at stake if an item's
//! doubts are confirmed, in national currency. Impact, kept apart from
//! probability: expected revenue at risk is `risk_score * revenue_at_risk`.
//!
//! - price: the gap between the reference value (quantity × reference unit
//!   value) and the declared value, at the item's own effective tax rate
//!   (duties_paid / customs_value), when the price is a doubt (z <= -2);
//! - classification: the extra duty of the code the description suggests
//!   over the declared rate, plus the tax on that duty, when the code is a
//!   doubt (p >= 0.5);
//! - origin: the remedy duty avoided when the goods may be deflected from a
//!   country under a remedy, or the MFN duty when a preference is claimed on
//!   goods dispatched from a third country (the larger of the two).

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{Array, AsArray, Float64Array};
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use aduana_model::RiskModel;

use crate::DOC_SECTION;
use aduana_model::hs::{MAX_DIGITS, normalize};
use crate::item_args::{ITEM_ARGS, ItemArgs, item_coercions};
use crate::kernel::{arg_arrays, finish, float_result, number_arg};
use crate::model_handle::ModelHandle;
use crate::origin_risk::{DeclaredOrigin, signals};
use aduana_model::valuation::{Declared, deviation};

/// A price is a doubt at or below this z-score.
const Z_DOUBT: f64 = -2.0;
/// A code is a doubt at or above this probability of being wrong.
const CODE_DOUBT: f64 = 0.5;

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
    Documentation::builder(
        DOC_SECTION,
        "Duties and taxes at stake if the item's doubts are confirmed, in national currency: the \
         price gap to the reference value at the item's effective tax rate (when z <= -2), the \
         extra duty of the code the description suggests (when p >= 0.5), and the remedy duty \
         or preferential margin an origin doubt puts at stake. Impact only: multiply by \
         risk_score for the expected revenue at risk. NULL when the value is not positive.",
        "revenue_at_risk(hs_code, origin_country, export_country, customs_value, quantity, quantity_unit, net_mass_kg, declaration_date, description, preference_code, duty_rate, duties_paid)",
    )
    .with_argument("hs_code", "Declared tariff line.")
    .with_argument("origin_country", "Declared origin.")
    .with_argument("export_country", "Country of dispatch.")
    .with_argument("customs_value", "Declared customs value.")
    .with_argument("quantity", "Declared quantity.")
    .with_argument("quantity_unit", "Unit of the quantity.")
    .with_argument("net_mass_kg", "Net mass.")
    .with_argument("declaration_date", "Date of the declaration.")
    .with_argument("description", "Goods description.")
    .with_argument("preference_code", "Preference claimed, or NULL.")
    .with_argument("duty_rate", "Duty rate applied, percent.")
    .with_argument("duties_paid", "Duties and taxes assessed.")
    .with_sql_example(
        "```sql\n> SELECT importer_id, SUM(risk_score(...) * revenue_at_risk(...)) AS expected_revenue_at_risk\n  FROM declarations GROUP BY importer_id ORDER BY 2 DESC LIMIT 10;\n```",
    )
    .with_related_udf("risk_score")
    .build()
});

pub struct Assessed {
    pub duty_rate: Option<f64>,
    pub duties_paid: Option<f64>,
}

/// The revenue at stake for one item.
pub fn at_stake(
    model: &RiskModel,
    declared: &Declared,
    origin: &DeclaredOrigin,
    description: Option<&str>,
    assessed: &Assessed,
    scratch: &mut aduana_model::classifier::Scratch,
) -> Option<f64> {
    let value = declared.value;
    if !(value > 0.0 && value.is_finite()) {
        return None;
    }
    let mut buffer = [0u8; MAX_DIGITS];
    let digits = normalize(declared.hs_code, &mut buffer)?;
    let facts = &model.origins;
    let duty = assessed
        .duty_rate
        .or_else(|| facts.duty_rate(digits))
        .unwrap_or(0.0)
        / 100.0;
    // Effective tax on value, and the tax (VAT) that also falls on duty:
    // duties_paid = value * (duty + vat * (1 + duty)).
    let effective = assessed
        .duties_paid
        .filter(|d| d.is_finite() && *d >= 0.0)
        .map_or(duty, |d| d / value);
    let vat = ((effective - duty) / (1.0 + duty)).max(0.0);
    let mut stake = 0.0;

    if let Some(d) = deviation(model, declared).filter(|d| d.z <= Z_DOUBT) {
        let amount = if d.per_kg {
            declared.net_mass.unwrap_or(0.0)
        } else {
            declared.quantity
        };
        let reference_value = amount * d.reference.exp();
        stake += (reference_value - value).max(0.0) * effective;
    }

    if let Some(description) = description {
        let hs6 = std::str::from_utf8(&digits[..6]).unwrap_or_default();
        let classifier = &model.classifier;
        if let Some(p) = classifier.predict(description, classifier.class_index(hs6), scratch)
            && 1.0 - p.declared_probability >= CODE_DOUBT
        {
            let likely = classifier.classes[p.best as usize].as_bytes();
            if likely != &digits[..6]
                && let Some(rate) = facts.duty_rate(likely)
            {
                stake += value * (rate / 100.0 - duty).max(0.0) * (1.0 + vat);
            }
        }
    }

    if let Some(s) = signals(model, origin, model.manifest.min_cell_size) {
        let remedy = match origin.day {
            Some(day) if s.deflection >= 1.0 || s.other_dispatch > 0.5 => facts
                .remedies_on(digits, day)
                .filter(|r| {
                    aduana_model::pack_country(origin.origin.trim().as_bytes()) != Some(r.country)
                })
                .map(|r| r.rate)
                .fold(0.0, f64::max),
            _ => 0.0,
        };
        let preference = if s.preference >= 1.0 {
            (facts.duty_rate(digits).unwrap_or(0.0) / 100.0 - duty).max(0.0) * 100.0
        } else {
            0.0
        };
        stake += value * remedy.max(preference) / 100.0 * (1.0 + vat);
    }
    Some((stake * 100.0).round() / 100.0)
}

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
        let rate = arrays[ITEM_ARGS].as_primitive::<Float64Type>();
        let paid = arrays[ITEM_ARGS + 1].as_primitive::<Float64Type>();
        let f = |a: &Float64Array, i: usize| a.is_valid(i).then(|| a.value(i));
        let mut scratch = aduana_model::classifier::Scratch::default();
        let result = float_result(rows, |i| {
            if items.is_null(i) {
                return None;
            }
            let assessed = Assessed {
                duty_rate: f(rate, i),
                duties_paid: f(paid, i),
            };
            at_stake(
                model,
                &items.declared(i),
                &items.origin(i, None),
                items.description(i),
                &assessed,
                &mut scratch,
            )
        });
        finish(&args.args, Arc::new(result))
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}
