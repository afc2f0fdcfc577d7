//! What can stop a refresh, and the exit code each gives.

use aduana_engine::EngineError;
use aduana_warehouse::WarehouseError;
use datafusion::error::DataFusionError;

#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    /// Another run holds the lock.
    #[error(
        "another refresh is running on this warehouse: lock {lock} taken by {holder} \
         {age_s} s ago (it is considered stale after {stale_s} s)"
    )]
    LockHeld {
        lock: String,
        holder: String,
        age_s: i64,
        stale_s: u64,
    },
    /// An input file or option that the run cannot use.
    #[error("{0}")]
    BadInput(String),
    /// Nothing to work on (a day without declarations to select from).
    #[error("{0}")]
    NoItems(String),
    /// The object store refused or failed (after its own retries).
    #[error("storage failure: {location}: {message}")]
    Storage { location: String, message: String },
    #[error("{0}")]
    Failed(String),
}

impl RefreshError {
    /// Documented in `aduana refresh --help`.
    pub fn exit_code(&self) -> u8 {
        match self {
            RefreshError::Failed(_) => 1,
            RefreshError::LockHeld { .. } => 3,
            RefreshError::BadInput(_) | RefreshError::NoItems(_) => 4,
            RefreshError::Storage { .. } => 5,
        }
    }

    /// The error of reading one declarations partition, naming it and its
    /// files (DataFusion's own errors, such as a corrupt data page, name
    /// neither).
    pub fn in_partition(self, key: &str, files: &[String]) -> Self {
        let at = format!("declarations partition {key} (files {})", files.join(", "));
        match self {
            RefreshError::Failed(message) => RefreshError::Failed(format!("{at}: {message}")),
            RefreshError::BadInput(message) => RefreshError::BadInput(format!("{at}: {message}")),
            other => other,
        }
    }

    pub fn storage(location: impl std::fmt::Display, source: impl std::fmt::Display) -> Self {
        RefreshError::Storage {
            location: location.to_string(),
            message: source.to_string(),
        }
    }
}

impl From<WarehouseError> for RefreshError {
    fn from(e: WarehouseError) -> Self {
        match e {
            WarehouseError::Storage { location, source } => RefreshError::storage(location, source),
            other => RefreshError::BadInput(other.to_string()),
        }
    }
}

impl From<DataFusionError> for RefreshError {
    fn from(e: DataFusionError) -> Self {
        match e.find_root() {
            DataFusionError::ObjectStore(source) => RefreshError::storage("object store", source),
            DataFusionError::ParquetError(_) | DataFusionError::ArrowError(..) => {
                RefreshError::BadInput(e.to_string())
            }
            _ => RefreshError::Failed(e.to_string()),
        }
    }
}

impl From<EngineError> for RefreshError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::DataFusion(e) => e.into(),
            EngineError::Warehouse(e) => e.into(),
            other => RefreshError::Failed(other.to_string()),
        }
    }
}

impl From<aduana_model::ModelError> for RefreshError {
    fn from(e: aduana_model::ModelError) -> Self {
        match e {
            aduana_model::ModelError::Storage { location, source } => {
                RefreshError::storage(location, source)
            }
            other => RefreshError::Failed(other.to_string()),
        }
    }
}

impl From<parquet::errors::ParquetError> for RefreshError {
    fn from(e: parquet::errors::ParquetError) -> Self {
        RefreshError::Failed(format!("writing Parquet: {e}"))
    }
}

impl From<arrow::error::ArrowError> for RefreshError {
    fn from(e: arrow::error::ArrowError) -> Self {
        RefreshError::Failed(e.to_string())
    }
}

pub type Result<T, E = RefreshError> = std::result::Result<T, E>;
