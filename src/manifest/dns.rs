//! `dns_records.<key>`: a record of the environment's zone.
//!
//! `{type, name, content, proxied, ttl, priority, comment, tags}`. The
//! name is relative to the zone (`api-${env}`, `@` for the apex) or fully
//! qualified; the content is checked for the type (an IPv4 or IPv6
//! address, a host name, SRV `weight port target`, CAA `flags tag
//! "value"`). Only A, AAAA and CNAME records can be proxied; a proxied
//! record's TTL is automatic.

use crate::model::{DnsRecordSpec, DnsRecordType, canonical_content, qualify_name};

use super::decode::{Ctx, Fields, Text};
use super::report::Problem;
use super::worker::ZoneSetting;
use super::yaml::{Origin, quote_short};

/// A decoded record, with where its name and content are written (for
/// the collision checks across records).
pub(crate) struct DecodedRecord {
    pub spec: DnsRecordSpec,
    pub origin: Origin,
}

pub(crate) fn decode(
    fields: &mut Fields<'_>,
    ctx: &mut Ctx<'_>,
    zone: &ZoneSetting,
    anchor: Origin,
) -> Option<DecodedRecord> {
    let record_type = fields.one_of(ctx, "type", &DnsRecordType::ALL, DnsRecordType::as_str);
    if record_type.is_none() && fields.node("type").is_none() {
        ctx.push(
            Problem::new(
                anchor,
                fields.path("type"),
                "missing field `type` for DNS record",
            )
            .hint("add `type: A` (or AAAA, CNAME, TXT, MX, SRV, CAA)"),
        );
    }
    let name = fields.required_string(ctx, "name");
    let content = fields.required_string(ctx, "content");
    let proxied = fields.bool(ctx, "proxied");
    let ttl = fields.string(ctx, "ttl");
    let priority = fields.string(ctx, "priority");
    let comment = fields.string(ctx, "comment");
    let tags = fields.strings(ctx, "tags");
    let record_type = record_type?;

    let zone_name = match zone {
        ZoneSetting::Known(zone) => zone.name.clone(),
        ZoneSetting::Absent => {
            let at = name.as_ref().map_or(anchor, |n| n.origin);
            ctx.push(
                Problem::new(
                    at,
                    fields.path("name"),
                    "DNS records need the environment's zone, and the environment has no `zone:`",
                )
                .hint("add `zone: example.com` to the environment file"),
            );
            return None;
        }
        // The environment's problem is reported where it is.
        ZoneSetting::Unknown => return None,
    };
    let name = name?;
    if name.unresolved {
        return None;
    }
    let qualified = qualify_name(&name.value, &zone_name);
    if let Some(problem) = record_name_problem(&qualified) {
        ctx.push(
            Problem::new(
                name.origin,
                fields.path("name"),
                format!("invalid DNS record name {}: {problem}", quote_short(&name.value)),
            )
            .hint("write a name in the zone (`api`, `api.example.com`, `@` for the apex); labels are letters, digits, `-` and `_`, and `*` may start a name"),
        );
        return None;
    }

    let content = content?;
    if content.unresolved {
        return None;
    }
    let Some(canonical) = canonical_content(record_type, &content.value) else {
        ctx.push(
            Problem::new(
                content.origin,
                fields.path("content"),
                format!(
                    "invalid content {} for type {record_type}",
                    quote_short(&content.value)
                ),
            )
            .hint(content_hint(record_type)),
        );
        return None;
    };

    let proxied = proxied.unwrap_or(false);
    if proxied && !record_type.proxiable() {
        let at = fields.node("proxied").map_or(anchor, |node| node.origin);
        ctx.push(
            Problem::new(
                at,
                fields.path("proxied"),
                format!("{record_type} records cannot be proxied"),
            )
            .hint("only A, AAAA and CNAME records are proxied: remove `proxied: true`"),
        );
        return None;
    }
    let ttl = match ttl {
        None => 1,
        Some(text) => decode_ttl(ctx, fields, &text, proxied)?,
    };
    let priority = match (priority, record_type.has_priority()) {
        (None, false) => None,
        (None, true) => {
            ctx.push(
                Problem::new(
                    anchor,
                    fields.path("priority"),
                    format!("missing field `priority`: {record_type} records have one"),
                )
                .hint("add `priority: 10` (0 to 65535; lower is preferred)"),
            );
            return None;
        }
        (Some(text), false) => {
            ctx.push(
                Problem::new(
                    text.origin,
                    fields.path("priority"),
                    format!("{record_type} records have no priority"),
                )
                .hint("only MX and SRV records have one: remove `priority`"),
            );
            return None;
        }
        (Some(text), true) => match text.value.parse::<u16>() {
            Ok(priority) => Some(priority),
            Err(_) => {
                ctx.push(
                    Problem::new(
                        text.origin,
                        fields.path("priority"),
                        format!("invalid priority {}", quote_short(&text.value)),
                    )
                    .hint("a whole number from 0 to 65535"),
                );
                return None;
            }
        },
    };
    let comment = match comment {
        Some(text) if text.value.chars().count() > 100 => {
            ctx.push(
                Problem::new(
                    text.origin,
                    fields.path("comment"),
                    format!(
                        "the comment has {} characters, more than 100",
                        text.value.chars().count()
                    ),
                )
                .hint("Cloudflare keeps at most 100 characters: shorten it"),
            );
            return None;
        }
        Some(text) => Some(text.value).filter(|c| !c.is_empty()),
        None => None,
    };
    let mut tag_values = Vec::new();
    for (path, tag) in tags.unwrap_or_default() {
        let valid = tag
            .value
            .split_once(':')
            .is_some_and(|(name, _)| !name.is_empty());
        if !valid {
            ctx.push(
                Problem::new(
                    tag.origin,
                    path,
                    format!("invalid tag {}", quote_short(&tag.value)),
                )
                .hint("a tag is `name:value`, like `team:api`"),
            );
            return None;
        }
        tag_values.push(tag.value);
    }
    tag_values.sort();
    tag_values.dedup();
    Some(DecodedRecord {
        spec: DnsRecordSpec {
            record_type,
            name: qualified,
            content: canonical,
            proxied,
            ttl,
            priority,
            comment,
            tags: tag_values,
        },
        origin: name.origin,
    })
}

fn decode_ttl(ctx: &mut Ctx<'_>, fields: &Fields<'_>, text: &Text, proxied: bool) -> Option<u32> {
    if text.unresolved {
        return None;
    }
    let seconds = if text.value == "auto" {
        Some(1)
    } else {
        crate::duration::parse(&text.value)
            .ok()
            .filter(|d| d.subsec_nanos() == 0)
            .and_then(|d| u32::try_from(d.as_secs()).ok())
            .filter(|s| (60..=86_400).contains(s))
    };
    let Some(seconds) = seconds else {
        ctx.push(
            Problem::new(
                text.origin,
                fields.path("ttl"),
                format!("invalid ttl {}", quote_short(&text.value)),
            )
            .hint("write `auto`, or from 60 to 86400 seconds (`300`, `5m`, `1h`)"),
        );
        return None;
    };
    if proxied && seconds != 1 {
        ctx.push(
            Problem::new(
                text.origin,
                fields.path("ttl"),
                "a proxied record's TTL is automatic",
            )
            .hint("remove `ttl`, or write `ttl: auto`"),
        );
        return None;
    }
    Some(seconds)
}

fn content_hint(kind: DnsRecordType) -> &'static str {
    match kind {
        DnsRecordType::A => "an A record's content is an IPv4 address, like `192.0.2.10`",
        DnsRecordType::AAAA => {
            "an AAAA record's content is an IPv6 address, like `2001:db8::10` (`100::` for a Worker with no origin)"
        }
        DnsRecordType::CNAME => {
            "a CNAME record's content is a host name, like `target.example.net`"
        }
        DnsRecordType::MX => {
            "an MX record's content is the mail server's host name, like `mx1.example.net`"
        }
        DnsRecordType::TXT => "a TXT record's content is 1 to 2048 characters",
        DnsRecordType::SRV => {
            "an SRV record's content is `weight port target`, like `5 5060 sip.example.net`, with `priority` beside it"
        }
        DnsRecordType::CAA => {
            "a CAA record's content is `flags tag \"value\"`, like `0 issue \"letsencrypt.org\"` (tag: issue, issuewild or iodef)"
        }
    }
}

/// Why a qualified record name is not a valid DNS name, if it is not.
fn record_name_problem(name: &str) -> Option<String> {
    if name.len() > 253 {
        return Some(format!("{} characters, more than 253", name.len()));
    }
    for (index, label) in name.split('.').enumerate() {
        if index == 0 && label == "*" {
            continue;
        }
        if label.is_empty() {
            return Some("an empty label (`..`)".to_string());
        }
        if label.len() > 63 {
            return Some(format!("the label `{label}` is longer than 63 characters"));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Some(format!("`{c}` is not allowed in a DNS name"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Some(format!("the label `{label}` starts or ends with `-`"));
        }
    }
    None
}

/// Records that could never be created side by side: the same record
/// twice, a CNAME beside another record of its name, a record on a
/// hostname a worker declares as its custom domain (Cloudflare owns that
/// hostname's record).
pub(crate) fn report_collisions(
    records: &[(String, DecodedRecord)],
    custom_domains: &[(crate::model::Address, String, Origin)],
    ctx: &mut Ctx<'_>,
) {
    for (index, (key, record)) in records.iter().enumerate() {
        let spec = &record.spec;
        let path = format!("dns_records.{key}.name");
        if let Some((address, _, origin)) = custom_domains
            .iter()
            .find(|(_, hostname, _)| *hostname == spec.name)
        {
            ctx.push(
                Problem::new(
                    record.origin,
                    path.clone(),
                    format!(
                        "`{}` is the custom domain of `{address}`: Cloudflare makes and owns its DNS record",
                        spec.name
                    ),
                )
                .hint("remove this record (the custom domain serves the hostname), or use a route with a record instead of the custom domain")
                .related(*origin, "the custom domain is declared here"),
            );
            continue;
        }
        for (other_key, other) in &records[..index] {
            let other_spec = &other.spec;
            if other_spec.name != spec.name {
                continue;
            }
            let same =
                other_spec.record_type == spec.record_type && other_spec.content == spec.content;
            let cname = spec.record_type == DnsRecordType::CNAME
                || other_spec.record_type == DnsRecordType::CNAME;
            let message = if same {
                format!(
                    "the {} record `{}` → `{}` is also declared by `dns_records.{other_key}`",
                    spec.record_type, spec.name, spec.content
                )
            } else if cname {
                format!(
                    "`{}` has a CNAME record and another record (`dns_records.{other_key}`): a CNAME cannot share its name",
                    spec.name
                )
            } else {
                continue;
            };
            ctx.push(
                Problem::new(record.origin, path.clone(), message)
                    .hint("keep one of them, or give them different names")
                    .related(
                        other.origin,
                        format!("`dns_records.{other_key}` is declared here"),
                    ),
            );
            break;
        }
    }
}
