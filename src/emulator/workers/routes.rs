//! Workers routes. Per zone: `GET`/`POST /zones/{zone_id}/workers/routes` and `GET`/`PUT`/`DELETE
//! /zones/{zone_id}/workers/routes/{route_id}` (`{id, pattern, script?}`; delete answers `{id}`).
//! Per script (wrangler's internal call): `PUT /accounts/{account_id}/workers/scripts/{n}/routes`
//! with `[{pattern, zone_id?|zone_name?}]` replaces the script's whole route set, and `GET` lists
//! it (`[{id, pattern, zone_id, zone_name, script}]`).
//!
//! A pattern is `[scheme://]host[/path]` where the host may start with `*` or `*.`; its host
//! must be the zone's name or under it (else 400 10022, as for a malformed pattern). A pattern is
//! unique in its zone: a second one is 409 10020 "A route with the same pattern already exists"
//! (a route of no script is taken over by the script-level `PUT`). A route for a script that
//! does not exist is 10019; an unknown route is 404 10009; an unknown zone is 7003.

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use rusqlite::{Connection, OptionalExtension as _, params};
use serde_json::{Value, json};

use super::super::envelope::{ApiError, ApiResult, parse_json, success};
use super::super::{API_PREFIX, SharedState};
use super::zones::{self, Zone, find_zone, host_in_zone, unknown_zone};
use super::{ScriptPath, VALIDATION, find_script, new_hex_id, path_error, require_script};

const ROUTE_NOT_FOUND: u32 = 10009;
const ROUTE_SCRIPT_NOT_FOUND: u32 = 10019;
const DUPLICATE_ROUTE: u32 = 10020;
const INVALID_PATTERN: u32 = 10022;

pub(super) fn routes() -> Router<SharedState> {
    let zone = format!("{API_PREFIX}/zones/{{zone_id}}/workers/routes");
    Router::new()
        .route(&zone, get(list_zone_routes).post(create_zone_route))
        .route(
            &format!("{zone}/{{route_id}}"),
            get(get_zone_route)
                .put(update_zone_route)
                .delete(delete_zone_route),
        )
        .route(
            &format!("{API_PREFIX}/accounts/{{account_id}}/workers/scripts/{{script_name}}/routes"),
            get(list_script_routes).put(put_script_routes),
        )
}

type ZonePath = Result<Path<String>, PathRejection>;
type RoutePath = Result<Path<(String, String)>, PathRejection>;

#[derive(Debug, Clone)]
struct Route {
    id: String,
    zone_id: String,
    pattern: String,
    script: Option<String>,
}

fn route_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Route> {
    Ok(Route {
        id: row.get(0)?,
        zone_id: row.get(1)?,
        pattern: row.get(2)?,
        script: row.get(3)?,
    })
}

const ROUTE_COLUMNS: &str = "id, zone_id, pattern, script";

fn route_json(route: &Route) -> Value {
    let mut result = json!({ "id": route.id, "pattern": route.pattern });
    if let Some(script) = &route.script {
        result["script"] = json!(script);
    }
    result
}

fn invalid_pattern(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(INVALID_PATTERN, message)
}

fn duplicate_route() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        DUPLICATE_ROUTE,
        "A route with the same pattern already exists",
    )
}

fn route_not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, ROUTE_NOT_FOUND, "Route not found")
}

fn route_script_not_found() -> ApiError {
    ApiError::bad_request(
        ROUTE_SCRIPT_NOT_FOUND,
        "Cannot configure a route for a Worker which does not exist. Please ensure this Worker exists and try again.",
    )
}

/// The host a pattern applies to, lowercased, without its leading wildcard.
fn pattern_host(pattern: &str) -> ApiResult<String> {
    let invalid = || invalid_pattern(format!("Invalid route pattern {pattern:?}"));
    if pattern.is_empty() || pattern.len() > 1024 || pattern.chars().any(char::is_whitespace) {
        return Err(invalid());
    }
    let lower = pattern.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .unwrap_or(&lower);
    let host = rest.split('/').next().unwrap_or_default();
    let core = match host.strip_prefix('*') {
        Some(wildcarded) => wildcarded.strip_prefix('.').unwrap_or(wildcarded),
        None => host,
    };
    if !zones::valid_hostname(core) {
        return Err(invalid());
    }
    Ok(core.to_owned())
}

/// Checks that `pattern` lies on `zone`.
fn check_pattern_on_zone(pattern: &str, zone: &Zone) -> ApiResult<()> {
    let host = pattern_host(pattern)?;
    if host_in_zone(&host, &zone.name) {
        Ok(())
    } else {
        Err(invalid_pattern(format!(
            "Invalid route pattern {pattern:?}: its host is not on zone {}",
            zone.name
        )))
    }
}

fn load_route(conn: &Connection, zone_id: &str, id: &str) -> ApiResult<Route> {
    conn.query_row(
        &format!("SELECT {ROUTE_COLUMNS} FROM worker_routes WHERE zone_id = ?1 AND id = ?2"),
        params![zone_id, id],
        route_from_row,
    )
    .optional()?
    .ok_or_else(route_not_found)
}

fn find_by_pattern(conn: &Connection, zone_id: &str, pattern: &str) -> ApiResult<Option<Route>> {
    Ok(conn
        .query_row(
            &format!(
                "SELECT {ROUTE_COLUMNS} FROM worker_routes WHERE zone_id = ?1 AND pattern = ?2"
            ),
            params![zone_id, pattern],
            route_from_row,
        )
        .optional()?)
}

fn require_zone(conn: &Connection, zone_id: &str) -> ApiResult<Zone> {
    find_zone(conn, zone_id)?.ok_or_else(|| unknown_zone(zone_id))
}

/// `{pattern, script?}` from a request body.
fn route_body(body: &Bytes, what: &str) -> ApiResult<(String, Option<String>)> {
    let body: Value = parse_json(body, VALIDATION, what)?;
    let Some(pattern) = body.get("pattern").and_then(Value::as_str) else {
        return Err(invalid_pattern("a route needs a string pattern"));
    };
    let script = match body.get("script") {
        None | Some(Value::Null) => None,
        Some(Value::String(script)) if script.is_empty() => None,
        Some(Value::String(script)) => Some(script.clone()),
        Some(_) => return Err(ApiError::bad_request(VALIDATION, "script must be a string")),
    };
    Ok((pattern.to_owned(), script))
}

fn check_script(conn: &Connection, script: Option<&str>) -> ApiResult<()> {
    match script {
        Some(name) if find_script(conn, name)?.is_none() => Err(route_script_not_found()),
        _ => Ok(()),
    }
}

async fn list_zone_routes(State(state): State<SharedState>, path: ZonePath) -> ApiResult<Response> {
    let Path(zone_id) = path.map_err(path_error)?;
    let routes = state
        .store
        .call(move |conn| {
            require_zone(conn, &zone_id)?;
            let mut statement = conn.prepare(&format!(
                "SELECT {ROUTE_COLUMNS} FROM worker_routes WHERE zone_id = ?1 ORDER BY pattern"
            ))?;
            let routes = statement
                .query_map([&zone_id], route_from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(routes)
        })
        .await?;
    Ok(success(Value::Array(
        routes.iter().map(route_json).collect(),
    )))
}

async fn create_zone_route(
    State(state): State<SharedState>,
    path: ZonePath,
    body: Bytes,
) -> ApiResult<Response> {
    let Path(zone_id) = path.map_err(path_error)?;
    let (pattern, script) = route_body(&body, "create route")?;
    let created_on = state.clock.unique_micros();
    let route = state
        .store
        .call(move |conn| {
            let transaction = conn.transaction()?;
            let zone = require_zone(&transaction, &zone_id)?;
            check_pattern_on_zone(&pattern, &zone)?;
            check_script(&transaction, script.as_deref())?;
            if find_by_pattern(&transaction, &zone.id, &pattern)?.is_some() {
                return Err(duplicate_route());
            }
            let route = Route {
                id: new_hex_id(),
                zone_id: zone.id,
                pattern,
                script,
            };
            transaction.execute(
                "INSERT INTO worker_routes (id, zone_id, pattern, script, created_on)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    route.id,
                    route.zone_id,
                    route.pattern,
                    route.script,
                    created_on
                ],
            )?;
            transaction.commit()?;
            Ok(route)
        })
        .await?;
    Ok(success(route_json(&route)))
}

async fn get_zone_route(State(state): State<SharedState>, path: RoutePath) -> ApiResult<Response> {
    let Path((zone_id, id)) = path.map_err(path_error)?;
    let route = state
        .store
        .call(move |conn| {
            require_zone(conn, &zone_id)?;
            load_route(conn, &zone_id, &id)
        })
        .await?;
    Ok(success(route_json(&route)))
}

async fn update_zone_route(
    State(state): State<SharedState>,
    path: RoutePath,
    body: Bytes,
) -> ApiResult<Response> {
    let Path((zone_id, id)) = path.map_err(path_error)?;
    let (pattern, script) = route_body(&body, "update route")?;
    let route = state
        .store
        .call(move |conn| {
            let transaction = conn.transaction()?;
            let zone = require_zone(&transaction, &zone_id)?;
            let mut route = load_route(&transaction, &zone_id, &id)?;
            check_pattern_on_zone(&pattern, &zone)?;
            check_script(&transaction, script.as_deref())?;
            if find_by_pattern(&transaction, &zone.id, &pattern)?
                .is_some_and(|other| other.id != route.id)
            {
                return Err(duplicate_route());
            }
            route.pattern = pattern;
            route.script = script;
            transaction.execute(
                "UPDATE worker_routes SET pattern = ?2, script = ?3 WHERE id = ?1",
                params![route.id, route.pattern, route.script],
            )?;
            transaction.commit()?;
            Ok(route)
        })
        .await?;
    Ok(success(route_json(&route)))
}

async fn delete_zone_route(
    State(state): State<SharedState>,
    path: RoutePath,
) -> ApiResult<Response> {
    let Path((zone_id, id)) = path.map_err(path_error)?;
    let deleted = state
        .store
        .call(move |conn| {
            require_zone(conn, &zone_id)?;
            let route = load_route(conn, &zone_id, &id)?;
            conn.execute("DELETE FROM worker_routes WHERE id = ?1", [&route.id])?;
            Ok(route.id)
        })
        .await?;
    Ok(success(json!({ "id": deleted })))
}

/// The script's routes with their zones.
fn script_routes(conn: &Connection, script: &str) -> ApiResult<Vec<Value>> {
    let mut statement = conn.prepare(
        "SELECT r.id, r.pattern, r.zone_id, z.name FROM worker_routes r
         JOIN zones z ON z.id = r.zone_id WHERE r.script = ?1 ORDER BY r.pattern",
    )?;
    let routes = statement
        .query_map([script], |row| {
            Ok(json!({
                "id": row.get::<_, String>(0)?,
                "pattern": row.get::<_, String>(1)?,
                "zone_id": row.get::<_, String>(2)?,
                "zone_name": row.get::<_, String>(3)?,
                "script": script,
            }))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(routes)
}

async fn list_script_routes(
    State(state): State<SharedState>,
    path: ScriptPath,
) -> ApiResult<Response> {
    let Path((_, script)) = path.map_err(path_error)?;
    let routes = state
        .store
        .call(move |conn| {
            require_script(conn, &script)?;
            script_routes(conn, &script)
        })
        .await?;
    Ok(success(Value::Array(routes)))
}

/// One requested route: `(pattern, zone_id, zone_name)`.
type RequestedRoute = (String, Option<String>, Option<String>);

fn requested_routes(body: &Value) -> ApiResult<Vec<RequestedRoute>> {
    let Some(entries) = body.as_array() else {
        return Err(ApiError::bad_request(
            VALIDATION,
            "the body must be a list of {pattern, zone_id?, zone_name?}",
        ));
    };
    entries
        .iter()
        .map(|entry| {
            if let Some(pattern) = entry.as_str() {
                return Ok((pattern.to_owned(), None, None));
            }
            let Some(pattern) = entry.get("pattern").and_then(Value::as_str) else {
                return Err(invalid_pattern("each route needs a string pattern"));
            };
            let text = |key: &str| entry.get(key).and_then(Value::as_str).map(str::to_owned);
            Ok((pattern.to_owned(), text("zone_id"), text("zone_name")))
        })
        .collect()
}

async fn put_script_routes(
    State(state): State<SharedState>,
    path: ScriptPath,
    body: Bytes,
) -> ApiResult<Response> {
    let Path((_, script)) = path.map_err(path_error)?;
    let body: Value = parse_json(&body, VALIDATION, "update script routes")?;
    let requested = requested_routes(&body)?;
    let created_on = state.clock.unique_micros();
    let routes = state
        .store
        .call(move |conn| {
            let transaction = conn.transaction()?;
            require_script(&transaction, &script)?;
            let mut kept = Vec::with_capacity(requested.len());
            for (pattern, zone_id, zone_name) in &requested {
                let host = pattern_host(pattern)?;
                let zone = zones::resolve_zone(
                    &transaction,
                    zone_id.as_deref(),
                    zone_name.as_deref(),
                    &host,
                )?
                .ok_or_else(|| {
                    invalid_pattern(format!(
                        "Could not find a zone for route pattern {pattern:?}"
                    ))
                })?;
                check_pattern_on_zone(pattern, &zone)?;
                let id = match find_by_pattern(&transaction, &zone.id, pattern)? {
                    Some(existing) => {
                        if existing
                            .script
                            .as_deref()
                            .is_some_and(|owner| owner != script)
                        {
                            return Err(duplicate_route());
                        }
                        transaction.execute(
                            "UPDATE worker_routes SET script = ?2 WHERE id = ?1",
                            params![existing.id, script],
                        )?;
                        existing.id
                    }
                    None => {
                        let id = new_hex_id();
                        transaction.execute(
                            "INSERT INTO worker_routes (id, zone_id, pattern, script, created_on)
                             VALUES (?1, ?2, ?3, ?4, ?5)",
                            params![id, zone.id, pattern, script, created_on],
                        )?;
                        id
                    }
                };
                kept.push(id);
            }
            let mut statement =
                transaction.prepare("SELECT id FROM worker_routes WHERE script = ?1")?;
            let current = statement
                .query_map([&script], |row| row.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            drop(statement);
            for id in current.iter().filter(|id| !kept.contains(id)) {
                transaction.execute("DELETE FROM worker_routes WHERE id = ?1", [id])?;
            }
            let routes = script_routes(&transaction, &script)?;
            transaction.commit()?;
            Ok(routes)
        })
        .await?;
    Ok(success(Value::Array(routes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_hosts() {
        assert_eq!(
            pattern_host("api.example.com/*").unwrap(),
            "api.example.com"
        );
        assert_eq!(
            pattern_host("https://example.com/a/*").unwrap(),
            "example.com"
        );
        assert_eq!(pattern_host("*.example.com/*").unwrap(), "example.com");
        assert_eq!(pattern_host("*example.com/*").unwrap(), "example.com");
        assert!(pattern_host("").is_err());
        assert!(pattern_host("a b.com/*").is_err());
        assert!(pattern_host("example.com:8080/*").is_err());
        assert!(pattern_host("/*").is_err());
    }
}
