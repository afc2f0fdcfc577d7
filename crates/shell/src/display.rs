//! Results for a person at a terminal: a table that fits the terminal's
//! width (long values cut with `…`, columns wrapped by comfy-table), or
//! one record per block (`\x`), and at most `max_rows` rows with a note of
//! how many were not shown.

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type, SchemaRef};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use comfy_table::{CellAlignment, ContentArrangement, Table, presets};
use datafusion::error::Result;

/// Longest value shown in a table cell; longer ones are cut (`\x` shows
/// them whole).
const MAX_CELL: usize = 60;

/// Lays out `batches` (already capped to the rows to show).
pub fn render(
    schema: &SchemaRef,
    batches: &[RecordBatch],
    expanded: bool,
    width: u16,
) -> Result<String> {
    let options = FormatOptions::default().with_null("NULL");
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let numeric: Vec<bool> = schema
        .fields()
        .iter()
        .map(|f| f.data_type().is_numeric())
        .collect();
    let decimals: Vec<Option<usize>> = (0..schema.fields().len())
        .map(|i| float_decimals(batches, i))
        .collect();
    let mut rows: Vec<Vec<String>> = Vec::new();
    for batch in batches {
        let formatters = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let floats: Vec<Option<ArrayRef>> = batch
            .columns()
            .iter()
            .zip(&decimals)
            .map(|(c, d)| d.and_then(|_| cast(c, &DataType::Float64).ok()))
            .collect();
        for row in 0..batch.num_rows() {
            rows.push(
                formatters
                    .iter()
                    .zip(&floats)
                    .zip(&decimals)
                    .map(|((f, float), decimals)| match (float, decimals) {
                        (Some(float), Some(decimals)) if float.is_valid(row) => {
                            let v = float.as_primitive::<Float64Type>().value(row);
                            rounded(v, *decimals)
                        }
                        _ => f.value(row).to_string(),
                    })
                    .collect(),
            );
        }
    }
    Ok(if expanded {
        expanded_records(&names, &rows)
    } else {
        table(&names, &numeric, &rows, width)
    })
}

/// Decimals to show a floating-point column `i` with (`None`: not a float
/// column): a column's values share one count, so their points line up;
/// enough for four significant digits of its largest value, two for
/// money-sized values. The values stay exact in `\format csv` and the
/// other formats.
fn float_decimals(batches: &[RecordBatch], i: usize) -> Option<usize> {
    let mut largest: Option<f64> = None;
    for batch in batches {
        let column = batch.column(i);
        if !matches!(
            column.data_type(),
            DataType::Float16 | DataType::Float32 | DataType::Float64
        ) {
            return None;
        }
        let values = cast(column, &DataType::Float64).ok()?;
        for v in values.as_primitive::<Float64Type>().iter().flatten() {
            if v.is_finite() {
                largest = Some(largest.map_or(v.abs(), |l: f64| l.max(v.abs())));
            }
        }
    }
    Some(match largest {
        Some(l) if l >= 100.0 => 2,
        Some(l) if l >= 1.0 => 4,
        Some(l) if l > 0.0 => ((3.0 - l.log10().floor()) as usize).clamp(4, 10),
        _ => 4,
    })
}

/// `v` with `decimals` decimals; non-finite values as Rust writes them.
fn rounded(v: f64, decimals: usize) -> String {
    if v.is_finite() {
        format!("{v:.decimals$}")
    } else {
        v.to_string()
    }
}

/// Long text is cut down to this before columns are left out.
const MIN_TEXT: usize = 20;
/// Headers are cut down to this (or their values' width) first.
const MIN_HEADER: usize = 6;

/// Each column's width, so the table fits `width`. Cuts, in this order
/// until it fits: headers wider than their values; long text (reasons,
/// descriptions) down to `MIN_TEXT`; then whole columns from the right.
/// Identifiers, codes and numbers are never cut: an analyst copies them.
fn fit_widths(names: &[&str], rows: &[Vec<String>], width: usize) -> Vec<usize> {
    let values: Vec<usize> = (0..names.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .max()
                .unwrap_or(0)
                .min(MAX_CELL)
        })
        .collect();
    let mut widths: Vec<usize> = names
        .iter()
        .zip(&values)
        .map(|(n, v)| (*v).max(n.chars().count()).clamp(1, MAX_CELL))
        .collect();
    // "| " before each value, " " after it, and the closing "|".
    let total = |w: &[usize]| w.iter().map(|c| c + 3).sum::<usize>() + 1;
    let header_floor: Vec<usize> = names
        .iter()
        .zip(&values)
        .map(|(n, v)| (*v).max(n.chars().count().min(MIN_HEADER)).max(1))
        .collect();
    let text_floor: Vec<usize> = header_floor.iter().map(|&f| f.min(MIN_TEXT)).collect();
    for floor in [&header_floor, &text_floor] {
        // The widest column above its floor gives a character, until the
        // table fits or every column is at its floor.
        while total(&widths) > width {
            let Some(i) = (0..widths.len())
                .filter(|&i| widths[i] > floor[i])
                .max_by_key(|&i| (widths[i], usize::MAX - i))
            else {
                break;
            };
            widths[i] -= 1;
        }
    }
    while widths.len() > 1 && total(&widths) > width {
        widths.pop();
    }
    widths
}

fn table(names: &[&str], numeric: &[bool], rows: &[Vec<String>], width: u16) -> String {
    let widths = fit_widths(names, rows, width as usize);
    let shown = widths.len();
    let mut table = Table::new();
    table
        .load_preset(presets::ASCII_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(names.iter().zip(&widths).map(|(n, w)| cut(n, *w)));
    for row in rows {
        table.add_row(row.iter().zip(&widths).map(|(v, w)| cut(v, *w)));
    }
    // Numbers right-aligned, so their digits line up.
    for (i, _) in numeric.iter().take(shown).enumerate().filter(|(_, n)| **n) {
        if let Some(column) = table.column_mut(i) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    let mut text = table.to_string();
    if shown < names.len() {
        let hidden = names.len() - shown;
        text.push_str(&format!(
            "\n({hidden} more column{} not shown: {}; \\x shows every column)",
            if hidden == 1 { "" } else { "s" },
            names[shown..].join(", ")
        ));
    }
    text
}

fn expanded_records(names: &[&str], rows: &[Vec<String>]) -> String {
    let pad = names.iter().map(|n| n.chars().count()).max().unwrap_or(0);
    let mut out = String::new();
    for (i, row) in rows.iter().enumerate() {
        out.push_str(&format!(
            "-[ RECORD {} ]{}\n",
            i + 1,
            "-".repeat(pad.saturating_sub(4))
        ));
        for (name, value) in names.iter().zip(row) {
            out.push_str(&format!("{name:<pad$} | {value}\n"));
        }
    }
    if rows.is_empty() {
        out.push_str("(no rows)\n");
    }
    out
}

/// `text` with at most `max` characters, newlines shown as spaces.
fn cut(text: &str, max: usize) -> String {
    let flat = text.replace(['\n', '\r'], " ");
    if flat.chars().count() <= max {
        return flat;
    }
    let mut short: String = flat.chars().take(max.saturating_sub(1)).collect();
    short.push('…');
    short
}

/// The terminal's width in columns (`COLUMNS`, or 100 when unknown).
pub fn terminal_width() -> u16 {
    #[cfg(unix)]
    {
        // SAFETY: TIOCGWINSZ fills the winsize struct it is given, and
        // fails harmlessly when standard output is not a terminal.
        let mut size: libc::winsize = unsafe { std::mem::zeroed() };
        if unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut size) } == 0
            && size.ws_col > 0
        {
            return size.ws_col;
        }
    }
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(100)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Float64Array, Int64Array, StringArray};
    use arrow::datatypes::{Field, Schema};
    use std::sync::Arc;

    fn batch() -> (SchemaRef, RecordBatch) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int64, true),
            Field::new("reasons", DataType::Utf8, true),
        ]));
        let long = "unit value 62% below HS 847130 from CN ".repeat(5);
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(vec![Some(1), None])),
                Arc::new(StringArray::from(vec![Some(long.as_str()), Some("short")])),
            ],
        )
        .unwrap();
        (schema, batch)
    }

    #[test]
    fn tables_fit_the_width_and_cut_long_values() {
        let (schema, batch) = batch();
        let text = render(&schema, &[batch.clone()], false, 50).unwrap();
        assert!(text.lines().all(|l| l.chars().count() <= 50), "{text}");
        assert_eq!(
            text.lines().count(),
            6,
            "one line per row, no wrapping: {text}"
        );
        assert!(text.contains("NULL") && text.contains("short"), "{text}");
        assert!(
            !text.contains(&"from CN ".repeat(5)),
            "long values are cut: {text}"
        );
    }

    #[test]
    fn expanded_shows_whole_values_one_record_per_block() {
        let (schema, batch) = batch();
        let text = render(&schema, &[batch], true, 50).unwrap();
        assert!(text.contains("-[ RECORD 2 ]"), "{text}");
        let long = "unit value 62% below HS 847130 from CN ".repeat(5);
        assert!(text.contains(long.trim_end()), "{text}");
        assert!(text.contains("reasons | short"), "{text}");
    }

    #[test]
    fn numbers_are_right_aligned_and_floats_rounded_alike() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("importer", DataType::Utf8, false),
            Field::new("items", DataType::Int64, false),
            Field::new("share", DataType::Float64, true),
            Field::new("value", DataType::Float64, true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(vec!["A", "B"])),
                Arc::new(Int64Array::from(vec![5, 12345])),
                Arc::new(Float64Array::from(vec![Some(0.04417377114117005), None])),
                Arc::new(Float64Array::from(vec![168495.0648786671, 7.5])),
            ],
        )
        .unwrap();
        let text = render(&schema, &[batch], false, 100).unwrap();
        // Four significant digits of the largest share; money with two
        // decimals, the same count down the column.
        assert!(text.contains("| 0.04417 |"), "{text}");
        assert!(
            text.contains("| 168495.06 |") && text.contains("|      7.50 |"),
            "{text}"
        );
        assert!(text.contains("|     5 |"), "integers right-aligned: {text}");
        assert!(text.contains("|    NULL |"), "{text}");
    }
}
