//! The risk model: reference profiles learned from a warehouse's history,
//! stored under `risk/model/<version>/` and published by writing the
//! version into `risk/model/CURRENT` last (a single-object put, atomic on
//! local disk and on S3), so readers see the old model or the new one.
//!
//! Price cells follow customs practice (WCO guidance on valuation
//! databases): log unit values per national line × origin, HS6 × origin,
//! HS6 and HS4, each with a robust profile, looked up from the finest cell
//! with enough references to the coarsest.

pub mod classifier;
pub mod flat;
pub mod importer;
pub mod lanes;
pub mod learned;
pub mod selection;
pub mod thresholds;

pub use importer::{
    IMPORTER_HISTORY, ImporterHistory, MARKEDLY_LOW_Z, RECORD_PRIOR_ITEMS, ValuationRecord,
    low_price_ratio,
};

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Field, Float64Type, Int32Type, Int64Type, Schema, SchemaRef};
use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
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

/// Granularity of a price cell, finest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Level {
    LineOrigin = 0,
    Hs6Origin = 1,
    Hs6 = 2,
    Hs4 = 3,
}

impl Level {
    pub const ALL: [Level; 4] = [Level::LineOrigin, Level::Hs6Origin, Level::Hs6, Level::Hs4];

    pub fn name(self) -> &'static str {
        match self {
            Level::LineOrigin => "line_origin",
            Level::Hs6Origin => "hs6_origin",
            Level::Hs6 => "hs6",
            Level::Hs4 => "hs4",
        }
    }

    fn from_i32(v: i32) -> Option<Level> {
        Level::ALL.get(usize::try_from(v).ok()?).copied()
    }

    /// How many digits of the code the level keys on (`None`: all).
    fn digits(self) -> Option<usize> {
        match self {
            Level::LineOrigin => None,
            Level::Hs6Origin | Level::Hs6 => Some(6),
            Level::Hs4 => Some(4),
        }
    }

    fn with_origin(self) -> bool {
        matches!(self, Level::LineOrigin | Level::Hs6Origin)
    }
}

/// Robust profile of log unit values in one cell.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Profile {
    pub n: u64,
    pub median: f64,
    pub mad: f64,
    pub q1: f64,
    pub q3: f64,
}

/// A price cell: log unit value per declared quantity unit (for the cell's
/// dominant unit) and per kilogram of net mass.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PriceCell {
    /// The quantity unit the per-unit profile is for, packed (`pack_unit`).
    pub unit: u32,
    pub per_unit: Option<Profile>,
    pub per_kg: Option<Profile>,
    /// Trend of the log unit value per month (a regression slope), and the
    /// month (year * 12 + month - 1) the median is centred on.
    pub drift: f64,
    pub center_month: f64,
}

/// Packs a quantity unit code (`KGM`, `NAR`, `PR`) into an integer; `None`
/// for codes longer than 4 bytes or empty.
pub fn pack_unit(unit: &str) -> Option<u32> {
    let bytes = unit.trim().as_bytes();
    if bytes.is_empty() || bytes.len() > 4 {
        return None;
    }
    Some(
        bytes
            .iter()
            .fold(0u32, |acc, b| (acc << 8) | b.to_ascii_uppercase() as u32),
    )
}

/// Packs an ISO 3166-1 alpha-2 code (any case) into 10 bits; `None` if it
/// is not two letters.
pub fn pack_country(code: &[u8]) -> Option<u64> {
    match code {
        [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
            let letter = |c: u8| (c.to_ascii_uppercase() - b'A' + 1) as u64;
            Some(letter(*a) << 5 | letter(*b))
        }
        _ => None,
    }
}

/// The letters of a packed country code (`pack_country`'s inverse).
pub fn unpack_country(code: u64) -> String {
    let letter = |v: u64| (b'A' + (v & 31) as u8 - 1) as char;
    [letter(code >> 5), letter(code)].iter().collect()
}

/// The key of a cell: the code's digits as a number and their count, the
/// origin and the level, in one `u64` (34 + 4 + 10 + 2 bits), so a lookup
/// hashes one integer and allocates nothing.
pub fn cell_key(level: Level, digits: &[u8], origin: Option<u64>) -> Option<u64> {
    let digits = match level.digits() {
        Some(n) if digits.len() >= n => &digits[..n],
        Some(_) => return None,
        None => digits,
    };
    if digits.is_empty() || digits.len() > 10 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let number = digits
        .iter()
        .fold(0u64, |acc, d| acc * 10 + (d - b'0') as u64);
    let origin = if level.with_origin() { origin? } else { 0 };
    Some(number | (digits.len() as u64) << 34 | origin << 38 | (level as u64) << 48)
}

/// The HS6 × origin cell key of a product given by its HS6 `cell_key`
/// (`cell_key(Level::Hs6Origin, ..)` without re-reading the digits).
#[inline]
pub fn hs6_origin_key(hs6: u64, origin: u64) -> u64 {
    (hs6 & ((1 << 38) - 1)) | origin << 38 | (Level::Hs6Origin as u64) << 48
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

/// What the model knows of origins, for `origin_risk`.
#[derive(Debug, Default)]
pub struct OriginFacts {
    /// HS6 x origin: items and share of the HS6's items, overall and
    /// before / after the first trade remedy on the HS6 (when there is one).
    pub hs6_origin: hashbrown::HashMap<u64, OriginShare>,
    /// HS6: items (key with no origin).
    pub hs6_items: hashbrown::HashMap<u64, u64>,
    /// Per importer and HS6: items and origins.
    pub importers: ImporterHistory,
    /// Dispatch country: share of its consignments whose origin is another
    /// country (transshipment hubs score high).
    pub dispatch: hashbrown::HashMap<u64, f64>,
    pub remedies: Vec<Remedy>,
    /// Bit c set when a remedy may apply to HS chapter c: most products
    /// are under none, and this answers so without comparing codes.
    remedy_chapters: u128,
    /// The national tariff: (code prefix, duty rate %), sorted by code, so
    /// the lines under a code are one contiguous run.
    pub tariff: Vec<(Vec<u8>, f64)>,
    /// Per importer (`importer_hash`): its pricing record in the window.
    pub valuation_records: hashbrown::HashMap<u64, ValuationRecord>,
    /// All importers together: the usual pricing record.
    pub valuation_overall: ValuationRecord,
    /// Per importer: the log of `low_price_ratio`, worked out once at load
    /// because scoring asks for it on every declaration (and a map of
    /// plain floats stays in cache better than one of records).
    low_price_log_ratios: flat::FlatTable<f64>,
}

impl OriginFacts {
    /// How many times the usual share of markedly low items an importer's
    /// record shows, shrunk toward 1 for short records. 1 for an unknown
    /// importer or a model without records.
    pub fn low_price_ratio(&self, importer_hash: u64) -> (f64, ValuationRecord) {
        let record = self
            .valuation_records
            .get(&importer_hash)
            .copied()
            .unwrap_or_default();
        (low_price_ratio(record, self.valuation_overall), record)
    }

    /// `ln` of the importer's `low_price_ratio`: 0 for an unknown importer.
    #[inline]
    pub fn low_price_log_ratio(&self, importer_hash: u64) -> f64 {
        self.low_price_log_ratios
            .get(importer_hash | 1)
            .copied()
            .unwrap_or_else(|| {
                low_price_ratio(ValuationRecord::default(), self.valuation_overall).ln()
            })
    }

    /// Starts loading the importer's entry of `low_price_log_ratio`.
    #[inline]
    pub fn prefetch_low_price(&self, importer_hash: u64) {
        self.low_price_log_ratios.prefetch(importer_hash | 1);
    }

    fn index_records(&mut self) {
        let overall = self.valuation_overall;
        // Keys are importer hashes with the low bit set (0 marks an empty
        // slot); two importers differing only there share an entry, one
        // chance in 2^63 per pair.
        self.low_price_log_ratios = flat::FlatTable::build(
            self.valuation_records
                .iter()
                .map(|(&importer, &record)| (importer | 1, low_price_ratio(record, overall).ln())),
        );
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OriginShare {
    pub items: u64,
    pub share: f64,
    pub share_before: Option<f64>,
    pub share_after: Option<f64>,
}

/// A trade remedy: additional duty on goods whose code starts with `prefix`
/// from `country`, between two dates (days since 1970; `to` open if None).
#[derive(Debug, Clone, PartialEq)]
pub struct Remedy {
    pub prefix: Vec<u8>,
    pub country: u64,
    pub rate: f64,
    pub from: i32,
    pub to: Option<i32>,
}

impl OriginFacts {
    /// The duty rate of a code. Lines at or under the code (a full line
    /// matches itself; an HS6 has national lines under it, and nothing says
    /// which applies) give their mean; otherwise the longest tariff prefix
    /// of the code applies.
    pub fn duty_rate(&self, digits: &[u8]) -> Option<f64> {
        let first = self
            .tariff
            .partition_point(|(code, _)| code.as_slice() < digits);
        let (sum, n) = self.tariff[first..]
            .iter()
            .take_while(|(code, _)| code.starts_with(digits))
            .fold((0.0, 0), |(s, n), (_, r)| (s + r, n + 1));
        if n > 0 {
            return Some(sum / n as f64);
        }
        (1..digits.len()).rev().find_map(|len| {
            self.tariff
                .binary_search_by(|(code, _)| code.as_slice().cmp(&digits[..len]))
                .ok()
                .map(|i| self.tariff[i].1)
        })
    }

    fn index_remedies(&mut self) {
        self.remedy_chapters = self.remedies.iter().fold(0, |bits, r| match r.prefix[..] {
            [a, b, ..] if a.is_ascii_digit() && b.is_ascii_digit() => {
                bits | 1u128 << ((a - b'0') * 10 + (b - b'0'))
            }
            // A remedy on a whole section (one digit) may apply anywhere.
            _ => u128::MAX,
        });
    }

    /// Whether any remedy may apply to the product (an HS6 `cell_key`):
    /// false means `remedies_on` finds none for its codes.
    #[inline]
    pub fn remedy_possible(&self, hs6: u64) -> bool {
        let chapter = (hs6 & ((1 << 34) - 1)) / 10_000;
        chapter < 100 && self.remedy_chapters & (1 << chapter) != 0
    }

    /// Remedies in force on `day` for a code, against any country.
    pub fn remedies_on<'a>(
        &'a self,
        digits: &'a [u8],
        day: i32,
    ) -> impl Iterator<Item = &'a Remedy> + 'a {
        self.remedies.iter().filter(move |r| {
            digits.starts_with(&r.prefix) && r.from <= day && r.to.is_none_or(|to| day <= to)
        })
    }
}

/// FNV-1a's 64-bit offset basis: where a hash starts.
pub const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a, 64 bits, continued from `hash` over `bytes`: stable across
/// processes (unlike a seeded hasher), so keys written by the model builder
/// are found by every reader.
#[inline]
pub fn fnv1a(hash: u64, bytes: impl IntoIterator<Item = u8>) -> u64 {
    bytes
        .into_iter()
        .fold(hash, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

/// The stable hash of an importer id.
pub fn importer_hash(importer: &str) -> u64 {
    fnv1a(FNV_OFFSET, importer.bytes())
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

/// The schema of `price_profiles.parquet`.
pub fn price_schema() -> SchemaRef {
    let f = |name: &str, t: DataType, nullable: bool| Field::new(name, t, nullable);
    Arc::new(Schema::new(vec![
        f("level", DataType::Int32, false),
        f("hs", DataType::Utf8, false),
        f("origin", DataType::Utf8, true),
        f("unit", DataType::Utf8, true),
        f("n", DataType::Int64, false),
        f("median", DataType::Float64, true),
        f("mad", DataType::Float64, true),
        f("q1", DataType::Float64, true),
        f("q3", DataType::Float64, true),
        f("kg_n", DataType::Int64, false),
        f("kg_median", DataType::Float64, true),
        f("kg_mad", DataType::Float64, true),
        f("kg_q1", DataType::Float64, true),
        f("kg_q3", DataType::Float64, true),
        f("drift", DataType::Float64, true),
        f("center_month", DataType::Float64, true),
    ]))
}

/// The schema of `classifier.parquet`: word counts per HS6; a row with a
/// NULL word holds the HS6's number of training documents.
pub fn classifier_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("hs6", DataType::Utf8, false),
        Field::new("word", DataType::Utf8, true),
        Field::new("count", DataType::Float64, false),
    ]))
}

fn read_classifier(batches: &[RecordBatch]) -> std::result::Result<classifier::Classifier, String> {
    let mut classes: Vec<String> = Vec::new();
    let mut rows: Vec<(String, Option<String>, f64)> = Vec::new();
    for batch in batches {
        let hs6 = batch
            .column_by_name("hs6")
            .and_then(|c| c.as_string_opt::<i32>())
            .ok_or("classifier: no Utf8 column hs6")?;
        let word = batch
            .column_by_name("word")
            .and_then(|c| c.as_string_opt::<i32>())
            .ok_or("classifier: no Utf8 column word")?;
        let count = batch
            .column_by_name("count")
            .and_then(|c| c.as_primitive_opt::<Float64Type>())
            .ok_or("classifier: no Float64 column count")?;
        for i in 0..batch.num_rows() {
            classes.push(hs6.value(i).to_string());
            rows.push((
                hs6.value(i).to_string(),
                word.is_valid(i).then(|| word.value(i).to_string()),
                count.value(i),
            ));
        }
    }
    classes.sort();
    classes.dedup();
    let index = |c: &str| {
        classes
            .binary_search_by(|x| x.as_str().cmp(c))
            .expect("collected above") as u32
    };
    let mut documents = vec![0.0; classes.len()];
    let mut counts = Vec::with_capacity(rows.len());
    for (hs6, word, count) in rows {
        match word {
            None => documents[index(&hs6) as usize] += count,
            Some(w) => counts.push((index(&hs6), w, count)),
        }
    }
    Ok(classifier::Classifier::new(classes, documents, &counts))
}

/// The schema of `origin_facts.parquet`: one table of the kinds of fact below.
/// - `hs6_origin`: hs, country = origin, items, share, share_before, share_after
/// - `importer`: hs, country (NULL: all origins), importer, items
/// - `dispatch`: country = dispatch country, items, share = share of other origins
/// - `remedy`: hs = code prefix, country, share = additional duty rate, valid_from, valid_to
/// - `tariff`: hs = code prefix, share = duty rate (percent)
/// - `valuation`: importer, items = items with a price reference, share =
///   share of them markedly low
pub fn origin_schema() -> SchemaRef {
    let f = |name: &str, t: DataType, nullable: bool| Field::new(name, t, nullable);
    Arc::new(Schema::new(vec![
        f("kind", DataType::Utf8, false),
        f("hs", DataType::Utf8, true),
        f("country", DataType::Utf8, true),
        f("importer", DataType::Utf8, true),
        f("items", DataType::Int64, true),
        f("share", DataType::Float64, true),
        f("share_before", DataType::Float64, true),
        f("share_after", DataType::Float64, true),
        f("valid_from", DataType::Int32, true),
        f("valid_to", DataType::Int32, true),
    ]))
}

fn read_origins(batch: &RecordBatch, facts: &mut OriginFacts) -> std::result::Result<(), String> {
    let column = |name: &str| {
        batch
            .column_by_name(name)
            .ok_or_else(|| format!("origin facts have no column {name}"))
    };
    let text = |name: &str| -> std::result::Result<_, String> {
        column(name)?
            .as_string_opt::<i32>()
            .ok_or_else(|| format!("column {name} is not Utf8"))
    };
    let float = |name: &str| -> std::result::Result<_, String> {
        column(name)?
            .as_primitive_opt::<Float64Type>()
            .ok_or_else(|| format!("column {name} is not Float64"))
    };
    let int32 = |name: &str| -> std::result::Result<_, String> {
        column(name)?
            .as_primitive_opt::<Int32Type>()
            .ok_or_else(|| format!("column {name} is not Int32"))
    };
    let (kind, hs, country, importer) = (
        text("kind")?,
        text("hs")?,
        text("country")?,
        text("importer")?,
    );
    let items = column("items")?
        .as_primitive_opt::<Int64Type>()
        .ok_or("column items is not Int64")?;
    let (share, before, after) = (
        float("share")?,
        float("share_before")?,
        float("share_after")?,
    );
    let (from, to) = (int32("valid_from")?, int32("valid_to")?);
    let opt = |a: &arrow::array::Float64Array, i: usize| a.is_valid(i).then(|| a.value(i));
    for i in 0..batch.num_rows() {
        let hs_digits = if hs.is_valid(i) {
            hs.value(i).as_bytes()
        } else {
            &[][..]
        };
        let country_code = if country.is_valid(i) {
            pack_country(country.value(i).as_bytes())
        } else {
            None
        };
        let n = if items.is_valid(i) {
            items.value(i).max(0) as u64
        } else {
            0
        };
        match kind.value(i) {
            "hs6_origin" => {
                if let Some(key) = cell_key(Level::Hs6Origin, hs_digits, country_code) {
                    facts.hs6_origin.insert(
                        key,
                        OriginShare {
                            items: n,
                            share: opt(share, i).unwrap_or(0.0),
                            share_before: opt(before, i),
                            share_after: opt(after, i),
                        },
                    );
                }
                if let Some(key) = cell_key(Level::Hs6, hs_digits, None) {
                    *facts.hs6_items.entry(key).or_default() += n;
                }
            }
            "importer" => {
                let product = cell_key(Level::Hs6, hs_digits, None);
                if let (Some(product), true) = (product, importer.is_valid(i)) {
                    let who = importer_hash(importer.value(i));
                    match country_code {
                        Some(origin) => facts.importers.add_origin(who, product, origin),
                        None => facts.importers.add_items(who, product, n),
                    }
                }
            }
            "dispatch" => {
                if let (Some(code), Some(s)) = (country_code, opt(share, i)) {
                    facts.dispatch.insert(code, s);
                }
            }
            "remedy" => {
                if let (Some(code), Some(rate), true) =
                    (country_code, opt(share, i), from.is_valid(i))
                {
                    facts.remedies.push(Remedy {
                        prefix: hs_digits.to_vec(),
                        country: code,
                        rate,
                        from: from.value(i),
                        to: to.is_valid(i).then(|| to.value(i)),
                    });
                }
            }
            "tariff" => {
                if let (Some(rate), false) = (opt(share, i), hs_digits.is_empty()) {
                    facts.tariff.push((hs_digits.to_vec(), rate));
                }
            }
            "valuation" => {
                if let (Some(share), true) = (opt(share, i), importer.is_valid(i)) {
                    let record = ValuationRecord {
                        items: n,
                        low: (share.clamp(0.0, 1.0) * n as f64).round() as u64,
                    };
                    facts.valuation_overall.items += record.items;
                    facts.valuation_overall.low += record.low;
                    facts
                        .valuation_records
                        .insert(importer_hash(importer.value(i)), record);
                }
            }
            other => return Err(format!("unknown origin fact kind {other:?}")),
        }
    }
    Ok(())
}

fn read_prices(
    batch: &RecordBatch,
    prices: &mut hashbrown::HashMap<u64, PriceCell>,
) -> std::result::Result<(), String> {
    let column = |name: &str| {
        batch
            .column_by_name(name)
            .ok_or_else(|| format!("price profiles have no column {name}"))
    };
    let floats = |name: &str| -> std::result::Result<_, String> {
        column(name)?
            .as_primitive_opt::<Float64Type>()
            .ok_or_else(|| format!("column {name} is not Float64"))
    };
    let ints = |name: &str| -> std::result::Result<_, String> {
        column(name)?
            .as_primitive_opt::<Int64Type>()
            .ok_or_else(|| format!("column {name} is not Int64"))
    };
    let level = column("level")?
        .as_primitive_opt::<Int32Type>()
        .ok_or("column level is not Int32")?;
    let hs = column("hs")?
        .as_string_opt::<i32>()
        .ok_or("column hs is not Utf8")?;
    let origin = column("origin")?
        .as_string_opt::<i32>()
        .ok_or("column origin is not Utf8")?;
    let unit = column("unit")?
        .as_string_opt::<i32>()
        .ok_or("column unit is not Utf8")?;
    let (n, median, mad, q1, q3) = (
        ints("n")?,
        floats("median")?,
        floats("mad")?,
        floats("q1")?,
        floats("q3")?,
    );
    let (kg_n, kg_median, kg_mad, kg_q1, kg_q3) = (
        ints("kg_n")?,
        floats("kg_median")?,
        floats("kg_mad")?,
        floats("kg_q1")?,
        floats("kg_q3")?,
    );
    let (drift, center) = (floats("drift")?, floats("center_month")?);
    let profile = |n: &arrow::array::Int64Array,
                   m: &arrow::array::Float64Array,
                   d: &arrow::array::Float64Array,
                   a: &arrow::array::Float64Array,
                   b: &arrow::array::Float64Array,
                   i: usize| {
        (n.value(i) > 0 && m.is_valid(i) && d.is_valid(i)).then(|| Profile {
            n: n.value(i) as u64,
            median: m.value(i),
            mad: d.value(i),
            q1: a.value(i),
            q3: b.value(i),
        })
    };
    for i in 0..batch.num_rows() {
        let level = Level::from_i32(level.value(i))
            .ok_or_else(|| format!("unknown level {}", level.value(i)))?;
        let origin_code = origin
            .is_valid(i)
            .then(|| pack_country(origin.value(i).as_bytes()))
            .flatten();
        let Some(key) = cell_key(level, hs.value(i).as_bytes(), origin_code) else {
            continue;
        };
        prices.insert(
            key,
            PriceCell {
                unit: if unit.is_valid(i) {
                    pack_unit(unit.value(i)).unwrap_or(0)
                } else {
                    0
                },
                per_unit: profile(n, median, mad, q1, q3, i),
                per_kg: profile(kg_n, kg_median, kg_mad, kg_q1, kg_q3, i),
                drift: if drift.is_valid(i) && drift.value(i).is_finite() {
                    drift.value(i)
                } else {
                    0.0
                },
                center_month: if center.is_valid(i) {
                    center.value(i)
                } else {
                    0.0
                },
            },
        );
    }
    Ok(())
}

/// `file` of model `version` under `root` (e.g. its `PRICE_FILE`, which
/// the engine exposes as a table).
pub fn version_file(root: &Path, version: &str, file: &str) -> Path {
    path(root, &[MODEL_DIR, version, file])
}

fn path(root: &Path, parts: &[&str]) -> Path {
    parts
        .iter()
        .flat_map(|p| p.split('/'))
        .fold(root.clone(), |p, part| p.join(part))
}

/// Writes a model version and then publishes it as current.
pub async fn publish(
    store: &dyn ObjectStore,
    root: &Path,
    manifest: &Manifest,
    prices: &[RecordBatch],
    origins: &[RecordBatch],
    classifier: &[RecordBatch],
) -> Result<()> {
    write_version(store, root, manifest, prices, origins, classifier).await?;
    set_current(store, root, &manifest.version).await
}

/// Makes `version` (already written) the current model: one small object
/// rewritten last, so readers see the previous model or this one whole.
pub async fn set_current(store: &dyn ObjectStore, root: &Path, version: &str) -> Result<()> {
    let location = path(root, &[MODEL_DIR, CURRENT_FILE]);
    store
        .put(
            &location,
            PutPayload::from(format!("{version}\n").into_bytes()),
        )
        .await
        .map(|_| ())
        .map_err(|source| ModelError::Storage {
            location: location.to_string(),
            source,
        })
}

/// Stores one file of a model version.
async fn put(store: &dyn ObjectStore, location: Path, bytes: Vec<u8>) -> Result<()> {
    store
        .put(&location, PutPayload::from(bytes))
        .await
        .map(|_| ())
        .map_err(|source| ModelError::Storage {
            location: location.to_string(),
            source,
        })
}

/// `batches` as the bytes of one Parquet file (errors name `dir`).
fn encode_parquet(dir: &Path, schema: SchemaRef, batches: &[RecordBatch]) -> Result<Vec<u8>> {
    let mut parquet = Vec::new();
    let mut writer =
        ArrowWriter::try_new(&mut parquet, schema, None).map_err(|e| corrupt(dir, e))?;
    for batch in batches {
        writer.write(batch).map_err(|e| corrupt(dir, e))?;
    }
    writer.close().map_err(|e| corrupt(dir, e))?;
    Ok(parquet)
}

/// Writes the files of a model version without making it current.
pub async fn write_version(
    store: &dyn ObjectStore,
    root: &Path,
    manifest: &Manifest,
    prices: &[RecordBatch],
    origins: &[RecordBatch],
    classifier: &[RecordBatch],
) -> Result<()> {
    let dir = path(root, &[MODEL_DIR, &manifest.version]);
    for (file, schema, batches) in [
        (PRICE_FILE, price_schema(), prices),
        (ORIGIN_FILE, origin_schema(), origins),
        (CLASSIFIER_FILE, classifier_schema(), classifier),
    ] {
        let bytes = encode_parquet(&dir, schema, batches)?;
        put(store, dir.clone().join(file), bytes).await?;
    }
    let manifest_text = toml::to_string(manifest).map_err(|e| corrupt(&dir, e))?;
    // Last: a version with a manifest is complete.
    put(
        store,
        dir.clone().join(MANIFEST_FILE),
        manifest_text.into_bytes(),
    )
    .await
}

/// Adds a learned model to a written version: its files first, then the
/// manifest rewritten with its summary (one put), so a reader sees the
/// version with the learned model whole or without it.
pub async fn write_learned(
    store: &dyn ObjectStore,
    root: &Path,
    manifest: &Manifest,
    model: &learned::LearnedModel,
) -> Result<()> {
    let dir = path(root, &[MODEL_DIR, &manifest.version]);
    let batch = model.profile_batch().map_err(|e| corrupt(&dir, e))?;
    let parquet = encode_parquet(&dir, learned::profile_schema(), &[batch])?;
    put(store, dir.clone().join(learned::PROFILES_FILE), parquet).await?;
    let json = model.to_json().map_err(|e| corrupt(&dir, e))?;
    put(store, dir.clone().join(learned::LEARNED_FILE), json).await?;
    let manifest = Manifest {
        learned: Some(model.summary.clone()),
        ..manifest.clone()
    };
    write_manifest(store, root, &manifest).await
}

/// Rewrites a written version's manifest (one put): what it adds is there
/// whole or not at all.
pub async fn write_manifest(
    store: &dyn ObjectStore,
    root: &Path,
    manifest: &Manifest,
) -> Result<()> {
    let dir = path(root, &[MODEL_DIR, &manifest.version]);
    let text = toml::to_string(manifest).map_err(|e| corrupt(&dir, e))?;
    put(store, dir.clone().join(MANIFEST_FILE), text.into_bytes()).await
}

fn corrupt(location: &Path, e: impl std::fmt::Display) -> ModelError {
    ModelError::Corrupt {
        location: location.to_string(),
        message: e.to_string(),
    }
}

async fn get(store: &dyn ObjectStore, location: &Path) -> Result<Option<Bytes>> {
    match store.get(location).await {
        Ok(result) => result.bytes().await.map(Some),
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => Err(e),
    }
    .map_err(|source| ModelError::Storage {
        location: location.to_string(),
        source,
    })
}

/// Deletes the model versions under `root` that are neither current nor in
/// `keep` and whose newest file is older than `older_than` (a version a
/// killed build left without making it current, or one superseded long
/// ago). Returns the versions deleted.
pub async fn collect_versions(
    store: &dyn ObjectStore,
    root: &Path,
    keep: &std::collections::BTreeSet<String>,
    older_than: std::time::Duration,
) -> Result<Vec<String>> {
    use futures::TryStreamExt;
    let dir = path(root, &[MODEL_DIR]);
    let storage = |source| ModelError::Storage {
        location: dir.to_string(),
        source,
    };
    let current = current_version(store, root).await?;
    let objects: Vec<_> = store
        .list(Some(&dir))
        .try_collect()
        .await
        .map_err(storage)?;
    let mut versions: std::collections::BTreeMap<
        String,
        (chrono::DateTime<chrono::Utc>, Vec<Path>),
    > = Default::default();
    for meta in objects {
        let Some(version) = meta.location.prefix_match(&dir).and_then(|mut parts| {
            let first = parts.next()?;
            // Files directly under model/ (CURRENT) are not versions.
            parts.next().map(|_| first.as_ref().to_string())
        }) else {
            continue;
        };
        let entry = versions
            .entry(version)
            .or_insert((meta.last_modified, Vec::new()));
        entry.0 = entry.0.max(meta.last_modified);
        entry.1.push(meta.location);
    }
    let cutoff = chrono::Utc::now()
        - chrono::Duration::from_std(older_than).unwrap_or(chrono::Duration::MAX);
    let mut deleted = Vec::new();
    for (version, (newest, files)) in versions {
        if Some(&version) == current.as_ref() || keep.contains(&version) || newest > cutoff {
            continue;
        }
        for file in files {
            match store.delete(&file).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(source) => {
                    return Err(ModelError::Storage {
                        location: file.to_string(),
                        source,
                    });
                }
            }
        }
        deleted.push(version);
    }
    Ok(deleted)
}

/// The current model version of the warehouse at `root`; `Ok(None)` when
/// no model was ever built.
pub async fn current_version(store: &dyn ObjectStore, root: &Path) -> Result<Option<String>> {
    let pointer = path(root, &[MODEL_DIR, CURRENT_FILE]);
    let Some(version) = get(store, &pointer).await? else {
        return Ok(None);
    };
    let version = std::str::from_utf8(&version)
        .map_err(|e| corrupt(&pointer, e))?
        .trim()
        .to_string();
    if version.is_empty() || version.contains('/') {
        return Err(corrupt(&pointer, format!("invalid version {version:?}")));
    }
    Ok(Some(version))
}

/// The manifest of a written model version.
pub async fn read_manifest(
    store: &dyn ObjectStore,
    root: &Path,
    version: &str,
) -> Result<Manifest> {
    let manifest_path = path(root, &[MODEL_DIR, version, MANIFEST_FILE]);
    let manifest_bytes = get(store, &manifest_path).await?.ok_or_else(|| {
        corrupt(
            &manifest_path,
            "missing (the pointer names a version that is not there)",
        )
    })?;
    toml::from_str(std::str::from_utf8(&manifest_bytes).map_err(|e| corrupt(&manifest_path, e))?)
        .map_err(|e| corrupt(&manifest_path, e))
}

/// Loads the current model of the warehouse at `root`; `Ok(None)` when no
/// model was ever built.
pub async fn load_current(store: &dyn ObjectStore, root: &Path) -> Result<Option<RiskModel>> {
    match current_version(store, root).await? {
        Some(version) => load_version(store, root, &version).await.map(Some),
        None => Ok(None),
    }
}

/// Loads one written model version.
pub async fn load_version(
    store: &dyn ObjectStore,
    root: &Path,
    version: &str,
) -> Result<RiskModel> {
    let dir = path(root, &[MODEL_DIR, version]);
    let manifest = read_manifest(store, root, version).await?;
    let read = async |file: &str| -> Result<Vec<RecordBatch>> {
        let location = dir.clone().join(file);
        let bytes = get(store, &location)
            .await?
            .ok_or_else(|| corrupt(&location, "missing"))?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
            .and_then(|b| b.build())
            .map_err(|e| corrupt(&location, e))?;
        reader
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| corrupt(&location, e))
    };
    let prices = read(PRICE_FILE).await?;
    let origins = read(ORIGIN_FILE).await?;
    let words = read(CLASSIFIER_FILE).await?;
    let mut model =
        RiskModel::from_batches(manifest, &prices, &origins).map_err(|e| corrupt(&dir, e))?;
    model.classifier = read_classifier(&words).map_err(|e| corrupt(&dir, e))?;
    if model.manifest.learned.is_some() {
        let json_location = dir.clone().join(learned::LEARNED_FILE);
        let json = get(store, &json_location)
            .await?
            .ok_or_else(|| corrupt(&json_location, "missing"))?;
        let profiles = read(learned::PROFILES_FILE).await?;
        model.learned = Some(
            learned::LearnedModel::from_parts(&json, &profiles).map_err(|e| corrupt(&dir, e))?,
        );
    }
    Ok(model)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{ArrayRef, Float64Array, Int32Array, Int64Array, StringArray};

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
