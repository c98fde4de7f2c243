//! `scripts/stack` itself: idempotent `up`, `down` that stops only its own processes, and a
//! one-line error naming the service, the address and the log file when a service cannot start.
//!
//! Runs a second stack on other loopback ports (STACK_ENV_FILE + STACK_DIR) so the main stack
//! the other suites use is never touched.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn stack(dir: &Path, env_file: &Path, args: &[&str]) -> Output {
    Command::new(testkit::root().join("scripts/stack"))
        .args(args)
        .env("STACK_DIR", dir)
        .env("STACK_ENV_FILE", env_file)
        .output()
        .expect("scripts/stack runs")
}

fn pids(dir: &Path) -> Vec<u32> {
    std::fs::read_dir(dir.join("pids"))
        .map(|rd| {
            rd.filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
                .filter_map(|s| s.trim().parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn pid_of(dir: &Path, name: &str) -> u32 {
    std::fs::read_to_string(dir.join("pids").join(format!("{name}.pid")))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| panic!("no pid file for {name}"))
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z "))
}

fn env_file(dir: &Path, kafka: u16, blob: u16, redis: u16) -> std::path::PathBuf {
    let path = dir.join("stack.env");
    std::fs::write(
        &path,
        format!(
            "KAFKA_BROKERS=127.0.0.1:{kafka}\nREDIS_URL=redis://127.0.0.1:{redis}/0\n\
             AZURE_STORAGE_USE_EMULATOR=true\nAZURITE_BLOB_STORAGE_URL=http://127.0.0.1:{blob}\n"
        ),
    )
    .expect("env file");
    path
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(testkit::unique(name));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[test]
fn up_twice_is_harmless_and_down_stops_only_our_processes() {
    let dir = temp_dir("stack-script");
    // Blob port + 1 and + 2 are queue and table: keep the three apart from other free ports.
    let (kafka, redis) = (free_port(), free_port());
    let blob = loop {
        let p = free_port();
        if p < 65000
            && TcpListener::bind(("127.0.0.1", p + 1)).is_ok()
            && TcpListener::bind(("127.0.0.1", p + 2)).is_ok()
        {
            break p;
        }
    };
    let env = env_file(&dir, kafka, blob, redis);

    let first = stack(&dir, &env, &["up"]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let started = pids(&dir);
    assert_eq!(
        started.len(),
        3,
        "tansu, azurite and redis started: {started:?}"
    );
    assert!(started.iter().all(|p| alive(*p)));

    let second = stack(&dir, &env, &["up"]);
    let log = String::from_utf8_lossy(&second.stderr);
    assert!(second.status.success(), "{log}");
    assert!(log.contains("reused"), "second up reuses what runs: {log}");
    assert_eq!(pids(&dir), started, "no second copy was started");

    let status = stack(&dir, &env, &["status"]);
    let text = String::from_utf8_lossy(&status.stdout);
    assert_eq!(text.matches(" up ").count(), 3, "{text}");

    // Restarting Azurite replaces that one process (with telemetry off) and keeps the others.
    let old_azurite = pid_of(&dir, "azurite");
    let restart = stack(&dir, &env, &["restart", "azurite"]);
    assert!(
        restart.status.success(),
        "{}",
        String::from_utf8_lossy(&restart.stderr)
    );
    let new_azurite = pid_of(&dir, "azurite");
    assert_ne!(new_azurite, old_azurite);
    assert!(!alive(old_azurite), "the old Azurite is stopped");
    let cmdline = std::fs::read(format!("/proc/{new_azurite}/cmdline")).expect("cmdline");
    assert!(
        String::from_utf8_lossy(&cmdline).contains("--disableTelemetry"),
        "Azurite runs without telemetry"
    );
    let mut after = pids(&dir);
    after.sort_unstable();
    let mut expected: Vec<u32> = started
        .iter()
        .map(|p| if *p == old_azurite { new_azurite } else { *p })
        .collect();
    expected.sort_unstable();
    assert_eq!(after, expected, "only Azurite was replaced");
    let status = stack(&dir, &env, &["status"]);
    let text = String::from_utf8_lossy(&status.stdout);
    assert_eq!(text.matches(" up ").count(), 3, "{text}");
    let started = after;

    let down = stack(&dir, &env, &["down"]);
    assert!(down.status.success());
    // `down` signals and returns; give the processes time to exit (it kill -9s after 5 s).
    let gone_by = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while started.iter().any(|p| alive(*p)) && std::time::Instant::now() < gone_by {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        started.iter().all(|p| !alive(*p)),
        "every process we started is gone"
    );
    assert!(pids(&dir).is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_service_that_cannot_start_is_named_with_its_address_and_log() {
    let dir = temp_dir("stack-fail");
    // Something that is not Azurite holds the blob port: it accepts, never answers HTTP, and
    // Azurite cannot bind it.
    let squatter = TcpListener::bind("127.0.0.1:0").expect("bind");
    let blob = squatter.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for conn in squatter.incoming() {
            drop(conn);
        }
    });
    let env = env_file(&dir, free_port(), blob, free_port());
    let out = stack(&dir, &env, &["up"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    let line = err
        .lines()
        .find(|l| l.contains("ERROR"))
        .expect("an error line");
    assert!(line.contains("azurite"), "{line}");
    assert!(line.contains(&format!("127.0.0.1:{blob}")), "{line}");
    assert!(line.contains("azurite.log"), "{line}");
    let _ = stack(&dir, &env, &["down"]);
    let _ = std::fs::remove_dir_all(&dir);
}
