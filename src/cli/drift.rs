//! `flareops drift`: how the account differs from git, by cause (see
//! `crate::drift`). Exit 0 = no drift, 2 = drift, 1 = error. `--heal`
//! applies the current manifests, then checks again.
//!
//! To tell changes made outside git from changes git made since the last
//! apply, the manifests of the last apply are read from git (at the commit
//! the journal recorded) and planned against the same account.

use std::path::Path;
use std::process::ExitCode;

use super::apply::Request;
use super::target::{Session, Target};
use super::validate::Secrets;
use super::{DriftArgs, Printer, ReportFormat};
use crate::apply::PlanSource;
use crate::drift::{self, DriftReport};
use crate::model::{DesiredState, ResourceKind};
use crate::plan::Plan;
use crate::{live, plan, render};

pub async fn run(
    root: &Path,
    session: &Session,
    args: &DriftArgs,
    printer: &Printer,
) -> anyhow::Result<ExitCode> {
    let environment = &args.target.environment;
    let local = args.target.local;
    // Healing uploads secrets: it needs every value. A report only reads.
    let desired = if args.heal {
        super::validate::load(root, environment, local, printer)?
    } else {
        super::validate::load_for_reading(root, environment, local, printer)?
    };
    let target = session.connect(root, &desired, local).await?;
    let result = async {
        let (report, now) = report(root, &target, &desired, local).await?;
        if args.heal && args.format == ReportFormat::Json {
            // One document: the report, then what healing did.
            let (code, healing) = heal(
                root,
                &target,
                &desired,
                &report,
                &now,
                args,
                &printer.to_stderr(),
            )
            .await?;
            printer.data(&render::heal_json(
                &report,
                &render::Healing {
                    apply: healing.apply.as_ref(),
                    remaining_changes: healing.remaining_changes,
                },
            )?);
            return Ok(code);
        }
        printer.data(&match args.format {
            ReportFormat::Text => render::drift_text(&report),
            ReportFormat::Json => render::drift_json(&report)?,
            ReportFormat::Markdown => render::drift_markdown(&report),
        });
        if !args.heal {
            return Ok(exit_code(report.has_drift()));
        }
        // The apply's plan and progress must not spoil a JSON or markdown
        // report on stdout.
        let to_stderr = printer.to_stderr();
        let heal_printer = match args.format {
            ReportFormat::Text => printer,
            _ => &to_stderr,
        };
        Ok(
            heal(root, &target, &desired, &report, &now, args, heal_printer)
                .await?
                .0,
        )
    }
    .await;
    target.close().await;
    result
}

fn exit_code(drift: bool) -> ExitCode {
    if drift {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}

/// Checks drift through [`drift::check`], supplying git and the other
/// environments' manifests.
async fn report(
    root: &Path,
    target: &Target,
    desired: &DesiredState,
    local: bool,
) -> anyhow::Result<(DriftReport, Plan)> {
    let git_commit = super::git::describe(root, &desired.source_paths());
    let declared_elsewhere = declared_elsewhere(root, desired, local);
    let manifests_at = |commit: &str| manifests_at(root, desired, commit, local);
    let same_commit = |recorded: &str| same_commit(recorded, &git_commit);
    let sources = drift::Sources {
        git_commit: &git_commit,
        manifests_at: &manifests_at,
        declared_elsewhere: &declared_elsewhere,
        same_commit: &same_commit,
    };
    Ok(drift::check(&target.client, desired, &sources).await?)
}

/// The names other environments declare (their manifests, when they load
/// here; the ledger's inventories add what they manage).
fn declared_elsewhere(
    root: &Path,
    desired: &DesiredState,
    local: bool,
) -> Vec<(ResourceKind, String)> {
    let mut known = Vec::new();
    let others = crate::manifest::environments(root).unwrap_or_default();
    for other in others.iter().filter(|e| **e != desired.environment) {
        let Ok(state) = super::validate::load_quietly(root, other, local, Secrets::Optional) else {
            continue;
        };
        known.extend(
            state
                .names()
                .into_iter()
                .map(|(kind, name)| (kind, name.to_string())),
        );
    }
    known
}

/// Whether the journal's commit (recorded with or without the `flareops `
/// prefix) is the clean commit the manifests are read at now.
fn same_commit(recorded: &str, current: &str) -> bool {
    super::git::committed(current).is_some_and(|current| super::git::bare(recorded) == current)
}

/// The manifests of this environment at `commit` (as the journal records
/// it); an error says why they cannot be read.
fn manifests_at(
    root: &Path,
    desired: &DesiredState,
    commit: &str,
    local: bool,
) -> Result<DesiredState, String> {
    let Some(commit) = super::git::committed(commit) else {
        return Err(format!(
            "the last apply ran from uncommitted or unknown manifests ({commit})"
        ));
    };
    let snapshot = super::git::checkout(root, commit).map_err(|error| {
        format!(
            "the manifests of the last apply (commit {commit}) cannot be read: {error:#} (a shallow clone? fetch the whole history)"
        )
    })?;
    super::validate::load_at(
        snapshot.path(),
        root,
        &desired.environment,
        local,
        Secrets::Optional,
    )
    .map_err(|diagnostics| {
        format!(
            "the manifests of the last apply (commit {commit}) do not load today: {}",
            diagnostics.render(false).lines().next().unwrap_or_default()
        )
    })
}

/// What healing did.
struct Healed {
    apply: Option<crate::apply::Outcome>,
    remaining_changes: usize,
}

/// Applies the current manifests, then checks again: exit 0 only when the
/// account matches git afterwards.
async fn heal(
    root: &Path,
    target: &Target,
    desired: &DesiredState,
    report: &DriftReport,
    now: &Plan,
    args: &DriftArgs,
    printer: &Printer,
) -> anyhow::Result<(ExitCode, Healed)> {
    let mut healed = Healed {
        apply: None,
        remaining_changes: 0,
    };
    if !now.is_empty() {
        printer.message(&format!(
            "healing environment `{}`: applying the manifests at {}",
            desired.environment,
            render::short_commit(&report.git_commit)
        ));
        let request = Request {
            allow_delete: args.allow_delete,
            revert: false,
            yes: args.yes,
            lock_timeout: args.lock_timeout,
            commit: report.git_commit.clone(),
            new_plan_hint: None,
            checkout: Some(root.to_path_buf()),
        };
        let (code, outcome) =
            super::apply::execute_with(target, desired, PlanSource::Fresh, &request, printer)
                .await?;
        healed.apply = Some(outcome);
        if code != ExitCode::SUCCESS {
            return Ok((code, healed));
        }
    }
    let live = live::fetch(&target.client, desired).await?;
    let after = plan::plan(desired, &live);
    healed.remaining_changes = after.changes.len();
    if !after.is_empty() {
        printer.message(&format!(
            "the account still differs from git after healing ({} changes): run `flareops drift --env {}` to see them",
            after.changes.len(),
            desired.environment
        ));
        return Ok((exit_code(true), healed));
    }
    if !report.unmanaged.is_empty() {
        printer.message(&format!(
            "healed: the managed resources match git; {} unmanaged look-alikes remain (flareops never touches them)",
            report.unmanaged.len()
        ));
        return Ok((exit_code(true), healed));
    }
    printer.message("healed: the account matches git");
    Ok((ExitCode::SUCCESS, healed))
}
