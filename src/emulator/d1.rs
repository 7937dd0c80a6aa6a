//! D1 under `/accounts/{account_id}/d1/database`, executing real SQLite.
//!
//! Databases: list (`name` filter, page 1.., `per_page` 10..10000 default 1000, `total_count`),
//! create (`{name, primary_location_hint?, jurisdiction?}`), get and delete by uuid **or name**
//! (wrangler resolves names that way). Each database is one SQLite file under `state_dir/d1/`.
//!
//! `POST …/{id}/query` and `POST …/{id}/raw` take `{sql, params?}` or `{batch:[{sql, params?}]}`.
//! A request runs in one transaction; every statement in the SQL text gets its own result entry
//! with Cloudflare's `meta` (`changes`, `last_row_id`, `rows_read`, `rows_written`, `duration`,
//! `size_after`, `changed_db`, …). `/query` answers rows as objects, `/raw` as
//! `{columns, rows}`. A SQL error rolls the request back and answers 400 with code 7500 and
//! SQLite's message (`"no such table: t: SQLITE_ERROR"`). Transaction control and
//! `ATTACH`/`DETACH`/`VACUUM` are refused, as D1 does, since they would escape the request's
//! transaction or the database file.
//!
//! Codes: 7404 unknown database (404), 7502 duplicate name (400), 7400 validation (400).
//!
//! Time Travel (`…/{id}/time_travel/bookmark` and `…/restore`) lives in [`time_travel`]: every
//! request that changed the file leaves a snapshot behind, taken before the request answers.
//! Import and export (`…/{id}/import`, `…/{id}/export`, and the presigned links their files go
//! through) live in [`transfer`].

use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use rusqlite::fallible_iterator::FallibleIterator as _;
use rusqlite::types::ValueRef;
use rusqlite::{Batch, Connection, OptionalExtension as _, StatementStatus, params};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::envelope::{
    ApiError, ApiResult, QueryMap, int_param, paginate, parse_json, query_map, success,
};
use super::{API_PREFIX, SharedState};

mod time_travel;
mod transfer;

const NOT_FOUND: u32 = 7404;
const DUPLICATE_NAME: u32 = 7502;
const VALIDATION: u32 = 7400;
const SQL_ERROR: u32 = 7500;

const LOCATION_HINTS: [&str; 6] = ["wnam", "enam", "weur", "eeur", "apac", "oc"];
const JURISDICTIONS: [&str; 3] = ["eu", "us", "fedramp"];
/// Region reported when no hint is given (inference: the real API picks one near the caller).
const DEFAULT_REGION: &str = "ENAM";
/// D1's limits (D1 > Platform > Limits): "Maximum bound parameters per query: 100" and "Maximum
/// SQL statement length: 100,000 bytes". The length counts each `sql` text as sent (a text of
/// several statements is one statement to the limit, as `wrangler d1 migrations apply` finds).
const MAX_BOUND_PARAMETERS: usize = 100;
const MAX_SQL_BYTES: usize = 100_000;

pub(crate) fn routes() -> Router<SharedState> {
    let base = format!("{API_PREFIX}/accounts/{{account_id}}/d1/database");
    Router::new()
        .route(&base, get(list_databases).post(create_database))
        .route(
            &format!("{base}/{{database_id}}"),
            get(get_database).delete(delete_database),
        )
        .route(&format!("{base}/{{database_id}}/query"), post(query))
        .route(&format!("{base}/{{database_id}}/raw"), post(raw))
        .merge(time_travel::routes())
        .merge(transfer::routes())
}

type DatabasePath = Result<Path<(String, String)>, PathRejection>;

fn path_error(rejection: PathRejection) -> ApiError {
    ApiError::bad_request(VALIDATION, format!("malformed path: {rejection}"))
}

fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, NOT_FOUND, "Not Found")
}

/// A database's row in the metadata store.
struct DatabaseRecord {
    uuid: String,
    name: String,
    created_at: String,
    jurisdiction: Option<String>,
    created_in_region: String,
}

impl DatabaseRecord {
    fn summary(&self) -> Value {
        let mut value = json!({
            "uuid": self.uuid,
            "name": self.name,
            "created_at": self.created_at,
            "version": "production",
        });
        if let Some(jurisdiction) = &self.jurisdiction {
            value["jurisdiction"] = Value::String(jurisdiction.clone());
        }
        value
    }
}

const RECORD_COLUMNS: &str = "uuid, name, created_at, jurisdiction, created_in_region";

fn record_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<DatabaseRecord> {
    Ok(DatabaseRecord {
        uuid: row.get(0)?,
        name: row.get(1)?,
        created_at: row.get(2)?,
        jurisdiction: row.get(3)?,
        created_in_region: row.get(4)?,
    })
}

/// Looks a database up by uuid or by name.
async fn find(state: &SharedState, id_or_name: String) -> ApiResult<DatabaseRecord> {
    state
        .store
        .call(move |conn| {
            Ok(conn
                .query_row(
                    &format!(
                        "SELECT {RECORD_COLUMNS} FROM d1_databases WHERE uuid = ?1 OR name = ?1"
                    ),
                    [&id_or_name],
                    record_from_row,
                )
                .optional()?)
        })
        .await?
        .ok_or_else(not_found)
}

async fn list_databases(
    State(state): State<SharedState>,
    query: Result<Query<QueryMap>, QueryRejection>,
) -> ApiResult<Response> {
    let query = query_map(query, VALIDATION)?;
    let page = int_param(&query, "page", 1, 1, i64::MAX, VALIDATION)?;
    let per_page = int_param(&query, "per_page", 1000, 10, 10_000, VALIDATION)?;
    let name = query.get("name").cloned().unwrap_or_default();
    let items = state
        .store
        .call(move |conn| {
            let mut statement = conn.prepare(&format!(
                "SELECT {RECORD_COLUMNS} FROM d1_databases
                 WHERE instr(name, ?1) > 0 ORDER BY seq"
            ))?;
            let rows = statement.query_map([&name], record_from_row)?;
            let records = rows.collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(records.iter().map(DatabaseRecord::summary).collect())
        })
        .await?;
    Ok(paginate(items, page, per_page))
}

#[derive(Deserialize)]
struct CreateBody {
    name: Option<String>,
    primary_location_hint: Option<String>,
    jurisdiction: Option<String>,
}

fn valid_database_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(first) if first.is_ascii_lowercase() || first.is_ascii_digit())
        && bytes.all(|byte| {
            byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-' || byte == b'_'
        })
}

async fn create_database(State(state): State<SharedState>, body: Bytes) -> ApiResult<Response> {
    let body: CreateBody = parse_json(&body, VALIDATION, "create database")?;
    let name = body
        .name
        .ok_or_else(|| ApiError::bad_request(VALIDATION, "name is required"))?;
    if !valid_database_name(&name) {
        return Err(ApiError::bad_request(
            VALIDATION,
            format!(
                "Database name {name:?} is invalid: it must match ^[a-z0-9][a-z0-9-_]*$ (lowercase letters, digits, '-' and '_')"
            ),
        ));
    }
    let hint = body
        .primary_location_hint
        .map(|hint| hint.to_ascii_lowercase())
        .filter(|hint| !hint.is_empty());
    if let Some(hint) = &hint
        && !LOCATION_HINTS.contains(&hint.as_str())
    {
        return Err(ApiError::bad_request(
            VALIDATION,
            format!(
                "primary_location_hint must be one of {}, got {hint:?}",
                LOCATION_HINTS.join(", ")
            ),
        ));
    }
    let jurisdiction = body.jurisdiction.filter(|value| !value.is_empty());
    if let Some(jurisdiction) = &jurisdiction
        && !JURISDICTIONS.contains(&jurisdiction.as_str())
    {
        return Err(ApiError::bad_request(
            VALIDATION,
            format!(
                "jurisdiction must be one of {}, got {jurisdiction:?}",
                JURISDICTIONS.join(", ")
            ),
        ));
    }
    // A jurisdiction overrides the location hint (wrangler's help text says so).
    let region = match (jurisdiction.as_deref(), hint.as_deref()) {
        (Some("eu"), _) => String::from("WEUR"),
        (Some(_), _) => String::from(DEFAULT_REGION),
        (None, Some(hint)) => hint.to_ascii_uppercase(),
        (None, None) => String::from(DEFAULT_REGION),
    };
    let record = DatabaseRecord {
        uuid: uuid::Uuid::new_v4().hyphenated().to_string(),
        name,
        created_at: state.clock.timestamp(),
        jurisdiction,
        created_in_region: region,
    };
    // Create the file first: a row without a file would be a broken database.
    state.d1.create(&record.uuid).await?;
    let inserted = {
        let uuid = record.uuid.clone();
        let name = record.name.clone();
        let created_at = record.created_at.clone();
        let jurisdiction = record.jurisdiction.clone();
        let region = record.created_in_region.clone();
        state
            .store
            .call(move |conn| {
                let taken: bool = conn.query_row(
                    "SELECT EXISTS (SELECT 1 FROM d1_databases WHERE name = ?1)",
                    [&name],
                    |row| row.get(0),
                )?;
                if taken {
                    return Err(ApiError::bad_request(
                        DUPLICATE_NAME,
                        "A database with that name already exists",
                    ));
                }
                conn.execute(
                    "INSERT INTO d1_databases
                       (uuid, name, created_at, primary_location_hint, jurisdiction, created_in_region, seq)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6,
                             (SELECT COALESCE(MAX(seq), 0) + 1 FROM d1_databases))",
                    params![uuid, name, created_at, hint, jurisdiction, region],
                )?;
                Ok(())
            })
            .await
    };
    if let Err(error) = inserted {
        if let Err(cleanup) = state.d1.remove(&record.uuid).await {
            tracing::warn!(error = %cleanup.message, "removing the file of a database not created");
        }
        return Err(error);
    }
    // The empty database is the first state Time Travel can return to.
    let history = time_travel::History::new(&state.d1, &record.uuid);
    state
        .d1
        .call(&record.uuid, move |_conn| {
            history.after_write();
            Ok(())
        })
        .await?;
    let mut result = record.summary();
    result["created_in_region"] = Value::String(record.created_in_region.clone());
    result["num_tables"] = json!(0);
    result["file_size"] = json!(file_size(&state, &record.uuid));
    Ok(success(result))
}

fn file_size(state: &SharedState, uuid: &str) -> u64 {
    std::fs::metadata(state.d1.path(uuid))
        .map(|metadata| metadata.len())
        .unwrap_or(0)
}

async fn get_database(State(state): State<SharedState>, path: DatabasePath) -> ApiResult<Response> {
    let Path((_, id_or_name)) = path.map_err(path_error)?;
    let record = find(&state, id_or_name).await?;
    let num_tables: i64 = state
        .d1
        .call(&record.uuid, |conn| {
            Ok(conn.query_row(
                "SELECT count(*) FROM sqlite_master
                 WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%'",
                [],
                |row| row.get(0),
            )?)
        })
        .await?;
    let mut result = record.summary();
    result["num_tables"] = json!(num_tables);
    result["file_size"] = json!(file_size(&state, &record.uuid));
    result["running_in_region"] = Value::String(record.created_in_region.clone());
    result["read_replication"] = json!({ "mode": "disabled" });
    Ok(success(result))
}

async fn delete_database(
    State(state): State<SharedState>,
    path: DatabasePath,
) -> ApiResult<Response> {
    let Path((_, id_or_name)) = path.map_err(path_error)?;
    let record = find(&state, id_or_name).await?;
    let uuid = record.uuid.clone();
    state
        .store
        .call(move |conn| {
            let transaction = conn.transaction()?;
            transaction.execute("DELETE FROM d1_databases WHERE uuid = ?1", [&uuid])?;
            transaction.execute("DELETE FROM d1_metrics WHERE uuid = ?1", [&uuid])?;
            transaction.commit()?;
            Ok(())
        })
        .await?;
    state.d1.remove(&record.uuid).await?;
    let history = time_travel::History::new(&state.d1, &record.uuid);
    tokio::task::spawn_blocking(move || history.remove())
        .await
        .map_err(ApiError::internal)??;
    Ok(success(Value::Null))
}

// ---------------------------------------------------------------------------------------------
// Query execution
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize)]
struct QueryBody {
    sql: Option<String>,
    params: Option<Vec<Value>>,
    batch: Option<Vec<BatchItem>>,
}

#[derive(Deserialize)]
struct BatchItem {
    sql: Option<String>,
    params: Option<Vec<Value>>,
}

/// One `{sql, params}` pair of the request.
struct SqlInput {
    sql: String,
    params: Vec<Value>,
}

#[derive(Clone, Copy, PartialEq)]
enum Shape {
    Objects,
    Raw,
}

/// The outcome of one statement.
struct StatementResult {
    columns: Vec<String>,
    rows: Vec<Vec<Value>>,
    meta: Value,
    readonly: bool,
    rows_read: u64,
    rows_written: u64,
}

async fn query(
    State(state): State<SharedState>,
    path: DatabasePath,
    body: Bytes,
) -> ApiResult<Response> {
    run(state, path, body, Shape::Objects).await
}

async fn raw(
    State(state): State<SharedState>,
    path: DatabasePath,
    body: Bytes,
) -> ApiResult<Response> {
    run(state, path, body, Shape::Raw).await
}

fn parse_inputs(body: &[u8]) -> ApiResult<Vec<SqlInput>> {
    let body: QueryBody = parse_json(body, VALIDATION, "query")?;
    let inputs = match (body.sql, body.batch) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                VALIDATION,
                "give either sql (with params) or batch, not both",
            ));
        }
        (Some(sql), None) => vec![SqlInput {
            sql,
            params: body.params.unwrap_or_default(),
        }],
        (None, Some(batch)) => batch
            .into_iter()
            .enumerate()
            .map(|(index, item)| {
                let sql = item.sql.ok_or_else(|| {
                    ApiError::bad_request(VALIDATION, format!("batch[{index}].sql is required"))
                })?;
                Ok(SqlInput {
                    sql,
                    params: item.params.unwrap_or_default(),
                })
            })
            .collect::<ApiResult<Vec<_>>>()?,
        (None, None) => {
            return Err(ApiError::bad_request(VALIDATION, "sql is required"));
        }
    };
    if inputs.is_empty() {
        return Err(ApiError::bad_request(VALIDATION, "batch must not be empty"));
    }
    // D1's answers to SQLite's SQLITE_LIMIT_SQL_LENGTH and SQLITE_LIMIT_VARIABLE_NUMBER.
    for input in &inputs {
        if input.sql.len() > MAX_SQL_BYTES {
            return Err(statement_too_long());
        }
        if input.params.len() > MAX_BOUND_PARAMETERS {
            return Err(too_many_variables());
        }
    }
    Ok(inputs)
}

async fn run(
    state: SharedState,
    path: DatabasePath,
    body: Bytes,
    shape: Shape,
) -> ApiResult<Response> {
    let Path((_, id_or_name)) = path.map_err(path_error)?;
    let inputs = parse_inputs(&body)?;
    let record = find(&state, id_or_name).await?;
    let region = record.created_in_region.clone();
    let history = time_travel::History::new(&state.d1, &record.uuid);
    let results = state
        .d1
        .call(&record.uuid, move |conn| {
            let results = execute(conn, &inputs)?;
            // Still holding the connection: the snapshot sees exactly this request's commit.
            if results.iter().any(|result| !result.readonly) {
                history.after_write();
            }
            Ok(results)
        })
        .await?;
    record_metrics(&state, &record.uuid, &results).await;
    let entries: Vec<Value> = results
        .into_iter()
        .map(|result| {
            let mut meta = result.meta;
            meta["served_by_region"] = Value::String(region.clone());
            let results = match shape {
                Shape::Raw => json!({ "columns": result.columns, "rows": result.rows }),
                Shape::Objects => Value::Array(
                    result
                        .rows
                        .into_iter()
                        .map(|row| {
                            let object: Map<String, Value> =
                                result.columns.iter().cloned().zip(row).collect();
                            Value::Object(object)
                        })
                        .collect(),
                ),
            };
            json!({ "results": results, "success": true, "meta": meta })
        })
        .collect();
    Ok(success(Value::Array(entries)))
}

/// Adds this request's counts to the hourly metrics `wrangler d1 info` reads through GraphQL.
async fn record_metrics(state: &SharedState, uuid: &str, results: &[StatementResult]) {
    let reads = results.iter().filter(|result| result.readonly).count() as i64;
    let writes = results.len() as i64 - reads;
    let rows_read: u64 = results.iter().map(|result| result.rows_read).sum();
    let rows_written: u64 = results.iter().map(|result| result.rows_written).sum();
    let hour = state.clock.unix_seconds() / 3600 * 3600;
    let uuid = uuid.to_owned();
    let recorded = state
        .store
        .call(move |conn| {
            conn.execute(
                "INSERT INTO d1_metrics (uuid, hour, read_queries, write_queries, rows_read, rows_written)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (uuid, hour) DO UPDATE SET
                   read_queries = read_queries + excluded.read_queries,
                   write_queries = write_queries + excluded.write_queries,
                   rows_read = rows_read + excluded.rows_read,
                   rows_written = rows_written + excluded.rows_written",
                params![
                    uuid,
                    hour,
                    reads,
                    writes,
                    rows_read as i64,
                    rows_written as i64
                ],
            )?;
            Ok(())
        })
        .await;
    if let Err(error) = recorded {
        tracing::warn!(error = %error.message, "recording D1 metrics failed");
    }
}

fn sql_error(message: String) -> ApiError {
    ApiError::bad_request(SQL_ERROR, message)
}

fn statement_too_long() -> ApiError {
    sql_error(String::from("statement too long: SQLITE_TOOBIG"))
}

fn too_many_variables() -> ApiError {
    sql_error(String::from("too many SQL variables: SQLITE_ERROR"))
}

/// SQLite's name for a primary result code, as D1 appends it to messages.
fn sqlite_code_name(extended: i32) -> &'static str {
    match extended & 0xff {
        2 => "SQLITE_INTERNAL",
        3 => "SQLITE_PERM",
        4 => "SQLITE_ABORT",
        5 => "SQLITE_BUSY",
        6 => "SQLITE_LOCKED",
        7 => "SQLITE_NOMEM",
        8 => "SQLITE_READONLY",
        9 => "SQLITE_INTERRUPT",
        10 => "SQLITE_IOERR",
        11 => "SQLITE_CORRUPT",
        13 => "SQLITE_FULL",
        18 => "SQLITE_TOOBIG",
        19 => "SQLITE_CONSTRAINT",
        20 => "SQLITE_MISMATCH",
        21 => "SQLITE_MISUSE",
        23 => "SQLITE_AUTH",
        25 => "SQLITE_RANGE",
        _ => "SQLITE_ERROR",
    }
}

/// Maps a SQLite error to D1's `"<message>: SQLITE_<CODE>"` (400, 7500).
fn from_sqlite(error: rusqlite::Error) -> ApiError {
    match error {
        rusqlite::Error::SqliteFailure(failure, message) => {
            let text = message.unwrap_or_else(|| failure.to_string());
            sql_error(format!(
                "{text}: {}",
                sqlite_code_name(failure.extended_code)
            ))
        }
        rusqlite::Error::SqlInputError {
            error, msg, offset, ..
        } => sql_error(format!(
            "{msg} at offset {offset}: {}",
            sqlite_code_name(error.extended_code)
        )),
        other => sql_error(format!("{other}: SQLITE_ERROR")),
    }
}

/// The first keyword of a statement, skipping whitespace and comments.
fn first_keyword(sql: &str) -> String {
    let mut rest = sql;
    loop {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix("--") {
            rest = after.split_once('\n').map_or("", |(_, tail)| tail);
        } else if let Some(after) = rest.strip_prefix("/*") {
            rest = after.split_once("*/").map_or("", |(_, tail)| tail);
        } else {
            break;
        }
    }
    rest.chars()
        .take_while(|character| character.is_ascii_alphabetic())
        .collect::<String>()
        .to_ascii_uppercase()
}

fn refuse_statement(keyword: &str) -> Option<ApiError> {
    match keyword {
        "BEGIN" | "COMMIT" | "END" | "ROLLBACK" | "SAVEPOINT" | "RELEASE" => {
            Some(sql_error(format!(
                "{keyword} is not allowed: every D1 request already runs in one transaction; send several statements (or a batch) instead: SQLITE_AUTH"
            )))
        }
        "ATTACH" | "DETACH" | "VACUUM" => Some(sql_error(format!(
            "{keyword} is not authorized in D1: SQLITE_AUTH"
        ))),
        _ => None,
    }
}

fn to_sql_value(value: &Value) -> rusqlite::types::Value {
    use rusqlite::types::Value as Sql;
    match value {
        Value::Null => Sql::Null,
        Value::Bool(flag) => Sql::Integer(i64::from(*flag)),
        Value::Number(number) => match number.as_i64() {
            Some(integer) => Sql::Integer(integer),
            None => number.as_f64().map_or(Sql::Null, Sql::Real),
        },
        Value::String(text) => Sql::Text(text.clone()),
        other => Sql::Text(other.to_string()),
    }
}

fn to_json(value: ValueRef<'_>) -> Value {
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(integer) => json!(integer),
        ValueRef::Real(real) => {
            serde_json::Number::from_f64(real).map_or(Value::Null, Value::Number)
        }
        ValueRef::Text(text) => Value::String(String::from_utf8_lossy(text).into_owned()),
        ValueRef::Blob(blob) => Value::Array(blob.iter().map(|byte| json!(byte)).collect()),
    }
}

fn database_size(conn: &Connection) -> rusqlite::Result<i64> {
    let page_count: i64 = conn.query_row("PRAGMA page_count", [], |row| row.get(0))?;
    let page_size: i64 = conn.query_row("PRAGMA page_size", [], |row| row.get(0))?;
    Ok(page_count * page_size)
}

fn schema_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA schema_version", [], |row| row.get(0))
}

/// Executes every statement of every input in one transaction; any error rolls all back.
fn execute(conn: &mut Connection, inputs: &[SqlInput]) -> ApiResult<Vec<StatementResult>> {
    let transaction = conn.transaction().map_err(ApiError::from)?;
    let mut results = Vec::new();
    for input in inputs {
        let before = results.len();
        let mut batch = Batch::new(&transaction, &input.sql);
        while let Some(mut statement) = batch.next().map_err(from_sqlite)? {
            let keyword = statement
                .expanded_sql()
                .map(|sql| first_keyword(&sql))
                .unwrap_or_default();
            if let Some(error) = refuse_statement(&keyword) {
                return Err(error);
            }
            let wanted = statement.parameter_count();
            if wanted > MAX_BOUND_PARAMETERS {
                return Err(too_many_variables());
            }
            if wanted > input.params.len() {
                return Err(sql_error(format!(
                    "Wrong number of parameter bindings for SQL query: it uses {wanted}, {} given: SQLITE_RANGE",
                    input.params.len()
                )));
            }
            for (index, value) in input.params.iter().take(wanted).enumerate() {
                statement
                    .raw_bind_parameter(index + 1, to_sql_value(value))
                    .map_err(from_sqlite)?;
            }
            let schema_before = schema_version(&transaction).map_err(from_sqlite)?;
            let total_before = transaction.total_changes();
            let started = Instant::now();
            let columns: Vec<String> = statement.column_names().map(String::from).collect();
            let mut rows = Vec::new();
            {
                let mut cursor = statement.raw_query();
                while let Some(row) = cursor.next().map_err(from_sqlite)? {
                    let mut values = Vec::with_capacity(columns.len());
                    for index in 0..columns.len() {
                        values.push(to_json(row.get_ref(index).map_err(from_sqlite)?));
                    }
                    rows.push(values);
                }
            }
            let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
            let readonly = statement.readonly();
            let changes = if readonly { 0 } else { transaction.changes() };
            let fullscan =
                u64::try_from(statement.get_status(StatementStatus::FullscanStep)).unwrap_or(0);
            let rows_read = fullscan.max(rows.len() as u64);
            let rows_written = changes;
            let schema_changed =
                schema_version(&transaction).map_err(from_sqlite)? != schema_before;
            let changed_db = transaction.total_changes() != total_before || schema_changed;
            let size_after = database_size(&transaction).map_err(from_sqlite)?;
            let meta = json!({
                "served_by": "flareops-emulator",
                "served_by_primary": true,
                "timings": { "sql_duration_ms": elapsed_ms },
                "duration": elapsed_ms,
                "changes": changes,
                "last_row_id": transaction.last_insert_rowid(),
                "changed_db": changed_db,
                "size_after": size_after,
                "rows_read": rows_read,
                "rows_written": rows_written,
            });
            results.push(StatementResult {
                columns,
                rows,
                meta,
                readonly,
                rows_read,
                rows_written,
            });
        }
        if results.len() == before && inputs.len() == 1 {
            return Err(sql_error(String::from(
                "No SQL statements detected: SQLITE_ERROR",
            )));
        }
    }
    transaction.commit().map_err(from_sqlite)?;
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_keyword_skips_comments() {
        assert_eq!(
            first_keyword("  -- hi\n /* x */ begin transaction"),
            "BEGIN"
        );
        assert_eq!(first_keyword("select 1"), "SELECT");
    }

    #[test]
    fn database_names_follow_the_pattern() {
        assert!(valid_database_name("my-db_1"));
        assert!(valid_database_name("1db"));
        assert!(!valid_database_name("-db"));
        assert!(!valid_database_name("My"));
        assert!(!valid_database_name(""));
    }

    #[test]
    fn executes_statements_in_one_transaction() {
        let mut conn = Connection::open_in_memory().unwrap();
        let inputs = vec![SqlInput {
            sql:
                "CREATE TABLE t (a INTEGER, b TEXT); INSERT INTO t VALUES (?1, ?2); SELECT * FROM t"
                    .into(),
            params: vec![json!(1), json!("x")],
        }];
        let results = execute(&mut conn, &inputs).unwrap();
        assert_eq!(results.len(), 3);
        assert_eq!(results[1].meta["changes"], json!(1));
        assert_eq!(results[1].meta["last_row_id"], json!(1));
        assert_eq!(results[0].meta["changed_db"], json!(true));
        assert_eq!(results[2].columns, vec!["a", "b"]);
        assert_eq!(results[2].rows, vec![vec![json!(1), json!("x")]]);

        let failing = vec![SqlInput {
            sql: "INSERT INTO t VALUES (2, 'y'); SELECT * FROM missing".into(),
            params: vec![],
        }];
        let error = execute(&mut conn, &failing).err().unwrap();
        assert_eq!(error.code, SQL_ERROR);
        assert!(
            error.message.contains("no such table: missing"),
            "{}",
            error.message
        );
        let count: i64 = conn
            .query_row("SELECT count(*) FROM t", [], |row| row.get(0))
            .unwrap();
        assert_eq!(count, 1, "the failed request was rolled back");
    }

    fn refused(body: Value) -> ApiError {
        match parse_inputs(body.to_string().as_bytes()) {
            Ok(_) => panic!("accepted: {body}"),
            Err(error) => error,
        }
    }

    #[test]
    fn statements_over_d1s_length_limit_are_refused_as_d1_does() {
        // `SELECT 'xxx…'` padded to an exact length.
        let sql_of = |bytes: usize| format!("SELECT '{}'", "x".repeat(bytes - 9));
        assert_eq!(sql_of(MAX_SQL_BYTES).len(), 100_000);
        parse_inputs(json!({"sql": sql_of(100_000)}).to_string().as_bytes())
            .expect("100,000 bytes are allowed");
        let error = refused(json!({"sql": sql_of(100_001)}));
        assert_eq!(error.status, StatusCode::BAD_REQUEST);
        assert_eq!(error.code, SQL_ERROR);
        assert_eq!(error.message, "statement too long: SQLITE_TOOBIG");
        // Each text of a batch is held to the limit.
        let error = refused(json!({"batch": [{"sql": "SELECT 1"}, {"sql": sql_of(100_001)}]}));
        assert_eq!(error.message, "statement too long: SQLITE_TOOBIG");
        // One text of several statements is one statement to the limit.
        let many = "SELECT 1;".repeat(11_112);
        assert!(many.len() > 100_000);
        let error = refused(json!({ "sql": many }));
        assert_eq!(error.message, "statement too long: SQLITE_TOOBIG");
    }

    #[test]
    fn more_bound_parameters_than_d1_allows_are_refused() {
        let placeholders = |n: usize| vec!["?"; n].join(", ");
        let values = |n: usize| (0..n).map(|i| json!(i)).collect::<Vec<_>>();
        let inputs = parse_inputs(
            json!({"sql": format!("SELECT {}", placeholders(100)), "params": values(100)})
                .to_string()
                .as_bytes(),
        )
        .expect("100 parameters are allowed");
        let mut conn = Connection::open_in_memory().unwrap();
        let results = execute(&mut conn, &inputs).expect("100 parameters run");
        assert_eq!(results[0].rows[0].len(), 100);

        let error = refused(json!({
            "sql": format!("SELECT {}", placeholders(101)),
            "params": values(101),
        }));
        assert_eq!(error.code, SQL_ERROR);
        assert_eq!(error.message, "too many SQL variables: SQLITE_ERROR");
        let error = refused(json!({"batch": [{"sql": "SELECT ?", "params": values(101)}]}));
        assert_eq!(error.message, "too many SQL variables: SQLITE_ERROR");

        // A statement naming a parameter past the limit is refused too.
        let inputs = vec![SqlInput {
            sql: "SELECT ?101".into(),
            params: vec![],
        }];
        let error = execute(&mut conn, &inputs).err().expect("refused");
        assert_eq!(error.message, "too many SQL variables: SQLITE_ERROR");
    }
}
