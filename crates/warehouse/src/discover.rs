//! Finding a warehouse's tables and checking every file against the
//! contract before any query runs.
//!
//! Only Parquet footers are read (concurrently, a few KB each), so opening a
//! warehouse of thousands of files on S3 costs seconds, not a scan.

use std::ops::Range;
use std::sync::Arc;

use arrow::compute::can_cast_types;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use parquet::arrow::async_reader::MetadataFetch;
use parquet::errors::ParquetError;
use parquet::file::metadata::ParquetMetaDataReader;

use crate::config::{ResolvedSource, TableMapping};
use crate::contract::{ColumnKind, Layout, TableContract, type_name};
use crate::error::{Result, WarehouseError};
use crate::partition::Partition;
use crate::store::Location;

/// How many footers are fetched at once; enough to hide S3 latency.
const FOOTER_CONCURRENCY: usize = 16;
/// Bytes read from the end of each file for its footer: our files' footers
/// are a few KiB, so one request usually does.
const FOOTER_PREFETCH: usize = 64 * 1024;

/// One Parquet file of a table.
#[derive(Debug, Clone)]
pub struct DataFile {
    pub meta: ObjectMeta,
    /// The month, for files under Hive month partitions.
    pub partition: Option<Partition>,
    pub rows: u64,
}

/// A table found in the warehouse and checked against the contract.
#[derive(Debug, Clone)]
pub struct DiscoveredTable {
    pub contract: &'static TableContract,
    /// Folder (or single file) holding the table.
    pub path: Path,
    /// Whether the files sit under `year=/month=` partitions.
    pub partitioned: bool,
    pub files: Vec<DataFile>,
    /// Config mapping; `None` when the files follow the contract names.
    pub mapping: Option<TableMapping>,
    /// For mapped tables: the source columns read, with their file types.
    pub source_schema: SchemaRef,
    /// Files left out because they could not be read or broke the
    /// contract (only when opened with `skip_bad_files`), with the error.
    pub skipped: Vec<String>,
}

impl DiscoveredTable {
    pub fn rows(&self) -> u64 {
        self.files.iter().map(|f| f.rows).sum()
    }
}

/// Finds and checks one table; `Ok(None)` when an optional table is absent.
pub(crate) async fn discover(
    location: &Location,
    contract: &'static TableContract,
    mapping: Option<&TableMapping>,
    skip_bad_files: bool,
) -> Result<Option<DiscoveredTable>> {
    let relative = mapping
        .and_then(|m| m.path.as_deref())
        .unwrap_or(contract.path);
    let path = location.child(relative);
    let objects = match contract.layout {
        Layout::SingleFile => match location.store.head(&path).await {
            Ok(meta) => vec![meta],
            Err(object_store::Error::NotFound { .. }) => vec![],
            Err(source) => {
                return Err(WarehouseError::Storage {
                    location: location.url_of(&path, false),
                    source,
                });
            }
        },
        _ => {
            let mut objects: Vec<ObjectMeta> = location
                .store
                .list(Some(&path))
                .try_collect()
                .await
                .map_err(|source| WarehouseError::Storage {
                    location: location.url_of(&path, true),
                    source,
                })?;
            objects.retain(|o| o.location.as_ref().ends_with(".parquet"));
            objects.sort_by(|a, b| a.location.cmp(&b.location));
            objects
        }
    };

    let mut files = Vec::with_capacity(objects.len());
    for meta in objects {
        let partition = match contract.layout {
            Layout::SingleFile => Some(None),
            _ => partition_of(location, contract, &path, &meta.location)?,
        };
        // `None`: a file in a plain subfolder, which DataFusion's listing
        // ignores too, so it is neither checked nor counted.
        if let Some(partition) = partition {
            files.push(DataFile {
                meta,
                partition,
                rows: 0,
            });
        }
    }
    if files.is_empty() {
        if contract.optional {
            return Ok(None);
        }
        return Err(WarehouseError::MissingTable {
            root: location.display.clone(),
            table: contract.qualified_name(),
            location: location.url_of(&path, true),
        });
    }

    let partitioned = files.iter().any(|f| f.partition.is_some());
    if let Some(loose) = files.iter().find(|f| f.partition.is_none()) {
        let message = if contract.layout == Layout::PartitionedByMonth {
            Some("must be under year=/month= partition folders (year=YYYY/month=M/)")
        } else if partitioned {
            Some(
                "is not under year=/month= partition folders like the table's other files; use one layout",
            )
        } else {
            None
        };
        if let Some(message) = message {
            return Err(WarehouseError::Layout {
                table: contract.qualified_name(),
                file: location.relative(&loose.meta.location),
                message: message.into(),
            });
        }
    }

    let footers: Vec<Result<ArrowReaderMetadata>> = futures::stream::iter(files.iter())
        .map(|file| read_footer(location, contract, &file.meta))
        .buffered(FOOTER_CONCURRENCY)
        .collect()
        .await;

    let mut source_fields: Vec<Field> = vec![];
    let mut kept = Vec::with_capacity(files.len());
    let mut skipped = Vec::new();
    for (mut file, footer) in files.into_iter().zip(footers) {
        let file_name = location.relative(&file.meta.location);
        let checked = footer.and_then(|footer| {
            // Checked on a copy: a skipped file must not add its columns.
            let mut fields = source_fields.clone();
            check_file(contract, mapping, &file_name, &footer, &mut fields)?;
            Ok((footer, fields))
        });
        match checked {
            Ok((footer, fields)) => {
                file.rows = footer.metadata().file_metadata().num_rows().max(0) as u64;
                source_fields = fields;
                kept.push(file);
            }
            Err(e) if skip_bad_files => skipped.push(e.to_string()),
            Err(e) => return Err(e),
        }
    }
    let files = kept;
    if files.is_empty() && !skipped.is_empty() {
        return Err(WarehouseError::UnreadableFile {
            table: contract.qualified_name(),
            file: location.relative(&path),
            message: format!("every file was left out: {}", skipped.join("; ")),
        });
    }

    Ok(Some(DiscoveredTable {
        contract,
        path,
        partitioned,
        files,
        mapping: mapping.cloned(),
        source_schema: Arc::new(Schema::new(source_fields)),
        skipped,
    }))
}

/// `Some(Some(partition))` under valid Hive partitions, `Some(None)` for
/// a file directly in the table folder, `None` for files DataFusion skips.
fn partition_of(
    location: &Location,
    contract: &TableContract,
    table_path: &Path,
    file: &Path,
) -> Result<Option<Option<Partition>>> {
    let segments: Vec<String> = file
        .prefix_match(table_path)
        .map(|parts| parts.map(|p| p.as_ref().to_string()).collect())
        .unwrap_or_default();
    let (dirs, _name) = segments.split_at(segments.len().saturating_sub(1));
    if dirs.is_empty() {
        return Ok(Some(None));
    }
    let layout_error = |message: String| WarehouseError::Layout {
        table: contract.qualified_name(),
        file: location.relative(file),
        message,
    };
    if let Some(dir) = dirs.iter().find(|d| !d.contains('=')) {
        // Hidden and `_` folders (`_temporary`, `.spark-staging`) are
        // writers' work areas, which readers skip by convention.
        if dirs
            .iter()
            .any(|d| d.starts_with('_') || d.starts_with('.'))
        {
            return Ok(None);
        }
        // Any other folder would be skipped by DataFusion's listing without
        // a word, and its rows silently missing from every query.
        return Err(layout_error(format!(
            "folder {dir}/ is not a partition (year=YYYY/month=M): its rows would be ignored; \
             move the file into its partition"
        )));
    }
    if !contract.is_partitioned_layout() {
        return Err(layout_error("this table is not partitioned".into()));
    }
    match dirs {
        [y, m] => match Partition::from_folders(y, m) {
            Some(partition) => Ok(Some(Some(partition))),
            None => Err(layout_error(format!(
                "partition folder {y}/{m} is not year=YYYY/month=M (month 1 to 12, without a \
                 leading zero: month=01 would not match `month = 1`)"
            ))),
        },
        _ => Err(layout_error(format!(
            "partition folders {} are not year=YYYY/month=M",
            dirs.join("/")
        ))),
    }
}

async fn read_footer(
    location: &Location,
    contract: &TableContract,
    meta: &ObjectMeta,
) -> Result<ArrowReaderMetadata> {
    let unreadable = |message: String| WarehouseError::UnreadableFile {
        table: contract.qualified_name(),
        file: location.relative(&meta.location),
        message,
    };
    // Not DataFusion's `DFParquetMetadata`: its push decoder (parquet 59.3)
    // subtracts a corrupt footer's metadata length from the file size
    // unchecked, which panics in debug builds. This reader checks the length
    // against the file size and says so; one ranged read covers the footer
    // of the files we write.
    let fetch = StoreRanges {
        store: location.store.as_ref(),
        path: &meta.location,
    };
    let metadata = ParquetMetaDataReader::new()
        .with_prefetch_hint(Some(FOOTER_PREFETCH))
        .load_and_finish(fetch, meta.size)
        .await
        .map_err(|e| unreadable(e.to_string()))?;
    ArrowReaderMetadata::try_new(Arc::new(metadata), ArrowReaderOptions::new())
        .map_err(|e| unreadable(e.to_string()))
}

/// Byte ranges of one object, for the footer reader.
struct StoreRanges<'a> {
    store: &'a dyn ObjectStore,
    path: &'a Path,
}

impl MetadataFetch for StoreRanges<'_> {
    fn fetch(&mut self, range: Range<u64>) -> BoxFuture<'_, parquet::errors::Result<Bytes>> {
        async move {
            self.store
                .get_range(self.path, range)
                .await
                .map_err(|e| ParquetError::External(Box::new(e)))
        }
        .boxed()
    }
}

fn check_file(
    contract: &TableContract,
    mapping: Option<&TableMapping>,
    file: &str,
    footer: &ArrowReaderMetadata,
    source_fields: &mut Vec<Field>,
) -> Result<()> {
    let schema = footer.schema();
    let table = contract.qualified_name();
    for column in contract.columns {
        let source = match mapping {
            Some(m) => m.source_of(column),
            None => ResolvedSource::Column {
                source: column.name.to_string(),
                cast: false,
                date_format: None,
            },
        };
        let ResolvedSource::Column {
            source,
            cast,
            date_format,
        } = source
        else {
            continue;
        };
        let mapped_note = if source == column.name {
            String::new()
        } else {
            format!(" (mapped from source column {source})")
        };
        let Ok(field) = schema.field_with_name(&source) else {
            return Err(WarehouseError::MissingColumn {
                table,
                file: file.to_string(),
                column: format!("{}{mapped_note}", column.name),
                expected: column.kind.contract_name().to_string(),
                hint: missing_hint(contract, column.name, &source, schema),
            });
        };
        let actual = field.data_type();
        let convertible = if date_format.is_some() {
            ColumnKind::Text.accepts(actual)
        } else if cast {
            can_cast_types(actual, &column.kind.canonical_type())
        } else {
            column.kind.accepts(actual)
        };
        if !convertible {
            let hint = if cast {
                String::new()
            } else {
                format!(
                    "; if the values convert, map it in aduana.toml: [tables.{}.columns] {} = {{ from = \"{source}\", cast = \"{}\" }}",
                    contract.name,
                    column.name,
                    cast_name(column.kind)
                )
            };
            return Err(WarehouseError::WrongType {
                table,
                file: file.to_string(),
                column: format!("{}{mapped_note}", column.name),
                expected: column.kind.contract_name().to_string(),
                actual: type_name(actual),
                hint,
            });
        }
        if column.required {
            let nulls = null_count(footer, &source);
            if nulls > 0 {
                return Err(WarehouseError::NullsInRequired {
                    table,
                    file: file.to_string(),
                    column: format!("{}{mapped_note}", column.name),
                    nulls,
                });
            }
        }
        if column.kind == ColumnKind::Money
            && matches!(actual, DataType::Float64)
            && let Some(value) = float_beyond(footer, &source, MONEY_LIMIT)
        {
            return Err(WarehouseError::MoneyOutOfRange {
                table,
                file: file.to_string(),
                column: format!("{}{mapped_note}", column.name),
                value,
            });
        }
        if mapping.is_some() {
            // Read as the type it becomes (text, for dates parsed by a
            // format): each file's own type was checked above and is cast
            // on read, as an unmapped table's are.
            let read_as = if date_format.is_some() {
                DataType::Utf8View
            } else {
                column.kind.canonical_type()
            };
            let field = Field::new(field.name(), read_as, true);
            record_source_field(&table, file, &field, source_fields)?;
        }
    }
    Ok(())
}

/// Money in `Float64` is converted to the contract's `Decimal128(18, 2)`,
/// which holds less than this in absolute value.
const MONEY_LIMIT: f64 = 1e16;

/// The first value of the `Float64` `column` whose statistics (minimum or
/// maximum of a row group) reach `limit` in absolute value or are not
/// finite: such a value cannot be converted, and reading it would fail
/// without naming the file or the column. Files without statistics are
/// caught when read (`aduana check` names them).
fn float_beyond(footer: &ArrowReaderMetadata, column: &str, limit: f64) -> Option<f64> {
    let leaf = leaf_index(footer, column)?;
    footer
        .metadata()
        .row_groups()
        .iter()
        .find_map(|rg| match rg.column(leaf).statistics()? {
            parquet::file::statistics::Statistics::Double(stats) => {
                [stats.min_opt(), stats.max_opt()]
                    .into_iter()
                    .flatten()
                    .copied()
                    .find(|v| !v.is_finite() || v.abs() >= limit)
            }
            _ => None,
        })
}

/// Mapped tables are read through a schema of their source columns, each
/// read as one type in every file (a source column feeding two columns of
/// different types is refused).
fn record_source_field(
    table: &str,
    file: &str,
    field: &Field,
    fields: &mut Vec<Field>,
) -> Result<()> {
    // DataFusion reads every Parquet string as Utf8View, so all string
    // flavours are the same source type.
    let normalized = match field.data_type() {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => DataType::Utf8View,
        other => other.clone(),
    };
    match fields.iter().find(|f| f.name() == field.name()) {
        None => fields.push(Field::new(field.name(), normalized, true)),
        Some(seen) if seen.data_type() == &normalized => {}
        Some(seen) => {
            return Err(WarehouseError::WrongType {
                table: table.to_string(),
                file: file.to_string(),
                column: field.name().to_string(),
                expected: format!(
                    "{} (another column mapped from it is read as that)",
                    type_name(seen.data_type())
                ),
                actual: type_name(field.data_type()),
                hint: String::new(),
            });
        }
    }
    Ok(())
}

/// The Parquet leaf column of the top-level `column`.
fn leaf_index(footer: &ArrowReaderMetadata, column: &str) -> Option<usize> {
    footer
        .metadata()
        .file_metadata()
        .schema_descr()
        .columns()
        .iter()
        .position(|c| c.path().parts() == [column.to_string()])
}

fn null_count(footer: &ArrowReaderMetadata, column: &str) -> u64 {
    let Some(leaf) = leaf_index(footer, column) else {
        return 0;
    };
    footer
        .metadata()
        .row_groups()
        .iter()
        .filter_map(|rg| rg.column(leaf).statistics()?.null_count_opt())
        .sum()
}

fn missing_hint(contract: &TableContract, column: &str, source: &str, schema: &Schema) -> String {
    let lower = source.to_ascii_lowercase();
    if let Some(similar) = schema
        .fields()
        .iter()
        .find(|f| f.name().to_ascii_lowercase() == lower)
    {
        return format!(
            "; the file has {:?}: map it in aduana.toml: [tables.{}.columns] {column} = {:?}",
            similar.name(),
            contract.name,
            similar.name()
        );
    }
    format!(
        "; map it from a source column in aduana.toml: [tables.{}.columns] {column} = \"SOURCE.NAME\"",
        contract.name
    )
}

fn cast_name(kind: ColumnKind) -> &'static str {
    match kind {
        ColumnKind::Text => "text",
        ColumnKind::Int32 => "int32",
        ColumnKind::Float64 => "float64",
        ColumnKind::Boolean => "boolean",
        ColumnKind::Date => "date",
        ColumnKind::Money => "decimal(18,2)",
    }
}
