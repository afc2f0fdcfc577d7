//! SVG charts drawn on the server: bars, lines and price bands on a log
//! scale. Every chart has a title, labelled axes with
//! units, and a `<title>` tooltip on each mark; its numbers are the table
//! printed under it.

use std::fmt::Write;

use crate::html::escape;

const WIDTH: f64 = 720.0;
const PLOT_LEFT: f64 = 78.0;
const PLOT_RIGHT: f64 = 16.0;
const PLOT_TOP: f64 = 30.0;

/// Colours of the series, in order (readable on white, distinct in grey).
const PALETTE: [&str; 8] = [
    "#1f5f99", "#d9822b", "#3a8d3f", "#b23a3a", "#7b5aa6", "#8c6d31", "#2b9bb0", "#666666",
];

/// A fixed colour for the values the pages use as series names, so a
/// lane or level has the same colour on every chart.
pub fn colour(name: &str, index: usize) -> &'static str {
    match name {
        "high" | "red" | "fraud" => "#b23a3a",
        "medium" | "yellow" => "#d9a62b",
        "low" | "green" | "compliant" => "#3a8d3f",
        "blue" => "#1f5f99",
        _ => PALETTE[index % PALETTE.len()],
    }
}

pub struct Series<'a> {
    pub name: &'a str,
    pub values: Vec<Option<f64>>,
}

/// Rounds `max` up to a 1, 2 or 5 step and returns the ticks from 0.
fn linear_ticks(max: f64) -> Vec<f64> {
    let max = if max.is_finite() && max > 0.0 {
        max
    } else {
        1.0
    };
    let raw = max / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|f| f * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    let n = (max / step).ceil() as usize;
    (0..=n).map(|i| i as f64 * step).collect()
}

/// Short labels for axis values: 1.2k, 3.4M, 5.6G.
pub fn compact(v: f64) -> String {
    let a = v.abs();
    let (scaled, suffix) = if a >= 1e9 {
        (v / 1e9, "G")
    } else if a >= 1e6 {
        (v / 1e6, "M")
    } else if a >= 1e3 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    let text = if scaled.fract() == 0.0 || scaled.abs() >= 100.0 {
        format!("{scaled:.0}")
    } else if scaled.abs() >= 10.0 {
        format!("{scaled:.1}")
    } else {
        format!("{scaled:.2}")
    };
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    };
    format!("{text}{suffix}")
}

fn open_svg(out: &mut String, height: f64, title: &str) {
    let _ = write!(
        out,
        r#"<svg class="chart" role="img" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" xmlns="http://www.w3.org/2000/svg"><title>{}</title>"#,
        escape(title)
    );
}

fn legend(out: &mut String, series: &[&str]) {
    let mut x = PLOT_LEFT;
    for (i, name) in series.iter().enumerate() {
        let _ = write!(
            out,
            r#"<rect x="{x}" y="8" width="10" height="10" fill="{}"/><text x="{}" y="17" class="legend">{}</text>"#,
            colour(name, i),
            x + 14.0,
            escape(name)
        );
        x += 24.0 + 7.0 * name.len() as f64;
    }
}

/// The y axis of a linear scale from 0: grid lines, tick labels, unit.
fn y_axis(
    out: &mut String,
    ticks: &[f64],
    bottom: f64,
    y_label: &str,
) -> impl Fn(f64) -> f64 + use<> {
    let top_value = *ticks.last().unwrap_or(&1.0);
    let plot_height = bottom - PLOT_TOP;
    let y = move |v: f64| bottom - plot_height * (v / top_value).clamp(0.0, 1.0);
    for t in ticks {
        let ty = y(*t);
        let _ = write!(
            out,
            r#"<line x1="{PLOT_LEFT}" x2="{}" y1="{ty:.1}" y2="{ty:.1}" class="grid"/><text x="{}" y="{:.1}" class="tick" text-anchor="end">{}</text>"#,
            WIDTH - PLOT_RIGHT,
            PLOT_LEFT - 6.0,
            ty + 4.0,
            compact(*t)
        );
    }
    let _ = write!(
        out,
        r#"<text class="axis-label" transform="translate(14,{:.1}) rotate(-90)" text-anchor="middle">{}</text>"#,
        PLOT_TOP + plot_height / 2.0,
        escape(y_label)
    );
    y
}

/// A month as a month: `2026-10` for the first day `2026-10-01` that
/// reports use as a month's key; any other label as it is.
fn month_label(label: &str) -> &str {
    match label.strip_suffix("-01") {
        Some(month)
            if month.len() == 7
                && month.as_bytes()[4] == b'-'
                && month
                    .bytes()
                    .enumerate()
                    .all(|(i, b)| i == 4 || b.is_ascii_digit()) =>
        {
            month
        }
        _ => label,
    }
}

/// Category labels under the plot; every k-th when they would overlap.
fn x_labels(out: &mut String, categories: &[String], centre: impl Fn(usize) -> f64, bottom: f64) {
    let slot = (WIDTH - PLOT_LEFT - PLOT_RIGHT) / categories.len().max(1) as f64;
    let longest = categories
        .iter()
        .map(|c| month_label(c).len())
        .max()
        .unwrap_or(1) as f64;
    let every = ((longest * 6.5 + 6.0) / slot).ceil().max(1.0) as usize;
    for (i, c) in categories.iter().enumerate() {
        if i % every != 0 {
            continue;
        }
        let c = month_label(c);
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{:.1}" class="tick" text-anchor="middle">{}</text>"#,
            centre(i),
            bottom + 16.0,
            escape(c)
        );
    }
}

fn x_axis_label(out: &mut String, height: f64, x_label: &str) {
    let _ = write!(
        out,
        r#"<text x="{:.1}" y="{:.1}" class="axis-label" text-anchor="middle">{}</text>"#,
        PLOT_LEFT + (WIDTH - PLOT_LEFT - PLOT_RIGHT) / 2.0,
        height - 6.0,
        escape(x_label)
    );
}

/// Vertical bars per category; several series side by side, or stacked.
pub fn bars(
    title: &str,
    x_label: &str,
    y_label: &str,
    categories: &[String],
    series: &[Series],
    stacked: bool,
) -> String {
    let height = 280.0;
    let bottom = height - 48.0;
    let max = (0..categories.len())
        .map(|i| {
            let values = series.iter().map(|s| s.values[i].unwrap_or(0.0).max(0.0));
            if stacked {
                values.sum::<f64>()
            } else {
                values.fold(0.0, f64::max)
            }
        })
        .fold(0.0, f64::max);
    let mut out = String::new();
    open_svg(&mut out, height, title);
    if series.len() > 1 {
        legend(&mut out, &series.iter().map(|s| s.name).collect::<Vec<_>>());
    }
    let ticks = linear_ticks(max);
    let y = y_axis(&mut out, &ticks, bottom, y_label);
    let slot = (WIDTH - PLOT_LEFT - PLOT_RIGHT) / categories.len().max(1) as f64;
    let groups = if stacked { 1 } else { series.len().max(1) };
    let bar = (slot * 0.8 / groups as f64).max(1.0);
    for (i, category) in categories.iter().enumerate() {
        let mut base = 0.0;
        for (k, s) in series.iter().enumerate() {
            let Some(v) = s.values[i] else { continue };
            let v = v.max(0.0);
            let x = PLOT_LEFT
                + slot * i as f64
                + slot * 0.1
                + if stacked { 0.0 } else { bar * k as f64 };
            let (y0, y1) = if stacked {
                (y(base), y(base + v))
            } else {
                (y(0.0), y(v))
            };
            base += v;
            let _ = write!(
                out,
                r#"<rect x="{x:.1}" y="{y1:.1}" width="{bar:.1}" height="{:.1}" fill="{}"><title>{} {}: {}</title></rect>"#,
                (y0 - y1).max(0.0),
                colour(s.name, k),
                escape(category),
                escape(s.name),
                v
            );
        }
    }
    x_labels(
        &mut out,
        categories,
        |i| PLOT_LEFT + slot * (i as f64 + 0.5),
        bottom,
    );
    x_axis_label(&mut out, height, x_label);
    out.push_str("</svg>");
    out
}

/// Lines per series over the categories; gaps where a value is missing.
/// The value axis reaches `y_max` at least, so that small multiples can
/// share one scale.
pub fn lines(
    title: &str,
    x_label: &str,
    y_label: &str,
    categories: &[String],
    series: &[Series],
    y_max: Option<f64>,
) -> String {
    let height = 280.0;
    let bottom = height - 48.0;
    let max = series
        .iter()
        .flat_map(|s| s.values.iter().flatten())
        .fold(y_max.unwrap_or(0.0), |m: f64, v| m.max(*v));
    let mut out = String::new();
    open_svg(&mut out, height, title);
    legend(&mut out, &series.iter().map(|s| s.name).collect::<Vec<_>>());
    let ticks = linear_ticks(max);
    let y = y_axis(&mut out, &ticks, bottom, y_label);
    let slot = (WIDTH - PLOT_LEFT - PLOT_RIGHT) / categories.len().max(1) as f64;
    let x = |i: usize| PLOT_LEFT + slot * (i as f64 + 0.5);
    for (k, s) in series.iter().enumerate() {
        let colour = colour(s.name, k);
        let mut path = String::new();
        let mut pen_down = false;
        for (i, v) in s.values.iter().enumerate() {
            match v {
                Some(v) => {
                    let _ = write!(
                        path,
                        "{}{:.1},{:.1} ",
                        if pen_down { "L" } else { "M" },
                        x(i),
                        y(*v)
                    );
                    pen_down = true;
                }
                None => pen_down = false,
            }
        }
        let _ = write!(
            out,
            r#"<path d="{path}" fill="none" stroke="{colour}" stroke-width="2"/>"#
        );
        for (i, v) in s.values.iter().enumerate() {
            if let Some(v) = v {
                let _ = write!(
                    out,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{colour}"><title>{} {}: {}</title></circle>"#,
                    x(i),
                    y(*v),
                    escape(&categories[i]),
                    escape(s.name),
                    v
                );
            }
        }
    }
    x_labels(&mut out, categories, x, bottom);
    x_axis_label(&mut out, height, x_label);
    out.push_str("</svg>");
    out
}

/// The declared side of a band row.
pub enum Declared {
    /// Percentiles of the declared values: 10th, 25th, 50th, 75th, 90th.
    Spread([f64; 5]),
    /// Individual declared values.
    Points(Vec<(f64, String)>),
}

/// One row of a band chart: a reference band and what was declared.
pub struct BandRow {
    pub label: String,
    /// Reference low, median, high.
    pub reference: Option<(f64, f64, f64)>,
    pub declared: Declared,
}

/// Rows of declared values against their reference band, on a log scale
/// (prices of one product span orders of magnitude across origins).
pub fn bands(title: &str, x_label: &str, rows: &[BandRow]) -> String {
    let row_height = 26.0;
    let top = PLOT_TOP + 6.0;
    let height = top + row_height * rows.len().max(1) as f64 + 44.0;
    let bottom = height - 44.0;
    let values = rows.iter().flat_map(|r| {
        let reference = r
            .reference
            .map(|(l, m, h)| vec![l, m, h])
            .unwrap_or_default();
        let declared = match &r.declared {
            Declared::Spread(p) => p.to_vec(),
            Declared::Points(points) => points.iter().map(|(v, _)| *v).collect(),
        };
        reference.into_iter().chain(declared)
    });
    let (lo, hi) = values
        .filter(|v| v.is_finite() && *v > 0.0)
        .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let (lo, hi) = if lo > hi { (0.1, 10.0) } else { (lo, hi) };
    let log_lo = lo.log10().floor();
    let log_hi = hi.log10().ceil().max(log_lo + 1.0);
    let left = PLOT_LEFT + 70.0;
    let plot_width = WIDTH - left - PLOT_RIGHT;
    let x = |v: f64| left + plot_width * ((v.max(1e-12).log10() - log_lo) / (log_hi - log_lo));
    let mut out = String::new();
    open_svg(&mut out, height, title);
    let _ = write!(
        out,
        r##"<rect x="{left}" y="8" width="14" height="10" fill="#1f5f99" fill-opacity="0.18"/><text x="{}" y="17" class="legend">reference band (quartiles) and median</text><rect x="{}" y="8" width="14" height="10" fill="#d9822b"/><text x="{}" y="17" class="legend">declared</text>"##,
        left + 18.0,
        left + 270.0,
        left + 288.0
    );
    let mut decade = log_lo;
    while decade <= log_hi {
        for factor in [1.0, 2.0, 5.0] {
            let v = 10f64.powf(decade) * factor;
            if v.log10() > log_hi + 1e-9 {
                break;
            }
            let tx = x(v);
            let _ = write!(
                out,
                r#"<line x1="{tx:.1}" x2="{tx:.1}" y1="{top}" y2="{bottom}" class="grid"/><text x="{tx:.1}" y="{:.1}" class="tick" text-anchor="middle">{}</text>"#,
                bottom + 16.0,
                compact(v)
            );
        }
        decade += 1.0;
    }
    for (i, row) in rows.iter().enumerate() {
        let cy = top + row_height * (i as f64 + 0.5);
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{:.1}" class="tick" text-anchor="end">{}</text>"#,
            left - 6.0,
            cy + 4.0,
            escape(&row.label)
        );
        if let Some((l, m, h)) = row.reference {
            let _ = write!(
                out,
                r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="#1f5f99" fill-opacity="0.18"><title>{} reference: {} to {}, median {}</title></rect><line x1="{:.1}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="#1f5f99" stroke-width="2"/>"##,
                x(l),
                cy - 10.0,
                (x(h) - x(l)).max(1.0),
                20.0,
                escape(&row.label),
                l,
                h,
                m,
                x(m),
                x(m),
                cy - 11.0,
                cy + 11.0
            );
        }
        match &row.declared {
            Declared::Spread([p10, q1, median, q3, p90]) => {
                let _ = write!(
                    out,
                    r##"<line x1="{:.1}" x2="{:.1}" y1="{cy:.1}" y2="{cy:.1}" stroke="#d9822b"/><rect x="{:.1}" y="{:.1}" width="{:.1}" height="8" fill="#d9822b"><title>{} declared: 10% {p10}, quartiles {q1} to {q3}, median {median}, 90% {p90}</title></rect><circle cx="{:.1}" cy="{cy:.1}" r="4" fill="#ffffff" stroke="#d9822b" stroke-width="2"/>"##,
                    x(*p10),
                    x(*p90),
                    x(*q1),
                    cy - 4.0,
                    (x(*q3) - x(*q1)).max(1.0),
                    escape(&row.label),
                    x(*median)
                );
            }
            Declared::Points(points) => {
                for (v, label) in points {
                    let _ = write!(
                        out,
                        r##"<circle cx="{:.1}" cy="{cy:.1}" r="3.5" fill="#d9822b" fill-opacity="0.75"><title>{}</title></circle>"##,
                        x(*v),
                        escape(label)
                    );
                }
            }
        }
    }
    x_axis_label(&mut out, height, x_label);
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_cover_the_maximum_in_round_steps() {
        assert_eq!(linear_ticks(9.0), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        // 1234 / 5 = 247: the next 1-2-5 step is 500.
        assert_eq!(linear_ticks(1234.0), vec![0.0, 500.0, 1000.0, 1500.0]);
        assert_eq!(
            linear_ticks(0.0),
            vec![0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0]
        );
    }

    #[test]
    fn compact_labels() {
        assert_eq!(compact(0.0), "0");
        assert_eq!(compact(1500.0), "1.5k");
        assert_eq!(compact(2_000_000.0), "2M");
        assert_eq!(compact(0.25), "0.25");
        assert_eq!(compact(123_456_789_000.0), "123G");
    }

    #[test]
    fn charts_escape_labels_and_draw_every_value() {
        let svg = bars(
            "t<",
            "month",
            "items",
            &["a&b".to_string(), "c".to_string()],
            &[Series {
                name: "x",
                values: vec![Some(1.0), Some(3.0)],
            }],
            false,
        );
        assert!(svg.contains("a&amp;b") && svg.contains("t&lt;"));
        assert_eq!(svg.matches("<rect").count(), 2);
        let svg = lines(
            "t",
            "month",
            "%",
            &["a".into(), "b".into(), "c".into()],
            &[Series {
                name: "red",
                values: vec![Some(1.0), None, Some(2.0)],
            }],
            None,
        );
        assert_eq!(svg.matches("<circle").count(), 2);
        assert!(svg.contains("M") && !svg.contains(" L"));
        // A shared scale reaches past the series' own maximum.
        let tick = |svg: &str, label: &str| svg.contains(&format!(">{label}</text>"));
        assert!(!tick(&svg, "10"));
        let shared = lines(
            "t",
            "month",
            "%",
            &["a".into(), "b".into(), "c".into()],
            &[Series {
                name: "red",
                values: vec![Some(1.0), None, Some(2.0)],
            }],
            Some(10.0),
        );
        assert!(tick(&shared, "10"), "{shared}");
    }
}
