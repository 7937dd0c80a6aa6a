//! Workers as declared: modules, settings, bindings by logical key, secret
//! references, triggers, routing and the rollout strategy.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize, Serializer};

use super::Jurisdiction;

/// One Worker as declared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkerSpec {
    /// The script name on Cloudflare.
    pub name: String,
    /// The module name of the entry point (one of `modules`).
    pub main_module: String,
    /// Every module, the main one included, sorted by name.
    pub modules: Vec<WorkerModule>,
    /// `YYYY-MM-DD`.
    pub compatibility_date: String,
    /// Sorted, without duplicates.
    pub compatibility_flags: Vec<String>,
    /// Binding name -> target. Names are JavaScript identifiers, unique
    /// across bindings and secrets.
    pub bindings: BTreeMap<String, Binding>,
    /// Secret name -> where its value comes from.
    pub secrets: BTreeMap<String, SecretRef>,
    /// Cron expressions as written, whitespace collapsed; sorted, without duplicates.
    pub crons: Vec<String>,
    /// Route patterns on the environment's zone; sorted, without duplicates.
    pub routes: Vec<String>,
    /// Hostnames on the environment's zone; sorted, without duplicates.
    pub custom_domains: Vec<String>,
    /// The queues this worker consumes, by queue key.
    pub consumers: BTreeMap<String, ConsumerSpec>,
    pub rollout: Rollout,
    /// What a `build:` made the modules from, for a built worker: the plan
    /// shows a change in these sources rather than in the bundle. Not part
    /// of the version's identity (the modules are).
    #[serde(skip)]
    pub build: Option<BuildSources>,
    /// Git pathspecs of the project files this worker's upload is made
    /// from (the main module's directory; for a built worker, its build
    /// directory without `node_modules` and the output): what makes the
    /// manifests "dirty" when it differs from the commit.
    #[serde(skip)]
    pub source_paths: Vec<String>,
}

/// How a worker consumes a queue: the settings it declares (others are
/// Cloudflare's defaults, not compared) and its dead-letter queue.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerSpec {
    pub settings: ConsumerSettings,
    /// A key of `queues` (desired) or a queue name (live).
    pub dead_letter_queue: Option<String>,
}

/// A queue consumer's settings, as Cloudflare names them.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ConsumerSettings {
    pub batch_size: Option<u64>,
    pub max_retries: Option<u64>,
    pub max_wait_time_ms: Option<u64>,
    pub max_concurrency: Option<u64>,
    /// Seconds.
    pub retry_delay: Option<u64>,
}

impl ConsumerSettings {
    /// Whether every setting `self` declares has that value in `live`.
    pub fn satisfied_by(&self, live: &ConsumerSettings) -> bool {
        let same = |want: Option<u64>, have: Option<u64>| want.is_none() || want == have;
        same(self.batch_size, live.batch_size)
            && same(self.max_retries, live.max_retries)
            && same(self.max_wait_time_ms, live.max_wait_time_ms)
            && same(self.max_concurrency, live.max_concurrency)
            && same(self.retry_delay, live.retry_delay)
    }
}

/// A built worker's build and the files it read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildSources {
    pub spec: crate::build::BuildSpec,
    /// Path relative to the project root -> content, sorted.
    pub files: BTreeMap<String, Vec<u8>>,
}

impl WorkerSpec {
    /// The Durable Object classes this worker binds (and so implements).
    pub fn durable_object_classes(&self) -> Vec<&str> {
        let mut classes: Vec<&str> = self
            .bindings
            .values()
            .filter_map(|b| match b {
                Binding::DurableObject(class_name) => Some(class_name.as_str()),
                _ => None,
            })
            .collect();
        classes.sort();
        classes.dedup();
        classes
    }
}

/// One module file of a worker.
#[derive(Clone, PartialEq, Eq)]
pub struct WorkerModule {
    /// The module's name in the upload: its path relative to the main
    /// module's directory, `/`-separated (`index.js`, `lib/util.js`).
    pub name: String,
    pub kind: ModuleKind,
    pub content: Vec<u8>,
}

impl fmt::Debug for WorkerModule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerModule")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("bytes", &self.content.len())
            .finish()
    }
}

impl Serialize for WorkerModule {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        use sha2::{Digest, Sha256};
        let mut s = serializer.serialize_struct("WorkerModule", 3)?;
        s.serialize_field("name", &self.name)?;
        s.serialize_field("kind", &self.kind)?;
        s.serialize_field("sha256", &hex::encode(Sha256::digest(&self.content)))?;
        s.end()
    }
}

/// How a module is uploaded (its part's content type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ModuleKind {
    /// `.js`, `.mjs`: `application/javascript+module`.
    EsModule,
    /// `.cjs`: `application/javascript`.
    CommonJs,
    /// `.txt`, `.html`, `.md`, ...: `text/plain`.
    Text,
    /// `.bin`: `application/octet-stream`.
    Data,
    /// `.wasm`: `application/wasm`.
    Wasm,
    /// `.map`: `application/source-map`, a script module's source map
    /// (uploaded beside it, for stack traces that point at the sources).
    SourceMap,
}

impl ModuleKind {
    pub fn content_type(self) -> &'static str {
        match self {
            ModuleKind::EsModule => "application/javascript+module",
            ModuleKind::CommonJs => "application/javascript",
            ModuleKind::Text => "text/plain",
            ModuleKind::Data => "application/octet-stream",
            ModuleKind::Wasm => "application/wasm",
            ModuleKind::SourceMap => "application/source-map",
        }
    }

    /// The kind a part's content type names.
    pub fn from_content_type(content_type: &str) -> Option<ModuleKind> {
        let essence = content_type.split(';').next().unwrap_or_default().trim();
        [
            ModuleKind::EsModule,
            ModuleKind::CommonJs,
            ModuleKind::Text,
            ModuleKind::Data,
            ModuleKind::Wasm,
            ModuleKind::SourceMap,
        ]
        .into_iter()
        .find(|kind| kind.content_type() == essence)
    }

    /// The kind a file name implies, `None` when the extension is unknown.
    pub fn from_file_name(name: &str) -> Option<ModuleKind> {
        let extension = name.rsplit_once('.')?.1.to_ascii_lowercase();
        Some(match extension.as_str() {
            "js" | "mjs" => ModuleKind::EsModule,
            "cjs" => ModuleKind::CommonJs,
            "txt" | "html" | "htm" | "md" | "css" | "json" | "svg" | "csv" => ModuleKind::Text,
            "bin" => ModuleKind::Data,
            "wasm" => ModuleKind::Wasm,
            "map" => ModuleKind::SourceMap,
            _ => return None,
        })
    }
}

/// What a binding points at. Resources are named by their logical key in
/// this environment, never by a Cloudflare id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Binding {
    /// `{kv_namespace: key}`: a key of `kv_namespaces`.
    KvNamespace(String),
    /// `{d1: key}`: a key of `d1_databases`.
    D1(String),
    /// `{r2_bucket: key}`: a key of `r2_buckets`.
    R2Bucket(String),
    /// `{queue: key}`: a key of `queues` (the worker produces to it).
    Queue(String),
    /// `{service: key}`: a key of `workers`.
    Service(String),
    /// `{durable_object: ClassName}`: a class this worker exports.
    DurableObject(String),
    /// `{text: "..."}`: a plain-text var.
    Text(String),
    /// `{json: ...}`: a JSON var.
    Json(serde_json::Value),
}

/// Where a secret's value comes from, and the value itself (in memory only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecretRef {
    pub source: SecretSource,
    pub value: SecretValue,
}

/// A secret's source. Naming it is safe; its value is never printed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretSource {
    /// `{from_env: VAR}`: an environment variable of the process (the CI's secrets).
    FromEnv(String),
    /// `{from_file: path}`: a file, relative to the project root.
    FromFile(PathBuf),
    /// The documented local default, used only against the local account.
    LocalDefault,
    /// `{from_env: VAR}` with `VAR` not set in a read-only run (`plan`,
    /// `drift`): the value is unknown, so it is compared by name only and
    /// never sent (apply requires every value).
    Unavailable(String),
}

/// A secret value. `Debug`, `Display` and `Serialize` print a placeholder;
/// only [`SecretValue::expose`] gives the value, for the secrets API.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(String);

impl SecretValue {
    pub fn new(value: impl Into<String>) -> SecretValue {
        SecretValue(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(sensitive)")
    }
}

impl fmt::Display for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(sensitive)")
    }
}

impl Serialize for SecretValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("(sensitive)")
    }
}

/// A binding with its target resolved to what Cloudflare stores: ids and
/// script names instead of logical keys. Part of a version's identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ResolvedBinding {
    KvNamespace {
        namespace_id: String,
    },
    D1 {
        database_id: String,
    },
    R2Bucket {
        bucket_name: String,
        jurisdiction: Option<Jurisdiction>,
    },
    Queue {
        queue_name: String,
    },
    Service {
        service: String,
    },
    DurableObject {
        class_name: String,
    },
    PlainText {
        text: String,
    },
    Json {
        json: serde_json::Value,
    },
}

/// How a new version goes live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "strategy")]
pub enum Rollout {
    /// Deploy the new version at 100% at once.
    Immediate,
    /// Deploy the new version at each percentage beside the current one,
    /// waiting `wait_seconds` and checking `health_url` (2xx) between steps.
    Gradual {
        /// Increasing percentages, the last one 100.
        steps: Vec<u8>,
        wait_seconds: u64,
        health_url: Option<String>,
    },
}

/// The environment's zone, for routes and custom domains.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Zone {
    pub name: String,
    pub id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_values_never_format() {
        let value = SecretValue::new("canary-9f8e7d");
        assert!(!format!("{value:?}{value}").contains("canary"));
        assert!(!serde_json::to_string(&value).unwrap().contains("canary"));
        let reference = SecretRef {
            source: SecretSource::FromEnv("X".into()),
            value,
        };
        assert!(!format!("{reference:?}").contains("canary"));
    }

    #[test]
    fn module_kinds_follow_extensions() {
        assert_eq!(
            ModuleKind::from_file_name("index.js"),
            Some(ModuleKind::EsModule)
        );
        assert_eq!(
            ModuleKind::from_file_name("a/b.MJS"),
            Some(ModuleKind::EsModule)
        );
        assert_eq!(ModuleKind::from_file_name("x.wasm"), Some(ModuleKind::Wasm));
        assert_eq!(ModuleKind::from_file_name("Makefile"), None);
    }
}
