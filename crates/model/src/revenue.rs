//! Revenue at stake: the duties and taxes at stake if an item's doubts are
//! confirmed, in national currency; impact, kept apart from probability.
//!
//! - price: the gap between the reference value (quantity × reference unit
//!   value) and the declared value, at the item's own effective tax rate
//!   (duties_paid / customs_value), when the price is flagged (`thresholds::VALUATION_FLAG_Z`);
//! - classification: the extra duty of the code the description suggests
//!   over the declared rate, plus the tax on that duty, when the code is
//!   flagged (`thresholds::CLASSIFICATION_FLAG`);
//! - origin: the remedy duty avoided when the goods may be deflected from a
//!   country under a remedy, or the MFN duty when a preference is claimed on
//!   goods dispatched from a third country (the larger of the two).

use crate::RiskModel;
use crate::classifier::Prediction;
use crate::hs::{MAX_DIGITS, normalize};
use crate::origin_signals::{DeclaredOrigin, OriginSignals, signals};
use crate::thresholds::{CLASSIFICATION_FLAG, VALUATION_FLAG_Z};
use crate::valuation::{Declared, Deviation, deviation};

/// The highest duty or effective tax rate taken as declared, in percent.
/// Real tariff peaks reach a few hundred percent (tobacco, rice); a rate
/// above this is a keying error (duties entered in the wrong currency unit,
/// a value of a few cents), and trusting it would put an absurd amount at
/// stake (duties paid of 10^16 on a value of 0.01) at the top of every
/// ranking and past what the trader sums can hold. Such an item is judged
/// at its tariff's rate instead.
pub const MAX_TAX_RATE: f64 = 1000.0;

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
    scratch: &mut crate::classifier::Scratch,
) -> Option<f64> {
    if !(declared.value > 0.0 && declared.value.is_finite()) {
        return None; // As `at_stake_of`, before the work it would discard.
    }
    let mut buffer = [0u8; MAX_DIGITS];
    let digits = normalize(declared.hs_code, &mut buffer)?;
    let found = Found {
        deviation: deviation(model, declared),
        prediction: description.and_then(|d| model.classifier.predict_declared(d, digits, scratch)),
        signals: signals(model, origin, model.manifest.min_cell_size),
    };
    at_stake_of(model, declared, origin, assessed, digits, &found)
}

/// What the other evidence functions found of an item, which the revenue
/// at stake prices.
pub struct Found<'m> {
    /// `valuation::deviation` of the item as declared (with its month).
    pub deviation: Option<Deviation<'m>>,
    /// The classifier's prediction for its description.
    pub prediction: Option<Prediction>,
    /// Its origin signals (those priced do not depend on the importer).
    pub signals: Option<OriginSignals>,
}

/// [`at_stake`] from what was found of the item (`digits`: its code,
/// normalized).
pub fn at_stake_of(
    model: &RiskModel,
    declared: &Declared,
    origin: &DeclaredOrigin,
    assessed: &Assessed,
    digits: &[u8],
    found: &Found,
) -> Option<f64> {
    let value = declared.value;
    if !(value > 0.0 && value.is_finite()) {
        return None;
    }
    let facts = &model.origins;
    let duty = assessed
        .duty_rate
        .filter(|rate| (0.0..=MAX_TAX_RATE).contains(rate))
        .or_else(|| facts.duty_rate(digits))
        .unwrap_or(0.0)
        / 100.0;
    // Effective tax on value, and the tax (VAT) that also falls on duty:
    // duties_paid = value * (duty + vat * (1 + duty)).
    let effective = assessed
        .duties_paid
        .map(|d| d / value)
        .filter(|rate| (0.0..=MAX_TAX_RATE / 100.0).contains(rate))
        .unwrap_or(duty);
    let vat = ((effective - duty) / (1.0 + duty)).max(0.0);
    let mut stake = 0.0;

    if let Some(d) = found.deviation.as_ref().filter(|d| d.z <= VALUATION_FLAG_Z) {
        let amount = if d.per_kg {
            declared.net_mass.unwrap_or(0.0)
        } else {
            declared.quantity
        };
        let reference_value = amount * d.reference.exp();
        stake += (reference_value - value).max(0.0) * effective;
    }

    if let Some(p) = &found.prediction
        && 1.0 - p.declared_probability >= CLASSIFICATION_FLAG
    {
        let likely = model.classifier.classes[p.best as usize].as_bytes();
        if likely != &digits[..6]
            && let Some(rate) = facts.duty_rate(likely)
        {
            stake += value * (rate / 100.0 - duty).max(0.0) * (1.0 + vat);
        }
    }

    if let Some(s) = &found.signals {
        let remedy = match origin.day {
            Some(day) if s.deflection >= 1.0 || s.other_dispatch > 0.5 => facts
                .remedies_on(digits, day)
                .filter(|r| crate::pack_country(origin.origin.trim().as_bytes()) != Some(r.country))
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
    Some((stake * 100.0).round() / 100.0).filter(|stake| stake.is_finite())
}
