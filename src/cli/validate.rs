//! `flareops validate`: load and check the manifests, make no request.

use std::path::Path;
use std::process::ExitCode;

use super::{Printer, Reported};
use crate::manifest;

pub fn run(
    root: &Path,
    environments: &[String],
    local: bool,
    printer: &Printer,
) -> anyhow::Result<ExitCode> {
    let names = names(root, environments, printer)?;
    let mut failed = false;
    for name in &names {
        match load_quietly(root, name, local, Secrets::Required) {
            Ok(desired) => printer.message(&format!(
                "{name}: ok ({} KV namespaces, {} D1 databases, {} R2 buckets, {} queues, {} workers)",
                desired.kv_namespaces.len(),
                desired.d1_databases.len(),
                desired.r2_buckets.len(),
                desired.queues.len(),
                desired.workers.len()
            )),
            Err(diagnostics) => {
                report(printer, &diagnostics);
                failed = true;
            }
        }
    }
    if failed {
        return Err(Reported.into());
    }
    Ok(ExitCode::SUCCESS)
}

/// `validate --check-token`: asks Cloudflare about the token each
/// environment would use, prints its status and expiry, and fails when one
/// is not active. The local account's token is made per run: always active.
pub async fn check_tokens(
    root: &Path,
    session: &super::target::Session,
    environments: &[String],
    local: bool,
    printer: &Printer,
) -> anyhow::Result<ExitCode> {
    let names = names(root, environments, printer)?;
    let mut inactive = Vec::new();
    for name in &names {
        let desired = load_for_reading(root, name, local, printer)?;
        let target = session.connect(root, &desired, local).await?;
        let verified = target.client.verify_token().await;
        target.close().await;
        let token = verified?;
        let expiry = match (&token.expires_on, &token.not_before) {
            (Some(at), _) => format!("expires {at}"),
            (None, Some(from)) => format!("valid from {from}, never expires"),
            (None, None) => "never expires".to_string(),
        };
        printer.message(&format!("{name}: API token {} ({expiry})", token.status));
        if token.status != "active" {
            inactive.push(format!("{name} ({})", token.status));
        }
    }
    if !inactive.is_empty() {
        anyhow::bail!(
            "the API token is not active for {}\nhint: create a new token (docs/ci.md lists the permissions each job needs) and update the CI secret",
            inactive.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The environments named, or every one the project has.
fn names(root: &Path, environments: &[String], printer: &Printer) -> anyhow::Result<Vec<String>> {
    Ok(if environments.is_empty() {
        manifest::environments(root).map_err(|d| report(printer, &d))?
    } else {
        environments.to_vec()
    })
}

fn report(printer: &Printer, diagnostics: &manifest::Diagnostics) -> Reported {
    printer.message(&diagnostics.render(printer.color()));
    Reported
}

/// What a run needs of the secrets' values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Secrets {
    /// Every value (a run that uploads them, or `validate`).
    Required,
    /// A run that only reads (`plan`, `drift`): a `from_env` secret whose
    /// variable is not set is compared by name only.
    Optional,
}

/// Loads one environment without reporting (`local`: for the local
/// account, where secrets may fall back to their local defaults).
pub(super) fn load_quietly(
    root: &Path,
    environment: &str,
    local: bool,
    secrets: Secrets,
) -> Result<crate::model::DesiredState, manifest::Diagnostics> {
    load_at(root, root, environment, local, secrets)
}

/// Loads one environment from the manifests under `manifests` (the project,
/// or a checkout of an earlier commit), building workers with the build
/// cache of the project at `project`.
pub(super) fn load_at(
    manifests: &Path,
    project: &Path,
    environment: &str,
    local: bool,
    secrets: Secrets,
) -> Result<crate::model::DesiredState, manifest::Diagnostics> {
    let builder = crate::build::Builder::for_project(project);
    let options = manifest::LoadOptions {
        local,
        secrets_optional: secrets == Secrets::Optional,
        builder: Some(&builder),
        ..manifest::LoadOptions::process()
    };
    let loaded = manifest::load_with(manifests, environment, &options);
    for event in builder.events() {
        match event.outcome {
            crate::build::Outcome::Built { elapsed } => tracing::info!(
                worker = %event.worker,
                "built in {}",
                crate::duration::format(elapsed)
            ),
            crate::build::Outcome::Cached => {
                tracing::info!(worker = %event.worker, "build reused from the cache")
            }
        }
    }
    loaded
}

/// Loads one environment for a run that only reads (see [`Secrets::Optional`]),
/// reporting diagnostics on failure.
pub(super) fn load_for_reading(
    root: &Path,
    environment: &str,
    local: bool,
    printer: &Printer,
) -> anyhow::Result<crate::model::DesiredState> {
    load_quietly(root, environment, local, Secrets::Optional)
        .map_err(|d| report(printer, &d).into())
}

/// Loads one environment with every secret value from a checkout of an
/// earlier commit (`snapshot`), with the build cache of the project at
/// `root`, reporting diagnostics on failure.
pub(super) fn load_snapshot(
    snapshot: &Path,
    root: &Path,
    environment: &str,
    local: bool,
    printer: &Printer,
) -> anyhow::Result<crate::model::DesiredState> {
    load_at(snapshot, root, environment, local, Secrets::Required)
        .map_err(|d| report(printer, &d).into())
}

/// Loads one environment with every secret value, reporting diagnostics
/// on failure.
pub fn load(
    root: &Path,
    environment: &str,
    local: bool,
    printer: &Printer,
) -> anyhow::Result<crate::model::DesiredState> {
    load_quietly(root, environment, local, Secrets::Required)
        .map_err(|d| report(printer, &d).into())
}
