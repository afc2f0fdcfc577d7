//! The customs warehouse: its layout and contract, where it is stored, and
//! how its tables are registered in a DataFusion session.
//!
//! ```no_run
//! # async fn f() -> aduana_warehouse::Result<()> {
//! let warehouse = aduana_warehouse::Warehouse::open("./aduana-sample").await?;
//! let ctx = datafusion::prelude::SessionContext::new();
//! warehouse.register(&ctx)?;
//! # Ok(()) }
//! ```

pub mod config;
pub mod contract;
mod discover;
pub mod error;
pub mod import;
mod partition;
pub mod readers;
mod register;
pub mod risk;
pub mod store;

use std::path::PathBuf;

use datafusion::prelude::SessionContext;
use object_store::ObjectStoreExt;

pub use config::{StorageConfig, WarehouseConfig};
pub use discover::{DataFile, DiscoveredTable};
pub use error::{Result, WarehouseError};
pub use partition::Partition;
pub use store::Location;

/// How to open a warehouse beyond its location.
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// A local config file; otherwise `aduana.toml` at the warehouse root is
    /// used when present.
    pub config_path: Option<PathBuf>,
    /// Object-store settings from flags; they override the config file,
    /// which overrides `AWS_*` variables.
    pub storage: StorageConfig,
    /// Leave out (and list in [`DiscoveredTable::skipped`]) the files that
    /// cannot be read or break the contract, instead of failing: a server
    /// keeps serving the published risk tables and the other files when
    /// one declarations file is damaged.
    pub skip_bad_files: bool,
    /// Where the published risk tables are read from, relative to the
    /// root: `""` (default) for the warehouse's own, or a backtest's root
    /// (`risk/backtests/as_of=DATE`).
    pub risk_root: String,
}

/// An opened, validated warehouse.
#[derive(Debug, Clone)]
pub struct Warehouse {
    location: Location,
    config: WarehouseConfig,
    tables: Vec<DiscoveredTable>,
    risk_root: String,
    risk: Option<risk::Snapshot>,
    /// Files of `risk.selections` when the warehouse was opened.
    selections: Vec<object_store::path::Path>,
    /// Files of `risk.audit_selections` when the warehouse was opened.
    audit_selections: Vec<object_store::path::Path>,
}

impl Warehouse {
    /// Opens the warehouse at `uri` (local path, `file://` or `s3://`).
    pub async fn open(uri: &str) -> Result<Self> {
        Self::open_with(uri, OpenOptions::default()).await
    }

    /// Opens and validates every contract table present at `uri`.
    pub async fn open_with(uri: &str, options: OpenOptions) -> Result<Self> {
        let explicit_config = match &options.config_path {
            Some(path) => {
                let origin = path.display().to_string();
                let text = std::fs::read_to_string(path).map_err(|e| WarehouseError::Config {
                    origin: origin.clone(),
                    message: format!("cannot read: {e}"),
                })?;
                Some(WarehouseConfig::parse(&text, &origin)?)
            }
            None => None,
        };
        let storage = merge_storage(
            explicit_config.as_ref().map(|c| &c.storage),
            &options.storage,
        );
        let location = Location::resolve(uri, &storage)?;
        Self::open_at(location, explicit_config, options).await
    }

    /// Opens the warehouse at an already resolved `location` (any object
    /// store: tests use an in-memory one), with `config`, or else the
    /// root's `aduana.toml` when there is one.
    pub async fn open_at(
        location: Location,
        config: Option<WarehouseConfig>,
        options: OpenOptions,
    ) -> Result<Self> {
        let config = match config {
            Some(config) => config,
            None => read_root_config(&location).await?,
        };
        let mut tables = Vec::new();
        for contract in contract::TABLES {
            let mapping = config.mapping(contract.name);
            if let Some(table) =
                discover::discover(&location, contract, mapping, options.skip_bad_files).await?
            {
                tables.push(table);
            }
        }
        let risk = risk::load_snapshot(&location, &options.risk_root).await?;
        let selections =
            risk::list_selections(&location, &options.risk_root, risk::SELECTIONS_DIR).await?;
        let audit_selections =
            risk::list_selections(&location, &options.risk_root, risk::AUDIT_SELECTIONS_DIR)
                .await?;
        Ok(Warehouse {
            selections,
            audit_selections,
            location,
            config,
            tables,
            risk_root: options.risk_root,
            risk,
        })
    }

    pub fn location(&self) -> &Location {
        &self.location
    }

    pub fn config(&self) -> &WarehouseConfig {
        &self.config
    }

    /// The tables present, in contract order (declarations first).
    pub fn tables(&self) -> &[DiscoveredTable] {
        &self.tables
    }

    pub fn table(&self, name: &str) -> Option<&DiscoveredTable> {
        self.tables
            .iter()
            .find(|t| t.contract.name == name || t.contract.qualified_name() == name)
    }

    /// The published risk tables, when a refresh ever published them.
    /// Table `name` read from only `files` (paths in the store, e.g. the
    /// ones added since a run), with the contract's columns and mapping but
    /// without the partition columns; `None` when the table is absent.
    pub fn table_over_files(
        &self,
        ctx: &SessionContext,
        name: &str,
        files: &[object_store::path::Path],
    ) -> Result<Option<std::sync::Arc<dyn datafusion::catalog::TableProvider>>> {
        let Some(table) = self.table(name) else {
            return Ok(None);
        };
        Ok(Some(register::provider(
            ctx,
            &self.location,
            table,
            Some(files),
        )?))
    }

    pub fn risk_snapshot(&self) -> Option<&risk::Snapshot> {
        self.risk.as_ref()
    }

    /// Leases the files of the published risk tables this warehouse was
    /// opened with and the model version a session loaded, for a reader
    /// that lives longer than a refresh (a server, an interactive shell),
    /// and keeps the lease alive; `None` when there is nothing to keep.
    pub async fn hold_risk_files(
        &self,
        reader: &str,
        model_version: Option<&str>,
    ) -> Result<Option<readers::LeaseHolder>> {
        if self.risk.is_none() && model_version.is_none() {
            return Ok(None);
        }
        let lease = readers::Lease::take(
            &self.location,
            &self.risk_root,
            self.risk.as_ref(),
            model_version,
            reader,
        )
        .await?;
        Ok(Some(lease.hold()))
    }

    /// The root the published risk tables (and the model they were scored
    /// with) are read under: the warehouse's own, or a backtest's.
    pub fn risk_root(&self) -> object_store::path::Path {
        self.location.child(&self.risk_root)
    }

    /// Registers the object store and every present table in `ctx`:
    /// `declarations`, `inspections`, `reference.*` and `risk.*`.
    pub fn register(&self, ctx: &SessionContext) -> Result<()> {
        ctx.register_object_store(&self.location.store_url, self.location.store.clone());
        for table in &self.tables {
            register::register(ctx, &self.location, table)?;
        }
        risk::register(
            ctx,
            &self.location,
            &self.risk_root,
            self.risk.as_ref(),
            &self.selections,
            &self.audit_selections,
        )?;
        Ok(())
    }
}

fn merge_storage(file: Option<&StorageConfig>, flags: &StorageConfig) -> StorageConfig {
    let file = file.cloned().unwrap_or_default();
    StorageConfig {
        endpoint: flags.endpoint.clone().or(file.endpoint),
        region: flags.region.clone().or(file.region),
        path_style: flags.path_style.or(file.path_style),
        allow_http: flags.allow_http.or(file.allow_http),
    }
}

/// `aduana.toml` at the warehouse root, or the default (no mapping).
async fn read_root_config(location: &Location) -> Result<WarehouseConfig> {
    let path = location.child(config::CONFIG_FILE_NAME);
    let origin = location.url_of(&path, false);
    let bytes = match location.store.get(&path).await {
        Ok(result) => result.bytes().await,
        Err(object_store::Error::NotFound { .. }) => return Ok(WarehouseConfig::default()),
        Err(e) => Err(e),
    }
    .map_err(|source| WarehouseError::Storage {
        location: origin.clone(),
        source,
    })?;
    let text = std::str::from_utf8(&bytes).map_err(|_| WarehouseError::Config {
        origin: origin.clone(),
        message: "not UTF-8 text".into(),
    })?;
    WarehouseConfig::parse(text, &origin)
}
