//! The environment file `environments/<env>.yaml`: where the environment
//! lives (`account_id`, `account: local`, or neither), its variables, and
//! its overrides, which are deep-merged into the declared resources before
//! anything is decoded.

use std::collections::BTreeMap;

use crate::model::{AccountTarget, Address, ResourceKind, Zone};

use super::decode::{Ctx, ENV_VAR, ExpansionLimits, Fields, Vars, is_var_name, literal};
use super::infra::{Declaration, name_problem};
use super::report::{Problem, did_you_mean, list};
use super::rules;
use super::worker::{ZoneSetting, merge_worker};
use super::yaml::{Entry, Node, Origin, Value};

/// What the environment file says, decoded.
#[derive(Debug)]
pub(crate) struct Environment {
    pub account: AccountTarget,
    pub vars: Vars,
    pub zone: ZoneSetting,
    /// `ledger: {database: NAME}`: the D1 database the ledger lives in.
    pub ledger: Option<String>,
}

/// Decodes the environment file `node` (a mapping) and merges its overrides
/// into `declarations`. `ctx.vars` must be `None` (nothing at the top of the
/// environment file is interpolated; var values and override values are).
pub(crate) fn decode(
    node: &Node,
    name: &str,
    declarations: &mut BTreeMap<Address, Declaration>,
    infra_complete: bool,
    limits: ExpansionLimits,
    ctx: &mut Ctx<'_>,
) -> Environment {
    let mut vars = Vars::builtin(name, true, limits);
    let Some(mut fields) = Fields::open(ctx, node, "", node.origin, "environment") else {
        return Environment {
            account: AccountTarget::FromEnvironment,
            vars,
            zone: ZoneSetting::Unknown,
            ledger: None,
        };
    };
    let account = decode_account(&mut fields, ctx);
    let zone = match fields.node("zone") {
        Some(node) => decode_zone(node, ctx),
        None => ZoneSetting::Absent,
    };
    let ledger = fields
        .node("ledger")
        .and_then(|node| decode_ledger(node, ctx));
    if let Some(node) = fields.node("vars") {
        decode_vars(node, name, &mut vars, ctx);
    }
    if let Some(node) = fields.node("overrides") {
        apply_overrides(node, declarations, infra_complete, ctx);
    }
    fields.finish(ctx);
    Environment {
        account,
        vars,
        zone,
        ledger,
    }
}

/// `ledger: {database: NAME}`: a D1 database name.
fn decode_ledger(node: &Node, ctx: &mut Ctx<'_>) -> Option<String> {
    let mut fields = Fields::open(ctx, node, "ledger", node.origin, "ledger")?;
    let database = fields.required_string(ctx, "database");
    fields.finish(ctx);
    let database = database?;
    if let Some(problem) = rules::d1_name(&database.value) {
        ctx.push(name_problem(
            "ledger.database".to_string(),
            &database,
            problem,
        ));
        return None;
    }
    Some(database.value)
}

/// `zone: example.com` or `zone: {name: example.com, id: <32 hex>}`.
fn decode_zone(node: &Node, ctx: &mut Ctx<'_>) -> ZoneSetting {
    let (name, id) = match &node.value {
        Value::Str(_) | Value::Typed { .. } => (ctx.text(node, "zone"), None),
        _ => {
            let Some(mut fields) = Fields::open(ctx, node, "zone", node.origin, "zone") else {
                return ZoneSetting::Unknown;
            };
            let name = fields.required_string(ctx, "name");
            let id = fields.string(ctx, "id");
            fields.finish(ctx);
            let Some(name) = name else {
                return ZoneSetting::Unknown;
            };
            (Some(name), id)
        }
    };
    let Some(name) = name else {
        return ZoneSetting::Unknown;
    };
    let field = if id.is_some() || node.as_map().is_some() {
        "zone.name"
    } else {
        "zone"
    };
    let mut valid = true;
    if let Some(problem) = rules::zone_name(&name.value) {
        ctx.push(name_problem(field.to_string(), &name, problem));
        valid = false;
    }
    if let Some(id) = &id
        && let Some(problem) = rules::zone_id(&id.value)
    {
        ctx.push(name_problem("zone.id".to_string(), id, problem));
        valid = false;
    }
    if !valid {
        return ZoneSetting::Unknown;
    }
    ZoneSetting::Known(Zone {
        name: name.value,
        id: id.map(|id| id.value),
    })
}

fn decode_account(fields: &mut Fields<'_>, ctx: &mut Ctx<'_>) -> AccountTarget {
    let id_node = fields.node("account_id");
    let local_node = fields.node("account");
    if let (Some(id_node), Some(local_node)) = (id_node, local_node) {
        let (first, second, second_name) = if (id_node.origin.line, id_node.origin.column)
            < (local_node.origin.line, local_node.origin.column)
        {
            (id_node, local_node, "account")
        } else {
            (local_node, id_node, "account_id")
        };
        ctx.push(
            Problem::new(second.origin, second_name, "`account` and `account_id` are both set")
                .hint("keep `account_id: <id>` for a Cloudflare account or `account: local` for the local emulator, not both")
                .related(first.origin, "the other one is set here"),
        );
        return AccountTarget::FromEnvironment;
    }
    if let Some(node) = id_node {
        let text = ctx.text(node, "account_id");
        if let Some(text) = text {
            if let Some(problem) = rules::account_id(&text.value) {
                ctx.push(name_problem("account_id".to_string(), &text, problem));
                return AccountTarget::FromEnvironment;
            }
            return AccountTarget::Id(text.value);
        }
        return AccountTarget::FromEnvironment;
    }
    if let Some(node) = local_node
        && let Some(text) = ctx.text(node, "account")
    {
        if text.value == "local" {
            return AccountTarget::Local;
        }
        ctx.push(
            Problem::new(node.origin, "account", format!("invalid account {:?}: the only value is `local`", text.value))
                .hint("write `account: local` for the local emulator, or `account_id: <32 hex characters>` for a Cloudflare account"),
        );
    }
    AccountTarget::FromEnvironment
}

fn decode_vars(node: &Node, environment: &str, vars: &mut Vars, ctx: &mut Ctx<'_>) {
    let entries: &[Entry] = match &node.value {
        Value::Map(entries) => entries,
        other => {
            ctx.push(
                Problem::new(
                    node.origin,
                    "vars",
                    format!(
                        "expected a mapping of variable names to strings, found {}",
                        other.describe()
                    ),
                )
                .hint("write one `name: value` per line under `vars:`"),
            );
            // Uses of the variables meant here are not reported as undefined.
            vars.forget_undefined();
            return;
        }
    };
    // Var values may use `${env}` and nothing else.
    let builtin = vars.for_var_values(entries.iter().map(|entry| entry.key.name.as_str()));
    for entry in entries {
        let name = entry.key.name.as_str();
        let field = format!("vars.{name}");
        if name == ENV_VAR {
            ctx.push(
                Problem::new(entry.key.origin, field, "`env` is built in and cannot be redefined")
                    .hint(format!("`${{env}}` is always the environment's name (`{environment}`); pick another name for this variable")),
            );
            continue;
        }
        if !is_var_name(name) {
            ctx.push(
                Problem::new(
                    entry.key.origin,
                    field,
                    format!("invalid variable name `{name}`"),
                )
                .hint("variable names are letters, digits and `_`, not starting with a digit"),
            );
            continue;
        }
        let mut value_ctx = Ctx {
            sources: ctx.sources,
            sink: &mut *ctx.sink,
            vars: Some(&builtin),
        };
        if let Some(text) = value_ctx.text(&entry.value, &field) {
            vars.insert(name.to_string(), text);
        } else {
            // Reported; keep the name defined so its uses are not reported too.
            let mut text = literal("", entry.value.origin, ctx.sources);
            text.unresolved = true;
            vars.insert(name.to_string(), text);
        }
    }
}

/// Merges each override into the declaration it names. Reports keys that are
/// not addresses, addresses that are not declared and bodies that are not
/// mappings.
fn apply_overrides(
    node: &Node,
    declarations: &mut BTreeMap<Address, Declaration>,
    infra_complete: bool,
    ctx: &mut Ctx<'_>,
) {
    let entries: &[Entry] = match &node.value {
        Value::Map(entries) => entries,
        other => {
            ctx.push(
                Problem::new(
                    node.origin,
                    "overrides",
                    format!(
                        "expected a mapping of addresses to fields, found {}",
                        other.describe()
                    ),
                )
                .hint("write `overrides:` then `  r2_buckets.assets:` then the fields to change"),
            );
            return;
        }
    };
    let declared: Vec<String> = declarations.keys().map(Address::to_string).collect();
    for entry in entries {
        let key = entry.key.name.as_str();
        let field = format!("overrides.{key}");
        let Some(address) =
            Address::parse(key).filter(|address| declarations.contains_key(address))
        else {
            let is_address = Address::parse(key).is_some();
            if infra_complete || !is_address {
                ctx.push(unknown_address(key, field, entry.key.origin, &declared));
            }
            continue;
        };
        match &entry.value.value {
            Value::Map(_) => {}
            Value::Null => continue,
            other => {
                ctx.push(
                    Problem::new(
                        entry.value.origin,
                        field,
                        format!(
                            "expected a mapping of fields to change, found {}",
                            other.describe()
                        ),
                    )
                    .hint(format!(
                        "write the fields to change indented under `{key}:`"
                    )),
                );
                continue;
            }
        }
        if let Some(declaration) = declarations.get_mut(&address) {
            if address.kind == ResourceKind::Workers {
                merge_worker(&mut declaration.body, &entry.value);
            } else {
                merge(&mut declaration.body, &entry.value);
            }
        }
    }
}

fn unknown_address(key: &str, field: String, at: Origin, declared: &[String]) -> Problem {
    let guess = did_you_mean(key, declared.iter().map(String::as_str));
    if let Some(kind) = ResourceKind::from_section(key) {
        // `overrides: { r2_buckets: { assets: ... } }`: the nested form.
        return Problem::new(at, field, format!("`{key}` is a section, not an address")).hint(
            format!(
                "override keys are addresses: write `{}.<key>:` (e.g. `{}`)",
                kind.section(),
                declared
                    .iter()
                    .find(|a| a.starts_with(&format!("{key}.")))
                    .map(String::as_str)
                    .unwrap_or("r2_buckets.assets")
            ),
        );
    }
    let message = match Address::parse(key) {
        Some(address) => format!("override for `{address}`, which is not declared in infra/"),
        None => format!("`{key}` is not an address"),
    };
    let hint = match guess {
        Some(guess) => format!("did you mean `{guess}`?"),
        None if declared.is_empty() => "no resources are declared in infra/".to_string(),
        None => format!("declared addresses: {}", list(declared)),
    };
    Problem::new(at, field, message).hint(hint)
}

/// Deep merge of `patch` into `base`: mappings merge key by key, `null`
/// removes a key, anything else replaces the value (sequences included).
pub(crate) fn merge(base: &mut Node, patch: &Node) {
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
            (Some(index), _) => merge(&mut base_entries[index].value, &patch_entry.value),
            (None, _) => base_entries.push(patch_entry.clone()),
        }
    }
}
