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
pub fn held_out_weight(
    probability: &[f64],
    evidence: &[f64],
    labels: &[bool],
    base_rate: f64,
) -> f64 {
    let mut best = (f64::NEG_INFINITY, 1.0);
    for &weight in TRIED_WEIGHTS.iter().rev() {
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
        let mut j = i;
        let mut group_hits = 0;
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
    }

    #[test]
    fn the_evidence_keeps_a_say_where_the_trees_miss_what_it_sees() {
        // The trees rank the first four well, but give the last fraud the
        // lowest probability; its evidence is strong.
        let probability = [0.9, 0.8, 0.05, 0.04, 0.01];
        let evidence = [0.5, 0.4, 0.1, 0.1, 0.95];
        let labels = [true, true, false, false, true];
        let w = super::held_out_weight(&probability, &evidence, &labels, 0.1);
        assert!(w < 1.0, "weight {w}");
        // Where the trees rank every fraud first, they rank alone.
        let labels = [true, true, false, false, false];
        assert_eq!(
            super::held_out_weight(&probability, &evidence, &labels, 0.1),
            1.0
        );
    }
}
