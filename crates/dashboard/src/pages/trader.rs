//! One trader's profile, as a post-clearance audit unit reads it, and its
//! audit file (the flagged items, as CSV or Parquet).

use std::collections::HashMap;
use std::fmt::Write;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;

use aduana_engine::output::Format;

use super::{
    Params, SHOWN_ROWS, attachment, bar_figure, error_page, every_month, figures, file_of,
    filter_rows, grouped, importer_param, int_param, named, numbers, panel, product_link, respond,
    trader_link,
};
use crate::App;
use crate::chart::{self, BandRow, Declared};
use crate::data::{Data, PageError, collect};
use crate::html::{self, Table, escape, figure, link, section};

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

/// Months of activity a trader's page shows.
const ACTIVITY_MONTHS: i64 = 24;

async fn trader_page(
    data: &Data,
    importer: &str,
    params: &HashMap<String, String>,
) -> Result<String, PageError> {
    let importer = importer_param(importer)?;
    let months = int_param(params, "months", 12, 240)?;
    let who = || ("importer", importer.clone());
    let m = || ("months", months.to_string());
    let (activity, mix, unit_values, flags, by_month, inspections, publication) = futures::join!(
        data.report(
            "trader_activity",
            &[who(), ("months", ACTIVITY_MONTHS.to_string())]
        ),
        data.report("trader_mix", &[who(), m()]),
        data.report("trader_unit_values", &[who(), ("limit", "500".into())]),
        flagged_items(data, &importer, months),
        data.report("trader_inspections_by_month", &[who()]),
        data.report(
            "trader_inspections",
            &[who(), ("limit", SHOWN_ROWS.to_string())]
        ),
        data.report("risk_publication", &[]),
    );
    let activity = activity?;
    if activity.rows() == 0 {
        return Err(PageError::NotFound(format!(
            "importer {importer:?} has no published declaration items in the last {ACTIVITY_MONTHS} months"
        )));
    }
    // Of how many months: the warehouse may hold fewer than the window.
    let published_months = publication
        .ok()
        .and_then(|t| {
            let partition = |name: &str| {
                let key = t.texts(name).into_iter().next()?;
                key.parse::<aduana_warehouse::Partition>()
                    .ok()
                    .map(|p| p.index())
            };
            Some(partition("last_partition")? - partition("first_partition")? + 1)
        })
        .map_or(ACTIVITY_MONTHS, |n| n.clamp(1, ACTIVITY_MONTHS));
    let currency = data.currency();
    let money = |v: f64| format!("{} {currency}", grouped(v));
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
        (
            &format!("months active (of the last {published_months} published)"),
            activity.rows().to_string(),
        ),
        ("declarations", grouped(total("declarations"))),
        ("items", grouped(total("items"))),
        ("customs value", money(total("customs_value"))),
        (
            "expected revenue at risk",
            money(total("expected_revenue_at_risk")),
        ),
        (
            &format!("items to review (last {months} months)"),
            grouped(flagged as f64),
        ),
        ("inspections", grouped(controls("inspections"))),
        ("found fraudulent", grouped(controls("fraud_found"))),
    ]));
    body.push_str(&format!(
        r#"<p class="note">Window for mix and flags: the last {months} published months (<a href="?months=24">24</a>, <a href="?months=6">6</a>). Reasons to look, not verdicts.</p>"#
    ));
    body.push_str(&section(
        "activity",
        "Activity over time",
        &activity_panel(&activity, currency),
    ));
    body.push_str(&panel(
        "mix",
        "Product and origin mix, and how it shifted",
        match mix {
            Ok(t) => data.describe(&t, "code").await.map(|t| mix_panel(&t)),
            Err(e) => Err(e),
        },
    ));
    body.push_str(&panel(
        "unit-values",
        "Declared unit values against their reference band",
        unit_values.map(|t| unit_values_panel(&t, data.currency())),
    ));
    body.push_str(&panel(
        "flags",
        "Misclassification, origin and valuation flags",
        match flags {
            Ok((top, count)) => data
                .describe(&top, "hs_code")
                .await
                .map(|top| flags_panel(&top, count, &importer, months)),
            Err(e) => Err(e),
        },
    ));
    body.push_str(&panel(
        "inspections",
        "Inspection history and outcomes",
        by_month.and_then(|m| inspections.map(|t| inspections_panel(&m, &t, currency))),
    ));
    Ok(body)
}

fn activity_panel(t: &Table, currency: &str) -> String {
    let t = &every_month(t, "month");
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
    // Value and revenue at risk differ by orders of magnitude: one chart
    // each, so that neither is flattened against the other's axis.
    for (caption, column, unit) in [
        ("Customs value per month", "customs_value", "customs value"),
        (
            "Expected revenue at risk per month",
            "expected_revenue_at_risk",
            "expected revenue at risk",
        ),
    ] {
        out.push_str(&bar_figure(
            caption,
            "month of lodgement",
            &format!("{unit} ({currency})"),
            &months,
            &[numbers(t.numbers(column))],
            false,
            &t.project(&["month", column]),
        ));
    }
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

fn unit_values_panel(t: &Table, currency: &str) -> String {
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
            &format!("unit value ({currency} per declared unit, log scale)"),
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
        r#"<p>Audit file of the {count} items scored medium or high or carrying a flag (scores, flags, reasons): <a id="audit-csv" href="{base}/audit.csv?months={months}" download>CSV</a> · <a id="audit-parquet" href="{base}/audit.parquet?months={months}" download>Parquet</a>{}</p>"#,
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
fn inspections_panel(by_month: &Table, history: &Table, currency: &str) -> String {
    if history.rows() == 0 {
        return r#"<p class="note">No inspection or audit of this importer's declarations on record.</p>"#.into();
    }
    let by_month = &every_month(by_month, "month");
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
        &format!("revenue recovered ({currency})"),
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
            &[
                ("importer", importer.clone()),
                ("months", ACTIVITY_MONTHS.to_string()),
            ],
        )
        .await?;
    if activity.rows() == 0 {
        return Err(PageError::NotFound(format!(
            "importer {importer:?} has no published declaration items in the last {ACTIVITY_MONTHS} months"
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
