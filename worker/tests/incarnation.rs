//! A topic deleted and re-created hands out its old offsets again (so does a broker that
//! restarts empty). The raw blobs of the old incarnation sit under the names the new records
//! map to: the worker must stop with an error that says so, not skip the new records as
//! "already landed".

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::FutureRecord;

/// Produces `values` to partition 0 of `topic`, one at a time (offsets in order), the `i`-th
/// with the Kafka timestamp `ts + i`. Returns offset → value.
async fn produce_at(topic: &str, ts: i64, values: &[Vec<u8>]) -> BTreeMap<(i32, i64), Vec<u8>> {
    let producer = producer();
    let mut out = BTreeMap::new();
    for (i, value) in values.iter().enumerate() {
        let rec: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic)
            .partition(0)
            .payload(value.as_slice())
            .timestamp(ts + i as i64);
        let d = producer
            .send(rec, Duration::from_secs(30))
            .await
            .map_err(|(e, _)| e)
            .expect("delivered");
        out.insert((0, d.offset), value.clone());
    }
    out
}

async fn delete_topic(name: &str) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", testkit::brokers())
        .create()
        .expect("admin client");
    let results = admin
        .delete_topics(&[name], &AdminOptions::new())
        .await
        .expect("delete topics request");
    for r in results {
        r.unwrap_or_else(|(t, e)| panic!("deleting topic {t}: {e}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recreated_topic_stops_the_worker_instead_of_skipping_its_records() {
    let topic = testkit::unique("winc");
    testkit::create_topic(&topic, 1).await.expect("topic");
    let (url, store) = testkit::new_container("winc").expect("container");
    // Both incarnations' records carry timestamps in the same hour, as when a topic is
    // re-created soon after, so the new records map onto the old blobs' names.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    let hour = now / 3_600_000 * 3_600_000;
    let old_values: Vec<Vec<u8>> = (0..30).map(sample_value).collect();
    let old = produce_at(&topic, hour, &old_values).await;
    assert_eq!(
        old.keys().map(|k| k.1).collect::<Vec<_>>(),
        (0..30).collect::<Vec<_>>()
    );

    let mut env = base_env(&[&topic], &url);
    set(&mut env, "BATCH_SIZE", "10");
    let group = var(&env, "KAFKA_GROUP_ID");
    let first = InProcess::start(&env).await;
    wait_landed(&store, &topic, 30, Duration::from_secs(60)).await;
    testkit::wait_for(
        "the first run to commit 30",
        Duration::from_secs(30),
        || {
            let c = committed(&group, &topic);
            async move { (c == Some(30)).then_some(()) }
        },
    )
    .await
    .expect("committed");
    first.stop().await;

    // The topic is deleted and created again: its offsets start over at 0.
    delete_topic(&topic).await;
    let recreated = testkit::wait_for(
        "the topic to be created again",
        Duration::from_secs(30),
        || {
            let topic = topic.clone();
            async move { testkit::create_topic(&topic, 1).await.ok() }
        },
    )
    .await;
    recreated.expect("re-created");
    let new_values: Vec<Vec<u8>> = (0..25).map(|i| sample_value(1_000 + i)).collect();
    let new = produce_at(&topic, hour + 1_000, &new_values).await;
    assert_eq!(
        new.keys().map(|k| k.1).collect::<Vec<_>>(),
        (0..25).collect::<Vec<_>>(),
        "the re-created topic hands out offsets 0.. again"
    );
    // Whatever the broker kept of the group's commit (30 is past the new log end, so the
    // consumer resets to the earliest offset), the restarted worker reads the new records
    // from 0 and walks into the old incarnation's blobs.
    let committed_before = committed(&group, &topic);
    eprintln!("committed after the re-creation: {committed_before:?}");

    set(&mut env, "BATCH_SIZE", "7");
    let mut second = ChildWorker::spawn(&env, "winc");
    let status = testkit::wait_for("the worker to stop", Duration::from_secs(60), || {
        let s = second.child.try_wait().expect("try_wait");
        async move { s }
    })
    .await
    .expect("the worker stops on its own");
    assert!(!status.success(), "a non-zero exit: {status:?}");

    let mismatches = second.events("incarnation_mismatch");
    let [event] = &mismatches[..] else {
        panic!("one incarnation_mismatch event: {mismatches:?}");
    };
    assert_eq!(event["level"], "ERROR", "{event}");
    assert_eq!(event["offset"], 0, "{event}");
    let blob = model::naming::raw_blob_name(&topic, 0, 0, Some(hour));
    assert_eq!(event["blob"], blob.as_str(), "{event}");
    assert_ne!(event["stored_fingerprint"], event["fetched_fingerprint"]);
    let message = event["error"].as_str().expect("error text");
    for part in [
        blob.as_str(),
        "re-created",
        "nothing was skipped",
        "RAW_URL",
    ] {
        assert!(message.contains(part), "{part}: {message}");
    }
    // The binary's exit message says it too.
    let log = std::fs::read_to_string(&second.log).expect("log");
    assert!(
        log.lines()
            .any(|l| !l.starts_with('{') && l.contains("re-created")),
        "the exit error on stderr: {log}"
    );

    // Nothing skipped, nothing landed over or beside the old blobs, nothing committed.
    assert!(second.events("blob_already_landed").is_empty());
    assert!(second.events("batch_already_landed").is_empty());
    assert!(second.events("batch_landed").is_empty());
    assert_exactly_once(&read_all(&store).await, &topic, &old);
    assert_eq!(
        committed(&group, &topic),
        committed_before,
        "no commit for the new incarnation"
    );
}
