//! Flood mode against the real broker: exactly N good records in a realistic mix, and every
//! injected bad record recorded at the offset where it really is.

mod common;

use std::collections::BTreeSet;

use model::envelope::{
    ATTACK_COMPLETED, CLEANING_GAME_RECORDS, Envelope, GAME_TIMED_OUT, STARTING_MATCH,
    STARTING_SERVER, StartingMatchTask,
};
use simulator::Simulator;
use simulator::bad::BadKind;
use simulator::messages::LISTENING;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flood_sends_exactly_n_good_records_in_a_realistic_mix() -> anyhow::Result<()> {
    let topics = common::topics("flood").await?;
    let dir = testkit::TempDir::new("sim")?;
    let settings = common::settings(&dir, &topics, &[("MESSAGES", "3000"), ("SEED", "5")]);
    let report = Simulator::connect(settings)
        .await?
        .flood(CancellationToken::new(), false)
        .await?;
    let m = &report.manifest;
    assert_eq!(
        (m.good_records, m.bad_records, m.failed_deliveries),
        (3000, 0, 0)
    );
    assert!(m.complete);
    for message in [
        STARTING_SERVER,
        LISTENING,
        STARTING_MATCH,
        GAME_TIMED_OUT,
        CLEANING_GAME_RECORDS,
        ATTACK_COMPLETED,
    ] {
        assert!(
            m.log_messages.get(message).is_some_and(|n| *n > 0),
            "{message} is in the mix: {:?}",
            m.log_messages
        );
    }
    assert_eq!(m.log_messages[STARTING_SERVER], 1);
    assert!(
        m.games.completed > 0 && m.games.timed_out > 0,
        "{:?}",
        m.games
    );
    // Attacks dominate, like real games (about 14-17 attacks per completed game).
    assert!(
        m.attack_rows > m.log_messages[STARTING_MATCH],
        "{:?}",
        m.log_messages
    );

    let mut rows = 0;
    let mut read = 0;
    for topic in &topics {
        let records = common::read_all(topic)?;
        read += records.len() as u64;
        let stats = common::partition_stats(&records);
        assert_eq!(
            stats.len(),
            m.topics[topic].len(),
            "partitions used on {topic}"
        );
        for (p, s) in &m.topics[topic] {
            assert_eq!(
                stats[p],
                (s.count, s.min_offset, s.max_offset),
                "{topic}/{p}"
            );
        }
        for r in &records {
            let e: Envelope<'_> = serde_json::from_slice(&r.value)?;
            if e.log_message == STARTING_MATCH {
                rows += e
                    .task::<StartingMatchTask>(STARTING_MATCH)?
                    .payload
                    .participants_heros
                    .0
                    .len() as u64;
            }
        }
    }
    assert_eq!(read, 3000);
    assert_eq!(rows, m.participant_rows);
    assert!(
        report.rate_line().starts_with("flood: 3000 records"),
        "{}",
        report.rate_line()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_ratio_records_every_injected_record_at_its_offset() -> anyhow::Result<()> {
    let topics = common::topics("bad").await?;
    let dir = testkit::TempDir::new("sim")?;
    let settings = common::settings(
        &dir,
        &topics,
        &[("MESSAGES", "400"), ("SEED", "9"), ("BAD_RATIO", "0.3")],
    );
    let report = Simulator::connect(settings)
        .await?
        .flood(CancellationToken::new(), false)
        .await?;
    let m = &report.manifest;
    assert_eq!((m.good_records, m.failed_deliveries), (400, 0));
    assert_eq!(m.bad.len() as u64, m.bad_records);
    let kinds: BTreeSet<&str> = m.bad.iter().map(|b| b.kind.as_str()).collect();
    assert_eq!(
        kinds,
        BadKind::ALL.iter().map(|k| k.as_str()).collect(),
        "every kind is injected"
    );

    for topic in &topics {
        let records = common::read_all(topic)?;
        let bad: BTreeSet<(i32, i64)> = m
            .bad
            .iter()
            .filter(|b| &b.topic == topic)
            .map(|b| (b.partition, b.offset))
            .collect();
        for b in m.bad.iter().filter(|b| &b.topic == topic) {
            let r = records
                .iter()
                .find(|r| (r.partition, r.offset) == (b.partition, b.offset))
                .unwrap_or_else(|| panic!("{b:?} is not in the topic"));
            let kind = BadKind::from_name(&b.kind).expect("known kind");
            assert!(
                kind.is_evident_in(&r.value),
                "{b:?} is not malformed as announced"
            );
        }
        // Everything not listed is a good record: the list is complete.
        for r in records
            .iter()
            .filter(|r| !bad.contains(&(r.partition, r.offset)))
        {
            let e: Envelope<'_> = serde_json::from_slice(&r.value).unwrap_or_else(|err| {
                panic!(
                    "unlisted record {topic}/{}/{} is malformed: {err}",
                    r.partition, r.offset
                )
            });
            model::envelope::parse_timestamp(&e.timestamp)?;
            assert!(r.value.len() <= simulator::bad::MAX_VALUE_BYTES);
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_topics_are_an_error_naming_the_variable_unless_created() -> anyhow::Result<()> {
    let dir = testkit::TempDir::new("sim")?;
    let topics = [
        testkit::unique("new-lobby"),
        testkit::unique("new-game"),
        testkit::unique("new-client"),
    ];
    let err = Simulator::connect(common::settings(&dir, &topics, &[]))
        .await
        .expect_err("missing topics");
    assert!(
        err.to_string()
            .starts_with(&format!("topic {} (TOPIC_LOBBY) does not exist", topics[0])),
        "{err}"
    );
    let sim = Simulator::connect(common::settings(
        &dir,
        &topics,
        &[("CREATE_TOPICS", "true")],
    ))
    .await?;
    assert_eq!(
        sim.publisher().partitions(),
        [2, 4, 1],
        "the reference partition counts"
    );
    Ok(())
}
