//! `POST /client/v4/graphql`: just enough of Cloudflare's GraphQL analytics API for wrangler.
//!
//! `wrangler d1 info` asks for `d1AnalyticsAdaptiveGroups` (read/write queries and rows per
//! hour for one database over the last 24 hours); it is answered from the hourly counters the
//! D1 module keeps. `wrangler r2 bucket info` asks for `r2StorageAdaptiveGroups`; buckets hold no
//! objects here, so the answer is an empty list (wrangler then shows 0 objects, 0 B). Any other
//! query gets a GraphQL error (HTTP 200, `errors` set), as the real endpoint does.
//!
//! The answer is plain GraphQL JSON (`{data, errors}`), not the v4 envelope. The time range in
//! the variables is not parsed: the last 24 hours are always reported.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use super::envelope::{ApiError, ApiResult};
use super::{API_PREFIX, SharedState};

pub(crate) fn routes() -> Router<SharedState> {
    Router::new().route(&format!("{API_PREFIX}/graphql"), post(graphql))
}

fn graphql_error(message: &str) -> Response {
    axum::Json(
        json!({ "data": null, "errors": [{ "message": message, "path": null, "extensions": {} }] }),
    )
    .into_response()
}

fn wrap(field: &str, groups: Value) -> Response {
    let mut account = serde_json::Map::new();
    account.insert(field.to_owned(), groups);
    axum::Json(json!({
        "data": { "viewer": { "accounts": [Value::Object(account)] } },
        "errors": null,
    }))
    .into_response()
}

/// Finds `databaseId` anywhere in the filter (`{AND:[{databaseId}]}` or flat).
fn find_database_id(filter: &Value) -> Option<String> {
    match filter {
        Value::Object(map) => map
            .get("databaseId")
            .and_then(Value::as_str)
            .map(String::from)
            .or_else(|| map.values().find_map(find_database_id)),
        Value::Array(items) => items.iter().find_map(find_database_id),
        _ => None,
    }
}

fn hour_label(hour: i64) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    time::OffsetDateTime::from_unix_timestamp(hour)
        .ok()
        .and_then(|moment| moment.format(&format).ok())
        .unwrap_or_default()
}

async fn graphql(State(state): State<SharedState>, body: Bytes) -> ApiResult<Response> {
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return Ok(graphql_error("the request body is not valid JSON"));
    };
    let query = request["query"].as_str().unwrap_or_default();
    if query.contains("r2StorageAdaptiveGroups") {
        return Ok(wrap("r2StorageAdaptiveGroups", json!([])));
    }
    if !query.contains("d1AnalyticsAdaptiveGroups") {
        return Ok(graphql_error(
            "the flareops emulator answers only the d1AnalyticsAdaptiveGroups and r2StorageAdaptiveGroups queries",
        ));
    }
    let Some(database_id) = find_database_id(&request["variables"]) else {
        return Ok(wrap("d1AnalyticsAdaptiveGroups", json!([])));
    };
    let since = state.clock.unix_seconds() - 24 * 3600;
    let rows = state
        .store
        .call(move |conn| {
            let mut statement = conn.prepare(
                "SELECT hour, read_queries, write_queries, rows_read, rows_written
                 FROM d1_metrics WHERE uuid = ?1 AND hour >= ?2 ORDER BY hour",
            )?;
            let rows = statement.query_map(
                rusqlite::params![database_id, since / 3600 * 3600],
                |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, i64>(1)?,
                        row.get::<_, i64>(2)?,
                        row.get::<_, i64>(3)?,
                        row.get::<_, i64>(4)?,
                    ))
                },
            )?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
                .map_err(ApiError::from)
        })
        .await?;
    let groups: Vec<Value> = rows
        .into_iter()
        .map(
            |(hour, read_queries, write_queries, rows_read, rows_written)| {
                json!({
                    "sum": {
                        "readQueries": read_queries,
                        "writeQueries": write_queries,
                        "rowsRead": rows_read,
                        "rowsWritten": rows_written,
                    },
                    "dimensions": { "datetimeHour": hour_label(hour) },
                })
            },
        )
        .collect();
    Ok(wrap("d1AnalyticsAdaptiveGroups", Value::Array(groups)))
}
