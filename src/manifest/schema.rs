//! JSON Schemas of the manifest files, for editors (completion, structure).
//! These types only describe the format; the loader does not use them and
//! stays the authority (it checks names after `${var}` interpolation, which
//! a schema cannot). A unit test keeps the field lists of both in step.

#![allow(dead_code)] // The types below exist only to be described.

use std::collections::BTreeMap;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

/// Logical keys: see `rules::key`.
const KEY_PATTERN: &str = "^[a-z0-9_][a-z0-9_-]{0,63}$";

/// `{"infra": <schema of infra/*.yaml>, "environment": <schema of
/// environments/*.yaml>}` (JSON Schema draft 2020-12).
pub fn json_schema() -> serde_json::Value {
    let infra = serde_json::to_value(schemars::schema_for!(InfraFile)).unwrap_or_default();
    let mut environment =
        serde_json::to_value(schemars::schema_for!(EnvironmentFile)).unwrap_or_default();
    overrides_schema(&infra, &mut environment);
    serde_json::json!({
        "infra": infra,
        "environment": environment,
    })
}

/// `overrides:` in the environment schema: per kind of address, a patch
/// of that kind's resource (every field optional, `null` removes it, no
/// other field), with the infra schema's definitions copied in.
fn overrides_schema(infra: &serde_json::Value, environment: &mut serde_json::Value) {
    use serde_json::{Value, json};
    let key = &KEY_PATTERN[1..KEY_PATTERN.len() - 1];
    let Some(definitions) = infra.get("$defs").and_then(Value::as_object) else {
        return;
    };
    let mut defs = definitions.clone();
    let mut patterns = serde_json::Map::new();
    for (section, definition) in [
        ("kv_namespaces", "KvNamespace"),
        ("d1_databases", "D1Database"),
        ("r2_buckets", "R2Bucket"),
        ("queues", "Queue"),
        ("dns_records", "DnsRecord"),
        ("pages_projects", "PagesProject"),
        ("workers", "Worker"),
    ] {
        let Some(resource) = definitions.get(definition) else {
            continue;
        };
        let properties: serde_json::Map<String, Value> = resource
            .get("properties")
            .and_then(Value::as_object)
            .map(|properties| {
                properties
                    .iter()
                    .map(|(name, field)| {
                        (name.clone(), json!({"anyOf": [field, {"type": "null"}]}))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let patch = format!("{definition}Override");
        defs.insert(
            patch.clone(),
            json!({
                "description": format!("An override of a {definition}: the fields to change (`null` removes one)."),
                "type": "object",
                "properties": properties,
                "additionalProperties": false,
            }),
        );
        patterns.insert(
            format!("^{section}\\.{key}$"),
            json!({"$ref": format!("#/$defs/{patch}")}),
        );
    }
    if let Some(object) = environment.as_object_mut() {
        let existing = object.entry("$defs").or_insert_with(|| json!({}));
        if let Some(existing) = existing.as_object_mut() {
            existing.extend(defs);
        }
        if let Some(overrides) = object
            .get_mut("properties")
            .and_then(|p| p.get_mut("overrides"))
        {
            *overrides = json!({
                "description": "Fields to change, by address (`r2_buckets.assets`); deep-merged, `null` removes a field.",
                "type": ["object", "null"],
                "patternProperties": patterns,
                "additionalProperties": false,
            });
        }
    }
}

/// A file under `infra/`: any number of sections, each a mapping of logical
/// keys to resources.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct InfraFile {
    /// Workers KV namespaces, by key (address `kv_namespaces.<key>`).
    #[schemars(extend("propertyNames" = {"pattern": KEY_PATTERN}))]
    kv_namespaces: Option<BTreeMap<String, KvNamespace>>,
    /// D1 databases, by key (address `d1_databases.<key>`).
    #[schemars(extend("propertyNames" = {"pattern": KEY_PATTERN}))]
    d1_databases: Option<BTreeMap<String, D1Database>>,
    /// R2 buckets, by key (address `r2_buckets.<key>`).
    #[schemars(extend("propertyNames" = {"pattern": KEY_PATTERN}))]
    r2_buckets: Option<BTreeMap<String, R2Bucket>>,
    /// Queues, by key (address `queues.<key>`).
    #[schemars(extend("propertyNames" = {"pattern": KEY_PATTERN}))]
    queues: Option<BTreeMap<String, Queue>>,
    /// DNS records of the environment's zone, by key (address `dns_records.<key>`).
    #[schemars(extend("propertyNames" = {"pattern": KEY_PATTERN}))]
    dns_records: Option<BTreeMap<String, DnsRecord>>,
    /// Pages projects, by key (address `pages_projects.<key>`).
    #[schemars(extend("propertyNames" = {"pattern": KEY_PATTERN}))]
    pages_projects: Option<BTreeMap<String, PagesProject>>,
    /// Workers, by key (address `workers.<key>`).
    #[schemars(extend("propertyNames" = {"pattern": KEY_PATTERN}))]
    workers: Option<BTreeMap<String, Worker>>,
}

/// JavaScript identifiers: binding and secret names.
const IDENTIFIER_PATTERN: &str = "^[A-Za-z_$][A-Za-z0-9_$]*$";

/// A Worker.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Worker {
    /// The script name: lowercase letters, digits, `-` and `_`, at most 63 characters. `${var}` allowed.
    name: String,
    /// The main module (`.js` or `.mjs`), relative to the project root.
    main: String,
    /// Globs (relative to the project root) of more modules, under the main module's directory.
    #[serde(default)]
    modules: Option<Vec<String>>,
    /// A build step whose output holds `main` and the modules (e.g. esbuild bundling TypeScript and npm dependencies).
    #[serde(default)]
    build: Option<WorkerBuild>,
    /// `YYYY-MM-DD`.
    #[schemars(regex(pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$|\$\{"))]
    compatibility_date: String,
    /// Compatibility flags such as `nodejs_compat`.
    #[serde(default)]
    compatibility_flags: Option<Vec<String>>,
    /// Bindings by name (a JavaScript identifier).
    #[schemars(extend("propertyNames" = {"pattern": IDENTIFIER_PATTERN}))]
    #[serde(default)]
    bindings: Option<BTreeMap<String, WorkerBinding>>,
    /// Secrets by name (a JavaScript identifier): where each value comes from.
    #[schemars(extend("propertyNames" = {"pattern": IDENTIFIER_PATTERN}))]
    #[serde(default)]
    secrets: Option<BTreeMap<String, WorkerSecret>>,
    /// Cron triggers, in Cloudflare's five-field syntax.
    #[serde(default)]
    crons: Option<Vec<String>>,
    /// Route patterns (`host/path`) on the environment's zone.
    #[serde(default)]
    routes: Option<Vec<String>>,
    /// Hostnames on the environment's zone.
    #[serde(default)]
    custom_domains: Option<Vec<String>>,
    /// The queues this worker consumes, by queue key.
    #[schemars(extend("propertyNames" = {"pattern": KEY_PATTERN}))]
    #[serde(default)]
    consumers: Option<BTreeMap<String, WorkerConsumer>>,
    /// How a new version goes live (default: immediate).
    #[serde(default)]
    rollout: Option<WorkerRollout>,
    /// Never delete this worker.
    #[serde(default)]
    protect: bool,
}

/// Exactly one target.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub(crate) enum WorkerBinding {
    /// A key of `kv_namespaces`.
    KvNamespace(String),
    /// A key of `d1_databases`.
    D1(String),
    /// A key of `r2_buckets`.
    R2Bucket(String),
    /// A key of `queues` (the worker sends messages to it).
    Queue(String),
    /// A key of `workers`.
    Service(String),
    /// A Durable Object class this worker exports.
    DurableObject(String),
    /// A plain-text variable (`${var}` allowed).
    Text(String),
    /// A JSON variable.
    Json(serde_json::Value),
}

/// Where a secret's value comes from: exactly one of `from_env`, `from_file`.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct WorkerSecret {
    /// An environment variable of the flareops process.
    #[serde(default)]
    from_env: Option<String>,
    /// A file, relative to the project root (not committed).
    #[serde(default)]
    from_file: Option<String>,
    /// The value used against the local account when the source is missing.
    #[serde(default)]
    local_default: Option<String>,
}

/// How a worker consumes a queue (settings left out are Cloudflare's defaults).
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct WorkerConsumer {
    /// Messages per batch, 1-100.
    #[serde(default)]
    batch_size: Option<u8>,
    /// Retries of a message, 0-100.
    #[serde(default)]
    max_retries: Option<u8>,
    /// How long to wait to fill a batch (`5s`; at most `60s`).
    #[serde(default)]
    max_wait_time: Option<String>,
    /// Concurrent invocations, 1-250.
    #[serde(default)]
    max_concurrency: Option<u8>,
    /// How long before a retry (`30s`; at most `12h`).
    #[serde(default)]
    retry_delay: Option<String>,
    /// The key of the queue failed messages go to.
    #[serde(default)]
    dead_letter_queue: Option<String>,
}

/// A worker's build step: a command run in `dir`, cached by its inputs.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct WorkerBuild {
    /// The shell command, run in `dir` (e.g. `npm ci && npm run build`).
    command: String,
    /// The directory it runs in, relative to the project root.
    dir: String,
    /// Globs of the files it reads, relative to `dir` (default: every file but `node_modules` and the output); package.json and lockfiles always count.
    #[serde(default)]
    inputs: Option<Vec<String>>,
    /// The directory it writes, relative to `dir` (default `dist`); `main` and the modules are under it.
    #[serde(default)]
    output: Option<String>,
    /// How long it may run (default `10m`).
    #[serde(default)]
    timeout: Option<String>,
}

/// A rollout strategy.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct WorkerRollout {
    /// `immediate` or `gradual`.
    #[schemars(schema_with = "strategy")]
    strategy: String,
    /// Gradual: increasing percentages ending at 100.
    #[serde(default)]
    steps: Option<Vec<u8>>,
    /// Gradual: time between steps, e.g. `30s`, `5m`, `1h`.
    #[serde(default)]
    wait: Option<String>,
    /// Gradual: an http(s) URL that must answer 2xx between steps.
    #[serde(default)]
    health_url: Option<String>,
}

/// The environment's zone: its name, or `{name, id}`.
#[derive(JsonSchema)]
#[serde(untagged)]
pub(crate) enum EnvironmentZone {
    Name(String),
    Full {
        /// The zone's domain name.
        name: String,
        /// The zone id (32 lowercase hex characters).
        #[schemars(regex(pattern = r"^[0-9a-f]{32}$"))]
        #[serde(default)]
        id: Option<String>,
    },
}

/// A Workers KV namespace.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct KvNamespace {
    /// The namespace title (unique in the account, at most 512 bytes). `${var}` allowed.
    title: String,
    /// Never delete or replace this namespace.
    #[serde(default)]
    protect: bool,
}

/// A D1 database.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct D1Database {
    /// The database name: lowercase letters, digits, `-` and `_`. `${var}` allowed.
    name: String,
    /// Where to create the primary.
    #[schemars(schema_with = "location_hint")]
    #[serde(default)]
    location_hint: Option<String>,
    /// Data-residency jurisdiction.
    #[schemars(schema_with = "jurisdiction")]
    #[serde(default)]
    jurisdiction: Option<String>,
    /// The directory of SQL migrations (`0001_init.sql`, ... as wrangler
    /// writes them), relative to the project root. `${var}` allowed.
    #[serde(default)]
    migrations: Option<String>,
    /// Never delete or replace this database.
    #[serde(default)]
    protect: bool,
}

/// A queue (its backlog is data: deleting it needs `--allow-delete`).
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Queue {
    /// The queue name: 1-63 lowercase letters, digits and `-`. `${var}` allowed.
    name: String,
    /// How long a message waits before delivery (`30s`, `5m`; at most `24h`).
    #[serde(default)]
    delivery_delay: Option<String>,
    /// How long a message is kept (`60s` to `336h`; Cloudflare's default is 4 days).
    #[serde(default)]
    message_retention_period: Option<String>,
    /// Never delete or replace this queue.
    #[serde(default)]
    protect: bool,
}

/// A Pages project and the folder of static files it serves.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PagesProject {
    /// The project name (its `<name>.pages.dev` subdomain): 1-58 lowercase letters, digits and `-`. `${var}` allowed.
    name: String,
    /// The branch whose deployments serve production (`main` by default).
    #[serde(default)]
    production_branch: Option<String>,
    /// The folder of static files to deploy, relative to the project root
    /// (the build's output when the site has a build).
    dir: String,
    /// How to build the site before it is deployed (as a worker's build).
    #[serde(default)]
    build: Option<WorkerBuild>,
    /// Hostnames that serve the site.
    #[serde(default)]
    custom_domains: Option<Vec<String>>,
    /// Never delete or replace this project.
    #[serde(default)]
    protect: bool,
}

/// A DNS record of the environment's zone.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DnsRecord {
    /// The record type.
    #[schemars(rename = "type", schema_with = "record_type")]
    record_type: String,
    /// The name, in the zone (`api`, `@` for the apex) or fully qualified. `${var}` allowed.
    name: String,
    /// The content for the type: an IPv4 or IPv6 address, a host name, TXT text, SRV `weight port target`, CAA `flags tag "value"`.
    content: String,
    /// Traffic goes through Cloudflare (A, AAAA and CNAME only); a route needs it.
    #[serde(default)]
    proxied: Option<bool>,
    /// `auto` (the default; always for proxied records), or 60 to 86400 seconds (`300`, `5m`).
    #[schemars(schema_with = "ttl")]
    #[serde(default)]
    ttl: Option<String>,
    /// MX and SRV: 0 to 65535, lower preferred.
    #[serde(default)]
    priority: Option<u16>,
    /// A note kept with the record (at most 100 characters).
    #[serde(default)]
    comment: Option<String>,
    /// `name:value` tags.
    #[serde(default)]
    tags: Option<Vec<String>>,
    /// Never delete this record.
    #[serde(default)]
    protect: bool,
}

fn record_type(_: &mut SchemaGenerator) -> Schema {
    let values: Vec<&str> = crate::model::DnsRecordType::ALL
        .iter()
        .map(|v| v.as_str())
        .collect();
    one_of(&values)
}

fn ttl(_: &mut SchemaGenerator) -> Schema {
    schemars::json_schema!({
        "anyOf": [
            {"const": "auto"},
            {"type": "integer", "minimum": 60, "maximum": 86400},
            {"type": "string", "pattern": "^[0-9]+(s|m|h)?$"}
        ]
    })
}

/// An R2 bucket.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct R2Bucket {
    /// The bucket name: 3-63 lowercase letters, digits and `-`. `${var}` allowed.
    name: String,
    /// Where to place the bucket.
    #[schemars(schema_with = "location_hint")]
    #[serde(default)]
    location_hint: Option<String>,
    /// Default storage class for new objects.
    #[schemars(schema_with = "storage_class")]
    #[serde(default)]
    storage_class: Option<String>,
    /// Data-residency jurisdiction.
    #[schemars(schema_with = "jurisdiction")]
    #[serde(default)]
    jurisdiction: Option<String>,
    /// Never delete or replace this bucket.
    #[serde(default)]
    protect: bool,
}

/// An environment file `environments/<env>.yaml`.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct EnvironmentFile {
    /// The Cloudflare account (32 lowercase hex characters). Without it and
    /// without `account`, `CLOUDFLARE_ACCOUNT_ID` says.
    #[schemars(regex(pattern = r"^[0-9a-f]{32}$"))]
    account_id: Option<String>,
    /// `local`: the embedded emulator.
    #[schemars(schema_with = "account")]
    #[serde(default)]
    account: Option<String>,
    /// The zone routes and custom domains live on.
    #[serde(default)]
    zone: Option<EnvironmentZone>,
    /// Where flareops keeps its ledger: `{database: NAME}` (a D1 database;
    /// default `flareops-state`).
    #[serde(default)]
    ledger: Option<LedgerSetting>,
    /// Variables for `${name}` in infra strings (`env` is built in).
    #[schemars(extend("propertyNames" = {"pattern": "^[A-Za-z_][A-Za-z0-9_]*$", "not": {"const": "env"}}))]
    vars: Option<BTreeMap<String, String>>,
    /// Fields to change, by address (`r2_buckets.assets`); deep-merged, `null` removes a field.
    /// (Replaced in [`json_schema`] by a patch schema per kind of address.)
    overrides: Option<BTreeMap<String, serde_json::Value>>,
}

/// `ledger:` in an environment.
#[derive(JsonSchema)]
#[allow(dead_code)]
#[serde(deny_unknown_fields)]
pub(crate) struct LedgerSetting {
    /// The D1 database name.
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9-_]*$"))]
    database: String,
}

/// One of `values`, or a string using a `${var}`.
fn one_of(values: &[&str]) -> Schema {
    json_schema!({
        "anyOf": [
            {"type": "string", "enum": values},
            {"type": "string", "pattern": "\\$\\{[A-Za-z_][A-Za-z0-9_]*\\}"},
            {"type": "null"},
        ]
    })
}

fn location_hint(_: &mut SchemaGenerator) -> Schema {
    let values: Vec<&str> = crate::model::LocationHint::ALL
        .iter()
        .map(|v| v.as_str())
        .collect();
    one_of(&values)
}

fn jurisdiction(_: &mut SchemaGenerator) -> Schema {
    let values: Vec<&str> = crate::model::Jurisdiction::ALL
        .iter()
        .map(|v| v.as_str())
        .collect();
    one_of(&values)
}

fn storage_class(_: &mut SchemaGenerator) -> Schema {
    let values: Vec<&str> = crate::model::StorageClass::ALL
        .iter()
        .map(|v| v.as_str())
        .collect();
    one_of(&values)
}

fn strategy(_: &mut SchemaGenerator) -> Schema {
    one_of(&["immediate", "gradual"])
}

fn account(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"enum": ["local", null]})
}
