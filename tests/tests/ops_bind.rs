//! Where the ops port listens: on loopback unless told otherwise, because it serves `/runs`
//! (which starts replays) next to `/metrics`; and on 0.0.0.0, said explicitly, in the container
//! images, so Prometheus in compose still scrapes them (compose's own `METRICS_ADDR` entries are
//! checked by compose/tests/composecheck.py). Offline.

use std::collections::BTreeMap;
use std::path::Path;

fn vars(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn every_binary_binds_its_ops_port_to_loopback_by_default() {
    let worker = worker::config::Settings::from_vars(vars(&[("KAFKA_BROKERS", "b:9092")]))
        .expect("worker defaults");
    assert_eq!(worker.metrics_addr.to_string(), "127.0.0.1:9464");

    let transformer =
        transformer::config::Settings::from_vars(vars(&[])).expect("transformer defaults");
    assert_eq!(transformer.metrics_addr.to_string(), "127.0.0.1:9465");

    let simulator =
        simulator::Settings::from_vars(vars(&[("KAFKA_BROKERS", "b:9092")])).expect("simulator");
    assert_eq!(
        simulator.metrics_addr, None,
        "the simulator serves no ops port unless asked"
    );
}

/// `ENV METRICS_ADDR=...` of each `FROM ... AS <stage>` of the Dockerfile.
fn metrics_addr_per_stage(dockerfile: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stage = None;
    for line in dockerfile.lines().map(str::trim) {
        if let Some(from) = line.strip_prefix("FROM ") {
            stage = from.rsplit_once(" AS ").map(|(_, s)| s.trim().to_owned());
        } else if let (Some(s), Some(addr)) = (&stage, line.strip_prefix("ENV METRICS_ADDR=")) {
            out.insert(s.clone(), addr.trim().to_owned());
        }
    }
    out
}

#[test]
fn every_image_binds_its_ops_port_to_all_interfaces_explicitly() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Dockerfile");
    let text = std::fs::read_to_string(&path).expect("Dockerfile");
    let stages = metrics_addr_per_stage(&text);
    for (stage, port) in [
        ("worker", "9464"),
        ("transformer", "9465"),
        ("simulator", "9466"),
    ] {
        assert_eq!(
            stages.get(stage).map(String::as_str),
            Some(format!("0.0.0.0:{port}").as_str()),
            "stage {stage} of the Dockerfile must set METRICS_ADDR=0.0.0.0:{port} (the binaries default to loopback): {stages:?}"
        );
    }
}

#[test]
fn the_dockerfile_reader_finds_each_stages_address() {
    let text = "FROM a AS build\nENV X=1\nFROM runtime AS worker\nENV METRICS_ADDR=0.0.0.0:1\nFROM runtime AS other\n";
    let got = metrics_addr_per_stage(text);
    assert_eq!(
        got,
        BTreeMap::from([("worker".to_owned(), "0.0.0.0:1".to_owned())])
    );
}
