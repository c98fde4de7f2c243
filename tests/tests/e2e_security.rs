//! Secrets in the configuration (storage account key, SAS, Redis password, SASL password) never
//! reach a log line, `--help`, a panic or error message, `/metrics` or `/readyz`.
//!
//! Each binary runs as a child with fake secrets that still let it start (or make it fail fast),
//! and everything it prints and serves is searched for each secret (and, for the base64 account
//! key, its decoded text).

use std::time::Duration;

use tests::pipeline::{Proc, bin, logged_addr};

const SASL: &str = "sasl-pw-5e1f0c2b9a";
const REDIS_PW: &str = "redis-pw-8d3a71c4e6";
/// base64 of `account-key-2b7d9e41f0c3` (object_store requires a base64 key).
const ACCOUNT_KEY: &str = "YWNjb3VudC1rZXktMmI3ZDllNDFmMGMz";
const ACCOUNT_KEY_TEXT: &str = "account-key-2b7d9e41f0c3";
const SAS: &str = "sv=2022-11-02&ss=b&srt=co&sp=rl&sig=sas-sig-4c9e2a7b1d";
const SAS_SIG: &str = "sas-sig-4c9e2a7b1d";

const SECRETS: [&str; 6] = [SASL, REDIS_PW, ACCOUNT_KEY, ACCOUNT_KEY_TEXT, SAS, SAS_SIG];

fn assert_clean(what: &str, text: &str) {
    for s in SECRETS {
        if let Some(at) = text.find(s) {
            let from = text[..at].rfind('\n').map_or(0, |i| i + 1);
            let line: String = text[from..]
                .lines()
                .next()
                .unwrap_or_default()
                .chars()
                .take(400)
                .collect();
            panic!("{what} leaks a secret ({s}): {line}");
        }
    }
}

fn redis_url() -> String {
    // The stack's Redis has no password: AUTH fails, and that error path must not echo it.
    let plain = testkit::var("REDIS_URL");
    plain.replacen("redis://", &format!("redis://:{REDIS_PW}@"), 1)
}

fn secret_env() -> Vec<(String, String)> {
    let mut env = testkit::azure_env();
    env.extend(
        [
            ("KAFKA_BROKERS", testkit::brokers().as_str()),
            ("REDIS_URL", redis_url().as_str()),
            ("KAFKA_SASL_PASSWORD", SASL),
            ("AZURE_STORAGE_ACCOUNT_KEY", ACCOUNT_KEY),
            ("AZURE_STORAGE_SAS_KEY", SAS),
            ("METRICS_ADDR", "127.0.0.1:0"),
            ("LOG_FORMAT", "json"),
            ("RUST_LOG", "debug"),
            ("RUST_BACKTRACE", "1"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    env
}

fn with(extra: &[(&str, &str)]) -> Vec<(String, String)> {
    tests::pipeline::merge(secret_env(), extra)
}

fn log_path(name: &str) -> std::path::PathBuf {
    let dir = testkit::root()
        .join(".stack/logs/e2e")
        .join(testkit::unique("e2e-security"));
    std::fs::create_dir_all(&dir).expect("log dir");
    dir.join(format!("{name}.log"))
}

/// Runs to completion (bounded) and returns (success, output).
async fn run_to_end(name: &str, args: &[&str], env: Vec<(String, String)>) -> (bool, String) {
    let log = log_path(&format!(
        "{name}-{}",
        args.first().unwrap_or(&"run").trim_start_matches('-')
    ));
    let mut proc = Proc::spawn(name, args, env, &log).expect("spawn");
    tokio::task::spawn_blocking(move || {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(s) = proc.try_wait().expect("wait") {
                return (s.success(), proc.output());
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{} did not finish; see {}",
                proc.name,
                proc.log.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    })
    .await
    .expect("join")
}

/// GET an ops path; `None` when nothing answers (the child has exited).
async fn scrape(addr: &str, path: &str) -> Option<String> {
    let url = format!("http://{addr}{path}");
    let resp = reqwest::get(&url).await.ok()?;
    let status = resp.status();
    // /readyz answers 503 while a dependency is refused; the others must answer 200.
    assert!(
        status.is_success() || path == "/readyz",
        "GET {url}: {status}"
    );
    Some(resp.text().await.expect("body"))
}

/// Starts a long-running child, waits for its ops address, scrapes /metrics and /readyz a few
/// times (readyz runs the probes that fail on the fake credentials), then stops it.
async fn serve_and_scrape(name: &str, args: &[&str], env: Vec<(String, String)>) -> String {
    let log = log_path(&format!("{name}-serve"));
    let mut proc = Proc::spawn(name, args, env, &log).expect("spawn");
    let addr = testkit::wait_for(
        &format!("{name} to log its ops address"),
        Duration::from_secs(30),
        || {
            let out = proc.output();
            let exited = matches!(proc.try_wait(), Ok(Some(_)));
            async move {
                assert!(!exited, "{name} exited before serving: {out}");
                logged_addr(&out)
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}: {}", proc.output()));
    let mut served = String::new();
    let mut answered = 0;
    // A few rounds, so errors of background work (connects, retries) have time to be logged.
    'rounds: for _ in 0..3 {
        for path in ["/metrics", "/readyz", "/healthz"] {
            match scrape(&addr, path).await {
                Some(body) => {
                    if path == "/readyz" && answered < 3 {
                        eprintln!("{name} /readyz: {body}");
                    }
                    served.push_str(&body);
                    served.push('\n');
                    answered += 1;
                }
                None if matches!(proc.try_wait(), Ok(Some(_))) => break 'rounds,
                None => panic!("{name} at {addr} does not answer {path}: {}", proc.output()),
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        answered >= 3,
        "{name} served /metrics, /readyz and /healthz at least once"
    );
    let _ = proc.terminate(Duration::from_secs(20));
    format!("{served}\n{}", proc.output())
}

#[tokio::test]
async fn help_never_shows_secrets_from_the_environment() {
    for (name, args) in [
        ("worker", &["--help"][..]),
        ("transformer", &["--help"][..]),
        ("transformer", &["watch", "--help"][..]),
        ("simulator", &["--help"][..]),
        ("simulator", &["flood", "--help"][..]),
    ] {
        let out = std::process::Command::new(bin(name))
            .args(args)
            .envs(secret_env())
            .output()
            .expect("run --help");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() && text.contains("Usage"),
            "{name} {args:?}: {text}"
        );
        assert_clean(&format!("{name} {args:?}"), &text);
    }
}

#[tokio::test]
async fn config_errors_fail_fast_without_echoing_secrets() {
    type Case<'a> = (&'a str, Vec<&'a str>, Vec<(String, String)>);
    let cases: Vec<Case<'_>> = vec![
        // Bad URLs that carry a password or a SAS (as pasted from the portal): the error names
        // the variable, never the credential.
        (
            "worker",
            vec![],
            with(&[(
                "REDIS_URL",
                &format!("notredis://:{REDIS_PW}@127.0.0.1:1/0"),
            )]),
        ),
        (
            "worker",
            vec![],
            with(&[
                ("KAFKA_SECURITY_PROTOCOL", "sasl_plaintext"),
                ("KAFKA_SASL_MECHANISM", "PLAIN"),
                ("BATCH_SIZE", "0"),
            ]),
        ),
        (
            "transformer",
            vec!["watch"],
            with(&[("RAW_URL", &format!("ftp://raw?{SAS}"))]),
        ),
        (
            "transformer",
            vec!["watch"],
            with(&[("MAX_VALUE_BYTES", "lots")]),
        ),
        ("simulator", vec!["play"], with(&[("PLAYERS", "-1")])),
        // Redis refuses AUTH (no password configured): a runtime failure at connect.
        (
            "simulator",
            vec!["play"],
            with(&[
                ("PLAYERS", "1"),
                ("CLIENT_GAMES", "1"),
                ("TOPIC_LOBBY", "sec-none-lobby"),
            ]),
        ),
    ];
    for (name, args, env) in cases {
        let (ok, out) = run_to_end(name, &args, env).await;
        assert!(!ok, "{name} {args:?} should fail: {out}");
        assert!(!out.trim().is_empty(), "{name} {args:?} says why it failed");
        eprintln!(
            "{name} {args:?}: {}",
            out.lines().last().unwrap_or_default()
        );
        assert_clean(&format!("{name} {args:?} failing"), &out);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn running_services_keep_secrets_out_of_logs_metrics_and_readyz() {
    let (raw, _) = testkit::new_container("e2e-sec-raw").expect("raw");
    let (standard, _) = testkit::new_container("e2e-sec-std").expect("standard");
    let topic = testkit::unique("e2e-sec");
    let (lobby, game, client) = (
        format!("{topic}-lobby"),
        format!("{topic}-game"),
        format!("{topic}-client"),
    );
    for t in [&topic, &lobby, &game, &client] {
        testkit::create_topic(t, 1).await.expect("topic");
    }

    // Worker: SASL settings against a broker without SASL, a Redis password Redis refuses, and an
    // account key Azurite refuses. It starts, serves ops, and logs the failures.
    let worker = serve_and_scrape(
        "worker",
        &[],
        with(&[
            ("KAFKA_TOPICS", &topic),
            ("KAFKA_GROUP_ID", &topic),
            ("KAFKA_SECURITY_PROTOCOL", "sasl_plaintext"),
            ("KAFKA_SASL_MECHANISM", "PLAIN"),
            ("KAFKA_SASL_USERNAME", "dataflow"),
            ("RAW_URL", &raw),
        ]),
    )
    .await;
    assert_clean("worker (logs, /metrics, /readyz)", &worker);

    let watch = serve_and_scrape(
        "transformer",
        &["watch"],
        with(&[("RAW_URL", &raw), ("STANDARD_URL", &standard)]),
    )
    .await;
    assert_clean("transformer watch (logs, /metrics, /readyz)", &watch);

    let sim = serve_and_scrape(
        "simulator",
        &["flood", "--messages", "10000"],
        with(&[
            ("RATE_LIMIT", "500"),
            ("TOPIC_LOBBY", &lobby),
            ("TOPIC_GAME", &game),
            ("TOPIC_CLIENT", &client),
            ("MANIFEST_PATH", "/dev/null"),
        ]),
    )
    .await;
    assert_clean("simulator flood (logs, /metrics, /readyz)", &sim);
}
