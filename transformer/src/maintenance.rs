//! Delta table upkeep on timers: compaction of closed partitions and vacuum, each followed by the
//! tables' shape as gauges (files, bytes, small files, commits since the last checkpoint).
//!
//! `watch` runs [`maintain_every`] beside its committer; the function app runs the same passes
//! from the timer functions `compact` and `vacuum` ([`crate::serve`]); `transformer compact` and
//! `transformer vacuum` run them by hand.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::delta::compact::{CompactOptions, Compacted};
use crate::delta::vacuum::{VacuumError, Vacuumed};
use crate::delta::{CompactError, Lakehouse};
use crate::telemetry;
use crate::writer::Compression;

/// The knobs of checkpoints, compaction and vacuum (validated in [`crate::config`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Maintenance {
    /// `DELTA_CHECKPOINT_INTERVAL`.
    pub checkpoint_interval: u64,
    /// `COMPACT_TARGET_MB`, in bytes.
    pub compact_target_bytes: u64,
    /// `COMPACT_MIN_AGE_MS`.
    pub compact_min_age: Duration,
    /// `COMPACT_INTERVAL_MS`; `None`: off.
    pub compact_every: Option<Duration>,
    /// `VACUUM_INTERVAL_MS`; `None`: off.
    pub vacuum_every: Option<Duration>,
    /// `VACUUM_RETENTION_HOURS`.
    pub vacuum_retention: Duration,
}

impl Default for Maintenance {
    fn default() -> Self {
        Maintenance {
            checkpoint_interval: crate::delta::commit::DEFAULT_CHECKPOINT_INTERVAL,
            compact_target_bytes: 128 << 20,
            compact_min_age: Duration::from_secs(3600),
            compact_every: Some(Duration::from_secs(3600)),
            vacuum_every: Some(Duration::from_secs(86_400)),
            vacuum_retention: crate::delta::vacuum::SAFE_RETENTION,
        }
    }
}

impl Maintenance {
    /// Compaction of every closed partition of every table.
    pub fn compact_all(&self, compression: Compression) -> CompactOptions {
        CompactOptions {
            target_bytes: self.compact_target_bytes,
            min_age: self.compact_min_age,
            table: None,
            partition: None,
            compression,
        }
    }
}

/// One compaction pass, then the tables' shape.
pub async fn compact_once(
    lakehouse: &Lakehouse,
    opts: &CompactOptions,
) -> Result<Vec<Compacted>, CompactError> {
    let done = lakehouse.compact(opts).await?;
    lakehouse.table_shapes(opts.target_bytes).await?;
    Ok(done)
}

/// One vacuum pass at the configured retention (never forced), then the tables' shape.
pub async fn vacuum_once(
    lakehouse: &Lakehouse,
    m: &Maintenance,
) -> Result<Vec<Vacuumed>, VacuumError> {
    let done = lakehouse.vacuum(m.vacuum_retention, false, false).await?;
    lakehouse.table_shapes(m.compact_target_bytes).await?;
    Ok(done)
}

/// Compacts and vacuums on their timers until `stop`; the first pass of each runs one interval
/// after the start (a restart loop does not rewrite tables). A failed pass is reported and the
/// next one retries.
pub async fn maintain_every(
    lakehouse: Arc<Lakehouse>,
    m: Maintenance,
    compression: Compression,
    stop: CancellationToken,
) {
    let ticker = |every: Option<Duration>| {
        every.map(|d| {
            let mut t = tokio::time::interval_at(tokio::time::Instant::now() + d, d);
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            t
        })
    };
    let mut compact = ticker(m.compact_every);
    let mut vacuum = ticker(m.vacuum_every);
    if compact.is_none() && vacuum.is_none() {
        return;
    }
    let opts = m.compact_all(compression);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick(&mut compact) => {
                if let Err(e) = compact_once(&lakehouse, &opts).await {
                    telemetry::delta_maintenance_failed("compact", &e);
                }
            }
            _ = tick(&mut vacuum) => {
                if let Err(e) = vacuum_once(&lakehouse, &m).await {
                    telemetry::delta_maintenance_failed("vacuum", &e);
                }
            }
        }
    }
}

/// The next tick of a timer that is on; never, for one that is off.
async fn tick(t: &mut Option<tokio::time::Interval>) {
    match t {
        Some(t) => {
            t.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// A duration written as a number and a unit: `90s`, `30m`, `36h`, `7d`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("`{s}` is not a duration such as 36h, 30m or 7d"))?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => {
            return Err(format!(
                "`{s}` is not a duration such as 36h, 30m or 7d (units s, m, h, d)"
            ));
        }
    };
    Ok(Duration::from_secs(n.saturating_mul(secs)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_have_a_unit() {
        assert_eq!(parse_duration("36h"), Ok(Duration::from_secs(36 * 3600)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert!(parse_duration("36").is_err());
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("3w").is_err());
    }
}
