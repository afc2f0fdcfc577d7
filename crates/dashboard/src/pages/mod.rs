//! The pages: overview, traders, trader profile (with its audit file),
//! products and product. Each panel is one named report; a panel whose
//! report fails says why and the rest of the page still renders.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

use aduana_engine::output::{Format, write_stream};

use crate::App;
use crate::chart::{self, BandRow, Declared, Series};
use crate::data::{Data, PageError, collect};
use crate::html::{self, Table, encode, escape, failed, figure, link, section};

mod traders;

use traders::traders_page;
pub use traders::{traders, traders_csv, traders_parquet};

type Params = Query<HashMap<String, String>>;

/// Rows of a table shown on a page (the rest is in the export or the
/// shell).
const SHOWN_ROWS: usize = 100;

fn respond(status: StatusCode, title: &str, nav: &str, body: &str) -> Response {
    (status, axum::response::Html(html::page(title, nav, body))).into_response()
}

fn error_page(error: &PageError, nav: &str) -> Response {
    respond(
        error.status(),
        "Cannot show this page",
        nav,
        &failed("error", "Cannot show this page", &error.to_string()),
    )
}

/// A whole number parameter within bounds, with a message naming it.
fn int_param(
    params: &HashMap<String, String>,
    name: &str,
    default: i64,
    max: i64,
) -> Result<i64, PageError> {
    match params.get(name).map(|v| v.trim()).filter(|v| !v.is_empty()) {
        None => Ok(default),
        Some(text) => match text.parse::<i64>() {
            Ok(v) if (1..=max).contains(&v) => Ok(v),
            _ => Err(PageError::BadRequest(format!(
                "{name} must be a whole number from 1 to {max}, not {text:?}"
            ))),
        },
    }
}

/// An HS6 subheading: exactly six digits.
fn hs6_param(text: &str) -> Result<String, PageError> {
    let t = text.trim();
    if t.len() == 6 && t.bytes().all(|b| b.is_ascii_digit()) {
        Ok(t.to_string())
    } else {
        Err(PageError::BadRequest(format!(
            "{t:?} is not an HS6 subheading: give its 6 digits, e.g. 851712"
        )))
    }
}

fn importer_param(text: &str) -> Result<String, PageError> {
    let t = text.trim();
    if t.is_empty() || t.len() > 64 || t.chars().any(char::is_control) {
        Err(PageError::BadRequest(format!(
            "{t:?} is not an importer id (TIN): 1 to 64 printable characters"
        )))
    } else {
        Ok(t.to_string())
    }
}

fn trader_link(id: &str) -> String {
    format!("/traders/{}", encode(id))
}

fn product_link(hs: &str) -> String {
    format!("/products/{}", encode(hs))
}

/// A single unnamed series.
fn numbers(values: Vec<Option<f64>>) -> Series<'static> {
    Series { name: "", values }
}

pub(crate) fn named<'a>(name: &'a str, values: Vec<Option<f64>>) -> Series<'a> {
    Series { name, values }
}

/// Key figures: label and value, side by side.
pub(crate) fn figures(items: &[(&str, String)]) -> String {
    let mut out = String::from(r#"<div class="figures">"#);
    for (label, value) in items {
        let _ = write!(
            out,
            r#"<div data-figure="{}">{}<b>{}</b></div>"#,
            escape(label),
            escape(label),
            escape(value)
        );
    }
    out.push_str("</div>");
    out
}

fn panel(id: &str, heading: &str, result: Result<String, PageError>) -> String {
    match result {
        Ok(body) => section(id, heading, &body),
        Err(e) => failed(id, heading, &e.to_string()),
    }
}

// ---------------------------------------------------------------- overview

/// Builds the overview, trader list and product list once with their
/// default parameters, so their reports are cached before the first
/// visitor asks (the same calls the pages make, not a copy of them).
pub async fn warm(data: Arc<Data>) {
    let defaults = HashMap::new();
    let _ = futures::join!(
        overview_page(&data, &defaults),
        traders_page(&data, &defaults),
        products_page(&data, &defaults),
    );
}

pub async fn overview(State(app): State<App>, Query(params): Params) -> Response {
    match overview_page(&app.data, &params).await {
        Ok(body) => respond(StatusCode::OK, "Risk overview", "overview", &body),
        Err(e) => error_page(&e, "overview"),
    }
}

async fn overview_page(data: &Data, params: &HashMap<String, String>) -> Result<String, PageError> {
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
        (Ok(by_month), Ok(lanes)) => Ok(headline_panel(by_month, lanes)),
        (Err(e), _) | (_, Err(e)) => Err(PageError::query("risk_by_month", e)),
    };
    body.push_str(&panel("headline", "Risk at a glance", headline));
    body.push_str(&panel(
        "by-month",
        "Declarations, value and revenue at risk by month",
        by_month.map(|t| by_month_panel(&t)),
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
            let months = distinct(&t.texts("month"));
            let lanes = distinct(&t.texts("lane"));
            hit_rate_lines(
                "Hit rate of inspected items by lane, all offices",
                "Hit rate by lane",
                &t,
                &months,
                &lanes,
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
        selected.and_then(|s| estimate.map(|e| crate::selection::selection_panel(&s, &e))),
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
fn headline_panel(by_month: &Table, lanes: &Table) -> String {
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
    let sum = |name: &str| lanes.numbers(name).iter().flatten().sum::<f64>();
    let (inspected, found) = (sum("inspected"), sum("fraud_found"));
    let hit_rate = if inspected > 0.0 {
        format!(
            "{:.1}% of {}",
            100.0 * found / inspected,
            grouped(inspected)
        )
    } else {
        "no inspections".to_string()
    };
    // A month as the month it is, not its first day.
    let month = months[last].get(..7).unwrap_or(&months[last]).to_string();
    figures(&[
        ("month", month),
        ("items", grouped(at("items"))),
        ("high-risk items", grouped(at("high_items"))),
        (
            "expected revenue at risk",
            grouped(at("expected_revenue_at_risk")),
        ),
        ("customs value", grouped(at("customs_value"))),
        ("hit rate of inspections (all months)", hit_rate),
    ])
}

/// `v` rounded to a whole number with thousands separators.
pub(crate) fn grouped(v: f64) -> String {
    let digits = format!("{:.0}", v.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if v < 0.0 && digits != "0" {
        out.insert(0, '-');
    }
    out
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
    match aduana_warehouse::risk::parse_partition_key(key) {
        Some((year, month)) => format!("{year}-{month:02}"),
        None => key.to_string(),
    }
}

fn by_month_panel(t: &Table) -> String {
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
        "customs value (national currency)",
    ));
    out.push_str(&single(
        "Expected revenue at risk per month",
        "expected_revenue_at_risk",
        "expected revenue at risk (national currency)",
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
    let months = distinct(&t.texts("month"));
    let lanes = distinct(&t.texts("lane"));
    let offices = distinct(&t.texts("office"));
    let office_column = t.texts("office");
    let mut out = String::from(r#"<div class="grid2">"#);
    for office in &offices {
        let rows = filter_rows(t, |i| office_column[i] == *office);
        let name = if office.is_empty() {
            "(no office)"
        } else {
            office
        };
        out.push_str(&hit_rate_lines(
            &format!("Office {name}: hit rate by lane"),
            &format!("Office {name}"),
            &rows,
            &months,
            &lanes,
        ));
    }
    out.push_str("</div>");
    out
}

/// The hit rate of each lane by month, as lines, with its rows as numbers.
/// Inspections below which a month's hit rate in a lane is not drawn.
const MIN_INSPECTIONS_FOR_RATE: f64 = 20.0;

fn hit_rate_lines(
    caption: &str,
    title: &str,
    rows: &Table,
    months: &[String],
    lanes: &[String],
) -> String {
    let rates = pivot(rows, "month", "lane", "hit_rate_pct", months, lanes);
    let inspected = pivot(rows, "month", "lane", "inspected", months, lanes);
    // A rate from a handful of inspections is noise drawn as a signal
    // (one fraud in three controls is 33%): such points are left out.
    let series: Vec<Series> = lanes
        .iter()
        .zip(rates.into_iter().zip(inspected))
        .map(|(l, (rates, counts))| {
            let kept = rates
                .into_iter()
                .zip(counts)
                .map(|(rate, n)| rate.filter(|_| n.unwrap_or(0.0) >= MIN_INSPECTIONS_FOR_RATE))
                .collect();
            named(l, kept)
        })
        .collect();
    let caption = format!("{caption} (under {MIN_INSPECTIONS_FOR_RATE:.0} inspections: not drawn)");
    figure(
        &caption,
        &chart::lines(
            title,
            "month of lodgement",
            "items found fraudulent (% of inspected)",
            months,
            &series,
        ),
        &html::table(rows, usize::MAX, &[], None),
    )
}

/// A bar chart under its caption, its numbers one click away: the common
/// figure of the pages.
pub(crate) fn bar_figure(
    caption: &str,
    x_label: &str,
    y_label: &str,
    categories: &[String],
    series: &[Series],
    stacked: bool,
    numbers: &Table,
) -> String {
    figure(
        caption,
        &chart::bars(caption, x_label, y_label, categories, series, stacked),
        &html::table(numbers, usize::MAX, &[], None),
    )
}

/// The distinct values of a column, in order of first appearance.
fn distinct(values: &[String]) -> Vec<String> {
    let mut seen = Vec::new();
    for v in values {
        if !seen.contains(v) {
            seen.push(v.clone());
        }
    }
    seen
}

/// `value` per `row_key` category, one series per `series_key` value.
fn pivot(
    t: &Table,
    row_key: &str,
    series_key: &str,
    value: &str,
    rows: &[String],
    series: &[String],
) -> Vec<Vec<Option<f64>>> {
    let keys = t.texts(row_key);
    let names = t.texts(series_key);
    let values = t.numbers(value);
    let mut out = vec![vec![None; rows.len()]; series.len()];
    for i in 0..keys.len() {
        let (Some(r), Some(s)) = (
            rows.iter().position(|k| *k == keys[i]),
            series.iter().position(|n| *n == names[i]),
        ) else {
            continue;
        };
        out[s][r] = values[i];
    }
    out
}

/// The rows of `t` that `keep` selects.
fn filter_rows(t: &Table, keep: impl Fn(usize) -> bool) -> Table {
    let mut offset = 0;
    let mut batches = Vec::new();
    for batch in &t.batches {
        let mask: arrow::array::BooleanArray = (0..batch.num_rows())
            .map(|i| Some(keep(offset + i)))
            .collect();
        offset += batch.num_rows();
        batches.push(
            arrow::compute::filter_record_batch(batch, &mask).expect("mask has the batch's length"),
        );
    }
    Table {
        schema: t.schema.clone(),
        batches,
    }
}

// ------------------------------------------------------------ trader page

pub async fn trader(
    State(app): State<App>,
    Path(importer): Path<String>,
    Query(params): Params,
) -> Response {
    match trader_page(&app.data, &importer, &params).await {
        Ok(body) => respond(
            StatusCode::OK,
            &format!("Trader {}", importer.trim()),
            "traders",
            &body,
        ),
        Err(e) => error_page(&e, "traders"),
    }
}

/// Who the importer is, from `reference.traders`: name, AEO status and
/// sector (nothing when the warehouse has no such table or no such row).
async fn identity(data: &Data, importer: &str) -> String {
    let Ok(Some(directory)) = data.directory().await else {
        return String::new();
    };
    let ids = directory.texts("directory_id");
    let Some(row) = ids.iter().position(|id| id == importer) else {
        return String::new();
    };
    let at = |column: &str| directory.texts(column).swap_remove(row);
    let aeo = match at("aeo").as_str() {
        "true" => "authorised economic operator",
        "false" => "not an authorised economic operator",
        _ => "AEO status unknown",
    };
    let sector = at("sector");
    format!(
        r#"<p class="identity" id="identity"><b>{}</b> · {} · {}</p>"#,
        escape(&at("name")),
        aeo,
        if sector.is_empty() {
            "sector unknown".to_string()
        } else {
            format!("sector: {}", escape(&sector))
        }
    )
}

async fn trader_page(
    data: &Data,
    importer: &str,
    params: &HashMap<String, String>,
) -> Result<String, PageError> {
    let importer = importer_param(importer)?;
    let months = int_param(params, "months", 12, 240)?;
    let who = || ("importer", importer.clone());
    let m = || ("months", months.to_string());
    let (activity, mix, unit_values, flags, by_month, inspections) = futures::join!(
        data.report("trader_activity", &[who(), ("months", "24".into())]),
        data.report("trader_mix", &[who(), m()]),
        data.report("trader_unit_values", &[who(), ("limit", "500".into())]),
        flagged_items(data, &importer, months),
        data.report("trader_inspections_by_month", &[who()]),
        data.report(
            "trader_inspections",
            &[who(), ("limit", SHOWN_ROWS.to_string())]
        ),
    );
    let activity = activity?;
    if activity.rows() == 0 {
        return Err(PageError::NotFound(format!(
            "importer {importer:?} has no published declaration items in the last 24 months"
        )));
    }
    let mut body = identity(data, &importer).await;
    let total = |name: &str| activity.numbers(name).iter().flatten().sum::<f64>();
    let flagged = flags.as_ref().map(|(_, count)| *count).unwrap_or(0);
    let controls = |name: &str| {
        by_month
            .as_ref()
            .map(|t| t.numbers(name).iter().flatten().sum::<f64>())
            .unwrap_or(0.0)
    };
    body.push_str(&figures(&[
        ("months active (of 24)", activity.rows().to_string()),
        ("declarations", format!("{}", total("declarations"))),
        ("items", format!("{}", total("items"))),
        ("customs value", format!("{:.2}", total("customs_value"))),
        (
            "expected revenue at risk",
            format!("{:.2}", total("expected_revenue_at_risk")),
        ),
        ("flagged items (last months)", flagged.to_string()),
        ("inspections", format!("{}", controls("inspections"))),
        ("found fraudulent", format!("{}", controls("fraud_found"))),
    ]));
    body.push_str(&format!(
        r#"<p class="note">Window for mix and flags: the last {months} published months (<a href="?months=24">24</a>, <a href="?months=6">6</a>). Reasons to look, not verdicts.</p>"#
    ));
    body.push_str(&section(
        "activity",
        "Activity over time",
        &activity_panel(&activity),
    ));
    body.push_str(&panel(
        "mix",
        "Product and origin mix, and how it shifted",
        mix.map(|t| mix_panel(&t)),
    ));
    body.push_str(&panel(
        "unit-values",
        "Declared unit values against their reference band",
        unit_values.map(|t| unit_values_panel(&t)),
    ));
    body.push_str(&panel(
        "flags",
        "Misclassification, origin and valuation flags",
        flags.map(|(top, count)| flags_panel(&top, count, &importer, months)),
    ));
    body.push_str(&panel(
        "inspections",
        "Inspection history and outcomes",
        by_month.and_then(|m| inspections.map(|t| inspections_panel(&m, &t))),
    ));
    Ok(body)
}

fn activity_panel(t: &Table) -> String {
    let months = t.texts("month");
    let mut out = String::from(r#"<div class="grid2">"#);
    out.push_str(&bar_figure(
        "Items and high-risk items per month",
        "month of lodgement",
        "items",
        &months,
        &[
            named("items", t.numbers("items")),
            named("high", t.numbers("high_items")),
        ],
        false,
        &t.project(&[
            "month",
            "declarations",
            "items",
            "high_items",
            "mean_risk_score",
        ]),
    ));
    out.push_str(&bar_figure(
        "Customs value and expected revenue at risk per month",
        "month of lodgement",
        "national currency",
        &months,
        &[
            named("customs value", t.numbers("customs_value")),
            named(
                "expected revenue at risk",
                t.numbers("expected_revenue_at_risk"),
            ),
        ],
        false,
        &t.project(&["month", "customs_value", "expected_revenue_at_risk"]),
    ));
    out.push_str("</div>");
    out
}

fn mix_panel(t: &Table) -> String {
    let dims = t.texts("dimension");
    let mut out = String::from(r#"<div class="grid2">"#);
    for (dimension, caption, axis) in [
        (
            "hs4",
            "Share of customs value by HS heading",
            "HS heading (4 digits)",
        ),
        (
            "origin",
            "Share of customs value by origin",
            "origin country",
        ),
    ] {
        // The ten largest are drawn (the query orders by value).
        let all = filter_rows(t, |i| dims[i] == dimension);
        let rows = filter_rows(&all, |i| i < 10);
        let codes = rows.texts("code");
        out.push_str(&bar_figure(
            caption,
            axis,
            "share of customs value (%)",
            &codes,
            &[
                named("earlier half", rows.numbers("earlier_share_pct")),
                named("later half", rows.numbers("later_share_pct")),
            ],
            false,
            &all,
        ));
    }
    out.push_str("</div>");
    out
}

fn unit_values_panel(t: &Table) -> String {
    if t.rows() == 0 {
        return r#"<p class="note">No item with a unit value (quantity and value both positive).</p>"#.into();
    }
    let hs = t.texts("hs6");
    let origin = t.texts("origin_country");
    let unit = t.texts("quantity_unit");
    let values = t.numbers("unit_value");
    let low = t.numbers("reference_low");
    let median = t.numbers("reference_median");
    let high = t.numbers("reference_high");
    let ids = t.texts("declaration_id");
    let dates = t.texts("declared_on");
    // One row per product, origin and unit; the fifteen with most items.
    let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
    for i in 0..t.rows() {
        let key = format!("{} {} {}", hs[i], origin[i], unit[i]);
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, rows)) => rows.push(i),
            None => groups.push((key, vec![i])),
        }
    }
    groups.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(&b.0)));
    let rows: Vec<BandRow> = groups
        .iter()
        .take(15)
        .map(|(key, items)| {
            let first = items[0];
            BandRow {
                label: key.clone(),
                reference: match (low[first], median[first], high[first]) {
                    (Some(l), Some(m), Some(h)) => Some((l, m, h)),
                    _ => None,
                },
                declared: Declared::Points(
                    items
                        .iter()
                        .filter_map(|&i| {
                            values[i].map(|v| {
                                (
                                    v,
                                    format!("{} item of {} on {}: {v}", ids[i], key, dates[i]),
                                )
                            })
                        })
                        .collect(),
                ),
            }
        })
        .collect();
    let shown = groups.len().min(15);
    let mut out = figure(
        "Declared unit values (points) against the reference band of their product and origin",
        &chart::bands(
            "Unit values against reference",
            "unit value (national currency per declared unit, log scale)",
            &rows,
        ),
        &html::table(t, usize::MAX, &[link("hs6", product_link)], None),
    );
    let _ = write!(
        out,
        r#"<p class="note">{shown} of {} product, origin and unit groups drawn (most items first); the {} most recent items with a unit value. Rows without a band have no reference cell in the model for that unit.</p>"#,
        groups.len(),
        t.rows()
    );
    out
}

/// The trader's flagged items with the most revenue at risk, and how many
/// there are: a large importer has tens of thousands, which the audit file
/// carries, not the page.
async fn flagged_items(
    data: &Data,
    importer: &str,
    months: i64,
) -> Result<(Table, usize), PageError> {
    let params = [
        ("importer", importer.to_string()),
        ("months", months.to_string()),
    ];
    let failed = |e| PageError::query("trader_flags", e);
    let frame = data.frame("trader_flags", &params).await?;
    let (top, count) = futures::join!(
        collect(
            "trader_flags",
            frame.clone().limit(0, Some(SHOWN_ROWS)).map_err(failed)?
        ),
        frame.count(),
    );
    Ok((top?, count.map_err(failed)?))
}

fn flags_panel(t: &Table, count: usize, importer: &str, months: i64) -> String {
    let base = trader_link(importer);
    let mut out = format!(
        r#"<p>Audit file of the {count} flagged items (scores, flags, reasons): <a id="audit-csv" href="{base}/audit.csv?months={months}" download>CSV</a> · <a id="audit-parquet" href="{base}/audit.parquet?months={months}" download>Parquet</a>{}</p>"#,
        if count > t.rows() {
            format!(" ({} with the most revenue at risk shown)", t.rows())
        } else {
            String::new()
        }
    );
    out.push_str(r#"<div class="scroll">"#);
    out.push_str(&html::table(
        t,
        SHOWN_ROWS,
        &[link("hs_code", |h| {
            product_link(&h.chars().take(6).collect::<String>())
        })],
        None,
    ));
    out.push_str("</div>");
    out
}

/// Controls per month (chart and numbers), then the most recent ones.
fn inspections_panel(by_month: &Table, history: &Table) -> String {
    if history.rows() == 0 {
        return r#"<p class="note">No inspection or audit of this importer's declarations on record.</p>"#.into();
    }
    let months = by_month.texts("month");
    let mut out = String::from(r#"<div class="grid2">"#);
    out.push_str(&bar_figure(
        "Controls per month and what they found",
        "month of the control",
        "controls",
        &months,
        &[
            named("fraud", by_month.numbers("fraud_found")),
            named("compliant", by_month.numbers("compliant")),
        ],
        true,
        &by_month,
    ));
    out.push_str(&bar_figure(
        "Revenue recovered per month",
        "month of the control",
        "revenue recovered (national currency)",
        &months,
        &[numbers(by_month.numbers("revenue_recovered"))],
        false,
        &by_month.project(&["month", "revenue_recovered"]),
    ));
    let _ = write!(
        out,
        "</div><h3>The {} most recent controls</h3>",
        history.rows()
    );
    out.push_str(r#"<div class="scroll">"#);
    out.push_str(&html::table(history, SHOWN_ROWS, &[], None));
    out.push_str("</div>");
    out
}

/// The audit file of a trader in `format`: the `trader_flags` report,
/// written by the same code as `aduana report --format csv|parquet`.
async fn audit_file(
    data: &Data,
    importer: &str,
    params: &HashMap<String, String>,
    format: Format,
) -> Result<Vec<u8>, PageError> {
    let importer = importer_param(importer)?;
    let months = int_param(params, "months", 12, 240)?;
    // The same answer as the trader's page: an importer without published
    // items is not found, rather than an empty file.
    let activity = data
        .report(
            "trader_activity",
            &[("importer", importer.clone()), ("months", "24".into())],
        )
        .await?;
    if activity.rows() == 0 {
        return Err(PageError::NotFound(format!(
            "importer {importer:?} has no published declaration items in the last 24 months"
        )));
    }
    let frame = data
        .frame(
            "trader_flags",
            &[("importer", importer), ("months", months.to_string())],
        )
        .await?;
    file_of("trader_flags", frame, format).await
}

/// The rows of `frame` (of report `report`) written in `format`: a
/// download's body.
async fn file_of(
    report: &str,
    frame: datafusion::dataframe::DataFrame,
    format: Format,
) -> Result<Vec<u8>, PageError> {
    let failed = |e| PageError::query(report, e);
    let mut out = Vec::new();
    write_stream(
        format,
        frame.execute_stream().await.map_err(failed)?,
        &mut out,
    )
    .await
    .map_err(failed)?;
    Ok(out)
}

/// `body` as a file to save, named `filename`.
fn attachment(body: Vec<u8>, content_type: &'static str, filename: &str) -> Response {
    let mut response = Response::new(Body::from(body));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(value) = HeaderValue::from_str(&format!(r#"attachment; filename="{filename}""#)) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

/// The audit file as a download named after the importer.
async fn audit_download(
    app: App,
    importer: String,
    params: HashMap<String, String>,
    format: Format,
    content_type: &'static str,
    extension: &str,
) -> Response {
    let body = match audit_file(&app.data, &importer, &params, format).await {
        Ok(body) => body,
        Err(e) => return error_page(&e, "traders"),
    };
    let safe: String = importer
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    attachment(body, content_type, &format!("audit_{safe}.{extension}"))
}

pub async fn audit_csv(
    State(app): State<App>,
    Path(importer): Path<String>,
    Query(params): Params,
) -> Response {
    audit_download(
        app,
        importer,
        params,
        Format::Csv,
        "text/csv; charset=utf-8",
        "csv",
    )
    .await
}

pub async fn audit_parquet(
    State(app): State<App>,
    Path(importer): Path<String>,
    Query(params): Params,
) -> Response {
    audit_download(
        app,
        importer,
        params,
        Format::Parquet,
        "application/vnd.apache.parquet",
        "parquet",
    )
    .await
}

// ---------------------------------------------------------------- products

pub async fn products(State(app): State<App>, Query(params): Params) -> Response {
    match products_page(&app.data, &params).await {
        Ok(body) => respond(StatusCode::OK, "Products", "products", &body),
        Err(e) => error_page(&e, "products"),
    }
}

async fn products_page(data: &Data, params: &HashMap<String, String>) -> Result<String, PageError> {
    let months = int_param(params, "months", 3, 120)?;
    let t = data
        .report(
            "products_at_risk",
            &[("months", months.to_string()), ("limit", "50".into())],
        )
        .await?;
    let links = [link("hs6", product_link)];
    let top: Vec<String> = t.texts("hs6").into_iter().take(20).collect();
    let values: Vec<Option<f64>> = t
        .numbers("expected_revenue_at_risk")
        .into_iter()
        .take(20)
        .collect();
    Ok(section(
        "products",
        &format!("HS6 subheadings by expected revenue at risk (last {months} published months)"),
        &(figure(
            "Expected revenue at risk by HS6 (top 20)",
            &chart::bars(
                "Products at risk",
                "HS6 subheading",
                "expected revenue at risk (national currency)",
                &top,
                &[numbers(values)],
                false,
            ),
            &html::table(
                &t.project(&["hs6", "expected_revenue_at_risk"]),
                20,
                &links,
                None,
            ),
        ) + &html::table(&t, usize::MAX, &links, None)),
    ))
}

pub async fn product(
    State(app): State<App>,
    Path(hs): Path<String>,
    Query(params): Params,
) -> Response {
    let result = async {
        let hs = hs6_param(&hs)?;
        let months = int_param(&params, "months", 12, 240)?;
        let (values, deviations) = futures::join!(
            app.data.report(
                "product_unit_values",
                &[("hs", hs.clone()), ("months", months.to_string())]
            ),
            app.data.report(
                "product_top_deviations",
                &[("hs", hs.clone()), ("limit", "25".into())]
            ),
        );
        let values = values?;
        if values.rows() == 0 {
            return Err(PageError::NotFound(format!(
                "no declaration item of HS6 {hs} with a unit value in the last {months} months"
            )));
        }
        let mut body = section(
            "unit-values",
            "Unit values by origin against the reference band",
            &product_bands(&values),
        );
        body.push_str(&panel(
            "deviations",
            "Top deviating declarations (unit value furthest below reference)",
            deviations
                .map(|t| html::table(&t, usize::MAX, &[link("importer_id", trader_link)], None)),
        ));
        Ok::<_, PageError>((hs, body))
    }
    .await;
    match result {
        Ok((hs, body)) => respond(StatusCode::OK, &format!("Product {hs}"), "products", &body),
        Err(e) => error_page(&e, "products"),
    }
}

fn product_bands(t: &Table) -> String {
    let origin = t.texts("origin_country");
    let unit = t.texts("quantity_unit");
    let items = t.numbers("items");
    let col = |n: &str| t.numbers(n);
    let (p10, q1, median, q3, p90) = (
        col("declared_low"),
        col("declared_q1"),
        col("declared_median"),
        col("declared_q3"),
        col("declared_high"),
    );
    let (low, mid, high) = (
        col("reference_low"),
        col("reference_median"),
        col("reference_high"),
    );
    let rows: Vec<BandRow> = (0..t.rows())
        .take(20)
        .filter_map(|i| {
            Some(BandRow {
                label: format!("{} {} ({})", origin[i], unit[i], items[i].unwrap_or(0.0)),
                reference: match (low[i], mid[i], high[i]) {
                    (Some(l), Some(m), Some(h)) => Some((l, m, h)),
                    _ => None,
                },
                declared: Declared::Spread([p10[i]?, q1[i]?, median[i]?, q3[i]?, p90[i]?]),
            })
        })
        .collect();
    figure(
        "Declared unit values by origin (box: quartiles, whiskers: 10th to 90th percentile, circle: median) against the reference band",
        &chart::bands(
            "Unit values by origin",
            "unit value (national currency per declared unit, log scale)",
            &rows,
        ),
        &html::table(t, usize::MAX, &[], None),
    )
}

// ------------------------------------------------------------------- misc

/// The header's form: to a trader or a product page.
pub async fn go(Query(params): Params) -> Response {
    let get = |k: &str| {
        params
            .get(k)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    match (get("importer"), get("hs")) {
        (Some(importer), _) => Redirect::to(&trader_link(&importer)).into_response(),
        (None, Some(hs)) => Redirect::to(&product_link(&hs)).into_response(),
        (None, None) => Redirect::to("/").into_response(),
    }
}

pub async fn not_found() -> Response {
    error_page(
        &PageError::NotFound(
            "no such page: the dashboard has /, /traders, /traders/ID, /products and /products/HS6"
                .into(),
        ),
        "",
    )
}
