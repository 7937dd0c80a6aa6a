//! `flareops unlock --env E`: shows the apply lock of an environment and,
//! once confirmed, removes it. For when the apply holding it is gone and
//! waiting for its lease to expire is not wanted.

use std::io::{BufRead, IsTerminal};
use std::path::Path;
use std::process::ExitCode;

use anyhow::bail;

use super::target::Session;
use super::{Printer, UnlockArgs};
use crate::ledger::locks;

pub async fn run(
    root: &Path,
    session: &Session,
    args: &UnlockArgs,
    printer: &Printer,
) -> anyhow::Result<ExitCode> {
    let environment = &args.target.environment;
    // Unlocking needs no secret value.
    let desired = super::validate::load_for_reading(root, environment, args.target.local, printer)?;
    let target = session.connect(root, &desired, args.target.local).await?;
    let result = async {
        let lock = match locks::find_ledger(&target.client, &desired.ledger_database).await? {
            Some(database) => locks::read(&target.client, &database, environment)
                .await?
                .map(|info| (database, info)),
            None => None,
        };
        let Some((database, info)) = lock else {
            printer.message(&format!(
                "Environment `{environment}` is not locked: nothing to do."
            ));
            return Ok(ExitCode::SUCCESS);
        };
        printer.message(&format!("Environment `{environment}` is locked: {info}."));
        if !args.yes {
            confirm(environment, printer)?;
        }
        if locks::remove(&target.client, &database, environment, &info.holder).await? {
            printer.message(&format!("Removed the lock of environment `{environment}`."));
        } else {
            printer.message(&format!(
                "The lock of environment `{environment}` was already released or taken over: nothing removed."
            ));
        }
        Ok(ExitCode::SUCCESS)
    }
    .await;
    target.close().await;
    result
}

fn confirm(environment: &str, printer: &Printer) -> anyhow::Result<()> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        bail!(
            "unlock needs confirmation, and stdin is not a terminal\nhint: make sure the apply holding the lock is gone, then pass --yes"
        );
    }
    printer.message(&format!(
        "Remove the lock of environment `{environment}`? An apply still running there would no longer be protected. Only `yes` is accepted: "
    ));
    let mut answer = String::new();
    stdin.lock().read_line(&mut answer)?;
    if answer.trim() != "yes" {
        bail!("unlock cancelled: the lock was kept");
    }
    Ok(())
}
