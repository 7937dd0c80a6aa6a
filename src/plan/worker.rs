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

use serde_json::json;
use sha2::{Digest, Sha256};

use super::{
    Change, ChangeKind, Conflict, DurableObjectMigration, Field, FieldDiff, ModuleDiff,
    RoutingStep, SecretState, SettingStep, Share, Steps, Value, VersionRef, VersionStep,
    WorkerStep,
};
use crate::model::{
    Address, Binding, DesiredState, Fingerprint, LiveIndex, LiveResource, LiveState, LiveWorker,
    ResolvedBinding, ResourceKind, SecretSource, WorkerModule, WorkerSpec,
};

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
    let mut module_list: Vec<serde_json::Value> = modules
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
    resolve_pending(desired, &live.index(), spec, &BTreeSet::new())
}

/// [`resolve_bindings`], treating the targets in `pending` (which the plan
/// creates or replaces) as not resolvable yet.
fn resolve_pending(
    desired: &DesiredState,
    live: &LiveIndex,
    spec: &WorkerSpec,
    pending: &BTreeSet<Address>,
) -> Option<BTreeMap<String, ResolvedBinding>> {
    spec.bindings
        .iter()
        .map(|(name, binding)| {
            let resolved = resolve_one(desired, live, binding, pending).ok()?;
            Some((name.clone(), resolved))
        })
        .collect()
}

/// One binding's target as Cloudflare stores it, through the one
/// resolver (the recorded id first: a renamed namespace keeps it; then
/// the declared name). `Err` names the target's address while it does not
/// exist or this plan creates or replaces it (known after apply).
fn resolve_one(
    desired: &DesiredState,
    live: &LiveIndex,
    binding: &Binding,
    pending: &BTreeSet<Address>,
) -> Result<ResolvedBinding, Address> {
    let target = |kind: ResourceKind, key: &str| {
        let address = Address::new(kind, key.to_string());
        let found = (!pending.contains(&address))
            .then(|| live.resolve(desired, &address))
            .flatten();
        found.ok_or(address)
    };
    Ok(match binding {
        Binding::KvNamespace(key) => match target(ResourceKind::KvNamespaces, key)? {
            LiveResource::KvNamespace(ns) => ResolvedBinding::KvNamespace {
                namespace_id: ns.id.clone(),
            },
            _ => return Err(Address::new(ResourceKind::KvNamespaces, key.clone())),
        },
        Binding::D1(key) => match target(ResourceKind::D1Databases, key)? {
            LiveResource::D1Database(db) => ResolvedBinding::D1 {
                database_id: db.uuid.clone(),
            },
            _ => return Err(Address::new(ResourceKind::D1Databases, key.clone())),
        },
        Binding::R2Bucket(key) => {
            // A bucket is bound by its name, which git gives.
            let address = Address::new(ResourceKind::R2Buckets, key.clone());
            match desired.r2_buckets.get(key) {
                Some(bucket) if !pending.contains(&address) => ResolvedBinding::R2Bucket {
                    bucket_name: bucket.spec.name.clone(),
                    jurisdiction: bucket.spec.jurisdiction,
                },
                _ => return Err(address),
            }
        }
        Binding::Queue(key) => {
            // A queue is bound by its name, which git gives.
            let address = Address::new(ResourceKind::Queues, key.clone());
            match desired.queues.get(key) {
                Some(queue) if !pending.contains(&address) => ResolvedBinding::Queue {
                    queue_name: queue.spec.name.clone(),
                },
                _ => return Err(address),
            }
        }
        Binding::Service(key) => match desired.workers.get(key) {
            Some(worker) => ResolvedBinding::Service {
                service: worker.spec.name.clone(),
            },
            None => return Err(Address::new(ResourceKind::Workers, key.clone())),
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
    identity_pending(desired, &live.index(), key, &BTreeSet::new())
}

fn identity_pending(
    desired: &DesiredState,
    live: &LiveIndex,
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

/// Unified diffs between the deployed modules and git's.
fn code_diff(before: &[WorkerModule], after: &[WorkerModule]) -> Vec<ModuleDiff> {
    let files = |modules: &[WorkerModule]| -> BTreeMap<String, Vec<u8>> {
        modules
            .iter()
            .map(|m| (m.name.clone(), m.content.clone()))
            .collect()
    };
    unified_diffs(&files(before), &files(after), "deployed")
}

/// One unified diff per file that differs (`---` `{deployed}/name`, `+++`
/// `git/name`): of modules, or of a built worker's sources at the deployed
/// version's commit (`deployed` is then the commit).
fn unified_diffs(
    before: &BTreeMap<String, Vec<u8>>,
    after: &BTreeMap<String, Vec<u8>>,
    deployed: &str,
) -> Vec<ModuleDiff> {
    let names: BTreeSet<&str> = before
        .keys()
        .chain(after.keys())
        .map(String::as_str)
        .collect();
    let mut diffs = Vec::new();
    for name in names {
        let old = before.get(name).cloned();
        let new = after.get(name).cloned();
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
                .header(&format!("{deployed}/{name}"), &format!("git/{name}"))
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

/// The next migration tag after `old`: `v1`, `v2`, ...; a tag that does
/// not end in a number gets `-next`.
fn next_migration_tag(old: Option<&str>) -> String {
    let Some(old) = old else {
        return "v1".to_string();
    };
    match old.strip_prefix('v').and_then(|n| n.parse::<u64>().ok()) {
        Some(n) => format!("v{}", n + 1),
        None => format!("{old}-next"),
    }
}

/// What one worker's plan is made of, before it becomes a [`Change`].
#[derive(Default)]
struct Parts {
    fields: Vec<FieldDiff>,
    steps: Vec<WorkerStep>,
    conflicts: Vec<Conflict>,
}

impl Parts {
    fn add(&mut self, field: Field, value: Value) {
        self.fields.push(FieldDiff::added(field, value));
    }

    /// Records the diff when the values differ.
    fn diff(&mut self, field: Field, before: Option<Value>, after: Option<Value>) {
        if before != after {
            self.fields.push(FieldDiff::changed(field, before, after));
        }
    }
}

/// A binding's value as the plan shows it: resolved, or known after apply.
fn binding_value(
    desired: &DesiredState,
    live: &LiveIndex,
    binding: &Binding,
    pending: &BTreeSet<Address>,
) -> Value {
    match resolve_one(desired, live, binding, pending) {
        Ok(resolved) => Value::Binding(resolved),
        Err(target) => Value::PendingBinding(target),
    }
}

/// Everything a worker plan reads, in one place.
struct WorkerInputs<'a> {
    spec: &'a WorkerSpec,
    desired: &'a DesiredState,
    live: &'a LiveIndex<'a>,
    pending: &'a BTreeSet<Address>,
    /// The identity of the version git declares, unless a binding target
    /// is created by this plan.
    identity: Option<String>,
    /// The zone routes and custom domains live on (empty when missing:
    /// then the change carries a conflict).
    zone_id: String,
}

/// Plans one worker; `None` when it already matches.
pub(super) fn plan_worker(
    key: &str,
    desired: &DesiredState,
    live: &LiveIndex,
    pending: &BTreeSet<Address>,
) -> Option<Change> {
    let declared = desired.workers.get(key)?;
    let spec = &declared.spec;
    let inputs = WorkerInputs {
        spec,
        desired,
        live,
        pending,
        identity: identity_pending(desired, live, key, pending),
        zone_id: live.live().zone_id.clone().unwrap_or_default(),
    };
    let current = live.worker(desired, key);
    let mut parts = Parts::default();
    let needs_zone = !spec.routes.is_empty() || !spec.custom_domains.is_empty();
    if needs_zone && live.live().zone_id.is_none() {
        parts.conflicts.push(Conflict::ZoneNotFound {
            zone: desired.zone.as_ref().map(|z| z.name.clone()),
        });
    }
    let (kind, code_diff) = match current {
        None => {
            plan_new(&inputs, &mut parts);
            (ChangeKind::Create, Vec::new())
        }
        Some(current) => (
            ChangeKind::Update,
            plan_existing(&inputs, current, &mut parts),
        ),
    };
    plan_consumers(&inputs, &mut parts);
    // A queue someone else consumes is refused even when nothing else changes.
    let refused = parts
        .conflicts
        .iter()
        .any(|c| matches!(c, Conflict::QueueConsumedElsewhere { .. }));
    if parts.steps.is_empty() && !refused {
        return None;
    }
    Some(Change {
        address: Address::new(ResourceKind::Workers, key.to_string()),
        kind,
        destructive: false,
        protected: declared.protect,
        fields: parts.fields,
        steps: Steps::Worker(parts.steps),
        conflicts: parts.conflicts,
        code_diff,
    })
}

/// The queues the worker consumes: a consumer created, or replaced when a
/// declared setting or the dead-letter queue differs; a queue it consumes
/// that git no longer names is left. After the version steps: Cloudflare
/// needs the script to exist.
fn plan_consumers(inputs: &WorkerInputs<'_>, parts: &mut Parts) {
    let spec = inputs.spec;
    let name = spec.name.as_str();
    let queue_name = |key: &str| inputs.desired.queues.get(key).map(|q| q.spec.name.clone());
    for (key, consumer) in &spec.consumers {
        let Some(queue) = queue_name(key) else {
            continue;
        };
        let dead_letter_queue = consumer.dead_letter_queue.as_deref().and_then(&queue_name);
        let after = Value::Consumer {
            settings: consumer.settings.clone(),
            dead_letter_queue: dead_letter_queue.clone(),
        };
        let address = Address::new(ResourceKind::Queues, key.clone());
        let live_queue = (!inputs.pending.contains(&address))
            .then(|| inputs.live.queue_named(&queue))
            .flatten();
        let current = live_queue.and_then(|q| q.consumers.first());
        if let Some(current) = current
            && current.script.as_deref() != Some(name)
        {
            parts.conflicts.push(Conflict::QueueConsumedElsewhere {
                queue: queue.clone(),
                consumer: current
                    .script
                    .clone()
                    .unwrap_or_else(|| "an HTTP pull consumer".to_string()),
            });
            continue;
        }
        let field = Field::Consumer(key.clone());
        let before = current.map(|c| Value::Consumer {
            settings: c.settings.clone(),
            dead_letter_queue: c.dead_letter_queue.clone(),
        });
        let same = current.is_some_and(|c| {
            consumer.settings.satisfied_by(&c.settings) && c.dead_letter_queue == dead_letter_queue
        });
        if same {
            continue;
        }
        parts.diff(field, before, Some(after));
        parts.steps.push(
            SettingStep::PutConsumer {
                name: name.to_string(),
                queue: queue.clone(),
                queue_id: live_queue.map(|q| q.id.clone()),
                consumer_id: current.map(|c| c.id.clone()),
                settings: consumer.settings.clone(),
                dead_letter_queue,
            }
            .into(),
        );
    }
    // Queues this worker consumes that git no longer names for it.
    for queue in &inputs.live.live().queues {
        for consumer in &queue.consumers {
            if consumer.script.as_deref() != Some(name) {
                continue;
            }
            let declared = spec
                .consumers
                .keys()
                .any(|k| queue_name(k).as_deref() == Some(queue.name.as_str()));
            if declared {
                continue;
            }
            let key = inputs
                .desired
                .queues
                .iter()
                .find(|(_, q)| q.spec.name == queue.name)
                .map(|(k, _)| k.clone())
                .unwrap_or_else(|| queue.name.clone());
            parts.diff(
                Field::Consumer(key),
                Some(Value::Consumer {
                    settings: consumer.settings.clone(),
                    dead_letter_queue: consumer.dead_letter_queue.clone(),
                }),
                None,
            );
            parts.steps.push(
                SettingStep::DeleteConsumer {
                    name: name.to_string(),
                    queue: queue.name.clone(),
                    queue_id: queue.id.clone(),
                    consumer_id: consumer.id.clone(),
                }
                .into(),
            );
        }
    }
}

/// The Durable Object migration a deploy of `spec` needs: namespaces for
/// the classes the live script does not have yet.
fn durable_object_migration(
    spec: &WorkerSpec,
    current: Option<&LiveWorker>,
) -> Option<DurableObjectMigration> {
    let live_classes: &[String] = current.map_or(&[], |w| &w.durable_object_classes);
    let new_classes: Vec<String> = spec
        .durable_object_classes()
        .into_iter()
        .filter(|c| !live_classes.iter().any(|l| l == c))
        .map(str::to_string)
        .collect();
    let old_tag = current.and_then(|w| w.migration_tag.clone());
    (!new_classes.is_empty()).then(|| DurableObjectMigration {
        new_tag: next_migration_tag(old_tag.as_deref()),
        old_tag,
        new_sqlite_classes: new_classes,
    })
}

/// A new worker: upload the script with its secrets (deployed at once),
/// then triggers and routing.
fn plan_new(inputs: &WorkerInputs<'_>, parts: &mut Parts) {
    let spec = inputs.spec;
    let text = |s: &str| Value::Text(s.to_string());
    parts.add(Field::Name, text(&spec.name));
    parts.add(Field::MainModule, text(&spec.main_module));
    parts.add(
        Field::Modules,
        Value::List(spec.modules.iter().map(|m| m.name.clone()).collect()),
    );
    parts.add(Field::CompatibilityDate, text(&spec.compatibility_date));
    if !spec.compatibility_flags.is_empty() {
        parts.add(
            Field::CompatibilityFlags,
            Value::List(spec.compatibility_flags.clone()),
        );
    }
    for (name, binding) in &spec.bindings {
        let value = binding_value(inputs.desired, inputs.live, binding, inputs.pending);
        parts.add(Field::Binding(name.clone()), value);
    }
    for name in spec.secrets.keys() {
        parts.add(Field::Secret(name.clone()), Value::Secret(SecretState::Set));
    }
    parts.steps.push(
        VersionStep::UploadScript {
            name: spec.name.clone(),
            identity: inputs.identity.clone(),
            migration: durable_object_migration(spec, None),
            secrets: spec.secrets.keys().cloned().collect(),
        }
        .into(),
    );
    plan_triggers(inputs, None, parts);
    plan_routing(inputs, None, parts);
}

/// An existing worker: the version, secrets, triggers and routing it
/// needs. Returns the code diff of a new version.
fn plan_existing(
    inputs: &WorkerInputs<'_>,
    current: &LiveWorker,
    parts: &mut Parts,
) -> Vec<ModuleDiff> {
    let version = plan_version(inputs, current, parts);
    let secrets = plan_secrets(inputs, current, parts);
    plan_deployment(inputs, current, &version, secrets.send, parts);
    plan_triggers(inputs, Some(&current.crons), parts);
    plan_routing(inputs, Some(current), parts);
    // Secrets removed from git go last: the version now live no longer
    // reads them, and the secrets API needs the newest version deployed.
    for secret in secrets.delete {
        parts.steps.push(
            SettingStep::DeleteSecret {
                name: inputs.spec.name.clone(),
                secret,
            }
            .into(),
        );
    }
    match (&current.content, version.ours) {
        // A built worker: the change in its sources, when git holds the
        // deployed version's commit; else the bundle's.
        (Some(content), None) => match (&inputs.spec.build, &current.deployed_sources) {
            (Some(build), Some(deployed)) => {
                unified_diffs(&deployed.files, &build.files, &deployed.commit)
            }
            _ => code_diff(&content.modules, &inputs.spec.modules),
        },
        _ => Vec::new(),
    }
}

/// Which live version carries what git declares, and how traffic is split.
struct VersionState {
    /// The live shares above 0%, largest first.
    shares: Vec<Share>,
    /// The share of the version git declares, when one serves traffic.
    ours: Option<Share>,
}

impl VersionState {
    /// Traffic is split and the declared version has part of it: an
    /// earlier rollout stopped part-way.
    fn finishing(&self) -> bool {
        self.shares.len() > 1 && self.ours.is_some()
    }
}

/// Whether live version `id` is what git declares: it carries the
/// declared identity's tag, or (serving, without our tag) its downloaded
/// content has the same identity.
fn is_declared(inputs: &WorkerInputs<'_>, current: &LiveWorker, id: &str) -> bool {
    let Some(identity) = &inputs.identity else {
        return false;
    };
    let tagged = current
        .versions
        .iter()
        .find(|v| v.id == id)
        .and_then(|v| v.tag.as_deref())
        .is_some_and(|tag| tag == identity_tag(identity));
    let same_content = current.current_version().is_some_and(|v| v.id == id)
        && live_identity(current).as_ref() == Some(identity);
    tagged || same_content
}

/// The version fields (when a new version is needed): the version itself,
/// compatibility settings and bindings against the serving version.
fn plan_version(
    inputs: &WorkerInputs<'_>,
    current: &LiveWorker,
    parts: &mut Parts,
) -> VersionState {
    let shares: Vec<Share> = current
        .deployment
        .iter()
        .filter(|s| s.percentage > 0)
        .map(|s| Share {
            version_id: s.version_id.clone(),
            percentage: s.percentage,
        })
        .collect();
    let ours = shares
        .iter()
        .find(|s| is_declared(inputs, current, &s.version_id))
        .cloned();
    let state = VersionState { shares, ours };
    if state.ours.is_some() {
        return state;
    }
    let spec = inputs.spec;
    let serving = current.current_version();
    let new = match &current.declared_version {
        Some(version_id) => VersionRef::Existing {
            version_id: version_id.clone(),
        },
        None => VersionRef::New {
            tag: inputs.identity.as_deref().map(identity_tag),
        },
    };
    parts.diff(
        Field::Version,
        serving.map(|v| {
            Value::Version(VersionRef::Deployed {
                number: v.number,
                tag: v.tag.clone(),
            })
        }),
        Some(Value::Version(new)),
    );
    let Some(version) = serving else {
        return state;
    };
    parts.diff(
        Field::CompatibilityDate,
        version.compatibility_date.clone().map(Value::Text),
        Some(Value::Text(spec.compatibility_date.clone())),
    );
    let mut live_flags = version.compatibility_flags.clone();
    live_flags.sort();
    parts.diff(
        Field::CompatibilityFlags,
        Some(Value::List(live_flags)),
        Some(Value::List(spec.compatibility_flags.clone())),
    );
    let names: BTreeSet<&String> = version
        .bindings
        .keys()
        .chain(spec.bindings.keys())
        .collect();
    for name in names {
        let after = spec
            .bindings
            .get(name)
            .map(|b| binding_value(inputs.desired, inputs.live, b, inputs.pending));
        let before = version.bindings.get(name).cloned().map(Value::Binding);
        parts.diff(Field::Binding(name.clone()), before, after);
    }
    state
}

/// Secrets to send (new names, and with the ledger's fingerprints values
/// that changed or were never recorded) and to delete (removed from git).
struct SecretPlan {
    send: Vec<String>,
    delete: Vec<String>,
}

fn plan_secrets(inputs: &WorkerInputs<'_>, current: &LiveWorker, parts: &mut Parts) -> SecretPlan {
    let spec = inputs.spec;
    let mut send = Vec::new();
    for (name, secret) in &spec.secrets {
        let field = Field::Secret(name.clone());
        if !current.secrets.contains(name) {
            parts.add(field, Value::Secret(SecretState::Set));
            send.push(name.clone());
            continue;
        }
        // A value this (read-only) run cannot read is compared by name only.
        if matches!(secret.source, SecretSource::Unavailable(_)) {
            continue;
        }
        let Some(fingerprints) = &inputs.live.live().secret_fingerprints else {
            continue;
        };
        let state = match fingerprints.compare(&spec.name, name, &secret.value) {
            Fingerprint::Same | Fingerprint::SameLegacy => continue,
            Fingerprint::Different => SecretState::Changed,
            Fingerprint::NotRecorded => SecretState::NotRecorded,
        };
        parts.diff(
            field,
            Some(Value::Secret(SecretState::Set)),
            Some(Value::Secret(state)),
        );
        send.push(name.clone());
    }
    let delete: Vec<String> = current
        .secrets
        .iter()
        .filter(|name| !spec.secrets.contains_key(*name))
        .cloned()
        .collect();
    for name in &delete {
        parts.fields.push(FieldDiff::removed(
            Field::Secret(name.clone()),
            Value::Secret(SecretState::Set),
        ));
    }
    SecretPlan { send, delete }
}

/// How the declared version goes live: a new version or new secrets ride
/// on an upload (the secrets API would deploy them at once, beside the
/// rollout), and so does a Durable Object migration (a script upload); a
/// version the account still has is redeployed; a rollout left split is
/// finished.
fn plan_deployment(
    inputs: &WorkerInputs<'_>,
    current: &LiveWorker,
    version: &VersionState,
    secrets: Vec<String>,
    parts: &mut Parts,
) {
    let spec = inputs.spec;
    let name = spec.name.clone();
    let migration = durable_object_migration(spec, Some(current));
    let uploads = version.ours.is_none() || migration.is_some() || !secrets.is_empty();
    if uploads && version.shares.len() > 1 && version.ours.is_none() {
        parts.conflicts.push(Conflict::SplitDeployment {
            shares: version.shares.clone(),
            deployed_by: current.deployed_by.clone(),
        });
    }
    // A gradual rollout goes beside the version serving all traffic now.
    let previous = match version.shares.as_slice() {
        [only] => Some(only.version_id.clone()),
        _ => None,
    };
    if let Some(migration) = migration {
        parts.add(
            Field::DurableObjectClasses,
            Value::List(migration.new_sqlite_classes.clone()),
        );
        parts.steps.push(
            VersionStep::UploadScript {
                name,
                identity: inputs.identity.clone(),
                migration: Some(migration),
                secrets,
            }
            .into(),
        );
    } else if uploads
        && secrets.is_empty()
        && let Some(version_id) = &current.declared_version
    {
        // Git declares a version the account still has: redeploy it.
        parts.steps.push(
            VersionStep::Redeploy {
                name,
                version_id: version_id.clone(),
                rollout: spec.rollout.clone(),
                previous,
            }
            .into(),
        );
    } else if uploads {
        parts.steps.push(
            VersionStep::UploadVersion {
                name: name.clone(),
                identity: inputs.identity.clone(),
                secrets,
            }
            .into(),
        );
        parts.steps.push(
            VersionStep::Deploy {
                name,
                rollout: spec.rollout.clone(),
                previous,
            }
            .into(),
        );
    } else if version.finishing()
        && let Some(ours) = &version.ours
    {
        parts.fields.push(FieldDiff::changed(
            Field::Deployment,
            Some(Value::Deployment(version.shares.clone())),
            Some(Value::Deployment(vec![Share {
                version_id: ours.version_id.clone(),
                percentage: 100,
            }])),
        ));
        parts.steps.push(
            VersionStep::FinishRollout {
                name,
                version_id: ours.version_id.clone(),
            }
            .into(),
        );
    }
}

/// Cron triggers (`live_crons` is `None` for a new worker): replaced as a
/// whole when they differ.
fn plan_triggers(inputs: &WorkerInputs<'_>, live_crons: Option<&[String]>, parts: &mut Parts) {
    let crons = &inputs.spec.crons;
    if live_crons.unwrap_or_default() == crons.as_slice() {
        return;
    }
    parts.diff(
        Field::Crons,
        live_crons.map(|live| Value::List(live.to_vec())),
        Some(Value::List(crons.clone())),
    );
    parts.steps.push(
        SettingStep::SetCrons {
            name: inputs.spec.name.clone(),
            crons: crons.clone(),
        }
        .into(),
    );
}

/// Routes and custom domains: removed ones first, then added ones.
fn plan_routing(inputs: &WorkerInputs<'_>, current: Option<&LiveWorker>, parts: &mut Parts) {
    let spec = inputs.spec;
    let zone_id = &inputs.zone_id;
    let (routes, domains) = current.map_or((&[][..], &[][..]), |w| {
        (&w.routes[..], &w.custom_domains[..])
    });
    for route in routes.iter().filter(|r| !spec.routes.contains(&r.pattern)) {
        parts.fields.push(FieldDiff::removed(
            Field::Route(route.pattern.clone()),
            Value::Text(route.pattern.clone()),
        ));
        parts.steps.push(
            RoutingStep::DeleteRoute {
                zone_id: zone_id.clone(),
                route_id: route.id.clone(),
                pattern: route.pattern.clone(),
            }
            .into(),
        );
    }
    for pattern in &spec.routes {
        if !routes.iter().any(|r| &r.pattern == pattern) {
            parts.add(Field::Route(pattern.clone()), Value::Text(pattern.clone()));
            parts.steps.push(
                RoutingStep::CreateRoute {
                    zone_id: zone_id.clone(),
                    pattern: pattern.clone(),
                    script: spec.name.clone(),
                }
                .into(),
            );
        }
    }
    for domain in domains
        .iter()
        .filter(|d| !spec.custom_domains.contains(&d.hostname))
    {
        parts.fields.push(FieldDiff::removed(
            Field::CustomDomain(domain.hostname.clone()),
            Value::Text(domain.hostname.clone()),
        ));
        parts.steps.push(
            RoutingStep::DetachDomain {
                domain_id: domain.id.clone(),
                hostname: domain.hostname.clone(),
            }
            .into(),
        );
    }
    for hostname in &spec.custom_domains {
        if !domains.iter().any(|d| &d.hostname == hostname) {
            parts.add(
                Field::CustomDomain(hostname.clone()),
                Value::Text(hostname.clone()),
            );
            parts.steps.push(
                RoutingStep::AttachDomain {
                    zone_id: zone_id.clone(),
                    hostname: hostname.clone(),
                    script: spec.name.clone(),
                }
                .into(),
            );
        }
    }
}

#[cfg(test)]
mod tests;
