//! An input batch brought to the contract: its columns, in order, of their
//! types, every value checked.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Date32Array, RecordBatch, StringArray, new_null_array,
};
use arrow::compute::{CastOptions, cast, cast_with_options};
use arrow::datatypes::{DataType, Date32Type, Field, Schema, SchemaRef};
use chrono::NaiveDate;

use super::refused;
use crate::contract::{ColumnContract, ColumnKind, TableContract};
use crate::error::Result;

/// The schema imported files are written with: the contract's columns,
/// text as plain `Utf8` (what most writers produce).
pub(super) fn stored_schema(table: &TableContract) -> SchemaRef {
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

/// `batch` with the contract's columns, in order and of their types, and
/// the names of the file's columns the contract does not have. A value
/// that does not convert is named with its row and column.
pub(super) fn conform(
    batch: &RecordBatch,
    table: &TableContract,
    date_format: &str,
    input: &Path,
) -> Result<(RecordBatch, Vec<String>)> {
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
    let unknown = batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .filter(|name| !table.columns.iter().any(|c| c.name == name.as_str()))
        .collect();
    Ok((
        RecordBatch::try_new(stored_schema(table), columns)?,
        unknown,
    ))
}

fn is_text(data_type: &DataType) -> bool {
    match data_type {
        DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 => true,
        DataType::Dictionary(_, value) => is_text(value),
        _ => false,
    }
}

/// Whether a typed (non-text) column converts to `kind` without losing
/// what the contract cares about. Integers of any width are accepted for
/// numbers: each value is then checked to fit.
fn converts(kind: ColumnKind, actual: &DataType) -> bool {
    kind.accepts(actual)
        || (actual.is_integer()
            && matches!(
                kind,
                ColumnKind::Int32 | ColumnKind::Float64 | ColumnKind::Money
            ))
}

/// One column converted to its contract type.
fn convert(
    array: &ArrayRef,
    column: &ColumnContract,
    date_format: &str,
) -> std::result::Result<ArrayRef, String> {
    let target = stored_type(column.kind);
    let text = is_text(array.data_type());
    if column.kind == ColumnKind::Text && !text {
        // An id or an HS code stored as a number has lost its leading
        // zeros: reading it back as text would not give the code.
        return Err(format!(
            "{} is of type {}, but the contract wants text: a code stored as a number has \
             lost its leading zeros; export the column as text",
            column.name,
            array.data_type()
        ));
    }
    if !text && !converts(column.kind, array.data_type()) {
        return Err(format!(
            "{} is of type {}, which cannot be read as {} without losing part of its values",
            column.name,
            array.data_type(),
            column.kind.contract_name()
        ));
    }
    if column.kind == ColumnKind::Date && text {
        return parse_dates(array, column, date_format);
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

/// Text dates read with `date_format`; empty text is a missing date.
fn parse_dates(
    array: &ArrayRef,
    column: &ColumnContract,
    date_format: &str,
) -> std::result::Result<ArrayRef, String> {
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
    Ok(Arc::new(Date32Array::from(days)))
}
