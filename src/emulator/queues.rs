//! Queues under `/accounts/{account_id}/queues`, in the shapes the current
//! API, the official SDKs and wrangler use.
//!
//! Queues: list (page-paginated; `name` repeatable filters by name, as
//! wrangler's `listAllQueues` sends it), create (`{queue_name, settings?}`),
//! get, update (`PATCH`: the fields given; `PUT`: the whole queue), delete
//! (with its consumers). A queue is `{queue_id, queue_name, created_on,
//! modified_on, producers, producers_total_count, consumers,
//! consumers_total_count, settings: {delivery_delay, delivery_paused,
//! message_retention_period}}`; producers are the workers whose latest
//! version binds the queue (`{type: "worker", script}`).
//!
//! Consumers under `…/queues/{queue_id}/consumers`: list, create (`{type:
//! "worker", script_name, settings: {batch_size, max_retries,
//! max_wait_time_ms, max_concurrency, retry_delay}, dead_letter_queue}`, or
//! `{type: "http_pull"}`), get, replace (`PUT`), delete. A queue has at
//! most one consumer. The script must exist; a dead-letter queue must be
//! another queue of the account.
//!
//! Errors: 11000 unknown queue (404), 11009 name taken (409), 11007 unknown
//! consumer (404), 11008 a second consumer (409), 10026 unknown script
//! (404), 11001 validation (400). Cloudflare does not document these codes;
//! wrangler reads only the messages.

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use rusqlite::{Connection, OptionalExtension as _, params};
use serde_json::{Map, Value, json};

use super::envelope::{ApiError, ApiResult, QueryMap, int_param, paginate, query_map, success};
use super::{API_PREFIX, SharedState};

const QUEUE_NOT_FOUND: u32 = 11000;
const VALIDATION: u32 = 11001;
const CONSUMER_NOT_FOUND: u32 = 11007;
const CONSUMER_EXISTS: u32 = 11008;
const NAME_TAKEN: u32 = 11009;
const SCRIPT_NOT_FOUND: u32 = 10007;

/// Page size: default, minimum, maximum.
const PER_PAGE: (i64, i64, i64) = (100, 1, 1000);
/// Delivery delay: at most a day, in seconds (wrangler's bound).
const MAX_DELIVERY_DELAY: i64 = 86_400;
/// Message retention: 60 s to 14 days, 4 days by default.
const RETENTION: (i64, i64, i64) = (345_600, 60, 1_209_600);

pub(crate) fn routes() -> Router<SharedState> {
    let base = format!("{API_PREFIX}/accounts/{{account_id}}/queues");
    Router::new()
        .route(&base, get(list_queues).post(create_queue))
        .route(
            &format!("{base}/{{queue_id}}"),
            get(get_queue)
                .patch(patch_queue)
                .put(put_queue)
                .delete(delete_queue),
        )
        .route(
            &format!("{base}/{{queue_id}}/consumers"),
            get(list_consumers).post(create_consumer),
        )
        .route(
            &format!("{base}/{{queue_id}}/consumers/{{consumer_id}}"),
            get(get_consumer).put(put_consumer).delete(delete_consumer),
        )
}

type QueuePath = Result<Path<(String, String)>, PathRejection>;
type ConsumerPath = Result<Path<(String, String, String)>, PathRejection>;
type QueryParams = Result<Query<QueryMap>, QueryRejection>;

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(VALIDATION, message)
}

fn path_error(rejection: PathRejection) -> ApiError {
    invalid(format!("malformed path: {rejection}"))
}

fn queue_not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, QUEUE_NOT_FOUND, "Queue not found")
}

fn body_json(body: &[u8], what: &str) -> ApiResult<Map<String, Value>> {
    if body.is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(invalid(format!("{what}: the body must be a JSON object"))),
        Err(error) => Err(invalid(format!("{what}: invalid JSON: {error}"))),
    }
}

/// A queue name: 1-63 of lowercase letters, digits and `-`.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// An optional integer setting within `min..=max`.
fn setting(
    settings: &Map<String, Value>,
    name: &str,
    min: i64,
    max: i64,
) -> ApiResult<Option<i64>> {
    match settings.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => match value.as_i64() {
            Some(n) if (min..=max).contains(&n) => Ok(Some(n)),
            _ => Err(invalid(format!(
                "settings.{name} must be an integer from {min} to {max}, got {value}"
            ))),
        },
    }
}

/// The workers whose latest version binds queue `name`.
fn producers(conn: &Connection, name: &str) -> ApiResult<Vec<Value>> {
    let mut statement = conn.prepare(
        "SELECT v.script, v.bindings FROM worker_versions v
         WHERE v.number = (SELECT MAX(number) FROM worker_versions WHERE script = v.script)
         ORDER BY v.script",
    )?;
    let rows = statement
        .query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows
        .into_iter()
        .filter(|(_, bindings)| {
            serde_json::from_str::<Value>(bindings)
                .ok()
                .and_then(|b| b.as_array().cloned())
                .unwrap_or_default()
                .iter()
                .any(|b| b["type"] == "queue" && b["queue_name"] == name)
        })
        .map(|(script, _)| json!({"type": "worker", "script": script}))
        .collect())
}

fn consumer_json(row: &rusqlite::Row<'_>) -> rusqlite::Result<Value> {
    let kind: String = row.get(3)?;
    let settings: String = row.get(4)?;
    let mut consumer = json!({
        "consumer_id": row.get::<_, String>(0)?,
        "queue_id": row.get::<_, String>(1)?,
        "type": kind,
        "settings": serde_json::from_str::<Value>(&settings).unwrap_or_else(|_| json!({})),
        "created_on": row.get::<_, String>(6)?,
    });
    if let Some(script) = row.get::<_, Option<String>>(2)? {
        consumer["script"] = json!(script);
    }
    if let Some(dlq) = row.get::<_, Option<String>>(5)? {
        consumer["dead_letter_queue"] = json!(dlq);
    }
    Ok(consumer)
}

const CONSUMER_COLUMNS: &str =
    "id, queue_id, script, type, settings, dead_letter_queue, created_on";

fn consumers(conn: &Connection, queue_id: &str) -> ApiResult<Vec<Value>> {
    let mut statement = conn.prepare(&format!(
        "SELECT {CONSUMER_COLUMNS} FROM queue_consumers WHERE queue_id = ?1 ORDER BY created_on, id"
    ))?;
    Ok(statement
        .query_map([queue_id], consumer_json)?
        .collect::<rusqlite::Result<Vec<_>>>()?)
}

/// The queue `id` as the API answers it, `None` when unknown.
fn load_queue(conn: &Connection, id: &str) -> ApiResult<Option<Value>> {
    let row = conn
        .query_row(
            "SELECT id, name, delivery_delay, message_retention_period, delivery_paused,
                    created_on, modified_on
             FROM queues WHERE id = ?1",
            [id],
            |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, i64>(2)?,
                    row.get::<_, i64>(3)?,
                    row.get::<_, bool>(4)?,
                    row.get::<_, String>(5)?,
                    row.get::<_, String>(6)?,
                ))
            },
        )
        .optional()?;
    let Some((id, name, delay, retention, paused, created, modified)) = row else {
        return Ok(None);
    };
    let producers = producers(conn, &name)?;
    let consumers = consumers(conn, &id)?;
    Ok(Some(json!({
        "queue_id": id,
        "queue_name": name,
        "created_on": created,
        "modified_on": modified,
        "producers_total_count": producers.len(),
        "producers": producers,
        "consumers_total_count": consumers.len(),
        "consumers": consumers,
        "settings": {
            "delivery_delay": delay,
            "delivery_paused": paused,
            "message_retention_period": retention,
        },
    })))
}

fn require_queue(conn: &Connection, id: &str) -> ApiResult<Value> {
    load_queue(conn, id)?.ok_or_else(queue_not_found)
}

async fn list_queues(
    State(state): State<SharedState>,
    query: QueryParams,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let query = query_map(query, VALIDATION)?;
    let page = int_param(&query, "page", 1, 1, i64::MAX, VALIDATION)?;
    let per_page = int_param(
        &query, "per_page", PER_PAGE.0, PER_PAGE.1, PER_PAGE.2, VALIDATION,
    )?;
    // `name` may repeat (wrangler asks for several queues at once).
    let names: Vec<String> = url_pairs(raw.as_deref().unwrap_or_default())
        .into_iter()
        .filter(|(k, _)| k == "name")
        .map(|(_, v)| v)
        .collect();
    let queues = state
        .store
        .call(move |conn| {
            let mut statement =
                conn.prepare("SELECT id, name FROM queues ORDER BY created_on, id")?;
            let rows = statement
                .query_map([], |row| {
                    Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let mut out = Vec::new();
            for (id, name) in rows {
                if names.is_empty() || names.contains(&name) {
                    out.extend(load_queue(conn, &id)?);
                }
            }
            Ok(out)
        })
        .await?;
    Ok(paginate(queues, page, per_page))
}

/// `a=1&a=2` -> pairs, percent-decoded.
fn url_pairs(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(&s.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (decode(k), decode(v))
        })
        .collect()
}

/// Validated `settings` of a queue body: (delay, retention, paused).
fn queue_settings(
    body: &Map<String, Value>,
) -> ApiResult<(Option<i64>, Option<i64>, Option<bool>)> {
    let empty = Map::new();
    let settings = match body.get("settings") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(settings)) => settings,
        Some(_) => return Err(invalid("settings must be an object")),
    };
    let delay = setting(settings, "delivery_delay", 0, MAX_DELIVERY_DELAY)?;
    let retention = setting(
        settings,
        "message_retention_period",
        RETENTION.1,
        RETENTION.2,
    )?;
    let paused = match settings.get("delivery_paused") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => return Err(invalid("settings.delivery_paused must be a boolean")),
    };
    Ok((delay, retention, paused))
}

async fn create_queue(State(state): State<SharedState>, body: Bytes) -> ApiResult<Response> {
    let body = body_json(&body, "create queue")?;
    let name = body
        .get("queue_name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if !valid_name(&name) {
        return Err(invalid(format!(
            "queue_name {name:?} is invalid: 1 to 63 lowercase letters, digits and dashes"
        )));
    }
    let (delay, retention, paused) = queue_settings(&body)?;
    let id = uuid::Uuid::new_v4().simple().to_string();
    let now = state.clock.timestamp();
    let queue = state
        .store
        .call(move |conn| {
            let taken: bool = conn.query_row(
                "SELECT EXISTS (SELECT 1 FROM queues WHERE name = ?1)",
                [&name],
                |row| row.get(0),
            )?;
            if taken {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    NAME_TAKEN,
                    format!("A queue with name '{name}' already exists"),
                ));
            }
            conn.execute(
                "INSERT INTO queues (id, name, delivery_delay, message_retention_period,
                                     delivery_paused, created_on, modified_on)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
                params![
                    id,
                    name,
                    delay.unwrap_or(0),
                    retention.unwrap_or(RETENTION.0),
                    paused.unwrap_or(false),
                    now
                ],
            )?;
            require_queue(conn, &id)
        })
        .await?;
    Ok(success(queue))
}

async fn get_queue(State(state): State<SharedState>, path: QueuePath) -> ApiResult<Response> {
    let Path((_, id)) = path.map_err(path_error)?;
    let queue = state
        .store
        .call(move |conn| require_queue(conn, &id))
        .await?;
    Ok(success(queue))
}

/// `PATCH` (`replace: false`) keeps what the body leaves out; `PUT` resets
/// it to the defaults.
async fn update(state: SharedState, id: String, body: Bytes, replace: bool) -> ApiResult<Response> {
    let body = body_json(&body, "update queue")?;
    let name = body
        .get("queue_name")
        .and_then(Value::as_str)
        .map(str::to_string);
    if let Some(name) = &name
        && !valid_name(name)
    {
        return Err(invalid(format!("queue_name {name:?} is invalid")));
    }
    let (delay, retention, paused) = queue_settings(&body)?;
    let now = state.clock.timestamp();
    let queue = state
        .store
        .call(move |conn| {
            require_queue(conn, &id)?;
            if let Some(name) = &name {
                let other: Option<String> = conn
                    .query_row("SELECT id FROM queues WHERE name = ?1", [name], |row| {
                        row.get(0)
                    })
                    .optional()?;
                if other.is_some_and(|other| other != id) {
                    return Err(ApiError::new(
                        StatusCode::CONFLICT,
                        NAME_TAKEN,
                        format!("A queue with name '{name}' already exists"),
                    ));
                }
                conn.execute(
                    "UPDATE queues SET name = ?2 WHERE id = ?1",
                    params![id, name],
                )?;
            }
            let defaults = |value: Option<i64>, default: i64| value.or(replace.then_some(default));
            if let Some(delay) = defaults(delay, 0) {
                conn.execute(
                    "UPDATE queues SET delivery_delay = ?2 WHERE id = ?1",
                    params![id, delay],
                )?;
            }
            if let Some(retention) = defaults(retention, RETENTION.0) {
                conn.execute(
                    "UPDATE queues SET message_retention_period = ?2 WHERE id = ?1",
                    params![id, retention],
                )?;
            }
            if let Some(paused) = paused.or(replace.then_some(false)) {
                conn.execute(
                    "UPDATE queues SET delivery_paused = ?2 WHERE id = ?1",
                    params![id, paused],
                )?;
            }
            conn.execute(
                "UPDATE queues SET modified_on = ?2 WHERE id = ?1",
                params![id, now],
            )?;
            require_queue(conn, &id)
        })
        .await?;
    Ok(success(queue))
}

async fn patch_queue(
    State(state): State<SharedState>,
    path: QueuePath,
    body: Bytes,
) -> ApiResult<Response> {
    let Path((_, id)) = path.map_err(path_error)?;
    update(state, id, body, false).await
}

async fn put_queue(
    State(state): State<SharedState>,
    path: QueuePath,
    body: Bytes,
) -> ApiResult<Response> {
    let Path((_, id)) = path.map_err(path_error)?;
    update(state, id, body, true).await
}

async fn delete_queue(State(state): State<SharedState>, path: QueuePath) -> ApiResult<Response> {
    let Path((_, id)) = path.map_err(path_error)?;
    state
        .store
        .call(move |conn| {
            require_queue(conn, &id)?;
            conn.execute("DELETE FROM queue_consumers WHERE queue_id = ?1", [&id])?;
            conn.execute("DELETE FROM queues WHERE id = ?1", [&id])?;
            Ok(())
        })
        .await?;
    Ok(success(Value::Null))
}

async fn list_consumers(State(state): State<SharedState>, path: QueuePath) -> ApiResult<Response> {
    let Path((_, id)) = path.map_err(path_error)?;
    let list = state
        .store
        .call(move |conn| {
            require_queue(conn, &id)?;
            consumers(conn, &id)
        })
        .await?;
    Ok(paginate(list, 1, PER_PAGE.2))
}

/// A consumer body, validated: (type, script, settings, dead-letter queue).
fn consumer_body(
    conn: &Connection,
    queue_id: &str,
    body: &Map<String, Value>,
) -> ApiResult<(String, Option<String>, Value, Option<String>)> {
    let kind = body
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("worker")
        .to_string();
    if kind != "worker" && kind != "http_pull" {
        return Err(invalid(format!(
            "type must be `worker` or `http_pull`, got {kind:?}"
        )));
    }
    let script = body
        .get("script_name")
        .or_else(|| body.get("script"))
        .and_then(Value::as_str)
        .map(str::to_string);
    if kind == "worker" {
        let Some(script) = &script else {
            return Err(invalid("a worker consumer needs `script_name`"));
        };
        let known: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM worker_scripts WHERE name = ?1)",
            [script],
            |row| row.get(0),
        )?;
        if !known {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                SCRIPT_NOT_FOUND,
                format!("workers.api.error.script_not_found: the script '{script}' does not exist"),
            ));
        }
    }
    let empty = Map::new();
    let given = match body.get("settings") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(settings)) => settings,
        Some(_) => return Err(invalid("settings must be an object")),
    };
    let mut settings = Map::new();
    for (name, min, max) in [
        ("batch_size", 1, 100),
        ("max_retries", 0, 100),
        ("max_wait_time_ms", 0, 60_000),
        ("max_concurrency", 1, 250),
        ("retry_delay", 0, 43_200),
        ("visibility_timeout_ms", 0, 43_200_000),
    ] {
        if let Some(value) = setting(given, name, min, max)? {
            settings.insert(name.into(), json!(value));
        }
    }
    let dlq = body
        .get("dead_letter_queue")
        .and_then(Value::as_str)
        .filter(|d| !d.is_empty())
        .map(str::to_string);
    if let Some(dlq) = &dlq {
        let target: Option<String> = conn
            .query_row("SELECT id FROM queues WHERE name = ?1", [dlq], |row| {
                row.get(0)
            })
            .optional()?;
        match target {
            None => {
                return Err(invalid(format!(
                    "dead_letter_queue '{dlq}' is not a queue of this account"
                )));
            }
            Some(target) if target == queue_id => {
                return Err(invalid("a queue cannot be its own dead letter queue"));
            }
            Some(_) => {}
        }
    }
    Ok((kind, script, Value::Object(settings), dlq))
}

async fn create_consumer(
    State(state): State<SharedState>,
    path: QueuePath,
    body: Bytes,
) -> ApiResult<Response> {
    let Path((_, queue_id)) = path.map_err(path_error)?;
    let body = body_json(&body, "create consumer")?;
    let id = uuid::Uuid::new_v4().simple().to_string();
    let now = state.clock.timestamp();
    let consumer = state
        .store
        .call(move |conn| {
            require_queue(conn, &queue_id)?;
            let (kind, script, settings, dlq) = consumer_body(conn, &queue_id, &body)?;
            let existing: bool = conn.query_row(
                "SELECT EXISTS (SELECT 1 FROM queue_consumers WHERE queue_id = ?1)",
                [&queue_id],
                |row| row.get(0),
            )?;
            if existing {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    CONSUMER_EXISTS,
                    "this queue already has a consumer: remove it first",
                ));
            }
            conn.execute(
                "INSERT INTO queue_consumers (id, queue_id, script, type, settings, dead_letter_queue, created_on)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![id, queue_id, script, kind, settings.to_string(), dlq, now],
            )?;
            require_consumer(conn, &queue_id, &id)
        })
        .await?;
    Ok(success(consumer))
}

fn require_consumer(conn: &Connection, queue_id: &str, id: &str) -> ApiResult<Value> {
    conn.query_row(
        &format!("SELECT {CONSUMER_COLUMNS} FROM queue_consumers WHERE queue_id = ?1 AND id = ?2"),
        params![queue_id, id],
        consumer_json,
    )
    .optional()?
    .ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            CONSUMER_NOT_FOUND,
            "Consumer not found",
        )
    })
}

async fn get_consumer(State(state): State<SharedState>, path: ConsumerPath) -> ApiResult<Response> {
    let Path((_, queue_id, id)) = path.map_err(path_error)?;
    let consumer = state
        .store
        .call(move |conn| {
            require_queue(conn, &queue_id)?;
            require_consumer(conn, &queue_id, &id)
        })
        .await?;
    Ok(success(consumer))
}

async fn put_consumer(
    State(state): State<SharedState>,
    path: ConsumerPath,
    body: Bytes,
) -> ApiResult<Response> {
    let Path((_, queue_id, id)) = path.map_err(path_error)?;
    let body = body_json(&body, "update consumer")?;
    let consumer = state
        .store
        .call(move |conn| {
            require_queue(conn, &queue_id)?;
            require_consumer(conn, &queue_id, &id)?;
            let (kind, script, settings, dlq) = consumer_body(conn, &queue_id, &body)?;
            conn.execute(
                "UPDATE queue_consumers SET type = ?3, script = ?4, settings = ?5, dead_letter_queue = ?6
                 WHERE queue_id = ?1 AND id = ?2",
                params![queue_id, id, kind, script, settings.to_string(), dlq],
            )?;
            require_consumer(conn, &queue_id, &id)
        })
        .await?;
    Ok(success(consumer))
}

async fn delete_consumer(
    State(state): State<SharedState>,
    path: ConsumerPath,
) -> ApiResult<Response> {
    let Path((_, queue_id, id)) = path.map_err(path_error)?;
    state
        .store
        .call(move |conn| {
            require_queue(conn, &queue_id)?;
            require_consumer(conn, &queue_id, &id)?;
            conn.execute("DELETE FROM queue_consumers WHERE id = ?1", [&id])?;
            Ok(())
        })
        .await?;
    Ok(success(Value::Null))
}
