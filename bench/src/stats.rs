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

/// Share of the records where the steady-state window starts ([`window_rate`]).
pub const WINDOW_FROM: f64 = 0.1;
/// Share of the records where it ends.
pub const WINDOW_TO: f64 = 0.9;

/// The rate of a counter between the moments it crossed `from × total` and `to × total`, from
/// `(seconds, count)` samples in time order, interpolating linearly between two samples. This is
/// the sustained rate: the start (group join, first fetches) and the end (the last partial
/// batches waiting for `BATCH_MAX_WAIT_MS`) are left out. `None` when the counter never crossed
/// both marks or crossed them at the same moment.
pub fn window_rate(samples: &[(f64, f64)], total: f64, from: f64, to: f64) -> Option<f64> {
    let crossing = |target: f64| {
        if samples.first().is_some_and(|(_, c)| *c >= target) {
            return samples.first().map(|(t, _)| *t);
        }
        samples.windows(2).find_map(|w| {
            let ((t0, c0), (t1, c1)) = (w[0], w[1]);
            (c0 < target && c1 >= target).then(|| t0 + (t1 - t0) * (target - c0) / (c1 - c0))
        })
    };
    let (start, end) = (crossing(from * total)?, crossing(to * total)?);
    (end > start).then(|| (to - from) * total / (end - start))
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

    #[test]
    fn window_rate_leaves_out_a_slow_start_and_a_waiting_tail() {
        // 1 s of group join, then 100 records/s for 10 s, then 5 s waiting for the last batch.
        let mut samples = vec![(0.0, 0.0), (1.0, 0.0)];
        samples.extend((1..=10).map(|s| (1.0 + f64::from(s), 100.0 * f64::from(s) - 1.0)));
        samples.push((16.0, 1000.0));
        let rate = window_rate(&samples, 1000.0, WINDOW_FROM, WINDOW_TO).expect("crossed");
        assert!((rate - 100.0).abs() < 1.0, "{rate}");
        // Over the whole run the same counter averages 1000 / 16 s.
        assert!(rate > 1000.0 / 16.0 * 1.5);
    }

    #[test]
    fn window_rate_is_none_without_both_crossings() {
        assert!(window_rate(&[(0.0, 0.0), (1.0, 50.0)], 100.0, 0.1, 0.9).is_none());
        assert!(window_rate(&[], 100.0, 0.1, 0.9).is_none());
        // Both marks crossed between the same two samples: interpolation still gives the rate.
        let r = window_rate(&[(0.0, 0.0), (2.0, 100.0)], 100.0, 0.1, 0.9).expect("rate");
        assert!((r - 50.0).abs() < 1e-9, "{r}");
    }
}
