//! An item's unsupervised evidence in one pass: the valuation deviation,
//! the probability of a wrong code, the origin score and the revenue at
//! stake, each exactly as its own function gives it
//! (`valuation_deviation`, `hs_misclassification_probability`,
//! `origin_risk`, `revenue_at_risk`).
//!
//! Why one pass: the revenue at stake prices what the other three find
//! (the price gap of the deviation, the code the classifier suggests, the
//! origin signals), so four separate functions work out the deviation and
//! the classifier's prediction twice and the signals twice; scoring every
//! item of a warehouse spent about 40% of its evidence time on the copies.

use crate::RiskModel;
use crate::classifier::Scratch;
use crate::hs::{MAX_DIGITS, normalize};
use crate::misclassification::{Priced, wrong_code_probability};
use crate::origin_signals::{DeclaredOrigin, WEIGHTS, signals_of_product};
use crate::revenue::{Assessed, Found, at_stake_of};
use crate::valuation::{Declared, deviation, month_index};

/// One item's inputs (`None`: NULL).
pub struct Item<'a> {
    pub hs_code: Option<&'a str>,
    pub origin: Option<&'a str>,
    pub export: Option<&'a str>,
    pub value: Option<f64>,
    pub quantity: Option<f64>,
    pub unit: Option<&'a str>,
    pub net_mass: Option<f64>,
    pub day: Option<i32>,
    pub description: Option<&'a str>,
    pub preference: Option<&'a str>,
    pub assessed: Assessed,
    /// The importer as `importer_hash`, with its pricing record's shift
    /// (`valuation::importer_shift_of`): callers work both out once per run
    /// of rows of one importer.
    pub importer: Option<(u64, f64)>,
    /// `origin_signals::product_key` of the code, likewise once per run.
    pub product: Option<u64>,
}

/// The four evidence columns of an item; each `None` where its own
/// function gives NULL.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Evidence {
    pub value_z: Option<f64>,
    pub p_wrong_code: Option<f64>,
    pub origin_score: Option<f64>,
    pub at_stake: Option<f64>,
}

/// The evidence of one item; `scratch` is reused across items.
pub fn evidence(model: &RiskModel, item: &Item, scratch: &mut Scratch) -> Evidence {
    let mut out = Evidence::default();
    let Some(hs_code) = item.hs_code else {
        return out;
    };
    let mut buffer = [0u8; MAX_DIGITS];
    let digits = normalize(hs_code, &mut buffer);
    let prediction = match (digits, item.description) {
        (Some(digits), Some(description)) => {
            model
                .classifier
                .predict_declared(description, digits, scratch)
        }
        _ => None,
    };
    if let (Some(digits), Some(p)) = (digits, &prediction) {
        let priced = match (item.value, item.quantity) {
            (Some(value), Some(quantity)) => Some(Priced {
                origin: item.origin.unwrap_or(""),
                value,
                quantity,
                unit: item.unit,
                net_mass: item.net_mass,
            }),
            _ => None,
        };
        out.p_wrong_code = Some(wrong_code_probability(
            model,
            hs_code,
            digits,
            p,
            priced.as_ref(),
        ));
    }
    let Some(origin) = item.origin else {
        return out;
    };
    let declared_origin = DeclaredOrigin {
        hs_code,
        origin,
        export: item.export,
        preference: item.preference,
        importer: item.importer.map(|(hash, _)| hash),
        day: item.day,
    };
    let signals = item.product.and_then(|hs6| {
        signals_of_product(model, &declared_origin, hs6, model.manifest.min_cell_size)
    });
    out.origin_score = signals.as_ref().map(|s| s.score(&WEIGHTS));
    let Some(value) = item.value else {
        return out;
    };
    let declared = Declared {
        hs_code,
        origin,
        value,
        // Missing: valued per kg of net mass when the reference has it.
        quantity: item.quantity.unwrap_or(f64::NAN),
        unit: item.unit,
        net_mass: item.net_mass,
        month: item.day.map(month_index),
    };
    let found = Found {
        deviation: deviation(model, &declared),
        prediction,
        signals,
    };
    let shift = item.importer.map_or(0.0, |(_, shift)| shift);
    out.value_z = found.deviation.as_ref().map(|d| d.z + shift);
    out.at_stake = digits.and_then(|digits| {
        at_stake_of(
            model,
            &declared,
            &declared_origin,
            &item.assessed,
            digits,
            &found,
        )
    });
    out
}
