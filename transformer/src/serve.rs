//! `transformer serve`: the Azure Functions custom handler.
//!
//! The host POSTs `/{FunctionName}` (our function is `transform`) with `{"Data": {…}, "Metadata":
//! {…}}`. Two trigger shapes name the raw blob:
//!
//! - **Event Grid** (`transform/function.json`: an `eventGridTrigger` named `event`): `Data.event`
//!   is the `Microsoft.Storage.BlobCreated` event, as an object or as its JSON text (the host
//!   serialises a string trigger value once more, so up to two layers are unwrapped), and
//!   `Metadata.data` is the event's `data` again. The name is the `subject` after
//!   `/blobServices/default/containers/{raw}/blobs/`, else the percent-decoded `data.url` path
//!   after `/{raw}/`. Other event types and other containers are answered 200 and ignored.
//! - **Blob trigger** (the previous `function.json`, still understood): `Metadata.name`, else the
//!   percent-decoded `Metadata.Uri` path after `/{raw}/`. `Data.triggerBlob` (the blob, base64)
//!   is never decoded.
//!
//! `{raw}` is the container of `RAW_URL` ([`ServeOptions`]). Either way the blob is read once, from
//! storage, streaming ([`process_blob`]). Answers: `200 {"Outputs": {}, "Logs": [...],
//! "ReturnValue": {...}}` when the blob was transformed (bad records included), is not a raw blob
//! name (poisoned visibly: nothing to retry) or the event is ignored; `400` when the payload names
//! no blob; `500` on a storage or transform failure and `503` when every transform slot stayed busy
//! for [`ServeOptions::slot_wait`], so that the invocation fails and is delivered again.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use model::naming::RawBlobName;
use serde_json::{Map, Value, json};
use tokio::sync::Semaphore;

use crate::delta::Lakehouse;
use crate::ledger;
use crate::maintenance::Maintenance;
use crate::process::{ProcessError, Stores, process_blob};
use crate::telemetry;
use crate::transform::TransformOptions;

/// Largest request accepted: 1 MiB. An Event Grid invocation is a few KB (a BlobCreated event is
/// about 1 KB and the host sends its `data` twice); Event Grid itself caps an event at 1 MB. The
/// blob trigger's shape, which carries the whole blob base64, fits only for blobs under ~700 KB.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// The one event type that asks for a transform.
pub const BLOB_CREATED: &str = "Microsoft.Storage.BlobCreated";

/// Transforms at once per process unless configured (`WATCH_CONCURRENCY`, default 4).
pub const DEFAULT_MAX_CONCURRENT: usize = 4;

/// How long an invocation waits for a transform slot before answering 503. Event Grid waits 30 s
/// for an answer before it delivers again; the transform needs the rest.
pub const SLOT_WAIT: Duration = Duration::from_secs(10);

/// Invocations answered without a transform, by `why` (`ignored` event, `busy` slots).
pub const SKIPPED: &str = "transformer_serve_skipped_total";

const SUBJECT_PREFIX: &str = "/blobServices/default/containers/";

/// What the handler needs.
#[derive(Debug, Clone)]
pub struct Handler {
    /// The containers.
    pub stores: Stores,
    /// Transform knobs.
    pub transform: TransformOptions,
    /// Owner id written into receipts.
    pub owner: String,
}

/// Which container events must name, and how many transforms run at once.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Name of the raw container: events for others are ignored, URIs are cut after it.
    pub raw_container: String,
    /// Transforms at once in this process (one Functions instance); at least 1.
    pub max_concurrent: usize,
    /// Wait for a free transform slot before answering 503.
    pub slot_wait: Duration,
    /// Delta mode: the tables the timer function `commit` ([`COMMIT_FUNCTION`]) commits staged
    /// blobs to.
    pub lakehouse: Option<Arc<Lakehouse>>,
    /// Delta mode: what the timer functions `compact` and `vacuum` do.
    pub maintenance: Maintenance,
}

/// The timer-triggered function that commits staged blobs (`function/commit/function.json`).
pub const COMMIT_FUNCTION: &str = "commit";
/// The timer-triggered function that compacts closed partitions (`function/compact/`).
pub const COMPACT_FUNCTION: &str = "compact";
/// The timer-triggered function that vacuums the tables (`function/vacuum/`).
pub const VACUUM_FUNCTION: &str = "vacuum";

impl PartialEq for ServeOptions {
    fn eq(&self, o: &Self) -> bool {
        let same_lakehouse = match (&self.lakehouse, &o.lakehouse) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (a, b) => a.is_none() && b.is_none(),
        };
        self.raw_container == o.raw_container
            && self.max_concurrent == o.max_concurrent
            && self.slot_wait == o.slot_wait
            && same_lakehouse
            && self.maintenance == o.maintenance
    }
}

impl Eq for ServeOptions {}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            raw_container: model::RAW_CONTAINER.to_owned(),
            max_concurrent: DEFAULT_MAX_CONCURRENT,
            slot_wait: SLOT_WAIT,
            lakehouse: None,
            maintenance: Maintenance::default(),
        }
    }
}

impl ServeOptions {
    /// The container of `raw_url` ([`raw_container_of`]; `raw` for a URL without one, such as
    /// `file://` or `memory://`) and `max_concurrent` transforms at once.
    pub fn new(raw_url: &str, max_concurrent: usize) -> Self {
        ServeOptions {
            raw_container: raw_container_of(raw_url)
                .unwrap_or_else(|| model::RAW_CONTAINER.to_owned()),
            max_concurrent: max_concurrent.max(1),
            slot_wait: SLOT_WAIT,
            lakehouse: None,
            maintenance: Maintenance::default(),
        }
    }

    /// The timer functions `compact` and `vacuum` run with `m`.
    pub fn with_maintenance(mut self, m: Maintenance) -> Self {
        self.maintenance = m;
        self
    }

    /// Commits to `lakehouse` when the timer function `commit` is invoked (delta mode).
    pub fn with_lakehouse(mut self, lakehouse: Arc<Lakehouse>) -> Self {
        self.lakehouse = Some(lakehouse);
        self
    }
}

/// The container a storage URL names: `az://C`, `azure://C`, `adl://C`, `abfs[s]://C` or
/// `abfs[s]://C@ACCOUNT.dfs.core.windows.net/`, `https://ACCOUNT.{blob,dfs}.core.windows.net/C`
/// (object_store's forms). `None` for other URLs.
pub fn raw_container_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let container = match scheme {
        "az" | "azure" | "adl" | "abfs" | "abfss" => {
            authority.split_once('@').map_or(authority, |(c, _)| c)
        }
        "https"
            if authority.ends_with(".core.windows.net")
                || authority.ends_with(".fabric.microsoft.com") =>
        {
            path.split('/').next().unwrap_or_default()
        }
        _ => return None,
    };
    (!container.is_empty()).then(|| container.to_owned())
}

/// What an invocation asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Transform this raw blob (its name inside the raw container).
    Blob(String),
    /// Nothing to do, and why: not a BlobCreated event, or a blob in another container.
    Ignore(String),
}

/// Reads an invocation (module docs): the raw blob it names or why it is ignored; `Err` with the
/// reason when it names no blob.
pub fn target(payload: &[u8], raw_container: &str) -> Result<Target, String> {
    let inv: Value = serde_json::from_slice(payload)
        .map_err(|e| format!("request is not a Functions invocation (Data/Metadata JSON): {e}"))?;
    let metadata = inv.get("Metadata");
    let data = inv.get("Data").and_then(Value::as_object);
    if let Some(event) = data.into_iter().flat_map(Map::values).find_map(event_of) {
        return event_target(&event, raw_container);
    }
    // The host passes the event's `data` as binding data too: enough if Data held no event.
    if let Some(d) = metadata
        .and_then(|m| m.get("data"))
        .filter(|d| d.get("url").is_some())
    {
        return event_target(&json!({ "data": d }), raw_container);
    }
    blob_trigger_target(metadata, raw_container)
}

/// `value` as an Event Grid (or CloudEvents) event object, unwrapping JSON text up to twice.
fn event_of(value: &Value) -> Option<Value> {
    let mut unwrapped: Option<Value> = None;
    for _ in 0..3 {
        let v = unwrapped.as_ref().unwrap_or(value);
        let next = match v {
            Value::Object(m) => return is_event(m).then(|| v.clone()),
            Value::String(text) => serde_json::from_str::<Value>(text).ok()?,
            Value::Array(events) if events.len() == 1 => events[0].clone(),
            _ => return None,
        };
        unwrapped = Some(next);
    }
    None
}

fn is_event(m: &Map<String, Value>) -> bool {
    m.contains_key("subject")
        || m.contains_key("eventType")
        || (m.contains_key("type") && m.contains_key("source"))
        || m.get("data").and_then(|d| d.get("url")).is_some()
}

fn event_target(event: &Value, raw: &str) -> Result<Target, String> {
    let kind = event
        .get("eventType")
        .or_else(|| event.get("type"))
        .and_then(Value::as_str);
    if let Some(kind) = kind
        && kind != BLOB_CREATED
    {
        return Ok(Target::Ignore(format!(
            "event type {kind} is not {BLOB_CREATED}"
        )));
    }
    let subject = event.get("subject").and_then(Value::as_str);
    if let Some((container, name)) = subject
        .and_then(|s| s.strip_prefix(SUBJECT_PREFIX))
        .and_then(|rest| rest.split_once("/blobs/"))
    {
        if container != raw {
            return Ok(Target::Ignore(format!(
                "blob {name} is in container {container}, not in the raw container {raw}"
            )));
        }
        if name.is_empty() {
            return Err(format!(
                "event subject `{}` names no blob",
                subject.unwrap_or_default()
            ));
        }
        return Ok(Target::Blob(name.to_owned()));
    }
    match event.pointer("/data/url").and_then(Value::as_str) {
        Some(url) => match name_in_url(url, raw) {
            Some(name) => name.map(Target::Blob),
            None => Ok(Target::Ignore(format!(
                "data.url {url} is not in the raw container {raw}"
            ))),
        },
        None => Err(format!(
            "the event has neither a blob `subject` ({SUBJECT_PREFIX}{{container}}/blobs/{{name}}) nor `data.url`"
        )),
    }
}

fn blob_trigger_target(metadata: Option<&Value>, raw: &str) -> Result<Target, String> {
    let field = |key: &str| metadata.and_then(|m| m.get(key)).and_then(Value::as_str);
    if let Some(name) = field("name").filter(|n| !n.is_empty()) {
        return Ok(Target::Blob(name.to_owned()));
    }
    let uri = field("Uri").ok_or(
        "neither an Event Grid event (Data.<binding> with `subject` or `data.url`) nor a blob \
         trigger's Metadata.name or Metadata.Uri",
    )?;
    name_in_url(uri, raw)
        .unwrap_or_else(|| Err(format!("Metadata.Uri `{uri}` has no `/{raw}/` segment")))
        .map(Target::Blob)
}

/// The percent-decoded blob name of a blob URL in `container`: the path after the container,
/// which is the first segment on Azure (`https://ACCOUNT.blob.core.windows.net/C/…`) and may be
/// the second elsewhere (path-style `http://HOST:PORT/ACCOUNT/C/…`, Azurite). `None` when the URL
/// is in another container.
fn name_in_url(url: &str, container: &str) -> Option<Result<String, String>> {
    let path = url.split(['?', '#']).next().unwrap_or_default();
    let path = path.split_once("://").map_or(path, |(_, rest)| rest);
    let (host, path) = path.split_once('/')?;
    let azure = host.ends_with(".core.windows.net") || host.ends_with(".fabric.microsoft.com");
    let rest = match path.split_once('/') {
        Some((c, rest)) if c == container => rest,
        Some((_, after)) if !azure => match after.split_once('/') {
            Some((c, rest)) if c == container => rest,
            _ => return None,
        },
        _ => return None,
    };
    if rest.is_empty() {
        return Some(Err(format!("`{url}` names no blob")));
    }
    Some(percent_decode(rest).ok_or_else(|| format!("`{url}` is not valid percent-encoding")))
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The router's state: the handler, its options and the transform slots.
struct Serve {
    handler: Handler,
    options: ServeOptions,
    slots: Semaphore,
}

impl Handler {
    /// `POST /{function}` with the default [`ServeOptions`] (container `raw`); the binary
    /// passes its validated settings to [`Handler::router_with`].
    pub fn router(self) -> Router {
        self.router_with(ServeOptions::default())
    }

    /// `POST /{function}` for `options`; bodies over [`BODY_LIMIT`] are refused (413).
    pub fn router_with(self, options: ServeOptions) -> Router {
        let slots = Semaphore::new(options.max_concurrent.max(1));
        Router::new()
            .route(&format!("/{COMMIT_FUNCTION}"), post(commit))
            .route(&format!("/{COMPACT_FUNCTION}"), post(compact))
            .route(&format!("/{VACUUM_FUNCTION}"), post(vacuum))
            .route("/{function}", post(invoke))
            .layer(DefaultBodyLimit::max(BODY_LIMIT))
            .with_state(Arc::new(Serve {
                handler: self,
                options,
                slots,
            }))
    }
}

fn answer(status: StatusCode, logs: Vec<String>, value: Value) -> Response {
    (
        status,
        Json(json!({"Outputs": {}, "Logs": logs, "ReturnValue": value})),
    )
        .into_response()
}

/// An invocation answered 200 without a transform (an event for another type or container).
fn invocation_ignored(function: &str, why: &str) {
    tracing::info!(event = "invocation_ignored", function, reason = why);
    metrics::counter!(SKIPPED, "why" => "ignored").increment(1);
}

/// An invocation answered 503: every transform slot stayed busy.
fn invocation_busy(blob: &str, slots: usize) {
    tracing::warn!(event = "invocation_busy", blob, slots);
    metrics::counter!(SKIPPED, "why" => "busy").increment(1);
}

/// The timer function: one committer round. 200 with the round's summary; 500 when it failed
/// (the manifests stay, the next tick redoes it).
async fn commit(State(s): State<Arc<Serve>>) -> Response {
    let Some(lakehouse) = &s.options.lakehouse else {
        invocation_ignored(
            COMMIT_FUNCTION,
            "STANDARD_FORMAT is parquet: nothing is staged",
        );
        return answer(
            StatusCode::OK,
            vec!["ignored: STANDARD_FORMAT is parquet".to_owned()],
            json!({"ignored": "parquet"}),
        );
    };
    match lakehouse.commit_staged().await {
        Ok(round) => answer(
            StatusCode::OK,
            vec![format!(
                "committed {} blob(s) in {} commit(s), {} conflict(s) retried",
                round.blobs, round.commits, round.conflicts
            )],
            json!(round),
        ),
        Err(e) => {
            telemetry::delta_round_failed(&e);
            let msg = e.to_string();
            answer(
                StatusCode::INTERNAL_SERVER_ERROR,
                vec![msg.clone()],
                json!({"error": msg}),
            )
        }
    }
}

/// The parquet-mode answer of the Delta timer functions.
fn no_tables(function: &str) -> Response {
    invocation_ignored(
        function,
        "STANDARD_FORMAT is parquet: there are no Delta tables",
    );
    answer(
        StatusCode::OK,
        vec!["ignored: STANDARD_FORMAT is parquet".to_owned()],
        json!({"ignored": "parquet"}),
    )
}

/// A maintenance pass's answer: 200 with what it did, 500 with the error (the next tick retries).
fn maintenance_answer<T: serde::Serialize, E: std::fmt::Display>(
    task: &'static str,
    done: Result<Vec<T>, E>,
) -> Response {
    match done {
        Ok(done) => answer(
            StatusCode::OK,
            vec![format!("{task}: {} item(s)", done.len())],
            json!(done),
        ),
        Err(e) => {
            telemetry::delta_maintenance_failed(task, &e);
            let msg = e.to_string();
            answer(
                StatusCode::INTERNAL_SERVER_ERROR,
                vec![msg.clone()],
                json!({"error": msg}),
            )
        }
    }
}

/// The timer function `compact`: one compaction pass over every closed partition.
async fn compact(State(s): State<Arc<Serve>>) -> Response {
    let Some(lakehouse) = &s.options.lakehouse else {
        return no_tables(COMPACT_FUNCTION);
    };
    let opts = s
        .options
        .maintenance
        .compact_all(s.handler.transform.compression);
    maintenance_answer(
        COMPACT_FUNCTION,
        crate::maintenance::compact_once(lakehouse, &opts).await,
    )
}

/// The timer function `vacuum`: one vacuum pass at `VACUUM_RETENTION_HOURS`.
async fn vacuum(State(s): State<Arc<Serve>>) -> Response {
    let Some(lakehouse) = &s.options.lakehouse else {
        return no_tables(VACUUM_FUNCTION);
    };
    maintenance_answer(
        VACUUM_FUNCTION,
        crate::maintenance::vacuum_once(lakehouse, &s.options.maintenance).await,
    )
}

async fn invoke(
    State(s): State<Arc<Serve>>,
    UrlPath(function): UrlPath<String>,
    body: axum::body::Bytes,
) -> Response {
    let h = &s.handler;
    let name = match target(&body, &s.options.raw_container) {
        Ok(Target::Blob(name)) => name,
        Ok(Target::Ignore(why)) => {
            invocation_ignored(&function, &why);
            return answer(
                StatusCode::OK,
                vec![format!("ignored: {why}")],
                json!({"ignored": why}),
            );
        }
        Err(e) => {
            return answer(
                StatusCode::BAD_REQUEST,
                vec![e.clone()],
                json!({"error": e}),
            );
        }
    };
    if let Err(e) = RawBlobName::parse(&name) {
        // Every name a worker writes parses; anything else in `raw` is kept visible as a poison
        // entry with its reason (a retry cannot help, so the answer is still 200).
        let msg = e.to_string();
        let etag = match h
            .stores
            .raw
            .head(&object_store::path::Path::from(name.as_str()))
            .await
        {
            Ok(meta) => meta.e_tag.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if let Err(err) =
            ledger::write_poison(h.stores.standard.as_ref(), &name, &etag, 0, &msg, &h.owner).await
        {
            return answer(
                StatusCode::INTERNAL_SERVER_ERROR,
                vec![err.to_string()],
                json!({"blob": name, "error": err.to_string()}),
            );
        }
        return answer(
            StatusCode::OK,
            vec![msg.clone()],
            json!({"blob": name, "poisoned": msg}),
        );
    }
    // Memory is bounded per transform, not per request: at most `max_concurrent` run here.
    let _slot = match tokio::time::timeout(s.options.slot_wait, s.slots.acquire()).await {
        Ok(Ok(permit)) => permit,
        Ok(Err(_)) | Err(_) => {
            invocation_busy(&name, s.options.max_concurrent);
            let msg = format!(
                "{name}: all {} transform slots stayed busy for {} s; deliver again later",
                s.options.max_concurrent,
                s.options.slot_wait.as_secs()
            );
            return answer(
                StatusCode::SERVICE_UNAVAILABLE,
                vec![msg.clone()],
                json!({"blob": name, "error": msg, "kind": "busy"}),
            );
        }
    };
    tracing::debug!(event = "invocation", function, blob = %name);
    match process_blob(&h.stores, &name, h.transform, "serve").await {
        Ok(p) => {
            if let Some(etag) = &p.etag
                && let Err(e) = ledger::write_receipt(
                    h.stores.standard.as_ref(),
                    &name,
                    etag,
                    &h.owner,
                    &p.counts,
                )
                .await
            {
                let msg = e.to_string();
                return answer(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    vec![msg.clone()],
                    json!({"error": msg}),
                );
            }
            let log = format!(
                "transformed {name}: {} records, {} good, {} dead letters in {} ms",
                p.counts.records,
                p.counts.good,
                p.counts.dead_letters(),
                p.duration.as_millis()
            );
            let summary = json!({
                "blob": p.blob,
                "etl_id": p.etl_id,
                "counts": p.counts,
                "outputs": p.outputs,
                "duration_ms": p.duration.as_millis() as u64,
            });
            answer(StatusCode::OK, vec![log], summary)
        }
        Err(e) => {
            let msg = e.to_string();
            let kind = ProcessError::kind(&e);
            answer(
                StatusCode::INTERNAL_SERVER_ERROR,
                vec![msg.clone()],
                json!({"error": msg, "kind": kind}),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAME: &str =
        "lib.server.game/2024/01/14/18/lib.server.game+3+00000000000000000042.json.gz";

    fn blob(name: &str) -> Result<Target, String> {
        Ok(Target::Blob(name.to_owned()))
    }

    fn event(container: &str, event_type: &str) -> Value {
        json!({
            "topic": "/subscriptions/s/resourceGroups/g/providers/Microsoft.Storage/storageAccounts/acct",
            "subject": format!("{SUBJECT_PREFIX}{container}/blobs/{NAME}"),
            "eventType": event_type,
            "id": "e1",
            "data": {"api": "PutBlockList", "url": format!("https://acct.blob.core.windows.net/{container}/{}", NAME.replace('+', "%2B"))},
            "dataVersion": "",
            "metadataVersion": "1"
        })
    }

    fn call(data: Value, metadata: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({"Data": data, "Metadata": metadata})).expect("JSON")
    }

    #[test]
    fn a_blob_created_event_names_its_blob_as_object_or_json_text() {
        let ev = event("raw", BLOB_CREATED);
        let text = serde_json::to_string_pretty(&ev).expect("text");
        let twice = serde_json::to_string(&text).expect("text of text");
        for data in [
            json!({"event": ev}),
            json!({"event": text}),
            json!({"event": twice}),
            json!({"event": [ev]}),
        ] {
            let payload = call(data.clone(), json!({"data": ev["data"]}));
            assert_eq!(target(&payload, "raw"), blob(NAME), "{data}");
        }
        let cloud = json!({"specversion": "1.0", "type": BLOB_CREATED, "source": "/subscriptions/s", "subject": ev["subject"], "data": ev["data"]});
        assert_eq!(
            target(&call(json!({"e": cloud}), json!({})), "raw"),
            blob(NAME)
        );
    }

    #[test]
    fn the_event_data_url_names_the_blob_when_there_is_no_subject() {
        let ev = event("raw", BLOB_CREATED);
        let data_only = call(json!({}), json!({"data": ev["data"]}));
        assert_eq!(target(&data_only, "raw"), blob(NAME));
        let azurite = json!({"eventType": BLOB_CREATED, "data": {"url": "http://127.0.0.1:10000/devstoreaccount1/raw/a/b%2Bc.json.gz"}});
        assert_eq!(
            target(&call(json!({"event": azurite}), json!({})), "raw"),
            blob("a/b+c.json.gz")
        );
    }

    #[test]
    fn other_event_types_and_containers_are_ignored() {
        let deleted = call(
            json!({"event": event("raw", "Microsoft.Storage.BlobDeleted")}),
            json!({}),
        );
        assert!(
            matches!(target(&deleted, "raw"), Ok(Target::Ignore(why)) if why.contains("BlobDeleted"))
        );
        let other = call(json!({"event": event("other", BLOB_CREATED)}), json!({}));
        assert!(
            matches!(target(&other, "raw"), Ok(Target::Ignore(why)) if why.contains("container other"))
        );
        let url_only = call(
            json!({}),
            json!({"data": event("other", BLOB_CREATED)["data"]}),
        );
        assert!(matches!(target(&url_only, "raw"), Ok(Target::Ignore(_))));
        // The configured container, not a literal `raw`.
        assert_eq!(
            target(
                &call(json!({"event": event("other", BLOB_CREATED)}), json!({})),
                "other"
            ),
            blob(NAME)
        );
    }

    #[test]
    fn an_event_without_subject_or_url_names_no_blob() {
        let bare = call(
            json!({"event": {"eventType": BLOB_CREATED, "id": "1", "data": {"api": "PutBlob"}}}),
            json!({}),
        );
        let err = target(&bare, "raw").expect_err("no name");
        assert!(err.contains("neither a blob `subject`"), "{err}");
    }

    #[test]
    fn the_blob_trigger_shape_names_its_blob_from_metadata_name_then_uri() {
        let with_name = br#"{"Data": {"triggerBlob": "H4sI"}, "Metadata": {"name": "a/b.json.gz", "Uri": "https://x/raw/zzz"}}"#;
        assert_eq!(target(with_name, "raw"), blob("a/b.json.gz"));
        let uri_only = format!(
            r#"{{"Data": {{}}, "Metadata": {{"Uri": "https://acct.blob.core.windows.net/landing/{}?sv=1"}}}}"#,
            NAME.replace('+', "%2B")
        );
        assert_eq!(target(uri_only.as_bytes(), "landing"), blob(NAME));
        let err = target(uri_only.as_bytes(), "raw").expect_err("other container");
        assert!(err.contains("has no `/raw/` segment"), "{err}");
        assert!(target(br#"{"Data": {}, "Metadata": {}}"#, "raw").is_err());
        assert!(target(b"not json", "raw").is_err());
    }

    #[test]
    fn the_raw_container_comes_from_the_storage_url() {
        for (url, want) in [
            ("az://raw", Some("raw")),
            ("az://landing/", Some("landing")),
            ("azure://raw?sv=1&sig=x", Some("raw")),
            ("abfss://lake@acct.dfs.core.windows.net/", Some("lake")),
            ("https://acct.blob.core.windows.net/raw2/x", Some("raw2")),
            ("https://acct.blob.core.windows.net/", None),
            ("file:///tmp/raw", None),
            ("memory://", None),
        ] {
            assert_eq!(raw_container_of(url).as_deref(), want, "{url}");
        }
        assert_eq!(ServeOptions::new("memory://", 0).raw_container, "raw");
        assert_eq!(ServeOptions::new("az://x", 0).max_concurrent, 1);
    }
}
