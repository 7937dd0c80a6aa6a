//! Command-line definitions and one thin file per verb. Each verb is a
//! wrapper over library operations; all human output goes through
//! [`Printer`]: data on stdout, messages on stderr.

mod apply;
mod drift;
mod emulator;
mod envs;
mod git;
mod history;
mod import;
mod init;
mod plan;
mod revert;
mod target;
mod unlock;
mod validate;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};

/// flareops: a GitOps reconciler for Cloudflare.
#[derive(Debug, Parser)]
#[command(
    name = "flareops",
    version = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("FLAREOPS_COMMIT"), ")"),
    about,
    long_about = None
)]
pub struct Cli {
    /// The project root (holds `infra/` and `environments/`).
    #[arg(long, global = true, default_value = ".", value_name = "DIR")]
    pub dir: PathBuf,
    /// Print only results and errors: no progress, no notes on stderr.
    #[arg(long, short = 'q', global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Say more on stderr: `-v` what flareops does (builds, requests'
    /// summary), `-vv` each request. `RUST_LOG` overrides it.
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load and validate the manifests; make no request.
    Validate {
        /// The environment to validate (repeatable); all of them when omitted.
        #[arg(long = "env", value_name = "ENV")]
        environments: Vec<String>,
        /// Validate for the local account: missing secrets may use their `local_default`.
        #[arg(long)]
        local: bool,
        /// Also verify the API token with Cloudflare (`/user/tokens/verify`):
        /// print its status and expiry, and fail when it is not active.
        #[arg(long)]
        check_token: bool,
    },
    /// Show what apply would change.
    Plan(PlanArgs),
    /// Make the account match the manifests.
    Apply(ApplyArgs),
    /// Run the local Cloudflare API emulator.
    Emulator(Box<EmulatorArgs>),
    /// Print a shell completion script (e.g. `flareops completions bash >
    /// /etc/bash_completion.d/flareops`).
    Completions {
        /// The shell: bash, elvish, fish, powershell or zsh.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), e.g. `flareops man > flareops.1`.
    Man,
    /// Print the JSON Schema (draft 2020-12) of `infra/*.yaml` or of
    /// `environments/*.yaml`, for editors: `flareops schema infra >
    /// schemas/infra.schema.json`, then `# yaml-language-server:
    /// $schema=../schemas/infra.schema.json` at the top of each file.
    Schema {
        /// Which files: `infra` or `environment`.
        #[arg(value_enum)]
        kind: SchemaKind,
    },
    /// Start a project in the current directory (`--dir`): manifests that
    /// plan against the embedded local account, JSON Schemas, CI workflows
    /// and a `.gitignore`. Never overwrites a file.
    Init {
        /// Write the Klear Karma example (a TypeScript Hono API with KV,
        /// D1, R2, a Durable Object and a cron) instead of a starter.
        #[arg(long)]
        example: bool,
    },
    /// Print the effective manifests of an environment (YAML, after `vars`
    /// and `overrides`; secrets as references). No request is made.
    Render(TargetArgs),
    /// Show what differs between two environments' effective manifests
    /// (names compared with the environment as `${env}`), and what one
    /// declares that the other lacks. Exit 0 = the same, 2 = they differ.
    DiffEnv {
        /// The first environment.
        a: String,
        /// The second environment.
        b: String,
        /// Load for the local account (secrets may use their local defaults).
        #[arg(long)]
        local: bool,
    },
    /// List the applies journaled in the ledger, newest first (read-only).
    History(HistoryArgs),
    /// Remove an environment's apply lock (when the apply holding it is gone).
    Unlock(UnlockArgs),
    /// Report how the account differs from git: changed or deleted outside
    /// git, unmanaged look-alikes, and pending changes. Exit 0 = no drift,
    /// 2 = drift, 1 = error.
    Drift(DriftArgs),
    /// Go back to what git declared earlier: before the last apply, at an
    /// earlier apply (`--to ID`), or at a git revision (`--to-git REF`).
    Revert(RevertArgs),
    /// Write manifests from what exists: a live account (`--env ENV`:
    /// then records it in the ledger, so the next plan is empty) or a
    /// wrangler configuration (`--from-wrangler PATH`). Never overwrites a
    /// file without `--force`.
    Import(ImportArgs),
}

/// The manifest files a schema describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SchemaKind {
    /// `infra/*.yaml`.
    Infra,
    /// `environments/*.yaml`.
    Environment,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Import the account of this environment (`environments/<ENV>.yaml`
    /// names it and its zone).
    #[arg(long = "env", value_name = "ENV", conflicts_with = "from_wrangler")]
    pub environment: Option<String>,
    /// With `--env`: the embedded local account.
    #[arg(long)]
    pub local: bool,
    /// Convert a wrangler configuration (wrangler.toml, wrangler.json or
    /// wrangler.jsonc), the top level and every `[env.X]`.
    #[arg(long, value_name = "PATH", required_unless_present = "environment")]
    pub from_wrangler: Option<PathBuf>,
    /// Overwrite files that exist.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct UnlockArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Remove without asking (required when stdin is not a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,
}

/// Parses a duration such as `30s`, `5m`, `1h30m`, `500ms` (a bare number
/// is seconds): [`crate::duration::parse`].
pub fn parse_duration(text: &str) -> Result<std::time::Duration, crate::duration::DurationError> {
    crate::duration::parse(text)
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Show at most N applies.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub limit: usize,
}

/// Where an environment's requests go.
#[derive(Debug, Clone, Args)]
pub struct TargetArgs {
    /// The environment (`environments/<ENV>.yaml`).
    #[arg(long = "env", value_name = "ENV")]
    pub environment: String,
    /// Use the embedded local account (the emulator, state in `.flareops/local/`).
    #[arg(long)]
    pub local: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Text,
    Json,
    /// GitHub markdown: a pull-request comment (plan) or an issue body
    /// (drift), starting with a hidden marker.
    Markdown,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The environment (`environments/<ENV>.yaml`). Repeat it for one report
    /// covering several (text and markdown).
    #[arg(long = "env", value_name = "ENV", required = true)]
    pub environments: Vec<String>,
    /// Use the embedded local account (the emulator, state in `.flareops/local/`).
    #[arg(long)]
    pub local: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
    /// Exit 0 when there are no changes, 2 when there are, 1 on error.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Also save the plan to FILE, for `flareops apply FILE` (written
    /// atomically; one environment only).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DriftArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
    /// Apply the current manifests to make the account match git again.
    /// Never touches unmanaged look-alikes.
    #[arg(long)]
    pub heal: bool,
    /// With --heal: apply without asking (required when stdin is not a terminal).
    #[arg(long, short = 'y', requires = "heal")]
    pub yes: bool,
    /// With --heal: permit changes that delete data.
    #[arg(long, requires = "heal")]
    pub allow_delete: bool,
    /// With --heal: how long to wait for another apply to finish.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
    pub lock_timeout: std::time::Duration,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A plan saved with `plan --out`: apply exactly it (instead of `--env`).
    #[arg(value_name = "PLAN_FILE", required_unless_present = "environment")]
    pub plan_file: Option<PathBuf>,
    /// The environment (`environments/<ENV>.yaml`); not with a plan file.
    #[arg(long = "env", value_name = "ENV", conflicts_with = "plan_file")]
    pub environment: Option<String>,
    /// Use the embedded local account (the emulator, state in `.flareops/local/`).
    #[arg(long)]
    pub local: bool,
    /// Apply without asking (required when stdin is not a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Permit changes that destroy data (replacing a KV namespace, D1 database or R2 bucket).
    #[arg(long)]
    pub allow_delete: bool,
    /// How long to wait for another apply to the same environment to finish (e.g. 30s, 5m).
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
    pub lock_timeout: std::time::Duration,
    /// Output format of the report: `json` prints one document on stdout
    /// (the plan, and per change its status and what it did; docs/plan-json.md),
    /// the progress going to stderr.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct RevertArgs {
    /// The environment (`environments/<ENV>.yaml`).
    #[arg(long = "env", value_name = "ENV")]
    pub environment: String,
    /// Go back to the manifests an earlier apply ran from (its id, or a prefix).
    #[arg(long, value_name = "APPLY_ID", conflicts_with = "to_git")]
    pub to: Option<String>,
    /// Go back to the manifests at this git revision.
    #[arg(long = "to-git", value_name = "REF")]
    pub to_git: Option<String>,
    /// Use the embedded local account.
    #[arg(long)]
    pub local: bool,
    /// Apply the revert plan without asking.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Permit changes that delete resources or lose data.
    #[arg(long)]
    pub allow_delete: bool,
    /// How long to wait for another apply to the same environment to finish.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
    pub lock_timeout: std::time::Duration,
}

/// `Debug` hides the token.
#[derive(Args)]
pub struct EmulatorArgs {
    /// The address to listen on (loopback unless you say otherwise).
    #[arg(long, default_value = "127.0.0.1:8787")]
    pub listen: std::net::SocketAddr,
    /// Where the emulator keeps its state.
    #[arg(long, default_value = ".flareops/emulator", value_name = "DIR")]
    pub state: PathBuf,
    /// The API token every request must carry [default: $CLOUDFLARE_API_TOKEN].
    #[arg(long, value_name = "T", hide_env_values = true)]
    pub token: Option<String>,
    /// The account id the emulator serves.
    #[arg(long, value_name = "ID", default_value = crate::emulator::DEFAULT_ACCOUNT_ID)]
    pub account_id: String,
    /// A zone (domain name) that exists in the account, for Workers routes and custom domains.
    /// Repeat for several zones. Zones are kept in the state directory once created.
    #[arg(long = "zone", value_name = "NAME")]
    pub zones: Vec<String>,
    /// Fault injection, off by default.
    #[command(flatten)]
    pub faults: Box<emulator::FaultArgs>,
}

impl std::fmt::Debug for EmulatorArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmulatorArgs")
            .field("listen", &self.listen)
            .field("state", &self.state)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("account_id", &self.account_id)
            .field("zones", &self.zones)
            .finish_non_exhaustive()
    }
}

/// Where output goes: data on stdout, messages on stderr.
#[derive(Debug, Clone)]
pub struct Printer {
    color: bool,
    /// Data goes to stderr too: stdout already holds a document (a JSON or
    /// markdown report) that more text would spoil.
    data_to_stderr: bool,
    /// `-q`: no progress.
    quiet: bool,
    /// stderr is a terminal: progress is drawn (a bar), else written as
    /// timestamped lines.
    terminal: bool,
}

impl Printer {
    pub fn new() -> Printer {
        Printer::with_quiet(false)
    }

    /// A printer; `quiet` (`-q`) drops progress.
    pub fn with_quiet(quiet: bool) -> Printer {
        let terminal = std::io::stderr().is_terminal();
        let color = terminal && std::env::var_os("NO_COLOR").is_none();
        Printer {
            color,
            data_to_stderr: false,
            quiet,
            terminal,
        }
    }

    /// A printer that writes everything to stderr.
    pub fn to_stderr(&self) -> Printer {
        Printer {
            data_to_stderr: true,
            ..self.clone()
        }
    }

    /// Whether progress is shown (not `-q`).
    pub fn shows_progress(&self) -> bool {
        !self.quiet
    }

    /// Whether progress may be drawn as a bar (stderr is a terminal).
    pub fn draws_progress(&self) -> bool {
        !self.quiet && self.terminal
    }

    /// A progress line on stderr: dropped with `-q`; prefixed with the UTC
    /// time when stderr is not a terminal (CI logs).
    pub fn progress(&self, text: &str) {
        if self.quiet {
            return;
        }
        if self.terminal {
            self.message(text);
        } else {
            self.message(&format!("[{}] {text}", utc_now()));
        }
    }

    pub fn color(&self) -> bool {
        self.color
    }

    /// Data for stdout (a plan, a report). A closed pipe is not an error.
    pub fn data(&self, text: &str) {
        if self.data_to_stderr {
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(text.as_bytes());
            let _ = err.flush();
            return;
        }
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }

    /// A message for stderr.
    pub fn message(&self, text: &str) {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{text}");
    }
}

/// The time now, `HH:MM:SSZ` (UTC).
fn utc_now() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!("{:02}:{:02}:{:02}Z", now.hour(), now.minute(), now.second())
}

impl Default for Printer {
    fn default() -> Self {
        Printer::new()
    }
}

/// An error that has already been reported to the user (diagnostics): the
/// caller only maps it to the exit code.
#[derive(Debug, thiserror::Error)]
#[error("reported")]
pub struct Reported;

/// An error's message, its causes, and a hint when one applies.
pub fn error_text(error: &anyhow::Error) -> String {
    let mut text = error.to_string();
    for cause in error.chain().skip(1) {
        text.push_str(&format!("\n  caused by: {cause}"));
    }
    if let Some(hint) = error
        .chain()
        .find_map(|e| e.downcast_ref::<crate::cloudflare::ClientError>()?.hint())
    {
        text.push_str(&format!("\nhint: {hint}"));
    }
    text
}

/// Runs the parsed command line. Commands that talk to an account share
/// one `target::Session` (one rate limit, one deadline).
pub async fn run(cli: Cli, printer: &Printer) -> anyhow::Result<ExitCode> {
    let root = &cli.dir;
    let session = || target::Session::from_env();
    match cli.command {
        Command::Validate {
            environments,
            local,
            check_token,
        } => {
            let code = validate::run(root, &environments, local, printer)?;
            if check_token {
                validate::check_tokens(root, &session()?, &environments, local, printer).await
            } else {
                Ok(code)
            }
        }
        Command::Emulator(args) => emulator::run(&args, printer).await,
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut command, "flareops", &mut out);
            printer.data(&String::from_utf8_lossy(&out));
            Ok(ExitCode::SUCCESS)
        }
        Command::Man => {
            let mut out = Vec::new();
            clap_mangen::Man::new(<Cli as clap::CommandFactory>::command())
                .render(&mut out)
                .context("rendering the man page")?;
            printer.data(&String::from_utf8_lossy(&out));
            Ok(ExitCode::SUCCESS)
        }
        Command::Schema { kind } => {
            let schema = crate::manifest::json_schema();
            let part = match kind {
                SchemaKind::Infra => &schema["infra"],
                SchemaKind::Environment => &schema["environment"],
            };
            printer.data(&format!("{}\n", serde_json::to_string_pretty(part)?));
            Ok(ExitCode::SUCCESS)
        }
        Command::Init { example } => init::run(root, example, printer),
        Command::Render(args) => envs::render(root, &args, printer),
        Command::DiffEnv { a, b, local } => envs::diff(root, &a, &b, local, printer),
        Command::Plan(args) => plan::run(root, &session()?, &args, printer).await,
        Command::Apply(args) => apply::run(root, &session()?, &args, printer).await,
        Command::History(args) => history::run(root, &session()?, &args, printer).await,
        Command::Unlock(args) => unlock::run(root, &session()?, &args, printer).await,
        Command::Revert(args) => revert::run(root, &session()?, &args, printer).await,
        Command::Drift(args) => drift::run(root, &session()?, &args, printer).await,
        Command::Import(args) => import::run(root, &session()?, &args, printer).await,
    }
}
