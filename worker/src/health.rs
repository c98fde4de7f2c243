//! `/readyz` probes: each really reaches its dependency and says what failed.

use std::sync::{Arc, Weak};
use std::time::Duration;

use object_store::ObjectStore;
use rdkafka::consumer::Consumer as _;
use service::ops::Probe;

use crate::config::CleanupSettings;
use crate::consumer::WorkerConsumer;

/// Kafka (metadata request), storage (list one blob), and Redis (PING, only with clean-up on).
pub fn probes(
    consumer: Weak<WorkerConsumer>,
    brokers: String,
    store: Arc<dyn ObjectStore>,
    raw_url: String,
    cleanup: Option<CleanupSettings>,
) -> Vec<Probe> {
    let mut probes = vec![
        Probe::new("kafka", move || {
            let consumer = consumer.clone();
            let brokers = brokers.clone();
            async move {
                // fetch_metadata blocks; keep it off the async workers.
                tokio::task::spawn_blocking(move || {
                    let consumer = consumer.upgrade().ok_or("the worker is shutting down")?;
                    consumer
                        .fetch_metadata(None, Duration::from_secs(3))
                        .map_err(|e| format!("{brokers}: {e}"))
                        .and_then(|md| {
                            if md.brokers().is_empty() {
                                Err(format!("{brokers}: metadata lists no broker"))
                            } else {
                                Ok(())
                            }
                        })
                })
                .await
                .map_err(|e| e.to_string())?
            }
        }),
        Probe::new("storage", move || {
            let store = store.clone();
            let what = format!("RAW_URL={raw_url}");
            async move { service::storage::probe(store.as_ref(), &what).await }
        }),
    ];
    if let Some(c) = cleanup {
        probes.push(Probe::new("redis", move || {
            let c = c.clone();
            async move { crate::cleanup::ping(&c).await }
        }));
    }
    probes
}
