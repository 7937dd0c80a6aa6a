//! DNS records: `/zones/{zone_id}/dns_records`, read page by page, and
//! changed through the batch endpoint (`…/dns_records/batch`), which
//! Cloudflare runs as one transaction: deletes, then puts, then posts.
//!
//! SRV and CAA records travel as `data` objects; every other type as
//! `content`. A batch whose answer is lost is looked up before it is sent
//! again: it is all or nothing, so finding its records (and not the ones
//! it deletes) means it ran.

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::retry::Repeat;
use super::transport::Exchange;
use super::{Body, Client, ClientError, Request};
use crate::model::{DnsRecordSpec, DnsRecordType, LiveDnsRecord};

/// The most operations Cloudflare takes in one batch (the smallest plan's
/// limit); larger change sets go in several batches.
pub const BATCH_LIMIT: usize = 200;
/// Records asked for per page when listing.
const PER_PAGE: u32 = 5000;

/// A DNS record as the API returns it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct DnsRecord {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default)]
    pub proxied: Option<bool>,
    #[serde(default)]
    pub ttl: Option<f64>,
    #[serde(default)]
    pub priority: Option<f64>,
    #[serde(default)]
    pub comment: Option<String>,
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    #[serde(default)]
    pub meta: Option<Map<String, Value>>,
}

impl DnsRecord {
    /// Made by Cloudflare for a Worker custom domain: read-only.
    pub fn read_only(&self) -> bool {
        self.meta
            .as_ref()
            .and_then(|meta| meta.get("read_only"))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }
}

impl From<DnsRecord> for LiveDnsRecord {
    fn from(record: DnsRecord) -> Self {
        let managed = record.read_only();
        let mut tags = record.tags.unwrap_or_default();
        tags.sort();
        LiveDnsRecord {
            id: record.id,
            record_type: record.kind,
            name: record.name,
            content: record.content.unwrap_or_default(),
            proxied: record.proxied.unwrap_or(false),
            ttl: record.ttl.map_or(1, |ttl| ttl as u32),
            priority: record.priority.map(|p| p as u16),
            comment: record.comment.filter(|c| !c.is_empty()),
            tags,
            managed,
        }
    }
}

/// The request body of a declared record (`POST`, or a `PUT` in a batch).
pub fn record_body(spec: &DnsRecordSpec) -> Value {
    let mut body = json!({
        "type": spec.record_type.as_str(),
        "name": spec.name,
        "proxied": spec.proxied,
        "ttl": spec.ttl,
        "comment": spec.comment,
        "tags": spec.tags,
    });
    let parts: Vec<&str> = spec.content.splitn(3, ' ').collect();
    match (spec.record_type, parts.as_slice()) {
        (DnsRecordType::SRV, [weight, port, target]) => {
            body["data"] = json!({
                "priority": spec.priority.unwrap_or(0),
                "weight": weight.parse::<u16>().unwrap_or(0),
                "port": port.parse::<u16>().unwrap_or(0),
                "target": target,
            });
            body["priority"] = json!(spec.priority.unwrap_or(0));
        }
        (DnsRecordType::CAA, [flags, tag, value]) => {
            body["data"] = json!({
                "flags": flags.parse::<u8>().unwrap_or(0),
                "tag": tag,
                "value": value.trim_matches('"'),
            });
        }
        _ => {
            body["content"] = json!(spec.content);
            if let Some(priority) = spec.priority {
                body["priority"] = json!(priority);
            }
        }
    }
    body
}

/// The operations of one batch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DnsBatch {
    pub deletes: Vec<String>,
    /// `(id, record)`: overwritten in place.
    pub puts: Vec<(String, DnsRecordSpec)>,
    pub posts: Vec<DnsRecordSpec>,
}

impl DnsBatch {
    pub fn len(&self) -> usize {
        self.deletes.len() + self.puts.len() + self.posts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn body(&self) -> Value {
        let with_id = |id: &str, spec: &DnsRecordSpec| {
            let mut body = record_body(spec);
            body["id"] = json!(id);
            body
        };
        json!({
            "deletes": self.deletes.iter().map(|id| json!({"id": id})).collect::<Vec<_>>(),
            "puts": self.puts.iter().map(|(id, spec)| with_id(id, spec)).collect::<Vec<_>>(),
            "posts": self.posts.iter().map(record_body).collect::<Vec<_>>(),
        })
    }
}

/// What a batch did: the records it wrote, in the order of the request.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct DnsBatchResult {
    #[serde(default)]
    pub puts: Vec<DnsRecord>,
    #[serde(default)]
    pub posts: Vec<DnsRecord>,
}

impl Client {
    pub async fn list_dns_records(&self, zone_id: &str) -> Result<Vec<DnsRecord>, ClientError> {
        let path = format!("/zones/{zone_id}/dns_records");
        self.get_all_pages(&path, PER_PAGE, &[]).await
    }

    /// Runs one batch (at most [`BATCH_LIMIT`] operations).
    pub async fn batch_dns_records(
        &self,
        zone_id: &str,
        batch: &DnsBatch,
    ) -> Result<DnsBatchResult, ClientError> {
        let path = format!("/zones/{zone_id}/dns_records/batch");
        let body = batch.body();
        let request = Request::new(Method::POST, &path)
            .body(Body::Json(&body))
            .repeat(Repeat::Unsafe);
        self.create_or_find(
            &format!("a batch of {} DNS record changes", batch.len()),
            async |state: &mut Exchange| self.fetch_result_with(&request, state).await,
            async || {
                let records: Vec<LiveDnsRecord> = self
                    .list_dns_records(zone_id)
                    .await?
                    .into_iter()
                    .map(LiveDnsRecord::from)
                    .collect();
                Ok(found_batch(batch, &records))
            },
        )
        .await
    }
}

/// The result of `batch` when the zone shows it ran: every record it
/// writes is there and no record it deletes is.
fn found_batch(batch: &DnsBatch, records: &[LiveDnsRecord]) -> Option<DnsBatchResult> {
    if batch
        .deletes
        .iter()
        .any(|id| records.iter().any(|r| &r.id == id))
    {
        return None;
    }
    let wire = |record: &LiveDnsRecord| DnsRecord {
        id: record.id.clone(),
        name: record.name.clone(),
        kind: record.record_type.clone(),
        content: Some(record.content.clone()),
        proxied: Some(record.proxied),
        ttl: Some(f64::from(record.ttl)),
        priority: record.priority.map(f64::from),
        comment: record.comment.clone(),
        tags: Some(record.tags.clone()),
        meta: None,
    };
    let mut puts = Vec::new();
    for (id, spec) in &batch.puts {
        let found = records.iter().find(|r| &r.id == id && r.matches(spec))?;
        puts.push(wire(found));
    }
    let mut posts = Vec::new();
    for spec in &batch.posts {
        let found = records.iter().find(|r| r.matches(spec))?;
        posts.push(wire(found));
    }
    Some(DnsBatchResult { puts, posts })
}
