//! The pages, one module each: overview, traders, trader profile (with its
//! audit file), products and product; here what they share. Each panel is one named report; a panel whose
//! report fails says why and the rest of the page still renders.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray, UInt32Array};
use arrow::compute::{concat_batches, take};
use arrow::datatypes::{DataType, Field, Schema};

use axum::body::Body;
use axum::extract::Query;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

use aduana_engine::output::{Format, write_stream};

use crate::chart::{self, Series};
use crate::data::{Data, PageError};
use crate::html::{self, Table, encode, escape, failed, figure, section};

mod overview;
mod products;
mod trader;
mod traders;

pub use overview::overview;
use overview::overview_page;
use products::products_page;
pub use products::{product, products};
pub use trader::{audit_csv, audit_parquet, trader};
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

/// `v` rounded to a whole number with thousands separators.
pub(crate) fn grouped(v: f64) -> String {
    let whole = format!("{v:.0}");
    // -0.4 rounds to "-0".
    html::group_digits(
        whole
            .strip_prefix("-")
            .filter(|w| *w == "0")
            .unwrap_or(&whole),
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

/// `(year, month)` of a month key, `2026-10-01` or `2026-10`.
/// `YYYY-MM` (or `YYYY-MM-DD`) as `year * 12 + month - 1`.
pub(crate) fn month_index(key: &str) -> Option<i64> {
    let year: i64 = key.get(..4)?.parse().ok()?;
    let month: i64 = key.get(5..7)?.parse().ok()?;
    (key.as_bytes().get(4) == Some(&b'-') && (1..=12).contains(&month))
        .then_some(year * 12 + month - 1)
}

/// Today's calendar month (UTC), as [`month_index`] counts.
pub(crate) fn this_month() -> i64 {
    use chrono::Datelike;
    let today = chrono::Utc::now().date_naive();
    i64::from(today.year()) * 12 + i64::from(today.month0())
}

/// Every month from the first to the last of `months` (in their format,
/// `YYYY-MM-01` or `YYYY-MM`), so that a month without activity keeps its
/// place on a time axis instead of vanishing; `months` as they are when
/// one is not a month.
pub(crate) fn month_range(months: &[String]) -> Vec<String> {
    let indices: Option<Vec<i64>> = months.iter().map(|m| month_index(m)).collect();
    let (Some(indices), Some(first)) = (indices, months.first()) else {
        return months.to_vec();
    };
    let (Some(&lo), Some(&hi)) = (indices.iter().min(), indices.iter().max()) else {
        return months.to_vec();
    };
    let with_day = first.len() > 7;
    (lo..=hi)
        .map(|k| {
            let month = format!("{}-{:02}", k / 12, k % 12 + 1);
            if with_day {
                format!("{month}-01")
            } else {
                month
            }
        })
        .collect()
}

/// `t` (one row per month in `column`) with a row for every month from its
/// first to its last: the missing months' values empty, in the chart (a
/// gap, not a month dropped from the axis) and in its numbers.
pub(crate) fn every_month(t: &Table, column: &str) -> Table {
    let months = t.texts(column);
    let all = month_range(&months);
    // Filling needs one row per month; a table with several (a month per
    // lane, say) is left as it is.
    let unique: BTreeSet<&String> = months.iter().collect();
    if all.len() == months.len() || t.batches.is_empty() || unique.len() != months.len() {
        return t.clone();
    }
    let rows: UInt32Array = all
        .iter()
        .map(|m| months.iter().position(|k| k == m).map(|i| i as u32))
        .collect();
    let batch = match concat_batches(&t.batches[0].schema(), &t.batches) {
        Ok(batch) => batch,
        Err(_) => return t.clone(),
    };
    let at = t.schema.index_of(column).expect("the month column");
    let mut fields: Vec<_> = batch.schema().fields().iter().cloned().collect();
    fields[at] = Arc::new(Field::new(column, DataType::Utf8, false));
    let schema = Arc::new(Schema::new(fields));
    let columns: Result<Vec<ArrayRef>, _> = batch
        .columns()
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if i == at {
                Ok(Arc::new(StringArray::from(all.clone())) as ArrayRef)
            } else {
                take(c.as_ref(), &rows, None)
            }
        })
        .collect();
    match columns.and_then(|c| RecordBatch::try_new(schema.clone(), c)) {
        Ok(filled) => Table {
            schema,
            batches: vec![filled],
        },
        Err(_) => t.clone(),
    }
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

// ---------------------------------------------------------------- products

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

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Float64Array;

    fn texts(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn month_ranges_fill_the_gaps_in_their_format() {
        assert_eq!(
            month_range(&texts(&["2025-11-01", "2026-02-01"])),
            texts(&["2025-11-01", "2025-12-01", "2026-01-01", "2026-02-01"])
        );
        assert_eq!(
            month_range(&texts(&["2026-03", "2026-01"])),
            texts(&["2026-01", "2026-02", "2026-03"])
        );
        // Not months: as they are.
        assert_eq!(
            month_range(&texts(&["red", "2026-01"])),
            texts(&["red", "2026-01"])
        );
        assert_eq!(month_range(&texts(&["2026-13"])), texts(&["2026-13"]));
    }

    #[test]
    fn every_month_adds_empty_rows_for_missing_months() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("month", DataType::Utf8, false),
            Field::new("items", DataType::Float64, true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(vec!["2026-01-01", "2026-04-01"])),
                Arc::new(Float64Array::from(vec![3.0, 5.0])),
            ],
        )
        .unwrap();
        let t = Table {
            schema,
            batches: vec![batch],
        };
        let filled = every_month(&t, "month");
        assert_eq!(
            filled.texts("month"),
            texts(&["2026-01-01", "2026-02-01", "2026-03-01", "2026-04-01"])
        );
        assert_eq!(filled.numbers("items"), [Some(3.0), None, None, Some(5.0)]);

        // Two rows of one month: not a table of months, left as it is.
        let twice = RecordBatch::try_new(
            t.schema.clone(),
            vec![
                Arc::new(StringArray::from(vec![
                    "2026-01-01",
                    "2026-01-01",
                    "2026-04-01",
                ])),
                Arc::new(Float64Array::from(vec![3.0, 4.0, 5.0])),
            ],
        )
        .unwrap();
        let twice = Table {
            schema: t.schema.clone(),
            batches: vec![twice],
        };
        assert_eq!(every_month(&twice, "month").rows(), 3);
    }
}
