//! Misclassification evidence beyond the description: whether the price
//! fits the declared code or the likelier one, and the duty incentive to
//! declare one for the other.

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
