//! Pages projects under `/accounts/{account_id}/pages/projects`, and the
//! Direct Upload protocol `wrangler pages deploy` speaks.
//!
//! - Projects: list (page-paginated), create (`{name, production_branch,
//!   deployment_configs?}`), get, patch (`production_branch`), delete (with
//!   its deployments and domains). A project is `{id, name, subdomain
//!   (<name>.pages.dev), domains, production_branch, created_on,
//!   canonical_deployment, latest_deployment, deployment_configs,
//!   build_config, source: null, …}`.
//! - `GET …/projects/{name}/upload-token` answers `{jwt}`: a token for the
//!   asset endpoints (`exp` one hour ahead on the emulator's clock,
//!   `max_file_count_allowed`), signed by the emulator.
//! - Assets, authorized by that token instead of the API token:
//!   `POST /pages/assets/check-missing` `{hashes}` answers the hashes not
//!   stored; `POST /pages/assets/upload` `[{key, value (base64), metadata:
//!   {contentType}, base64: true}]` stores them; `POST
//!   /pages/assets/upsert-hashes` `{hashes}` (every hash must be stored).
//! - Deployments: `POST …/deployments` (multipart: `manifest` `{"/path":
//!   hash}`, `branch`, `commit_message`, `commit_hash`, `commit_dirty`;
//!   every hash must have been uploaded) makes a deployment: production
//!   when the branch is absent or the production branch (it becomes the
//!   canonical one), else preview. List (newest first, `env` filter,
//!   paginated), get, delete (not the canonical production deployment),
//!   `POST …/deployments/{id}/rollback` (a successful production deployment
//!   becomes the canonical one again).
//! - Domains: list, add (`{name}`), get, delete. A domain in one of the
//!   account's zones gets a read-only proxied `CNAME` to the project's
//!   subdomain among the zone's DNS records (see `dns`).
//!
//! Errors: 8000007 unknown project (404), 8000009 unknown deployment (404),
//! 8000002 a project name taken (409), 8000000 validation (400), 8000096 a
//! manifest naming an asset never uploaded (400), 8000034 deleting the
//! canonical production deployment (400), 8000018 unknown domain (404),
//! 10000 a missing or invalid upload token (401).

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use base64::Engine as _;
use rusqlite::{Connection, OptionalExtension as _, params};
use serde_json::{Map, Value, json};
use sha2::Digest as _;

use super::envelope::{ApiError, ApiResult, QueryMap, int_param, paginate, query_map, success};
use super::{API_PREFIX, SharedState};

const VALIDATION: u32 = 8000000;
const NAME_TAKEN: u32 = 8000002;
const PROJECT_NOT_FOUND: u32 = 8000007;
const DEPLOYMENT_NOT_FOUND: u32 = 8000009;
const DOMAIN_NOT_FOUND: u32 = 8000018;
const ACTIVE_DEPLOYMENT: u32 = 8000034;
const MISSING_ASSET: u32 = 8000096;
const BAD_TOKEN: u32 = 10000;

/// Files one deployment may hold (the free plan's limit).
const MAX_FILES: i64 = 20_000;
/// Page size: default, minimum, maximum.
const PER_PAGE: (i64, i64, i64) = (25, 1, 1000);

pub(crate) fn routes() -> Router<SharedState> {
    let base = format!("{API_PREFIX}/accounts/{{account_id}}/pages/projects");
    let assets = format!("{API_PREFIX}/pages/assets");
    Router::new()
        .route(&base, get(list_projects).post(create_project))
        .route(
            &format!("{base}/{{project_name}}"),
            get(get_project).patch(patch_project).delete(delete_project),
        )
        .route(
            &format!("{base}/{{project_name}}/upload-token"),
            get(upload_token),
        )
        .route(
            &format!("{base}/{{project_name}}/deployments"),
            get(list_deployments).post(create_deployment),
        )
        .route(
            &format!("{base}/{{project_name}}/deployments/{{deployment_id}}"),
            get(get_deployment).delete(delete_deployment),
        )
        .route(
            &format!("{base}/{{project_name}}/deployments/{{deployment_id}}/rollback"),
            post(rollback),
        )
        .route(
            &format!("{base}/{{project_name}}/domains"),
            get(list_domains).post(add_domain),
        )
        .route(
            &format!("{base}/{{project_name}}/domains/{{domain_name}}"),
            get(get_domain).delete(delete_domain),
        )
        .route(&format!("{assets}/check-missing"), post(check_missing))
        .route(&format!("{assets}/upload"), post(upload_assets))
        .route(&format!("{assets}/upsert-hashes"), post(upsert_hashes))
}

type ProjectPath = Result<Path<(String, String)>, PathRejection>;
type ItemPath = Result<Path<(String, String, String)>, PathRejection>;
type QueryParams = Result<Query<QueryMap>, QueryRejection>;

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(VALIDATION, message)
}

fn path_error(rejection: PathRejection) -> ApiError {
    invalid(format!("malformed path: {rejection}"))
}

fn project_not_found(name: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        PROJECT_NOT_FOUND,
        format!(
            "Project not found. The specified project name does not match any of your existing projects: {name}"
        ),
    )
}

fn deployment_not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        DEPLOYMENT_NOT_FOUND,
        "Deployment not found.",
    )
}

fn body_object(body: &[u8], what: &str) -> ApiResult<Map<String, Value>> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(invalid(format!("{what}: the body must be a JSON object"))),
        Err(error) => Err(invalid(format!("{what}: malformed JSON body: {error}"))),
    }
}

/// Project names: 1-58 lowercase letters, digits and `-`, not starting or
/// ending with `-`.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 58
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

struct Project {
    id: String,
    name: String,
    production_branch: String,
    created_on: String,
    canonical: Option<String>,
    configs: String,
}

fn find_project(conn: &Connection, name: &str) -> ApiResult<Option<Project>> {
    Ok(conn
        .query_row(
            "SELECT id, name, production_branch, created_on, canonical_deployment, deployment_configs
             FROM pages_projects WHERE name = ?1",
            [name],
            |row| {
                Ok(Project {
                    id: row.get(0)?,
                    name: row.get(1)?,
                    production_branch: row.get(2)?,
                    created_on: row.get(3)?,
                    canonical: row.get(4)?,
                    configs: row.get(5)?,
                })
            },
        )
        .optional()?)
}

fn require_project(conn: &Connection, name: &str) -> ApiResult<Project> {
    find_project(conn, name)?.ok_or_else(|| project_not_found(name))
}

struct Deployment {
    id: String,
    project: String,
    project_id: String,
    environment: String,
    branch: String,
    commit_hash: String,
    commit_message: String,
    commit_dirty: bool,
    created_on: String,
}

const DEPLOYMENT_COLUMNS: &str = "d.id, d.project, p.id, d.environment, d.branch, d.commit_hash,
     d.commit_message, d.commit_dirty, d.created_on";

fn deployment_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Deployment> {
    Ok(Deployment {
        id: row.get(0)?,
        project: row.get(1)?,
        project_id: row.get(2)?,
        environment: row.get(3)?,
        branch: row.get(4)?,
        commit_hash: row.get(5)?,
        commit_message: row.get(6)?,
        commit_dirty: row.get(7)?,
        created_on: row.get(8)?,
    })
}

fn deployments_of(conn: &Connection, project: &str) -> ApiResult<Vec<Deployment>> {
    let mut statement = conn.prepare(&format!(
        "SELECT {DEPLOYMENT_COLUMNS} FROM pages_deployments d
         JOIN pages_projects p ON p.name = d.project
         WHERE d.project = ?1 ORDER BY d.seq DESC"
    ))?;
    let rows = statement
        .query_map([project], deployment_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

fn find_deployment(conn: &Connection, project: &str, id: &str) -> ApiResult<Deployment> {
    deployments_of(conn, project)?
        .into_iter()
        .find(|d| d.id == id)
        .ok_or_else(deployment_not_found)
}

fn deployment_json(deployment: &Deployment, production_branch: &str) -> Value {
    let short_id = &deployment.id[..8];
    let host = format!("{}.pages.dev", deployment.project);
    let stage = |name: &str| {
        json!({
            "name": name,
            "status": "success",
            "started_on": deployment.created_on,
            "ended_on": deployment.created_on,
        })
    };
    let mut aliases = Vec::new();
    if deployment.environment == "preview" {
        aliases.push(format!(
            "https://{}.{host}",
            deployment.branch.replace(['/', '_', '.'], "-")
        ));
    }
    json!({
        "id": deployment.id,
        "short_id": short_id,
        "project_id": deployment.project_id,
        "project_name": deployment.project,
        "environment": deployment.environment,
        "url": format!("https://{short_id}.{host}"),
        "created_on": deployment.created_on,
        "modified_on": deployment.created_on,
        "aliases": aliases,
        "latest_stage": stage("deploy"),
        "stages": [stage("queued"), stage("initialize"), stage("clone_repo"), stage("build"), stage("deploy")],
        "deployment_trigger": {
            "type": "ad_hoc",
            "metadata": {
                "branch": deployment.branch,
                "commit_hash": deployment.commit_hash,
                "commit_message": deployment.commit_message,
                "commit_dirty": deployment.commit_dirty,
            },
        },
        "build_config": {
            "build_caching": false,
            "build_command": "",
            "destination_dir": "",
            "root_dir": "",
            "web_analytics_tag": null,
            "web_analytics_token": null,
        },
        "env_vars": {},
        "is_skipped": false,
        "source": null,
        "production_branch": production_branch,
        "uses_functions": false,
    })
}

/// A custom domain of a project.
pub(crate) struct Domain {
    pub id: String,
    pub name: String,
    pub project: String,
    pub zone_id: String,
    pub created_on: String,
}

/// The domains whose `column` (`project` or `zone_id`) is `value`, by name.
fn domains_where(conn: &Connection, column: &str, value: &str) -> ApiResult<Vec<Domain>> {
    let mut statement = conn.prepare(&format!(
        "SELECT id, name, project, zone_id, created_on FROM pages_domains
         WHERE {column} = ?1 ORDER BY name"
    ))?;
    let rows = statement
        .query_map([value], |row| {
            Ok(Domain {
                id: row.get(0)?,
                name: row.get(1)?,
                project: row.get(2)?,
                zone_id: row.get(3)?,
                created_on: row.get(4)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

fn domains_of(conn: &Connection, project: &str) -> ApiResult<Vec<Domain>> {
    domains_where(conn, "project", project)
}

fn project_json(conn: &Connection, project: &Project) -> ApiResult<Value> {
    let deployments = deployments_of(conn, &project.name)?;
    let canonical = project
        .canonical
        .as_ref()
        .and_then(|id| deployments.iter().find(|d| &d.id == id))
        .map(|d| deployment_json(d, &project.production_branch));
    let latest = deployments
        .first()
        .map(|d| deployment_json(d, &project.production_branch));
    let subdomain = format!("{}.pages.dev", project.name);
    let mut domains = vec![subdomain.clone()];
    domains.extend(domains_of(conn, &project.name)?.into_iter().map(|d| d.name));
    let configs: Value = serde_json::from_str(&project.configs).unwrap_or_else(|_| json!({}));
    let config = |environment: &str| {
        let mut config = json!({
            "always_use_latest_compatibility_date": false,
            "build_image_major_version": 3,
            "compatibility_date": "2024-01-01",
            "compatibility_flags": [],
            "fail_open": true,
            "usage_model": "standard",
        });
        if let (Some(target), Some(given)) = (
            config.as_object_mut(),
            configs.get(environment).and_then(Value::as_object),
        ) {
            for (key, value) in given {
                target.insert(key.clone(), value.clone());
            }
        }
        config
    };
    Ok(json!({
        "id": project.id,
        "name": project.name,
        "subdomain": subdomain,
        "domains": domains,
        "production_branch": project.production_branch,
        "created_on": project.created_on,
        "canonical_deployment": canonical,
        "latest_deployment": latest,
        "deployment_configs": {"preview": config("preview"), "production": config("production")},
        "build_config": {
            "build_caching": false,
            "build_command": "",
            "destination_dir": "",
            "root_dir": "",
            "web_analytics_tag": null,
            "web_analytics_token": null,
        },
        "source": null,
        "framework": "",
        "framework_version": "",
        "preview_script_name": format!("pages-worker--{}-preview", project.id),
        "production_script_name": format!("pages-worker--{}-production", project.id),
        "uses_functions": false,
    }))
}

async fn list_projects(
    State(state): State<SharedState>,
    query: QueryParams,
) -> ApiResult<Response> {
    let query = query_map(query, VALIDATION)?;
    let page = int_param(&query, "page", 1, 1, i64::MAX, VALIDATION)?;
    let (default, min, max) = PER_PAGE;
    let per_page = int_param(&query, "per_page", default, min, max, VALIDATION)?;
    let projects = state
        .store
        .call(|conn| {
            let names: Vec<String> = conn
                .prepare("SELECT name FROM pages_projects ORDER BY created_on, name")?
                .query_map([], |row| row.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            let mut out = Vec::new();
            for name in names {
                out.push(project_json(conn, &require_project(conn, &name)?)?);
            }
            Ok(out)
        })
        .await?;
    Ok(paginate(projects, page, per_page))
}

async fn create_project(State(state): State<SharedState>, body: Bytes) -> ApiResult<Response> {
    let body = body_object(&body, "create project")?;
    let name = body
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if !valid_name(&name) {
        return Err(invalid(format!(
            "name {name:?} is invalid: 1 to 58 lowercase letters, digits and dashes, not starting or ending with a dash"
        )));
    }
    let branch = match body.get("production_branch") {
        None | Some(Value::Null) => "main".to_string(),
        Some(Value::String(branch)) if !branch.is_empty() => branch.clone(),
        Some(other) => {
            return Err(invalid(format!(
                "production_branch must be a non-empty string, got {other}"
            )));
        }
    };
    let configs = body
        .get("deployment_configs")
        .cloned()
        .unwrap_or_else(|| json!({}))
        .to_string();
    let now = state.clock.timestamp();
    let project = state
        .store
        .call(move |conn| {
            if find_project(conn, &name)?.is_some() {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    NAME_TAKEN,
                    "A project with this name already exists. Choose a different project name.",
                ));
            }
            conn.execute(
                "INSERT INTO pages_projects (id, name, production_branch, created_on, deployment_configs)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![uuid::Uuid::new_v4().to_string(), name, branch, now, configs],
            )?;
            project_json(conn, &require_project(conn, &name)?)
        })
        .await?;
    Ok(success(project))
}

async fn get_project(State(state): State<SharedState>, path: ProjectPath) -> ApiResult<Response> {
    let Path((_, name)) = path.map_err(path_error)?;
    let project = state
        .store
        .call(move |conn| project_json(conn, &require_project(conn, &name)?))
        .await?;
    Ok(success(project))
}

async fn patch_project(
    State(state): State<SharedState>,
    path: ProjectPath,
    body: Bytes,
) -> ApiResult<Response> {
    let Path((_, name)) = path.map_err(path_error)?;
    let body = body_object(&body, "update project")?;
    let branch = match body.get("production_branch") {
        None | Some(Value::Null) => None,
        Some(Value::String(branch)) if !branch.is_empty() => Some(branch.clone()),
        Some(other) => {
            return Err(invalid(format!(
                "production_branch must be a non-empty string, got {other}"
            )));
        }
    };
    let configs = body.get("deployment_configs").map(Value::to_string);
    let project = state
        .store
        .call(move |conn| {
            require_project(conn, &name)?;
            if let Some(branch) = branch {
                conn.execute(
                    "UPDATE pages_projects SET production_branch = ?2 WHERE name = ?1",
                    params![name, branch],
                )?;
            }
            if let Some(configs) = configs {
                conn.execute(
                    "UPDATE pages_projects SET deployment_configs = ?2 WHERE name = ?1",
                    params![name, configs],
                )?;
            }
            project_json(conn, &require_project(conn, &name)?)
        })
        .await?;
    Ok(success(project))
}

async fn delete_project(
    State(state): State<SharedState>,
    path: ProjectPath,
) -> ApiResult<Response> {
    let Path((_, name)) = path.map_err(path_error)?;
    state
        .store
        .call(move |conn| {
            require_project(conn, &name)?;
            let transaction = conn.transaction()?;
            transaction.execute("DELETE FROM pages_deployments WHERE project = ?1", [&name])?;
            transaction.execute("DELETE FROM pages_domains WHERE project = ?1", [&name])?;
            transaction.execute("DELETE FROM pages_projects WHERE name = ?1", [&name])?;
            transaction.commit()?;
            Ok(())
        })
        .await?;
    Ok(success(Value::Null))
}

/// The signature of an upload token's header and payload.
fn sign(secret: &str, signed: &str) -> String {
    let digest = sha2::Sha256::digest(format!("{secret}\n{signed}"));
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
}

async fn upload_token(State(state): State<SharedState>, path: ProjectPath) -> ApiResult<Response> {
    let Path((_, name)) = path.map_err(path_error)?;
    let project = state
        .store
        .call(move |conn| require_project(conn, &name))
        .await?;
    let exp = state.clock.now().unix_timestamp() + 3600;
    let encode =
        |value: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string());
    let signed = format!(
        "{}.{}",
        encode(json!({"alg": "HS256", "typ": "JWT"})),
        encode(json!({
            "sub": project.id,
            "project_name": project.name,
            "exp": exp,
            "max_file_count_allowed": MAX_FILES,
        }))
    );
    let jwt = format!("{signed}.{}", sign(&state.token_secret(), &signed));
    Ok(success(json!({ "jwt": jwt })))
}

/// Checks the upload token of an asset request (signature and expiry).
fn authorize(state: &SharedState, headers: &HeaderMap) -> ApiResult<()> {
    let refused = |why: &str| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            BAD_TOKEN,
            format!("Authentication error: {why}"),
        )
    };
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .ok_or_else(|| refused("the upload token is missing"))?;
    let (signed, signature) = token
        .rsplit_once('.')
        .ok_or_else(|| refused("the upload token is malformed"))?;
    if sign(&state.token_secret(), signed) != signature {
        return Err(refused("the upload token is not one this account issued"));
    }
    let payload = signed
        .split_once('.')
        .and_then(|(_, payload)| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .ok()
        })
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .ok_or_else(|| refused("the upload token is malformed"))?;
    let exp = payload["exp"].as_i64().unwrap_or(0);
    if exp <= state.clock.now().unix_timestamp() {
        return Err(refused("the upload token expired"));
    }
    Ok(())
}

fn hashes_of(body: &[u8]) -> ApiResult<Vec<String>> {
    let body = body_object(body, "assets")?;
    match body.get("hashes") {
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .filter(|h| h.len() == 32 && h.bytes().all(|b| b.is_ascii_hexdigit()))
                    .map(str::to_owned)
                    .ok_or_else(|| invalid(format!("each hash is 32 hex characters, got {item}")))
            })
            .collect(),
        _ => Err(invalid("hashes must be an array of strings")),
    }
}

async fn check_missing(
    State(state): State<SharedState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    authorize(&state, &headers)?;
    let hashes = hashes_of(&body)?;
    let missing = state
        .store
        .call(move |conn| {
            let mut statement = conn.prepare("SELECT 1 FROM pages_assets WHERE hash = ?1")?;
            let mut missing = Vec::new();
            for hash in hashes {
                if !statement.exists([&hash])? && !missing.contains(&hash) {
                    missing.push(hash);
                }
            }
            Ok(missing)
        })
        .await?;
    Ok(success(json!(missing)))
}

async fn upload_assets(
    State(state): State<SharedState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    authorize(&state, &headers)?;
    let items: Vec<Value> = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Array(items)) => items,
        _ => return Err(invalid("upload: the body must be a JSON array of assets")),
    };
    let mut assets = Vec::with_capacity(items.len());
    for item in &items {
        let key = item["key"]
            .as_str()
            .filter(|h| h.len() == 32 && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| invalid(format!("upload: each asset needs a 32-hex key, got {item}")))?;
        let value = item["value"]
            .as_str()
            .ok_or_else(|| invalid("upload: each asset needs a string value"))?;
        let content = if item["base64"].as_bool().unwrap_or(false) {
            base64::engine::general_purpose::STANDARD
                .decode(value)
                .map_err(|_| invalid(format!("upload: the value of {key} is not base64")))?
        } else {
            value.as_bytes().to_vec()
        };
        let content_type = item["metadata"]["contentType"]
            .as_str()
            .unwrap_or("application/octet-stream")
            .to_string();
        assets.push((key.to_string(), content_type, content));
    }
    state
        .store
        .call(move |conn| {
            let transaction = conn.transaction()?;
            for (key, content_type, content) in &assets {
                transaction.execute(
                    "INSERT OR REPLACE INTO pages_assets (hash, content_type, content) VALUES (?1, ?2, ?3)",
                    params![key, content_type, content],
                )?;
            }
            transaction.commit()?;
            Ok(())
        })
        .await?;
    Ok(success(
        json!({ "successful_key_count": items.len(), "unsuccessful_keys": [] }),
    ))
}

async fn upsert_hashes(
    State(state): State<SharedState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    authorize(&state, &headers)?;
    let hashes = hashes_of(&body)?;
    state
        .store
        .call(move |conn| {
            let mut statement = conn.prepare("SELECT 1 FROM pages_assets WHERE hash = ?1")?;
            for hash in &hashes {
                if !statement.exists([hash])? {
                    return Err(ApiError::bad_request(
                        MISSING_ASSET,
                        format!("the asset {hash} was never uploaded"),
                    ));
                }
            }
            Ok(())
        })
        .await?;
    Ok(success(Value::Null))
}

async fn list_deployments(
    State(state): State<SharedState>,
    path: ProjectPath,
    query: QueryParams,
) -> ApiResult<Response> {
    let Path((_, name)) = path.map_err(path_error)?;
    let query = query_map(query, VALIDATION)?;
    let page = int_param(&query, "page", 1, 1, i64::MAX, VALIDATION)?;
    let (default, min, max) = PER_PAGE;
    let per_page = int_param(&query, "per_page", default, min, max, VALIDATION)?;
    let environment = query.get("env").filter(|e| !e.is_empty()).cloned();
    if let Some(env) = &environment
        && env != "production"
        && env != "preview"
    {
        return Err(invalid(format!(
            "env must be production or preview, got {env:?}"
        )));
    }
    let deployments = state
        .store
        .call(move |conn| {
            let project = require_project(conn, &name)?;
            Ok(deployments_of(conn, &name)?
                .iter()
                .filter(|d| environment.as_deref().is_none_or(|e| d.environment == e))
                .map(|d| deployment_json(d, &project.production_branch))
                .collect::<Vec<_>>())
        })
        .await?;
    Ok(paginate(deployments, page, per_page))
}

/// The text of a multipart field.
async fn deployment_form(state: &SharedState, request: Request) -> ApiResult<Map<String, Value>> {
    let mut multipart = Multipart::from_request(request, state)
        .await
        .map_err(|rejection| invalid(format!("malformed multipart body: {rejection}")))?;
    let mut fields = Map::new();
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|error| invalid(format!("malformed multipart body: {error}")))?
    {
        let name = field.name().unwrap_or_default().to_owned();
        let text = field
            .text()
            .await
            .map_err(|error| invalid(format!("malformed multipart body: {error}")))?;
        fields.insert(name, Value::String(text));
    }
    Ok(fields)
}

async fn create_deployment(
    State(state): State<SharedState>,
    path: ProjectPath,
    request: Request,
) -> ApiResult<Response> {
    let Path((_, name)) = path.map_err(path_error)?;
    let form = deployment_form(&state, request).await?;
    let text = |key: &str| form.get(key).and_then(Value::as_str).map(str::to_owned);
    let manifest_text = text("manifest").ok_or_else(|| invalid("a deployment needs a manifest"))?;
    let manifest: Map<String, Value> = match serde_json::from_str::<Value>(&manifest_text) {
        Ok(Value::Object(map)) => map,
        _ => {
            return Err(invalid(
                "the manifest must be a JSON object of path to hash",
            ));
        }
    };
    for (path, hash) in &manifest {
        if !path.starts_with('/') || !hash.is_string() {
            return Err(invalid(format!(
                "manifest entry {path:?}: paths start with `/` and map to a hash"
            )));
        }
    }
    if manifest.len() as i64 > MAX_FILES {
        return Err(invalid(format!(
            "a deployment holds at most {MAX_FILES} files"
        )));
    }
    let branch = text("branch");
    let commit_hash = text("commit_hash").unwrap_or_default();
    let commit_message = text("commit_message").unwrap_or_default();
    let commit_dirty = text("commit_dirty").is_some_and(|d| d == "true");
    let now = state.clock.unique_micros();
    let deployment = state
        .store
        .call(move |conn| {
            let project = require_project(conn, &name)?;
            let mut statement = conn.prepare("SELECT 1 FROM pages_assets WHERE hash = ?1")?;
            for (path, hash) in &manifest {
                let hash = hash.as_str().unwrap_or_default();
                if !statement.exists([hash])? {
                    return Err(ApiError::bad_request(
                        MISSING_ASSET,
                        format!(
                            "the manifest names {path} with hash {hash}, which was never uploaded"
                        ),
                    ));
                }
            }
            drop(statement);
            let branch = branch.unwrap_or_else(|| project.production_branch.clone());
            let environment = if branch == project.production_branch {
                "production"
            } else {
                "preview"
            };
            let id = uuid::Uuid::new_v4().to_string();
            let seq: i64 = conn.query_row(
                "SELECT COALESCE(MAX(seq), 0) + 1 FROM pages_deployments",
                [],
                |row| row.get(0),
            )?;
            conn.execute(
                "INSERT INTO pages_deployments (id, project, seq, environment, branch, commit_hash,
                     commit_message, commit_dirty, manifest, created_on)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    id,
                    name,
                    seq,
                    environment,
                    branch,
                    commit_hash,
                    commit_message,
                    commit_dirty,
                    Value::Object(manifest.clone()).to_string(),
                    now
                ],
            )?;
            if environment == "production" {
                conn.execute(
                    "UPDATE pages_projects SET canonical_deployment = ?2 WHERE name = ?1",
                    params![name, id],
                )?;
            }
            Ok(deployment_json(
                &find_deployment(conn, &name, &id)?,
                &project.production_branch,
            ))
        })
        .await?;
    Ok(success(deployment))
}

async fn get_deployment(State(state): State<SharedState>, path: ItemPath) -> ApiResult<Response> {
    let Path((_, name, id)) = path.map_err(path_error)?;
    let deployment = state
        .store
        .call(move |conn| {
            let project = require_project(conn, &name)?;
            Ok(deployment_json(
                &find_deployment(conn, &name, &id)?,
                &project.production_branch,
            ))
        })
        .await?;
    Ok(success(deployment))
}

async fn delete_deployment(
    State(state): State<SharedState>,
    path: ItemPath,
) -> ApiResult<Response> {
    let Path((_, name, id)) = path.map_err(path_error)?;
    state
        .store
        .call(move |conn| {
            let project = require_project(conn, &name)?;
            find_deployment(conn, &name, &id)?;
            if project.canonical.as_deref() == Some(id.as_str()) {
                return Err(ApiError::bad_request(
                    ACTIVE_DEPLOYMENT,
                    "You cannot delete the active production deployment: roll back to another one first",
                ));
            }
            conn.execute("DELETE FROM pages_deployments WHERE id = ?1", [&id])?;
            Ok(())
        })
        .await?;
    Ok(success(Value::Null))
}

async fn rollback(State(state): State<SharedState>, path: ItemPath) -> ApiResult<Response> {
    let Path((_, name, id)) = path.map_err(path_error)?;
    let deployment = state
        .store
        .call(move |conn| {
            let project = require_project(conn, &name)?;
            let deployment = find_deployment(conn, &name, &id)?;
            if deployment.environment != "production" {
                return Err(invalid(
                    "only a production deployment can be rolled back to",
                ));
            }
            conn.execute(
                "UPDATE pages_projects SET canonical_deployment = ?2 WHERE name = ?1",
                params![name, id],
            )?;
            Ok(deployment_json(&deployment, &project.production_branch))
        })
        .await?;
    Ok(success(deployment))
}

fn domain_json(domain: &Domain) -> Value {
    json!({
        "id": domain.id,
        "domain_id": domain.id,
        "name": domain.name,
        "status": "active",
        "certificate_authority": "google",
        "created_on": domain.created_on,
        "zone_tag": domain.zone_id,
        "validation_data": {"method": "http", "status": "active"},
        "verification_data": {"status": "active"},
    })
}

async fn list_domains(State(state): State<SharedState>, path: ProjectPath) -> ApiResult<Response> {
    let Path((_, name)) = path.map_err(path_error)?;
    let domains = state
        .store
        .call(move |conn| {
            require_project(conn, &name)?;
            Ok(domains_of(conn, &name)?
                .iter()
                .map(domain_json)
                .collect::<Vec<_>>())
        })
        .await?;
    Ok(paginate(domains, 1, 1000))
}

async fn add_domain(
    State(state): State<SharedState>,
    path: ProjectPath,
    body: Bytes,
) -> ApiResult<Response> {
    let Path((_, project)) = path.map_err(path_error)?;
    let body = body_object(&body, "add domain")?;
    let domain = body
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if domain.is_empty() || !domain.contains('.') {
        return Err(invalid(format!("domain name {domain:?} is invalid")));
    }
    let now = state.clock.timestamp();
    let added = state
        .store
        .call(move |conn| {
            require_project(conn, &project)?;
            let taken: Option<String> = conn
                .query_row(
                    "SELECT project FROM pages_domains WHERE name = ?1",
                    [&domain],
                    |row| row.get(0),
                )
                .optional()?;
            if let Some(owner) = taken {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    NAME_TAKEN,
                    format!("The domain {domain} is already added to project {owner}"),
                ));
            }
            let zone_id = super::workers::zone_for_host(conn, &domain)?
                .map(|zone| zone.id)
                .unwrap_or_default();
            let added = Domain {
                id: uuid::Uuid::new_v4().to_string(),
                name: domain,
                project,
                zone_id,
                created_on: now,
            };
            conn.execute(
                "INSERT INTO pages_domains (id, project, name, zone_id, created_on) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![added.id, added.project, added.name, added.zone_id, added.created_on],
            )?;
            Ok(domain_json(&added))
        })
        .await?;
    Ok(success(added))
}

fn find_domain(conn: &Connection, project: &str, name: &str) -> ApiResult<Domain> {
    domains_of(conn, project)?
        .into_iter()
        .find(|d| d.name == name)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                DOMAIN_NOT_FOUND,
                format!("The domain {name} is not a domain of project {project}"),
            )
        })
}

async fn get_domain(State(state): State<SharedState>, path: ItemPath) -> ApiResult<Response> {
    let Path((_, project, name)) = path.map_err(path_error)?;
    let domain = state
        .store
        .call(move |conn| {
            require_project(conn, &project)?;
            find_domain(conn, &project, &name)
        })
        .await?;
    Ok(success(domain_json(&domain)))
}

async fn delete_domain(State(state): State<SharedState>, path: ItemPath) -> ApiResult<Response> {
    let Path((_, project, name)) = path.map_err(path_error)?;
    state
        .store
        .call(move |conn| {
            require_project(conn, &project)?;
            let domain = find_domain(conn, &project, &name)?;
            conn.execute("DELETE FROM pages_domains WHERE id = ?1", [&domain.id])?;
            Ok(())
        })
        .await?;
    Ok(success(Value::Null))
}

/// The Pages domains in a zone (each has a proxied `CNAME` to its
/// project's subdomain among the zone's records).
pub(crate) fn zone_domains(conn: &Connection, zone_id: &str) -> ApiResult<Vec<Domain>> {
    domains_where(conn, "zone_id", zone_id)
}
