//! Renderers: pure views of a [`Plan`]. No I/O; the caller prints.

mod drift;
mod markdown;
mod text;
mod words;

pub use drift::{drift_json, drift_markdown, drift_text};
pub use markdown::{
    BODY_LIMIT, EnvironmentPlan, FOOTER_RESERVE, PLAN_MARKER, PlanComment, drift_marker,
    plan_comment, short_commit,
};
pub use text::{requests_footer, text};
pub use words::{binding, conflicts, outcome_detail, outcome_line, value};

use crate::plan::Plan;

/// The plan as pretty JSON (schema: `docs/plan-json.md`), ending in a newline.
pub fn json(plan: &Plan) -> Result<String, serde_json::Error> {
    let view = serde_json::json!({
        "format_version": plan.format_version,
        "environment": plan.environment,
        "account_id": plan.account_id,
        "live_fingerprint": plan.live_fingerprint,
        "summary": plan.summary(),
        "changes": plan.changes,
        "unchanged": plan.unchanged,
        "notes": plan.notes,
    });
    let mut out = serde_json::to_string_pretty(&view)?;
    out.push('\n');
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests;
