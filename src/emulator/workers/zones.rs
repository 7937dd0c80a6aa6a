//! Zones: `GET /zones` (page-paginated, `name` and `account.id` filters) and `GET /zones/{zone_id}`.
//!
//! Zones cannot be created through the API here: they come from the emulator's configuration
//! (`Config.zones`, `flareops emulator --zone NAME`), are created at start when missing and are
//! kept in the state. A zone's id is derived from its name (32 hex), so it is the same in every
//! state directory. Every zone is `active` and belongs to the one account.
//!
//! `name` filters by exact match, or with Cloudflare's operators `contains:`, `starts_with:`,
//! `ends_with:`, `equal:`, `not_equal:`. An unknown zone id is 400 7003 "Could not route to …"
//! (what the API answers for an identifier it cannot resolve).

use axum::Router;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use rusqlite::{Connection, OptionalExtension as _, params};
use serde_json::{Value, json};
use sha2::Digest as _;

use super::super::accounts::ACCOUNT_NAME;
use super::super::envelope::{
    ApiError, ApiResult, enum_param, int_param, paginate, query_map, success,
};
use super::super::{API_PREFIX, AppState, SharedState};
use super::{QueryParams, path_error};

/// Validation code of the zone endpoints (the generic "invalid request").
const ZONE_VALIDATION: u32 = 1001;
const UNKNOWN_ZONE: u32 = 7003;

const NAME_SERVERS: [&str; 2] = ["ada.ns.cloudflare.com", "bob.ns.cloudflare.com"];

pub(crate) fn routes() -> Router<SharedState> {
    Router::new()
        .route(&format!("{API_PREFIX}/zones"), get(list_zones))
        .route(&format!("{API_PREFIX}/zones/{{zone_id}}"), get(get_zone))
}

/// A zone's stable id: the first 16 bytes of SHA-256 over its name, in hex.
pub fn zone_id(name: &str) -> String {
    let digest = sha2::Sha256::digest(format!("flareops-emulator/zone/{name}"));
    hex::encode(&digest[..16])
}

/// Zone names: lowercase DNS names with at least two labels of `[a-z0-9-]`.
pub(crate) fn valid_zone_name(name: &str) -> bool {
    valid_hostname(name) && name.contains('.')
}

/// A lowercase DNS name: labels of 1..=63 `[a-z0-9-]` not starting or ending with `-`.
pub(super) fn valid_hostname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-')
        })
}

/// Creates the zones that do not exist yet (called at start).
pub(crate) fn create_zones(
    conn: &mut Connection,
    names: &[String],
    created_on: &str,
) -> ApiResult<()> {
    let transaction = conn.transaction()?;
    for name in names {
        transaction.execute(
            "INSERT OR IGNORE INTO zones (id, name, created_on) VALUES (?1, ?2, ?3)",
            params![zone_id(name), name, created_on],
        )?;
    }
    transaction.commit()?;
    Ok(())
}

#[derive(Debug, Clone)]
pub(crate) struct Zone {
    pub id: String,
    pub name: String,
    pub created_on: String,
}

fn zone_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Zone> {
    Ok(Zone {
        id: row.get(0)?,
        name: row.get(1)?,
        created_on: row.get(2)?,
    })
}

pub(crate) fn find_zone(conn: &Connection, id: &str) -> ApiResult<Option<Zone>> {
    Ok(conn
        .query_row(
            "SELECT id, name, created_on FROM zones WHERE id = ?1",
            [id],
            zone_from_row,
        )
        .optional()?)
}

pub(super) fn find_zone_by_name(conn: &Connection, name: &str) -> ApiResult<Option<Zone>> {
    Ok(conn
        .query_row(
            "SELECT id, name, created_on FROM zones WHERE name = ?1",
            [name],
            zone_from_row,
        )
        .optional()?)
}

/// The zone a hostname belongs to: the longest zone name equal to it or a suffix of it.
pub(crate) fn zone_for_host(conn: &Connection, host: &str) -> ApiResult<Option<Zone>> {
    let mut statement = conn.prepare("SELECT id, name, created_on FROM zones")?;
    let zones = statement
        .query_map([], zone_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(zones
        .into_iter()
        .filter(|zone| host_in_zone(host, &zone.name))
        .max_by_key(|zone| zone.name.len()))
}

/// Whether `host` is the zone's apex or a name under it.
pub(crate) fn host_in_zone(host: &str, zone: &str) -> bool {
    host == zone
        || host
            .strip_suffix(zone)
            .is_some_and(|prefix| prefix.ends_with('.'))
}

/// The zone named by a request: `zone_id`, else `zone_name`, else the one the host belongs to.
pub(super) fn resolve_zone(
    conn: &Connection,
    zone_id: Option<&str>,
    zone_name: Option<&str>,
    host: &str,
) -> ApiResult<Option<Zone>> {
    if let Some(id) = zone_id.filter(|id| !id.is_empty()) {
        return find_zone(conn, id);
    }
    if let Some(name) = zone_name.filter(|name| !name.is_empty()) {
        return find_zone_by_name(conn, name);
    }
    zone_for_host(conn, host)
}

pub(crate) fn unknown_zone(id: &str) -> ApiError {
    ApiError::bad_request(
        UNKNOWN_ZONE,
        format!("Could not route to /zones/{id}, perhaps your object identifier is invalid?"),
    )
}

fn zone_json(state: &AppState, zone: &Zone) -> Value {
    json!({
        "id": zone.id,
        "name": zone.name,
        "status": "active",
        "paused": false,
        "type": "full",
        "development_mode": 0,
        "name_servers": NAME_SERVERS,
        "original_name_servers": null,
        "original_registrar": null,
        "original_dnshost": null,
        "created_on": zone.created_on,
        "modified_on": zone.created_on,
        "activated_on": zone.created_on,
        "account": { "id": state.account_id, "name": ACCOUNT_NAME },
        "meta": {
            "step": 2,
            "custom_certificate_quota": 0,
            "page_rule_quota": 3,
            "phishing_detected": false,
            "cdn_only": false,
            "dns_only": false,
            "foundation_dns": false,
        },
        "owner": { "id": null, "type": "user", "email": null },
        "permissions": ["#zone:read", "#zone:edit", "#worker:read", "#worker:edit"],
        "plan": { "id": "0feeeeeeeeeeeeeeeeeeeeeeeeeeeeee", "name": "Free Website", "legacy_id": "free" },
    })
}

/// Whether a zone name passes a `name` filter (`equal:`, `not_equal:`, `contains:`, …).
fn name_matches(name: &str, filter: &str) -> bool {
    if let Some(value) = filter.strip_prefix("contains:") {
        name.contains(value)
    } else if let Some(value) = filter.strip_prefix("starts_with:") {
        name.starts_with(value)
    } else if let Some(value) = filter.strip_prefix("ends_with:") {
        name.ends_with(value)
    } else if let Some(value) = filter.strip_prefix("not_equal:") {
        name != value
    } else if let Some(value) = filter.strip_prefix("equal:") {
        name == value
    } else {
        name == filter
    }
}

async fn list_zones(State(state): State<SharedState>, query: QueryParams) -> ApiResult<Response> {
    let query = query_map(query, ZONE_VALIDATION)?;
    let page = int_param(&query, "page", 1, 1, i64::MAX, ZONE_VALIDATION)?;
    let per_page = int_param(&query, "per_page", 20, 5, 50, ZONE_VALIDATION)?;
    let descending = enum_param(&query, "direction", &["asc", "desc"], ZONE_VALIDATION)?
        .unwrap_or("asc")
        == "desc";
    enum_param(
        &query,
        "order",
        &["name", "status", "account.id", "account.name"],
        ZONE_VALIDATION,
    )?;
    let status = enum_param(
        &query,
        "status",
        &[
            "initializing",
            "pending",
            "active",
            "moved",
            "deleted",
            "deactivated",
        ],
        ZONE_VALIDATION,
    )?
    .map(str::to_owned);
    let name = query.get("name").filter(|name| !name.is_empty()).cloned();
    let account = query
        .get("account.id")
        .filter(|account| !account.is_empty())
        .cloned();
    let mut zones = state
        .store
        .call(|conn| {
            let mut statement =
                conn.prepare("SELECT id, name, created_on FROM zones ORDER BY name")?;
            let zones = statement
                .query_map([], zone_from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(zones)
        })
        .await?;
    zones.retain(|zone| {
        name.as_deref()
            .is_none_or(|filter| name_matches(&zone.name, filter))
            && account
                .as_deref()
                .is_none_or(|account| account == state.account_id)
            && status.as_deref().is_none_or(|status| status == "active")
    });
    if descending {
        zones.reverse();
    }
    let items = zones.iter().map(|zone| zone_json(&state, zone)).collect();
    Ok(paginate(items, page, per_page))
}

async fn get_zone(
    State(state): State<SharedState>,
    path: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> ApiResult<Response> {
    let Path(id) = path.map_err(path_error)?;
    let lookup = id.clone();
    let zone = state
        .store
        .call(move |conn| find_zone(conn, &lookup))
        .await?
        .ok_or_else(|| unknown_zone(&id))?;
    Ok(success(zone_json(&state, &zone)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_ids_are_stable_hex() {
        let id = zone_id("example.com");
        assert_eq!(id.len(), 32);
        assert!(id.bytes().all(|byte| byte.is_ascii_hexdigit()));
        assert_eq!(id, zone_id("example.com"));
        assert_ne!(id, zone_id("example.org"));
    }

    #[test]
    fn names_and_membership() {
        assert!(valid_zone_name("example.com"));
        assert!(valid_zone_name("a-b.co.uk"));
        assert!(!valid_zone_name("localhost"));
        assert!(!valid_zone_name("Example.com"));
        assert!(!valid_zone_name("-a.com"));
        assert!(!valid_zone_name("a..com"));
        assert!(host_in_zone("example.com", "example.com"));
        assert!(host_in_zone("api.example.com", "example.com"));
        assert!(!host_in_zone("badexample.com", "example.com"));
        assert!(name_matches("example.com", "contains:ample"));
        assert!(!name_matches("example.com", "example"));
    }
}
