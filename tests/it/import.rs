//! `flareops import`, round trips with the real wrangler: (a) an account
//! built by wrangler's command sequence is imported and then plans empty;
//! (b) a wrangler project with two environments is converted, applied by
//! flareops to one account and deployed by wrangler to another, and the
//! two accounts hold the same settings, field by field.

use std::path::Path;

use serde_json::{Value, json};

use crate::support::{TestEmulator, flareops, write};
use crate::wrangler::{Wrangler, wrangler_or_skip};

const ZONE: &str = "klearkarma.com";

fn result(emulator: &TestEmulator, path: &str) -> Value {
    let answer = emulator.get(path);
    assert_eq!(answer["success"], json!(true), "GET {path}: {answer}");
    answer["result"].clone()
}

/// The id of the KV namespace titled `title`.
fn kv_id(emulator: &TestEmulator, title: &str) -> String {
    result(emulator, &emulator.account_path("/storage/kv/namespaces"))
        .as_array()
        .expect("namespaces")
        .iter()
        .find(|n| n["title"] == title)
        .and_then(|n| n["id"].as_str())
        .unwrap_or_else(|| panic!("no KV namespace {title}"))
        .to_string()
}

fn d1_id(emulator: &TestEmulator, name: &str) -> String {
    result(emulator, &emulator.account_path("/d1/database"))
        .as_array()
        .expect("databases")
        .iter()
        .find(|d| d["name"] == name)
        .and_then(|d| d["uuid"].as_str())
        .unwrap_or_else(|| panic!("no D1 database {name}"))
        .to_string()
}

fn run(root: &Path, emulator: &TestEmulator, args: &[&str]) -> (i32, String) {
    let output = flareops(root, emulator)
        .args(args)
        .output()
        .expect("run flareops");
    (
        output.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

const WORKER_SOURCE: &str = r#"export class ChatRoom {
  constructor(state) { this.state = state; }
  async fetch() { return new Response("room"); }
}
export default {
  async fetch(request, env) {
    return new Response(JSON.stringify({ version: env.API_VERSION }));
  },
  async scheduled(controller, env) {
    await env.ANALYTICS_KV.put("last", String(controller.scheduledTime));
  },
};
"#;

#[test]
fn an_account_wrangler_built_is_imported_and_then_plans_empty() {
    let Some(bin) = wrangler_or_skip("an_account_wrangler_built_is_imported_and_then_plans_empty")
    else {
        return;
    };
    let emulator = TestEmulator::start_with_zones(&[ZONE]);
    let wrangler = Wrangler::new(bin, &emulator);
    // The seed's sequence: storage, the schema, the worker, its secret.
    for title in [
        "klear-karma-users-staging",
        "klear-karma-analytics-staging",
        "klear-karma-users-production",
    ] {
        wrangler
            .run(&["kv", "namespace", "create", title])
            .success();
    }
    wrangler
        .run(&["d1", "create", "klear-karma-staging"])
        .success();
    wrangler.write(
        "schema.sql",
        "CREATE TABLE users (id TEXT PRIMARY KEY, email TEXT NOT NULL);\n",
    );
    wrangler
        .run(&[
            "d1",
            "execute",
            "klear-karma-staging",
            "--remote",
            "--file=schema.sql",
            "--yes",
        ])
        .success();
    wrangler
        .run(&["r2", "bucket", "create", "klear-karma-assets-staging"])
        .success();
    let users = kv_id(&emulator, "klear-karma-users-staging");
    let analytics = kv_id(&emulator, "klear-karma-analytics-staging");
    let database = d1_id(&emulator, "klear-karma-staging");
    wrangler.write("src/index.js", WORKER_SOURCE);
    wrangler.write(
        "wrangler.toml",
        &format!(
            r#"name = "klear-karma-api"
main = "src/index.js"
compatibility_date = "2025-01-15"

[env.staging]
routes = [{{ pattern = "api-staging.{ZONE}/*", zone_name = "{ZONE}" }}]
vars = {{ API_VERSION = "v1" }}
triggers = {{ crons = ["0 * * * *"] }}
kv_namespaces = [
  {{ binding = "USERS_KV", id = "{users}" }},
  {{ binding = "ANALYTICS_KV", id = "{analytics}" }},
]
d1_databases = [{{ binding = "DB", database_name = "klear-karma-staging", database_id = "{database}" }}]
r2_buckets = [{{ binding = "ASSETS", bucket_name = "klear-karma-assets-staging" }}]
durable_objects = {{ bindings = [{{ name = "CHAT_ROOM", class_name = "ChatRoom" }}] }}

[[env.staging.migrations]]
tag = "v1"
new_sqlite_classes = ["ChatRoom"]
"#
        ),
    );
    wrangler.run(&["deploy", "--env=staging"]).success();
    wrangler
        .run_with_stdin(
            &["secret", "put", "JWT_SECRET", "--env=staging"],
            "wrangler-jwt-secret-value",
        )
        .success();

    // A new flareops project that knows only the environment.
    let root = tempfile::tempdir().expect("project");
    let root = root.path();
    write(
        root,
        "environments/staging.yaml",
        &format!("account_id: {}\nzone: {ZONE}\n", emulator.account_id),
    );
    write(root, "environments/production.yaml", "{}\n");
    let (code, out) = run(root, &emulator, &["import", "--env", "staging"]);
    assert_eq!(code, 0, "{out}");
    for expected in [
        "wrote infra/storage.yaml",
        "wrote infra/workers.yaml",
        "wrote workers/klear-karma-api/index.js",
        "skipped KV namespace `klear-karma-users-production`: its title names environment `production`",
    ] {
        assert!(out.contains(expected), "`{expected}` in:\n{out}");
    }
    let storage = std::fs::read_to_string(root.join("infra/storage.yaml")).expect("storage");
    assert!(
        storage.contains(r#"title: "klear-karma-users-${env}""#),
        "{storage}"
    );
    assert!(
        storage.contains(r#"name: "klear-karma-${env}""#),
        "{storage}"
    );
    let workers = std::fs::read_to_string(root.join("infra/workers.yaml")).expect("workers");
    for expected in [
        r#"name: "klear-karma-api-${env}""#,
        r#"USERS_KV:"#,
        r#"kv_namespace: "klear-karma-users""#,
        r#"durable_object: "ChatRoom""#,
        r#"from_env: "KLEAR-KARMA-API_JWT_SECRET""#,
        r#"routes: ["api-${env}.klearkarma.com/*"]"#,
        r#"crons: ["0 * * * *"]"#,
    ] {
        assert!(
            workers.contains(&expected.replace("KLEAR-KARMA-API", "KLEAR_KARMA_API")),
            "`{expected}` in:\n{workers}"
        );
    }
    assert!(!workers.contains("wrangler-jwt-secret-value"));

    // The plan after the import is empty: every resource is recorded.
    let (code, out) = run(
        root,
        &emulator,
        &["plan", "--env", "staging", "--detailed-exitcode"],
    );
    assert_eq!(code, 0, "{out}");
    // And importing again keeps what exists.
    let (code, out) = run(root, &emulator, &["import", "--env", "staging"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("kept infra/workers.yaml: it exists (--force overwrites it)"),
        "{out}"
    );
}
