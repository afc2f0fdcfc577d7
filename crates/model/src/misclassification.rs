//! Misclassification evidence beyond the description: whether the price
//! fits the declared code or the likelier one, and the duty incentive to
//! declare one for the other.

use crate::RiskModel;
use crate::classifier::Prediction;
use crate::valuation::{Declared, deviation};

/// How much a wrong code without a duty advantage counts: an error more
/// often than a fraud, still worth correcting, less worth an audit.
pub const NO_INCENTIVE: f64 = 0.5;

/// 1 when the declared line pays less duty than the likely code (the
/// reason to misclassify), `NO_INCENTIVE` when it pays as much or more, and
/// 1 when either rate is unknown (no tariff: no evidence either way).
/// |z| beyond this counts as this: price tails are heavier than normal,
/// so one odd price must not outweigh the description.
pub const PRICE_Z_CAP: f64 = 3.0;

/// The likelihood ratio of the declared price under the likely code
/// against under the declared code, from the robust z-scores of each
/// (normal densities of the capped z).
pub fn price_fit_ratio(z_declared: f64, z_likely: f64) -> f64 {
    let cap = |z: f64| z.clamp(-PRICE_Z_CAP, PRICE_Z_CAP);
    (0.5 * (cap(z_declared).powi(2) - cap(z_likely).powi(2))).exp()
}

/// The probability that the declared code is wrong, from the classifier's
/// probability of it and the price likelihood ratio (1: no price evidence).
pub fn combine(declared_probability: f64, price_ratio: f64) -> f64 {
    let wrong = (1.0 - declared_probability).clamp(0.0, 1.0);
    let odds = wrong * price_ratio;
    let right = 1.0 - wrong;
    if odds + right == 0.0 {
        return 0.0;
    }
    odds / (odds + right)
}

pub fn incentive(facts: &crate::OriginFacts, declared: &[u8], likely: &[u8]) -> f64 {
    match (facts.duty_rate(declared), facts.duty_rate(likely)) {
        (Some(paid), Some(due)) if due <= paid => NO_INCENTIVE,
        _ => 1.0,
    }
}

/// What an item's price says about its code: the declared value and
/// quantity (both known) and what a price cell is chosen by.
pub struct Priced<'a> {
    pub origin: &'a str,
    pub value: f64,
    pub quantity: f64,
    pub unit: Option<&'a str>,
    pub net_mass: Option<f64>,
}

/// The probability that the declared code `hs_code` (normalized:
/// `digits`) is not the goods described, given the description
/// classifier's `prediction`: its posterior of the declared HS6, moved by
/// how much better the price fits the likely code (when `priced`) and by
/// the duty incentive to declare one for the other.
pub fn wrong_code_probability(
    model: &RiskModel,
    hs_code: &str,
    digits: &[u8],
    prediction: &Prediction,
    priced: Option<&Priced>,
) -> f64 {
    let likely = model.classifier.classes[prediction.best as usize].as_str();
    let price_ratio = match priced {
        Some(p) if likely.as_bytes() != &digits[..6] => {
            // Each code's reference at its centre (no month trend).
            let item = |hs_code| Declared {
                hs_code,
                origin: p.origin,
                value: p.value,
                quantity: p.quantity,
                unit: p.unit,
                net_mass: p.net_mass,
                month: None,
            };
            match (
                deviation(model, &item(hs_code)),
                deviation(model, &item(likely)),
            ) {
                (Some(d), Some(l)) => price_fit_ratio(d.z, l.z),
                _ => 1.0,
            }
        }
        _ => 1.0,
    };
    combine(prediction.declared_probability, price_ratio)
        * incentive(&model.origins, digits, likely.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_move_the_odds_both_ways() {
        // Fits the likely code, not the declared one: more likely wrong.
        assert!(combine(0.5, price_fit_ratio(-2.5, 0.1)) > 0.9);
        // Fits the declared code: less likely wrong.
        assert!(combine(0.5, price_fit_ratio(0.0, 2.5)) < 0.1);
        // No price evidence leaves the classifier's answer.
        assert!((combine(0.3, 1.0) - 0.7).abs() < 1e-12);
        // Certainty stays certainty; caps bound one price's weight.
        assert_eq!(combine(1.0, 1e-9), 0.0);
        assert_eq!(combine(0.0, 1e-9), 1.0);
        assert_eq!(price_fit_ratio(-30.0, 0.0), price_fit_ratio(-3.0, 0.0));
    }
}
