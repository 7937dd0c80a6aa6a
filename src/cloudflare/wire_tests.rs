//! The client against small scripted HTTP servers: pagination, retries,
//! `Retry-After`, and never sending a create again after a server error
//! without looking it up first. (The emulator is not used here: these
//! servers misbehave on purpose; `fault_tests` drops connections too.)

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use super::*;

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    format!("http://{addr}/client/v4")
}

fn client(base_url: String) -> Client {
    let mut config = ClientConfig::new(base_url, Token::new("t"), "acc");
    config.retry.base_delay = Duration::from_millis(1);
    Client::new(config).expect("client")
}

fn ok(result: Value, info: Value) -> Response {
    axum::Json(json!({"success": true, "errors": [], "messages": [], "result": result, "result_info": info}))
        .into_response()
}

#[tokio::test]
async fn page_pagination_follows_total_count() {
    let calls = Arc::new(AtomicUsize::new(0));
    let router = Router::new()
        .route(
            "/client/v4/accounts/acc/storage/kv/namespaces",
            get(|State(calls): State<Arc<AtomicUsize>>, Query(q): Query<Vec<(String, String)>>| async move {
                calls.fetch_add(1, Ordering::SeqCst);
                let page: usize = q.iter().find(|(k, _)| k == "page").map(|(_, v)| v.parse().unwrap()).unwrap();
                let per_page: usize = q.iter().find(|(k, _)| k == "per_page").map(|(_, v)| v.parse().unwrap()).unwrap();
                assert_eq!(per_page, 100, "the largest page size");
                let total = 250;
                let items: Vec<Value> = ((page - 1) * per_page..(page * per_page).min(total))
                    .map(|i| json!({"id": format!("id{i}"), "title": format!("t{i}")}))
                    .collect();
                ok(json!(items), json!({"page": page, "per_page": per_page, "count": items.len(), "total_count": total}))
            }),
        )
        .with_state(calls.clone());
    let client = client(serve(router).await);
    let all = client.list_kv_namespaces().await.expect("list");
    assert_eq!(all.len(), 250);
    assert_eq!(all[249].id, "id249");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn cursor_pagination_reads_wrapped_lists_until_the_empty_cursor() {
    let router = Router::new().route(
        "/client/v4/accounts/acc/r2/buckets",
        get(|headers: HeaderMap, Query(q): Query<Vec<(String, String)>>| async move {
            assert_eq!(headers["cf-r2-jurisdiction"], "eu");
            let cursor = q.iter().find(|(k, _)| k == "cursor").map(|(_, v)| v.clone());
            let (names, next) = match cursor.as_deref() {
                None => (vec!["a", "b"], "c1"),
                Some("c1") => (vec!["c"], ""),
                other => panic!("unexpected cursor {other:?}"),
            };
            let buckets: Vec<Value> = names
                .iter()
                .map(|n| json!({"name": n, "creation_date": "x", "location": "WEUR", "storage_class": "Standard"}))
                .collect();
            ok(json!({"buckets": buckets}), json!({"cursor": next, "per_page": 1000}))
        }),
    );
    let client = client(serve(router).await);
    let buckets = client.list_r2_buckets(Some("eu")).await.expect("list");
    let names: Vec<&str> = buckets.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "c"]);
    assert!(
        buckets
            .iter()
            .all(|b| b.jurisdiction.as_deref() == Some("eu"))
    );
}

/// On tokio's paused clock, which only sleeps move, the client waits the
/// second the server asks for (not its 1 ms backoff).
#[tokio::test(start_paused = true)]
async fn rate_limits_are_retried_after_the_time_the_server_asks() {
    let calls = Arc::new(AtomicUsize::new(0));
    let router = Router::new()
        .route(
            "/client/v4/accounts/acc/d1/database",
            get(|State(calls): State<Arc<AtomicUsize>>| async move {
                if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                    return (
                        StatusCode::TOO_MANY_REQUESTS,
                        [("retry-after", "1")],
                        axum::Json(json!({"success": false, "errors": [{"code": 971, "message": "Please wait and consider throttling your request speed"}], "messages": [], "result": null})),
                    )
                        .into_response();
                }
                ok(json!([]), json!({"total_count": 0}))
            }),
        )
        .with_state(calls.clone());
    let client = client(serve(router).await);
    let started = tokio::time::Instant::now();
    client.list_d1_databases().await.expect("list after retry");
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(1),
        "waited for Retry-After"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn server_errors_retry_reads_but_creates_only_after_a_lookup() {
    /// (GETs, POSTs) received, and the order as `G`/`P`.
    type Calls = Arc<std::sync::Mutex<String>>;
    let calls: Calls = Arc::default();
    let router = Router::new()
        .route(
            "/client/v4/accounts/acc/storage/kv/namespaces",
            get(|State(calls): State<Calls>| async move {
                let mut calls = calls.lock().unwrap();
                calls.push('G');
                if calls.len() <= 2 {
                    return StatusCode::BAD_GATEWAY.into_response();
                }
                ok(json!([]), json!({"total_count": 0}))
            })
            .post(|State(calls): State<Calls>| async move {
                calls.lock().unwrap().push('P');
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }),
        )
        .with_state(calls.clone());
    let client = client(serve(router).await);
    client
        .list_kv_namespaces()
        .await
        .expect("list after two 502s");
    assert_eq!(*calls.lock().unwrap(), "GGG");
    let error = client
        .create_kv_namespace("x")
        .await
        .expect_err("the create fails");
    assert_eq!(error.status(), Some(500));
    assert!(error.outcome_unknown(), "{error}");
    // Each 500 may have created it: a lookup follows every attempt, and no
    // create is sent again before one.
    assert_eq!(*calls.lock().unwrap(), "GGGPGPGPGPGPG");
}

#[tokio::test]
async fn authentication_errors_carry_codes_and_a_hint() {
    let router = Router::new().route(
        "/client/v4/accounts/acc/d1/database",
        get(|| async {
            (
                StatusCode::FORBIDDEN,
                axum::Json(json!({"success": false, "errors": [{"code": 10000, "message": "Authentication error"}], "messages": [], "result": null})),
            )
        }),
    );
    let client = client(serve(router).await);
    let error = client.list_d1_databases().await.expect_err("forbidden");
    assert!(error.is_authentication());
    assert!(error.has_code(10000));
    assert!(
        error.to_string().contains("[10000] Authentication error"),
        "{error}"
    );
    assert!(
        error
            .hint()
            .is_some_and(|h| h.contains("CLOUDFLARE_API_TOKEN"))
    );
}

#[tokio::test]
async fn a_script_upload_sends_metadata_and_every_module_as_its_own_part() {
    use axum::extract::Multipart;
    use axum::routing::put;
    use std::sync::Mutex;
    /// (part name, file name, content type) of each part received.
    type Parts = Arc<Mutex<Vec<(String, Option<String>, Option<String>)>>>;
    let seen: Parts = Arc::default();
    let router = Router::new()
        .route(
            "/client/v4/accounts/acc/workers/scripts/api",
            put(
                |State(seen): State<Parts>, mut multipart: Multipart| async move {
                    while let Some(field) = multipart.next_field().await.unwrap() {
                        let name = field.name().unwrap_or_default().to_string();
                        let file = field.file_name().map(str::to_string);
                        let kind = field.content_type().map(str::to_string);
                        let _ = field.bytes().await;
                        seen.lock().unwrap().push((name, file, kind));
                    }
                    ok(json!({"deployment_id": "v1"}), json!({}))
                },
            ),
        )
        .with_state(seen.clone());
    let client = client(serve(router).await);
    let modules = vec![
        crate::model::WorkerModule {
            name: "index.js".into(),
            kind: crate::model::ModuleKind::EsModule,
            content: b"export default {}".to_vec(),
        },
        crate::model::WorkerModule {
            name: "lib/util.js".into(),
            kind: crate::model::ModuleKind::EsModule,
            content: b"export const a = 1;".to_vec(),
        },
    ];
    let bindings = std::collections::BTreeMap::new();
    let upload = WorkerUpload {
        main_module: "index.js",
        modules: &modules,
        compatibility_date: "2025-01-15",
        compatibility_flags: &[],
        bindings: &bindings,
        migration: None,
        tag: "abc",
        message: "m",
        secrets: vec![],
    };
    let version = client
        .upload_worker_script("api", &upload)
        .await
        .expect("upload");
    assert_eq!(version, "v1");
    let seen = seen.lock().unwrap().clone();
    let names: Vec<&str> = seen.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(names, ["metadata", "index.js", "lib/util.js"], "{seen:?}");
    assert_eq!(seen[2].1.as_deref(), Some("lib/util.js"));
    assert_eq!(seen[2].2.as_deref(), Some("application/javascript+module"));
}

#[tokio::test]
async fn a_server_that_caps_the_page_size_is_still_read_to_the_end() {
    let router = Router::new().route(
        "/client/v4/accounts/acc/d1/database",
        get(|Query(q): Query<Vec<(String, String)>>| async move {
            let page: usize = q
                .iter()
                .find(|(k, _)| k == "page")
                .map(|(_, v)| v.parse().unwrap())
                .unwrap();
            // Asked for 10,000 per page; answers 2 at a time.
            let total = 5;
            let items: Vec<Value> = ((page - 1) * 2..(page * 2).min(total))
                .map(|i| json!({"uuid": format!("u{i}"), "name": format!("db{i}")}))
                .collect();
            ok(
                json!(items),
                json!({"page": page, "per_page": 2, "total_count": total}),
            )
        }),
    );
    let client = client(serve(router).await);
    let all = client.list_d1_databases().await.expect("list");
    assert_eq!(all.len(), 5);
}

#[test]
fn plain_http_is_refused_unless_the_host_is_loopback() {
    for url in [
        "http://203.0.113.5/client/v4",
        "http://api.example.com/client/v4",
        "http://127.0.0.1.example.com/client/v4",
    ] {
        let config = ClientConfig::new(url.to_string(), Token::new("secret-token"), "acc");
        match Client::new(config) {
            Err(ClientError::InvalidBaseUrl { reason, url: shown }) => {
                assert!(reason.contains("clear text"), "{reason}");
                assert!(!shown.contains("secret-token"));
            }
            other => panic!("{url}: {other:?}"),
        }
    }
    for url in [
        "http://127.0.0.1:8787/client/v4",
        "http://localhost:8787/client/v4",
        "http://[::1]:8787/client/v4",
        "https://api.cloudflare.com/client/v4",
    ] {
        let config = ClientConfig::new(url.to_string(), Token::new("t"), "acc");
        assert!(Client::new(config).is_ok(), "{url}");
    }
}

/// A redirect is never followed: the token cannot be carried to another
/// host (or down to plain http) by an answer.
#[tokio::test]
async fn a_redirect_is_not_followed_with_the_token() {
    let elsewhere_calls = Arc::new(AtomicUsize::new(0));
    let elsewhere = serve(
        Router::new()
            .fallback(|State(calls): State<Arc<AtomicUsize>>| async move {
                calls.fetch_add(1, Ordering::SeqCst);
                ok(json!([]), json!({}))
            })
            .with_state(elsewhere_calls.clone()),
    )
    .await;
    let target = format!("{elsewhere}/accounts/acc/storage/kv/namespaces");
    let router = Router::new().route(
        "/client/v4/accounts/acc/storage/kv/namespaces",
        get(move || {
            let target = target.clone();
            async move { (StatusCode::FOUND, [("location", target)]).into_response() }
        }),
    );
    let client = client(serve(router).await);
    let error = client
        .list_kv_namespaces()
        .await
        .expect_err("a redirect is an error");
    assert_eq!(error.status(), Some(302), "{error}");
    assert_eq!(elsewhere_calls.load(Ordering::SeqCst), 0);
}
