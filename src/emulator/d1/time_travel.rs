//! D1 Time Travel: `GET …/{id}/time_travel/bookmark[?timestamp=]` and
//! `POST …/{id}/time_travel/restore?bookmark=|timestamp=`, built on whole-file SQLite snapshots.
//!
//! Wire format (PY `types/d1/database/time_travel_*`, WR `src/d1/timeTravel/*`, DOCS
//! d1/reference/time-travel): both endpoints take their arguments in the query string. The
//! bookmark endpoint answers `{bookmark}`: the current one, or the nearest at or before
//! `timestamp` (RFC 3339 such as wrangler's `toISOString()`, or Unix seconds). Restore answers
//! `{bookmark, previous_bookmark, message}`: `bookmark` is the one restored to (the docs' output
//! prints the same bookmark before and after), `previous_bookmark` is the state just before the
//! restore, so restoring to it undoes the restore. Restoring never removes other bookmarks.
//!
//! Bookmarks look like Cloudflare's (`00000085-0000024c-00004c6d-8e61117bf38d7adb71b934ebbf891683`,
//! four lowercase-hex groups of 8, 8, 8 and 32 digits) and sort oldest to newest:
//! `SEQUENCE-MILLISECOND_OF_DAY-DAY-DIGEST`, where the sequence counts this database's snapshots,
//! the next two give the snapshot's UTC time (day since the Unix epoch, millisecond within it),
//! and the digest is the first 128 bits of SHA-256 over the database uuid, sequence and time, so
//! a bookmark of another database (or a made-up one) is refused. The groups' meaning inside
//! Cloudflare is not documented; only the shape and the ordering are imitated.
//!
//! **Snapshots.** A snapshot is a byte copy of the database file, taken while holding the
//! database's connection mutex (between transactions, in rollback-journal mode, the main file is
//! complete), written to a temporary name and renamed to `d1/time-travel/{uuid}/{bookmark}.sqlite3`.
//! One is taken when the database is created, after every request with a non-read-only statement
//! that really changed the file, and when a bookmark is asked for while the file changed since
//! the newest snapshot ("changed" = the SQLite file change counter at byte 24 of the header, or
//! the size, differs from the newest snapshot's). So every committed state has a snapshot and a
//! timestamp maps to the exact state at that time. The cost is one copy of the file per write
//! request (in-kernel `copy_file_range` on Linux, no fsync): proportional to the database size,
//! a few milliseconds for a few MB. A bounded schedule would be cheaper for write-heavy loads but
//! would make timestamps resolve to stale states; the emulator serves tests and small databases,
//! so exactness wins.
//!
//! **Retention.** Cloudflare keeps 30 days. Here: nothing older than 30 days; the newest snapshot
//! always; the newest [`MAX_BOOKMARKED_SNAPSHOTS`] snapshots that were handed out as a bookmark
//! (renamed `{bookmark}.kept.sqlite3`); and the newest [`MAX_AUTOMATIC_SNAPSHOTS`] others. Disk
//! use is therefore bounded by about (16 + 64) times the database size. A timestamp whose state
//! fell between pruned snapshots is refused rather than answered with a wrong state.
//!
//! **Restore** replaces the file atomically: the snapshot is copied next to the live file, the
//! connection is closed, the copy is renamed over the live file, and the connection reopened.
//! The restored state becomes the newest snapshot (a hard link, free), so later timestamps map to
//! it and not to the state that was replaced.
//!
//! Errors (the real codes are not published; 7400 is D1's validation code used elsewhere here):
//! 400/7400 for a malformed or foreign bookmark, a bookmark no longer retained, a malformed
//! timestamp, a timestamp in the future or older than 30 days, or one before the database's
//! retained history; 404/7404 for an unknown database.

use std::path::{Path as FilePath, PathBuf};

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::{get, post};
use rusqlite::Connection;
use serde_json::json;
use sha2::{Digest as _, Sha256};

use super::{DatabasePath, VALIDATION, find, path_error};
use crate::emulator::envelope::{ApiError, ApiResult, QueryMap, query_map, success};
use crate::emulator::store::D1Files;
use crate::emulator::{API_PREFIX, Clock, SharedState};

/// Directory under `d1/` holding one snapshot directory per database.
const HISTORY_DIR: &str = "time-travel";
/// Cloudflare's retention (DOCS: "Bookmarks older than 30 days are invalid").
const RETENTION_MILLIS: i64 = 30 * MILLIS_PER_DAY;
/// Snapshots taken after writes that nobody asked a bookmark for, kept per database.
pub(crate) const MAX_AUTOMATIC_SNAPSHOTS: usize = 16;
/// Snapshots handed out as bookmarks (their holders may restore to them), kept per database.
pub(crate) const MAX_BOOKMARKED_SNAPSHOTS: usize = 64;
/// A timestamp this far ahead of the emulator's clock still means "now" (clock skew).
const FUTURE_TOLERANCE_MILLIS: i64 = 60_000;
const MILLIS_PER_DAY: i64 = 86_400_000;
const SNAPSHOT_SUFFIX: &str = ".sqlite3";
const KEPT_SUFFIX: &str = ".kept.sqlite3";
const RESTORED_MESSAGE: &str = "Database restored successfully";

pub(crate) fn routes() -> Router<SharedState> {
    let base = format!("{API_PREFIX}/accounts/{{account_id}}/d1/database/{{database_id}}");
    Router::new()
        .route(&format!("{base}/time_travel/bookmark"), get(get_bookmark))
        .route(&format!("{base}/time_travel/restore"), post(restore))
}

// ---------------------------------------------------------------------------------------------
// Bookmarks
// ---------------------------------------------------------------------------------------------

/// A bookmark's parts: which snapshot of which database, taken when.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Bookmark {
    sequence: u32,
    /// Milliseconds since the Unix epoch (UTC).
    taken_at: i64,
    digest: String,
}

impl Bookmark {
    fn new(uuid: &str, sequence: u32, taken_at: i64) -> Bookmark {
        Bookmark {
            sequence,
            taken_at,
            digest: digest(uuid, sequence, taken_at),
        }
    }

    fn render(&self) -> String {
        let day = self.taken_at.div_euclid(MILLIS_PER_DAY);
        let millisecond = self.taken_at.rem_euclid(MILLIS_PER_DAY);
        format!(
            "{:08x}-{millisecond:08x}-{day:08x}-{}",
            self.sequence, self.digest
        )
    }

    /// Parses the shape only; whether it belongs to a database is [`Bookmark::belongs_to`].
    fn parse(text: &str) -> Option<Bookmark> {
        let parts: Vec<&str> = text.split('-').collect();
        let [sequence, millisecond, day, digest] = parts.as_slice() else {
            return None;
        };
        let hex = |part: &str, length: usize| {
            part.len() == length
                && part
                    .bytes()
                    .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
        };
        if !(hex(sequence, 8) && hex(millisecond, 8) && hex(day, 8) && hex(digest, 32)) {
            return None;
        }
        let sequence = u32::from_str_radix(sequence, 16).ok()?;
        let millisecond = i64::from_str_radix(millisecond, 16).ok()?;
        let day = i64::from_str_radix(day, 16).ok()?;
        if millisecond >= MILLIS_PER_DAY {
            return None;
        }
        Some(Bookmark {
            sequence,
            taken_at: day * MILLIS_PER_DAY + millisecond,
            digest: (*digest).to_owned(),
        })
    }

    fn belongs_to(&self, uuid: &str) -> bool {
        self.digest == digest(uuid, self.sequence, self.taken_at)
    }
}

fn digest(uuid: &str, sequence: u32, taken_at: i64) -> String {
    let hash = Sha256::digest(format!("{uuid}/{sequence}/{taken_at}").as_bytes());
    hex::encode(&hash[..16])
}

// ---------------------------------------------------------------------------------------------
// Snapshot history of one database
// ---------------------------------------------------------------------------------------------

/// One snapshot file.
#[derive(Debug, Clone)]
struct Snapshot {
    bookmark: Bookmark,
    /// Handed out as a bookmark: kept longer.
    kept: bool,
    path: PathBuf,
}

/// The live file of one database and its snapshots. Every method must run while the caller
/// holds the database's connection (inside [`D1Files::call`]), which serializes them with
/// queries and with each other.
#[derive(Debug, Clone)]
pub(crate) struct History {
    uuid: String,
    live: PathBuf,
    dir: PathBuf,
    clock: Clock,
}

/// What the SQLite header says about a file, to tell whether it changed.
#[derive(Debug, PartialEq, Eq)]
struct Fingerprint {
    change_counter: Option<[u8; 4]>,
    size: u64,
}

fn io_error(what: &str, path: &FilePath, error: std::io::Error) -> ApiError {
    ApiError::internal(format!("{what} {}: {error}", path.display()))
}

fn fingerprint(path: &FilePath) -> ApiResult<Option<Fingerprint>> {
    use std::io::Read as _;
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(io_error("opening", path, error)),
    };
    let size = file
        .metadata()
        .map_err(|error| io_error("reading the size of", path, error))?
        .len();
    let mut header = [0u8; 28];
    let change_counter = match file.read_exact(&mut header) {
        Ok(()) => Some([header[24], header[25], header[26], header[27]]),
        Err(_) => None,
    };
    Ok(Some(Fingerprint {
        change_counter,
        size,
    }))
}

impl History {
    pub fn new(files: &D1Files, uuid: &str) -> History {
        let live = files.path(uuid);
        let dir = live
            .parent()
            .map(|parent| parent.join(HISTORY_DIR).join(uuid))
            .unwrap_or_else(|| PathBuf::from(HISTORY_DIR).join(uuid));
        History {
            uuid: uuid.to_owned(),
            live,
            dir,
            clock: files.clock().clone(),
        }
    }

    /// The retained snapshots, oldest first.
    fn snapshots(&self) -> ApiResult<Vec<Snapshot>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => return Err(io_error("listing", &self.dir, error)),
        };
        let mut snapshots = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|error| io_error("listing", &self.dir, error))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let (stem, kept) = if let Some(stem) = name.strip_suffix(KEPT_SUFFIX) {
                (stem, true)
            } else if let Some(stem) = name.strip_suffix(SNAPSHOT_SUFFIX) {
                (stem, false)
            } else {
                continue;
            };
            if let Some(bookmark) = Bookmark::parse(stem) {
                snapshots.push(Snapshot {
                    bookmark,
                    kept,
                    path: entry.path(),
                });
            }
        }
        snapshots.sort_by_key(|snapshot| snapshot.bookmark.sequence);
        Ok(snapshots)
    }

    /// Whether the live file differs from the newest snapshot (or there is none).
    fn changed_since(&self, newest: Option<&Snapshot>) -> ApiResult<bool> {
        let Some(newest) = newest else {
            return Ok(true);
        };
        Ok(fingerprint(&self.live)? != fingerprint(&newest.path)?)
    }

    /// Takes a snapshot of the live file if it changed since the newest one. Returns the
    /// snapshots after pruning, newest last (never empty on success).
    fn record_if_changed(&self) -> ApiResult<Vec<Snapshot>> {
        let mut snapshots = self.snapshots()?;
        if self.changed_since(snapshots.last())? {
            let snapshot = self.new_snapshot(snapshots.last(), |target| {
                std::fs::copy(&self.live, target)
                    .map(drop)
                    .map_err(|error| io_error("copying", &self.live, error))
            })?;
            snapshots.push(snapshot);
        }
        self.prune(&mut snapshots, self.clock.unix_millis());
        Ok(snapshots)
    }

    /// Snapshots after a write request; a failure is logged, never turned into a failed write
    /// (the write is committed). The next bookmark request notices the change and retries.
    pub fn after_write(&self) {
        if let Err(error) = self.record_if_changed() {
            tracing::warn!(uuid = %self.uuid, error = %error.message, "D1 time travel snapshot failed");
        }
    }

    /// Creates the next snapshot file with `fill` (which writes the content to the given path).
    fn new_snapshot(
        &self,
        newest: Option<&Snapshot>,
        fill: impl FnOnce(&FilePath) -> ApiResult<()>,
    ) -> ApiResult<Snapshot> {
        std::fs::create_dir_all(&self.dir)
            .map_err(|error| io_error("creating", &self.dir, error))?;
        let sequence = newest.map_or(1, |snapshot| snapshot.bookmark.sequence.saturating_add(1));
        // Times never go backwards along the sequence, even if the clock does.
        let now = self.clock.unix_millis();
        let taken_at = newest.map_or(now, |snapshot| now.max(snapshot.bookmark.taken_at));
        let bookmark = Bookmark::new(&self.uuid, sequence, taken_at);
        let staging = self.dir.join(format!(".{}.partial", bookmark.render()));
        let path = self
            .dir
            .join(format!("{}{SNAPSHOT_SUFFIX}", bookmark.render()));
        let _ = std::fs::remove_file(&staging);
        if let Err(error) = fill(&staging) {
            let _ = std::fs::remove_file(&staging);
            return Err(error);
        }
        std::fs::rename(&staging, &path).map_err(|error| io_error("renaming", &staging, error))?;
        Ok(Snapshot {
            bookmark,
            kept: false,
            path,
        })
    }

    /// Marks a snapshot as handed out, so it is kept under the bookmark limit.
    fn keep(&self, snapshot: &mut Snapshot) -> ApiResult<()> {
        if snapshot.kept {
            return Ok(());
        }
        let kept = self
            .dir
            .join(format!("{}{KEPT_SUFFIX}", snapshot.bookmark.render()));
        std::fs::rename(&snapshot.path, &kept)
            .map_err(|error| io_error("renaming", &snapshot.path, error))?;
        snapshot.path = kept;
        snapshot.kept = true;
        Ok(())
    }

    /// Deletes what the retention rules no longer keep (see the module docs).
    fn prune(&self, snapshots: &mut Vec<Snapshot>, now: i64) {
        let Some(newest) = snapshots.last().map(|snapshot| snapshot.bookmark.sequence) else {
            return;
        };
        let mut kept_left = MAX_BOOKMARKED_SNAPSHOTS;
        let mut automatic_left = MAX_AUTOMATIC_SNAPSHOTS;
        let mut retained = Vec::with_capacity(snapshots.len());
        for snapshot in snapshots.drain(..).rev() {
            let budget = if snapshot.kept {
                &mut kept_left
            } else {
                &mut automatic_left
            };
            let recent = now - snapshot.bookmark.taken_at <= RETENTION_MILLIS;
            let keep = snapshot.bookmark.sequence == newest || (recent && *budget > 0);
            if keep {
                *budget = budget.saturating_sub(1);
                retained.push(snapshot);
            } else if let Err(error) = std::fs::remove_file(&snapshot.path) {
                tracing::warn!(path = %snapshot.path.display(), %error, "removing an expired D1 snapshot");
            }
        }
        retained.reverse();
        *snapshots = retained;
    }

    /// The bookmark of the current state, snapshotting first if the file changed.
    pub(in crate::emulator::d1) fn current(&self) -> ApiResult<String> {
        let mut snapshots = self.record_if_changed()?;
        let newest = snapshots
            .last_mut()
            .ok_or_else(|| ApiError::internal("no D1 snapshot after recording one"))?;
        self.keep(newest)?;
        Ok(newest.bookmark.render())
    }

    /// The bookmark of the state at `at` (milliseconds since the epoch).
    fn at(&self, at: i64) -> ApiResult<String> {
        let mut snapshots = self.record_if_changed()?;
        let index = resolve(&snapshots, at, self.clock.unix_millis())?;
        let snapshot = &mut snapshots[index];
        self.keep(snapshot)?;
        Ok(snapshot.bookmark.render())
    }

    /// Finds the retained snapshot of `text`, with the error D1 users should see otherwise.
    fn lookup(&self, snapshots: &[Snapshot], text: &str) -> ApiResult<usize> {
        if let Some(index) = snapshots
            .iter()
            .position(|snapshot| snapshot.bookmark.render() == text)
        {
            return Ok(index);
        }
        match Bookmark::parse(text) {
            Some(bookmark) if bookmark.belongs_to(&self.uuid) => Err(ApiError::bad_request(
                VALIDATION,
                format!(
                    "bookmark {text} is out of range: its state is no longer retained (the flareops emulator keeps 30 days, the newest {MAX_BOOKMARKED_SNAPSHOTS} bookmarks handed out and the newest {MAX_AUTOMATIC_SNAPSHOTS} other states)"
                ),
            )),
            Some(_) => Err(ApiError::bad_request(
                VALIDATION,
                format!("invalid bookmark {text}: it is not a bookmark of this database"),
            )),
            None => Err(ApiError::bad_request(
                VALIDATION,
                format!(
                    "invalid bookmark {text:?}: expected four lowercase hex groups like 00000085-0000024c-00004c6d-8e61117bf38d7adb71b934ebbf891683"
                ),
            )),
        }
    }

    /// Restores the state of `target` (a bookmark or a time). The caller's connection is closed
    /// and reopened on the new file.
    fn restore(&self, conn: &mut Connection, target: Target) -> ApiResult<RestoreOutcome> {
        let mut snapshots = self.record_if_changed()?;
        let index = match &target {
            Target::Bookmark(text) => self.lookup(&snapshots, text)?,
            Target::Time(at) => resolve(&snapshots, *at, self.clock.unix_millis())?,
        };
        self.keep(&mut snapshots[index])?;
        let last = snapshots.len() - 1;
        self.keep(&mut snapshots[last])?;
        let source = snapshots[index].clone();
        let previous = snapshots[last].bookmark.render();

        replace_live_file(conn, &self.live, &source.path, &self.dir)?;
        // The restored state is the newest state from now on: later timestamps map to it.
        let head = self.new_snapshot(snapshots.last(), |target| {
            std::fs::hard_link(&source.path, target)
                .or_else(|_| std::fs::copy(&source.path, target).map(drop))
                .map_err(|error| io_error("linking", &source.path, error))
        })?;
        snapshots.push(head);
        self.prune(&mut snapshots, self.clock.unix_millis());
        Ok(RestoreOutcome {
            bookmark: source.bookmark.render(),
            previous_bookmark: previous,
        })
    }

    /// Deletes every snapshot of the database (when the database is deleted).
    pub fn remove(&self) -> ApiResult<()> {
        match std::fs::remove_dir_all(&self.dir) {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(io_error("removing", &self.dir, error)),
        }
    }
}

/// The newest snapshot taken at or before `at`, refusing times the history cannot answer.
fn resolve(snapshots: &[Snapshot], at: i64, now: i64) -> ApiResult<usize> {
    let out_of_range =
        |why: &str| ApiError::bad_request(VALIDATION, format!("timestamp out of range: {why}"));
    if at > now + FUTURE_TOLERANCE_MILLIS {
        return Err(out_of_range("it is in the future"));
    }
    if at < now - RETENTION_MILLIS {
        return Err(out_of_range("Time Travel covers the last 30 days"));
    }
    let Some(index) = snapshots
        .iter()
        .rposition(|snapshot| snapshot.bookmark.taken_at <= at)
    else {
        return Err(out_of_range(
            "it is before the oldest state the flareops emulator holds for this database",
        ));
    };
    // A gap in the sequence right after the match means states taken before `at` were pruned.
    if let Some(next) = snapshots.get(index + 1)
        && next.bookmark.sequence != snapshots[index].bookmark.sequence + 1
    {
        return Err(out_of_range(
            "the state at that time is no longer retained by the flareops emulator",
        ));
    }
    Ok(index)
}

/// Replaces `live` with a copy of `source` atomically (copy beside it, rename over it), closing
/// `conn` first and reopening it on the new file.
fn replace_live_file(
    conn: &mut Connection,
    live: &FilePath,
    source: &FilePath,
    staging_dir: &FilePath,
) -> ApiResult<()> {
    let staging = staging_dir.join(".restoring.sqlite3");
    std::fs::copy(source, &staging).map_err(|error| io_error("copying", source, error))?;
    // Stands in while the file is swapped; refuses writes should reopening ever fail.
    let placeholder = Connection::open_in_memory()?;
    placeholder.execute_batch("PRAGMA query_only = 1;")?;
    let old = std::mem::replace(conn, placeholder);
    if let Err((old, error)) = old.close() {
        *conn = old;
        let _ = std::fs::remove_file(&staging);
        return Err(ApiError::internal(format!(
            "closing {} before a restore: {error}",
            live.display()
        )));
    }
    let renamed = std::fs::rename(&staging, live);
    if renamed.is_ok() {
        for suffix in ["-journal", "-wal", "-shm"] {
            let mut stale = live.as_os_str().to_owned();
            stale.push(suffix);
            let _ = std::fs::remove_file(PathBuf::from(stale));
        }
    }
    let reopened = Connection::open(live).map_err(|error| {
        ApiError::internal(format!(
            "reopening {} after a restore: {error}",
            live.display()
        ))
    })?;
    crate::emulator::store::configure_d1(&reopened)?;
    *conn = reopened;
    renamed.map_err(|error| io_error("renaming the restored copy over", live, error))
}

// ---------------------------------------------------------------------------------------------
// Timestamps
// ---------------------------------------------------------------------------------------------

/// Parses Unix seconds (or milliseconds, 13 digits, as wrangler accepts) or an RFC 3339 /
/// JavaScript date-time (`2023-07-27T11:18:53.000-04:00`, `…Z`, seconds and fraction optional;
/// no offset means UTC). Returns milliseconds since the epoch.
fn parse_timestamp(text: &str) -> Option<i64> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit()) {
        let number: i64 = text.parse().ok()?;
        return Some(if text.len() > 11 {
            number
        } else {
            number.checked_mul(1000)?
        });
    }
    let bytes = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        part.bytes()
            .all(|byte| byte.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let year = digits(0..4)?;
    let month = digits(5..7)?;
    let day = digits(8..10)?;
    let hour = digits(11..13)?;
    let minute = digits(14..16)?;
    if bytes.get(4) != Some(&b'-')
        || bytes.get(7) != Some(&b'-')
        || !matches!(bytes.get(10), Some(b'T' | b't' | b' '))
        || bytes.get(13) != Some(&b':')
    {
        return None;
    }
    let mut position = 16;
    let mut second = 0;
    let mut millisecond = 0;
    if bytes.get(position) == Some(&b':') {
        second = digits(17..19)?;
        position = 19;
        if bytes.get(position) == Some(&b'.') {
            let start = position + 1;
            let end = start
                + bytes[start..]
                    .iter()
                    .take_while(|byte| byte.is_ascii_digit())
                    .count();
            if end == start {
                return None;
            }
            let fraction = &text[start..end.min(start + 3)];
            millisecond = format!("{fraction:0<3}").parse().ok()?;
            position = end;
        }
    }
    let offset_seconds = match &text[position..] {
        "" | "Z" | "z" => 0,
        rest => {
            if !rest.is_ascii() {
                return None;
            }
            // A `+` sent unencoded in a query string arrives as a space.
            let sign = match rest.as_bytes()[0] {
                b'+' | b' ' => 1,
                b'-' => -1,
                _ => return None,
            };
            let rest = &rest[1..];
            let (hours, minutes) = match rest.len() {
                5 if rest.as_bytes()[2] == b':' => (&rest[..2], &rest[3..]),
                4 => (&rest[..2], &rest[2..]),
                2 => (rest, "00"),
                _ => return None,
            };
            let hours: i64 = hours.parse().ok()?;
            let minutes: i64 = minutes.parse().ok()?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            sign * (hours * 3600 + minutes * 60)
        }
    };
    let month = time::Month::try_from(u8::try_from(month).ok()?).ok()?;
    let date =
        time::Date::from_calendar_date(i32::try_from(year).ok()?, month, u8::try_from(day).ok()?)
            .ok()?;
    let clock = time::Time::from_hms_milli(
        u8::try_from(hour).ok()?,
        u8::try_from(minute).ok()?,
        u8::try_from(second).ok()?,
        u16::try_from(millisecond).ok()?,
    )
    .ok()?;
    let local = time::PrimitiveDateTime::new(date, clock).assume_utc();
    let utc_millis = i64::try_from(local.unix_timestamp_nanos() / 1_000_000).ok()?;
    Some(utc_millis - offset_seconds * 1000)
}

fn timestamp_param(query: &QueryMap) -> ApiResult<Option<i64>> {
    match query.get("timestamp").filter(|raw| !raw.is_empty()) {
        None => Ok(None),
        Some(raw) => parse_timestamp(raw).map(Some).ok_or_else(|| {
            ApiError::bad_request(
                VALIDATION,
                format!(
                    "invalid timestamp {raw:?}: expected an RFC 3339 date-time such as 2023-07-13T08:46:42.228Z or Unix seconds"
                ),
            )
        }),
    }
}

// ---------------------------------------------------------------------------------------------
// Handlers
// ---------------------------------------------------------------------------------------------

enum Target {
    Bookmark(String),
    Time(i64),
}

struct RestoreOutcome {
    bookmark: String,
    previous_bookmark: String,
}

async fn get_bookmark(
    State(state): State<SharedState>,
    path: DatabasePath,
    query: Result<Query<QueryMap>, QueryRejection>,
) -> ApiResult<Response> {
    let Path((_, id_or_name)) = path.map_err(path_error)?;
    let query = query_map(query, VALIDATION)?;
    let at = timestamp_param(&query)?;
    let record = find(&state, id_or_name).await?;
    let history = History::new(&state.d1, &record.uuid);
    let bookmark = state
        .d1
        .call(&record.uuid, move |_conn| match at {
            None => history.current(),
            Some(at) => history.at(at),
        })
        .await?;
    Ok(success(json!({ "bookmark": bookmark })))
}

async fn restore(
    State(state): State<SharedState>,
    path: DatabasePath,
    query: Result<Query<QueryMap>, QueryRejection>,
) -> ApiResult<Response> {
    let Path((_, id_or_name)) = path.map_err(path_error)?;
    let query = query_map(query, VALIDATION)?;
    let bookmark = query.get("bookmark").filter(|raw| !raw.is_empty()).cloned();
    let at = timestamp_param(&query)?;
    let target = match (bookmark, at) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                VALIDATION,
                "give either bookmark or timestamp, not both",
            ));
        }
        (Some(bookmark), None) => Target::Bookmark(bookmark),
        (None, Some(at)) => Target::Time(at),
        (None, None) => {
            return Err(ApiError::bad_request(
                VALIDATION,
                "bookmark or timestamp is required",
            ));
        }
    };
    let record = find(&state, id_or_name).await?;
    let history = History::new(&state.d1, &record.uuid);
    let outcome = state
        .d1
        .call(&record.uuid, move |conn| history.restore(conn, target))
        .await?;
    Ok(success(json!({
        "bookmark": outcome.bookmark,
        "previous_bookmark": outcome.previous_bookmark,
        "message": RESTORED_MESSAGE,
    })))
}

#[cfg(test)]
mod tests;
