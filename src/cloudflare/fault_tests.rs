//! The client against a scripted raw-TCP server that misbehaves on
//! purpose: connections dropped before or after the work is done, bodies
//! cut short, 5xx, 429 with `Retry-After`, refused connections, answers
//! that never come, a server echoing the token. Offline and bounded; the
//! outcomes are deterministic (the backoffs are a few milliseconds, and no
//! assertion depends on their random draw).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use super::*;

/// A request as the server read it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    fn is(&self, method: &str, path: &str) -> bool {
        self.method == method && self.path == format!("/client/v4{path}")
    }
}

/// What the server does with a request.
enum Reply {
    /// A whole answer; the connection closes after it.
    Full {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: Vec<u8>,
    },
    /// Closes the connection without a byte of answer.
    Drop,
    /// Sends the status and headers promising more body than it sends,
    /// then closes.
    Cut { status: u16, body: Vec<u8> },
    /// Never answers (holds the connection for a minute).
    Hang,
}

impl Reply {
    fn json(status: u16, value: Value) -> Reply {
        Reply::Full {
            status,
            headers: vec![],
            body: value.to_string().into_bytes(),
        }
    }

    fn ok(result: Value) -> Reply {
        Reply::json(
            200,
            json!({"success": true, "errors": [], "messages": [], "result": result}),
        )
    }

    fn ok_info(result: Value, info: Value) -> Reply {
        Reply::json(
            200,
            json!({"success": true, "errors": [], "messages": [], "result": result, "result_info": info}),
        )
    }

    fn error(status: u16, code: i64, message: &str) -> Reply {
        Reply::json(
            status,
            json!({"success": false, "errors": [{"code": code, "message": message}], "messages": [], "result": null}),
        )
    }

    fn with_header(self, name: &'static str, value: &str) -> Reply {
        match self {
            Reply::Full {
                status,
                mut headers,
                body,
            } => {
                headers.push((name, value.to_string()));
                Reply::Full {
                    status,
                    headers,
                    body,
                }
            }
            other => other,
        }
    }
}

type Handler = dyn Fn(&Seen) -> Reply + Send + Sync;

struct Server {
    base_url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn count(&self, method: &str, path: &str) -> usize {
        self.seen().iter().filter(|s| s.is(method, path)).count()
    }

    /// The requests as `METHOD path`, in arrival order.
    fn log(&self) -> Vec<String> {
        self.seen()
            .iter()
            .map(|s| format!("{} {}", s.method, s.path.trim_start_matches("/client/v4")))
            .collect()
    }
}

async fn serve(handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    serve_on(listener, handler)
}

fn serve_on(
    listener: TcpListener,
    handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static,
) -> Server {
    let addr = listener.local_addr().expect("addr");
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let handler: Arc<Handler> = Arc::new(handler);
    let rays = Arc::new(AtomicUsize::new(0));
    let log = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (handler, log, rays) = (Arc::clone(&handler), Arc::clone(&log), Arc::clone(&rays));
            tokio::spawn(async move {
                let _ = answer(stream, &*handler, &log, &rays).await;
            });
        }
    });
    Server {
        base_url: format!("http://{addr}/client/v4"),
        seen,
    }
}

/// Reads one request and answers it as the handler says.
async fn answer(
    stream: TcpStream,
    handler: &Handler,
    log: &Mutex<Vec<Seen>>,
    rays: &AtomicUsize,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    if reader.read_line(&mut line).await? == 0 {
        return Ok(());
    }
    let mut words = line.split_whitespace();
    let method = words.next().unwrap_or_default().to_string();
    let target = words.next().unwrap_or_default().to_string();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).await?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let mut body = Vec::new();
    if let Some(length) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        body.resize(length, 0);
        reader.read_exact(&mut body).await?;
    } else if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).await?;
            let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).await?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    }
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path.to_string(), query.to_string()),
        None => (target.clone(), String::new()),
    };
    let seen = Seen {
        method,
        path,
        query,
        headers,
        body,
    };
    log.lock().unwrap().push(seen.clone());
    let reply = handler(&seen);
    let ray = format!("ray-{}", rays.fetch_add(1, Ordering::SeqCst) + 1);
    let mut stream = reader.into_inner();
    let head = |status: u16, length: usize, extra: &[(&'static str, String)]| {
        let mut head = format!(
            "HTTP/1.1 {status} Scripted\r\ncontent-type: application/json\r\ncontent-length: {length}\r\nconnection: close\r\ncf-ray: {ray}\r\n"
        );
        for (name, value) in extra {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        head
    };
    match reply {
        Reply::Full {
            status,
            headers,
            body,
        } => {
            stream
                .write_all(head(status, body.len(), &headers).as_bytes())
                .await?;
            stream.write_all(&body).await?;
            stream.flush().await?;
            stream.shutdown().await?;
        }
        Reply::Drop => drop(stream),
        Reply::Cut { status, body } => {
            stream
                .write_all(head(status, body.len() + 100, &[]).as_bytes())
                .await?;
            stream.write_all(&body).await?;
            stream.flush().await?;
            drop(stream);
        }
        Reply::Hang => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            drop(stream);
        }
    }
    Ok(())
}

/// Fast retries (at most 5 ms apart), 5 attempts, no rate limit.
fn config(server: &Server) -> ClientConfig {
    let mut config = ClientConfig::new(server.base_url.clone(), Token::new("t"), "acc");
    config.retry = RetryPolicy {
        max_attempts: 5,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        max_retry_after: Duration::from_secs(120),
    };
    config.rate_limit = None;
    config
}

fn client(server: &Server) -> Client {
    Client::new(config(server)).expect("client")
}

const KV: &str = "/accounts/acc/storage/kv/namespaces";

/// A KV endpoint whose namespaces live in `state`; `post` decides what
/// each create does (by its 1-based number): whether it creates the
/// namespace, and the reply (`None`: the created namespace).
fn kv_server(
    state: Arc<Mutex<Vec<(String, String)>>>,
    post: impl Fn(usize) -> (bool, Option<Reply>) + Send + Sync + 'static,
    list: impl Fn(usize, &[(String, String)]) -> Reply + Send + Sync + 'static,
) -> impl Fn(&Seen) -> Reply + Send + Sync + 'static {
    let posts = AtomicUsize::new(0);
    let lists = AtomicUsize::new(0);
    move |seen: &Seen| {
        if seen.is("POST", KV) {
            let n = posts.fetch_add(1, Ordering::SeqCst) + 1;
            let (commit, reply) = post(n);
            if commit {
                let title = seen.json()["title"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                let mut state = state.lock().unwrap();
                let id = format!("ns-{}", state.len() + 1);
                state.push((id, title));
            }
            return reply.unwrap_or_else(|| {
                let state = state.lock().unwrap();
                let (id, title) = state.last().cloned().unwrap_or_default();
                Reply::ok(json!({"id": id, "title": title}))
            });
        }
        if seen.is("GET", KV) {
            let n = lists.fetch_add(1, Ordering::SeqCst) + 1;
            return list(n, &state.lock().unwrap());
        }
        Reply::error(404, 7003, "no route")
    }
}

fn kv_list(namespaces: &[(String, String)]) -> Reply {
    let items: Vec<Value> = namespaces
        .iter()
        .map(|(id, title)| json!({"id": id, "title": title}))
        .collect();
    let total = items.len();
    Reply::ok_info(json!(items), json!({"total_count": total}))
}

#[tokio::test]
async fn a_lost_answer_to_a_read_is_retried_whether_the_send_or_the_body_failed() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let server = serve(move |_| match counter.fetch_add(1, Ordering::SeqCst) {
        0 => Reply::Drop,
        1 => Reply::Cut {
            status: 200,
            body: b"{\"success\":true,\"res".to_vec(),
        },
        2 => Reply::error(503, 10002, "unavailable"),
        _ => kv_list(&[("ns-1".into(), "a".into())]),
    })
    .await;
    let all = client(&server).list_kv_namespaces().await.expect("list");
    assert_eq!(all.len(), 1);
    assert_eq!(server.count("GET", KV), 4);
}

#[tokio::test]
async fn a_kv_create_whose_answer_was_lost_is_found_not_created_again() {
    let state: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let server = serve(kv_server(
        Arc::clone(&state),
        |_| (true, Some(Reply::Drop)),
        |_, all| kv_list(all),
    ))
    .await;
    let ns = client(&server)
        .create_kv_namespace("cache")
        .await
        .expect("found after the lost answer");
    assert_eq!(ns.id, "ns-1");
    assert_eq!(ns.title, "cache");
    assert_eq!(server.log(), [format!("POST {KV}"), format!("GET {KV}")]);
    assert_eq!(state.lock().unwrap().len(), 1, "exactly one namespace");
}

#[tokio::test]
async fn a_kv_create_lost_before_it_was_done_is_sent_again_after_the_lookup() {
    let state: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let server = serve(kv_server(
        Arc::clone(&state),
        |n| (n > 1, Some(Reply::Drop)),
        |_, all| kv_list(all),
    ))
    .await;
    let ns = client(&server)
        .create_kv_namespace("cache")
        .await
        .expect("created by the second attempt, found by the second lookup");
    assert_eq!(ns.id, "ns-1");
    assert_eq!(
        server.log(),
        [
            format!("POST {KV}"),
            format!("GET {KV}"),
            format!("POST {KV}"),
            format!("GET {KV}")
        ]
    );
    assert_eq!(state.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_create_failing_with_5xx_every_time_gives_up_with_an_unknown_outcome_and_no_duplicate() {
    let state: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let server = serve(kv_server(
        Arc::clone(&state),
        |_| (false, Some(Reply::error(502, 10002, "bad gateway"))),
        |_, all| kv_list(all),
    ))
    .await;
    let error = client(&server)
        .create_kv_namespace("cache")
        .await
        .expect_err("never created");
    assert!(error.outcome_unknown(), "{error}");
    assert_eq!(error.status(), Some(502));
    // One lookup after each of the 5 attempts, and no create without one.
    assert_eq!(server.count("POST", KV), 5);
    assert_eq!(server.count("GET", KV), 5);
    let log = server.log();
    for pair in log.chunks(2) {
        assert_eq!(pair, [format!("POST {KV}"), format!("GET {KV}")]);
    }
    assert!(state.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_duplicate_error_after_a_lost_create_is_resolved_by_looking_again() {
    // The list lags: the first lookup misses the namespace the lost
    // attempt created, so the create is sent again and refused as a
    // duplicate; the second lookup finds it.
    let state: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let server = serve(kv_server(
        Arc::clone(&state),
        |n| match n {
            1 => (true, Some(Reply::Drop)),
            _ => (
                false,
                Some(Reply::error(
                    400,
                    10014,
                    "a namespace with this title already exists",
                )),
            ),
        },
        |n, all| if n == 1 { kv_list(&[]) } else { kv_list(all) },
    ))
    .await;
    let ns = client(&server)
        .create_kv_namespace("cache")
        .await
        .expect("found on the second lookup");
    assert_eq!(ns.id, "ns-1");
    assert_eq!(server.count("POST", KV), 2);
    assert_eq!(state.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_create_refused_for_a_definite_reason_is_not_looked_up() {
    let state: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let server = serve(kv_server(
        Arc::clone(&state),
        |_| (false, Some(Reply::error(400, 10019, "invalid title"))),
        |_, all| kv_list(all),
    ))
    .await;
    let error = client(&server)
        .create_kv_namespace("")
        .await
        .expect_err("invalid");
    assert!(!error.outcome_unknown());
    assert!(error.has_code(10019));
    assert_eq!(server.log(), [format!("POST {KV}")]);
}

#[tokio::test]
async fn a_refused_connection_is_retried_even_for_a_create() {
    // Nothing listens on the port at first: connecting is refused, so
    // nothing was sent and the create may simply be sent again.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let state: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let handle = Arc::clone(&state);
    let server = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(30)).await;
        let listener = TcpListener::bind(addr).await.expect("rebind");
        serve_on(
            listener,
            kv_server(handle, |_| (true, None), |_, all| kv_list(all)),
        )
    });
    let mut config = ClientConfig::new(format!("http://{addr}/client/v4"), Token::new("t"), "acc");
    config.retry = RetryPolicy {
        max_attempts: 60,
        base_delay: Duration::from_millis(2),
        max_delay: Duration::from_millis(10),
        max_retry_after: Duration::from_secs(1),
    };
    config.rate_limit = None;
    let client = Client::new(config).expect("client");
    let ns = client
        .create_kv_namespace("cache")
        .await
        .expect("created once the server is up");
    let server = server.await.expect("server task");
    assert_eq!(ns.id, "ns-1");
    assert_eq!(server.log(), [format!("POST {KV}")], "no lookup was needed");
    assert_eq!(state.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn d1_and_r2_creates_whose_answer_was_lost_are_looked_up_by_name() {
    let d1 = "/accounts/acc/d1/database";
    let r2 = "/accounts/acc/r2/buckets";
    let databases: Arc<Mutex<Vec<Value>>> = Arc::default();
    let buckets: Arc<Mutex<Vec<Value>>> = Arc::default();
    let (dbs, bks) = (Arc::clone(&databases), Arc::clone(&buckets));
    let server = serve(move |seen| {
        if seen.is("POST", d1) {
            let name = seen.json()["name"].clone();
            dbs.lock()
                .unwrap()
                .push(json!({"uuid": "u-1", "name": name}));
            // Processed; the answer's body is cut short.
            return Reply::Cut {
                status: 200,
                body: b"{\"success\":true,\"result\":{\"uu".to_vec(),
            };
        }
        if seen.is("GET", d1) {
            let all = dbs.lock().unwrap().clone();
            let total = all.len();
            return Reply::ok_info(json!(all), json!({"total_count": total}));
        }
        if seen.is("POST", r2) {
            assert_eq!(seen.header("cf-r2-jurisdiction"), Some("eu"));
            let name = seen.json()["name"].clone();
            bks.lock()
                .unwrap()
                .push(json!({"name": name, "jurisdiction": "eu"}));
            return Reply::Drop;
        }
        if seen.is("GET", r2) {
            // Looked up in the bucket's own jurisdiction.
            assert_eq!(seen.header("cf-r2-jurisdiction"), Some("eu"));
            let all = bks.lock().unwrap().clone();
            return Reply::ok_info(json!({"buckets": all}), json!({"cursor": ""}));
        }
        Reply::error(404, 7003, "no route")
    })
    .await;
    let client = client(&server);
    let db = client
        .create_d1_database("ledger", None, None)
        .await
        .expect("found");
    assert_eq!(db.uuid, "u-1");
    client
        .create_r2_bucket("assets", None, None, Some("eu"))
        .await
        .expect("found");
    assert_eq!(
        server.log(),
        [
            format!("POST {d1}"),
            format!("GET {d1}"),
            format!("POST {r2}"),
            format!("GET {r2}")
        ]
    );
    assert_eq!(databases.lock().unwrap().len(), 1);
    assert_eq!(buckets.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_route_create_whose_answer_was_lost_is_looked_up_by_pattern_and_script() {
    let path = "/zones/z1/workers/routes";
    let routes: Arc<Mutex<Vec<Value>>> = Arc::default();
    let posts = AtomicUsize::new(0);
    let store = Arc::clone(&routes);
    let server = serve(move |seen| {
        if seen.is("POST", path) {
            let body = seen.json();
            // The first attempt is lost before it is processed, the second after.
            if posts.fetch_add(1, Ordering::SeqCst) == 0 {
                return Reply::Drop;
            }
            store
                .lock()
                .unwrap()
                .push(json!({"id": "r-1", "pattern": body["pattern"], "script": body["script"]}));
            return Reply::Drop;
        }
        if seen.is("GET", path) {
            // Another worker's route on another pattern is not it.
            let mut all =
                vec![json!({"id": "r-0", "pattern": "other.example.com/*", "script": "api"})];
            all.extend(store.lock().unwrap().iter().cloned());
            return Reply::ok(json!(all));
        }
        Reply::error(404, 7003, "no route")
    })
    .await;
    client(&server)
        .create_zone_route("z1", "example.com/*", "api")
        .await
        .expect("found after the second attempt");
    assert_eq!(server.count("POST", path), 2);
    assert_eq!(server.count("GET", path), 2);
    assert_eq!(routes.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_deployment_whose_answer_was_lost_is_checked_against_the_newest_deployment() {
    let path = "/accounts/acc/workers/scripts/api/deployments";
    let deployments: Arc<Mutex<Vec<Value>>> = Arc::new(Mutex::new(vec![
        json!({"id": "d-0", "versions": [{"version_id": "v-old", "percentage": 100.0}]}),
    ]));
    let posts = AtomicUsize::new(0);
    let store = Arc::clone(&deployments);
    let server = serve(move |seen| {
        if seen.is("POST", path) {
            let n = posts.fetch_add(1, Ordering::SeqCst);
            // The first deployment request is lost before it is processed;
            // the second is processed and its answer lost.
            if n > 0 {
                let versions = seen.json()["versions"].clone();
                store
                    .lock()
                    .unwrap()
                    .insert(0, json!({"id": format!("d-{}", n), "versions": versions}));
            }
            return Reply::Drop;
        }
        if seen.is("GET", path) {
            let all = store.lock().unwrap().clone();
            return Reply::ok(json!({"deployments": all}));
        }
        Reply::error(404, 7003, "no route")
    })
    .await;
    client(&server)
        .create_worker_deployment("api", &[("v-new".into(), 10), ("v-old".into(), 90)], "m")
        .await
        .expect("deployed once");
    assert_eq!(server.count("POST", path), 2);
    let all = deployments.lock().unwrap().clone();
    assert_eq!(all.len(), 2, "one new deployment: {all:?}");
    assert_eq!(all[0]["versions"][0]["version_id"], "v-new");
}

fn upload<'a>(
    modules: &'a [crate::model::WorkerModule],
    bindings: &'a BTreeMap<String, crate::model::ResolvedBinding>,
    secrets: Vec<(&'a str, &'a str)>,
) -> WorkerUpload<'a> {
    WorkerUpload {
        main_module: "index.js",
        modules,
        compatibility_date: "2025-01-15",
        compatibility_flags: &[],
        bindings,
        migration: None,
        tag: "abc",
        message: "m",
        secrets,
    }
}

fn module() -> Vec<crate::model::WorkerModule> {
    vec![crate::model::WorkerModule {
        name: "index.js".into(),
        kind: crate::model::ModuleKind::EsModule,
        content: b"export default {}".to_vec(),
    }]
}

/// A script `api` whose versions live in `versions` (newest first);
/// `upload` decides whether each upload (1-based) is processed; every
/// upload's answer is lost.
fn versions_server(
    versions: Arc<Mutex<Vec<Value>>>,
    exists: bool,
    processed: impl Fn(usize) -> bool + Send + Sync + 'static,
) -> impl Fn(&Seen) -> Reply + Send + Sync + 'static {
    let uploads = AtomicUsize::new(0);
    move |seen| {
        let script = "/accounts/acc/workers/scripts/api";
        let listed = format!("{script}/versions");
        let is_upload = seen.is("PUT", script) || seen.is("POST", &listed);
        if is_upload {
            let n = uploads.fetch_add(1, Ordering::SeqCst) + 1;
            let body = String::from_utf8_lossy(&seen.body).to_string();
            assert!(body.contains("\"workers/tag\":\"abc\""), "{body}");
            if processed(n) {
                versions.lock().unwrap().insert(
                    0,
                    json!({"id": format!("v-new-{n}"), "annotations": {"workers/tag": "abc"}}),
                );
            }
            return Reply::Drop;
        }
        if seen.is("GET", &listed) {
            let all = versions.lock().unwrap().clone();
            if all.is_empty() && !exists {
                return Reply::error(404, 10007, "This Worker does not exist on your account.");
            }
            return Reply::ok(json!({"items": all}));
        }
        Reply::error(404, 7003, "no route")
    }
}

#[tokio::test]
async fn a_version_upload_whose_answer_was_lost_finds_the_new_version_not_an_older_twin() {
    // An older version has the same tag (only a secret changes): it was
    // there before the upload, so it is not the upload's.
    let versions = Arc::new(Mutex::new(vec![
        json!({"id": "v-old", "annotations": {"workers/tag": "abc"}}),
    ]));
    let server = serve(versions_server(Arc::clone(&versions), true, |n| n == 2)).await;
    let modules = module();
    let bindings = BTreeMap::new();
    let id = client(&server)
        .upload_worker_version(
            "api",
            &upload(&modules, &bindings, vec![("TOKEN", "s3cret")]),
        )
        .await
        .expect("uploaded");
    assert_eq!(id, "v-new-2");
    let listed = "/accounts/acc/workers/scripts/api/versions";
    assert_eq!(
        server.log(),
        [
            format!("GET {listed}"),
            format!("POST {listed}"),
            format!("GET {listed}"),
            format!("POST {listed}"),
            format!("GET {listed}"),
        ]
    );
    assert_eq!(versions.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn a_script_upload_whose_answer_was_lost_is_not_sent_again() {
    let versions: Arc<Mutex<Vec<Value>>> = Arc::default();
    let server = serve(versions_server(Arc::clone(&versions), false, |_| true)).await;
    let modules = module();
    let bindings = BTreeMap::new();
    let id = client(&server)
        .upload_worker_script("api", &upload(&modules, &bindings, vec![]))
        .await
        .expect("found");
    assert_eq!(id, "v-new-1");
    assert_eq!(server.count("PUT", "/accounts/acc/workers/scripts/api"), 1);
}

#[tokio::test]
async fn d1_writes_are_not_repeated_after_a_lost_answer_but_reads_are() {
    let path = "/accounts/acc/d1/database/u1/query";
    let queries: Mutex<std::collections::HashSet<String>> = Mutex::default();
    let server = serve(move |seen| {
        if !seen.is("POST", path) {
            return Reply::error(404, 7003, "no route");
        }
        // Each query's first attempt runs, and its answer is lost.
        let sql = seen.json()["sql"].as_str().unwrap_or_default().to_string();
        if queries.lock().unwrap().insert(sql) {
            return Reply::Drop;
        }
        Reply::ok(json!([{"results": [{"n": 1}]}]))
    })
    .await;
    let client = client(&server);
    let error = client
        .d1_query("u1", "INSERT INTO journal (id) VALUES ('a');")
        .await
        .expect_err("a write is not sent twice");
    assert!(error.outcome_unknown(), "{error}");
    assert!(matches!(
        &error,
        ClientError::OutcomeUnknown { error, .. } if matches!(**error, ClientError::Transport { sent: true, .. })
    ));
    assert_eq!(server.count("POST", path), 1);
    let rows = client
        .d1_query("u1", "SELECT 1 AS n;")
        .await
        .expect("a read is retried");
    assert_eq!(rows[0].results[0]["n"], 1);
    assert_eq!(server.count("POST", path), 3);
    client
        .d1_query_idempotent(
            "u1",
            "UPDATE locks SET lease = 1 WHERE environment = 'p' AND holder = 'me';",
        )
        .await
        .expect("vouched for: retried");
    assert_eq!(server.count("POST", path), 5);
}

#[tokio::test]
async fn a_restore_whose_answer_was_lost_returns_the_bookmark_from_before_it() {
    let restores = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&restores);
    let server = serve(move |seen| {
        if seen.is("GET", "/accounts/acc/d1/database/u1/time_travel/bookmark") {
            return Reply::ok(json!({"bookmark": "b-before"}));
        }
        if seen.is("POST", "/accounts/acc/d1/database/u1/time_travel/restore") {
            assert_eq!(seen.query, "bookmark=b-target");
            return match counter.fetch_add(1, Ordering::SeqCst) {
                // Restored, answer lost; the retry's answer names the
                // restored state, which would not undo anything.
                0 => Reply::Drop,
                _ => Reply::ok(json!({"bookmark": "b-target", "previous_bookmark": "b-target"})),
            };
        }
        Reply::error(404, 7003, "no route")
    })
    .await;
    let client = client(&server);
    let undo = client.d1_restore("u1", "b-target").await.expect("restored");
    assert_eq!(undo, "b-before");
    assert_eq!(restores.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_restore_answered_at_once_returns_the_servers_previous_bookmark() {
    let server = serve(|seen| {
        if seen.path.ends_with("/time_travel/bookmark") {
            return Reply::ok(json!({"bookmark": "b-read-first"}));
        }
        Reply::ok(json!({"bookmark": "b-target", "previous_bookmark": "b-exact"}))
    })
    .await;
    let undo = client(&server)
        .d1_restore("u1", "b-target")
        .await
        .expect("restored");
    assert_eq!(undo, "b-exact");
}

/// An HTTP date 100 s ahead (of the system clock, which `Retry-After`
/// dates are read against).
fn http_date_in_100_seconds() -> String {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    (time::OffsetDateTime::now_utc() + Duration::from_secs(100))
        .format(&format)
        .expect("an HTTP date")
}

/// The client waits as long as the date says (on tokio's paused clock,
/// which only sleeps move), then for a past date not at all.
#[tokio::test(start_paused = true)]
async fn retry_after_as_an_http_date_is_honoured() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let date = http_date_in_100_seconds();
    let server = serve(move |_| match counter.fetch_add(1, Ordering::SeqCst) {
        0 => Reply::error(
            429,
            971,
            "Please wait and consider throttling your request speed",
        )
        .with_header("retry-after", &date),
        1 => Reply::error(503, 10002, "unavailable")
            .with_header("retry-after", "Sun, 06 Nov 1994 08:49:37 GMT"),
        _ => kv_list(&[]),
    })
    .await;
    let started = tokio::time::Instant::now();
    client(&server).list_kv_namespaces().await.expect("listed");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    // 99 to 100 s (the date has whole seconds), less however long this
    // test took to reach the parse; the backoff alone is at most 5 ms.
    let waited = started.elapsed();
    assert!(
        waited > Duration::from_secs(50) && waited <= Duration::from_secs(100),
        "{waited:?}"
    );
}

#[tokio::test]
async fn a_rate_limited_create_is_sent_again_without_a_lookup() {
    let state: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let server = serve(kv_server(
        Arc::clone(&state),
        |n| match n {
            1 => (
                false,
                Some(Reply::error(429, 971, "Please wait").with_header("retry-after", "0")),
            ),
            _ => (true, None),
        },
        |_, all| kv_list(all),
    ))
    .await;
    let ns = client(&server)
        .create_kv_namespace("cache")
        .await
        .expect("created");
    assert_eq!(ns.id, "ns-1");
    assert_eq!(server.log(), [format!("POST {KV}"), format!("POST {KV}")]);
}

#[tokio::test(start_paused = true)]
async fn every_attempt_takes_a_token_from_the_shared_bucket() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let server = serve(move |_| match counter.fetch_add(1, Ordering::SeqCst) {
        0 | 1 => Reply::error(503, 10002, "unavailable"),
        _ => kv_list(&[]),
    })
    .await;
    let mut config = config(&server);
    // Three tokens, then one an hour; the run has a minute.
    config.rate_limit = Some(RateLimit {
        burst: 3,
        per_second: 1.0 / 3600.0,
    });
    config.deadline = Some(Deadline::after(Duration::from_secs(60)));
    let client = Client::new(config).expect("client");
    let clone = client.clone();
    client.list_kv_namespaces().await.expect("three attempts");
    // The clock is paused: only sleeps move it.
    let started = tokio::time::Instant::now();
    let error = clone
        .list_kv_namespaces()
        .await
        .expect_err("no token before the deadline");
    assert!(error.is_deadline(), "{error}");
    assert_eq!(started.elapsed(), Duration::ZERO, "failed without waiting");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn after_the_overall_timeout_every_request_fails_fast_without_being_sent() {
    let server = serve(|_| kv_list(&[])).await;
    let mut config = config(&server);
    config.deadline = Some(Deadline::after(Duration::ZERO));
    let client = Client::new(config).expect("client");
    let error = client.list_kv_namespaces().await.expect_err("too late");
    assert!(error.is_deadline());
    assert!(
        error
            .to_string()
            .contains("the overall timeout of 0s for this run has passed"),
        "{error}"
    );
    let error = client.create_kv_namespace("x").await.expect_err("too late");
    assert!(error.is_deadline());
    assert!(server.seen().is_empty());
}

#[tokio::test(start_paused = true)]
async fn retry_waits_never_sleep_past_the_deadline() {
    let server =
        serve(|_| Reply::error(503, 10002, "unavailable").with_header("retry-after", "100")).await;
    let mut config = config(&server);
    config.deadline = Some(Deadline::after(Duration::from_secs(5)));
    let client = Client::new(config).expect("client");
    // The clock is paused: only sleeps move it.
    let started = tokio::time::Instant::now();
    let error = client.list_kv_namespaces().await.expect_err("gave up");
    assert_eq!(started.elapsed(), Duration::ZERO, "did not wait 100 s");
    match &error {
        ClientError::Deadline {
            last: Some(last), ..
        } => assert_eq!(last.status(), Some(503)),
        other => panic!("expected a deadline error, got {other:?}"),
    }
    assert_eq!(server.seen().len(), 1);
}

/// On tokio's paused clock (the hanging server sleeps on it too), the
/// attempt ends exactly at the deadline.
#[tokio::test(start_paused = true)]
async fn an_attempt_hanging_past_the_deadline_is_cut_at_the_deadline() {
    let server = serve(|_| Reply::Hang).await;
    let mut config = config(&server);
    let started = tokio::time::Instant::now();
    config.deadline = Some(Deadline::after(Duration::from_millis(300)));
    let client = Client::new(config).expect("client");
    let error = client.list_kv_namespaces().await.expect_err("cut");
    assert!(error.is_deadline(), "{error}");
    assert_eq!(started.elapsed(), Duration::from_millis(300));
    assert_eq!(server.seen().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_create_cut_at_the_deadline_has_an_unknown_outcome() {
    let server = serve(|_| Reply::Hang).await;
    let mut config = config(&server);
    config.deadline = Some(Deadline::after(Duration::from_millis(300)));
    let client = Client::new(config).expect("client");
    let error = client.create_kv_namespace("x").await.expect_err("cut");
    assert!(error.is_deadline(), "{error}");
    assert!(error.outcome_unknown(), "{error}");
    assert_eq!(server.log(), [format!("POST {KV}")], "too late to look up");
    let error = client
        .d1_query("u1", "INSERT INTO t VALUES (1);")
        .await
        .expect_err("too late");
    assert!(error.is_deadline());
    assert!(!error.outcome_unknown(), "not sent: {error}");
}

#[tokio::test(start_paused = true)]
async fn the_per_attempt_timeout_cuts_a_hanging_read_and_it_is_retried() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let server = serve(move |_| match counter.fetch_add(1, Ordering::SeqCst) {
        0 => Reply::Hang,
        _ => kv_list(&[]),
    })
    .await;
    let mut config = config(&server);
    config.request_timeout = Duration::from_millis(200);
    let client = Client::new(config).expect("client");
    let started = tokio::time::Instant::now();
    client.list_kv_namespaces().await.expect("second attempt");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    // The paused clock moved by the timeout and one backoff (at most 5 ms).
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(200) && elapsed <= Duration::from_millis(206),
        "{elapsed:?}"
    );
}

/// Collects what a `tracing` subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).to_string()
    }
}

/// Sends this thread's events, at every level, to a buffer.
///
/// tracing caches per call site whether any dispatcher wants its events.
/// While only one dispatcher is registered, a call site first reached on
/// another test's thread is asked of that thread's (empty) dispatcher only,
/// and cached as unwanted: the captured log would miss its events. Two
/// more dispatchers that live as long as the test binary make tracing ask
/// all of them, this capture included.
fn capture() -> (Captured, tracing::subscriber::DefaultGuard) {
    static ASK_EVERY_DISPATCHER: std::sync::LazyLock<[tracing::Dispatch; 2]> =
        std::sync::LazyLock::new(|| {
            [(), ()].map(|()| tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default()))
        });
    std::sync::LazyLock::force(&ASK_EVERY_DISPATCHER);
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .finish();
    (captured, tracing::subscriber::set_default(subscriber))
}

#[tokio::test]
async fn every_attempt_is_logged_with_its_cf_ray_status_and_timing() {
    let (logs, _guard) = capture();
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let server = serve(move |_| match counter.fetch_add(1, Ordering::SeqCst) {
        0 => Reply::error(503, 10002, "unavailable"),
        1 => Reply::Drop,
        _ => kv_list(&[]),
    })
    .await;
    client(&server).list_kv_namespaces().await.expect("listed");
    let text = logs.text();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("cloudflare answered") || l.contains("cloudflare request failed"))
        .collect();
    assert_eq!(lines.len(), 3, "{text}");
    for (line, (attempt, ray, status)) in lines.iter().zip([
        (1, Some("ray-1"), Some(503)),
        (2, None, None),
        (3, Some("ray-3"), Some(200)),
    ]) {
        assert!(line.contains("DEBUG"), "{line}");
        assert!(line.contains("method=GET"), "{line}");
        assert!(line.contains(KV), "{line}");
        assert!(line.contains(&format!("attempt={attempt}")), "{line}");
        assert!(line.contains("elapsed_ms="), "{line}");
        match (ray, status) {
            (Some(ray), Some(status)) => {
                assert!(line.contains(&format!("cf_ray={ray}")), "{line}");
                assert!(line.contains(&format!("status={status}")), "{line}");
            }
            _ => assert!(line.contains("outcome=Lost"), "{line}"),
        }
    }
}

#[tokio::test]
async fn the_token_is_sent_but_never_logged_nor_echoed_back_in_errors() {
    const CANARY: &str = "canary-token-3f9a1c7e5b2d4068a1c3e5f7";
    let (logs, _guard) = capture();
    let server = serve(|seen| {
        // A hostile or broken endpoint echoing the credential.
        let auth = seen.header("authorization").unwrap_or_default().to_string();
        if seen.method == "POST" {
            return Reply::Drop;
        }
        Reply::error(400, 6003, &format!("Invalid request headers: {auth}"))
    })
    .await;
    let mut config = config(&server);
    config.token = Token::new(CANARY);
    let client = Client::new(config.clone()).expect("client");
    let error = client.list_kv_namespaces().await.expect_err("refused");
    let created = client
        .create_kv_namespace("x")
        .await
        .expect_err("lost, then refused lookup");
    for text in [
        error.to_string(),
        format!("{error:?}"),
        created.to_string(),
        format!("{created:?}"),
        format!("{client:?}"),
        format!("{config:?}"),
        logs.text(),
    ] {
        assert!(!text.contains("canary"), "{text}");
    }
    assert!(error.to_string().contains("Bearer <redacted>"), "{error}");
    assert!(created.outcome_unknown(), "{created}");
    // It did go out, in the header.
    let seen = server.seen();
    assert!(
        seen.iter()
            .all(|s| s.header("authorization") == Some(&format!("Bearer {CANARY}")))
    );
    assert!(logs.text().contains("DEBUG"), "logs were captured");
}
