//! HTML: escaping, the page frame, and tables of query results.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Float64Type, Schema, SchemaRef};
use arrow::util::display::{ArrayFormatter, FormatOptions};

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a path segment or query value.
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

const STYLE: &str = r#"
body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #222; background: #f6f7f9; }
header { background: #1f3b57; color: #fff; padding: 10px 24px; display: flex; gap: 24px; align-items: baseline; }
header a { color: #fff; text-decoration: none; }
header a.here { border-bottom: 2px solid #fff; }
header .brand { font-weight: 700; font-size: 18px; }
header form { margin-left: auto; }
main { padding: 16px 24px; max-width: 1500px; }
section { background: #fff; border: 1px solid #dde; border-radius: 6px; padding: 12px 16px; margin-bottom: 16px; }
h1 { font-size: 22px; margin: 4px 0 12px; }
h2 { font-size: 17px; margin: 0 0 8px; }
.grid2 { display: grid; grid-template-columns: repeat(auto-fit, minmax(620px, 1fr)); gap: 16px; }
figure { margin: 0 0 12px; }
figcaption { font-weight: 600; margin-bottom: 4px; }
svg.chart { max-width: 100%; height: auto; background: #fff; }
svg .grid { stroke: #e4e6ea; }
svg .tick { font-size: 11px; fill: #555; }
svg .axis-label { font-size: 12px; fill: #333; }
svg .legend { font-size: 12px; fill: #333; }
details > summary { cursor: pointer; color: #1f5f99; margin: 4px 0; }
table { border-collapse: collapse; font-size: 13px; }
th, td { padding: 3px 8px; border-bottom: 1px solid #e4e6ea; text-align: left; vertical-align: top; }
td { max-width: 44em; white-space: nowrap; }
td.long { max-width: 32em; overflow: hidden; text-overflow: ellipsis; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #eef1f5; position: sticky; top: 0; white-space: nowrap; }
th a { color: #1f3b57; }
.note { color: #555; font-size: 13px; }
.error { background: #fdecea; border-color: #e0a39b; color: #7a1f14; }
.figures { display: flex; flex-wrap: wrap; gap: 12px 32px; }
.figures div b { display: block; font-size: 20px; }
.scroll { max-height: 520px; overflow: auto; }
form.filters { display: flex; gap: 12px; align-items: end; flex-wrap: wrap; margin-bottom: 8px; }
form.filters label { display: flex; flex-direction: column; font-size: 12px; color: #444; }
"#;

/// The page frame: navigation, title, content.
pub fn page(title: &str, nav: &str, body: &str) -> String {
    let link = |href: &str, name: &str, key: &str| {
        format!(
            r#"<a href="{href}"{}>{name}</a>"#,
            if nav == key { r#" class="here""# } else { "" }
        )
    };
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{} · Aduana</title><link rel="icon" href="data:,"><style>{STYLE}</style></head>
<body><header><span class="brand">Aduana</span>{}{}{}
<form action="/go" method="get"><input name="importer" placeholder="importer id" size="12"> <input name="hs" placeholder="HS6" size="6"> <button>Open</button></form></header>
<main><h1>{}</h1>
{body}
</main></body></html>"#,
        escape(title),
        link("/", "Overview", "overview"),
        link("/traders", "Traders", "traders"),
        link("/products", "Products", "products"),
        escape(title),
    )
}

/// A query result held for rendering.
#[derive(Clone)]
pub struct Table {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
}

impl Table {
    pub fn rows(&self) -> usize {
        self.batches.iter().map(|b| b.num_rows()).sum()
    }

    /// The rows `offset..offset + len` (fewer at the end): one page.
    pub fn page(&self, offset: usize, len: usize) -> Table {
        let mut skip = offset;
        let mut left = len;
        let mut batches = Vec::new();
        for batch in &self.batches {
            if left == 0 {
                break;
            }
            if skip >= batch.num_rows() {
                skip -= batch.num_rows();
                continue;
            }
            let take = (batch.num_rows() - skip).min(left);
            batches.push(batch.slice(skip, take));
            left -= take;
            skip = 0;
        }
        Table {
            schema: self.schema.clone(),
            batches,
        }
    }

    /// The named columns only (the numbers of one chart).
    pub fn project(&self, names: &[&str]) -> Table {
        let indices: Vec<usize> = names.iter().map(|n| self.column_index(n)).collect();
        Table {
            schema: Arc::new(self.schema.project(&indices).expect("columns exist")),
            batches: self
                .batches
                .iter()
                .map(|b| b.project(&indices).expect("columns exist"))
                .collect(),
        }
    }

    /// The table with a column `hs_description` right after `column`: the
    /// description of each code's subheading, else of its heading, else of
    /// its chapter (a national tariff line of 8 or 10 digits reads as its
    /// subheading's). Codes with no description (or not HS codes at all,
    /// like origins beside headings in one column) get NULL.
    pub fn with_hs_descriptions(&self, column: &str, names: &HashMap<String, String>) -> Table {
        let at = self.column_index(column);
        let describe = |code: &str| {
            let digits: String = code.chars().filter(|c| !matches!(c, '.' | ' ')).collect();
            if digits.len() < 2 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            [6, 4, 2]
                .into_iter()
                .filter(|&n| n <= digits.len())
                .find_map(|n| names.get(&digits[..n]))
                .map(String::as_str)
        };
        let with_description = |schema: &Schema| {
            let mut fields: Vec<_> = schema.fields().iter().cloned().collect();
            fields.insert(
                at + 1,
                Arc::new(Field::new("hs_description", DataType::Utf8, true)),
            );
            Arc::new(Schema::new(fields))
        };
        let schema = with_description(&self.schema);
        // A batch's own schema can differ from the table's in types the
        // display does not care about (an integer sum typed as float).
        let batches = self
            .batches
            .iter()
            .map(|batch| {
                let codes = Table {
                    schema: batch.schema(),
                    batches: vec![batch.clone()],
                }
                .texts(column);
                let descriptions: ArrayRef =
                    Arc::new(StringArray::from_iter(codes.iter().map(|c| describe(c))));
                let mut columns = batch.columns().to_vec();
                columns.insert(at + 1, descriptions);
                RecordBatch::try_new(with_description(&batch.schema()), columns)
                    .expect("one more text column")
            })
            .collect();
        Table { schema, batches }
    }

    fn column_index(&self, name: &str) -> usize {
        self.schema
            .index_of(name)
            .unwrap_or_else(|_| panic!("the query behind this page has no column {name}"))
    }

    /// A column as numbers (NULL and non-numeric as `None`).
    pub fn numbers(&self, name: &str) -> Vec<Option<f64>> {
        let index = self.column_index(name);
        let mut out = Vec::with_capacity(self.rows());
        for batch in &self.batches {
            match cast(batch.column(index), &DataType::Float64) {
                Ok(array) => out.extend(array.as_primitive::<Float64Type>().iter()),
                Err(_) => out.extend(std::iter::repeat_n(None, batch.num_rows())),
            }
        }
        out
    }

    /// A column as display text (NULL as empty).
    pub fn texts(&self, name: &str) -> Vec<String> {
        let index = self.column_index(name);
        let options = FormatOptions::default();
        let mut out = Vec::with_capacity(self.rows());
        for batch in &self.batches {
            let array = batch.column(index);
            match ArrayFormatter::try_new(array.as_ref(), &options) {
                Ok(formatter) => {
                    for row in 0..array.len() {
                        out.push(formatter.value(row).to_string());
                    }
                }
                Err(_) => out.extend(std::iter::repeat_n(String::new(), array.len())),
            }
        }
        out
    }
}

/// A column whose cells link to another page.
pub struct Link {
    pub column: &'static str,
    pub href: fn(&str) -> String,
}

pub fn link(column: &'static str, href: fn(&str) -> String) -> Link {
    Link { column, href }
}

/// Text longer than this many characters is cut to the column's width with
/// an ellipsis (the whole text shows on hover and in the downloads): one
/// line per row, whatever the reasons say.
const LONG_TEXT: usize = 40;

/// Renders `table` as HTML, numbers right-aligned; `limit` rows at most;
/// `links` turns the cells of the named columns into links.
pub fn table(
    table: &Table,
    limit: usize,
    links: &[Link],
    headers: Option<&dyn Fn(&str) -> String>,
) -> String {
    let mut out = String::from("<table><thead><tr>");
    let numeric: Vec<bool> = table
        .schema
        .fields()
        .iter()
        .map(|f| f.data_type().is_numeric())
        .collect();
    let is_integer: Vec<bool> = table
        .schema
        .fields()
        .iter()
        .map(|f| f.data_type().is_integer())
        .collect();
    for (field, num) in table.schema.fields().iter().zip(&numeric) {
        let name = field.name();
        let label = match headers {
            Some(render) => render(name),
            None => escape(name),
        };
        let _ = write!(
            out,
            r#"<th data-column="{}"{}>{label}</th>"#,
            escape(name),
            if *num { r#" class="num""# } else { "" }
        );
    }
    out.push_str("</tr></thead><tbody>");
    let options = FormatOptions::default().with_null("");
    let mut written = 0;
    'batches: for batch in &table.batches {
        let formatters: Vec<_> = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).ok())
            .collect();
        for row in 0..batch.num_rows() {
            if written == limit {
                break 'batches;
            }
            out.push_str("<tr>");
            for (i, formatter) in formatters.iter().enumerate() {
                let value = formatter
                    .as_ref()
                    .map(|f| f.value(row).to_string())
                    .unwrap_or_default();
                let name = table.schema.field(i).name();
                // Numbers as a reader takes them in (separators, a few
                // significant decimals); the exact value on hover and in
                // the downloads. Linked numbers (ids) stay as they are.
                let exact = value.clone();
                let linked = links.iter().any(|l| l.column == name.as_str());
                let value = if numeric[i] && !linked {
                    display_number(&value, is_integer[i])
                } else {
                    value
                };
                let cell = match links.iter().find(|l| l.column == name.as_str()) {
                    Some(l) if !value.is_empty() => {
                        format!(
                            r#"<a href="{}">{}</a>"#,
                            escape(&(l.href)(&value)),
                            escape(&value)
                        )
                    }
                    _ => escape(&value),
                };
                let class = if numeric[i] && exact != value {
                    format!(r#" class="num" title="{}""#, escape(&exact))
                } else if numeric[i] {
                    r#" class="num""#.to_string()
                } else if value.chars().count() > LONG_TEXT {
                    format!(r#" class="long" title="{}""#, escape(&value))
                } else {
                    String::new()
                };
                let _ = write!(out, r#"<td{class}>{cell}</td>"#);
            }
            out.push_str("</tr>");
            written += 1;
        }
    }
    out.push_str("</tbody></table>");
    if table.rows() > written {
        let _ = write!(
            out,
            r#"<p class="note">{written} of {} rows shown.</p>"#,
            table.rows()
        );
    }
    out
}

/// A number as a table shows it: whole numbers of five digits or more with
/// thousands separators (a year or an item number keeps its four digits),
/// other numbers rounded to what can be read: whole above a thousand, two
/// decimals above one, three significant digits below. Text that is not a
/// number is returned as it is.
pub fn display_number(text: &str, integer: bool) -> String {
    let Ok(v) = text.parse::<f64>() else {
        return text.to_string();
    };
    if !v.is_finite() {
        return text.to_string();
    }
    if integer {
        return if v.abs() >= 10_000.0 {
            group_digits(text)
        } else {
            text.to_string()
        };
    }
    let rounded = if v == 0.0 {
        "0".to_string()
    } else if v.abs() >= 1000.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        let decimals = (2 - v.abs().log10().floor() as i32).clamp(3, 8) as usize;
        format!("{v:.decimals$}")
    };
    group_digits(&rounded)
}

/// `-1234567.5` as `-1,234,567.5`.
pub(crate) fn group_digits(number: &str) -> String {
    let (sign, rest) = match number.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", number),
    };
    let (whole, fraction) = match rest.find('.') {
        Some(dot) => rest.split_at(dot),
        None => (rest, ""),
    };
    let mut out = String::from(sign);
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out.push_str(fraction);
    out
}

/// A chart with its numbers one click away.
pub fn figure(caption: &str, svg: &str, numbers: &str) -> String {
    format!(
        r#"<figure><figcaption>{}</figcaption>{svg}<details><summary>Numbers</summary><div class="scroll">{numbers}</div></details></figure>"#,
        escape(caption)
    )
}

/// A section with a heading.
pub fn section(id: &str, heading: &str, body: &str) -> String {
    format!(
        r#"<section id="{}"><h2>{}</h2>{body}</section>"#,
        escape(id),
        escape(heading)
    )
}

/// A panel that could not be drawn, saying why (the rest of the page
/// still renders).
pub fn failed(id: &str, heading: &str, message: &str) -> String {
    format!(
        r#"<section id="{}" class="error"><h2>{}</h2><p>{}</p></section>"#,
        escape(id),
        escape(heading),
        escape(message)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{Field, Schema};

    #[test]
    fn escapes_and_encodes() {
        assert_eq!(
            escape(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(encode("IMP 01/é"), "IMP%2001%2F%C3%A9");
    }

    #[test]
    fn hs_codes_get_the_description_of_their_subheading_heading_or_chapter() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("code", DataType::Utf8, true),
            Field::new("n", DataType::Int64, false),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(vec![
                    Some("85176200"),
                    Some("8517.99"),
                    Some("0901"),
                    Some("CN"),
                    None,
                ])),
                Arc::new(Int64Array::from(vec![1, 2, 3, 4, 5])),
            ],
        )
        .unwrap();
        let t = Table {
            schema,
            batches: vec![batch],
        };
        let names: HashMap<String, String> = [
            ("851762", "Machines for reception"),
            ("8517", "Telephone sets"),
            ("09", "Coffee, tea"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let d = t.with_hs_descriptions("code", &names);
        assert_eq!(d.schema.field(1).name(), "hs_description");
        assert_eq!(
            d.texts("hs_description"),
            [
                "Machines for reception",
                "Telephone sets",
                "Coffee, tea",
                "",
                ""
            ]
        );
        assert_eq!(d.numbers("n"), t.numbers("n"));
    }

    #[test]
    fn numbers_are_grouped_and_rounded_for_reading() {
        assert_eq!(display_number("49649238035.71", false), "49,649,238,036");
        assert_eq!(display_number("-1234.6", false), "-1,235");
        assert_eq!(display_number("12.345", false), "12.35");
        assert_eq!(display_number("0.04417377114117005", false), "0.0442");
        assert_eq!(display_number("0.5", false), "0.500");
        assert_eq!(display_number("0", false), "0");
        assert_eq!(display_number("NaN", false), "NaN");
        assert_eq!(display_number("2026", true), "2026");
        assert_eq!(display_number("2494000", true), "2,494,000");
        assert_eq!(display_number("-12345", true), "-12,345");
        assert_eq!(display_number("", true), "");
    }

    #[test]
    fn tables_render_values_links_and_limits() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("importer_id", DataType::Utf8, true),
            Field::new("items", DataType::Int64, false),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(vec![Some("IMP<1>"), None, Some("IMP3")])),
                Arc::new(Int64Array::from(vec![5, 6, 7])),
            ],
        )
        .unwrap();
        let t = Table {
            schema,
            batches: vec![batch],
        };
        assert_eq!(t.numbers("items"), vec![Some(5.0), Some(6.0), Some(7.0)]);
        assert_eq!(t.texts("importer_id")[0], "IMP<1>");
        let html = table(
            &t,
            2,
            &[link("importer_id", |v| format!("/traders/{}", encode(v)))],
            None,
        );
        assert!(html.contains(r#"<a href="/traders/IMP%3C1%3E">IMP&lt;1&gt;</a>"#));
        assert!(html.contains(r#"<td class="num">6</td>"#));
        assert!(!html.contains("IMP3"));
        assert!(html.contains("2 of 3 rows shown"));
    }
}
