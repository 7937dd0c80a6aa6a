//! `apply::run`: the whole apply operation, which `apply`, `revert` and
//! `drift --heal` share. The CLI only turns arguments into [`RunOptions`]
//! and the [`Outcome`] into output.
//!
//! Order, as `terraform apply` does it: the ledger and the environment's
//! lock (with a lease, renewed in the background) first; then the account
//! is read and planned (or a saved plan is checked against it: a stale plan
//! is refused) while the lock is held, so nothing can change between the
//! plan and its execution; permission (a refusal is journaled and changes
//! nothing) -> confirmation -> the journal's start row -> the executor ->
//! the journal's finish -> the inventory, secret fingerprints and
//! migration hashes recorded -> the lock released. A plan without changes
//! whose inventory is already recorded writes nothing.

use std::sync::Arc;
use std::time::Duration;

use super::journal::{Journal, Observer};
use super::lock::HeldLock;
use super::{ApplyOptions, ApplyReport, ChangeOutcome, Effect, Refusal, check_permission};
use crate::cloudflare::Client;
use crate::ledger::journal::ApplyStatus;
use crate::ledger::{self, LedgerError, locks};
use crate::model::{DesiredState, LiveState, ResourceKind};
use crate::plan::{Change, Plan};

/// Where an apply goes: the account's client.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    pub client: &'a Client,
}

/// How to run an apply.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub apply: ApplyOptions,
    /// The commit the manifests come from, as the journal records it.
    pub git_commit: String,
    /// Who runs the apply (the CI's actor, or the user).
    pub actor: String,
    /// How long to wait for another apply of the environment.
    pub lock_timeout: Duration,
    /// The lock's lease, renewed every third of it.
    pub lease: Duration,
    /// Adds to the live state, before the plan, what the account does not
    /// say but the checkout does (the sources and site files deployed, from
    /// git), so the plan shown says what changes.
    pub annotate: Annotate,
}

/// What [`Annotate`] runs.
type AnnotateFn = dyn Fn(&DesiredState, &mut LiveState) + Send + Sync;

/// A function that adds what git knows to the live state; none by default.
#[derive(Clone, Default)]
pub struct Annotate(Option<Arc<AnnotateFn>>);

impl Annotate {
    pub fn new(
        annotate: impl Fn(&DesiredState, &mut LiveState) + Send + Sync + 'static,
    ) -> Annotate {
        Annotate(Some(Arc::new(annotate)))
    }

    fn apply(&self, desired: &DesiredState, live: &mut LiveState) {
        if let Some(annotate) = &self.0 {
            annotate(desired, live);
        }
    }
}

impl std::fmt::Debug for Annotate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Annotate(..)"
        } else {
            "Annotate(none)"
        })
    }
}

/// What the operation tells its caller while it works.
#[derive(Debug)]
pub enum Event<'a> {
    /// Another apply holds the lock: waiting up to `timeout`.
    WaitingForLock {
        info: locks::LockInfo,
        timeout: Duration,
    },
    /// Something went wrong that does not stop the apply.
    Warning(String),
    /// The plan, made (or checked) under the lock, before it is confirmed.
    Planned(&'a Plan),
    /// A change finished (or failed).
    Landed(&'a ChangeOutcome),
}

/// What to apply.
#[derive(Debug, Clone, Copy)]
pub enum PlanSource<'a> {
    /// Plan now, under the lock.
    Fresh,
    /// Exactly this plan (saved earlier): refused when the account is no
    /// longer what it was made from.
    Saved(&'a Plan),
}

/// The caller's sink for [`Event`]s (shared with the lease's task).
pub type Events = Arc<dyn Fn(&Event<'_>) + Send + Sync>;

/// The caller's answer when asked to go ahead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirmation {
    Confirmed,
    /// Not confirmed, with why (shown as the error).
    Declined(String),
}

/// Why an apply did not run (or could not record what it did).
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("{0}")]
    Refused(Refusal),
    #[error("{0}")]
    NotConfirmed(String),
    #[error("opening the ledger to take the apply lock failed: nothing was applied")]
    OpenLedger(#[source] LedgerError),
    #[error("taking the apply lock failed: nothing was applied")]
    Lock(#[source] Box<locks::LockError>),
    #[error("reading the account under the apply lock failed: nothing was applied")]
    Fetch(#[source] crate::live::FetchError),
    #[error(
        "the plan was made for account {planned}, but this apply targets account {live}: nothing was applied"
    )]
    OtherAccount { planned: String, live: String },
    #[error("the account changed since the plan was made: nothing was applied")]
    AccountChanged,
    #[error("journaling the start of this apply failed: nothing was applied")]
    Journal(#[source] LedgerError),
    #[error(
        "the changes were made, but recording them in the ledger failed; run apply again to record them"
    )]
    Record(#[source] LedgerError),
}

impl ApplyError {
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            ApplyError::Refused(refusal) => Some(refusal.hint()),
            ApplyError::AccountChanged | ApplyError::OtherAccount { .. } => Some(
                "make a new plan with `flareops plan --env ENV --out FILE`, review it, and apply that",
            ),
            ApplyError::Lock(error) if matches!(**error, locks::LockError::Held { .. }) => Some(
                "wait for the other apply, or if it died, remove its lock with `flareops unlock`",
            ),
            _ => None,
        }
    }
}

/// What a finished apply did.
#[derive(Debug)]
pub struct Outcome {
    /// The plan that ran.
    pub plan: Plan,
    /// The executor's report (empty for an empty plan).
    pub report: ApplyReport,
    /// The journal id of the apply, when it made changes.
    pub apply_id: Option<String>,
}

impl Outcome {
    pub fn succeeded(&self) -> bool {
        self.report.failed() == 0
    }
}

/// Applies `desired` to the account of `context`: a fresh plan, or a saved
/// one. `confirm` is asked, after the permission check, only when the plan
/// has changes.
pub async fn run(
    context: Context<'_>,
    desired: &DesiredState,
    source: PlanSource<'_>,
    options: &RunOptions,
    confirm: impl FnOnce(&Plan) -> Confirmation,
    events: &Events,
) -> Result<Outcome, ApplyError> {
    let client = context.client;
    // A stale saved plan is refused before anything is written (the
    // ledger, the lock); it is checked again under the lock.
    if let PlanSource::Saved(plan) = source {
        let mut live = crate::live::fetch(client, desired)
            .await
            .map_err(ApplyError::Fetch)?;
        check_saved(plan, &mut live)?;
    }
    let (lock, reads) = HeldLock::take(
        client,
        &desired.ledger_database,
        &desired.environment,
        options.lock_timeout,
        options.lease,
        events,
    )
    .await?;
    let result = locked(
        client, &lock, reads, desired, source, options, confirm, events,
    )
    .await;
    lock.release(client, events).await;
    result
}

/// The part of [`run`] that holds the lock.
#[allow(clippy::too_many_arguments)]
async fn locked(
    client: &Client,
    lock: &HeldLock,
    reads: ledger::PlanReads,
    desired: &DesiredState,
    source: PlanSource<'_>,
    options: &RunOptions,
    confirm: impl FnOnce(&Plan) -> Confirmation,
    events: &Events,
) -> Result<Outcome, ApplyError> {
    let database = lock.database();
    let mut live = crate::live::fetch_locked(client, desired, database, reads)
        .await
        .map_err(ApplyError::Fetch)?;
    options.annotate.apply(desired, &mut live);
    let plan = match source {
        PlanSource::Fresh => crate::plan::plan(desired, &live),
        PlanSource::Saved(plan) => {
            check_saved(plan, &mut live)?;
            plan.clone()
        }
    };
    events(&Event::Planned(&plan));
    if let Err(refusal) = check_permission(&plan, &options.apply) {
        // The refusal is journaled: its start and finish in one request.
        let journal = Journal::new(client, database, &plan, &options.git_commit, &options.actor);
        if let Err(error) =
            ledger::write(client, database, journal.closing(ApplyStatus::Refused)).await
        {
            tracing::warn!(%error, "journaling the refused apply failed");
        }
        return Err(ApplyError::Refused(refusal));
    }
    if plan.is_empty() {
        // Nothing to change; the inventory is written only when it is not
        // what the ledger already records (with the lock's release).
        // Fingerprints still in the older form are rewritten as Argon2id
        // (the secrets themselves are not sent again).
        let inventory = live.inventory_for(desired);
        let upgrades = legacy_fingerprints(desired, &live);
        if live.inventory.as_ref() != Some(&inventory) || !upgrades.is_empty() {
            let first = match &live.secret_fingerprints {
                Some(salted) if !upgrades.is_empty() => {
                    ledger::secret_fingerprint_statements(salted, desired, &upgrades, &[])
                        .map_err(ApplyError::Record)?
                }
                _ => Vec::new(),
            };
            let closing = ledger::Closing {
                first,
                inventory: Some((&desired.environment, &inventory)),
                last: Some(lock.closing()),
            };
            ledger::close(client, database, closing)
                .await
                .map_err(ApplyError::Record)?;
            lock.released();
        }
        return Ok(Outcome {
            plan,
            report: ApplyReport {
                outcomes: Vec::new(),
                after: live,
            },
            apply_id: None,
        });
    }
    if let Confirmation::Declined(reason) = confirm(&plan) {
        return Err(ApplyError::NotConfirmed(reason));
    }
    // The journal's start row lands with the first wave's rows, before the
    // first change is made; if it cannot, no change is made.
    let journal = Journal::new(client, database, &plan, &options.git_commit, &options.actor);
    let apply = ApplyOptions {
        stop: lock.stop.clone(),
        ..options.apply.clone()
    };
    let watched = Watched {
        journal: &journal,
        events,
    };
    let report = super::execute(client, &plan, desired, &live, &apply, &watched).await;
    if let Some(error) = journal.start_failed() {
        return Err(ApplyError::Journal(error));
    }
    let status = if report.failed() == 0 {
        ApplyStatus::Succeeded
    } else {
        ApplyStatus::Failed
    };
    record(client, lock, desired, &report, journal.closing(status)).await?;
    let apply_id = Some(journal.id().to_string());
    Ok(Outcome {
        plan,
        report,
        apply_id,
    })
}

/// Refuses a saved plan made for another account, or from a live state
/// other than `live`.
fn check_saved(plan: &Plan, live: &mut crate::model::LiveState) -> Result<(), ApplyError> {
    if plan.account_id != live.account_id {
        return Err(ApplyError::OtherAccount {
            planned: plan.account_id.clone(),
            live: live.account_id.clone(),
        });
    }
    // Taking the lock creates the ledger on a first apply: an empty
    // inventory where there was no ledger is no change.
    if live.fingerprint() != plan.live_fingerprint && live.inventory == Some(Vec::new()) {
        live.inventory = None;
    }
    if live.fingerprint() != plan.live_fingerprint {
        return Err(ApplyError::AccountChanged);
    }
    Ok(())
}

/// The secrets (worker key, name) whose recorded fingerprint is in the
/// older salted-SHA-256 form and matches the value this run has: their
/// record is rewritten as Argon2id, without sending them again.
fn legacy_fingerprints(
    desired: &DesiredState,
    live: &crate::model::LiveState,
) -> Vec<(String, String)> {
    let Some(salted) = &live.secret_fingerprints else {
        return Vec::new();
    };
    let mut upgrades = Vec::new();
    for (key, worker) in &desired.workers {
        for (name, secret) in &worker.spec.secrets {
            if matches!(secret.source, crate::model::SecretSource::Unavailable(_)) {
                continue;
            }
            if salted.is_legacy(&worker.spec.name, name)
                && salted.compare(&worker.spec.name, name, &secret.value)
                    == crate::model::Fingerprint::SameLegacy
            {
                upgrades.push((key.clone(), name.clone()));
            }
        }
    }
    upgrades
}

/// The journal, plus progress events for the caller.
struct Watched<'a> {
    journal: &'a Journal<'a>,
    events: &'a Events,
}

impl Observer for Watched<'_> {
    async fn before_wave(&self, changes: &[&Change]) -> Result<(), String> {
        self.journal.before_wave(changes).await
    }

    async fn after_wave(&self, outcomes: &[ChangeOutcome]) {
        self.journal.after_wave(outcomes).await;
    }

    fn landed(&self, outcome: &ChangeOutcome) {
        (self.events)(&Event::Landed(outcome));
    }
}

/// What a run did that the ledger keeps: the inventory (from what the
/// account holds after it, as the executor knows it), the fingerprints of
/// the secrets sent with a change that succeeded, and the D1 migration
/// files run or undone (even by a change that failed later). Names only:
/// never a secret value.
async fn record(
    client: &Client,
    lock: &HeldLock,
    desired: &DesiredState,
    report: &ApplyReport,
    journal: Vec<crate::cloudflare::Statement>,
) -> Result<(), ApplyError> {
    let database = lock.database();
    let mut sent = Vec::new();
    let mut deleted = Vec::new();
    let mut migrations = Vec::new();
    let mut undone = Vec::new();
    for outcome in &report.outcomes {
        let key = &outcome.address.key;
        for effect in &outcome.done {
            match effect {
                Effect::MigrationsApplied { files, .. } => migrations.extend(
                    files
                        .iter()
                        .map(|(file, bookmark)| (key.clone(), file.clone(), bookmark.clone())),
                ),
                Effect::BookmarkRestored { undone: files, .. } => {
                    undone.extend(files.iter().map(|file| (key.clone(), file.clone())));
                }
                Effect::ScriptUploaded { secrets, .. }
                | Effect::VersionUploaded { secrets, .. }
                    if outcome.succeeded() && outcome.address.kind == ResourceKind::Workers =>
                {
                    sent.extend(secrets.iter().map(|s| (key.clone(), s.clone())));
                }
                Effect::SecretDeleted { name, secret } if outcome.succeeded() => {
                    deleted.push((name.clone(), secret.clone()));
                }
                _ => {}
            }
        }
    }
    let inventory = report.after.inventory_for(desired);
    for upgrade in legacy_fingerprints(desired, &report.after) {
        if !sent.contains(&upgrade) {
            sent.push(upgrade);
        }
    }
    let mut first = journal;
    let recorded = (|| {
        if let Some(salted) = &report.after.secret_fingerprints {
            first.extend(ledger::secret_fingerprint_statements(
                salted, desired, &sent, &deleted,
            )?);
        }
        first.extend(ledger::migration_hash_statements(
            desired,
            &migrations,
            &undone,
            &crate::cloudflare::D1Limits::CLOUDFLARE,
        )?);
        Ok::<_, LedgerError>(())
    })();
    recorded.map_err(ApplyError::Record)?;
    // Without the salt in hand (a ledger that had none when it was read),
    // the fingerprints are written on their own, reading it first.
    if report.after.secret_fingerprints.is_none() {
        ledger::record_secret_fingerprints(client, database, desired, &sent, &deleted)
            .await
            .map_err(ApplyError::Record)?;
    }
    let closing = ledger::Closing {
        first,
        inventory: Some((&desired.environment, &inventory)),
        last: Some(lock.closing()),
    };
    ledger::close(client, database, closing)
        .await
        .map_err(ApplyError::Record)?;
    lock.released();
    Ok(())
}
