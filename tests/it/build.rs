//! The worker build step on the example (a TypeScript Hono app bundled by
//! esbuild from npm) and on a small counting build: a deployed bundle plans
//! empty, an edited source line shows as a source diff and a new version, a
//! broken import fails before any request, an unchanged build is reused,
//! and two fresh copies build the same bytes.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::requests::example;
use crate::support::{BUILD_CACHE_VAR, TestEmulator, flareops, git, project, write};

const SECRETS: [(&str, &str); 2] = [
    ("KLEAR_KARMA_JWT_SECRET", "jwt-secret-for-the-test"),
    ("KLEAR_KARMA_API_KEY", "api-key-for-the-test"),
];

/// The example in a git repository of its own, committed.
fn example_repo(emulator: &TestEmulator) -> tempfile::TempDir {
    let root = example(emulator);
    write(
        root.path(),
        ".gitignore",
        "/.flareops/\nnode_modules/\n/workers/*/dist/\n",
    );
    git(root.path(), &["init", "-q", "-b", "main"]);
    git(root.path(), &["add", "-A"]);
    git(root.path(), &["commit", "-q", "-m", "the example"]);
    root
}

fn run(root: &Path, emulator: &TestEmulator, args: &[&str]) -> (i32, String, String) {
    let output = flareops(root, emulator)
        .envs(SECRETS)
        .args(args)
        .output()
        .expect("run flareops");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn the_built_example_deploys_plans_empty_and_an_edited_line_shows_as_a_source_diff() {
    let emulator = TestEmulator::start_with_zones(&["klearkarma.com"]);
    let root = example_repo(&emulator);
    let root = root.path();
    let (code, out, err) = run(root, &emulator, &["apply", "--env", "staging", "--yes"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let (code, out, err) = run(
        root,
        &emulator,
        &["plan", "--env", "staging", "--detailed-exitcode"],
    );
    assert_eq!(code, 0, "a plan right after apply is empty:\n{out}\n{err}");

    // One line of the sources changes.
    let index = root.join("workers/api/src/index.ts");
    let text = std::fs::read_to_string(&index).expect("index.ts");
    let edited = text.replace(
        r#"c.json({ status: "ok", version: c.env.API_VERSION })"#,
        r#"c.json({ status: "healthy", version: c.env.API_VERSION })"#,
    );
    assert_ne!(
        text, edited,
        "the health route is where the test expects it"
    );
    std::fs::write(&index, edited).expect("edit index.ts");
    let (code, out, err) = run(
        root,
        &emulator,
        &["plan", "--env", "staging", "--detailed-exitcode"],
    );
    assert_eq!(code, 2, "{out}\n{err}");
    let commit = git(root, &["rev-parse", "--short=12", "HEAD"]);
    assert!(
        out.contains(&format!("--- {commit}/workers/api/src/index.ts")),
        "the diff names the deployed commit's source file:\n{out}"
    );
    assert!(out.contains("+++ git/workers/api/src/index.ts"), "{out}");
    assert!(
        out.contains(r#"-app.get("/health", (c) => c.json({ status: "ok""#),
        "{out}"
    );
    assert!(
        out.contains(r#"+app.get("/health", (c) => c.json({ status: "healthy""#),
        "{out}"
    );
    assert!(
        !out.contains("index.js"),
        "the bundle's diff is not shown when the sources' is:\n{out}"
    );
    assert!(
        out.contains("version: #1 ") && out.contains(" -> new "),
        "a new version replaces the deployed one:\n{out}"
    );
}

#[test]
fn a_broken_import_fails_the_plan_with_the_build_error_and_makes_no_request() {
    let emulator = TestEmulator::start_with_zones(&["klearkarma.com"]);
    let root = example(&emulator);
    let index = root.path().join("workers/api/src/index.ts");
    let text = std::fs::read_to_string(&index).expect("index.ts");
    std::fs::write(
        &index,
        text.replace(r#"from "./practitioners""#, r#"from "./practitionerz""#),
    )
    .expect("break the import");
    let before = emulator.stats_total();
    let (code, out, err) = run(root.path(), &emulator, &["plan", "--env", "staging"]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        err.contains("infra/workers.yaml:") && err.contains("workers.api.build.command"),
        "located at the build's command:\n{err}"
    );
    assert!(
        err.contains(r#"Could not resolve "./practitionerz""#),
        "the build's own error is shown:\n{err}"
    );
    assert_eq!(emulator.stats_total(), before, "no request was made");
}

/// A project whose worker is built by a shell command that counts its
/// runs in `runs` (outside the inputs).
fn counting_project(emulator: &TestEmulator) -> tempfile::TempDir {
    project(&[
        (
            "environments/staging.yaml",
            &format!("account_id: {}\n", emulator.account_id),
        ),
        (
            "infra/workers.yaml",
            "workers:\n  api:\n    name: api-${env}\n    build:\n      command: echo run >> ../../runs && mkdir -p out && cp src/index.js out/index.js\n      dir: workers/api\n      inputs: [\"src/**\"]\n      output: out\n    main: workers/api/out/index.js\n    compatibility_date: \"2025-01-15\"\n",
        ),
        (
            "workers/api/src/index.js",
            "export default { fetch() { return new Response('one'); } };\n",
        ),
    ])
}

fn runs(root: &Path) -> usize {
    std::fs::read_to_string(root.join("runs"))
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

#[test]
fn an_unchanged_build_is_reused_and_a_changed_input_builds_again() {
    let emulator = TestEmulator::start();
    let root = counting_project(&emulator);
    let root = root.path();
    let cache = tempfile::tempdir().expect("cache");
    let plan = |args: &[&str]| {
        let output = flareops(root, &emulator)
            .env(BUILD_CACHE_VAR, cache.path())
            .args(args)
            .output()
            .expect("run flareops");
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    };
    let (code, _) = plan(&["apply", "--env", "staging", "--yes"]);
    assert_eq!(code, 0);
    assert_eq!(runs(root), 1);
    let (code, out) = plan(&["plan", "--env", "staging", "--detailed-exitcode"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(runs(root), 1, "a no-op plan reuses the build");
    // Without the output (a fresh checkout with a warm cache): restored.
    std::fs::remove_dir_all(root.join("workers/api/out")).expect("remove the output");
    let (code, out) = plan(&["plan", "--env", "staging", "--detailed-exitcode"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(runs(root), 1, "restored from the cache, not rebuilt");
    write(
        root,
        "workers/api/src/index.js",
        "export default { fetch() { return new Response('two'); } };\n",
    );
    let (code, out) = plan(&["plan", "--env", "staging", "--detailed-exitcode"]);
    assert_eq!(code, 2, "{out}");
    assert_eq!(runs(root), 2, "a changed input builds again");
    // Not a git checkout: the bundle's own diff is shown.
    assert!(
        out.contains("+export default { fetch() { return new Response('two'); } };"),
        "{out}"
    );
}

/// The worker's part of a JSON plan (with each module's SHA-256).
fn worker_change(plan: &Value) -> Value {
    plan["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .find(|c| c["address"] == "workers.api")
        .cloned()
        .expect("a change for workers.api")
}

#[test]
fn two_fresh_copies_of_the_example_build_the_same_bytes() {
    let emulator = TestEmulator::start_with_zones(&["klearkarma.com"]);
    let mut plans = Vec::new();
    let mut bundles = Vec::new();
    for _ in 0..2 {
        let root = example(&emulator);
        let cache = tempfile::tempdir().expect("cache");
        let output = flareops(root.path(), &emulator)
            .envs(SECRETS)
            .env(BUILD_CACHE_VAR, cache.path())
            .args(["plan", "--env", "staging", "--format", "json"])
            .output()
            .expect("run flareops");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let plan: Value = serde_json::from_slice(&output.stdout).expect("json plan");
        plans.push(worker_change(&plan));
        let dist = root.path().join("workers/api/dist");
        bundles.push((
            std::fs::read(dist.join("index.js")).expect("bundle"),
            std::fs::read(dist.join("index.js.map")).expect("source map"),
        ));
    }
    assert!(
        plans[0].to_string().contains("index.js.map"),
        "the source map is uploaded: {}",
        plans[0]
    );
    assert_eq!(plans[0], plans[1], "the same identity and modules");
    assert!(bundles[0] == bundles[1], "the same bundle and map bytes");
}

#[test]
fn the_built_example_runs_in_the_local_workers_runtime() {
    // workerd, through the miniflare that ships with the pinned wrangler.
    if crate::wrangler::wrangler_or_skip("the_built_example_runs_in_the_local_workers_runtime")
        .is_none()
    {
        return;
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let miniflare = repo.join("tools/wrangler/node_modules/miniflare/dist/src/index.js");
    let emulator = TestEmulator::start_with_zones(&["klearkarma.com"]);
    let root = example(&emulator);
    // flareops builds it (as plan and apply do), without a request.
    let before = emulator.stats_total();
    let (code, out, err) = run(root.path(), &emulator, &["validate", "--env", "staging"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(emulator.stats_total(), before);
    let output = Command::new("node")
        .arg(repo.join("tests/runtime/api.mjs"))
        .arg(&miniflare)
        .arg(root.path().join("workers/api/dist"))
        .arg(root.path().join("migrations/main"))
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for check in [
        "ok - GET /health answers ok with the API version",
        "ok - a protected route without a token is 401",
        "ok - login returns a JWT signed with JWT_SECRET",
        "ok - with the token, a booking is written to D1 and read back",
        "ok - a booking's confirmation goes through the queue to its consumer",
        "ok - practitioner search reads PRACTITIONERS_KV",
        "ok - the ChatRoom Durable Object keeps a room's messages",
        "ok - the hourly cron writes the hour's roll-up to ANALYTICS_KV",
    ] {
        assert!(stdout.contains(check), "missing `{check}`:\n{stdout}");
    }
}

#[test]
fn a_build_sees_no_credential_and_no_secret_value() {
    let emulator = TestEmulator::start();
    let root = counting_project(&emulator);
    let root = root.path();
    let workers = root.join("infra/workers.yaml");
    let text = std::fs::read_to_string(&workers).expect("workers.yaml");
    std::fs::write(
        &workers,
        text.replace("command: echo run", "command: env > ../../seen && echo run")
            .replace(
                "    compatibility_date",
                "    secrets:\n      JWT_SECRET: {from_env: KLEAR_KARMA_JWT_SECRET}\n    compatibility_date",
            ),
    )
    .expect("write workers.yaml");
    let cache = tempfile::tempdir().expect("cache");
    let (code, out, err) = {
        let output = flareops(root, &emulator)
            .envs(SECRETS)
            .env(BUILD_CACHE_VAR, cache.path())
            .args(["plan", "--env", "staging"])
            .output()
            .expect("run flareops");
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    assert_eq!(code, 0, "{out}\n{err}");
    let seen = std::fs::read_to_string(root.join("seen")).expect("the build's environment");
    assert!(seen.contains("PATH="), "{seen}");
    for value in [SECRETS[0].1, SECRETS[1].1, emulator.token.as_str()] {
        assert!(
            !seen.contains(value),
            "the build saw a secret or the token:\n{seen}"
        );
    }
    assert!(!seen.contains("CLOUDFLARE_"), "{seen}");
}
