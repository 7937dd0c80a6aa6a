//! Versions: `POST …/scripts/{n}/versions` (multipart, like a script upload, not deployed),
//! `GET …/versions` (`{items}`, newest first, with `result_info`; `page`/`per_page` honoured,
//! and without `per_page` or with `deployable=true` the whole list is page 1, so a page past the
//! last is empty), `GET …/versions/{version_id}` (the full object), and the storage of
//! versions with their content-addressed modules and separately kept secret values.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use rusqlite::{Connection, OptionalExtension as _, Transaction, params};
use serde_json::{Map, Value, json};
use sha2::Digest as _;

use super::super::envelope::{
    ApiError, ApiResult, int_param, query_map, success, success_with_info,
};
use super::super::{API_PREFIX, SharedState};
use super::upload::{self, BindingSet, UploadKind};
use super::{
    AUTHOR_EMAIL, QueryParams, ScriptItemPath, ScriptPath, VALIDATION, new_uuid, path_error,
    request_source, require_script,
};
use crate::emulator::Clock;

const VERSION_NOT_FOUND: u32 = 10071;

pub(super) fn routes() -> Router<SharedState> {
    let base = format!("{API_PREFIX}/accounts/{{account_id}}/workers/scripts/{{script_name}}");
    Router::new()
        .route(
            &format!("{base}/versions"),
            get(list_versions).post(upload_version),
        )
        .route(&format!("{base}/versions/{{version_id}}"), get(get_version))
}

/// A stored module: its name, content type and the SHA-256 of its content.
#[derive(Debug, Clone)]
pub(super) struct Module {
    pub name: String,
    pub content_type: String,
    pub digest: String,
}

/// What a new version is made of.
pub(super) struct NewVersion {
    pub script: String,
    pub source: String,
    pub annotations: Map<String, Value>,
    /// `main_module` or `body_part`, `compatibility_date`, `compatibility_flags`, `usage_model`,
    /// `limits`, `placement`.
    pub runtime: Map<String, Value>,
    pub bindings: BindingSet,
    pub modules: Vec<Module>,
    pub handlers: Vec<String>,
}

/// A stored version (its bindings as reported: secrets without values).
#[derive(Debug, Clone)]
pub(super) struct Version {
    pub id: String,
    pub number: i64,
    pub created_on: String,
    pub source: String,
    pub author_email: String,
    pub annotations: Map<String, Value>,
    pub runtime: Map<String, Value>,
    pub bindings: Vec<Value>,
    pub etag: String,
    pub handlers: Vec<String>,
}

const VERSION_COLUMNS: &str =
    "id, number, created_on, source, author_email, annotations, runtime, bindings, etag, handlers";

fn version_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Version> {
    let annotations: String = row.get(5)?;
    let runtime: String = row.get(6)?;
    let bindings: String = row.get(7)?;
    let handlers: String = row.get(9)?;
    Ok(Version {
        id: row.get(0)?,
        number: row.get(1)?,
        created_on: row.get(2)?,
        source: row.get(3)?,
        author_email: row.get(4)?,
        annotations: serde_json::from_str(&annotations).unwrap_or_default(),
        runtime: serde_json::from_str(&runtime).unwrap_or_default(),
        bindings: serde_json::from_str(&bindings).unwrap_or_default(),
        etag: row.get(8)?,
        handlers: serde_json::from_str(&handlers).unwrap_or_default(),
    })
}

/// Stores `data` under its SHA-256 (once) and returns the digest.
pub(super) fn store_blob(transaction: &Transaction<'_>, data: &[u8]) -> ApiResult<String> {
    let digest = hex::encode(sha2::Sha256::digest(data));
    transaction.execute(
        "INSERT OR IGNORE INTO worker_blobs (digest, content) VALUES (?1, ?2)",
        params![digest, data],
    )?;
    Ok(digest)
}

pub(super) fn load_blob(conn: &Connection, digest: &str) -> ApiResult<Vec<u8>> {
    conn.query_row(
        "SELECT content FROM worker_blobs WHERE digest = ?1",
        [digest],
        |row| row.get(0),
    )
    .optional()?
    .ok_or_else(|| ApiError::internal(format!("module content {digest} is missing")))
}

/// Records a version: its number is the script's next one.
pub(super) fn insert_version(
    transaction: &Transaction<'_>,
    clock: &Clock,
    new: NewVersion,
) -> ApiResult<Version> {
    let number: i64 = transaction.query_row(
        "SELECT COALESCE(MAX(number), 0) + 1 FROM worker_versions WHERE script = ?1",
        [&new.script],
        |row| row.get(0),
    )?;
    // The etag covers what the version runs with, but never a secret's value.
    let mut hasher = sha2::Sha256::new();
    hasher.update(Value::Object(new.runtime.clone()).to_string());
    hasher.update(Value::Array(new.bindings.public.clone()).to_string());
    for module in &new.modules {
        hasher.update(format!(
            "\n{}\n{}\n{}",
            module.name, module.content_type, module.digest
        ));
    }
    let version = Version {
        id: new_uuid(),
        number,
        created_on: clock.unique_micros(),
        source: new.source,
        author_email: AUTHOR_EMAIL.to_owned(),
        annotations: new.annotations,
        runtime: new.runtime,
        bindings: new.bindings.public,
        etag: hex::encode(hasher.finalize()),
        handlers: new.handlers,
    };
    transaction.execute(
        &format!(
            "INSERT INTO worker_versions (script, {VERSION_COLUMNS})
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
        ),
        params![
            new.script,
            version.id,
            version.number,
            version.created_on,
            version.source,
            version.author_email,
            Value::Object(version.annotations.clone()).to_string(),
            Value::Object(version.runtime.clone()).to_string(),
            Value::Array(version.bindings.clone()).to_string(),
            version.etag,
            json!(version.handlers).to_string(),
        ],
    )?;
    for (position, module) in new.modules.iter().enumerate() {
        transaction.execute(
            "INSERT INTO worker_version_modules (version_id, position, name, content_type, digest)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                version.id,
                position as i64,
                module.name,
                module.content_type,
                module.digest
            ],
        )?;
    }
    for (name, binding) in &new.bindings.secrets {
        transaction.execute(
            "INSERT INTO worker_version_secrets (version_id, name, binding) VALUES (?1, ?2, ?3)",
            params![version.id, name, binding.to_string()],
        )?;
    }
    Ok(version)
}

/// Version `id` of `script`, if it exists.
pub(super) fn load_version(
    conn: &Connection,
    script: &str,
    id: &str,
) -> ApiResult<Option<Version>> {
    Ok(conn
        .query_row(
            &format!("SELECT {VERSION_COLUMNS} FROM worker_versions WHERE script = ?1 AND id = ?2"),
            params![script, id],
            version_from_row,
        )
        .optional()?)
}

/// The script's newest version.
pub(super) fn latest_version(conn: &Connection, script: &str) -> ApiResult<Option<Version>> {
    Ok(conn
        .query_row(
            &format!(
                "SELECT {VERSION_COLUMNS} FROM worker_versions WHERE script = ?1
                 ORDER BY number DESC LIMIT 1"
            ),
            [script],
            version_from_row,
        )
        .optional()?)
}

/// Every version of the script, newest first.
pub(super) fn all_versions(conn: &Connection, script: &str) -> ApiResult<Vec<Version>> {
    let mut statement = conn.prepare(&format!(
        "SELECT {VERSION_COLUMNS} FROM worker_versions WHERE script = ?1 ORDER BY number DESC"
    ))?;
    let versions = statement
        .query_map([script], version_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(versions)
}

pub(super) fn load_modules(conn: &Connection, version_id: &str) -> ApiResult<Vec<Module>> {
    let mut statement = conn.prepare(
        "SELECT name, content_type, digest FROM worker_version_modules
         WHERE version_id = ?1 ORDER BY position",
    )?;
    let modules = statement
        .query_map([version_id], |row| {
            Ok(Module {
                name: row.get(0)?,
                content_type: row.get(1)?,
                digest: row.get(2)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(modules)
}

/// The secret bindings of a version, with their values. Only used to copy them.
pub(super) fn load_secrets(
    conn: &Connection,
    version_id: &str,
) -> ApiResult<BTreeMap<String, Value>> {
    let mut statement =
        conn.prepare("SELECT name, binding FROM worker_version_secrets WHERE version_id = ?1")?;
    let rows = statement
        .query_map([version_id], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows
        .into_iter()
        .map(|(name, binding)| (name, serde_json::from_str(&binding).unwrap_or(Value::Null)))
        .collect())
}

/// The id reported as a version's `author_id`.
fn author_id() -> String {
    hex::encode(&sha2::Sha256::digest(AUTHOR_EMAIL)[..16])
}

fn version_metadata(version: &Version) -> Value {
    json!({
        "author_id": author_id(),
        "author_email": version.author_email,
        "source": version.source,
        "created_on": version.created_on,
        "modified_on": version.created_on,
        "has_preview": false,
        "hasPreview": false,
    })
}

/// A version as listed: `{id, number, metadata, annotations}`.
pub(super) fn version_summary_json(version: &Version) -> Value {
    json!({
        "id": version.id,
        "number": version.number,
        "metadata": version_metadata(version),
        "annotations": version.annotations,
    })
}

/// The full version object.
pub(super) fn version_json(version: &Version, last_deployed_from: &str) -> Value {
    let runtime = &version.runtime;
    let mut script_runtime = Map::new();
    if let Some(date) = runtime.get("compatibility_date") {
        script_runtime.insert("compatibility_date".into(), date.clone());
    }
    script_runtime.insert(
        "compatibility_flags".into(),
        runtime
            .get("compatibility_flags")
            .cloned()
            .unwrap_or_else(|| json!([])),
    );
    script_runtime.insert(
        "usage_model".into(),
        runtime
            .get("usage_model")
            .cloned()
            .unwrap_or_else(|| json!("standard")),
    );
    script_runtime.insert(
        "limits".into(),
        runtime.get("limits").cloned().unwrap_or_else(|| json!({})),
    );
    let mut script = json!({
        "etag": version.etag,
        "handlers": version.handlers,
        "last_deployed_from": last_deployed_from,
    });
    if let Some(mode) = runtime
        .get("placement")
        .and_then(|placement| placement.get("mode"))
    {
        script["placement_mode"] = mode.clone();
    }
    json!({
        "id": version.id,
        "number": version.number,
        "metadata": version_metadata(version),
        "annotations": version.annotations,
        "resources": {
            "bindings": version.bindings,
            "script": script,
            "script_runtime": script_runtime,
        },
        "startup_time_ms": 0,
    })
}

fn version_not_found(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        VERSION_NOT_FOUND,
        format!("version {id} not found"),
    )
}

async fn upload_version(
    State(state): State<SharedState>,
    path: ScriptPath,
    query: QueryParams,
    request: Request,
) -> ApiResult<Response> {
    let Path((_, script)) = path.map_err(path_error)?;
    let query = query_map(query, VALIDATION)?;
    let strict = query
        .get("bindings_inherit")
        .is_some_and(|mode| mode == "strict");
    let source = request_source(request.headers());
    let body = upload::read_multipart(&state, request, "metadata").await?;
    let clock = state.clock.clone();
    let outcome = state
        .store
        .call(move |conn| {
            upload::apply_upload(
                conn,
                &clock,
                &script,
                body,
                UploadKind::Version,
                strict,
                source,
            )
        })
        .await?;
    Ok(success(version_json(
        &outcome.version,
        &outcome.script.last_deployed_from,
    )))
}

async fn list_versions(
    State(state): State<SharedState>,
    path: ScriptPath,
    query: QueryParams,
) -> ApiResult<Response> {
    let Path((_, script)) = path.map_err(path_error)?;
    let query = query_map(query, VALIDATION)?;
    let deployable = query.get("deployable").is_some_and(|value| value == "true");
    let page = int_param(&query, "page", 1, 1, i64::MAX, VALIDATION)?;
    // `deployable=true`, or no `per_page`: the whole list is page 1 (wrangler reads it so).
    let per_page = if deployable || !query.contains_key("per_page") {
        None
    } else {
        Some(int_param(&query, "per_page", 10, 1, 100, VALIDATION)?)
    };
    let versions = state
        .store
        .call(move |conn| {
            require_script(conn, &script)?;
            all_versions(conn, &script)
        })
        .await?;
    let items: Vec<Value> = versions.iter().map(version_summary_json).collect();
    let total = items.len();
    let per_page = per_page.map_or(total.max(1), |per_page| {
        usize::try_from(per_page).unwrap_or(usize::MAX)
    });
    let start = usize::try_from(page - 1)
        .unwrap_or(usize::MAX)
        .saturating_mul(per_page);
    // A page past the last is empty, so page-by-page clients stop.
    let page_items: Vec<Value> = items.into_iter().skip(start).take(per_page).collect();
    let info = json!({
        "page": page,
        "per_page": per_page,
        "count": page_items.len(),
        "total_count": total,
        "total_pages": total.div_ceil(per_page),
    });
    Ok(success_with_info(json!({ "items": page_items }), info))
}

async fn get_version(
    State(state): State<SharedState>,
    path: ScriptItemPath,
) -> ApiResult<Response> {
    let Path((_, script, id)) = path.map_err(path_error)?;
    let (version, last_deployed_from) = state
        .store
        .call(move |conn| {
            let found = require_script(conn, &script)?;
            let version =
                load_version(conn, &script, &id)?.ok_or_else(|| version_not_found(&id))?;
            Ok((version, found.last_deployed_from))
        })
        .await?;
    Ok(success(version_json(&version, &last_deployed_from)))
}
