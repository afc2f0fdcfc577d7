//! The learned model's reasons: an item's strongest contributions to its
//! fraud probability, as sentences an auditor can check against the
//! inspection record ("the declarant: fraud found in 12 of 40 past
//! inspections (30%, 14 times the usual 2.1%)").

use super::LearnedModel;
use super::features::{FEATURES, ITEM_FEATURES, ItemColumns, PER_ENTITY};
use super::profiles::{ENTITIES, Entity, Tally};

/// A contribution (change of log-odds) below this is not worth a sentence.
pub const MIN_LOG_ODDS: f64 = 0.25;
/// An entity inspected fewer times than this is "little known".
const NEW_PARTY: f64 = 5.0;
/// At most this many sentences per item.
pub const MAX_REASONS: usize = 3;

impl LearnedModel {
    /// Sentences for each item of the batch, strongest first: those that
    /// raised its probability much, else the one that raised it most;
    /// empty only when nothing raised it or nothing that did can be said.
    pub fn reasons(&self, items: &ItemColumns) -> Vec<Vec<String>> {
        let rows = items.len();
        let (keys, matrix) = self.features(items);
        let contributions = self.fraud.contributions_of_all(&matrix, rows, FEATURES);
        (0..rows)
            .map(|row| {
                let parts = &contributions[row * FEATURES..][..FEATURES];
                let value = |f: usize| matrix[f * rows + row];
                // An entity's rate and inspection count speak together.
                let mut grouped: Vec<(f64, Reason)> = (0..ITEM_FEATURES.len())
                    .map(|f| (parts[f], Reason::Item(f)))
                    .collect();
                for (e, entity) in ENTITIES.iter().enumerate() {
                    // A field not declared is nobody's record.
                    let Some(key) = keys.get(e, row) else {
                        continue;
                    };
                    let f = ITEM_FEATURES.len() + e * PER_ENTITY;
                    let tally = self.profiles.tally(e, key);
                    grouped.push((parts[f] + parts[f + 1], Reason::Entity(*entity, tally)));
                }
                // Contributions to the calibrated log-odds: scaled by the
                // Platt slope.
                let slope = self.calibration[0];
                grouped.retain(|(c, _)| *c > 0.0);
                grouped.sort_by(|a, b| b.0.total_cmp(&a.0));
                let strong: Vec<String> = grouped
                    .iter()
                    .filter(|(c, _)| c * slope >= MIN_LOG_ODDS)
                    .filter_map(|(_, reason)| self.sentence(reason, &value))
                    .take(MAX_REASONS)
                    .map(|text| format!("learned from inspections: {text}"))
                    .collect();
                if !strong.is_empty() {
                    return strong;
                }
                // Many small contributions and none strong: the largest
                // that can be said still is, so that an item the model
                // ranks high never comes without a reason (an item with no
                // tariff line has no revenue at stake to quote, and its
                // probability rests on the rest).
                grouped
                    .iter()
                    .filter_map(|(_, reason)| self.sentence(reason, &value))
                    .take(1)
                    .map(|text| {
                        format!(
                            "learned from inspections, many small signals and none strong; \
                             the largest: {text}"
                        )
                    })
                    .collect()
            })
            .collect()
    }

    fn sentence(&self, reason: &Reason, value: &dyn Fn(usize) -> f64) -> Option<String> {
        let overall = self.profiles.overall_rate;
        let text = match *reason {
            Reason::Entity(entity, Some(t)) if t.frauds > 0.0 => {
                let rate = t.frauds / t.inspections;
                format!(
                    "{}: fraud found in {} of {} past inspections ({:.0}%, {:.1} times the usual {:.1}%)",
                    entity.description(),
                    t.frauds,
                    t.inspections,
                    100.0 * rate,
                    rate / overall.max(1e-9),
                    100.0 * overall
                )
            }
            // A party with little or no record: risk the model gives the
            // unknown, worth saying as such.
            Reason::Entity(entity, tally) if tally.map_or(0.0, |t| t.inspections) < NEW_PARTY => {
                format!(
                    "{}: {} past inspections (little known)",
                    entity.description(),
                    tally.map_or(0.0, |t| t.inspections)
                )
            }
            Reason::Entity(..) => return None,
            Reason::Item(f) => {
                let v = value(f);
                if v.is_nan() {
                    return None;
                }
                match ITEM_FEATURES[f] {
                    "valuation_deviation" => {
                        format!("price {v:.1} robust deviations from its reference")
                    }
                    "misclassification_probability" => {
                        format!("description points to another code (probability {v:.2})")
                    }
                    "origin_risk" => format!("origin signals (origin risk {v:.2})"),
                    "log_revenue_at_risk" => format!("revenue at stake {:.0}", v.exp_m1()),
                    "log_customs_value" => format!("customs value {:.0}", v.exp()),
                    "log_net_mass" => format!("net mass {:.1} kg", v.exp()),
                    "log_value_per_kg" => format!("value {:.2} per kg", v.exp()),
                    "log_quantity" => format!("quantity {:.1}", v.exp()),
                    "duty_rate" => format!("duty rate {v:.1}%"),
                    "preference_claimed" if v > 0.5 => "a tariff preference claimed".into(),
                    "preference_claimed" => "no tariff preference claimed".into(),
                    "origin_not_dispatch" if v > 0.5 => {
                        "dispatched from another country than its origin".into()
                    }
                    _ => return None,
                }
            }
        };
        Some(text)
    }
}

enum Reason {
    Item(usize),
    Entity(Entity, Option<Tally>),
}
