//! Test support: an emulator process on an ephemeral port, temp projects,
//! and the `flareops` command wired to them.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command as StdCommand, Stdio};
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;

/// The path of the `flareops` binary under test.
pub fn flareops_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_flareops"))
}

/// A `flareops emulator` process with its own state directory.
pub struct TestEmulator {
    pub base_url: String,
    pub token: String,
    pub account_id: String,
    /// Zones passed with `--zone` (kept across restarts).
    zones: Vec<String>,
    /// Where the emulator's stderr goes, logging at trace level.
    log: Option<PathBuf>,
    state: TempDir,
    child: Option<Child>,
}

impl TestEmulator {
    pub fn start() -> TestEmulator {
        TestEmulator::start_with_zones(&[])
    }

    /// Like [`TestEmulator::start`], with these zones in the account (`--zone NAME`).
    pub fn start_with_zones(zones: &[&str]) -> TestEmulator {
        let state = tempfile::tempdir().expect("temp state dir");
        let mut emulator = TestEmulator {
            base_url: String::new(),
            token: format!("test-token-{}", std::process::id()),
            account_id: "0f1e2d3c4b5a69788796a5b4c3d2e1f0".to_string(),
            zones: zones.iter().map(|zone| zone.to_string()).collect(),
            log: None,
            state,
            child: None,
        };
        emulator.spawn();
        emulator
    }

    /// Like [`TestEmulator::start_with_zones`], with this token, logging
    /// every request at trace level into `log`.
    pub fn start_logged(zones: &[&str], token: &str, log: &Path) -> TestEmulator {
        let state = tempfile::tempdir().expect("temp state dir");
        let mut emulator = TestEmulator {
            base_url: String::new(),
            token: token.to_string(),
            account_id: "0f1e2d3c4b5a69788796a5b4c3d2e1f0".to_string(),
            zones: zones.iter().map(|zone| zone.to_string()).collect(),
            log: Some(log.to_path_buf()),
            state,
            child: None,
        };
        emulator.spawn();
        emulator
    }

    pub fn state_dir(&self) -> &Path {
        self.state.path()
    }

    fn spawn(&mut self) {
        let mut command = StdCommand::new(flareops_bin());
        command
            .args(["emulator", "--listen", "127.0.0.1:0", "--state"])
            .arg(self.state.path())
            .args(["--token", &self.token, "--account-id", &self.account_id])
            .args(self.zones.iter().flat_map(|zone| ["--zone", zone.as_str()]))
            .env_remove("CLOUDFLARE_API_TOKEN")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        match &self.log {
            Some(path) => {
                let file = std::fs::File::create(path).expect("emulator log file");
                command.env("RUST_LOG", "trace").stderr(file);
            }
            None => {
                command.stderr(Stdio::inherit());
            }
        }
        let mut child = command.spawn().expect("start flareops emulator");
        let stdout = child.stdout.take().expect("emulator stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the emulator's first line");
        let url = line
            .trim()
            .rsplit(' ')
            .next()
            .filter(|u| u.starts_with("http://"))
            .unwrap_or_else(|| panic!("unexpected emulator banner: {line:?}"))
            .to_string();
        self.base_url = url;
        self.child = Some(child);
    }

    /// Stops the process gracefully (SIGTERM) and starts a new one on the
    /// same state directory.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = StdCommand::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            for _ in 0..100 {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// With `FLAREOPS_COVERAGE_DIR` set, writes the endpoints this
    /// emulator served to `DIR/<test name>-<n>.json`, for
    /// `tools/emulator-coverage.py` (which fills docs/emulator.md's
    /// coverage column). Nothing otherwise.
    fn record_coverage(&self) {
        let Some(dir) = std::env::var_os("FLAREOPS_COVERAGE_DIR") else {
            return;
        };
        if self.child.is_none() {
            return;
        }
        let Ok(stats) = Self::http()
            .get(format!("{}/__emulator/stats", self.origin()))
            .bearer_auth(&self.token)
            .send()
            .and_then(|r| r.text())
        else {
            return;
        };
        let test = std::thread::current()
            .name()
            .unwrap_or("unnamed")
            .replace("::", ".");
        let dir = PathBuf::from(dir);
        let _ = std::fs::create_dir_all(&dir);
        for n in 0.. {
            let path = dir.join(format!("{test}-{n}.json"));
            if !path.exists() {
                let _ = std::fs::write(path, &stats);
                break;
            }
        }
    }

    fn http() -> reqwest::blocking::Client {
        reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("http client")
    }

    fn origin(&self) -> String {
        self.base_url.trim_end_matches("/client/v4").to_string()
    }

    /// The request counters.
    pub fn stats(&self) -> Value {
        Self::http()
            .get(format!("{}/__emulator/stats", self.origin()))
            .bearer_auth(&self.token)
            .send()
            .and_then(|r| r.json())
            .expect("GET /__emulator/stats")
    }

    pub fn stats_total(&self) -> u64 {
        self.stats()["total"].as_u64().expect("stats.total")
    }

    /// How many requests `endpoint` (`"POST /pages/assets/upload"`) served.
    pub fn endpoint_count(&self, endpoint: &str) -> u64 {
        self.stats()["endpoints"][endpoint].as_u64().unwrap_or(0)
    }

    /// A raw API GET (`path` under `/client/v4`), decoded as JSON.
    pub fn get(&self, path: &str) -> Value {
        Self::http()
            .get(format!("{}{}", self.base_url, path))
            .bearer_auth(&self.token)
            .send()
            .and_then(|r| r.json())
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// A raw API call with a JSON body.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Value {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = Self::http()
            .request(method, format!("{}{}", self.base_url, path))
            .bearer_auth(&self.token);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        request
            .send()
            .and_then(|r| r.json())
            .unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// A raw API request with a byte body of `content_type` (an R2
    /// object), decoded as JSON.
    pub fn send_bytes(&self, method: &str, path: &str, body: Vec<u8>, content_type: &str) -> Value {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        Self::http()
            .request(method, format!("{}{}", self.base_url, path))
            .bearer_auth(&self.token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .and_then(|r| r.json())
            .unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// `method /__emulator/faults` (with `body`); asserts success and
    /// returns the fault report (`{"config", "injected"}`).
    fn faults_request(&self, method: reqwest::Method, body: Option<&Value>) -> Value {
        let mut request = Self::http()
            .request(
                method.clone(),
                format!("{}/__emulator/faults", self.origin()),
            )
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().expect("/__emulator/faults");
        let status = response.status();
        let text = response.text().expect("fault report");
        assert_eq!(status, 200, "{method} /__emulator/faults {body:?}: {text}");
        serde_json::from_str(&text).expect("fault report JSON")
    }

    /// Installs a fault configuration (`PUT /__emulator/faults`).
    pub fn set_faults(&self, body: Value) -> Value {
        self.faults_request(reqwest::Method::PUT, Some(&body))
    }

    /// The fault configuration and the counts of injected faults.
    pub fn faults(&self) -> Value {
        self.faults_request(reqwest::Method::GET, None)
    }

    /// Turns every fault off.
    pub fn clear_faults(&self) -> Value {
        self.faults_request(reqwest::Method::DELETE, None)
    }

    /// `/accounts/{account_id}` + rest.
    pub fn account_path(&self, rest: &str) -> String {
        format!("/accounts/{}{}", self.account_id, rest)
    }
}

impl Drop for TestEmulator {
    fn drop(&mut self) {
        self.record_coverage();
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A new temp project holding `files` (paths relative to its root).
pub fn project(files: &[(&str, &str)]) -> TempDir {
    let root = tempfile::tempdir().expect("temp project");
    for (path, content) in files {
        write(root.path(), path, content);
    }
    root
}

/// Writes (or overwrites) one file of a project.
pub fn write(root: &Path, path: &str, content: &str) {
    let full = root.join(path);
    if let Some(parent) = full.parent() {
        std::fs::create_dir_all(parent).expect("create project dir");
    }
    std::fs::write(&full, content).expect("write project file");
}

/// The `flareops` binary run in `root`, pointed at `emulator`.
pub fn flareops(root: &Path, emulator: &TestEmulator) -> assert_cmd::Command {
    let mut command = assert_cmd::Command::new(flareops_bin());
    command
        .current_dir(root)
        .env("CLOUDFLARE_API_BASE_URL", &emulator.base_url)
        .env("CLOUDFLARE_API_TOKEN", &emulator.token)
        .env("CLOUDFLARE_ACCOUNT_ID", &emulator.account_id)
        .env("NO_COLOR", "1")
        .env(BUILD_CACHE_VAR, shared_build_cache())
        .env_remove("RUST_LOG")
        .timeout(Duration::from_secs(120));
    command
}

/// The variable naming flareops' build cache.
pub const BUILD_CACHE_VAR: &str = "FLAREOPS_BUILD_CACHE";

/// One build cache for every test's copy of the example: the copies have
/// the same inputs, so the example's worker is built (npm, esbuild) once
/// per run of the tests, not once per copy. Tests of the build itself use
/// their own.
pub fn shared_build_cache() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("build-cache")
}

/// The pinned wrangler, or `None` when node or the package is missing.
pub fn wrangler_bin() -> Option<PathBuf> {
    let bin =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/wrangler/node_modules/.bin/wrangler");
    let node = StdCommand::new("node")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    (node && bin.exists()).then_some(bin)
}

/// Like [`TestEmulator::start`], with `extra` arguments for `flareops emulator` (fault flags,
/// `--rate-limit`…). [`TestEmulator::restart`] starts it again without them.
pub fn start_emulator_with_args(extra: &[&str]) -> TestEmulator {
    let state = tempfile::tempdir().expect("temp state dir");
    let token = format!("test-token-{}", std::process::id());
    let account_id = "0f1e2d3c4b5a69788796a5b4c3d2e1f0".to_string();
    let mut child = StdCommand::new(flareops_bin())
        .args(["emulator", "--listen", "127.0.0.1:0", "--state"])
        .arg(state.path())
        .args(["--token", &token, "--account-id", &account_id])
        .args(extra)
        .env_remove("CLOUDFLARE_API_TOKEN")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start flareops emulator");
    let stdout = child.stdout.take().expect("emulator stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read the emulator's first line");
    let base_url = line
        .trim()
        .rsplit(' ')
        .next()
        .filter(|u| u.starts_with("http://"))
        .unwrap_or_else(|| {
            let _ = child.kill();
            panic!("unexpected emulator banner with {extra:?}: {line:?}")
        })
        .to_string();
    TestEmulator {
        base_url,
        token,
        account_id,
        zones: Vec::new(),
        log: None,
        state,
        child: Some(child),
    }
}

/// `http://HOST:PORT`, where the emulator's own endpoints (`/__emulator/…`) live.
pub fn emulator_origin(emulator: &TestEmulator) -> String {
    emulator.origin()
}

/// The sorted `field` of every item of a list answer.
pub fn names(list: &Value, field: &str) -> Vec<String> {
    let mut names: Vec<String> = list
        .as_array()
        .unwrap_or_else(|| panic!("a list: {list}"))
        .iter()
        .map(|item| item[field].as_str().expect("a name").to_string())
        .collect();
    names.sort();
    names
}

/// The names of everything an account holds, by kind, each list sorted:
/// what trials compare with the declared resources (a duplicate shows).
#[derive(Debug, PartialEq, Eq)]
pub struct AccountNames {
    pub kv_namespaces: Vec<String>,
    pub d1_databases: Vec<String>,
    pub r2_buckets: Vec<String>,
    pub worker_scripts: Vec<String>,
    /// The worker routes of `zone`.
    pub routes: Vec<String>,
}

impl AccountNames {
    /// Expected names (given in any order).
    pub fn of(kv: &[&str], d1: &[&str], r2: &[&str], scripts: &[&str], routes: &[&str]) -> Self {
        let sorted = |items: &[&str]| {
            let mut items: Vec<String> = items.iter().map(|s| s.to_string()).collect();
            items.sort();
            items
        };
        AccountNames {
            kv_namespaces: sorted(kv),
            d1_databases: sorted(d1),
            r2_buckets: sorted(r2),
            worker_scripts: sorted(scripts),
            routes: sorted(routes),
        }
    }
}

impl TestEmulator {
    /// What the account holds, read through the raw API.
    pub fn account_names(&self, zone: &str) -> AccountNames {
        let list = |rest: &str| self.get(&self.account_path(rest));
        let zone = self.get(&format!("/zones?name={zone}"));
        let zone = zone["result"][0]["id"]
            .as_str()
            .expect("zone id")
            .to_string();
        AccountNames {
            kv_namespaces: names(
                &list("/storage/kv/namespaces?per_page=100")["result"],
                "title",
            ),
            d1_databases: names(&list("/d1/database?per_page=100")["result"], "name"),
            r2_buckets: names(&list("/r2/buckets")["result"]["buckets"], "name"),
            worker_scripts: names(&list("/workers/scripts")["result"], "id"),
            routes: names(
                &self.get(&format!("/zones/{zone}/workers/routes"))["result"],
                "pattern",
            ),
        }
    }
}

/// Copies the directory `from` (recursively) to `to`, as a fresh clone
/// would have it: without installed packages (`node_modules`) or build
/// outputs (`dist`).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            if matches!(entry.file_name().to_str(), Some("node_modules" | "dist")) {
                continue;
            }
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}

/// Runs `sql` (with `params`) in the D1 database named `name`; the first
/// statement's rows.
pub fn d1_rows(emulator: &TestEmulator, name: &str, sql: &str, params: Value) -> Vec<Value> {
    let list = emulator.get(&emulator.account_path("/d1/database?per_page=100"));
    let uuid = list["result"]
        .as_array()
        .expect("d1 list")
        .iter()
        .find(|db| db["name"] == name)
        .and_then(|db| db["uuid"].as_str())
        .unwrap_or_else(|| panic!("no D1 database {name}: {list}"))
        .to_string();
    let answer = emulator.send(
        "POST",
        &emulator.account_path(&format!("/d1/database/{uuid}/query")),
        Some(serde_json::json!({ "sql": sql, "params": params })),
        &[],
    );
    assert_eq!(answer["success"], true, "{answer}");
    answer["result"][0]["results"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Runs git in `root` as a test author; answers its trimmed stdout.
pub fn git(root: &Path, args: &[&str]) -> String {
    let output = StdCommand::new("git")
        .args(args)
        .current_dir(root)
        .env("GIT_AUTHOR_NAME", "test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .output()
        .expect("run git");
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// Runs flareops in `root` against `emulator`; answers its exit code and
/// its stdout followed by its stderr.
pub fn run_flareops(root: &Path, emulator: &TestEmulator, args: &[&str]) -> (i32, String) {
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

/// Every queue of the emulator's account, as the API lists them.
pub fn queues(emulator: &TestEmulator) -> Vec<Value> {
    let answer = emulator.get(&emulator.account_path("/queues"));
    assert_eq!(answer["success"], true, "{answer}");
    answer["result"].as_array().expect("queues").clone()
}

/// The queue named `name`.
pub fn queue(emulator: &TestEmulator, name: &str) -> Value {
    queues(emulator)
        .into_iter()
        .find(|q| q["queue_name"] == name)
        .unwrap_or_else(|| panic!("no queue {name}"))
}

/// `flareops drift --env staging --format json`: its exit code and report.
pub fn drift_report(root: &Path, emulator: &TestEmulator) -> (Option<i32>, Value) {
    let output = flareops(root, emulator)
        .args(["drift", "--env", "staging", "--format", "json"])
        .output()
        .expect("run flareops");
    let report = serde_json::from_slice(&output.stdout).expect("the drift report");
    (output.status.code(), report)
}

/// Asserts that `drift` reports `field` of `address` changed outside git
/// (exit 2).
#[track_caller]
pub fn assert_changed_outside_git(
    root: &Path,
    emulator: &TestEmulator,
    address: &str,
    field: &str,
) {
    let (code, report) = drift_report(root, emulator);
    assert_eq!(code, Some(2), "{report}");
    let changed = report["changed_outside_git"].to_string();
    assert!(
        changed.contains(address) && changed.contains(field),
        "{address} {field} changed outside git: {report}"
    );
}

/// Asserts that a plan of staging finds nothing to change (exit 0 with
/// `--detailed-exitcode`).
#[track_caller]
pub fn assert_no_changes(root: &Path, emulator: &TestEmulator) {
    let (code, out) = run_flareops(
        root,
        emulator,
        &["plan", "--env", "staging", "--detailed-exitcode"],
    );
    assert_eq!(code, 0, "{out}");
}

/// Asserts that `drift` on staging reports `address` (exit 2), then heals
/// it (exit 0); answers the heal's output.
#[track_caller]
pub fn assert_drift_healed(root: &Path, emulator: &TestEmulator, address: &str) -> String {
    let (code, out) = run_flareops(root, emulator, &["drift", "--env", "staging"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains(address), "{address} drifted: {out}");
    let (code, out) = run_flareops(
        root,
        emulator,
        &["drift", "--env", "staging", "--heal", "--yes"],
    );
    assert_eq!(code, 0, "{out}");
    out
}
