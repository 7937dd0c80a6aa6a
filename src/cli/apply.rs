//! `flareops apply`: plan, show, confirm, execute exactly that plan; or,
//! with a plan file, check that neither the manifests nor the account
//! changed since it was saved, then execute exactly the saved plan.

use std::io::{BufRead, IsTerminal};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};

use super::target::{Session, Target};
use super::{ApplyArgs, Printer};
use crate::apply::{
    self, ApplyError, ApplyOptions, Confirmation, Event, Events, PlanSource, RunOptions,
};
use crate::ledger::locks;
use crate::model::DesiredState;
use crate::plan::{Plan, SavedPlan};
use crate::render;

pub async fn run(
    root: &Path,
    session: &Session,
    args: &ApplyArgs,
    printer: &Printer,
) -> anyhow::Result<ExitCode> {
    match (&args.plan_file, &args.environment) {
        (Some(file), None) => run_saved(root, session, file, args, printer).await,
        (None, Some(environment)) => run_fresh(root, session, environment, args, printer).await,
        _ => bail!(
            "apply needs either --env ENV or a plan file, not both\nhint: `flareops apply --env ENV` plans and applies; `flareops apply FILE` applies a plan saved with `plan --out FILE`"
        ),
    }
}

/// What `apply`, `revert` and `drift --heal` ask of an apply.
#[derive(Debug, Clone)]
pub(super) struct Request {
    /// `--allow-delete`.
    pub allow_delete: bool,
    /// A revert: deletes that lose no data need no `--allow-delete`.
    pub revert: bool,
    /// `--yes`: no question asked.
    pub yes: bool,
    pub lock_timeout: Duration,
    /// The commit the manifests come from (`flareops abc123`).
    pub commit: String,
    /// For a saved plan: the hint when the account moved since it was made.
    pub new_plan_hint: Option<String>,
    /// The git checkout the manifests come from: the plan shows what the
    /// deployed sources and site files were, read from its history.
    pub checkout: Option<std::path::PathBuf>,
}

impl Request {
    fn of(root: &Path, desired: &DesiredState, args: &ApplyArgs) -> Request {
        Request {
            allow_delete: args.allow_delete,
            revert: false,
            yes: args.yes,
            lock_timeout: args.lock_timeout,
            commit: super::git::describe(root, &desired.source_paths()),
            new_plan_hint: None,
            checkout: Some(root.to_path_buf()),
        }
    }
}

async fn run_fresh(
    root: &Path,
    session: &Session,
    environment: &str,
    args: &ApplyArgs,
    printer: &Printer,
) -> anyhow::Result<ExitCode> {
    let desired = super::validate::load(root, environment, args.local, printer)?;
    let target = session.connect(root, &desired, args.local).await?;
    let request = Request::of(root, &desired, args);
    let result = execute_in(
        &target,
        &desired,
        PlanSource::Fresh,
        &request,
        args.format,
        printer,
    )
    .await;
    target.close().await;
    result
}

/// [`execute`], with the report in `format`: as JSON, one document on
/// stdout and the progress on stderr.
async fn execute_in(
    target: &Target,
    desired: &DesiredState,
    source: PlanSource<'_>,
    request: &Request,
    format: super::Format,
    printer: &Printer,
) -> anyhow::Result<ExitCode> {
    if format == super::Format::Text {
        return execute(target, desired, source, request, printer).await;
    }
    let (code, outcome) =
        execute_with(target, desired, source, request, &printer.to_stderr()).await?;
    printer.data(&render::apply_json(&outcome)?);
    Ok(code)
}

async fn run_saved(
    root: &Path,
    session: &Session,
    file: &Path,
    args: &ApplyArgs,
    printer: &Printer,
) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read the plan file {}", file.display()))?;
    let saved = SavedPlan::parse(&text).map_err(|error| {
        anyhow!(
            "{}: {error}\nhint: make a new plan with `flareops plan --env ENV --out FILE`",
            file.display()
        )
    })?;
    let environment = saved.plan.environment.clone();
    let new_plan_hint = format!(
        "make a new plan with `flareops plan --env {environment} --out {}`, review it, and apply that",
        file.display()
    );
    let local = args.local || saved.local;
    let desired = super::validate::load(root, &environment, local, printer)?;
    // Checked before any request: a refusal here costs none.
    if super::plan::manifest_fingerprint(root, &desired)? != saved.manifest_fingerprint {
        bail!(
            "the manifests changed since the plan was made: nothing was applied\nhint: {new_plan_hint}"
        );
    }
    let target = session.connect(root, &desired, local).await?;
    let request = Request {
        new_plan_hint: Some(new_plan_hint),
        ..Request::of(root, &desired, args)
    };
    let result = execute_in(
        &target,
        &desired,
        PlanSource::Saved(&saved.plan),
        &request,
        args.format,
        printer,
    )
    .await;
    target.close().await;
    result
}

/// Applies through [`apply::run`], which plans (or checks a saved plan)
/// under the lock; prints the plan, the progress and the outcome.
pub(super) async fn execute(
    target: &Target,
    desired: &DesiredState,
    source: PlanSource<'_>,
    request: &Request,
    printer: &Printer,
) -> anyhow::Result<ExitCode> {
    Ok(execute_with(target, desired, source, request, printer)
        .await?
        .0)
}

/// [`execute`], answering the apply's outcome too.
pub(super) async fn execute_with(
    target: &Target,
    desired: &DesiredState,
    source: PlanSource<'_>,
    request: &Request,
    printer: &Printer,
) -> anyhow::Result<(ExitCode, apply::Outcome)> {
    let bar = Bar::default();
    let options = RunOptions {
        apply: ApplyOptions {
            allow_delete: request.allow_delete,
            empty_deletes_allowed: request.revert,
            message: request.commit.clone(),
            progress: progress_sink(printer.clone(), bar.clone()),
            ..ApplyOptions::default()
        },
        git_commit: super::git::bare(&request.commit).to_string(),
        actor: actor(),
        lock_timeout: request.lock_timeout,
        lease: locks::lease_from_env(),
        annotate: match &request.checkout {
            Some(root) => {
                let root = root.clone();
                crate::apply::Annotate::new(move |desired, live| {
                    super::git::attach_deployed_sources(&root, desired, live);
                    super::git::attach_deployed_pages_files(&root, desired, live);
                })
            }
            None => crate::apply::Annotate::default(),
        },
    };
    let events = events(printer.clone(), desired.environment.clone(), bar.clone());
    let confirm = |plan: &Plan| {
        let answer = if request.yes {
            Confirmation::Confirmed
        } else {
            confirm(&desired.environment, printer)
        };
        if matches!(answer, Confirmation::Confirmed) {
            bar.start(printer, plan.changes.len());
        }
        answer
    };
    let context = apply::Context {
        client: &target.client,
    };
    let outcome = apply::run(context, desired, source, &options, confirm, &events).await;
    bar.finish();
    let outcome = outcome.map_err(|e| error(e, request.new_plan_hint.as_deref()))?;
    if outcome.plan.is_empty() {
        return Ok((ExitCode::SUCCESS, outcome));
    }
    let report = &outcome.report;
    printer.data(&format!(
        "\nApply {}: {} of {} changes made{}.\n",
        if report.failed() == 0 {
            "complete"
        } else {
            "incomplete"
        },
        report.succeeded(),
        report.outcomes.len(),
        if report.failed() == 0 {
            String::new()
        } else {
            format!(", {} failed (run apply again to finish)", report.failed())
        }
    ));
    let code = if outcome.succeeded() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    };
    Ok((code, outcome))
}

/// An apply's error as the CLI reports it, with its hint (`new_plan` for a
/// saved plan the account moved away from).
fn error(error: ApplyError, new_plan: Option<&str>) -> anyhow::Error {
    match (&error, new_plan) {
        (ApplyError::AccountChanged | ApplyError::OtherAccount { .. }, Some(hint)) => {
            anyhow!("{error}\nhint: {hint}")
        }
        (ApplyError::NotConfirmed(reason), _) => anyhow!("{reason}"),
        (ApplyError::Lock(held), _) if matches!(**held, locks::LockError::Held { .. }) => {
            anyhow!("nothing was applied: {held}")
        }
        _ => match error.hint() {
            Some(hint) => anyhow!("{error}\nhint: {hint}"),
            None => anyhow::Error::new(error),
        },
    }
}

/// The apply's progress bar on a terminal: changes done of the plan's, and
/// what a long step is doing (a rollout's wait counts down).
#[derive(Clone, Default)]
struct Bar(Arc<std::sync::Mutex<Option<indicatif::ProgressBar>>>);

impl Bar {
    fn get(&self) -> Option<indicatif::ProgressBar> {
        self.0.lock().ok().and_then(|bar| bar.clone())
    }

    /// Draws the bar, when the printer draws progress and there is work.
    fn start(&self, printer: &Printer, changes: usize) {
        if !printer.draws_progress() || changes == 0 {
            return;
        }
        let bar = indicatif::ProgressBar::with_draw_target(
            Some(changes as u64),
            indicatif::ProgressDrawTarget::stderr(),
        );
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("{spinner} {pos}/{len} changes {wide_msg}")
        {
            bar.set_style(style);
        }
        bar.enable_steady_tick(Duration::from_millis(120));
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(bar);
        }
    }

    fn finish(&self) {
        if let Some(bar) = self.0.lock().ok().and_then(|mut bar| bar.take()) {
            bar.finish_and_clear();
        }
    }
}

/// Where rollouts and migrations report: the bar's message on a terminal
/// (with a countdown through a rollout's wait), else timestamped lines.
fn progress_sink(printer: Printer, bar: Bar) -> apply::ProgressSink {
    apply::ProgressSink::new(move |progress| {
        let text = render::progress(progress);
        match (bar.get(), progress) {
            (
                Some(drawn),
                apply::Progress::RolloutStep {
                    wait: Some(wait), ..
                },
            ) => {
                drawn.set_message(text.clone());
                let wait = *wait;
                std::thread::spawn(move || {
                    let started = std::time::Instant::now();
                    while started.elapsed() < wait && !drawn.is_finished() {
                        let left = wait.saturating_sub(started.elapsed());
                        drawn.set_message(format!(
                            "{text} ({} left)",
                            crate::duration::format(Duration::from_secs(left.as_secs()))
                        ));
                        std::thread::sleep(Duration::from_millis(500));
                    }
                });
            }
            (Some(drawn), _) => drawn.set_message(text),
            (None, _) => printer.progress(&text),
        }
    })
}

/// Prints what the apply tells while it works: progress on stdout
/// (failures on stderr), waiting and warnings on stderr.
fn events(printer: Printer, environment: String, bar: Bar) -> Events {
    Arc::new(move |event: &Event<'_>| match event {
        Event::WaitingForLock { info, timeout } => printer.message(&format!(
            "Waiting up to {} for the lock of environment `{environment}`: {info}.",
            locks::display_duration(*timeout)
        )),
        Event::Warning(warning) => printer.message(warning),
        Event::Planned(plan) => printer.data(&render::text(plan)),
        Event::Landed(outcome) => {
            let line = render::outcome_line(outcome);
            let print = || {
                if outcome.succeeded() {
                    printer.data(&line);
                } else {
                    printer.message(line.trim_end());
                }
            };
            match bar.get() {
                Some(drawn) => {
                    drawn.suspend(print);
                    drawn.inc(1);
                }
                None => print(),
            }
        }
    })
}

/// Who runs the apply: `GITHUB_ACTOR` in CI, else `USER`.
fn actor() -> String {
    ["GITHUB_ACTOR", "USER"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| "unknown".to_string())
}

fn confirm(environment: &str, printer: &Printer) -> Confirmation {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Confirmation::Declined(
            "apply needs confirmation, and stdin is not a terminal\nhint: review the plan, then pass --yes"
                .to_string(),
        );
    }
    printer.message(&format!(
        "Apply these changes to environment `{environment}`? Only `yes` is accepted: "
    ));
    let mut answer = String::new();
    if stdin.lock().read_line(&mut answer).is_err() || answer.trim() != "yes" {
        return Confirmation::Declined("apply cancelled: nothing was changed".to_string());
    }
    Confirmation::Confirmed
}
