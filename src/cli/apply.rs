//! `flareops apply`: plan, show, confirm, execute exactly that plan; or,
//! with a plan file, check that neither the manifests nor the account
//! changed since it was saved, then execute exactly the saved plan.

use std::io::{BufRead, IsTerminal};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, anyhow, bail};

use super::target::Target;
use super::{ApplyArgs, Printer};
use crate::apply::{self, ApplyOptions, ChangeOutcome};
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

async fn execute(
    root: &Path,
    target: &Target,
    desired: &DesiredState,
    plan: &Plan,
    args: &ApplyArgs,
    printer: &Printer,
) -> anyhow::Result<ExitCode> {
    printer.data(&render::text(plan));
    if plan.is_empty() {
        record(target, desired).await?;
        return Ok(ExitCode::SUCCESS);
    }
    let options = ApplyOptions {
        allow_delete: args.allow_delete,
        message: super::git::describe(root),
        ..ApplyOptions::default()
    };
    if let Err(refusal) = apply::check_permission(plan, &options) {
        bail!("{refusal}\nhint: {}", refusal.hint());
    }
    if !args.yes {
        confirm(&desired.environment, printer)?;
        // The account may have changed while the plan waited for an answer.
        let now = live::fetch(&target.client, desired).await?;
        if now.fingerprint() != plan.live_fingerprint {
            bail!(
                "the account changed while the plan waited for confirmation: nothing was applied\nhint: run apply again to see the new plan"
            );
        }
    }
    let report = apply::apply(&target.client, plan, desired, &options, |outcome| {
        // Failures are messages (stderr); what was done is the report (stdout).
        match outcome.result {
            Ok(_) => printer.data(&outcome_line(outcome)),
            Err(_) => printer.message(outcome_line(outcome).trim_end()),
        }
    })
    .await;
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
    record(target, desired).await?;
    if report.failed() > 0 {
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// Records in the ledger what flareops now manages.
async fn record(target: &Target, desired: &DesiredState) -> anyhow::Result<()> {
    let count = crate::ledger::sync(&target.client, desired)
        .await
        .context("the changes were made, but recording them in the ledger failed; run apply again to record them")?;
    tracing::debug!(count, "ledger inventory recorded");
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
