//! The local stack is real: each service is reached through the crate the product uses.
//!
//! These run against `scripts/stack up` (Tansu, Azurite, Redis on loopback).

use std::time::Duration;

use futures::StreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, PutMode, PutOptions, PutPayload};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use redis::AsyncCommands;

fn consumer(group: &str) -> StreamConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", testkit::brokers())
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer")
}

#[tokio::test]
async fn kafka_round_trip_in_a_consumer_group_with_manual_commit() -> anyhow::Result<()> {
    let topic = testkit::unique("stack-kafka");
    testkit::create_topic(&topic, 2).await?;
    let producer = testkit::producer();
    for i in 0..10 {
        testkit::send(
            &producer,
            &topic,
            i % 2,
            None,
            format!("{{\"n\": {i}}}").as_bytes(),
        )
        .await?;
    }

    let group = testkit::unique("stack-group");
    let c = consumer(&group);
    c.subscribe(&[&topic])?;
    let mut seen = Vec::new();
    while seen.len() < 10 {
        let m = tokio::time::timeout(Duration::from_secs(30), c.recv()).await??;
        seen.push(String::from_utf8(m.payload().unwrap_or_default().to_vec())?);
        c.commit_message(&m, CommitMode::Sync)?;
    }
    seen.sort();
    assert_eq!(seen.len(), 10);
    assert!(seen.contains(&"{\"n\": 9}".to_owned()));

    // The committed offsets are what a new member of the group would resume from.
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(&topic, 0);
    tpl.add_partition(&topic, 1);
    let committed = c.committed_offsets(tpl, Duration::from_secs(10))?;
    let total: i64 = committed
        .elements()
        .iter()
        .map(|e| match e.offset() {
            Offset::Offset(o) => o,
            other => panic!(
                "partition {} has no committed offset: {other:?}",
                e.partition()
            ),
        })
        .sum();
    assert_eq!(total, 10, "5 records committed on each partition");
    Ok(())
}

#[tokio::test]
async fn blob_put_list_get_and_create_only_put() -> anyhow::Result<()> {
    let (_url, store) = testkit::new_container("stack-blob")?;
    let path = Path::from("a/b/one.json.gz");
    store.put(&path, PutPayload::from_static(b"first")).await?;

    let names = testkit::list_names(store.as_ref(), Some("a")).await?;
    assert_eq!(names, ["a/b/one.json.gz"]);
    let got = store.get(&path).await?.bytes().await?;
    assert_eq!(&got[..], b"first");

    let create = PutOptions {
        mode: PutMode::Create,
        ..Default::default()
    };
    let again = store
        .put_opts(&path, PutPayload::from_static(b"second"), create.clone())
        .await;
    assert!(
        matches!(again, Err(object_store::Error::AlreadyExists { .. })),
        "create-only put over an existing blob must report AlreadyExists, got {again:?}"
    );
    let fresh = Path::from("a/b/two.json.gz");
    store
        .put_opts(&fresh, PutPayload::from_static(b"new"), create)
        .await?;
    assert_eq!(store.list(None).count().await, 2);
    assert_eq!(
        &store.get(&path).await?.bytes().await?[..],
        b"first",
        "the loser did not overwrite"
    );
    Ok(())
}

#[tokio::test]
async fn redis_set_expire_and_scan() -> anyhow::Result<()> {
    let mut r = testkit::redis().await?;
    let ns = testkit::unique("stack-redis");
    for i in 0..5 {
        let _: () = r.set(format!("{ns}:k{i}"), i).await?;
    }
    let _: bool = r.expire(format!("{ns}:k0"), 30).await?;
    let ttl: i64 = r.ttl(format!("{ns}:k0")).await?;
    assert!((1..=30).contains(&ttl), "ttl {ttl}");
    let persistent: i64 = r.ttl(format!("{ns}:k1")).await?;
    assert_eq!(persistent, -1);

    let mut keys: Vec<String> = r
        .scan_match::<_, String>(format!("{ns}:*"))
        .await?
        .collect()
        .await;
    keys.sort();
    assert_eq!(keys.len(), 5);
    let _: () = r.del(keys).await?;
    Ok(())
}
