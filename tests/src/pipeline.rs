//! The pipeline's binaries as child processes, each test with its own topics, consumer group,
//! containers and log folder (`.stack/logs/e2e/{id}/`).
//!
//! Configuration goes to the children with `Command::envs` (the test process never changes its
//! own environment). Children are killed when their [`Proc`] is dropped, so a failing test leaves
//! nothing running.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use object_store::ObjectStore;
use simulator::Manifest;

/// The simulator's three topics, created fresh with the reference partition counts (2/4/1).
#[derive(Debug, Clone)]
pub struct Topics {
    /// `lib.server.lobby` stand-in.
    pub lobby: String,
    /// `lib.server.game` stand-in.
    pub game: String,
    /// `client.__main__` stand-in.
    pub client: String,
}

impl Topics {
    /// Creates `{id}-lobby` (2), `{id}-game` (4) and `{id}-client` (1).
    pub async fn create(id: &str) -> anyhow::Result<Self> {
        let t = Topics {
            lobby: format!("{id}-lobby"),
            game: format!("{id}-game"),
            client: format!("{id}-client"),
        };
        testkit::create_topic(&t.lobby, 2).await?;
        testkit::create_topic(&t.game, 4).await?;
        testkit::create_topic(&t.client, 1).await?;
        Ok(t)
    }

    /// `KAFKA_TOPICS` for the worker: all three.
    pub fn csv(&self) -> String {
        format!("{},{},{}", self.lobby, self.game, self.client)
    }
}

/// Where the pipeline's blobs go: an Azurite endpoint and two containers on it.
#[derive(Debug, Clone)]
pub struct Storage {
    /// `AZURITE_BLOB_STORAGE_URL` of the Azurite holding the containers.
    pub blob_url: String,
    /// Raw container name.
    pub raw: String,
    /// Standard container name.
    pub standard: String,
}

impl Storage {
    /// Two fresh containers `{id}-raw` and `{id}-std` on the Azurite at `blob_url`.
    pub fn create(blob_url: &str, id: &str) -> anyhow::Result<Self> {
        let s = Storage {
            blob_url: blob_url.to_owned(),
            raw: format!("{id}-raw"),
            standard: format!("{id}-std"),
        };
        testkit::create_container_at(blob_url, &s.raw)?;
        testkit::create_container_at(blob_url, &s.standard)?;
        Ok(s)
    }

    /// Object stores on (raw, standard).
    pub fn stores(&self) -> anyhow::Result<(Arc<dyn ObjectStore>, Arc<dyn ObjectStore>)> {
        Ok((
            testkit::container_store_at(&self.blob_url, &self.raw)?,
            testkit::container_store_at(&self.blob_url, &self.standard)?,
        ))
    }

    /// The object_store emulator variables a child needs.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("AZURE_STORAGE_USE_EMULATOR".into(), "true".into()),
            ("AZURITE_BLOB_STORAGE_URL".into(), self.blob_url.clone()),
            ("RAW_URL".into(), format!("az://{}", self.raw)),
            ("STANDARD_URL".into(), format!("az://{}", self.standard)),
        ]
    }
}

/// One test's pipeline: topics, group, containers, Redis, logs.
#[derive(Debug, Clone)]
pub struct Pipeline {
    /// Unique id (prefix of every name).
    pub id: String,
    /// The topics.
    pub topics: Topics,
    /// The containers.
    pub storage: Storage,
    /// Redis the worker cleans and the simulator plays on.
    pub redis_url: String,
    /// Log folder of the children.
    pub log_dir: PathBuf,
}

impl Pipeline {
    /// Fresh topics and containers on the shared local stack.
    pub async fn new(prefix: &str) -> anyhow::Result<Self> {
        let id = testkit::unique(prefix);
        let storage = Storage::create(&testkit::var("AZURITE_BLOB_STORAGE_URL"), &id)?;
        Self::with(id, storage, testkit::var("REDIS_URL")).await
    }

    /// Fresh topics with given storage and Redis (e.g. test-private servers).
    pub async fn with(id: String, storage: Storage, redis_url: String) -> anyhow::Result<Self> {
        let topics = Topics::create(&id).await?;
        let log_dir = testkit::root().join(".stack/logs/e2e").join(&id);
        std::fs::create_dir_all(&log_dir)
            .with_context(|| format!("creating {}", log_dir.display()))?;
        Ok(Pipeline {
            id,
            topics,
            storage,
            redis_url,
            log_dir,
        })
    }

    fn base_env(&self) -> Vec<(String, String)> {
        let mut env = self.storage.env();
        env.extend([
            ("KAFKA_BROKERS".into(), testkit::brokers()),
            ("REDIS_URL".into(), self.redis_url.clone()),
            ("LOG_FORMAT".into(), "json".into()),
            ("RUST_LOG".into(), "info".into()),
        ]);
        env
    }

    /// The worker's environment: this pipeline's topics, group and raw container; quick batches.
    pub fn worker_env(&self) -> Vec<(String, String)> {
        let mut env = self.base_env();
        env.extend([
            ("KAFKA_TOPICS".into(), self.topics.csv()),
            ("KAFKA_GROUP_ID".into(), format!("{}-group", self.id)),
            ("BATCH_MAX_WAIT_MS".into(), "500".into()),
            ("METRICS_ADDR".into(), "127.0.0.1:0".into()),
            ("REDIS_EXPIRY".into(), "30".into()),
        ]);
        env
    }

    /// The watcher's environment: quick polls and retries.
    pub fn watch_env(&self) -> Vec<(String, String)> {
        let mut env = self.base_env();
        env.extend([
            ("WATCH_POLL_MS".into(), "300".into()),
            ("WATCH_BACKOFF_MS".into(), "200".into()),
            ("METRICS_ADDR".into(), "127.0.0.1:0".into()),
        ]);
        env
    }

    /// The simulator's environment: this pipeline's topics and a manifest in the log folder.
    pub fn simulator_env(&self, manifest: &Path) -> Vec<(String, String)> {
        let mut env = self.base_env();
        env.extend([
            ("TOPIC_LOBBY".into(), self.topics.lobby.clone()),
            ("TOPIC_GAME".into(), self.topics.game.clone()),
            ("TOPIC_CLIENT".into(), self.topics.client.clone()),
            ("MANIFEST_PATH".into(), manifest.display().to_string()),
            ("INSTANCE_ID".into(), self.id.clone()),
        ]);
        env
    }

    /// Starts `worker` (log `worker-{tag}.log`), `extra` overriding the defaults.
    pub fn spawn_worker(&self, tag: &str, extra: &[(&str, &str)]) -> anyhow::Result<Proc> {
        Proc::spawn(
            "worker",
            &[],
            merge(self.worker_env(), extra),
            &self.log_dir.join(format!("worker-{tag}.log")),
        )
    }

    /// Starts `transformer watch` (log `watch-{tag}.log`).
    pub fn spawn_watch(&self, tag: &str, extra: &[(&str, &str)]) -> anyhow::Result<Proc> {
        Proc::spawn(
            "transformer",
            &["watch"],
            merge(self.watch_env(), extra),
            &self.log_dir.join(format!("watch-{tag}.log")),
        )
    }

    /// Waits until everything in `manifest`'s scope is transformed (or `timeout`), then the run's
    /// summary, printed; panics naming the log folder when the pipeline does not settle.
    pub async fn settle(&self, manifest: &Manifest, timeout: Duration) -> crate::summary::Summary {
        let (raw, standard) = self.storage.stores().expect("stores");
        let summary =
            crate::summary::wait_and_summarize(raw, standard, Some(manifest), timeout, |m| {
                eprintln!("[{}] waiting: {m}", self.id)
            })
            .await
            .unwrap_or_else(|e| panic!("{e}; logs in {}", self.log_dir.display()));
        eprintln!("{summary}");
        summary
    }

    /// Runs the simulator to completion with `args` (e.g. `["play"]`) and returns its manifest.
    pub async fn simulate(
        &self,
        tag: &str,
        args: &[&str],
        extra: &[(&str, &str)],
    ) -> anyhow::Result<Manifest> {
        let manifest = self.log_dir.join(format!("manifest-{tag}.json"));
        let env = merge(self.simulator_env(&manifest), extra);
        let log = self.log_dir.join(format!("simulator-{tag}.log"));
        let mut proc = Proc::spawn("simulator", args, env, &log)?;
        let status = tokio::task::spawn_blocking(move || proc.wait())
            .await
            .context("joining the simulator")??;
        if !status.success() {
            bail!(
                "simulator {args:?} exited with {status}; see {}",
                log.display()
            );
        }
        Manifest::read(&manifest)
            .with_context(|| format!("reading the manifest; see {}", log.display()))
    }
}

/// `base` with `extra` overriding same-named variables.
pub fn merge(mut base: Vec<(String, String)>, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    for (k, v) in extra {
        base.retain(|(bk, _)| bk != k);
        base.push(((*k).to_owned(), (*v).to_owned()));
    }
    base
}

/// A running child with its output in a log file; killed (SIGKILL) on drop.
#[derive(Debug)]
pub struct Proc {
    /// Binary name.
    pub name: String,
    child: Child,
    /// Its stdout + stderr.
    pub log: PathBuf,
}

impl Proc {
    /// Spawns a workspace binary (`DATAFLOW_BIN_DIR`, default `target/debug`), appending its
    /// output to `log`.
    pub fn spawn(
        name: &str,
        args: &[&str],
        env: Vec<(String, String)>,
        log: &Path,
    ) -> anyhow::Result<Proc> {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening {}", log.display()))?;
        let child = Command::new(bin(name))
            .args(args)
            .envs(env)
            .stdin(Stdio::null())
            .stdout(out.try_clone().context("log handle")?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        Ok(Proc {
            name: name.to_owned(),
            child,
            log: log.to_owned(),
        })
    }

    /// Process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// `kill -9`: no flush, no commit, no lease release.
    pub fn kill9(&mut self) -> anyhow::Result<()> {
        self.child
            .kill()
            .with_context(|| format!("killing {}", self.name))?;
        self.child.wait().context("reaping")?;
        Ok(())
    }

    /// SIGTERM and wait up to `grace` for the exit status.
    pub fn terminate(&mut self, grace: Duration) -> anyhow::Result<ExitStatus> {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .context("running kill -TERM")?;
        if !ok.success() {
            bail!("kill -TERM {} failed", self.child.id());
        }
        let deadline = std::time::Instant::now() + grace;
        loop {
            if let Some(status) = self.child.try_wait().context("waiting")? {
                return Ok(status);
            }
            if std::time::Instant::now() > deadline {
                self.child.kill().ok();
                bail!(
                    "{} did not exit within {grace:?} of SIGTERM; see {}",
                    self.name,
                    self.log.display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for the exit status.
    pub fn wait(&mut self) -> anyhow::Result<ExitStatus> {
        self.child.wait().context("waiting")
    }

    /// Exit status if it has exited.
    pub fn try_wait(&mut self) -> anyhow::Result<Option<ExitStatus>> {
        self.child.try_wait().context("try_wait")
    }

    /// The log so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A workspace binary: `$DATAFLOW_BIN_DIR/{name}` when set (release runs of the long chaos; a
/// relative folder is the workspace's, since tests run from their crate's folder), else
/// `testkit::bin` (target/debug).
pub fn bin(name: &str) -> PathBuf {
    match std::env::var("DATAFLOW_BIN_DIR") {
        Ok(dir) if !dir.is_empty() => testkit::root().join(dir).join(name),
        _ => testkit::bin(name),
    }
}

/// The address a child's ops server bound, from its logs: the worker's `worker_started` line
/// (`ops_addr`) or an `ops_listening` line (`addr`); `None` until it is logged.
pub fn logged_addr(log: &str) -> Option<String> {
    log.lines().find_map(|l| {
        let v: serde_json::Value = serde_json::from_str(l).ok()?;
        let listening = v.get("event").and_then(|e| e.as_str()) == Some("ops_listening");
        v.get("ops_addr")
            .or_else(|| listening.then(|| v.get("addr")).flatten())
            .and_then(|a| a.as_str())
            .map(str::to_owned)
    })
}
