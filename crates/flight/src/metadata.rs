//! What BI drivers read before they run anything: server facts (GetSqlInfo,
//! which DBeaver and Tableau fetch first), the types (GetXdbcTypeInfo, for
//! Power BI's ADBC path), and the catalog tree (GetCatalogs, GetDbSchemas,
//! GetTables), built with arrow-flight's own builders (they apply the
//! catalog, pattern and table type filters).

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow_flight::sql::metadata::{
    GetCatalogsBuilder, GetDbSchemasBuilder, GetTablesBuilder, SqlInfoData, SqlInfoDataBuilder,
    XdbcTypeInfo, XdbcTypeInfoData, XdbcTypeInfoDataBuilder,
};
use arrow_flight::sql::{
    Nullable, Searchable, SqlInfo, SqlNullOrdering, SqlSupportedCaseSensitivity,
    SqlSupportedTransaction, SupportedSqlGrammar, XdbcDataType, XdbcDatetimeSubcode,
};
use datafusion::catalog::{SchemaProvider, TableProvider};
use datafusion::datasource::TableType;
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;

/// The keywords DataFusion reserves beyond SQL:2003's (JDBC's
/// `getSQLKeywords`); every function is listed under its family.
const EXTRA_KEYWORDS: &[&str] = &[
    "EXPLAIN", "ANALYZE", "DESCRIBE", "SHOW", "QUALIFY", "ILIKE", "UNNEST",
];

pub fn sql_info(statement_timeout_ms: i32, version: &str) -> SqlInfoData {
    let mut info = SqlInfoDataBuilder::new();
    info.append(SqlInfo::FlightSqlServerName, "Aduana");
    info.append(SqlInfo::FlightSqlServerVersion, version);
    info.append(SqlInfo::FlightSqlServerArrowVersion, "1.3");
    info.append(SqlInfo::FlightSqlServerReadOnly, true);
    info.append(SqlInfo::FlightSqlServerSql, true);
    info.append(SqlInfo::FlightSqlServerSubstrait, false);
    info.append(
        SqlInfo::FlightSqlServerTransaction,
        SqlSupportedTransaction::None as i32,
    );
    info.append(SqlInfo::FlightSqlServerCancel, true);
    info.append(SqlInfo::FlightSqlServerBulkIngestion, false);
    info.append(SqlInfo::FlightSqlServerIngestTransactionsSupported, false);
    info.append(
        SqlInfo::FlightSqlServerStatementTimeout,
        statement_timeout_ms,
    );
    info.append(SqlInfo::FlightSqlServerTransactionTimeout, 0);
    info.append(SqlInfo::SqlDdlCatalog, false);
    info.append(SqlInfo::SqlDdlSchema, false);
    info.append(SqlInfo::SqlDdlTable, false);
    // Unquoted identifiers are folded to lower case; quoted ones are kept.
    info.append(
        SqlInfo::SqlIdentifierCase,
        SqlSupportedCaseSensitivity::SqlCaseSensitivityLowercase as i32,
    );
    info.append(SqlInfo::SqlIdentifierQuoteChar, "\"");
    info.append(
        SqlInfo::SqlQuotedIdentifierCase,
        SqlSupportedCaseSensitivity::SqlCaseSensitivityCaseInsensitive as i32,
    );
    info.append(SqlInfo::SqlAllTablesAreSelectable, true);
    info.append(
        SqlInfo::SqlNullOrdering,
        SqlNullOrdering::SqlNullsSortedHigh as i32,
    );
    info.append(SqlInfo::SqlKeywords, EXTRA_KEYWORDS);
    info.append(
        SqlInfo::SqlNumericFunctions,
        &[
            "abs", "acos", "asin", "atan", "atan2", "cbrt", "ceil", "cos", "degrees", "exp",
            "floor", "ln", "log", "log10", "log2", "pi", "power", "radians", "random", "round",
            "signum", "sin", "sqrt", "tan", "trunc",
        ][..],
    );
    info.append(
        SqlInfo::SqlStringFunctions,
        &[
            "ascii",
            "btrim",
            "char_length",
            "concat",
            "concat_ws",
            "initcap",
            "left",
            "length",
            "lower",
            "lpad",
            "ltrim",
            "position",
            "repeat",
            "replace",
            "reverse",
            "right",
            "rpad",
            "rtrim",
            "split_part",
            "starts_with",
            "strpos",
            "substr",
            "substring",
            "translate",
            "trim",
            "upper",
        ][..],
    );
    info.append(
        SqlInfo::SqlSystemFunctions,
        &["coalesce", "nullif", "arrow_typeof"][..],
    );
    info.append(
        SqlInfo::SqlDatetimeFunctions,
        &[
            "current_date",
            "current_time",
            "date_bin",
            "date_part",
            "date_trunc",
            "extract",
            "now",
            "to_date",
            "to_timestamp",
        ][..],
    );
    info.append(SqlInfo::SqlSearchStringEscape, "\\");
    info.append(SqlInfo::SqlExtraNameCharacters, "");
    info.append(SqlInfo::SqlSupportsColumnAliasing, true);
    info.append(SqlInfo::SqlNullPlusNullIsNull, true);
    info.append(SqlInfo::SqlSupportsTableCorrelationNames, true);
    info.append(SqlInfo::SqlSupportsDifferentTableCorrelationNames, false);
    info.append(SqlInfo::SqlSupportsExpressionsInOrderBy, true);
    info.append(SqlInfo::SqlSupportsOrderByUnrelated, true);
    info.append(SqlInfo::SqlSupportsLikeEscapeClause, true);
    info.append(SqlInfo::SqlSupportsNonNullableColumns, true);
    info.append(
        SqlInfo::SqlSupportedGrammar,
        SupportedSqlGrammar::SqlCoreGrammar as i32,
    );
    info.append(SqlInfo::SqlSupportsIntegrityEnhancementFacility, false);
    info.append(SqlInfo::SqlSchemaTerm, "schema");
    info.append(SqlInfo::SqlProcedureTerm, "procedure");
    info.append(SqlInfo::SqlCatalogTerm, "catalog");
    info.append(SqlInfo::SqlCatalogAtStart, true);
    info.append(SqlInfo::SqlSelectForUpdateSupported, false);
    info.append(SqlInfo::SqlStoredProceduresSupported, false);
    info.append(SqlInfo::SqlCorrelatedSubqueriesSupported, true);
    info.append(SqlInfo::SqlMaxColumnNameLength, 0i64);
    info.append(SqlInfo::SqlMaxTableNameLength, 0i64);
    info.append(SqlInfo::SqlTransactionsSupported, false);
    info.append(SqlInfo::SqlBatchUpdatesSupported, false);
    info.append(SqlInfo::SqlSavepointsSupported, false);
    info.append(SqlInfo::SqlNamedParametersSupported, true);
    info.append(SqlInfo::SqlStoredFunctionsUsingCallSyntaxSupported, false);
    info.build().expect("static SqlInfo data is well formed")
}

fn xdbc(
    name: &str,
    data_type: XdbcDataType,
    column_size: Option<i32>,
    literal_quotes: bool,
    unsigned: Option<bool>,
    subcode: Option<XdbcDatetimeSubcode>,
    radix: Option<i32>,
) -> XdbcTypeInfo {
    let quote = literal_quotes.then(|| "'".to_string());
    XdbcTypeInfo {
        type_name: name.to_string(),
        data_type,
        column_size,
        literal_prefix: quote.clone(),
        literal_suffix: quote,
        create_params: None,
        nullable: Nullable::NullabilityNullable,
        case_sensitive: literal_quotes,
        searchable: Searchable::Full,
        unsigned_attribute: unsigned,
        fixed_prec_scale: false,
        auto_increment: unsigned.map(|_| false),
        local_type_name: Some(name.to_string()),
        minimum_scale: None,
        maximum_scale: None,
        sql_data_type: data_type,
        datetime_subcode: subcode,
        num_prec_radix: radix,
        interval_precision: None,
    }
}

/// The SQL types results come in, sorted by their XDBC code as the spec
/// asks.
pub fn xdbc_type_info() -> XdbcTypeInfoData {
    use XdbcDataType as T;
    let mut types = vec![
        xdbc(
            "BIGINT",
            T::XdbcBigint,
            Some(19),
            false,
            Some(false),
            None,
            Some(10),
        ),
        xdbc(
            "TINYINT",
            T::XdbcTinyint,
            Some(3),
            false,
            Some(false),
            None,
            Some(10),
        ),
        xdbc("BOOLEAN", T::XdbcBit, Some(1), false, None, None, None),
        xdbc("VARBINARY", T::XdbcVarbinary, None, false, None, None, None),
        xdbc("VARCHAR", T::XdbcVarchar, None, true, None, None, None),
        {
            let mut decimal = xdbc(
                "DECIMAL",
                T::XdbcDecimal,
                Some(38),
                false,
                Some(false),
                None,
                Some(10),
            );
            decimal.create_params = Some(vec!["precision".into(), "scale".into()]);
            decimal.fixed_prec_scale = true;
            decimal.minimum_scale = Some(0);
            decimal.maximum_scale = Some(38);
            decimal
        },
        xdbc(
            "INTEGER",
            T::XdbcInteger,
            Some(10),
            false,
            Some(false),
            None,
            Some(10),
        ),
        xdbc(
            "SMALLINT",
            T::XdbcSmallint,
            Some(5),
            false,
            Some(false),
            None,
            Some(10),
        ),
        xdbc(
            "FLOAT",
            T::XdbcFloat,
            Some(7),
            false,
            Some(false),
            None,
            Some(2),
        ),
        xdbc(
            "DOUBLE",
            T::XdbcDouble,
            Some(15),
            false,
            Some(false),
            None,
            Some(2),
        ),
        xdbc(
            "DATE",
            T::XdbcDate,
            Some(10),
            true,
            None,
            Some(XdbcDatetimeSubcode::XdbcSubcodeYear),
            None,
        ),
        xdbc(
            "TIMESTAMP",
            T::XdbcTimestamp,
            Some(29),
            true,
            None,
            Some(XdbcDatetimeSubcode::XdbcSubcodeTimestamp),
            None,
        ),
    ];
    types.sort_by_key(|t| t.data_type as i32);
    let mut builder = XdbcTypeInfoDataBuilder::new();
    for t in types {
        builder.append(t);
    }
    builder.build().expect("static type info is well formed")
}

/// Strings and binaries as clients can read them: views become plain
/// arrays, dictionaries their values (the encoder would hydrate them
/// anyway, and the announced schema must be what is sent).
pub fn client_type(data_type: &DataType, keep_views: bool) -> DataType {
    match data_type {
        DataType::Utf8View if !keep_views => DataType::Utf8,
        DataType::BinaryView if !keep_views => DataType::Binary,
        DataType::Dictionary(_, values) => client_type(values, keep_views),
        DataType::List(field) => DataType::List(Arc::new(client_field(field, keep_views))),
        DataType::LargeList(field) => {
            DataType::LargeList(Arc::new(client_field(field, keep_views)))
        }
        DataType::Struct(fields) => DataType::Struct(
            fields
                .iter()
                .map(|f| Arc::new(client_field(f, keep_views)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn client_field(field: &Field, keep_views: bool) -> Field {
    field
        .clone()
        .with_data_type(client_type(field.data_type(), keep_views))
}

pub fn client_schema(schema: &Schema, keep_views: bool) -> SchemaRef {
    Arc::new(Schema::new_with_metadata(
        schema
            .fields()
            .iter()
            .map(|f| Arc::new(client_field(f, keep_views)))
            .collect::<Vec<_>>(),
        schema.metadata().clone(),
    ))
}

pub fn table_type_name(table_type: TableType) -> &'static str {
    match table_type {
        TableType::Base => "TABLE",
        TableType::View => "VIEW",
        TableType::Temporary => "LOCAL TEMPORARY",
    }
}

pub fn catalogs(ctx: &SessionContext) -> GetCatalogsBuilder {
    let mut builder = GetCatalogsBuilder::new();
    let mut names = ctx.catalog_names();
    names.sort();
    for name in names {
        builder.append(name);
    }
    builder
}

/// Every (catalog, schema name, schema), sorted by name.
fn sorted_schemas(ctx: &SessionContext) -> Vec<(String, String, Arc<dyn SchemaProvider>)> {
    let mut catalogs = ctx.catalog_names();
    catalogs.sort();
    let mut out = Vec::new();
    for catalog_name in catalogs {
        let Some(catalog) = ctx.catalog(&catalog_name) else {
            continue;
        };
        let mut names = catalog.schema_names();
        names.sort();
        for name in names {
            if let Some(schema) = catalog.schema(&name) {
                out.push((catalog_name.clone(), name, schema));
            }
        }
    }
    out
}

pub fn db_schemas(ctx: &SessionContext, mut builder: GetDbSchemasBuilder) -> GetDbSchemasBuilder {
    for (catalog_name, schema_name, _) in sorted_schemas(ctx) {
        builder.append(&catalog_name, schema_name);
    }
    builder
}

/// Every table and view, with its schema as clients will receive it (the
/// builder filters; a table's schema is looked up only when asked for).
pub async fn tables(
    ctx: &SessionContext,
    mut builder: GetTablesBuilder,
    keep_views: bool,
) -> datafusion::error::Result<GetTablesBuilder> {
    let empty = Schema::empty();
    for (catalog_name, schema_name, schema) in sorted_schemas(ctx) {
        let mut names = schema.table_names();
        names.sort();
        for name in names {
            let Some(table) = schema.table(&name).await? else {
                continue;
            };
            let table: Arc<dyn TableProvider> = table;
            let kind = table_type_name(table.table_type());
            let client;
            let announced = if builder.include_schema() {
                client = client_schema(&table.schema(), keep_views);
                client.as_ref()
            } else {
                &empty
            };
            builder
                .append(&catalog_name, &schema_name, &name, kind, announced)
                .map_err(|e| DataFusionError::External(Box::new(e)))?;
        }
    }
    Ok(builder)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_become_plain_strings() {
        let schema = Schema::new(vec![
            Field::new("a", DataType::Utf8View, true),
            Field::new(
                "b",
                DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8View)),
                false,
            ),
            Field::new("c", DataType::Int64, false),
        ]);
        let client = client_schema(&schema, false);
        assert_eq!(client.field(0).data_type(), &DataType::Utf8);
        assert_eq!(client.field(1).data_type(), &DataType::Utf8);
        assert!(!client.field(1).is_nullable());
        assert_eq!(client.field(2).data_type(), &DataType::Int64);
        let kept = client_schema(&schema, true);
        assert_eq!(kept.field(0).data_type(), &DataType::Utf8View);
    }

    #[test]
    fn static_metadata_builds() {
        let info = sql_info(60_000, "0.1.0");
        let batch = info
            .record_batch([SqlInfo::FlightSqlServerName as u32])
            .unwrap();
        assert_eq!(batch.num_rows(), 1);
        let types = xdbc_type_info();
        assert_eq!(types.record_batch(None).unwrap().num_rows(), 12);
    }
}
