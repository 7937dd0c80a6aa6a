//! Pages: `/accounts/{a}/pages/projects` (projects, deployments, domains)
//! and Direct Upload, the protocol `wrangler pages deploy` speaks: an
//! upload token for the project, `/pages/assets/check-missing` (which
//! hashes Pages lacks), `/pages/assets/upload` (those files, base64, in
//! buckets), `/pages/assets/upsert-hashes` (every hash), then a deployment
//! whose multipart body names every file by hash. The asset endpoints take
//! the upload token instead of the API token.

use std::collections::BTreeMap;

use base64::Engine as _;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use super::retry::Repeat;
use super::transport::Exchange;
use super::{Body, Client, ClientError, Request};

/// The most bytes (of file content) one upload request carries.
pub const UPLOAD_BUCKET_BYTES: u64 = 40 * 1024 * 1024;
/// The most files one upload request carries.
pub const UPLOAD_BUCKET_FILES: usize = 2000;
/// Projects asked for per page.
const PER_PAGE: u32 = 25;
/// How many of a project's newest production deployments are read.
pub const RECENT_DEPLOYMENTS: u32 = 25;

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PagesProject {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub production_branch: Option<String>,
    #[serde(default)]
    pub canonical_deployment: Option<PagesDeployment>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PagesDeployment {
    pub id: String,
    #[serde(default)]
    pub environment: Option<String>,
    #[serde(default)]
    pub created_on: Option<String>,
    #[serde(default)]
    pub deployment_trigger: Option<Trigger>,
    #[serde(default)]
    pub latest_stage: Option<Stage>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Trigger {
    #[serde(default)]
    pub metadata: Option<TriggerMetadata>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TriggerMetadata {
    #[serde(default)]
    pub commit_hash: Option<String>,
    #[serde(default)]
    pub commit_message: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Stage {
    #[serde(default)]
    pub status: Option<String>,
}

impl PagesDeployment {
    fn metadata(&self) -> Option<&TriggerMetadata> {
        self.deployment_trigger.as_ref()?.metadata.as_ref()
    }

    pub fn commit_message(&self) -> &str {
        self.metadata()
            .and_then(|m| m.commit_message.as_deref())
            .unwrap_or_default()
    }

    pub fn commit_hash(&self) -> &str {
        self.metadata()
            .and_then(|m| m.commit_hash.as_deref())
            .unwrap_or_default()
    }

    /// A production deployment that finished.
    pub fn succeeded_in_production(&self) -> bool {
        self.environment.as_deref() == Some("production")
            && self
                .latest_stage
                .as_ref()
                .and_then(|s| s.status.as_deref())
                .is_none_or(|s| s == "success")
    }
}

impl From<&PagesDeployment> for crate::model::LivePagesDeployment {
    fn from(deployment: &PagesDeployment) -> Self {
        crate::model::LivePagesDeployment {
            id: deployment.id.clone(),
            digest: crate::model::digest_in(deployment.commit_message()),
            commit: deployment.commit_hash().to_string(),
            created_on: deployment.created_on.clone().unwrap_or_default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PagesDomain {
    pub name: String,
}

#[derive(Deserialize)]
struct TokenAnswer {
    jwt: String,
}

/// A project's token for the asset endpoints. Never printed.
pub struct UploadToken(String);

impl UploadToken {
    fn header(&self) -> [(&'static str, String); 1] {
        [("authorization", format!("Bearer {}", self.0))]
    }
}

impl std::fmt::Debug for UploadToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UploadToken(..)")
    }
}

/// What a deployment says about where it came from.
#[derive(Debug, Clone)]
pub struct DeploymentSource<'a> {
    pub branch: &'a str,
    pub commit_hash: &'a str,
    pub commit_message: &'a str,
    pub commit_dirty: bool,
}

impl Client {
    fn pages_path(&self, rest: &str) -> String {
        self.account_path(&format!("/pages/projects{rest}"))
    }

    pub async fn list_pages_projects(&self) -> Result<Vec<PagesProject>, ClientError> {
        self.get_all_pages(&self.pages_path(""), PER_PAGE, &[])
            .await
    }

    pub async fn create_pages_project(
        &self,
        name: &str,
        production_branch: &str,
    ) -> Result<PagesProject, ClientError> {
        let path = self.pages_path("");
        let body = json!({ "name": name, "production_branch": production_branch });
        let request = Request::new(Method::POST, &path)
            .body(Body::Json(&body))
            .repeat(Repeat::Unsafe);
        self.create_or_find(
            &format!("Pages project {name:?}"),
            async |state: &mut Exchange| self.fetch_result_with(&request, state).await,
            async || {
                Ok(self
                    .list_pages_projects()
                    .await?
                    .into_iter()
                    .find(|p| p.name == name))
            },
        )
        .await
    }

    pub async fn update_pages_project(
        &self,
        name: &str,
        production_branch: &str,
    ) -> Result<(), ClientError> {
        let path = self.pages_path(&format!("/{name}"));
        let body = json!({ "production_branch": production_branch });
        self.call_unit(Method::PATCH, &path, &[], Body::Json(&body))
            .await
    }

    pub async fn delete_pages_project(&self, name: &str) -> Result<(), ClientError> {
        let path = self.pages_path(&format!("/{name}"));
        self.call_unit(Method::DELETE, &path, &[], Body::None).await
    }

    /// The project's newest production deployments (one page of
    /// `RECENT_DEPLOYMENTS`), newest first: a revert goes back to one of
    /// them; older ones are deployed again from their files.
    pub async fn list_pages_deployments(
        &self,
        project: &str,
    ) -> Result<Vec<PagesDeployment>, ClientError> {
        let path = self.pages_path(&format!("/{project}/deployments"));
        let query = [
            ("env", "production".to_string()),
            ("page", "1".to_string()),
            ("per_page", RECENT_DEPLOYMENTS.to_string()),
        ];
        Ok(self
            .call::<Vec<PagesDeployment>>(Method::GET, &path, &query, &[], Body::None)
            .await?
            .0
            .unwrap_or_default())
    }

    pub async fn list_pages_domains(&self, project: &str) -> Result<Vec<PagesDomain>, ClientError> {
        let path = self.pages_path(&format!("/{project}/domains"));
        Ok(self
            .call::<Vec<PagesDomain>>(Method::GET, &path, &[], &[], Body::None)
            .await?
            .0
            .unwrap_or_default())
    }

    pub async fn add_pages_domain(&self, project: &str, domain: &str) -> Result<(), ClientError> {
        let path = self.pages_path(&format!("/{project}/domains"));
        let body = json!({ "name": domain });
        let request = Request::new(Method::POST, &path)
            .body(Body::Json(&body))
            .repeat(Repeat::Unsafe);
        self.create_or_find(
            &format!("Pages domain {domain:?}"),
            async |state: &mut Exchange| {
                self.fetch_with::<Value>(&request, state).await.map(|_| ())
            },
            async || {
                let domains = self.list_pages_domains(project).await?;
                Ok(domains.iter().any(|d| d.name == domain).then_some(()))
            },
        )
        .await
    }

    pub async fn remove_pages_domain(
        &self,
        project: &str,
        domain: &str,
    ) -> Result<(), ClientError> {
        let path = self.pages_path(&format!("/{project}/domains/{domain}"));
        self.call_unit(Method::DELETE, &path, &[], Body::None).await
    }

    pub async fn rollback_pages_deployment(
        &self,
        project: &str,
        deployment_id: &str,
    ) -> Result<(), ClientError> {
        let path = self.pages_path(&format!("/{project}/deployments/{deployment_id}/rollback"));
        // Serving a deployment twice serves it.
        let request = Request::new(Method::POST, &path).repeat(Repeat::Safe);
        self.fetch::<Value>(&request).await.map(|_| ())
    }

    /// A token for the asset endpoints, for `project`.
    pub async fn pages_upload_token(&self, project: &str) -> Result<UploadToken, ClientError> {
        let path = self.pages_path(&format!("/{project}/upload-token"));
        let token: TokenAnswer = self
            .call_result(Method::GET, &path, &[], &[], Body::None)
            .await?;
        Ok(UploadToken(token.jwt))
    }

    /// Which of `hashes` Pages does not hold yet.
    pub async fn pages_missing(
        &self,
        token: &UploadToken,
        hashes: &[&str],
    ) -> Result<Vec<String>, ClientError> {
        let body = json!({ "hashes": hashes });
        let header = token.header();
        // A read: harmless to repeat.
        let request = Request::new(Method::POST, "/pages/assets/check-missing")
            .headers(&header)
            .body(Body::Json(&body))
            .repeat(Repeat::Safe);
        let (result, _) = self.fetch::<Vec<String>>(&request).await?;
        Ok(result.unwrap_or_default())
    }

    /// Uploads files: `(hash, content type, content)`.
    pub async fn pages_upload(
        &self,
        token: &UploadToken,
        files: &[(&str, &str, Vec<u8>)],
    ) -> Result<(), ClientError> {
        let payload: Vec<Value> = files
            .iter()
            .map(|(hash, content_type, content)| {
                json!({
                    "key": hash,
                    "value": base64::engine::general_purpose::STANDARD.encode(content),
                    "metadata": { "contentType": content_type },
                    "base64": true,
                })
            })
            .collect();
        let payload = Value::Array(payload);
        let header = token.header();
        // Content by its hash: uploading it twice stores the same thing.
        let request = Request::new(Method::POST, "/pages/assets/upload")
            .headers(&header)
            .body(Body::Json(&payload))
            .repeat(Repeat::Safe);
        self.fetch::<Value>(&request).await.map(|_| ())
    }

    /// Tells Pages every hash of a deployment is in use.
    pub async fn pages_upsert_hashes(
        &self,
        token: &UploadToken,
        hashes: &[&str],
    ) -> Result<(), ClientError> {
        let body = json!({ "hashes": hashes });
        let header = token.header();
        let request = Request::new(Method::POST, "/pages/assets/upsert-hashes")
            .headers(&header)
            .body(Body::Json(&body))
            .repeat(Repeat::Safe);
        self.fetch::<Value>(&request).await.map(|_| ())
    }

    /// A deployment naming every file (`path -> hash`) by its hash.
    pub async fn create_pages_deployment(
        &self,
        project: &str,
        manifest: &BTreeMap<String, String>,
        source: &DeploymentSource<'_>,
    ) -> Result<PagesDeployment, ClientError> {
        let manifest = serde_json::to_string(manifest).unwrap_or_default();
        let fields: Vec<(&'static str, String)> = vec![
            ("manifest", manifest),
            ("branch", source.branch.to_string()),
            ("commit_hash", source.commit_hash.to_string()),
            ("commit_message", source.commit_message.to_string()),
            ("commit_dirty", source.commit_dirty.to_string()),
        ];
        let form = move || {
            fields
                .iter()
                .fold(reqwest::multipart::Form::new(), |form, (name, value)| {
                    form.text(*name, value.clone())
                })
        };
        let path = self.pages_path(&format!("/{project}/deployments"));
        let request = Request::new(Method::POST, &path)
            .body(Body::Multipart(&form))
            .repeat(Repeat::Unsafe);
        // After a lost answer: the newest production deployment with these
        // files (the commit message carries their digest) is this one.
        let digest = crate::model::digest_in(source.commit_message);
        self.create_or_find(
            &format!("a deployment of Pages project {project:?}"),
            async |state: &mut Exchange| self.fetch_result_with(&request, state).await,
            async || {
                let Some(digest) = &digest else {
                    return Ok(None);
                };
                Ok(self
                    .list_pages_deployments(project)
                    .await?
                    .into_iter()
                    .find(|d| crate::model::digest_in(d.commit_message()).as_ref() == Some(digest)))
            },
        )
        .await
    }
}
