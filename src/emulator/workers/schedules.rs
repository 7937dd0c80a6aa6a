//! Cron triggers: `GET`/`PUT /accounts/{account_id}/workers/scripts/{script_name}/schedules`.
//!
//! `PUT` takes `[{"cron": "*/5 * * * *"}]` and replaces the script's whole set; both answer
//! `{schedules:[{cron, created_on, modified_on}]}`. A cron already present keeps its
//! `created_on`. Validation is loose: five space-separated fields of digits, letters (`MON`,
//! `JAN`, `L`, `W`) and `* / , - ? #`; anything else is 400 10021 (the real code is unknown).

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use rusqlite::{Connection, params};
use serde_json::{Value, json};

use super::super::envelope::{ApiResult, parse_json, success};
use super::super::{API_PREFIX, SharedState};
use super::{ScriptPath, VALIDATION, invalid, path_error, require_script};

pub(super) fn routes() -> Router<SharedState> {
    Router::new().route(
        &format!("{API_PREFIX}/accounts/{{account_id}}/workers/scripts/{{script_name}}/schedules"),
        get(get_schedules).put(put_schedules),
    )
}

/// Five fields, each made of the characters cron expressions use.
fn valid_cron(cron: &str) -> bool {
    let fields: Vec<&str> = cron.split_whitespace().collect();
    fields.len() == 5
        && fields.iter().all(|field| {
            field
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || b"*/,-?#".contains(&byte))
        })
}

fn schedules(conn: &Connection, script: &str) -> ApiResult<Value> {
    let mut statement = conn.prepare(
        "SELECT cron, created_on, modified_on FROM worker_schedules WHERE script = ?1
         ORDER BY created_on, cron",
    )?;
    let list = statement
        .query_map([script], |row| {
            Ok(json!({
                "cron": row.get::<_, String>(0)?,
                "created_on": row.get::<_, String>(1)?,
                "modified_on": row.get::<_, String>(2)?,
            }))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(json!({ "schedules": list }))
}

async fn get_schedules(State(state): State<SharedState>, path: ScriptPath) -> ApiResult<Response> {
    let Path((_, script)) = path.map_err(path_error)?;
    let result = state
        .store
        .call(move |conn| {
            require_script(conn, &script)?;
            schedules(conn, &script)
        })
        .await?;
    Ok(success(result))
}

async fn put_schedules(
    State(state): State<SharedState>,
    path: ScriptPath,
    body: Bytes,
) -> ApiResult<Response> {
    let Path((_, script)) = path.map_err(path_error)?;
    let body: Value = parse_json(&body, VALIDATION, "update schedules")?;
    let Some(entries) = body.as_array() else {
        return Err(invalid("the body must be a list of {\"cron\": \"…\"}"));
    };
    let mut crons: Vec<String> = Vec::with_capacity(entries.len());
    for entry in entries {
        let Some(cron) = entry.get("cron").and_then(Value::as_str) else {
            return Err(invalid(
                "each schedule must be an object with a string cron",
            ));
        };
        let cron = cron.split_whitespace().collect::<Vec<_>>().join(" ");
        if !valid_cron(&cron) {
            return Err(invalid(format!(
                "invalid cron expression {cron:?}: expected five fields"
            )));
        }
        if !crons.contains(&cron) {
            crons.push(cron);
        }
    }
    let now = state.clock.unique_micros();
    let result = state
        .store
        .call(move |conn| {
            let transaction = conn.transaction()?;
            require_script(&transaction, &script)?;
            let placeholders = crons.iter().map(|_| "?").collect::<Vec<_>>().join(", ");
            let mut values: Vec<&dyn rusqlite::ToSql> = vec![&script];
            values.extend(crons.iter().map(|cron| cron as &dyn rusqlite::ToSql));
            transaction.execute(
                &format!(
                    "DELETE FROM worker_schedules WHERE script = ? AND cron NOT IN ({placeholders})"
                ),
                values.as_slice(),
            )?;
            for cron in &crons {
                transaction.execute(
                    "INSERT INTO worker_schedules (script, cron, created_on, modified_on)
                     VALUES (?1, ?2, ?3, ?3)
                     ON CONFLICT (script, cron) DO UPDATE SET modified_on = excluded.modified_on",
                    params![script, cron, now],
                )?;
            }
            let result = schedules(&transaction, &script)?;
            transaction.commit()?;
            Ok(result)
        })
        .await?;
    Ok(success(result))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cron_syntax_is_checked_loosely() {
        assert!(valid_cron("*/5 * * * *"));
        assert!(valid_cron("0 12 * * MON-FRI"));
        assert!(valid_cron("0 0 L * ?"));
        assert!(!valid_cron("* * * *"));
        assert!(!valid_cron("* * * * * *"));
        assert!(!valid_cron("@daily"));
        assert!(!valid_cron("* * * * $"));
    }
}
