//! An environment of thousands of resources: it applies, the ledger records
//! every address, a plan afterwards is empty, and the requests stay within
//! what the changes themselves need plus a bounded overhead.

use crate::support::{TestEmulator, flareops, project};

/// Manifests of `kv` namespaces, `d1` databases, `r2` buckets and `workers`
/// workers (each bound to three namespaces, a database and a bucket).
fn manifests(kv: usize, d1: usize, r2: usize, workers: usize) -> String {
    let mut out = String::from("kv_namespaces:\n");
    for i in 0..kv {
        out.push_str(&format!(
            "  kv{i:05}:\n    title: scale-kv-{i:05}-${{env}}\n"
        ));
    }
    out.push_str("d1_databases:\n");
    for i in 0..d1 {
        out.push_str(&format!(
            "  db{i:05}:\n    name: scale-db-{i:05}-${{env}}\n"
        ));
    }
    out.push_str("r2_buckets:\n");
    for i in 0..r2 {
        out.push_str(&format!(
            "  r2{i:05}:\n    name: scale-r2-{i:05}-${{env}}\n"
        ));
    }
    out.push_str("workers:\n");
    for i in 0..workers {
        out.push_str(&format!(
            "  w{i:04}:\n    name: scale-worker-{i:04}-${{env}}\n    main: workers/scale/index.js\n    compatibility_date: \"2025-01-15\"\n    bindings:\n"
        ));
        for j in 0..3 {
            out.push_str(&format!(
                "      KV{j}: {{kv_namespace: kv{:05}}}\n",
                (i * 3 + j) % kv
            ));
        }
        out.push_str(&format!(
            "      DB: {{d1: db{:05}}}\n      BUCKET: {{r2_bucket: r2{:05}}}\n",
            i % d1,
            i % r2
        ));
    }
    out
}

#[test]
fn two_thousand_resources_apply_record_and_plan_empty() {
    let (kv, d1, r2, workers) = (1_500, 240, 240, 40);
    let total = kv + d1 + r2 + workers;
    let emulator = TestEmulator::start();
    let root = project(&[
        ("infra/scale.yaml", &manifests(kv, d1, r2, workers)),
        (
            "environments/staging.yaml",
            &format!("account_id: {}\n", emulator.account_id),
        ),
        (
            "workers/scale/index.js",
            "export default { fetch() { return new Response('ok'); } };\n",
        ),
    ]);
    let before = emulator.stats_total();
    let applied = flareops(root.path(), &emulator)
        .env("FLAREOPS_RATE_LIMIT", "off")
        .args(["apply", "--env", "staging", "--yes"])
        .output()
        .expect("apply");
    assert!(
        applied.status.success(),
        "{}",
        String::from_utf8_lossy(&applied.stderr)
    );
    assert!(
        String::from_utf8_lossy(&applied.stdout)
            .contains(&format!("Apply complete: {total} of {total} changes made.")),
        "{}",
        String::from_utf8_lossy(&applied.stdout)
    );
    let apply_requests = emulator.stats_total() - before;
    // What the changes themselves need: one create per resource, one
    // script upload per worker.
    let needed = total as u64;
    println!(
        "first apply of {total} resources: {apply_requests} requests (the changes need {needed})"
    );
    // The overhead (reads, the ledger, the journal) stays within a fifth
    // of the work plus a constant (docs/PERFORMANCE.md's target).
    assert!(
        apply_requests * 5 <= needed * 6 + 100,
        "{apply_requests} requests for {needed} changes: {}",
        emulator.stats()
    );

    // A plan afterwards is empty.
    let before = emulator.stats_total();
    flareops(root.path(), &emulator)
        .env("FLAREOPS_RATE_LIMIT", "off")
        .args(["plan", "--env", "staging", "--detailed-exitcode"])
        .assert()
        .code(0);
    let plan_requests = emulator.stats_total() - before;
    println!("no-op plan of {total} resources: {plan_requests} requests");
    // The target is 220 at 1,450 resources; this environment is larger.
    assert!(plan_requests <= 220, "{}", emulator.stats());

    // The ledger records every address.
    let ledger = emulator.get(&emulator.account_path("/d1/database?name=flareops-state"));
    let uuid = ledger["result"][0]["uuid"]
        .as_str()
        .expect("ledger")
        .to_string();
    let rows = emulator.send(
        "POST",
        &emulator.account_path(&format!("/d1/database/{uuid}/query")),
        Some(serde_json::json!({
            "sql": "SELECT count(*) AS n FROM inventory_entries e JOIN inventory_generations g ON g.environment = e.environment AND g.generation = e.generation WHERE e.environment = ?",
            "params": ["staging"]
        })),
        &[],
    );
    assert_eq!(
        rows["result"][0]["results"][0]["n"],
        serde_json::json!(total),
        "{rows}"
    );
}
