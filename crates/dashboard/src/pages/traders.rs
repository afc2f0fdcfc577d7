//! The traders page: segments, and the audit candidates ranked in a table
//! an auditor can work through (one line per importer, with its name, AEO
//! status and sector; filters; any column sorted; pages of
//! [`SHOWN_ROWS`], or `rows`); the same ranking downloads whole as CSV or Parquet.

use std::collections::HashMap;
use std::fmt::Write;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use datafusion::common::JoinType;
use datafusion::dataframe::DataFrame;
use datafusion::functions::expr_fn::{coalesce, lower, strpos};
use datafusion::prelude::{col, lit};

use aduana_engine::output::Format;

use super::grouped;
use super::{
    Params, SHOWN_ROWS, attachment, bar_figure, error_page, file_of, int_param, named, panel,
    respond, trader_link,
};
use crate::App;
use crate::data::{Data, PageError, collect};
use crate::html::{self, Table, encode, escape, failed, link, section};

/// Columns the ranking sorts on (a whitelist: the name becomes part of a
/// plan).
const SORTABLE: [&str; 14] = [
    "importer_id",
    "name",
    "sector",
    "segment",
    "items",
    "customs_value",
    "expected_revenue_at_risk",
    "max_risk_score",
    "high_risk_items",
    "valuation_flags",
    "classification_flags",
    "origin_flags",
    "fraud_found",
    "hit_rate_pct",
];

/// The most importers one page may show (`rows`).
const MAX_PAGE_ROWS: i64 = 1000;

/// What the ranking shows, from the query string: filters, order, page.
struct Ranking {
    months: i64,
    search: String,
    segment: String,
    flag: String,
    sort: String,
    ascending: bool,
    /// 1-based.
    page: usize,
    /// Importers per page.
    rows: usize,
}

impl Ranking {
    fn parse(params: &HashMap<String, String>) -> Result<Ranking, PageError> {
        let months = int_param(params, "months", 3, 120)?;
        let text = |k: &str| {
            params
                .get(k)
                .map(|v| v.trim().to_string())
                .unwrap_or_default()
        };
        let (search, segment, flag) = (text("q"), text("segment"), text("flag"));
        let sort = match text("sort") {
            s if s.is_empty() => "expected_revenue_at_risk".to_string(),
            s if SORTABLE.contains(&s.as_str()) => s,
            s => {
                return Err(PageError::BadRequest(format!(
                    "cannot sort by {s:?}: sort by one of {}",
                    SORTABLE.join(", ")
                )));
            }
        };
        let ascending = match text("dir").as_str() {
            "" | "desc" => false,
            "asc" => true,
            other => {
                return Err(PageError::BadRequest(format!(
                    "dir must be asc or desc, not {other:?}"
                )));
            }
        };
        if !["", "high", "medium", "low"].contains(&segment.as_str()) {
            return Err(PageError::BadRequest(format!(
                "segment must be high, medium or low, not {segment:?}"
            )));
        }
        if !["", "valuation", "classification", "origin"].contains(&flag.as_str()) {
            return Err(PageError::BadRequest(format!(
                "flag must be valuation, classification or origin, not {flag:?}"
            )));
        }
        let page = int_param(params, "page", 1, 1_000_000)? as usize;
        let rows = int_param(params, "rows", SHOWN_ROWS as i64, MAX_PAGE_ROWS)? as usize;
        Ok(Ranking {
            rows,
            months,
            search,
            segment,
            flag,
            sort,
            ascending,
            page,
        })
    }

    /// `path` with this ranking's query, changed by `overrides`.
    fn href(&self, path: &str, overrides: &[(&str, &str)]) -> String {
        let mut pairs: Vec<(&str, String)> = vec![
            ("months", self.months.to_string()),
            ("q", self.search.clone()),
            ("segment", self.segment.clone()),
            ("flag", self.flag.clone()),
            ("sort", self.sort.clone()),
            ("dir", if self.ascending { "asc" } else { "desc" }.into()),
            ("page", self.page.to_string()),
            ("rows", self.rows.to_string()),
        ];
        for (k, v) in overrides {
            if let Some(p) = pairs.iter_mut().find(|(name, _)| name == k) {
                p.1 = v.to_string();
            }
        }
        let query: Vec<String> = pairs
            .iter()
            .filter(|(k, v)| {
                !v.is_empty()
                    && !(*k == "page" && v == "1")
                    && !(*k == "rows" && *v == SHOWN_ROWS.to_string())
            })
            .map(|(k, v)| format!("{k}={}", encode(v)))
            .collect();
        format!("{path}?{}", query.join("&"))
    }

    /// The candidates this ranking shows, in its order, with each
    /// importer's name, AEO status and sector when the warehouse has
    /// `reference.traders`; and how many candidates there are in all.
    async fn frame(&self, data: &Data) -> Result<(DataFrame, usize), PageError> {
        let candidates = data
            .report(
                "trader_audit_candidates",
                &[("months", self.months.to_string())],
            )
            .await?;
        let failed = |e| PageError::query("trader_audit_candidates", e);
        let mut frame = data.frame_of(&candidates).map_err(failed)?;
        let names: Vec<String> = frame
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        // Who, then what the ranking is by, then the rest of the report.
        let first = [
            "importer_id",
            "name",
            "aeo",
            "sector",
            "segment",
            "expected_revenue_at_risk",
        ];
        let mut shown: Vec<&str> = first.to_vec();
        shown.extend(
            names
                .iter()
                .map(String::as_str)
                .filter(|n| !first.contains(n)),
        );
        frame = match data.directory().await? {
            Some(directory) => frame
                .join(
                    data.frame_of(&directory).map_err(failed)?,
                    JoinType::Left,
                    &["importer_id"],
                    &["directory_id"],
                    None,
                )
                .map_err(failed)?,
            // Without reference.traders the columns are there, empty.
            None => frame
                .with_column("name", lit(datafusion::common::ScalarValue::Utf8(None)))
                .and_then(|f| {
                    f.with_column("aeo", lit(datafusion::common::ScalarValue::Boolean(None)))
                })
                .and_then(|f| {
                    f.with_column("sector", lit(datafusion::common::ScalarValue::Utf8(None)))
                })
                .map_err(failed)?,
        };
        frame = frame.select_columns(&shown).map_err(failed)?;
        if !self.search.is_empty() {
            let needle = lit(self.search.to_lowercase());
            frame = frame
                .filter(
                    strpos(lower(col("importer_id")), needle.clone())
                        .gt(lit(0))
                        .or(strpos(lower(coalesce(vec![col("name"), lit("")])), needle).gt(lit(0))),
                )
                .map_err(failed)?;
        }
        if !self.segment.is_empty() {
            frame = frame
                .filter(col("segment").eq(lit(self.segment.clone())))
                .map_err(failed)?;
        }
        if !self.flag.is_empty() {
            frame = frame
                .filter(col(format!("{}_flags", self.flag)).gt(lit(0)))
                .map_err(failed)?;
        }
        frame = frame
            .sort(vec![
                col(self.sort.as_str()).sort(self.ascending, false),
                col("importer_id").sort(true, false),
            ])
            .map_err(failed)?;
        Ok((frame, candidates.rows()))
    }
}

pub async fn traders(State(app): State<App>, Query(params): Params) -> Response {
    match traders_page(&app.data, &params).await {
        Ok(body) => respond(StatusCode::OK, "Traders", "traders", &body),
        Err(e) => error_page(&e, "traders"),
    }
}

pub(super) async fn traders_page(
    data: &Data,
    params: &HashMap<String, String>,
) -> Result<String, PageError> {
    let ranking = Ranking::parse(params)?;
    let (segments, ranked) =
        futures::join!(data.report("trader_segments", &[]), ranking.frame(data),);
    let mut body = panel(
        "segments",
        "Segments (latest published month)",
        segments.map(|t| segments_panel(&t, data.currency())),
    );
    let (frame, all) = match ranked {
        Ok(ranked) => ranked,
        Err(e) => return Ok(body + &failed("candidates", "Audit candidates", &e.to_string())),
    };
    let matching = collect("trader_audit_candidates", frame).await?;
    let rows = matching.rows();
    let pages = rows.div_ceil(ranking.rows).max(1);
    if ranking.page > pages {
        return Err(PageError::BadRequest(format!(
            "page {} is past the last page ({pages}) of {rows} matching importers",
            ranking.page
        )));
    }
    let first = (ranking.page - 1) * ranking.rows;
    let shown = matching.page(first, ranking.rows);

    let header = |name: &str| {
        if !SORTABLE.contains(&name) {
            return escape(name);
        }
        let (dir, arrow) = match (name == ranking.sort, ranking.ascending) {
            (true, false) => ("asc", " ▼"),
            (true, true) => ("desc", " ▲"),
            (false, _) => (
                if ["importer_id", "name", "sector", "segment"].contains(&name) {
                    "asc"
                } else {
                    "desc"
                },
                "",
            ),
        };
        format!(
            r#"<a href="{}">{}{arrow}</a>"#,
            escape(&ranking.href("/traders", &[("sort", name), ("dir", dir), ("page", "1")])),
            escape(name)
        )
    };
    let option = |value: &str, current: &str, label: &str| {
        format!(
            r#"<option value="{}"{}>{}</option>"#,
            escape(value),
            if value == current { " selected" } else { "" },
            escape(label)
        )
    };
    let mut out = format!(
        r#"<form class="filters" method="get" action="/traders"><label>importer id or name contains<input name="q" value="{}"></label><label>segment<select name="segment">{}{}{}{}</select></label><label>flagged for<select name="flag">{}{}{}{}</select></label><label>months<input name="months" size="3" value="{}"></label><input type="hidden" name="sort" value="{}"><input type="hidden" name="dir" value="{}"><input type="hidden" name="rows" value="{}"><button id="apply">Filter</button></form>"#,
        escape(&ranking.search),
        option("", &ranking.segment, "any"),
        option("high", &ranking.segment, "high"),
        option("medium", &ranking.segment, "medium"),
        option("low", &ranking.segment, "low"),
        option("", &ranking.flag, "any"),
        option("valuation", &ranking.flag, "valuation"),
        option("classification", &ranking.flag, "classification"),
        option("origin", &ranking.flag, "origin"),
        ranking.months,
        escape(&ranking.sort),
        if ranking.ascending { "asc" } else { "desc" },
        ranking.rows,
    );
    let _ = write!(
        out,
        r#"<p class="note" id="matching">{} of {} importers match (the last {} published months); sorted by {} {}. Segment: the highest the importer reached in a month. Reasons to look, not verdicts. Download the ranking: <a id="download-csv" href="{}">CSV</a>, <a id="download-parquet" href="{}">Parquet</a>.</p>"#,
        grouped_count(rows),
        grouped_count(all),
        ranking.months,
        escape(&ranking.sort),
        if ranking.ascending {
            "ascending"
        } else {
            "descending"
        },
        escape(&ranking.href("/traders.csv", &[("page", "1")])),
        escape(&ranking.href("/traders.parquet", &[("page", "1")])),
    );
    out.push_str(r#"<div class="scroll">"#);
    out.push_str(&html::table(
        &shown,
        ranking.rows,
        &[link("importer_id", trader_link)],
        Some(&header),
    ));
    out.push_str("</div>");
    out.push_str(&pager(&ranking, first, shown.rows(), rows, pages));
    body.push_str(&section(
        "candidates",
        "Audit candidates by expected revenue at risk",
        &out,
    ));
    Ok(body)
}

/// "rows 101–200 of 2,494" with links to the previous and next pages.
fn pager(ranking: &Ranking, first: usize, shown: usize, rows: usize, pages: usize) -> String {
    let mut out = String::from(r#"<nav class="pager" id="pager">"#);
    if ranking.page > 1 {
        let previous = (ranking.page - 1).to_string();
        let _ = write!(
            out,
            r#"<a id="previous" href="{}">← previous {}</a> · "#,
            escape(&ranking.href("/traders", &[("page", &previous)])),
            ranking.rows
        );
    }
    let _ = write!(
        out,
        "importers {}–{} of {} (page {} of {pages})",
        grouped_count(if shown == 0 { 0 } else { first + 1 }),
        grouped_count(first + shown),
        grouped_count(rows),
        ranking.page
    );
    if ranking.page < pages {
        let next = (ranking.page + 1).to_string();
        let _ = write!(
            out,
            r#" · <a id="next" href="{}">next {} →</a>"#,
            escape(&ranking.href("/traders", &[("page", &next)])),
            ranking.rows
        );
    }
    out.push_str("</nav>");
    out
}

/// The whole ranking (every matching importer, in the page's order) as a
/// download.
async fn ranking_download(
    app: App,
    params: HashMap<String, String>,
    format: Format,
    content_type: &'static str,
    extension: &str,
) -> Response {
    let body = async {
        let ranking = Ranking::parse(&params)?;
        let (frame, _) = ranking.frame(&app.data).await?;
        file_of("trader_audit_candidates", frame, format).await
    };
    match body.await {
        Ok(body) => attachment(body, content_type, &format!("audit_candidates.{extension}")),
        Err(e) => error_page(&e, "traders"),
    }
}

/// `/traders.csv`: the whole ranking as CSV.
pub async fn traders_csv(State(app): State<App>, Query(params): Params) -> Response {
    ranking_download(app, params, Format::Csv, "text/csv; charset=utf-8", "csv").await
}

/// `/traders.parquet`: the whole ranking as Parquet.
pub async fn traders_parquet(State(app): State<App>, Query(params): Params) -> Response {
    ranking_download(
        app,
        params,
        Format::Parquet,
        "application/vnd.apache.parquet",
        "parquet",
    )
    .await
}

fn segments_panel(t: &Table, currency: &str) -> String {
    let segments = t.texts("segment");
    let mut out = String::new();
    if let Some(month) = t.texts("month").first() {
        let _ = write!(
            out,
            r#"<p class="note">Month {month}: the refresh ranks importers by expected revenue at risk; the top 5% are high, the next 20% medium.</p>"#
        );
    }
    out.push_str(r#"<div class="grid2">"#);
    out.push_str(&bar_figure(
        "Importers by segment",
        "segment",
        "importers",
        &segments,
        &[named("importers", t.numbers("importers"))],
        false,
        &t.project(&["segment", "importers", "items"]),
    ));
    // One magnitude per chart: revenue at risk is a few thousandths of the
    // customs value, and would vanish beside it on one axis.
    for (caption, column, label) in [
        (
            "Expected revenue at risk by segment",
            "expected_revenue_at_risk",
            "expected revenue at risk",
        ),
        ("Customs value by segment", "customs_value", "customs value"),
    ] {
        out.push_str(&bar_figure(
            caption,
            "segment",
            currency,
            &segments,
            &[named(label, t.numbers(column))],
            false,
            &t.project(&["segment", column]),
        ));
    }
    out.push_str("</div>");
    out
}

/// A count with thousands separators.
fn grouped_count(n: usize) -> String {
    grouped(n as f64)
}
