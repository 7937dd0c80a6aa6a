//! Planning a worker: its identity (what makes a version), the version,
//! secrets, triggers and routing it needs. Pure, like the rest of `plan`.
//!
//! A version's identity is the SHA-256 of its modules and its versioned
//! settings with bindings resolved to Cloudflare ids. flareops writes the
//! first 20 hex digits to the version's `workers/tag` annotation (older API
//! descriptions cap the tag at 20 bytes), so an unchanged worker is
//! recognized from version metadata alone. A version without a matching
//! tag (deployed by someone else, or created by a secret change) is
//! compared by content, which the live fetch downloads only then.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{Change, ChangeKind, DurableObjectMigration, FieldDiff, ModuleDiff, Step};
use crate::model::{
    Address, Binding, Declared, DesiredState, LiveState, LiveWorker, ResolvedBinding, ResourceKind,
    SecretSource, WorkerModule, WorkerSpec,
};

/// Said in every plan with workers until the ledger stores fingerprints.
pub const NOTE_SECRETS_NOT_COMPARED: &str =
    "secret values are not compared: a secret is sent only when its name is new to the worker";

/// The length of the identity prefix stored in `workers/tag`.
const TAG_LENGTH: usize = 20;

/// The part of an identity stored in the `workers/tag` annotation.
pub fn identity_tag(identity: &str) -> String {
    identity.chars().take(TAG_LENGTH).collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn identity_of(
    main_module: &str,
    modules: &[WorkerModule],
    compatibility_date: &str,
    compatibility_flags: &[String],
    bindings: &BTreeMap<String, ResolvedBinding>,
) -> String {
    let mut flags: Vec<&String> = compatibility_flags.iter().collect();
    flags.sort();
    flags.dedup();
    let mut module_list: Vec<Value> = modules
        .iter()
        .map(|m| json!([m.name, m.kind, sha256_hex(&m.content)]))
        .collect();
    module_list.sort_by_key(|v| v.to_string());
    let value = json!({
        "main_module": main_module,
        "modules": module_list,
        "compatibility_date": compatibility_date,
        "compatibility_flags": flags,
        "bindings": bindings,
    });
    sha256_hex(value.to_string().as_bytes())
}

/// Resolves a worker's bindings to what Cloudflare stores, or `None` when a
/// target does not exist yet (this plan creates it).
pub fn resolve_bindings(
    desired: &DesiredState,
    live: &LiveState,
    spec: &WorkerSpec,
) -> Option<BTreeMap<String, ResolvedBinding>> {
    resolve_pending(desired, live, spec, &BTreeSet::new())
}

/// [`resolve_bindings`], treating the targets in `pending` (which the plan
/// creates or replaces) as not resolvable yet.
fn resolve_pending(
    desired: &DesiredState,
    live: &LiveState,
    spec: &WorkerSpec,
    pending: &BTreeSet<Address>,
) -> Option<BTreeMap<String, ResolvedBinding>> {
    spec.bindings
        .iter()
        .map(|(name, binding)| Some((name.clone(), resolve_one(desired, live, binding, pending)?)))
        .collect()
}

/// The id the ledger records for `address`, when that resource still exists.
fn recorded_id<'l>(live: &'l LiveState, address: &Address) -> Option<&'l str> {
    let entry = live
        .inventory
        .iter()
        .flatten()
        .find(|e| &e.address == address)?;
    let exists = match address.kind {
        ResourceKind::KvNamespaces => live.kv_namespaces.iter().any(|ns| ns.id == entry.id),
        ResourceKind::D1Databases => live.d1_databases.iter().any(|db| db.uuid == entry.id),
        _ => false,
    };
    exists.then_some(entry.id.as_str())
}

/// One binding's target as Cloudflare stores it: the recorded id first (a
/// renamed namespace keeps it), else found by name; `None` while the
/// target does not exist or this plan creates or replaces it.
fn resolve_one(
    desired: &DesiredState,
    live: &LiveState,
    binding: &Binding,
    pending: &BTreeSet<Address>,
) -> Option<ResolvedBinding> {
    let target = |kind: ResourceKind, key: &str| {
        let address = Address::new(kind, key.to_string());
        (!pending.contains(&address)).then_some(address)
    };
    Some(match binding {
        Binding::KvNamespace(key) => {
            let address = target(ResourceKind::KvNamespaces, key)?;
            let id = match recorded_id(live, &address) {
                Some(id) => id.to_string(),
                None => {
                    let title = &desired.kv_namespaces.get(key)?.spec.title;
                    live.kv_namespaces
                        .iter()
                        .find(|ns| &ns.title == title)?
                        .id
                        .clone()
                }
            };
            ResolvedBinding::KvNamespace { namespace_id: id }
        }
        Binding::D1(key) => {
            target(ResourceKind::D1Databases, key)?;
            let name = &desired.d1_databases.get(key)?.spec.name;
            let uuid = live
                .d1_databases
                .iter()
                .find(|db| &db.name == name)?
                .uuid
                .clone();
            ResolvedBinding::D1 { database_id: uuid }
        }
        Binding::R2Bucket(key) => {
            target(ResourceKind::R2Buckets, key)?;
            let bucket = &desired.r2_buckets.get(key)?.spec;
            ResolvedBinding::R2Bucket {
                bucket_name: bucket.name.clone(),
                jurisdiction: bucket.jurisdiction,
            }
        }
        Binding::Service(key) => ResolvedBinding::Service {
            service: desired.workers.get(key)?.spec.name.clone(),
        },
        Binding::DurableObject(class_name) => ResolvedBinding::DurableObject {
            class_name: class_name.clone(),
        },
        Binding::Text(text) => ResolvedBinding::PlainText { text: text.clone() },
        Binding::Json(json) => ResolvedBinding::Json { json: json.clone() },
    })
}

/// The identity of the version git declares for worker `key`, or `None`
/// while a binding target does not exist yet.
pub fn worker_identity(desired: &DesiredState, live: &LiveState, key: &str) -> Option<String> {
    identity_pending(desired, live, key, &BTreeSet::new())
}

fn identity_pending(
    desired: &DesiredState,
    live: &LiveState,
    key: &str,
    pending: &BTreeSet<Address>,
) -> Option<String> {
    let spec = &desired.workers.get(key)?.spec;
    let bindings = resolve_pending(desired, live, spec, pending)?;
    Some(identity_of(
        &spec.main_module,
        &spec.modules,
        &spec.compatibility_date,
        &spec.compatibility_flags,
        &bindings,
    ))
}

/// The identity of the version serving most traffic, when its content was
/// downloaded.
pub fn live_identity(worker: &LiveWorker) -> Option<String> {
    let version = worker.current_version()?;
    let content = worker.content.as_ref()?;
    Some(identity_of(
        &content.main_module,
        &content.modules,
        version.compatibility_date.as_deref().unwrap_or_default(),
        &version.compatibility_flags,
        &version.bindings,
    ))
}

fn describe_binding(binding: &ResolvedBinding) -> Value {
    serde_json::to_value(binding).unwrap_or(Value::Null)
}

fn diff_field(
    fields: &mut Vec<FieldDiff>,
    field: String,
    before: Option<Value>,
    after: Option<Value>,
) {
    if before != after {
        fields.push(FieldDiff {
            field,
            before,
            after,
            forces_replacement: false,
        });
    }
}

/// Unified diffs between the deployed modules and git's.
fn code_diff(before: &[WorkerModule], after: &[WorkerModule]) -> Vec<ModuleDiff> {
    let names: BTreeSet<&str> = before
        .iter()
        .chain(after)
        .map(|m| m.name.as_str())
        .collect();
    let find = |list: &'_ [WorkerModule], name: &str| {
        list.iter()
            .find(|m| m.name == name)
            .map(|m| m.content.clone())
    };
    let mut diffs = Vec::new();
    for name in names {
        let old = find(before, name);
        let new = find(after, name);
        if old == new {
            continue;
        }
        let text = |bytes: &Option<Vec<u8>>| match bytes {
            None => Some(String::new()),
            Some(b) => String::from_utf8(b.clone()).ok(),
        };
        let diff = match (text(&old), text(&new)) {
            (Some(old_text), Some(new_text)) => similar::TextDiff::from_lines(&old_text, &new_text)
                .unified_diff()
                .context_radius(3)
                .header(&format!("deployed/{name}"), &format!("git/{name}"))
                .to_string(),
            _ => format!(
                "binary module {name}: {} -> {}\n",
                old.as_deref()
                    .map(sha256_hex)
                    .unwrap_or_else(|| "(none)".into()),
                new.as_deref()
                    .map(sha256_hex)
                    .unwrap_or_else(|| "(none)".into())
            ),
        };
        diffs.push(ModuleDiff {
            module: name.to_string(),
            diff,
        });
    }
    diffs
}

/// The next migration tag after `old`.
fn next_migration_tag(old: Option<&str>) -> String {
    match old
        .and_then(|t| t.strip_prefix('v'))
        .and_then(|n| n.parse::<u64>().ok())
    {
        Some(n) => format!("v{}", n + 1),
        None if old.is_none() => "v1".to_string(),
        None => format!("{}-next", old.unwrap_or_default()),
    }
}

fn list_value(items: &[String]) -> Option<Value> {
    Some(json!(items))
}

/// Plans one worker; `None` when it already matches.
pub(super) fn plan_worker(
    address: Address,
    key: &str,
    declared: &Declared<WorkerSpec>,
    desired: &DesiredState,
    live: &LiveState,
    pending: &BTreeSet<Address>,
) -> Option<Change> {
    let spec = &declared.spec;
    let identity = identity_pending(desired, live, key, pending);
    let current = live.workers.iter().find(|w| w.name == spec.name);
    let mut fields = Vec::new();
    let mut steps = Vec::new();
    let mut conflicts = Vec::new();
    let needs_zone = !spec.routes.is_empty() || !spec.custom_domains.is_empty();
    let zone_id = live.zone_id.clone();
    if needs_zone && zone_id.is_none() {
        let zone = desired
            .zone
            .as_ref()
            .map(|z| z.name.as_str())
            .unwrap_or("(none)");
        conflicts.push(format!(
            "zone `{zone}` was not found in the account: routes and custom domains need it"
        ));
    }
    let zone_id = zone_id.unwrap_or_default();
    let classes: Vec<String> = spec
        .durable_object_classes()
        .into_iter()
        .map(str::to_string)
        .collect();
    let live_classes: Vec<String> = current
        .map(|w| w.durable_object_classes.clone())
        .unwrap_or_default();
    let new_classes: Vec<String> = classes
        .iter()
        .filter(|c| !live_classes.contains(c))
        .cloned()
        .collect();
    let migration = (!new_classes.is_empty()).then(|| DurableObjectMigration {
        old_tag: current.and_then(|w| w.migration_tag.clone()),
        new_tag: next_migration_tag(current.and_then(|w| w.migration_tag.as_deref())),
        new_sqlite_classes: new_classes.clone(),
    });

    let Some(current) = current else {
        // A new worker: upload the script with its secrets (deployed at
        // once), then triggers and routing.
        fields.push(added("name", json!(spec.name)));
        fields.push(added("main_module", json!(spec.main_module)));
        fields.push(added(
            "modules",
            json!(
                spec.modules
                    .iter()
                    .map(|m| m.name.clone())
                    .collect::<Vec<_>>()
            ),
        ));
        fields.push(added("compatibility_date", json!(spec.compatibility_date)));
        if !spec.compatibility_flags.is_empty() {
            fields.push(added(
                "compatibility_flags",
                json!(spec.compatibility_flags),
            ));
        }
        for (name, binding) in &spec.bindings {
            let shown = match resolve_one(desired, live, binding, pending) {
                Some(r) => describe_binding(&r),
                None => json!(format!("{} (known after apply)", binding_target(binding))),
            };
            fields.push(added(&format!("bindings.{name}"), shown));
        }
        for name in spec.secrets.keys() {
            fields.push(added(&format!("secrets.{name}"), json!("(sensitive)")));
        }
        if !spec.crons.is_empty() {
            fields.push(added("crons", json!(spec.crons)));
        }
        for route in &spec.routes {
            fields.push(added(&format!("routes[{route}]"), json!(route)));
        }
        for domain in &spec.custom_domains {
            fields.push(added(&format!("custom_domains[{domain}]"), json!(domain)));
        }
        steps.push(Step::UploadWorkerScript {
            worker: key.to_string(),
            name: spec.name.clone(),
            identity: identity.clone(),
            migration,
            secrets: spec.secrets.keys().cloned().collect(),
        });
        if !spec.crons.is_empty() {
            steps.push(Step::SetWorkerCrons {
                name: spec.name.clone(),
                crons: spec.crons.clone(),
            });
        }
        for pattern in &spec.routes {
            steps.push(Step::CreateWorkerRoute {
                zone_id: zone_id.clone(),
                pattern: pattern.clone(),
                script: spec.name.clone(),
            });
        }
        for hostname in &spec.custom_domains {
            steps.push(Step::AttachCustomDomain {
                zone_id: zone_id.clone(),
                hostname: hostname.clone(),
                script: spec.name.clone(),
            });
        }
        return Some(Change {
            conflict: join(conflicts),
            code_diff: Vec::new(),
            address,
            kind: ChangeKind::Create,
            destructive: false,
            protected: declared.protect,
            fields,
            steps,
        });
    };

    // An existing worker: which live versions carry what git declares?
    let declared_tag = identity.as_deref().map(identity_tag);
    let shares: Vec<&crate::model::LiveDeploymentShare> = current
        .deployment
        .iter()
        .filter(|s| s.percentage > 0)
        .collect();
    let version_of = |id: &str| current.versions.iter().find(|v| v.id == id);
    let is_declared = |id: &str| {
        let tagged = match (&declared_tag, version_of(id).and_then(|v| v.tag.as_ref())) {
            (Some(want), Some(tag)) => want == tag,
            _ => false,
        };
        // A version without our tag may still be byte-for-byte git's: the
        // live fetch downloaded the serving one's modules to compare.
        let same_content = identity.is_some()
            && current.current_version().is_some_and(|v| v.id == id)
            && live_identity(current) == identity;
        tagged || same_content
    };
    let ours = shares.iter().find(|s| is_declared(&s.version_id)).copied();
    let serving = current.current_version();
    let finishing = shares.len() > 1 && ours.is_some();
    let new_version = ours.is_none();
    if new_version {
        diff_field(
            &mut fields,
            "version".into(),
            serving.map(|v| match &v.tag {
                Some(tag) => json!(format!("#{} {tag}", v.number)),
                None => json!(format!("#{}", v.number)),
            }),
            Some(json!(match &declared_tag {
                Some(tag) => format!("new {tag}"),
                None => "new (identity known after apply)".to_string(),
            })),
        );
        if let Some(version) = serving {
            diff_field(
                &mut fields,
                "compatibility_date".into(),
                version.compatibility_date.clone().map(Value::from),
                Some(json!(spec.compatibility_date)),
            );
            let mut live_flags = version.compatibility_flags.clone();
            live_flags.sort();
            diff_field(
                &mut fields,
                "compatibility_flags".into(),
                list_value(&live_flags),
                list_value(&spec.compatibility_flags),
            );
            let names: BTreeSet<&String> = version
                .bindings
                .keys()
                .chain(spec.bindings.keys())
                .collect();
            for name in names {
                let after =
                    spec.bindings
                        .get(name)
                        .map(|b| match resolve_one(desired, live, b, pending) {
                            Some(r) => describe_binding(&r),
                            None => json!(format!("{} (known after apply)", binding_target(b))),
                        });
                diff_field(
                    &mut fields,
                    format!("bindings.{name}"),
                    version.bindings.get(name).map(describe_binding),
                    after,
                );
            }
        }
    }
    let describe_shares = || {
        shares
            .iter()
            .map(|s| format!("{} at {}%", s.version_id, s.percentage))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if finishing && let Some(ours) = ours {
        fields.push(FieldDiff {
            field: "deployment".into(),
            before: Some(json!(describe_shares())),
            after: Some(json!(format!("{} at 100%", ours.version_id))),
            forces_replacement: false,
        });
    }
    let code = match (&current.content, new_version) {
        (Some(content), true) => code_diff(&content.modules, &spec.modules),
        _ => Vec::new(),
    };

    // Secrets to send: new names, and (with the ledger's fingerprints)
    // values that changed or were never recorded.
    let mut new_secrets: Vec<String> = Vec::new();
    for (name, secret) in &spec.secrets {
        if !current.secrets.contains(name) {
            fields.push(added(&format!("secrets.{name}"), json!("(sensitive)")));
            new_secrets.push(name.clone());
            continue;
        }
        // A value this (read-only) run cannot read is compared by name only.
        if matches!(secret.source, SecretSource::Unavailable(_)) {
            continue;
        }
        let Some(fingerprints) = &live.secret_fingerprints else {
            continue;
        };
        let now = fingerprints.of(&spec.name, name, &secret.value);
        let shown = match fingerprints.recorded(&spec.name, name) {
            Some(recorded) if recorded == now => continue,
            Some(_) => "(sensitive value changed)",
            None => "(sensitive value not recorded yet: sent once)",
        };
        fields.push(changed_field(
            &format!("secrets.{name}"),
            json!("(sensitive)"),
            json!(shown),
        ));
        new_secrets.push(name.clone());
    }
    let removed_secrets: Vec<String> = current
        .secrets
        .iter()
        .filter(|name| !spec.secrets.contains_key(*name))
        .cloned()
        .collect();
    for name in &removed_secrets {
        fields.push(FieldDiff {
            field: format!("secrets.{name}"),
            before: Some(json!("(sensitive)")),
            after: None,
            forces_replacement: false,
        });
    }
    // New secrets ride on a new version (the secrets API would deploy them
    // at once, beside the rollout); so does a Durable Object migration.
    let uploads = new_version || migration.is_some() || !new_secrets.is_empty();
    if uploads && shares.len() > 1 && ours.is_none() {
        conflicts.push(format!(
            "the live deployment is split between versions ({}), made by {}: finish or roll back that rollout first",
            describe_shares(),
            current.deployed_by.as_deref().unwrap_or("someone else")
        ));
    }
    if let Some(migration) = migration {
        fields.push(added(
            "durable_objects.new_sqlite_classes",
            json!(migration.new_sqlite_classes),
        ));
        steps.push(Step::UploadWorkerScript {
            worker: key.to_string(),
            name: spec.name.clone(),
            identity: identity.clone(),
            migration: Some(migration),
            secrets: new_secrets,
        });
    } else if uploads
        && new_secrets.is_empty()
        && let Some(version_id) = &current.declared_version
    {
        // Git declares a version the account still has: redeploy it.
        for field in fields.iter_mut().filter(|f| f.field == "version") {
            field.after = Some(json!(format!(
                "existing version {version_id} (redeployed, no upload)"
            )));
        }
        steps.push(Step::RedeployWorkerVersion {
            name: spec.name.clone(),
            version_id: version_id.clone(),
            rollout: spec.rollout.clone(),
        });
    } else if uploads {
        steps.push(Step::UploadWorkerVersion {
            worker: key.to_string(),
            name: spec.name.clone(),
            identity: identity.clone(),
            secrets: new_secrets,
        });
        steps.push(Step::DeployWorkerVersion {
            name: spec.name.clone(),
            rollout: spec.rollout.clone(),
        });
    } else if finishing && let Some(ours) = ours {
        steps.push(Step::FinishWorkerRollout {
            name: spec.name.clone(),
            version_id: ours.version_id.clone(),
        });
    }
    // Secrets removed from git go last: the version now live no longer
    // reads them, and the secrets API needs the newest version deployed.
    let deletes: Vec<Step> = removed_secrets
        .into_iter()
        .map(|secret| Step::DeleteWorkerSecret {
            name: spec.name.clone(),
            secret,
        })
        .collect();

    if current.crons != spec.crons {
        fields.push(FieldDiff {
            field: "crons".into(),
            before: list_value(&current.crons),
            after: list_value(&spec.crons),
            forces_replacement: false,
        });
        steps.push(Step::SetWorkerCrons {
            name: spec.name.clone(),
            crons: spec.crons.clone(),
        });
    }
    for route in &current.routes {
        if !spec.routes.contains(&route.pattern) {
            fields.push(FieldDiff {
                field: format!("routes[{}]", route.pattern),
                before: Some(json!(route.pattern)),
                after: None,
                forces_replacement: false,
            });
            steps.push(Step::DeleteWorkerRoute {
                zone_id: zone_id.clone(),
                route_id: route.id.clone(),
                pattern: route.pattern.clone(),
            });
        }
    }
    for pattern in &spec.routes {
        if !current.routes.iter().any(|r| &r.pattern == pattern) {
            fields.push(added(&format!("routes[{pattern}]"), json!(pattern)));
            steps.push(Step::CreateWorkerRoute {
                zone_id: zone_id.clone(),
                pattern: pattern.clone(),
                script: spec.name.clone(),
            });
        }
    }
    for domain in &current.custom_domains {
        if !spec.custom_domains.contains(&domain.hostname) {
            fields.push(FieldDiff {
                field: format!("custom_domains[{}]", domain.hostname),
                before: Some(json!(domain.hostname)),
                after: None,
                forces_replacement: false,
            });
            steps.push(Step::DetachCustomDomain {
                domain_id: domain.id.clone(),
                hostname: domain.hostname.clone(),
            });
        }
    }
    for hostname in &spec.custom_domains {
        if !current
            .custom_domains
            .iter()
            .any(|d| &d.hostname == hostname)
        {
            fields.push(added(
                &format!("custom_domains[{hostname}]"),
                json!(hostname),
            ));
            steps.push(Step::AttachCustomDomain {
                zone_id: zone_id.clone(),
                hostname: hostname.clone(),
                script: spec.name.clone(),
            });
        }
    }
    steps.extend(deletes);
    if steps.is_empty() {
        return None;
    }
    Some(Change {
        conflict: join(conflicts),
        code_diff: code,
        address,
        kind: ChangeKind::Update,
        destructive: false,
        protected: declared.protect,
        fields,
        steps,
    })
}

fn join(conflicts: Vec<String>) -> Option<String> {
    (!conflicts.is_empty()).then(|| conflicts.join("; "))
}

fn changed_field(field: &str, before: Value, after: Value) -> FieldDiff {
    FieldDiff {
        field: field.to_string(),
        before: Some(before),
        after: Some(after),
        forces_replacement: false,
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

fn binding_target(binding: &Binding) -> String {
    match binding {
        Binding::KvNamespace(key) => format!("kv_namespaces.{key}"),
        Binding::D1(key) => format!("d1_databases.{key}"),
        Binding::R2Bucket(key) => format!("r2_buckets.{key}"),
        Binding::Service(key) => format!("workers.{key}"),
        Binding::DurableObject(class) => format!("durable object {class}"),
        Binding::Text(_) => "text".to_string(),
        Binding::Json(_) => "json".to_string(),
    }
}

#[cfg(test)]
mod tests;
