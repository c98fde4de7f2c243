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
}

#[test]
fn transform_function_is_an_event_grid_blob_trigger_on_raw() {
    let f = json(app().join("transform/function.json"));
    let b = &f["bindings"][0];
    assert_eq!(b["type"], "blobTrigger");
    assert_eq!(b["name"], "triggerBlob");
    // The container follows the deployment's RAW_CONTAINER app setting (binding expression).
    assert_eq!(b["path"], "%RAW_CONTAINER%/{name}");
    assert_eq!(b["dataType"], "binary");
    assert_eq!(b["connection"], "RawStorage");
    assert_eq!(b["source"], "EventGrid");
    let settings = json(app().join("local.settings.json.example"));
    assert_eq!(settings["Values"]["FUNCTIONS_WORKER_RUNTIME"], "Custom");
    assert_eq!(settings["Values"]["RAW_CONTAINER"], model::RAW_CONTAINER);
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
        "transformer 0o100755",
    ] {
        assert!(
            listing.lines().any(|l| l.starts_with(want)),
            "{want} missing in:\n{listing}"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}
