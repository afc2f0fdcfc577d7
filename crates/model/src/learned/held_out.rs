//! How much `risk_score` should trust the learned probability against the
//! unsupervised evidence, decided on the labelled items of the latest days
//! held out from training.

use super::features::ItemColumns;

/// The unsupervised combination of `row`'s evidence (what `risk_score`
/// gives without a learned model).
pub(crate) fn unsupervised_score(items: &ItemColumns, row: usize) -> f64 {
    use super::features::Number;
    let known = |v: f64| v.is_finite().then_some(v);
    crate::combine::risk_score(
        known(items.number(Number::ValuationZ, row)),
        known(items.number(Number::Misclassification, row)),
        known(items.number(Number::OriginRisk, row)),
    )
}

/// Held-out frauds below which the weight is not chosen: the average
/// precision of a few dozen frauds moves with each one, and the choice
/// would follow that noise.
pub const MIN_CHOOSING_FRAUDS: u64 = 50;

/// Weights of the learned probability tried against the evidence.
const TRIED_WEIGHTS: [f64; 11] = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0];

/// The weight of the learned probability in `risk_score`'s blend (see
/// `combine::blend`) under which the held-out days' labelled items rank
/// best, by average precision (the top of the ranking is what gets
/// inspected); the larger weight on a tie.
///
/// The trees take the evidence as inputs, but they learn from the
/// outcomes of inspections, which lag (an audit comes months later), miss
/// frauds and label whole declarations; a fraud the window's inspections
/// never met (a trader starting to reroute after a new duty) they score by
/// the trader's clean record. On data where that happens the evidence
/// keeps a say; where the trees rank better alone, they rank alone.
///
/// `cap` is the most the learned model may weigh (frauds / 300, see
/// `learned_weight`): the weights tried are those below it and the cap
/// itself. With fewer than [`MIN_CHOOSING_FRAUDS`] frauds among the
/// held-out items the choice would follow noise: the cap, untried.
pub fn held_out_weight(
    probability: &[f64],
    evidence: &[f64],
    labels: &[bool],
    base_rate: f64,
    cap: f64,
) -> f64 {
    if (labels.iter().filter(|&&l| l).count() as u64) < MIN_CHOOSING_FRAUDS {
        return cap;
    }
    let tried =
        std::iter::once(cap).chain(TRIED_WEIGHTS.iter().rev().copied().filter(|&w| w < cap));
    let mut best = (f64::NEG_INFINITY, cap);
    for weight in tried {
        let scores: Vec<f64> = probability
            .iter()
            .zip(evidence)
            .map(|(&p, &e)| crate::combine::blend(e, Some(p), weight, base_rate))
            .collect();
        let precision = average_precision(&scores, labels);
        if precision > best.0 + 1e-12 {
            best = (precision, weight);
        }
    }
    best.1
}

/// Average precision of ranking `labels` by `scores` (highest first; tied
/// scores count as one cut, at their group's end).
fn average_precision(scores: &[f64], labels: &[bool]) -> f64 {
    let positives = labels.iter().filter(|&&l| l).count();
    if positives == 0 {
        return 0.0;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let (mut seen, mut hits, mut sum) = (0usize, 0usize, 0.0);
    let mut i = 0;
    while i < order.len() {
        // The group's first row counts even when its score is NaN (which
        // equals nothing, not even itself).
        let mut j = i + 1;
        let mut group_hits = usize::from(labels[order[i]]);
        while j < order.len() && scores[order[j]] == scores[order[i]] {
            group_hits += usize::from(labels[order[j]]);
            j += 1;
        }
        seen += j - i;
        hits += group_hits;
        sum += group_hits as f64 * hits as f64 / seen as f64;
        i = j;
    }
    sum / positives as f64
}

#[cfg(test)]
mod tests {
    #[test]
    fn average_precision_counts_ties_as_one_cut() {
        let ap = super::average_precision;
        assert_eq!(ap(&[0.9, 0.8, 0.1], &[true, true, false]), 1.0);
        // Hits at ranks 1 and 3: (1/1 + 2/3) / 2.
        assert!((ap(&[0.9, 0.8, 0.7], &[true, false, true]) - 5.0 / 6.0).abs() < 1e-12);
        // All tied: one cut at 3, precision 2/3 for both hits.
        assert!((ap(&[0.5; 3], &[true, false, true]) - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(ap(&[0.5], &[false]), 0.0);
        // NaN scores end (total order puts them first) without hanging.
        assert!(ap(&[f64::NAN, 0.2, f64::NAN], &[true, false, false]) > 0.0);
    }

    #[test]
    fn the_evidence_keeps_a_say_where_the_trees_miss_what_it_sees() {
        // The trees rank the first four well, but give the last fraud the
        // lowest probability; its evidence is strong.
        // Repeated past the minimum of held-out frauds.
        let repeat = |v: &[f64]| v.repeat(super::MIN_CHOOSING_FRAUDS as usize);
        let probability = repeat(&[0.9, 0.8, 0.05, 0.04, 0.01]);
        let evidence = repeat(&[0.5, 0.4, 0.1, 0.1, 0.95]);
        let missed = [true, true, false, false, true].repeat(super::MIN_CHOOSING_FRAUDS as usize);
        let w = super::held_out_weight(&probability, &evidence, &missed, 0.1, 1.0);
        assert!(w < 1.0, "weight {w}");
        // Never above the cap; the cap itself is tried.
        let capped = super::held_out_weight(&probability, &evidence, &missed, 0.1, 0.05);
        assert!(capped <= 0.05, "weight {capped}");
        // Where the trees rank every fraud first, they rank alone (up to
        // the cap).
        let ranked = [true, true, false, false, false].repeat(super::MIN_CHOOSING_FRAUDS as usize);
        assert_eq!(
            super::held_out_weight(&probability, &evidence, &ranked, 0.1, 1.0),
            1.0
        );
        assert_eq!(
            super::held_out_weight(&probability, &evidence, &ranked, 0.1, 0.35),
            0.35
        );
        // Too few held-out frauds to choose: the cap.
        let few = [true, true, false, false, true];
        assert_eq!(
            super::held_out_weight(&probability[..5], &evidence[..5], &few, 0.1, 1.0),
            1.0
        );
    }
}
