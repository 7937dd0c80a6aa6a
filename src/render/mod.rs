//! Renderers: pure views of a [`Plan`]. No I/O; the caller prints.

mod drift;
mod effective;
mod markdown;
mod text;
mod words;

pub use drift::{Healing, drift_json, drift_markdown, drift_text, heal_json};
pub use effective::{Difference, differences, differences_text, effective, effective_yaml};
pub use markdown::{
    BODY_LIMIT, EnvironmentPlan, FOOTER_RESERVE, PLAN_MARKER, PlanComment, drift_marker,
    plan_comment, short_commit,
};
pub use text::{requests_footer, text};
pub use words::{binding, conflicts, outcome_detail, outcome_line, progress, value};

use crate::plan::Plan;

/// The plan as pretty JSON (schema: `docs/plan-json.md`), ending in a newline.
pub fn json(plan: &Plan) -> Result<String, serde_json::Error> {
    let mut out = serde_json::to_string_pretty(&plan_value(plan))?;
    out.push('\n');
    Ok(out)
}

/// The value [`json`] prints.
fn plan_value(plan: &Plan) -> serde_json::Value {
    serde_json::json!({
        "format_version": plan.format_version,
        "environment": plan.environment,
        "account_id": plan.account_id,
        "live_fingerprint": plan.live_fingerprint,
        "summary": plan.summary(),
        "changes": plan.changes,
        "unchanged": plan.unchanged,
        "notes": plan.notes,
    })
}

/// An apply's report as pretty JSON (schema: `docs/plan-json.md`, "Apply
/// reports"), ending in a newline: the plan that ran, and per change its
/// status, what it did (in words) and the error that stopped it.
pub fn apply_json(outcome: &crate::apply::Outcome) -> Result<String, serde_json::Error> {
    let mut out = serde_json::to_string_pretty(&apply_value(outcome))?;
    out.push('\n');
    Ok(out)
}

/// The value [`apply_json`] prints (also part of `drift --heal`'s JSON).
pub fn apply_value(outcome: &crate::apply::Outcome) -> serde_json::Value {
    let report = &outcome.report;
    let status = if outcome.plan.is_empty() {
        "no_changes"
    } else if report.failed() == 0 {
        "succeeded"
    } else {
        "incomplete"
    };
    let changes: Vec<serde_json::Value> = report
        .outcomes
        .iter()
        .map(|change| {
            let mut done: Vec<String> = change.done.iter().map(ToString::to_string).collect();
            if change.kind == crate::plan::ChangeKind::Adopt && change.error.is_none() {
                done.insert(0, "adopted: recorded in the ledger".to_string());
            }
            let mut value = serde_json::json!({
                "address": change.address,
                "kind": change.kind.as_str(),
                "status": if change.succeeded() { "succeeded" } else { "failed" },
                "done": done,
            });
            if let Some(error) = &change.error {
                value["error"] = serde_json::json!(error.to_string());
                if let Some(hint) = error.hint() {
                    value["hint"] = serde_json::json!(hint);
                }
            }
            value
        })
        .collect();
    serde_json::json!({
        "format_version": 1,
        "environment": outcome.plan.environment,
        "account_id": outcome.plan.account_id,
        "apply_id": outcome.apply_id,
        "status": status,
        "summary": outcome.plan.summary(),
        "changes": changes,
        "plan": plan_value(&outcome.plan),
    })
}

#[cfg(test)]
pub(crate) mod tests;
