//! Workers under `/accounts/{account_id}/workers/…`, and the zones under `/zones` that routes and
//! custom domains attach to.
//!
//! The model, kept in SQLite ([`super::store`]) so it survives restarts:
//! - a **script** is a name with a tag, its Durable Object `migration_tag`, its non-versioned
//!   settings (`logpush`, `observability`, `tags`, `tail_consumers`) and its workers.dev flags;
//! - a **version** is immutable: its modules (stored content-addressed by SHA-256), bindings,
//!   runtime settings (`compatibility_date`, `compatibility_flags`, `limits`, …) and annotations;
//!   `number` counts from 1 per script;
//! - a **deployment** routes traffic to one or two versions whose percentages sum to 100; the
//!   newest deployment is the live one. Lists answer newest first.
//!
//! Semantics (where the API is silent, the choices follow what wrangler 4.86 expects):
//! - `PUT /scripts/{n}` creates the script if needed, a version (`workers/triggered_by: upload`)
//!   and a 100% deployment, and answers `deployment_id` = the version id. `POST …/versions`
//!   creates a version only. Both apply Durable Object `migrations` at once.
//! - Bindings: `inherit` copies a binding of the latest version (`old_name`, `version_id`); with
//!   `bindings_inherit=strict` a missing one is 10057 `inherit binding 'X' is invalid`, without it
//!   the binding is dropped. Secrets (`secret_text`, `secret_key`) of the latest version are kept
//!   by every upload that does not re-send their name (wrangler's `deploy` never sends
//!   `keep_bindings`, and never deletes secrets); other types are kept only when listed in
//!   `keep_bindings`. KV, D1 and R2 targets must exist: 10042 `KV namespace 'ID' is not valid…`
//!   (workers-sdk#14249), 10021 ``binding DB of type d1 must have a valid `id` specified`` (the
//!   exact text wrangler matches), 10085 `R2 bucket 'B' not found…` (workers-sdk#9418). D1
//!   accepts `id` or `database_id` and answers `id`. Unknown types are stored as sent.
//! - Secret values are stored apart from the bindings (`worker_version_secrets`) and read only
//!   to copy them into a new version: no endpoint returns them and nothing logs them. A
//!   `secret_text` binding is reported as `{name, type}`.
//! - A secret change (`PUT`/`DELETE …/secrets`, `PATCH …/secrets-bulk`) needs the newest version
//!   to be the one deployed at 100% (else 10215); it creates a version copying the newest one
//!   (`workers/triggered_by: secret`) and deploys it at 100%.
//! - `POST …/deployments`: 1 or 2 versions of this script, each 0..=100, summing to 100; anything
//!   else is 10021 (the real code is unknown). Its `workers/triggered_by` is `rollback` (with
//!   `workers/rollback_from`) when a single version older than the newest one goes to 100%, else
//!   `promotion` (a guess: wrangler knows upload, secret, rollback and promotion). The live
//!   deployment cannot be deleted.
//! - Annotations: `workers/message` is truncated to 1000 bytes and `workers/tag` over 100 bytes
//!   is refused (PyPI `cloudflare` 5.9: "Truncated to 1000 bytes", "Maximum 100 bytes").
//! - `last_deployed_from` and a version's `metadata.source` are `wrangler` when the User-Agent
//!   starts with `wrangler/`, else `api` (never `dash`, which makes wrangler diff the config).
//! - `handlers` is a heuristic: `fetch`, plus `scheduled`/`queue`/`email`/`tail` when a module's
//!   text mentions `name(` or `name:`. Nothing runs, so `startup_time_ms` is 0.
//!
//! Codes: 10007 no such script (404), 10021 validation (400), 10057 bad inherit, 10215 latest
//! version not deployed (codes wrangler itself checks); 10053 binding name already in use (a
//! workers-sdk issue); 10042 and 10085 above; 10009 no such route, 10019 route for a missing
//! script, 10022 invalid route pattern, 10056 no such secret, 10061 no such Durable Object class
//! (also for a binding to a class no migration created), 10071 no such version, 10074 class
//! already migrated, 10336 no such deployment, 100114 no such custom domain, 100116 hostname in
//! use (the typed errors of `alchemy-run/distilled`'s Cloudflare SDK, probed against the live
//! API); 10020 duplicate route pattern ("A route with the same pattern already exists", seen in
//! the wild); 10001 a body that is not multipart; 10027 modules over 64 MiB (413; Cloudflare
//! limits the compressed size, which is not computed here); 7003 unknown zone. The statuses of
//! 10020/100116 (409) and the codes for bad crons, bad migrations and off-zone hostnames (10021)
//! are inferences.

mod deployments;
mod domains;
mod durable_objects;
mod routes;
mod schedules;
mod scripts;
mod secrets;
mod subdomain;
mod upload;
mod versions;
mod zones;

#[cfg(test)]
mod tests;

use axum::Router;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query};
use axum::http::{HeaderMap, StatusCode, header};
use rusqlite::{Connection, OptionalExtension as _};
use serde_json::{Map, Value, json};

use super::SharedState;
use super::envelope::{ApiError, ApiResult, QueryMap};

pub use zones::zone_id;
pub(crate) use zones::{
    Zone, create_zones, find_zone, host_in_zone, unknown_zone, valid_zone_name, zone_for_host,
};

const SCRIPT_NOT_FOUND: u32 = 10007;
const VALIDATION: u32 = 10021;
const NOT_MULTIPART: u32 = 10001;

/// The user every version and deployment is attributed to (the one `GET /user` reports).
const AUTHOR_EMAIL: &str = "local@flareops.invalid";

/// Byte limits of the version annotations (PyPI `cloudflare` 5.9).
const MAX_MESSAGE_BYTES: usize = 1000;
const MAX_TAG_BYTES: usize = 100;

pub(crate) fn routes() -> Router<SharedState> {
    Router::new()
        .merge(scripts::routes())
        .merge(versions::routes())
        .merge(deployments::routes())
        .merge(secrets::routes())
        .merge(schedules::routes())
        .merge(subdomain::routes())
        .merge(routes::routes())
        .merge(domains::routes())
        .merge(durable_objects::routes())
        .merge(zones::routes())
}

type ScriptPath = Result<Path<(String, String)>, PathRejection>;
type ScriptItemPath = Result<Path<(String, String, String)>, PathRejection>;
type QueryParams = Result<Query<QueryMap>, QueryRejection>;

fn path_error(rejection: PathRejection) -> ApiError {
    ApiError::bad_request(VALIDATION, format!("malformed path: {rejection}"))
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(VALIDATION, message)
}

fn script_not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        SCRIPT_NOT_FOUND,
        "This Worker does not exist on your account.",
    )
}

/// Script names: `^[a-z0-9_][a-z0-9-_]*$`, at most 63 characters.
fn valid_script_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes[0] != b'-'
        && bytes
            .iter()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || b"-_".contains(byte))
}

/// A new hyphenated UUID (version and deployment ids).
fn new_uuid() -> String {
    uuid::Uuid::new_v4().hyphenated().to_string()
}

/// A new 32-hex id (script tags, routes, domains, namespaces).
fn new_hex_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// `wrangler` when the caller is wrangler, else `api`.
fn request_source(headers: &HeaderMap) -> &'static str {
    let from_wrangler = headers
        .get(header::USER_AGENT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|agent| agent.starts_with("wrangler/"));
    if from_wrangler { "wrangler" } else { "api" }
}

/// A script's row.
#[derive(Debug, Clone)]
struct Script {
    name: String,
    tag: String,
    created_on: String,
    modified_on: String,
    migration_tag: Option<String>,
    last_deployed_from: String,
    /// `{logpush, observability, tags, tail_consumers}`.
    script_settings: Map<String, Value>,
    subdomain_enabled: bool,
    previews_enabled: bool,
}

const SCRIPT_COLUMNS: &str = "name, tag, created_on, modified_on, migration_tag, last_deployed_from, script_settings, subdomain_enabled, previews_enabled";

fn script_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Script> {
    let settings: String = row.get(6)?;
    Ok(Script {
        name: row.get(0)?,
        tag: row.get(1)?,
        created_on: row.get(2)?,
        modified_on: row.get(3)?,
        migration_tag: row.get(4)?,
        last_deployed_from: row.get(5)?,
        script_settings: serde_json::from_str(&settings).unwrap_or_default(),
        subdomain_enabled: row.get(7)?,
        previews_enabled: row.get(8)?,
    })
}

fn find_script(conn: &Connection, name: &str) -> ApiResult<Option<Script>> {
    Ok(conn
        .query_row(
            &format!("SELECT {SCRIPT_COLUMNS} FROM worker_scripts WHERE name = ?1"),
            [name],
            script_from_row,
        )
        .optional()?)
}

/// The script, or 404 10007.
fn require_script(conn: &Connection, name: &str) -> ApiResult<Script> {
    find_script(conn, name)?.ok_or_else(script_not_found)
}

/// Default non-versioned settings of a new script.
fn default_script_settings() -> Map<String, Value> {
    let mut settings = Map::new();
    settings.insert("logpush".into(), Value::Bool(false));
    settings.insert("observability".into(), json!({ "enabled": false }));
    settings.insert("tags".into(), Value::Null);
    settings.insert("tail_consumers".into(), Value::Null);
    settings
}

/// Keeps the annotations a client may set, enforcing their limits.
fn client_annotations(annotations: Option<&Value>) -> ApiResult<Map<String, Value>> {
    let mut kept = Map::new();
    let Some(annotations) = annotations.filter(|value| !value.is_null()) else {
        return Ok(kept);
    };
    let Some(annotations) = annotations.as_object() else {
        return Err(invalid("annotations must be an object"));
    };
    if let Some(message) = annotations.get("workers/message").and_then(Value::as_str) {
        kept.insert(
            "workers/message".into(),
            Value::String(truncate_bytes(message, MAX_MESSAGE_BYTES).to_owned()),
        );
    }
    if let Some(tag) = annotations.get("workers/tag").and_then(Value::as_str) {
        if tag.len() > MAX_TAG_BYTES {
            return Err(invalid(format!(
                "annotation workers/tag must be at most {MAX_TAG_BYTES} bytes, got {}",
                tag.len()
            )));
        }
        kept.insert("workers/tag".into(), Value::String(tag.to_owned()));
    }
    if let Some(alias) = annotations.get("workers/alias").and_then(Value::as_str) {
        kept.insert("workers/alias".into(), Value::String(alias.to_owned()));
    }
    Ok(kept)
}

/// The longest prefix of `text` of at most `limit` bytes that ends on a character boundary.
fn truncate_bytes(text: &str, limit: usize) -> &str {
    if text.len() <= limit {
        return text;
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod unit_tests {
    use super::*;

    #[test]
    fn script_names() {
        assert!(valid_script_name("my-worker_1"));
        assert!(valid_script_name("_x"));
        assert!(!valid_script_name(""));
        assert!(!valid_script_name("-x"));
        assert!(!valid_script_name("Upper"));
        assert!(!valid_script_name("a.b"));
        assert!(!valid_script_name(&"a".repeat(64)));
    }

    #[test]
    fn annotations_are_limited() {
        let long_message = "é".repeat(600);
        let kept = client_annotations(Some(&json!({
            "workers/message": long_message,
            "workers/tag": "v1",
            "workers/triggered_by": "forged",
            "other": 1,
        })))
        .unwrap();
        let message = kept["workers/message"].as_str().unwrap();
        assert_eq!(message.len(), 1000);
        assert_eq!(kept["workers/tag"], json!("v1"));
        assert!(!kept.contains_key("workers/triggered_by"));
        assert!(!kept.contains_key("other"));
        let error = client_annotations(Some(&json!({"workers/tag": "x".repeat(101)}))).unwrap_err();
        assert_eq!(error.code, VALIDATION);
    }
}
