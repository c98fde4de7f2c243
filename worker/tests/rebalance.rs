//! Membership changes under each rebalance protocol (`KAFKA_ASSIGNMENT_STRATEGY`): two workers
//! share six partitions while records trickle in; a third joins, then leaves. With
//! `cooperative-sticky` the partitions that stay with their worker keep their epoch and keep
//! landing through both changes; with eager `range` every partition stops. Either way every
//! record lands exactly once. Each test prints the pause it measured (docs/BENCHMARKS.md,
//! "Rebalance pause").
//!
//! The workers are child processes: each has its own log (its own partitions, epochs and
//! landings, timed by its own clock), which in-process workers sharing one subscriber and one
//! metrics recorder would not have.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use rdkafka::consumer::Consumer as _;
use rdkafka::{Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

const PARTITIONS: i32 = 6;
/// A record per partition this often.
const TICK: Duration = Duration::from_millis(100);
/// How long each phase runs once the group is stable.
const SETTLE: Duration = Duration::from_secs(3);

/// Seconds since the epoch.
fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64()
}

/// Seconds since the epoch of an RFC 3339 UTC timestamp as tracing-subscriber writes it
/// (`2026-12-07T00:57:41.563595Z`).
fn parse_timestamp(ts: &str) -> Option<f64> {
    let (date, time) = ts.strip_suffix('Z')?.split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>());
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let mut t = time.split(':');
    let (h, min) = (
        t.next()?.parse::<f64>().ok()?,
        t.next()?.parse::<f64>().ok()?,
    );
    let s = t.next()?.parse::<f64>().ok()?;
    // Days from 1970-01-01 to y-m-d (proleptic Gregorian; H. Hinnant's days_from_civil).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days as f64 * 86_400.0 + h * 3600.0 + min * 60.0 + s)
}

/// The partitions a worker owns now, with their epochs, from the `owned` field of its last
/// assign or revoke event (`topic/partition#epoch,...`).
fn owned(w: &ChildWorker) -> BTreeMap<i32, u64> {
    let last = w.log_lines().into_iter().rev().find(|e| {
        matches!(
            e["event"].as_str(),
            Some("partitions_assigned" | "partitions_revoked")
        )
    });
    let Some(owned) = last.as_ref().and_then(|e| e["owned"].as_str()) else {
        return BTreeMap::new();
    };
    owned
        .split(',')
        .filter_map(|s| {
            let (tp, epoch) = s.rsplit_once('#')?;
            let (_, p) = tp.rsplit_once('/')?;
            Some((p.parse().ok()?, epoch.parse().ok()?))
        })
        .collect()
}

/// Partition → (worker index, epoch), once the live workers own every partition exactly once
/// and evenly (a cooperative rebalance passes through uneven states: a partition is revoked in
/// one round and assigned in a later one).
fn stable(workers: &[&ChildWorker]) -> Option<BTreeMap<i32, (usize, u64)>> {
    let mut all = BTreeMap::new();
    let even = PARTITIONS as usize / workers.len();
    for (i, w) in workers.iter().enumerate() {
        let o = owned(w);
        if o.len() < even {
            return None;
        }
        for (p, e) in o {
            if all.insert(p, (i, e)).is_some() {
                return None;
            }
        }
    }
    (all.len() == PARTITIONS as usize).then_some(all)
}

/// Waits until `group` has committed, on every partition, the offset after the last record of
/// `expected` (cheaper than reading a thousand blobs back again and again).
async fn wait_committed(group: &str, topic: &str, expected: &BTreeMap<(i32, i64), Vec<u8>>) {
    let mut want = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        let end = expected
            .keys()
            .filter(|(q, _)| *q == p)
            .map(|(_, o)| o + 1)
            .max();
        want.add_partition_offset(topic, p, Offset::Offset(end.unwrap_or(0)))
            .expect("offset");
    }
    let consumer = group_consumer(group);
    testkit::wait_for(
        "commits to reach every partition's end",
        Duration::from_secs(90),
        || {
            let mut query = TopicPartitionList::new();
            for p in 0..PARTITIONS {
                query.add_partition(topic, p);
            }
            let now = consumer
                .committed_offsets(query, Duration::from_secs(10))
                .ok();
            let done = now.is_some_and(|n| n.to_topic_map() == want.to_topic_map());
            async move { done.then_some(()) }
        },
    )
    .await
    .expect("committed at the partition ends");
}

async fn wait_stable(what: &str, workers: &[&ChildWorker]) -> BTreeMap<i32, (usize, u64)> {
    testkit::wait_for(what, Duration::from_secs(90), || {
        let s = stable(workers);
        async move { s }
    })
    .await
    .expect("the group settles")
}

/// When each partition's batches were cut, from every worker's `batch_landed` events (logged
/// after the upload, `duration_ms` after the cut). With records arriving every [`TICK`] and
/// `BATCH_MAX_WAIT_MS` cuts, a stop in consumption shows as a gap between cuts; a slow upload
/// (the emulator stalls for seconds now and then) does not, until the worker's bound on data
/// in flight holds consumption back (see [`Stalls`]).
fn cuts(workers: &[&ChildWorker]) -> BTreeMap<i32, Vec<f64>> {
    let mut out: BTreeMap<i32, Vec<f64>> = BTreeMap::new();
    for w in workers {
        for e in w.events("batch_landed") {
            if let (Some(p), Some(t), Some(ms)) = (
                e["partition"].as_i64(),
                e["timestamp"].as_str().and_then(parse_timestamp),
                e["duration_ms"].as_f64(),
            ) {
                out.entry(p as i32).or_default().push(t - ms / 1000.0);
            }
        }
    }
    for v in out.values_mut() {
        v.sort_by(f64::total_cmp);
    }
    out
}

/// The longest time a partition went without a cut across `[from, to]`.
fn longest_gap(times: &[f64], from: f64, to: f64) -> f64 {
    longest_gap_outside(times, from, to, &[])
}

/// A stall longer than this, of the broker or the store, is the machine's, not the worker's.
const STALL: f64 = 1.0;

/// When the services the worker depends on stalled during a run. A stop of a kept partition
/// while records were not arriving, or while its worker's uploads hung (the emulator now and
/// then answers a request only after tens of seconds, on a loaded machine), says nothing
/// about the rebalance; the rest of the stop does.
#[derive(Debug)]
struct Stalls {
    /// Intervals between two ticks whose records were delivered more than [`STALL`] apart.
    broker: Vec<(f64, f64)>,
    /// Per worker (0, 1, 2 for A, B, C): from cut to landing of each batch that took more
    /// than [`STALL`] to land.
    store: Vec<Vec<(f64, f64)>>,
}

impl Stalls {
    /// What excuses a stop of a partition of `worker`: broker stalls and its own store stalls.
    fn of(&self, worker: usize) -> Vec<(f64, f64)> {
        let mut all = self.broker.clone();
        all.extend(self.store.get(worker).into_iter().flatten());
        all
    }
}

/// Intervals between consecutive `times` longer than `over` seconds.
fn gaps_over(times: &[f64], over: f64) -> Vec<(f64, f64)> {
    times
        .windows(2)
        .filter(|w| w[1] - w[0] > over)
        .map(|w| (w[0], w[1]))
        .collect()
}

/// (cut, landed) of each batch of `w` that took more than `over` seconds to land.
fn slow_uploads(w: &ChildWorker, over: f64) -> Vec<(f64, f64)> {
    w.events("batch_landed")
        .iter()
        .filter_map(|e| {
            let landed = e["timestamp"].as_str().and_then(parse_timestamp)?;
            let took = e["duration_ms"].as_f64()? / 1000.0;
            (took > over).then_some((landed - took, landed))
        })
        .collect()
}

/// Seconds of `(a, b)` covered by the union of `intervals`.
fn covered(a: f64, b: f64, intervals: &[(f64, f64)]) -> f64 {
    let mut clipped: Vec<(f64, f64)> = intervals
        .iter()
        .map(|&(s, e)| (s.max(a), e.min(b)))
        .filter(|(s, e)| s < e)
        .collect();
    clipped.sort_by(|x, y| x.0.total_cmp(&y.0));
    let (mut total, mut end) = (0.0, a);
    for (s, e) in clipped {
        let s = s.max(end);
        if e > s {
            total += e - s;
            end = e;
        }
    }
    total
}

/// The longest gap between consecutive `times` that overlaps `(from, to)`, less the part of
/// it that `excused` intervals cover.
fn longest_gap_outside(times: &[f64], from: f64, to: f64, excused: &[(f64, f64)]) -> f64 {
    times
        .windows(2)
        .filter(|w| w[1] > from && w[0] < to)
        .map(|w| w[1] - w[0] - covered(w[0], w[1], excused))
        .fold(0.0, f64::max)
}

/// Indexes of the workers whose whole assignment librdkafka declared lost (`partitions_revoked`
/// with `lost`) within `[from, to]`. Tansu 0.6 sometimes answers an offset commit with
/// ILLEGAL_GENERATION before the member's heartbeat told it that a rebalance began (Kafka
/// answers REBALANCE_IN_PROGRESS); librdkafka then revokes everything the member owns, as an
/// eager rebalance would (seen in 1 run of 10).
fn lost_workers(workers: &[&ChildWorker], from: f64, to: f64) -> BTreeSet<usize> {
    workers
        .iter()
        .enumerate()
        .filter(|(_, w)| {
            w.events("partitions_revoked").iter().any(|e| {
                e["lost"].as_bool() == Some(true)
                    && e["timestamp"]
                        .as_str()
                        .and_then(parse_timestamp)
                        .is_some_and(|t| t >= from && t <= to)
            })
        })
        .map(|(i, _)| i)
        .collect()
}

/// What one membership change did.
#[derive(Debug)]
struct Change {
    /// Partitions that stayed with their worker, and whether each kept its epoch (workers whose
    /// assignment was lost left out).
    kept: BTreeMap<i32, bool>,
    /// Partitions of workers whose assignment was lost.
    lost: BTreeSet<i32>,
    /// Partitions that moved to another worker.
    moved: BTreeSet<i32>,
    /// Longest stop of a partition that stayed with its worker (s, between two cuts).
    kept_pause: f64,
    /// The same, less the time within it when the broker took the records late or the
    /// worker's store held its uploads ([`Stalls`]): the part of the stop that was the
    /// worker's own.
    kept_pause_worker: f64,
    /// Longest stop of a partition that moved (s).
    moved_pause: f64,
}

fn change(
    before: &BTreeMap<i32, (usize, u64)>,
    after: &BTreeMap<i32, (usize, u64)>,
    landed: &BTreeMap<i32, Vec<f64>>,
    lost_workers: &BTreeSet<usize>,
    stalls: &Stalls,
    (from, to): (f64, f64),
) -> Change {
    let (mut kept, mut moved, mut lost) = (BTreeMap::new(), BTreeSet::new(), BTreeSet::new());
    let (mut kept_pause, mut moved_pause) = (0.0_f64, 0.0_f64);
    let mut kept_pause_worker = 0.0_f64;
    for (p, (worker, epoch)) in before {
        let cuts = landed.get(p).map_or(&[][..], Vec::as_slice);
        let gap = longest_gap(cuts, from, to);
        match after.get(p) {
            _ if lost_workers.contains(worker) => {
                lost.insert(*p);
            }
            Some((w, e)) if w == worker => {
                kept.insert(*p, e == epoch);
                kept_pause = kept_pause.max(gap);
                let excused = stalls.of(*worker);
                kept_pause_worker =
                    kept_pause_worker.max(longest_gap_outside(cuts, from, to, &excused));
            }
            _ => {
                moved.insert(*p);
                moved_pause = moved_pause.max(gap);
            }
        }
    }
    Change {
        kept,
        lost,
        moved,
        kept_pause,
        kept_pause_worker,
        moved_pause,
    }
}

/// Figures of one run: steady-state gap, the join, the leave.
#[derive(Debug)]
struct Run {
    steady_gap: f64,
    join: Change,
    leave: Change,
    /// Partitions whose buffers a worker dropped (epoch changed) since C was started.
    dropped: BTreeSet<i32>,
    /// When the broker or the store stalled (excused from the kept partitions' pauses).
    stalls: Stalls,
}

async fn join_and_leave(strategy: &str) -> Run {
    let topic = testkit::unique("wrebal");
    testkit::create_topic(&topic, PARTITIONS)
        .await
        .expect("topic");
    let (url, store) = testkit::new_container("wrebal").expect("container");
    let mut env = base_env(&[&topic], &url);
    set(&mut env, "KAFKA_ASSIGNMENT_STRATEGY", strategy);
    set(&mut env, "BATCH_MAX_WAIT_MS", "200");
    let a = ChildWorker::spawn(&env, "wrebal-a");
    let b = ChildWorker::spawn(&env, "wrebal-b");
    wait_stable("A and B to share the partitions", &[&a, &b]).await;

    // A record on every partition each tick, until told to stop.
    let stop = CancellationToken::new();
    let producing = tokio::spawn({
        let (topic, stop) = (topic.clone(), stop.clone());
        async move {
            let producer = producer();
            let mut expected = BTreeMap::new();
            let mut delivered = Vec::new();
            let mut i = 0;
            let mut tick = tokio::time::interval(TICK);
            while !stop.is_cancelled() {
                tick.tick().await;
                expected.extend(
                    produce_range(&producer, &topic, PARTITIONS, i..i + PARTITIONS as usize).await,
                );
                delivered.push(now());
                i += PARTITIONS as usize;
            }
            (expected, delivered)
        }
    });
    tokio::time::sleep(SETTLE).await;

    let before_join = stable(&[&a, &b]).expect("still stable");
    let t_join = now();
    let mut c = ChildWorker::spawn(&env, "wrebal-c");
    let after_join = wait_stable("C to take its share", &[&a, &b, &c]).await;
    tokio::time::sleep(SETTLE).await;
    let joined = now();

    let t_leave = now();
    c.terminate();
    testkit::wait_for("C to exit", Duration::from_secs(30), || {
        let s = c.child.try_wait().expect("try_wait");
        async move { s }
    })
    .await
    .expect("C exits");
    let after_leave = wait_stable("A and B to take C's partitions back", &[&a, &b]).await;
    tokio::time::sleep(SETTLE).await;
    let left = now();

    stop.cancel();
    let (expected, delivered) = producing.await.expect("producer task");
    let group = var(&env, "KAFKA_GROUP_ID");
    wait_committed(&group, &topic, &expected).await;
    for w in [&a, &b] {
        w.terminate();
    }
    assert_exactly_once(&read_all(&store).await, &topic, &expected);

    let workers = [&a, &b, &c];
    let times = cuts(&workers);
    let stalls = Stalls {
        broker: gaps_over(&delivered, STALL),
        store: workers.iter().map(|w| slow_uploads(w, STALL)).collect(),
    };
    let steady_gap = times
        .values()
        .map(|t| longest_gap(t, t_join - SETTLE.as_secs_f64() + 0.5, t_join))
        .fold(0.0, f64::max);
    // Workers are numbered 0, 1, 2 for A, B, C in every snapshot.
    let run = Run {
        steady_gap,
        join: change(
            &before_join,
            &after_join,
            &times,
            &lost_workers(&workers, t_join, joined),
            &stalls,
            (t_join, joined),
        ),
        leave: change(
            &after_join,
            &after_leave,
            &times,
            &lost_workers(&workers, t_leave, left),
            &stalls,
            (t_leave, left),
        ),
        stalls,
        dropped: workers
            .iter()
            .flat_map(|w| w.events("partition_dropped"))
            .filter(|e| {
                e["timestamp"]
                    .as_str()
                    .and_then(parse_timestamp)
                    .is_some_and(|t| t >= t_join)
            })
            .filter_map(|e| Some(e["partition"].as_i64()? as i32))
            .collect(),
    };
    eprintln!(
        "rebalance pause ({strategy}, {PARTITIONS} partitions, a record per partition every {} ms, BATCH_MAX_WAIT_MS=200), \
         longest gap between two batch cuts of a partition: steady {:.2} s; C joins: {} kept {:.2} s ({:.2} s its worker's), moved {:.2} s, {} lost; \
         C leaves: {} kept {:.2} s ({:.2} s its worker's), moved {:.2} s, {} lost",
        TICK.as_millis(),
        run.steady_gap,
        run.join.kept.len(),
        run.join.kept_pause,
        run.join.kept_pause_worker,
        run.join.moved_pause,
        run.join.lost.len(),
        run.leave.kept.len(),
        run.leave.kept_pause,
        run.leave.kept_pause_worker,
        run.leave.moved_pause,
        run.leave.lost.len(),
    );
    eprintln!("{run:?}");
    run
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cooperative_rebalance_keeps_unmoved_partitions_landing_while_a_worker_joins_and_leaves() {
    let run = join_and_leave("cooperative-sticky").await;
    for (what, c) in [("join", &run.join), ("leave", &run.leave)] {
        // Sticky: of 6 partitions over 2 → 3 workers (and back) only 2 move. A worker whose
        // assignment was lost (see `lost_workers`) keeps none; the other still keeps 2.
        assert!(c.kept.len() >= 2, "{what}: too few partitions kept: {c:?}");
        assert!(
            c.kept.values().all(|same_epoch| *same_epoch),
            "{what}: a partition that stayed with its worker got a new epoch: {c:?}"
        );
        // Eager stops every partition for 3-5 s on Tansu; here the kept ones only lose the
        // odd batch interval. The bound leaves room for a loaded 2-core machine; time the
        // broker or the store stalled is not the worker's (`Stalls`).
        assert!(
            c.kept_pause_worker < 3.0,
            "{what}: a partition that stayed with its worker stopped for {:.2} s of its own \
             ({:.2} s in all; stalls of the broker and the store: {:?})",
            c.kept_pause_worker,
            c.kept_pause,
            run.stalls
        );
    }
    // Buffers are dropped only for partitions that left their worker (or whose worker lost its
    // assignment).
    let moved: BTreeSet<i32> = [&run.join, &run.leave]
        .iter()
        .flat_map(|c| c.moved.iter().chain(&c.lost))
        .copied()
        .collect();
    assert!(
        run.dropped.is_subset(&moved),
        "buffers dropped for partitions that stayed with their worker: dropped {:?}, moved {moved:?}",
        run.dropped
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eager_rebalance_stops_every_partition_while_a_worker_joins_and_leaves() {
    let run = join_and_leave("range").await;
    // Every partition is revoked at each change: every kept partition has a new epoch.
    for c in [&run.join, &run.leave] {
        assert!(c.kept.values().all(|same_epoch| !same_epoch), "{c:?}");
    }
}
