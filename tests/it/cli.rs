//! The core loop through the real binary: create, no-op, in-place update,
//! replace with and without permission, protect, bad token, restart.

use predicates::prelude::*;
use predicates::str::contains;

use crate::support::{TestEmulator, flareops, project, write};

fn infra(storage_class: &str, location: &str, protect: bool) -> String {
    infra_in(storage_class, location, protect, "")
}

/// [`infra`] with the bucket in `jurisdiction` (`""`: the default one).
fn infra_in(storage_class: &str, location: &str, protect: bool, jurisdiction: &str) -> String {
    let jurisdiction = if jurisdiction.is_empty() {
        String::new()
    } else {
        format!("    jurisdiction: {jurisdiction}\n")
    };
    format!(
        "kv_namespaces:
  users:
    title: kk-users-${{env}}
  reviews:
    title: kk-reviews-${{env}}
d1_databases:
  main:
    name: kk-db-${{env}}
r2_buckets:
  assets:
    name: kk-assets-${{env}}
    location_hint: {location}
    storage_class: {storage_class}
    protect: {protect}
{jurisdiction}"
    )
}

fn environment(emulator: &TestEmulator) -> String {
    format!("account_id: {}\n", emulator.account_id)
}

fn kv_titles(emulator: &TestEmulator) -> Vec<String> {
    let list = emulator.get(&emulator.account_path("/storage/kv/namespaces?per_page=100"));
    let mut titles: Vec<String> = list["result"]
        .as_array()
        .expect("kv list")
        .iter()
        .map(|ns| ns["title"].as_str().expect("title").to_string())
        .collect();
    titles.sort();
    titles
}

fn bucket(emulator: &TestEmulator, name: &str) -> serde_json::Value {
    bucket_in(emulator, name, "default")
}

fn bucket_in(emulator: &TestEmulator, name: &str, jurisdiction: &str) -> serde_json::Value {
    let list = emulator.send(
        "GET",
        &emulator.account_path("/r2/buckets"),
        None,
        &[("cf-r2-jurisdiction", jurisdiction)],
    );
    list["result"]["buckets"]
        .as_array()
        .expect("bucket list")
        .iter()
        .find(|b| b["name"] == name)
        .cloned()
        .unwrap_or(serde_json::Value::Null)
}

#[test]
fn create_then_no_op_then_update_then_replace() {
    let emulator = TestEmulator::start();
    let root = project(&[
        ("infra/storage.yaml", &infra("Standard", "weur", false)),
        ("environments/staging.yaml", &environment(&emulator)),
    ]);

    // Create: everything is new.
    flareops(root.path(), &emulator)
        .args(["plan", "--env", "staging", "--detailed-exitcode"])
        .assert()
        .code(2)
        .stdout(contains("+ create kv_namespaces.users"))
        .stdout(contains(
            "Plan: 4 to create, 0 to update, 0 to replace, 0 to delete.",
        ));
    flareops(root.path(), &emulator)
        .args(["apply", "--env", "staging", "--yes"])
        .assert()
        .success()
        .stdout(contains("Apply complete: 4 of 4 changes made."));
    assert_eq!(
        kv_titles(&emulator),
        ["kk-reviews-staging", "kk-users-staging"]
    );
    assert_eq!(
        bucket(&emulator, "kk-assets-staging")["storage_class"],
        "Standard"
    );

    // No-op: a second apply changes nothing, and plan says so.
    flareops(root.path(), &emulator)
        .args(["apply", "--env", "staging", "--yes"])
        .assert()
        .success()
        .stdout(contains("No changes."));
    let before = emulator.stats();
    flareops(root.path(), &emulator)
        .args(["plan", "--env", "staging", "--detailed-exitcode"])
        .assert()
        .code(0)
        .stdout(contains("No changes."));
    // A plan reads with one list call per kind and one ledger query: no
    // per-resource GET, no write.
    let after = emulator.stats();
    let delta = |key: &str| {
        after["endpoints"][key].as_u64().unwrap_or(0)
            - before["endpoints"][key].as_u64().unwrap_or(0)
    };
    assert_eq!(
        after["total"].as_u64().unwrap() - before["total"].as_u64().unwrap(),
        4,
        "{after}"
    );
    assert_eq!(delta("GET /accounts/{account_id}/storage/kv/namespaces"), 1);
    assert_eq!(delta("GET /accounts/{account_id}/d1/database"), 1);
    assert_eq!(delta("GET /accounts/{account_id}/r2/buckets"), 1);
    assert_eq!(
        delta("POST /accounts/{account_id}/d1/database/{database_id}/query"),
        1
    );

    // In-place update: the storage class.
    write(
        root.path(),
        "infra/storage.yaml",
        &infra("InfrequentAccess", "weur", false),
    );
    flareops(root.path(), &emulator)
        .args(["apply", "--env", "staging", "--yes"])
        .assert()
        .success()
        .stdout(contains("~ update r2_buckets.assets"))
        .stdout(contains(
            r#"storage_class: "Standard" -> "InfrequentAccess""#,
        ));
    assert_eq!(
        bucket(&emulator, "kk-assets-staging")["storage_class"],
        "InfrequentAccess"
    );

    // A location hint is only a wish at creation: another hint is a note,
    // never a replacement.
    write(
        root.path(),
        "infra/storage.yaml",
        &infra("InfrequentAccess", "apac", false),
    );
    flareops(root.path(), &emulator)
        .args(["plan", "--env", "staging", "--detailed-exitcode"])
        .assert()
        .code(0)
        .stdout(contains("a location hint only applies at creation"));

    // Replace: another jurisdiction cannot change in place; refused without
    // permission.
    write(
        root.path(),
        "infra/storage.yaml",
        &infra_in("InfrequentAccess", "weur", false, "eu"),
    );
    let before = emulator.stats();
    flareops(root.path(), &emulator)
        .args(["apply", "--env", "staging", "--yes"])
        .assert()
        .code(1)
        .stdout(contains("-/+ replace r2_buckets.assets"))
        .stderr(contains("refusing to apply"))
        .stderr(contains("--allow-delete"));
    // Nothing managed was written: no write to any KV, D1 or R2 endpoint
    // (the ledger's own query endpoint aside).
    let after = emulator.stats();
    for (endpoint, count) in after["endpoints"].as_object().expect("endpoints") {
        let was = before["endpoints"][endpoint].as_u64().unwrap_or(0);
        let is_write = !endpoint.starts_with("GET ") && !endpoint.ends_with("/query");
        if is_write {
            assert_eq!(
                count.as_u64().unwrap_or(0),
                was,
                "a refused apply wrote: {endpoint}"
            );
        }
    }
    assert!(!bucket(&emulator, "kk-assets-staging").is_null());

    flareops(root.path(), &emulator)
        .args(["apply", "--env", "staging", "--yes", "--allow-delete"])
        .assert()
        .success();
    assert!(bucket(&emulator, "kk-assets-staging").is_null());
    assert_eq!(
        bucket_in(&emulator, "kk-assets-staging", "eu")["jurisdiction"],
        "eu"
    );
    flareops(root.path(), &emulator)
        .args(["plan", "--env", "staging", "--detailed-exitcode"])
        .assert()
        .code(0);
}

#[test]
fn protect_refuses_a_replace_even_with_allow_delete() {
    let emulator = TestEmulator::start();
    let root = project(&[
        ("infra/storage.yaml", &infra("Standard", "weur", true)),
        ("environments/staging.yaml", &environment(&emulator)),
    ]);
    flareops(root.path(), &emulator)
        .args(["apply", "--env", "staging", "--yes"])
        .assert()
        .success();
    write(
        root.path(),
        "infra/storage.yaml",
        &infra_in("Standard", "weur", true, "eu"),
    );
    flareops(root.path(), &emulator)
        .args(["apply", "--env", "staging", "--yes", "--allow-delete"])
        .assert()
        .code(1)
        .stderr(contains("`r2_buckets.assets` is protected"));
    assert!(!bucket(&emulator, "kk-assets-staging").is_null());
}

#[test]
fn json_plan_has_a_format_version_and_the_changes() {
    let emulator = TestEmulator::start();
    let root = project(&[
        ("infra/storage.yaml", &infra("Standard", "weur", false)),
        ("environments/staging.yaml", &environment(&emulator)),
    ]);
    let output = flareops(root.path(), &emulator)
        .args(["plan", "--env", "staging", "--format", "json"])
        .output()
        .expect("run plan");
    assert!(output.status.success());
    let plan: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON plan");
    assert_eq!(plan["format_version"], 2);
    assert_eq!(plan["environment"], "staging");
    assert_eq!(plan["summary"]["create"], 4);
    assert_eq!(plan["changes"][0]["address"], "kv_namespaces.reviews");
    assert_eq!(plan["changes"][2]["steps"][0]["op"], "create_d1_database");
    assert_eq!(plan["live_fingerprint"].as_str().map(str::len), Some(64));
}

#[test]
fn a_wrong_token_is_a_clear_error_and_never_printed() {
    let emulator = TestEmulator::start();
    let root = project(&[
        ("infra/storage.yaml", &infra("Standard", "weur", false)),
        ("environments/staging.yaml", &environment(&emulator)),
    ]);
    let wrong = "wrong-token-canary-5d41402abc4b2a76";
    flareops(root.path(), &emulator)
        .env("CLOUDFLARE_API_TOKEN", wrong)
        .env("RUST_LOG", "trace")
        .args(["apply", "--env", "staging", "--yes"])
        .assert()
        .code(1)
        .stderr(contains("hint: check CLOUDFLARE_API_TOKEN"))
        .stderr(contains(wrong).not())
        .stdout(contains(wrong).not());
    assert!(kv_titles(&emulator).is_empty());
}

#[test]
fn a_missing_token_says_what_to_do() {
    let emulator = TestEmulator::start();
    let root = project(&[
        ("infra/storage.yaml", &infra("Standard", "weur", false)),
        ("environments/staging.yaml", &environment(&emulator)),
    ]);
    flareops(root.path(), &emulator)
        .env_remove("CLOUDFLARE_API_TOKEN")
        .args(["plan", "--env", "staging"])
        .assert()
        .code(1)
        .stderr(contains("CLOUDFLARE_API_TOKEN is not set"))
        .stderr(contains("--local"));
    assert_eq!(emulator.stats_total(), 0);
}

#[test]
fn apply_without_a_terminal_needs_yes() {
    let emulator = TestEmulator::start();
    let root = project(&[
        ("infra/storage.yaml", &infra("Standard", "weur", false)),
        ("environments/staging.yaml", &environment(&emulator)),
    ]);
    flareops(root.path(), &emulator)
        .args(["apply", "--env", "staging"])
        .write_stdin("yes\n")
        .assert()
        .code(1)
        .stderr(contains("pass --yes"));
    assert!(kv_titles(&emulator).is_empty());
}

#[test]
fn the_emulator_keeps_its_state_across_a_restart() {
    let mut emulator = TestEmulator::start();
    let root = project(&[
        ("infra/storage.yaml", &infra("Standard", "weur", false)),
        ("environments/staging.yaml", &environment(&emulator)),
    ]);
    flareops(root.path(), &emulator)
        .args(["apply", "--env", "staging", "--yes"])
        .assert()
        .success();
    emulator.restart();
    assert_eq!(
        emulator.stats_total(),
        0,
        "a new process starts new counters"
    );
    flareops(root.path(), &emulator)
        .args(["plan", "--env", "staging", "--detailed-exitcode"])
        .assert()
        .code(0)
        .stdout(contains("No changes."));
}

#[test]
fn local_mode_runs_the_whole_loop_without_an_account() {
    let root = project(&[
        ("infra/storage.yaml", &infra("Standard", "weur", false)),
        (
            "environments/staging.yaml",
            "account_id: 00000000000000000000000000000001\n",
        ),
        ("environments/dev.yaml", "account: local\n"),
    ]);
    let bin = crate::support::flareops_bin();
    let run = |args: &[&str]| {
        assert_cmd::Command::new(&bin)
            .current_dir(root.path())
            .env_remove("CLOUDFLARE_API_TOKEN")
            .env_remove("CLOUDFLARE_API_BASE_URL")
            .args(args)
            .assert()
    };
    run(&["apply", "--env", "staging", "--local", "--yes"])
        .success()
        .stdout(contains("Apply complete: 4 of 4 changes made."));
    run(&["plan", "--env", "staging", "--local"])
        .success()
        .stdout(contains("No changes."));
    // `account: local` needs no flag.
    run(&["apply", "--env", "dev", "--yes"])
        .success()
        .stdout(contains("+ create kv_namespaces.users"));
    assert!(root.path().join(".flareops/local").is_dir());
}

/// The token never goes out over plain http to anything but a loopback
/// address: the run stops before connecting, naming the variable.
#[test]
fn a_plain_http_api_url_elsewhere_is_refused_before_any_request() {
    let emulator = TestEmulator::start();
    let root = project(&[
        ("infra/storage.yaml", &infra("Standard", "weur", false)),
        ("environments/staging.yaml", &environment(&emulator)),
    ]);
    let output = flareops(root.path(), &emulator)
        .env("CLOUDFLARE_API_BASE_URL", "http://203.0.113.5/client/v4")
        .args(["plan", "--env", "staging"])
        .output()
        .expect("plan");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("CLOUDFLARE_API_BASE_URL"), "{stderr}");
    assert!(stderr.contains("clear text"), "{stderr}");
    assert!(!stderr.contains(&emulator.token), "{stderr}");
}

/// A saved plan and the local account's state are the owner's alone.
#[cfg(unix)]
#[test]
fn saved_plans_and_local_state_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let emulator = TestEmulator::start();
    let root = project(&[
        ("infra/storage.yaml", &infra("Standard", "weur", false)),
        ("environments/staging.yaml", &environment(&emulator)),
    ]);
    flareops(root.path(), &emulator)
        .args(["plan", "--env", "staging", "--local", "--out", "plan.json"])
        .assert()
        .success();
    let mode = |path: &str| {
        std::fs::metadata(root.path().join(path))
            .unwrap_or_else(|e| panic!("{path}: {e}"))
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("plan.json"), 0o600);
    assert_eq!(mode(".flareops"), 0o700);
    assert_eq!(mode(".flareops/local"), 0o700);
}

/// The emulator listens beyond loopback only with a token made for it.
#[test]
fn the_emulator_will_not_expose_an_inherited_token_to_the_network() {
    let state = tempfile::tempdir().expect("state");
    let output = std::process::Command::new(crate::support::flareops_bin())
        .args(["emulator", "--listen", "0.0.0.0:0", "--state"])
        .arg(state.path())
        .env("CLOUDFLARE_API_TOKEN", "a-real-looking-token")
        .output()
        .expect("run the emulator");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not a loopback address"), "{stderr}");
    assert!(!stderr.contains("a-real-looking-token"), "{stderr}");
}

/// git, run by flareops, sees no credential: not the API token, not a
/// secret value, no FLAREOPS_* setting (a fake `git` first on PATH records
/// its environment, then runs the real one).
#[cfg(unix)]
#[test]
fn git_run_by_flareops_sees_no_credential() {
    use std::os::unix::fs::PermissionsExt;
    let real_git = std::process::Command::new("sh")
        .args(["-c", "command -v git"])
        .output()
        .expect("find git");
    let real_git = String::from_utf8_lossy(&real_git.stdout).trim().to_string();
    assert!(!real_git.is_empty(), "git is needed for this test");
    let bin = tempfile::tempdir().expect("bin dir");
    let seen = bin.path().join("seen.env");
    let fake = bin.path().join("git");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\nenv >> '{}'\nexec '{real_git}' \"$@\"\n",
            seen.display()
        ),
    )
    .expect("fake git");
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let emulator = TestEmulator::start();
    let root = project(&[
        ("infra/storage.yaml", &infra("Standard", "weur", false)),
        ("environments/staging.yaml", &environment(&emulator)),
    ]);
    for args in [
        vec!["init", "-q"],
        vec!["add", "-A"],
        vec![
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
            "commit",
            "-qm",
            "v1",
        ],
    ] {
        let status = std::process::Command::new(&real_git)
            .args(&args)
            .current_dir(root.path())
            .status()
            .expect("git");
        assert!(status.success());
    }
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    flareops(root.path(), &emulator)
        .env("PATH", path)
        .env("FLAREOPS_CANARY_SETTING", "flareops-canary")
        .env("SHOP_SECRET", "secret-canary")
        .args(["apply", "--env", "staging", "--yes"])
        .assert()
        .success();
    let seen = std::fs::read_to_string(&seen).expect("git ran and recorded its environment");
    assert!(seen.contains("PATH="), "{seen}");
    for canary in [
        emulator.token.as_str(),
        "flareops-canary",
        "secret-canary",
        "CLOUDFLARE_",
        "FLAREOPS_",
    ] {
        assert!(!seen.contains(canary), "git saw {canary}:\n{seen}");
    }
}

/// `validate --check-token` asks Cloudflare about the token: an active one
/// passes with its expiry printed, an expired one fails.
#[test]
fn check_token_reports_the_status_and_fails_on_an_expired_token() {
    let active =
        crate::support::start_emulator_with_args(&["--token-expires-on", "2999-01-01T00:00:00Z"]);
    let root = project(&[
        ("infra/storage.yaml", &infra("Standard", "weur", false)),
        ("environments/staging.yaml", &environment(&active)),
    ]);
    flareops(root.path(), &active)
        .args(["validate", "--env", "staging", "--check-token"])
        .assert()
        .success()
        .stderr(contains(
            "staging: API token active (expires 2999-01-01T00:00:00Z)",
        ));
    let expired =
        crate::support::start_emulator_with_args(&["--token-expires-on", "2020-01-01T00:00:00Z"]);
    write(
        root.path(),
        "environments/staging.yaml",
        &environment(&expired),
    );
    flareops(root.path(), &expired)
        .args(["validate", "--env", "staging", "--check-token"])
        .assert()
        .code(1)
        .stderr(contains("staging: API token expired"))
        .stderr(contains(
            "the API token is not active for staging (expired)",
        ));
}

/// Shell completions and the man page come from the same definition as
/// the commands, so every subcommand is in them.
#[test]
fn completions_and_the_man_page_list_every_command() {
    let dir = tempfile::tempdir().expect("dir");
    let run = |args: &[&str]| {
        let output = std::process::Command::new(crate::support::flareops_bin())
            .current_dir(dir.path())
            .args(args)
            .output()
            .expect("run flareops");
        assert!(output.status.success(), "{args:?}");
        String::from_utf8(output.stdout).expect("utf-8")
    };
    let commands = [
        "validate", "plan", "apply", "emulator", "history", "unlock", "revert", "drift",
    ];
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let script = run(&["completions", shell]);
        for command in commands {
            assert!(script.contains(command), "{shell}: {command}");
        }
    }
    assert!(run(&["completions", "bash"]).contains("complete -F"));
    let man = run(&["man"]);
    assert!(
        man.starts_with(".ie") || man.contains(".TH flareops"),
        "{man}"
    );
    for command in commands {
        assert!(man.contains(command), "man: {command}");
    }
    std::process::Command::new(crate::support::flareops_bin())
        .args(["completions", "tcsh"])
        .output()
        .map(|o| {
            assert_eq!(
                o.status.code(),
                Some(1),
                "an unknown shell is a usage error"
            )
        })
        .expect("run");
}

/// Long steps report progress on stderr: timestamped lines when stderr is
/// not a terminal (CI logs), nothing with `-q`.
#[test]
fn migrations_report_progress_as_timestamped_lines_and_q_silences_them() {
    let migrations = [
        (
            "migrations/main/0001_users.sql",
            "CREATE TABLE users (id TEXT PRIMARY KEY);\n",
        ),
        (
            "migrations/main/0002_posts.sql",
            "CREATE TABLE posts (id TEXT PRIMARY KEY);\n",
        ),
    ];
    let run = |quiet: bool, name: &str| {
        let emulator = TestEmulator::start();
        let mut files = vec![
            (
                "environments/staging.yaml".to_string(),
                format!("account_id: {}\n", emulator.account_id),
            ),
            (
                "infra/d1.yaml".to_string(),
                format!(
                    "d1_databases:\n  main:\n    name: {name}-${{env}}\n    migrations: migrations/main\n"
                ),
            ),
        ];
        files.extend(
            migrations
                .iter()
                .map(|(p, c)| (p.to_string(), c.to_string())),
        );
        let borrowed: Vec<(&str, &str)> = files
            .iter()
            .map(|(p, c)| (p.as_str(), c.as_str()))
            .collect();
        let root = project(&borrowed);
        let mut command = flareops(root.path(), &emulator);
        if quiet {
            command.arg("-q");
        }
        let output = command
            .args(["apply", "--env", "staging", "--yes"])
            .output()
            .expect("run flareops");
        assert!(output.status.success());
        (
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (_, stderr) = run(false, "progress");
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("migration "))
        .collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    for (line, file) in lines.iter().zip([
        "1/2 on D1 database progress-staging: 0001_users.sql",
        "2/2 on D1 database progress-staging: 0002_posts.sql",
    ]) {
        // `[HH:MM:SSZ] migration ...`
        let (stamp, text) = line.split_once("] ").expect("a timestamp");
        assert_eq!(stamp.len(), 10, "{line}");
        assert!(stamp.starts_with('[') && stamp.ends_with('Z'), "{line}");
        assert_eq!(text, format!("migration {file}"));
    }
    let (stdout, stderr) = run(true, "quiet");
    assert!(!stderr.contains("migration "), "-q: {stderr}");
    assert!(
        stdout.contains("d1_databases.main"),
        "results still print: {stdout}"
    );
}
