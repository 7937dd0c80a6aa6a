//! Salted SHA-256 fingerprints of the secret values flareops last sent, so
//! a plan can tell a changed value from an unchanged one without ever
//! storing, reading or printing a value. The salt is random per ledger.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{Environments, LedgerError};
use crate::cloudflare::{
    Client, D1Limits, D1Value, QueryResult, RowTemplate, Statement, row_statements,
};
use crate::model::{DesiredState, InventoryEntry, RecordedMigration, SecretFingerprints};

/// The table, and the ledger's salt (created once, never replaced).
pub(super) fn schema() -> Vec<Statement> {
    let salt = hex::encode(rand::random::<[u8; 32]>());
    vec![
        Statement::new(
            "CREATE TABLE IF NOT EXISTS secret_fingerprints (
  environment TEXT NOT NULL,
  worker TEXT NOT NULL,
  name TEXT NOT NULL,
  fingerprint TEXT NOT NULL,
  PRIMARY KEY (environment, worker, name)
)",
        ),
        Statement::new(
            "INSERT OR IGNORE INTO flareops_meta (key, value) VALUES ('secret_salt', ?1)",
        )
        .bind(salt),
    ]
}

/// What a plan reads from the ledger.
#[derive(Debug, Default)]
pub struct PlanReads {
    pub inventory: Vec<InventoryEntry>,
    /// `None` when the ledger has no salt yet.
    pub fingerprints: Option<SecretFingerprints>,
    /// Each migration file flareops applied (its SHA-256 and the bookmark
    /// taken before it), by (database name, file name).
    pub migration_hashes: BTreeMap<(String, String), RecordedMigration>,
    /// What the ledger records for the other environments, as
    /// (environment, entry).
    pub elsewhere: Vec<(String, InventoryEntry)>,
}

#[derive(Deserialize)]
struct MigrationRow {
    database_name: String,
    name: String,
    sha256: String,
    bookmark_before: Option<String>,
}

/// The statements of the reads a plan makes ([`PlanReads`]), of the
/// current schema or of version 1; [`plan_reads`] decodes their results.
pub(super) fn plan_read_statements(environment: &str, version_1: bool) -> Vec<Statement> {
    let mut statements = vec![super::inventory_query(
        Environments::Only(environment),
        version_1,
    )];
    statements.extend(fingerprints_queries(environment));
    statements.push(
        Statement::new(
            "SELECT database_name, name, sha256, bookmark_before FROM migrations WHERE environment = ?1",
        )
        .bind(environment),
    );
    statements.push(super::inventory_query(
        Environments::AllBut(environment),
        version_1,
    ));
    statements
}

/// Decodes the results of [`plan_read_statements`].
pub(super) fn plan_reads(results: &[QueryResult]) -> Result<PlanReads, LedgerError> {
    let inventory = super::entries(results.first())?;
    let fingerprints = parse_fingerprints(results.get(1..3).unwrap_or_default())?;
    let migration_hashes = match results.get(3) {
        Some(result) => result
            .rows::<MigrationRow>()?
            .into_iter()
            .map(|row| {
                (
                    (row.database_name, row.name),
                    RecordedMigration {
                        sha256: row.sha256,
                        bookmark_before: row.bookmark_before,
                    },
                )
            })
            .collect(),
        None => BTreeMap::new(),
    };
    Ok(PlanReads {
        inventory,
        fingerprints,
        migration_hashes,
        elsewhere: super::entries_by_environment(results.get(4))?,
    })
}

/// What a plan reads from the ledger, in one read-only request (two on a
/// ledger of schema version 1, not yet migrated by an apply).
pub async fn read_for_plan(
    client: &Client,
    database: &str,
    environment: &str,
) -> Result<PlanReads, LedgerError> {
    for version_1 in [false, true] {
        let statements = plan_read_statements(environment, version_1);
        match client.d1_run(database, &statements).await {
            Ok(results) => return plan_reads(&results),
            Err(error) if error.is_no_such_table() => continue,
            Err(error) => return Err(error.into()),
        }
    }
    Ok(PlanReads::default())
}

/// Forgets the migration files a restored bookmark undid, as (database
/// key, file name), then records the SHA-256 of the files this apply ran
/// and the bookmark taken before each, as (database key, file name,
/// bookmark). Multi-row statements under D1's limits, usually one request.
pub async fn record_migration_hashes(
    client: &Client,
    database: &str,
    desired: &DesiredState,
    applied: &[(String, String, String)],
    undone: &[(String, String)],
) -> Result<(), LedgerError> {
    let statements = migration_hash_statements(desired, applied, undone, &D1Limits::CLOUDFLARE)?;
    // Deletes and upserts by key: safe to repeat.
    // In order: deletes before the upserts that may re-create a row.
    super::write(client, database, statements).await
}

/// The statements of [`record_migration_hashes`]: deletes, then upserts.
pub fn migration_hash_statements(
    desired: &DesiredState,
    applied: &[(String, String, String)],
    undone: &[(String, String)],
    limits: &D1Limits,
) -> Result<Vec<Statement>, LedgerError> {
    let shared = [D1Value::from(desired.environment.as_str())];
    let forgotten = undone
        .iter()
        .filter_map(|(key, file)| {
            let db = desired.d1_databases.get(key)?;
            Some(vec![
                D1Value::from(db.spec.name.as_str()),
                D1Value::from(file.as_str()),
            ])
        })
        .collect();
    let pair = |p: &[String]| format!("({}, {})", p[0], p[1]);
    let mut statements = row_statements(
        &RowTemplate {
            head: "DELETE FROM migrations WHERE environment = ?1 AND (database_name, name) IN (VALUES ",
            tail: ")",
            shared: &shared,
            row: &pair,
        },
        forgotten,
        limits,
    )?;
    let recorded = applied
        .iter()
        .filter_map(|(key, file, bookmark)| {
            let db = desired.d1_databases.get(key)?;
            let migration = db.spec.migrations.iter().find(|m| &m.name == file)?;
            Some(vec![
                D1Value::from(db.spec.name.as_str()),
                D1Value::from(file.as_str()),
                D1Value::from(migration.sha256.as_str()),
                D1Value::from(bookmark.as_str()),
            ])
        })
        .collect();
    let row = |p: &[String]| format!("(?1, {}, {}, {}, {})", p[0], p[1], p[2], p[3]);
    statements.extend(row_statements(
        &RowTemplate {
            head: "INSERT INTO migrations (environment, database_name, name, sha256, bookmark_before) VALUES ",
            tail: " ON CONFLICT(environment, database_name, name) DO UPDATE SET sha256 = excluded.sha256, bookmark_before = excluded.bookmark_before, applied_at = CURRENT_TIMESTAMP",
            shared: &shared,
            row: &row,
        },
        recorded,
        limits,
    )?);
    Ok(statements)
}

/// The salt, then the fingerprints of `environment`.
fn fingerprints_queries(environment: &str) -> [Statement; 2] {
    [
        Statement::new("SELECT value FROM flareops_meta WHERE key = 'secret_salt'"),
        Statement::new(
            "SELECT worker, name, fingerprint FROM secret_fingerprints WHERE environment = ?1",
        )
        .bind(environment),
    ]
}

/// Reads the salt and the fingerprints of `environment` (read-only).
async fn read_secret_fingerprints(
    client: &Client,
    database: &str,
    environment: &str,
) -> Result<Option<SecretFingerprints>, LedgerError> {
    let results = client
        .d1_run(database, &fingerprints_queries(environment))
        .await?;
    parse_fingerprints(&results)
}

/// The salt row, then the fingerprint rows.
fn parse_fingerprints(results: &[QueryResult]) -> Result<Option<SecretFingerprints>, LedgerError> {
    #[derive(Deserialize)]
    struct Salt {
        value: String,
    }
    #[derive(Deserialize)]
    struct Fingerprint {
        worker: String,
        name: String,
        fingerprint: String,
    }
    let Some(salt) = results.first() else {
        return Ok(None);
    };
    let Some(salt) = salt.rows::<Salt>()?.into_iter().next() else {
        return Ok(None);
    };
    let mut values = BTreeMap::new();
    for result in results.iter().skip(1) {
        for row in result.rows::<Fingerprint>()? {
            values.insert((row.worker, row.name), row.fingerprint);
        }
    }
    Ok(Some(SecretFingerprints::new(salt.value, values)))
}

/// Records the fingerprints of the secret values an apply sent, as
/// (worker key, secret name), and forgets the deleted ones, as (script
/// name, secret name). Multi-row statements under D1's limits.
pub async fn record_secret_fingerprints(
    client: &Client,
    database: &str,
    desired: &DesiredState,
    sent: &[(String, String)],
    deleted: &[(String, String)],
) -> Result<(), LedgerError> {
    if sent.is_empty() && deleted.is_empty() {
        return Ok(());
    }
    let Some(salted) = read_secret_fingerprints(client, database, &desired.environment).await?
    else {
        return Ok(());
    };
    let statements = secret_fingerprint_statements(&salted, desired, sent, deleted)?;
    // Deletes and upserts by key: safe to repeat.
    // In order: deletes before the upserts that may re-create a row.
    super::write(client, database, statements).await
}

/// The statements of [`record_secret_fingerprints`] with the ledger's salt
/// already read (`salted`): deletes, then upserts, in that order.
pub fn secret_fingerprint_statements(
    salted: &SecretFingerprints,
    desired: &DesiredState,
    sent: &[(String, String)],
    deleted: &[(String, String)],
) -> Result<Vec<Statement>, LedgerError> {
    let shared = [D1Value::from(desired.environment.as_str())];
    let forgotten = deleted
        .iter()
        .map(|(script, name)| vec![D1Value::from(script.as_str()), D1Value::from(name.as_str())])
        .collect();
    let pair = |p: &[String]| format!("({}, {})", p[0], p[1]);
    let mut statements = row_statements(
        &RowTemplate {
            head: "DELETE FROM secret_fingerprints WHERE environment = ?1 AND (worker, name) IN (VALUES ",
            tail: ")",
            shared: &shared,
            row: &pair,
        },
        forgotten,
        &D1Limits::CLOUDFLARE,
    )?;
    let recorded = sent
        .iter()
        .filter_map(|(key, name)| {
            let worker = desired.workers.get(key)?;
            let secret = worker.spec.secrets.get(name)?;
            let script = &worker.spec.name;
            Some(vec![
                D1Value::from(script.as_str()),
                D1Value::from(name.as_str()),
                D1Value::from(salted.of(script, name, &secret.value)),
            ])
        })
        .collect();
    let row = |p: &[String]| format!("(?1, {}, {}, {})", p[0], p[1], p[2]);
    statements.extend(row_statements(
        &RowTemplate {
            head: "INSERT INTO secret_fingerprints (environment, worker, name, fingerprint) VALUES ",
            tail: " ON CONFLICT(environment, worker, name) DO UPDATE SET fingerprint = excluded.fingerprint",
            shared: &shared,
            row: &row,
        },
        recorded,
        &D1Limits::CLOUDFLARE,
    )?);
    Ok(statements)
}
