//! The multipart upload shared by `PUT /scripts/{n}`, `POST …/versions` and `PATCH …/settings`:
//! reading the parts, resolving bindings against the account and the latest version, and
//! recording the new version (with its Durable Object migrations) in one transaction.
//!
//! The metadata part is parsed into a `serde_json::Value` and read field by field, so no error
//! message ever quotes a value sent in it (a `secret_text` binding carries its value there).

use std::collections::{BTreeMap, BTreeSet};

use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{StatusCode, header};
use rusqlite::{Connection, Transaction, params};
use serde_json::{Map, Value, json};

use super::super::SharedState;
use super::super::envelope::{ApiError, ApiResult};
use super::deployments::{self, Deployment};
use super::durable_objects;
use super::versions::{self, Module, NewVersion, Version};
use super::{
    NOT_MULTIPART, Script, client_annotations, default_script_settings, find_script, invalid,
    new_hex_id, require_script, script_not_found,
};
use crate::emulator::Clock;

const INVALID_INHERIT: u32 = 10057;
const BINDING_NAME_IN_USE: u32 = 10053;
const INVALID_KV_NAMESPACE: u32 = 10042;
const R2_BUCKET_NOT_FOUND: u32 = 10085;
const SCRIPT_TOO_LARGE: u32 = 10027;

/// Largest total size of a version's modules. Cloudflare limits the compressed size (10 MB on
/// paid plans); without compression here, 64 MiB uncompressed is the approximation.
const MAX_SCRIPT_BYTES: usize = 64 * 1024 * 1024;

/// Binding types whose values are secret: stored apart, never returned.
pub(super) const SECRET_TYPES: [&str; 2] = ["secret_text", "secret_key"];

/// One non-JSON part of a multipart upload.
pub(super) struct Part {
    pub name: String,
    pub content_type: Option<String>,
    pub data: Bytes,
}

/// A multipart body: the JSON part (`metadata` or `settings`) and the other parts in order.
pub(super) struct MultipartBody {
    pub json: Map<String, Value>,
    pub parts: Vec<Part>,
}

/// Reads a `multipart/form-data` body whose part `json_part` holds a JSON object.
pub(super) async fn read_multipart(
    state: &SharedState,
    request: Request,
    json_part: &str,
) -> ApiResult<MultipartBody> {
    let is_multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value
                .trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/form-data")
        });
    if !is_multipart {
        return Err(ApiError::bad_request(
            NOT_MULTIPART,
            "Content-Type must be multipart/form-data",
        ));
    }
    let malformed = |detail: String| invalid(format!("malformed multipart body: {detail}"));
    let mut multipart = Multipart::from_request(request, state)
        .await
        .map_err(|rejection| malformed(rejection.to_string()))?;
    let mut json = None;
    let mut parts = Vec::new();
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|error| malformed(error.to_string()))?
    {
        // The JSON part is found by its field name. A module is named by its filename: wrangler
        // sends the same name twice, the Python SDK sends every module as a field named `files`.
        let field_name = field.name().unwrap_or_default().to_owned();
        let name = if field_name == json_part {
            field_name
        } else {
            field
                .file_name()
                .filter(|name| !name.is_empty())
                .map_or(field_name, str::to_owned)
        };
        let content_type = field.content_type().map(str::to_owned);
        let data = field
            .bytes()
            .await
            .map_err(|error| malformed(error.to_string()))?;
        if name == json_part {
            let value: Value = serde_json::from_slice(&data)
                .map_err(|_| invalid(format!("the {json_part} part is not valid JSON")))?;
            match value {
                Value::Object(object) => json = Some(object),
                _ => {
                    return Err(invalid(format!(
                        "the {json_part} part must be a JSON object"
                    )));
                }
            }
        } else if !name.is_empty() {
            parts.push(Part {
                name,
                content_type,
                data,
            });
        }
    }
    let json =
        json.ok_or_else(|| invalid(format!("the multipart body has no {json_part} part")))?;
    Ok(MultipartBody { json, parts })
}

/// A version's bindings: the public list (secrets as `{name, type}`) and the secret bindings
/// with their values, by name.
#[derive(Default, Clone)]
pub(super) struct BindingSet {
    pub public: Vec<Value>,
    pub secrets: BTreeMap<String, Value>,
}

impl BindingSet {
    pub fn of_version(conn: &Connection, version: &Version) -> ApiResult<BindingSet> {
        Ok(BindingSet {
            public: version.bindings.clone(),
            secrets: versions::load_secrets(conn, &version.id)?,
        })
    }

    /// Adds a binding (sent by a client or copied), splitting off a secret's value.
    pub fn push(&mut self, binding: Value) {
        let name = binding_name(&binding).unwrap_or_default().to_owned();
        let kind = binding_type(&binding).unwrap_or_default().to_owned();
        if SECRET_TYPES.contains(&kind.as_str()) {
            self.public.push(json!({ "name": name, "type": kind }));
            self.secrets.insert(name, binding);
        } else {
            self.public.push(binding);
        }
    }

    /// The full binding named `name` (with its value if it is a secret).
    pub fn full(&self, name: &str) -> Option<Value> {
        let public = self
            .public
            .iter()
            .find(|binding| binding_name(binding) == Some(name))?;
        Some(
            self.secrets
                .get(name)
                .cloned()
                .unwrap_or_else(|| public.clone()),
        )
    }

    pub fn remove(&mut self, name: &str) -> bool {
        let before = self.public.len();
        self.public
            .retain(|binding| binding_name(binding) != Some(name));
        self.secrets.remove(name);
        self.public.len() != before
    }
}

pub(super) fn binding_name(binding: &Value) -> Option<&str> {
    binding.get("name").and_then(Value::as_str)
}

pub(super) fn binding_type(binding: &Value) -> Option<&str> {
    binding.get("type").and_then(Value::as_str)
}

fn binding_name_in_use(name: &str) -> ApiError {
    ApiError::bad_request(
        BINDING_NAME_IN_USE,
        format!("Binding name '{name}' already in use"),
    )
}

/// How bindings of the previous version carry over.
pub(super) struct BindingRules<'a> {
    /// `bindings_inherit=strict`: an `inherit` binding with nothing to inherit is an error.
    pub strict_inherit: bool,
    /// Binding types to keep from the latest version when not re-sent (`keep_bindings`);
    /// secrets are always kept.
    pub keep_types: &'a [String],
    /// A binding sent as `{name, type}` only keeps the latest version's binding of that name and
    /// type as it is (`PATCH …/settings`, which `wrangler secret bulk` relies on).
    pub bare_keeps: bool,
}

/// Whether `binding` is only `{name, type}`: "keep this binding as it is" on a settings change.
fn is_bare(binding: &Value) -> bool {
    binding
        .as_object()
        .is_some_and(|object| object.keys().all(|key| key == "name" || key == "type"))
}

/// Resolves the bindings a client sent against the account and the latest version (`base`).
pub(super) fn resolve_bindings(
    conn: &Connection,
    script: &str,
    requested: &[Value],
    base: &BindingSet,
    rules: &BindingRules<'_>,
) -> ApiResult<BindingSet> {
    let mut resolved = BindingSet::default();
    let mut names = BTreeSet::new();
    for (index, binding) in requested.iter().enumerate() {
        let (Some(name), Some(kind)) = (binding_name(binding), binding_type(binding)) else {
            return Err(invalid(format!(
                "binding at index {index} must be an object with a string name and type"
            )));
        };
        if !names.insert(name.to_owned()) {
            return Err(binding_name_in_use(name));
        }
        let resolved_binding = match kind {
            "inherit" => {
                let Some(inherited) = inherit(conn, script, binding, name, base)? else {
                    if rules.strict_inherit {
                        return Err(ApiError::bad_request(
                            INVALID_INHERIT,
                            format!("inherit binding '{name}' is invalid"),
                        ));
                    }
                    continue;
                };
                inherited
            }
            _ if rules.bare_keeps && is_bare(binding) => match base.full(name) {
                Some(kept) if binding_type(&kept) == Some(kind) => kept,
                _ => validate_binding(conn, script, binding, name, kind)?,
            },
            _ => validate_binding(conn, script, binding, name, kind)?,
        };
        resolved.push(resolved_binding);
    }
    let mut keep: BTreeSet<&str> = SECRET_TYPES.into_iter().collect();
    keep.extend(rules.keep_types.iter().map(String::as_str));
    for binding in &base.public {
        let (Some(name), Some(kind)) = (binding_name(binding), binding_type(binding)) else {
            continue;
        };
        if keep.contains(kind) && !names.contains(name) {
            names.insert(name.to_owned());
            if let Some(full) = base.full(name) {
                resolved.push(full);
            }
        }
    }
    Ok(resolved)
}

/// The binding an `inherit` binding stands for, renamed to `name`, if there is one.
fn inherit(
    conn: &Connection,
    script: &str,
    binding: &Value,
    name: &str,
    base: &BindingSet,
) -> ApiResult<Option<Value>> {
    let source_name = binding
        .get("old_name")
        .and_then(Value::as_str)
        .unwrap_or(name);
    let version_id = binding
        .get("version_id")
        .and_then(Value::as_str)
        .unwrap_or("latest");
    let source = if version_id == "latest" {
        base.full(source_name)
    } else {
        match versions::load_version(conn, script, version_id)? {
            Some(version) => BindingSet::of_version(conn, &version)?.full(source_name),
            None => None,
        }
    };
    Ok(source.map(|mut inherited| {
        inherited["name"] = Value::String(name.to_owned());
        inherited
    }))
}

fn require_str<'a>(binding: &'a Value, name: &str, kind: &str, field: &str) -> ApiResult<&'a str> {
    binding.get(field).and_then(Value::as_str).ok_or_else(|| {
        invalid(format!(
            "binding {name} of type {kind} must have a string `{field}`"
        ))
    })
}

/// A queue binding names a queue the account does not have.
const QUEUE_NOT_FOUND: u32 = 11000;

fn exists(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> ApiResult<bool> {
    Ok(conn.query_row(sql, params, |row| row.get(0))?)
}

/// Checks one binding and returns it as stored.
fn validate_binding(
    conn: &Connection,
    script: &str,
    binding: &Value,
    name: &str,
    kind: &str,
) -> ApiResult<Value> {
    match kind {
        "plain_text" | "secret_text" => {
            require_str(binding, name, kind, "text")?;
        }
        "json" if binding.get("json").is_none() => {
            return Err(invalid(format!(
                "binding {name} of type json must have a `json` value"
            )));
        }
        "kv_namespace" => {
            let id = require_str(binding, name, kind, "namespace_id")?;
            if !exists(
                conn,
                "SELECT EXISTS (SELECT 1 FROM kv_namespaces WHERE id = ?1)",
                [id],
            )? {
                return Err(ApiError::bad_request(
                    INVALID_KV_NAMESPACE,
                    format!(
                        "KV namespace '{id}' is not valid. Please verify the namespace_id in your configuration."
                    ),
                ));
            }
        }
        "d1" => {
            let id = binding
                .get("id")
                .or_else(|| binding.get("database_id"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            let known = !id.is_empty()
                && exists(
                    conn,
                    "SELECT EXISTS (SELECT 1 FROM d1_databases WHERE uuid = ?1)",
                    [id],
                )?;
            if !known {
                return Err(invalid(format!(
                    "binding {name} of type d1 must have a valid `id` specified"
                )));
            }
            let mut stored = binding.clone();
            if let Some(object) = stored.as_object_mut() {
                object.remove("database_id");
                object.insert("id".into(), Value::String(id.to_owned()));
            }
            return Ok(stored);
        }
        "r2_bucket" => {
            let bucket = require_str(binding, name, kind, "bucket_name")?;
            let jurisdiction = binding
                .get("jurisdiction")
                .and_then(Value::as_str)
                .filter(|value| !value.is_empty())
                .unwrap_or("default");
            if !exists(
                conn,
                "SELECT EXISTS (SELECT 1 FROM r2_buckets WHERE jurisdiction = ?1 AND name = ?2)",
                params![jurisdiction, bucket],
            )? {
                return Err(ApiError::bad_request(
                    R2_BUCKET_NOT_FOUND,
                    format!(
                        "R2 bucket '{bucket}' not found. Please use a different name and try again."
                    ),
                ));
            }
        }
        "durable_object_namespace" => {
            let class = require_str(binding, name, kind, "class_name")?;
            let owner = binding
                .get("script_name")
                .and_then(Value::as_str)
                .filter(|owner| !owner.is_empty())
                .unwrap_or(script);
            let namespace = durable_objects::find_namespace(conn, owner, class)?
                .ok_or_else(|| durable_objects::class_not_found(owner, class))?;
            let mut stored = binding.clone();
            stored["namespace_id"] = Value::String(namespace.id);
            return Ok(stored);
        }
        "service" => {
            require_str(binding, name, kind, "service")?;
        }
        "queue" => {
            let queue = require_str(binding, name, kind, "queue_name")?;
            if !exists(
                conn,
                "SELECT EXISTS (SELECT 1 FROM queues WHERE name = ?1)",
                [queue],
            )? {
                return Err(ApiError::bad_request(
                    QUEUE_NOT_FOUND,
                    format!("Queue \"{queue}\" does not exist. Create it first."),
                ));
            }
        }
        _ => {}
    }
    Ok(binding.clone())
}

/// The runtime part of a version from upload metadata.
fn runtime_of(metadata: &Map<String, Value>, main: (&str, &str)) -> ApiResult<Map<String, Value>> {
    let mut runtime = Map::new();
    runtime.insert(main.0.into(), Value::String(main.1.to_owned()));
    if let Some(date) = metadata
        .get("compatibility_date")
        .filter(|value| !value.is_null())
    {
        let date = date
            .as_str()
            .ok_or_else(|| invalid("compatibility_date must be a string"))?;
        runtime.insert("compatibility_date".into(), Value::String(date.to_owned()));
    }
    let flags = match metadata.get("compatibility_flags") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(flags)) if flags.iter().all(Value::is_string) => flags.clone(),
        Some(_) => return Err(invalid("compatibility_flags must be an array of strings")),
    };
    runtime.insert("compatibility_flags".into(), Value::Array(flags));
    let usage_model = metadata
        .get("usage_model")
        .and_then(Value::as_str)
        .unwrap_or("standard");
    runtime.insert("usage_model".into(), Value::String(usage_model.to_owned()));
    for key in ["limits", "placement"] {
        if let Some(value) = metadata.get(key).filter(|value| !value.is_null()) {
            runtime.insert(key.into(), value.clone());
        }
    }
    Ok(runtime)
}

/// Which part is the entry point: `("main_module", name)` or `("body_part", name)`.
fn entry_point(metadata: &Map<String, Value>) -> ApiResult<(&'static str, String)> {
    for key in ["main_module", "body_part"] {
        if let Some(value) = metadata.get(key).filter(|value| !value.is_null()) {
            let name = value
                .as_str()
                .ok_or_else(|| invalid(format!("{key} must be a string")))?;
            return Ok((key, name.to_owned()));
        }
    }
    Err(invalid(
        "metadata must name the entry point in main_module or body_part",
    ))
}

/// The content type a module is stored with.
fn module_content_type(part: &Part) -> String {
    if let Some(content_type) = part
        .content_type
        .as_deref()
        .filter(|value| !value.is_empty())
    {
        return content_type.to_owned();
    }
    let name = part.name.as_str();
    if name.ends_with(".wasm") {
        "application/wasm".into()
    } else if name.ends_with(".map") {
        "application/source-map".into()
    } else if name.ends_with(".py") {
        "text/x-python".into()
    } else if name.ends_with(".js") || name.ends_with(".mjs") || !name.contains('.') {
        "application/javascript+module".into()
    } else {
        "application/octet-stream".into()
    }
}

/// `fetch`, plus the other handlers a module's text appears to define.
fn guess_handlers(parts: &[Part]) -> Vec<String> {
    let mut handlers = vec![String::from("fetch")];
    for handler in ["scheduled", "queue", "email", "tail"] {
        let defined = parts.iter().any(|part| {
            std::str::from_utf8(&part.data).is_ok_and(|text| {
                text.contains(&format!("{handler}(")) || text.contains(&format!("{handler}:"))
            })
        });
        if defined {
            handlers.push(handler.to_owned());
        }
    }
    handlers
}

/// Stores module contents (content-addressed) and returns their references.
fn store_modules(transaction: &Transaction<'_>, parts: &[Part]) -> ApiResult<Vec<Module>> {
    let mut modules = Vec::with_capacity(parts.len());
    for part in parts {
        modules.push(Module {
            name: part.name.clone(),
            content_type: module_content_type(part),
            digest: versions::store_blob(transaction, &part.data)?,
        });
    }
    Ok(modules)
}

/// The non-versioned settings an upload's metadata may change.
pub(super) const SCRIPT_SETTING_KEYS: [&str; 4] =
    ["logpush", "observability", "tags", "tail_consumers"];

pub(super) fn save_script(transaction: &Transaction<'_>, script: &Script) -> ApiResult<()> {
    transaction.execute(
        "UPDATE worker_scripts SET modified_on = ?2, migration_tag = ?3, last_deployed_from = ?4,
             script_settings = ?5, subdomain_enabled = ?6, previews_enabled = ?7
         WHERE name = ?1",
        params![
            script.name,
            script.modified_on,
            script.migration_tag,
            script.last_deployed_from,
            Value::Object(script.script_settings.clone()).to_string(),
            script.subdomain_enabled,
            script.previews_enabled,
        ],
    )?;
    Ok(())
}

/// What an upload asks for.
pub(super) enum UploadKind {
    /// `PUT /scripts/{n}`: creates the script if needed and deploys the version at 100%.
    Script,
    /// `POST …/versions`: the script must exist; the version is not deployed.
    Version,
}

pub(super) struct UploadOutcome {
    pub script: Script,
    pub version: Version,
}

/// Records an upload: migrations, bindings, the version and (for a script upload) its
/// deployment, all in one transaction.
pub(super) fn apply_upload(
    conn: &mut Connection,
    clock: &Clock,
    script_name: &str,
    body: MultipartBody,
    kind: UploadKind,
    strict_inherit: bool,
    source: &str,
) -> ApiResult<UploadOutcome> {
    let metadata = body.json;
    let (main_key, main_name) = entry_point(&metadata)?;
    if !body.parts.iter().any(|part| part.name == main_name) {
        return Err(invalid(format!("No such module \"{main_name}\".")));
    }
    let total: usize = body.parts.iter().map(|part| part.data.len()).sum();
    if total > MAX_SCRIPT_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            SCRIPT_TOO_LARGE,
            format!("Script body is too large ({total} bytes, at most {MAX_SCRIPT_BYTES})"),
        ));
    }
    let requested = match metadata.get("bindings") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(bindings)) => bindings.clone(),
        Some(_) => return Err(invalid("bindings must be an array")),
    };
    let keep_types: Vec<String> = match metadata.get("keep_bindings") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(types)) => types
            .iter()
            .map(|kind| {
                kind.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| invalid("keep_bindings must be an array of strings"))
            })
            .collect::<ApiResult<_>>()?,
        Some(_) => return Err(invalid("keep_bindings must be an array of strings")),
    };
    let runtime = runtime_of(&metadata, (main_key, &main_name))?;
    let mut annotations = client_annotations(metadata.get("annotations"))?;
    annotations.insert("workers/triggered_by".into(), json!("upload"));
    let handlers = guess_handlers(&body.parts);

    let transaction = conn.transaction()?;
    let now = clock.unique_micros();
    let mut script = match (find_script(&transaction, script_name)?, &kind) {
        (Some(script), _) => script,
        (None, UploadKind::Version) => return Err(script_not_found()),
        (None, UploadKind::Script) => {
            let script = Script {
                name: script_name.to_owned(),
                tag: new_hex_id(),
                created_on: now.clone(),
                modified_on: now.clone(),
                migration_tag: None,
                last_deployed_from: source.to_owned(),
                script_settings: default_script_settings(),
                subdomain_enabled: false,
                previews_enabled: false,
            };
            transaction.execute(
                "INSERT INTO worker_scripts (name, tag, created_on, modified_on, migration_tag,
                     last_deployed_from, script_settings, subdomain_enabled, previews_enabled)
                 VALUES (?1, ?2, ?3, ?4, NULL, ?5, ?6, 0, 0)",
                params![
                    script.name,
                    script.tag,
                    script.created_on,
                    script.modified_on,
                    script.last_deployed_from,
                    Value::Object(script.script_settings.clone()).to_string(),
                ],
            )?;
            script
        }
    };
    if let Some(migrations) = metadata.get("migrations").filter(|value| !value.is_null()) {
        script.migration_tag = durable_objects::apply_migrations(
            &transaction,
            clock,
            &script.name,
            script.migration_tag.as_deref(),
            migrations,
        )?;
    }
    let base = match versions::latest_version(&transaction, &script.name)? {
        Some(latest) => BindingSet::of_version(&transaction, &latest)?,
        None => BindingSet::default(),
    };
    let bindings = resolve_bindings(
        &transaction,
        &script.name,
        &requested,
        &base,
        &BindingRules {
            strict_inherit,
            keep_types: &keep_types,
            bare_keeps: false,
        },
    )?;
    let modules = store_modules(&transaction, &body.parts)?;
    let version = versions::insert_version(
        &transaction,
        clock,
        NewVersion {
            script: script.name.clone(),
            source: source.to_owned(),
            annotations: annotations.clone(),
            runtime,
            bindings,
            modules,
            handlers,
        },
    )?;
    for key in SCRIPT_SETTING_KEYS {
        if let Some(value) = metadata.get(key) {
            script.script_settings.insert(key.into(), value.clone());
        }
    }
    script.modified_on = version.created_on.clone();
    if let UploadKind::Script = kind {
        script.last_deployed_from = source.to_owned();
        let mut deployment_annotations = Map::new();
        deployment_annotations.insert("workers/triggered_by".into(), json!("upload"));
        if let Some(message) = annotations.get("workers/message") {
            deployment_annotations.insert("workers/message".into(), message.clone());
        }
        deployments::insert_deployment(
            &transaction,
            clock,
            &script.name,
            &[(version.id.clone(), 100.0)],
            deployment_annotations,
            source,
        )?;
    }
    save_script(&transaction, &script)?;
    transaction.commit()?;
    Ok(UploadOutcome { script, version })
}

/// What a derived version changes from its base.
pub(super) struct Derived {
    pub bindings: BindingSet,
    pub runtime: Map<String, Value>,
    pub annotations: Map<String, Value>,
}

/// Creates a version copying `base` with other bindings (secret changes, settings changes) and
/// deploys it at 100%. The caller owns the transaction.
pub(super) fn derive_and_deploy(
    transaction: &Transaction<'_>,
    clock: &Clock,
    script: &mut Script,
    base: &Version,
    derived: Derived,
    source: &str,
) -> ApiResult<(Version, Deployment)> {
    let Derived {
        bindings,
        runtime,
        annotations,
    } = derived;
    let modules = versions::load_modules(transaction, &base.id)?;
    let version = versions::insert_version(
        transaction,
        clock,
        NewVersion {
            script: script.name.clone(),
            source: source.to_owned(),
            annotations: annotations.clone(),
            runtime,
            bindings,
            modules,
            handlers: base.handlers.clone(),
        },
    )?;
    let deployment = deployments::insert_deployment(
        transaction,
        clock,
        &script.name,
        &[(version.id.clone(), 100.0)],
        annotations,
        source,
    )?;
    script.modified_on = version.created_on.clone();
    script.last_deployed_from = source.to_owned();
    save_script(transaction, script)?;
    Ok((version, deployment))
}

/// Loads the script for a change that needs the newest version to be live at 100% (secret
/// changes): answers 10215 otherwise.
pub(super) fn require_latest_deployed(
    conn: &Connection,
    script_name: &str,
) -> ApiResult<(Script, Version)> {
    const VERSION_NOT_DEPLOYED: u32 = 10215;
    let script = require_script(conn, script_name)?;
    let latest = versions::latest_version(conn, script_name)?.ok_or_else(script_not_found)?;
    let live = deployments::current_deployment(conn, script_name)?;
    let deployed_alone = live.is_some_and(|deployment| {
        deployment.versions.len() == 1
            && deployment.versions[0].0 == latest.id
            && deployment.versions[0].1 >= 100.0
    });
    if !deployed_alone {
        return Err(ApiError::bad_request(
            VERSION_NOT_DEPLOYED,
            "Secret edit failed. You attempted to modify a secret, but the latest version of your Worker isn't currently deployed. Please ensure that the latest version of your Worker is fully deployed (wrangler versions deploy) before modifying secrets. Alternatively, you can use the Cloudflare dashboard to modify secrets and deploy the version.",
        ));
    }
    Ok((script, latest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binding_set_keeps_secret_values_apart() {
        let mut set = BindingSet::default();
        set.push(json!({"name": "API_KEY", "type": "secret_text", "text": "hunter2"}));
        set.push(json!({"name": "GREETING", "type": "plain_text", "text": "hi"}));
        assert_eq!(
            Value::Array(set.public.clone()),
            json!([
                {"name": "API_KEY", "type": "secret_text"},
                {"name": "GREETING", "type": "plain_text", "text": "hi"},
            ])
        );
        assert!(
            !Value::Array(set.public.clone())
                .to_string()
                .contains("hunter2")
        );
        assert_eq!(set.full("API_KEY").unwrap()["text"], json!("hunter2"));
        assert!(set.remove("API_KEY"));
        assert!(set.secrets.is_empty());
        assert!(
            set.public
                .iter()
                .all(|binding| binding["name"] != "API_KEY")
        );
    }

    #[test]
    fn module_types_default_from_names() {
        let part = |name: &str, content_type: Option<&str>| Part {
            name: name.into(),
            content_type: content_type.map(str::to_owned),
            data: Bytes::new(),
        };
        assert_eq!(
            module_content_type(&part("index.js", None)),
            "application/javascript+module"
        );
        assert_eq!(
            module_content_type(&part("a.wasm", None)),
            "application/wasm"
        );
        assert_eq!(
            module_content_type(&part("index.js", Some("application/javascript"))),
            "application/javascript"
        );
    }
}
