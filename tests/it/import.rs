//! `flareops import`, round trips with the real wrangler: (a) an account
//! built by wrangler's command sequence is imported and then plans empty;
//! (b) a wrangler project with two environments is converted, applied by
//! flareops to one account and deployed by wrangler to another, and the
//! two accounts hold the same settings, field by field.

use serde_json::{Value, json};

use crate::support::{TestEmulator, run_flareops as run, write};
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
    // Where the database runs (its own GET reports it), as a hint.
    assert!(
        storage.contains(r#"location_hint: "enam""#),
        "the D1 database's location: {storage}"
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

/// A binding as the account shows it: name, type, and a var's value.
type ShownBinding = (String, String, Value);

/// What an account holds of one script: binding (name, type, value of
/// vars), crons and route patterns.
fn settings(
    emulator: &TestEmulator,
    script: &str,
) -> (Vec<ShownBinding>, Vec<String>, Vec<String>) {
    let settings = result(
        emulator,
        &emulator.account_path(&format!("/workers/scripts/{script}/settings")),
    );
    let mut bindings: Vec<ShownBinding> = settings["bindings"]
        .as_array()
        .unwrap_or_else(|| panic!("bindings of {script}: {settings}"))
        .iter()
        .map(|b| {
            let kind = b["type"].as_str().unwrap_or_default().to_string();
            let value = match kind.as_str() {
                "plain_text" => b["text"].clone(),
                "json" => b["json"].clone(),
                _ => Value::Null,
            };
            (
                b["name"].as_str().unwrap_or_default().to_string(),
                kind,
                value,
            )
        })
        .collect();
    bindings.sort_by(|a, b| a.0.cmp(&b.0));
    let schedules = result(
        emulator,
        &emulator.account_path(&format!("/workers/scripts/{script}/schedules")),
    );
    let mut crons: Vec<String> = schedules["schedules"]
        .as_array()
        .expect("schedules")
        .iter()
        .filter_map(|s| s["cron"].as_str().map(str::to_string))
        .collect();
    crons.sort();
    let zones = result(emulator, &format!("/zones?name={ZONE}"));
    let zone_id = zones[0]["id"].as_str().expect("zone id").to_string();
    let mut routes: Vec<String> = result(emulator, &format!("/zones/{zone_id}/workers/routes"))
        .as_array()
        .expect("routes")
        .iter()
        .filter(|r| r["script"] == script)
        .filter_map(|r| r["pattern"].as_str().map(str::to_string))
        .collect();
    routes.sort();
    (bindings, crons, routes)
}

#[test]
fn a_wrangler_project_with_two_environments_converts_and_deploys_the_same_settings() {
    let Some(bin) = wrangler_or_skip(
        "a_wrangler_project_with_two_environments_converts_and_deploys_the_same_settings",
    ) else {
        return;
    };
    let by_flareops = TestEmulator::start_with_zones(&[ZONE]);
    let by_wrangler = TestEmulator::start_with_zones(&[ZONE]);
    let wrangler = Wrangler::new(bin.clone(), &by_wrangler);
    // The storage wrangler's configuration points at, in wrangler's account.
    for title in ["kk-users-staging", "kk-users-production"] {
        wrangler
            .run(&["kv", "namespace", "create", title])
            .success();
    }
    wrangler.run(&["d1", "create", "kk-db-staging"]).success();
    for queue in ["kk-notify-staging", "kk-notify-dlq-staging"] {
        wrangler.run(&["queues", "create", queue]).success();
    }
    for bucket in ["kk-assets-staging", "kk-assets-production"] {
        wrangler.run(&["r2", "bucket", "create", bucket]).success();
    }
    let users_staging = kv_id(&by_wrangler, "kk-users-staging");
    let users_production = kv_id(&by_wrangler, "kk-users-production");
    let database = d1_id(&by_wrangler, "kk-db-staging");
    // The wrangler project, inside the flareops project (its root is
    // wrangler's working directory), with the pinned wrangler as its own.
    wrangler.write(
        "api/src/index.js",
        "export default {\n  async fetch(request, env) {\n    return new Response(env.API_VERSION);\n  },\n};\n",
    );
    wrangler.write(
        "api/package.json",
        "{\"name\": \"kk-api\", \"private\": true, \"devDependencies\": {\"wrangler\": \"4.86.0\"}}\n",
    );
    let bin_dir = wrangler.path("api/node_modules/.bin");
    std::fs::create_dir_all(&bin_dir).expect("node_modules/.bin");
    #[cfg(unix)]
    std::os::unix::fs::symlink(
        std::fs::canonicalize(&bin).expect("the pinned wrangler"),
        bin_dir.join("wrangler"),
    )
    .expect("link wrangler");
    wrangler.write(
        "api/wrangler.toml",
        &format!(
            r#"name = "kk-api"
main = "src/index.js"
compatibility_date = "2025-01-15"
triggers = {{ crons = ["0 * * * *"] }}

[env.staging]
vars = {{ API_VERSION = "v1-staging", FEATURES = {{ beta = true }} }}
routes = [{{ pattern = "api-staging.{ZONE}/*", zone_name = "{ZONE}" }}]
kv_namespaces = [{{ binding = "USERS_KV", id = "{users_staging}" }}]
d1_databases = [{{ binding = "DB", database_name = "kk-db-staging", database_id = "{database}" }}]
r2_buckets = [{{ binding = "ASSETS", bucket_name = "kk-assets-staging" }}]

[[env.staging.queues.producers]]
binding = "NOTIFY"
queue = "kk-notify-staging"

[[env.staging.queues.consumers]]
queue = "kk-notify-staging"
max_batch_size = 5
max_retries = 2
dead_letter_queue = "kk-notify-dlq-staging"

[env.production]
vars = {{ API_VERSION = "v1" }}
routes = [{{ pattern = "api.{ZONE}/*", zone_name = "{ZONE}" }}]
triggers = {{ crons = ["0 */6 * * *"] }}
kv_namespaces = [{{ binding = "USERS_KV", id = "{users_production}" }}]
r2_buckets = [{{ binding = "ASSETS", bucket_name = "kk-assets-production" }}]
"#
        ),
    );
    let root = wrangler.path("");
    let (code, out) = run(
        &root,
        &by_flareops,
        &["import", "--from-wrangler", "api/wrangler.toml"],
    );
    assert_eq!(code, 0, "{out}");
    for expected in [
        "wrote infra/workers.yaml",
        "wrote environments/staging.yaml",
        "wrote environments/production.yaml",
        "environment `production`: its bindings and secrets are written in environments/production.yaml (wrangler does not inherit them across environments)",
    ] {
        assert!(out.contains(expected), "`{expected}` in:\n{out}");
    }
    for environment in ["staging", "production"] {
        let (code, out) = run(
            &root,
            &by_flareops,
            &["apply", "--env", environment, "--yes"],
        );
        assert_eq!(code, 0, "{environment}: {out}");
        wrangler
            .run(&[
                "deploy",
                "--config",
                "api/wrangler.toml",
                &format!("--env={environment}"),
            ])
            .success();
        let script = format!("kk-api-{environment}");
        let (ours, theirs) = (
            settings(&by_flareops, &script),
            settings(&by_wrangler, &script),
        );
        assert_eq!(
            ours.0, theirs.0,
            "{environment}: the same bindings and vars"
        );
        assert_eq!(ours.1, theirs.1, "{environment}: the same crons");
        assert_eq!(ours.2, theirs.2, "{environment}: the same routes");
        // The same consumer of the same queue.
        let consumer = |emulator: &TestEmulator| {
            crate::support::queues(emulator)
                .into_iter()
                .flat_map(|q| {
                    q["consumers"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                        .into_iter()
                        .map(move |c| {
                            (
                                q["queue_name"].clone(),
                                c["script"].clone(),
                                c["settings"]["batch_size"].clone(),
                                c["settings"]["max_retries"].clone(),
                                c["dead_letter_queue"].clone(),
                            )
                        })
                })
                .filter(|c| c.1 == json!(script))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            consumer(&by_flareops),
            consumer(&by_wrangler),
            "{environment}: consumers"
        );
        let expected = usize::from(environment == "staging");
        assert_eq!(
            consumer(&by_flareops).len(),
            expected,
            "{environment}: its consumer"
        );
        assert!(!ours.0.is_empty() && !ours.1.is_empty() && !ours.2.is_empty());
        let (code, out) = run(
            &root,
            &by_flareops,
            &["plan", "--env", environment, "--detailed-exitcode"],
        );
        assert_eq!(code, 0, "{environment}: {out}");
    }
}
