//! `flareops apply`: plan, show, confirm, execute exactly that plan; or,
//! with a plan file, check that neither the manifests nor the account
//! changed since it was saved, then execute exactly the saved plan.

use std::io::{BufRead, IsTerminal};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};

use super::target::Target;
use super::{ApplyArgs, Printer};
use crate::apply::{self, ApplyOptions, ChangeOutcome, StopSignal};
use crate::ledger::locks;
use crate::model::DesiredState;
use crate::plan::{Plan, SavedPlan};
use crate::{live, plan, render};

pub async fn run(root: &Path, args: &ApplyArgs, printer: &Printer) -> anyhow::Result<ExitCode> {
    match (&args.plan_file, &args.environment) {
        (Some(file), None) => run_saved(root, file, args, printer).await,
        (None, Some(environment)) => run_fresh(root, environment, args, printer).await,
        _ => bail!(
            "apply needs either --env ENV or a plan file, not both\nhint: `flareops apply --env ENV` plans and applies; `flareops apply FILE` applies a plan saved with `plan --out FILE`"
        ),
    }
}

async fn run_fresh(
    root: &Path,
    environment: &str,
    args: &ApplyArgs,
    printer: &Printer,
) -> anyhow::Result<ExitCode> {
    let desired = super::validate::load(root, environment, args.local, printer)?;
    let target = Target::connect(root, &desired, args.local).await?;
    let result = async {
        let live = live::fetch(&target.client, &desired).await?;
        let plan = plan::plan(&desired, &live);
        execute(root, &target, &desired, &plan, args, printer).await
    }
    .await;
    target.close().await;
    result
}

async fn run_saved(
    root: &Path,
    file: &Path,
    args: &ApplyArgs,
    printer: &Printer,
) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read the plan file {}", file.display()))?;
    let saved = SavedPlan::parse(&text).map_err(|error| {
        anyhow!(
            "{}: {error}\nhint: make a new plan with `flareops plan --env ENV --out FILE`",
            file.display()
        )
    })?;
    let environment = saved.plan.environment.clone();
    let new_plan_hint = format!(
        "make a new plan with `flareops plan --env {environment} --out {}`, review it, and apply that",
        file.display()
    );
    let local = args.local || saved.local;
    let desired = super::validate::load(root, &environment, local, printer)?;
    // Checked before any request: a refusal here costs none.
    if super::plan::manifest_fingerprint(root, &desired)? != saved.manifest_fingerprint {
        bail!(
            "the manifests changed since the plan was made: nothing was applied\nhint: {new_plan_hint}"
        );
    }
    let target = Target::connect(root, &desired, local).await?;
    let result = async {
        let live = live::fetch(&target.client, &desired).await?;
        if live.account_id != saved.plan.account_id {
            bail!(
                "the plan was made for account {}, but this apply targets account {}: nothing was applied\nhint: {new_plan_hint}",
                saved.plan.account_id,
                live.account_id
            );
        }
        if live.fingerprint() != saved.plan.live_fingerprint {
            bail!(
                "the account changed since the plan was made: nothing was applied\nhint: {new_plan_hint}"
            );
        }
        execute(root, &target, &desired, &saved.plan, args, printer).await
    }
    .await;
    target.close().await;
    result
}

pub(super) async fn execute(
    root: &Path,
    target: &Target,
    desired: &DesiredState,
    plan: &Plan,
    args: &ApplyArgs,
    printer: &Printer,
) -> anyhow::Result<ExitCode> {
    printer.data(&render::text(plan));
    if plan.is_empty() {
        // Recording the inventory writes the ledger: under the lock too.
        let lock = take_lock(target, desired, args, printer).await?;
        let recorded = record(target, lock.lock.database(), desired, &Recorded::default()).await;
        release_lock(lock, target).await;
        recorded?;
        return Ok(ExitCode::SUCCESS);
    }
    let options = ApplyOptions {
        allow_delete: args.allow_delete,
        empty_deletes_allowed: args.revert,
        message: args
            .commit
            .clone()
            .unwrap_or_else(|| super::git::describe(root)),
        ..ApplyOptions::default()
    };
    if let Err(refusal) = apply::check_permission(plan, &options) {
        super::history::journal_refusal(&target.client, desired, plan, &options.message).await;
        bail!("{refusal}\nhint: {}", refusal.hint());
    }
    if !args.yes {
        confirm(&desired.environment, printer)?;
    }
    let lock = take_lock(target, desired, args, printer).await?;
    let result = execute_locked(target, &lock, desired, plan, options, printer).await;
    release_lock(lock, target).await;
    result
}

/// Executes `plan` under the apply lock, once the account is still what the
/// plan was made from: it may have changed while the plan waited for an
/// answer or for the lock (another apply may just have made these changes).
async fn execute_locked(
    target: &Target,
    lock: &HeldLock,
    desired: &DesiredState,
    plan: &Plan,
    options: ApplyOptions,
    printer: &Printer,
) -> anyhow::Result<ExitCode> {
    let options = ApplyOptions {
        stop: lock.stop.clone(),
        ..options
    };
    let mut now = live::fetch(&target.client, desired).await?;
    // Taking the lock creates the ledger on a first apply: an empty
    // inventory where there was no ledger is no change.
    if now.fingerprint() != plan.live_fingerprint && now.inventory == Some(Vec::new()) {
        now.inventory = None;
    }
    if now.fingerprint() != plan.live_fingerprint {
        bail!(
            "the account changed while the plan waited for confirmation or for the apply lock: nothing was applied\nhint: run apply again to see the new plan"
        );
    }
    // The journal's start row lands before the first change is made.
    let database = lock.lock.database().to_string();
    let journal =
        super::history::Journal::start(&target.client, database, desired, plan, &options.message)
            .await
            .context("journaling this apply failed: nothing was applied")?;
    let progress = |outcome: &ChangeOutcome| {
        // Failures are messages (stderr); what was done is the report (stdout).
        match outcome.result {
            Ok(_) => printer.data(&outcome_line(outcome)),
            Err(_) => printer.message(outcome_line(outcome).trim_end()),
        }
    };
    let report =
        apply::apply_journaled(&target.client, plan, desired, &options, progress, &journal).await;
    journal.finish(report.failed() == 0).await;
    let summary = format!(
        "\nApply {}: {} of {} changes made{}.\n",
        if report.failed() == 0 {
            "complete"
        } else {
            "incomplete"
        },
        report.succeeded(),
        report.outcomes.len(),
        if report.failed() == 0 {
            String::new()
        } else {
            format!(", {} failed (run apply again to finish)", report.failed())
        }
    );
    printer.data(&summary);
    record(
        target,
        lock.lock.database(),
        desired,
        &Recorded::from_run(plan, &report),
    )
    .await?;
    if report.failed() > 0 {
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// What a run's successful changes did that the ledger keeps, beyond the
/// inventory. Names only: never a secret value.
#[derive(Debug, Default)]
struct Recorded {
    /// Secrets sent, as (worker key, secret name).
    sent: Vec<(String, String)>,
    /// Secrets deleted, as (script name, secret name).
    deleted: Vec<(String, String)>,
    /// Migration files run, as (database key, file name, bookmark taken
    /// just before it).
    migrations: Vec<(String, String, String)>,
    /// Migration files a restored bookmark undid, as (database key, file name).
    undone: Vec<(String, String)>,
}

impl Recorded {
    fn from_run(plan: &Plan, report: &apply::ApplyReport) -> Recorded {
        use crate::plan::Step;
        let mut recorded = Recorded::default();
        // What a change did to D1 counts even when a later step failed.
        for outcome in &report.outcomes {
            recorded
                .undone
                .extend(outcome.migrations_undone.iter().cloned());
            recorded
                .migrations
                .extend(outcome.migrations_run.iter().cloned());
        }
        for change in &plan.changes {
            let succeeded = report
                .outcomes
                .iter()
                .any(|o| o.address == change.address && o.result.is_ok());
            if !succeeded {
                continue;
            }
            for step in &change.steps {
                match step {
                    Step::UploadWorkerScript {
                        worker, secrets, ..
                    }
                    | Step::UploadWorkerVersion {
                        worker, secrets, ..
                    } => recorded
                        .sent
                        .extend(secrets.iter().map(|s| (worker.clone(), s.clone()))),
                    Step::DeleteWorkerSecret { name, secret } => {
                        recorded.deleted.push((name.clone(), secret.clone()));
                    }
                    _ => {}
                }
            }
        }
        recorded
    }
}

/// Records in the ledger what flareops now manages.
/// `database` is the ledger the apply lock opened.
async fn record(
    target: &Target,
    database: &str,
    desired: &DesiredState,
    done: &Recorded,
) -> anyhow::Result<()> {
    let hint = "the changes were made, but recording them in the ledger failed; run apply again to record them";
    crate::ledger::sync(&target.client, database, desired)
        .await
        .context(hint)?;
    crate::ledger::record_secret_fingerprints(
        &target.client,
        database,
        desired,
        &done.sent,
        &done.deleted,
    )
    .await
    .context(hint)?;
    crate::ledger::record_migration_hashes(
        &target.client,
        database,
        desired,
        &done.migrations,
        &done.undone,
    )
    .await
    .context(hint)?;
    Ok(())
}

fn outcome_line(outcome: &ChangeOutcome) -> String {
    match &outcome.result {
        Ok(lines) => format!("{}: {}\n", outcome.address, lines.join("; ")),
        Err(error) => {
            let hint = error
                .hint()
                .map(|h| format!("\n  hint: {h}"))
                .unwrap_or_default();
            format!("{}: FAILED: {error}{hint}\n", outcome.address)
        }
    }
}

/// A taken apply lock and the task renewing its lease.
struct HeldLock {
    lock: locks::Lock,
    renewal: tokio::task::JoinHandle<()>,
    /// Raised when the lock may be lost: no further change starts.
    stop: StopSignal,
}

/// Takes the apply lock of the environment, waiting up to `--lock-timeout`
/// while another apply holds it, and renews its lease in the background
/// every third of it until [`release_lock`].
async fn take_lock(
    target: &Target,
    desired: &DesiredState,
    args: &ApplyArgs,
    printer: &Printer,
) -> anyhow::Result<HeldLock> {
    let client = &target.client;
    let environment = &desired.environment;
    let database = crate::ledger::open(client, &desired.ledger_database)
        .await
        .context("opening the ledger to take the apply lock failed: nothing was applied")?;
    let lock = locks::acquire(
        client,
        &database,
        environment,
        args.lock_timeout,
        locks::lease_from_env(),
        |info| {
            printer.message(&format!(
                "Waiting up to {} for the lock of environment `{environment}`: {info}.",
                locks::display_duration(args.lock_timeout)
            ))
        },
    )
    .await
    .map_err(|error| match error {
        locks::LockError::Held { .. } => anyhow!("nothing was applied: {error}"),
        other => {
            anyhow::Error::new(other).context("taking the apply lock failed: nothing was applied")
        }
    })?;
    tracing::debug!(%environment, holder = lock.holder(), "apply lock taken");
    // Renew the lease in the background. When the lock is lost, or its
    // lease runs out before a renewal landed (another apply may take it
    // over then), no further change starts.
    let stop = StopSignal::default();
    let lease = locks::lease_from_env();
    let renewal = tokio::spawn({
        let (lock, client, stop) = (lock.clone(), client.clone(), stop.clone());
        async move {
            let printer = Printer::new();
            let renewed_at = std::sync::Mutex::new(tokio::time::Instant::now());
            let environment = lock.environment().to_string();
            let keep = lock.keep_alive(
                &client,
                |warning, definite| {
                    printer.message(&warning);
                    if definite {
                        stop.raise(format!(
                            "this apply lost the lock of environment `{environment}`"
                        ));
                    }
                },
                || {
                    *renewed_at
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) =
                        tokio::time::Instant::now();
                },
            );
            let watch = async {
                // A margin before the lease ends: a change started later
                // might run after another apply took the lock over.
                let margin = lease / 6;
                loop {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    let since = renewed_at
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .elapsed();
                    if since + margin >= lease {
                        stop.raise(format!(
                            "the lease of the lock of environment `{}` could not be renewed in time",
                            lock.environment()
                        ));
                    }
                }
            };
            tokio::select! {
                () = keep => {}
                () = watch => {}
            }
        }
    });
    Ok(HeldLock {
        lock,
        renewal,
        stop,
    })
}

/// Stops renewing and releases the lock; a failure only warns (the lease
/// expires on its own).
async fn release_lock(held: HeldLock, target: &Target) {
    held.renewal.abort();
    let environment = held.lock.environment().to_string();
    if let Err(error) = held.lock.release(&target.client).await {
        Printer::new().message(&format!(
            "warning: releasing the lock of environment `{environment}` failed ({error}); its lease expires on its own, or remove it with `flareops unlock --env {environment}`"
        ));
    }
}

fn confirm(environment: &str, printer: &Printer) -> anyhow::Result<()> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        bail!(
            "apply needs confirmation, and stdin is not a terminal\nhint: review the plan, then pass --yes"
        );
    }
    printer.message(&format!(
        "Apply these changes to environment `{environment}`? Only `yes` is accepted: "
    ));
    let mut answer = String::new();
    stdin.lock().read_line(&mut answer)?;
    if answer.trim() != "yes" {
        bail!("apply cancelled: nothing was changed");
    }
    Ok(())
}
