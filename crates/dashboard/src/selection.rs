//! The overview's selection panel: what the controls `aduana select`
//! published found, the model's picks beside the random controls, and the
//! fraud rate of all items the random controls estimate.

use crate::html::Table;
use crate::pages::{bar_figure, figures, named};

/// From the reports `selection_outcomes` and `fraud_rate_estimate`.
pub fn selection_panel(outcomes: &Table, estimate: &Table, currency: &str) -> String {
    if outcomes.rows() == 0 {
        return r#"<p class="note" id="no-selection">No selection is published yet: <code>aduana select --date D --capacity red=N,yellow=M</code> chooses a day's controls (the model's ranking plus random controls); restart the server to see what they found.</p>"#.into();
    }
    let v = |name: &str| estimate.texts(name).into_iter().next().unwrap_or_default();
    let rate = if v("fraud_rate_pct").is_empty() {
        "no random control inspected yet".to_string()
    } else {
        format!(
            "{}% (95%: {}–{}%)",
            v("fraud_rate_pct"),
            v("fraud_rate_low_pct"),
            v("fraud_rate_high_pct")
        )
    };
    let mut out = figures(&[
        ("days", format!("{} to {}", v("first_day"), v("last_day"))),
        ("random controls inspected", v("inspected")),
        ("fraud rate of all items (estimated)", rate),
        ("revenue lost (estimated)", v("revenue_lost")),
    ]);
    let categories: Vec<String> = outcomes
        .texts("lane")
        .into_iter()
        .zip(outcomes.texts("selected_by"))
        .map(|(lane, by)| format!("{lane} · {by}"))
        .collect();
    out.push_str(r#"<div class="grid2">"#);
    out.push_str(&bar_figure(
        "Hit rate of selected controls: the model's picks against random controls",
        "lane · chosen by",
        "found fraudulent (% of inspected)",
        &categories,
        &[named("hit rate", outcomes.numbers("hit_rate_pct"))],
        false,
        &outcomes.project(&[
            "lane",
            "selected_by",
            "inspected",
            "fraud_found",
            "hit_rate_pct",
            "hit_rate_low_pct",
            "hit_rate_high_pct",
        ]),
    ));
    out.push_str(&bar_figure(
        "Revenue recovered per inspected control",
        "lane · chosen by",
        &format!("revenue per control ({currency})"),
        &categories,
        &[named(
            "revenue per control",
            outcomes.numbers("revenue_per_control"),
        )],
        false,
        &outcomes.project(&[
            "lane",
            "selected_by",
            "controls",
            "revenue_recovered",
            "revenue_per_control",
        ]),
    ));
    out.push_str("</div>");
    out
}
