//! Apply locks with leases: two concurrent applies to one environment never
//! both write, a stale lease is taken over, a live one makes apply wait and
//! then fail naming its holder, and `unlock` removes it. `plan` takes no lock.

use std::process::{Command, Stdio};

use predicates::prelude::*;
use predicates::str::contains;
use serde_json::{Value, json};

use crate::support::{TestEmulator, flareops, flareops_bin, project, write};

const INFRA: &str = "kv_namespaces:
  users:
    title: kk-users-${env}
  reviews:
    title: kk-reviews-${env}
d1_databases:
  main:
    name: kk-db-${env}
";

fn setup(emulator: &TestEmulator) -> tempfile::TempDir {
    project(&[
        ("infra/storage.yaml", INFRA),
        (
            "environments/staging.yaml",
            &format!("account_id: {}\n", emulator.account_id),
        ),
    ])
}

/// How many times each name appears in a list answer (`key` of each item).
fn count(list: &Value, key: &str, name: &str) -> usize {
    list["result"]
        .as_array()
        .expect("list")
        .iter()
        .filter(|item| item[key] == name)
        .count()
}

fn kv_list(emulator: &TestEmulator) -> Value {
    emulator.get(&emulator.account_path("/storage/kv/namespaces?per_page=100"))
}

fn d1_list(emulator: &TestEmulator) -> Value {
    emulator.get(&emulator.account_path("/d1/database"))
}

fn ledger_id(emulator: &TestEmulator) -> String {
    d1_list(emulator)["result"]
        .as_array()
        .expect("d1 list")
        .iter()
        .find(|db| db["name"] == "flareops-state")
        .and_then(|db| db["uuid"].as_str())
        .expect("the ledger database")
        .to_string()
}

fn query(emulator: &TestEmulator, sql: &str) -> Value {
    let path = emulator.account_path(&format!("/d1/database/{}/query", ledger_id(emulator)));
    let answer = emulator.send("POST", &path, Some(json!({ "sql": sql })), &[]);
    assert_eq!(answer["success"], true, "{answer}");
    answer
}

fn lock_rows(emulator: &TestEmulator) -> Vec<Value> {
    query(emulator, "SELECT * FROM locks")["result"][0]["results"]
        .as_array()
        .expect("rows")
        .clone()
}

/// Puts a lock on `staging` held by someone else, its lease ending `lease`
/// from now (an SQLite modifier such as `+10 minutes`).
fn foreign_lock(emulator: &TestEmulator, lease: &str) {
    query(
        emulator,
        &format!(
            "INSERT INTO locks (environment, holder, host, started_at, lease_expires_at)
             VALUES ('staging', 'mallory (apply 0badc0ffee00)', 'ci-runner-7',
                     datetime('now', '-20 minutes'), datetime('now', '{lease}'))"
        ),
    );
}

#[test]
fn two_concurrent_applies_never_both_write() {
    let emulator = TestEmulator::start();
    let root = setup(&emulator);
    let spawn = || {
        Command::new(flareops_bin())
            .current_dir(root.path())
            .args(["apply", "--env", "staging", "--yes", "--lock-timeout", "1s"])
            .env("CLOUDFLARE_API_BASE_URL", &emulator.base_url)
            .env("CLOUDFLARE_API_TOKEN", &emulator.token)
            .env("CLOUDFLARE_ACCOUNT_ID", &emulator.account_id)
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn flareops apply")
    };
    let (first, second) = (spawn(), spawn());
    let outputs = [first, second].map(|child| child.wait_with_output().expect("apply output"));
    let texts: Vec<(bool, String, String)> = outputs
        .iter()
        .map(|o| {
            (
                o.status.success(),
                String::from_utf8_lossy(&o.stdout).into_owned(),
                String::from_utf8_lossy(&o.stderr).into_owned(),
            )
        })
        .collect();
    let wrote = texts
        .iter()
        .filter(|(ok, out, _)| *ok && out.contains("Apply complete: 3 of 3 changes made"))
        .count();
    assert_eq!(wrote, 1, "{texts:#?}");
    for (ok, out, err) in &texts {
        if out.contains("Apply complete: 3 of 3") {
            continue;
        }
        // The loser waited and gave up naming the holder, or got the lock
        // once the winner was done and found the account changed, or
        // planned after the winner finished: it never wrote a resource.
        let named_holder = err.contains("environment `staging` is locked by another apply")
            && err.contains("held by ")
            && err.contains("on host ")
            && err.contains("since ")
            && err.contains("flareops unlock --env staging");
        let refused_stale = err.contains("the account changed while the plan waited");
        let nothing_to_do = *ok && out.contains("No changes.");
        assert!(
            (!ok && (named_holder || refused_stale)) || nothing_to_do,
            "{out}\n{err}"
        );
        assert!(!out.contains("created"), "{out}");
    }
    let kv = kv_list(&emulator);
    assert_eq!(count(&kv, "title", "kk-users-staging"), 1, "{kv}");
    assert_eq!(count(&kv, "title", "kk-reviews-staging"), 1, "{kv}");
    let d1 = d1_list(&emulator);
    assert_eq!(count(&d1, "name", "kk-db-staging"), 1, "{d1}");
    assert_eq!(count(&d1, "name", "flareops-state"), 1, "{d1}");
    // Both released what they held.
    assert!(lock_rows(&emulator).is_empty());
}

#[test]
fn a_stale_lease_is_taken_over() {
    let emulator = TestEmulator::start();
    let root = setup(&emulator);
    write(
        root.path(),
        "infra/storage.yaml",
        "kv_namespaces:\n  users:\n    title: kk-users-${env}\n",
    );
    flareops(root.path(), &emulator)
        .args(["apply", "--env", "staging", "--yes"])
        .assert()
        .success();
    // A holder killed with SIGKILL left this behind; its lease ran out.
    foreign_lock(&emulator, "-1 minutes");
    write(root.path(), "infra/storage.yaml", INFRA);
    flareops(root.path(), &emulator)
        .args(["apply", "--env", "staging", "--yes", "--lock-timeout", "1s"])
        .assert()
        .success()
        .stderr(contains("mallory").not())
        .stdout(contains("Apply complete: 2 of 2 changes made"));
    assert_eq!(count(&kv_list(&emulator), "title", "kk-reviews-staging"), 1);
    assert!(lock_rows(&emulator).is_empty());
}

#[test]
fn a_live_lock_blocks_apply_until_unlocked_but_not_plan() {
    let emulator = TestEmulator::start();
    let root = setup(&emulator);
    write(
        root.path(),
        "infra/storage.yaml",
        "kv_namespaces:\n  users:\n    title: kk-users-${env}\n",
    );
    flareops(root.path(), &emulator)
        .args(["apply", "--env", "staging", "--yes"])
        .assert()
        .success();
    foreign_lock(&emulator, "+10 minutes");
    write(root.path(), "infra/storage.yaml", INFRA);

    // The apply waits on its own clock: "Waiting" is printed when its first
    // attempt finds the lock taken, "gave up" only by an attempt at or after
    // its deadline, so both together show it tried again after waiting.
    flareops(root.path(), &emulator)
        .args(["apply", "--env", "staging", "--yes", "--lock-timeout", "1s"])
        .assert()
        .code(1)
        .stderr(contains(
            "Waiting up to 1s for the lock of environment `staging`",
        ))
        .stderr(contains("nothing was applied"))
        .stderr(contains(
            "held by mallory (apply 0badc0ffee00) on host ci-runner-7 since ",
        ))
        .stderr(contains("gave up after 1s"))
        .stderr(contains("flareops unlock --env staging"));
    assert_eq!(count(&kv_list(&emulator), "title", "kk-reviews-staging"), 0);

    // plan is read-only: it neither waits nor takes the lock.
    flareops(root.path(), &emulator)
        .args(["plan", "--env", "staging"])
        .assert()
        .success()
        .stdout(contains("kv_namespaces.reviews"));

    // unlock shows the lock and wants confirmation.
    flareops(root.path(), &emulator)
        .args(["unlock", "--env", "staging"])
        .assert()
        .code(1)
        .stderr(contains("ci-runner-7"))
        .stderr(contains("pass --yes"));
    assert_eq!(lock_rows(&emulator).len(), 1);
    flareops(root.path(), &emulator)
        .args(["unlock", "--env", "staging", "--yes"])
        .assert()
        .success()
        .stderr(contains("mallory (apply 0badc0ffee00)"))
        .stderr(contains("Removed the lock of environment `staging`"));
    assert!(lock_rows(&emulator).is_empty());
    flareops(root.path(), &emulator)
        .args(["unlock", "--env", "staging", "--yes"])
        .assert()
        .success()
        .stderr(contains("is not locked"));

    flareops(root.path(), &emulator)
        .args(["apply", "--env", "staging", "--yes", "--lock-timeout", "1s"])
        .assert()
        .success();
    assert_eq!(count(&kv_list(&emulator), "title", "kk-reviews-staging"), 1);
}

#[test]
fn unlock_without_a_ledger_says_there_is_no_lock() {
    let emulator = TestEmulator::start();
    let root = setup(&emulator);
    flareops(root.path(), &emulator)
        .args(["unlock", "--env", "staging", "--yes"])
        .assert()
        .success()
        .stderr(contains("is not locked"));
}

#[test]
fn a_lock_timeout_must_be_a_duration() {
    let emulator = TestEmulator::start();
    let root = setup(&emulator);
    flareops(root.path(), &emulator)
        .args([
            "apply",
            "--env",
            "staging",
            "--yes",
            "--lock-timeout",
            "soon",
        ])
        .assert()
        // A usage error is an error (1): 2 means changes or drift.
        .code(1)
        .stderr(contains("not a duration"));
}

/// An apply whose lease cannot be renewed in time (every D1 query, the
/// renewals included, is slowed past the lease) starts no change: another
/// apply may hold the lock by then. The next apply finishes the job.
#[test]
fn an_apply_that_cannot_renew_its_lease_starts_no_change() {
    let emulator = TestEmulator::start();
    let root = setup(&emulator);
    emulator.set_faults(json!({
        "seed": 1,
        "rules": [{
            "method": "POST",
            "path": "/accounts/*/d1/database/*/query",
            "faults": {"latency_ms": 1500}
        }]
    }));
    flareops(root.path(), &emulator)
        .env("FLAREOPS_LOCK_LEASE_SECONDS", "1")
        .args(["apply", "--env", "staging", "--yes"])
        .assert()
        .code(1)
        .stderr(contains("not started"))
        .stderr(contains("could not be renewed in time"));
    let kv = kv_list(&emulator);
    assert_eq!(count(&kv, "title", "kk-users-staging"), 0, "{kv}");
    assert_eq!(count(&kv, "title", "kk-reviews-staging"), 0, "{kv}");

    emulator.clear_faults();
    flareops(root.path(), &emulator)
        .args(["apply", "--env", "staging", "--yes"])
        .assert()
        .success();
    let kv = kv_list(&emulator);
    assert_eq!(count(&kv, "title", "kk-users-staging"), 1, "{kv}");
}
