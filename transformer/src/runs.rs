//! Replay: re-transform the raw blobs of a time range (`transformer backfill`, `POST /runs`).
//!
//! A blob is in range when its hour (the `yyyy/mm/dd/hh` of its name, the hour of its first
//! record) overlaps `[from, to)`. Receipts are ignored and rewritten afterwards. Over HTTP a run
//! is asynchronous: `POST /runs` answers `202 Accepted` with `Location: /runs/{id}`, and
//! `GET /runs/{id}` reports state, progress, counts and errors. Run state lives in the memory of
//! the process that accepted the run: another instance, or a restart, does not know it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path as UrlPath, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, NaiveDateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use model::naming::RawBlobName;
use object_store::path::Path;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::ledger;
use crate::process::{Stores, process_blob};
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
        }
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
                s.state = RunState::Failed;
            });
            return;
        }
    };
    update(&|s| s.progress.total = names.len() as u64);
    let mut results = futures::stream::iter(names)
        .map(|name| async move {
            let result = process_blob(&ctx.stores, &name, ctx.transform, "backfill").await;
            let result = match result {
                Ok(p) => {
                    let etag = p.etag.clone().unwrap_or_default();
                    ledger::write_receipt(
                        ctx.stores.standard.as_ref(),
                        &name,
                        &etag,
                        &ctx.owner,
                        &p.counts,
                    )
                    .await
                    .map(|()| p.counts)
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
    update(&|s| {
        s.state = if s.errors.is_empty() {
            RunState::Succeeded
        } else {
            RunState::Failed
        };
    });
}

/// Runs accepted over HTTP by this process.
#[derive(Debug, Clone)]
pub struct RunRegistry {
    ctx: RunContext,
    runs: Arc<Mutex<HashMap<String, Arc<Mutex<RunStatus>>>>>,
    shutdown: CancellationToken,
}

impl RunRegistry {
    /// An empty registry; runs stop at `shutdown`.
    pub fn new(ctx: RunContext, shutdown: CancellationToken) -> Self {
        RunRegistry {
            ctx,
            runs: Arc::default(),
            shutdown,
        }
    }

    /// `POST /runs` and `GET /runs/{id}`.
    pub fn router(self) -> Router {
        Router::new()
            .route("/runs", post(start_run))
            .route("/runs/{id}", get(run_status))
            .with_state(self)
    }

    /// Starts a run in the background and returns its id.
    pub fn start(&self, req: RunRequest) -> String {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let status = Arc::new(Mutex::new(RunStatus::new(id.clone(), req.clone())));
        self.runs
            .lock()
            .expect("runs lock")
            .insert(id.clone(), status.clone());
        let ctx = self.ctx.clone();
        let shutdown = self.shutdown.clone();
        tracing::info!(event = "run_accepted", run = %id, from = %req.from, to = %req.to, topic = ?req.topic, prefix = ?req.prefix);
        let run_id = id.clone();
        tokio::spawn(async move {
            execute(&ctx, &status, &shutdown, &|_| {}).await;
            let s = status.lock().expect("run status lock");
            tracing::info!(event = "run_finished", run = %run_id, state = ?s.state, blobs_ok = s.blobs_ok, blobs_failed = s.blobs_failed);
        });
        id
    }

    /// A run's status.
    pub fn status(&self, id: &str) -> Option<RunStatus> {
        let runs = self.runs.lock().expect("runs lock");
        runs.get(id)
            .map(|s| s.lock().expect("run status lock").clone())
    }
}

async fn start_run(State(reg): State<RunRegistry>, body: axum::body::Bytes) -> Response {
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
    let id = reg.start(req);
    let body = serde_json::json!({"id": id, "state": RunState::Queued});
    (
        StatusCode::ACCEPTED,
        [(header::LOCATION, format!("/runs/{id}"))],
        Json(body),
    )
        .into_response()
}

async fn run_status(State(reg): State<RunRegistry>, UrlPath(id): UrlPath<String>) -> Response {
    match reg.status(&id) {
        Some(s) => Json(s).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(serde_json::json!({"error": format!("no run {id} in this process")})),
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
    use super::*;

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
