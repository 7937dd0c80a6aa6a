//! Pages project steps, Direct Upload included: the files Pages lacks are
//! uploaded (read from disk bucket by bucket, never all at once), every
//! hash is upserted, then a production deployment names each file; its
//! commit message carries the digest of the file manifest, the identity
//! the next plan compares.

use super::{Effect, StepError};
use crate::cloudflare::{Client, DeploymentSource, UPLOAD_BUCKET_BYTES, UPLOAD_BUCKET_FILES};
use crate::model::{Address, DesiredState, PagesFile, digest_marker};
use crate::plan::PagesStep;

pub(super) async fn run(
    client: &Client,
    desired: &DesiredState,
    address: &Address,
    message: &str,
    steps: &[PagesStep],
    done: &mut Vec<Effect>,
) -> Result<(), StepError> {
    for step in steps {
        let effect = match step {
            PagesStep::CreateProject {
                name,
                production_branch,
            } => {
                let project = client.create_pages_project(name, production_branch).await?;
                Effect::PagesProjectCreated {
                    name: name.clone(),
                    id: project.id,
                    production_branch: production_branch.clone(),
                }
            }
            PagesStep::UpdateProject {
                name,
                production_branch,
            } => {
                client.update_pages_project(name, production_branch).await?;
                Effect::PagesProjectUpdated {
                    name: name.clone(),
                    production_branch: production_branch.clone(),
                }
            }
            PagesStep::Deploy {
                project, digest, ..
            } => {
                let spec = desired
                    .pages_projects
                    .get(&address.key)
                    .map(|d| &d.spec)
                    .filter(|spec| &spec.digest() == digest)
                    .ok_or_else(|| {
                        StepError::Changed(format!(
                            "the files of `{address}` are not the ones the plan was made from"
                        ))
                    })?;
                let uploaded = upload(client, project, &spec.files).await?;
                let commit = message.strip_prefix("flareops ").unwrap_or(message);
                let source = DeploymentSource {
                    branch: &spec.production_branch,
                    commit_hash: commit.trim_end_matches("+dirty"),
                    commit_message: &format!("{message} {}", digest_marker(digest)),
                    commit_dirty: commit.ends_with("+dirty"),
                };
                let deployment = client
                    .create_pages_deployment(project, &spec.manifest(), &source)
                    .await?;
                Effect::PagesDeployed {
                    project: project.clone(),
                    deployment: crate::model::LivePagesDeployment::from(&deployment),
                    files: spec.files.len(),
                    uploaded,
                }
            }
            PagesStep::Rollback {
                project,
                deployment_id,
            } => {
                client
                    .rollback_pages_deployment(project, deployment_id)
                    .await?;
                Effect::PagesRolledBack {
                    project: project.clone(),
                    deployment_id: deployment_id.clone(),
                }
            }
            PagesStep::AddDomain { project, domain } => {
                client.add_pages_domain(project, domain).await?;
                Effect::PagesDomainAdded {
                    project: project.clone(),
                    domain: domain.clone(),
                }
            }
            PagesStep::RemoveDomain { project, domain } => {
                client.remove_pages_domain(project, domain).await?;
                Effect::PagesDomainRemoved {
                    project: project.clone(),
                    domain: domain.clone(),
                }
            }
            PagesStep::DeleteProject { name } => {
                client.delete_pages_project(name).await?;
                Effect::PagesProjectDeleted { name: name.clone() }
            }
        };
        done.push(effect);
    }
    Ok(())
}

/// Uploads the files of `files` Pages lacks; answers how many.
async fn upload(client: &Client, project: &str, files: &[PagesFile]) -> Result<usize, StepError> {
    let token = client.pages_upload_token(project).await?;
    let mut hashes: Vec<&str> = files.iter().map(|f| f.hash.as_str()).collect();
    hashes.sort_unstable();
    hashes.dedup();
    let missing = client.pages_missing(&token, &hashes).await?;
    // One file per missing hash, in buckets of bounded size.
    let by_hash: std::collections::HashMap<&str, &PagesFile> =
        files.iter().map(|f| (f.hash.as_str(), f)).collect();
    let mut buckets: Vec<Vec<&PagesFile>> = Vec::new();
    let mut bytes = 0;
    for hash in &missing {
        let Some(file) = by_hash.get(hash.as_str()).copied() else {
            continue;
        };
        let full = buckets.last().is_none_or(|bucket| {
            bucket.len() >= UPLOAD_BUCKET_FILES || bytes + file.size > UPLOAD_BUCKET_BYTES
        });
        if full {
            buckets.push(Vec::new());
            bytes = 0;
        }
        bytes += file.size;
        buckets.last_mut().expect("pushed above").push(file);
    }
    let mut uploaded = 0;
    for bucket in buckets {
        let mut contents = Vec::with_capacity(bucket.len());
        for file in bucket {
            let content = std::fs::read(&file.local).map_err(|error| {
                StepError::Changed(format!(
                    "cannot read {} ({error}): the site's files changed since the plan",
                    file.local.display()
                ))
            })?;
            if crate::model::asset_hash(&content, &file.path) != file.hash {
                return Err(StepError::Changed(format!(
                    "{} changed since the plan was made",
                    file.local.display()
                )));
            }
            contents.push((file.hash.as_str(), file.content_type.as_str(), content));
        }
        uploaded += contents.len();
        client.pages_upload(&token, &contents).await?;
    }
    client.pages_upsert_hashes(&token, &hashes).await?;
    Ok(uploaded)
}
