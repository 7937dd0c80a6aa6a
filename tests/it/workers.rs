//! Workers end to end through the real binary: apply then an empty plan,
//! code/var/cron/route changes, gradual rollouts with a health gate, and
//! canary secrets that must appear nowhere.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use predicates::prelude::*;
use predicates::str::contains;
use serde_json::Value;

use crate::support::{TestEmulator, flareops, project, write};

const ZONE: &str = "example.com";

const CODE: &str = "export default {\n  async fetch(request, env) {\n    return new Response('hello ' + env.GREETING);\n  },\n};\n";

fn storage() -> &'static str {
    "kv_namespaces:
  users:
    title: users-${env}
d1_databases:
  main:
    name: main-${env}
r2_buckets:
  assets:
    name: assets-${env}
"
}

fn worker(greeting: &str, cron: &str, route: &str, rollout: &str) -> String {
    format!(
        "workers:
  api:
    name: api-${{env}}
    main: workers/api/index.js
    compatibility_date: \"2025-01-15\"
    bindings:
      USERS: {{kv_namespace: users}}
      DB: {{d1: main}}
      ASSETS: {{r2_bucket: assets}}
      GREETING: {{text: \"{greeting}\"}}
    secrets:
      JWT_SECRET: {{from_env: TEST_JWT_SECRET}}
    crons: [\"{cron}\"]
    routes: [\"{route}\"]
    custom_domains: [\"app-${{env}}.example.com\"]
    rollout: {rollout}
"
    )
}

fn environment(emulator: &TestEmulator) -> String {
    format!("account_id: {}\nzone: {ZONE}\n", emulator.account_id)
}

fn setup(emulator: &TestEmulator, rollout: &str) -> tempfile::TempDir {
    project(&[
        ("infra/storage.yaml", storage()),
        (
            "infra/workers.yaml",
            &worker("world", "0 * * * *", "api-staging.example.com/*", rollout),
        ),
        ("workers/api/index.js", CODE),
        ("environments/staging.yaml", &environment(emulator)),
    ])
}

fn deployments(emulator: &TestEmulator, script: &str) -> Vec<Value> {
    let path = emulator.account_path(&format!("/workers/scripts/{script}/deployments"));
    emulator.get(&path)["result"]["deployments"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// (version id, percentage) of the live deployment.
fn live_shares(emulator: &TestEmulator, script: &str) -> Vec<(String, u64)> {
    let all = deployments(emulator, script);
    all.first()
        .map(|d| {
            d["versions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| {
                    (
                        v["version_id"].as_str().unwrap().to_string(),
                        v["percentage"].as_f64().unwrap() as u64,
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn apply(root: &std::path::Path, emulator: &TestEmulator) -> assert_cmd::assert::Assert {
    flareops(root, emulator)
        .env("TEST_JWT_SECRET", "jwt-value-for-tests")
        .args(["apply", "--env", "staging", "--yes"])
        .assert()
}

fn plan(root: &std::path::Path, emulator: &TestEmulator) -> assert_cmd::assert::Assert {
    flareops(root, emulator)
        .env("TEST_JWT_SECRET", "jwt-value-for-tests")
        .args(["plan", "--env", "staging", "--detailed-exitcode"])
        .assert()
}

#[test]
fn apply_then_plan_is_empty_and_each_kind_of_change_does_only_its_part() {
    let emulator = TestEmulator::start_with_zones(&[ZONE]);
    let root = setup(&emulator, "{strategy: immediate}");
    apply(root.path(), &emulator)
        .success()
        .stdout(contains("+ create workers.api"))
        .stdout(contains("Apply complete"));
    plan(root.path(), &emulator)
        .code(0)
        .stdout(contains("No changes."));
    let first = live_shares(&emulator, "api-staging");
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].1, 100);

    // One line of code: the plan shows that line and a new version.
    write(
        root.path(),
        "workers/api/index.js",
        &CODE.replace("'hello '", "'hi '"),
    );
    plan(root.path(), &emulator)
        .code(2)
        .stdout(contains("~ update workers.api"))
        .stdout(contains(
            "-    return new Response('hello ' + env.GREETING);",
        ))
        .stdout(contains("+    return new Response('hi ' + env.GREETING);"))
        .stdout(contains("version:"));
    apply(root.path(), &emulator).success();
    let second = live_shares(&emulator, "api-staging");
    assert_eq!(second.len(), 1);
    assert_ne!(second[0].0, first[0].0, "a new version serves");
    plan(root.path(), &emulator).code(0);

    // A var: a new version.
    write(
        root.path(),
        "infra/workers.yaml",
        &worker(
            "there",
            "0 * * * *",
            "api-staging.example.com/*",
            "{strategy: immediate}",
        ),
    );
    plan(root.path(), &emulator)
        .code(2)
        .stdout(contains("bindings.GREETING"))
        .stdout(contains("version:"));
    apply(root.path(), &emulator).success();
    let third = live_shares(&emulator, "api-staging");
    assert_ne!(third[0].0, second[0].0);

    // A cron: only the cron.
    write(
        root.path(),
        "infra/workers.yaml",
        &worker(
            "there",
            "30 * * * *",
            "api-staging.example.com/*",
            "{strategy: immediate}",
        ),
    );
    plan(root.path(), &emulator)
        .code(2)
        .stdout(contains("crons:"))
        .stdout(contains("version:").not());
    apply(root.path(), &emulator).success();
    assert_eq!(
        live_shares(&emulator, "api-staging")[0].0,
        third[0].0,
        "no new version"
    );
    let schedules = emulator.get(&emulator.account_path("/workers/scripts/api-staging/schedules"));
    assert_eq!(schedules["result"]["schedules"][0]["cron"], "30 * * * *");

    // A route: only the route.
    write(
        root.path(),
        "infra/workers.yaml",
        &worker(
            "there",
            "30 * * * *",
            "v2.example.com/*",
            "{strategy: immediate}",
        ),
    );
    plan(root.path(), &emulator)
        .code(2)
        .stdout(contains("routes[v2.example.com/*]"))
        .stdout(contains("version:").not());
    apply(root.path(), &emulator).success();
    assert_eq!(
        live_shares(&emulator, "api-staging")[0].0,
        third[0].0,
        "no new version"
    );
    plan(root.path(), &emulator).code(0);
}

/// A loopback HTTP server answering every request with `healthy`'s status.
fn health_server(healthy: Arc<AtomicBool>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind health server");
    let url = format!("http://{}/health", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().take(100) {
            let Ok(mut stream) = stream else { continue };
            let mut buffer = [0u8; 1024];
            let _ = stream.read(&mut buffer);
            let status = if healthy.load(Ordering::SeqCst) {
                "200 OK"
            } else {
                "500 Internal Server Error"
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
        }
    });
    url
}

fn gradual_rollout(healthy: bool) {
    let emulator = TestEmulator::start_with_zones(&[ZONE]);
    let flag = Arc::new(AtomicBool::new(healthy));
    let url = health_server(flag);
    let rollout =
        format!("{{strategy: gradual, steps: [20, 60, 100], wait: 1s, health_url: \"{url}\"}}");
    let root = setup(&emulator, &rollout);
    apply(root.path(), &emulator).success();
    let before = live_shares(&emulator, "api-staging")[0].0.clone();

    write(
        root.path(),
        "workers/api/index.js",
        &CODE.replace("'hello '", "'hey '"),
    );
    let deployments_before = deployments(&emulator, "api-staging").len();
    let assert = apply(root.path(), &emulator);
    let after = live_shares(&emulator, "api-staging");
    assert_eq!(after.len(), 1, "one version serves everything: {after:?}");
    let history = deployments(&emulator, "api-staging");
    let splits: Vec<Vec<u64>> = history[..history.len() - deployments_before]
        .iter()
        .rev()
        .map(|d| {
            d["versions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v["percentage"].as_f64().unwrap() as u64)
                .collect()
        })
        .collect();
    if healthy {
        assert.success().stdout(contains("20% -> 60% -> 100%"));
        assert_ne!(after[0].0, before, "the new version serves 100%");
        assert_eq!(splits, vec![vec![20, 80], vec![60, 40], vec![100]]);
    } else {
        assert
            .code(1)
            .stderr(contains("health check"))
            .stderr(contains("stopped at 20%"));
        assert_eq!(after[0].0, before, "the previous version serves 100% again");
        assert_eq!(splits, vec![vec![20, 80], vec![100]]);
    }
}

#[test]
fn a_gradual_rollout_with_a_healthy_worker_ends_at_100_percent_new() {
    gradual_rollout(true);
}

#[test]
fn a_gradual_rollout_with_a_failing_health_check_returns_to_the_previous_version() {
    gradual_rollout(false);
}

#[test]
fn canary_secrets_appear_in_no_output_plan_or_log() {
    let canary = "canary-7c1e5b0f9a3d42e6";
    let file_canary = "file-canary-3b9d0e1f7a";
    let token = "token-canary-51c2a9e8";
    let log = tempfile::NamedTempFile::new().expect("log file");
    let emulator = TestEmulator::start_logged(&[ZONE], token, log.path());
    let root = project(&[
        ("infra/storage.yaml", storage()),
        (
            "infra/workers.yaml",
            &worker("world", "0 * * * *", "api-staging.example.com/*", "{strategy: immediate}").replace(
                "      JWT_SECRET: {from_env: TEST_JWT_SECRET}\n",
                "      JWT_SECRET: {from_env: TEST_JWT_SECRET}\n      API_KEY: {from_file: secrets/api-key.txt}\n",
            ),
        ),
        ("secrets/api-key.txt", file_canary),
        ("workers/api/index.js", CODE),
        ("environments/staging.yaml", &environment(&emulator)),
    ]);
    let run = |args: &[&str]| {
        let output = flareops(root.path(), &emulator)
            .env("TEST_JWT_SECRET", canary)
            .env("RUST_LOG", "trace")
            .args(args)
            .output()
            .expect("run flareops");
        let mut bytes = output.stdout;
        bytes.extend(output.stderr);
        (output.status, bytes)
    };
    let mut everything = Vec::new();
    let (status, out) = run(&["plan", "--env", "staging", "--format", "json"]);
    assert!(status.success(), "{}", String::from_utf8_lossy(&out));
    std::fs::write(root.path().join("plan.json"), &out).unwrap();
    everything.extend(out);
    let (status, out) = run(&["apply", "--env", "staging", "--yes"]);
    assert!(status.success(), "{}", String::from_utf8_lossy(&out));
    everything.extend(out);
    let (status, out) = run(&["plan", "--env", "staging"]);
    assert!(status.success());
    everything.extend(out);
    everything.extend(std::fs::read(root.path().join("plan.json")).unwrap());
    let emulator_log = std::fs::read(log.path()).unwrap();
    assert!(
        String::from_utf8_lossy(&emulator_log).contains("/secrets"),
        "the emulator logged the secret requests"
    );
    everything.extend(emulator_log);
    // The secrets were really sent (by name; values are write-only).
    let secrets = emulator.get(&emulator.account_path("/workers/scripts/api-staging/secrets"));
    let names: Vec<&str> = secrets["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{secrets}");
    let text = String::from_utf8_lossy(&everything);
    assert!(text.len() > 1000, "the logs were captured");
    for needle in [canary, file_canary, token] {
        assert!(!text.contains(needle), "found {needle} in the output");
    }
    assert!(text.contains("(sensitive)"));
}

#[test]
fn a_deployment_someone_else_split_is_reported_and_never_overwritten() {
    let emulator = TestEmulator::start_with_zones(&[ZONE]);
    let root = setup(&emulator, "{strategy: immediate}");
    apply(root.path(), &emulator).success();
    let first = live_shares(&emulator, "api-staging")[0].0.clone();
    write(
        root.path(),
        "workers/api/index.js",
        &CODE.replace("'hello '", "'hi '"),
    );
    apply(root.path(), &emulator).success();
    let second = live_shares(&emulator, "api-staging")[0].0.clone();

    // Someone splits traffic by hand (as `wrangler versions deploy` does).
    let split = serde_json::json!({
        "strategy": "percentage",
        "versions": [
            {"version_id": first, "percentage": 30},
            {"version_id": second, "percentage": 70}
        ]
    });
    let path = emulator.account_path("/workers/scripts/api-staging/deployments");
    let answer = emulator.send("POST", &path, Some(split), &[]);
    assert_eq!(answer["success"], true, "{answer}");

    write(
        root.path(),
        "workers/api/index.js",
        &CODE.replace("'hello '", "'hey '"),
    );
    plan(root.path(), &emulator)
        .code(2)
        .stdout(contains("! conflict: the live deployment is split"));
    apply(root.path(), &emulator)
        .code(1)
        .stderr(contains("refusing to apply: `workers.api`"));
    let shares = live_shares(&emulator, "api-staging");
    assert_eq!(
        shares.len(),
        2,
        "the split deployment is untouched: {shares:?}"
    );
}

/// Regression: after a rolled-back rollout the newest version is not the
/// deployed one, which made every later secret change fail (10215).
#[test]
fn a_secret_added_after_a_rolled_back_rollout_is_deployed() {
    let emulator = TestEmulator::start_with_zones(&[ZONE]);
    let healthy = Arc::new(AtomicBool::new(false));
    let url = health_server(healthy.clone());
    let rollout =
        format!("{{strategy: gradual, steps: [50, 100], wait: 0s, health_url: \"{url}\"}}");
    let root = setup(&emulator, &rollout);
    apply(root.path(), &emulator).success();
    write(
        root.path(),
        "workers/api/index.js",
        &CODE.replace("'hello '", "'hey '"),
    );
    apply(root.path(), &emulator).code(1);

    healthy.store(true, Ordering::SeqCst);
    let workers = worker("world", "0 * * * *", "api-staging.example.com/*", &rollout).replace(
        "      JWT_SECRET: {from_env: TEST_JWT_SECRET}\n",
        "      JWT_SECRET: {from_env: TEST_JWT_SECRET}\n      API_KEY: {from_env: TEST_JWT_SECRET}\n",
    );
    write(root.path(), "infra/workers.yaml", &workers);
    apply(root.path(), &emulator).success();
    let secrets = emulator.get(&emulator.account_path("/workers/scripts/api-staging/secrets"));
    assert_eq!(
        secrets["result"].as_array().map(Vec::len),
        Some(2),
        "{secrets}"
    );
    plan(root.path(), &emulator).code(0);
}

#[test]
fn an_interrupted_rollout_is_finished_by_the_next_apply() {
    let emulator = TestEmulator::start_with_zones(&[ZONE]);
    let root = setup(&emulator, "{strategy: immediate}");
    apply(root.path(), &emulator).success();
    let old = live_shares(&emulator, "api-staging")[0].0.clone();
    write(
        root.path(),
        "workers/api/index.js",
        &CODE.replace("'hello '", "'hi '"),
    );
    apply(root.path(), &emulator).success();
    let new = live_shares(&emulator, "api-staging")[0].0.clone();
    // As if an apply had died half-way through a gradual rollout.
    let split = serde_json::json!({
        "strategy": "percentage",
        "versions": [{"version_id": new, "percentage": 30}, {"version_id": old, "percentage": 70}]
    });
    let path = emulator.account_path("/workers/scripts/api-staging/deployments");
    assert_eq!(
        emulator.send("POST", &path, Some(split), &[])["success"],
        true
    );

    plan(root.path(), &emulator)
        .code(2)
        .stdout(contains("deployment:"))
        .stdout(contains("conflict").not());
    apply(root.path(), &emulator)
        .success()
        .stdout(contains("finished the rollout"));
    assert_eq!(live_shares(&emulator, "api-staging"), vec![(new, 100)]);
    plan(root.path(), &emulator).code(0);
}

#[test]
fn a_changed_secret_value_is_seen_by_its_fingerprint_and_sent() {
    let emulator = TestEmulator::start_with_zones(&[ZONE]);
    let root = setup(&emulator, "{strategy: immediate}");
    apply(root.path(), &emulator).success();
    // The first apply created the ledger and recorded what it sent.
    plan(root.path(), &emulator)
        .code(0)
        .stdout(contains("secret values are not compared").not());
    let before = live_shares(&emulator, "api-staging")[0].0.clone();

    let with_value = |value: &str, args: &[&str]| {
        flareops(root.path(), &emulator)
            .env("TEST_JWT_SECRET", value)
            .args(args)
            .assert()
    };
    with_value(
        "jwt-value-for-tests",
        &["plan", "--env", "staging", "--detailed-exitcode"],
    )
    .code(0);
    with_value(
        "a-new-jwt-value",
        &["plan", "--env", "staging", "--detailed-exitcode"],
    )
    .code(2)
    .stdout(contains(
        "secrets.JWT_SECRET: (sensitive) -> (sensitive value changed)",
    ))
    .stdout(contains("a-new-jwt-value").not());
    with_value("a-new-jwt-value", &["apply", "--env", "staging", "--yes"])
        .success()
        .stdout(contains("with secrets JWT_SECRET"));
    assert_ne!(
        live_shares(&emulator, "api-staging")[0].0,
        before,
        "a new version carries it"
    );
    with_value(
        "a-new-jwt-value",
        &["plan", "--env", "staging", "--detailed-exitcode"],
    )
    .code(0);
}

#[test]
fn going_back_to_earlier_code_redeploys_that_version_without_an_upload() {
    let emulator = TestEmulator::start_with_zones(&[ZONE]);
    let root = setup(&emulator, "{strategy: immediate}");
    apply(root.path(), &emulator).success();
    let first = live_shares(&emulator, "api-staging")[0].0.clone();
    write(
        root.path(),
        "workers/api/index.js",
        &CODE.replace("'hello '", "'hi '"),
    );
    apply(root.path(), &emulator).success();
    assert_ne!(live_shares(&emulator, "api-staging")[0].0, first);

    let uploads = |emulator: &TestEmulator| {
        emulator.stats()["endpoints"]["POST /accounts/{account_id}/workers/scripts/{script_name}/versions"]
            .as_u64()
            .unwrap_or(0)
    };
    let before = uploads(&emulator);
    write(root.path(), "workers/api/index.js", CODE);
    plan(root.path(), &emulator)
        .code(2)
        .stdout(contains(format!(
            "existing version {first} (redeployed, no upload)"
        )));
    apply(root.path(), &emulator)
        .success()
        .stdout(contains("redeployed existing version (no upload)"));
    assert_eq!(uploads(&emulator), before, "no version was uploaded");
    assert_eq!(live_shares(&emulator, "api-staging"), vec![(first, 100)]);
    plan(root.path(), &emulator).code(0);
}

/// Runs `sql` (with `params`) against the ledger; the first result's rows.
fn ledger_rows(emulator: &TestEmulator, sql: &str, params: Value) -> Vec<Value> {
    crate::support::d1_rows(emulator, "flareops-state", sql, params)
}

/// A ledger whose fingerprints are in the older salted-SHA-256 form keeps
/// comparing them (no change planned, no secret sent), and the next apply
/// rewrites them as Argon2id.
#[test]
fn older_secret_fingerprints_are_upgraded_without_sending_the_secret() {
    use sha2::{Digest, Sha256};
    let emulator = TestEmulator::start_with_zones(&[ZONE]);
    let root = setup(&emulator, "{strategy: immediate}");
    apply(root.path(), &emulator).success();
    let recorded = ledger_rows(
        &emulator,
        "SELECT fingerprint FROM secret_fingerprints WHERE worker = ?1 AND name = ?2",
        serde_json::json!(["api-staging", "JWT_SECRET"]),
    );
    let argon = recorded[0]["fingerprint"]
        .as_str()
        .expect("fingerprint")
        .to_string();
    assert!(argon.starts_with("argon2id$"), "{argon}");
    assert!(!argon.contains("jwt-value-for-tests"));

    // Rewrite it as an older flareops did.
    let salt = ledger_rows(
        &emulator,
        "SELECT value FROM flareops_meta WHERE key = 'secret_salt'",
        serde_json::json!([]),
    )[0]["value"]
        .as_str()
        .expect("salt")
        .to_string();
    let mut hasher = Sha256::new();
    for part in [
        salt.as_str(),
        "api-staging",
        "JWT_SECRET",
        "jwt-value-for-tests",
    ] {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    let legacy = hex::encode(hasher.finalize());
    ledger_rows(
        &emulator,
        "UPDATE secret_fingerprints SET fingerprint = ?1 WHERE worker = 'api-staging'",
        serde_json::json!([legacy]),
    );

    // Still the same value: no change, and the apply sends nothing.
    plan(root.path(), &emulator).code(0);
    let uploads = |emulator: &TestEmulator| {
        let stats = emulator.stats();
        [
            "POST /accounts/{account_id}/workers/scripts/{script_name}/versions",
            "PUT /accounts/{account_id}/workers/scripts/{script_name}",
            "PUT /accounts/{account_id}/workers/scripts/{script_name}/secrets",
            "PATCH /accounts/{account_id}/workers/scripts/{script_name}/settings",
        ]
        .iter()
        .map(|e| stats["endpoints"][e].as_u64().unwrap_or(0))
        .sum::<u64>()
    };
    let before = uploads(&emulator);
    apply(root.path(), &emulator)
        .success()
        .stdout(contains("No changes"));
    assert_eq!(uploads(&emulator), before, "no secret was sent");
    let upgraded = ledger_rows(
        &emulator,
        "SELECT fingerprint FROM secret_fingerprints WHERE worker = 'api-staging'",
        serde_json::json!([]),
    )[0]["fingerprint"]
        .as_str()
        .expect("fingerprint")
        .to_string();
    assert_eq!(upgraded, argon);
    // A wrong value is still told apart from the older form.
    ledger_rows(
        &emulator,
        "UPDATE secret_fingerprints SET fingerprint = ?1 WHERE worker = 'api-staging'",
        serde_json::json!([legacy]),
    );
    flareops(root.path(), &emulator)
        .env("TEST_JWT_SECRET", "another-value")
        .args(["plan", "--env", "staging", "--detailed-exitcode"])
        .assert()
        .code(2)
        .stdout(contains("(sensitive value changed)"));
}
