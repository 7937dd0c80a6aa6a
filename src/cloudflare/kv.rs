//! Workers KV namespaces: `/accounts/{a}/storage/kv/namespaces`. A create
//! whose answer is lost is looked up by title (titles are unique in an
//! account) before it is sent again.

use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use super::retry::Repeat;
use super::transport::Exchange;
use super::{Body, Client, ClientError, Request};

/// A KV namespace as the API returns it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct KvNamespace {
    pub id: String,
    pub title: String,
}

/// The largest `per_page` the namespace list accepts.
const MAX_PER_PAGE: u32 = 100;

impl Client {
    pub async fn list_kv_namespaces(&self) -> Result<Vec<KvNamespace>, ClientError> {
        let path = self.account_path("/storage/kv/namespaces");
        self.get_all_pages(
            &path,
            MAX_PER_PAGE,
            &[("order", "title".into()), ("direction", "asc".into())],
        )
        .await
    }

    pub async fn create_kv_namespace(&self, title: &str) -> Result<KvNamespace, ClientError> {
        let path = self.account_path("/storage/kv/namespaces");
        let body = json!({ "title": title });
        let request = Request::new(Method::POST, &path)
            .body(Body::Json(&body))
            .repeat(Repeat::Unsafe);
        self.create_or_find(
            &format!("KV namespace {title:?}"),
            async |state: &mut Exchange| self.fetch_result_with(&request, state).await,
            async || {
                Ok(self
                    .list_kv_namespaces()
                    .await?
                    .into_iter()
                    .find(|ns| ns.title == title))
            },
        )
        .await
    }

    pub async fn rename_kv_namespace(&self, id: &str, title: &str) -> Result<(), ClientError> {
        let path = self.account_path(&format!("/storage/kv/namespaces/{id}"));
        let body = json!({ "title": title });
        self.call_unit(Method::PUT, &path, &[], Body::Json(&body))
            .await
    }

    /// Whether the namespace holds no key (one request).
    pub async fn kv_namespace_is_empty(&self, id: &str) -> Result<bool, ClientError> {
        let path = self.account_path(&format!("/storage/kv/namespaces/{id}/keys"));
        let (keys, _) = self
            .call::<Vec<serde_json::Value>>(
                Method::GET,
                &path,
                &[("limit", "10".to_string())],
                &[],
                Body::None,
            )
            .await?;
        Ok(keys.unwrap_or_default().is_empty())
    }

    pub async fn delete_kv_namespace(&self, id: &str) -> Result<(), ClientError> {
        let path = self.account_path(&format!("/storage/kv/namespaces/{id}"));
        self.call_unit(Method::DELETE, &path, &[], Body::None).await
    }
}
