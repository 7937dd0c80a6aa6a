//! The emulator under load, without fault injection: 32 concurrent raw HTTP clients send 10,000
//! mixed KV and D1 requests to the real binary. No request may fail and no write may be lost:
//! at the end the keys and rows stored are exactly the writes acknowledged, each with its value.
//! Figures (requests/s, p50/p99 latency) are printed to stderr (`-- --nocapture`), not asserted:
//! speeds belong in benchmarks.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use serde_json::{Value, json};

use crate::support::TestEmulator;

const CLIENTS: usize = 32;
const TOTAL_REQUESTS: usize = 10_000;
const BULK_ITEMS: usize = 10;

/// Where one client sends its requests.
struct Target {
    base: String,
    token: String,
    namespace: String,
    database: String,
}

impl Target {
    fn kv(&self, rest: &str) -> String {
        format!(
            "{}/storage/kv/namespaces/{}{rest}",
            self.base, self.namespace
        )
    }

    fn query(&self) -> String {
        format!("{}/d1/database/{}/query", self.base, self.database)
    }
}

/// What one client wrote (and got acknowledged), and how its requests went.
#[derive(Default)]
struct Outcome {
    kv: HashMap<String, String>,
    rows: HashMap<i64, String>,
    /// Per request: its kind and how long it took.
    latencies: Vec<(&'static str, Duration)>,
    errors: Vec<String>,
}

fn expect_success(body: &Value, what: &str) -> Result<(), String> {
    if body["success"] == json!(true) {
        Ok(())
    } else {
        Err(format!("{what}: {body}"))
    }
}

/// One request of the mix; `index` picks its kind. Reads check what this client wrote before.
fn one_request(
    http: &Client,
    target: &Target,
    client: usize,
    index: usize,
    outcome: &mut Outcome,
) -> Result<(), String> {
    let auth = |request: reqwest::blocking::RequestBuilder| request.bearer_auth(&target.token);
    let send = |request: reqwest::blocking::RequestBuilder| {
        let response = auth(request).send().map_err(|error| error.to_string())?;
        let status = response.status();
        let text = response.text().map_err(|error| error.to_string())?;
        if status != 200 {
            return Err(format!("status {status}: {text}"));
        }
        Ok(text)
    };
    let json_of = |text: String| -> Result<Value, String> {
        serde_json::from_str(&text).map_err(|error| format!("{error}: {text}"))
    };
    let own_key = |n: usize| format!("c{client:02}-k{n:04}");
    // The earliest single-key write of this client, if any (index 0 is always a write).
    let written_before = |outcome: &Outcome| {
        let key = own_key(index - index % 10);
        outcome.kv.get(&key).map(|value| (key, value.clone()))
    };
    match index % 10 {
        0..=2 => {
            let key = own_key(index);
            let value = format!("value of {key} #{}", index * 7919);
            send(
                http.put(target.kv(&format!("/values/{key}")))
                    .body(value.clone()),
            )?;
            outcome.kv.insert(key, value);
        }
        3 | 4 => {
            let (key, expected) = written_before(outcome).ok_or("no earlier write")?;
            let got = send(http.get(target.kv(&format!("/values/{key}"))))?;
            if got != expected {
                return Err(format!("read {key}: {got:?}, wrote {expected:?}"));
            }
        }
        5 => {
            let prefix = format!("c{client:02}-");
            let body = json_of(send(
                http.get(target.kv(&format!("/keys?prefix={prefix}&limit=1000"))),
            )?)?;
            expect_success(&body, "list keys")?;
            let listed = body["result"].as_array().map_or(0, Vec::len);
            if listed != outcome.kv.len() {
                return Err(format!("listed {listed} keys, wrote {}", outcome.kv.len()));
            }
        }
        6 => {
            let items: Vec<Value> = (0..BULK_ITEMS)
                .map(|item| {
                    let key = format!("c{client:02}-b{index:04}-{item}");
                    json!({ "key": key, "value": format!("bulk {key}") })
                })
                .collect();
            let body = json_of(send(http.put(target.kv("/bulk")).json(&items))?)?;
            expect_success(&body, "bulk write")?;
            for item in items {
                let key = item["key"].as_str().unwrap_or_default().to_string();
                outcome.kv.insert(key.clone(), format!("bulk {key}"));
            }
        }
        7 => {
            let id = i64::try_from(client * 100_000 + index).map_err(|e| e.to_string())?;
            let value = format!("row {id}");
            let body = json_of(send(http.post(target.query()).json(&json!({
                "sql": "INSERT INTO items (id, client, value) VALUES (?1, ?2, ?3)",
                "params": [id, client, value],
            })))?)?;
            expect_success(&body, "insert")?;
            if body["result"][0]["meta"]["changes"] != json!(1) {
                return Err(format!("insert changed no row: {body}"));
            }
            outcome.rows.insert(id, value);
        }
        8 => {
            let (key, expected) = written_before(outcome).ok_or("no earlier write")?;
            let body = json_of(send(
                http.post(target.kv("/bulk/get"))
                    .json(&json!({ "keys": [key.clone(), "never-written"] })),
            )?)?;
            expect_success(&body, "bulk get")?;
            let values = &body["result"]["values"];
            if values[&key] != json!(expected) || values["never-written"] != Value::Null {
                return Err(format!("bulk get {key}: {body}"));
            }
        }
        _ => {
            let body = json_of(send(http.post(target.query()).json(&json!({
                "sql": "SELECT count(*) AS n FROM items WHERE client = ?1",
                "params": [client],
            })))?)?;
            expect_success(&body, "select")?;
            let count = body["result"][0]["results"][0]["n"].as_u64();
            if count != Some(outcome.rows.len() as u64) {
                return Err(format!(
                    "counted {count:?} rows, inserted {}",
                    outcome.rows.len()
                ));
            }
        }
    }
    Ok(())
}

/// The name of the request kind `one_request` sends for `index`.
fn kind(index: usize) -> &'static str {
    match index % 10 {
        0..=2 => "kv put",
        3 | 4 => "kv get",
        5 => "kv list",
        6 => "kv bulk write",
        7 => "d1 insert",
        8 => "kv bulk get",
        _ => "d1 select",
    }
}

fn run_client(target: Arc<Target>, client: usize, requests: usize) -> Outcome {
    let http = Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client");
    let mut outcome = Outcome::default();
    for index in 0..requests {
        let started = Instant::now();
        let result = one_request(&http, &target, client, index, &mut outcome);
        outcome.latencies.push((kind(index), started.elapsed()));
        if let Err(error) = result {
            outcome
                .errors
                .push(format!("client {client} request {index}: {error}"));
        }
    }
    outcome
}

fn percentile(sorted: &[Duration], percent: usize) -> Duration {
    let index = (sorted.len() * percent).div_ceil(100).saturating_sub(1);
    sorted[index.min(sorted.len() - 1)]
}

/// Every stored key with its value, through the list and bulk-get endpoints.
fn stored_kv(emulator: &TestEmulator, namespace: &str) -> HashMap<String, String> {
    let keys_path = emulator.account_path(&format!("/storage/kv/namespaces/{namespace}/keys"));
    let mut names = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = emulator.get(&format!("{keys_path}?limit=1000&cursor={cursor}"));
        for key in page["result"].as_array().expect("keys") {
            names.push(key["name"].as_str().expect("name").to_string());
        }
        cursor = page["result_info"]["cursor"]
            .as_str()
            .unwrap_or("")
            .to_string();
        if cursor.is_empty() {
            break;
        }
    }
    let bulk_get = emulator.account_path(&format!("/storage/kv/namespaces/{namespace}/bulk/get"));
    let mut stored = HashMap::new();
    for chunk in names.chunks(100) {
        let answer = emulator.send("POST", &bulk_get, Some(json!({ "keys": chunk })), &[]);
        for (key, value) in answer["result"]["values"].as_object().expect("values") {
            stored.insert(
                key.clone(),
                value.as_str().unwrap_or("<not text>").to_string(),
            );
        }
    }
    assert_eq!(stored.len(), names.len(), "every listed key has a value");
    stored
}

#[test]
fn thirty_two_clients_ten_thousand_requests_no_error_no_lost_write() {
    let emulator = TestEmulator::start();
    let namespace = emulator.send(
        "POST",
        &emulator.account_path("/storage/kv/namespaces"),
        Some(json!({ "title": "load" })),
        &[],
    )["result"]["id"]
        .as_str()
        .expect("namespace id")
        .to_string();
    let database = emulator.send(
        "POST",
        &emulator.account_path("/d1/database"),
        Some(json!({ "name": "load" })),
        &[],
    )["result"]["uuid"]
        .as_str()
        .expect("database uuid")
        .to_string();
    let created = emulator.send(
        "POST",
        &emulator.account_path(&format!("/d1/database/{database}/query")),
        Some(json!({
            "sql": "CREATE TABLE items (id INTEGER PRIMARY KEY, client INTEGER NOT NULL, value TEXT NOT NULL)"
        })),
        &[],
    );
    assert_eq!(created["success"], json!(true), "{created}");
    let target = Arc::new(Target {
        base: format!("{}{}", emulator.base_url, emulator.account_path("")),
        token: emulator.token.clone(),
        namespace: namespace.clone(),
        database: database.clone(),
    });

    let started = Instant::now();
    let workers: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let target = Arc::clone(&target);
            // Spread the remainder so the total is exactly TOTAL_REQUESTS.
            let requests =
                TOTAL_REQUESTS / CLIENTS + usize::from(client < TOTAL_REQUESTS % CLIENTS);
            std::thread::spawn(move || run_client(target, client, requests))
        })
        .collect();
    let outcomes: Vec<Outcome> = workers
        .into_iter()
        .map(|worker| worker.join().expect("client thread"))
        .collect();
    let elapsed = started.elapsed();

    let mut by_kind: HashMap<&str, Vec<Duration>> = HashMap::new();
    for (kind, latency) in outcomes.iter().flat_map(|outcome| &outcome.latencies) {
        by_kind.entry(kind).or_default().push(*latency);
    }
    let mut latencies: Vec<Duration> = by_kind.values().flatten().copied().collect();
    latencies.sort();
    let errors: Vec<&String> = outcomes
        .iter()
        .flat_map(|outcome| &outcome.errors)
        .collect();
    eprintln!(
        "emulator load: {} requests from {CLIENTS} clients in {:.2} s: {:.0} requests/s, \
         latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms, {} errors",
        latencies.len(),
        elapsed.as_secs_f64(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 50).as_secs_f64() * 1000.0,
        percentile(&latencies, 99).as_secs_f64() * 1000.0,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1000.0,
        errors.len(),
    );
    let mut kinds: Vec<_> = by_kind.into_iter().collect();
    kinds.sort();
    for (kind, mut latencies) in kinds {
        latencies.sort();
        eprintln!(
            "emulator load:   {kind:<13} {:>5} requests, p50 {:>6.1} ms, p99 {:>6.1} ms",
            latencies.len(),
            percentile(&latencies, 50).as_secs_f64() * 1000.0,
            percentile(&latencies, 99).as_secs_f64() * 1000.0,
        );
    }
    assert_eq!(latencies.len(), TOTAL_REQUESTS);
    assert!(
        errors.is_empty(),
        "{} errors, first: {:?}",
        errors.len(),
        &errors[..errors.len().min(5)]
    );

    // No lost write: exactly the acknowledged keys and rows, each with its value.
    let mut written_kv = HashMap::new();
    let mut written_rows = HashMap::new();
    for outcome in &outcomes {
        written_kv.extend(outcome.kv.iter().map(|(k, v)| (k.clone(), v.clone())));
        written_rows.extend(outcome.rows.iter().map(|(k, v)| (*k, v.clone())));
    }
    let stored = stored_kv(&emulator, &namespace);
    assert_eq!(stored.len(), written_kv.len(), "KV key count");
    assert!(stored == written_kv, "every KV value reads back as written");
    let rows = emulator.send(
        "POST",
        &emulator.account_path(&format!("/d1/database/{database}/query")),
        Some(json!({ "sql": "SELECT id, value FROM items" })),
        &[],
    );
    let rows: HashMap<i64, String> = rows["result"][0]["results"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|row| {
            (
                row["id"].as_i64().expect("id"),
                row["value"].as_str().expect("value").to_string(),
            )
        })
        .collect();
    assert_eq!(rows.len(), written_rows.len(), "D1 row count");
    assert!(rows == written_rows, "every D1 row reads back as written");
    eprintln!(
        "emulator load: verified {} KV keys and {} D1 rows",
        stored.len(),
        rows.len()
    );
}
