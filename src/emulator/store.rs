//! Persistent state: one SQLite file (`emulator.sqlite3`) for all metadata, KV data, R2 buckets
//! and object metadata, and Workers (scripts, versions with their content-addressed modules,
//! deployments, secrets, triggers, routes, domains, Durable Object namespaces, zones), DNS records,
//! Pages projects, deployments, domains and uploaded assets; one SQLite
//! file per D1 database under `d1/`; one file per R2 object body under `r2/objects/` (named by
//! the object's version, see `r2::objects`). Tables are only ever added (`CREATE TABLE IF NOT EXISTS`), so a state directory written
//! by an older emulator opens unchanged.
//!
//! SQLite is blocking, so every access runs on tokio's blocking pool ([`Store::call`],
//! [`D1Files::call`]) behind a mutex per file: writes are serialized, none is lost under
//! concurrent clients. WAL mode on the metadata file keeps commits durable; `flush` checkpoints
//! it on shutdown so the state directory holds plain database files. D1 files stay in
//! rollback-journal mode (Time Travel copies them between transactions) with
//! `synchronous = NORMAL` ([`configure_d1`]): a commit survives the emulator being killed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::Connection;

use super::envelope::{ApiError, ApiResult};
use super::{Clock, EmulatorError};

const METADATA_FILE: &str = "emulator.sqlite3";
const D1_DIR: &str = "d1";
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS kv_namespaces (
    id           TEXT PRIMARY KEY,
    title        TEXT NOT NULL UNIQUE,
    jurisdiction TEXT
);
CREATE TABLE IF NOT EXISTS kv_entries (
    namespace_id TEXT NOT NULL,
    key          TEXT NOT NULL,
    value        BLOB NOT NULL,
    metadata     TEXT,
    expiration   INTEGER,
    PRIMARY KEY (namespace_id, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS d1_databases (
    uuid                  TEXT PRIMARY KEY,
    name                  TEXT NOT NULL UNIQUE,
    created_at            TEXT NOT NULL,
    primary_location_hint TEXT,
    jurisdiction          TEXT,
    created_in_region     TEXT NOT NULL,
    seq                   INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS d1_metrics (
    uuid          TEXT NOT NULL,
    hour          INTEGER NOT NULL,
    read_queries  INTEGER NOT NULL DEFAULT 0,
    write_queries INTEGER NOT NULL DEFAULT 0,
    rows_read     INTEGER NOT NULL DEFAULT 0,
    rows_written  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (uuid, hour)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS r2_buckets (
    jurisdiction  TEXT NOT NULL,
    name          TEXT NOT NULL,
    creation_date TEXT NOT NULL,
    location      TEXT NOT NULL,
    storage_class TEXT NOT NULL,
    PRIMARY KEY (jurisdiction, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS r2_objects (
    jurisdiction    TEXT NOT NULL,
    bucket          TEXT NOT NULL,
    key             TEXT NOT NULL,
    version         TEXT NOT NULL,
    size            INTEGER NOT NULL,
    etag            TEXT NOT NULL,
    uploaded        TEXT NOT NULL,
    http_metadata   TEXT NOT NULL,
    custom_metadata TEXT NOT NULL,
    storage_class   TEXT NOT NULL,
    PRIMARY KEY (jurisdiction, bucket, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS zones (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    created_on TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS worker_scripts (
    name               TEXT PRIMARY KEY,
    tag                TEXT NOT NULL,
    created_on         TEXT NOT NULL,
    modified_on        TEXT NOT NULL,
    migration_tag      TEXT,
    last_deployed_from TEXT NOT NULL,
    script_settings    TEXT NOT NULL,
    subdomain_enabled  INTEGER NOT NULL,
    previews_enabled   INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS worker_versions (
    id           TEXT PRIMARY KEY,
    script       TEXT NOT NULL,
    number       INTEGER NOT NULL,
    created_on   TEXT NOT NULL,
    source       TEXT NOT NULL,
    author_email TEXT NOT NULL,
    annotations  TEXT NOT NULL,
    runtime      TEXT NOT NULL,
    bindings     TEXT NOT NULL,
    etag         TEXT NOT NULL,
    handlers     TEXT NOT NULL,
    UNIQUE (script, number)
);
CREATE TABLE IF NOT EXISTS worker_version_modules (
    version_id   TEXT NOT NULL,
    position     INTEGER NOT NULL,
    name         TEXT NOT NULL,
    content_type TEXT NOT NULL,
    digest       TEXT NOT NULL,
    PRIMARY KEY (version_id, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS worker_version_secrets (
    version_id TEXT NOT NULL,
    name       TEXT NOT NULL,
    binding    TEXT NOT NULL,
    PRIMARY KEY (version_id, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS worker_blobs (
    digest  TEXT PRIMARY KEY,
    content BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS worker_deployments (
    id           TEXT PRIMARY KEY,
    script       TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    created_on   TEXT NOT NULL,
    source       TEXT NOT NULL,
    strategy     TEXT NOT NULL,
    author_email TEXT NOT NULL,
    annotations  TEXT NOT NULL,
    versions     TEXT NOT NULL,
    UNIQUE (script, seq)
);
CREATE TABLE IF NOT EXISTS worker_schedules (
    script      TEXT NOT NULL,
    cron        TEXT NOT NULL,
    created_on  TEXT NOT NULL,
    modified_on TEXT NOT NULL,
    PRIMARY KEY (script, cron)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS worker_routes (
    id         TEXT PRIMARY KEY,
    zone_id    TEXT NOT NULL,
    pattern    TEXT NOT NULL,
    script     TEXT,
    created_on TEXT NOT NULL,
    UNIQUE (zone_id, pattern)
);
CREATE TABLE IF NOT EXISTS worker_domains (
    id          TEXT PRIMARY KEY,
    hostname    TEXT NOT NULL UNIQUE,
    service     TEXT NOT NULL,
    environment TEXT NOT NULL,
    zone_id     TEXT NOT NULL,
    cert_id     TEXT NOT NULL,
    created_on  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS durable_object_namespaces (
    id         TEXT PRIMARY KEY,
    script     TEXT NOT NULL,
    class      TEXT NOT NULL,
    use_sqlite INTEGER NOT NULL,
    created_on TEXT NOT NULL,
    UNIQUE (script, class)
);
CREATE TABLE IF NOT EXISTS queues (
    id                       TEXT PRIMARY KEY,
    name                     TEXT NOT NULL UNIQUE,
    delivery_delay           INTEGER NOT NULL DEFAULT 0,
    message_retention_period INTEGER NOT NULL DEFAULT 345600,
    delivery_paused          INTEGER NOT NULL DEFAULT 0,
    created_on               TEXT NOT NULL,
    modified_on              TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS dns_records (
    id                  TEXT PRIMARY KEY,
    zone_id             TEXT NOT NULL,
    type                TEXT NOT NULL,
    name                TEXT NOT NULL,
    content             TEXT NOT NULL,
    data                TEXT,
    priority            INTEGER,
    proxied             INTEGER NOT NULL,
    ttl                 INTEGER NOT NULL,
    comment             TEXT,
    tags                TEXT NOT NULL,
    created_on          TEXT NOT NULL,
    modified_on         TEXT NOT NULL,
    comment_modified_on TEXT,
    tags_modified_on    TEXT
);
CREATE INDEX IF NOT EXISTS dns_records_by_name ON dns_records (zone_id, name);
CREATE TABLE IF NOT EXISTS pages_projects (
    id                   TEXT PRIMARY KEY,
    name                 TEXT NOT NULL UNIQUE,
    production_branch    TEXT NOT NULL,
    created_on           TEXT NOT NULL,
    canonical_deployment TEXT,
    deployment_configs   TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS pages_deployments (
    id             TEXT PRIMARY KEY,
    project        TEXT NOT NULL,
    seq            INTEGER NOT NULL,
    environment    TEXT NOT NULL,
    branch         TEXT NOT NULL,
    commit_hash    TEXT NOT NULL,
    commit_message TEXT NOT NULL,
    commit_dirty   INTEGER NOT NULL,
    manifest       TEXT NOT NULL,
    created_on     TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS pages_domains (
    id         TEXT PRIMARY KEY,
    project    TEXT NOT NULL,
    name       TEXT NOT NULL UNIQUE,
    zone_id    TEXT NOT NULL,
    created_on TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS pages_assets (
    hash         TEXT PRIMARY KEY,
    content_type TEXT NOT NULL,
    content      BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS queue_consumers (
    id                TEXT PRIMARY KEY,
    queue_id          TEXT NOT NULL,
    script            TEXT,
    type              TEXT NOT NULL,
    settings          TEXT NOT NULL,
    dead_letter_queue TEXT,
    created_on        TEXT NOT NULL
);
";

/// The metadata database, shared by all handlers.
#[derive(Clone)]
pub(crate) struct Store {
    conn: Arc<Mutex<Connection>>,
}

impl Store {
    /// Opens (creating if needed) `state_dir/emulator.sqlite3` and applies the schema.
    pub fn open(state_dir: &Path) -> Result<Store, EmulatorError> {
        let path = state_dir.join(METADATA_FILE);
        let open_error = |source| EmulatorError::OpenDatabase {
            path: path.clone(),
            source,
        };
        let conn = Connection::open(&path).map_err(open_error)?;
        conn.busy_timeout(Duration::from_secs(30))
            .map_err(open_error)?;
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
            .map_err(open_error)?;
        conn.execute_batch(SCHEMA).map_err(open_error)?;
        let version: Option<String> = conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'schema_version'",
                [],
                |row| row.get(0),
            )
            .map(Some)
            .or_else(|error| match error {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                other => Err(other),
            })
            .map_err(open_error)?;
        match version {
            None => {
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', ?1)",
                    [SCHEMA_VERSION.to_string()],
                )
                .map_err(open_error)?;
            }
            Some(found) if found == SCHEMA_VERSION.to_string() => {}
            Some(found) => {
                return Err(EmulatorError::IncompatibleState {
                    path,
                    found,
                    expected: SCHEMA_VERSION,
                });
            }
        }
        Ok(Store {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `operation` with exclusive access to the metadata connection, on the blocking pool.
    pub async fn call<T, F>(&self, operation: F) -> ApiResult<T>
    where
        F: FnOnce(&mut Connection) -> ApiResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().unwrap_or_else(PoisonError::into_inner);
            operation(&mut guard)
        })
        .await
        .map_err(ApiError::internal)?
    }

    /// Checkpoints the WAL into the main file (called on shutdown).
    pub fn flush(&self) -> rusqlite::Result<()> {
        let conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
    }
}

/// Settings of every D1 connection. D1 files stay in rollback-journal mode (Time Travel copies
/// the main file between transactions), with `synchronous = NORMAL`: a commit survives the
/// emulator being killed at any point, like the metadata file's, at half the fsyncs of `FULL`.
pub(crate) fn configure_d1(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_secs(30))?;
    conn.execute_batch("PRAGMA synchronous = NORMAL;")
}

/// The D1 database files, each opened lazily and kept open behind its own mutex, and the clock
/// their Time Travel history is stamped with.
#[derive(Clone)]
pub(crate) struct D1Files {
    dir: PathBuf,
    open: Arc<Mutex<HashMap<String, Arc<Mutex<Connection>>>>>,
    clock: Clock,
}

impl D1Files {
    /// Creates `state_dir/d1/` if needed.
    pub fn new(state_dir: &Path, clock: Clock) -> Result<D1Files, EmulatorError> {
        let dir = state_dir.join(D1_DIR);
        super::private_dir(&dir).map_err(|source| EmulatorError::CreateStateDir {
            path: dir.clone(),
            source,
        })?;
        Ok(D1Files {
            dir,
            open: Arc::new(Mutex::new(HashMap::new())),
            clock,
        })
    }

    /// The emulator's clock.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The file holding database `uuid` (uuids are generated here, never taken from a client).
    pub fn path(&self, uuid: &str) -> PathBuf {
        self.dir.join(format!("{uuid}.sqlite3"))
    }

    fn connection(&self, uuid: &str) -> ApiResult<Arc<Mutex<Connection>>> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(conn) = open.get(uuid) {
            return Ok(Arc::clone(conn));
        }
        let path = self.path(uuid);
        let conn = Connection::open(&path).map_err(|error| {
            ApiError::internal(format!("opening D1 file {}: {error}", path.display()))
        })?;
        configure_d1(&conn)?;
        let conn = Arc::new(Mutex::new(conn));
        open.insert(uuid.to_owned(), Arc::clone(&conn));
        Ok(conn)
    }

    /// Runs `operation` on database `uuid`'s connection, on the blocking pool.
    pub async fn call<T, F>(&self, uuid: &str, operation: F) -> ApiResult<T>
    where
        F: FnOnce(&mut Connection) -> ApiResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let files = self.clone();
        let uuid = uuid.to_owned();
        tokio::task::spawn_blocking(move || {
            let conn = files.connection(&uuid)?;
            let mut guard = conn.lock().unwrap_or_else(PoisonError::into_inner);
            operation(&mut guard)
        })
        .await
        .map_err(ApiError::internal)?
    }

    /// Creates the (empty) file for a new database.
    pub async fn create(&self, uuid: &str) -> ApiResult<()> {
        self.call(uuid, |conn| {
            // Touch the file so it exists even before the first write.
            conn.execute_batch("PRAGMA user_version = 0;")?;
            Ok(())
        })
        .await
    }

    /// Closes and deletes database `uuid`'s file.
    pub async fn remove(&self, uuid: &str) -> ApiResult<()> {
        let files = self.clone();
        let uuid = uuid.to_owned();
        tokio::task::spawn_blocking(move || {
            let conn = files
                .open
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&uuid);
            // Wait for any query still running on it, then close it.
            if let Some(conn) = conn {
                let guard = conn.lock().unwrap_or_else(PoisonError::into_inner);
                drop(guard);
            }
            let path = files.path(&uuid);
            for candidate in [
                path.clone(),
                path.with_extension("sqlite3-wal"),
                path.with_extension("sqlite3-shm"),
                path.with_extension("sqlite3-journal"),
            ] {
                match std::fs::remove_file(&candidate) {
                    Ok(()) => {}
                    Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                    Err(error) => {
                        return Err(ApiError::internal(format!(
                            "removing {}: {error}",
                            candidate.display()
                        )));
                    }
                }
            }
            Ok(())
        })
        .await
        .map_err(ApiError::internal)?
    }

    /// Closes every open D1 connection (called on shutdown).
    pub fn close_all(&self) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.clear();
    }
}
