//! Scripts: `PUT /accounts/{account_id}/workers/scripts/{script_name}` (multipart upload, creates
//! a version and deploys it at 100%), `GET /workers/scripts` (not paginated), `DELETE
//! /workers/scripts/{n}` and `DELETE /workers/services/{n}` (the script and everything attached
//! to it: versions, deployments, secrets, schedules, routes, custom domains, Durable Object
//! namespaces), `GET /workers/services/{n}`, versioned settings (`GET`/`PATCH …/settings`, the
//! patch is multipart with a `settings` part and deploys a new version at 100% when a versioned
//! field changes; its `bindings` replace the version's, except that secrets are kept and a
//! binding given as `{name, type}` only keeps the current binding of that name and type as it is,
//! value included, which is how `wrangler secret bulk` re-sends the bindings it does not change),
//! non-versioned settings (`GET`/`PATCH …/script-settings`, JSON) and the
//! content download `GET …/content/v2[?version=]`: the raw multipart body, one part per module
//! with its original content type and a `cf-entrypoint` header naming the main module (a
//! service worker, uploaded with `body_part`, comes back as plain JavaScript).

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use rusqlite::Connection;
use serde_json::{Map, Value, json};

use super::super::envelope::{ApiError, ApiResult, parse_json, query_map, success};
use super::super::{API_PREFIX, SharedState};
use super::deployments::current_version_id;
use super::upload::{
    self, BindingRules, BindingSet, SCRIPT_SETTING_KEYS, UploadKind, resolve_bindings, save_script,
};
use super::versions::{self, Version};
use super::{
    QueryParams, Script, ScriptPath, VALIDATION, invalid, path_error, request_source,
    require_script, script_not_found, valid_script_name,
};
use crate::emulator::Clock;

pub(super) fn routes() -> Router<SharedState> {
    let account = format!("{API_PREFIX}/accounts/{{account_id}}/workers");
    let script = format!("{account}/scripts/{{script_name}}");
    Router::new()
        .route(&format!("{account}/scripts"), get(list_scripts))
        .route(&script, put(upload_script).delete(delete_script))
        .route(
            &format!("{script}/settings"),
            get(get_settings).patch(patch_settings),
        )
        .route(
            &format!("{script}/script-settings"),
            get(get_script_settings).patch(patch_script_settings),
        )
        .route(&format!("{script}/content/v2"), get(get_content))
        .route(
            &format!("{account}/services/{{script_name}}"),
            get(get_service).delete(delete_script),
        )
}

/// The version a script runs now (the live deployment's main version), else its newest.
pub(super) fn running_version(conn: &Connection, script: &str) -> ApiResult<Option<Version>> {
    if let Some(id) = current_version_id(conn, script)?
        && let Some(version) = versions::load_version(conn, script, &id)?
    {
        return Ok(Some(version));
    }
    versions::latest_version(conn, script)
}

fn runtime_field(version: Option<&Version>, key: &str) -> Option<Value> {
    version.and_then(|version| version.runtime.get(key).cloned())
}

/// A script as listed and as answered by an upload.
fn script_json(script: &Script, version: Option<&Version>, routes: Option<Value>) -> Value {
    let settings = &script.script_settings;
    let mut result = json!({
        "id": script.name,
        "tag": script.tag,
        "tags": settings.get("tags").cloned().unwrap_or(Value::Null),
        "etag": version.map(|version| version.etag.clone()),
        "handlers": version.map(|version| version.handlers.clone()).unwrap_or_default(),
        "created_on": script.created_on,
        "modified_on": script.modified_on,
        "usage_model": runtime_field(version, "usage_model").unwrap_or_else(|| json!("standard")),
        "compatibility_flags": runtime_field(version, "compatibility_flags").unwrap_or_else(|| json!([])),
        "has_modules": runtime_field(version, "main_module").is_some(),
        "has_assets": false,
        "logpush": settings.get("logpush").cloned().unwrap_or(Value::Bool(false)),
        "tail_consumers": settings.get("tail_consumers").cloned().unwrap_or(Value::Null),
        "last_deployed_from": script.last_deployed_from,
    });
    if let Some(date) = runtime_field(version, "compatibility_date") {
        result["compatibility_date"] = date;
    }
    if let Some(tag) = &script.migration_tag {
        result["migration_tag"] = json!(tag);
    }
    if let Some(mode) =
        runtime_field(version, "placement").and_then(|placement| placement.get("mode").cloned())
    {
        result["placement_mode"] = mode;
    }
    if let Some(routes) = routes {
        result["routes"] = routes;
    }
    result
}

async fn upload_script(
    State(state): State<SharedState>,
    path: ScriptPath,
    query: QueryParams,
    request: Request,
) -> ApiResult<Response> {
    let Path((_, script)) = path.map_err(path_error)?;
    if !valid_script_name(&script) {
        return Err(invalid(format!(
            "Worker name {script:?} is invalid: use 1 to 63 lowercase letters, digits, - and _, not starting with -"
        )));
    }
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
                UploadKind::Script,
                strict,
                source,
            )
        })
        .await?;
    let mut result = script_json(&outcome.script, Some(&outcome.version), None);
    result["startup_time_ms"] = json!(0);
    result["deployment_id"] = json!(outcome.version.id);
    Ok(success(result))
}

fn script_routes(conn: &Connection, script: &str) -> ApiResult<Value> {
    let mut statement =
        conn.prepare("SELECT id, pattern FROM worker_routes WHERE script = ?1 ORDER BY pattern")?;
    let routes = statement
        .query_map([script], |row| {
            Ok(json!({ "id": row.get::<_, String>(0)?, "pattern": row.get::<_, String>(1)? }))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Value::Array(routes))
}

async fn list_scripts(State(state): State<SharedState>) -> ApiResult<Response> {
    let scripts = state
        .store
        .call(|conn| {
            let mut statement = conn.prepare(&format!(
                "SELECT {} FROM worker_scripts ORDER BY name",
                super::SCRIPT_COLUMNS
            ))?;
            let scripts = statement
                .query_map([], super::script_from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let mut listed = Vec::with_capacity(scripts.len());
            for script in &scripts {
                let version = running_version(conn, &script.name)?;
                let routes = script_routes(conn, &script.name)?;
                listed.push(script_json(script, version.as_ref(), Some(routes)));
            }
            Ok(listed)
        })
        .await?;
    Ok(success(Value::Array(scripts)))
}

/// Removes a script and everything attached to it; module contents no version uses go too.
fn remove_script(conn: &mut Connection, name: &str) -> ApiResult<()> {
    let transaction = conn.transaction()?;
    require_script(&transaction, name)?;
    for sql in [
        "DELETE FROM worker_version_secrets WHERE version_id IN (SELECT id FROM worker_versions WHERE script = ?1)",
        "DELETE FROM worker_version_modules WHERE version_id IN (SELECT id FROM worker_versions WHERE script = ?1)",
        "DELETE FROM worker_versions WHERE script = ?1",
        "DELETE FROM worker_deployments WHERE script = ?1",
        "DELETE FROM worker_schedules WHERE script = ?1",
        "DELETE FROM worker_routes WHERE script = ?1",
        "DELETE FROM worker_domains WHERE service = ?1",
        "DELETE FROM durable_object_namespaces WHERE script = ?1",
        "DELETE FROM worker_scripts WHERE name = ?1",
    ] {
        transaction.execute(sql, [name])?;
    }
    transaction.execute(
        "DELETE FROM worker_blobs WHERE digest NOT IN (SELECT digest FROM worker_version_modules)",
        [],
    )?;
    transaction.commit()?;
    Ok(())
}

async fn delete_script(
    State(state): State<SharedState>,
    path: ScriptPath,
    query: QueryParams,
) -> ApiResult<Response> {
    let Path((_, script)) = path.map_err(path_error)?;
    // `force` only overrides reference checks this emulator does not make.
    query_map(query, VALIDATION)?;
    state
        .store
        .call(move |conn| remove_script(conn, &script))
        .await?;
    Ok(success(Value::Null))
}

async fn get_service(State(state): State<SharedState>, path: ScriptPath) -> ApiResult<Response> {
    let Path((_, name)) = path.map_err(path_error)?;
    let (script, version) = state
        .store
        .call(move |conn| {
            let script = require_script(conn, &name)?;
            let version = running_version(conn, &name)?;
            Ok((script, version))
        })
        .await?;
    let environment = json!({
        "environment": "production",
        "created_on": script.created_on,
        "modified_on": script.modified_on,
    });
    let mut default_environment = environment.clone();
    default_environment["script"] = script_json(&script, version.as_ref(), None);
    Ok(success(json!({
        "id": script.name,
        "created_on": script.created_on,
        "modified_on": script.modified_on,
        "environments": [environment],
        "default_environment": default_environment,
    })))
}

fn settings_json(script: &Script, version: Option<&Version>) -> Value {
    let settings = &script.script_settings;
    json!({
        "bindings": version.map(|version| version.bindings.clone()).unwrap_or_default(),
        "compatibility_date": runtime_field(version, "compatibility_date"),
        "compatibility_flags": runtime_field(version, "compatibility_flags").unwrap_or_else(|| json!([])),
        "limits": runtime_field(version, "limits").unwrap_or_else(|| json!({})),
        "logpush": settings.get("logpush").cloned().unwrap_or(Value::Bool(false)),
        "observability": settings.get("observability").cloned().unwrap_or(Value::Null),
        "placement": runtime_field(version, "placement").unwrap_or(Value::Null),
        "tags": settings.get("tags").cloned().unwrap_or(Value::Null),
        "tail_consumers": settings.get("tail_consumers").cloned().unwrap_or(Value::Null),
        "usage_model": runtime_field(version, "usage_model").unwrap_or_else(|| json!("standard")),
    })
}

async fn get_settings(State(state): State<SharedState>, path: ScriptPath) -> ApiResult<Response> {
    let Path((_, name)) = path.map_err(path_error)?;
    let (script, version) = state
        .store
        .call(move |conn| {
            let script = require_script(conn, &name)?;
            let version = running_version(conn, &name)?;
            Ok((script, version))
        })
        .await?;
    Ok(success(settings_json(&script, version.as_ref())))
}

/// Settings that live in a version (changing one makes and deploys a new version).
const VERSIONED_SETTINGS: [&str; 6] = [
    "bindings",
    "compatibility_date",
    "compatibility_flags",
    "limits",
    "placement",
    "usage_model",
];

fn apply_settings_patch(
    conn: &mut Connection,
    clock: &Clock,
    name: &str,
    patch: &Map<String, Value>,
    source: &str,
) -> ApiResult<(Script, Option<Version>)> {
    let transaction = conn.transaction()?;
    let mut script = require_script(&transaction, name)?;
    let running = running_version(&transaction, name)?.ok_or_else(script_not_found)?;
    for key in SCRIPT_SETTING_KEYS {
        if let Some(value) = patch.get(key) {
            script.script_settings.insert(key.into(), value.clone());
        }
    }
    let versioned_change = VERSIONED_SETTINGS
        .iter()
        .any(|key| patch.contains_key(*key));
    let version = if versioned_change {
        let base = BindingSet::of_version(&transaction, &running)?;
        let bindings = match patch.get("bindings") {
            None | Some(Value::Null) => base,
            Some(Value::Array(requested)) => {
                let keep_types: Vec<String> = patch
                    .get("keep_bindings")
                    .and_then(Value::as_array)
                    .map(|types| {
                        types
                            .iter()
                            .filter_map(|kind| kind.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                resolve_bindings(
                    &transaction,
                    name,
                    requested,
                    &base,
                    &BindingRules {
                        strict_inherit: false,
                        keep_types: &keep_types,
                        bare_keeps: true,
                    },
                )?
            }
            Some(_) => return Err(invalid("bindings must be an array")),
        };
        let mut runtime = running.runtime.clone();
        for key in VERSIONED_SETTINGS.iter().skip(1) {
            if let Some(value) = patch.get(*key) {
                runtime.insert((*key).into(), value.clone());
            }
        }
        let (version, _) = upload::derive_and_deploy(
            &transaction,
            clock,
            &mut script,
            &running,
            upload::Derived {
                bindings,
                runtime,
                annotations: Map::new(),
            },
            source,
        )?;
        Some(version)
    } else {
        save_script(&transaction, &script)?;
        Some(running)
    };
    transaction.commit()?;
    Ok((script, version))
}

async fn patch_settings(
    State(state): State<SharedState>,
    path: ScriptPath,
    request: Request,
) -> ApiResult<Response> {
    let Path((_, name)) = path.map_err(path_error)?;
    let source = request_source(request.headers());
    let body = upload::read_multipart(&state, request, "settings").await?;
    let clock = state.clock.clone();
    let (script, version) = state
        .store
        .call(move |conn| apply_settings_patch(conn, &clock, &name, &body.json, source))
        .await?;
    Ok(success(settings_json(&script, version.as_ref())))
}

fn script_settings_json(script: &Script) -> Value {
    let mut result = Map::new();
    for key in SCRIPT_SETTING_KEYS {
        result.insert(
            key.into(),
            script
                .script_settings
                .get(key)
                .cloned()
                .unwrap_or(Value::Null),
        );
    }
    Value::Object(result)
}

async fn get_script_settings(
    State(state): State<SharedState>,
    path: ScriptPath,
) -> ApiResult<Response> {
    let Path((_, name)) = path.map_err(path_error)?;
    let script = state
        .store
        .call(move |conn| require_script(conn, &name))
        .await?;
    Ok(success(script_settings_json(&script)))
}

async fn patch_script_settings(
    State(state): State<SharedState>,
    path: ScriptPath,
    body: Bytes,
) -> ApiResult<Response> {
    let Path((_, name)) = path.map_err(path_error)?;
    let patch: Value = parse_json(&body, VALIDATION, "patch script settings")?;
    let Value::Object(patch) = patch else {
        return Err(invalid("script settings must be a JSON object"));
    };
    for (key, expected) in [
        ("logpush", "a boolean"),
        ("observability", "an object"),
        ("tags", "a list of strings"),
        ("tail_consumers", "a list"),
    ] {
        let valid = match (key, patch.get(key)) {
            (_, None | Some(Value::Null)) => true,
            ("logpush", Some(value)) => value.is_boolean(),
            ("observability", Some(value)) => value.is_object(),
            ("tags", Some(Value::Array(tags))) => tags.iter().all(Value::is_string),
            ("tail_consumers", Some(value)) => value.is_array(),
            _ => false,
        };
        if !valid {
            return Err(invalid(format!("{key} must be {expected}")));
        }
    }
    let script = state
        .store
        .call(move |conn| {
            let transaction = conn.transaction()?;
            let mut script = require_script(&transaction, &name)?;
            for key in SCRIPT_SETTING_KEYS {
                if let Some(value) = patch.get(key) {
                    script.script_settings.insert(key.into(), value.clone());
                }
            }
            save_script(&transaction, &script)?;
            transaction.commit()?;
            Ok(script)
        })
        .await?;
    Ok(success(script_settings_json(&script)))
}

/// A module's name as a quoted `Content-Disposition` parameter.
fn disposition_value(name: &str) -> String {
    name.replace('\\', "\\\\")
        .replace('"', "%22")
        .replace(['\r', '\n'], " ")
}

async fn get_content(
    State(state): State<SharedState>,
    path: ScriptPath,
    query: QueryParams,
) -> ApiResult<Response> {
    let Path((_, name)) = path.map_err(path_error)?;
    let query = query_map(query, VALIDATION)?;
    let requested = query.get("version").filter(|id| !id.is_empty()).cloned();
    let (version, modules) = state
        .store
        .call(move |conn| {
            require_script(conn, &name)?;
            let version = match &requested {
                Some(id) => versions::load_version(conn, &name, id)?.ok_or_else(|| {
                    ApiError::new(
                        StatusCode::NOT_FOUND,
                        10071,
                        format!("version {id} not found"),
                    )
                })?,
                None => running_version(conn, &name)?.ok_or_else(script_not_found)?,
            };
            let mut modules = Vec::new();
            for module in versions::load_modules(conn, &version.id)? {
                let content = versions::load_blob(conn, &module.digest)?;
                modules.push((module, content));
            }
            Ok((version, modules))
        })
        .await?;
    if let Some(Value::String(body_part)) = version.runtime.get("body_part")
        && let Some((module, content)) =
            modules.iter().find(|(module, _)| &module.name == body_part)
    {
        let content_type = HeaderValue::from_str(&module.content_type)
            .unwrap_or_else(|_| HeaderValue::from_static("application/javascript"));
        return Ok(([(header::CONTENT_TYPE, content_type)], content.clone()).into_response());
    }
    let main = version
        .runtime
        .get("main_module")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let boundary = format!("----flareopsemulator{}", super::new_hex_id());
    let mut body = Vec::new();
    for (module, content) in &modules {
        let name = disposition_value(&module.name);
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}\"\r\nContent-Type: {}\r\n\r\n",
                module.content_type
            )
            .as_bytes(),
        );
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let mut response = Response::new(Body::from(body));
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&format!("multipart/form-data; boundary={boundary}")) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    if let Ok(value) = HeaderValue::from_str(&main) {
        headers.insert("cf-entrypoint", value);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disposition_names_are_escaped() {
        assert_eq!(disposition_value("index.js"), "index.js");
        assert_eq!(disposition_value("a\"b"), "a%22b");
    }
}
