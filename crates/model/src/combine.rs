//! The unsupervised combination: a valuation z-score made a probability-like
//! value, the three kinds of evidence combined as a weighted noisy-OR, the
//! blend with the learned probability, and the risk levels.

/// Midpoint and steepness of the valuation curve.
pub const Z_MIDPOINT: f64 = -2.0;

pub const Z_STEEPNESS: f64 = 2.0;

/// Weights of valuation, classification and origin in the noisy-OR. Origin
/// weighs less: its signals are individually weaker (dispatch via a hub is
/// often legitimate).
pub const WEIGHTS: [f64; 3] = [0.9, 0.9, 0.6];

/// Default thresholds of `risk_level`.
pub const MEDIUM: f64 = 0.3;

pub const HIGH: f64 = 0.6;

/// The probability-like value of a valuation z-score.
pub fn valuation_probability(z: f64) -> f64 {
    1.0 / (1.0 + (Z_STEEPNESS * (z - Z_MIDPOINT)).exp())
}

pub fn risk_score(z: Option<f64>, misclassification: Option<f64>, origin: Option<f64>) -> f64 {
    let parts = [
        z.filter(|v| v.is_finite())
            .map_or(0.0, valuation_probability),
        misclassification.map_or(0.0, |p| p.clamp(0.0, 1.0)),
        origin.map_or(0.0, |p| p.clamp(0.0, 1.0)),
    ];
    1.0 - parts
        .iter()
        .zip(WEIGHTS)
        .map(|(p, w)| 1.0 - w * p)
        .product::<f64>()
}

/// The score of an item from the unsupervised `score` and the learned
/// `probability` (when there is one), with the learned model's `weight`.
/// The probability enters as its lift over `base_rate` (the fraud rate of
/// the labelled items), `p / (p + base_rate)`: an item as likely as the
/// average inspected one scores 0.5, three times as likely 0.75. A
/// calibrated probability is a few percent for nearly every item, which
/// the risk levels' thresholds (0.3, 0.6) and the unsupervised scale do
/// not fit; `fraud_probability` itself stays published as the probability.
pub fn blend(score: f64, probability: Option<f64>, weight: f64, base_rate: f64) -> f64 {
    match probability.filter(|p| p.is_finite()) {
        Some(p) => {
            let p = p.clamp(0.0, 1.0);
            let lift = if p + base_rate > 0.0 {
                p / (p + base_rate)
            } else {
                0.0
            };
            weight * lift + (1.0 - weight) * score
        }
        None => score,
    }
}

/// [`blend`] of `score` and `probability` with `weight`, turned from the
/// lift back into a probability (`r s / (1 - s)`, the inverse of `p / (p +
/// r)`): the learned probability itself at weight 1, and in between a
/// probability that leans on the evidence as the blend does.
pub fn blended_probability(score: f64, probability: f64, weight: f64, base_rate: f64) -> f64 {
    let s = blend(score, Some(probability), weight, base_rate);
    if s >= 1.0 {
        1.0
    } else {
        (base_rate * s / (1.0 - s)).clamp(0.0, 1.0)
    }
}

pub fn risk_level(score: f64, medium: f64, high: f64) -> &'static str {
    if score >= high {
        "high"
    } else if score >= medium {
        "medium"
    } else {
        "low"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_combine_reasons() {
        assert!((valuation_probability(-2.0) - 0.5).abs() < 1e-12);
        assert!(valuation_probability(-3.5) > 0.94 && valuation_probability(0.0) < 0.02);
        assert_eq!(risk_score(None, None, None), 0.0);
        let one = risk_score(Some(-3.5), None, None);
        let two = risk_score(Some(-3.5), Some(0.9), None);
        assert!(two > one && two <= 1.0);
        assert!(
            risk_score(Some(3.0), Some(0.0), Some(0.0)) < 0.01,
            "high prices are not a reason"
        );
        assert!((risk_score(Some(-3.5), Some(0.1), Some(0.2)) - 0.886).abs() < 0.001);
    }

    #[test]
    fn a_blended_probability_is_the_learned_one_at_full_weight() {
        let r = 0.05;
        for p in [0.0, 0.01, 0.05, 0.3, 0.9] {
            assert!(
                (blended_probability(0.8, p, 1.0, r) - p).abs() < 1e-12,
                "{p}"
            );
        }
        // At weight 0 the evidence alone: a score of 0.5 is the base rate.
        assert!((blended_probability(0.5, 0.9, 0.0, r) - r).abs() < 1e-12);
        // In between, strong evidence raises a low learned probability.
        let low = 0.001;
        assert!(blended_probability(0.95, low, 0.12, r) > blended_probability(0.1, low, 0.12, r));
        assert!(blended_probability(0.95, low, 0.12, r) > low);
        assert_eq!(blended_probability(1.0, 1.0, 0.5, r), 1.0);
    }

    #[test]
    fn levels() {
        assert_eq!(risk_level(0.72, MEDIUM, HIGH), "high");
        assert_eq!(risk_level(0.72, 0.5, 0.8), "medium");
        assert_eq!(risk_level(0.1, MEDIUM, HIGH), "low");
    }
}
