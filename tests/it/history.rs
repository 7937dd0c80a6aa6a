//! The apply journal and `flareops history`: every apply is listed newest
//! first with its summary and status; a failed change makes a `failed`
//! apply; a run that never finished shows as `interrupted` and does not
//! block the next; the ledger never holds a secret value.

use predicates::prelude::*;
use predicates::str::contains;
use serde_json::{Value, json};

use crate::support::{TestEmulator, flareops, git, project, write};

fn kv(titles: &[&str]) -> String {
    let mut text = "kv_namespaces:\n".to_string();
    for title in titles {
        text.push_str(&format!("  {title}:\n    title: kk-{title}-${{env}}\n"));
    }
    text
}

fn environment(emulator: &TestEmulator) -> String {
    format!("account_id: {}\nzone: example.com\n", emulator.account_id)
}

fn history(root: &std::path::Path, emulator: &TestEmulator) -> Vec<Value> {
    let output = flareops(root, emulator)
        .args(["history", "--env", "staging", "--format", "json"])
        .env("TEST_JWT_SECRET", "not-the-canary")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let value: Value = serde_json::from_slice(&output).expect("history json");
    value["applies"].as_array().expect("applies").clone()
}

fn ledger_id(emulator: &TestEmulator) -> String {
    let databases = emulator.get(&emulator.account_path("/d1/database"));
    databases["result"]
        .as_array()
        .unwrap()
        .iter()
        .find(|db| db["name"] == "flareops-state")
        .and_then(|db| db["uuid"].as_str())
        .expect("the ledger exists")
        .to_string()
}

fn query(emulator: &TestEmulator, sql: &str) -> Value {
    let path = emulator.account_path(&format!("/d1/database/{}/query", ledger_id(emulator)));
    let answer = emulator.send("POST", &path, Some(json!({ "sql": sql })), &[]);
    assert_eq!(answer["success"], true, "{sql}: {answer}");
    answer["result"].clone()
}

fn apply(root: &std::path::Path, emulator: &TestEmulator) -> assert_cmd::assert::Assert {
    flareops(root, emulator)
        .args(["apply", "--env", "staging", "--yes"])
        .assert()
}

#[test]
fn history_lists_applies_newest_first_with_failures() {
    let emulator = TestEmulator::start();
    let root = project(&[
        ("infra/storage.yaml", &kv(&["users"])),
        ("environments/staging.yaml", &environment(&emulator)),
    ]);
    flareops(root.path(), &emulator)
        .args(["history", "--env", "staging"])
        .assert()
        .success()
        .stdout(contains("no applies recorded"));
    assert!(
        emulator.get(&emulator.account_path("/d1/database"))["result"]
            .as_array()
            .unwrap()
            .is_empty(),
        "history is read-only"
    );

    apply(root.path(), &emulator).success();
    write(
        root.path(),
        "infra/storage.yaml",
        &kv(&["users", "reviews", "carts"]),
    );
    apply(root.path(), &emulator).success();

    let applies = history(root.path(), &emulator);
    assert_eq!(applies.len(), 2, "{applies:?}");
    assert_eq!(
        applies[0]["summary"],
        "2 to create, 0 to update, 0 to replace, 0 to delete"
    );
    assert_eq!(
        applies[1]["summary"],
        "1 to create, 0 to update, 0 to replace, 0 to delete"
    );
    for entry in &applies {
        assert_eq!(entry["status"], "succeeded", "{entry}");
        assert_eq!(entry["environment"], "staging");
        assert!(entry["finished_at"].is_string(), "{entry}");
        assert!(!entry["actor"].as_str().unwrap().is_empty());
    }
    assert!(applies[0]["started_at"].as_str() > applies[1]["started_at"].as_str());
    let steps = query(
        &emulator,
        &format!(
            "SELECT address, kind, status, detail FROM apply_steps WHERE apply_id = '{}' ORDER BY seq",
            applies[0]["id"].as_str().unwrap()
        ),
    );
    let rows = steps[0]["results"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{steps}");
    assert!(
        rows.iter()
            .all(|r| r["status"] == "done" && r["kind"] == "create")
    );
    assert!(
        rows[0]["detail"]
            .as_str()
            .unwrap()
            .contains("created KV namespace")
    );

    // A change that fails at the API (a broken migration) fails the apply.
    write(
        root.path(),
        "infra/db.yaml",
        "d1_databases:\n  main:\n    name: kk-db-${env}\n    migrations: migrations\n",
    );
    write(
        root.path(),
        "migrations/0001_init.sql",
        "CREATE TABLE broken (;\n",
    );
    apply(root.path(), &emulator).code(1);
    let applies = history(root.path(), &emulator);
    assert_eq!(applies.len(), 3);
    assert_eq!(applies[0]["status"], "failed", "{applies:?}");
    let failed = query(
        &emulator,
        &format!(
            "SELECT status, detail FROM apply_steps WHERE apply_id = '{}'",
            applies[0]["id"].as_str().unwrap()
        ),
    );
    assert_eq!(failed[0]["results"][0]["status"], "failed", "{failed}");

    flareops(root.path(), &emulator)
        .args(["history", "--env", "staging", "--limit", "1"])
        .assert()
        .success()
        .stdout(contains("failed"))
        .stdout(contains("succeeded").not());
}

#[test]
fn an_interrupted_apply_shows_and_does_not_block_the_next() {
    let emulator = TestEmulator::start();
    let root = project(&[
        ("infra/storage.yaml", &kv(&["users"])),
        ("environments/staging.yaml", &environment(&emulator)),
    ]);
    apply(root.path(), &emulator).success();
    // A run killed an hour ago, and one that may still be running.
    query(
        &emulator,
        "INSERT INTO applies (id, environment, started_at, git_commit, actor, summary, status) VALUES
           ('killed-long-ago', 'staging', strftime('%Y-%m-%dT%H:%M:%fZ','now','-1 hour'), 'abc', 'ci', '1 to create', 'running');
         INSERT INTO applies (id, environment, started_at, git_commit, actor, summary, status) VALUES
           ('just-killed', 'staging', strftime('%Y-%m-%dT%H:%M:%fZ','now'), 'abc', 'ci', '1 to create', 'running');
         INSERT INTO apply_steps (apply_id, seq, address, kind, steps_json, status, started_at) VALUES
           ('just-killed', 0, 'kv_namespaces.reviews', 'create', '[]', 'running', strftime('%Y-%m-%dT%H:%M:%fZ','now'));",
    );
    let status = |applies: &[Value], id: &str| {
        applies
            .iter()
            .find(|a| a["id"] == id)
            .map(|a| a["status"].as_str().unwrap().to_string())
            .unwrap_or_else(|| panic!("{id} in {applies:?}"))
    };
    let applies = history(root.path(), &emulator);
    assert_eq!(status(&applies, "killed-long-ago"), "interrupted");
    assert_eq!(status(&applies, "just-killed"), "running");
    flareops(root.path(), &emulator)
        .args(["history", "--env", "staging"])
        .assert()
        .success()
        .stdout(contains("interrupted"));

    write(
        root.path(),
        "infra/storage.yaml",
        &kv(&["users", "reviews"]),
    );
    apply(root.path(), &emulator).success();
    let applies = history(root.path(), &emulator);
    assert_eq!(applies.len(), 4, "{applies:?}");
    assert_eq!(applies[0]["status"], "succeeded");
    assert_eq!(status(&applies, "just-killed"), "interrupted");
}

#[test]
fn the_ledger_holds_no_secret_value() {
    let canary = "canary-journal-4f8e2a1c9b";
    let emulator = TestEmulator::start_with_zones(&["example.com"]);
    let root = project(&[
        (
            "infra/workers.yaml",
            "workers:\n  api:\n    name: api-${env}\n    main: workers/api/index.js\n    compatibility_date: \"2025-01-15\"\n    secrets:\n      JWT_SECRET: {from_env: TEST_JWT_SECRET}\n",
        ),
        (
            "workers/api/index.js",
            "export default { async fetch() { return new Response('ok'); } };\n",
        ),
        ("environments/staging.yaml", &environment(&emulator)),
    ]);
    flareops(root.path(), &emulator)
        .args(["apply", "--env", "staging", "--yes"])
        .env("TEST_JWT_SECRET", canary)
        .assert()
        .success();
    let applies = history(root.path(), &emulator);
    assert_eq!(applies.len(), 1);
    assert_eq!(applies[0]["status"], "succeeded");
    let tables = query(
        &emulator,
        "SELECT name FROM sqlite_master WHERE type = 'table'",
    );
    let names: Vec<String> = tables[0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    assert!(names.contains(&"applies".to_string()), "{names:?}");
    assert!(names.contains(&"apply_steps".to_string()), "{names:?}");
    for name in names
        .iter()
        .filter(|n| !n.starts_with("_cf") && !n.starts_with("sqlite_"))
    {
        let rows = query(&emulator, &format!("SELECT * FROM \"{name}\""));
        assert!(
            !rows.to_string().contains(canary),
            "{name} holds the secret"
        );
    }
    let steps = query(&emulator, "SELECT steps_json FROM apply_steps");
    assert!(
        steps.to_string().contains("JWT_SECRET"),
        "the step names the secret: {steps}"
    );
}

/// Only the files flareops reads make a run's commit `+dirty`: a saved
/// plan or a log beside the manifests does not; an edited manifest or an
/// untracked worker module does.
#[test]
fn only_files_flareops_reads_make_the_commit_dirty() {
    let emulator = TestEmulator::start_with_zones(&["example.com"]);
    let root = project(&[
        ("environments/staging.yaml", &environment(&emulator)),
        ("infra/kv.yaml", &kv(&["users"])),
        (
            "infra/workers.yaml",
            "workers:\n  api:\n    name: api-${env}\n    main: workers/api/index.js\n    compatibility_date: \"2025-01-15\"\n",
        ),
        ("workers/api/index.js", "export default {};\n"),
    ]);
    let root = root.path();
    git(root, &["init", "-q", "-b", "main"]);
    git(root, &["add", "-A"]);
    git(root, &["commit", "-q", "-m", "first"]);
    let commit = git(root, &["rev-parse", "--short=12", "HEAD"]);
    // Untracked and changed files flareops does not read.
    write(root, "plan.json", "{}\n");
    write(root, "logs/apply.log", "a log\n");
    write(root, "README.md", "notes\n");
    apply(root, &emulator).success();
    let applies = history(root, &emulator);
    assert_eq!(applies[0]["git_commit"], json!(commit), "{applies:?}");

    // A module beside the worker's main one is read: dirty.
    write(root, "workers/api/extra.txt", "new\n");
    write(root, "infra/kv.yaml", &kv(&["users", "reviews"]));
    apply(root, &emulator).success();
    let applies = history(root, &emulator);
    assert_eq!(
        applies[0]["git_commit"],
        json!(format!("{commit}+dirty")),
        "{applies:?}"
    );
}

/// `apply --format json` and `drift --heal --format json` print one JSON
/// document each on stdout (the progress on stderr).
#[test]
fn apply_and_heal_report_as_json() {
    let emulator = TestEmulator::start_with_zones(&["example.com"]);
    let root = project(&[
        ("environments/staging.yaml", &environment(&emulator)),
        ("infra/kv.yaml", &kv(&["users"])),
    ]);
    let root = root.path();
    git(root, &["init", "-q", "-b", "main"]);
    git(root, &["add", "-A"]);
    git(root, &["commit", "-q", "-m", "first"]);
    let json_of = |args: &[&str], code: i32| -> Value {
        let output = flareops(root, &emulator)
            .args(args)
            .assert()
            .code(code)
            .get_output()
            .clone();
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
            panic!(
                "{e}: stdout holds one JSON document:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            )
        })
    };
    let report = json_of(
        &["apply", "--env", "staging", "--yes", "--format", "json"],
        0,
    );
    assert_eq!(report["status"], "succeeded", "{report}");
    assert_eq!(report["summary"]["create"], 1, "{report}");
    assert_eq!(report["changes"][0]["address"], "kv_namespaces.users");
    assert_eq!(report["changes"][0]["status"], "succeeded");
    assert!(
        report["changes"][0]["done"][0]
            .as_str()
            .is_some_and(|d| d.starts_with("created KV namespace \"kk-users-staging\"")),
        "{report}"
    );
    assert!(report["apply_id"].is_string(), "{report}");
    assert_eq!(report["plan"]["changes"][0]["kind"], "create");
    let again = json_of(
        &["apply", "--env", "staging", "--yes", "--format", "json"],
        0,
    );
    assert_eq!(again["status"], "no_changes", "{again}");
    assert_eq!(again["changes"], json!([]));

    // Deleted outside git, then healed.
    let namespaces = emulator.get(&emulator.account_path("/storage/kv/namespaces"));
    let id = namespaces["result"][0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    emulator.send(
        "DELETE",
        &emulator.account_path(&format!("/storage/kv/namespaces/{id}")),
        None,
        &[],
    );
    let healed = json_of(
        &[
            "drift", "--env", "staging", "--heal", "--yes", "--format", "json",
        ],
        0,
    );
    assert_eq!(healed["drift"], true, "{healed}");
    assert_eq!(healed["heal"]["apply"]["status"], "succeeded", "{healed}");
    assert_eq!(healed["heal"]["remaining_changes"], 0);
    assert_eq!(healed["heal"]["healed"], true);
}
