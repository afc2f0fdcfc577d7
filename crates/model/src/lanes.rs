//! Lane thresholds from capacity: how the items of a day spread over the
//! expected revenue that selection ranks by, measured over the last days of
//! a model's window, so that "40 physical controls a day" becomes the
//! expected revenue above which an item is red.

use serde::{Deserialize, Serialize};

/// Points per decade of the share grid, from [`SMALLEST_SHARE`] to 1.
const PER_DECADE: usize = 100;
const DECADES: usize = 4;
pub const SMALLEST_SHARE: f64 = 1e-4;

/// Share of items → expected revenue threshold, on a log grid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LaneScale {
    /// Items declared per day over the measured days.
    pub items_per_day: f64,
    /// Days and items measured.
    pub days: u64,
    pub items: u64,
    /// `thresholds[k]`: the expected revenue at or above which the top
    /// `10^(k / PER_DECADE - DECADES)` share of items lie.
    pub thresholds: Vec<f64>,
}

/// A lane recommendation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LaneAdvice {
    Red,
    Yellow,
    Green,
}

impl LaneAdvice {
    pub fn name(self) -> &'static str {
        match self {
            LaneAdvice::Red => "red",
            LaneAdvice::Yellow => "yellow",
            LaneAdvice::Green => "green",
        }
    }
}

impl LaneScale {
    /// The scale of `scores` (one per item; NaN for items without one,
    /// which rank last) declared over `days` days; `None` without items.
    pub fn measure(mut scores: Vec<f64>, days: u64) -> Option<LaneScale> {
        if scores.is_empty() || days == 0 {
            return None;
        }
        let n = scores.len();
        // Best first; unscored last.
        scores.sort_by(|a, b| match (a.is_nan(), b.is_nan()) {
            (true, true) => std::cmp::Ordering::Equal,
            (true, false) => std::cmp::Ordering::Greater,
            (false, true) => std::cmp::Ordering::Less,
            (false, false) => b.total_cmp(a),
        });
        let thresholds = (0..=PER_DECADE * DECADES)
            .map(|k| {
                let share = grid_share(k);
                let rank = ((share * n as f64).ceil() as usize).clamp(1, n);
                let v = scores[rank - 1];
                if v.is_nan() { f64::NEG_INFINITY } else { v }
            })
            .collect();
        Some(LaneScale {
            items_per_day: n as f64 / days as f64,
            days,
            items: n as u64,
            thresholds,
        })
    }

    /// The expected revenue at or above which the top `share` of items lie
    /// (interpolated on the log grid; shares below the grid's smallest use
    /// its first point).
    pub fn threshold(&self, share: f64) -> f64 {
        if !(share > 0.0) {
            return f64::INFINITY;
        }
        if share >= 1.0 {
            return f64::NEG_INFINITY;
        }
        let position = ((share.max(SMALLEST_SHARE).log10() + DECADES as f64) * PER_DECADE as f64)
            .clamp(0.0, (PER_DECADE * DECADES) as f64);
        let k = position.floor() as usize;
        let last = self.thresholds.len() - 1;
        if k >= last {
            return self.thresholds[last];
        }
        let (a, b) = (self.thresholds[k], self.thresholds[k + 1]);
        let t = position - k as f64;
        if a.is_finite() && b.is_finite() {
            a + (b - a) * t
        } else {
            a
        }
    }

    /// The lane of an item with expected revenue `score` when a day has
    /// `red` physical and `yellow` documentary controls.
    pub fn advise(&self, score: f64, red: f64, yellow: f64) -> LaneAdvice {
        let red_share = red / self.items_per_day;
        let yellow_share = (red + yellow) / self.items_per_day;
        if red > 0.0 && score >= self.threshold(red_share) {
            LaneAdvice::Red
        } else if yellow > 0.0 && score >= self.threshold(yellow_share) {
            LaneAdvice::Yellow
        } else {
            LaneAdvice::Green
        }
    }
}

fn grid_share(k: usize) -> f64 {
    10f64.powf(k as f64 / PER_DECADE as f64 - DECADES as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_becomes_the_share_of_items_above_the_threshold() {
        // 100 days of 1,000 items, scores 0..100,000 in a scrambled order.
        let scores: Vec<f64> = (0..100_000u64)
            .map(|i| ((i * 7919) % 100_000) as f64)
            .collect();
        let scale = LaneScale::measure(scores.clone(), 100).unwrap();
        assert_eq!(scale.items_per_day, 1000.0);
        for (red, yellow) in [(10.0, 0.0), (40.0, 60.0), (1.0, 3.0), (300.0, 200.0)] {
            let count = |lane: LaneAdvice| {
                scores
                    .iter()
                    .filter(|&&s| scale.advise(s, red, yellow) == lane)
                    .count() as f64
                    / 100.0
            };
            assert!(
                (count(LaneAdvice::Red) - red).abs() <= red * 0.02 + 0.5,
                "{red}"
            );
            assert!((count(LaneAdvice::Yellow) - yellow).abs() <= (red + yellow) * 0.02 + 0.5);
        }
        assert_eq!(scale.advise(f64::NAN, 10.0, 10.0), LaneAdvice::Green);
        assert_eq!(scale.advise(99_999.0, 0.0, 0.0), LaneAdvice::Green);
        assert_eq!(scale.advise(0.0, 1000.0, 0.0), LaneAdvice::Red);
        assert!(LaneScale::measure(vec![], 3).is_none());
    }
}
