//! Running a worker's steps: uploads (with bindings resolved to the ids the
//! account has now), secrets, deployments (immediate, or gradual with a
//! health gate and a return to the previous version), triggers and routing.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::{ApplyOptions, StepError, is_not_found};
use crate::cloudflare::{Client, Migration, WorkerUpload};
use crate::model::{
    Binding, DesiredState, LiveD1Database, LiveKvNamespace, LiveState, Rollout, SecretSource,
    WorkerSpec,
};
use crate::plan::{self, Change, Step};

/// What worker steps need beyond the plan: the desired state (modules,
/// secret values) and the ids the account has after the storage changes.
pub struct Context<'a> {
    desired: &'a DesiredState,
    ids: LiveState,
    message: String,
    health_timeout: Duration,
    http: reqwest::Client,
}

/// What one change's steps hand to the next ones.
#[derive(Debug, Default)]
pub struct ChangeState {
    /// The version the change uploaded.
    uploaded: Option<String>,
}

pub fn is_worker_step(step: &Step) -> bool {
    matches!(
        step,
        Step::UploadWorkerScript { .. }
            | Step::UploadWorkerVersion { .. }
            | Step::DeployWorkerVersion { .. }
            | Step::FinishWorkerRollout { .. }
            | Step::RedeployWorkerVersion { .. }
            | Step::DeleteWorkerSecret { .. }
            | Step::SetWorkerCrons { .. }
            | Step::CreateWorkerRoute { .. }
            | Step::DeleteWorkerRoute { .. }
            | Step::AttachCustomDomain { .. }
            | Step::DetachCustomDomain { .. }
    )
}

/// ` with secrets A, B (values not shown)`, or nothing.
fn with_secrets(secrets: &[String]) -> String {
    if secrets.is_empty() {
        return String::new();
    }
    format!(" with secrets {} (values not shown)", secrets.join(", "))
}

/// The storage addresses worker `key` binds.
pub fn bound_addresses(desired: &DesiredState, key: &str) -> Vec<crate::model::Address> {
    use crate::model::{Address, ResourceKind};
    let Some(worker) = desired.workers.get(key) else {
        return Vec::new();
    };
    worker
        .spec
        .bindings
        .values()
        .filter_map(|binding| match binding {
            Binding::KvNamespace(k) => Some(Address::new(ResourceKind::KvNamespaces, k.clone())),
            Binding::D1(k) => Some(Address::new(ResourceKind::D1Databases, k.clone())),
            Binding::R2Bucket(k) => Some(Address::new(ResourceKind::R2Buckets, k.clone())),
            _ => None,
        })
        .collect()
}

/// Orders worker changes so that a worker comes after the workers it binds
/// as services (validation guarantees there is no cycle).
pub fn waves<'c>(changes: &[&'c Change], desired: &DesiredState) -> Vec<Vec<&'c Change>> {
    let depends = |key: &str| -> BTreeSet<String> {
        desired
            .workers
            .get(key)
            .map(|w| {
                w.spec
                    .bindings
                    .values()
                    .filter_map(|b| match b {
                        Binding::Service(target) if target != key => Some(target.clone()),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut pending: Vec<&Change> = changes.to_vec();
    let mut waves = Vec::new();
    while !pending.is_empty() {
        let waiting: BTreeSet<String> = pending.iter().map(|c| c.address.key.clone()).collect();
        let (ready, rest): (Vec<&Change>, Vec<&Change>) = pending
            .into_iter()
            .partition(|c| depends(&c.address.key).is_disjoint(&waiting));
        if ready.is_empty() {
            // A cycle slipped past validation: run the rest together.
            waves.push(rest);
            break;
        }
        waves.push(ready);
        pending = rest;
    }
    waves
}

impl<'a> Context<'a> {
    /// Reads the ids bindings resolve to (two list calls).
    pub async fn load(
        client: &Client,
        desired: &'a DesiredState,
        options: &ApplyOptions,
    ) -> Result<Context<'a>, crate::cloudflare::ClientError> {
        let (kv, d1) = futures::try_join!(client.list_kv_namespaces(), client.list_d1_databases())?;
        let ids = LiveState {
            kv_namespaces: kv
                .into_iter()
                .map(|ns| LiveKvNamespace {
                    id: ns.id,
                    title: ns.title,
                })
                .collect(),
            d1_databases: d1
                .into_iter()
                .map(|db| LiveD1Database {
                    uuid: db.uuid,
                    name: db.name,
                    jurisdiction: None,
                    applied_migrations: None,
                })
                .collect(),
            ..LiveState::default()
        };
        Ok(Context {
            desired,
            ids,
            message: options.message.clone(),
            health_timeout: options.health_timeout,
            http: reqwest::Client::builder()
                .timeout(options.health_timeout)
                .build()
                .unwrap_or_default(),
        })
    }

    fn spec(&self, worker: &str) -> Result<&'a WorkerSpec, StepError> {
        self.desired
            .workers
            .get(worker)
            .map(|w| &w.spec)
            .ok_or_else(|| StepError::Changed(format!("`workers.{worker}` is no longer declared")))
    }

    /// What one upload of `spec` carries, with the values of `secrets`.
    fn upload<'u>(
        &'u self,
        spec: &'u WorkerSpec,
        bindings: &'u BTreeMap<String, crate::model::ResolvedBinding>,
        tag: &'u str,
        migration: Option<Migration>,
        secrets: &'u [String],
    ) -> Result<WorkerUpload<'u>, StepError> {
        let secrets = secrets
            .iter()
            .map(|name| {
                match spec.secrets.get(name) {
                    // Never upload a value this run could not read.
                    Some(secret) if matches!(secret.source, SecretSource::Unavailable(_)) => {
                        Err(StepError::Changed(format!(
                            "the value of secret `{name}` is not available to this run"
                        )))
                    }
                    Some(secret) => Ok((name.as_str(), secret.value.expose())),
                    None => Err(StepError::Changed(format!(
                        "secret `{name}` is no longer declared"
                    ))),
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(WorkerUpload {
            secrets,
            main_module: &spec.main_module,
            modules: &spec.modules,
            compatibility_date: &spec.compatibility_date,
            compatibility_flags: &spec.compatibility_flags,
            bindings,
            migration,
            tag,
            message: &self.message,
        })
    }

    /// Resolves bindings and checks the identity against the plan's.
    /// Returns the bindings and the version's tag.
    fn prepare(
        &self,
        worker: &str,
        planned: &Option<String>,
    ) -> Result<(BTreeMap<String, crate::model::ResolvedBinding>, String), StepError> {
        let spec = self.spec(worker)?;
        let bindings = plan::resolve_bindings(self.desired, &self.ids, spec).ok_or_else(|| {
            StepError::Changed(format!(
                "a binding of `workers.{worker}` points at a resource the account does not have"
            ))
        })?;
        let identity = plan::worker_identity(self.desired, &self.ids, worker).unwrap_or_default();
        if let Some(planned) = planned
            && planned != &identity
        {
            return Err(StepError::Changed(format!(
                "`workers.{worker}` would upload a version other than the one planned ({} instead of {})",
                plan::identity_tag(&identity),
                plan::identity_tag(planned)
            )));
        }
        Ok((bindings, plan::identity_tag(&identity)))
    }

    pub async fn run_step(
        &self,
        client: &Client,
        step: &Step,
        state: &mut ChangeState,
    ) -> Result<String, StepError> {
        match step {
            Step::UploadWorkerScript {
                worker,
                name,
                identity,
                migration,
                secrets,
            } => {
                let spec = self.spec(worker)?;
                let (bindings, tag) = self.prepare(worker, identity)?;
                let migration = migration.as_ref().map(|m| Migration {
                    old_tag: m.old_tag.clone(),
                    new_tag: m.new_tag.clone(),
                    new_sqlite_classes: m.new_sqlite_classes.clone(),
                });
                let upload = self.upload(spec, &bindings, &tag, migration, secrets)?;
                let version = client.upload_worker_script(name, &upload).await?;
                state.uploaded = Some(version.clone());
                Ok(format!(
                    "uploaded and deployed worker {name:?} (version {version}, tag {tag}){}",
                    with_secrets(secrets)
                ))
            }
            Step::UploadWorkerVersion {
                worker,
                name,
                identity,
                secrets,
            } => {
                let spec = self.spec(worker)?;
                let (bindings, tag) = self.prepare(worker, identity)?;
                let upload = self.upload(spec, &bindings, &tag, None, secrets)?;
                let version = client.upload_worker_version(name, &upload).await?;
                state.uploaded = Some(version.clone());
                Ok(format!(
                    "uploaded version {version} of worker {name:?} (tag {tag}){}",
                    with_secrets(secrets)
                ))
            }
            Step::DeployWorkerVersion { name, rollout } => {
                let Some(new) = state.uploaded.clone() else {
                    return Err(StepError::Changed(format!(
                        "no version of {name:?} was uploaded to deploy"
                    )));
                };
                self.deploy(client, name, &new, rollout).await
            }
            Step::RedeployWorkerVersion {
                name,
                version_id,
                rollout,
            } => {
                state.uploaded = Some(version_id.clone());
                let done = self.deploy(client, name, version_id, rollout).await?;
                Ok(format!("redeployed existing version (no upload): {done}"))
            }
            Step::FinishWorkerRollout { name, version_id } => {
                client
                    .create_worker_deployment(name, &[(version_id.clone(), 100)], &self.message)
                    .await?;
                Ok(format!(
                    "finished the rollout of worker {name:?}: version {version_id} at 100%"
                ))
            }
            Step::DeleteWorkerSecret { name, secret } => {
                match client.delete_worker_secret(name, secret).await {
                    Ok(()) => {}
                    Err(error) if is_not_found(&error) => {}
                    Err(error) => return Err(error.into()),
                }
                Ok(format!("deleted secret {secret} of worker {name:?}"))
            }
            Step::SetWorkerCrons { name, crons } => {
                client.put_worker_schedules(name, crons).await?;
                Ok(format!(
                    "set the cron triggers of worker {name:?} to {crons:?}"
                ))
            }
            Step::CreateWorkerRoute {
                zone_id,
                pattern,
                script,
            } => match client.create_zone_route(zone_id, pattern, script).await {
                Ok(()) => Ok(format!("added route {pattern}")),
                Err(error) => {
                    // A lost answer: the route may be there already.
                    let exists =
                        client
                            .list_zone_routes(zone_id)
                            .await
                            .ok()
                            .is_some_and(|routes| {
                                routes.iter().any(|r| {
                                    &r.pattern == pattern && r.script.as_deref() == Some(script)
                                })
                            });
                    if exists {
                        Ok(format!("found route {pattern}"))
                    } else {
                        Err(error.into())
                    }
                }
            },
            Step::DeleteWorkerRoute {
                zone_id,
                route_id,
                pattern,
            } => match client.delete_zone_route(zone_id, route_id).await {
                Ok(()) => Ok(format!("removed route {pattern}")),
                Err(error) if is_not_found(&error) => {
                    Ok(format!("route {pattern} was already gone"))
                }
                Err(error) => Err(error.into()),
            },
            Step::AttachCustomDomain {
                zone_id,
                hostname,
                script,
            } => {
                client
                    .attach_custom_domain(hostname, script, zone_id)
                    .await?;
                Ok(format!("attached custom domain {hostname}"))
            }
            Step::DetachCustomDomain {
                domain_id,
                hostname,
            } => match client.detach_custom_domain(domain_id).await {
                Ok(()) => Ok(format!("detached custom domain {hostname}")),
                Err(error) if is_not_found(&error) => {
                    Ok(format!("custom domain {hostname} was already detached"))
                }
                Err(error) => Err(error.into()),
            },
            other => Err(StepError::Changed(format!(
                "internal error: {other:?} is not a worker step"
            ))),
        }
    }

    /// Deploys `new`: at once, or step by step beside the version serving
    /// now, checking health between steps and going back on failure.
    async fn deploy(
        &self,
        client: &Client,
        name: &str,
        new: &str,
        rollout: &Rollout,
    ) -> Result<String, StepError> {
        let Rollout::Gradual {
            steps,
            wait_seconds,
            health_url,
        } = rollout
        else {
            client
                .create_worker_deployment(name, &[(new.to_string(), 100)], &self.message)
                .await?;
            return Ok(format!("deployed version {new} of worker {name:?} at 100%"));
        };
        let deployments = client.list_worker_deployments(name).await?;
        let previous = deployments
            .first()
            .and_then(|d| {
                d.versions
                    .iter()
                    .max_by(|a, b| a.percentage.total_cmp(&b.percentage))
            })
            .map(|v| v.version_id.clone())
            .filter(|v| v != new);
        let Some(previous) = previous else {
            client
                .create_worker_deployment(name, &[(new.to_string(), 100)], &self.message)
                .await?;
            return Ok(format!(
                "deployed version {new} of worker {name:?} at 100% (nothing to roll out beside)"
            ));
        };
        let mut reached = Vec::new();
        for &percentage in steps {
            let shares = if percentage >= 100 {
                vec![(new.to_string(), 100)]
            } else {
                vec![
                    (new.to_string(), percentage),
                    (previous.clone(), 100 - percentage),
                ]
            };
            client
                .create_worker_deployment(name, &shares, &self.message)
                .await?;
            reached.push(format!("{percentage}%"));
            if percentage >= 100 {
                break;
            }
            tokio::time::sleep(Duration::from_secs(*wait_seconds)).await;
            if let Some(url) = health_url
                && let Err(reason) = self.check_health(url, name, new).await
            {
                client
                    .create_worker_deployment(
                        name,
                        &[(previous.clone(), 100)],
                        &format!("{} (rolled back: health check failed)", self.message),
                    )
                    .await?;
                return Err(StepError::RolledBack(format!(
                    "gradual rollout of worker {name:?} stopped at {percentage}%: health check of {url} failed ({reason}); version {previous} serves 100% again"
                )));
            }
        }
        Ok(format!(
            "rolled out version {new} of worker {name:?} in steps {}",
            reached.join(" -> ")
        ))
    }

    /// Checks `url`, pinned to the new version with Cloudflare's
    /// `Cloudflare-Workers-Version-Overrides` header, so the check does not
    /// mostly reach the previous version.
    async fn check_health(&self, url: &str, script: &str, version: &str) -> Result<(), String> {
        let request = self.http.get(url).header(
            "Cloudflare-Workers-Version-Overrides",
            format!("{script}=\"{version}\""),
        );
        match request.send().await {
            Ok(response) if response.status().is_success() => Ok(()),
            Ok(response) => Err(format!("HTTP {}", response.status().as_u16())),
            Err(error) if error.is_timeout() => {
                Err(format!("no answer within {:?}", self.health_timeout))
            }
            Err(error) => Err(error.to_string()),
        }
    }
}
