//! What the model knows of each importer: the origins it buys each product
//! from, and its pricing record.
//!
//! `origin_risk` asks, for every item, how often the importer bought the
//! product and whether ever from the declared origin. Both answers sit in
//! one 32-byte slot per (importer, HS6) pair, so an item costs one probe
//! of one hash table, in one cache line: the item count and up to eleven
//! origins inline, with a side set for the rare pair bought from more.
//! (Four inline origins in 16 bytes were measured slower: on a 10-million
//! item warehouse half the pairs spilled, and the side-set probe was a
//! second cache miss.)

use crate::flat::{prefetch_slot, slot_of};

/// An importer needs this many items of a product before a new origin for
/// it is a signal; shorter histories are not kept.
pub const IMPORTER_HISTORY: u64 = 3;

/// Origins stored inline per pair; a pair with more spills to a side set.
const INLINE_ORIGINS: usize = 11;
/// Item counts saturate here; the top bit of the count marks a pair whose
/// origins spilled to the side set.
const ITEMS_MAX: u16 = 0x7FFF;
const OVERFLOW: u16 = 0x8000;

/// The (importer, product) key: a 64-bit mix of both hashes.
/// Never 0, which marks an empty slot.
fn pair_key(importer: u64, hs6: u64) -> u64 {
    (importer ^ hs6.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29)) | 1
}

fn origin_key(pair: u64, origin: u16) -> u64 {
    pair ^ (origin as u64 + 1).wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
}

/// A packed country code (never 0, and below 2^10) as stored in a slot.
fn origin_code(origin: u64) -> u16 {
    (origin & 0xFFFF) as u16
}

/// One pair's history: a cache line holds two slots and a slot never
/// straddles lines.
#[derive(Debug, Clone, Copy, Default)]
#[repr(C, align(32))]
struct Slot {
    /// `pair_key`; 0 marks an empty slot.
    key: u64,
    /// Packed origin codes; 0 marks an unused entry.
    origins: [u16; INLINE_ORIGINS],
    /// Items, with `OVERFLOW` set when origins spilled.
    items: u16,
}

impl Slot {
    fn has_origin(&self, code: u16) -> bool {
        // A fixed-length scan without early exit, which the compiler
        // turns into a few vector compares.
        self.origins
            .iter()
            .fold(false, |found, &o| found | (o == code))
    }
}

/// Per (importer, HS6): items, and the origins the importer bought it from.
///
/// Built in a hash map, then frozen (`freeze`) into a flat open-addressing
/// table laid out as `FlatTable`'s (its own, for slots aligned to half a
/// cache line), so a batch can prefetch its rows' slots.
#[derive(Debug, Default)]
pub struct ImporterHistory {
    building: hashbrown::HashMap<u64, Slot>,
    /// Power-of-two length.
    table: Vec<Slot>,
    overflow: hashbrown::HashSet<u64>,
}

impl ImporterHistory {
    /// Adds `items` of the product (`hs6`, a cell key) to the importer's
    /// history (both as hashes); counts saturate at 32,767.
    pub fn add_items(&mut self, importer: u64, hs6: u64, items: u64) {
        let slot = self.building.entry(pair_key(importer, hs6)).or_default();
        let total = ((slot.items & ITEMS_MAX) as u64 + items).min(ITEMS_MAX as u64);
        slot.items = (slot.items & OVERFLOW) | total as u16;
    }

    /// Records that the importer bought the product from `origin` (a packed
    /// country code).
    pub fn add_origin(&mut self, importer: u64, hs6: u64, origin: u64) {
        let key = pair_key(importer, hs6);
        let slot = self.building.entry(key).or_default();
        let code = origin_code(origin);
        if slot.has_origin(code) {
            return;
        }
        match slot.origins.iter_mut().find(|o| **o == 0) {
            Some(free) => *free = code,
            None => {
                slot.items |= OVERFLOW;
                self.overflow.insert(origin_key(key, code));
            }
        }
    }

    /// Ends building: lays the pairs with at least `min_items` items out
    /// for lookups (the others answer as unknown: too short a history to
    /// judge by, and the smaller table stays in cache). Pairs added later
    /// need another `freeze`.
    pub fn freeze(&mut self, min_items: u64) {
        let long_enough = |slot: &Slot| (slot.items & ITEMS_MAX) as u64 >= min_items;
        let kept = self.building.values().filter(|s| long_enough(s)).count();
        let capacity = (kept * 2).next_power_of_two().max(16);
        let mut table = vec![Slot::default(); capacity];
        for (&key, slot) in self.building.iter().filter(|(_, s)| long_enough(s)) {
            let mut at = slot_of(key, capacity);
            while table[at].key != 0 {
                at = (at + 1) & (capacity - 1);
            }
            table[at] = Slot { key, ..*slot };
        }
        self.table = table;
        self.building = hashbrown::HashMap::new();
    }

    /// Asks the CPU to start loading the pair's slot (a hint: no effect on
    /// results).
    #[inline]
    pub fn prefetch(&self, importer: u64, hs6: u64) {
        prefetch_slot(&self.table, pair_key(importer, hs6));
    }

    /// Items of the product the importer declared, and whether any came
    /// from `origin`.
    #[inline]
    pub fn history(&self, importer: u64, hs6: u64, origin: u64) -> (u64, bool) {
        if self.table.is_empty() {
            return (0, false);
        }
        let key = pair_key(importer, hs6);
        let mask = self.table.len() - 1;
        let mut at = slot_of(key, self.table.len());
        let slot = loop {
            match &self.table[at] {
                s if s.key == key => break s,
                s if s.key == 0 => return (0, false),
                _ => at = (at + 1) & mask,
            }
        };
        let code = origin_code(origin);
        let from_origin = slot.has_origin(code)
            || (slot.items & OVERFLOW != 0 && self.overflow.contains(&origin_key(key, code)));
        ((slot.items & ITEMS_MAX) as u64, from_origin)
    }

    pub fn pairs(&self) -> usize {
        self.building.len() + self.table.iter().filter(|s| s.key != 0).count()
    }
}

/// An importer's pricing record over the training window: items with a
/// price reference, and how many of them were markedly low (z below
/// `MARKEDLY_LOW_Z`). Found fraud counts here: it is the importer's record,
/// even though the price profiles leave it out.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ValuationRecord {
    pub items: u64,
    pub low: u64,
}

/// A valuation z-score below this marks an item as markedly low.
pub const MARKEDLY_LOW_Z: f64 = -2.5;

/// Weight of the usual share of markedly low items in an importer's
/// record, in items: an importer with few items is judged mostly by the
/// usual share (beta-binomial shrinkage).
pub const RECORD_PRIOR_ITEMS: f64 = 50.0;

/// How many times the usual share of markedly low items `record` shows,
/// shrunk toward 1 for short records; 1 when nothing is usual yet.
pub fn low_price_ratio(record: ValuationRecord, overall: ValuationRecord) -> f64 {
    if overall.items == 0 || overall.low == 0 {
        return 1.0;
    }
    let usual = overall.low as f64 / overall.items as f64;
    let share = (record.low as f64 + RECORD_PRIOR_ITEMS * usual)
        / (record.items as f64 + RECORD_PRIOR_ITEMS);
    share / usual
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_counts_items_and_finds_every_origin() {
        let mut h = ImporterHistory::default();
        let (importer, other, hs6) = (11, 12, 850_000);
        h.add_items(importer, hs6, 5);
        h.add_items(importer, hs6, 2);
        // Fourteen origins: eleven inline, three in the side set.
        for origin in 1..=14 {
            h.add_origin(importer, hs6, origin * 37);
            h.add_origin(importer, hs6, origin * 37);
        }
        h.add_items(other, hs6, 1 << 20);
        assert_eq!(h.history(importer, hs6, 37), (0, false), "not frozen yet");
        h.freeze(1);
        for origin in 1..=14 {
            assert_eq!(h.history(importer, hs6, origin * 37), (7, true));
        }
        assert_eq!(h.history(importer, hs6, 999), (7, false));
        assert_eq!(h.history(importer, hs6 + 1, 37), (0, false));
        assert_eq!(h.history(other, hs6, 37), (ITEMS_MAX as u64, false));
        // Many pairs: every one is found after the table wraps and probes.
        let mut many = ImporterHistory::default();
        for k in 0..5_000u64 {
            many.add_items(k * 7919, k % 97, k + 1);
        }
        many.freeze(1);
        assert_eq!(many.pairs(), 5_000);
        // Short histories are left out.
        let mut short = ImporterHistory::default();
        short.add_items(1, 2, 2);
        short.add_origin(1, 2, 37);
        short.add_items(3, 2, 3);
        short.freeze(IMPORTER_HISTORY);
        assert_eq!(
            (short.history(1, 2, 37), short.history(3, 2, 37)),
            ((0, false), (3, false))
        );
        for k in 0..5_000u64 {
            many.prefetch(k * 7919, k % 97);
            assert_eq!(many.history(k * 7919, k % 97, 1).0, k + 1);
        }
    }

    #[test]
    fn short_records_lean_on_the_usual_share() {
        let overall = ValuationRecord {
            items: 10_000,
            low: 300,
        };
        let unknown = low_price_ratio(ValuationRecord::default(), overall);
        assert!((unknown - 1.0).abs() < 1e-12);
        let one_low = low_price_ratio(ValuationRecord { items: 1, low: 1 }, overall);
        let many_low = low_price_ratio(
            ValuationRecord {
                items: 100,
                low: 30,
            },
            overall,
        );
        let clean = low_price_ratio(ValuationRecord { items: 100, low: 0 }, overall);
        assert!(one_low > 1.0 && one_low < many_low, "{one_low} {many_low}");
        assert!(clean < 1.0 && clean > 0.0);
        assert_eq!(
            low_price_ratio(
                ValuationRecord { items: 5, low: 5 },
                ValuationRecord::default()
            ),
            1.0
        );
    }
}
