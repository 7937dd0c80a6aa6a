//! workers.dev: the account's subdomain (`GET`/`PUT /accounts/{account_id}/workers/subdomain`,
//! `{subdomain}`) and each script's flags (`GET`/`POST …/scripts/{script_name}/subdomain`,
//! `{enabled, previews_enabled}`; `previews_enabled` is left unchanged when not sent).
//!
//! An account always has a subdomain here: until one is set it is `flareops-` followed by the
//! first 8 characters of the account id (a real account may have none; then wrangler asks to
//! register one, which a non-interactive run cannot). New scripts start with both flags off.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use rusqlite::{OptionalExtension as _, params};
use serde_json::{Value, json};

use super::super::envelope::{ApiResult, parse_json, success};
use super::super::{API_PREFIX, AppState, SharedState};
use super::upload::save_script;
use super::{ScriptPath, VALIDATION, invalid, path_error, require_script};

const SUBDOMAIN_KEY: &str = "workers_subdomain";

pub(super) fn routes() -> Router<SharedState> {
    let account = format!("{API_PREFIX}/accounts/{{account_id}}/workers");
    Router::new()
        .route(
            &format!("{account}/subdomain"),
            get(get_account_subdomain).put(put_account_subdomain),
        )
        .route(
            &format!("{account}/scripts/{{script_name}}/subdomain"),
            get(get_script_subdomain).post(post_script_subdomain),
        )
}

fn default_subdomain(state: &AppState) -> String {
    let prefix: String = state
        .account_id
        .chars()
        .take(8)
        .collect::<String>()
        .to_ascii_lowercase();
    format!("flareops-{prefix}")
}

/// 1 to 63 characters of `[a-z0-9-]`, not starting or ending with `-`.
fn valid_subdomain(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && !name.starts_with('-')
        && !name.ends_with('-')
        && name
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-')
}

async fn get_account_subdomain(State(state): State<SharedState>) -> ApiResult<Response> {
    let stored = state
        .store
        .call(|conn| {
            Ok(conn
                .query_row(
                    "SELECT value FROM meta WHERE key = ?1",
                    [SUBDOMAIN_KEY],
                    |row| row.get::<_, String>(0),
                )
                .optional()?)
        })
        .await?;
    let subdomain = stored.unwrap_or_else(|| default_subdomain(&state));
    Ok(success(json!({ "subdomain": subdomain })))
}

async fn put_account_subdomain(
    State(state): State<SharedState>,
    body: Bytes,
) -> ApiResult<Response> {
    let body: Value = parse_json(&body, VALIDATION, "update subdomain")?;
    let Some(subdomain) = body.get("subdomain").and_then(Value::as_str) else {
        return Err(invalid("the body must be {\"subdomain\": \"…\"}"));
    };
    if !valid_subdomain(subdomain) {
        return Err(invalid(format!(
            "subdomain {subdomain:?} must be 1 to 63 lowercase letters, digits and hyphens"
        )));
    }
    let stored = subdomain.to_owned();
    state
        .store
        .call(move |conn| {
            conn.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![SUBDOMAIN_KEY, stored],
            )?;
            Ok(())
        })
        .await?;
    Ok(success(json!({ "subdomain": subdomain })))
}

async fn get_script_subdomain(
    State(state): State<SharedState>,
    path: ScriptPath,
) -> ApiResult<Response> {
    let Path((_, name)) = path.map_err(path_error)?;
    let script = state
        .store
        .call(move |conn| require_script(conn, &name))
        .await?;
    Ok(success(json!({
        "enabled": script.subdomain_enabled,
        "previews_enabled": script.previews_enabled,
    })))
}

async fn post_script_subdomain(
    State(state): State<SharedState>,
    path: ScriptPath,
    body: Bytes,
) -> ApiResult<Response> {
    let Path((_, name)) = path.map_err(path_error)?;
    let body: Value = parse_json(&body, VALIDATION, "update script subdomain")?;
    let Some(enabled) = body.get("enabled").and_then(Value::as_bool) else {
        return Err(invalid("the body must be {\"enabled\": true|false}"));
    };
    let previews = match body.get("previews_enabled") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(previews)) => Some(*previews),
        Some(_) => return Err(invalid("previews_enabled must be a boolean")),
    };
    let script = state
        .store
        .call(move |conn| {
            let transaction = conn.transaction()?;
            let mut script = require_script(&transaction, &name)?;
            script.subdomain_enabled = enabled;
            if let Some(previews) = previews {
                script.previews_enabled = previews;
            }
            save_script(&transaction, &script)?;
            transaction.commit()?;
            Ok(script)
        })
        .await?;
    Ok(success(json!({
        "enabled": script.subdomain_enabled,
        "previews_enabled": script.previews_enabled,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subdomain_names() {
        assert!(valid_subdomain("my-team"));
        assert!(!valid_subdomain(""));
        assert!(!valid_subdomain("-a"));
        assert!(!valid_subdomain("A"));
    }
}
