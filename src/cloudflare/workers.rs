//! Workers: scripts, versions, deployments, secrets, schedules, zone routes,
//! custom domains and Durable Object namespaces.
//!
//! Lost answers of the calls that create something are looked up before
//! anything is sent again:
//! - a script upload (`PUT`, which also runs migrations and deploys) and a
//!   version upload (`POST`): the version ids are read before the upload;
//!   afterwards, a version not among them with this upload's `workers/tag`
//!   is the upload's;
//! - a deployment: the newest deployment already has the requested shares;
//! - a zone route: a route with the pattern and the script exists.
//!
//! Secrets, schedules and custom domains are `PUT`s (the same request
//! twice leaves the same state) and deletes are retried like reads.

use std::collections::{BTreeMap, HashSet};

use reqwest::Method;
use reqwest::multipart::{Form, Part};
use serde::Deserialize;
use serde_json::{Value, json};

use super::retry::Repeat;
use super::transport::Exchange;
use super::{Body, Client, ClientError, Request};
use crate::model::{Jurisdiction, ResolvedBinding, WorkerModule};

/// Cloudflare's code for "this Worker does not exist".
const SCRIPT_NOT_FOUND: i64 = 10007;

/// A script in the account's list.
#[derive(Debug, Clone, Deserialize)]
pub struct ScriptSummary {
    pub id: String,
    #[serde(default)]
    pub migration_tag: Option<String>,
}

/// One deployment of a script.
#[derive(Debug, Clone, Deserialize)]
pub struct Deployment {
    pub id: String,
    #[serde(default)]
    pub created_on: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub author_email: Option<String>,
    #[serde(default)]
    pub versions: Vec<DeploymentShare>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DeploymentShare {
    pub version_id: String,
    pub percentage: f64,
}

#[derive(Debug, Deserialize)]
struct DeploymentList {
    #[serde(default)]
    deployments: Vec<Deployment>,
}

/// A version, with what makes it what it is.
#[derive(Debug, Clone)]
pub struct Version {
    pub id: String,
    pub number: u64,
    pub tag: Option<String>,
    pub message: Option<String>,
    pub author: Option<String>,
    pub compatibility_date: Option<String>,
    pub compatibility_flags: Vec<String>,
    /// Bindings other than secrets.
    pub bindings: BTreeMap<String, ResolvedBinding>,
    /// Secret names bound in this version.
    pub secrets: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct WireVersion {
    id: String,
    #[serde(default)]
    number: Option<u64>,
    #[serde(default)]
    annotations: BTreeMap<String, Value>,
    #[serde(default)]
    metadata: Option<WireVersionMetadata>,
    #[serde(default)]
    resources: Option<WireResources>,
}

#[derive(Debug, Deserialize)]
struct WireVersionMetadata {
    #[serde(default)]
    author_email: Option<String>,
    #[serde(default)]
    source: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WireResources {
    #[serde(default)]
    bindings: Vec<Value>,
    #[serde(default)]
    script_runtime: Option<WireRuntime>,
}

#[derive(Debug, Deserialize)]
struct WireRuntime {
    #[serde(default)]
    compatibility_date: Option<String>,
    #[serde(default)]
    compatibility_flags: Vec<String>,
}

/// A zone route.
#[derive(Debug, Clone, Deserialize)]
pub struct Route {
    pub id: String,
    pub pattern: String,
    #[serde(default)]
    pub script: Option<String>,
}

/// A custom domain.
#[derive(Debug, Clone, Deserialize)]
pub struct CustomDomain {
    pub id: String,
    pub hostname: String,
    #[serde(default)]
    pub service: Option<String>,
}

/// A Durable Object namespace.
#[derive(Debug, Clone, Deserialize)]
pub struct DurableObjectNamespace {
    #[serde(default)]
    pub script: Option<String>,
    #[serde(default)]
    pub class: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Zone {
    id: String,
    name: String,
}

#[derive(Debug, Deserialize)]
struct Schedules {
    #[serde(default)]
    schedules: Vec<Schedule>,
}

#[derive(Debug, Deserialize)]
struct Schedule {
    cron: String,
}

#[derive(Debug, Deserialize)]
struct SecretName {
    name: String,
}

/// A Durable Object migration sent with a script upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    pub old_tag: Option<String>,
    pub new_tag: String,
    pub new_sqlite_classes: Vec<String>,
}

/// Everything one upload carries. Not `Debug`: it holds secret values.
#[derive(Clone)]
pub struct WorkerUpload<'a> {
    pub main_module: &'a str,
    pub modules: &'a [WorkerModule],
    pub compatibility_date: &'a str,
    pub compatibility_flags: &'a [String],
    pub bindings: &'a BTreeMap<String, ResolvedBinding>,
    pub migration: Option<Migration>,
    /// The `workers/tag` annotation (flareops' identity of the version).
    pub tag: &'a str,
    /// The `workers/message` annotation.
    pub message: &'a str,
    /// Secrets this upload sets, as (name, value); the others are kept.
    pub secrets: Vec<(&'a str, &'a str)>,
}

/// A module as the content download returns it.
#[derive(Debug, Clone)]
pub struct UploadedModule {
    pub name: String,
    pub content_type: Option<String>,
    pub content: Vec<u8>,
}

fn binding_to_wire(name: &str, binding: &ResolvedBinding) -> Value {
    match binding {
        ResolvedBinding::KvNamespace { namespace_id } => {
            json!({"type": "kv_namespace", "name": name, "namespace_id": namespace_id})
        }
        ResolvedBinding::D1 { database_id } => {
            json!({"type": "d1", "name": name, "id": database_id})
        }
        ResolvedBinding::R2Bucket {
            bucket_name,
            jurisdiction,
        } => {
            let mut value = json!({"type": "r2_bucket", "name": name, "bucket_name": bucket_name});
            if let Some(j) = jurisdiction {
                value["jurisdiction"] = json!(j.as_str());
            }
            value
        }
        ResolvedBinding::Queue { queue_name } => {
            json!({"type": "queue", "name": name, "queue_name": queue_name})
        }
        ResolvedBinding::Service { service } => {
            json!({"type": "service", "name": name, "service": service})
        }
        ResolvedBinding::DurableObject { class_name } => {
            json!({"type": "durable_object_namespace", "name": name, "class_name": class_name})
        }
        ResolvedBinding::PlainText { text } => {
            json!({"type": "plain_text", "name": name, "text": text})
        }
        ResolvedBinding::Json { json } => json!({"type": "json", "name": name, "json": json}),
    }
}

/// Reads a binding of a version; `None` for secrets and types flareops
/// does not manage. Returns the name too.
fn binding_from_wire(value: &Value) -> Option<(String, Option<ResolvedBinding>)> {
    let name = value.get("name")?.as_str()?.to_string();
    let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_string);
    let binding = match value.get("type")?.as_str()? {
        "kv_namespace" => {
            text("namespace_id").map(|namespace_id| ResolvedBinding::KvNamespace { namespace_id })
        }
        "d1" => text("id")
            .or_else(|| text("database_id"))
            .map(|database_id| ResolvedBinding::D1 { database_id }),
        "r2_bucket" => text("bucket_name").map(|bucket_name| ResolvedBinding::R2Bucket {
            bucket_name,
            jurisdiction: text("jurisdiction")
                .as_deref()
                .and_then(Jurisdiction::parse),
        }),
        "queue" => text("queue_name").map(|queue_name| ResolvedBinding::Queue { queue_name }),
        "service" => text("service").map(|service| ResolvedBinding::Service { service }),
        "durable_object_namespace" => {
            text("class_name").map(|class_name| ResolvedBinding::DurableObject { class_name })
        }
        "plain_text" => text("text").map(|text| ResolvedBinding::PlainText { text }),
        "json" => value
            .get("json")
            .cloned()
            .map(|json| ResolvedBinding::Json { json }),
        _ => None,
    };
    Some((name, binding))
}

/// Whether a deployment's shares are exactly `wanted` (in any order).
fn same_shares(current: &[DeploymentShare], wanted: &[(String, u8)]) -> bool {
    current.len() == wanted.len()
        && wanted.iter().all(|(id, percentage)| {
            current.iter().any(|s| {
                &s.version_id == id && (s.percentage - f64::from(*percentage)).abs() < 0.01
            })
        })
}

fn upload_form(upload: &WorkerUpload<'_>, keep_secrets: bool) -> Form {
    let mut bindings: Vec<Value> = upload
        .bindings
        .iter()
        .map(|(name, binding)| binding_to_wire(name, binding))
        .collect();
    for (name, value) in &upload.secrets {
        bindings.push(json!({"type": "secret_text", "name": name, "text": value}));
    }
    let mut metadata = json!({
        "main_module": upload.main_module,
        "bindings": bindings,
        "compatibility_date": upload.compatibility_date,
        "compatibility_flags": upload.compatibility_flags,
        "annotations": {"workers/tag": upload.tag, "workers/message": upload.message},
    });
    if keep_secrets {
        metadata["keep_bindings"] = json!(["secret_text", "secret_key"]);
    }
    if let Some(migration) = &upload.migration {
        let mut value = json!({
            "new_tag": migration.new_tag,
            "steps": [{"new_sqlite_classes": migration.new_sqlite_classes}],
        });
        if let Some(old) = &migration.old_tag {
            value["old_tag"] = json!(old);
        }
        metadata["migrations"] = value;
    }
    // Module names are paths (`lib/util.js`): send them as written, the way
    // wrangler does, not percent-encoded.
    let mut form = Form::new()
        .percent_encode_noop()
        .text("metadata", metadata.to_string());
    for module in upload.modules {
        let part = Part::bytes(module.content.clone())
            .file_name(module.name.clone())
            .mime_str(module.kind.content_type())
            .unwrap_or_else(|_| Part::bytes(module.content.clone()).file_name(module.name.clone()));
        form = form.part(module.name.clone(), part);
    }
    form
}

impl Client {
    fn script_path(&self, name: &str, rest: &str) -> String {
        self.account_path(&format!("/workers/scripts/{name}{rest}"))
    }

    /// Every script in the account (not paginated).
    pub async fn list_worker_scripts(&self) -> Result<Vec<ScriptSummary>, ClientError> {
        let path = self.account_path("/workers/scripts");
        Ok(self
            .call::<Vec<ScriptSummary>>(Method::GET, &path, &[], &[], Body::None)
            .await?
            .0
            .unwrap_or_default())
    }

    /// The script's deployments, newest (the live one) first.
    pub async fn list_worker_deployments(
        &self,
        name: &str,
    ) -> Result<Vec<Deployment>, ClientError> {
        let path = self.script_path(name, "/deployments");
        match self
            .call::<DeploymentList>(Method::GET, &path, &[], &[], Body::None)
            .await
        {
            Ok((list, _)) => Ok(list.map(|l| l.deployments).unwrap_or_default()),
            Err(error) if error.has_code(SCRIPT_NOT_FOUND) => Ok(Vec::new()),
            Err(error) => Err(error),
        }
    }

    pub async fn get_worker_version(
        &self,
        name: &str,
        version_id: &str,
    ) -> Result<Version, ClientError> {
        let path = self.script_path(name, &format!("/versions/{version_id}"));
        let wire: WireVersion = self
            .call_result(Method::GET, &path, &[], &[], Body::None)
            .await?;
        let annotation = |key: &str| {
            wire.annotations
                .get(key)
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let mut bindings = BTreeMap::new();
        let mut secrets = Vec::new();
        let resources = wire.resources.unwrap_or(WireResources {
            bindings: vec![],
            script_runtime: None,
        });
        for value in &resources.bindings {
            let kind = value
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or_default();
            match binding_from_wire(value) {
                Some((name, _)) if kind == "secret_text" || kind == "secret_key" => {
                    secrets.push(name)
                }
                Some((name, Some(binding))) => {
                    bindings.insert(name, binding);
                }
                _ => {}
            }
        }
        secrets.sort();
        let runtime = resources.script_runtime;
        let metadata = wire.metadata;
        Ok(Version {
            tag: annotation("workers/tag"),
            message: annotation("workers/message"),
            author: metadata
                .as_ref()
                .and_then(|m| m.author_email.clone().or_else(|| m.source.clone())),
            compatibility_date: runtime.as_ref().and_then(|r| r.compatibility_date.clone()),
            compatibility_flags: runtime.map(|r| r.compatibility_flags).unwrap_or_default(),
            bindings,
            secrets,
            number: wire.number.unwrap_or_default(),
            id: wire.id,
        })
    }

    /// Every version of a script, newest first, as (id, `workers/tag`).
    pub async fn list_worker_versions(
        &self,
        name: &str,
    ) -> Result<Vec<(String, Option<String>)>, ClientError> {
        #[derive(Deserialize)]
        struct Items {
            #[serde(default)]
            items: Vec<Item>,
        }
        #[derive(Deserialize)]
        struct Item {
            id: String,
            #[serde(default)]
            annotations: BTreeMap<String, Value>,
        }
        let path = self.script_path(name, "/versions");
        let items: Option<Items> = self
            .call(
                Method::GET,
                &path,
                &[("deployable", "true".to_string())],
                &[],
                Body::None,
            )
            .await?
            .0;
        Ok(items
            .map(|i| i.items)
            .unwrap_or_default()
            .into_iter()
            .map(|item| {
                let tag = item
                    .annotations
                    .get("workers/tag")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                (item.id, tag)
            })
            .collect())
    }

    /// The secret names of a script (values are never returned).
    pub async fn list_worker_secrets(&self, name: &str) -> Result<Vec<String>, ClientError> {
        let path = self.script_path(name, "/secrets");
        let list: Vec<SecretName> = self
            .call(Method::GET, &path, &[], &[], Body::None)
            .await?
            .0
            .unwrap_or_default();
        Ok(list.into_iter().map(|s| s.name).collect())
    }

    pub async fn get_worker_schedules(&self, name: &str) -> Result<Vec<String>, ClientError> {
        let path = self.script_path(name, "/schedules");
        let schedules: Option<Schedules> =
            self.call(Method::GET, &path, &[], &[], Body::None).await?.0;
        Ok(schedules
            .map(|s| s.schedules.into_iter().map(|s| s.cron).collect())
            .unwrap_or_default())
    }

    /// Replaces the script's cron triggers.
    pub async fn put_worker_schedules(
        &self,
        name: &str,
        crons: &[String],
    ) -> Result<(), ClientError> {
        let path = self.script_path(name, "/schedules");
        let body: Vec<Value> = crons.iter().map(|c| json!({"cron": c})).collect();
        self.call_unit(Method::PUT, &path, &[], Body::Json(&json!(body)))
            .await
    }

    /// Downloads a version's modules; returns them and the main module's name.
    pub async fn get_worker_content(
        &self,
        name: &str,
        version_id: &str,
    ) -> Result<(Vec<UploadedModule>, Option<String>), ClientError> {
        let path = self.script_path(name, "/content/v2");
        let method = Method::GET;
        let query = [("version", version_id.to_string())];
        let request = Request::new(method.clone(), &path).query(&query);
        let answer = self.exchange(&request, &mut Exchange::default()).await?;
        let (status, headers, bytes) = (answer.status, answer.headers, answer.bytes);
        if !status.is_success() {
            return Err(super::decode::<Value>(&method, &path, status, &bytes)
                .err()
                .map(|error| error.scrubbed(&self.token))
                .unwrap_or(ClientError::Decode {
                    method: method.clone(),
                    path: path.clone(),
                    status: status.as_u16(),
                    reason: "an error status with a success body".into(),
                }));
        }
        let entrypoint = headers
            .get("cf-entrypoint")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let content_type = headers
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let decode_error = |reason: String| ClientError::Decode {
            method: method.clone(),
            path: path.clone(),
            status: status.as_u16(),
            reason,
        };
        let boundary = multer::parse_boundary(&content_type)
            .map_err(|e| decode_error(format!("the content is not multipart: {e}")))?;
        let stream = futures::stream::once(async move { Ok::<_, std::io::Error>(bytes) });
        let mut multipart = multer::Multipart::new(stream, boundary);
        let mut modules = Vec::new();
        while let Some(field) = multipart
            .next_field()
            .await
            .map_err(|e| decode_error(format!("bad multipart content: {e}")))?
        {
            let name = field
                .file_name()
                .or(field.name())
                .unwrap_or_default()
                .to_string();
            let content_type = field.content_type().map(|m| m.to_string());
            let content = field
                .bytes()
                .await
                .map_err(|e| decode_error(format!("bad multipart content: {e}")))?;
            modules.push(UploadedModule {
                name,
                content_type,
                content: content.to_vec(),
            });
        }
        Ok((modules, entrypoint))
    }

    /// The ids of the script's versions; none when the script does not exist.
    async fn version_ids(&self, name: &str) -> Result<HashSet<String>, ClientError> {
        match self.list_worker_versions(name).await {
            Ok(versions) => Ok(versions.into_iter().map(|(id, _)| id).collect()),
            Err(error) if error.has_code(SCRIPT_NOT_FOUND) || error.status() == Some(404) => {
                Ok(HashSet::new())
            }
            Err(error) => Err(error),
        }
    }

    /// The newest version of the script tagged `tag` that is not in
    /// `before`: what an upload whose answer was lost created, if anything.
    async fn new_version_tagged(
        &self,
        name: &str,
        before: &HashSet<String>,
        tag: &str,
    ) -> Result<Option<String>, ClientError> {
        let versions = match self.list_worker_versions(name).await {
            Ok(versions) => versions,
            Err(error) if error.has_code(SCRIPT_NOT_FOUND) || error.status() == Some(404) => {
                return Ok(None);
            }
            Err(error) => return Err(error),
        };
        Ok(versions
            .into_iter()
            .find(|(id, found)| !before.contains(id) && found.as_deref() == Some(tag))
            .map(|(id, _)| id))
    }

    /// `PUT /workers/scripts/{name}`: creates or replaces the script and
    /// deploys the new version at 100% at once. Returns the version id.
    ///
    /// Not repeated blindly (its migrations would not apply twice): the
    /// version ids are read first, and after a lost answer a new version
    /// with this upload's tag is the upload's.
    pub async fn upload_worker_script(
        &self,
        name: &str,
        upload: &WorkerUpload<'_>,
    ) -> Result<String, ClientError> {
        #[derive(Deserialize)]
        struct Uploaded {
            #[serde(default)]
            deployment_id: Option<String>,
        }
        let path = self.script_path(name, "");
        let build = || upload_form(upload, false);
        let before = self.version_ids(name).await?;
        let request = Request::new(Method::PUT, &path)
            .body(Body::Multipart(&build))
            .repeat(Repeat::Unsafe);
        let uploaded = self
            .create_or_find(
                &format!("upload of worker {name:?}"),
                async |state: &mut Exchange| {
                    let uploaded: Uploaded = self.fetch_result_with(&request, state).await?;
                    Ok(uploaded.deployment_id)
                },
                async || {
                    Ok(self
                        .new_version_tagged(name, &before, upload.tag)
                        .await?
                        .map(Some))
                },
            )
            .await?;
        match uploaded {
            Some(id) => Ok(id),
            // Older answers carry no version id: the newest deployment names it.
            None => {
                let deployments = self.list_worker_deployments(name).await?;
                deployments
                    .first()
                    .and_then(|d| d.versions.first())
                    .map(|v| v.version_id.clone())
                    .ok_or_else(|| ClientError::Decode {
                        method: Method::PUT,
                        path,
                        status: 200,
                        reason: "the upload named no version and the script has no deployment"
                            .into(),
                    })
            }
        }
    }

    /// `POST .../versions`: uploads a version without deploying it; existing
    /// secrets are kept. Returns the version id. After a lost answer, a new
    /// version with this upload's tag (one not there before) is the upload's.
    pub async fn upload_worker_version(
        &self,
        name: &str,
        upload: &WorkerUpload<'_>,
    ) -> Result<String, ClientError> {
        #[derive(Deserialize)]
        struct Created {
            id: String,
        }
        let path = self.script_path(name, "/versions");
        let build = || upload_form(upload, true);
        let before = self.version_ids(name).await?;
        let query = [("bindings_inherit", "strict".to_string())];
        let request = Request::new(Method::POST, &path)
            .query(&query)
            .body(Body::Multipart(&build))
            .repeat(Repeat::Unsafe);
        self.create_or_find(
            &format!("version of worker {name:?}"),
            async |state: &mut Exchange| {
                let created: Created = self.fetch_result_with(&request, state).await?;
                Ok(created.id)
            },
            async || self.new_version_tagged(name, &before, upload.tag).await,
        )
        .await
    }

    /// Deploys one or two versions with the given percentages.
    pub async fn create_worker_deployment(
        &self,
        name: &str,
        shares: &[(String, u8)],
        message: &str,
    ) -> Result<(), ClientError> {
        let path = self.script_path(name, "/deployments");
        let versions: Vec<Value> = shares
            .iter()
            .map(|(id, percentage)| json!({"version_id": id, "percentage": percentage}))
            .collect();
        let body = json!({
            "strategy": "percentage",
            "versions": versions,
            "annotations": {"workers/message": message},
        });
        let request = Request::new(Method::POST, &path)
            .body(Body::Json(&body))
            .repeat(Repeat::Unsafe);
        self.create_or_find(
            &format!("deployment of worker {name:?}"),
            async |state: &mut Exchange| {
                self.fetch_with::<Value>(&request, state).await.map(|_| ())
            },
            async || {
                let deployments = self.list_worker_deployments(name).await?;
                Ok(deployments
                    .first()
                    .filter(|d| same_shares(&d.versions, shares))
                    .map(|_| ()))
            },
        )
        .await
    }

    /// Sets one secret through the secrets API. The value goes only into
    /// this request's body.
    pub async fn put_worker_secret(
        &self,
        name: &str,
        secret: &str,
        value: &str,
    ) -> Result<(), ClientError> {
        let path = self.script_path(name, "/secrets");
        let body = json!({"name": secret, "text": value, "type": "secret_text"});
        self.call_unit(Method::PUT, &path, &[], Body::Json(&body))
            .await
    }

    pub async fn delete_worker_secret(&self, name: &str, secret: &str) -> Result<(), ClientError> {
        let encoded =
            percent_encoding::utf8_percent_encode(secret, percent_encoding::NON_ALPHANUMERIC);
        let path = self.script_path(name, &format!("/secrets/{encoded}"));
        self.call::<Value>(
            Method::DELETE,
            &path,
            &[("url_encoded", "true".into())],
            &[],
            Body::None,
        )
        .await
        .map(|_| ())
    }

    /// The id of the zone with exactly this name, if the account has it.
    pub async fn find_zone(&self, zone: &str) -> Result<Option<String>, ClientError> {
        let zones: Vec<Zone> = self
            .call(
                Method::GET,
                "/zones",
                &[
                    ("name", zone.to_string()),
                    ("account.id", self.account_id.clone()),
                ],
                &[],
                Body::None,
            )
            .await?
            .0
            .unwrap_or_default();
        Ok(zones.into_iter().find(|z| z.name == zone).map(|z| z.id))
    }

    pub async fn list_zone_routes(&self, zone_id: &str) -> Result<Vec<Route>, ClientError> {
        let path = format!("/zones/{zone_id}/workers/routes");
        Ok(self
            .call::<Vec<Route>>(Method::GET, &path, &[], &[], Body::None)
            .await?
            .0
            .unwrap_or_default())
    }

    pub async fn create_zone_route(
        &self,
        zone_id: &str,
        pattern: &str,
        script: &str,
    ) -> Result<(), ClientError> {
        let path = format!("/zones/{zone_id}/workers/routes");
        let body = json!({"pattern": pattern, "script": script});
        let request = Request::new(Method::POST, &path)
            .body(Body::Json(&body))
            .repeat(Repeat::Unsafe);
        self.create_or_find(
            &format!("route {pattern}"),
            async |state: &mut Exchange| {
                self.fetch_with::<Value>(&request, state).await.map(|_| ())
            },
            async || {
                let routes = self.list_zone_routes(zone_id).await?;
                Ok(routes
                    .iter()
                    .any(|r| r.pattern == pattern && r.script.as_deref() == Some(script))
                    .then_some(()))
            },
        )
        .await
    }

    pub async fn delete_zone_route(
        &self,
        zone_id: &str,
        route_id: &str,
    ) -> Result<(), ClientError> {
        let path = format!("/zones/{zone_id}/workers/routes/{route_id}");
        self.call_unit(Method::DELETE, &path, &[], Body::None).await
    }

    pub async fn list_custom_domains(&self) -> Result<Vec<CustomDomain>, ClientError> {
        let path = self.account_path("/workers/domains");
        Ok(self
            .call::<Vec<CustomDomain>>(Method::GET, &path, &[], &[], Body::None)
            .await?
            .0
            .unwrap_or_default())
    }

    pub async fn attach_custom_domain(
        &self,
        hostname: &str,
        service: &str,
        zone_id: &str,
    ) -> Result<(), ClientError> {
        let path = self.account_path("/workers/domains");
        let body = json!({"hostname": hostname, "service": service, "zone_id": zone_id, "environment": "production"});
        self.call::<Value>(Method::PUT, &path, &[], &[], Body::Json(&body))
            .await
            .map(|_| ())
    }

    pub async fn detach_custom_domain(&self, domain_id: &str) -> Result<(), ClientError> {
        let path = self.account_path(&format!("/workers/domains/{domain_id}"));
        self.call_unit(Method::DELETE, &path, &[], Body::None).await
    }

    /// Deletes a script with everything attached to it (`force=true`).
    pub async fn delete_worker_script(&self, name: &str) -> Result<(), ClientError> {
        let path = self.script_path(name, "");
        self.call::<Value>(
            Method::DELETE,
            &path,
            &[("force", "true".into())],
            &[],
            Body::None,
        )
        .await
        .map(|_| ())
    }

    pub async fn list_durable_object_namespaces(
        &self,
    ) -> Result<Vec<DurableObjectNamespace>, ClientError> {
        let path = self.account_path("/workers/durable_objects/namespaces");
        self.get_all_pages(&path, 1000, &[]).await
    }
}
