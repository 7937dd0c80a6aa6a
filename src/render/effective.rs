//! What an environment really gets: the effective manifests after `vars`
//! and `overrides` (`flareops render --env E`), and what differs between
//! two environments (`flareops diff-env A B`). Secrets are references
//! (`{from_env: VAR}`), never values; modules are names with SHA-256.

use serde_json::{Map, Value, json};

use crate::model::DesiredState;

/// The effective manifests of one environment, as a JSON value shaped like
/// the manifests (sections of keyed resources), plus the environment's own
/// settings.
pub fn effective(desired: &DesiredState) -> Value {
    let mut out = Map::new();
    out.insert("environment".into(), json!(desired.environment));
    out.insert(
        "account".into(),
        match &desired.account {
            crate::model::AccountTarget::Local => json!("local"),
            other => serde_json::to_value(other)
                .ok()
                .and_then(|v| v.get("id").cloned())
                .unwrap_or(Value::Null),
        },
    );
    if let Some(zone) = &desired.zone {
        out.insert("zone".into(), json!(zone.name));
    }
    out.insert("ledger".into(), json!(desired.ledger_database));
    let whole = serde_json::to_value(desired).unwrap_or_default();
    for section in crate::model::ResourceKind::ALL.map(crate::model::ResourceKind::section) {
        let Some(entries) = whole.get(section).and_then(Value::as_object) else {
            continue;
        };
        if entries.is_empty() {
            continue;
        }
        let mut resources = Map::new();
        for (key, declared) in entries {
            let mut spec = declared.get("spec").cloned().unwrap_or_default();
            if declared.get("protect") == Some(&Value::Bool(true)) {
                spec["protect"] = json!(true);
            }
            if section == "workers" {
                tidy_worker(&mut spec);
            }
            // A site's files by count and digest: the folder says the rest.
            if section == "pages_projects"
                && let Some(site) = desired.pages_projects.get(key)
            {
                spec["files"] = json!({
                    "count": site.spec.files.len(),
                    "digest": site.spec.digest(),
                });
            }
            if section == "d1_databases"
                && let Some(migrations) = spec.get("migrations").and_then(Value::as_array)
            {
                let names: Vec<Value> = migrations
                    .iter()
                    .filter_map(|m| m.get("path").cloned())
                    .collect();
                spec["migrations"] = Value::Array(names);
            }
            drop_nulls(&mut spec);
            resources.insert(key.clone(), spec);
        }
        out.insert(section.into(), Value::Object(resources));
    }
    Value::Object(out)
}

/// A worker's secrets as their sources; modules as `name (sha256 …)`.
fn tidy_worker(spec: &mut Value) {
    if let Some(secrets) = spec.get_mut("secrets").and_then(Value::as_object_mut) {
        for secret in secrets.values_mut() {
            let source = secret.get("source").cloned().unwrap_or_default();
            *secret = match source {
                // A read-only run without the variable: still the reference.
                Value::Object(map) if map.contains_key("unavailable") => {
                    json!({"from_env": map["unavailable"]})
                }
                Value::String(s) if s == "local_default" => json!("local default"),
                other => other,
            };
        }
    }
    if let Some(modules) = spec.get_mut("modules").and_then(Value::as_array_mut) {
        for module in modules.iter_mut() {
            let name = module["name"].as_str().unwrap_or_default();
            let sha = module["sha256"].as_str().unwrap_or_default();
            *module = json!(format!("{name} (sha256 {})", &sha[..sha.len().min(12)]));
        }
    }
}

fn drop_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            for v in map.values_mut() {
                drop_nulls(v);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}

/// [`effective`] as YAML, with a header naming the environment.
pub fn effective_yaml(desired: &DesiredState) -> String {
    format!(
        "# The effective manifests of environment `{}` (after vars and overrides; secrets are references).\n{}",
        desired.environment,
        crate::import::to_yaml(&effective(desired))
    )
}

/// One difference between two environments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Difference {
    /// The same path holds different values.
    Changed { path: String, a: Value, b: Value },
    /// Only the first environment has it.
    OnlyInA { path: String, a: Value },
    /// Only the second environment has it.
    OnlyInB { path: String, b: Value },
}

/// What differs between environments `a` and `b`, comparing their
/// effective manifests with each one's name written back as `${env}` (so
/// `kk-users-staging` and `kk-users-production` are the same). The
/// environments' own settings (name, account) are left out.
pub fn differences(a: &DesiredState, b: &DesiredState) -> Vec<Difference> {
    let side = |desired: &DesiredState| {
        let mut value = templated(&effective(desired), &desired.environment);
        if let Some(map) = value.as_object_mut() {
            map.remove("environment");
            map.remove("account");
        }
        value
    };
    let mut out = Vec::new();
    diff("", &side(a), &side(b), &mut out);
    out
}

fn templated(value: &Value, environment: &str) -> Value {
    match value {
        Value::String(s) => Value::String(crate::import::templated(s, environment)),
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| templated(v, environment)).collect())
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), templated(v, environment)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn diff(path: &str, a: &Value, b: &Value, out: &mut Vec<Difference>) {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                let here = join(path, key);
                match (a.get(key), b.get(key)) {
                    (Some(x), Some(y)) => diff(&here, x, y, out),
                    (Some(x), None) => out.push(Difference::OnlyInA {
                        path: here,
                        a: x.clone(),
                    }),
                    (None, Some(y)) => out.push(Difference::OnlyInB {
                        path: here,
                        b: y.clone(),
                    }),
                    (None, None) => {}
                }
            }
        }
        (x, y) if x != y => out.push(Difference::Changed {
            path: path.to_string(),
            a: x.clone(),
            b: y.clone(),
        }),
        _ => {}
    }
}

/// The differences in words, one per line (a sentence when there is none).
pub fn differences_text(a: &str, b: &str, differences: &[Difference]) -> String {
    if differences.is_empty() {
        return format!(
            "`{a}` and `{b}` declare the same (names compared with the environment as `${{env}}`)\n"
        );
    }
    let show = |v: &Value| match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    };
    let mut out = format!(
        "What differs between `{a}` and `{b}` (names compared with the environment as `${{env}}`):\n"
    );
    for difference in differences {
        let line = match difference {
            Difference::Changed { path, a: x, b: y } => {
                format!("  ~ {path}: {a} {} | {b} {}", show(x), show(y))
            }
            Difference::OnlyInA { path, a: x } => {
                format!("  - {path}: only in {a} ({})", show(x))
            }
            Difference::OnlyInB { path, b: y } => {
                format!("  + {path}: only in {b} ({})", show(y))
            }
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}
