//! Secrets of a script: `PUT …/scripts/{n}/secrets` `{name, text, type}`, `GET …/secrets`
//! (`[{name, type}]`), `GET`/`DELETE …/secrets/{name}` (`?url_encoded=true` is accepted; the
//! path segment is decoded once either way) and `PATCH …/secrets-bulk`
//! (`{secrets:{NAME:{text, type}|null}}`, `null` deletes, at most 100).
//!
//! Every change needs the newest version to be the one deployed at 100% (else 400 10215), then
//! creates a version copying it with the change (`workers/triggered_by: secret`) and deploys it
//! at 100%. Types: `secret_text` (needs `text`) and `secret_key` (needs `format` and
//! `key_base64` or `key_jwk`). A name held by a non-secret binding is 10053; an unknown secret
//! is 404 10056. Values are never part of an answer, an error message or a log line.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, patch};
use rusqlite::Connection;
use serde_json::{Map, Value, json};

use super::super::envelope::{ApiError, ApiResult, parse_json, success};
use super::super::{API_PREFIX, SharedState};
use super::upload::{self, BindingSet, SECRET_TYPES, binding_name, binding_type};
use super::versions;
use super::{
    ScriptItemPath, ScriptPath, VALIDATION, invalid, path_error, request_source, require_script,
    script_not_found,
};
use crate::emulator::Clock;

const SECRET_NOT_FOUND: u32 = 10056;
const BINDING_NAME_IN_USE: u32 = 10053;
const MAX_BULK_SECRETS: usize = 100;

pub(super) fn routes() -> Router<SharedState> {
    let base = format!("{API_PREFIX}/accounts/{{account_id}}/workers/scripts/{{script_name}}");
    Router::new()
        .route(
            &format!("{base}/secrets"),
            get(list_secrets).put(put_secret),
        )
        .route(
            &format!("{base}/secrets/{{secret_name}}"),
            get(get_secret).delete(delete_secret),
        )
        .route(&format!("{base}/secrets-bulk"), patch(bulk_secrets))
}

fn secret_not_found(name: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        SECRET_NOT_FOUND,
        format!("Binding '{name}' not found"),
    )
}

/// A secret binding from a request body, checked without ever quoting its value.
fn secret_binding(name: &str, body: &Map<String, Value>) -> ApiResult<Value> {
    if name.is_empty() {
        return Err(invalid("a secret needs a non-empty name"));
    }
    let kind = body
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("secret_text");
    let mut binding = body.clone();
    binding.insert("name".into(), json!(name));
    binding.insert("type".into(), json!(kind));
    match kind {
        "secret_text" => {
            if !body.get("text").is_some_and(Value::is_string) {
                return Err(invalid(format!(
                    "secret {name} of type secret_text needs a string `text`"
                )));
            }
        }
        "secret_key" => {
            let has_key = body.get("key_base64").is_some_and(Value::is_string)
                || body.get("key_jwk").is_some_and(Value::is_object);
            if !body.get("format").is_some_and(Value::is_string) || !has_key {
                return Err(invalid(format!(
                    "secret {name} of type secret_key needs a `format` and `key_base64` or `key_jwk`"
                )));
            }
        }
        _ => {
            return Err(invalid(format!(
                "secret {name}: type must be secret_text or secret_key"
            )));
        }
    }
    Ok(Value::Object(binding))
}

/// The `{name, type}` of every secret in a binding list.
fn secret_summaries(bindings: &[Value]) -> Vec<Value> {
    bindings
        .iter()
        .filter(|binding| binding_type(binding).is_some_and(|kind| SECRET_TYPES.contains(&kind)))
        .map(|binding| json!({ "name": binding_name(binding), "type": binding_type(binding) }))
        .collect()
}

/// One secret change: `Some(binding)` sets, `None` deletes.
type SecretChange = (String, Option<Value>);

/// Applies secret changes as one new version deployed at 100%; answers the secrets after.
fn change_secrets(
    conn: &mut Connection,
    clock: &Clock,
    script_name: &str,
    changes: Vec<SecretChange>,
    source: &str,
) -> ApiResult<Vec<Value>> {
    let transaction = conn.transaction()?;
    let (mut script, latest) = upload::require_latest_deployed(&transaction, script_name)?;
    let mut bindings = BindingSet::of_version(&transaction, &latest)?;
    for (name, change) in changes {
        let existing_type = bindings
            .public
            .iter()
            .find(|binding| binding_name(binding) == Some(name.as_str()))
            .and_then(|binding| binding_type(binding).map(str::to_owned));
        let is_secret = existing_type
            .as_deref()
            .is_some_and(|kind| SECRET_TYPES.contains(&kind));
        match change {
            Some(binding) => {
                if existing_type.is_some() && !is_secret {
                    return Err(ApiError::bad_request(
                        BINDING_NAME_IN_USE,
                        format!("Binding name '{name}' already in use"),
                    ));
                }
                bindings.remove(&name);
                bindings.push(binding);
            }
            None => {
                if !is_secret {
                    return Err(secret_not_found(&name));
                }
                bindings.remove(&name);
            }
        }
    }
    let mut annotations = Map::new();
    annotations.insert("workers/triggered_by".into(), json!("secret"));
    let (version, _) = upload::derive_and_deploy(
        &transaction,
        clock,
        &mut script,
        &latest,
        upload::Derived {
            bindings,
            runtime: latest.runtime.clone(),
            annotations,
        },
        source,
    )?;
    transaction.commit()?;
    Ok(secret_summaries(&version.bindings))
}

async fn put_secret(
    State(state): State<SharedState>,
    path: ScriptPath,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let Path((_, script)) = path.map_err(path_error)?;
    let body: Value = parse_json(&body, VALIDATION, "put secret")?;
    let Value::Object(body) = body else {
        return Err(invalid(
            "the secret must be a JSON object {name, text, type}",
        ));
    };
    let name = body
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let binding = secret_binding(&name, &body)?;
    let kind = binding_type(&binding).unwrap_or("secret_text").to_owned();
    let source = request_source(&headers);
    let change_name = name.clone();
    let clock = state.clock.clone();
    state
        .store
        .call(move |conn| {
            change_secrets(
                conn,
                &clock,
                &script,
                vec![(change_name, Some(binding))],
                source,
            )
        })
        .await?;
    Ok(success(json!({ "name": name, "type": kind })))
}

async fn list_secrets(State(state): State<SharedState>, path: ScriptPath) -> ApiResult<Response> {
    let Path((_, script)) = path.map_err(path_error)?;
    let secrets = state
        .store
        .call(move |conn| {
            require_script(conn, &script)?;
            let latest = versions::latest_version(conn, &script)?.ok_or_else(script_not_found)?;
            Ok(secret_summaries(&latest.bindings))
        })
        .await?;
    Ok(success(Value::Array(secrets)))
}

async fn get_secret(State(state): State<SharedState>, path: ScriptItemPath) -> ApiResult<Response> {
    let Path((_, script, name)) = path.map_err(path_error)?;
    let secret = state
        .store
        .call(move |conn| {
            require_script(conn, &script)?;
            let latest = versions::latest_version(conn, &script)?.ok_or_else(script_not_found)?;
            secret_summaries(&latest.bindings)
                .into_iter()
                .find(|secret| secret["name"] == name.as_str())
                .ok_or_else(|| secret_not_found(&name))
        })
        .await?;
    Ok(success(secret))
}

async fn delete_secret(
    State(state): State<SharedState>,
    path: ScriptItemPath,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let Path((_, script, name)) = path.map_err(path_error)?;
    let source = request_source(&headers);
    let clock = state.clock.clone();
    state
        .store
        .call(move |conn| change_secrets(conn, &clock, &script, vec![(name, None)], source))
        .await?;
    Ok(success(Value::Null))
}

async fn bulk_secrets(
    State(state): State<SharedState>,
    path: ScriptPath,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let Path((_, script)) = path.map_err(path_error)?;
    let body: Value = parse_json(&body, VALIDATION, "patch secrets")?;
    let Some(secrets) = body.get("secrets").and_then(Value::as_object) else {
        return Err(invalid(
            "the body must be {\"secrets\": {NAME: {text, type} | null}}",
        ));
    };
    if secrets.len() > MAX_BULK_SECRETS {
        return Err(invalid(format!(
            "at most {MAX_BULK_SECRETS} secrets per request, got {}",
            secrets.len()
        )));
    }
    let mut changes = Vec::with_capacity(secrets.len());
    for (name, change) in secrets {
        match change {
            Value::Null => changes.push((name.clone(), None)),
            Value::Object(fields) => {
                changes.push((name.clone(), Some(secret_binding(name, fields)?)));
            }
            _ => return Err(invalid(format!("secret {name} must be an object or null"))),
        }
    }
    let source = request_source(&headers);
    let clock = state.clock.clone();
    let secrets = state
        .store
        .call(move |conn| change_secrets(conn, &clock, &script, changes, source))
        .await?;
    Ok(success(Value::Array(secrets)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_errors_never_quote_the_value() {
        let body = json!({"type": "secret_text", "text": 42});
        let error = secret_binding("K", body.as_object().unwrap()).unwrap_err();
        assert!(!error.message.contains("42"), "{}", error.message);
        let body = json!({"type": "plain_text", "text": "shh-value"});
        let error = secret_binding("K", body.as_object().unwrap()).unwrap_err();
        assert!(!error.message.contains("shh-value"), "{}", error.message);
    }
}
