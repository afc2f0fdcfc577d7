//! The named reports of `queries/`, embedded in the binary so that a
//! release build needs no files beside it.
//!
//! Each file starts with header comments:
//! ```sql
//! -- title: Inspection hit rate by lane
//! -- description: One line on what the report shows.
//! -- columns: lane, items, hit_rate_pct
//! -- param: months int = 12 | months back from the latest declaration
//! SELECT ... WHERE declaration_date > ... - $months * INTERVAL '1 month'
//! ```
//! A parameter is a placeholder (`$name`) that DataFusion binds as a typed
//! value: its text never becomes SQL, so no value can change the query.

use std::collections::HashMap;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{ParamValues, ScalarValue};

/// A named SQL report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// File stem: `inspection_hit_rate_by_lane`.
    pub name: &'static str,
    pub title: String,
    pub description: String,
    /// The whole file, header included (comments are valid SQL).
    pub sql: &'static str,
    pub params: Vec<Param>,
    /// The result's columns, in order, as the header declares them.
    pub columns: Vec<String>,
    /// `-- needs: model`: the report scores items (risk functions or the
    /// `scored_items` view) and needs a risk model.
    pub needs_model: bool,
}

/// A report parameter, declared in the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    pub name: String,
    pub kind: ParamKind,
    /// As written; `None`: the parameter must be given.
    pub default: Option<String>,
    pub description: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    Text,
    Int,
    Float,
    Date,
    /// An HS6 subheading: six digits, with the separators people write
    /// ("6109.10"), or a longer tariff line whose first six are taken.
    Hs6,
}

impl ParamKind {
    fn parse(name: &str) -> Option<ParamKind> {
        Some(match name {
            "text" => ParamKind::Text,
            "int" => ParamKind::Int,
            "float" => ParamKind::Float,
            "date" => ParamKind::Date,
            "hs6" => ParamKind::Hs6,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            ParamKind::Text => "text",
            ParamKind::Int => "int",
            ParamKind::Float => "float",
            ParamKind::Date => "date",
            ParamKind::Hs6 => "hs6",
        }
    }

    /// The typed value of `text`, or why it is not one.
    pub fn value(self, text: &str) -> Result<ScalarValue, String> {
        let t = text.trim();
        match self {
            ParamKind::Text => Ok(ScalarValue::Utf8(Some(text.to_string()))),
            ParamKind::Int => t
                .parse::<i64>()
                .map(|v| ScalarValue::Int64(Some(v)))
                .map_err(|_| format!("{text:?} is not an integer")),
            ParamKind::Float => match t.parse::<f64>() {
                Ok(v) if v.is_finite() => Ok(ScalarValue::Float64(Some(v))),
                _ => Err(format!("{text:?} is not a number")),
            },
            ParamKind::Date => {
                let well_formed = t.len() == 10
                    && t.bytes().enumerate().all(|(i, b)| match i {
                        4 | 7 => b == b'-',
                        _ => b.is_ascii_digit(),
                    });
                well_formed
                    .then(|| ScalarValue::try_from_string(t.to_string(), &DataType::Date32).ok())
                    .flatten()
                    .filter(|v| !v.is_null())
                    .ok_or_else(|| format!("{text:?} is not a date as YYYY-MM-DD"))
            }
            ParamKind::Hs6 => {
                // Read as a declared code is: separators between digits, a
                // line of 6 to 10 digits in an existing chapter.
                let mut buffer = [0; aduana_model::hs::MAX_DIGITS];
                aduana_model::hs::prefix(t, 6, &mut buffer)
                    .map(|hs6| ScalarValue::Utf8(Some(hs6.to_string())))
                    .ok_or_else(|| {
                        format!(
                            "{text:?} is not an HS6 subheading (six digits, e.g. 610910 or 6109.10)"
                        )
                    })
            }
        }
    }
}

impl Report {
    /// Binds `given` (name, value text) and the defaults of the rest as
    /// typed values. Unknown names, missing values and malformed values
    /// are errors that name the report and the parameter.
    pub fn bind(&self, given: &[(String, String)]) -> Result<ParamValues, String> {
        let mut values = HashMap::new();
        for (name, text) in given {
            let param = self
                .params
                .iter()
                .find(|p| &p.name == name)
                .ok_or_else(|| {
                    let known: Vec<&str> = self.params.iter().map(|p| p.name.as_str()).collect();
                    format!(
                        "report {} has no parameter {name:?} (its parameters: {})",
                        self.name,
                        if known.is_empty() {
                            "none".to_string()
                        } else {
                            known.join(", ")
                        }
                    )
                })?;
            let value = param.kind.value(text).map_err(|e| {
                format!(
                    "report {} parameter {name} ({}): {e}",
                    self.name,
                    param.kind.name()
                )
            })?;
            values.insert(name.clone(), value.into());
        }
        for param in &self.params {
            if values.contains_key(&param.name) {
                continue;
            }
            let text = param.default.as_ref().ok_or_else(|| {
                format!(
                    "report {} needs parameter {} ({}: {}): give {}=VALUE",
                    self.name,
                    param.name,
                    param.kind.name(),
                    param.description,
                    param.name
                )
            })?;
            let value = param
                .kind
                .value(text)
                .map_err(|e| format!("report {}: default of {}: {e}", self.name, param.name))?;
            values.insert(param.name.clone(), value.into());
        }
        Ok(ParamValues::Map(values))
    }
}

/// Splits `key=value` (as typed after `\r NAME` or `--param`).
pub fn parse_assignment(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("{text:?} is not a parameter as name=value")),
    }
}

/// Reads `name type [= default] [| description]`.
fn parse_param(text: &str) -> Option<Param> {
    let (spec, description) = match text.split_once('|') {
        Some((s, d)) => (s, d.trim().to_string()),
        None => (text, String::new()),
    };
    let (spec, default) = match spec.split_once('=') {
        Some((s, d)) => (s, Some(d.trim().to_string())),
        None => (spec, None),
    };
    let mut words = spec.split_whitespace();
    let (name, kind) = (words.next()?, ParamKind::parse(words.next()?)?);
    if words.next().is_some() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return None;
    }
    Some(Param {
        name: name.to_string(),
        kind,
        default,
        description,
    })
}

macro_rules! embedded {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../../../queries/", $name, ".sql")))),*]
    };
}

const FILES: &[(&str, &str)] = embedded![
    "declarations_per_month",
    "value_by_chapter",
    "inspection_hit_rate_by_lane",
    "valuation_outliers",
    "riskiest_items",
    "audit_candidates",
    "misclassification_suspects",
    "origin_shifts_after_remedies",
    "trader_risk_segments",
    "inspection_hit_rate_over_time",
    "trader_profile",
    "risk_publication",
    "risk_by_month",
    "hit_rate_by_lane_over_time",
    "trader_segments",
    "trader_audit_candidates",
    "trader_activity",
    "trader_mix",
    "trader_unit_values",
    "trader_flags",
    "trader_inspections",
    "trader_inspections_by_month",
    "product_unit_values",
    "product_top_deviations",
    "products_at_risk",
    "selection_outcomes",
    "fraud_rate_estimate",
    "selection_precision_by_month",
];

/// Reads a report's header; `None` when the title is missing or a
/// parameter line is malformed.
pub fn parse(name: &'static str, sql: &'static str) -> Option<Report> {
    let headers = |key: &'static str| {
        sql.lines()
            .take_while(|l| l.trim_start().starts_with("--"))
            .filter_map(move |l| {
                let body = l.trim_start().trim_start_matches('-').trim();
                body.strip_prefix(key)?
                    .strip_prefix(':')
                    .map(|v| v.trim().to_string())
            })
    };
    Some(Report {
        name,
        title: headers("title").next()?,
        description: headers("description").next().unwrap_or_default(),
        sql,
        params: headers("param")
            .map(|p| parse_param(&p))
            .collect::<Option<_>>()?,
        needs_model: headers("needs").any(|n| n == "model"),
        columns: headers("columns")
            .next()
            .map(|c| c.split(',').map(|c| c.trim().to_string()).collect())
            .unwrap_or_default(),
    })
}

/// All embedded reports, in a stable order.
pub fn all() -> Vec<Report> {
    FILES
        .iter()
        .map(|(name, sql)| {
            parse(name, sql)
                .unwrap_or_else(|| panic!("queries/{name}.sql has no '-- title:' header"))
        })
        .collect()
}

pub fn get(name: &str) -> Option<Report> {
    all().into_iter().find(|r| r.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_report_has_title_and_description() {
        let reports = all();
        assert_eq!(reports.len(), FILES.len());
        for r in &reports {
            assert!(
                !r.title.is_empty() && !r.description.is_empty() && !r.columns.is_empty(),
                "{}",
                r.name
            );
            assert!(r.sql.contains("SELECT"), "{}", r.name);
            // Scoring, or reading the loaded model (its facts, its
            // reference prices), needs a model.
            let scores = [
                "scored_items",
                "risk_score(",
                "valuation_deviation(",
                "origin_risk(",
                "risk_model_info(",
                "risk.price_profiles",
            ]
            .iter()
            .any(|f| r.sql.contains(f));
            assert_eq!(r.needs_model, scores, "{}: -- needs: model", r.name);
        }
        assert_eq!(
            get("value_by_chapter").unwrap().title,
            "Customs value by HS chapter"
        );
        assert!(get("nope").is_none());
    }

    /// The `$name` placeholders of a report's SQL (outside comments).
    fn placeholders(sql: &str) -> std::collections::BTreeSet<String> {
        sql.lines()
            .map(|l| l.split("--").next().unwrap_or(""))
            .flat_map(|l| l.split('$').skip(1))
            .map(|rest| {
                rest.chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect::<String>()
            })
            .collect()
    }

    #[test]
    fn every_placeholder_is_a_declared_parameter_and_back() {
        for r in all() {
            let declared: std::collections::BTreeSet<String> =
                r.params.iter().map(|p| p.name.clone()).collect();
            assert_eq!(placeholders(r.sql), declared, "queries/{}.sql", r.name);
            // Defaults are well-formed values of their type.
            let defaults_only: Vec<(String, String)> = Vec::new();
            if r.params.iter().all(|p| p.default.is_some()) {
                r.bind(&defaults_only).unwrap_or_else(|e| panic!("{e}"));
            }
        }
    }

    #[test]
    fn parameters_bind_as_typed_values_with_clear_errors() {
        let r = parse(
            "x",
            "-- title: X\n-- param: days int = 30 | days back\n-- param: who text | the importer\n\
             -- param: from date = 2026-01-01\n-- param: z float = -2.5\nSELECT $days, $who, $from, $z",
        )
        .unwrap();
        assert_eq!(r.params.len(), 4);
        assert_eq!(r.params[0].description, "days back");
        let given = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let ParamValues::Map(values) = r.bind(&given(&[("who", "IMP' OR 1=1 --")])).unwrap() else {
            panic!("named parameters")
        };
        assert_eq!(values["days"].value, ScalarValue::Int64(Some(30)));
        assert_eq!(
            values["who"].value,
            ScalarValue::Utf8(Some("IMP' OR 1=1 --".into())),
            "a value stays a value"
        );
        assert_eq!(values["from"].value, ScalarValue::Date32(Some(20_454)));
        assert_eq!(values["z"].value, ScalarValue::Float64(Some(-2.5)));
        let error = |pairs: &[(&str, &str)]| r.bind(&given(pairs)).unwrap_err();
        assert!(error(&[]).contains("needs parameter who"), "{}", error(&[]));
        let e = error(&[("who", "a"), ("days", "ten")]);
        assert!(
            e.contains("parameter days (int)") && e.contains("\"ten\""),
            "{e}"
        );
        let e = error(&[("who", "a"), ("from", "2026-13-01")]);
        assert!(e.contains("not a date"), "{e}");
        let e = error(&[("who", "a"), ("limit", "3")]);
        assert!(
            e.contains("no parameter \"limit\"") && e.contains("days, who"),
            "{e}"
        );
        assert!(parse("x", "-- title: X\n-- param: days integer\nSELECT 1").is_none());
        assert_eq!(
            parse_assignment("a=b=c").unwrap(),
            ("a".into(), "b=c".into())
        );
        assert!(parse_assignment("=3").is_err() && parse_assignment("abc").is_err());
    }

    #[test]
    fn an_hs6_parameter_is_read_as_six_digits() {
        let hs = |text: &str| ParamKind::Hs6.value(text);
        let six = ScalarValue::Utf8(Some("610910".into()));
        for written in ["610910", "6109.10", " 6109 10 ", "6109.10.00", "61091000"] {
            assert_eq!(hs(written), Ok(six.clone()), "{written:?}");
        }
        for bad in ["6109", "61x910", "6109.10.00.000", "", "abcdef"] {
            let e = hs(bad).unwrap_err();
            assert!(e.contains("is not an HS6 subheading"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn header_parsing() {
        let r = parse("x", "-- title: X\n-- description: Y z\nSELECT 1").unwrap();
        assert_eq!((r.title.as_str(), r.description.as_str()), ("X", "Y z"));
        assert!(parse("x", "SELECT 1 -- title: no").is_none());
    }
}
