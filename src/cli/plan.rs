//! `flareops plan`: load, fetch, plan, render; `--out` also saves the plan
//! for `flareops apply FILE`.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

use super::target::Target;
use super::{Format, PlanArgs, Printer};
use crate::model::DesiredState;
use crate::plan::SavedPlan;
use crate::{live, manifest, plan, render};

pub async fn run(root: &Path, args: &PlanArgs, printer: &Printer) -> anyhow::Result<ExitCode> {
    let desired =
        super::validate::load(root, &args.target.environment, args.target.local, printer)?;
    // Read before any request: a manifest that cannot be read costs none.
    let manifest_fingerprint = match &args.out {
        Some(_) => Some(manifest_fingerprint(root, &desired)?),
        None => None,
    };
    let target = Target::connect(root, &desired, args.target.local).await?;
    let fetched = live::fetch(&target.client, &desired).await;
    target.close().await;
    let live = fetched?;
    let plan = plan::plan(&desired, &live);
    if let (Some(out), Some(manifest_fingerprint)) = (&args.out, manifest_fingerprint) {
        let saved = SavedPlan {
            plan: plan.clone(),
            manifest_fingerprint,
            local: args.target.local,
        };
        write_atomically(out, saved.to_json().as_bytes())
            .with_context(|| format!("saving the plan to {}", out.display()))?;
    }
    match args.format {
        Format::Text => printer.data(&render::text(&plan)),
        Format::Json => printer.data(&render::json(&plan)),
    }
    if let Some(out) = &args.out {
        printer.message(&format!(
            "Saved the plan to {0}: apply exactly it with `flareops apply {0}`.",
            out.display()
        ));
    }
    if args.detailed_exitcode && !plan.is_empty() {
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
    Ok(plan::manifest_fingerprint(desired, &inputs))
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
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}
