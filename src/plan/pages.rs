//! Planning Pages projects. Pure, like the rest of `plan`.
//!
//! A project's content is identified by the digest of its file manifest:
//! the digest flareops writes in each deployment's commit message. The
//! serving deployment with the declared digest plans nothing; an earlier
//! production deployment with it is served again (a revert, no upload);
//! otherwise the folder is deployed, and the plan lists the files added,
//! changed and removed when the deployed files are known (git at the
//! deployment's commit).

use std::collections::BTreeMap;

use super::storage::change;
use super::{Change, ChangeKind, Field, FieldDiff, PagesStep, SiteChanges, Steps, Value};
use crate::model::{
    Address, DesiredState, LiveIndex, LivePagesProject, LiveResource, PagesProjectSpec,
};

fn site(spec: &PagesProjectSpec, changes: Option<SiteChanges>) -> Value {
    Value::Site {
        files: spec.files.len(),
        digest: spec.digest(),
        changes,
    }
}

/// What a deployment of `spec` changes against the deployed files.
fn changes(deployed: &BTreeMap<String, String>, spec: &PagesProjectSpec) -> SiteChanges {
    let declared = spec.manifest();
    SiteChanges {
        added: declared
            .keys()
            .filter(|path| !deployed.contains_key(*path))
            .cloned()
            .collect(),
        changed: declared
            .iter()
            .filter(|(path, hash)| deployed.get(*path).is_some_and(|h| h != *hash))
            .map(|(path, _)| path.clone())
            .collect(),
        removed: deployed
            .keys()
            .filter(|path| !declared.contains_key(*path))
            .cloned()
            .collect(),
    }
}

/// The steps and field diffs that bring `current` (or nothing) to `spec`.
fn converge(
    spec: &PagesProjectSpec,
    current: Option<&LivePagesProject>,
    fields: &mut Vec<FieldDiff>,
    steps: &mut Vec<PagesStep>,
) {
    let digest = spec.digest();
    let serving = current
        .and_then(|p| p.canonical.as_ref())
        .and_then(|d| d.digest.clone());
    if serving.as_deref() != Some(digest.as_str()) {
        let earlier = current.and_then(|p| {
            p.deployments
                .iter()
                .find(|d| d.digest.as_deref() == Some(digest.as_str()))
        });
        let before = current
            .and_then(|p| p.canonical.as_ref())
            .map(|d| match &d.digest {
                Some(digest) => {
                    Value::Text(format!("deployment {} (files {digest})", short(&d.id)))
                }
                None => Value::Text(format!(
                    "deployment {} (made outside flareops: its files are not known)",
                    short(&d.id)
                )),
            });
        match earlier {
            Some(deployment) => {
                fields.push(FieldDiff::changed(
                    Field::Files,
                    before,
                    Some(Value::Redeploy {
                        deployment_id: deployment.id.clone(),
                        created_on: deployment.created_on.clone(),
                    }),
                ));
                steps.push(PagesStep::Rollback {
                    project: spec.name.clone(),
                    deployment_id: deployment.id.clone(),
                });
            }
            None => {
                let known = current.and_then(|p| p.deployed_files.as_ref());
                let after = site(spec, known.map(|deployed| changes(deployed, spec)));
                fields.push(FieldDiff::changed(Field::Files, before, Some(after)));
                steps.push(PagesStep::Deploy {
                    project: spec.name.clone(),
                    digest,
                    files: spec.files.len(),
                });
            }
        }
    }
    let live_domains: &[String] = current.map_or(&[], |p| &p.custom_domains);
    for domain in &spec.custom_domains {
        if !live_domains.contains(domain) {
            fields.push(FieldDiff::added(
                Field::CustomDomain(domain.clone()),
                Value::Text(domain.clone()),
            ));
            steps.push(PagesStep::AddDomain {
                project: spec.name.clone(),
                domain: domain.clone(),
            });
        }
    }
    for domain in live_domains {
        if !spec.custom_domains.contains(domain) {
            fields.push(FieldDiff::removed(
                Field::CustomDomain(domain.clone()),
                Value::Text(domain.clone()),
            ));
            steps.push(PagesStep::RemoveDomain {
                project: spec.name.clone(),
                domain: domain.clone(),
            });
        }
    }
}

fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

/// A declared project: created and deployed; its production branch set in
/// place; its files deployed (or an earlier deployment served again); its
/// custom domains added and removed. A project found by its recorded id
/// under another name is replaced (Pages names cannot change): a new
/// project, and the old one deleted (`--allow-delete`).
pub(super) fn plan_project(
    address: &Address,
    desired: &DesiredState,
    live: &LiveIndex,
) -> Option<Change> {
    let declared = desired.pages_projects.get(&address.key)?;
    let spec = &declared.spec;
    let mut fields = Vec::new();
    let mut steps = Vec::new();
    match live.resolve(desired, address) {
        Some(LiveResource::PagesProject(current)) if current.name == spec.name => {
            if current.production_branch != spec.production_branch {
                fields.push(FieldDiff::changed(
                    Field::ProductionBranch,
                    Some(Value::Text(current.production_branch.clone())),
                    Some(Value::Text(spec.production_branch.clone())),
                ));
                steps.push(PagesStep::UpdateProject {
                    name: spec.name.clone(),
                    production_branch: spec.production_branch.clone(),
                });
            }
            converge(spec, Some(current), &mut fields, &mut steps);
            if steps.is_empty() {
                return None;
            }
            Some(change(
                address,
                ChangeKind::Update,
                false,
                declared.protect,
                fields,
                Steps::PagesProject(steps),
            ))
        }
        found => {
            let replaced = match found {
                Some(LiveResource::PagesProject(old)) => Some(old),
                _ => None,
            };
            if let Some(old) = replaced {
                fields.push(
                    FieldDiff::changed(
                        Field::Name,
                        Some(Value::Text(old.name.clone())),
                        Some(Value::Text(spec.name.clone())),
                    )
                    .forcing_replacement(),
                );
            } else {
                fields.push(FieldDiff::added(
                    Field::Name,
                    Value::Text(spec.name.clone()),
                ));
            }
            fields.push(FieldDiff::added(
                Field::ProductionBranch,
                Value::Text(spec.production_branch.clone()),
            ));
            steps.push(PagesStep::CreateProject {
                name: spec.name.clone(),
                production_branch: spec.production_branch.clone(),
            });
            converge(spec, None, &mut fields, &mut steps);
            // The old project goes once the new one serves the files, and
            // before the new one takes the custom domains it held.
            if let Some(old) = replaced {
                let at = steps
                    .iter()
                    .position(|step| matches!(step, PagesStep::AddDomain { .. }))
                    .unwrap_or(steps.len());
                steps.insert(
                    at,
                    PagesStep::DeleteProject {
                        name: old.name.clone(),
                    },
                );
            }
            Some(change(
                address,
                if replaced.is_some() {
                    ChangeKind::Replace
                } else {
                    ChangeKind::Create
                },
                replaced.is_some(),
                declared.protect,
                fields,
                Steps::PagesProject(steps),
            ))
        }
    }
}
