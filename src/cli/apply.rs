//! `flareops apply`: plan, show, confirm, execute exactly that plan.

use std::io::{BufRead, IsTerminal};
use std::path::Path;
use std::process::ExitCode;

use anyhow::bail;

use super::target::Target;
use super::{ApplyArgs, Printer};
use crate::apply::{self, ApplyOptions, ChangeOutcome};
use crate::{live, plan, render};

pub async fn run(root: &Path, args: &ApplyArgs, printer: &Printer) -> anyhow::Result<ExitCode> {
    let desired =
        super::validate::load(root, &args.target.environment, args.target.local, printer)?;
    let target = Target::connect(root, &desired, args.target.local).await?;
    let result = execute(root, &target, &desired, args, printer).await;
    target.close().await;
    result
}

async fn execute(
    root: &Path,
    target: &Target,
    desired: &crate::model::DesiredState,
    args: &ApplyArgs,
    printer: &Printer,
) -> anyhow::Result<ExitCode> {
    let live = live::fetch(&target.client, desired).await?;
    let plan = plan::plan(desired, &live);
    printer.data(&render::text(&plan));
    if plan.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    let options = ApplyOptions {
        allow_delete: args.allow_delete,
        message: super::git::describe(root),
        ..ApplyOptions::default()
    };
    if let Err(refusal) = apply::check_permission(&plan, &options) {
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
    let report = apply::apply(&target.client, &plan, desired, &options, |outcome| {
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
    if report.failed() > 0 {
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
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
