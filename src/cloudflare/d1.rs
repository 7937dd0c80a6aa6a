//! D1 databases: `/accounts/{a}/d1/database`, and their queries.
//!
//! Queries are typed: a [`Statement`] is SQL text with [`D1Value`]s bound
//! to its parameters (never spliced into the text), rows decode into the
//! caller's types ([`QueryResult::rows`], [`Client::d1_query_as`]), and
//! [`ClientError::is_no_such_table`] recognizes a missing table from D1's
//! code and message. One statement is sent as `{sql, params}`, several as
//! `{batch: [...]}` in one request. [`D1Limits`] holds D1's limits per
//! statement (100 bound parameters, 100,000 bytes of SQL); statements over
//! them are refused before sending, and [`row_statements`] and
//! [`group_requests`] split many rows into statements and requests under
//! them.
//!
//! Lost answers: a create is looked up by name before it is sent again. A
//! query is retried like a read when every statement is harmless to run
//! twice (reads, `CREATE … IF NOT EXISTS`, `DROP … IF EXISTS`; see
//! [`repeatable`]); a query that writes is not, and fails with
//! [`ClientError::OutcomeUnknown`] when its answer is lost, unless the
//! caller vouches for it with [`Client::d1_run_idempotent`] (or
//! [`Client::d1_query_idempotent`]). A restore to a bookmark leaves the
//! same state however often it runs, so it is retried; the bookmark it
//! returns is then the one read before it.

use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
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

    /// The D1 database named exactly `name`, if any: one filtered list
    /// (the API's `name` filter), not the whole account's.
    pub async fn find_d1_database(&self, name: &str) -> Result<Option<D1Database>, ClientError> {
        let path = self.account_path("/d1/database");
        let listed: Vec<D1Database> = self
            .get_all_pages(&path, MAX_PER_PAGE, &[("name", name.to_string())])
            .await?;
        Ok(listed.into_iter().find(|db| db.name == name))
    }

    /// The region a database runs in (`running_in_region`, e.g. `WEUR`),
    /// which only the database's own GET reports.
    pub async fn d1_running_in_region(&self, uuid: &str) -> Result<Option<String>, ClientError> {
        #[derive(Deserialize)]
        struct Detail {
            #[serde(default)]
            running_in_region: Option<String>,
        }
        let path = self.account_path(&format!("/d1/database/{uuid}"));
        let (detail, _) = self
            .call::<Detail>(Method::GET, &path, &[], &[], Body::None)
            .await?;
        Ok(detail.and_then(|d| d.running_in_region))
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
            async || self.find_d1_database(name).await,
        )
        .await
    }

    pub async fn delete_d1_database(&self, uuid: &str) -> Result<(), ClientError> {
        let path = self.account_path(&format!("/d1/database/{uuid}"));
        self.call_unit(Method::DELETE, &path, &[], Body::None).await
    }
}

/// Cloudflare's code for an SQL error of a D1 query (the message is
/// SQLite's, ending in the result code's name: `no such table: t:
/// SQLITE_ERROR`).
pub const D1_SQL_ERROR: i64 = 7500;

/// A value bound to a parameter of a statement. On the wire: a JSON
/// string, number or `null`. A real that is not finite is sent as `null`
/// (SQLite stores NaN as NULL, and JSON has no infinities).
#[derive(Debug, Clone, PartialEq)]
pub enum D1Value {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
}

impl Serialize for D1Value {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            D1Value::Null => serializer.serialize_none(),
            D1Value::Integer(value) => serializer.serialize_i64(*value),
            D1Value::Real(value) if value.is_finite() => serializer.serialize_f64(*value),
            D1Value::Real(_) => serializer.serialize_none(),
            D1Value::Text(value) => serializer.serialize_str(value),
        }
    }
}

impl From<&str> for D1Value {
    fn from(value: &str) -> D1Value {
        D1Value::Text(value.to_string())
    }
}

impl From<String> for D1Value {
    fn from(value: String) -> D1Value {
        D1Value::Text(value)
    }
}

impl From<&String> for D1Value {
    fn from(value: &String) -> D1Value {
        D1Value::Text(value.clone())
    }
}

impl From<i64> for D1Value {
    fn from(value: i64) -> D1Value {
        D1Value::Integer(value)
    }
}

impl From<i32> for D1Value {
    fn from(value: i32) -> D1Value {
        D1Value::Integer(i64::from(value))
    }
}

impl From<u32> for D1Value {
    fn from(value: u32) -> D1Value {
        D1Value::Integer(i64::from(value))
    }
}

/// `true` is 1 and `false` 0, as SQLite stores booleans.
impl From<bool> for D1Value {
    fn from(value: bool) -> D1Value {
        D1Value::Integer(i64::from(value))
    }
}

impl From<f64> for D1Value {
    fn from(value: f64) -> D1Value {
        D1Value::Real(value)
    }
}

impl<T: Into<D1Value>> From<Option<T>> for D1Value {
    fn from(value: Option<T>) -> D1Value {
        value.map_or(D1Value::Null, Into::into)
    }
}

/// One SQL text with the values bound to its parameters (`?N`, or `?`
/// numbered in order). The text may hold several statements only when it
/// binds nothing (a migration file, a schema). Values are never spliced
/// into the text: SQL is built from fixed fragments and placeholders only.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Statement {
    sql: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    params: Vec<D1Value>,
}

impl Statement {
    pub fn new(sql: impl Into<String>) -> Statement {
        Statement {
            sql: sql.into(),
            params: Vec::new(),
        }
    }

    /// Binds `value` to the next parameter (`?1`, then `?2`, ...).
    pub fn bind(mut self, value: impl Into<D1Value>) -> Statement {
        self.params.push(value.into());
        self
    }

    /// Binds `value` to the next parameter and returns its placeholder
    /// (`?N`), for text assembled from a template and a number of rows.
    pub fn param(&mut self, value: impl Into<D1Value>) -> String {
        self.params.push(value.into());
        format!("?{}", self.params.len())
    }

    /// Appends fixed SQL text (never a value: bind those with [`Statement::param`]).
    pub fn push_sql(&mut self, text: &str) {
        self.sql.push_str(text);
    }

    pub fn sql(&self) -> &str {
        &self.sql
    }

    pub fn params(&self) -> &[D1Value] {
        &self.params
    }

    /// The first limit of `limits` this statement exceeds, if any.
    pub fn exceeds(&self, limits: &D1Limits) -> Option<D1LimitError> {
        if self.params.len() > limits.bound_parameters {
            return Some(D1LimitError::TooManyParameters {
                count: self.params.len(),
                limit: limits.bound_parameters,
            });
        }
        if self.sql.len() > limits.statement_bytes {
            return Some(D1LimitError::StatementTooLong {
                bytes: self.sql.len(),
                limit: limits.statement_bytes,
            });
        }
        None
    }

    /// The bytes this statement adds to a request's JSON body.
    fn encoded_len(&self) -> usize {
        serde_json::to_vec(self).map_or(usize::MAX, |bytes| bytes.len())
    }
}

/// D1's limits on one statement, and flareops' budget for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct D1Limits {
    /// Bound parameters per statement.
    pub bound_parameters: usize,
    /// Bytes of SQL text per `sql` (the parameters' values do not count).
    pub statement_bytes: usize,
    /// Bytes of one request's JSON body when several statements are sent
    /// together; a statement larger than this still goes, alone.
    pub request_bytes: usize,
}

impl D1Limits {
    /// Cloudflare's documented D1 limits (developers.cloudflare.com,
    /// D1 > Platform > Limits: "Maximum bound parameters per query: 100",
    /// "Maximum SQL statement length: 100,000 bytes (100 KB)"). The request
    /// budget of 1,000,000 bytes is flareops' own choice, not a documented
    /// limit: it keeps one request well inside any body limit and the 30 s
    /// a query may run.
    pub const CLOUDFLARE: D1Limits = D1Limits {
        bound_parameters: 100,
        statement_bytes: 100_000,
        request_bytes: 1_000_000,
    };
}

/// A statement that D1 would refuse for its size.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum D1LimitError {
    #[error("{count} bound parameters, more than D1's limit of {limit} per statement")]
    TooManyParameters { count: usize, limit: usize },
    #[error("{bytes} bytes of SQL, more than D1's limit of {limit} per statement")]
    StatementTooLong { bytes: usize, limit: usize },
    #[error(
        "one row of the template needs {parameters} parameters and {bytes} bytes of SQL, more than a statement may hold"
    )]
    RowTooLarge { parameters: usize, bytes: usize },
}

/// A statement repeated once per row: `head`, then one `row(placeholders)`
/// per row separated by `, `, then `tail`. `shared` values are bound first,
/// as `?1..?k`, in every statement, so `head`, `row` and `tail` may name
/// them; each row's own values get the next numbers.
pub struct RowTemplate<'a> {
    pub head: &'a str,
    pub tail: &'a str,
    pub shared: &'a [D1Value],
    pub row: &'a dyn Fn(&[String]) -> String,
}

/// `rows` written with `template` in as few statements as `limits` allow
/// (each under the parameter and text limits). No rows, no statement.
pub fn row_statements(
    template: &RowTemplate<'_>,
    rows: Vec<Vec<D1Value>>,
    limits: &D1Limits,
) -> Result<Vec<Statement>, D1LimitError> {
    let mut statements = Vec::new();
    let mut current: Option<Statement> = None;
    let mut in_current = 0usize;
    for row in rows {
        let width = row.len();
        // The text of a row is the same whatever the placeholders' numbers,
        // up to their digits: measure it with the largest the limit allows.
        let widest: Vec<String> = (0..width)
            .map(|_| format!("?{}", limits.bound_parameters))
            .collect();
        let row_bytes = (template.row)(&widest).len() + 2;
        let fits = |statement: &Statement| {
            statement.params.len() + width <= limits.bound_parameters
                && statement.sql.len() + row_bytes + template.tail.len() <= limits.statement_bytes
        };
        if let Some(statement) = current.take() {
            if fits(&statement) {
                current = Some(statement);
            } else {
                statements.push(finish(statement, template));
                in_current = 0;
            }
        }
        let mut statement = match current.take() {
            Some(statement) => statement,
            None => {
                let mut fresh = Statement::new(template.head);
                fresh.params.extend(template.shared.iter().cloned());
                if !fits(&fresh) {
                    return Err(D1LimitError::RowTooLarge {
                        parameters: template.shared.len() + width,
                        bytes: template.head.len() + row_bytes + template.tail.len(),
                    });
                }
                fresh
            }
        };
        if in_current > 0 {
            statement.push_sql(", ");
        }
        let placeholders: Vec<String> = row.into_iter().map(|v| statement.param(v)).collect();
        let text = (template.row)(&placeholders);
        statement.push_sql(&text);
        in_current += 1;
        current = Some(statement);
    }
    if let Some(statement) = current {
        statements.push(finish(statement, template));
    }
    Ok(statements)
}

fn finish(mut statement: Statement, template: &RowTemplate<'_>) -> Statement {
    statement.push_sql(template.tail);
    statement
}

/// `statements`, in order, grouped into as few requests as the request
/// budget of `limits` allows.
pub fn group_requests(statements: Vec<Statement>, limits: &D1Limits) -> Vec<Vec<Statement>> {
    let mut requests: Vec<Vec<Statement>> = Vec::new();
    let mut bytes = 0usize;
    for statement in statements {
        let size = statement.encoded_len().saturating_add(1);
        match requests.last_mut() {
            Some(request) if bytes.saturating_add(size) <= limits.request_bytes => {
                request.push(statement);
                bytes = bytes.saturating_add(size);
            }
            _ => {
                requests.push(vec![statement]);
                bytes = size;
            }
        }
    }
    requests
}

/// One statement's result of `POST .../query`.
#[derive(Debug, Clone, Deserialize)]
pub struct QueryResult {
    #[serde(default)]
    pub results: Vec<serde_json::Map<String, serde_json::Value>>,
    /// The request's path, for decoding errors.
    #[serde(skip)]
    path: String,
}

impl QueryResult {
    /// The rows decoded into `T`: any `Deserialize` of a JSON object,
    /// usually a struct with the selected columns as fields (other columns
    /// are ignored). Integers arrive as numbers, text as strings, NULL as
    /// `null` (an `Option` field).
    pub fn rows<T: DeserializeOwned>(&self) -> Result<Vec<T>, ClientError> {
        self.results
            .iter()
            .enumerate()
            .map(|(index, row)| {
                T::deserialize(serde_json::Value::Object(row.clone())).map_err(|error| {
                    ClientError::Decode {
                        method: Method::POST,
                        path: self.path.clone(),
                        status: 200,
                        reason: format!("row {index} of a D1 result: {error}"),
                    }
                })
            })
            .collect()
    }
}

impl Client {
    /// Runs `sql` (one or more statements, one transaction) and returns one
    /// result per statement. Retried after a lost answer only when every
    /// statement is harmless to run twice (`repeatable`); otherwise a lost
    /// answer is [`ClientError::OutcomeUnknown`]. For SQL without values:
    /// a migration file, a schema. Values are bound with [`Client::d1_run`].
    pub async fn d1_query(&self, uuid: &str, sql: &str) -> Result<Vec<QueryResult>, ClientError> {
        self.d1_run(uuid, &[Statement::new(sql)]).await
    }

    /// [`Client::d1_query`] for SQL the caller knows is harmless to run
    /// twice (upserts keyed by a fixed id, updates to fixed values, deletes
    /// by key): retried after a lost answer like a read.
    pub async fn d1_query_idempotent(
        &self,
        uuid: &str,
        sql: &str,
    ) -> Result<Vec<QueryResult>, ClientError> {
        self.d1_run_idempotent(uuid, &[Statement::new(sql)]).await
    }

    /// Runs `statements` in one request, in order, and returns their
    /// results in order (one per statement of each text). One statement is
    /// sent as `{sql, params}`; several as `{batch: [{sql, params}, ...]}`,
    /// which D1 runs as one transaction (as it does the `batch()` of its
    /// Workers API). Repeated after a lost answer only when every statement
    /// is harmless to run twice (judged from its leading keywords). A
    /// statement over D1's limits ([`D1Limits::CLOUDFLARE`]) is refused
    /// before anything is sent. No statements, no request.
    pub async fn d1_run(
        &self,
        uuid: &str,
        statements: &[Statement],
    ) -> Result<Vec<QueryResult>, ClientError> {
        let repeat = if statements.iter().all(|s| repeatable(&s.sql)) {
            Repeat::Safe
        } else {
            Repeat::Unsafe
        };
        self.d1_send(uuid, statements, repeat).await
    }

    /// [`Client::d1_run`] for statements the caller knows are harmless to
    /// run twice: retried after a lost answer like a read.
    pub async fn d1_run_idempotent(
        &self,
        uuid: &str,
        statements: &[Statement],
    ) -> Result<Vec<QueryResult>, ClientError> {
        self.d1_send(uuid, statements, Repeat::Safe).await
    }

    /// Runs one statement and decodes the rows of its result into `T`.
    pub async fn d1_query_as<T: DeserializeOwned>(
        &self,
        uuid: &str,
        statement: &Statement,
    ) -> Result<Vec<T>, ClientError> {
        let results = self.d1_run(uuid, std::slice::from_ref(statement)).await?;
        match results.last() {
            Some(result) => result.rows(),
            None => Ok(Vec::new()),
        }
    }

    async fn d1_send(
        &self,
        uuid: &str,
        statements: &[Statement],
        repeat: Repeat,
    ) -> Result<Vec<QueryResult>, ClientError> {
        let path = self.account_path(&format!("/d1/database/{uuid}/query"));
        for (index, statement) in statements.iter().enumerate() {
            if let Some(exceeded) = statement.exceeds(&D1Limits::CLOUDFLARE) {
                return Err(ClientError::D1Limit {
                    path,
                    index,
                    exceeded,
                });
            }
        }
        let body = match statements {
            [] => return Ok(Vec::new()),
            [one] => json!(one),
            many => json!({ "batch": many }),
        };
        let request = Request::new(Method::POST, &path)
            .body(Body::Json(&body))
            .repeat(repeat);
        let mut results = self
            .fetch::<Vec<QueryResult>>(&request)
            .await?
            .0
            .ok_or_else(|| super::missing_result(&request))?;
        for result in &mut results {
            result.path.clone_from(&path);
        }
        Ok(results)
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
    fn parameters_encode_as_json_strings_numbers_and_null() {
        let statement = Statement::new("INSERT INTO t VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)")
            .bind("it's")
            .bind(42i64)
            .bind(2.5f64)
            .bind(true)
            .bind(None::<&str>)
            .bind(Some("x".to_string()))
            .bind(f64::NAN)
            .bind(u32::MAX);
        assert_eq!(
            serde_json::to_value(&statement).unwrap(),
            json!({
                "sql": "INSERT INTO t VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                "params": ["it's", 42, 2.5, 1, null, "x", null, 4_294_967_295u64],
            })
        );
        // Without values, no `params` at all (a migration file, a schema).
        assert_eq!(
            serde_json::to_value(Statement::new("SELECT 1")).unwrap(),
            json!({"sql": "SELECT 1"})
        );
    }

    #[test]
    fn placeholders_number_the_values_in_order() {
        let mut statement = Statement::new("SELECT ");
        let a = statement.param("a");
        statement.push_sql(&a);
        statement.push_sql(", ");
        let b = statement.param(7i64);
        statement.push_sql(&b);
        assert_eq!(statement.sql(), "SELECT ?1, ?2");
        assert_eq!(
            statement.params(),
            [D1Value::Text("a".into()), D1Value::Integer(7)]
        );
    }

    #[test]
    fn rows_decode_into_the_callers_types() {
        #[derive(Debug, PartialEq, Deserialize)]
        struct Row {
            name: String,
            count: i64,
            ratio: f64,
            note: Option<String>,
        }
        let result: QueryResult = serde_json::from_value(json!({
            "results": [
                {"name": "a", "count": 1, "ratio": 0.5, "note": null},
                {"name": "b", "count": 2, "ratio": 1.0, "note": "n", "extra": true},
            ],
            "success": true,
            "meta": {"changes": 0},
        }))
        .unwrap();
        assert_eq!(
            result.rows::<Row>().unwrap(),
            vec![
                Row {
                    name: "a".into(),
                    count: 1,
                    ratio: 0.5,
                    note: None
                },
                Row {
                    name: "b".into(),
                    count: 2,
                    ratio: 1.0,
                    note: Some("n".into())
                },
            ]
        );
        // A row of another shape is a decoding error naming the row.
        let error = result.rows::<(String,)>().unwrap_err();
        assert!(
            matches!(&error, ClientError::Decode { reason, .. } if reason.starts_with("row 0 of a D1 result")),
            "{error}"
        );
    }

    fn limits(bound_parameters: usize, statement_bytes: usize) -> D1Limits {
        D1Limits {
            bound_parameters,
            statement_bytes,
            request_bytes: 1_000,
        }
    }

    fn numbered_rows(n: i64) -> Vec<Vec<D1Value>> {
        (0..n)
            .map(|i| vec![D1Value::Integer(i), D1Value::from(format!("v{i}"))])
            .collect()
    }

    #[test]
    fn rows_are_packed_under_the_parameter_limit_with_shared_values_in_each() {
        let shared = [D1Value::from("env")];
        let row = |p: &[String]| format!("(?1, {}, {})", p[0], p[1]);
        let template = RowTemplate {
            head: "INSERT INTO t (e, a, b) VALUES ",
            tail: " ON CONFLICT DO NOTHING",
            shared: &shared,
            row: &row,
        };
        let statements =
            row_statements(&template, numbered_rows(25), &limits(11, 100_000)).unwrap();
        // 1 shared + 2 per row <= 11: 5 rows a statement.
        assert_eq!(statements.len(), 5);
        assert_eq!(
            statements[0].sql(),
            "INSERT INTO t (e, a, b) VALUES (?1, ?2, ?3), (?1, ?4, ?5), (?1, ?6, ?7), (?1, ?8, ?9), (?1, ?10, ?11) ON CONFLICT DO NOTHING"
        );
        assert_eq!(statements[4].params()[0], D1Value::from("env"));
        assert_eq!(statements[4].params()[1], D1Value::Integer(20));
        let total: usize = statements.iter().map(|s| s.params().len() - 1).sum();
        assert_eq!(total, 50, "every value once");
        assert!(
            row_statements(&template, Vec::new(), &limits(11, 100_000))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn rows_are_packed_under_the_text_limit() {
        let row = |p: &[String]| format!("({}, {})", p[0], p[1]);
        let template = RowTemplate {
            head: "INSERT INTO t VALUES ",
            tail: "",
            shared: &[],
            row: &row,
        };
        let limit = limits(100, 60);
        let statements = row_statements(&template, numbered_rows(10), &limit).unwrap();
        for statement in &statements {
            assert!(statement.sql().len() <= 60, "{}", statement.sql());
            assert!(statement.exceeds(&limit).is_none());
        }
        let rows: usize = statements.iter().map(|s| s.params().len() / 2).sum();
        assert_eq!(rows, 10);
        // A template whose one row cannot fit is an error, not a loop.
        let error = row_statements(&template, numbered_rows(1), &limits(1, 100)).unwrap_err();
        assert!(matches!(
            error,
            D1LimitError::RowTooLarge { parameters: 2, .. }
        ));
    }

    #[test]
    fn statements_are_grouped_in_order_under_the_request_budget() {
        let statement = |i: usize| Statement::new(format!("SELECT {i}")).bind("x".repeat(100));
        let one = serde_json::to_vec(&statement(0)).unwrap().len() + 1;
        let budget = D1Limits {
            request_bytes: one * 3,
            ..D1Limits::CLOUDFLARE
        };
        let requests = group_requests((0..7).map(statement).collect(), &budget);
        assert_eq!(
            requests.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![3, 3, 1]
        );
        assert_eq!(requests[2][0].sql(), "SELECT 6");
        // A statement larger than the budget still goes, alone.
        let big = Statement::new("SELECT ?1").bind("y".repeat(10_000));
        let requests = group_requests(vec![statement(0), big, statement(1)], &budget);
        assert_eq!(requests.len(), 3);
    }

    #[test]
    fn statements_over_d1s_limits_are_named() {
        let limits = D1Limits::CLOUDFLARE;
        let mut many = Statement::new("SELECT 1");
        for i in 0..101 {
            many = many.bind(i);
        }
        assert_eq!(
            many.exceeds(&limits),
            Some(D1LimitError::TooManyParameters {
                count: 101,
                limit: 100
            })
        );
        let long = Statement::new(format!("SELECT '{}'", "x".repeat(100_000)));
        assert!(matches!(
            long.exceeds(&limits),
            Some(D1LimitError::StatementTooLong { limit: 100_000, .. })
        ));
        let exact = Statement::new(format!("SELECT '{}'", "x".repeat(100_000 - 9)));
        assert_eq!(exact.sql().len(), 100_000);
        assert_eq!(exact.exceeds(&limits), None);
    }

    /// A local D1 query endpoint that keeps every body and answers with
    /// `answer(body)`: `(status, envelope)`.
    async fn d1_server(
        answer: fn(&serde_json::Value) -> (u16, serde_json::Value),
    ) -> (
        super::super::Client,
        std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
    ) {
        use axum::extract::State;
        use axum::http::StatusCode;
        type Seen = std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>;
        let seen = Seen::default();
        let router = axum::Router::new()
            .route(
                "/client/v4/accounts/acc/d1/database/{uuid}/query",
                axum::routing::post(
                    move |State(seen): State<Seen>,
                          axum::Json(body): axum::Json<serde_json::Value>| async move {
                        let (status, envelope) = answer(&body);
                        seen.lock().unwrap().push(body);
                        (StatusCode::from_u16(status).unwrap(), axum::Json(envelope))
                    },
                ),
            )
            .with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        let mut config = super::super::ClientConfig::new(
            format!("http://{address}/client/v4"),
            super::super::Token::new("d1-test-token"),
            "acc",
        );
        config.rate_limit = None;
        (super::super::Client::new(config).unwrap(), seen)
    }

    fn ok(result: serde_json::Value) -> (u16, serde_json::Value) {
        (
            200,
            json!({"success": true, "errors": [], "messages": [], "result": result}),
        )
    }

    #[tokio::test]
    async fn one_statement_is_sent_with_its_params_and_several_as_a_batch() {
        let (client, seen) = d1_server(|_| {
            ok(json!([
                {"results": [{"n": 1}], "success": true, "meta": {}},
                {"results": [{"n": 2}], "success": true, "meta": {}},
            ]))
        })
        .await;
        #[derive(Deserialize)]
        struct N {
            n: i64,
        }
        let one = Statement::new("SELECT ?1 AS n").bind(1i64);
        let rows = client.d1_query_as::<N>("u1", &one).await.unwrap();
        assert_eq!(rows.last().map(|r| r.n), Some(2), "the last result's rows");
        let two = [one.clone(), Statement::new("SELECT 2 AS n")];
        client.d1_run("u1", &two).await.unwrap();
        client.d1_run("u1", &[]).await.unwrap();
        let seen = seen.lock().unwrap();
        assert_eq!(
            *seen,
            vec![
                json!({"sql": "SELECT ?1 AS n", "params": [1]}),
                json!({"batch": [{"sql": "SELECT ?1 AS n", "params": [1]}, {"sql": "SELECT 2 AS n"}]}),
            ],
            "no statements, no request"
        );
    }

    #[tokio::test]
    async fn a_missing_table_is_recognized_from_d1s_code_and_message() {
        let (client, _) = d1_server(|body| {
            let message = if body["sql"].as_str().unwrap_or_default().contains("missing") {
                "no such table: missing: SQLITE_ERROR"
            } else {
                "near \"SELEC\": syntax error at offset 0: SQLITE_ERROR"
            };
            (
                400,
                json!({"success": false, "errors": [{"code": 7500, "message": message}], "messages": [], "result": null}),
            )
        })
        .await;
        let error = client
            .d1_query("u1", "SELECT * FROM missing")
            .await
            .unwrap_err();
        assert!(error.is_no_such_table(), "{error}");
        let error = client.d1_query("u1", "SELEC 1").await.unwrap_err();
        assert!(!error.is_no_such_table(), "{error}");
        // Another code with the same words is not D1's SQL error.
        let other = ClientError::Api {
            method: Method::POST,
            path: "/x".into(),
            status: 400,
            errors: vec![super::super::ApiMessage {
                code: 7400,
                message: "no such table: t".into(),
            }],
        };
        assert!(!other.is_no_such_table());
    }

    #[tokio::test]
    async fn a_statement_over_the_limits_is_refused_before_sending() {
        let (client, seen) = d1_server(|_| ok(json!([]))).await;
        let mut statement = Statement::new("SELECT 1");
        for i in 0..101 {
            statement = statement.bind(i);
        }
        let error = client
            .d1_run("u1", &[Statement::new("SELECT 1"), statement])
            .await
            .unwrap_err();
        assert!(
            matches!(
                &error,
                ClientError::D1Limit {
                    index: 1,
                    exceeded: D1LimitError::TooManyParameters { count: 101, .. },
                    ..
                }
            ),
            "{error}"
        );
        assert!(seen.lock().unwrap().is_empty(), "nothing sent");
    }

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
