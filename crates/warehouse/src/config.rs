//! `aduana.toml`: how a warehouse whose files use other names or types maps
//! onto the contract, and where its object store is.
//!
//! ```toml
//! currency = "GTQ"               # ISO 4217 code money is shown in
//!
//! [storage]                      # only for s3:// warehouses
//! endpoint = "http://127.0.0.1:9000"
//! region = "us-east-1"
//! path_style = true
//!
//! [tables.declarations]
//! path = "asycuda/items"         # folder under the root (default: declarations)
//!
//! [tables.declarations.columns]
//! declaration_id = "SGD.NUMBER"                      # rename
//! item_no = { from = "ITEM.NUMBER", cast = "int32" } # rename and cast
//! declaration_date = { from = "SGD.DATE", cast = "date", format = "%d/%m/%Y" }
//! supplier_id = { null = true }                      # the export has no such column
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::contract::{self, ColumnKind};
use crate::error::{Result, WarehouseError};

/// The file name looked up at the warehouse root when no `--config` is given.
pub const CONFIG_FILE_NAME: &str = "aduana.toml";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WarehouseConfig {
    /// The ISO 4217 code of the national currency values and revenue are
    /// declared in (the contract's money columns carry none): pages and
    /// reports label money with it.
    pub currency: Option<String>,
    #[serde(default)]
    pub storage: StorageConfig,
    #[serde(default)]
    pub tables: BTreeMap<String, TableMapping>,
}

/// Object-store settings; each overrides the matching `AWS_*` variable.
/// Credentials are deliberately absent: they come from the environment
/// (or the usual AWS credential chain), never from a file in the warehouse.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    /// Path-style requests (`http://host/bucket/key`), as MinIO and most
    /// S3-compatible servers want.
    pub path_style: Option<bool>,
    pub allow_http: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableMapping {
    /// Location relative to the warehouse root, replacing the contract's.
    pub path: Option<String>,
    #[serde(default)]
    pub columns: BTreeMap<String, ColumnSource>,
}

/// Where a contract column comes from.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum ColumnSource {
    /// `hs_code = "TARIFF.CODE"`: the source column, read as it is.
    Rename(String),
    Mapped(MappedColumn),
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MappedColumn {
    /// Source column name; defaults to the contract name.
    pub from: Option<String>,
    /// Cast to the contract type, named as in the contract
    /// (`int32`, `float64`, `decimal(18,2)`, `date`, `text`, `boolean`).
    pub cast: Option<String>,
    /// For `cast = "date"` from text: a chrono format such as `%d/%m/%Y`.
    pub format: Option<String>,
    /// The source has no such column: the contract column is all nulls.
    /// Only allowed for columns the contract lets be null.
    #[serde(default)]
    pub null: bool,
}

/// A column mapping after checking it against the contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolvedSource {
    Column {
        source: String,
        /// Cast explicitly (values that do not convert fail the query).
        cast: bool,
        date_format: Option<String>,
    },
    Null,
}

impl WarehouseConfig {
    /// Parses a config file; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self> {
        let config: WarehouseConfig = toml::from_str(text).map_err(|e| WarehouseError::Config {
            origin: origin.to_string(),
            message: e.to_string(),
        })?;
        config.check(origin)?;
        Ok(config)
    }

    fn check(&self, origin: &str) -> Result<()> {
        let err = |message: String| WarehouseError::Config {
            origin: origin.to_string(),
            message,
        };
        if let Some(code) = &self.currency
            && !(code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase()))
        {
            return Err(err(format!(
                "currency = {code:?}: not an ISO 4217 code (three capital letters, e.g. \"GTQ\")"
            )));
        }
        for (table_name, mapping) in &self.tables {
            let table = contract::table(table_name).ok_or_else(|| {
                err(format!(
                    "[tables.{table_name}]: no such table in the warehouse contract (known: {})",
                    contract::TABLES.map(|t| t.name).join(", ")
                ))
            })?;
            if let Some(path) = &mapping.path
                && (path.is_empty() || path.starts_with('/') || path.split('/').any(|p| p == ".."))
            {
                return Err(err(format!(
                    "[tables.{table_name}] path = {path:?}: must be a relative path inside the warehouse"
                )));
            }
            for (column, source) in &mapping.columns {
                let contract_column = table.column(column).ok_or_else(|| {
                    err(format!(
                        "[tables.{table_name}.columns] {column}: the contract's {table_name} has no column {column}"
                    ))
                })?;
                resolve(contract_column, source)
                    .map_err(|m| err(format!("[tables.{table_name}.columns] {column}: {m}")))?;
            }
        }
        Ok(())
    }

    /// How money is labelled: the configured currency code, or "national
    /// currency" when the warehouse does not say.
    pub fn currency_label(&self) -> &str {
        self.currency.as_deref().unwrap_or("national currency")
    }

    /// The mapping of one table, if the config has one.
    pub fn mapping(&self, table: &str) -> Option<&TableMapping> {
        self.tables.get(table)
    }
}

impl TableMapping {
    /// Where contract column `name` comes from (the same name when unmapped).
    pub fn source_of(&self, column: &contract::ColumnContract) -> ResolvedSource {
        match self.columns.get(column.name) {
            None => ResolvedSource::Column {
                source: column.name.to_string(),
                cast: false,
                date_format: None,
            },
            // Checked when the config was parsed.
            Some(source) => resolve(column, source).expect("mapping validated at parse time"),
        }
    }
}

fn resolve(
    column: &contract::ColumnContract,
    source: &ColumnSource,
) -> std::result::Result<ResolvedSource, String> {
    let kind = column.kind;
    match source {
        ColumnSource::Rename(from) if from.is_empty() => Err("empty source column name".into()),
        ColumnSource::Rename(from) => Ok(ResolvedSource::Column {
            source: from.clone(),
            cast: false,
            date_format: None,
        }),
        ColumnSource::Mapped(m) if m.null => {
            if column.required {
                return Err("null = true is not allowed: the contract requires a value".into());
            }
            if m.from.is_some() || m.cast.is_some() || m.format.is_some() {
                return Err("null = true cannot be combined with from, cast or format".into());
            }
            Ok(ResolvedSource::Null)
        }
        ColumnSource::Mapped(m) => {
            let cast = match &m.cast {
                None => false,
                Some(name) => {
                    let target = parse_cast(name)?;
                    if target != kind {
                        return Err(format!(
                            "cast = {name:?} does not give the contract type {}",
                            kind.contract_name()
                        ));
                    }
                    true
                }
            };
            if m.format.is_some() && !(cast && kind == ColumnKind::Date) {
                return Err("format is only valid with cast = \"date\"".into());
            }
            Ok(ResolvedSource::Column {
                source: m.from.clone().unwrap_or_else(|| column.name.to_string()),
                cast,
                date_format: m.format.clone(),
            })
        }
    }
}

fn parse_cast(name: &str) -> std::result::Result<ColumnKind, String> {
    let normalized: String = name
        .to_ascii_lowercase()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    Ok(match normalized.as_str() {
        "text" | "utf8" | "string" | "varchar" => ColumnKind::Text,
        "int" | "int32" | "integer" => ColumnKind::Int32,
        "float" | "float64" | "double" => ColumnKind::Float64,
        "bool" | "boolean" => ColumnKind::Boolean,
        "date" | "date32" => ColumnKind::Date,
        "money" | "decimal(18,2)" => ColumnKind::Money,
        _ => {
            return Err(format!(
                "unknown cast {name:?} (use text, int32, float64, boolean, date or decimal(18,2))"
            ));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ASYCUDA: &str = r#"
        [storage]
        endpoint = "http://127.0.0.1:9000"
        path_style = true

        [tables.declarations]
        path = "sgd"
        [tables.declarations.columns]
        declaration_id = "SGD.NUMBER"
        item_no = { from = "ITEM.NUMBER", cast = "int32" }
        declaration_date = { from = "SGD.DATE", cast = "date", format = "%d/%m/%Y" }
        supplier_id = { null = true }
    "#;

    #[test]
    fn parses_renames_casts_and_nulls() {
        let config = WarehouseConfig::parse(ASYCUDA, "aduana.toml").unwrap();
        assert_eq!(config.storage.path_style, Some(true));
        let mapping = config.mapping("declarations").unwrap();
        assert_eq!(mapping.path.as_deref(), Some("sgd"));
        let item_no = contract::DECLARATIONS.column("item_no").unwrap();
        assert_eq!(
            mapping.source_of(item_no),
            ResolvedSource::Column {
                source: "ITEM.NUMBER".into(),
                cast: true,
                date_format: None
            }
        );
        let supplier = contract::DECLARATIONS.column("supplier_id").unwrap();
        assert_eq!(mapping.source_of(supplier), ResolvedSource::Null);
        let lane = contract::DECLARATIONS.column("lane").unwrap();
        assert_eq!(
            mapping.source_of(lane),
            ResolvedSource::Column {
                source: "lane".into(),
                cast: false,
                date_format: None
            }
        );
    }

    fn config_error(text: &str) -> String {
        WarehouseConfig::parse(text, "w/aduana.toml")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn bad_configs_name_the_key_at_fault() {
        let e = config_error("[tables.declaration]\n");
        assert!(
            e.contains("w/aduana.toml") && e.contains("[tables.declaration]"),
            "{e}"
        );
        let e = config_error("[tables.declarations.columns]\nvalue = \"CIF\"\n");
        assert!(e.contains("has no column value"), "{e}");
        let e = config_error("[tables.declarations.columns]\nimporter_id = { null = true }\n");
        assert!(
            e.contains("importer_id") && e.contains("requires a value"),
            "{e}"
        );
        let e = config_error(
            "[tables.declarations.columns]\nitem_no = { from = \"X\", cast = \"date\" }\n",
        );
        assert!(e.contains("item_no") && e.contains("Int32"), "{e}");
        let e = config_error(
            "[tables.declarations.columns]\nitem_no = { from = \"X\", cast = \"int64\" }\n",
        );
        assert!(e.contains("unknown cast"), "{e}");
        let e = config_error("[tables.declarations]\npath = \"../elsewhere\"\n");
        assert!(e.contains("relative path inside"), "{e}");
        let e = config_error("currency = \"quetzal\"\n");
        assert!(
            e.contains("currency = \"quetzal\"") && e.contains("ISO 4217"),
            "{e}"
        );
        assert_eq!(
            WarehouseConfig::parse("currency = \"GTQ\"\n", "w/aduana.toml")
                .unwrap()
                .currency_label(),
            "GTQ"
        );
        let e = config_error("[storage]\nsecret_access_key = \"x\"\n");
        assert!(e.contains("secret_access_key"), "{e}");
    }
}
