//! The three GitOps flows end to end, in a scratch git repository against
//! one emulator: a pull request's plan comment, the apply on merge, and the
//! drift check after the real wrangler changed the account behind git's back.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::support::{TestEmulator, flareops, project, write};
use crate::wrangler::{Wrangler, wrangler_or_skip};

const ZONE: &str = "example.com";
/// A secret value: it must never show in any output.
const CANARY: &str = "canary-secret-5d1f0c";

fn base_files(emulator: &TestEmulator) -> Vec<(&'static str, String)> {
    let environment = format!("account_id: {}\nzone: {ZONE}\n", emulator.account_id);
    vec![
        (
            "infra/storage.yaml",
            "kv_namespaces:\n  users:\n    title: shop-users-${env}\n  cache:\n    title: shop-cache-${env}\n"
                .to_string(),
        ),
        (
            "infra/workers.yaml",
            "workers:
  api:
    name: shop-api-${env}
    main: workers/api/index.js
    compatibility_date: \"2025-01-15\"
    bindings:
      USERS: {kv_namespace: users}
      CACHE: {kv_namespace: cache}
      GREETING: {text: hello}
    secrets:
      TOKEN: {from_env: SHOP_TOKEN}
    crons: [\"0 * * * *\"]
"
            .to_string(),
        ),
        (
            "workers/api/index.js",
            "export default {\n  async fetch(request, env) {\n    return new Response(env.GREETING);\n  },\n};\n"
                .to_string(),
        ),
        ("environments/staging.yaml", environment.clone()),
        ("environments/production.yaml", environment),
        (".gitignore", "/.flareops/\n".to_string()),
    ]
}

/// Runs git in `root` with a fixed identity and clock, so commits (and
/// their ids in the snapshot) are the same on every run.
fn git(root: &Path, args: &[&str]) {
    let output = Command::new("git")
        .args(args)
        .current_dir(root)
        .env("GIT_AUTHOR_NAME", "Dev")
        .env("GIT_AUTHOR_EMAIL", "dev@example.com")
        .env("GIT_COMMITTER_NAME", "Dev")
        .env("GIT_COMMITTER_EMAIL", "dev@example.com")
        .env("GIT_AUTHOR_DATE", "2026-01-02T03:04:05Z")
        .env("GIT_COMMITTER_DATE", "2026-01-02T03:04:05Z")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("run git");
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(root: &Path, emulator: &TestEmulator, args: &[&str]) -> Outcome {
    let output = flareops(root, emulator)
        .env("SHOP_TOKEN", CANARY)
        .args(args)
        .output()
        .expect("run flareops");
    let outcome = Outcome {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    assert!(
        !outcome.stdout.contains(CANARY) && !outcome.stderr.contains(CANARY),
        "flareops {args:?} printed the secret value"
    );
    outcome
}

fn expect(outcome: Outcome, code: i32, what: &str) -> Outcome {
    assert_eq!(
        outcome.code, code,
        "{what}: exit {}\n--- stdout\n{}\n--- stderr\n{}",
        outcome.code, outcome.stdout, outcome.stderr
    );
    outcome
}

fn drift_json(root: &Path, emulator: &TestEmulator, environment: &str) -> (i32, Value) {
    let outcome = run(
        root,
        emulator,
        &["drift", "--env", environment, "--format", "json"],
    );
    let report: Value = serde_json::from_str(&outcome.stdout).unwrap_or_else(|error| {
        panic!(
            "drift --format json: {error}\n--- stdout\n{}\n--- stderr\n{}",
            outcome.stdout, outcome.stderr
        )
    });
    (outcome.code, report)
}

fn addresses(report: &Value, category: &str) -> Vec<String> {
    report[category]
        .as_array()
        .unwrap_or_else(|| panic!("{category} in {report}"))
        .iter()
        .map(|c| c["address"].as_str().expect("address").to_string())
        .collect()
}

fn kv_id(emulator: &TestEmulator, title: &str) -> String {
    let list = emulator.get(&emulator.account_path("/storage/kv/namespaces?per_page=100"));
    list["result"]
        .as_array()
        .expect("namespaces")
        .iter()
        .find(|ns| ns["title"] == title)
        .and_then(|ns| ns["id"].as_str())
        .unwrap_or_else(|| panic!("namespace {title} in {list}"))
        .to_string()
}

#[test]
fn plan_comment_apply_on_merge_then_drift_and_heal() {
    let Some(wrangler_bin) = wrangler_or_skip("plan_comment_apply_on_merge_then_drift_and_heal")
    else {
        return;
    };
    let emulator = TestEmulator::start_with_zones(&[ZONE]);
    let files = base_files(&emulator);
    let files: Vec<(&str, &str)> = files.iter().map(|(p, c)| (*p, c.as_str())).collect();
    let repo = project(&files);
    let root = repo.path();
    git(root, &["init", "-q", "-b", "main"]);
    git(root, &["add", "-A"]);
    git(root, &["commit", "-q", "-m", "Shop: storage and API"]);

    // main, applied to both environments: no drift.
    for environment in ["staging", "production"] {
        expect(
            run(root, &emulator, &["apply", "--env", environment, "--yes"]),
            0,
            "first apply",
        );
        let (code, report) = drift_json(root, &emulator, environment);
        assert_eq!(code, 0, "drift right after apply: {report:#}");
        assert_eq!(report["drift"], Value::Bool(false));
    }

    // A branch changes a manifest (a new namespace, a new binding, a new
    // text) and the worker's code.
    git(root, &["checkout", "-q", "-b", "sessions"]);
    write(
        root,
        "infra/storage.yaml",
        "kv_namespaces:\n  users:\n    title: shop-users-${env}\n  cache:\n    title: shop-cache-${env}\n  sessions:\n    title: shop-sessions-${env}\n",
    );
    let workers = files
        .iter()
        .find(|(p, _)| *p == "infra/workers.yaml")
        .expect("workers.yaml")
        .1
        .replace(
            "      GREETING: {text: hello}\n",
            "      SESSIONS: {kv_namespace: sessions}\n      GREETING: {text: welcome}\n",
        );
    write(root, "infra/workers.yaml", &workers);
    write(
        root,
        "workers/api/index.js",
        "export default {\n  async fetch(request, env) {\n    await env.SESSIONS.put('last', new Date().toISOString());\n    return new Response(env.GREETING);\n  },\n};\n",
    );
    git(root, &["commit", "-q", "-am", "Sessions"]);

    // Before the merge, git is ahead of the last apply: pending, not drift
    // made outside git.
    let (code, report) = drift_json(root, &emulator, "staging");
    assert_eq!(code, 2, "{report:#}");
    let mut pending = addresses(&report, "pending");
    pending.sort();
    assert_eq!(pending, ["kv_namespaces.sessions", "workers.api"]);
    assert_eq!(
        addresses(&report, "changed_outside_git"),
        Vec::<String>::new()
    );
    assert_eq!(
        addresses(&report, "deleted_outside_git"),
        Vec::<String>::new()
    );

    // The pull request's plan comment.
    let comment = expect(
        run(
            root,
            &emulator,
            &[
                "plan",
                "--env",
                "staging",
                "--env",
                "production",
                "--format",
                "markdown",
            ],
        ),
        0,
        "markdown plan",
    );
    assert!(comment.stdout.starts_with("<!-- flareops-plan -->\n"));
    insta::with_settings!({filters => vec![
        (r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "[uuid]"),
        (r"\b[0-9a-f]{32}\b", "[id32]"),
        (r"\b[0-9a-f]{20}\b", "[tag]"),
    ]}, {
        insta::assert_snapshot!("pull_request_plan_comment", comment.stdout);
    });

    // Merge, then apply as apply.yml does: a saved plan per environment,
    // staging first, each applied exactly.
    git(root, &["checkout", "-q", "main"]);
    git(
        root,
        &["merge", "-q", "--no-ff", "sessions", "-m", "Merge sessions"],
    );
    let plans = tempfile::tempdir().expect("plans dir");
    for environment in ["staging", "production"] {
        let file = plans.path().join(format!("plan-{environment}.json"));
        let file = file.to_str().expect("utf-8 path");
        expect(
            run(
                root,
                &emulator,
                &["plan", "--env", environment, "--out", file],
            ),
            0,
            "plan --out",
        );
        let applied = expect(run(root, &emulator, &["apply", file, "--yes"]), 0, "apply");
        assert!(
            applied.stdout.contains("kv_namespaces.sessions"),
            "{}",
            applied.stdout
        );
        let (code, report) = drift_json(root, &emulator, environment);
        assert_eq!(code, 0, "drift after the merge's apply: {report:#}");
    }

    // Behind git's back: wrangler deploys other code to the staging worker,
    // and deletes the staging users namespace.
    let wrangler = Wrangler::new(wrangler_bin, &emulator);
    wrangler.write(
        "wrangler.toml",
        "name = \"shop-api-staging\"\nmain = \"index.js\"\ncompatibility_date = \"2025-01-15\"\n",
    );
    wrangler.write(
        "index.js",
        "export default { fetch() { return new Response('hotfix by hand'); } };\n",
    );
    wrangler.run(&["deploy"]).success();
    let users = kv_id(&emulator, "shop-users-staging");
    wrangler
        .run(&["kv", "namespace", "delete", "--namespace-id", &users, "-y"])
        .success();

    // Drift names both, each under its cause; production is untouched.
    let text = expect(
        run(root, &emulator, &["drift", "--env", "staging"]),
        2,
        "drift after wrangler",
    );
    assert!(
        text.stdout.contains("Changed outside git (1):"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains("Deleted outside git (1):"),
        "{}",
        text.stdout
    );
    assert!(text.stdout.contains("workers.api"), "{}", text.stdout);
    assert!(
        text.stdout.contains("kv_namespaces.users"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains(&format!("recorded id {users}")),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains("not a version flareops made from git"),
        "{}",
        text.stdout
    );
    let (code, report) = drift_json(root, &emulator, "staging");
    assert_eq!(code, 2);
    assert_eq!(addresses(&report, "changed_outside_git"), ["workers.api"]);
    assert_eq!(
        addresses(&report, "deleted_outside_git"),
        ["kv_namespaces.users"]
    );
    assert_eq!(addresses(&report, "pending"), Vec::<String>::new());
    let serving = &report["changed_outside_git"][0]["serving"];
    assert_eq!(serving["made_by_flareops"], Value::Bool(false), "{serving}");
    assert!(
        serving["deployed_by"].is_string(),
        "who deployed: {serving}"
    );
    assert!(serving["version_id"].is_string(), "{serving}");
    let markdown = expect(
        run(
            root,
            &emulator,
            &["drift", "--env", "staging", "--format", "markdown"],
        ),
        2,
        "drift markdown",
    );
    assert!(
        markdown
            .stdout
            .starts_with("<!-- flareops-drift:staging -->\n"),
        "{}",
        markdown.stdout
    );
    assert!(markdown.stdout.contains("| changed outside git | 1 |"));
    assert!(markdown.stdout.contains("| deleted outside git | 1 |"));
    let (code, report) = drift_json(root, &emulator, "production");
    assert_eq!(code, 0, "production has no drift: {report:#}");

    // Heal, then no drift.
    let healed = expect(
        run(
            root,
            &emulator,
            &["drift", "--env", "staging", "--heal", "--yes"],
        ),
        0,
        "drift --heal",
    );
    assert!(
        healed.stderr.contains("healed: the account matches git"),
        "{}",
        healed.stderr
    );
    let (code, report) = drift_json(root, &emulator, "staging");
    assert_eq!(code, 0, "after heal: {report:#}");
    assert_ne!(
        kv_id(&emulator, "shop-users-staging"),
        users,
        "a new namespace"
    );
}

/// `drift --heal` never deletes data without `--allow-delete`, keeps a JSON
/// report on stdout clean, leaves look-alikes alone (and says so with exit
/// 2), and errors exit 1.
#[test]
fn drift_heal_respects_data_and_look_alikes_and_errors_exit_1() {
    let emulator = TestEmulator::start_with_zones(&[ZONE]);
    let files = base_files(&emulator);
    let files: Vec<(&str, &str)> = files.iter().map(|(p, c)| (*p, c.as_str())).collect();
    let repo = project(&files);
    let root = repo.path();
    git(root, &["init", "-q", "-b", "main"]);
    git(root, &["add", "-A"]);
    git(root, &["commit", "-q", "-m", "base"]);
    expect(
        run(root, &emulator, &["apply", "--env", "staging", "--yes"]),
        0,
        "apply",
    );

    // Git drops the cache namespace: a pending delete, which loses data.
    write(
        root,
        "infra/storage.yaml",
        "kv_namespaces:\n  users:\n    title: shop-users-${env}\n",
    );
    let workers = files
        .iter()
        .find(|(p, _)| *p == "infra/workers.yaml")
        .expect("workers.yaml")
        .1
        .replace("      CACHE: {kv_namespace: cache}\n", "");
    write(root, "infra/workers.yaml", &workers);
    git(root, &["commit", "-q", "-am", "No cache"]);
    // And someone made a look-alike by hand.
    emulator.send(
        "POST",
        &emulator.account_path("/storage/kv/namespaces"),
        Some(serde_json::json!({"title": "shop-scratch-staging"})),
        &[],
    );

    let refused = run(
        root,
        &emulator,
        &["drift", "--env", "staging", "--heal", "--yes"],
    );
    assert_eq!(refused.code, 1, "{}\n{}", refused.stdout, refused.stderr);
    assert!(
        refused.stderr.contains("--allow-delete"),
        "{}",
        refused.stderr
    );
    kv_id(&emulator, "shop-cache-staging");

    let healed = run(
        root,
        &emulator,
        &[
            "drift",
            "--env",
            "staging",
            "--format",
            "json",
            "--heal",
            "--yes",
            "--allow-delete",
        ],
    );
    // The look-alike stays: the account still differs from git.
    assert_eq!(healed.code, 2, "{}\n{}", healed.stdout, healed.stderr);
    let report: Value = serde_json::from_str(&healed.stdout)
        .unwrap_or_else(|e| panic!("stdout is one JSON document ({e}):\n{}", healed.stdout));
    assert_eq!(addresses(&report, "pending").len(), 2, "{report:#}");
    assert_eq!(report["unmanaged"][0]["name"], "shop-scratch-staging");
    assert!(
        healed.stderr.contains("unmanaged look-alikes remain"),
        "{}",
        healed.stderr
    );
    let list = emulator.get(&emulator.account_path("/storage/kv/namespaces?per_page=100"));
    assert!(
        !list.to_string().contains("shop-cache-staging"),
        "the cache namespace was deleted: {list}"
    );
    kv_id(&emulator, "shop-scratch-staging");

    let (code, report) = drift_json(root, &emulator, "staging");
    assert_eq!(code, 2, "{report:#}");
    assert_eq!(addresses(&report, "pending"), Vec::<String>::new());
    assert_eq!(report["unmanaged"].as_array().map(Vec::len), Some(1));

    // Errors exit 1, usage errors included: 2 means drift.
    expect(
        run(root, &emulator, &["drift", "--env", "nowhere"]),
        1,
        "unknown env",
    );
    expect(
        run(root, &emulator, &["drift", "--env", "staging", "--bogus"]),
        1,
        "usage error",
    );
}

/// Plans and drift reports need no secret value (a pull request's plan job
/// gets none); apply and a saved plan do.
#[test]
fn read_only_runs_need_no_secret_values_but_apply_does() {
    let emulator = TestEmulator::start_with_zones(&[ZONE]);
    let files = base_files(&emulator);
    let files: Vec<(&str, &str)> = files.iter().map(|(p, c)| (*p, c.as_str())).collect();
    let repo = project(&files);
    let root = repo.path();
    let without_secret = |args: &[&str]| {
        flareops(root, &emulator)
            .env_remove("SHOP_TOKEN")
            .args(args)
            .output()
            .expect("run flareops")
    };
    let plan = without_secret(&["plan", "--env", "staging"]);
    let stdout = String::from_utf8_lossy(&plan.stdout);
    assert!(
        plan.status.success(),
        "{}",
        String::from_utf8_lossy(&plan.stderr)
    );
    assert!(stdout.contains("secrets.TOKEN: (sensitive)"), "{stdout}");
    assert!(
        stdout.contains("secret values not available to this run (SHOP_TOKEN)"),
        "{stdout}"
    );
    let comment = without_secret(&["plan", "--env", "staging", "--format", "markdown"]);
    assert!(comment.status.success());
    let drift = without_secret(&["drift", "--env", "staging"]);
    assert_eq!(drift.status.code(), Some(2), "never applied: all pending");

    let apply = without_secret(&["apply", "--env", "staging", "--yes"]);
    assert_eq!(apply.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&apply.stderr).contains("`SHOP_TOKEN` (secret `TOKEN`) is not set")
    );
    let saved = without_secret(&["plan", "--env", "staging", "--out", "plan.json"]);
    assert_eq!(
        saved.status.code(),
        Some(1),
        "a saved plan is applied later"
    );
    let heal = without_secret(&["drift", "--env", "staging", "--heal", "--yes"]);
    assert_eq!(heal.status.code(), Some(1));
    assert_eq!(
        emulator.get(&emulator.account_path("/workers/scripts"))["result"],
        serde_json::json!([]),
        "nothing was uploaded"
    );
}
