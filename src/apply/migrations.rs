//! Running D1 migrations the way wrangler does, so the two agree on what
//! has run: wrangler's `d1_migrations` table, one request (one transaction)
//! per file that also records it, in file order. The file is sent as it is
//! (user SQL, possibly several statements); its tracking row is a second
//! statement of the same request, with the file name bound. A time-travel
//! bookmark is taken before each file, so the ledger can undo any file and
//! those after it (the plan's `restore_d1_bookmark` step).

use super::StepError;
use serde::Deserialize;

use crate::cloudflare::{Client, ClientError, Statement};
use crate::live::MIGRATIONS_TABLE;
use crate::model::{D1DatabaseSpec, D1Migration};

/// Runs `names` (in order) against the database `uuid`, and pushes each
/// file that ran, with the bookmark taken just before it, to `ran` (also
/// when a later file fails).
pub async fn run(
    client: &Client,
    spec: &D1DatabaseSpec,
    uuid: &str,
    names: &[String],
    progress: &super::ProgressSink,
    ran: &mut Vec<(String, String)>,
) -> Result<(), StepError> {
    client
        .d1_query(
            uuid,
            &format!(
                "CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE}(\n    id         INTEGER PRIMARY KEY AUTOINCREMENT,\n    name       TEXT UNIQUE,\n    applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL\n);"
            ),
        )
        .await?;
    let mut done = Vec::new();
    for (index, file) in names.iter().enumerate() {
        progress.report(&super::Progress::Migration {
            database: &spec.name,
            file,
            index: index + 1,
            total: names.len(),
        });
        let migration = spec
            .migrations
            .iter()
            .find(|m| &m.name == file)
            .ok_or_else(|| StepError::Changed(format!("migration {file} is no longer declared")))?;
        let request = [
            Statement::new(migration.sql.as_str()),
            Statement::new(format!("INSERT INTO {MIGRATIONS_TABLE} (name) VALUES (?1)")).bind(file),
        ];
        let bookmark = client.d1_bookmark(uuid).await?;
        let outcome = run_once(client, uuid, &request, file).await;
        if let Err(error) = outcome {
            let message = error.to_string();
            return Err(StepError::Migration {
                location: locate(migration, &message),
                message: format!(
                    "{message}{}",
                    if done.is_empty() {
                        String::new()
                    } else {
                        format!(" (applied before it: {})", done.join(", "))
                    }
                ),
            });
        }
        done.push(file.clone());
        ran.push((file.clone(), bookmark));
    }
    Ok(())
}

/// `path:line` of the statement an SQLite error names, when it names
/// something the file contains (`near "X"`, `no such table: X`, ...);
/// otherwise just the path.
fn locate(migration: &D1Migration, message: &str) -> String {
    let token = quoted_after(message, "near \"")
        .or_else(|| word_after(message, "no such table: "))
        .or_else(|| word_after(message, "no such column: "))
        .or_else(|| word_after(message, "table "))
        .or_else(|| word_after(message, "index "));
    let line = token.and_then(|token| {
        let token = token.to_ascii_lowercase();
        migration
            .sql
            .lines()
            .position(|line| line.to_ascii_lowercase().contains(&token))
    });
    match line {
        Some(index) => format!("{}:{}", migration.path, index + 1),
        None => migration.path.clone(),
    }
}

fn quoted_after(text: &str, prefix: &str) -> Option<String> {
    let start = text.find(prefix)? + prefix.len();
    let end = text[start..].find('"')? + start;
    (end > start).then(|| text[start..end].to_string())
}

fn word_after(text: &str, prefix: &str) -> Option<String> {
    let start = text.find(prefix)? + prefix.len();
    let word: String = text[start..]
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '.')
        .collect();
    (!word.is_empty()).then_some(word)
}

/// Whether wrangler's tracking table lists `file` (a read, retried).
async fn recorded(client: &Client, uuid: &str, file: &str) -> Result<bool, ClientError> {
    #[derive(Deserialize)]
    struct Found {}
    let lookup = Statement::new(format!(
        "SELECT 1 AS found FROM {MIGRATIONS_TABLE} WHERE name = ?1"
    ))
    .bind(file);
    Ok(!client.d1_query_as::<Found>(uuid, &lookup).await?.is_empty())
}

/// Runs one migration file (with its tracking row, one transaction). When
/// the answer is lost, the tracking row tells whether it committed: if it
/// did, the file ran; if not, nothing ran and it is sent again (a few times).
async fn run_once(
    client: &Client,
    uuid: &str,
    request: &[Statement],
    file: &str,
) -> Result<(), ClientError> {
    const ATTEMPTS: u32 = 4;
    let mut attempt = 1;
    loop {
        match client.d1_run(uuid, request).await {
            Ok(_) => return Ok(()),
            Err(error @ ClientError::OutcomeUnknown { .. }) => {
                match recorded(client, uuid, file).await {
                    Ok(true) => return Ok(()),
                    Ok(false) if attempt < ATTEMPTS => attempt += 1,
                    _ => return Err(error),
                }
            }
            Err(error) => return Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn migration(sql: &str) -> D1Migration {
        D1Migration {
            name: "0002_more.sql".into(),
            path: "migrations/0002_more.sql".into(),
            sql: sql.into(),
            sha256: String::new(),
        }
    }

    #[test]
    fn errors_point_at_the_line_that_names_the_culprit() {
        let m = migration("CREATE TABLE a (id INTEGER);\n\nINSERT INTO missing VALUES (1);\n");
        assert_eq!(
            locate(
                &m,
                "POST /query: [7500] no such table: missing: SQLITE_ERROR"
            ),
            "migrations/0002_more.sql:3"
        );
        let m = migration("CREATE TABLE a (id INTEGER);\nSELEC 1;\n");
        assert_eq!(
            locate(&m, "near \"SELEC\": syntax error"),
            "migrations/0002_more.sql:2"
        );
        assert_eq!(locate(&m, "disk I/O error"), "migrations/0002_more.sql");
    }
}
