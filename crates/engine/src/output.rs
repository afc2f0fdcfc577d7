//! Writing query results: aligned tables for people, CSV / JSON / NDJSON /
//! Parquet for programs. Everything but the table format streams batch by
//! batch, so exporting a large result does not hold it in memory.

use std::io::Write;
use std::str::FromStr;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::util::pretty::pretty_format_batches;
use datafusion::error::{DataFusionError, Result};
use datafusion::physical_plan::SendableRecordBatchStream;
use futures::StreamExt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Table,
    Csv,
    Json,
    Ndjson,
    Parquet,
}

impl Format {
    pub const NAMES: [&'static str; 5] = ["table", "csv", "json", "ndjson", "parquet"];

    /// Binary formats must go to a file, never to a terminal.
    pub fn is_binary(self) -> bool {
        self == Format::Parquet
    }
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "table" => Format::Table,
            "csv" => Format::Csv,
            "json" => Format::Json,
            "ndjson" | "jsonl" => Format::Ndjson,
            "parquet" => Format::Parquet,
            other => {
                return Err(format!(
                    "unknown format {other:?} (use {})",
                    Format::NAMES.join(", ")
                ));
            }
        })
    }
}

/// Writes `stream` to `out` in `format`; returns the number of rows.
pub async fn write_stream<W: Write + Send>(
    format: Format,
    stream: SendableRecordBatchStream,
    out: &mut W,
) -> Result<u64> {
    let schema = stream.schema();
    match format {
        Format::Table => {
            // Column widths depend on every row: collect first.
            let mut batches = Vec::new();
            let rows = for_each_batch(stream, |batch| {
                batches.push(batch);
                Ok(())
            })
            .await?;
            write_table(&schema, &batches, out)?;
            Ok(rows)
        }
        Format::Csv => {
            let mut writer = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(out);
            // An empty batch first: an empty result still gets its header.
            writer.write(&RecordBatch::new_empty(schema))?;
            for_each_batch(stream, |batch| Ok(writer.write(&batch)?)).await
        }
        Format::Json => {
            let mut writer = arrow::json::ArrayWriter::new(out);
            let rows = for_each_batch(stream, |batch| Ok(writer.write(&batch)?)).await?;
            // Also for no rows: arrow's writer then gives `[]`.
            writer.finish()?;
            Ok(rows)
        }
        Format::Ndjson => {
            let mut writer = arrow::json::LineDelimitedWriter::new(out);
            let rows = for_each_batch(stream, |batch| Ok(writer.write(&batch)?)).await?;
            writer.finish()?;
            Ok(rows)
        }
        Format::Parquet => {
            let mut writer = parquet::arrow::ArrowWriter::try_new(out, schema, None)?;
            let rows = for_each_batch(stream, |batch| Ok(writer.write(&batch)?)).await?;
            writer.close()?;
            Ok(rows)
        }
    }
}

/// Feeds each batch of `stream` to `write`; returns the number of rows.
async fn for_each_batch(
    mut stream: SendableRecordBatchStream,
    mut write: impl FnMut(RecordBatch) -> Result<()>,
) -> Result<u64> {
    let mut rows = 0u64;
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        rows += batch.num_rows() as u64;
        write(batch)?;
    }
    Ok(rows)
}

fn write_table<W: Write>(schema: &SchemaRef, batches: &[RecordBatch], out: &mut W) -> Result<()> {
    let table = if batches.is_empty() {
        pretty_format_batches(&[RecordBatch::new_empty(schema.clone())])?
    } else {
        pretty_format_batches(batches)?
    };
    writeln!(out, "{table}").map_err(DataFusionError::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use arrow::array::{Int32Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use datafusion::physical_plan::stream::RecordBatchStreamAdapter;

    fn stream(batches: Vec<RecordBatch>, schema: SchemaRef) -> SendableRecordBatchStream {
        Box::pin(RecordBatchStreamAdapter::new(
            schema,
            futures::stream::iter(batches.into_iter().map(Ok)),
        ))
    }

    fn sample() -> (SchemaRef, Vec<RecordBatch>) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("lane", DataType::Utf8, true),
            Field::new("items", DataType::Int32, false),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(vec!["red", "green"])),
                Arc::new(Int32Array::from(vec![3, 40])),
            ],
        )
        .unwrap();
        (schema, vec![batch])
    }

    async fn render(format: Format, empty: bool) -> String {
        let (schema, batches) = sample();
        let batches = if empty { vec![] } else { batches };
        let mut out = Vec::new();
        write_stream(format, stream(batches, schema), &mut out)
            .await
            .unwrap();
        String::from_utf8(out).unwrap()
    }

    #[tokio::test]
    async fn text_formats() {
        assert_eq!(
            render(Format::Csv, false).await,
            "lane,items\nred,3\ngreen,40\n"
        );
        assert_eq!(
            render(Format::Json, false).await,
            r#"[{"lane":"red","items":3},{"lane":"green","items":40}]"#
        );
        assert_eq!(
            render(Format::Ndjson, false).await,
            "{\"lane\":\"red\",\"items\":3}\n{\"lane\":\"green\",\"items\":40}\n"
        );
        let table = render(Format::Table, false).await;
        assert!(
            table.contains("| lane  | items |") && table.contains("| green | 40    |"),
            "{table}"
        );
    }

    #[tokio::test]
    async fn empty_results_are_still_valid_documents() {
        assert_eq!(render(Format::Csv, true).await, "lane,items\n");
        assert_eq!(render(Format::Json, true).await, "[]");
        assert!(
            render(Format::Table, true)
                .await
                .contains("| lane | items |")
        );
    }

    #[test]
    fn format_names() {
        assert_eq!("NDJSON".parse::<Format>().unwrap(), Format::Ndjson);
        assert!("xml".parse::<Format>().unwrap_err().contains("table, csv"));
    }
}
