//! `flareops revert`: go back to what git declared at an earlier point, the
//! manifests at a git revision (`--to-git REF`), at the commit an earlier
//! apply ran from (`--to APPLY_ID`), or before the last apply (the default).
//! It is an ordinary plan and apply from those manifests: the revert plan
//! is shown, confirmed, and applied under the same rules (`--allow-delete`
//! for anything that loses data, the lock, the journal).

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};

use super::Printer;
use super::RevertArgs;
use super::apply::Request;
use super::target::Session;
use crate::apply::PlanSource;
use crate::ledger::journal::{self, ApplyStatus};

pub async fn run(
    root: &Path,
    session: &Session,
    args: &RevertArgs,
    printer: &Printer,
) -> anyhow::Result<ExitCode> {
    let environment = &args.environment;
    let reference = match (&args.to_git, &args.to) {
        (Some(reference), _) => reference.clone(),
        (None, to) => {
            commit_of_apply(
                root,
                session,
                environment,
                to.as_deref(),
                args.local,
                printer,
            )
            .await?
        }
    };
    let commit = super::git::describe_revision(root, &reference)?;
    let snapshot = super::git::checkout(root, &reference)?;
    printer.message(&format!(
        "revert plan for environment `{environment}`: back to the manifests at git revision {reference}"
    ));
    let desired =
        super::validate::load_snapshot(snapshot.path(), root, environment, args.local, printer)?;
    // The local account's state stays in this checkout, not in the snapshot.
    let target = session.connect(root, &desired, args.local).await?;
    let request = Request {
        allow_delete: args.allow_delete,
        revert: true,
        yes: args.yes,
        lock_timeout: args.lock_timeout,
        commit,
        new_plan_hint: None,
        checkout: Some(root.to_path_buf()),
    };
    let result =
        super::apply::execute(&target, &desired, PlanSource::Fresh, &request, printer).await;
    target.close().await;
    result
}

/// The git commit to go back to, from the journal: the commit apply `to`
/// ran from, or (without `to`) the one the apply before the last
/// successful one ran from.
async fn commit_of_apply(
    root: &Path,
    session: &Session,
    environment: &str,
    to: Option<&str>,
    local: bool,
    printer: &Printer,
) -> anyhow::Result<String> {
    // Reading the journal needs no secret value.
    let desired = super::validate::load_for_reading(root, environment, local, printer)?;
    let target = session.connect(root, &desired, local).await?;
    let records = async {
        let databases = target.client.list_d1_databases().await?;
        let Some(ledger) = crate::ledger::find(&databases, &desired.ledger_database) else {
            return Ok(Vec::new());
        };
        journal::history(&target.client, &ledger, environment, 1000)
            .await
            .context("reading the apply journal")
    }
    .await;
    target.close().await;
    let records = records?;
    let succeeded: Vec<&journal::ApplyRecord> = records
        .iter()
        .filter(|r| r.recorded_status == ApplyStatus::Succeeded)
        .collect();
    let record = match to {
        Some(id) => records.iter().find(|r| r.id == id || r.id.starts_with(id)).with_context(|| {
            format!("no apply `{id}` in the journal of environment `{environment}`\nhint: `flareops history --env {environment}` lists them")
        })?,
        None => match succeeded.get(1) {
            Some(record) => *record,
            None => bail!(
                "environment `{environment}` has no earlier successful apply to go back to\nhint: name a git revision with `--to-git REF`"
            ),
        },
    };
    let Some(commit) = super::git::committed(&record.git_commit) else {
        bail!(
            "apply {} ran from uncommitted or unknown manifests ({}), so they cannot be restored from git\nhint: name a git revision with `--to-git REF`",
            record.id,
            record.git_commit
        );
    };
    Ok(commit.to_string())
}
