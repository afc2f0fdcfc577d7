//! The packed trees evaluated by leaf masks (QuickScorer, Lucchese et al.,
//! SIGIR 2015), 32 rows at a time with AVX-512.
//!
//! A row's exit leaf in a tree is the leftmost leaf that no split the row
//! goes right at rules out: going right at a split rules out the leaves of
//! its left subtree, and every leaf left of the exit leaf lies in the left
//! subtree of a split on the exit path where the row went right. So a tree
//! of depth at most 5 is a 32-bit mask per row, ANDed with each split's
//! "not my left subtree" mask where the row goes right, whatever order the
//! splits come in: no split depends on another, so 32 rows take every
//! split in a compare of 32 codes and two masked ANDs, with no index to
//! follow (the packed walk's chain of loads). The exit leaf is the mask's
//! lowest set bit, and its value is added to the row's sum tree by tree, as
//! the walk adds it: the same sums, bit for bit.

use super::forest::Split;

/// Trees this deep or shallower have at most 32 leaves: one `u32` mask.
pub(super) const MAX_DEPTH: u32 = 5;

/// Rows evaluated together: 32 codes of 16 bits fill a 512-bit register.
const LANES: usize = 32;

/// A real split of a tree, as a mask.
#[derive(Debug, Clone, Copy, PartialEq)]
struct MaskSplit {
    /// The code row and bound of the packed split.
    row: u16,
    bound: u16,
    /// Every leaf of the tree but those of the split's left subtree.
    keep: u32,
}

/// Per tree, the mask a row starts with and its real splits.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct LeafMasks {
    /// Per tree: (starting mask, end of its splits in `splits`).
    trees: Vec<(u32, u32)>,
    splits: Vec<MaskSplit>,
    /// Leaves per tree (`2^depth`).
    leaves: usize,
}

impl LeafMasks {
    /// The masks of packed trees of `depth` (`2^depth - 1` splits per tree,
    /// breadth first); `None` deeper than [`MAX_DEPTH`] or for leaves only.
    pub(super) fn of(depth: u32, splits: &[Split]) -> Option<LeafMasks> {
        if depth == 0 || depth > MAX_DEPTH {
            return None;
        }
        let inner = (1usize << depth) - 1;
        let leaves = inner + 1;
        let mut masks = LeafMasks {
            trees: Vec::with_capacity(splits.len() / inner),
            splits: Vec::new(),
            leaves,
        };
        for tree in splits.chunks_exact(inner) {
            let mut start = (1u64 << leaves) - 1;
            for (at, split) in tree.iter().enumerate() {
                // Level `l` holds splits `2^l - 1 .. 2^(l+1) - 1`; a split
                // at position `p` of its level spans `span` leaves.
                let level = usize::BITS - 1 - (at + 1).leading_zeros();
                let position = at + 1 - (1usize << level);
                let span = leaves >> level;
                let left = ((1u64 << (span / 2)) - 1) << (position * span);
                let keep = !left as u32;
                if split.bound == 0 {
                    // A dummy split: both ways lead to copies of one leaf
                    // and every code is at least 0, so every row goes
                    // right; ruled out up front, it costs nothing per row.
                    start &= u64::from(keep);
                } else {
                    masks.splits.push(MaskSplit {
                        row: split.row,
                        bound: split.bound,
                        keep,
                    });
                }
            }
            masks.trees.push((start as u32, masks.splits.len() as u32));
        }
        Some(masks)
    }

    /// Whether this machine runs [`LeafMasks::add`].
    pub(super) fn available() -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512bw")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    }

    /// Adds every tree's exit leaf (`leaves`, `2^depth` per tree) to
    /// `out[r]`, tree by tree, for the rows of a block whose codes are
    /// `codes` (`block` codes per code row, `block` a multiple of 32 and at
    /// least `out.len()`). Only call when [`LeafMasks::available`].
    #[cfg(target_arch = "x86_64")]
    pub(super) fn add(&self, codes: &[u16], block: usize, leaves: &[f64], out: &mut [f64]) {
        assert!(LeafMasks::available(), "AVX-512 checked by the caller");
        assert!(block % LANES == 0 && out.len() <= block);
        let rows = self
            .splits
            .iter()
            .map(|s| usize::from(s.row) + 1)
            .max()
            .unwrap_or(0);
        assert!(codes.len() >= rows * block, "codes for every split's row");
        assert_eq!(leaves.len(), self.trees.len() * self.leaves);
        // SAFETY: the CPU has AVX-512 F and BW (asserted), and the slices
        // are as long as the kernel reads (asserted).
        unsafe { self.add_avx512(codes, block, leaves, out) }
    }

    #[cfg(not(target_arch = "x86_64"))]
    pub(super) fn add(&self, _: &[u16], _: usize, _: &[f64], _: &mut [f64]) {
        unreachable!("LeafMasks::available is false here")
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw")]
    unsafe fn add_avx512(&self, codes: &[u16], block: usize, leaves: &[f64], out: &mut [f64]) {
        use std::arch::x86_64::*;
        let n = out.len();
        let mut exits = [0u32; LANES];
        let mut from = 0usize;
        for (t, &(start, end)) in self.trees.iter().enumerate() {
            let splits = &self.splits[from..end as usize];
            from = end as usize;
            let leaves = &leaves[t * self.leaves..][..self.leaves];
            for r in (0..n).step_by(LANES) {
                let mut low = _mm512_set1_epi32(start as i32);
                let mut high = low;
                for split in splits {
                    // SAFETY: `split.row * block + r + LANES <= codes.len()`
                    // (`r < block`, both multiples of LANES; checked in
                    // `add`). Lanes past `n` compare stale codes, unused.
                    let at = unsafe { codes.as_ptr().add(usize::from(split.row) * block + r) };
                    let code = unsafe { _mm512_loadu_si512(at.cast()) };
                    let right =
                        _mm512_cmpge_epu16_mask(code, _mm512_set1_epi16(split.bound as i16));
                    let keep = _mm512_set1_epi32(split.keep as i32);
                    low = _mm512_mask_and_epi32(low, right as __mmask16, low, keep);
                    high = _mm512_mask_and_epi32(high, (right >> 16) as __mmask16, high, keep);
                }
                // SAFETY: `exits` holds 32 u32, two registers' worth.
                unsafe {
                    _mm512_storeu_si512(exits.as_mut_ptr().cast(), low);
                    _mm512_storeu_si512(exits.as_mut_ptr().add(16).cast(), high);
                }
                for (sum, exit) in out[r..].iter_mut().zip(exits) {
                    // The exit leaf is never ruled out: the mask is never 0.
                    *sum += leaves[exit.trailing_zeros() as usize];
                }
            }
        }
    }
}
