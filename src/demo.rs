//! `aduana demo`: the README's first command. Generates the sample
//! warehouse when it is absent, runs the nightly refresh on it, and tells
//! the story of that run in a screenful or two: what was generated, what
//! the refresh learned and scored, the strongest audit candidates with
//! their reasons, what inspections missed, and where to go next.

use std::io::Write;

use aduana_engine::output::{Format, write_stream};
use aduana_engine::{Session, WritePolicy};
use datafusion::prelude::ParquetReadOptions;

use crate::cli::{DemoArgs, Error, WarehouseArgs, runtime};
use crate::generate::print_generation;
use crate::refresh::print_refresh_summary;

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

/// What the model is, in one row.
const MODEL_SQL: &str = "
SELECT version, window_start, window_end, training_items, labelled_items, labelled_frauds,
       learned_trees, risk_score_model, learned_weight
FROM risk_model_info()";

/// Importers per segment in the latest month the trader risk covers.
const TRADER_SEGMENTS_SQL: &str = "
WITH latest AS (SELECT year, month FROM risk.trader_risk ORDER BY year DESC, month DESC LIMIT 1)
SELECT t.segment, COUNT(*) AS importers, SUM(t.items) AS items,
       round(SUM(t.expected_revenue_at_risk), 0) AS expected_revenue_at_risk
FROM risk.trader_risk t JOIN latest ON t.year = latest.year AND t.month = latest.month
GROUP BY t.segment
ORDER BY CASE t.segment WHEN 'high' THEN 0 WHEN 'medium' THEN 1 ELSE 2 END";

/// Audit candidates told in the demo.
const CANDIDATES: usize = 5;
/// Reasons are cut to this many characters in the demo (the dashboard and
/// `aduana report trader_flags` have them whole).
const REASON_CHARS: usize = 220;

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

    writeln!(out, "\n== What the refresh learned ==")?;
    show(&session, MODEL_SQL, &mut out).await?;
    writeln!(
        out,
        "\n== Trader segments, latest month ==\n\
         Importers by expected revenue at risk: the top 5% are high, the next 20% medium."
    )?;
    show(&session, TRADER_SEGMENTS_SQL, &mut out).await?;
    writeln!(
        out,
        "\n== The {CANDIDATES} strongest audit candidates (last 3 published months) =="
    )?;
    let mut first_importer = None;
    let candidates = session
        .report("trader_audit_candidates", &[("months".into(), "3".into())])
        .await?
        .limit(0, Some(CANDIDATES))?
        .collect()
        .await?;
    let mut rank = 0;
    for batch in &candidates {
        let text = |name: &str| -> Result<Vec<String>, Error> {
            let column = batch
                .column_by_name(name)
                .ok_or_else(|| format!("trader_audit_candidates has no column {name}"))?;
            let formatter = arrow::util::display::ArrayFormatter::try_new(
                column.as_ref(),
                &arrow::util::display::FormatOptions::default(),
            )?;
            Ok((0..batch.num_rows())
                .map(|i| formatter.value(i).to_string())
                .collect())
        };
        let (ids, segments, expected) = (
            text("importer_id")?,
            text("segment")?,
            text("expected_revenue_at_risk")?,
        );
        let (items, found, reasons) = (text("items")?, text("fraud_found")?, text("top_reasons")?);
        for i in 0..batch.num_rows() {
            rank += 1;
            first_importer.get_or_insert_with(|| ids[i].clone());
            // Each learned sentence says where it comes from; once is enough here.
            let said = reasons[i].replace("; learned from inspections: ", "; ");
            let reason: String = said.chars().take(REASON_CHARS).collect();
            let cut = if said.chars().count() > REASON_CHARS {
                "…"
            } else {
                ""
            };
            writeln!(
                out,
                "{rank}. {} ({} segment): expected revenue at risk {}, {} items, {} frauds found \
                 by inspections\n   why: {reason}{cut}",
                ids[i], segments[i], expected[i], items[i], found[i]
            )?;
        }
    }

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
    let dir = args.dir.display();
    let importer = first_importer.unwrap_or_else(|| "IMPORTER_ID".into());
    writeln!(
        out,
        "\n== Next ==\n\
         aduana shell -w {dir}                        SQL, \\reports and \\r NAME k=v\n\
         aduana report trader_profile -w {dir} -p importer={importer}\n\
         aduana serve -w {dir} --http 127.0.0.1:8080 --no-flight --auth none\n\
         \x20                                           the dashboard at http://127.0.0.1:8080\n\
         aduana reports                               every named report and its parameters"
    )?;
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
