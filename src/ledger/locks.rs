//! Locks with leases: one row per environment in the ledger's `locks`
//! table, so two applies to one environment cannot both write.
//!
//! Every timestamp comes from the database's clock (SQLite's
//! `datetime('now')`, UTC, `YYYY-MM-DD HH:MM:SS`), never the runner's, so
//! runners with skewed clocks agree on who holds a lease. A holder renews
//! its lease while it works; a holder that dies (even by SIGKILL) stops
//! renewing, its lease expires, and the next apply takes the lock over.

use std::time::Duration;

use serde::Deserialize;

use super::LedgerError;
use crate::cloudflare::{Client, Statement};

/// The table; created by [`super::open`].
pub const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS locks (
  environment TEXT PRIMARY KEY,
  holder TEXT NOT NULL,
  host TEXT NOT NULL,
  started_at TEXT NOT NULL,
  lease_expires_at TEXT NOT NULL
);";

/// How long a lease lasts unless renewed.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(60);

/// Hidden setting, for tests: the lease length in whole seconds (at least 1).
/// Renewal happens every third of it, and a waiting apply polls at most
/// every [`MAX_POLL`] (less for short leases).
pub const LEASE_ENV: &str = "FLAREOPS_LOCK_LEASE_SECONDS";

/// The longest pause between two attempts of a waiting apply.
pub const MAX_POLL: Duration = Duration::from_secs(2);

/// The lease length: [`DEFAULT_LEASE`], or [`LEASE_ENV`] when set to a
/// positive integer.
pub fn lease_from_env() -> Duration {
    std::env::var(LEASE_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|&secs| secs > 0)
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_LEASE)
}

/// Who holds a lock, as the ledger records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockInfo {
    pub environment: String,
    pub holder: String,
    pub host: String,
    /// UTC, `YYYY-MM-DD HH:MM:SS`.
    pub started_at: String,
    /// UTC, `YYYY-MM-DD HH:MM:SS`.
    pub lease_expires_at: String,
}

impl std::fmt::Display for LockInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "held by {} on host {} since {} UTC (lease expires {} UTC)",
            self.holder, self.host, self.started_at, self.lease_expires_at
        )
    }
}

/// Errors of taking a lock.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(
        "environment `{}` is locked by another apply: {info}; gave up after {}\nhint: wait for it to finish; if that apply is gone, its lease expires on its own, or remove the lock with `flareops unlock --env {}`",
        info.environment,
        display_duration(*waited),
        info.environment
    )]
    Held { info: LockInfo, waited: Duration },
    #[error("the lock of environment `{environment}` vanished right after it was taken")]
    Vanished { environment: String },
}

/// `90s` -> `1m30s`, `2s`, `500ms`: [`crate::duration::format`].
pub fn display_duration(duration: Duration) -> String {
    crate::duration::format(duration)
}

/// Who this process is: a random id plus the CI actor or user, and the host.
pub fn identity() -> (String, String) {
    let actor = ["GITHUB_ACTOR", "USER", "USERNAME"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
        .unwrap_or_else(|| "unknown".to_string());
    let id = uuid::Uuid::new_v4().simple().to_string();
    let holder = format!("{} (apply {})", actor.trim(), &id[..12]);
    (holder, hostname())
}

fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .or_else(|| {
            crate::process::command("hostname")
                .output()
                .ok()
                .filter(|o| o.status.success())
                .and_then(|o| String::from_utf8(o.stdout).ok())
        })
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".to_string())
}

/// A lock this process holds. Release it with [`Lock::release`]; if the
/// process dies instead, the lease expires.
#[derive(Debug, Clone)]
pub struct Lock {
    database: String,
    environment: String,
    holder: String,
    lease: Duration,
}

/// The lease as an SQLite date modifier (`+60 seconds`), bound to
/// `datetime('now', ?)`.
fn lease_modifier(lease: Duration) -> String {
    format!("+{} seconds", lease.as_secs().max(1))
}

/// A lock row as the queries select it.
#[derive(Deserialize)]
struct LockRow {
    holder: String,
    host: String,
    started_at: String,
    lease_expires_at: String,
}

impl LockRow {
    fn info(self, environment: &str) -> LockInfo {
        LockInfo {
            environment: environment.to_string(),
            holder: self.holder,
            host: self.host,
            started_at: self.started_at,
            lease_expires_at: self.lease_expires_at,
        }
    }
}

/// One attempt: takes the lock of `environment` if it is free or its lease
/// has expired (one atomic upsert), then reads who holds it. `Ok(Err(info))`
/// means someone else does.
pub async fn try_acquire(
    client: &Client,
    database: &str,
    environment: &str,
    holder: &str,
    host: &str,
    lease: Duration,
) -> Result<Result<Lock, LockInfo>, LockError> {
    // Retrying after a lost answer is safe: if the first run took the lock,
    // the second finds it held by this holder.
    let results = client
        .d1_run_idempotent(database, &take_statements(environment, holder, host, lease))
        .await
        .map_err(LedgerError::from)?;
    taken(&results, database, environment, holder, lease)
}

/// The statements of one attempt to take the lock: an atomic upsert that
/// takes it if it is free or its lease expired, then the read of who holds
/// it ([`taken`] decodes it).
pub(super) fn take_statements(
    environment: &str,
    holder: &str,
    host: &str,
    lease: Duration,
) -> [Statement; 2] {
    let take = Statement::new(
        "INSERT INTO locks (environment, holder, host, started_at, lease_expires_at)
VALUES (?1, ?2, ?3, datetime('now'), datetime('now', ?4))
ON CONFLICT(environment) DO UPDATE SET
  holder = excluded.holder, host = excluded.host,
  started_at = excluded.started_at, lease_expires_at = excluded.lease_expires_at
WHERE locks.lease_expires_at < datetime('now')",
    )
    .bind(environment)
    .bind(holder)
    .bind(host)
    .bind(lease_modifier(lease));
    let read = Statement::new(
        "SELECT holder, host, started_at, lease_expires_at FROM locks WHERE environment = ?1",
    )
    .bind(environment);
    [take, read]
}

/// The lock, or who holds it, from the results of [`take_statements`]
/// (their last is the read). The error is as large as [`try_acquire`]'s;
/// callers box it at the apply's boundary.
#[allow(clippy::result_large_err)]
pub(super) fn taken(
    results: &[crate::cloudflare::QueryResult],
    database: &str,
    environment: &str,
    holder: &str,
    lease: Duration,
) -> Result<Result<Lock, LockInfo>, LockError> {
    let row = match results.last() {
        Some(result) => result
            .rows::<LockRow>()
            .map_err(LedgerError::from)?
            .into_iter()
            .next(),
        None => None,
    };
    let current = row.map(|row| row.info(environment));
    match current {
        Some(current) if current.holder == holder => Ok(Ok(Lock {
            database: database.to_string(),
            environment: environment.to_string(),
            holder: holder.to_string(),
            lease,
        })),
        Some(current) => Ok(Err(current)),
        // Unreachable with a working database: the upsert leaves a row.
        None => Err(LockError::Vanished {
            environment: environment.to_string(),
        }),
    }
}

/// Takes the lock of `environment`, polling while someone else holds it,
/// for at most `timeout`. `waiting` is called once, with the holder, when
/// the first attempt finds the lock taken.
pub async fn acquire(
    client: &Client,
    database: &str,
    environment: &str,
    timeout: Duration,
    lease: Duration,
    waiting: impl FnMut(&LockInfo),
) -> Result<Lock, LockError> {
    let (holder, host) = identity();
    let mut waiter = Waiter::new(timeout, lease, waiting);
    loop {
        let attempt = try_acquire(client, database, environment, &holder, &host, lease);
        match attempt.await? {
            Ok(lock) => return Ok(lock),
            Err(info) => waiter.wait(info).await?,
        }
    }
}

/// The waiting of an apply for a lock another holds: polls at a third of
/// the lease (at most [`MAX_POLL`]) until `timeout`.
pub(super) struct Waiter<W> {
    timeout: Duration,
    deadline: tokio::time::Instant,
    poll: Duration,
    first: bool,
    waiting: W,
}

impl<W: FnMut(&LockInfo)> Waiter<W> {
    pub(super) fn new(timeout: Duration, lease: Duration, waiting: W) -> Waiter<W> {
        Waiter {
            timeout,
            deadline: tokio::time::Instant::now() + timeout,
            poll: (lease / 3).clamp(Duration::from_millis(100), MAX_POLL),
            first: true,
            waiting,
        }
    }

    /// After an attempt found the lock held by `info`: sleeps until the
    /// next attempt, or gives up when the time is up.
    pub(super) async fn wait(&mut self, info: LockInfo) -> Result<(), LockError> {
        let now = tokio::time::Instant::now();
        if now >= self.deadline {
            return Err(LockError::Held {
                info,
                waited: self.timeout,
            });
        }
        if self.first {
            (self.waiting)(&info);
            self.first = false;
        }
        tokio::time::sleep(self.poll.min(self.deadline - now)).await;
        Ok(())
    }
}

impl Lock {
    /// The ledger database the lock lives in (already open).
    pub fn database(&self) -> &str {
        &self.database
    }

    pub fn holder(&self) -> &str {
        &self.holder
    }

    pub fn environment(&self) -> &str {
        &self.environment
    }

    /// How often [`Lock::renew`] should run: a third of the lease.
    pub fn renew_every(&self) -> Duration {
        self.lease / 3
    }

    /// Extends the lease. `false`: the lock is no longer ours (it expired
    /// and was taken over, or was removed with `unlock`).
    pub async fn renew(&self, client: &Client) -> Result<bool, LedgerError> {
        let renew = Statement::new(
            "UPDATE locks SET lease_expires_at = datetime('now', ?1) WHERE environment = ?2 AND holder = ?3 RETURNING holder",
        )
        .bind(lease_modifier(self.lease))
        .bind(&self.environment)
        .bind(&self.holder);
        let rows = client.d1_run_idempotent(&self.database, &[renew]).await?;
        Ok(rows.iter().any(|r| !r.results.is_empty()))
    }

    /// Renews the lease every [`Lock::renew_every`], forever; meant to run
    /// next to the work the lock protects. Each renewal is reported through
    /// `renewed`; a failed one through `lost` (`false`: maybe still ours)
    /// and retried at the next tick, a lost one through `lost` (`true`).
    pub async fn keep_alive(
        &self,
        client: &Client,
        mut lost: impl FnMut(String, bool),
        mut renewed: impl FnMut(),
    ) {
        loop {
            tokio::time::sleep(self.renew_every()).await;
            match self.renew(client).await {
                Ok(true) => {
                    tracing::debug!(environment = %self.environment, "lock lease renewed");
                    renewed();
                }
                Ok(false) => lost(
                    format!(
                        "warning: the lock on environment `{}` is no longer held by this apply (its lease expired or it was removed)",
                        self.environment
                    ),
                    true,
                ),
                Err(error) => lost(
                    format!(
                        "warning: renewing the lock on environment `{}` failed: {error}",
                        self.environment
                    ),
                    false,
                ),
            }
        }
    }

    /// The statement that releases the lock (only if it is still ours);
    /// safe to repeat.
    pub fn release_statement(&self) -> Statement {
        Statement::new("DELETE FROM locks WHERE environment = ?1 AND holder = ?2")
            .bind(&self.environment)
            .bind(&self.holder)
    }

    /// Releases the lock (only if it is still ours).
    pub async fn release(self, client: &Client) -> Result<(), LedgerError> {
        client
            .d1_run_idempotent(&self.database, &[self.release_statement()])
            .await?;
        Ok(())
    }
}

/// The ledger database's id, without creating it.
pub async fn find_ledger(client: &Client, name: &str) -> Result<Option<String>, LedgerError> {
    Ok(super::find(&client.list_d1_databases().await?, name))
}

/// Who holds the lock of `environment`, if anyone (expired leases included).
pub async fn read(
    client: &Client,
    database: &str,
    environment: &str,
) -> Result<Option<LockInfo>, LedgerError> {
    let read = Statement::new(
        "SELECT holder, host, started_at, lease_expires_at FROM locks WHERE environment = ?1",
    )
    .bind(environment);
    let rows = match client.d1_query_as::<LockRow>(database, &read).await {
        Ok(rows) => rows,
        Err(error) if error.is_no_such_table() => return Ok(None),
        Err(error) => return Err(error.into()),
    };
    Ok(rows.into_iter().next().map(|row| row.info(environment)))
}

/// Removes the lock of `environment` if `holder` still holds it. Returns
/// whether a row was removed.
pub async fn remove(
    client: &Client,
    database: &str,
    environment: &str,
    holder: &str,
) -> Result<bool, LedgerError> {
    let remove =
        Statement::new("DELETE FROM locks WHERE environment = ?1 AND holder = ?2 RETURNING holder")
            .bind(environment)
            .bind(holder);
    let rows = client.d1_run(database, &[remove]).await?;
    Ok(rows.iter().any(|r| !r.results.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_display_compactly() {
        assert_eq!(display_duration(Duration::from_secs(1)), "1s");
        assert_eq!(display_duration(Duration::from_secs(300)), "5m");
        assert_eq!(display_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(display_duration(Duration::from_millis(500)), "500ms");
    }

    #[test]
    fn holder_names_the_actor_and_a_random_id() {
        let (a, host) = identity();
        let (b, _) = identity();
        assert_ne!(a, b);
        assert!(a.contains("(apply "), "{a}");
        assert!(!host.is_empty());
    }
}
