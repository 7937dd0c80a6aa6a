//! `flareops emulator`: serve the local Cloudflare API until stopped.

use std::process::ExitCode;

use anyhow::{Context, bail};

use super::{EmulatorArgs, Printer};
use crate::emulator;

pub async fn run(args: &EmulatorArgs, printer: &Printer) -> anyhow::Result<ExitCode> {
    let token = match &args.token {
        Some(token) => token.clone(),
        None => match std::env::var("CLOUDFLARE_API_TOKEN")
            .ok()
            .filter(|t| !t.is_empty())
        {
            Some(token) => token,
            None => bail!(
                "the emulator needs a token that every request must carry\nhint: pass --token T or export CLOUDFLARE_API_TOKEN"
            ),
        },
    };
    if !args.listen.ip().is_loopback() {
        printer.message(&format!(
            "warning: listening on {}, which is not a loopback address",
            args.listen
        ));
    }
    let config = emulator::Config {
        listen: args.listen,
        state_dir: args.state.clone(),
        token,
        account_id: args.account_id.clone(),
        zones: args.zones.clone(),
    };
    let server = emulator::start(config).await.with_context(|| {
        format!(
            "starting the emulator with state in {}",
            args.state.display()
        )
    })?;
    printer.data(&format!(
        "flareops emulator listening on {}\naccount id: {}\n",
        server.base_url(),
        args.account_id
    ));
    for zone in &args.zones {
        printer.data(&format!("zone: {zone} (id {})\n", emulator::zone_id(zone)));
    }
    wait_for_stop().await;
    server.shutdown().await;
    printer.message("flareops emulator stopped");
    Ok(ExitCode::SUCCESS)
}

async fn wait_for_stop() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
