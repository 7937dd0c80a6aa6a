//! `apply::run`: the whole apply operation, which `apply`, `revert` and
//! `drift --heal` share. The CLI only turns arguments into [`RunOptions`]
//! and the [`Outcome`] into output.
//!
//! Order: permission (a refusal is journaled and costs no change) ->
//! confirmation -> the ledger and the environment's lock (with a lease,
//! renewed in the background) -> the account read again under the lock and
//! compared with the plan's fingerprint (a stale plan is refused) -> the
//! journal's start row -> the executor -> the journal's finish -> the
//! inventory, secret fingerprints and migration hashes recorded -> the
//! lock released.

use std::sync::Arc;
use std::time::Duration;

use super::journal::{Journal, Observer};
use super::lock::HeldLock;
use super::{ApplyOptions, ApplyReport, ChangeOutcome, Effect, Refusal, check_permission};
use crate::cloudflare::Client;
use crate::ledger::journal::ApplyStatus;
use crate::ledger::{self, LedgerError, locks};
use crate::model::{DesiredState, ResourceKind};
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
    /// A change finished (or failed).
    Landed(&'a ChangeOutcome),
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
    Lock(#[source] locks::LockError),
    #[error("reading the account under the apply lock failed: nothing was applied")]
    Fetch(#[source] crate::cloudflare::ClientError),
    #[error(
        "the account changed while the plan waited for confirmation or for the apply lock: nothing was applied"
    )]
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
            ApplyError::AccountChanged => Some("run apply again to see the new plan"),
            ApplyError::Lock(locks::LockError::Held { .. }) => Some(
                "wait for the other apply, or if it died, remove its lock with `flareops unlock`",
            ),
            _ => None,
        }
    }
}

/// What a finished apply did.
#[derive(Debug)]
pub struct Outcome {
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

/// Applies `plan` (made for `desired`) to the account of `context`.
/// `confirm` is asked after the permission check and before the lock, only
/// when the plan has changes.
pub async fn run(
    context: Context<'_>,
    plan: &Plan,
    desired: &DesiredState,
    options: &RunOptions,
    confirm: impl FnOnce() -> Confirmation,
    events: &Events,
) -> Result<Outcome, ApplyError> {
    let client = context.client;
    if let Err(refusal) = check_permission(plan, &options.apply) {
        journal_refusal(client, desired, plan, options).await;
        return Err(ApplyError::Refused(refusal));
    }
    if !plan.is_empty()
        && let Confirmation::Declined(reason) = confirm()
    {
        return Err(ApplyError::NotConfirmed(reason));
    }
    let database = ledger::open(client, &desired.ledger_database)
        .await
        .map_err(ApplyError::OpenLedger)?;
    let lock = HeldLock::take(
        client,
        &database,
        &desired.environment,
        options.lock_timeout,
        options.lease,
        events,
    )
    .await?;
    let result = locked(client, &lock, plan, desired, options, events).await;
    lock.release(client, events).await;
    result
}

/// The part of [`run`] that holds the lock.
async fn locked(
    client: &Client,
    lock: &HeldLock,
    plan: &Plan,
    desired: &DesiredState,
    options: &RunOptions,
    events: &Events,
) -> Result<Outcome, ApplyError> {
    // The account may have changed while the plan waited for an answer or
    // for the lock (another apply may just have made these changes).
    let mut live = crate::live::fetch(client, desired)
        .await
        .map_err(ApplyError::Fetch)?;
    // Taking the lock creates the ledger on a first apply: an empty
    // inventory where there was no ledger is no change.
    if live.fingerprint() != plan.live_fingerprint && live.inventory == Some(Vec::new()) {
        live.inventory = None;
    }
    if live.fingerprint() != plan.live_fingerprint {
        return Err(ApplyError::AccountChanged);
    }
    let database = lock.database();
    if plan.is_empty() {
        // Recording the inventory writes the ledger: under the lock too.
        let inventory = live.inventory_for(desired);
        ledger::record_inventory(client, database, &desired.environment, &inventory)
            .await
            .map_err(ApplyError::Record)?;
        return Ok(Outcome {
            report: ApplyReport {
                outcomes: Vec::new(),
                after: live,
            },
            apply_id: None,
        });
    }
    // The journal's start row lands before the first change is made.
    let journal = Journal::start(client, database, plan, &options.git_commit, &options.actor)
        .await
        .map_err(ApplyError::Journal)?;
    let apply = ApplyOptions {
        stop: lock.stop.clone(),
        ..options.apply.clone()
    };
    let watched = Watched {
        journal: &journal,
        events,
    };
    let report = super::execute(client, plan, desired, &live, &apply, &watched).await;
    journal
        .finish(if report.failed() == 0 {
            ApplyStatus::Succeeded
        } else {
            ApplyStatus::Failed
        })
        .await;
    record(client, database, desired, &report).await?;
    Ok(Outcome {
        report,
        apply_id: Some(journal.id().to_string()),
    })
}

/// The journal, plus progress events for the caller.
struct Watched<'a> {
    journal: &'a Journal<'a>,
    events: &'a Events,
}

impl Observer for Watched<'_> {
    async fn before_wave(&self, changes: &[&Change]) {
        self.journal.before_wave(changes).await;
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
    database: &str,
    desired: &DesiredState,
    report: &ApplyReport,
) -> Result<(), ApplyError> {
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
    ledger::record_inventory(client, database, &desired.environment, &inventory)
        .await
        .map_err(ApplyError::Record)?;
    ledger::record_secret_fingerprints(client, database, desired, &sent, &deleted)
        .await
        .map_err(ApplyError::Record)?;
    ledger::record_migration_hashes(client, database, desired, &migrations, &undone)
        .await
        .map_err(ApplyError::Record)?;
    Ok(())
}

/// Records a refused plan, when the account already has a ledger (a
/// refusal creates nothing). Best effort: the refusal is what matters.
async fn journal_refusal(
    client: &Client,
    desired: &DesiredState,
    plan: &Plan,
    options: &RunOptions,
) {
    let recorded = async {
        let databases = client.list_d1_databases().await?;
        let Some(database) = ledger::find(&databases, &desired.ledger_database) else {
            return Ok(());
        };
        let journal =
            Journal::start(client, &database, plan, &options.git_commit, &options.actor).await?;
        journal.finish(ApplyStatus::Refused).await;
        Ok::<_, LedgerError>(())
    }
    .await;
    if let Err(error) = recorded {
        tracing::warn!(%error, "journaling the refused apply failed");
    }
}
