//! The unsupervised evidence of an item as sentences an auditor can check.

use crate::hs::{MAX_DIGITS, normalize};
use crate::origin_signals::{DeclaredOrigin, signals};
use crate::thresholds::*;
use crate::valuation::{Declared, deviation, importer_shift_of, month_index};
use crate::{Level, RiskModel, cell_key, pack_country, unpack_country};

/// From this many times the usual share of markedly low prices, the
/// importer's record is worth a sentence.
pub const RECORD_REASON: f64 = 2.0;

/// ...for an item whose own price is at least this far below reference.
pub const RECORD_ITEM_Z: f64 = -1.0;

/// `YYYY-MM-DD` of days since 1970.
pub fn date_text(days: i32) -> String {
    let month = month_index(days) as i64;
    let (year, month) = (month.div_euclid(12), month.rem_euclid(12) + 1);
    // Day of month: days since the first of that month.
    let first = days_from_civil(year, month);
    format!("{year:04}-{month:02}-{:02}", days as i64 - first + 1)
}

pub fn days_from_civil(year: i64, month: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

pub fn cell_name(level: Level, digits: &[u8], origin: &str) -> String {
    let code = |n: usize| String::from_utf8_lossy(&digits[..n.min(digits.len())]).into_owned();
    match level {
        Level::LineOrigin => format!("line {} from {origin}", code(digits.len())),
        Level::Hs6Origin => format!("HS {} from {origin}", code(6)),
        Level::Hs6 => format!("HS {}, all origins", code(6)),
        Level::Hs4 => format!("heading {}, all origins", code(4)),
    }
}

pub struct Item<'a> {
    pub declared: Declared<'a>,
    pub origin: DeclaredOrigin<'a>,
    pub description: Option<&'a str>,
}

/// The sentences for one item.
pub fn reasons(
    model: &RiskModel,
    item: &Item,
    scratch: &mut crate::classifier::Scratch,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut buffer = [0u8; MAX_DIGITS];
    let Some(digits) = normalize(item.declared.hs_code, &mut buffer) else {
        return vec![format!("malformed HS code {:?}", item.declared.hs_code)];
    };
    let origin = item.origin.origin.trim().to_ascii_uppercase();
    let found = deviation(model, &item.declared);
    // The deviation `valuation_deviation` reports and the flags test: the
    // item's own z moved by the importer's pricing record, so that the
    // sentence and the column never disagree.
    let shift = item
        .origin
        .importer
        .map_or(0.0, |importer| importer_shift_of(model, importer));
    if let Some(d) = found.as_ref().filter(|d| d.z + shift <= VALUATION_FLAG_Z) {
        let below = (1.0 - (d.log_value - d.reference).exp()) * 100.0;
        let per = if d.per_kg { " per kg" } else { "" };
        let record = if shift.abs() >= 0.05 {
            format!(", {shift:+.1} of it from the importer's pricing record")
        } else {
            String::new()
        };
        out.push(format!(
            "unit value{per} {below:.0}% below the reference for {} (z = {:.1}{record}, {} references)",
            cell_name(d.level, digits, &origin),
            d.z + shift,
            d.profile.n
        ));
    }
    // The importer's record matters for an item itself priced low.
    if let (Some(importer), true) = (
        item.origin.importer,
        found.is_some_and(|d| d.z <= RECORD_ITEM_Z),
    ) {
        let (ratio, record) = model.origins.low_price_ratio(importer);
        if ratio >= RECORD_REASON {
            out.push(format!(
                "the importer declared {} of {} items markedly below their reference in the model's window ({ratio:.1} times the usual share)",
                record.low, record.items
            ));
        }
    }
    if let Some(description) = item.description {
        let hs6 = String::from_utf8_lossy(&digits[..6]).into_owned();
        let classifier = &model.classifier;
        if let Some(p) = classifier.predict(description, classifier.class_index(&hs6), scratch) {
            let wrong = 1.0 - p.declared_probability;
            let best = &classifier.classes[p.best as usize];
            if wrong >= CLASSIFICATION_FLAG && *best != hs6 {
                out.push(format!(
                    "description names goods of HS {best} (p = {:.2}), declared HS {hs6}",
                    p.best_probability
                ));
            }
        }
    }
    let facts = &model.origins;
    if let (Some(s), Some(origin_code)) = (
        signals(model, &item.origin, model.manifest.min_cell_size),
        pack_country(origin.as_bytes()),
    ) {
        let hs6 = String::from_utf8_lossy(&digits[..6]).into_owned();
        let share = cell_key(Level::Hs6Origin, digits, Some(origin_code))
            .and_then(|k| facts.hs6_origin.get(&k));
        if s.rare_origin > 0.0 {
            match share {
                Some(o) => out.push(format!(
                    "origin {origin} is {:.1}% of HS {hs6} imports",
                    o.share * 100.0
                )),
                None => out.push(format!("origin {origin} never seen for HS {hs6}")),
            }
        }
        if s.other_dispatch > 0.0
            && let Some(export) = item.origin.export
        {
            let export = export.trim().to_ascii_uppercase();
            let hub = pack_country(export.as_bytes())
                .and_then(|e| facts.dispatch.get(&e))
                .copied()
                .unwrap_or(0.0);
            if hub > 0.5 {
                out.push(format!(
                    "dispatched from {export}, a transshipment hub ({:.0}% of its consignments are other countries' goods)",
                    hub * 100.0
                ));
            } else {
                out.push(format!(
                    "dispatched from {export}, not from the origin {origin}"
                ));
            }
        }
        if s.deflection > 0.0
            && let Some(day) = item.origin.day
        {
            for r in facts
                .remedies_on(digits, day)
                .filter(|r| r.country != origin_code)
            {
                let shift = match share.and_then(|o| o.share_before.zip(o.share_after)) {
                    Some((b, a)) => format!(
                        "; {origin}'s share went from {:.0}% to {:.0}%",
                        b * 100.0,
                        a * 100.0
                    ),
                    None => String::new(),
                };
                out.push(format!(
                    "HS {hs6} from {} pays {:.0}% more under a trade remedy since {}{shift}",
                    unpack_country(r.country),
                    r.rate,
                    date_text(r.from)
                ));
            }
        }
        if s.preference >= 1.0
            && let Some(code) = item.origin.preference
        {
            out.push(format!(
                "preference {} claimed on goods dispatched from a third country",
                code.trim()
            ));
        }
        if s.new_for_importer > 0.0 {
            out.push(format!(
                "first import of HS {hs6} from {origin} by this importer, who buys it elsewhere"
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(date_text(0), "1970-01-01");
        assert_eq!(date_text(20_779), "2026-11-22");
        assert_eq!(date_text(19_782), "2024-02-29");
        assert_eq!(date_text(-1), "1969-12-31");
    }
}
