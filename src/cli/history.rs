//! `flareops history`: the applies journaled in the ledger, newest first
//! (read-only); and the journal `apply` writes around the executor.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

use super::target::Target;
use super::{Format, HistoryArgs, Printer};
use crate::apply::{ChangeOutcome, Observer};
use crate::cloudflare::Client;
use crate::ledger::{self, journal};
use crate::model::DesiredState;
use crate::plan::{Change, Plan};

pub async fn run(root: &Path, args: &HistoryArgs, printer: &Printer) -> anyhow::Result<ExitCode> {
    let environment = &args.target.environment;
    let desired = super::validate::load(root, environment, args.target.local, printer)?;
    let target = Target::connect(root, &desired, args.target.local).await?;
    let result = read(
        &target.client,
        &desired.ledger_database,
        environment,
        args.limit,
    )
    .await;
    target.close().await;
    let records = result?;
    match args.format {
        Format::Json => {
            let text = serde_json::to_string_pretty(&serde_json::json!({ "applies": records }))?;
            printer.data(&format!("{text}\n"));
        }
        Format::Text if records.is_empty() => {
            printer.data(&format!(
                "no applies recorded for environment `{environment}`\n"
            ));
        }
        Format::Text => printer.data(&text(&records)),
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads the journal without creating anything: no ledger, no applies.
async fn read(
    client: &Client,
    ledger_database: &str,
    environment: &str,
    limit: usize,
) -> anyhow::Result<Vec<journal::ApplyRecord>> {
    let databases = client.list_d1_databases().await?;
    let Some(database) = ledger::find(&databases, ledger_database) else {
        return Ok(Vec::new());
    };
    Ok(journal::history(client, &database, environment, limit).await?)
}

fn text(records: &[journal::ApplyRecord]) -> String {
    let mut out = String::new();
    for r in records {
        out.push_str(&format!(
            "{}  {}  {:<11}  {}  {}  {}\n",
            r.id, r.started_at, r.status, r.git_commit, r.actor, r.summary
        ));
    }
    out
}

/// `3 to create, 1 to update, 0 to replace, 0 to delete`.
fn summary(plan: &Plan) -> String {
    let s = plan.summary();
    format!(
        "{} to create, {} to update, {} to replace, {} to delete",
        s.create, s.update, s.replace, s.delete
    )
}

/// Who runs the apply: `GITHUB_ACTOR` in CI, else `USER`.
fn actor() -> String {
    ["GITHUB_ACTOR", "USER"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| "unknown".to_string())
}

/// The journal of one apply: the start row is written by [`Journal::start`],
/// each change's row around it (as an [`Observer`]), the finish by
/// [`Journal::finish`]. Only the start must succeed; a later journal write
/// that fails is logged and the apply goes on.
pub struct Journal<'a> {
    client: &'a Client,
    database: String,
    id: String,
    plan: &'a Plan,
}

impl<'a> Journal<'a> {
    /// Starts the journal of an apply in `database`, the ledger already
    /// opened (by the apply lock).
    pub async fn start(
        client: &'a Client,
        database: String,
        desired: &DesiredState,
        plan: &'a Plan,
        message: &str,
    ) -> anyhow::Result<Journal<'a>> {
        let id = uuid::Uuid::new_v4().to_string();
        journal::start(
            client,
            &database,
            &journal::ApplyStart {
                id: &id,
                environment: &desired.environment,
                git_commit: super::git::bare(message),
                actor: &actor(),
                summary: &summary(plan),
            },
        )
        .await
        .context("journaling the start of this apply failed: nothing was applied")?;
        Ok(Journal {
            client,
            database,
            id,
            plan,
        })
    }

    fn seq(&self, change: &crate::model::Address) -> usize {
        self.plan
            .changes
            .iter()
            .position(|c| &c.address == change)
            .unwrap_or(usize::MAX)
    }

    pub async fn finish(&self, succeeded: bool) {
        let status = if succeeded {
            journal::ApplyStatus::Succeeded
        } else {
            journal::ApplyStatus::Failed
        };
        if let Err(error) = journal::finish(self.client, &self.database, &self.id, status).await {
            tracing::warn!(%error, apply = %self.id, "journaling the end of the apply failed");
        }
    }
}

impl Observer for Journal<'_> {
    async fn before(&self, change: &Change) {
        let kind = serde_json::to_value(change.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        // The planned steps and the before-image of every field they change
        // (the plan's `before` values): names and ids, never a secret value.
        let steps =
            serde_json::json!({"steps": change.steps, "before_image": change.fields}).to_string();
        let written = journal::step_started(
            self.client,
            &self.database,
            &self.id,
            self.seq(&change.address),
            &change.address.to_string(),
            &kind,
            &steps,
        )
        .await;
        if let Err(error) = written {
            tracing::warn!(%error, address = %change.address, "journaling a change failed");
        }
    }

    async fn after(&self, outcome: &ChangeOutcome) {
        let (succeeded, detail) = match &outcome.result {
            Ok(lines) => (true, lines.join("; ")),
            Err(error) => (false, error.to_string()),
        };
        let written = journal::step_finished(
            self.client,
            &self.database,
            &self.id,
            self.seq(&outcome.address),
            succeeded,
            &detail,
        )
        .await;
        if let Err(error) = written {
            tracing::warn!(%error, address = %outcome.address, "journaling a change failed");
        }
    }
}

/// Records a refused plan, when the account already has a ledger (a
/// refusal creates nothing). Best effort: the refusal is what matters.
pub async fn journal_refusal(client: &Client, desired: &DesiredState, plan: &Plan, message: &str) {
    let recorded = async {
        let databases = client.list_d1_databases().await?;
        let Some(database) = ledger::find(&databases, &desired.ledger_database) else {
            return Ok(());
        };
        let journal = Journal::start(client, database, desired, plan, message).await?;
        journal::finish(
            client,
            &journal.database,
            &journal.id,
            journal::ApplyStatus::Refused,
        )
        .await?;
        anyhow::Ok(())
    }
    .await;
    if let Err(error) = recorded {
        tracing::warn!(%error, "journaling the refused apply failed");
    }
}
