//! Async tests of the Workers endpoints over real HTTP, with raw JSON and multipart bodies through
//! reqwest (never our client).

use std::path::Path;

use reqwest::multipart::{Form, Part};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::super::{Config, Emulator, start};
use super::zone_id;

const TOKEN: &str = "workers-test-token";
const ACCOUNT: &str = "0123456789abcdef0123456789abcdef";
const ZONE: &str = "example.com";
const SECRET_VALUE: &str = "s3cr3t-value-never-returned";
const WORKER: &str = "demo-worker";

async fn start_in(dir: &Path) -> Emulator {
    start(Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        state_dir: dir.to_path_buf(),
        token: TOKEN.into(),
        account_id: ACCOUNT.into(),
        zones: vec![ZONE.into(), "example.org".into()],
    })
    .await
    .expect("emulator starts")
}

struct Harness {
    emulator: Emulator,
    client: reqwest::Client,
    dir: tempfile::TempDir,
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

/// A module: (name, content type, content).
type Module<'a> = (&'a str, &'a str, &'a [u8]);

const INDEX_JS: Module<'static> = (
    "index.js",
    "application/javascript+module",
    b"export default { fetch() { return new Response('hi') }, scheduled() {} };\nexport class Counter {}\n",
);

impl Harness {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.emulator.base_url())
    }

    fn script(&self, rest: &str) -> String {
        format!("/accounts/{ACCOUNT}/workers/scripts/{WORKER}{rest}")
    }

    fn account(&self, rest: &str) -> String {
        format!("/accounts/{ACCOUNT}{rest}")
    }

    async fn send(&self, request: reqwest::RequestBuilder, what: &str) -> (StatusCode, String) {
        let response = request.bearer_auth(TOKEN).send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert!(
            !text.contains(SECRET_VALUE),
            "{what} answered a secret value: {text}"
        );
        (status, text)
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = self.client.request(method, self.url(path));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let (status, text) = self.send(request, path).await;
        let value = serde_json::from_str(&text)
            .unwrap_or_else(|error| panic!("{path}: not JSON ({error}): {text}"));
        (status, value)
    }

    async fn ok(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let (status, value) = self.call(method, path, body).await;
        assert_eq!(status, StatusCode::OK, "{path}: {value}");
        assert_eq!(value["success"], json!(true), "{value}");
        value["result"].clone()
    }

    async fn get(&self, path: &str) -> Value {
        self.ok(Method::GET, path, None).await
    }

    async fn error(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        status: u16,
        code: u64,
    ) -> Value {
        let (got, value) = self.call(method, path, body).await;
        assert_eq!(got.as_u16(), status, "{path}: {value}");
        assert_eq!(value["success"], json!(false), "{value}");
        assert_eq!(value["errors"][0]["code"], json!(code), "{path}: {value}");
        value
    }

    /// A multipart upload with a `metadata` (or `settings`) JSON part and modules.
    async fn upload_as(
        &self,
        method: Method,
        path: &str,
        json_part: &str,
        metadata: Value,
        modules: &[Module<'_>],
        user_agent: &str,
    ) -> (StatusCode, Value) {
        // Names as wrangler (undici) sends them: `name="lib/util.js"`, not percent-encoded.
        let mut form = Form::new()
            .percent_encode_noop()
            .part(json_part.to_owned(), Part::text(metadata.to_string()));
        for (name, content_type, content) in modules {
            let part = Part::bytes(content.to_vec())
                .file_name((*name).to_owned())
                .mime_str(content_type)
                .unwrap();
            form = form.part((*name).to_owned(), part);
        }
        let request = self
            .client
            .request(method, self.url(path))
            .header("User-Agent", user_agent)
            .multipart(form);
        let (status, text) = self.send(request, path).await;
        let value = serde_json::from_str(&text)
            .unwrap_or_else(|error| panic!("{path}: not JSON ({error}): {text}"));
        (status, value)
    }

    /// `PUT /scripts/{WORKER}` that must succeed.
    async fn put_script(&self, metadata: Value, modules: &[Module<'_>]) -> Value {
        let (status, value) = self
            .upload_as(
                Method::PUT,
                &self.script("?excludeScript=true&bindings_inherit=strict"),
                "metadata",
                metadata,
                modules,
                "wrangler/4.86.0",
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{value}");
        value["result"].clone()
    }

    /// `POST …/versions` that must succeed.
    async fn post_version(&self, metadata: Value, modules: &[Module<'_>]) -> Value {
        let (status, value) = self
            .upload_as(
                Method::POST,
                &self.script("/versions?bindings_inherit=strict"),
                "metadata",
                metadata,
                modules,
                "flareops-test",
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{value}");
        value["result"].clone()
    }

    async fn create_kv(&self, title: &str) -> String {
        let result = self
            .ok(
                Method::POST,
                &self.account("/storage/kv/namespaces"),
                Some(json!({ "title": title })),
            )
            .await;
        result["id"].as_str().unwrap().to_owned()
    }

    async fn create_d1(&self, name: &str) -> String {
        let result = self
            .ok(
                Method::POST,
                &self.account("/d1/database"),
                Some(json!({ "name": name })),
            )
            .await;
        result["uuid"].as_str().unwrap().to_owned()
    }

    async fn create_r2(&self, name: &str) {
        self.ok(
            Method::POST,
            &self.account("/r2/buckets"),
            Some(json!({ "name": name })),
        )
        .await;
    }

    /// A plain first upload: one module, no bindings.
    async fn simple_worker(&self) -> Value {
        self.put_script(
            json!({"main_module": "index.js", "compatibility_date": "2025-01-01", "bindings": []}),
            &[INDEX_JS],
        )
        .await
    }
}

fn metadata_with(bindings: Value) -> Value {
    json!({
        "main_module": "index.js",
        "bindings": bindings,
        "compatibility_date": "2025-01-01",
        "compatibility_flags": [],
    })
}

#[tokio::test]
async fn upload_then_versions_then_split_deployment() {
    let h = harness().await;
    h.error(
        Method::GET,
        "/accounts/0123456789abcdef0123456789abcdef/workers/services/demo-worker",
        None,
        404,
        10007,
    )
    .await;
    let kv = h.create_kv("cache").await;
    let d1 = h.create_d1("demo-db").await;
    h.create_r2("demo-bucket").await;

    let mut metadata = metadata_with(json!([
        {"name": "GREETING", "type": "plain_text", "text": "world"},
        {"name": "LEVEL", "type": "json", "json": {"a": 1}},
        {"name": "CACHE", "type": "kv_namespace", "namespace_id": kv},
        {"name": "COUNTER", "type": "durable_object_namespace", "class_name": "Counter"},
        {"name": "BUCKET", "type": "r2_bucket", "bucket_name": "demo-bucket"},
        {"name": "DB", "type": "d1", "database_id": d1},
        {"name": "API_KEY", "type": "secret_text", "text": SECRET_VALUE},
        {"name": "AI", "type": "ai"},
    ]));
    metadata["migrations"] =
        json!({"new_tag": "v1", "steps": [{"new_sqlite_classes": ["Counter"]}]});
    let uploaded = h.put_script(metadata, &[INDEX_JS]).await;
    assert_eq!(uploaded["id"], json!(WORKER));
    assert_eq!(uploaded["migration_tag"], json!("v1"));
    assert_eq!(uploaded["handlers"], json!(["fetch", "scheduled"]));
    assert_eq!(uploaded["last_deployed_from"], json!("wrangler"));
    let first = uploaded["deployment_id"].as_str().unwrap().to_owned();

    let service = h.get(&h.account("/workers/services/demo-worker")).await;
    assert_eq!(
        service["default_environment"]["environment"],
        json!("production")
    );
    assert_eq!(
        service["default_environment"]["script"]["tag"],
        uploaded["tag"]
    );
    assert_eq!(
        service["default_environment"]["script"]["last_deployed_from"],
        json!("wrangler")
    );

    let second = h
        .post_version(
            json!({
                "main_module": "index.js",
                "bindings": [{"name": "GREETING", "type": "plain_text", "text": "again"}],
                "compatibility_date": "2025-02-02",
                "compatibility_flags": ["nodejs_compat"],
                "keep_bindings": ["secret_text", "secret_key"],
                "annotations": {"workers/message": "second upload", "workers/tag": "v2"},
            }),
            &[(
                "index.js",
                "application/javascript+module",
                b"export default { fetch() { return new Response('v2') } };",
            )],
        )
        .await;
    let second_id = second["id"].as_str().unwrap().to_owned();
    assert_eq!(second["number"], json!(2));
    assert_eq!(second["metadata"]["has_preview"], json!(false));
    assert!(
        second["resources"]["script"]["etag"].is_string(),
        "{second}"
    );

    let listed = h.get(&h.script("/versions?deployable=true")).await;
    let ids: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [second_id.as_str(), first.as_str()], "newest first");
    assert_eq!(listed["items"][0]["metadata"]["source"], json!("api"));
    assert_eq!(
        listed["items"][0]["annotations"]["workers/message"],
        json!("second upload")
    );

    let version = h.get(&h.script(&format!("/versions/{second_id}"))).await;
    assert_eq!(version["number"], json!(2));
    assert_eq!(
        version["resources"]["script_runtime"],
        json!({
            "compatibility_date": "2025-02-02",
            "compatibility_flags": ["nodejs_compat"],
            "usage_model": "standard",
            "limits": {},
        })
    );
    assert_eq!(
        version["annotations"],
        json!({"workers/message": "second upload", "workers/tag": "v2", "workers/triggered_by": "upload"})
    );
    assert_eq!(
        version["metadata"]["author_email"],
        json!("local@flareops.invalid")
    );
    assert_eq!(version["metadata"]["hasPreview"], json!(false));
    assert!(version["metadata"]["created_on"].is_string());
    // GREETING re-sent, the secret kept, the rest dropped (not in keep_bindings).
    assert_eq!(
        version["resources"]["bindings"],
        json!([
            {"name": "GREETING", "type": "plain_text", "text": "again"},
            {"name": "API_KEY", "type": "secret_text"},
        ])
    );

    let first_version = h.get(&h.script(&format!("/versions/{first}"))).await;
    let bindings = &first_version["resources"]["bindings"];
    assert_eq!(
        bindings[5],
        json!({"name": "DB", "type": "d1", "id": d1}),
        "d1 is answered with id"
    );
    assert_eq!(
        bindings[4],
        json!({"name": "BUCKET", "type": "r2_bucket", "bucket_name": "demo-bucket"})
    );
    assert!(bindings[3]["namespace_id"].is_string(), "{bindings}");
    assert_eq!(
        bindings[7],
        json!({"name": "AI", "type": "ai"}),
        "unknown types are kept as sent"
    );

    let deployment = h
        .ok(
            Method::POST,
            &h.script("/deployments"),
            Some(json!({
                "strategy": "percentage",
                "versions": [
                    {"version_id": first, "percentage": 10},
                    {"version_id": second_id, "percentage": 90},
                ],
                "annotations": {"workers/message": "split"},
            })),
        )
        .await;
    assert_eq!(
        deployment["versions"],
        json!([{"version_id": first, "percentage": 10}, {"version_id": second_id, "percentage": 90}])
    );
    assert_eq!(deployment["annotations"]["workers/message"], json!("split"));
    assert_eq!(
        deployment["annotations"]["workers/triggered_by"],
        json!("promotion")
    );

    let deployments = h.get(&h.script("/deployments")).await;
    let list = deployments["deployments"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(
        list[0]["id"], deployment["id"],
        "the live deployment comes first"
    );
    assert_eq!(
        list[1]["versions"],
        json!([{"version_id": first, "percentage": 100}])
    );
    assert_eq!(
        list[1]["annotations"]["workers/triggered_by"],
        json!("upload")
    );
    assert!(list[0]["created_on"].as_str() > list[1]["created_on"].as_str());
    for key in [
        "id",
        "created_on",
        "source",
        "strategy",
        "author_email",
        "annotations",
        "versions",
    ] {
        assert!(
            list[0].get(key).is_some(),
            "deployment has {key}: {}",
            list[0]
        );
    }
    let one = h
        .get(&h.script(&format!("/deployments/{}", list[1]["id"].as_str().unwrap())))
        .await;
    assert_eq!(one["id"], list[1]["id"]);

    // The settings show the version serving most of the traffic.
    let settings = h.get(&h.script("/settings")).await;
    assert_eq!(settings["compatibility_date"], json!("2025-02-02"));

    // Rolling back to the first version alone.
    let rollback = h
        .ok(
            Method::POST,
            &h.script("/deployments?force=true"),
            Some(json!({"strategy": "percentage", "versions": [{"version_id": first, "percentage": 100}], "annotations": {"workers/message": "Rollback"}})),
        )
        .await;
    assert_eq!(
        rollback["annotations"]["workers/triggered_by"],
        json!("rollback")
    );
    assert_eq!(
        rollback["annotations"]["workers/rollback_from"],
        deployment["id"]
    );
    h.emulator.shutdown().await;
}

#[tokio::test]
async fn deployments_are_validated() {
    let h = harness().await;
    let first = h.simple_worker().await["deployment_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let second = h.post_version(metadata_with(json!([])), &[INDEX_JS]).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let third = h.post_version(metadata_with(json!([])), &[INDEX_JS]).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = h.script("/deployments");
    let body = |versions: Value| Some(json!({"strategy": "percentage", "versions": versions}));
    h.error(
        Method::POST,
        &path,
        body(json!([{"version_id": first, "percentage": 50}, {"version_id": second, "percentage": 40}])),
        400,
        10021,
    )
    .await;
    h.error(
        Method::POST,
        &path,
        body(json!([
            {"version_id": first, "percentage": 20},
            {"version_id": second, "percentage": 40},
            {"version_id": third, "percentage": 40},
        ])),
        400,
        10021,
    )
    .await;
    h.error(
        Method::POST,
        &path,
        body(json!([{"version_id": "00000000-0000-4000-8000-000000000000", "percentage": 100}])),
        400,
        10021,
    )
    .await;
    h.error(Method::POST, &path, body(json!([])), 400, 10021)
        .await;
    h.error(
        Method::POST,
        &path,
        Some(json!({"versions": "x"})),
        400,
        10021,
    )
    .await;
    h.error(
        Method::POST,
        &format!("/accounts/{ACCOUNT}/workers/scripts/nope/deployments"),
        body(json!([{"version_id": first, "percentage": 100}])),
        404,
        10007,
    )
    .await;
    let deployments = h.get(&path).await;
    assert_eq!(
        deployments["deployments"].as_array().unwrap().len(),
        1,
        "nothing was recorded"
    );

    let live = deployments["deployments"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    h.error(
        Method::DELETE,
        &h.script(&format!("/deployments/{live}")),
        None,
        400,
        10021,
    )
    .await;
    h.ok(
        Method::POST,
        &path,
        body(json!([{"version_id": third, "percentage": 100}])),
    )
    .await;
    h.ok(
        Method::DELETE,
        &h.script(&format!("/deployments/{live}")),
        None,
    )
    .await;
    h.error(
        Method::GET,
        &h.script(&format!("/deployments/{live}")),
        None,
        404,
        10336,
    )
    .await;
    h.error(
        Method::GET,
        &h.script("/versions/not-a-version"),
        None,
        404,
        10071,
    )
    .await;
    h.emulator.shutdown().await;
}

#[tokio::test]
async fn bindings_are_checked_and_carried_over() {
    let h = harness().await;
    let strict_path = h.script("?bindings_inherit=strict");
    let upload = |bindings: Value| {
        h.upload_as(
            Method::PUT,
            &strict_path,
            "metadata",
            metadata_with(bindings),
            &[INDEX_JS],
            "curl/8",
        )
    };
    let (status, value) = upload(json!([{"name": "CACHE", "type": "kv_namespace", "namespace_id": "0f2ac74b498b48028cb68387c421e279"}])).await;
    assert_eq!(
        (status.as_u16(), value["errors"][0]["code"].clone()),
        (400, json!(10042)),
        "{value}"
    );
    let (status, value) =
        upload(json!([{"name": "DB", "type": "d1", "id": "4e1c28a9-90e4-41da-8b4b-6cf36e5abb29"}]))
            .await;
    assert_eq!(status.as_u16(), 400);
    assert_eq!(value["errors"][0]["code"], json!(10021));
    assert_eq!(
        value["errors"][0]["message"],
        json!("binding DB of type d1 must have a valid `id` specified"),
        "the exact text wrangler recognizes"
    );
    let (_, value) =
        upload(json!([{"name": "BUCKET", "type": "r2_bucket", "bucket_name": "missing"}])).await;
    assert_eq!(value["errors"][0]["code"], json!(10085), "{value}");
    let (_, value) = upload(json!([{"name": "X", "type": "inherit"}])).await;
    assert_eq!(value["errors"][0]["code"], json!(10057), "{value}");
    assert_eq!(
        value["errors"][0]["message"],
        json!("inherit binding 'X' is invalid")
    );
    let (_, value) = upload(
        json!([{"name": "COUNTER", "type": "durable_object_namespace", "class_name": "Nope"}]),
    )
    .await;
    assert_eq!(value["errors"][0]["code"], json!(10061), "{value}");
    let (_, value) = upload(json!([
        {"name": "A", "type": "plain_text", "text": "1"},
        {"name": "A", "type": "plain_text", "text": "2"},
    ]))
    .await;
    assert_eq!(value["errors"][0]["code"], json!(10053), "{value}");
    let (status, value) = h
        .upload_as(
            Method::PUT,
            &h.script(""),
            "metadata",
            json!({"main_module": "missing.js"}),
            &[INDEX_JS],
            "curl/8",
        )
        .await;
    assert_eq!(status.as_u16(), 400);
    assert_eq!(
        value["errors"][0]["message"],
        json!("No such module \"missing.js\".")
    );
    h.error(Method::GET, &h.script("/versions"), None, 404, 10007)
        .await;
    let (status, value) = h
        .call(
            Method::PUT,
            &h.script(""),
            Some(json!({"main_module": "index.js"})),
        )
        .await;
    assert_eq!(
        (status.as_u16(), value["errors"][0]["code"].clone()),
        (400, json!(10001))
    );

    let kv = h.create_kv("cache").await;
    h.put_script(
        metadata_with(json!([
            {"name": "CACHE", "type": "kv_namespace", "namespace_id": kv},
            {"name": "GREETING", "type": "plain_text", "text": "hi"},
            {"name": "API_KEY", "type": "secret_text", "text": SECRET_VALUE},
        ])),
        &[INDEX_JS],
    )
    .await;
    let version = h
        .post_version(
            metadata_with(json!([
                {"name": "CACHE2", "type": "inherit", "old_name": "CACHE"},
                {"name": "API_KEY_COPY", "type": "inherit", "old_name": "API_KEY"},
            ]))
            .as_object()
            .map(|object| {
                let mut object = object.clone();
                object.insert("keep_bindings".into(), json!(["plain_text"]));
                Value::Object(object)
            })
            .unwrap(),
            &[INDEX_JS],
        )
        .await;
    assert_eq!(
        version["resources"]["bindings"],
        json!([
            {"name": "CACHE2", "type": "kv_namespace", "namespace_id": kv},
            {"name": "API_KEY_COPY", "type": "secret_text"},
            {"name": "GREETING", "type": "plain_text", "text": "hi"},
            {"name": "API_KEY", "type": "secret_text"},
        ]),
        "inherit renames, keep_bindings keeps plain_text, secrets are always kept"
    );
    h.emulator.shutdown().await;
}

#[tokio::test]
async fn secrets_are_never_returned() {
    let h = harness().await;
    h.error(
        Method::PUT,
        &h.script("/secrets"),
        Some(json!({"name": "API_KEY", "text": SECRET_VALUE, "type": "secret_text"})),
        404,
        10007,
    )
    .await;
    h.simple_worker().await;
    let put = h
        .ok(
            Method::PUT,
            &h.script("/secrets"),
            Some(json!({"name": "API_KEY", "text": SECRET_VALUE, "type": "secret_text"})),
        )
        .await;
    assert_eq!(put, json!({"name": "API_KEY", "type": "secret_text"}));
    assert_eq!(
        h.get(&h.script("/secrets")).await,
        json!([{"name": "API_KEY", "type": "secret_text"}])
    );
    assert_eq!(
        h.get(&h.script("/secrets/API_KEY")).await,
        json!({"name": "API_KEY", "type": "secret_text"})
    );
    // The change made a new version (triggered by "secret") and deployed it alone.
    let versions = h.get(&h.script("/versions")).await;
    assert_eq!(versions["items"].as_array().unwrap().len(), 2);
    assert_eq!(
        versions["items"][0]["annotations"]["workers/triggered_by"],
        json!("secret")
    );
    let deployments = h.get(&h.script("/deployments")).await;
    assert_eq!(
        deployments["deployments"][0]["versions"],
        json!([{"version_id": versions["items"][0]["id"], "percentage": 100}])
    );
    // Every read: `send` asserts that no answer contains the value.
    for item in versions["items"].as_array().unwrap() {
        h.get(&h.script(&format!("/versions/{}", item["id"].as_str().unwrap())))
            .await;
    }
    h.get(&h.script("/settings")).await;
    h.get(&h.account("/workers/scripts")).await;
    h.get(&h.account("/workers/services/demo-worker")).await;
    let request = h.client.get(h.url(&h.script("/content/v2")));
    h.send(request, "content/v2").await;

    // A version uploaded but not deployed blocks secret changes (10215).
    h.post_version(metadata_with(json!([])), &[INDEX_JS]).await;
    h.error(
        Method::PUT,
        &h.script("/secrets"),
        Some(json!({"name": "OTHER", "text": SECRET_VALUE, "type": "secret_text"})),
        400,
        10215,
    )
    .await;
    let newest = h.get(&h.script("/versions")).await["items"][0]["id"].clone();
    assert_eq!(
        h.get(&h.script(&format!("/versions/{}", newest.as_str().unwrap())))
            .await["resources"]["bindings"],
        json!([{"name": "API_KEY", "type": "secret_text"}]),
        "the secret was carried into the uploaded version"
    );
    h.ok(
        Method::POST,
        &h.script("/deployments"),
        Some(json!({"versions": [{"version_id": newest, "percentage": 100}]})),
    )
    .await;
    let bulk = h
        .ok(
            Method::PATCH,
            &h.script("/secrets-bulk"),
            Some(json!({"secrets": {"OTHER": {"text": SECRET_VALUE, "type": "secret_text"}}})),
        )
        .await;
    assert_eq!(bulk.as_array().unwrap().len(), 2, "{bulk}");
    h.error(
        Method::PUT,
        &h.script("/secrets"),
        Some(json!({"name": "K", "text": 7, "type": "secret_text"})),
        400,
        10021,
    )
    .await;
    h.ok(
        Method::DELETE,
        &h.script("/secrets/API_KEY?url_encoded=true"),
        None,
    )
    .await;
    h.ok(Method::DELETE, &h.script("/secrets/OTHER"), None)
        .await;
    assert_eq!(h.get(&h.script("/secrets")).await, json!([]));
    h.error(
        Method::DELETE,
        &h.script("/secrets/API_KEY"),
        None,
        404,
        10056,
    )
    .await;
    h.error(Method::GET, &h.script("/secrets/API_KEY"), None, 404, 10056)
        .await;
    h.emulator.shutdown().await;
}

/// Splits a `multipart/form-data` body into `(name, content type, content)` parts.
fn parse_multipart(content_type: &str, body: &[u8]) -> Vec<(String, String, Vec<u8>)> {
    let boundary = content_type
        .split("boundary=")
        .nth(1)
        .expect("a boundary")
        .trim_matches('"');
    let delimiter = format!("--{boundary}");
    let text = body.to_vec();
    let mut parts = Vec::new();
    let mut rest = &text[..];
    loop {
        let start = find(rest, delimiter.as_bytes()).expect("a delimiter");
        rest = &rest[start + delimiter.len()..];
        if rest.starts_with(b"--") {
            break;
        }
        rest = &rest[2..];
        let headers_end = find(rest, b"\r\n\r\n").expect("part headers");
        let headers = String::from_utf8(rest[..headers_end].to_vec()).unwrap();
        rest = &rest[headers_end + 4..];
        let end = find(rest, format!("\r\n{delimiter}").as_bytes()).expect("part end");
        let content = rest[..end].to_vec();
        rest = &rest[end + 2..];
        let name = headers
            .split("name=\"")
            .nth(1)
            .and_then(|tail| tail.split('"').next())
            .unwrap()
            .to_owned();
        let part_type = headers
            .lines()
            .find_map(|line| line.strip_prefix("Content-Type: "))
            .unwrap()
            .to_owned();
        parts.push((name, part_type, content));
    }
    parts
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

#[tokio::test]
async fn content_v2_round_trips_the_modules() {
    let h = harness().await;
    let wasm: &[u8] = &[
        0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0xff, 0x0d, 0x0a,
    ];
    let modules: [Module<'_>; 4] = [
        INDEX_JS,
        (
            "lib/util.js",
            "application/javascript+module",
            b"export const x = 1;\r\n--not-a-boundary\r\n",
        ),
        ("data.txt", "text/plain", b"hello"),
        ("add.wasm", "application/wasm", wasm),
    ];
    let first = h
        .put_script(
            json!({"main_module": "index.js", "compatibility_date": "2025-01-01"}),
            &modules,
        )
        .await["deployment_id"]
        .as_str()
        .unwrap()
        .to_owned();
    h.post_version(
        metadata_with(json!([])),
        &[(
            "index.js",
            "application/javascript+module",
            b"export default {}",
        )],
    )
    .await;

    for query in [format!("?version={first}"), String::new()] {
        let response = h
            .client
            .get(h.url(&h.script(&format!("/content/v2{query}"))))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["cf-entrypoint"], "index.js");
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            content_type.starts_with("multipart/form-data; boundary="),
            "{content_type}"
        );
        let body = response.bytes().await.unwrap();
        let parts = parse_multipart(&content_type, &body);
        let expected: Vec<(String, String, Vec<u8>)> = modules
            .iter()
            .map(|(name, content_type, content)| {
                (
                    (*name).to_owned(),
                    (*content_type).to_owned(),
                    content.to_vec(),
                )
            })
            .collect();
        assert_eq!(parts, expected, "the live version is still the first one");
    }
    h.error(
        Method::GET,
        &h.script("/content/v2?version=nope"),
        None,
        404,
        10071,
    )
    .await;
    h.emulator.shutdown().await;
}

#[tokio::test]
async fn schedules_replace_the_set() {
    let h = harness().await;
    h.error(
        Method::PUT,
        &h.script("/schedules"),
        Some(json!([{"cron": "* * * * *"}])),
        404,
        10007,
    )
    .await;
    h.simple_worker().await;
    assert_eq!(
        h.get(&h.script("/schedules")).await,
        json!({"schedules": []})
    );
    let first = h
        .ok(
            Method::PUT,
            &h.script("/schedules"),
            Some(json!([{"cron": "*/5 * * * *"}, {"cron": "0 12 * * MON-FRI"}])),
        )
        .await;
    assert_eq!(first["schedules"].as_array().unwrap().len(), 2);
    let kept_created = first["schedules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|schedule| schedule["cron"] == "0 12 * * MON-FRI")
        .unwrap()["created_on"]
        .clone();
    let second = h
        .ok(
            Method::PUT,
            &h.script("/schedules"),
            Some(json!([{"cron": "0 12 * * MON-FRI"}, {"cron": "0 0 1 * *"}])),
        )
        .await;
    let crons: Vec<&str> = second["schedules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|schedule| schedule["cron"].as_str().unwrap())
        .collect();
    assert_eq!(crons.len(), 2);
    assert!(
        crons.contains(&"0 12 * * MON-FRI") && crons.contains(&"0 0 1 * *"),
        "{second}"
    );
    let kept = second["schedules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|schedule| schedule["cron"] == "0 12 * * MON-FRI")
        .unwrap();
    assert_eq!(
        kept["created_on"], kept_created,
        "an unchanged cron keeps created_on"
    );
    assert!(kept["modified_on"].is_string());
    h.error(
        Method::PUT,
        &h.script("/schedules"),
        Some(json!([{"cron": "* * *"}])),
        400,
        10021,
    )
    .await;
    assert_eq!(
        h.get(&h.script("/schedules")).await,
        second,
        "a refused PUT changes nothing"
    );
    h.ok(Method::PUT, &h.script("/schedules"), Some(json!([])))
        .await;
    assert_eq!(
        h.get(&h.script("/schedules")).await,
        json!({"schedules": []})
    );
    h.emulator.shutdown().await;
}

#[tokio::test]
async fn zones_and_routes_on_and_off_the_zone() {
    let h = harness().await;
    let zone = zone_id(ZONE);
    let (status, zones) = h
        .call(
            Method::GET,
            &format!("/zones?name={ZONE}&account.id={ACCOUNT}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(zones["result"].as_array().unwrap().len(), 1, "{zones}");
    assert_eq!(zones["result"][0]["id"], json!(zone));
    assert_eq!(zones["result"][0]["status"], json!("active"));
    assert_eq!(zones["result"][0]["account"]["id"], json!(ACCOUNT));
    assert_eq!(zones["result_info"]["total_count"], json!(1));
    assert_eq!(h.get("/zones?name=app.example.com").await, json!([]));
    assert_eq!(
        h.get("/zones?account.id=ffffffffffffffffffffffffffffffff")
            .await,
        json!([])
    );
    assert_eq!(h.get("/zones").await.as_array().unwrap().len(), 2);
    assert_eq!(h.get(&format!("/zones/{zone}")).await["name"], json!(ZONE));
    h.error(Method::GET, "/zones/0000", None, 400, 7003).await;

    let routes = format!("/zones/{zone}/workers/routes");
    h.error(
        Method::POST,
        &routes,
        Some(json!({"pattern": "api.example.com/*", "script": WORKER})),
        400,
        10019,
    )
    .await;
    h.simple_worker().await;
    let created = h
        .ok(
            Method::POST,
            &routes,
            Some(json!({"pattern": "api.example.com/*", "script": WORKER})),
        )
        .await;
    assert_eq!(created["pattern"], json!("api.example.com/*"));
    assert_eq!(created["script"], json!(WORKER));
    h.error(
        Method::POST,
        &routes,
        Some(json!({"pattern": "api.example.com/*"})),
        409,
        10020,
    )
    .await;
    h.error(
        Method::POST,
        &routes,
        Some(json!({"pattern": "api.example.org/*"})),
        400,
        10022,
    )
    .await;
    h.error(
        Method::POST,
        &routes,
        Some(json!({"pattern": "bad pattern"})),
        400,
        10022,
    )
    .await;
    h.error(
        Method::POST,
        "/zones/0000/workers/routes",
        Some(json!({"pattern": "a.example.com/*"})),
        400,
        7003,
    )
    .await;
    let unassigned = h
        .ok(
            Method::POST,
            &routes,
            Some(json!({"pattern": "*.example.com/static/*"})),
        )
        .await;
    assert!(unassigned.get("script").is_none(), "{unassigned}");
    let id = created["id"].as_str().unwrap();
    assert_eq!(h.get(&format!("{routes}/{id}")).await, created);
    let moved = h
        .ok(
            Method::PUT,
            &format!("{routes}/{id}"),
            Some(json!({"pattern": "www.example.com/*", "script": WORKER})),
        )
        .await;
    assert_eq!(moved["pattern"], json!("www.example.com/*"));

    // The script-level PUT replaces the script's routes (wrangler's call).
    let replaced = h
        .ok(
            Method::PUT,
            &h.script("/routes"),
            Some(json!([
                {"pattern": "api.example.com/*", "zone_name": "example.com"},
                {"pattern": "shop.example.org/*"},
                {"pattern": "*.example.com/static/*", "zone_id": zone},
            ])),
        )
        .await;
    let patterns: Vec<&str> = replaced
        .as_array()
        .unwrap()
        .iter()
        .map(|route| route["pattern"].as_str().unwrap())
        .collect();
    assert_eq!(
        patterns,
        [
            "*.example.com/static/*",
            "api.example.com/*",
            "shop.example.org/*"
        ]
    );
    assert_eq!(replaced[2]["zone_name"], json!("example.org"));
    let listed = h.get(&routes).await;
    assert_eq!(
        listed,
        json!([
            {"id": unassigned["id"], "pattern": "*.example.com/static/*", "script": WORKER},
            {"id": listed[1]["id"], "pattern": "api.example.com/*", "script": WORKER},
        ]),
        "www.example.com/* was dropped, the unassigned route taken over"
    );
    h.error(
        Method::PUT,
        &h.script("/routes"),
        Some(json!([{"pattern": "api.example.net/*"}])),
        400,
        10022,
    )
    .await;
    h.error(
        Method::PUT,
        &h.script("/routes"),
        Some(json!([{"pattern": "api.example.org/*", "zone_name": "example.com"}])),
        400,
        10022,
    )
    .await;
    // Another script cannot take a route that is already held.
    h.ok(
        Method::POST,
        &routes,
        Some(json!({"pattern": "other.example.com/*"})),
    )
    .await;
    let other = format!("/accounts/{ACCOUNT}/workers/scripts/other-worker");
    let (status, _) = h
        .upload_as(
            Method::PUT,
            &other,
            "metadata",
            metadata_with(json!([])),
            &[INDEX_JS],
            "curl/8",
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    h.error(
        Method::PUT,
        &format!("{other}/routes"),
        Some(json!([{"pattern": "api.example.com/*"}])),
        409,
        10020,
    )
    .await;
    let deleted = h
        .ok(
            Method::DELETE,
            &format!("{routes}/{}", listed[1]["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(deleted, json!({"id": listed[1]["id"]}));
    h.error(
        Method::GET,
        &format!("{routes}/{}", listed[1]["id"].as_str().unwrap()),
        None,
        404,
        10009,
    )
    .await;
    assert_eq!(
        h.get(&h.script("/routes")).await.as_array().unwrap().len(),
        2
    );
    h.emulator.shutdown().await;
}

#[tokio::test]
async fn custom_domains_attach_list_detach() {
    let h = harness().await;
    let domains = h.account("/workers/domains");
    h.error(
        Method::PUT,
        &domains,
        Some(json!({"hostname": "app.example.com", "service": WORKER})),
        404,
        10007,
    )
    .await;
    h.simple_worker().await;
    let attached = h
        .ok(
            Method::PUT,
            &domains,
            Some(
                json!({"hostname": "app.example.com", "service": WORKER, "zone_id": zone_id(ZONE)}),
            ),
        )
        .await;
    assert_eq!(attached["hostname"], json!("app.example.com"));
    assert_eq!(attached["zone_name"], json!(ZONE));
    assert_eq!(attached["environment"], json!("production"));
    let again = h
        .ok(
            Method::PUT,
            &domains,
            Some(json!({"hostname": "app.example.com", "service": WORKER})),
        )
        .await;
    assert_eq!(again["id"], attached["id"], "attaching twice is idempotent");
    h.error(
        Method::PUT,
        &domains,
        Some(json!({"hostname": "app.example.net", "service": WORKER})),
        400,
        10021,
    )
    .await;
    h.error(
        Method::PUT,
        &domains,
        Some(json!({"hostname": "app.example.com", "service": WORKER, "zone_name": "example.org"})),
        400,
        10021,
    )
    .await;
    assert_eq!(
        h.get(&format!("{domains}?service={WORKER}")).await,
        json!([attached])
    );
    assert_eq!(
        h.get(&format!("{domains}?hostname=other.example.com"))
            .await,
        json!([])
    );
    let id = attached["id"].as_str().unwrap();
    assert_eq!(h.get(&format!("{domains}/{id}")).await, attached);
    assert_eq!(h.get(&format!("{domains}/records/{id}")).await, attached);

    let other = format!("/accounts/{ACCOUNT}/workers/scripts/other-worker");
    h.upload_as(
        Method::PUT,
        &other,
        "metadata",
        metadata_with(json!([])),
        &[INDEX_JS],
        "curl/8",
    )
    .await;
    h.error(
        Method::PUT,
        &domains,
        Some(json!({"hostname": "app.example.com", "service": "other-worker"})),
        409,
        100116,
    )
    .await;
    let changeset = h
        .ok(
            Method::POST,
            &format!("{other}/domains/changeset?replace_state=true"),
            Some(json!([{"hostname": "app.example.com"}, {"hostname": "new.example.org"}])),
        )
        .await;
    assert_eq!(changeset["added"][0]["hostname"], json!("new.example.org"));
    assert_eq!(changeset["updated"][0]["modified"], json!(true));
    assert_eq!(changeset["conflicting"], json!([]));
    assert_eq!(
        h.get(&domains).await.as_array().unwrap().len(),
        1,
        "a changeset changes nothing"
    );
    let records = h
        .ok(
            Method::PUT,
            &format!("{other}/domains/records"),
            Some(json!({
                "override_scope": true,
                "override_existing_origin": true,
                "override_existing_dns_record": true,
                "origins": [{"hostname": "app.example.com"}, {"hostname": "new.example.org"}],
            })),
        )
        .await;
    assert_eq!(records.as_array().unwrap().len(), 2, "{records}");
    assert_eq!(
        h.get(&format!("{domains}?service={WORKER}")).await,
        json!([])
    );
    assert_eq!(
        h.get(&format!(
            "{domains}?service=other-worker&zone_name=example.org"
        ))
        .await
        .as_array()
        .unwrap()
        .len(),
        1
    );
    h.ok(Method::DELETE, &format!("{domains}/{id}"), None).await;
    h.error(Method::GET, &format!("{domains}/{id}"), None, 404, 100114)
        .await;
    h.error(
        Method::DELETE,
        &format!("{domains}/{id}"),
        None,
        404,
        100114,
    )
    .await;
    h.emulator.shutdown().await;
}

#[tokio::test]
async fn migrations_manage_durable_object_namespaces() {
    let h = harness().await;
    let namespaces = h.account("/workers/durable_objects/namespaces?per_page=1000");
    assert_eq!(h.get(&namespaces).await, json!([]));
    let mut metadata = metadata_with(json!([
        {"name": "COUNTER", "type": "durable_object_namespace", "class_name": "Counter"},
    ]));
    metadata["migrations"] = json!({"new_tag": "v1", "steps": [{"new_sqlite_classes": ["Counter"]}, {"new_classes": ["Room"]}]});
    h.put_script(metadata, &[INDEX_JS]).await;
    let listed = h.get(&namespaces).await;
    assert_eq!(listed.as_array().unwrap().len(), 2);
    assert_eq!(listed[0]["name"], json!("demo-worker_Counter"));
    assert_eq!(listed[0]["class"], json!("Counter"));
    assert_eq!(listed[0]["script"], json!(WORKER));
    assert_eq!(listed[0]["use_sqlite"], json!(true));
    assert_eq!(listed[1]["use_sqlite"], json!(false));
    let scripts = h.get(&h.account("/workers/scripts")).await;
    assert_eq!(scripts[0]["id"], json!(WORKER));
    assert_eq!(scripts[0]["migration_tag"], json!("v1"));

    // A wrong old_tag is refused and changes nothing.
    let mut stale = metadata_with(json!([]));
    stale["migrations"] =
        json!({"old_tag": "v0", "new_tag": "v2", "steps": [{"deleted_classes": ["Room"]}]});
    let (status, value) = h
        .upload_as(
            Method::PUT,
            &h.script(""),
            "metadata",
            stale,
            &[INDEX_JS],
            "curl/8",
        )
        .await;
    assert_eq!(status.as_u16(), 400, "{value}");
    assert_eq!(value["errors"][0]["code"], json!(10021));
    let mut again = metadata_with(json!([]));
    again["migrations"] = json!({"new_tag": "v1", "new_classes": ["Counter"]});
    let (_, value) = h
        .upload_as(
            Method::PUT,
            &h.script(""),
            "metadata",
            again,
            &[INDEX_JS],
            "curl/8",
        )
        .await;
    assert_eq!(
        value["errors"][0]["code"],
        json!(10021),
        "old_tag is required once a tag exists"
    );

    // The flat form: rename and delete.
    let mut next = metadata_with(json!([]));
    next["migrations"] = json!({
        "old_tag": "v1",
        "new_tag": "v2",
        "renamed_classes": [{"from": "Counter", "to": "Tally"}],
        "deleted_classes": ["Room"],
    });
    h.put_script(next, &[INDEX_JS]).await;
    let listed = h.get(&namespaces).await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["class"], json!("Tally"));
    assert_eq!(
        h.get(&h.account("/workers/scripts")).await[0]["migration_tag"],
        json!("v2")
    );
    let mut missing = metadata_with(json!([]));
    missing["migrations"] = json!({"old_tag": "v2", "new_tag": "v3", "deleted_classes": ["Room"]});
    let (status, value) = h
        .upload_as(
            Method::PUT,
            &h.script(""),
            "metadata",
            missing,
            &[INDEX_JS],
            "curl/8",
        )
        .await;
    assert_eq!(
        (status.as_u16(), value["errors"][0]["code"].clone()),
        (404, json!(10061))
    );

    // Deleting the script deletes its namespaces, versions and deployments.
    h.ok(
        Method::DELETE,
        &h.account("/workers/services/demo-worker?force=true"),
        None,
    )
    .await;
    assert_eq!(h.get(&namespaces).await, json!([]));
    h.error(Method::GET, &h.script("/versions"), None, 404, 10007)
        .await;
    assert_eq!(h.get(&h.account("/workers/scripts")).await, json!([]));
    h.error(Method::DELETE, &h.script(""), None, 404, 10007)
        .await;
    h.emulator.shutdown().await;
}

#[tokio::test]
async fn settings_subdomain_and_script_settings() {
    let h = harness().await;
    h.error(Method::GET, &h.script("/settings"), None, 404, 10007)
        .await;
    h.simple_worker().await;
    let subdomain = h.get(&h.account("/workers/subdomain")).await;
    assert_eq!(subdomain, json!({"subdomain": "flareops-01234567"}));
    h.ok(
        Method::PUT,
        &h.account("/workers/subdomain"),
        Some(json!({"subdomain": "my-team"})),
    )
    .await;
    assert_eq!(
        h.get(&h.account("/workers/subdomain")).await["subdomain"],
        json!("my-team")
    );
    assert_eq!(
        h.get(&h.script("/subdomain")).await,
        json!({"enabled": false, "previews_enabled": false})
    );
    let posted = h
        .ok(
            Method::POST,
            &h.script("/subdomain"),
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!(posted, json!({"enabled": true, "previews_enabled": false}));

    let patched = h
        .ok(
            Method::PATCH,
            &h.script("/script-settings"),
            Some(json!({"observability": {"enabled": true}, "tags": ["team:a"]})),
        )
        .await;
    assert_eq!(
        patched,
        json!({"logpush": false, "observability": {"enabled": true}, "tags": ["team:a"], "tail_consumers": null})
    );
    assert_eq!(h.get(&h.script("/script-settings")).await, patched);
    h.error(
        Method::PATCH,
        &h.script("/script-settings"),
        Some(json!({"logpush": "yes"})),
        400,
        10021,
    )
    .await;

    let (status, settings) = h
        .upload_as(
            Method::PATCH,
            &h.script("/settings"),
            "settings",
            json!({"compatibility_date": "2025-06-01", "bindings": [{"name": "MODE", "type": "plain_text", "text": "on"}]}),
            &[],
            "curl/8",
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{settings}");
    assert_eq!(
        settings["result"]["compatibility_date"],
        json!("2025-06-01")
    );
    assert_eq!(
        settings["result"]["bindings"],
        json!([{"name": "MODE", "type": "plain_text", "text": "on"}])
    );
    assert_eq!(settings["result"]["tags"], json!(["team:a"]));
    let versions = h.get(&h.script("/versions")).await;
    assert_eq!(
        versions["items"].as_array().unwrap().len(),
        2,
        "a versioned change makes a version"
    );
    h.emulator.shutdown().await;
}

/// `wrangler secret bulk` re-sends every binding it does not change as `{name, type}`: that keeps
/// the binding as it is (a plain_text's text, a secret's value); a bare binding with nothing to
/// keep is still refused.
#[tokio::test]
async fn a_settings_patch_keeps_bindings_given_by_name_and_type() {
    let h = harness().await;
    h.put_script(
        json!({
            "main_module": "index.js",
            "bindings": [
                {"name": "GREETING", "type": "plain_text", "text": "hello"},
                {"name": "OLD_SECRET", "type": "secret_text", "text": SECRET_VALUE},
            ],
        }),
        &[INDEX_JS],
    )
    .await;
    let (status, patched) = h
        .upload_as(
            Method::PATCH,
            &h.script("/settings"),
            "settings",
            json!({"bindings": [
                {"name": "GREETING", "type": "plain_text"},
                {"name": "OLD_SECRET", "type": "secret_text"},
                {"name": "NEW_SECRET", "type": "secret_text", "text": "new-value"},
            ]}),
            &[],
            "wrangler/4.86.0",
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(
        patched["result"]["bindings"],
        json!([
            {"name": "GREETING", "type": "plain_text", "text": "hello"},
            {"name": "OLD_SECRET", "type": "secret_text"},
            {"name": "NEW_SECRET", "type": "secret_text"},
        ])
    );
    let secrets = h.get(&h.script("/secrets")).await;
    assert_eq!(
        secrets,
        json!([
            {"name": "OLD_SECRET", "type": "secret_text"},
            {"name": "NEW_SECRET", "type": "secret_text"},
        ])
    );
    // The kept secret still carries its value into later versions (it is copied, not dropped).
    let versions = h.get(&h.script("/versions")).await;
    let newest = versions["items"][0]["id"].as_str().unwrap().to_owned();
    let stored: String = h
        .emulator
        .state
        .store
        .call(move |conn| {
            Ok(conn.query_row(
                "SELECT binding FROM worker_version_secrets WHERE version_id = ?1 AND name = 'OLD_SECRET'",
                [&newest],
                |row| row.get(0),
            )?)
        })
        .await
        .unwrap();
    assert!(stored.contains(SECRET_VALUE), "the value was kept");

    let (status, refused) = h
        .upload_as(
            Method::PATCH,
            &h.script("/settings"),
            "settings",
            json!({"bindings": [{"name": "MISSING", "type": "plain_text"}]}),
            &[],
            "wrangler/4.86.0",
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert_eq!(refused["errors"][0]["code"], json!(10021), "{refused}");
    h.emulator.shutdown().await;
}

#[tokio::test]
async fn restart_keeps_workers_state() {
    let h = harness().await;
    h.simple_worker().await;
    h.ok(
        Method::PUT,
        &h.script("/secrets"),
        Some(json!({"name": "API_KEY", "text": SECRET_VALUE, "type": "secret_text"})),
    )
    .await;
    h.ok(
        Method::PUT,
        &h.script("/schedules"),
        Some(json!([{"cron": "*/5 * * * *"}])),
    )
    .await;
    h.ok(
        Method::PUT,
        &h.script("/routes"),
        Some(json!([{"pattern": "api.example.com/*"}])),
    )
    .await;
    let versions = h.get(&h.script("/versions")).await;
    let deployments = h.get(&h.script("/deployments")).await;
    let content_path = h.script("/content/v2");
    let request = h.client.get(h.url(&content_path));
    let (_, content) = h.send(request, "content").await;
    let Harness {
        emulator,
        client,
        dir,
    } = h;
    emulator.shutdown().await;

    let emulator = start_in(dir.path()).await;
    let h = Harness {
        emulator,
        client,
        dir,
    };
    assert_eq!(h.get(&h.script("/versions")).await, versions);
    assert_eq!(h.get(&h.script("/deployments")).await, deployments);
    assert_eq!(
        h.get(&h.script("/secrets")).await,
        json!([{"name": "API_KEY", "type": "secret_text"}])
    );
    assert_eq!(
        h.get(&h.script("/schedules")).await["schedules"][0]["cron"],
        json!("*/5 * * * *")
    );
    assert_eq!(
        h.get(&h.script("/routes")).await[0]["pattern"],
        json!("api.example.com/*")
    );
    assert_eq!(
        h.get(&format!("/zones?name={ZONE}")).await[0]["id"],
        json!(zone_id(ZONE))
    );
    let request = h.client.get(h.url(&content_path));
    let (_, after) = h.send(request, "content").await;
    let strip = |text: &str| text.split("----flareopsemulator").count();
    assert_eq!(strip(&after), strip(&content));
    assert!(after.contains("export default { fetch()"), "{after}");
    h.emulator.shutdown().await;
}

#[tokio::test]
async fn draft_worker_from_wrangler_secret_put() {
    // What `wrangler secret put` uploads when the Worker does not exist yet: no query, no
    // compatibility date, the main module named like the script.
    let h = harness().await;
    let (status, value) = h
        .upload_as(
            Method::PUT,
            &h.script(""),
            "metadata",
            json!({"main_module": WORKER, "bindings": [], "logpush": false}),
            &[(
                WORKER,
                "application/javascript+module",
                b"export default { fetch() {} }",
            )],
            "wrangler/4.86.0",
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{value}");
    assert!(
        value["result"].get("compatibility_date").is_none(),
        "{value}"
    );
    h.ok(
        Method::PUT,
        &h.script("/secrets"),
        Some(json!({"name": "API_KEY", "text": SECRET_VALUE, "type": "secret_text"})),
    )
    .await;
    let settings = h.get(&h.script("/settings")).await;
    assert_eq!(settings["compatibility_date"], Value::Null);
    assert_eq!(
        settings["bindings"],
        json!([{"name": "API_KEY", "type": "secret_text"}])
    );
    h.emulator.shutdown().await;
}
