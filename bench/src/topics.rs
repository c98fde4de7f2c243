//! Topic creation on the configured broker (not only the local stack's, as `testkit` does), so
//! `bench latency --kafka-brokers …` and `bench topic` create where they will produce.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

use crate::config::TopicConfig;

/// Errors creating a topic.
#[derive(Debug, thiserror::Error)]
pub enum TopicError {
    /// The admin client could not be created or the request failed.
    #[error("creating topic {topic} on {brokers}: {source}")]
    Admin {
        /// The topic.
        topic: String,
        /// Bootstrap servers.
        brokers: String,
        /// Why.
        source: KafkaError,
    },
    /// The broker refused the topic.
    #[error("creating topic {topic} on {brokers}: the broker answered {code}")]
    Refused {
        /// The topic.
        topic: String,
        /// Bootstrap servers.
        brokers: String,
        /// The broker's error code.
        code: RDKafkaErrorCode,
    },
}

/// `bench topic`: creates the configured topic (idempotent) for `bench/run` and the scripts.
pub async fn command(config: TopicConfig) -> anyhow::Result<()> {
    let config = config.validate()?;
    let (topic, partitions) = (&config.bench_topic, config.bench_partitions);
    create(&config.kafka.kafka_brokers, topic, partitions).await?;
    eprintln!("bench topic: {topic} ready with {partitions} partitions");
    Ok(())
}

/// Creates `topic` with `partitions` partitions; an existing topic is fine (idempotent).
pub async fn create(brokers: &str, topic: &str, partitions: i32) -> Result<(), TopicError> {
    let admin_err = |source| TopicError::Admin {
        topic: topic.to_owned(),
        brokers: brokers.to_owned(),
        source,
    };
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .map_err(admin_err)?;
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    for result in admin
        .create_topics([&new], &options)
        .await
        .map_err(admin_err)?
    {
        if let Err((_, code)) = result
            && code != RDKafkaErrorCode::TopicAlreadyExists
        {
            return Err(TopicError::Refused {
                topic: topic.to_owned(),
                brokers: brokers.to_owned(),
                code,
            });
        }
    }
    Ok(())
}
