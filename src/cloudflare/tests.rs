//! Unit tests of the client's types: the envelope, errors, and that the
//! token never shows in any formatting.

use super::*;

const CANARY: &str = "canary-secret-token-value-0123456789";

#[test]
fn token_config_and_client_never_format_the_token() {
    let token = Token::new(CANARY);
    assert!(!format!("{token:?}").contains("canary"));
    assert!(!format!("{token}").contains("canary"));
    assert!(!format!("{token:#?}").contains("canary"));
    let mut config = ClientConfig::new("http://127.0.0.1:1/client/v4", token, "acc");
    config.deadline = Some(Deadline::after(Duration::from_secs(60)));
    assert!(!format!("{config:?}").contains("canary"));
    assert!(!format!("{config:#?}").contains("canary"));
    let client = Client::new(config).expect("client");
    let debug = format!("{client:?}");
    assert!(!debug.contains("canary"), "{debug}");
    assert!(debug.contains(REDACTED), "{debug}");
    assert!(!format!("{client:#?}").contains("canary"));
    // The header value itself is marked sensitive, so reqwest's and http's
    // own `Debug` hide it too.
    let value = Token::new(CANARY).header_value().expect("valid");
    assert!(value.is_sensitive());
    assert!(!format!("{value:?}").contains("canary"));
}

#[test]
fn an_unusable_token_is_not_echoed() {
    let token = Token::new(format!("{CANARY}\nX-Injected: 1"));
    let error = Client::new(ClientConfig::new("http://127.0.0.1:1", token, "acc"))
        .expect_err("a newline cannot go into a header");
    assert!(matches!(error, ClientError::InvalidToken));
    assert!(!error.to_string().contains("canary"));
    assert!(!format!("{error:?}").contains("canary"));
}

#[test]
fn a_base_url_with_credentials_is_shown_without_them() {
    let error = Client::new(ClientConfig::new(
        "ftp://user:hunter2-password@example.com/client/v4",
        Token::new(CANARY),
        "acc",
    ))
    .expect_err("not http");
    let text = format!("{error} {error:?}");
    assert!(!text.contains("hunter2"), "{text}");
    assert!(text.contains("example.com/client/v4"), "{text}");
    assert_eq!(
        redact_userinfo("https://a:b@h.example/x@y"),
        "https://<redacted>@h.example/x@y"
    );
    assert_eq!(
        redact_userinfo("https://h.example/x@y"),
        "https://h.example/x@y"
    );
}

#[test]
fn errors_scrub_a_token_the_server_echoed() {
    let token = Token::new(CANARY);
    let api = ClientError::Api {
        method: Method::GET,
        path: "/x".into(),
        status: 400,
        errors: vec![ApiMessage {
            code: 1,
            message: format!("bad header Authorization: Bearer {CANARY}"),
        }],
    }
    .scrubbed(&token);
    let decode = ClientError::Decode {
        method: Method::GET,
        path: "/x".into(),
        status: 200,
        reason: format!("invalid type: string \"{CANARY}\""),
    }
    .scrubbed(&token);
    let wrapped = ClientError::OutcomeUnknown {
        error: Box::new(api),
        lookup: Some(Box::new(decode)),
    };
    let deadline = ClientError::Deadline {
        method: Method::POST,
        path: "/y".into(),
        timeout: Duration::from_secs(90),
        last: Some(Box::new(wrapped)),
    };
    let text = format!("{deadline} {deadline:?}");
    assert!(!text.contains("canary"), "{text}");
    assert!(text.contains("Bearer <redacted>"), "{text}");
    assert!(
        deadline
            .to_string()
            .contains("the overall timeout of 1m30s for this run has passed"),
        "{deadline}"
    );
    // Short tokens are left alone (a one-letter token would mangle texts).
    assert_eq!(Token::new("t").scrub("text"), "text");
}

#[test]
fn wrapped_errors_keep_their_status_code_and_hint() {
    let inner = ClientError::Api {
        method: Method::POST,
        path: "/accounts/a/storage/kv/namespaces".into(),
        status: 502,
        errors: vec![ApiMessage {
            code: 10002,
            message: "internal".into(),
        }],
    };
    let error = ClientError::OutcomeUnknown {
        error: Box::new(inner),
        lookup: None,
    };
    assert!(error.outcome_unknown());
    assert_eq!(error.status(), Some(502));
    assert!(error.has_code(10002));
    assert!(error.hint().is_some_and(|h| h.contains("flareops plan")));
    assert!(
        error
            .to_string()
            .contains("may or may not have taken effect"),
        "{error}"
    );
    let deadline = ClientError::Deadline {
        method: Method::GET,
        path: "/x".into(),
        timeout: Duration::from_secs(900),
        last: None,
    };
    assert!(deadline.is_deadline());
    assert_eq!(deadline.status(), None);
    assert!(
        deadline
            .hint()
            .is_some_and(|h| h.contains("FLAREOPS_TIMEOUT"))
    );
}

#[test]
fn decode_reads_errors_and_results() {
    let body = br#"{"success":false,"errors":[{"code":10014,"message":"dup"}],"messages":[],"result":null}"#;
    let error = decode::<serde_json::Value>(&Method::POST, "/x", StatusCode::BAD_REQUEST, body)
        .expect_err("an error envelope");
    assert!(error.has_code(10014));
    assert_eq!(error.status(), Some(400));
    let ok = br#"{"success":true,"errors":[],"messages":[],"result":[1,2],"result_info":{"total_count":2}}"#;
    let (result, info) = decode::<Vec<u8>>(&Method::GET, "/x", StatusCode::OK, ok).expect("ok");
    assert_eq!(result, Some(vec![1, 2]));
    assert_eq!(info.total_count, Some(2));
}

#[test]
fn non_envelope_error_body_is_an_api_error_with_status() {
    let error = decode::<serde_json::Value>(&Method::GET, "/x", StatusCode::BAD_GATEWAY, b"<html>")
        .expect_err("an error");
    assert_eq!(error.status(), Some(502));
}

#[tokio::test]
async fn clients_given_one_limiter_share_one_bucket() {
    let limit = RateLimit::per_window_with_burst(2, Duration::from_secs(3600), 2);
    let shared = RateLimiter::new(limit);
    let config = || ClientConfig::new("http://127.0.0.1:9/client/v4", Token::new("t"), "acc");
    let first = Client::new(config())
        .expect("client")
        .with_rate_limiter(shared.clone());
    let second = Client::new(config())
        .expect("client")
        .with_rate_limiter(shared.clone());
    let now = Some(tokio::time::Instant::now() + Duration::from_secs(1));
    first
        .rate_limiter()
        .acquire(now)
        .await
        .expect("first token");
    second
        .rate_limiter()
        .acquire(now)
        .await
        .expect("second token");
    // The burst of two is spent by the two clients together.
    assert!(first.rate_limiter().acquire(now).await.is_err());
    assert!(second.rate_limiter().acquire(now).await.is_err());
    // A client with its own limiter has its own bucket.
    let third = Client::new(config()).expect("client");
    assert!(third.rate_limiter().acquire(now).await.is_ok());
}

/// The queue named `jobs`, read through the list.
async fn jobs_queue(client: &Client) -> Queue {
    client
        .list_queues()
        .await
        .expect("list")
        .into_iter()
        .find(|q| q.queue_name == "jobs")
        .expect("jobs")
}

/// Queues through the client against the in-process emulator: create with
/// settings (and a lost answer looked up by name), list, update, a worker
/// consumer created, replaced and deleted, delete.
#[tokio::test]
async fn queues_and_consumers_through_the_emulator() {
    let state = tempfile::tempdir().expect("state dir");
    let emulator = crate::emulator::start(crate::emulator::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        state_dir: state.path().to_path_buf(),
        token: "t".into(),
        account_id: "0123456789abcdef0123456789abcdef".into(),
        zones: Vec::new(),
    })
    .await
    .expect("emulator");
    let mut config = ClientConfig::new(
        emulator.base_url(),
        Token::new("t"),
        "0123456789abcdef0123456789abcdef",
    );
    config.rate_limit = None;
    let client = Client::new(config).expect("client");
    let settings = QueueSettings {
        delivery_delay: Some(5),
        message_retention_period: Some(3600),
    };
    let created = client
        .create_queue("jobs", &settings)
        .await
        .expect("create");
    assert_eq!(created.queue_name, "jobs");
    assert_eq!(created.settings, settings);
    let dlq = client
        .create_queue("jobs-dlq", &QueueSettings::default())
        .await
        .expect("create the dead-letter queue");
    assert_eq!(dlq.settings.message_retention_period, Some(345_600));
    client
        .update_queue(
            &created.queue_id,
            "jobs",
            &QueueSettings {
                delivery_delay: Some(0),
                message_retention_period: None,
            },
        )
        .await
        .expect("update");
    let listed = client.list_queues().await.expect("list");
    let jobs = listed
        .iter()
        .find(|q| q.queue_name == "jobs")
        .expect("jobs");
    assert_eq!(jobs.settings.delivery_delay, Some(0));
    assert_eq!(
        jobs.settings.message_retention_period,
        Some(3600),
        "PATCH keeps it"
    );

    // A consumer needs its script.
    let consumer_settings = ConsumerSettings {
        batch_size: Some(10),
        max_retries: Some(3),
        ..ConsumerSettings::default()
    };
    let consumer = ConsumerRequest {
        script: "api",
        settings: &consumer_settings,
        dead_letter_queue: Some("jobs-dlq"),
    };
    let missing = client
        .create_queue_consumer(&created.queue_id, &consumer)
        .await;
    assert!(missing.is_err(), "no script `api` yet");
    let bindings = std::collections::BTreeMap::new();
    client
        .upload_worker_script(
            "api",
            &crate::cloudflare::WorkerUpload {
                main_module: "index.js",
                modules: &[crate::model::WorkerModule {
                    name: "index.js".into(),
                    kind: crate::model::ModuleKind::EsModule,
                    content: b"export default { async queue() {} };".to_vec(),
                }],
                compatibility_date: "2025-01-15",
                compatibility_flags: &[],
                bindings: &bindings,
                secrets: Vec::new(),
                tag: "t1",
                message: "test",
                migration: None,
            },
        )
        .await
        .expect("upload");
    client
        .create_queue_consumer(&created.queue_id, &consumer)
        .await
        .expect("create the consumer");
    let jobs = jobs_queue(&client).await;
    let live = &jobs.consumers[0];
    assert_eq!(live.script(), Some("api"));
    assert_eq!(live.settings, consumer_settings);
    assert_eq!(live.dead_letter_queue.as_deref(), Some("jobs-dlq"));
    let replaced_settings = ConsumerSettings {
        batch_size: Some(50),
        ..ConsumerSettings::default()
    };
    client
        .update_queue_consumer(
            &jobs.queue_id,
            &live.consumer_id,
            &ConsumerRequest {
                script: "api",
                settings: &replaced_settings,
                dead_letter_queue: None,
            },
        )
        .await
        .expect("replace the consumer");
    let jobs = jobs_queue(&client).await;
    assert_eq!(jobs.consumers[0].settings, replaced_settings);
    assert_eq!(jobs.consumers[0].dead_letter_queue, None);
    client
        .delete_queue_consumer(&jobs.queue_id, &jobs.consumers[0].consumer_id)
        .await
        .expect("delete the consumer");
    client.delete_queue(&jobs.queue_id).await.expect("delete");
    let names: Vec<String> = client
        .list_queues()
        .await
        .expect("list")
        .into_iter()
        .map(|q| q.queue_name)
        .collect();
    assert_eq!(names, ["jobs-dlq"]);
}
