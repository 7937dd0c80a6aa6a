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
