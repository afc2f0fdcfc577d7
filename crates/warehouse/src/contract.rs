//! The warehouse contract (`shared/contract/warehouse.md`) as data: every
//! table Aduana reads, where it lives, its columns, their canonical Arrow
//! types and the physical variants a reader must tolerate.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// Money columns: customs value, duties, recovered revenue.
pub const MONEY_TYPE: DataType = DataType::Decimal128(18, 2);

/// The logical kind of a contract column. Each kind has one canonical Arrow
/// type (what Aduana's tables expose) and a set of accepted physical types
/// (what files may contain; they are cast on read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// Free or coded text. Canonical `Utf8View`, the type DataFusion reads
    /// Parquet strings as, so the common case needs no cast.
    Text,
    Int32,
    Float64,
    Boolean,
    /// A calendar date, `Date32`; timestamps are accepted and truncated.
    Date,
    /// `Decimal128(18,2)`; `Float64` and narrower decimals are accepted.
    Money,
}

impl ColumnKind {
    pub fn canonical_type(self) -> DataType {
        match self {
            ColumnKind::Text => DataType::Utf8View,
            ColumnKind::Int32 => DataType::Int32,
            ColumnKind::Float64 => DataType::Float64,
            ColumnKind::Boolean => DataType::Boolean,
            ColumnKind::Date => DataType::Date32,
            ColumnKind::Money => MONEY_TYPE,
        }
    }

    /// The contract's name for the type, used in error messages.
    pub fn contract_name(self) -> &'static str {
        match self {
            ColumnKind::Text => "Utf8 (or Utf8View, LargeUtf8)",
            ColumnKind::Int32 => "Int32",
            ColumnKind::Float64 => "Float64",
            ColumnKind::Boolean => "Boolean",
            ColumnKind::Date => "Date32 (or Timestamp)",
            ColumnKind::Money => "Decimal128(18,2) (or Float64)",
        }
    }

    /// Whether a file column of type `actual` can be read as this kind
    /// without losing information the contract cares about.
    pub fn accepts(self, actual: &DataType) -> bool {
        use DataType::*;
        match (self, actual) {
            (ColumnKind::Text, Utf8 | Utf8View | LargeUtf8) => true,
            // pandas/pyarrow categoricals arrive as dictionaries of strings.
            (ColumnKind::Text, Dictionary(_, value)) => {
                matches!(value.as_ref(), Utf8 | Utf8View | LargeUtf8)
            }
            // Narrower integers widen losslessly; Int64 does not fit and must
            // be cast explicitly in the warehouse config.
            (ColumnKind::Int32, Int8 | Int16 | Int32 | UInt8 | UInt16) => true,
            (ColumnKind::Float64, Float32 | Float64) => true,
            (ColumnKind::Boolean, Boolean) => true,
            (ColumnKind::Date, Date32 | Date64 | Timestamp(_, _)) => true,
            (ColumnKind::Money, Float64) => true,
            // Any decimal that fits 16 integer digits and at most 2 decimals
            // converts exactly to Decimal128(18,2).
            (ColumnKind::Money, Decimal128(p, s)) => *s >= 0 && *s <= 2 && (*p as i8 - *s) <= 16,
            _ => false,
        }
    }
}

/// One column of a contract table.
#[derive(Debug, Clone, Copy)]
pub struct ColumnContract {
    pub name: &'static str,
    pub kind: ColumnKind,
    /// The contract says the value may not be null.
    pub required: bool,
}

/// How a table's files are laid out under its folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Hive partitions `year=YYYY/month=M/` are mandatory (declarations).
    PartitionedByMonth,
    /// Either flat files or `year=/month=` partitions (inspections).
    OptionallyPartitionedByMonth,
    /// A single Parquet file (`reference/*.parquet`).
    SingleFile,
}

/// A table of the contract.
#[derive(Debug, Clone, Copy)]
pub struct TableContract {
    /// Short name used in config files and messages (`declarations`, `tariff`).
    pub name: &'static str,
    /// SQL schema the table is registered in (`public` or `reference`).
    pub sql_schema: &'static str,
    /// Path relative to the warehouse root: a folder, or a file for
    /// [`Layout::SingleFile`].
    pub path: &'static str,
    pub layout: Layout,
    /// Whether a warehouse without this table is valid.
    pub optional: bool,
    pub columns: &'static [ColumnContract],
}

/// The Hive partition columns of month-partitioned tables.
pub const PARTITION_COLUMNS: [&str; 2] = ["year", "month"];

impl TableContract {
    /// `declarations`, `reference.tariff`.
    pub fn qualified_name(&self) -> String {
        if self.sql_schema == DEFAULT_SCHEMA {
            self.name.to_string()
        } else {
            format!("{}.{}", self.sql_schema, self.name)
        }
    }

    pub fn column(&self, name: &str) -> Option<&'static ColumnContract> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The schema of the data columns as Aduana exposes them. Every field is
    /// nullable: "not null" is a rule on the data, checked from Parquet
    /// statistics at open, and declaring it to the optimizer on unverified
    /// files could give wrong answers.
    pub fn file_schema(&self) -> SchemaRef {
        Arc::new(Schema::new(
            self.columns
                .iter()
                .map(|c| Field::new(c.name, c.kind.canonical_type(), true))
                .collect::<Vec<_>>(),
        ))
    }

    pub fn is_partitioned_layout(&self) -> bool {
        matches!(
            self.layout,
            Layout::PartitionedByMonth | Layout::OptionallyPartitionedByMonth
        )
    }
}

const fn col(name: &'static str, kind: ColumnKind, required: bool) -> ColumnContract {
    ColumnContract {
        name,
        kind,
        required,
    }
}

use ColumnKind::*;

/// The SQL schema of the core tables (declarations, inspections), where
/// unqualified names resolve.
pub const DEFAULT_SCHEMA: &str = "public";

pub const DECLARATIONS: TableContract = TableContract {
    name: "declarations",
    sql_schema: DEFAULT_SCHEMA,
    path: "declarations",
    layout: Layout::PartitionedByMonth,
    optional: false,
    columns: &[
        col("declaration_id", Text, true),
        col("item_no", Int32, true),
        col("declaration_date", Date, true),
        col("office_code", Text, false),
        col("regime", Text, false),
        col("importer_id", Text, true),
        col("declarant_id", Text, false),
        col("supplier_id", Text, false),
        col("hs_code", Text, true),
        col("description", Text, false),
        col("origin_country", Text, false),
        col("export_country", Text, false),
        col("preference_code", Text, false),
        col("quantity", Float64, false),
        col("quantity_unit", Text, false),
        col("net_mass_kg", Float64, false),
        col("gross_mass_kg", Float64, false),
        col("customs_value", Money, true),
        col("duty_rate", Float64, false),
        col("duties_paid", Money, false),
        col("transport_mode", Text, false),
        col("lane", Text, false),
    ],
};

pub const INSPECTIONS: TableContract = TableContract {
    name: "inspections",
    sql_schema: DEFAULT_SCHEMA,
    path: "inspections",
    layout: Layout::OptionallyPartitionedByMonth,
    optional: true,
    columns: &[
        col("declaration_id", Text, true),
        col("item_no", Int32, false),
        col("inspected_on", Date, true),
        col("kind", Text, false),
        col("result", Text, true),
        col("fraud_type", Text, false),
        col("additional_revenue", Money, false),
    ],
};

pub const HS_NOMENCLATURE: TableContract = TableContract {
    name: "hs_nomenclature",
    sql_schema: "reference",
    path: "reference/hs_nomenclature.parquet",
    layout: Layout::SingleFile,
    optional: true,
    columns: &[
        col("hs_code", Text, true),
        col("description", Text, false),
        col("parent", Text, false),
        col("level", Int32, false),
        col("section", Text, false),
    ],
};

pub const TARIFF: TableContract = TableContract {
    name: "tariff",
    sql_schema: "reference",
    path: "reference/tariff.parquet",
    layout: Layout::SingleFile,
    optional: true,
    columns: &[col("hs_code", Text, true), col("duty_rate", Float64, true)],
};

pub const TRADE_REMEDIES: TableContract = TableContract {
    name: "trade_remedies",
    sql_schema: "reference",
    path: "reference/trade_remedies.parquet",
    layout: Layout::SingleFile,
    optional: true,
    columns: &[
        col("hs_code", Text, true),
        col("origin_country", Text, true),
        col("measure", Text, false),
        col("additional_duty_rate", Float64, true),
        col("valid_from", Date, true),
        col("valid_to", Date, false),
    ],
};

pub const TRADERS: TableContract = TableContract {
    name: "traders",
    sql_schema: "reference",
    path: "reference/traders.parquet",
    layout: Layout::SingleFile,
    optional: true,
    columns: &[
        col("importer_id", Text, true),
        col("name", Text, false),
        col("aeo", Boolean, false),
        col("registered_on", Date, false),
        col("sector", Text, false),
    ],
};

/// Every table a warehouse may hold, in registration order.
pub const TABLES: [&TableContract; 6] = [
    &DECLARATIONS,
    &INSPECTIONS,
    &HS_NOMENCLATURE,
    &TARIFF,
    &TRADE_REMEDIES,
    &TRADERS,
];

pub fn table(name: &str) -> Option<&'static TableContract> {
    TABLES
        .iter()
        .copied()
        .find(|t| t.name == name || t.qualified_name() == name)
}

/// Convenience for messages: `Timestamp(ms)` instead of the debug form.
pub fn type_name(data_type: &DataType) -> String {
    match data_type {
        DataType::Timestamp(unit, tz) => {
            let unit = match unit {
                TimeUnit::Second => "s",
                TimeUnit::Millisecond => "ms",
                TimeUnit::Microsecond => "us",
                TimeUnit::Nanosecond => "ns",
            };
            match tz {
                Some(tz) => format!("Timestamp({unit}, {tz})"),
                None => format!("Timestamp({unit})"),
            }
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerated_variants_are_accepted() {
        assert!(Text.accepts(&DataType::LargeUtf8));
        assert!(Text.accepts(&DataType::Utf8View));
        assert!(Text.accepts(&DataType::Dictionary(
            Box::new(DataType::Int32),
            Box::new(DataType::Utf8)
        )));
        assert!(Money.accepts(&DataType::Float64));
        assert!(Money.accepts(&DataType::Decimal128(18, 2)));
        assert!(Money.accepts(&DataType::Decimal128(12, 2)));
        assert!(Date.accepts(&DataType::Timestamp(TimeUnit::Microsecond, None)));
    }

    #[test]
    fn lossy_or_wrong_types_are_refused() {
        assert!(!Int32.accepts(&DataType::Int64));
        assert!(!Int32.accepts(&DataType::Utf8));
        assert!(!Money.accepts(&DataType::Decimal128(20, 2)));
        assert!(!Money.accepts(&DataType::Decimal128(18, 4)));
        assert!(!Money.accepts(&DataType::Utf8));
        assert!(!Date.accepts(&DataType::Utf8));
        assert!(!Text.accepts(&DataType::Int32));
    }

    #[test]
    fn lookup_by_short_and_qualified_name() {
        assert_eq!(table("tariff").unwrap().name, "tariff");
        assert_eq!(table("reference.traders").unwrap().name, "traders");
        assert!(table("nope").is_none());
        assert_eq!(DECLARATIONS.qualified_name(), "declarations");
    }
}
