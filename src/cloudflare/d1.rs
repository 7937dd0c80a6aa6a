//! D1 databases: `/accounts/{a}/d1/database`.
//!
//! Lost answers: a create is looked up by name before it is sent again. A
//! query is retried like a read when every statement is harmless to run
//! twice (reads, `CREATE … IF NOT EXISTS`, `DROP … IF EXISTS`; see
//! [`repeatable`]); a query that writes is not, and fails with
//! [`ClientError::OutcomeUnknown`] when its answer is lost, unless the
//! caller vouches for it with [`Client::d1_query_idempotent`]. A restore
//! to a bookmark leaves the same state however often it runs, so it is
//! retried; the bookmark it returns is then the one read before it.

use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use super::retry::Repeat;
use super::transport::Exchange;
use super::{Body, Client, ClientError, Request};

/// A D1 database as the list endpoint returns it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct D1Database {
    pub uuid: String,
    pub name: String,
    #[serde(default)]
    pub jurisdiction: Option<String>,
}

/// The largest `per_page` the database list accepts.
const MAX_PER_PAGE: u32 = 10_000;

impl Client {
    pub async fn list_d1_databases(&self) -> Result<Vec<D1Database>, ClientError> {
        let path = self.account_path("/d1/database");
        self.get_all_pages(&path, MAX_PER_PAGE, &[]).await
    }

    pub async fn create_d1_database(
        &self,
        name: &str,
        location_hint: Option<&str>,
        jurisdiction: Option<&str>,
    ) -> Result<D1Database, ClientError> {
        let path = self.account_path("/d1/database");
        let mut body = json!({ "name": name });
        if let Some(hint) = location_hint {
            body["primary_location_hint"] = json!(hint);
        }
        if let Some(jurisdiction) = jurisdiction {
            body["jurisdiction"] = json!(jurisdiction);
        }
        let request = Request::new(Method::POST, &path)
            .body(Body::Json(&body))
            .repeat(Repeat::Unsafe);
        self.create_or_find(
            &format!("D1 database {name:?}"),
            async |state: &mut Exchange| self.fetch_result_with(&request, state).await,
            async || {
                Ok(self
                    .list_d1_databases()
                    .await?
                    .into_iter()
                    .find(|db| db.name == name))
            },
        )
        .await
    }

    pub async fn delete_d1_database(&self, uuid: &str) -> Result<(), ClientError> {
        let path = self.account_path(&format!("/d1/database/{uuid}"));
        self.call_unit(Method::DELETE, &path, &[], Body::None).await
    }
}

/// One statement's result of `POST .../query`.
#[derive(Debug, Clone, Deserialize)]
pub struct QueryResult {
    #[serde(default)]
    pub results: Vec<serde_json::Map<String, serde_json::Value>>,
}

impl Client {
    /// Runs `sql` (one or more statements, one transaction) and returns one
    /// result per statement. Retried after a lost answer only when every
    /// statement is harmless to run twice (`repeatable`); otherwise a lost
    /// answer is [`ClientError::OutcomeUnknown`].
    pub async fn d1_query(&self, uuid: &str, sql: &str) -> Result<Vec<QueryResult>, ClientError> {
        let repeat = if repeatable(sql) {
            Repeat::Safe
        } else {
            Repeat::Unsafe
        };
        self.d1_query_as(uuid, sql, repeat).await
    }

    /// [`Client::d1_query`] for SQL the caller knows is harmless to run
    /// twice (upserts keyed by a fixed id, updates to fixed values, deletes
    /// by key): retried after a lost answer like a read.
    pub async fn d1_query_idempotent(
        &self,
        uuid: &str,
        sql: &str,
    ) -> Result<Vec<QueryResult>, ClientError> {
        self.d1_query_as(uuid, sql, Repeat::Safe).await
    }

    async fn d1_query_as(
        &self,
        uuid: &str,
        sql: &str,
        repeat: Repeat,
    ) -> Result<Vec<QueryResult>, ClientError> {
        let path = self.account_path(&format!("/d1/database/{uuid}/query"));
        let body = json!({ "sql": sql });
        let request = Request::new(Method::POST, &path)
            .body(Body::Json(&body))
            .repeat(repeat);
        Ok(self
            .fetch::<Vec<QueryResult>>(&request)
            .await?
            .0
            .unwrap_or_default())
    }

    /// The time-travel bookmark of the database's current state.
    pub async fn d1_bookmark(&self, uuid: &str) -> Result<String, ClientError> {
        #[derive(Deserialize)]
        struct Bookmark {
            bookmark: String,
        }
        let path = self.account_path(&format!("/d1/database/{uuid}/time_travel/bookmark"));
        let bookmark: Bookmark = self
            .call_result(Method::GET, &path, &[], &[], Body::None)
            .await?;
        Ok(bookmark.bookmark)
    }

    /// Restores the database to `bookmark`: every write since is lost.
    /// Returns the bookmark of the state before the restore, which undoes it.
    ///
    /// Restoring twice to one bookmark leaves the same state, so a lost
    /// answer is retried; but the answer of a retry names the restored
    /// state, not the one before. So the current bookmark is read first,
    /// and returned when an earlier attempt may have restored already.
    pub async fn d1_restore(&self, uuid: &str, bookmark: &str) -> Result<String, ClientError> {
        #[derive(Deserialize)]
        struct Restored {
            #[serde(default)]
            previous_bookmark: Option<String>,
        }
        let before = self.d1_bookmark(uuid).await?;
        let path = self.account_path(&format!("/d1/database/{uuid}/time_travel/restore"));
        let query = [("bookmark", bookmark.to_string())];
        let request = Request::new(Method::POST, &path)
            .query(&query)
            .repeat(Repeat::Safe);
        let mut state = Exchange::default();
        let restored: Restored = self.fetch_result_with(&request, &mut state).await?;
        Ok(match restored.previous_bookmark {
            Some(previous) if !state.ever_ambiguous && !previous.is_empty() => previous,
            _ => before,
        })
    }
}

/// Whether running `sql` twice leaves the same state as running it once,
/// judged conservatively from each statement's leading keywords: reads
/// (`SELECT`, `VALUES`, `EXPLAIN`, `PRAGMA`, `WITH` without a write), `CREATE
/// … IF NOT EXISTS` and `DROP … IF EXISTS`. Any other statement (`INSERT`,
/// `UPDATE`, `DELETE`, a plain `CREATE`, `ALTER`, …) is a write.
pub fn repeatable(sql: &str) -> bool {
    const WRITES: [&str; 4] = ["INSERT", "UPDATE", "DELETE", "REPLACE"];
    const OBJECTS: [&str; 4] = ["TABLE", "INDEX", "VIEW", "TRIGGER"];
    statements(sql).iter().all(|words| {
        let word = |i: usize| words.get(i).map(String::as_str).unwrap_or_default();
        let writes = || words.iter().any(|w| WRITES.contains(&w.as_str()));
        match word(0) {
            "SELECT" | "VALUES" | "EXPLAIN" | "WITH" => !writes(),
            "PRAGMA" => true,
            "CREATE" => {
                let mut i = 1;
                while matches!(word(i), "TEMP" | "TEMPORARY" | "UNIQUE" | "VIRTUAL") {
                    i += 1;
                }
                OBJECTS.contains(&word(i))
                    && [word(i + 1), word(i + 2), word(i + 3)] == ["IF", "NOT", "EXISTS"]
            }
            "DROP" => OBJECTS.contains(&word(1)) && [word(2), word(3)] == ["IF", "EXISTS"],
            _ => false,
        }
    })
}

/// The statements of `sql`, each as its upper-cased bare words; string
/// literals, quoted identifiers and comments are skipped, and `;` inside
/// them does not split.
fn statements(sql: &str) -> Vec<Vec<String>> {
    let chars: Vec<char> = sql.chars().collect();
    let mut statements = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut i = 0;
    let flush = |word: &mut String, words: &mut Vec<String>| {
        if !word.is_empty() {
            words.push(std::mem::take(word));
        }
    };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match c {
            '\'' | '"' | '`' | '[' => {
                flush(&mut word, &mut words);
                let close = if c == '[' { ']' } else { c };
                i += 1;
                while i < chars.len() {
                    if chars[i] == close {
                        // A doubled quote is an escaped one.
                        if close != ']' && chars.get(i + 1) == Some(&close) {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
            }
            '-' if next == Some('-') => {
                flush(&mut word, &mut words);
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '/' if next == Some('*') => {
                flush(&mut word, &mut words);
                i += 2;
                while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                    i += 1;
                }
                i += 1;
            }
            ';' => {
                flush(&mut word, &mut words);
                if !words.is_empty() {
                    statements.push(std::mem::take(&mut words));
                }
            }
            c if c.is_alphanumeric() || c == '_' => word.push(c.to_ascii_uppercase()),
            _ => flush(&mut word, &mut words),
        }
        i += 1;
    }
    flush(&mut word, &mut words);
    if !words.is_empty() {
        statements.push(words);
    }
    statements
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_guarded_schema_changes_are_repeatable() {
        for sql in [
            "",
            "SELECT 1;",
            "select * from t where name = 'x; DELETE FROM t'",
            "CREATE TABLE IF NOT EXISTS locks (environment TEXT PRIMARY KEY);\nSELECT value FROM m;",
            "create unique index if not exists i on t(a)",
            "CREATE TEMP TABLE IF NOT EXISTS x(a)",
            "DROP TABLE IF EXISTS old; PRAGMA foreign_keys = ON;",
            "-- INSERT INTO t VALUES (1);\nSELECT 2",
            "/* UPDATE t SET a = 1; */ SELECT \"update\" FROM t",
            "WITH x AS (SELECT 1) SELECT * FROM x",
            "CREATE VIEW IF NOT EXISTS v AS SELECT 1",
        ] {
            assert!(repeatable(sql), "{sql}");
        }
    }

    #[test]
    fn writes_are_not_repeatable() {
        for sql in [
            "INSERT INTO applies (id) VALUES ('a');",
            "SELECT 1; INSERT INTO t VALUES (2)",
            "UPDATE locks SET holder = 'x' RETURNING holder;",
            "DELETE FROM locks WHERE environment = 'p';",
            "REPLACE INTO t VALUES (1)",
            "CREATE TABLE t (a)",
            "ALTER TABLE t ADD COLUMN b",
            "DROP TABLE t",
            "WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x",
            "SELECT 'it''s'; INSERT INTO t VALUES (1)",
            "CREATE TABLE IF NOT EXISTS a (x); INSERT INTO a VALUES (1) ON CONFLICT DO NOTHING",
        ] {
            assert!(!repeatable(sql), "{sql}");
        }
    }

    #[test]
    fn statements_split_outside_literals_and_comments() {
        let split = statements("SELECT 'a;b' ; -- c;d\nSELECT [x;y] /* ; */; SELECT `q;`");
        assert_eq!(
            split,
            vec![
                vec!["SELECT".to_string()],
                vec!["SELECT".to_string()],
                vec!["SELECT".to_string()],
            ]
        );
    }
}
