//! Learning the price cells from training rows, in one pass.
//!
//! Every row belongs to one cell per level (national line × origin, HS6 ×
//! origin, HS6, HS4). Rows are first grouped by their finest key (line,
//! origin, quantity unit), so that each coarser cell is a union of groups:
//! the rows are read once and kept once, whatever the number of levels.
//! Within a cell, the per-unit profile and the drift use only the rows in
//! the cell's dominant quantity unit; the per-kg profile uses all of them.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray};

use crate::Level;
use crate::files::price_schema;

/// Robust profile of `values`: median, median absolute deviation
/// (unscaled), first and third quartiles with linear interpolation. The
/// values are reordered. `None` when there are none.
pub fn robust_profile(values: &mut [f64]) -> Option<(f64, f64, f64, f64)> {
    if values.is_empty() {
        return None;
    }
    let median = quantile(values, 0.5);
    let (q1, q3) = (quantile(values, 0.25), quantile(values, 0.75));
    let mut deviations: Vec<f64> = values.iter().map(|v| (v - median).abs()).collect();
    Some((median, quantile(&mut deviations, 0.5), q1, q3))
}

/// The `q` quantile of `values` with linear interpolation between the two
/// nearest ranks, as over the sorted values; found by selection (linear
/// time), which reorders `values`.
pub fn quantile(values: &mut [f64], q: f64) -> f64 {
    let position = q * (values.len() - 1) as f64;
    let low = position.floor() as usize;
    let (_, at_low, above) = values.select_nth_unstable_by(low, f64::total_cmp);
    let at_low = *at_low;
    if position == low as f64 || above.is_empty() {
        return at_low;
    }
    let at_high = above
        .iter()
        .copied()
        .min_by(f64::total_cmp)
        .expect("not empty");
    at_low + (at_high - at_low) * (position - low as f64)
}

/// One training row's price facts.
#[derive(Debug, Clone, Copy)]
struct Row {
    /// ln(value / quantity); NaN when unknown.
    per_unit: f64,
    /// ln(value / net mass); NaN when unknown.
    per_kg: f64,
    /// year * 12 + month - 1.
    month: f64,
}

/// Rows of one national line, origin and quantity unit.
#[derive(Debug)]
struct Group {
    line: String,
    origin: String,
    unit: Option<String>,
    rows: Vec<Row>,
}

/// Training rows grouped by their finest key; see the module.
#[derive(Debug, Default)]
pub struct PriceCellsBuilder {
    index: HashMap<String, usize>,
    groups: Vec<Group>,
    /// Reused to build lookup keys without allocating per row.
    key: String,
}

impl PriceCellsBuilder {
    /// Adds one item: its normalised national `line`, upper-cased `origin`
    /// ('' when unknown), quantity `unit`, log unit values per unit and per
    /// kg (`None` or non-finite when unknown) and month index.
    pub fn add(
        &mut self,
        line: &str,
        origin: &str,
        unit: Option<&str>,
        per_unit: Option<f64>,
        per_kg: Option<f64>,
        month: f64,
    ) {
        group_key(&mut self.key, line, origin, unit);
        let row = Row {
            per_unit: per_unit.unwrap_or(f64::NAN),
            per_kg: per_kg.unwrap_or(f64::NAN),
            month,
        };
        match self.index.get(self.key.as_str()) {
            Some(&g) => self.groups[g].rows.push(row),
            None => {
                self.index.insert(self.key.clone(), self.groups.len());
                self.groups.push(Group {
                    line: line.to_string(),
                    origin: origin.to_string(),
                    unit: unit.map(str::to_string),
                    rows: vec![row],
                });
            }
        }
    }

    /// Adds everything `other` holds.
    pub fn merge(&mut self, other: PriceCellsBuilder) {
        let mut key = String::new();
        for group in other.groups {
            group_key(&mut key, &group.line, &group.origin, group.unit.as_deref());
            match self.index.get(key.as_str()) {
                Some(&g) => self.groups[g].rows.extend(group.rows),
                None => {
                    self.index.insert(key.clone(), self.groups.len());
                    self.groups.push(group);
                }
            }
        }
    }

    /// The price cells with at least `min_cell_size` items, as a batch of
    /// [`price_schema`] ordered by level, code and origin. Months of the
    /// drift regression count from `origin_month`, to keep its sums small.
    pub fn finish(&self, min_cell_size: u64, origin_month: f64) -> RecordBatch {
        let mut cells: Vec<(Level, String, String, Vec<usize>)> = Vec::new();
        for level in Level::ALL {
            let mut members: HashMap<(String, String), Vec<usize>> = HashMap::new();
            for (g, group) in self.groups.iter().enumerate() {
                let hs = match level {
                    Level::LineOrigin => group.line.clone(),
                    Level::Hs6Origin | Level::Hs6 => prefix(&group.line, 6),
                    Level::Hs4 => prefix(&group.line, 4),
                };
                let origin = match level {
                    Level::LineOrigin | Level::Hs6Origin => group.origin.clone(),
                    Level::Hs6 | Level::Hs4 => String::new(),
                };
                members.entry((hs, origin)).or_default().push(g);
            }
            cells.extend(
                members
                    .into_iter()
                    .map(|((hs, origin), groups)| (level, hs, origin, groups)),
            );
        }
        cells.sort_by(|a, b| (a.0 as u8, &a.1, &a.2).cmp(&(b.0 as u8, &b.1, &b.2)));
        let mut out = PriceColumns::default();
        for (level, hs, origin, groups) in &cells {
            let groups: Vec<&Group> = groups.iter().map(|&g| &self.groups[g]).collect();
            let items: usize = groups.iter().map(|g| g.rows.len()).sum();
            if (items as u64) < min_cell_size {
                continue;
            }
            let unit = dominant_unit(&groups);
            out.push(
                *level,
                hs,
                origin,
                &unit,
                CellFacts::of(&groups, &unit, origin_month),
            );
        }
        out.finish()
    }
}

/// Writes into `key` the lookup key of a group: line, origin and unit,
/// separated by a byte no code holds (and a missing unit told apart from
/// an empty one).
fn group_key(key: &mut String, line: &str, origin: &str, unit: Option<&str>) {
    key.clear();
    key.push_str(line);
    key.push('\0');
    key.push_str(origin);
    match unit {
        Some(unit) => {
            key.push('\0');
            key.push_str(unit);
        }
        None => key.push('\u{1}'),
    }
}

/// The first `n` characters of `s` (all of it when shorter), like SQL's
/// `substr(s, 1, n)`.
fn prefix(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// The unit most of a cell's items are declared in ('' counts as no unit
/// and loses to any unit; ties go to the first in byte order).
fn dominant_unit(groups: &[&Group]) -> String {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for g in groups {
        *counts.entry(g.unit.as_deref().unwrap_or("")).or_default() += g.rows.len();
    }
    counts
        .into_iter()
        .min_by(|a, b| {
            (a.0.is_empty(), std::cmp::Reverse(a.1), a.0).cmp(&(
                b.0.is_empty(),
                std::cmp::Reverse(b.1),
                b.0,
            ))
        })
        .map(|(unit, _)| unit.to_string())
        .unwrap_or_default()
}

/// What a cell's rows say about its prices.
struct CellFacts {
    per_unit: Vec<f64>,
    per_kg: Vec<f64>,
    drift: f64,
    center_month: f64,
}

/// Fixed-point scale of the drift regression's sums: each term rounded to
/// 12 decimals and summed as an integer, so the sum is exact and the same
/// in any order (a float sum's last bits depend on the order rows arrive
/// in, and the same inputs must give the same model).
const EXACT: f64 = 1e12;

fn exact(v: f64) -> i128 {
    (v * EXACT).round() as i128
}

impl CellFacts {
    fn of(groups: &[&Group], unit: &str, origin_month: f64) -> CellFacts {
        let mut per_unit = Vec::new();
        let mut per_kg = Vec::new();
        let (mut sx, mut sy, mut sxx, mut sxy, mut syy) = (0i128, 0i128, 0i128, 0i128, 0i128);
        let mut months = 0.0;
        let mut items = 0usize;
        for g in groups {
            let in_unit = g.unit.as_deref() == Some(unit);
            for row in &g.rows {
                items += 1;
                months += row.month;
                if row.per_kg.is_finite() {
                    per_kg.push(row.per_kg);
                }
                if in_unit && row.per_unit.is_finite() {
                    let (x, y) = (row.month - origin_month, row.per_unit);
                    per_unit.push(y);
                    sx += exact(x);
                    sy += exact(y);
                    sxx += exact(x * x);
                    sxy += exact(x * y);
                    syy += exact(y * y);
                }
            }
        }
        let pairs = per_unit.len() as f64;
        let real = |s: i128| s as f64 / EXACT;
        let (sx, sy) = (real(sx), real(sy));
        let sxx = real(sxx) - sx * sx / pairs;
        let sxy = real(sxy) - sx * sy / pairs;
        let syy = real(syy) - sy * sy / pairs;
        let drift = if pairs > 2.0 && sxx > 0.0 {
            // The least-squares slope, shrunk by its own variance: a slope
            // no larger than its noise counts as none.
            let slope = sxy / sxx;
            let variance = (syy - sxy * sxy / sxx) / ((pairs - 2.0) * sxx);
            if slope * slope > variance {
                slope * (1.0 - variance / (slope * slope))
            } else {
                0.0
            }
        } else {
            0.0
        };
        CellFacts {
            per_unit,
            per_kg,
            drift,
            // Month indexes are whole numbers: their float sum is exact.
            center_month: months / items as f64,
        }
    }
}

/// The columns of [`price_schema`], row by row.
#[derive(Default)]
struct PriceColumns {
    level: Vec<i32>,
    hs: Vec<String>,
    origin: Vec<Option<String>>,
    unit: Vec<Option<String>>,
    n: [Vec<i64>; 2],
    median: [Vec<Option<f64>>; 2],
    mad: [Vec<Option<f64>>; 2],
    q1: [Vec<Option<f64>>; 2],
    q3: [Vec<Option<f64>>; 2],
    drift: Vec<f64>,
    center_month: Vec<f64>,
}

impl PriceColumns {
    fn push(&mut self, level: Level, hs: &str, origin: &str, unit: &str, mut facts: CellFacts) {
        let some = |s: &str| (!s.is_empty()).then(|| s.to_string());
        self.level.push(level as i32);
        self.hs.push(hs.to_string());
        self.origin.push(some(origin));
        self.unit.push(some(unit));
        for (k, values) in [&mut facts.per_unit, &mut facts.per_kg]
            .into_iter()
            .enumerate()
        {
            self.n[k].push(values.len() as i64);
            let profile = robust_profile(values);
            self.median[k].push(profile.map(|p| p.0));
            self.mad[k].push(profile.map(|p| p.1));
            self.q1[k].push(profile.map(|p| p.2));
            self.q3[k].push(profile.map(|p| p.3));
        }
        self.drift.push(facts.drift);
        self.center_month.push(facts.center_month);
    }

    fn finish(self) -> RecordBatch {
        let floats = |v: &[Option<f64>]| -> ArrayRef { Arc::new(Float64Array::from(v.to_vec())) };
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(Int32Array::from(self.level)),
            Arc::new(StringArray::from_iter_values(self.hs)),
            Arc::new(StringArray::from(self.origin)),
            Arc::new(StringArray::from(self.unit)),
        ];
        for k in 0..2 {
            columns.push(Arc::new(Int64Array::from(self.n[k].clone())));
            columns.push(floats(&self.median[k]));
            columns.push(floats(&self.mad[k]));
            columns.push(floats(&self.q1[k]));
            columns.push(floats(&self.q3[k]));
        }
        columns.push(Arc::new(Float64Array::from(self.drift)));
        columns.push(Arc::new(Float64Array::from(self.center_month)));
        RecordBatch::try_new(price_schema(), columns).expect("columns follow price_schema")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{Float64Type, Int64Type};

    #[test]
    fn profile_of_a_small_group() {
        let mut v = vec![4.0, 100.0, 1.0, 3.0, 2.0];
        assert_eq!(robust_profile(&mut v), Some((3.0, 1.0, 2.0, 4.0)));
        let mut even = vec![1.0, 2.0, 3.0, 4.0];
        assert_eq!(robust_profile(&mut even), Some((2.5, 1.0, 1.75, 3.25)));
        assert_eq!(robust_profile(&mut []), None);
    }

    #[test]
    fn quantiles_by_selection_equal_quantiles_of_the_sorted_values() {
        let values: Vec<f64> = (0..1001)
            .map(|i| ((i * 7919) % 1009) as f64 / 7.0)
            .collect();
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        for q in [0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0] {
            let position = q * (sorted.len() - 1) as f64;
            let (low, high) = (position.floor() as usize, position.ceil() as usize);
            let expected = sorted[low] + (sorted[high] - sorted[low]) * (position - low as f64);
            assert_eq!(quantile(&mut values.clone(), q), expected, "q = {q}");
        }
    }

    /// Rows of one line from one origin in two units: 40 in KGM over ten
    /// months, the log price rising 0.04 a month, and 10 in NAR; another
    /// line from another origin with 5 rows.
    fn builder(parts: usize) -> PriceCellsBuilder {
        let mut rows = Vec::new();
        for i in 0..40 {
            let month = (i / 4) as f64;
            rows.push((
                "8544420000",
                "CN",
                Some("KGM"),
                Some(1.0 + i as f64 * 0.01),
                Some(2.0),
                month,
            ));
        }
        for _ in 0..10 {
            rows.push(("8544420000", "CN", Some("NAR"), Some(5.0), None, 3.0));
        }
        for _ in 0..5 {
            rows.push(("8544429000", "VN", None, None, Some(f64::INFINITY), 3.0));
        }
        let mut merged = PriceCellsBuilder::default();
        for chunk in rows.chunks(rows.len().div_ceil(parts)) {
            let mut part = PriceCellsBuilder::default();
            for &(line, origin, unit, u, k, m) in chunk {
                part.add(line, origin, unit, u, k, m);
            }
            merged.merge(part);
        }
        merged
    }

    #[test]
    fn cells_use_the_dominant_unit_and_back_off_by_level() {
        let batch = builder(1).finish(30, 0.0);
        let hs = batch.column(1).as_string::<i32>();
        let origin = batch.column(2).as_string::<i32>();
        let unit = batch.column(3).as_string::<i32>();
        let n = batch.column(4).as_primitive::<Int64Type>();
        let kg_n = batch.column(9).as_primitive::<Int64Type>();
        let drift = batch.column(14).as_primitive::<Float64Type>();
        // The VN line has 5 items: below 30, no cell of its own; the CN
        // line, HS6 × CN, HS6 and HS4 cells remain.
        let keys: Vec<(String, Option<String>)> = (0..batch.num_rows())
            .map(|i| {
                (
                    hs.value(i).to_string(),
                    origin.is_valid(i).then(|| origin.value(i).to_string()),
                )
            })
            .collect();
        assert_eq!(
            keys,
            vec![
                ("8544420000".into(), Some("CN".into())),
                ("854442".into(), Some("CN".into())),
                ("854442".into(), None),
                ("8544".into(), None),
            ]
        );
        for i in 0..batch.num_rows() {
            assert_eq!(unit.value(i), "KGM");
            assert_eq!(n.value(i), 40, "per-unit values only in the dominant unit");
        }
        // Per kg: the 40 KGM rows; the NAR rows have no mass and the VN
        // rows' infinite value is not a price.
        assert_eq!(kg_n.value(3), 40);
        assert!(
            drift.value(0) > 0.039 && drift.value(0) < 0.041,
            "{}",
            drift.value(0)
        );
    }

    #[test]
    fn merged_partitions_give_the_same_cells() {
        assert_eq!(builder(1).finish(1, 5.0), builder(7).finish(1, 5.0));
    }
}
