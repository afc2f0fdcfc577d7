//! A read-only hash table of 64-bit keys laid out flat for scoring loops.
//!
//! Open addressing with linear probing, at most half full, keys hashed by
//! one multiply. Its point over a general hash map is `prefetch`: the slot
//! a key lands in is known before the probe, so a batch can ask for rows
//! ahead of the one it scores and overlap the cache misses.

/// A frozen table from nonzero `u64` keys (already well-mixed hashes) to
/// small `Copy` values.
#[derive(Debug, Clone)]
pub struct FlatTable<V> {
    /// (key, value); key 0 marks an empty slot. Power-of-two length.
    slots: Vec<(u64, V)>,
}

impl<V> Default for FlatTable<V> {
    fn default() -> Self {
        FlatTable { slots: Vec::new() }
    }
}

impl<V: Copy + Default> FlatTable<V> {
    /// Lays the entries out; keys must be distinct and nonzero (a zero key
    /// is mapped to 1 by the callers' key functions).
    pub fn build(entries: impl ExactSizeIterator<Item = (u64, V)>) -> Self {
        let capacity = (entries.len() * 2).next_power_of_two().max(16);
        let mut slots = vec![(0u64, V::default()); capacity];
        for (key, value) in entries {
            debug_assert_ne!(key, 0, "key 0 marks empty slots");
            let mut at = slot_of(key, capacity);
            while slots[at].0 != 0 {
                at = (at + 1) & (capacity - 1);
            }
            slots[at] = (key, value);
        }
        FlatTable { slots }
    }

    #[inline]
    pub fn get(&self, key: u64) -> Option<&V> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut at = slot_of(key, self.slots.len());
        loop {
            match &self.slots[at] {
                (k, value) if *k == key => return Some(value),
                (0, _) => return None,
                _ => at = (at + 1) & mask,
            }
        }
    }

    /// Asks the CPU to start loading the key's slot (a hint: no effect on
    /// results).
    #[inline]
    pub fn prefetch(&self, key: u64) {
        prefetch_slot(&self.slots, key);
    }

    pub fn len(&self) -> usize {
        self.slots.iter().filter(|s| s.0 != 0).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The key of a byte string in a [`FlatTable`]: its FNV-1a hash (two
/// strings sharing a key one chance in 2^64 per pair, as importers' keys),
/// never 0 (an empty slot).
pub fn bytes_key(bytes: impl IntoIterator<Item = u8>) -> u64 {
    crate::cells::fnv1a(crate::cells::FNV_OFFSET, bytes).max(1)
}

/// Asks the CPU to start loading the first slot of `key` in an
/// open-addressing table laid out by `slot_of` (a hint: no effect on
/// results, a no-op off x86-64).
#[inline]
pub(crate) fn prefetch_slot<T>(slots: &[T], key: u64) {
    #[cfg(target_arch = "x86_64")]
    if !slots.is_empty() {
        let at = slot_of(key, slots.len());
        // SAFETY: prefetching is a hint that never faults, and the pointer
        // is within the table.
        unsafe {
            use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
            _mm_prefetch::<_MM_HINT_T0>(slots.as_ptr().add(at).cast());
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (slots, key);
}

/// A key's first slot in a table of `capacity` (a power of two): the top
/// bits of a multiplicative hash.
#[inline]
pub(crate) fn slot_of(key: u64, capacity: usize) -> usize {
    (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - capacity.trailing_zeros())) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_key_and_no_other() {
        let table = FlatTable::build((1..5_001u32).map(|k| (k as u64 * 7919, k as f64)));
        assert_eq!(table.len(), 5_000);
        for k in 1..=5_000u64 {
            table.prefetch(k * 7919);
            assert_eq!(table.get(k * 7919), Some(&(k as f64)));
        }
        assert_eq!(table.get(7919 * 5_001), None);
        assert_eq!(table.get(3), None);
        let empty: FlatTable<f64> = FlatTable::default();
        assert!(empty.is_empty());
        assert_eq!(empty.get(3), None);
        empty.prefetch(3);
    }
}
