//! The words for the plan's and the apply's data: values, conflicts, notes
//! and effects as a person reads them. Every renderer (text, markdown,
//! drift, errors) says them through here, and nothing else turns them into
//! text.

use std::fmt;

use crate::apply::{ChangeOutcome, Effect};
use crate::drift::DriftNote;
use crate::model::{Jurisdiction, ResolvedBinding};
use crate::plan::{Conflict, Note, SecretState, Share, Value, VersionRef};

/// A field's value for a person; `(none)` when absent.
pub fn value(value: &Option<Value>) -> String {
    match value {
        None => "(none)".to_string(),
        Some(value) => value.to_string(),
    }
}

fn quoted(text: &str) -> String {
    format!("{text:?}")
}

fn list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| quoted(i)).collect();
    format!("[{}]", quoted.join(", "))
}

fn in_jurisdiction(jurisdiction: &Option<Jurisdiction>) -> String {
    match jurisdiction {
        Some(j) => format!(" (jurisdiction {})", j.as_str()),
        None => String::new(),
    }
}

/// A binding's target: its kind, then what it points at.
pub fn binding(binding: &ResolvedBinding) -> String {
    match binding {
        ResolvedBinding::KvNamespace { namespace_id } => format!("KV namespace {namespace_id}"),
        ResolvedBinding::D1 { database_id } => format!("D1 database {database_id}"),
        ResolvedBinding::R2Bucket {
            bucket_name,
            jurisdiction,
        } => format!("R2 bucket {bucket_name}{}", in_jurisdiction(jurisdiction)),
        ResolvedBinding::Queue { queue_name } => format!("queue {queue_name}"),
        ResolvedBinding::Service { service } => format!("service {service}"),
        ResolvedBinding::DurableObject { class_name } => format!("durable object {class_name}"),
        ResolvedBinding::PlainText { text } => format!("text {}", quoted(text)),
        ResolvedBinding::Json { json } => format!("json {json}"),
    }
}

fn shares(shares: &[Share]) -> String {
    shares
        .iter()
        .map(|s| format!("{} at {}%", s.version_id, s.percentage))
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Text(text) => f.write_str(&quoted(text)),
            Value::List(items) => f.write_str(&list(items)),
            Value::LocationHint(hint) => f.write_str(&quoted(hint.as_str())),
            Value::Jurisdiction(j) => f.write_str(&quoted(j.as_str())),
            Value::StorageClass(class) => f.write_str(&quoted(class.as_str())),
            Value::Binding(resolved) => f.write_str(&binding(resolved)),
            Value::PendingBinding(address) => write!(f, "{address} (known after apply)"),
            Value::Secret(SecretState::Set) => f.write_str("(sensitive)"),
            Value::Secret(SecretState::Changed) => f.write_str("(sensitive value changed)"),
            Value::Secret(SecretState::NotRecorded) => {
                f.write_str("(sensitive value not recorded yet: sent once)")
            }
            Value::Version(VersionRef::Deployed { number, tag }) => match tag {
                Some(tag) => write!(f, "#{number} {tag}"),
                None => write!(f, "#{number}"),
            },
            Value::Version(VersionRef::New { tag: Some(tag) }) => write!(f, "new {tag}"),
            Value::Version(VersionRef::New { tag: None }) => {
                f.write_str("new (identity known after apply)")
            }
            Value::Version(VersionRef::Existing { version_id }) => {
                write!(f, "existing version {version_id} (redeployed, no upload)")
            }
            Value::Deployment(list) => f.write_str(&shares(list)),
            Value::MigrationChanges { undo, run } => {
                let items: Vec<String> = undo
                    .iter()
                    .map(|n| format!("- {n}"))
                    .chain(run.iter().map(|n| format!("+ {n}")))
                    .collect();
                f.write_str(&list(&items))
            }
            Value::WritesSince(bookmark) => write!(f, "writes since {bookmark} are lost"),
            Value::Site {
                files,
                digest,
                changes,
            } => {
                write!(f, "{files} files (files {digest})")?;
                if let Some(changes) = changes {
                    let items: Vec<String> = changes
                        .added
                        .iter()
                        .map(|p| format!("+ {p}"))
                        .chain(changes.changed.iter().map(|p| format!("~ {p}")))
                        .chain(changes.removed.iter().map(|p| format!("- {p}")))
                        .collect();
                    if !items.is_empty() {
                        write!(f, ": {}", list(&items))?;
                    }
                }
                Ok(())
            }
            Value::Redeploy {
                deployment_id,
                created_on,
            } => write!(
                f,
                "earlier deployment {deployment_id} of {created_on}, which has these files (served again, no upload)"
            ),
            Value::Seconds(seconds) => f.write_str(&crate::duration::format(
                std::time::Duration::from_secs(*seconds),
            )),
            Value::Consumer {
                settings,
                dead_letter_queue,
            } => {
                let ms = |ms: u64| crate::duration::format(std::time::Duration::from_millis(ms));
                let s = |s: u64| crate::duration::format(std::time::Duration::from_secs(s));
                let mut parts: Vec<String> = [
                    settings.batch_size.map(|n| format!("batches of {n}")),
                    settings.max_retries.map(|n| format!("{n} retries")),
                    settings
                        .max_wait_time_ms
                        .map(|n| format!("waits up to {}", ms(n))),
                    settings
                        .max_concurrency
                        .map(|n| format!("at most {n} at once")),
                    settings
                        .retry_delay
                        .map(|n| format!("retries after {}", s(n))),
                    dead_letter_queue
                        .as_ref()
                        .map(|q| format!("dead letters to {q:?}")),
                ]
                .into_iter()
                .flatten()
                .collect();
                if parts.is_empty() {
                    parts.push("Cloudflare's default settings".to_string());
                }
                write!(f, "consumer ({})", parts.join(", "))
            }
        }
    }
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Conflict::ZoneNotFound { zone } => write!(
                f,
                "zone `{}` was not found in the account: routes, custom domains and DNS records need it",
                zone.as_deref().unwrap_or("(none)")
            ),
            Conflict::SplitDeployment {
                shares: list,
                deployed_by,
            } => write!(
                f,
                "the live deployment is split between versions ({}), made by {}: finish or roll back that rollout first",
                shares(list),
                deployed_by.as_deref().unwrap_or("someone else")
            ),
            Conflict::MigrationsEdited { files } => write!(
                f,
                "{} changed after it was applied; an applied migration must not change: restore it and add a new migration instead",
                files.join(", ")
            ),
            Conflict::MigrationNotUndoable { file } => write!(
                f,
                "{file} was applied but git no longer declares it, and flareops did not apply it, so there is no bookmark to restore: declare it again, or undo it by hand"
            ),
            Conflict::QueueConsumedElsewhere { queue, consumer } => write!(
                f,
                "queue {queue:?} is consumed by {consumer}, and a queue has one consumer: remove that consumer (`wrangler queues consumer remove`) or consume another queue"
            ),
            Conflict::HostnameIsCustomDomain { hostname } => write!(
                f,
                "{hostname} is a custom domain (of a Worker or a Pages project): Cloudflare made its DNS record and refuses another; remove this record, or detach the custom domain first"
            ),
            Conflict::RecordedElsewhere {
                environment,
                adopter,
            } => write!(
                f,
                "it exists, but the ledger records it for environment `{environment}`: environments `{adopter}` and `{environment}` would both manage it; give `{adopter}` its own name, or remove it from `{environment}`"
            ),
            Conflict::NameTaken { name, id } => write!(
                f,
                "{name:?} is already the name of another resource of the account (id {id}), which this environment does not manage: rename or delete that one, or choose another name"
            ),
        }
    }
}

/// Every conflict of a change, in one line.
pub fn conflicts(conflicts: &[Conflict]) -> String {
    conflicts
        .iter()
        .map(Conflict::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// What an adoption means, under its header.
pub const ADOPTED: &str = "exists in the account under this name but the ledger does not record it: apply records it (and makes the changes below, if any)";

/// `1 to adopt, 3 to create, 1 to update, 0 to replace, 0 to delete`
/// (adoptions only when there are some).
pub fn summary_counts(summary: &crate::plan::Summary) -> String {
    let adopt = if summary.adopt > 0 {
        format!("{} to adopt, ", summary.adopt)
    } else {
        String::new()
    };
    format!(
        "{adopt}{} to create, {} to update, {} to replace, {} to delete",
        summary.create, summary.update, summary.replace, summary.delete
    )
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Note::NoLedgerYet => f.write_str(
                "the account has no ledger yet: resources removed from git are deleted only once an apply has recorded what flareops manages",
            ),
            Note::SecretsNotCompared => f.write_str(
                "secret values are not compared: a secret is sent only when its name is new to the worker",
            ),
            Note::SecretValuesUnavailable { variables } => write!(
                f,
                "secret values not available to this run ({}): those secrets are compared by name only, so a changed value shows only in a plan that has them (apply always needs them)",
                variables.join(", ")
            ),
            Note::LocationDiffers {
                address,
                declared,
                actual,
            } => write!(
                f,
                "`{address}` is in {} although git hints {}: a location hint only applies at creation (Cloudflare may place a bucket elsewhere), so nothing is replaced for it",
                actual.map_or("an unreported location", |l| l.as_str()),
                declared.as_str()
            ),
            Note::RouteWithoutRecord {
                address,
                pattern,
                hostname,
            } => write!(
                f,
                "warning: the route `{pattern}` of `{address}` will never see traffic: {hostname} has no proxied DNS record in the zone; declare one (for a worker without an origin: `type: AAAA`, `content: \"100::\"`, `proxied: true`)"
            ),
        }
    }
}

impl fmt::Display for DriftNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DriftNote::NeverApplied => f.write_str(
                "flareops has never applied this environment (no apply in the ledger's journal): every difference is pending",
            ),
            DriftNote::ReferenceUnknown { reason } => {
                if let Some(reason) = reason {
                    write!(f, "{reason}; ")?;
                }
                f.write_str(
                    "the manifests of the last apply cannot be read from git, so differences git made since cannot be told from changes made outside git: all are shown as changed outside git",
                )
            }
            DriftNote::LastApplyUnfinished { id, status } => write!(
                f,
                "the last apply ({id}) {status}: the account may be part-way between two commits; `flareops apply` finishes the job"
            ),
            DriftNote::Plan(note) => note.fmt(f),
        }
    }
}

fn with_secrets(secrets: &[String]) -> String {
    if secrets.is_empty() {
        return String::new();
    }
    format!(" with secrets {} (values not shown)", secrets.join(", "))
}

fn percentages(reached: &[u8]) -> String {
    reached
        .iter()
        .map(|p| format!("{p}%"))
        .collect::<Vec<_>>()
        .join(" -> ")
}

fn gone(already_gone: bool, done: String, what: String) -> String {
    if already_gone {
        format!("{what} was already gone")
    } else {
        done
    }
}

impl fmt::Display for Effect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            Effect::ConsumerSet { name, queue } => {
                format!("{name} consumes queue {queue:?}")
            }
            Effect::ConsumerDeleted {
                name,
                queue,
                already_gone,
            } => gone(
                *already_gone,
                format!("{name} no longer consumes queue {queue:?}"),
                format!("the consumer of queue {queue:?}"),
            ),
            Effect::PagesProjectCreated { name, id, .. } => {
                format!("created Pages project {name:?} (id {id})")
            }
            Effect::PagesProjectUpdated {
                name,
                production_branch,
            } => format!(
                "set the production branch of Pages project {name:?} to {production_branch:?}"
            ),
            Effect::PagesDeployed {
                project,
                deployment,
                files,
                uploaded,
            } => format!(
                "deployed {files} files to Pages project {project:?} ({uploaded} uploaded, the others already there; deployment {})",
                deployment.id
            ),
            Effect::PagesRolledBack {
                project,
                deployment_id,
            } => format!(
                "Pages project {project:?} serves its earlier deployment {deployment_id} again (nothing uploaded)"
            ),
            Effect::PagesDomainAdded { project, domain } => {
                format!("added custom domain {domain} to Pages project {project:?}")
            }
            Effect::PagesDomainRemoved { project, domain } => {
                format!("removed custom domain {domain} from Pages project {project:?}")
            }
            Effect::PagesProjectDeleted { name } => format!("deleted Pages project {name:?}"),
            Effect::DnsCreated { record } => format!(
                "created DNS record {} {} → {} (id {})",
                record.record_type, record.name, record.content, record.id
            ),
            Effect::DnsUpdated { record } => format!(
                "updated DNS record {} {} → {} (id {}, in place)",
                record.record_type, record.name, record.content, record.id
            ),
            Effect::DnsDeleted {
                id,
                name,
                record_type,
            } => format!("deleted DNS record {record_type} {name} (id {id})"),
            Effect::QueueCreated { name, id } => format!("created queue {name:?} (id {id})"),
            Effect::QueueUpdated { id, name } => {
                format!("updated queue {name:?} (id {id}; its messages kept)")
            }
            Effect::QueueDeleted {
                id,
                name,
                already_gone,
            } => gone(
                *already_gone,
                format!("deleted queue {name:?} (id {id})"),
                format!("queue {name:?} (id {id})"),
            ),
            Effect::KvCreated { title, id } => format!("created KV namespace {title:?} (id {id})"),
            Effect::KvRenamed { id, title } => {
                format!("renamed KV namespace {id} to {title:?} (same id, data kept)")
            }
            Effect::KvDeleted {
                id,
                title,
                already_gone,
            } => gone(
                *already_gone,
                format!("deleted KV namespace {title:?} (id {id})"),
                format!("KV namespace {title:?} (id {id})"),
            ),
            Effect::D1Created { name, uuid, .. } => {
                format!("created D1 database {name:?} (uuid {uuid})")
            }
            Effect::D1Deleted {
                uuid,
                name,
                already_gone,
            } => gone(
                *already_gone,
                format!("deleted D1 database {name:?} (uuid {uuid})"),
                format!("D1 database {name:?} (uuid {uuid})"),
            ),
            Effect::MigrationsApplied { name, files } => format!(
                "applied migrations {} to D1 database {name:?} (bookmark before them: {})",
                files
                    .iter()
                    .map(|(file, _)| file.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                files.first().map_or("", |(_, bookmark)| bookmark.as_str())
            ),
            Effect::BookmarkRestored {
                name,
                bookmark,
                undone,
                undo_bookmark,
            } => format!(
                "restored D1 database {name:?} to bookmark {bookmark}, undoing migrations {} (writes since then are lost; bookmark {undo_bookmark} undoes this restore)",
                undone.join(", ")
            ),
            Effect::R2Created {
                name, jurisdiction, ..
            } => format!(
                "created R2 bucket {name:?}{}",
                in_jurisdiction(jurisdiction)
            ),
            Effect::R2StorageClassSet {
                name,
                storage_class,
                ..
            } => format!(
                "set the storage class of R2 bucket {name:?} to {}",
                storage_class.as_str()
            ),
            Effect::R2Emptied { name, objects, .. } => {
                format!("deleted the {objects} objects of R2 bucket {name:?}")
            }
            Effect::R2Deleted {
                name, already_gone, ..
            } => gone(
                *already_gone,
                format!("deleted R2 bucket {name:?}"),
                format!("R2 bucket {name:?}"),
            ),
            Effect::ScriptUploaded {
                name,
                version_id,
                tag,
                secrets,
            } => format!(
                "uploaded and deployed worker {name:?} (version {version_id}, tag {tag}){}",
                with_secrets(secrets)
            ),
            Effect::VersionUploaded {
                name,
                version_id,
                tag,
                secrets,
            } => format!(
                "uploaded version {version_id} of worker {name:?} (tag {tag}){}",
                with_secrets(secrets)
            ),
            Effect::Deployed {
                name,
                version_id,
                percentages: reached,
                redeployed,
            } => {
                let how = if reached.as_slice() == [100] {
                    format!("deployed version {version_id} of worker {name:?} at 100%")
                } else {
                    format!(
                        "rolled out version {version_id} of worker {name:?} in steps {}",
                        percentages(reached)
                    )
                };
                if *redeployed {
                    format!("redeployed existing version (no upload): {how}")
                } else {
                    how
                }
            }
            Effect::RolloutFinished { name, version_id } => {
                format!("finished the rollout of worker {name:?}: version {version_id} at 100%")
            }
            Effect::SecretDeleted { name, secret } => {
                format!("deleted secret {secret} of worker {name:?}")
            }
            Effect::CronsSet { name, crons } => {
                format!("set the cron triggers of worker {name:?} to {crons:?}")
            }
            Effect::RouteCreated { pattern } => format!("added route {pattern}"),
            Effect::RouteDeleted {
                pattern,
                already_gone,
            } => gone(
                *already_gone,
                format!("removed route {pattern}"),
                format!("route {pattern}"),
            ),
            Effect::DomainAttached { hostname } => format!("attached custom domain {hostname}"),
            Effect::DomainDetached {
                hostname,
                already_gone,
            } => gone(
                *already_gone,
                format!("detached custom domain {hostname}"),
                format!("custom domain {hostname}"),
            ),
            Effect::ScriptDeleted { name, already_gone } => gone(
                *already_gone,
                format!("deleted worker {name:?}"),
                format!("worker {name:?}"),
            ),
        };
        f.write_str(&text)
    }
}

/// A long step's progress, in words.
pub fn progress(progress: &crate::apply::Progress<'_>) -> String {
    match progress {
        crate::apply::Progress::RolloutStep {
            script,
            percentage,
            wait: Some(wait),
        } => format!(
            "rollout of {script}: {percentage}% of traffic on the new version; next step in {}",
            crate::duration::format(*wait)
        ),
        crate::apply::Progress::RolloutStep {
            script,
            percentage,
            wait: None,
        } => format!("rollout of {script}: {percentage}% of traffic on the new version"),
        crate::apply::Progress::Migration {
            database,
            file,
            index,
            total,
        } => format!("migration {index}/{total} on D1 database {database}: {file}"),
    }
}

/// What a change did, in one line (the journal's detail): its effects, or
/// the error that stopped it after them.
pub fn outcome_detail(outcome: &ChangeOutcome) -> String {
    let mut done: Vec<String> = outcome.done.iter().map(Effect::to_string).collect();
    if outcome.kind == crate::plan::ChangeKind::Adopt && outcome.error.is_none() {
        done.insert(0, "adopted: recorded in the ledger".to_string());
    }
    match &outcome.error {
        None => done.join("; "),
        Some(error) if done.is_empty() => error.to_string(),
        Some(error) => format!("{error} (done before it: {})", done.join("; ")),
    }
}

/// A change's line in the apply's output, ending in a newline.
pub fn outcome_line(outcome: &ChangeOutcome) -> String {
    match &outcome.error {
        None => format!("{}: {}\n", outcome.address, outcome_detail(outcome)),
        Some(error) => {
            let hint = error
                .hint()
                .map(|h| format!("\n  hint: {h}"))
                .unwrap_or_default();
            format!(
                "{}: FAILED: {}{hint}\n",
                outcome.address,
                outcome_detail(outcome)
            )
        }
    }
}
