//! R2 under `/accounts/{account_id}/r2/buckets`: buckets here, their objects in [`objects`].
//!
//! The `cf-r2-jurisdiction` request header (`default`, `eu`, `us`, `fedramp`, `fedramp-high`;
//! absent means `default`) scopes every call: bucket `x` in `eu` is not bucket `x` in `default`,
//! and a list without the header shows only default-jurisdiction buckets.
//!
//! List answers `{buckets:[{name, creation_date, location, storage_class, jurisdiction}]}` with
//! cursor pagination (`per_page` 1..1000 default 20, `name_contains`, `start_after`, `cursor`,
//! `direction`; `result_info:{cursor, per_page}`, cursor `""` on the last page). Create takes the
//! camelCase body `{name, locationHint?, storageClass?}`; `PATCH /{name}` changes the storage
//! class from the `cf-r2-storage-class` header. `location` is reported upper-case; without a hint
//! it is `ENAM` (`WEUR` for the `eu` jurisdiction): the real API places the bucket near the
//! caller, so any fixed answer is an approximation.
//!
//! A bucket that holds objects cannot be deleted (409, 10008), as on Cloudflare.
//!
//! Codes (developers.cloudflare.com/r2/api/error-codes): 10005 invalid bucket name (400),
//! 10006 no such bucket (404), 10008 bucket not empty (409), 10073 bucket name already exists
//! (409). Other validation: 400
//! with 10001 (inference).

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use rusqlite::{OptionalExtension as _, params};
use serde::Deserialize;
use serde_json::{Value, json};

use super::envelope::{
    ApiError, ApiResult, QueryMap, decode_cursor, encode_cursor, enum_param, int_param, parse_json,
    query_map, success, success_with_info,
};
use super::{API_PREFIX, SharedState};

mod objects;

const INVALID_NAME: u32 = 10005;
const NO_SUCH_BUCKET: u32 = 10006;
const BUCKET_EXISTS: u32 = 10073;
const VALIDATION: u32 = 10001;

const JURISDICTION_HEADER: &str = "cf-r2-jurisdiction";
const STORAGE_CLASS_HEADER: &str = "cf-r2-storage-class";
const JURISDICTIONS: [&str; 5] = ["default", "eu", "us", "fedramp", "fedramp-high"];
const LOCATION_HINTS: [&str; 6] = ["apac", "eeur", "enam", "weur", "wnam", "oc"];
const STORAGE_CLASSES: [&str; 2] = ["Standard", "InfrequentAccess"];

pub(crate) fn routes() -> Router<SharedState> {
    let base = format!("{API_PREFIX}/accounts/{{account_id}}/r2/buckets");
    Router::new()
        .route(&base, get(list_buckets).post(create_bucket))
        .route(
            &format!("{base}/{{bucket_name}}"),
            get(get_bucket).delete(delete_bucket).patch(patch_bucket),
        )
        .merge(objects::routes())
}

type BucketPath = Result<Path<(String, String)>, PathRejection>;

fn path_error(rejection: PathRejection) -> ApiError {
    ApiError::bad_request(VALIDATION, format!("malformed path: {rejection}"))
}

fn no_such_bucket() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        NO_SUCH_BUCKET,
        "The specified bucket does not exist.",
    )
}

/// The jurisdiction a request is scoped to.
fn jurisdiction(headers: &HeaderMap) -> ApiResult<String> {
    let Some(value) = headers.get(JURISDICTION_HEADER) else {
        return Ok(String::from("default"));
    };
    let value = value
        .to_str()
        .map(|value| value.trim().to_ascii_lowercase())
        .unwrap_or_default();
    if value.is_empty() {
        return Ok(String::from("default"));
    }
    if JURISDICTIONS.contains(&value.as_str()) {
        Ok(value)
    } else {
        Err(ApiError::bad_request(
            VALIDATION,
            format!(
                "The {JURISDICTION_HEADER} header must be one of {}, got {value:?}",
                JURISDICTIONS.join(", ")
            ),
        ))
    }
}

/// Bucket names: 3 to 63 characters of `[a-z0-9-]`, starting and ending with a letter or digit.
fn valid_bucket_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    (3..=63).contains(&bytes.len())
        && bytes
            .iter()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || *byte == b'-')
        && bytes.first() != Some(&b'-')
        && bytes.last() != Some(&b'-')
}

fn invalid_name() -> ApiError {
    ApiError::bad_request(
        INVALID_NAME,
        "The specified bucket name is not valid. Bucket names must be 3 to 63 characters of lowercase letters, digits and hyphens, and start and end with a letter or digit.",
    )
}

struct Bucket {
    jurisdiction: String,
    name: String,
    creation_date: String,
    location: String,
    storage_class: String,
}

impl Bucket {
    fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "creation_date": self.creation_date,
            "location": self.location,
            "storage_class": self.storage_class,
            "jurisdiction": self.jurisdiction,
        })
    }
}

const BUCKET_COLUMNS: &str = "jurisdiction, name, creation_date, location, storage_class";

fn bucket_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Bucket> {
    Ok(Bucket {
        jurisdiction: row.get(0)?,
        name: row.get(1)?,
        creation_date: row.get(2)?,
        location: row.get(3)?,
        storage_class: row.get(4)?,
    })
}

async fn list_buckets(
    State(state): State<SharedState>,
    headers: HeaderMap,
    query: Result<Query<QueryMap>, QueryRejection>,
) -> ApiResult<Response> {
    let jurisdiction = jurisdiction(&headers)?;
    let query = query_map(query, VALIDATION)?;
    let per_page = int_param(&query, "per_page", 20, 1, 1000, VALIDATION)?;
    enum_param(&query, "order", &["name"], VALIDATION)?;
    let descending =
        enum_param(&query, "direction", &["asc", "desc"], VALIDATION)?.unwrap_or("asc") == "desc";
    let name_contains = query.get("name_contains").cloned().unwrap_or_default();
    let start_after = query
        .get("start_after")
        .filter(|value| !value.is_empty())
        .cloned();
    let cursor = match query.get("cursor").filter(|cursor| !cursor.is_empty()) {
        Some(cursor) => Some(decode_cursor(cursor, VALIDATION)?),
        None => None,
    };
    // The cursor continues after the last name returned; `start_after` is the first page's bound.
    let after = cursor.or(start_after);
    let sql = format!(
        "SELECT {BUCKET_COLUMNS} FROM r2_buckets
         WHERE jurisdiction = ?1
           AND instr(name, ?2) > 0
           AND (?3 IS NULL OR name {} ?3)
         ORDER BY name {}
         LIMIT ?4",
        if descending { "<" } else { ">" },
        if descending { "DESC" } else { "ASC" },
    );
    let (buckets, more) = state
        .store
        .call(move |conn| {
            let mut statement = conn.prepare(&sql)?;
            let rows = statement.query_map(
                params![jurisdiction, name_contains, after, per_page + 1],
                bucket_from_row,
            )?;
            let mut buckets = rows.collect::<rusqlite::Result<Vec<_>>>()?;
            let more = buckets.len() as i64 > per_page;
            buckets.truncate(usize::try_from(per_page).unwrap_or(usize::MAX));
            Ok((buckets, more))
        })
        .await?;
    let cursor = match (more, buckets.last()) {
        (true, Some(last)) => encode_cursor(&last.name),
        _ => String::new(),
    };
    let list: Vec<Value> = buckets.iter().map(Bucket::to_json).collect();
    Ok(success_with_info(
        json!({ "buckets": list }),
        json!({ "cursor": cursor, "per_page": per_page }),
    ))
}

#[derive(Deserialize)]
struct CreateBody {
    name: Option<String>,
    #[serde(rename = "locationHint")]
    location_hint: Option<String>,
    #[serde(rename = "storageClass")]
    storage_class: Option<String>,
}

async fn create_bucket(
    State(state): State<SharedState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let jurisdiction = jurisdiction(&headers)?;
    let body: CreateBody = parse_json(&body, VALIDATION, "create bucket")?;
    let name = body
        .name
        .ok_or_else(|| ApiError::bad_request(VALIDATION, "name is required"))?;
    if !valid_bucket_name(&name) {
        return Err(invalid_name());
    }
    let hint = body
        .location_hint
        .map(|hint| hint.to_ascii_lowercase())
        .filter(|hint| !hint.is_empty());
    if let Some(hint) = &hint
        && !LOCATION_HINTS.contains(&hint.as_str())
    {
        return Err(ApiError::bad_request(
            VALIDATION,
            format!(
                "locationHint must be one of {}, got {hint:?}",
                LOCATION_HINTS.join(", ")
            ),
        ));
    }
    let storage_class = body
        .storage_class
        .filter(|class| !class.is_empty())
        .unwrap_or_else(|| String::from("Standard"));
    if !STORAGE_CLASSES.contains(&storage_class.as_str()) {
        return Err(ApiError::bad_request(
            VALIDATION,
            format!(
                "storageClass must be one of {}, got {storage_class:?}",
                STORAGE_CLASSES.join(", ")
            ),
        ));
    }
    let location = match (&hint, jurisdiction.as_str()) {
        (Some(hint), _) => hint.to_ascii_uppercase(),
        (None, "eu") => String::from("WEUR"),
        (None, _) => String::from("ENAM"),
    };
    let bucket = Bucket {
        jurisdiction,
        name,
        creation_date: state.clock.timestamp(),
        location,
        storage_class,
    };
    let result = bucket.to_json();
    state
        .store
        .call(move |conn| {
            let taken: bool = conn.query_row(
                "SELECT EXISTS (SELECT 1 FROM r2_buckets WHERE jurisdiction = ?1 AND name = ?2)",
                params![bucket.jurisdiction, bucket.name],
                |row| row.get(0),
            )?;
            if taken {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    BUCKET_EXISTS,
                    "The bucket you tried to create already exists, and you own it.",
                ));
            }
            conn.execute(
                &format!("INSERT INTO r2_buckets ({BUCKET_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5)"),
                params![
                    bucket.jurisdiction,
                    bucket.name,
                    bucket.creation_date,
                    bucket.location,
                    bucket.storage_class
                ],
            )?;
            Ok(())
        })
        .await?;
    Ok(success(result))
}

async fn load(state: &SharedState, jurisdiction: String, name: String) -> ApiResult<Bucket> {
    state
        .store
        .call(move |conn| {
            Ok(conn
                .query_row(
                    &format!(
                        "SELECT {BUCKET_COLUMNS} FROM r2_buckets WHERE jurisdiction = ?1 AND name = ?2"
                    ),
                    params![jurisdiction, name],
                    bucket_from_row,
                )
                .optional()?)
        })
        .await?
        .ok_or_else(no_such_bucket)
}

async fn get_bucket(
    State(state): State<SharedState>,
    headers: HeaderMap,
    path: BucketPath,
) -> ApiResult<Response> {
    let jurisdiction = jurisdiction(&headers)?;
    let Path((_, name)) = path.map_err(path_error)?;
    let bucket = load(&state, jurisdiction, name).await?;
    Ok(success(bucket.to_json()))
}

async fn delete_bucket(
    State(state): State<SharedState>,
    headers: HeaderMap,
    path: BucketPath,
) -> ApiResult<Response> {
    let jurisdiction = jurisdiction(&headers)?;
    let Path((_, name)) = path.map_err(path_error)?;
    let deleted = state
        .store
        .call(move |conn| {
            let transaction = conn.transaction()?;
            if objects::bucket_has_objects(&transaction, &jurisdiction, &name)? {
                return Err(objects::bucket_not_empty());
            }
            let deleted = transaction.execute(
                "DELETE FROM r2_buckets WHERE jurisdiction = ?1 AND name = ?2",
                params![jurisdiction, name],
            )?;
            transaction.commit()?;
            Ok(deleted)
        })
        .await?;
    if deleted == 0 {
        return Err(no_such_bucket());
    }
    Ok(success(json!({})))
}

async fn patch_bucket(
    State(state): State<SharedState>,
    headers: HeaderMap,
    path: BucketPath,
) -> ApiResult<Response> {
    let jurisdiction = jurisdiction(&headers)?;
    let Path((_, name)) = path.map_err(path_error)?;
    let storage_class = headers
        .get(STORAGE_CLASS_HEADER)
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .filter(|value| !value.is_empty())
        .ok_or_else(|| {
            ApiError::bad_request(
                VALIDATION,
                format!("the {STORAGE_CLASS_HEADER} header is required"),
            )
        })?
        .to_owned();
    if !STORAGE_CLASSES.contains(&storage_class.as_str()) {
        return Err(ApiError::bad_request(
            VALIDATION,
            format!(
                "{STORAGE_CLASS_HEADER} must be one of {}, got {storage_class:?}",
                STORAGE_CLASSES.join(", ")
            ),
        ));
    }
    let updated = {
        let jurisdiction = jurisdiction.clone();
        let name = name.clone();
        state
            .store
            .call(move |conn| {
                Ok(conn.execute(
                    "UPDATE r2_buckets SET storage_class = ?1 WHERE jurisdiction = ?2 AND name = ?3",
                    params![storage_class, jurisdiction, name],
                )?)
            })
            .await?
    };
    if updated == 0 {
        return Err(no_such_bucket());
    }
    let bucket = load(&state, jurisdiction, name).await?;
    Ok(success(bucket.to_json()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names() {
        assert!(valid_bucket_name("abc"));
        assert!(valid_bucket_name("my-bucket-1"));
        assert!(!valid_bucket_name("ab"));
        assert!(!valid_bucket_name("-abc"));
        assert!(!valid_bucket_name("abc-"));
        assert!(!valid_bucket_name("ABC"));
        assert!(!valid_bucket_name("a_b"));
        assert!(!valid_bucket_name(&"a".repeat(64)));
    }
}
