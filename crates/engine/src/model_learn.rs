//! The learned part of a model version: the items of the window that an
//! inspection (known before the window's end) labelled fraud or compliant,
//! with the new version's unsupervised evidence and their own fields, go
//! to `aduana_model::learned::train::train`.

use aduana_model::Manifest;
use aduana_model::learned::LearnedModel;
use aduana_model::learned::features::{COLUMNS, ItemColumns, Number};
use aduana_model::learned::train::{Outcome, declaration_revenue_shares, train};
use arrow::array::{Array, AsArray};
use arrow::compute::{cast, concat_batches};
use arrow::datatypes::{DataType, Date32Type, Float64Type, Int32Type};
use chrono::NaiveDate;

use crate::{EngineError, EngineOptions, LEARNED_ARGUMENTS, ModelAt, Result, Session, WritePolicy};

/// What a learned model was trained on, and when there was none, why.
#[derive(Debug)]
pub enum Learned {
    Model(Box<LearnedModel>),
    /// The window's inspections found too few frauds (or there are none).
    TooFewFrauds,
}

/// Trains the learned model of the written version `manifest` under `root`
/// from the inspections known before `end`, over the items of `window` (an
/// SQL predicate over `declarations d`).
pub async fn learn(
    session: &Session,
    root: &object_store::path::Path,
    manifest: &Manifest,
    window: &str,
    end: NaiveDate,
    phases: &mut crate::model_build::Phases,
) -> Result<Learned> {
    if session.warehouse().table("inspections").is_none() {
        return Ok(Learned::TooFewFrauds);
    }
    // A session scoring with the version just written, so the evidence
    // the model learns from is the evidence it will be given.
    let scoring = scoring_session(session, root, manifest).await?;
    // An item is labelled by its own inspections and by those of its
    // whole declaration (item_no NULL): fraud when either found it; a
    // declaration's recovered revenue is shared among its items below.
    let sql = format!(
        "WITH outcome AS (
             SELECT declaration_id, item_no,
                    MAX(CASE WHEN result = 'fraud' THEN 1 ELSE 0 END) AS fraud,
                    SUM(CASE WHEN result = 'fraud' THEN CAST(additional_revenue AS DOUBLE) ELSE 0 END) AS recovered
             FROM inspections WHERE inspected_on < DATE '{end}'
             GROUP BY declaration_id, item_no),
         labelled AS (
             SELECT d.*, GREATEST(COALESCE(i.fraud, 0), COALESCE(w.fraud, 0)) AS label_fraud,
                    COALESCE(i.recovered, 0) AS label_recovered,
                    COALESCE(w.recovered, 0) AS label_declaration_recovered
             FROM (SELECT * FROM declarations d WHERE {window}) d
             LEFT JOIN outcome i ON i.declaration_id = d.declaration_id AND i.item_no = d.item_no
             LEFT JOIN (SELECT * FROM outcome WHERE item_no IS NULL) w
                    ON w.declaration_id = d.declaration_id
             WHERE i.fraud IS NOT NULL OR w.fraud IS NOT NULL)
         SELECT {LEARNED_ARGUMENTS}, declaration_id AS label_declaration, declaration_date AS label_day,
                upper(lane) AS label_lane,
                label_fraud, label_recovered, label_declaration_recovered
         FROM ({evidence})
         ORDER BY label_declaration, item_no",
        evidence = crate::with_evidence("labelled")
    );
    let batches = scoring
        .sql(&sql, WritePolicy::ReadOnly)
        .await?
        .collect()
        .await?;
    let Some(first) = batches.first() else {
        return Ok(Learned::TooFewFrauds);
    };
    let batch = concat_batches(&first.schema(), &batches)?;
    let rows = batch.num_rows();
    let arrays = batch.columns()[..COLUMNS.len()].to_vec();
    let items = ItemColumns::from_arrays(&arrays).map_err(EngineError::InvalidOption)?;
    let column = |name: &str| batch.column_by_name(name).expect("selected above");
    let declarations = cast(column("label_declaration"), &DataType::Utf8)?;
    let declarations = declarations.as_string::<i32>();
    let days = cast(column("label_day"), &DataType::Date32)?;
    let days = days.as_primitive::<Date32Type>();
    let fraud = cast(column("label_fraud"), &DataType::Int32)?;
    let fraud = fraud.as_primitive::<Int32Type>();
    let own = cast(column("label_recovered"), &DataType::Float64)?;
    let own = own.as_primitive::<Float64Type>();
    let whole = cast(column("label_declaration_recovered"), &DataType::Float64)?;
    let whole = whole.as_primitive::<Float64Type>();
    let ids: Vec<&str> = (0..rows).map(|i| declarations.value(i)).collect();
    // A declaration's recovered revenue (a control of the whole
    // declaration) goes to its items by their revenue at stake, as far as
    // it explains it (rows are ordered by declaration).
    let stakes: Vec<f64> = (0..rows)
        .map(|i| items.number(Number::RevenueAtRisk, i))
        .collect();
    let recovered: Vec<f64> = (0..rows).map(|i| finite(whole.value(i))).collect();
    let share = declaration_revenue_shares(&ids, &stakes, &recovered);
    let lanes = cast(column("label_lane"), &DataType::Utf8)?;
    let lanes = lanes.as_string::<i32>();
    let weights = selection_weights(&scoring, window, lanes).await?;
    let outcomes: Vec<Outcome> = (0..rows)
        .map(|i| Outcome {
            fraud: fraud.value(i) > 0,
            recovered: finite(own.value(i)) + recovered[i] * share[i],
            day: days.value(i),
            weight: weights[i],
        })
        .collect();
    phases.end("learned_model_items");
    let trained = train(&items, &ids, &outcomes).map_err(EngineError::InvalidOption)?;
    Ok(match trained {
        Some(model) => Learned::Model(Box::new(model)),
        None => Learned::TooFewFrauds,
    })
}

/// A session scoring with the written version `manifest` under `root`.
async fn scoring_session(
    session: &Session,
    root: &object_store::path::Path,
    manifest: &Manifest,
) -> Result<Session> {
    Session::open(
        session.warehouse().clone(),
        &EngineOptions {
            model_at: Some(ModelAt {
                root: root.clone(),
                version: manifest.version.clone(),
            }),
            ..EngineOptions::default()
        },
    )
    .await
}

/// Days at the end of the window whose items measure the lane scale: the
/// spread of expected revenue as it is now, not a year ago.
const LANE_SCALE_DAYS: i64 = 30;

/// How the items of the window's last [`LANE_SCALE_DAYS`] days spread over
/// the expected revenue selection ranks by (the learned model's, or the
/// unsupervised risk times the revenue at stake without one), as scored
/// by the written version `manifest`.
pub async fn lane_scale(
    session: &Session,
    root: &object_store::path::Path,
    manifest: &Manifest,
    window: &str,
    end: NaiveDate,
) -> Result<Option<aduana_model::lanes::LaneScale>> {
    let scoring = scoring_session(session, root, manifest).await?;
    let since = end - chrono::Days::new(LANE_SCALE_DAYS as u64);
    let batches = scoring
        .sql(
            &format!(
                "SELECT CAST(COALESCE(d.revenue_expected, d.risk * d.at_stake) AS DOUBLE) AS r, \
                        d.declaration_date AS day \
                 FROM scored_items d WHERE {window} AND d.declaration_date >= DATE '{since}'"
            ),
            WritePolicy::ReadOnly,
        )
        .await?
        .collect()
        .await?;
    let mut scores = Vec::new();
    let mut days = std::collections::BTreeSet::new();
    for batch in &batches {
        let r = batch.column(0).as_primitive::<Float64Type>();
        let day = cast(batch.column(1), &DataType::Date32)?;
        let day = day.as_primitive::<Date32Type>();
        for i in 0..batch.num_rows() {
            scores.push(if r.is_valid(i) { r.value(i) } else { f64::NAN });
            days.insert(day.value(i));
        }
    }
    Ok(aduana_model::lanes::LaneScale::measure(
        scores,
        days.len() as u64,
    ))
}

/// Inspected items are not a random sample: lanes choose them. Each
/// labelled item stands for the items of its lane in the window (inverse
/// probability of inspection by lane), so a lane inspected at 100% does not
/// outweigh the randomly checked green lane; capped at [`MAX_WEIGHT_RATIO`]
/// times the smallest weight so that a handful of random checks do not
/// swamp the fit, and scaled to a mean of 1.
async fn selection_weights(
    session: &Session,
    window: &str,
    lanes: &arrow::array::StringArray,
) -> Result<Vec<f64>> {
    let batches = session
        .sql(
            &format!(
                "SELECT upper(lane) AS lane, COUNT(*) AS items FROM declarations d \
                 WHERE {window} GROUP BY upper(lane)"
            ),
            WritePolicy::ReadOnly,
        )
        .await?
        .collect()
        .await?;
    let mut items: std::collections::HashMap<Option<String>, f64> = Default::default();
    for batch in &batches {
        let lane = cast(batch.column(0), &DataType::Utf8)?;
        let lane = lane.as_string::<i32>();
        let count = cast(batch.column(1), &DataType::Float64)?;
        let count = count.as_primitive::<Float64Type>();
        for i in 0..batch.num_rows() {
            let key = lane.is_valid(i).then(|| lane.value(i).to_string());
            items.insert(key, count.value(i));
        }
    }
    let key = |i: usize| lanes.is_valid(i).then(|| lanes.value(i).to_string());
    let mut labelled: std::collections::HashMap<Option<String>, f64> = Default::default();
    for i in 0..lanes.len() {
        *labelled.entry(key(i)).or_default() += 1.0;
    }
    let inverse: std::collections::HashMap<Option<String>, f64> = labelled
        .iter()
        .map(|(lane, n)| {
            (
                lane.clone(),
                items.get(lane).copied().unwrap_or(*n).max(*n) / n,
            )
        })
        .collect();
    let smallest = inverse.values().copied().fold(f64::INFINITY, f64::min);
    let raw: Vec<f64> = (0..lanes.len())
        .map(|i| inverse[&key(i)].min(smallest * MAX_WEIGHT_RATIO))
        .collect();
    let mean = raw.iter().sum::<f64>() / raw.len().max(1) as f64;
    Ok(raw.into_iter().map(|w| w / mean).collect())
}

/// See [`selection_weights`].
const MAX_WEIGHT_RATIO: f64 = 20.0;

fn finite(v: f64) -> f64 {
    if v.is_finite() && v > 0.0 { v } else { 0.0 }
}
