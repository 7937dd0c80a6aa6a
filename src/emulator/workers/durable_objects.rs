//! Durable Object namespaces: `GET /accounts/{account_id}/workers/durable_objects/namespaces`
//! (page-paginated `[{id, name, script, class, use_sqlite}]`, `per_page` up to 1000), and the
//! `migrations` of script and version uploads that create them.
//!
//! A migration is `{old_tag?, new_tag?, steps:[…]}` or the same keys flat. `old_tag` must equal
//! the script's current `migration_tag` (both absent on a first migration), else 400 10021.
//! Steps: `new_classes` / `new_sqlite_classes` create a namespace named `{script}_{class}`
//! (10074 if the class already has one), `deleted_classes` remove it, `renamed_classes`
//! `[{from, to}]` rename it and `transferred_classes` `[{from, from_script, to}]` move it from
//! another script; a missing source class is 404 10061. The script's `migration_tag` becomes
//! `new_tag`.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use rusqlite::{Connection, OptionalExtension as _, params};
use serde_json::{Value, json};

use super::super::envelope::{ApiError, ApiResult, int_param, paginate, query_map};
use super::super::{API_PREFIX, SharedState};
use super::{QueryParams, VALIDATION, invalid, new_hex_id};
use crate::emulator::Clock;

const CLASS_NOT_FOUND: u32 = 10061;
const CLASS_ALREADY_MIGRATED: u32 = 10074;

pub(super) fn routes() -> Router<SharedState> {
    Router::new().route(
        &format!("{API_PREFIX}/accounts/{{account_id}}/workers/durable_objects/namespaces"),
        get(list_namespaces),
    )
}

#[derive(Debug, Clone)]
pub(super) struct Namespace {
    pub id: String,
    pub script: String,
    pub class: String,
    pub use_sqlite: bool,
}

fn namespace_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Namespace> {
    Ok(Namespace {
        id: row.get(0)?,
        script: row.get(1)?,
        class: row.get(2)?,
        use_sqlite: row.get(3)?,
    })
}

fn namespace_json(namespace: &Namespace) -> Value {
    json!({
        "id": namespace.id,
        "name": format!("{}_{}", namespace.script, namespace.class),
        "script": namespace.script,
        "class": namespace.class,
        "use_sqlite": namespace.use_sqlite,
    })
}

pub(super) fn find_namespace(
    conn: &Connection,
    script: &str,
    class: &str,
) -> ApiResult<Option<Namespace>> {
    Ok(conn
        .query_row(
            "SELECT id, script, class, use_sqlite FROM durable_object_namespaces
             WHERE script = ?1 AND class = ?2",
            params![script, class],
            namespace_from_row,
        )
        .optional()?)
}

pub(super) fn class_not_found(script: &str, class: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        CLASS_NOT_FOUND,
        format!("Durable Object class '{class}' does not exist on Worker '{script}'"),
    )
}

fn already_migrated(class: &str) -> ApiError {
    ApiError::bad_request(
        CLASS_ALREADY_MIGRATED,
        format!("Durable Object class '{class}' cannot be the target of more than one migration"),
    )
}

fn string_list<'a>(step: &'a Value, key: &str) -> ApiResult<Vec<&'a str>> {
    match step.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_str().ok_or_else(|| {
                    invalid(format!("migrations: {key} must be a list of class names"))
                })
            })
            .collect(),
        Some(_) => Err(invalid(format!(
            "migrations: {key} must be a list of class names"
        ))),
    }
}

fn object_list<'a>(step: &'a Value, key: &str) -> ApiResult<Vec<&'a Value>> {
    match step.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => Ok(items.iter().collect()),
        Some(_) => Err(invalid(format!("migrations: {key} must be a list"))),
    }
}

fn field<'a>(item: &'a Value, key: &str, list: &str) -> ApiResult<&'a str> {
    item.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(format!("migrations: each of {list} needs a string `{key}`")))
}

fn create(
    conn: &Connection,
    script: &str,
    class: &str,
    use_sqlite: bool,
    created_on: &str,
) -> ApiResult<()> {
    if find_namespace(conn, script, class)?.is_some() {
        return Err(already_migrated(class));
    }
    conn.execute(
        "INSERT INTO durable_object_namespaces (id, script, class, use_sqlite, created_on)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![new_hex_id(), script, class, use_sqlite, created_on],
    )?;
    Ok(())
}

fn apply_step(conn: &Connection, script: &str, step: &Value, created_on: &str) -> ApiResult<()> {
    if !step.is_object() {
        return Err(invalid("migrations: each step must be an object"));
    }
    for class in string_list(step, "new_classes")? {
        create(conn, script, class, false, created_on)?;
    }
    for class in string_list(step, "new_sqlite_classes")? {
        create(conn, script, class, true, created_on)?;
    }
    for item in object_list(step, "renamed_classes")? {
        let from = field(item, "from", "renamed_classes")?;
        let to = field(item, "to", "renamed_classes")?;
        let namespace =
            find_namespace(conn, script, from)?.ok_or_else(|| class_not_found(script, from))?;
        if find_namespace(conn, script, to)?.is_some() {
            return Err(already_migrated(to));
        }
        conn.execute(
            "UPDATE durable_object_namespaces SET class = ?2 WHERE id = ?1",
            params![namespace.id, to],
        )?;
    }
    for item in object_list(step, "transferred_classes")? {
        let from = field(item, "from", "transferred_classes")?;
        let from_script = field(item, "from_script", "transferred_classes")?;
        let to = field(item, "to", "transferred_classes")?;
        let namespace = find_namespace(conn, from_script, from)?
            .ok_or_else(|| class_not_found(from_script, from))?;
        if find_namespace(conn, script, to)?.is_some() {
            return Err(already_migrated(to));
        }
        conn.execute(
            "UPDATE durable_object_namespaces SET script = ?2, class = ?3 WHERE id = ?1",
            params![namespace.id, script, to],
        )?;
    }
    for class in string_list(step, "deleted_classes")? {
        let namespace =
            find_namespace(conn, script, class)?.ok_or_else(|| class_not_found(script, class))?;
        conn.execute(
            "DELETE FROM durable_object_namespaces WHERE id = ?1",
            [namespace.id],
        )?;
    }
    Ok(())
}

/// Applies an upload's `migrations` and returns the script's new `migration_tag`.
pub(super) fn apply_migrations(
    conn: &Connection,
    clock: &Clock,
    script: &str,
    current_tag: Option<&str>,
    migrations: &Value,
) -> ApiResult<Option<String>> {
    if !migrations.is_object() {
        return Err(invalid("migrations must be an object"));
    }
    let tag = |key: &str| -> ApiResult<Option<String>> {
        match migrations.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(tag)) => Ok(Some(tag.clone())),
            Some(_) => Err(invalid(format!("migrations: {key} must be a string"))),
        }
    };
    let old_tag = tag("old_tag")?;
    let new_tag = tag("new_tag")?;
    if old_tag.as_deref() != current_tag {
        return Err(invalid(format!(
            "migrations: old_tag {} does not match the Worker's current migration tag {}",
            old_tag
                .as_deref()
                .map_or_else(|| String::from("(none)"), |tag| format!("'{tag}'")),
            current_tag.map_or_else(|| String::from("(none)"), |tag| format!("'{tag}'")),
        )));
    }
    let created_on = clock.unique_micros();
    match migrations.get("steps") {
        None | Some(Value::Null) => apply_step(conn, script, migrations, &created_on)?,
        Some(Value::Array(steps)) => {
            for step in steps {
                apply_step(conn, script, step, &created_on)?;
            }
        }
        Some(_) => return Err(invalid("migrations: steps must be a list")),
    }
    Ok(new_tag.or_else(|| current_tag.map(str::to_owned)))
}

async fn list_namespaces(
    State(state): State<SharedState>,
    query: QueryParams,
) -> ApiResult<Response> {
    let query = query_map(query, VALIDATION)?;
    let page = int_param(&query, "page", 1, 1, i64::MAX, VALIDATION)?;
    let per_page = int_param(&query, "per_page", 20, 1, 1000, VALIDATION)?;
    let namespaces = state
        .store
        .call(|conn| {
            let mut statement = conn.prepare(
                "SELECT id, script, class, use_sqlite FROM durable_object_namespaces
                 ORDER BY script, class",
            )?;
            let namespaces = statement
                .query_map([], namespace_from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(namespaces)
        })
        .await?;
    Ok(paginate(
        namespaces.iter().map(namespace_json).collect(),
        page,
        per_page,
    ))
}
