//! The journal an apply writes in the ledger around the executor, in as
//! few requests as it can: the start row goes with the first wave's rows
//! (before the first change is made), each wave's outcomes go with the
//! next wave's start rows, and the last outcomes and the finish go with
//! the apply's records and the lock's release ([`Journal::closing`]). Only
//! the start must land: if the first write fails, the observer stops the
//! apply before its first change; a later journal write that fails is
//! logged and the apply goes on.

use std::sync::Mutex;

use crate::cloudflare::{Client, D1Limits, Statement};
use crate::ledger::LedgerError;
use crate::ledger::journal::{self, ApplyStatus};
use crate::plan::{Change, Plan};

use super::ChangeOutcome;

/// Sees each wave of changes just before it runs and just after it ran
/// (awaited, so a journal write lands before the wave's first request).
pub trait Observer {
    /// `Err(reason)`: the wave must not start (nor any after it).
    fn before_wave(
        &self,
        changes: &[&Change],
    ) -> impl std::future::Future<Output = Result<(), String>>;
    fn after_wave(&self, outcomes: &[ChangeOutcome]) -> impl std::future::Future<Output = ()>;
    /// Sees each outcome as it lands, before its wave ends (progress).
    fn landed(&self, _outcome: &ChangeOutcome) {}
}

impl Observer for () {
    async fn before_wave(&self, _: &[&Change]) -> Result<(), String> {
        Ok(())
    }
    async fn after_wave(&self, _: &[ChangeOutcome]) {}
}

/// The journal of one apply.
pub struct Journal<'a> {
    client: &'a Client,
    database: &'a str,
    id: String,
    plan: &'a Plan,
    /// Rows not written yet: the start row until the first wave, then the
    /// outcomes of the last wave.
    pending: Mutex<Vec<Statement>>,
    /// Why the start row could not be written, if it could not.
    start_failed: Mutex<Option<LedgerError>>,
    started: std::sync::atomic::AtomicBool,
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
    /// The journal of an apply of `plan` in the ledger `database` (already
    /// opened), from `git_commit`, by `actor`. Nothing is written yet: the
    /// start row goes with the first wave, or with [`Journal::closing`].
    pub fn new(
        client: &'a Client,
        database: &'a str,
        plan: &'a Plan,
        git_commit: &str,
        actor: &str,
    ) -> Journal<'a> {
        let id = uuid::Uuid::new_v4().to_string();
        let start = journal::start_statement(&journal::ApplyStart {
            id: &id,
            environment: &plan.environment,
            git_commit,
            actor,
            summary: &summary(plan),
        });
        Journal {
            client,
            database,
            id,
            plan,
            pending: Mutex::new(vec![start]),
            start_failed: Mutex::new(None),
            started: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The apply's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Why the start row could not be written, when it could not (the
    /// apply then made no change).
    pub fn start_failed(&self) -> Option<LedgerError> {
        self.start_failed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }

    fn seq(&self, change: &crate::model::Address) -> usize {
        self.plan
            .changes
            .iter()
            .position(|c| &c.address == change)
            .unwrap_or(usize::MAX)
    }

    fn take_pending(&self) -> Vec<Statement> {
        std::mem::take(
            &mut *self
                .pending
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// The journal's writes still to send, ending with the finish of the
    /// apply as `status`: for [`crate::ledger::close`].
    pub fn closing(&self, status: ApplyStatus) -> Vec<Statement> {
        let mut statements = self.take_pending();
        statements.push(journal::finish_statement(&self.id, status));
        statements
    }
}

impl Observer for Journal<'_> {
    /// The pending rows and the wave's start rows, in one request (usually).
    async fn before_wave(&self, changes: &[&Change]) -> Result<(), String> {
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
        let mut statements = self.take_pending();
        let written = async {
            statements.extend(journal::steps_started_statements(
                &self.id,
                &starts,
                &D1Limits::CLOUDFLARE,
            )?);
            crate::ledger::write(self.client, self.database, statements).await
        }
        .await;
        let first = !self.started.swap(true, std::sync::atomic::Ordering::SeqCst);
        match written {
            Ok(()) => Ok(()),
            Err(error) if first => {
                let reason = format!("journaling the start of this apply failed ({error})");
                *self
                    .start_failed
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(error);
                Err(reason)
            }
            Err(error) => {
                tracing::warn!(%error, changes = starts.len(), "journaling a wave of changes failed");
                Ok(())
            }
        }
    }

    /// Keeps the wave's outcomes for the next write (the next wave's, or
    /// the closing one).
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
        match journal::steps_finished_statements(&self.id, &finishes, &D1Limits::CLOUDFLARE) {
            Ok(statements) => self
                .pending
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .extend(statements),
            Err(error) => {
                tracing::warn!(%error, changes = finishes.len(), "journaling a wave of changes failed");
            }
        }
    }
}
