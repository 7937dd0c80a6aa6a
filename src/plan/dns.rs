//! Planning DNS records, and the warnings that come from reading a zone's
//! records beside the workers' routes. Pure, like the rest of `plan`.

use super::{Change, ChangeKind, Conflict, DnsStep, Field, FieldDiff, Note, Steps, Value};
use crate::model::{
    Address, DesiredState, DnsRecordSpec, LiveDnsRecord, LiveIndex, LiveResource, LiveState,
    ResourceKind, canonical_content,
};

fn text(value: impl Into<String>) -> Value {
    Value::Text(value.into())
}

fn proxied(value: bool) -> Value {
    text(if value { "proxied" } else { "DNS only" })
}

fn ttl(seconds: u32) -> Value {
    if seconds == 1 {
        text("auto")
    } else {
        Value::Seconds(u64::from(seconds))
    }
}

/// The fields a create sets, in the order a reader expects.
fn created_fields(spec: &DnsRecordSpec) -> Vec<FieldDiff> {
    let mut fields = vec![
        FieldDiff::added(Field::RecordType, text(spec.record_type.as_str())),
        FieldDiff::added(Field::Name, text(&spec.name)),
        FieldDiff::added(Field::Content, text(&spec.content)),
        FieldDiff::added(Field::Proxied, proxied(spec.proxied)),
    ];
    if spec.ttl != 1 {
        fields.push(FieldDiff::added(Field::Ttl, ttl(spec.ttl)));
    }
    if let Some(priority) = spec.priority {
        fields.push(FieldDiff::added(
            Field::Priority,
            text(priority.to_string()),
        ));
    }
    if let Some(comment) = &spec.comment {
        fields.push(FieldDiff::added(Field::Comment, text(comment)));
    }
    if !spec.tags.is_empty() {
        fields.push(FieldDiff::added(
            Field::Tags,
            Value::List(spec.tags.clone()),
        ));
    }
    fields
}

/// What differs between the record and its declaration.
fn changed_fields(current: &LiveDnsRecord, spec: &DnsRecordSpec) -> Vec<FieldDiff> {
    let mut fields = Vec::new();
    let mut differ = |field: Field, before: Option<Value>, after: Option<Value>| {
        if before != after {
            fields.push(FieldDiff::changed(field, before, after));
        }
    };
    differ(
        Field::RecordType,
        Some(text(&current.record_type)),
        Some(text(spec.record_type.as_str())),
    );
    differ(
        Field::Name,
        Some(text(&current.name)),
        Some(text(&spec.name)),
    );
    let content = canonical_content(spec.record_type, &current.content)
        .unwrap_or_else(|| current.content.clone());
    differ(
        Field::Content,
        Some(text(content)),
        Some(text(&spec.content)),
    );
    differ(
        Field::Proxied,
        Some(proxied(current.proxied)),
        Some(proxied(spec.proxied)),
    );
    // A proxied record's TTL is always automatic.
    if !spec.proxied {
        differ(Field::Ttl, Some(ttl(current.ttl)), Some(ttl(spec.ttl)));
    }
    differ(
        Field::Priority,
        current.priority.map(|p| text(p.to_string())),
        spec.priority.map(|p| text(p.to_string())),
    );
    differ(
        Field::Comment,
        current.comment.clone().map(text),
        spec.comment.clone().map(text),
    );
    let list = |tags: &[String]| (!tags.is_empty()).then(|| Value::List(tags.to_vec()));
    differ(Field::Tags, list(&current.tags), list(&spec.tags));
    fields
}

/// A declared record: created; overwritten in place (it keeps its id)
/// when anything declared differs. A record on a hostname that a Worker
/// custom domain holds is a conflict: Cloudflare owns that record.
pub(super) fn plan_record(
    address: &Address,
    desired: &DesiredState,
    live: &LiveIndex,
) -> Option<Change> {
    let declared = desired.dns_records.get(&address.key)?;
    let spec = &declared.spec;
    let zone_missing = desired.zone.is_some() && live.live().zone_id.is_none();
    let held = live.held_by_cloudflare(&spec.name);
    let mut change = match live.resolve(desired, address) {
        Some(LiveResource::DnsRecord(current)) => {
            let fields = changed_fields(current, spec);
            if fields.is_empty() {
                return None;
            }
            super::storage::change(
                address,
                ChangeKind::Update,
                false,
                declared.protect,
                fields,
                Steps::DnsRecord(vec![DnsStep::Update {
                    id: current.id.clone(),
                    record: spec.clone(),
                }]),
            )
        }
        _ => super::storage::change(
            address,
            ChangeKind::Create,
            false,
            declared.protect,
            created_fields(spec),
            Steps::DnsRecord(vec![DnsStep::Create {
                record: spec.clone(),
            }]),
        ),
    };
    if zone_missing {
        change.conflicts.push(Conflict::ZoneNotFound {
            zone: desired.zone.as_ref().map(|z| z.name.clone()),
        });
    } else if held {
        change.conflicts.push(Conflict::HostnameIsCustomDomain {
            hostname: spec.name.clone(),
        });
    }
    Some(change)
}

/// The delete of a recorded record git no longer declares.
pub(super) fn delete_steps(record: &LiveDnsRecord) -> Steps {
    Steps::DnsRecord(vec![DnsStep::Delete {
        id: record.id.clone(),
        name: record.name.clone(),
        record_type: record.record_type.clone(),
    }])
}

/// A warning for each declared route whose hostname has no proxied record
/// (declared, or in the zone): Cloudflare only runs a route on traffic it
/// proxies. Only when the zone's records were read (the zone exists).
pub(super) fn route_notes(desired: &DesiredState, live: &LiveState) -> Vec<Note> {
    if live.zone_id.is_none() {
        return Vec::new();
    }
    let covered = |host: &str| {
        // The name itself, or a wildcard one label up.
        let covers = |name: &str| {
            name == host
                || name.strip_prefix("*.").is_some_and(|parent| {
                    host.split_once('.').is_some_and(|(_, rest)| rest == parent)
                })
        };
        desired
            .dns_records
            .values()
            .any(|d| d.spec.proxied && covers(&d.spec.name))
            || live
                .dns_records
                .iter()
                .any(|r| r.proxied && covers(&r.name))
    };
    let mut notes = Vec::new();
    for (key, worker) in &desired.workers {
        for pattern in &worker.spec.routes {
            let host = pattern.split('/').next().unwrap_or(pattern);
            // A wildcard host matches names a record cannot be checked for.
            if host.contains('*') || covered(host) {
                continue;
            }
            notes.push(Note::RouteWithoutRecord {
                address: Address::new(ResourceKind::Workers, key.clone()),
                pattern: pattern.clone(),
                hostname: host.to_string(),
            });
        }
    }
    notes
}
