//! The function app folder matches what the Functions host needs, and `scripts/package-function`
//! zips it (with a stand-in binary: the musl release build is not run in tests).

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

fn app() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("function")
}

fn json(path: PathBuf) -> serde_json::Value {
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn host_json_runs_the_binary_as_a_custom_handler() {
    let host = json(app().join("host.json"));
    assert_eq!(host["version"], "2.0");
    let ch = &host["customHandler"];
    assert_eq!(ch["description"]["defaultExecutablePath"], "transformer");
    assert_eq!(ch["description"]["arguments"], serde_json::json!(["serve"]));
    assert_eq!(ch["enableForwardingHttpRequest"], false);
    assert_eq!(host["extensionBundle"]["version"], "[4.*, 5.0.0)");
    // No blob trigger any more: its concurrency cap would be a knob that bounds nothing. The
    // handler bounds transforms itself (WATCH_CONCURRENCY; docs/DESIGN.md, "Serve").
    assert!(
        host["extensions"].get("blobs").is_none(),
        "extensions.blobs left in host.json: {host}"
    );
}

#[test]
fn transform_function_is_an_event_grid_trigger_named_event() {
    let f = json(app().join("transform/function.json"));
    let bindings = f["bindings"].as_array().expect("bindings");
    assert_eq!(bindings.len(), 1, "the trigger only: {f}");
    let b = &bindings[0];
    assert_eq!(b["type"], "eventGridTrigger");
    assert_eq!(b["direction"], "in");
    // `Data.event` in the host's request; the handler reads any Data key holding an event.
    assert_eq!(b["name"], "event");
    for gone in ["path", "connection", "dataType", "source"] {
        assert!(
            b.get(gone).is_none(),
            "blob trigger setting `{gone}` left: {b}"
        );
    }
    let settings = json(app().join("local.settings.json.example"));
    let values = &settings["Values"];
    assert_eq!(values["FUNCTIONS_WORKER_RUNTIME"], "Custom");
    // The handler takes the raw container that events must name from RAW_URL.
    assert_eq!(
        values["RAW_URL"],
        format!("az://{}", model::RAW_CONTAINER).as_str()
    );
    assert!(values.get("RAW_CONTAINER").is_none() && values.get("RawStorage").is_none());
}

#[test]
fn package_script_zips_the_app_with_an_executable_handler() {
    let root = testkit::root();
    let dir = std::env::temp_dir().join(testkit::unique("pkg"));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let fake = dir.join("transformer");
    std::fs::write(&fake, "#!/bin/sh\necho stand-in\n").expect("write");
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let out = std::process::Command::new(root.join("scripts/package-function"))
        .arg("--binary")
        .arg(&fake)
        .output()
        .expect("run scripts/package-function");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let zip = root.join("transformer/dist/transformer-function.zip");
    let list = std::process::Command::new("python3")
        .args(["-c", "import sys, zipfile\nfor i in zipfile.ZipFile(sys.argv[1]).infolist(): print(i.filename, oct(i.external_attr >> 16))"])
        .arg(&zip)
        .output()
        .expect("python3 lists the zip");
    let listing = String::from_utf8_lossy(&list.stdout);
    for want in [
        "host.json",
        ".funcignore",
        "transform/function.json",
        "commit/function.json",
        "compact/function.json",
        "vacuum/function.json",
        "transformer 0o100755",
    ] {
        assert!(
            listing.lines().any(|l| l.starts_with(want)),
            "{want} missing in:\n{listing}"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}
