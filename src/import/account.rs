//! `flareops import --env E`: manifests from what the account holds (read
//! by [`crate::live::fetch_everything`]): KV namespaces, D1 databases, R2
//! buckets (with their location and storage class) and workers (their
//! serving version's modules as deployed, settings, bindings by logical
//! key, secret names as `from_env` references, crons, routes, custom
//! domains), and the records of the environment's zone. Names carrying the environment's name get `${env}` in its
//! place; resources whose names carry another environment's name are left
//! to that environment.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::{Import, carries, key_for, templated, upper_snake, yaml_file};
use crate::model::{LiveState, ResolvedBinding};

/// What the account import needs besides the live state.
pub struct Context<'a> {
    pub environment: &'a str,
    /// The project's other environments (their resources are skipped).
    pub others: &'a [String],
    /// The environment's zone, when it names one.
    pub zone: Option<&'a str>,
    /// Where each D1 database runs (uuid -> region, e.g. `WEUR`).
    pub d1_regions: &'a BTreeMap<String, String>,
}

/// Whose a name is: this environment's, another's, or shared.
fn other_environment<'a>(name: &str, context: &Context<'a>) -> Option<&'a str> {
    if carries(name, context.environment) {
        return None;
    }
    context
        .others
        .iter()
        .find(|other| carries(name, other))
        .map(String::as_str)
}

/// Skips (and lists) a resource whose name (its `field`: `name`, or a KV
/// namespace's `title`) carries another environment's
/// name; answers whether it did.
fn skip_other_environment(
    import: &mut Import,
    context: &Context<'_>,
    what: &str,
    field: &str,
    name: &str,
) -> bool {
    let Some(other) = other_environment(name, context) else {
        return false;
    };
    import.skip(
        format!("{what} `{name}`"),
        format!("its {field} names environment `{other}`: import it from there"),
    );
    true
}

/// The zone's records flareops can manage, by key: names relative to the
/// zone (with `${env}`), content as the zone holds it. Cloudflare's own
/// records (a custom domain's) and types flareops does not manage are
/// listed as skipped.
fn dns_records(live: &LiveState, context: &Context<'_>, import: &mut Import) -> Map<String, Value> {
    let env = context.environment;
    let mut records = Map::new();
    let Some(zone) = context.zone else {
        return records;
    };
    let mut taken: Vec<String> = Vec::new();
    for record in &live.dns_records {
        if record.managed {
            import.skip(
                format!("DNS record {} {}", record.record_type, record.name),
                "Cloudflare made it for a custom domain of a Worker or a Pages project (read-only): it comes and goes with that domain",
            );
            continue;
        }
        let Some(kind) = record.kind() else {
            import.skip(
                format!("DNS record {} {}", record.record_type, record.name),
                format!("flareops does not manage {} records", record.record_type),
            );
            continue;
        };
        if skip_other_environment(import, context, "DNS record", "name", &record.name) {
            continue;
        }
        let relative = if record.name == zone {
            "@".to_string()
        } else {
            record
                .name
                .strip_suffix(&format!(".{zone}"))
                .unwrap_or(&record.name)
                .to_string()
        };
        let base = format!(
            "{}-{}",
            relative.replace(['@', '*', '.'], "-"),
            kind.as_str()
        );
        let key = key_for(base.trim_start_matches('-'), env, &taken);
        taken.push(key.clone());
        let mut spec = Map::new();
        spec.insert("type".into(), json!(kind.as_str()));
        spec.insert("name".into(), json!(templated(&relative, env)));
        spec.insert("content".into(), json!(record.content));
        if record.proxied {
            spec.insert("proxied".into(), json!(true));
        } else if record.ttl != 1 {
            spec.insert("ttl".into(), json!(record.ttl.to_string()));
        }
        if let Some(priority) = record.priority.filter(|_| kind.has_priority()) {
            spec.insert("priority".into(), json!(priority));
        }
        if let Some(comment) = &record.comment {
            spec.insert("comment".into(), json!(comment));
        }
        if !record.tags.is_empty() {
            spec.insert("tags".into(), json!(record.tags));
        }
        records.insert(key, Value::Object(spec));
    }
    records
}

/// The manifests for `live` (fetched with every worker's modules).
pub fn render(live: &LiveState, context: &Context<'_>) -> Import {
    let env = context.environment;
    let mut import = Import::default();
    let mut storage = Map::new();
    let mut taken: Vec<String> = Vec::new();

    let mut kv_keys: BTreeMap<&str, String> = BTreeMap::new();
    let mut kv = Map::new();
    for namespace in &live.kv_namespaces {
        if skip_other_environment(
            &mut import,
            context,
            "KV namespace",
            "title",
            &namespace.title,
        ) {
            continue;
        }
        let key = key_for(&namespace.title, env, &taken);
        taken.push(key.clone());
        kv.insert(
            key.clone(),
            json!({"title": templated(&namespace.title, env)}),
        );
        kv_keys.insert(namespace.id.as_str(), key);
    }
    if !kv.is_empty() {
        storage.insert("kv_namespaces".into(), Value::Object(kv));
    }

    let mut d1_keys: BTreeMap<&str, String> = BTreeMap::new();
    let mut d1 = Map::new();
    taken.clear();
    for database in &live.d1_databases {
        if skip_other_environment(&mut import, context, "D1 database", "name", &database.name) {
            continue;
        }
        let key = key_for(&database.name, env, &taken);
        taken.push(key.clone());
        let mut spec = json!({"name": templated(&database.name, env)});
        // Where it runs, as a hint (a hint never forces a replacement).
        if let Some(hint) = context
            .d1_regions
            .get(&database.uuid)
            .and_then(|region| crate::model::LocationHint::parse(&region.to_ascii_lowercase()))
        {
            spec["location_hint"] = json!(hint.as_str());
        }
        if let Some(jurisdiction) = database.jurisdiction {
            spec["jurisdiction"] = json!(jurisdiction.as_str());
        }
        d1.insert(key.clone(), spec);
        d1_keys.insert(database.uuid.as_str(), key);
    }
    if !d1.is_empty() {
        storage.insert("d1_databases".into(), Value::Object(d1));
        import.notes.push(
            "D1 databases are imported without `migrations:`: the tables they hold stay as they are; add a migrations directory for the changes to come".into(),
        );
    }

    let mut r2_keys: BTreeMap<(String, Option<&str>), String> = BTreeMap::new();
    let mut r2 = Map::new();
    taken.clear();
    for bucket in &live.r2_buckets {
        if skip_other_environment(&mut import, context, "R2 bucket", "name", &bucket.name) {
            continue;
        }
        let key = key_for(&bucket.name, env, &taken);
        taken.push(key.clone());
        let mut spec = Map::new();
        spec.insert("name".into(), json!(templated(&bucket.name, env)));
        if let Some(location) = bucket.location {
            spec.insert("location_hint".into(), json!(location.as_str()));
        }
        match &bucket.storage_class {
            crate::model::LiveStorageClass::Known(class) => {
                spec.insert("storage_class".into(), json!(class.as_str()));
            }
            crate::model::LiveStorageClass::Unknown(class) => import.skip(
                format!("storage class `{class}` of R2 bucket `{}`", bucket.name),
                "flareops does not know this class: the bucket is imported without `storage_class`",
            ),
        }
        if let Some(jurisdiction) = bucket.jurisdiction {
            spec.insert("jurisdiction".into(), json!(jurisdiction.as_str()));
        }
        r2.insert(key.clone(), Value::Object(spec));
        r2_keys.insert(
            (bucket.name.clone(), bucket.jurisdiction.map(|j| j.as_str())),
            key,
        );
    }
    if !r2.is_empty() {
        storage.insert("r2_buckets".into(), Value::Object(r2));
    }

    let mut queue_keys: BTreeMap<&str, String> = BTreeMap::new();
    let mut queues = Map::new();
    taken.clear();
    for queue in &live.queues {
        if skip_other_environment(&mut import, context, "queue", "name", &queue.name) {
            continue;
        }
        let key = key_for(&queue.name, env, &taken);
        taken.push(key.clone());
        let mut spec = Map::new();
        spec.insert("name".into(), json!(templated(&queue.name, env)));
        if let Some(delay) = queue.delivery_delay {
            spec.insert("delivery_delay".into(), json!(format!("{delay}s")));
        }
        if let Some(retention) = queue.message_retention_period {
            spec.insert(
                "message_retention_period".into(),
                json!(format!("{retention}s")),
            );
        }
        queues.insert(key.clone(), Value::Object(spec));
        queue_keys.insert(queue.name.as_str(), key);
    }
    if !queues.is_empty() {
        storage.insert("queues".into(), Value::Object(queues));
    }

    // Workers: keys first, so service bindings can name them.
    let mut worker_keys: BTreeMap<&str, String> = BTreeMap::new();
    taken.clear();
    for worker in &live.workers {
        if skip_other_environment(&mut import, context, "worker", "name", &worker.name) {
            continue;
        }
        let key = key_for(&worker.name, env, &taken);
        taken.push(key.clone());
        worker_keys.insert(worker.name.as_str(), key);
    }
    let mut workers = Map::new();
    for worker in &live.workers {
        let Some(key) = worker_keys.get(worker.name.as_str()) else {
            continue;
        };
        let (Some(version), Some(content)) = (worker.current_version(), &worker.content) else {
            import.skip(
                format!("worker `{}`", worker.name),
                "it has no deployed version to download: deploy it once, or declare it by hand",
            );
            continue;
        };
        if worker.is_split() {
            import.notes.push(format!(
                "worker `{}`: traffic is split between versions; the one serving most ({}) was imported",
                worker.name, version.id
            ));
        }
        let dir = format!("workers/{key}");
        let mut modules = Vec::new();
        for module in &content.modules {
            import.file(format!("{dir}/{}", module.name), module.content.clone());
            if module.name != content.main_module {
                modules.push(glob::Pattern::escape(&format!("{dir}/{}", module.name)));
            }
        }
        let mut spec = Map::new();
        spec.insert("name".into(), json!(templated(&worker.name, env)));
        spec.insert(
            "main".into(),
            json!(format!("{dir}/{}", content.main_module)),
        );
        if !modules.is_empty() {
            spec.insert("modules".into(), json!(modules));
        }
        spec.insert(
            "compatibility_date".into(),
            json!(version.compatibility_date.clone().unwrap_or_else(|| {
                import.notes.push(format!(
                    "worker `{}`: its version has no compatibility date; 2025-01-15 was written",
                    worker.name
                ));
                "2025-01-15".into()
            })),
        );
        if !version.compatibility_flags.is_empty() {
            spec.insert(
                "compatibility_flags".into(),
                json!(version.compatibility_flags),
            );
        }
        let mut bindings = Map::new();
        for (name, binding) in &version.bindings {
            let target = match binding {
                ResolvedBinding::KvNamespace { namespace_id } => kv_keys
                    .get(namespace_id.as_str())
                    .map(|key| json!({"kv_namespace": key})),
                ResolvedBinding::D1 { database_id } => d1_keys
                    .get(database_id.as_str())
                    .map(|key| json!({"d1": key})),
                ResolvedBinding::R2Bucket {
                    bucket_name,
                    jurisdiction,
                } => r2_keys
                    .get(&(bucket_name.clone(), jurisdiction.map(|j| j.as_str())))
                    .map(|key| json!({"r2_bucket": key})),
                ResolvedBinding::Queue { queue_name } => queue_keys
                    .get(queue_name.as_str())
                    .map(|key| json!({"queue": key})),
                ResolvedBinding::Service { service } => worker_keys
                    .get(service.as_str())
                    .map(|key| json!({"service": key})),
                ResolvedBinding::DurableObject { class_name } => {
                    Some(json!({"durable_object": class_name}))
                }
                ResolvedBinding::PlainText { text } => Some(json!({"text": text})),
                ResolvedBinding::Json { json } => Some(json!({"json": json})),
            };
            match target {
                Some(target) => {
                    bindings.insert(name.clone(), target);
                }
                None => import.skip(
                    format!("binding `{name}` of worker `{}`", worker.name),
                    "its target was not imported (another environment's, or not in this account): declare it and bind it by key",
                ),
            }
        }
        if !bindings.is_empty() {
            spec.insert("bindings".into(), Value::Object(bindings));
        }
        if !worker.secrets.is_empty() {
            let secrets: Map<String, Value> = worker
                .secrets
                .iter()
                .map(|name| {
                    (
                        name.clone(),
                        json!({"from_env": upper_snake(&format!("{key}_{name}"))}),
                    )
                })
                .collect();
            import.notes.push(format!(
                "worker `{}`: its secrets are references ({}); their values are not readable: set those variables where flareops applies",
                worker.name,
                secrets
                    .values()
                    .filter_map(|v| v["from_env"].as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            spec.insert("secrets".into(), Value::Object(secrets));
        }
        if !worker.crons.is_empty() {
            spec.insert("crons".into(), json!(worker.crons));
        }
        let routes: Vec<String> = worker
            .routes
            .iter()
            .map(|r| templated(&r.pattern, env))
            .collect();
        if !routes.is_empty() {
            spec.insert("routes".into(), json!(routes));
        }
        let domains: Vec<String> = worker
            .custom_domains
            .iter()
            .map(|d| templated(&d.hostname, env))
            .collect();
        if !domains.is_empty() {
            spec.insert("custom_domains".into(), json!(domains));
        }
        workers.insert(key.clone(), Value::Object(spec));
    }
    if context.zone.is_none() && !workers.is_empty() {
        import.notes.push(
            "the environment names no `zone:`: routes were not read; add `zone: NAME` to the environment file and import again to include them".into(),
        );
    }

    let header = |what: &str| {
        format!(
            "{what} of environment `{env}`, imported from account {} by `flareops import`.",
            live.account_id
        )
    };
    if !storage.is_empty() {
        import.file(
            "infra/storage.yaml",
            yaml_file(&header("Storage"), &Value::Object(storage)),
        );
    }
    for project in &live.pages_projects {
        import.skip(
            format!("Pages project `{}`", project.name),
            "Cloudflare does not give a deployment's files back: declare it under `pages_projects:` with `dir:` naming the folder of your built site (flareops adopts it, and uploads only the files Pages lacks)",
        );
    }
    let records = dns_records(live, context, &mut import);
    if !records.is_empty() {
        import.file(
            "infra/dns.yaml",
            yaml_file(&header("DNS records"), &json!({ "dns_records": records })),
        );
    }
    if !workers.is_empty() {
        import.file(
            "infra/workers.yaml",
            yaml_file(&header("Workers"), &json!({ "workers": workers })),
        );
    }
    let mut environment = Map::new();
    environment.insert("account_id".into(), json!(live.account_id));
    if let Some(zone) = context.zone {
        environment.insert("zone".into(), json!(zone));
    }
    import.file(
        format!("environments/{env}.yaml"),
        yaml_file(
            &format!("Environment `{env}` (written by `flareops import`)."),
            &Value::Object(environment),
        ),
    );
    import
}
