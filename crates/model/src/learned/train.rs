//! Training the two heads of the learned model (as in DATE): the
//! probability that an inspection finds fraud, and the revenue recovered
//! when it does.

use forust_ml::constraints::{Constraint, ConstraintMap};
use forust_ml::metric::Metric;
use forust_ml::objective::ObjectiveType;
use forust_ml::{GradientBooster, Matrix};

use super::features::{FEATURES, ITEM_FEATURES, ItemColumns, PER_ENTITY};
use super::forest::Forest;
use super::profiles::{ENTITIES, EntityKeys, ProfileBuilder, Tally, fold_of};
use super::{LearnedModel, LearnedSummary, MIN_LABELLED_FRAUDS};

/// The outcome of each labelled item.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outcome {
    pub fraud: bool,
    /// Revenue recovered (0 when compliant or not known).
    pub recovered: f64,
    /// Day of the declaration (days since 1970): the latest share of days
    /// is held out to decide when to stop adding trees.
    pub day: i32,
    /// How many items like it the inspected ones stand for (selection
    /// weighting; 1 when unknown).
    pub weight: f64,
}

/// Each labelled item's share of its declaration's revenue recovered by a
/// control of the whole declaration (a post-clearance audit), given the
/// items' declarations (consecutive rows of a declaration together), their
/// revenue at stake, and the revenue the control recovered (the same on
/// each row of a declaration). The part of the revenue the evidence
/// accounts for (the declaration's total stake, up to all of it) goes to
/// the items in proportion to their stakes, the rest evenly (a NaN,
/// negative or infinite stake counts as none).
///
/// An audit that recovered 200,000 on a declaration of a misdeclared spirit
/// and three honest cartons owes it to the spirit, whose duty gap the
/// evidence measures: split evenly, the revenue head learned that cartons
/// recover 50,000 and spirits a quarter of their gap. But where the
/// evidence saw little of what was recovered (a stake of 3.50 on a
/// sibling of the item actually at fault), it must not take it all.
pub fn declaration_revenue_shares(
    declarations: &[&str],
    at_stake: &[f64],
    recovered: &[f64],
) -> Vec<f64> {
    assert_eq!(declarations.len(), at_stake.len(), "one stake per item");
    assert_eq!(declarations.len(), recovered.len(), "one revenue per item");
    let positive = |v: f64| if v.is_finite() && v > 0.0 { v } else { 0.0 };
    let mut shares = vec![0.0; declarations.len()];
    let mut start = 0;
    for end in 1..=declarations.len() {
        if end < declarations.len() && declarations[end] == declarations[start] {
            continue;
        }
        let total: f64 = (start..end).map(|i| positive(at_stake[i])).sum();
        let revenue = positive(recovered[start]);
        let explained = if revenue > 0.0 {
            (total / revenue).min(1.0)
        } else if total > 0.0 {
            1.0
        } else {
            0.0
        };
        let even = 1.0 / (end - start) as f64;
        for (row, share) in shares.iter_mut().enumerate().take(end).skip(start) {
            let proportional = if total > 0.0 {
                positive(at_stake[row]) / total
            } else {
                even
            };
            *share = explained * proportional + (1.0 - explained) * even;
        }
        start = end;
    }
    shares
}

/// Share of the labelled items, the latest by declaration day, held out to
/// stop boosting when it no longer improves on later data.
const VALIDATION_SHARE: f64 = 0.15;
/// Boosting stops after this many rounds without improvement.
const STOPPING_ROUNDS: usize = 40;
/// Fewer frauds among the held-out days than this: no early stopping, no
/// Platt scaling.
const MIN_VALIDATION_FRAUDS: u64 = 20;
/// Trees trained without held-out days to stop on.
const UNVALIDATED_TREES: usize = 120;
/// Half-life, in days, of an outcome's weight in the fraud head's fit: an
/// inspection this many days older than the latest labelled day counts
/// half as much. Fraud moves (a product starts being undervalued, traders
/// change routes), and the latest inspections say more about the fraud of
/// the items about to be scored than those of a year before, which still
/// count (an eighth at the far end of a 12-month window). The entity
/// profiles stay undecayed: decaying them too was tried and ranked worse.
/// Measured in docs/selection.md (drifting warehouses, month by month)
/// and docs/refresh.md (the six generator variants).
const RECENCY_HALF_LIFE_DAYS: f64 = 120.0;
const SEED: u64 = 7;

/// What is known of the direction of the evidence: a lower price than the
/// reference, a likelier misclassification, a riskier origin and a worse
/// inspection record never make fraud less likely. Trees held to it cannot
/// learn a noise pattern against it, and rank new data more reliably.
fn fraud_constraints() -> ConstraintMap {
    let mut map = ConstraintMap::new();
    map.insert(0, Constraint::Negative);
    map.insert(1, Constraint::Positive);
    map.insert(2, Constraint::Positive);
    for e in 0..ENTITIES.len() {
        map.insert(ITEM_FEATURES.len() + e * PER_ENTITY, Constraint::Positive);
    }
    map
}

fn booster(objective: ObjectiveType, iterations: usize, depth: usize) -> GradientBooster {
    let (metric, constraints) = match objective {
        ObjectiveType::LogLoss => (Metric::LogLoss, Some(fraud_constraints())),
        _ => (Metric::RootMeanSquaredError, None),
    };
    GradientBooster::default()
        .set_monotone_constraints(constraints)
        .set_objective_type(objective)
        .set_iterations(iterations)
        .set_learning_rate(0.05)
        .set_max_depth(depth)
        .set_l2(1.0)
        .set_min_leaf_weight(1.0)
        .set_nbins(256)
        .set_subsample(1.0)
        .set_colsample_bytree(0.8)
        .set_seed(SEED)
        .set_early_stopping_rounds(Some(STOPPING_ROUNDS))
        .set_parallel(true)
        // Column-at-a-time histograms add in a fixed order: the same
        // data gives the same trees on any number of threads.
        .set_tiled_histograms(false)
        .set_evaluation_metric(Some(metric))
}

/// Rows of a column-major matrix, as a new column-major matrix.
fn take_rows(matrix: &[f64], rows: usize, keep: &[usize]) -> Vec<f64> {
    let mut out = Vec::with_capacity(keep.len() * FEATURES);
    for f in 0..FEATURES {
        let column = &matrix[f * rows..(f + 1) * rows];
        out.extend(keep.iter().map(|&r| column[r]));
    }
    out
}

fn fit(
    objective: ObjectiveType,
    iterations: usize,
    depth: usize,
    matrix: &[f64],
    rows: usize,
    y: &[f64],
    weights: &[f64],
    train: &[usize],
    valid: &[usize],
) -> Result<Forest, String> {
    let x_train = take_rows(matrix, rows, train);
    let x_valid = take_rows(matrix, rows, valid);
    let y_train: Vec<f64> = train.iter().map(|&r| y[r]).collect();
    let y_valid: Vec<f64> = valid.iter().map(|&r| y[r]).collect();
    let w_train: Vec<f64> = train.iter().map(|&r| weights[r]).collect();
    let w_valid: Vec<f64> = valid.iter().map(|&r| weights[r]).collect();
    let mut model = booster(objective, iterations, depth);
    let evaluation = (!valid.is_empty()).then(|| {
        vec![(
            Matrix::new(&x_valid, valid.len(), FEATURES),
            y_valid.as_slice(),
            w_valid.as_slice(),
        )]
    });
    if evaluation.is_none() {
        // Nothing to stop on: a modest ensemble, not the full budget.
        model = model
            .set_early_stopping_rounds(None)
            .set_iterations(iterations.min(UNVALIDATED_TREES));
    }
    model
        .fit(
            &Matrix::new(&x_train, train.len(), FEATURES),
            &y_train,
            &w_train,
            evaluation,
        )
        .map_err(|e| format!("training the learned model: {e}"))?;
    Ok(Forest::compile(&model))
}

/// Trains the learned model on labelled items; `None` when they hold fewer
/// than [`MIN_LABELLED_FRAUDS`] frauds (the unsupervised model then ranks
/// alone).
pub fn train(
    items: &ItemColumns,
    declaration_ids: &[&str],
    outcomes: &[Outcome],
) -> Result<Option<LearnedModel>, String> {
    let rows = items.len();
    if declaration_ids.len() != rows || outcomes.len() != rows {
        return Err("labels and items differ in length".into());
    }
    let frauds = outcomes.iter().filter(|o| o.fraud).count() as u64;
    let recovered: f64 = outcomes.iter().map(|o| o.recovered.max(0.0)).sum();
    if frauds < MIN_LABELLED_FRAUDS {
        return Ok(None);
    }
    // Time-ordered split: the latest days validate.
    let mut days: Vec<i32> = outcomes.iter().map(|o| o.day).collect();
    days.sort_unstable();
    let cut = days[(((rows as f64) * (1.0 - VALIDATION_SHARE)) as usize).min(rows - 1)];
    let (mut train_rows, mut valid_rows): (Vec<usize>, Vec<usize>) =
        (0..rows).partition(|&r| outcomes[r].day < cut);
    if train_rows.is_empty()
        || (valid_rows.iter().filter(|&&r| outcomes[r].fraud).count() as u64)
            < MIN_VALIDATION_FRAUDS
    {
        // One day of data, or too few frauds to stop or calibrate on
        // (both would follow noise): train on all, no rescaling.
        train_rows = (0..rows).collect();
        valid_rows.clear();
    }

    // Profiles as scoring will see them: a training row's from the other
    // folds of the training days, a held-out row's from all the training
    // days (at scoring, only outcomes before an item are known; profiles
    // fed by the held-out days' own outcomes would make stopping and
    // calibration trust them more than new items can).
    let keys = EntityKeys::of(items);
    let folds: Vec<usize> = declaration_ids.iter().map(|d| fold_of(d)).collect();
    let tally = |row: usize| Tally {
        inspections: 1.0,
        frauds: f64::from(u8::from(outcomes[row].fraud)),
        revenue: outcomes[row].recovered.max(0.0),
    };
    let mut builder = ProfileBuilder::default();
    for &row in &train_rows {
        builder.add(&keys, row, folds[row], tally(row));
    }
    let mut held_out = vec![false; rows];
    for &row in &valid_rows {
        held_out[row] = true;
    }
    let matrix = items.feature_matrix(
        &keys,
        false,
        |e, key, row| builder.out_of_fold(e, key, (!held_out[row]).then_some(folds[row])),
        |_, _| {},
    );
    // The model keeps every outcome for scoring.
    for &row in &valid_rows {
        builder.add(&keys, row, folds[row], tally(row));
    }
    let y: Vec<f64> = outcomes
        .iter()
        .map(|o| f64::from(u8::from(o.fraud)))
        .collect();
    let mut weights: Vec<f64> = outcomes
        .iter()
        .map(|o| {
            if o.weight.is_finite() && o.weight > 0.0 {
                o.weight
            } else {
                1.0
            }
        })
        .collect();
    let latest = outcomes.iter().map(|o| o.day).max().unwrap_or(0);
    for (weight, outcome) in weights.iter_mut().zip(outcomes) {
        *weight *= recency_weight(i64::from(latest) - i64::from(outcome.day));
    }
    let train_rows = sample_compliant(train_rows, outcomes, declaration_ids, &mut weights);
    let fraud = fit(
        ObjectiveType::LogLoss,
        400,
        5,
        &matrix,
        rows,
        &y,
        &weights,
        &train_rows,
        &valid_rows,
    )?;

    // Calibrated on the held-out latest days: their outcomes are as
    // incomplete as those of the days the model will score (audits after
    // clearance come months later), and the inspected share is unweighted.
    let held_out_raw = fraud.predict(&take_rows(&matrix, rows, &valid_rows), valid_rows.len());
    let calibration = if valid_rows.is_empty() {
        IDENTITY
    } else {
        let labels: Vec<f64> = valid_rows.iter().map(|&r| y[r]).collect();
        platt(&held_out_raw, &labels)
    };

    // Revenue head: log revenue of the frauds that recovered some.
    let paying: Vec<usize> = (0..rows)
        .filter(|&r| outcomes[r].fraud && outcomes[r].recovered > 0.0)
        .collect();
    let revenue = if paying.len() as u64 >= MIN_LABELLED_FRAUDS {
        let log_revenue: Vec<f64> = outcomes
            .iter()
            .map(|o| o.recovered.max(1e-9).ln())
            .collect();
        let (train, valid): (Vec<usize>, Vec<usize>) =
            paying.iter().partition(|&&r| outcomes[r].day < cut);
        let (train, valid) = if train.is_empty() || valid.is_empty() {
            (paying.clone(), vec![])
        } else {
            (train, valid)
        };
        Some(fit(
            ObjectiveType::SquaredLoss,
            200,
            4,
            &matrix,
            rows,
            &log_revenue,
            &vec![1.0; rows],
            &train,
            &valid,
        )?)
    } else {
        None
    };
    let profiles = builder.finish();
    // How far the learned probability should outweigh the evidence: the
    // weight that ranks the held-out days' labelled items best.
    let cap = super::learned_weight(frauds);
    let weight = if valid_rows.is_empty() {
        cap
    } else {
        let [a, b] = calibration;
        let probability: Vec<f64> = held_out_raw
            .iter()
            .map(|r| super::forest::sigmoid(a * r + b))
            .collect();
        let evidence: Vec<f64> = valid_rows
            .iter()
            .map(|&r| super::held_out::unsupervised_score(items, r))
            .collect();
        let labels: Vec<bool> = valid_rows.iter().map(|&r| outcomes[r].fraud).collect();
        super::held_out::held_out_weight(
            &probability,
            &evidence,
            &labels,
            profiles.overall_rate,
            cap,
        )
    };
    let summary = LearnedSummary {
        labelled_items: rows as u64,
        labelled_frauds: frauds,
        recovered_revenue: recovered,
        fraud_trees: fraud.trees.len() as u64,
        revenue_trees: revenue.as_ref().map_or(0, |r| r.trees.len() as u64),
        weight,
        profiles: profiles.entries() as u64,
        entities: ENTITIES.len() as u64,
    };
    Ok(Some(LearnedModel {
        summary,
        fraud,
        calibration,
        revenue,
        profiles,
    }))
}

/// The weight of an outcome `age` days older than the latest labelled one
/// (see [`RECENCY_HALF_LIFE_DAYS`]).
fn recency_weight(age: i64) -> f64 {
    0.5f64.powf(age as f64 / RECENCY_HALF_LIFE_DAYS)
}

/// Training rows the trees are fitted on at most: beyond it compliant rows
/// are sampled (every fraud kept). Fitting grows with the rows, and a
/// 10-million-item window inspected at 24% has 2.4 million of them, nearly
/// all compliant; the frauds carry the ranking.
const MAX_FIT_ROWS: usize = 500_000;

/// `train_rows` with the compliant ones sampled down to [`MAX_FIT_ROWS`]
/// in all, each kept one weighted up by the inverse of the sampling rate
/// (so the fraud rate the trees see is the labelled one). Deterministic:
/// a row is kept by a hash of its declaration and position. Held-out rows
/// are never sampled: stopping and calibration see them all.
fn sample_compliant(
    train_rows: Vec<usize>,
    outcomes: &[Outcome],
    declaration_ids: &[&str],
    weights: &mut [f64],
) -> Vec<usize> {
    let frauds = train_rows.iter().filter(|&&r| outcomes[r].fraud).count();
    let compliant = train_rows.len() - frauds;
    if train_rows.len() <= MAX_FIT_ROWS || compliant == 0 {
        return train_rows;
    }
    let rate = (MAX_FIT_ROWS.saturating_sub(frauds) as f64 / compliant as f64).clamp(0.01, 1.0);
    train_rows
        .into_iter()
        .filter(|&r| {
            if outcomes[r].fraud {
                return true;
            }
            let hash = crate::fnv1a(
                crate::fnv1a(crate::FNV_OFFSET, declaration_ids[r].bytes()),
                (r as u64).to_le_bytes(),
            );
            let keep = ((hash >> 11) as f64 / (1u64 << 53) as f64) < rate;
            if keep {
                weights[r] /= rate;
            }
            keep
        })
        .collect()
}

/// No rescaling: `sigmoid(1 · raw + 0)`.
pub const IDENTITY: [f64; 2] = [1.0, 0.0];

/// Platt scaling: the slope and intercept of `sigmoid(a · raw + b)` that
/// fit `labels` best (log-loss, by Newton's method). The identity when the
/// fit fails or would reverse the ranking.
pub fn platt(raw: &[f64], labels: &[f64]) -> [f64; 2] {
    let (mut a, mut b) = (1.0f64, 0.0f64);
    for _ in 0..100 {
        let (mut ga, mut gb, mut haa, mut hab, mut hbb) = (0.0, 0.0, 1e-9, 0.0, 1e-9);
        for (&s, &y) in raw.iter().zip(labels) {
            let p = super::forest::sigmoid(a * s + b);
            let d = p - y;
            let h = (p * (1.0 - p)).max(1e-12);
            ga += d * s;
            gb += d;
            haa += h * s * s;
            hab += h * s;
            hbb += h;
        }
        let det = haa * hbb - hab * hab;
        if !det.is_finite() || det.abs() < 1e-18 {
            return IDENTITY;
        }
        let da = (hbb * ga - hab * gb) / det;
        let db = (haa * gb - hab * ga) / det;
        a -= da;
        b -= db;
        if !(a.is_finite() && b.is_finite()) {
            return IDENTITY;
        }
        if da.abs() < 1e-10 && db.abs() < 1e-10 {
            break;
        }
    }
    if a > 0.0 { [a, b] } else { IDENTITY }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_declarations_revenue_goes_where_the_duty_gap_is() {
        let shares = super::declaration_revenue_shares(
            &["A", "A", "A", "B", "B", "C", "D", "D", "E", "E"],
            &[
                300.0,
                100.0,
                0.0,
                0.0,
                f64::NAN,
                -5.0,
                2.0,
                f64::INFINITY,
                20.0,
                0.0,
            ],
            &[
                400.0, 400.0, 400.0, 50.0, 50.0, 10.0, 2.0, 2.0, 100.0, 100.0,
            ],
        );
        // A: the stakes explain all 400, in proportion to them; B: none at
        // stake, evenly; C: its only item; D: an infinite stake counts as
        // none; E: the stake explains a fifth of the 100, the rest evenly.
        let expected = [0.75, 0.25, 0.0, 0.5, 0.5, 1.0, 1.0, 0.0, 0.6, 0.4];
        for (got, want) in shares.iter().zip(expected) {
            assert!((got - want).abs() < 1e-12, "{shares:?}");
        }
        assert!(super::declaration_revenue_shares(&[], &[], &[]).is_empty());
    }

    use super::*;

    #[test]
    fn compliant_rows_are_sampled_down_and_weighted_up() {
        let rows = 900_000;
        let outcomes: Vec<Outcome> = (0..rows)
            .map(|i| Outcome {
                fraud: i % 50 == 0,
                recovered: 0.0,
                day: 0,
                weight: 1.0,
            })
            .collect();
        let ids: Vec<String> = (0..rows).map(|i| format!("D{}", i / 3)).collect();
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        let mut weights = vec![1.0; rows];
        let kept = sample_compliant((0..rows).collect(), &outcomes, &ids, &mut weights);
        let frauds = kept.iter().filter(|&&r| outcomes[r].fraud).count();
        assert_eq!(frauds, rows / 50, "every fraud kept");
        let n = kept.len() as f64;
        assert!(
            (n - MAX_FIT_ROWS as f64).abs() < 0.01 * MAX_FIT_ROWS as f64,
            "{n}"
        );
        // The kept compliant rows stand for all of them.
        let represented: f64 = kept
            .iter()
            .filter(|&&r| !outcomes[r].fraud)
            .map(|&r| weights[r])
            .sum();
        let compliant = (rows - rows / 50) as f64;
        assert!(
            (represented - compliant).abs() < 0.01 * compliant,
            "{represented}"
        );
        let mut again = vec![1.0; rows];
        assert_eq!(
            sample_compliant((0..rows).collect(), &outcomes, &ids, &mut again),
            kept
        );
        // Few rows: all kept, weights untouched.
        let mut few = vec![1.0; 1000];
        assert_eq!(
            sample_compliant((0..1000).collect(), &outcomes, &ids, &mut few).len(),
            1000
        );
        assert!(few.iter().all(|&w| w == 1.0));
    }

    /// Items whose only informative field is the duty rate, high (10) or
    /// low (0); a fraud found at a deterministic rate `p` of each kind.
    fn duty_items(
        kinds: &[(i32, bool, f64, usize)],
    ) -> (Vec<arrow::array::ArrayRef>, Vec<String>, Vec<Outcome>) {
        use super::super::features::{COLUMNS, Number, is_text};
        use arrow::array::{ArrayRef, Float64Array, StringArray};
        use std::sync::Arc;
        let (mut duty, mut ids, mut outcomes) = (Vec::new(), Vec::new(), Vec::new());
        for &(day, high, p, count) in kinds {
            for i in 0..count {
                duty.push(if high { 10.0 } else { 0.0 });
                ids.push(format!("D{day}-{high}-{i}"));
                outcomes.push(Outcome {
                    fraud: ((i as f64 + 0.5) * p).fract() < p,
                    recovered: 0.0,
                    day,
                    weight: 1.0,
                });
            }
        }
        let rows = duty.len();
        let arrays = (0..COLUMNS.len())
            .map(|c| -> ArrayRef {
                if is_text(c) {
                    Arc::new(StringArray::from(vec!["X"; rows]))
                } else if c == Number::DutyRate as usize {
                    Arc::new(Float64Array::from(duty.clone()))
                } else {
                    Arc::new(Float64Array::from(vec![1.0; rows]))
                }
            })
            .collect();
        (arrays, ids, outcomes)
    }

    #[test]
    fn recent_outcomes_outweigh_older_ones() {
        // For 200 days frauds are found on high-duty items; for the last
        // 165 the same fraud moves to low-duty ones. Among the days the
        // trees are fitted on (the latest are held out to stop on),
        // counted evenly, the older pattern has nearly twice the outcomes
        // and the held-out days stop the trees at once (a forest that
        // ranks high duty first, or nothing learned); weighed by recency,
        // the new pattern leads the fitted days (0.19 against 0.16), the
        // trees rank low duty first, and the scaling fitted on the
        // held-out days (0.30 against 0.05) spreads the two apart.
        let mut kinds = Vec::new();
        for day in 0..365 {
            let recent = day >= 200;
            kinds.push((day, true, if recent { 0.05 } else { 0.3 }, 20));
            kinds.push((day, false, if recent { 0.3 } else { 0.05 }, 20));
        }
        let (arrays, ids, outcomes) = duty_items(&kinds);
        let items = ItemColumns::from_arrays(&arrays).unwrap();
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        let model = train(&items, &ids, &outcomes)
            .unwrap()
            .expect("enough frauds");
        let (arrays, _, _) = duty_items(&[(365, true, 0.0, 1), (365, false, 0.0, 1)]);
        let scored = model.score(&ItemColumns::from_arrays(&arrays).unwrap(), false);
        let [high, low] = scored.probability[..] else {
            panic!("two rows scored")
        };
        assert!(low > 2.0 * high, "low duty {low}, high duty {high}");
        assert_eq!(recency_weight(0), 1.0);
        assert!((recency_weight(RECENCY_HALF_LIFE_DAYS as i64) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn platt_recovers_a_known_scaling() {
        // Labels drawn as sigmoid(2 s - 1), deterministically by quantile.
        let mut raw = Vec::new();
        let mut labels = Vec::new();
        for i in 0..20_000 {
            let s = -4.0 + 8.0 * (i as f64 / 20_000.0);
            let p = super::super::forest::sigmoid(2.0 * s - 1.0);
            let u = ((i as f64) * 0.618_033_988_75).fract();
            raw.push(s);
            labels.push(if u < p { 1.0 } else { 0.0 });
        }
        let [a, b] = platt(&raw, &labels);
        assert!(
            (a - 2.0).abs() < 0.15 && (b + 1.0).abs() < 0.15,
            "a {a} b {b}"
        );
        // A scaling that would reverse the ranking is refused.
        let reversed: Vec<f64> = labels.iter().map(|l| 1.0 - l).collect();
        assert_eq!(platt(&raw, &reversed), IDENTITY);
    }
}
