//! Durable bookkeeping in `standard`: receipts, leases and poison entries.
//!
//! - `_receipts/{raw name}.json`: the blob version (ETag) that was processed, when, and its
//!   counts. A rewritten blob (new ETag) no longer matches its receipt and is processed again.
//! - `_leases/{raw name}@{etag}`: a claim created with `PutMode::Create` so that, of several
//!   watchers, one processes a blob version; it holds the owner and an expiry (now +
//!   `WATCH_LEASE_TTL_MS`). The owner renews it every TTL/3 while it works (`PutMode::Update` on
//!   the ETag it last wrote); an expired lease (owner dead) is taken over with `PutMode::Update`
//!   on its ETag (only one taker wins), after which the old owner's renewal fails (`lease_lost`).
//! - `_poison/{raw name}.json`: a blob version that failed `WATCH_MAX_ATTEMPTS` times, with the
//!   last error; the watcher skips it until the blob is rewritten.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use object_store::path::Path;
use object_store::{ObjectStore, PutMode, PutOptions, PutPayload, PutResult, UpdateVersion};
use serde::{Deserialize, Serialize};

use crate::transform::Counts;

/// Prefix of receipts.
pub const RECEIPTS_PREFIX: &str = "_receipts";
/// Prefix of leases.
pub const LEASES_PREFIX: &str = "_leases";
/// Prefix of poison entries.
pub const POISON_PREFIX: &str = "_poison";

/// A bookkeeping read or write failed.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// object_store failed on this path.
    #[error("{op} {path} in standard: {source}")]
    Store {
        /// What we were doing.
        op: &'static str,
        /// The bookkeeping blob.
        path: String,
        /// object_store's error.
        #[source]
        source: object_store::Error,
    },
}

fn store_err(op: &'static str, path: &Path) -> impl FnOnce(object_store::Error) -> LedgerError {
    let path = path.to_string();
    move |source| LedgerError::Store { op, path, source }
}

/// An ETag without quotes or weak marker: Azure's listing says `0x8D…`, a GET header says
/// `"0x8D…"`, and both name the same version.
pub fn normalize_etag(etag: &str) -> &str {
    etag.trim_start_matches("W/").trim_matches('"')
}

/// `_receipts/{raw}.json`.
pub fn receipt_path(raw: &str) -> Path {
    Path::from(format!("{RECEIPTS_PREFIX}/{raw}.json"))
}

/// `_poison/{raw}.json`.
pub fn poison_path(raw: &str) -> Path {
    Path::from(format!("{POISON_PREFIX}/{raw}.json"))
}

/// The raw name a poison entry's path stands for (the inverse of [`poison_path`]); `None` for a
/// path that is not `_poison/{raw}.json`.
pub fn poisoned_raw_name(path: &str) -> Option<&str> {
    path.strip_prefix(POISON_PREFIX)?
        .strip_prefix('/')?
        .strip_suffix(".json")
}

/// `_leases/{raw}@{etag}` with the ETag reduced to `[A-Za-z0-9]` (ETags carry quotes).
pub fn lease_path(raw: &str, etag: &str) -> Path {
    let tag: String = etag.chars().filter(char::is_ascii_alphanumeric).collect();
    Path::from(format!("{LEASES_PREFIX}/{raw}@{tag}"))
}

#[derive(Serialize)]
struct ReceiptOut<'a> {
    blob: &'a str,
    etag: &'a str,
    finished_at: DateTime<Utc>,
    owner: &'a str,
    counts: &'a Counts,
}

#[derive(Deserialize)]
struct EtagOnly {
    etag: String,
}

/// Reads the ETag recorded in a JSON bookkeeping blob, `None` when it does not exist.
async fn recorded_etag(
    store: &dyn ObjectStore,
    path: &Path,
) -> Result<Option<String>, LedgerError> {
    match store.get(path).await {
        Ok(got) => {
            let bytes = got.bytes().await.map_err(store_err("reading", path))?;
            // An unreadable entry is treated as absent: the blob is simply processed again.
            Ok(serde_json::from_slice::<EtagOnly>(&bytes)
                .ok()
                .map(|e| normalize_etag(&e.etag).to_owned()))
        }
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(store_err("reading", path)(e)),
    }
}

/// The ETag of the last processed version of `raw`, if any.
pub async fn receipt_etag(
    store: &dyn ObjectStore,
    raw: &str,
) -> Result<Option<String>, LedgerError> {
    recorded_etag(store, &receipt_path(raw)).await
}

/// The ETag of the poisoned version of `raw`, if any.
pub async fn poison_etag(
    store: &dyn ObjectStore,
    raw: &str,
) -> Result<Option<String>, LedgerError> {
    recorded_etag(store, &poison_path(raw)).await
}

/// Writes (overwrites) the receipt of `raw` at `etag`.
pub async fn write_receipt(
    store: &dyn ObjectStore,
    raw: &str,
    etag: &str,
    owner: &str,
    counts: &Counts,
) -> Result<(), LedgerError> {
    let path = receipt_path(raw);
    let body = ReceiptOut {
        blob: raw,
        etag: normalize_etag(etag),
        finished_at: Utc::now(),
        owner,
        counts,
    };
    let bytes = serde_json::to_vec(&body).expect("JSON to a Vec cannot fail");
    store
        .put(&path, bytes.into())
        .await
        .map_err(store_err("writing", &path))?;
    crate::telemetry::receipt_written(raw, etag);
    Ok(())
}

#[derive(Serialize)]
struct PoisonOut<'a> {
    blob: &'a str,
    etag: &'a str,
    attempts: u32,
    error: &'a str,
    poisoned_at: DateTime<Utc>,
    owner: &'a str,
}

/// Writes the poison entry of `raw` at `etag`.
pub async fn write_poison(
    store: &dyn ObjectStore,
    raw: &str,
    etag: &str,
    attempts: u32,
    error: &str,
    owner: &str,
) -> Result<(), LedgerError> {
    let path = poison_path(raw);
    let body = PoisonOut {
        blob: raw,
        etag: normalize_etag(etag),
        attempts,
        error,
        poisoned_at: Utc::now(),
        owner,
    };
    let bytes = serde_json::to_vec(&body).expect("JSON to a Vec cannot fail");
    store
        .put(&path, bytes.into())
        .await
        .map_err(store_err("writing", &path))?;
    crate::telemetry::blob_poisoned(raw, etag, attempts, error);
    Ok(())
}

#[derive(Serialize, Deserialize)]
struct LeaseBody {
    owner: String,
    expires_at: DateTime<Utc>,
}

/// Renewals happen at least this far apart, whatever the TTL (a zero TTL in a test must not
/// make a busy loop).
const MIN_RENEW_EVERY: Duration = Duration::from_millis(10);

/// A held lease: renew it while working ([`Lease::hold_while`]), then [`Lease::release`] it.
#[derive(Debug)]
pub struct Lease {
    store: Arc<dyn ObjectStore>,
    path: Path,
    raw: String,
    owner: String,
    ttl: Duration,
    /// The version we last wrote: a renewal is a conditional update on it, so it fails as soon
    /// as anybody else has written the lease.
    version: UpdateVersion,
    lost: bool,
}

impl Lease {
    /// The lease blob.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether a renewal found the lease taken over (or deleted) by someone else.
    pub fn is_lost(&self) -> bool {
        self.lost
    }

    /// Pushes the expiry to now + TTL with a conditional update on the version we last wrote.
    /// `Ok(false)` (and [`Lease::is_lost`] from then on) when someone else took it over.
    pub async fn renew(&mut self) -> Result<bool, LedgerError> {
        if self.lost {
            return Ok(false);
        }
        let update = PutOptions::from(PutMode::Update(self.version.clone()));
        let payload = lease_payload(&self.owner, self.ttl);
        match self.store.put_opts(&self.path, payload, update).await {
            Ok(put) => {
                self.version = UpdateVersion {
                    e_tag: put.e_tag,
                    version: put.version,
                };
                crate::telemetry::lease(&self.raw, "renewed");
                Ok(true)
            }
            Err(
                object_store::Error::Precondition { .. } | object_store::Error::NotFound { .. },
            ) => {
                self.lost = true;
                crate::telemetry::lease_lost(&self.raw, &self.owner);
                Ok(false)
            }
            Err(e) => Err(store_err("renewing", &self.path)(e)),
        }
    }

    /// Runs `work` to completion while renewing the lease every TTL/3, so that a live owner
    /// keeps its claim however long the work takes and a dead one loses it one TTL after its
    /// last renewal. A lost lease does not stop the work: outputs are deterministic overwrites,
    /// so the worst case is a blob transformed twice, never a duplicate row. A failed renewal
    /// (storage unreachable) is logged and tried again at the next tick.
    pub async fn hold_while<F: Future>(&mut self, work: F) -> F::Output {
        let every = (self.ttl / 3).max(MIN_RENEW_EVERY);
        let keep_alive = async {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                match self.renew().await {
                    Ok(true) => {}
                    Ok(false) => return,
                    Err(LedgerError::Store {
                        source: object_store::Error::NotImplemented,
                        ..
                    }) => {
                        // A store without conditional updates (file://) cannot renew; the
                        // lease then simply expires after one TTL, as before renewals existed.
                        tracing::warn!(event = "lease_renew_unsupported", blob = %self.raw);
                        return;
                    }
                    Err(e) => crate::telemetry::lease_renew_failed(&self.raw, &e),
                }
            }
        };
        let mut work = std::pin::pin!(work);
        tokio::select! {
            out = &mut work => return out,
            () = keep_alive => {}
        }
        work.await
    }

    /// Deletes the lease (after the receipt is written, so a late claimer sees the receipt).
    /// A lost lease is left alone: it now belongs to the watcher that took it over.
    pub async fn release(self) -> Result<(), LedgerError> {
        if self.lost {
            return Ok(());
        }
        match self.store.delete(&self.path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(store_err("deleting", &self.path)(e)),
        }
    }
}

fn lease_payload(owner: &str, ttl: Duration) -> PutPayload {
    let now = Utc::now();
    let expires_at = chrono::Duration::from_std(ttl)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    let body = LeaseBody {
        owner: owner.to_owned(),
        expires_at,
    };
    serde_json::to_vec(&body)
        .expect("JSON to a Vec cannot fail")
        .into()
}

/// Tries to claim `raw`@`etag` for `owner` for `ttl`; `None` when another live owner holds it.
/// A lease whose expiry has passed (its owner died or stopped renewing) is taken over.
pub async fn claim(
    store: &Arc<dyn ObjectStore>,
    raw: &str,
    etag: &str,
    owner: &str,
    ttl: Duration,
) -> Result<Option<Lease>, LedgerError> {
    let path = lease_path(raw, etag);
    let lease = |put: PutResult| Lease {
        store: store.clone(),
        path: path.clone(),
        raw: raw.to_owned(),
        owner: owner.to_owned(),
        ttl,
        version: UpdateVersion {
            e_tag: put.e_tag,
            version: put.version,
        },
        lost: false,
    };
    let create = PutOptions::from(PutMode::Create);
    match store
        .put_opts(&path, lease_payload(owner, ttl), create)
        .await
    {
        Ok(put) => {
            crate::telemetry::lease(raw, "acquired");
            return Ok(Some(lease(put)));
        }
        Err(
            object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. },
        ) => {}
        Err(e) => return Err(store_err("creating", &path)(e)),
    }
    let got = match store.get(&path).await {
        Ok(g) => g,
        // Released between our create and get: the owner finished; its receipt decides.
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(store_err("reading", &path)(e)),
    };
    let version = UpdateVersion {
        e_tag: got.meta.e_tag.clone(),
        version: got.meta.version.clone(),
    };
    let bytes = got.bytes().await.map_err(store_err("reading", &path))?;
    // Expiry is the writer's wall clock + TTL, compared with ours: clock skew between watchers
    // shifts a take-over by the skew, which is small next to the TTL.
    let expired =
        serde_json::from_slice::<LeaseBody>(&bytes).map_or(true, |b| b.expires_at < Utc::now());
    if !expired {
        crate::telemetry::lease(raw, "busy");
        return Ok(None);
    }
    let update = PutOptions::from(PutMode::Update(version));
    match store
        .put_opts(&path, lease_payload(owner, ttl), update)
        .await
    {
        Ok(put) => {
            crate::telemetry::lease(raw, "taken_over");
            Ok(Some(lease(put)))
        }
        Err(object_store::Error::Precondition { .. } | object_store::Error::NotFound { .. }) => {
            crate::telemetry::lease(raw, "busy");
            Ok(None)
        }
        Err(e) => Err(store_err("taking over", &path)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;

    #[test]
    fn etags_compare_without_quotes() {
        assert_eq!(normalize_etag("\"0x8DB1\""), "0x8DB1");
        assert_eq!(normalize_etag("0x8DB1"), "0x8DB1");
        assert_eq!(normalize_etag("W/\"x\""), "x");
    }

    #[test]
    fn poison_paths_give_back_their_raw_name() {
        let raw = "t/2024/01/14/18/t+0+00000000000000000001.json.gz";
        assert_eq!(poisoned_raw_name(poison_path(raw).as_ref()), Some(raw));
        assert_eq!(poisoned_raw_name("_receipts/x.json"), None);
        assert_eq!(poisoned_raw_name("_poison/x.txt"), None);
    }

    #[test]
    fn lease_names_drop_etag_quotes() {
        let p = lease_path(
            "t/2024/01/14/18/t+0+00000000000000000001.json.gz",
            "\"0x8DB1\"",
        );
        assert_eq!(
            p.as_ref(),
            "_leases/t/2024/01/14/18/t+0+00000000000000000001.json.gz@0x8DB1"
        );
    }

    #[tokio::test]
    async fn one_live_claim_wins_and_an_expired_one_is_taken_over() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let a = claim(&store, "r", "e1", "a", Duration::from_secs(60))
            .await
            .expect("io");
        assert!(a.is_some());
        let b = claim(&store, "r", "e1", "b", Duration::from_secs(60))
            .await
            .expect("io");
        assert!(b.is_none(), "a live lease is not shared");
        // A claim with a zero TTL expires at once and can be taken over.
        let c = claim(&store, "r", "e2", "c", Duration::ZERO)
            .await
            .expect("io");
        assert!(c.is_some());
        let d = claim(&store, "r", "e2", "d", Duration::from_secs(60))
            .await
            .expect("io");
        assert!(d.is_some(), "expired lease taken over");
        a.expect("lease").release().await.expect("released");
        assert!(
            claim(&store, "r", "e1", "b", Duration::from_secs(60))
                .await
                .expect("io")
                .is_some()
        );
    }

    #[tokio::test]
    async fn a_renewal_after_a_take_over_is_lost_and_release_spares_the_takers_lease() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let mut a = claim(&store, "r", "e", "a", Duration::ZERO)
            .await
            .expect("io")
            .expect("claimed");
        assert!(
            a.renew().await.expect("io"),
            "renewed while nobody else wrote"
        );
        let b = claim(&store, "r", "e", "b", Duration::from_secs(60))
            .await
            .expect("io")
            .expect("a zero-TTL lease is taken over");
        assert!(!a.renew().await.expect("io"), "lost to b");
        assert!(a.is_lost());
        a.release().await.expect("release");
        let body = store.get(b.path()).await.expect("b's lease kept");
        let body: LeaseBody =
            serde_json::from_slice(&body.bytes().await.expect("bytes")).expect("lease JSON");
        assert_eq!(body.owner, "b");
    }
}
