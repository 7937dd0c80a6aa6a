//! The executor: runs exactly the steps of a [`Plan`], nothing more. It makes
//! no decision the plan did not make; it only refuses a plan whose
//! destructive changes lack permission.
//!
//! Each step is idempotent so that a run stopped at any point is repaired by
//! the next: a create whose answer was lost is looked up by name before it
//! is reported as failed (never retried blindly), and a delete of something
//! already gone succeeds.

mod migrations;
mod worker;

use futures::StreamExt;

use crate::cloudflare::{Client, ClientError};
use crate::model::{Address, DesiredState, Jurisdiction, LocationHint, ResourceKind, StorageClass};
use crate::plan::{Change, ChangeKind, Plan, Step};

/// What the user allowed.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// `--allow-delete`: destructive changes (replace) may run.
    pub allow_delete: bool,
    /// A revert: deletes that lose no data (an empty namespace or database,
    /// a worker) may run without `allow_delete`.
    pub empty_deletes_allowed: bool,
    /// Changes run concurrently, at most this many at once.
    pub concurrency: usize,
    /// The `workers/message` of uploaded versions (the git commit).
    pub message: String,
    /// How long a health check may take before it counts as failed.
    pub health_timeout: std::time::Duration,
    /// Raised when the apply lock may be lost: no change starts after it.
    pub stop: StopSignal,
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
            concurrency: 4,
            message: "flareops apply".to_string(),
            health_timeout: std::time::Duration::from_secs(10),
            stop: StopSignal::default(),
        }
    }
}

/// Why a plan may not run at all.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("refusing to apply: {} is protected (`protect: true`) and the plan would destroy its data", list(.0))]
    Protected(Vec<Address>),
    #[error("refusing to apply: the plan deletes or destroys data in {}", list(.0))]
    NeedsAllowDelete(Vec<Address>),
    #[error("refusing to apply: `{0}`: {1}")]
    Conflict(Address, String),
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
    if let Some(change) = plan.changes.iter().find(|c| c.conflict.is_some()) {
        return Err(Refusal::Conflict(
            change.address.clone(),
            change.conflict.clone().unwrap_or_default(),
        ));
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
    #[error("{0}")]
    RolledBack(String),
    /// The change could not start (what it depends on failed).
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
            StepError::RolledBack(_) => Some(
                "the previous version serves all traffic again; fix the worker and apply again",
            ),
            StepError::Blocked(_) => Some("fix the failure above, then apply again"),
            StepError::Migration { .. } => Some(
                "fix the migration file (it did not run: each file runs in one transaction), then apply again",
            ),
        }
    }
}

/// The result of one change.
#[derive(Debug)]
pub struct ChangeOutcome {
    pub address: Address,
    pub kind: ChangeKind,
    /// What was done (one line per step), or the step that failed.
    pub result: Result<Vec<String>, StepError>,
    /// D1 migration files that ran, with the bookmark taken just before
    /// each, as (database key, file, bookmark); kept when a later step
    /// failed, since they did run.
    pub migrations_run: Vec<(String, String, String)>,
    /// D1 migration files a restored bookmark undid, as (database key, file).
    pub migrations_undone: Vec<(String, String)>,
}

/// What an apply did.
#[derive(Debug, Default)]
pub struct ApplyReport {
    /// In address order.
    pub outcomes: Vec<ChangeOutcome>,
}

impl ApplyReport {
    pub fn failed(&self) -> usize {
        self.outcomes.iter().filter(|o| o.result.is_err()).count()
    }

    pub fn succeeded(&self) -> usize {
        self.outcomes.len() - self.failed()
    }
}

/// Runs every change of `plan`; `progress` sees each outcome as it lands.
/// Call [`check_permission`] first.
///
/// KV, D1 and R2 changes run first (concurrently); then workers, in waves
/// that respect service bindings (a worker after the workers it calls).
/// `desired` supplies what a plan names but does not carry: module
/// contents and secret values.
pub async fn apply(
    client: &Client,
    plan: &Plan,
    desired: &DesiredState,
    options: &ApplyOptions,
    progress: impl Fn(&ChangeOutcome),
) -> ApplyReport {
    apply_journaled(client, plan, desired, options, progress, &()).await
}

/// Sees each change just before it runs and just after it ran (awaited,
/// so a journal write lands before the change's first request). Failures
/// are the observer's business: it cannot stop the apply.
pub trait Observer {
    fn before(&self, change: &Change) -> impl std::future::Future<Output = ()>;
    fn after(&self, outcome: &ChangeOutcome) -> impl std::future::Future<Output = ()>;
}

impl Observer for () {
    async fn before(&self, _: &Change) {}
    async fn after(&self, _: &ChangeOutcome) {}
}

/// [`apply`], with `observer` awaited around every change (the journal).
pub async fn apply_journaled(
    client: &Client,
    plan: &Plan,
    desired: &DesiredState,
    options: &ApplyOptions,
    progress: impl Fn(&ChangeOutcome),
    observer: &impl Observer,
) -> ApplyReport {
    let (deletes, rest): (Vec<&Change>, Vec<&Change>) = plan
        .changes
        .iter()
        .partition(|c| c.kind == ChangeKind::Delete);
    let (workers, storage): (Vec<&Change>, Vec<&Change>) = rest
        .into_iter()
        .partition(|c| c.address.kind == ResourceKind::Workers);
    let mut outcomes: Vec<ChangeOutcome> = futures::stream::iter(storage)
        .map(|change| {
            observed(
                observer,
                &options.stop,
                change,
                run_change(
                    client,
                    change,
                    desired,
                    Err("not a worker change".to_string()),
                ),
            )
        })
        .buffer_unordered(options.concurrency.max(1))
        .inspect(|outcome| progress(outcome))
        .collect()
        .await;
    if !workers.is_empty() {
        let failed: Vec<Address> = outcomes
            .iter()
            .filter(|o| o.result.is_err())
            .map(|o| o.address.clone())
            .collect();
        let context = worker::Context::load(client, desired, options)
            .await
            .map_err(|error| error.to_string());
        for wave in worker::waves(&workers, desired) {
            let wave_outcomes: Vec<ChangeOutcome> = futures::stream::iter(wave)
                .map(|change| {
                    // A worker waits for nothing but its own bindings' targets.
                    let blocked = worker::bound_addresses(desired, &change.address.key)
                        .into_iter()
                        .find(|a| failed.contains(a));
                    let context = match (&context, blocked) {
                        (_, Some(address)) => Err(format!(
                            "not deployed: `{address}`, which it binds, failed to apply"
                        )),
                        (Ok(context), None) => Ok(context),
                        (Err(error), None) => Err(format!(
                            "not deployed: cannot read the account's ids: {error}"
                        )),
                    };
                    observed(
                        observer,
                        &options.stop,
                        change,
                        run_change(client, change, desired, context),
                    )
                })
                .buffer_unordered(options.concurrency.max(1))
                .inspect(|outcome| progress(outcome))
                .collect()
                .await;
            outcomes.extend(wave_outcomes);
        }
    }
    // Deletes last, workers before the storage they may have bound.
    let (worker_deletes, storage_deletes): (Vec<&Change>, Vec<&Change>) = deletes
        .into_iter()
        .partition(|c| c.address.kind == ResourceKind::Workers);
    for wave in [worker_deletes, storage_deletes] {
        let wave_outcomes: Vec<ChangeOutcome> = futures::stream::iter(wave)
            .map(|change| {
                observed(
                    observer,
                    &options.stop,
                    change,
                    run_change(
                        client,
                        change,
                        desired,
                        Err("not a worker change".to_string()),
                    ),
                )
            })
            .buffer_unordered(options.concurrency.max(1))
            .inspect(|outcome| progress(outcome))
            .collect()
            .await;
        outcomes.extend(wave_outcomes);
    }
    outcomes.sort_by(|a, b| a.address.cmp(&b.address));
    ApplyReport { outcomes }
}

/// Runs `run` (one change) between the observer's `before` and `after`,
/// unless the apply must stop (its lock may be lost): then the change does
/// not start.
async fn observed(
    observer: &impl Observer,
    stop: &StopSignal,
    change: &Change,
    run: impl std::future::Future<Output = ChangeOutcome>,
) -> ChangeOutcome {
    if let Some(reason) = stop.reason() {
        return ChangeOutcome {
            address: change.address.clone(),
            kind: change.kind,
            result: Err(StepError::Blocked(format!("not started: {reason}"))),
            migrations_run: Vec::new(),
            migrations_undone: Vec::new(),
        };
    }
    observer.before(change).await;
    let outcome = run.await;
    observer.after(&outcome).await;
    outcome
}

async fn run_change(
    client: &Client,
    change: &Change,
    desired: &DesiredState,
    context: Result<&worker::Context<'_>, String>,
) -> ChangeOutcome {
    let mut done = Vec::new();
    let mut state = worker::ChangeState::default();
    let mut migrations_run = Vec::new();
    let mut migrations_undone = Vec::new();
    for step in &change.steps {
        let result = match (worker::is_worker_step(step), &context) {
            (false, _) => match step {
                Step::ApplyD1Migrations {
                    database,
                    name,
                    migrations,
                } => {
                    let mut ran = Vec::new();
                    let result =
                        migrations::run(client, desired, database, name, migrations, &mut ran)
                            .await;
                    migrations_run.extend(
                        ran.into_iter()
                            .map(|(file, bookmark)| (database.clone(), file, bookmark)),
                    );
                    result
                }
                Step::RestoreD1Bookmark {
                    database_key,
                    name,
                    bookmark,
                    undoes,
                } => {
                    let result = migrations::restore(client, name, bookmark, undoes).await;
                    if result.is_ok() {
                        migrations_undone
                            .extend(undoes.iter().map(|f| (database_key.clone(), f.clone())));
                    }
                    result
                }
                _ => run_step(client, step).await,
            },
            (true, Ok(context)) => context.run_step(client, step, &mut state).await,
            (true, Err(reason)) => Err(StepError::Blocked(reason.clone())),
        };
        match result {
            Ok(line) => done.push(line),
            Err(error) => {
                return ChangeOutcome {
                    address: change.address.clone(),
                    kind: change.kind,
                    result: Err(error),
                    migrations_run,
                    migrations_undone,
                };
            }
        }
    }
    ChangeOutcome {
        address: change.address.clone(),
        kind: change.kind,
        result: Ok(done),
        migrations_run,
        migrations_undone,
    }
}

fn j(jurisdiction: &Option<Jurisdiction>) -> Option<&'static str> {
    jurisdiction.map(Jurisdiction::as_str)
}

fn hint(location: &Option<LocationHint>) -> Option<&'static str> {
    location.map(LocationHint::as_str)
}

fn class(storage_class: &Option<StorageClass>) -> Option<&'static str> {
    storage_class.map(StorageClass::as_str)
}

fn is_not_found(error: &ClientError) -> bool {
    error.status() == Some(404)
}

async fn run_step(client: &Client, step: &Step) -> Result<String, StepError> {
    let result = match step {
        Step::CreateKvNamespace { title } => match client.create_kv_namespace(title).await {
            Ok(ns) => Ok(format!("created KV namespace {title:?} (id {})", ns.id)),
            Err(error) => {
                // The namespace may exist after all (a lost answer, or a
                // duplicate): find it by title before calling this a failure.
                let found = client
                    .list_kv_namespaces()
                    .await
                    .ok()
                    .and_then(|all| all.into_iter().find(|ns| &ns.title == title));
                match found {
                    Some(ns) => Ok(format!("found KV namespace {title:?} (id {})", ns.id)),
                    None => Err(error),
                }
            }
        },
        Step::CreateD1Database {
            name,
            location_hint,
            jurisdiction,
        } => match client
            .create_d1_database(name, hint(location_hint), j(jurisdiction))
            .await
        {
            Ok(db) => Ok(format!("created D1 database {name:?} (uuid {})", db.uuid)),
            Err(error) => {
                let found = client
                    .list_d1_databases()
                    .await
                    .ok()
                    .and_then(|all| all.into_iter().find(|db| &db.name == name));
                match found {
                    Some(db) => Ok(format!("found D1 database {name:?} (uuid {})", db.uuid)),
                    None => Err(error),
                }
            }
        },
        Step::RenameKvNamespace { id, title } => client
            .rename_kv_namespace(id, title)
            .await
            .map(|()| format!("renamed KV namespace {id} to {title:?} (same id, data kept)")),
        Step::DeleteKvNamespace { id, title } => match client.delete_kv_namespace(id).await {
            Ok(()) => Ok(format!("deleted KV namespace {title:?} (id {id})")),
            Err(error) if is_not_found(&error) => {
                Ok(format!("KV namespace {title:?} (id {id}) was already gone"))
            }
            Err(error) => Err(error),
        },
        Step::DeleteWorkerScript { name } => match client.delete_worker_script(name).await {
            Ok(()) => Ok(format!("deleted worker {name:?}")),
            Err(error) if is_not_found(&error) => Ok(format!("worker {name:?} was already gone")),
            Err(error) => Err(error),
        },
        Step::DeleteD1Database { uuid, name } => match client.delete_d1_database(uuid).await {
            Ok(()) => Ok(format!("deleted D1 database {name:?} (uuid {uuid})")),
            Err(error) if is_not_found(&error) => Ok(format!(
                "D1 database {name:?} (uuid {uuid}) was already gone"
            )),
            Err(error) => Err(error),
        },
        Step::CreateR2Bucket {
            name,
            location_hint,
            storage_class,
            jurisdiction,
        } => match client
            .create_r2_bucket(
                name,
                hint(location_hint),
                class(storage_class),
                j(jurisdiction),
            )
            .await
        {
            Ok(()) => Ok(format!("created R2 bucket {name:?}")),
            Err(error) => {
                let found = client
                    .list_r2_buckets(j(jurisdiction))
                    .await
                    .ok()
                    .is_some_and(|all| all.iter().any(|b| &b.name == name));
                if found {
                    Ok(format!("found R2 bucket {name:?}"))
                } else {
                    Err(error)
                }
            }
        },
        Step::SetR2StorageClass {
            name,
            jurisdiction,
            storage_class,
        } => client
            .set_r2_storage_class(name, j(jurisdiction), storage_class.as_str())
            .await
            .map(|()| {
                format!(
                    "set the storage class of R2 bucket {name:?} to {}",
                    storage_class.as_str()
                )
            }),
        Step::DeleteR2Bucket { name, jurisdiction } => {
            match client.delete_r2_bucket(name, j(jurisdiction)).await {
                Ok(()) => Ok(format!("deleted R2 bucket {name:?}")),
                Err(error) if is_not_found(&error) => {
                    Ok(format!("R2 bucket {name:?} was already gone"))
                }
                Err(error) => Err(error),
            }
        }
        worker_step => {
            return Err(StepError::Changed(format!(
                "internal error: {worker_step:?} ran outside a worker change"
            )));
        }
    };
    result.map_err(StepError::from)
}
