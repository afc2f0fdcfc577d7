//! What the model knows of each importer: the origins it buys each product
//! from, and its pricing record.
//!
//! `origin_risk` asks, for every item, how often the importer bought the
//! product and whether ever from the declared origin. Both answers sit in
//! one 64-bit word per (importer, HS6) pair, so an item costs one probe of
//! one hash table: the item count and up to four origins inline, with a
//! side set for the rare pair bought from more.

/// An importer needs this many items of a product before a new origin for
/// it is a signal; shorter histories are not kept.
pub const IMPORTER_HISTORY: u64 = 3;

/// Origins stored inline per pair; a pair with more spills to a side set.
const INLINE_ORIGINS: u32 = 4;
/// Bits of one inline origin (a packed country code needs 10 and is never
/// 0, so 0 marks an empty slot).
const ORIGIN_BITS: u32 = 12;
const ITEMS_MASK: u64 = 0x7FFF;
const OVERFLOW: u64 = 0x8000;
const SLOTS_SHIFT: u32 = 16;

/// The (importer, product) key: a 64-bit mix of both hashes.
/// Never 0, which marks an empty slot.
fn pair_key(importer: u64, hs6: u64) -> u64 {
    (importer ^ hs6.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29)) | 1
}

fn origin_key(pair: u64, origin: u64) -> u64 {
    pair ^ (origin + 1).wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
}

/// Per (importer, HS6): items, and the origins the importer bought it from.
///
/// Built in a hash map, then frozen (`freeze`) into a flat open-addressing
/// table at most half full, whose slot for a pair is known before the
/// probe: a batch can prefetch its rows' slots and overlap the misses.
#[derive(Debug, Default)]
pub struct ImporterHistory {
    building: hashbrown::HashMap<u64, u64>,
    /// (pair key, word); key 0 marks an empty slot. Power-of-two length.
    table: Vec<(u64, u64)>,
    overflow: hashbrown::HashSet<u64>,
}

impl ImporterHistory {
    /// Adds `items` of the product (`hs6`, a cell key) to the importer's
    /// history (both as hashes); counts saturate at 32,767.
    pub fn add_items(&mut self, importer: u64, hs6: u64, items: u64) {
        let word = self.building.entry(pair_key(importer, hs6)).or_default();
        let total = ((*word & ITEMS_MASK) + items).min(ITEMS_MASK);
        *word = (*word & !ITEMS_MASK) | total;
    }

    /// Records that the importer bought the product from `origin` (a packed
    /// country code).
    pub fn add_origin(&mut self, importer: u64, hs6: u64, origin: u64) {
        let key = pair_key(importer, hs6);
        let word = self.building.entry(key).or_default();
        let code = origin & ((1 << ORIGIN_BITS) - 1);
        for slot in 0..INLINE_ORIGINS {
            let shift = SLOTS_SHIFT + slot * ORIGIN_BITS;
            match (*word >> shift) & ((1 << ORIGIN_BITS) - 1) {
                0 => {
                    *word |= code << shift;
                    return;
                }
                present if present == code => return,
                _ => {}
            }
        }
        *word |= OVERFLOW;
        self.overflow.insert(origin_key(key, code));
    }

    /// Ends building: lays the pairs with at least `min_items` items out
    /// for lookups (the others answer as unknown: too short a history to
    /// judge by, and the smaller table stays in cache). Pairs added later
    /// need another `freeze`.
    pub fn freeze(&mut self, min_items: u64) {
        let kept = self
            .building
            .values()
            .filter(|&&w| w & ITEMS_MASK >= min_items)
            .count();
        let capacity = (kept * 2).next_power_of_two().max(16);
        let mut table = vec![(0u64, 0u64); capacity];
        for (&key, &word) in self
            .building
            .iter()
            .filter(|(_, w)| **w & ITEMS_MASK >= min_items)
        {
            let mut slot = slot_of(key, capacity);
            while table[slot].0 != 0 {
                slot = (slot + 1) & (capacity - 1);
            }
            table[slot] = (key, word);
        }
        self.table = table;
        self.building = hashbrown::HashMap::new();
    }

    /// Asks the CPU to start loading the pair's slot (a hint: no effect on
    /// results).
    #[inline]
    pub fn prefetch(&self, importer: u64, hs6: u64) {
        #[cfg(target_arch = "x86_64")]
        if !self.table.is_empty() {
            let slot = slot_of(pair_key(importer, hs6), self.table.len());
            // SAFETY: prefetching is a hint that never faults, and the
            // pointer is within the table.
            unsafe {
                use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
                _mm_prefetch::<_MM_HINT_T0>(self.table.as_ptr().add(slot).cast());
            }
        }
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
        let mut slot = slot_of(key, self.table.len());
        let word = loop {
            match self.table[slot] {
                (0, _) => return (0, false),
                (k, word) if k == key => break word,
                _ => slot = (slot + 1) & mask,
            }
        };
        let code = origin & ((1 << ORIGIN_BITS) - 1);
        let inline = (0..INLINE_ORIGINS).any(|slot| {
            (word >> (SLOTS_SHIFT + slot * ORIGIN_BITS)) & ((1 << ORIGIN_BITS) - 1) == code
        });
        let from_origin =
            inline || (word & OVERFLOW != 0 && self.overflow.contains(&origin_key(key, code)));
        (word & ITEMS_MASK, from_origin)
    }

    pub fn pairs(&self) -> usize {
        self.building.len() + self.table.iter().filter(|s| s.0 != 0).count()
    }
}

/// A key's first slot in a table of `capacity` (a power of two): the top
/// bits of a multiplicative hash.
#[inline]
fn slot_of(key: u64, capacity: usize) -> usize {
    (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - capacity.trailing_zeros())) as usize
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
        // Six origins: four inline, two in the side set.
        for origin in 1..=6 {
            h.add_origin(importer, hs6, origin * 37);
            h.add_origin(importer, hs6, origin * 37);
        }
        h.add_items(other, hs6, 1 << 20);
        assert_eq!(h.history(importer, hs6, 37), (0, false), "not frozen yet");
        h.freeze(1);
        for origin in 1..=6 {
            assert_eq!(h.history(importer, hs6, origin * 37), (7, true));
        }
        assert_eq!(h.history(importer, hs6, 999), (7, false));
        assert_eq!(h.history(importer, hs6 + 1, 37), (0, false));
        assert_eq!(h.history(other, hs6, 37), (ITEMS_MASK, false));
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
