//! Workers custom domains: `GET /accounts/{account_id}/workers/domains` (filters `hostname`,
//! `service`, `zone_id`, `zone_name`, `environment`; not paginated), `PUT …/domains`
//! `{hostname, service, zone_id?|zone_name?, environment?}` (attach), `GET`/`DELETE
//! …/domains/{domain_id}` and `GET …/domains/records/{domain_id}`, plus wrangler's internal
//! per-script calls: `POST …/scripts/{n}/domains/changeset[?replace_state=true]` (what a
//! `records` call would change, without changing it) and `PUT …/scripts/{n}/domains/records`
//! `{override_scope, override_existing_origin, override_existing_dns_record, origins}`.
//!
//! A hostname must be a DNS name in one of the account's zones (the named zone when one is
//! given), else 400 10021; the Worker must exist (10007). A hostname attached to another Worker
//! is 409 100116 unless the call overrides existing origins; an unknown domain is 404 100114.
//! The environment defaults to `production`. A hostname that has DNS records (see `dns`) is 409
//! 100117 unless the call sets `override_existing_dns_record`, which deletes them; the attached
//! domain's own record (`AAAA 100::`, proxied, read-only) is listed with the zone's records.
//! `conflicting` is always empty.

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post, put};
use rusqlite::{Connection, OptionalExtension as _, params};
use serde_json::{Value, json};

use super::super::envelope::{ApiError, ApiResult, parse_json, query_map, success};
use super::super::{API_PREFIX, SharedState};
use super::zones::{self, Zone, host_in_zone};
use super::{QueryParams, ScriptPath, VALIDATION, invalid, new_hex_id, path_error, require_script};

const DOMAIN_NOT_FOUND: u32 = 100114;
const HOSTNAME_IN_USE: u32 = 100116;
const DNS_RECORDS_EXIST: u32 = 100117;
const DEFAULT_ENVIRONMENT: &str = "production";

pub(super) fn routes() -> Router<SharedState> {
    let account = format!("{API_PREFIX}/accounts/{{account_id}}/workers");
    Router::new()
        .route(
            &format!("{account}/domains"),
            get(list_domains).put(attach_domain),
        )
        .route(
            &format!("{account}/domains/{{domain_id}}"),
            get(get_domain).delete(detach_domain),
        )
        .route(
            &format!("{account}/domains/records/{{domain_id}}"),
            get(get_domain),
        )
        .route(
            &format!("{account}/scripts/{{script_name}}/domains/changeset"),
            post(domains_changeset),
        )
        .route(
            &format!("{account}/scripts/{{script_name}}/domains/records"),
            put(put_domain_records),
        )
}

type DomainPath = Result<Path<(String, String)>, PathRejection>;

#[derive(Debug, Clone)]
struct Domain {
    id: String,
    hostname: String,
    service: String,
    environment: String,
    zone_id: String,
    zone_name: String,
    cert_id: String,
}

const DOMAIN_SELECT: &str =
    "SELECT d.id, d.hostname, d.service, d.environment, d.zone_id, z.name, d.cert_id
     FROM worker_domains d JOIN zones z ON z.id = d.zone_id";

fn domain_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Domain> {
    Ok(Domain {
        id: row.get(0)?,
        hostname: row.get(1)?,
        service: row.get(2)?,
        environment: row.get(3)?,
        zone_id: row.get(4)?,
        zone_name: row.get(5)?,
        cert_id: row.get(6)?,
    })
}

fn domain_json(domain: &Domain) -> Value {
    json!({
        "id": domain.id,
        "hostname": domain.hostname,
        "service": domain.service,
        "environment": domain.environment,
        "zone_id": domain.zone_id,
        "zone_name": domain.zone_name,
        "cert_id": domain.cert_id,
    })
}

fn domain_not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, DOMAIN_NOT_FOUND, "Domain not found")
}

fn hostname_in_use(hostname: &str, service: &str) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        HOSTNAME_IN_USE,
        format!("Hostname '{hostname}' is already in use by Worker '{service}'"),
    )
}

fn all_domains(conn: &Connection) -> ApiResult<Vec<Domain>> {
    let mut statement = conn.prepare(&format!("{DOMAIN_SELECT} ORDER BY d.hostname"))?;
    let domains = statement
        .query_map([], domain_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(domains)
}

fn find_by_hostname(conn: &Connection, hostname: &str) -> ApiResult<Option<Domain>> {
    Ok(conn
        .query_row(
            &format!("{DOMAIN_SELECT} WHERE d.hostname = ?1"),
            [hostname],
            domain_from_row,
        )
        .optional()?)
}

/// The zone a custom domain goes in, checking the hostname lies in it.
fn zone_of(
    conn: &Connection,
    hostname: &str,
    zone_id: Option<&str>,
    zone_name: Option<&str>,
) -> ApiResult<Zone> {
    if !zones::valid_hostname(hostname) || !hostname.contains('.') {
        return Err(invalid(format!(
            "hostname {hostname:?} must be a lowercase DNS name"
        )));
    }
    let zone = zones::resolve_zone(conn, zone_id, zone_name, hostname)?;
    match zone {
        Some(zone) if host_in_zone(hostname, &zone.name) => Ok(zone),
        Some(zone) => Err(invalid(format!(
            "hostname {hostname} is not in zone {}",
            zone.name
        ))),
        None => Err(invalid(format!(
            "hostname {hostname} is not in a zone of this account"
        ))),
    }
}

/// One requested custom domain.
struct Origin {
    hostname: String,
    zone_id: Option<String>,
    zone_name: Option<String>,
}

fn origin_of(value: &Value) -> ApiResult<Origin> {
    let Some(hostname) = value.get("hostname").and_then(Value::as_str) else {
        return Err(invalid("each origin needs a string hostname"));
    };
    let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
    Ok(Origin {
        hostname: hostname.to_owned(),
        zone_id: text("zone_id"),
        zone_name: text("zone_name"),
    })
}

/// Attaches `hostname` to `service` (or answers the existing attachment).
fn attach(
    conn: &Connection,
    origin: &Origin,
    service: &str,
    environment: &str,
    override_existing: bool,
    override_dns: bool,
    created_on: &str,
) -> ApiResult<Domain> {
    let zone = zone_of(
        conn,
        &origin.hostname,
        origin.zone_id.as_deref(),
        origin.zone_name.as_deref(),
    )?;
    require_script(conn, service)?;
    if let Some(existing) = find_by_hostname(conn, &origin.hostname)? {
        if existing.service != service && !override_existing {
            return Err(hostname_in_use(&existing.hostname, &existing.service));
        }
        conn.execute(
            "UPDATE worker_domains SET service = ?2, environment = ?3, zone_id = ?4 WHERE id = ?1",
            params![existing.id, service, environment, zone.id],
        )?;
        return Ok(Domain {
            service: service.to_owned(),
            environment: environment.to_owned(),
            zone_id: zone.id,
            zone_name: zone.name,
            ..existing
        });
    }
    // A new attachment takes the hostname's DNS: records someone made
    // there are refused, or deleted when the call says to override them.
    let records: i64 = conn.query_row(
        "SELECT COUNT(*) FROM dns_records WHERE zone_id = ?1 AND name = ?2",
        params![zone.id, origin.hostname],
        |row| row.get(0),
    )?;
    if records > 0 {
        if !override_dns {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                DNS_RECORDS_EXIST,
                format!(
                    "Hostname '{}' already has externally managed DNS records (A, CNAME, etc). Either delete them, try a different hostname, or use the option 'override_existing_dns_record' to override.",
                    origin.hostname
                ),
            ));
        }
        conn.execute(
            "DELETE FROM dns_records WHERE zone_id = ?1 AND name = ?2",
            params![zone.id, origin.hostname],
        )?;
    }
    let domain = Domain {
        id: new_hex_id(),
        hostname: origin.hostname.clone(),
        service: service.to_owned(),
        environment: environment.to_owned(),
        zone_id: zone.id,
        zone_name: zone.name,
        cert_id: new_hex_id(),
    };
    conn.execute(
        "INSERT INTO worker_domains (id, hostname, service, environment, zone_id, cert_id, created_on)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            domain.id,
            domain.hostname,
            domain.service,
            domain.environment,
            domain.zone_id,
            domain.cert_id,
            created_on
        ],
    )?;
    Ok(domain)
}

async fn list_domains(State(state): State<SharedState>, query: QueryParams) -> ApiResult<Response> {
    let query = query_map(query, VALIDATION)?;
    let filter = |key: &str| query.get(key).filter(|value| !value.is_empty()).cloned();
    let (hostname, service, zone_id, zone_name, environment) = (
        filter("hostname"),
        filter("service"),
        filter("zone_id"),
        filter("zone_name"),
        filter("environment"),
    );
    let mut domains = state.store.call(|conn| all_domains(conn)).await?;
    domains.retain(|domain| {
        hostname
            .as_deref()
            .is_none_or(|value| domain.hostname == value)
            && service
                .as_deref()
                .is_none_or(|value| domain.service == value)
            && zone_id
                .as_deref()
                .is_none_or(|value| domain.zone_id == value)
            && zone_name
                .as_deref()
                .is_none_or(|value| domain.zone_name == value)
            && environment
                .as_deref()
                .is_none_or(|value| domain.environment == value)
    });
    Ok(success(Value::Array(
        domains.iter().map(domain_json).collect(),
    )))
}

async fn attach_domain(State(state): State<SharedState>, body: Bytes) -> ApiResult<Response> {
    let body: Value = parse_json(&body, VALIDATION, "attach domain")?;
    let origin = origin_of(&body)?;
    let Some(service) = body
        .get("service")
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return Err(invalid("a custom domain needs a string service"));
    };
    let environment = body
        .get("environment")
        .and_then(Value::as_str)
        .unwrap_or(DEFAULT_ENVIRONMENT)
        .to_owned();
    let override_dns = body
        .get("override_existing_dns_record")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let created_on = state.clock.unique_micros();
    let domain = state
        .store
        .call(move |conn| {
            let transaction = conn.transaction()?;
            let domain = attach(
                &transaction,
                &origin,
                &service,
                &environment,
                false,
                override_dns,
                &created_on,
            )?;
            transaction.commit()?;
            Ok(domain)
        })
        .await?;
    Ok(success(domain_json(&domain)))
}

fn load_domain(conn: &Connection, id: &str) -> ApiResult<Domain> {
    conn.query_row(
        &format!("{DOMAIN_SELECT} WHERE d.id = ?1"),
        [id],
        domain_from_row,
    )
    .optional()?
    .ok_or_else(domain_not_found)
}

async fn get_domain(State(state): State<SharedState>, path: DomainPath) -> ApiResult<Response> {
    let Path((_, id)) = path.map_err(path_error)?;
    let domain = state.store.call(move |conn| load_domain(conn, &id)).await?;
    Ok(success(domain_json(&domain)))
}

async fn detach_domain(State(state): State<SharedState>, path: DomainPath) -> ApiResult<Response> {
    let Path((_, id)) = path.map_err(path_error)?;
    state
        .store
        .call(move |conn| {
            let domain = load_domain(conn, &id)?;
            conn.execute("DELETE FROM worker_domains WHERE id = ?1", [domain.id])?;
            Ok(())
        })
        .await?;
    Ok(success(Value::Null))
}

fn origins_of(value: Option<&Value>) -> ApiResult<Vec<Origin>> {
    match value {
        Some(Value::Array(items)) => items.iter().map(origin_of).collect(),
        _ => Err(invalid(
            "origins must be a list of {hostname, zone_id?, zone_name?}",
        )),
    }
}

async fn domains_changeset(
    State(state): State<SharedState>,
    path: ScriptPath,
    query: QueryParams,
    body: Bytes,
) -> ApiResult<Response> {
    let Path((_, script)) = path.map_err(path_error)?;
    let query = query_map(query, VALIDATION)?;
    let replace_state = query
        .get("replace_state")
        .is_some_and(|value| value == "true");
    let body: Value = parse_json(&body, VALIDATION, "domains changeset")?;
    let origins = origins_of(Some(&body))?;
    let result = state
        .store
        .call(move |conn| {
            require_script(conn, &script)?;
            let (mut added, mut updated) = (Vec::new(), Vec::new());
            for origin in &origins {
                let zone = zone_of(
                    conn,
                    &origin.hostname,
                    origin.zone_id.as_deref(),
                    origin.zone_name.as_deref(),
                )?;
                match find_by_hostname(conn, &origin.hostname)? {
                    Some(existing) => {
                        let mut entry = domain_json(&existing);
                        entry["modified"] = json!(existing.service != script);
                        updated.push(entry);
                    }
                    None => added.push(json!({
                        "hostname": origin.hostname,
                        "zone_id": zone.id,
                        "zone_name": zone.name,
                        "service": script,
                        "environment": DEFAULT_ENVIRONMENT,
                    })),
                }
            }
            let removed: Vec<Value> = if replace_state {
                all_domains(conn)?
                    .iter()
                    .filter(|domain| {
                        domain.service == script
                            && !origins
                                .iter()
                                .any(|origin| origin.hostname == domain.hostname)
                    })
                    .map(domain_json)
                    .collect()
            } else {
                Vec::new()
            };
            Ok(json!({
                "added": added,
                "removed": removed,
                "updated": updated,
                "conflicting": [],
            }))
        })
        .await?;
    Ok(success(result))
}

async fn put_domain_records(
    State(state): State<SharedState>,
    path: ScriptPath,
    body: Bytes,
) -> ApiResult<Response> {
    let Path((_, script)) = path.map_err(path_error)?;
    let body: Value = parse_json(&body, VALIDATION, "update domain records")?;
    let flag = |key: &str| body.get(key).and_then(Value::as_bool).unwrap_or(false);
    let override_scope = flag("override_scope");
    let override_existing_origin = flag("override_existing_origin");
    let override_dns = flag("override_existing_dns_record");
    let origins = origins_of(body.get("origins"))?;
    let created_on = state.clock.unique_micros();
    let domains = state
        .store
        .call(move |conn| {
            let transaction = conn.transaction()?;
            require_script(&transaction, &script)?;
            for origin in &origins {
                attach(
                    &transaction,
                    origin,
                    &script,
                    DEFAULT_ENVIRONMENT,
                    override_existing_origin,
                    override_dns,
                    &created_on,
                )?;
            }
            if override_scope {
                for domain in all_domains(&transaction)? {
                    let requested = origins
                        .iter()
                        .any(|origin| origin.hostname == domain.hostname);
                    if domain.service == script && !requested {
                        transaction
                            .execute("DELETE FROM worker_domains WHERE id = ?1", [&domain.id])?;
                    }
                }
            }
            let domains: Vec<Value> = all_domains(&transaction)?
                .iter()
                .filter(|domain| domain.service == script)
                .map(domain_json)
                .collect();
            transaction.commit()?;
            Ok(domains)
        })
        .await?;
    Ok(success(Value::Array(domains)))
}
