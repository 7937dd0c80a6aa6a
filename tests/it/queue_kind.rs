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
    let (code, out) = flareops_run(
        root,
        &emulator,
        &["plan", "--env", "staging", "--detailed-exitcode"],
    );
    assert_eq!(code, 0, "{out}");

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
    let (code, out) = flareops_run(root, &emulator, &["drift", "--env", "staging"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("queues.notifications"), "{out}");
    let (code, out) = flareops_run(
        root,
        &emulator,
        &["drift", "--env", "staging", "--heal", "--yes"],
    );
    assert_eq!(code, 0, "{out}");
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
