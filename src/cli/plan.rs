//! `flareops plan`: load, fetch, plan, render.

use std::path::Path;
use std::process::ExitCode;

use super::target::Target;
use super::{Format, PlanArgs, Printer};
use crate::{live, plan, render};

pub async fn run(root: &Path, args: &PlanArgs, printer: &Printer) -> anyhow::Result<ExitCode> {
    let desired =
        super::validate::load(root, &args.target.environment, args.target.local, printer)?;
    let target = Target::connect(root, &desired, args.target.local).await?;
    let fetched = live::fetch(&target.client, &desired).await;
    target.close().await;
    let live = fetched?;
    let plan = plan::plan(&desired, &live);
    match args.format {
        Format::Text => printer.data(&render::text(&plan)),
        Format::Json => printer.data(&render::json(&plan)),
    }
    if args.detailed_exitcode && !plan.is_empty() {
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}
