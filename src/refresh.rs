//! `aduana refresh`: the nightly job, and how its run is printed.

use crate::cli::*;

pub(crate) async fn refresh(args: RefreshArgs) -> Result<(), Error> {
    use aduana_refresh::{LogFormat, RefreshOptions, Reporter};
    let format = if args.log_format == "json" {
        LogFormat::Json
    } else {
        LogFormat::Text
    };
    let reporter = Reporter::new(format);
    let options = RefreshOptions {
        since: args.since,
        partitions: args.partitions.clone(),
        rebuild_model: args.rebuild_model,
        model_max_age_days: args.model_max_age_days,
        window_months: args.window_months,
        dry_run: args.dry_run,
        as_of: args.as_of,
        lock_timeout_s: args.lock_timeout,
        engine: args.engine.options_on(&args.cluster)?,
    };
    let run = async {
        let warehouse = args.warehouse.open().await.map_err(|e| {
            match e.downcast::<aduana_warehouse::WarehouseError>() {
                Ok(e) => aduana_refresh::RefreshError::from(*e),
                Err(e) => aduana_refresh::RefreshError::BadInput(e.to_string()),
            }
        })?;
        aduana_refresh::refresh(warehouse, &options, &reporter).await
    };
    let manifest = match run.await {
        Ok(manifest) => manifest,
        Err(e) => {
            reporter.event("failed", &[("error", serde_json::json!(e.to_string()))]);
            return Err(Box::new(e));
        }
    };
    print_refresh_summary(&manifest);
    Ok(())
}

/// The end-of-run summary on stdout: counts, what was scored and why, and
/// each step's rate.
pub(crate) fn print_refresh_summary(manifest: &aduana_refresh::RunManifest) {
    let model = manifest.model.as_ref();
    println!(
        "refresh {} {}: {} partition(s) scored, {} unchanged, {} removed; {} rows in, {} scored, {} rejected; {} importer-months of trader risk; model {}{}",
        manifest.run_id,
        manifest.status,
        manifest.scored_partitions.len(),
        manifest.unchanged_partitions,
        manifest.removed_partitions.len(),
        manifest.rows_in,
        manifest.rows_scored,
        manifest.rows_rejected,
        manifest.trader_rows,
        model.map_or("-", |m| m.version.as_str()),
        model.map_or(String::new(), |m| format!(" ({})", m.reason)),
    );
    // In calendar order (the manifest's keys sort as text: month=10 < month=2).
    let mut scored: Vec<_> = manifest.scored_partitions.iter().collect();
    scored.sort_by_key(|(partition, _)| partition.parse::<aduana_refresh::Partition>().ok());
    for (partition, reason) in scored {
        let verb = if manifest.status == aduana_refresh::RunStatus::DryRun {
            "would score"
        } else {
            "scored"
        };
        println!("  {verb} {partition}: {reason}");
    }
    for step in &manifest.steps {
        println!(
            "  {:<12} {:>8.2} s {:>12} rows {:>12.0} rows/s",
            step.step, step.seconds, step.rows, step.rows_per_second
        );
    }
}
