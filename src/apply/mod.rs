//! Applying a plan. Two layers:
//!
//! - [`run`] is the operation `apply`, `revert` and `drift --heal` call: it
//!   checks permission, takes the environment's lock (renewing its lease),
//!   checks under the lock that the account is still what the plan was made
//!   from, journals the apply, runs the executor, and records the inventory,
//!   secret fingerprints and migration hashes in the ledger.
//! - [`execute`] is the executor: it runs exactly the steps of a [`Plan`],
//!   nothing more, and decides nothing the plan did not decide. Its
//!   dispatch is exhaustive over the plan's step kinds.
//!
//! Each step is idempotent so that a run stopped at any point is repaired by
//! the next: a create whose answer was lost is looked up by name by the
//! client (never retried blindly), and a delete of something already gone
//! succeeds.

mod dns;
mod journal;
mod lock;
mod migrations;
mod operation;
mod pages;
mod storage;
mod worker;

use futures::StreamExt;

pub use journal::{Journal, Observer};
pub use operation::{
    Annotate, ApplyError, Confirmation, Context, Event, Events, Outcome, PlanSource, RunOptions,
    run,
};

use crate::cloudflare::{Client, ClientError};
use crate::model::{Address, DesiredState, Jurisdiction, LiveState, ResourceKind, StorageClass};
use crate::plan::{Change, ChangeKind, Conflict, Plan, Steps};

/// What the user allowed, and how the executor runs.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// `--allow-delete`: destructive changes (replace) may run.
    pub allow_delete: bool,
    /// A revert: deletes that lose no data (an empty namespace or database,
    /// a worker) may run without `allow_delete`.
    pub empty_deletes_allowed: bool,
    /// Changes run concurrently, at most this many at once (the client
    /// bounds requests in flight too, at 8 by default).
    pub concurrency: usize,
    /// The `workers/message` of uploaded versions (the git commit).
    pub message: String,
    /// How long a health check may take before it counts as failed.
    pub health_timeout: std::time::Duration,
    /// Raised when the apply lock may be lost: no change starts after it.
    pub stop: StopSignal,
    /// Told what long steps (rollouts, migrations) are doing.
    pub progress: ProgressSink,
}

/// What a long step reports while it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress<'a> {
    /// A gradual rollout put `percentage` of `script`'s traffic on the new
    /// version; `wait` (before the next step) is `None` at 100%.
    RolloutStep {
        script: &'a str,
        percentage: u8,
        wait: Option<std::time::Duration>,
    },
    /// Migration `index` (1-based) of `total` is about to run on `database`.
    Migration {
        database: &'a str,
        file: &'a str,
        index: usize,
        total: usize,
    },
}

/// A function told of [`Progress`].
type ProgressFn = dyn Fn(&Progress<'_>) + Send + Sync;

/// Where [`Progress`] goes (nowhere by default).
#[derive(Clone, Default)]
pub struct ProgressSink(Option<std::sync::Arc<ProgressFn>>);

impl ProgressSink {
    pub fn new(sink: impl Fn(&Progress<'_>) + Send + Sync + 'static) -> ProgressSink {
        ProgressSink(Some(std::sync::Arc::new(sink)))
    }

    pub fn report(&self, progress: &Progress<'_>) {
        if let Some(sink) = &self.0 {
            sink(progress);
        }
    }
}

impl std::fmt::Debug for ProgressSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "ProgressSink(set)"
        } else {
            "ProgressSink(none)"
        })
    }
}

/// A flag that stops an apply before its next change (the lock's lease
/// could not be renewed in time, or another apply took it over).
#[derive(Debug, Clone, Default)]
pub struct StopSignal(std::sync::Arc<std::sync::Mutex<Option<String>>>);

impl StopSignal {
    /// Stops the apply before its next change, saying why.
    pub fn raise(&self, reason: String) {
        let mut slot = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        slot.get_or_insert(reason);
    }

    /// Why the apply must stop, if it must.
    pub fn reason(&self) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            allow_delete: false,
            empty_deletes_allowed: false,
            concurrency: 8,
            message: "flareops apply".to_string(),
            health_timeout: std::time::Duration::from_secs(10),
            stop: StopSignal::default(),
            progress: ProgressSink::default(),
        }
    }
}

/// Why a plan may not run at all.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    #[error("refusing to apply: {} is protected (`protect: true`) and the plan would destroy its data", list(.0))]
    Protected(Vec<Address>),
    #[error("refusing to apply: the plan deletes or destroys data in {}", list(.0))]
    NeedsAllowDelete(Vec<Address>),
    #[error("refusing to apply: `{0}`: {1}")]
    Conflict(Address, Conflict),
}

impl Refusal {
    pub fn hint(&self) -> &'static str {
        match self {
            Refusal::Protected(_) => {
                "remove `protect: true` from the manifest first if the data may really be lost"
            }
            Refusal::NeedsAllowDelete(_) => {
                "review the plan, then rerun with --allow-delete to permit the loss of that data"
            }
            Refusal::Conflict(..) => "resolve the conflict in the account, then plan again",
        }
    }
}

fn list(addresses: &[Address]) -> String {
    addresses
        .iter()
        .map(|a| format!("`{a}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks, before any request, that every destructive change is allowed.
pub fn check_permission(plan: &Plan, options: &ApplyOptions) -> Result<(), Refusal> {
    for change in &plan.changes {
        if let Some(conflict) = change.conflicts.first() {
            return Err(Refusal::Conflict(change.address.clone(), conflict.clone()));
        }
    }
    let protected: Vec<Address> = plan
        .changes
        .iter()
        .filter(|c| c.destructive || c.kind == ChangeKind::Delete)
        .filter(|c| c.protected)
        .map(|c| c.address.clone())
        .collect();
    if !protected.is_empty() {
        return Err(Refusal::Protected(protected));
    }
    // Every delete needs permission, data-holding or not, except the
    // deletes of a revert that lose nothing.
    let destructive: Vec<Address> = plan
        .changes
        .iter()
        .filter(|c| {
            c.destructive || (c.kind == ChangeKind::Delete && !options.empty_deletes_allowed)
        })
        .map(|c| c.address.clone())
        .collect();
    if !destructive.is_empty() && !options.allow_delete {
        return Err(Refusal::NeedsAllowDelete(destructive));
    }
    Ok(())
}

/// Why a step failed.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error(transparent)]
    Client(#[from] ClientError),
    /// What the plan was computed from is no longer what apply sees.
    #[error("{0}")]
    Changed(String),
    /// A gradual rollout stopped at a failed health check and went back.
    #[error(
        "gradual rollout of worker {script:?} stopped at {percentage}%: health check of {url} failed ({reason}); version {previous} serves 100% again"
    )]
    RolledBack {
        script: String,
        percentage: u8,
        url: String,
        reason: String,
        previous: String,
    },
    /// The change could not start (what it depends on failed, or the apply
    /// must stop).
    #[error("{0}")]
    Blocked(String),
    /// A D1 migration failed; its transaction was rolled back.
    #[error("migration {location} failed: {message}")]
    Migration { location: String, message: String },
}

impl StepError {
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            StepError::Client(error) => error.hint(),
            StepError::Changed(_) => Some("run plan again and review it"),
            StepError::RolledBack { .. } => Some(
                "the previous version serves all traffic again; fix the worker and apply again",
            ),
            StepError::Blocked(_) => Some("fix the failure above, then apply again"),
            StepError::Migration { .. } => Some(
                "fix the migration file (it did not run: each file runs in one transaction), then apply again",
            ),
        }
    }
}

/// What one step did, as data (the renderers say it in words).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    PagesProjectCreated {
        name: String,
        id: String,
        production_branch: String,
    },
    PagesProjectUpdated {
        name: String,
        production_branch: String,
    },
    PagesDeployed {
        project: String,
        deployment: crate::model::LivePagesDeployment,
        files: usize,
        uploaded: usize,
    },
    PagesRolledBack {
        project: String,
        deployment_id: String,
    },
    PagesDomainAdded {
        project: String,
        domain: String,
    },
    PagesDomainRemoved {
        project: String,
        domain: String,
    },
    PagesProjectDeleted {
        name: String,
    },
    DnsCreated {
        record: crate::model::LiveDnsRecord,
    },
    DnsUpdated {
        record: crate::model::LiveDnsRecord,
    },
    DnsDeleted {
        id: String,
        name: String,
        record_type: String,
    },
    ConsumerSet {
        name: String,
        queue: String,
    },
    ConsumerDeleted {
        name: String,
        queue: String,
        already_gone: bool,
    },
    QueueCreated {
        name: String,
        id: String,
    },
    QueueUpdated {
        id: String,
        name: String,
    },
    QueueDeleted {
        id: String,
        name: String,
        already_gone: bool,
    },
    KvCreated {
        title: String,
        id: String,
    },
    KvRenamed {
        id: String,
        title: String,
    },
    KvDeleted {
        id: String,
        title: String,
        already_gone: bool,
    },
    D1Created {
        name: String,
        uuid: String,
        jurisdiction: Option<Jurisdiction>,
    },
    D1Deleted {
        uuid: String,
        name: String,
        already_gone: bool,
    },
    /// Migration files that ran, each with the bookmark taken just before it.
    MigrationsApplied {
        name: String,
        files: Vec<(String, String)>,
    },
    BookmarkRestored {
        name: String,
        bookmark: String,
        undone: Vec<String>,
        /// The bookmark that undoes this restore.
        undo_bookmark: String,
    },
    R2Created {
        name: String,
        jurisdiction: Option<Jurisdiction>,
        storage_class: Option<StorageClass>,
    },
    R2StorageClassSet {
        name: String,
        jurisdiction: Option<Jurisdiction>,
        storage_class: StorageClass,
    },
    /// The objects of a bucket deleted, so it can be deleted.
    R2Emptied {
        name: String,
        jurisdiction: Option<Jurisdiction>,
        objects: u64,
    },
    R2Deleted {
        name: String,
        jurisdiction: Option<Jurisdiction>,
        already_gone: bool,
    },
    /// A whole script upload (deployed at once).
    ScriptUploaded {
        name: String,
        version_id: String,
        tag: String,
        secrets: Vec<String>,
    },
    VersionUploaded {
        name: String,
        version_id: String,
        tag: String,
        secrets: Vec<String>,
    },
    /// A version deployed: at once (`[100]`) or through these percentages.
    Deployed {
        name: String,
        version_id: String,
        percentages: Vec<u8>,
        /// An existing version (a revert), not one this apply uploaded.
        redeployed: bool,
    },
    RolloutFinished {
        name: String,
        version_id: String,
    },
    SecretDeleted {
        name: String,
        secret: String,
    },
    CronsSet {
        name: String,
        crons: Vec<String>,
    },
    RouteCreated {
        pattern: String,
    },
    RouteDeleted {
        pattern: String,
        already_gone: bool,
    },
    DomainAttached {
        hostname: String,
    },
    DomainDetached {
        hostname: String,
        already_gone: bool,
    },
    ScriptDeleted {
        name: String,
        already_gone: bool,
    },
}

/// The result of one change: what its steps did, and the error that
/// stopped it, if one did (what ran before it still ran).
#[derive(Debug)]
pub struct ChangeOutcome {
    pub address: Address,
    pub kind: ChangeKind,
    pub done: Vec<Effect>,
    pub error: Option<StepError>,
}

impl ChangeOutcome {
    pub fn succeeded(&self) -> bool {
        self.error.is_none()
    }

    fn blocked(change: &Change, reason: String) -> ChangeOutcome {
        ChangeOutcome {
            address: change.address.clone(),
            kind: change.kind,
            done: Vec::new(),
            error: Some(StepError::Blocked(reason)),
        }
    }
}

/// What an execution did.
#[derive(Debug, Default)]
pub struct ApplyReport {
    /// In address order.
    pub outcomes: Vec<ChangeOutcome>,
    /// The live state the plan was made from, with the effects of every
    /// step that ran folded in: what the account holds now, as far as the
    /// apply knows (ids of what it created; no longer what it deleted).
    pub after: LiveState,
}

impl ApplyReport {
    pub fn failed(&self) -> usize {
        self.outcomes.iter().filter(|o| !o.succeeded()).count()
    }

    pub fn succeeded(&self) -> usize {
        self.outcomes.len() - self.failed()
    }
}

/// Runs every change of `plan` against the account that `live` describes
/// (the state the plan was made from). Call [`check_permission`] first;
/// [`run`] does, under the lock.
///
/// KV, D1, R2, queue and DNS changes run first (concurrently; every DNS
/// change of the plan in one batch request); then workers, in waves
/// that respect service bindings (a worker after the workers it calls);
/// then deletes, workers before the storage they may have bound. `desired`
/// supplies what a plan names but does not carry: module contents,
/// migration SQL and secret values. `observer` is awaited around every
/// wave (the journal), so its record of a change lands before the
/// change's first request.
pub async fn execute(
    client: &Client,
    plan: &Plan,
    desired: &DesiredState,
    live: &LiveState,
    options: &ApplyOptions,
    observer: &impl Observer,
) -> ApplyReport {
    let (deletes, rest): (Vec<&Change>, Vec<&Change>) = plan
        .changes
        .iter()
        .partition(|c| c.kind == ChangeKind::Delete);
    let (workers, storage): (Vec<&Change>, Vec<&Change>) = rest
        .into_iter()
        .partition(|c| c.address.kind == ResourceKind::Workers);
    // DNS changes, deletes too, run with the first wave, in one batch:
    // nothing binds a record.
    let (dns_deletes, deletes): (Vec<&Change>, Vec<&Change>) = deletes
        .into_iter()
        .partition(|c| c.address.kind == ResourceKind::DnsRecords);
    let storage: Vec<&Change> = storage.into_iter().chain(dns_deletes).collect();
    let (worker_deletes, storage_deletes): (Vec<&Change>, Vec<&Change>) = deletes
        .into_iter()
        .partition(|c| c.address.kind == ResourceKind::Workers);
    let mut state = Execution {
        client,
        desired,
        options,
        observer,
        after: live.clone(),
        outcomes: Vec::new(),
    };
    state.wave(&storage).await;
    for wave in worker::waves(&workers, desired) {
        state.wave(&wave).await;
    }
    state.wave(&worker_deletes).await;
    state.wave(&storage_deletes).await;
    let mut outcomes = state.outcomes;
    outcomes.sort_by(|a, b| a.address.cmp(&b.address));
    let mut after = state.after;
    after.normalize();
    ApplyReport { outcomes, after }
}

/// An execution in progress.
struct Execution<'a, O> {
    client: &'a Client,
    desired: &'a DesiredState,
    options: &'a ApplyOptions,
    observer: &'a O,
    /// The account as far as the apply knows it.
    after: LiveState,
    outcomes: Vec<ChangeOutcome>,
}

impl<O: Observer> Execution<'_, O> {
    /// Runs `changes` concurrently, between the observer's calls, and
    /// folds what they did into the known state.
    async fn wave(&mut self, changes: &[&Change]) {
        if changes.is_empty() {
            return;
        }
        let failed: Vec<Address> = self
            .outcomes
            .iter()
            .filter(|o| !o.succeeded())
            .map(|o| o.address.clone())
            .collect();
        // A change whose bound resources failed, or that starts after the
        // apply must stop, does not start.
        let stop = self.options.stop.reason();
        let (blocked, ready): (Vec<ChangeOutcome>, Vec<&Change>) = {
            let mut blocked = Vec::new();
            let mut ready = Vec::new();
            for change in changes {
                let failed_target = worker::bound_addresses(self.desired, change)
                    .into_iter()
                    .find(|a| failed.contains(a));
                match (&stop, failed_target) {
                    (Some(reason), _) => blocked.push(ChangeOutcome::blocked(
                        change,
                        format!("not started: {reason}"),
                    )),
                    (None, Some(address)) => blocked.push(ChangeOutcome::blocked(
                        change,
                        format!("not deployed: `{address}`, which it binds, failed to apply"),
                    )),
                    (None, None) => ready.push(*change),
                }
            }
            (blocked, ready)
        };
        for outcome in &blocked {
            self.observer.landed(outcome);
        }
        self.outcomes.extend(blocked);
        if ready.is_empty() {
            return;
        }
        if let Err(reason) = self.observer.before_wave(&ready).await {
            self.options.stop.raise(reason.clone());
            let blocked: Vec<ChangeOutcome> = ready
                .iter()
                .map(|change| ChangeOutcome::blocked(change, format!("not started: {reason}")))
                .collect();
            for outcome in &blocked {
                self.observer.landed(outcome);
            }
            self.outcomes.extend(blocked);
            return;
        }
        let known = &self.after;
        let (client, desired, options) = (self.client, self.desired, self.options);
        let observer = self.observer;
        // A wave's DNS changes go in batches, beside its other changes.
        let (records, ready): (Vec<&Change>, Vec<&Change>) = ready
            .into_iter()
            .partition(|c| matches!(c.steps, Steps::DnsRecord(_)));
        let batched = async {
            if records.is_empty() {
                return Vec::new();
            }
            let outcomes = dns::run(client, known.zone_id.as_deref(), &records).await;
            for outcome in &outcomes {
                observer.landed(outcome);
            }
            outcomes
        };
        // The stop is checked again as each change starts: the journal's
        // write, or earlier changes of the wave, may have taken long enough
        // for the lock's lease to run out.
        let one_by_one = futures::stream::iter(ready)
            .map(|change| async move {
                match options.stop.reason() {
                    Some(reason) => {
                        ChangeOutcome::blocked(change, format!("not started: {reason}"))
                    }
                    None => run_change(client, desired, known, options, change).await,
                }
            })
            .buffer_unordered(options.concurrency.max(1))
            .inspect(|outcome| observer.landed(outcome))
            .collect::<Vec<ChangeOutcome>>();
        let (mut outcomes, others) = futures::join!(batched, one_by_one);
        outcomes.extend(others);
        self.observer.after_wave(&outcomes).await;
        for outcome in &outcomes {
            for effect in &outcome.done {
                absorb(&mut self.after, effect);
            }
        }
        self.outcomes.extend(outcomes);
    }
}

/// Runs the steps of one change in order, stopping at the first failure.
async fn run_change(
    client: &Client,
    desired: &DesiredState,
    known: &LiveState,
    options: &ApplyOptions,
    change: &Change,
) -> ChangeOutcome {
    let mut done = Vec::new();
    let result = match &change.steps {
        Steps::KvNamespace(steps) => storage::run_kv(client, steps, &mut done).await,
        Steps::D1Database(steps) => {
            storage::run_d1(
                client,
                desired,
                &change.address,
                steps,
                &options.progress,
                &mut done,
            )
            .await
        }
        Steps::R2Bucket(steps) => storage::run_r2(client, steps, &mut done).await,
        Steps::Queue(steps) => storage::run_queue(client, steps, &mut done).await,
        // Run in batches by the wave (`dns::run`), never one by one.
        Steps::PagesProject(steps) => {
            pages::run(
                client,
                desired,
                &change.address,
                &options.message,
                steps,
                &mut done,
            )
            .await
        }
        Steps::DnsRecord(_) => Err(StepError::Blocked(
            "a DNS change runs in its wave's batch".to_string(),
        )),
        Steps::Worker(steps) => {
            let context = worker::Context::new(desired, known, options);
            context.run(client, &change.address, steps, &mut done).await
        }
    };
    ChangeOutcome {
        address: change.address.clone(),
        kind: change.kind,
        done,
        error: result.err(),
    }
}

/// Folds what a step did into the known live state.
fn absorb(live: &mut LiveState, effect: &Effect) {
    use crate::model::{LiveD1Database, LiveKvNamespace, LiveR2Bucket, LiveStorageClass};
    match effect {
        // Consumers are read with their queue again by the next plan.
        Effect::ConsumerSet { .. } | Effect::ConsumerDeleted { .. } => {}
        Effect::QueueCreated { name, id } => {
            if !live.queues.iter().any(|q| &q.id == id) {
                live.queues.push(crate::model::LiveQueue {
                    id: id.clone(),
                    name: name.clone(),
                    delivery_delay: None,
                    message_retention_period: None,
                    consumers: Vec::new(),
                });
            }
        }
        Effect::QueueUpdated { id, name } => {
            for queue in live.queues.iter_mut().filter(|q| &q.id == id) {
                queue.name.clone_from(name);
            }
        }
        Effect::QueueDeleted { id, .. } => live.queues.retain(|q| &q.id != id),
        Effect::DnsCreated { record } | Effect::DnsUpdated { record } => {
            live.dns_records.retain(|r| r.id != record.id);
            live.dns_records.push(record.clone());
        }
        Effect::DnsDeleted { id, .. } => live.dns_records.retain(|r| &r.id != id),
        Effect::PagesProjectCreated {
            name,
            id,
            production_branch,
        } => {
            if !live.pages_projects.iter().any(|p| &p.id == id) {
                live.pages_projects.push(crate::model::LivePagesProject {
                    id: id.clone(),
                    name: name.clone(),
                    production_branch: production_branch.clone(),
                    custom_domains: Vec::new(),
                    canonical: None,
                    deployments: Vec::new(),
                    deployed_files: None,
                });
            }
        }
        Effect::PagesProjectUpdated {
            name,
            production_branch,
        } => {
            for project in live.pages_projects.iter_mut().filter(|p| &p.name == name) {
                project.production_branch.clone_from(production_branch);
            }
        }
        Effect::PagesDeployed {
            project,
            deployment,
            ..
        } => {
            for live in live
                .pages_projects
                .iter_mut()
                .filter(|p| &p.name == project)
            {
                live.canonical = Some(deployment.clone());
                live.deployments.insert(0, deployment.clone());
            }
        }
        Effect::PagesRolledBack {
            project,
            deployment_id,
        } => {
            for live in live
                .pages_projects
                .iter_mut()
                .filter(|p| &p.name == project)
            {
                live.canonical = live
                    .deployments
                    .iter()
                    .find(|d| &d.id == deployment_id)
                    .cloned();
            }
        }
        Effect::PagesDomainAdded { project, domain } => {
            for live in live
                .pages_projects
                .iter_mut()
                .filter(|p| &p.name == project)
            {
                if !live.custom_domains.contains(domain) {
                    live.custom_domains.push(domain.clone());
                    live.custom_domains.sort();
                }
            }
        }
        Effect::PagesDomainRemoved { project, domain } => {
            for live in live
                .pages_projects
                .iter_mut()
                .filter(|p| &p.name == project)
            {
                live.custom_domains.retain(|d| d != domain);
            }
        }
        Effect::PagesProjectDeleted { name } => live.pages_projects.retain(|p| &p.name != name),
        Effect::KvCreated { title, id } => {
            if !live.kv_namespaces.iter().any(|ns| &ns.id == id) {
                live.kv_namespaces.push(LiveKvNamespace {
                    id: id.clone(),
                    title: title.clone(),
                });
            }
        }
        Effect::KvRenamed { id, title } => {
            for ns in live.kv_namespaces.iter_mut().filter(|ns| &ns.id == id) {
                ns.title.clone_from(title);
            }
        }
        Effect::KvDeleted { id, .. } => live.kv_namespaces.retain(|ns| &ns.id != id),
        Effect::D1Created {
            name,
            uuid,
            jurisdiction,
        } => {
            if !live.d1_databases.iter().any(|db| &db.uuid == uuid) {
                live.d1_databases.push(LiveD1Database {
                    uuid: uuid.clone(),
                    name: name.clone(),
                    jurisdiction: *jurisdiction,
                    applied_migrations: None,
                });
            }
        }
        Effect::D1Deleted { uuid, .. } => live.d1_databases.retain(|db| &db.uuid != uuid),
        Effect::R2Created {
            name,
            jurisdiction,
            storage_class,
        } => {
            if !live
                .r2_buckets
                .iter()
                .any(|b| &b.name == name && &b.jurisdiction == jurisdiction)
            {
                live.r2_buckets.push(LiveR2Bucket {
                    name: name.clone(),
                    location: None,
                    storage_class: LiveStorageClass::reported(storage_class.map(|c| c.as_str())),
                    jurisdiction: *jurisdiction,
                });
            }
        }
        Effect::R2StorageClassSet {
            name,
            jurisdiction,
            storage_class,
        } => {
            for bucket in live
                .r2_buckets
                .iter_mut()
                .filter(|b| &b.name == name && &b.jurisdiction == jurisdiction)
            {
                bucket.storage_class = LiveStorageClass::Known(*storage_class);
            }
        }
        // Objects are not part of the live state.
        Effect::R2Emptied { .. } => {}
        Effect::R2Deleted {
            name, jurisdiction, ..
        } => live
            .r2_buckets
            .retain(|b| !(&b.name == name && &b.jurisdiction == jurisdiction)),
        Effect::ScriptUploaded { name, .. } => {
            let names = live.script_names.get_or_insert_with(Vec::new);
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
        Effect::ScriptDeleted { name, .. } => {
            live.workers.retain(|w| &w.name != name);
            if let Some(names) = &mut live.script_names {
                names.retain(|n| n != name);
            }
        }
        Effect::MigrationsApplied { .. }
        | Effect::BookmarkRestored { .. }
        | Effect::VersionUploaded { .. }
        | Effect::Deployed { .. }
        | Effect::RolloutFinished { .. }
        | Effect::SecretDeleted { .. }
        | Effect::CronsSet { .. }
        | Effect::RouteCreated { .. }
        | Effect::RouteDeleted { .. }
        | Effect::DomainAttached { .. }
        | Effect::DomainDetached { .. } => {}
    }
}

fn is_not_found(error: &ClientError) -> bool {
    error.status() == Some(404)
}

/// The result of a delete or detach: whether it was already gone (a
/// delete of something already gone succeeds).
fn gone(result: Result<(), ClientError>) -> Result<bool, StepError> {
    match result {
        Ok(()) => Ok(false),
        Err(error) if is_not_found(&error) => Ok(true),
        Err(error) => Err(error.into()),
    }
}

#[cfg(test)]
mod tests;
