//! `flareops plan`: load, fetch, plan, render; `--out` also saves the plan
//! for `flareops apply FILE`.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};

use super::target::Session;
use super::validate::Secrets;
use super::{PlanArgs, Printer, ReportFormat, Reported};
use crate::model::DesiredState;
use crate::plan::{Plan, SavedPlan};
use crate::render::EnvironmentPlan;
use crate::{live, manifest, plan, render};

pub async fn run(
    root: &Path,
    session: &Session,
    args: &PlanArgs,
    printer: &Printer,
) -> anyhow::Result<ExitCode> {
    let environments = &args.environments;
    for (index, environment) in environments.iter().enumerate() {
        if environments[..index].contains(environment) {
            bail!("environment `{environment}` is named twice");
        }
    }
    if environments.len() > 1 {
        if args.out.is_some() {
            bail!(
                "--out saves the plan of one environment\nhint: run `flareops plan --env ENV --out FILE` once per environment"
            );
        }
        if args.format == ReportFormat::Json {
            bail!(
                "--format json describes one environment\nhint: run `flareops plan --env ENV --format json` once per environment"
            );
        }
    }
    if args.format == ReportFormat::Markdown {
        return markdown(root, session, args, printer).await;
    }
    let mut changes = false;
    for (index, environment) in environments.iter().enumerate() {
        // A saved plan is applied later: it needs every secret value now.
        let desired = match &args.out {
            Some(_) => super::validate::load(root, environment, args.local, printer)?,
            None => super::validate::load_for_reading(root, environment, args.local, printer)?,
        };
        let (plan, made) = plan_one(root, session, &desired, args).await?;
        changes |= !plan.is_empty();
        if index > 0 {
            printer.data("\n");
        }
        match args.format {
            ReportFormat::Json => printer.data(&render::json(&plan)?),
            _ => {
                printer.data(&render::text(&plan));
                // The local account is not rate limited.
                let local = args.local || desired.account == crate::model::AccountTarget::Local;
                let limit = if local { None } else { session.rate_limit() };
                printer.data(&render::requests_footer(&plan, made, limit));
            }
        }
        if let Some(out) = &args.out {
            printer.message(&format!(
                "Saved the plan to {0}: apply exactly it with `flareops apply {0}`.",
                out.display()
            ));
        }
    }
    if args.detailed_exitcode && changes {
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}

/// Plans one environment (and saves the plan with `--out`); also answers
/// how many requests the plan made.
async fn plan_one(
    root: &Path,
    session: &Session,
    desired: &DesiredState,
    args: &PlanArgs,
) -> anyhow::Result<(Plan, u64)> {
    // Read before any request: a manifest that cannot be read costs none.
    let manifest_fingerprint = match &args.out {
        Some(_) => Some(manifest_fingerprint(root, desired)?),
        None => None,
    };
    let target = session.connect(root, desired, args.local).await?;
    let fetched = live::fetch(&target.client, desired).await;
    let made = target.client.requests_sent();
    target.close().await;
    let mut live = fetched?;
    super::git::attach_deployed_sources(root, desired, &mut live);
    super::git::attach_deployed_pages_files(root, desired, &mut live);
    let plan = plan::plan(desired, &live);
    if let (Some(out), Some(manifest_fingerprint)) = (&args.out, manifest_fingerprint) {
        let saved = SavedPlan {
            plan: plan.clone(),
            manifest_fingerprint,
            local: args.local,
        };
        write_atomically(out, saved.to_json()?.as_bytes())
            .with_context(|| format!("saving the plan to {}", out.display()))?;
    }
    Ok((plan, made))
}

/// One pull-request comment for every environment. An environment that
/// cannot be planned shows its error in the comment (and on stderr), the
/// others are planned anyway, and the exit code is 1.
async fn markdown(
    root: &Path,
    session: &Session,
    args: &PlanArgs,
    printer: &Printer,
) -> anyhow::Result<ExitCode> {
    let mut outcomes = Vec::new();
    let mut failed = false;
    let mut read = Vec::new();
    for environment in &args.environments {
        let outcome =
            match super::validate::load_quietly(root, environment, args.local, Secrets::Optional) {
                Err(diagnostics) => {
                    printer.message(&diagnostics.render(printer.color()));
                    Err(diagnostics.render(false))
                }
                Ok(desired) => {
                    read.extend(desired.source_paths());
                    plan_one(root, session, &desired, args).await
                }
                .map(|(plan, _)| plan)
                .map_err(|error| {
                    let text = super::error_text(&error);
                    printer.message(&format!("error: {environment}: {text}"));
                    text
                }),
            };
        outcomes.push(match outcome {
            Ok(plan) => EnvironmentPlan::Planned(plan),
            Err(error) => {
                failed = true;
                EnvironmentPlan::Failed {
                    environment: environment.clone(),
                    error,
                }
            }
        });
    }
    read.sort();
    read.dedup();
    let commit = super::git::describe(root, &read);
    printer.data(&render::plan_comment(&render::PlanComment {
        commit: &commit,
        local: args.local,
        environments: &outcomes,
    }));
    if failed {
        return Err(Reported.into());
    }
    let changes = outcomes
        .iter()
        .any(|o| matches!(o, EnvironmentPlan::Planned(plan) if !plan.is_empty()));
    if args.detailed_exitcode && changes {
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}

/// The manifest fingerprint of `desired`: reads `infra/*.yaml` and
/// `environments/<env>.yaml` again (the loader has just validated them) and
/// hashes them with the inputs `desired` carries.
pub(super) fn manifest_fingerprint(root: &Path, desired: &DesiredState) -> anyhow::Result<String> {
    let mut files = Vec::new();
    let infra = root.join(manifest::INFRA_DIR);
    let entries =
        std::fs::read_dir(&infra).with_context(|| format!("listing `{}/`", manifest::INFRA_DIR))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("listing `{}/`", manifest::INFRA_DIR))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_file = entry.file_type().map(|t| !t.is_dir()).unwrap_or(false);
        if is_file && !name.starts_with('.') && name.ends_with(".yaml") {
            files.push(format!("{}/{name}", manifest::INFRA_DIR));
        }
    }
    files.push(format!(
        "{}/{}.yaml",
        manifest::ENVIRONMENTS_DIR,
        desired.environment
    ));
    let mut inputs = Vec::with_capacity(files.len());
    for relative in files {
        let bytes =
            std::fs::read(root.join(&relative)).with_context(|| format!("reading `{relative}`"))?;
        inputs.push((relative, bytes));
    }
    Ok(plan::manifest_fingerprint(desired, &inputs)?)
}

/// Writes `bytes` to a temporary file next to `path`, then renames it over
/// `path`: a reader sees the old file or the whole new one, never a part.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "plan.json".to_string());
    let temp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let written = (|| {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        // Owner-only: a plan names the account's resources and ids.
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}
