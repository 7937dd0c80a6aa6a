//! The `flareops` binary: parse the arguments, run, map the outcome to an
//! exit code. The only place that prints errors.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser as _;
use flareops::cli::{self, Cli, Printer, Reported};

fn main() -> ExitCode {
    // A usage error exits 1 like every error: 2 means "changes" (plan
    // --detailed-exitcode) or "drift".
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return if error.use_stderr() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    init_tracing(cli.quiet, cli.verbose);
    let printer = Printer::with_quiet(cli.quiet);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            printer.message(&format!("error: cannot start the async runtime: {error}"));
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(cli, &printer)) {
        Ok(code) => code,
        Err(error) => {
            if error.downcast_ref::<Reported>().is_none() {
                report(&printer, &error);
            }
            ExitCode::FAILURE
        }
    }
}

/// Prints the error chain once, then a hint when one applies.
fn report(printer: &Printer, error: &anyhow::Error) {
    printer.message(&format!("error: {}", cli::error_text(error)));
}

/// Logs on stderr: `RUST_LOG` when set, else by `-q` / `-v` / `-vv`.
fn init_tracing(quiet: bool, verbose: u8) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "warn,flareops=info",
        (false, 2) => "warn,flareops=debug",
        (false, _) => "warn,flareops=trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .try_init();
}
