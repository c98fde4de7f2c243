//! The load: the simulator's own flood mix ([`simulator::flood::Mix`]: whole games and lobby
//! time-outs, built by the simulator's record builders, so sizes and shapes are the real ones)
//! sent at a fixed rate, each record stamped with the instant it was handed to the producer and
//! booked by the (topic, partition, offset) of its delivery report.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rdkafka::producer::{FutureProducer, FutureRecord};
use simulator::config::DEFAULT_DEAD_ENEMY_RATIO;
use simulator::heroes::{HeroTable, TABLE_SEED};
use simulator::messages::TimestampFormat;
use simulator::publish::TopicId;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Where a record goes: the lobby-shaped or the game-shaped topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// `Starting Match`, `Game Timed Out`, `Cleaning Game Records`.
    Lobby = 0,
    /// `Attack Completed`, `Attacked Dead Enemy`.
    Game = 1,
}

/// An endless, seeded stream of the flood's lobbies (without the client's start-up records),
/// with the simulator's default settings.
#[derive(Debug)]
pub struct Mix {
    games: simulator::flood::Mix,
    heroes: HeroTable,
    partitions: ChaCha8Rng,
    queue: VecDeque<(Lane, Vec<u8>)>,
}

impl Mix {
    /// A mix for the two topics, seeded.
    pub fn new(lobby_topic: &str, game_topic: &str, seed: u64) -> Self {
        // No client topic: the load sends no start-up records.
        let topics = [lobby_topic.to_owned(), game_topic.to_owned(), String::new()];
        Mix {
            games: simulator::flood::Mix::new(
                &topics,
                seed,
                TimestampFormat::default(),
                DEFAULT_DEAD_ENEMY_RATIO,
            ),
            heroes: HeroTable::generate(TABLE_SEED),
            partitions: ChaCha8Rng::seed_from_u64(seed),
            queue: VecDeque::new(),
        }
    }

    /// The next record and its lane.
    pub fn next_record(&mut self) -> (Lane, Vec<u8>) {
        loop {
            if let Some(r) = self.queue.pop_front() {
                return r;
            }
            let queue = &mut self.queue;
            // A lobby's records are lobby and game records only.
            let Ok(()) = self
                .games
                .game(&self.heroes, &mut |topic, value: &[u8], _, _| {
                    let lane = if topic == TopicId::Game {
                        Lane::Game
                    } else {
                        Lane::Lobby
                    };
                    queue.push_back((lane, value.to_vec()));
                    Ok::<(), std::convert::Infallible>(())
                });
        }
    }

    /// A uniformly random partition below `count`, like the simulator (null keys).
    pub fn partition(&mut self, count: i32) -> i32 {
        self.partitions.gen_range(0..count)
    }
}

/// One delivered record.
#[derive(Debug, Clone)]
pub struct Sent {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset from the delivery report.
    pub offset: i64,
    /// When it was handed to the producer.
    pub sent_at: Instant,
}

/// What a fixed-rate run sent.
#[derive(Debug, Default)]
pub struct Sending {
    /// Every delivered record.
    pub sent: Vec<Sent>,
    /// Delivery failures (with their error text, first few).
    pub failed: u64,
    /// First delivery errors, for the report.
    pub errors: Vec<String>,
    /// Value bytes sent.
    pub bytes: u64,
    /// Largest delay between a record's scheduled and actual hand-over (the sender falling behind).
    pub max_slip: Duration,
    /// Wall time from the first to the last hand-over.
    pub elapsed: Duration,
}

/// Errors of the sender.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The producer refused a record outright (queue full for long, or closed).
    #[error("enqueueing record {index} for {topic}: {source}")]
    Enqueue {
        /// The topic.
        topic: String,
        /// The record's index in the run.
        index: u64,
        /// Why.
        source: rdkafka::error::KafkaError,
    },
}

/// The two topics the load goes to, with their partition counts.
#[derive(Debug, Clone)]
pub struct Target {
    /// Lobby-shaped topic.
    pub lobby: String,
    /// Game-shaped topic.
    pub game: String,
    /// Their partition counts.
    pub partitions: [i32; 2],
}

impl Target {
    fn topic(&self, lane: Lane) -> &str {
        match lane {
            Lane::Lobby => &self.lobby,
            Lane::Game => &self.game,
        }
    }
}

/// Sends `count` records, one every `1/rate` s on a fixed schedule (a late record does not shift
/// the later ones, so the offered rate stays `rate`), and waits for every delivery report.
pub async fn send_at_rate(
    producer: &FutureProducer,
    target: &Target,
    mix: &mut Mix,
    count: u64,
    rate: u32,
    shutdown: &CancellationToken,
) -> Result<Sending, LoadError> {
    let period = Duration::from_secs(1) / rate;
    let start = tokio::time::Instant::now();
    let mut out = Sending::default();
    let mut deliveries = JoinSet::new();
    for index in 0..count {
        let due = start + period * u32::try_from(index).unwrap_or(u32::MAX);
        tokio::select! {
            () = tokio::time::sleep_until(due) => {}
            () = shutdown.cancelled() => break,
        }
        let (lane, value) = mix.next_record();
        let topic = target.topic(lane).to_owned();
        let partition = mix.partition(target.partitions[lane as usize]);
        let sent_at = Instant::now();
        out.max_slip = out
            .max_slip
            .max(tokio::time::Instant::now().saturating_duration_since(due));
        out.bytes += value.len() as u64;
        let record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&topic)
            .partition(partition)
            .payload(&value);
        let delivery = producer
            .send_result(record)
            .map_err(|(source, _)| LoadError::Enqueue {
                topic: topic.clone(),
                index,
                source,
            })?;
        deliveries.spawn(async move { (topic, delivery.await, sent_at) });
    }
    out.elapsed = start.elapsed();
    while let Some(joined) = deliveries.join_next().await {
        match joined {
            Ok((topic, Ok(Ok(d)), sent_at)) => out.sent.push(Sent {
                topic,
                partition: d.partition,
                offset: d.offset,
                sent_at,
            }),
            Ok((topic, Ok(Err((e, _))), _)) => out.fail(format!("{topic}: {e}")),
            Ok((topic, Err(_canceled), _)) => {
                out.fail(format!("{topic}: producer dropped the delivery"))
            }
            Err(e) => out.fail(format!("delivery task: {e}")),
        }
    }
    Ok(out)
}

impl Sending {
    fn fail(&mut self, why: String) {
        self.failed += 1;
        if self.errors.len() < 5 {
            self.errors.push(why);
        }
    }
}

#[cfg(test)]
mod tests {
    use model::envelope::Envelope;

    use super::*;

    #[test]
    fn the_mix_is_whole_games_of_valid_envelopes_on_both_lanes() {
        let mut mix = Mix::new("lobby-t", "game-t", 1);
        let records: Vec<(Lane, Vec<u8>)> = (0..500).map(|_| mix.next_record()).collect();
        let lobby = records.iter().filter(|(l, _)| *l == Lane::Lobby).count();
        assert!(
            lobby > 0 && lobby < records.len(),
            "both lanes are used: {lobby} lobby of {}",
            records.len()
        );
        for (lane, v) in &records {
            let env: Envelope<'_> = serde_json::from_slice(v).expect("an envelope");
            let expected = match lane {
                Lane::Lobby => "kafka.lobby-t",
                Lane::Game => "kafka.game-t",
            };
            assert_eq!(env.name, expected);
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_partitions() {
        let (mut a, mut b) = (Mix::new("l", "g", 9), Mix::new("l", "g", 9));
        let pa: Vec<i32> = (0..50).map(|_| a.partition(4)).collect();
        let pb: Vec<i32> = (0..50).map(|_| b.partition(4)).collect();
        assert_eq!(pa, pb);
        assert!(pa.iter().all(|p| (0..4).contains(p)));
    }
}
