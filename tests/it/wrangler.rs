//! Conformance: the real `wrangler` CLI (pinned 4.86.0 in `tools/wrangler`) against the
//! `flareops emulator` process.
//!
//! Each test runs wrangler commands with `CLOUDFLARE_API_BASE_URL` pointed at the emulator, then
//! asserts on wrangler's output AND on the emulator's state (read back through the raw API, and
//! for D1 from the SQLite file itself). Every wrangler call runs under a hang guard, in a temp
//! working directory with its own `HOME`, and never leaves the machine: metrics are off, the
//! banner (and with it the npm update check) is hidden, and npm's registry points at a closed
//! local port in case an error path checks for updates anyway.
//!
//! Without node or the pinned wrangler the tests fail, unless `FLAREOPS_SKIP_WRANGLER=1` is set:
//! then they print a loud SKIPPED line to stderr and return.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use tempfile::TempDir;
use wait_timeout::ChildExt;

use crate::support::{self, TestEmulator};

/// A hang guard, not a speed check: a wrangler invocation still running
/// after this long is stuck (waiting for input or the network), and is
/// killed so that the test fails with its output instead of never ending.
/// A run takes seconds even on a busy 2-core runner.
const HANG_GUARD: Duration = Duration::from_secs(120);

/// The pinned wrangler, or `None` (after a loud notice) when skipping is allowed.
pub(crate) fn wrangler_or_skip(test: &str) -> Option<PathBuf> {
    if let Some(bin) = support::wrangler_bin() {
        return Some(bin);
    }
    if std::env::var("FLAREOPS_SKIP_WRANGLER").as_deref() == Ok("1") {
        // Written to the real stderr, not through `eprintln!`, so the test harness's output
        // capture cannot hide it when the (skipped) test passes.
        let notice = format!(
            "\n\
             ************************************************************************\n\
             *** SKIPPED: wrangler conformance test `{test}`\n\
             *** node or tools/wrangler/node_modules is missing and\n\
             *** FLAREOPS_SKIP_WRANGLER=1 is set. Nothing was checked against wrangler.\n\
             ************************************************************************\n"
        );
        let _ = std::io::Write::write_all(&mut std::io::stderr(), notice.as_bytes());
        return None;
    }
    panic!(
        "wrangler conformance test `{test}` needs node and the pinned wrangler \
         (tools/wrangler/node_modules/.bin/wrangler)\n\
         hint: run `npm ci --prefix tools/wrangler`, or set FLAREOPS_SKIP_WRANGLER=1 to skip loudly"
    );
}

/// What one wrangler run produced.
pub(crate) struct Run {
    args: String,
    pub(crate) status: ExitStatus,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Run {
    pub(crate) fn success(self) -> Run {
        assert!(
            self.status.success(),
            "wrangler {} failed ({})\n--- stdout\n{}\n--- stderr\n{}",
            self.args,
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }

    pub(crate) fn failure(self) -> Run {
        assert!(
            !self.status.success(),
            "wrangler {} should have failed\n--- stdout\n{}\n--- stderr\n{}",
            self.args,
            self.stdout,
            self.stderr
        );
        self
    }

    pub(crate) fn output(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    /// stdout parsed as JSON (for `--json` commands and the list commands that print JSON).
    pub(crate) fn json(&self) -> Value {
        let text = self.stdout.trim();
        serde_json::from_str(text).unwrap_or_else(|error| {
            panic!(
                "wrangler {}: stdout is not JSON ({error})\n{}",
                self.args, self.stdout
            )
        })
    }
}

/// wrangler wired to one emulator, with its own home and working directory.
pub(crate) struct Wrangler<'a> {
    bin: PathBuf,
    emulator: &'a TestEmulator,
    home: TempDir,
    work: TempDir,
}

impl<'a> Wrangler<'a> {
    pub(crate) fn new(bin: PathBuf, emulator: &'a TestEmulator) -> Wrangler<'a> {
        Wrangler {
            bin,
            emulator,
            home: tempfile::tempdir().expect("temp HOME"),
            work: tempfile::tempdir().expect("temp working dir"),
        }
    }

    pub(crate) fn write(&self, name: &str, content: &str) {
        let path = self.path(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create wrangler input dir");
        }
        std::fs::write(path, content).expect("write wrangler input file");
    }

    /// A path in wrangler's working directory.
    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.work.path().join(name)
    }

    pub(crate) fn run(&self, args: &[&str]) -> Run {
        self.run_with_input(args, None)
    }

    /// Runs wrangler with `input` as its standard input (a file, so not a TTY).
    pub(crate) fn run_with_stdin(&self, args: &[&str], input: &str) -> Run {
        self.run_with_input(args, Some(input))
    }

    fn run_with_input(&self, args: &[&str], input: Option<&str>) -> Run {
        let logs = self.home.path().join("runs");
        std::fs::create_dir_all(&logs).expect("logs dir");
        let stamp = rand::random::<u64>();
        let stdout_path = logs.join(format!("{stamp}.out"));
        let stderr_path = logs.join(format!("{stamp}.err"));
        let tmp = self.home.path().join("tmp");
        std::fs::create_dir_all(&tmp).expect("tmp dir");
        let stdin = match input {
            Some(input) => {
                let stdin_path = logs.join(format!("{stamp}.in"));
                std::fs::write(&stdin_path, input).expect("stdin file");
                Stdio::from(File::open(&stdin_path).expect("open stdin file"))
            }
            None => Stdio::null(),
        };
        let mut command = Command::new(&self.bin);
        command
            .args(args)
            .current_dir(self.work.path())
            .stdin(stdin)
            .stdout(File::create(&stdout_path).expect("stdout file"))
            .stderr(File::create(&stderr_path).expect("stderr file"));
        for name in [
            "CLOUDFLARE_API_KEY",
            "CLOUDFLARE_EMAIL",
            "CF_API_TOKEN",
            "CF_API_KEY",
            "CF_EMAIL",
            "CF_ACCOUNT_ID",
            "CF_API_BASE_URL",
            "WRANGLER_API_ENVIRONMENT",
            "CLOUDFLARE_COMPLIANCE_REGION",
            "WRANGLER_LOG",
        ] {
            command.env_remove(name);
        }
        command
            .env("CLOUDFLARE_API_BASE_URL", &self.emulator.base_url)
            .env("CLOUDFLARE_API_TOKEN", &self.emulator.token)
            .env("CLOUDFLARE_ACCOUNT_ID", &self.emulator.account_id)
            .env("WRANGLER_SEND_METRICS", "false")
            .env("WRANGLER_HIDE_BANNER", "true")
            .env("HOME", self.home.path())
            .env("XDG_CONFIG_HOME", self.home.path().join(".config"))
            .env("TMPDIR", &tmp)
            .env("npm_config_registry", "http://127.0.0.1:9/")
            .env("CI", "1")
            .env("NO_COLOR", "1")
            .env("FORCE_COLOR", "0");
        let mut child = command.spawn().expect("start wrangler");
        let Some(status) = child.wait_timeout(HANG_GUARD).expect("wait for wrangler") else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "wrangler {} was stuck: still running after {:?}\n--- stdout\n{}\n--- stderr\n{}",
                args.join(" "),
                HANG_GUARD,
                read(&stdout_path),
                read(&stderr_path)
            );
        };
        Run {
            args: args.join(" "),
            status,
            stdout: read(&stdout_path),
            stderr: read(&stderr_path),
        }
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// `method /__emulator/clock` with `body`: pins (`PUT {"now"}`) or moves (`POST
/// {"advance_ms"}`) the emulator's clock; answers `{"now", "manual"}`.
pub(crate) fn emulator_clock(emulator: &TestEmulator, method: &str, body: Option<Value>) -> Value {
    let origin = emulator.base_url.trim_end_matches("/client/v4");
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut request = reqwest::blocking::Client::new()
        .request(method, format!("{origin}/__emulator/clock"))
        .bearer_auth(&emulator.token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().expect("/__emulator/clock");
    assert_eq!(response.status(), 200, "/__emulator/clock");
    response.json().expect("clock report")
}

pub(crate) fn endpoint_count(stats: &Value, key: &str) -> u64 {
    stats["endpoints"][key].as_u64().unwrap_or(0)
}

#[test]
fn wrangler_kv_commands_work_against_the_emulator() {
    let Some(bin) = wrangler_or_skip("wrangler_kv_commands_work_against_the_emulator") else {
        return;
    };
    let emulator = TestEmulator::start();
    let wrangler = Wrangler::new(bin, &emulator);

    let whoami = wrangler.run(&["whoami"]).success();
    assert!(
        whoami.stdout.contains("flareops local account"),
        "{}",
        whoami.output()
    );
    assert!(
        whoami.stdout.contains(&emulator.account_id),
        "{}",
        whoami.output()
    );

    let empty = wrangler.run(&["kv", "namespace", "list"]).success();
    assert_eq!(empty.json(), json!([]));

    let created = wrangler
        .run(&["kv", "namespace", "create", "conformance-ns"])
        .success();
    assert!(
        created
            .stdout
            .contains("Creating namespace with title \"conformance-ns\""),
        "{}",
        created.output()
    );
    let namespaces = emulator.get(&emulator.account_path("/storage/kv/namespaces"));
    assert_eq!(
        namespaces["result"].as_array().map(Vec::len),
        Some(1),
        "{namespaces}"
    );
    assert_eq!(namespaces["result"][0]["title"], json!("conformance-ns"));
    let id = namespaces["result"][0]["id"]
        .as_str()
        .expect("namespace id")
        .to_owned();
    assert!(
        created.stdout.contains(&id),
        "the printed id is the real one"
    );

    let duplicate = wrangler
        .run(&["kv", "namespace", "create", "conformance-ns"])
        .failure();
    assert!(
        duplicate.output().contains("already exists"),
        "{}",
        duplicate.output()
    );

    let listed = wrangler.run(&["kv", "namespace", "list"]).success();
    assert_eq!(listed.json()[0]["id"], json!(id));
    assert_eq!(listed.json()[0]["title"], json!("conformance-ns"));

    wrangler
        .run(&[
            "kv",
            "key",
            "put",
            "greeting",
            "hello",
            "--namespace-id",
            &id,
            "--remote",
        ])
        .success();
    wrangler
        .run(&[
            "kv",
            "key",
            "put",
            "tagged",
            "v1",
            "--namespace-id",
            &id,
            "--remote",
            "--metadata",
            r#"{"owner":"ci"}"#,
            "--ttl",
            "600",
        ])
        .success();
    let got = wrangler
        .run(&[
            "kv",
            "key",
            "get",
            "greeting",
            "--namespace-id",
            &id,
            "--remote",
            "--text",
        ])
        .success();
    assert_eq!(got.stdout.trim(), "hello");

    wrangler.write(
        "bulk.json",
        &json!([
            {"key": "bulk-a", "value": "one"},
            {"key": "bulk-b", "value": "dHdv", "base64": true},
            {"key": "bulk-c", "value": "three", "metadata": {"n": 3}},
        ])
        .to_string(),
    );
    let bulk = wrangler
        .run(&[
            "kv",
            "bulk",
            "put",
            "bulk.json",
            "--namespace-id",
            &id,
            "--remote",
        ])
        .success();
    assert!(bulk.stdout.contains("Success!"), "{}", bulk.output());

    let keys = wrangler
        .run(&["kv", "key", "list", "--namespace-id", &id, "--remote"])
        .success()
        .json();
    let names: Vec<&str> = keys
        .as_array()
        .expect("key list")
        .iter()
        .filter_map(|key| key["name"].as_str())
        .collect();
    assert_eq!(names, ["bulk-a", "bulk-b", "bulk-c", "greeting", "tagged"]);
    let tagged = &keys[4];
    assert_eq!(tagged["metadata"], json!({"owner": "ci"}));
    assert!(tagged["expiration"].as_i64().is_some(), "{tagged}");
    let prefixed = wrangler
        .run(&[
            "kv",
            "key",
            "list",
            "--namespace-id",
            &id,
            "--remote",
            "--prefix",
            "bulk-",
        ])
        .success()
        .json();
    assert_eq!(prefixed.as_array().map(Vec::len), Some(3), "{prefixed}");

    // The emulator's state holds what wrangler wrote (base64 decoded).
    let values = emulator.send(
        "POST",
        &emulator.account_path(&format!("/storage/kv/namespaces/{id}/bulk/get")),
        Some(json!({"keys": ["greeting", "bulk-a", "bulk-b", "tagged"]})),
        &[],
    );
    assert_eq!(
        values["result"]["values"],
        json!({"greeting": "hello", "bulk-a": "one", "bulk-b": "two", "tagged": "v1"})
    );

    wrangler
        .run(&[
            "kv",
            "key",
            "delete",
            "greeting",
            "--namespace-id",
            &id,
            "--remote",
        ])
        .success();
    let gone = emulator.send(
        "GET",
        &emulator.account_path(&format!("/storage/kv/namespaces/{id}/metadata/greeting")),
        None,
        &[],
    );
    assert_eq!(gone["errors"][0]["code"], json!(10009), "{gone}");
    let missing = wrangler
        .run(&[
            "kv",
            "key",
            "get",
            "greeting",
            "--namespace-id",
            &id,
            "--remote",
            "--text",
        ])
        .failure();
    assert!(missing.output().contains("404"), "{}", missing.output());

    wrangler
        .run(&["kv", "namespace", "delete", "--namespace-id", &id, "-y"])
        .success();
    let after = emulator.get(&emulator.account_path("/storage/kv/namespaces"));
    assert_eq!(after["result"], json!([]), "{after}");

    let stats = emulator.stats();
    assert!(
        endpoint_count(
            &stats,
            "PUT /accounts/{account_id}/storage/kv/namespaces/{namespace_id}/bulk"
        ) >= 1,
        "{stats}"
    );
    assert!(
        endpoint_count(
            &stats,
            "PUT /accounts/{account_id}/storage/kv/namespaces/{namespace_id}/values/{key_name}"
        ) >= 2,
        "{stats}"
    );
    assert_eq!(
        endpoint_count(&stats, "GET (no route)"),
        0,
        "wrangler called a route the emulator does not serve: {stats}"
    );
}

#[test]
fn wrangler_d1_commands_work_against_the_emulator() {
    let Some(bin) = wrangler_or_skip("wrangler_d1_commands_work_against_the_emulator") else {
        return;
    };
    let emulator = TestEmulator::start();
    let wrangler = Wrangler::new(bin, &emulator);

    let created = wrangler.run(&["d1", "create", "conformance-db"]).success();
    assert!(
        created
            .stdout
            .contains("Successfully created DB 'conformance-db'"),
        "{}",
        created.output()
    );
    let database = emulator.get(&emulator.account_path("/d1/database/conformance-db"));
    let uuid = database["result"]["uuid"]
        .as_str()
        .expect("database uuid")
        .to_owned();
    assert!(created.stdout.contains(&uuid), "{}", created.output());

    let duplicate = wrangler.run(&["d1", "create", "conformance-db"]).failure();
    assert!(
        duplicate
            .output()
            .contains("A database with that name already exists"),
        "{}",
        duplicate.output()
    );

    let listed = wrangler.run(&["d1", "list", "--json"]).success().json();
    assert_eq!(listed[0]["name"], json!("conformance-db"), "{listed}");
    assert_eq!(listed[0]["uuid"], json!(uuid));

    let executed = wrangler
        .run(&[
            "d1", "execute", "conformance-db", "--remote", "--command",
            "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO users (name) VALUES ('ada'), ('bob'); SELECT name FROM users ORDER BY id",
        ])
        .success();
    assert!(
        executed.stdout.contains("Executed 3 commands"),
        "{}",
        executed.output()
    );

    let selected = wrangler
        .run(&[
            "d1",
            "execute",
            "conformance-db",
            "--remote",
            "--json",
            "--command",
            "SELECT count(*) AS n FROM users",
        ])
        .success()
        .json();
    assert_eq!(selected[0]["results"], json!([{"n": 2}]), "{selected}");
    assert_eq!(selected[0]["success"], json!(true));

    // The SQL really ran: read the database file itself.
    let file = emulator
        .state_dir()
        .join("d1")
        .join(format!("{uuid}.sqlite3"));
    let names: Vec<String> = {
        let conn = rusqlite::Connection::open_with_flags(
            &file,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap_or_else(|error| panic!("open {}: {error}", file.display()));
        let mut statement = conn
            .prepare("SELECT name FROM users ORDER BY id")
            .expect("users table exists");
        statement
            .query_map([], |row| row.get(0))
            .expect("query users")
            .collect::<Result<_, _>>()
            .expect("read users")
    };
    assert_eq!(names, ["ada", "bob"]);

    let failed = wrangler
        .run(&[
            "d1",
            "execute",
            "conformance-db",
            "--remote",
            "--command",
            "SELECT * FROM missing_table",
        ])
        .failure();
    assert!(
        failed.output().contains("no such table: missing_table"),
        "{}",
        failed.output()
    );
    assert!(failed.output().contains("7500"), "{}", failed.output());

    let info = wrangler
        .run(&["d1", "info", "conformance-db", "--json"])
        .success()
        .json();
    assert_eq!(info["uuid"], json!(uuid), "{info}");
    assert_eq!(info["num_tables"], json!(1), "{info}");
    assert!(info["database_size"].as_u64().unwrap_or(0) > 0, "{info}");
    assert!(
        info["read_queries_24h"].as_u64().unwrap_or(0) >= 1,
        "{info}"
    );
    assert!(
        info["write_queries_24h"].as_u64().unwrap_or(0) >= 1,
        "{info}"
    );

    wrangler
        .run(&["d1", "delete", "conformance-db", "-y"])
        .success();
    let gone = emulator.get(&emulator.account_path(&format!("/d1/database/{uuid}")));
    assert_eq!(gone["errors"][0]["code"], json!(7404), "{gone}");
    assert!(!file.exists(), "the database file was removed");
    let listed = wrangler.run(&["d1", "list", "--json"]).success().json();
    assert_eq!(listed, json!([]));

    let stats = emulator.stats();
    assert!(
        endpoint_count(
            &stats,
            "POST /accounts/{account_id}/d1/database/{database_id}/query"
        ) >= 3,
        "{stats}"
    );
    assert!(endpoint_count(&stats, "POST /graphql") >= 1, "{stats}");
}

#[test]
fn wrangler_r2_bucket_commands_work_against_the_emulator() {
    let Some(bin) = wrangler_or_skip("wrangler_r2_bucket_commands_work_against_the_emulator")
    else {
        return;
    };
    let emulator = TestEmulator::start();
    let wrangler = Wrangler::new(bin, &emulator);
    let buckets = |jurisdiction: Option<&str>| -> Vec<String> {
        let headers: Vec<(&str, &str)> = jurisdiction
            .map(|value| vec![("cf-r2-jurisdiction", value)])
            .unwrap_or_default();
        let listed = emulator.send("GET", &emulator.account_path("/r2/buckets"), None, &headers);
        listed["result"]["buckets"]
            .as_array()
            .unwrap_or_else(|| panic!("bucket list: {listed}"))
            .iter()
            .filter_map(|bucket| bucket["name"].as_str().map(String::from))
            .collect()
    };

    wrangler.run(&["r2", "bucket", "list"]).success();

    let created = wrangler
        .run(&["r2", "bucket", "create", "conformance-bucket"])
        .success();
    assert!(
        created
            .stdout
            .contains("Created bucket 'conformance-bucket'"),
        "{}",
        created.output()
    );
    wrangler
        .run(&[
            "r2",
            "bucket",
            "create",
            "conformance-bucket",
            "--jurisdiction",
            "eu",
        ])
        .success();
    assert_eq!(buckets(None), ["conformance-bucket"]);
    assert_eq!(buckets(Some("eu")), ["conformance-bucket"]);

    let duplicate = wrangler
        .run(&["r2", "bucket", "create", "conformance-bucket"])
        .failure();
    assert!(
        duplicate.output().contains("10073"),
        "{}",
        duplicate.output()
    );

    let listed = wrangler.run(&["r2", "bucket", "list"]).success();
    assert!(
        listed.stdout.contains("name:           conformance-bucket"),
        "{}",
        listed.output()
    );

    wrangler
        .run(&["r2", "bucket", "delete", "conformance-bucket"])
        .success();
    assert!(buckets(None).is_empty(), "default bucket deleted");
    assert_eq!(
        buckets(Some("eu")),
        ["conformance-bucket"],
        "the eu bucket of the same name is untouched"
    );
    let missing = wrangler
        .run(&["r2", "bucket", "delete", "conformance-bucket"])
        .failure();
    assert!(missing.output().contains("10006"), "{}", missing.output());
    wrangler
        .run(&[
            "r2",
            "bucket",
            "delete",
            "conformance-bucket",
            "--jurisdiction",
            "eu",
        ])
        .success();
    assert!(buckets(Some("eu")).is_empty());
}

/// The secret the Workers test stores; it must never come back from the emulator or wrangler.
const WORKER_SECRET: &str = "conformance-s3cr3t-7f3a9c";

const WORKER_NAME: &str = "conformance-worker";

/// The Worker's code; `marker` makes each deploy a code change.
fn worker_source(marker: &str) -> String {
    format!(
        "export class Counter {{\n  constructor(state, env) {{ this.state = state; }}\n  async fetch() {{ return new Response(\"counter\"); }}\n}}\n\
         export default {{\n  async fetch(request, env) {{ return new Response(\"{marker} \" + env.GREETING); }},\n  async scheduled(event, env, ctx) {{}},\n}};\n"
    )
}

/// `GET` of a raw API path that must succeed; answers `result`.
fn api_result(emulator: &TestEmulator, path: &str) -> Value {
    let answer = emulator.get(path);
    assert_eq!(answer["success"], json!(true), "GET {path}: {answer}");
    assert!(
        !answer.to_string().contains(WORKER_SECRET),
        "GET {path} answered the secret value"
    );
    answer["result"].clone()
}

/// The version ids of the script, newest first.
fn version_ids(emulator: &TestEmulator) -> Vec<String> {
    let versions = api_result(
        emulator,
        &emulator.account_path(&format!("/workers/scripts/{WORKER_NAME}/versions")),
    );
    versions["items"]
        .as_array()
        .expect("version items")
        .iter()
        .map(|item| item["id"].as_str().expect("version id").to_owned())
        .collect()
}

/// The live deployment's `versions`.
fn live_versions(emulator: &TestEmulator) -> Value {
    let deployments = api_result(
        emulator,
        &emulator.account_path(&format!("/workers/scripts/{WORKER_NAME}/deployments")),
    );
    deployments["deployments"][0]["versions"].clone()
}

fn secret_names(emulator: &TestEmulator) -> Value {
    api_result(
        emulator,
        &emulator.account_path(&format!("/workers/scripts/{WORKER_NAME}/secrets")),
    )
}

#[test]
fn wrangler_workers_commands_work_against_the_emulator() {
    let Some(bin) = wrangler_or_skip("wrangler_workers_commands_work_against_the_emulator") else {
        return;
    };
    let emulator = TestEmulator::start_with_zones(&["example.com"]);
    let wrangler = Wrangler::new(bin, &emulator);
    let mut outputs: Vec<String> = Vec::new();
    let script =
        |rest: &str| emulator.account_path(&format!("/workers/scripts/{WORKER_NAME}{rest}"));

    // The resources the bindings point at, created through the API first.
    let kv = emulator.send(
        "POST",
        &emulator.account_path("/storage/kv/namespaces"),
        Some(json!({"title": "conformance-cache"})),
        &[],
    );
    let kv_id = kv["result"]["id"].as_str().expect("kv id").to_owned();
    let d1 = emulator.send(
        "POST",
        &emulator.account_path("/d1/database"),
        Some(json!({"name": "conformance-db"})),
        &[],
    );
    let d1_id = d1["result"]["uuid"].as_str().expect("d1 uuid").to_owned();
    let r2 = emulator.send(
        "POST",
        &emulator.account_path("/r2/buckets"),
        Some(json!({"name": "conformance-bucket"})),
        &[],
    );
    assert_eq!(r2["success"], json!(true), "{r2}");

    wrangler.write(
        "wrangler.toml",
        &format!(
            r#"name = "{WORKER_NAME}"
main = "index.js"
compatibility_date = "2025-01-01"
routes = [
  {{ pattern = "api.example.com/*", zone_name = "example.com" }},
  {{ pattern = "app.example.com", custom_domain = true }},
]

[vars]
GREETING = "hello"
LEVEL = {{ a = 1 }}

[[kv_namespaces]]
binding = "CACHE"
id = "{kv_id}"

[[d1_databases]]
binding = "DB"
database_name = "conformance-db"
database_id = "{d1_id}"

[[r2_buckets]]
binding = "BUCKET"
bucket_name = "conformance-bucket"

[[durable_objects.bindings]]
name = "COUNTER"
class_name = "Counter"

[[migrations]]
tag = "v1"
new_sqlite_classes = ["Counter"]

[triggers]
crons = ["*/5 * * * *"]
"#
        ),
    );

    // First deploy: the script upload path, with the migration, triggers, route and domain.
    wrangler.write("index.js", &worker_source("v1"));
    let first = wrangler.run(&["deploy"]).success();
    outputs.push(first.output());
    let versions = version_ids(&emulator);
    assert_eq!(versions.len(), 1, "{}", first.output());
    assert!(
        first
            .stdout
            .contains(&format!("Current Version ID: {}", versions[0])),
        "{}",
        first.output()
    );
    assert_eq!(
        live_versions(&emulator),
        json!([{"version_id": versions[0], "percentage": 100}])
    );
    let version = api_result(&emulator, &script(&format!("/versions/{}", versions[0])));
    let bindings = &version["resources"]["bindings"];
    let binding = |name: &str| -> Value {
        bindings
            .as_array()
            .expect("bindings")
            .iter()
            .find(|binding| binding["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("binding {name} in {bindings}"))
    };
    assert_eq!(
        binding("GREETING"),
        json!({"name": "GREETING", "type": "plain_text", "text": "hello"})
    );
    assert_eq!(
        binding("LEVEL"),
        json!({"name": "LEVEL", "type": "json", "json": {"a": 1}})
    );
    assert_eq!(binding("CACHE")["namespace_id"], json!(kv_id));
    assert_eq!(binding("DB")["id"], json!(d1_id));
    assert_eq!(
        binding("BUCKET")["bucket_name"],
        json!("conformance-bucket")
    );
    assert_eq!(binding("COUNTER")["class_name"], json!("Counter"));
    assert_eq!(
        version["resources"]["script_runtime"]["compatibility_date"],
        json!("2025-01-01")
    );
    let scripts = api_result(&emulator, &emulator.account_path("/workers/scripts"));
    assert_eq!(scripts[0]["id"], json!(WORKER_NAME), "{scripts}");
    assert_eq!(scripts[0]["migration_tag"], json!("v1"));
    let namespaces = api_result(
        &emulator,
        &emulator.account_path("/workers/durable_objects/namespaces"),
    );
    assert_eq!(
        namespaces,
        json!([{
            "id": namespaces[0]["id"],
            "name": format!("{WORKER_NAME}_Counter"),
            "script": WORKER_NAME,
            "class": "Counter",
            "use_sqlite": true,
        }])
    );
    let schedules = api_result(&emulator, &script("/schedules"));
    assert_eq!(
        schedules["schedules"][0]["cron"],
        json!("*/5 * * * *"),
        "{schedules}"
    );
    assert_eq!(schedules["schedules"].as_array().map(Vec::len), Some(1));
    let zone_id = flareops::emulator::zone_id("example.com");
    let zone_routes = api_result(&emulator, &format!("/zones/{zone_id}/workers/routes"));
    assert_eq!(
        zone_routes,
        json!([{"id": zone_routes[0]["id"], "pattern": "api.example.com/*", "script": WORKER_NAME}])
    );
    let domains = api_result(
        &emulator,
        &emulator.account_path(&format!("/workers/domains?service={WORKER_NAME}")),
    );
    assert_eq!(
        domains[0]["hostname"],
        json!("app.example.com"),
        "{domains}"
    );
    assert_eq!(domains[0]["zone_id"], json!(zone_id));

    // A secret from stdin: a new version, deployed alone.
    let put = wrangler
        .run_with_stdin(&["secret", "put", "API_KEY"], &format!("{WORKER_SECRET}\n"))
        .success();
    outputs.push(put.output());
    assert_eq!(
        secret_names(&emulator),
        json!([{"name": "API_KEY", "type": "secret_text"}])
    );
    let listed = wrangler.run(&["secret", "list"]).success();
    outputs.push(listed.output());
    assert_eq!(
        listed.json(),
        json!([{"name": "API_KEY", "type": "secret_text"}])
    );
    let versions = version_ids(&emulator);
    assert_eq!(versions.len(), 2);
    assert_eq!(
        live_versions(&emulator),
        json!([{"version_id": versions[0], "percentage": 100}])
    );

    // A later deploy after a code change: the versions path (upload, then deploy at 100%).
    wrangler.write("index.js", &worker_source("v2"));
    let second = wrangler.run(&["deploy"]).success();
    outputs.push(second.output());
    let versions = version_ids(&emulator);
    assert_eq!(versions.len(), 3, "{}", second.output());
    assert_eq!(
        live_versions(&emulator),
        json!([{"version_id": versions[0], "percentage": 100}])
    );
    let stats = emulator.stats();
    assert_eq!(
        endpoint_count(
            &stats,
            "PUT /accounts/{account_id}/workers/scripts/{script_name}"
        ),
        1,
        "only the first deploy uploads the script; the later one uses versions: {stats}"
    );
    assert!(
        endpoint_count(
            &stats,
            "POST /accounts/{account_id}/workers/scripts/{script_name}/versions"
        ) >= 1,
        "{stats}"
    );
    let v3 = api_result(&emulator, &script(&format!("/versions/{}", versions[0])));
    assert!(
        v3["resources"]["bindings"]
            .as_array()
            .expect("bindings")
            .iter()
            .any(|binding| binding == &json!({"name": "API_KEY", "type": "secret_text"})),
        "the deploy kept the secret: {v3}"
    );

    // A version uploaded, not deployed.
    wrangler.write("index.js", &worker_source("v3"));
    let upload = wrangler
        .run(&[
            "versions",
            "upload",
            "--message",
            "third change",
            "--tag",
            "v3-tag",
        ])
        .success();
    outputs.push(upload.output());
    let versions = version_ids(&emulator);
    assert_eq!(versions.len(), 4, "{}", upload.output());
    let (uploaded, deployed) = (versions[0].clone(), versions[1].clone());
    assert!(upload.stdout.contains(&uploaded), "{}", upload.output());
    let v4 = api_result(&emulator, &script(&format!("/versions/{uploaded}")));
    assert_eq!(v4["annotations"]["workers/message"], json!("third change"));
    assert_eq!(v4["annotations"]["workers/tag"], json!("v3-tag"));
    assert_eq!(
        live_versions(&emulator),
        json!([{"version_id": deployed, "percentage": 100}])
    );

    let list = wrangler.run(&["versions", "list", "--json"]).success();
    outputs.push(list.output());
    let listed: Vec<String> = list
        .json()
        .as_array()
        .expect("versions list")
        .iter()
        .map(|item| item["id"].as_str().expect("id").to_owned())
        .collect();
    for id in &versions {
        assert!(listed.contains(id), "{id} in {listed:?}");
    }

    // A split deployment of two versions.
    let split = wrangler
        .run(&[
            "versions",
            "deploy",
            &format!("{deployed}@10"),
            &format!("{uploaded}@90"),
            "--yes",
            "--message",
            "canary",
        ])
        .success();
    outputs.push(split.output());
    assert_eq!(
        live_versions(&emulator),
        json!([
            {"version_id": deployed, "percentage": 10},
            {"version_id": uploaded, "percentage": 90},
        ]),
        "{}",
        split.output()
    );

    let deployments = wrangler.run(&["deployments", "list"]).success();
    outputs.push(deployments.output());
    assert!(
        deployments.stdout.contains(&uploaded),
        "{}",
        deployments.output()
    );
    assert!(
        deployments.stdout.contains("canary"),
        "{}",
        deployments.output()
    );
    let deployments_json = wrangler.run(&["deployments", "list", "--json"]).success();
    outputs.push(deployments_json.output());
    let listed = deployments_json.json();
    let listed = listed.as_array().expect("deployments");
    assert_eq!(listed.len(), 4, "upload, secret, deploy, split: {listed:?}");
    assert!(
        listed
            .iter()
            .any(|deployment| deployment["annotations"]["workers/message"] == "canary"),
        "{listed:?}"
    );

    // Rollback, non-interactively: back to the last version deployed alone.
    let rollback = wrangler.run(&["rollback"]).success();
    outputs.push(rollback.output());
    assert_eq!(
        live_versions(&emulator),
        json!([{"version_id": deployed, "percentage": 100}]),
        "{}",
        rollback.output()
    );
    let live = api_result(&emulator, &script("/deployments"));
    assert_eq!(
        live["deployments"][0]["annotations"]["workers/triggered_by"],
        json!("rollback")
    );
    assert_eq!(
        live["deployments"][0]["annotations"]["workers/message"],
        json!("Rollback")
    );

    // The newest version is not live any more: secret changes are refused (10215).
    let refused = wrangler
        .run_with_stdin(&["secret", "put", "OTHER"], WORKER_SECRET)
        .failure();
    outputs.push(refused.output());
    assert!(
        refused
            .output()
            .contains("latest version of your Worker isn't currently deployed"),
        "{}",
        refused.output()
    );
    assert_eq!(
        secret_names(&emulator),
        json!([{"name": "API_KEY", "type": "secret_text"}])
    );

    // Deploy again, then delete the secret: one more version each.
    wrangler.write("index.js", &worker_source("v4"));
    let third = wrangler.run(&["deploy"]).success();
    outputs.push(third.output());
    let delete = wrangler.run(&["secret", "delete", "API_KEY"]).success();
    outputs.push(delete.output());
    assert_eq!(secret_names(&emulator), json!([]));
    let emptied = wrangler.run(&["secret", "list"]).success();
    outputs.push(emptied.output());
    assert_eq!(emptied.json(), json!([]));
    let versions = version_ids(&emulator);
    assert_eq!(versions.len(), 6);
    assert_eq!(
        live_versions(&emulator),
        json!([{"version_id": versions[0], "percentage": 100}])
    );
    let schedules = api_result(&emulator, &script("/schedules"));
    assert_eq!(
        schedules["schedules"].as_array().map(Vec::len),
        Some(1),
        "{schedules}"
    );
    assert_eq!(
        api_result(&emulator, &script("/routes"))[0]["pattern"],
        json!("api.example.com/*")
    );

    // The secret's value never came back: not from wrangler, not from any read of the state.
    for output in &outputs {
        assert!(
            !output.contains(WORKER_SECRET),
            "wrangler printed the secret:\n{output}"
        );
    }
    for id in &versions {
        api_result(&emulator, &script(&format!("/versions/{id}")));
        let content = reqwest::blocking::Client::new()
            .get(format!(
                "{}{}",
                emulator.base_url,
                script(&format!("/content/v2?version={id}"))
            ))
            .bearer_auth(&emulator.token)
            .send()
            .and_then(|response| response.text())
            .expect("content/v2");
        // The module wrangler bundled, stored and served back as sent.
        assert!(
            content.contains("async fetch(request, env)") && content.contains("class {"),
            "{content}"
        );
        assert!(!content.contains(WORKER_SECRET));
    }
    for path in [
        script("/settings"),
        script("/deployments"),
        script("/script-settings"),
        emulator.account_path("/workers/scripts"),
        emulator.account_path(&format!("/workers/services/{WORKER_NAME}")),
    ] {
        api_result(&emulator, &path);
    }
    let stats = emulator.stats();
    for (endpoint, _) in stats["endpoints"].as_object().expect("endpoints") {
        assert!(
            !endpoint.ends_with("(no route)"),
            "wrangler called a route the emulator does not serve: {stats}"
        );
    }
}

/// `POST /query` through the raw API; answers the per-statement results.
fn d1_query(emulator: &TestEmulator, uuid: &str, sql: &str) -> Value {
    let answer = emulator.send(
        "POST",
        &emulator.account_path(&format!("/d1/database/{uuid}/query")),
        Some(json!({ "sql": sql })),
        &[],
    );
    assert_eq!(answer["success"], json!(true), "{sql}: {answer}");
    answer["result"].clone()
}

/// The bookmark between the quotes of `The current bookmark is '…'`.
fn printed_bookmark(run: &Run) -> String {
    let marker = "The current bookmark is '";
    let start = run
        .stdout
        .find(marker)
        .unwrap_or_else(|| panic!("no bookmark printed\n{}", run.output()))
        + marker.len();
    let end = run.stdout[start..]
        .find('\'')
        .expect("closing quote of the bookmark");
    run.stdout[start..start + end].to_owned()
}

#[test]
fn wrangler_d1_migrations_and_time_travel_work_against_the_emulator() {
    let Some(bin) =
        wrangler_or_skip("wrangler_d1_migrations_and_time_travel_work_against_the_emulator")
    else {
        return;
    };
    let emulator = TestEmulator::start();
    // The emulator's clock stands still from here on (at the machine's time, as Time Travel
    // refuses bookmarks older than 30 days); the test moves it.
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format now");
    emulator_clock(&emulator, "PUT", Some(json!({ "now": now })));
    let wrangler = Wrangler::new(bin, &emulator);
    let created = emulator.send(
        "POST",
        &emulator.account_path("/d1/database"),
        Some(json!({"name": "migrated-db"})),
        &[],
    );
    let uuid = created["result"]["uuid"]
        .as_str()
        .unwrap_or_else(|| panic!("database uuid: {created}"))
        .to_owned();
    wrangler.write(
        "wrangler.toml",
        &format!(
            r#"name = "migrated"
compatibility_date = "2025-01-01"

[[d1_databases]]
binding = "DB"
database_name = "migrated-db"
database_id = "{uuid}"
migrations_dir = "migrations"
"#
        ),
    );
    std::fs::create_dir_all(wrangler.work.path().join("migrations")).expect("migrations dir");
    wrangler.write(
        "migrations/0001_init.sql",
        "-- Migration number: 0001\nCREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);\nINSERT INTO users (name) VALUES ('ada');\n",
    );
    wrangler.write(
        "migrations/0002_more.sql",
        "CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users (id), title TEXT);\nCREATE INDEX posts_by_user ON posts (user_id);\n",
    );

    let pending = wrangler
        .run(&["d1", "migrations", "list", "migrated-db", "--remote"])
        .success();
    assert!(
        pending.stdout.contains("Migrations to be applied")
            && pending.stdout.contains("0001_init.sql")
            && pending.stdout.contains("0002_more.sql"),
        "{}",
        pending.output()
    );

    let applied = wrangler
        .run(&["d1", "migrations", "apply", "migrated-db", "--remote"])
        .success();
    assert_eq!(
        applied.stdout.matches("✅").count(),
        3,
        "one row for the first migration's table, two for the second's\n{}",
        applied.output()
    );
    let tables = d1_query(
        &emulator,
        &uuid,
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('users', 'posts') ORDER BY name",
    );
    assert_eq!(
        tables[0]["results"],
        json!([{"name": "posts"}, {"name": "users"}])
    );
    let tracked = d1_query(
        &emulator,
        &uuid,
        "SELECT id, name FROM d1_migrations ORDER BY id",
    );
    assert_eq!(
        tracked[0]["results"],
        json!([{"id": 1, "name": "0001_init.sql"}, {"id": 2, "name": "0002_more.sql"}])
    );

    let none = wrangler
        .run(&["d1", "migrations", "list", "migrated-db", "--remote"])
        .success();
    assert!(
        none.stdout.contains("No migrations to apply!"),
        "{}",
        none.output()
    );

    // Time travel: the bookmark before a write, then back to it.
    let info = wrangler
        .run(&["d1", "time-travel", "info", "migrated-db"])
        .success();
    let before = printed_bookmark(&info);
    let groups: Vec<usize> = before.split('-').map(str::len).collect();
    assert_eq!(groups, [8, 8, 8, 32], "{before}");
    let as_json = wrangler
        .run(&["d1", "time-travel", "info", "migrated-db", "--json"])
        .success()
        .json();
    assert_eq!(as_json, json!({ "bookmark": before }));

    d1_query(
        &emulator,
        &uuid,
        "INSERT INTO users (name) VALUES ('grace')",
    );
    let after = wrangler
        .run(&["d1", "time-travel", "info", "migrated-db", "--json"])
        .success()
        .json()["bookmark"]
        .as_str()
        .expect("bookmark")
        .to_owned();
    assert!(after > before, "{before} then {after}");

    let restored = wrangler
        .run(&[
            "d1",
            "time-travel",
            "restore",
            "migrated-db",
            &format!("--bookmark={before}"),
        ])
        .success();
    assert!(
        restored
            .stdout
            .contains(&format!("restored back to bookmark {before}"))
            && restored
                .stdout
                .contains(&format!("restore to the previous bookmark: {after}")),
        "{}",
        restored.output()
    );
    let names = |emulator: &TestEmulator| {
        d1_query(emulator, &uuid, "SELECT name FROM users ORDER BY id")[0]["results"].clone()
    };
    assert_eq!(
        names(&emulator),
        json!([{"name": "ada"}]),
        "the row is gone"
    );

    // A timestamp after the restore maps to the restored state, through wrangler's conversion:
    // the emulator's clock moves on by more than a second instead of the test sleeping.
    let moved = emulator_clock(&emulator, "POST", Some(json!({"advance_ms": 1100})));
    let now = moved["now"].as_str().expect("clock now").to_owned();
    let current = wrangler
        .run(&["d1", "time-travel", "info", "migrated-db", "--json"])
        .success()
        .json();
    let at_now = wrangler
        .run(&[
            "d1",
            "time-travel",
            "info",
            "migrated-db",
            "--json",
            &format!("--timestamp={now}"),
        ])
        .success()
        .json();
    assert_eq!(at_now, current);

    // previous_bookmark undoes the restore.
    let undone = wrangler
        .run(&[
            "d1",
            "time-travel",
            "restore",
            "migrated-db",
            "--json",
            &format!("--bookmark={after}"),
        ])
        .success()
        .json();
    assert_eq!(undone["bookmark"], json!(after), "{undone}");
    assert_eq!(
        names(&emulator),
        json!([{"name": "ada"}, {"name": "grace"}])
    );

    let stats = emulator.stats();
    assert!(
        endpoint_count(
            &stats,
            "POST /accounts/{account_id}/d1/database/{database_id}/time_travel/restore"
        ) >= 2,
        "{stats}"
    );
    for (endpoint, _) in stats["endpoints"].as_object().expect("endpoints") {
        assert!(
            !endpoint.ends_with("(no route)"),
            "wrangler called a route the emulator does not serve: {stats}"
        );
    }
}

/// flareops and wrangler share wrangler's `d1_migrations` table: what one
/// applied, the other does not apply again, in both directions.
#[test]
fn flareops_and_wrangler_agree_on_applied_d1_migrations() {
    let Some(bin) = wrangler_or_skip("flareops_and_wrangler_agree_on_applied_d1_migrations") else {
        return;
    };
    let emulator = TestEmulator::start();
    let root = support::project(&[
        (
            "infra/db.yaml",
            "d1_databases:\n  main:\n    name: shop-${env}\n    migrations: migrations\n",
        ),
        (
            "migrations/0001_init.sql",
            "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);\n",
        ),
        (
            "environments/staging.yaml",
            &format!("account_id: {}\n", emulator.account_id),
        ),
    ]);
    let run = |verb: &[&str]| {
        let mut command = support::flareops(root.path(), &emulator);
        command.args(verb).args(["--env", "staging"]);
        command.assert()
    };
    run(&["apply", "--yes"])
        .success()
        .stdout(predicates::str::contains(
            "applied migrations 0001_init.sql",
        ));
    let databases = emulator.get(&emulator.account_path("/d1/database?name=shop-staging"));
    let uuid = databases["result"][0]["uuid"]
        .as_str()
        .expect("uuid")
        .to_owned();

    let wrangler = Wrangler::new(bin, &emulator);
    wrangler.write(
        "wrangler.toml",
        &format!(
            "name = \"shop\"\ncompatibility_date = \"2025-01-01\"\n\n[[d1_databases]]\nbinding = \"DB\"\ndatabase_name = \"shop-staging\"\ndatabase_id = \"{uuid}\"\nmigrations_dir = \"migrations\"\n"
        ),
    );
    std::fs::create_dir_all(wrangler.work.path().join("migrations")).expect("migrations dir");
    let both = |name: &str, sql: &str| {
        wrangler.write(&format!("migrations/{name}"), sql);
        support::write(root.path(), &format!("migrations/{name}"), sql);
    };
    both(
        "0001_init.sql",
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);\n",
    );

    // flareops applied 0001: wrangler has nothing to apply.
    let listed = wrangler
        .run(&["d1", "migrations", "list", "shop-staging", "--remote"])
        .success();
    assert!(
        listed.output().contains("No migrations to apply"),
        "{}",
        listed.output()
    );

    // wrangler applies 0002: flareops has nothing to apply.
    both(
        "0002_posts.sql",
        "CREATE TABLE posts (id INTEGER PRIMARY KEY, title TEXT);\n",
    );
    wrangler
        .run(&["d1", "migrations", "apply", "shop-staging", "--remote"])
        .success();
    run(&["plan", "--detailed-exitcode"]).code(0);

    // flareops applies 0003: wrangler has nothing to apply.
    both(
        "0003_tags.sql",
        "CREATE TABLE tags (id INTEGER PRIMARY KEY);\n",
    );
    run(&["plan"])
        .success()
        .stdout(predicates::str::contains("+ 0003_tags.sql"));
    run(&["apply", "--yes"])
        .success()
        .stdout(predicates::str::contains(
            "applied migrations 0003_tags.sql",
        ));
    let listed = wrangler
        .run(&["d1", "migrations", "list", "shop-staging", "--remote"])
        .success();
    assert!(
        listed.output().contains("No migrations to apply"),
        "{}",
        listed.output()
    );
    let applied = d1_query(
        &emulator,
        &uuid,
        "SELECT name FROM d1_migrations ORDER BY id",
    );
    let names: Vec<&str> = applied[0]["results"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|row| row["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["0001_init.sql", "0002_posts.sql", "0003_tags.sql"]);

    // A failing file stops the apply with the SQL error, its file and line,
    // and leaves nothing of itself behind (one transaction).
    support::write(
        root.path(),
        "migrations/0004_broken.sql",
        "CREATE TABLE audit (id INTEGER);\nINSERT INTO nowhere VALUES (1);\n",
    );
    run(&["apply", "--yes"])
        .code(1)
        .stderr(predicates::str::contains("migrations/0004_broken.sql:2"))
        .stderr(predicates::str::contains("no such table: nowhere"));
    let tables = d1_query(
        &emulator,
        &uuid,
        "SELECT count(*) AS n FROM sqlite_master WHERE name = 'audit'",
    );
    assert_eq!(
        tables[0]["results"][0]["n"], 0,
        "the failed file was rolled back"
    );
}

// ---------------------------------------------------------------------------------------------
// Regression tests: the four commands that failed against the emulator (issue: emulator
// fidelity). Each runs the real wrangler and reads the account back.
// ---------------------------------------------------------------------------------------------

/// The `result` of a raw API call that must succeed.
fn must(answer: Value, what: &str) -> Value {
    assert_eq!(answer["success"], json!(true), "{what}: {answer}");
    answer["result"].clone()
}

fn assert_every_route_served(emulator: &TestEmulator) {
    let stats = emulator.stats();
    for (endpoint, _) in stats["endpoints"].as_object().expect("endpoints") {
        assert!(
            !endpoint.ends_with("(no route)"),
            "wrangler called a route the emulator does not serve: {stats}"
        );
    }
}

/// `wrangler secret bulk` PATCHes the settings with every binding it keeps given by name and
/// type only; the emulator answered 10021 ("must have a string text") for a plain_text var.
#[test]
fn wrangler_secret_bulk_keeps_the_bindings_a_worker_already_has() {
    let Some(bin) =
        wrangler_or_skip("wrangler_secret_bulk_keeps_the_bindings_a_worker_already_has")
    else {
        return;
    };
    let emulator = TestEmulator::start();
    let wrangler = Wrangler::new(bin, &emulator);
    wrangler.write(
        "wrangler.toml",
        "name = \"bulk-worker\"\nmain = \"index.js\"\ncompatibility_date = \"2025-01-01\"\n\n[vars]\nGREETING = \"hello\"\n",
    );
    wrangler.write(
        "index.js",
        "export default { async fetch(request, env) { return new Response(env.GREETING); } };\n",
    );
    wrangler.run(&["deploy"]).success();
    wrangler
        .run_with_stdin(&["secret", "put", "OLD_SECRET"], "old-value-9c1d\n")
        .success();
    wrangler.write(
        "secrets.json",
        &json!({"NEW_SECRET": "new-value-4b7e", "OLD_SECRET": "replaced-value-2f8a"}).to_string(),
    );
    let bulk = wrangler.run(&["secret", "bulk", "secrets.json"]).success();
    assert!(
        bulk.stdout.contains("2 secrets successfully uploaded"),
        "{}",
        bulk.output()
    );
    for value in ["old-value-9c1d", "new-value-4b7e", "replaced-value-2f8a"] {
        assert!(
            !bulk.output().contains(value),
            "wrangler printed a secret value"
        );
    }
    let settings = must(
        emulator.get(&emulator.account_path("/workers/scripts/bulk-worker/settings")),
        "settings",
    );
    assert_eq!(
        settings["bindings"],
        json!([
            {"name": "GREETING", "type": "plain_text", "text": "hello"},
            {"name": "NEW_SECRET", "type": "secret_text"},
            {"name": "OLD_SECRET", "type": "secret_text"},
        ]),
        "the var kept its text, both secrets are set"
    );
    let listed = wrangler.run(&["secret", "list"]).success().json();
    assert_eq!(
        listed,
        json!([
            {"name": "NEW_SECRET", "type": "secret_text"},
            {"name": "OLD_SECRET", "type": "secret_text"},
        ])
    );
    let stats = emulator.stats();
    assert_eq!(
        endpoint_count(
            &stats,
            "PATCH /accounts/{account_id}/workers/scripts/{script_name}/settings"
        ),
        1,
        "{stats}"
    );
    assert_every_route_served(&emulator);
}

/// The rows of `SELECT … ORDER BY id` through the raw API.
fn d1_rows(emulator: &TestEmulator, database: &str, sql: &str) -> Value {
    d1_query(emulator, database, sql)[0]["results"].clone()
}

/// `wrangler d1 execute DB --remote --file` goes through D1's import API (init, upload to the
/// returned link, ingest, poll), and `wrangler d1 export --remote` through its export API; the
/// emulator answered 7003 "No route for the URI" to both. The dump imports back to the same rows.
#[test]
fn wrangler_d1_execute_file_and_export_use_the_import_and_export_apis() {
    let Some(bin) =
        wrangler_or_skip("wrangler_d1_execute_file_and_export_use_the_import_and_export_apis")
    else {
        return;
    };
    let emulator = TestEmulator::start();
    let wrangler = Wrangler::new(bin, &emulator);
    let source = must(
        emulator.send(
            "POST",
            &emulator.account_path("/d1/database"),
            Some(json!({"name": "file-db"})),
            &[],
        ),
        "create file-db",
    )["uuid"]
        .as_str()
        .expect("uuid")
        .to_owned();
    wrangler.write(
        "wrangler.toml",
        &format!(
            "name = \"files\"\ncompatibility_date = \"2025-01-01\"\n\n[[d1_databases]]\nbinding = \"DB\"\ndatabase_name = \"file-db\"\ndatabase_id = \"{source}\"\n"
        ),
    );
    wrangler.write(
        "schema.sql",
        "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT UNIQUE NOT NULL, score REAL);\n\
         CREATE INDEX users_by_score ON users (score);\n\
         INSERT INTO users (email, score) VALUES ('ada@example.com', 1.5), ('o''brien@example.com', 2.0);\n",
    );
    let executed = wrangler
        .run(&["d1", "execute", "DB", "--remote", "--file", "schema.sql"])
        .success();
    assert!(
        executed.stdout.contains("Executed 3 queries"),
        "{}",
        executed.output()
    );
    let rows = d1_rows(
        &emulator,
        &source,
        "SELECT id, email, score FROM users ORDER BY id",
    );
    assert_eq!(
        rows,
        json!([
            {"id": 1, "email": "ada@example.com", "score": 1.5},
            {"id": 2, "email": "o'brien@example.com", "score": 2.0},
        ])
    );

    // A failing file says why and leaves nothing of itself behind.
    wrangler.write(
        "broken.sql",
        "INSERT INTO users (email) VALUES ('eve@example.com');\nINSERT INTO nowhere VALUES (1);\n",
    );
    let failed = wrangler
        .run(&["d1", "execute", "DB", "--remote", "--file", "broken.sql"])
        .failure();
    assert!(
        failed.output().contains("no such table: nowhere"),
        "{}",
        failed.output()
    );
    assert_eq!(
        d1_rows(&emulator, &source, "SELECT count(*) AS n FROM users"),
        json!([{"n": 2}])
    );

    // Export, then import the dump into a new database: the same schema and rows.
    let exported = wrangler
        .run(&[
            "d1",
            "export",
            "file-db",
            "--remote",
            "--output",
            "dump.sql",
            "--skip-confirmation",
        ])
        .success();
    assert!(
        exported
            .stdout
            .contains("Downloaded to dump.sql successfully"),
        "{}",
        exported.output()
    );
    let dump = std::fs::read_to_string(wrangler.path("dump.sql")).expect("dump.sql");
    assert!(dump.contains("CREATE TABLE users"), "{dump}");
    let copy = must(
        emulator.send(
            "POST",
            &emulator.account_path("/d1/database"),
            Some(json!({"name": "copy-db"})),
            &[],
        ),
        "create copy-db",
    )["uuid"]
        .as_str()
        .expect("uuid")
        .to_owned();
    wrangler
        .run(&["d1", "execute", "copy-db", "--remote", "--file", "dump.sql"])
        .success();
    for sql in [
        "SELECT id, email, score FROM users ORDER BY id",
        "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name",
    ] {
        assert_eq!(
            d1_rows(&emulator, &copy, sql),
            d1_rows(&emulator, &source, sql),
            "{sql}"
        );
    }
    let stats = emulator.stats();
    assert!(
        endpoint_count(
            &stats,
            "POST /accounts/{account_id}/d1/database/{database_id}/import"
        ) >= 6,
        "init and ingest for each of three files: {stats}"
    );
    assert_eq!(
        endpoint_count(
            &stats,
            "POST /accounts/{account_id}/d1/database/{database_id}/export"
        ),
        1,
        "{stats}"
    );
    assert_every_route_served(&emulator);
}

/// R2 objects through the account API wrangler uses: `r2 object put` said "The specified bucket
/// does not exist." for a bucket that existed, and `r2 object delete` printed "Delete complete."
/// after a 404 (no route). Now objects are stored under the state directory, a delete really
/// deletes, and a delete of a missing key succeeds as R2's deletes do (wrangler's output is the
/// same, the emulator's answer is a 200).
#[test]
fn wrangler_r2_object_commands_store_and_delete_objects() {
    let Some(bin) = wrangler_or_skip("wrangler_r2_object_commands_store_and_delete_objects") else {
        return;
    };
    let emulator = TestEmulator::start();
    let wrangler = Wrangler::new(bin, &emulator);
    wrangler
        .run(&["r2", "bucket", "create", "objects-bucket"])
        .success();
    wrangler.write("report.csv", "id,name\n1,ada\n");
    wrangler
        .run(&[
            "r2",
            "object",
            "put",
            "objects-bucket/reports/2025/report.csv",
            "--file",
            "report.csv",
            "--content-type",
            "text/csv",
            "--cache-control",
            "no-cache",
            "--remote",
        ])
        .success();
    let object_path = emulator.account_path("/r2/buckets/objects-bucket/objects");
    let listed = must(emulator.get(&object_path), "list objects");
    assert_eq!(
        listed[0]["key"],
        json!("reports/2025/report.csv"),
        "{listed}"
    );
    assert_eq!(listed[0]["size"], json!(14));
    assert_eq!(
        listed[0]["http_metadata"],
        json!({"contentType": "text/csv", "cacheControl": "no-cache"})
    );
    let bodies = emulator.state_dir().join("r2").join("objects");
    assert_eq!(
        std::fs::read_dir(&bodies).expect("object bodies").count(),
        1,
        "the body is a file under the state directory"
    );

    wrangler
        .run(&[
            "r2",
            "object",
            "get",
            "objects-bucket/reports/2025/report.csv",
            "--file",
            "downloaded.csv",
            "--remote",
        ])
        .success();
    assert_eq!(
        std::fs::read_to_string(wrangler.path("downloaded.csv")).expect("downloaded"),
        "id,name\n1,ada\n"
    );
    let missing = wrangler
        .run(&[
            "r2",
            "object",
            "get",
            "objects-bucket/absent.csv",
            "--file",
            "absent.csv",
            "--remote",
        ])
        .failure();
    assert!(
        missing
            .output()
            .contains("The specified key does not exist."),
        "{}",
        missing.output()
    );
    let no_bucket = wrangler
        .run(&[
            "r2",
            "object",
            "put",
            "no-such-bucket/x",
            "--file",
            "report.csv",
            "--remote",
        ])
        .failure();
    assert!(
        no_bucket
            .output()
            .contains("The specified bucket does not exist."),
        "{}",
        no_bucket.output()
    );

    // A bucket that holds an object cannot be deleted.
    let refused = wrangler
        .run(&["r2", "bucket", "delete", "objects-bucket"])
        .failure();
    assert!(refused.output().contains("10008"), "{}", refused.output());

    let deleted = wrangler
        .run(&[
            "r2",
            "object",
            "delete",
            "objects-bucket/reports/2025/report.csv",
            "--remote",
        ])
        .success();
    assert!(
        deleted.stdout.contains("Delete complete."),
        "{}",
        deleted.output()
    );
    assert_eq!(must(emulator.get(&object_path), "list objects"), json!([]));
    assert_eq!(
        std::fs::read_dir(&bodies).expect("object bodies").count(),
        0
    );

    // Deleting it again: R2 deletes are idempotent, so the emulator answers 200 with the key.
    let again = wrangler
        .run(&[
            "r2",
            "object",
            "delete",
            "objects-bucket/reports/2025/report.csv",
            "--remote",
        ])
        .success();
    assert!(
        again.stdout.contains("Delete complete."),
        "{}",
        again.output()
    );
    let answer = emulator.send(
        "DELETE",
        &emulator.account_path("/r2/buckets/objects-bucket/objects/reports/2025/report.csv"),
        None,
        &[],
    );
    assert_eq!(
        must(answer, "delete a missing key"),
        json!({"key": "reports/2025/report.csv"})
    );
    let stats = emulator.stats();
    assert_eq!(
        endpoint_count(
            &stats,
            "DELETE /accounts/{account_id}/r2/buckets/{bucket_name}/objects/{object_key}"
        ),
        3,
        "{stats}"
    );
    wrangler
        .run(&["r2", "bucket", "delete", "objects-bucket"])
        .success();
    assert_every_route_served(&emulator);
}
