//! R2 objects through the account API, under `/accounts/{account_id}/r2/buckets/{bucket}/objects`
//! (the endpoints `wrangler r2 object` and the `cloudflare` Python SDK's `r2.buckets.objects`
//! call). The `cf-r2-jurisdiction` header scopes them like the bucket endpoints.
//!
//! - `PUT …/objects/{key}`: the raw body is the object. Kept from the request: `content-type`,
//!   `content-disposition`, `content-encoding`, `content-language`, `cache-control`, `expires`
//!   (wrangler sends these), the storage class from `cf-r2-storage-class` (else the bucket's), and
//!   custom metadata from `cf-r2-custom-metadata`, a JSON object of strings (the header miniflare's
//!   local explorer takes for this API; wrangler has no flag for it). Answers
//!   `{key, etag, size, storage_class, uploaded, version}` (PY `ObjectUploadResponse`: `size` is a
//!   string there). The etag is the hex MD5 of the body, as R2's is for a single-part upload.
//! - `GET …/objects/{key}`: the raw body, no envelope, with `Content-Type`, `Content-Length`,
//!   `ETag` (quoted, RFC 7232), `Last-Modified`, `Accept-Ranges: bytes`, the other stored HTTP
//!   metadata and one `x-r2-custom-metadata-{name}` header per custom field. `Range: bytes=a-b`
//!   (also `a-` and `-n`) answers 206 with `Content-Range`, an unsatisfiable range 416; several
//!   ranges are answered with the whole object, as S3 does. `If-None-Match` and
//!   `If-Modified-Since` answer 304. `cf-metadata-only: true` answers the object's metadata as a
//!   JSON envelope instead (miniflare's local explorer). `HEAD` answers the headers alone.
//! - `DELETE …/objects/{key}`: answers `{key}`. Deleting a key that does not exist succeeds too:
//!   R2 deletes are idempotent (the S3 `DeleteObject` and the Workers binding's `delete` never
//!   report a missing key); an unknown bucket is 404/10006.
//! - `GET …/objects?prefix&delimiter&cursor&start_after&per_page`: `result` is the array of
//!   objects `{key, etag, size, last_modified, http_metadata{contentType,…}, custom_metadata,
//!   storage_class}` in key order (bytewise, as R2 lists), `result_info` is `{cursor, per_page,
//!   count, delimited, is_truncated}`: `delimited` holds the common prefixes a `delimiter` rolls
//!   keys up into (they count towards `per_page`), `is_truncated` is `"true"` or `"false"` (a
//!   string, as miniflare's explorer answers), and `cursor` is `""` on the last page so that the
//!   Python SDK's and wrangler's cursor loops stop. `per_page` is 1..1000, default 1000.
//!
//! Bodies are files under `state_dir/r2/objects/`, named by the object's version (a fresh UUID
//! per upload): the file is written under a temporary name and renamed before the metadata row
//! (SQLite, `r2_objects`) points at it, and a replaced or deleted version's file is removed after
//! its row is gone, so a reader never sees a row without its body. A body is at most the
//! emulator's request limit (110 MB; Cloudflare allows 300 MB on this API).
//!
//! Codes (developers.cloudflare.com/r2/api/error-codes): 10006 no such bucket (404), 10007 no such
//! key (404), 10008 bucket not empty (409, from the bucket delete), 10001 validation (400).

use std::path::{Path as FilePath, PathBuf};

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use md5::Digest as _;
use rusqlite::{OptionalExtension as _, params};
use serde_json::{Map, Value, json};

use super::{STORAGE_CLASSES, VALIDATION, jurisdiction, no_such_bucket};
use crate::emulator::envelope::{
    ApiError, ApiResult, QueryMap, decode_cursor, encode_cursor, int_param, query_map, success,
    success_with_info,
};
use crate::emulator::{API_PREFIX, SharedState, clock};

const NO_SUCH_KEY: u32 = 10007;
const BUCKET_NOT_EMPTY: u32 = 10008;

/// The directory under the state directory holding object bodies.
const OBJECTS_DIR: &str = "r2/objects";

/// R2's limit on a key's length in bytes.
const MAX_KEY_BYTES: usize = 1024;

/// Custom metadata on a put: a JSON object of strings.
const CUSTOM_METADATA_HEADER: &str = "cf-r2-custom-metadata";
/// Custom metadata on a get: one header per field.
const CUSTOM_METADATA_PREFIX: &str = "x-r2-custom-metadata-";
/// `true`: a get answers the metadata as JSON instead of the body.
const METADATA_ONLY_HEADER: &str = "cf-metadata-only";

/// The stored HTTP headers: request header name, `http_metadata` field name.
const HTTP_METADATA: [(&str, &str); 6] = [
    ("content-type", "contentType"),
    ("content-language", "contentLanguage"),
    ("content-disposition", "contentDisposition"),
    ("content-encoding", "contentEncoding"),
    ("cache-control", "cacheControl"),
    ("expires", "cacheExpiry"),
];

pub(super) fn routes() -> Router<SharedState> {
    let bucket = format!("{API_PREFIX}/accounts/{{account_id}}/r2/buckets/{{bucket_name}}");
    Router::new()
        .route(&format!("{bucket}/objects"), get(list_objects))
        .route(
            &format!("{bucket}/objects/{{*object_key}}"),
            get(get_object).put(put_object).delete(delete_object),
        )
}

type ObjectPath = Result<Path<(String, String, String)>, PathRejection>;
type BucketPath = Result<Path<(String, String)>, PathRejection>;

fn path_error(rejection: PathRejection) -> ApiError {
    ApiError::bad_request(VALIDATION, format!("malformed path: {rejection}"))
}

fn no_such_key() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        NO_SUCH_KEY,
        "The specified key does not exist.",
    )
}

/// The 409 a bucket delete answers while the bucket holds objects.
pub(super) fn bucket_not_empty() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        BUCKET_NOT_EMPTY,
        "The bucket you tried to delete is not empty.",
    )
}

fn validate_key(key: &str) -> ApiResult<()> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(ApiError::bad_request(
            VALIDATION,
            format!(
                "The specified object key is not valid: keys are 1 to {MAX_KEY_BYTES} bytes, got {}",
                key.len()
            ),
        ));
    }
    Ok(())
}

/// One object's metadata row.
#[derive(Debug, Clone)]
struct Object {
    key: String,
    version: String,
    size: i64,
    etag: String,
    uploaded: String,
    http_metadata: Map<String, Value>,
    custom_metadata: Map<String, Value>,
    storage_class: String,
}

const OBJECT_COLUMNS: &str =
    "key, version, size, etag, uploaded, http_metadata, custom_metadata, storage_class";

fn object_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Object> {
    let object = |index: usize| -> rusqlite::Result<Map<String, Value>> {
        let text: String = row.get(index)?;
        Ok(match serde_json::from_str(&text) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        })
    };
    Ok(Object {
        key: row.get(0)?,
        version: row.get(1)?,
        size: row.get(2)?,
        etag: row.get(3)?,
        uploaded: row.get(4)?,
        http_metadata: object(5)?,
        custom_metadata: object(6)?,
        storage_class: row.get(7)?,
    })
}

impl Object {
    /// The object as lists (and `cf-metadata-only` gets) show it.
    fn to_json(&self) -> Value {
        json!({
            "key": self.key,
            "etag": self.etag,
            "size": self.size,
            "last_modified": self.uploaded,
            "http_metadata": self.http_metadata,
            "custom_metadata": self.custom_metadata,
            "storage_class": self.storage_class,
        })
    }
}

/// Where object bodies live.
fn objects_dir(state: &SharedState) -> PathBuf {
    state.state_dir.join(OBJECTS_DIR)
}

fn body_path(dir: &FilePath, version: &str) -> PathBuf {
    dir.join(version)
}

fn io_error(what: &str, path: &FilePath, error: std::io::Error) -> ApiError {
    ApiError::internal(format!("{what} {}: {error}", path.display()))
}

/// The bucket's default storage class, or 10006.
fn bucket_storage_class(
    conn: &rusqlite::Connection,
    jurisdiction: &str,
    bucket: &str,
) -> ApiResult<String> {
    conn.query_row(
        "SELECT storage_class FROM r2_buckets WHERE jurisdiction = ?1 AND name = ?2",
        params![jurisdiction, bucket],
        |row| row.get(0),
    )
    .optional()?
    .ok_or_else(no_such_bucket)
}

/// Whether a bucket holds any object (a bucket delete refuses then).
pub(super) fn bucket_has_objects(
    conn: &rusqlite::Connection,
    jurisdiction: &str,
    bucket: &str,
) -> ApiResult<bool> {
    Ok(conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM r2_objects WHERE jurisdiction = ?1 AND bucket = ?2)",
        params![jurisdiction, bucket],
        |row| row.get(0),
    )?)
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> ApiResult<Option<&'a str>> {
    match headers.get(name) {
        None => Ok(None),
        Some(value) => value
            .to_str()
            .map(|text| Some(text.trim()).filter(|text| !text.is_empty()))
            .map_err(|_| {
                ApiError::bad_request(
                    VALIDATION,
                    format!("the {name} header must be visible ASCII"),
                )
            }),
    }
}

/// The custom metadata of a put: `cf-r2-custom-metadata`, a JSON object of strings.
fn custom_metadata(headers: &HeaderMap) -> ApiResult<Map<String, Value>> {
    let Some(text) = header_text(headers, CUSTOM_METADATA_HEADER)? else {
        return Ok(Map::new());
    };
    let invalid = || {
        ApiError::bad_request(
            VALIDATION,
            format!("the {CUSTOM_METADATA_HEADER} header must be a JSON object of string values"),
        )
    };
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) if map.values().all(Value::is_string) => Ok(map),
        _ => Err(invalid()),
    }
}

async fn put_object(
    State(state): State<SharedState>,
    headers: HeaderMap,
    path: ObjectPath,
    body: Bytes,
) -> ApiResult<Response> {
    let jurisdiction = jurisdiction(&headers)?;
    let Path((_, bucket, key)) = path.map_err(path_error)?;
    validate_key(&key)?;
    let mut http_metadata = Map::new();
    for (header_name, field) in HTTP_METADATA {
        if let Some(value) = header_text(&headers, header_name)? {
            http_metadata.insert(field.into(), Value::String(value.to_owned()));
        }
    }
    let custom_metadata = custom_metadata(&headers)?;
    let requested_class = header_text(&headers, super::STORAGE_CLASS_HEADER)?.map(str::to_owned);
    if let Some(class) = &requested_class
        && !STORAGE_CLASSES.contains(&class.as_str())
    {
        return Err(ApiError::bad_request(
            VALIDATION,
            format!(
                "{} must be one of {}, got {class:?}",
                super::STORAGE_CLASS_HEADER,
                STORAGE_CLASSES.join(", ")
            ),
        ));
    }

    // The body first, under its own name: a row never points at a missing file.
    let dir = objects_dir(&state);
    let version = uuid::Uuid::new_v4().simple().to_string();
    let etag = hex::encode(md5::Md5::digest(&body));
    let size = i64::try_from(body.len()).unwrap_or(i64::MAX);
    {
        let dir = dir.clone();
        let version = version.clone();
        tokio::task::spawn_blocking(move || write_body(&dir, &version, &body))
            .await
            .map_err(ApiError::internal)??;
    }
    let object = Object {
        key,
        version: version.clone(),
        size,
        etag,
        uploaded: state.clock.timestamp(),
        http_metadata,
        custom_metadata,
        storage_class: requested_class.unwrap_or_default(),
    };
    let stored = {
        let object = object.clone();
        state
            .store
            .call(move |conn| {
                let transaction = conn.transaction()?;
                let default_class = bucket_storage_class(&transaction, &jurisdiction, &bucket)?;
                let storage_class = if object.storage_class.is_empty() {
                    default_class
                } else {
                    object.storage_class.clone()
                };
                let replaced: Option<String> = transaction
                    .query_row(
                        "SELECT version FROM r2_objects
                         WHERE jurisdiction = ?1 AND bucket = ?2 AND key = ?3",
                        params![jurisdiction, bucket, object.key],
                        |row| row.get(0),
                    )
                    .optional()?;
                transaction.execute(
                    &format!(
                        "INSERT OR REPLACE INTO r2_objects (jurisdiction, bucket, {OBJECT_COLUMNS})
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
                    ),
                    params![
                        jurisdiction,
                        bucket,
                        object.key,
                        object.version,
                        object.size,
                        object.etag,
                        object.uploaded,
                        Value::Object(object.http_metadata.clone()).to_string(),
                        Value::Object(object.custom_metadata.clone()).to_string(),
                        storage_class,
                    ],
                )?;
                transaction.commit()?;
                Ok((storage_class, replaced))
            })
            .await
    };
    let (storage_class, replaced) = match stored {
        Ok(stored) => stored,
        Err(error) => {
            remove_body(&dir, &version).await;
            return Err(error);
        }
    };
    if let Some(replaced) = replaced {
        remove_body(&dir, &replaced).await;
    }
    Ok(success(json!({
        "key": object.key,
        "etag": object.etag,
        "size": object.size.to_string(),
        "storage_class": storage_class,
        "uploaded": object.uploaded,
        "version": object.version,
    })))
}

fn write_body(dir: &FilePath, version: &str, body: &[u8]) -> ApiResult<()> {
    std::fs::create_dir_all(dir).map_err(|error| io_error("creating", dir, error))?;
    let staging = dir.join(format!(".{version}.partial"));
    std::fs::write(&staging, body).map_err(|error| io_error("writing", &staging, error))?;
    let target = body_path(dir, version);
    std::fs::rename(&staging, &target).map_err(|error| io_error("renaming", &staging, error))
}

/// Removes a body no row points at any more; a failure only leaves a stray file behind.
async fn remove_body(dir: &FilePath, version: &str) {
    let path = body_path(dir, version);
    let removed = tokio::task::spawn_blocking(move || match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(io_error("removing", &path, error)),
    })
    .await;
    match removed {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::warn!(error = %error.message, "removing an R2 object body"),
        Err(error) => tracing::warn!(%error, "removing an R2 object body"),
    }
}

async fn load_object(
    state: &SharedState,
    jurisdiction: String,
    bucket: String,
    key: String,
) -> ApiResult<Object> {
    state
        .store
        .call(move |conn| {
            bucket_storage_class(conn, &jurisdiction, &bucket)?;
            conn.query_row(
                &format!(
                    "SELECT {OBJECT_COLUMNS} FROM r2_objects
                     WHERE jurisdiction = ?1 AND bucket = ?2 AND key = ?3"
                ),
                params![jurisdiction, bucket, key],
                object_from_row,
            )
            .optional()?
            .ok_or_else(no_such_key)
        })
        .await
}

/// A single byte range of an object of `size` bytes, as `(first, last)` inclusive.
#[derive(Debug, PartialEq, Eq)]
enum RangeAsk {
    Whole,
    Part(u64, u64),
    Unsatisfiable,
}

/// Reads `Range: bytes=…`. Anything but one well-formed byte range is answered with the whole
/// object (as S3 does with several ranges).
fn parse_range(value: Option<&str>, size: u64) -> RangeAsk {
    let Some(spec) = value.and_then(|value| value.trim().strip_prefix("bytes=")) else {
        return RangeAsk::Whole;
    };
    if spec.contains(',') {
        return RangeAsk::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeAsk::Whole;
    };
    let number = |text: &str| text.trim().parse::<u64>().ok();
    match (first.trim().is_empty(), last.trim().is_empty()) {
        // `-n`: the last n bytes.
        (true, false) => match number(last) {
            Some(0) | None if size == 0 => RangeAsk::Unsatisfiable,
            Some(0) => RangeAsk::Unsatisfiable,
            Some(count) => RangeAsk::Part(size.saturating_sub(count), size - 1),
            None => RangeAsk::Whole,
        },
        // `a-`: from a to the end.
        (false, true) => match number(first) {
            Some(start) if start < size => RangeAsk::Part(start, size - 1),
            Some(_) => RangeAsk::Unsatisfiable,
            None => RangeAsk::Whole,
        },
        (false, false) => match (number(first), number(last)) {
            (Some(start), Some(end)) if start <= end && start < size => {
                RangeAsk::Part(start, end.min(size - 1))
            }
            (Some(start), Some(end)) if start <= end => RangeAsk::Unsatisfiable,
            _ => RangeAsk::Whole,
        },
        (true, true) => RangeAsk::Whole,
    }
}

/// Whether the request's conditions make the answer a 304.
fn not_modified(headers: &HeaderMap, object: &Object) -> bool {
    if let Some(tags) = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
    {
        return tags.split(',').any(|tag| {
            let tag = tag.trim().trim_start_matches("W/").trim_matches('"');
            tag == "*" || tag == object.etag
        });
    }
    let since = headers
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|value| value.to_str().ok())
        .and_then(parse_http_date);
    let uploaded = time::OffsetDateTime::parse(
        &object.uploaded,
        &time::format_description::well_known::Rfc3339,
    )
    .ok();
    match (since, uploaded) {
        // HTTP dates have whole seconds.
        (Some(since), Some(uploaded)) => uploaded.unix_timestamp() <= since.unix_timestamp(),
        _ => false,
    }
}

fn parse_http_date(text: &str) -> Option<time::OffsetDateTime> {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    time::PrimitiveDateTime::parse(text.trim(), &format)
        .ok()
        .map(time::PrimitiveDateTime::assume_utc)
}

/// The headers that describe an object on a get or head.
fn object_headers(object: &Object) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let mut insert = |name: &str, value: &str| {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.insert(name, value);
        }
    };
    insert(
        "content-type",
        object
            .http_metadata
            .get("contentType")
            .and_then(Value::as_str)
            .unwrap_or("application/octet-stream"),
    );
    for (header_name, field) in HTTP_METADATA.iter().skip(1) {
        if let Some(value) = object.http_metadata.get(*field).and_then(Value::as_str) {
            insert(header_name, value);
        }
    }
    insert("etag", &format!("\"{}\"", object.etag));
    let last_modified = time::OffsetDateTime::parse(
        &object.uploaded,
        &time::format_description::well_known::Rfc3339,
    )
    .map(clock::format_http_date)
    .unwrap_or_default();
    insert("last-modified", &last_modified);
    insert("accept-ranges", "bytes");
    insert(super::STORAGE_CLASS_HEADER, &object.storage_class);
    for (name, value) in &object.custom_metadata {
        if let Some(value) = value.as_str() {
            insert(
                &format!("{CUSTOM_METADATA_PREFIX}{}", name.to_ascii_lowercase()),
                value,
            );
        }
    }
    headers
}

async fn get_object(
    State(state): State<SharedState>,
    headers: HeaderMap,
    path: ObjectPath,
) -> ApiResult<Response> {
    let jurisdiction = jurisdiction(&headers)?;
    let Path((_, bucket, key)) = path.map_err(path_error)?;
    validate_key(&key)?;
    let object = load_object(&state, jurisdiction, bucket, key).await?;
    if header_text(&headers, METADATA_ONLY_HEADER)? == Some("true") {
        return Ok(success(object.to_json()));
    }
    let mut response_headers = object_headers(&object);
    if not_modified(&headers, &object) {
        return Ok((StatusCode::NOT_MODIFIED, response_headers).into_response());
    }
    let size = u64::try_from(object.size).unwrap_or(0);
    let range = parse_range(
        headers
            .get(header::RANGE)
            .and_then(|value| value.to_str().ok()),
        size,
    );
    if range == RangeAsk::Unsatisfiable {
        if let Ok(value) = HeaderValue::from_str(&format!("bytes */{size}")) {
            response_headers.insert(header::CONTENT_RANGE, value);
        }
        let error = ApiError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            VALIDATION,
            format!("The requested range is not satisfiable: the object has {size} bytes"),
        );
        return Ok((response_headers, error).into_response());
    }
    let path = body_path(&objects_dir(&state), &object.version);
    let body = tokio::task::spawn_blocking(move || {
        std::fs::read(&path).map_err(|error| io_error("reading", &path, error))
    })
    .await
    .map_err(ApiError::internal)??;
    match range {
        RangeAsk::Part(first, last) => {
            let start = usize::try_from(first).unwrap_or(usize::MAX);
            let end = usize::try_from(last)
                .unwrap_or(usize::MAX)
                .saturating_add(1);
            let part = body.get(start..end.min(body.len())).unwrap_or_default();
            if let Ok(value) = HeaderValue::from_str(&format!("bytes {first}-{last}/{size}")) {
                response_headers.insert(header::CONTENT_RANGE, value);
            }
            response_headers.insert(header::CONTENT_LENGTH, HeaderValue::from(part.len()));
            Ok((StatusCode::PARTIAL_CONTENT, response_headers, part.to_vec()).into_response())
        }
        _ => {
            response_headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
            Ok((StatusCode::OK, response_headers, body).into_response())
        }
    }
}

async fn delete_object(
    State(state): State<SharedState>,
    headers: HeaderMap,
    path: ObjectPath,
) -> ApiResult<Response> {
    let jurisdiction = jurisdiction(&headers)?;
    let Path((_, bucket, key)) = path.map_err(path_error)?;
    validate_key(&key)?;
    let removed = {
        let key = key.clone();
        state
            .store
            .call(move |conn| {
                let transaction = conn.transaction()?;
                bucket_storage_class(&transaction, &jurisdiction, &bucket)?;
                let version: Option<String> = transaction
                    .query_row(
                        "DELETE FROM r2_objects
                         WHERE jurisdiction = ?1 AND bucket = ?2 AND key = ?3
                         RETURNING version",
                        params![jurisdiction, bucket, key],
                        |row| row.get(0),
                    )
                    .optional()?;
                transaction.commit()?;
                Ok(version)
            })
            .await?
    };
    if let Some(version) = removed {
        remove_body(&objects_dir(&state), &version).await;
    }
    Ok(success(json!({ "key": key })))
}

/// One entry of a listing: an object, or a common prefix a delimiter rolled keys up into.
enum Listed {
    Object(Box<Object>),
    Prefix(String),
}

/// Where a listing continues: after a key, or after every key under a common prefix.
fn encode_list_cursor(last: &Listed) -> String {
    match last {
        Listed::Object(object) => encode_cursor(&format!("k:{}", object.key)),
        Listed::Prefix(prefix) => encode_cursor(&format!("p:{prefix}")),
    }
}

enum After {
    Key(String),
    Prefix(String),
}

fn decode_list_cursor(cursor: &str) -> ApiResult<After> {
    let text = decode_cursor(cursor, VALIDATION)?;
    if let Some(key) = text.strip_prefix("k:") {
        return Ok(After::Key(key.to_owned()));
    }
    if let Some(prefix) = text.strip_prefix("p:") {
        return Ok(After::Prefix(prefix.to_owned()));
    }
    Err(ApiError::bad_request(
        VALIDATION,
        "cursor: invalid or expired cursor",
    ))
}

async fn list_objects(
    State(state): State<SharedState>,
    headers: HeaderMap,
    path: BucketPath,
    query: Result<Query<QueryMap>, QueryRejection>,
) -> ApiResult<Response> {
    let jurisdiction = jurisdiction(&headers)?;
    let Path((_, bucket)) = path.map_err(path_error)?;
    let query = query_map(query, VALIDATION)?;
    let per_page = int_param(&query, "per_page", 1000, 1, 1000, VALIDATION)?;
    let prefix = query.get("prefix").cloned().unwrap_or_default();
    let delimiter = query
        .get("delimiter")
        .filter(|delimiter| !delimiter.is_empty())
        .cloned();
    let after = match query.get("cursor").filter(|cursor| !cursor.is_empty()) {
        Some(cursor) => Some(decode_list_cursor(cursor)?),
        None => query
            .get("start_after")
            .filter(|key| !key.is_empty())
            .map(|key| After::Key(key.clone())),
    };
    let (after_key, skip_prefix) = match after {
        None => (None, None),
        Some(After::Key(key)) => (Some(key), None),
        Some(After::Prefix(prefix)) => (Some(prefix.clone()), Some(prefix)),
    };
    let limit = usize::try_from(per_page).unwrap_or(1000);
    let (entries, truncated) = state
        .store
        .call(move |conn| {
            bucket_storage_class(conn, &jurisdiction, &bucket)?;
            let mut statement = conn.prepare(&format!(
                "SELECT {OBJECT_COLUMNS} FROM r2_objects
                 WHERE jurisdiction = ?1 AND bucket = ?2
                   AND substr(key, 1, length(?3)) = ?3
                   AND (?4 IS NULL OR key > ?4)
                 ORDER BY key"
            ))?;
            let mut rows = statement.query(params![jurisdiction, bucket, prefix, after_key])?;
            let mut entries: Vec<Listed> = Vec::new();
            let mut truncated = false;
            while let Some(row) = rows.next()? {
                let object = object_from_row(row)?;
                if skip_prefix
                    .as_deref()
                    .is_some_and(|skip| object.key.starts_with(skip))
                {
                    continue;
                }
                let rolled_up = delimiter.as_deref().and_then(|delimiter| {
                    let rest = &object.key[prefix.len()..];
                    rest.find(delimiter)
                        .map(|at| format!("{prefix}{}", &rest[..at + delimiter.len()]))
                });
                if let (Some(common), Some(Listed::Prefix(last))) = (&rolled_up, entries.last())
                    && common == last
                {
                    continue;
                }
                if entries.len() == limit {
                    truncated = true;
                    break;
                }
                entries.push(match rolled_up {
                    Some(common) => Listed::Prefix(common),
                    None => Listed::Object(Box::new(object)),
                });
            }
            Ok((entries, truncated))
        })
        .await?;
    let cursor = match (truncated, entries.last()) {
        (true, Some(last)) => encode_list_cursor(last),
        _ => String::new(),
    };
    let mut objects = Vec::new();
    let mut delimited = Vec::new();
    for entry in entries {
        match entry {
            Listed::Object(object) => objects.push(object.to_json()),
            Listed::Prefix(prefix) => delimited.push(Value::String(prefix)),
        }
    }
    let count = objects.len();
    Ok(success_with_info(
        Value::Array(objects),
        json!({
            "cursor": cursor,
            "per_page": per_page,
            "count": count,
            "delimited": delimited,
            "is_truncated": if truncated { "true" } else { "false" },
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_rfc_7233() {
        assert_eq!(parse_range(None, 10), RangeAsk::Whole);
        assert_eq!(parse_range(Some("bytes=0-3"), 10), RangeAsk::Part(0, 3));
        assert_eq!(parse_range(Some("bytes=4-"), 10), RangeAsk::Part(4, 9));
        assert_eq!(parse_range(Some("bytes=-3"), 10), RangeAsk::Part(7, 9));
        assert_eq!(parse_range(Some("bytes=-30"), 10), RangeAsk::Part(0, 9));
        assert_eq!(parse_range(Some("bytes=5-100"), 10), RangeAsk::Part(5, 9));
        assert_eq!(parse_range(Some("bytes=10-"), 10), RangeAsk::Unsatisfiable);
        assert_eq!(
            parse_range(Some("bytes=12-20"), 10),
            RangeAsk::Unsatisfiable
        );
        assert_eq!(parse_range(Some("bytes=-0"), 10), RangeAsk::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=0-1,4-5"), 10), RangeAsk::Whole);
        assert_eq!(parse_range(Some("bytes=5-2"), 10), RangeAsk::Whole);
        assert_eq!(parse_range(Some("items=0-1"), 10), RangeAsk::Whole);
    }

    #[test]
    fn http_dates_round_trip() {
        let at = time::macros::datetime!(2024-01-15 10:30:00 UTC);
        let text = clock::format_http_date(at);
        assert_eq!(text, "Mon, 15 Jan 2024 10:30:00 GMT");
        assert_eq!(parse_http_date(&text), Some(at));
    }
}
