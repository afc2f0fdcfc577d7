//! One monthly partition of a table: `year=2026/month=10` in paths, run
//! manifests and command lines, `2026-10` for people.

use std::fmt;
use std::str::FromStr;

/// A month of a monthly table. Orders by time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Partition {
    pub year: i32,
    /// 1 to 12; `i32` as the tables' `month` column.
    pub month: i32,
}

/// Years a partition folder may name: anything else is a typo.
const YEARS: std::ops::RangeInclusive<i32> = 1900..=2999;

impl Partition {
    /// The partition of `year` and `month` (1 to 12, years 1900 to 2999).
    pub fn new(year: i32, month: i32) -> Option<Partition> {
        (YEARS.contains(&year) && (1..=12).contains(&month)).then_some(Partition { year, month })
    }

    /// The partition two folder names make, `year=2026` and `month=10`:
    /// written as DataFusion's hive partitioning reads them (no leading
    /// zero: `month=01` would not match `month = 1`).
    pub fn from_folders(year: &str, month: &str) -> Option<Partition> {
        fn value<T: FromStr + ToString>(folder: &str, key: &str) -> Option<T> {
            let text = folder.strip_prefix(key)?.strip_prefix('=')?;
            text.parse::<T>().ok().filter(|v| v.to_string() == text)
        }
        Partition::new(value(year, "year")?, value(month, "month")?)
    }

    /// `2026-10`.
    pub fn label(&self) -> String {
        format!("{}-{:02}", self.year, self.month)
    }

    /// Months since year 0: consecutive partitions differ by one.
    pub fn index(&self) -> i64 {
        i64::from(self.year) * 12 + i64::from(self.month) - 1
    }
}

/// `year=2026/month=10`.
impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "year={}/month={}", self.year, self.month)
    }
}

/// Parses `year=2026/month=10`; the error says what was expected.
impl FromStr for Partition {
    type Err = String;

    fn from_str(text: &str) -> Result<Partition, String> {
        text.trim()
            .split_once('/')
            .and_then(|(year, month)| Partition::from_folders(year, month))
            .ok_or_else(|| {
                format!("{text:?} is not year=YYYY/month=M (month 1 to 12, no leading zero)")
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_displays_and_orders() {
        let p: Partition = "year=2026/month=10".parse().unwrap();
        assert_eq!(p, Partition::new(2026, 10).unwrap());
        assert_eq!(p.to_string(), "year=2026/month=10");
        assert_eq!(p.label(), "2026-10");
        assert!(Partition::new(2025, 12).unwrap() < p);
        assert_eq!(
            Partition::new(2027, 1).unwrap().index() - Partition::new(2026, 12).unwrap().index(),
            1
        );
        for bad in [
            "year=2026/month=01",
            "year=2026/month=13",
            "year=26/month=1",
            "2026/10",
            "year=2026",
        ] {
            let e = bad.parse::<Partition>().unwrap_err();
            assert!(e.contains("is not year=YYYY/month=M"), "{bad}: {e}");
        }
    }
}
