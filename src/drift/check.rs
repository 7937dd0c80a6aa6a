//! `drift::check`: the drift check as a library operation (the CLI only
//! supplies git and the other environments' manifests, and prints).
//!
//! It reads the ledger's journal for the last apply, asks the caller for
//! the manifests that apply ran from (when git has moved since), reads the
//! account once for both versions of the manifests ([`crate::live::fetch_for`]),
//! plans both and hands them to the pure [`super::classify`].

use super::{DriftInputs, DriftReport, LastApply, Reference};
use crate::cloudflare::{Client, ClientError};
use crate::ledger::{self, LedgerError, journal};
use crate::model::{DesiredState, ResourceKind};
use crate::plan::Plan;

/// What a drift check needs from outside the account.
pub struct Sources<'a> {
    /// The commit the current manifests are read at (`flareops abc123`).
    pub git_commit: &'a str,
    /// The manifests of this environment at a recorded commit, or why they
    /// cannot be read.
    pub manifests_at: &'a dyn Fn(&str) -> Result<DesiredState, String>,
    /// Names other environments declare (never look-alikes of this one).
    pub declared_elsewhere: &'a [(ResourceKind, String)],
    /// Whether the recorded commit is the one the manifests are read at now.
    pub same_commit: &'a dyn Fn(&str) -> bool,
}

/// Why a drift check failed.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("reading the account failed")]
    Account(#[from] ClientError),
    #[error("reading the ledger failed")]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Fetch(#[from] crate::live::FetchError),
}

/// Checks `desired` against the account: the report, and the plan that
/// heals it.
pub async fn check(
    client: &Client,
    desired: &DesiredState,
    sources: &Sources<'_>,
) -> Result<(DriftReport, Plan), CheckError> {
    let databases = client.list_d1_databases().await?;
    let (records, other_inventories) = match ledger::find(&databases, &desired.ledger_database) {
        Some(ledger) => (
            journal::history(client, &ledger, &desired.environment, 20).await?,
            ledger::other_inventories(client, &ledger, &desired.environment).await?,
        ),
        None => (Vec::new(), Vec::new()),
    };
    let mut elsewhere = sources.declared_elsewhere.to_vec();
    for entry in &other_inventories {
        elsewhere.push((entry.address.kind, entry.name.clone()));
        elsewhere.push((entry.address.kind, entry.id.clone()));
    }
    // A refused apply changed nothing: the one before it is the reference.
    let last_apply = records
        .iter()
        .find(|r| r.recorded_status != journal::ApplyStatus::Refused)
        .map(|r| LastApply {
            id: r.id.clone(),
            started_at: r.started_at.clone(),
            finished_at: r.finished_at.clone(),
            git_commit: r.git_commit.clone(),
            actor: r.actor.clone(),
            status: r.status,
        });
    // The manifests of the last apply, when git has moved since.
    let earlier = match &last_apply {
        Some(apply) if !(sources.same_commit)(&apply.git_commit) => {
            Some((sources.manifests_at)(&apply.git_commit))
        }
        _ => None,
    };
    // One read of the account serves both plans.
    let mut states = vec![desired];
    if let Some(Ok(earlier)) = &earlier {
        states.push(earlier);
    }
    let live = crate::live::fetch_for(client, &states).await?;
    let view = crate::live::view(&live, desired);
    let now = crate::plan::plan(desired, &view);
    let earlier_plan = match &earlier {
        Some(Ok(state)) => Some(Ok(crate::plan::plan(
            state,
            &crate::live::view(&live, state),
        ))),
        Some(Err(reason)) => Some(Err(reason.as_str())),
        None => None,
    };
    let reference = match (&last_apply, &earlier_plan) {
        (None, _) => Reference::NeverApplied,
        (Some(_), None) => Reference::LastApply(&now),
        (Some(_), Some(Ok(plan))) => Reference::LastApply(plan),
        (Some(_), Some(Err(reason))) => Reference::Unknown(Some(reason)),
    };
    // Look-alike workers are looked for even when git declares none.
    let scripts: Vec<String> = match &live.script_names {
        Some(names) => names.clone(),
        None => client
            .list_worker_scripts()
            .await?
            .into_iter()
            .map(|s| s.id)
            .collect(),
    };
    let report = super::classify(&DriftInputs {
        desired,
        live: &view,
        now: &now,
        reference,
        last_apply: last_apply.as_ref(),
        scripts: &scripts,
        elsewhere: &elsewhere,
        git_commit: sources.git_commit,
    });
    Ok((report, now))
}
