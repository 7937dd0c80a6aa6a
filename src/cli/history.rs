//! `flareops history`: the applies journaled in the ledger, newest first
//! (read-only: it needs no secret value).

use std::path::Path;
use std::process::ExitCode;

use super::target::Session;
use super::{Format, HistoryArgs, Printer};
use crate::cloudflare::Client;
use crate::ledger::{self, journal};

pub async fn run(
    root: &Path,
    session: &Session,
    args: &HistoryArgs,
    printer: &Printer,
) -> anyhow::Result<ExitCode> {
    let environment = &args.target.environment;
    let desired = super::validate::load_for_reading(root, environment, args.target.local, printer)?;
    let target = session.connect(root, &desired, args.target.local).await?;
    let result = read(
        &target.client,
        &desired.ledger_database,
        environment,
        args.limit,
    )
    .await;
    target.close().await;
    let records = result?;
    match args.format {
        Format::Json => {
            let text = serde_json::to_string_pretty(&serde_json::json!({ "applies": records }))?;
            printer.data(&format!("{text}\n"));
        }
        Format::Text if records.is_empty() => {
            printer.data(&format!(
                "no applies recorded for environment `{environment}`\n"
            ));
        }
        Format::Text => printer.data(&text(&records)),
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads the journal without creating anything: no ledger, no applies.
async fn read(
    client: &Client,
    ledger_database: &str,
    environment: &str,
    limit: usize,
) -> anyhow::Result<Vec<journal::ApplyRecord>> {
    let databases = client.list_d1_databases().await?;
    let Some(database) = ledger::find(&databases, ledger_database) else {
        return Ok(Vec::new());
    };
    Ok(journal::history(client, &database, environment, limit).await?)
}

fn text(records: &[journal::ApplyRecord]) -> String {
    let mut out = String::new();
    for r in records {
        out.push_str(&format!(
            "{}  {}  {:<11}  {}  {}  {}\n",
            r.id, r.started_at, r.status, r.git_commit, r.actor, r.summary
        ));
    }
    out
}
