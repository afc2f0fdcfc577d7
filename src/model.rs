//! `aduana model build` and `aduana evaluate`: building the risk model, and
//! measuring any score against inspections or the ground truth.

use aduana_engine::{EngineOptions, Session};

use crate::cli::*;

pub(crate) async fn model_build(args: ModelBuildArgs) -> Result<(), Error> {
    let started = std::time::Instant::now();
    let warehouse = args.warehouse.open().await?;
    let engine = EngineOptions {
        skip_model: true,
        ..args.engine.options()?
    };
    let session = Session::open(warehouse, &engine).await?;
    let options = aduana_engine::model_build::BuildOptions {
        through: args.through,
        window_months: args.window_months,
        min_cell_size: args.min_cell_size,
        ..Default::default()
    };
    let built = aduana_engine::model_build::build(&session, &options).await?;
    let manifest = built.manifest;
    let cells: Vec<String> = manifest
        .price_cells
        .iter()
        .map(|(level, n)| format!("{n} {level}"))
        .collect();
    println!(
        "risk model {} published in {:.1} s: learned from {} items from {} to {} (left out {} found fraudulent, {} inspected and compliant); price cells: {}",
        manifest.version,
        started.elapsed().as_secs_f64(),
        manifest.training_items,
        manifest.window_start,
        manifest.window_end,
        manifest.excluded_fraud_items,
        manifest.excluded_inspected_items,
        cells.join(", ")
    );
    match &manifest.learned {
        Some(l) => println!(
            "learned from inspections: {} labelled items, {} found fraudulent; {} trees for the \
             fraud probability, {} for the revenue; weight in risk_score {:.2}",
            l.labelled_items, l.labelled_frauds, l.fraud_trees, l.revenue_trees, l.weight
        ),
        None => println!(
            "no learned model: the window's inspections found fewer than {} frauds; risk_score \
             is the unsupervised combination",
            aduana_engine::model_build::MIN_LABELLED_FRAUDS
        ),
    }
    let phases: Vec<String> = built
        .phases
        .iter()
        .map(|(phase, took)| format!("{phase} {:.1} s", took.as_secs_f64()))
        .collect();
    eprintln!("build time: {}", phases.join(", "));
    Ok(())
}

pub(crate) async fn evaluate(args: EvaluateArgs) -> Result<(), Error> {
    use aduana_engine::evaluate::{EvaluateOptions, Labels, evaluate};
    let labels = if args.labels == "truth" {
        Labels::Truth
    } else {
        Labels::Inspections
    };
    let risk_root = args
        .backtest
        .map(|day| format!("{}/as_of={day}", aduana_warehouse::risk::BACKTESTS_DIR));
    let warehouse = args.warehouse.open_with_risk(risk_root.clone()).await?;
    let session = Session::open(warehouse, &args.engine.options()?).await?;
    // The published scores when a refresh has published some: what the
    // administration acts on, and what `--score risk_score` names.
    let published =
        args.published || risk_root.is_some() || session.warehouse().risk_snapshot().is_some();
    let options = EvaluateOptions {
        score: &args.score,
        labels,
        rates: &args.at,
        filter: args.filter.as_deref(),
        fraud_type: args.fraud_type.as_deref(),
        published_scores: published,
    };
    let e = evaluate(&session, &options).await?;
    let kind = args
        .fraud_type
        .as_ref()
        .map_or(String::new(), |k| format!(", {k} fraud only"));
    let filter = args
        .filter
        .as_ref()
        .map_or(String::new(), |f| format!(" where {f}"));
    let scores = if published {
        "published scores (risk.declaration_scores)"
    } else {
        "computed now over declarations"
    };
    println!(
        "score: {} ({scores})\nlabels: {}{kind} ({} items{filter}, {} fraudulent)\nAUC: {:.4}",
        args.score, args.labels, e.items, e.frauds, e.auc
    );
    if let Some((first, last)) = e.period {
        println!("period: items declared from {first} to {last}");
    }
    if let (Some((start, end)), true) = (e.window, e.in_window > 0) {
        let last = end.pred_opt().unwrap_or(end);
        eprintln!(
            "warning: {} of {} items measured lie in the model's training window ({start} to \
             {last}); the model learned from their outcomes, which flatters it. For an honest \
             measure, backtest (aduana refresh --as-of DAY, then --backtest DAY) and measure \
             after the window: --where \"declaration_date >= DATE '{end}'\"",
            e.in_window, e.items
        );
    }
    println!(
        "{:>8} {:>10} {:>9} {:>9} {:>9}",
        "rate", "items", "Pre", "Rec", "Rev"
    );
    for a in &e.at {
        println!(
            "{:>7}% {:>10} {:>9.4} {:>9.4} {:>9.4}",
            a.rate_percent, a.selected, a.precision, a.recall, a.revenue
        );
    }
    Ok(())
}
