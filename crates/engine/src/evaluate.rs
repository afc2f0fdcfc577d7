//! Risk monitoring: how well a score ranks known fraud. AUC, and at each
//! inspection rate n% (the share of items an administration could control,
//! taken from the top of the ranking): precision (Pre@n%), recall (Rec@n%)
//! and share of the fraud revenue caught (Rev@n%), as in the customs fraud
//! detection literature (e.g. the DATE paper, KDD 2020).

use arrow::array::{Array, AsArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Date32Type, Float64Type};
use chrono::NaiveDate;
use datafusion::prelude::ParquetReadOptions;

use crate::{EngineError, Result, Session, WritePolicy};

/// Which outcomes count as fraud.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Labels {
    /// Inspected items only; fraud when an inspection found it; revenue is
    /// what was recovered. What a real administration has.
    Inspections,
    /// Every item, against the synthetic generator's ground truth
    /// (`_truth/`); revenue is the revenue lost.
    Truth,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AtRate {
    pub rate_percent: f64,
    pub selected: usize,
    pub precision: f64,
    pub recall: f64,
    pub revenue: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub items: usize,
    pub frauds: usize,
    pub auc: f64,
    pub at: Vec<AtRate>,
    /// The first and last declaration day of the items measured.
    pub period: Option<(NaiveDate, NaiveDate)>,
    /// The training window of the session's model (first day, day after
    /// the last), when it has one.
    pub window: Option<(NaiveDate, NaiveDate)>,
    /// Items measured that lie in that window: their outcomes may have
    /// taught the model, so they flatter it.
    pub in_window: usize,
}

/// What to measure: the score, the labels and, optionally, which items and
/// which kind of fraud.
#[derive(Debug, Clone)]
pub struct EvaluateOptions<'a> {
    /// An SQL expression over the columns of `declarations`, higher
    /// meaning riskier.
    pub score: &'a str,
    pub labels: Labels,
    /// Inspection rates in percent.
    pub rates: &'a [f64],
    /// An SQL predicate over the columns of `declarations` choosing the
    /// items to measure, e.g. the months after the model's training window.
    pub filter: Option<&'a str>,
    /// Count only this kind of fraud (`valuation`, `classification`,
    /// `origin`, `other`: the contract's categories); items with another
    /// kind count as not fraudulent.
    pub fraud_type: Option<&'a str>,
    /// Join the published `risk.declaration_scores` (its score columns), so
    /// the score can be what a refresh (or a backtest) published:
    /// `risk_score`.
    /// Items it did not score are left out.
    pub published_scores: bool,
}

/// The kinds of fraud the labels distinguish.
pub const FRAUD_TYPES: [&str; 4] = ["valuation", "classification", "origin", "other"];

/// The table of the ground truth the generator writes.
const TRUTH_TABLE: &str = "aduana_truth";

/// Scores every labelled item with `score` (an SQL expression over the
/// columns of `declarations`) and measures the ranking.
pub async fn evaluate(session: &Session, options: &EvaluateOptions<'_>) -> Result<Evaluation> {
    let EvaluateOptions {
        score,
        labels,
        rates,
        filter,
        fraud_type,
        published_scores,
    } = *options;
    let scores = if published_scores {
        " JOIN (SELECT declaration_id AS scored_declaration_id, item_no AS scored_item_no, \
                valuation_deviation, hs_misclassification_probability, origin_risk, \
                revenue_at_risk, risk_score, risk_level, model_version \
                FROM risk.declaration_scores) s \
              ON s.scored_declaration_id = d.declaration_id AND s.scored_item_no = d.item_no"
    } else {
        ""
    };
    if let Some(kind) = fraud_type.filter(|k| !FRAUD_TYPES.contains(k)) {
        return Err(EngineError::InvalidOption(format!(
            "fraud type '{kind}' is not one of {}",
            FRAUD_TYPES.join(", ")
        )));
    }
    // Fraud of the chosen kind only; the kind is one of FRAUD_TYPES, so
    // it is safe to quote into SQL.
    let of_kind =
        |column: &str| fraud_type.map_or(String::new(), |kind| format!(" AND {column} = '{kind}'"));
    if let Some(bad) = rates.iter().find(|r| !(**r > 0.0 && **r <= 100.0)) {
        return Err(EngineError::InvalidOption(format!(
            "inspection rate {bad}% is not in (0, 100]"
        )));
    }
    let sql = match labels {
        Labels::Truth => {
            let location = session.warehouse().location();
            let truth = location.url_of(&location.child("_truth"), true);
            let options = ParquetReadOptions::default().table_partition_cols(vec![
                ("year".into(), DataType::Int32),
                ("month".into(), DataType::Int32),
            ]);
            session
                .context()
                .register_parquet(TRUTH_TABLE, &truth, options)
                .await
                .map_err(|e| {
                    EngineError::InvalidOption(format!(
                        "--labels truth needs the generator's ground truth at {truth}: {e}"
                    ))
                })?;
            format!(
                "SELECT ({score}) AS score, COALESCE(t.fraud{kind}, false) AS fraud, \
                     CAST(t.revenue_loss AS DOUBLE) AS revenue, d.declaration_date AS day \
                 FROM declarations d JOIN {TRUTH_TABLE} t ON t.declaration_id = d.declaration_id AND t.item_no = d.item_no{scores}{filter}",
                kind = of_kind("t.fraud_type"),
                filter = filter.map_or(String::new(), |f| format!(" WHERE ({f})")),
            )
        }
        Labels::Inspections => {
            if session.warehouse().table("inspections").is_none() {
                return Err(EngineError::InvalidOption(
                    "--labels inspections: the warehouse has no inspections table".into(),
                ));
            }
            // An item is labelled by its own controls and by those of its
            // whole declaration (item_no NULL), as the model learns: fraud
            // when either found it; a whole declaration's revenue is split
            // evenly among its items (as in training), so it counts once;
            // with --fraud-type, only what fraud of that kind recovered.
            // The outcomes' columns are named apart from the declarations'
            // so that the score and the filter name those unqualified.
            format!(
                "WITH outcome AS (SELECT declaration_id AS label_declaration, item_no AS label_item, \
                     MAX(CASE WHEN result = 'fraud'{kind} THEN 1 ELSE 0 END) AS label_fraud, \
                     CAST(COALESCE(SUM(CASE WHEN result = 'fraud'{kind} THEN additional_revenue END), 0) AS DOUBLE) \
                         AS label_revenue \
                     FROM inspections GROUP BY declaration_id, item_no), \
                 whole AS (SELECT label_declaration AS whole_declaration, label_fraud AS whole_fraud, \
                     label_revenue / n.items AS whole_revenue \
                     FROM outcome JOIN ({items}) n ON n.declaration_id = label_declaration \
                     WHERE label_item IS NULL) \
                 SELECT ({score}) AS score, GREATEST(label_fraud, whole_fraud) = 1 AS fraud, \
                     COALESCE(label_revenue, 0) + COALESCE(whole_revenue, 0) AS revenue, \
                     d.declaration_date AS day \
                 FROM declarations d \
                 LEFT JOIN outcome ON label_declaration = d.declaration_id AND label_item = d.item_no \
                 LEFT JOIN whole ON whole_declaration = d.declaration_id{scores} \
                 WHERE (label_fraud IS NOT NULL OR whole_fraud IS NOT NULL){also}",
                kind = of_kind("fraud_type"),
                items = crate::WHOLE_CONTROLLED_ITEMS,
                also = filter.map_or(String::new(), |f| format!(" AND ({f})")),
            )
        }
    };
    let statements = Session::statements(&sql)?;
    if statements.len() != 1 {
        return Err(EngineError::InvalidOption(
            "--score must be one SQL expression".into(),
        ));
    }
    let frame = session
        .execute(
            statements.into_iter().next().expect("one statement"),
            WritePolicy::ReadOnly,
        )
        .await?;
    let window = model_window(session).await?;
    let mut rows: Vec<(f64, bool, f64)> = Vec::new();
    let mut period: Option<(i32, i32)> = None;
    let mut in_window = 0;
    for batch in frame.collect().await? {
        let days = cast(batch.column(3), &DataType::Date32)?;
        let days = days.as_primitive::<Date32Type>();
        for day in days.iter().flatten() {
            period = Some(period.map_or((day, day), |(a, b)| (a.min(day), b.max(day))));
            if let Some((start, end)) = window {
                let (start, end) = (
                    Date32Type::from_naive_date(start),
                    Date32Type::from_naive_date(end),
                );
                in_window += usize::from(start <= day && day < end);
            }
        }
        let score = cast(batch.column(0), &DataType::Float64)
            .map_err(|e| EngineError::InvalidOption(format!("--score must be numeric: {e}")))?;
        let score = score.as_primitive::<Float64Type>();
        let fraud = batch.column(1).as_boolean();
        let revenue = batch.column(2).as_primitive::<Float64Type>();
        for i in 0..batch.num_rows() {
            // No score is no reason to inspect: it ranks last.
            let s = if score.is_valid(i) && score.value(i).is_finite() {
                score.value(i)
            } else {
                f64::NEG_INFINITY
            };
            let is_fraud = fraud.is_valid(i) && fraud.value(i);
            let r = if revenue.is_valid(i) && is_fraud {
                revenue.value(i).max(0.0)
            } else {
                0.0
            };
            rows.push((s, is_fraud, r));
        }
    }
    if labels == Labels::Truth {
        session.context().deregister_table(TRUTH_TABLE)?;
    }
    let to_date = |d: i32| Date32Type::to_naive_date_opt(d).expect("a date");
    Ok(Evaluation {
        period: period.map(|(a, b)| (to_date(a), to_date(b))),
        window,
        in_window,
        ..measure(rows, rates)
    })
}

/// The training window of the session's model: first day and the day
/// after the last.
async fn model_window(session: &Session) -> Result<Option<(NaiveDate, NaiveDate)>> {
    if !session.has_model() {
        return Ok(None);
    }
    let batches = session
        .sql(
            "SELECT window_start, window_end FROM risk_model_info()",
            WritePolicy::ReadOnly,
        )
        .await?
        .collect()
        .await?;
    let Some(batch) = batches.first().filter(|b| b.num_rows() > 0) else {
        return Ok(None);
    };
    let day = |i: usize| -> Option<NaiveDate> {
        let column = cast(batch.column(i), &DataType::Utf8).ok()?;
        NaiveDate::parse_from_str(column.as_string::<i32>().value(0), "%Y-%m-%d").ok()
    };
    Ok(day(0).zip(day(1)))
}

/// AUC (ties share their average rank) and the metrics at each rate.
pub fn measure(mut rows: Vec<(f64, bool, f64)>, rates: &[f64]) -> Evaluation {
    let items = rows.len();
    let frauds = rows.iter().filter(|r| r.1).count();
    let total_revenue: f64 = rows.iter().map(|r| r.2).sum();
    rows.sort_by(|a, b| b.0.total_cmp(&a.0));
    // AUC from the descending order: for each fraud, the share of
    // non-frauds ranked below it, ties counting half.
    let negatives = items - frauds;
    let mut auc_sum = 0.0;
    let mut i = 0;
    let mut negatives_above = 0usize;
    while i < items {
        let mut j = i;
        while j < items && rows[j].0 == rows[i].0 {
            j += 1;
        }
        let group_frauds = rows[i..j].iter().filter(|r| r.1).count();
        let group_negatives = (j - i) - group_frauds;
        auc_sum += group_frauds as f64
            * ((negatives - negatives_above - group_negatives) as f64
                + group_negatives as f64 / 2.0);
        negatives_above += group_negatives;
        i = j;
    }
    let auc = if frauds == 0 || negatives == 0 {
        f64::NAN
    } else {
        auc_sum / (frauds * negatives) as f64
    };
    let at = rates
        .iter()
        .map(|&rate| {
            let selected =
                ((items as f64 * rate / 100.0).ceil() as usize).clamp(1.min(items), items);
            let top = &rows[..selected];
            let hits = top.iter().filter(|r| r.1).count();
            let revenue: f64 = top.iter().map(|r| r.2).sum();
            AtRate {
                rate_percent: rate,
                selected,
                precision: if selected == 0 {
                    0.0
                } else {
                    hits as f64 / selected as f64
                },
                recall: if frauds == 0 {
                    0.0
                } else {
                    hits as f64 / frauds as f64
                },
                revenue: if total_revenue > 0.0 {
                    revenue / total_revenue
                } else {
                    0.0
                },
            }
        })
        .collect();
    Evaluation {
        items,
        frauds,
        auc,
        at,
        period: None,
        window: None,
        in_window: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfect_random_and_inverted_rankings() {
        let perfect = measure(
            vec![
                (0.9, true, 10.0),
                (0.8, true, 30.0),
                (0.2, false, 0.0),
                (0.1, false, 0.0),
            ],
            &[50.0],
        );
        assert_eq!(perfect.auc, 1.0);
        assert_eq!(
            perfect.at[0],
            AtRate {
                rate_percent: 50.0,
                selected: 2,
                precision: 1.0,
                recall: 1.0,
                revenue: 1.0
            }
        );
        let inverted = measure(vec![(0.1, true, 1.0), (0.9, false, 0.0)], &[50.0]);
        assert_eq!(inverted.auc, 0.0);
        assert_eq!(inverted.at[0].precision, 0.0);
        let ties = measure(vec![(0.5, true, 1.0), (0.5, false, 0.0)], &[100.0]);
        assert_eq!(ties.auc, 0.5);
    }

    #[test]
    fn revenue_weighs_by_amount() {
        let e = measure(
            vec![
                (0.9, true, 10.0),
                (0.5, false, 0.0),
                (0.4, true, 90.0),
                (0.1, false, 0.0),
            ],
            &[25.0],
        );
        assert_eq!(e.at[0].selected, 1);
        assert!((e.at[0].revenue - 0.1).abs() < 1e-12);
        assert!((e.at[0].recall - 0.5).abs() < 1e-12);
        assert!((e.auc - 0.75).abs() < 1e-12);
    }
}
