//! Running the steps of KV, D1 and R2 changes. Creates whose answer was
//! lost are found by name in the client; deletes of what is already gone
//! succeed.

use super::{Effect, StepError, gone, migrations};
use crate::cloudflare::Client;
use crate::model::{Address, DesiredState, Jurisdiction};
use crate::plan::{D1Step, KvStep, R2Step};

fn jurisdiction(j: &Option<Jurisdiction>) -> Option<&'static str> {
    j.map(Jurisdiction::as_str)
}

pub(super) async fn run_kv(
    client: &Client,
    steps: &[KvStep],
    done: &mut Vec<Effect>,
) -> Result<(), StepError> {
    for step in steps {
        let effect = match step {
            KvStep::Create { title } => {
                let namespace = client.create_kv_namespace(title).await?;
                Effect::KvCreated {
                    title: title.clone(),
                    id: namespace.id,
                }
            }
            KvStep::Rename { id, title } => {
                client.rename_kv_namespace(id, title).await?;
                Effect::KvRenamed {
                    id: id.clone(),
                    title: title.clone(),
                }
            }
            KvStep::Delete { id, title } => Effect::KvDeleted {
                already_gone: gone(client.delete_kv_namespace(id).await)?,
                id: id.clone(),
                title: title.clone(),
            },
        };
        done.push(effect);
    }
    Ok(())
}

pub(super) async fn run_queue(
    client: &Client,
    steps: &[crate::plan::QueueStep],
    done: &mut Vec<Effect>,
) -> Result<(), StepError> {
    use crate::cloudflare::QueueSettings;
    use crate::plan::QueueStep;
    let settings = |delivery_delay, message_retention_period| QueueSettings {
        delivery_delay,
        message_retention_period,
    };
    for step in steps {
        let effect = match step {
            QueueStep::Create {
                name,
                delivery_delay,
                message_retention_period,
            } => {
                let settings = settings(*delivery_delay, *message_retention_period);
                let queue = client.create_queue(name, &settings).await?;
                Effect::QueueCreated {
                    name: name.clone(),
                    id: queue.queue_id,
                }
            }
            QueueStep::Update {
                id,
                name,
                delivery_delay,
                message_retention_period,
            } => {
                let settings = settings(*delivery_delay, *message_retention_period);
                client.update_queue(id, name, &settings).await?;
                Effect::QueueUpdated {
                    id: id.clone(),
                    name: name.clone(),
                }
            }
            QueueStep::Delete { id, name } => Effect::QueueDeleted {
                already_gone: gone(client.delete_queue(id).await)?,
                id: id.clone(),
                name: name.clone(),
            },
        };
        done.push(effect);
    }
    Ok(())
}

/// D1 steps; a database this change creates is the one its migrations run
/// against.
pub(super) async fn run_d1(
    client: &Client,
    desired: &DesiredState,
    address: &Address,
    steps: &[D1Step],
    progress: &super::ProgressSink,
    done: &mut Vec<Effect>,
) -> Result<(), StepError> {
    let mut created: Option<String> = None;
    for step in steps {
        let effect = match step {
            D1Step::Create {
                name,
                location_hint,
                jurisdiction: j,
            } => {
                let database = client
                    .create_d1_database(name, location_hint.map(|h| h.as_str()), jurisdiction(j))
                    .await?;
                created = Some(database.uuid.clone());
                Effect::D1Created {
                    name: name.clone(),
                    uuid: database.uuid,
                    jurisdiction: *j,
                }
            }
            D1Step::Delete { uuid, name } => Effect::D1Deleted {
                already_gone: gone(client.delete_d1_database(uuid).await)?,
                uuid: uuid.clone(),
                name: name.clone(),
            },
            D1Step::ApplyMigrations {
                uuid,
                name,
                migrations: files,
            } => {
                let Some(uuid) = uuid.as_ref().or(created.as_ref()) else {
                    return Err(StepError::Changed(format!(
                        "no D1 database {name:?} to run migrations against"
                    )));
                };
                let spec = desired
                    .d1_databases
                    .get(&address.key)
                    .map(|d| &d.spec)
                    .ok_or_else(|| {
                        StepError::Changed(format!("`{address}` is no longer declared"))
                    })?;
                let mut ran = Vec::new();
                let result = migrations::run(client, spec, uuid, files, progress, &mut ran).await;
                // What ran is recorded even when a later file failed.
                if !ran.is_empty() {
                    done.push(Effect::MigrationsApplied {
                        name: name.clone(),
                        files: ran,
                    });
                }
                result?;
                continue;
            }
            D1Step::RestoreBookmark {
                uuid,
                name,
                bookmark,
                undoes,
            } => Effect::BookmarkRestored {
                undo_bookmark: client.d1_restore(uuid, bookmark).await?,
                name: name.clone(),
                bookmark: bookmark.clone(),
                undone: undoes.clone(),
            },
        };
        done.push(effect);
    }
    Ok(())
}

pub(super) async fn run_r2(
    client: &Client,
    steps: &[R2Step],
    done: &mut Vec<Effect>,
) -> Result<(), StepError> {
    for step in steps {
        let effect = match step {
            R2Step::Create {
                name,
                location_hint,
                storage_class,
                jurisdiction: j,
            } => {
                client
                    .create_r2_bucket(
                        name,
                        location_hint.map(|h| h.as_str()),
                        storage_class.map(|c| c.as_str()),
                        jurisdiction(j),
                    )
                    .await?;
                Effect::R2Created {
                    name: name.clone(),
                    jurisdiction: *j,
                    storage_class: *storage_class,
                }
            }
            R2Step::SetStorageClass {
                name,
                jurisdiction: j,
                storage_class,
            } => {
                client
                    .set_r2_storage_class(name, jurisdiction(j), storage_class.as_str())
                    .await?;
                Effect::R2StorageClassSet {
                    name: name.clone(),
                    jurisdiction: *j,
                    storage_class: *storage_class,
                }
            }
            R2Step::Empty {
                name,
                jurisdiction: j,
            } => Effect::R2Emptied {
                objects: client.empty_r2_bucket(name, jurisdiction(j)).await?,
                name: name.clone(),
                jurisdiction: *j,
            },
            R2Step::Delete {
                name,
                jurisdiction: j,
            } => Effect::R2Deleted {
                already_gone: gone(client.delete_r2_bucket(name, jurisdiction(j)).await)?,
                name: name.clone(),
                jurisdiction: *j,
            },
        };
        done.push(effect);
    }
    Ok(())
}
