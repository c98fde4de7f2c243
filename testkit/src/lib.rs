//! Test helpers shared by every suite: the real local stack (`scripts/stack up`), clients built
//! from `env/local.env`, unique topic and container names, and waiting without fixed sleeps.
//!
//! Every test that touches a service gets its own topic(s) and container(s), so suites run in
//! parallel and never see each other's data.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use object_store::ObjectStore;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{FutureProducer, FutureRecord};

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testkit sits in the workspace")
        .to_path_buf()
}

/// `env/local.env` merged with the process environment (the process wins).
pub fn env() -> &'static BTreeMap<String, String> {
    static ENV: OnceLock<BTreeMap<String, String>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut map = parse_env_file(&root().join("env/local.env")).unwrap_or_default();
        for (k, v) in map.iter_mut() {
            if let Ok(p) = std::env::var(k) {
                *v = p;
            }
        }
        map
    })
}

/// Parses a `KEY=VALUE` env file (comments and blank lines skipped).
pub fn parse_env_file(path: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect())
}

/// One variable of the local stack's environment.
pub fn var(key: &str) -> String {
    env()
        .get(key)
        .cloned()
        .or_else(|| std::env::var(key).ok())
        .unwrap_or_else(|| panic!("{key} is not set in env/local.env or the environment"))
}

/// A unique lower-case name (valid as a Kafka topic and an Azure container): `{prefix}-{8 hex}`.
pub fn unique(prefix: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}-{}", &id[..8]).to_lowercase()
}

/// A fresh folder under the system's temporary folder, removed with everything in it when
/// dropped: tests write their files here and leave nothing behind.
#[derive(Debug)]
pub struct TempDir(std::path::PathBuf);

impl TempDir {
    /// Creates `{temp}/{prefix}-{8 hex}`.
    pub fn new(prefix: &str) -> anyhow::Result<TempDir> {
        let dir = std::env::temp_dir().join(unique(prefix));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(TempDir(dir))
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// A path inside the folder.
    pub fn join(&self, name: &str) -> std::path::PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The Kafka bootstrap servers of the local stack.
pub fn brokers() -> String {
    var("KAFKA_BROKERS")
}

/// Creates a topic with `partitions` partitions and waits until the broker knows it.
pub async fn create_topic(name: &str, partitions: i32) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .create()
        .context("admin client")?;
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    let res = admin
        .create_topics(
            [&topic],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await
        .context("create_topics")?;
    for r in res {
        if let Err((t, e)) = r
            && e != rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists
        {
            bail!("creating topic {t}: {e}");
        }
    }
    Ok(())
}

/// A producer for the local broker (acks=all, idempotent off: Tansu does not need it).
pub fn producer() -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("linger.ms", "5")
        .set("message.timeout.ms", "30000")
        .create()
        .expect("producer")
}

/// Sends one record to an explicit partition and returns its offset.
pub async fn send(
    producer: &FutureProducer,
    topic: &str,
    partition: i32,
    key: Option<&[u8]>,
    value: &[u8],
) -> anyhow::Result<i64> {
    let mut rec: FutureRecord<'_, [u8], [u8]> =
        FutureRecord::to(topic).partition(partition).payload(value);
    if let Some(k) = key {
        rec = rec.key(k);
    }
    let delivery = producer
        .send(rec, Duration::from_secs(30))
        .await
        .map_err(|(e, _)| anyhow::anyhow!("send to {topic}/{partition}: {e}"))?;
    Ok(delivery.offset)
}

/// Kafka headers whose names are arbitrary bytes (not UTF-8, NUL bytes inside), as an attacker
/// or a non-Rust client can send them: rdkafka's `Header` only takes `&str` names.
#[expect(
    unsafe_code,
    reason = "test-only: librdkafka's rd_kafka_header_add takes the name as bytes with a length"
)]
pub fn byte_headers(headers: &[(&[u8], Option<&[u8]>)]) -> rdkafka::message::OwnedHeaders {
    let owned = rdkafka::message::OwnedHeaders::new_with_capacity(headers.len());
    // `BorrowedHeaders` is a zero-sized view whose address is the native header list.
    let list = std::ptr::from_ref(owned.as_borrowed())
        .cast_mut()
        .cast::<rdkafka::bindings::rd_kafka_headers_t>();
    for (name, value) in headers {
        let (value_ptr, value_len) = match value {
            Some(v) => (v.as_ptr().cast::<std::ffi::c_void>(), v.len() as isize),
            None => (std::ptr::null(), 0),
        };
        // SAFETY: `list` is the live list `owned` owns; librdkafka copies `name.len()` bytes of
        // the name and `value_len` bytes of the value into a new header it allocates.
        let err = unsafe {
            rdkafka::bindings::rd_kafka_header_add(
                list,
                name.as_ptr().cast(),
                name.len() as isize,
                value_ptr,
                value_len,
            )
        };
        assert_eq!(
            err,
            rdkafka::types::RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR
        );
    }
    owned
}

/// Creates a blob container in Azurite (idempotent) with the stack's helper script.
pub fn create_container(name: &str) -> anyhow::Result<()> {
    let root = root();
    let status = std::process::Command::new("node")
        .arg(root.join("scripts/create-containers.js"))
        .arg(name)
        .env("NODE_PATH", root.join(".stack/npm/node_modules"))
        .env("AZURITE_BLOB_STORAGE_URL", var("AZURITE_BLOB_STORAGE_URL"))
        .status()
        .context("running node scripts/create-containers.js (run scripts/stack up first)")?;
    if !status.success() {
        bail!("creating container {name} failed");
    }
    Ok(())
}

/// The environment a child process needs to reach a container through object_store's emulator mode.
pub fn azure_env() -> Vec<(String, String)> {
    ["AZURE_STORAGE_USE_EMULATOR", "AZURITE_BLOB_STORAGE_URL"]
        .iter()
        .map(|k| ((*k).to_owned(), var(k)))
        .collect()
}

/// An object store on a fresh container in Azurite, and its `az://` URL.
pub fn new_container(prefix: &str) -> anyhow::Result<(String, Arc<dyn ObjectStore>)> {
    let name = unique(prefix);
    create_container(&name)?;
    let store = container_store(&name)?;
    Ok((format!("az://{name}"), store))
}

/// An object store on an existing Azurite container.
pub fn container_store(name: &str) -> anyhow::Result<Arc<dyn ObjectStore>> {
    let store = object_store::azure::MicrosoftAzureBuilder::new()
        .with_use_emulator(true)
        .with_endpoint(format!(
            "{}/devstoreaccount1",
            var("AZURITE_BLOB_STORAGE_URL")
        ))
        .with_allow_http(true)
        .with_container_name(name)
        .build()
        .context("azurite store")?;
    Ok(Arc::new(store))
}

/// An async Redis connection to the local stack.
pub async fn redis() -> anyhow::Result<redis::aio::MultiplexedConnection> {
    let client = redis::Client::open(var("REDIS_URL")).context("REDIS_URL")?;
    client
        .get_multiplexed_async_connection()
        .await
        .context("connecting to Redis (run scripts/stack up)")
}

/// Polls `check` every 100 ms until it returns `Some`, or fails after `timeout` naming `what`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Path of a workspace binary built by `cargo build --bins` (the test command builds them first).
pub fn bin(name: &str) -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root().join("target"));
    let path = target.join("debug").join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` first (the test command does)",
        path.display()
    );
    path
}

/// Lists every blob name under `prefix` in a store, sorted.
pub async fn list_names(
    store: &dyn ObjectStore,
    prefix: Option<&str>,
) -> anyhow::Result<Vec<String>> {
    use futures::TryStreamExt;
    let prefix = prefix.map(object_store::path::Path::from);
    let mut names: Vec<String> = store
        .list(prefix.as_ref())
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await?;
    names.sort();
    Ok(names)
}

// --- Private services for fault tests (appended for the e2e chaos suite) ---------------------

/// A free TCP port on loopback (bound once and released; good enough for test-private servers).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding 127.0.0.1:0")
}

/// Starts a test-private Azurite blob service on `port`, keeping its data in `dir` (so a stop and
/// a restart on the same `dir` keep every blob). Output goes to `dir/azurite.log`. Kill the child
/// to stop it; wait with [`wait_for_port`] before using it.
pub fn spawn_azurite(dir: &Path, port: u16) -> anyhow::Result<std::process::Child> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("azurite.log"))
        .context("azurite log")?;
    let bin = root().join(".stack/npm/node_modules/.bin/azurite-blob");
    std::process::Command::new(&bin)
        .args([
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            &port.to_string(),
            "--skipApiVersionCheck",
            "--loose",
            "--silent",
            "--disableTelemetry",
        ])
        .arg("--location")
        .arg(dir)
        .stdout(log.try_clone().context("azurite log")?)
        .stderr(log)
        .spawn()
        .with_context(|| {
            format!(
                "starting {} (run scripts/stack up once to install it)",
                bin.display()
            )
        })
}

/// Starts a test-private, memory-only Redis on `port`. Kill the child to stop it.
pub fn spawn_redis(port: u16) -> anyhow::Result<std::process::Child> {
    std::process::Command::new("redis-server")
        .args([
            "--bind",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .context("starting redis-server (run scripts/stack up once to install it)")
}

/// Starts a test-private Redis on `port` that keeps its data in `dir` across a stop (SIGTERM)
/// and a restart: append-only file, fsync on every write, no snapshots.
pub fn spawn_redis_in(dir: &Path, port: u16) -> anyhow::Result<std::process::Child> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::process::Command::new("redis-server")
        .args([
            "--bind",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
        ])
        .arg("--dir")
        .arg(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .context("starting redis-server (run scripts/stack up once to install it)")
}

/// Waits until something accepts TCP connections on `127.0.0.1:port`.
pub async fn wait_for_port(port: u16, timeout: Duration) -> anyhow::Result<()> {
    wait_for(
        &format!("127.0.0.1:{port} to accept connections"),
        timeout,
        || async move {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .ok()
                .map(drop)
        },
    )
    .await
}

/// Creates a blob container on the Azurite at `blob_url` (e.g. a private one), idempotently.
pub fn create_container_at(blob_url: &str, name: &str) -> anyhow::Result<()> {
    let root = root();
    let status = std::process::Command::new("node")
        .arg(root.join("scripts/create-containers.js"))
        .arg(name)
        .env("NODE_PATH", root.join(".stack/npm/node_modules"))
        .env("AZURITE_BLOB_STORAGE_URL", blob_url)
        .status()
        .context("running node scripts/create-containers.js (run scripts/stack up first)")?;
    if !status.success() {
        bail!("creating container {name} at {blob_url} failed");
    }
    Ok(())
}

/// The development account key of Azurite, read from the official SDK (as
/// `scripts/create-containers.js` does) so it is not written in this repository.
pub fn azurite_account_key() -> anyhow::Result<String> {
    static KEY: OnceLock<String> = OnceLock::new();
    if let Some(k) = KEY.get() {
        return Ok(k.clone());
    }
    let out = std::process::Command::new("node")
        .arg("-e")
        .arg(r#"const {BlobServiceClient} = require("@azure/storage-blob"); const c = BlobServiceClient.fromConnectionString("UseDevelopmentStorage=true").credential; process.stdout.write(c.accountKey.toString("base64"));"#)
        .env("NODE_PATH", root().join(".stack/npm/node_modules"))
        .output()
        .context("running node for the Azurite development key (run scripts/stack up first)")?;
    if !out.status.success() || out.stdout.is_empty() {
        bail!(
            "reading the Azurite development key failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let key = String::from_utf8(out.stdout).context("key is not UTF-8")?;
    Ok(KEY.get_or_init(|| key).clone())
}

/// An object store on a container of the Azurite at `blob_url` (any port). object_store's
/// emulator mode always takes the URL from the process's `AZURITE_BLOB_STORAGE_URL`, so this
/// addresses the account path-style through an explicit endpoint and the development key.
pub fn container_store_at(blob_url: &str, name: &str) -> anyhow::Result<Arc<dyn ObjectStore>> {
    let store = object_store::azure::MicrosoftAzureBuilder::new()
        .with_account("devstoreaccount1")
        .with_access_key(azurite_account_key()?)
        .with_endpoint(format!("{blob_url}/devstoreaccount1"))
        .with_allow_http(true)
        .with_container_name(name)
        .build()
        .context("azurite store")?;
    Ok(Arc::new(store))
}

/// The Delta tables of `container` as the `deltalake` package from PyPI reads them
/// (`scripts/delta-read.py`: per table its version, protocol, rows, duplicate ids, …), through
/// the interpreter `DATAFLOW_DELTA_PYTHON` names (`scripts/test` installs it in
/// `.stack/venv-delta`).
pub fn delta_read(container: &str) -> anyhow::Result<serde_json::Value> {
    delta_read_args(&[container])
}

/// [`delta_read`] of one table as of `version` (time travel).
pub fn delta_read_version(
    container: &str,
    table: &str,
    version: i64,
) -> anyhow::Result<serde_json::Value> {
    let v = version.to_string();
    delta_read_args(&[container, "--version", &v, table])
}

fn delta_read_args(args: &[&str]) -> anyhow::Result<serde_json::Value> {
    let python = std::env::var_os("DATAFLOW_DELTA_PYTHON").context(
        "DATAFLOW_DELTA_PYTHON is not set: scripts/test installs `deltalake` into .stack/venv-delta and sets it",
    )?;
    let out = std::process::Command::new(python)
        .arg(root().join("scripts/delta-read.py"))
        .args(args)
        .envs(azure_env())
        .output()
        .context("running scripts/delta-read.py")?;
    if !out.status.success() {
        bail!(
            "delta-read.py failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    serde_json::from_slice(&out.stdout).context("delta-read.py printed no JSON")
}
