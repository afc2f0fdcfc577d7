//! `aduana generate`: the synthetic warehouse, and how it is described.

use std::path::Path;

use crate::cli::*;

pub(crate) fn generate(args: GenerateArgs) -> Result<(), Error> {
    let options = aduana_synth::GenerateOptions {
        out: args.out,
        rows: args.rows,
        seed: args.seed,
        months: args.months,
        last_month: args.last_month,
        hs_nomenclature: args.hs_nomenclature,
        overwrite: args.overwrite,
        variant: aduana_synth::Variant {
            fraud_by_parties: args.fraud_by_parties,
            export_shaped: args.export_shaped,
            inspection_rate: args.inspection_rate.map(|p| p / 100.0),
            drift: args.drift,
            hidden_fraud: args.hidden_fraud,
        },
    };
    eprintln!(
        "generating {} declaration items into {} ...",
        args.rows,
        options.out.display()
    );
    let summary = aduana_synth::generate(&options)?;
    print_generation(&options.out, &summary);
    Ok(())
}

pub(crate) fn print_generation(out: &Path, s: &aduana_synth::Summary) {
    let seconds = s.elapsed.as_secs_f64();
    println!(
        "wrote {} items in {} declarations, {} inspection results, {} files to {} in {:.1} s ({:.0} items/s)",
        s.rows,
        s.declarations,
        s.inspections,
        s.files,
        out.display(),
        seconds,
        s.rows as f64 / seconds.max(1e-9)
    );
    println!(
        "months {}-{:02} to {}-{:02}; {} products, {} tariff lines, {} traders",
        s.first_month.0,
        s.first_month.1,
        s.last_month.0,
        s.last_month.1,
        s.products,
        s.tariff_lines,
        s.traders
    );
    let [under, misclass, circumvention, preference, short] = s.fraud_items;
    let short = if short > 0 {
        format!(", {short} quantity under-declared")
    } else {
        String::new()
    };
    println!(
        "injected fraud (ground truth in _truth/): {} items = {under} undervaluation, {misclass} misclassification, \
         {circumvention} anti-dumping circumvention, {preference} preference abuse{short}",
        s.fraud_total()
    );
}
