//! Latency summaries: nearest-rank percentiles over every measured record (no sampling, no
//! histogram buckets, so p99 of 12 000 records is the 11 880th smallest value).

use serde::{Deserialize, Serialize};

/// Percentiles of a set of latencies, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Values summarized.
    pub count: usize,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Largest value.
    pub max_ms: f64,
    /// Smallest value.
    pub min_ms: f64,
    /// Arithmetic mean.
    pub mean_ms: f64,
}

/// The nearest-rank `p`-th percentile (0 < p ≤ 100) of sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    // Nearest rank: ceil(p/100 × n), 1-based.
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted.get(rank.min(sorted.len()) - 1).copied()
}

/// Summarizes `values` (ms); `None` when there are none.
pub fn summarize(mut values: Vec<f64>) -> Option<Summary> {
    values.sort_by(f64::total_cmp);
    let p = |q| percentile(&values, q);
    Some(Summary {
        count: values.len(),
        p50_ms: p(50.0)?,
        p90_ms: p(90.0)?,
        p99_ms: p(99.0)?,
        max_ms: *values.last()?,
        min_ms: *values.first()?,
        mean_ms: values.iter().sum::<f64>() / values.len() as f64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles_of_one_to_hundred() {
        let s = summarize((1..=100).rev().map(f64::from).collect()).expect("values");
        assert_eq!(
            (s.p50_ms, s.p90_ms, s.p99_ms, s.max_ms, s.min_ms),
            (50.0, 90.0, 99.0, 100.0, 1.0)
        );
        assert!((s.mean_ms - 50.5).abs() < 1e-9);
    }

    #[test]
    fn a_single_value_is_every_percentile_and_nothing_is_none() {
        let s = summarize(vec![7.0]).expect("one value");
        assert_eq!((s.p50_ms, s.p99_ms, s.max_ms), (7.0, 7.0, 7.0));
        assert!(summarize(Vec::new()).is_none());
    }
}
