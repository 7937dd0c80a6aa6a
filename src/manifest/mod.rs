//! Manifests: `infra/*.yaml` and `environments/<env>.yaml` -> a validated
//! [`DesiredState`], or every problem found as [`Diagnostics`].
//!
//! The stages, each in its own module:
//! 1. `yaml`: read each file (size cap, UTF-8), parse it under a budget into
//!    a node tree where every value knows where it is written; duplicate keys.
//! 2. `infra::collect`: sections and keys -> declarations by address; an
//!    address declared twice.
//! 3. `environment::decode`: account, variables, overrides (deep-merged
//!    into the declarations' trees, so overridden text keeps its own origin).
//! 4. `infra::build`: decode each resource through `decode::Fields`
//!    (unknown fields, wrong types, `${var}` interpolation), check the values
//!    against Cloudflare's rules (`rules`, `cron`) and look for name
//!    collisions. Workers (`worker`) also read their modules and resolve
//!    their secrets (`files`), and are checked across each other (service
//!    binding cycles, routes claimed twice).
//!
//! **Invariant:** no I/O beyond reading the manifest files, the worker
//! modules and secret files they name (inside the project root only), and
//! the process environment for `from_env` secrets; no network. A manifest
//! error is found before any client exists.
//!
//! **Invariant:** a secret's value is never part of a diagnostic.
//!
//! **Invariant:** problems are collected, never returned one at a time, and
//! reported in (file, line, column) order; each points at the text to edit
//! (the environment file for an overridden value or a variable's value).
//!
//! The format is documented in `docs/manifest.md`.

mod cron;
mod decode;
mod diagnostic;
mod dns;
mod environment;
mod files;
mod infra;
mod migrations;
mod pages;
mod report;
mod rules;
mod schema;
mod worker;
mod yaml;

#[cfg(test)]
mod fuzz_tests;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use crate::model::{AccountTarget, DesiredState};

pub use diagnostic::{Diagnostic, Diagnostics, Related};
pub use schema::json_schema;

use decode::{Ctx, ExpansionLimits, ExpansionWork, Vars};
use report::{Problem, Sink, did_you_mean, list};
use worker::{Inputs, ZoneSetting};
use yaml::{FileId, Node, Origin, Sources, Value};

/// The directory of resource files, relative to the project root.
pub const INFRA_DIR: &str = "infra";
/// The directory of environment files, relative to the project root.
pub const ENVIRONMENTS_DIR: &str = "environments";
/// The extension of manifest files (`.yml` is refused, not ignored).
const EXTENSION: &str = "yaml";

/// How [`load_with`] resolves what is not in the manifests.
pub struct LoadOptions<'a> {
    /// The run targets the local account (`--local`): a secret whose source
    /// is missing falls back to its `local_default`. Environments with
    /// `account: local` always do.
    pub local: bool,
    /// Reads an environment variable (for `from_env` secrets).
    pub env_var: &'a dyn Fn(&str) -> Option<String>,
    /// A read-only run (`plan`, `drift`): a `from_env` secret whose variable
    /// is not set loads with an unknown value ([`crate::model::SecretSource::Unavailable`]),
    /// compared by name only. Runs that upload secrets never set this.
    pub secrets_optional: bool,
    /// Runs the `build:` of built workers (and keeps their cache); `None`:
    /// a built worker is an error (this load cannot build).
    pub builder: Option<&'a crate::build::Builder>,
}

impl LoadOptions<'static> {
    /// The real process environment, not local.
    pub fn process() -> LoadOptions<'static> {
        LoadOptions {
            local: false,
            env_var: &process_env_var,
            secrets_optional: false,
            builder: None,
        }
    }
}

impl std::fmt::Debug for LoadOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadOptions")
            .field("local", &self.local)
            .field("secrets_optional", &self.secrets_optional)
            .finish_non_exhaustive()
    }
}

fn process_env_var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Loads everything for one environment: `infra/*.yaml` with the overrides
/// and variables of `environments/<environment>.yaml` applied, secrets from
/// the process environment, not local (see [`load_with`]).
pub fn load(root: &Path, environment: &str) -> Result<DesiredState, Diagnostics> {
    load_with(root, environment, &LoadOptions::process())
}

/// [`load`] with explicit options: where `from_env` secrets come from and
/// whether `local_default`s may stand in for missing secrets.
pub fn load_with(
    root: &Path,
    environment: &str,
    options: &LoadOptions<'_>,
) -> Result<DesiredState, Diagnostics> {
    load_measured(root, environment, options, ExpansionLimits::MANIFEST).0
}

/// [`load_with`] under the given limits of `${...}` expansion, with the work
/// interpolation did (the tests bound it instead of timing loads).
fn load_measured(
    root: &Path,
    environment: &str,
    options: &LoadOptions<'_>,
    limits: ExpansionLimits,
) -> (Result<DesiredState, Diagnostics>, ExpansionWork) {
    let mut sources = Sources::default();
    let mut sink = Sink::default();

    let environment_file = find_environment(root, environment, &mut sources, &mut sink);
    let environment_tree = environment_file
        .and_then(|relative| read_tree(root, &relative, "environment", &mut sources, &mut sink));

    let mut infra_trees: Vec<(FileId, Node)> = Vec::new();
    // False when an infra file could not be read: overrides for addresses it
    // may declare are then not reported as undeclared.
    let mut infra_complete = true;
    for relative in manifest_files(root, INFRA_DIR, &mut sources, &mut sink) {
        match read_tree(root, &relative, "infra", &mut sources, &mut sink) {
            Some(tree) => infra_trees.push(tree),
            None => infra_complete = false,
        }
    }

    let mut declarations = infra::collect(&infra_trees, &mut sink);
    let (account, vars, zone, ledger) = match &environment_tree {
        Some((_, node)) => {
            let mut ctx = Ctx {
                sources: &sources,
                sink: &mut sink,
                vars: None,
            };
            let decoded = environment::decode(
                node,
                environment,
                &mut declarations,
                infra_complete,
                limits,
                &mut ctx,
            );
            (decoded.account, decoded.vars, decoded.zone, decoded.ledger)
        }
        // Unknown or unreadable environment: still check infra/, but do not
        // report variables as undefined (they may be defined there).
        None => (
            AccountTarget::FromEnvironment,
            Vars::builtin(environment, false, limits),
            ZoneSetting::Unknown,
            None,
        ),
    };

    let inputs = Inputs {
        project: files::Project::new(root),
        local: options.local || account == AccountTarget::Local,
        env_var: options.env_var,
        secrets_optional: options.secrets_optional,
        zone,
        builder: options.builder,
    };
    let mut state = DesiredState::empty(environment, account);
    if let Some(ledger) = ledger {
        state.ledger_database = ledger;
    }
    if let ZoneSetting::Known(zone) = &inputs.zone {
        state.zone = Some(zone.clone());
    }
    let mut ctx = Ctx {
        sources: &sources,
        sink: &mut sink,
        vars: Some(&vars),
    };
    infra::build(&declarations, &inputs, &mut ctx, &mut state);

    let work = vars.work();
    if sink.is_empty() {
        (Ok(state), work)
    } else {
        (Err(sink.into_diagnostics(sources)), work)
    }
}

/// The environments of the project: the stems of `environments/*.yaml`,
/// sorted. Reports a missing directory, `.yml` files and invalid names.
pub fn environments(root: &Path) -> Result<Vec<String>, Diagnostics> {
    let mut sources = Sources::default();
    let mut sink = Sink::default();
    let mut names = Vec::new();
    for relative in manifest_files(root, ENVIRONMENTS_DIR, &mut sources, &mut sink) {
        let name = stem(&relative);
        if let Some(problem) = rules::key(&name, "environment name") {
            let file = sources.add(relative.clone(), None);
            sink.push(
                Problem::new(Origin::whole(file), "environment", problem.message)
                    .hint(problem.hint),
            );
        }
        names.push(name);
    }
    if sink.is_empty() {
        Ok(names)
    } else {
        Err(sink.into_diagnostics(sources))
    }
}

fn stem(relative: &Path) -> String {
    relative
        .file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `dir/*.yaml` (relative paths, sorted). Reports a missing directory and
/// `.yml` files, which would otherwise be silently left out.
fn manifest_files(root: &Path, dir: &str, sources: &mut Sources, sink: &mut Sink) -> Vec<PathBuf> {
    let entries = match std::fs::read_dir(root.join(dir)) {
        Ok(entries) => entries,
        Err(error) => {
            let file = sources.add(PathBuf::from(dir), None);
            let message = if error.kind() == std::io::ErrorKind::NotFound {
                format!("no `{dir}/` directory in {}", root.display())
            } else {
                format!("cannot list `{dir}/`: {error}")
            };
            sink.push(Problem::new(Origin::whole(file), "", message).hint(
                "run flareops from the project root (the directory holding infra/ and environments/)",
            ));
            return Vec::new();
        }
    };
    let mut files = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = Path::new(dir).join(&name);
        let is_file = entry
            .file_type()
            .map(|kind| !kind.is_dir())
            .unwrap_or(false);
        if !is_file || name.starts_with('.') {
            continue;
        }
        match Path::new(&name).extension().and_then(|ext| ext.to_str()) {
            Some(EXTENSION) => files.push(path),
            Some("yml") => {
                let file = sources.add(path, None);
                sink.push(
                    Problem::new(
                        Origin::whole(file),
                        "",
                        "manifest files end in `.yaml`; this `.yml` file would be ignored",
                    )
                    .hint(format!("rename it to `{}.yaml`", stem(Path::new(&name)))),
                );
            }
            _ => {}
        }
    }
    files.sort();
    files
}

/// `environments/<environment>.yaml` if it exists; reports an unknown
/// environment (with the known ones) otherwise.
fn find_environment(
    root: &Path,
    environment: &str,
    sources: &mut Sources,
    sink: &mut Sink,
) -> Option<PathBuf> {
    let mut listing_sink = Sink::default();
    let files = manifest_files(root, ENVIRONMENTS_DIR, sources, &mut listing_sink);
    let known: Vec<String> = files.iter().map(|file| stem(file)).collect();
    if let Some(index) = known.iter().position(|name| name == environment) {
        let relative = files[index].clone();
        if let Some(problem) = rules::key(environment, "environment name") {
            let file = sources.add(relative.clone(), None);
            sink.push(
                Problem::new(Origin::whole(file), "environment", problem.message)
                    .hint(problem.hint),
            );
        }
        return Some(relative);
    }
    let relative = Path::new(ENVIRONMENTS_DIR).join(format!("{environment}.{EXTENSION}"));
    let file = sources.add(relative, None);
    let yml = Path::new(ENVIRONMENTS_DIR).join(format!("{environment}.yml"));
    let hint = if root.join(&yml).is_file() {
        format!("rename `{}` to `{environment}.yaml`", yml.display())
    } else {
        match did_you_mean(environment, known.iter().map(String::as_str)) {
            Some(guess) => format!(
                "did you mean `{guess}`? known environments: {}",
                list(&known)
            ),
            None if known.is_empty() => format!("create `{ENVIRONMENTS_DIR}/{environment}.yaml`"),
            None => format!("known environments: {}", list(&known)),
        }
    };
    sink.push(
        Problem::new(
            Origin::whole(file),
            "environment",
            format!("unknown environment `{environment}`"),
        )
        .hint(hint),
    );
    None
}

/// Reads and parses one file; the top level must be a non-empty mapping.
fn read_tree(
    root: &Path,
    relative: &Path,
    what: &str,
    sources: &mut Sources,
    sink: &mut Sink,
) -> Option<(FileId, Node)> {
    let (file, text) = yaml::read(root, relative, sources, sink);
    let text = text?;
    let node = yaml::parse(file, &text, sink)?;
    match &node.value {
        Value::Map(_) => Some((file, node)),
        Value::Null if is_blank(&text) => {
            let hint = if what == "environment" {
                "write `{}` for an environment with no settings, or delete the file"
            } else {
                "declare resources in it (e.g. `kv_namespaces:`), or delete the file"
            };
            sink.push(Problem::new(Origin::file_start(file), "", "the file is empty").hint(hint));
            None
        }
        other => {
            let expected = if what == "environment" {
                "`account_id`, `vars` and `overrides`"
            } else {
                "sections such as `kv_namespaces:`"
            };
            sink.push(
                Problem::new(
                    node.origin,
                    "",
                    format!(
                        "expected a mapping at the top of the file, found {}",
                        other.describe()
                    ),
                )
                .hint(format!("an {what} file is a mapping of {expected}")),
            );
            None
        }
    }
}

/// Only whitespace, byte-order marks and comments.
fn is_blank(text: &str) -> bool {
    text.lines().all(|line| {
        let line = line.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
        line.is_empty() || line.starts_with('#') || line == "---" || line == "..."
    })
}
