//! Drift: how the account differs from git, told apart by cause.
//! [`classify`] is a pure function of plans that were already made, the
//! live state and the list of worker scripts; no I/O. [`check`] is the
//! operation around it: the journal, one read of the account, two plans.
//!
//! Two plans against the same live account tell the causes apart:
//! - `now`: the manifests git has now;
//! - `reference`: the manifests the last apply ran from.
//!
//! A change `now` shows that `reference` shows too exists because the
//! account moved away from what was applied: it was **changed outside git**
//! (or **deleted outside git**, when a resource the ledger records is gone).
//! A change only `now` shows exists because git moved on since the last
//! apply: it is **pending**. Resources whose names carry the environment's
//! name, that git does not declare and the ledger does not record, are
//! **unmanaged look-alikes** (someone created them by hand); flareops never
//! touches them.

use std::collections::BTreeSet;

mod check;

pub use check::{CheckError, Sources, check};

use serde::Serialize;

use crate::ledger::journal::ShownStatus;
use crate::model::{DesiredState, LiveState, ResourceKind};
use crate::plan::{Change, ChangeKind, Field, Plan, SecretState, Value};

/// The version of the drift report's JSON. Bumped on any change that is not
/// a pure addition.
pub const FORMAT_VERSION: u32 = 2;

/// The apply the report compares against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LastApply {
    pub id: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    /// The commit as the journal records it (`abc123`, `abc123+dirty`).
    pub git_commit: String,
    pub actor: String,
    pub status: ShownStatus,
}

/// What the report compares the live account with.
#[derive(Debug, Clone, Copy)]
pub enum Reference<'a> {
    /// No apply is recorded: every difference is pending.
    NeverApplied,
    /// The plan from the manifests of the last apply (the current plan
    /// when git has not moved since).
    LastApply(&'a Plan),
    /// The last apply's manifests cannot be read (uncommitted, or a commit
    /// this checkout lacks; why, when known): every difference counts as
    /// made outside git.
    Unknown(Option<&'a str>),
}

/// The serving version of a worker that someone changed outside git.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServingVersion {
    pub version_id: String,
    pub number: u64,
    /// Who deployed it (the deployment's author or source).
    pub deployed_by: Option<String>,
    /// Who uploaded it.
    pub author: Option<String>,
    pub message: Option<String>,
    /// Whether the version carries flareops' identity tag.
    pub made_by_flareops: bool,
}

/// One difference, with the change that heals it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DriftChange {
    #[serde(flatten)]
    pub change: Change,
    /// For a worker changed outside git: the version serving now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serving: Option<ServingVersion>,
    /// For a resource deleted outside git: the id the ledger recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recorded_id: Option<String>,
}

/// A resource in the account that looks like the environment's but that
/// neither git nor the ledger knows.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Unmanaged {
    pub kind: ResourceKind,
    pub name: String,
    /// The Cloudflare id (KV id, D1 uuid; the name for R2 and workers).
    pub id: String,
}

/// The drift of one environment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DriftReport {
    pub format_version: u32,
    pub environment: String,
    pub account_id: String,
    /// The commit the manifests were read at (`flareops abc123`).
    pub git_commit: String,
    pub last_apply: Option<LastApply>,
    pub changed_outside_git: Vec<DriftChange>,
    pub deleted_outside_git: Vec<DriftChange>,
    pub unmanaged: Vec<Unmanaged>,
    /// Git is ahead of the last apply: changes an apply would make.
    pub pending: Vec<DriftChange>,
    pub notes: Vec<DriftNote>,
}

/// Something a reader of the drift report should know.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "note", rename_all = "snake_case")]
pub enum DriftNote {
    /// No apply is recorded: every difference is pending.
    NeverApplied,
    /// The last apply's manifests cannot be read from git (why): every
    /// difference counts as made outside git.
    ReferenceUnknown { reason: Option<String> },
    /// The last apply did not succeed.
    LastApplyUnfinished { id: String, status: ShownStatus },
    /// A note of the current plan.
    #[serde(untagged)]
    Plan(crate::plan::Note),
}

impl DriftReport {
    /// Whether the account differs from git in any way.
    pub fn has_drift(&self) -> bool {
        !(self.changed_outside_git.is_empty()
            && self.deleted_outside_git.is_empty()
            && self.unmanaged.is_empty()
            && self.pending.is_empty())
    }

    /// Counts per category, in the order they are shown.
    pub fn counts(&self) -> [(&'static str, usize); 4] {
        [
            ("changed outside git", self.changed_outside_git.len()),
            ("deleted outside git", self.deleted_outside_git.len()),
            ("unmanaged look-alikes", self.unmanaged.len()),
            ("pending (git ahead of the last apply)", self.pending.len()),
        ]
    }
}

/// The inputs of [`classify`].
#[derive(Debug, Clone, Copy)]
pub struct DriftInputs<'a> {
    pub desired: &'a DesiredState,
    pub live: &'a LiveState,
    /// The plan from the current manifests.
    pub now: &'a Plan,
    pub reference: Reference<'a>,
    pub last_apply: Option<&'a LastApply>,
    /// Every worker script name in the account.
    pub scripts: &'a [String],
    /// Names and ids that other environments manage (their inventories)
    /// or declare: never look-alikes of this one.
    pub elsewhere: &'a [(ResourceKind, String)],
    /// `flareops abc123`.
    pub git_commit: &'a str,
}

/// Tells the differences apart (see the module doc).
pub fn classify(inputs: &DriftInputs<'_>) -> DriftReport {
    let DriftInputs {
        desired,
        live,
        now,
        reference,
        last_apply,
        scripts,
        elsewhere,
        git_commit,
    } = *inputs;
    let mut report = DriftReport {
        format_version: FORMAT_VERSION,
        environment: now.environment.clone(),
        account_id: now.account_id.clone(),
        git_commit: git_commit.to_string(),
        last_apply: last_apply.cloned(),
        changed_outside_git: Vec::new(),
        deleted_outside_git: Vec::new(),
        unmanaged: unmanaged(desired, live, scripts, elsewhere),
        pending: Vec::new(),
        notes: Vec::new(),
    };
    let inventory = live.inventory.as_deref().unwrap_or_default();
    let recorded = |change: &Change| {
        inventory
            .iter()
            .find(|entry| entry.address == change.address)
    };
    for change in &now.changes {
        // A secret's new value comes from the CI environment, not from
        // the account: a change made only of those is pending however the
        // two plans compare.
        let only_new_secret_values = !change.fields.is_empty()
            && change.fields.iter().all(|f| {
                matches!(f.field, Field::Secret(_))
                    && matches!(
                        f.after,
                        Some(Value::Secret(
                            SecretState::Changed | SecretState::NotRecorded
                        ))
                    )
            });
        let outside = !only_new_secret_values
            && match reference {
                Reference::NeverApplied => false,
                Reference::Unknown(_) => true,
                Reference::LastApply(plan) => {
                    plan.changes.iter().any(|c| c.address == change.address)
                }
            };
        let entry = recorded(change);
        let item = DriftChange {
            change: change.clone(),
            serving: None,
            recorded_id: None,
        };
        match change.kind {
            // Removed from git and still recorded: git is ahead.
            ChangeKind::Delete => report.pending.push(item),
            // Never applied (not in the ledger): new in git.
            ChangeKind::Create if entry.is_none() => report.pending.push(item),
            // Made outside flareops and never recorded: the next apply
            // adopts it.
            ChangeKind::Adopt if entry.is_none() => report.pending.push(item),
            ChangeKind::Create if outside => report.deleted_outside_git.push(DriftChange {
                recorded_id: entry.map(|e| e.id.clone()),
                ..item
            }),
            _ if outside => report.changed_outside_git.push(DriftChange {
                serving: serving_version(desired, live, change),
                ..item
            }),
            _ => report.pending.push(item),
        }
    }
    match reference {
        Reference::NeverApplied => report.notes.push(DriftNote::NeverApplied),
        Reference::Unknown(reason) => report.notes.push(DriftNote::ReferenceUnknown {
            reason: reason.map(str::to_string),
        }),
        Reference::LastApply(_) => {}
    }
    if let Some(apply) = last_apply
        && apply.status != ShownStatus::Succeeded
    {
        report.notes.push(DriftNote::LastApplyUnfinished {
            id: apply.id.clone(),
            status: apply.status,
        });
    }
    report
        .notes
        .extend(now.notes.iter().cloned().map(DriftNote::Plan));
    report
}

/// The serving version of the worker `change` is about, when it is one.
fn serving_version(
    desired: &DesiredState,
    live: &LiveState,
    change: &Change,
) -> Option<ServingVersion> {
    if change.address.kind != ResourceKind::Workers {
        return None;
    }
    let name = &desired.workers.get(&change.address.key)?.spec.name;
    let worker = live.workers.iter().find(|w| &w.name == name)?;
    let version = worker.current_version()?;
    Some(ServingVersion {
        version_id: version.id.clone(),
        number: version.number,
        deployed_by: worker.deployed_by.clone(),
        author: version.author.clone(),
        message: version.message.clone(),
        made_by_flareops: version.tag.is_some(),
    })
}

/// Whether `name` carries `environment` as one of its words (split at
/// anything that is not a letter or digit): `klear-karma-users-staging`
/// looks like environment `staging`'s.
pub fn looks_like(name: &str, environment: &str) -> bool {
    name.split(|c: char| !c.is_ascii_alphanumeric())
        .any(|word| word.eq_ignore_ascii_case(environment))
}

fn unmanaged(
    desired: &DesiredState,
    live: &LiveState,
    scripts: &[String],
    elsewhere: &[(ResourceKind, String)],
) -> Vec<Unmanaged> {
    let environment = desired.environment.as_str();
    let inventory = live.inventory.as_deref().unwrap_or_default();
    let mut known: BTreeSet<(ResourceKind, &str)> = elsewhere
        .iter()
        .map(|(kind, name)| (*kind, name.as_str()))
        .collect();
    for entry in inventory {
        known.insert((entry.address.kind, entry.name.as_str()));
        known.insert((entry.address.kind, entry.id.as_str()));
    }
    known.extend(desired.names());
    let mut found = Vec::new();
    let mut consider = |kind: ResourceKind, name: &str, id: &str| {
        let managed = known.contains(&(kind, name)) || known.contains(&(kind, id));
        if !managed && looks_like(name, environment) {
            found.push(Unmanaged {
                kind,
                name: name.to_string(),
                id: id.to_string(),
            });
        }
    };
    for kv in &live.kv_namespaces {
        consider(ResourceKind::KvNamespaces, &kv.title, &kv.id);
    }
    for d1 in &live.d1_databases {
        consider(ResourceKind::D1Databases, &d1.name, &d1.uuid);
    }
    for r2 in &live.r2_buckets {
        let id = crate::model::InventoryEntry::r2_id(&r2.name, r2.jurisdiction);
        consider(ResourceKind::R2Buckets, &r2.name, &id);
    }
    for script in scripts {
        consider(ResourceKind::Workers, script, script);
    }
    found.sort();
    found
}

#[cfg(test)]
mod tests;
