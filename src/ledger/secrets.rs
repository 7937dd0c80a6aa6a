//! Salted SHA-256 fingerprints of the secret values flareops last sent, so
//! a plan can tell a changed value from an unchanged one without ever
//! storing, reading or printing a value. The salt is random per ledger.

use std::collections::BTreeMap;

use super::{LedgerError, literal};
use crate::cloudflare::Client;
use crate::model::{DesiredState, InventoryEntry, RecordedMigration, SecretFingerprints};

/// The table, and the ledger's salt (created once, never replaced).
pub(super) fn schema() -> String {
    let salt = hex::encode(rand::random::<[u8; 32]>());
    format!(
        "CREATE TABLE IF NOT EXISTS secret_fingerprints (
  environment TEXT NOT NULL,
  worker TEXT NOT NULL,
  name TEXT NOT NULL,
  fingerprint TEXT NOT NULL,
  PRIMARY KEY (environment, worker, name)
);
INSERT OR IGNORE INTO flareops_meta (key, value) VALUES ('secret_salt', '{salt}');"
    )
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
}

/// What a plan reads from the ledger, in one read-only request.
pub async fn read_for_plan(
    client: &Client,
    database: &str,
    environment: &str,
) -> Result<PlanReads, LedgerError> {
    let sql = format!(
        "{}\n{}\nSELECT database_name, name, sha256, bookmark_before FROM migrations WHERE environment = {};",
        super::inventory_query(environment),
        fingerprints_query(environment),
        literal(environment)
    );
    let results = match client.d1_query(database, &sql).await {
        Ok(results) => results,
        Err(error) if error.to_string().contains("no such table") => {
            return Ok(PlanReads::default());
        }
        Err(error) => return Err(error.into()),
    };
    let inventory = results
        .first()
        .map(|r| r.results.iter().filter_map(super::inventory_row).collect())
        .unwrap_or_default();
    let fingerprints = parse_fingerprints(results.get(1..3).unwrap_or_default());
    let text = |row: &serde_json::Map<String, serde_json::Value>, key: &str| {
        row.get(key).and_then(|v| v.as_str()).map(str::to_string)
    };
    let migration_hashes = results
        .get(3)
        .map(|r| {
            r.results
                .iter()
                .filter_map(|row| {
                    Some((
                        (text(row, "database_name")?, text(row, "name")?),
                        RecordedMigration {
                            sha256: text(row, "sha256")?,
                            bookmark_before: text(row, "bookmark_before"),
                        },
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(PlanReads {
        inventory,
        fingerprints,
        migration_hashes,
    })
}

/// Forgets the migration files a restored bookmark undid, as (database
/// key, file name), then records the SHA-256 of the files this apply ran
/// and the bookmark taken before each, as (database key, file name,
/// bookmark).
pub async fn record_migration_hashes(
    client: &Client,
    database: &str,
    desired: &DesiredState,
    applied: &[(String, String, String)],
    undone: &[(String, String)],
) -> Result<(), LedgerError> {
    let environment = literal(&desired.environment);
    let mut sql = String::new();
    for (key, file) in undone {
        let Some(db) = desired.d1_databases.get(key) else {
            continue;
        };
        sql.push_str(&format!(
            "DELETE FROM migrations WHERE environment = {environment} AND database_name = {} AND name = {};\n",
            literal(&db.spec.name),
            literal(file)
        ));
    }
    for (key, file, bookmark) in applied {
        let Some(db) = desired.d1_databases.get(key) else {
            continue;
        };
        let Some(migration) = db.spec.migrations.iter().find(|m| &m.name == file) else {
            continue;
        };
        sql.push_str(&format!(
            "INSERT INTO migrations (environment, database_name, name, sha256, bookmark_before) VALUES ({environment}, {}, {}, {}, {}) ON CONFLICT(environment, database_name, name) DO UPDATE SET sha256 = excluded.sha256, bookmark_before = excluded.bookmark_before, applied_at = CURRENT_TIMESTAMP;\n",
            literal(&db.spec.name),
            literal(file),
            literal(&migration.sha256),
            literal(bookmark)
        ));
    }
    if !sql.is_empty() {
        // Deletes and upserts by key: safe to repeat.
        client.d1_query_idempotent(database, &sql).await?;
    }
    Ok(())
}

fn fingerprints_query(environment: &str) -> String {
    format!(
        "SELECT value FROM flareops_meta WHERE key = 'secret_salt';
SELECT worker, name, fingerprint FROM secret_fingerprints WHERE environment = {};",
        literal(environment)
    )
}

/// Reads the salt and the fingerprints of `environment` (read-only).
async fn read_secret_fingerprints(
    client: &Client,
    database: &str,
    environment: &str,
) -> Result<Option<SecretFingerprints>, LedgerError> {
    let results = client
        .d1_query(database, &fingerprints_query(environment))
        .await?;
    Ok(parse_fingerprints(&results))
}

/// The salt row, then the fingerprint rows.
fn parse_fingerprints(results: &[crate::cloudflare::QueryResult]) -> Option<SecretFingerprints> {
    let text = |row: &serde_json::Map<String, serde_json::Value>, key: &str| {
        row.get(key).and_then(|v| v.as_str()).map(str::to_string)
    };
    let salt = results
        .first()
        .and_then(|r| r.results.first())
        .and_then(|row| text(row, "value"))?;
    let mut values = BTreeMap::new();
    for row in results.iter().skip(1).flat_map(|r| &r.results) {
        if let (Some(worker), Some(name), Some(fingerprint)) = (
            text(row, "worker"),
            text(row, "name"),
            text(row, "fingerprint"),
        ) {
            values.insert((worker, name), fingerprint);
        }
    }
    Some(SecretFingerprints::new(salt, values))
}

/// Records the fingerprints of the secret values an apply sent, as
/// (worker key, secret name), and forgets the deleted ones.
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
    let environment = literal(&desired.environment);
    let mut sql = String::new();
    for (script, name) in deleted {
        sql.push_str(&format!(
            "DELETE FROM secret_fingerprints WHERE environment = {environment} AND worker = {} AND name = {};\n",
            literal(script),
            literal(name)
        ));
    }
    for (key, name) in sent {
        let Some(worker) = desired.workers.get(key) else {
            continue;
        };
        let Some(secret) = worker.spec.secrets.get(name) else {
            continue;
        };
        let script = &worker.spec.name;
        sql.push_str(&format!(
            "INSERT INTO secret_fingerprints (environment, worker, name, fingerprint) VALUES ({environment}, {}, {}, {}) ON CONFLICT(environment, worker, name) DO UPDATE SET fingerprint = excluded.fingerprint;\n",
            literal(script),
            literal(name),
            literal(&salted.of(script, name, &secret.value))
        ));
    }
    // Deletes and upserts by key: safe to repeat.
    client.d1_query_idempotent(database, &sql).await?;
    Ok(())
}
