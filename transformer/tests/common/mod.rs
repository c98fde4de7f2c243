//! Helpers for the transformer suites: raw blobs built like the worker builds them, fresh
//! Azurite containers, Parquet read-back.
#![allow(dead_code)]

pub mod lake;

use std::io::Write;
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::concat_batches;
use bytes::Bytes;
use flate2::write::GzEncoder;
use model::naming::raw_blob_name;
use model::raw::{RecordPosition, TimestampType, encode_line};
use object_store::path::Path;
use object_store::{ObjectStore, PutPayload};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use transformer::process::Stores;

/// Reference messages of simulator-messages.md §1.5 (byte-exact `json.dumps` output).
pub const STARTING_MATCH: &str = r#"{"level": "INFO", "timestamp": "2024-01-14T18:22:04.518263", "name": "kafka.lib.server.lobby", "log_message": "Starting Match", "task": "{\"TIMESTAMP\": \"2024-01-14T18:22:04Z\", \"PAYLOAD\": {\"GAME_TOKEN\": \"9b2f6c1e-3d4a-4f8e-9a51-2c7d0e8b6f13\", \"PARTICIPANTS\": [\"6e8d4c2b-a0f9-4e7d-8c6b-5a4f3e2d1c0b\", \"1f3c5a7e-0b2d-4e6f-8a9b-c0d1e2f3a4b5\"], \"PARTICIPANTS_HEROS\": {\"6e8d4c2b-a0f9-4e7d-8c6b-5a4f3e2d1c0b\": {\"token\": \"6e8d4c2b-a0f9-4e7d-8c6b-5a4f3e2d1c0b\", \"id\": 191, \"attack\": 40992, \"health\": 141120}, \"1f3c5a7e-0b2d-4e6f-8a9b-c0d1e2f3a4b5\": {\"token\": \"1f3c5a7e-0b2d-4e6f-8a9b-c0d1e2f3a4b5\", \"id\": 70, \"attack\": 126900, \"health\": 1300000}}}, \"STATUS\": {\"GAME\": \"START\"}}"}"#;
pub const CLEANING: &str = r#"{"level": "INFO", "timestamp": "2024-01-14T18:22:06.640118", "name": "kafka.lib.server.lobby", "log_message": "Cleaning Game Records", "task": {"game_token": "9b2f6c1e-3d4a-4f8e-9a51-2c7d0e8b6f13", "user_token": "1f3c5a7e-0b2d-4e6f-8a9b-c0d1e2f3a4b5"}}"#;
pub const TIMED_OUT: &str = r#"{"level": "INFO", "timestamp": "2024-01-14T18:23:11.402776", "name": "kafka.lib.server.lobby", "log_message": "Game Timed Out", "task": "{\"TIMESTAMP\": \"2024-01-14T18:23:11Z\", \"PAYLOAD\": {\"GAME_TOKEN\": \"d41c8e0a-57b3-4c19-a6e2-8f0b9d3c7a25\"}, \"STATUS\": {\"GAME\": \"TIMED OUT\"}}"}"#;
pub const ATTACK_1: &str = r#"{"level": "INFO", "timestamp": "2024-01-14T18:22:04.771305", "name": "kafka.lib.server.game", "log_message": "Attack Completed", "task": "{\"TIMESTAMP\": \"2024-01-14T18:22:04.771092\", \"PAYLOAD\": {\"GAME_TOKEN\": \"9b2f6c1e-3d4a-4f8e-9a51-2c7d0e8b6f13\", \"USER_TOKEN\": \"1f3c5a7e-0b2d-4e6f-8a9b-c0d1e2f3a4b5\"}, \"STATUS\": {\"ACTION\": \"ATTACK\", \"DETAILS\": {\"ENEMY_TOKEN\": \"6e8d4c2b-a0f9-4e7d-8c6b-5a4f3e2d1c0b\", \"ENEMY_DAMAGE\": 126900, \"ENEMY_HEALTH_PRIOR\": 141120, \"ENEMY_HEALTH_POST\": 14220}}}"}"#;
pub const ATTACK_2: &str = r#"{"level": "INFO", "timestamp": "2024-01-14T18:22:05.215040", "name": "kafka.lib.server.game", "log_message": "Attack Completed", "task": "{\"TIMESTAMP\": \"2024-01-14T18:22:05.214877\", \"PAYLOAD\": {\"GAME_TOKEN\": \"9b2f6c1e-3d4a-4f8e-9a51-2c7d0e8b6f13\", \"USER_TOKEN\": \"6e8d4c2b-a0f9-4e7d-8c6b-5a4f3e2d1c0b\"}, \"STATUS\": {\"ACTION\": \"ATTACK\", \"DETAILS\": {\"ENEMY_TOKEN\": \"1f3c5a7e-0b2d-4e6f-8a9b-c0d1e2f3a4b5\", \"ENEMY_DAMAGE\": 40992, \"ENEMY_HEALTH_PRIOR\": 1300000, \"ENEMY_HEALTH_POST\": 1259008}}}"}"#;
pub const ATTACK_3: &str = r#"{"level": "INFO", "timestamp": "2024-01-14T18:22:05.632598", "name": "kafka.lib.server.game", "log_message": "Attack Completed", "task": "{\"TIMESTAMP\": \"2024-01-14T18:22:05.632410\", \"PAYLOAD\": {\"GAME_TOKEN\": \"9b2f6c1e-3d4a-4f8e-9a51-2c7d0e8b6f13\", \"USER_TOKEN\": \"1f3c5a7e-0b2d-4e6f-8a9b-c0d1e2f3a4b5\"}, \"STATUS\": {\"ACTION\": \"ATTACK\", \"DETAILS\": {\"ENEMY_TOKEN\": \"6e8d4c2b-a0f9-4e7d-8c6b-5a4f3e2d1c0b\", \"ENEMY_DAMAGE\": 126900, \"ENEMY_HEALTH_PRIOR\": 14220, \"ENEMY_HEALTH_POST\": 0}}}"}"#;
pub const DEAD_ENEMY: &str = r#"{"level": "ERROR", "timestamp": "2024-01-14T18:22:05.901520", "name": "kafka.lib.server.game", "log_message": "Attacked Dead Enemy", "task": "{\"TIMESTAMP\": \"2024-01-14T18:22:05.901337\", \"PAYLOAD\": {\"GAME_TOKEN\": \"9b2f6c1e-3d4a-4f8e-9a51-2c7d0e8b6f13\", \"USER_TOKEN\": \"1f3c5a7e-0b2d-4e6f-8a9b-c0d1e2f3a4b5\"}, \"STATUS\": {\"ACTION\": \"NA\", \"DETAILS\": {\"ENEMY_TOKEN\": null, \"ENEMY_STATUS\": \"DEAD\"}}}"}"#;
/// An `Attack Completed` of the older simulator: whole-second TIMESTAMP with `Z`.
pub const ATTACK_OLD: &str = r#"{"level": "INFO", "timestamp": "2024-01-14T18:22:06", "name": "kafka.lib.server.game", "log_message": "Attack Completed", "task": "{\"TIMESTAMP\": \"2024-01-14T18:22:06Z\", \"PAYLOAD\": {\"GAME_TOKEN\": \"g-old\", \"USER_TOKEN\": \"u-old\"}, \"STATUS\": {\"ACTION\": \"ATTACK\", \"DETAILS\": {\"ENEMY_TOKEN\": \"e-old\", \"ENEMY_DAMAGE\": 5, \"ENEMY_HEALTH_PRIOR\": 7, \"ENEMY_HEALTH_POST\": 2}}}"}"#;

/// Kafka timestamp of the first record (2024-01-14T18:22:04.771Z); later ones add 1 ms each.
pub const T0_MS: i64 = 1_705_256_524_771;

/// One record to put in a raw blob.
#[derive(Debug, Clone)]
pub struct Rec {
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

impl Rec {
    pub fn value(v: impl AsRef<[u8]>) -> Self {
        Rec {
            key: None,
            value: Some(v.as_ref().to_vec()),
            headers: Vec::new(),
        }
    }
    pub fn null() -> Self {
        Rec {
            key: None,
            value: None,
            headers: Vec::new(),
        }
    }
}

/// A raw blob as the worker writes it: its name and gzipped JSON lines.
pub fn raw_blob(topic: &str, partition: i32, first_offset: i64, recs: &[Rec]) -> (String, Vec<u8>) {
    raw_blob_at(topic, partition, first_offset, T0_MS, recs)
}

/// [`raw_blob`] whose first record has Kafka timestamp `t0_ms` (which dates the name).
pub fn raw_blob_at(
    topic: &str,
    partition: i32,
    first_offset: i64,
    t0_ms: i64,
    recs: &[Rec],
) -> (String, Vec<u8>) {
    let mut lines = Vec::new();
    for (i, r) in recs.iter().enumerate() {
        let pos = RecordPosition {
            topic,
            partition,
            offset: first_offset + i as i64,
            timestamp: Some(t0_ms + i as i64),
            timestamp_type: TimestampType::CreateTime,
        };
        let headers: Vec<(&[u8], Option<&[u8]>)> = r
            .headers
            .iter()
            .map(|(k, v)| (k.as_bytes(), v.as_deref()))
            .collect();
        encode_line(
            &mut lines,
            pos,
            r.key.as_deref(),
            r.value.as_deref(),
            &headers,
        );
    }
    (
        raw_blob_name(topic, partition, first_offset, Some(t0_ms)),
        gzip(&lines),
    )
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).expect("gzip write");
    e.finish().expect("gzip finish")
}

/// Fresh `raw` and `standard` containers in Azurite, with their `az://` URLs.
pub fn containers() -> (Stores, String, String) {
    let (raw_url, raw) = testkit::new_container("raw").expect("raw container (scripts/stack up)");
    let (std_url, standard) = testkit::new_container("std").expect("standard container");
    (Stores { raw, standard }, raw_url, std_url)
}

pub async fn upload(store: &Arc<dyn ObjectStore>, name: &str, bytes: Vec<u8>) {
    store
        .put(&Path::from(name), PutPayload::from(bytes))
        .await
        .expect("upload");
}

pub async fn get(store: &Arc<dyn ObjectStore>, name: &str) -> Option<Bytes> {
    match store.get(&Path::from(name)).await {
        Ok(g) => Some(g.bytes().await.expect("body")),
        Err(object_store::Error::NotFound { .. }) => None,
        Err(e) => panic!("reading {name}: {e}"),
    }
}

/// Reads a Parquet file back as one batch (schema from the file).
pub async fn read_parquet(store: &Arc<dyn ObjectStore>, name: &str) -> RecordBatch {
    let bytes = get(store, name)
        .await
        .unwrap_or_else(|| panic!("{name} missing"));
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).expect("parquet file");
    let schema = builder.schema().clone();
    let batches: Vec<RecordBatch> = builder
        .build()
        .expect("reader")
        .collect::<Result<_, _>>()
        .expect("batches");
    concat_batches(&schema, &batches).expect("concat")
}

pub fn strings(b: &RecordBatch, col: &str) -> Vec<Option<String>> {
    let a = b
        .column_by_name(col)
        .unwrap_or_else(|| panic!("column {col}"));
    let s = a.as_string::<i32>();
    (0..s.len())
        .map(|i| s.is_valid(i).then(|| s.value(i).to_owned()))
        .collect()
}

pub fn str_col(b: &RecordBatch, col: &str) -> Vec<String> {
    strings(b, col)
        .into_iter()
        .map(|s| s.expect("non-null"))
        .collect()
}

pub fn micros(b: &RecordBatch, col: &str) -> Vec<Option<i64>> {
    let a = b
        .column_by_name(col)
        .unwrap_or_else(|| panic!("column {col}"));
    let t = a.as_primitive::<arrow::datatypes::TimestampMicrosecondType>();
    (0..t.len())
        .map(|i| t.is_valid(i).then(|| t.value(i)))
        .collect()
}

pub fn u64s(b: &RecordBatch, col: &str) -> Vec<u64> {
    let a = b
        .column_by_name(col)
        .unwrap_or_else(|| panic!("column {col}"));
    a.as_primitive::<arrow::datatypes::UInt64Type>()
        .values()
        .to_vec()
}

/// Every blob name in a store, sorted.
pub async fn names(store: &Arc<dyn ObjectStore>, prefix: Option<&str>) -> Vec<String> {
    testkit::list_names(store.as_ref(), prefix)
        .await
        .expect("list")
}

/// Every file under `standard` except bookkeeping (`_receipts`, `_leases`, `_poison`, `_watch`),
/// with bytes.
pub async fn outputs(store: &Arc<dyn ObjectStore>) -> Vec<(String, Bytes)> {
    let mut out = Vec::new();
    for n in names(store, None).await {
        let bookkeeping = ["_receipts/", "_leases/", "_poison/", "_watch/"];
        if bookkeeping.iter().any(|p| n.starts_with(p)) {
            continue;
        }
        let b = get(store, &n).await.expect("listed blob exists");
        out.push((n, b));
    }
    out
}

/// A store on a port where nothing listens, without retries: every request fails fast.
pub fn unreachable_store() -> Arc<dyn ObjectStore> {
    let retry = object_store::RetryConfig {
        max_retries: 0,
        retry_timeout: std::time::Duration::from_secs(1),
        ..Default::default()
    };
    let store = object_store::azure::MicrosoftAzureBuilder::new()
        .with_use_emulator(true)
        .with_endpoint("http://127.0.0.1:9/devstoreaccount1".to_owned())
        .with_allow_http(true)
        .with_container_name("raw")
        .with_retry(retry)
        .build()
        .expect("store");
    Arc::new(store)
}

/// The host's blob-trigger request for `name` (shape recorded from the Functions host source:
/// no `BlobTrigger` key, `Data.triggerBlob` base64, `Metadata.name`/`Uri`/`Properties`/`sys`).
pub fn invocation(name: &str, blob: &[u8], with_name: bool) -> serde_json::Value {
    use base64::Engine as _;
    let encoded_name = name.replace('+', "%2B");
    let mut metadata = serde_json::json!({
        "Uri": format!("http://127.0.0.1:10000/devstoreaccount1/raw/{encoded_name}"),
        "Properties": {"ContentType": "application/gzip", "ContentLength": blob.len(), "ETag": "\"0x8DC0000000000\"", "BlobType": 0},
        "Metadata": {"first_offset": "42"},
        "sys": {"MethodName": "transform", "UtcNow": "2024-01-14T18:22:10.1234567Z", "RandGuid": "0f8fad5b-d9cb-469f-a165-70867728950e"}
    });
    if with_name {
        metadata["name"] = serde_json::Value::String(name.to_owned());
    }
    serde_json::json!({
        "Data": {"triggerBlob": base64::engine::general_purpose::STANDARD.encode(blob)},
        "Metadata": metadata,
    })
}

/// Uploads a raw blob as the worker does: create-only, with its offsets as metadata (which the
/// watcher reads to name a partition's next blob). Returns its name and the next first offset.
pub async fn upload_worker_blob(
    store: &Arc<dyn ObjectStore>,
    topic: &str,
    partition: i32,
    first_offset: i64,
    t0_ms: i64,
    recs: &[Rec],
) -> (String, i64) {
    use object_store::{Attribute, Attributes, PutMode, PutOptions};
    let (name, gz) = raw_blob_at(topic, partition, first_offset, t0_ms, recs);
    let last = first_offset + recs.len() as i64 - 1;
    let mut attributes = Attributes::new();
    for (k, v) in model::naming::raw_blob_metadata(first_offset, last, recs.len()) {
        attributes.insert(Attribute::Metadata(k.into()), v.into());
    }
    let opts = PutOptions {
        mode: PutMode::Create,
        attributes,
        ..PutOptions::default()
    };
    store
        .put_opts(&Path::from(name.as_str()), gz.into(), opts)
        .await
        .expect("upload");
    (name, last + 1)
}

/// Requests made through a [`Counting`] store, by kind.
#[derive(Debug, Default)]
pub struct Requests {
    pub gets: std::sync::atomic::AtomicU64,
    pub heads: std::sync::atomic::AtomicU64,
    pub puts: std::sync::atomic::AtomicU64,
    pub deletes: std::sync::atomic::AtomicU64,
    pub lists: std::sync::atomic::AtomicU64,
    /// Puts under this prefix fail (as a storage error) while the count is above zero.
    pub failing_puts: std::sync::Mutex<Option<(String, u64)>>,
}

impl Requests {
    pub fn gets(&self) -> u64 {
        self.gets.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// An object store that counts the requests it passes on.
#[derive(Debug)]
pub struct Counting {
    pub inner: Arc<dyn ObjectStore>,
    pub requests: Arc<Requests>,
}

impl std::fmt::Display for Counting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Counting({})", self.inner)
    }
}

fn bump(c: &std::sync::atomic::AtomicU64) {
    c.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

type Fut<'a, T> = futures::future::BoxFuture<'a, object_store::Result<T>>;

// The trait is `#[async_trait]`; these are its desugared signatures (no async-trait dependency).
impl ObjectStore for Counting {
    fn put_opts<'a, 'b, 'c>(
        &'a self,
        location: &'b Path,
        payload: PutPayload,
        opts: object_store::PutOptions,
    ) -> Fut<'c, object_store::PutResult>
    where
        'a: 'c,
        'b: 'c,
        Self: 'c,
    {
        bump(&self.requests.puts);
        if let Some((prefix, left)) = self.requests.failing_puts.lock().expect("lock").as_mut()
            && *left > 0
            && location.as_ref().starts_with(prefix.as_str())
        {
            *left -= 1;
            let error = object_store::Error::Generic {
                store: "Counting",
                source: format!("injected failure of the put of {location}").into(),
            };
            return Box::pin(futures::future::ready(Err(error)));
        }
        self.inner.put_opts(location, payload, opts)
    }

    fn put_multipart_opts<'a, 'b, 'c>(
        &'a self,
        location: &'b Path,
        opts: object_store::PutMultipartOptions,
    ) -> Fut<'c, Box<dyn object_store::MultipartUpload>>
    where
        'a: 'c,
        'b: 'c,
        Self: 'c,
    {
        bump(&self.requests.puts);
        self.inner.put_multipart_opts(location, opts)
    }

    fn get_opts<'a, 'b, 'c>(
        &'a self,
        location: &'b Path,
        options: object_store::GetOptions,
    ) -> Fut<'c, object_store::GetResult>
    where
        'a: 'c,
        'b: 'c,
        Self: 'c,
    {
        bump(if options.head {
            &self.requests.heads
        } else {
            &self.requests.gets
        });
        self.inner.get_opts(location, options)
    }

    fn delete<'a, 'b, 'c>(&'a self, location: &'b Path) -> Fut<'c, ()>
    where
        'a: 'c,
        'b: 'c,
        Self: 'c,
    {
        bump(&self.requests.deletes);
        self.inner.delete(location)
    }

    fn list(
        &self,
        prefix: Option<&Path>,
    ) -> futures::stream::BoxStream<'static, object_store::Result<object_store::ObjectMeta>> {
        bump(&self.requests.lists);
        self.inner.list(prefix)
    }

    fn list_with_delimiter<'a, 'b, 'c>(
        &'a self,
        prefix: Option<&'b Path>,
    ) -> Fut<'c, object_store::ListResult>
    where
        'a: 'c,
        'b: 'c,
        Self: 'c,
    {
        bump(&self.requests.lists);
        self.inner.list_with_delimiter(prefix)
    }

    fn copy<'a, 'b, 'c, 'd>(&'a self, from: &'b Path, to: &'c Path) -> Fut<'d, ()>
    where
        'a: 'd,
        'b: 'd,
        'c: 'd,
        Self: 'd,
    {
        bump(&self.requests.puts);
        self.inner.copy(from, to)
    }

    fn copy_if_not_exists<'a, 'b, 'c, 'd>(&'a self, from: &'b Path, to: &'c Path) -> Fut<'d, ()>
    where
        'a: 'd,
        'b: 'd,
        'c: 'd,
        Self: 'd,
    {
        bump(&self.requests.puts);
        self.inner.copy_if_not_exists(from, to)
    }
}
