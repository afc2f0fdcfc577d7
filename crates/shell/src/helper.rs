//! What the line editor knows of SQL: completion of keywords, tables,
//! columns, functions, meta commands and report names; highlighting of
//! keywords, strings and comments; and when a statement is complete.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

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
    /// Tables as they can be written: `schema.table` always, the bare name
    /// only for the default schema's (a bare `declaration_scores` would not
    /// resolve: it is `risk.declaration_scores`).
    pub tables: BTreeSet<String>,
    /// Each table's columns, under every name in `tables` it has.
    pub columns: BTreeMap<String, BTreeSet<String>>,
    pub functions: BTreeSet<String>,
    /// Functions that return tables, offered where a table goes.
    pub table_functions: BTreeSet<String>,
    /// Each named report's parameters.
    pub reports: BTreeMap<String, Vec<String>>,
}

/// Keywords after which a table name is written.
const TABLE_KEYWORDS: &[&str] = &["FROM", "JOIN", "INTO", "TABLE", "UPDATE", "DESCRIBE"];

/// Where the parse of a FROM (or JOIN) list stands after a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListState {
    /// Not in a list of tables.
    Outside,
    /// After FROM, JOIN or a list's comma: a table name comes next.
    Table,
    /// After a table name: its alias, a comma, or the rest of the query.
    AfterTable,
}

/// The tables `text` reads (the names after FROM and JOIN, and after the
/// commas of a FROM list, aliases skipped) and whether the word that
/// follows `text` stands where a table goes.
fn table_list(text: &str) -> (Vec<String>, ListState) {
    let mut read = Vec::new();
    let mut state = ListState::Outside;
    let spaced = text.replace(',', " , ");
    for token in spaced.split_whitespace() {
        let bare = token.trim_matches(|c: char| c == ';' || c == '(' || c == ')');
        let upper = bare.to_uppercase();
        if TABLE_KEYWORDS.contains(&upper.as_str()) {
            state = ListState::Table;
            continue;
        }
        state = match state {
            ListState::Table if token == "," => ListState::Table,
            ListState::Table if bare.is_empty() => ListState::Table,
            ListState::Table => {
                read.push(bare.to_string());
                ListState::AfterTable
            }
            ListState::AfterTable if token == "," => ListState::Table,
            // `a AS x` or `a x`: the alias; any other keyword (WHERE, ON,
            // GROUP) ends the list.
            ListState::AfterTable
                if upper == "AS" || ALL_KEYWORDS.binary_search(&upper.as_str()).is_err() =>
            {
                ListState::AfterTable
            }
            _ => ListState::Outside,
        };
        if token.ends_with(';') {
            state = ListState::Outside;
        }
    }
    (read, state)
}

/// The tables `line` reads.
fn tables_read(line: &str) -> Vec<String> {
    table_list(line).0
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
            let mut args = meta.split_whitespace();
            let command = args.next().unwrap_or("");
            return match command {
                // `\r NAME key=value ...`: the name, then its parameters
                // not given yet.
                // After `key=`: a value, which only the user knows.
                "r" if before.ends_with('=') => Vec::new(),
                "r" => match args.next() {
                    None => self.names.reports.keys().filter(matches).cloned().collect(),
                    Some(report) => {
                        let given: Vec<&str> = args.filter_map(|a| a.split('=').next()).collect();
                        self.names
                            .reports
                            .get(report)
                            .into_iter()
                            .flatten()
                            .filter(|p| !given.contains(&p.as_str()))
                            .map(|p| format!("{p}="))
                            .filter(|p| p.starts_with(&lower))
                            .collect()
                    }
                },
                "d" | "d+" => self.names.tables.iter().filter(matches).cloned().collect(),
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
                "timing" => ["on", "off"]
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
        let mut out: Vec<String> = Vec::new();
        if table_list(&line[..start]).1 == ListState::Table {
            // Where a table goes: tables and table functions only.
            out.extend(self.names.tables.iter().filter(matches).cloned());
            out.extend(self.names.table_functions.iter().filter(matches).cloned());
        } else {
            out.extend(self.columns(line, word));
            out.extend(self.names.functions.iter().filter(matches).cloned());
            let upper = word.chars().next().is_some_and(char::is_uppercase);
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
        }
        out.sort();
        out.dedup();
        out
    }

    /// Columns for `word`: of the tables the line reads when it names any
    /// the session knows (else of every table); `alias.col` or
    /// `table.col` keeps its qualifier, with the columns of that table
    /// when the qualifier is one.
    fn columns(&self, line: &str, word: &str) -> Vec<String> {
        let (qualifier, part) = match word.rsplit_once('.') {
            Some((q, p)) => (Some(q), p),
            None => (None, word),
        };
        let lower = part.to_lowercase();
        let read: Vec<&BTreeSet<String>> = match qualifier.and_then(|q| self.names.columns.get(q)) {
            Some(columns) => vec![columns],
            None => {
                let read: Vec<_> = tables_read(line)
                    .iter()
                    .filter_map(|t| self.names.columns.get(t))
                    .collect();
                if read.is_empty() {
                    self.names.columns.values().collect()
                } else {
                    read
                }
            }
        };
        let mut out: Vec<String> = read
            .into_iter()
            .flatten()
            .filter(|c| c.to_lowercase().starts_with(&lower))
            .map(|c| match qualifier {
                Some(q) => format!("{q}.{c}"),
                None => c.clone(),
            })
            .collect();
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
        let table = |names: &mut Names, written: &[&str], columns: &[&str]| {
            for name in written {
                names.tables.insert(name.to_string());
                names.columns.insert(
                    name.to_string(),
                    columns.iter().map(|c| c.to_string()).collect(),
                );
            }
        };
        table(
            &mut names,
            &["declarations", "public.declarations"],
            &["declaration_id", "customs_value"],
        );
        table(&mut names, &["reference.tariff"], &["hs_code", "duty_rate"]);
        table(
            &mut names,
            &["risk.declaration_scores"],
            &["risk_score", "declaration_id"],
        );
        names.functions.extend(["valuation_deviation".to_string()]);
        names.table_functions.insert("selection".into());
        names.reports.insert(
            "audit_candidates".into(),
            vec!["months".into(), "limit".into()],
        );
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
        assert!(complete("SEL").contains(&"SELECT".to_string()));
        assert!(complete("sel").contains(&"select".to_string()));
        assert_eq!(complete("SELECT valuation_d"), vec!["valuation_deviation"]);
        assert_eq!(complete("\\rep"), vec!["\\reports"]);
        assert_eq!(complete("\\r aud"), vec!["audit_candidates"]);
        assert_eq!(complete("\\format cs"), vec!["csv"]);
        assert_eq!(complete("\\timing o"), vec!["on", "off"]);
    }

    #[test]
    fn completion_follows_the_context() {
        // After FROM or JOIN: tables (as they resolve) and table functions.
        assert_eq!(complete("SELECT * FROM decl"), vec!["declarations"]);
        assert_eq!(complete("SELECT * FROM decla"), vec!["declarations"]);
        assert!(
            complete("SELECT * FROM de")
                .iter()
                .all(|c| c != "declaration_scores")
        );
        assert_eq!(
            complete("SELECT * FROM risk.d"),
            vec!["risk.declaration_scores"]
        );
        assert_eq!(complete("SELECT * FROM sel"), vec!["selection"]);
        assert_eq!(
            complete("SELECT * FROM declarations d JOIN reference.t"),
            vec!["reference.tariff"]
        );
        // After WHERE: the columns of the tables read, not every table's.
        let after_where = complete("SELECT * FROM reference.tariff WHERE d");
        assert!(
            after_where.contains(&"duty_rate".to_string()),
            "{after_where:?}"
        );
        assert!(
            !after_where.contains(&"declaration_id".to_string()),
            "{after_where:?}"
        );
        assert!(
            after_where.contains(&"distinct".to_string()),
            "{after_where:?}"
        );
        // A qualified column keeps its qualifier.
        assert_eq!(
            complete("SELECT risk.declaration_scores.risk"),
            vec!["risk.declaration_scores.risk_score"]
        );
        // Report parameters after the report's name, each once.
        assert_eq!(complete("\\r audit_candidates "), vec!["months=", "limit="]);
        assert_eq!(complete("\\r audit_candidates months=3 "), vec!["limit="]);
        assert_eq!(
            complete("\\r audit_candidates months="),
            Vec::<String>::new()
        );
    }

    /// A table's place is right after FROM, JOIN or a FROM list's comma;
    /// after the table (its alias, WHERE, GROUP BY) come columns and
    /// keywords.
    #[test]
    fn tables_only_where_a_table_goes() {
        let after_table = complete("SELECT * FROM declarations WH");
        assert!(
            after_table.contains(&"WHERE".to_string()),
            "{after_table:?}"
        );
        assert!(
            !after_table.iter().any(|c| c.starts_with("risk.")),
            "{after_table:?}"
        );
        assert_eq!(
            complete("SELECT * FROM reference.tariff t, decl"),
            vec!["declarations"]
        );
        assert_eq!(
            complete("SELECT * FROM reference.tariff AS t,decl"),
            vec!["declarations"]
        );
        // Both tables of `FROM a x, b y` are read, whatever their aliases.
        assert_eq!(
            tables_read("SELECT * FROM declarations d, reference.tariff t WHERE"),
            vec!["declarations", "reference.tariff"]
        );
        assert_eq!(
            tables_read("SELECT * FROM declarations d JOIN risk.item_scores s ON d.x = s.x"),
            vec!["declarations", "risk.item_scores"]
        );
        let columns = complete("SELECT * FROM declarations d, reference.tariff t WHERE dut");
        assert!(columns.contains(&"duty_rate".to_string()), "{columns:?}");
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
