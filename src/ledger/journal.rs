//! The journal of applies: one `applies` row per run (written before its
//! first change, finished after its last) and one `apply_steps` row per
//! change (written before the change runs, updated after it ran).
//!
//! Only addresses, planned steps (the plan's JSON, which holds no secret
//! value), outcome lines and error texts are written: never a secret value
//! or a token. Times come from SQLite's clock.
//!
//! A run killed mid-way leaves its rows `running`. [`ApplyRecord::display_status`]
//! calls such a run `interrupted` once a later apply of the same environment
//! has started, or once the run has written nothing for
//! [`STALE_AFTER_MINUTES`]. The journal never blocks the next apply.

use serde::Serialize;

use super::{LedgerError, literal};
use crate::cloudflare::Client;

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

/// Writes the start row of an apply (status `running`).
pub async fn start(
    client: &Client,
    database: &str,
    apply: &ApplyStart<'_>,
) -> Result<(), LedgerError> {
    let sql = format!(
        "INSERT INTO applies (id, environment, started_at, git_commit, actor, summary, status) VALUES ({}, {}, {NOW}, {}, {}, {}, 'running') ON CONFLICT(id) DO NOTHING;",
        literal(apply.id),
        literal(apply.environment),
        literal(apply.git_commit),
        literal(apply.actor),
        literal(apply.summary),
    );
    // Each write leaves the same rows however often it runs: a lost
    // answer is retried.
    client.d1_query_idempotent(database, &sql).await?;
    Ok(())
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
    let sql = format!(
        "INSERT INTO apply_steps (apply_id, seq, address, kind, steps_json, status, started_at) VALUES ({}, {seq}, {}, {}, {}, 'running', {NOW}) ON CONFLICT(apply_id, seq) DO UPDATE SET status = 'running', started_at = excluded.started_at, finished_at = NULL, detail = NULL;",
        literal(apply_id),
        literal(address),
        literal(kind),
        literal(steps_json),
    );
    // Each write leaves the same rows however often it runs: a lost
    // answer is retried.
    client.d1_query_idempotent(database, &sql).await?;
    Ok(())
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
    let sql = format!(
        "UPDATE apply_steps SET status = {}, detail = {}, finished_at = {NOW} WHERE apply_id = {} AND seq = {seq};",
        literal(if succeeded { "done" } else { "failed" }),
        literal(detail),
        literal(apply_id),
    );
    // Each write leaves the same rows however often it runs: a lost
    // answer is retried.
    client.d1_query_idempotent(database, &sql).await?;
    Ok(())
}

/// Writes the finish of an apply.
pub async fn finish(
    client: &Client,
    database: &str,
    apply_id: &str,
    status: ApplyStatus,
) -> Result<(), LedgerError> {
    let sql = format!(
        "UPDATE applies SET status = {}, finished_at = {NOW} WHERE id = {};",
        literal(status.as_str()),
        literal(apply_id),
    );
    // Each write leaves the same rows however often it runs: a lost
    // answer is retried.
    client.d1_query_idempotent(database, &sql).await?;
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
    let sql = format!(
        "SELECT a.id, a.environment, a.started_at, a.finished_at, a.git_commit, a.actor, a.summary, a.status,
  (a.status = 'running' AND (
     EXISTS (SELECT 1 FROM applies b WHERE b.environment = a.environment AND b.started_at > a.started_at)
     OR julianday('now') - julianday(MAX(a.started_at, COALESCE(
       (SELECT MAX(COALESCE(s.finished_at, s.started_at)) FROM apply_steps s WHERE s.apply_id = a.id),
       a.started_at))) > {STALE_AFTER_MINUTES} / 1440.0)) AS interrupted
FROM applies a WHERE a.environment = {} ORDER BY a.started_at DESC, a.rowid DESC LIMIT {limit};",
        literal(environment)
    );
    let results = match client.d1_query(database, &sql).await {
        Ok(results) => results,
        Err(error) if error.to_string().contains("no such table") => return Ok(Vec::new()),
        Err(error) => return Err(error.into()),
    };
    let text = |row: &serde_json::Map<String, serde_json::Value>, key: &str| {
        row.get(key)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string()
    };
    Ok(results
        .into_iter()
        .flat_map(|r| r.results)
        .map(|row| {
            // A status this version does not know (a newer flareops wrote
            // it) shows as running: not finished as far as we can tell.
            let recorded_status =
                ApplyStatus::parse(&text(&row, "status")).unwrap_or(ApplyStatus::Running);
            let interrupted = row.get("interrupted").and_then(|v| v.as_i64()).unwrap_or(0) != 0;
            ApplyRecord {
                id: text(&row, "id"),
                environment: text(&row, "environment"),
                started_at: text(&row, "started_at"),
                finished_at: row
                    .get("finished_at")
                    .and_then(|v| v.as_str())
                    .map(str::to_string),
                git_commit: text(&row, "git_commit"),
                actor: text(&row, "actor"),
                summary: text(&row, "summary"),
                status: ShownStatus::of(recorded_status, interrupted),
                recorded_status,
            }
        })
        .collect())
}
