//! Saved plans through the real binary: `plan --out FILE` then
//! `apply FILE`, and every refusal (account changed, manifests changed,
//! unknown format) costing zero write requests.

use predicates::prelude::*;
use predicates::str::contains;
use serde_json::{Value, json};

use crate::support::{TestEmulator, flareops, project, write};

const STORAGE: &str = "kv_namespaces:
  users:
    title: kk-users-${env}
  reviews:
    title: kk-reviews-${env}
";

const WORKER: &str = "workers:
  api:
    name: api-${env}
    main: workers/api/index.js
    compatibility_date: \"2025-01-15\"
    bindings:
      USERS: {kv_namespace: users}
      GREETING: {text: \"hello\"}
    secrets:
      S: {from_env: CANARY_VAR}
    routes: [\"api-${env}.example.com/*\"]
";

const CODE: &str = "export default {\n  async fetch(request, env) {\n    return new Response(env.GREETING);\n  },\n};\n";

const CANARY: &str = "canary-secret-7f3a9c1e5b";

fn environment(emulator: &TestEmulator) -> String {
    format!("account_id: {}\nzone: example.com\n", emulator.account_id)
}

/// Requests that may change the account, summed over the emulator's stats.
fn writes(emulator: &TestEmulator) -> u64 {
    let stats = emulator.stats();
    stats["endpoints"]
        .as_object()
        .expect("stats.endpoints")
        .iter()
        .filter(|(key, _)| {
            ["POST ", "PUT ", "DELETE ", "PATCH "]
                .iter()
                .any(|method| key.starts_with(method))
        })
        .map(|(_, count)| count.as_u64().unwrap_or(0))
        .sum()
}

fn save_plan(root: &std::path::Path, emulator: &TestEmulator) {
    flareops(root, emulator)
        .args(["plan", "--env", "staging", "--out", "plan.json"])
        .env("CANARY_VAR", CANARY)
        .assert()
        .success()
        .stdout(contains("+ create kv_namespaces.users"))
        .stderr(contains("Saved the plan to plan.json"));
}

#[test]
fn a_saved_plan_applies_and_holds_no_secret() {
    let emulator = TestEmulator::start_with_zones(&["example.com"]);
    let root = project(&[
        ("infra/storage.yaml", STORAGE),
        ("infra/workers.yaml", WORKER),
        ("workers/api/index.js", CODE),
        ("environments/staging.yaml", &environment(&emulator)),
    ]);
    save_plan(root.path(), &emulator);
    let text = std::fs::read_to_string(root.path().join("plan.json")).expect("plan file");
    assert!(!text.contains(CANARY), "the canary leaked: {text}");
    assert!(!text.contains(&emulator.token), "the token leaked");
    let saved: Value = serde_json::from_str(&text).expect("plan file is JSON");
    assert_eq!(saved["format_version"], 2);
    assert_eq!(saved["environment"], "staging");
    assert_eq!(saved["account_id"], emulator.account_id.as_str());
    assert_eq!(
        saved["manifest_fingerprint"].as_str().map(str::len),
        Some(64)
    );
    assert_eq!(saved["live_fingerprint"].as_str().map(str::len), Some(64));
    // No temporary file is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(root.path())
        .expect("project dir")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // Apply needs --env or a file, never both.
    flareops(root.path(), &emulator)
        .args(["apply", "plan.json", "--env", "staging", "--yes"])
        .assert()
        .code(1);
    flareops(root.path(), &emulator)
        .args(["apply", "--yes"])
        .assert()
        .code(1);

    flareops(root.path(), &emulator)
        .args(["apply", "plan.json", "--yes"])
        .env("CANARY_VAR", CANARY)
        .assert()
        .success()
        .stdout(contains("Apply complete: 3 of 3 changes made."))
        .stdout(contains(CANARY).not())
        .stderr(contains(CANARY).not());
    flareops(root.path(), &emulator)
        .args(["plan", "--env", "staging", "--detailed-exitcode"])
        .env("CANARY_VAR", CANARY)
        .assert()
        .code(0)
        .stdout(contains("No changes."));
}

#[test]
fn a_changed_worker_module_refuses_the_saved_plan() {
    let emulator = TestEmulator::start_with_zones(&["example.com"]);
    let root = project(&[
        ("infra/storage.yaml", STORAGE),
        ("infra/workers.yaml", WORKER),
        ("workers/api/index.js", CODE),
        ("environments/staging.yaml", &environment(&emulator)),
    ]);
    save_plan(root.path(), &emulator);
    write(
        root.path(),
        "workers/api/index.js",
        &CODE.replace("GREETING", "GREETING + '!'"),
    );
    let before = emulator.stats_total();
    flareops(root.path(), &emulator)
        .args(["apply", "plan.json", "--yes"])
        .env("CANARY_VAR", CANARY)
        .assert()
        .code(1)
        .stderr(contains(
            "the manifests changed since the plan was made: nothing was applied",
        ))
        .stderr(contains("hint: make a new plan"));
    // Refused before connecting: not even a read.
    assert_eq!(emulator.stats_total(), before, "{}", emulator.stats());
}

#[test]
fn a_saved_plan_is_refused_after_the_account_changed() {
    let emulator = TestEmulator::start();
    let root = project(&[
        ("infra/storage.yaml", STORAGE),
        ("environments/staging.yaml", &environment(&emulator)),
    ]);
    save_plan(root.path(), &emulator);
    // Someone creates a namespace the manifests declare.
    let created = emulator.send(
        "POST",
        &emulator.account_path("/storage/kv/namespaces"),
        Some(json!({"title": "kk-users-staging"})),
        &[],
    );
    assert_eq!(created["success"], true, "{created}");
    let before = writes(&emulator);
    flareops(root.path(), &emulator)
        .args(["apply", "plan.json", "--yes"])
        .assert()
        .code(1)
        .stderr(contains(
            "the account changed since the plan was made: nothing was applied",
        ))
        .stderr(contains(
            "hint: make a new plan with `flareops plan --env staging --out plan.json`",
        ));
    assert_eq!(writes(&emulator), before, "{}", emulator.stats());
}

#[test]
fn a_saved_plan_is_refused_after_the_manifests_changed() {
    let emulator = TestEmulator::start();
    let root = project(&[
        ("infra/storage.yaml", STORAGE),
        ("environments/staging.yaml", &environment(&emulator)),
    ]);
    save_plan(root.path(), &emulator);
    write(
        root.path(),
        "infra/storage.yaml",
        &STORAGE.replace("kk-reviews", "kk-ratings"),
    );
    let before = writes(&emulator);
    flareops(root.path(), &emulator)
        .args(["apply", "plan.json", "--yes"])
        .assert()
        .code(1)
        .stderr(contains(
            "the manifests changed since the plan was made: nothing was applied",
        ));
    assert_eq!(writes(&emulator), before, "{}", emulator.stats());

    // Back as it was, the same plan applies.
    write(root.path(), "infra/storage.yaml", STORAGE);
    flareops(root.path(), &emulator)
        .args(["apply", "plan.json", "--yes"])
        .assert()
        .success()
        .stdout(contains("Apply complete: 2 of 2 changes made."));
}

#[test]
fn an_unreadable_or_unknown_plan_file_is_refused() {
    let emulator = TestEmulator::start();
    let root = project(&[
        ("infra/storage.yaml", STORAGE),
        ("environments/staging.yaml", &environment(&emulator)),
    ]);
    save_plan(root.path(), &emulator);
    let path = root.path().join("plan.json");
    let mut saved: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("plan file")).expect("json");
    saved["format_version"] = json!(999);
    write(root.path(), "future.json", &saved.to_string());
    write(root.path(), "garbage.json", "this is not a plan");
    let before = emulator.stats_total();
    flareops(root.path(), &emulator)
        .args(["apply", "future.json", "--yes"])
        .assert()
        .code(1)
        .stderr(contains(
            "format_version 999, which this flareops does not know",
        ));
    flareops(root.path(), &emulator)
        .args(["apply", "garbage.json", "--yes"])
        .assert()
        .code(1)
        .stderr(contains("the plan file is not JSON"));
    flareops(root.path(), &emulator)
        .args(["apply", "missing.json", "--yes"])
        .assert()
        .code(1)
        .stderr(contains("cannot read the plan file missing.json"));
    assert_eq!(emulator.stats_total(), before, "{}", emulator.stats());
}
