//! Deployments: `POST …/scripts/{n}/deployments[?force=true]`, `GET …/deployments`
//! (`{deployments}`, newest and live first), `GET` and `DELETE …/deployments/{deployment_id}`.
//!
//! A deployment sends traffic to 1 or 2 versions of the script with percentages in 0..=100 that
//! sum to 100 (within wrangler's own tolerance of 0.001); anything else is 400 10021. `force` is
//! accepted: nothing here refuses a deployment that it would override. The live deployment
//! cannot be deleted (400 10021); an unknown one is 404 10336.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use rusqlite::{Connection, OptionalExtension as _, Transaction, params};
use serde_json::{Map, Value, json};

use super::super::envelope::{ApiError, ApiResult, parse_json, query_map, success};
use super::super::{API_PREFIX, SharedState};
use super::upload::save_script;
use super::versions;
use super::{
    AUTHOR_EMAIL, QueryParams, ScriptItemPath, ScriptPath, VALIDATION, client_annotations, invalid,
    new_uuid, path_error, request_source, require_script,
};
use crate::emulator::Clock;

const DEPLOYMENT_NOT_FOUND: u32 = 10336;
const MAX_VERSIONS: usize = 2;
const PERCENTAGE_TOLERANCE: f64 = 0.001;

pub(super) fn routes() -> Router<SharedState> {
    let base = format!("{API_PREFIX}/accounts/{{account_id}}/workers/scripts/{{script_name}}");
    Router::new()
        .route(
            &format!("{base}/deployments"),
            get(list_deployments).post(create_deployment),
        )
        .route(
            &format!("{base}/deployments/{{deployment_id}}"),
            get(get_deployment).delete(delete_deployment),
        )
}

#[derive(Debug, Clone)]
pub(super) struct Deployment {
    pub id: String,
    pub created_on: String,
    pub source: String,
    pub strategy: String,
    pub author_email: String,
    pub annotations: Map<String, Value>,
    /// `(version_id, percentage)`.
    pub versions: Vec<(String, f64)>,
}

const DEPLOYMENT_COLUMNS: &str =
    "id, created_on, source, strategy, author_email, annotations, versions";

fn deployment_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Deployment> {
    let annotations: String = row.get(5)?;
    let versions: String = row.get(6)?;
    let versions: Vec<Value> = serde_json::from_str(&versions).unwrap_or_default();
    Ok(Deployment {
        id: row.get(0)?,
        created_on: row.get(1)?,
        source: row.get(2)?,
        strategy: row.get(3)?,
        author_email: row.get(4)?,
        annotations: serde_json::from_str(&annotations).unwrap_or_default(),
        versions: versions
            .iter()
            .map(|entry| {
                (
                    entry["version_id"].as_str().unwrap_or_default().to_owned(),
                    entry["percentage"].as_f64().unwrap_or_default(),
                )
            })
            .collect(),
    })
}

/// A percentage as JSON: an integer when it is whole (`100`, not `100.0`).
fn percentage_json(percentage: f64) -> Value {
    if percentage.fract() == 0.0 && percentage.abs() <= 100.0 {
        json!(percentage as i64)
    } else {
        json!(percentage)
    }
}

fn versions_json(versions: &[(String, f64)]) -> Value {
    Value::Array(
        versions
            .iter()
            .map(|(id, percentage)| {
                json!({ "version_id": id, "percentage": percentage_json(*percentage) })
            })
            .collect(),
    )
}

pub(super) fn deployment_json(deployment: &Deployment) -> Value {
    json!({
        "id": deployment.id,
        "created_on": deployment.created_on,
        "source": deployment.source,
        "strategy": deployment.strategy,
        "author_email": deployment.author_email,
        "annotations": deployment.annotations,
        "versions": versions_json(&deployment.versions),
    })
}

/// Records a deployment as the script's newest (live) one.
pub(super) fn insert_deployment(
    transaction: &Transaction<'_>,
    clock: &Clock,
    script: &str,
    versions: &[(String, f64)],
    annotations: Map<String, Value>,
    source: &str,
) -> ApiResult<Deployment> {
    let seq: i64 = transaction.query_row(
        "SELECT COALESCE(MAX(seq), 0) + 1 FROM worker_deployments WHERE script = ?1",
        [script],
        |row| row.get(0),
    )?;
    let deployment = Deployment {
        id: new_uuid(),
        created_on: clock.unique_micros(),
        source: source.to_owned(),
        strategy: String::from("percentage"),
        author_email: AUTHOR_EMAIL.to_owned(),
        annotations,
        versions: versions.to_vec(),
    };
    transaction.execute(
        &format!(
            "INSERT INTO worker_deployments (script, seq, {DEPLOYMENT_COLUMNS})
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
        ),
        params![
            script,
            seq,
            deployment.id,
            deployment.created_on,
            deployment.source,
            deployment.strategy,
            deployment.author_email,
            Value::Object(deployment.annotations.clone()).to_string(),
            versions_json(&deployment.versions).to_string(),
        ],
    )?;
    Ok(deployment)
}

/// The live deployment: the newest one.
pub(super) fn current_deployment(conn: &Connection, script: &str) -> ApiResult<Option<Deployment>> {
    Ok(conn
        .query_row(
            &format!(
                "SELECT {DEPLOYMENT_COLUMNS} FROM worker_deployments WHERE script = ?1
                 ORDER BY seq DESC LIMIT 1"
            ),
            [script],
            deployment_from_row,
        )
        .optional()?)
}

/// The version serving most of the live deployment's traffic (the first one on a tie).
pub(super) fn current_version_id(conn: &Connection, script: &str) -> ApiResult<Option<String>> {
    Ok(current_deployment(conn, script)?.and_then(|deployment| {
        deployment
            .versions
            .iter()
            .fold(None::<&(String, f64)>, |best, entry| match best {
                Some(best) if best.1 >= entry.1 => Some(best),
                _ => Some(entry),
            })
            .map(|(id, _)| id.clone())
    }))
}

fn all_deployments(conn: &Connection, script: &str) -> ApiResult<Vec<Deployment>> {
    let mut statement = conn.prepare(&format!(
        "SELECT {DEPLOYMENT_COLUMNS} FROM worker_deployments WHERE script = ?1 ORDER BY seq DESC"
    ))?;
    let deployments = statement
        .query_map([script], deployment_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(deployments)
}

fn deployment_not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        DEPLOYMENT_NOT_FOUND,
        "Deployment not found",
    )
}

/// Parses and checks `{strategy, versions:[{version_id, percentage}]}`.
fn requested_versions(body: &Value) -> ApiResult<Vec<(String, f64)>> {
    match body.get("strategy") {
        None | Some(Value::Null) => {}
        Some(Value::String(strategy)) if strategy == "percentage" => {}
        Some(_) => return Err(invalid("strategy must be \"percentage\"")),
    }
    let Some(entries) = body.get("versions").and_then(Value::as_array) else {
        return Err(invalid(
            "versions must be an array of {version_id, percentage}",
        ));
    };
    if entries.is_empty() || entries.len() > MAX_VERSIONS {
        return Err(invalid(format!(
            "a deployment must have 1 or {MAX_VERSIONS} versions, got {}",
            entries.len()
        )));
    }
    let mut versions: Vec<(String, f64)> = Vec::with_capacity(entries.len());
    for entry in entries {
        let (Some(id), Some(percentage)) = (
            entry.get("version_id").and_then(Value::as_str),
            entry.get("percentage").and_then(Value::as_f64),
        ) else {
            return Err(invalid(
                "each version must have a string version_id and a numeric percentage",
            ));
        };
        if !(0.0..=100.0).contains(&percentage) {
            return Err(invalid(format!(
                "percentage of version {id} must be between 0 and 100, got {percentage}"
            )));
        }
        if versions.iter().any(|(seen, _)| seen == id) {
            return Err(invalid(format!("version {id} is listed more than once")));
        }
        versions.push((id.to_owned(), percentage));
    }
    let total: f64 = versions.iter().map(|(_, percentage)| percentage).sum();
    if (total - 100.0).abs() > PERCENTAGE_TOLERANCE {
        return Err(invalid(format!(
            "version percentages must sum to 100, got {total}"
        )));
    }
    Ok(versions)
}

async fn create_deployment(
    State(state): State<SharedState>,
    path: ScriptPath,
    query: QueryParams,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let Path((_, script_name)) = path.map_err(path_error)?;
    // `force` only overrides checks this emulator does not make.
    query_map(query, VALIDATION)?;
    let source = request_source(&headers);
    let body: Value = parse_json(&body, VALIDATION, "create deployment")?;
    let versions = requested_versions(&body)?;
    let message = client_annotations(body.get("annotations"))?.remove("workers/message");
    let clock = state.clock.clone();
    let deployment = state
        .store
        .call(move |conn| {
            let transaction = conn.transaction()?;
            let mut script = require_script(&transaction, &script_name)?;
            let mut numbers = Vec::with_capacity(versions.len());
            for (id, _) in &versions {
                let version =
                    versions::load_version(&transaction, &script_name, id)?.ok_or_else(|| {
                        invalid(format!(
                            "version {id} does not exist on Worker {script_name}"
                        ))
                    })?;
                numbers.push(version.number);
            }
            let newest = versions::latest_version(&transaction, &script_name)?
                .map(|version| version.number)
                .unwrap_or_default();
            let live = current_deployment(&transaction, &script_name)?;
            let mut annotations = Map::new();
            let is_rollback = versions.len() == 1 && numbers[0] < newest;
            if is_rollback {
                annotations.insert("workers/triggered_by".into(), json!("rollback"));
                if let Some(live) = &live {
                    annotations.insert("workers/rollback_from".into(), json!(live.id));
                }
            } else {
                annotations.insert("workers/triggered_by".into(), json!("promotion"));
            }
            if let Some(message) = message {
                annotations.insert("workers/message".into(), message);
            }
            let deployment = insert_deployment(
                &transaction,
                &clock,
                &script_name,
                &versions,
                annotations,
                source,
            )?;
            script.modified_on = deployment.created_on.clone();
            script.last_deployed_from = source.to_owned();
            save_script(&transaction, &script)?;
            transaction.commit()?;
            Ok(deployment)
        })
        .await?;
    Ok(success(deployment_json(&deployment)))
}

async fn list_deployments(
    State(state): State<SharedState>,
    path: ScriptPath,
) -> ApiResult<Response> {
    let Path((_, script)) = path.map_err(path_error)?;
    let deployments = state
        .store
        .call(move |conn| {
            require_script(conn, &script)?;
            all_deployments(conn, &script)
        })
        .await?;
    let list: Vec<Value> = deployments.iter().map(deployment_json).collect();
    Ok(success(json!({ "deployments": list })))
}

fn load_deployment(conn: &Connection, script: &str, id: &str) -> ApiResult<Deployment> {
    conn.query_row(
        &format!(
            "SELECT {DEPLOYMENT_COLUMNS} FROM worker_deployments WHERE script = ?1 AND id = ?2"
        ),
        params![script, id],
        deployment_from_row,
    )
    .optional()?
    .ok_or_else(deployment_not_found)
}

async fn get_deployment(
    State(state): State<SharedState>,
    path: ScriptItemPath,
) -> ApiResult<Response> {
    let Path((_, script, id)) = path.map_err(path_error)?;
    let deployment = state
        .store
        .call(move |conn| {
            require_script(conn, &script)?;
            load_deployment(conn, &script, &id)
        })
        .await?;
    Ok(success(deployment_json(&deployment)))
}

async fn delete_deployment(
    State(state): State<SharedState>,
    path: ScriptItemPath,
) -> ApiResult<Response> {
    let Path((_, script, id)) = path.map_err(path_error)?;
    state
        .store
        .call(move |conn| {
            require_script(conn, &script)?;
            let deployment = load_deployment(conn, &script, &id)?;
            let live = current_deployment(conn, &script)?;
            if live.is_some_and(|live| live.id == deployment.id) {
                return Err(invalid(
                    "the latest deployment is live and cannot be deleted; deploy another first",
                ));
            }
            conn.execute(
                "DELETE FROM worker_deployments WHERE script = ?1 AND id = ?2",
                params![script, id],
            )?;
            Ok(())
        })
        .await?;
    Ok(success(Value::Null))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployment_bodies_are_checked() {
        let ok = requested_versions(&json!({
            "strategy": "percentage",
            "versions": [{"version_id": "a", "percentage": 10}, {"version_id": "b", "percentage": 90}],
        }))
        .unwrap();
        assert_eq!(ok, vec![("a".to_owned(), 10.0), ("b".to_owned(), 90.0)]);
        let bad = [
            json!({"versions": []}),
            json!({"versions": [{"version_id": "a", "percentage": 50}]}),
            json!({"versions": [{"version_id": "a", "percentage": 50}, {"version_id": "a", "percentage": 50}]}),
            json!({"versions": [
                {"version_id": "a", "percentage": 30},
                {"version_id": "b", "percentage": 30},
                {"version_id": "c", "percentage": 40},
            ]}),
            json!({"versions": [{"version_id": "a", "percentage": 101}, {"version_id": "b", "percentage": -1}]}),
            json!({"strategy": "gradual", "versions": [{"version_id": "a", "percentage": 100}]}),
        ];
        for body in bad {
            assert_eq!(
                requested_versions(&body).unwrap_err().code,
                VALIDATION,
                "{body}"
            );
        }
    }

    #[test]
    fn whole_percentages_are_integers() {
        assert_eq!(percentage_json(100.0).to_string(), "100");
        assert_eq!(percentage_json(12.5).to_string(), "12.5");
    }
}
