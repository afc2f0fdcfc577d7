//! Boosted trees compiled for scoring whole batches: each tree's nodes in
//! one flat array, evaluated tree by tree over the batch (a tree stays in
//! cache while every row walks it), on a column-major feature matrix.

use serde::{Deserialize, Serialize};

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
        }
    }

    /// Raw scores of the `rows` rows of a column-major `matrix`. Rows go
    /// in blocks through every tree: a block's slice of each feature column
    /// and all the trees stay in cache (a whole batch's columns did not).
    pub fn predict(&self, matrix: &[f64], rows: usize) -> Vec<f64> {
        const BLOCK: usize = 256;
        let mut out = vec![self.base; rows];
        for start in (0..rows).step_by(BLOCK) {
            let end = (start + BLOCK).min(rows);
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

    pub fn nodes(&self) -> usize {
        self.trees.iter().map(Vec::len).sum()
    }
}

pub fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}
