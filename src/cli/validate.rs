//! `flareops validate`: load and check the manifests, make no request.

use std::path::Path;
use std::process::ExitCode;

use super::{Printer, Reported};
use crate::manifest;

pub fn run(root: &Path, environments: &[String], printer: &Printer) -> anyhow::Result<ExitCode> {
    let names = if environments.is_empty() {
        manifest::environments(root).map_err(|d| report(printer, &d))?
    } else {
        environments.to_vec()
    };
    let mut failed = false;
    for name in &names {
        match manifest::load(root, name) {
            Ok(desired) => printer.message(&format!(
                "{name}: ok ({} KV namespaces, {} D1 databases, {} R2 buckets)",
                desired.kv_namespaces.len(),
                desired.d1_databases.len(),
                desired.r2_buckets.len()
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

fn report(printer: &Printer, diagnostics: &manifest::Diagnostics) -> Reported {
    printer.message(&diagnostics.render(printer.color()));
    Reported
}

/// Loads one environment, reporting diagnostics on failure.
pub fn load(
    root: &Path,
    environment: &str,
    printer: &Printer,
) -> anyhow::Result<crate::model::DesiredState> {
    manifest::load(root, environment).map_err(|d| report(printer, &d).into())
}
