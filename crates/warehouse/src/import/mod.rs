//! `aduana import`: flat exports (Parquet or CSV files with the contract's
//! column names, or folders of them) written into a monthly table's
//! `year=/month=` layout.
//!
//! Everything is checked before anything is written: every contract column
//! present or nullable, every value of its type (a value that is not is
//! named with its file, row and column), dates in the given format, no row
//! twice in the input nor already in the warehouse (the same item
//! declared, or the same control recorded, twice would be counted twice).
//! Then each month is one Parquet file written in one put, so a month
//! appears whole or not at all. A month's file is named by a hash of its
//! rows: importing the same export again finds its files already there and
//! writes nothing, and a run stopped between months is completed by
//! running it again.

mod conform;
mod read;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch, UInt32Array};
use arrow::compute::{concat_batches, take};
use arrow::datatypes::{DataType, Date32Type};
use arrow::row::{RowConverter, SortField};
use arrow::util::display::array_value_to_string;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use object_store::{ObjectStoreExt, PutPayload};
use parquet::arrow::ArrowWriter;
use sha2::{Digest, Sha256};

use crate::contract::{self, TableContract};
use crate::error::{Result, WarehouseError};
use crate::partition::Partition;
use crate::store::Location;
use crate::{OpenOptions, Warehouse};
use conform::{conform, stored_schema};

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

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    pub months: Vec<ImportedMonth>,
    /// The files read (a folder counts its files).
    pub files: Vec<PathBuf>,
    /// Columns of the files that the contract does not have, left out:
    /// one line per file that had any.
    pub left_out: Vec<String>,
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

/// The columns that tell one row of `table` from another: an item is
/// declared once, and a control of an item is recorded once per day and
/// kind.
fn key_columns(table: &TableContract) -> &'static [&'static str] {
    match table.name {
        "declarations" => &["declaration_id", "item_no"],
        "inspections" => &["declaration_id", "item_no", "inspected_on", "kind"],
        _ => &[],
    }
}

/// Where the rows of the concatenated input came from.
struct Origins(Vec<(PathBuf, usize)>);

impl Origins {
    /// `row` of the whole input as "FILE row N" (N counted in its file).
    fn describe(&self, row: usize) -> String {
        let at = self.0.partition_point(|(_, start)| *start <= row) - 1;
        let (file, start) = &self.0[at];
        format!("{} row {}", file.display(), row - start + 1)
    }
}

/// Imports `inputs` (files, or folders of files) into the monthly table
/// `table_name` of the warehouse at `uri`. CSV dates are parsed with
/// `date_format`.
pub async fn import(
    uri: &str,
    options: OpenOptions,
    table_name: &str,
    inputs: &[PathBuf],
    date_format: &str,
) -> Result<Imported> {
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
            if let Some(current) = warehouse.table(table.name)
                && !current.partitioned
            {
                return Err(refused(format!(
                    "the warehouse's {table_name} are flat files in {}/, and a table is read \
                     with one layout: import those files too (move them out of the warehouse, \
                     then `aduana import --table {table_name}` them with the new ones)",
                    table.path
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

    let files = read::expand(inputs)?;
    let mut conformed = Vec::with_capacity(files.len());
    let mut left_out = Vec::new();
    let mut origins = Vec::with_capacity(files.len());
    let mut rows = 0;
    for file in &files {
        let batch = read::read_input(file)?;
        let (batch, unknown) = conform(&batch, table, date_format, file)?;
        if !unknown.is_empty() {
            left_out.push(format!(
                "{}: columns not in the contract, left out: {}",
                file.display(),
                unknown.join(", ")
            ));
        }
        origins.push((file.clone(), rows));
        rows += batch.num_rows();
        conformed.push(batch);
    }
    let origins = Origins(origins);
    let schema = stored_schema(table);
    let all = concat_batches(&schema, &conformed)?;
    if all.num_rows() == 0 {
        return Err(refused("the files hold no rows"));
    }
    no_row_twice(&all, table, &origins)?;

    // Rows by month of their partition date (never empty: the contract
    // requires it, and `conform` checked).
    let dates = all
        .column(schema.index_of(date_column)?)
        .as_primitive::<Date32Type>();
    let mut months: BTreeMap<Partition, Vec<u32>> = BTreeMap::new();
    for (row, day) in dates.iter().enumerate() {
        let month = day.and_then(Date32Type::to_naive_date_opt).and_then(|day| {
            use chrono::Datelike;
            Partition::new(day.year(), day.month() as i32)
        });
        let partition = month.ok_or_else(|| {
            refused(format!(
                "{}: {date_column} is out of range",
                origins.describe(row)
            ))
        })?;
        months.entry(partition).or_default().push(row as u32);
    }

    let mut planned = Vec::new();
    for (partition, rows) in months {
        let batch = take_rows(&all, &rows)?;
        let relative = format!(
            "{}/{partition}/part-import-{}.parquet",
            table.path,
            content_hash(&batch)
        );
        let path = location.child(&relative);
        let already = match location.store.head(&path).await {
            Ok(_) => true,
            Err(object_store::Error::NotFound { .. }) => false,
            Err(source) => {
                return Err(WarehouseError::Storage {
                    location: relative,
                    source,
                });
            }
        };
        planned.push((
            ImportedMonth {
                partition,
                rows: rows.len(),
                file: relative,
                already,
            },
            path,
            batch,
        ));
    }

    // Rows already in the warehouse, outside the files this import wrote
    // before (those hold the same rows).
    if let Some(warehouse) = &existing {
        let fresh: Vec<RecordBatch> = planned
            .iter()
            .filter(|(m, ..)| !m.already)
            .map(|(_, _, batch)| batch.clone())
            .collect();
        already_there(warehouse, table, fresh).await?;
    }

    for (month, path, batch) in &planned {
        if !month.already {
            location
                .store
                .put(path, PutPayload::from(parquet_bytes(batch)?))
                .await
                .map_err(|source| WarehouseError::Storage {
                    location: month.file.clone(),
                    source,
                })?;
        }
    }
    Ok(Imported {
        months: planned.into_iter().map(|(month, ..)| month).collect(),
        files,
        left_out,
    })
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

/// A name for the rows of `batch`: SHA-256 of their values, column by
/// column, in an encoding fixed here (not the Parquet bytes, which carry
/// the writer's version, nor a hasher that may change between Rust
/// releases), so the same rows get the same name on every machine.
fn content_hash(batch: &RecordBatch) -> String {
    let mut hasher = Sha256::new();
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        hasher.update((field.name().len() as u64).to_le_bytes());
        hasher.update(field.name().as_bytes());
        for row in 0..column.len() {
            if column.is_null(row) {
                hasher.update([0u8]);
                continue;
            }
            hasher.update([1u8]);
            match column.data_type() {
                DataType::Utf8 => {
                    let value = column.as_string::<i32>().value(row);
                    hasher.update((value.len() as u64).to_le_bytes());
                    hasher.update(value.as_bytes());
                }
                DataType::Int32 => hasher.update(
                    column
                        .as_primitive::<arrow::datatypes::Int32Type>()
                        .value(row)
                        .to_le_bytes(),
                ),
                DataType::Date32 => {
                    hasher.update(column.as_primitive::<Date32Type>().value(row).to_le_bytes())
                }
                DataType::Float64 => hasher.update(
                    column
                        .as_primitive::<arrow::datatypes::Float64Type>()
                        .value(row)
                        .to_bits()
                        .to_le_bytes(),
                ),
                DataType::Decimal128(..) => hasher.update(
                    column
                        .as_primitive::<arrow::datatypes::Decimal128Type>()
                        .value(row)
                        .to_le_bytes(),
                ),
                DataType::Boolean => hasher.update([column.as_boolean().value(row) as u8]),
                other => unreachable!("the stored schema has no {other} column"),
            }
        }
    }
    hasher
        .finalize()
        .iter()
        .take(16)
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// `row`'s key as `declaration_id D1, item_no 3`.
fn describe_key(batch: &RecordBatch, columns: &[&str], row: usize) -> String {
    columns
        .iter()
        .map(|name| {
            let column = batch.column_by_name(name).expect("a key column");
            let value = if column.is_null(row) {
                "(empty)".to_string()
            } else {
                array_value_to_string(column, row).unwrap_or_default()
            };
            format!("{name} {value}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// No key of `table` twice in what is imported.
fn no_row_twice(batch: &RecordBatch, table: &TableContract, origins: &Origins) -> Result<()> {
    let columns = key_columns(table);
    let keys = columns
        .iter()
        .map(|name| batch.column_by_name(name).expect("a key column").clone())
        .collect::<Vec<_>>();
    let converter = RowConverter::new(
        keys.iter()
            .map(|k| SortField::new(k.data_type().clone()))
            .collect(),
    )?;
    let rows = converter.convert_columns(&keys)?;
    let mut seen = HashMap::with_capacity(rows.num_rows());
    for row in 0..rows.num_rows() {
        if let Some(first) = seen.insert(rows.row(row), row) {
            return Err(refused(format!(
                "{} appears twice: {} and {}",
                describe_key(batch, columns, row),
                origins.describe(first),
                origins.describe(row)
            )));
        }
    }
    Ok(())
}

/// No imported key already in the warehouse's table: the same item (or
/// control) twice would be scored and counted twice.
async fn already_there(
    warehouse: &Warehouse,
    table: &TableContract,
    fresh: Vec<RecordBatch>,
) -> Result<()> {
    if fresh.is_empty() || warehouse.table(table.name).is_none() {
        return Ok(());
    }
    let ctx = SessionContext::new();
    warehouse.register(&ctx)?;
    ctx.register_table(
        "imported",
        Arc::new(MemTable::try_new(fresh[0].schema(), vec![fresh])?),
    )?;
    let columns = key_columns(table);
    // Required key columns join; nullable ones match as values, an empty
    // one equal to an empty one (in parentheses: the parser binds
    // `IS NOT DISTINCT FROM` looser than `AND`).
    let (required, nullable): (Vec<&str>, Vec<&str>) = columns
        .iter()
        .partition(|name| table.columns.iter().any(|c| c.name == **name && c.required));
    let on = required
        .iter()
        .map(|c| format!("t.{c} = i.{c}"))
        .collect::<Vec<_>>()
        .join(" AND ");
    let same = nullable
        .iter()
        .map(|c| format!(" AND (t.{c} IS NOT DISTINCT FROM i.{c})"))
        .collect::<String>();
    let selected = columns
        .iter()
        .map(|c| format!("i.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let found = ctx
        .sql(&format!(
            "SELECT {selected}, COUNT(*) OVER () AS n \
             FROM imported i JOIN {name} t ON {on} WHERE TRUE{same} \
             ORDER BY {selected} LIMIT 1",
            name = table.name
        ))
        .await?
        .collect()
        .await?;
    if let Some(batch) = found.iter().find(|b| b.num_rows() > 0) {
        let n = batch
            .column(columns.len())
            .as_primitive::<arrow::datatypes::Int64Type>()
            .value(0);
        return Err(refused(format!(
            "{n} row(s) are already in the warehouse's {} (first: {}); nothing was written",
            table.name,
            describe_key(batch, columns, 0)
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const HEADER: &str =
        "declaration_id,item_no,declaration_date,importer_id,hs_code,customs_value";

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    async fn import_into(root: &Path, table: &str, files: &[PathBuf]) -> Result<Imported> {
        import(
            root.to_str().unwrap(),
            OpenOptions::default(),
            table,
            files,
            DEFAULT_DATE_FORMAT,
        )
        .await
    }

    fn message(result: Result<Imported>) -> String {
        result
            .expect_err("the import should be refused")
            .to_string()
    }

    /// The files under `root/table`, relative to `root`.
    fn files_under(root: &Path, table: &str) -> Vec<String> {
        fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
            for entry in std::fs::read_dir(dir).into_iter().flatten() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, out);
                } else {
                    out.push(path);
                }
            }
        }
        let mut found = vec![];
        walk(&root.join(table), &mut found);
        let mut names: Vec<String> = found
            .iter()
            .map(|p| p.strip_prefix(root).unwrap().display().to_string())
            .collect();
        names.sort();
        names
    }

    fn read_back(path: &Path) -> RecordBatch {
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            std::fs::File::open(path).unwrap(),
        )
        .unwrap()
        .build()
        .unwrap();
        let batches: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
        concat_batches(&batches[0].schema(), &batches).unwrap()
    }

    /// What Excel and hand-made exports look like: a byte order mark, a
    /// quoted header with a comma inside a name, an upper-case extension,
    /// glob characters in the file name, a column the contract lacks.
    #[tokio::test]
    async fn reads_csv_as_written_and_names_columns_left_out() {
        let exports = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        let text = format!(
            "\u{feff}{HEADER},\"broker, internal\"\n\
             D1,1,2026-01-05,IMP1,010121,100.5,x\n\
             D1,2,2026-02-07,IMP1,0301,7,y\n"
        );
        let file = write(exports.path(), "sgd [jan*].CSV", &text);
        let imported = import_into(root.path(), "declarations", &[file.clone()])
            .await
            .unwrap();
        assert_eq!(imported.months.len(), 2);
        assert!(imported.months.iter().all(|m| m.rows == 1 && !m.already));
        assert_eq!(
            imported.left_out,
            vec![format!(
                "{}: columns not in the contract, left out: broker, internal",
                file.display()
            )]
        );
        let written = files_under(root.path(), "declarations");
        assert_eq!(written.len(), 2, "{written:?}");
        assert!(written[0].starts_with("declarations/year=2026/month=1/part-import-"));
        let january = read_back(&root.path().join(&written[0]));
        let hs = january
            .column_by_name("hs_code")
            .unwrap()
            .as_string::<i32>();
        assert_eq!(hs.value(0), "010121", "the leading zero is kept");
        let id = january
            .column_by_name("declaration_id")
            .unwrap()
            .as_string::<i32>();
        assert_eq!(id.value(0), "D1", "the byte order mark is not data");

        // The same file again: the same names, nothing written.
        let again = import_into(root.path(), "declarations", &[file])
            .await
            .unwrap();
        assert!(again.months.iter().all(|m| m.already));
        assert_eq!(files_under(root.path(), "declarations"), written);
    }

    /// Row numbers count in the file they are in, and a key twice names
    /// both places.
    #[tokio::test]
    async fn errors_name_the_file_and_its_row() {
        let exports = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        let first = write(
            exports.path(),
            "a.csv",
            &format!("{HEADER}\nD1,1,2026-01-05,IMP1,010121,1\nD2,1,2026-01-05,IMP1,010121,1\n"),
        );
        let second = write(
            exports.path(),
            "b.csv",
            &format!("{HEADER}\nD3,1,2026-01-05,IMP1,010121,1\nD3,2,2026-01-05,IMP1,010121,x\n"),
        );
        let bad = message(import_into(root.path(), "declarations", &[first.clone(), second]).await);
        assert!(
            bad.contains("b.csv: customs_value \"x\" in row 2 is not a Decimal128"),
            "{bad}"
        );
        let twice = write(
            exports.path(),
            "c.csv",
            &format!("{HEADER}\nD9,1,2026-01-06,IMP1,010121,1\nD2,1,2026-01-06,IMP1,010121,1\n"),
        );
        let twice = message(import_into(root.path(), "declarations", &[first, twice]).await);
        assert!(
            twice.contains("declaration_id D2, item_no 1 appears twice")
                && twice.contains("a.csv row 2")
                && twice.contains("c.csv row 2"),
            "{twice}"
        );
        assert!(
            !root.path().join("declarations").exists(),
            "nothing written"
        );
    }

    /// A code stored as a number has lost its leading zeros: refused, not
    /// turned into a wrong code.
    #[tokio::test]
    async fn parquet_codes_stored_as_numbers_are_refused() {
        use arrow::array::{Date32Array, Float64Array, Int32Array, Int64Array, StringArray};
        let exports = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        let batch = RecordBatch::try_from_iter([
            (
                "declaration_id",
                Arc::new(StringArray::from(vec!["D1"])) as _,
            ),
            ("item_no", Arc::new(Int32Array::from(vec![1])) as _),
            (
                "declaration_date",
                Arc::new(Date32Array::from(vec![20_454])) as _,
            ),
            (
                "importer_id",
                Arc::new(StringArray::from(vec!["IMP1"])) as _,
            ),
            ("hs_code", Arc::new(Int64Array::from(vec![10121])) as _),
            (
                "customs_value",
                Arc::new(Float64Array::from(vec![5.0])) as _,
            ),
        ])
        .unwrap();
        let path = exports.path().join("numbers.parquet");
        std::fs::write(&path, parquet_bytes(&batch).unwrap()).unwrap();
        let refusal = message(import_into(root.path(), "declarations", &[path]).await);
        assert!(
            refusal.contains("hs_code is of type Int64, but the contract wants text")
                && refusal.contains("leading zeros"),
            "{refusal}"
        );
    }

    /// Inspections: the same control twice is refused, in the files or
    /// against the warehouse; flat inspections already there are not mixed
    /// with partitions.
    #[tokio::test]
    async fn inspections_are_checked_like_declarations() {
        let exports = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        let declarations = write(
            exports.path(),
            "declarations.csv",
            &format!("{HEADER}\nD1,1,2026-01-05,IMP1,010121,1\nD1,2,2026-01-05,IMP1,010121,1\n"),
        );
        import_into(root.path(), "declarations", &[declarations])
            .await
            .unwrap();
        let controls = "declaration_id,item_no,inspected_on,kind,result\n\
                        D1,1,2026-01-09,physical,hit\n\
                        D1,,2026-01-09,documentary,clear\n";
        let first = write(exports.path(), "controls.csv", controls);
        let imported = import_into(root.path(), "inspections", &[first.clone()])
            .await
            .unwrap();
        assert_eq!(imported.months.len(), 1);

        // The same rows under another name (and one new): refused whole,
        // the empty item_no matching the empty one.
        let overlap = write(
            exports.path(),
            "controls-again.csv",
            &format!("{controls}D1,2,2026-01-10,physical,clear\n"),
        );
        let refusal = message(import_into(root.path(), "inspections", &[overlap]).await);
        assert!(
            refusal.contains("2 row(s) are already in the warehouse's inspections")
                && refusal.contains("nothing was written"),
            "{refusal}"
        );
        let twice = write(
            exports.path(),
            "twice.csv",
            "declaration_id,item_no,inspected_on,kind,result\n\
             D1,2,2026-01-10,physical,clear\n\
             D1,2,2026-01-10,physical,hit\n",
        );
        let refusal = message(import_into(root.path(), "inspections", &[twice]).await);
        assert!(refusal.contains("appears twice"), "{refusal}");
        assert_eq!(files_under(root.path(), "inspections").len(), 1);

        // Flat inspections in the warehouse: refused, nothing moved.
        let partitioned = files_under(root.path(), "inspections").remove(0);
        let flat = root.path().join("inspections/all.parquet");
        std::fs::rename(root.path().join(&partitioned), &flat).unwrap();
        std::fs::remove_dir_all(root.path().join("inspections/year=2026")).unwrap();
        let other = write(
            exports.path(),
            "new.csv",
            "declaration_id,item_no,inspected_on,result\nD1,2,2026-02-01,clear\n",
        );
        let refusal = message(import_into(root.path(), "inspections", &[other]).await);
        assert!(
            refusal.contains("flat files") && refusal.contains("one layout"),
            "{refusal}"
        );
        assert_eq!(
            files_under(root.path(), "inspections"),
            vec!["inspections/all.parquet".to_string()]
        );
    }

    /// A folder stands for its data files; anything else in it is not read.
    #[tokio::test]
    async fn a_folder_is_its_data_files() {
        let exports = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        write(
            exports.path(),
            "m1.csv",
            &format!("{HEADER}\nD1,1,2026-01-05,IMP1,010121,1\n"),
        );
        write(
            exports.path(),
            "m2.Csv",
            &format!("{HEADER}\nD2,1,2026-03-05,IMP1,010121,1\n"),
        );
        write(exports.path(), "README.txt", "not data");
        let imported = import_into(root.path(), "declarations", &[exports.path().to_path_buf()])
            .await
            .unwrap();
        assert_eq!(imported.files.len(), 2);
        assert_eq!(
            imported
                .months
                .iter()
                .map(|m| m.partition.to_string())
                .collect::<Vec<_>>(),
            vec!["year=2026/month=1", "year=2026/month=3"]
        );
        let empty = tempfile::tempdir().unwrap();
        let refusal =
            message(import_into(root.path(), "declarations", &[empty.path().to_path_buf()]).await);
        assert!(refusal.contains("no .parquet or .csv file"), "{refusal}");
    }

    /// The name of a month's file depends on its rows only: the same rows
    /// read in other batches give the same name, one changed value another.
    #[test]
    fn file_names_follow_the_rows() {
        use arrow::array::{Int32Array, StringArray};
        let batch = |ids: Vec<&str>, items: Vec<Option<i32>>| {
            RecordBatch::try_from_iter([
                ("declaration_id", Arc::new(StringArray::from(ids)) as _),
                ("item_no", Arc::new(Int32Array::from(items)) as _),
            ])
            .unwrap()
        };
        let a = batch(vec!["D1", "D2"], vec![Some(1), None]);
        let sliced = concat_batches(&a.schema(), &[a.slice(0, 1), a.slice(1, 1)]).unwrap();
        assert_eq!(content_hash(&a), content_hash(&sliced));
        assert_eq!(content_hash(&a).len(), 32);
        assert_ne!(
            content_hash(&a),
            content_hash(&batch(vec!["D1", "D2"], vec![Some(1), Some(0)]))
        );
        // "D1"+"D2" and "D1D"+"2" are different rows.
        assert_ne!(
            content_hash(&a),
            content_hash(&batch(vec!["D1D", "2"], vec![Some(1), None]))
        );
    }
}
