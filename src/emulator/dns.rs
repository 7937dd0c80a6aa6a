//! DNS records under `/zones/{zone_id}/dns_records`, in the shapes of the
//! current API and the official SDKs.
//!
//! - `GET` lists (page-paginated, `per_page` 1..=5000000, 100 by default)
//!   with the filters `type`, `name` / `content` (exact, or `.exact`,
//!   `.contains`, `.startswith`, `.endswith`), `proxied`, `comment.present`
//!   / `comment.absent` / `comment` / `comment.contains`, `tag`
//!   (`name:value`) / `tag.present` (a tag name), `match` (`all`, the
//!   default, or `any`), `order` (`type`, `name`, `content`, `ttl`,
//!   `proxied`) and `direction` (`asc`, `desc`).
//! - `POST` creates, `GET …/{id}` reads, `PATCH …/{id}` changes the fields
//!   given, `PUT …/{id}` replaces the record, `DELETE …/{id}` answers
//!   `{id}`.
//! - `POST …/batch` `{deletes: [{id}], patches: [{id, …}], puts: [{id, …}],
//!   posts: [{…}]}` runs deletes, then patches, puts and posts, in one
//!   transaction: all of it or nothing; it answers the four lists of
//!   records (deleted records as they were). At most 200 operations.
//!
//! A record: `{id, name, type, content, proxiable, proxied, ttl, settings,
//! meta, comment, tags, created_on, modified_on}`, plus `priority` (MX,
//! SRV), `data` (SRV `{priority, weight, port, target}`, CAA `{flags, tag,
//! value}`), `comment_modified_on` / `tags_modified_on` when set. Names
//! are stored fully qualified (`@` is the apex; a name outside the zone
//! gets the zone appended), lowercase. Proxied records have TTL 1
//! (automatic). Types: A, AAAA, CNAME, TXT, MX, SRV, CAA, NS.
//!
//! Validation as Cloudflare answers it: content by type (IPv4, IPv6, a
//! host name), TTL 1 or 60..=86400, proxying only for A, AAAA and CNAME,
//! MX needs a priority, SRV and CAA need `data` (or content in their text
//! form). A CNAME cannot share its name with another record (81053 when
//! the CNAME comes second, 81054 when it was there first); an identical
//! record is 81058; a name held by a Worker custom domain is 81062.
//!
//! Records of Workers custom domains are derived from the attached
//! domains: `AAAA 100::`, proxied, `meta.read_only: true`; those of Pages
//! domains are proxied `CNAME`s to the project's subdomain; they are listed
//! and read like the others and refuse every change (1004). Unknown
//! records are 404 81044; an unknown zone is 7003.

use std::net::{Ipv4Addr, Ipv6Addr};

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use rusqlite::{Connection, params};
use serde_json::{Map, Value, json};

use super::envelope::{
    ApiError, ApiResult, QueryMap, enum_param, int_param, paginate, query_map, success,
};
use super::workers::{Zone, find_zone, host_in_zone, unknown_zone};
use super::{API_PREFIX, SharedState};

const VALIDATION: u32 = 1004;
const INVALID_NAME: u32 = 9000;
const NOT_PROXIABLE: u32 = 9004;
const INVALID_A: u32 = 9005;
const INVALID_AAAA: u32 = 9006;
const INVALID_HOST: u32 = 9007;
const INVALID_TTL: u32 = 9021;
const INVALID_DATA: u32 = 9100;
const PRIORITY_NEEDED: u32 = 9101;
const NOT_FOUND: u32 = 81044;
const CNAME_BESIDE_OTHERS: u32 = 81053;
const CNAME_EXISTS: u32 = 81054;
const IDENTICAL: u32 = 81058;
const HELD_BY_WORKER: u32 = 81062;

/// The most operations one batch may carry.
const BATCH_LIMIT: usize = 200;
/// Page size: default, minimum, maximum.
const PER_PAGE: (i64, i64, i64) = (100, 1, 5_000_000);
const TYPES: [&str; 8] = ["A", "AAAA", "CNAME", "TXT", "MX", "SRV", "CAA", "NS"];
/// What a Worker custom domain's record points at.
const WORKER_RECORD_CONTENT: &str = "100::";

pub(crate) fn routes() -> Router<SharedState> {
    let base = format!("{API_PREFIX}/zones/{{zone_id}}/dns_records");
    Router::new()
        .route(&base, get(list_records).post(create_record))
        .route(&format!("{base}/batch"), post(batch))
        .route(
            &format!("{base}/{{record_id}}"),
            get(get_record)
                .patch(patch_record)
                .put(put_record)
                .delete(delete_record),
        )
}

type ZonePath = Result<Path<String>, PathRejection>;
type RecordPath = Result<Path<(String, String)>, PathRejection>;
type QueryParams = Result<Query<QueryMap>, QueryRejection>;

fn invalid(code: u32, message: impl Into<String>) -> ApiError {
    ApiError::bad_request(code, message)
}

fn path_error(rejection: PathRejection) -> ApiError {
    invalid(VALIDATION, format!("malformed path: {rejection}"))
}

fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, NOT_FOUND, "Record does not exist.")
}

/// A record as stored (or derived from a custom domain).
#[derive(Debug, Clone, PartialEq)]
struct Record {
    id: String,
    kind: String,
    name: String,
    content: String,
    data: Option<Value>,
    priority: Option<i64>,
    proxied: bool,
    ttl: i64,
    comment: Option<String>,
    tags: Vec<String>,
    created_on: String,
    modified_on: String,
    comment_modified_on: Option<String>,
    tags_modified_on: Option<String>,
    /// Made by a Worker custom domain: read-only.
    managed: bool,
}

impl Record {
    fn proxiable(&self) -> bool {
        matches!(self.kind.as_str(), "A" | "AAAA" | "CNAME")
    }

    fn to_json(&self) -> Value {
        let mut record = json!({
            "id": self.id,
            "name": self.name,
            "type": self.kind,
            "content": self.content,
            "proxiable": self.proxiable(),
            "proxied": self.proxied,
            "ttl": self.ttl,
            "settings": {},
            "meta": if self.managed { json!({"read_only": true}) } else { json!({}) },
            "comment": self.comment,
            "tags": self.tags,
            "created_on": self.created_on,
            "modified_on": self.modified_on,
        });
        let object = record.as_object_mut().expect("a record is an object");
        if let Some(priority) = self.priority {
            object.insert("priority".into(), json!(priority));
        }
        if let Some(data) = &self.data {
            object.insert("data".into(), data.clone());
        }
        if let Some(at) = &self.comment_modified_on {
            object.insert("comment_modified_on".into(), json!(at));
        }
        if let Some(at) = &self.tags_modified_on {
            object.insert("tags_modified_on".into(), json!(at));
        }
        record
    }
}

fn require_zone(conn: &Connection, zone_id: &str) -> ApiResult<Zone> {
    find_zone(conn, zone_id)?.ok_or_else(|| unknown_zone(zone_id))
}

/// Every record of the zone: the stored ones and the custom domains'.
fn zone_records(conn: &Connection, zone: &Zone) -> ApiResult<Vec<Record>> {
    let mut statement = conn.prepare(
        "SELECT id, type, name, content, data, priority, proxied, ttl, comment, tags,
                created_on, modified_on, comment_modified_on, tags_modified_on
         FROM dns_records WHERE zone_id = ?1",
    )?;
    let mut records = statement
        .query_map([&zone.id], |row| {
            let data: Option<String> = row.get(4)?;
            let tags: String = row.get(9)?;
            Ok(Record {
                id: row.get(0)?,
                kind: row.get(1)?,
                name: row.get(2)?,
                content: row.get(3)?,
                data: data.and_then(|text| serde_json::from_str(&text).ok()),
                priority: row.get(5)?,
                proxied: row.get(6)?,
                ttl: row.get(7)?,
                comment: row.get(8)?,
                tags: serde_json::from_str(&tags).unwrap_or_default(),
                created_on: row.get(10)?,
                modified_on: row.get(11)?,
                comment_modified_on: row.get(12)?,
                tags_modified_on: row.get(13)?,
                managed: false,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut statement =
        conn.prepare("SELECT id, hostname, created_on FROM worker_domains WHERE zone_id = ?1")?;
    let domains = statement
        .query_map([&zone.id], |row| {
            Ok(Record {
                id: row.get(0)?,
                kind: "AAAA".into(),
                name: row.get(1)?,
                content: WORKER_RECORD_CONTENT.into(),
                data: None,
                priority: None,
                proxied: true,
                ttl: 1,
                comment: None,
                tags: Vec::new(),
                created_on: row.get(2)?,
                modified_on: row.get(2)?,
                comment_modified_on: None,
                tags_modified_on: None,
                managed: true,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    records.extend(domains);
    // A Pages domain's record: a proxied CNAME to the project's subdomain.
    for domain in super::pages::zone_domains(conn, &zone.id)? {
        let created_on = domain.created_on;
        records.push(Record {
            id: domain.id,
            kind: "CNAME".into(),
            name: domain.name,
            content: format!("{}.pages.dev", domain.project),
            data: None,
            priority: None,
            proxied: true,
            ttl: 1,
            comment: None,
            tags: Vec::new(),
            created_on: created_on.clone(),
            modified_on: created_on,
            comment_modified_on: None,
            tags_modified_on: None,
            managed: true,
        });
    }
    Ok(records)
}

fn write_record(conn: &Connection, zone: &Zone, record: &Record) -> ApiResult<()> {
    conn.execute(
        "INSERT OR REPLACE INTO dns_records (id, zone_id, type, name, content, data, priority,
             proxied, ttl, comment, tags, created_on, modified_on, comment_modified_on,
             tags_modified_on)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
        params![
            record.id,
            zone.id,
            record.kind,
            record.name,
            record.content,
            record.data.as_ref().map(Value::to_string),
            record.priority,
            record.proxied,
            record.ttl,
            record.comment,
            serde_json::to_string(&record.tags).map_err(ApiError::internal)?,
            record.created_on,
            record.modified_on,
            record.comment_modified_on,
            record.tags_modified_on,
        ],
    )?;
    Ok(())
}

/// The fully qualified, lowercase form of a record name in `zone`.
fn qualify(name: &str, zone: &str) -> ApiResult<String> {
    let name = name.trim().trim_end_matches('.').to_ascii_lowercase();
    let name = if name == "@" || name.is_empty() {
        zone.to_string()
    } else if host_in_zone(&name, zone) {
        name
    } else {
        format!("{name}.{zone}")
    };
    let label_ok = |(index, label): (usize, &str)| {
        (index == 0 && label == "*")
            || (!label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'
                }))
    };
    if name.len() > 253 || !name.split('.').enumerate().all(label_ok) {
        return Err(invalid(
            INVALID_NAME,
            format!("DNS name is invalid: {name:?}"),
        ));
    }
    Ok(name)
}

fn host_name(content: &str) -> Option<String> {
    let host = content.trim().trim_end_matches('.').to_ascii_lowercase();
    let ok = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    ok.then_some(host)
}

fn text_field(body: &Map<String, Value>, key: &str) -> ApiResult<Option<String>> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(other) => Err(invalid(
            VALIDATION,
            format!("{key} must be a string, got {other}"),
        )),
    }
}

fn int_field(value: Option<&Value>, key: &str, min: i64, max: i64) -> ApiResult<Option<i64>> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(value) => match value.as_i64().or_else(|| {
            value
                .as_f64()
                .filter(|f| f.fract() == 0.0)
                .map(|f| f as i64)
        }) {
            Some(n) if (min..=max).contains(&n) => Ok(Some(n)),
            _ => Err(invalid(
                INVALID_DATA,
                format!("{key} must be an integer from {min} to {max}, got {value}"),
            )),
        },
    }
}

/// An SRV record's `data` (or its content, `weight port target`, with the
/// priority beside it): the stored data, content and priority.
fn srv(
    data: Option<&Map<String, Value>>,
    content: Option<&str>,
    priority: Option<i64>,
) -> ApiResult<(Value, String, i64)> {
    let (priority, weight, port, target) = match (data, content) {
        (Some(data), _) => (
            int_field(data.get("priority"), "data.priority", 0, 65_535)?,
            int_field(data.get("weight"), "data.weight", 0, 65_535)?,
            int_field(data.get("port"), "data.port", 0, 65_535)?,
            data.get("target")
                .and_then(Value::as_str)
                .map(str::to_owned),
        ),
        (None, Some(content)) => {
            let parts: Vec<&str> = content.split_whitespace().collect();
            let number = |text: &str, key: &str| {
                int_field(
                    Some(&json!(text.parse::<i64>().unwrap_or(-1))),
                    key,
                    0,
                    65_535,
                )
            };
            match parts.as_slice() {
                [weight, port, target] => (
                    priority,
                    number(weight, "weight")?,
                    number(port, "port")?,
                    Some((*target).to_owned()),
                ),
                _ => {
                    return Err(invalid(
                        INVALID_DATA,
                        "SRV content must be `weight port target` (or give data)",
                    ));
                }
            }
        }
        (None, None) => return Err(invalid(INVALID_DATA, "an SRV record needs data")),
    };
    let (Some(priority), Some(weight), Some(port), Some(target)) = (priority, weight, port, target)
    else {
        return Err(invalid(
            INVALID_DATA,
            "SRV data needs priority, weight, port and target",
        ));
    };
    let Some(target) = host_name(&target) else {
        return Err(invalid(
            INVALID_HOST,
            format!("SRV target {target:?} is not a host name"),
        ));
    };
    Ok((
        json!({"priority": priority, "weight": weight, "port": port, "target": target}),
        format!("{weight} {port} {target}"),
        priority,
    ))
}

/// A CAA record's `data` (or content `flags tag "value"`).
fn caa(data: Option<&Map<String, Value>>, content: Option<&str>) -> ApiResult<(Value, String)> {
    let (flags, tag, value) = match (data, content) {
        (Some(data), _) => (
            int_field(data.get("flags"), "data.flags", 0, 255)?,
            data.get("tag").and_then(Value::as_str).map(str::to_owned),
            data.get("value").and_then(Value::as_str).map(str::to_owned),
        ),
        (None, Some(content)) => {
            let mut parts = content.splitn(3, ' ');
            let flags = parts.next().and_then(|f| f.parse::<i64>().ok());
            let tag = parts.next().map(str::to_owned);
            let value = parts.next().map(|v| v.trim_matches('"').to_owned());
            (flags.filter(|f| (0..=255).contains(f)), tag, value)
        }
        (None, None) => return Err(invalid(INVALID_DATA, "a CAA record needs data")),
    };
    let (Some(flags), Some(tag), Some(value)) = (flags, tag, value) else {
        return Err(invalid(INVALID_DATA, "CAA data needs flags, tag and value"));
    };
    if !matches!(tag.as_str(), "issue" | "issuewild" | "iodef") {
        return Err(invalid(
            INVALID_DATA,
            format!("CAA tag must be issue, issuewild or iodef, got {tag:?}"),
        ));
    }
    Ok((
        json!({"flags": flags, "tag": tag, "value": value}),
        format!("{flags} {tag} \"{value}\""),
    ))
}

/// Builds a record from a request body: the whole record (`base` None,
/// `POST` and `PUT`) or the fields given over `base` (`PATCH`).
fn build(
    body: &Map<String, Value>,
    zone: &Zone,
    base: Option<&Record>,
    id: String,
    now: &str,
) -> ApiResult<Record> {
    let given = |key: &str| body.contains_key(key);
    let kind = match text_field(body, "type")? {
        Some(kind) => kind.to_ascii_uppercase(),
        None => match base {
            Some(base) => base.kind.clone(),
            None => {
                return Err(invalid(
                    VALIDATION,
                    "DNS Validation Error: type is required",
                ));
            }
        },
    };
    if !TYPES.contains(&kind.as_str()) {
        return Err(invalid(
            VALIDATION,
            format!("DNS Validation Error: unsupported record type {kind:?}"),
        ));
    }
    let name = match text_field(body, "name")? {
        Some(name) => qualify(&name, &zone.name)?,
        None => match base {
            Some(base) => base.name.clone(),
            None => {
                return Err(invalid(
                    INVALID_NAME,
                    "DNS name is invalid: name is required",
                ));
            }
        },
    };
    let type_changed = base.is_some_and(|b| b.kind != kind);
    // Content and data go together: given ones win, else the base's (when
    // the type is the same).
    let keep = |f: fn(&Record) -> Option<String>| base.filter(|_| !type_changed).and_then(f);
    let content_given = text_field(body, "content")?;
    let data_given = match body.get("data") {
        None | Some(Value::Null) => None,
        Some(Value::Object(data)) => Some(data.clone()),
        Some(other) => {
            return Err(invalid(
                INVALID_DATA,
                format!("data must be an object, got {other}"),
            ));
        }
    };
    let priority_given = int_field(body.get("priority"), "priority", 0, 65_535)?;
    let base_data = base
        .filter(|_| !type_changed && content_given.is_none() && data_given.is_none())
        .and_then(|b| b.data.as_ref())
        .and_then(Value::as_object)
        .cloned();
    let content_text = content_given
        .clone()
        .or_else(|| keep(|b| Some(b.content.clone())));
    let mut priority =
        priority_given.or_else(|| base.filter(|_| !type_changed).and_then(|b| b.priority));
    let (content, data) = match kind.as_str() {
        "A" => {
            let text = content_text.unwrap_or_default();
            match text.trim().parse::<Ipv4Addr>() {
                Ok(ip) => (ip.to_string(), None),
                Err(_) => {
                    return Err(invalid(
                        INVALID_A,
                        format!("Content for A record must be a valid IPv4 address, got {text:?}"),
                    ));
                }
            }
        }
        "AAAA" => {
            let text = content_text.unwrap_or_default();
            match text.trim().parse::<Ipv6Addr>() {
                Ok(ip) => (ip.to_string(), None),
                Err(_) => {
                    return Err(invalid(
                        INVALID_AAAA,
                        format!(
                            "Content for AAAA record must be a valid IPv6 address, got {text:?}"
                        ),
                    ));
                }
            }
        }
        "CNAME" | "NS" | "MX" => {
            let text = content_text.unwrap_or_default();
            let Some(host) = host_name(&text) else {
                return Err(invalid(
                    INVALID_HOST,
                    format!("Content for {kind} record must be a host name, got {text:?}"),
                ));
            };
            (host, None)
        }
        "TXT" => {
            let text = content_text.unwrap_or_default();
            if text.is_empty() || text.len() > 2048 {
                return Err(invalid(
                    VALIDATION,
                    "Content for TXT record must be 1 to 2048 characters",
                ));
            }
            (text, None)
        }
        "SRV" => {
            let data = data_given.as_ref().or(base_data.as_ref());
            let content = if data.is_some() {
                None
            } else {
                content_given.as_deref()
            };
            let (data, content, srv_priority) = srv(data, content, priority)?;
            priority = Some(srv_priority);
            (content, Some(data))
        }
        "CAA" => {
            let data = data_given.as_ref().or(base_data.as_ref());
            let content = if data.is_some() {
                None
            } else {
                content_given.as_deref()
            };
            let (data, content) = caa(data, content)?;
            (content, Some(data))
        }
        _ => unreachable!("checked against TYPES"),
    };
    if kind == "MX" && priority.is_none() {
        return Err(invalid(
            PRIORITY_NEEDED,
            "Priority must be set for MX record",
        ));
    }
    if !matches!(kind.as_str(), "MX" | "SRV") {
        priority = None;
    }
    let proxied = match body.get("proxied") {
        None | Some(Value::Null) => base.is_some_and(|b| b.proxied) && !type_changed,
        Some(Value::Bool(flag)) => *flag,
        Some(other) => {
            return Err(invalid(
                VALIDATION,
                format!("proxied must be a boolean, got {other}"),
            ));
        }
    };
    if proxied && !matches!(kind.as_str(), "A" | "AAAA" | "CNAME") {
        return Err(invalid(
            NOT_PROXIABLE,
            format!("This record type cannot be proxied: {kind}"),
        ));
    }
    let ttl = match int_field(body.get("ttl"), "ttl", 1, 86_400).map_err(|_| ttl_error(body))? {
        Some(ttl) => ttl,
        None => base.map_or(1, |b| b.ttl),
    };
    if ttl != 1 && !(60..=86_400).contains(&ttl) {
        return Err(ttl_error(body));
    }
    let ttl = if proxied { 1 } else { ttl };
    let comment = if given("comment") {
        text_field(body, "comment")?.filter(|c| !c.is_empty())
    } else {
        base.and_then(|b| b.comment.clone())
    };
    if comment.as_ref().is_some_and(|c| c.chars().count() > 100) {
        return Err(invalid(VALIDATION, "comment: at most 100 characters"));
    }
    let tags = if given("tags") {
        match body.get("tags") {
            Some(Value::Array(items)) => {
                let mut tags = Vec::new();
                for item in items {
                    match item.as_str() {
                        Some(tag) if !tag.is_empty() && !tag.starts_with(':') => {
                            tags.push(tag.to_owned());
                        }
                        _ => {
                            return Err(invalid(
                                VALIDATION,
                                format!("tags must be strings `name:value`, got {item}"),
                            ));
                        }
                    }
                }
                tags.sort();
                tags.dedup();
                tags
            }
            Some(Value::Null) => Vec::new(),
            Some(other) => {
                return Err(invalid(
                    VALIDATION,
                    format!("tags must be an array, got {other}"),
                ));
            }
            None => Vec::new(),
        }
    } else {
        base.map(|b| b.tags.clone()).unwrap_or_default()
    };
    let comment_modified_on = match base {
        Some(b) if b.comment == comment => b.comment_modified_on.clone(),
        _ => comment.as_ref().map(|_| now.to_string()),
    };
    let tags_modified_on = match base {
        Some(b) if b.tags == tags => b.tags_modified_on.clone(),
        _ => (!tags.is_empty()).then(|| now.to_string()),
    };
    Ok(Record {
        id,
        kind,
        name,
        content,
        data,
        priority,
        proxied,
        ttl,
        comment,
        tags,
        created_on: base.map_or_else(|| now.to_string(), |b| b.created_on.clone()),
        modified_on: now.to_string(),
        comment_modified_on,
        tags_modified_on,
        managed: false,
    })
}

fn ttl_error(body: &Map<String, Value>) -> ApiError {
    invalid(
        INVALID_TTL,
        format!(
            "Invalid TTL {}: must be between 60 and 86400 seconds, or 1 for Automatic",
            body.get("ttl").unwrap_or(&Value::Null)
        ),
    )
}

/// Refuses `record` beside the zone's other records (`records` without it).
fn check_conflicts(records: &[Record], record: &Record) -> ApiResult<()> {
    let same_name = records
        .iter()
        .filter(|other| other.id != record.id && other.name == record.name);
    for other in same_name {
        if other.managed {
            return Err(ApiError::bad_request(
                HELD_BY_WORKER,
                format!(
                    "A DNS record managed by Workers already exists on that host: {}",
                    record.name
                ),
            ));
        }
        if record.kind == "CNAME" {
            return Err(invalid(
                CNAME_BESIDE_OTHERS,
                format!(
                    "An A, AAAA, or CNAME record with that host already exists: {} has a {} record; a CNAME cannot share its name",
                    record.name, other.kind
                ),
            ));
        }
        if other.kind == "CNAME" {
            return Err(invalid(
                CNAME_EXISTS,
                format!(
                    "A CNAME record with that host already exists: {}",
                    record.name
                ),
            ));
        }
        if other.kind == record.kind && other.content == record.content && other.data == record.data
        {
            return Err(invalid(
                IDENTICAL,
                format!(
                    "An identical record already exists: {} {} {}",
                    record.kind, record.name, record.content
                ),
            ));
        }
    }
    Ok(())
}

fn body_object(body: &[u8], what: &str) -> ApiResult<Map<String, Value>> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(invalid(
            VALIDATION,
            format!("{what}: the body must be a JSON object"),
        )),
        Err(error) => Err(invalid(
            VALIDATION,
            format!("{what}: malformed JSON body: {error}"),
        )),
    }
}

fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// The operations of a batch (or of one single-record call).
#[derive(Default)]
struct Batch {
    deletes: Vec<String>,
    patches: Vec<(String, Map<String, Value>)>,
    puts: Vec<(String, Map<String, Value>)>,
    posts: Vec<Map<String, Value>>,
}

#[derive(Default)]
struct BatchResult {
    deletes: Vec<Record>,
    patches: Vec<Record>,
    puts: Vec<Record>,
    posts: Vec<Record>,
}

fn editable<'a>(records: &'a [Record], id: &str) -> ApiResult<(usize, &'a Record)> {
    let (index, record) = records
        .iter()
        .enumerate()
        .find(|(_, r)| r.id == id)
        .ok_or_else(not_found)?;
    if record.managed {
        return Err(invalid(
            VALIDATION,
            format!(
                "This record is managed by Workers ({}): change it through the Worker's custom domain",
                record.name
            ),
        ));
    }
    Ok((index, record))
}

/// Runs `batch` on the zone in one transaction: all of it, or nothing.
fn run_batch(
    conn: &mut Connection,
    zone_id: &str,
    batch: Batch,
    now: &str,
) -> ApiResult<BatchResult> {
    let transaction = conn.transaction()?;
    let zone = require_zone(&transaction, zone_id)?;
    let mut records = zone_records(&transaction, &zone)?;
    let mut result = BatchResult::default();
    for id in &batch.deletes {
        let (index, _) = editable(&records, id)?;
        let record = records.remove(index);
        transaction.execute("DELETE FROM dns_records WHERE id = ?1", [&record.id])?;
        result.deletes.push(record);
    }
    for (replace, changes, out) in [
        (false, &batch.patches, &mut result.patches),
        (true, &batch.puts, &mut result.puts),
    ] {
        for (id, body) in changes {
            let (index, current) = editable(&records, id)?;
            let base = if replace {
                // A PUT keeps only the record's identity and creation time.
                Record {
                    comment: None,
                    tags: Vec::new(),
                    proxied: false,
                    ttl: 1,
                    priority: None,
                    data: None,
                    ..current.clone()
                }
            } else {
                current.clone()
            };
            if replace
                && let Some(key) = ["type", "name"]
                    .into_iter()
                    .find(|k| !body.contains_key(*k))
            {
                return Err(invalid(
                    VALIDATION,
                    format!("DNS Validation Error: {key} is required"),
                ));
            }
            let record = build(body, &zone, Some(&base), id.clone(), now)?;
            check_conflicts(&records, &record)?;
            write_record(&transaction, &zone, &record)?;
            records[index] = record.clone();
            out.push(record);
        }
    }
    for body in &batch.posts {
        let record = build(body, &zone, None, new_id(), now)?;
        check_conflicts(&records, &record)?;
        write_record(&transaction, &zone, &record)?;
        records.push(record.clone());
        result.posts.push(record);
    }
    transaction.commit()?;
    Ok(result)
}

async fn run(state: &SharedState, zone_id: String, batch: Batch) -> ApiResult<BatchResult> {
    let now = state.clock.unique_micros();
    state
        .store
        .call(move |conn| run_batch(conn, &zone_id, batch, &now))
        .await
}

fn text_filter(query: &QueryMap, key: &str, value: &str) -> Option<bool> {
    let value = value.to_ascii_lowercase();
    let mut result = None;
    let mut and = |ok: bool| result = Some(result.unwrap_or(true) && ok);
    for (suffix, test) in [
        ("", (|v: &str, f: &str| v == f) as fn(&str, &str) -> bool),
        (".exact", |v, f| v == f),
        (".contains", |v, f| v.contains(f)),
        (".startswith", |v, f| v.starts_with(f)),
        (".endswith", |v, f| v.ends_with(f)),
    ] {
        if let Some(filter) = query
            .get(&format!("{key}{suffix}"))
            .filter(|f| !f.is_empty())
        {
            and(test(&value, &filter.to_ascii_lowercase()));
        }
    }
    result
}

/// Whether `record` passes the list's filters (`None` when none applies).
fn filters(query: &QueryMap, zone: &Zone, record: &Record) -> ApiResult<Option<bool>> {
    let mut results = Vec::new();
    if let Some(kind) = query.get("type").filter(|t| !t.is_empty()) {
        results.push(record.kind.eq_ignore_ascii_case(kind));
    }
    // A name filter is qualified like a record's name.
    if let Some(name) = query.get("name").filter(|n| !n.is_empty()) {
        results.push(record.name == qualify(name, &zone.name)?);
    }
    let mut rest = query.clone();
    rest.remove("name");
    results.extend(text_filter(&rest, "name", &record.name));
    results.extend(text_filter(query, "content", &record.content));
    if let Some(proxied) = query.get("proxied").filter(|p| !p.is_empty()) {
        results.push(record.proxied.to_string() == *proxied);
    }
    if query.contains_key("comment.present") {
        results.push(record.comment.is_some());
    }
    if query.contains_key("comment.absent") {
        results.push(record.comment.is_none());
    }
    let comment = record.comment.clone().unwrap_or_default();
    results.extend(text_filter(query, "comment", &comment));
    if let Some(tag) = query.get("tag").filter(|t| !t.is_empty()) {
        results.push(record.tags.iter().any(|t| t == tag));
    }
    if let Some(tag) = query.get("tag.present").filter(|t| !t.is_empty()) {
        results.push(
            record
                .tags
                .iter()
                .any(|t| t.split(':').next() == Some(tag.as_str())),
        );
    }
    if results.is_empty() {
        return Ok(None);
    }
    let any = query.get("match").is_some_and(|m| m == "any");
    Ok(Some(if any {
        results.iter().any(|ok| *ok)
    } else {
        results.iter().all(|ok| *ok)
    }))
}

async fn list_records(
    State(state): State<SharedState>,
    path: ZonePath,
    query: QueryParams,
) -> ApiResult<Response> {
    let Path(zone_id) = path.map_err(path_error)?;
    let query = query_map(query, VALIDATION)?;
    let page = int_param(&query, "page", 1, 1, i64::MAX, VALIDATION)?;
    let (default, min, max) = PER_PAGE;
    let per_page = int_param(&query, "per_page", default, min, max, VALIDATION)?;
    enum_param(&query, "match", &["all", "any"], VALIDATION)?;
    let order = enum_param(
        &query,
        "order",
        &["type", "name", "content", "ttl", "proxied"],
        VALIDATION,
    )?
    .unwrap_or("type")
    .to_string();
    let descending = enum_param(&query, "direction", &["asc", "desc"], VALIDATION)? == Some("desc");
    let records = state
        .store
        .call(move |conn| {
            let zone = require_zone(conn, &zone_id)?;
            let mut kept = Vec::new();
            for record in zone_records(conn, &zone)? {
                if filters(&query, &zone, &record)?.unwrap_or(true) {
                    kept.push(record);
                }
            }
            Ok(kept)
        })
        .await?;
    let mut records = records;
    records.sort_by(|a, b| {
        let key = |r: &Record| match order.as_str() {
            "name" => (r.name.clone(), String::new()),
            "content" => (r.content.clone(), String::new()),
            "ttl" => (format!("{:010}", r.ttl), String::new()),
            "proxied" => (r.proxied.to_string(), String::new()),
            _ => (r.kind.clone(), String::new()),
        };
        key(a)
            .cmp(&key(b))
            .then_with(|| a.name.cmp(&b.name))
            .then_with(|| a.kind.cmp(&b.kind))
            .then_with(|| a.content.cmp(&b.content))
            .then_with(|| a.id.cmp(&b.id))
    });
    if descending {
        records.reverse();
    }
    Ok(paginate(
        records.iter().map(Record::to_json).collect(),
        page,
        per_page,
    ))
}

async fn create_record(
    State(state): State<SharedState>,
    path: ZonePath,
    body: Bytes,
) -> ApiResult<Response> {
    let Path(zone_id) = path.map_err(path_error)?;
    let body = body_object(&body, "create DNS record")?;
    let batch = Batch {
        posts: vec![body],
        ..Batch::default()
    };
    let mut result = run(&state, zone_id, batch).await?;
    Ok(success(result.posts.remove(0).to_json()))
}

async fn get_record(State(state): State<SharedState>, path: RecordPath) -> ApiResult<Response> {
    let Path((zone_id, id)) = path.map_err(path_error)?;
    let record = state
        .store
        .call(move |conn| {
            let zone = require_zone(conn, &zone_id)?;
            zone_records(conn, &zone)?
                .into_iter()
                .find(|r| r.id == id)
                .ok_or_else(not_found)
        })
        .await?;
    Ok(success(record.to_json()))
}

async fn patch_record(
    State(state): State<SharedState>,
    path: RecordPath,
    body: Bytes,
) -> ApiResult<Response> {
    let Path((zone_id, id)) = path.map_err(path_error)?;
    let body = body_object(&body, "update DNS record")?;
    let batch = Batch {
        patches: vec![(id, body)],
        ..Batch::default()
    };
    let mut result = run(&state, zone_id, batch).await?;
    Ok(success(result.patches.remove(0).to_json()))
}

async fn put_record(
    State(state): State<SharedState>,
    path: RecordPath,
    body: Bytes,
) -> ApiResult<Response> {
    let Path((zone_id, id)) = path.map_err(path_error)?;
    let body = body_object(&body, "overwrite DNS record")?;
    let batch = Batch {
        puts: vec![(id, body)],
        ..Batch::default()
    };
    let mut result = run(&state, zone_id, batch).await?;
    Ok(success(result.puts.remove(0).to_json()))
}

async fn delete_record(State(state): State<SharedState>, path: RecordPath) -> ApiResult<Response> {
    let Path((zone_id, id)) = path.map_err(path_error)?;
    let batch = Batch {
        deletes: vec![id],
        ..Batch::default()
    };
    let mut result = run(&state, zone_id, batch).await?;
    Ok(success(json!({ "id": result.deletes.remove(0).id })))
}

fn operations(body: &Map<String, Value>, key: &str) -> ApiResult<Vec<Map<String, Value>>> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::Object(map) => Ok(map.clone()),
                other => Err(invalid(
                    VALIDATION,
                    format!("{key}: each operation must be an object, got {other}"),
                )),
            })
            .collect(),
        Some(other) => Err(invalid(
            VALIDATION,
            format!("{key} must be an array, got {other}"),
        )),
    }
}

fn with_id(
    mut operation: Map<String, Value>,
    key: &str,
) -> ApiResult<(String, Map<String, Value>)> {
    match operation.remove("id") {
        Some(Value::String(id)) => Ok((id, operation)),
        _ => Err(invalid(
            VALIDATION,
            format!("{key}: each operation needs a string id"),
        )),
    }
}

async fn batch(
    State(state): State<SharedState>,
    path: ZonePath,
    body: Bytes,
) -> ApiResult<Response> {
    let Path(zone_id) = path.map_err(path_error)?;
    let body = body_object(&body, "batch DNS records")?;
    let deletes = operations(&body, "deletes")?
        .into_iter()
        .map(|op| with_id(op, "deletes").map(|(id, _)| id))
        .collect::<ApiResult<Vec<_>>>()?;
    let patches = operations(&body, "patches")?
        .into_iter()
        .map(|op| with_id(op, "patches"))
        .collect::<ApiResult<Vec<_>>>()?;
    let puts = operations(&body, "puts")?
        .into_iter()
        .map(|op| with_id(op, "puts"))
        .collect::<ApiResult<Vec<_>>>()?;
    let posts = operations(&body, "posts")?;
    let count = deletes.len() + patches.len() + puts.len() + posts.len();
    if count > BATCH_LIMIT {
        return Err(invalid(
            VALIDATION,
            format!("a batch holds at most {BATCH_LIMIT} operations, got {count}"),
        ));
    }
    let result = run(
        &state,
        zone_id,
        Batch {
            deletes,
            patches,
            puts,
            posts,
        },
    )
    .await?;
    let list = |records: &[Record]| Value::Array(records.iter().map(Record::to_json).collect());
    Ok(success(json!({
        "deletes": list(&result.deletes),
        "patches": list(&result.patches),
        "puts": list(&result.puts),
        "posts": list(&result.posts),
    })))
}
