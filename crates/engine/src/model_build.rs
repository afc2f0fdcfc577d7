//! `aduana model build`: learns the risk model's reference profiles from
//! the warehouse's history with SQL on the session, then publishes them.
//!
//! Items that an inspection found fraudulent are left out: the reference
//! must describe honest trade; so are the compliant inspected ones while
//! they are a minority, since the learned model trains on them (see
//! `WindowCounts::leave_out_inspected`). Cells are grouped at four levels (national
//! line × origin, HS6 × origin, HS6, HS4); within a cell, per-unit values
//! use only the cell's dominant quantity unit, per-kg values use all items.

use std::collections::BTreeMap;

use std::collections::HashMap;

pub use aduana_model::learned::MIN_LABELLED_FRAUDS;
use aduana_model::price_build::PriceCellsBuilder;
use aduana_model::valuation::{Declared, deviation, month_index};
use aduana_model::{MARKEDLY_LOW_Z, Manifest, RiskModel, ValuationRecord};
use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{Date32Type, Int32Type, Int64Type};
use chrono::{Datelike, Months, NaiveDate, Utc};
use std::time::{Duration, Instant};

use crate::{EngineError, Result, Session, WritePolicy};

#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Last day of history used (inclusive); default the latest declaration.
    pub through: Option<NaiveDate>,
    pub window_months: u32,
    /// Cells with fewer references are not kept (and never used).
    pub min_cell_size: u64,
    /// The root the model is written under (its `risk/model/`); the
    /// warehouse root when unset. Backtests write under their own.
    pub root: Option<object_store::path::Path>,
    /// Make the new version current at once (`aduana model build`); the
    /// refresh job does it itself when it publishes the tables scored with
    /// it.
    pub make_current: bool,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            through: None,
            window_months: 12,
            min_cell_size: 30,
            root: None,
            make_current: true,
        }
    }
}

async fn scalar_date(session: &Session, sql: &str) -> Result<Option<NaiveDate>> {
    let batches = session
        .sql(sql, WritePolicy::ReadOnly)
        .await?
        .collect()
        .await?;
    let Some(batch) = batches.first().filter(|b| b.num_rows() > 0) else {
        return Ok(None);
    };
    let column = cast(batch.column(0), &arrow::datatypes::DataType::Date32)?;
    let dates = column.as_primitive::<Date32Type>();
    Ok(dates
        .is_valid(0)
        .then(|| Date32Type::to_naive_date_opt(dates.value(0)))
        .flatten())
}

async fn scalar_count(session: &Session, sql: &str) -> Result<u64> {
    let batches = session
        .sql(sql, WritePolicy::ReadOnly)
        .await?
        .collect()
        .await?;
    let column = cast(batches[0].column(0), &arrow::datatypes::DataType::Int64)?;
    Ok(column.as_primitive::<Int64Type>().value(0).max(0) as u64)
}

/// The window's items and what inspections known before its end said of
/// them (an item is inspected by its own inspection or its declaration's).
#[derive(Debug)]
struct WindowCounts {
    items: u64,
    inspected: u64,
    found_fraud: u64,
}

impl WindowCounts {
    /// Whether the references leave out every inspected item, not only
    /// those found fraudulent. The learned model trains on inspected items
    /// with their evidence: measured against references they are part of,
    /// compliant items look more ordinary than a new item ever does, and
    /// the model learns to trust the evidence too much (leaving them out
    /// raised Pre@1% by 0.04-0.06 on two test warehouses). When most of
    /// the window is inspected, leaving them out would leave the references
    /// too little to stand on: then only frauds are left out.
    fn leave_out_inspected(&self) -> bool {
        self.inspected * 2 <= self.items
    }
}

async fn window_counts(session: &Session, window: &str, end: NaiveDate) -> Result<WindowCounts> {
    if session.warehouse().table("inspections").is_none() {
        let items = scalar_count(
            session,
            &format!("SELECT COUNT(*) FROM declarations d WHERE {window}"),
        )
        .await?;
        return Ok(WindowCounts {
            items,
            inspected: 0,
            found_fraud: 0,
        });
    }
    let sql = format!(
        "WITH known AS (
             SELECT declaration_id, item_no, MAX(CASE WHEN result = 'fraud' THEN 1 ELSE 0 END) AS fraud
             FROM inspections WHERE inspected_on < DATE '{end}' GROUP BY declaration_id, item_no),
         outcome AS (
             SELECT GREATEST(i.fraud, w.fraud) AS fraud
             FROM (SELECT * FROM declarations d WHERE {window}) d
             LEFT JOIN known i ON i.declaration_id = d.declaration_id AND i.item_no = d.item_no
             LEFT JOIN (SELECT * FROM known WHERE item_no IS NULL) w
                    ON w.declaration_id = d.declaration_id)
         SELECT COUNT(*), COUNT(fraud), COUNT(*) FILTER (WHERE fraud = 1) FROM outcome"
    );
    let batches = session
        .sql(&sql, WritePolicy::ReadOnly)
        .await?
        .collect()
        .await?;
    let count = |c: usize| -> Result<u64> {
        let column = cast(batches[0].column(c), &arrow::datatypes::DataType::Int64)?;
        Ok(column.as_primitive::<Int64Type>().value(0).max(0) as u64)
    };
    Ok(WindowCounts {
        items: count(0)?,
        inspected: count(1)?,
        found_fraud: count(2)?,
    })
}

/// A published model version and how long each part of its build took.
#[derive(Debug)]
pub struct Built {
    pub manifest: Manifest,
    /// The build's parts in the order they ran, with their wall time: what
    /// an operator needs to see where a slow build spends it.
    pub phases: Vec<(&'static str, Duration)>,
}

/// Wall time of each part of a build.
pub(crate) struct Phases {
    done: Vec<(&'static str, Duration)>,
    /// When the running part started.
    since: Instant,
}

impl Phases {
    fn start() -> Phases {
        Phases {
            done: Vec::new(),
            since: Instant::now(),
        }
    }

    /// Ends the running part as `name` and starts the next.
    pub(crate) fn end(&mut self, name: &'static str) {
        let now = Instant::now();
        self.done.push((name, now - self.since));
        self.since = now;
    }
}

/// Builds a model from the session's warehouse and publishes it as the
/// current version. Returns its manifest.
pub async fn build(session: &Session, options: &BuildOptions) -> Result<Built> {
    let mut phases = Phases::start();
    if options.window_months == 0 {
        return Err(EngineError::InvalidOption(
            "--window-months must be at least 1".into(),
        ));
    }
    let end = match options.through {
        Some(day) => day.succ_opt().expect("date in range"),
        // The last day of items that can be scored: one row dated 9999 must
        // not move the window (see `validity`).
        None => scalar_date(
            session,
            &format!(
                "SELECT MAX(declaration_date) FROM declarations WHERE ({}) IS NULL",
                crate::validity::reject_reason()
            ),
        )
        .await?
        .ok_or_else(|| {
            EngineError::InvalidOption("the warehouse has no declarations to learn from".into())
        })?
        .succ_opt()
        .expect("date in range"),
    };
    let start = end - Months::new(options.window_months);
    // Only items the refresh would score: the model never learns from a
    // row it would reject.
    let window = format!(
        "d.declaration_date >= DATE '{start}' AND d.declaration_date < DATE '{end}' AND ({}) IS NULL",
        crate::validity::reject_reason()
    );
    let counts = window_counts(session, &window, end).await?;
    phases.end("window_counts");
    let left_out = if counts.inspected == 0 {
        String::new()
    } else {
        // Only what inspections had found by the end of the window: a
        // backtest must not learn from outcomes known after its date.
        let result = if counts.leave_out_inspected() {
            ""
        } else {
            "i.result = 'fraud' AND"
        };
        format!(
            "AND NOT EXISTS (SELECT 1 FROM inspections i WHERE {result} \
                 i.inspected_on < DATE '{end}' \
                 AND i.declaration_id = d.declaration_id AND i.item_no = d.item_no) \
             AND NOT EXISTS (SELECT 1 FROM inspections i WHERE {result} \
                 i.inspected_on < DATE '{end}' \
                 AND i.declaration_id = d.declaration_id AND i.item_no IS NULL)"
        )
    };
    let training = format!(
        "SELECT replace(replace(replace(d.hs_code, '.', ''), ' ', ''), '-', '') AS line, \
                COALESCE(upper(d.origin_country), '') AS origin, d.quantity_unit AS unit, \
                ln(unit_value(d.customs_value, d.quantity)) AS luv, \
                ln(unit_value(d.customs_value, d.net_mass_kg)) AS lkg, \
                CAST(d.year * 12 + d.month - 1 AS DOUBLE) AS m, \
                COALESCE(upper(d.export_country), '') AS export, d.importer_id AS importer, \
                d.declaration_date AS day, d.description AS description \
         FROM declarations d WHERE {window} {left_out}"
    );
    // Every part of the model reads the training set: derive it (and its
    // anti-joins against inspections) once, into memory.
    session
        .context()
        .sql(&format!(
            "CREATE OR REPLACE TABLE {TRAINING_TABLE} AS {training}"
        ))
        .await?
        .collect()
        .await?;
    phases.end("training_set");
    let result =
        build_from_training(session, options, &window, start, end, &counts, &mut phases).await;
    session.context().deregister_table(TRAINING_TABLE)?;
    Ok(Built {
        manifest: result?,
        phases: phases.done,
    })
}

/// The in-memory table the build reads, dropped when it ends.
const TRAINING_TABLE: &str = "aduana_model_training";

/// A reference table's HS code as the model matches codes: its digits,
/// without the separators people write between them ("7210.49.10",
/// "7210 49 10") or a regulation's "ex" (part of a code), as the reports
/// read them. Tariff lines and remedies alike: a remedy written with dots
/// matched no declared code.
const HS_DIGITS: &str = "regexp_replace(hs_code, '[^0-9]', '', 'g')";

async fn build_from_training(
    session: &Session,
    options: &BuildOptions,
    window: &str,
    start: NaiveDate,
    end: NaiveDate,
    counts: &WindowCounts,
    phases: &mut Phases,
) -> Result<Manifest> {
    let training = format!("SELECT * FROM {TRAINING_TABLE}");
    let training_items =
        scalar_count(session, &format!("SELECT COUNT(*) FROM ({training})")).await?;
    if training_items == 0 {
        return Err(EngineError::InvalidOption(format!(
            "no declarations with a valid HS code between {start} and {end} to learn from"
        )));
    }
    let origin_month = f64::from(start.year() * 12 + start.month0() as i32);
    let prices = vec![price_cells(session, options.min_cell_size, origin_month).await?];
    let mut cells: BTreeMap<String, u64> = BTreeMap::new();
    for level in prices[0].column(0).as_primitive::<Int32Type>().values() {
        let name = aduana_model::Level::ALL[*level as usize].name();
        *cells.entry(name.to_string()).or_default() += 1;
    }
    let min = options.min_cell_size;
    phases.end("price_cells");
    let now = Utc::now();
    let manifest = Manifest {
        version: now.format("%Y%m%dT%H%M%S%.3fZ").to_string(),
        format: aduana_model::MODEL_FORMAT,
        built_at: now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        window_start: start.to_string(),
        window_end: end.to_string(),
        training_items,
        excluded_fraud_items: counts.found_fraud,
        excluded_inspected_items: counts
            .items
            .saturating_sub(counts.found_fraud + training_items),
        min_cell_size: min,
        price_cells: cells,
        learned: None,
        lanes: None,
    };
    let mut origins = origin_facts(session, &training).await?;
    phases.end("origin_facts");
    let priced = RiskModel::from_batches(manifest.clone(), &prices, &[])
        .map_err(|e| EngineError::InvalidOption(format!("price profiles just built: {e}")))?;
    origins.push(valuation_records(session, window, priced).await?);
    phases.end("valuation_records");
    let classifier = classifier_words(session, &training).await?;
    phases.end("classifier");
    let location = session.warehouse().location();
    let root = options.root.as_ref().unwrap_or(&location.prefix);
    let store = location.store.as_ref();
    aduana_model::write_version(store, root, &manifest, &prices, &origins, &classifier).await?;
    phases.end("write_version");
    let learned = crate::model_learn::learn(session, root, &manifest, window, end, phases).await?;
    let manifest = match learned {
        crate::model_learn::Learned::Model(model) => {
            aduana_model::write_learned(store, root, &manifest, &model).await?;
            Manifest {
                learned: Some(model.summary.clone()),
                ..manifest
            }
        }
        crate::model_learn::Learned::TooFewFrauds => manifest,
    };
    phases.end("learned_model_train");
    let manifest = Manifest {
        lanes: crate::model_learn::lane_scale(session, root, &manifest, window, end).await?,
        ..manifest
    };
    phases.end("lane_scale");
    aduana_model::write_manifest(store, root, &manifest).await?;
    if options.make_current {
        aduana_model::set_current(store, root, &manifest.version).await?;
    }
    Ok(manifest)
}

/// The price cells of the training set (see `aduana_model::price_build`):
/// each partition of the training rows is grouped on its own core, then
/// the groups merge and the cells are computed from them.
async fn price_cells(
    session: &Session,
    min_cell_size: u64,
    origin_month: f64,
) -> Result<RecordBatch> {
    use arrow::datatypes::{DataType, Float64Type};
    use futures::StreamExt;
    let streams = session
        .sql(
            &format!("SELECT line, origin, unit, luv, lkg, m FROM {TRAINING_TABLE}"),
            WritePolicy::ReadOnly,
        )
        .await?
        .execute_stream_partitioned()
        .await?;
    let tasks: Vec<_> = streams
        .into_iter()
        .map(|mut stream| {
            tokio::spawn(async move {
                let mut builder = PriceCellsBuilder::default();
                while let Some(batch) = stream.next().await {
                    let batch = batch?;
                    let text = |i: usize| cast(batch.column(i), &DataType::Utf8View);
                    let number = |i: usize| cast(batch.column(i), &DataType::Float64);
                    let (line, origin, unit) = (text(0)?, text(1)?, text(2)?);
                    let (luv, lkg, month) = (number(3)?, number(4)?, number(5)?);
                    let (line, origin, unit) = (
                        line.as_string_view(),
                        origin.as_string_view(),
                        unit.as_string_view(),
                    );
                    let (luv, lkg, month) = (
                        luv.as_primitive::<Float64Type>(),
                        lkg.as_primitive::<Float64Type>(),
                        month.as_primitive::<Float64Type>(),
                    );
                    let value = |a: &arrow::array::Float64Array, i: usize| {
                        a.is_valid(i).then(|| a.value(i))
                    };
                    for i in 0..batch.num_rows() {
                        if line.is_null(i) || month.is_null(i) {
                            continue;
                        }
                        builder.add(
                            line.value(i),
                            if origin.is_valid(i) {
                                origin.value(i)
                            } else {
                                ""
                            },
                            unit.is_valid(i).then(|| unit.value(i)),
                            value(luv, i),
                            value(lkg, i),
                            month.value(i),
                        );
                    }
                }
                Ok::<_, EngineError>(builder)
            })
        })
        .collect();
    let mut all = PriceCellsBuilder::default();
    for task in tasks {
        all.merge(
            task.await
                .map_err(|e| EngineError::InvalidOption(format!("price cells: {e}")))??,
        );
    }
    Ok(all.finish(min_cell_size, origin_month))
}

/// `batch` with the columns of `schema`, by name: cast where present,
/// NULL where absent.
fn conform(batch: &RecordBatch, schema: &arrow::datatypes::SchemaRef) -> Result<RecordBatch> {
    let columns = schema
        .fields()
        .iter()
        .map(|f| match batch.column_by_name(f.name()) {
            Some(c) => cast(c, f.data_type()),
            None => Ok(arrow::array::new_null_array(
                f.data_type(),
                batch.num_rows(),
            )),
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

/// Each importer's pricing record over the window: items with a price
/// reference in `model` and how many are markedly low. Every declaration
/// counts, found fraud included: it is part of the importer's record.
async fn valuation_records(
    session: &Session,
    window: &str,
    model: RiskModel,
) -> Result<RecordBatch> {
    use futures::StreamExt;
    let sql = format!(
        "SELECT d.importer_id, d.hs_code, d.origin_country, d.customs_value, d.quantity, \
                d.quantity_unit, d.net_mass_kg, d.declaration_date \
         FROM declarations d WHERE {window} AND d.importer_id IS NOT NULL"
    );
    let streams = session
        .sql(&sql, WritePolicy::ReadOnly)
        .await?
        .execute_stream_partitioned()
        .await?;
    // One task per partition: scoring is CPU work, so partitions score on
    // all cores, then their records merge.
    let model = std::sync::Arc::new(model);
    let tasks: Vec<_> = streams
        .into_iter()
        .map(|mut stream| {
            let model = model.clone();
            tokio::spawn(async move {
                let mut records: HashMap<String, ValuationRecord> = HashMap::new();
                while let Some(batch) = stream.next().await {
                    add_to_records(&model, &batch?, &mut records)?;
                }
                Ok::<_, EngineError>(records)
            })
        })
        .collect();
    let mut records: HashMap<String, ValuationRecord> = HashMap::new();
    for task in tasks {
        let part = task
            .await
            .map_err(|e| EngineError::InvalidOption(format!("pricing records: {e}")))??;
        for (importer, r) in part {
            let total = records.entry(importer).or_default();
            total.items += r.items;
            total.low += r.low;
        }
    }
    let mut records: Vec<_> = records.into_iter().collect();
    records.sort_by(|a, b| a.0.cmp(&b.0));
    let schema = aduana_model::origin_schema();
    let columns = schema
        .fields()
        .iter()
        .map(|f| -> arrow::array::ArrayRef {
            let rows = records.len();
            match f.name().as_str() {
                "kind" => {
                    std::sync::Arc::new(arrow::array::StringArray::from(vec!["valuation"; rows]))
                }
                "importer" => std::sync::Arc::new(arrow::array::StringArray::from_iter_values(
                    records.iter().map(|r| r.0.as_str()),
                )),
                "items" => std::sync::Arc::new(arrow::array::Int64Array::from_iter_values(
                    records.iter().map(|r| r.1.items as i64),
                )),
                "share" => std::sync::Arc::new(arrow::array::Float64Array::from_iter_values(
                    records.iter().map(|r| r.1.low as f64 / r.1.items as f64),
                )),
                _ => arrow::array::new_null_array(f.data_type(), rows),
            }
        })
        .collect();
    Ok(RecordBatch::try_new(schema, columns)?)
}

/// Adds one batch of (importer, item) rows to the importers' records.
fn add_to_records(
    model: &RiskModel,
    batch: &RecordBatch,
    records: &mut HashMap<String, ValuationRecord>,
) -> Result<()> {
    use arrow::datatypes::{DataType, Float64Type};
    let column = |i: usize, t: &DataType| cast(batch.column(i), t);
    let text = |i: usize| column(i, &DataType::Utf8View);
    let number = |i: usize| column(i, &DataType::Float64);
    let (importer, hs, origin, unit) = (text(0)?, text(1)?, text(2)?, text(5)?);
    let (value, quantity, mass) = (number(3)?, number(4)?, number(6)?);
    let day = column(7, &DataType::Date32)?;
    let (importer, hs, origin, unit) = (
        importer.as_string_view(),
        hs.as_string_view(),
        origin.as_string_view(),
        unit.as_string_view(),
    );
    let (value, quantity, mass) = (
        value.as_primitive::<Float64Type>(),
        quantity.as_primitive::<Float64Type>(),
        mass.as_primitive::<Float64Type>(),
    );
    let day = day.as_primitive::<Date32Type>();
    for i in 0..batch.num_rows() {
        if hs.is_null(i) || origin.is_null(i) || value.is_null(i) || quantity.is_null(i) {
            continue;
        }
        let item = Declared {
            hs_code: hs.value(i),
            origin: origin.value(i),
            value: value.value(i),
            quantity: quantity.value(i),
            unit: unit.is_valid(i).then(|| unit.value(i)),
            net_mass: mass.is_valid(i).then(|| mass.value(i)),
            month: day.is_valid(i).then(|| month_index(day.value(i))),
        };
        let Some(found) = deviation(model, &item) else {
            continue;
        };
        let low = u64::from(found.z < MARKEDLY_LOW_Z);
        match records.get_mut(importer.value(i)) {
            Some(record) => {
                record.items += 1;
                record.low += low;
            }
            None => {
                records.insert(
                    importer.value(i).to_string(),
                    ValuationRecord { items: 1, low },
                );
            }
        }
    }
    Ok(())
}

/// Origin facts for `origin_risk`: shares of origins per HS6 (and their
/// shift around the first trade remedy on the HS6), importers' history per
/// HS6 and origin, how often each dispatch country ships other countries'
/// goods, and the trade remedies themselves. Each in a fixed order: rows
/// come out of parallel plans in any order, and the same inputs must
/// write the same file.
async fn origin_facts(session: &Session, training: &str) -> Result<Vec<RecordBatch>> {
    let has_remedies = session.warehouse().table("trade_remedies").is_some();
    // A remedy on a heading or on the subheading, or on one of its
    // national lines, dates the subheading's shift.
    let first_remedy = if has_remedies {
        format!(
            "SELECT h.hs6, MIN(r.valid_from) AS since FROM (SELECT DISTINCT hs6 FROM t) h \
             JOIN (SELECT {HS_DIGITS} AS code, valid_from FROM reference.trade_remedies) r \
               ON r.code <> '' AND (starts_with(h.hs6, r.code) OR starts_with(r.code, h.hs6)) \
             GROUP BY h.hs6"
        )
    } else {
        "SELECT CAST(NULL AS VARCHAR) AS hs6, CAST(NULL AS DATE) AS since WHERE false".to_string()
    };
    let with = format!(
        "WITH training AS ({training}), \
         t AS (SELECT substr(line, 1, 6) AS hs6, origin, export, importer, day FROM training WHERE origin <> ''), \
         first_remedy AS ({first_remedy})"
    );
    let mut queries = vec![
        format!(
            "{with}, shares AS (SELECT t.hs6, t.origin, COUNT(*) AS items, \
                 SUM(CASE WHEN t.day < f.since THEN 1 ELSE 0 END) AS before_items, \
                 SUM(CASE WHEN t.day >= f.since THEN 1 ELSE 0 END) AS after_items, MAX(f.since) AS since \
                 FROM t LEFT JOIN first_remedy f ON f.hs6 = t.hs6 GROUP BY t.hs6, t.origin) \
             SELECT 'hs6_origin' AS kind, hs6 AS hs, origin AS country, items, \
                 CAST(items AS DOUBLE) / SUM(items) OVER (PARTITION BY hs6) AS share, \
                 CASE WHEN since IS NOT NULL THEN CAST(before_items AS DOUBLE) / NULLIF(SUM(before_items) OVER (PARTITION BY hs6), 0) END AS share_before, \
                 CASE WHEN since IS NOT NULL THEN CAST(after_items AS DOUBLE) / NULLIF(SUM(after_items) OVER (PARTITION BY hs6), 0) END AS share_after \
             FROM shares ORDER BY hs6, origin"
        ),
        format!(
            "{with} SELECT 'importer' AS kind, hs6 AS hs, origin AS country, importer, COUNT(*) AS items FROM t GROUP BY hs6, origin, importer \
             ORDER BY hs6, origin, importer"
        ),
        format!(
            "{with} SELECT 'importer' AS kind, hs6 AS hs, importer, COUNT(*) AS items FROM t GROUP BY hs6, importer \
             ORDER BY hs6, importer"
        ),
        format!(
            "{with} SELECT 'dispatch' AS kind, export AS country, COUNT(*) AS items, \
                 AVG(CASE WHEN origin <> export THEN 1.0 ELSE 0.0 END) AS share FROM t WHERE export <> '' GROUP BY export ORDER BY export"
        ),
    ];
    if session.warehouse().table("tariff").is_some() {
        queries.push(format!(
            "SELECT 'tariff' AS kind, {HS_DIGITS} AS hs, duty_rate AS share \
                 FROM reference.tariff WHERE duty_rate IS NOT NULL ORDER BY hs, share"
        ));
    }
    if has_remedies {
        queries.push(
            format!(
                "SELECT 'remedy' AS kind, {HS_DIGITS} AS hs, upper(origin_country) AS country, \
                     additional_duty_rate AS share, valid_from, valid_to FROM reference.trade_remedies \
                     ORDER BY hs, country, valid_from, valid_to, share"
            ),
        );
    }
    let schema = aduana_model::origin_schema();
    let mut batches = Vec::new();
    for sql in queries {
        for batch in session
            .sql(&sql, WritePolicy::ReadOnly)
            .await?
            .collect()
            .await?
        {
            // Dates travel as days since 1970 (Int32).
            let batch = match (
                batch.column_by_name("valid_from"),
                batch.column_by_name("valid_to"),
            ) {
                (Some(from), Some(to)) => {
                    let mut columns = batch.columns().to_vec();
                    let (i, j) = (
                        batch.schema().index_of("valid_from")?,
                        batch.schema().index_of("valid_to")?,
                    );
                    columns[i] = cast(
                        &cast(from, &arrow::datatypes::DataType::Date32)?,
                        &arrow::datatypes::DataType::Int32,
                    )?;
                    columns[j] = cast(
                        &cast(to, &arrow::datatypes::DataType::Date32)?,
                        &arrow::datatypes::DataType::Int32,
                    )?;
                    let fields: Vec<_> = batch
                        .schema()
                        .fields()
                        .iter()
                        .zip(&columns)
                        .map(|(f, c)| {
                            arrow::datatypes::Field::new(f.name(), c.data_type().clone(), true)
                        })
                        .collect();
                    RecordBatch::try_new(
                        std::sync::Arc::new(arrow::datatypes::Schema::new(fields)),
                        columns,
                    )?
                }
                _ => batch,
            };
            batches.push(conform(&batch, &schema)?);
        }
    }
    Ok(batches)
}

/// Word counts per HS6 for the description classifier, from the distinct
/// (HS6, description) pairs of the training data; the nomenclature's own
/// descriptions of HS6 subheadings count as extra documents when present.
async fn classifier_words(session: &Session, training: &str) -> Result<Vec<RecordBatch>> {
    /// A nomenclature description weighs as much as this many declarations:
    /// enough to name goods never declared, not enough to outvote usage.
    const NOMENCLATURE_WEIGHT: f64 = 3.0;
    let grouped = format!(
        "WITH training AS ({training}) \
         SELECT substr(line, 1, 6) AS hs6, description, CAST(COUNT(*) AS DOUBLE) AS n \
         FROM training WHERE description IS NOT NULL GROUP BY 1, 2"
    );
    let mut queries = vec![(grouped, 1.0)];
    if session.warehouse().table("hs_nomenclature").is_some() {
        queries.push((
            "SELECT hs_code AS hs6, description, CAST(1 AS DOUBLE) AS n FROM reference.hs_nomenclature \
             WHERE length(hs_code) = 6 AND description IS NOT NULL"
                .to_string(),
            NOMENCLATURE_WEIGHT,
        ));
    }
    let mut counts: std::collections::HashMap<(String, String), f64> =
        std::collections::HashMap::new();
    let mut documents: std::collections::HashMap<String, f64> = std::collections::HashMap::new();
    for (query, weight) in queries {
        for batch in session
            .sql(&query, WritePolicy::ReadOnly)
            .await?
            .collect()
            .await?
        {
            let hs6 = cast(batch.column(0), &arrow::datatypes::DataType::Utf8)?;
            let description = cast(batch.column(1), &arrow::datatypes::DataType::Utf8)?;
            let (hs6, description) = (hs6.as_string::<i32>(), description.as_string::<i32>());
            let n = batch
                .column(2)
                .as_primitive::<arrow::datatypes::Float64Type>();
            for i in 0..batch.num_rows() {
                let weight = weight * n.value(i);
                *documents.entry(hs6.value(i).to_string()).or_default() += weight;
                for word in aduana_model::classifier::words(description.value(i)) {
                    *counts.entry((hs6.value(i).to_string(), word)).or_default() += weight;
                }
            }
        }
    }
    let mut rows: Vec<(String, Option<String>, f64)> =
        documents.into_iter().map(|(h, n)| (h, None, n)).collect();
    rows.extend(counts.into_iter().map(|((h, w), n)| (h, Some(w), n)));
    rows.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    let batch = RecordBatch::try_new(
        aduana_model::classifier_schema(),
        vec![
            std::sync::Arc::new(arrow::array::StringArray::from_iter_values(
                rows.iter().map(|r| &r.0),
            )),
            std::sync::Arc::new(
                rows.iter()
                    .map(|r| r.1.as_deref())
                    .collect::<arrow::array::StringArray>(),
            ),
            std::sync::Arc::new(arrow::array::Float64Array::from_iter_values(
                rows.iter().map(|r| r.2),
            )),
        ],
    )?;
    Ok(vec![batch])
}
