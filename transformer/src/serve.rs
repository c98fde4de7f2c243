//! `transformer serve`: the Azure Functions custom handler.
//!
//! The host POSTs `/{FunctionName}` (our function is `transform`) with the blob-trigger envelope
//! `{"Data": {"triggerBlob": "<base64>"}, "Metadata": {"name": "...", "Uri": "...", ...}}`. The
//! blob name comes from `Metadata.name` (the `{name}` of `raw/{name}`), else from `Metadata.Uri`
//! after `/raw/`; the blob is read through object_store, never decoded from the base64 copy.
//! Answers: `200 {"Outputs": {}, "Logs": [...], "ReturnValue": {summary}}` when the blob was
//! transformed (bad records included) or is not a raw blob name (nothing to retry); `500` on an
//! infrastructure failure so the host retries; `400` for a payload without a blob name.

use axum::extract::{DefaultBodyLimit, Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use model::naming::RawBlobName;
use serde::Deserialize;
use serde_json::json;

use crate::ledger;
use crate::process::{ProcessError, Stores, process_blob};
use crate::transform::TransformOptions;

/// The host embeds the whole blob (base64) in the request: allow up to 512 MiB.
pub const BODY_LIMIT: usize = 512 * 1024 * 1024;

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

/// The parts of the host's request we read; `Data` (the base64 blob) is skipped unparsed.
#[derive(Debug, Default, Deserialize)]
struct Invocation {
    #[serde(rename = "Metadata", default)]
    metadata: Metadata,
}

#[derive(Debug, Default, Deserialize)]
struct Metadata {
    #[serde(default)]
    name: Option<String>,
    #[serde(rename = "Uri", default)]
    uri: Option<String>,
}

impl Handler {
    /// `POST /{function}` with a raised body limit.
    pub fn router(self) -> Router {
        Router::new()
            .route("/{function}", post(invoke))
            .layer(DefaultBodyLimit::max(BODY_LIMIT))
            .with_state(self)
    }
}

/// The raw blob name of an invocation: `Metadata.name`, else the `Uri` path after `/raw/`.
pub fn blob_name(payload: &[u8]) -> Result<String, String> {
    let inv: Invocation = serde_json::from_slice(payload)
        .map_err(|e| format!("request is not a Functions invocation (Data/Metadata JSON): {e}"))?;
    if let Some(name) = inv.metadata.name.filter(|n| !n.is_empty()) {
        return Ok(name);
    }
    let marker = format!("/{}/", model::RAW_CONTAINER);
    let uri = inv
        .metadata
        .uri
        .ok_or("Metadata has neither `name` nor `Uri`")?;
    let path = uri.split(['?', '#']).next().unwrap_or_default();
    let (_, rest) = path
        .split_once(&marker)
        .ok_or_else(|| format!("Metadata.Uri `{uri}` has no `{marker}` segment"))?;
    percent_decode(rest)
        .ok_or_else(|| format!("Metadata.Uri `{uri}` is not valid percent-encoding"))
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

fn answer(status: StatusCode, logs: Vec<String>, value: serde_json::Value) -> Response {
    (
        status,
        Json(json!({"Outputs": {}, "Logs": logs, "ReturnValue": value})),
    )
        .into_response()
}

async fn invoke(
    State(h): State<Handler>,
    UrlPath(function): UrlPath<String>,
    body: axum::body::Bytes,
) -> Response {
    let name = match blob_name(&body) {
        Ok(n) => n,
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

    #[test]
    fn name_comes_from_metadata_name_then_uri() {
        let with_name = br#"{"Data": {"triggerBlob": "H4sI"}, "Metadata": {"name": "a/b.json.gz", "Uri": "https://x/raw/zzz"}}"#;
        assert_eq!(blob_name(with_name).as_deref(), Ok("a/b.json.gz"));
        let uri_only = br#"{"Data": {}, "Metadata": {"Uri": "https://acct.blob.core.windows.net/raw/lib.server.game/2024/01/14/18/lib.server.game%2B3%2B00000000000000000042.json.gz?sv=1"}}"#;
        assert_eq!(
            blob_name(uri_only).as_deref(),
            Ok("lib.server.game/2024/01/14/18/lib.server.game+3+00000000000000000042.json.gz")
        );
        assert!(blob_name(br#"{"Data": {}, "Metadata": {}}"#).is_err());
        assert!(blob_name(b"not json").is_err());
    }
}
