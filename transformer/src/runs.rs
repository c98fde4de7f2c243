//! Replay: re-transform the raw blobs of a time range (`transformer backfill`, `POST /runs`).
//!
//! A blob is in range when its hour (the `yyyy/mm/dd/hh` of its name, the hour of its first
//! record) overlaps `[from, to)`. Receipts are ignored and rewritten afterwards. Over HTTP a run
//! is asynchronous: `POST /runs` answers `202 Accepted` with `Location: /runs/{id}`, and
//! `GET /runs/{id}` reports state, progress, counts and errors. Run state lives in the memory of
//! the process that accepted the run: another instance, or a restart, does not know it.
//!
//! The API is bounded ([`RunSettings`]): at most `RUNS_MAX_ACTIVE` runs queued or running (a
//! `POST` past it answers 429), at most `RUNS_MAX_RETAINED` runs kept (the oldest finished one
//! makes room), and a finished run is forgotten `RUNS_RETENTION_SECS` after it ended. With
//! `RUNS_TOKEN` set, every `/runs` call must send `Authorization: Bearer <token>` (401 otherwise).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, NaiveDateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use model::naming::RawBlobName;
use object_store::path::Path;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::RunSettings;
use crate::delta::Lakehouse;
use crate::process::{Delivery, Handoff, Stores, hand_over_or_receipt, process_blob_to};
use crate::telemetry;
use crate::transform::{Counts, TransformOptions};

/// What to replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRequest {
    /// Start (inclusive), RFC 3339.
    pub from: DateTime<Utc>,
    /// End (exclusive), RFC 3339.
    pub to: DateTime<Utc>,
    /// Only this topic.
    #[serde(default)]
    pub topic: Option<String>,
    /// Only raw names under this prefix.
    #[serde(default)]
    pub prefix: Option<String>,
}

/// Why a run could not start or list.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// `from` is not before `to`.
    #[error("`from` ({from}) must be before `to` ({to})")]
    EmptyRange {
        /// Start.
        from: DateTime<Utc>,
        /// End.
        to: DateTime<Utc>,
    },
    /// Listing the raw container failed.
    #[error("listing raw blobs under `{prefix}`: {source}")]
    List {
        /// The listed prefix.
        prefix: String,
        /// object_store's error.
        #[source]
        source: object_store::Error,
    },
    /// `RUNS_MAX_ACTIVE` runs are queued or running.
    #[error(
        "{active} runs are queued or running, the most RUNS_MAX_ACTIVE={max} allows: retry when one has finished (GET /runs/{{id}} shows its state), or raise RUNS_MAX_ACTIVE"
    )]
    TooManyActive {
        /// Runs queued or running.
        active: usize,
        /// `RUNS_MAX_ACTIVE`.
        max: usize,
    },
    /// `RUNS_MAX_RETAINED` runs are kept and none has finished, so none can make room.
    #[error(
        "{retained} runs are kept, the most RUNS_MAX_RETAINED={max} allows, and none has finished: retry when one has, or raise RUNS_MAX_RETAINED"
    )]
    TooManyRetained {
        /// Runs kept.
        retained: usize,
        /// `RUNS_MAX_RETAINED`.
        max: usize,
    },
}

impl RunError {
    /// Low-cardinality name for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            RunError::EmptyRange { .. } => "empty_range",
            RunError::List { .. } => "list_failed",
            RunError::TooManyActive { .. } => "too_many_active",
            RunError::TooManyRetained { .. } => "too_many_retained",
        }
    }
}

impl RunRequest {
    /// Checks the range.
    pub fn validate(&self) -> Result<(), RunError> {
        if self.from >= self.to {
            return Err(RunError::EmptyRange {
                from: self.from,
                to: self.to,
            });
        }
        Ok(())
    }

    fn list_prefix(&self) -> Option<String> {
        self.prefix
            .clone()
            .or_else(|| self.topic.as_ref().map(|t| format!("{t}/")))
    }

    /// Whether a raw blob name belongs to this run.
    pub fn selects(&self, name: &RawBlobName) -> bool {
        if self.topic.as_ref().is_some_and(|t| *t != name.topic) {
            return false;
        }
        let Ok(hour) =
            NaiveDateTime::parse_from_str(&format!("{}:00", name.hour_path), "%Y/%m/%d/%H:%M")
        else {
            return false;
        };
        let start = hour.and_utc();
        start < self.to && start + chrono::Duration::hours(1) > self.from
    }
}

/// The raw blob names a run covers, sorted.
pub async fn select_blobs(stores: &Stores, req: &RunRequest) -> Result<Vec<String>, RunError> {
    let prefix = req.list_prefix();
    let path = prefix.as_deref().map(Path::from);
    let mut names: Vec<String> = stores
        .raw
        .list(path.as_ref())
        .map_ok(|m| m.location.to_string())
        .try_filter(|n| {
            let keep = RawBlobName::parse(n).is_ok_and(|p| req.selects(&p))
                && prefix.as_deref().is_none_or(|p| n.starts_with(p));
            futures::future::ready(keep)
        })
        .try_collect()
        .await
        .map_err(|source| RunError::List {
            prefix: prefix.clone().unwrap_or_default(),
            source,
        })?;
    names.sort();
    Ok(names)
}

/// Lifecycle of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// Accepted, not started.
    Queued,
    /// Transforming.
    Running,
    /// Every selected blob was transformed.
    Succeeded,
    /// Listing failed, a blob failed, or the process shut down.
    Failed,
}

impl RunState {
    /// Succeeded or failed: the run holds no slot of `RUNS_MAX_ACTIVE` any more.
    pub fn is_finished(self) -> bool {
        matches!(self, RunState::Succeeded | RunState::Failed)
    }
}

/// `done` of `total` blobs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Progress {
    /// Blobs finished (transformed or failed).
    pub done: u64,
    /// Blobs selected.
    pub total: u64,
}

/// A run's state as `GET /runs/{id}` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct RunStatus {
    /// Run id.
    pub id: String,
    /// State.
    pub state: RunState,
    /// What was asked.
    pub request: RunRequest,
    /// Progress.
    pub progress: Progress,
    /// Blobs transformed.
    pub blobs_ok: u64,
    /// Blobs failed.
    pub blobs_failed: u64,
    /// Counts summed over transformed blobs.
    pub counts: Counts,
    /// `blob: error` per failure (and listing errors).
    pub errors: Vec<String>,
    /// When the run succeeded or failed; the registry's retention counts from here.
    #[serde(skip)]
    finished_at: Option<Instant>,
}

impl RunStatus {
    /// A queued run.
    pub fn new(id: String, request: RunRequest) -> Self {
        RunStatus {
            id,
            state: RunState::Queued,
            request,
            progress: Progress::default(),
            blobs_ok: 0,
            blobs_failed: 0,
            counts: Counts::default(),
            errors: Vec::new(),
            finished_at: None,
        }
    }

    /// Ends the run: `Failed` when anything went wrong, else `Succeeded`.
    fn finish(&mut self) {
        self.state = if self.errors.is_empty() {
            RunState::Succeeded
        } else {
            RunState::Failed
        };
        self.finished_at = Some(Instant::now());
    }
}

/// What a run needs.
#[derive(Debug, Clone)]
pub struct RunContext {
    /// The containers.
    pub stores: Stores,
    /// Transform knobs.
    pub transform: TransformOptions,
    /// Blobs at once.
    pub concurrency: usize,
    /// Owner id written into receipts.
    pub owner: String,
    /// Delta mode: the tables a run's staged blobs are committed to (every interval while it
    /// runs, and once at its end), and the interval.
    pub lakehouse: Option<(Arc<Lakehouse>, Duration)>,
}

/// Executes a run, updating `status` after every blob and calling `on_progress` with it.
pub async fn execute(
    ctx: &RunContext,
    status: &Mutex<RunStatus>,
    shutdown: &CancellationToken,
    on_progress: &(dyn Fn(&RunStatus) + Send + Sync),
) {
    let update = |f: &dyn Fn(&mut RunStatus)| {
        let mut s = status.lock().expect("run status lock");
        f(&mut s);
        on_progress(&s);
    };
    let req = status.lock().expect("run status lock").request.clone();
    update(&|s| s.state = RunState::Running);
    let names = match select_blobs(&ctx.stores, &req).await {
        Ok(n) => n,
        Err(e) => {
            update(&|s| {
                s.errors.push(e.to_string());
                s.finish();
            });
            return;
        }
    };
    update(&|s| s.progress.total = names.len() as u64);
    let stop_committing = CancellationToken::new();
    let committer = ctx.lakehouse.clone().map(|(lakehouse, every)| {
        tokio::spawn(crate::watch::commit_every(
            lakehouse,
            every,
            stop_committing.clone(),
        ))
    });
    let mut results = futures::stream::iter(names)
        .map(|name| async move {
            // Delta mode: staged files go to this run's committer in memory; their receipts
            // are written once committed.
            let committer = ctx.lakehouse.as_ref().map(|(l, _)| l.as_ref());
            let result = process_blob_to(
                &ctx.stores,
                &name,
                ctx.transform,
                "backfill",
                Delivery::Replay,
                Handoff::to(committer),
            )
            .await;
            let result = match result {
                Ok(p) => {
                    let etag = p.etag.clone().unwrap_or_default();
                    let standard = ctx.stores.standard.as_ref();
                    hand_over_or_receipt(standard, committer, p, etag, &ctx.owner)
                        .await
                        .map_err(|e| e.to_string())
                }
                Err(e) => Err(e.to_string()),
            };
            (name, result)
        })
        .buffer_unordered(ctx.concurrency.max(1));
    loop {
        let next = tokio::select! {
            _ = shutdown.cancelled() => {
                update(&|s| s.errors.push("cancelled by shutdown".to_owned()));
                break;
            }
            n = results.next() => n,
        };
        let Some((name, result)) = next else { break };
        update(&|s| {
            s.progress.done += 1;
            match &result {
                Ok(c) => {
                    s.blobs_ok += 1;
                    s.counts.add(c);
                }
                Err(e) => {
                    s.blobs_failed += 1;
                    s.errors.push(format!("{name}: {e}"));
                }
            }
        });
    }
    if let Some(committer) = committer {
        stop_committing.cancel();
        let _ = committer.await;
    }
    if let Some((lakehouse, _)) = &ctx.lakehouse {
        // The run's rows are committed before it reports success.
        if let Err(e) = lakehouse.commit_staged().await {
            telemetry::delta_round_failed(&e);
            update(&|s| {
                s.errors
                    .push(format!("committing to the Delta tables: {e}"))
            });
        }
    }
    update(&|s| s.finish());
}

/// The runs of this process, by id; at most `RUNS_MAX_RETAINED` of them.
#[derive(Debug, Default)]
struct Runs(HashMap<String, Arc<Mutex<RunStatus>>>);

impl Runs {
    /// `(id, state, finished_at)` of every run.
    fn states(&self) -> impl Iterator<Item = (&String, RunState, Option<Instant>)> {
        self.0.iter().map(|(id, s)| {
            let s = lock(s);
            (id, s.state, s.finished_at)
        })
    }

    fn active(&self) -> usize {
        self.states().filter(|(_, st, _)| !st.is_finished()).count()
    }

    /// Forgets the runs that finished `retention` or more before `now`.
    fn evict_expired(&mut self, now: Instant, retention: std::time::Duration) {
        let expired: Vec<String> = self
            .states()
            .filter(|(_, _, end)| end.is_some_and(|t| now >= t + retention))
            .map(|(id, _, _)| id.clone())
            .collect();
        for id in expired {
            self.0.remove(&id);
            crate::telemetry::run_evicted(&id, "expired");
        }
    }

    /// Forgets the run that finished first, to make room; false when none has finished.
    fn evict_oldest_finished(&mut self) -> bool {
        let oldest = self
            .states()
            .filter_map(|(id, _, end)| Some((end?, id)))
            .min()
            .map(|(_, id)| id.clone());
        let Some(id) = oldest else { return false };
        self.0.remove(&id);
        crate::telemetry::run_evicted(&id, "room");
        true
    }
}

/// A lock that survives a panic of its last holder: a run whose task panicked is still shown
/// (failed, see [`FailIfUnfinished`]) and the registry keeps serving the others.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Ends a run that its task left unfinished (a panic, or the runtime dropping the task), so it
/// never holds a `RUNS_MAX_ACTIVE` slot forever.
struct FailIfUnfinished(Arc<Mutex<RunStatus>>);

impl Drop for FailIfUnfinished {
    fn drop(&mut self) {
        let mut s = lock(&self.0);
        if !s.state.is_finished() {
            s.errors.push("run stopped before it finished".to_owned());
            s.finish();
        }
    }
}

/// Runs accepted over HTTP by this process, within the limits of [`RunSettings`].
#[derive(Debug, Clone)]
pub struct RunRegistry {
    ctx: RunContext,
    settings: Arc<RunSettings>,
    runs: Arc<Mutex<Runs>>,
    shutdown: CancellationToken,
}

impl RunRegistry {
    /// An empty registry bounded by `settings`; runs stop at `shutdown`.
    pub fn new(ctx: RunContext, settings: RunSettings, shutdown: CancellationToken) -> Self {
        RunRegistry {
            ctx,
            settings: Arc::new(settings),
            runs: Arc::default(),
            shutdown,
        }
    }

    /// `POST /runs` and `GET /runs/{id}`, both behind `RUNS_TOKEN` when it is set.
    pub fn router(self) -> Router {
        Router::new()
            .route("/runs", post(start_run))
            .route("/runs/{id}", get(run_status))
            .with_state(self)
    }

    /// Starts a run in the background and returns its id; refuses past `RUNS_MAX_ACTIVE` runs
    /// queued or running, or when `RUNS_MAX_RETAINED` runs are kept and none has finished.
    pub fn start(&self, req: RunRequest) -> Result<String, RunError> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let status = Arc::new(Mutex::new(RunStatus::new(id.clone(), req.clone())));
        {
            let mut runs = lock(&self.runs);
            runs.evict_expired(Instant::now(), self.settings.retention);
            let active = runs.active();
            if active >= self.settings.max_active {
                return Err(RunError::TooManyActive {
                    active,
                    max: self.settings.max_active,
                });
            }
            while runs.0.len() >= self.settings.max_retained {
                if !runs.evict_oldest_finished() {
                    return Err(RunError::TooManyRetained {
                        retained: runs.0.len(),
                        max: self.settings.max_retained,
                    });
                }
            }
            runs.0.insert(id.clone(), status.clone());
        }
        let ctx = self.ctx.clone();
        let shutdown = self.shutdown.clone();
        tracing::info!(event = "run_accepted", run = %id, from = %req.from, to = %req.to, topic = ?req.topic, prefix = ?req.prefix);
        let run_id = id.clone();
        tokio::spawn(async move {
            let _unfinished = FailIfUnfinished(status.clone());
            execute(&ctx, &status, &shutdown, &|_| {}).await;
            let s = status.lock().expect("run status lock");
            tracing::info!(event = "run_finished", run = %run_id, state = ?s.state, blobs_ok = s.blobs_ok, blobs_failed = s.blobs_failed);
        });
        Ok(id)
    }

    /// A run's status; `None` for an unknown run or one finished longer than the retention ago.
    pub fn status(&self, id: &str) -> Option<RunStatus> {
        let mut runs = lock(&self.runs);
        runs.evict_expired(Instant::now(), self.settings.retention);
        runs.0.get(id).map(|s| lock(s).clone())
    }

    /// Runs kept in memory (active and finished within the retention).
    pub fn retained(&self) -> usize {
        let mut runs = lock(&self.runs);
        runs.evict_expired(Instant::now(), self.settings.retention);
        runs.0.len()
    }

    /// The 401 answer, unless no `RUNS_TOKEN` is set or the request carries it as a bearer
    /// token (compared in constant time).
    fn deny(&self, headers: &HeaderMap) -> Option<Response> {
        let token = self.settings.token.as_ref()?;
        let presented = headers
            .get(header::AUTHORIZATION)
            .map(|v| v.as_bytes())
            .and_then(|v| {
                let (scheme, rest) = v.split_at(v.iter().position(|b| *b == b' ')?);
                scheme
                    .eq_ignore_ascii_case(b"bearer")
                    .then(|| rest.trim_ascii())
            });
        let (reason, error) = match presented {
            Some(p) if token.matches(p) => return None,
            Some(_) => (
                "wrong_token",
                "wrong bearer token: send the value of RUNS_TOKEN as `Authorization: Bearer <token>`",
            ),
            None => (
                "missing_token",
                "/runs needs `Authorization: Bearer <token>` with the value of RUNS_TOKEN",
            ),
        };
        crate::telemetry::run_request_rejected(reason);
        Some(
            (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer realm=\"runs\"")],
                Json(serde_json::json!({"error": error})),
            )
                .into_response(),
        )
    }
}

async fn start_run(
    State(reg): State<RunRegistry>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Some(denied) = reg.deny(&headers) {
        return denied;
    }
    let req: RunRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return bad_request(format!(
                "body is not a run request ({{\"from\", \"to\", \"topic\", \"prefix\"}}): {e}"
            ));
        }
    };
    if let Err(e) = req.validate() {
        return bad_request(e.to_string());
    }
    let id = match reg.start(req) {
        Ok(id) => id,
        Err(e) => {
            crate::telemetry::run_request_rejected(e.kind());
            return (
                StatusCode::TOO_MANY_REQUESTS,
                Json(serde_json::json!({"error": e.to_string()})),
            )
                .into_response();
        }
    };
    let body = serde_json::json!({"id": id, "state": RunState::Queued});
    (
        StatusCode::ACCEPTED,
        [(header::LOCATION, format!("/runs/{id}"))],
        Json(body),
    )
        .into_response()
}

async fn run_status(
    State(reg): State<RunRegistry>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
) -> Response {
    if let Some(denied) = reg.deny(&headers) {
        return denied;
    }
    match reg.status(&id) {
        Some(s) => Json(s).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(serde_json::json!({"error": format!(
                "no run {id} in this process (finished runs are kept RUNS_RETENTION_SECS={}s)",
                reg.settings.retention.as_secs()
            )})),
        )
            .into_response(),
    }
}

fn bad_request(error: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(serde_json::json!({"error": error})),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use object_store::memory::InMemory;

    use super::*;
    use crate::transform::TransformOptions;

    /// A registry over empty in-memory containers: its runs select nothing and succeed at once.
    fn registry(max_active: usize, max_retained: usize, retention: Duration) -> RunRegistry {
        let store: Arc<dyn object_store::ObjectStore> = Arc::new(InMemory::new());
        let ctx = RunContext {
            stores: Stores {
                raw: store.clone(),
                standard: store,
            },
            transform: TransformOptions::default(),
            concurrency: 1,
            owner: "test".into(),
            lakehouse: None,
        };
        let settings = RunSettings {
            max_active,
            max_retained,
            retention,
            token: None,
        };
        RunRegistry::new(ctx, settings, CancellationToken::new())
    }

    fn a_day() -> RunRequest {
        req("2024-01-14T00:00:00Z", "2024-01-15T00:00:00Z", None)
    }

    /// Lets the spawned runs run to their end (no timer involved, so paused time stands still).
    async fn settle(reg: &RunRegistry, ids: &[&str]) {
        for _ in 0..1000 {
            let done = ids
                .iter()
                .all(|id| reg.status(id).is_some_and(|s| s.state.is_finished()));
            if done {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("runs {ids:?} did not finish");
    }

    #[tokio::test(start_paused = true)]
    async fn a_run_past_max_active_is_refused_until_one_finishes() {
        let reg = registry(2, 100, Duration::from_secs(3600));
        let first = reg.start(a_day()).expect("1st");
        let second = reg.start(a_day()).expect("2nd");
        // Nothing has yielded yet: on this single-threaded runtime both are still queued.
        let err = reg
            .start(a_day())
            .expect_err("3rd run past RUNS_MAX_ACTIVE=2");
        assert!(
            err.to_string().starts_with(
                "2 runs are queued or running, the most RUNS_MAX_ACTIVE=2 allows: retry when one has finished"
            ),
            "{err}"
        );
        assert_eq!(err.kind(), "too_many_active");
        assert_eq!(reg.retained(), 2, "the refused run is not kept");
        settle(&reg, &[&first, &second]).await;
        reg.start(a_day()).expect("finished runs free their slots");
    }

    #[tokio::test(start_paused = true)]
    async fn a_finished_run_is_forgotten_after_the_retention() {
        let reg = registry(2, 100, Duration::from_secs(60));
        let id = reg.start(a_day()).expect("accepted");
        settle(&reg, &[&id]).await;
        tokio::time::advance(Duration::from_secs(59)).await;
        assert_eq!(
            reg.status(&id).map(|s| s.state),
            Some(RunState::Succeeded),
            "readable within the retention"
        );
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(reg.status(&id).is_none(), "forgotten once it has passed");
        assert_eq!(reg.retained(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn the_oldest_finished_run_makes_room_when_max_retained_runs_are_kept() {
        let reg = registry(1, 2, Duration::from_secs(3600));
        let first = reg.start(a_day()).expect("1st");
        settle(&reg, &[&first]).await;
        tokio::time::advance(Duration::from_secs(1)).await;
        let second = reg.start(a_day()).expect("2nd");
        settle(&reg, &[&second]).await;
        let third = reg
            .start(a_day())
            .expect("3rd, in place of the oldest finished run");
        assert!(
            reg.status(&first).is_none(),
            "the oldest finished run made room"
        );
        assert!(reg.status(&second).is_some());
        assert!(reg.status(&third).is_some());
        assert_eq!(reg.retained(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_registry_of_unfinished_runs_refuses_a_new_one() {
        // Settings validation keeps RUNS_MAX_RETAINED ≥ RUNS_MAX_ACTIVE; the registry still
        // never grows past RUNS_MAX_RETAINED if given less.
        let reg = registry(3, 2, Duration::from_secs(3600));
        reg.start(a_day()).expect("1st");
        reg.start(a_day()).expect("2nd");
        let err = reg.start(a_day()).expect_err("no finished run to evict");
        assert!(
            err.to_string()
                .starts_with("2 runs are kept, the most RUNS_MAX_RETAINED=2 allows"),
            "{err}"
        );
        assert_eq!(reg.retained(), 2);
    }

    fn req(from: &str, to: &str, topic: Option<&str>) -> RunRequest {
        RunRequest {
            from: from.parse().expect("from"),
            to: to.parse().expect("to"),
            topic: topic.map(str::to_owned),
            prefix: None,
        }
    }

    fn name(s: &str) -> RawBlobName {
        RawBlobName::parse(s).expect("raw name")
    }

    #[test]
    fn selects_blobs_whose_hour_overlaps_the_range() {
        let r = req("2024-01-14T18:30:00Z", "2024-01-14T20:00:00Z", None);
        let at = |h: &str| {
            name(&format!(
                "t/2024/01/14/{h}/t+0+00000000000000000001.json.gz"
            ))
        };
        assert!(r.selects(&at("18")), "18:00-19:00 overlaps 18:30");
        assert!(r.selects(&at("19")));
        assert!(!r.selects(&at("20")), "`to` is exclusive");
        assert!(!r.selects(&at("17")));
        let g = req(
            "2024-01-14T00:00:00Z",
            "2024-01-15T00:00:00Z",
            Some("lib.server.game"),
        );
        assert!(!g.selects(&at("18")), "other topic");
    }

    #[test]
    fn an_empty_range_is_rejected() {
        let r = req("2024-01-14T18:00:00Z", "2024-01-14T18:00:00Z", None);
        assert!(
            r.validate()
                .expect_err("empty")
                .to_string()
                .starts_with("`from`")
        );
    }
}
