//! Request economy on the project's own example (infra/, environments/,
//! workers/, migrations/), counted by the emulator: the first apply, a
//! no-op plan and a no-op apply stay within their budgets, and no list is
//! read twice in one run. The budgets are docs/PERFORMANCE.md's targets.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::{TestEmulator, copy_dir, flareops};

const ZONE: &str = "klearkarma.com";

/// Copies the example into a scratch directory, its staging environment
/// pointed at `emulator`'s account.
pub(crate) fn example(emulator: &TestEmulator) -> tempfile::TempDir {
    let root = tempfile::tempdir().expect("temp dir");
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    for dir in ["infra", "environments", "workers", "migrations", "web"] {
        copy_dir(&repo.join(dir), &root.path().join(dir));
    }
    point_at(root.path(), "staging", emulator);
    root
}

/// Points environment `name` of the project at `root` to `emulator`'s account.
pub(crate) fn point_at(root: &Path, name: &str, emulator: &TestEmulator) {
    let file = root.join(format!("environments/{name}.yaml"));
    let text = std::fs::read_to_string(&file).expect("the environment file");
    let text: String = text
        .lines()
        .map(|line| {
            if line.starts_with("account_id:") {
                format!("account_id: {}\n", emulator.account_id)
            } else {
                format!("{line}\n")
            }
        })
        .collect();
    std::fs::write(&file, text).expect("write the environment file");
}

/// Per endpoint, the requests made between two snapshots of the stats.
fn made(before: &Value, after: &Value) -> Vec<(String, u64)> {
    let count = |stats: &Value, key: &str| stats["endpoints"][key].as_u64().unwrap_or(0);
    let mut made: Vec<(String, u64)> = after["endpoints"]
        .as_object()
        .expect("stats.endpoints")
        .keys()
        .map(|key| (key.clone(), count(after, key) - count(before, key)))
        .filter(|(_, n)| *n > 0)
        .collect();
    made.sort();
    made
}

/// Runs flareops with `args`; answers the requests it made, per endpoint.
fn run(root: &Path, emulator: &TestEmulator, args: &[&str]) -> Vec<(String, u64)> {
    let before = emulator.stats();
    flareops(root, emulator)
        .args(args)
        .env("KLEAR_KARMA_JWT_SECRET", "jwt-secret-for-the-test")
        .env("KLEAR_KARMA_API_KEY", "api-key-for-the-test")
        .assert()
        .success();
    made(&before, &emulator.stats())
}

fn total(made: &[(String, u64)]) -> u64 {
    made.iter().map(|(_, n)| n).sum()
}

/// Every list (a `GET` of a collection) is read at most once, except
/// D1's, which an apply reads twice: once filtered by the ledger's name to
/// find the ledger and take the lock, then whole, under the lock.
fn assert_lists_read_once(made: &[(String, u64)], d1_lists: u64, what: &str) {
    for (endpoint, n) in made {
        // A time-travel bookmark is read before each migration file: not
        // a list.
        if !endpoint.starts_with("GET ") || endpoint.ends_with("/time_travel/bookmark") {
            continue;
        }
        let allowed = if endpoint == "GET /accounts/{account_id}/d1/database" {
            d1_lists
        } else {
            1
        };
        assert!(*n <= allowed, "{what}: {endpoint} read {n} times: {made:?}");
    }
}

#[test]
fn the_example_applies_and_plans_within_its_request_budget() {
    let emulator = TestEmulator::start_with_zones(&[ZONE]);
    let root = example(&emulator);
    let apply = ["apply", "--env", "staging", "--yes"];

    let first = run(root.path(), &emulator, &apply);
    assert!(total(&first) <= 48, "first apply: {first:?}");
    assert_lists_read_once(&first, 2, "first apply");

    let plan = run(root.path(), &emulator, &["plan", "--env", "staging"]);
    assert!(total(&plan) <= 19, "no-op plan: {plan:?}");
    assert_lists_read_once(&plan, 1, "no-op plan");
    // A plan writes nothing: every request is a read (D1 queries are
    // POSTs: the ledger's read and the database's migrations table).
    for (endpoint, _) in &plan {
        assert!(
            endpoint.starts_with("GET ") || endpoint.ends_with("/query"),
            "a plan wrote: {endpoint}"
        );
    }

    let again = run(root.path(), &emulator, &apply);
    assert!(total(&again) <= 21, "no-op apply: {again:?}");
    assert_lists_read_once(&again, 2, "no-op apply");
    eprintln!(
        "requests: first apply {}, no-op plan {}, no-op apply {}",
        total(&first),
        total(&plan),
        total(&again)
    );
}
