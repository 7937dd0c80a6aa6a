//! A second real client: the official Python SDK (`cloudflare` 5.x, pinned in
//! `tools/python/requirements.txt`, installed into `tools/python/.venv` by `.ci/run`) drives the
//! emulator process through `python_sdk.py`: it writes KV, D1, R2, Workers, DNS and Pages resources, walks
//! every list with the SDK's own auto-paginators (with and without `per_page`) and checks that
//! each object carries the fields the SDK's types mark as required. This test then reads the
//! account back through the raw API.
//!
//! Without the virtual environment the test fails when `CI=true` (CI must run it); elsewhere it
//! prints a loud SKIPPED notice with the command that creates it.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::TestEmulator;

/// Upper bound for the whole script (a few hundred requests on a busy 2-core runner).
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(300);

const SETUP_HINT: &str = "python3 -m venv tools/python/.venv && \
     tools/python/.venv/bin/pip install -r tools/python/requirements.txt";

fn repo_path(rest: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rest)
}

/// The virtual environment's python with the SDK importable, or `None` after a loud notice
/// (never under `CI=true`, where a missing environment fails the test).
fn python_or_skip(test: &str) -> Option<PathBuf> {
    let python = repo_path("tools/python/.venv/bin/python");
    let importable = python.exists()
        && Command::new(&python)
            .args(["-c", "import cloudflare"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
    if importable {
        return Some(python);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!(
            "Python SDK test `{test}` needs {} with the `cloudflare` package, and CI=true: \
             CI must run it.\nhint: {SETUP_HINT} (.ci/run does this)",
            python.display()
        );
    }
    let notice = format!(
        "\n\
         ************************************************************************\n\
         *** SKIPPED: Python SDK test `{test}`\n\
         *** tools/python/.venv with the pinned `cloudflare` SDK is missing.\n\
         *** Nothing was checked against the Python SDK. Create it with:\n\
         ***   {SETUP_HINT}\n\
         ************************************************************************\n"
    );
    // The real stderr, so the harness's capture cannot hide it.
    let _ = std::io::Write::write_all(&mut std::io::stderr(), notice.as_bytes());
    None
}

#[test]
fn the_python_sdk_lists_and_reads_every_kind_the_emulator_serves() {
    let Some(python) =
        python_or_skip("the_python_sdk_lists_and_reads_every_kind_the_emulator_serves")
    else {
        return;
    };
    let emulator = TestEmulator::start_with_zones(&["example.com"]);
    let zone = flareops::emulator::zone_id("example.com");
    let logs = tempfile::tempdir().expect("temp dir for the script's output");
    let stdout_path = logs.path().join("stdout");
    let stderr_path = logs.path().join("stderr");
    let mut command = Command::new(&python);
    command
        .arg(repo_path("tests/it/python_sdk.py"))
        .current_dir(logs.path())
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).expect("stdout file"))
        .stderr(std::fs::File::create(&stderr_path).expect("stderr file"));
    for name in [
        "CLOUDFLARE_API_KEY",
        "CLOUDFLARE_EMAIL",
        "CLOUDFLARE_API_USER_SERVICE_KEY",
        "CLOUDFLARE_CUSTOM_HEADERS",
        "PYTHONPATH",
        "PYTHONHOME",
    ] {
        command.env_remove(name);
    }
    command
        .env("CLOUDFLARE_BASE_URL", &emulator.base_url)
        .env("CLOUDFLARE_API_TOKEN", &emulator.token)
        .env("FLAREOPS_ACCOUNT_ID", &emulator.account_id)
        .env("FLAREOPS_ZONE_ID", &zone)
        .env("PYTHONDONTWRITEBYTECODE", "1");
    let started = Instant::now();
    let mut child = command.spawn().expect("start the Python SDK script");
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for python") {
            break status;
        }
        if started.elapsed() > SCRIPT_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the Python SDK script did not finish within {SCRIPT_TIMEOUT:?} (a paginator that never ends?)\n--- stderr\n{}",
                std::fs::read_to_string(&stderr_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = std::fs::read_to_string(&stdout_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    assert!(
        status.success(),
        "the Python SDK script failed ({status})\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    let summary: Value = stdout
        .lines()
        .last()
        .and_then(|line| serde_json::from_str(line).ok())
        .unwrap_or_else(|| panic!("no JSON summary on stdout:\n{stdout}"));
    for (kind, count) in [
        ("kv_namespaces", 12),
        ("kv_keys", 25),
        ("d1_databases", 11),
        ("r2_objects", 6),
        ("worker_versions", 5),
        ("dns_records", 10),
        ("pages_projects", 3),
    ] {
        assert_eq!(summary[kind], json!(count), "{kind}: {summary}");
    }
    assert!(
        summary["required_checks"].as_u64().unwrap_or(0) >= 200,
        "the SDK's required fields were checked on every object: {summary}"
    );

    // What the SDK wrote is in the account.
    let namespaces = emulator.get(&emulator.account_path("/storage/kv/namespaces?per_page=100"));
    assert_eq!(
        namespaces["result"].as_array().map(Vec::len),
        Some(12),
        "{namespaces}"
    );
    let objects = emulator.get(&emulator.account_path("/r2/buckets/sdk-bucket/objects"));
    let keys: Vec<&str> = objects["result"]
        .as_array()
        .expect("objects")
        .iter()
        .filter_map(|object| object["key"].as_str())
        .collect();
    assert_eq!(
        keys,
        [
            "photos/0.txt",
            "photos/1.txt",
            "photos/2.txt",
            "photos/3.txt",
            "photos/4.txt"
        ],
        "readme.md was deleted"
    );
    let secrets = emulator.get(&emulator.account_path("/workers/scripts/sdk-worker/secrets"));
    assert_eq!(
        secrets["result"],
        json!([{"name": "API_KEY", "type": "secret_text"}])
    );
    let stats = emulator.stats();
    for (endpoint, _) in stats["endpoints"].as_object().expect("endpoints") {
        assert!(
            !endpoint.ends_with("(no route)"),
            "the SDK called a route the emulator does not serve: {stats}"
        );
    }
}
