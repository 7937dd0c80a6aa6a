//! Async tests of the emulator over real HTTP, with raw JSON through reqwest (never our client).

use std::path::Path;

use md5::Digest as _;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::{Clock, Config, Emulator, FaultConfig, start, start_with};

const TOKEN: &str = "emulator-test-token";
const ACCOUNT: &str = "0123456789abcdef0123456789abcdef";

struct Harness {
    emulator: Emulator,
    client: reqwest::Client,
    dir: tempfile::TempDir,
}

/// An emulator on a manual clock, so expirations are exact and tests move time themselves.
async fn start_in(dir: &Path) -> Emulator {
    start_with(
        Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            state_dir: dir.to_path_buf(),
            token: TOKEN.into(),
            account_id: ACCOUNT.into(),
            zones: Vec::new(),
        },
        FaultConfig::default(),
        Clock::manual(time::macros::datetime!(2025-03-01 12:00 UTC)),
    )
    .await
    .expect("emulator starts")
}

async fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let emulator = start_in(dir.path()).await;
    Harness {
        emulator,
        client: reqwest::Client::new(),
        dir,
    }
}

impl Harness {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.emulator.base_url())
    }

    fn account(&self, rest: &str) -> String {
        format!("/accounts/{ACCOUNT}{rest}")
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        let mut request = self
            .client
            .request(method, self.url(path))
            .bearer_auth(TOKEN);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        let value = serde_json::from_str(&text)
            .unwrap_or_else(|error| panic!("{path}: not JSON ({error}): {text}"));
        (status, value)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None, &[]).await
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(body), &[]).await
    }

    /// Asserts a success envelope and returns `result`.
    async fn ok(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let (status, value) = self.call(method, path, body, &[]).await;
        assert_eq!(status, StatusCode::OK, "{path}: {value}");
        assert_success(&value);
        value["result"].clone()
    }

    async fn create_namespace(&self, title: &str) -> String {
        let result = self
            .ok(
                Method::POST,
                &self.account("/storage/kv/namespaces"),
                Some(json!({ "title": title })),
            )
            .await;
        result["id"].as_str().unwrap().to_owned()
    }

    async fn put_value(&self, namespace: &str, key: &str, value: &str) {
        let path = self.account(&format!(
            "/storage/kv/namespaces/{namespace}/values/{}",
            percent_encoding::utf8_percent_encode(key, percent_encoding::NON_ALPHANUMERIC)
        ));
        let response = self
            .client
            .put(self.url(&path))
            .bearer_auth(TOKEN)
            .body(value.to_owned())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "put {key}");
    }

    async fn stats(&self) -> Value {
        let origin = self.emulator.base_url().replace("/client/v4", "");
        self.client
            .get(format!("{origin}/__emulator/stats"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

fn assert_success(value: &Value) {
    assert_eq!(value["success"], json!(true), "{value}");
    assert_eq!(value["errors"], json!([]), "{value}");
    assert_eq!(value["messages"], json!([]), "{value}");
    assert!(value.get("result").is_some(), "{value}");
}

fn assert_error(status: StatusCode, value: &Value, expected_status: u16, code: u64) {
    assert_eq!(status.as_u16(), expected_status, "{value}");
    assert_eq!(value["success"], json!(false), "{value}");
    assert_eq!(value["errors"][0]["code"], json!(code), "{value}");
    assert!(value["errors"][0]["message"].is_string(), "{value}");
    assert_eq!(value["messages"], json!([]), "{value}");
    assert_eq!(value["result"], Value::Null, "{value}");
}

#[tokio::test]
async fn envelopes_and_identity_endpoints() {
    let h = harness().await;
    let (status, accounts) = h.get("/accounts").await;
    assert_eq!(status, StatusCode::OK);
    assert_success(&accounts);
    assert_eq!(accounts["result"][0]["id"], json!(ACCOUNT));
    assert_eq!(
        accounts["result"][0]["name"],
        json!("flareops local account")
    );
    assert_eq!(accounts["result_info"]["total_count"], json!(1));
    assert_eq!(accounts["result_info"]["page"], json!(1));

    let memberships = h.ok(Method::GET, "/memberships", None).await;
    assert_eq!(memberships[0]["account"]["id"], json!(ACCOUNT));

    let (status, verify) = h.get("/user/tokens/verify").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(verify["result"]["status"], json!("active"));
    assert_eq!(verify["success"], json!(true));

    let user = h.ok(Method::GET, "/user", None).await;
    assert!(user["email"].is_string());

    let (status, unknown) = h.get("/nope/nothing").await;
    assert_error(status, &unknown, 404, 7003);
    assert_eq!(
        unknown["errors"][0]["message"],
        json!("No route for the URI")
    );

    let (status, wrong_method) = h.call(Method::PATCH, "/accounts", None, &[]).await;
    assert_error(status, &wrong_method, 404, 7003);

    h.emulator.shutdown().await;
}

#[tokio::test]
async fn authentication_failures_use_cloudflare_codes() {
    let h = harness().await;
    let list = h.url(&h.account("/storage/kv/namespaces"));

    let response = h.client.get(&list).send().await.unwrap();
    let status = response.status();
    assert_error(status, &response.json().await.unwrap(), 400, 9106);

    let response = h
        .client
        .get(&list)
        .header("Authorization", "Basic abc")
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_error(status, &body, 400, 6003);
    assert_eq!(body["errors"][0]["error_chain"][0]["code"], json!(6111));

    let response = h
        .client
        .get(&list)
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    let status = response.status();
    assert_error(status, &response.json().await.unwrap(), 401, 10000);

    let response = h
        .client
        .get(h.url("/user/tokens/verify"))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    let status = response.status();
    assert_error(status, &response.json().await.unwrap(), 401, 1000);

    let (status, other_account) = h
        .get("/accounts/ffffffffffffffffffffffffffffffff/storage/kv/namespaces")
        .await;
    assert_error(status, &other_account, 403, 10000);

    // The stats endpoint needs the token too, and failed requests were counted.
    let origin = h.emulator.base_url().replace("/client/v4", "");
    let response = h
        .client
        .get(format!("{origin}/__emulator/stats"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let stats = h.stats().await;
    assert_eq!(stats["total"], json!(5), "{stats}");
    assert_eq!(
        stats["endpoints"]["GET /accounts/{account_id}/storage/kv/namespaces"],
        json!(4),
        "{stats}"
    );
    assert_eq!(
        stats["endpoints"]["GET /user/tokens/verify"],
        json!(1),
        "{stats}"
    );
    h.emulator.shutdown().await;
}

#[tokio::test]
async fn stats_count_routes_and_unknown_paths_but_not_themselves() {
    let h = harness().await;
    h.get("/accounts").await;
    h.get("/accounts").await;
    h.get("/does/not/exist").await;
    h.stats().await;
    let stats = h.stats().await;
    assert_eq!(
        stats,
        json!({
            "total": 3,
            "endpoints": {"GET /accounts": 2, "GET (no route)": 1},
            "clients": {"other": {"GET /accounts": 2, "GET (no route)": 1}},
            "faults": {"requests": 3, "latency": 0, "5xx": 0, "429": 0, "reset": 0,
                       "lost_response": 0, "rate_limited": 0},
        })
    );
    h.emulator.shutdown().await;
}

#[tokio::test]
async fn kv_namespace_pagination_order_and_duplicates() {
    let h = harness().await;
    let base = h.account("/storage/kv/namespaces");
    for title in ["g", "c", "a", "f", "b", "e", "d"] {
        h.create_namespace(title).await;
    }
    let (status, duplicate) = h.post(&base, json!({ "title": "c" })).await;
    assert_error(status, &duplicate, 400, 10014);
    assert!(
        duplicate["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("already exists")
    );

    let (_, page2) = h
        .get(&format!(
            "{base}?per_page=5&page=2&order=title&direction=asc"
        ))
        .await;
    assert_success(&page2);
    let titles: Vec<&str> = page2["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|namespace| namespace["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["f", "g"]);
    assert_eq!(
        page2["result_info"],
        json!({"page": 2, "per_page": 5, "count": 2, "total_count": 7, "total_pages": 2})
    );

    let (status, past_end) = h.get(&format!("{base}?per_page=5&page=3")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(past_end["result"], json!([]));
    assert_eq!(past_end["result_info"]["total_count"], json!(7));
    assert_eq!(past_end["result_info"]["count"], json!(0));

    let (_, descending) = h.get(&format!("{base}?order=title&direction=desc")).await;
    assert_eq!(descending["result"][0]["title"], json!("g"));

    for bad in [
        "per_page=0",
        "per_page=1001",
        "page=0",
        "order=name",
        "direction=up",
    ] {
        let (status, error) = h.get(&format!("{base}?{bad}")).await;
        assert_error(status, &error, 400, 10001);
    }

    // wrangler lists with per_page=1000 (kv namespace list) and 100 (name lookups).
    let (_, all) = h.get(&format!("{base}?per_page=1000")).await;
    assert_eq!(all["result"].as_array().unwrap().len(), 7);

    let (status, too_long) = h.post(&base, json!({ "title": "x".repeat(513) })).await;
    assert_error(status, &too_long, 400, 10001);
    let (status, empty) = h.post(&base, json!({ "title": "" })).await;
    assert_error(status, &empty, 400, 10001);

    // Rename answers the namespace; a taken title is refused.
    let id = h.create_namespace("to-rename").await;
    let renamed = h
        .ok(
            Method::PUT,
            &format!("{base}/{id}"),
            Some(json!({"title": "renamed"})),
        )
        .await;
    assert_eq!(renamed["title"], json!("renamed"));
    let (status, taken) = h
        .call(
            Method::PUT,
            &format!("{base}/{id}"),
            Some(json!({"title": "a"})),
            &[],
        )
        .await;
    assert_error(status, &taken, 400, 10014);

    let fetched = h.ok(Method::GET, &format!("{base}/{id}"), None).await;
    assert_eq!(fetched["title"], json!("renamed"));
    h.ok(Method::DELETE, &format!("{base}/{id}"), None).await;
    let (status, gone) = h.get(&format!("{base}/{id}")).await;
    assert_error(status, &gone, 404, 10013);
    h.emulator.shutdown().await;
}

#[tokio::test]
async fn kv_keys_list_with_prefix_limit_and_cursor() {
    let h = harness().await;
    let namespace = h.create_namespace("keys").await;
    for index in 0..25 {
        h.put_value(&namespace, &format!("item/{index:02}"), "v")
            .await;
    }
    h.put_value(&namespace, "other", "v").await;
    let keys = h.account(&format!("/storage/kv/namespaces/{namespace}/keys"));

    let (_, first) = h.get(&format!("{keys}?prefix=item/&limit=10")).await;
    assert_success(&first);
    assert_eq!(first["result"].as_array().unwrap().len(), 10);
    assert_eq!(first["result"][0]["name"], json!("item/00"));
    assert_eq!(first["result_info"]["count"], json!(10));
    let cursor = first["result_info"]["cursor"].as_str().unwrap().to_owned();
    assert!(!cursor.is_empty());

    let (_, second) = h
        .get(&format!("{keys}?prefix=item/&limit=10&cursor={cursor}"))
        .await;
    assert_eq!(second["result"][0]["name"], json!("item/10"));
    let cursor = second["result_info"]["cursor"].as_str().unwrap().to_owned();
    let (_, last) = h
        .get(&format!("{keys}?prefix=item/&limit=10&cursor={cursor}"))
        .await;
    assert_eq!(last["result"].as_array().unwrap().len(), 5);
    assert_eq!(last["result_info"]["cursor"], json!(""));

    let (_, everything) = h.get(&keys).await;
    assert_eq!(everything["result"].as_array().unwrap().len(), 26);
    assert_eq!(everything["result_info"]["cursor"], json!(""));

    for bad in ["limit=9", "limit=1001", "cursor=%21%21"] {
        let (status, error) = h.get(&format!("{keys}?{bad}")).await;
        assert_error(status, &error, 400, 10001);
    }
    let (status, missing) = h.get(&h.account("/storage/kv/namespaces/0000/keys")).await;
    assert_error(status, &missing, 404, 10013);
    h.emulator.shutdown().await;
}

#[tokio::test]
async fn kv_values_metadata_expiration_and_limits() {
    let h = harness().await;
    let namespace = h.create_namespace("values").await;
    let value_path =
        |key: &str| h.url(&h.account(&format!("/storage/kv/namespaces/{namespace}/values/{key}")));

    // Raw body, and a key with a slash (percent-encoded, as wrangler sends it).
    let response = h
        .client
        .put(value_path("dir%2Fkey"))
        .bearer_auth(TOKEN)
        .body(vec![0u8, 159, 146, 150])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = h
        .client
        .get(value_path("dir%2Fkey"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get("expiration").is_none());
    assert_eq!(
        response.bytes().await.unwrap().as_ref(),
        &[0u8, 159, 146, 150]
    );

    // Multipart with metadata, and a TTL.
    let form = reqwest::multipart::Form::new()
        .text("value", "hello")
        .text("metadata", r#"{"owner":"me"}"#);
    let response = h
        .client
        .put(format!("{}?expiration_ttl=120", value_path("greeting")))
        .bearer_auth(TOKEN)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = h
        .client
        .get(value_path("greeting"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    let expiration: i64 = response.headers()["expiration"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let clock = h.emulator.clock();
    assert_eq!(expiration, clock.unix_seconds() + 120);
    assert_eq!(response.text().await.unwrap(), "hello");
    let metadata = h
        .ok(
            Method::GET,
            &h.account(&format!(
                "/storage/kv/namespaces/{namespace}/metadata/greeting"
            )),
            None,
        )
        .await;
    assert_eq!(metadata, json!({"owner": "me"}));
    let (_, keys) = h
        .get(&h.account(&format!("/storage/kv/namespaces/{namespace}/keys")))
        .await;
    let greeting = keys["result"]
        .as_array()
        .unwrap()
        .iter()
        .find(|key| key["name"] == "greeting")
        .unwrap();
    assert_eq!(greeting["metadata"], json!({"owner": "me"}));
    assert_eq!(greeting["expiration"], json!(expiration));

    // Once the clock passes the expiration, the key is gone from reads and lists.
    clock.advance(std::time::Duration::from_secs(120));
    let (status, expired) = h
        .get(&h.account(&format!(
            "/storage/kv/namespaces/{namespace}/values/greeting"
        )))
        .await;
    assert_error(status, &expired, 404, 10009);
    let (_, keys) = h
        .get(&h.account(&format!("/storage/kv/namespaces/{namespace}/keys")))
        .await;
    assert!(
        !keys["result"]
            .as_array()
            .unwrap()
            .iter()
            .any(|key| key["name"] == "greeting"),
        "{keys}"
    );

    // Missing key.
    let (status, missing) = h
        .get(&h.account(&format!("/storage/kv/namespaces/{namespace}/values/absent")))
        .await;
    assert_error(status, &missing, 404, 10009);

    // Limits.
    let response = h
        .client
        .put(format!("{}?expiration_ttl=30", value_path("short")))
        .bearer_auth(TOKEN)
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let long_key = "k".repeat(513);
    let response = h
        .client
        .put(value_path(&long_key))
        .bearer_auth(TOKEN)
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let form = reqwest::multipart::Form::new()
        .text("value", "x")
        .text("metadata", json!({ "big": "m".repeat(1100) }).to_string());
    let response = h
        .client
        .put(value_path("fat"))
        .bearer_auth(TOKEN)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    // Delete.
    h.ok(
        Method::DELETE,
        &h.account(&format!(
            "/storage/kv/namespaces/{namespace}/values/greeting"
        )),
        None,
    )
    .await;
    let (status, _) = h
        .get(&h.account(&format!(
            "/storage/kv/namespaces/{namespace}/values/greeting"
        )))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    h.emulator.shutdown().await;
}

#[tokio::test]
async fn kv_bulk_write_get_and_both_delete_forms() {
    let h = harness().await;
    let namespace = h.create_namespace("bulk").await;
    let bulk = h.account(&format!("/storage/kv/namespaces/{namespace}/bulk"));
    let result = h
        .ok(
            Method::PUT,
            &bulk,
            Some(json!([
                {"key": "a", "value": "1"},
                {"key": "b", "value": "aGVsbG8=", "base64": true, "metadata": {"m": 1}},
                {"key": "c", "value": "{\"x\":1}", "expiration_ttl": 600},
                {"key": "d", "value": "4"},
            ])),
        )
        .await;
    assert_eq!(
        result,
        json!({"successful_key_count": 4, "unsuccessful_keys": []})
    );
    let got = h
        .ok(
            Method::POST,
            &format!("{bulk}/get"),
            Some(json!({"keys": ["a", "b", "zz"]})),
        )
        .await;
    assert_eq!(got, json!({"values": {"a": "1", "b": "hello", "zz": null}}));
    let got = h
        .ok(
            Method::POST,
            &format!("{bulk}/get"),
            Some(json!({"keys": ["c"], "type": "json", "withMetadata": true})),
        )
        .await;
    assert_eq!(got["values"]["c"]["value"], json!({"x": 1}));

    let deleted = h
        .ok(
            Method::POST,
            &format!("{bulk}/delete"),
            Some(json!(["a", "b"])),
        )
        .await;
    assert_eq!(deleted["successful_key_count"], json!(2));
    let deleted = h.ok(Method::DELETE, &bulk, Some(json!(["c"]))).await;
    assert_eq!(deleted["successful_key_count"], json!(1));
    let (_, keys) = h
        .get(&h.account(&format!("/storage/kv/namespaces/{namespace}/keys")))
        .await;
    assert_eq!(keys["result"], json!([{"name": "d"}]));

    // One invalid item refuses the whole request.
    let (status, error) = h
        .call(
            Method::PUT,
            &bulk,
            Some(json!([{"key": "ok", "value": "1"}, {"key": "bad", "value": "1", "expiration_ttl": 5}])),
            &[],
        )
        .await;
    assert_error(status, &error, 400, 10001);
    let (status, _) = h
        .get(&h.account(&format!("/storage/kv/namespaces/{namespace}/values/ok")))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let too_many: Vec<Value> = (0..10_001)
        .map(|index| json!({"key": format!("k{index}"), "value": "v"}))
        .collect();
    let (status, error) = h
        .call(Method::PUT, &bulk, Some(Value::Array(too_many)), &[])
        .await;
    assert_error(status, &error, 400, 10001);
    h.emulator.shutdown().await;
}

#[tokio::test]
async fn d1_lifecycle_queries_and_errors() {
    let h = harness().await;
    let base = h.account("/d1/database");
    let created = h
        .ok(
            Method::POST,
            &base,
            Some(json!({"name": "app-db", "primary_location_hint": "weur"})),
        )
        .await;
    let uuid = created["uuid"].as_str().unwrap().to_owned();
    assert_eq!(created["name"], json!("app-db"));
    assert_eq!(created["created_in_region"], json!("WEUR"));
    assert!(
        h.dir
            .path()
            .join("d1")
            .join(format!("{uuid}.sqlite3"))
            .exists()
    );

    let (status, duplicate) = h.post(&base, json!({"name": "app-db"})).await;
    assert_error(status, &duplicate, 400, 7502);
    let (status, invalid) = h.post(&base, json!({"name": "App DB"})).await;
    assert_error(status, &invalid, 400, 7400);

    let by_name = h.ok(Method::GET, &format!("{base}/app-db"), None).await;
    assert_eq!(by_name["uuid"], json!(uuid));
    let (status, missing) = h.get(&format!("{base}/nope")).await;
    assert_error(status, &missing, 404, 7404);

    let results = h
        .ok(
            Method::POST,
            &format!("{base}/{uuid}/query"),
            Some(json!({"sql": "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO users (name) VALUES ('ada'), ('bob'); SELECT id, name FROM users ORDER BY id"})),
        )
        .await;
    let results = results.as_array().unwrap();
    assert_eq!(results.len(), 3);
    for entry in results {
        assert_eq!(entry["success"], json!(true));
        for field in [
            "changes",
            "last_row_id",
            "rows_read",
            "rows_written",
            "duration",
            "size_after",
            "changed_db",
        ] {
            assert!(entry["meta"].get(field).is_some(), "meta.{field}: {entry}");
        }
    }
    assert_eq!(results[1]["meta"]["changes"], json!(2));
    assert_eq!(results[1]["meta"]["last_row_id"], json!(2));
    assert_eq!(results[1]["meta"]["rows_written"], json!(2));
    assert_eq!(results[1]["meta"]["changed_db"], json!(true));
    assert_eq!(results[2]["meta"]["changed_db"], json!(false));
    assert_eq!(
        results[2]["results"],
        json!([{"id": 1, "name": "ada"}, {"id": 2, "name": "bob"}])
    );

    let raw = h
        .ok(
            Method::POST,
            &format!("{base}/app-db/raw"),
            Some(json!({"sql": "SELECT name FROM users WHERE id = ?", "params": ["2"]})),
        )
        .await;
    assert_eq!(
        raw[0]["results"],
        json!({"columns": ["name"], "rows": [["bob"]]})
    );

    let batch = h
        .ok(
            Method::POST,
            &format!("{base}/{uuid}/query"),
            Some(json!({"batch": [
                {"sql": "INSERT INTO users (name) VALUES (?)", "params": ["cy"]},
                {"sql": "SELECT count(*) AS n FROM users"},
            ]})),
        )
        .await;
    assert_eq!(batch[1]["results"], json!([{"n": 3}]));

    // An error rolls the whole request back.
    let (status, error) = h
        .post(
            &format!("{base}/{uuid}/query"),
            json!({"sql": "INSERT INTO users (name) VALUES ('dan'); SELECT * FROM missing"}),
        )
        .await;
    assert_error(status, &error, 400, 7500);
    let message = error["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("no such table: missing"), "{message}");
    assert!(message.ends_with("SQLITE_ERROR"), "{message}");
    let count = h
        .ok(
            Method::POST,
            &format!("{base}/{uuid}/query"),
            Some(json!({"sql": "SELECT count(*) AS n FROM users"})),
        )
        .await;
    assert_eq!(count[0]["results"], json!([{"n": 3}]));

    let (status, error) = h
        .post(
            &format!("{base}/{uuid}/query"),
            json!({"sql": "BEGIN TRANSACTION"}),
        )
        .await;
    assert_error(status, &error, 400, 7500);
    let (status, error) = h
        .post(
            &format!("{base}/{uuid}/query"),
            json!({"sql": "ATTACH DATABASE '/tmp/x.db' AS x"}),
        )
        .await;
    assert_error(status, &error, 400, 7500);

    let info = h.ok(Method::GET, &format!("{base}/{uuid}"), None).await;
    assert_eq!(info["num_tables"], json!(1));
    assert!(info["file_size"].as_u64().unwrap() > 0);

    // List: name filter, page bounds.
    h.ok(Method::POST, &base, Some(json!({"name": "other"})))
        .await;
    let (_, listed) = h.get(&format!("{base}?name=app")).await;
    assert_eq!(listed["result"].as_array().unwrap().len(), 1);
    assert_eq!(listed["result_info"]["total_count"], json!(1));
    let (_, all) = h.get(&format!("{base}?per_page=10&page=1")).await;
    assert_eq!(all["result_info"]["total_count"], json!(2));
    let (_, past_end) = h.get(&format!("{base}?per_page=10&page=2")).await;
    assert_eq!(past_end["result"], json!([]));
    let (status, error) = h.get(&format!("{base}?per_page=9")).await;
    assert_error(status, &error, 400, 7400);

    h.ok(Method::DELETE, &format!("{base}/{uuid}"), None).await;
    assert!(
        !h.dir
            .path()
            .join("d1")
            .join(format!("{uuid}.sqlite3"))
            .exists()
    );
    let (status, _) = h.get(&format!("{base}/{uuid}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    h.emulator.shutdown().await;
}

#[tokio::test]
async fn r2_buckets_are_scoped_by_jurisdiction() {
    let h = harness().await;
    let base = h.account("/r2/buckets");
    let eu = [("cf-r2-jurisdiction", "eu")];

    let (status, created) = h
        .call(Method::POST, &base, Some(json!({"name": "assets"})), &[])
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(created["result"]["location"], json!("ENAM"));
    assert_eq!(created["result"]["storage_class"], json!("Standard"));
    let (status, created_eu) = h
        .call(
            Method::POST,
            &base,
            Some(json!({"name": "assets", "storageClass": "InfrequentAccess"})),
            &eu,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{created_eu}");
    assert_eq!(created_eu["result"]["jurisdiction"], json!("eu"));
    h.call(
        Method::POST,
        &base,
        Some(json!({"name": "logs", "locationHint": "wnam"})),
        &[],
    )
    .await;

    let (status, duplicate) = h
        .call(Method::POST, &base, Some(json!({"name": "assets"})), &eu)
        .await;
    assert_error(status, &duplicate, 409, 10073);
    let (status, invalid) = h
        .call(Method::POST, &base, Some(json!({"name": "-bad-"})), &[])
        .await;
    assert_error(status, &invalid, 400, 10005);

    let (_, default_list) = h.get(&base).await;
    assert_success(&default_list);
    let names: Vec<&str> = default_list["result"]["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|bucket| bucket["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["assets", "logs"]);
    assert_eq!(
        default_list["result"]["buckets"][1]["location"],
        json!("WNAM")
    );
    let (_, eu_list) = h.call(Method::GET, &base, None, &eu).await;
    assert_eq!(eu_list["result"]["buckets"].as_array().unwrap().len(), 1);
    assert_eq!(
        eu_list["result"]["buckets"][0]["storage_class"],
        json!("InfrequentAccess")
    );

    // Cursor pagination.
    let (_, first) = h.get(&format!("{base}?per_page=1")).await;
    assert_eq!(first["result"]["buckets"][0]["name"], json!("assets"));
    let cursor = first["result_info"]["cursor"].as_str().unwrap().to_owned();
    let (_, second) = h.get(&format!("{base}?per_page=1&cursor={cursor}")).await;
    assert_eq!(second["result"]["buckets"][0]["name"], json!("logs"));
    assert_eq!(second["result_info"]["cursor"], json!(""));
    let (_, filtered) = h.get(&format!("{base}?name_contains=og")).await;
    assert_eq!(filtered["result"]["buckets"].as_array().unwrap().len(), 1);
    let (status, error) = h.get(&format!("{base}?per_page=0")).await;
    assert_error(status, &error, 400, 10001);

    // Storage class change, scoped too.
    let (status, patched) = h
        .call(
            Method::PATCH,
            &format!("{base}/assets"),
            None,
            &[("cf-r2-storage-class", "InfrequentAccess")],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    let fetched = h.ok(Method::GET, &format!("{base}/assets"), None).await;
    assert_eq!(fetched["storage_class"], json!("InfrequentAccess"));

    let (status, _) = h
        .call(Method::DELETE, &format!("{base}/assets"), None, &eu)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, missing) = h
        .call(Method::GET, &format!("{base}/assets"), None, &eu)
        .await;
    assert_error(status, &missing, 404, 10006);
    // The default-jurisdiction bucket of the same name is still there.
    h.ok(Method::GET, &format!("{base}/assets"), None).await;
    h.emulator.shutdown().await;
}

#[tokio::test]
async fn restart_keeps_state() {
    let dir = tempfile::tempdir().unwrap();
    let first = start_in(dir.path()).await;
    let h = Harness {
        emulator: first,
        client: reqwest::Client::new(),
        dir,
    };
    let namespace = h.create_namespace("persistent").await;
    h.put_value(&namespace, "k", "v").await;
    let database = h
        .ok(
            Method::POST,
            &h.account("/d1/database"),
            Some(json!({"name": "kept"})),
        )
        .await;
    let uuid = database["uuid"].as_str().unwrap().to_owned();
    h.ok(
        Method::POST,
        &h.account(&format!("/d1/database/{uuid}/query")),
        Some(json!({"sql": "CREATE TABLE t (x); INSERT INTO t VALUES (42)"})),
    )
    .await;
    h.call(
        Method::POST,
        &h.account("/r2/buckets"),
        Some(json!({"name": "kept-bucket"})),
        &[("cf-r2-jurisdiction", "eu")],
    )
    .await;
    let Harness {
        emulator,
        dir,
        client,
    } = h;
    emulator.shutdown().await;

    let second = start_in(dir.path()).await;
    let h = Harness {
        emulator: second,
        client,
        dir,
    };
    let fetched = h
        .ok(
            Method::GET,
            &h.account(&format!("/storage/kv/namespaces/{namespace}")),
            None,
        )
        .await;
    assert_eq!(fetched["title"], json!("persistent"));
    let response = h
        .client
        .get(h.url(&h.account(&format!("/storage/kv/namespaces/{namespace}/values/k"))))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.text().await.unwrap(), "v");
    let rows = h
        .ok(
            Method::POST,
            &h.account("/d1/database/kept/query"),
            Some(json!({"sql": "SELECT x FROM t"})),
        )
        .await;
    assert_eq!(rows[0]["results"], json!([{"x": 42}]));
    let (_, buckets) = h
        .call(
            Method::GET,
            &h.account("/r2/buckets"),
            None,
            &[("cf-r2-jurisdiction", "eu")],
        )
        .await;
    assert_eq!(
        buckets["result"]["buckets"][0]["name"],
        json!("kept-bucket")
    );
    h.emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_kv_writes_are_not_lost() {
    let h = std::sync::Arc::new(harness().await);
    let namespace = h.create_namespace("concurrent").await;
    let mut tasks = Vec::new();
    for task in 0..32 {
        let h = std::sync::Arc::clone(&h);
        let namespace = namespace.clone();
        tasks.push(tokio::spawn(async move {
            for index in 0..50 {
                h.put_value(&namespace, &format!("t{task:02}-{index:02}"), "x")
                    .await;
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let keys = h.account(&format!("/storage/kv/namespaces/{namespace}/keys"));
    let (_, first) = h.get(&keys).await;
    assert_eq!(first["result"].as_array().unwrap().len(), 1000);
    let cursor = first["result_info"]["cursor"].as_str().unwrap().to_owned();
    let (_, second) = h.get(&format!("{keys}?cursor={cursor}")).await;
    assert_eq!(second["result"].as_array().unwrap().len(), 600);
    assert_eq!(second["result_info"]["cursor"], json!(""));
    let stats = h.stats().await;
    assert_eq!(
        stats["endpoints"]["PUT /accounts/{account_id}/storage/kv/namespaces/{namespace_id}/values/{key_name}"],
        json!(1600)
    );
}

#[tokio::test]
async fn values_over_25_mib_are_refused() {
    let h = harness().await;
    let namespace = h.create_namespace("big").await;
    let path = h.account(&format!("/storage/kv/namespaces/{namespace}/values/big"));
    let response = h
        .client
        .put(h.url(&path))
        .bearer_auth(TOKEN)
        .body(vec![b'x'; 25 * 1024 * 1024 + 1])
        .send()
        .await
        .unwrap();
    let status = response.status();
    assert_error(status, &response.json().await.unwrap(), 413, 10001);
    let response = h
        .client
        .put(h.url(&path))
        .bearer_auth(TOKEN)
        .body(vec![b'x'; 25 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    h.emulator.shutdown().await;
}

#[tokio::test]
async fn start_errors_name_the_path_and_the_token_is_never_shown() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        state_dir: file.clone(),
        token: "secret-token-value".into(),
        account_id: ACCOUNT.into(),
        zones: Vec::new(),
    };
    assert!(!format!("{config:?}").contains("secret-token-value"));
    let error = start(config).await.unwrap_err();
    assert!(
        error.to_string().contains(&file.display().to_string()),
        "{error}"
    );

    let error = start(Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        state_dir: dir.path().join("state"),
        token: "has space".into(),
        account_id: ACCOUNT.into(),
        zones: Vec::new(),
    })
    .await
    .unwrap_err();
    assert!(matches!(error, super::EmulatorError::InvalidConfig { .. }));
}

/// The error and its sources, for messages.
fn error_chain(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_set_in_process_reset_and_lose_responses_as_transport_errors() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        state_dir: dir.path().to_path_buf(),
        token: TOKEN.into(),
        account_id: ACCOUNT.into(),
        zones: Vec::new(),
    };
    let mut faults = super::FaultConfig {
        seed: Some(11),
        ..super::FaultConfig::default()
    };
    faults.default.reset_rate = 1.0;
    let bad = super::FaultConfig {
        rules: vec![super::FaultRule {
            method: None,
            path: "relative".into(),
            faults: super::FaultSettings::default(),
        }],
        ..super::FaultConfig::default()
    };
    let error = super::start_with_faults(config.clone(), bad.clone())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("rules[0].path"), "{error}");

    let emulator = super::start_with_faults(config, faults).await.unwrap();
    let h = Harness {
        emulator,
        client: reqwest::Client::new(),
        dir,
    };
    let accounts = h.url("/accounts");
    let error = h
        .client
        .get(&accounts)
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect_err("reset");
    assert!(error.is_request() && !error.is_timeout(), "{error:?}");
    eprintln!("reset, as reqwest reports it: {}", error_chain(&error));

    assert!(
        h.emulator.set_faults(bad).is_err(),
        "validated at run time too"
    );
    let mut lose = super::FaultConfig::default();
    lose.default.lost_response_rate = 1.0;
    h.emulator.set_faults(lose).unwrap();
    let namespace_path = h.url(&h.account("/storage/kv/namespaces"));
    let error = h
        .client
        .post(&namespace_path)
        .bearer_auth(TOKEN)
        .json(&json!({"title": "made-while-lost"}))
        .send()
        .await
        .expect_err("lost");
    assert!(error.is_request() && !error.is_timeout(), "{error:?}");
    eprintln!(
        "lost response, as reqwest reports it: {}",
        error_chain(&error)
    );

    h.emulator
        .set_faults(super::FaultConfig::default())
        .unwrap();
    let (status, listed) = h.get(&h.account("/storage/kv/namespaces")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["result"][0]["title"], json!("made-while-lost"));
    let counts = h.emulator.fault_counts();
    assert_eq!((counts.reset, counts.lost_response), (1, 1), "{counts:?}");
    assert!(h.emulator.fault_config().seed.is_some());
    h.emulator.shutdown().await;
}

/// R2 objects through the account API: put with HTTP and custom metadata, get (whole, ranges,
/// conditional, metadata only), head, list with prefix, delimiter and cursor, idempotent delete,
/// and a bucket delete refused while objects remain.
#[tokio::test]
async fn r2_objects_round_trip_through_the_account_api() {
    let h = harness().await;
    h.ok(
        Method::POST,
        &h.account("/r2/buckets"),
        Some(json!({"name": "assets"})),
    )
    .await;
    let object_url = |key: &str| h.url(&h.account(&format!("/r2/buckets/assets/objects/{key}")));
    let put = |key: &str, body: &'static str| {
        h.client
            .put(object_url(key))
            .bearer_auth(TOKEN)
            .header("content-type", "text/plain")
            .header("cache-control", "max-age=60")
            .header("cf-r2-custom-metadata", r#"{"owner":"ci"}"#)
            .body(body)
            .send()
    };
    let response = put("docs/readme.txt", "hello, world").await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let uploaded: Value = response.json().await.unwrap();
    assert_success(&uploaded);
    let etag = format!("{:x}", md5::Md5::digest(b"hello, world"));
    assert_eq!(uploaded["result"]["key"], json!("docs/readme.txt"));
    assert_eq!(uploaded["result"]["etag"], json!(etag));
    assert_eq!(uploaded["result"]["size"], json!("12"));
    assert_eq!(uploaded["result"]["storage_class"], json!("Standard"));
    assert_eq!(
        uploaded["result"]["uploaded"],
        json!(h.emulator.clock().timestamp())
    );
    for (key, body) in [
        ("docs/guide/intro.txt", "intro"),
        ("docs/guide/setup.txt", "setup"),
        ("logo.png", "png"),
        ("z-last", "z"),
    ] {
        assert_eq!(put(key, body).await.unwrap().status(), StatusCode::OK);
    }

    // Get: the body and its metadata as headers.
    let response = h
        .client
        .get(object_url("docs/readme.txt"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "text/plain");
    assert_eq!(headers["cache-control"], "max-age=60");
    assert_eq!(headers["etag"].to_str().unwrap(), format!("\"{etag}\""));
    assert_eq!(headers["x-r2-custom-metadata-owner"], "ci");
    assert_eq!(headers["content-length"], "12");
    assert_eq!(response.text().await.unwrap(), "hello, world");

    // Ranges.
    let ranged = |range: &'static str| {
        h.client
            .get(object_url("docs/readme.txt"))
            .bearer_auth(TOKEN)
            .header("range", range)
            .send()
    };
    let response = ranged("bytes=0-4").await.unwrap();
    assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(response.headers()["content-range"], "bytes 0-4/12");
    assert_eq!(response.text().await.unwrap(), "hello");
    let response = ranged("bytes=-5").await.unwrap();
    assert_eq!(response.text().await.unwrap(), "world");
    let response = ranged("bytes=7-").await.unwrap();
    assert_eq!(response.text().await.unwrap(), "world");
    let response = ranged("bytes=40-50").await.unwrap();
    assert_eq!(response.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(response.headers()["content-range"], "bytes */12");

    // Conditional get and head.
    let response = h
        .client
        .get(object_url("docs/readme.txt"))
        .bearer_auth(TOKEN)
        .header("if-none-match", format!("\"{etag}\""))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
    let response = h
        .client
        .head(object_url("docs/readme.txt"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-length"], "12");
    assert_eq!(response.text().await.unwrap(), "");
    let (status, metadata) = h
        .call(
            Method::GET,
            &h.account("/r2/buckets/assets/objects/docs/readme.txt"),
            None,
            &[("cf-metadata-only", "true")],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        metadata["result"],
        json!({
            "key": "docs/readme.txt",
            "etag": etag,
            "size": 12,
            "last_modified": uploaded["result"]["uploaded"],
            "http_metadata": {"contentType": "text/plain", "cacheControl": "max-age=60"},
            "custom_metadata": {"owner": "ci"},
            "storage_class": "Standard",
        })
    );
    let (status, missing) = h.get(&h.account("/r2/buckets/assets/objects/absent")).await;
    assert_error(status, &missing, 404, 10007);

    // Lists: everything, a prefix, a delimiter, and pages that follow the cursor to the end.
    let list = async |query: &str| {
        h.get(&h.account(&format!("/r2/buckets/assets/objects{query}")))
            .await
    };
    let keys = |value: &Value| -> Vec<String> {
        value["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|object| object["key"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, all) = list("").await;
    assert_eq!(
        keys(&all),
        [
            "docs/guide/intro.txt",
            "docs/guide/setup.txt",
            "docs/readme.txt",
            "logo.png",
            "z-last"
        ]
    );
    assert_eq!(all["result_info"]["cursor"], json!(""));
    assert_eq!(all["result_info"]["is_truncated"], json!("false"));
    let (_, guide) = list("?prefix=docs/guide/").await;
    assert_eq!(
        keys(&guide),
        ["docs/guide/intro.txt", "docs/guide/setup.txt"]
    );
    let (_, top) = list("?delimiter=/").await;
    assert_eq!(keys(&top), ["logo.png", "z-last"]);
    assert_eq!(top["result_info"]["delimited"], json!(["docs/"]));
    let (_, docs) = list("?prefix=docs/&delimiter=/").await;
    assert_eq!(keys(&docs), ["docs/readme.txt"]);
    assert_eq!(docs["result_info"]["delimited"], json!(["docs/guide/"]));
    let mut seen = Vec::new();
    let mut prefixes = Vec::new();
    let mut cursor = String::new();
    for _ in 0..10 {
        let (_, page) = h
            .get(&h.account(&format!(
                "/r2/buckets/assets/objects?delimiter=/&per_page=1&cursor={cursor}"
            )))
            .await;
        seen.extend(keys(&page));
        prefixes.extend(
            page["result_info"]["delimited"]
                .as_array()
                .unwrap()
                .iter()
                .map(|prefix| prefix.as_str().unwrap().to_owned()),
        );
        cursor = page["result_info"]["cursor"].as_str().unwrap().to_owned();
        if cursor.is_empty() {
            assert_eq!(page["result_info"]["is_truncated"], json!("false"));
            break;
        }
    }
    assert!(cursor.is_empty(), "the cursor loop ended");
    assert_eq!(seen, ["logo.png", "z-last"]);
    assert_eq!(prefixes, ["docs/"]);
    let (_, after) = list("?start_after=logo.png").await;
    assert_eq!(keys(&after), ["z-last"]);

    // A bucket holding objects cannot be deleted.
    let (status, refused) = h
        .call(Method::DELETE, &h.account("/r2/buckets/assets"), None, &[])
        .await;
    assert_error(status, &refused, 409, 10008);

    // Deletes: an existing key, a missing key (succeeds, as R2 deletes are idempotent), a
    // missing bucket (404).
    let deleted = h
        .ok(
            Method::DELETE,
            &h.account("/r2/buckets/assets/objects/logo.png"),
            None,
        )
        .await;
    assert_eq!(deleted, json!({"key": "logo.png"}));
    let again = h
        .ok(
            Method::DELETE,
            &h.account("/r2/buckets/assets/objects/logo.png"),
            None,
        )
        .await;
    assert_eq!(again, json!({"key": "logo.png"}));
    let (status, no_bucket) = h
        .call(
            Method::DELETE,
            &h.account("/r2/buckets/nowhere/objects/x"),
            None,
            &[],
        )
        .await;
    assert_error(status, &no_bucket, 404, 10006);
    // The eu bucket of the same name is another bucket.
    let (status, other) = h
        .call(
            Method::GET,
            &h.account("/r2/buckets/assets/objects/z-last"),
            None,
            &[("cf-r2-jurisdiction", "eu")],
        )
        .await;
    assert_error(status, &other, 404, 10006);

    // Bodies live under the state directory; a deleted object's body is gone.
    let bodies = h.dir.path().join("r2").join("objects");
    assert_eq!(std::fs::read_dir(&bodies).unwrap().count(), 4);
    for key in [
        "docs/guide/intro.txt",
        "docs/guide/setup.txt",
        "docs/readme.txt",
        "z-last",
    ] {
        h.ok(
            Method::DELETE,
            &h.account(&format!("/r2/buckets/assets/objects/{key}")),
            None,
        )
        .await;
    }
    assert_eq!(std::fs::read_dir(&bodies).unwrap().count(), 0);
    h.ok(Method::DELETE, &h.account("/r2/buckets/assets"), None)
        .await;
    h.emulator.shutdown().await;
}

/// D1 import (init, upload to the link, ingest, poll) and export (dump, download), the way
/// wrangler drives them; the export imports back into another database with the same rows, and
/// links expire with the emulator's clock.
#[tokio::test]
async fn d1_import_and_export_round_trip() {
    let h = harness().await;
    let create = async |name: &str| {
        h.ok(
            Method::POST,
            &h.account("/d1/database"),
            Some(json!({ "name": name })),
        )
        .await["uuid"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let source = create("source").await;
    let sql = "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, score REAL);\n\
               INSERT INTO users (name, score) VALUES ('ada', 1.5), ('bob', 2.0);\n\
               CREATE INDEX users_by_name ON users (name);\n";
    let import = async |uuid: &str, sql: &str| -> Value {
        let etag = format!("{:x}", md5::Md5::digest(sql.as_bytes()));
        let init = h
            .ok(
                Method::POST,
                &h.account(&format!("/d1/database/{uuid}/import")),
                Some(json!({"action": "init", "etag": etag})),
            )
            .await;
        let upload_url = init["upload_url"].as_str().unwrap().to_owned();
        let filename = init["filename"].as_str().unwrap().to_owned();
        // The link needs no token, and answers the body's MD5 as its etag.
        let uploaded = h
            .client
            .put(&upload_url)
            .body(sql.to_owned())
            .send()
            .await
            .unwrap();
        assert_eq!(uploaded.status(), StatusCode::OK);
        assert_eq!(
            uploaded.headers()["etag"].to_str().unwrap(),
            format!("\"{etag}\"")
        );
        h.ok(
            Method::POST,
            &h.account(&format!("/d1/database/{uuid}/import")),
            Some(json!({"action": "ingest", "filename": filename, "etag": etag})),
        )
        .await
    };
    let ingested = import(&source, sql).await;
    assert_eq!(ingested["success"], json!(true), "{ingested}");
    assert_eq!(ingested["status"], json!("complete"), "{ingested}");
    assert_eq!(ingested["result"]["num_queries"], json!(3), "{ingested}");
    assert_eq!(
        ingested["result"]["meta"]["changed_db"],
        json!(true),
        "{ingested}"
    );
    let bookmark = ingested["result"]["final_bookmark"].as_str().unwrap();
    let current = h
        .ok(
            Method::GET,
            &h.account(&format!("/d1/database/{source}/time_travel/bookmark")),
            None,
        )
        .await;
    assert_eq!(current["bookmark"], json!(bookmark));
    let polled = h
        .ok(
            Method::POST,
            &h.account(&format!("/d1/database/{source}/import")),
            Some(json!({"action": "poll", "current_bookmark": bookmark})),
        )
        .await;
    assert_eq!(polled, ingested);

    // A failing file changes nothing and says why.
    let failed = import(
        &source,
        "INSERT INTO users (name) VALUES ('eve');\nINSERT INTO nowhere VALUES (1);\n",
    )
    .await;
    assert_eq!(failed["success"], json!(false), "{failed}");
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("no such table: nowhere"),
        "{failed}"
    );
    let count = h
        .ok(
            Method::POST,
            &h.account(&format!("/d1/database/{source}/query")),
            Some(json!({"sql": "SELECT count(*) AS n FROM users"})),
        )
        .await;
    assert_eq!(count[0]["results"][0]["n"], json!(2));

    // Export, download, import into an empty database: the same rows.
    let exported = h
        .ok(
            Method::POST,
            &h.account(&format!("/d1/database/{source}/export")),
            Some(json!({"output_format": "polling", "dump_options": {"tables": []}})),
        )
        .await;
    assert_eq!(exported["status"], json!("complete"), "{exported}");
    let signed_url = exported["result"]["signed_url"]
        .as_str()
        .unwrap()
        .to_owned();
    let dump = h
        .client
        .get(&signed_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(dump.contains("CREATE TABLE users"), "{dump}");
    let copy = create("copy").await;
    let copied = import(&copy, &dump).await;
    assert_eq!(copied["success"], json!(true), "{copied}");
    let rows = async |uuid: &str| {
        h.ok(
            Method::POST,
            &h.account(&format!("/d1/database/{uuid}/query")),
            Some(json!({"sql": "SELECT id, name, score FROM users ORDER BY id"})),
        )
        .await[0]["results"]
            .clone()
    };
    assert_eq!(rows(&copy).await, rows(&source).await);
    assert_eq!(
        rows(&copy).await,
        json!([{"id": 1, "name": "ada", "score": 1.5}, {"id": 2, "name": "bob", "score": 2.0}])
    );

    // Links are valid for an hour of the emulator's clock.
    h.emulator
        .clock()
        .advance(std::time::Duration::from_secs(3601));
    let expired = h.client.get(&signed_url).send().await.unwrap();
    assert_eq!(expired.status(), StatusCode::FORBIDDEN);
    let forged = h
        .client
        .get(signed_url.replace("/presigned/d1-export/", "/presigned/d1-export/0"))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    h.emulator.shutdown().await;
}

/// Every page-paginated list answers a page past its last with an empty result and its
/// `result_info` (the Python SDK's page paginators stop there); every cursor list ends with an
/// empty cursor.
#[tokio::test]
async fn a_page_past_the_last_is_empty_with_result_info() {
    let h = harness().await;
    h.create_namespace("edge").await;
    h.ok(
        Method::POST,
        &h.account("/d1/database"),
        Some(json!({"name": "edge"})),
    )
    .await;
    let page_lists = [
        String::from("/accounts"),
        String::from("/memberships"),
        String::from("/zones"),
        h.account("/storage/kv/namespaces"),
        h.account("/d1/database"),
        h.account("/workers/durable_objects/namespaces"),
    ];
    for path in &page_lists {
        for query in ["?page=7", "?page=7&per_page=10"] {
            let (status, answer) = h.get(&format!("{path}{query}")).await;
            assert_eq!(status, StatusCode::OK, "{path}{query}: {answer}");
            assert_eq!(answer["result"], json!([]), "{path}{query}: {answer}");
            let info = &answer["result_info"];
            assert_eq!(info["page"], json!(7), "{path}{query}: {answer}");
            assert_eq!(info["count"], json!(0), "{path}{query}: {answer}");
            assert!(info["total_count"].is_u64(), "{path}{query}: {answer}");
        }
    }
    let (_, buckets) = h.get(&h.account("/r2/buckets")).await;
    assert_eq!(buckets["result"], json!({"buckets": []}), "{buckets}");
    assert_eq!(buckets["result_info"]["cursor"], json!(""), "{buckets}");
    let (_, keys) = h
        .get(&h.account(&format!(
            "/storage/kv/namespaces/{}/keys",
            h.create_namespace("edge-keys").await
        )))
        .await;
    assert_eq!(keys["result"], json!([]));
    assert_eq!(keys["result_info"]["cursor"], json!(""), "{keys}");
    h.emulator.shutdown().await;
}
