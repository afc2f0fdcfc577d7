//! The learned model: what the administration's own inspections teach.
//! Gradient-boosted trees over the unsupervised evidence, the transaction's
//! fields and DATE-style entity risk profiles, with two heads: the
//! probability that an inspection of the item finds fraud, and the revenue
//! it recovers when it does; expected revenue is their product.
//!
//! Trained by the model builder on the window's inspected items (see
//! [`train::train`]); stored beside the reference profiles of a model
//! version as `learned.json` (trees, summary) and `profiles.parquet`.

pub mod features;
pub mod forest;
pub mod held_out;
mod leafmask;
pub mod profiles;
mod quantize;
pub mod reasons;
pub mod train;

use std::sync::Arc;

use arrow::array::{AsArray, Float64Array, Int32Array, RecordBatch, UInt64Array};
use arrow::datatypes::{DataType, Field, Float64Type, Int32Type, Schema, SchemaRef, UInt64Type};
use serde::{Deserialize, Serialize};

use features::{FEATURES, ItemColumns};
use forest::{Forest, sigmoid};
use profiles::{ENTITIES, EntityKeys, Profiles, Tally};

pub const LEARNED_FILE: &str = "learned.json";
pub const PROFILES_FILE: &str = "profiles.parquet";

/// No learned model from fewer labelled frauds in the window: trees fitted
/// to a handful of cases learn the cases, not the fraud.
pub const MIN_LABELLED_FRAUDS: u64 = 30;
/// From this many labelled frauds `risk_score` may be the learned model's
/// alone (as far as the held-out days say, `held_out::held_out_weight`);
/// between the two minimums it blends the learned model's score with the
/// unsupervised combination in proportion.
pub const FULL_WEIGHT_FRAUDS: u64 = 300;
const _: () = assert!(FULL_WEIGHT_FRAUDS >= MIN_LABELLED_FRAUDS);

/// The weight of the learned probability in `risk_score` for a model
/// learned from `frauds` labelled frauds.
pub fn learned_weight(frauds: u64) -> f64 {
    if frauds < MIN_LABELLED_FRAUDS {
        0.0
    } else {
        (frauds as f64 / FULL_WEIGHT_FRAUDS as f64).min(1.0)
    }
}

/// What the learned model was trained on; in the version's manifest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LearnedSummary {
    pub labelled_items: u64,
    pub labelled_frauds: u64,
    pub recovered_revenue: f64,
    pub fraud_trees: u64,
    pub revenue_trees: u64,
    /// Weight of the learned probability in `risk_score`: [`learned_weight`],
    /// at most the held-out days' choice (`held_out::held_out_weight`).
    pub weight: f64,
    pub profiles: u64,
    pub entities: u64,
}

#[derive(Debug)]
pub struct LearnedModel {
    pub summary: LearnedSummary,
    pub fraud: Forest,
    /// Platt scaling of the fraud forest's raw score (see
    /// [`train::platt`]): probability = sigmoid(a · raw + b).
    pub calibration: [f64; 2],
    /// Log revenue recovered when fraud is found; `None` when too few
    /// frauds recorded a revenue.
    pub revenue: Option<Forest>,
    pub profiles: Profiles,
}

/// The learned model's view of a batch of items.
#[derive(Debug)]
pub struct Scores {
    /// Probability that an inspection finds fraud.
    pub probability: Vec<f64>,
    /// Revenue recovered if it does (`None`: no revenue head; callers use
    /// the unsupervised revenue at risk).
    pub revenue: Option<Vec<f64>>,
}

#[derive(Serialize, Deserialize)]
struct Stored {
    summary: LearnedSummary,
    features: Vec<String>,
    overall_rate: f64,
    calibration: [f64; 2],
    fraud: Forest,
    revenue: Option<Forest>,
}

impl LearnedModel {
    /// The entity keys and the feature matrix of a batch to score.
    fn features(&self, items: &ItemColumns) -> (EntityKeys, Vec<f64>) {
        let keys = EntityKeys::of(items);
        let matrix = items.feature_matrix(
            &keys,
            true,
            |e, key, _| self.profiles.features(e, key),
            |e, key| self.profiles.prefetch(e, key),
        );
        (keys, matrix)
    }

    /// The probability expected revenue multiplies for `row` of `items`,
    /// whose learned probability is `probability`: the learned one where
    /// the window labelled [`FULL_WEIGHT_FRAUDS`] frauds or more; with
    /// fewer, the blend `risk_score` makes of it and the evidence by that
    /// count (`learned_weight`), turned from a lift back into a
    /// probability. Trees fitted to a few dozen frauds are trusted no more
    /// for money than for the score: on a warehouse with 36 labelled frauds
    /// (2% inspected) ranking by the learned probability times revenue
    /// caught less revenue at 1% than `risk_score` alone (docs/refresh.md).
    pub fn expected_revenue_probability(
        &self,
        probability: f64,
        items: &ItemColumns,
        row: usize,
    ) -> f64 {
        let weight = learned_weight(self.summary.labelled_frauds);
        if weight >= 1.0 || !probability.is_finite() {
            return probability;
        }
        let evidence = held_out::unsupervised_score(items, row);
        crate::combine::blended_probability(
            evidence,
            probability,
            weight,
            self.profiles.overall_rate,
        )
    }

    /// Scores a batch: every tree over all its rows; the revenue head only
    /// `with_revenue` (`fraud_probability` needs the probability alone).
    pub fn score(&self, items: &ItemColumns, with_revenue: bool) -> Scores {
        let rows = items.len();
        let (_, matrix) = self.features(items);
        let mut probability = self.fraud.predict(&matrix, rows);
        let [a, b] = self.calibration;
        probability
            .iter_mut()
            .for_each(|p| *p = sigmoid(a * *p + b));
        let revenue = self
            .revenue
            .as_ref()
            .filter(|_| with_revenue)
            .map(|forest| {
                let mut r = forest.predict(&matrix, rows);
                r.iter_mut().for_each(|v| *v = v.exp());
                r
            });
        Scores {
            probability,
            revenue,
        }
    }

    /// `learned.json`: trees and summary, with the feature names so a
    /// reader can tell what each split is on.
    pub fn to_json(&self) -> Result<Vec<u8>, String> {
        let stored = Stored {
            summary: self.summary.clone(),
            features: (0..FEATURES).map(features::feature_name).collect(),
            overall_rate: self.profiles.overall_rate,
            calibration: self.calibration,
            fraud: self.fraud.clone(),
            revenue: self.revenue.clone(),
        };
        serde_json::to_vec(&stored).map_err(|e| e.to_string())
    }

    /// `profiles.parquet`'s rows, sorted (the same model, the same bytes).
    pub fn profile_batch(&self) -> Result<RecordBatch, String> {
        let mut rows: Vec<(i32, u64, Tally)> = self
            .profiles
            .tables
            .iter()
            .enumerate()
            .flat_map(|(e, table)| table.iter().map(move |(k, t)| (e as i32, *k, *t)))
            .collect();
        rows.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        RecordBatch::try_new(
            profile_schema(),
            vec![
                Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.0))),
                Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.1))),
                Arc::new(Float64Array::from_iter_values(
                    rows.iter().map(|r| r.2.inspections),
                )),
                Arc::new(Float64Array::from_iter_values(
                    rows.iter().map(|r| r.2.frauds),
                )),
                Arc::new(Float64Array::from_iter_values(
                    rows.iter().map(|r| r.2.revenue),
                )),
            ],
        )
        .map_err(|e| e.to_string())
    }

    pub fn from_parts(json: &[u8], profiles: &[RecordBatch]) -> Result<LearnedModel, String> {
        let stored: Stored =
            serde_json::from_slice(json).map_err(|e| format!("{LEARNED_FILE}: {e}"))?;
        let expected: Vec<String> = (0..FEATURES).map(features::feature_name).collect();
        if stored.features != expected {
            return Err(format!(
                "{LEARNED_FILE} was trained on other features ({} of them); rebuild the model",
                stored.features.len()
            ));
        }
        let mut tables = vec![hashbrown::HashMap::new(); ENTITIES.len()];
        for batch in profiles {
            let column = |name: &str| {
                batch
                    .column_by_name(name)
                    .ok_or_else(|| format!("{PROFILES_FILE}: no column {name}"))
            };
            let entity = column("entity")?
                .as_primitive_opt::<Int32Type>()
                .ok_or("entity is not Int32")?;
            let key = column("key")?
                .as_primitive_opt::<UInt64Type>()
                .ok_or("key is not UInt64")?;
            let float = |name: &str| -> Result<Float64Array, String> {
                Ok(column(name)?
                    .as_primitive_opt::<Float64Type>()
                    .ok_or_else(|| format!("{PROFILES_FILE}: {name} is not Float64"))?
                    .clone())
            };
            let (inspections, frauds, revenue) =
                (float("inspections")?, float("frauds")?, float("revenue")?);
            for i in 0..batch.num_rows() {
                let table = tables.get_mut(entity.value(i) as usize).ok_or_else(|| {
                    format!("{PROFILES_FILE}: unknown entity {}", entity.value(i))
                })?;
                table.insert(
                    key.value(i),
                    Tally {
                        inspections: inspections.value(i),
                        frauds: frauds.value(i),
                        revenue: revenue.value(i),
                    },
                );
            }
        }
        Ok(LearnedModel {
            summary: stored.summary,
            fraud: stored.fraud.packed(),
            calibration: stored.calibration,
            revenue: stored.revenue.map(Forest::packed),
            profiles: Profiles::new(stored.overall_rate, tables),
        })
    }
}

pub fn profile_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("entity", DataType::Int32, false),
        Field::new("key", DataType::UInt64, false),
        Field::new("inspections", DataType::Float64, false),
        Field::new("frauds", DataType::Float64, false),
        Field::new("revenue", DataType::Float64, false),
    ]))
}
