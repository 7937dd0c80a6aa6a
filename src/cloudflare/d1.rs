//! D1 databases: `/accounts/{a}/d1/database`.

use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use super::{Body, Client, ClientError};

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
        self.call_result(Method::POST, &path, &[], &[], Body::Json(&body))
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
    /// result per statement.
    pub async fn d1_query(&self, uuid: &str, sql: &str) -> Result<Vec<QueryResult>, ClientError> {
        let path = self.account_path(&format!("/d1/database/{uuid}/query"));
        let body = json!({ "sql": sql });
        Ok(self
            .call::<Vec<QueryResult>>(Method::POST, &path, &[], &[], Body::Json(&body))
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
    pub async fn d1_restore(&self, uuid: &str, bookmark: &str) -> Result<String, ClientError> {
        #[derive(Deserialize)]
        struct Restored {
            #[serde(default)]
            previous_bookmark: Option<String>,
        }
        let path = self.account_path(&format!("/d1/database/{uuid}/time_travel/restore"));
        let restored: Restored = self
            .call_result(
                Method::POST,
                &path,
                &[("bookmark", bookmark.to_string())],
                &[],
                Body::None,
            )
            .await?;
        Ok(restored.previous_bookmark.unwrap_or_default())
    }
}
