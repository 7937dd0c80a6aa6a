//! The emulator's fault injection, observed on the wire: a raw HTTP client (reqwest) against the
//! real `flareops emulator` binary on an ephemeral loopback port, faults set by flags or through
//! `/__emulator/faults`. Every configuration is seeded.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use reqwest::blocking::{Client, Response};
use serde_json::{Value, json};

use crate::support::{TestEmulator, emulator_origin, flareops_bin, start_emulator_with_args};

fn client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client")
}

fn create_namespace(emulator: &TestEmulator, title: &str) -> String {
    let created = emulator.send(
        "POST",
        &emulator.account_path("/storage/kv/namespaces"),
        Some(json!({ "title": title })),
        &[],
    );
    assert_eq!(created["success"], json!(true), "{created}");
    created["result"]["id"]
        .as_str()
        .expect("namespace id")
        .to_string()
}

fn value_url(emulator: &TestEmulator, namespace: &str, key: &str) -> String {
    format!(
        "{}{}",
        emulator.base_url,
        emulator.account_path(&format!("/storage/kv/namespaces/{namespace}/values/{key}"))
    )
}

fn put_value(
    client: &Client,
    emulator: &TestEmulator,
    namespace: &str,
    key: &str,
    value: &str,
) -> reqwest::Result<Response> {
    client
        .put(value_url(emulator, namespace, key))
        .bearer_auth(&emulator.token)
        .body(value.to_string())
        .send()
}

/// The stored value, or `None` for a 404; panics on anything else.
fn stored_value(emulator: &TestEmulator, namespace: &str, key: &str) -> Option<String> {
    let response = client()
        .get(value_url(emulator, namespace, key))
        .bearer_auth(&emulator.token)
        .send()
        .expect("GET value");
    match response.status().as_u16() {
        200 => Some(response.text().expect("value body")),
        404 => None,
        other => panic!("GET {key}: unexpected {other}: {:?}", response.text()),
    }
}

fn create_database(emulator: &TestEmulator, name: &str) -> String {
    let created = emulator.send(
        "POST",
        &emulator.account_path("/d1/database"),
        Some(json!({ "name": name })),
        &[],
    );
    assert_eq!(created["success"], json!(true), "{created}");
    created["result"]["uuid"]
        .as_str()
        .expect("uuid")
        .to_string()
}

fn query_url(emulator: &TestEmulator, database: &str) -> String {
    format!(
        "{}{}",
        emulator.base_url,
        emulator.account_path(&format!("/d1/database/{database}/query"))
    )
}

fn d1_count(emulator: &TestEmulator, database: &str, table: &str) -> i64 {
    let answer = emulator.send(
        "POST",
        &emulator.account_path(&format!("/d1/database/{database}/query")),
        Some(json!({ "sql": format!("SELECT count(*) AS n FROM {table}") })),
        &[],
    );
    answer["result"][0]["results"][0]["n"]
        .as_i64()
        .unwrap_or_else(|| panic!("count: {answer}"))
}

/// Asserts a v4 failure envelope and returns its first error code.
fn error_code(body: &Value) -> u64 {
    assert_eq!(body["success"], json!(false), "{body}");
    assert_eq!(body["messages"], json!([]), "{body}");
    assert_eq!(body["result"], Value::Null, "{body}");
    assert!(body["errors"][0]["message"].is_string(), "{body}");
    body["errors"][0]["code"].as_u64().expect("error code")
}

/// What a client saw for one request.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Seen {
    Status(u16),
    Transport,
}

fn seen(result: reqwest::Result<Response>) -> Seen {
    match result {
        Ok(response) => {
            let status = response.status().as_u16();
            // Read the body too: a lost response could also surface here.
            match response.bytes() {
                Ok(_) => Seen::Status(status),
                Err(_) => Seen::Transport,
            }
        }
        Err(error) => {
            assert!(
                !error.is_timeout(),
                "a fault must not look like a timeout: {error}"
            );
            Seen::Transport
        }
    }
}

/// The error chain of a transport error, for messages.
fn chain(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[test]
fn injected_5xx_has_an_envelope_and_writes_nothing() {
    let emulator = TestEmulator::start();
    let namespace = create_namespace(&emulator, "five-hundreds");
    emulator.set_faults(json!({"seed": 1, "default": {"5xx_rate": 1.0}}));
    let http = client();
    let mut statuses = std::collections::BTreeSet::new();
    for index in 0..24 {
        let response = put_value(&http, &emulator, &namespace, &format!("k{index}"), "v")
            .expect("a 5xx is a response");
        let status = response.status().as_u16();
        assert!([500, 502, 503, 504].contains(&status), "{status}");
        assert!(response.headers().contains_key("cf-ray"));
        let body: Value = response.json().expect("a JSON envelope");
        assert_eq!(error_code(&body), 10002, "{body}");
        statuses.insert(status);
    }
    assert!(statuses.len() > 1, "the status varies: {statuses:?}");
    let report = emulator.clear_faults();
    assert_eq!(report["injected"]["5xx"], json!(24), "{report}");
    for index in 0..24 {
        assert_eq!(
            stored_value(&emulator, &namespace, &format!("k{index}")),
            None,
            "a 5xx request is not processed"
        );
    }
}

#[test]
fn injected_429_has_retry_after_and_writes_nothing() {
    let emulator = TestEmulator::start();
    let namespace = create_namespace(&emulator, "too-many");
    emulator.set_faults(json!({"seed": 2, "default": {"429_rate": 1.0, "retry_after": 7}}));
    let response = put_value(&client(), &emulator, &namespace, "k", "v").expect("a response");
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "7");
    let body: Value = response.json().expect("a JSON envelope");
    assert_eq!(error_code(&body), 971, "{body}");
    assert_eq!(
        body["errors"][0]["message"],
        json!("Please wait and consider throttling your request speed")
    );
    assert_eq!(emulator.clear_faults()["injected"]["429"], json!(1));
    assert_eq!(stored_value(&emulator, &namespace, "k"), None);
}

#[test]
fn reset_is_a_transport_error_on_send_and_nothing_is_written() {
    let emulator = TestEmulator::start();
    let namespace = create_namespace(&emulator, "resets");
    let database = create_database(&emulator, "resets");
    emulator.send(
        "POST",
        &emulator.account_path(&format!("/d1/database/{database}/query")),
        Some(json!({"sql": "CREATE TABLE t (v TEXT)"})),
        &[],
    );
    emulator.set_faults(json!({"seed": 3, "default": {"reset_rate": 1.0}}));
    let http = client();
    let error = put_value(&http, &emulator, &namespace, "k", "v")
        .expect_err("a reset connection gives no response");
    assert!(!error.is_timeout() && error.status().is_none(), "{error:?}");
    assert!(
        error.is_request(),
        "reqwest reports it from send(): {}",
        chain(&error)
    );
    let error = http
        .post(query_url(&emulator, &database))
        .bearer_auth(&emulator.token)
        .json(&json!({"sql": "INSERT INTO t VALUES ('x')"}))
        .send()
        .expect_err("reset");
    assert!(error.is_request(), "{}", chain(&error));
    let report = emulator.clear_faults();
    assert_eq!(report["injected"]["reset"], json!(2), "{report}");
    assert_eq!(stored_value(&emulator, &namespace, "k"), None);
    assert_eq!(d1_count(&emulator, &database, "t"), 0);
    // The same client works again once the faults are gone (a new connection).
    let response = put_value(&http, &emulator, &namespace, "k", "v").expect("no fault");
    assert_eq!(response.status(), 200);
}

#[test]
fn lost_response_is_a_transport_error_but_the_write_happened() {
    let emulator = TestEmulator::start();
    let namespace = create_namespace(&emulator, "lost");
    let database = create_database(&emulator, "lost");
    emulator.send(
        "POST",
        &emulator.account_path(&format!("/d1/database/{database}/query")),
        Some(json!({"sql": "CREATE TABLE t (v TEXT)"})),
        &[],
    );
    emulator.set_faults(json!({"seed": 4, "default": {"lost_response_rate": 1.0}}));
    let http = client();
    let error = put_value(&http, &emulator, &namespace, "k", "committed")
        .expect_err("the response is lost");
    assert!(
        error.is_request() && error.status().is_none(),
        "{}",
        chain(&error)
    );
    let error = http
        .post(query_url(&emulator, &database))
        .bearer_auth(&emulator.token)
        .json(&json!({"sql": "INSERT INTO t VALUES ('x')"}))
        .send()
        .expect_err("the response is lost");
    assert!(error.is_request(), "{}", chain(&error));
    let report = emulator.clear_faults();
    assert_eq!(report["injected"]["lost_response"], json!(2), "{report}");
    assert_eq!(
        stored_value(&emulator, &namespace, "k").as_deref(),
        Some("committed")
    );
    assert_eq!(d1_count(&emulator, &database, "t"), 1);
}

#[test]
fn rate_limit_kicks_in_at_n_and_frees_after_the_window() {
    let emulator = start_emulator_with_args(&["--rate-limit", "3/2s"]);
    let http = client();
    let accounts = format!("{}/accounts", emulator.base_url);
    let started = Instant::now();
    for _ in 0..3 {
        let response = http
            .get(&accounts)
            .bearer_auth(&emulator.token)
            .send()
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let limited = http
        .get(&accounts)
        .bearer_auth(&emulator.token)
        .send()
        .unwrap();
    assert_eq!(limited.status(), 429);
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    let body: Value = limited.json().unwrap();
    assert_eq!(error_code(&body), 971);
    // A request refused for its token is not counted nor limited; the emulator's own endpoints
    // are not limited either.
    let refused = http.get(&accounts).bearer_auth("wrong").send().unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(emulator.faults()["injected"]["rate_limited"], json!(1));
    // The window frees two seconds after the first request.
    std::thread::sleep(Duration::from_secs(retry_after));
    let waited = started.elapsed();
    let response = http
        .get(&accounts)
        .bearer_auth(&emulator.token)
        .send()
        .unwrap();
    assert_eq!(response.status(), 200, "after {waited:?}");
    let report = emulator.faults();
    assert_eq!(
        report["config"]["rate_limit"],
        json!({"requests": 3, "window_secs": 2})
    );
}

/// The outcome of `count` GETs, one at a time.
fn sequence(emulator: &TestEmulator, count: usize) -> Vec<Seen> {
    let http = client();
    let url = format!("{}/accounts", emulator.base_url);
    (0..count)
        .map(|_| seen(http.get(&url).bearer_auth(&emulator.token).send()))
        .collect()
}

fn tally(outcomes: &[Seen]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for outcome in outcomes {
        *counts.entry(format!("{outcome:?}")).or_insert(0) += 1;
    }
    counts
}

#[test]
fn the_seed_reproduces_the_same_fault_sequence() {
    // Through the flags of two separate processes...
    let flags = ["--fault-seed", "42", "--fault-rate", "40%"];
    let first = sequence(&start_emulator_with_args(&flags), 80);
    let second = sequence(&start_emulator_with_args(&flags), 80);
    assert_eq!(first, second);
    let counts = tally(&first);
    assert!(counts.len() >= 4, "several kinds show up: {counts:?}");
    // ...and through the control endpoint, which reseeds on every PUT.
    let emulator = TestEmulator::start();
    let config = json!({"seed": 42, "default": {
        "5xx_rate": 0.1, "429_rate": 0.1, "reset_rate": 0.1, "lost_response_rate": 0.1}});
    emulator.set_faults(config.clone());
    let third = sequence(&emulator, 80);
    emulator.set_faults(config);
    assert_eq!(sequence(&emulator, 80), third);
    assert_eq!(third, first, "flags and JSON describe the same faults");
    emulator.set_faults(json!({"seed": 43, "default": {"5xx_rate": 0.1,
        "429_rate": 0.1, "reset_rate": 0.1, "lost_response_rate": 0.1}}));
    assert_ne!(
        sequence(&emulator, 80),
        first,
        "another seed, another sequence"
    );
}

#[test]
fn per_endpoint_rules_match_only_their_endpoint() {
    let emulator = TestEmulator::start();
    let namespace = create_namespace(&emulator, "rules");
    let database = create_database(&emulator, "rules");
    emulator.set_faults(json!({
        "seed": 5,
        "rules": [
            {"method": "PUT", "path": "/accounts/*/storage/kv/namespaces/*/values",
             "faults": {"5xx_rate": 1.0}},
            {"path": "/accounts/*/d1/database/*/query", "faults": {"429_rate": 1.0}}
        ]
    }));
    let http = client();
    let put = put_value(&http, &emulator, &namespace, "k", "v").unwrap();
    assert!(put.status().is_server_error(), "{}", put.status());
    assert_eq!(
        stored_value(&emulator, &namespace, "k"),
        None,
        "GET is not faulted"
    );
    let query = http
        .post(query_url(&emulator, &database))
        .bearer_auth(&emulator.token)
        .json(&json!({"sql": "SELECT 1"}))
        .send()
        .unwrap();
    assert_eq!(query.status(), 429);
    let other = emulator.get(&emulator.account_path("/storage/kv/namespaces"));
    assert_eq!(other["success"], json!(true), "{other}");
    let database_info = emulator.get(&emulator.account_path(&format!("/d1/database/{database}")));
    assert_eq!(
        database_info["success"],
        json!(true),
        "a parent path is not matched"
    );
    let injected = emulator.clear_faults()["injected"].clone();
    assert_eq!(
        (injected["5xx"].clone(), injected["429"].clone()),
        (json!(1), json!(1))
    );
}

#[test]
fn fault_endpoint_needs_the_token_and_explains_bad_bodies() {
    let emulator = TestEmulator::start();
    let http = client();
    let url = format!("{}/__emulator/faults", emulator_origin(&emulator));
    for method in ["GET", "PUT", "POST", "DELETE"] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let anonymous = http
            .request(method.clone(), &url)
            .body("{}")
            .send()
            .unwrap();
        assert_eq!(anonymous.status(), 400, "{method}");
        assert_eq!(error_code(&anonymous.json().unwrap()), 9106);
        let wrong = http
            .request(method.clone(), &url)
            .bearer_auth("not-the-token")
            .body("{}")
            .send()
            .unwrap();
        assert_eq!(wrong.status(), 401, "{method}");
        assert!(
            !wrong.headers().contains_key("cf-ray"),
            "not a Cloudflare path"
        );
    }
    let initial = emulator.faults();
    assert_eq!(
        initial["config"]["default"]["5xx_rate"],
        json!(0.0),
        "{initial}"
    );
    assert_eq!(initial["config"]["rate_limit"], Value::Null);
    assert!(initial["config"]["seed"].is_u64(), "{initial}");
    assert_eq!(initial["injected"]["reset"], json!(0));

    for (body, expected) in [
        ("", "body is empty"),
        ("{not json", "malformed fault configuration"),
        (
            r#"{"default": {"5xx_rate": 2}}"#,
            "default: 5xx_rate must be between 0.0 and 1.0, got 2",
        ),
        (r#"{"default": {"latency": 5}}"#, "unknown field `latency`"),
        (r#"{"rules": [{"path": "no-slash"}]}"#, "rules[0].path"),
    ] {
        let response = http
            .put(&url)
            .bearer_auth(&emulator.token)
            .body(body)
            .send()
            .unwrap();
        assert_eq!(response.status(), 400, "{body}");
        let answer: Value = response.json().unwrap();
        assert_eq!(error_code(&answer), 1102);
        let message = answer["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains(expected), "{body}: {message}");
    }
    assert_eq!(
        emulator.faults()["config"],
        initial["config"],
        "a bad body changes nothing"
    );

    // POST is a synonym of PUT; DELETE turns everything off again.
    let response = http
        .post(&url)
        .bearer_auth(&emulator.token)
        .json(&json!({"seed": 8, "default": {"429_rate": 1.0}}))
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(emulator.faults()["config"]["seed"], json!(8));
    let accounts = format!("{}/accounts", emulator.base_url);
    let faulted = http
        .get(&accounts)
        .bearer_auth(&emulator.token)
        .send()
        .unwrap();
    assert_eq!(faulted.status(), 429);
    // The emulator's own endpoints are never faulted.
    assert_eq!(emulator.stats()["faults"]["429"], json!(1));
    let cleared = emulator.clear_faults();
    assert_eq!(cleared["config"]["default"]["429_rate"], json!(0.0));
    assert_eq!(cleared["injected"]["429"], json!(1), "counts are kept");
    let passed = http
        .get(&accounts)
        .bearer_auth(&emulator.token)
        .send()
        .unwrap();
    assert_eq!(passed.status(), 200);
}

#[test]
fn every_api_response_carries_a_unique_cf_ray() {
    let emulator = TestEmulator::start();
    let http = client();
    let mut rays = std::collections::HashSet::new();
    let requests = [
        ("/accounts", Some(emulator.token.as_str()), 200),
        ("/accounts", Some(emulator.token.as_str()), 200),
        ("/no/such/route", Some(emulator.token.as_str()), 404),
        ("/accounts", Some("wrong-token"), 401),
        ("/accounts", None, 400),
    ];
    for (path, token, status) in requests {
        let mut request = http.get(format!("{}{path}", emulator.base_url));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().unwrap();
        assert_eq!(response.status(), status, "{path}");
        let ray = response.headers()["cf-ray"].to_str().unwrap().to_string();
        let (hex, colo) = ray.split_once('-').expect("HEX-COLO");
        assert_eq!(hex.len(), 16, "{ray}");
        assert!(
            hex.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        assert!(
            colo.len() == 3 && colo.bytes().all(|b| b.is_ascii_uppercase()),
            "{ray}"
        );
        assert!(rays.insert(ray), "unique per request");
    }
}

#[test]
fn requests_without_the_token_are_refused_and_never_faulted() {
    let emulator = start_emulator_with_args(&["--fault-seed", "6", "--fault-5xx-rate", "1"]);
    assert!(
        emulator.base_url.starts_with("http://127.0.0.1:"),
        "{}",
        emulator.base_url
    );
    let http = client();
    let accounts = format!("{}/accounts", emulator.base_url);
    let anonymous = http.get(&accounts).send().unwrap();
    assert_eq!(anonymous.status(), 400);
    assert_eq!(error_code(&anonymous.json().unwrap()), 9106);
    let wrong = http.get(&accounts).bearer_auth("wrong").send().unwrap();
    assert_eq!(wrong.status(), 401);
    let other_account = http
        .get(format!(
            "{}/accounts/{}/d1/database",
            emulator.base_url,
            "f".repeat(32)
        ))
        .bearer_auth(&emulator.token)
        .send()
        .unwrap();
    assert_eq!(other_account.status(), 403);
    let faulted = http
        .get(&accounts)
        .bearer_auth(&emulator.token)
        .send()
        .unwrap();
    assert!(faulted.status().is_server_error());
    let injected = emulator.faults()["injected"].clone();
    assert_eq!(injected["5xx"], json!(1), "{injected}");
    assert_eq!(injected["requests"], json!(1), "{injected}");
}

#[test]
fn flags_work_via_the_real_binary() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("faults.json");
    std::fs::write(
        &file,
        r#"{"rules": [{"method": "GET", "path": "/user/tokens/verify", "faults": {}}]}"#,
    )
    .unwrap();
    let emulator = start_emulator_with_args(&[
        "--faults",
        file.to_str().unwrap(),
        "--fault-seed",
        "3",
        "--fault-latency-ms",
        "150",
        "--fault-429-rate",
        "1",
        "--fault-retry-after",
        "4",
    ]);
    let http = client();
    let response = http
        .get(format!("{}/accounts", emulator.base_url))
        .bearer_auth(&emulator.token)
        .send()
        .unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "4");
    // The file's rule shields token verification from the default faults.
    let verify = emulator.get("/user/tokens/verify");
    assert_eq!(verify["success"], json!(true), "{verify}");
    let report = emulator.faults();
    assert_eq!(report["config"]["seed"], json!(3));
    // The latency is counted where it is slept (not timed here: a busy
    // machine makes any request slow).
    assert_eq!(report["config"]["default"]["latency_ms"], json!(150));
    assert_eq!(report["injected"]["latency"], json!(1));

    // A bad flag stops the emulator before it listens, naming the problem.
    let output = std::process::Command::new(flareops_bin())
        .args(["emulator", "--listen", "127.0.0.1:0", "--token", "t"])
        .args(["--fault-5xx-rate", "0.6", "--fault-reset-rate", "0.6"])
        .arg("--state")
        .arg(dir.path().join("state"))
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("must not exceed 1.0"), "{stderr}");

    let help = std::process::Command::new(flareops_bin())
        .args(["emulator", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--faults",
        "--fault-seed",
        "--fault-rate",
        "--fault-latency-ms",
        "--fault-jitter-ms",
        "--fault-5xx-rate",
        "--fault-429-rate",
        "--fault-retry-after",
        "--fault-reset-rate",
        "--fault-lost-response-rate",
        "--rate-limit",
    ] {
        assert!(help.contains(flag), "{flag} in --help:\n{help}");
    }
}

/// 20% faults of every kind on KV writes with unique keys: every write answered 200 is stored,
/// every 5xx or 429 is not, and of the transport errors exactly the lost responses are stored.
#[test]
fn twenty_percent_faults_never_corrupt_or_invent_writes() {
    let emulator = TestEmulator::start();
    let namespace = create_namespace(&emulator, "chaos");
    emulator.set_faults(
        json!({"seed": 20, "default": {"5xx_rate": 0.05, "429_rate": 0.05,
            "reset_rate": 0.05, "lost_response_rate": 0.05}}),
    );
    let http = client();
    let outcomes: Vec<(String, Seen)> = (0..300)
        .map(|index| {
            let key = format!("key-{index:03}");
            let outcome = seen(put_value(&http, &emulator, &namespace, &key, &key));
            (key, outcome)
        })
        .collect();
    let report = emulator.clear_faults();
    let injected = &report["injected"];
    let mut stored_after_transport_error = 0;
    for (key, outcome) in &outcomes {
        let stored = stored_value(&emulator, &namespace, key);
        match outcome {
            Seen::Status(200) => assert_eq!(stored.as_deref(), Some(key.as_str())),
            Seen::Status(status) => {
                assert!(*status == 429 || (500..=504).contains(status), "{status}");
                assert_eq!(stored, None, "{key} answered {status} was not written");
            }
            Seen::Transport => {
                if let Some(value) = stored {
                    assert_eq!(&value, key);
                    stored_after_transport_error += 1;
                }
            }
        }
    }
    let transport = outcomes
        .iter()
        .filter(|(_, outcome)| *outcome == Seen::Transport)
        .count() as u64;
    assert_eq!(
        stored_after_transport_error,
        injected["lost_response"].as_u64().unwrap(),
        "{injected}"
    );
    assert_eq!(
        transport,
        injected["reset"].as_u64().unwrap() + injected["lost_response"].as_u64().unwrap()
    );
    for kind in ["5xx", "429", "reset", "lost_response"] {
        assert!(injected[kind].as_u64().unwrap() > 0, "{kind}: {injected}");
    }
}
