//! Planning the storage kinds (KV namespaces, D1 databases with their
//! migrations, R2 buckets) and the deletes of what git no longer declares.
//! Pure, like the rest of `plan`.

use super::{
    Change, ChangeKind, Conflict, D1Step, Field, FieldDiff, KvStep, Note, QueueStep, R2Step,
    SettingStep, Steps, Value,
};
use crate::model::{
    Address, D1DatabaseSpec, DesiredState, Jurisdiction, LiveD1Database, LiveIndex, LiveR2Bucket,
    LiveResource, LiveState, LiveStorageClass, R2BucketSpec, ResourceKind,
};

/// A change with no conflict and no code diff.
pub(super) fn change(
    address: &Address,
    kind: ChangeKind,
    destructive: bool,
    protected: bool,
    fields: Vec<FieldDiff>,
    steps: Steps,
) -> Change {
    Change {
        address: address.clone(),
        kind,
        destructive,
        protected,
        fields,
        steps,
        conflicts: Vec::new(),
        code_diff: Vec::new(),
    }
}

fn text(value: &str) -> Value {
    Value::Text(value.to_string())
}

pub(super) fn plan_kv(
    address: &Address,
    desired: &DesiredState,
    live: &LiveIndex,
) -> Option<Change> {
    let declared = desired.kv_namespaces.get(&address.key)?;
    let title = &declared.spec.title;
    match live.resolve(desired, address) {
        // Found by its recorded id under another title: a rename in place,
        // unless another namespace has the title already.
        Some(LiveResource::KvNamespace(current)) if &current.title != title => {
            let mut rename = change(
                address,
                ChangeKind::Update,
                false,
                declared.protect,
                vec![FieldDiff::changed(
                    Field::Title,
                    Some(text(&current.title)),
                    Some(text(title)),
                )],
                Steps::KvNamespace(vec![KvStep::Rename {
                    id: current.id.clone(),
                    title: title.clone(),
                }]),
            );
            if let Some(other) = live.kv_titled(title) {
                rename.conflicts.push(Conflict::NameTaken {
                    name: title.clone(),
                    id: other.id.clone(),
                });
            }
            Some(rename)
        }
        Some(_) => None,
        None => Some(change(
            address,
            ChangeKind::Create,
            false,
            declared.protect,
            vec![FieldDiff::added(Field::Title, text(title))],
            Steps::KvNamespace(vec![KvStep::Create {
                title: title.clone(),
            }]),
        )),
    }
}

/// A note for each declared R2 bucket whose location differs from its
/// declared hint (Cloudflare may place a bucket elsewhere even when given
/// one, so a replacement would never end).
pub(super) fn location_notes(desired: &DesiredState, live: &LiveIndex) -> Vec<Note> {
    desired
        .r2_buckets
        .iter()
        .filter_map(|(key, declared)| {
            let hint = declared.spec.location_hint?;
            let address = Address::new(ResourceKind::R2Buckets, key.clone());
            match live.resolve(desired, &address) {
                Some(LiveResource::R2Bucket(bucket)) if bucket.location != Some(hint) => {
                    Some(Note::LocationDiffers {
                        address,
                        declared: hint,
                        actual: bucket.location,
                    })
                }
                _ => None,
            }
        })
        .collect()
}

/// The steps that delete an R2 bucket: its objects first unless it is
/// known to be empty (R2 refuses to delete a bucket that holds objects).
fn r2_delete_steps(name: &str, jurisdiction: Option<Jurisdiction>, empty: bool) -> Vec<R2Step> {
    let mut steps = Vec::new();
    if !empty {
        steps.push(R2Step::Empty {
            name: name.to_string(),
            jurisdiction,
        });
    }
    steps.push(R2Step::Delete {
        name: name.to_string(),
        jurisdiction,
    });
    steps
}

/// Deletes of what the ledger records but git no longer declares, when it
/// still exists (by its recorded id).
pub(super) fn plan_deletes(desired: &DesiredState, live: &LiveIndex) -> Vec<Change> {
    let mut changes = Vec::new();
    for entry in live.live().inventory.iter().flatten() {
        if desired.declares(&entry.address) {
            continue;
        }
        let Some(found) = live.by_recorded_id(entry) else {
            continue;
        };
        let steps = match found {
            LiveResource::KvNamespace(ns) => Steps::KvNamespace(vec![KvStep::Delete {
                id: ns.id.clone(),
                title: ns.title.clone(),
            }]),
            LiveResource::D1Database(db) => Steps::D1Database(vec![D1Step::Delete {
                uuid: db.uuid.clone(),
                name: db.name.clone(),
            }]),
            LiveResource::R2Bucket(b) => Steps::R2Bucket(r2_delete_steps(
                &b.name,
                b.jurisdiction,
                live.live().empty.contains(&entry.address),
            )),
            LiveResource::Queue(q) => Steps::Queue(vec![QueueStep::Delete {
                id: q.id.clone(),
                name: q.name.clone(),
            }]),
            LiveResource::DnsRecord(record) => super::dns::delete_steps(record),
            LiveResource::PagesProject(project) => {
                Steps::PagesProject(vec![super::PagesStep::DeleteProject {
                    name: project.name.clone(),
                }])
            }
            LiveResource::Worker(name) => Steps::Worker(vec![
                SettingStep::DeleteScript {
                    name: name.to_string(),
                }
                .into(),
            ]),
        };
        // An empty namespace, database or bucket loses nothing.
        let destructive =
            entry.address.kind.holds_data() && !live.live().empty.contains(&entry.address);
        changes.push(change(
            &entry.address,
            ChangeKind::Delete,
            destructive,
            entry.protect,
            vec![FieldDiff::removed(Field::Name, text(&entry.name))],
            steps,
        ));
    }
    changes
}

fn create_d1_fields(spec: &D1DatabaseSpec) -> Vec<FieldDiff> {
    let D1DatabaseSpec {
        name,
        location_hint,
        jurisdiction,
        migrations,
    } = spec;
    let mut fields = vec![FieldDiff::added(Field::Name, text(name))];
    if let Some(hint) = location_hint {
        fields.push(FieldDiff::added(
            Field::LocationHint,
            Value::LocationHint(*hint),
        ));
    }
    if let Some(jurisdiction) = jurisdiction {
        fields.push(FieldDiff::added(
            Field::Jurisdiction,
            Value::Jurisdiction(*jurisdiction),
        ));
    }
    if !migrations.is_empty() {
        let names = migrations.iter().map(|m| m.name.clone()).collect();
        fields.push(FieldDiff::added(Field::Migrations, Value::List(names)));
    }
    fields
}

/// A name or jurisdiction that differs: a different database or bucket,
/// which Cloudflare cannot rename or move, so each forces a replacement.
fn placement(
    (live_name, live_jurisdiction): (&str, Option<Jurisdiction>),
    (name, jurisdiction): (&str, Option<Jurisdiction>),
) -> Vec<FieldDiff> {
    let mut fields = Vec::new();
    if live_name != name {
        fields.push(
            FieldDiff::changed(Field::Name, Some(text(live_name)), Some(text(name)))
                .forcing_replacement(),
        );
    }
    if live_jurisdiction != jurisdiction {
        fields.push(
            FieldDiff::changed(
                Field::Jurisdiction,
                live_jurisdiction.map(Value::Jurisdiction),
                jurisdiction.map(Value::Jurisdiction),
            )
            .forcing_replacement(),
        );
    }
    fields
}

/// Creates the database, then runs every declared migration.
fn create_d1_steps(spec: &D1DatabaseSpec) -> Vec<D1Step> {
    let mut steps = vec![D1Step::Create {
        name: spec.name.clone(),
        location_hint: spec.location_hint,
        jurisdiction: spec.jurisdiction,
    }];
    if !spec.migrations.is_empty() {
        steps.push(D1Step::ApplyMigrations {
            uuid: None,
            name: spec.name.clone(),
            migrations: spec.migrations.iter().map(|m| m.name.clone()).collect(),
        });
    }
    steps
}

pub(super) fn plan_d1(
    address: &Address,
    desired: &DesiredState,
    live: &LiveIndex,
) -> Option<Change> {
    let declared = desired.d1_databases.get(&address.key)?;
    let spec = &declared.spec;
    let current = match live.resolve(desired, address) {
        Some(LiveResource::D1Database(db)) => db,
        _ => {
            return Some(change(
                address,
                ChangeKind::Create,
                false,
                declared.protect,
                create_d1_fields(spec),
                Steps::D1Database(create_d1_steps(spec)),
            ));
        }
    };
    // A database cannot be renamed or moved: a different name or
    // jurisdiction is a new database. `location_hint` is not reported by
    // the API, so it cannot be compared.
    let fields = placement(
        (&current.name, current.jurisdiction),
        (&spec.name, spec.jurisdiction),
    );
    if !fields.is_empty() {
        let mut steps = vec![D1Step::Delete {
            uuid: current.uuid.clone(),
            name: current.name.clone(),
        }];
        steps.extend(create_d1_steps(spec));
        return Some(change(
            address,
            ChangeKind::Replace,
            ResourceKind::D1Databases.holds_data(),
            declared.protect,
            fields,
            Steps::D1Database(steps),
        ));
    }
    plan_migrations(address, declared.protect, spec, current, live.live())
}

/// What a database's migrations need: pending files run, applied files git
/// no longer declares undone (by restoring the bookmark taken before the
/// earliest of them), edited files refused.
struct MigrationPlan {
    /// Applied files a restore undoes, in the order they ran.
    undone: Vec<String>,
    /// The bookmark to restore, when some applied file is undone.
    restore: Option<String>,
    /// Declared files that have not run (or run again after a restore).
    pending: Vec<String>,
    conflicts: Vec<Conflict>,
}

fn migration_plan(
    spec: &D1DatabaseSpec,
    current: &LiveD1Database,
    live: &LiveState,
) -> MigrationPlan {
    let declared: Vec<&str> = spec.migrations.iter().map(|m| m.name.as_str()).collect();
    let applied: &[String] = current.applied_migrations.as_deref().unwrap_or_default();
    let recorded = |file: &str| {
        live.migration_hashes
            .get(&(spec.name.clone(), file.to_string()))
    };
    let mut conflicts = Vec::new();
    // Applied files git no longer declares (a reverted commit) are undone
    // by restoring the bookmark taken just before the earliest of them,
    // which undoes every file applied after it too; those git still
    // declares run again. Without that bookmark (wrangler ran the file)
    // nothing can undo it.
    let first_undeclared = applied
        .iter()
        .position(|name| !declared.contains(&name.as_str()));
    let restore = first_undeclared.and_then(|index| {
        let first = &applied[index];
        match recorded(first).and_then(|r| r.bookmark_before.clone()) {
            Some(bookmark) => Some((index, bookmark)),
            None => {
                conflicts.push(Conflict::MigrationNotUndoable {
                    file: first.clone(),
                });
                None
            }
        }
    });
    let kept = &applied[..restore.as_ref().map_or(applied.len(), |(index, _)| *index)];
    // A migration must not change once it ran: wrangler would not notice.
    let edited: Vec<String> = spec
        .migrations
        .iter()
        .filter(|m| kept.contains(&m.name))
        .filter(|m| recorded(&m.name).is_some_and(|r| r.sha256 != m.sha256))
        .map(|m| m.path.clone())
        .collect();
    if !edited.is_empty() {
        conflicts.insert(0, Conflict::MigrationsEdited { files: edited });
    }
    MigrationPlan {
        undone: applied[kept.len()..].to_vec(),
        restore: restore.map(|(_, bookmark)| bookmark),
        // In file order, like `wrangler d1 migrations apply`.
        pending: declared
            .into_iter()
            .filter(|name| !kept.iter().any(|k| k == name))
            .map(str::to_string)
            .collect(),
        conflicts,
    }
}

fn plan_migrations(
    address: &Address,
    protect: bool,
    spec: &D1DatabaseSpec,
    current: &LiveD1Database,
    live: &LiveState,
) -> Option<Change> {
    let MigrationPlan {
        undone,
        restore,
        pending,
        conflicts,
    } = migration_plan(spec, current, live);
    if pending.is_empty() && undone.is_empty() && conflicts.is_empty() {
        return None;
    }
    let applied = current.applied_migrations.clone().unwrap_or_default();
    let mut fields = vec![FieldDiff::changed(
        Field::Migrations,
        Some(Value::List(applied)),
        Some(Value::MigrationChanges {
            undo: if restore.is_some() {
                undone.clone()
            } else {
                Vec::new()
            },
            run: pending.clone(),
        }),
    )];
    let mut steps = Vec::new();
    if let Some(bookmark) = &restore {
        fields.push(FieldDiff::added(
            Field::DataLoss,
            Value::WritesSince(bookmark.clone()),
        ));
        steps.push(D1Step::RestoreBookmark {
            uuid: current.uuid.clone(),
            name: spec.name.clone(),
            bookmark: bookmark.clone(),
            undoes: undone,
        });
    }
    if !pending.is_empty() {
        steps.push(D1Step::ApplyMigrations {
            uuid: Some(current.uuid.clone()),
            name: spec.name.clone(),
            migrations: pending,
        });
    }
    Some(Change {
        conflicts,
        ..change(
            address,
            ChangeKind::Update,
            restore.is_some(),
            protect,
            fields,
            Steps::D1Database(steps),
        )
    })
}

fn create_r2_step(spec: &R2BucketSpec) -> R2Step {
    R2Step::Create {
        name: spec.name.clone(),
        location_hint: spec.location_hint,
        storage_class: spec.storage_class,
        jurisdiction: spec.jurisdiction,
    }
}

fn create_r2_fields(spec: &R2BucketSpec) -> Vec<FieldDiff> {
    let R2BucketSpec {
        name,
        location_hint,
        storage_class,
        jurisdiction,
    } = spec;
    let mut fields = vec![FieldDiff::added(Field::Name, text(name))];
    if let Some(hint) = location_hint {
        fields.push(FieldDiff::added(
            Field::LocationHint,
            Value::LocationHint(*hint),
        ));
    }
    if let Some(class) = storage_class {
        fields.push(FieldDiff::added(
            Field::StorageClass,
            Value::StorageClass(*class),
        ));
    }
    if let Some(j) = jurisdiction {
        fields.push(FieldDiff::added(
            Field::Jurisdiction,
            Value::Jurisdiction(*j),
        ));
    }
    fields
}

/// The fields of `current` that differ from `spec` and force a
/// replacement (name, jurisdiction, location), then the storage class.
fn r2_fields(spec: &R2BucketSpec, current: &LiveR2Bucket) -> Vec<FieldDiff> {
    let mut fields = placement(
        (&current.name, current.jurisdiction),
        (&spec.name, spec.jurisdiction),
    );
    // A location hint is only a wish at creation: a difference is a note
    // ([`location_notes`]), never a replacement.
    if let Some(class) = spec.storage_class
        && current.storage_class != LiveStorageClass::Known(class)
    {
        let before = match &current.storage_class {
            LiveStorageClass::Known(class) => Value::StorageClass(*class),
            LiveStorageClass::Unknown(name) => Value::Text(name.clone()),
        };
        fields.push(FieldDiff::changed(
            Field::StorageClass,
            Some(before),
            Some(Value::StorageClass(class)),
        ));
    }
    fields
}

pub(super) fn plan_r2(
    address: &Address,
    desired: &DesiredState,
    live: &LiveIndex,
) -> Option<Change> {
    let declared = desired.r2_buckets.get(&address.key)?;
    let spec = &declared.spec;
    let current = match live.resolve(desired, address) {
        Some(LiveResource::R2Bucket(bucket)) => Some(bucket),
        // The same name in another jurisdiction that was listed: the
        // bucket moves, which Cloudflare cannot do in place.
        _ => live.live().r2_buckets.iter().find(|b| b.name == spec.name),
    };
    let Some(current) = current else {
        return Some(change(
            address,
            ChangeKind::Create,
            false,
            declared.protect,
            create_r2_fields(spec),
            Steps::R2Bucket(vec![create_r2_step(spec)]),
        ));
    };
    let fields = r2_fields(spec, current);
    if fields.is_empty() {
        return None;
    }
    if fields.iter().any(|f| f.forces_replacement) {
        return Some(change(
            address,
            ChangeKind::Replace,
            ResourceKind::R2Buckets.holds_data(),
            declared.protect,
            fields,
            Steps::R2Bucket({
                let mut steps = r2_delete_steps(&current.name, current.jurisdiction, false);
                steps.push(create_r2_step(spec));
                steps
            }),
        ));
    }
    // Only a declared class that differs changes in place.
    let storage_class = spec.storage_class?;
    Some(change(
        address,
        ChangeKind::Update,
        false,
        declared.protect,
        fields,
        Steps::R2Bucket(vec![R2Step::SetStorageClass {
            name: spec.name.clone(),
            jurisdiction: spec.jurisdiction,
            storage_class,
        }]),
    ))
}

/// A queue: created; renamed and its declared settings set in place (the
/// backlog is kept); settings left out of the manifest are not compared.
pub(super) fn plan_queue(
    address: &Address,
    desired: &DesiredState,
    live: &LiveIndex,
) -> Option<Change> {
    let declared = desired.queues.get(&address.key)?;
    let spec = &declared.spec;
    let seconds = |value: Option<u64>| value.map(Value::Seconds);
    let Some(LiveResource::Queue(current)) = live.resolve(desired, address) else {
        let mut fields = vec![FieldDiff::added(Field::Name, text(&spec.name))];
        if let Some(delay) = spec.delivery_delay {
            fields.push(FieldDiff::added(
                Field::DeliveryDelay,
                Value::Seconds(delay),
            ));
        }
        if let Some(retention) = spec.message_retention_period {
            fields.push(FieldDiff::added(
                Field::MessageRetentionPeriod,
                Value::Seconds(retention),
            ));
        }
        return Some(change(
            address,
            ChangeKind::Create,
            false,
            declared.protect,
            fields,
            Steps::Queue(vec![QueueStep::Create {
                name: spec.name.clone(),
                delivery_delay: spec.delivery_delay,
                message_retention_period: spec.message_retention_period,
            }]),
        ));
    };
    let mut fields = Vec::new();
    if current.name != spec.name {
        fields.push(FieldDiff::changed(
            Field::Name,
            Some(text(&current.name)),
            Some(text(&spec.name)),
        ));
    }
    if spec.delivery_delay.is_some() && spec.delivery_delay != current.delivery_delay {
        fields.push(FieldDiff::changed(
            Field::DeliveryDelay,
            seconds(current.delivery_delay),
            seconds(spec.delivery_delay),
        ));
    }
    if spec.message_retention_period.is_some()
        && spec.message_retention_period != current.message_retention_period
    {
        fields.push(FieldDiff::changed(
            Field::MessageRetentionPeriod,
            seconds(current.message_retention_period),
            seconds(spec.message_retention_period),
        ));
    }
    if fields.is_empty() {
        return None;
    }
    Some(change(
        address,
        ChangeKind::Update,
        false,
        declared.protect,
        fields,
        Steps::Queue(vec![QueueStep::Update {
            id: current.id.clone(),
            name: spec.name.clone(),
            delivery_delay: spec.delivery_delay,
            message_retention_period: spec.message_retention_period,
        }]),
    ))
}
