//! Workers KV under `/accounts/{account_id}/storage/kv/namespaces`.
//!
//! Namespaces: list (page-paginated, `order=id|title`, `direction`), create (`{title}`),
//! get, rename (`PUT {title}`, answers the renamed namespace, which wrangler prints), delete.
//! Keys: list (`prefix`, `limit` 10..1000, opaque `cursor`, `""` on the last page), value
//! put (raw body, or multipart `value` + `metadata`; `expiration` / `expiration_ttl`), value get
//! (raw bytes, no envelope, `expiration` header), metadata get, value delete, bulk write
//! (`PUT …/bulk`), bulk delete (`POST …/bulk/delete` and the deprecated `DELETE …/bulk` that
//! wrangler still sends) and bulk get (`POST …/bulk/get`). Expired keys are never returned.
//!
//! Errors follow the API's `"<operation>: '<reason>'"` style: 10013 unknown namespace (404),
//! 10009 unknown key (404), 10014 duplicate title (400); validation failures are 400 with 10001
//! (the code miniflare's local explorer uses when it mimics this API).

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use rusqlite::{Connection, OptionalExtension as _, params};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::envelope::{
    ApiError, ApiResult, QueryMap, decode_cursor, encode_cursor, enum_param, int_param, paginate,
    parse_json, query_map, success, success_with_info,
};
use super::{API_PREFIX, SharedState};

const NAMESPACE_NOT_FOUND: u32 = 10013;
const KEY_NOT_FOUND: u32 = 10009;
const DUPLICATE_TITLE: u32 = 10014;
const VALIDATION: u32 = 10001;

const MAX_TITLE_CHARS: usize = 512;
const MAX_KEY_BYTES: usize = 512;
const MAX_VALUE_BYTES: usize = 25 * 1024 * 1024;
const MAX_METADATA_BYTES: usize = 1024;
const MIN_TTL_SECONDS: i64 = 60;
const MAX_BULK_ITEMS: usize = 10_000;
const MAX_BULK_GET_KEYS: usize = 100;
const NAMESPACES_PER_PAGE: (i64, i64, i64) = (20, 1, 1000);
const KEYS_LIMIT: (i64, i64, i64) = (1000, 10, 1000);

pub(crate) fn routes() -> Router<SharedState> {
    let base = format!("{API_PREFIX}/accounts/{{account_id}}/storage/kv/namespaces");
    Router::new()
        .route(&base, get(list_namespaces).post(create_namespace))
        .route(
            &format!("{base}/{{namespace_id}}"),
            get(get_namespace)
                .put(rename_namespace)
                .delete(delete_namespace),
        )
        .route(&format!("{base}/{{namespace_id}}/keys"), get(list_keys))
        .route(
            &format!("{base}/{{namespace_id}}/values/{{*key_name}}"),
            get(get_value).put(put_value).delete(delete_value),
        )
        .route(
            &format!("{base}/{{namespace_id}}/metadata/{{*key_name}}"),
            get(get_metadata),
        )
        .route(
            &format!("{base}/{{namespace_id}}/bulk"),
            put(bulk_write).delete(bulk_delete),
        )
        .route(
            &format!("{base}/{{namespace_id}}/bulk/delete"),
            post(bulk_delete),
        )
        .route(&format!("{base}/{{namespace_id}}/bulk/get"), post(bulk_get))
}

type NamespacePath = Result<Path<(String, String)>, PathRejection>;
type KeyPath = Result<Path<(String, String, String)>, PathRejection>;
type QueryParams = Result<Query<QueryMap>, QueryRejection>;

fn path_error(rejection: PathRejection) -> ApiError {
    ApiError::bad_request(VALIDATION, format!("malformed path: {rejection}"))
}

fn namespace_not_found(operation: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        NAMESPACE_NOT_FOUND,
        format!("{operation}: 'namespace not found'"),
    )
}

fn invalid(operation: &str, reason: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(VALIDATION, format!("{operation}: '{reason}'"))
}

fn namespace_json(id: &str, title: &str, jurisdiction: Option<&str>) -> Value {
    let mut namespace = json!({ "id": id, "title": title, "supports_url_encoding": true });
    if let Some(jurisdiction) = jurisdiction {
        namespace["jurisdiction"] = Value::String(jurisdiction.to_owned());
    }
    namespace
}

fn load_namespace(conn: &Connection, id: &str) -> rusqlite::Result<Option<Value>> {
    conn.query_row(
        "SELECT id, title, jurisdiction FROM kv_namespaces WHERE id = ?1",
        [id],
        |row| {
            let id: String = row.get(0)?;
            let title: String = row.get(1)?;
            let jurisdiction: Option<String> = row.get(2)?;
            Ok(namespace_json(&id, &title, jurisdiction.as_deref()))
        },
    )
    .optional()
}

fn require_namespace(conn: &Connection, id: &str, operation: &str) -> ApiResult<()> {
    let exists: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM kv_namespaces WHERE id = ?1)",
        [id],
        |row| row.get(0),
    )?;
    if exists {
        Ok(())
    } else {
        Err(namespace_not_found(operation))
    }
}

fn validate_title(operation: &str, title: &str) -> ApiResult<()> {
    if title.trim().is_empty() {
        return Err(invalid(operation, "title must not be empty"));
    }
    if title.chars().count() > MAX_TITLE_CHARS {
        return Err(invalid(
            operation,
            format!("title must be at most {MAX_TITLE_CHARS} characters"),
        ));
    }
    Ok(())
}

fn validate_key(operation: &str, key: &str) -> ApiResult<()> {
    if key.is_empty() {
        return Err(invalid(operation, "key names must not be empty"));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(invalid(
            operation,
            format!(
                "key names must be at most {MAX_KEY_BYTES} bytes, got {}",
                key.len()
            ),
        ));
    }
    if key == "." || key == ".." {
        return Err(invalid(operation, "key names cannot be \".\" or \"..\""));
    }
    Ok(())
}

fn validate_value(operation: &str, value: &[u8]) -> ApiResult<()> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            VALIDATION,
            format!(
                "{operation}: 'values must be at most {MAX_VALUE_BYTES} bytes, got {}'",
                value.len()
            ),
        ));
    }
    Ok(())
}

/// Serializes metadata, enforcing the 1024-byte limit.
fn encode_metadata(operation: &str, metadata: &Value) -> ApiResult<String> {
    let encoded = metadata.to_string();
    if encoded.len() > MAX_METADATA_BYTES {
        return Err(invalid(
            operation,
            format!(
                "metadata must be at most {MAX_METADATA_BYTES} bytes when serialized, got {}",
                encoded.len()
            ),
        ));
    }
    Ok(encoded)
}

/// The absolute expiration from `expiration` / `expiration_ttl` (the TTL wins when both are set).
fn resolve_expiration(
    operation: &str,
    now: i64,
    expiration: Option<i64>,
    expiration_ttl: Option<i64>,
) -> ApiResult<Option<i64>> {
    if let Some(ttl) = expiration_ttl {
        if ttl < MIN_TTL_SECONDS {
            return Err(invalid(
                operation,
                format!(
                    "Invalid expiration_ttl of {ttl}. Expiration TTL must be at least {MIN_TTL_SECONDS}."
                ),
            ));
        }
        return Ok(Some(now.saturating_add(ttl)));
    }
    if let Some(expiration) = expiration {
        if expiration < now + MIN_TTL_SECONDS {
            return Err(invalid(
                operation,
                format!(
                    "Invalid expiration of {expiration}. Expiration times must be at least {MIN_TTL_SECONDS} seconds in the future."
                ),
            ));
        }
        return Ok(Some(expiration));
    }
    Ok(None)
}

fn number_param(query: &QueryMap, name: &str, operation: &str) -> ApiResult<Option<i64>> {
    let Some(raw) = query.get(name).filter(|raw| !raw.is_empty()) else {
        return Ok(None);
    };
    raw.parse::<i64>()
        .ok()
        .or_else(|| {
            raw.parse::<f64>()
                .ok()
                .filter(|float| float.is_finite())
                .map(|float| float as i64)
        })
        .map(Some)
        .ok_or_else(|| invalid(operation, format!("{name} must be a number, got {raw:?}")))
}

// ---------------------------------------------------------------------------------------------
// Namespaces
// ---------------------------------------------------------------------------------------------

async fn list_namespaces(
    State(state): State<SharedState>,
    query: QueryParams,
) -> ApiResult<Response> {
    let query = query_map(query, VALIDATION)?;
    let page = int_param(&query, "page", 1, 1, i64::MAX, VALIDATION)?;
    let (default, min, max) = NAMESPACES_PER_PAGE;
    let per_page = int_param(&query, "per_page", default, min, max, VALIDATION)?;
    let order = enum_param(&query, "order", &["id", "title"], VALIDATION)?.unwrap_or("id");
    let direction = enum_param(&query, "direction", &["asc", "desc"], VALIDATION)?.unwrap_or("asc");
    let sql = format!(
        "SELECT id, title, jurisdiction FROM kv_namespaces ORDER BY {} {}",
        if order == "title" { "title" } else { "id" },
        if direction == "desc" { "DESC" } else { "ASC" },
    );
    let items = state
        .store
        .call(move |conn| {
            let mut statement = conn.prepare(&sql)?;
            let rows = statement.query_map([], |row| {
                let id: String = row.get(0)?;
                let title: String = row.get(1)?;
                let jurisdiction: Option<String> = row.get(2)?;
                Ok(namespace_json(&id, &title, jurisdiction.as_deref()))
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<Value>>>()?)
        })
        .await?;
    Ok(paginate(items, page, per_page))
}

#[derive(Deserialize)]
struct NamespaceBody {
    title: Option<String>,
    jurisdiction: Option<String>,
}

async fn create_namespace(State(state): State<SharedState>, body: Bytes) -> ApiResult<Response> {
    const OPERATION: &str = "create namespace";
    let body: NamespaceBody = parse_json(&body, VALIDATION, OPERATION)?;
    let title = body
        .title
        .ok_or_else(|| invalid(OPERATION, "title is required"))?;
    validate_title(OPERATION, &title)?;
    if let Some(jurisdiction) = &body.jurisdiction
        && !["eu", "fedramp", "us"].contains(&jurisdiction.as_str())
    {
        return Err(invalid(
            OPERATION,
            format!("jurisdiction must be one of eu, fedramp, us, got {jurisdiction:?}"),
        ));
    }
    let id = uuid::Uuid::new_v4().simple().to_string();
    let namespace = state
        .store
        .call(move |conn| {
            let taken: bool = conn.query_row(
                "SELECT EXISTS (SELECT 1 FROM kv_namespaces WHERE title = ?1)",
                [&title],
                |row| row.get(0),
            )?;
            if taken {
                return Err(ApiError::bad_request(
                    DUPLICATE_TITLE,
                    format!(
                        "{OPERATION}: 'A namespace with this account ID and title already exists'"
                    ),
                ));
            }
            conn.execute(
                "INSERT INTO kv_namespaces (id, title, jurisdiction) VALUES (?1, ?2, ?3)",
                params![id, title, body.jurisdiction],
            )?;
            Ok(namespace_json(&id, &title, body.jurisdiction.as_deref()))
        })
        .await?;
    Ok(success(namespace))
}

async fn get_namespace(
    State(state): State<SharedState>,
    path: NamespacePath,
) -> ApiResult<Response> {
    let Path((_, namespace_id)) = path.map_err(path_error)?;
    let namespace = state
        .store
        .call(move |conn| Ok(load_namespace(conn, &namespace_id)?))
        .await?
        .ok_or_else(|| namespace_not_found("get namespace"))?;
    Ok(success(namespace))
}

async fn rename_namespace(
    State(state): State<SharedState>,
    path: NamespacePath,
    body: Bytes,
) -> ApiResult<Response> {
    const OPERATION: &str = "rename namespace";
    let Path((_, namespace_id)) = path.map_err(path_error)?;
    let body: NamespaceBody = parse_json(&body, VALIDATION, OPERATION)?;
    let title = body
        .title
        .ok_or_else(|| invalid(OPERATION, "title is required"))?;
    validate_title(OPERATION, &title)?;
    let namespace = state
        .store
        .call(move |conn| {
            let transaction = conn.transaction()?;
            require_namespace(&transaction, &namespace_id, OPERATION)?;
            let taken: bool = transaction.query_row(
                "SELECT EXISTS (SELECT 1 FROM kv_namespaces WHERE title = ?1 AND id <> ?2)",
                params![title, namespace_id],
                |row| row.get(0),
            )?;
            if taken {
                return Err(ApiError::bad_request(
                    DUPLICATE_TITLE,
                    format!(
                        "{OPERATION}: 'A namespace with this account ID and title already exists'"
                    ),
                ));
            }
            transaction.execute(
                "UPDATE kv_namespaces SET title = ?1 WHERE id = ?2",
                params![title, namespace_id],
            )?;
            let namespace = load_namespace(&transaction, &namespace_id)?;
            transaction.commit()?;
            namespace.ok_or_else(|| namespace_not_found(OPERATION))
        })
        .await?;
    Ok(success(namespace))
}

async fn delete_namespace(
    State(state): State<SharedState>,
    path: NamespacePath,
) -> ApiResult<Response> {
    const OPERATION: &str = "remove namespace";
    let Path((_, namespace_id)) = path.map_err(path_error)?;
    state
        .store
        .call(move |conn| {
            let transaction = conn.transaction()?;
            require_namespace(&transaction, &namespace_id, OPERATION)?;
            transaction.execute(
                "DELETE FROM kv_entries WHERE namespace_id = ?1",
                [&namespace_id],
            )?;
            transaction.execute("DELETE FROM kv_namespaces WHERE id = ?1", [&namespace_id])?;
            transaction.commit()?;
            Ok(())
        })
        .await?;
    Ok(success(Value::Null))
}

// ---------------------------------------------------------------------------------------------
// Keys and values
// ---------------------------------------------------------------------------------------------

async fn list_keys(
    State(state): State<SharedState>,
    path: NamespacePath,
    query: QueryParams,
) -> ApiResult<Response> {
    const OPERATION: &str = "list keys";
    let Path((_, namespace_id)) = path.map_err(path_error)?;
    let query = query_map(query, VALIDATION)?;
    let (default, min, max) = KEYS_LIMIT;
    let limit = int_param(&query, "limit", default, min, max, VALIDATION)?;
    let prefix = query.get("prefix").cloned().unwrap_or_default();
    let after = match query.get("cursor").filter(|cursor| !cursor.is_empty()) {
        Some(cursor) => Some(decode_cursor(cursor, VALIDATION)?),
        None => None,
    };
    let now = state.clock.unix_seconds();
    let (keys, more) = state
        .store
        .call(move |conn| {
            require_namespace(conn, &namespace_id, OPERATION)?;
            let mut statement = conn.prepare(
                "SELECT key, metadata, expiration FROM kv_entries
                 WHERE namespace_id = ?1
                   AND (expiration IS NULL OR expiration > ?2)
                   AND substr(key, 1, length(?3)) = ?3
                   AND (?4 IS NULL OR key > ?4)
                 ORDER BY key
                 LIMIT ?5",
            )?;
            let rows = statement.query_map(
                params![namespace_id, now, prefix, after, limit + 1],
                |row| {
                    let name: String = row.get(0)?;
                    let metadata: Option<String> = row.get(1)?;
                    let expiration: Option<i64> = row.get(2)?;
                    Ok((name, metadata, expiration))
                },
            )?;
            let mut keys = rows.collect::<rusqlite::Result<Vec<_>>>()?;
            let more = keys.len() as i64 > limit;
            keys.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
            Ok((keys, more))
        })
        .await?;
    let cursor = match (more, keys.last()) {
        (true, Some((last, _, _))) => encode_cursor(last),
        _ => String::new(),
    };
    let result: Vec<Value> = keys
        .into_iter()
        .map(|(name, metadata, expiration)| {
            let mut key = Map::new();
            key.insert("name".into(), Value::String(name));
            if let Some(expiration) = expiration {
                key.insert("expiration".into(), json!(expiration));
            }
            if let Some(metadata) = metadata.and_then(|text| serde_json::from_str(&text).ok()) {
                key.insert("metadata".into(), metadata);
            }
            Value::Object(key)
        })
        .collect();
    let count = result.len();
    Ok(success_with_info(
        Value::Array(result),
        json!({ "count": count, "cursor": cursor }),
    ))
}

async fn get_value(State(state): State<SharedState>, path: KeyPath) -> ApiResult<Response> {
    const OPERATION: &str = "get";
    let Path((_, namespace_id, key)) = path.map_err(path_error)?;
    validate_key(OPERATION, &key)?;
    let now = state.clock.unix_seconds();
    let found = state
        .store
        .call(move |conn| {
            require_namespace(conn, &namespace_id, OPERATION)?;
            Ok(conn
                .query_row(
                    "SELECT value, expiration FROM kv_entries
                     WHERE namespace_id = ?1 AND key = ?2
                       AND (expiration IS NULL OR expiration > ?3)",
                    params![namespace_id, key, now],
                    |row| Ok((row.get::<_, Vec<u8>>(0)?, row.get::<_, Option<i64>>(1)?)),
                )
                .optional()?)
        })
        .await?;
    let Some((value, expiration)) = found else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            KEY_NOT_FOUND,
            format!("{OPERATION}: 'key not found'"),
        ));
    };
    let mut response = (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        )],
        value,
    )
        .into_response();
    if let Some(expiration) = expiration
        && let Ok(value) = HeaderValue::from_str(&expiration.to_string())
    {
        response.headers_mut().insert("expiration", value);
    }
    Ok(response)
}

async fn get_metadata(State(state): State<SharedState>, path: KeyPath) -> ApiResult<Response> {
    const OPERATION: &str = "get metadata";
    let Path((_, namespace_id, key)) = path.map_err(path_error)?;
    validate_key(OPERATION, &key)?;
    let now = state.clock.unix_seconds();
    let found = state
        .store
        .call(move |conn| {
            require_namespace(conn, &namespace_id, OPERATION)?;
            Ok(conn
                .query_row(
                    "SELECT metadata FROM kv_entries
                     WHERE namespace_id = ?1 AND key = ?2
                       AND (expiration IS NULL OR expiration > ?3)",
                    params![namespace_id, key, now],
                    |row| row.get::<_, Option<String>>(0),
                )
                .optional()?)
        })
        .await?;
    let Some(metadata) = found else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            KEY_NOT_FOUND,
            format!("{OPERATION}: 'key not found'"),
        ));
    };
    let metadata = metadata
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or(Value::Null);
    Ok(success(metadata))
}

/// Reads a value written either raw or as multipart (`value` + optional `metadata` parts).
async fn read_value_body(
    state: &SharedState,
    request: Request,
) -> ApiResult<(Vec<u8>, Option<Value>)> {
    const OPERATION: &str = "put";
    let is_multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value
                .trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/form-data")
        });
    if !is_multipart {
        let body = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| invalid(OPERATION, format!("unreadable body: {rejection}")))?;
        return Ok((body.to_vec(), None));
    }
    let mut multipart = Multipart::from_request(request, state)
        .await
        .map_err(|rejection| {
            invalid(OPERATION, format!("malformed multipart body: {rejection}"))
        })?;
    let mut value = None;
    let mut metadata = None;
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|error| invalid(OPERATION, format!("malformed multipart body: {error}")))?
    {
        let name = field.name().unwrap_or_default().to_owned();
        let bytes = field
            .bytes()
            .await
            .map_err(|error| invalid(OPERATION, format!("malformed multipart body: {error}")))?;
        match name.as_str() {
            "value" => value = Some(bytes.to_vec()),
            "metadata" => {
                let parsed: Value = serde_json::from_slice(&bytes).map_err(|error| {
                    invalid(OPERATION, format!("metadata is not valid JSON: {error}"))
                })?;
                metadata = Some(parsed);
            }
            _ => {}
        }
    }
    let value = value.ok_or_else(|| invalid(OPERATION, "multipart body has no value part"))?;
    Ok((value, metadata))
}

async fn put_value(
    State(state): State<SharedState>,
    path: KeyPath,
    query: QueryParams,
    request: Request,
) -> ApiResult<Response> {
    const OPERATION: &str = "put";
    let Path((_, namespace_id, key)) = path.map_err(path_error)?;
    validate_key(OPERATION, &key)?;
    let query = query_map(query, VALIDATION)?;
    let expiration = resolve_expiration(
        OPERATION,
        state.clock.unix_seconds(),
        number_param(&query, "expiration", OPERATION)?,
        number_param(&query, "expiration_ttl", OPERATION)?,
    )?;
    let (value, metadata) = read_value_body(&state, request).await?;
    validate_value(OPERATION, &value)?;
    let metadata = metadata
        .filter(|metadata| !metadata.is_null())
        .map(|metadata| encode_metadata(OPERATION, &metadata))
        .transpose()?;
    state
        .store
        .call(move |conn| {
            let transaction = conn.transaction()?;
            require_namespace(&transaction, &namespace_id, OPERATION)?;
            transaction.execute(
                "INSERT OR REPLACE INTO kv_entries (namespace_id, key, value, metadata, expiration)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![namespace_id, key, value, metadata, expiration],
            )?;
            transaction.commit()?;
            Ok(())
        })
        .await?;
    Ok(success(Value::Null))
}

async fn delete_value(State(state): State<SharedState>, path: KeyPath) -> ApiResult<Response> {
    const OPERATION: &str = "delete";
    let Path((_, namespace_id, key)) = path.map_err(path_error)?;
    validate_key(OPERATION, &key)?;
    state
        .store
        .call(move |conn| {
            let transaction = conn.transaction()?;
            require_namespace(&transaction, &namespace_id, OPERATION)?;
            transaction.execute(
                "DELETE FROM kv_entries WHERE namespace_id = ?1 AND key = ?2",
                params![namespace_id, key],
            )?;
            transaction.commit()?;
            Ok(())
        })
        .await?;
    Ok(success(Value::Null))
}

// ---------------------------------------------------------------------------------------------
// Bulk operations
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize)]
struct BulkItem {
    key: Option<String>,
    value: Option<String>,
    #[serde(default)]
    base64: bool,
    expiration: Option<f64>,
    expiration_ttl: Option<f64>,
    metadata: Option<Value>,
}

struct PreparedEntry {
    key: String,
    value: Vec<u8>,
    metadata: Option<String>,
    expiration: Option<i64>,
}

fn prepare_bulk_item(index: usize, item: BulkItem, now: i64) -> ApiResult<PreparedEntry> {
    use base64::Engine as _;
    const OPERATION: &str = "bulk put";
    let at = |reason: String| invalid(OPERATION, format!("item {index}: {reason}"));
    let key = item.key.ok_or_else(|| at("key is required".into()))?;
    validate_key(OPERATION, &key).map_err(|error| at(error.message))?;
    let text = item.value.ok_or_else(|| at("value is required".into()))?;
    let value = if item.base64 {
        base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            .map_err(|error| at(format!("value is not valid base64: {error}")))?
    } else {
        text.into_bytes()
    };
    validate_value(OPERATION, &value).map_err(|error| at(error.message))?;
    let metadata = item
        .metadata
        .filter(|metadata| !metadata.is_null())
        .map(|metadata| encode_metadata(OPERATION, &metadata))
        .transpose()
        .map_err(|error| at(error.message))?;
    let expiration = resolve_expiration(
        OPERATION,
        now,
        item.expiration.map(|value| value as i64),
        item.expiration_ttl.map(|value| value as i64),
    )
    .map_err(|error| at(error.message))?;
    Ok(PreparedEntry {
        key,
        value,
        metadata,
        expiration,
    })
}

/// Cloudflare's limit on the items of one bulk request.
fn check_bulk_size(operation: &str, count: usize, what: &str) -> ApiResult<()> {
    if count > MAX_BULK_ITEMS {
        return Err(invalid(
            operation,
            format!("at most {MAX_BULK_ITEMS} {what} per request, got {count}"),
        ));
    }
    Ok(())
}

async fn bulk_write(
    State(state): State<SharedState>,
    path: NamespacePath,
    body: Bytes,
) -> ApiResult<Response> {
    const OPERATION: &str = "bulk put";
    let Path((_, namespace_id)) = path.map_err(path_error)?;
    let items: Vec<BulkItem> = parse_json(&body, VALIDATION, OPERATION)?;
    check_bulk_size(OPERATION, items.len(), "key-value pairs")?;
    let now = state.clock.unix_seconds();
    let entries = items
        .into_iter()
        .enumerate()
        .map(|(index, item)| prepare_bulk_item(index, item, now))
        .collect::<ApiResult<Vec<_>>>()?;
    let count = entries.len();
    state
        .store
        .call(move |conn| {
            let transaction = conn.transaction()?;
            require_namespace(&transaction, &namespace_id, OPERATION)?;
            {
                let mut statement = transaction.prepare(
                    "INSERT OR REPLACE INTO kv_entries (namespace_id, key, value, metadata, expiration)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )?;
                for entry in &entries {
                    statement.execute(params![
                        namespace_id,
                        entry.key,
                        entry.value,
                        entry.metadata,
                        entry.expiration
                    ])?;
                }
            }
            transaction.commit()?;
            Ok(())
        })
        .await?;
    Ok(success(
        json!({ "successful_key_count": count, "unsuccessful_keys": [] }),
    ))
}

async fn bulk_delete(
    State(state): State<SharedState>,
    path: NamespacePath,
    body: Bytes,
) -> ApiResult<Response> {
    const OPERATION: &str = "bulk delete";
    let Path((_, namespace_id)) = path.map_err(path_error)?;
    let keys: Vec<String> = parse_json(&body, VALIDATION, OPERATION)?;
    check_bulk_size(OPERATION, keys.len(), "keys")?;
    for (index, key) in keys.iter().enumerate() {
        validate_key(OPERATION, key)
            .map_err(|error| invalid(OPERATION, format!("item {index}: {}", error.message)))?;
    }
    let count = keys.len();
    state
        .store
        .call(move |conn| {
            let transaction = conn.transaction()?;
            require_namespace(&transaction, &namespace_id, OPERATION)?;
            {
                let mut statement = transaction
                    .prepare("DELETE FROM kv_entries WHERE namespace_id = ?1 AND key = ?2")?;
                for key in &keys {
                    statement.execute(params![namespace_id, key])?;
                }
            }
            transaction.commit()?;
            Ok(())
        })
        .await?;
    Ok(success(
        json!({ "successful_key_count": count, "unsuccessful_keys": [] }),
    ))
}

#[derive(Deserialize)]
struct BulkGetBody {
    keys: Option<Vec<String>>,
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(rename = "withMetadata", default)]
    with_metadata: bool,
}

async fn bulk_get(
    State(state): State<SharedState>,
    path: NamespacePath,
    body: Bytes,
) -> ApiResult<Response> {
    const OPERATION: &str = "bulk get";
    let Path((_, namespace_id)) = path.map_err(path_error)?;
    let body: BulkGetBody = parse_json(&body, VALIDATION, OPERATION)?;
    let keys = body
        .keys
        .ok_or_else(|| invalid(OPERATION, "keys is required"))?;
    if keys.is_empty() || keys.len() > MAX_BULK_GET_KEYS {
        return Err(invalid(
            OPERATION,
            format!(
                "between 1 and {MAX_BULK_GET_KEYS} keys per request, got {}",
                keys.len()
            ),
        ));
    }
    let as_json = match body.kind.as_deref() {
        None | Some("text") => false,
        Some("json") => true,
        Some(other) => {
            return Err(invalid(
                OPERATION,
                format!("type must be \"text\" or \"json\", got {other:?}"),
            ));
        }
    };
    for key in &keys {
        validate_key(OPERATION, key)?;
    }
    let with_metadata = body.with_metadata;
    let now = state.clock.unix_seconds();
    let found = state
        .store
        .call(move |conn| {
            require_namespace(conn, &namespace_id, OPERATION)?;
            let mut statement = conn.prepare(
                "SELECT value, metadata, expiration FROM kv_entries
                 WHERE namespace_id = ?1 AND key = ?2
                   AND (expiration IS NULL OR expiration > ?3)",
            )?;
            let mut found = Vec::with_capacity(keys.len());
            for key in keys {
                let row = statement
                    .query_row(params![namespace_id, key, now], |row| {
                        Ok((
                            row.get::<_, Vec<u8>>(0)?,
                            row.get::<_, Option<String>>(1)?,
                            row.get::<_, Option<i64>>(2)?,
                        ))
                    })
                    .optional()?;
                found.push((key, row));
            }
            Ok(found)
        })
        .await?;
    let mut values = Map::new();
    for (key, row) in found {
        let entry = match row {
            None => Value::Null,
            Some((value, metadata, expiration)) => {
                let value = if as_json {
                    serde_json::from_slice::<Value>(&value).map_err(|_| {
                        invalid(OPERATION, format!("the value of {key:?} is not valid JSON"))
                    })?
                } else {
                    Value::String(String::from_utf8_lossy(&value).into_owned())
                };
                if with_metadata {
                    let metadata = metadata
                        .and_then(|text| serde_json::from_str(&text).ok())
                        .unwrap_or(Value::Null);
                    let mut entry = json!({ "value": value, "metadata": metadata });
                    if let Some(expiration) = expiration {
                        entry["expiration"] = json!(expiration);
                    }
                    entry
                } else {
                    value
                }
            }
        };
        values.insert(key, entry);
    }
    Ok(success(json!({ "values": values })))
}
