//! `aduana demo`: the README's first command. Generates the sample
//! warehouse when it is absent and tours it with a few telling reports.

use std::io::Write;

use aduana_engine::output::{Format, write_stream};
use aduana_engine::{Session, WritePolicy};
use datafusion::prelude::ParquetReadOptions;

use crate::cli::{
    DemoArgs, Error, WarehouseArgs, print_generation, print_refresh_summary, runtime,
};

/// What the ground truth says of the fraud, and how much of it the lanes'
/// inspections found: the gap risk scoring is meant to close.
const KNOWN_FRAUD_SQL: &str = "
WITH found AS (
    SELECT declaration_id, item_no, MAX(CASE WHEN result = 'fraud' THEN 1 ELSE 0 END) AS found
    FROM inspections GROUP BY declaration_id, item_no
)
SELECT t.fraud_detail AS fraud,
       COUNT(*) AS items,
       SUM(t.revenue_loss) AS revenue_loss,
       COALESCE(SUM(f.found), 0) AS found_by_inspections,
       round(100.0 * COALESCE(SUM(f.found), 0) / COUNT(*), 1) AS pct_found
FROM demo_truth t
LEFT JOIN found f ON f.declaration_id = t.declaration_id AND f.item_no = t.item_no
WHERE t.fraud
GROUP BY t.fraud_detail
ORDER BY revenue_loss DESC";

/// Importers per segment in the latest month the trader risk covers.
const TRADER_SEGMENTS_SQL: &str = "
WITH latest AS (SELECT year, month FROM risk.trader_risk ORDER BY year DESC, month DESC LIMIT 1)
SELECT t.year, t.month, t.segment, COUNT(*) AS importers, SUM(t.items) AS items,
       SUM(t.customs_value) AS customs_value,
       round(SUM(t.expected_revenue_at_risk), 0) AS expected_revenue_at_risk,
       round(AVG(t.fraud_probability), 3) AS mean_fraud_probability
FROM risk.trader_risk t JOIN latest ON t.year = latest.year AND t.month = latest.month
GROUP BY t.year, t.month, t.segment
ORDER BY CASE t.segment WHEN 'high' THEN 0 WHEN 'medium' THEN 1 ELSE 2 END";

/// The top of that month's ranking.
const TOP_TRADERS_SQL: &str = "
WITH latest AS (SELECT year, month FROM risk.trader_risk ORDER BY year DESC, month DESC LIMIT 1)
SELECT t.rank, t.importer_id, t.segment, t.items, t.customs_value,
       round(t.max_risk_score, 3) AS max_risk_score, t.high_risk_items,
       t.items_inspected, t.fraud_found, round(t.fraud_probability, 3) AS fraud_probability,
       round(t.expected_revenue_at_risk, 0) AS expected_revenue_at_risk
FROM risk.trader_risk t JOIN latest ON t.year = latest.year AND t.month = latest.month
ORDER BY t.rank LIMIT 10";

pub fn run(args: DemoArgs) -> Result<(), Error> {
    let has_data = args.dir.join("declarations").is_dir();
    if !has_data {
        eprintln!(
            "no sample warehouse at {}: generating {} declaration items (seed {}) ...",
            args.dir.display(),
            args.rows,
            args.seed
        );
        let options = aduana_synth::GenerateOptions::new(&args.dir, args.rows, args.seed);
        let summary = aduana_synth::generate(&options)?;
        print_generation(&args.dir, &summary);
        println!();
    }
    runtime()?.block_on(tour(args))
}

/// The nightly job on the sample: builds the model when there is none,
/// scores what is new and publishes the trader risk (a no-op when the
/// sample is up to date).
async fn refresh(args: &DemoArgs, warehouse: &WarehouseArgs) -> Result<(), Error> {
    let reporter = aduana_refresh::Reporter::new(aduana_refresh::LogFormat::Text);
    let options = aduana_refresh::RefreshOptions {
        engine: args.engine.options()?,
        ..Default::default()
    };
    let manifest = aduana_refresh::refresh(warehouse.open().await?, &options, &reporter).await?;
    print_refresh_summary(&manifest);
    Ok(())
}

async fn tour(args: DemoArgs) -> Result<(), Error> {
    let location = WarehouseArgs {
        warehouse: args.dir.display().to_string(),
        config: None,
        s3_endpoint: None,
        s3_region: None,
        s3_path_style: false,
        s3_allow_http: false,
    };
    refresh(&args, &location).await?;
    let warehouse = location.open().await?;
    let items: u64 = warehouse.table("declarations").map_or(0, |t| t.rows());
    let session = std::sync::Arc::new(Session::open(warehouse, &args.engine.options()?).await?);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    writeln!(
        out,
        "Aduana demo: warehouse {} with {items} declaration items",
        args.dir.display()
    )?;

    let mut shell = aduana_shell::Shell::new(session.clone(), Default::default(), false);
    for report in aduana_reports::all() {
        writeln!(out, "\n== {} ==\n{}", report.title, report.description)?;
        if let Some(required) = report.params.iter().find(|p| p.default.is_none()) {
            writeln!(
                out,
                "(needs a value: aduana report {} -w {} -p {}=...)",
                report.name,
                args.dir.display(),
                required.name
            )?;
            continue;
        }
        let started = std::time::Instant::now();
        let mut buffer = Vec::new();
        shell.report(report.name, &[], &mut buffer).await?;
        out.write_all(&buffer)?;
        writeln!(out, "({:.2} s)", started.elapsed().as_secs_f64())?;
    }

    writeln!(
        out,
        "\n== Trader segments, latest month ==\n\
         Importers by the refresh's segment (top 5% of expected revenue at risk: high, next 20%: medium)."
    )?;
    show(&session, TRADER_SEGMENTS_SQL, &mut out).await?;
    writeln!(
        out,
        "\n== Audit candidates, latest month ==\n\
         The importers with most expected revenue at risk (fraud probability x revenue at risk)."
    )?;
    show(&session, TOP_TRADERS_SQL, &mut out).await?;

    let truth = args.dir.join("_truth");
    if truth.is_dir() {
        let options = ParquetReadOptions::default().table_partition_cols(vec![
            ("year".into(), arrow::datatypes::DataType::Int32),
            ("month".into(), arrow::datatypes::DataType::Int32),
        ]);
        session
            .context()
            .register_parquet("demo_truth", format!("{}/", truth.display()), options)
            .await?;
        writeln!(
            out,
            "\n== Known fraud in the sample, and how much inspections found ==\n\
             From the generator's ground truth (_truth/), which real warehouses do not have."
        )?;
        show(&session, KNOWN_FRAUD_SQL, &mut out).await?;
    }
    Ok(())
}

async fn show(session: &Session, sql: &str, out: &mut impl Write) -> Result<(), Error> {
    let started = std::time::Instant::now();
    let stream = session
        .sql(sql, WritePolicy::ReadOnly)
        .await?
        .execute_stream()
        .await?;
    let mut buffer = Vec::new();
    let rows = write_stream(Format::Table, stream, &mut buffer).await?;
    out.write_all(&buffer)?;
    writeln!(
        out,
        "{rows} rows in {:.2} s",
        started.elapsed().as_secs_f64()
    )?;
    Ok(())
}
