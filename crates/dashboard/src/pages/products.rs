//! Products by risk, and one product's valuation bands.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::{
    Params, error_page, hs6_param, int_param, numbers, panel, product_link, respond, trader_link,
};
use crate::App;
use crate::chart::{self, BandRow, Declared};
use crate::data::{Data, PageError};
use crate::html::{self, Table, escape, figure, link, section};

pub async fn products(State(app): State<App>, Query(params): Params) -> Response {
    match products_page(&app.data, &params).await {
        Ok(body) => respond(StatusCode::OK, "Products", "products", &body),
        Err(e) => error_page(&e, "products"),
    }
}

pub(super) async fn products_page(
    data: &Data,
    params: &HashMap<String, String>,
) -> Result<String, PageError> {
    let months = int_param(params, "months", 3, 120)?;
    let t = data
        .report(
            "products_at_risk",
            &[("months", months.to_string()), ("limit", "50".into())],
        )
        .await?;
    let t = data.describe(&t, "hs6").await?;
    let chart_numbers: Vec<&str> = ["hs6", "hs_description", "expected_revenue_at_risk"]
        .into_iter()
        .filter(|c| t.schema.index_of(c).is_ok())
        .collect();
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
                &format!("expected revenue at risk ({})", data.currency()),
                &top,
                &[numbers(values)],
                false,
            ),
            &html::table(&t.project(&chart_numbers), 20, &links, None),
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
        let described = app.data.nomenclature().await?.and_then(|names| {
            names
                .get(&hs)
                .map(|d| format!(r#"<p id="description">{}</p>"#, escape(d)))
        });
        let mut body = described.unwrap_or_default();
        body.push_str(&section(
            "unit-values",
            "Unit values by origin against the reference band",
            &product_bands(&values, app.data.currency()),
        ));
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

fn product_bands(t: &Table, currency: &str) -> String {
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
            &format!("unit value ({currency} per declared unit, log scale)"),
            &rows,
        ),
        &html::table(t, usize::MAX, &[], None),
    )
}
