//! Boosted trees compiled for scoring whole batches: each tree's nodes in
//! one flat array, evaluated tree by tree over the batch (a tree stays in
//! cache while every row walks it), on a column-major feature matrix.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::leafmask::LeafMasks;
use super::quantize::Thresholds;

/// A node: a split, or a leaf (`feature == LEAF`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Node {
    pub feature: u32,
    pub split: f64,
    pub left: u32,
    pub right: u32,
    pub missing: u32,
    /// The node's value (a leaf's output; an inner node's is the value the
    /// tree would give had it stopped there, used for contributions).
    pub value: f64,
}

const LEAF: u32 = u32::MAX;

impl Node {
    /// The child a value goes to: NaN (missing) down the missing branch.
    #[inline]
    fn child(&self, v: f64) -> usize {
        (if v.is_nan() {
            self.missing
        } else if v < self.split {
            self.left
        } else {
            self.right
        }) as usize
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Forest {
    /// The raw score before any tree (log-odds for a classifier).
    pub base: f64,
    pub trees: Vec<Vec<Node>>,
    /// The trees as perfect binary trees for [`Forest::predict`] (built
    /// from `trees`, never stored).
    #[serde(skip)]
    packed: Option<Packed>,
}

/// An inner node of a packed tree, over quantized features: a row goes
/// right when its code in code row `row` is at least `bound` (its value is
/// at least the split's threshold; a missing value's code in that row sends
/// it the split's missing way).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Split {
    pub(super) bound: u16,
    /// The code row the split reads: `2 * column + missing_right`, the
    /// column an index into [`Packed::columns`].
    pub(super) row: u16,
}

/// The code of a missing value in a column's missing-right row (at or above
/// every bound). In its missing-left row a missing value's code is 0, below
/// every real split's bound (at least 1: the split's own threshold is at or
/// below it).
const MISSING: u16 = u16::MAX;

/// Every tree padded to a perfect binary tree of the forest's depth (a
/// leaf above it is copied into both children of a dummy split, so either
/// way gives its value): a walk is `depth` steps of index arithmetic, the
/// same for every row, with no test for leaves and no pointer to follow,
/// and several rows walk side by side.
///
/// The walk compares small integer codes, not the values: each feature a
/// split reads is replaced by the number of that feature's thresholds at
/// or below the value, so `value >= threshold` is exactly `code >= bound`.
/// A block of rows then holds its codes in 2 bytes per feature (in L1
/// cache, with no column stride aliasing the cache sets) and a split in 4
/// bytes, instead of 8 and 16. Each feature has two rows of codes, which
/// differ only for missing values (0 in one, [`MISSING`] in the other), so a
/// step is one comparison whichever way the split sends missing values.
#[derive(Debug, Clone, PartialEq)]
struct Packed {
    depth: u32,
    /// `2^depth - 1` per tree, breadth first (children of `i`: `2i+1`,
    /// `2i+2`).
    splits: Vec<Split>,
    /// `2^depth` per tree.
    leaves: Vec<f64>,
    /// The features splits read: (column of the feature matrix, its
    /// thresholds sorted and distinct).
    columns: Vec<(usize, Thresholds)>,
    /// Per split, the change of the node value going left and going right
    /// (0 at a dummy split), for [`Forest::contributions_of_all`].
    deltas: Vec<[f64; 2]>,
    /// The same trees as leaf masks, for trees of up to 32 leaves on a
    /// CPU with AVX-512.
    masks: Option<LeafMasks>,
}

/// Deeper trees are walked node by node (a perfect tree would double per
/// level).
const MAX_PACKED_DEPTH: u32 = 10;

/// Rows quantized and walked together: their codes stay in L1 cache.
const BLOCK: usize = 256;

impl Packed {
    fn of(trees: &[Vec<Node>]) -> Option<Packed> {
        fn depth(tree: &[Node], i: usize) -> Option<u32> {
            let node = tree.get(i)?;
            if node.feature == LEAF {
                return Some(0);
            }
            let (l, r) = (node.left as usize, node.right as usize);
            if node.missing as usize != l && node.missing as usize != r {
                // A separate missing branch: not a binary split.
                return None;
            }
            Some(1 + depth(tree, l)?.max(depth(tree, r)?))
        }
        let depth = trees
            .iter()
            .map(|t| depth(t, 0))
            .try_fold(0, |d, t| t.map(|t| d.max(t)))?;
        if depth > MAX_PACKED_DEPTH || trees.is_empty() {
            return None;
        }
        // Each feature's thresholds; a NaN threshold sends nothing left of
        // it the same way in codes, so such a forest is walked node by node.
        let mut thresholds: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
        for node in trees.iter().flatten().filter(|n| n.feature != LEAF) {
            if node.split.is_nan() {
                return None;
            }
            thresholds
                .entry(node.feature as usize)
                .or_default()
                .push(node.split);
        }
        let thresholds: Vec<(usize, Vec<f64>)> = thresholds
            .into_iter()
            .map(|(feature, mut t)| {
                t.sort_by(f64::total_cmp);
                // -0.0 and 0.0 compare equal: one threshold.
                t.dedup_by(|a, b| a == b);
                (feature, t)
            })
            .collect();
        if 2 * thresholds.len() > usize::from(u16::MAX)
            || thresholds
                .iter()
                .any(|(_, t)| t.len() >= usize::from(MISSING))
        {
            return None;
        }
        let columns: Vec<(usize, Thresholds)> = thresholds
            .into_iter()
            .map(|(feature, t)| (feature, Thresholds::new(t)))
            .collect();
        let split_of = |node: &Node| {
            let column = columns
                .binary_search_by_key(&(node.feature as usize), |c| c.0)
                .expect("every split's feature has a column");
            // The number of thresholds at or below the split's own.
            let bound = columns[column].1.code(node.split);
            Split {
                bound: bound as u16,
                row: (2 * column + usize::from(node.missing == node.right)) as u16,
            }
        };
        let inner = (1usize << depth) - 1;
        let mut packed = Packed {
            depth,
            splits: Vec::with_capacity(trees.len() * inner),
            leaves: Vec::with_capacity(trees.len() * (inner + 1)),
            columns: Vec::new(),
            deltas: Vec::with_capacity(trees.len() * inner),
            masks: None,
        };
        for tree in trees {
            // Dummy splits lead to two copies of one leaf: any way is right.
            let mut splits = vec![Split { bound: 0, row: 0 }; inner];
            let mut leaves = vec![0.0; inner + 1];
            let mut deltas = vec![[0.0; 2]; inner];
            // (node, position in the perfect tree, level)
            let mut stack = vec![(0usize, 0usize, 0u32)];
            while let Some((n, at, level)) = stack.pop() {
                let node = &tree[n];
                if level == depth {
                    leaves[at - inner] = node.value;
                } else if node.feature == LEAF {
                    // Both children carry the leaf down.
                    stack.push((n, 2 * at + 1, level + 1));
                    stack.push((n, 2 * at + 2, level + 1));
                } else {
                    splits[at] = split_of(node);
                    // As `Forest::contributions` works them out.
                    deltas[at] = [
                        tree[node.left as usize].value - node.value,
                        tree[node.right as usize].value - node.value,
                    ];
                    stack.push((node.left as usize, 2 * at + 1, level + 1));
                    stack.push((node.right as usize, 2 * at + 2, level + 1));
                }
            }
            packed.splits.extend(splits);
            packed.deltas.extend(deltas);
            packed.leaves.extend(leaves);
        }
        packed.columns = columns;
        packed.masks = LeafMasks::of(depth, &packed.splits);
        Some(packed)
    }

    /// The codes of the rows `start..start + n` of `matrix` into `codes`:
    /// two rows of [`BLOCK`] codes per column.
    fn quantize(&self, matrix: &[f64], rows: usize, start: usize, n: usize, codes: &mut Vec<u16>) {
        codes.clear();
        codes.resize(2 * self.columns.len().max(1) * BLOCK, 0);
        for (c, (feature, thresholds)) in self.columns.iter().enumerate() {
            let values = &matrix[feature * rows + start..][..n];
            let (left, right) = codes[2 * c * BLOCK..][..2 * BLOCK].split_at_mut(BLOCK);
            for ((l, r), v) in left.iter_mut().zip(right.iter_mut()).zip(values) {
                (*l, *r) = if v.is_nan() {
                    (0, MISSING)
                } else {
                    let code = thresholds.code(*v) as u16;
                    (code, code)
                };
            }
        }
    }

    /// Adds each split's change of node value along the path of the rows
    /// `start..start + n` to their feature's contribution, `parts` holding
    /// `features` per row of the block (tree by tree, as
    /// [`Forest::contributions`] adds them, so the sums are the same).
    fn add_contributions(
        &self,
        matrix: &[f64],
        rows: usize,
        start: usize,
        parts: &mut [f64],
        features: usize,
        codes: &mut Vec<u16>,
    ) {
        let n = parts.len() / features;
        assert!(
            n <= BLOCK && start + n <= rows,
            "a block of at most {BLOCK} rows"
        );
        self.quantize(matrix, rows, start, n, codes);
        let inner = (1usize << self.depth) - 1;
        if inner == 0 {
            return; // Every tree a leaf: no split contributes.
        }
        for (splits, deltas) in self
            .splits
            .chunks_exact(inner)
            .zip(self.deltas.chunks_exact(inner))
        {
            for (r, row) in parts.chunks_exact_mut(features).enumerate() {
                let mut i = 0;
                for _ in 0..self.depth {
                    let split = splits[i];
                    let right = codes[usize::from(split.row) * BLOCK + r] >= split.bound;
                    // A dummy split adds 0.0: a sum started at +0.0 never
                    // turns -0.0, so that leaves it as it was.
                    row[self.columns[usize::from(split.row / 2)].0] +=
                        deltas[i][usize::from(right)];
                    i = 2 * i + 1 + usize::from(right);
                }
            }
        }
    }

    /// Adds every tree's leaf to `out[r]` for the rows `start..start +
    /// out.len()` (at most [`BLOCK`]) of a column-major `matrix` of `rows`
    /// rows; `codes` is scratch space.
    fn add(
        &self,
        matrix: &[f64],
        rows: usize,
        start: usize,
        out: &mut [f64],
        codes: &mut Vec<u16>,
    ) {
        let n = out.len();
        assert!(
            n <= BLOCK && start + n <= rows,
            "a block of at most {BLOCK} rows"
        );
        self.quantize(matrix, rows, start, n, codes);
        if let Some(masks) = self.masks.as_ref().filter(|_| LeafMasks::available()) {
            masks.add(codes, BLOCK, &self.leaves, out);
            return;
        }
        // The depth as a constant: the walk's loop unrolls.
        match self.depth {
            0 => self.walk::<0>(codes, out),
            1 => self.walk::<1>(codes, out),
            2 => self.walk::<2>(codes, out),
            3 => self.walk::<3>(codes, out),
            4 => self.walk::<4>(codes, out),
            5 => self.walk::<5>(codes, out),
            6 => self.walk::<6>(codes, out),
            7 => self.walk::<7>(codes, out),
            8 => self.walk::<8>(codes, out),
            9 => self.walk::<9>(codes, out),
            _ => self.walk::<10>(codes, out),
        }
    }

    /// `codes`: two rows of [`BLOCK`] codes per column; the rows are
    /// `out`'s.
    fn walk<const DEPTH: usize>(&self, codes: &[u16], out: &mut [f64]) {
        const LANES: usize = 8;
        let inner = (1usize << DEPTH) - 1;
        let trees = self.leaves.len() / (inner + 1);
        let codes = &codes[..2 * self.columns.len().max(1) * BLOCK];
        // The child of `split` for row `row` of the block.
        let step = |split: &Split, row: usize| -> usize {
            // SAFETY: `split.row < 2 * columns.len()` (built so) and `row <
            // out.len() <= BLOCK`, inside `codes` as sliced above.
            let code = unsafe { *codes.get_unchecked(usize::from(split.row) * BLOCK + row) };
            1 + usize::from(code >= split.bound)
        };
        for t in 0..trees {
            let splits = &self.splits[t * inner..(t + 1) * inner];
            let leaves = &self.leaves[t * (inner + 1)..(t + 1) * (inner + 1)];
            let mut chunks = out.chunks_exact_mut(LANES);
            let mut row = 0;
            for chunk in &mut chunks {
                // Independent walks interleaved: their loads overlap.
                let mut at = [0usize; LANES];
                for _ in 0..DEPTH {
                    for (k, i) in at.iter_mut().enumerate() {
                        // SAFETY: after fewer than DEPTH steps from the
                        // root, `i < 2^DEPTH - 1 = splits.len()`.
                        let split = unsafe { splits.get_unchecked(*i) };
                        *i = 2 * *i + step(split, row + k);
                    }
                }
                for (score, i) in chunk.iter_mut().zip(at) {
                    *score += leaves[i - inner];
                }
                row += LANES;
            }
            for score in chunks.into_remainder() {
                let mut i = 0usize;
                for _ in 0..DEPTH {
                    i = 2 * i + step(&splits[i], row);
                }
                *score += leaves[i - inner];
                row += 1;
            }
        }
    }
}

impl Forest {
    /// The trees a trained booster predicts with (up to its best
    /// iteration when training stopped early).
    pub fn compile(booster: &forust_ml::GradientBooster) -> Forest {
        let used = booster.prediction_iteration.unwrap_or(booster.trees.len());
        let trees = booster.trees[..used]
            .iter()
            .map(|tree| {
                tree.nodes
                    .iter()
                    .map(|n| Node {
                        feature: if n.is_leaf {
                            LEAF
                        } else {
                            n.split_feature as u32
                        },
                        split: n.split_value,
                        left: n.left_child as u32,
                        right: n.right_child as u32,
                        missing: n.missing_node as u32,
                        value: n.weight_value as f64,
                    })
                    .collect()
            })
            .collect();
        Forest {
            base: booster.base_score,
            trees,
            packed: None,
        }
        .packed()
    }

    /// The forest ready for [`Forest::predict`]'s fast walk (a forest read
    /// back from JSON is not).
    pub fn packed(mut self) -> Forest {
        self.packed = Packed::of(&self.trees);
        self
    }

    /// Raw scores of the `rows` rows of a column-major `matrix`. Rows go
    /// in blocks through every tree: a block's slice of each feature column
    /// and all the trees stay in cache (a whole batch's columns did not).
    pub fn predict(&self, matrix: &[f64], rows: usize) -> Vec<f64> {
        let mut out = vec![self.base; rows];
        let mut codes = Vec::new();
        for start in (0..rows).step_by(BLOCK) {
            let end = (start + BLOCK).min(rows);
            if let Some(packed) = &self.packed {
                packed.add(matrix, rows, start, &mut out[start..end], &mut codes);
                continue;
            }
            for tree in &self.trees {
                for (row, score) in out[start..end]
                    .iter_mut()
                    .enumerate()
                    .map(|(i, s)| (start + i, s))
                {
                    let mut i = 0usize;
                    loop {
                        let node = &tree[i];
                        if node.feature == LEAF {
                            *score += node.value;
                            break;
                        }
                        i = node.child(matrix[node.feature as usize * rows + row]);
                    }
                }
            }
        }
        out
    }

    /// Each feature's share of row `row`'s raw score (Saabas: along each
    /// tree's path, the change of the node value at every split goes to
    /// the split's feature); the contributions and the bias sum to the raw
    /// score.
    pub fn contributions(
        &self,
        matrix: &[f64],
        rows: usize,
        row: usize,
        features: usize,
    ) -> (f64, Vec<f64>) {
        let mut out = vec![0.0; features];
        let mut bias = self.base;
        for tree in &self.trees {
            let mut i = 0usize;
            bias += tree[0].value;
            loop {
                let node = &tree[i];
                if node.feature == LEAF {
                    break;
                }
                let next = node.child(matrix[node.feature as usize * rows + row]);
                out[node.feature as usize] += tree[next].value - node.value;
                i = next;
            }
        }
        (bias, out)
    }

    /// [`Forest::contributions`] of every row of `matrix`, `features` per
    /// row: rows in blocks along the packed trees when the forest has them.
    pub fn contributions_of_all(&self, matrix: &[f64], rows: usize, features: usize) -> Vec<f64> {
        let Some(packed) = self
            .packed
            .as_ref()
            .filter(|p| features > 0 && p.columns.iter().all(|(feature, _)| *feature < features))
        else {
            return (0..rows)
                .flat_map(|row| self.contributions(matrix, rows, row, features).1)
                .collect();
        };
        let mut parts = vec![0.0; rows * features];
        let mut codes = Vec::new();
        for (block, parts) in parts.chunks_mut(BLOCK * features).enumerate() {
            packed.add_contributions(matrix, rows, block * BLOCK, parts, features, &mut codes);
        }
        parts
    }

    pub fn nodes(&self) -> usize {
        self.trees.iter().map(Vec::len).sum()
    }
}

pub fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(value: f64) -> Node {
        Node {
            feature: LEAF,
            split: 0.0,
            left: 0,
            right: 0,
            missing: 0,
            value,
        }
    }

    /// Grows a random tree of at most `depth` levels below `tree`'s end
    /// over `features` features, splitting at values of `grid`'s first six;
    /// a node stops early one time in four, except on the leftmost path
    /// when `full` (which then reaches `depth`). Returns the root's index.
    fn grow(
        tree: &mut Vec<Node>,
        depth: u32,
        full: bool,
        features: u64,
        next: &mut dyn FnMut() -> u64,
        grid: &[f64],
    ) -> u32 {
        let at = tree.len() as u32;
        tree.push(leaf((next() % 1000) as f64 / 64.0 - 7.0));
        if depth > 0 && (full || next() % 4 != 0) {
            let feature = (next() % features) as u32;
            let split = grid[(next() % 6) as usize];
            let left = grow(tree, depth - 1, full, features, next, grid);
            let right = grow(tree, depth - 1, false, features, next, grid);
            let missing = if next() % 2 == 0 { left } else { right };
            tree[at as usize] = Node {
                feature,
                split,
                left,
                right,
                missing,
                ..tree[at as usize]
            };
        }
        at
    }

    /// An unbalanced tree: leaves at depths 1, 2 and 3, NaN left at the
    /// root and right below.
    fn forest() -> Forest {
        let split = |feature, split, left, right, missing| Node {
            feature,
            split,
            left,
            right,
            missing,
            value: 0.0,
        };
        let tree = vec![
            split(0, 0.5, 1, 2, 1),
            leaf(-1.0),
            split(1, 2.0, 3, 4, 4),
            leaf(0.25),
            split(0, 3.0, 5, 6, 5),
            leaf(0.5),
            leaf(1.5),
        ];
        let stump = vec![split(1, -1.0, 1, 2, 2), leaf(0.1), leaf(-0.1)];
        Forest {
            base: 0.3,
            trees: vec![tree, stump],
            packed: None,
        }
    }

    #[test]
    fn the_packed_walk_gives_the_node_walk() {
        let plain = forest();
        let packed = forest().packed();
        assert_eq!(packed.packed.as_ref().unwrap().depth, 3);
        let values = [f64::NAN, -1.0, 0.5, 0.49, 2.0, 2.5, 3.0, 7.0, f64::INFINITY];
        let mut a = Vec::new();
        let mut b = Vec::new();
        for &x in &values {
            for &y in &values {
                a.push(x);
                b.push(y);
            }
        }
        let rows = a.len();
        let matrix: Vec<f64> = a.iter().chain(&b).copied().collect();
        let slow = plain.predict(&matrix, rows);
        let fast = packed.predict(&matrix, rows);
        for (i, (s, f)) in slow.iter().zip(&fast).enumerate() {
            assert_eq!(s.to_bits(), f.to_bits(), "row {i}: x {} y {}", a[i], b[i]);
        }
        // A separate missing branch is not packed (the node walk stays).
        let mut odd = forest();
        odd.trees[1][0].missing = 5;
        let leaf = odd.trees[1][1];
        odd.trees[1].extend([leaf, leaf, leaf]);
        assert!(odd.packed().packed.is_none());
    }

    /// A forest of each depth a leaf mask covers (2 to 32 leaves), with
    /// leaves above the full depth (dummy splits): the masks' scalar
    /// emulation, the AVX-512 kernel where the CPU has it, and the walk
    /// give the node walk's sums bit for bit, on a block of 5 rows and on
    /// whole and partial blocks.
    #[test]
    fn leaf_masks_give_the_node_walk_at_every_depth() {
        let mut next = crate::tests::xorshift(0x6a09_e667_f3bc_c909);
        let grid = [-1.0, -0.0, 0.0, 0.5, 1.0, 2.0, f64::NAN];
        let features = 3;
        if !LeafMasks::available() {
            eprintln!("no AVX-512 on this CPU: its leaf-mask kernel is not run here");
        }
        for depth in 1..=crate::learned::leafmask::MAX_DEPTH {
            let plain = Forest {
                base: 0.125,
                trees: (0..12)
                    .map(|_| {
                        let mut tree = Vec::new();
                        // The leftmost path to the full depth.
                        grow(&mut tree, depth, true, features as u64, &mut next, &grid);
                        tree
                    })
                    .collect(),
                packed: None,
            };
            let packed = plain.clone().packed();
            let inner = packed.packed.as_ref().unwrap();
            assert_eq!(inner.depth, depth);
            let masks = inner.masks.as_ref().expect("masks up to depth 5");
            let mut walked = packed.clone();
            walked.packed.as_mut().unwrap().masks = None;
            for rows in [5, 2 * BLOCK + 37] {
                let matrix: Vec<f64> = (0..rows * features)
                    .map(|_| match next() % 2 {
                        0 => grid[(next() % grid.len() as u64) as usize],
                        _ => (next() % 500) as f64 / 100.0 - 2.0,
                    })
                    .collect();
                let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                let slow = bits(&plain.predict(&matrix, rows));
                assert_eq!(slow, bits(&packed.predict(&matrix, rows)), "depth {depth}");
                assert_eq!(slow, bits(&walked.predict(&matrix, rows)), "depth {depth}");
                let mut emulated = vec![plain.base; rows];
                let mut codes = Vec::new();
                for start in (0..rows).step_by(BLOCK) {
                    let n = (rows - start).min(BLOCK);
                    inner.quantize(&matrix, rows, start, n, &mut codes);
                    let out = &mut emulated[start..start + n];
                    masks.add_scalar(&codes, BLOCK, &inner.leaves, out);
                }
                assert_eq!(slow, bits(&emulated), "depth {depth}");
            }
        }
    }

    /// Random forests of mixed depths over shared, repeated and signed-zero
    /// thresholds, on more rows than a block: the quantized walk gives the
    /// node walk's scores bit for bit.
    #[test]
    fn quantized_codes_split_exactly_where_the_thresholds_do() {
        let mut next = crate::tests::xorshift(0x2545_f491_4f6c_dd1d);
        // Few distinct values: rows often equal a threshold exactly.
        let grid = [-2.0, -0.0, 0.0, 0.5, 1.0, 1.5, f64::INFINITY, f64::NAN];
        let features = 4;
        let trees: Vec<Vec<Node>> = (0..40)
            .map(|t| {
                let mut tree = Vec::new();
                grow(
                    &mut tree,
                    1 + t % 5,
                    false,
                    features as u64,
                    &mut next,
                    &grid,
                );
                tree
            })
            .collect();
        let plain = Forest {
            base: -0.25,
            trees,
            packed: None,
        };
        let packed = plain.clone().packed();
        assert!(packed.packed.as_ref().unwrap().masks.is_some());
        // The walk a CPU without AVX-512 takes (leaf masks where it has it).
        let mut walked = packed.clone();
        walked.packed.as_mut().unwrap().masks = None;
        let rows = 2 * BLOCK + 37;
        let matrix: Vec<f64> = (0..rows * features)
            .map(|_| match next() % 3 {
                0 => grid[(next() % grid.len() as u64) as usize],
                _ => (next() % 700) as f64 / 200.0 - 2.0,
            })
            .collect();
        let slow = plain.predict(&matrix, rows);
        for fast in [packed.predict(&matrix, rows), walked.predict(&matrix, rows)] {
            for (i, (s, f)) in slow.iter().zip(&fast).enumerate() {
                assert_eq!(s.to_bits(), f.to_bits(), "row {i}");
            }
        }
        // Deeper than a 32-bit mask: walked.
        let (deep, deep_packed) = loop {
            let mut tree = Vec::new();
            grow(&mut tree, 6, false, features as u64, &mut next, &grid);
            let mut deep = plain.clone();
            deep.trees.push(tree);
            let packed = deep.clone().packed();
            if packed.packed.as_ref().is_some_and(|p| p.depth == 6) {
                break (deep, packed);
            }
        };
        assert!(deep_packed.packed.as_ref().unwrap().masks.is_none());
        let bits = |v: Vec<f64>| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(
            bits(deep.predict(&matrix, rows)),
            bits(deep_packed.predict(&matrix, rows))
        );
        // Contributions of all rows along the packed trees: each row's
        // node-walk contributions, bit for bit.
        let all = packed.contributions_of_all(&matrix, rows, features);
        assert_eq!(all, plain.contributions_of_all(&matrix, rows, features));
        for row in 0..rows {
            let (_, one) = plain.contributions(&matrix, rows, row, features);
            let bits = |p: &[f64]| p.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(
                bits(&one),
                bits(&all[row * features..][..features]),
                "row {row}"
            );
        }
        assert!(all.iter().any(|p| *p != 0.0));
    }
}
