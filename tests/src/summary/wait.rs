//! Waiting for a run to settle, then summarizing it.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use object_store::ObjectStore;
use simulator::Manifest;

use super::{Scan, Scope, Summary, SummaryError, poisoned, raw_gaps, summarize};

/// Waits until every scoped record is in raw and every scoped raw blob has a receipt (or a poison
/// entry), then summarizes. Without a manifest it waits for the receipts of the blobs present.
pub async fn wait_and_summarize(
    raw: Arc<dyn ObjectStore>,
    standard: Arc<dyn ObjectStore>,
    manifest: Option<&Manifest>,
    timeout: Duration,
    mut progress: impl FnMut(&str),
) -> Result<Summary, SummaryError> {
    let scope = manifest.map_or_else(Scope::everything, Scope::of);
    let deadline = Instant::now() + timeout;
    let mut scan = Scan::default();
    let mut last = String::new();
    loop {
        let pending = match scan.refresh(raw.as_ref(), standard.as_ref(), &scope).await {
            Ok(()) => {
                let mut pending = manifest.map(|m| raw_gaps(&scan, m)).unwrap_or_default();
                let unprocessed: Vec<String> = scan
                    .blobs_in(&scope)
                    .filter(|b| !scan.receipts.contains(&b.name))
                    .map(|b| b.name.clone())
                    .collect();
                if !unprocessed.is_empty() {
                    let poison: BTreeSet<String> =
                        poisoned(standard.as_ref()).await?.into_iter().collect();
                    let open: Vec<&String> = unprocessed
                        .iter()
                        .filter(|n| !poison.contains(*n))
                        .collect();
                    if !open.is_empty() {
                        pending.push(format!(
                            "{} raw blobs not transformed yet (e.g. {})",
                            open.len(),
                            open[0]
                        ));
                    }
                }
                pending
            }
            // Storage may be down for a while (chaos): keep waiting until the deadline.
            Err(e) => vec![format!("storage error: {e}")],
        };
        if pending.is_empty() {
            return summarize(&scan, &standard, manifest).await;
        }
        let text = pending.join("; ");
        if text != last {
            progress(&text);
            last = text.clone();
        }
        if Instant::now() > deadline {
            return Err(SummaryError::Timeout {
                timeout,
                pending: text,
            });
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
