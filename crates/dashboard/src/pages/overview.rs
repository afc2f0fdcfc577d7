//! The overview: the risk at a glance, by month, lanes, offices, selection
//! and what is published.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::{
    Params, bar_figure, distinct, error_page, every_month, figures, filter_rows, grouped,
    int_param, month_index, month_range, named, numbers, panel, pivot, respond, this_month,
};
use crate::App;
use crate::chart::{self, Series};
use crate::data::{Data, PageError};
use crate::html::{self, Table, figure};

pub async fn overview(State(app): State<App>, Query(params): Params) -> Response {
    match overview_page(&app.data, &params).await {
        Ok(body) => respond(StatusCode::OK, "Risk overview", "overview", &body),
        Err(e) => error_page(&e, "overview"),
    }
}

pub(super) async fn overview_page(
    data: &Data,
    params: &HashMap<String, String>,
) -> Result<String, PageError> {
    let months = int_param(params, "months", 24, 240)?;
    let (publication, by_month, lanes, lanes_over_time, offices, selected, estimate) = futures::join!(
        data.report("risk_publication", &[]),
        data.report("risk_by_month", &[("months", months.to_string())]),
        data.report("inspection_hit_rate_by_lane", &[]),
        data.report("hit_rate_by_lane_over_time", &[("months", "12".into())]),
        data.report("inspection_hit_rate_over_time", &[("months", "12".into())]),
        data.report("selection_outcomes", &[]),
        data.report("fraud_rate_estimate", &[]),
    );
    let mut body = String::new();
    // The risk first: what the latest month holds and what controls find;
    // which run and model published it comes last.
    let headline = match (&by_month, &lanes) {
        (Ok(by_month), Ok(lanes)) => Ok(headline_panel(
            by_month,
            lanes,
            data.currency(),
            this_month(),
        )),
        (Err(e), _) | (_, Err(e)) => Err(PageError::query("risk_by_month", e)),
    };
    body.push_str(&panel("headline", "Risk at a glance", headline));
    body.push_str(&panel(
        "by-month",
        "Declarations, value and revenue at risk by month",
        by_month.map(|t| by_month_panel(&t, data.currency())),
    ));
    body.push_str(&panel(
        "lanes",
        "Lanes and inspection results",
        lanes.map(|t| lanes_panel(&t)),
    ));
    body.push_str(&panel(
        "monitoring",
        "Inspection hit rate over time (monitoring)",
        lanes_over_time.map(|t| {
            let months = month_range(&distinct(&t.texts("month")));
            let lanes = distinct(&t.texts("lane"));
            hit_rate_lines(
                "Hit rate of inspected items by lane, all offices",
                "Hit rate by lane",
                &t,
                &months,
                &lanes,
                None,
            )
        }),
    ));
    body.push_str(&panel(
        "offices",
        "Hit rate by office",
        offices.map(|t| offices_panel(&t)),
    ));
    body.push_str(&panel(
        "selection",
        "Selection: the model's picks against random controls (monitoring)",
        selected.and_then(|s| {
            estimate.map(|e| crate::selection::selection_panel(&s, &e, data.currency()))
        }),
    ));
    body.push_str(&panel(
        "publication",
        "Published risk tables",
        publication.map(|t| publication_panel(&t)),
    ));
    Ok(body)
}

/// The latest month's risk and the controls' results, in a few figures:
/// the first screen of the overview.
/// `this_month` is the calendar month of today (as `year * 12 + month - 1`).
fn headline_panel(by_month: &Table, lanes: &Table, currency: &str, this_month: i64) -> String {
    let months = by_month.texts("month");
    let Some(last) = months.len().checked_sub(1) else {
        return r#"<p class="note">No published months yet: run <code>aduana refresh</code>.</p>"#
            .into();
    };
    let at = |name: &str| {
        by_month
            .numbers(name)
            .get(last)
            .copied()
            .flatten()
            .unwrap_or(0.0)
    };
    // The trend compares with the calendar month before only: against a
    // month further back (none published between) it would not be the
    // month before, and a month still running has partial figures.
    let last_index = month_index(&months[last]);
    let running = last_index == Some(this_month);
    let previous_row = last_index
        .filter(|_| !running)
        .and_then(|k| months.iter().rposition(|m| month_index(m) == Some(k - 1)));
    let previous =
        |name: &str| previous_row.and_then(|p| by_month.numbers(name).get(p).copied().flatten());
    let trend = |name: &str| match previous(name) {
        Some(before) if before > 0.0 => {
            format!(
                " ({:+.0}% on the month before)",
                100.0 * (at(name) / before - 1.0)
            )
        }
        _ => String::new(),
    };
    let money = |name: &str| format!("{} {}{}", grouped(at(name)), currency, trend(name));
    let sum = |name: &str| lanes.numbers(name).iter().flatten().sum::<f64>();
    let (inspected, found) = (sum("inspected"), sum("fraud_found"));
    let rate = |found: f64, inspected: f64| {
        format!(
            "{:.1}% of {} inspected",
            100.0 * found / inspected,
            grouped(inspected)
        )
    };
    let hit_rate = if inspected > 0.0 {
        rate(found, inspected)
    } else {
        "no inspections".to_string()
    };
    // A month as the month it is, not its first day.
    let mut month = months[last].get(..7).unwrap_or(&months[last]).to_string();
    if running {
        month.push_str(" (so far)");
    }
    let mut shown = vec![
        ("month", month),
        ("items", grouped(at("items"))),
        (
            "high-risk items",
            format!("{}{}", grouped(at("high_items")), trend("high_items")),
        ),
        (
            "expected revenue at risk",
            money("expected_revenue_at_risk"),
        ),
        ("customs value", money("customs_value")),
        ("hit rate of inspections (all months)", hit_rate),
    ];
    // Each lane's hit rate, where enough inspections make it a rate.
    let per_lane: Vec<String> = lanes
        .texts("lane")
        .into_iter()
        .zip(
            lanes
                .numbers("inspected")
                .into_iter()
                .zip(lanes.numbers("fraud_found")),
        )
        .filter_map(|(lane, (n, found))| {
            let n = n.filter(|&n| n >= MIN_INSPECTIONS_FOR_RATE)?;
            let lane = if lane.is_empty() {
                "(none)".into()
            } else {
                lane
            };
            Some(format!("{lane} {:.1}%", 100.0 * found.unwrap_or(0.0) / n))
        })
        .collect();
    if !per_lane.is_empty() {
        shown.push(("hit rate by lane", per_lane.join(" · ")));
    }
    figures(&shown)
}

fn publication_panel(t: &Table) -> String {
    if t.rows() == 0 {
        return r#"<p class="note" id="unpublished">No risk tables are published yet: run <code>aduana refresh</code>, then restart the server.</p>"#.into();
    }
    let v = |name: &str| t.texts(name).into_iter().next().unwrap_or_default();
    let mut out = figures(&[
        ("last refresh run", v("run_id")),
        ("published at", v("published_at")),
        ("model version (published scores)", v("model_version")),
        ("model version (this server)", v("session_model_version")),
        (
            "months",
            format!(
                "{} to {}",
                month_of(&v("first_partition")),
                month_of(&v("last_partition"))
            ),
        ),
        ("items scored", v("scored")),
        ("items rejected", v("rejected")),
    ]);
    if v("model_version") != v("session_model_version") {
        out.push_str(r#"<p class="note">The server loaded another model version than the one the published scores were made with: charts drawn from the model (reference bands) follow the server's.</p>"#);
    }
    out
}

/// `2026-10` for the partition key `year=2026/month=10`.
fn month_of(key: &str) -> String {
    match key.parse::<aduana_warehouse::Partition>() {
        Ok(partition) => partition.label(),
        Err(_) => key.to_string(),
    }
}

fn by_month_panel(t: &Table, currency: &str) -> String {
    let t = &every_month(t, "month");
    let months = t.texts("month");
    let mut out = String::from(r#"<div class="grid2">"#);
    let single = |caption: &str, column: &str, unit: &str| {
        bar_figure(
            caption,
            "month of lodgement",
            unit,
            &months,
            &[numbers(t.numbers(column))],
            false,
            &t.project(&["month", column]),
        )
    };
    out.push_str(&single(
        "Declarations per month",
        "declarations",
        "declarations",
    ));
    out.push_str(&single(
        "Customs value per month",
        "customs_value",
        &format!("customs value ({currency})"),
    ));
    out.push_str(&single(
        "Expected revenue at risk per month",
        "expected_revenue_at_risk",
        &format!("expected revenue at risk ({currency})"),
    ));
    let levels = [
        named("high", t.numbers("high_items")),
        named("medium", t.numbers("medium_items")),
        named("low", t.numbers("low_items")),
    ];
    out.push_str(&bar_figure(
        "Items by risk level per month",
        "month of lodgement",
        "items",
        &months,
        &levels,
        true,
        &t.project(&["month", "items", "high_items", "medium_items", "low_items"]),
    ));
    out.push_str("</div>");
    out
}

fn lanes_panel(t: &Table) -> String {
    let lanes: Vec<String> = t
        .texts("lane")
        .into_iter()
        .map(|l| if l.is_empty() { "(none)".into() } else { l })
        .collect();
    let items: Vec<Series> = vec![
        named("items", t.numbers("items")),
        named("inspected", t.numbers("inspected")),
    ];
    let mut out = String::from(r#"<div class="grid2">"#);
    out.push_str(&bar_figure(
        "Items and inspections by selectivity lane",
        "selectivity lane",
        "items",
        &lanes,
        &items,
        false,
        &t,
    ));
    out.push_str(&bar_figure(
        "Hit rate by lane",
        "selectivity lane",
        "items found fraudulent (% of inspected)",
        &lanes,
        &[numbers(t.numbers("hit_rate_pct"))],
        false,
        &t.project(&["lane", "inspected", "fraud_found", "hit_rate_pct"]),
    ));
    out.push_str("</div>");
    out
}

/// One small chart per office: the hit rate of each lane over time.
fn offices_panel(t: &Table) -> String {
    let months = month_range(&distinct(&t.texts("month")));
    let lanes = distinct(&t.texts("lane"));
    let offices = distinct(&t.texts("office"));
    let office_column = t.texts("office");
    let per_office: Vec<(&String, Table)> = offices
        .iter()
        .map(|office| (office, filter_rows(t, |i| office_column[i] == *office)))
        .collect();
    // One scale for every office, so that a chart's height compares with
    // its neighbour's.
    let y_max = per_office
        .iter()
        .flat_map(|(_, rows)| drawn_rates(rows, &months, &lanes))
        .flatten()
        .flatten()
        .fold(0.0, f64::max);
    let mut out = String::from(r#"<div class="grid2">"#);
    for (office, rows) in &per_office {
        let name = if office.is_empty() {
            "(no office)"
        } else {
            office.as_str()
        };
        out.push_str(&hit_rate_lines(
            &format!("Office {name}: hit rate by lane"),
            &format!("Office {name}"),
            rows,
            &months,
            &lanes,
            Some(y_max),
        ));
    }
    out.push_str("</div>");
    out
}

/// Inspections below which a month's hit rate in a lane is not drawn.
const MIN_INSPECTIONS_FOR_RATE: f64 = 20.0;

/// The hit rates drawn for `rows`: per lane, each month's rate where it
/// rests on enough inspections. A rate from a handful of inspections is
/// noise drawn as a signal (one fraud in three controls is 33%).
fn drawn_rates(rows: &Table, months: &[String], lanes: &[String]) -> Vec<Vec<Option<f64>>> {
    let rates = pivot(rows, "month", "lane", "hit_rate_pct", months, lanes);
    let inspected = pivot(rows, "month", "lane", "inspected", months, lanes);
    rates
        .into_iter()
        .zip(inspected)
        .map(|(rates, counts)| {
            rates
                .into_iter()
                .zip(counts)
                .map(|(rate, n)| rate.filter(|_| n.unwrap_or(0.0) >= MIN_INSPECTIONS_FOR_RATE))
                .collect()
        })
        .collect()
}

/// The hit rate of each lane by month, as lines, with its rows as numbers;
/// the value axis up to `y_max` at least (one scale for small multiples).
fn hit_rate_lines(
    caption: &str,
    title: &str,
    rows: &Table,
    months: &[String],
    lanes: &[String],
    y_max: Option<f64>,
) -> String {
    let series: Vec<Series> = lanes
        .iter()
        .zip(drawn_rates(rows, months, lanes))
        .map(|(l, kept)| named(l, kept))
        .collect();
    let inspections = rows.numbers("inspected").iter().flatten().sum::<f64>();
    let caption = format!(
        "{caption} ({} inspections; a month under {MIN_INSPECTIONS_FOR_RATE:.0} in a lane: not drawn)",
        grouped(inspections)
    );
    figure(
        &caption,
        &chart::lines(
            title,
            "month of lodgement",
            "items found fraudulent (% of inspected)",
            months,
            &series,
            y_max,
        ),
        &html::table(rows, usize::MAX, &[], None),
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    /// Months with their high-risk items; the other figures the headline
    /// shows follow them.
    fn by_month(months: &[&str], high: &[f64]) -> Table {
        let figures = [
            "items",
            "high_items",
            "expected_revenue_at_risk",
            "customs_value",
        ];
        let mut fields = vec![Field::new("month", DataType::Utf8, false)];
        fields.extend(figures.map(|name| Field::new(name, DataType::Float64, true)));
        let schema = Arc::new(Schema::new(fields));
        let mut columns: Vec<ArrayRef> = vec![Arc::new(StringArray::from(months.to_vec()))];
        columns.extend(figures.map(|_| Arc::new(Float64Array::from(high.to_vec())) as ArrayRef));
        let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
        Table {
            schema,
            batches: vec![batch],
        }
    }

    fn no_lanes() -> Table {
        let schema = Arc::new(Schema::new(vec![
            Field::new("lane", DataType::Utf8, true),
            Field::new("inspected", DataType::Float64, true),
            Field::new("fraud_found", DataType::Float64, true),
        ]));
        Table {
            schema,
            batches: vec![],
        }
    }

    const DECEMBER_2026: i64 = 2026 * 12 + 11;

    /// The trend is against the calendar month before, and only for a
    /// month that is over.
    #[test]
    fn the_trend_compares_with_the_month_before_only() {
        let headline = |t: &Table| headline_panel(t, &no_lanes(), "USD", DECEMBER_2026);
        let next = headline(&by_month(&["2026-09-01", "2026-10-01"], &[100.0, 150.0]));
        assert!(next.contains("+50% on the month before"), "{next}");
        // August then October: no month before October to compare with.
        let gap = headline(&by_month(&["2026-08-01", "2026-10-01"], &[100.0, 150.0]));
        assert!(!gap.contains("on the month before"), "{gap}");
        // December while it is December: partial, said so, no trend.
        let running = headline(&by_month(&["2026-11-01", "2026-12-01"], &[100.0, 20.0]));
        assert!(
            running.contains("2026-12 (so far)") && !running.contains("on the month before"),
            "{running}"
        );
    }
}
