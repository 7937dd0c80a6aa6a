//! The ledger against the in-process emulator (which enforces D1's limits
//! as Cloudflare does): inventories of thousands of entries, writes cut
//! between requests, a version-1 ledger read and migrated, and the
//! journal's batched writes.

use serde::Deserialize;

use super::journal::{self, ApplyStart, StepFinish, StepStart};
use super::*;
use crate::cloudflare::{ClientConfig, Token};
use crate::emulator::{self, Emulator};
use crate::model::ResourceKind;

const TOKEN: &str = "ledger-test-token";
const ACCOUNT: &str = "0123456789abcdef0123456789abcdef";

struct Harness {
    emulator: Emulator,
    client: Client,
    _dir: tempfile::TempDir,
}

async fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let emulator = emulator::start(emulator::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        state_dir: dir.path().to_path_buf(),
        token: TOKEN.into(),
        account_id: ACCOUNT.into(),
        zones: Vec::new(),
    })
    .await
    .expect("emulator starts");
    let mut config = ClientConfig::new(emulator.base_url(), Token::new(TOKEN), ACCOUNT);
    config.rate_limit = None;
    let client = Client::new(config).unwrap();
    Harness {
        emulator,
        client,
        _dir: dir,
    }
}

impl Harness {
    /// D1 query requests the emulator has answered so far.
    async fn queries(&self) -> u64 {
        let url = format!("http://{}/__emulator/stats", self.emulator.local_addr());
        let stats: serde_json::Value = reqwest::Client::new()
            .get(url)
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        stats["endpoints"]["POST /accounts/{account_id}/d1/database/{database_id}/query"]
            .as_u64()
            .unwrap_or(0)
    }

    /// The rows of `statement`, as `T`.
    async fn rows<T: serde::de::DeserializeOwned>(&self, db: &str, statement: Statement) -> Vec<T> {
        self.client.d1_query_as(db, &statement).await.unwrap()
    }

    async fn count(&self, db: &str, sql: &str, environment: &str) -> i64 {
        #[derive(Deserialize)]
        struct Count {
            n: i64,
        }
        let rows: Vec<Count> = self.rows(db, Statement::new(sql).bind(environment)).await;
        rows[0].n
    }
}

/// `n` KV entries whose keys, ids and names are long (64, 32 and 200
/// bytes): about 300 bytes of values per row.
fn inventory(n: usize, tag: &str) -> Vec<InventoryEntry> {
    let mut entries: Vec<InventoryEntry> = (0..n)
        .map(|i| {
            let key = format!("{tag}-{i:06}-{}", "k".repeat(64 - tag.len() - 8));
            InventoryEntry {
                address: Address::new(ResourceKind::KvNamespaces, key),
                id: format!("{:032x}", i + 1),
                name: format!("kk-{tag}-{i}-{}", "n".repeat(180)),
                protect: i % 7 == 0,
            }
        })
        .collect();
    entries.sort();
    entries
}

#[tokio::test]
async fn an_inventory_of_5000_entries_is_written_in_two_requests_and_read_back_whole() {
    let h = harness().await;
    let db = open(&h.client, "flareops-state").await.unwrap();
    let entries = inventory(5_000, "big");
    let before = h.queries().await;
    record_inventory(&h.client, &db, "production", &entries)
        .await
        .expect("a write under D1's limits");
    let requests = h.queries().await - before;
    // 5,000 rows of ~300 bytes of values: 1.6 MB, over a 1 MB budget.
    assert_eq!(requests, 2, "rows in as few requests as the budget allows");
    let before = h.queries().await;
    let read = read_inventory(&h.client, &db, "production").await.unwrap();
    assert_eq!(h.queries().await - before, 1, "one read");
    assert_eq!(read.len(), 5_000);
    assert_eq!(read, entries, "every entry, exactly");
    // Another environment's inventory is separate.
    record_inventory(&h.client, &db, "staging", &entries[..10])
        .await
        .unwrap();
    let others = other_inventories(&h.client, &db, "staging").await.unwrap();
    assert_eq!(others, entries);
    let plan = read_for_plan(&h.client, &db, "production").await.unwrap();
    assert_eq!(plan.inventory, entries);
}

#[tokio::test]
async fn a_write_that_d1_would_refuse_as_one_statement_passes_in_chunks() {
    let h = harness().await;
    let db = open(&h.client, "flareops-state").await.unwrap();
    let entries = inventory(1_000, "mid");
    // The rows as one statement (what version 1 sent, with values bound):
    // far over both limits, which the emulator enforces like D1.
    let mut one = Statement::new(
        "INSERT INTO inventory_entries (environment, generation, address, cloudflare_id, name, protect) VALUES ",
    );
    for (i, entry) in entries.iter().enumerate() {
        if i > 0 {
            one.push_sql(", ");
        }
        let row = format!(
            "('p', 'g', {}, {}, {}, {})",
            one.param(entry.address.to_string()),
            one.param(entry.id.as_str()),
            one.param(entry.name.as_str()),
            one.param(entry.protect)
        );
        one.push_sql(&row);
    }
    let refused = h.client.d1_run(&db, &[one]).await.unwrap_err();
    assert!(
        matches!(
            refused,
            ClientError::D1Limit {
                exceeded: D1LimitError::TooManyParameters {
                    count: 4_000,
                    limit: 100
                },
                ..
            }
        ),
        "{refused}"
    );
    record_inventory(&h.client, &db, "p", &entries)
        .await
        .unwrap();
    assert_eq!(read_inventory(&h.client, &db, "p").await.unwrap(), entries);
}

#[test]
fn every_statement_and_request_of_a_write_stays_under_the_limits() {
    let entries = inventory(5_000, "lim");
    let limits = D1Limits::CLOUDFLARE;
    let requests = inventory_write("production", "g1", &entries, &limits).unwrap();
    assert_eq!(requests.len(), 2);
    let statements: Vec<&Statement> = requests.iter().flatten().collect();
    // 24 rows per statement (2 shared parameters + 4 per row <= 100).
    assert_eq!(statements.len(), 5_000usize.div_ceil(24) + 2);
    for statement in &statements {
        assert!(
            statement.params().len() <= 100,
            "{}",
            statement.params().len()
        );
        assert!(statement.sql().len() <= 100_000);
    }
    for request in &requests {
        let bytes = serde_json::to_vec(request).unwrap().len();
        assert!(bytes <= limits.request_bytes + 1, "{bytes}");
    }
    // The switch and the clean-up close the last request.
    let last = requests.last().unwrap();
    assert!(
        last[last.len() - 2]
            .sql()
            .starts_with("INSERT INTO inventory_generations")
    );
    assert!(
        last[last.len() - 1]
            .sql()
            .starts_with("DELETE FROM inventory_entries")
    );
    // An empty inventory is one request: the switch and the clean-up.
    let empty = inventory_write("production", "g2", &[], &limits).unwrap();
    assert_eq!(empty.len(), 1);
    assert_eq!(empty[0].len(), 2);
}

#[tokio::test]
async fn a_write_cut_between_chunks_leaves_the_old_inventory_in_force_and_the_next_repairs_it() {
    let h = harness().await;
    let db = open(&h.client, "flareops-state").await.unwrap();
    let old = inventory(300, "old");
    record_inventory(&h.client, &db, "production", &old)
        .await
        .unwrap();
    let new = inventory(5_000, "new");
    // A small budget: many requests, so the write can be cut between them.
    let limits = D1Limits {
        request_bytes: 100_000,
        ..D1Limits::CLOUDFLARE
    };
    let requests = inventory_write("production", "cut", &new, &limits).unwrap();
    assert!(requests.len() >= 10, "{} requests", requests.len());
    // The run dies after half of its chunks.
    for request in &requests[..requests.len() / 2] {
        h.client.d1_run_idempotent(&db, request).await.unwrap();
    }
    assert_eq!(
        read_inventory(&h.client, &db, "production").await.unwrap(),
        old,
        "the old inventory stays in force"
    );
    // Even the last request alone (rows missing) does not switch.
    let results = h
        .client
        .d1_run_idempotent(&db, requests.last().unwrap())
        .await
        .unwrap();
    assert!(results[results.len() - 2].results.is_empty(), "no switch");
    assert_eq!(
        read_inventory(&h.client, &db, "production").await.unwrap(),
        old,
        "an incomplete generation is never made current"
    );
    // The next run writes a complete generation and removes the pieces.
    record_inventory_with(&h.client, &db, "production", &new, &limits)
        .await
        .unwrap();
    assert_eq!(
        read_inventory(&h.client, &db, "production").await.unwrap(),
        new
    );
    let rows = h
        .count(
            &db,
            "SELECT count(*) AS n FROM inventory_entries WHERE environment = ?1",
            "production",
        )
        .await;
    assert_eq!(rows, 5_000, "the cut generation and the old one are gone");
}

#[tokio::test]
async fn a_repeated_request_of_a_write_changes_nothing() {
    let h = harness().await;
    let db = open(&h.client, "flareops-state").await.unwrap();
    let entries = inventory(100, "rep");
    let requests = inventory_write("production", "once", &entries, &D1Limits::CLOUDFLARE).unwrap();
    for _ in 0..2 {
        for request in &requests {
            let results = h.client.d1_run_idempotent(&db, request).await.unwrap();
            assert!(!results[results.len() - 2].results.is_empty(), "switched");
        }
    }
    assert_eq!(
        read_inventory(&h.client, &db, "production").await.unwrap(),
        entries
    );
}

/// The schema and rows a version-1 flareops wrote.
async fn version_1_ledger(h: &Harness) -> String {
    let db = h
        .client
        .create_d1_database("flareops-state", None, None)
        .await
        .unwrap()
        .uuid;
    h.client
        .d1_query(
            &db,
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
);
CREATE TABLE IF NOT EXISTS secret_fingerprints (
  environment TEXT NOT NULL,
  worker TEXT NOT NULL,
  name TEXT NOT NULL,
  fingerprint TEXT NOT NULL,
  PRIMARY KEY (environment, worker, name)
);
INSERT OR IGNORE INTO flareops_meta (key, value) VALUES ('secret_salt', 'salt');
INSERT INTO flareops_meta (key, value) VALUES ('schema_version', '1');
INSERT INTO migrations (environment, database_name, name, sha256) VALUES ('production', 'kk-db', '0001_init.sql', 'abc');",
        )
        .await
        .unwrap();
    for (environment, entries) in [
        ("production", inventory(3, "prod")),
        ("staging", inventory(2, "stag")),
    ] {
        for entry in entries {
            let insert = Statement::new(
                "INSERT INTO inventory (environment, address, cloudflare_id, name, protect) VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .bind(environment)
            .bind(entry.address.to_string())
            .bind(entry.id)
            .bind(entry.name)
            .bind(entry.protect);
            h.client.d1_run(&db, &[insert]).await.unwrap();
        }
    }
    db
}

#[tokio::test]
async fn a_version_1_ledger_is_read_before_and_after_its_migration() {
    let h = harness().await;
    let db = version_1_ledger(&h).await;
    let production = inventory(3, "prod");
    let staging = inventory(2, "stag");
    // A plan before any apply of this version reads the version-1 table.
    let plan = read_for_plan(&h.client, &db, "production").await.unwrap();
    assert_eq!(plan.inventory, production);
    assert!(plan.fingerprints.is_some(), "the salt is read");
    assert_eq!(plan.migration_hashes.len(), 1);
    assert_eq!(
        read_inventory(&h.client, &db, "staging").await.unwrap(),
        staging
    );
    assert_eq!(
        other_inventories(&h.client, &db, "production")
            .await
            .unwrap(),
        staging
    );

    // Apply opens it: migrated to version 2, in one more request.
    let before = h.queries().await;
    assert_eq!(open(&h.client, "flareops-state").await.unwrap(), db);
    assert_eq!(
        h.queries().await - before,
        2,
        "the schema, then the migration"
    );
    #[derive(Deserialize)]
    struct Value {
        value: String,
    }
    let version: Vec<Value> = h
        .rows(
            &db,
            Statement::new("SELECT value FROM flareops_meta WHERE key = ?1").bind("schema_version"),
        )
        .await;
    assert_eq!(version[0].value, "2");
    let old_table = h
        .count(
            &db,
            "SELECT count(*) AS n FROM sqlite_master WHERE name = ?1",
            "inventory",
        )
        .await;
    assert_eq!(old_table, 0, "the version-1 table is gone");
    assert_eq!(
        read_inventory(&h.client, &db, "production").await.unwrap(),
        production
    );
    let plan = read_for_plan(&h.client, &db, "staging").await.unwrap();
    assert_eq!(plan.inventory, staging);

    // Sending the migration again (a lost answer) changes nothing.
    let again: Vec<Statement> = MIGRATE_TO_2
        .iter()
        .map(|sql| Statement::new(*sql))
        .collect();
    h.client.d1_run_idempotent(&db, &again).await.unwrap();
    assert_eq!(
        read_inventory(&h.client, &db, "production").await.unwrap(),
        production
    );
    // Opened again: one request, nothing to migrate.
    let before = h.queries().await;
    open(&h.client, "flareops-state").await.unwrap();
    assert_eq!(h.queries().await - before, 1);

    // The next write replaces the migrated generation and removes it.
    let fresh = inventory(4, "prod");
    record_inventory(&h.client, &db, "production", &fresh)
        .await
        .unwrap();
    assert_eq!(
        read_inventory(&h.client, &db, "production").await.unwrap(),
        fresh
    );
    let rows = h
        .count(
            &db,
            "SELECT count(*) AS n FROM inventory_entries WHERE environment = ?1",
            "production",
        )
        .await;
    assert_eq!(rows, 4);
    assert_eq!(
        read_inventory(&h.client, &db, "staging").await.unwrap(),
        staging,
        "the other environment keeps its migrated inventory"
    );
}

#[tokio::test]
async fn a_ledger_newer_than_this_flareops_is_refused() {
    let h = harness().await;
    let db = open(&h.client, "flareops-state").await.unwrap();
    h.client
        .d1_run(
            &db,
            &[
                Statement::new("UPDATE flareops_meta SET value = ?1 WHERE key = 'schema_version'")
                    .bind("3"),
            ],
        )
        .await
        .unwrap();
    let error = open(&h.client, "flareops-state").await.unwrap_err();
    assert!(matches!(error, LedgerError::TooNew { found: 3 }), "{error}");
}

#[tokio::test]
async fn a_wave_of_journal_steps_is_written_in_one_request_each_way() {
    let h = harness().await;
    let db = open(&h.client, "flareops-state").await.unwrap();
    journal::start(
        &h.client,
        &db,
        &ApplyStart {
            id: "apply-1",
            environment: "production",
            git_commit: "abc123",
            actor: "o'brien",
            summary: "100 to create",
        },
    )
    .await
    .unwrap();
    let addresses: Vec<String> = (0..100).map(|i| format!("kv_namespaces.n{i}")).collect();
    let json = format!(
        "[{{\"op\":\"create\",\"note\":\"{}\"}}]",
        "'; DROP TABLE applies; --"
    );
    let started: Vec<StepStart<'_>> = addresses
        .iter()
        .enumerate()
        .map(|(seq, address)| StepStart {
            seq,
            address,
            kind: "create",
            steps_json: &json,
        })
        .collect();
    let before = h.queries().await;
    journal::steps_started(&h.client, &db, "apply-1", &started)
        .await
        .unwrap();
    assert_eq!(h.queries().await - before, 1, "100 steps, one request");
    let details: Vec<String> = (0..100)
        .map(|i| format!("created n{i} (it's done)"))
        .collect();
    let finished: Vec<StepFinish<'_>> = details
        .iter()
        .enumerate()
        .map(|(seq, detail)| StepFinish {
            seq,
            succeeded: seq != 42,
            detail,
        })
        .collect();
    let before = h.queries().await;
    journal::steps_finished(&h.client, &db, "apply-1", &finished)
        .await
        .unwrap();
    assert_eq!(h.queries().await - before, 1, "100 steps, one request");
    // Repeating a wave leaves the same rows.
    journal::steps_finished(&h.client, &db, "apply-1", &finished)
        .await
        .unwrap();
    journal::steps_started(&h.client, &db, "apply-1", &[])
        .await
        .unwrap();

    #[derive(Deserialize)]
    struct Step {
        seq: i64,
        address: String,
        steps_json: String,
        status: String,
        detail: Option<String>,
        finished_at: Option<String>,
    }
    let steps: Vec<Step> = h
        .rows(
            &db,
            Statement::new(
                "SELECT seq, address, steps_json, status, detail, finished_at FROM apply_steps WHERE apply_id = ?1 ORDER BY seq",
            )
            .bind("apply-1"),
        )
        .await;
    assert_eq!(steps.len(), 100);
    for step in &steps {
        let seq = usize::try_from(step.seq).unwrap();
        assert_eq!(step.address, addresses[seq]);
        assert_eq!(step.steps_json, json);
        assert_eq!(step.status, if seq == 42 { "failed" } else { "done" });
        assert_eq!(step.detail.as_deref(), Some(details[seq].as_str()));
        assert!(step.finished_at.is_some());
    }
    // The single-step functions still work, on the same rows.
    journal::step_started(
        &h.client,
        &db,
        "apply-1",
        42,
        "kv_namespaces.n42",
        "create",
        "[]",
    )
    .await
    .unwrap();
    journal::step_finished(&h.client, &db, "apply-1", 42, true, "created n42")
        .await
        .unwrap();
    journal::finish(&h.client, &db, "apply-1", journal::ApplyStatus::Succeeded)
        .await
        .unwrap();
    let history = journal::history(&h.client, &db, "production", 10)
        .await
        .unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].actor, "o'brien");
    assert_eq!(history[0].status, journal::ShownStatus::Succeeded);
    let failed = h
        .count(
            &db,
            "SELECT count(*) AS n FROM apply_steps WHERE apply_id = ?1 AND status = 'failed'",
            "apply-1",
        )
        .await;
    assert_eq!(failed, 0);
}

#[tokio::test]
async fn reads_of_a_ledger_without_tables_are_empty() {
    let h = harness().await;
    let db = h
        .client
        .create_d1_database("flareops-state", None, None)
        .await
        .unwrap()
        .uuid;
    assert!(
        read_inventory(&h.client, &db, "p")
            .await
            .unwrap()
            .is_empty()
    );
    let plan = read_for_plan(&h.client, &db, "p").await.unwrap();
    assert!(plan.inventory.is_empty() && plan.fingerprints.is_none());
    assert!(
        journal::history(&h.client, &db, "p", 5)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(locks::read(&h.client, &db, "p").await.unwrap().is_none());
}

#[tokio::test]
async fn a_lock_is_taken_renewed_read_and_released_with_bound_values() {
    let h = harness().await;
    let db = open(&h.client, "flareops-state").await.unwrap();
    let lease = std::time::Duration::from_secs(60);
    let lock = locks::try_acquire(&h.client, &db, "prod'uction", "me (apply 1)", "host", lease)
        .await
        .unwrap()
        .expect("free");
    let held = locks::try_acquire(&h.client, &db, "prod'uction", "you", "other", lease)
        .await
        .unwrap()
        .expect_err("held");
    assert_eq!(held.holder, "me (apply 1)");
    assert!(held.lease_expires_at > held.started_at, "{held:?}");
    assert!(lock.renew(&h.client).await.unwrap());
    let read = locks::read(&h.client, &db, "prod'uction").await.unwrap();
    assert_eq!(read.map(|info| info.host), Some("host".to_string()));
    assert!(
        !locks::remove(&h.client, &db, "prod'uction", "you")
            .await
            .unwrap()
    );
    lock.release(&h.client).await.unwrap();
    assert!(
        locks::read(&h.client, &db, "prod'uction")
            .await
            .unwrap()
            .is_none()
    );
}
