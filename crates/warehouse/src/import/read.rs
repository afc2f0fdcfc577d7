//! Reading the files of an import: each one whole, as the file says,
//! without DataFusion's listing (which takes a path as a glob and skips
//! names whose extension is not lower case).

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{RecordBatch, RecordBatchReader};
use arrow::compute::concat_batches;
use arrow::csv::ReaderBuilder;
use arrow::csv::reader::Format;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::error::{Result, WarehouseError};

/// The kinds of file an import reads, named by their extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Parquet,
    Csv,
}

fn kind_of(path: &Path) -> Option<Kind> {
    let extension = path.extension()?.to_str()?.to_ascii_lowercase();
    match extension.as_str() {
        "parquet" => Some(Kind::Parquet),
        "csv" => Some(Kind::Csv),
        _ => None,
    }
}

fn unreadable(input: &Path, message: impl ToString) -> WarehouseError {
    WarehouseError::UnreadableFile {
        table: "import".into(),
        file: input.display().to_string(),
        message: message.to_string(),
    }
}

/// The files named: a folder stands for its `.parquet` and `.csv` files
/// (any case), in name order.
pub(super) fn expand(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(input)
                .map_err(|e| unreadable(input, e))?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|path| path.is_file() && kind_of(path).is_some())
                .collect();
            if found.is_empty() {
                return Err(unreadable(input, "a folder with no .parquet or .csv file"));
            }
            found.sort();
            files.extend(found);
        } else {
            files.push(input.clone());
        }
    }
    Ok(files)
}

/// One input file as one batch: Parquet with its own types, CSV with every
/// column as text (types are the contract's business, and an HS code must
/// keep its leading zero).
pub(super) fn read_input(input: &Path) -> Result<RecordBatch> {
    match kind_of(input) {
        Some(Kind::Parquet) => read_parquet(input),
        Some(Kind::Csv) => read_csv(input),
        None => Err(unreadable(
            input,
            "not a .parquet or .csv file (named by its extension)",
        )),
    }
}

fn read_parquet(input: &Path) -> Result<RecordBatch> {
    let file = File::open(input).map_err(|e| unreadable(input, e))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|builder| builder.build())
        .map_err(|e| unreadable(input, e))?;
    let schema = reader.schema();
    let batches = reader
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| unreadable(input, e))?;
    Ok(concat_batches(&schema, &batches)?)
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The file from its first byte of text: a UTF-8 byte order mark (Excel
/// writes one) is not part of the first column's name.
fn open_text(input: &Path) -> Result<BufReader<File>> {
    let file = File::open(input).map_err(|e| unreadable(input, e))?;
    let mut reader = BufReader::new(file);
    let starts_with_bom = reader
        .fill_buf()
        .map_err(|e| unreadable(input, e))?
        .starts_with(BOM);
    if starts_with_bom {
        reader.consume(BOM.len());
    }
    Ok(reader)
}

fn read_csv(input: &Path) -> Result<RecordBatch> {
    // The header parsed as CSV (quoted names, commas inside quotes).
    let (header, _) = Format::default()
        .with_header(true)
        .infer_schema(open_text(input)?, Some(0))
        .map_err(|e| unreadable(input, e))?;
    let mut names: Vec<String> = Vec::with_capacity(header.fields().len());
    for field in header.fields() {
        let name = field.name().trim().to_string();
        if name.is_empty() {
            return Err(unreadable(
                input,
                format!("column {} of the header has no name", names.len() + 1),
            ));
        }
        if names.contains(&name) {
            return Err(unreadable(
                input,
                format!("column {name} appears twice in the header"),
            ));
        }
        names.push(name);
    }
    if names.is_empty() {
        return Err(unreadable(input, "empty file (no header)"));
    }
    let schema: SchemaRef = Arc::new(Schema::new(
        names
            .iter()
            .map(|name| Field::new(name, DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ));
    let reader = ReaderBuilder::new(schema.clone())
        .with_header(true)
        .build(open_text(input)?)
        .map_err(|e| unreadable(input, e))?;
    let batches = reader
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| unreadable(input, e))?;
    Ok(concat_batches(&schema, &batches)?)
}
