//! The journal of applies: one `applies` row per run (written before its
//! first change, finished after its last) and one `apply_steps` row per
//! change (written before the change runs, updated after it ran).
//!
//! Only addresses, planned steps (the plan's JSON, which holds no secret
//! value), outcome lines and error texts are written: never a secret value
//! or a token. Times come from SQLite's clock.
//!
//! Values are bound, never quoted into SQL. A wave of changes is journaled
//! in one request ([`steps_started`], [`steps_finished`]: multi-row
//! statements under D1's 100 bound parameters); every write is an upsert or
//! an update by key, so it is retried after a lost answer.
//!
//! A run killed mid-way leaves its rows `running`. [`history`] shows such a
//! run as `interrupted` ([`ApplyRecord::status`]) once a later apply of the
//! same environment has started, or once the run has written nothing for
//! [`STALE_AFTER_MINUTES`]. The journal never blocks the next apply.

use serde::{Deserialize, Serialize};

use super::LedgerError;
use crate::cloudflare::{
    Client, D1Limits, D1Value, RowTemplate, Statement, group_requests, row_statements,
};

/// The journal's tables (created by [`super::open`]).
pub const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS applies (
  id TEXT PRIMARY KEY,
  environment TEXT NOT NULL,
  started_at TEXT NOT NULL,
  finished_at TEXT,
  git_commit TEXT NOT NULL,
  actor TEXT NOT NULL,
  summary TEXT NOT NULL,
  status TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS applies_by_environment ON applies (environment, started_at);
CREATE TABLE IF NOT EXISTS apply_steps (
  apply_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  address TEXT NOT NULL,
  kind TEXT NOT NULL,
  steps_json TEXT NOT NULL,
  status TEXT NOT NULL,
  detail TEXT,
  started_at TEXT NOT NULL,
  finished_at TEXT,
  PRIMARY KEY (apply_id, seq)
);";

/// A `running` apply with no journal write for this long is `interrupted`.
pub const STALE_AFTER_MINUTES: u32 = 15;

const NOW: &str = "strftime('%Y-%m-%dT%H:%M:%fZ','now')";

/// How an apply ended (the `applies.status` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ApplyStatus {
    Running,
    Succeeded,
    Failed,
    Refused,
}

impl ApplyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ApplyStatus::Running => "running",
            ApplyStatus::Succeeded => "succeeded",
            ApplyStatus::Failed => "failed",
            ApplyStatus::Refused => "refused",
        }
    }
}

impl ApplyStatus {
    /// The status a `status` column holds.
    pub fn parse(text: &str) -> Option<ApplyStatus> {
        [
            ApplyStatus::Running,
            ApplyStatus::Succeeded,
            ApplyStatus::Failed,
            ApplyStatus::Refused,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// How `flareops history` shows an apply: its recorded status, or
/// `interrupted` for a `running` one that will not finish (see the module
/// doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ShownStatus {
    Running,
    Succeeded,
    Failed,
    Refused,
    Interrupted,
}

impl ShownStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ShownStatus::Running => "running",
            ShownStatus::Succeeded => "succeeded",
            ShownStatus::Failed => "failed",
            ShownStatus::Refused => "refused",
            ShownStatus::Interrupted => "interrupted",
        }
    }

    /// What a recorded status shows as, `interrupted` or not.
    pub fn of(recorded: ApplyStatus, interrupted: bool) -> ShownStatus {
        match recorded {
            ApplyStatus::Running if interrupted => ShownStatus::Interrupted,
            ApplyStatus::Running => ShownStatus::Running,
            ApplyStatus::Succeeded => ShownStatus::Succeeded,
            ApplyStatus::Failed => ShownStatus::Failed,
            ApplyStatus::Refused => ShownStatus::Refused,
        }
    }
}

impl std::fmt::Display for ShownStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the start row records.
#[derive(Debug, Clone)]
pub struct ApplyStart<'a> {
    pub id: &'a str,
    pub environment: &'a str,
    pub git_commit: &'a str,
    pub actor: &'a str,
    pub summary: &'a str,
}

/// The statement that writes the start row of an apply (status
/// `running`); safe to repeat.
pub fn start_statement(apply: &ApplyStart<'_>) -> Statement {
    Statement::new(format!(
        "INSERT INTO applies (id, environment, started_at, git_commit, actor, summary, status) VALUES (?1, ?2, {NOW}, ?3, ?4, ?5, 'running') ON CONFLICT(id) DO NOTHING"
    ))
    .bind(apply.id)
    .bind(apply.environment)
    .bind(apply.git_commit)
    .bind(apply.actor)
    .bind(apply.summary)
}

/// Writes the start row of an apply (status `running`).
pub async fn start(
    client: &Client,
    database: &str,
    apply: &ApplyStart<'_>,
) -> Result<(), LedgerError> {
    // Each write leaves the same rows however often it runs: a lost
    // answer is retried.
    client
        .d1_run_idempotent(database, &[start_statement(apply)])
        .await?;
    Ok(())
}

/// A change about to run, for [`steps_started`].
#[derive(Debug, Clone, Copy)]
pub struct StepStart<'a> {
    pub seq: usize,
    pub address: &'a str,
    pub kind: &'a str,
    /// The change's planned steps (the plan's JSON: no secret value).
    pub steps_json: &'a str,
}

/// How a change ended, for [`steps_finished`].
#[derive(Debug, Clone, Copy)]
pub struct StepFinish<'a> {
    pub seq: usize,
    /// `done` when true, `failed` otherwise.
    pub succeeded: bool,
    /// The outcome line, or the error text.
    pub detail: &'a str,
}

fn seq_value(seq: usize) -> D1Value {
    D1Value::Integer(i64::try_from(seq).unwrap_or(i64::MAX))
}

/// Sends `statements` (safe to repeat, independent of each other) in as
/// few requests as D1's limits allow.
async fn write_all(
    client: &Client,
    database: &str,
    statements: Vec<Statement>,
    limits: &D1Limits,
) -> Result<(), LedgerError> {
    let requests = group_requests(statements, limits);
    futures::future::try_join_all(
        requests
            .iter()
            .map(|request| client.d1_run_idempotent(database, request)),
    )
    .await?;
    Ok(())
}

/// Records, before they run, that the changes `steps` of apply `apply_id`
/// started: one multi-row upsert per 24 changes (D1's 100 parameters), all
/// in as few requests as the request budget allows (usually one). Safe to
/// repeat. No changes, no request.
pub async fn steps_started(
    client: &Client,
    database: &str,
    apply_id: &str,
    steps: &[StepStart<'_>],
) -> Result<(), LedgerError> {
    let statements = steps_started_statements(apply_id, steps, &D1Limits::CLOUDFLARE)?;
    write_all(client, database, statements, &D1Limits::CLOUDFLARE).await
}

/// The statements of [`steps_started`], to send with other ledger writes.
pub fn steps_started_statements(
    apply_id: &str,
    steps: &[StepStart<'_>],
    limits: &D1Limits,
) -> Result<Vec<Statement>, LedgerError> {
    let shared = [D1Value::from(apply_id)];
    let row = |p: &[String]| {
        format!(
            "(?1, {}, {}, {}, {}, 'running', {NOW})",
            p[0], p[1], p[2], p[3]
        )
    };
    let template = RowTemplate {
        head: "INSERT INTO apply_steps (apply_id, seq, address, kind, steps_json, status, started_at) VALUES ",
        tail: " ON CONFLICT(apply_id, seq) DO UPDATE SET address = excluded.address, kind = excluded.kind, steps_json = excluded.steps_json, status = 'running', started_at = excluded.started_at, finished_at = NULL, detail = NULL",
        shared: &shared,
        row: &row,
    };
    let rows = steps
        .iter()
        .map(|step| {
            vec![
                seq_value(step.seq),
                D1Value::from(step.address),
                D1Value::from(step.kind),
                D1Value::from(step.steps_json),
            ]
        })
        .collect();
    Ok(row_statements(&template, rows, limits)?)
}

/// Records how the changes `steps` of apply `apply_id` ended: one
/// multi-row update per 33 changes, all in as few requests as the request
/// budget allows (usually one). Safe to repeat. No changes, no request.
pub async fn steps_finished(
    client: &Client,
    database: &str,
    apply_id: &str,
    steps: &[StepFinish<'_>],
) -> Result<(), LedgerError> {
    let statements = steps_finished_statements(apply_id, steps, &D1Limits::CLOUDFLARE)?;
    write_all(client, database, statements, &D1Limits::CLOUDFLARE).await
}

/// The statements of [`steps_finished`], to send with other ledger writes.
pub fn steps_finished_statements(
    apply_id: &str,
    steps: &[StepFinish<'_>],
    limits: &D1Limits,
) -> Result<Vec<Statement>, LedgerError> {
    let shared = [D1Value::from(apply_id)];
    let row = |p: &[String]| format!("({}, {}, {})", p[0], p[1], p[2]);
    // A `VALUES` table's columns are `column1`, `column2`, ...
    let head = format!(
        "UPDATE apply_steps SET status = finished.column2, detail = finished.column3, finished_at = {NOW} FROM (VALUES "
    );
    let template = RowTemplate {
        head: &head,
        tail: ") AS finished WHERE apply_steps.apply_id = ?1 AND apply_steps.seq = finished.column1",
        shared: &shared,
        row: &row,
    };
    let rows = steps
        .iter()
        .map(|step| {
            vec![
                seq_value(step.seq),
                D1Value::from(if step.succeeded { "done" } else { "failed" }),
                D1Value::from(step.detail),
            ]
        })
        .collect();
    Ok(row_statements(&template, rows, limits)?)
}

/// Records, before it runs, that change `seq` of apply `apply_id` started.
pub async fn step_started(
    client: &Client,
    database: &str,
    apply_id: &str,
    seq: usize,
    address: &str,
    kind: &str,
    steps_json: &str,
) -> Result<(), LedgerError> {
    let step = StepStart {
        seq,
        address,
        kind,
        steps_json,
    };
    steps_started(client, database, apply_id, &[step]).await
}

/// Records how change `seq` ended: `done` with its outcome, or `failed`
/// with the error text.
pub async fn step_finished(
    client: &Client,
    database: &str,
    apply_id: &str,
    seq: usize,
    succeeded: bool,
    detail: &str,
) -> Result<(), LedgerError> {
    let step = StepFinish {
        seq,
        succeeded,
        detail,
    };
    steps_finished(client, database, apply_id, &[step]).await
}

/// The statement that writes the finish of an apply; safe to repeat.
pub fn finish_statement(apply_id: &str, status: ApplyStatus) -> Statement {
    Statement::new(format!(
        "UPDATE applies SET status = ?1, finished_at = {NOW} WHERE id = ?2"
    ))
    .bind(status.as_str())
    .bind(apply_id)
}

/// Writes the finish of an apply.
pub async fn finish(
    client: &Client,
    database: &str,
    apply_id: &str,
    status: ApplyStatus,
) -> Result<(), LedgerError> {
    // Each write leaves the same rows however often it runs: a lost
    // answer is retried.
    client
        .d1_run_idempotent(database, &[finish_statement(apply_id, status)])
        .await?;
    Ok(())
}

/// One journaled apply, as `flareops history` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApplyRecord {
    pub id: String,
    pub environment: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub git_commit: String,
    pub actor: String,
    pub summary: String,
    /// As recorded.
    pub recorded_status: ApplyStatus,
    /// As shown: the recorded status, or `interrupted` (see the module doc).
    pub status: ShownStatus,
}

/// The applies of `environment`, newest first, at most `limit`. A ledger
/// without a journal yet has none. One read-only query.
pub async fn history(
    client: &Client,
    database: &str,
    environment: &str,
    limit: usize,
) -> Result<Vec<ApplyRecord>, LedgerError> {
    #[derive(Deserialize)]
    struct Row {
        id: String,
        environment: String,
        started_at: String,
        finished_at: Option<String>,
        git_commit: String,
        actor: String,
        summary: String,
        status: String,
        interrupted: Option<i64>,
    }
    let statement = Statement::new(
        "SELECT a.id, a.environment, a.started_at, a.finished_at, a.git_commit, a.actor, a.summary, a.status,
  (a.status = 'running' AND (
     EXISTS (SELECT 1 FROM applies b WHERE b.environment = a.environment AND b.started_at > a.started_at)
     OR julianday('now') - julianday(MAX(a.started_at, COALESCE(
       (SELECT MAX(COALESCE(s.finished_at, s.started_at)) FROM apply_steps s WHERE s.apply_id = a.id),
       a.started_at))) > ?2 / 1440.0)) AS interrupted
FROM applies a WHERE a.environment = ?1 ORDER BY a.started_at DESC, a.rowid DESC LIMIT ?3",
    )
    .bind(environment)
    .bind(STALE_AFTER_MINUTES)
    .bind(i64::try_from(limit).unwrap_or(i64::MAX));
    let rows = match client.d1_query_as::<Row>(database, &statement).await {
        Ok(rows) => rows,
        Err(error) if error.is_no_such_table() => return Ok(Vec::new()),
        Err(error) => return Err(error.into()),
    };
    Ok(rows
        .into_iter()
        .map(|row| {
            // A status this version does not know (a newer flareops wrote
            // it) shows as running: not finished as far as we can tell.
            let recorded_status = ApplyStatus::parse(&row.status).unwrap_or(ApplyStatus::Running);
            let interrupted = row.interrupted.unwrap_or(0) != 0;
            ApplyRecord {
                status: ShownStatus::of(recorded_status, interrupted),
                recorded_status,
                id: row.id,
                environment: row.environment,
                started_at: row.started_at,
                finished_at: row.finished_at,
                git_commit: row.git_commit,
                actor: row.actor,
                summary: row.summary,
            }
        })
        .collect())
}
