//! A deterministic synthetic customs warehouse with known fraud.
//!
//! The generator draws a world once per seed (tariff, origins, trade
//! remedies, traders), then generates months of declaration items in
//! independent chunks, in parallel. Fraud is injected with its ground truth
//! written to `_truth/`, outside the contract tables:
//! - undervaluation: the declared value is 30-70% of the true value;
//! - misclassification: a lower-duty line of the same heading (or chapter)
//!   is declared while the description still names the true goods;
//! - false origin: goods under an anti-dumping or countervailing measure
//!   declared from a neighbour or hub, or non-preferential goods declared
//!   from a partner country with a preference claimed.

pub mod catalogue;
mod chunk;
mod world;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Float64Array, Int32Array, RecordBatch, StringArray,
};
use arrow::datatypes::{DataType, Field, Schema};
use chrono::NaiveDate;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

pub use chunk::{declarations_schema, inspections_schema, truth_schema};
pub use world::VAT_RATE;
use world::{COUNTRIES, World, add_months};

/// Rows per part file. Small enough that 2 cores stay busy on one month,
/// large enough that Parquet row groups compress well.
pub const CHUNK_ROWS: usize = 250_000;

#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    #[error("{0}")]
    InvalidOption(String),
    #[error("cannot read {path}: {message}")]
    Input { path: String, message: String },
    #[error("cannot write {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write Parquet file {path}: {source}")]
    Parquet {
        path: String,
        #[source]
        source: parquet::errors::ParquetError,
    },
}

#[derive(Debug, Clone)]
pub struct GenerateOptions {
    pub out: PathBuf,
    pub rows: u64,
    pub seed: u64,
    pub months: u32,
    /// The last generated month, `(year, month)`.
    pub last_month: (i32, u32),
    /// The HS nomenclature CSV; the built-in catalogue when absent.
    pub hs_nomenclature: Option<PathBuf>,
    /// Replace `out` if it already holds data.
    pub overwrite: bool,
    pub variant: Variant,
}

/// Warehouses unlike the default one, to check that a method generalises.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Variant {
    /// Fraud comes from parties: colluding declarant x importer pairs and
    /// suppliers linked to fraud, undervaluing by less (prices show it
    /// less; inspection outcomes reveal who).
    pub fraud_by_parties: bool,
    /// No quantity, quantity unit or description (as in many exports of
    /// administrations' data); net mass stays.
    pub export_shaped: bool,
    /// Share of items inspected (about [`world::DEFAULT_INSPECTION_RATE`]
    /// when `None`).
    pub inspection_rate: Option<f64>,
    /// Fraud moves in the second half of the period: new importers start
    /// declaring and defraud heavily, circumvention takes new routes, and
    /// a few products that were clean start being undervalued (a model
    /// that only exploits what it learned stops finding it).
    pub drift: bool,
    /// With `drift`, the new importers defraud by declaring part of their
    /// goods, with value and masses to match: nothing in a declaration
    /// shows it (price, code and origin are ordinary), so only controls,
    /// and what the model learns from them about those importers, find
    /// it. The case for exploration: a model that exploits its evidence
    /// never looks there.
    pub hidden_fraud: bool,
}

impl GenerateOptions {
    pub fn new(out: impl Into<PathBuf>, rows: u64, seed: u64) -> Self {
        GenerateOptions {
            out: out.into(),
            rows,
            seed,
            months: 12,
            last_month: DEFAULT_LAST_MONTH,
            hs_nomenclature: None,
            overwrite: false,
            variant: Variant::default(),
        }
    }
}

/// Fixed so that a seed gives the same warehouse on any day.
pub const DEFAULT_LAST_MONTH: (i32, u32) = (2026, 10);

#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub rows: u64,
    pub declarations: u64,
    pub inspections: u64,
    /// Fraudulent items by kind: undervaluation, misclassification,
    /// anti-dumping circumvention, preference abuse, quantity under-declared.
    pub fraud_items: [u64; 5],
    pub files: u64,
    pub products: usize,
    pub tariff_lines: usize,
    pub traders: usize,
    pub first_month: (i32, u32),
    pub last_month: (i32, u32),
    pub elapsed: Duration,
}

impl Summary {
    pub fn fraud_total(&self) -> u64 {
        self.fraud_items.iter().sum()
    }
}

/// Generates a warehouse into `options.out`, atomically: everything is
/// written to a staging folder beside it and renamed into place at the end,
/// so a failed or interrupted run leaves no half-written warehouse.
pub fn generate(options: &GenerateOptions) -> Result<Summary, SynthError> {
    let started = Instant::now();
    if options.rows == 0 {
        return Err(SynthError::InvalidOption(
            "--rows must be at least 1".into(),
        ));
    }
    if !(1..=240).contains(&options.months) {
        return Err(SynthError::InvalidOption(format!(
            "--months must be between 1 and 240, not {}",
            options.months
        )));
    }
    let (last_year, last_month) = options.last_month;
    let last = NaiveDate::from_ymd_opt(last_year, last_month, 1).ok_or_else(|| {
        SynthError::InvalidOption(format!("invalid last month {last_year}-{last_month}"))
    })?;
    let out = &options.out;
    if out.exists() && !options.overwrite && !is_empty_dir(out) {
        return Err(SynthError::InvalidOption(format!(
            "{} already exists and is not empty; choose another --out or pass --overwrite",
            out.display()
        )));
    }
    let catalogue = match &options.hs_nomenclature {
        Some(path) => catalogue::from_nomenclature(path)?,
        None => catalogue::built_in(),
    };
    let start = add_months(last, 1 - options.months as i32);
    let mut world_rng = ChaCha8Rng::seed_from_u64(options.seed ^ 0x5EED_0F_A0A0A);
    let mut world = World::build(
        catalogue,
        options.rows,
        start,
        options.months,
        &mut world_rng,
    );
    world.variant = options.variant.clone();

    let staging = staging_path(out)?;
    if staging.exists() {
        fs::remove_dir_all(&staging).map_err(|e| io_error(&staging, e))?;
    }
    let result = write_all(&world, options, start, &staging);
    let mut summary = match result {
        Ok(summary) => summary,
        Err(e) => {
            let _ = fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    publish(&staging, out)?;
    summary.products = world.products.len();
    summary.tariff_lines = world.lines.len();
    summary.traders = world.traders.len();
    summary.first_month = (
        chrono::Datelike::year(&start),
        chrono::Datelike::month(&start),
    );
    summary.last_month = options.last_month;
    summary.elapsed = started.elapsed();
    Ok(summary)
}

fn is_empty_dir(path: &Path) -> bool {
    fs::read_dir(path)
        .map(|mut d| d.next().is_none())
        .unwrap_or(false)
}

fn io_error(path: &Path, source: std::io::Error) -> SynthError {
    SynthError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn staging_path(out: &Path) -> Result<PathBuf, SynthError> {
    let name = out.file_name().ok_or_else(|| {
        SynthError::InvalidOption(format!("--out {} has no folder name", out.display()))
    })?;
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(|e| io_error(parent, e))?;
    Ok(parent.join(format!(
        ".{}.partial-{}",
        name.to_string_lossy(),
        std::process::id()
    )))
}

/// Moves the finished staging folder to `out`, replacing an old one.
fn publish(staging: &Path, out: &Path) -> Result<(), SynthError> {
    if out.exists() {
        let old = staging.with_extension("old");
        fs::rename(out, &old).map_err(|e| io_error(out, e))?;
        fs::rename(staging, out).map_err(|e| io_error(out, e))?;
        fs::remove_dir_all(&old).map_err(|e| io_error(&old, e))?;
    } else {
        fs::rename(staging, out).map_err(|e| io_error(out, e))?;
    }
    Ok(())
}

fn write_all(
    world: &World,
    options: &GenerateOptions,
    start: NaiveDate,
    dir: &Path,
) -> Result<Summary, SynthError> {
    fs::create_dir_all(dir.join("reference")).map_err(|e| io_error(dir, e))?;
    write_reference(world, dir)?;

    let months = options.months as usize;
    // Trade grows about 1% a month; rows are shared out exactly.
    let weights: Vec<f64> = (0..months).map(|m| 1.0 + 0.01 * m as f64).collect();
    let total: f64 = weights.iter().sum();
    let mut month_rows: Vec<u64> = weights
        .iter()
        .map(|w| (options.rows as f64 * w / total).floor() as u64)
        .collect();
    let missing = options.rows - month_rows.iter().sum::<u64>();
    for m in 0..missing as usize {
        month_rows[months - 1 - m % months] += 1;
    }

    let mut specs = Vec::new();
    for (m, &rows) in month_rows.iter().enumerate() {
        let date = add_months(start, m as i32);
        let chunks = (rows as usize).div_ceil(CHUNK_ROWS).max(1);
        for c in 0..chunks {
            let chunk_rows = rows as usize / chunks + usize::from(c < rows as usize % chunks);
            if chunk_rows > 0 {
                specs.push(chunk::ChunkSpec {
                    year: chrono::Datelike::year(&date),
                    month: chrono::Datelike::month(&date),
                    month_index: m as u32,
                    chunk: c as u32,
                    rows: chunk_rows,
                    seed: options.seed,
                });
            }
        }
    }

    let results: Vec<Result<(chunk::ChunkStats, u64, u64), SynthError>> = specs
        .par_iter()
        .map(|spec| {
            let output = chunk::generate_chunk(world, spec);
            let partition = format!("year={}/month={}", spec.year, spec.month);
            let file = format!("part-{:03}.parquet", spec.chunk);
            let mut files = 0;
            for (table, batch) in [
                ("declarations", &output.declarations),
                ("inspections", &output.inspections),
                ("_truth", &output.truth),
            ] {
                if batch.num_rows() > 0 {
                    let folder = dir.join(table).join(&partition);
                    fs::create_dir_all(&folder).map_err(|e| io_error(&folder, e))?;
                    write_parquet(&folder.join(&file), batch)?;
                    files += 1;
                }
            }
            Ok((output.stats, output.declarations.num_rows() as u64, files))
        })
        .collect();

    let mut summary = Summary {
        files: 4,
        ..Default::default()
    };
    for result in results {
        let (stats, rows, files) = result?;
        summary.rows += rows;
        summary.declarations += stats.declarations;
        summary.inspections += stats.inspections;
        summary.files += files;
        for (total, n) in summary.fraud_items.iter_mut().zip(stats.fraud_items) {
            *total += n;
        }
    }
    Ok(summary)
}

fn write_parquet(path: &Path, batch: &RecordBatch) -> Result<(), SynthError> {
    let parquet_error = |source| SynthError::Parquet {
        path: path.display().to_string(),
        source,
    };
    let properties = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_created_by(format!("aduana-synth {}", env!("CARGO_PKG_VERSION")))
        // Ids are unique: a dictionary would only cost time.
        .set_column_dictionary_enabled("declaration_id".into(), false)
        .build();
    let file = fs::File::create(path).map_err(|e| io_error(path, e))?;
    let mut writer =
        ArrowWriter::try_new(file, batch.schema(), Some(properties)).map_err(parquet_error)?;
    writer.write(batch).map_err(parquet_error)?;
    writer.close().map_err(parquet_error)?;
    Ok(())
}

fn batch(fields: Vec<(&str, DataType, bool, ArrayRef)>) -> RecordBatch {
    let schema = Schema::new(
        fields
            .iter()
            .map(|(name, t, nullable, _)| Field::new(*name, t.clone(), *nullable))
            .collect::<Vec<_>>(),
    );
    RecordBatch::try_new(Arc::new(schema), fields.into_iter().map(|f| f.3).collect())
        .expect("reference columns match their schema")
}

fn write_reference(world: &World, dir: &Path) -> Result<(), SynthError> {
    let reference = dir.join("reference");
    let nomenclature = &world.catalogue_nomenclature;
    write_parquet(
        &reference.join("hs_nomenclature.parquet"),
        &batch(vec![
            (
                "hs_code",
                DataType::Utf8,
                false,
                Arc::new(StringArray::from_iter_values(
                    nomenclature.iter().map(|e| &e.code),
                )),
            ),
            (
                "description",
                DataType::Utf8,
                true,
                Arc::new(StringArray::from_iter_values(
                    nomenclature.iter().map(|e| &e.description),
                )),
            ),
            (
                "parent",
                DataType::Utf8,
                true,
                Arc::new(
                    nomenclature
                        .iter()
                        .map(|e| e.parent.as_deref())
                        .collect::<StringArray>(),
                ),
            ),
            (
                "level",
                DataType::Int32,
                true,
                Arc::new(Int32Array::from_iter_values(
                    nomenclature.iter().map(|e| e.level),
                )),
            ),
            (
                "section",
                DataType::Utf8,
                true,
                Arc::new(StringArray::from_iter_values(
                    nomenclature.iter().map(|e| &e.section),
                )),
            ),
        ]),
    )?;
    write_parquet(
        &reference.join("tariff.parquet"),
        &batch(vec![
            (
                "hs_code",
                DataType::Utf8,
                false,
                Arc::new(StringArray::from_iter_values(
                    world.lines.iter().map(|l| &l.code),
                )),
            ),
            (
                "duty_rate",
                DataType::Float64,
                false,
                Arc::new(Float64Array::from_iter_values(
                    world.lines.iter().map(|l| l.duty_rate),
                )),
            ),
        ]),
    )?;
    let remedies = &world.remedies;
    write_parquet(
        &reference.join("trade_remedies.parquet"),
        &batch(vec![
            (
                "hs_code",
                DataType::Utf8,
                false,
                Arc::new(StringArray::from_iter_values(
                    remedies.iter().map(|r| &world.products[r.product].hs6),
                )),
            ),
            (
                "origin_country",
                DataType::Utf8,
                false,
                Arc::new(StringArray::from_iter_values(
                    remedies.iter().map(|r| COUNTRIES[r.country].code),
                )),
            ),
            (
                "measure",
                DataType::Utf8,
                true,
                Arc::new(StringArray::from_iter_values(
                    remedies.iter().map(|r| r.measure),
                )),
            ),
            (
                "additional_duty_rate",
                DataType::Float64,
                false,
                Arc::new(Float64Array::from_iter_values(
                    remedies.iter().map(|r| r.rate),
                )),
            ),
            (
                "valid_from",
                DataType::Date32,
                false,
                Arc::new(Date32Array::from_iter_values(
                    remedies
                        .iter()
                        .map(|r| chunk::days_since_epoch(r.valid_from)),
                )),
            ),
            (
                "valid_to",
                DataType::Date32,
                true,
                Arc::new(Date32Array::from(vec![None; remedies.len()])),
            ),
        ]),
    )?;
    let traders = &world.traders;
    write_parquet(
        &reference.join("traders.parquet"),
        &batch(vec![
            (
                "importer_id",
                DataType::Utf8,
                false,
                Arc::new(StringArray::from_iter_values(traders.iter().map(|t| &t.id))),
            ),
            (
                "name",
                DataType::Utf8,
                true,
                Arc::new(StringArray::from_iter_values(
                    traders.iter().map(|t| &t.name),
                )),
            ),
            (
                "aeo",
                DataType::Boolean,
                true,
                Arc::new(BooleanArray::from(
                    traders.iter().map(|t| t.aeo).collect::<Vec<_>>(),
                )),
            ),
            (
                "registered_on",
                DataType::Date32,
                true,
                Arc::new(Date32Array::from_iter_values(
                    traders
                        .iter()
                        .map(|t| chunk::days_since_epoch(t.registered_on)),
                )),
            ),
            (
                "sector",
                DataType::Utf8,
                true,
                Arc::new(StringArray::from_iter_values(
                    traders.iter().map(|t| t.sector),
                )),
            ),
        ]),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_chunk_and_different_seed_differs() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let start = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        let world = World::build(catalogue::built_in(), 20_000, start, 3, &mut rng);
        let spec = |seed| chunk::ChunkSpec {
            year: 2026,
            month: 2,
            month_index: 1,
            chunk: 0,
            rows: 2_000,
            seed,
        };
        let a = chunk::generate_chunk(&world, &spec(9));
        let b = chunk::generate_chunk(&world, &spec(9));
        let c = chunk::generate_chunk(&world, &spec(10));
        assert_eq!(a.declarations, b.declarations);
        assert_eq!(a.truth, b.truth);
        assert_ne!(a.declarations, c.declarations);
        assert_eq!(a.declarations.num_rows(), 2_000);
        assert_eq!(a.truth.num_rows(), 2_000);
    }

    #[test]
    fn refuses_to_overwrite_data_without_consent() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("keep.txt"), "analyst's file").unwrap();
        let options = GenerateOptions::new(dir.path(), 100, 1);
        let error = generate(&options).unwrap_err().to_string();
        assert!(
            error.contains("already exists") && error.contains("--overwrite"),
            "{error}"
        );
        assert!(dir.path().join("keep.txt").exists());
    }

    #[test]
    fn bad_options_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("wh");
        let e = generate(&GenerateOptions::new(&out, 0, 1)).unwrap_err();
        assert!(e.to_string().contains("--rows"));
        let mut options = GenerateOptions::new(&out, 10, 1);
        options.months = 0;
        assert!(
            generate(&options)
                .unwrap_err()
                .to_string()
                .contains("--months")
        );
        options.months = 2;
        options.hs_nomenclature = Some(dir.path().join("missing.csv"));
        let e = generate(&options).unwrap_err().to_string();
        assert!(e.contains("missing.csv"), "{e}");
        assert!(!out.exists(), "nothing published after a failure");
    }
}
