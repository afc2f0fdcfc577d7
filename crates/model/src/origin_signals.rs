//! Origin evidence for `origin_risk`: how doubtful a declared origin is, in
//! [0, 1], from what the model learned of origins.
//!
//! Signals, each a reason a person can check:
//! - the origin is rare or unseen for the product (HS6);
//! - the goods were dispatched from another country, more so from a
//!   transshipment hub (a country that mostly ships other countries' goods);
//! - the product is under a trade remedy against another country, and the
//!   declared origin's share of the product rose after the measure (trade
//!   deflection) or the declared origin is itself a hub;
//! - a preference is claimed, above all on goods dispatched from a third
//!   country (against the direct-consignment rule);
//! - the importer has history with the product but never from this origin.
//!
//! They combine as a noisy-OR: 1 - prod(1 - weight * signal).

use crate::hs::{MAX_DIGITS, normalize};
use crate::{
    IMPORTER_HISTORY, Level, OriginFacts, RiskModel, cell_key, hs6_origin_key, pack_country,
};

/// A share of the product's imports below this makes an origin unusual.
pub const RARE_SHARE: f64 = 0.05;

/// How much each signal weighs in the noisy-OR.
#[derive(Debug, Clone, Copy)]
pub struct Weights {
    pub rare_origin: f64,
    pub other_dispatch: f64,
    pub deflection: f64,
    pub preference: f64,
    pub new_for_importer: f64,
}

pub const WEIGHTS: Weights = Weights {
    rare_origin: 0.6,
    other_dispatch: 0.5,
    deflection: 0.8,
    preference: 0.7,
    new_for_importer: 0.5,
};

/// The signals of one item, each in [0, 1].
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct OriginSignals {
    pub rare_origin: f64,
    pub other_dispatch: f64,
    pub deflection: f64,
    pub preference: f64,
    pub new_for_importer: f64,
}

impl OriginSignals {
    pub fn score(&self, w: &Weights) -> f64 {
        1.0 - [
            w.rare_origin * self.rare_origin,
            w.other_dispatch * self.other_dispatch,
            w.deflection * self.deflection,
            w.preference * self.preference,
            w.new_for_importer * self.new_for_importer,
        ]
        .iter()
        .map(|s| 1.0 - s.clamp(0.0, 1.0))
        .product::<f64>()
    }
}

pub struct DeclaredOrigin<'a> {
    pub hs_code: &'a str,
    pub origin: &'a str,
    pub export: Option<&'a str>,
    pub preference: Option<&'a str>,
    /// The importer, as `importer_hash`.
    pub importer: Option<u64>,
    pub day: Option<i32>,
}

/// The signals for one item; `None` when the code or origin is malformed.
pub fn signals(model: &RiskModel, item: &DeclaredOrigin, min_items: u64) -> Option<OriginSignals> {
    let hs6 = product_key(item.hs_code)?;
    signals_of_product(model, item, hs6, min_items)
}

/// The HS6 cell key of a declared code; `None` when malformed.
pub fn product_key(hs_code: &str) -> Option<u64> {
    let mut buffer = [0u8; MAX_DIGITS];
    cell_key(Level::Hs6, normalize(hs_code, &mut buffer)?, None)
}

/// `signals` for an item whose product (`product_key`) is already known.
pub fn signals_of_product(
    model: &RiskModel,
    item: &DeclaredOrigin,
    hs6: u64,
    min_items: u64,
) -> Option<OriginSignals> {
    let facts: &OriginFacts = &model.origins;
    let origin = pack_country(item.origin.trim().as_bytes())?;
    let hs6_origin = hs6_origin_key(hs6, origin);
    let mut s = OriginSignals::default();

    let product_items = facts.hs6_items.get(&hs6).copied().unwrap_or(0);
    let share = facts.hs6_origin.get(&hs6_origin);
    if product_items >= min_items {
        let fraction = share.map_or(0.0, |o| o.share);
        s.rare_origin = (1.0 - fraction / RARE_SHARE).max(0.0);
    }

    let export = item.export.and_then(|e| pack_country(e.trim().as_bytes()));
    if let Some(export) = export.filter(|&e| e != origin) {
        let hub = facts.dispatch.get(&export).copied().unwrap_or(0.0);
        s.other_dispatch = 0.5 + 0.5 * hub;
    }

    if let Some(day) = item.day.filter(|_| facts.remedy_possible(hs6)) {
        let mut buffer = [0u8; MAX_DIGITS];
        let digits = normalize(item.hs_code, &mut buffer)?;
        let against_others = facts.remedies_on(digits, day).any(|r| r.country != origin);
        if against_others {
            let rose = share.is_some_and(|o| match (o.share_before, o.share_after) {
                (Some(before), Some(after)) => after > 1.5 * before + 0.005,
                _ => false,
            });
            let origin_is_hub = facts.dispatch.get(&origin).is_some_and(|&h| h > 0.5);
            s.deflection = if rose || origin_is_hub { 1.0 } else { 0.4 };
        }
    }

    // A claim alone is weak evidence (honest claims are common); a claim on
    // goods dispatched from a third country breaks the direct-consignment
    // rule of most agreements' rules of origin.
    if item.preference.is_some_and(|p| !p.trim().is_empty()) {
        s.preference = if s.other_dispatch > 0.0 { 1.0 } else { 0.2 };
    }

    if let Some(importer) = item.importer {
        let (history, from_origin) = facts.importers.history(importer, hs6, origin);
        if history >= IMPORTER_HISTORY && !from_origin {
            s.new_for_importer = 1.0;
        }
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noisy_or_stays_in_range_and_grows_with_evidence() {
        let none = OriginSignals::default();
        assert_eq!(none.score(&WEIGHTS), 0.0);
        let one = OriginSignals {
            other_dispatch: 1.0,
            ..none
        };
        let two = OriginSignals {
            deflection: 1.0,
            ..one
        };
        let all = OriginSignals {
            rare_origin: 1.0,
            other_dispatch: 1.0,
            deflection: 1.0,
            preference: 1.0,
            new_for_importer: 1.0,
        };
        assert!((one.score(&WEIGHTS) - 0.5).abs() < 1e-12);
        assert!(two.score(&WEIGHTS) > one.score(&WEIGHTS));
        assert!(all.score(&WEIGHTS) < 1.0 && all.score(&WEIGHTS) > two.score(&WEIGHTS));
    }
}
