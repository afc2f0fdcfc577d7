//! Meta commands: `\d`, `\df`, `\r`, `\o`, ... (see `HELP`).

use std::sync::Arc;

use aduana_engine::output::Format;
use arrow::array::{RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::logical_expr::Documentation;

use crate::script::words;
use crate::{Error, Flow, Shell, Sink};

pub const HELP: &str = "\
Meta commands (one per line; SQL statements end with ;)
  \\d                 tables and views
  \\dt, \\dv           tables only, views only
  \\d TABLE           columns of TABLE and their SQL types (\\d+ TABLE: with Arrow types)
  \\df [PATTERN]      Aduana's functions with their syntax, or all functions matching PATTERN
                     (* and ? wildcards)
  \\df+ NAME          the full documentation of a function
  \\timing [on|off]   rows and elapsed time after each statement (scripts)
  \\format FORMAT     table, csv, json, ndjson or parquet (parquet needs \\o FILE)
  \\x [on|off]        expanded display: one record per block
  \\maxrows N         rows of a table shown at the terminal (the rest are counted)
  \\o [FILE]          send results to FILE (replaced); \\o alone: back to the terminal
  \\i FILE            run the commands and statements in FILE
  \\model             the current risk model
  \\reports           the named reports and their parameters
  \\r NAME [k=v ...]  run a named report with parameters
  \\q                 leave (also Ctrl-D); Ctrl-C cancels a running query
  \\?                 this help";

/// Deepest `\i` nesting, against scripts that include themselves.
const MAX_INCLUDE_DEPTH: usize = 16;

impl Shell {
    pub(crate) async fn meta(&mut self, line: &str, out: Sink<'_>) -> Result<Flow, Error> {
        let args = words(line);
        let Some(command) = args.first() else {
            return Err("empty meta command: \\? lists them".into());
        };
        let rest = &args[1..];
        match (command.as_str(), rest) {
            ("q" | "quit", []) => return Ok(Flow::Quit),
            ("?" | "help", []) => writeln!(out, "{HELP}")?,
            ("d", []) => {
                self.run_sql(
                    "SELECT table_schema AS schema, table_name AS name, table_type AS type \
                     FROM information_schema.tables WHERE table_schema <> 'information_schema' \
                     ORDER BY table_schema, table_name",
                    None,
                    out,
                )
                .await?
            }
            ("dt" | "dv", []) => {
                let kind = if command == "dt" {
                    "BASE TABLE"
                } else {
                    "VIEW"
                };
                self.run_sql(
                    &format!(
                        "SELECT table_schema AS schema, table_name AS name, table_type AS type \
                         FROM information_schema.tables WHERE table_schema <> 'information_schema' \
                         AND table_type = '{kind}' ORDER BY table_schema, table_name"
                    ),
                    None,
                    out,
                )
                .await?
            }
            ("d", [table]) => self.describe(table, false, out).await?,
            ("d+", [table]) => self.describe(table, true, out).await?,
            ("df", []) => self.functions(None, out).await?,
            ("df", [pattern]) => self.functions(Some(pattern), out).await?,
            ("df+", [name]) => {
                let text = self.documentation(name)?;
                writeln!(self.writer(out), "{text}")?
            }
            ("timing", _) => self.settings.timing = toggle(self.settings.timing, rest, "timing")?,
            ("x", _) => self.settings.expanded = toggle(self.settings.expanded, rest, "x")?,
            ("format", [format]) => {
                self.settings.format = format.parse::<Format>()?;
            }
            ("maxrows", [n]) => {
                self.settings.max_rows = n
                    .parse::<usize>()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| format!("\\maxrows {n}: give a number of rows above 0"))?
            }
            ("o", []) => {
                self.finish()?;
                eprintln!("results go to the terminal again");
            }
            ("o", [path]) => self.redirect_to(path)?,
            ("i", [path]) => return self.include(path, out).await,
            ("model", []) => {
                let expanded = std::mem::replace(&mut self.settings.expanded, true);
                let result = self
                    .run_sql("SELECT * FROM risk_model_info()", None, out)
                    .await;
                self.settings.expanded = expanded;
                result?
            }
            ("reports", []) => self.reports(out).await?,
            ("r", [name, assignments @ ..]) => self.report(name, assignments, out).await?,
            _ => {
                return Err(
                    format!("unknown or malformed meta command \\{line} (\\? lists them)").into(),
                );
            }
        }
        Ok(Flow::Continue)
    }

    /// Where a meta command's own text goes: the `\o` file or the sink.
    fn writer<'w>(&'w mut self, out: Sink<'w>) -> Sink<'w> {
        match &mut self.redirect {
            Some((_, file)) => file,
            None => out,
        }
    }

    /// Columns of `table` with their SQL types; `plus`: with the Arrow
    /// types too.
    async fn describe(&mut self, table: &str, plus: bool, out: Sink<'_>) -> Result<(), Error> {
        let frame = self
            .session
            .context()
            .table(table)
            .await
            .map_err(|_| format!("no table or view named {table} (\\d lists them)"))?;
        let schema = frame.schema().as_arrow().clone();
        let fields = schema.fields();
        let mut names = vec!["column", "type", "nullable"];
        let mut columns = vec![
            fields.iter().map(|f| f.name().clone()).collect(),
            fields.iter().map(|f| sql_type(f.data_type())).collect(),
            fields
                .iter()
                .map(|f| if f.is_nullable() { "YES" } else { "NO" }.to_string())
                .collect(),
        ];
        if plus {
            names.push("arrow_type");
            columns.push(fields.iter().map(|f| f.data_type().to_string()).collect());
        }
        let batch = string_batch(&names, columns)?;
        self.show_batch(batch, out).await
    }

    /// Functions with the first sentence of their description: Aduana's,
    /// or every function whose name matches `pattern`.
    async fn functions(&mut self, pattern: Option<&String>, out: Sink<'_>) -> Result<(), Error> {
        let state = self.session.context().state();
        let mut rows: Vec<(String, &str, Option<&Documentation>)> = Vec::new();
        for (name, f) in state.scalar_functions() {
            rows.push((name.clone(), "scalar", f.documentation()));
        }
        for (name, f) in state.aggregate_functions() {
            rows.push((name.clone(), "aggregate", f.documentation()));
        }
        for (name, f) in state.window_functions() {
            rows.push((name.clone(), "window", f.documentation()));
        }
        for name in state.table_functions().keys() {
            rows.push((name.clone(), "table", None));
        }
        let aduana = |name: &str, doc: Option<&Documentation>| {
            doc.is_some_and(|d| d.doc_section.label == aduana_engine::DOC_SECTION.label)
                || name == "risk_model_info"
        };
        rows.retain(|(name, _, doc)| match pattern {
            None => aduana(name, *doc),
            Some(p) => wildcard_match(&p.to_lowercase(), &name.to_lowercase()),
        });
        if rows.is_empty() {
            return Err(match pattern {
                Some(p) => format!("no function matches {p}"),
                None => "no Aduana functions are registered".into(),
            }
            .into());
        }
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        let first_sentence = |doc: Option<&Documentation>| {
            doc.map_or(String::new(), |d| {
                let text = d.description.replace('\n', " ");
                match text.find(". ") {
                    Some(end) => text[..=end].to_string(),
                    None => text,
                }
            })
        };
        let batch = string_batch(
            &["name", "kind", "syntax", "description"],
            vec![
                rows.iter().map(|r| r.0.clone()).collect(),
                rows.iter().map(|r| r.1.to_string()).collect(),
                rows.iter()
                    .map(|r| r.2.map(|d| d.syntax_example.clone()).unwrap_or_default())
                    .collect(),
                rows.iter().map(|r| first_sentence(r.2)).collect(),
            ],
        )?;
        self.show_batch(batch, out).await
    }

    fn documentation(&self, name: &str) -> Result<String, Error> {
        let state = self.session.context().state();
        let lower = name.to_lowercase();
        let doc = state
            .scalar_functions()
            .get(&lower)
            .and_then(|f| f.documentation())
            .or_else(|| {
                state
                    .aggregate_functions()
                    .get(&lower)
                    .and_then(|f| f.documentation())
            })
            .or_else(|| {
                state
                    .window_functions()
                    .get(&lower)
                    .and_then(|f| f.documentation())
            });
        let Some(doc) = doc else {
            return Err(format!("no documented function named {name} (\\df lists them)").into());
        };
        let mut text = format!(
            "{}\n\n{}\n\nSyntax: {}\n",
            lower, doc.description, doc.syntax_example
        );
        if let Some(arguments) = &doc.arguments {
            text.push_str("\nArguments:\n");
            for (argument, meaning) in arguments {
                text.push_str(&format!("  {argument}: {meaning}\n"));
            }
        }
        if let Some(example) = &doc.sql_example {
            text.push_str(&format!("\nExample:\n{example}\n"));
        }
        if let Some(related) = &doc.related_udfs {
            text.push_str(&format!("\nSee also: {}\n", related.join(", ")));
        }
        Ok(text)
    }

    async fn reports(&mut self, out: Sink<'_>) -> Result<(), Error> {
        let reports = aduana_reports::all();
        let params = |r: &aduana_reports::Report| {
            r.params
                .iter()
                .map(|p| match &p.default {
                    Some(d) => format!("{} {} = {d}", p.name, p.kind.name()),
                    None => format!("{} {} (required)", p.name, p.kind.name()),
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let batch = string_batch(
            &["name", "title", "parameters"],
            vec![
                reports.iter().map(|r| r.name.to_string()).collect(),
                reports.iter().map(|r| r.title.clone()).collect(),
                reports.iter().map(params).collect(),
            ],
        )?;
        self.show_batch(batch, out).await
    }

    /// Runs a named report with `name=value` parameters, bound as values.
    pub async fn report(
        &mut self,
        name: &str,
        assignments: &[String],
        out: Sink<'_>,
    ) -> Result<(), Error> {
        let given = assignments
            .iter()
            .map(|a| aduana_reports::parse_assignment(a))
            .collect::<Result<Vec<_>, _>>()?;
        let (report, params) = self.session.report_statement(name, &given)?;
        self.run_sql(report.sql, Some(&params), out)
            .await
            .map_err(|e| {
                let e = e.to_string();
                self.session
                    .missing_table(name, &e)
                    .unwrap_or_else(|| format!("report {name}: {e}"))
                    .into()
            })
    }

    fn redirect_to(&mut self, path: &str) -> Result<(), Error> {
        if self
            .session
            .is_inside_warehouse_path(std::path::Path::new(path))
        {
            return Err(format!(
                "\\o {path} refused: it is inside the warehouse, which the shell never writes to"
            )
            .into());
        }
        let file = std::fs::File::create(path).map_err(|e| format!("cannot write {path}: {e}"))?;
        self.finish()?;
        self.redirect = Some((path.into(), std::io::BufWriter::new(file)));
        Ok(())
    }

    async fn include(&mut self, path: &str, out: Sink<'_>) -> Result<Flow, Error> {
        if self.depth >= MAX_INCLUDE_DEPTH {
            return Err(format!("\\i {path}: scripts nested over {MAX_INCLUDE_DEPTH} deep").into());
        }
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
        self.depth += 1;
        let result = Box::pin(self.run_script(&text, out)).await;
        self.depth -= 1;
        result.map_err(|e| format!("{path}: {e}").into())
    }

    /// Shows a batch the shell made (lists of tables, functions, reports)
    /// as any query result.
    async fn show_batch(&mut self, batch: RecordBatch, out: Sink<'_>) -> Result<(), Error> {
        let frame = self.session.context().read_batch(batch)?;
        let (rows, shown) = self.show_frame(frame, out).await?;
        if self.interactive {
            self.flush(out)?;
            eprintln!("{}", crate::footer(rows, shown, None));
        }
        Ok(())
    }
}

fn string_batch(names: &[&str], columns: Vec<Vec<String>>) -> Result<RecordBatch, Error> {
    let schema = Schema::new(
        names
            .iter()
            .map(|n| Field::new(*n, DataType::Utf8, false))
            .collect::<Vec<_>>(),
    );
    let arrays = columns
        .into_iter()
        .map(|c| Arc::new(StringArray::from(c)) as _)
        .collect();
    Ok(RecordBatch::try_new(Arc::new(schema), arrays)?)
}

fn toggle(current: bool, args: &[String], name: &str) -> Result<bool, Error> {
    let value = match args {
        [] => !current,
        [v] if v == "on" => true,
        [v] if v == "off" => false,
        _ => return Err(format!("\\{name}: use on, off or nothing (to switch)").into()),
    };
    eprintln!("{name} is {}", if value { "on" } else { "off" });
    Ok(value)
}

/// Shell-style wildcards: `*` any run, `?` one character; a pattern
/// without wildcards matches names containing it.
fn wildcard_match(pattern: &str, name: &str) -> bool {
    if !pattern.contains(['*', '?']) {
        return name.contains(pattern);
    }
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    // Classic two-pointer matcher with backtracking to the last `*`.
    let (mut i, mut j, mut star, mut mark) = (0, 0, None, 0);
    while j < n.len() {
        if i < p.len() && (p[i] == '?' || p[i] == n[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some(i);
            mark = j;
            i += 1;
        } else if let Some(s) = star {
            i = s + 1;
            mark += 1;
            j = mark;
        } else {
            return false;
        }
    }
    p[i..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::wildcard_match;

    #[test]
    fn wildcards() {
        assert!(wildcard_match("hs*", "hs_suggest"));
        assert!(wildcard_match("*risk*", "origin_risk"));
        assert!(wildcard_match("hs?", "hs6") && !wildcard_match("hs?", "hs_valid"));
        assert!(wildcard_match("risk", "revenue_at_risk"));
        assert!(!wildcard_match("*x", "hs6"));
    }
}

/// The SQL name of an Arrow type, as `\\d` shows it (what a `CAST` or a
/// `CREATE TABLE` would write).
fn sql_type(t: &DataType) -> String {
    match t {
        DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 => "VARCHAR".into(),
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Int8 => "TINYINT".into(),
        DataType::Int16 => "SMALLINT".into(),
        DataType::Int32 => "INTEGER".into(),
        DataType::Int64 => "BIGINT".into(),
        DataType::UInt8 => "TINYINT UNSIGNED".into(),
        DataType::UInt16 => "SMALLINT UNSIGNED".into(),
        DataType::UInt32 => "INTEGER UNSIGNED".into(),
        DataType::UInt64 => "BIGINT UNSIGNED".into(),
        DataType::Float16 | DataType::Float32 => "REAL".into(),
        DataType::Float64 => "DOUBLE".into(),
        DataType::Decimal32(p, s)
        | DataType::Decimal64(p, s)
        | DataType::Decimal128(p, s)
        | DataType::Decimal256(p, s) => format!("DECIMAL({p}, {s})"),
        DataType::Date32 | DataType::Date64 => "DATE".into(),
        DataType::Timestamp(_, None) => "TIMESTAMP".into(),
        DataType::Timestamp(_, Some(_)) => "TIMESTAMP WITH TIME ZONE".into(),
        DataType::Time32(_) | DataType::Time64(_) => "TIME".into(),
        DataType::Interval(_) => "INTERVAL".into(),
        DataType::Binary | DataType::BinaryView | DataType::LargeBinary => "BYTEA".into(),
        DataType::List(f) | DataType::LargeList(f) | DataType::ListView(f) => {
            format!("{}[]", sql_type(f.data_type()))
        }
        DataType::Dictionary(_, value) => sql_type(value),
        DataType::Struct(fields) => format!(
            "STRUCT({})",
            fields
                .iter()
                .map(|f| format!("{} {}", f.name(), sql_type(f.data_type())))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    }
}
