//! Speed of the learned model on synthetic items: training (both heads,
//! out-of-fold profiles) and scoring whole batches on one thread.
//!
//!     cargo bench -p aduana-model --bench learned [-- ROWS]
//!
//! Items are drawn with realistic cardinalities (thousands of importers,
//! hundreds of declarants, a few thousand HS6 codes); fraud depends on the
//! evidence and on a few parties, so the trees have something to learn.

use std::sync::Arc;
use std::time::Instant;

use aduana_model::learned::features::{COLUMNS, ItemColumns, is_text};
use aduana_model::learned::train::{Outcome, train};
use arrow::array::{ArrayRef, Float64Array, StringArray};

/// A small deterministic generator (no dependency for a bench).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() * n as f64) as usize % n
    }
}

fn items(rows: usize, seed: u64) -> (Vec<ArrayRef>, Vec<String>, Vec<Outcome>) {
    let mut g = Lcg(seed);
    let mut text: Vec<Vec<String>> = vec![Vec::with_capacity(rows); COLUMNS.len()];
    let mut number: Vec<Vec<f64>> = vec![Vec::with_capacity(rows); COLUMNS.len()];
    let mut ids = Vec::with_capacity(rows);
    let mut outcomes = Vec::with_capacity(rows);
    let countries = ["CN", "US", "MX", "VN", "DE", "PA", "BR", "IN"];
    for row in 0..rows {
        let importer = g.below(5000);
        let declarant = importer % 300;
        let supplier = (importer * 31 + g.below(40)) % 8000;
        let hs6 = 100_000 + g.below(3000) * 17;
        let z = -3.0 * g.next() * g.next() + 0.5 * (g.next() - 0.5);
        let bad_party = importer % 97 == 0 || supplier % 53 == 0;
        let p = 0.005 + if z < -2.0 { 0.3 } else { 0.0 } + if bad_party { 0.2 } else { 0.0 };
        let fraud = g.next() < p;
        for (c, name) in COLUMNS.iter().enumerate() {
            if is_text(c) {
                text[c].push(match *name {
                    "hs_code" => format!("{hs6}{:02}", g.below(20)),
                    "origin_country" | "export_country" => {
                        countries[g.below(countries.len())].into()
                    }
                    "office_code" => format!("OF{}", g.below(12)),
                    "importer_id" => format!("IMP{importer:06}"),
                    "declarant_id" => format!("DEC{declarant:04}"),
                    "supplier_id" => format!("SUP{supplier:05}"),
                    "regime" => ["IM4", "IM7", "IM5"][g.below(3)].into(),
                    "transport_mode" => ["SEA", "AIR", "ROAD"][g.below(3)].into(),
                    _ => {
                        if g.next() < 0.2 {
                            "FTA".into()
                        } else {
                            String::new()
                        }
                    }
                });
            } else {
                number[c].push(match *name {
                    "valuation_deviation" => z,
                    "hs_misclassification_probability" => g.next() * 0.3,
                    "origin_risk" => g.next() * 0.4,
                    "revenue_at_risk" => 10_000.0 * g.next(),
                    "customs_value" => (8.0 + 3.0 * g.next()).exp(),
                    "net_mass_kg" => (3.0 + 4.0 * g.next()).exp(),
                    "quantity" => (2.0 + 4.0 * g.next()).exp(),
                    _ => 15.0 * g.next(),
                });
            }
        }
        ids.push(format!("D{:08}", row / 2));
        outcomes.push(Outcome {
            fraud,
            recovered: if fraud {
                5_000.0 * (1.0 + g.next())
            } else {
                0.0
            },
            day: 20_000 + (row * 365 / rows) as i32,
            weight: 1.0,
        });
    }
    let arrays = (0..COLUMNS.len())
        .map(|c| -> ArrayRef {
            if is_text(c) {
                Arc::new(StringArray::from_iter_values(&text[c]))
            } else {
                Arc::new(Float64Array::from(number[c].clone()))
            }
        })
        .collect();
    (arrays, ids, outcomes)
}

fn main() {
    let rows: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let (arrays, ids, outcomes) = items(rows, 7);
    let columns = ItemColumns::from_arrays(&arrays).expect("columns");
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let started = Instant::now();
    let model = train(&columns, &id_refs, &outcomes)
        .expect("train")
        .expect("enough frauds");
    let trained = started.elapsed().as_secs_f64();
    println!(
        "training on {rows} labelled items ({} frauds): {trained:.1} s, {} + {} trees, {} profiles",
        model.summary.labelled_frauds,
        model.summary.fraud_trees,
        model.summary.revenue_trees,
        model.summary.profiles
    );

    // Scoring: 8192-row batches (DataFusion's default), one thread.
    let batch = 8192;
    let (arrays, _, _) = items(1 << 20, 11);
    let batches: Vec<ItemColumns> = (0..arrays[0].len() / batch)
        .map(|b| {
            let slice: Vec<ArrayRef> = arrays.iter().map(|a| a.slice(b * batch, batch)).collect();
            ItemColumns::from_arrays(&slice).expect("batch")
        })
        .collect();
    let scored: usize = batches.len() * batch;
    // Where the time goes: keys and features, then the trees.
    let started = Instant::now();
    let matrices: Vec<Vec<f64>> = batches
        .iter()
        .map(|b| {
            let keys = aduana_model::learned::profiles::EntityKeys::of(b);
            b.feature_matrix(
                &keys,
                true,
                |e, key, _| model.profiles.features(e, key),
                |e, key| model.profiles.prefetch(e, key),
            )
        })
        .collect();
    let features = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let mut sum = 0.0;
    for m in &matrices {
        sum += model.fraud.predict(m, batch).iter().sum::<f64>();
    }
    let trees = started.elapsed().as_secs_f64();
    // The same trees walked node by node (as read back from JSON, before
    // packing), for the ratio.
    let nodes: aduana_model::learned::forest::Forest =
        serde_json::from_slice(&serde_json::to_vec(&model.fraud).expect("json")).expect("json");
    let started = Instant::now();
    let mut node_sum = 0.0;
    for m in &matrices {
        node_sum += nodes.predict(m, batch).iter().sum::<f64>();
    }
    let node_walk = started.elapsed().as_secs_f64();
    assert_eq!(
        sum.to_bits(),
        node_sum.to_bits(),
        "the packed walk scores alike"
    );
    println!(
        "of which features {:.2} M rows/s, trees {:.2} M rows/s packed, {:.2} M rows/s node by node ({sum:.1})",
        scored as f64 / features / 1e6,
        scored as f64 / trees / 1e6,
        scored as f64 / node_walk / 1e6
    );
    for round in 0..3 {
        let started = Instant::now();
        let mut sum = 0.0;
        for b in &batches {
            sum += model.score(b, false).probability.iter().sum::<f64>();
        }
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "scoring round {round}: {scored} items in {seconds:.3} s = {:.2} M rows/s on one thread (mean p {:.4})",
            scored as f64 / seconds / 1e6,
            sum / scored as f64
        );
    }
}
