//! Renderers: pure views of a [`Plan`]. No I/O; the caller prints.

mod text;

pub use text::text;

use crate::plan::Plan;

/// The plan as pretty JSON (schema: `docs/plan-json.md`), ending in a newline.
pub fn json(plan: &Plan) -> String {
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
    let mut out = serde_json::to_string_pretty(&view).unwrap_or_default();
    out.push('\n');
    out
}

#[cfg(test)]
mod tests;
