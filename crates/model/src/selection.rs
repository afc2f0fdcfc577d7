//! Selection under capacity: which of a day's items to control, in which
//! lane, and why.
//!
//! An administration has so many physical (red) and documentary (yellow)
//! controls a day, per office. Most go to the items the model ranks
//! highest; a share ε is exploration, so that what the controls find is
//! not only what the model already believes: uniformly random controls (the
//! only controls whose hit rate estimates the fraud rate of all items, and
//! the labels that let the learned model see fraud it does not rank high)
//! and, with the `novelty` strategy, the highest-ranked items of importers
//! that were never inspected (their record is empty, so the model's
//! profiles know nothing of them: DATE's and gATE's argument for
//! exploration, aimed where knowledge is missing rather than spread
//! evenly), or with the `proportional` strategy a draw with probability
//! proportional to expected revenue over the items the model left (the
//! auditor's monetary-unit sampling: every item can be drawn, so the labels
//! reach below the model's cut-off, but a control is spent where the money
//! is rather than uniformly, so exploring costs less revenue), or with the
//! `evidence` strategy the items the evidence alone (price, tariff and
//! origin, without what inspections taught the model) ranks highest among
//! those the model and the draw left: labels where the two rankings
//! differ, which the model's own picks never give (docs/selection.md
//! measures what they find). Authorised
//! economic operators are controlled at a lower rate, in both the ranking
//! and the random draw.
//!
//! Everything is a pure function of the items and a seed: the same day,
//! capacities and seed select the same items.

use crate::{FNV_OFFSET, fnv1a};

/// The two inspection lanes selection fills (green is everything else;
/// blue, post-clearance audit, is chosen per trader, not per item).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Lane {
    /// Physical inspection.
    Red,
    /// Documentary check.
    Yellow,
}

impl Lane {
    pub const ALL: [Lane; 2] = [Lane::Red, Lane::Yellow];

    pub fn name(self) -> &'static str {
        match self {
            Lane::Red => "red",
            Lane::Yellow => "yellow",
        }
    }
}

/// Why an item was selected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chosen {
    /// Ranked high by the model.
    Model,
    /// A uniformly random control (weighted down for AEO traders).
    Random,
    /// Exploration: an importer never inspected.
    Novelty,
    /// Exploration: drawn with probability proportional to its score.
    Proportional,
    /// Exploration: ranked high by the label-free evidence, not by the
    /// model.
    Evidence,
}

impl Chosen {
    /// Chosen by an informed exploration strategy (not the model's
    /// ranking, not the random draw).
    pub fn is_informed_exploration(self) -> bool {
        matches!(
            self,
            Chosen::Novelty | Chosen::Proportional | Chosen::Evidence
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            Chosen::Model => "model",
            Chosen::Random => "random",
            Chosen::Novelty => "novelty",
            Chosen::Proportional => "proportional",
            Chosen::Evidence => "evidence",
        }
    }
}

/// How the exploration share is spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// All of it uniformly at random.
    Random,
    /// The minimum random share at random, the rest on importers never
    /// inspected.
    Novelty,
    /// The minimum random share at random, the rest drawn from the items
    /// the model did not pick, with probability proportional to what the
    /// model ranks by.
    Proportional,
    /// The minimum random share at random, the rest to the items the
    /// label-free evidence ranks highest among those the model did not
    /// pick.
    Evidence,
}

impl Strategy {
    pub const ALL: [Strategy; 4] = [
        Strategy::Random,
        Strategy::Novelty,
        Strategy::Proportional,
        Strategy::Evidence,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Strategy::Random => "random",
            Strategy::Novelty => "novelty",
            Strategy::Proportional => "proportional",
            Strategy::Evidence => "evidence",
        }
    }

    /// The strategy named `name` (any case); the error lists the names.
    pub fn parse(name: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|s| s.name().eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|s| s.name()).collect();
                format!("'{name}' is not a strategy (one of {})", names.join(", "))
            })
    }
}

/// What the model part of the capacity ranks by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RankBy {
    /// Expected revenue recovered (probability × revenue): a control's
    /// worth in money.
    Revenue,
    /// Probability of fraud: a control's chance of a hit.
    Probability,
}

/// Controls available per lane.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Capacity {
    pub red: usize,
    pub yellow: usize,
}

impl Capacity {
    fn of(self, lane: Lane) -> usize {
        match lane {
            Lane::Red => self.red,
            Lane::Yellow => self.yellow,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Share of each lane's capacity spent on exploration, in [0, 1].
    pub explore: f64,
    pub strategy: Strategy,
    /// With [`Strategy::Novelty`], the share of each lane's capacity that
    /// stays uniformly random (at most `explore`).
    pub min_random: f64,
    pub rank_by: RankBy,
    /// An AEO trader's items count this much of an ordinary item, in the
    /// ranking and in the random draw, in (0, 1].
    pub aeo_factor: f64,
    pub seed: u64,
}

/// The policy of `aduana select` and of the SQL function `selection`
/// when nothing else is asked: a tenth of each lane explores at random,
/// the rest ranks by expected revenue, AEO traders at half weight.
impl Default for Policy {
    fn default() -> Self {
        Policy {
            explore: 0.1,
            strategy: Strategy::Random,
            min_random: 0.05,
            rank_by: RankBy::Revenue,
            aeo_factor: 0.5,
            seed: 0,
        }
    }
}

impl Policy {
    pub fn validate(&self) -> Result<(), String> {
        let share = |name: &str, v: f64| {
            if (0.0..=1.0).contains(&v) {
                Ok(())
            } else {
                Err(format!("{name} must be a share between 0 and 1, not {v}"))
            }
        };
        share("the exploration share", self.explore)?;
        share("the minimum random share", self.min_random)?;
        if self.strategy != Strategy::Random && self.min_random > self.explore {
            return Err(format!(
                "the minimum random share ({}) cannot exceed the exploration share ({})",
                self.min_random, self.explore
            ));
        }
        if !(self.aeo_factor > 0.0 && self.aeo_factor <= 1.0) {
            return Err(format!(
                "the AEO factor must be in (0, 1], not {}",
                self.aeo_factor
            ));
        }
        Ok(())
    }

    /// Controls of a lane's capacity: (random, informed exploration, model).
    fn split(&self, capacity: usize) -> (usize, usize, usize) {
        let explore = (self.explore * capacity as f64).round() as usize;
        let random = match self.strategy {
            Strategy::Random => explore,
            Strategy::Novelty | Strategy::Proportional | Strategy::Evidence => {
                ((self.min_random * capacity as f64).round() as usize).min(explore)
            }
        };
        (random, explore - random, capacity - explore)
    }
}

/// One item of the day.
#[derive(Debug, Clone)]
pub struct Candidate<'a> {
    /// Where capacity is counted: the office (or one scope for the day).
    pub scope: &'a str,
    /// The item's identity, for the random draw: the same item draws the
    /// same number under the same seed, whatever else is in the day.
    pub declaration_id: &'a str,
    pub item_no: i64,
    pub p_fraud: f64,
    pub expected_revenue: f64,
    /// What the evidence alone says (the unsupervised risk, and it times
    /// the revenue at stake), for the `evidence` strategy.
    pub evidence_p: f64,
    pub evidence_revenue: f64,
    pub aeo: bool,
    /// The importer has no inspection on record.
    pub never_inspected: bool,
}

/// A selected item.
#[derive(Debug, Clone, PartialEq)]
pub struct Pick {
    /// Index into the candidates.
    pub row: usize,
    pub lane: Lane,
    pub chosen: Chosen,
    /// 1-based order within its scope, lane and [`Chosen`].
    pub rank: usize,
    /// For random controls: how many items of the day in its scope it
    /// stands for, the inverse of its chance of being drawn (an AEO
    /// trader's item, drawn at the AEO factor, stands for more), so that
    /// hit rates weighted by it estimate the fraud rate of all items.
    /// `None` else.
    pub design_weight: Option<f64>,
}

/// A number in [0, 1) from the seed and the item's identity.
fn uniform(seed: u64, declaration_id: &str, item_no: i64) -> f64 {
    let h = fnv1a(
        fnv1a(
            fnv1a(FNV_OFFSET, seed.to_le_bytes()),
            declaration_id.bytes(),
        ),
        item_no.to_le_bytes(),
    );
    // A finaliser (splitmix64's) spreads FNV's low-entropy high bits.
    let mut z = h.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// Selects from `candidates` under `capacity(scope)` per scope. Each lane
/// is filled exactly to its capacity when the scope has enough items: its
/// random controls first (a weighted draw without replacement over all the
/// scope's items, Efraimidis–Spirakis keys `u^(1/w)`), then with `novelty`
/// the never-inspected importers' best and the model's ranking, with
/// `proportional` and `evidence` the model's ranking and then the
/// exploration over what it left; red before yellow in each part, so the
/// model's highest go to physical inspection. No item is selected twice.
pub fn select(
    candidates: &[Candidate],
    capacity: impl Fn(&str) -> Capacity,
    policy: &Policy,
) -> Result<Vec<Pick>, String> {
    policy.validate()?;
    let mut scopes: std::collections::BTreeMap<&str, Vec<usize>> = Default::default();
    for (row, c) in candidates.iter().enumerate() {
        scopes.entry(c.scope).or_default().push(row);
    }
    let mut picks = Vec::new();
    for (scope, rows) in scopes {
        select_scope(candidates, &rows, capacity(scope), policy, &mut picks);
    }
    Ok(picks)
}

fn weight(c: &Candidate, policy: &Policy) -> f64 {
    if c.aeo { policy.aeo_factor } else { 1.0 }
}

fn score(c: &Candidate, policy: &Policy) -> f64 {
    let s = match policy.rank_by {
        RankBy::Revenue => c.expected_revenue,
        RankBy::Probability => c.p_fraud,
    };
    weighted(s, c, policy)
}

/// The evidence's counterpart of [`score`].
fn evidence_score(c: &Candidate, policy: &Policy) -> f64 {
    let s = match policy.rank_by {
        RankBy::Revenue => c.evidence_revenue,
        RankBy::Probability => c.evidence_p,
    };
    weighted(s, c, policy)
}

fn weighted(s: f64, c: &Candidate, policy: &Policy) -> f64 {
    // Unscored items rank last.
    if s.is_finite() {
        s * weight(c, policy)
    } else {
        f64::NEG_INFINITY
    }
}

/// Rows ordered best first by `key`, ties by identity (deterministic).
/// Each row's key is computed once (the draw's is a hash and a power),
/// not at every comparison.
fn ordered(candidates: &[Candidate], rows: &mut [usize], key: impl Fn(&Candidate) -> f64) {
    let mut keyed: Vec<(f64, usize)> = rows.iter().map(|&r| (key(&candidates[r]), r)).collect();
    keyed.sort_by(|&(ka, a), &(kb, b)| {
        let (ca, cb) = (&candidates[a], &candidates[b]);
        kb.total_cmp(&ka)
            .then_with(|| ca.declaration_id.cmp(cb.declaration_id))
            .then_with(|| ca.item_no.cmp(&cb.item_no))
    });
    for (slot, (_, r)) in rows.iter_mut().zip(keyed) {
        *slot = r;
    }
}

fn select_scope(
    candidates: &[Candidate],
    rows: &[usize],
    capacity: Capacity,
    policy: &Policy,
    picks: &mut Vec<Pick>,
) {
    let mut taken = vec![false; candidates.len()];
    // No lane gets more controls than the scope has items left, red first:
    // else a lane the items cannot fill would draw its random controls
    // from items the red lane needed, and a capacity far past the items
    // would make its exploration share most of the controls.
    let red = capacity.red.min(rows.len());
    let capacity = Capacity {
        red,
        yellow: capacity.yellow.min(rows.len() - red),
    };
    let parts = Lane::ALL.map(|lane| (lane, policy.split(capacity.of(lane))));
    let first = picks.len();

    // Random controls, over every item of the scope.
    let key = |c: &Candidate| {
        uniform(policy.seed, c.declaration_id, c.item_no).powf(1.0 / weight(c, policy))
    };
    let mut draw = rows.to_vec();
    ordered(candidates, &mut draw, key);
    let mut drawn = draw.into_iter().peekable();
    for (lane, (random, _, _)) in parts {
        for (rank, row) in drawn.by_ref().take(random).enumerate() {
            taken[row] = true;
            picks.push(Pick {
                row,
                lane,
                chosen: Chosen::Random,
                rank: rank + 1,
                design_weight: None,
            });
        }
    }
    // Each random control stands for 1 / (its chance of being drawn)
    // items (Horvitz-Thompson), that chance taken given the draw's
    // threshold t, the key of the first item not drawn (rank conditioning,
    // Cohen & Kaplan's estimator for bottom-k samples, unbiased for any
    // sample size): an item of weight w is drawn when its key u^(1/w)
    // beats t, that is with chance 1 - t^w; 1 when every item was drawn.
    // A day's weights add up to its items on average, not every day:
    // post-stratifying by AEO status (items over controls per stratum)
    // gave exact sums but pooled the strata on the many days a stratum had
    // no control, and then the AEO items, drawn at a lower rate, were
    // represented by ordinary ones (on the drifting replays the fraud
    // rate came out high in 10 runs of 12). When every item weighs the
    // same the chance is known exactly, n / N, and the day's weights add
    // up to its items.
    let threshold = drawn.peek().map_or(0.0, |&row| key(&candidates[row]));
    let one_weight = rows
        .iter()
        .all(|&r| weight(&candidates[r], policy) == weight(&candidates[rows[0]], policy));
    let count = picks.len() - first;
    for p in &mut picks[first..] {
        let chance = if one_weight {
            count as f64 / rows.len() as f64
        } else {
            1.0 - threshold.powf(weight(&candidates[p.row], policy))
        };
        p.design_weight = Some(1.0 / chance);
    }

    let mut ranked = rows.to_vec();
    ordered(candidates, &mut ranked, |c| score(c, policy));
    let informed = parts.map(|(_, (_, informed, _))| informed);
    let model = parts.map(|(_, (_, _, model))| model);
    match policy.strategy {
        Strategy::Random => {
            fill(
                candidates,
                &ranked,
                &mut taken,
                model,
                Chosen::Model,
                |_| true,
                picks,
            );
        }
        Strategy::Novelty => {
            let found = fill(
                candidates,
                &ranked,
                &mut taken,
                informed,
                Chosen::Novelty,
                |c| c.never_inspected,
                picks,
            );
            // The model takes its share and what novelty could not fill.
            let model = [0, 1].map(|l| model[l] + informed[l] - found[l]);
            fill(
                candidates,
                &ranked,
                &mut taken,
                model,
                Chosen::Model,
                |_| true,
                picks,
            );
        }
        Strategy::Proportional | Strategy::Evidence => {
            let mut order = rows.to_vec();
            let chosen = if policy.strategy == Strategy::Evidence {
                ordered(candidates, &mut order, |c| evidence_score(c, policy));
                Chosen::Evidence
            } else {
                ordered(candidates, &mut order, |c| {
                    proportional_key(
                        uniform(policy.seed, c.declaration_id, c.item_no),
                        score(c, policy),
                    )
                });
                Chosen::Proportional
            };
            // The model first, so that the exploration is over what it left.
            fill(
                candidates,
                &ranked,
                &mut taken,
                model,
                Chosen::Model,
                |_| true,
                picks,
            );
            fill(
                candidates,
                &order,
                &mut taken,
                informed,
                chosen,
                |_| true,
                picks,
            );
        }
    }
}

/// The Efraimidis–Spirakis key of a draw proportional to `weight`, in its
/// logarithmic form `ln(u) / w` (the same order as `u^(1/w)`, without
/// losing the order of heavy weights to rounding near 1). Items worth
/// nothing to the ranking (no revenue, unscored) come last.
fn proportional_key(u: f64, weight: f64) -> f64 {
    if weight > 0.0 && weight.is_finite() {
        u.max(f64::MIN_POSITIVE).ln() / weight
    } else {
        f64::NEG_INFINITY
    }
}

/// Picks the first free eligible rows of `ranked`, `quota` per lane in
/// [`Lane::ALL`] order; returns how many each lane got.
fn fill(
    candidates: &[Candidate],
    ranked: &[usize],
    taken: &mut [bool],
    quota: [usize; 2],
    chosen: Chosen,
    eligible: impl Fn(&Candidate) -> bool,
    picks: &mut Vec<Pick>,
) -> [usize; 2] {
    let mut free = ranked.iter().copied().filter(|&r| eligible(&candidates[r]));
    let mut got = [0; 2];
    for (l, lane) in Lane::ALL.into_iter().enumerate() {
        while got[l] < quota[l] {
            let Some(row) = free.by_ref().find(|&r| !taken[r]) else {
                return got;
            };
            taken[row] = true;
            got[l] += 1;
            picks.push(Pick {
                row,
                lane,
                chosen,
                rank: got[l],
                design_weight: None,
            });
        }
    }
    got
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(n: usize, offices: &[&'static str]) -> Vec<(String, &'static str, f64, bool, bool)> {
        (0..n)
            .map(|i| {
                let p = ((i * 7919) % 1000) as f64 / 1000.0;
                (
                    format!("D{i:05}"),
                    offices[i % offices.len()],
                    p,
                    i % 5 == 0,
                    i % 3 == 0,
                )
            })
            .collect()
    }

    fn candidates<'a>(rows: &'a [(String, &'static str, f64, bool, bool)]) -> Vec<Candidate<'a>> {
        rows.iter()
            .map(|(id, office, p, aeo, new)| Candidate {
                scope: office,
                declaration_id: id,
                item_no: 1,
                p_fraud: *p,
                expected_revenue: p * 100.0,
                // The evidence ranks the items in another order than the
                // model (its own permutation of the same values).
                evidence_p: 1.0 - p,
                evidence_revenue: (1.0 - p) * 100.0,
                aeo: *aeo,
                never_inspected: *new,
            })
            .collect()
    }

    fn policy(explore: f64, strategy: Strategy) -> Policy {
        Policy {
            explore,
            strategy,
            min_random: 0.05,
            rank_by: RankBy::Revenue,
            aeo_factor: 0.5,
            seed: 1,
        }
    }

    fn count(picks: &[Pick], c: &[Candidate], scope: &str, lane: Lane, chosen: Chosen) -> usize {
        picks
            .iter()
            .filter(|p| c[p.row].scope == scope && p.lane == lane && p.chosen == chosen)
            .count()
    }

    #[test]
    fn capacity_and_shares_are_exact_per_scope_and_lane() {
        let rows = day(3000, &["A", "B"]);
        let c = candidates(&rows);
        let cap = |s: &str| match s {
            "A" => Capacity {
                red: 40,
                yellow: 60,
            },
            _ => Capacity { red: 10, yellow: 0 },
        };
        let picks = select(&c, cap, &policy(0.1, Strategy::Random)).unwrap();
        assert_eq!(count(&picks, &c, "A", Lane::Red, Chosen::Random), 4);
        assert_eq!(count(&picks, &c, "A", Lane::Red, Chosen::Model), 36);
        assert_eq!(count(&picks, &c, "A", Lane::Yellow, Chosen::Random), 6);
        assert_eq!(count(&picks, &c, "A", Lane::Yellow, Chosen::Model), 54);
        assert_eq!(count(&picks, &c, "B", Lane::Red, Chosen::Random), 1);
        assert_eq!(count(&picks, &c, "B", Lane::Red, Chosen::Model), 9);
        assert_eq!(picks.len(), 110);
        let mut seen: Vec<usize> = picks.iter().map(|p| p.row).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), picks.len(), "an item selected twice");
        // The model's red picks outrank its yellow ones, and every
        // unselected item of the scope.
        let lowest_red = picks
            .iter()
            .filter(|p| p.chosen == Chosen::Model && p.lane == Lane::Red && c[p.row].scope == "A")
            .map(|p| score(&c[p.row], &policy(0.1, Strategy::Random)))
            .fold(f64::INFINITY, f64::min);
        let best_yellow = picks
            .iter()
            .filter(|p| {
                p.chosen == Chosen::Model && p.lane == Lane::Yellow && c[p.row].scope == "A"
            })
            .map(|p| score(&c[p.row], &policy(0.1, Strategy::Random)))
            .fold(f64::NEG_INFINITY, f64::max);
        assert!(lowest_red >= best_yellow);
        // A random control stands for the inverse of its chance of being
        // drawn given the threshold, the 11th best key of scope A's draw
        // (10 drawn); AEO items (every fifth) weigh half.
        let w = |c: &Candidate| if c.aeo { 0.5 } else { 1.0 };
        let mut keys: Vec<f64> = c
            .iter()
            .filter(|c| c.scope == "A")
            .map(|c| uniform(1, c.declaration_id, c.item_no).powf(1.0 / w(c)))
            .collect();
        keys.sort_by(|a, b| b.total_cmp(a));
        let threshold = keys[10];
        for p in picks.iter().filter(|p| c[p.row].scope == "A") {
            let expected =
                (p.chosen == Chosen::Random).then(|| 1.0 / (1.0 - threshold.powf(w(&c[p.row]))));
            assert_eq!(p.design_weight, expected);
        }
        // About 1,500 items' worth: 10 draws of 1,350 weight.
        let total: f64 = picks
            .iter()
            .filter_map(|p| p.design_weight.filter(|_| c[p.row].scope == "A"))
            .sum();
        assert!((800.0..3000.0).contains(&total), "{total}");
    }

    /// A scope with fewer items than random controls draws them all, each
    /// standing for itself, whatever its weight; where all items weigh the
    /// same, each control stands for items over controls.
    #[test]
    fn a_scope_drawn_whole_or_of_one_weight_has_exact_weights() {
        let rows = day(5, &["A"]);
        let c = candidates(&rows);
        assert!(c.iter().any(|c| c.aeo));
        let cap = |_: &str| Capacity { red: 6, yellow: 0 };
        let picks = select(&c, cap, &policy(1.0, Strategy::Random)).unwrap();
        assert_eq!(picks.len(), 5);
        assert!(
            picks.iter().all(|p| p.design_weight == Some(1.0)),
            "{picks:?}"
        );
        // Items of one weight (AEO weighed as any): each of 10 controls
        // of 1,000 items stands for 100, exactly.
        let rows = day(1000, &["A"]);
        let c = candidates(&rows);
        let mut p = policy(1.0, Strategy::Random);
        p.aeo_factor = 1.0;
        let cap = |_: &str| Capacity { red: 10, yellow: 0 };
        let picks = select(&c, cap, &p).unwrap();
        assert_eq!(picks.len(), 10);
        assert!(
            picks.iter().all(|p| p.design_weight == Some(100.0)),
            "{picks:?}"
        );
    }

    /// Days with AEO items drawn at half the rate, and so few random
    /// controls that most days draw no AEO item: the weighted controls
    /// still estimate the share of all items. Pooling a day's controls
    /// when a stratum had none (the weights before) gave 0.9 here.
    #[test]
    fn random_controls_estimate_every_item_without_bias() {
        // Every fifth item an AEO trader's; the "fraud" is being an
        // ordinary item, so the true share is 0.8 and AEO items must be
        // represented by AEO controls for the estimate to find it. A large
        // day with few controls, and a small one with most items drawn.
        for (items, controls) in [(600, 6), (20, 12)] {
            let rows = day(items, &["A"]);
            let c = candidates(&rows);
            let cap = |_: &str| Capacity {
                red: controls,
                yellow: 0,
            };
            let days = 4000;
            let mut estimated = 0.0;
            for seed in 0..days {
                let mut p = policy(1.0, Strategy::Random);
                p.seed = seed;
                let picks = select(&c, cap, &p).unwrap();
                assert_eq!(picks.len(), controls);
                let fraud_weight: f64 = picks
                    .iter()
                    .filter(|p| !c[p.row].aeo)
                    .filter_map(|p| p.design_weight)
                    .sum();
                estimated += fraud_weight / items as f64;
            }
            let mean = estimated / days as f64;
            assert!(
                (mean - 0.8).abs() < 0.01,
                "{items} items: estimated share {mean}"
            );
        }
    }

    #[test]
    fn the_draw_is_reproducible_and_depends_on_the_seed() {
        let rows = day(2000, &["A"]);
        let c = candidates(&rows);
        let cap = |_: &str| Capacity {
            red: 100,
            yellow: 0,
        };
        let random = |seed| {
            let mut p = policy(0.5, Strategy::Random);
            p.seed = seed;
            let mut rows: Vec<usize> = select(&c, cap, &p)
                .unwrap()
                .into_iter()
                .filter(|p| p.chosen == Chosen::Random)
                .map(|p| p.row)
                .collect();
            rows.sort_unstable();
            rows
        };
        assert_eq!(random(1), random(1));
        assert_ne!(random(1), random(2));
        // The same item draws the same number whatever else is in the
        // day: a day's selection does not change when a later item is added.
        let fewer = candidates(&rows[..1999]);
        let again: Vec<usize> = select(&fewer, cap, &policy(0.5, Strategy::Random))
            .unwrap()
            .into_iter()
            .filter(|p| p.chosen == Chosen::Random)
            .map(|p| p.row)
            .collect();
        let before = random(1);
        let moved = again.iter().filter(|r| !before.contains(r)).count();
        assert_eq!(again.len(), 50);
        assert!(
            moved <= 1,
            "{moved} of the draw changed with one item fewer"
        );
    }

    #[test]
    fn aeo_traders_are_drawn_less_often() {
        let rows = day(20_000, &["A"]);
        let c = candidates(&rows);
        let cap = |_: &str| Capacity {
            red: 2000,
            yellow: 0,
        };
        let picks = select(&c, cap, &policy(1.0, Strategy::Random)).unwrap();
        let aeo = picks.iter().filter(|p| c[p.row].aeo).count() as f64;
        // A fifth of the items are AEO; at half the weight they get about a
        // ninth of the draw (1 × 0.5 / (4 + 0.5)).
        let share = aeo / picks.len() as f64;
        assert!((share - 1.0 / 9.0).abs() < 0.02, "{share}");
    }

    #[test]
    fn novelty_spends_exploration_on_never_inspected_importers() {
        let rows = day(1000, &["A"]);
        let c = candidates(&rows);
        let cap = |_: &str| Capacity { red: 20, yellow: 0 };
        let picks = select(&c, cap, &policy(0.5, Strategy::Novelty)).unwrap();
        assert_eq!(count(&picks, &c, "A", Lane::Red, Chosen::Random), 1);
        assert_eq!(count(&picks, &c, "A", Lane::Red, Chosen::Novelty), 9);
        assert_eq!(count(&picks, &c, "A", Lane::Red, Chosen::Model), 10);
        assert!(
            picks
                .iter()
                .filter(|p| p.chosen == Chosen::Novelty)
                .all(|p| c[p.row].never_inspected)
        );
        // No new importer at all: the model takes the novelty share.
        let mut known = candidates(&rows);
        known.iter_mut().for_each(|c| c.never_inspected = false);
        let picks = select(&known, cap, &policy(0.5, Strategy::Novelty)).unwrap();
        assert_eq!(count(&picks, &known, "A", Lane::Red, Chosen::Model), 19);
        assert_eq!(picks.len(), 20);
    }

    #[test]
    fn proportional_draws_below_the_model_in_proportion_to_revenue() {
        let rows = day(1000, &["A"]);
        let c = candidates(&rows);
        let cap = |_: &str| Capacity { red: 20, yellow: 0 };
        let p = policy(0.5, Strategy::Proportional);
        let picks = select(&c, cap, &p).unwrap();
        assert_eq!(count(&picks, &c, "A", Lane::Red, Chosen::Random), 1);
        assert_eq!(count(&picks, &c, "A", Lane::Red, Chosen::Proportional), 9);
        assert_eq!(count(&picks, &c, "A", Lane::Red, Chosen::Model), 10);
        // Drawn from what the model left: none outranks the model's last.
        let model_lowest = picks
            .iter()
            .filter(|p| p.chosen == Chosen::Model)
            .map(|pick| score(&c[pick.row], &p))
            .fold(f64::INFINITY, f64::min);
        assert!(
            picks
                .iter()
                .filter(|p| p.chosen == Chosen::Proportional)
                .all(|pick| score(&c[pick.row], &p) <= model_lowest)
        );
        // Over many seeds, the items scoring above the median get about
        // their share of the total score: 10 draws of 1,000 are close to
        // sampling with replacement.
        let mut p = policy(1.0, Strategy::Proportional);
        p.min_random = 0.0;
        let mut scores: Vec<f64> = c.iter().map(|item| score(item, &p)).collect();
        scores.sort_by(f64::total_cmp);
        let median = scores[scores.len() / 2];
        let expected =
            scores.iter().filter(|&&s| s >= median).sum::<f64>() / scores.iter().sum::<f64>();
        let (mut upper, mut all) = (0, 0);
        for seed in 0..300 {
            p.seed = seed;
            for pick in select(&c, |_| Capacity { red: 10, yellow: 0 }, &p).unwrap() {
                assert_eq!(pick.chosen, Chosen::Proportional);
                all += 1;
                upper += usize::from(score(&c[pick.row], &p) >= median);
            }
        }
        let share = upper as f64 / all as f64;
        assert!(
            (share - expected).abs() < 0.03,
            "{share} drawn, {expected} expected"
        );
        assert_eq!(Strategy::parse("Proportional"), Ok(Strategy::Proportional));
        assert!(
            Strategy::parse("ucb")
                .unwrap_err()
                .contains("random, novelty, proportional, evidence")
        );
    }

    #[test]
    fn evidence_explores_after_the_model_by_the_evidence_alone() {
        let rows = day(1000, &["A"]);
        let mut c = candidates(&rows);
        // The evidence agrees with the model on every other item, so the
        // two rankings' tops overlap: what the model takes first must not
        // be explored again.
        for item in c.iter_mut().step_by(2) {
            item.evidence_p = item.p_fraud;
            item.evidence_revenue = item.expected_revenue;
        }
        let cap = |_: &str| Capacity { red: 20, yellow: 8 };
        let p = policy(0.5, Strategy::Evidence);
        let picks = select(&c, cap, &p).unwrap();
        assert_eq!(count(&picks, &c, "A", Lane::Red, Chosen::Random), 1);
        assert_eq!(count(&picks, &c, "A", Lane::Red, Chosen::Evidence), 9);
        assert_eq!(count(&picks, &c, "A", Lane::Red, Chosen::Model), 10);
        assert_eq!(count(&picks, &c, "A", Lane::Yellow, Chosen::Model), 4);
        assert_eq!(count(&picks, &c, "A", Lane::Yellow, Chosen::Evidence), 4);
        assert_eq!(picks.len(), 28);
        // Rankings written out here: AEO items at the policy's half weight,
        // ties by identity.
        let weight = |i: usize| if c[i].aeo { 0.5 } else { 1.0 };
        let best = |value: &dyn Fn(usize) -> f64, except: &[usize], n: usize| {
            let mut rest: Vec<usize> = (0..c.len()).filter(|r| !except.contains(r)).collect();
            rest.sort_by(|&a, &b| {
                value(b)
                    .total_cmp(&value(a))
                    .then_with(|| c[a].declaration_id.cmp(c[b].declaration_id))
            });
            rest.truncate(n);
            rest
        };
        let rows_of = |chosen: Chosen| -> Vec<usize> {
            [Lane::Red, Lane::Yellow]
                .iter()
                .flat_map(|&lane| {
                    picks
                        .iter()
                        .filter(move |p| p.chosen == chosen && p.lane == lane)
                        .map(|p| p.row)
                })
                .collect()
        };
        let random = rows_of(Chosen::Random);
        // The model first, over all but the draw, red before yellow...
        let model = best(&|i| c[i].expected_revenue * weight(i), &random, 14);
        assert_eq!(rows_of(Chosen::Model), model);
        // ... then the evidence's best among what both left.
        let taken = [random, model].concat();
        let explored = best(&|i| c[i].evidence_revenue * weight(i), &taken, 13);
        assert_eq!(rows_of(Chosen::Evidence), explored);
        assert_eq!(Strategy::parse("EVIDENCE"), Ok(Strategy::Evidence));
    }

    #[test]
    fn fewer_items_than_capacity_selects_them_all_once() {
        let rows = day(7, &["A"]);
        let c = candidates(&rows);
        let with = |red: usize, yellow: usize| {
            select(
                &c,
                |_| Capacity { red, yellow },
                &policy(0.2, Strategy::Random),
            )
            .unwrap()
        };
        assert_eq!(with(5, 5).len(), 7);
        // Red is filled first and exactly, its share of the controls
        // random as for a capacity of 7; yellow gets what is left.
        let picks = with(5, 100);
        assert_eq!(count(&picks, &c, "A", Lane::Red, Chosen::Random), 1);
        assert_eq!(count(&picks, &c, "A", Lane::Red, Chosen::Model), 4);
        assert_eq!(picks.iter().filter(|p| p.lane == Lane::Yellow).count(), 2);
        let far_past = with(10_000, 0);
        assert_eq!(count(&far_past, &c, "A", Lane::Red, Chosen::Random), 1);
        assert_eq!(count(&far_past, &c, "A", Lane::Red, Chosen::Model), 6);
    }

    #[test]
    fn bad_policies_are_refused_by_name() {
        let mut p = policy(1.5, Strategy::Random);
        assert!(p.validate().unwrap_err().contains("exploration share"));
        p.explore = 0.02;
        p.strategy = Strategy::Novelty;
        assert!(p.validate().unwrap_err().contains("minimum random share"));
        p.min_random = 0.0;
        p.aeo_factor = 0.0;
        assert!(p.validate().unwrap_err().contains("AEO factor"));
    }
}
