use datafusion::error::DataFusionError;

pub type Result<T, E = WarehouseError> = std::result::Result<T, E>;

/// Everything that can be wrong with a warehouse. Each message names the
/// table, file and column at fault, so that the person who produced the
/// export can fix it without reading Aduana's code.
#[derive(Debug, thiserror::Error)]
pub enum WarehouseError {
    #[error("invalid warehouse location {uri:?}: {message}")]
    InvalidUri { uri: String, message: String },

    #[error("cannot read {location}: {source}")]
    Storage {
        location: String,
        #[source]
        source: object_store::Error,
    },

    #[error("warehouse config {origin}: {message}")]
    Config { origin: String, message: String },

    #[error("warehouse {root} has no {table} table: expected Parquet files under {location}")]
    MissingTable {
        root: String,
        table: String,
        location: String,
    },

    #[error("table {table}: {file}: {message}")]
    Layout {
        table: String,
        file: String,
        message: String,
    },

    #[error("table {table}: {file} is not a readable Parquet file: {message}")]
    UnreadableFile {
        table: String,
        file: String,
        message: String,
    },

    #[error("table {table}: {file}: missing column {column} ({expected}){hint}")]
    MissingColumn {
        table: String,
        file: String,
        column: String,
        expected: String,
        hint: String,
    },

    #[error("table {table}: {file}: column {column} has type {actual}, expected {expected}{hint}")]
    WrongType {
        table: String,
        file: String,
        column: String,
        expected: String,
        actual: String,
        hint: String,
    },

    #[error(
        "table {table}: {file}: column {column} has {nulls} null values, but the contract requires a value in every row"
    )]
    NullsInRequired {
        table: String,
        file: String,
        column: String,
        nulls: u64,
    },

    #[error(
        "table {table}: {file}: column {column} holds {value:e}, which is not a money amount: the contract's Decimal128(18,2) holds less than 1e16 in absolute value"
    )]
    MoneyOutOfRange {
        table: String,
        file: String,
        column: String,
        value: f64,
    },

    /// An import refused, before anything was written.
    #[error("import: {0}")]
    Import(String),

    #[error("{0}")]
    DataFusion(#[from] DataFusionError),

    #[error("{0}")]
    Arrow(#[from] arrow::error::ArrowError),

    #[error("{0}")]
    Parquet(#[from] parquet::errors::ParquetError),
}
