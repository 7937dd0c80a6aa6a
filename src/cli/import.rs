//! `flareops import`: write manifests from a live account (`--env`) or
//! from a wrangler configuration (`--from-wrangler`). Never overwrites a
//! file without `--force`; lists what it wrote, what it skipped and why.
//! From an account, it then records what it imported in the ledger (an
//! apply whose every change is an adoption), so the next plan is empty.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};

use super::target::Session;
use super::validate::Secrets;
use super::{ImportArgs, Printer};
use crate::import::{Import, account, wrangler};
use crate::plan::ChangeKind;

pub async fn run(
    root: &Path,
    session: &Session,
    args: &ImportArgs,
    printer: &Printer,
) -> anyhow::Result<ExitCode> {
    match (&args.environment, &args.from_wrangler) {
        (Some(environment), None) => from_account(root, session, environment, args, printer).await,
        (None, Some(path)) => from_wrangler(root, path, args, printer),
        _ => bail!(
            "import needs either --env ENV (from the live account) or --from-wrangler PATH\nhint: `flareops import --env staging` or `flareops import --from-wrangler wrangler.toml`"
        ),
    }
}

fn from_wrangler(
    root: &Path,
    path: &Path,
    args: &ImportArgs,
    printer: &Printer,
) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(root.join(path))
        .with_context(|| format!("cannot read {}", path.display()))?;
    let shown = path.to_string_lossy().replace('\\', "/");
    let config = wrangler::parse(&shown, &text)?;
    let dir = path
        .parent()
        .map(|p| p.to_string_lossy().replace('\\', "/"))
        .unwrap_or_default();
    let dir = dir.trim_start_matches("./").trim_end_matches('/');
    let import = wrangler::convert(&shown, if dir == "." { "" } else { dir }, &config)?;
    let written = write(root, &import, args.force, printer)?;
    report(&import, printer);
    if written == 0 {
        bail!("nothing was written\nhint: --force overwrites the files listed above");
    }
    printer.message(
        "next: review the files, set the accounts in environments/, then `flareops plan --env ENV`",
    );
    Ok(ExitCode::SUCCESS)
}

async fn from_account(
    root: &Path,
    session: &Session,
    environment: &str,
    args: &ImportArgs,
    printer: &Printer,
) -> anyhow::Result<ExitCode> {
    let environment_file = root.join(format!("environments/{environment}.yaml"));
    if !environment_file.is_file() {
        bail!(
            "there is no environments/{environment}.yaml\nhint: write it with the account (`account_id: <32 hex>`, or `account: local`) and the zone of its routes (`zone: example.com`), then import"
        );
    }
    std::fs::create_dir_all(root.join(crate::manifest::INFRA_DIR)).context("creating infra/")?;
    let desired = super::validate::load_quietly(root, environment, args.local, Secrets::Optional)
        .map_err(|d| {
        printer.message(&d.render(printer.color()));
        super::Reported
    })?;
    let others: Vec<String> = crate::manifest::environments(root)
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e != environment)
        .collect();
    let target = session.connect(root, &desired, args.local).await?;
    let fetched = crate::live::fetch_everything(&target.client, &desired).await;
    let live = match fetched {
        Ok(live) => live,
        Err(error) => {
            target.close().await;
            return Err(error.into());
        }
    };
    // D1 reports where a database runs only on its own GET.
    let mut d1_regions = std::collections::BTreeMap::new();
    for database in &live.d1_databases {
        match target.client.d1_running_in_region(&database.uuid).await {
            Ok(Some(region)) => {
                d1_regions.insert(database.uuid.clone(), region);
            }
            Ok(None) => {}
            Err(error) => {
                target.close().await;
                return Err(error.into());
            }
        }
    }
    let context = account::Context {
        environment,
        others: &others,
        zone: desired.zone.as_ref().map(|z| z.name.as_str()),
        d1_regions: &d1_regions,
    };
    let mut import = account::render(&live, &context);
    // The environment file is the user's: it is kept as it is.
    import
        .files
        .retain(|(path, _)| path != &format!("environments/{environment}.yaml"));
    let written = write(root, &import, args.force, printer)?;
    report(&import, printer);
    if written == 0 {
        target.close().await;
        bail!("nothing was written\nhint: --force overwrites the files listed above");
    }

    // Record the imported resources in the ledger: an apply of the plan,
    // when every change in it is an adoption that changes nothing.
    let desired = match super::validate::load_quietly(
        root,
        environment,
        args.local,
        Secrets::Optional,
    ) {
        Ok(desired) => desired,
        Err(diagnostics) => {
            target.close().await;
            printer.message(&diagnostics.render(printer.color()));
            bail!(
                "the imported manifests do not load: fix them, then `flareops apply --env {environment}`"
            );
        }
    };
    let live = crate::live::fetch(&target.client, &desired).await;
    let plan = match live {
        Ok(live) => crate::plan::plan(&desired, &live),
        Err(error) => {
            target.close().await;
            return Err(error.into());
        }
    };
    let only_adoptions = plan
        .changes
        .iter()
        .all(|c| c.kind == ChangeKind::Adopt && c.steps.is_empty() && c.conflicts.is_empty());
    if !only_adoptions {
        target.close().await;
        printer.data(&crate::render::text(&plan));
        bail!(
            "the imported manifests do not match the account exactly (above): nothing was recorded\nhint: review the plan, then `flareops apply --env {environment}` records and changes what it shows"
        );
    }
    let request = super::apply::Request {
        allow_delete: false,
        revert: false,
        yes: true,
        lock_timeout: Duration::from_secs(300),
        commit: super::git::describe(root, &desired.source_paths()),
        new_plan_hint: None,
        checkout: Some(root.to_path_buf()),
    };
    let result = super::apply::execute(
        &target,
        &desired,
        crate::apply::PlanSource::Fresh,
        &request,
        printer,
    )
    .await;
    target.close().await;
    result?;
    printer.message(&format!(
        "imported: `flareops plan --env {environment}` now shows no changes"
    ));
    Ok(ExitCode::SUCCESS)
}

/// Writes the files, never overwriting one without `force`; answers how
/// many were written.
fn write(root: &Path, import: &Import, force: bool, printer: &Printer) -> anyhow::Result<usize> {
    let mut written = 0;
    let mut kept = Vec::new();
    for (path, content) in &import.files {
        let full = root.join(path);
        if full.exists() && !force {
            kept.push(path.as_str());
            continue;
        }
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&full, content).with_context(|| format!("writing {path}"))?;
        printer.message(&format!("wrote {path}"));
        written += 1;
    }
    for path in kept {
        printer.message(&format!("kept {path}: it exists (--force overwrites it)"));
    }
    Ok(written)
}

fn report(import: &Import, printer: &Printer) {
    for skipped in &import.skipped {
        printer.message(&format!("skipped {}: {}", skipped.what, skipped.why));
    }
    for note in &import.notes {
        printer.message(&format!("note: {note}"));
    }
}
