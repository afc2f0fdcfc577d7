//! The named reports of `queries/`, embedded in the binary so that a
//! release build needs no files beside it.
//!
//! Each file starts with header comments:
//! ```sql
//! -- title: Inspection hit rate by lane
//! -- description: One line on what the report shows.
//! SELECT ...
//! ```

/// A named SQL report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// File stem: `inspection_hit_rate_by_lane`.
    pub name: &'static str,
    pub title: String,
    pub description: String,
    /// The whole file, header included (comments are valid SQL).
    pub sql: &'static str,
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
];

/// Reads a report's header; `None` when the title is missing.
pub fn parse(name: &'static str, sql: &'static str) -> Option<Report> {
    let header = |key: &str| {
        sql.lines()
            .take_while(|l| l.trim_start().starts_with("--"))
            .find_map(|l| {
                let body = l.trim_start().trim_start_matches('-').trim();
                body.strip_prefix(key)?
                    .strip_prefix(':')
                    .map(|v| v.trim().to_string())
            })
    };
    Some(Report {
        name,
        title: header("title")?,
        description: header("description").unwrap_or_default(),
        sql,
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
                !r.title.is_empty() && !r.description.is_empty(),
                "{}",
                r.name
            );
            assert!(r.sql.contains("SELECT"), "{}", r.name);
        }
        assert_eq!(
            get("value_by_chapter").unwrap().title,
            "Customs value by HS chapter"
        );
        assert!(get("nope").is_none());
    }

    #[test]
    fn header_parsing() {
        let r = parse("x", "-- title: X\n-- description: Y z\nSELECT 1").unwrap();
        assert_eq!((r.title.as_str(), r.description.as_str()), ("X", "Y z"));
        assert!(parse("x", "SELECT 1 -- title: no").is_none());
    }
}
