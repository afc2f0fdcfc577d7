//! A feature's split thresholds and the code of a value: how many of them
//! are at or below it, the small integer the packed walk compares.
//!
//! Scoring codes every value of every feature a forest splits on, once per
//! forest, which a binary search made about a third as costly as the walk
//! itself (a dozen to a hundred thresholds per feature: five to seven
//! dependent loads). Here the value's bits pick a bucket of thresholds
//! directly, and the few thresholds of that bucket are counted without a
//! branch.

/// At most this many thresholds share a bucket; a feature whose thresholds
/// crowd more than this into the finest buckets tried is searched.
const PER_BUCKET: usize = 4;
/// Bucket counts tried, as powers of two (the first that spreads the
/// thresholds enough is kept: the table stays small and in cache).
const BUCKET_BITS: [u32; 3] = [8, 10, 12];

/// A feature's thresholds, sorted and distinct, none NaN.
#[derive(Debug, Clone)]
pub(super) struct Thresholds {
    /// The thresholds, then [`PER_BUCKET`] NaNs (never at or below a
    /// value), so a bucket's count reads past its end without a test.
    padded: Vec<f64>,
    len: usize,
    /// The order key of the first threshold: buckets start there.
    low: u64,
    /// Keys between those of `-m` and `m`, `m` the smallest magnitude of a
    /// nonzero threshold, hold no threshold but zero: they collapse to one
    /// point (`gap_start`), and keys above lose the `gap`. Otherwise the
    /// keys of tiny magnitudes, hundreds of binades wide, would take most
    /// buckets from thresholds on both sides of zero.
    gap_start: u64,
    gap: u64,
    /// A key's bucket: `(key - low) >> shift`.
    shift: u32,
    /// Per bucket, the thresholds whose key is below the bucket's first
    /// key; empty when the feature is searched instead.
    below: Vec<u16>,
}

impl Thresholds {
    /// A key with the gap around zero closed: still in the order of the
    /// values (never decreasing), which is all the buckets need.
    #[inline]
    fn closed(&self, key: u64) -> u64 {
        if key <= self.gap_start {
            key
        } else {
            key.saturating_sub(self.gap).max(self.gap_start)
        }
    }
}

/// An unsigned key in the order of the values (no NaN): positive floats'
/// bits above every negative one's, negative ones' reversed. `-0.0` is
/// keyed as `0.0`, which it equals.
#[inline]
fn key(v: f64) -> u64 {
    let bits = (v + 0.0).to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | 1 << 63
    }
}

/// Equal thresholds (the rest is built from them; the NaN padding would
/// make a derived comparison never equal).
impl PartialEq for Thresholds {
    fn eq(&self, other: &Thresholds) -> bool {
        self.values() == other.values()
    }
}

impl Thresholds {
    /// `values`: sorted, distinct (by `==`), none NaN, fewer than
    /// `u16::MAX`.
    pub fn new(values: Vec<f64>) -> Thresholds {
        debug_assert!(values.windows(2).all(|w| w[0] < w[1]), "sorted, distinct");
        let len = values.len();
        let mut padded = values;
        padded.extend([f64::NAN; PER_BUCKET]);
        let mut thresholds = Thresholds {
            padded,
            len,
            low: 0,
            gap_start: u64::MAX,
            gap: 0,
            shift: 0,
            below: Vec::new(),
        };
        if len == 0 {
            return thresholds;
        }
        let smallest = thresholds
            .values()
            .iter()
            .filter(|t| **t != 0.0)
            .map(|t| t.abs())
            .fold(f64::INFINITY, f64::min);
        if smallest.is_finite() {
            thresholds.gap_start = key(-smallest);
            thresholds.gap = key(smallest) - key(-smallest);
        }
        let keys: Vec<u64> = thresholds
            .values()
            .iter()
            .map(|&t| thresholds.closed(key(t)))
            .collect();
        let (low, span) = (keys[0], keys[len - 1] - keys[0]);
        let span_bits = u64::BITS - span.leading_zeros();
        for bits in BUCKET_BITS {
            let shift = span_bits.saturating_sub(bits);
            let buckets = (span >> shift) as usize + 1;
            // Thresholds per bucket, then the running count below each.
            let mut below = vec![0u16; buckets];
            for k in &keys {
                below[((k - low) >> shift) as usize] += 1;
            }
            if below.iter().any(|&n| usize::from(n) > PER_BUCKET) {
                continue;
            }
            let mut total = 0;
            for n in &mut below {
                (*n, total) = (total, total + *n);
            }
            (thresholds.low, thresholds.shift, thresholds.below) = (low, shift, below);
            break;
        }
        thresholds
    }

    pub fn values(&self) -> &[f64] {
        &self.padded[..self.len]
    }

    /// How many thresholds are at or below `v` (not NaN).
    #[inline]
    pub fn code(&self, v: f64) -> usize {
        if self.below.is_empty() {
            return self.values().partition_point(|t| *t <= v);
        }
        // Buckets never decrease with the value, so thresholds of lower
        // buckets are all below `v`, and any at or below `v` from its
        // bucket on lie in its bucket, at most PER_BUCKET of them. Below
        // the first threshold: bucket 0, whose count finds none at or
        // below `v`; above the last: the last bucket, which finds all of
        // its own.
        let bucket = ((self.closed(key(v)).saturating_sub(self.low) >> self.shift) as usize)
            .min(self.below.len() - 1);
        let first = usize::from(self.below[bucket]);
        let next = &self.padded[first..first + PER_BUCKET];
        first + next.iter().filter(|t| **t <= v).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every value's code is the binary search's, for thresholds spread,
    /// crowded, signed, infinite and single, at values on, between and
    /// beyond them.
    #[test]
    fn codes_count_the_thresholds_at_or_below() {
        let mut next = crate::tests::xorshift(0x9e37_79b9_7f4a_7c15);
        // Wide apart at the ends, a hundred close together between.
        let crowded: Vec<f64> = [-1e300]
            .into_iter()
            .chain((0..100).map(|i| 1.0 + f64::from(i) * 1e-9))
            .chain([1e300])
            .collect();
        let mut sets = vec![
            vec![],
            vec![0.0],
            vec![-0.0, 1.0],
            vec![f64::NEG_INFINITY, -1.5, 0.0, 2.0, f64::INFINITY],
            crowded.clone(),
            (0..130).map(|i| f64::from(i) * 0.25 - 10.0).collect(),
            (0..100).map(|i| f64::from(i) / 100.0).collect(),
            vec![-1e-300, 0.0, 5e-324, 1e-300],
            vec![-3.0, -1e-5, 1e-5, 2.0],
        ];
        for _ in 0..50 {
            let mut set: Vec<f64> = (0..1 + next() % 120)
                .map(|_| (next() % 100_000) as f64 / 97.0 - 300.0)
                .collect();
            set.sort_by(f64::total_cmp);
            set.dedup();
            sets.push(set);
        }
        for set in sets {
            let thresholds = Thresholds::new(set.clone());
            let mut probes = vec![-0.0, 0.0, f64::INFINITY, f64::NEG_INFINITY, 1e300, -1e300];
            for &t in &set {
                probes.extend([t, t.next_up(), t.next_down()]);
            }
            probes.extend((0..500).map(|_| (next() % 1_000_000) as f64 / 1000.0 - 500.0));
            for v in probes {
                let expected = set.partition_point(|t| *t <= v);
                assert_eq!(thresholds.code(v), expected, "value {v} among {set:?}");
            }
        }
        // Crowded thresholds are searched; spread ones bucketed.
        assert!(Thresholds::new(crowded).below.is_empty());
        assert!(!Thresholds::new(vec![0.5, 1.0, 8.0]).below.is_empty());
        // Thresholds on both sides of zero, or from zero up, are bucketed:
        // the empty stretch of tiny magnitudes takes no buckets.
        let z_scores: Vec<f64> = (-60..40).map(|i| f64::from(i) * 0.25).collect();
        let rates: Vec<f64> = (0..100).map(|i| f64::from(i) / 100.0).collect();
        assert!(!Thresholds::new(z_scores).below.is_empty());
        assert!(!Thresholds::new(rates).below.is_empty());
    }
}
