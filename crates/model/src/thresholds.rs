//! The thresholds at which evidence becomes a flag or a sentence: one
//! home, so reports, reasons and the dashboard agree on what "flagged"
//! means.

/// A unit value at least this many robust standard deviations below its
/// reference is flagged for valuation.
pub const VALUATION_FLAG_Z: f64 = -2.0;
/// A misclassification probability at or above this is flagged.
pub const CLASSIFICATION_FLAG: f64 = 0.5;
/// An origin risk at or above this is flagged.
pub const ORIGIN_FLAG: f64 = 0.5;

/// The kinds of fraud an item's evidence flags, in a fixed order.
pub fn flags(
    z: Option<f64>,
    misclassification: Option<f64>,
    origin: Option<f64>,
) -> Vec<&'static str> {
    let mut out = Vec::with_capacity(3);
    if z.is_some_and(|z| z <= VALUATION_FLAG_Z) {
        out.push("valuation");
    }
    if misclassification.is_some_and(|p| p >= CLASSIFICATION_FLAG) {
        out.push("classification");
    }
    if origin.is_some_and(|o| o >= ORIGIN_FLAG) {
        out.push("origin");
    }
    out
}
