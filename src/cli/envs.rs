//! `flareops render` and `flareops diff-env`: views of the effective
//! manifests, with no request.

use std::path::Path;
use std::process::ExitCode;

use super::validate::Secrets;
use super::{Printer, Reported, TargetArgs};
use crate::render;

fn load(
    root: &Path,
    environment: &str,
    local: bool,
    printer: &Printer,
) -> anyhow::Result<crate::model::DesiredState> {
    super::validate::load_quietly(root, environment, local, Secrets::Optional).map_err(|d| {
        printer.message(&d.render(printer.color()));
        Reported.into()
    })
}

pub fn render(root: &Path, args: &TargetArgs, printer: &Printer) -> anyhow::Result<ExitCode> {
    let desired = load(root, &args.environment, args.local, printer)?;
    printer.data(&render::effective_yaml(&desired));
    Ok(ExitCode::SUCCESS)
}

pub fn diff(
    root: &Path,
    a: &str,
    b: &str,
    local: bool,
    printer: &Printer,
) -> anyhow::Result<ExitCode> {
    let first = load(root, a, local, printer)?;
    let second = load(root, b, local, printer)?;
    let differences = render::differences(&first, &second);
    printer.data(&render::differences_text(a, b, &differences));
    Ok(if differences.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}
