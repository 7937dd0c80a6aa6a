//! The `workers` section: one worker's fields -> [`WorkerSpec`], reading its
//! modules and resolving its secrets on the way; then the checks across
//! workers (service-binding cycles, routes and custom domains claimed twice)
//! and the override merge rules for workers.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::{
    Address, Binding, ModuleKind, ResourceKind, Rollout, SecretRef, SecretSource, SecretValue,
    WorkerModule, WorkerSpec, Zone,
};

use super::cron;
use super::decode::{Ctx, Fields, Text};
use super::environment::merge;
use super::files::{PathProblem, Project};
use super::infra::{Declaration, checked, name_problem};
use super::report::{Problem, did_you_mean, list};
use super::rules;
use super::yaml::{Entry, Node, Origin, ScalarKind, Value, quote_short};

/// What the environment says about its zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ZoneSetting {
    /// No `zone:` in the environment file.
    Absent,
    /// The environment file could not be read, or its `zone` was invalid
    /// (reported): routes are not checked against a zone.
    Unknown,
    Known(Zone),
}

/// What decoding workers needs from outside the worker itself.
pub(crate) struct Inputs<'a> {
    pub project: Project,
    /// Secrets may fall back to their `local_default`.
    pub local: bool,
    pub env_var: &'a dyn Fn(&str) -> Option<String>,
    /// An unset `from_env` secret loads as unavailable (read-only runs).
    pub secrets_optional: bool,
    pub zone: ZoneSetting,
    pub builder: Option<&'a crate::build::Builder>,
}

/// One worker after decoding: the spec when it had no problem, and what the
/// checks across workers need even when it had some.
#[derive(Debug, Default)]
pub(crate) struct DecodedWorker {
    pub spec: Option<WorkerSpec>,
    pub name: Option<Text>,
    /// `service` bindings: the target key, the field and where it is written.
    pub services: Vec<(String, String, Origin)>,
    pub routes: Vec<(String, Origin)>,
    pub custom_domains: Vec<(String, Origin)>,
}

/// The kinds of binding, as written.
const BINDING_KINDS: [&str; 8] = [
    "kv_namespace",
    "d1",
    "r2_bucket",
    "queue",
    "service",
    "durable_object",
    "text",
    "json",
];
/// The sources of a secret.
const SECRET_SOURCES: [&str; 2] = ["from_env", "from_file"];

/// Decodes one worker's fields (the `protect` field is read by the caller).
pub(crate) fn decode(
    fields: &mut Fields<'_>,
    ctx: &mut Ctx<'_>,
    declarations: &BTreeMap<Address, Declaration>,
    inputs: &Inputs<'_>,
) -> DecodedWorker {
    let before = ctx.sink.len();
    let mut out = DecodedWorker::default();

    let name = fields.required_string(ctx, "name");
    out.name = name.and_then(|name| checked(ctx, fields, "name", name, rules::worker_name));
    let main = fields.required_string(ctx, "main");
    let globs = fields.strings(ctx, "modules");
    let build = decode_build(fields, ctx, &inputs.project);
    // A built worker's modules are read after its build, which runs only
    // when the rest of the worker is valid.
    let (mut main_module, mut modules) = match (&main, &build) {
        (Some(main), None) => load_modules(
            ctx,
            fields,
            &inputs.project,
            main,
            globs.clone().unwrap_or_default(),
            false,
        ),
        _ => (String::new(), Vec::new()),
    };
    let compatibility_date = fields
        .required_string(ctx, "compatibility_date")
        .and_then(|date| {
            checked(
                ctx,
                fields,
                "compatibility_date",
                date,
                rules::compatibility_date,
            )
        })
        .map(|date| date.value)
        .unwrap_or_default();
    let mut compatibility_flags: Vec<String> = fields
        .strings(ctx, "compatibility_flags")
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(path, text)| checked_at(ctx, path, text, rules::compatibility_flag))
        .map(|text| text.value)
        .collect();
    compatibility_flags.sort();
    compatibility_flags.dedup();

    let (bindings, binding_keys) = decode_bindings(fields, ctx, declarations, &mut out);
    let secrets = decode_secrets(fields, ctx, inputs, &binding_keys);

    let mut crons = Vec::new();
    for (path, text) in fields.strings(ctx, "crons").unwrap_or_default() {
        if text.unresolved {
            continue;
        }
        match cron::check(&text.value) {
            Ok(collapsed) => crons.push(collapsed),
            Err(problem) => ctx.push(name_problem(path, &text, problem)),
        }
    }
    crons.sort();
    crons.dedup();

    let zone = match &inputs.zone {
        ZoneSetting::Known(zone) => Some(zone.name.as_str()),
        _ => None,
    };
    let routes = hostnames(fields, ctx, "routes", &inputs.zone, |value| {
        rules::route_pattern(value, zone)
    });
    out.routes = routes.clone();
    let custom_domains = hostnames(fields, ctx, "custom_domains", &inputs.zone, |value| {
        rules::custom_domain(value, zone)
    });
    out.custom_domains = custom_domains.clone();

    let rollout = decode_rollout(fields, ctx);
    let consumers = decode_consumers(fields, ctx, declarations);

    let mut sources = None;
    if let (Some(main), Some(Some(build))) = (&main, &build)
        && ctx.sink.len() == before
        && let Some(files) = run_build(ctx, fields, inputs, main, build)
    {
        sources = Some(crate::model::BuildSources {
            spec: build.spec.clone(),
            files,
        });
        (main_module, modules) = load_modules(
            ctx,
            fields,
            &inputs.project,
            main,
            globs.unwrap_or_default(),
            true,
        );
    }

    if ctx.sink.len() == before
        && let (Some(name), Some(rollout)) = (&out.name, rollout)
    {
        let sorted = |items: Vec<(String, Origin)>| {
            let set: BTreeSet<String> = items.into_iter().map(|(value, _)| value).collect();
            set.into_iter().collect::<Vec<_>>()
        };
        out.spec = Some(WorkerSpec {
            name: name.value.clone(),
            main_module,
            modules,
            compatibility_date,
            compatibility_flags,
            bindings,
            secrets,
            crons,
            routes: sorted(routes),
            custom_domains: sorted(custom_domains),
            source_paths: source_paths(&inputs.project, main.as_ref(), build.as_ref()),
            consumers,
            rollout,
            build: sources,
        });
    }
    out
}

/// Applies a rule to a list item; reports at the item.
fn checked_at(
    ctx: &mut Ctx<'_>,
    path: String,
    text: Text,
    rule: fn(&str) -> Option<rules::NameProblem>,
) -> Option<Text> {
    if text.unresolved {
        return None;
    }
    match rule(&text.value) {
        None => Some(text),
        Some(problem) => {
            ctx.push(name_problem(path, &text, problem));
            None
        }
    }
}

fn path_problem(field: &str, text: &Text, problem: PathProblem) -> Problem {
    Problem::new(text.origin, field, problem.message).hint(problem.hint)
}

/// Reads `main` and the files the `modules` globs match. Returns the main
/// module's name and every module, sorted by name.
fn load_modules(
    ctx: &mut Ctx<'_>,
    fields: &Fields<'_>,
    project: &Project,
    main: &Text,
    globs: Vec<(String, Text)>,
    source_maps: bool,
) -> (String, Vec<WorkerModule>) {
    let field = fields.path("main");
    let mut modules: BTreeMap<String, WorkerModule> = BTreeMap::new();
    if main.unresolved {
        return (String::new(), Vec::new());
    }
    let relative = match project.relative(&main.value, "main module") {
        Ok(relative) => relative,
        Err(problem) => {
            ctx.push(path_problem(&field, main, problem));
            return (String::new(), Vec::new());
        }
    };
    let (directory, main_name) = match relative.rsplit_once('/') {
        Some((directory, name)) => (Some(directory.to_string()), name.to_string()),
        None => (None, relative.clone()),
    };
    let extension = main_name
        .rsplit_once('.')
        .map(|(_, extension)| extension.to_ascii_lowercase());
    if !matches!(extension.as_deref(), Some("js" | "mjs")) {
        ctx.push(
            Problem::new(
                main.origin,
                &field,
                format!("the main module `{relative}` is not JavaScript (`.js` or `.mjs`)"),
            )
            .hint("the main module is an ES module: build TypeScript or other sources first (e.g. with esbuild) and point `main` at the output"),
        );
    } else {
        match project.read(&relative, "main module") {
            Ok(content) => {
                modules.insert(
                    main_name.clone(),
                    WorkerModule {
                        name: main_name.clone(),
                        kind: ModuleKind::EsModule,
                        content,
                    },
                );
            }
            Err(problem) => ctx.push(path_problem(&field, main, problem)),
        }
    }
    for (path, glob) in globs {
        if glob.unresolved {
            continue;
        }
        let matches = match project.glob(&glob.value) {
            Ok(matches) => matches,
            Err(problem) => {
                ctx.push(path_problem(&path, &glob, problem));
                continue;
            }
        };
        if matches.is_empty() {
            ctx.push(
                Problem::new(glob.origin, &path, format!("the glob `{}` matches no file", glob.value))
                    .hint("globs are relative to the project root; `*` stays in one directory, `**/` crosses directories; build the files first or remove the glob"),
            );
            continue;
        }
        for file in matches {
            if file == relative {
                continue; // the main module, already read
            }
            let name = match &directory {
                None => Some(file.clone()),
                Some(directory) => file
                    .strip_prefix(directory.as_str())
                    .and_then(|rest| rest.strip_prefix('/'))
                    .map(str::to_string),
            };
            let Some(name) = name else {
                ctx.push(
                    Problem::new(
                        glob.origin,
                        &path,
                        format!(
                            "`{file}` (matched by `{}`) is outside the main module's directory `{}`",
                            glob.value,
                            directory.as_deref().unwrap_or_default()
                        ),
                    )
                    .hint("module names are paths relative to the main module's directory: keep the modules under it, or move `main` up"),
                );
                continue;
            };
            if modules.contains_key(&name) {
                continue;
            }
            let Some(kind) = ModuleKind::from_file_name(&name) else {
                ctx.push(
                    Problem::new(
                        glob.origin,
                        &path,
                        format!("`{file}` (matched by `{}`) is not a known kind of module", glob.value),
                    )
                    .hint("modules end in .js, .mjs (ES modules), .cjs (CommonJS), .wasm, .bin (data), or .txt, .html, .htm, .md, .css, .json, .svg, .csv (text); narrow the glob"),
                );
                continue;
            };
            match project.read(&file, "module") {
                Ok(content) => {
                    modules.insert(
                        name.clone(),
                        WorkerModule {
                            name,
                            kind,
                            content,
                        },
                    );
                }
                Err(problem) => ctx.push(path_problem(&path, &glob, problem)),
            }
        }
    }
    if source_maps {
        // As wrangler's `upload_source_maps`: each script module's map,
        // written beside it by the build, is uploaded beside it.
        let scripts: Vec<String> = modules
            .values()
            .filter(|m| matches!(m.kind, ModuleKind::EsModule | ModuleKind::CommonJs))
            .map(|m| m.name.clone())
            .collect();
        for name in scripts {
            let map_name = format!("{name}.map");
            let file = match &directory {
                Some(directory) => format!("{directory}/{map_name}"),
                None => map_name.clone(),
            };
            if modules.contains_key(&map_name) || !project.is_file(&file) {
                continue;
            }
            match project.read(&file, "source map") {
                Ok(content) => {
                    modules.insert(
                        map_name.clone(),
                        WorkerModule {
                            name: map_name,
                            kind: ModuleKind::SourceMap,
                            content,
                        },
                    );
                }
                Err(problem) => ctx.push(path_problem(&field, main, problem)),
            }
        }
    }
    (main_name, modules.into_values().collect())
}

/// `consumers:`: queue key -> how this worker consumes it.
fn decode_consumers(
    fields: &mut Fields<'_>,
    ctx: &mut Ctx<'_>,
    declarations: &BTreeMap<Address, Declaration>,
) -> BTreeMap<String, crate::model::ConsumerSpec> {
    let mut out = BTreeMap::new();
    let Some(node) = fields.node("consumers") else {
        return out;
    };
    let path = fields.path("consumers");
    let Value::Map(entries) = &node.value else {
        ctx.push(
            Problem::new(
                node.origin,
                &path,
                format!(
                    "expected a mapping of queue keys, found {}",
                    node.value.describe()
                ),
            )
            .hint("write `consumers:` with one `QUEUE_KEY: {batch_size: 10, ...}` per queue"),
        );
        return out;
    };
    let queues: Vec<&str> = declarations
        .keys()
        .filter(|a| a.kind == ResourceKind::Queues)
        .map(|a| a.key.as_str())
        .collect();
    let declared = |ctx: &mut Ctx<'_>, key: &str, origin: Origin, field: &str| {
        if queues.contains(&key) {
            return true;
        }
        let hint = match did_you_mean(key, queues.iter().copied()) {
            Some(guess) => format!("did you mean `{guess}`? declared queues: {}", list(&queues)),
            None if queues.is_empty() => "declare the queue under `queues:` first".to_string(),
            None => format!("declared queues: {}", list(&queues)),
        };
        ctx.push(Problem::new(origin, field, format!("`queues.{key}` is not declared")).hint(hint));
        false
    };
    for entry in entries {
        let key = entry.key.name.clone();
        let entry_path = format!("{path}.{key}");
        if !declared(ctx, &key, entry.key.origin, &entry_path) {
            continue;
        }
        let Some(mut consumer) =
            Fields::open(ctx, &entry.value, &entry_path, entry.key.origin, "consumer")
        else {
            continue;
        };
        let before = ctx.sink.len();
        let int = |consumer: &mut Fields<'_>,
                   ctx: &mut Ctx<'_>,
                   name: &'static str,
                   min: u64,
                   max: u64| {
            let node = consumer.node(name)?;
            let field = consumer.path(name);
            if let Value::Typed {
                kind: ScalarKind::Int,
                raw,
            } = &node.value
                && let Ok(n) = raw.parse::<u64>()
                && (min..=max).contains(&n)
            {
                return Some(n);
            }
            ctx.push(
                Problem::new(
                    node.origin,
                    field,
                    format!(
                        "expected a whole number from {min} to {max}, found {}",
                        node.value.describe()
                    ),
                )
                .hint(format!(
                    "write `{name}: {min}`, or another number up to {max}"
                )),
            );
            None
        };
        let batch_size = int(&mut consumer, ctx, "batch_size", 1, 100);
        let max_retries = int(&mut consumer, ctx, "max_retries", 0, 100);
        let max_concurrency = int(&mut consumer, ctx, "max_concurrency", 1, 250);
        let max_wait_time_ms = consumer.node("max_wait_time").and_then(|node| {
            let field = consumer.path("max_wait_time");
            let text = ctx.text(node, &field)?;
            match crate::duration::parse_with_unit(&text.value) {
                Ok(d) if d <= std::time::Duration::from_secs(60) => Some(d.as_millis() as u64),
                _ => {
                    ctx.push(
                        Problem::new(
                            text.origin,
                            field,
                            format!("invalid max_wait_time {}", quote_short(&text.value)),
                        )
                        .hint("write a duration up to `60s`, e.g. `5s` or `500ms`"),
                    );
                    None
                }
            }
        });
        let retry_delay = consumer.node("retry_delay").and_then(|node| {
            let field = consumer.path("retry_delay");
            let text = ctx.text(node, &field)?;
            match crate::duration::parse_with_unit(&text.value) {
                Ok(d) if d.subsec_nanos() == 0 && d <= std::time::Duration::from_secs(43_200) => {
                    Some(d.as_secs())
                }
                _ => {
                    ctx.push(
                        Problem::new(
                            text.origin,
                            field,
                            format!("invalid retry_delay {}", quote_short(&text.value)),
                        )
                        .hint("write whole seconds up to `12h`, e.g. `30s` or `5m`"),
                    );
                    None
                }
            }
        });
        let dead_letter_queue = consumer.string(ctx, "dead_letter_queue").and_then(|text| {
            if text.unresolved {
                return None;
            }
            let field = consumer.path("dead_letter_queue");
            if text.value == key {
                ctx.push(
                    Problem::new(
                        text.origin,
                        field,
                        "a queue cannot be its own dead-letter queue",
                    )
                    .hint(
                        "declare another queue for the messages that fail, and name its key here",
                    ),
                );
                return None;
            }
            declared(ctx, &text.value, text.origin, &field).then_some(text.value)
        });
        consumer.finish(ctx);
        if ctx.sink.len() == before {
            out.insert(
                key,
                crate::model::ConsumerSpec {
                    settings: crate::model::ConsumerSettings {
                        batch_size,
                        max_retries,
                        max_wait_time_ms,
                        max_concurrency,
                        retry_delay,
                    },
                    dead_letter_queue,
                },
            );
        }
    }
    out
}

/// The git pathspecs of what a worker's upload is read from.
fn source_paths(
    project: &Project,
    main: Option<&Text>,
    build: Option<&Option<Build>>,
) -> Vec<String> {
    if let Some(Some(build)) = build {
        return vec![
            build.spec.dir.clone(),
            format!(":(exclude){}/node_modules", build.spec.dir),
            format!(":(exclude){}", build.spec.output),
        ];
    }
    let Some(relative) = main.and_then(|m| project.relative(&m.value, "main module").ok()) else {
        return Vec::new();
    };
    match relative.rsplit_once('/') {
        Some((dir, _)) => vec![dir.to_string()],
        None => vec![relative],
    }
}

/// A worker's valid `build:`, with where its command is written.
#[derive(Debug)]
pub(crate) struct Build {
    pub(crate) spec: crate::build::BuildSpec,
    pub(crate) command: Text,
}

/// `build:`. `None`: absent; `Some(None)`: declared with a problem (reported).
pub(crate) fn decode_build(
    fields: &mut Fields<'_>,
    ctx: &mut Ctx<'_>,
    project: &Project,
) -> Option<Option<Build>> {
    let node = fields.node("build")?;
    let path = fields.path("build");
    let before = ctx.sink.len();
    let Some(mut build) = Fields::open(ctx, node, &path, node.origin, "build") else {
        return Some(None);
    };
    let command = build.required_string(ctx, "command");
    let dir = build.required_string(ctx, "dir");
    let inputs = build.strings(ctx, "inputs");
    let output = build.string(ctx, "output");
    let timeout = build
        .node("timeout")
        .and_then(|node| decode_timeout(ctx, node, &format!("{path}.timeout")));
    build.finish(ctx);
    let (Some(command), Some(dir)) = (command, dir) else {
        return Some(None);
    };
    if command.unresolved || dir.unresolved {
        return Some(None);
    }
    if command.value.trim().is_empty() {
        ctx.push(
            Problem::new(
                command.origin,
                format!("{path}.command"),
                "the build command is empty",
            )
            .hint("write the command that builds the worker, e.g. `npm ci && npm run build`"),
        );
    }
    let dir_path = match project.relative(&dir.value, "build directory") {
        Ok(relative) if project.is_dir(&relative) => Some(relative),
        Ok(relative) => {
            ctx.push(
                Problem::new(
                    dir.origin,
                    format!("{path}.dir"),
                    format!("the build directory `{relative}` does not exist"),
                )
                .hint("`dir` is the directory the command runs in (the one holding package.json), relative to the project root"),
            );
            None
        }
        Err(problem) => {
            ctx.push(path_problem(&format!("{path}.dir"), &dir, problem));
            None
        }
    };
    let mut globs = Vec::new();
    for (item_path, glob) in inputs.unwrap_or_else(Vec::new) {
        if glob.unresolved {
            continue;
        }
        let bad = glob.value.is_empty()
            || glob.value.starts_with('/')
            || glob.value.contains('\\')
            || glob.value.split('/').any(|part| part == "..")
            || glob::Pattern::new(&glob.value).is_err();
        if bad {
            ctx.push(
                Problem::new(glob.origin, item_path, format!("invalid input glob {}", quote_short(&glob.value)))
                    .hint("inputs are globs relative to the build directory, with `/`, without `..`: e.g. `src/**`, `package.json`"),
            );
            continue;
        }
        // `src/**` means everything beneath `src/` (in the glob crate's
        // syntax `**` alone matches directories only).
        let value = if glob.value == "**" || glob.value.ends_with("/**") {
            format!("{}/*", glob.value)
        } else {
            glob.value
        };
        globs.push(value);
    }
    if globs.is_empty() {
        // Everything in the directory (but node_modules and the output).
        globs.push("**/*".to_string());
    }
    let output_path = match &output {
        None => dir_path.as_ref().map(|dir| format!("{dir}/dist")),
        Some(text) if text.unresolved => None,
        Some(text) => match project.relative(&text.value, "build output") {
            Ok(relative) => dir_path.as_ref().map(|dir| format!("{dir}/{relative}")),
            Err(problem) => {
                ctx.push(path_problem(&format!("{path}.output"), text, problem));
                None
            }
        },
    };
    if ctx.sink.len() != before {
        return Some(None);
    }
    let (Some(dir), Some(output)) = (dir_path, output_path) else {
        return Some(None);
    };
    Some(Some(Build {
        spec: crate::build::BuildSpec {
            command: command.value.clone(),
            dir,
            inputs: globs,
            output,
            timeout: timeout.unwrap_or(crate::build::DEFAULT_TIMEOUT),
        },
        command,
    }))
}

/// A build's `timeout`: a duration of at least a second.
fn decode_timeout(ctx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<std::time::Duration> {
    let text = ctx.text(node, path)?;
    if text.unresolved {
        return None;
    }
    match crate::duration::parse_with_unit(&text.value) {
        Ok(duration) if duration >= std::time::Duration::from_secs(1) => Some(duration),
        _ => {
            ctx.push(
                Problem::new(
                    text.origin,
                    path,
                    format!("invalid timeout {}", quote_short(&text.value)),
                )
                .hint("write a duration of at least a second: `90s`, `10m`, `1h`"),
            );
            None
        }
    }
}

/// Runs (or restores from the cache) a valid worker's build; reports a
/// failure at its command. Answers the files it read when its output is
/// there to read.
fn run_build(
    ctx: &mut Ctx<'_>,
    fields: &Fields<'_>,
    inputs: &Inputs<'_>,
    main: &Text,
    build: &Build,
) -> Option<BTreeMap<String, Vec<u8>>> {
    let command_path = format!("{}.command", fields.path("build"));
    let worker = fields.path("build");
    let worker = worker.strip_suffix(".build").unwrap_or(&worker);
    if main.unresolved {
        return None;
    }
    let output = &build.spec.output;
    match inputs.project.relative(&main.value, "main module") {
        Ok(relative) if relative.starts_with(&format!("{output}/")) => {}
        Ok(relative) => {
            ctx.push(
                Problem::new(
                    main.origin,
                    fields.path("main"),
                    format!("the main module `{relative}` is not in the build's output `{output}`"),
                )
                .hint(format!("a built worker uploads what its build writes: point `main` at the bundle under `{output}/`, or set `build.output`")),
            );
            return None;
        }
        Err(problem) => {
            ctx.push(path_problem(&fields.path("main"), main, problem));
            return None;
        }
    }
    ensure_built(ctx, inputs, worker, command_path, build)
}

/// Runs (or restores from the cache) the build of `owner` (an address);
/// reports a failure at its command. Answers the files it read.
pub(crate) fn ensure_built(
    ctx: &mut Ctx<'_>,
    inputs: &Inputs<'_>,
    owner: &str,
    command_path: String,
    build: &Build,
) -> Option<BTreeMap<String, Vec<u8>>> {
    let worker = owner;
    let Some(builder) = inputs.builder else {
        ctx.push(
            Problem::new(
                build.command.origin,
                command_path,
                "this run does not build",
            )
            .hint("run flareops validate, plan or apply, which build"),
        );
        return None;
    };
    match builder.ensure(inputs.project.root(), worker, &build.spec) {
        Ok(files) => Some(files),
        Err(error) => {
            let mut message = format!(
                "the build of `{worker}` failed: {error}\n  command: {} (in `{}`)",
                build.spec.command, build.spec.dir
            );
            if let Some(tail) = error.tail().filter(|t| !t.trim().is_empty()) {
                message.push_str("\n  its last lines:");
                for line in tail.lines() {
                    message.push_str("\n    ");
                    message.push_str(line);
                }
            }
            ctx.push(
                Problem::new(build.command.origin, command_path, message)
                    .hint("fix the build and run again; the command runs in its directory with no credential or secret value in its environment"),
            );
            None
        }
    }
}

/// `bindings:`. Returns the bindings and where each name is written.
fn decode_bindings(
    fields: &mut Fields<'_>,
    ctx: &mut Ctx<'_>,
    declarations: &BTreeMap<Address, Declaration>,
    out: &mut DecodedWorker,
) -> (BTreeMap<String, Binding>, BTreeMap<String, Origin>) {
    let mut bindings = BTreeMap::new();
    let mut names = BTreeMap::new();
    let path = fields.path("bindings");
    let Some(entries) = named_entries(fields, ctx, "bindings", "binding") else {
        return (bindings, names);
    };
    for entry in entries {
        let name = entry.key.name.as_str();
        let binding_path = format!("{path}.{name}");
        names.insert(name.to_string(), entry.key.origin);
        if let Some(problem) = rules::js_identifier(name, "binding name") {
            ctx.push(
                Problem::new(entry.key.origin, &binding_path, problem.message).hint(problem.hint),
            );
        }
        if let Some(binding) = decode_binding(ctx, entry, &binding_path, declarations, out) {
            bindings.insert(name.to_string(), binding);
        }
    }
    (bindings, names)
}

/// The entries of a `name: {...}` mapping field (`bindings`, `secrets`).
fn named_entries<'n>(
    fields: &mut Fields<'n>,
    ctx: &mut Ctx<'_>,
    name: &'static str,
    noun: &str,
) -> Option<&'n [Entry]> {
    let node = fields.node(name)?;
    match &node.value {
        Value::Map(entries) => Some(entries),
        other => {
            ctx.push(
                Problem::new(
                    node.origin,
                    fields.path(name),
                    format!(
                        "expected a mapping of {noun} names to {noun}s, found {}",
                        other.describe()
                    ),
                )
                .hint(format!(
                    "write one `NAME: {{...}}` per line under `{name}:`"
                )),
            );
            None
        }
    }
}

/// Picks the one field of `entries` among `kinds`; reports none or several.
fn one_kind<'n>(
    ctx: &mut Ctx<'_>,
    fields: &mut Fields<'n>,
    kinds: &[&'static str],
    anchor: Origin,
    path: &str,
    noun: &str,
    example: &str,
) -> Option<(&'static str, &'n Node)> {
    let present: Vec<(&'static str, &'n Node)> = kinds
        .iter()
        .filter_map(|kind| fields.node(kind).map(|node| (*kind, node)))
        .collect();
    match present.as_slice() {
        [one] => Some(*one),
        [] => {
            ctx.push(
                Problem::new(
                    anchor,
                    path,
                    format!("the {noun} has none of {}", list(kinds)),
                )
                .hint(format!("write exactly one of them, e.g. `{example}`")),
            );
            None
        }
        [(first, _), (second, node), ..] => {
            ctx.push(
                Problem::new(
                    node.origin,
                    path,
                    format!("the {noun} has both `{first}` and `{second}`"),
                )
                .hint(format!("a {noun} has exactly one of {}", list(kinds))),
            );
            None
        }
    }
}

fn decode_binding(
    ctx: &mut Ctx<'_>,
    entry: &Entry,
    path: &str,
    declarations: &BTreeMap<Address, Declaration>,
    out: &mut DecodedWorker,
) -> Option<Binding> {
    if let Value::Str(_) | Value::Typed { .. } = &entry.value.value {
        ctx.push(
            Problem::new(
                entry.value.origin,
                path,
                format!(
                    "expected a binding such as `{{kv_namespace: users}}`, found {}",
                    entry.value.value.describe()
                ),
            )
            .hint("for a plain-text variable write `{text: \"...\"}`; bindings are one of `kv_namespace`, `d1`, `r2_bucket`, `queue`, `service`, `durable_object`, `text`, `json`"),
        );
        return None;
    }
    let mut fields = Fields::open(ctx, &entry.value, path, entry.key.origin, "binding")?;
    let picked = one_kind(
        ctx,
        &mut fields,
        &BINDING_KINDS,
        entry.key.origin,
        path,
        "binding",
        "{kv_namespace: users}",
    );
    fields.finish(ctx);
    let (kind, node) = picked?;
    let field = format!("{path}.{kind}");
    let target = |ctx: &mut Ctx<'_>, resource: ResourceKind| -> Option<String> {
        let text = ctx.text(node, &field)?;
        if text.unresolved {
            return None;
        }
        let address = Address::new(resource, text.value.clone());
        if declarations.contains_key(&address) {
            return Some(text.value);
        }
        let keys: Vec<&str> = declarations
            .keys()
            .filter(|address| address.kind == resource)
            .map(|address| address.key.as_str())
            .collect();
        let hint = match did_you_mean(&text.value, keys.iter().copied()) {
            Some(guess) => format!(
                "did you mean `{guess}`? declared {}s: {}",
                resource.noun(),
                list(&keys)
            ),
            None if keys.is_empty() => format!(
                "declare it under `{}:` in infra/ (no {} is declared)",
                resource.section(),
                resource.noun()
            ),
            None => format!("declared {}s: {}", resource.noun(), list(&keys)),
        };
        let (at, _) = text.origin_at(0);
        ctx.push(
            Problem::new(
                at,
                &field,
                format!("`{address}` is not declared: the binding points at nothing"),
            )
            .hint(hint),
        );
        None
    };
    Some(match kind {
        "kv_namespace" => Binding::KvNamespace(target(ctx, ResourceKind::KvNamespaces)?),
        "d1" => Binding::D1(target(ctx, ResourceKind::D1Databases)?),
        "r2_bucket" => Binding::R2Bucket(target(ctx, ResourceKind::R2Buckets)?),
        "queue" => Binding::Queue(target(ctx, ResourceKind::Queues)?),
        "service" => {
            let key = target(ctx, ResourceKind::Workers)?;
            out.services.push((key.clone(), field.clone(), node.origin));
            Binding::Service(key)
        }
        "durable_object" => {
            let text = ctx.text(node, &field)?;
            let text = checked_at(ctx, field.clone(), text, |value| {
                rules::js_identifier(value, "Durable Object class name")
            })?;
            Binding::DurableObject(text.value)
        }
        "text" => {
            let text = ctx.text(node, &field)?;
            if text.unresolved {
                return None;
            }
            Binding::Text(text.value)
        }
        _ => Binding::Json(to_json(ctx, node, &field)?),
    })
}

/// A YAML value as JSON; strings are interpolated.
fn to_json(ctx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<serde_json::Value> {
    use serde_json::Value as Json;
    Some(match &node.value {
        Value::Null => Json::Null,
        Value::Str(_) => {
            let text = ctx.text(node, path)?;
            if text.unresolved {
                return None;
            }
            Json::String(text.value)
        }
        Value::Typed {
            kind: ScalarKind::Bool(value),
            ..
        } => Json::Bool(*value),
        Value::Typed { raw, .. } => match json_number(raw) {
            Some(number) => Json::Number(number),
            None => {
                ctx.push(
                    Problem::new(
                        node.origin,
                        path,
                        format!("the number `{raw}` cannot be written in JSON"),
                    )
                    .hint("quote it to pass it as a string"),
                );
                return None;
            }
        },
        Value::Seq(items) => {
            let mut out = Vec::with_capacity(items.len());
            let mut ok = true;
            for (index, item) in items.iter().enumerate() {
                match to_json(ctx, item, &format!("{path}[{index}]")) {
                    Some(value) => out.push(value),
                    None => ok = false,
                }
            }
            if !ok {
                return None;
            }
            Json::Array(out)
        }
        Value::Map(entries) => {
            let mut out = serde_json::Map::new();
            let mut ok = true;
            for entry in entries {
                let child = format!("{path}.{}", entry.key.name);
                match to_json(ctx, &entry.value, &child) {
                    Some(value) => {
                        out.insert(entry.key.name.clone(), value);
                    }
                    None => ok = false,
                }
            }
            if !ok {
                return None;
            }
            Json::Object(out)
        }
    })
}

/// A YAML 1.2 number as JSON: decimal, `0x`/`0o` integers, finite floats.
fn json_number(raw: &str) -> Option<serde_json::Number> {
    if let Ok(value) = raw.parse::<i64>() {
        return Some(value.into());
    }
    if let Ok(value) = raw.parse::<u64>() {
        return Some(value.into());
    }
    let (negative, digits) = match raw.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, raw.strip_prefix('+').unwrap_or(raw)),
    };
    let radix = if let Some(hex) = digits.strip_prefix("0x") {
        Some((hex, 16))
    } else {
        digits.strip_prefix("0o").map(|octal| (octal, 8))
    };
    if let Some((digits, radix)) = radix {
        let value = i64::from_str_radix(digits, radix).ok()?;
        return Some((if negative { -value } else { value }).into());
    }
    raw.parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
}

/// `secrets:`. Names must not repeat a binding's.
fn decode_secrets(
    fields: &mut Fields<'_>,
    ctx: &mut Ctx<'_>,
    inputs: &Inputs<'_>,
    binding_names: &BTreeMap<String, Origin>,
) -> BTreeMap<String, SecretRef> {
    let mut secrets = BTreeMap::new();
    let path = fields.path("secrets");
    let Some(entries) = named_entries(fields, ctx, "secrets", "secret") else {
        return secrets;
    };
    for entry in entries {
        let name = entry.key.name.as_str();
        let secret_path = format!("{path}.{name}");
        if let Some(problem) = rules::js_identifier(name, "secret name") {
            ctx.push(
                Problem::new(entry.key.origin, &secret_path, problem.message).hint(problem.hint),
            );
        }
        if let Some(binding) = binding_names.get(name) {
            ctx.push(
                Problem::new(
                    entry.key.origin,
                    &secret_path,
                    format!("`{name}` is both a binding and a secret"),
                )
                .hint("bindings and secrets share one namespace (`env.NAME` in the worker): rename one of them")
                .related(*binding, "the binding is declared here"),
            );
        }
        if let Some(secret) = decode_secret(ctx, entry, &secret_path, inputs) {
            secrets.insert(name.to_string(), secret);
        }
    }
    secrets
}

fn decode_secret(
    ctx: &mut Ctx<'_>,
    entry: &Entry,
    path: &str,
    inputs: &Inputs<'_>,
) -> Option<SecretRef> {
    if let Value::Str(_) | Value::Typed { .. } = &entry.value.value {
        // The value is not echoed: it may be a secret pasted by mistake.
        ctx.push(
            Problem::new(
                entry.value.origin,
                path,
                "expected a secret source such as `{from_env: MY_SECRET}`, found a string",
            )
            .hint("secret values never go in manifests: write `{from_env: VARIABLE}` or `{from_file: path}` (plus `local_default:` for local runs)"),
        );
        return None;
    }
    let name = entry.key.name.as_str();
    let mut fields = Fields::open(ctx, &entry.value, path, entry.key.origin, "secret")?;
    let picked = one_kind(
        ctx,
        &mut fields,
        &SECRET_SOURCES,
        entry.key.origin,
        path,
        "secret",
        "{from_env: MY_SECRET}",
    );
    // Taken literally: no `${...}` (it is a value, and may hold `$`).
    let local_default = fields.node("local_default").and_then(|node| match &node.value {
        Value::Str(text) => Some(text.clone()),
        Value::Typed { raw, .. } => Some(raw.clone()),
        other => {
            ctx.push(
                Problem::new(
                    node.origin,
                    format!("{path}.local_default"),
                    format!("expected a string, found {}", other.describe()),
                )
                .hint("write the value used against the local account, e.g. `local_default: dev-only`"),
            );
            None
        }
    });
    fields.finish(ctx);
    let (kind, node) = picked?;
    let field = format!("{path}.{kind}");
    let text = ctx.text(node, &field)?;
    if text.unresolved {
        return None;
    }
    let fallback = |missing: String, hint: String, ctx: &mut Ctx<'_>, source: &Text| {
        if inputs.local
            && let Some(value) = &local_default
        {
            return Some(SecretRef {
                source: SecretSource::LocalDefault,
                value: SecretValue::new(value.clone()),
            });
        }
        let hint = if inputs.local {
            format!("{hint}; or add `local_default: ...` under `{name}` for local runs")
        } else {
            hint
        };
        ctx.push(Problem::new(source.origin, &field, missing).hint(hint));
        None
    };
    if kind == "from_env" {
        let variable = checked_at(ctx, field.clone(), text, rules::env_var_name)?;
        match (inputs.env_var)(&variable.value) {
            Some(value) if !value.is_empty() => Some(SecretRef {
                source: SecretSource::FromEnv(variable.value.clone()),
                value: SecretValue::new(value),
            }),
            None if inputs.secrets_optional && !(inputs.local && local_default.is_some()) => {
                Some(SecretRef {
                    source: SecretSource::Unavailable(variable.value.clone()),
                    value: SecretValue::new(String::new()),
                })
            }
            found => {
                let state = if found.is_some() {
                    "is empty"
                } else {
                    "is not set"
                };
                fallback(
                    format!(
                        "the environment variable `{}` (secret `{name}`) {state}",
                        variable.value
                    ),
                    format!(
                        "set `{}` in the environment flareops runs in (in CI, from the CI's secret store)",
                        variable.value
                    ),
                    ctx,
                    &variable,
                )
            }
        }
    } else {
        let relative = match inputs.project.relative(&text.value, "secret file") {
            Ok(relative) => relative,
            Err(problem) => {
                ctx.push(path_problem(&field, &text, problem));
                return None;
            }
        };
        let full = inputs.project.read(&relative, "secret file");
        let missing = matches!(&full, Err(problem) if problem.message.ends_with("does not exist"));
        match full {
            Ok(bytes) => {
                let Ok(mut value) = String::from_utf8(bytes) else {
                    ctx.push(
                        Problem::new(
                            text.origin,
                            &field,
                            format!(
                                "the secret file `{relative}` (secret `{name}`) is not valid UTF-8"
                            ),
                        )
                        .hint("secret values are text: save the file as UTF-8"),
                    );
                    return None;
                };
                // One trailing line break is not part of the value (`echo x > file`).
                if value.ends_with('\n') {
                    value.pop();
                    if value.ends_with('\r') {
                        value.pop();
                    }
                }
                if value.is_empty() {
                    return fallback(
                        format!("the secret file `{relative}` (secret `{name}`) is empty"),
                        "write the secret's value into the file".to_string(),
                        ctx,
                        &text,
                    );
                }
                Some(SecretRef {
                    source: SecretSource::FromFile(relative.into()),
                    value: SecretValue::new(value),
                })
            }
            Err(problem) if missing => fallback(
                format!("{} (secret `{name}`)", problem.message),
                "create the file before flareops runs (it should not be committed)".to_string(),
                ctx,
                &text,
            ),
            Err(problem) => {
                ctx.push(path_problem(&field, &text, problem));
                None
            }
        }
    }
}

/// `routes` or `custom_domains`: each value checked by `rule`; a zone is
/// required when there is any.
fn hostnames(
    fields: &mut Fields<'_>,
    ctx: &mut Ctx<'_>,
    name: &'static str,
    zone: &ZoneSetting,
    rule: impl Fn(&str) -> Option<rules::NameProblem>,
) -> Vec<(String, Origin)> {
    let mut out = Vec::new();
    let items = fields.strings(ctx, name).unwrap_or_default();
    if let (ZoneSetting::Absent, Some((path, first))) = (zone, items.first()) {
        ctx.push(
            Problem::new(
                first.origin,
                path,
                format!("`{name}` need the environment's zone, and the environment has no `zone:`"),
            )
            .hint("add `zone: example.com` (or `zone: {name: example.com, id: <zone id>}`) to the environment file"),
        );
    }
    for (path, text) in items {
        if text.unresolved {
            continue;
        }
        match rule(&text.value) {
            None => out.push((text.value.clone(), text.origin)),
            Some(problem) => ctx.push(name_problem(path, &text, problem)),
        }
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Strategy {
    Immediate,
    Gradual,
}

impl Strategy {
    fn as_str(self) -> &'static str {
        match self {
            Strategy::Immediate => "immediate",
            Strategy::Gradual => "gradual",
        }
    }
}

/// `rollout:`; absent is `immediate`. `None` when it has a problem.
fn decode_rollout(fields: &mut Fields<'_>, ctx: &mut Ctx<'_>) -> Option<Rollout> {
    let Some(node) = fields.node("rollout") else {
        return Some(Rollout::Immediate);
    };
    let path = fields.path("rollout");
    let anchor = node.origin;
    let mut rollout = Fields::open(ctx, node, &path, anchor, "rollout")?;
    let has_strategy = rollout.node("strategy").is_some();
    let strategy = rollout.one_of(
        ctx,
        "strategy",
        &[Strategy::Immediate, Strategy::Gradual],
        Strategy::as_str,
    );
    let steps = rollout.node("steps");
    let wait = rollout.node("wait");
    let health_url = rollout.node("health_url");
    rollout.finish(ctx);
    if !has_strategy {
        ctx.push(
            Problem::new(
                anchor,
                format!("{path}.strategy"),
                "missing field `strategy` for the rollout",
            )
            .hint("write `strategy: immediate`, or `strategy: gradual` with `steps` and `wait`"),
        );
        return None;
    }
    match strategy? {
        Strategy::Immediate => {
            let mut ok = true;
            for (name, node) in [("steps", steps), ("wait", wait), ("health_url", health_url)] {
                if let Some(node) = node {
                    ctx.push(
                        Problem::new(
                            node.origin,
                            format!("{path}.{name}"),
                            format!("`{name}` applies only to `strategy: gradual`"),
                        )
                        .hint("remove it, or write `strategy: gradual`"),
                    );
                    ok = false;
                }
            }
            ok.then_some(Rollout::Immediate)
        }
        Strategy::Gradual => {
            let missing = |ctx: &mut Ctx<'_>, name: &str, example: &str| {
                ctx.push(
                    Problem::new(
                        anchor,
                        format!("{path}.{name}"),
                        format!("missing field `{name}` for a gradual rollout"),
                    )
                    .hint(format!("add `{name}: {example}`")),
                );
            };
            let steps = match steps {
                Some(node) => decode_steps(ctx, node, &format!("{path}.steps")),
                None => {
                    missing(ctx, "steps", "[10, 50, 100]");
                    None
                }
            };
            let wait_seconds = match wait {
                Some(node) => decode_duration(ctx, node, &format!("{path}.wait")),
                None => {
                    missing(ctx, "wait", "5m");
                    None
                }
            };
            let health_url = match health_url {
                Some(node) => Some(decode_url(ctx, node, &format!("{path}.health_url"))?),
                None => None,
            };
            Some(Rollout::Gradual {
                steps: steps?,
                wait_seconds: wait_seconds?,
                health_url,
            })
        }
    }
}

/// Percentages: integers 1-100, strictly increasing, the last one 100.
fn decode_steps(ctx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<Vec<u8>> {
    let hint = "steps are increasing percentages of traffic ending at 100, e.g. `[10, 50, 100]`";
    let Value::Seq(items) = &node.value else {
        ctx.push(
            Problem::new(
                node.origin,
                path,
                format!(
                    "expected a list of percentages, found {}",
                    node.value.describe()
                ),
            )
            .hint(hint),
        );
        return None;
    };
    if items.is_empty() {
        ctx.push(Problem::new(node.origin, path, "`steps` is empty").hint(hint));
        return None;
    }
    let mut steps = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let item_path = format!("{path}[{index}]");
        let number = match &item.value {
            Value::Typed {
                kind: ScalarKind::Int,
                raw,
            } => raw.parse::<u64>().ok(),
            _ => None,
        };
        let Some(number) = number.filter(|n| (1..=100).contains(n)) else {
            ctx.push(
                Problem::new(
                    item.origin,
                    item_path,
                    format!(
                        "expected a percentage from 1 to 100, found {}",
                        item.value.describe()
                    ),
                )
                .hint(hint),
            );
            return None;
        };
        let number = number as u8;
        if let Some(previous) = steps.last()
            && number <= *previous
        {
            ctx.push(
                Problem::new(
                    item.origin,
                    item_path,
                    format!("step {number}% does not increase on the step before it ({previous}%)"),
                )
                .hint(hint),
            );
            return None;
        }
        steps.push(number);
    }
    if steps.last() != Some(&100) {
        let last = items.last().map(|item| item.origin).unwrap_or(node.origin);
        ctx.push(
            Problem::new(last, path, "the last step is not 100%").hint(
                "a rollout ends with the new version serving all traffic: end `steps` with 100",
            ),
        );
        return None;
    }
    Some(steps)
}

/// `30s`, `5m`, `1h`, `1h30m` -> seconds ([`crate::duration::parse_with_unit`];
/// a rollout waits whole seconds).
fn decode_duration(ctx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<u64> {
    let text = ctx.text(node, path)?;
    if text.unresolved {
        return None;
    }
    let problem = match crate::duration::parse_with_unit(&text.value) {
        Ok(duration) if duration.subsec_nanos() == 0 => return Some(duration.as_secs()),
        Ok(_) => Problem::new(
            text.origin,
            path,
            format!(
                "the wait {} is not a whole number of seconds",
                quote_short(&text.value)
            ),
        )
        .hint("a rollout waits whole seconds: write `30s`, `5m`, `1h` (or `1h30m`)"),
        Err(_) => Problem::new(
            text.origin,
            path,
            format!("invalid duration {}", quote_short(&text.value)),
        )
        .hint("write a number with a unit: `30s`, `5m`, `1h` (or `1h30m`)"),
    };
    ctx.push(problem);
    None
}

fn decode_url(ctx: &mut Ctx<'_>, node: &Node, path: &str) -> Option<String> {
    let text = ctx.text(node, path)?;
    if text.unresolved {
        return None;
    }
    let problem = match reqwest::Url::parse(&text.value) {
        Ok(url) if !matches!(url.scheme(), "http" | "https") => {
            format!(
                "the health URL's scheme is `{}`, not http or https",
                url.scheme()
            )
        }
        Ok(url) if url.host_str().is_none_or(str::is_empty) => {
            "the health URL has no host".to_string()
        }
        Ok(_) => return Some(text.value),
        Err(error) => format!("invalid health URL {}: {error}", quote_short(&text.value)),
    };
    ctx.push(
        Problem::new(text.origin, path, problem)
            .hint("write an absolute http(s) URL that answers 2xx when the new version is healthy, e.g. `https://api.example.com/health`"),
    );
    None
}

/// Service bindings must allow a deploy order: reports each cycle once, at
/// the binding that closes it.
pub(crate) fn report_cycles(
    services: &BTreeMap<String, Vec<(String, String, Origin)>>,
    ctx: &mut Ctx<'_>,
) {
    let mut reported: BTreeSet<Vec<String>> = BTreeSet::new();
    for start in services.keys() {
        // Depth-first search for a path back to `start`.
        let mut stack: Vec<(String, usize)> = vec![(start.clone(), 0)];
        let mut on_path: Vec<String> = vec![start.clone()];
        let mut visited: BTreeSet<String> = BTreeSet::new();
        while let Some((node, index)) = stack.last().cloned() {
            let edges = services.get(&node).map(Vec::as_slice).unwrap_or_default();
            let Some((target, field, origin)) = edges.get(index) else {
                stack.pop();
                on_path.pop();
                continue;
            };
            if let Some(top) = stack.last_mut() {
                top.1 += 1;
            }
            if target == start {
                let mut cycle = on_path.clone();
                // The same cycle found from another start: report it once.
                let mut key = cycle.clone();
                key.sort();
                if reported.insert(key) {
                    cycle.push(start.clone());
                    let chain: Vec<String> =
                        cycle.iter().map(|key| format!("workers.{key}")).collect();
                    ctx.push(
                        Problem::new(
                            *origin,
                            field.clone(),
                            format!("service bindings form a cycle: {}", chain.join(" -> ")),
                        )
                        .hint("a worker is deployed after the workers it binds to, so a cycle has no order: remove one of these service bindings"),
                    );
                }
                continue;
            }
            if visited.insert(target.clone()) && !on_path.contains(target) {
                stack.push((target.clone(), 0));
                on_path.push(target.clone());
            }
        }
    }
}

/// A route or custom domain claimed by two workers: reports every claim
/// after the first (in file order).
pub(crate) fn report_claimed_twice(
    claims: Vec<(Address, String, Origin)>,
    what: &str,
    field: &str,
    ctx: &mut Ctx<'_>,
) {
    let mut claims = claims;
    claims.sort_by_cached_key(|(_, _, origin)| {
        (
            ctx.sources.path(origin.file).to_path_buf(),
            origin.line,
            origin.column,
        )
    });
    let mut first: BTreeMap<String, (Address, Origin)> = BTreeMap::new();
    for (address, value, origin) in claims {
        match first.get(&value) {
            None => {
                first.insert(value, (address, origin));
            }
            Some((first_address, _)) if *first_address == address => {}
            Some((first_address, first_origin)) => {
                ctx.push(
                    Problem::new(
                        origin,
                        format!("{address}.{field}"),
                        format!("the {what} `{value}` is also declared by `{first_address}`"),
                    )
                    .hint(format!(
                        "a {what} sends requests to one worker: keep it in one of them"
                    ))
                    .related(*first_origin, format!("`{first_address}` declares it here")),
                );
            }
        }
    }
}

/// Merges an override into a worker: like [`merge`], except that
/// `bindings` and `secrets` merge by name, and a binding, a secret source
/// or a rollout whose kind changes is replaced rather than merged (so
/// `{d1: main}` over `{kv_namespace: users}` is a D1 binding, not both).
pub(crate) fn merge_worker(base: &mut Node, patch: &Node) {
    let (Value::Map(base_entries), Value::Map(patch_entries)) = (&mut base.value, &patch.value)
    else {
        *base = patch.clone();
        return;
    };
    for patch_entry in patch_entries {
        let position = base_entries
            .iter()
            .position(|entry| entry.key.name == patch_entry.key.name);
        match (position, &patch_entry.value.value) {
            (Some(index), Value::Null) => {
                base_entries.remove(index);
            }
            (None, Value::Null) => {}
            (None, _) => base_entries.push(patch_entry.clone()),
            (Some(index), _) => {
                let target = &mut base_entries[index].value;
                match patch_entry.key.name.as_str() {
                    "bindings" => merge_named(target, &patch_entry.value, &BINDING_KINDS),
                    "secrets" => merge_named(target, &patch_entry.value, &SECRET_SOURCES),
                    "rollout" => merge_tagged(target, &patch_entry.value, |node| {
                        field_text(node, "strategy").map(|strategy| vec![strategy])
                    }),
                    _ => merge(target, &patch_entry.value),
                }
            }
        }
    }
}

/// A mapping of named entries whose bodies are replaced when their kind
/// (one of `kinds` as a key) changes.
fn merge_named(base: &mut Node, patch: &Node, kinds: &'static [&'static str]) {
    let (Value::Map(base_entries), Value::Map(patch_entries)) = (&mut base.value, &patch.value)
    else {
        *base = patch.clone();
        return;
    };
    for patch_entry in patch_entries {
        let position = base_entries
            .iter()
            .position(|entry| entry.key.name == patch_entry.key.name);
        match (position, &patch_entry.value.value) {
            (Some(index), Value::Null) => {
                base_entries.remove(index);
            }
            (None, Value::Null) => {}
            (Some(index), _) => {
                merge_tagged(&mut base_entries[index].value, &patch_entry.value, |node| {
                    node.as_map().map(|entries| {
                        entries
                            .iter()
                            .map(|entry| entry.key.name.clone())
                            .filter(|key| kinds.contains(&key.as_str()))
                            .collect()
                    })
                })
            }
            (None, _) => base_entries.push(patch_entry.clone()),
        }
    }
}

/// Merges `patch` into `base` unless the patch names a kind (`tags`) that
/// `base` does not have, in which case it replaces `base`.
fn merge_tagged(base: &mut Node, patch: &Node, tags: impl Fn(&Node) -> Option<Vec<String>>) {
    let patch_tags = tags(patch).unwrap_or_default();
    let base_tags = tags(base).unwrap_or_default();
    let changes_kind = patch_tags.iter().any(|tag| !base_tags.contains(tag));
    if changes_kind {
        *base = patch.clone();
    } else {
        merge(base, patch);
    }
}

fn field_text(node: &Node, name: &str) -> Option<String> {
    node.as_map()?
        .iter()
        .find(|entry| entry.key.name == name)
        .and_then(|entry| match &entry.value.value {
            Value::Str(text) => Some(text.clone()),
            Value::Typed { raw, .. } => Some(raw.clone()),
            _ => None,
        })
}
