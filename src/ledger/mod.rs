//! The ledger: flareops' own record in the target account, a D1 database
//! (`flareops-state` unless the environment names another, `ledger:
//! {database: NAME}`) so CI runners stay stateless. It holds the inventory
//! (which addresses flareops manages, with their ids), so that resources
//! removed from git can be deleted and renamed resources found; the journal
//! ([`journal`]), the locks ([`locks`]), secret fingerprints and migration
//! hashes.
//!
//! A plan only reads it (one request); apply creates it on first use,
//! migrates its schema and records the inventory at the end of every run.
//!
//! Every query binds its values ([`Statement`]); no SQL is built by quoting.
//! Every write stays under D1's limits ([`D1Limits`]) however large the
//! environment: rows are written in multi-row statements of at most 100
//! bound parameters, grouped into as few requests as the request budget
//! allows.
//!
//! **The inventory in generations** (schema version 2). One environment's
//! inventory may need several requests, and a run may be killed between
//! them, so it is never rewritten in place: each write tags its rows with
//! a new generation id (`inventory_entries`), and one small statement then
//! makes that generation the environment's current one
//! (`inventory_generations`), only if all its rows are there (it counts
//! them). Readers read only the current generation. The same request (the
//! last) then deletes the environment's other generations. A run killed
//! before the switch leaves the old inventory in force, and the next
//! write's clean-up removes the unfinished rows. Each statement is an
//! upsert, a guarded switch or a delete by key: every request is safe to
//! repeat after a lost answer.
//!
//! Version 1 kept one `inventory` table rewritten in one statement, which
//! D1 refuses past about 800 resources (100 KB of SQL). [`open`] migrates
//! it in one transaction (its rows become a generation named `v1`); until
//! then, reads fall back to the version-1 table, so plans of a ledger not
//! yet migrated see its inventory.

use std::collections::BTreeMap;

use serde::Deserialize;

pub mod journal;
pub mod locks;
mod secrets;
#[cfg(test)]
mod tests;

pub use secrets::{
    PlanReads, migration_hash_statements, read_for_plan, record_migration_hashes,
    record_secret_fingerprints, secret_fingerprint_statements,
};

use crate::cloudflare::{
    Client, ClientError, D1LimitError, D1Limits, D1Value, RowTemplate, Statement, group_requests,
    row_statements,
};
use crate::model::{Address, InventoryEntry};

/// The schema version this flareops writes; older ones are migrated.
pub const SCHEMA_VERSION: i64 = 2;

const SCHEMA: &str =
    "CREATE TABLE IF NOT EXISTS flareops_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS inventory_entries (
  environment TEXT NOT NULL,
  generation TEXT NOT NULL,
  address TEXT NOT NULL,
  cloudflare_id TEXT NOT NULL,
  name TEXT NOT NULL,
  protect INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (environment, generation, address)
);
CREATE TABLE IF NOT EXISTS inventory_generations (
  environment TEXT PRIMARY KEY,
  generation TEXT NOT NULL,
  recorded_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE TABLE IF NOT EXISTS migrations (
  environment TEXT NOT NULL,
  database_name TEXT NOT NULL,
  name TEXT NOT NULL,
  sha256 TEXT NOT NULL,
  bookmark_before TEXT,
  applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
  PRIMARY KEY (environment, database_name, name)
);";

/// Version 1 to 2, in one request (one transaction). Safe to repeat: the
/// version-1 table is created empty when it is gone, so a repeat copies
/// nothing, and the copies skip rows already there.
const MIGRATE_TO_2: [&str; 4] = [
    "CREATE TABLE IF NOT EXISTS inventory (
  environment TEXT NOT NULL,
  address TEXT NOT NULL,
  cloudflare_id TEXT NOT NULL,
  name TEXT NOT NULL,
  protect INTEGER NOT NULL DEFAULT 0,
  updated_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
  PRIMARY KEY (environment, address)
)",
    "INSERT INTO inventory_entries (environment, generation, address, cloudflare_id, name, protect)
SELECT environment, 'v1', address, cloudflare_id, name, protect FROM inventory WHERE true
ON CONFLICT (environment, generation, address) DO NOTHING",
    "INSERT INTO inventory_generations (environment, generation)
SELECT DISTINCT environment, 'v1' FROM inventory WHERE true
ON CONFLICT (environment) DO NOTHING",
    "DROP TABLE inventory",
];

/// Errors of the ledger.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("reading or writing the ledger failed")]
    Client(#[from] ClientError),
    #[error(
        "the ledger has schema version {found}, newer than this flareops understands ({SCHEMA_VERSION})"
    )]
    TooNew { found: i64 },
    #[error("the ledger's schema version {found:?} is not a number")]
    BadVersion { found: String },
    #[error(
        "the new inventory of environment `{environment}` was incomplete when it was to replace the old one, which stays in force (did another apply write it at the same time?)"
    )]
    InventoryIncomplete { environment: String },
    #[error("a ledger write does not fit D1's limits")]
    Limit(#[from] D1LimitError),
}

/// The ledger's database id, if the account has one.
pub fn find(databases: &[crate::cloudflare::D1Database], name: &str) -> Option<String> {
    databases
        .iter()
        .find(|db| db.name == name)
        .map(|db| db.uuid.clone())
}

/// One inventory row as the queries select it.
#[derive(Deserialize)]
struct InventoryRow {
    #[serde(default)]
    environment: String,
    address: String,
    cloudflare_id: String,
    name: String,
    protect: i64,
}

impl InventoryRow {
    /// The entry, unless its address no longer parses (a kind this
    /// flareops does not know): such rows are not flareops' to act on.
    fn entry(self) -> Option<InventoryEntry> {
        Some(InventoryEntry {
            address: Address::parse(&self.address)?,
            id: self.cloudflare_id,
            name: self.name,
            protect: self.protect != 0,
        })
    }
}

/// The rows of an inventory read with their environments.
fn entries_by_environment(
    result: Option<&crate::cloudflare::QueryResult>,
) -> Result<Vec<(String, InventoryEntry)>, ClientError> {
    Ok(match result {
        Some(result) => result
            .rows::<InventoryRow>()?
            .into_iter()
            .filter_map(|row| {
                let environment = row.environment.clone();
                row.entry().map(|entry| (environment, entry))
            })
            .collect(),
        None => Vec::new(),
    })
}

fn entries(
    result: Option<&crate::cloudflare::QueryResult>,
) -> Result<Vec<InventoryEntry>, ClientError> {
    Ok(match result {
        Some(result) => result
            .rows::<InventoryRow>()?
            .into_iter()
            .filter_map(InventoryRow::entry)
            .collect(),
        None => Vec::new(),
    })
}

/// Which environments an inventory read selects.
#[derive(Clone, Copy)]
enum Environments<'a> {
    Only(&'a str),
    AllBut(&'a str),
}

/// The inventory read of the current generations (`v2`) or of the
/// version-1 table.
fn inventory_query(environments: Environments<'_>, version_1: bool) -> Statement {
    let (operator, environment) = match environments {
        Environments::Only(environment) => ("=", environment),
        Environments::AllBut(environment) => ("!=", environment),
    };
    let sql = if version_1 {
        format!(
            "SELECT environment, address, cloudflare_id, name, protect FROM inventory WHERE environment {operator} ?1 ORDER BY environment, address"
        )
    } else {
        format!(
            "SELECT e.environment, e.address, e.cloudflare_id, e.name, e.protect FROM inventory_entries e
JOIN inventory_generations g ON g.environment = e.environment AND g.generation = e.generation
WHERE e.environment {operator} ?1 ORDER BY e.environment, e.address"
        )
    };
    Statement::new(sql).bind(environment)
}

/// Reads an inventory (one read-only request; two on a version-1 ledger).
/// A ledger without the tables has an empty inventory.
async fn read_entries(
    client: &Client,
    database: &str,
    environments: Environments<'_>,
) -> Result<Vec<InventoryEntry>, LedgerError> {
    for version_1 in [false, true] {
        let query = inventory_query(environments, version_1);
        match client.d1_run(database, &[query]).await {
            Ok(results) => return Ok(entries(results.last())?),
            Err(error) if error.is_no_such_table() => continue,
            Err(error) => return Err(error.into()),
        }
    }
    Ok(Vec::new())
}

/// Reads the inventory of `environment`. An empty ledger (no table yet) has
/// an empty inventory.
pub async fn read_inventory(
    client: &Client,
    database: &str,
    environment: &str,
) -> Result<Vec<InventoryEntry>, LedgerError> {
    read_entries(client, database, Environments::Only(environment)).await
}

/// What the ledger records for every environment but `environment`:
/// drift does not take another environment's resources for look-alikes.
pub async fn other_inventories(
    client: &Client,
    database: &str,
    environment: &str,
) -> Result<Vec<InventoryEntry>, LedgerError> {
    read_entries(client, database, Environments::AllBut(environment)).await
}

/// The ledger's database id; created when the account has none.
async fn find_or_create(client: &Client, name: &str) -> Result<String, LedgerError> {
    // One filtered list, not the account's: under the lock, the fetch
    // reads the whole list afresh.
    Ok(match client.find_d1_database(name).await? {
        Some(existing) => existing.uuid,
        None => match client.create_d1_database(name, None, None).await {
            Ok(created) => created.uuid,
            // Created concurrently, or the answer was lost: look it up.
            Err(error) => match client.find_d1_database(name).await? {
                Some(existing) => existing.uuid,
                None => return Err(error.into()),
            },
        },
    })
}

/// The tables (`IF NOT EXISTS`, and `INSERT OR IGNORE` of the salt: safe
/// to repeat), then the read of the schema version (the last statement).
fn schema_statements() -> Vec<Statement> {
    let mut statements = vec![
        Statement::new(SCHEMA),
        Statement::new(locks::SCHEMA),
        Statement::new(journal::SCHEMA),
    ];
    statements.extend(secrets::schema());
    statements.push(Statement::new(
        "SELECT value FROM flareops_meta WHERE key = 'schema_version'",
    ));
    statements
}

/// The schema version the read of [`schema_statements`] answered (`None`:
/// a new ledger, or version 1, which did not record it).
fn schema_version(
    result: Option<&crate::cloudflare::QueryResult>,
) -> Result<Option<i64>, LedgerError> {
    #[derive(Deserialize)]
    struct Meta {
        value: String,
    }
    let meta = match result {
        Some(result) => result.rows::<Meta>()?.into_iter().next(),
        None => None,
    };
    match meta {
        Some(meta) => match meta.value.trim().parse::<i64>() {
            Ok(version) => Ok(Some(version)),
            Err(_) => Err(LedgerError::BadVersion { found: meta.value }),
        },
        None => Ok(None),
    }
}

/// Brings a ledger of schema `version` up to date: `Ok(true)` when it
/// migrated it (one request), `Ok(false)` when it was current.
async fn migrate(
    client: &Client,
    database: &str,
    version: Option<i64>,
) -> Result<bool, LedgerError> {
    match version {
        Some(found) if found > SCHEMA_VERSION => Err(LedgerError::TooNew { found }),
        Some(SCHEMA_VERSION) => Ok(false),
        // Version 1, or a new ledger (nothing to copy then).
        _ => {
            let mut migration: Vec<Statement> = MIGRATE_TO_2
                .iter()
                .map(|sql| Statement::new(*sql))
                .collect();
            migration.push(
                Statement::new(
                    "INSERT INTO flareops_meta (key, value) VALUES ('schema_version', ?1)
ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                )
                .bind(SCHEMA_VERSION.to_string()),
            );
            client.d1_run_idempotent(database, &migration).await?;
            Ok(true)
        }
    }
}

/// Opens the ledger for writing: creates the database on first use and
/// brings its schema up to date. Returns its id. One request for the
/// schema and its version; one more to migrate an older ledger.
pub async fn open(client: &Client, name: &str) -> Result<String, LedgerError> {
    let database = find_or_create(client, name).await?;
    let results = client
        .d1_run_idempotent(&database, &schema_statements())
        .await?;
    migrate(client, &database, schema_version(results.last())?).await?;
    Ok(database)
}

/// The ledger opened for an apply: its lock taken, and what a plan reads
/// from it, read under the lock.
#[derive(Debug)]
pub struct Opened {
    pub lock: locks::Lock,
    pub reads: PlanReads,
}

/// [`open`] and [`locks::acquire`] in one: the schema, the first attempt
/// at the lock and the plan's reads ([`read_for_plan`]) go in one request
/// (one transaction), so the reads are made under the lock. Waiting for
/// another apply repeats the lock and the reads; an older ledger takes one
/// more request to migrate and one to read again.
pub async fn open_and_lock(
    client: &Client,
    name: &str,
    environment: &str,
    timeout: std::time::Duration,
    lease: std::time::Duration,
    waiting: impl FnMut(&locks::LockInfo),
) -> Result<Opened, locks::LockError> {
    let database = find_or_create(client, name).await?;
    let (holder, host) = locks::identity();
    let mut waiter = locks::Waiter::new(timeout, lease, waiting);
    let mut schema = schema_statements();
    let mut migrated = false;
    loop {
        let mut statements = std::mem::take(&mut schema);
        let with_schema = !statements.is_empty();
        let take = locks::take_statements(environment, &holder, &host, lease);
        let reads = secrets::plan_read_statements(environment, false);
        // Counted from the end: a statement of several SQL statements (the
        // schema's) has a result for each.
        let ours = take.len() + reads.len();
        statements.extend(take);
        statements.extend(reads);
        let results = client
            .d1_run_idempotent(&database, &statements)
            .await
            .map_err(LedgerError::from)?;
        let (schema_results, rest) = results.split_at(results.len().saturating_sub(ours));
        let (lock_results, read_results) = rest.split_at(2.min(rest.len()));
        let taken = locks::taken(lock_results, &database, environment, &holder, lease)?;
        if with_schema {
            let version = schema_version(schema_results.last());
            let migration = match version {
                Ok(version) => migrate(client, &database, version).await,
                Err(error) => Err(error),
            };
            match migration {
                Ok(done) => migrated = done,
                Err(error) => {
                    // Not this flareops' ledger to write: give the lock back.
                    if let Ok(lock) = taken {
                        let _ = lock.release(client).await;
                    }
                    return Err(error.into());
                }
            }
        }
        match taken {
            Ok(lock) => {
                let reads = if migrated {
                    read_for_plan(client, &database, environment).await?
                } else {
                    secrets::plan_reads(read_results)?
                };
                return Ok(Opened { lock, reads });
            }
            Err(info) => waiter.wait(info).await?,
        }
    }
}

/// The requests that write `entries` as generation `generation` of
/// `environment`: the rows in multi-row upserts, then, at the end of the
/// last request, the switch (only when every row is there; it answers the
/// generation when it switched) and the clean-up of the other generations.
/// Every request but the last may be sent in any order; the last goes
/// after them.
fn inventory_write(
    environment: &str,
    generation: &str,
    entries: &[InventoryEntry],
    limits: &D1Limits,
) -> Result<Vec<Vec<Statement>>, D1LimitError> {
    // One row per address (the last entry wins), so the count is exact.
    let unique: BTreeMap<String, &InventoryEntry> = entries
        .iter()
        .map(|entry| (entry.address.to_string(), entry))
        .collect();
    let shared = [D1Value::from(environment), D1Value::from(generation)];
    let row = |p: &[String]| format!("(?1, ?2, {}, {}, {}, {})", p[0], p[1], p[2], p[3]);
    let template = RowTemplate {
        head: "INSERT INTO inventory_entries (environment, generation, address, cloudflare_id, name, protect) VALUES ",
        tail: " ON CONFLICT (environment, generation, address) DO UPDATE SET cloudflare_id = excluded.cloudflare_id, name = excluded.name, protect = excluded.protect",
        shared: &shared,
        row: &row,
    };
    let rows = unique
        .iter()
        .map(|(address, entry)| {
            vec![
                D1Value::from(address.as_str()),
                D1Value::from(entry.id.as_str()),
                D1Value::from(entry.name.as_str()),
                D1Value::from(entry.protect),
            ]
        })
        .collect();
    let count = i64::try_from(unique.len()).unwrap_or(i64::MAX);
    let switch = Statement::new(
        "INSERT INTO inventory_generations (environment, generation, recorded_at)
SELECT ?1, ?2, CURRENT_TIMESTAMP
WHERE (SELECT count(*) FROM inventory_entries WHERE environment = ?1 AND generation = ?2) = ?3
ON CONFLICT (environment) DO UPDATE SET generation = excluded.generation, recorded_at = excluded.recorded_at
RETURNING generation",
    )
    .bind(environment)
    .bind(generation)
    .bind(count);
    let clean_up = Statement::new(
        "DELETE FROM inventory_entries WHERE environment = ?1
AND generation NOT IN (SELECT generation FROM inventory_generations WHERE environment = ?1)",
    )
    .bind(environment);
    let mut requests = group_requests(row_statements(&template, rows, limits)?, limits);
    // The switch and the clean-up end the last request, after every row
    // (in a request of their own when the last is full).
    let finish = vec![switch, clean_up];
    match requests.pop() {
        Some(mut last) => {
            let rows_in_last = last.len();
            last.extend(finish);
            if group_requests(last.clone(), limits).len() == 1 {
                requests.push(last);
            } else {
                let finish = last.split_off(rows_in_last);
                requests.push(last);
                requests.push(finish);
            }
        }
        None => requests.push(finish),
    }
    Ok(requests)
}

/// Replaces the inventory of `environment` with `entries`, as a new
/// generation (see the module doc): under D1's limits at any size, the old
/// inventory in force until the new one is complete. Requests: the rows'
/// bytes over the request budget, rounded up (at least one).
pub async fn record_inventory(
    client: &Client,
    database: &str,
    environment: &str,
    entries: &[InventoryEntry],
) -> Result<(), LedgerError> {
    record_inventory_with(
        client,
        database,
        environment,
        entries,
        &D1Limits::CLOUDFLARE,
    )
    .await
}

async fn record_inventory_with(
    client: &Client,
    database: &str,
    environment: &str,
    entries: &[InventoryEntry],
    limits: &D1Limits,
) -> Result<(), LedgerError> {
    let closing = Closing {
        first: Vec::new(),
        inventory: Some((environment, entries)),
        last: None,
    };
    write_closing(client, database, closing, limits).await
}

/// Sends `statements` (independent, each safe to repeat) in order, in as
/// few requests as D1's limits allow. No statements, no request.
pub async fn write(
    client: &Client,
    database: &str,
    statements: Vec<Statement>,
) -> Result<(), LedgerError> {
    for request in group_requests(statements, &D1Limits::CLOUDFLARE) {
        client.d1_run_idempotent(database, &request).await?;
    }
    Ok(())
}

/// The ledger writes that end an apply, sent together by [`close`].
#[derive(Debug, Default)]
pub struct Closing<'a> {
    /// Independent writes, each safe to repeat, in order: the journal's
    /// last rows, secret fingerprints, migration hashes.
    pub first: Vec<Statement>,
    /// The inventory to record for an environment, as a new generation.
    pub inventory: Option<(&'a str, &'a [InventoryEntry])>,
    /// The very last statement (the lock's release): it runs only after
    /// everything else landed, in the same request as the inventory's
    /// switch when that fits.
    pub last: Option<Statement>,
}

/// Writes `closing` in as few requests as D1's limits allow: usually one
/// (one transaction) for an apply's journal end, records, inventory and
/// lock release together. An inventory too large for one request has its
/// rows sent first (see [`record_inventory`]); the switch, the clean-up and
/// `last` always end the final request.
pub async fn close(
    client: &Client,
    database: &str,
    closing: Closing<'_>,
) -> Result<(), LedgerError> {
    write_closing(client, database, closing, &D1Limits::CLOUDFLARE).await
}

async fn write_closing(
    client: &Client,
    database: &str,
    closing: Closing<'_>,
    limits: &D1Limits,
) -> Result<(), LedgerError> {
    let Closing {
        first,
        inventory,
        last,
    } = closing;
    let mut inventory_requests = match inventory {
        Some((environment, entries)) => {
            let generation = uuid::Uuid::new_v4().simple().to_string();
            Some((
                environment,
                inventory_write(environment, &generation, entries, limits)?,
            ))
        }
        None => None,
    };
    // The final request: the inventory's last rows, its switch and
    // clean-up (the switch is the next-to-last of them), then `last`.
    let mut final_request = Vec::new();
    let mut switch_at = None;
    if let Some((_, requests)) = &mut inventory_requests {
        let tail = requests.pop().unwrap_or_default();
        // Upserts of this generation's rows: safe to repeat, in any order.
        futures::future::try_join_all(
            requests
                .iter()
                .map(|request| client.d1_run_idempotent(database, request)),
        )
        .await?;
        switch_at = tail.len().checked_sub(2);
        final_request = tail;
    }
    final_request.extend(last);
    if first.is_empty() && final_request.is_empty() {
        return Ok(());
    }
    let mut combined = first.clone();
    combined.extend(final_request.iter().cloned());
    let results = if group_requests(combined.clone(), limits).len() == 1 {
        switch_at = switch_at.map(|index| index + first.len());
        client.d1_run_idempotent(database, &combined).await?
    } else {
        for request in group_requests(first, limits) {
            client.d1_run_idempotent(database, &request).await?;
        }
        client.d1_run_idempotent(database, &final_request).await?
    };
    if let (Some((environment, _)), Some(index)) = (inventory_requests, switch_at) {
        let switched = results
            .get(index)
            .is_some_and(|result| !result.results.is_empty());
        if !switched {
            return Err(LedgerError::InventoryIncomplete {
                environment: environment.to_string(),
            });
        }
    }
    Ok(())
}
