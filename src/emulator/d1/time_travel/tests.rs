//! Time Travel over real HTTP with raw JSON (reqwest), plus the pure helpers. The emulator runs on
//! a manual clock: a test moves it to separate two states in time, never sleeps.

use std::path::Path;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{Bookmark, MAX_AUTOMATIC_SNAPSHOTS, parse_timestamp};
use crate::emulator::{Clock, Config, Emulator, FaultConfig, start_with};

const TOKEN: &str = "time-travel-test-token";
const ACCOUNT: &str = "0123456789abcdef0123456789abcdef";

/// An emulator on a manual clock set to the machine's time (bookmarks older than 30 days are
/// refused, so the clock starts near the real present).
async fn start_in(dir: &Path) -> Emulator {
    start_with(
        Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            state_dir: dir.to_path_buf(),
            token: TOKEN.into(),
            account_id: ACCOUNT.into(),
            zones: Vec::new(),
        },
        FaultConfig::default(),
        Clock::manual(time::OffsetDateTime::now_utc()),
    )
    .await
    .expect("emulator starts")
}

struct Client {
    base: String,
    http: reqwest::Client,
}

impl Client {
    fn of(emulator: &Emulator) -> Client {
        Client {
            base: format!("{}/accounts/{ACCOUNT}/d1/database", emulator.base_url()),
            http: reqwest::Client::new(),
        }
    }

    async fn send(
        &self,
        method: reqwest::Method,
        rest: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{rest}", self.base))
            .bearer_auth(TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        let value = serde_json::from_str(&text)
            .unwrap_or_else(|error| panic!("{rest}: not JSON ({error}): {text}"));
        (status, value)
    }

    async fn ok(&self, method: reqwest::Method, rest: &str, body: Option<Value>) -> Value {
        let (status, value) = self.send(method, rest, body).await;
        assert_eq!(status, StatusCode::OK, "{rest}: {value}");
        assert_eq!(value["success"], json!(true), "{rest}: {value}");
        value["result"].clone()
    }

    async fn create(&self, name: &str) -> String {
        let result = self
            .ok(reqwest::Method::POST, "", Some(json!({ "name": name })))
            .await;
        result["uuid"].as_str().unwrap().to_owned()
    }

    async fn sql(&self, uuid: &str, sql: &str) -> Value {
        self.ok(
            reqwest::Method::POST,
            &format!("/{uuid}/query"),
            Some(json!({ "sql": sql })),
        )
        .await
    }

    async fn count(&self, uuid: &str) -> i64 {
        let result = self.sql(uuid, "SELECT count(*) AS n FROM t").await;
        result[0]["results"][0]["n"].as_i64().unwrap()
    }

    async fn bookmark(&self, uuid: &str, query: &str) -> String {
        let result = self
            .ok(
                reqwest::Method::GET,
                &format!("/{uuid}/time_travel/bookmark{query}"),
                None,
            )
            .await;
        let bookmark = result["bookmark"].as_str().unwrap().to_owned();
        assert_eq!(result, json!({ "bookmark": bookmark }));
        bookmark
    }

    async fn restore(&self, uuid: &str, query: &str) -> Value {
        self.ok(
            reqwest::Method::POST,
            &format!("/{uuid}/time_travel/restore{query}"),
            None,
        )
        .await
    }

    async fn error(&self, method: reqwest::Method, rest: &str) -> (u16, u64, String) {
        let (status, value) = self.send(method, rest, None).await;
        assert_eq!(value["success"], json!(false), "{rest}: {value}");
        (
            status.as_u16(),
            value["errors"][0]["code"].as_u64().unwrap(),
            value["errors"][0]["message"].as_str().unwrap().to_owned(),
        )
    }
}

/// `2024-01-15T12:00:00.123Z`, as wrangler sends (`Date#toISOString`).
fn iso(at: time::OffsetDateTime) -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    at.format(&format).unwrap()
}

fn assert_bookmark_shape(bookmark: &str) {
    let groups: Vec<usize> = bookmark.split('-').map(str::len).collect();
    assert_eq!(groups, [8, 8, 8, 32], "{bookmark}");
    assert!(
        bookmark
            .bytes()
            .all(|byte| byte == b'-' || byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte)),
        "{bookmark}"
    );
}

#[tokio::test]
async fn restore_to_a_bookmark_removes_later_writes_and_previous_bookmark_undoes_it() {
    let dir = tempfile::tempdir().unwrap();
    let emulator = start_in(dir.path()).await;
    let client = Client::of(&emulator);
    let uuid = client.create("travel").await;
    client
        .sql(
            &uuid,
            "CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1)",
        )
        .await;

    let before = client.bookmark(&uuid, "").await;
    assert_bookmark_shape(&before);
    assert_eq!(
        client.bookmark(&uuid, "").await,
        before,
        "no write: the same bookmark"
    );
    client.sql(&uuid, "SELECT * FROM t").await;
    assert_eq!(
        client.bookmark(&uuid, "").await,
        before,
        "reads change nothing"
    );

    client.sql(&uuid, "INSERT INTO t VALUES (2)").await;
    assert_eq!(client.count(&uuid).await, 2);
    let after = client.bookmark(&uuid, "").await;
    assert!(
        after > before,
        "bookmarks sort oldest first: {before} {after}"
    );

    let restored = client.restore(&uuid, &format!("?bookmark={before}")).await;
    assert_eq!(
        restored,
        json!({
            "bookmark": before,
            "previous_bookmark": after,
            "message": "Database restored successfully",
        })
    );
    assert_eq!(client.count(&uuid).await, 1, "the later write is gone");
    let current = client.bookmark(&uuid, "").await;
    assert!(
        current > after,
        "the restored state is the newest: {current}"
    );

    let undone = client.restore(&uuid, &format!("?bookmark={after}")).await;
    assert_eq!(undone["bookmark"], json!(after));
    assert_eq!(undone["previous_bookmark"], json!(current));
    assert_eq!(client.count(&uuid).await, 2, "the restore was undone");

    // The database keeps working on the restored file, by name too.
    client.sql("travel", "INSERT INTO t VALUES (3)").await;
    assert_eq!(client.count(&uuid).await, 3);
    emulator.shutdown().await;
}

#[tokio::test]
async fn timestamps_resolve_to_the_state_at_that_time() {
    let dir = tempfile::tempdir().unwrap();
    let emulator = start_in(dir.path()).await;
    let client = Client::of(&emulator);
    let uuid = client.create("clock").await;
    client
        .sql(
            &uuid,
            "CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1)",
        )
        .await;
    let clock = emulator.clock();
    clock.advance(Duration::from_millis(20));
    let one_row = clock.now();
    clock.advance(Duration::from_millis(20));
    client.sql(&uuid, "INSERT INTO t VALUES (2)").await;

    let at_one = client
        .bookmark(&uuid, &format!("?timestamp={}", iso(one_row)))
        .await;
    assert_eq!(
        client
            .bookmark(&uuid, &format!("?timestamp={}", iso(one_row)))
            .await,
        at_one,
        "the same timestamp gives the same bookmark"
    );
    let now = client.bookmark(&uuid, "").await;
    assert!(at_one < now);
    let unix_now = clock.unix_seconds();
    assert_eq!(
        client
            .bookmark(&uuid, &format!("?timestamp={}", unix_now + 1))
            .await,
        now,
        "Unix seconds; nothing written since: the current bookmark"
    );

    let restored = client
        .restore(&uuid, &format!("?timestamp={}", iso(one_row)))
        .await;
    assert_eq!(restored["bookmark"], json!(at_one));
    assert_eq!(restored["previous_bookmark"], json!(now));
    assert_eq!(client.count(&uuid).await, 1);

    // Before the database existed: nothing to return to.
    let created_before = iso(one_row - time::Duration::minutes(5));
    let (status, code, message) = client
        .error(
            reqwest::Method::GET,
            &format!("/{uuid}/time_travel/bookmark?timestamp={created_before}"),
        )
        .await;
    assert_eq!((status, code), (400, 7400), "{message}");
    assert!(message.contains("out of range"), "{message}");
    emulator.shutdown().await;
}

#[tokio::test]
async fn bad_bookmarks_and_timestamps_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let emulator = start_in(dir.path()).await;
    let client = Client::of(&emulator);
    let uuid = client.create("strict").await;
    let other = client.create("other").await;
    let foreign = client.bookmark(&other, "").await;
    let post = reqwest::Method::POST;
    let get = reqwest::Method::GET;
    let restore = |query: &str| format!("/{uuid}/time_travel/restore{query}");

    let cases = [
        (
            post.clone(),
            restore("?bookmark=not-a-bookmark"),
            "invalid bookmark",
        ),
        (
            post.clone(),
            restore("?bookmark=00000085-0000024c-00004c6d-8e61117bf38d7adb71b934ebbf891683"),
            "not a bookmark of this database",
        ),
        (
            post.clone(),
            restore(&format!("?bookmark={foreign}")),
            "not a bookmark of this database",
        ),
        (
            post.clone(),
            restore(""),
            "bookmark or timestamp is required",
        ),
        (
            post.clone(),
            restore(&format!("?bookmark={foreign}&timestamp=1700000000")),
            "not both",
        ),
        (
            post.clone(),
            restore("?timestamp=yesterday"),
            "invalid timestamp",
        ),
        (
            get.clone(),
            format!("/{uuid}/time_travel/bookmark?timestamp=2999-01-01T00:00:00Z"),
            "in the future",
        ),
        (
            get.clone(),
            format!("/{uuid}/time_travel/bookmark?timestamp=1700000000"),
            "last 30 days",
        ),
    ];
    for (method, path, expected) in cases {
        let (status, code, message) = client.error(method, &path).await;
        assert_eq!((status, code), (400, 7400), "{path}: {message}");
        assert!(message.contains(expected), "{path}: {message}");
    }
    let (status, code, _) = client
        .error(
            post,
            "/00000000-0000-4000-8000-000000000000/time_travel/restore?bookmark=x",
        )
        .await;
    assert_eq!((status, code), (404, 7404));
    emulator.shutdown().await;
}

#[tokio::test]
async fn history_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let emulator = start_in(dir.path()).await;
    let client = Client::of(&emulator);
    let uuid = client.create("durable").await;
    client
        .sql(
            &uuid,
            "CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1)",
        )
        .await;
    let before = client.bookmark(&uuid, "").await;
    client.sql(&uuid, "INSERT INTO t VALUES (2)").await;
    let after = client.bookmark(&uuid, "").await;
    emulator.shutdown().await;

    let emulator = start_in(dir.path()).await;
    let client = Client::of(&emulator);
    assert_eq!(
        client.bookmark(&uuid, "").await,
        after,
        "the same current bookmark"
    );
    let restored = client.restore(&uuid, &format!("?bookmark={before}")).await;
    assert_eq!(restored["previous_bookmark"], json!(after));
    assert_eq!(client.count(&uuid).await, 1);

    // Deleting the database deletes its history.
    client
        .ok(reqwest::Method::DELETE, &format!("/{uuid}"), None)
        .await;
    let history = dir.path().join("d1").join("time-travel").join(&uuid);
    assert!(!history.exists(), "{} was removed", history.display());
    emulator.shutdown().await;
}

#[tokio::test]
async fn retention_keeps_bookmarks_handed_out_and_bounds_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let emulator = start_in(dir.path()).await;
    let client = Client::of(&emulator);
    let uuid = client.create("busy").await;
    client.sql(&uuid, "CREATE TABLE t (x INTEGER)").await;
    let empty = client.bookmark(&uuid, "").await;
    let clock = emulator.clock();
    clock.advance(Duration::from_millis(20));
    let writes = MAX_AUTOMATIC_SNAPSHOTS + 8;
    let mut after_second = None;
    for index in 0..writes {
        client
            .sql(&uuid, &format!("INSERT INTO t VALUES ({index})"))
            .await;
        if index == 1 {
            clock.advance(Duration::from_millis(20));
            after_second = Some(clock.now());
            clock.advance(Duration::from_millis(20));
        }
    }
    let history = dir.path().join("d1").join("time-travel").join(&uuid);
    let files = std::fs::read_dir(&history).unwrap().count();
    assert!(
        files <= MAX_AUTOMATIC_SNAPSHOTS + 1,
        "{files} snapshot files for {writes} writes"
    );

    // The state after the second write was pruned: refused, not answered wrongly.
    let (status, code, message) = client
        .error(
            reqwest::Method::GET,
            &format!(
                "/{uuid}/time_travel/bookmark?timestamp={}",
                iso(after_second.unwrap())
            ),
        )
        .await;
    assert_eq!((status, code), (400, 7400), "{message}");
    assert!(message.contains("no longer retained"), "{message}");

    // The bookmark handed out before the writes still restores.
    client.restore(&uuid, &format!("?bookmark={empty}")).await;
    assert_eq!(client.count(&uuid).await, 0);
    emulator.shutdown().await;
}

#[test]
fn bookmarks_round_trip_and_sort_by_sequence() {
    let uuid = "c0ffee00-0000-4000-8000-000000000001";
    let bookmark = Bookmark::new(uuid, 0x85, 1_690_000_000_123);
    let text = bookmark.render();
    assert_bookmark_shape(&text);
    assert!(text.starts_with("00000085-"), "{text}");
    assert_eq!(Bookmark::parse(&text), Some(bookmark.clone()));
    assert!(bookmark.belongs_to(uuid));
    assert!(!bookmark.belongs_to("c0ffee00-0000-4000-8000-000000000002"));
    let later = Bookmark::new(uuid, 0x86, 1_690_000_000_000).render();
    assert!(later > text);
    for bad in [
        "",
        "00000085-0000024c-00004c6d",
        "00000085-0000024c-00004c6d-8E61117BF38D7ADB71B934EBBF891683",
        "00000085-ffffffff-00004c6d-8e61117bf38d7adb71b934ebbf891683",
        "0000085-0000024c-00004c6d-8e61117bf38d7adb71b934ebbf891683",
    ] {
        assert_eq!(Bookmark::parse(bad), None, "{bad}");
    }
}

#[test]
fn timestamps_parse_like_wrangler_sends_them() {
    let base = 1_689_238_002_228; // 2023-07-13T08:46:42.228Z
    assert_eq!(parse_timestamp("2023-07-13T08:46:42.228Z"), Some(base));
    assert_eq!(parse_timestamp("2023-07-13T08:46:42.228+00:00"), Some(base));
    assert_eq!(parse_timestamp("2023-07-13T04:46:42.228-04:00"), Some(base));
    assert_eq!(parse_timestamp("2023-07-13T08:46:42.228123Z"), Some(base));
    assert_eq!(parse_timestamp("2023-07-13T08:46:42Z"), Some(base - 228));
    assert_eq!(parse_timestamp("2023-07-13T08:46Z"), Some(base - 42_228));
    assert_eq!(parse_timestamp("2023-07-13 08:46:42.228"), Some(base));
    assert_eq!(parse_timestamp("2023-07-13T10:46:42.228 02:00"), Some(base));
    assert_eq!(parse_timestamp("1689238002"), Some(base - 228));
    assert_eq!(parse_timestamp("1689238002228"), Some(base));
    for bad in [
        "",
        "yesterday",
        "2023-13-13T08:46:42Z",
        "2023-07-13T08:46:42.Z",
        "2023-07-13T08:46:42+25:00",
        "2023-07-13",
        "2023-07-13T08:46:42+0€",
    ] {
        assert_eq!(parse_timestamp(bad), None, "{bad}");
    }
}
