//! Seeded trials that SIGKILL a running `flareops apply` at a random moment
//! and then apply again: every trial must converge to exactly the declared
//! state, with no duplicate resource and an inventory that matches.

use std::process::{Command, Stdio};
use std::time::Duration;

use rand::{Rng, SeedableRng};

use crate::support::{AccountNames, TestEmulator, flareops, flareops_bin, names, project};

const TRIALS: u64 = 20;
const ZONE: &str = "example.com";

fn manifests(emulator: &TestEmulator) -> Vec<(&'static str, String)> {
    vec![
        (
            "infra/storage.yaml",
            "kv_namespaces:
  users:
    title: trial-users-${env}
  reviews:
    title: trial-reviews-${env}
  messages:
    title: trial-messages-${env}
d1_databases:
  main:
    name: trial-db-${env}
    migrations: migrations
r2_buckets:
  assets:
    name: trial-assets-${env}
"
            .to_string(),
        ),
        (
            "infra/workers.yaml",
            "workers:
  api:
    name: trial-api-${env}
    main: workers/api/index.js
    compatibility_date: \"2025-01-15\"
    bindings:
      USERS: {kv_namespace: users}
      DB: {d1: main}
      ASSETS: {r2_bucket: assets}
    secrets:
      TOKEN: {from_env: TRIAL_TOKEN}
    crons: [\"0 * * * *\"]
    routes: [\"api-${env}.example.com/*\"]
"
            .to_string(),
        ),
        (
            "workers/api/index.js",
            "export default { fetch() { return new Response('ok'); } };\n".to_string(),
        ),
        (
            "migrations/0001_init.sql",
            "CREATE TABLE users (id INTEGER PRIMARY KEY);\n".to_string(),
        ),
        (
            "migrations/0002_more.sql",
            "CREATE TABLE posts (id INTEGER PRIMARY KEY);\n".to_string(),
        ),
        (
            "environments/staging.yaml",
            format!("account_id: {}\nzone: {ZONE}\n", emulator.account_id),
        ),
    ]
}

#[test]
fn applies_killed_at_random_moments_converge_on_the_next_run() {
    let mut reruns_needed = Vec::new();
    let mut requests_at_kill = Vec::new();
    for trial in 0..TRIALS {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed_0000 + trial);
        let emulator = TestEmulator::start_with_zones(&[ZONE]);
        let files = manifests(&emulator);
        let refs: Vec<(&str, &str)> = files.iter().map(|(p, c)| (*p, c.as_str())).collect();
        let root = project(&refs);

        // Kill the first apply somewhere in its run: after a random number
        // of requests (a whole apply of these manifests makes 30).
        let kill_after: u64 = rng.random_range(1..30);
        let mut child = Command::new(flareops_bin())
            .current_dir(root.path())
            .env("CLOUDFLARE_API_BASE_URL", &emulator.base_url)
            .env("CLOUDFLARE_API_TOKEN", &emulator.token)
            .env("CLOUDFLARE_ACCOUNT_ID", &emulator.account_id)
            .env("TRIAL_TOKEN", "trial-secret")
            // A short lease, so the killed holder's lock expires quickly.
            .env("FLAREOPS_LOCK_LEASE_SECONDS", "2")
            .env_remove("RUST_LOG")
            .args(["apply", "--env", "staging", "--yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start apply");
        // The apply either makes that many requests or ends on its own
        // (its requests have their own timeouts).
        while emulator.stats_total() < kill_after && child.try_wait().ok().flatten().is_none() {
            std::thread::sleep(Duration::from_millis(1));
        }
        let _ = child.kill();
        let killed = child.wait().expect("wait for the killed apply");
        // How far the killed run got, in requests (a full apply takes more).
        requests_at_kill.push((killed.success(), emulator.stats_total()));

        // Then apply until it succeeds (a killed holder's lease expires
        // within the lock timeout), at most four times.
        let mut runs = 0;
        loop {
            runs += 1;
            let output = flareops(root.path(), &emulator)
                .env("TRIAL_TOKEN", "trial-secret")
                .env("FLAREOPS_LOCK_LEASE_SECONDS", "2")
                .args(["apply", "--env", "staging", "--yes", "--lock-timeout", "5s"])
                .output()
                .expect("apply again");
            if output.status.success() {
                break;
            }
            assert!(
                runs < 4,
                "trial {trial} (killed after {kill_after} requests) did not converge: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        reruns_needed.push(runs);

        // Exactly the declared state: the plan is empty ...
        let plan = flareops(root.path(), &emulator)
            .env("TRIAL_TOKEN", "trial-secret")
            .args(["plan", "--env", "staging", "--detailed-exitcode"])
            .output()
            .expect("plan");
        assert_eq!(
            plan.status.code(),
            Some(0),
            "trial {trial} (killed after {kill_after} requests): {}",
            String::from_utf8_lossy(&plan.stdout)
        );
        // ... and nothing exists twice.
        assert_eq!(
            emulator.account_names(ZONE),
            AccountNames::of(
                &[
                    "trial-messages-staging",
                    "trial-reviews-staging",
                    "trial-users-staging"
                ],
                &["flareops-state", "trial-db-staging"],
                &["trial-assets-staging"],
                &["trial-api-staging"],
                &["api-staging.example.com/*"],
            ),
            "trial {trial}"
        );
        let d1 = emulator.get(&emulator.account_path("/d1/database"));

        // The migrations ran once each, and the inventory names what exists.
        let uuid = d1["result"]
            .as_array()
            .unwrap()
            .iter()
            .find(|db| db["name"] == "trial-db-staging")
            .and_then(|db| db["uuid"].as_str())
            .unwrap()
            .to_string();
        let ledger = d1["result"]
            .as_array()
            .unwrap()
            .iter()
            .find(|db| db["name"] == "flareops-state")
            .and_then(|db| db["uuid"].as_str())
            .unwrap()
            .to_string();
        let query = |database: &str, sql: &str| {
            let answer = emulator.send(
                "POST",
                &emulator.account_path(&format!("/d1/database/{database}/query")),
                Some(serde_json::json!({ "sql": sql })),
                &[],
            );
            answer["result"][0]["results"].clone()
        };
        assert_eq!(
            names(&query(&uuid, "SELECT name FROM d1_migrations"), "name"),
            ["0001_init.sql", "0002_more.sql"],
            "trial {trial}"
        );
        let inventory = query(
            &ledger,
            "SELECT e.address FROM inventory_entries e JOIN inventory_generations g ON g.environment = e.environment AND g.generation = e.generation WHERE e.environment = 'staging'",
        );
        assert_eq!(
            names(&inventory, "address"),
            [
                "d1_databases.main",
                "kv_namespaces.messages",
                "kv_namespaces.reviews",
                "kv_namespaces.users",
                "r2_buckets.assets",
                "workers.api"
            ],
            "trial {trial}"
        );
    }
    eprintln!(
        "kill trials: {TRIALS} converged; reruns needed: {reruns_needed:?}; (finished before the kill, requests made) per trial: {requests_at_kill:?}"
    );
    // The kills must land inside runs, not only after them.
    let interrupted = requests_at_kill
        .iter()
        .filter(|(finished, _)| !finished)
        .count();
    assert!(
        interrupted >= (TRIALS as usize) / 2,
        "only {interrupted} kills interrupted an apply"
    );
}
