//! The risk model: reference profiles learned from a warehouse's history,
//! stored under `risk/model/<version>/` and published by writing the
//! version into `risk/model/CURRENT` last (a single-object put, atomic on
//! local disk and on S3), so readers see the old model or the new one.
//!
//! Price cells follow customs practice (WCO guidance on valuation
//! databases): log unit values per national line × origin, HS6 × origin,
//! HS6 and HS4, each with a robust profile, looked up from the finest cell
//! with enough references to the coarsest.

pub mod cells;
pub mod classifier;
pub mod combine;
pub mod evidence;
pub mod files;
pub mod flat;
pub mod hs;
pub mod importer;
pub mod lanes;
pub mod learned;
pub mod misclassification;
pub mod origin;
pub mod origin_signals;
pub mod price_build;
pub mod reasons;
pub mod revenue;
pub mod selection;
pub mod store;
pub mod thresholds;
pub mod valuation;

pub use cells::*;
pub use files::{classifier_schema, origin_schema, price_schema};
pub use importer::{
    IMPORTER_HISTORY, ImporterHistory, MARKEDLY_LOW_Z, RECORD_PRIOR_ITEMS, ValuationRecord,
    low_price_ratio,
};
pub use origin::*;
pub use store::*;

use std::collections::BTreeMap;

use arrow::array::RecordBatch;
use files::{read_origins, read_prices};
use serde::{Deserialize, Serialize};

pub const MODEL_DIR: &str = "risk/model";
pub const PRICE_FILE: &str = "price_profiles.parquet";
pub const ORIGIN_FILE: &str = "origin_facts.parquet";
pub const CLASSIFIER_FILE: &str = "classifier.parquet";
pub const MANIFEST_FILE: &str = "manifest.toml";
pub const CURRENT_FILE: &str = "CURRENT";

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("risk model {location}: {source}")]
    Storage {
        location: String,
        #[source]
        source: object_store::Error,
    },
    #[error("risk model {location}: {message}")]
    Corrupt { location: String, message: String },
}

pub type Result<T, E = ModelError> = std::result::Result<T, E>;

/// The format of the model files this Aduana writes. Raised whenever what
/// a version's files mean changes (new parts, features, evidence rules),
/// so a refresh rebuilds a model written by an older Aduana instead of
/// scoring with it. 1: learned model, references without inspected items,
/// lane scale.
pub const MODEL_FORMAT: u32 = 1;

/// What a model was trained on; `manifest.toml` of a version.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub version: String,
    /// [`MODEL_FORMAT`] of the Aduana that built it (0: before the number
    /// was written).
    #[serde(default)]
    pub format: u32,
    pub built_at: String,
    /// First day of the training window (inclusive), `YYYY-MM-DD`.
    pub window_start: String,
    /// Day after the training window (exclusive).
    pub window_end: String,
    pub training_items: u64,
    /// Items left out because an inspection found them fraudulent.
    pub excluded_fraud_items: u64,
    /// Items left out because an inspection found them compliant (the
    /// learned model trains on them: see `aduana model build`); 0 when most
    /// of the window was inspected and they were kept.
    #[serde(default)]
    pub excluded_inspected_items: u64,
    /// A cell is used only with at least this many references.
    pub min_cell_size: u64,
    /// Price cells per level.
    pub price_cells: BTreeMap<String, u64>,
    /// The learned model of the version, when the window had enough
    /// labelled frauds (its files are `learned.json` and
    /// `profiles.parquet`).
    #[serde(default)]
    pub learned: Option<learned::LearnedSummary>,
    /// How the last days of the window spread over expected revenue, for
    /// `lane_recommendation` (absent from versions built before it).
    #[serde(default)]
    pub lanes: Option<lanes::LaneScale>,
}

/// A loaded model.
#[derive(Debug)]
pub struct RiskModel {
    pub manifest: Manifest,
    prices: hashbrown::HashMap<u64, PriceCell>,
    pub origins: OriginFacts,
    pub classifier: classifier::Classifier,
    /// What the inspections taught; `None`: the unsupervised model alone.
    pub learned: Option<learned::LearnedModel>,
}

impl RiskModel {
    /// The finest cell with at least `min_cell_size` references for the
    /// normalised code `digits` and origin; coarser cells back it off.
    pub fn price_cell(&self, digits: &[u8], origin: Option<u64>) -> Option<(Level, &PriceCell)> {
        let min = self.manifest.min_cell_size;
        Level::ALL.iter().find_map(|&level| {
            let cell = self.prices.get(&cell_key(level, digits, origin)?)?;
            let n = cell
                .per_unit
                .map_or(0, |p| p.n)
                .max(cell.per_kg.map_or(0, |p| p.n));
            (n >= min).then_some((level, cell))
        })
    }

    pub fn price_cells(&self) -> usize {
        self.prices.len()
    }

    /// Builds a model from its manifest, price-profile and origin-fact
    /// batches.
    pub fn from_batches(
        manifest: Manifest,
        batches: &[RecordBatch],
        origin_batches: &[RecordBatch],
    ) -> std::result::Result<Self, String> {
        let mut prices = hashbrown::HashMap::new();
        for batch in batches {
            read_prices(batch, &mut prices)?;
        }
        let mut origins = OriginFacts::default();
        for batch in origin_batches {
            read_origins(batch, &mut origins)?;
        }
        origins.tariff.sort_by(|a, b| a.0.cmp(&b.0));
        origins.importers.freeze(IMPORTER_HISTORY);
        origins.index_tariff();
        origins.index_remedies();
        origins.index_records();
        Ok(RiskModel {
            manifest,
            prices,
            origins,
            classifier: classifier::Classifier::default(),
            learned: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A xorshift64 generator for tests that draw many cases from one seed
    /// (reproducible, no dependency).
    pub(crate) fn xorshift(mut seed: u64) -> impl FnMut() -> u64 {
        move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        }
    }
    use arrow::array::{ArrayRef, Float64Array, Int32Array, Int64Array, StringArray};
    use object_store::path::Path;
    use std::sync::Arc;

    #[test]
    fn keys_separate_levels_codes_and_origins() {
        let cn = pack_country(b"CN");
        assert_eq!(cn, pack_country(b"cn"));
        assert_eq!(unpack_country(cn.unwrap()), "CN");
        assert_eq!(pack_country(b"C1"), None);
        let a = cell_key(Level::LineOrigin, b"84713000", cn).unwrap();
        let b = cell_key(Level::LineOrigin, b"84713000", pack_country(b"US")).unwrap();
        let c = cell_key(Level::Hs6Origin, b"84713000", cn).unwrap();
        let d = cell_key(Level::Hs6, b"84713000", cn).unwrap();
        let e = cell_key(Level::Hs6, b"847130", None).unwrap();
        let f = cell_key(Level::LineOrigin, b"0847130000", cn).unwrap();
        assert!(a != b && a != c && c != d && a != f);
        assert_eq!(d, e, "HS6 cells ignore the origin and national digits");
        assert_eq!(cell_key(Level::Hs6Origin, b"847130", None), None);
        assert_eq!(hs6_origin_key(e, cn.unwrap()), c);
        assert_eq!(pack_unit("kgm"), pack_unit("KGM"));
        assert_eq!(pack_unit("TOOLONG"), None);
    }

    #[test]
    fn remedy_chapters_gate_only_products_without_remedies() {
        let mut facts = OriginFacts::default();
        let remedy = |prefix: &[u8]| Remedy {
            prefix: prefix.to_vec(),
            country: pack_country(b"CN").unwrap(),
            rate: 10.0,
            from: 0,
            to: None,
        };
        facts.remedies = vec![remedy(b"7210"), remedy(b"0306")];
        facts.index_remedies();
        let hs6 = |code: &[u8]| cell_key(Level::Hs6, code, None).unwrap();
        assert!(facts.remedy_possible(hs6(b"721049")));
        assert!(
            facts.remedy_possible(hs6(b"721420")),
            "same chapter: checked in full"
        );
        assert!(facts.remedy_possible(hs6(b"030617")));
        assert!(!facts.remedy_possible(hs6(b"847130")));
        assert!(!facts.remedy_possible(hs6(b"010121")));
        facts.remedies.push(remedy(b"8"));
        facts.index_remedies();
        assert!(facts.remedy_possible(hs6(b"010121")));
    }

    fn batch(rows: &[(i32, &str, Option<&str>, i64, f64)]) -> RecordBatch {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.0))),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1))),
            Arc::new(rows.iter().map(|r| r.2).collect::<StringArray>()),
            Arc::new(StringArray::from(vec![Some("NAR"); rows.len()])),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.3))),
            Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.4))),
            Arc::new(Float64Array::from(vec![0.3; rows.len()])),
            Arc::new(Float64Array::from(vec![0.0; rows.len()])),
            Arc::new(Float64Array::from(vec![1.0; rows.len()])),
            Arc::new(Int64Array::from(vec![0; rows.len()])),
            Arc::new(Float64Array::from(vec![None; rows.len()])),
            Arc::new(Float64Array::from(vec![None; rows.len()])),
            Arc::new(Float64Array::from(vec![None; rows.len()])),
            Arc::new(Float64Array::from(vec![None; rows.len()])),
            Arc::new(Float64Array::from(vec![0.01; rows.len()])),
            Arc::new(Float64Array::from(vec![24300.0; rows.len()])),
        ];
        RecordBatch::try_new(price_schema(), columns).unwrap()
    }

    fn manifest() -> Manifest {
        Manifest {
            version: "v1".into(),
            format: MODEL_FORMAT,
            built_at: "2026-11-22T00:00:00Z".into(),
            window_start: "2025-11-01".into(),
            window_end: "2026-11-01".into(),
            training_items: 100,
            excluded_fraud_items: 2,
            excluded_inspected_items: 0,
            lanes: None,
            min_cell_size: 30,
            price_cells: BTreeMap::new(),
            learned: None,
        }
    }

    #[test]
    fn packing_never_panics_on_arbitrary_bytes() {
        for a in 0..=255u8 {
            for b in [0u8, b'A', b'z', 0x80, 0xFF, b'1'] {
                if let Some(code) = pack_country(&[a, b]) {
                    assert!(a.is_ascii_alphabetic() && b.is_ascii_alphabetic());
                    assert_eq!(
                        unpack_country(code),
                        format!(
                            "{}{}",
                            a.to_ascii_uppercase() as char,
                            b.to_ascii_uppercase() as char
                        )
                    );
                }
            }
            let unit = String::from_utf8_lossy(&[a, a, a]).into_owned();
            let _ = pack_unit(&unit);
        }
        assert_eq!(pack_country(b""), None);
        assert_eq!(pack_country(b"CHN"), None);
        assert_eq!(cell_key(Level::LineOrigin, b"", pack_country(b"CN")), None);
        assert_eq!(cell_key(Level::Hs6, b"12345", None), None);
        assert_eq!(
            cell_key(Level::LineOrigin, b"12345678901", pack_country(b"CN")),
            None
        );
    }

    #[test]
    fn lookup_backs_off_to_coarser_cells() {
        let prices = batch(&[
            (0, "84713000", Some("CN"), 12, 1.0), // too few references
            (1, "847130", Some("CN"), 40, 2.0),
            (2, "847130", None, 500, 3.0),
            (3, "8471", None, 900, 4.0),
        ]);
        let model = RiskModel::from_batches(manifest(), &[prices], &[]).unwrap();
        let cn = pack_country(b"CN");
        let (level, cell) = model.price_cell(b"84713000", cn).unwrap();
        assert_eq!(
            (level, cell.per_unit.unwrap().median),
            (Level::Hs6Origin, 2.0)
        );
        let (level, cell) = model.price_cell(b"84713000", pack_country(b"US")).unwrap();
        assert_eq!((level, cell.per_unit.unwrap().median), (Level::Hs6, 3.0));
        let (level, _) = model.price_cell(b"84719000", None).unwrap();
        assert_eq!(level, Level::Hs4);
        assert!(model.price_cell(b"01012100", cn).is_none());
        let mut facts = OriginFacts::default();
        facts.tariff = vec![
            (b"8471".to_vec(), 5.0),
            (b"84713010".to_vec(), 0.0),
            (b"84713090".to_vec(), 12.0),
        ];
        facts.index_tariff();
        assert_eq!(facts.duty_rate(b"84713090"), Some(12.0));
        assert_eq!(facts.duty_rate(b"84714100"), Some(5.0), "longest prefix");
        assert_eq!(
            facts.duty_rate(b"847130"),
            Some(6.0),
            "the mean of the national lines under an HS6"
        );
        assert_eq!(facts.duty_rate(b"010121"), None);
    }

    #[tokio::test]
    async fn publish_then_load_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let store = object_store::local::LocalFileSystem::new();
        let root = Path::from_absolute_path(dir.path()).unwrap();
        assert!(load_current(&store, &root).await.unwrap().is_none());
        let prices = batch(&[(2, "847130", None, 500, 3.0)]);
        publish(&store, &root, &manifest(), &[prices], &[], &[])
            .await
            .unwrap();
        let model = load_current(&store, &root).await.unwrap().unwrap();
        assert_eq!(model.manifest, manifest());
        assert_eq!(model.price_cells(), 1);
        std::fs::write(dir.path().join("risk/model/CURRENT"), "v2\n").unwrap();
        let e = load_current(&store, &root).await.unwrap_err().to_string();
        assert!(e.contains("v2") && e.contains("missing"), "{e}");
    }
}
