//! The planner: a pure, deterministic function from the desired state and
//! the live state to an ordered list of changes. No I/O, no clock, no async:
//! the same inputs give a byte-identical plan.
//!
//! A declared address is matched to the live resource the ledger recorded
//! for it, else by its Cloudflare name ([`crate::model::LiveIndex::resolve`]). Resources
//! the ledger records that git no longer declares are deleted (with
//! `--allow-delete`); before the first apply has recorded an inventory,
//! nothing is deleted, and the plan says so ([`Note::NoLedgerYet`]).
//!
//! The plan is data, not words: fields, values, conflicts and notes are
//! enums, and only `crate::render` turns them into text.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

mod dns;
mod pages;
mod saved;
mod storage;
mod worker;

pub use saved::{SavedPlan, SavedPlanError, manifest_fingerprint};
pub use worker::{identity_tag, live_identity, resolve_bindings, worker_identity};

use crate::model::{
    Address, DesiredState, Jurisdiction, LiveState, LocationHint, ResolvedBinding, Rollout,
    SecretSource, StorageClass,
};

/// The version of the plan's JSON schema (`docs/plan-json.md`). Bumped on
/// any change that is not a pure addition.
pub const FORMAT_VERSION: u32 = 2;

/// An ordered list of changes for one environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub format_version: u32,
    pub environment: String,
    pub account_id: String,
    /// SHA-256 of the live state this plan was computed from.
    pub live_fingerprint: String,
    pub changes: Vec<Change>,
    /// Declared resources that already match.
    pub unchanged: Vec<Address>,
    pub notes: Vec<Note>,
}

/// What happens to one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Create,
    Update,
    Replace,
    /// Removed from git, recorded in the ledger: apply deletes it (only with
    /// `--allow-delete`).
    Delete,
    /// Exists in the account under the declared name but the ledger does
    /// not record it (made by hand or by wrangler): apply records it, and
    /// runs the steps that bring it in line, if any. Never silent.
    Adopt,
}

impl ChangeKind {
    /// The name the JSON plan and the journal use (`create`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Create => "create",
            ChangeKind::Update => "update",
            ChangeKind::Replace => "replace",
            ChangeKind::Delete => "delete",
            ChangeKind::Adopt => "adopt",
        }
    }
}

/// One planned change: the address, a field-level diff and the exact API
/// steps `apply` will run, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub address: Address,
    pub kind: ChangeKind,
    /// Whether the change deletes data (a replace of a KV, D1 or R2 resource).
    pub destructive: bool,
    /// `protect: true` in the manifest: a destructive change is refused.
    pub protected: bool,
    pub fields: Vec<FieldDiff>,
    pub steps: Steps,
    /// Why apply must not run this change as planned. Apply refuses the plan.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conflicts: Vec<Conflict>,
    /// Unified diffs of a worker's changed modules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub code_diff: Vec<ModuleDiff>,
}

/// A unified diff of one module (`---` deployed, `+++` git).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleDiff {
    pub module: String,
    pub diff: String,
}

/// One field's old and new value (`None` = absent).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldDiff {
    pub field: Field,
    pub before: Option<Value>,
    pub after: Option<Value>,
    /// The field cannot change in place: the resource is replaced.
    pub forces_replacement: bool,
}

impl FieldDiff {
    /// A field a create sets.
    pub fn added(field: Field, value: Value) -> FieldDiff {
        FieldDiff::changed(field, None, Some(value))
    }

    /// A field a change removes.
    pub fn removed(field: Field, value: Value) -> FieldDiff {
        FieldDiff::changed(field, Some(value), None)
    }

    pub fn changed(field: Field, before: Option<Value>, after: Option<Value>) -> FieldDiff {
        FieldDiff {
            field,
            before,
            after,
            forces_replacement: false,
        }
    }

    /// The same diff, marked as forcing a replacement.
    pub fn forcing_replacement(self) -> FieldDiff {
        FieldDiff {
            forces_replacement: true,
            ..self
        }
    }
}

/// Which field of a resource a diff is about. Serialized as its path
/// (`title`, `bindings.DB`, `secrets.JWT_SECRET`, `routes[a.com/*]`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Field {
    /// A KV namespace's title.
    Title,
    /// The Cloudflare name (D1 database, R2 bucket, worker script; the
    /// recorded name of a resource being deleted).
    Name,
    LocationHint,
    Jurisdiction,
    StorageClass,
    /// A D1 database's applied migration files.
    Migrations,
    /// What a D1 bookmark restore loses.
    DataLoss,
    MainModule,
    Modules,
    CompatibilityDate,
    CompatibilityFlags,
    /// The worker version that serves traffic.
    Version,
    /// The split of traffic between versions.
    Deployment,
    /// One binding, by name.
    Binding(String),
    /// One secret, by name.
    Secret(String),
    Crons,
    /// One route, by pattern.
    Route(String),
    /// One custom domain, by hostname.
    CustomDomain(String),
    /// Durable Object classes that get new namespaces.
    DurableObjectClasses,
    /// A queue's delivery delay.
    DeliveryDelay,
    /// A queue's message retention period.
    MessageRetentionPeriod,
    /// How the worker consumes a queue, by the queue's key.
    Consumer(String),
    /// A DNS record's type.
    RecordType,
    /// A DNS record's content.
    Content,
    /// Whether a DNS record is proxied.
    Proxied,
    /// A DNS record's TTL.
    Ttl,
    /// An MX or SRV record's priority.
    Priority,
    /// A DNS record's comment.
    Comment,
    /// A DNS record's tags.
    Tags,
    /// A Pages project's production branch.
    ProductionBranch,
    /// The files a Pages project serves in production.
    Files,
}

impl Field {
    const PLAIN: [(Field, &'static str); 25] = [
        (Field::Title, "title"),
        (Field::Name, "name"),
        (Field::LocationHint, "location_hint"),
        (Field::Jurisdiction, "jurisdiction"),
        (Field::StorageClass, "storage_class"),
        (Field::Migrations, "migrations"),
        (Field::DataLoss, "data_loss"),
        (Field::MainModule, "main_module"),
        (Field::Modules, "modules"),
        (Field::CompatibilityDate, "compatibility_date"),
        (Field::CompatibilityFlags, "compatibility_flags"),
        (Field::Version, "version"),
        (Field::Deployment, "deployment"),
        (Field::Crons, "crons"),
        (Field::DeliveryDelay, "delivery_delay"),
        (Field::MessageRetentionPeriod, "message_retention_period"),
        (Field::RecordType, "type"),
        (Field::Content, "content"),
        (Field::Proxied, "proxied"),
        (Field::Ttl, "ttl"),
        (Field::Priority, "priority"),
        (Field::Comment, "comment"),
        (Field::Tags, "tags"),
        (Field::ProductionBranch, "production_branch"),
        (Field::Files, "files"),
    ];

    /// Parses a field's path, the inverse of its `Display`.
    pub fn parse(text: &str) -> Option<Field> {
        if let Some((field, _)) = Field::PLAIN.iter().find(|(_, name)| *name == text) {
            return Some(field.clone());
        }
        if text == "durable_objects.new_sqlite_classes" {
            return Some(Field::DurableObjectClasses);
        }
        let bracketed = |prefix: &str| {
            text.strip_prefix(prefix)?
                .strip_suffix(']')
                .map(str::to_string)
        };
        if let Some(name) = text.strip_prefix("bindings.") {
            return Some(Field::Binding(name.to_string()));
        }
        if let Some(name) = text.strip_prefix("secrets.") {
            return Some(Field::Secret(name.to_string()));
        }
        if let Some(queue) = text.strip_prefix("consumers.") {
            return Some(Field::Consumer(queue.to_string()));
        }
        if let Some(pattern) = bracketed("routes[") {
            return Some(Field::Route(pattern));
        }
        bracketed("custom_domains[").map(Field::CustomDomain)
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Field::Binding(name) => write!(f, "bindings.{name}"),
            Field::Secret(name) => write!(f, "secrets.{name}"),
            Field::Consumer(queue) => write!(f, "consumers.{queue}"),
            Field::Route(pattern) => write!(f, "routes[{pattern}]"),
            Field::CustomDomain(hostname) => write!(f, "custom_domains[{hostname}]"),
            Field::DurableObjectClasses => f.write_str("durable_objects.new_sqlite_classes"),
            plain => {
                let name = Field::PLAIN
                    .iter()
                    .find(|(field, _)| field == plain)
                    .map_or("", |(_, name)| name);
                f.write_str(name)
            }
        }
    }
}

impl Serialize for Field {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Field::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown field `{text}`")))
    }
}

/// A field's value. Serialized with its kind as the key
/// (`{"text": "users-staging"}`), so a reader never guesses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Value {
    /// A name, title, date, pattern or hostname.
    Text(String),
    /// Crons, flags, module names, migration files, classes.
    List(Vec<String>),
    LocationHint(LocationHint),
    Jurisdiction(Jurisdiction),
    StorageClass(StorageClass),
    /// A binding as Cloudflare stores it.
    Binding(ResolvedBinding),
    /// A binding to a resource this plan creates or replaces: its id is
    /// known after apply.
    PendingBinding(Address),
    /// A secret: never its value.
    Secret(SecretState),
    Version(VersionRef),
    /// Traffic shares, largest first.
    Deployment(Vec<Share>),
    /// Applied migration files a restore undoes, and files that run.
    MigrationChanges {
        undo: Vec<String>,
        run: Vec<String>,
    },
    /// Writes since this D1 bookmark are lost.
    WritesSince(String),
    /// A duration, in seconds.
    Seconds(u64),
    /// The files a site serves: how many, their manifest's digest, and
    /// which paths a deployment adds, changes and removes (when the
    /// deployed files are known).
    Site {
        files: usize,
        digest: String,
        changes: Option<SiteChanges>,
    },
    /// An earlier deployment of a site, served again (no upload).
    Redeploy {
        deployment_id: String,
        created_on: String,
    },
    /// A queue consumer: its declared settings and dead-letter queue (name).
    Consumer {
        settings: crate::model::ConsumerSettings,
        dead_letter_queue: Option<String>,
    },
}

/// The paths a site deployment adds, changes and removes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteChanges {
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub removed: Vec<String>,
}

/// What the plan knows of a secret. Never its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretState {
    /// The worker has it (or will have it).
    Set,
    /// Its value differs from the fingerprint the ledger recorded.
    Changed,
    /// The ledger has no fingerprint of it yet: sent once to record one.
    NotRecorded,
}

/// A worker version, as a plan names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VersionRef {
    /// A version in the account (`#12`, with flareops' tag when it has one).
    Deployed { number: u64, tag: Option<String> },
    /// A version this apply uploads; the tag is unknown while a binding
    /// target does not exist yet.
    New { tag: Option<String> },
    /// An earlier version that carries what git declares, redeployed by id.
    Existing { version_id: String },
}

/// One version's share of a deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Share {
    pub version_id: String,
    pub percentage: u8,
}

/// Why apply must not run a change as planned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "conflict", rename_all = "snake_case")]
pub enum Conflict {
    /// Routes, custom domains or DNS records need the environment's zone,
    /// and the account does not have it.
    ZoneNotFound { zone: Option<String> },
    /// Someone else split the live deployment between versions.
    SplitDeployment {
        shares: Vec<Share>,
        deployed_by: Option<String>,
    },
    /// Applied migration files changed since they ran (paths).
    MigrationsEdited { files: Vec<String> },
    /// The queue a worker declares it consumes already has another
    /// consumer (Cloudflare allows one).
    QueueConsumedElsewhere { queue: String, consumer: String },
    /// The record's hostname is a custom domain of a Worker or a Pages project: Cloudflare owns
    /// its DNS record and refuses another.
    HostnameIsCustomDomain { hostname: String },
    /// The resource to adopt is recorded by another environment's
    /// inventory: two environments would manage it.
    RecordedElsewhere {
        /// The environment that records it.
        environment: String,
        /// The environment being planned, which would adopt it.
        adopter: String,
    },
    /// An applied migration git no longer declares, with no bookmark to
    /// restore (flareops did not apply it).
    MigrationNotUndoable { file: String },
    /// The new name is taken by another resource of the account, which
    /// this environment does not manage (a rename would fail).
    NameTaken { name: String, id: String },
}

/// Something a reader of the plan should know.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "note", rename_all = "snake_case")]
pub enum Note {
    /// The account has no ledger yet: nothing is deleted.
    NoLedgerYet,
    /// Secret values are compared by name only (no ledger fingerprints).
    SecretsNotCompared,
    /// This run cannot read these variables: those secrets are compared by
    /// name only.
    SecretValuesUnavailable { variables: Vec<String> },
    /// A location hint differs from where the resource is: a hint is only
    /// a wish at creation (Cloudflare may place it elsewhere), so nothing
    /// is replaced for it.
    LocationDiffers {
        address: Address,
        declared: LocationHint,
        actual: Option<LocationHint>,
    },
    /// A worker route's hostname has no proxied DNS record in the zone
    /// (declared or existing): the route never sees traffic.
    RouteWithoutRecord {
        address: Address,
        pattern: String,
        hostname: String,
    },
}

/// The API steps of one change, by the kind of resource it is about, so
/// the executor's dispatch is exhaustive. Serialized as a list of
/// `{"op": ...}` objects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Steps {
    KvNamespace(Vec<KvStep>),
    D1Database(Vec<D1Step>),
    R2Bucket(Vec<R2Step>),
    Queue(Vec<QueueStep>),
    DnsRecord(Vec<DnsStep>),
    PagesProject(Vec<PagesStep>),
    Worker(Vec<WorkerStep>),
}

impl Steps {
    pub fn len(&self) -> usize {
        match self {
            Steps::KvNamespace(steps) => steps.len(),
            Steps::D1Database(steps) => steps.len(),
            Steps::R2Bucket(steps) => steps.len(),
            Steps::Queue(steps) => steps.len(),
            Steps::DnsRecord(steps) => steps.len(),
            Steps::PagesProject(steps) => steps.len(),
            Steps::Worker(steps) => steps.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum QueueStep {
    #[serde(rename = "create_queue")]
    Create {
        name: String,
        delivery_delay: Option<u64>,
        message_retention_period: Option<u64>,
    },
    /// Rename and set the declared settings in place (`PATCH`): the
    /// backlog is kept.
    #[serde(rename = "update_queue")]
    Update {
        id: String,
        name: String,
        delivery_delay: Option<u64>,
        message_retention_period: Option<u64>,
    },
    #[serde(rename = "delete_queue")]
    Delete { id: String, name: String },
}

/// Pages project steps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum PagesStep {
    #[serde(rename = "create_pages_project")]
    CreateProject {
        name: String,
        production_branch: String,
    },
    #[serde(rename = "update_pages_project")]
    UpdateProject {
        name: String,
        production_branch: String,
    },
    /// Direct Upload of the declared folder: the files Pages lacks are
    /// uploaded, then a production deployment names every file.
    #[serde(rename = "deploy_pages")]
    Deploy {
        project: String,
        digest: String,
        files: usize,
    },
    /// Serve an earlier production deployment again (it has the declared
    /// files): nothing is uploaded.
    #[serde(rename = "rollback_pages")]
    Rollback {
        project: String,
        deployment_id: String,
    },
    #[serde(rename = "add_pages_domain")]
    AddDomain { project: String, domain: String },
    #[serde(rename = "remove_pages_domain")]
    RemoveDomain { project: String, domain: String },
    #[serde(rename = "delete_pages_project")]
    DeleteProject { name: String },
}

/// DNS record steps. Apply sends every DNS step of a plan in one batch
/// request (Cloudflare runs a batch as one transaction).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum DnsStep {
    #[serde(rename = "create_dns_record")]
    Create { record: crate::model::DnsRecordSpec },
    /// Overwrite the record in place (`PUT`): it keeps its id.
    #[serde(rename = "update_dns_record")]
    Update {
        id: String,
        record: crate::model::DnsRecordSpec,
    },
    #[serde(rename = "delete_dns_record")]
    Delete {
        id: String,
        name: String,
        #[serde(rename = "type")]
        record_type: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum KvStep {
    #[serde(rename = "create_kv_namespace")]
    Create { title: String },
    /// Rename in place: same id, data kept.
    #[serde(rename = "rename_kv_namespace")]
    Rename { id: String, title: String },
    #[serde(rename = "delete_kv_namespace")]
    Delete { id: String, title: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum D1Step {
    #[serde(rename = "create_d1_database")]
    Create {
        name: String,
        location_hint: Option<LocationHint>,
        jurisdiction: Option<Jurisdiction>,
    },
    #[serde(rename = "delete_d1_database")]
    Delete { uuid: String, name: String },
    /// Take a time-travel bookmark, then run these migration files in
    /// order, each recorded in wrangler's `d1_migrations` table. `uuid` is
    /// `None` when this change creates the database.
    #[serde(rename = "apply_d1_migrations")]
    ApplyMigrations {
        uuid: Option<String>,
        name: String,
        migrations: Vec<String>,
    },
    /// Restore the D1 time-travel bookmark taken just before the earliest
    /// of `undoes` ran: undoes those applied migration files (in the order
    /// they ran) and every write since.
    #[serde(rename = "restore_d1_bookmark")]
    RestoreBookmark {
        uuid: String,
        name: String,
        bookmark: String,
        undoes: Vec<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum R2Step {
    #[serde(rename = "create_r2_bucket")]
    Create {
        name: String,
        location_hint: Option<LocationHint>,
        storage_class: Option<StorageClass>,
        jurisdiction: Option<Jurisdiction>,
    },
    #[serde(rename = "set_r2_storage_class")]
    SetStorageClass {
        name: String,
        jurisdiction: Option<Jurisdiction>,
        storage_class: StorageClass,
    },
    /// Delete every object of the bucket (R2 deletes only empty buckets):
    /// before the delete of a bucket that is not known to be empty.
    #[serde(rename = "empty_r2_bucket")]
    Empty {
        name: String,
        jurisdiction: Option<Jurisdiction>,
    },
    #[serde(rename = "delete_r2_bucket")]
    Delete {
        name: String,
        jurisdiction: Option<Jurisdiction>,
    },
}

/// A worker's steps, by what they touch: its versions and deployments,
/// its settings, its routing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum WorkerStep {
    Version(VersionStep),
    Setting(SettingStep),
    Routing(RoutingStep),
}

impl From<VersionStep> for WorkerStep {
    fn from(step: VersionStep) -> WorkerStep {
        WorkerStep::Version(step)
    }
}

impl From<SettingStep> for WorkerStep {
    fn from(step: SettingStep) -> WorkerStep {
        WorkerStep::Setting(step)
    }
}

impl From<RoutingStep> for WorkerStep {
    fn from(step: RoutingStep) -> WorkerStep {
        WorkerStep::Routing(step)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum VersionStep {
    /// `PUT` the whole script: a first deploy, or one that carries a
    /// Durable Object migration. Deploys the new version at 100% at once.
    #[serde(rename = "upload_worker_script")]
    UploadScript {
        name: String,
        /// The version's identity, or `None` when it depends on ids that
        /// this apply creates.
        identity: Option<String>,
        migration: Option<DurableObjectMigration>,
        /// Secrets whose values (from the CI environment) this upload
        /// carries; the worker's other secrets are kept.
        secrets: Vec<String>,
    },
    /// Upload a new version without deploying it.
    #[serde(rename = "upload_worker_version")]
    UploadVersion {
        name: String,
        identity: Option<String>,
        secrets: Vec<String>,
    },
    /// Deploy the version uploaded by this change, beside `previous` (the
    /// version serving all traffic when the plan was made) for a gradual
    /// rollout.
    #[serde(rename = "deploy_worker_version")]
    Deploy {
        name: String,
        rollout: Rollout,
        previous: Option<String>,
    },
    /// Deploy an existing version that carries the declared identity (a
    /// revert): no upload.
    #[serde(rename = "redeploy_worker_version")]
    Redeploy {
        name: String,
        version_id: String,
        rollout: Rollout,
        previous: Option<String>,
    },
    /// Finish a rollout an earlier apply left split: the version git
    /// declares goes to 100%.
    #[serde(rename = "finish_worker_rollout")]
    FinishRollout { name: String, version_id: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum SettingStep {
    /// Delete a secret removed from git (after the new version is live).
    #[serde(rename = "delete_worker_secret")]
    DeleteSecret { name: String, secret: String },
    /// Replace the cron triggers.
    #[serde(rename = "set_worker_crons")]
    SetCrons { name: String, crons: Vec<String> },
    /// Delete the script (removed from git), with everything attached.
    #[serde(rename = "delete_worker_script")]
    DeleteScript { name: String },
    /// Make the script the consumer of a queue with these settings: create
    /// it, or (with `consumer_id`) replace it. `queue_id` is `None` when
    /// this apply creates the queue.
    #[serde(rename = "put_queue_consumer")]
    PutConsumer {
        name: String,
        queue: String,
        queue_id: Option<String>,
        consumer_id: Option<String>,
        settings: crate::model::ConsumerSettings,
        dead_letter_queue: Option<String>,
    },
    /// Stop consuming a queue git no longer names.
    #[serde(rename = "delete_queue_consumer")]
    DeleteConsumer {
        name: String,
        queue: String,
        queue_id: String,
        consumer_id: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum RoutingStep {
    #[serde(rename = "create_worker_route")]
    CreateRoute {
        zone_id: String,
        pattern: String,
        script: String,
    },
    #[serde(rename = "delete_worker_route")]
    DeleteRoute {
        zone_id: String,
        route_id: String,
        pattern: String,
    },
    #[serde(rename = "attach_custom_domain")]
    AttachDomain {
        zone_id: String,
        hostname: String,
        script: String,
    },
    #[serde(rename = "detach_custom_domain")]
    DetachDomain { domain_id: String, hostname: String },
}

/// A Durable Object migration: the classes that get new (SQLite-backed)
/// namespaces, and the tags it moves the script between.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DurableObjectMigration {
    pub old_tag: Option<String>,
    pub new_tag: String,
    pub new_sqlite_classes: Vec<String>,
}

/// Counts of a plan's changes by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub adopt: usize,
    pub create: usize,
    pub update: usize,
    pub replace: usize,
    pub delete: usize,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// About how many requests applying this plan takes beyond reading
    /// the account: one per step, a migration step two per file (the
    /// bookmark and the file) plus one for wrangler's tracking table, and
    /// the ledger's writes (finding it, the lock with its reads, one
    /// journal write per kind of change, the closing write). An estimate
    /// for the plan's footer, not a promise.
    pub fn apply_requests(&self) -> u64 {
        let steps: usize = self
            .changes
            .iter()
            .map(|change| match &change.steps {
                Steps::D1Database(steps) => steps
                    .iter()
                    .map(|step| match step {
                        D1Step::ApplyMigrations { migrations, .. } => 1 + 2 * migrations.len(),
                        _ => 1,
                    })
                    .sum(),
                steps => steps.len(),
            })
            .sum();
        let kinds: std::collections::BTreeSet<_> =
            self.changes.iter().map(|c| c.address.kind).collect();
        let ledger = if self.is_empty() { 0 } else { 3 + kinds.len() };
        u64::try_from(steps + ledger).unwrap_or(u64::MAX)
    }

    pub fn summary(&self) -> Summary {
        let mut summary = Summary::default();
        for change in &self.changes {
            match change.kind {
                ChangeKind::Create => summary.create += 1,
                ChangeKind::Update => summary.update += 1,
                ChangeKind::Replace => summary.replace += 1,
                ChangeKind::Delete => summary.delete += 1,
                ChangeKind::Adopt => summary.adopt += 1,
            }
        }
        summary
    }

    pub fn destructive_changes(&self) -> impl Iterator<Item = &Change> {
        self.changes.iter().filter(|c| c.destructive)
    }

    /// The change of `address`, if the plan has one.
    pub fn change(&self, address: &Address) -> Option<&Change> {
        self.changes.iter().find(|c| &c.address == address)
    }
}

/// Computes the plan that takes `live` to `desired`.
pub fn plan(desired: &DesiredState, live: &LiveState) -> Plan {
    let index = live.index();
    let mut changes = Vec::new();
    let mut unchanged = Vec::new();
    let mut notes = Vec::new();
    if live.inventory.is_none() {
        notes.push(Note::NoLedgerYet);
    }
    let mut settle = |address: Address, change: Option<Change>| match change {
        Some(change) => changes.push(change),
        None => unchanged.push(address),
    };
    for (address, _) in desired.addresses() {
        let change = match address.kind {
            crate::model::ResourceKind::KvNamespaces => storage::plan_kv(&address, desired, &index),
            crate::model::ResourceKind::D1Databases => storage::plan_d1(&address, desired, &index),
            crate::model::ResourceKind::R2Buckets => storage::plan_r2(&address, desired, &index),
            crate::model::ResourceKind::Queues => storage::plan_queue(&address, desired, &index),
            crate::model::ResourceKind::DnsRecords => dns::plan_record(&address, desired, &index),
            crate::model::ResourceKind::PagesProjects => {
                pages::plan_project(&address, desired, &index)
            }
            crate::model::ResourceKind::Workers => continue,
        };
        settle(address, change);
    }
    let deletes = storage::plan_deletes(desired, &index);
    // Bindings to what this plan creates or replaces resolve after apply.
    let pending: BTreeSet<Address> = changes
        .iter()
        .filter(|c| matches!(c.kind, ChangeKind::Create | ChangeKind::Replace))
        .map(|c| c.address.clone())
        .collect();
    let mut settle = |address: Address, change: Option<Change>| match change {
        Some(change) => changes.push(change),
        None => unchanged.push(address),
    };
    for key in desired.workers.keys() {
        let address = Address::new(crate::model::ResourceKind::Workers, key.clone());
        settle(address, worker::plan_worker(key, desired, &index, &pending));
    }
    changes.extend(deletes);
    adopt(desired, &index, &mut changes, &mut unchanged);
    notes.extend(storage::location_notes(desired, &index));
    notes.extend(dns::route_notes(desired, live));
    if !desired.workers.is_empty() && live.secret_fingerprints.is_none() {
        notes.push(Note::SecretsNotCompared);
    }
    let unavailable: BTreeSet<&str> = desired
        .workers
        .values()
        .flat_map(|w| w.spec.secrets.values())
        .filter_map(|s| match &s.source {
            SecretSource::Unavailable(variable) => Some(variable.as_str()),
            _ => None,
        })
        .collect();
    if !unavailable.is_empty() {
        notes.push(Note::SecretValuesUnavailable {
            variables: unavailable.into_iter().map(str::to_string).collect(),
        });
    }
    changes.sort_by(|a, b| a.address.cmp(&b.address));
    unchanged.sort();
    Plan {
        format_version: FORMAT_VERSION,
        environment: desired.environment.clone(),
        account_id: live.account_id.clone(),
        live_fingerprint: live.fingerprint(),
        changes,
        unchanged,
        notes,
    }
}

/// Turns what exists under a declared name but is not recorded into
/// adoptions: an update becomes an adoption with the same steps, an
/// address with nothing to change gets an adoption with none (apply
/// records it). A replace stays a replace. An adoption of what another
/// environment records is a conflict.
fn adopt(
    desired: &DesiredState,
    index: &crate::model::LiveIndex,
    changes: &mut Vec<Change>,
    unchanged: &mut Vec<Address>,
) {
    let found: Vec<(Address, bool, String)> = desired
        .addresses()
        .into_iter()
        .filter_map(|(address, protected)| {
            index
                .adoptable(desired, &address)
                .map(|id| (address, protected, id))
        })
        .collect();
    for (address, protected, id) in found {
        let elsewhere = index
            .recorded_elsewhere(address.kind, &id)
            .map(|environment| Conflict::RecordedElsewhere {
                environment: environment.to_string(),
                adopter: desired.environment.clone(),
            });
        match changes.iter_mut().find(|c| c.address == address) {
            Some(change) if change.kind == ChangeKind::Update => {
                change.kind = ChangeKind::Adopt;
                change.conflicts.extend(elsewhere);
            }
            Some(_) => {}
            None => {
                unchanged.retain(|a| a != &address);
                let steps = match address.kind {
                    crate::model::ResourceKind::KvNamespaces => Steps::KvNamespace(Vec::new()),
                    crate::model::ResourceKind::D1Databases => Steps::D1Database(Vec::new()),
                    crate::model::ResourceKind::R2Buckets => Steps::R2Bucket(Vec::new()),
                    crate::model::ResourceKind::Queues => Steps::Queue(Vec::new()),
                    crate::model::ResourceKind::DnsRecords => Steps::DnsRecord(Vec::new()),
                    crate::model::ResourceKind::PagesProjects => Steps::PagesProject(Vec::new()),
                    crate::model::ResourceKind::Workers => Steps::Worker(Vec::new()),
                };
                changes.push(Change {
                    address,
                    kind: ChangeKind::Adopt,
                    destructive: false,
                    protected,
                    fields: Vec::new(),
                    steps,
                    conflicts: elsewhere.into_iter().collect(),
                    code_diff: Vec::new(),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests;
