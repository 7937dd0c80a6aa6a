//! `flareops import --from-wrangler PATH`: a wrangler configuration
//! (`wrangler.toml`, `wrangler.json` or `wrangler.jsonc`; the top level and
//! every `[env.X]`) -> manifests.
//!
//! - Each `[env.X]` becomes the environment `X` (a configuration without
//!   environments becomes `production`). The worker is declared once in
//!   `infra/workers.yaml` with what wrangler inherits from the top level
//!   (name, `main` through a build, compatibility, crons, routes); what
//!   wrangler does *not* inherit across environments (vars and every binding)
//!   is written per environment, as overrides in `environments/X.yaml`, and
//!   the notes say so.
//! - Storage the bindings name is declared in `infra/storage.yaml`: D1 and R2
//!   by their names (the environment's part replaced by `${env}`), KV by a
//!   title made from the worker and the binding (wrangler configuration
//!   holds only a namespace's id).
//! - The code is built by wrangler itself (`wrangler deploy --dry-run
//!   --outdir`), through the worker's `build:`, so flareops uploads what
//!   `wrangler deploy` would.
//! - Every field that cannot be carried is listed with what to do.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::{Import, key_for, templated, upper_snake, yaml_file};

/// Why a configuration could not be read.
#[derive(Debug, thiserror::Error)]
pub enum WranglerError {
    #[error("{path}: invalid TOML: {message}")]
    Toml { path: String, message: String },
    #[error("{path}: invalid JSON/JSONC: {message}")]
    Json { path: String, message: String },
    #[error("{path}: {message}")]
    Shape { path: String, message: String },
}

/// Keys wrangler inherits from the top level into an environment.
const INHERITED: [&str; 8] = [
    "name",
    "main",
    "compatibility_date",
    "compatibility_flags",
    "triggers",
    "routes",
    "route",
    "build",
];

/// Keys flareops carries, per environment (wrangler does not inherit them).
const PER_ENVIRONMENT: [&str; 8] = [
    "vars",
    "queues",
    "kv_namespaces",
    "d1_databases",
    "r2_buckets",
    "durable_objects",
    "services",
    "secrets",
];

/// Keys that shape wrangler's bundle: the build runs wrangler, which reads
/// them from the configuration as before.
const READ_BY_THE_BUILD: [&str; 12] = [
    "define",
    "alias",
    "minify",
    "keep_names",
    "no_bundle",
    "rules",
    "find_additional_modules",
    "base_dir",
    "preserve_file_names",
    "tsconfig",
    "node_compat",
    "jsx_factory",
];

/// Keys read elsewhere or that need nothing in flareops.
const IGNORED: [(&str, &str); 6] = [
    ("env", ""),
    ("$schema", ""),
    (
        "account_id",
        "the account is the environment's `account_id` (or CLOUDFLARE_ACCOUNT_ID)",
    ),
    (
        "migrations",
        "Durable Object migrations: flareops writes them from the classes a worker binds",
    ),
    (
        "upload_source_maps",
        "flareops uploads a built worker's source maps",
    ),
    (
        "workers_dev",
        "the workers.dev subdomain is not managed by flareops: set it in the dashboard",
    ),
];

/// Parses the configuration at `path` (its text is `text`).
pub fn parse(path: &str, text: &str) -> Result<Value, WranglerError> {
    if path.ends_with(".toml") {
        let value: toml::Value = toml::from_str(text).map_err(|e| WranglerError::Toml {
            path: path.to_string(),
            message: e.to_string(),
        })?;
        serde_json::to_value(value).map_err(|e| WranglerError::Toml {
            path: path.to_string(),
            message: e.to_string(),
        })
    } else {
        let options = jsonc_parser::ParseOptions::default();
        let value: Value = jsonc_parser::parse_to_serde_value(text, &options).map_err(|e| {
            WranglerError::Json {
                path: path.to_string(),
                message: e.to_string(),
            }
        })?;
        if value.is_null() {
            return Err(WranglerError::Shape {
                path: path.to_string(),
                message: "the file is empty".into(),
            });
        }
        Ok(value)
    }
}

/// One environment's effective configuration, as wrangler resolves it.
struct Resolved {
    environment: String,
    /// The script name.
    name: String,
    config: Map<String, Value>,
}

/// Converts the parsed configuration at `path` (`dir`: its directory,
/// relative to the project root, `""` for the root).
pub fn convert(path: &str, dir: &str, config: &Value) -> Result<Import, WranglerError> {
    let shape = |message: &str| WranglerError::Shape {
        path: path.to_string(),
        message: message.to_string(),
    };
    let top = config
        .as_object()
        .ok_or_else(|| shape("the configuration is not a table/object"))?;
    let base_name = top
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| shape("`name` is missing: wrangler needs the worker's name"))?
        .to_string();
    let mut import = Import::default();

    // The environments and what each one resolves to.
    let envs = top.get("env").and_then(Value::as_object);
    let mut resolved = Vec::new();
    match envs {
        Some(envs) if !envs.is_empty() => {
            for (environment, own) in envs {
                let own = own
                    .as_object()
                    .ok_or_else(|| shape(&format!("`env.{environment}` is not a table")))?;
                let mut config = Map::new();
                for key in INHERITED {
                    if let Some(value) = own.get(key).or_else(|| top.get(key)) {
                        config.insert(key.to_string(), value.clone());
                    }
                }
                for (key, value) in own {
                    config.entry(key.clone()).or_insert_with(|| value.clone());
                }
                let name = own
                    .get("name")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("{base_name}-{environment}"));
                for key in PER_ENVIRONMENT {
                    if top.contains_key(key) && !own.contains_key(key) {
                        import.notes.push(format!(
                            "`{key}` at the top level is not inherited by `env.{environment}` (wrangler does not inherit it): environment `{environment}` gets none, as with wrangler"
                        ));
                    }
                }
                resolved.push(Resolved {
                    environment: environment.clone(),
                    name,
                    config,
                });
            }
        }
        _ => {
            import.notes.push(
                "the configuration has no `[env.X]`: it becomes the environment `production`"
                    .into(),
            );
            resolved.push(Resolved {
                environment: "production".into(),
                name: base_name.clone(),
                config: top.clone(),
            });
        }
    }

    // Fields nobody reads.
    let known = |key: &str| {
        INHERITED.contains(&key)
            || PER_ENVIRONMENT.contains(&key)
            || READ_BY_THE_BUILD.contains(&key)
            || IGNORED.iter().any(|(k, _)| *k == key)
    };
    for (key, _) in top.iter().filter(|(k, _)| !known(k)) {
        import.skip(format!("`{key}`"), unsupported_hint(key));
    }
    for (key, why) in IGNORED.iter().filter(|(_, why)| !why.is_empty()) {
        if top.contains_key(*key) {
            import.skip(format!("`{key}`"), *why);
        }
    }
    for r in &resolved {
        if let Some(own) = envs
            .and_then(|e| e.get(&r.environment))
            .and_then(Value::as_object)
        {
            for (key, _) in own.iter().filter(|(k, _)| !known(k)) {
                import.skip(
                    format!("`env.{}.{key}`", r.environment),
                    unsupported_hint(key),
                );
            }
        }
    }

    let worker_key = key_for(&base_name, "", &[]);
    let first = &resolved[0];
    let name_template = templated(&first.name, &first.environment);

    // The worker: what every environment shares.
    let mut worker = Map::new();
    worker.insert("name".into(), json!(name_template));
    let main = first
        .config
        .get("main")
        .and_then(Value::as_str)
        .ok_or_else(|| shape("`main` is missing: flareops needs the worker's entry point"))?;
    let project = |relative: &str| {
        if dir.is_empty() {
            relative.trim_start_matches("./").to_string()
        } else {
            format!("{dir}/{}", relative.trim_start_matches("./"))
        }
    };
    let main_dir = main
        .trim_start_matches("./")
        .rsplit_once('/')
        .map(|(d, _)| d.to_string());
    let stem = main
        .rsplit('/')
        .next()
        .unwrap_or(main)
        .rsplit_once('.')
        .map(|(s, _)| s)
        .unwrap_or(main);
    let mut inputs = vec![match &main_dir {
        Some(d) => format!("{d}/**"),
        None => main.trim_start_matches("./").to_string(),
    }];
    inputs.push(path.rsplit('/').next().unwrap_or(path).to_string());
    if let Some(custom) = top.get("build").and_then(|b| b.get("command")) {
        import.skip(
            "`build.command`",
            format!(
                "wrangler runs {custom} before bundling; flareops runs `wrangler deploy --dry-run`, which runs it too: check the build's `inputs` cover what it reads"
            ),
        );
    }
    worker.insert(
        "build".into(),
        json!({
            "command": "npx wrangler deploy --dry-run --outdir dist",
            "dir": if dir.is_empty() { ".".to_string() } else { dir.to_string() },
            "inputs": inputs,
            "output": "dist",
        }),
    );
    worker.insert("main".into(), json!(project(&format!("dist/{stem}.js"))));
    if let Some(date) = first.config.get("compatibility_date") {
        worker.insert("compatibility_date".into(), date.clone());
    } else {
        import.skip(
            "`compatibility_date`",
            "missing: flareops requires one; `compatibility_date: \"2025-01-15\"` was written, set the date your worker was tested with",
        );
        worker.insert("compatibility_date".into(), json!("2025-01-15"));
    }
    if let Some(flags) = first.config.get("compatibility_flags") {
        worker.insert("compatibility_flags".into(), flags.clone());
    }

    // Per environment: triggers, routes (inherited, but may differ) and
    // every binding (not inherited).
    let mut storage: BTreeMap<&str, Map<String, Value>> = BTreeMap::new();
    let mut environment_files = Vec::new();
    let mut zone_of: BTreeMap<String, String> = BTreeMap::new();
    let mut per_env_workers: Vec<(String, Map<String, Value>)> = Vec::new();
    for r in &resolved {
        let env = r.environment.as_str();
        let mut own = Map::new();
        let name = templated(&r.name, env);
        if name != name_template {
            own.insert("name".into(), json!(name));
        }
        let crons: Vec<Value> = r
            .config
            .get("triggers")
            .and_then(|t| t.get("crons"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        own.insert("crons".into(), Value::Array(crons));
        let (routes, domains) = routes_of(&r.config, env, &mut zone_of, &mut import);
        own.insert("routes".into(), json!(routes));
        own.insert("custom_domains".into(), json!(domains));
        let mut bindings = Map::new();
        if let Some(vars) = r.config.get("vars").and_then(Value::as_object) {
            for (binding, value) in vars {
                let target = match value {
                    Value::String(text) => json!({"text": text}),
                    other => json!({"json": other}),
                };
                bindings.insert(binding.clone(), target);
            }
        }
        for kv in list(&r.config, "kv_namespaces") {
            let Some(binding) = kv.get("binding").and_then(Value::as_str) else {
                continue;
            };
            let stem = binding.to_ascii_lowercase();
            let stem = stem.strip_suffix("_kv").unwrap_or(&stem);
            let key = key_for(stem, "", &[]);
            storage.entry("kv_namespaces").or_default().insert(
                key.clone(),
                json!({"title": format!("{}-{}", name_template, key.replace('_', "-"))}),
            );
            bindings.insert(binding.into(), json!({"kv_namespace": key}));
        }
        for db in list(&r.config, "d1_databases") {
            let (Some(binding), Some(database)) = (
                db.get("binding").and_then(Value::as_str),
                db.get("database_name").and_then(Value::as_str),
            ) else {
                continue;
            };
            let key = key_for(database, env, &[]);
            let mut spec = json!({"name": templated(database, env)});
            if let Some(migrations) = db.get("migrations_dir").and_then(Value::as_str) {
                spec["migrations"] = json!(project(migrations));
            }
            storage
                .entry("d1_databases")
                .or_default()
                .insert(key.clone(), spec);
            bindings.insert(binding.into(), json!({"d1": key}));
        }
        for bucket in list(&r.config, "r2_buckets") {
            let (Some(binding), Some(name)) = (
                bucket.get("binding").and_then(Value::as_str),
                bucket.get("bucket_name").and_then(Value::as_str),
            ) else {
                continue;
            };
            let key = key_for(name, env, &[]);
            let mut spec = json!({"name": templated(name, env)});
            if let Some(j) = bucket.get("jurisdiction") {
                spec["jurisdiction"] = j.clone();
            }
            storage
                .entry("r2_buckets")
                .or_default()
                .insert(key.clone(), spec);
            bindings.insert(binding.into(), json!({"r2_bucket": key}));
        }
        if let Some(objects) = r
            .config
            .get("durable_objects")
            .and_then(|d| d.get("bindings"))
            .and_then(Value::as_array)
        {
            for object in objects {
                let (Some(binding), Some(class)) = (
                    object.get("name").and_then(Value::as_str),
                    object.get("class_name").and_then(Value::as_str),
                ) else {
                    continue;
                };
                if let Some(script) = object.get("script_name").and_then(Value::as_str) {
                    import.skip(
                        format!("`env.{env}.durable_objects` binding {binding}"),
                        format!("its class lives in another worker (`{script}`): declare that worker in flareops and bind the class there"),
                    );
                    continue;
                }
                bindings.insert(binding.into(), json!({"durable_object": class}));
            }
        }
        for service in list(&r.config, "services") {
            let (Some(binding), Some(target)) = (
                service.get("binding").and_then(Value::as_str),
                service.get("service").and_then(Value::as_str),
            ) else {
                continue;
            };
            if service.get("entrypoint").is_some() {
                import.skip(
                    format!("`env.{env}.services` binding {binding}"),
                    "named entrypoints are not carried: bind the worker's default export, or keep this binding in wrangler",
                );
                continue;
            }
            // The target worker is declared by its own configuration: its
            // key is made from its name the same way.
            let target_key = key_for(target, env, &[]);
            bindings.insert(binding.into(), json!({"service": target_key}));
            if target_key != worker_key {
                import.notes.push(format!(
                    "environment `{env}`: binding {binding} calls worker `{target}`: import its wrangler configuration too (`flareops import --from-wrangler PATH`), which declares it as `workers.{target_key}`; until then the manifests do not load"
                ));
            }
        }
        let queue_key = |storage: &mut BTreeMap<&str, Map<String, Value>>, queue: &str| {
            let key = key_for(queue, env, &[]);
            storage
                .entry("queues")
                .or_default()
                .insert(key.clone(), json!({"name": templated(queue, env)}));
            key
        };
        let queues = r.config.get("queues");
        for producer in queues
            .and_then(|q| q.get("producers"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let (Some(binding), Some(queue)) = (
                producer.get("binding").and_then(Value::as_str),
                producer.get("queue").and_then(Value::as_str),
            ) else {
                continue;
            };
            let key = queue_key(&mut storage, queue);
            bindings.insert(binding.into(), json!({"queue": key}));
        }
        let mut consumers = Map::new();
        for consumer in queues
            .and_then(|q| q.get("consumers"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(queue) = consumer.get("queue").and_then(Value::as_str) else {
                continue;
            };
            let key = queue_key(&mut storage, queue);
            let mut spec = Map::new();
            for (from, to) in [
                ("max_batch_size", "batch_size"),
                ("max_retries", "max_retries"),
                ("max_concurrency", "max_concurrency"),
            ] {
                if let Some(n) = consumer.get(from).and_then(Value::as_u64) {
                    spec.insert(to.into(), json!(n));
                }
            }
            if let Some(seconds) = consumer.get("max_batch_timeout").and_then(Value::as_f64) {
                spec.insert(
                    "max_wait_time".into(),
                    json!(format!("{}ms", (seconds * 1000.0).round() as u64)),
                );
            }
            if let Some(seconds) = consumer.get("retry_delay").and_then(Value::as_u64) {
                spec.insert("retry_delay".into(), json!(format!("{seconds}s")));
            }
            if let Some(dlq) = consumer.get("dead_letter_queue").and_then(Value::as_str) {
                let dlq_key = queue_key(&mut storage, dlq);
                spec.insert("dead_letter_queue".into(), json!(dlq_key));
            }
            consumers.insert(key, Value::Object(spec));
        }
        let mut secrets = Map::new();
        if let Some(required) = r
            .config
            .get("secrets")
            .and_then(|s| s.get("required"))
            .and_then(Value::as_array)
        {
            for secret in required.iter().filter_map(Value::as_str) {
                secrets.insert(
                    secret.into(),
                    json!({"from_env": upper_snake(&format!("{worker_key}_{secret}"))}),
                );
            }
        }
        if !bindings.is_empty() {
            own.insert("bindings".into(), Value::Object(bindings));
        }
        if !secrets.is_empty() {
            own.insert("secrets".into(), Value::Object(secrets));
        }
        if !consumers.is_empty() {
            own.insert("consumers".into(), Value::Object(consumers));
        }
        per_env_workers.push((env.to_string(), own));
    }

    // What every environment has the same goes in infra; the rest is
    // overridden per environment.
    for field in ["crons", "routes", "custom_domains"] {
        let values: Vec<Option<&Value>> =
            per_env_workers.iter().map(|(_, w)| w.get(field)).collect();
        if values.windows(2).all(|w| w[0] == w[1])
            && let Some(Some(value)) = values.first()
        {
            if value.as_array().is_some_and(|a| !a.is_empty()) {
                worker.insert(field.into(), (*value).clone());
            }
            for (_, own) in &mut per_env_workers {
                own.remove(field);
            }
        }
    }
    for (env, own) in &mut per_env_workers {
        // Empty lists add nothing to an override.
        own.retain(|_, v| !v.as_array().is_some_and(Vec::is_empty));
        if own.contains_key("bindings")
            || own.contains_key("secrets")
            || own.contains_key("consumers")
        {
            import.notes.push(format!(
                "environment `{env}`: its bindings and secrets are written in environments/{env}.yaml (wrangler does not inherit them across environments)"
            ));
        }
    }

    // Storage is declared for every environment; say which ones bind it.
    for (kind, resources) in &storage {
        for key in resources.keys() {
            let target = match *kind {
                "kv_namespaces" => json!({"kv_namespace": key}),
                "d1_databases" => json!({"d1": key}),
                "queues" => json!({"queue": key}),
                _ => json!({"r2_bucket": key}),
            };
            let unbound: Vec<&str> = per_env_workers
                .iter()
                .filter(|(_, own)| {
                    let bound = own
                        .get("bindings")
                        .and_then(Value::as_object)
                        .is_some_and(|b| b.values().any(|v| *v == target));
                    // A queue is also used by consuming it, or as a dead-letter queue.
                    let consumed = *kind == "queues"
                        && own
                            .get("consumers")
                            .and_then(Value::as_object)
                            .is_some_and(|c| {
                                c.contains_key(key)
                                    || c.values().any(|v| v["dead_letter_queue"] == json!(key))
                            });
                    !bound && !consumed
                })
                .map(|(env, _)| env.as_str())
                .collect();
            if !unbound.is_empty() {
                import.notes.push(format!(
                    "{kind}.{key} is declared for every environment (flareops creates it in each), but only bound in some: not in {}",
                    unbound.join(", ")
                ));
            }
        }
    }

    let mut infra = Map::new();
    infra.insert(worker_key.clone(), Value::Object(worker));
    if !storage.is_empty() {
        let storage_value: Map<String, Value> = storage
            .into_iter()
            .map(|(k, v)| (k.to_string(), Value::Object(v)))
            .collect();
        import.file(
            "infra/storage.yaml",
            yaml_file(
                &format!("Storage the bindings of {path} name (imported from wrangler)."),
                &Value::Object(storage_value),
            ),
        );
    }
    import.file(
        "infra/workers.yaml",
        yaml_file(
            &format!(
                "The worker of {path} (imported from wrangler): built by wrangler's own bundler."
            ),
            &json!({"workers": infra}),
        ),
    );
    for (env, own) in per_env_workers {
        let mut file = Map::new();
        if let Some(zone) = zone_of.get(&env) {
            file.insert("zone".into(), json!(zone));
        }
        if !own.is_empty() {
            file.insert(
                "overrides".into(),
                json!({ format!("workers.{worker_key}"): own }),
            );
        }
        let header = format!(
            "Environment `{env}` (from {path}).\nThe account: set `account_id: <32 hex>` here, or CLOUDFLARE_ACCOUNT_ID."
        );
        let value = if file.is_empty() {
            Value::Object(Map::new())
        } else {
            Value::Object(file)
        };
        environment_files.push((
            format!("environments/{env}.yaml"),
            yaml_file(&header, &value),
        ));
    }
    for (path, content) in environment_files {
        import.file(path, content);
    }
    Ok(import)
}

/// The array at `key`, or nothing.
fn list<'a>(config: &'a Map<String, Value>, key: &str) -> Vec<&'a Map<String, Value>> {
    config
        .get(key)
        .and_then(Value::as_array)
        .map(|items| items.iter().filter_map(Value::as_object).collect())
        .unwrap_or_default()
}

/// `route`/`routes` -> (route patterns, custom domains), templated; notes
/// the zone of each environment.
fn routes_of(
    config: &Map<String, Value>,
    env: &str,
    zones: &mut BTreeMap<String, String>,
    import: &mut Import,
) -> (Vec<String>, Vec<String>) {
    let mut entries: Vec<&Value> = Vec::new();
    if let Some(route) = config.get("route") {
        entries.push(route);
    }
    if let Some(routes) = config.get("routes").and_then(Value::as_array) {
        entries.extend(routes);
    }
    let (mut routes, mut domains) = (Vec::new(), Vec::new());
    for entry in entries {
        let (pattern, zone, custom) = match entry {
            Value::String(pattern) => (pattern.as_str(), None, false),
            Value::Object(o) => (
                o.get("pattern").and_then(Value::as_str).unwrap_or_default(),
                o.get("zone_name").and_then(Value::as_str),
                o.get("custom_domain").and_then(Value::as_bool) == Some(true),
            ),
            _ => continue,
        };
        if pattern.is_empty() {
            continue;
        }
        match zone {
            Some(zone) => {
                zones
                    .entry(env.to_string())
                    .or_insert_with(|| zone.to_string());
            }
            None if !zones.contains_key(env) => {
                // The zone is the registrable part of the host, when the
                // route does not name it.
                let host = pattern
                    .split('/')
                    .next()
                    .unwrap_or_default()
                    .trim_start_matches("*.");
                let parts: Vec<&str> = host.split('.').collect();
                if parts.len() >= 2 {
                    let zone = parts[parts.len() - 2..].join(".");
                    import.notes.push(format!(
                        "environment `{env}`: the zone `{zone}` is taken from the route `{pattern}`; check it"
                    ));
                    zones.insert(env.to_string(), zone);
                }
            }
            None => {}
        }
        let templated = templated(pattern, env);
        if custom {
            domains.push(templated);
        } else {
            routes.push(templated);
        }
    }
    (routes, domains)
}

/// What to do about a field flareops does not carry.
fn unsupported_hint(key: &str) -> String {
    match key {
        "queues" => "Queues are not a kind flareops manages yet: keep them in wrangler".into(),
        "analytics_engine_datasets"
        | "ai"
        | "vectorize"
        | "hyperdrive"
        | "browser"
        | "send_email"
        | "mtls_certificates"
        | "dispatch_namespaces"
        | "workflows"
        | "pipelines"
        | "images"
        | "version_metadata"
        | "unsafe" => {
            format!(
                "`{key}` bindings are not a kind flareops manages: add them when it does, or keep this worker in wrangler"
            )
        }
        "observability" | "logpush" | "tail_consumers" | "limits" | "placement" | "usage_model" => {
            format!(
                "`{key}` is a worker setting flareops does not manage yet: set it in the dashboard"
            )
        }
        "assets" | "site" => {
            "static assets are not uploaded by flareops: serve them from R2 or Pages".into()
        }
        _ => format!("`{key}` is not carried: check whether the worker needs it"),
    }
}
