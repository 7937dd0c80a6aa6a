//! The resource schema: the sections of `infra/*.yaml`, the fields of each
//! kind of resource, and the checks on the values once overrides and
//! variables are applied (Cloudflare's naming rules, allowed values, two
//! resources resolving to the same Cloudflare name).
//!
//! Adding a field is one line in the kind's `decode_*` function (plus its
//! check); adding a kind is a `ResourceKind` variant, a `decode_*` function and
//! one arm in [`build`].

use std::collections::BTreeMap;

use crate::model::{
    Address, D1DatabaseSpec, Declared, DesiredState, Jurisdiction, KvNamespaceSpec, LocationHint,
    QueueSpec, R2BucketSpec, ResourceKind, StorageClass,
};

use super::decode::{Ctx, Fields, Text};
use super::dns;
use super::files::Project;
use super::migrations;
use super::pages;
use super::report::{Problem, Sink, did_you_mean, list};
use super::rules::{self, NameProblem};
use super::worker::{self, Inputs};
use super::yaml::{FileId, Node, Origin, Sources, Value, quote_short};

/// One resource as declared: where its key is written and its body (to which
/// the environment's override is merged before decoding).
#[derive(Debug, Clone)]
pub(crate) struct Declaration {
    pub key: Origin,
    pub body: Node,
}

/// Walks the parsed `infra/` files (in path order) and collects every
/// resource by address. Reports unknown sections, bad keys and an address
/// declared twice (at the later place, the first as related).
pub(crate) fn collect(files: &[(FileId, Node)], sink: &mut Sink) -> BTreeMap<Address, Declaration> {
    let mut declarations: BTreeMap<Address, Declaration> = BTreeMap::new();
    let sections: Vec<&str> = ResourceKind::ALL
        .iter()
        .map(|kind| kind.section())
        .collect();
    for (_, root) in files {
        let Some(entries) = root.as_map() else {
            continue; // reported when the file was read
        };
        for entry in entries {
            let section = entry.key.name.as_str();
            let Some(kind) = ResourceKind::from_section(section) else {
                let hint = match did_you_mean(section, sections.iter().copied()) {
                    Some(guess) => format!("did you mean `{guess}`? sections: {}", list(&sections)),
                    None => format!("sections: {}", list(&sections)),
                };
                sink.push(
                    Problem::new(
                        entry.key.origin,
                        section,
                        format!("unknown section `{section}`"),
                    )
                    .hint(hint),
                );
                continue;
            };
            let resources = match &entry.value.value {
                Value::Map(resources) => resources.as_slice(),
                Value::Null => &[],
                other => {
                    sink.push(
                        Problem::new(
                            entry.value.origin,
                            section,
                            format!(
                                "expected a mapping of keys to {}s, found {}",
                                kind.noun(),
                                other.describe()
                            ),
                        )
                        .hint(format!(
                            "write each {} under a key: `{section}:` then `  my_key:` then its fields",
                            kind.noun()
                        )),
                    );
                    continue;
                }
            };
            for resource in resources {
                let key = resource.key.name.as_str();
                let address = Address::new(kind, key);
                if let Some(problem) = rules::key(key, "key") {
                    sink.push(
                        Problem::new(resource.key.origin, address.to_string(), problem.message)
                            .hint(problem.hint),
                    );
                }
                if let Some(first) = declarations.get(&address) {
                    sink.push(
                        Problem::new(
                            resource.key.origin,
                            address.to_string(),
                            format!("`{address}` is declared twice"),
                        )
                        .hint("an address names one resource: rename one of the keys or remove one declaration")
                        .related(first.key, "first declared here"),
                    );
                    continue;
                }
                declarations.insert(
                    address,
                    Declaration {
                        key: resource.key.origin,
                        body: resource.value.clone(),
                    },
                );
            }
        }
    }
    declarations
}

/// The Cloudflare name a resource resolves to, for the collision check.
struct Named {
    address: Address,
    /// Names must be unique within a scope (an R2 jurisdiction).
    scope: String,
    name: String,
    origin: Origin,
    field: &'static str,
}

/// Decodes and checks every declaration (overrides already merged) into
/// `state`. `ctx.vars` must be set: strings are interpolated here.
pub(crate) fn build(
    declarations: &BTreeMap<Address, Declaration>,
    inputs: &Inputs<'_>,
    ctx: &mut Ctx<'_>,
    state: &mut DesiredState,
) {
    let mut names: Vec<Named> = Vec::new();
    let mut services: BTreeMap<String, Vec<(String, String, Origin)>> = BTreeMap::new();
    let mut routes: Vec<(Address, String, Origin)> = Vec::new();
    let mut custom_domains: Vec<(Address, String, Origin)> = Vec::new();
    let mut records: Vec<(String, dns::DecodedRecord)> = Vec::new();
    for (address, declaration) in declarations {
        let path = address.to_string();
        let Some(mut fields) = Fields::open(
            ctx,
            &declaration.body,
            &path,
            declaration.key,
            address.kind.noun(),
        ) else {
            continue;
        };
        let protect = fields.bool(ctx, "protect").unwrap_or(false);
        let key = address.key.clone();
        match address.kind {
            ResourceKind::KvNamespaces => {
                if let Some((spec, name)) = decode_kv_namespace(&mut fields, ctx) {
                    names.push(named(address, "", name, "title"));
                    state.kv_namespaces.insert(key, Declared { spec, protect });
                }
            }
            ResourceKind::D1Databases => {
                if let Some((spec, name)) = decode_d1_database(&mut fields, ctx, &inputs.project) {
                    names.push(named(address, "", name, "name"));
                    state.d1_databases.insert(key, Declared { spec, protect });
                }
            }
            ResourceKind::R2Buckets => {
                if let Some((spec, name)) = decode_r2_bucket(&mut fields, ctx) {
                    let scope = spec
                        .jurisdiction
                        .map(Jurisdiction::as_str)
                        .unwrap_or("default");
                    names.push(named(address, scope, name, "name"));
                    state.r2_buckets.insert(key, Declared { spec, protect });
                }
            }
            ResourceKind::Queues => {
                if let Some((spec, name)) = decode_queue(&mut fields, ctx) {
                    names.push(named(address, "", name, "name"));
                    state.queues.insert(key, Declared { spec, protect });
                }
            }
            ResourceKind::DnsRecords => {
                if let Some(record) = dns::decode(&mut fields, ctx, &inputs.zone, declaration.key) {
                    state.dns_records.insert(
                        key.clone(),
                        Declared {
                            spec: record.spec.clone(),
                            protect,
                        },
                    );
                    records.push((key, record));
                }
            }
            ResourceKind::PagesProjects => {
                if let Some(decoded) = pages::decode(&mut fields, ctx, inputs) {
                    names.push(named(address, "", decoded.name, "name"));
                    custom_domains.extend(
                        decoded
                            .domains
                            .into_iter()
                            .map(|(domain, origin)| (address.clone(), domain, origin)),
                    );
                    state.pages_projects.insert(
                        key,
                        Declared {
                            spec: decoded.spec,
                            protect,
                        },
                    );
                }
            }
            ResourceKind::Workers => {
                let decoded = worker::decode(&mut fields, ctx, declarations, inputs);
                if let Some(name) = decoded.name {
                    names.push(named(address, "", name, "name"));
                }
                services.insert(key.clone(), decoded.services);
                routes.extend(
                    decoded
                        .routes
                        .into_iter()
                        .map(|(route, origin)| (address.clone(), route, origin)),
                );
                custom_domains.extend(
                    decoded
                        .custom_domains
                        .into_iter()
                        .map(|(domain, origin)| (address.clone(), domain, origin)),
                );
                if let Some(spec) = decoded.spec {
                    state.workers.insert(key, Declared { spec, protect });
                }
            }
        }
        fields.finish(ctx);
    }
    report_collisions(names, ctx.sources, ctx.sink, &state.environment);
    worker::report_cycles(&services, ctx);
    worker::report_claimed_twice(routes, "route", "routes", ctx);
    dns::report_collisions(&records, &custom_domains, ctx);
    worker::report_claimed_twice(custom_domains, "custom domain", "custom_domains", ctx);
}

fn named(address: &Address, scope: &str, name: Text, field: &'static str) -> Named {
    Named {
        address: address.clone(),
        scope: scope.to_string(),
        name: name.value,
        origin: name.origin,
        field,
    }
}

type Decoded<T> = Option<(T, Text)>;

fn decode_kv_namespace(fields: &mut Fields<'_>, ctx: &mut Ctx<'_>) -> Decoded<KvNamespaceSpec> {
    let title = fields.required_string(ctx, "title");
    let title = checked(ctx, fields, "title", title?, rules::kv_title)?;
    Some((
        KvNamespaceSpec {
            title: title.value.clone(),
        },
        title,
    ))
}

fn decode_d1_database(
    fields: &mut Fields<'_>,
    ctx: &mut Ctx<'_>,
    project: &Project,
) -> Decoded<D1DatabaseSpec> {
    let name = fields.required_string(ctx, "name");
    let location_hint = fields.one_of(
        ctx,
        "location_hint",
        &LocationHint::ALL,
        LocationHint::as_str,
    );
    let jurisdiction = fields.one_of(
        ctx,
        "jurisdiction",
        &Jurisdiction::ALL,
        Jurisdiction::as_str,
    );
    let migrations = match fields.node("migrations") {
        None => Some(Vec::new()),
        Some(node) => {
            let field = fields.path("migrations");
            ctx.text(node, &field)
                .and_then(|text| migrations::load(ctx, &field, &text, project))
        }
    };
    let name = checked(ctx, fields, "name", name?, rules::d1_name)?;
    Some((
        D1DatabaseSpec {
            name: name.value.clone(),
            location_hint,
            jurisdiction,
            migrations: migrations?,
        },
        name,
    ))
}

fn decode_queue(fields: &mut Fields<'_>, ctx: &mut Ctx<'_>) -> Decoded<QueueSpec> {
    let name = fields.required_string(ctx, "name");
    // Cloudflare's bounds (wrangler's `queues create` checks the same).
    let delivery_delay = seconds(fields, ctx, "delivery_delay", 0, 86_400);
    let message_retention_period = seconds(fields, ctx, "message_retention_period", 60, 1_209_600);
    let name = checked(ctx, fields, "name", name?, rules::queue_name)?;
    Some((
        QueueSpec {
            name: name.value.clone(),
            delivery_delay: delivery_delay?,
            message_retention_period: message_retention_period?,
        },
        name,
    ))
}

/// An optional duration field in whole seconds within `min..=max`;
/// `Some(None)` when absent, `None` when invalid (reported).
fn seconds(
    fields: &mut Fields<'_>,
    ctx: &mut Ctx<'_>,
    name: &'static str,
    min: u64,
    max: u64,
) -> Option<Option<u64>> {
    let Some(text) = fields.string(ctx, name) else {
        return Some(None);
    };
    if text.unresolved {
        return None;
    }
    let bounds = format!(
        "from {} to {}",
        crate::duration::format(std::time::Duration::from_secs(min)),
        crate::duration::format(std::time::Duration::from_secs(max))
    );
    match crate::duration::parse(&text.value) {
        Ok(duration)
            if duration.subsec_nanos() == 0 && (min..=max).contains(&duration.as_secs()) =>
        {
            Some(Some(duration.as_secs()))
        }
        _ => {
            ctx.push(
                Problem::new(
                    text.origin,
                    fields.path(name),
                    format!(
                        "invalid {name} {}: a whole number of seconds {bounds}",
                        quote_short(&text.value)
                    ),
                )
                .hint("write a duration such as `30s`, `5m`, `96h`, or a number of seconds"),
            );
            None
        }
    }
}

fn decode_r2_bucket(fields: &mut Fields<'_>, ctx: &mut Ctx<'_>) -> Decoded<R2BucketSpec> {
    let name = fields.required_string(ctx, "name");
    let location_hint = fields.one_of(
        ctx,
        "location_hint",
        &LocationHint::ALL,
        LocationHint::as_str,
    );
    let storage_class = fields.one_of(
        ctx,
        "storage_class",
        &StorageClass::ALL,
        StorageClass::as_str,
    );
    let jurisdiction = fields.one_of(
        ctx,
        "jurisdiction",
        &Jurisdiction::ALL,
        Jurisdiction::as_str,
    );
    let name = checked(ctx, fields, "name", name?, rules::r2_name)?;
    Some((
        R2BucketSpec {
            name: name.value.clone(),
            location_hint,
            storage_class,
            jurisdiction,
        },
        name,
    ))
}

/// Applies a naming rule to an interpolated value and reports a breach where
/// the offending text is written (the variable's value when it came from
/// one). `None` when the value is unusable.
pub(crate) fn checked(
    ctx: &mut Ctx<'_>,
    fields: &Fields<'_>,
    name: &'static str,
    text: Text,
    rule: fn(&str) -> Option<NameProblem>,
) -> Option<Text> {
    if text.unresolved {
        return None;
    }
    let Some(problem) = rule(&text.value) else {
        return Some(text);
    };
    ctx.push(name_problem(fields.path(name), &text, problem));
    None
}

/// Turns a naming-rule breach into a problem located at the offending text.
pub(crate) fn name_problem(field: String, text: &Text, problem: NameProblem) -> Problem {
    let (at, var) = match problem.index {
        Some(index) => text.origin_at(index),
        None => (text.origin, None),
    };
    let message = match var {
        Some(var) if var == super::decode::ENV_VAR => {
            format!(
                "{} (from `${{env}}`, the environment's name)",
                problem.message
            )
        }
        Some(var) => format!("{} (from `${{{var}}}`)", problem.message),
        None => problem.message,
    };
    let mut out = Problem::new(at, field, message).hint(problem.hint);
    if var.is_some_and(|var| var != super::decode::ENV_VAR) {
        out = out.related(text.origin, "the value is written here");
    }
    out
}

/// Two resources of one kind resolving to the same Cloudflare name would be
/// the same resource: report each one after the first (in file order).
fn report_collisions(mut names: Vec<Named>, sources: &Sources, sink: &mut Sink, environment: &str) {
    let position = |named: &Named| {
        (
            sources.path(named.origin.file).to_path_buf(),
            named.origin.line,
            named.origin.column,
        )
    };
    names.sort_by_cached_key(position);
    let mut first_by_name: BTreeMap<(ResourceKind, &str, &str), &Named> = BTreeMap::new();
    for named in &names {
        let slot = (
            named.address.kind,
            named.scope.as_str(),
            named.name.as_str(),
        );
        match first_by_name.get(&slot) {
            None => {
                first_by_name.insert(slot, named);
            }
            Some(first) => {
                let noun = named.address.kind.noun();
                sink.push(
                    Problem::new(
                        named.origin,
                        format!("{}.{}", named.address, named.field),
                        format!(
                            "`{}` and `{}` both resolve to the {noun} {} {:?} in environment `{environment}`",
                            first.address, named.address, named.field, named.name
                        ),
                    )
                    .hint(format!("they would be the same {noun}: give one of them another {}", named.field))
                    .related(first.origin, format!("`{}` resolves to the same {} here", first.address, named.field)),
                );
            }
        }
    }
}
