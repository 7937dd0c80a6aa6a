//! The queue kind through flareops against the emulator: create, update
//! and rename in place, drift and heal, delete only with `--allow-delete`.

use serde_json::Value;

use crate::support::{TestEmulator, queue, queues, run_flareops as flareops_run};

fn queue_manifest(name: &str, delay: &str) -> String {
    format!(
        "queues:\n  notifications:\n    name: {name}-${{env}}\n    delivery_delay: {delay}\n    message_retention_period: 96h\n"
    )
}

/// The queue kind through flareops: create, an in-place update, a rename
/// that keeps the queue (and its messages), drift when it is deleted
/// outside git, healing, and a delete only with `--allow-delete`.
#[test]
fn queues_are_created_updated_renamed_in_place_drift_and_deleted_with_permission() {
    let emulator = TestEmulator::start();
    let root = crate::support::project(&[
        (
            "environments/staging.yaml",
            &format!("account_id: {}\n", emulator.account_id),
        ),
        ("infra/queues.yaml", &queue_manifest("kk-jobs", "30s")),
        (
            "infra/workers.yaml",
            "workers:\n  api:\n    name: api-${env}\n    main: workers/api/index.js\n    compatibility_date: \"2025-01-15\"\n    bindings:\n      NOTIFY: {queue: notifications}\n",
        ),
        (
            "workers/api/index.js",
            "export default { async fetch(r, env) { await env.NOTIFY.send({}); return new Response('ok'); } };\n",
        ),
    ]);
    let root = root.path();
    let (code, out) = flareops_run(root, &emulator, &["apply", "--env", "staging", "--yes"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("+ create queues.notifications"), "{out}");
    assert!(
        out.contains("bindings.NOTIFY: queues.notifications (known after apply)"),
        "{out}"
    );
    let created = queue(&emulator, "kk-jobs-staging");
    // The worker produces to it (its upload binds the queue).
    assert_eq!(
        created["producers"],
        serde_json::json!([{"type": "worker", "script": "api-staging"}]),
        "{created}"
    );
    assert_eq!(created["settings"]["delivery_delay"], 30);
    assert_eq!(created["settings"]["message_retention_period"], 345_600);
    crate::support::assert_no_changes(root, &emulator);

    // In place: a setting, then the name (same id).
    crate::support::write(root, "infra/queues.yaml", &queue_manifest("kk-tasks", "1m"));
    let (code, out) = flareops_run(root, &emulator, &["apply", "--env", "staging", "--yes"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(r#"name: "kk-jobs-staging" -> "kk-tasks-staging""#),
        "{out}"
    );
    assert!(out.contains("delivery_delay: 30s -> 1m"), "{out}");
    let renamed = queue(&emulator, "kk-tasks-staging");
    assert_eq!(renamed["queue_id"], created["queue_id"], "the same queue");
    assert_eq!(renamed["settings"]["delivery_delay"], 60);

    // Deleted outside git: drift, then healed.
    let id = renamed["queue_id"].as_str().expect("id").to_string();
    emulator.send(
        "DELETE",
        &emulator.account_path(&format!("/queues/{id}")),
        None,
        &[],
    );
    crate::support::assert_drift_healed(root, &emulator, "queues.notifications");
    queue(&emulator, "kk-tasks-staging");

    // Removed from git (with the worker bound to it): its backlog is data.
    crate::support::write(root, "infra/queues.yaml", "{}\n");
    crate::support::write(
        root,
        "infra/workers.yaml",
        "workers:\n  api:\n    name: api-${env}\n    main: workers/api/index.js\n    compatibility_date: \"2025-01-15\"\n",
    );
    let (code, out) = flareops_run(root, &emulator, &["apply", "--env", "staging", "--yes"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("--allow-delete"), "{out}");
    queue(&emulator, "kk-tasks-staging");
    let (code, out) = flareops_run(
        root,
        &emulator,
        &["apply", "--env", "staging", "--yes", "--allow-delete"],
    );
    assert_eq!(code, 0, "{out}");
    assert_eq!(queues(&emulator), Vec::<Value>::new());
}

const CONSUMER_WORKER: &str = "workers:\n  api:\n    name: api-${env}\n    main: workers/api/index.js\n    compatibility_date: \"2025-01-15\"\n    bindings:\n      NOTIFY: {queue: notifications}\n    consumers:\n      notifications: {batch_size: BATCH, max_retries: 3, max_wait_time: 5s, dead_letter_queue: dead-letters}\n";

/// A worker that produces to a queue and consumes it, with a dead-letter
/// queue: the consumer is created after the queues and the script, a
/// changed setting replaces it in place, and a consumer removed from git
/// is removed; another worker's consumer is a conflict.
#[test]
fn a_worker_consumes_its_queue_with_a_dead_letter_queue() {
    let emulator = TestEmulator::start();
    let root = crate::support::project(&[
        (
            "environments/staging.yaml",
            &format!("account_id: {}\n", emulator.account_id),
        ),
        (
            "infra/queues.yaml",
            "queues:\n  notifications:\n    name: kk-notifications-${env}\n  dead-letters:\n    name: kk-notifications-dlq-${env}\n",
        ),
        (
            "infra/workers.yaml",
            &CONSUMER_WORKER.replace("BATCH", "10"),
        ),
        (
            "workers/api/index.js",
            "export default { async fetch(r, env) { await env.NOTIFY.send({}); return new Response('ok'); }, async queue(batch) { batch.ackAll(); } };\n",
        ),
    ]);
    let root = root.path();
    let (code, out) = flareops_run(root, &emulator, &["apply", "--env", "staging", "--yes"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(r#"consumers.notifications: consumer (batches of 10, 3 retries, waits up to 5s, dead letters to "kk-notifications-dlq-staging")"#),
        "{out}"
    );
    let consumed = queue(&emulator, "kk-notifications-staging");
    let consumer = &consumed["consumers"][0];
    assert_eq!(consumer["script"], "api-staging", "{consumed}");
    assert_eq!(consumer["settings"]["batch_size"], 10);
    assert_eq!(consumer["settings"]["max_retries"], 3);
    assert_eq!(consumer["settings"]["max_wait_time_ms"], 5000);
    assert_eq!(
        consumer["dead_letter_queue"],
        "kk-notifications-dlq-staging"
    );
    crate::support::assert_no_changes(root, &emulator);

    crate::support::write(
        root,
        "infra/workers.yaml",
        &CONSUMER_WORKER.replace("BATCH", "25"),
    );
    let (code, out) = flareops_run(root, &emulator, &["apply", "--env", "staging", "--yes"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("batches of 10") && out.contains("batches of 25"),
        "{out}"
    );
    let replaced = queue(&emulator, "kk-notifications-staging");
    assert_eq!(
        replaced["consumers"][0]["consumer_id"], consumer["consumer_id"],
        "in place"
    );
    assert_eq!(replaced["consumers"][0]["settings"]["batch_size"], 25);

    // Removed from git: the consumer goes (the queues stay).
    crate::support::write(
        root,
        "infra/workers.yaml",
        CONSUMER_WORKER
            .replace("BATCH", "25")
            .split("    consumers:")
            .next()
            .unwrap_or_default(),
    );
    let (code, out) = flareops_run(root, &emulator, &["apply", "--env", "staging", "--yes"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        queue(&emulator, "kk-notifications-staging")["consumers"],
        serde_json::json!([])
    );
    assert_eq!(queues(&emulator).len(), 2);

    // Another consumer on the queue: a conflict, nothing applied.
    let id = queue(&emulator, "kk-notifications-staging")["queue_id"]
        .as_str()
        .expect("id")
        .to_string();
    let added = emulator.send(
        "POST",
        &emulator.account_path(&format!("/queues/{id}/consumers")),
        Some(serde_json::json!({"type": "http_pull"})),
        &[],
    );
    assert_eq!(added["success"], true, "{added}");
    crate::support::write(
        root,
        "infra/workers.yaml",
        &CONSUMER_WORKER.replace("BATCH", "25"),
    );
    let (code, out) = flareops_run(root, &emulator, &["apply", "--env", "staging", "--yes"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(r#"queue "kk-notifications-staging" is consumed by an HTTP pull consumer"#),
        "{out}"
    );
}

/// A queue's setting changed outside git is drift, and `revert` goes back
/// to the apply before the last (here: without the queue, which it deletes
/// only with `--allow-delete`).
#[test]
fn a_queue_changed_outside_git_is_drift_and_revert_removes_a_queue_it_added() {
    let emulator = TestEmulator::start();
    let root = crate::support::project(&[
        (
            "environments/staging.yaml",
            &format!("account_id: {}\n", emulator.account_id),
        ),
        (
            "infra/kv.yaml",
            "kv_namespaces:\n  cache:\n    title: kk-cache-${env}\n",
        ),
    ]);
    let root = root.path();
    crate::support::git(root, &["init", "-q", "-b", "main"]);
    crate::support::git(root, &["add", "-A"]);
    crate::support::git(root, &["commit", "-q", "-m", "first"]);
    let (code, out) = flareops_run(root, &emulator, &["apply", "--env", "staging", "--yes"]);
    assert_eq!(code, 0, "{out}");
    crate::support::write(root, "infra/queues.yaml", &queue_manifest("kk-jobs", "30s"));
    crate::support::git(root, &["add", "-A"]);
    crate::support::git(root, &["commit", "-q", "-m", "a queue"]);
    let (code, out) = flareops_run(root, &emulator, &["apply", "--env", "staging", "--yes"]);
    assert_eq!(code, 0, "{out}");

    // Changed outside git.
    let id = queue(&emulator, "kk-jobs-staging")["queue_id"]
        .as_str()
        .expect("id")
        .to_string();
    let patched = emulator.send(
        "PATCH",
        &emulator.account_path(&format!("/queues/{id}")),
        Some(serde_json::json!({"settings": {"delivery_delay": 90}})),
        &[],
    );
    assert_eq!(patched["success"], true, "{patched}");
    crate::support::assert_changed_outside_git(
        root,
        &emulator,
        "queues.notifications",
        "delivery_delay",
    );

    // Back to before the last apply: the queue goes, with permission.
    let (code, out) = flareops_run(root, &emulator, &["revert", "--env", "staging", "--yes"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("--allow-delete"), "{out}");
    let (code, out) = flareops_run(
        root,
        &emulator,
        &["revert", "--env", "staging", "--yes", "--allow-delete"],
    );
    assert_eq!(code, 0, "{out}");
    assert_eq!(queues(&emulator), Vec::<Value>::new());
}
