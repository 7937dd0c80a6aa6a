//! Conformance: the real `wrangler` CLI (pinned 4.86.0 in `tools/wrangler`) against the
//! `flareops emulator` process.
//!
//! Each test runs wrangler commands with `CLOUDFLARE_API_BASE_URL` pointed at the emulator, then
//! asserts on wrangler's output AND on the emulator's state (read back through the raw API, and
//! for D1 from the SQLite file itself). Every wrangler call runs under a timeout, in a temp
//! working directory with its own `HOME`, and never leaves the machine: metrics are off, the
//! banner (and with it the npm update check) is hidden, and npm's registry points at a closed
//! local port in case an error path checks for updates anyway.
//!
//! Without node or the pinned wrangler the tests fail, unless `FLAREOPS_SKIP_WRANGLER=1` is set:
//! then they print a loud SKIPPED line to stderr and return.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tempfile::TempDir;

use crate::support::{self, TestEmulator};

/// Upper bound for one wrangler invocation (node start-up is slow on a busy 2-core runner).
const CALL_TIMEOUT: Duration = Duration::from_secs(120);

/// The pinned wrangler, or `None` (after a loud notice) when skipping is allowed.
fn wrangler_or_skip(test: &str) -> Option<PathBuf> {
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
struct Run {
    args: String,
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Run {
    fn success(self) -> Run {
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

    fn failure(self) -> Run {
        assert!(
            !self.status.success(),
            "wrangler {} should have failed\n--- stdout\n{}\n--- stderr\n{}",
            self.args,
            self.stdout,
            self.stderr
        );
        self
    }

    fn output(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    /// stdout parsed as JSON (for `--json` commands and the list commands that print JSON).
    fn json(&self) -> Value {
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
struct Wrangler<'a> {
    bin: PathBuf,
    emulator: &'a TestEmulator,
    home: TempDir,
    work: TempDir,
}

impl<'a> Wrangler<'a> {
    fn new(bin: PathBuf, emulator: &'a TestEmulator) -> Wrangler<'a> {
        Wrangler {
            bin,
            emulator,
            home: tempfile::tempdir().expect("temp HOME"),
            work: tempfile::tempdir().expect("temp working dir"),
        }
    }

    fn write(&self, name: &str, content: &str) {
        std::fs::write(self.work.path().join(name), content).expect("write wrangler input file");
    }

    fn run(&self, args: &[&str]) -> Run {
        let logs = self.home.path().join("runs");
        std::fs::create_dir_all(&logs).expect("logs dir");
        let stamp = rand::random::<u64>();
        let stdout_path = logs.join(format!("{stamp}.out"));
        let stderr_path = logs.join(format!("{stamp}.err"));
        let tmp = self.home.path().join("tmp");
        std::fs::create_dir_all(&tmp).expect("tmp dir");
        let mut command = Command::new(&self.bin);
        command
            .args(args)
            .current_dir(self.work.path())
            .stdin(Stdio::null())
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
        let started = Instant::now();
        let mut child = command.spawn().expect("start wrangler");
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for wrangler") {
                break status;
            }
            if started.elapsed() > CALL_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "wrangler {} did not finish within {:?}\n--- stdout\n{}\n--- stderr\n{}",
                    args.join(" "),
                    CALL_TIMEOUT,
                    read(&stdout_path),
                    read(&stderr_path)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
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

fn endpoint_count(stats: &Value, key: &str) -> u64 {
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
