//! The resource model shared by every stage of the pipeline: addresses, the
//! desired state (what git declares for one environment) and the live state
//! (what the account holds). No I/O, no YAML, no wire JSON lives here.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

mod dns;
mod pages;
mod resolve;
mod worker;

pub use dns::{
    DnsRecordSpec, DnsRecordType, LiveDnsRecord, WORKER_RECORD_CONTENT, canonical_content,
    qualify_name,
};
pub use pages::{
    LivePagesDeployment, LivePagesProject, PagesFile, PagesProjectSpec, asset_hash, digest_in,
    digest_marker, manifest_digest, site_path_ignored,
};
pub use resolve::{LiveIndex, LiveResource};

pub use worker::{
    Binding, BuildSources, ConsumerSettings, ConsumerSpec, ModuleKind, ResolvedBinding, Rollout,
    SecretRef, SecretSource, SecretValue, WorkerModule, WorkerSpec, Zone,
};

/// The kinds of resource flareops manages. The serialized name is the
/// manifest section and the first half of an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceKind {
    KvNamespaces,
    D1Databases,
    R2Buckets,
    Queues,
    DnsRecords,
    PagesProjects,
    Workers,
}

impl ResourceKind {
    pub const ALL: [ResourceKind; 7] = [
        ResourceKind::KvNamespaces,
        ResourceKind::D1Databases,
        ResourceKind::R2Buckets,
        ResourceKind::Queues,
        ResourceKind::DnsRecords,
        ResourceKind::PagesProjects,
        ResourceKind::Workers,
    ];

    /// The manifest section name (`kv_namespaces`, ...).
    pub fn section(self) -> &'static str {
        match self {
            ResourceKind::KvNamespaces => "kv_namespaces",
            ResourceKind::D1Databases => "d1_databases",
            ResourceKind::R2Buckets => "r2_buckets",
            ResourceKind::Queues => "queues",
            ResourceKind::DnsRecords => "dns_records",
            ResourceKind::PagesProjects => "pages_projects",
            ResourceKind::Workers => "workers",
        }
    }

    pub fn from_section(section: &str) -> Option<ResourceKind> {
        ResourceKind::ALL
            .into_iter()
            .find(|kind| kind.section() == section)
    }

    /// A human name for messages ("KV namespace").
    pub fn noun(self) -> &'static str {
        match self {
            ResourceKind::KvNamespaces => "KV namespace",
            ResourceKind::D1Databases => "D1 database",
            ResourceKind::R2Buckets => "R2 bucket",
            ResourceKind::Queues => "queue",
            ResourceKind::DnsRecords => "DNS record",
            ResourceKind::PagesProjects => "Pages project",
            ResourceKind::Workers => "Worker",
        }
    }

    /// Whether resources of this kind hold user data (so deleting or
    /// replacing them loses data).
    pub fn holds_data(self) -> bool {
        match self {
            // A queue's backlog is data.
            ResourceKind::KvNamespaces
            | ResourceKind::D1Databases
            | ResourceKind::R2Buckets
            | ResourceKind::Queues => true,
            // A worker's code and settings live in git; so do a record
            // and a site's files.
            ResourceKind::DnsRecords | ResourceKind::PagesProjects | ResourceKind::Workers => false,
        }
    }
}

/// A resource's stable logical name, `kind.key` (`kv_namespaces.users`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Address {
    pub kind: ResourceKind,
    pub key: String,
}

impl Address {
    pub fn new(kind: ResourceKind, key: impl Into<String>) -> Address {
        Address {
            kind,
            key: key.into(),
        }
    }

    /// Parses `kind.key`; `None` when the kind is unknown or the key empty.
    pub fn parse(text: &str) -> Option<Address> {
        let (section, key) = text.split_once('.')?;
        let kind = ResourceKind::from_section(section)?;
        if key.is_empty() {
            return None;
        }
        Some(Address::new(kind, key))
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.kind.section(), self.key)
    }
}

impl Serialize for Address {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Address {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Address::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("invalid address `{text}`")))
    }
}

/// Data-residency jurisdictions shared by KV, D1 and R2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Jurisdiction {
    Eu,
    Us,
    Fedramp,
}

impl Jurisdiction {
    pub const ALL: [Jurisdiction; 3] = [Jurisdiction::Eu, Jurisdiction::Us, Jurisdiction::Fedramp];

    pub fn as_str(self) -> &'static str {
        match self {
            Jurisdiction::Eu => "eu",
            Jurisdiction::Us => "us",
            Jurisdiction::Fedramp => "fedramp",
        }
    }

    pub fn parse(text: &str) -> Option<Jurisdiction> {
        Jurisdiction::ALL.into_iter().find(|j| j.as_str() == text)
    }
}

/// Location hints accepted by D1 and R2 (`wnam`, `enam`, `weur`, `eeur`, `apac`, `oc`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LocationHint {
    Wnam,
    Enam,
    Weur,
    Eeur,
    Apac,
    Oc,
}

impl LocationHint {
    pub const ALL: [LocationHint; 6] = [
        LocationHint::Wnam,
        LocationHint::Enam,
        LocationHint::Weur,
        LocationHint::Eeur,
        LocationHint::Apac,
        LocationHint::Oc,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LocationHint::Wnam => "wnam",
            LocationHint::Enam => "enam",
            LocationHint::Weur => "weur",
            LocationHint::Eeur => "eeur",
            LocationHint::Apac => "apac",
            LocationHint::Oc => "oc",
        }
    }

    /// Parses a hint case-insensitively (the API reports `WNAM`).
    pub fn parse(text: &str) -> Option<LocationHint> {
        let lower = text.to_ascii_lowercase();
        LocationHint::ALL.into_iter().find(|h| h.as_str() == lower)
    }
}

/// R2 storage classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum StorageClass {
    Standard,
    InfrequentAccess,
}

impl StorageClass {
    pub const ALL: [StorageClass; 2] = [StorageClass::Standard, StorageClass::InfrequentAccess];

    pub fn as_str(self) -> &'static str {
        match self {
            StorageClass::Standard => "Standard",
            StorageClass::InfrequentAccess => "InfrequentAccess",
        }
    }

    pub fn parse(text: &str) -> Option<StorageClass> {
        StorageClass::ALL.into_iter().find(|c| c.as_str() == text)
    }
}

/// A KV namespace as declared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvNamespaceSpec {
    pub title: String,
}

/// A queue as declared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueSpec {
    pub name: String,
    /// Seconds a message waits before delivery (`None`: Cloudflare's default, 0).
    pub delivery_delay: Option<u64>,
    /// Seconds a message is kept (`None`: Cloudflare's default, 4 days).
    pub message_retention_period: Option<u64>,
}

/// A D1 database as declared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct D1DatabaseSpec {
    pub name: String,
    pub location_hint: Option<LocationHint>,
    pub jurisdiction: Option<Jurisdiction>,
    /// The SQL migrations of `migrations: <dir>`, in the order they run
    /// (wrangler's naming: `0001_name.sql`). Empty without a directory.
    #[serde(default)]
    pub migrations: Vec<D1Migration>,
}

/// One migration file.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct D1Migration {
    /// The file name, which is what wrangler's `d1_migrations` table records.
    pub name: String,
    /// The path relative to the project root, for messages.
    pub path: String,
    #[serde(skip)]
    pub sql: String,
    /// SHA-256 of the file, hex.
    pub sha256: String,
}

impl fmt::Debug for D1Migration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("D1Migration")
            .field("name", &self.name)
            .field("path", &self.path)
            .field("bytes", &self.sql.len())
            .finish()
    }
}

/// An R2 bucket as declared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct R2BucketSpec {
    pub name: String,
    pub location_hint: Option<LocationHint>,
    pub storage_class: Option<StorageClass>,
    pub jurisdiction: Option<Jurisdiction>,
}

/// One declared resource plus the settings that are flareops' own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Declared<T> {
    pub spec: T,
    /// `protect: true`: never delete or replace, even with `--allow-delete`.
    pub protect: bool,
}

/// Where an environment lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "id")]
pub enum AccountTarget {
    /// `account: local`: the embedded emulator.
    Local,
    /// `account_id: ...` in the environment file.
    Id(String),
    /// Neither given: `CLOUDFLARE_ACCOUNT_ID` must say.
    FromEnvironment,
}

/// The D1 database the ledger lives in unless an environment says otherwise.
pub const DEFAULT_LEDGER_DATABASE: &str = "flareops-state";

/// The validated, fully resolved model of one environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DesiredState {
    /// The environment's name (`staging`).
    pub environment: String,
    pub account: AccountTarget,
    /// The zone routes and custom domains live on (`zone:` in the environment).
    pub zone: Option<Zone>,
    /// The D1 database of flareops' ledger (`ledger: {database: ...}`).
    pub ledger_database: String,
    pub kv_namespaces: BTreeMap<String, Declared<KvNamespaceSpec>>,
    pub d1_databases: BTreeMap<String, Declared<D1DatabaseSpec>>,
    pub r2_buckets: BTreeMap<String, Declared<R2BucketSpec>>,
    pub queues: BTreeMap<String, Declared<QueueSpec>>,
    /// Records of the environment's zone.
    pub dns_records: BTreeMap<String, Declared<DnsRecordSpec>>,
    pub pages_projects: BTreeMap<String, Declared<PagesProjectSpec>>,
    pub workers: BTreeMap<String, Declared<WorkerSpec>>,
}

impl DesiredState {
    /// Git pathspecs of every project file this state was read from: the
    /// manifests, the migration directories, the workers' sources. Changes
    /// elsewhere in the checkout do not make a run's commit `+dirty`.
    pub fn source_paths(&self) -> Vec<String> {
        let mut paths = vec!["infra".to_string(), "environments".to_string()];
        for database in self.d1_databases.values() {
            for migration in &database.spec.migrations {
                if let Some((dir, _)) = migration.path.rsplit_once('/') {
                    paths.push(dir.to_string());
                }
            }
        }
        for worker in self.workers.values() {
            paths.extend(worker.spec.source_paths.iter().cloned());
        }
        for site in self.pages_projects.values() {
            paths.extend(site.spec.source_paths.iter().cloned());
        }
        paths.sort();
        paths.dedup();
        paths
    }

    pub fn empty(environment: impl Into<String>, account: AccountTarget) -> DesiredState {
        DesiredState {
            environment: environment.into(),
            account,
            zone: None,
            ledger_database: DEFAULT_LEDGER_DATABASE.to_string(),
            kv_namespaces: BTreeMap::new(),
            d1_databases: BTreeMap::new(),
            r2_buckets: BTreeMap::new(),
            queues: BTreeMap::new(),
            dns_records: BTreeMap::new(),
            pages_projects: BTreeMap::new(),
            workers: BTreeMap::new(),
        }
    }

    /// The Cloudflare name of every declared resource, with its kind (KV
    /// title, D1 name, R2 name, worker script name).
    pub fn names(&self) -> Vec<(ResourceKind, &str)> {
        let kv = self.kv_namespaces.values().map(|d| d.spec.title.as_str());
        let d1 = self.d1_databases.values().map(|d| d.spec.name.as_str());
        let r2 = self.r2_buckets.values().map(|d| d.spec.name.as_str());
        let queues = self.queues.values().map(|d| d.spec.name.as_str());
        let dns = self.dns_records.values().map(|d| d.spec.name.as_str());
        let pages = self.pages_projects.values().map(|d| d.spec.name.as_str());
        let workers = self.workers.values().map(|d| d.spec.name.as_str());
        kv.map(|n| (ResourceKind::KvNamespaces, n))
            .chain(d1.map(|n| (ResourceKind::D1Databases, n)))
            .chain(r2.map(|n| (ResourceKind::R2Buckets, n)))
            .chain(queues.map(|n| (ResourceKind::Queues, n)))
            .chain(dns.map(|n| (ResourceKind::DnsRecords, n)))
            .chain(pages.map(|n| (ResourceKind::PagesProjects, n)))
            .chain(workers.map(|n| (ResourceKind::Workers, n)))
            .collect()
    }

    /// Every declared address with its `protect` setting, in address order.
    pub fn addresses(&self) -> Vec<(Address, bool)> {
        fn of<T>(
            kind: ResourceKind,
            map: &BTreeMap<String, Declared<T>>,
        ) -> impl Iterator<Item = (Address, bool)> + '_ {
            map.iter()
                .map(move |(key, d)| (Address::new(kind, key.clone()), d.protect))
        }
        of(ResourceKind::KvNamespaces, &self.kv_namespaces)
            .chain(of(ResourceKind::D1Databases, &self.d1_databases))
            .chain(of(ResourceKind::R2Buckets, &self.r2_buckets))
            .chain(of(ResourceKind::Queues, &self.queues))
            .chain(of(ResourceKind::DnsRecords, &self.dns_records))
            .chain(of(ResourceKind::PagesProjects, &self.pages_projects))
            .chain(of(ResourceKind::Workers, &self.workers))
            .collect()
    }

    /// Whether git declares `address`.
    pub fn declares(&self, address: &Address) -> bool {
        let key = address.key.as_str();
        match address.kind {
            ResourceKind::KvNamespaces => self.kv_namespaces.contains_key(key),
            ResourceKind::D1Databases => self.d1_databases.contains_key(key),
            ResourceKind::R2Buckets => self.r2_buckets.contains_key(key),
            ResourceKind::Queues => self.queues.contains_key(key),
            ResourceKind::DnsRecords => self.dns_records.contains_key(key),
            ResourceKind::PagesProjects => self.pages_projects.contains_key(key),
            ResourceKind::Workers => self.workers.contains_key(key),
        }
    }

    /// The R2 jurisdictions this environment uses (`None` is the default one).
    pub fn r2_jurisdictions(&self) -> Vec<Option<Jurisdiction>> {
        let mut out = vec![None];
        for bucket in self.r2_buckets.values() {
            if let Some(j) = bucket.spec.jurisdiction
                && !out.contains(&Some(j))
            {
                out.push(Some(j));
            }
        }
        out.sort();
        out
    }
}

/// A KV namespace as the account holds it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LiveKvNamespace {
    pub id: String,
    pub title: String,
}

/// A queue as the account holds it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LiveQueue {
    pub id: String,
    pub name: String,
    pub delivery_delay: Option<u64>,
    pub message_retention_period: Option<u64>,
    /// Its consumers (Cloudflare allows one).
    pub consumers: Vec<LiveConsumer>,
}

/// A queue's consumer as the account holds it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LiveConsumer {
    pub id: String,
    /// The consuming script (`None`: an HTTP pull consumer).
    pub script: Option<String>,
    pub settings: ConsumerSettings,
    /// The dead-letter queue's name.
    pub dead_letter_queue: Option<String>,
}

/// A D1 database as the account holds it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LiveD1Database {
    pub uuid: String,
    pub name: String,
    pub jurisdiction: Option<Jurisdiction>,
    /// The names in wrangler's `d1_migrations` table, in the order they
    /// ran; `None` when not read (no migrations declared for it).
    pub applied_migrations: Option<Vec<String>>,
}

/// An R2 bucket as the account holds it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LiveR2Bucket {
    pub name: String,
    pub location: Option<LocationHint>,
    pub storage_class: LiveStorageClass,
    pub jurisdiction: Option<Jurisdiction>,
}

/// A storage class as the account reports it: one flareops knows, or
/// another (a class Cloudflare added since), kept as reported rather than
/// read as one it is not.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LiveStorageClass {
    Known(StorageClass),
    Unknown(String),
}

impl LiveStorageClass {
    /// The class a reported name stands for. An absent class is
    /// `Standard`: the API omits it for buckets created without one, which
    /// Cloudflare stores as `Standard`.
    pub fn reported(name: Option<&str>) -> LiveStorageClass {
        match name {
            None => LiveStorageClass::Known(StorageClass::Standard),
            Some(name) => StorageClass::parse(name).map_or_else(
                || LiveStorageClass::Unknown(name.to_string()),
                LiveStorageClass::Known,
            ),
        }
    }
}

/// What the account holds now, in the same model as [`DesiredState`].
/// Every list is sorted so that equal accounts give equal values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LiveState {
    pub account_id: String,
    pub kv_namespaces: Vec<LiveKvNamespace>,
    pub d1_databases: Vec<LiveD1Database>,
    pub r2_buckets: Vec<LiveR2Bucket>,
    pub queues: Vec<LiveQueue>,
    /// The records of the environment's zone, when they were read (git
    /// declares records or routes, or the ledger records a record).
    pub dns_records: Vec<LiveDnsRecord>,
    /// The Pages projects, when they were read (git declares one, or the
    /// ledger records one).
    pub pages_projects: Vec<LivePagesProject>,
    /// The R2 jurisdictions that were listed (others were not looked at).
    pub r2_jurisdictions_listed: Vec<Option<Jurisdiction>>,
    /// The id of the environment's zone, when it has one and it exists.
    pub zone_id: Option<String>,
    /// The declared workers that exist, by script name.
    pub workers: Vec<LiveWorker>,
    /// What the ledger records flareops manages in this environment;
    /// `None` while the account has no ledger yet.
    pub inventory: Option<Vec<InventoryEntry>>,
    /// Fingerprints of the secret values last sent; `None` without a ledger.
    /// Not part of the state's fingerprint.
    #[serde(skip)]
    pub secret_fingerprints: Option<SecretFingerprints>,
    /// Each migration file flareops applied, by (database name, file name):
    /// its SHA-256, to catch a migration edited after it ran, and the
    /// bookmark taken before it, to undo it.
    #[serde(serialize_with = "entries")]
    pub migration_hashes: BTreeMap<(String, String), RecordedMigration>,
    /// Recorded resources that git no longer declares and that hold no
    /// data (a KV namespace without keys, a D1 database without tables).
    pub empty: Vec<Address>,
    /// What the ledger records for the other environments, as
    /// (environment, entry): a resource one of them manages is not this
    /// environment's to adopt.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recorded_elsewhere: Vec<(String, InventoryEntry)>,
    /// The id of the ledger's D1 database, when the account has one.
    /// Bookkeeping, not part of the fingerprint.
    #[serde(skip)]
    pub ledger: Option<String>,
    /// Every worker script name in the account, when the script list was
    /// read (git declares workers). Not part of the fingerprint.
    #[serde(skip)]
    pub script_names: Option<Vec<String>>,
}

/// A migration file as the ledger records that flareops applied it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RecordedMigration {
    pub sha256: String,
    /// The D1 time-travel bookmark taken just before the file ran; `None`
    /// when the ledger did not record one.
    pub bookmark_before: Option<String>,
}

/// A map with tuple keys as a list of `[key, value]` pairs: JSON map keys
/// must be strings.
fn entries<S: serde::Serializer, K: Serialize, V: Serialize>(
    map: &BTreeMap<K, V>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(map.iter())
}

/// Salted Argon2id fingerprints of secret values (older ledgers: salted SHA-256), by (script name, secret
/// name). `Debug` hides the salt.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretFingerprints {
    salt: String,
    values: BTreeMap<(String, String), String>,
}

/// How a fingerprint prefix marks the Argon2id form.
const ARGON2_PREFIX: &str = "argon2id$";

/// A secret's value against the ledger's record of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fingerprint {
    Same,
    /// The same value, recorded in the older (salted SHA-256) form: the next
    /// apply rewrites the record as Argon2id, without sending the secret.
    SameLegacy,
    Different,
    NotRecorded,
}

impl SecretFingerprints {
    pub fn new(salt: String, values: BTreeMap<(String, String), String>) -> SecretFingerprints {
        SecretFingerprints { salt, values }
    }

    /// The fingerprint of `value` for secret `name` of script `worker`:
    /// Argon2id (19 MiB, 2 passes, 1 lane: OWASP's minimum for password
    /// storage) over the worker, the name and the value, salted with the
    /// ledger's salt, written `argon2id$<hex>`. Slow on purpose: whoever
    /// reads the ledger pays that price for every guess of a value.
    pub fn of(&self, worker: &str, name: &str, value: &SecretValue) -> String {
        let mut input = Vec::new();
        for part in [worker, name, value.expose()] {
            input.extend((part.len() as u64).to_le_bytes());
            input.extend(part.as_bytes());
        }
        let mut out = [0u8; 32];
        // The parameters are constants that Argon2 accepts, and the salt
        // is the ledger's (at least 16 bytes, made by flareops); should
        // either be refused, the fingerprint falls back to the legacy one
        // below, which still never holds the value.
        let params = argon2::Params::new(19 * 1024, 2, 1, Some(out.len()));
        let hashed = params.and_then(|params| {
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
                .hash_password_into(&input, self.salt.as_bytes(), &mut out)
        });
        match hashed {
            Ok(()) => format!("{ARGON2_PREFIX}{}", hex::encode(out)),
            Err(_) => self.legacy(worker, name, value),
        }
    }

    /// The fingerprint flareops wrote before Argon2id: salted SHA-256.
    fn legacy(&self, worker: &str, name: &str, value: &SecretValue) -> String {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        for part in [self.salt.as_str(), worker, name, value.expose()] {
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part.as_bytes());
        }
        hex::encode(hasher.finalize())
    }

    /// Whether the record of secret `name` of script `worker` is in the
    /// older (salted SHA-256) form.
    pub fn is_legacy(&self, worker: &str, name: &str) -> bool {
        self.recorded(worker, name)
            .is_some_and(|recorded| !recorded.starts_with(ARGON2_PREFIX))
    }

    /// Whether `value` is what was recorded for secret `name` of script
    /// `worker`, in whichever form the ledger holds it.
    pub fn compare(&self, worker: &str, name: &str, value: &SecretValue) -> Fingerprint {
        match self.recorded(worker, name) {
            None => Fingerprint::NotRecorded,
            Some(recorded) if recorded.starts_with(ARGON2_PREFIX) => {
                if recorded == self.of(worker, name, value) {
                    Fingerprint::Same
                } else {
                    Fingerprint::Different
                }
            }
            Some(recorded) => {
                if recorded == self.legacy(worker, name, value) {
                    Fingerprint::SameLegacy
                } else {
                    Fingerprint::Different
                }
            }
        }
    }

    /// The recorded fingerprint, if any.
    pub fn recorded(&self, worker: &str, name: &str) -> Option<&str> {
        self.values
            .get(&(worker.to_string(), name.to_string()))
            .map(String::as_str)
    }
}

impl fmt::Debug for SecretFingerprints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretFingerprints")
            .field("salt", &"<redacted>")
            .field("values", &self.values.len())
            .finish()
    }
}

/// One address the ledger records, with the Cloudflare id it had when
/// last applied (KV: namespace id, D1: uuid, R2: `jurisdiction:name`,
/// workers: script name).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct InventoryEntry {
    pub address: Address,
    pub id: String,
    pub name: String,
    /// `protect: true` when last applied: it still guards the resource
    /// after it is removed from git.
    pub protect: bool,
}

impl InventoryEntry {
    /// The id an R2 bucket is recorded under.
    pub fn r2_id(name: &str, jurisdiction: Option<Jurisdiction>) -> String {
        format!(
            "{}:{name}",
            jurisdiction.map(Jurisdiction::as_str).unwrap_or("default")
        )
    }
}

/// A worker script as the account holds it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LiveWorker {
    pub name: String,
    /// The live deployment's versions and their shares, largest share first.
    pub deployment: Vec<LiveDeploymentShare>,
    /// Who made the live deployment (an email, or the API's `source`).
    pub deployed_by: Option<String>,
    /// The metadata of every version in the live deployment.
    pub versions: Vec<LiveVersion>,
    /// Secret names (values are never readable).
    pub secrets: Vec<String>,
    /// Cron expressions, sorted.
    pub crons: Vec<String>,
    /// Zone routes that point at this script, sorted by pattern.
    pub routes: Vec<LiveRoute>,
    /// Custom domains attached to this script, sorted by hostname.
    pub custom_domains: Vec<LiveCustomDomain>,
    /// Durable Object classes this script has namespaces for, sorted.
    pub durable_object_classes: Vec<String>,
    /// The last Durable Object migration tag applied to the script.
    pub migration_tag: Option<String>,
    /// The modules of the version with the largest share: fetched only when
    /// the desired identity differs, to show a code diff. Not part of the
    /// fingerprint: it is a view of a version the metadata already names.
    #[serde(skip)]
    pub content: Option<LiveContent>,
    /// An earlier version that carries the identity git declares (looked
    /// for only when no serving version does): a revert redeploys it by id.
    /// Like `content`, a view that depends on git, not part of the fingerprint.
    #[serde(skip)]
    pub declared_version: Option<String>,
    /// For a built worker: its build's input files as git holds them at the
    /// commit recorded on the serving version (path -> content), when that
    /// commit is known. Read from git, not the account; not part of the
    /// fingerprint.
    #[serde(skip)]
    pub deployed_sources: Option<DeployedSources>,
}

/// A built worker's build inputs at the commit a deployed version records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployedSources {
    /// The commit, as recorded (short hash).
    pub commit: String,
    /// Path relative to the project root -> content.
    pub files: BTreeMap<String, Vec<u8>>,
}

/// The modules of a deployed version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveContent {
    pub main_module: String,
    /// Sorted by name.
    pub modules: Vec<WorkerModule>,
}

impl LiveWorker {
    /// The version serving the largest share of traffic.
    pub fn current_version(&self) -> Option<&LiveVersion> {
        let share = self.deployment.first()?;
        self.versions.iter().find(|v| v.id == share.version_id)
    }

    /// Whether traffic is split between two versions.
    pub fn is_split(&self) -> bool {
        self.deployment.len() > 1
    }
}

/// One version's share of a deployment.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct LiveDeploymentShare {
    pub version_id: String,
    pub percentage: u8,
}

/// A worker version's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LiveVersion {
    pub id: String,
    pub number: u64,
    /// The `workers/tag` annotation: flareops stores the identity here.
    pub tag: Option<String>,
    /// The `workers/message` annotation.
    pub message: Option<String>,
    /// Who uploaded it.
    pub author: Option<String>,
    pub compatibility_date: Option<String>,
    pub compatibility_flags: Vec<String>,
    /// Bindings other than secrets, by name.
    pub bindings: BTreeMap<String, ResolvedBinding>,
}

/// A zone route.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct LiveRoute {
    pub id: String,
    pub pattern: String,
}

/// A custom domain attached to a worker.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct LiveCustomDomain {
    pub id: String,
    pub hostname: String,
}

impl LiveState {
    /// Sorts every list so that the value (and its fingerprint) does not depend
    /// on the order the API returned things in.
    pub fn normalize(&mut self) {
        self.kv_namespaces.sort();
        self.d1_databases.sort();
        self.r2_buckets.sort();
        self.queues.sort();
        self.dns_records.sort();
        self.pages_projects.sort();
        self.r2_jurisdictions_listed.sort();
        self.r2_jurisdictions_listed.dedup();
        for worker in &mut self.workers {
            worker.deployment.sort_by(|a, b| {
                b.percentage
                    .cmp(&a.percentage)
                    .then(a.version_id.cmp(&b.version_id))
            });
            worker.versions.sort_by(|a, b| a.id.cmp(&b.id));
            worker.secrets.sort();
            worker.crons.sort();
            worker.routes.sort_by(|a, b| a.pattern.cmp(&b.pattern));
            worker
                .custom_domains
                .sort_by(|a, b| a.hostname.cmp(&b.hostname));
            worker.durable_object_classes.sort();
        }
        self.workers.sort_by(|a, b| a.name.cmp(&b.name));
        if let Some(inventory) = &mut self.inventory {
            inventory.sort();
        }
    }

    /// SHA-256 of the canonical JSON of the normalized state, hex encoded.
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut normalized = self.clone();
        normalized.normalize();
        let bytes = serde_json::to_vec(&normalized).unwrap_or_default();
        hex::encode(Sha256::digest(&bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_round_trips_through_text() {
        let address = Address::parse("kv_namespaces.users").expect("valid address");
        assert_eq!(address.kind, ResourceKind::KvNamespaces);
        assert_eq!(address.key, "users");
        assert_eq!(address.to_string(), "kv_namespaces.users");
        assert_eq!(
            Address::parse("queues.jobs").map(|a| a.kind),
            Some(ResourceKind::Queues)
        );
        assert!(Address::parse("pages.site").is_none());
        assert!(Address::parse("kv_namespaces.").is_none());
        assert!(Address::parse("kv_namespaces").is_none());
    }

    #[test]
    fn fingerprint_ignores_list_order() {
        let a = LiveKvNamespace {
            id: "1".into(),
            title: "a".into(),
        };
        let b = LiveKvNamespace {
            id: "2".into(),
            title: "b".into(),
        };
        let one = LiveState {
            kv_namespaces: vec![a.clone(), b.clone()],
            ..LiveState::default()
        };
        let two = LiveState {
            kv_namespaces: vec![b, a],
            ..LiveState::default()
        };
        assert_eq!(one.fingerprint(), two.fingerprint());
        let three = LiveState::default();
        assert_ne!(one.fingerprint(), three.fingerprint());
    }

    #[test]
    fn fingerprint_covers_recorded_migrations() {
        let recorded = |bookmark: &str| {
            let mut live = LiveState::default();
            live.migration_hashes.insert(
                ("db".into(), "0001_init.sql".into()),
                RecordedMigration {
                    sha256: "abc".into(),
                    bookmark_before: Some(bookmark.into()),
                },
            );
            live
        };
        let empty = LiveState::default().fingerprint();
        assert_ne!(recorded("b1").fingerprint(), empty);
        assert_ne!(recorded("b1").fingerprint(), recorded("b2").fingerprint());
    }
}
