//! `aduana import`: flat exports (Parquet or CSV files with the contract's
//! column names) written into a monthly table's `year=/month=` layout.
//!
//! Everything is checked before anything is written: every contract column
//! present or nullable, every value of its type (a value that is not is
//! named with its file, row and column), dates in the given format, no key
//! twice in the input nor already in the warehouse. Then each month is one
//! Parquet file written in one put, so a month appears whole or not at all.
//! A month's file is named by a hash of its bytes: importing the same
//! export again finds its files already there and writes nothing, and a
//! run stopped between months is completed by running it again.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Date32Array, RecordBatch, StringArray, UInt32Array, new_null_array,
};
use arrow::compute::{CastOptions, cast, cast_with_options, concat_batches, take};
use arrow::datatypes::{DataType, Date32Type, Field, Schema, SchemaRef};
use chrono::NaiveDate;
use datafusion::datasource::MemTable;
use datafusion::prelude::{CsvReadOptions, ParquetReadOptions, SessionContext};
use object_store::ObjectStoreExt;
use object_store::PutPayload;
use parquet::arrow::ArrowWriter;

use crate::contract::{self, ColumnContract, ColumnKind, TableContract};
use crate::error::{Result, WarehouseError};
use crate::partition::Partition;
use crate::store::Location;
use crate::{OpenOptions, Warehouse};

/// The date format CSV dates are read with unless told otherwise.
pub const DEFAULT_DATE_FORMAT: &str = "%Y-%m-%d";

/// One month of an import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedMonth {
    pub partition: Partition,
    pub rows: usize,
    /// The file's location, relative to the warehouse root.
    pub file: String,
    /// The same file was already there (an import run again).
    pub already: bool,
}

fn refused(message: impl Into<String>) -> WarehouseError {
    WarehouseError::Import(message.into())
}

/// The date column whose month is the partition a row of `table` belongs in.
fn partition_date(table: &TableContract) -> Option<&'static str> {
    match table.name {
        "declarations" => Some("declaration_date"),
        "inspections" => Some("inspected_on"),
        _ => None,
    }
}

/// Imports `inputs` into the monthly table `table_name` of the warehouse
/// at `uri`. CSV dates are parsed with `date_format`.
pub async fn import(
    uri: &str,
    options: OpenOptions,
    table_name: &str,
    inputs: &[PathBuf],
    date_format: &str,
) -> Result<Vec<ImportedMonth>> {
    let table = contract::table(table_name)
        .ok_or_else(|| refused(format!("no table {table_name} in the warehouse contract")))?;
    let date_column = partition_date(table).ok_or_else(|| {
        refused(format!(
            "{table_name} is a single file, not a monthly table: copy it to {}",
            table.path
        ))
    })?;
    if inputs.is_empty() {
        return Err(refused("no file to import"));
    }
    // The warehouse as it is; a new one may not have the table yet.
    let (location, existing) = match Warehouse::open_with(uri, options.clone()).await {
        Ok(warehouse) => {
            if warehouse.config().mapping(table.name).is_some() {
                return Err(refused(format!(
                    "{table_name} is mapped by the warehouse's aduana.toml: its files use other \
                     names or types than the contract's, which the imported files would not"
                )));
            }
            (warehouse.location().clone(), Some(warehouse))
        }
        Err(WarehouseError::MissingTable { .. }) => {
            let location = Location::resolve(uri, &options.storage)?;
            (location, None)
        }
        Err(e) => return Err(e),
    };

    let ctx = SessionContext::new();
    let mut conformed = Vec::new();
    for input in inputs {
        let batch = read_input(&ctx, input).await?;
        conformed.push(conform(&batch, table, date_format, input)?);
    }
    let schema = stored_schema(table);
    let all = concat_batches(&schema, &conformed)?;
    if all.num_rows() == 0 {
        return Err(refused("the files hold no rows"));
    }
    if table.name == "declarations" {
        no_key_twice(&all)?;
    }

    // Rows by month of their partition date.
    let dates = all
        .column(schema.index_of(date_column)?)
        .as_primitive::<Date32Type>();
    let mut months: BTreeMap<Partition, Vec<u32>> = BTreeMap::new();
    for (row, day) in dates.iter().enumerate() {
        let day = day
            .and_then(Date32Type::to_naive_date_opt)
            .ok_or_else(|| refused(format!("{date_column} is empty in row {}", row + 1)))?;
        use chrono::Datelike;
        let partition = Partition::new(day.year(), day.month() as i32).ok_or_else(|| {
            refused(format!(
                "{date_column} {day} in row {} is out of range",
                row + 1
            ))
        })?;
        months.entry(partition).or_default().push(row as u32);
    }

    let mut planned = Vec::new();
    for (partition, rows) in months {
        let batch = take_rows(&all, &rows)?;
        let bytes = parquet_bytes(&batch)?;
        let mut hasher = std::hash::DefaultHasher::new();
        bytes.hash(&mut hasher);
        let relative = format!(
            "{}/{partition}/part-import-{:016x}.parquet",
            table.path,
            hasher.finish()
        );
        let path = location.child(&relative);
        let already = location.store.head(&path).await.is_ok();
        planned.push((
            ImportedMonth {
                partition,
                rows: rows.len(),
                file: relative,
                already,
            },
            path,
            batch,
            bytes,
        ));
    }

    // Keys already in the warehouse, outside the files this import wrote
    // before (those hold the same rows).
    if table.name == "declarations"
        && let Some(warehouse) = &existing
    {
        let fresh: Vec<RecordBatch> = planned
            .iter()
            .filter(|(m, ..)| !m.already)
            .map(|(_, _, batch, _)| batch.clone())
            .collect();
        already_declared(warehouse, &schema, fresh).await?;
    }

    for (month, path, _, bytes) in &planned {
        if !month.already {
            location
                .store
                .put(path, PutPayload::from(bytes.clone()))
                .await
                .map_err(|source| WarehouseError::Storage {
                    location: month.file.clone(),
                    source,
                })?;
        }
    }
    Ok(planned.into_iter().map(|(month, ..)| month).collect())
}

/// The schema imported files are written with: the contract's columns,
/// text as plain `Utf8` (what most writers produce).
fn stored_schema(table: &TableContract) -> SchemaRef {
    Arc::new(Schema::new(
        table
            .columns
            .iter()
            .map(|c| Field::new(c.name, stored_type(c.kind), !c.required))
            .collect::<Vec<_>>(),
    ))
}

fn stored_type(kind: ColumnKind) -> DataType {
    match kind {
        ColumnKind::Text => DataType::Utf8,
        other => other.canonical_type(),
    }
}

/// One input file as one batch: Parquet as written, CSV with every column
/// read as text (types are the contract's business, and an HS code must
/// keep its leading zero).
async fn read_input(ctx: &SessionContext, input: &Path) -> Result<RecordBatch> {
    let name = input.display().to_string();
    let unreadable = |message: String| WarehouseError::UnreadableFile {
        table: "import".into(),
        file: name.clone(),
        message,
    };
    let extension = input
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let frame = match extension.as_deref() {
        Some("parquet") => ctx
            .read_parquet(name.as_str(), ParquetReadOptions::default())
            .await
            .map_err(|e| unreadable(e.to_string()))?,
        Some("csv") => {
            let header = std::fs::read_to_string(input)
                .map_err(|e| unreadable(e.to_string()))?
                .lines()
                .next()
                .map(str::to_string)
                .ok_or_else(|| unreadable("empty file".into()))?;
            let fields: Vec<Field> = header
                .split(',')
                .map(|h| Field::new(h.trim().trim_matches('"'), DataType::Utf8, true))
                .collect();
            let schema = Schema::new(fields);
            ctx.read_csv(
                name.as_str(),
                CsvReadOptions::new().has_header(true).schema(&schema),
            )
            .await
            .map_err(|e| unreadable(e.to_string()))?
        }
        _ => {
            return Err(unreadable(
                "not a .parquet or .csv file (named by its extension)".into(),
            ));
        }
    };
    let schema: SchemaRef = Arc::new(frame.schema().as_arrow().clone());
    let batches = frame
        .collect()
        .await
        .map_err(|e| unreadable(e.to_string()))?;
    Ok(concat_batches(&schema, &batches)?)
}

/// `batch` with the contract's columns, in order and of their types; a
/// value that does not convert is named with its row and column.
fn conform(
    batch: &RecordBatch,
    table: &TableContract,
    date_format: &str,
    input: &Path,
) -> Result<RecordBatch> {
    let file = input.display().to_string();
    let mut columns = Vec::with_capacity(table.columns.len());
    for column in table.columns {
        let array = match batch.column_by_name(column.name) {
            Some(array) => convert(array, column, date_format)
                .map_err(|message| refused(format!("{file}: {message}")))?,
            None if column.required => {
                return Err(refused(format!(
                    "{file} has no column {} (the contract requires it; columns found: {})",
                    column.name,
                    batch
                        .schema()
                        .fields()
                        .iter()
                        .map(|f| f.name().as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            None => new_null_array(&stored_type(column.kind), batch.num_rows()),
        };
        if column.required && array.null_count() > 0 {
            let row = (0..array.len()).find(|&i| array.is_null(i)).unwrap_or(0);
            return Err(refused(format!(
                "{file}: {} is empty in row {} (the contract requires a value)",
                column.name,
                row + 1
            )));
        }
        columns.push(array);
    }
    Ok(RecordBatch::try_new(stored_schema(table), columns)?)
}

/// One column converted to its contract type.
fn convert(
    array: &ArrayRef,
    column: &ColumnContract,
    date_format: &str,
) -> std::result::Result<ArrayRef, String> {
    let target = stored_type(column.kind);
    let text = matches!(
        array.data_type(),
        DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8
    );
    if column.kind == ColumnKind::Date && text {
        let values = cast(array, &DataType::Utf8).map_err(|e| e.to_string())?;
        let values = values.as_string::<i32>();
        let mut days = Vec::with_capacity(values.len());
        for (row, value) in values.iter().enumerate() {
            days.push(match value.map(str::trim).filter(|v| !v.is_empty()) {
                None => None,
                Some(v) => match NaiveDate::parse_from_str(v, date_format) {
                    Ok(day) => Some(Date32Type::from_naive_date(day)),
                    Err(_) => {
                        return Err(format!(
                            "{} {v:?} in row {} is not a date in the format {date_format:?} \
                             (give the files' format with --date-format)",
                            column.name,
                            row + 1
                        ));
                    }
                },
            });
        }
        return Ok(Arc::new(Date32Array::from(days)));
    }
    // Empty text is a missing value, as CSV writes one.
    let array = if text && column.kind != ColumnKind::Text {
        let values = cast(array, &DataType::Utf8).map_err(|e| e.to_string())?;
        let values = values.as_string::<i32>();
        Arc::new(StringArray::from_iter(
            values
                .iter()
                .map(|v| v.map(str::trim).filter(|v| !v.is_empty())),
        )) as ArrayRef
    } else {
        array.clone()
    };
    let lenient = CastOptions {
        safe: true,
        ..Default::default()
    };
    let converted = cast_with_options(&array, &target, &lenient).map_err(|_| {
        format!(
            "{} is of type {}, which cannot be read as {}",
            column.name,
            array.data_type(),
            column.kind.contract_name()
        )
    })?;
    // A value the cast turned into a null did not fit the type.
    if let Some(row) = (0..array.len()).find(|&i| array.is_valid(i) && converted.is_null(i)) {
        let shown = arrow::util::display::array_value_to_string(&array, row).unwrap_or_default();
        return Err(format!(
            "{} {shown:?} in row {} is not a {}",
            column.name,
            row + 1,
            column.kind.contract_name()
        ));
    }
    Ok(converted)
}

fn take_rows(batch: &RecordBatch, rows: &[u32]) -> Result<RecordBatch> {
    let indices = UInt32Array::from(rows.to_vec());
    let columns = batch
        .columns()
        .iter()
        .map(|c| take(c.as_ref(), &indices, None))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(RecordBatch::try_new(batch.schema(), columns)?)
}

fn parquet_bytes(batch: &RecordBatch) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut bytes, batch.schema(), None)?;
    writer.write(batch)?;
    writer.close()?;
    Ok(bytes)
}

fn keys(batch: &RecordBatch) -> impl Iterator<Item = (String, i32)> + '_ {
    let ids = batch.column(0).as_string::<i32>();
    let items = batch
        .column(1)
        .as_primitive::<arrow::datatypes::Int32Type>();
    (0..batch.num_rows()).map(move |i| (ids.value(i).to_string(), items.value(i)))
}

/// No (declaration_id, item_no) twice in what is imported.
fn no_key_twice(batch: &RecordBatch) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    for key in keys(batch) {
        if !seen.insert(key.clone()) {
            return Err(refused(format!(
                "declaration {} item {} appears twice in the files",
                key.0, key.1
            )));
        }
    }
    Ok(())
}

/// No imported key already declared in the warehouse: the same item twice
/// would be scored and counted twice.
async fn already_declared(
    warehouse: &Warehouse,
    schema: &SchemaRef,
    fresh: Vec<RecordBatch>,
) -> Result<()> {
    if fresh.is_empty() || warehouse.table("declarations").is_none() {
        return Ok(());
    }
    let ctx = SessionContext::new();
    warehouse.register(&ctx)?;
    ctx.register_table(
        "imported",
        Arc::new(MemTable::try_new(schema.clone(), vec![fresh])?),
    )?;
    let found = ctx
        .sql(
            "SELECT i.declaration_id, i.item_no, COUNT(*) OVER () AS n \
             FROM imported i JOIN declarations d \
               ON d.declaration_id = i.declaration_id AND d.item_no = i.item_no \
             ORDER BY i.declaration_id, i.item_no LIMIT 1",
        )
        .await?
        .collect()
        .await?;
    if let Some(batch) = found.iter().find(|b| b.num_rows() > 0) {
        let (id, item) = keys(&batch.project(&[0, 1])?).next().expect("one row");
        let n = batch
            .column(2)
            .as_primitive::<arrow::datatypes::Int64Type>()
            .value(0);
        return Err(refused(format!(
            "{n} item(s) are already in the warehouse's declarations (first: declaration {id} \
             item {item}); nothing was written"
        )));
    }
    Ok(())
}
