//! Running a worker's steps: uploads (with bindings resolved against the
//! account as the apply knows it: the plan's live state plus what this
//! apply created), secrets, deployments (immediate, or gradual beside the
//! version the plan recorded, with a health gate and a return to that
//! version), triggers and routing.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::{ApplyOptions, Effect, StepError, gone};
use crate::cloudflare::{Client, Migration, WorkerUpload};
use crate::model::{
    Address, Binding, DesiredState, LiveState, ResolvedBinding, ResourceKind, Rollout,
    SecretSource, WorkerSpec,
};
use crate::plan::{self, Change, RoutingStep, SettingStep, VersionStep, WorkerStep};

/// What worker steps need beyond the plan: the desired state (modules,
/// secret values) and the account as the apply knows it.
pub(super) struct Context<'a> {
    desired: &'a DesiredState,
    known: &'a LiveState,
    message: &'a str,
    health_timeout: Duration,
    progress: &'a super::ProgressSink,
}

/// The resources worker change `change` binds (its storage and the workers
/// it calls): it waits for them, and does not start when one failed.
pub(super) fn bound_addresses(desired: &DesiredState, change: &Change) -> Vec<Address> {
    if change.address.kind != ResourceKind::Workers {
        return Vec::new();
    }
    let Some(worker) = desired.workers.get(&change.address.key) else {
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
            Binding::Queue(k) => Some(Address::new(ResourceKind::Queues, k.clone())),
            Binding::Service(k) if k != &change.address.key => {
                Some(Address::new(ResourceKind::Workers, k.clone()))
            }
            _ => None,
        })
        // The queues it consumes (and their dead-letter queues) come first.
        .chain(worker.spec.consumers.iter().flat_map(|(queue, consumer)| {
            std::iter::once(queue)
                .chain(consumer.dead_letter_queue.iter())
                .map(|k| Address::new(ResourceKind::Queues, k.clone()))
        }))
        .collect()
}

/// Orders worker changes so that a worker comes after the workers it binds
/// as services (validation guarantees there is no cycle).
pub(super) fn waves<'c>(changes: &[&'c Change], desired: &DesiredState) -> Vec<Vec<&'c Change>> {
    let depends = |change: &Change| -> BTreeSet<String> {
        bound_addresses(desired, change)
            .into_iter()
            .filter(|a| a.kind == ResourceKind::Workers)
            .map(|a| a.key)
            .collect()
    };
    let mut pending: Vec<&Change> = changes.to_vec();
    let mut waves = Vec::new();
    while !pending.is_empty() {
        let waiting: BTreeSet<String> = pending.iter().map(|c| c.address.key.clone()).collect();
        let (ready, rest): (Vec<&Change>, Vec<&Change>) = pending
            .into_iter()
            .partition(|c| depends(c).is_disjoint(&waiting));
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
    pub(super) fn new(
        desired: &'a DesiredState,
        known: &'a LiveState,
        options: &'a ApplyOptions,
    ) -> Context<'a> {
        Context {
            desired,
            known,
            message: &options.message,
            health_timeout: options.health_timeout,
            progress: &options.progress,
        }
    }

    fn spec(&self, address: &Address) -> Result<&'a WorkerSpec, StepError> {
        self.desired
            .workers
            .get(&address.key)
            .map(|w| &w.spec)
            .ok_or_else(|| StepError::Changed(format!("`{address}` is no longer declared")))
    }

    /// What one upload of `spec` carries, with the values of `secrets`.
    fn upload_body<'u>(
        &'u self,
        spec: &'u WorkerSpec,
        bindings: &'u BTreeMap<String, ResolvedBinding>,
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
            message: self.message,
        })
    }

    /// Resolves bindings and checks the identity against the plan's.
    /// Returns the bindings and the version's tag.
    fn prepare(
        &self,
        address: &Address,
        planned: &Option<String>,
    ) -> Result<(BTreeMap<String, ResolvedBinding>, String), StepError> {
        let spec = self.spec(address)?;
        let changed = || {
            StepError::Changed(format!(
                "a binding of `{address}` points at a resource the account does not have"
            ))
        };
        let bindings =
            plan::resolve_bindings(self.desired, self.known, spec).ok_or_else(changed)?;
        let identity =
            plan::worker_identity(self.desired, self.known, &address.key).ok_or_else(changed)?;
        if let Some(planned) = planned
            && planned != &identity
        {
            return Err(StepError::Changed(format!(
                "`{address}` would upload a version other than the one planned ({} instead of {})",
                plan::identity_tag(&identity),
                plan::identity_tag(planned)
            )));
        }
        Ok((bindings, plan::identity_tag(&identity)))
    }

    /// Runs the steps of one worker change in order.
    pub(super) async fn run(
        &self,
        client: &Client,
        address: &Address,
        steps: &[WorkerStep],
        done: &mut Vec<Effect>,
    ) -> Result<(), StepError> {
        // The version this change uploaded, for the deploy after it.
        let mut uploaded: Option<String> = None;
        for step in steps {
            let effect = self.step(client, address, step, &mut uploaded).await?;
            done.push(effect);
        }
        Ok(())
    }

    /// Runs one step.
    async fn step(
        &self,
        client: &Client,
        address: &Address,
        step: &WorkerStep,
        uploaded: &mut Option<String>,
    ) -> Result<Effect, StepError> {
        match step {
            WorkerStep::Version(step) => self.version(client, address, step, uploaded).await,
            WorkerStep::Setting(step) => setting(client, self.known, step).await,
            WorkerStep::Routing(step) => routing(client, step).await,
        }
    }

    /// Uploads and deployments.
    async fn version(
        &self,
        client: &Client,
        address: &Address,
        step: &VersionStep,
        uploaded: &mut Option<String>,
    ) -> Result<Effect, StepError> {
        match step {
            VersionStep::UploadScript {
                name,
                identity,
                migration,
                secrets,
            } => {
                let upload = Upload {
                    name,
                    identity,
                    secrets,
                };
                self.upload(client, address, upload, Some(migration), uploaded)
                    .await
            }
            VersionStep::UploadVersion {
                name,
                identity,
                secrets,
            } => {
                let upload = Upload {
                    name,
                    identity,
                    secrets,
                };
                self.upload(client, address, upload, None, uploaded).await
            }
            VersionStep::Deploy {
                name,
                rollout,
                previous,
            } => {
                let Some(new) = uploaded.clone() else {
                    return Err(StepError::Changed(format!(
                        "no version of {name:?} was uploaded to deploy"
                    )));
                };
                self.deploy(client, name, &new, rollout, previous, false)
                    .await
            }
            VersionStep::Redeploy {
                name,
                version_id,
                rollout,
                previous,
            } => {
                self.deploy(client, name, version_id, rollout, previous, true)
                    .await
            }
            VersionStep::FinishRollout { name, version_id } => {
                client
                    .create_worker_deployment(name, &[(version_id.clone(), 100)], self.message)
                    .await?;
                Ok(Effect::RolloutFinished {
                    name: name.clone(),
                    version_id: version_id.clone(),
                })
            }
        }
    }

    /// Uploads a version (`migration` is `Some` for a whole-script upload,
    /// which deploys it at once) after checking its identity is the one
    /// planned.
    async fn upload(
        &self,
        client: &Client,
        address: &Address,
        upload: Upload<'_>,
        migration: Option<&Option<plan::DurableObjectMigration>>,
        uploaded: &mut Option<String>,
    ) -> Result<Effect, StepError> {
        let Upload {
            name,
            identity,
            secrets,
        } = upload;
        let spec = self.spec(address)?;
        let (bindings, tag) = self.prepare(address, identity)?;
        let Some(migration) = migration else {
            let body = self.upload_body(spec, &bindings, &tag, None, secrets)?;
            let version_id = client.upload_worker_version(name, &body).await?;
            *uploaded = Some(version_id.clone());
            return Ok(Effect::VersionUploaded {
                name: name.clone(),
                version_id,
                tag,
                secrets: secrets.clone(),
            });
        };
        let migration = migration.as_ref().map(|m| Migration {
            old_tag: m.old_tag.clone(),
            new_tag: m.new_tag.clone(),
            new_sqlite_classes: m.new_sqlite_classes.clone(),
        });
        let body = self.upload_body(spec, &bindings, &tag, migration, secrets)?;
        let version_id = client.upload_worker_script(name, &body).await?;
        *uploaded = Some(version_id.clone());
        Ok(Effect::ScriptUploaded {
            name: name.clone(),
            version_id,
            tag,
            secrets: secrets.clone(),
        })
    }

    /// Deploys `new`: at once, or step by step beside `previous` (the
    /// version the plan saw serving all traffic), checking health between
    /// steps and going back to `previous` on failure. Returns the
    /// percentages reached.
    async fn deploy(
        &self,
        client: &Client,
        name: &str,
        new: &str,
        rollout: &Rollout,
        previous: &Option<String>,
        redeployed: bool,
    ) -> Result<Effect, StepError> {
        let percentages = self.roll_out(client, name, new, rollout, previous).await?;
        Ok(Effect::Deployed {
            name: name.to_string(),
            version_id: new.to_string(),
            percentages,
            redeployed,
        })
    }

    async fn roll_out(
        &self,
        client: &Client,
        name: &str,
        new: &str,
        rollout: &Rollout,
        previous: &Option<String>,
    ) -> Result<Vec<u8>, StepError> {
        let at_once = async {
            client
                .create_worker_deployment(name, &[(new.to_string(), 100)], self.message)
                .await?;
            Ok::<_, StepError>(vec![100])
        };
        let Rollout::Gradual {
            steps,
            wait_seconds,
            health_url,
        } = rollout
        else {
            return at_once.await;
        };
        let Some(previous) = previous.as_deref().filter(|p| *p != new) else {
            // Nothing serves traffic to roll out beside.
            return at_once.await;
        };
        let health = match health_url {
            Some(url) => Some((
                url,
                crate::cloudflare::HealthCheck::new(self.health_timeout)?,
            )),
            None => None,
        };
        let mut reached = Vec::new();
        for &percentage in steps {
            let shares = if percentage >= 100 {
                vec![(new.to_string(), 100)]
            } else {
                vec![
                    (new.to_string(), percentage),
                    (previous.to_string(), 100 - percentage),
                ]
            };
            client
                .create_worker_deployment(name, &shares, self.message)
                .await?;
            reached.push(percentage);
            let wait = (percentage < 100).then(|| Duration::from_secs(*wait_seconds));
            self.progress.report(&super::Progress::RolloutStep {
                script: name,
                percentage,
                wait,
            });
            let Some(wait) = wait else {
                break;
            };
            tokio::time::sleep(wait).await;
            if let Some((url, check)) = &health
                && let Err(failure) = check.check(url, name, new).await
            {
                client
                    .create_worker_deployment(
                        name,
                        &[(previous.to_string(), 100)],
                        &format!("{} (rolled back: health check failed)", self.message),
                    )
                    .await?;
                return Err(StepError::RolledBack {
                    script: name.to_string(),
                    percentage,
                    url: url.to_string(),
                    reason: failure.to_string(),
                    previous: previous.to_string(),
                });
            }
        }
        Ok(reached)
    }
}

/// What an upload step names.
struct Upload<'s> {
    name: &'s String,
    identity: &'s Option<String>,
    secrets: &'s Vec<String>,
}

/// Secrets, triggers, queue consumers and the script's delete.
async fn setting(
    client: &Client,
    known: &LiveState,
    step: &SettingStep,
) -> Result<Effect, StepError> {
    Ok(match step {
        SettingStep::PutConsumer {
            name,
            queue,
            queue_id,
            consumer_id,
            settings,
            dead_letter_queue,
        } => {
            // A queue this apply created is known by now (storage goes first).
            let queue_id = match queue_id {
                Some(id) => id.clone(),
                None => known
                    .queues
                    .iter()
                    .find(|q| &q.name == queue)
                    .map(|q| q.id.clone())
                    .ok_or_else(|| StepError::Changed(format!("no queue {queue:?} to consume")))?,
            };
            let wire = crate::cloudflare::ConsumerSettings::from(settings);
            let request = crate::cloudflare::ConsumerRequest {
                script: name,
                settings: &wire,
                dead_letter_queue: dead_letter_queue.as_deref(),
            };
            match consumer_id {
                Some(consumer_id) => {
                    client
                        .update_queue_consumer(&queue_id, consumer_id, &request)
                        .await?
                }
                None => client.create_queue_consumer(&queue_id, &request).await?,
            }
            Effect::ConsumerSet {
                name: name.clone(),
                queue: queue.clone(),
            }
        }
        SettingStep::DeleteConsumer {
            name,
            queue,
            queue_id,
            consumer_id,
        } => Effect::ConsumerDeleted {
            already_gone: gone(client.delete_queue_consumer(queue_id, consumer_id).await)?,
            name: name.clone(),
            queue: queue.clone(),
        },
        SettingStep::DeleteSecret { name, secret } => {
            gone(client.delete_worker_secret(name, secret).await)?;
            Effect::SecretDeleted {
                name: name.clone(),
                secret: secret.clone(),
            }
        }
        SettingStep::SetCrons { name, crons } => {
            client.put_worker_schedules(name, crons).await?;
            Effect::CronsSet {
                name: name.clone(),
                crons: crons.clone(),
            }
        }
        SettingStep::DeleteScript { name } => Effect::ScriptDeleted {
            already_gone: gone(client.delete_worker_script(name).await)?,
            name: name.clone(),
        },
    })
}

/// Routes and custom domains.
async fn routing(client: &Client, step: &RoutingStep) -> Result<Effect, StepError> {
    Ok(match step {
        RoutingStep::CreateRoute {
            zone_id,
            pattern,
            script,
        } => {
            client.create_zone_route(zone_id, pattern, script).await?;
            Effect::RouteCreated {
                pattern: pattern.clone(),
            }
        }
        RoutingStep::DeleteRoute {
            zone_id,
            route_id,
            pattern,
        } => Effect::RouteDeleted {
            already_gone: gone(client.delete_zone_route(zone_id, route_id).await)?,
            pattern: pattern.clone(),
        },
        RoutingStep::AttachDomain {
            zone_id,
            hostname,
            script,
        } => {
            client
                .attach_custom_domain(hostname, script, zone_id)
                .await?;
            Effect::DomainAttached {
                hostname: hostname.clone(),
            }
        }
        RoutingStep::DetachDomain {
            domain_id,
            hostname,
        } => Effect::DomainDetached {
            already_gone: gone(client.detach_custom_domain(domain_id).await)?,
            hostname: hostname.clone(),
        },
    })
}
