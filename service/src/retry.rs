//! Doubling delays between retries, capped: the one backoff every retry loop uses.

use std::time::Duration;

/// Delays `first`, `2·first`, `4·first`, … never above `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    /// A backoff whose first delay is `first` (at most `max`).
    pub fn new(first: Duration, max: Duration) -> Self {
        Backoff {
            next: first.min(max),
            max,
        }
    }

    /// The delay before the next attempt; the one after it doubles.
    pub fn delay(&mut self) -> Duration {
        let now = self.next;
        self.next = self.next.saturating_mul(2).min(self.max);
        now
    }

    /// The delay after `failures` failures (1: `first`), without state.
    pub fn after(first: Duration, failures: u32, max: Duration) -> Duration {
        let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(16));
        first.saturating_mul(factor).min(max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn delays_double_up_to_the_cap() {
        let mut b = Backoff::new(100 * MS, 1000 * MS);
        let got: Vec<Duration> = (0..6).map(|_| b.delay()).collect();
        assert_eq!(got, [100, 200, 400, 800, 1000, 1000].map(|n| n * MS));
    }

    #[test]
    fn the_stateless_form_agrees() {
        let mut b = Backoff::new(100 * MS, 1000 * MS);
        for failures in 1..=40 {
            assert_eq!(Backoff::after(100 * MS, failures, 1000 * MS), b.delay());
        }
        assert_eq!(Backoff::after(100 * MS, 0, 1000 * MS), 100 * MS);
    }
}
