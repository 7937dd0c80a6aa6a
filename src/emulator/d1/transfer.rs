//! D1 import and export: `POST …/{id}/import` and `POST …/{id}/export`, the steps
//! `wrangler d1 execute --remote --file` and `wrangler d1 export --remote` drive, with the
//! presigned links they upload to and download from.
//!
//! **Import** (OAS24 `d1-import-database`, WR `src/d1/execute.ts`), one body per step:
//! - `{action: "init", etag}` (the hex MD5 of the file) answers `{filename, upload_url}`;
//! - the client `PUT`s the file to `upload_url` (no token: the link is its own credential, as
//!   Cloudflare's presigned R2 links are), which answers 200 with the body's MD5 as `ETag`;
//! - `{action: "ingest", filename, etag}` runs the whole file in one transaction, exactly as a
//!   `/query` request with that SQL would (same statement rules, same errors), and answers the
//!   polling result, already `complete`: `{success, type: "import", status, at_bookmark,
//!   messages, errors, result: {final_bookmark, num_queries, meta}}`; a failed file changes
//!   nothing and answers `{success: false, error}` (wrangler prints `error`);
//! - `{action: "poll", current_bookmark}` answers the database's last import result again.
//!
//! **Export** (`d1-export-database`, WR `src/d1/export.ts`): `{output_format: "polling",
//! dump_options: {no_schema?, no_data?, tables?}}` writes a SQL dump and answers `{success,
//! type: "export", status: "complete", at_bookmark, messages, result: {filename, signed_url}}`;
//! the client downloads the dump from `signed_url`. The dump is what `sqlite3 .dump` and D1
//! write: `PRAGMA defer_foreign_keys=TRUE;`, then each table's `CREATE TABLE` followed by its rows
//! as `INSERT INTO "t" ("a","b") VALUES(…);` (text quoted, blobs as `X'…'`, reals in a form that
//! reads back as reals), then indexes, triggers and views. Importing a dump into an empty database
//! gives the same schema and rows. `tables` limits it to those tables (an unknown one is an
//! error); virtual tables are refused, as D1 does.
//!
//! Links live under `/presigned/d1-import/{token}` and `/presigned/d1-export/{token}`, outside
//! `/client/v4`, on the host the API request named; a token is 128 random bits, valid for one
//! hour of the emulator's clock. Their files (`{token}.json` describing the link, `{token}.sql`
//! holding the SQL) live under `state_dir/d1/transfers/`; expired ones are removed when the next
//! link is made, an import's upload once it is ingested.

use std::path::{Path as FilePath, PathBuf};

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use md5::Digest as _;
use rusqlite::Connection;
use rusqlite::types::ValueRef;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::time_travel::History;
use super::{DatabasePath, SqlInput, VALIDATION, execute, find, path_error, record_metrics};
use crate::emulator::envelope::{ApiError, ApiResult, parse_json, success};
use crate::emulator::{API_PREFIX, SharedState};

/// Directory under `d1/` holding links and their files.
const TRANSFERS_DIR: &str = "transfers";
/// How long a link is valid (Cloudflare's are valid for one hour).
const LINK_LIFETIME_MILLIS: i64 = 3_600_000;
const IMPORT_LINK: &str = "/presigned/d1-import";
const EXPORT_LINK: &str = "/presigned/d1-export";
/// Where a database's last import result is kept for `poll`.
const LAST_IMPORT_SUFFIX: &str = ".last-import.json";

pub(super) fn routes() -> Router<SharedState> {
    let base = format!("{API_PREFIX}/accounts/{{account_id}}/d1/database/{{database_id}}");
    Router::new()
        .route(&format!("{base}/import"), post(import))
        .route(&format!("{base}/export"), post(export))
        .route(&format!("{IMPORT_LINK}/{{token}}"), put(upload))
        .route(&format!("{EXPORT_LINK}/{{token}}"), get(download))
}

/// What a link is for, kept in `{token}.json`.
#[derive(Debug, Serialize, Deserialize)]
struct Link {
    kind: LinkKind,
    database: String,
    /// The etag the client announced (imports).
    #[serde(default)]
    etag: Option<String>,
    /// Milliseconds since the epoch, by the emulator's clock.
    expires: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum LinkKind {
    Import,
    Export,
}

fn transfers_dir(state: &SharedState) -> PathBuf {
    state.state_dir.join("d1").join(TRANSFERS_DIR)
}

fn io_error(what: &str, path: &FilePath, error: std::io::Error) -> ApiError {
    ApiError::internal(format!("{what} {}: {error}", path.display()))
}

/// Tokens are 32 lowercase hex digits; anything else names no file.
fn valid_token(token: &str) -> bool {
    token.len() == 32
        && token
            .bytes()
            .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
}

/// `http://HOST` of the request, for links the client follows.
fn origin(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .filter(|host| !host.is_empty())
        .unwrap_or("127.0.0.1");
    format!("http://{host}")
}

/// Writes a new link and removes expired ones; answers its token.
fn new_link(dir: &FilePath, link: &Link, now: i64) -> ApiResult<String> {
    std::fs::create_dir_all(dir).map_err(|error| io_error("creating", dir, error))?;
    remove_expired(dir, now);
    let token = uuid::Uuid::new_v4().simple().to_string();
    let path = dir.join(format!("{token}.json"));
    let text = serde_json::to_string(link).map_err(ApiError::internal)?;
    std::fs::write(&path, text).map_err(|error| io_error("writing", &path, error))?;
    Ok(token)
}

/// The link of `token` if it exists and has not expired.
fn read_link(dir: &FilePath, token: &str, now: i64) -> ApiResult<Option<Link>> {
    if !valid_token(token) {
        return Ok(None);
    }
    let path = dir.join(format!("{token}.json"));
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(io_error("reading", &path, error)),
    };
    let link: Link = serde_json::from_str(&text).map_err(ApiError::internal)?;
    Ok((link.expires > now).then_some(link))
}

fn remove_link(dir: &FilePath, token: &str) {
    for name in [format!("{token}.json"), format!("{token}.sql")] {
        let path = dir.join(name);
        if let Err(error) = std::fs::remove_file(&path)
            && error.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %path.display(), %error, "removing a D1 transfer file");
        }
    }
}

/// Removes every link (and its file) whose time is up.
fn remove_expired(dir: &FilePath, now: i64) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(token) = name.to_str().and_then(|name| name.strip_suffix(".json")) else {
            continue;
        };
        if valid_token(token) && matches!(read_link(dir, token, now), Ok(None)) {
            remove_link(dir, token);
        }
    }
}

/// The answer presigned links give when they are wrong or expired (R2's S3-style refusal).
fn access_denied() -> Response {
    (
        StatusCode::FORBIDDEN,
        [(header::CONTENT_TYPE, "application/xml")],
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>AccessDenied</Code><Message>Request has expired or the link is not valid</Message></Error>",
    )
        .into_response()
}

fn blocking_error(error: tokio::task::JoinError) -> ApiError {
    ApiError::internal(error)
}

// ---------------------------------------------------------------------------------------------
// Import
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize)]
struct ImportBody {
    action: Option<String>,
    etag: Option<String>,
    filename: Option<String>,
}

fn valid_etag(etag: &str) -> bool {
    etag.len() == 32
        && etag
            .bytes()
            .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
}

fn require_etag(etag: Option<String>) -> ApiResult<String> {
    let etag = etag.ok_or_else(|| ApiError::bad_request(VALIDATION, "etag is required"))?;
    if !valid_etag(&etag) {
        return Err(ApiError::bad_request(
            VALIDATION,
            format!("etag {etag:?} must be the file's MD5 as 32 lowercase hex digits"),
        ));
    }
    Ok(etag)
}

/// The name an upload is known by between `init` and `ingest`.
fn upload_filename(token: &str) -> String {
    format!("{token}.sql")
}

async fn import(
    State(state): State<SharedState>,
    headers: HeaderMap,
    path: DatabasePath,
    body: Bytes,
) -> ApiResult<Response> {
    let Path((_, id_or_name)) = path.map_err(path_error)?;
    let body: ImportBody = parse_json(&body, VALIDATION, "import")?;
    let record = find(&state, id_or_name).await?;
    match body.action.as_deref() {
        Some("init") => {
            let etag = require_etag(body.etag)?;
            let link = Link {
                kind: LinkKind::Import,
                database: record.uuid.clone(),
                etag: Some(etag),
                expires: state.clock.unix_millis() + LINK_LIFETIME_MILLIS,
            };
            let dir = transfers_dir(&state);
            let now = state.clock.unix_millis();
            let token = tokio::task::spawn_blocking(move || new_link(&dir, &link, now))
                .await
                .map_err(blocking_error)??;
            Ok(success(json!({
                "filename": upload_filename(&token),
                "upload_url": format!("{}{IMPORT_LINK}/{token}", origin(&headers)),
            })))
        }
        Some("ingest") => {
            let etag = require_etag(body.etag)?;
            let filename = body
                .filename
                .ok_or_else(|| ApiError::bad_request(VALIDATION, "filename is required"))?;
            ingest(&state, &record.uuid, &filename, &etag).await
        }
        Some("poll") => {
            let path = last_import_path(&state, &record.uuid);
            let last = tokio::task::spawn_blocking(move || match std::fs::read_to_string(&path) {
                Ok(text) => Ok(Some(text)),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(error) => Err(io_error("reading", &path, error)),
            })
            .await
            .map_err(blocking_error)??;
            let result = match last.map(|text| serde_json::from_str::<Value>(&text)) {
                Some(Ok(result)) => result,
                _ => json!({
                    "success": false,
                    "error": "No import is in progress or finished for this database",
                }),
            };
            Ok(success(result))
        }
        Some(other) => Err(ApiError::bad_request(
            VALIDATION,
            format!("action must be init, ingest or poll, got {other:?}"),
        )),
        None => Err(ApiError::bad_request(VALIDATION, "action is required")),
    }
}

fn last_import_path(state: &SharedState, uuid: &str) -> PathBuf {
    transfers_dir(state).join(format!("{uuid}{LAST_IMPORT_SUFFIX}"))
}

/// `PUT /presigned/d1-import/{token}`: stores the file, answers its MD5 as `ETag`.
async fn upload(
    State(state): State<SharedState>,
    path: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> Response {
    let Ok(Path(token)) = path else {
        return access_denied();
    };
    let dir = transfers_dir(&state);
    let now = state.clock.unix_millis();
    let stored = tokio::task::spawn_blocking(move || {
        match read_link(&dir, &token, now)? {
            Some(link) if link.kind == LinkKind::Import => {}
            _ => return Ok(None),
        }
        let target = dir.join(format!("{token}.sql"));
        let staging = dir.join(format!(".{token}.partial"));
        std::fs::write(&staging, &body).map_err(|error| io_error("writing", &staging, error))?;
        std::fs::rename(&staging, &target)
            .map_err(|error| io_error("renaming", &staging, error))?;
        Ok::<_, ApiError>(Some(hex::encode(md5::Md5::digest(&body))))
    })
    .await;
    match stored {
        Ok(Ok(Some(etag))) => {
            let mut response = StatusCode::OK.into_response();
            if let Ok(value) = HeaderValue::from_str(&format!("\"{etag}\"")) {
                response.headers_mut().insert(header::ETAG, value);
            }
            response
        }
        Ok(Ok(None)) => access_denied(),
        Ok(Err(error)) => error.into_response(),
        Err(error) => ApiError::internal(error).into_response(),
    }
}

/// Runs an uploaded file and records its result for `poll`.
async fn ingest(
    state: &SharedState,
    uuid: &str,
    filename: &str,
    etag: &str,
) -> ApiResult<Response> {
    let dir = transfers_dir(state);
    let now = state.clock.unix_millis();
    let token = filename.strip_suffix(".sql").unwrap_or_default().to_owned();
    let (sql, token) = {
        let dir = dir.clone();
        let uuid = uuid.to_owned();
        let etag = etag.to_owned();
        tokio::task::spawn_blocking(move || {
            let link = read_link(&dir, &token, now)?;
            let known = link.is_some_and(|link| {
                link.kind == LinkKind::Import
                    && link.database == uuid
                    && link.etag.as_deref() == Some(etag.as_str())
            });
            if !known {
                return Ok(Err(format!(
                    "No upload named {}.sql for this database: run init and upload the file first",
                    token
                )));
            }
            let path = dir.join(format!("{token}.sql"));
            let bytes = match std::fs::read(&path) {
                Ok(bytes) => bytes,
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                    return Ok(Err(String::from(
                        "The file was not uploaded: PUT it to the upload_url first",
                    )));
                }
                Err(error) => return Err(io_error("reading", &path, error)),
            };
            if hex::encode(md5::Md5::digest(&bytes)) != etag {
                return Ok(Err(String::from(
                    "The uploaded file does not match its etag: upload it again",
                )));
            }
            let sql = String::from_utf8(bytes)
                .map_err(|_| String::from("The uploaded file is not UTF-8 SQL text"));
            Ok(sql.map(|sql| (sql, token)))
        })
        .await
        .map_err(blocking_error)??
        .map_err(|message| ApiError::bad_request(VALIDATION, message))?
    };
    let history = History::new(&state.d1, uuid);
    let outcome = state
        .d1
        .call(uuid, move |conn| {
            let results = match execute(
                conn,
                &[SqlInput {
                    sql,
                    params: Vec::new(),
                }],
            ) {
                Ok(results) => results,
                Err(error) => return Ok(Err(error)),
            };
            if results.iter().any(|result| !result.readonly) {
                history.after_write();
            }
            let bookmark = history.current()?;
            Ok(Ok((results, bookmark)))
        })
        .await?;
    let result = match outcome {
        Ok((results, bookmark)) => {
            record_metrics(state, uuid, &results).await;
            import_result(&results, &bookmark)
        }
        Err(error) => {
            let bookmark = {
                let history = History::new(&state.d1, uuid);
                state.d1.call(uuid, move |_conn| history.current()).await?
            };
            json!({
                "success": false,
                "type": "import",
                "status": "error",
                "at_bookmark": bookmark,
                "error": error.message,
                "errors": [error.message],
                "messages": [],
            })
        }
    };
    let last = last_import_path(state, uuid);
    let text = result.to_string();
    tokio::task::spawn_blocking(move || {
        remove_link(&dir, &token);
        std::fs::write(&last, text).map_err(|error| io_error("writing", &last, error))
    })
    .await
    .map_err(blocking_error)??;
    Ok(success(result))
}

/// The `complete` polling result of an import that ran.
fn import_result(results: &[super::StatementResult], bookmark: &str) -> Value {
    let sum = |key: &str| -> f64 {
        results
            .iter()
            .filter_map(|result| result.meta[key].as_f64())
            .sum()
    };
    let last = results.last().map(|result| &result.meta);
    let meta = json!({
        "served_by": "flareops-emulator",
        "duration": sum("duration"),
        "changes": sum("changes") as i64,
        "last_row_id": last.map_or(json!(0), |meta| meta["last_row_id"].clone()),
        "changed_db": results.iter().any(|result| result.meta["changed_db"] == json!(true)),
        "size_after": last.map_or(json!(0), |meta| meta["size_after"].clone()),
        "rows_read": results.iter().map(|result| result.rows_read).sum::<u64>(),
        "rows_written": results.iter().map(|result| result.rows_written).sum::<u64>(),
    });
    json!({
        "success": true,
        "type": "import",
        "status": "complete",
        "at_bookmark": bookmark,
        "messages": [],
        "errors": [],
        "result": {
            "final_bookmark": bookmark,
            "num_queries": results.len(),
            "meta": meta,
        },
    })
}

// ---------------------------------------------------------------------------------------------
// Export
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize, Default)]
struct DumpOptions {
    #[serde(default)]
    no_schema: bool,
    #[serde(default)]
    no_data: bool,
    #[serde(default)]
    tables: Vec<String>,
}

#[derive(Deserialize)]
struct ExportBody {
    output_format: Option<String>,
    #[serde(default)]
    dump_options: Option<DumpOptions>,
}

async fn export(
    State(state): State<SharedState>,
    headers: HeaderMap,
    path: DatabasePath,
    body: Bytes,
) -> ApiResult<Response> {
    let Path((_, id_or_name)) = path.map_err(path_error)?;
    let body: ExportBody = parse_json(&body, VALIDATION, "export")?;
    match body.output_format.as_deref() {
        Some("polling") => {}
        other => {
            return Err(ApiError::bad_request(
                VALIDATION,
                format!("output_format must be \"polling\", got {other:?}"),
            ));
        }
    }
    let options = body.dump_options.unwrap_or_default();
    if options.no_schema && options.no_data {
        return Err(ApiError::bad_request(
            VALIDATION,
            "no_schema and no_data together leave nothing to export",
        ));
    }
    let record = find(&state, id_or_name).await?;
    let history = History::new(&state.d1, &record.uuid);
    let (dump, bookmark) = state
        .d1
        .call(&record.uuid, move |conn| {
            let dump = dump(conn, &options)?;
            Ok((dump, history.current()?))
        })
        .await?;
    let now = state.clock.unix_millis();
    let link = Link {
        kind: LinkKind::Export,
        database: record.uuid.clone(),
        etag: None,
        expires: now + LINK_LIFETIME_MILLIS,
    };
    let dir = transfers_dir(&state);
    let token = tokio::task::spawn_blocking(move || {
        let token = new_link(&dir, &link, now)?;
        let path = dir.join(format!("{token}.sql"));
        std::fs::write(&path, dump).map_err(|error| io_error("writing", &path, error))?;
        Ok::<_, ApiError>(token)
    })
    .await
    .map_err(blocking_error)??;
    let filename = format!("{}-{now}.sql", record.name);
    Ok(success(json!({
        "success": true,
        "type": "export",
        "status": "complete",
        "at_bookmark": bookmark,
        "messages": [format!("Generated {filename}"), "Uploaded part 1"],
        "result": {
            "filename": filename,
            "signed_url": format!("{}{EXPORT_LINK}/{token}", origin(&headers)),
        },
    })))
}

/// `GET /presigned/d1-export/{token}`: the dump.
async fn download(
    State(state): State<SharedState>,
    path: Result<Path<String>, PathRejection>,
) -> Response {
    let Ok(Path(token)) = path else {
        return access_denied();
    };
    let dir = transfers_dir(&state);
    let now = state.clock.unix_millis();
    let read = tokio::task::spawn_blocking(move || {
        match read_link(&dir, &token, now)? {
            Some(link) if link.kind == LinkKind::Export => {}
            _ => return Ok(None),
        }
        let path = dir.join(format!("{token}.sql"));
        std::fs::read(&path)
            .map(Some)
            .map_err(|error| io_error("reading", &path, error))
    })
    .await;
    match read {
        Ok(Ok(Some(bytes))) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/sql")],
            bytes,
        )
            .into_response(),
        Ok(Ok(None)) => access_denied(),
        Ok(Err(error)) => error.into_response(),
        Err(error) => ApiError::internal(error).into_response(),
    }
}

/// `name` as a quoted SQL identifier.
fn identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A value as a SQL literal that reads back as the same value and type.
fn literal(value: ValueRef<'_>) -> String {
    match value {
        ValueRef::Null => String::from("NULL"),
        ValueRef::Integer(integer) => integer.to_string(),
        ValueRef::Real(real) if real.is_nan() => String::from("NULL"),
        ValueRef::Real(real) if real.is_infinite() => {
            String::from(if real > 0.0 { "1e999" } else { "-1e999" })
        }
        // `{:?}` keeps a fraction or exponent (`1.0`, `1e20`), so the value stays a REAL.
        ValueRef::Real(real) => format!("{real:?}"),
        ValueRef::Text(text) => format!("'{}'", String::from_utf8_lossy(text).replace('\'', "''")),
        ValueRef::Blob(blob) => format!("X'{}'", hex::encode_upper(blob)),
    }
}

/// The SQL dump of the database (see the module docs).
fn dump(conn: &Connection, options: &DumpOptions) -> ApiResult<String> {
    let schema_rows = |kind: &str| -> ApiResult<Vec<(String, String, String)>> {
        let mut statement = conn.prepare(
            "SELECT name, tbl_name, sql FROM sqlite_master
             WHERE type = ?1 AND sql IS NOT NULL
               AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%'
             ORDER BY rowid",
        )?;
        let rows =
            statement.query_map([kind], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    };
    let mut tables = schema_rows("table")?;
    if !options.tables.is_empty() {
        for wanted in &options.tables {
            if !tables.iter().any(|(name, _, _)| name == wanted) {
                return Err(ApiError::bad_request(
                    VALIDATION,
                    format!("no such table: {wanted}"),
                ));
            }
        }
        tables.retain(|(name, _, _)| options.tables.contains(name));
    }
    if let Some((name, _, _)) = tables.iter().find(|(_, _, sql)| {
        sql.trim_start()
            .to_ascii_uppercase()
            .starts_with("CREATE VIRTUAL")
    }) {
        return Err(ApiError::bad_request(
            VALIDATION,
            format!(
                "Export failed: table {name} is a virtual table, which D1 exports do not support"
            ),
        ));
    }
    let mut out = String::from("PRAGMA defer_foreign_keys=TRUE;\n");
    for (name, _, sql) in &tables {
        if !options.no_schema {
            out.push_str(sql);
            out.push_str(";\n");
        }
        if !options.no_data {
            dump_rows(conn, name, &mut out)?;
        }
    }
    if !options.no_schema {
        let included = |table: &str| tables.iter().any(|(name, _, _)| name == table);
        for kind in ["index", "trigger"] {
            for (_, table, sql) in schema_rows(kind)? {
                if included(&table) {
                    out.push_str(&sql);
                    out.push_str(";\n");
                }
            }
        }
        if options.tables.is_empty() {
            for (_, _, sql) in schema_rows("view")? {
                out.push_str(&sql);
                out.push_str(";\n");
            }
        }
    }
    Ok(out)
}

/// Appends one `INSERT` per row of `table` (hidden and generated columns are left out).
fn dump_rows(conn: &Connection, table: &str, out: &mut String) -> ApiResult<()> {
    let mut columns = Vec::new();
    {
        let mut statement = conn.prepare(&format!("PRAGMA table_xinfo({})", identifier(table)))?;
        let mut rows = statement.query([])?;
        while let Some(row) = rows.next()? {
            let name: String = row.get(1)?;
            let hidden: i64 = row.get(6)?;
            if hidden == 0 {
                columns.push(name);
            }
        }
    }
    if columns.is_empty() {
        return Ok(());
    }
    let column_list = columns
        .iter()
        .map(|column| identifier(column))
        .collect::<Vec<_>>()
        .join(",");
    let mut statement =
        conn.prepare(&format!("SELECT {column_list} FROM {}", identifier(table)))?;
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        let mut values = Vec::with_capacity(columns.len());
        for index in 0..columns.len() {
            values.push(literal(row.get_ref(index)?));
        }
        out.push_str(&format!(
            "INSERT INTO {} ({column_list}) VALUES({});\n",
            identifier(table),
            values.join(",")
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(sql: &str) -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(sql).unwrap();
        conn
    }

    fn all_rows(conn: &Connection, sql: &str) -> Vec<Vec<String>> {
        let mut statement = conn.prepare(sql).unwrap();
        let count = statement.column_count();
        let rows = statement
            .query_map([], |row| {
                (0..count)
                    .map(|index| {
                        let value = row.get_ref(index)?;
                        Ok(format!("{:?}:{}", value.data_type(), literal(value)))
                    })
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .unwrap();
        rows.collect::<rusqlite::Result<_>>().unwrap()
    }

    #[test]
    fn a_dump_imports_back_to_the_same_schema_and_rows() {
        let original = open(
            "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, score REAL, avatar BLOB, note);
             CREATE TABLE \"odd \"\"name\" (k TEXT PRIMARY KEY, v) WITHOUT ROWID;
             CREATE INDEX users_by_name ON users (name);
             CREATE VIEW top AS SELECT name FROM users WHERE score > 1;
             INSERT INTO users VALUES (1, 'O''Brien', 1.0, X'00FF', NULL);
             INSERT INTO users VALUES (2, 'line
break', 2.5e20, NULL, 7);
             INSERT INTO users VALUES (3, 'ünï', -0.125, X'', 'x');
             INSERT INTO \"odd \"\"name\" VALUES ('a', 1), ('b', 2.0);
             CREATE TRIGGER stamp AFTER INSERT ON users BEGIN UPDATE users SET note = 'new' WHERE id = NEW.id AND note IS NULL; END;",
        );
        let text = dump(&original, &DumpOptions::default()).unwrap();
        assert!(
            text.starts_with("PRAGMA defer_foreign_keys=TRUE;\n"),
            "{text}"
        );
        assert!(
            text.contains("INSERT INTO \"users\" (\"id\",\"name\",\"score\",\"avatar\",\"note\") VALUES(1,'O''Brien',1.0,X'00FF',NULL);"),
            "{text}"
        );
        let copy = open(&text);
        for sql in [
            "SELECT * FROM users ORDER BY id",
            "SELECT * FROM \"odd \"\"name\" ORDER BY k",
            "SELECT * FROM top",
            "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name",
        ] {
            assert_eq!(all_rows(&copy, sql), all_rows(&original, sql), "{sql}");
        }
        // The trigger came after the rows: importing did not fire it.
        assert_eq!(
            all_rows(&copy, "SELECT note FROM users WHERE id = 1"),
            vec![vec![String::from("Null:NULL")]]
        );
    }

    #[test]
    fn dump_options_limit_what_is_written() {
        let conn = open(
            "CREATE TABLE a (x); CREATE TABLE b (y); INSERT INTO a VALUES (1); INSERT INTO b VALUES (2);",
        );
        let only_a = dump(
            &conn,
            &DumpOptions {
                tables: vec![String::from("a")],
                ..DumpOptions::default()
            },
        )
        .unwrap();
        assert!(only_a.contains("CREATE TABLE a") && !only_a.contains("CREATE TABLE b"));
        let no_schema = dump(
            &conn,
            &DumpOptions {
                no_schema: true,
                ..DumpOptions::default()
            },
        )
        .unwrap();
        assert!(!no_schema.contains("CREATE") && no_schema.contains("VALUES(2)"));
        let no_data = dump(
            &conn,
            &DumpOptions {
                no_data: true,
                ..DumpOptions::default()
            },
        )
        .unwrap();
        assert!(no_data.contains("CREATE TABLE b") && !no_data.contains("INSERT"));
        let unknown = dump(
            &conn,
            &DumpOptions {
                tables: vec![String::from("nope")],
                ..DumpOptions::default()
            },
        );
        assert!(unknown.is_err());
    }
}
