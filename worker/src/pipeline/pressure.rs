//! Back-pressure, in two stages.
//!
//! While the buffers hold more than `BUFFER_MAX_BYTES` (after cutting the largest open batch so
//! uploads free memory), the loop first **holds**: it stops taking records from the consumer,
//! and librdkafka stops fetching once its pre-fetch queue (`queued.max.messages.kbytes`) is
//! full. Uploads normally bring the buffers down to ¾ within milliseconds, and taking records
//! again resumes where the loop stopped. Only a hold that lasts [`HOLD_MAX`] (storage slow or
//! down) becomes a **pause** of the assignment (`Consumer::pause`), under which polling goes on
//! so that rebalance callbacks run. Pausing at once was what the worker did first: librdkafka
//! drops a paused partition's pre-fetched records and, on resume, fetches them again after a
//! 0.4–0.8 s stall, which behind a backlog happened about once a second.
//!
//! While [`QUEUE_CAPACITY`] clean-ups wait for Redis (an outage: long), fetching pauses at once.
//! Both resume when buffers and backlog are down to ¾.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use rdkafka::consumer::Consumer as _;

use super::Pipeline;
use crate::batch::FlushReason;
use crate::cleanup::{Cleaner, QUEUE_CAPACITY};
use crate::telemetry;

/// How long the loop may stop polling the consumer before it pauses the assignment instead
/// (far below `max.poll.interval.ms`; a rebalance waits at most this long plus one commit tick).
pub(super) const HOLD_MAX: Duration = Duration::from_secs(2);

impl Pipeline {
    /// Holds (then, after [`HOLD_MAX`], pauses) while memory (`BUFFER_MAX_BYTES`) is full,
    /// pauses at once while the clean-up backlog ([`QUEUE_CAPACITY`]) is, and takes records again
    /// at ¾ of both.
    pub(super) fn relieve_pressure(&mut self) {
        let max = self.settings.buffer_max_bytes;
        telemetry::buffered_bytes(self.buffered);
        let backlog = self.cleaner.as_ref().map_or(0, Cleaner::backlog);
        if backlog >= QUEUE_CAPACITY && !self.paused {
            // Redis has been down long enough: stop taking records whose clean-ups would queue
            // without bound (their commits are held anyway).
            self.set_paused(true, false);
        }
        if self.buffered > max {
            let open_total: usize = self
                .parts
                .values()
                .flat_map(HashMap::values)
                .filter_map(|p| p.buffer.open().map(|b| b.bytes()))
                .sum();
            if open_total >= max / 4 {
                // Open batches hold much of the budget: cut the largest so uploads free it.
                let largest = self
                    .parts
                    .values_mut()
                    .flat_map(HashMap::iter_mut)
                    .max_by_key(|(_, p)| p.buffer.open().map_or(0, |b| b.bytes()))
                    .and_then(|(p, part)| {
                        Some((
                            part.topic.clone(),
                            *p,
                            part.buffer.take(FlushReason::Memory)?,
                        ))
                    });
                if let Some((t, p, s)) = largest {
                    self.enqueue(&t, p, s);
                }
            }
            if !self.paused {
                match self.holding {
                    None => {
                        self.holding = Some(Instant::now());
                        telemetry::fetch_held();
                    }
                    Some(since) if since.elapsed() >= HOLD_MAX => {
                        self.holding = None;
                        self.set_paused(true, false);
                    }
                    Some(_) => {}
                }
            }
        } else if self.buffered <= max / 4 * 3 {
            self.holding = None;
            if self.paused && backlog <= QUEUE_CAPACITY / 4 * 3 {
                self.set_paused(false, false);
            }
        }
    }

    pub(super) fn set_paused(&mut self, pause: bool, again: bool) {
        let assignment = match self.consumer.assignment() {
            Ok(a) => a,
            Err(e) => {
                telemetry::assignment_unknown(&e);
                return;
            }
        };
        let result = if pause {
            self.consumer.pause(&assignment)
        } else {
            self.consumer.resume(&assignment)
        };
        if let Err(e) = result {
            telemetry::pause_failed(pause, &e);
            return;
        }
        self.paused = pause;
        telemetry::fetch_pause(
            pause,
            again,
            self.buffered,
            self.settings.buffer_max_bytes,
            self.cleaner.as_ref().map_or(0, Cleaner::backlog),
        );
    }
}
