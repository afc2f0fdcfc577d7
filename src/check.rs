//! `aduana check`: the contract, then the data.
//!
//! Opening a warehouse checks every file's footer against the contract
//! (columns, types, layout). Footers say nothing of the rows, so `check`
//! then reads the declarations themselves: every data page of each file
//! (a corrupt page is named with its file), every row through the rules
//! the refresh rejects by (a date outside its partition, a non-finite
//! number, a missing key; `aduana_engine::validity`), and the keys for
//! duplicates. On large warehouses it reads the most recent files up to
//! [`SAMPLE_ROWS`] rows and says so; `--full` reads everything.

use std::collections::BTreeMap;

use aduana_engine::{EngineOptions, Session};
use arrow::array::{Array, AsArray};
use arrow::datatypes::Int64Type;
use clap::Args;
use datafusion::prelude::SessionContext;

use crate::cli::{Error, WarehouseArgs};

/// Rows read by a sampled check.
pub const SAMPLE_ROWS: u64 = 2_000_000;

/// The table name a file is read under while it is checked.
const FILE_TABLE: &str = "aduana_check_file";

#[derive(Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub warehouse: WarehouseArgs,
    /// Read every declarations file, not only the most recent ones
    #[arg(long)]
    pub full: bool,
}

/// What was found in the rows: per reason, the items and the first file
/// and declaration with it.
#[derive(Default)]
struct Findings {
    rejects: BTreeMap<String, (u64, String, String)>,
    unreadable: Vec<String>,
}

pub async fn run(args: CheckArgs) -> Result<(), Error> {
    let warehouse = args.warehouse.open().await?;
    println!(
        "warehouse {}: every file's columns and types conform to the contract",
        warehouse.location().display
    );
    for table in warehouse.tables() {
        let months: Vec<_> = table.files.iter().filter_map(|f| f.partition).collect();
        let span = match (months.iter().min(), months.iter().max()) {
            (Some(a), Some(b)) => format!(", {} to {}", a.label(), b.label()),
            _ => String::new(),
        };
        let mapped = if table.mapping.is_some() {
            ", mapped by config"
        } else {
            ""
        };
        println!(
            "  {:<28} {:>12} rows in {} file(s){span}{mapped}",
            table.contract.qualified_name(),
            table.rows(),
            table.files.len()
        );
    }
    for contract in aduana_warehouse::contract::TABLES {
        if contract.optional && warehouse.table(contract.name).is_none() {
            println!(
                "  {:<28} missing (optional, at {}): {}",
                contract.qualified_name(),
                contract.path,
                what_is_missing(contract.name)
            );
        }
    }
    let Some(declarations) = warehouse.table("declarations").cloned() else {
        return Ok(());
    };
    // The most recent files first: they are what the next refresh scores.
    let mut files = declarations.files.clone();
    files.sort_by(|a, b| {
        b.partition
            .cmp(&a.partition)
            .then(b.meta.location.cmp(&a.meta.location))
    });
    let total_rows: u64 = files.iter().map(|f| f.rows).sum();
    let mut read_rows = 0;
    let chosen: Vec<_> = files
        .into_iter()
        .take_while(|f| {
            let take = args.full || read_rows < SAMPLE_ROWS;
            read_rows += if take { f.rows } else { 0 };
            take
        })
        .collect();
    let session = Session::open(
        warehouse.clone(),
        &EngineOptions {
            skip_model: true,
            ..Default::default()
        },
    )
    .await?;
    let ctx = session.context();
    let mut findings = Findings::default();
    for file in &chosen {
        let name = warehouse.location().relative(&file.meta.location);
        if let Err(e) = check_file(ctx, &warehouse, file, &name, &mut findings).await {
            let message = crate::one_line(&e.to_string());
            let hint = date_format_hint(declarations.mapping.as_ref(), &message);
            findings.unreadable.push(format!("{name}: {message}{hint}"));
        }
        let _ = ctx.deregister_table(FILE_TABLE);
    }
    let locations: Vec<_> = chosen.iter().map(|f| f.meta.location.clone()).collect();
    let duplicates = if findings.unreadable.is_empty() {
        duplicate_keys(ctx, &warehouse, &locations).await?
    } else {
        0
    };

    let sampled = if chosen.len() < declarations.files.len() {
        format!(
            " (the most recent; `aduana check --full` reads all {} files, {total_rows} rows)",
            declarations.files.len()
        )
    } else {
        String::new()
    };
    println!(
        "data: read {} of {} declarations files, {read_rows} rows{sampled}",
        chosen.len(),
        declarations.files.len()
    );
    let rejected: u64 = findings.rejects.values().map(|(n, _, _)| n).sum();
    for (reason, (items, file, declaration)) in &findings.rejects {
        println!("  {items:>10} item(s): {reason} (first: {file}, declaration {declaration})");
    }
    // A whole warehouse failing one way says so a few times, not per file.
    const SHOWN_FAILURES: usize = 3;
    for failure in findings.unreadable.iter().take(SHOWN_FAILURES) {
        println!("  unreadable: {failure}");
    }
    if findings.unreadable.len() > SHOWN_FAILURES {
        println!(
            "  unreadable: {} more file(s)",
            findings.unreadable.len() - SHOWN_FAILURES
        );
    }
    if duplicates > 0 {
        println!(
            "  {duplicates:>10} (declaration_id, item_no) key(s) appear more than once: their items would be scored and counted twice"
        );
    }
    if rejected == 0 && findings.unreadable.is_empty() && duplicates == 0 {
        println!("  every row read can be scored; no duplicate keys");
        return Ok(());
    }
    Err(format!(
        "the data does not conform: {rejected} item(s) the refresh would reject, {} unreadable \
         file(s), {duplicates} duplicate key(s) (listed above)",
        findings.unreadable.len()
    )
    .into())
}

/// When a file failed on a date its mapping parses with a format: which
/// column and which setting, so the fix is in the config and not the data.
fn date_format_hint(
    mapping: Option<&aduana_warehouse::config::TableMapping>,
    message: &str,
) -> String {
    use aduana_warehouse::config::ColumnSource;
    let Some(mapping) = mapping else {
        return String::new();
    };
    for (column, source) in &mapping.columns {
        if let ColumnSource::Mapped(mapped) = source
            && let Some(format) = &mapped.format
            && message.contains(&format!("using format '{format}'"))
        {
            return format!(
                " (the dates of {column} do not have the format {format:?} its mapping in \
                 aduana.toml gives: [tables.declarations.columns] {column} = {{ ..., format = \
                 \"...\" }} must match how the files write them)"
            );
        }
    }
    String::new()
}

/// What a warehouse without the optional table `name` goes without.
fn what_is_missing(name: &str) -> &'static str {
    match name {
        "inspections" => {
            "no learned model (risk_score is the unsupervised combination), no hit rates or \
             inspection histories; reports on inspections and selection monitoring have nothing \
             to read"
        }
        "hs_nomenclature" => {
            "no product descriptions, and the description classifier learns from declarations \
             alone"
        }
        "tariff" => {
            "no duty rates: revenue at risk and the duty incentive of a misclassification use \
             the declared duties only"
        }
        "trade_remedies" => "origin_risk has no anti-dumping or countervailing measures to weigh",
        "traders" => {
            "no trader names, AEO status or sector on the dashboard; AEO traders are not weighted \
             down in selection"
        }
        _ => "an optional table of the contract",
    }
}

/// Reads one file through the reject rules, with its partition's year and
/// month as literals (a table over one file has no partition columns).
async fn check_file(
    ctx: &SessionContext,
    warehouse: &aduana_warehouse::Warehouse,
    file: &aduana_warehouse::DataFile,
    name: &str,
    findings: &mut Findings,
) -> Result<(), Error> {
    let table = warehouse
        .table_over_files(
            ctx,
            "declarations",
            std::slice::from_ref(&file.meta.location),
        )?
        .ok_or("no declarations table")?;
    ctx.register_table(FILE_TABLE, table)?;
    let (year, month) = match file.partition {
        Some(p) => (p.year.to_string(), p.month.to_string()),
        None => (
            "date_part('year', declaration_date)".into(),
            "date_part('month', declaration_date)".into(),
        ),
    };
    let reason = aduana_engine::validity::reject_reason_in(&year, &month);
    let sql = format!(
        "SELECT reason, COUNT(*) AS items, MIN(declaration_id) AS example
         FROM (SELECT {reason} AS reason, declaration_id FROM {FILE_TABLE})
         WHERE reason IS NOT NULL GROUP BY reason"
    );
    let batches = ctx.sql(&sql).await?.collect().await?;
    for batch in batches {
        let reasons = arrow::compute::cast(batch.column(0), &arrow::datatypes::DataType::Utf8)?;
        let examples = arrow::compute::cast(batch.column(2), &arrow::datatypes::DataType::Utf8)?;
        let (reasons, examples) = (reasons.as_string::<i32>(), examples.as_string::<i32>());
        let items = batch.column(1).as_primitive::<Int64Type>();
        for row in 0..batch.num_rows() {
            let example = if examples.is_null(row) {
                "(none)".to_string()
            } else {
                examples.value(row).to_string()
            };
            let entry = findings
                .rejects
                .entry(reasons.value(row).to_string())
                .or_insert((0, name.to_string(), example));
            entry.0 += items.value(row) as u64;
        }
    }
    Ok(())
}

/// How many (declaration_id, item_no) keys appear more than once in `files`.
async fn duplicate_keys(
    ctx: &SessionContext,
    warehouse: &aduana_warehouse::Warehouse,
    files: &[object_store::path::Path],
) -> Result<u64, Error> {
    let Some(table) = warehouse.table_over_files(ctx, "declarations", files)? else {
        return Ok(0);
    };
    ctx.register_table(FILE_TABLE, table)?;
    let batches = ctx
        .sql(&format!(
            "SELECT COUNT(*) FROM (SELECT declaration_id, item_no FROM {FILE_TABLE}
             WHERE declaration_id IS NOT NULL AND item_no IS NOT NULL
             GROUP BY declaration_id, item_no HAVING COUNT(*) > 1)"
        ))
        .await?
        .collect()
        .await?;
    let _ = ctx.deregister_table(FILE_TABLE);
    Ok(batches[0].column(0).as_primitive::<Int64Type>().value(0) as u64)
}
