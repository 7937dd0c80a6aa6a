//! DNS record changes: every step of a wave's DNS changes goes in one
//! batch request (several when there are more than a batch takes), which
//! Cloudflare runs as one transaction. A batch that fails changed nothing,
//! so each of its changes fails and the next run plans them again.

use super::{ChangeOutcome, Effect, StepError};
use crate::cloudflare::{Client, DNS_BATCH_LIMIT, DnsBatch};
use crate::model::LiveDnsRecord;
use crate::plan::{Change, DnsStep, Steps};

/// Where each step's answer lands: the change's index and what it was.
enum Slot {
    Put(usize),
    Post(usize),
    Delete {
        change: usize,
        id: String,
        name: String,
        record_type: String,
    },
}

/// Runs `changes` (all DNS changes) against `zone_id`, in batches.
pub(super) async fn run(
    client: &Client,
    zone_id: Option<&str>,
    changes: &[&Change],
) -> Vec<ChangeOutcome> {
    let mut outcomes: Vec<ChangeOutcome> = changes
        .iter()
        .map(|change| ChangeOutcome {
            address: change.address.clone(),
            kind: change.kind,
            done: Vec::new(),
            error: None,
        })
        .collect();
    let Some(zone_id) = zone_id else {
        for outcome in &mut outcomes {
            outcome.error = Some(StepError::Blocked(
                "not applied: the environment's zone was not found in the account".to_string(),
            ));
        }
        return outcomes;
    };
    // Changes in batches of at most the limit's steps.
    let mut batches: Vec<Vec<usize>> = Vec::new();
    let mut size = 0;
    for (index, change) in changes.iter().enumerate() {
        let steps = change.steps.len();
        if batches.is_empty() || size + steps > DNS_BATCH_LIMIT {
            batches.push(Vec::new());
            size = 0;
        }
        batches.last_mut().expect("pushed above").push(index);
        size += steps;
    }
    for members in batches {
        let mut batch = DnsBatch::default();
        let mut slots = Vec::new();
        for &index in &members {
            let Steps::DnsRecord(steps) = &changes[index].steps else {
                continue;
            };
            for step in steps {
                match step {
                    DnsStep::Create { record } => {
                        slots.push(Slot::Post(index));
                        batch.posts.push(record.clone());
                    }
                    DnsStep::Update { id, record } => {
                        slots.push(Slot::Put(index));
                        batch.puts.push((id.clone(), record.clone()));
                    }
                    DnsStep::Delete {
                        id,
                        name,
                        record_type,
                    } => {
                        slots.push(Slot::Delete {
                            change: index,
                            id: id.clone(),
                            name: name.clone(),
                            record_type: record_type.clone(),
                        });
                        batch.deletes.push(id.clone());
                    }
                }
            }
        }
        if batch.is_empty() {
            continue;
        }
        match client.batch_dns_records(zone_id, &batch).await {
            Ok(result) => {
                let mut posts = result.posts.into_iter();
                let mut puts = result.puts.into_iter();
                for slot in slots {
                    let (index, effect) = match slot {
                        Slot::Post(index) => (
                            index,
                            posts.next().map(|r| Effect::DnsCreated {
                                record: LiveDnsRecord::from(r),
                            }),
                        ),
                        Slot::Put(index) => (
                            index,
                            puts.next().map(|r| Effect::DnsUpdated {
                                record: LiveDnsRecord::from(r),
                            }),
                        ),
                        Slot::Delete {
                            change,
                            id,
                            name,
                            record_type,
                        } => (
                            change,
                            Some(Effect::DnsDeleted {
                                id,
                                name,
                                record_type,
                            }),
                        ),
                    };
                    match effect {
                        Some(effect) => outcomes[index].done.push(effect),
                        None => {
                            outcomes[index].error = Some(StepError::Changed(
                                "the DNS batch answered fewer records than it was sent".to_string(),
                            ));
                        }
                    }
                }
            }
            Err(error) => {
                let message = error.to_string();
                let mut error = Some(StepError::Client(error));
                for &index in &members {
                    outcomes[index].error = Some(error.take().unwrap_or_else(|| {
                        StepError::Blocked(format!(
                            "not applied: the DNS batch it was in failed as a whole ({message})"
                        ))
                    }));
                }
            }
        }
    }
    outcomes
}
