//! Turning discovered tables into DataFusion table providers.

use std::sync::Arc;

use arrow::datatypes::DataType;
use datafusion::catalog::{MemorySchemaProvider, TableProvider};
use datafusion::common::{Column, ScalarValue};
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::datasource::{ViewTable, provider_as_source};
use datafusion::error::Result;
use datafusion::functions::datetime::expr_fn::to_date;
use datafusion::logical_expr::{Expr, LogicalPlanBuilder, cast, lit};
use datafusion::prelude::SessionContext;

use object_store::path::Path;

use crate::config::ResolvedSource;
use crate::contract::{Layout, PARTITION_COLUMNS};
use crate::discover::DiscoveredTable;
use crate::partition::Partition;
use crate::store::Location;

/// Registers `table` under its contract name in the session's default catalog.
pub(crate) fn register(
    ctx: &SessionContext,
    location: &Location,
    table: &DiscoveredTable,
) -> Result<()> {
    let contract = table.contract;
    let provider = if table.skipped.is_empty() {
        provider(ctx, location, table, None)?
    } else {
        over_kept_files(ctx, location, table)?
    };
    if contract.sql_schema != crate::contract::DEFAULT_SCHEMA {
        let state = ctx.state();
        let catalog_name = &state.config_options().catalog.default_catalog;
        let catalog = ctx.catalog(catalog_name).ok_or_else(|| {
            datafusion::error::DataFusionError::Plan(format!("no catalog {catalog_name}"))
        })?;
        if catalog.schema(contract.sql_schema).is_none() {
            catalog.register_schema(contract.sql_schema, Arc::new(MemorySchemaProvider::new()))?;
        }
    }
    ctx.register_table(contract.qualified_name(), provider)?;
    Ok(())
}

/// A table some of whose files were left out (a server opens the warehouse
/// with `skip_bad_files`): only the kept files, month by month with the
/// partition columns as constants, since a listing over the folder would
/// read the left-out files too.
fn over_kept_files(
    ctx: &SessionContext,
    location: &Location,
    table: &DiscoveredTable,
) -> Result<Arc<dyn TableProvider>> {
    if !table.partitioned {
        let files: Vec<Path> = table
            .files
            .iter()
            .map(|f| f.meta.location.clone())
            .collect();
        return provider(ctx, location, table, Some(&files));
    }
    let mut by_month: std::collections::BTreeMap<Partition, Vec<Path>> = Default::default();
    for file in &table.files {
        if let Some(partition) = file.partition {
            by_month
                .entry(partition)
                .or_default()
                .push(file.meta.location.clone());
        }
    }
    let mut union: Option<LogicalPlanBuilder> = None;
    for (partition, files) in by_month {
        let Partition { year, month } = partition;
        let source = provider(ctx, location, table, Some(&files))?;
        let scan = LogicalPlanBuilder::scan(table.contract.name, provider_as_source(source), None)?;
        let mut columns: Vec<Expr> = scan
            .schema()
            .fields()
            .iter()
            .map(|f| source_column(f.name()))
            .collect();
        columns.push(lit(year).alias(PARTITION_COLUMNS[0]));
        columns.push(lit(month).alias(PARTITION_COLUMNS[1]));
        let month_plan = scan.project(columns)?.build()?;
        union = Some(match union {
            None => LogicalPlanBuilder::from(month_plan),
            Some(plans) => plans.union(month_plan)?,
        });
    }
    let plan = union
        .ok_or_else(|| datafusion::error::DataFusionError::Plan("no files left".into()))?
        .build()?;
    Ok(Arc::new(ViewTable::new(plan, None)))
}

/// The table as its contract reads it: over all its files, or over only
/// `files` (then without the partition columns, which come from folders).
pub(crate) fn provider(
    ctx: &SessionContext,
    location: &Location,
    table: &DiscoveredTable,
    files: Option<&[Path]>,
) -> Result<Arc<dyn TableProvider>> {
    match &table.mapping {
        None => listing_table(ctx, location, table, table.contract.file_schema(), files),
        Some(_) => mapped_view(ctx, location, table, files),
    }
}

fn listing_table(
    ctx: &SessionContext,
    location: &Location,
    table: &DiscoveredTable,
    file_schema: arrow::datatypes::SchemaRef,
    files: Option<&[Path]>,
) -> Result<Arc<dyn TableProvider>> {
    let urls = match files {
        Some(files) => files
            .iter()
            .map(|f| ListingTableUrl::parse(location.url_of(f, false)))
            .collect::<datafusion::error::Result<Vec<_>>>()?,
        None => {
            let is_dir = table.contract.layout != Layout::SingleFile;
            vec![ListingTableUrl::parse(
                location.url_of(&table.path, is_dir),
            )?]
        }
    };
    let partition_cols = if table.partitioned && files.is_none() {
        PARTITION_COLUMNS
            .iter()
            .map(|name| (name.to_string(), DataType::Int32))
            .collect()
    } else {
        vec![]
    };
    let format = ParquetFormat::default().with_options(ctx.state().table_options().parquet.clone());
    let options = ListingOptions::new(Arc::new(format))
        .with_file_extension(".parquet")
        .with_table_partition_cols(partition_cols);
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .with_schema(file_schema);
    Ok(Arc::new(ListingTable::try_new(config)?))
}

/// A mapped table: a listing table over the source columns, projected onto
/// the contract's names and types. Filters on `year`/`month` still reach
/// the listing table through the projection, so partitions are pruned.
fn mapped_view(
    ctx: &SessionContext,
    location: &Location,
    table: &DiscoveredTable,
    files: Option<&[Path]>,
) -> Result<Arc<dyn TableProvider>> {
    let contract = table.contract;
    let mapping = table.mapping.as_ref().expect("mapped table");
    let source = listing_table(ctx, location, table, table.source_schema.clone(), files)?;
    let mut exprs: Vec<Expr> = Vec::with_capacity(contract.columns.len() + 2);
    for column in contract.columns {
        let target = column.kind.canonical_type();
        let expr = match mapping.source_of(column) {
            ResolvedSource::Null => lit(ScalarValue::try_from(&target)?),
            ResolvedSource::Column {
                source,
                date_format: Some(format),
                ..
            } => to_date(vec![source_column(&source), lit(format)]),
            ResolvedSource::Column { source, .. } => {
                let source_type = table
                    .source_schema
                    .field_with_name(&source)
                    .map(|f| f.data_type().clone())?;
                let expr = source_column(&source);
                if source_type == target {
                    expr
                } else {
                    cast(expr, target)
                }
            }
        };
        exprs.push(expr.alias(column.name));
    }
    if table.partitioned && files.is_none() {
        exprs.extend(PARTITION_COLUMNS.iter().map(|c| source_column(c)));
    }
    let plan = LogicalPlanBuilder::scan(contract.name, provider_as_source(source), None)?
        .project(exprs)?
        .build()?;
    Ok(Arc::new(ViewTable::new(plan, None)))
}

/// A column reference by exact name: source names such as `SGD.NUMBER`
/// contain dots that `col()` would read as a table qualifier.
fn source_column(name: &str) -> Expr {
    Expr::Column(Column::new_unqualified(name))
}
