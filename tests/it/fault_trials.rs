//! Fault trials: the full example is applied while the emulator injects
//! 20% faults of every kind (5xx, 429 with `Retry-After`, connection resets
//! before processing, and responses lost after the write committed), each
//! trial seeded. Each trial reruns apply until it succeeds, within a bound,
//! and must end with exactly the declared resources: none duplicated, none
//! missing, and an empty plan once the faults are off.
//!
//! Figures (`cargo test --test it fault_trials -- --nocapture`): reruns per
//! trial, faults injected by kind, requests made.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{AccountNames, TestEmulator, copy_dir, flareops, project};

const TRIALS: u64 = 50;
/// Applies per trial at most (the first included).
const MAX_RUNS: u32 = 6;
const ZONE: &str = "klearkarma.com";

/// The example project (`infra/`, `workers/`, `migrations/`, `web/`) with a
/// staging environment in the emulator's account.
fn example(emulator: &TestEmulator) -> tempfile::TempDir {
    let root = project(&[(
        "environments/staging.yaml",
        &format!(
            "account_id: {}\nzone: {ZONE}\nvars:\n  region: weur\n",
            emulator.account_id
        ),
    )]);
    let source = Path::new(env!("CARGO_MANIFEST_DIR"));
    for dir in ["infra", "workers", "migrations", "web"] {
        copy_dir(&source.join(dir), &root.path().join(dir));
    }
    root
}

fn with_secrets(command: &mut assert_cmd::Command) -> &mut assert_cmd::Command {
    command
        .env("KLEAR_KARMA_JWT_SECRET", "trial-jwt")
        .env("KLEAR_KARMA_API_KEY", "trial-key")
        // Fast retries: the faults are dense and the test is bounded.
        .env("FLAREOPS_RETRY_ATTEMPTS", "8")
        .env("FLAREOPS_RETRY_BASE_MS", "2")
        .env("FLAREOPS_RETRY_MAX_MS", "40")
        // A lock whose release was lost expires quickly.
        .env("FLAREOPS_LOCK_LEASE_SECONDS", "2")
}

#[test]
fn applies_under_twenty_percent_faults_converge_to_exactly_the_declared_resources() {
    let started = Instant::now();
    let mut runs_per_trial = Vec::new();
    let mut injected = serde_json::Map::new();
    let mut requests = 0u64;
    for trial in 0..TRIALS {
        let emulator = TestEmulator::start_with_zones(&[ZONE]);
        let root = example(&emulator);
        emulator.set_faults(json!({
            "seed": 0xfa17_0000u64 + trial,
            "default": {
                "jitter_ms": 2,
                "5xx_rate": 0.05,
                "429_rate": 0.05,
                "retry_after": 0,
                "reset_rate": 0.05,
                "lost_response_rate": 0.05
            }
        }));
        let mut runs = 0;
        let mut last_error = String::new();
        loop {
            runs += 1;
            let output = with_secrets(&mut flareops(root.path(), &emulator))
                .args([
                    "apply",
                    "--env",
                    "staging",
                    "--yes",
                    "--lock-timeout",
                    "10s",
                ])
                .timeout(Duration::from_secs(120))
                .output()
                .expect("apply");
            if output.status.success() {
                break;
            }
            last_error = String::from_utf8_lossy(&output.stderr).into_owned();
            assert!(
                !last_error.contains("panicked"),
                "trial {trial}: apply panicked: {last_error}"
            );
            assert!(
                runs < MAX_RUNS,
                "trial {trial} did not converge in {MAX_RUNS} applies; last error:\n{last_error}"
            );
        }
        if runs > 1 {
            eprintln!(
                "trial {trial}: {runs} applies; an earlier one failed with: {}",
                last_error
                    .lines()
                    .find(|l| l.starts_with("error"))
                    .or_else(|| last_error.lines().last())
                    .unwrap_or_default()
            );
        }
        runs_per_trial.push(runs);
        let report = emulator.faults();
        if let Some(counts) = report["injected"].as_object() {
            for (kind, count) in counts {
                let total = injected.entry(kind.clone()).or_insert(json!(0));
                *total = json!(total.as_u64().unwrap_or(0) + count.as_u64().unwrap_or(0));
            }
        }
        requests += emulator.stats_total();

        // Faults off: the plan is empty ...
        emulator.clear_faults();
        let plan = with_secrets(&mut flareops(root.path(), &emulator))
            .args(["plan", "--env", "staging", "--detailed-exitcode"])
            .output()
            .expect("plan");
        assert_eq!(
            plan.status.code(),
            Some(0),
            "trial {trial}: the plan after convergence is not empty:\n{}\n{}",
            String::from_utf8_lossy(&plan.stdout),
            String::from_utf8_lossy(&plan.stderr)
        );
        // ... and every declared resource exists exactly once.
        let kv: Vec<String> = [
            "analytics",
            "appointments",
            "messages",
            "practitioners",
            "reviews",
            "services",
            "users",
        ]
        .iter()
        .map(|k| format!("klear-karma-{k}-staging"))
        .collect();
        let kv: Vec<&str> = kv.iter().map(String::as_str).collect();
        assert_eq!(
            emulator.account_names(ZONE),
            AccountNames::of(
                &kv,
                &["flareops-state", "klear-karma-staging"],
                &["klear-karma-assets-staging"],
                &["klear-karma-api-staging"],
                &["api-staging.klearkarma.com/*"],
            ),
            "trial {trial}"
        );
    }
    // Every kind was injected, at about the rate asked for.
    let injected_total: u64 = ["5xx", "429", "reset", "lost_response"]
        .iter()
        .map(|kind| {
            let count = injected.get(*kind).and_then(Value::as_u64).unwrap_or(0);
            assert!(count > 0, "no {kind} fault was injected: {injected:?}");
            count
        })
        .sum();
    let share = injected_total as f64 / requests.max(1) as f64;
    assert!(
        (0.15..=0.25).contains(&share),
        "faults were {:.1}% of {requests} requests",
        share * 100.0
    );
    let total_runs: u32 = runs_per_trial.iter().sum();
    let most = runs_per_trial.iter().max().copied().unwrap_or(0);
    let first_time = runs_per_trial.iter().filter(|r| **r == 1).count();
    eprintln!(
        "fault trials: {TRIALS} trials converged in {:.1} s; {first_time} on the first apply, \
         at most {most} applies, {total_runs} applies in all; {requests} requests; faults injected: {}",
        started.elapsed().as_secs_f64(),
        Value::Object(injected)
    );
}

/// Cloudflare's rate-limit rule (here 30 requests per 2 s, so the ~80
/// requests of the example's first apply run into it): the client honours
/// each 429's `Retry-After` and the apply succeeds in one run.
#[test]
fn an_apply_against_the_rate_limit_rule_waits_as_told_and_succeeds() {
    let emulator = TestEmulator::start_with_zones(&[ZONE]);
    let root = example(&emulator);
    emulator.set_faults(json!({"seed": 5, "rate_limit": {"requests": 30, "window_secs": 2}}));
    let started = Instant::now();
    let output = with_secrets(&mut flareops(root.path(), &emulator))
        // The client's own limiter off: the emulator's rule is under test.
        .env("FLAREOPS_RATE_LIMIT", "off")
        .env("FLAREOPS_LOCK_LEASE_SECONDS", "30")
        .args(["apply", "--env", "staging", "--yes"])
        .timeout(Duration::from_secs(120))
        .output()
        .expect("apply");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = emulator.faults();
    let limited = report["injected"]["rate_limited"].as_u64().unwrap_or(0);
    assert!(limited > 0, "the rule never refused a request: {report}");
    eprintln!(
        "rate-limit rule: apply succeeded in {:.1} s after {limited} requests were refused with 429",
        started.elapsed().as_secs_f64()
    );
    emulator.clear_faults();
    let plan = with_secrets(&mut flareops(root.path(), &emulator))
        .args(["plan", "--env", "staging", "--detailed-exitcode"])
        .output()
        .expect("plan");
    assert_eq!(plan.status.code(), Some(0));
}
