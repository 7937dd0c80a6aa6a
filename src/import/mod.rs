//! Starting from what exists: manifests written from a live account
//! ([`account`], `flareops import --env`) or from wrangler configuration
//! ([`wrangler`], `flareops import --from-wrangler`). Both produce an
//! [`Import`]: files to write (relative to the project root), and what was
//! left out, with why and what to do. Writing them is the CLI's job (it
//! never overwrites without `--force`).

pub mod account;
pub mod wrangler;

use serde_json::Value;

/// What an import produced.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Import {
    /// Path relative to the project root -> content, in writing order.
    pub files: Vec<(String, Vec<u8>)>,
    /// Things not carried over: what, and what to do about it.
    pub skipped: Vec<Skipped>,
    /// Things the user should know (choices made, per-environment parts).
    pub notes: Vec<String>,
}

/// One thing an import could not carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// What (a field, a resource).
    pub what: String,
    /// Why, and what to do.
    pub why: String,
}

impl Import {
    fn skip(&mut self, what: impl Into<String>, why: impl Into<String>) {
        self.skipped.push(Skipped {
            what: what.into(),
            why: why.into(),
        });
    }

    fn file(&mut self, path: impl Into<String>, content: impl Into<Vec<u8>>) {
        self.files.push((path.into(), content.into()));
    }
}

/// `name` with each occurrence of the environment's name, as a whole part
/// between separators (`-`, `_`, `.`, `/`, the ends), replaced by `${env}`:
/// `klear-karma-api-staging` -> `klear-karma-api-${env}`. A `${` already in
/// the name is escaped (`$${`).
pub fn templated(name: &str, environment: &str) -> String {
    let escaped = name.replace("${", "$${");
    if environment.is_empty() {
        return escaped;
    }
    let is_separator = |c: char| !c.is_ascii_alphanumeric();
    let mut out = String::with_capacity(escaped.len());
    let mut rest = escaped.as_str();
    let mut previous_is_boundary = true;
    while !rest.is_empty() {
        if previous_is_boundary
            && let Some(after) = rest.strip_prefix(environment)
            && after.chars().next().is_none_or(is_separator)
        {
            out.push_str("${env}");
            rest = after;
            previous_is_boundary = false;
            continue;
        }
        let c = rest.chars().next().unwrap_or_default();
        out.push(c);
        previous_is_boundary = is_separator(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// Whether `name` carries `environment` as a whole part (see [`templated`]).
pub fn carries(name: &str, environment: &str) -> bool {
    templated(name, environment) != name.replace("${", "$${")
}

/// A logical key from a name: the environment's part removed, lowercase,
/// characters outside `[a-z0-9_-]` turned into `-`, at most 64; `taken`
/// keys get a numbered suffix.
pub fn key_for(name: &str, environment: &str, taken: &[String]) -> String {
    let without = templated(name, environment).replace("${env}", "");
    let mut key: String = without
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    // Separators left at the ends or doubled by removing the environment.
    while key.contains("--") {
        key = key.replace("--", "-");
    }
    let mut key = key.trim_matches(|c| c == '-' || c == '_').to_string();
    if key.is_empty() {
        key = "main".to_string();
    }
    key.truncate(60);
    let base = key.clone();
    let mut n = 2;
    while taken.contains(&key) {
        key = format!("{base}-{n}");
        n += 1;
    }
    key
}

/// YAML text of a JSON-like value, in block style, keys in their order.
/// Strings are double-quoted (a JSON string is a valid YAML one).
pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    emit(value, 0, &mut out);
    out
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::Null => Some("null".into()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(serde_json::to_string(s).unwrap_or_default()),
        Value::Array(items) if items.is_empty() => Some("[]".into()),
        Value::Object(map) if map.is_empty() => Some("{}".into()),
        // A small mapping of scalars reads best inline: `{kv_namespace: "users"}`.
        Value::Object(map)
            if map.len() <= 3
                && map
                    .values()
                    .all(|v| matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_))) =>
        {
            let inline: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}: {}", yaml_key(k), scalar(v).unwrap_or_default()))
                .collect();
            let inline = format!("{{{}}}", inline.join(", "));
            (inline.len() <= 80).then_some(inline)
        }
        Value::Array(items) if items.iter().all(|v| matches!(v, Value::String(_))) => {
            // Short lists of strings read best inline.
            let inline = serde_json::to_string(items).unwrap_or_default();
            (inline.len() <= 80).then(|| inline.replace("\",\"", "\", \""))
        }
        _ => None,
    }
}

fn yaml_key(key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && !matches!(key, "true" | "false" | "null" | "yes" | "no" | "on" | "off");
    if plain {
        key.to_string()
    } else {
        serde_json::to_string(key).unwrap_or_default()
    }
}

fn emit(value: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match value {
        Value::Object(map) => {
            for (key, item) in map {
                out.push_str(&pad);
                out.push_str(&yaml_key(key));
                out.push(':');
                match scalar(item) {
                    Some(text) => {
                        out.push(' ');
                        out.push_str(&text);
                        out.push('\n');
                    }
                    None => {
                        out.push('\n');
                        emit(item, indent + 2, out);
                    }
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                out.push_str(&pad);
                out.push_str("- ");
                match scalar(item) {
                    Some(text) => {
                        out.push_str(&text);
                        out.push('\n');
                    }
                    None => {
                        // The item's first line goes after the dash.
                        let mut inner = String::new();
                        emit(item, indent + 2, &mut inner);
                        out.push_str(inner.trim_start());
                    }
                }
            }
        }
        other => {
            out.push_str(&pad);
            out.push_str(&scalar(other).unwrap_or_default());
            out.push('\n');
        }
    }
}

/// A file's text: a comment header, then the YAML.
fn yaml_file(header: &str, value: &Value) -> Vec<u8> {
    let mut text = String::new();
    for line in header.lines() {
        text.push_str("# ");
        text.push_str(line);
        text.push('\n');
    }
    text.push('\n');
    text.push_str(&to_yaml(value));
    text.into_bytes()
}

/// `UPPER_SNAKE` of a name (for a secret's `from_env` variable).
fn upper_snake(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
