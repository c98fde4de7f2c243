//! The pipeline under test as child processes: `worker` and `transformer watch`, started from
//! the bin folder ([`resolve_bin_dir`]) with their whole configuration passed in `Command::envs`
//! (never by mutating our own environment), logs to files, killed when the bench ends or drops
//! them.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use service::config::ConfigError;
use tokio::process::{Child, Command};

/// The binaries the latency bench starts.
pub const CHILD_BINARIES: [&str; 2] = ["worker", "transformer"];

/// `DATAFLOW_BIN_DIR` if set (it must hold both binaries), else `target/release` when it holds
/// both, else `target/debug`.
pub fn resolve_bin_dir(configured: Option<&Path>, root: &Path) -> Result<PathBuf, ConfigError> {
    let holds_all = |dir: &Path| CHILD_BINARIES.iter().all(|b| dir.join(b).is_file());
    if let Some(dir) = configured {
        let dir = if dir.is_absolute() {
            dir.to_path_buf()
        } else {
            root.join(dir)
        };
        if !holds_all(&dir) {
            return Err(ConfigError::invalid(
                "DATAFLOW_BIN_DIR",
                format!(
                    "{} does not hold both `worker` and `transformer`: build them (cargo build --workspace --bins) or point at another folder",
                    dir.display()
                ),
            ));
        }
        return Ok(dir);
    }
    ["release", "debug"]
        .iter()
        .map(|p| root.join("target").join(p))
        .find(|d| holds_all(d))
        .ok_or_else(|| {
            ConfigError::invalid(
                "DATAFLOW_BIN_DIR",
                "unset, and neither target/release nor target/debug holds `worker` and `transformer`: run cargo build --workspace --bins",
            )
        })
}

/// Errors of the children.
#[derive(Debug, thiserror::Error)]
pub enum ChildError {
    /// The log file could not be created.
    #[error("creating log file {path}: {source}")]
    Log {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The process did not start.
    #[error("starting {bin}: {source}")]
    Spawn {
        /// The binary.
        bin: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The process exited while the bench still needed it.
    #[error("{name} exited early ({status}); last log lines from {log}:\n{tail}")]
    Exited {
        /// Which child.
        name: &'static str,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// Its log file.
        log: PathBuf,
        /// The end of that log.
        tail: String,
    },
    /// Waiting on the process failed.
    #[error("waiting for {name}: {source}")]
    Wait {
        /// Which child.
        name: &'static str,
        /// Why.
        source: std::io::Error,
    },
}

/// A running child process.
#[derive(Debug)]
pub struct Running {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

/// Starts `bin_dir/bin args…` with exactly the variables in `envs` added, stdout and stderr
/// appended to `log_dir/{name}.log`.
pub fn start(
    name: &'static str,
    bin_dir: &Path,
    bin: &str,
    args: &[&str],
    envs: &[(String, String)],
    log_dir: &Path,
) -> Result<Running, ChildError> {
    let log = log_dir.join(format!("{name}.log"));
    let open = || {
        std::fs::create_dir_all(log_dir)?;
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)?;
        Ok::<_, std::io::Error>((f.try_clone()?, f))
    };
    let (out, err) = open().map_err(|source| ChildError::Log {
        path: log.clone(),
        source,
    })?;
    let path = bin_dir.join(bin);
    let child = Command::new(&path)
        .args(args)
        .envs(envs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        // A bench that panics or is interrupted must not leave a worker consuming in the background.
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| ChildError::Spawn { bin: path, source })?;
    Ok(Running { name, child, log })
}

impl Running {
    /// Fails with the log tail when the child has exited.
    pub fn check_alive(&mut self) -> Result<(), ChildError> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(ChildError::Exited {
                name: self.name,
                status,
                log: self.log.clone(),
                tail: tail(&self.log, 15),
            }),
            Err(source) => Err(ChildError::Wait {
                name: self.name,
                source,
            }),
        }
    }

    /// Kills the child and reaps it.
    pub async fn kill(mut self) -> Result<(), ChildError> {
        let name = self.name;
        // Already gone is fine: the bench has its numbers.
        if self
            .child
            .try_wait()
            .map_err(|source| ChildError::Wait { name, source })?
            .is_some()
        {
            return Ok(());
        }
        self.child
            .kill()
            .await
            .map_err(|source| ChildError::Wait { name, source })
    }

    /// The child's process id (none once reaped).
    pub fn id(&self) -> Option<u32> {
        self.child.id()
    }

    /// The child's log file.
    pub fn log(&self) -> &Path {
        &self.log
    }
}

/// The last `n` lines of a file (empty when unreadable).
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_exited_child_is_reported_with_its_log_tail() {
        let dir = std::env::temp_dir().join(testkit::unique("bench-child"));
        let envs = vec![("GREETING".to_owned(), "hello from env".to_owned())];
        let mut child = start(
            "shell",
            Path::new("/bin"),
            "sh",
            &["-c", "echo $GREETING; exit 3"],
            &envs,
            &dir,
        )
        .expect("starts");
        let err = testkit::wait_for(
            "the child to exit",
            std::time::Duration::from_secs(10),
            || {
                let r = child.check_alive();
                async move { r.err() }
            },
        )
        .await
        .expect("exits");
        let text = err.to_string();
        assert!(text.starts_with("shell exited early"), "{text}");
        assert!(text.contains("hello from env"), "{text}");
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    #[tokio::test]
    async fn kill_stops_a_running_child() {
        let dir = std::env::temp_dir().join(testkit::unique("bench-child"));
        let mut child =
            start("sleeper", Path::new("/bin"), "sleep", &["60"], &[], &dir).expect("starts");
        child.check_alive().expect("still running");
        child.kill().await.expect("killed");
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn a_bin_dir_without_the_binaries_is_rejected_naming_dataflow_bin_dir() {
        let empty = std::env::temp_dir().join(testkit::unique("bench-empty-bin"));
        std::fs::create_dir_all(&empty).expect("temp dir");
        let err = resolve_bin_dir(Some(&empty), Path::new("/")).expect_err("no binaries");
        assert!(
            err.to_string().starts_with("DATAFLOW_BIN_DIR is invalid:"),
            "{err}"
        );
        for b in CHILD_BINARIES {
            std::fs::write(empty.join(b), b"").expect("fake binary");
        }
        assert_eq!(
            resolve_bin_dir(Some(&empty), Path::new("/")).expect("both present"),
            empty
        );
        std::fs::remove_dir_all(&empty).expect("clean up");
    }
}
