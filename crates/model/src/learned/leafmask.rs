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
    /// One more than the highest code row a split reads.
    code_rows: usize,
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
            code_rows: 0,
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
        masks.code_rows = masks
            .splits
            .iter()
            .map(|s| usize::from(s.row) + 1)
            .max()
            .unwrap_or(0);
        Some(masks)
    }

    /// What [`LeafMasks::add`] computes, one row and one split at a time:
    /// the masks' arithmetic checked on any machine.
    #[cfg(test)]
    pub(super) fn add_scalar(&self, codes: &[u16], block: usize, leaves: &[f64], out: &mut [f64]) {
        let mut from = 0usize;
        for (t, &(start, end)) in self.trees.iter().enumerate() {
            let splits = &self.splits[from..end as usize];
            from = end as usize;
            for (r, sum) in out.iter_mut().enumerate() {
                let mut mask = start;
                for split in splits {
                    if codes[usize::from(split.row) * block + r] >= split.bound {
                        mask &= split.keep;
                    }
                }
                *sum += leaves[t * self.leaves + mask.trailing_zeros() as usize];
            }
        }
    }

    /// Whether this machine runs [`LeafMasks::add`].
    pub(super) fn available() -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512bw")
                && std::arch::is_x86_feature_detected!("avx512cd")
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
        assert!(
            self.code_rows
                .checked_mul(block)
                .is_some_and(|needed| codes.len() >= needed),
            "codes for every split's row"
        );
        assert_eq!(leaves.len(), self.trees.len() * self.leaves);
        // SAFETY: the CPU has AVX-512 F, BW and CD (asserted), and the slices
        // are as long as the kernel reads (asserted).
        unsafe { self.add_avx512(codes, block, leaves, out) }
    }

    #[cfg(not(target_arch = "x86_64"))]
    pub(super) fn add(&self, _: &[u16], _: usize, _: &[f64], _: &mut [f64]) {
        unreachable!("LeafMasks::available is false here")
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw,avx512cd")]
    unsafe fn add_avx512(&self, codes: &[u16], block: usize, leaves: &[f64], out: &mut [f64]) {
        use std::arch::x86_64::*;
        let n = out.len();
        let mut from = 0usize;
        let mut padded = [0.0f64; 32];
        for (t, &(start, end)) in self.trees.iter().enumerate() {
            let splits = &self.splits[from..end as usize];
            from = end as usize;
            // The tree's leaves in four registers (32 values, padded).
            padded[..self.leaves].copy_from_slice(&leaves[t * self.leaves..][..self.leaves]);
            // SAFETY: `padded` holds 32 f64.
            let values = unsafe { [0, 8, 16, 24].map(|i| _mm512_loadu_pd(padded.as_ptr().add(i))) };
            for r in (0..n).step_by(LANES) {
                // The masks of rows r..r+16 and r+16..r+32.
                let mut first_half = _mm512_set1_epi32(start as i32);
                let mut second_half = first_half;
                for split in splits {
                    // SAFETY: `split.row * block + r + LANES <= codes.len()`
                    // (`r < block`, both multiples of LANES; checked in
                    // `add`). Lanes past `n` compare the zeros `quantize`
                    // fills a block with, and are never stored.
                    let at = unsafe { codes.as_ptr().add(usize::from(split.row) * block + r) };
                    let code = unsafe { _mm512_loadu_si512(at.cast()) };
                    let right =
                        _mm512_cmpge_epu16_mask(code, _mm512_set1_epi16(split.bound as i16));
                    let keep = _mm512_set1_epi32(split.keep as i32);
                    first_half =
                        _mm512_mask_and_epi32(first_half, right as __mmask16, first_half, keep);
                    second_half = _mm512_mask_and_epi32(
                        second_half,
                        (right >> 16) as __mmask16,
                        second_half,
                        keep,
                    );
                }
                for (half, leaf_masks) in [(0, first_half), (16, second_half)] {
                    // The exit leaf, the lowest set bit (never none: the
                    // exit leaf is never ruled out): 31 - lzcnt(m & -m).
                    let lowest = _mm512_and_si512(
                        leaf_masks,
                        _mm512_sub_epi32(_mm512_setzero_si512(), leaf_masks),
                    );
                    let exit_leaves =
                        _mm512_sub_epi32(_mm512_set1_epi32(31), _mm512_lzcnt_epi32(lowest));
                    let eighths = [
                        _mm512_castsi512_si256(exit_leaves),
                        _mm512_extracti64x4_epi64::<1>(exit_leaves),
                    ];
                    for (q, eighth) in eighths.into_iter().enumerate() {
                        let first = r + half + 8 * q;
                        if first >= n {
                            break;
                        }
                        let exits = _mm512_cvtepu32_epi64(eighth);
                        // Leaves 0-15 and 16-31 by the low four bits, one
                        // or the other by bit 4.
                        let low_leaves = _mm512_permutex2var_pd(values[0], exits, values[1]);
                        let high_leaves = _mm512_permutex2var_pd(values[2], exits, values[3]);
                        let upper = _mm512_test_epi64_mask(exits, _mm512_set1_epi64(16));
                        let leaf = _mm512_mask_blend_pd(upper, low_leaves, high_leaves);
                        let valid: __mmask8 = if n - first >= 8 {
                            0xff
                        } else {
                            (1u8 << (n - first)) - 1
                        };
                        // SAFETY: rows `first..n` only (the mask), inside `out`.
                        unsafe {
                            let at = out.as_mut_ptr().add(first);
                            // The tree's leaf added to each row's sum, as
                            // the walk adds it: the same value, bit for bit.
                            let sum = _mm512_add_pd(_mm512_maskz_loadu_pd(valid, at), leaf);
                            _mm512_mask_storeu_pd(at, valid, sum);
                        }
                    }
                }
            }
        }
    }
}
