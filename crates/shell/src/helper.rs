//! What the line editor knows of SQL: completion of keywords, tables,
//! columns, functions, meta commands and report names; highlighting of
//! keywords, strings and comments; and when a statement is complete.

use std::borrow::Cow;
use std::collections::BTreeSet;

use datafusion::sql::sqlparser::keywords::ALL_KEYWORDS;
use rustyline::completion::{Completer, Pair};
use rustyline::highlight::{CmdKind, Highlighter};
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::{Context, Helper};

/// The names completion offers, refreshed after statements that may add
/// tables or views.
#[derive(Debug, Default, Clone)]
pub struct Names {
    /// Tables, unqualified and `schema.table`.
    pub tables: BTreeSet<String>,
    pub columns: BTreeSet<String>,
    pub functions: BTreeSet<String>,
    pub reports: Vec<String>,
}

pub const META_COMMANDS: &[&str] = &[
    "\\d",
    "\\df",
    "\\df+",
    "\\timing",
    "\\format",
    "\\o",
    "\\i",
    "\\model",
    "\\reports",
    "\\r",
    "\\x",
    "\\maxrows",
    "\\q",
    "\\?",
];

pub struct SqlHelper {
    pub names: Names,
    /// Colours only where the terminal shows them.
    pub color: bool,
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '.'
}

impl SqlHelper {
    fn candidates(&self, line: &str, start: usize, word: &str) -> Vec<String> {
        let lower = word.to_lowercase();
        let matches = |name: &&String| name.to_lowercase().starts_with(&lower);
        let before = line[..start].trim_start();
        if let Some(meta) = before.strip_prefix('\\') {
            let command = meta.split_whitespace().next().unwrap_or("");
            return match command {
                "r" => self.names.reports.iter().filter(matches).cloned().collect(),
                "d" => self.names.tables.iter().filter(matches).cloned().collect(),
                "df" | "df+" => self
                    .names
                    .functions
                    .iter()
                    .filter(matches)
                    .cloned()
                    .collect(),
                "format" => ["table", "csv", "json", "ndjson", "parquet"]
                    .iter()
                    .map(|s| s.to_string())
                    .filter(|s| s.starts_with(&lower))
                    .collect(),
                _ => Vec::new(),
            };
        }
        if line[..start].trim().is_empty() && word.starts_with('\\') {
            return META_COMMANDS
                .iter()
                .filter(|m| m.starts_with(word))
                .map(|m| m.to_string())
                .collect();
        }
        let upper = word.chars().next().is_some_and(char::is_uppercase);
        let mut out: Vec<String> = self
            .names
            .tables
            .iter()
            .chain(&self.names.columns)
            .chain(&self.names.functions)
            .filter(matches)
            .cloned()
            .collect();
        out.extend(
            ALL_KEYWORDS
                .iter()
                .filter(|k| k.to_lowercase().starts_with(&lower))
                .map(|k| {
                    if upper {
                        k.to_string()
                    } else {
                        k.to_lowercase()
                    }
                }),
        );
        out.sort();
        out.dedup();
        out
    }
}

impl Completer for SqlHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let start = line[..pos]
            .char_indices()
            .rev()
            .find(|(_, c)| !is_word(*c) && *c != '\\' && *c != '+')
            .map_or(0, |(i, c)| i + c.len_utf8());
        let word = &line[start..pos];
        let pairs = self
            .candidates(line, start, word)
            .into_iter()
            .map(|c| Pair {
                display: c.clone(),
                replacement: c,
            })
            .collect();
        Ok((start, pairs))
    }
}

impl Hinter for SqlHelper {
    type Hint = String;
}

/// Every line is taken as typed: the loop gathers a statement's lines
/// itself, under a continuation prompt (`interactive`).
impl Validator for SqlHelper {}

const KEYWORD: &str = "\x1b[1;34m";
const STRING: &str = "\x1b[32m";
const COMMENT: &str = "\x1b[2m";
const RESET: &str = "\x1b[0m";

impl Highlighter for SqlHelper {
    fn highlight<'l>(&self, line: &'l str, _pos: usize) -> Cow<'l, str> {
        if !self.color || line.trim_start().starts_with('\\') {
            return Cow::Borrowed(line);
        }
        Cow::Owned(highlight_sql(line))
    }

    fn highlight_char(&self, _line: &str, _pos: usize, _kind: CmdKind) -> bool {
        self.color
    }
}

/// `line` with ANSI colours: keywords, quoted strings, `--` comments.
pub fn highlight_sql(line: &str) -> String {
    let mut out = String::with_capacity(line.len() * 2);
    let mut chars = line.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '\'' {
            let mut end = line.len();
            for (j, d) in chars.by_ref() {
                if d == '\'' {
                    end = j + 1;
                    break;
                }
            }
            out.push_str(STRING);
            out.push_str(&line[i..end]);
            out.push_str(RESET);
        } else if c == '-' && chars.peek().is_some_and(|(_, d)| *d == '-') {
            let end = line[i..].find('\n').map_or(line.len(), |n| i + n);
            out.push_str(COMMENT);
            out.push_str(&line[i..end]);
            out.push_str(RESET);
            while chars.peek().is_some_and(|(j, _)| *j < end) {
                chars.next();
            }
        } else if c.is_alphabetic() || c == '_' {
            let mut end = line.len();
            while let Some(&(j, d)) = chars.peek() {
                if d.is_alphanumeric() || d == '_' {
                    chars.next();
                } else {
                    end = j;
                    break;
                }
            }
            let word = &line[i..end];
            let upper = word.to_uppercase();
            if ALL_KEYWORDS.binary_search(&upper.as_str()).is_ok() {
                out.push_str(KEYWORD);
                out.push_str(word);
                out.push_str(RESET);
            } else {
                out.push_str(word);
            }
        } else {
            out.push(c);
        }
    }
    out
}

impl Helper for SqlHelper {}

#[cfg(test)]
mod tests {
    use super::*;
    use rustyline::history::DefaultHistory;

    fn helper() -> SqlHelper {
        let mut names = Names::default();
        names
            .tables
            .extend(["declarations".to_string(), "reference.tariff".to_string()]);
        names
            .columns
            .extend(["declaration_id".to_string(), "customs_value".to_string()]);
        names.functions.extend(["valuation_deviation".to_string()]);
        names.reports.push("audit_candidates".into());
        SqlHelper { names, color: true }
    }

    fn complete(line: &str) -> Vec<String> {
        let history = DefaultHistory::new();
        let ctx = Context::new(&history);
        let (_, pairs) = helper().complete(line, line.len(), &ctx).unwrap();
        pairs.into_iter().map(|p| p.replacement).collect()
    }

    #[test]
    fn completes_names_keywords_meta_commands_and_reports() {
        assert_eq!(
            complete("SELECT * FROM decl"),
            vec!["declaration_id", "declarations", "declare"]
        );
        assert!(complete("SEL").contains(&"SELECT".to_string()));
        assert!(complete("sel").contains(&"select".to_string()));
        assert_eq!(complete("SELECT valuation_d"), vec!["valuation_deviation"]);
        assert_eq!(
            complete("SELECT * FROM reference.t"),
            vec!["reference.tariff"]
        );
        assert_eq!(complete("\\rep"), vec!["\\reports"]);
        assert_eq!(complete("\\r aud"), vec!["audit_candidates"]);
        assert_eq!(complete("\\format cs"), vec!["csv"]);
    }

    #[test]
    fn highlights_keywords_and_strings_only() {
        let text = highlight_sql("select hs_code from t where x = 'from' -- where");
        assert!(
            text.starts_with(&format!("{KEYWORD}select{RESET} hs_code")),
            "{text}"
        );
        assert!(text.contains(&format!("{STRING}'from'{RESET}")), "{text}");
        assert!(
            text.contains(&format!("{COMMENT}-- where{RESET}")),
            "{text}"
        );
    }
}
