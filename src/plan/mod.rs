//! The planner: a pure, deterministic function from the desired state and
//! the live state to an ordered list of changes. No I/O, no clock, no async:
//! the same inputs give a byte-identical plan.
//!
//! Resources are matched to live ones by their Cloudflare name (KV title, D1
//! name, R2 name within its jurisdiction). Until the ledger records which
//! live resources flareops manages, live resources that git no longer
//! declares are left alone, and the plan says so.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

mod saved;
mod worker;

pub use saved::{SavedPlan, SavedPlanError, manifest_fingerprint};
pub use worker::{identity_tag, live_identity, resolve_bindings, worker_identity};

use crate::model::{
    Address, D1DatabaseSpec, Declared, DesiredState, Jurisdiction, KvNamespaceSpec, LiveR2Bucket,
    LiveState, LocationHint, R2BucketSpec, ResourceKind, Rollout, StorageClass,
};

/// The version of the plan's JSON schema (`docs/plan-json.md`). Bumped on
/// any change that is not a pure addition.
pub const FORMAT_VERSION: u32 = 1;

/// An ordered list of changes for one environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub format_version: u32,
    pub environment: String,
    pub account_id: String,
    /// SHA-256 of the live state this plan was computed from.
    pub live_fingerprint: String,
    pub changes: Vec<Change>,
    /// Declared resources that already match.
    pub unchanged: Vec<Address>,
    pub notes: Vec<String>,
}

/// What happens to one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Create,
    Update,
    Replace,
    /// Removed from git, recorded in the ledger: apply deletes it (only with
    /// `--allow-delete`).
    Delete,
}

/// One planned change: the address, a field-level diff and the exact API
/// steps `apply` will run, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub address: Address,
    pub kind: ChangeKind,
    /// Whether the change deletes data (a replace of a KV, D1 or R2 resource).
    pub destructive: bool,
    /// `protect: true` in the manifest: a destructive change is refused.
    pub protected: bool,
    pub fields: Vec<FieldDiff>,
    pub steps: Vec<Step>,
    /// Why apply must not run this change as planned (a deployment someone
    /// else split between versions, a missing zone). Apply refuses the plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conflict: Option<String>,
    /// Unified diffs of a worker's changed modules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub code_diff: Vec<ModuleDiff>,
}

/// A unified diff of one module (`---` deployed, `+++` git).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleDiff {
    pub module: String,
    pub diff: String,
}

/// One field's old and new value (`null` = absent).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldDiff {
    pub field: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
    /// The field cannot change in place: the resource is replaced.
    pub forces_replacement: bool,
}

/// One API operation of an apply. A plan's steps are all apply runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Step {
    CreateKvNamespace {
        title: String,
    },
    /// Rename in place: same id, data kept.
    RenameKvNamespace {
        id: String,
        title: String,
    },
    DeleteKvNamespace {
        id: String,
        title: String,
    },
    DeleteWorkerScript {
        name: String,
    },
    CreateD1Database {
        name: String,
        location_hint: Option<LocationHint>,
        jurisdiction: Option<Jurisdiction>,
    },
    DeleteD1Database {
        uuid: String,
        name: String,
    },
    /// Take a time-travel bookmark, then run these migration files in
    /// order, each recorded in wrangler's `d1_migrations` table.
    ApplyD1Migrations {
        database: String,
        name: String,
        migrations: Vec<String>,
    },
    /// Restore the D1 time-travel bookmark taken just before the earliest
    /// of `undoes` ran: undoes those applied migration files (in the order
    /// they ran) and every write since.
    RestoreD1Bookmark {
        database_key: String,
        name: String,
        bookmark: String,
        undoes: Vec<String>,
    },
    CreateR2Bucket {
        name: String,
        location_hint: Option<LocationHint>,
        storage_class: Option<StorageClass>,
        jurisdiction: Option<Jurisdiction>,
    },
    SetR2StorageClass {
        name: String,
        jurisdiction: Option<Jurisdiction>,
        storage_class: StorageClass,
    },
    DeleteR2Bucket {
        name: String,
        jurisdiction: Option<Jurisdiction>,
    },
    /// `PUT` the whole script: a first deploy, or one that carries a
    /// Durable Object migration. Deploys the new version at 100% at once.
    UploadWorkerScript {
        worker: String,
        name: String,
        /// The version's identity, or `None` when it depends on ids that
        /// this apply creates.
        identity: Option<String>,
        migration: Option<DurableObjectMigration>,
        /// Secrets whose values (from the CI environment) this upload
        /// carries; the worker's other secrets are kept.
        secrets: Vec<String>,
    },
    /// Upload a new version without deploying it.
    UploadWorkerVersion {
        worker: String,
        name: String,
        identity: Option<String>,
        secrets: Vec<String>,
    },
    /// Deploy the version uploaded by this change.
    DeployWorkerVersion {
        name: String,
        rollout: Rollout,
    },
    /// Deploy an existing version that carries the declared identity (a
    /// revert): no upload.
    RedeployWorkerVersion {
        name: String,
        version_id: String,
        rollout: Rollout,
    },
    /// Finish a rollout an earlier apply left split: the version git
    /// declares goes to 100%.
    FinishWorkerRollout {
        name: String,
        version_id: String,
    },
    /// Delete a secret removed from git (after the new version is live).
    DeleteWorkerSecret {
        name: String,
        secret: String,
    },
    /// Replace the cron triggers.
    SetWorkerCrons {
        name: String,
        crons: Vec<String>,
    },
    CreateWorkerRoute {
        zone_id: String,
        pattern: String,
        script: String,
    },
    DeleteWorkerRoute {
        zone_id: String,
        route_id: String,
        pattern: String,
    },
    AttachCustomDomain {
        zone_id: String,
        hostname: String,
        script: String,
    },
    DetachCustomDomain {
        domain_id: String,
        hostname: String,
    },
}

/// A Durable Object migration: the classes that get new (SQLite-backed)
/// namespaces, and the tags it moves the script between.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DurableObjectMigration {
    pub old_tag: Option<String>,
    pub new_tag: String,
    pub new_sqlite_classes: Vec<String>,
}

/// Counts of a plan's changes by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub create: usize,
    pub update: usize,
    pub replace: usize,
    pub delete: usize,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    pub fn summary(&self) -> Summary {
        let mut summary = Summary::default();
        for change in &self.changes {
            match change.kind {
                ChangeKind::Create => summary.create += 1,
                ChangeKind::Update => summary.update += 1,
                ChangeKind::Replace => summary.replace += 1,
                ChangeKind::Delete => summary.delete += 1,
            }
        }
        summary
    }

    pub fn destructive_changes(&self) -> impl Iterator<Item = &Change> {
        self.changes.iter().filter(|c| c.destructive)
    }
}

/// The note a plan carries while the account has no ledger yet.
pub const NOTE_NO_DELETES: &str = "the account has no ledger yet: resources removed from git are deleted only once an apply has recorded what flareops manages";

/// Computes the plan that takes `live` to `desired`.
pub fn plan(desired: &DesiredState, live: &LiveState) -> Plan {
    let mut changes = Vec::new();
    let mut unchanged = Vec::new();
    let mut notes = Vec::new();
    if live.inventory.is_none() {
        notes.push(NOTE_NO_DELETES.to_string());
    }

    for (key, declared) in &desired.kv_namespaces {
        let address = Address::new(ResourceKind::KvNamespaces, key.clone());
        match plan_kv(address.clone(), declared, live) {
            Some(change) => changes.push(change),
            None => unchanged.push(address),
        }
    }
    for (key, declared) in &desired.d1_databases {
        let address = Address::new(ResourceKind::D1Databases, key.clone());
        match plan_d1(address.clone(), declared, live) {
            Some(change) => changes.push(change),
            None => unchanged.push(address),
        }
    }
    for (key, declared) in &desired.r2_buckets {
        let address = Address::new(ResourceKind::R2Buckets, key.clone());
        match plan_r2(address.clone(), declared, live) {
            Some(change) => changes.push(change),
            None => unchanged.push(address),
        }
    }
    changes.extend(plan_deletes(desired, live));
    // Bindings to what this plan creates or replaces resolve after apply.
    let pending: std::collections::BTreeSet<Address> = changes
        .iter()
        .filter(|c| matches!(c.kind, ChangeKind::Create | ChangeKind::Replace))
        .map(|c| c.address.clone())
        .collect();
    for (key, declared) in &desired.workers {
        let address = Address::new(ResourceKind::Workers, key.clone());
        match worker::plan_worker(address.clone(), key, declared, desired, live, &pending) {
            Some(change) => changes.push(change),
            None => unchanged.push(address),
        }
    }
    if !desired.workers.is_empty() && live.secret_fingerprints.is_none() {
        notes.push(worker::NOTE_SECRETS_NOT_COMPARED.to_string());
    }
    let unavailable: std::collections::BTreeSet<&str> = desired
        .workers
        .values()
        .flat_map(|w| w.spec.secrets.values())
        .filter_map(|s| match &s.source {
            crate::model::SecretSource::Unavailable(variable) => Some(variable.as_str()),
            _ => None,
        })
        .collect();
    if !unavailable.is_empty() {
        notes.push(format!(
            "secret values not available to this run ({}): those secrets are compared by name only, so a changed value shows only in a plan that has them (apply always needs them)",
            unavailable.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    changes.sort_by(|a, b| a.address.cmp(&b.address));
    unchanged.sort();
    Plan {
        format_version: FORMAT_VERSION,
        environment: desired.environment.clone(),
        account_id: live.account_id.clone(),
        live_fingerprint: live.fingerprint(),
        changes,
        unchanged,
        notes,
    }
}

fn added(field: &str, value: Value) -> FieldDiff {
    FieldDiff {
        field: field.to_string(),
        before: None,
        after: Some(value),
        forces_replacement: false,
    }
}

fn changed(field: &str, before: Option<Value>, after: Option<Value>, forces: bool) -> FieldDiff {
    FieldDiff {
        field: field.to_string(),
        before,
        after,
        forces_replacement: forces,
    }
}

fn opt<T: Serialize>(value: Option<T>) -> Option<Value> {
    value.map(|v| json!(v))
}

fn plan_kv(
    address: Address,
    declared: &Declared<KvNamespaceSpec>,
    live: &LiveState,
) -> Option<Change> {
    let KvNamespaceSpec { title } = &declared.spec;
    // The ledger knows the namespace by id: a new title is a rename.
    let recorded = live
        .inventory
        .iter()
        .flatten()
        .find(|e| e.address == address)
        .and_then(|e| live.kv_namespaces.iter().find(|ns| ns.id == e.id));
    if let Some(current) = recorded {
        if &current.title == title {
            return None;
        }
        return Some(Change {
            conflict: None,
            code_diff: Vec::new(),
            kind: ChangeKind::Update,
            destructive: false,
            protected: declared.protect,
            fields: vec![changed(
                "title",
                Some(json!(current.title)),
                Some(json!(title)),
                false,
            )],
            steps: vec![Step::RenameKvNamespace {
                id: current.id.clone(),
                title: title.clone(),
            }],
            address,
        });
    }
    if live.kv_namespaces.iter().any(|ns| &ns.title == title) {
        return None;
    }
    Some(Change {
        conflict: None,
        code_diff: Vec::new(),
        address,
        kind: ChangeKind::Create,
        destructive: false,
        protected: declared.protect,
        fields: vec![added("title", json!(title))],
        steps: vec![Step::CreateKvNamespace {
            title: title.clone(),
        }],
    })
}

/// Deletes of what the ledger records but git no longer declares, when it
/// still exists (by its recorded id).
fn plan_deletes(desired: &DesiredState, live: &LiveState) -> Vec<Change> {
    let declared = |address: &Address| match address.kind {
        ResourceKind::KvNamespaces => desired.kv_namespaces.contains_key(&address.key),
        ResourceKind::D1Databases => desired.d1_databases.contains_key(&address.key),
        ResourceKind::R2Buckets => desired.r2_buckets.contains_key(&address.key),
        ResourceKind::Workers => desired.workers.contains_key(&address.key),
    };
    let mut changes = Vec::new();
    for entry in live.inventory.iter().flatten() {
        if declared(&entry.address) {
            continue;
        }
        let step = match entry.address.kind {
            ResourceKind::KvNamespaces => live
                .kv_namespaces
                .iter()
                .find(|ns| ns.id == entry.id)
                .map(|ns| Step::DeleteKvNamespace {
                    id: ns.id.clone(),
                    title: ns.title.clone(),
                }),
            ResourceKind::D1Databases => live
                .d1_databases
                .iter()
                .find(|db| db.uuid == entry.id)
                .map(|db| Step::DeleteD1Database {
                    uuid: db.uuid.clone(),
                    name: db.name.clone(),
                }),
            ResourceKind::R2Buckets => live
                .r2_buckets
                .iter()
                .find(|b| crate::model::InventoryEntry::r2_id(&b.name, b.jurisdiction) == entry.id)
                .map(|b| Step::DeleteR2Bucket {
                    name: b.name.clone(),
                    jurisdiction: b.jurisdiction,
                }),
            // Workers that git does not declare are not listed in detail;
            // the recorded script name is enough to delete it.
            ResourceKind::Workers => Some(Step::DeleteWorkerScript {
                name: entry.id.clone(),
            }),
        };
        let Some(step) = step else { continue };
        changes.push(Change {
            conflict: None,
            code_diff: Vec::new(),
            address: entry.address.clone(),
            kind: ChangeKind::Delete,
            // An empty namespace or database loses nothing.
            destructive: entry.address.kind.holds_data() && !live.empty.contains(&entry.address),
            protected: entry.protect,
            fields: vec![FieldDiff {
                field: "name".into(),
                before: Some(json!(entry.name)),
                after: None,
                forces_replacement: false,
            }],
            steps: vec![step],
        });
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
    let mut fields = vec![added("name", json!(name))];
    if let Some(hint) = location_hint {
        fields.push(added("location_hint", json!(hint)));
    }
    if let Some(jurisdiction) = jurisdiction {
        fields.push(added("jurisdiction", json!(jurisdiction)));
    }
    if !migrations.is_empty() {
        let names: Vec<&str> = migrations.iter().map(|m| m.name.as_str()).collect();
        fields.push(added("migrations", json!(names)));
    }
    fields
}

fn create_d1_step(spec: &D1DatabaseSpec) -> Step {
    Step::CreateD1Database {
        name: spec.name.clone(),
        location_hint: spec.location_hint,
        jurisdiction: spec.jurisdiction,
    }
}

fn plan_d1(
    address: Address,
    declared: &Declared<D1DatabaseSpec>,
    live: &LiveState,
) -> Option<Change> {
    let spec = &declared.spec;
    let all_migrations: Vec<String> = spec.migrations.iter().map(|m| m.name.clone()).collect();
    let run_migrations = |names: Vec<String>| {
        (!names.is_empty()).then(|| Step::ApplyD1Migrations {
            database: address.key.clone(),
            name: spec.name.clone(),
            migrations: names,
        })
    };
    let Some(current) = live.d1_databases.iter().find(|db| db.name == spec.name) else {
        let steps = std::iter::once(create_d1_step(spec))
            .chain(run_migrations(all_migrations))
            .collect();
        return Some(Change {
            conflict: None,
            code_diff: Vec::new(),
            kind: ChangeKind::Create,
            destructive: false,
            protected: declared.protect,
            fields: create_d1_fields(spec),
            steps,
            address,
        });
    };
    // `location_hint` is not reported by the API, so it cannot be compared.
    if current.jurisdiction == spec.jurisdiction {
        let applied = current.applied_migrations.clone().unwrap_or_default();
        let recorded = |file: &str| {
            live.migration_hashes
                .get(&(spec.name.clone(), file.to_string()))
        };
        // Applied files git no longer declares (a reverted commit) are
        // undone by restoring the bookmark taken just before the earliest
        // of them ran, which undoes every file applied after it too; those
        // git still declares run again. Without that bookmark (wrangler ran
        // the file) nothing can undo it.
        let first_undeclared = applied
            .iter()
            .position(|name| !all_migrations.contains(name));
        let mut conflicts = Vec::new();
        let restore = first_undeclared.and_then(|index| {
            let first = &applied[index];
            match recorded(first).and_then(|r| r.bookmark_before.clone()) {
                Some(bookmark) => Some((index, bookmark)),
                None => {
                    conflicts.push(format!(
                        "{first} was applied but git no longer declares it, and flareops did not apply it, so there is no bookmark to restore: declare it again, or undo it by hand"
                    ));
                    None
                }
            }
        });
        // What stays applied: everything, or what ran before the restored
        // bookmark.
        let kept = &applied[..restore.as_ref().map_or(applied.len(), |(index, _)| *index)];
        // Pending migrations: declared, not applied (in file order, like
        // `wrangler d1 migrations apply`).
        let pending: Vec<String> = all_migrations
            .into_iter()
            .filter(|name| !kept.contains(name))
            .collect();
        // A migration must not change once it ran: wrangler would not notice.
        let edited: Vec<String> = spec
            .migrations
            .iter()
            .filter(|m| kept.contains(&m.name))
            .filter(|m| recorded(&m.name).is_some_and(|r| r.sha256 != m.sha256))
            .map(|m| m.path.clone())
            .collect();
        if pending.is_empty() && edited.is_empty() && restore.is_none() && conflicts.is_empty() {
            return None;
        }
        if !edited.is_empty() {
            conflicts.insert(0, format!(
                "{} changed after it was applied; an applied migration must not change: restore it and add a new migration instead",
                edited.join(", ")
            ));
        }
        let undone: Vec<String> = applied[kept.len()..].to_vec();
        let mut fields = vec![FieldDiff {
            field: "migrations".into(),
            before: Some(json!(applied)),
            after: Some(json!(
                undone
                    .iter()
                    .map(|n| format!("- {n}"))
                    .chain(pending.iter().map(|n| format!("+ {n}")))
                    .collect::<Vec<_>>()
            )),
            forces_replacement: false,
        }];
        let mut steps = Vec::new();
        if let Some((_, bookmark)) = &restore {
            fields.push(FieldDiff {
                field: "data_loss".into(),
                before: None,
                after: Some(json!(format!("writes since {bookmark} are lost"))),
                forces_replacement: false,
            });
            steps.push(Step::RestoreD1Bookmark {
                database_key: address.key.clone(),
                name: spec.name.clone(),
                bookmark: bookmark.clone(),
                undoes: undone,
            });
        }
        steps.extend(run_migrations(pending));
        return Some(Change {
            conflict: (!conflicts.is_empty()).then(|| conflicts.join("; ")),
            code_diff: Vec::new(),
            kind: ChangeKind::Update,
            destructive: restore.is_some(),
            protected: declared.protect,
            fields,
            steps,
            address,
        });
    }
    let steps = [
        Step::DeleteD1Database {
            uuid: current.uuid.clone(),
            name: current.name.clone(),
        },
        create_d1_step(spec),
    ]
    .into_iter()
    .chain(run_migrations(all_migrations))
    .collect();
    Some(Change {
        conflict: None,
        code_diff: Vec::new(),
        kind: ChangeKind::Replace,
        destructive: ResourceKind::D1Databases.holds_data(),
        protected: declared.protect,
        fields: vec![changed(
            "jurisdiction",
            opt(current.jurisdiction),
            opt(spec.jurisdiction),
            true,
        )],
        steps,
        address,
    })
}

/// Deletes `current` and creates the declared bucket: destructive.
fn replace_r2(
    address: Address,
    declared: &Declared<R2BucketSpec>,
    current: &LiveR2Bucket,
    fields: Vec<FieldDiff>,
) -> Change {
    Change {
        conflict: None,
        code_diff: Vec::new(),
        address,
        kind: ChangeKind::Replace,
        destructive: ResourceKind::R2Buckets.holds_data(),
        protected: declared.protect,
        fields,
        steps: vec![
            Step::DeleteR2Bucket {
                name: current.name.clone(),
                jurisdiction: current.jurisdiction,
            },
            create_r2_step(&declared.spec),
        ],
    }
}

fn create_r2_step(spec: &R2BucketSpec) -> Step {
    Step::CreateR2Bucket {
        name: spec.name.clone(),
        location_hint: spec.location_hint,
        storage_class: spec.storage_class,
        jurisdiction: spec.jurisdiction,
    }
}

fn plan_r2(
    address: Address,
    declared: &Declared<R2BucketSpec>,
    live: &LiveState,
) -> Option<Change> {
    let spec = &declared.spec;
    let R2BucketSpec {
        name,
        location_hint,
        storage_class,
        jurisdiction,
    } = spec;
    let same_place = live
        .r2_buckets
        .iter()
        .find(|b| &b.name == name && &b.jurisdiction == jurisdiction);
    let Some(current) = same_place else {
        // The same name in another jurisdiction that was listed: the bucket
        // moves, which Cloudflare cannot do in place.
        if let Some(elsewhere) = live.r2_buckets.iter().find(|b| &b.name == name) {
            let fields = vec![changed(
                "jurisdiction",
                opt(elsewhere.jurisdiction),
                opt(*jurisdiction),
                true,
            )];
            return Some(replace_r2(address, declared, elsewhere, fields));
        }
        let mut fields = vec![added("name", json!(name))];
        if let Some(hint) = location_hint {
            fields.push(added("location_hint", json!(hint)));
        }
        if let Some(class) = storage_class {
            fields.push(added("storage_class", json!(class)));
        }
        if let Some(j) = jurisdiction {
            fields.push(added("jurisdiction", json!(j)));
        }
        return Some(Change {
            conflict: None,
            code_diff: Vec::new(),
            address,
            kind: ChangeKind::Create,
            destructive: false,
            protected: declared.protect,
            fields,
            steps: vec![create_r2_step(spec)],
        });
    };

    let mut fields = Vec::new();
    // Unset fields are not managed: Cloudflare chooses, and git does not care.
    let location_moves = matches!(location_hint, Some(hint) if current.location != Some(*hint));
    if location_moves {
        fields.push(changed(
            "location_hint",
            opt(current.location),
            opt(*location_hint),
            true,
        ));
    }
    let class_changes = matches!(storage_class, Some(class) if current.storage_class != *class);
    if class_changes {
        fields.push(changed(
            "storage_class",
            Some(json!(current.storage_class)),
            opt(*storage_class),
            false,
        ));
    }
    if fields.is_empty() {
        return None;
    }
    if location_moves {
        return Some(replace_r2(address, declared, current, fields));
    }
    let class = storage_class.unwrap_or(current.storage_class);
    Some(Change {
        conflict: None,
        code_diff: Vec::new(),
        address,
        kind: ChangeKind::Update,
        destructive: false,
        protected: declared.protect,
        fields,
        steps: vec![Step::SetR2StorageClass {
            name: name.clone(),
            jurisdiction: *jurisdiction,
            storage_class: class,
        }],
    })
}

#[cfg(test)]
mod tests;
