//! The journal an apply writes in the ledger around the executor: the
//! start row before the first change, the rows of a wave of changes before
//! the wave runs and after it ran, the finish after the last. Only the
//! start must succeed; a later journal write that fails is logged and the
//! apply goes on.

use crate::cloudflare::Client;
use crate::ledger::journal::{self, ApplyStatus};
use crate::plan::{Change, Plan};

use super::ChangeOutcome;

/// Sees each wave of changes just before it runs and just after it ran
/// (awaited, so a journal write lands before the wave's first request).
/// Failures are the observer's business: it cannot stop the apply.
pub trait Observer {
    fn before_wave(&self, changes: &[&Change]) -> impl std::future::Future<Output = ()>;
    fn after_wave(&self, outcomes: &[ChangeOutcome]) -> impl std::future::Future<Output = ()>;
    /// Sees each outcome as it lands, before its wave ends (progress).
    fn landed(&self, _outcome: &ChangeOutcome) {}
}

impl Observer for () {
    async fn before_wave(&self, _: &[&Change]) {}
    async fn after_wave(&self, _: &[ChangeOutcome]) {}
}

/// The journal of one apply.
pub struct Journal<'a> {
    client: &'a Client,
    database: &'a str,
    id: String,
    plan: &'a Plan,
}

/// `3 to create, 1 to update, 0 to replace, 0 to delete`.
fn summary(plan: &Plan) -> String {
    let s = plan.summary();
    format!(
        "{} to create, {} to update, {} to replace, {} to delete",
        s.create, s.update, s.replace, s.delete
    )
}

impl<'a> Journal<'a> {
    /// Writes the start row of an apply of `plan` in the ledger `database`
    /// (already opened), from `git_commit`, by `actor`.
    pub async fn start(
        client: &'a Client,
        database: &'a str,
        plan: &'a Plan,
        git_commit: &str,
        actor: &str,
    ) -> Result<Journal<'a>, crate::ledger::LedgerError> {
        let id = uuid::Uuid::new_v4().to_string();
        journal::start(
            client,
            database,
            &journal::ApplyStart {
                id: &id,
                environment: &plan.environment,
                git_commit,
                actor,
                summary: &summary(plan),
            },
        )
        .await?;
        Ok(Journal {
            client,
            database,
            id,
            plan,
        })
    }

    /// The apply's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    fn seq(&self, change: &crate::model::Address) -> usize {
        self.plan
            .changes
            .iter()
            .position(|c| &c.address == change)
            .unwrap_or(usize::MAX)
    }

    /// Writes how the apply ended; a failure is logged.
    pub async fn finish(&self, status: ApplyStatus) {
        if let Err(error) = journal::finish(self.client, self.database, &self.id, status).await {
            tracing::warn!(%error, apply = %self.id, "journaling the end of the apply failed");
        }
    }
}

impl Observer for Journal<'_> {
    /// One batched write for the whole wave (usually one request).
    async fn before_wave(&self, changes: &[&Change]) {
        // The planned steps and the before-image of every field they
        // change (the plan's `before` values): names and ids, never a
        // secret value.
        let rows: Vec<(usize, String, String)> = changes
            .iter()
            .map(|change| {
                let steps =
                    serde_json::json!({"steps": change.steps, "before_image": change.fields})
                        .to_string();
                (self.seq(&change.address), change.address.to_string(), steps)
            })
            .collect();
        let starts: Vec<journal::StepStart<'_>> = rows
            .iter()
            .zip(changes)
            .map(|((seq, address, steps), change)| journal::StepStart {
                seq: *seq,
                address,
                kind: change.kind.as_str(),
                steps_json: steps,
            })
            .collect();
        if let Err(error) =
            journal::steps_started(self.client, self.database, &self.id, &starts).await
        {
            tracing::warn!(%error, changes = starts.len(), "journaling a wave of changes failed");
        }
    }

    /// One batched write for the whole wave (usually one request).
    async fn after_wave(&self, outcomes: &[ChangeOutcome]) {
        let details: Vec<(usize, String)> = outcomes
            .iter()
            .map(|outcome| {
                (
                    self.seq(&outcome.address),
                    crate::render::outcome_detail(outcome),
                )
            })
            .collect();
        let finishes: Vec<journal::StepFinish<'_>> = details
            .iter()
            .zip(outcomes)
            .map(|((seq, detail), outcome)| journal::StepFinish {
                seq: *seq,
                succeeded: outcome.succeeded(),
                detail,
            })
            .collect();
        if let Err(error) =
            journal::steps_finished(self.client, self.database, &self.id, &finishes).await
        {
            tracing::warn!(%error, changes = finishes.len(), "journaling a wave of changes failed");
        }
    }
}
