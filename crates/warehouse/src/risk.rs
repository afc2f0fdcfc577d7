//! The risk tables the refresh job publishes under `risk/`, and the
//! snapshot that says which of their files are published.
//!
//! Object stores cannot rename a folder atomically, so the tables are not
//! "whatever files are in the folder": `risk/_published.json` lists the
//! files of the current version of every risk table, and is rewritten (one
//! object, one atomic put) only after all of them are in place. Sessions
//! read exactly the listed files, so they see the previous refresh or the
//! new one, never a mix; files that no snapshot lists are left-overs of an
//! interrupted run and are deleted by the next one.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{MemTable, MemorySchemaProvider, TableProvider};
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::prelude::SessionContext;
use object_store::ObjectStoreExt;
use object_store::path::Path;
use serde::{Deserialize, Serialize};

use crate::error::{Result, WarehouseError};
use crate::store::Location;

/// Where the risk tables live, relative to the warehouse root.
pub const RISK_DIR: &str = "risk";
pub const SNAPSHOT_FILE: &str = "risk/_published.json";
pub const SCORES_DIR: &str = "risk/declaration_scores";
pub const REJECTS_DIR: &str = "risk/rejects";
pub const TRADER_RISK_DIR: &str = "risk/trader_risk";
/// Run manifests, one JSON file per run, kept.
pub const RUNS_DIR: &str = "risk/runs";
/// Backtests (`aduana refresh --as-of DATE`) keep their own model, tables
/// and snapshot under `risk/backtests/as_of=DATE/`, a root of the same
/// shape as the warehouse's, so they never touch the published tables.
pub const BACKTESTS_DIR: &str = "risk/backtests";
/// Published selections for inspection (`aduana select`), one file per
/// day: `risk/selections/selection_date=YYYY-MM-DD/selection.parquet`,
/// each written in one put, so a day's selection is there whole or not.
pub const SELECTIONS_DIR: &str = "risk/selections";
pub const SELECTION_FILE: &str = "selection.parquet";
/// The SQL schema the risk tables are registered in.
pub const SQL_SCHEMA: &str = "risk";

/// One input file as the snapshot remembers it, to tell later whether it
/// changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputFile {
    /// Relative to the warehouse root.
    pub path: String,
    pub size: u64,
    pub last_modified: String,
    pub e_tag: Option<String>,
}

/// What one declaration partition (`year=Y/month=M`) was published from
/// and as.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartitionState {
    pub inputs: Vec<InputFile>,
    /// The partition's file of `declaration_scores` (relative path).
    pub scores: String,
    /// The partition's file of `rejects`, when it had rejected rows.
    pub rejects: Option<String>,
    pub rows_in: u64,
    pub scored: u64,
    pub rejected: u64,
    /// The period's file of `trader_risk`: the trader risk is kept per
    /// period so a new month recomputes that month, not the history.
    /// `None` (snapshots from before) means it is recomputed.
    #[serde(default)]
    pub trader_risk: Option<String>,
    /// Importer rows in that file.
    #[serde(default)]
    pub trader_rows: u64,
}

/// `risk/_published.json`: the published version of the risk tables.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The run that published it.
    pub run_id: String,
    pub published_at: String,
    /// The risk model version that scored every listed partition.
    pub model_version: String,
    /// For backtests: the day the refresh ran "as if on".
    pub as_of: Option<String>,
    /// Keyed `year=Y/month=M`.
    pub partitions: BTreeMap<String, PartitionState>,
    /// The inspection files the trader risk was computed from.
    pub inspections: Vec<InputFile>,
}

impl Snapshot {
    /// Every file of every risk table, relative to the root.
    pub fn files(&self) -> impl Iterator<Item = &str> {
        self.partitions.values().flat_map(|p| {
            std::iter::once(p.scores.as_str())
                .chain(p.rejects.as_deref())
                .chain(p.trader_risk.as_deref())
        })
    }
}

/// Reads the snapshot under `root` (the warehouse root or a backtest's);
/// `Ok(None)` when nothing was published yet.
pub async fn load_snapshot(location: &Location, root: &str) -> Result<Option<Snapshot>> {
    let path = location.child(&join(root, SNAPSHOT_FILE));
    let url = location.url_of(&path, false);
    let bytes = match location.store.get(&path).await {
        Ok(result) => result.bytes().await,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => Err(e),
    }
    .map_err(|source| WarehouseError::Storage {
        location: url.clone(),
        source,
    })?;
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| WarehouseError::Config {
            origin: url,
            message: format!("not a valid risk snapshot: {e}"),
        })
}

/// `relative` under `root` (`""` for the warehouse root).
pub fn join(root: &str, relative: &str) -> String {
    if root.is_empty() {
        relative.to_string()
    } else {
        format!("{}/{relative}", root.trim_end_matches('/'))
    }
}

fn text() -> DataType {
    DataType::Utf8View
}

fn money() -> DataType {
    DataType::Decimal128(18, 2)
}

fn fields(columns: &[(&str, DataType, bool)]) -> SchemaRef {
    Arc::new(Schema::new(
        columns
            .iter()
            .map(|(name, data_type, nullable)| Field::new(*name, data_type.clone(), *nullable))
            .collect::<Vec<_>>(),
    ))
}

/// `risk.declaration_scores`: one row per scored declaration item.
pub static SCORES_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    fields(&[
        ("declaration_id", text(), false),
        ("item_no", DataType::Int32, false),
        ("declaration_date", DataType::Date32, false),
        ("year", DataType::Int32, false),
        ("month", DataType::Int32, false),
        ("office_code", text(), true),
        ("importer_id", text(), false),
        ("declarant_id", text(), true),
        ("hs_code", text(), false),
        ("origin_country", text(), true),
        ("customs_value", money(), false),
        ("valuation_deviation", DataType::Float64, true),
        ("hs_misclassification_probability", DataType::Float64, true),
        ("origin_risk", DataType::Float64, true),
        ("revenue_at_risk", DataType::Float64, true),
        // The learned model's heads; NULL when the model has none.
        ("fraud_probability", DataType::Float64, true),
        ("expected_revenue", DataType::Float64, true),
        ("risk_score", DataType::Float64, false),
        ("risk_level", text(), false),
        ("reasons", text(), true),
        ("model_version", text(), false),
    ])
});

/// `risk.rejects`: declaration items that could not be scored, and why
/// (a missing key or value is itself a reason, so they may be NULL here).
pub static REJECTS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    fields(&[
        ("declaration_id", text(), true),
        ("item_no", DataType::Int32, true),
        ("declaration_date", DataType::Date32, true),
        ("year", DataType::Int32, false),
        ("month", DataType::Int32, false),
        ("importer_id", text(), true),
        ("hs_code", text(), true),
        ("customs_value", money(), true),
        ("quantity", DataType::Float64, true),
        ("quantity_unit", text(), true),
        ("reason", text(), false),
    ])
});

/// `risk.trader_risk`: one row per importer and month.
pub static TRADER_RISK_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    fields(&[
        ("importer_id", text(), false),
        ("year", DataType::Int32, false),
        ("month", DataType::Int32, false),
        ("items", DataType::Int64, false),
        ("customs_value", DataType::Decimal128(38, 2), false),
        ("mean_risk_score", DataType::Float64, false),
        ("max_risk_score", DataType::Float64, false),
        ("high_risk_items", DataType::Int64, false),
        ("items_inspected", DataType::Int64, false),
        ("fraud_found", DataType::Int64, false),
        ("hit_rate", DataType::Float64, true),
        ("fraud_probability", DataType::Float64, false),
        ("revenue_at_risk", DataType::Float64, false),
        ("expected_revenue_at_risk", DataType::Float64, false),
        ("segment", text(), false),
        ("rank", DataType::Int64, false),
    ])
});

/// How a selection chose each row, in both selection tables.
fn choice_columns() -> [(&'static str, DataType, bool); 6] {
    [
        // Random picks: the items (importers) each stands for, the inverse
        // of its chance of being drawn.
        ("design_weight", DataType::Float64, true),
        ("reason", text(), false),
        ("model_version", text(), false),
        ("seed", DataType::Int64, false),
        ("strategy", text(), false),
        ("explore", DataType::Float64, false),
    ]
}

/// `risk.selections`: the items selected for control, per day.
pub static SELECTIONS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    fields(
        &[
            ("selection_date", DataType::Date32, false),
            ("declaration_id", text(), false),
            ("item_no", DataType::Int32, false),
            ("office_code", text(), true),
            ("importer_id", text(), true),
            // red (physical) or yellow (documentary).
            ("lane", text(), false),
            // model, random or novelty.
            ("selected_by", text(), false),
            ("rank", DataType::Int64, false),
            ("fraud_probability", DataType::Float64, true),
            ("expected_revenue", DataType::Float64, true),
        ]
        .into_iter()
        .chain(choice_columns())
        .collect::<Vec<_>>(),
    )
});

/// Published trader audit selections (`aduana audits`), one file per month:
/// `risk/audit_selections/month=YYYY-MM/selection.parquet`.
pub const AUDIT_SELECTIONS_DIR: &str = "risk/audit_selections";

/// `risk.audit_selections`: the importers selected for post-clearance
/// audit (the blue lane), per month.
pub static AUDIT_SELECTIONS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    fields(
        &[
            // YYYY-MM
            ("month", text(), false),
            ("importer_id", text(), false),
            ("lane", text(), false),
            // model, random or novelty.
            ("selected_by", text(), false),
            ("rank", DataType::Int64, false),
            // Over the 12 months before the month.
            ("items", DataType::Int64, false),
            ("expected_revenue_at_risk", DataType::Float64, true),
        ]
        .into_iter()
        .chain(choice_columns())
        .collect::<Vec<_>>(),
    )
});

/// The month's file of `risk.audit_selections`, relative to `root`.
pub fn audit_selection_file(root: &str, year: i32, month: u32) -> String {
    join(
        root,
        &format!("{AUDIT_SELECTIONS_DIR}/month={year}-{month:02}/{SELECTION_FILE}"),
    )
}

/// The day's file of `risk.selections`, relative to `root`.
pub fn selection_file(root: &str, day: chrono::NaiveDate) -> String {
    join(
        root,
        &format!("{SELECTIONS_DIR}/selection_date={day}/{SELECTION_FILE}"),
    )
}

/// The published selection files under `root`'s `dir` (`SELECTIONS_DIR`
/// or `AUDIT_SELECTIONS_DIR`; paths in the store).
pub async fn list_selections(location: &Location, root: &str, dir: &str) -> Result<Vec<Path>> {
    use futures::TryStreamExt;
    let prefix = location.child(&join(root, dir));
    let mut files: Vec<Path> = location
        .store
        .list(Some(&prefix))
        .try_filter_map(|meta| async move {
            Ok(meta
                .location
                .as_ref()
                .ends_with(SELECTION_FILE)
                .then_some(meta.location))
        })
        .try_collect()
        .await
        .map_err(|source| WarehouseError::Storage {
            location: location.url_of(&prefix, true),
            source,
        })?;
    files.sort();
    Ok(files)
}

/// `risk.publication`: what the published risk tables are (one row, none
/// before the first refresh), so a report or dashboard can say which run
/// and model version its numbers come from.
pub static PUBLICATION_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    fields(&[
        ("run_id", DataType::Utf8, false),
        ("published_at", DataType::Utf8, false),
        ("model_version", DataType::Utf8, false),
        ("as_of", DataType::Utf8, true),
        ("partitions", DataType::Int64, false),
        ("first_partition", DataType::Utf8, true),
        ("last_partition", DataType::Utf8, true),
        ("rows_in", DataType::Int64, false),
        ("scored", DataType::Int64, false),
        ("rejected", DataType::Int64, false),
    ])
});

fn publication_batch(snapshot: Option<&Snapshot>) -> arrow::error::Result<RecordBatch> {
    let schema = PUBLICATION_SCHEMA.clone();
    let Some(s) = snapshot else {
        return Ok(RecordBatch::new_empty(schema));
    };
    let text = |v: Option<&str>| Arc::new(StringArray::from(vec![v])) as ArrayRef;
    let count = |f: fn(&PartitionState) -> u64| {
        let total: u64 = s.partitions.values().map(f).sum();
        Arc::new(Int64Array::from(vec![total as i64])) as ArrayRef
    };
    RecordBatch::try_new(
        schema,
        vec![
            text(Some(&s.run_id)),
            text(Some(&s.published_at)),
            text(Some(&s.model_version)),
            text(s.as_of.as_deref()),
            Arc::new(Int64Array::from(vec![s.partitions.len() as i64])),
            // In calendar order: the keys sort as text (month=10 < month=2).
            text(
                s.partitions
                    .keys()
                    .min_by_key(|k| k.parse::<crate::Partition>().ok())
                    .map(String::as_str),
            ),
            text(
                s.partitions
                    .keys()
                    .max_by_key(|k| k.parse::<crate::Partition>().ok())
                    .map(String::as_str),
            ),
            count(|p| p.rows_in),
            count(|p| p.scored),
            count(|p| p.rejected),
        ],
    )
}

/// Registers `risk.declaration_scores`, `risk.rejects` and
/// `risk.trader_risk` over exactly the files `snapshot` lists (empty
/// tables when nothing was published, so queries over them still plan),
/// and `risk.publication`.
pub(crate) fn register(
    ctx: &SessionContext,
    location: &Location,
    root: &str,
    snapshot: Option<&Snapshot>,
    selections: &[Path],
    audit_selections: &[Path],
) -> datafusion::error::Result<()> {
    let catalog_name = ctx.state().config_options().catalog.default_catalog.clone();
    let catalog = ctx.catalog(&catalog_name).ok_or_else(|| {
        datafusion::error::DataFusionError::Plan(format!("no catalog {catalog_name}"))
    })?;
    if catalog.schema(SQL_SCHEMA).is_none() {
        catalog.register_schema(SQL_SCHEMA, Arc::new(MemorySchemaProvider::new()))?;
    }
    let empty = BTreeMap::new();
    let partitions = snapshot.map_or(&empty, |s| &s.partitions);
    let scores: Vec<&str> = partitions.values().map(|p| p.scores.as_str()).collect();
    let rejects: Vec<&str> = partitions
        .values()
        .filter_map(|p| p.rejects.as_deref())
        .collect();
    let traders: Vec<&str> = partitions
        .values()
        .filter_map(|p| p.trader_risk.as_deref())
        .collect();
    for (name, files, schema) in [
        ("declaration_scores", scores, &*SCORES_SCHEMA),
        ("rejects", rejects, &*REJECTS_SCHEMA),
        ("trader_risk", traders, &*TRADER_RISK_SCHEMA),
    ] {
        let urls = files
            .iter()
            .map(|file| {
                ListingTableUrl::parse(location.url_of(&location.child(&join(root, file)), false))
            })
            .collect::<datafusion::error::Result<Vec<_>>>()?;
        let provider = files_table(urls, schema.clone())?;
        ctx.register_table(format!("{SQL_SCHEMA}.{name}"), provider)?;
    }
    for (name, files, schema) in [
        ("selections", selections, &*SELECTIONS_SCHEMA),
        (
            "audit_selections",
            audit_selections,
            &*AUDIT_SELECTIONS_SCHEMA,
        ),
    ] {
        let urls = files
            .iter()
            .map(|file| ListingTableUrl::parse(location.url_of(file, false)))
            .collect::<datafusion::error::Result<Vec<_>>>()?;
        ctx.register_table(
            format!("{SQL_SCHEMA}.{name}"),
            files_table(urls, schema.clone())?,
        )?;
    }
    let publication = publication_batch(snapshot)?;
    ctx.register_table(
        format!("{SQL_SCHEMA}.publication"),
        Arc::new(MemTable::try_new(
            publication.schema(),
            vec![vec![publication]],
        )?),
    )?;
    Ok(())
}

/// A table over an explicit list of Parquet files.
pub fn files_table(
    urls: Vec<ListingTableUrl>,
    schema: SchemaRef,
) -> datafusion::error::Result<Arc<dyn TableProvider>> {
    if urls.is_empty() {
        return Ok(Arc::new(datafusion::datasource::empty::EmptyTable::new(
            schema,
        )));
    }
    let options =
        ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .with_schema(schema);
    Ok(Arc::new(ListingTable::try_new(config)?))
}
