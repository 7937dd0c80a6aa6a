//! The ledger: flareops' own record in the target account, a D1 database
//! (`flareops-state` unless the environment names another, `ledger:
//! {database: NAME}`) so CI runners stay stateless. This version holds the
//! inventory (which addresses flareops manages, with their ids), so that
//! resources removed from git can be deleted and renamed resources found.
//!
//! A plan only reads it (one `SELECT`); apply creates it on first use,
//! migrates its schema and records the inventory at the end of every run.

use std::collections::BTreeMap;

pub mod journal;
pub mod locks;
mod secrets;

pub use secrets::{PlanReads, read_for_plan, record_migration_hashes, record_secret_fingerprints};

use crate::cloudflare::{Client, ClientError};
use crate::model::{Address, DesiredState, InventoryEntry, Jurisdiction};

/// The schema version this flareops writes; older ones are migrated.
pub const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str =
    "CREATE TABLE IF NOT EXISTS flareops_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS inventory (
  environment TEXT NOT NULL,
  address TEXT NOT NULL,
  cloudflare_id TEXT NOT NULL,
  name TEXT NOT NULL,
  protect INTEGER NOT NULL DEFAULT 0,
  updated_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
  PRIMARY KEY (environment, address)
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

/// Errors of the ledger.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("reading or writing the ledger failed")]
    Client(#[from] ClientError),
    #[error(
        "the ledger has schema version {found}, newer than this flareops understands ({SCHEMA_VERSION})"
    )]
    TooNew { found: i64 },
}

/// An SQL string literal.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The ledger's database id, if the account has one.
pub fn find(databases: &[crate::cloudflare::D1Database], name: &str) -> Option<String> {
    databases
        .iter()
        .find(|db| db.name == name)
        .map(|db| db.uuid.clone())
}

/// Reads the inventory of `environment` (one read-only query). An empty
/// ledger (no table yet) has an empty inventory.
pub async fn read_inventory(
    client: &Client,
    database: &str,
    environment: &str,
) -> Result<Vec<InventoryEntry>, LedgerError> {
    let results = match client
        .d1_query(database, &inventory_query(environment))
        .await
    {
        Ok(results) => results,
        Err(error) if error.to_string().contains("no such table") => return Ok(Vec::new()),
        Err(error) => return Err(error.into()),
    };
    Ok(results
        .iter()
        .flat_map(|r| &r.results)
        .filter_map(inventory_row)
        .collect())
}

/// What the ledger records for every environment but `environment` (one
/// read-only query): drift does not take another environment's resources
/// for look-alikes.
pub async fn other_inventories(
    client: &Client,
    database: &str,
    environment: &str,
) -> Result<Vec<InventoryEntry>, LedgerError> {
    let sql = format!(
        "SELECT address, cloudflare_id, name, protect FROM inventory WHERE environment != {} ORDER BY environment, address;",
        literal(environment)
    );
    let results = match client.d1_query(database, &sql).await {
        Ok(results) => results,
        Err(error) if error.to_string().contains("no such table") => return Ok(Vec::new()),
        Err(error) => return Err(error.into()),
    };
    Ok(results
        .iter()
        .flat_map(|r| &r.results)
        .filter_map(inventory_row)
        .collect())
}

/// The inventory query of an environment.
fn inventory_query(environment: &str) -> String {
    format!(
        "SELECT address, cloudflare_id, name, protect FROM inventory WHERE environment = {} ORDER BY address;",
        literal(environment)
    )
}

/// One row of the inventory query.
fn inventory_row(row: &serde_json::Map<String, serde_json::Value>) -> Option<InventoryEntry> {
    let text = |key: &str| row.get(key).and_then(|v| v.as_str()).map(str::to_string);
    Some(InventoryEntry {
        address: Address::parse(&text("address")?)?,
        id: text("cloudflare_id")?,
        name: text("name")?,
        protect: row.get("protect").and_then(|v| v.as_i64()).unwrap_or(0) != 0,
    })
}

/// Opens the ledger for writing: creates the database on first use and
/// brings its schema up to date. Returns its id.
pub async fn open(client: &Client, name: &str) -> Result<String, LedgerError> {
    let existing = find(&client.list_d1_databases().await?, name);
    let database = match existing {
        Some(id) => id,
        None => match client.create_d1_database(name, None, None).await {
            Ok(created) => created.uuid,
            // Created concurrently, or the answer was lost: look it up.
            Err(error) => find(&client.list_d1_databases().await?, name).ok_or(error)?,
        },
    };
    client.d1_query(&database, locks::SCHEMA).await?;
    client.d1_query(&database, journal::SCHEMA).await?;
    // Tables `IF NOT EXISTS` and `INSERT OR IGNORE` of the salt: safe to repeat.
    let version = client
        .d1_query_idempotent(
            &database,
            &format!(
                "{SCHEMA}\n{}\nSELECT value FROM flareops_meta WHERE key = 'schema_version';",
                secrets::schema()
            ),
        )
        .await?
        .into_iter()
        .flat_map(|r| r.results)
        .find_map(|row| {
            row.get("value")
                .and_then(|v| v.as_str())
                .and_then(|v| v.parse::<i64>().ok())
        });
    match version {
        Some(found) if found > SCHEMA_VERSION => return Err(LedgerError::TooNew { found }),
        Some(found) if found == SCHEMA_VERSION => {}
        _ => {
            client
                .d1_query_idempotent(
                    &database,
                    &format!(
                        "INSERT INTO flareops_meta (key, value) VALUES ('schema_version', '{SCHEMA_VERSION}') ON CONFLICT(key) DO UPDATE SET value = excluded.value;"
                    ),
                )
                .await?;
        }
    }
    Ok(database)
}

/// Replaces the inventory of `environment` with what the account holds
/// for the declared addresses now (one transaction).
pub async fn record_inventory(
    client: &Client,
    database: &str,
    environment: &str,
    entries: &[InventoryEntry],
) -> Result<(), LedgerError> {
    let mut sql = format!(
        "DELETE FROM inventory WHERE environment = {};\n",
        literal(environment)
    );
    for entry in entries {
        sql.push_str(&format!(
            "INSERT INTO inventory (environment, address, cloudflare_id, name, protect) VALUES ({}, {}, {}, {}, {});\n",
            literal(environment),
            literal(&entry.address.to_string()),
            literal(&entry.id),
            literal(&entry.name),
            i64::from(entry.protect)
        ));
    }
    // One transaction that replaces the whole inventory: safe to repeat.
    client.d1_query_idempotent(database, &sql).await?;
    Ok(())
}

/// What the account holds for the addresses `desired` declares, found by
/// name (after an apply, names match git), plus the entries `keep` still
/// lists that were not deleted (an apply without `--allow-delete` leaves
/// them managed).
pub async fn current_inventory(
    client: &Client,
    desired: &DesiredState,
    keep: &[InventoryEntry],
) -> Result<Vec<InventoryEntry>, ClientError> {
    use crate::model::ResourceKind;
    let (kv, d1, scripts) = futures::try_join!(
        client.list_kv_namespaces(),
        client.list_d1_databases(),
        client.list_worker_scripts()
    )?;
    let mut r2 = BTreeMap::new();
    for jurisdiction in desired.r2_jurisdictions() {
        let buckets = client
            .list_r2_buckets(jurisdiction.map(Jurisdiction::as_str))
            .await?;
        r2.insert(jurisdiction, buckets);
    }
    let mut entries = Vec::new();
    for (key, declared) in &desired.kv_namespaces {
        if let Some(ns) = kv.iter().find(|ns| ns.title == declared.spec.title) {
            entries.push(InventoryEntry {
                address: Address::new(ResourceKind::KvNamespaces, key.clone()),
                id: ns.id.clone(),
                name: ns.title.clone(),
                protect: declared.protect,
            });
        }
    }
    for (key, declared) in &desired.d1_databases {
        if let Some(db) = d1.iter().find(|db| db.name == declared.spec.name) {
            entries.push(InventoryEntry {
                address: Address::new(ResourceKind::D1Databases, key.clone()),
                id: db.uuid.clone(),
                name: db.name.clone(),
                protect: declared.protect,
            });
        }
    }
    for (key, declared) in &desired.r2_buckets {
        let jurisdiction = declared.spec.jurisdiction;
        let exists = r2
            .get(&jurisdiction)
            .is_some_and(|buckets| buckets.iter().any(|b| b.name == declared.spec.name));
        if exists {
            entries.push(InventoryEntry {
                address: Address::new(ResourceKind::R2Buckets, key.clone()),
                id: InventoryEntry::r2_id(&declared.spec.name, jurisdiction),
                name: declared.spec.name.clone(),
                protect: declared.protect,
            });
        }
    }
    for (key, declared) in &desired.workers {
        if scripts.iter().any(|s| s.id == declared.spec.name) {
            entries.push(InventoryEntry {
                address: Address::new(ResourceKind::Workers, key.clone()),
                id: declared.spec.name.clone(),
                name: declared.spec.name.clone(),
                protect: declared.protect,
            });
        }
    }
    // Undeclared entries whose resource still exists stay managed.
    let r2_ids: Vec<String> = r2
        .iter()
        .flat_map(|(j, buckets)| buckets.iter().map(|b| InventoryEntry::r2_id(&b.name, *j)))
        .collect();
    for entry in keep {
        if entries.iter().any(|e| e.address == entry.address) {
            continue;
        }
        let exists = match entry.address.kind {
            ResourceKind::KvNamespaces => kv.iter().any(|ns| ns.id == entry.id),
            ResourceKind::D1Databases => d1.iter().any(|db| db.uuid == entry.id),
            ResourceKind::R2Buckets => r2_ids.contains(&entry.id),
            ResourceKind::Workers => scripts.iter().any(|s| s.id == entry.id),
        };
        if exists {
            entries.push(entry.clone());
        }
    }
    entries.sort();
    Ok(entries)
}

/// Records what flareops manages in `desired.environment` after an apply:
/// the declared addresses that exist, plus recorded ones that still exist.
/// Idempotent, so a failed or interrupted run is repaired by the next one.
/// `database` is the ledger, already opened (by the apply lock).
pub async fn sync(
    client: &Client,
    database: &str,
    desired: &DesiredState,
) -> Result<(), LedgerError> {
    let keep = read_inventory(client, database, &desired.environment).await?;
    let entries = current_inventory(client, desired, &keep).await?;
    record_inventory(client, database, &desired.environment, &entries).await?;
    Ok(())
}
