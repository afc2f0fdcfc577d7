//! `aduana import`: flat exports into a monthly table's layout.

use std::path::PathBuf;

use aduana_warehouse::import::{DEFAULT_DATE_FORMAT, import};
use clap::Args;

use crate::cli::{Error, WarehouseArgs};

pub const IMPORT_HELP: &str = "The files carry the contract's column names (see
`aduana check` and the warehouse contract); columns the contract makes optional
may be left out. Parquet columns of other types are converted when the value
fits; CSV is read as text and converted, dates with --date-format. Nothing is
written unless every row converts, no row appears twice (an item's
declaration_id and item_no; a control's declaration_id, item_no, inspected_on
and kind) and none is already in the warehouse. Columns the contract does not
have are left out, with a warning. A folder stands for its .parquet and .csv
files. Each month becomes one file, written whole; importing the same files
again writes nothing.

  aduana import -w W exports/sgd_2026_10.csv --date-format %d/%m/%Y
  aduana import -w W --table inspections controls.parquet";

#[derive(Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub warehouse: WarehouseArgs,
    /// The monthly table the files are rows of
    #[arg(long, default_value = "declarations", value_parser = ["declarations", "inspections"])]
    pub table: String,
    /// How CSV files write dates (chrono's strftime syntax)
    #[arg(long, default_value = DEFAULT_DATE_FORMAT, value_name = "FORMAT")]
    pub date_format: String,
    /// Parquet (.parquet) or CSV (.csv, with a header) files, or folders of them
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

pub async fn run(args: ImportArgs) -> Result<(), Error> {
    let imported = import(
        &args.warehouse.warehouse,
        args.warehouse.options(None),
        &args.table,
        &args.files,
        &args.date_format,
    )
    .await?;
    for warning in &imported.left_out {
        eprintln!("warning: {warning}");
    }
    let months = &imported.months;
    let rows: usize = months.iter().map(|m| m.rows).sum();
    let written = months.iter().filter(|m| !m.already).count();
    println!(
        "{rows} rows of {} from {} file(s): {written} month(s) written, {} already imported",
        args.table,
        imported.files.len(),
        months.len() - written
    );
    for m in months {
        let state = if m.already {
            "already there"
        } else {
            "written"
        };
        println!(
            "  {} {:>10} rows  {} ({state})",
            m.partition.label(),
            m.rows,
            m.file
        );
    }
    if written > 0 {
        println!("next: `aduana check` reads the rows through the refresh's rules");
    }
    Ok(())
}
